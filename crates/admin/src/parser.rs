//! Recursive-descent parser over the lexer's tokens.
//!
//! ```text
//! script    = { statement } separated by newline or ';'
//! statement = $var '=' (pipeline | value) | pipeline
//! pipeline  = command { '|' command }
//! command   = word { -Name [value] | -Name: value | value }
//! value     = primary { ',' primary }          (two or more: an array)
//! primary   = word | string | $var | '(' (pipeline | value) ')'
//!           | '@(' items ')' | '@{' key '=' value { ';' key '=' value } '}'
//!           | '{' cond '}'                  (a script block)
//!           followed by any number of .Member
//! cond      = and { -or and }
//! and       = not { -and not }
//! not       = -not not | '(' cond ')' [-op operand] | operand [ -op operand ]
//! operand   = value (no bare words, no commands)
//! ```

use crate::ast::{
    classify, is_dash, Arg, CmpOp, Command, Cond, Expr, Pipeline, Script, Span, Statement,
};
use crate::lexer::{Tok, Token};
use crate::ParseError;

type Result<T> = std::result::Result<T, ParseError>;

pub(crate) struct Parser {
    toks: Vec<Token>,
    i: usize,
    /// Brackets open around the current token: bounded, so no input exhausts the stack.
    depth: usize,
}

/// Deepest nesting of brackets and script blocks accepted.
const MAX_DEPTH: usize = 64;

/// How a token reads in an error message.
fn describe(t: &Tok) -> String {
    match t {
        Tok::Word(w) => match classify(w.clone()) {
            Expr::Bare(_) => format!("word '{w}'"),
            _ => format!("number {w}"),
        },
        Tok::Str(s) => format!("string \"{s}\""),
        Tok::Var(v) => format!("variable ${v}"),
        Tok::Param { name, .. } => format!("parameter -{name}"),
        Tok::Member(m) => format!("'.{m}'"),
        Tok::Newline => "end of line".into(),
        Tok::Eof => "end of input".into(),
        Tok::Semi => "';'".into(),
        Tok::Pipe => "'|'".into(),
        Tok::Comma => "','".into(),
        Tok::Equals => "'='".into(),
        Tok::LParen => "'('".into(),
        Tok::AtParen => "'@('".into(),
        Tok::AtBrace => "'@{'".into(),
        Tok::LBrace => "'{'".into(),
        Tok::RParen => "')'".into(),
        Tok::RBrace => "'}'".into(),
    }
}

fn is_value_start(t: &Tok) -> bool {
    matches!(
        t,
        Tok::Word(_)
            | Tok::Str(_)
            | Tok::Var(_)
            | Tok::LParen
            | Tok::AtParen
            | Tok::AtBrace
            | Tok::LBrace
    )
}

fn is_command_word(t: &Tok) -> bool {
    matches!(t, Tok::Word(w) if matches!(classify(w.clone()), Expr::Bare(_)))
}

impl Parser {
    pub fn new(toks: Vec<Token>) -> Self {
        Parser {
            toks,
            i: 0,
            depth: 0,
        }
    }

    fn peek(&self) -> &Token {
        &self.toks[self.i.min(self.toks.len() - 1)]
    }

    fn peek_at(&self, n: usize) -> &Tok {
        &self.toks[(self.i + n).min(self.toks.len() - 1)].tok
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if t.tok != Tok::Eof {
            self.i += 1;
        }
        t
    }

    fn prev_end(&self) -> usize {
        self.i.checked_sub(1).map_or(0, |i| self.toks[i].end)
    }

    fn skip(&mut self, also_semi: bool) {
        while matches!(self.peek().tok, Tok::Newline) || (also_semi && self.peek().tok == Tok::Semi)
        {
            self.i += 1;
        }
    }

    /// Error for a token that cannot appear here.
    fn unexpected(&self, t: &Token) -> ParseError {
        match t.tok {
            Tok::RParen => t.error("unexpected ')' with no matching '('"),
            Tok::RBrace => t.error("unexpected '}' with no matching '{' or '@{'"),
            _ => t.error(format!("unexpected {}", describe(&t.tok))),
        }
    }

