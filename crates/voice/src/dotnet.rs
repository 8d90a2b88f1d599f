//! .NET regular expressions and replacement strings, as Lync applies them.
//!
//! Lync's `Pattern`, `NumberPattern` and `Translation` are .NET regular expressions and
//! replacement strings. confab parses the .NET syntax itself (the rules of .NET's
//! `RegexParser`: what is a quantifier, an octal escape or a backreference, how groups are
//! numbered), refuses what .NET refuses and what confab cannot run — always with the
//! position of the offending construct — and translates the rest into an equivalent
//! `fancy-regex` program, written so that every construct means what it means in .NET (no
//! implicit anchors, `$` before a final newline, `\w`/`\s`/`\b` with .NET's character sets,
//! .NET's group numbering: unnamed groups first, then named ones). Replacement strings are
//! expanded by .NET's rules (`RegexParser.ScanDollar`), see [`Pattern::replace`].
//!
//! What is supported and what is refused is listed in docs/voice.md ("Numbers:
//! normalization and .NET regular expressions").

use std::fmt;
use std::sync::{Arc, OnceLock, RwLock};

use rustc_hash::FxHashMap;

/// An invalid pattern or translation: `position` is the 0-based character index where the
/// offending construct starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    pub position: usize,
    pub message: String,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at position {}: {}", self.position, self.message)
    }
}

impl std::error::Error for PatternError {}

fn err<T>(position: usize, message: impl Into<String>) -> Result<T, PatternError> {
    Err(PatternError {
        position,
        message: message.into(),
    })
}

/// Largest `{n,m}` count confab accepts (.NET accepts up to 2^31-1; phone numbers never need
/// more than a few dozen).
const MAX_REPEAT: u32 = 1000;
/// Deepest nesting of groups and class subtractions.
const MAX_DEPTH: usize = 20;
/// Longest pattern accepted, in characters.
const MAX_PATTERN_CHARS: usize = 4096;
/// Bound on backtracking steps per match; a match that needs more counts as no match.
const BACKTRACK_LIMIT: usize = 200_000;

/// A compiled .NET regular expression. Compile once, match many times.
#[derive(Debug, Clone)]
pub struct Pattern {
    source: String,
    /// The program for inputs that do not end with '\n' (`$` is `\z` there).
    fast: fancy_regex::Regex,
    /// For inputs that end with '\n' when the pattern has a non-multiline `$` or `\Z`.
    exact: Option<fancy_regex::Regex>,
    /// .NET group number → fancy-regex group index (index 0 is the whole match).
    slots: Box<[usize]>,
    /// Group names and their .NET numbers.
    names: Box<[(Box<str>, usize)]>,
    /// Text every match starts the input with (`^425...`): a cheap test before the program.
    prefix: Box<str>,
    /// The fewest characters a match takes; and, when the pattern is anchored at both ends,
    /// the most characters the input may have.
    min_chars: usize,
    max_input_chars: Option<usize>,
}

impl Pattern {
    /// Parses and compiles a .NET pattern. Refuses what .NET refuses or confab cannot run,
    /// with the position of the offending construct.
    pub fn new(pattern: &str) -> Result<Pattern, PatternError> {
        let chars: Vec<char> = pattern.chars().collect();
        if chars.len() > MAX_PATTERN_CHARS {
            return err(
                MAX_PATTERN_CHARS,
                format!("patterns longer than {MAX_PATTERN_CHARS} characters are not supported by confab"),
            );
        }
        // Pass 1 counts the groups (as .NET's CountCaptures does) so that pass 2 can tell a
        // backreference from an octal escape and number named groups after unnamed ones.
        let mut scan = Parser::new(&chars, None);
        scan.parse_root()?;
        let info = GroupInfo {
            unnamed: scan.unnamed,
            names: scan.names.iter().map(|(n, _)| n.clone()).collect(),
        };
        let mut parser = Parser::new(&chars, Some(&info));
        let root = parser.parse_root()?;

        // fancy-regex numbers the groups in the order they are written.
        let total = 1 + info.unnamed + info.names.len();
        let mut order = Vec::with_capacity(total);
        captures_in_order(&root, &mut order);
        let mut slots = vec![0; total];
        for (i, &n) in order.iter().enumerate() {
            if let Some(s) = slots.get_mut(n) {
                *s = i + 1;
            }
        }
        let mut emitter = Emitter {
            out: String::with_capacity(chars.len() * 4),
            exact: false,
            slots,
        };
        emitter.node(&root);
        let fast_src = std::mem::take(&mut emitter.out);
        let fast = compile(&fast_src, &parser)?;
        let slots = emitter.slots.clone().into_boxed_slice();
        let exact = if parser.has_end_z {
            emitter.exact = true;
            emitter.node(&root);
            Some(compile(&emitter.out, &parser)?)
        } else {
            None
        };
        let names = info
            .names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone().into_boxed_str(), 1 + info.unnamed + i))
            .collect();
        let mut prefix = String::new();
        if let Node::Concat(items) = &root {
            if let [Node::Begin, rest @ ..] = items.as_slice() {
                for item in rest {
                    if !literal_prefix(item, &mut prefix) {
                        break;
                    }
                }
            }
        }
        let (min_chars, max_chars) = width(&root);
        let max_input_chars = match &root {
            Node::Concat(items) if matches!(items.first(), Some(Node::Begin)) => match items.last()
            {
                Some(Node::End) => max_chars,
                Some(Node::EndZ) => max_chars.map(|m| m + 1),
                _ => None,
            },
            _ => None,
        };
        Ok(Pattern {
            source: pattern.to_owned(),
            fast,
            exact,
            slots,
            names,
            prefix: prefix.into_boxed_str(),
            min_chars,
            max_input_chars,
        })
    }

    /// The pattern as given.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Cheap necessary conditions, tested before the program runs.
    fn may_match(&self, input: &str) -> bool {
        if input.len() < self.min_chars || !input.starts_with(&*self.prefix) {
            return false; // (a character is at least one byte)
        }
        match self.max_input_chars {
            Some(max) if input.len() > max => input.chars().count() <= max,
            _ => true,
        }
    }

    fn program(&self, input: &str) -> &fancy_regex::Regex {
        match &self.exact {
            Some(exact) if input.ends_with('\n') => exact,
            _ => &self.fast,
        }
    }

    /// Whether the pattern matches anywhere in `input` (no implicit anchors).
    pub fn is_match(&self, input: &str) -> bool {
        if !self.may_match(input) {
            return false;
        }
        self.program(input).is_match(input).unwrap_or(false)
    }

    /// .NET Regex.Replace of the FIRST match only semantics as Lync applies a rule: None when no match.
    ///
    /// The text before and after the match is kept; the match is replaced by `translation`
    /// expanded by .NET's rules: `$n`/`${n}` (the longest run of digits; if no group has that
    /// number the text stays literal), `${name}`, `$$`, `$&`, `` $` ``, `$'`, `$+` (the group
    /// with the highest number), `$_` (the whole input); any other `$` is literal; a group that
    /// did not take part gives "".
    pub fn replace(&self, input: &str, translation: &str) -> Option<String> {
        if !self.may_match(input) {
            return None;
        }
        let caps = self.program(input).captures(input).ok()??;
        let whole = caps.get(0)?;
        let mut out = String::with_capacity(input.len() + translation.len() + 8);
        out.push_str(&input[..whole.start()]);
        self.expand(
            &caps,
            input,
            whole.start(),
            whole.end(),
            translation,
            &mut out,
        );
        out.push_str(&input[whole.end()..]);
        Some(out)
    }

    fn group<'t>(&self, caps: &fancy_regex::Captures<'t, str>, number: usize) -> &'t str {
        match self.slots.get(number) {
            Some(&slot) => caps.get(slot).map_or("", |m| m.as_str()),
            None => "",
        }
    }

    fn expand(
        &self,
        caps: &fancy_regex::Captures<'_, str>,
        input: &str,
        start: usize,
        end: usize,
        translation: &str,
        out: &mut String,
    ) {
        let t = translation.as_bytes();
        let mut i = 0;
        while i < t.len() {
            let Some(off) = t[i..].iter().position(|&b| b == b'$') else {
                out.push_str(&translation[i..]);
                break;
            };
            out.push_str(&translation[i..i + off]);
            let dollar = i + off;
            match scan_dollar(
                translation,
                dollar + 1,
                |n| n < self.slots.len(),
                |name| self.name_number(name),
            ) {
                (Dollar::Group(n), next) => {
                    out.push_str(self.group(caps, n));
                    i = next;
                }
                (Dollar::Sign, next) => {
                    out.push('$');
                    i = next;
                }
                (Dollar::Left, next) => {
                    out.push_str(&input[..start]);
                    i = next;
                }
                (Dollar::Right, next) => {
                    out.push_str(&input[end..]);
                    i = next;
                }
                (Dollar::Last, next) => {
                    out.push_str(self.group(caps, self.slots.len() - 1));
                    i = next;
                }
                (Dollar::Whole, next) => {
                    out.push_str(input);
                    i = next;
                }
                (Dollar::Literal | Dollar::Overflow, _) => {
                    out.push('$');
                    i = dollar + 1;
                }
            }
        }
    }

    fn name_number(&self, name: &str) -> Option<usize> {
        self.names
            .iter()
            .find(|(n, _)| &**n == name)
            .map(|&(_, num)| num)
    }

    #[cfg(test)]
    pub(crate) fn program_text(&self) -> &str {
        self.fast.as_str()
    }

    #[cfg(test)]
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    #[cfg(test)]
    pub(crate) fn bounds(&self) -> (usize, Option<usize>) {
        (self.min_chars, self.max_input_chars)
    }
}

