//! Contact lists with Lync 2013 privacy (access) levels. Each user owns a list of SIP addresses,
//! local or federated, each at a privacy level that decides how much presence the contact sees.
//! A level left unset is auto-assigned: Colleagues for the owner's own domain, External
//! otherwise, so it follows the contact if the rule changes rather than being frozen at insert.

use crate::db::{vals, Conn, Row};

use crate::users::{is_unique_violation, no_such_user, now, user_key};
use crate::validate::{normalize_domain, validate_username};
use crate::{Store, StoreError};

/// Most contacts one user may have (the top of Lync's MaximumNumberOfContacts range).
pub const MAX_CONTACTS_PER_USER: usize = 1000;

/// Lync 2013 privacy relationship ("access level") of a contact: the protocol crate's
/// level, so what is stored is exactly what the presence filter understands.
pub use confab_sip::pidf::Level as PrivacyLevel;

/// The level an entry without an explicit one gets: Colleagues within the owner's domain,
/// External outside it.
pub fn auto_level(owner_domain: &str, contact_domain: &str) -> PrivacyLevel {
    if owner_domain.eq_ignore_ascii_case(contact_domain) {
        PrivacyLevel::Colleagues
    } else {
        PrivacyLevel::External
    }
}

/// Parses a level name, with an error that lists the valid ones.
pub fn parse_level(s: &str) -> Result<PrivacyLevel, StoreError> {
    PrivacyLevel::parse(s).ok_or_else(|| {
        StoreError::Invalid(format!(
            "privacy level {s:?} is unknown; use one of FriendsAndFamily, Workgroup, Colleagues, External, Blocked"
        ))
    })
}

/// One entry of a contact list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactEntry {
    /// Owner's `user@domain`, lower-cased.
    pub owner: String,
    /// Contact's `user@domain`, lower-cased.
    pub contact: String,
    /// Effective level: the stored one, or the auto-assigned one when none is stored.
    pub level: PrivacyLevel,
    /// Whether `level` was set explicitly (false: auto-assigned from the domains).
    pub explicit_level: bool,
}

/// Checks `user@domain` or `sip:user@domain` and returns the lower-cased `(key, domain)`.
fn normalize_contact(contact: &str) -> Result<(String, String), StoreError> {
    let addr = match contact.get(..4) {
        Some(scheme) if scheme.eq_ignore_ascii_case("sip:") => &contact[4..],
        _ => contact,
    };
    let Some((user, domain)) = addr.split_once('@') else {
        return Err(StoreError::Invalid(format!(
            "contact {contact:?} is not a SIP address of the form user@domain"
        )));
    };
    let in_contact = |e: StoreError| match e {
        StoreError::Invalid(msg) => StoreError::Invalid(format!("contact {contact:?}: {msg}")),
        e => e,
    };
    validate_username(user).map_err(in_contact)?;
    let domain = normalize_domain(domain).map_err(in_contact)?;
    Ok((format!("{}@{domain}", user.to_ascii_lowercase()), domain))
}

fn domain_of(key: &str) -> &str {
    key.rsplit_once('@').map_or("", |(_, d)| d)
}

fn level_from_sql(stored: Option<String>) -> Result<Option<PrivacyLevel>, StoreError> {
    stored
        .map(|s| {
            PrivacyLevel::parse(&s).ok_or_else(|| {
                StoreError::Invalid(format!("stored privacy level {s:?} is unknown"))
            })
        })
        .transpose()
}

fn entry(owner: String, contact: String, stored: Option<PrivacyLevel>) -> ContactEntry {
    let level = stored.unwrap_or_else(|| auto_level(domain_of(&owner), domain_of(&contact)));
    ContactEntry {
        owner,
        contact,
        level,
        explicit_level: stored.is_some(),
    }
}

const CONTACT_COLUMNS: &str = "owner_key, contact, level";

fn entry_from_row(r: &Row) -> Result<ContactEntry, StoreError> {
    Ok(entry(r.get(0)?, r.get(1)?, level_from_sql(r.get(2)?)?))
}

