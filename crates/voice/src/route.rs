//! Route selection (Lync §4 and §7): the caller's voice policy's PSTN usages in order; for
//! each, the voice routes holding that usage whose NumberPattern matches, by Priority. And
//! which final answers of a gateway make the call fail over to the next one.

use crate::dotnet::compiled;

/// A voice route (CsVoiceRoute).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Route {
    pub name: String,
    pub number_pattern: String,
    pub pstn_usages: Vec<String>,
    pub gateways: Vec<String>,
    pub priority: i64,
    pub suppress_caller_id: bool,
    pub alternate_caller_id: String,
}

/// A route to try, and the usage through which the policy reached it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate<'a> {
    pub usage: &'a str,
    pub route: &'a Route,
}

/// The policy's usages in order; for each, the routes holding that usage whose NumberPattern matches `number`, by Priority (lowest first). Invalid patterns never match.
///
/// Routes of equal Priority keep the order given. A route holding two of the policy's
/// usages appears once under each (the caller may skip gateways it already tried).
pub fn candidates<'a>(
    policy_usages: &'a [String],
    routes: &'a [Route],
    number: &str,
) -> Vec<Candidate<'a>> {
    let mut out = Vec::new();
    for usage in policy_usages {
        let start = out.len();
        for route in routes {
            if route.pstn_usages.iter().any(|u| u == usage)
                && compiled(&route.number_pattern).is_some_and(|p| p.is_match(number))
            {
                out.push(Candidate {
                    usage: usage.as_str(),
                    route,
                });
            }
        }
        out[start..].sort_by_key(|c| c.route.priority); // stable
    }
    out
}

/// Failover (§7): true for 408, 5xx and no answer (None); false for 486, 600, 603 and other final answers.
pub fn fails_over(status: Option<u16>) -> bool {
    match status {
        None => true,
        Some(s) => s == 408 || (500..=599).contains(&s),
    }
}
