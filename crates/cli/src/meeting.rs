//! `confab meeting`: create, list, show and remove meetings in the store (like `confab
//! user`, with the rules of `confab_admin::meetings`), and control a live meeting through
//! a server's REST API (`roster`, `admit`, `deny`, `mute`, `unmute`, `eject`).

use anyhow::{anyhow, bail, Context};
use clap::{Args, Subcommand};
use confab_admin::meetings::{
    create_meeting, dial_in_numbers, dial_in_numbers_at, meeting_json, meeting_json_with_numbers,
    parse_rfc3339, rfc3339, AccessNumber, MeetingRequest,
};
use confab_store::{Access, Meeting, MeetingKind, Presenters};
use serde_json::Value;
use std::path::PathBuf;

use crate::{load_config, open_store, split_address, Common};

fn parse_access(s: &str) -> Result<Access, String> {
    s.parse::<Access>().map_err(store_message)
}

fn parse_presenters(s: &str) -> Result<Presenters, String> {
    s.parse::<Presenters>().map_err(store_message)
}

fn parse_end(s: &str) -> Result<i64, String> {
    parse_rfc3339(s)
}

fn store_message(e: confab_store::StoreError) -> String {
    match e {
        confab_store::StoreError::Invalid(m) => m,
        e => e.to_string(),
    }
}

