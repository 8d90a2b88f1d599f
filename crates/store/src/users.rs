//! User accounts. Only HA1 hashes are stored (MD5 and SHA-256, realm = the user's domain), so a
//! leaked database does not reveal passwords and the server never needs them.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::db::{vals, Conn, Row};
use confab_sip::digest::{ha1, Algorithm};

use crate::validate::{
    normalize_domain, normalize_ou, validate_display_name, validate_password, validate_username,
};
use crate::{Store, StoreError};

/// A stored account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    /// As entered (case kept); lookups ignore case.
    pub username: String,
    /// Lower-cased; also the digest realm.
    pub domain: String,
    pub display_name: String,
    pub enabled: bool,
    /// lower hex H(username:domain:password), MD5.
    pub ha1_md5: String,
    /// lower hex H(username:domain:password), SHA-256.
    pub ha1_sha256: String,
    /// lower hex MD5 of `username@domain:domain:password`, for clients whose digest user name
    /// is the whole address (desk phones, Lync clients); empty for a password set before
    /// confab stored it.
    pub ha1_md5_at_domain: String,
    /// lower hex MD5 of `username@:domain:password`, for clients that send `user@` (sipsak).
    pub ha1_md5_at: String,
    /// Unix seconds.
    pub created_at: i64,
    /// The organisational unit the user is in (an LDAP DN such as
    /// `OU=Sales,DC=example,DC=test`, canonical spelling), which OU-scoped admin roles
    /// (`UserScopes` `OU:<dn>`) are checked against; `None`: in no OU.
    pub ou: Option<String>,
    /// The user's phone number, Lync's LineURI, canonical `tel:+<digits>[;ext=<digits>]`
    /// (unique among users): a dial-in leader keys its number or extension
    /// ([`Store::user_by_number`]). `None`: no number.
    pub line_uri: Option<String>,
    /// Lync's EnterpriseVoiceEnabled: the user may call phone numbers (voice routing).
    pub enterprise_voice_enabled: bool,
    /// The user's call forwarding settings as JSON (`confab_voice::CallForwarding`, checked
    /// by `confab_admin::forwarding::check_forwarding` before it is stored); `None`: the
    /// defaults.
    pub call_forwarding: Option<String>,
    /// Lync's HostedVoiceMail: unanswered and declined calls (and calls forwarded to
    /// `voicemail`) go to the user's CsHostedVoicemailPolicy Destination.
    pub hosted_voicemail: bool,
}

impl User {
    /// `username@domain`, the address-of-record without scheme.
    pub fn address(&self) -> String {
        format!("{}@{}", self.username, self.domain)
    }

    /// The stored HA1 for `alg`, what a digest verifier needs.
    pub fn ha1(&self, alg: Algorithm) -> &str {
        match alg {
            Algorithm::Md5 => &self.ha1_md5,
            Algorithm::Sha256 => &self.ha1_sha256,
        }
    }
}

/// Input for [`Store::add_user`].
#[derive(Debug, Clone, Copy)]
pub struct NewUser<'a> {
    pub username: &'a str,
    pub domain: &'a str,
    pub display_name: &'a str,
    pub password: &'a str,
}

const USER_COLUMNS: &str =
    "id, username, domain, display_name, enabled, ha1_md5, ha1_sha256, created_at, ha1_md5_at_domain, ha1_md5_at, ou, line_uri, enterprise_voice_enabled, call_forwarding, hosted_voicemail";

/// The HA1 hashes of one password: MD5 and SHA-256 over `username`, MD5 over `username@domain`
/// and over `username@`.
pub(crate) fn hashes(username: &str, domain: &str, password: &str) -> [String; 4] {
    [
        ha1(Algorithm::Md5, username, domain, password),
        ha1(Algorithm::Sha256, username, domain, password),
        ha1(
            Algorithm::Md5,
            &format!("{username}@{domain}"),
            domain,
            password,
        ),
        ha1(Algorithm::Md5, &format!("{username}@"), domain, password),
    ]
}

fn user_from_row(r: &Row) -> Result<User, StoreError> {
    Ok(User {
        id: r.get(0)?,
        username: r.get(1)?,
        domain: r.get(2)?,
        display_name: r.get(3)?,
        enabled: r.get(4)?,
        ha1_md5: r.get(5)?,
        ha1_sha256: r.get(6)?,
        created_at: r.get(7)?,
        ha1_md5_at_domain: r.get(8)?,
        ha1_md5_at: r.get(9)?,
        ou: Some(r.get::<String>(10)?).filter(|o| !o.is_empty()),
        line_uri: r.get(11)?,
        enterprise_voice_enabled: r.get(12)?,
        call_forwarding: r.get(13)?,
        hosted_voicemail: r.get(14)?,
    })
}

