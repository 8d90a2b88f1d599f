//! Hand-written lexer. Turns source text into tokens, resolving string
//! escapes, comments, cookbook dashes and curly quotes on the way.

use crate::ast::{ends_word, is_dash, is_dquote, is_squote};
use crate::ParseError;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// An unquoted word (possibly a number; the parser decides).
    Word(String),
    /// A quoted string, escapes resolved.
    Str(String),
    /// `$name`
    Var(String),
    /// `-Name` or `-Name:` (colon: a value must follow).
    Param {
        name: String,
        colon: bool,
    },
    /// `.Name` directly after a variable, `)` or another member.
    Member(String),
    Newline,
    Semi,
    Pipe,
    Comma,
    Equals,
    LParen,
    AtParen,
    AtBrace,
    /// `{`: a script block.
    LBrace,
    RParen,
    RBrace,
    Eof,
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub tok: Tok,
    pub line: u32,
    pub column: u32,
    pub start: usize,
    pub end: usize,
}

impl Token {
    pub fn error(&self, message: impl Into<String>) -> ParseError {
        ParseError {
            message: message.into(),
            line: self.line,
            column: self.column,
        }
    }
}

#[derive(Clone, Copy)]
struct State {
    i: usize,
    line: u32,
    column: u32,
}

struct Lexer<'a> {
    src: &'a str,
    at: State,
    /// Open brackets: `true` for a hashtable, where `=` ends a bare word.
    open: Vec<bool>,
}

