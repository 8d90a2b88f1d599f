//! `confab shell`: the Lync Management Shell habits — interactive (history, tab completion
//! of cmdlets and parameters), `-c 'COMMANDS'` or a script file — against the local store
//! or, with `--server URL`, a remote confab through its REST API. Every caller signs in as
//! an administrator and every command is checked against their roles.

use anyhow::{anyhow, bail, Context};
use confab_admin::{cmdlets, principal_for, Session};
use confab_store::Store;
use serde_json::{json, Value};
use std::io::IsTerminal;

/// Who is signing in: name from --admin or CONFAB_ADMIN, password from
/// CONFAB_ADMIN_PASSWORD or a prompt.
pub fn credentials(admin: Option<String>) -> anyhow::Result<(String, String)> {
    let name = admin
        .or_else(|| std::env::var("CONFAB_ADMIN").ok())
        .ok_or_else(|| anyhow!("name an administrator with --admin NAME (or CONFAB_ADMIN)"))?;
    let password = match std::env::var("CONFAB_ADMIN_PASSWORD") {
        Ok(p) => p,
        Err(_) if std::io::stdin().is_terminal() => {
            rpassword::prompt_password(format!("password for {name}: "))?
        }
        Err(_) => bail!("no password: set CONFAB_ADMIN_PASSWORD or run interactively"),
    };
    Ok((name, password))
}

/// Checks an administrator's password against the local store; a refusal is written to
/// the audit log (with the name only when it could be an account's).
pub fn sign_in(
    store: &Store,
    name: &str,
    password: &str,
    origin: &str,
) -> anyhow::Result<confab_store::Admin> {
    match store.verify_admin(name, password)? {
        Some(admin) => Ok(admin),
        None => {
            let who = if confab_store::validate_admin_name(name).is_ok() {
                name
            } else {
                "(invalid name)"
            };
            store.append_audit(
                who,
                origin,
                "sign-in",
                false,
                "refused: invalid name or password",
            )?;
            bail!("sign-in refused for '{name}'")
        }
    }
}

enum Target<'a> {
    Local(Session<'a>),
    Remote { base: String, token: String },
}

impl Target<'_> {
    /// Runs a script; returns the formatted output or the error message. Warnings (a
    /// property confab does not enforce, …) go to standard error as `WARNING: …`, as the
    /// Lync Management Shell prints them.
    fn run(&mut self, script: &str) -> Result<String, String> {
        match self {
            Target::Local(s) => s
                .run(script)
                .map(|o| {
                    print_warnings(o.warnings.iter().map(String::as_str));
                    o.text
                })
                .map_err(|e| e.to_string()),
            Target::Remote { base, token } => {
                let r = ureq::post(&format!("{base}/api/v1/cmdlets"))
                    .set("Authorization", &format!("Bearer {token}"))
                    .send_json(json!({ "command": script }));
                match r {
                    Ok(resp) => {
                        let v: Value = resp.into_json().map_err(|e| e.to_string())?;
                        print_warnings(
                            v["warnings"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .filter_map(Value::as_str),
                        );
                        Ok(v["text"].as_str().unwrap_or_default().to_string())
                    }
                    Err(ureq::Error::Status(_, resp)) => {
                        let v: Value = resp.into_json().unwrap_or(Value::Null);
                        Err(v["error"].as_str().unwrap_or("request failed").to_string())
                    }
                    Err(e) => Err(format!("cannot reach {base}: {e}")),
                }
            }
        }
    }
}

fn print_warnings<'w>(warnings: impl Iterator<Item = &'w str>) {
    for w in warnings {
        eprintln!("WARNING: {w}");
    }
}

pub struct ShellArgs {
    pub admin: Option<String>,
    pub server: Option<String>,
    pub command: Option<String>,
    pub file: Option<std::path::PathBuf>,
    pub pool: String,
    /// `<data_dir>/export`: the only folder export and import cmdlets use.
    pub export_dir: std::path::PathBuf,
}