/// Every write transaction that touches contacts calls this (see `users_version`).
pub(crate) fn bump_contacts_version(conn: &Conn<'_>) -> Result<(), StoreError> {
    crate::bump_version(conn, "contacts_version")
}

/// The owner's row id, or `NoSuchUser`.
fn owner_id(tx: &Conn<'_>, user: &str, domain: &str) -> Result<i64, StoreError> {
    tx.query_opt(
        "SELECT id FROM users WHERE user_key = ?1",
        vals![user_key(user, domain)],
    )?
    .ok_or_else(|| no_such_user(user, domain))?
    .get(0)
}

fn no_such_contact(owner: &str, contact: &str) -> StoreError {
    StoreError::NoSuchContact(format!("{contact} in {owner}'s contacts"))
}

impl Store {
    /// Adds `contact` (`user@domain` or `sip:user@domain`, any domain) to the list of the
    /// existing user `owner_user@owner_domain`. `level: None` auto-assigns (see [`ContactEntry`]).
    pub fn add_contact(
        &self,
        owner_user: &str,
        owner_domain: &str,
        contact: &str,
        level: Option<PrivacyLevel>,
    ) -> Result<ContactEntry, StoreError> {
        let (contact, _) = normalize_contact(contact)?;
        let owner = user_key(owner_user, owner_domain);
        if contact == owner {
            return Err(StoreError::Invalid(format!(
                "contact {contact:?} is the owner; a user cannot add themselves"
            )));
        }
        let ts = now();
        self.transaction(|tx| {
            let id = owner_id(tx, owner_user, owner_domain)?;
            if tx.backend() == crate::db::Backend::Postgres {
                // Two servers adding to one list at once would both count below the limit
                // (READ COMMITTED): take the owner's row first, so they count in turn.
                // SQLite's write transactions are serialized already.
                tx.query("SELECT id FROM users WHERE id = ?1 FOR UPDATE", vals![id])?;
            }
            let exists: bool = tx
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM contacts WHERE owner_key = ?1 AND contact = ?2)",
                    vals![&owner, &contact],
                )?
                .get(0)?;
            if exists {
                return Err(StoreError::ContactExists {
                    owner: owner.clone(),
                    contact: contact.clone(),
                });
            }
            let count: i64 = tx
                .query_one(
                    "SELECT count(*) FROM contacts WHERE owner_key = ?1",
                    vals![&owner],
                )?
                .get(0)?;
            if count as usize >= MAX_CONTACTS_PER_USER {
                return Err(StoreError::Invalid(format!(
                    "contacts of {owner}: already {count}, at most {MAX_CONTACTS_PER_USER} allowed"
                )));
            }
            let inserted = tx.execute(
                "INSERT INTO contacts (owner_id, owner_key, contact, level, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                vals![id, &owner, &contact, level.map(PrivacyLevel::as_str), ts],
            );
            match inserted {
                Err(e) if is_unique_violation(&e) => {
                    return Err(StoreError::ContactExists {
                        owner: owner.clone(),
                        contact: contact.clone(),
                    })
                }
                r => r?,
            };
            bump_contacts_version(tx)
        })?;
        Ok(entry(owner, contact, level))
    }

    /// Changes a contact's level; `None` returns it to auto-assignment. `NoSuchUser` if the
    /// owner is absent, `NoSuchContact` if the contact is not on the list.
    pub fn set_contact_level(
        &self,
        owner_user: &str,
        owner_domain: &str,
        contact: &str,
        level: Option<PrivacyLevel>,
    ) -> Result<ContactEntry, StoreError> {
        let (contact, _) = normalize_contact(contact)?;
        let owner = user_key(owner_user, owner_domain);
        self.transaction(|tx| {
            owner_id(tx, owner_user, owner_domain)?;
            let changed = tx.execute(
                "UPDATE contacts SET level = ?3, updated_at = ?4 WHERE owner_key = ?1 AND contact = ?2",
                vals![&owner, &contact, level.map(PrivacyLevel::as_str), now()],
            )?;
            if changed == 0 {
                return Err(no_such_contact(&owner, &contact));
            }
            bump_contacts_version(tx)
        })?;
        Ok(entry(owner, contact, level))
    }

    /// Removes a contact from a list; `NoSuchUser` / `NoSuchContact` when absent.
    pub fn remove_contact(
        &self,
        owner_user: &str,
        owner_domain: &str,
        contact: &str,
    ) -> Result<(), StoreError> {
        let (contact, _) = normalize_contact(contact)?;
        let owner = user_key(owner_user, owner_domain);
        self.transaction(|tx| {
            owner_id(tx, owner_user, owner_domain)?;
            let removed = tx.execute(
                "DELETE FROM contacts WHERE owner_key = ?1 AND contact = ?2",
                vals![&owner, &contact],
            )?;
            if removed == 0 {
                return Err(no_such_contact(&owner, &contact));
            }
            bump_contacts_version(tx)
        })
    }

    /// One user's contacts ordered by address; `NoSuchUser` if the owner is absent.
    pub fn list_contacts(
        &self,
        owner_user: &str,
        owner_domain: &str,
    ) -> Result<Vec<ContactEntry>, StoreError> {
        let owner = user_key(owner_user, owner_domain);
        // One transaction so the existence check and the list see the same data.
        let rows = self.transaction(|tx| {
            owner_id(tx, owner_user, owner_domain)?;
            tx.query(
                &format!(
                    "SELECT {CONTACT_COLUMNS} FROM contacts WHERE owner_key = ?1 ORDER BY contact"
                ),
                vals![&owner],
            )
        })?;
        rows.iter().map(entry_from_row).collect()
    }

    /// Every contact of every user, ordered by owner then contact (for the server's cache).
    pub fn all_contacts(&self) -> Result<Vec<ContactEntry>, StoreError> {
        let rows = self.read(|c| {
            c.query(
                &format!("SELECT {CONTACT_COLUMNS} FROM contacts ORDER BY owner_key, contact"),
                &[],
            )
        })?;
        rows.iter().map(entry_from_row).collect()
    }

    /// Changes on every committed write to contacts, including removing a user who had some;
    /// compare it with a cached value to know when to reload.
    pub fn contacts_version(&self) -> Result<i64, StoreError> {
        self.read(|c| crate::read_version(c, "contacts_version"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn privacy_level_names() {
        for l in PrivacyLevel::ALL {
            assert_eq!(PrivacyLevel::parse(l.as_str()), Some(l));
            assert_eq!(l.to_string(), l.as_str());
        }
        use PrivacyLevel::*;
        for (s, l) in [
            ("friends", FriendsAndFamily),
            ("Friends-And-Family", FriendsAndFamily),
            ("friends and family", FriendsAndFamily),
            ("FAMILY", FriendsAndFamily),
            ("work_group", Workgroup),
            ("colleagues", Colleagues),
            ("External Contacts", External),
            ("external", External),
            ("blocked_contacts", Blocked),
            ("Blocked", Blocked),
        ] {
            assert_eq!(PrivacyLevel::parse(s), Some(l), "{s:?}");
        }
        for bad in ["", "public", "colleague", "friend", "block"] {
            assert_eq!(PrivacyLevel::parse(bad), None, "{bad:?}");
        }
        assert!(
            matches!(parse_level("nope"), Err(StoreError::Invalid(m)) if m.contains("privacy level"))
        );
    }

    #[test]
    fn contact_addresses() {
        assert_eq!(
            normalize_contact("sip:Bob@Example.TEST").unwrap(),
            ("bob@example.test".to_owned(), "example.test".to_owned())
        );
        assert_eq!(
            normalize_contact("SIP:carol@[2001:DB8::1]").unwrap().0,
            "carol@[2001:db8::1]"
        );
        assert_eq!(normalize_contact("dave@x").unwrap().0, "dave@x");
        for bad in [
            "",
            "bob",
            "sip:bob",
            "@x.test",
            "bob@",
            "b b@x",
            "bob@x@y",
            "sip:sip:b@x",
            "bob@a..b",
        ] {
            match normalize_contact(bad) {
                Err(StoreError::Invalid(m)) => assert!(m.contains("contact"), "{m}"),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }
}