/// Checks a replacement string the way .NET parses it. .NET accepts nearly everything (a
/// `$` that names no group is literal text); it refuses a group number above 2^31-1.
pub fn check_translation(translation: &str) -> Result<(), PatternError> {
    let mut i = 0;
    while let Some(off) = translation.as_bytes()[i..].iter().position(|&b| b == b'$') {
        let dollar = i + off;
        let (what, next) = scan_dollar(translation, dollar + 1, |_| false, |_| None);
        if let Dollar::Overflow = what {
            let position = translation[..dollar].chars().count();
            return err(
                position,
                "Capture group numbers must be less than or equal to Int32.MaxValue.",
            );
        }
        i = match what {
            Dollar::Literal => dollar + 1,
            _ => next,
        };
    }
    Ok(())
}

enum Dollar {
    Group(usize),
    Sign,
    Left,
    Right,
    Last,
    Whole,
    Literal,
    Overflow,
}

/// .NET's ScanDollar (without RegexOptions.ECMAScript): `pos` is just after the `$`.
/// Returns what the `$` stands for and the byte index after it.
fn scan_dollar(
    t: &str,
    pos: usize,
    is_slot: impl Fn(usize) -> bool,
    name: impl Fn(&str) -> Option<usize>,
) -> (Dollar, usize) {
    let b = t.as_bytes();
    if pos >= b.len() {
        return (Dollar::Literal, pos);
    }
    let mut p = pos;
    let mut ch = b[p];
    let angled = ch == b'{' && p + 1 < b.len();
    if angled {
        p += 1;
        ch = b[p];
    }
    if ch.is_ascii_digit() {
        let mut n: u64 = 0;
        while p < b.len() && b[p].is_ascii_digit() {
            n = n * 10 + u64::from(b[p] - b'0');
            if n > i32::MAX as u64 {
                return (Dollar::Overflow, p);
            }
            p += 1;
        }
        if angled {
            if p < b.len() && b[p] == b'}' {
                p += 1;
            } else {
                return (Dollar::Literal, pos);
            }
        }
        let n = n as usize;
        if is_slot(n) {
            return (Dollar::Group(n), p);
        }
        return (Dollar::Literal, pos);
    }
    if angled {
        let rest = &t[p..];
        let len: usize = rest
            .chars()
            .take_while(|&c| is_boundary_word_char(c))
            .map(char::len_utf8)
            .sum();
        if len > 0 {
            let cap = &rest[..len];
            let after = p + len;
            if after < b.len() && b[after] == b'}' {
                if let Some(n) = name(cap) {
                    return (Dollar::Group(n), after + 1);
                }
            }
        }
        return (Dollar::Literal, pos);
    }
    let what = match ch {
        b'$' => Dollar::Sign,
        b'&' => Dollar::Group(0),
        b'`' => Dollar::Left,
        b'\'' => Dollar::Right,
        b'+' => Dollar::Last,
        b'_' => Dollar::Whole,
        _ => return (Dollar::Literal, pos),
    };
    (what, p + 1)
}