/// The UNIQUE lookup key: case-insensitive on both parts.
pub(crate) fn user_key(username: &str, domain: &str) -> String {
    format!(
        "{}@{}",
        username.to_ascii_lowercase(),
        domain.to_ascii_lowercase()
    )
}

pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Every write transaction that touches users calls this, so readers in other processes can
/// tell their cache is stale by comparing one integer.
fn bump_users_version(conn: &Conn<'_>) -> Result<(), StoreError> {
    crate::bump_version(conn, "users_version")
}

pub(crate) use crate::db::is_unique_violation;

/// Longest stored call forwarding settings (JSON text): 25 team members and five targets fit
/// many times over.
pub const MAX_CALL_FORWARDING_LEN: usize = 16 * 1024;

/// What the store itself checks of call forwarding settings (the rules are confab-voice's):
/// a JSON object of bounded size.
pub(crate) fn check_call_forwarding_json(j: &str) -> Result<(), StoreError> {
    if j.len() > MAX_CALL_FORWARDING_LEN {
        return Err(StoreError::Invalid(format!(
            "call forwarding settings are longer than {MAX_CALL_FORWARDING_LEN} bytes"
        )));
    }
    match serde_json::from_str::<serde_json::Value>(j) {
        Ok(serde_json::Value::Object(_)) => Ok(()),
        _ => Err(StoreError::Invalid(
            "call forwarding settings must be a JSON object".into(),
        )),
    }
}

/// Longest number (digits after `+`) and extension of a LineURI.
pub const MAX_LINE_URI_DIGITS: usize = 20;

/// A LineURI in its canonical form: `tel:+<digits>` with an optional `;ext=<digits>`
/// (`tel:` and `ext` in any case, blanks around ignored), as Lync's `Set-CsUser -LineURI`
/// takes it. A clear error names what is wrong.
pub fn normalize_line_uri(raw: &str) -> Result<String, StoreError> {
    let bad = |why: &str| {
        StoreError::Invalid(format!(
            "LineURI {raw:?} {why}; use tel:+<digits> or tel:+<digits>;ext=<digits>, e.g. tel:+14255550100;ext=100"
        ))
    };
    let t = raw.trim();
    let rest = t
        .get(..4)
        .filter(|p| p.eq_ignore_ascii_case("tel:"))
        .map(|_| &t[4..])
        .ok_or_else(|| bad("does not start with tel:"))?;
    let rest = rest
        .strip_prefix('+')
        .ok_or_else(|| bad("is not an E.164 number (tel:+…)"))?;
    let (number, ext) = match rest.split_once(';') {
        Some((n, p)) => {
            let e = p
                .get(..4)
                .filter(|k| k.eq_ignore_ascii_case("ext="))
                .map(|_| &p[4..])
                .ok_or_else(|| bad("has a parameter other than ;ext="))?;
            (n, Some(e))
        }
        None => (rest, None),
    };
    let digits = |s: &str| {
        !s.is_empty() && s.len() <= MAX_LINE_URI_DIGITS && s.bytes().all(|c| c.is_ascii_digit())
    };
    if !digits(number) {
        return Err(bad(&format!(
            "has no number of 1 to {MAX_LINE_URI_DIGITS} digits after tel:+"
        )));
    }
    match ext {
        Some(e) if !digits(e) => Err(bad(&format!(
            "has an extension that is not 1 to {MAX_LINE_URI_DIGITS} digits"
        ))),
        Some(e) => Ok(format!("tel:+{number};ext={e}")),
        None => Ok(format!("tel:+{number}")),
    }
}

pub(crate) fn no_such_user(username: &str, domain: &str) -> StoreError {
    StoreError::NoSuchUser(format!("{username}@{domain}"))
}

impl Store {
    /// Creates a user; `UserExists` if the same username@domain exists in any letter case.
    pub fn add_user(&self, u: &NewUser) -> Result<User, StoreError> {
        self.add_user_in_ou(u, None)
    }