pub fn run(store: Option<&Store>, args: ShellArgs) -> anyhow::Result<()> {
    let (name, password) = credentials(args.admin.clone())?;
    let mut target = match &args.server {
        Some(url) => {
            let base = url.trim_end_matches('/').to_string();
            let resp = ureq::post(&format!("{base}/api/v1/tokens"))
                .send_json(json!({ "name": name, "password": password }));
            let token = match resp {
                Ok(r) => r.into_json::<Value>()?["token"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                Err(ureq::Error::Status(401, _)) => bail!("sign-in refused for '{name}' at {base}"),
                Err(ureq::Error::Status(code @ (429 | 503), resp)) => {
                    let wait = resp.header("Retry-After").unwrap_or("a few").to_string();
                    let v: Value = resp.into_json().unwrap_or(Value::Null);
                    bail!(
                        "sign-in for '{name}' at {base} not attempted ({code}): {}; retry in {wait} s",
                        v["error"].as_str().unwrap_or("too many sign-ins")
                    )
                }
                Err(e) => bail!("cannot reach {base}: {e}"),
            };
            Target::Remote { base, token }
        }
        None => {
            let store = store.expect("a local store");
            if store.admin_count()? == 0 {
                bail!("there is no administrator yet: create one with `confab admin add NAME --role CsAdministrator`");
            }
            let origin = format!("local shell ({})", whoami());
            let admin = sign_in(store, &name, &password, &origin)?;
            let principal = principal_for(store, &admin)?;
            Target::Local(
                Session::new(store, principal, &origin, &args.pool)
                    .with_export_dir(args.export_dir.clone()),
            )
        }
    };
    if let Some(cmds) = &args.command {
        return finish(target.run(cmds));
    }
    if let Some(f) = &args.file {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        return finish(target.run(&text));
    }
    interactive(&mut target)
}

fn whoami() -> String {
    std::env::var("USER").unwrap_or_else(|_| "unknown user".into())
}

fn finish(r: Result<String, String>) -> anyhow::Result<()> {
    match r {
        Ok(text) => {
            print!("{text}");
            Ok(())
        }
        Err(e) => bail!("{e}"),
    }
}

/// Completes cmdlet names, and parameter names after a cmdlet.
struct Completer;

impl rustyline::completion::Completer for Completer {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let before = &line[..pos];
        let start = before
            .rfind([' ', '|', ';', '('])
            .map(|i| i + 1)
            .unwrap_or(0);
        let word = &before[start..];
        if let Some(p) = word.strip_prefix(['-', '\u{2013}']) {
            // the cmdlet of this pipeline element
            let seg = &before[before.rfind(['|', ';', '(']).map(|i| i + 1).unwrap_or(0)..];
            let name = seg.split_whitespace().next().unwrap_or("");
            let cands = cmdlets::find(name)
                .map(|c| {
                    c.params
                        .iter()
                        .filter(|x| {
                            x.name
                                .to_ascii_lowercase()
                                .starts_with(&p.to_ascii_lowercase())
                        })
                        .map(|x| format!("-{}", x.name))
                        .collect()
                })
                .unwrap_or_default();
            return Ok((start, cands));
        }
        let cands = cmdlets::names()
            .filter(|n| {
                n.to_ascii_lowercase()
                    .starts_with(&word.to_ascii_lowercase())
            })
            .map(str::to_string)
            .collect();
        Ok((start, cands))
    }
}

impl rustyline::hint::Hinter for Completer {
    type Hint = String;
}
impl rustyline::highlight::Highlighter for Completer {}
impl rustyline::validate::Validator for Completer {}
impl rustyline::Helper for Completer {}

fn interactive(target: &mut Target) -> anyhow::Result<()> {
    let mut rl = rustyline::Editor::<Completer, rustyline::history::DefaultHistory>::new()?;
    rl.set_helper(Some(Completer));
    let history = std::env::var("HOME")
        .map(|h| std::path::PathBuf::from(h).join(".confab_history"))
        .ok();
    if let Some(h) = &history {
        let _ = rl.load_history(h);
    }
    println!("confab shell — Lync Management Shell cmdlets. Get-Command lists them, Get-Help NAME describes one; exit quits.");
    loop {
        match rl.readline("PS confab> ") {
            Ok(line) => {
                let line = line.trim();
                if line.is_empty() {
                    continue;
                }
                if line.eq_ignore_ascii_case("exit") || line.eq_ignore_ascii_case("quit") {
                    break;
                }
                let _ = rl.add_history_entry(line);
                match target.run(line) {
                    Ok(text) => print!("{text}"),
                    Err(e) => eprintln!("{e}"),
                }
            }
            Err(rustyline::error::ReadlineError::Interrupted) => continue,
            Err(_) => break,
        }
    }
    if let Some(h) = &history {
        let _ = rl.save_history(h);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustyline::completion::Completer as _;

    fn complete(line: &str) -> (usize, Vec<String>) {
        let h = rustyline::history::DefaultHistory::new();
        Completer
            .complete(line, line.len(), &rustyline::Context::new(&h))
            .unwrap()
    }

    #[test]
    fn tab_completes_cmdlets_and_their_parameters() {
        let (start, c) = complete("Set-CsMeetingC");
        assert_eq!(start, 0);
        assert_eq!(c, ["Set-CsMeetingConfiguration"]);
        let (start, c) = complete("Set-CsMeetingConfiguration -Pstn");
        assert_eq!(start, 27);
        assert_eq!(c, ["-PstnCallersBypassLobby"]);
        let (_, c) = complete("Get-CsAdminRole x | select-o");
        assert_eq!(c, ["Select-Object"]);
        let (_, c) = complete("Get-CsAdminRole x | Select-Object –Exp");
        assert_eq!(
            c,
            ["-ExpandProperty"],
            "the en dash the cookbook prints completes too"
        );
    }
}