    /// Consumes the closer of the bracket `open`, or reports it missing.
    fn close(&mut self, want: Tok, open: &Token) -> Result<()> {
        let (opener, closer) = match want {
            Tok::RBrace if open.tok == Tok::LBrace => ("{", '}'),
            Tok::RBrace => ("@{", '}'),
            _ if open.tok == Tok::AtParen => ("@(", ')'),
            _ => ("(", ')'),
        };
        let t = self.next();
        if t.tok == want {
            Ok(())
        } else if t.tok == Tok::Eof {
            Err(open.error(format!("unbalanced '{opener}': missing closing '{closer}'")))
        } else {
            Err(t.error(format!(
                "expected '{closer}' to close '{opener}' at line {}, column {}, found {}",
                open.line,
                open.column,
                describe(&t.tok)
            )))
        }
    }

    pub fn script(&mut self) -> Result<Script> {
        let mut statements = Vec::new();
        loop {
            self.skip(true);
            if self.peek().tok == Tok::Eof {
                return Ok(Script { statements });
            }
            statements.push(self.statement()?);
            let t = self.peek();
            if !matches!(t.tok, Tok::Newline | Tok::Semi | Tok::Eof) {
                return Err(self.unexpected(t));
            }
        }
    }

    fn statement(&mut self) -> Result<Statement> {
        if let (Tok::Var(var), Tok::Equals) = (&self.peek().tok, self.peek_at(1)) {
            let var = var.clone();
            self.next();
            let eq = self.next();
            self.skip(false);
            let value = if is_command_word(&self.peek().tok) {
                Expr::Sub(self.pipeline()?)
            } else if is_value_start(&self.peek().tok) {
                let v = self.value()?;
                if self.peek().tok == Tok::Pipe {
                    return Err(self
                        .peek()
                        .error("a pipeline must start with a command, not a value"));
                }
                v
            } else {
                return Err(eq.error(format!("missing value after '${var} ='")));
            };
            return Ok(Statement::Assign { var, value });
        }
        Ok(Statement::Pipeline(self.pipeline()?))
    }

    fn pipeline(&mut self) -> Result<Pipeline> {
        let mut commands = vec![self.command()?];
        while self.peek().tok == Tok::Pipe {
            let pipe = self.next();
            self.skip(false);
            match self.peek().tok {
                Tok::Pipe => {
                    return Err(self
                        .peek()
                        .error("empty pipeline element (nothing between '|' and '|')"))
                }
                Tok::Eof | Tok::Semi | Tok::RParen | Tok::RBrace => {
                    return Err(pipe.error("empty pipeline element (no command after '|')"))
                }
                _ => commands.push(self.command()?),
            }
        }
        Ok(Pipeline { commands })
    }

    fn command(&mut self) -> Result<Command> {
        let t = self.next();
        let name = match &t.tok {
            Tok::Word(w) if is_command_word(&t.tok) => w
                .chars()
                .map(|c| if is_dash(c) { '-' } else { c })
                .collect(),
            Tok::Pipe => return Err(t.error("empty pipeline element (no command before '|')")),
            Tok::Param { name, .. } => {
                return Err(t.error(format!("expected a command, found parameter -{name}")))
            }
            Tok::RParen | Tok::RBrace | Tok::Equals | Tok::Comma => return Err(self.unexpected(&t)),
            Tok::Newline | Tok::Semi | Tok::Eof => return Err(t.error("expected a command")),
            other => {
                return Err(t.error(format!(
                    "expected a command, found a value ({})",
                    describe(other)
                )))
            }
        };
        let mut args = Vec::new();
        loop {
            let t = self.peek().clone();
            match t.tok {
                Tok::Newline | Tok::Semi | Tok::Eof | Tok::Pipe | Tok::RParen | Tok::RBrace => {
                    break
                }
                Tok::Param { ref name, colon } => {
                    let name = name.clone();
                    self.next();
                    let value = if is_value_start(&self.peek().tok) {
                        Some(self.value()?)
                    } else if colon {
                        return Err(t.error(format!("missing value after '-{name}:'")));
                    } else {
                        None
                    };
                    args.push(Arg::Named { name, value });
                }
                ref tok if is_value_start(tok) => args.push(Arg::Positional(self.value()?)),
                _ => return Err(self.unexpected(&t)),
            }
        }
        let span = Span {
            start: t.start,
            end: self.prev_end(),
            line: t.line,
            column: t.column,
        };
        Ok(Command { name, args, span })
    }

