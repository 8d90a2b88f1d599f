//! Meetings, with Lync 2013's model (docs/meetings.md): an organizer (an existing user),
//! a conference key (8 characters of `[A-Z0-9]`, from the operating system's CSPRNG) and a
//! numeric dial-in conference ID (6 random digits and a Luhn check digit), both unique;
//! *assigned* meetings (one per organizer, the same key and ID every time, never expiring)
//! and *private* ones (a new key and ID each time, expiring 14 days after their end, or
//! after their last use when they have no end). Resolving defaults from the meeting
//! configuration and the organizer's conferencing policy is the caller's job
//! (`confab_admin::meetings`).
//!
//! Times are unix seconds. Writes that add or remove meetings bump `meetings_version`, so
//! running servers notice meetings made by the CLI or another server.

use std::fmt;
use std::str::FromStr;

use rand::Rng;

use crate::db::{vals, Conn, Row};
use crate::users::{is_unique_violation, now};
use crate::validate::{normalize_domain, validate_username};
use crate::{Store, StoreError};

/// CsUserServicesConfiguration MaxScheduledMeetingsPerOrganizer (Lync's default): the most
/// meetings one organizer may have.
pub const MAX_MEETINGS_PER_ORGANIZER: usize = 1000;
/// Longest subject, in characters.
pub const MAX_SUBJECT_LEN: usize = 256;
/// Most invitees per meeting (CsConferencingPolicy MaxMeetingSize's upper bound).
pub const MAX_INVITEES: usize = 1000;
/// How long after its end (or, without an end, its last use) a private meeting is kept:
/// Lync's 14 days.
pub const PRIVATE_MEETING_GRACE_SECS: i64 = 14 * 24 * 3600;
/// Length of a conference key.
pub const KEY_LEN: usize = 8;
/// How many fresh keys or conference IDs are tried before giving up (collisions are
/// vanishingly rare: 36^8 keys, 9·10^5 IDs per check digit).
const MAX_ATTEMPTS: usize = 64;

macro_rules! named_enum {
    ($(#[$m:meta])* $name:ident, $what:literal, [$($v:ident),+]) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
        pub enum $name { $($v),+ }

        impl $name {
            /// Every value, spelled as Lync spells it.
            pub const VALUES: &'static [&'static str] = &[$(stringify!($v)),+];

            /// Lync's spelling.
            pub fn as_str(&self) -> &'static str {
                match self { $($name::$v => stringify!($v)),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = StoreError;
            /// Case-insensitive; the error names the accepted values.
            fn from_str(s: &str) -> Result<$name, StoreError> {
                $(if s.trim().eq_ignore_ascii_case(stringify!($v)) {
                    return Ok($name::$v);
                })+
                Err(StoreError::Invalid(format!(
                    "{:?} is not a valid {}; use one of {}",
                    s,
                    $what,
                    $name::VALUES.join(", ")
                )))
            }
        }
    };
}

named_enum!(
    /// Assigned (one per organizer, reused) or Private (new key and ID each time).
    MeetingKind,
    "meeting kind",
    [Assigned, Private]
);
named_enum!(
    /// Who gets in directly (Lync's meeting access): only the organizer (Locked), the
    /// invitees, everyone in the company, or everyone including anonymous callers.
    Access,
    "access level",
    [Locked, Invited, SameEnterprise, Everyone]
);
named_enum!(
    /// Who is a presenter on joining (DesignateAsPresenter).
    Presenters,
    "presenters value",
    [None, Company, Everyone]
);

/// A stored meeting.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Meeting {
    pub id: i64,
    /// The organizer's `user@domain`, lower case.
    pub organizer: String,
    /// The conference key: 8 characters of `[A-Z0-9]`.
    pub key: String,
    /// The numeric dial-in conference ID (the last digit is a Luhn check digit).
    pub conference_id: String,
    pub kind: MeetingKind,
    pub subject: String,
    pub access: Access,
    pub presenters: Presenters,
    pub pstn_bypass_lobby: bool,
    /// `user@domain` keys (lower case) the Invited access lets in directly.
    pub invitees: Vec<String>,
    /// Unix seconds.
    pub created_at: i64,
    pub end_at: Option<i64>,
    pub last_used_at: Option<i64>,
    /// When [`Store::expire_meetings`] deletes it; `None`: never (assigned meetings).
    pub expires_at: Option<i64>,
}

