//! Unit tests: .NET replacement and pattern semantics, the cookbook examples,
//! New-CsVoiceRegex, priorities, route candidates, failover, translation, refusals with
//! positions, and random patterns that must never panic.

use std::sync::Arc;

use crate::*;

fn rep(pattern: &str, input: &str, translation: &str) -> Option<String> {
    Pattern::new(pattern)
        .unwrap_or_else(|e| panic!("{pattern}: {e}"))
        .replace(input, translation)
}

fn matches(pattern: &str, input: &str) -> bool {
    Pattern::new(pattern)
        .unwrap_or_else(|e| panic!("{pattern}: {e}"))
        .is_match(input)
}

fn refused(pattern: &str) -> PatternError {
    match Pattern::new(pattern) {
        Ok(p) => panic!("{pattern} was accepted as {}", p.program_text()),
        Err(e) => e,
    }
}

#[test]
fn replacement_follows_dotnet() {
    let ten = r"^(1)(2)(3)(4)(5)(6)(7)(8)(9)(0)$";
    let table: &[(&str, &str, &str, &str)] = &[
        // pattern, input, translation, expected
        (r"^(\d+)$", "42", "$1a", "42a"), // $1 then a letter: group 1, then "a"
        (r"^(\d)$", "7", "$10", "$10"), // no group 10: the whole "$10" is literal (.NET, not ECMAScript)
        (r"^(\d)$", "7", "${1}0", "70"), // braces end the number
        (ten, "1234567890", "$10", "0"), // group 10 exists: greedy digits
        (ten, "1234567890", "$1", "1"),
        (ten, "1234567890", "$11", "$11"), // no group 11: literal, not $1 then "1"
        (ten, "1234567890", "${10}${1}", "01"),
        (r"^(\d)$", "7", "$$1", "$1"), // $$ is a dollar
        (r"^(\d)$", "7", "$$", "$"),
        (r"^(\d)$", "7", "$01", "7"),    // leading zeros: group 1
        (r"^(\d)$", "7", "$0$00", "77"), // group 0, the whole match
        (r"^(\d)$", "7", "$&!", "7!"),
        (r"^(\d)$", "7", "x$", "x$"), // a final $ is literal
        (r"^(\d)$", "7", "$x", "$x"), // unknown $ is literal
        (r"^(\d)$", "7", "${}", "${}"),
        (r"^(\d)$", "7", "${1", "${1"), // unterminated
        (r"^(\d)$", "7", "${", "${"),
        (r"^(\d)$", "7", "$2", "$2"), // names no group: literal
        (r"^(?<area>\d{3})(\d{4})$", "4255550", "$1", "5550"), // unnamed groups come first
        (r"^(?<area>\d{3})(\d{4})$", "4255550", "$2", "425"), // then named ones
        (
            r"^(?<area>\d{3})(\d{4})$",
            "4255550",
            "${area}-$1",
            "425-5550",
        ),
        (r"^(?<area>\d{3})(\d{4})$", "4255550", "${nope}", "${nope}"),
        (r"^(?<area>\d{3})(\d{4})$", "4255550", "${area", "${area"),
        (r"^(?'n1'\d)$", "7", "${n1}", "7"),
        (r"^(a)?(\d+)$", "55", "[$1]$2", "[]55"), // group that did not take part
        (r"5+", "1555x", "<$`|$&|$'>", "1<1|555|x>x"), // before, match, after
        (r"(\d)(x)?", "5", "[$+]", "[]"),         // $+ is the highest-numbered group
        (r"(\d)(x)?", "5x", "[$+]", "[x]"),
        (r"\d+", "a12b", "[$+]", "a[12]b"), // no group: the match
        (r"\d+", "a12b", "[$_]", "a[a12b]b"), // the whole input
        (r"\d", "a1b2", "X", "aXb2"),
        (r"^(a){0}(b)$", "b", "[$1][$2]", "[][b]"), // a group repeated zero times keeps its number
        (r"^(?:(a)|b)+$", "ab", "[$1]", "[a]"),     // the last capture stays
        (r"^(?<x>a)(?<y>b)(c)$", "abc", "$1$2$3$+", "cabb"), // the first match only
        (r"555", "4255550100", "-", "42-50100"),    // no implicit anchors
        (r"(?n)^(1)(?<rest>\d+)$", "1425", "$1", "425"), // (?n): plain groups do not capture
    ];
    for &(pattern, input, translation, expected) in table {
        assert_eq!(
            rep(pattern, input, translation).as_deref(),
            Some(expected),
            "{pattern} on {input} with {translation}"
        );
    }
    assert_eq!(rep(r"^(\d{4})$", "12345", "$1"), None);
}