fn compile(program: &str, parser: &Parser<'_>) -> Result<fancy_regex::Regex, PatternError> {
    fancy_regex::RegexBuilder::new(program)
        .backtrack_limit(BACKTRACK_LIMIT)
        .build()
        .map_err(|e| PatternError {
            position: parser.lookbehind_at.unwrap_or(0),
            message: format!("confab cannot run this pattern: {e}"),
        })
}

// ---------------------------------------------------------------------------------------
// Character classes of .NET.

/// .NET's `\w`: letters, non-spacing marks, decimal digits, connector punctuation.
const WORD: &str = r"\p{Letter}\p{Nonspacing_Mark}\p{Decimal_Number}\p{Connector_Punctuation}";
/// .NET's `\s` (char.IsWhiteSpace): \t \n \v \f \r, U+0085 and the separators.
const SPACE: &str = r"\x{9}-\x{D}\x{20}\x{85}\p{Separator}";
/// .NET's `\b` word characters: `\w` plus ZWNJ and ZWJ.
const BOUNDARY: &str =
    r"[\p{Letter}\p{Nonspacing_Mark}\p{Decimal_Number}\p{Connector_Punctuation}\x{200C}\x{200D}]";

/// .NET's general categories and the names fancy-regex/regex know them by.
const CATEGORIES: &[(&str, &str)] = &[
    ("L", "Letter"),
    ("Lu", "Uppercase_Letter"),
    ("Ll", "Lowercase_Letter"),
    ("Lt", "Titlecase_Letter"),
    ("Lm", "Modifier_Letter"),
    ("Lo", "Other_Letter"),
    ("M", "Mark"),
    ("Mn", "Nonspacing_Mark"),
    ("Mc", "Spacing_Mark"),
    ("Me", "Enclosing_Mark"),
    ("N", "Number"),
    ("Nd", "Decimal_Number"),
    ("Nl", "Letter_Number"),
    ("No", "Other_Number"),
    ("P", "Punctuation"),
    ("Pc", "Connector_Punctuation"),
    ("Pd", "Dash_Punctuation"),
    ("Ps", "Open_Punctuation"),
    ("Pe", "Close_Punctuation"),
    ("Pi", "Initial_Punctuation"),
    ("Pf", "Final_Punctuation"),
    ("Po", "Other_Punctuation"),
    ("S", "Symbol"),
    ("Sm", "Math_Symbol"),
    ("Sc", "Currency_Symbol"),
    ("Sk", "Modifier_Symbol"),
    ("So", "Other_Symbol"),
    ("Z", "Separator"),
    ("Zs", "Space_Separator"),
    ("Zl", "Line_Separator"),
    ("Zp", "Paragraph_Separator"),
    ("C", "Other"),
    ("Cc", "Control"),
    ("Cf", "Format"),
    ("Cs", "Surrogate"),
    ("Co", "Private_Use"),
    ("Cn", "Unassigned"),
];

/// .NET's RegexCharClass.IsBoundaryWordChar: `\w` plus U+200C and U+200D.
fn is_boundary_word_char(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphanumeric() || c == '_';
    }
    if c == '\u{200C}' || c == '\u{200D}' {
        return true;
    }
    static WORD_CHAR: OnceLock<fancy_regex::Regex> = OnceLock::new();
    let re = WORD_CHAR.get_or_init(|| {
        fancy_regex::Regex::new(&format!(r"\A[{WORD}]\z"))
            .expect("the word-character class compiles")
    });
    let mut buf = [0u8; 4];
    re.is_match(c.encode_utf8(&mut buf)).unwrap_or(false)
}

#[derive(Debug, Clone)]
enum Item {
    Range(char, char),
    Digit(bool),
    Word(bool),
    Space(bool),
    /// Long category names (several for Lu/Ll/Lt under IgnoreCase), negated?
    Cat(Vec<&'static str>, bool),
}

#[derive(Debug, Clone)]
struct Set {
    negated: bool,
    items: Vec<Item>,
    sub: Option<Box<Set>>,
}

impl Set {
    fn one(item: Item) -> Set {
        Set {
            negated: false,
            items: vec![item],
            sub: None,
        }
    }
}

// ---------------------------------------------------------------------------------------
// The syntax tree.

#[derive(Debug, Clone)]
enum Node {
    Empty,
    Char(char, bool),
    Set(Set, bool),
    /// `^` in multiline mode.
    Bol,
    /// `$` in multiline mode.
    Eol,
    /// `\A`, `^` and `\G` (confab only matches from the start of the input).
    Begin,
    /// `$` and `\Z`: the end, or before a final '\n'.
    EndZ,
    /// `\z`.
    End,
    /// `\b` (false) and `\B` (true).
    Boundary(bool),
    Backref(usize, bool),
    Group(Kind, Box<Node>),
    Concat(Vec<Node>),
    Alt(Vec<Node>),
    Repeat(Box<Node>, u32, Option<u32>, bool),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Capture(usize),
    NonCapture,
    Atomic,
    Ahead,
    NotAhead,
    Behind,
    NotBehind,
}

impl Node {
    fn is_assertion(&self) -> bool {
        match self {
            Node::Bol
            | Node::Eol
            | Node::Begin
            | Node::EndZ
            | Node::End
            | Node::Boundary(_)
            | Node::Empty => true,
            Node::Group(Kind::NonCapture | Kind::Atomic, inner) => inner.is_assertion(),
            Node::Group(k, _) => matches!(
                k,
                Kind::Ahead | Kind::NotAhead | Kind::Behind | Kind::NotBehind
            ),
            _ => false,
        }
    }