impl Meeting {
    /// Lync's focus URI: `sip:<user>@<domain>;gruu;opaque=app:conf:focus:id:<key>`.
    pub fn uri(&self) -> String {
        format!(
            "sip:{};gruu;opaque=app:conf:focus:id:{}",
            self.organizer, self.key
        )
    }

    /// The meet URL: `https://meet.<domain>/<user>/<key>`.
    pub fn meet_url(&self) -> String {
        let (user, domain) = self
            .organizer
            .split_once('@')
            .unwrap_or((&self.organizer, ""));
        format!("https://meet.{domain}/{user}/{}", self.key)
    }
}

/// Input for [`Store::create_meeting`]: every value already resolved (the defaults come
/// from the meeting configuration and the organizer's conferencing policy, which is not the
/// store's business).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewMeeting {
    /// `user@domain` (a `sip:` prefix is allowed) of an existing user.
    pub organizer: String,
    pub kind: MeetingKind,
    pub access: Access,
    pub subject: String,
    /// `Everyone` is stored as `Company` for an assigned meeting (as in Lync).
    pub presenters: Presenters,
    pub pstn_bypass_lobby: bool,
    /// `user@domain` addresses (any domain), at most [`MAX_INVITEES`].
    pub invitees: Vec<String>,
    /// Unix seconds; private meetings only (ignored for assigned ones).
    pub end_at: Option<i64>,
}

/// `user@domain` (lower case) from `sip:User@Domain` or `User@Domain`; `Invalid` if it is
/// not an address.
pub fn normalize_address(raw: &str) -> Result<String, StoreError> {
    let a = raw.trim();
    let a = if a.len() >= 4 && a[..4].eq_ignore_ascii_case("sip:") {
        &a[4..]
    } else {
        a
    };
    let Some((user, domain)) = a.split_once('@') else {
        return Err(StoreError::Invalid(format!(
            "{raw:?} is not a user@domain address"
        )));
    };
    validate_username(user)?;
    let domain = normalize_domain(domain)?;
    Ok(format!("{}@{domain}", user.to_ascii_lowercase()))
}

/// A conference key as typed (any case, surrounding blanks) in its stored form, or `None`
/// when it cannot be one.
pub fn normalize_key(raw: &str) -> Option<String> {
    let k = raw.trim().to_ascii_uppercase();
    (k.len() == KEY_LEN
        && k.bytes()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()))
    .then_some(k)
}

