//! The data model a parsed script is made of, and its printing back in
//! PowerShell syntax (`Display`).

use std::fmt;

/// A whole script: statements in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Script {
    pub statements: Vec<Statement>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    Pipeline(Pipeline),
    /// `$var = value`; a command on the right is an `Expr::Sub`.
    Assign {
        var: String,
        value: Expr,
    },
}

/// Commands joined by `|`; never empty.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    pub commands: Vec<Command>,
}

/// Where a command sits in the source: byte range (name to last argument)
/// and the 1-based line and column of its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub line: u32,
    pub column: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// As written (a cmdlet `Verb-Noun`, an alias like `fl`, or a script
    /// path like `.\New-CsClonedPolicy.ps1`); en/em dashes become `-`.
    pub name: String,
    pub args: Vec<Arg>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// `-Name value`, `-Name:value` or a switch `-Name` (value `None`).
    /// The parser cannot tell a switch followed by a positional value from a
    /// named parameter: `-Force alice` gives `Named { Force, Some(alice) }`;
    /// the cmdlet registry, knowing which parameters are switches, re-splits.
    Named {
        name: String,
        value: Option<Expr>,
    },
    Positional(Expr),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Bool(bool),
    Null,
    Int(i64),
    Float(f64),
    /// A quoted string, escapes resolved.
    Str(String),
    /// An unquoted word: `global`, `Site:Redmond`, `.jpg`, `sip:a@b.com`.
    Bare(String),
    Array(Vec<Expr>),
    /// Entries in source order; keys as written (compare case-insensitively).
    Hash(Vec<(String, Expr)>),
    /// `$name`, without the `$`.
    Var(String),
    /// `(pipeline)`, or the command on the right of an assignment.
    Sub(Pipeline),
    /// `expr.Name`
    Prop(Box<Expr>, String),
    /// `{ condition }`: a script block, as `Where-Object` takes it. Only conditions are
    /// supported (comparisons joined by `-and`, `-or`, `-not`), with `$_` the current object.
    Block(Box<Cond>),
}

/// The condition inside a script block.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    Or(Box<Cond>, Box<Cond>),
    And(Box<Cond>, Box<Cond>),
    Not(Box<Cond>),
    /// `left -op right`
    Cmp {
        left: Expr,
        op: CmpOp,
        /// `-ceq`, `-clike`, …: case-sensitive (PowerShell compares ignoring case otherwise).
        case_sensitive: bool,
        right: Expr,
    },
    /// A value on its own, true as PowerShell converts it to a Boolean (`{$_.Enabled}`).
    Value(Expr),
}

/// PowerShell's comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Like,
    NotLike,
    Match,
    NotMatch,
    Contains,
    NotContains,
    In,
    NotIn,
}

impl CmpOp {
    pub const ALL: [CmpOp; 14] = [
        CmpOp::Eq,
        CmpOp::Ne,
        CmpOp::Gt,
        CmpOp::Ge,
        CmpOp::Lt,
        CmpOp::Le,
        CmpOp::Like,
        CmpOp::NotLike,
        CmpOp::Match,
        CmpOp::NotMatch,
        CmpOp::Contains,
        CmpOp::NotContains,
        CmpOp::In,
        CmpOp::NotIn,
    ];