pub(crate) fn tokenize(src: &str) -> Result<Vec<Token>, ParseError> {
    let mut lx = Lexer {
        src,
        at: State {
            i: 0,
            line: 1,
            column: 1,
        },
        open: Vec::new(),
    };
    let mut toks: Vec<Token> = Vec::new();
    loop {
        // `.Name` glued to a variable, `)` or member is property access.
        let glued = toks.last().is_some_and(|t| {
            t.end == lx.at.i && matches!(t.tok, Tok::Var(_) | Tok::RParen | Tok::Member(_))
        });
        if glued && lx.peek() == Some('.') && lx.peek2().is_some_and(is_ident_start) {
            let start = lx.at;
            lx.bump();
            let name = lx.take_while(is_ident);
            toks.push(lx.token(Tok::Member(name), start));
            continue;
        }
        lx.skip_space()?;
        let start = lx.at;
        let Some(c) = lx.peek() else {
            toks.push(lx.token(Tok::Eof, start));
            return Ok(toks);
        };
        let tok = lx.token_at(c, start)?;
        toks.push(lx.token(tok, start));
    }
}

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.src[self.at.i..].chars().next()
    }

    fn peek2(&self) -> Option<char> {
        self.src[self.at.i..].chars().nth(1)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at.i += c.len_utf8();
        if c == '\n' {
            self.at.line += 1;
            self.at.column = 1;
        } else {
            self.at.column += 1;
        }
        Some(c)
    }

    fn take_while(&mut self, f: impl Fn(char) -> bool) -> String {
        let mut s = String::new();
        while let Some(c) = self.peek().filter(|&c| f(c)) {
            s.push(c);
            self.bump();
        }
        s
    }

    fn error(&self, at: State, message: impl Into<String>) -> ParseError {
        ParseError {
            message: message.into(),
            line: at.line,
            column: at.column,
        }
    }

    fn token(&self, tok: Tok, start: State) -> Token {
        Token {
            tok,
            line: start.line,
            column: start.column,
            start: start.i,
            end: self.at.i,
        }
    }

    /// Spaces, comments (`# …`, `<# … #>`) and backtick line continuations.
    fn skip_space(&mut self) -> Result<(), ParseError> {
        loop {
            match self.peek() {
                Some(c) if c.is_whitespace() && c != '\n' => {
                    self.bump();
                }
                Some('#') => {
                    self.take_while(|c| c != '\n');
                }
                Some('<') if self.peek2() == Some('#') => {
                    let start = self.at;
                    let Some(len) = self.src[self.at.i + 2..].find("#>") else {
                        return Err(self.error(start, "unterminated block comment (missing #>)"));
                    };
                    let end = self.at.i + 2 + len + 2;
                    while self.at.i < end {
                        self.bump();
                    }
                }
                Some('`') if matches!(self.peek2(), Some('\n' | '\r')) => {
                    self.bump();
                    self.take_while(|c| c == '\r');
                    self.bump();
                }
                _ => return Ok(()),
            }
        }
    }

    fn token_at(&mut self, c: char, start: State) -> Result<Tok, ParseError> {
        let punct = match c {
            '\n' => Some(Tok::Newline),
            ';' => Some(Tok::Semi),
            '|' => Some(Tok::Pipe),
            ',' => Some(Tok::Comma),
            '=' => Some(Tok::Equals),
            '(' => Some(Tok::LParen),
            ')' | '}' => {
                self.open.pop();
                Some(if c == ')' { Tok::RParen } else { Tok::RBrace })
            }
            _ => None,
        };
        if let Some(tok) = punct {
            if tok == Tok::LParen {
                self.open.push(false);
            }
            self.bump();
            return Ok(tok);
        }
        match c {
            '@' if matches!(self.peek2(), Some('(' | '{')) => {
                self.bump();
                let hash = self.bump() == Some('{');
                self.open.push(hash);
                Ok(if hash { Tok::AtBrace } else { Tok::AtParen })
            }
            '$' if self.peek2().is_some_and(is_ident) => {
                self.bump();
                let mut name = self.take_while(is_ident);
                // scope-qualified: $env:Path
                if self.peek() == Some(':') && self.peek2().is_some_and(is_ident_start) {
                    self.bump();
                    name.push(':');
                    name.push_str(&self.take_while(is_ident));
                }
                Ok(Tok::Var(name))
            }
            c if is_dash(c) => self.dash(start),
            c if is_dquote(c) || is_squote(c) => Ok(Tok::Str(self.string()?)),
            '{' => {
                self.bump();
                self.open.push(false);
                Ok(Tok::LBrace)
            }
            '[' => Err(self.error(
                start,
                "unexpected character '[' (type literals are not supported)",
            )),
            '$' | '@' | '&' | '<' | '>' | ']' => {
                Err(self.error(start, format!("unexpected character '{c}'")))
            }
            c if c.is_control() => Err(self.error(start, format!("unexpected character {:?}", c))),
            _ => Ok(Tok::Word(self.bare_word(String::new())?)),
        }
    }

    /// After a dash: `-Name`, `-Name:`, or a word such as `-5`.
    fn dash(&mut self, start: State) -> Result<Tok, ParseError> {
        self.bump();
        if self.peek().is_some_and(is_ident_start) {
            let name = self.take_while(|c| is_ident(c) || c == '?');
            match self.peek() {
                Some(':') => {
                    self.bump();
                    return Ok(Tok::Param { name, colon: true });
                }
                None => return Ok(Tok::Param { name, colon: false }),
                Some(c) if ends_word(c) => return Ok(Tok::Param { name, colon: false }),
                _ => {
                    // e.g. `-foo.bar`: a plain word after all
                    self.at = start;
                    self.bump();
                }
            }
        }
        Ok(Tok::Word(self.bare_word("-".to_string())?))
    }

    /// A bare word, appended to `s`. Quoted parts are glued on (`a"b c"`
    /// is the word `ab c`, as in PowerShell); a backtick escapes a character.
    fn bare_word(&mut self, mut s: String) -> Result<String, ParseError> {
        let in_hash = self.open.last() == Some(&true);
        while let Some(c) = self.peek() {
            if ends_word(c) || (in_hash && c == '=') {
                break;
            } else if c == '`' {
                self.bump();
                match self.bump() {
                    Some(e) => s.push(e),
                    None => break,
                }
            } else if is_dquote(c) || is_squote(c) {
                s.push_str(&self.string()?);
            } else {
                s.push(c);
                self.bump();
            }
        }
        Ok(s)
    }

    /// A quoted string starting at the current character.
    fn string(&mut self) -> Result<String, ParseError> {
        let start = self.at;
        let double = self.bump().is_some_and(is_dquote);
        let is_quote = if double { is_dquote } else { is_squote };
        let unterminated = |lx: &Self| {
            let q = if double { '"' } else { '\'' };
            lx.error(start, format!("unterminated string (missing closing {q})"))
        };
        let mut s = String::new();
        loop {
            let Some(c) = self.bump() else {
                return Err(unterminated(self));
            };
            if double && c == '`' {
                let Some(e) = self.bump() else {
                    return Err(unterminated(self));
                };
                s.push(match e {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    '0' => '\0',
                    'a' => '\x07',
                    'b' => '\x08',
                    'e' => '\x1b',
                    'f' => '\x0c',
                    'v' => '\x0b',
                    other => other,
                });
            } else if is_quote(c) {
                // a doubled quote stands for one quote
                match self.peek() {
                    Some(n) if is_quote(n) => {
                        self.bump();
                        s.push(if double { '"' } else { '\'' });
                    }
                    _ => return Ok(s),
                }
            } else {
                s.push(c);
            }
        }
    }
}
