//! Users' dial-in PINs (Lync's client PINs): salted hashes, history, failed sign-ins and
//! lockout; and finding a user by the number or extension of their LineURI.
//!
//! A PIN is kept only as an Argon2id PHC string (random salt), with parameters light enough
//! for a phone sign-in (about 10-30 ms) and heavy enough that a leaked table is no list of
//! PINs. Hashing and verifying never happen under the store's lock: the row is read, the
//! hash computed, and the outcome written with one statement that counts atomically (two
//! guesses at once both count). The rules of a good PIN (CsPinPolicy) are
//! confab_admin::pins'; the store checks only the form and the history.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;

use crate::db::{vals, Row};
use crate::users::user_key;
use crate::{Store, StoreError, User};

/// Shortest PIN the store takes (Lync's CsPinPolicy MinPasswordLength range starts at 4).
pub const MIN_PIN_LEN: usize = 4;
/// Longest PIN (MinPasswordLength goes up to 24).
pub const MAX_PIN_LEN: usize = 24;
/// Earlier PINs remembered for PINHistoryCount (its range ends at 20, the current one
/// included).
const MAX_HISTORY: usize = 19;

/// What `Get-CsClientPinInfo` shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PinInfo {
    pub is_pin_set: bool,
    pub is_locked_out: bool,
    /// Unix seconds of the last change.
    pub last_changed: Option<i64>,
    /// Failed sign-ins since the last success or change.
    pub failed_attempts: u32,
}

/// The result of checking a PIN entered on a phone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinCheck {
    Valid,
    /// Wrong; `failures` counted so far (the PIN locks when it reaches the maximum).
    Wrong {
        failures: u32,
    },
    LockedOut,
    NotSet,
    Expired,
}

/// Argon2id, 8 MiB, 2 passes, 1 lane: about 10-30 ms per PIN on a server core.
fn hasher() -> Argon2<'static> {
    let params = Params::new(8 * 1024, 2, 1, None).expect("valid Argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_pin(pin: &str) -> Result<String, StoreError> {
    let mut salt = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut salt);
    let salt =
        SaltString::encode_b64(&salt).map_err(|e| StoreError::Invalid(format!("PIN salt: {e}")))?;
    Ok(hasher()
        .hash_password(pin.as_bytes(), &salt)
        .map_err(|e| StoreError::Invalid(format!("PIN hashing failed: {e}")))?
        .to_string())
}

/// Constant-time check against a PHC string (its own parameters); a malformed hash never
/// matches.
fn pin_matches(pin: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => hasher().verify_password(pin.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// A hash of a random PIN, checked for users without a PIN so that "not set" costs what a
/// wrong PIN costs.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let pin = format!("{:012}", rand::random::<u64>() % 1_000_000_000_000);
        hash_pin(&pin).unwrap_or_default()
    })
}

/// The form every PIN has: 4 to 24 ASCII digits.
pub fn validate_pin_form(pin: &str) -> Result<(), StoreError> {
    if !pin.bytes().all(|c| c.is_ascii_digit()) {
        return Err(StoreError::Invalid(
            "a PIN is made of the digits 0-9 only".into(),
        ));
    }
    if !(MIN_PIN_LEN..=MAX_PIN_LEN).contains(&pin.len()) {
        return Err(StoreError::Invalid(format!(
            "a PIN has {MIN_PIN_LEN} to {MAX_PIN_LEN} digits, this one {}",
            pin.len()
        )));
    }
    Ok(())
}

/// `user@domain` (any case, `sip:` allowed) as the users table keys it.
fn key_of(user: &str) -> Result<String, StoreError> {
    let key = crate::meetings::normalize_address(user)?;
    let (u, d) = key.split_once('@').unwrap_or((&key, ""));
    Ok(user_key(u, d))
}

struct PinRow {
    hash: String,
    history: Vec<String>,
    set_at: i64,
    failures: i64,
    locked: bool,
}

fn pin_row(r: &Row) -> Result<PinRow, StoreError> {
    let history: String = r.get(1)?;
    Ok(PinRow {
        hash: r.get(0)?,
        history: serde_json::from_str(&history).unwrap_or_default(),
        set_at: r.get(2)?,
        failures: r.get(3)?,
        locked: r.get(4)?,
    })
}

fn clamp_u32(n: i64) -> u32 {
    n.clamp(0, u32::MAX as i64) as u32
}

impl Store {
    fn read_pin(&self, key: &str) -> Result<Option<PinRow>, StoreError> {
        self.read(|c| {
            c.query_opt(
                "SELECT pin_hash, history, set_at, failures, locked FROM client_pins WHERE user_key = ?1",
                vals![key],
            )?
            .map(|r| pin_row(&r))
            .transpose()
        })
    }