    fn has_capture(&self) -> bool {
        match self {
            Node::Group(Kind::Capture(_), _) => true,
            Node::Group(_, n) | Node::Repeat(n, ..) => n.has_capture(),
            Node::Concat(v) | Node::Alt(v) => v.iter().any(Node::has_capture),
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Opts {
    i: bool,
    m: bool,
    n: bool,
    s: bool,
    x: bool,
}

struct GroupInfo {
    unnamed: usize,
    names: Vec<String>,
}

struct Parser<'a> {
    p: &'a [char],
    pos: usize,
    opts: Opts,
    depth: usize,
    /// None in the counting pass.
    info: Option<&'a GroupInfo>,
    unnamed: usize,
    names: Vec<(String, usize)>,
    has_end_z: bool,
    lookbehind_at: Option<usize>,
}

impl<'a> Parser<'a> {
    fn new(p: &'a [char], info: Option<&'a GroupInfo>) -> Parser<'a> {
        Parser {
            p,
            pos: 0,
            opts: Opts::default(),
            depth: 0,
            info,
            unnamed: 0,
            names: Vec::new(),
            has_end_z: false,
            lookbehind_at: None,
        }
    }

    fn peek(&self) -> Option<char> {
        self.p.get(self.pos).copied()
    }

    fn at(&self, i: usize) -> Option<char> {
        self.p.get(i).copied()
    }

    fn parse_root(&mut self) -> Result<Node, PatternError> {
        let node = self.parse_alt(None)?;
        Ok(node)
    }

    /// .NET's ScanBlank: x-mode whitespace and `#` comments, and `(?#...)` comments.
    fn skip_blank(&mut self) -> Result<(), PatternError> {
        loop {
            if self.opts.x {
                while matches!(self.peek(), Some('\t' | '\n' | '\x0C' | '\r' | ' ')) {
                    self.pos += 1;
                }
            }
            if self.opts.x && self.peek() == Some('#') {
                while let Some(c) = self.peek() {
                    if c == '\n' {
                        break;
                    }
                    self.pos += 1;
                }
            } else if self.peek() == Some('(')
                && self.at(self.pos + 1) == Some('?')
                && self.at(self.pos + 2) == Some('#')
            {
                let start = self.pos;
                match self.p[self.pos..].iter().position(|&c| c == ')') {
                    Some(off) => self.pos += off + 1,
                    None => return err(start, "Unterminated (?#...) comment."),
                }
            } else {
                return Ok(());
            }
        }
    }

    fn is_true_quantifier(&self) -> bool {
        match self.peek() {
            Some('*' | '+' | '?') => true,
            Some('{') => {
                let mut i = self.pos + 1;
                let digits = |i: &mut usize| {
                    let s = *i;
                    while self.at(*i).is_some_and(|c| c.is_ascii_digit()) {
                        *i += 1;
                    }
                    *i - s
                };
                if digits(&mut i) == 0 {
                    return false;
                }
                match self.at(i) {
                    Some('}') => true,
                    Some(',') => {
                        i += 1;
                        digits(&mut i);
                        self.at(i) == Some('}')
                    }
                    _ => false,
                }
            }
            _ => false,
        }
    }

    /// Parses alternatives up to the closing `)` of the group opened at `open` (or the end).
    fn parse_alt(&mut self, open: Option<usize>) -> Result<Node, PatternError> {
        let mut branches = Vec::new();
        let mut concat: Vec<Node> = Vec::new();
        let mut prev_quantifier = false;
        loop {
            self.skip_blank()?;
            let start = self.pos;
            let Some(ch) = self.peek() else {
                if let Some(open) = open {
                    return err(open, "Not enough )'s.");
                }
                break;
            };
            let atom = match ch {
                '|' => {
                    self.pos += 1;
                    branches.push(concat_node(std::mem::take(&mut concat)));
                    prev_quantifier = false;
                    continue;
                }
                ')' => {
                    if open.is_none() {
                        return err(start, "Too many )'s.");
                    }
                    self.pos += 1;
                    break;
                }
                '(' => match self.parse_group(start)? {
                    Some(node) => node,
                    None => {
                        prev_quantifier = false;
                        continue;
                    }
                },
                '*' | '+' | '?' => {
                    return err(
                        start,
                        if prev_quantifier {
                            format!("Nested quantifier '{ch}'.")
                        } else {
                            format!("Quantifier '{ch}' following nothing.")
                        },
                    );
                }
                '{' if self.is_true_quantifier() => {
                    return err(
                        start,
                        if prev_quantifier {
                            "Nested quantifier '{'.".to_string()
                        } else {
                            "Quantifier '{' following nothing.".to_string()
                        },
                    );
                }
                '[' => {
                    self.pos += 1;
                    let set = self.parse_class(start)?;
                    Node::Set(set, self.opts.i)
                }
                '\\' => {
                    self.pos += 1;
                    if self.pos >= self.p.len() {
                        return err(start, "Illegal \\ at end of pattern.");
                    }
                    self.parse_backslash(start)?
                }
                '^' => {
                    self.pos += 1;
                    if self.opts.m {
                        Node::Bol
                    } else {
                        Node::Begin
                    }
                }
                '$' => {
                    self.pos += 1;
                    if self.opts.m {
                        Node::Eol
                    } else {
                        self.has_end_z = true;
                        Node::EndZ
                    }
                }
                '.' => {
                    self.pos += 1;
                    if self.opts.s {
                        Node::Set(Set::one(Item::Range('\0', char::MAX)), false)
                    } else {
                        Node::Set(
                            Set {
                                negated: true,
                                items: vec![Item::Range('\n', '\n')],
                                sub: None,
                            },
                            false,
                        )
                    }
                }
                c => {
                    self.pos += 1;
                    Node::Char(c, self.opts.i)
                }
            };
            self.skip_blank()?;
            prev_quantifier = false;
            let atom = if self.is_true_quantifier() {
                prev_quantifier = true;
                self.parse_quantifier(atom, start)?
            } else {
                atom
            };
            concat.push(atom);
        }
        if branches.is_empty() {
            Ok(concat_node(concat))
        } else {
            branches.push(concat_node(concat));
            Ok(Node::Alt(branches))
        }
    }

    fn parse_quantifier(&mut self, atom: Node, atom_start: usize) -> Result<Node, PatternError> {
        let qstart = self.pos;
        let ch = self.p[self.pos];
        self.pos += 1;
        let (min, max) = match ch {
            '*' => (0, None),
            '+' => (1, None),
            '?' => (0, Some(1)),
            _ => {
                let min = self.scan_count(qstart)?;
                let max = if self.peek() == Some(',') {
                    self.pos += 1;
                    if self.peek() == Some('}') {
                        None
                    } else {
                        Some(self.scan_count(qstart)?)
                    }
                } else {
                    Some(min)
                };
                self.pos += 1; // '}'
                (min, max)
            }
        };
        self.skip_blank()?;
        let lazy = if self.peek() == Some('?') {
            self.pos += 1;
            true
        } else {
            false
        };
        if let Some(max) = max {
            if min > max {
                return err(qstart, "Illegal {x,y} with x > y.");
            }
        }
        if atom.is_assertion() {
            // A zero-width item repeated: at least once means once; maybe never means
            // nothing is required.
            if min >= 1 {
                return Ok(atom);
            }
            if atom.has_capture() {
                return err(atom_start, "an assertion holding a group under a quantifier that allows zero repetitions is not supported by confab");
            }
            return Ok(Node::Empty);
        }
        Ok(Node::Repeat(Box::new(atom), min, max, lazy))
    }

    fn scan_count(&mut self, qstart: usize) -> Result<u32, PatternError> {
        let mut n: u64 = 0;
        while let Some(c) = self.peek().filter(char::is_ascii_digit) {
            n = n * 10 + u64::from(c as u8 - b'0');
            if n > u64::from(MAX_REPEAT) {
                return err(
                    qstart,
                    format!("repetition counts above {MAX_REPEAT} are not supported by confab"),
                );
            }
            self.pos += 1;
        }
        Ok(n as u32)
    }

    /// After `(` at `start`. None for an option-only group `(?imnsx-imnsx)`.
    fn parse_group(&mut self, start: usize) -> Result<Option<Node>, PatternError> {
        self.pos += 1;
        let saved = self.opts;
        let kind = if self.peek() != Some('?') || self.at(self.pos + 1) == Some(')') {
            if self.opts.n {
                Kind::NonCapture
            } else {
                self.unnamed += 1;
                Kind::Capture(self.unnamed)
            }
        } else {
            self.pos += 1;
            let Some(ch) = self.peek() else {
                return err(start, "Unrecognized grouping construct.");
            };
            self.pos += 1;
            match ch {
                ':' => Kind::NonCapture,
                '=' => Kind::Ahead,
                '!' => Kind::NotAhead,
                '>' => Kind::Atomic,
                '<' | '\'' => {
                    let close = if ch == '<' { '>' } else { '\'' };
                    let Some(c2) = self.peek() else {
                        return err(start, "Unrecognized grouping construct.");
                    };
                    if c2 == '=' && close == '>' {
                        self.pos += 1;
                        self.lookbehind_at.get_or_insert(start);
                        Kind::Behind
                    } else if c2 == '!' && close == '>' {
                        self.pos += 1;
                        self.lookbehind_at.get_or_insert(start);
                        Kind::NotBehind
                    } else if c2.is_ascii_digit() {
                        return err(
                            self.pos,
                            "explicitly numbered groups (?<n>...) are not supported by confab",
                        );
                    } else if c2 == '-' {
                        return err(
                            self.pos,
                            "balancing groups (?<a-b>...) are not supported by confab",
                        );
                    } else if is_boundary_word_char(c2) {
                        let name_at = self.pos;
                        let name: String = self.scan_capname();
                        match self.peek() {
                            Some(c) if c == close => self.pos += 1,
                            Some('-') => {
                                return err(
                                    name_at,
                                    "balancing groups (?<a-b>...) are not supported by confab",
                                )
                            }
                            _ => return err(
                                self.pos,
                                "Invalid group name: Group names must begin with a word character.",
                            ),
                        }
                        match self.info {
                            None => {
                                if self.names.iter().any(|(n, _)| *n == name) {
                                    return err(name_at, format!("the group name '{name}' is used twice; confab does not support that"));
                                }
                                self.names.push((name, name_at));
                                Kind::NonCapture
                            }
                            Some(info) => {
                                let index = info.names.iter().position(|n| *n == name).unwrap_or(0);
                                Kind::Capture(1 + info.unnamed + index)
                            }
                        }
                    } else {
                        return err(
                            self.pos,
                            "Invalid group name: Group names must begin with a word character.",
                        );
                    }
                }
                '(' => {
                    return err(
                        start,
                        "conditional groups (?(...)yes|no) are not supported by confab",
                    )
                }
                _ => {
                    self.pos -= 1;
                    self.scan_options();
                    match self.peek() {
                        Some(')') => {
                            self.pos += 1;
                            // The options stay until the enclosing group ends.
                            return Ok(None);
                        }
                        Some(':') => {
                            self.pos += 1;
                            Kind::NonCapture
                        }
                        _ => return err(start, "Unrecognized grouping construct."),
                    }
                }
            }
        };
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return err(
                start,
                format!("groups nested deeper than {MAX_DEPTH} are not supported by confab"),
            );
        }
        let inner = self.parse_alt(Some(start))?;
        self.depth -= 1;
        self.opts = saved;
        Ok(Some(Node::Group(kind, Box::new(inner))))
    }