    /// A primary, or an array when commas follow.
    fn value(&mut self) -> Result<Expr> {
        let first = self.primary()?;
        if self.peek().tok != Tok::Comma {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.peek().tok == Tok::Comma {
            let comma = self.next();
            self.skip(false);
            if !is_value_start(&self.peek().tok) {
                return Err(comma.error("missing value after ','"));
            }
            items.push(self.primary()?);
        }
        Ok(Expr::Array(items))
    }

    /// Inside `(` or `@(`: a word not followed by ',' starts a command.
    fn starts_command(&self) -> bool {
        is_command_word(&self.peek().tok) && *self.peek_at(1) != Tok::Comma
    }

    fn primary(&mut self) -> Result<Expr> {
        if self.depth >= MAX_DEPTH {
            return Err(self
                .peek()
                .error(format!("brackets nested more than {MAX_DEPTH} deep")));
        }
        self.depth += 1;
        let r = self.primary_inner();
        self.depth -= 1;
        r
    }

    fn primary_inner(&mut self) -> Result<Expr> {
        let t = self.next();
        let mut e = match t.tok.clone() {
            Tok::Word(w) => classify(w),
            Tok::Str(s) => Expr::Str(s),
            Tok::Var(v) => match v.to_ascii_lowercase().as_str() {
                "true" => Expr::Bool(true),
                "false" => Expr::Bool(false),
                "null" => Expr::Null,
                _ => Expr::Var(v),
            },
            Tok::LParen => {
                self.skip(false);
                let inner = if self.starts_command() {
                    Expr::Sub(self.pipeline()?)
                } else if is_value_start(&self.peek().tok) {
                    self.value()?
                } else if self.peek().tok == Tok::Eof {
                    return Err(t.error("unbalanced '(': missing closing ')'"));
                } else {
                    return Err(self.peek().error(format!(
                        "expected a value or command after '(', found {}",
                        describe(&self.peek().tok)
                    )));
                };
                self.skip(false);
                self.close(Tok::RParen, &t)?;
                inner
            }
            Tok::AtParen => self.array_items(&t)?,
            Tok::AtBrace => self.hash(&t)?,
            Tok::LBrace => self.block(&t)?,
            other => return Err(t.error(format!("expected a value, found {}", describe(&other)))),
        };
        while let Tok::Member(m) = &self.peek().tok {
            e = Expr::Prop(Box::new(e), m.clone());
            self.next();
        }
        Ok(e)
    }

    /// The inside of `@( … )`: values and commands, separated by commas,
    /// newlines or `;`, flattened into one array.
    fn array_items(&mut self, open: &Token) -> Result<Expr> {
        let mut items = Vec::new();
        loop {
            self.skip(true);
            match self.peek().tok {
                Tok::RParen | Tok::Eof => break,
                _ if self.starts_command() => items.push(Expr::Sub(self.pipeline()?)),
                ref t if is_value_start(t) => match self.value()? {
                    Expr::Array(v) => items.extend(v),
                    e => items.push(e),
                },
                _ => break,
            }
        }
        self.close(Tok::RParen, open)?;
        Ok(Expr::Array(items))
    }

    /// The inside of `@{ … }`: `key = value` entries separated by `;` or newlines.
    fn hash(&mut self, open: &Token) -> Result<Expr> {
        let mut entries = Vec::new();
        loop {
            self.skip(true);
            let t = self.peek().clone();
            let key = match t.tok {
                Tok::Word(k) | Tok::Str(k) => k,
                Tok::RBrace | Tok::Eof => break,
                ref other => {
                    return Err(t.error(format!(
                        "expected a hashtable key, found {}",
                        describe(other)
                    )))
                }
            };
            self.next();
            let eq = self.peek().clone();
            if eq.tok != Tok::Equals {
                return Err(eq.error(format!(
                    "hashtable entry '{key}' has no '=' (expected {key}=value)"
                )));
            }
            self.next();
            self.skip(false);
            if !is_value_start(&self.peek().tok) {
                return Err(eq.error(format!("missing value after '{key}=' in hashtable")));
            }
            entries.push((key, self.value()?));
            match self.peek().tok {
                Tok::Semi | Tok::Newline | Tok::RBrace | Tok::Eof => {}
                Tok::RParen => break, // mismatched closer: `close` says so
                ref other => {
                    return Err(self.peek().error(format!(
                        "expected ';' or '}}' after hashtable entry, found {}",
                        describe(other)
                    )))
                }
            }
        }
        self.close(Tok::RBrace, open)?;
        Ok(Expr::Hash(entries))
    }

    /// The inside of `{ … }`: a condition.
    fn block(&mut self, open: &Token) -> Result<Expr> {
        self.skip(false);
        if matches!(self.peek().tok, Tok::RBrace | Tok::Eof) {
            return Err(
                open.error("empty script block: write a condition such as {$_.Enabled -eq $false}")
            );
        }
        let c = self.cond()?;
        self.skip(false);
        self.close(Tok::RBrace, open)?;
        Ok(Expr::Block(Box::new(c)))
    }

    /// The keyword operator (`-and`, `-or`, `-not`) at the current token, if it is one.
    fn keyword(&self, word: &str) -> bool {
        matches!(&self.peek().tok, Tok::Param { name, colon: false } if name.eq_ignore_ascii_case(word))
    }

    fn cond(&mut self) -> Result<Cond> {
        let mut left = self.cond_and()?;
        while self.keyword("or") {
            self.next();
            self.skip(false);
            left = Cond::Or(Box::new(left), Box::new(self.cond_and()?));
        }
        Ok(left)
    }

    fn cond_and(&mut self) -> Result<Cond> {
        let mut left = self.cond_not()?;
        while self.keyword("and") {
            self.next();
            self.skip(false);
            left = Cond::And(Box::new(left), Box::new(self.cond_not()?));
        }
        Ok(left)
    }

    fn cond_not(&mut self) -> Result<Cond> {
        if self.depth >= MAX_DEPTH {
            return Err(self
                .peek()
                .error(format!("conditions nested more than {MAX_DEPTH} deep")));
        }
        self.depth += 1;
        let r = self.cond_not_inner();
        self.depth -= 1;
        r
    }

    fn cond_not_inner(&mut self) -> Result<Cond> {
        if self.keyword("not") {
            self.next();
            self.skip(false);
            return Ok(Cond::Not(Box::new(self.cond_not()?)));
        }
        let left = if self.peek().tok == Tok::LParen {
            let open = self.next();
            self.skip(false);
            let inner = self.cond()?;
            self.skip(false);
            self.close(Tok::RParen, &open)?;
            match inner {
                Cond::Value(mut e) => {
                    while let Tok::Member(m) = &self.peek().tok {
                        e = Expr::Prop(Box::new(e), m.clone());
                        self.next();
                    }
                    e
                }
                c => return Ok(c),
            }
        } else {
            self.operand()?
        };
        let t = self.peek().clone();
        match &t.tok {
            Tok::Param { name, .. }
                if name.eq_ignore_ascii_case("and") || name.eq_ignore_ascii_case("or") =>
            {
                Ok(Cond::Value(left))
            }
            Tok::Param { name, .. } => {
                let Some((op, case_sensitive)) = CmpOp::parse(name) else {
                    return Err(t.error(format!(
                        "unknown operator -{name} in a script block (supported: -eq -ne -gt -ge -lt -le -like -notlike -match -notmatch -contains -notcontains -in -notin, -and -or -not)"
                    )));
                };
                self.next();
                self.skip(false);
                if !is_value_start(&self.peek().tok) {
                    return Err(t.error(format!("missing value after '-{name}'")));
                }
                let right = self.operand()?;
                Ok(Cond::Cmp {
                    left,
                    op,
                    case_sensitive,
                    right,
                })
            }
            _ => Ok(Cond::Value(left)),
        }
    }

    /// A value inside a script block: no bare words (PowerShell would run them as
    /// commands) and no commands.
    fn operand(&mut self) -> Result<Expr> {
        let t = self.peek().clone();
        if !is_value_start(&t.tok) || t.tok == Tok::LBrace {
            return Err(t.error(format!(
                "expected a value in the script block, found {}",
                describe(&t.tok)
            )));
        }
        let e = self.value()?;
        fn plain(e: &Expr) -> std::result::Result<(), String> {
            match e {
                Expr::Bare(w) => Err(format!(
                    "bare word '{w}' in a script block: quote strings ('{w}')"
                )),
                Expr::Sub(_) => Err("commands are not supported inside a script block".into()),
                Expr::Block(_) => Err("a script block cannot be a value here".into()),
                Expr::Array(items) => items.iter().try_for_each(plain),
                Expr::Hash(entries) => entries.iter().try_for_each(|(_, v)| plain(v)),
                Expr::Prop(base, _) => plain(base),
                _ => Ok(()),
            }
        }
        plain(&e).map_err(|m| t.error(m))?;
        Ok(e)
    }
}