    /// [`Store::add_user`] in the organisational unit `ou` (an LDAP DN, checked and stored in
    /// its canonical spelling; `None`: in no OU).
    pub fn add_user_in_ou(&self, u: &NewUser, ou: Option<&str>) -> Result<User, StoreError> {
        let ou = ou.map(normalize_ou).transpose()?;
        validate_username(u.username)?;
        let domain = normalize_domain(u.domain)?;
        validate_password(u.password)?;
        validate_display_name(u.display_name)?;
        let [md5, sha256, at_domain, at] = hashes(u.username, &domain, u.password);
        let ts = now();

        let id: i64 = self.transaction(|tx| {
            let inserted = tx.query_one(
                "INSERT INTO users (username, domain, user_key, display_name, enabled,
                                    ha1_md5, ha1_sha256, created_at, updated_at,
                                    ha1_md5_at_domain, ha1_md5_at, ou)
                 VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, ?7, ?7, ?8, ?9, ?10) RETURNING id",
                vals![
                    u.username,
                    &domain,
                    user_key(u.username, &domain),
                    u.display_name,
                    &md5,
                    &sha256,
                    ts,
                    &at_domain,
                    &at,
                    ou.as_deref().unwrap_or("")
                ],
            );
            let id = match inserted {
                Err(e) if is_unique_violation(&e) => {
                    return Err(StoreError::UserExists(format!("{}@{}", u.username, domain)))
                }
                r => r?.get(0)?,
            };
            bump_users_version(tx)?;
            Ok(id)
        })?;
        Ok(User {
            id,
            username: u.username.to_owned(),
            domain,
            display_name: u.display_name.to_owned(),
            enabled: true,
            ha1_md5: md5,
            ha1_sha256: sha256,
            created_at: ts,
            ha1_md5_at_domain: at_domain,
            ha1_md5_at: at,
            ou,
            line_uri: None,
            enterprise_voice_enabled: false,
            call_forwarding: None,
            hosted_voicemail: false,
        })
    }

    /// Case-insensitive lookup; `None` if absent (malformed input simply matches nothing).
    pub fn get_user(&self, username: &str, domain: &str) -> Result<Option<User>, StoreError> {
        self.read(|c| {
            c.query_opt(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE user_key = ?1"),
                vals![user_key(username, domain)],
            )?
            .map(|r| user_from_row(&r))
            .transpose()
        })
    }

    /// All users, or those of one domain, ordered by domain then username (case-insensitively).
    pub fn list_users(&self, domain: Option<&str>) -> Result<Vec<User>, StoreError> {
        let order = "ORDER BY domain, lower(username), username";
        let rows = self.read(|c| match domain {
            Some(d) => c.query(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE domain = ?1 {order}"),
                vals![d.to_ascii_lowercase()],
            ),
            None => c.query(&format!("SELECT {USER_COLUMNS} FROM users {order}"), &[]),
        })?;
        rows.iter().map(user_from_row).collect()
    }

    /// The users matching `condition` (SQL over the users table, parameters `args`).
    pub(crate) fn list_users_where(
        &self,
        condition: &str,
        args: &[crate::db::Value],
    ) -> Result<Vec<User>, StoreError> {
        let rows = self.read(|c| {
            c.query(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE {condition} ORDER BY user_key"),
                args,
            )
        })?;
        rows.iter().map(user_from_row).collect()
    }

    /// Deletes a user with their contact list and stored offline messages; `NoSuchUser` if
    /// absent.
    pub fn remove_user(&self, username: &str, domain: &str) -> Result<(), StoreError> {
        let key = user_key(username, domain);
        self.transaction(|tx| {
            let had_contacts: bool = tx
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM contacts WHERE owner_key = ?1)",
                    vals![&key],
                )?
                .get(0)?;
            // Contacts go by ON DELETE CASCADE, messages by trigger (see migrations).
            if tx.execute("DELETE FROM users WHERE user_key = ?1", vals![&key])? == 0 {
                return Err(no_such_user(username, domain));
            }
            tx.execute("DELETE FROM user_sessions WHERE user_key = ?1", vals![&key])?;
            bump_users_version(tx)?;
            // the user's meetings went by ON DELETE CASCADE
            crate::bump_version(tx, "meetings_version")?;
            if had_contacts {
                crate::contacts::bump_contacts_version(tx)?;
            }
            Ok(())
        })
    }

    /// Replaces both HA1 hashes. They are computed from the stored username (its original case),
    /// which is what clients put in their Digest `username`.
    pub fn set_password(
        &self,
        username: &str,
        domain: &str,
        password: &str,
    ) -> Result<(), StoreError> {
        validate_password(password)?;
        let key = user_key(username, domain);
        self.transaction(|tx| {
            let row = tx
                .query_opt(
                    "SELECT username, domain FROM users WHERE user_key = ?1",
                    vals![&key],
                )?
                .ok_or_else(|| no_such_user(username, domain))?;
            let (stored_user, stored_domain): (String, String) = (row.get(0)?, row.get(1)?);
            let [md5, sha256, at_domain, at] = hashes(&stored_user, &stored_domain, password);
            tx.execute(
                "UPDATE users SET ha1_md5 = ?2, ha1_sha256 = ?3, updated_at = ?4,
                    ha1_md5_at_domain = ?5, ha1_md5_at = ?6 WHERE user_key = ?1",
                vals![&key, md5, sha256, now(), at_domain, at],
            )?;
            // a new password ends the user's web sessions
            tx.execute("DELETE FROM user_sessions WHERE user_key = ?1", vals![&key])?;
            bump_users_version(tx)
        })
    }

    /// Disabled users keep their credentials but must be refused by the server.
    pub fn set_enabled(
        &self,
        username: &str,
        domain: &str,
        enabled: bool,
    ) -> Result<(), StoreError> {
        self.write_one(
            username,
            domain,
            "UPDATE users SET enabled = ?2, updated_at = ?3 WHERE user_key = ?1",
            vals![enabled, now()],
        )
    }

    pub fn set_display_name(
        &self,
        username: &str,
        domain: &str,
        name: &str,
    ) -> Result<(), StoreError> {
        validate_display_name(name)?;
        self.write_one(
            username,
            domain,
            "UPDATE users SET display_name = ?2, updated_at = ?3 WHERE user_key = ?1",
            vals![name, now()],
        )
    }

    /// Moves a user into the organisational unit `ou` (an LDAP DN, stored in its canonical
    /// spelling), or out of any with `None`.
    pub fn set_user_ou(
        &self,
        username: &str,
        domain: &str,
        ou: Option<&str>,
    ) -> Result<(), StoreError> {
        let ou = ou.map(normalize_ou).transpose()?;
        self.write_one(
            username,
            domain,
            "UPDATE users SET ou = ?2, updated_at = ?3 WHERE user_key = ?1",
            vals![ou.unwrap_or_default(), now()],
        )
    }

    /// Gives a user the phone number `line_uri` (Lync's LineURI, `tel:+14255550100` or
    /// `tel:+14255550100;ext=100`, stored canonical), or takes it away with `None`; refused
    /// (`Invalid`) when malformed or when another user has it.
    pub fn set_line_uri(
        &self,
        username: &str,
        domain: &str,
        line_uri: Option<&str>,
    ) -> Result<(), StoreError> {
        let uri = line_uri.map(normalize_line_uri).transpose()?;
        let key = user_key(username, domain);
        let r = self.transaction(|tx| {
            if tx.execute(
                "UPDATE users SET line_uri = ?2, updated_at = ?3 WHERE user_key = ?1",
                vals![&key, uri.as_deref(), now()],
            )? == 0
            {
                return Err(no_such_user(username, domain));
            }
            bump_users_version(tx)
        });
        match r {
            // (looked up after the rollback: PostgreSQL runs nothing more in a failed
            // transaction)
            Err(e) if is_unique_violation(&e) => {
                let holder = self
                    .list_users_where("line_uri = ?1", vals![uri.as_deref()])?
                    .first()
                    .map(User::address);
                Err(StoreError::Invalid(format!(
                    "LineURI {} is already {}'s; a number (with its extension) belongs to one user",
                    uri.as_deref().unwrap_or(""),
                    holder.unwrap_or_else(|| "another user".into())
                )))
            }
            r => r,
        }
    }

    /// Turns Enterprise Voice on or off for a user (Lync's `Set-CsUser
    /// -EnterpriseVoiceEnabled`).
    pub fn set_enterprise_voice(
        &self,
        username: &str,
        domain: &str,
        enabled: bool,
    ) -> Result<(), StoreError> {
        let key = user_key(username, domain);
        self.transaction(|tx| {
            if tx.execute(
                "UPDATE users SET enterprise_voice_enabled = ?2, updated_at = ?3 WHERE user_key = ?1",
                vals![&key, enabled, now()],
            )? == 0
            {
                return Err(no_such_user(username, domain));
            }
            bump_users_version(tx)
        })
    }

    /// Stores a user's call forwarding settings (`confab_voice::CallForwarding::to_json`;
    /// the caller checks them against the user's policy first), or with `None` returns the
    /// user to the defaults. Refused (`Invalid`) when `json` is not a JSON object or longer
    /// than [`MAX_CALL_FORWARDING_LEN`]. Running servers reload their users on the change.
    pub fn set_call_forwarding(
        &self,
        username: &str,
        domain: &str,
        json: Option<&str>,
    ) -> Result<(), StoreError> {
        if let Some(j) = json {
            check_call_forwarding_json(j)?;
        }
        self.write_one(
            username,
            domain,
            "UPDATE users SET call_forwarding = ?2, updated_at = ?3 WHERE user_key = ?1",
            vals![json, now()],
        )
    }

    /// Turns hosted voicemail on or off for a user (Lync's `Set-CsUser -HostedVoiceMail`).
    pub fn set_hosted_voicemail(
        &self,
        username: &str,
        domain: &str,
        on: bool,
    ) -> Result<(), StoreError> {
        self.write_one(
            username,
            domain,
            "UPDATE users SET hosted_voicemail = ?2, updated_at = ?3 WHERE user_key = ?1",
            vals![on, now()],
        )
    }

    /// Creates or resets `{prefix}0000`..`{prefix}{count-1}` (zero-padded to at least 4 digits)
    /// with password `{password_prefix}{username}`, all in one transaction, for load tests.
    /// Existing accounts get their password reset and are re-enabled; returns `count`.
    pub fn seed_users(
        &self,
        domain: &str,
        prefix: &str,
        count: u32,
        password_prefix: &str,
    ) -> Result<usize, StoreError> {
        let domain = normalize_domain(domain)?;
        if count == 0 {
            return Ok(0);
        }
        let width = (count - 1).to_string().len().max(4);
        let name = |i: u32| format!("{prefix}{i:0width$}");
        // Names differ only in digits, so checking the extremes checks them all.
        validate_username(&name(0))?;
        validate_username(&name(count - 1))?;
        validate_password(&format!("{password_prefix}{}", name(count - 1)))?;

        let ts = now();
        self.transaction(|tx| {
            // On conflict the seeded spelling wins, so the HA1 matches the stored username.
            let sql = "INSERT INTO users (username, domain, user_key, display_name, enabled,
                                    ha1_md5, ha1_sha256, created_at, updated_at,
                                    ha1_md5_at_domain, ha1_md5_at)
                 VALUES (?1, ?2, ?3, '', 1, ?4, ?5, ?6, ?6, ?7, ?8)
                 ON CONFLICT(user_key) DO UPDATE SET
                    username = excluded.username, enabled = 1,
                    ha1_md5 = excluded.ha1_md5, ha1_sha256 = excluded.ha1_sha256,
                    ha1_md5_at_domain = excluded.ha1_md5_at_domain, ha1_md5_at = excluded.ha1_md5_at,
                    updated_at = excluded.updated_at";
            let mut password = String::new();
            for i in 0..count {
                let username = name(i);
                password.clear();
                password.push_str(password_prefix);
                password.push_str(&username);
                let [md5, sha256, at_domain, at] = hashes(&username, &domain, &password);
                let key = user_key(&username, &domain);
                tx.execute(sql, vals![username, &domain, key, md5, sha256, ts, at_domain, at])?;
            }
            bump_users_version(tx)
        })?;
        Ok(count as usize)
    }

    /// Changes on every committed write to users (also by other processes); compare it with a
    /// cached value to know when to reload.
    pub fn users_version(&self) -> Result<i64, StoreError> {
        self.read(|c| crate::read_version(c, "users_version"))
    }

    /// Runs a single-row write keyed by `?1 = user_key`; `NoSuchUser` if it touched nothing.
    fn write_one(
        &self,
        username: &str,
        domain: &str,
        sql: &str,
        extra: &[crate::db::Value],
    ) -> Result<(), StoreError> {
        let mut args = Vec::with_capacity(1 + extra.len());
        args.push(user_key(username, domain).into());
        args.extend_from_slice(extra);
        self.transaction(|tx| {
            if tx.execute(sql, &args)? == 0 {
                return Err(no_such_user(username, domain));
            }
            bump_users_version(tx)
        })
    }
}