    /// Stores a new PIN for `user` (`user@domain`) as a salted hash, unlocks it and clears
    /// its failures; refuses (`StoreError::Invalid`) one of the last `history` PINs.
    pub fn set_client_pin(
        &self,
        user: &str,
        pin: &str,
        history: u32,
        now: i64,
    ) -> Result<(), StoreError> {
        validate_pin_form(pin)?;
        let key = key_of(user)?;
        let exists: bool = self.read(|c| {
            c.query_one(
                "SELECT EXISTS (SELECT 1 FROM users WHERE user_key = ?1)",
                vals![&key],
            )?
            .get(0)
        })?;
        if !exists {
            return Err(StoreError::NoSuchUser(key));
        }
        let old = self.read_pin(&key)?;
        // the last `history` PINs: the current one and the ones before it
        if let Some(old) = &old {
            let recent = std::iter::once(&old.hash).chain(old.history.iter());
            if recent.take(history as usize).any(|h| pin_matches(pin, h)) {
                return Err(StoreError::Invalid(format!(
                    "this PIN was used recently: it may not be any of the last {history} PINs (CsPinPolicy PINHistoryCount); choose another"
                )));
            }
        }
        let hash = hash_pin(pin)?;
        self.transaction(|tx| {
            match &old {
                None => {
                    let inserted = tx.execute(
                        "INSERT INTO client_pins (user_key, pin_hash, history, set_at, failures, locked)
                         VALUES (?1, ?2, '[]', ?3, 0, 0)",
                        vals![&key, &hash, now],
                    );
                    match inserted {
                        Err(e) if crate::db::is_unique_violation(&e) => Err(StoreError::Invalid(
                            "the PIN was set by someone else at the same time; try again".into(),
                        )),
                        Err(e) => Err(e),
                        Ok(_) => Ok(()),
                    }
                }
                Some(old) => {
                    let mut earlier = Vec::with_capacity(MAX_HISTORY);
                    earlier.push(old.hash.clone());
                    earlier.extend(old.history.iter().take(MAX_HISTORY - 1).cloned());
                    let earlier = serde_json::to_string(&earlier)
                        .map_err(|e| StoreError::Invalid(e.to_string()))?;
                    // only over the PIN read above: a change meanwhile is not lost
                    let n = tx.execute(
                        "UPDATE client_pins SET pin_hash = ?2, history = ?3, set_at = ?4,
                            failures = 0, locked = 0 WHERE user_key = ?1 AND pin_hash = ?5",
                        vals![&key, &hash, earlier, now, &old.hash],
                    )?;
                    if n == 0 {
                        return Err(StoreError::Invalid(
                            "the PIN was changed by someone else at the same time; try again"
                                .into(),
                        ));
                    }
                    Ok(())
                }
            }
        })
    }

    /// Whether `user` has a PIN, whether it is locked, when it was set, and how many failed
    /// sign-ins it has had (never the PIN or its hash). `NoSuchUser` for an unknown user.
    pub fn client_pin_info(&self, user: &str) -> Result<PinInfo, StoreError> {
        let key = key_of(user)?;
        let row = self.read(|c| {
            c.query_opt(
                "SELECT u.user_key, p.set_at, p.failures, p.locked FROM users u
                 LEFT JOIN client_pins p ON p.user_key = u.user_key WHERE u.user_key = ?1",
                vals![&key],
            )
        })?;
        let r = row.ok_or_else(|| StoreError::NoSuchUser(key.clone()))?;
        let set_at: Option<i64> = r.get(1)?;
        Ok(match set_at {
            None => PinInfo::default(),
            Some(at) => PinInfo {
                is_pin_set: true,
                is_locked_out: r.get::<Option<bool>>(3)?.unwrap_or(false),
                last_changed: Some(at),
                failed_attempts: clamp_u32(r.get::<Option<i64>>(2)?.unwrap_or(0)),
            },
        })
    }

    /// Locks the user's PIN (true if it was set).
    pub fn lock_client_pin(&self, user: &str) -> Result<bool, StoreError> {
        let key = key_of(user)?;
        self.transaction(|tx| {
            Ok(tx.execute(
                "UPDATE client_pins SET locked = 1 WHERE user_key = ?1",
                vals![&key],
            )? > 0)
        })
    }

    /// Unlocks the user's PIN and clears its failures (true if it was set).
    pub fn unlock_client_pin(&self, user: &str) -> Result<bool, StoreError> {
        let key = key_of(user)?;
        self.transaction(|tx| {
            Ok(tx.execute(
                "UPDATE client_pins SET locked = 0, failures = 0 WHERE user_key = ?1",
                vals![&key],
            )? > 0)
        })
    }