/// The Luhn check digit of `digits` (ASCII digits).
pub fn luhn_check_digit(digits: &str) -> u8 {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, c)| {
            let d = u32::from(c - b'0');
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

/// Whether `id` is all digits, at least 5 of them, with a valid Luhn check digit.
pub fn valid_conference_id(id: &str) -> bool {
    id.len() >= 5
        && id.bytes().all(|c| c.is_ascii_digit())
        && luhn_check_digit(&id[..id.len() - 1]) == id.as_bytes()[id.len() - 1] - b'0'
}

fn new_key() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rngs::OsRng;
    (0..KEY_LEN)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

fn new_conference_id() -> String {
    let n: u32 = rand::rngs::OsRng.gen_range(100_000..1_000_000);
    let body = n.to_string();
    let check = luhn_check_digit(&body);
    format!("{body}{check}")
}

fn validate_subject(subject: &str) -> Result<(), StoreError> {
    let n = subject.chars().count();
    if n > MAX_SUBJECT_LEN {
        return Err(StoreError::Invalid(format!(
            "the subject is {n} characters long, at most {MAX_SUBJECT_LEN} allowed"
        )));
    }
    if let Some(c) = subject.chars().find(|c| c.is_control()) {
        return Err(StoreError::Invalid(format!(
            "the subject contains control character {c:?}"
        )));
    }
    Ok(())
}

/// When a meeting expires: assigned never; private 14 days after its end, or after its
/// last use (or creation) when it has no end.
pub fn expiry(
    kind: MeetingKind,
    created_at: i64,
    end_at: Option<i64>,
    last_used_at: Option<i64>,
) -> Option<i64> {
    match kind {
        MeetingKind::Assigned => None,
        MeetingKind::Private => Some(
            end_at
                .unwrap_or_else(|| last_used_at.unwrap_or(created_at).max(created_at))
                .saturating_add(PRIVATE_MEETING_GRACE_SECS),
        ),
    }
}

const COLUMNS: &str =
    "id, organizer, meeting_key, conference_id, kind, subject, access, presenters, \
     pstn_bypass_lobby, invitees, created_at, end_at, last_used_at, expires_at";

fn from_row(r: &Row) -> Result<Meeting, StoreError> {
    let invitees: String = r.get(9)?;
    Ok(Meeting {
        id: r.get(0)?,
        organizer: r.get(1)?,
        key: r.get(2)?,
        conference_id: r.get(3)?,
        kind: r.get::<String>(4)?.parse()?,
        subject: r.get(5)?,
        access: r.get::<String>(6)?.parse()?,
        presenters: r.get::<String>(7)?.parse()?,
        pstn_bypass_lobby: r.get(8)?,
        invitees: serde_json::from_str(&invitees)
            .map_err(|e| StoreError::Invalid(format!("stored invitees are not a list: {e}")))?,
        created_at: r.get(10)?,
        end_at: r.get(11)?,
        last_used_at: r.get(12)?,
        expires_at: r.get(13)?,
    })
}

fn bump(conn: &Conn<'_>) -> Result<(), StoreError> {
    crate::bump_version(conn, "meetings_version")
}

fn one(
    conn: &Conn<'_>,
    clause: &str,
    params: &[crate::db::Value],
) -> Result<Option<Meeting>, StoreError> {
    conn.query_opt(
        &format!("SELECT {COLUMNS} FROM meetings WHERE {clause}"),
        params,
    )?
    .map(|r| from_row(&r))
    .transpose()
}

impl Store {
    /// Creates a meeting, or for an assigned one returns the organizer's existing assigned
    /// meeting unchanged (same key and conference ID every time). `NoSuchUser` for an
    /// unknown organizer, `TooManyMeetings` at [`MAX_MEETINGS_PER_ORGANIZER`], `Invalid` for
    /// bad input (nothing is stored then).
    pub fn create_meeting(&self, m: &NewMeeting) -> Result<Meeting, StoreError> {
        let organizer = normalize_address(&m.organizer)?;
        validate_subject(&m.subject)?;
        if m.invitees.len() > MAX_INVITEES {
            return Err(StoreError::Invalid(format!(
                "{} invitees, at most {MAX_INVITEES} allowed",
                m.invitees.len()
            )));
        }
        let mut invitees: Vec<String> = vec![];
        for i in &m.invitees {
            let i = normalize_address(i)?;
            if !invitees.contains(&i) {
                invitees.push(i);
            }
        }
        let created_at = now();
        let (presenters, end_at) = match m.kind {
            MeetingKind::Assigned => (
                if m.presenters == Presenters::Everyone {
                    Presenters::Company
                } else {
                    m.presenters
                },
                None,
            ),
            MeetingKind::Private => (m.presenters, m.end_at),
        };
        if let Some(end) = end_at {
            if end < created_at {
                return Err(StoreError::Invalid(
                    "the meeting's end time is in the past".into(),
                ));
            }
        }
        let expires_at = expiry(m.kind, created_at, end_at, None);
        let invitees_json =
            serde_json::to_string(&invitees).map_err(|e| StoreError::Invalid(e.to_string()))?;
        self.transaction(|tx| {
            let exists: bool = tx
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM users WHERE user_key = ?1)",
                    vals![&organizer],
                )?
                .get(0)?;
            if !exists {
                return Err(StoreError::NoSuchUser(organizer.clone()));
            }
            if m.kind == MeetingKind::Assigned {
                if let Some(existing) = one(
                    tx,
                    "organizer = ?1 AND kind = 'Assigned'",
                    vals![&organizer],
                )? {
                    return Ok(existing);
                }
            }
            let count: i64 = tx
                .query_one(
                    "SELECT count(*) FROM meetings WHERE organizer = ?1",
                    vals![&organizer],
                )?
                .get(0)?;
            if count as u64 >= MAX_MEETINGS_PER_ORGANIZER as u64 {
                return Err(StoreError::TooManyMeetings {
                    organizer: organizer.clone(),
                    max: MAX_MEETINGS_PER_ORGANIZER,
                });
            }
            let key = fresh(tx, "meeting_key", new_key)?;
            let conference_id = fresh(tx, "conference_id", new_conference_id)?;
            let inserted = tx.query_one(
                "INSERT INTO meetings (organizer, meeting_key, conference_id, kind, subject,
                                       access, presenters, pstn_bypass_lobby, invitees,
                                       created_at, end_at, last_used_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, NULL, ?12) RETURNING id",
                vals![
                    &organizer,
                    &key,
                    &conference_id,
                    m.kind.as_str(),
                    m.subject.as_str(),
                    m.access.as_str(),
                    presenters.as_str(),
                    m.pstn_bypass_lobby,
                    &invitees_json,
                    created_at,
                    end_at,
                    expires_at,
                ],
            );
            let id: i64 = match inserted {
                Ok(r) => r.get(0)?,
                // two creators of the same assigned meeting at once: the other one won
                Err(e) if is_unique_violation(&e) => {
                    return Err(StoreError::Invalid(format!(
                        "a meeting of {organizer} was created at the same time; try again"
                    )))
                }
                Err(e) => return Err(e),
            };
            bump(tx)?;
            Ok(Meeting {
                id,
                organizer: organizer.clone(),
                key,
                conference_id,
                kind: m.kind,
                subject: m.subject.clone(),
                access: m.access,
                presenters,
                pstn_bypass_lobby: m.pstn_bypass_lobby,
                invitees: invitees.clone(),
                created_at,
                end_at,
                last_used_at: None,
                expires_at,
            })
        })
    }

    /// The meeting `key` of `organizer` (both case-insensitive); `None` when there is none
    /// (or the input cannot name one).
    pub fn meeting(&self, organizer: &str, key: &str) -> Result<Option<Meeting>, StoreError> {
        let (Ok(organizer), Some(key)) = (normalize_address(organizer), normalize_key(key)) else {
            return Ok(None);
        };
        self.read(|c| {
            one(
                c,
                "organizer = ?1 AND meeting_key = ?2",
                vals![organizer, key],
            )
        })
    }

    /// The meeting with conference key `key` (case-insensitive), whoever organizes it.
    pub fn meeting_by_key(&self, key: &str) -> Result<Option<Meeting>, StoreError> {
        let Some(key) = normalize_key(key) else {
            return Ok(None);
        };
        self.read(|c| one(c, "meeting_key = ?1", vals![key]))
    }

    /// The meeting with dial-in conference ID `id`.
    pub fn meeting_by_conference_id(&self, id: &str) -> Result<Option<Meeting>, StoreError> {
        let id = id.trim();
        if !valid_conference_id(id) {
            return Ok(None);
        }
        self.read(|c| one(c, "conference_id = ?1", vals![id]))
    }

    /// Every meeting, or those of one organizer, ordered by organizer then creation.
    pub fn meetings(&self, organizer: Option<&str>) -> Result<Vec<Meeting>, StoreError> {
        let rows = match organizer {
            Some(o) => {
                let Ok(o) = normalize_address(o) else {
                    return Ok(vec![]);
                };
                self.read(|c| {
                    c.query(
                        &format!("SELECT {COLUMNS} FROM meetings WHERE organizer = ?1 ORDER BY id"),
                        vals![o],
                    )
                })?
            }
            None => self.read(|c| {
                c.query(
                    &format!("SELECT {COLUMNS} FROM meetings ORDER BY organizer, id"),
                    &[],
                )
            })?,
        };
        rows.iter().map(from_row).collect()
    }

    /// Deletes the meeting `key` of `organizer`; `false` if there was none.
    pub fn remove_meeting(&self, organizer: &str, key: &str) -> Result<bool, StoreError> {
        let (Ok(organizer), Some(key)) = (normalize_address(organizer), normalize_key(key)) else {
            return Ok(false);
        };
        self.transaction(|tx| {
            let n = tx.execute(
                "DELETE FROM meetings WHERE organizer = ?1 AND meeting_key = ?2",
                vals![organizer, key],
            )?;
            if n > 0 {
                bump(tx)?;
            }
            Ok(n > 0)
        })
    }

    /// Records a use of meeting `id` at `now` (unix seconds; someone joined): a private
    /// meeting without an end then expires 14 days after `now`. An unknown id is ignored.
    /// Does not bump `meetings_version` (nothing a server caches changes).
    pub fn touch_meeting(&self, id: i64, now: i64) -> Result<(), StoreError> {
        let grace = PRIVATE_MEETING_GRACE_SECS;
        self.read(|c| {
            c.execute(
                "UPDATE meetings SET last_used_at = ?2,
                     expires_at = CASE
                         WHEN kind = 'Assigned' THEN NULL
                         WHEN end_at IS NOT NULL THEN end_at + ?3
                         WHEN ?2 > created_at THEN ?2 + ?3
                         ELSE created_at + ?3 END
                 WHERE id = ?1",
                vals![id, now, grace],
            )
        })?;
        Ok(())
    }

    /// Deletes the meetings expired at `now` (unix seconds); returns how many.
    pub fn expire_meetings(&self, now: i64) -> Result<usize, StoreError> {
        self.transaction(|tx| {
            let n = tx.execute(
                "DELETE FROM meetings WHERE expires_at IS NOT NULL AND expires_at <= ?1",
                vals![now],
            )?;
            if n > 0 {
                bump(tx)?;
            }
            Ok(n)
        })
    }

    /// Changes whenever a meeting is created or removed (by any process).
    pub fn meetings_version(&self) -> Result<i64, StoreError> {
        self.read(|c| crate::read_version(c, "meetings_version"))
    }
}

