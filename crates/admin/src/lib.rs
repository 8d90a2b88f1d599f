//! confab's administration: the Lync Management Shell language and its cmdlets, with
//! role-based access control and an audit log, over the central store. The local shell,
//! the remote shell and the REST API all run scripts through [`Session::run`].
//!
//! - [`parse`] (lexer.rs, parser.rs, ast.rs): the subset of PowerShell the Lync Server
//!   2013 cookbook uses, en dashes and curly quotes included
//! - [`schema`]: Lync's configuration objects, scopes, properties and defaults
//! - [`cmdlets`]: the cmdlet registry and implementations
//! - [`roles`]: built-in and custom admin roles
//! - [`exec`]: checking (names, types, RBAC) then running a script, auditing changes
//! - [`meetings`]: the rules of meeting creation (configuration and policy resolution)
//! - [`pins`]: the rules of users' dial-in PINs (CsPinPolicy resolution and checks)
//! - [`forwarding`]: users' call forwarding settings checked against their policies
//! - [`voice`]: enterprise voice's pattern, translation and New-CsVoiceRegex logic (the
//!   seam to confab-voice)
//! - [`object`]: pipeline objects and Lync-style output
//! - [`pipeline`]: PowerShell's Where-Object, Select-Object, Sort-Object, Measure-Object,
//!   Format-List, Format-Table and Export-Csv; help.rs: Get-Help and Get-Command

mod ast;
pub mod cmdlets;
pub mod exec;
pub mod forwarding;
mod help;
mod lexer;
pub mod meetings;
pub mod object;
mod parser;
pub mod pins;
pub mod pipeline;
pub mod policies;
pub mod roles;
pub mod schema;
pub mod voice;

pub use ast::{Arg, CmpOp, Command, Cond, Expr, Pipeline, Script, Span, Statement};
pub use exec::{ExecError, Output, Principal, Session};

/// The roles of an administrator account, resolved (built-in or custom from the store);
/// names that no longer exist are skipped.
pub fn principal_for(
    store: &confab_store::Store,
    admin: &confab_store::Admin,
) -> Result<Principal, confab_store::StoreError> {
    let mut roles = vec![];
    for name in &admin.roles {
        if let Some(r) = roles::Role::builtin(name) {
            roles.push(r);
        } else if let Some(row) = store.get_role(name)? {
            roles.push(roles::Role {
                identity: row.identity,
                template: Some(row.template),
                cmdlets: row.cmdlets,
                config_scopes: row.config_scopes,
                user_scopes: row.user_scopes,
                is_standard: false,
            });
        }
    }
    Ok(Principal {
        name: admin.name.clone(),
        roles,
    })
}

/// Unix milliseconds as `YYYY-MM-DD hh:mm:ss` UTC.
pub fn format_time(ms: i64) -> String {
    let t = confab_sip::message::UtcTime::from_unix(ms.div_euclid(1000));
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

use std::fmt;

/// A syntax error, positioned at 1-based line and column (in characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub message: String,
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for ParseError {}

/// Parses a whole script (statements separated by newlines or `;`).
pub fn parse(src: &str) -> Result<Script, ParseError> {
    let tokens = lexer::tokenize(src)?;
    parser::Parser::new(tokens).script()
}

/// The candidate closest to `word`, for "did you mean …?" messages:
/// case-insensitive, edit distance at most 2, otherwise a candidate that
/// `word` is a prefix of. Ties go to the earliest candidate.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let w: Vec<char> = word.to_lowercase().chars().collect();
    if w.is_empty() {
        return None;
    }
    let mut best: Option<(usize, &'a str)> = None;
    for cand in candidates {
        let c: Vec<char> = cand.to_lowercase().chars().collect();
        let score = match levenshtein(&w, &c) {
            d if d <= 2 => d,
            _ if c.starts_with(&w) => 3,
            _ => continue,
        };
        if !matches!(best, Some((s, _)) if s <= score) {
            best = Some((score, cand));
        }
    }
    best.map(|(_, c)| c)
}

fn levenshtein(a: &[char], b: &[char]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}