    /// The operator's name without the dash, as PowerShell spells it in help (`EQ`, `Like`).
    pub fn name(self) -> &'static str {
        match self {
            CmpOp::Eq => "EQ",
            CmpOp::Ne => "NE",
            CmpOp::Gt => "GT",
            CmpOp::Ge => "GE",
            CmpOp::Lt => "LT",
            CmpOp::Le => "LE",
            CmpOp::Like => "Like",
            CmpOp::NotLike => "NotLike",
            CmpOp::Match => "Match",
            CmpOp::NotMatch => "NotMatch",
            CmpOp::Contains => "Contains",
            CmpOp::NotContains => "NotContains",
            CmpOp::In => "In",
            CmpOp::NotIn => "NotIn",
        }
    }

    /// `eq`, `ieq` (case-insensitive) or `ceq` (case-sensitive): the operator and whether
    /// it is case-sensitive.
    pub fn parse(word: &str) -> Option<(CmpOp, bool)> {
        let w = word.to_ascii_lowercase();
        let (cs, base) = match w.as_bytes().first() {
            Some(b'c') if !w.starts_with("contains") => (true, &w[1..]),
            Some(b'i') if w != "in" => (false, &w[1..]),
            _ => (false, &w[..]),
        };
        CmpOp::ALL
            .into_iter()
            .find(|op| op.name().eq_ignore_ascii_case(base))
            .map(|op| (op, cs))
    }
}

impl fmt::Display for Cond {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // inner conditions in parentheses: the printed text parses back to the same tree
        let paren = |f: &mut fmt::Formatter<'_>, c: &Cond| match c {
            Cond::Or(..) | Cond::And(..) => write!(f, "({c})"),
            _ => write!(f, "{c}"),
        };
        match self {
            Cond::Or(a, b) => {
                paren(f, a)?;
                f.write_str(" -or ")?;
                paren(f, b)
            }
            Cond::And(a, b) => {
                paren(f, a)?;
                f.write_str(" -and ")?;
                paren(f, b)
            }
            Cond::Not(c) => {
                f.write_str("-not ")?;
                match **c {
                    Cond::Value(_) => write!(f, "{c}"),
                    _ => write!(f, "({c})"),
                }
            }
            Cond::Cmp {
                left,
                op,
                case_sensitive,
                right,
            } => write!(
                f,
                "{left} -{}{} {right}",
                if *case_sensitive { "c" } else { "" },
                op.name().to_ascii_lowercase()
            ),
            Cond::Value(e) => write!(f, "{e}"),
        }
    }
}

impl Command {
    /// The named argument `name` (case-insensitive, exact; prefix matching
    /// is the cmdlet registry's business).
    pub fn param(&self, name: &str) -> Option<&Arg> {
        self.args
            .iter()
            .find(|a| matches!(a, Arg::Named { name: n, .. } if n.eq_ignore_ascii_case(name)))
    }

    /// The value of named argument `name`, if it has one.
    pub fn value(&self, name: &str) -> Option<&Expr> {
        match self.param(name) {
            Some(Arg::Named { value, .. }) => value.as_ref(),
            _ => None,
        }
    }

    /// Positional arguments, in order.
    pub fn positional(&self) -> impl Iterator<Item = &Expr> {
        self.args.iter().filter_map(|a| match a {
            Arg::Positional(e) => Some(e),
            Arg::Named { .. } => None,
        })
    }

    /// Whether this command is called `name` (case-insensitive).
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }
}