    fn scan_options(&mut self) {
        let mut off = false;
        while let Some(c) = self.peek() {
            match c {
                '-' => off = true,
                '+' => off = false,
                _ => {
                    let flag = match c.to_ascii_lowercase() {
                        'i' => &mut self.opts.i,
                        'm' => &mut self.opts.m,
                        'n' => &mut self.opts.n,
                        's' => &mut self.opts.s,
                        'x' => &mut self.opts.x,
                        _ => return,
                    };
                    *flag = !off;
                }
            }
            self.pos += 1;
        }
    }

    fn scan_capname(&mut self) -> String {
        let s = self.pos;
        while self.peek().is_some_and(is_boundary_word_char) {
            self.pos += 1;
        }
        self.p[s..self.pos].iter().collect()
    }

    /// Digits as .NET's ScanDecimal (position of the escape for the error).
    fn scan_decimal(&mut self, at: usize) -> Result<u64, PatternError> {
        let mut n: u64 = 0;
        while let Some(c) = self.peek().filter(char::is_ascii_digit) {
            n = n * 10 + u64::from(c as u8 - b'0');
            if n > i32::MAX as u64 {
                return err(
                    at,
                    "Capture group numbers must be less than or equal to Int32.MaxValue.",
                );
            }
            self.pos += 1;
        }
        Ok(n)
    }

    fn total_groups(&self) -> usize {
        self.info.map_or(0, |i| 1 + i.unnamed + i.names.len())
    }

    fn is_slot(&self, n: u64) -> bool {
        n >= 1 && (n as usize) < self.total_groups()
    }