#[test]
fn cookbook_examples() {
    assert_eq!(
        rep(r"^(\d{4})$", "0100", "+1425555$1").as_deref(),
        Some("+14255550100")
    );
    // As the issue writes it, the rule drops the leading 1 (.NET gives exactly this)...
    assert_eq!(
        rep(r"^1(\d{10})$", "14255550100", "+$1").as_deref(),
        Some("+4255550100")
    );
    // ...the usual form keeps the country code.
    assert_eq!(
        rep(r"^1(\d{10})$", "14255550100", "+1$1").as_deref(),
        Some("+14255550100")
    );
    assert_eq!(
        rep(r"^011(\d*)$", "01144207946000", "+$1").as_deref(),
        Some("+44207946000")
    );
    assert_eq!(
        rep(r"^(\d{11})$", "14255550100", "+$1").as_deref(),
        Some("+14255550100")
    );
    // Outbound translation's default rule.
    assert_eq!(
        rep(r"^\+(\d*)$", "+14255550100", "$1").as_deref(),
        Some("14255550100")
    );
    assert_eq!(rep(r"^(\d{4})$", "+14255550100", "+1425555$1"), None);
}

#[test]
fn patterns_follow_dotnet() {
    // `$` and `\Z` also match before a final newline; `\z` does not.
    assert!(matches(r"^\d+$", "123\n"));
    assert!(matches(r"^\d+\Z", "123\n"));
    assert!(!matches(r"^\d+\z", "123\n"));
    assert!(!matches(r"^\d+$", "123\n\n"));
    assert_eq!(rep(r"^(\d+)$", "123\n", "[$1]").as_deref(), Some("[123]\n"));
    // Multiline.
    assert!(matches(r"(?m)^2$", "1\n2\n3"));
    assert!(!matches(r"^2$", "1\n2\n3"));
    // What is not a quantifier is literal.
    assert!(matches(r"^a{,3}$", "a{,3}"));
    assert!(matches(r"^a{$", "a{"));
    assert!(matches(r"^a{1,x}$", "a{1,x}"));
    assert!(matches(r"^]}$", "]}"));
    assert!(matches(r"^\d{2,}$", "123"));
    // Classes: a leading ], subtraction, literal [, escapes, .NET's \w.
    assert!(matches(r"^[]a]+$", "]a]"));
    assert!(matches(r"^[^]]$", "x"));
    assert!(!matches(r"^[^]]$", "]"));
    assert!(matches(r"^[a-z-[aeiou]]+$", "bcd"));
    assert!(!matches(r"^[a-z-[aeiou]]+$", "bad"));
    assert!(matches(r"^[^a-z-[0-9]]$", "#"));
    assert!(!matches(r"^[^a-z-[0-9]]$", "5"));
    assert!(matches(r"^[[]$", "["));
    assert!(matches(r"^[a\-z]+$", "-az"));
    assert!(matches(r"^[\d*#]+$", "12*#"));
    assert!(matches(r"^[\d-z]+$", "1-z")); // after a class escape, - is literal
    assert!(matches(r"^[\b]$", "\u{8}"));
    assert!(matches(r"^\w+$", "a_1é"));
    assert!(!matches(r"^\w$", "\u{2160}")); // ROMAN NUMERAL ONE (Nl) is not a .NET word character
    assert!(matches(r"^\d$", "\u{663}")); // ARABIC-INDIC DIGIT THREE is \d in .NET
    assert!(matches(r"^\s$", "\u{85}"));
    assert!(matches(r"^\p{Lu}\p{Ll}$", "Ab"));
    assert!(matches(r"^\P{N}$", "x"));
    assert!(matches(r"(?i)^\p{Lu}$", "a"));
    // Escapes: octal, hex, unicode, control.
    assert!(matches(r"^\101$", "A"));
    assert!(matches(r"^\12$", "\n")); // no group 12: octal
    assert!(matches(r"^\x41\u0042\cC$", "AB\u{3}"));
    assert!(matches(r"^\+1$", "+1"));
    assert!(matches(r"^\*\#$", "*#"));
    // Backreferences, forward and named; a group that did not take part fails them.
    assert!(matches(r"^(\d)\1$", "55"));
    assert!(!matches(r"^(\d)\1$", "56"));
    assert!(matches(r"^(?<d>\d)\k<d>$", "77"));
    assert!(matches(r"^(?<d>\d)\<d>$", "77"));
    assert!(!matches(r"^(a)?\1b$", "b"));
    assert!(matches(r"(?i)^(a)\1$", "aA"));
    // Lookarounds, variable-length lookbehind, atomic groups.
    assert!(!matches(r"^(?!911$)(\d{3})$", "911"));
    assert!(matches(r"^(?!911$)(\d{3})$", "912"));
    assert_eq!(
        rep(r"(?<=^\+1)(\d{3})", "+14255550100", "($1)").as_deref(),
        Some("+1(425)5550100")
    );
    assert!(matches(r"(?<=^\+\d+)x", "+12x"));
    assert!(matches(r"(?<!\d)5", "a5"));
    assert!(matches(r"(a)b+(?<=\1b+)c", "abbc"));
    assert!(!matches(r"(a)b+(?<=\1b+)c", "cbbc"));
    assert!(!matches(r"^a(?>bc|b)c$", "abc"));
    // Options: case, whitespace mode, scoped and inline.
    assert!(matches(r"(?i)^ext(\d+)$", "EXT12"));
    assert!(!matches(r"^ext(\d+)$", "EXT12"));
    assert!(matches(r"^(?i:ext)X$", "EXTX"));
    assert!(!matches(r"^(?i:ext)X$", "EXTx"));
    assert!(matches(r"^a(?i)b|c$", "C"));
    assert_eq!(
        rep("(?x) ^ 1 (\\d{10}) $  # national\n", "14255550100", "+1$1").as_deref(),
        Some("+14255550100")
    );
    assert!(matches(r"(?x)^[ ]$", " ")); // whitespace in a class counts even in x mode
    assert!(matches(r"^a(?#comment)*$", "aaa")); // a comment sits between an item and its quantifier
    assert!(matches(r"(?s)^.$", "\n"));
    assert!(!matches(r"^.$", "\n"));
    // Word boundaries with .NET's word characters; \G is the start.
    assert!(matches(r"\b9\b", "a 9 b"));
    assert!(!matches(r"\b9\b", "a99b"));
    assert!(matches(r"\B9", "a9"));
    assert!(matches(r"\G1", "12"));
    assert!(!matches(r"\G2", "12"));
    // A quantifier on an assertion.
    assert!(matches(r"^*a", "a"));
    assert!(matches(r"(?=b)?a", "a"));
    assert!(matches(r"^(?:)*a(?:(?=a))+", "aa"));
}

