//! Enterprise voice's checks that the shell runs on what administrators type: patterns and
//! translations of normalization and outbound translation rules and of voice routes, and
//! `New-CsVoiceRegex`'s pattern builder.
//!
//! These three functions are the shell's side of `confab-voice` (Lync's .NET regular
//! expressions: `confab_voice::dotnet::Pattern::new`, `check_translation`,
//! `confab_voice::normalize::voice_regex`), with the checks of what administrators type
//! (lengths, control characters, digits) in front.

use confab_policy::{Document, VoicePolicy, VoiceRoute};
use confab_store::{Store, StoreError};

/// The CsVoicePolicy of the user `user_key` (`user@domain`): granted (Tag:) if it still
/// exists, else `Site:<site>`, else Global, else Lync's defaults (as
/// [`crate::pins::dial_plan_for`] resolves the dial plan). `NoSuchUser` for a user the
/// store does not have.
pub fn voice_policy_for(
    store: &Store,
    user_key: &str,
    site: Option<&str>,
) -> Result<VoicePolicy, StoreError> {
    let (_, a) = crate::policies::user_and_assignment(store, user_key)?;
    crate::policies::policy_of(store, a.voice_policy.as_deref(), site)
}

pub use confab_voice::documents::{normalization_rules, outbound_rules, voice_route};

/// Every voice route of the store, as confab-voice reads them, in the store's order
/// (confab_voice::candidates sorts by Priority, ties in this order).
pub fn voice_routes(store: &Store) -> Result<Vec<confab_voice::Route>, StoreError> {
    Ok(store
        .list_config(VoiceRoute::DEF.noun)?
        .into_iter()
        .map(|d| voice_route(&d.identity, &VoiceRoute::from_body(&d.body).0))
        .collect())
}

/// Longest number the Test- cmdlets take (characters, `tel:` and `+` included).
pub const MAX_NUMBER_LEN: usize = 64;

/// A number given to a Test- cmdlet (-DialedNumber, -TargetNumber, -CallingNumber): what a
/// user can dial — digits, `*` and `#`, optionally after a `+`, optionally as a `tel:` URI
/// (the `tel:` is dropped). Anything else is refused with the reason.
pub fn test_number(raw: &str) -> Result<String, String> {
    let t = raw.trim();
    if t.chars().count() > MAX_NUMBER_LEN {
        return Err(format!(
            "the number is longer than {MAX_NUMBER_LEN} characters"
        ));
    }
    let n = match t.get(..4) {
        Some(p) if p.eq_ignore_ascii_case("tel:") => &t[4..],
        _ => t,
    };
    let digits = n.strip_prefix('+').unwrap_or(n);
    if digits.is_empty() {
        return Err("the number is empty".into());
    }
    if let Some(c) = digits
        .chars()
        .find(|c| !(c.is_ascii_digit() || *c == '*' || *c == '#'))
    {
        return Err(format!(
            "'{raw}' is not a phone number: '{}' is not a digit, * or # (give digits, optionally after + or tel:)",
            c.escape_default()
        ));
    }
    Ok(n.to_string())
}

/// Longest Pattern, NumberPattern or Translation the shell stores.
pub const MAX_PATTERN_LEN: usize = 1024;

/// Refuses a Pattern (or a route's NumberPattern) that cannot be compiled, with the reason
/// (and where the regex crate says, the position).
pub fn check_pattern(p: &str) -> Result<(), String> {
    if p.is_empty() {
        return Err("the pattern is empty".into());
    }
    if p.chars().count() > MAX_PATTERN_LEN {
        return Err(format!(
            "the pattern is longer than {MAX_PATTERN_LEN} characters"
        ));
    }
    if let Some(c) = p.chars().find(|c| c.is_control()) {
        return Err(format!(
            "the pattern holds a control character (U+{:04X})",
            c as u32
        ));
    }
    // Lync's patterns are .NET regular expressions: confab-voice reads them as .NET does
    // and refuses, with the position, what it cannot run the same way
    confab_voice::dotnet::Pattern::new(p)
        .map(|_| ())
        .map_err(|e| format!("'{p}' is not a valid regular expression {e}"))
}

/// Refuses a Translation (a .NET replacement string such as `+1425555$1`) that confab could
/// not store or apply. In .NET almost every replacement string is valid (a `$` that names no
/// group is literal text), so only length and control characters are refused here.
pub fn check_translation(t: &str) -> Result<(), String> {
    if t.chars().count() > MAX_PATTERN_LEN {
        return Err(format!(
            "the translation is longer than {MAX_PATTERN_LEN} characters"
        ));
    }
    if let Some(c) = t.chars().find(|c| c.is_control()) {
        return Err(format!(
            "the translation holds a control character (U+{:04X})",
            c as u32
        ));
    }
    confab_voice::dotnet::check_translation(t)
        .map_err(|e| format!("the translation '{t}' is not valid {e}"))
}

/// Longest number `New-CsVoiceRegex` builds a pattern for (digits).
const MAX_DIGITS: u32 = 50;