impl Expr {
    /// The text of a quoted string or a bare word.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Expr::Str(s) | Expr::Bare(s) => Some(s),
            _ => None,
        }
    }

    /// The entry `key` of a hashtable (case-insensitive).
    pub fn hash_get(&self, key: &str) -> Option<&Expr> {
        match self {
            Expr::Hash(entries) => entries
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Characters that end a bare word or start something else.
pub(crate) fn ends_word(c: char) -> bool {
    c.is_whitespace() || matches!(c, ',' | ';' | '|' | '(' | ')' | '{' | '}')
}

pub(crate) fn is_dash(c: char) -> bool {
    matches!(c, '-' | '\u{2013}' | '\u{2014}' | '\u{2015}')
}

pub(crate) fn is_dquote(c: char) -> bool {
    matches!(c, '"' | '\u{201C}' | '\u{201D}' | '\u{201E}')
}

pub(crate) fn is_squote(c: char) -> bool {
    matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201A}')
}

/// `5`, `-3` → Int; `1.5`, `-0.25` → Float; anything else → Bare.
pub(crate) fn classify(word: String) -> Expr {
    let digits = word.strip_prefix('-').unwrap_or(&word);
    let numeric = digits.chars().any(|c| c.is_ascii_digit())
        && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
        && digits.matches('.').count() <= 1;
    // a leading zero is kept as written (a PIN or an extension such as 0100), not read as
    // a number
    let leading_zero = digits.len() > 1 && digits.starts_with('0') && !digits.contains('.');
    if numeric && !leading_zero {
        if let Ok(i) = word.parse::<i64>() {
            return Expr::Int(i);
        }
        if let Ok(f) = word.parse::<f64>() {
            return Expr::Float(f);
        }
    }
    Expr::Bare(word)
}

fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        match c {
            '`' | '"' | '$' => write!(f, "`{c}")?,
            '\n' => f.write_str("`n")?,
            '\r' => f.write_str("`r")?,
            '\t' => f.write_str("`t")?,
            '\0' => f.write_str("`0")?,
            c if is_dquote(c) => write!(f, "`{c}")?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

/// Whether `s` reads back as the same bare word.
fn bare_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    !matches!(first, '#' | '$' | '@' | '=' | '<' | '>' | '&' | '[' | ']')
        && !is_dash(first)
        && !s
            .chars()
            .any(|c| ends_word(c) || c == '`' || c == '=' || is_dquote(c) || is_squote(c))
        && matches!(classify(s.to_string()), Expr::Bare(_))
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Bool(b) => write!(f, "${b}"),
            Expr::Null => f.write_str("$null"),
            Expr::Int(i) => write!(f, "{i}"),
            Expr::Float(x) if x.is_finite() && x.fract() == 0.0 => write!(f, "{x:.1}"),
            Expr::Float(x) => write!(f, "{x}"),
            Expr::Str(s) => write_quoted(f, s),
            Expr::Bare(s) if bare_safe(s) => f.write_str(s),
            Expr::Bare(s) => write_quoted(f, s),
            Expr::Array(items) if items.len() < 2 => {
                f.write_str("@(")?;
                if let Some(e) = items.first() {
                    write!(f, "{e}")?;
                }
                f.write_str(")")
            }
            Expr::Array(items) => {
                for (i, e) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    match e {
                        Expr::Array(inner) if inner.len() >= 2 => write!(f, "@({e})")?,
                        e => write!(f, "{e}")?,
                    }
                }
                Ok(())
            }
            Expr::Hash(entries) => {
                f.write_str("@{")?;
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    if !k.is_empty()
                        && k.chars()
                            .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
                    {
                        f.write_str(k)?;
                    } else {
                        write_quoted(f, k)?;
                    }
                    write!(f, "={v}")?;
                }
                f.write_str("}")
            }
            Expr::Var(v) => write!(f, "${v}"),
            Expr::Sub(p) => write!(f, "({p})"),
            Expr::Prop(base, name) => match **base {
                Expr::Var(_) | Expr::Sub(_) | Expr::Prop(..) => write!(f, "{base}.{name}"),
                _ => write!(f, "({base}).{name}"),
            },
            Expr::Block(c) => write!(f, "{{{c}}}"),
        }
    }
}

impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arg::Named { name, value: None } => write!(f, "-{name}"),
            Arg::Named {
                name,
                value: Some(v),
            } => write!(f, "-{name} {v}"),
            Arg::Positional(v) => write!(f, "{v}"),
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        for a in &self.args {
            write!(f, " {a}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.commands.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Statement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Statement::Pipeline(p) => write!(f, "{p}"),
            Statement::Assign {
                var,
                value: Expr::Sub(p),
            } => write!(f, "${var} = {p}"),
            Statement::Assign { var, value } => write!(f, "${var} = {value}"),
        }
    }
}

impl fmt::Display for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.statements.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{s}")?;
        }
        Ok(())
    }
}