    /// After `\` (at `start`), outside a class.
    fn parse_backslash(&mut self, start: usize) -> Result<Node, PatternError> {
        let ch = self.p[self.pos];
        let ci = self.opts.i;
        let simple = match ch {
            'b' => Some(Node::Boundary(false)),
            'B' => Some(Node::Boundary(true)),
            'A' | 'G' => Some(Node::Begin),
            'Z' => {
                self.has_end_z = true;
                Some(Node::EndZ)
            }
            'z' => Some(Node::End),
            'w' => Some(Node::Set(Set::one(Item::Word(false)), false)),
            'W' => Some(Node::Set(Set::one(Item::Word(true)), false)),
            's' => Some(Node::Set(Set::one(Item::Space(false)), false)),
            'S' => Some(Node::Set(Set::one(Item::Space(true)), false)),
            'd' => Some(Node::Set(Set::one(Item::Digit(false)), false)),
            'D' => Some(Node::Set(Set::one(Item::Digit(true)), false)),
            _ => None,
        };
        if let Some(node) = simple {
            self.pos += 1;
            return Ok(node);
        }
        if ch == 'p' || ch == 'P' {
            self.pos += 1;
            let item = self.parse_property(start, ch == 'P')?;
            return Ok(Node::Set(Set::one(item), ci));
        }
        // ScanBasicBackslash.
        let backpos = self.pos;
        let mut angled = false;
        let mut close = '\0';
        let mut c = ch;
        if c == 'k' {
            if self.pos + 1 < self.p.len() {
                self.pos += 1;
                c = self.p[self.pos];
                self.pos += 1;
                if c == '<' || c == '\'' {
                    angled = true;
                    close = if c == '\'' { '\'' } else { '>' };
                }
            }
            if !angled || self.pos >= self.p.len() {
                return err(start, "Malformed \\k<...> named back reference.");
            }
            c = self.p[self.pos];
        } else if (c == '<' || c == '\'') && self.pos + 1 < self.p.len() {
            angled = true;
            close = if c == '\'' { '\'' } else { '>' };
            self.pos += 1;
            c = self.p[self.pos];
        }
        if angled && c.is_ascii_digit() {
            let n = self.scan_decimal(start)?;
            if self.peek() == Some(close) {
                self.pos += 1;
                if self.info.is_none() {
                    return Ok(Node::Empty);
                }
                if n == 0 {
                    return err(
                        start,
                        "a backreference to group 0 is not supported by confab",
                    );
                }
                if self.is_slot(n) {
                    return Ok(Node::Backref(n as usize, ci));
                }
                return err(start, format!("Reference to undefined group number {n}."));
            }
        } else if !angled && ('1'..='9').contains(&c) {
            let n = self.scan_decimal(start)?;
            if self.info.is_none() {
                return Ok(Node::Empty);
            }
            if self.is_slot(n) {
                return Ok(Node::Backref(n as usize, ci));
            }
            if n <= 9 {
                return err(start, format!("Reference to undefined group number {n}."));
            }
        } else if angled && is_boundary_word_char(c) {
            let name = self.scan_capname();
            if self.peek() == Some(close) {
                self.pos += 1;
                let Some(info) = self.info else {
                    return Ok(Node::Empty);
                };
                return match info.names.iter().position(|n| *n == name) {
                    Some(i) => Ok(Node::Backref(1 + info.unnamed + i, ci)),
                    None => err(
                        start,
                        format!("Reference to undefined group name '{name}'."),
                    ),
                };
            }
        }
        self.pos = backpos;
        let c = self.scan_char_escape(start)?;
        Ok(Node::Char(c, ci))
    }

    /// .NET's ScanCharEscape: `self.pos` is at the character after `\`.
    fn scan_char_escape(&mut self, start: usize) -> Result<char, PatternError> {
        let ch = self.p[self.pos];
        self.pos += 1;
        if ('0'..='7').contains(&ch) {
            self.pos -= 1;
            let mut value: u32 = 0;
            let mut count = 0;
            while count < 3 {
                match self.peek() {
                    Some(d @ '0'..='7') => {
                        value = value * 8 + (d as u32 - '0' as u32);
                        self.pos += 1;
                        count += 1;
                    }
                    _ => break,
                }
            }
            return Ok(char::from_u32(value & 0xFF).unwrap_or('\0'));
        }
        Ok(match ch {
            'x' => self.scan_hex(2, start)?,
            'u' => self.scan_hex(4, start)?,
            'a' => '\u{7}',
            'b' => '\u{8}',
            'e' => '\u{1B}',
            'f' => '\u{C}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'v' => '\u{B}',
            'c' => {
                let Some(c) = self.peek() else {
                    return err(start, "Missing control character.");
                };
                self.pos += 1;
                let up = c.to_ascii_uppercase();
                let up = if c.is_ascii_lowercase() { up } else { c };
                match (up as u32).checked_sub('@' as u32) {
                    Some(v) if v < 0x20 => char::from_u32(v).unwrap_or('\0'),
                    _ => return err(start, "Unrecognized control character."),
                }
            }
            c if is_boundary_word_char(c) => {
                return err(start, format!("Unrecognized escape sequence \\{c}."))
            }
            c => c,
        })
    }

    fn scan_hex(&mut self, n: usize, start: usize) -> Result<char, PatternError> {
        let mut value: u32 = 0;
        for _ in 0..n {
            match self.peek().and_then(|c| c.to_digit(16)) {
                Some(d) => {
                    value = value * 16 + d;
                    self.pos += 1;
                }
                None => return err(start, "Insufficient hex digits."),
            }
        }
        match char::from_u32(value) {
            Some(c) => Ok(c),
            None => err(start, format!("the surrogate code unit \\u{value:04X} cannot be matched by confab (it matches Unicode characters, not UTF-16 code units)")),
        }
    }

    /// After `\p` or `\P`.
    fn parse_property(&mut self, start: usize, negated: bool) -> Result<Item, PatternError> {
        if self.pos + 2 >= self.p.len() {
            return err(start, "Incomplete \\p{X} character escape.");
        }
        if self.p[self.pos] != '{' {
            return err(start, "Malformed \\p{X} character escape.");
        }
        self.pos += 1;
        let s = self.pos;
        while self
            .peek()
            .is_some_and(|c| c == '-' || is_boundary_word_char(c))
        {
            self.pos += 1;
        }
        let name: String = self.p[s..self.pos].iter().collect();
        if self.peek() != Some('}') {
            return err(start, "Incomplete \\p{X} character escape.");
        }
        self.pos += 1;
        if self.opts.i && matches!(name.as_str(), "Lu" | "Ll" | "Lt") {
            // .NET: under IgnoreCase, Lu, Ll and Lt each stand for all three.
            return Ok(Item::Cat(
                vec!["Uppercase_Letter", "Lowercase_Letter", "Titlecase_Letter"],
                negated,
            ));
        }
        if let Some(&(_, long)) = CATEGORIES.iter().find(|(short, _)| *short == name) {
            return Ok(Item::Cat(vec![long], negated));
        }
        if name.starts_with("Is") {
            return err(start, format!("Unicode block names (\\p{{{name}}}) are not supported by confab; use a range such as [\\u0370-\\u03FF]"));
        }
        err(start, format!("Unknown property '{name}'."))
    }