/// A value from `make` that no row has in `column` yet (checked inside the transaction, so
/// the UNIQUE constraint only fires on a race with another server).
fn fresh(conn: &Conn<'_>, column: &str, make: fn() -> String) -> Result<String, StoreError> {
    for _ in 0..MAX_ATTEMPTS {
        let v = make();
        let taken: bool = conn
            .query_one(
                &format!("SELECT EXISTS (SELECT 1 FROM meetings WHERE {column} = ?1)"),
                vals![&v],
            )?
            .get(0)?;
        if !taken {
            return Ok(v);
        }
    }
    Err(StoreError::Invalid(format!(
        "could not find a free {column} after {MAX_ATTEMPTS} attempts"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn() {
        // the classic example: 7992739871 has check digit 3
        assert_eq!(luhn_check_digit("7992739871"), 3);
        assert!(valid_conference_id("79927398713"));
        assert!(!valid_conference_id("79927398710"));
        assert!(!valid_conference_id("1234"));
        assert!(!valid_conference_id("12a45"));
        for _ in 0..100 {
            let id = new_conference_id();
            assert_eq!(id.len(), 7);
            assert!(valid_conference_id(&id), "{id}");
        }
    }

    #[test]
    fn keys() {
        for _ in 0..100 {
            let k = new_key();
            assert_eq!(normalize_key(&k).as_deref(), Some(k.as_str()));
        }
        assert_eq!(normalize_key(" ab12cd34 ").as_deref(), Some("AB12CD34"));
        for bad in ["", "ABC", "ABCDEFGHI", "ABCD-FGH", "ABCDEFG\u{e9}"] {
            assert_eq!(normalize_key(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn enums_parse_any_case_and_name_the_values() {
        assert_eq!(
            "sameenterprise".parse::<Access>().unwrap(),
            Access::SameEnterprise
        );
        assert_eq!(Access::Everyone.to_string(), "Everyone");
        assert_eq!(MeetingKind::Assigned.to_string(), "Assigned");
        let e = "Public".parse::<Access>().unwrap_err().to_string();
        assert!(
            e.contains("Locked, Invited, SameEnterprise, Everyone"),
            "{e}"
        );
        assert!("none".parse::<Presenters>().is_ok());
    }

    #[test]
    fn expiry_follows_lync() {
        let d = PRIVATE_MEETING_GRACE_SECS;
        assert_eq!(
            expiry(MeetingKind::Assigned, 100, Some(200), Some(300)),
            None
        );
        assert_eq!(
            expiry(MeetingKind::Private, 100, Some(200), Some(300)),
            Some(200 + d)
        );
        assert_eq!(
            expiry(MeetingKind::Private, 100, None, Some(300)),
            Some(300 + d)
        );
        assert_eq!(expiry(MeetingKind::Private, 100, None, None), Some(100 + d));
    }

    #[test]
    fn addresses() {
        assert_eq!(
            normalize_address("sip:Alice@Example.TEST").unwrap(),
            "alice@example.test"
        );
        for bad in ["alice", "@x.test", "a b@x.test", "alice@"] {
            assert!(normalize_address(bad).is_err(), "{bad:?}");
        }
    }
}