#[test]
fn literal_prefix_is_only_a_shortcut() {
    let prefix = |p: &str| Pattern::new(p).unwrap().prefix().to_string();
    assert_eq!(prefix(r"^(425\d{4})$"), "425");
    assert_eq!(prefix(r"^\+1(?:425)?(\d{7})$"), "+1");
    assert_eq!(prefix(r"^011(\d*)$"), "011");
    assert_eq!(prefix(r"^(?i)ab"), "");
    assert_eq!(prefix(r"^1|^2"), "");
    assert_eq!(prefix(r"(?m)^1"), "");
    assert_eq!(prefix(r"1(\d)"), "");
    assert_eq!(prefix(r"^12*"), "1");
    let bounds = |p: &str| Pattern::new(p).unwrap().bounds();
    assert_eq!(bounds(r"^(\d{4})$"), (4, Some(5))); // `$` allows a final newline
    assert_eq!(bounds(r"^(\d{4})\z"), (4, Some(4)));
    assert_eq!(bounds(r"^1(\d{10})$"), (11, Some(12)));
    assert_eq!(bounds(r"^011(\d*)$"), (3, None));
    assert_eq!(bounds(r"(\d{4})$"), (4, None)); // not anchored at the start
    assert_eq!(bounds(r"^(a|bcd)(?=x)\1$"), (1, None));
    assert_eq!(bounds(r"^(?:ab){2,3}$"), (4, Some(7)));
    assert!(matches(r"^(\d{4})$", "1234\n"));
    assert!(matches(r"^\w{2}$", "éé")); // 4 bytes, 2 characters
    assert!(!matches(r"^\w{2}$", "ééé"));
    assert!(matches(r"^1|^2", "2"));
    assert!(matches(r"^12*$", "1"));
    assert!(!matches(r"^(425\d{4})$", "4265550"));
}