    /// After `[` at `start`: .NET's ScanCharClass.
    fn parse_class(&mut self, start: usize) -> Result<Set, PatternError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return err(
                start,
                format!("classes nested deeper than {MAX_DEPTH} are not supported by confab"),
            );
        }
        let mut set = Set {
            negated: false,
            items: Vec::new(),
            sub: None,
        };
        if self.peek() == Some('^') {
            self.pos += 1;
            set.negated = true;
        }
        let mut first = true;
        let mut in_range = false;
        let mut prev = '\0';
        let mut closed = false;
        while self.pos < self.p.len() {
            let at = self.pos;
            let mut ch = self.p[self.pos];
            self.pos += 1;
            let mut translated = false;
            if ch == ']' {
                if !first {
                    closed = true;
                    break;
                }
            } else if ch == '\\' && self.pos < self.p.len() {
                ch = self.p[self.pos];
                self.pos += 1;
                let shorthand = match ch {
                    'd' | 'D' => Some(Item::Digit(ch == 'D')),
                    's' | 'S' => Some(Item::Space(ch == 'S')),
                    'w' | 'W' => Some(Item::Word(ch == 'W')),
                    'p' | 'P' => {
                        if in_range {
                            return err(
                                at,
                                format!("Cannot include class \\{ch} in character range."),
                            );
                        }
                        Some(self.parse_property(at, ch == 'P')?)
                    }
                    _ => None,
                };
                if let Some(item) = shorthand {
                    if in_range {
                        return err(
                            at,
                            format!("Cannot include class \\{ch} in character range."),
                        );
                    }
                    set.items.push(item);
                    first = false;
                    continue;
                }
                if ch == '-' {
                    if in_range {
                        if prev > ch {
                            return err(at, "[x-y] range in reverse order.");
                        }
                        set.items.push(Item::Range(prev, ch));
                        in_range = false;
                    } else {
                        set.items.push(Item::Range(ch, ch));
                    }
                    first = false;
                    continue;
                }
                self.pos -= 1;
                ch = self.scan_char_escape(at)?;
                translated = true;
            }
            if in_range {
                in_range = false;
                if ch == '[' && !translated && !first {
                    // Not a range but a subtraction: [a-[b]].
                    set.items.push(Item::Range(prev, prev));
                    set.sub = Some(Box::new(self.parse_class(at)?));
                    if self.pos < self.p.len() && self.p[self.pos] != ']' {
                        return err(
                            self.pos,
                            "A subtraction must be the last element in a character class.",
                        );
                    }
                } else {
                    if prev > ch {
                        return err(at, "[x-y] range in reverse order.");
                    }
                    set.items.push(Item::Range(prev, ch));
                }
            } else if self.pos + 1 < self.p.len()
                && self.p[self.pos] == '-'
                && self.p[self.pos + 1] != ']'
            {
                prev = ch;
                in_range = true;
                self.pos += 1;
            } else if self.pos < self.p.len()
                && ch == '-'
                && !translated
                && self.p[self.pos] == '['
                && !first
            {
                self.pos += 1;
                set.sub = Some(Box::new(self.parse_class(self.pos - 1)?));
                if self.pos < self.p.len() && self.p[self.pos] != ']' {
                    return err(
                        self.pos,
                        "A subtraction must be the last element in a character class.",
                    );
                }
            } else {
                set.items.push(Item::Range(ch, ch));
            }
            first = false;
        }
        if !closed {
            return err(start, "Unterminated [] set.");
        }
        self.depth -= 1;
        Ok(set)
    }
}

/// The fewest and the most characters a match of `node` takes (None: no bound).
fn width(node: &Node) -> (usize, Option<usize>) {
    match node {
        Node::Char(..) | Node::Set(..) => (1, Some(1)),
        Node::Backref(..) => (0, None),
        Node::Group(Kind::Capture(_) | Kind::NonCapture | Kind::Atomic, inner) => width(inner),
        Node::Group(..)
        | Node::Empty
        | Node::Bol
        | Node::Eol
        | Node::Begin
        | Node::EndZ
        | Node::End
        | Node::Boundary(_) => (0, Some(0)),
        Node::Concat(v) => v.iter().fold((0, Some(0)), |(lo, hi), n| {
            let (l, h) = width(n);
            (
                lo.saturating_add(l),
                hi.zip(h).map(|(a, b)| a.saturating_add(b)),
            )
        }),
        Node::Alt(v) => {
            let mut lo = usize::MAX;
            let mut hi = Some(0);
            for n in v {
                let (l, h) = width(n);
                lo = lo.min(l);
                hi = hi.zip(h).map(|(a, b)| a.max(b));
            }
            (if v.is_empty() { 0 } else { lo }, hi)
        }
        Node::Repeat(inner, min, max, _) => {
            let (l, h) = width(inner);
            (
                l.saturating_mul(*min as usize),
                h.zip(*max).map(|(h, m)| h.saturating_mul(m as usize)),
            )
        }
    }
}

/// Adds the literal text `node` always matches to `out`; false where that text ends.
fn literal_prefix(node: &Node, out: &mut String) -> bool {
    match node {
        Node::Char(c, ci) if !(*ci && (c.is_alphabetic() || !c.is_ascii())) => {
            out.push(*c);
            true
        }
        Node::Concat(v) => v.iter().all(|n| literal_prefix(n, out)),
        Node::Group(Kind::Capture(_) | Kind::NonCapture | Kind::Atomic, inner) => {
            literal_prefix(inner, out)
        }
        _ => false,
    }
}

fn concat_node(mut v: Vec<Node>) -> Node {
    match v.len() {
        0 => Node::Empty,
        1 => v.pop().unwrap_or(Node::Empty),
        _ => Node::Concat(v),
    }
}

