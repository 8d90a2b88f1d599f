//! Dial-plan normalization (Lync §4): the rules of a dial plan, lowest Priority first, the
//! first whose Pattern matches rewrites the number with its Translation. Also
//! `New-CsVoiceRegex`, which writes a (Pattern, Translation) pair from simple criteria.

use crate::dotnet::compiled;
use crate::first_by_priority;

/// A normalization rule (CsVoiceNormalizationRule) or an outbound translation rule
/// (CsOutboundTranslationRule, where `is_internal_extension` is unused).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    pub pattern: String,
    pub translation: String,
    pub priority: i64,
    pub is_internal_extension: bool,
}

/// The number a rule produced, and the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized<'a> {
    pub number: String,
    pub rule: &'a Rule,
}

/// Lync: rules by Priority (lowest first; ties by the order given), the first whose pattern matches wins; None if none.
///
/// A rule whose pattern is invalid never matches. The translation replaces the first match
/// of the pattern (.NET replacement rules, see [`crate::Pattern::replace`]); Lync patterns
/// carry their own `^...$`.
pub fn normalize<'a>(rules: &'a [Rule], dialed: &str) -> Option<Normalized<'a>> {
    first_by_priority(
        rules,
        |r| r.priority,
        |rule| {
            let pattern = compiled(&rule.pattern)?;
            let number = pattern.replace(dialed, &rule.translation)?;
            Some(Normalized { number, rule })
        },
    )
}

/// Longest length New-CsVoiceRegex accepts here.
const MAX_LENGTH: u32 = 1000;

/// New-CsVoiceRegex: (pattern, translation) from StartsWith, ExactLength | AtLeastLength, DigitsToStrip, DigitsToPrepend
///
/// Lync's form: `^` + the stripped part + `(` + the kept part + `)$`, translation
/// DigitsToPrepend + `$1`. The StartsWith characters count in the length; the stripped part
/// takes StartsWith's first characters, then `\d{n}`; the kept part is the rest of
/// StartsWith, then `\d{n}` (ExactLength) or `\d{n-1}\d+` (AtLeastLength). Examples from
/// the cmdlet's documentation: ExactLength 7, DigitsToStrip 3 → `^\d{3}(\d{4})$`, `$1`;
/// AtLeastLength 7, StartsWith "1" → `^(1\d{5}\d+)$`, `$1`. StartsWith is escaped as .NET's
/// Regex.Escape does; a `$` in DigitsToPrepend is written `$$`.
pub fn voice_regex(
    starts_with: &str,
    exact_length: Option<u32>,
    at_least_length: Option<u32>,
    digits_to_strip: u32,
    digits_to_prepend: &str,
) -> Result<(String, String), String> {
    let (length, exact) = match (exact_length, at_least_length) {
        (Some(l), None) => (l, true),
        (None, Some(l)) => (l, false),
        (Some(_), Some(_)) => return Err("give ExactLength or AtLeastLength, not both".into()),
        // neither: any number of digits after StartsWith (the cookbook's `^011(\d*)$`)
        (None, None) => {
            let sw: Vec<char> = starts_with.chars().collect();
            let strip = digits_to_strip as usize;
            if strip > sw.len() {
                return Err(format!(
                    "DigitsToStrip {digits_to_strip} is more than StartsWith \"{starts_with}\" without a length"
                ));
            }
            let pattern = format!(r"^{}({}\d*)$", escape(&sw[..strip]), escape(&sw[strip..]));
            return Ok((
                pattern,
                format!("{}$1", digits_to_prepend.replace('$', "$$")),
            ));
        }
    };
    let which = if exact {
        "ExactLength"
    } else {
        "AtLeastLength"
    };
    if length > MAX_LENGTH {
        return Err(format!("{which} must be at most {MAX_LENGTH}"));
    }
    let sw: Vec<char> = starts_with.chars().collect();
    let c = sw.len() as u32;
    if c > length {
        return Err(format!(
            "StartsWith \"{starts_with}\" is longer than {which} {length}"
        ));
    }
    if digits_to_strip > length {
        return Err(format!(
            "DigitsToStrip {digits_to_strip} is more than {which} {length}"
        ));
    }
    let strip_sw = digits_to_strip.min(c) as usize;
    let mut pattern = String::from("^");
    pattern.push_str(&escape(&sw[..strip_sw]));
    let strip_digits = digits_to_strip.saturating_sub(c);
    if strip_digits > 0 {
        pattern.push_str(&format!(r"\d{{{strip_digits}}}"));
    }
    pattern.push('(');
    pattern.push_str(&escape(&sw[strip_sw..]));
    let rest = length - digits_to_strip.max(c);
    if exact {
        if rest > 0 {
            pattern.push_str(&format!(r"\d{{{rest}}}"));
        }
    } else {
        match rest {
            0 => pattern.push_str(r"\d*"),
            1 => pattern.push_str(r"\d+"),
            n => pattern.push_str(&format!(r"\d{{{}}}\d+", n - 1)),
        }
    }
    pattern.push_str(")$");
    let translation = format!("{}$1", digits_to_prepend.replace('$', "$$"));
    Ok((pattern, translation))
}

/// .NET's Regex.Escape.
fn escape(chars: &[char]) -> String {
    let mut out = String::with_capacity(chars.len() * 2);
    for &c in chars {
        match c {
            '\n' => out.push_str(r"\n"),
            '\r' => out.push_str(r"\r"),
            '\t' => out.push_str(r"\t"),
            '\x0C' => out.push_str(r"\f"),
            ' ' | '#' | '$' | '(' | ')' | '*' | '+' | '.' | '?' | '[' | '\\' | '^' | '{' | '|' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}