/// How to reach a server's REST API for live control.
#[derive(Args, Clone)]
pub struct Remote {
    /// The server's REST API, e.g. http://127.0.0.1:8080
    #[arg(long)]
    server: String,
    /// An administrator's bearer token (from POST /api/v1/tokens; or CONFAB_TOKEN)
    #[arg(
        long,
        env = "CONFAB_TOKEN",
        hide_env_values = true,
        conflicts_with = "user"
    )]
    token: Option<String>,
    /// Sign in as this user (user@domain) with their SIP password
    #[arg(long, requires = "password_file")]
    user: Option<String>,
    /// File whose first line is the user's SIP password
    #[arg(long)]
    password_file: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum MeetingCmd {
    /// Create a meeting: `confab meeting create --organizer alice@example.test --private
    /// --access Invited --invite bob@example.test`; unset values come from
    /// CsMeetingConfiguration and the organizer's CsConferencingPolicy
    Create {
        #[command(flatten)]
        common: Common,
        /// The organizer (user or user@domain), an existing user
        #[arg(long)]
        organizer: String,
        /// A private meeting: a new conference key and ID
        #[arg(long, conflicts_with = "assigned")]
        private: bool,
        /// The organizer's assigned meeting: the same key and ID every time
        #[arg(long)]
        assigned: bool,
        /// Who gets in directly: Locked, Invited, SameEnterprise (default) or Everyone
        #[arg(long, value_parser = parse_access)]
        access: Option<Access>,
        #[arg(long)]
        subject: Option<String>,
        /// Who is a presenter: None, Company or Everyone (default: DesignateAsPresenter)
        #[arg(long, value_parser = parse_presenters)]
        presenters: Option<Presenters>,
        /// Whether dial-in callers bypass the lobby (default: PstnCallersBypassLobby)
        #[arg(long)]
        pstn_bypass_lobby: Option<bool>,
        /// Invite a user (user@domain; repeatable): with --access Invited they get in directly
        #[arg(long = "invite")]
        invitees: Vec<String>,
        /// When a private meeting ends (RFC 3339, e.g. 2027-01-15T10:00:00Z); it expires 14
        /// days later
        #[arg(long, value_parser = parse_end)]
        end: Option<i64>,
        /// The site whose meeting configuration and conferencing policy apply (default Global)
        #[arg(long)]
        site: Option<String>,
        /// Print the meeting as JSON
        #[arg(long)]
        json: bool,
    },
    /// List meetings, all or one organizer's
    List {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        organizer: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show one meeting by its conference key
    Show {
        #[command(flatten)]
        common: Common,
        key: String,
        #[arg(long)]
        json: bool,
    },
    /// Remove a meeting by its conference key
    Remove {
        #[command(flatten)]
        common: Common,
        key: String,
    },
    /// The live roster and lobby of a meeting in progress (through --server's REST API)
    Roster {
        #[command(flatten)]
        remote: Remote,
        key: String,
        #[arg(long)]
        json: bool,
    },
    /// Let a participant waiting in the lobby in
    Admit {
        #[command(flatten)]
        remote: Remote,
        key: String,
        participant: String,
    },
    /// Refuse a participant waiting in the lobby
    Deny {
        #[command(flatten)]
        remote: Remote,
        key: String,
        participant: String,
    },
    /// Mute a participant
    Mute {
        #[command(flatten)]
        remote: Remote,
        key: String,
        participant: String,
    },
    /// Unmute a participant
    Unmute {
        #[command(flatten)]
        remote: Remote,
        key: String,
        participant: String,
    },
    /// Remove a participant from the meeting
    Eject {
        #[command(flatten)]
        remote: Remote,
        key: String,
        participant: String,
    },
    /// Have the focus call a user of this server into the meeting (dial-out)
    Dialout {
        #[command(flatten)]
        remote: Remote,
        key: String,
        /// The callee's SIP URI, e.g. sip:bob@example.test
        target: String,
    },
}

fn print_meeting(m: &Meeting, numbers: &[AccessNumber]) {
    let time = |t: Option<i64>| t.map(rfc3339).unwrap_or_default();
    println!("Identity        : {}", m.key);
    println!("Organizer       : sip:{}", m.organizer);
    println!("Uri             : {}", m.uri());
    println!("ConferenceId    : {}", m.conference_id);
    // what an invitation lists: the numbers of the organizer's dial-in region
    let dial_in: Vec<String> = numbers
        .iter()
        .map(|n| {
            let shown = if n.display_number.is_empty() {
                &n.line_uri
            } else {
                &n.display_number
            };
            format!("{shown} ({})", n.languages.join(", "))
        })
        .collect();
    println!("DialInNumbers   : {}", dial_in.join("; "));
    println!("MeetUrl         : {}", m.meet_url());
    println!("Kind            : {}", m.kind);
    println!("Subject         : {}", m.subject);
    println!("Access          : {}", m.access);
    println!("Presenters      : {}", m.presenters);
    println!("PstnBypassLobby : {}", m.pstn_bypass_lobby);
    println!("Invitees        : {}", m.invitees.join(", "));
    println!("CreatedAt       : {}", rfc3339(m.created_at));
    println!("EndTime         : {}", time(m.end_at));
    println!("LastUsed        : {}", time(m.last_used_at));
    println!(
        "ExpiresAt       : {}",
        m.expires_at.map(rfc3339).unwrap_or_else(|| "never".into())
    );
}

fn print_json(v: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// `user` or `user@domain` as `user@domain` (the configuration's first domain by default).
fn address(raw: &str, common: &Common) -> anyhow::Result<String> {
    let cfg = load_config(common)?;
    let raw = raw.trim();
    let raw = raw
        .strip_prefix("sip:")
        .or_else(|| raw.strip_prefix("SIP:"))
        .unwrap_or(raw);
    let (u, d) = split_address(raw, &cfg);
    Ok(format!("{u}@{d}"))
}

pub fn command(cmd: MeetingCmd) -> anyhow::Result<()> {
    match cmd {
        MeetingCmd::Create {
            common,
            organizer,
            private,
            assigned,
            access,
            subject,
            presenters,
            pstn_bypass_lobby,
            invitees,
            end,
            site,
            json,
        } => {
            let cfg = load_config(&common)?;
            let store = open_store(&cfg)?;
            let req = MeetingRequest {
                organizer: address(&organizer, &common)?,
                kind: match (private, assigned) {
                    (true, _) => Some(MeetingKind::Private),
                    (_, true) => Some(MeetingKind::Assigned),
                    _ => None,
                },
                access,
                subject,
                presenters,
                pstn_bypass_lobby,
                invitees,
                end_at: end,
                site,
            };
            let created = create_meeting(&store, &req).map_err(|e| anyhow!(store_message(e)))?;
            for w in &created.warnings {
                eprintln!("WARNING: {w}");
            }
            let numbers =
                dial_in_numbers_at(&store, &created.meeting.organizer, req.site.as_deref())?;
            if json {
                let mut v = meeting_json_with_numbers(&created.meeting, &numbers);
                v["warnings"] = serde_json::json!(created.warnings);
                print_json(&v)?;
            } else {
                print_meeting(&created.meeting, &numbers);
            }
        }
        MeetingCmd::List {
            common,
            organizer,
            json,
        } => {
            let cfg = load_config(&common)?;
            let store = open_store(&cfg)?;
            let organizer = organizer.map(|o| address(&o, &common)).transpose()?;
            let list = store.meetings(organizer.as_deref())?;
            if json {
                print_json(&Value::Array(list.iter().map(meeting_json).collect()))?;
            } else {
                for m in &list {
                    println!(
                        "{:<8} {:<8} {:<14} {:<9} {:<32} {}",
                        m.key,
                        m.conference_id,
                        m.access.as_str(),
                        m.kind.as_str(),
                        m.organizer,
                        m.subject
                    );
                }
                eprintln!("{} meeting(s)", list.len());
            }
        }
        MeetingCmd::Show { common, key, json } => {
            let cfg = load_config(&common)?;
            let store = open_store(&cfg)?;
            let Some(m) = store.meeting_by_key(&key)? else {
                bail!("no such meeting: {key}")
            };
            let numbers = dial_in_numbers(&store, &m.organizer)?;
            if json {
                print_json(&meeting_json_with_numbers(&m, &numbers))?;
            } else {
                print_meeting(&m, &numbers);
            }
        }
        MeetingCmd::Remove { common, key } => {
            let cfg = load_config(&common)?;
            let store = open_store(&cfg)?;
            let Some(m) = store.meeting_by_key(&key)? else {
                bail!("no such meeting: {key}")
            };
            if !store.remove_meeting(&m.organizer, &m.key)? {
                bail!("no such meeting: {key}");
            }
            println!("removed meeting {} of {}", m.key, m.organizer);
        }
        MeetingCmd::Roster { remote, key, json } => {
            let v = remote.call("GET", &format!("/meetings/{}/roster", encode(&key)))?;
            if json {
                print_json(&v)?;
            } else {
                let show = |title: &str, list: &Value| {
                    let list = list.as_array().cloned().unwrap_or_default();
                    println!("{title} ({})", list.len());
                    for p in &list {
                        println!(
                            "  {:<40} {:<10} {:<10} {}{}",
                            p["id"].as_str().unwrap_or_default(),
                            p["role"].as_str().unwrap_or_default(),
                            p["origin"].as_str().unwrap_or_default(),
                            p["display"].as_str().unwrap_or_default(),
                            if p["muted"] == Value::Bool(true) {
                                " (muted)"
                            } else {
                                ""
                            }
                        );
                    }
                };
                show("participants", &v["participants"]);
                show("lobby", &v["lobby"]);
            }
        }
        MeetingCmd::Admit {
            remote,
            key,
            participant,
        } => act(&remote, &key, &participant, "admit")?,
        MeetingCmd::Deny {
            remote,
            key,
            participant,
        } => act(&remote, &key, &participant, "deny")?,
        MeetingCmd::Mute {
            remote,
            key,
            participant,
        } => act(&remote, &key, &participant, "mute")?,
        MeetingCmd::Unmute {
            remote,
            key,
            participant,
        } => act(&remote, &key, &participant, "unmute")?,
        MeetingCmd::Eject {
            remote,
            key,
            participant,
        } => act(&remote, &key, &participant, "remove")?,
        MeetingCmd::Dialout {
            remote,
            key,
            target,
        } => act(&remote, &key, &target, "dialout")?,
    }
    Ok(())
}

fn act(remote: &Remote, key: &str, participant: &str, action: &str) -> anyhow::Result<()> {
    remote.call(
        "POST",
        &format!(
            "/meetings/{}/participants/{}/{action}",
            encode(key),
            encode(participant)
        ),
    )?;
    println!("{action}: {participant} in meeting {key}");
    Ok(())
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Remote {
    fn authorization(&self) -> anyhow::Result<String> {
        use base64::Engine;
        if let Some(t) = &self.token {
            return Ok(format!("Bearer {t}"));
        }
        let (Some(user), Some(file)) = (&self.user, &self.password_file) else {
            bail!("sign in with --token TOKEN (an administrator's) or --user USER --password-file FILE");
        };
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let password = text.lines().next().unwrap_or_default();
        if password.is_empty() {
            bail!("{} has no password on its first line", file.display());
        }
        if user.contains(':') {
            bail!("--user is user@domain, without sip: (HTTP Basic user names have no colon)");
        }
        Ok(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        ))
    }

    /// Calls the API; the JSON answer (Null for 204), or the server's error message.
    fn call(&self, method: &str, path: &str) -> anyhow::Result<Value> {
        let base = self.server.trim_end_matches('/');
        let url = format!("{base}/api/v1{path}");
        let req = ureq::request(method, &url).set("Authorization", &self.authorization()?);
        let r = if method == "POST" {
            req.send_string("")
        } else {
            req.call()
        };
        match r {
            Ok(resp) if resp.status() == 204 => Ok(Value::Null),
            Ok(resp) => Ok(resp.into_json()?),
            Err(ureq::Error::Status(code, resp)) => {
                let v: Value = resp.into_json().unwrap_or(Value::Null);
                bail!(
                    "{} ({code})",
                    v["error"].as_str().unwrap_or("request failed")
                )
            }
            Err(e) => bail!("cannot reach {base}: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn encoding() {
        assert_eq!(
            super::encode("sip:bob@b.test;x=1"),
            "sip%3Abob%40b.test%3Bx%3D1"
        );
        assert_eq!(super::encode("AB12-._~"), "AB12-._~");
    }
}