// ---------------------------------------------------------------------------------------
// Writing the fancy-regex program.

struct Emitter {
    out: String,
    /// Write `$`/`\Z` for an input that ends with '\n'.
    exact: bool,
    /// .NET group number → fancy-regex group index.
    slots: Vec<usize>,
}

fn captures_in_order(node: &Node, order: &mut Vec<usize>) {
    match node {
        Node::Group(kind, inner) => {
            if let Kind::Capture(n) = kind {
                order.push(*n);
            }
            captures_in_order(inner, order);
        }
        Node::Repeat(inner, ..) => captures_in_order(inner, order),
        Node::Concat(v) | Node::Alt(v) => v.iter().for_each(|n| captures_in_order(n, order)),
        _ => {}
    }
}

fn push_char(out: &mut String, c: char) {
    if c.is_ascii_alphanumeric() {
        out.push(c);
    } else {
        use std::fmt::Write;
        let _ = write!(out, "\\x{{{:X}}}", c as u32);
    }
}

impl Emitter {
    fn node(&mut self, node: &Node) {
        match node {
            Node::Empty => {}
            Node::Char(c, ci) => {
                let fold = *ci && (c.is_alphabetic() || !c.is_ascii());
                if fold {
                    self.out.push_str("(?i:");
                }
                push_char(&mut self.out, *c);
                if fold {
                    self.out.push(')');
                }
            }
            Node::Set(set, ci) => {
                if *ci {
                    self.out.push_str("(?i:");
                }
                self.set(set);
                if *ci {
                    self.out.push(')');
                }
            }
            Node::Bol => self.out.push_str("(?m:^)"),
            Node::Eol => self.out.push_str("(?m:$)"),
            Node::Begin => self.out.push_str(r"\A"),
            Node::EndZ => self
                .out
                .push_str(if self.exact { r"(?=\n?\z)" } else { r"\z" }),
            Node::End => self.out.push_str(r"\z"),
            Node::Boundary(negated) => {
                let w = BOUNDARY;
                if *negated {
                    self.out
                        .push_str(&format!("(?:(?<={w})(?={w})|(?<!{w})(?!{w}))"));
                } else {
                    self.out
                        .push_str(&format!("(?:(?<={w})(?!{w})|(?<!{w})(?={w}))"));
                }
            }
            Node::Backref(n, ci) => {
                let slot = self.slots.get(*n).copied().unwrap_or(0);
                self.out.push_str(if *ci { "(?i:\\" } else { "(?:\\" });
                self.out.push_str(&slot.to_string());
                self.out.push(')');
            }
            Node::Group(kind, inner) => {
                match kind {
                    Kind::Capture(_) => self.out.push('('),
                    Kind::NonCapture => self.out.push_str("(?:"),
                    Kind::Atomic => self.out.push_str("(?>"),
                    Kind::Ahead => self.out.push_str("(?="),
                    Kind::NotAhead => self.out.push_str("(?!"),
                    Kind::Behind => self.out.push_str("(?<="),
                    Kind::NotBehind => self.out.push_str("(?<!"),
                }
                self.node(inner);
                self.out.push(')');
            }
            Node::Concat(v) => v.iter().for_each(|n| self.node(n)),
            Node::Alt(v) => {
                for (i, n) in v.iter().enumerate() {
                    if i > 0 {
                        self.out.push('|');
                    }
                    self.node(n);
                }
            }
            Node::Repeat(inner, min, max, lazy) => {
                // A non-capturing group keeps the quantifier on the whole item.
                self.out.push_str("(?:");
                self.node(inner);
                self.out.push(')');
                match (min, max) {
                    (0, None) => self.out.push('*'),
                    (1, None) => self.out.push('+'),
                    (0, Some(1)) => self.out.push('?'),
                    (n, None) => self.out.push_str(&format!("{{{n},}}")),
                    (n, Some(m)) if n == m => self.out.push_str(&format!("{{{n}}}")),
                    (n, Some(m)) => self.out.push_str(&format!("{{{n},{m}}}")),
                }
                if *lazy {
                    self.out.push('?');
                }
            }
        }
    }

    fn set(&mut self, set: &Set) {
        self.out.push('[');
        if set.sub.is_some() {
            self.out.push('[');
        }
        if set.negated {
            self.out.push('^');
        }
        for item in &set.items {
            match item {
                Item::Range(a, b) => {
                    push_char(&mut self.out, *a);
                    if a != b {
                        self.out.push('-');
                        push_char(&mut self.out, *b);
                    }
                }
                Item::Digit(neg) => self.class_item(r"\p{Decimal_Number}", *neg),
                Item::Word(neg) => self.class_item(WORD, *neg),
                Item::Space(neg) => self.class_item(SPACE, *neg),
                Item::Cat(names, neg) => {
                    let s: String = names.iter().map(|n| format!(r"\p{{{n}}}")).collect();
                    self.class_item(&s, *neg);
                }
            }
        }
        if set.items.is_empty() {
            // Cannot come from .NET syntax; keep the class valid and empty.
            self.out.push_str(r"\x{0}--\x{0}");
        }
        if let Some(sub) = &set.sub {
            self.out.push_str("]--");
            self.set(sub);
        }
        self.out.push(']');
    }

    fn class_item(&mut self, body: &str, negated: bool) {
        if negated {
            self.out.push_str("[^");
            self.out.push_str(body);
            self.out.push(']');
        } else {
            self.out.push_str(body);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Compiled patterns shared by every caller.

const MAX_CACHED: usize = 8192;

type Cache = RwLock<FxHashMap<Box<str>, Option<Arc<Pattern>>>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(|| RwLock::new(FxHashMap::default()))
}

/// The compiled form of `pattern`, from a bounded process-wide cache (compiled once, then
/// shared); None when the pattern is invalid.
pub fn compiled(pattern: &str) -> Option<Arc<Pattern>> {
    // Nothing panics while holding the lock, but a poisoned map is still a valid map.
    if let Some(entry) = cache()
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(pattern)
    {
        return entry.clone();
    }
    // Compiled outside the lock.
    let entry = Pattern::new(pattern).ok().map(Arc::new);
    let mut map = cache().write().unwrap_or_else(|e| e.into_inner());
    if map.len() >= MAX_CACHED {
        map.clear();
    }
    map.insert(pattern.into(), entry.clone());
    entry
}