#[test]
fn refusals_carry_positions() {
    let table: &[(&str, usize)] = &[
        (r"^(\d{4}$", 1),
        (r"\d{4})", 5),
        (r"*1", 0),
        (r"a**", 2),
        (r"a{2}{3}", 4),
        (r"x{2,1}", 1),
        (r"[a-", 0),
        (r"a\", 1),
        (r"\q", 0),
        (r"\2(a)", 0),
        (r"\k<x>(?<y>a)", 0),
        (r"\kx", 0),
        (r"(?<1>a)", 3),
        (r"(?<a-b>x)", 3),
        (r"(?(1)a|b)", 0),
        (r"(?z)", 0),
        (r"(?<a>x)(?<a>y)", 10),
        (r"\p{IsGreek}", 0),
        (r"\p{Foo}", 0),
        (r"\p{L", 0),
        (r"\x4", 0),
        (r"\uD83D", 0),
        (r"[z-a]", 3),
        (r"[a-\d]", 3),
        (r"[a-z-[b]c]", 8),
        (r"(?#never closed", 0),
        (r"a{1001}", 1),
        (r"\c", 0),
        (r"ab\c1", 2),
    ];
    for &(pattern, position) in table {
        let e = refused(pattern);
        assert_eq!(e.position, position, "{pattern}: {e}");
        assert!(
            e.to_string()
                .starts_with(&format!("at position {position}: ")),
            "{e}"
        );
    }
    let deep = format!("{}a{}", "(".repeat(21), ")".repeat(21));
    assert!(Pattern::new(&format!("{}a{}", "(".repeat(20), ")".repeat(20))).is_ok());
    assert!(refused(&deep).message.contains("nested"));
    assert!(check_translation("+1$1").is_ok());
    assert!(check_translation("$99999999999").is_err());
    assert_eq!(check_translation("ab$99999999999").unwrap_err().position, 2);
    assert!(check_translation("${name}$$ $x $").is_ok());
}

fn rule(name: &str, pattern: &str, translation: &str, priority: i64) -> Rule {
    Rule {
        name: name.into(),
        pattern: pattern.into(),
        translation: translation.into(),
        priority,
        is_internal_extension: false,
    }
}

#[test]
fn normalization_by_priority() {
    let rules = vec![
        rule("Keep All", r"^(\d{11})$", "+$1", 3),
        rule("Ext", r"^(\d{4})$", "+1425555$1", 1),
        rule("broken", r"^(\d{4}$", "x", 0), // invalid: never matches
        rule("Ext first tie", r"^(\d{4})$", "tie-a$1", 2),
        rule("Ext second tie", r"^(\d{4})$", "tie-b$1", 2),
        rule("National", r"^1(\d{10})$", "+1$1", 2),
    ];
    let n = normalize(&rules, "0100").unwrap();
    assert_eq!(
        (n.number.as_str(), n.rule.name.as_str()),
        ("+14255550100", "Ext")
    );
    // Priority 2 comes before 3: National wins over Keep All.
    let n = normalize(&rules, "14255550100").unwrap();
    assert_eq!(
        (n.number.as_str(), n.rule.name.as_str()),
        ("+14255550100", "National")
    );
    assert!(normalize(&rules, "+14255550100").is_none());
    // Ties keep the order given.
    let ties = vec![
        rule("a", r"^(\d{4})$", "A$1", 5),
        rule("b", r"^(\d{4})$", "B$1", 5),
        rule("c", r"^(\d{4})$", "C$1", 4),
    ];
    assert_eq!(normalize(&ties, "1234").unwrap().rule.name, "c");
    assert_eq!(normalize(&ties[..2], "1234").unwrap().number, "A1234");
    assert!(normalize(&[], "1234").is_none());
}

#[test]
fn new_csvoiceregex() {
    let r = |sw: &str, exact, at_least, strip, prepend: &str| {
        voice_regex(sw, exact, at_least, strip, prepend).unwrap()
    };
    // The cmdlet documentation's examples.
    assert_eq!(
        r("", Some(7), None, 3, ""),
        (r"^\d{3}(\d{4})$".to_string(), "$1".to_string())
    );
    assert_eq!(
        r("1", None, Some(7), 0, ""),
        (r"^(1\d{5}\d+)$".to_string(), "$1".to_string())
    );
    // StartsWith counts in the length.
    assert_eq!(
        r("425", Some(7), None, 0, "+1"),
        (r"^(425\d{4})$".to_string(), "+1$1".to_string())
    );
    assert_eq!(
        r("9", Some(11), None, 1, ""),
        (r"^9(\d{10})$".to_string(), "$1".to_string())
    );
    assert_eq!(
        r("425", Some(10), None, 1, ""),
        (r"^4(25\d{7})$".to_string(), "$1".to_string())
    );
    assert_eq!(
        r("+1", Some(12), None, 2, "$"),
        (r"^\+1(\d{10})$".to_string(), "$$$1".to_string())
    );
    assert_eq!(
        r("", None, Some(1), 0, ""),
        (r"^(\d+)$".to_string(), "$1".to_string())
    );
    assert_eq!(
        r("011", None, Some(3), 3, "+"),
        (r"^011(\d*)$".to_string(), "+$1".to_string())
    );
    // What it writes works.
    let (p, t) = r("425", Some(7), None, 0, "+1");
    assert_eq!(rep(&p, "4255550", &t).as_deref(), Some("+14255550"));
    let (p, t) = r("+1", Some(12), None, 2, "$");
    assert_eq!(rep(&p, "+14255550100", &t).as_deref(), Some("$4255550100"));
    let (p, t) = r("1", None, Some(7), 0, "+");
    assert_eq!(rep(&p, "1425555", &t).as_deref(), Some("+1425555"));
    assert_eq!(rep(&p, "142555", &t), None);
    // Bad combinations.
    assert!(voice_regex("", Some(7), Some(7), 0, "").is_err());
    // neither length: any digits after StartsWith (the cookbook's international rule)
    assert_eq!(
        voice_regex("011", None, None, 3, "+").unwrap(),
        (r"^011(\d*)$".to_string(), "+$1".to_string())
    );
    assert!(voice_regex("1", None, None, 2, "").is_err());
    assert!(voice_regex("12345", Some(4), None, 0, "").is_err());
    assert!(voice_regex("", Some(4), None, 5, "").is_err());
    assert!(voice_regex("", Some(100_000), None, 0, "").is_err());
}

fn route(name: &str, pattern: &str, usages: &[&str], priority: i64) -> Route {
    Route {
        name: name.into(),
        number_pattern: pattern.into(),
        pstn_usages: usages.iter().map(|u| u.to_string()).collect(),
        gateways: vec![format!("PstnGateway:{name}.example.com")],
        priority,
        suppress_caller_id: false,
        alternate_caller_id: String::new(),
    }
}

#[test]
fn route_candidates_in_order() {
    let routes = vec![
        route("intl", r"^\+(?!1)\d+$", &["International"], 0),
        route("us-b", r"^\+1\d{10}$", &["Long Distance"], 2),
        route("us-a", r"^\+1\d{10}$", &["Long Distance"], 1),
        route("local", r"^\+1425\d{7}$", &["Local", "Long Distance"], 5),
        route("tie", r"^\+1\d{10}$", &["Long Distance"], 1),
        route("broken", r"^(\+1", &["Local"], 0),
        route("other-usage", r"^\+1\d{10}$", &["Premium"], 0),
    ];
    let usages: Vec<String> = ["Local", "Long Distance", "International"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let got: Vec<(&str, &str)> = candidates(&usages, &routes, "+14255550100")
        .iter()
        .map(|c| (c.usage, c.route.name.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("Local", "local"),
            ("Long Distance", "us-a"),
            ("Long Distance", "tie"),
            ("Long Distance", "us-b"),
            ("Long Distance", "local")
        ]
    );
    let got: Vec<&str> = candidates(&usages, &routes, "+442079460000")
        .iter()
        .map(|c| c.route.name.as_str())
        .collect();
    assert_eq!(got, vec!["intl"]);
    assert!(candidates(&usages[..1], &routes, "+442079460000").is_empty());
    assert!(candidates(&[], &routes, "+14255550100").is_empty());
}

#[test]
fn failover_answers() {
    for s in [
        None,
        Some(408),
        Some(500),
        Some(502),
        Some(503),
        Some(504),
        Some(599),
    ] {
        assert!(fails_over(s), "{s:?}");
    }
    for s in [
        Some(486),
        Some(600),
        Some(603),
        Some(404),
        Some(403),
        Some(480),
        Some(200),
        Some(487),
        Some(606),
    ] {
        assert!(!fails_over(s), "{s:?}");
    }
}

#[test]
fn trunk_translation() {
    let rules = vec![
        rule("Default", r"^\+(\d*)$", "$1", 1),
        rule("UK", r"^\+44(\d+)$", "0$1", 0),
    ];
    assert_eq!(translate(&rules, "+442079460000"), "02079460000");
    assert_eq!(translate(&rules, "+14255550100"), "14255550100");
    assert_eq!(translate(&rules, "4255550100"), "4255550100");
    assert_eq!(translate(&[], "+1"), "+1");
}

#[test]
fn compiled_patterns_are_shared() {
    let a = compiled(r"^(\d{5})$").unwrap();
    let b = compiled(r"^(\d{5})$").unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    assert!(compiled(r"^(\d{5}$").is_none());
    assert_eq!(a.as_str(), r"^(\d{5})$");
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

#[test]
fn random_patterns_never_panic() {
    let pieces = [
        "(", ")", "(?:", "(?<n>", "(?'m'", "(?=", "(?!", "(?<=", "(?<!", "(?>", "(?i)", "(?x)",
        "(?n)", "(?s)", "(?m)", "(?-i:", "[", "]", "[^", "-", "-[", "\\", "\\d", "\\w", "\\s",
        "\\b", "\\B", "\\p{L}", "\\P{Nd}", "\\p{", "\\1", "\\2", "\\12", "\\k<n>", "\\<m>", "\\0",
        "\\x4", "\\u00e9", "\\cA", "\\G", "\\Z", "\\z", "\\A", "^", "$", ".", "|", "*", "+", "?",
        "??", "{", "}", "{2}", "{1,3}", "{2,}", "{,2}", "#", " ", "\n", "a", "1", "+", "é", "😀",
        "(?#c)", "(?(", "\\", "\\\\",
    ];
    let tpieces = [
        "$",
        "$1",
        "$10",
        "${n}",
        "${1}",
        "${",
        "}",
        "$$",
        "$&",
        "$`",
        "$'",
        "$+",
        "$_",
        "$99999999999",
        "a",
        "+",
        "é",
        "{",
        "$0",
    ];
    let inputs = [
        "",
        "1",
        "14255550100",
        "+14255550100\n",
        "abc",
        "aAé😀 9",
        "\n\n",
        "))((",
    ];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut accepted = 0;
    // CONFAB_VOICE_FUZZ=N runs N rounds instead (by hand, in release).
    let rounds: usize = std::env::var("CONFAB_VOICE_FUZZ")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6000);
    for _ in 0..rounds {
        let len = 1 + rng.next() % 10;
        let pattern: String = (0..len).map(|_| rng.pick(&pieces)).collect();
        let tlen = rng.next() % 5;
        let translation: String = (0..tlen).map(|_| rng.pick(&tpieces)).collect();
        let _ = check_translation(&translation);
        match Pattern::new(&pattern) {
            Ok(p) => {
                accepted += 1;
                for input in inputs {
                    let m = p.is_match(input);
                    let r = p.replace(input, &translation);
                    assert_eq!(m, r.is_some(), "{pattern:?} on {input:?}");
                }
            }
            Err(e) => assert!(e.position <= pattern.chars().count(), "{pattern:?}: {e}"),
        }
        // Mutations of real rules: cut, doubled or swapped characters.
        let base = rng.pick(&[
            r"^(\d{4})$",
            r"^1(\d{10})$",
            r"^011(\d*)$",
            r"^(?<a>\d{3})(\d{4})$",
            r"^[a-z-[aeiou]]+(?<=x)$",
        ]);
        let chars: Vec<char> = base.chars().collect();
        let cut = (rng.next() % chars.len() as u64) as usize;
        let mutated: String = match rng.next() % 3 {
            0 => chars[..cut].iter().collect(),
            1 => chars[..cut]
                .iter()
                .chain(chars[cut..].iter())
                .chain(chars[cut..].iter())
                .collect(),
            _ => chars[cut..].iter().chain(chars[..cut].iter()).collect(),
        };
        if let Ok(p) = Pattern::new(&mutated) {
            let _ = p.replace("4255550100", &translation);
        }
    }
    assert!(accepted > 100, "only {accepted} random patterns were valid");
}
