//! confab-voice: the pure core of enterprise voice, with no I/O.
//!
//! One implementation shared by the admin shell's Test- cmdlets and the server's live
//! routing: .NET regular expressions and replacement strings ([`dotnet`]), dial-plan
//! normalization and `New-CsVoiceRegex` ([`normalize`]), route selection and failover
//! ([`route`]), trunk outbound translation ([`translate`]). See docs/voice.md.

pub mod documents;
pub mod dotnet;
pub mod forwarding;
pub mod normalize;
pub mod plan;
pub mod route;
pub mod translate;

pub use dotnet::{check_translation, compiled, Pattern, PatternError};
pub use forwarding::{CallForwarding, ForwardTarget};
pub use normalize::{normalize, voice_regex, Normalized, Rule};
pub use plan::{dialed_number, pstn_legs, CallerId, Leg};
pub use route::{candidates, fails_over, Candidate, Route};
pub use translate::translate;

/// Visits `items` by priority (lowest first, ties in the order given) and returns the first
/// answer of `f`. No allocation when the items are already in order (the usual case).
pub(crate) fn first_by_priority<'a, T, R>(
    items: &'a [T],
    priority: impl Fn(&T) -> i64,
    mut f: impl FnMut(&'a T) -> Option<R>,
) -> Option<R> {
    if items.windows(2).all(|w| priority(&w[0]) <= priority(&w[1])) {
        return items.iter().find_map(f);
    }
    let mut order: Vec<&'a T> = items.iter().collect();
    order.sort_by_key(|t| priority(t)); // stable: ties keep the order given
    order.into_iter().find_map(&mut f)
}

#[cfg(test)]
mod tests;