/// `New-CsVoiceRegex` (Lync Control Panel's "Build a normalization rule"): a number that
/// starts with `starts_with` (digits, optionally after a `+`), exactly `exact_length` or at
/// least `at_least_length` digits long counting those (neither: any length), loses its first
/// `digits_to_strip` digits and gets `digits_to_prepend` in front. Returns (Pattern,
/// Translation), e.g. `("1", Some(11), None, 1, "+")` → `(^1(\d{10})$, +$1)`.
pub fn voice_regex(
    starts_with: &str,
    exact_length: Option<u32>,
    at_least_length: Option<u32>,
    digits_to_strip: u32,
    digits_to_prepend: &str,
) -> Result<(String, String), String> {
    // what a phone number can start with, and what can be put in front of one
    let digits = starts_with.strip_prefix('+').unwrap_or(starts_with);
    if !digits.bytes().all(|c| c.is_ascii_digit()) || digits.len() > MAX_DIGITS as usize {
        return Err(format!(
            "StartsWith '{starts_with}' is not up to {MAX_DIGITS} digits (optionally after +)"
        ));
    }
    if !digits_to_prepend
        .strip_prefix('+')
        .unwrap_or(digits_to_prepend)
        .bytes()
        .all(|c| c.is_ascii_digit() || c == b'*' || c == b'#')
        || digits_to_prepend.len() > MAX_DIGITS as usize
    {
        return Err(format!(
            "DigitsToPrepend '{digits_to_prepend}' is not up to {MAX_DIGITS} digits (optionally after +)"
        ));
    }
    if exact_length == Some(0) || at_least_length == Some(0) {
        return Err("a length 0 matches no number".into());
    }
    confab_voice::normalize::voice_regex(
        starts_with,
        exact_length,
        at_least_length,
        digits_to_strip,
        digits_to_prepend,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookbook_rules_are_built() {
        assert_eq!(
            voice_regex("", Some(4), None, 0, "+1425555").unwrap(),
            (r"^(\d{4})$".to_string(), "+1425555$1".to_string())
        );
        assert_eq!(
            voice_regex("1", Some(11), None, 1, "+").unwrap(),
            (r"^1(\d{10})$".to_string(), "+$1".to_string())
        );
        assert_eq!(
            voice_regex("011", None, None, 3, "+").unwrap(),
            (r"^011(\d*)$".to_string(), "+$1".to_string())
        );
        assert_eq!(
            voice_regex("425", None, Some(7), 0, "+1").unwrap(),
            (r"^(425\d{3}\d+)$".to_string(), "+1$1".to_string())
        );
        assert_eq!(
            voice_regex("9", Some(8), None, 2, "").unwrap(),
            (r"^9\d{1}(\d{6})$".to_string(), "$1".to_string())
        );
        assert_eq!(
            voice_regex("+44", Some(12), None, 0, "").unwrap(),
            (r"^(\+44\d{9})$".to_string(), "$1".to_string())
        );
        // what it builds does what it says
        let (p, _) = voice_regex("1", Some(11), None, 1, "+").unwrap();
        let re = confab_voice::dotnet::Pattern::new(&p).unwrap();
        assert_eq!(re.replace("14255550100", "$1").unwrap(), "4255550100");
        assert!(!re.is_match("4255550100"));
    }

    #[test]
    fn bad_input_is_named() {
        for (s, e, a, strip, pre, want) in [
            ("1a", None, None, 0, "", "StartsWith"),
            ("1", Some(4), Some(4), 0, "", "not both"),
            ("123", Some(2), None, 0, "", "longer than"),
            ("1", Some(4), None, 5, "", "DigitsToStrip"),
            ("1", Some(0), None, 0, "", "length 0 matches"),
            ("1", None, None, 0, "+1x", "DigitsToPrepend"),
        ] {
            let err = voice_regex(s, e, a, strip, pre).unwrap_err();
            assert!(err.contains(want), "{err}");
        }
    }

    #[test]
    fn test_numbers_are_digits() {
        assert_eq!(test_number("1234").unwrap(), "1234");
        assert_eq!(test_number(" tel:+14255550100 ").unwrap(), "+14255550100");
        assert_eq!(test_number("*86#").unwrap(), "*86#");
        for bad in ["", "+", "tel:", "12a4", "+1 425", "++1", "12\n3", "١٢٣"] {
            assert!(test_number(bad).is_err(), "{bad}");
        }
        assert!(test_number(&"1".repeat(65)).is_err());
        assert!(test_number(&"1".repeat(64)).is_ok());
    }

    #[test]
    fn patterns_and_translations_are_checked() {
        assert!(check_pattern(r"^(\d{4})$").is_ok());
        let e = check_pattern(r"^(\d{4}$").unwrap_err();
        assert!(e.contains("not a valid regular expression"), "{e}");
        assert!(!e.contains('\n'));
        assert!(check_pattern("").is_err());
        assert!(check_pattern(&"a".repeat(2000)).is_err());
        assert!(check_translation("+1425555$1").is_ok());
        assert!(check_translation("$$1${x}").is_ok());
        assert!(check_translation("+1\n").is_err());
    }
}