    /// Checks a PIN entered on a phone: a failure is counted, and at `max_failures` the PIN
    /// locks; a PIN older than `lifetime_days` (0: never) is `Expired`; success clears the
    /// failures. A locked PIN is `LockedOut` whatever is entered (nothing is counted); a
    /// user without a PIN (or no such user) is `NotSet`, after as much work as a wrong PIN.
    /// An expired PIN is reported only for the right PIN (a wrong one counts as wrong).
    pub fn verify_client_pin(
        &self,
        user: &str,
        pin: &str,
        max_failures: u32,
        lifetime_days: u32,
        now: i64,
    ) -> Result<PinCheck, StoreError> {
        let Ok(key) = key_of(user) else {
            let _ = pin_matches(pin, dummy_hash());
            return Ok(PinCheck::NotSet);
        };
        let Some(row) = self.read_pin(&key)? else {
            let _ = pin_matches(pin, dummy_hash());
            return Ok(PinCheck::NotSet);
        };
        if row.locked {
            return Ok(PinCheck::LockedOut);
        }
        // a malformed entry is simply wrong (and counted)
        let right = validate_pin_form(pin).is_ok() && pin_matches(pin, &row.hash);
        if !right {
            let max = i64::from(max_failures.max(1));
            let r = self.transaction(|tx| {
                tx.query_opt(
                    "UPDATE client_pins SET failures = failures + 1,
                        locked = CASE WHEN failures + 1 >= ?2 THEN 1 ELSE locked END
                     WHERE user_key = ?1 RETURNING failures, locked",
                    vals![&key, max],
                )
            })?;
            return Ok(match r {
                None => PinCheck::NotSet, // removed meanwhile
                // locked by a guess before this one, or by an administrator
                Some(r) if r.get::<bool>(1)? && r.get::<i64>(0)? != max => PinCheck::LockedOut,
                Some(r) => PinCheck::Wrong {
                    failures: clamp_u32(r.get(0)?),
                },
            });
        }
        if lifetime_days > 0 && now.saturating_sub(row.set_at) > i64::from(lifetime_days) * 86_400 {
            return Ok(PinCheck::Expired);
        }
        // right: failures cleared, unless it was locked meanwhile (or changed: then the
        // PIN entered is no longer the PIN)
        let n = self.transaction(|tx| {
            tx.execute(
                "UPDATE client_pins SET failures = 0
                 WHERE user_key = ?1 AND locked = 0 AND pin_hash = ?2",
                vals![&key, &row.hash],
            )
        })?;
        Ok(if n == 1 {
            PinCheck::Valid
        } else {
            match self.read_pin(&key)? {
                None => PinCheck::NotSet,
                Some(r) if r.locked => PinCheck::LockedOut,
                Some(r) => PinCheck::Wrong {
                    failures: clamp_u32(r.failures),
                },
            }
        })
    }

    /// The enabled user whose LineURI carries this number or extension (`digits`, as keyed
    /// on a phone: `tel:+14255550100;ext=100` matches "14255550100" and "100"). A number
    /// without extension wins over the same number with one; otherwise a match must be
    /// unique (two users with extension 100 under different numbers: `None`, the caller
    /// has to key the whole number).
    pub fn user_by_number(&self, digits: &str) -> Result<Option<User>, StoreError> {
        let d = digits.trim();
        let d = d.strip_prefix('+').unwrap_or(d);
        if d.is_empty()
            || d.len() > crate::users::MAX_LINE_URI_DIGITS
            || !d.bytes().all(|c| c.is_ascii_digit())
        {
            return Ok(None);
        }
        // only digits reach the LIKE patterns: no wildcard can be smuggled in
        let exact = format!("tel:+{d}");
        let with_ext = format!("tel:+{d};ext=%");
        let ext = format!("%;ext={d}");
        let users: Vec<User> = self.list_users_where(
            "enabled = 1 AND (line_uri = ?1 OR line_uri LIKE ?2 OR line_uri LIKE ?3)",
            vals![&exact, &with_ext, &ext],
        )?;
        let of = |u: &User| u.line_uri.clone().unwrap_or_default();
        let one = |v: Vec<&User>| (v.len() == 1).then(|| v[0].clone());
        if let Some(u) = users.iter().find(|u| of(u) == exact) {
            return Ok(Some(u.clone()));
        }
        let by_ext: Vec<&User> = users
            .iter()
            .filter(|u| of(u).rsplit_once(";ext=").is_some_and(|(_, e)| e == d))
            .collect();
        if !by_ext.is_empty() {
            return Ok(one(by_ext));
        }
        let by_number: Vec<&User> = users
            .iter()
            .filter(|u| of(u).starts_with(&format!("{exact};")))
            .collect();
        Ok(one(by_number))
    }
}
