//! Lync-style configuration documents: one JSON object of properties per (kind, identity), e.g.
//! `CsMeetingConfiguration` at `Global` or `Site:Redmond`. The store keeps identities exactly as
//! given; canonicalising them ("site:redmond" -> "Site:Redmond") is the admin layer's job.

use serde_json::{Map, Value};

use crate::db::{vals, Conn, Row};

use crate::users::{is_unique_violation, now};
use crate::{bump_version, read_version, Store, StoreError};

/// Longest accepted configuration kind.
pub const MAX_CONFIG_KIND_LEN: usize = 128;
/// Longest accepted configuration identity (scope).
pub const MAX_CONFIG_IDENTITY_LEN: usize = 256;
/// Largest accepted document body, serialized as JSON.
pub const MAX_CONFIG_BODY_LEN: usize = 1 << 20;

/// A stored configuration document.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigDocument {
    /// E.g. "CsMeetingConfiguration".
    pub kind: String,
    /// Scope as stored: "Global", "Site:Redmond", "Service:Registrar:pool.example.test",
    /// "Tag:RedmondPolicy".
    pub identity: String,
    /// Property name -> value.
    pub body: Map<String, Value>,
    /// Unix seconds of the last write.
    pub updated_at: i64,
}

/// A kind is a cmdlet-style noun: 1..=128 ASCII letters, digits and `-_.`.
pub fn validate_config_kind(kind: &str) -> Result<(), StoreError> {
    if kind.is_empty() {
        return Err(StoreError::Invalid("configuration kind is empty".into()));
    }
    let len = kind.chars().count();
    if len > MAX_CONFIG_KIND_LEN {
        return Err(StoreError::Invalid(format!(
            "configuration kind is {len} characters long, at most {MAX_CONFIG_KIND_LEN} allowed"
        )));
    }
    if let Some(c) = kind
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))
    {
        return Err(StoreError::Invalid(format!(
            "configuration kind {kind:?} contains {c:?}; allowed are letters, digits and -_."
        )));
    }
    Ok(())
}

/// An identity is stored as given, but must be 1..=256 characters without control characters.
pub fn validate_config_identity(identity: &str) -> Result<(), StoreError> {
    if identity.is_empty() {
        return Err(StoreError::Invalid(
            "configuration identity is empty".into(),
        ));
    }
    let len = identity.chars().count();
    if len > MAX_CONFIG_IDENTITY_LEN {
        return Err(StoreError::Invalid(format!(
            "configuration identity is {len} characters long, at most {MAX_CONFIG_IDENTITY_LEN} allowed"
        )));
    }
    if identity.chars().any(char::is_control) {
        return Err(StoreError::Invalid(format!(
            "configuration identity {identity:?} contains a control character"
        )));
    }
    Ok(())
}

fn validate(kind: &str, identity: &str, body: &Map<String, Value>) -> Result<String, StoreError> {
    validate_config_kind(kind)?;
    validate_config_identity(identity)?;
    let text = serde_json::to_string(body)
        .map_err(|e| StoreError::Invalid(format!("configuration body: {e}")))?;
    if text.len() > MAX_CONFIG_BODY_LEN {
        return Err(StoreError::Invalid(format!(
            "configuration body is {} bytes as JSON, at most {MAX_CONFIG_BODY_LEN} allowed",
            text.len()
        )));
    }
    Ok(text)
}

const CONFIG_COLUMNS: &str = "kind, identity, body, updated_at";

/// Global first, then Site:, Service:, Tag: scopes, each alphabetically (case-insensitively),
/// anything else last.
const CONFIG_ORDER: &str = "ORDER BY CASE
        WHEN identity = 'Global' THEN 0
        WHEN lower(identity) LIKE 'site:%' THEN 1
        WHEN lower(identity) LIKE 'service:%' THEN 2
        WHEN lower(identity) LIKE 'tag:%' THEN 3
        ELSE 4 END,
    lower(identity), identity";

fn doc_from_row(r: &Row) -> Result<ConfigDocument, StoreError> {
    let text: String = r.get(2)?;
    let body = match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(m)) => m,
        Ok(_) => {
            return Err(StoreError::Invalid(
                "stored configuration body is not a JSON object".into(),
            ))
        }
        Err(e) => {
            return Err(StoreError::Invalid(format!(
                "stored configuration body is not JSON: {e}"
            )))
        }
    };
    Ok(ConfigDocument {
        kind: r.get(0)?,
        identity: r.get(1)?,
        body,
        updated_at: r.get(3)?,
    })
}

/// Reads one document on any connection (or transaction).
pub fn get_config_in(
    conn: &Conn<'_>,
    kind: &str,
    identity: &str,
) -> Result<Option<ConfigDocument>, StoreError> {
    conn.query_opt(
        &format!("SELECT {CONFIG_COLUMNS} FROM config_documents WHERE kind = ?1 AND identity = ?2"),
        vals![kind, identity],
    )?
    .map(|r| doc_from_row(&r))
    .transpose()
}

/// [`Store::put_config`] inside the caller's transaction.
pub fn put_config_in(
    conn: &Conn<'_>,
    kind: &str,
    identity: &str,
    body: &Map<String, Value>,
) -> Result<ConfigDocument, StoreError> {
    let text = validate(kind, identity, body)?;
    let ts = now();
    conn.execute(
        "INSERT INTO config_documents (kind, identity, body, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?4)
         ON CONFLICT(kind, identity) DO UPDATE SET
            body = excluded.body, updated_at = excluded.updated_at",
        vals![kind, identity, text, ts],
    )?;
    bump_version(conn, "config_version")?;
    Ok(ConfigDocument {
        kind: kind.to_owned(),
        identity: identity.to_owned(),
        body: body.clone(),
        updated_at: ts,
    })
}

/// [`Store::create_config`] inside the caller's transaction.
pub fn create_config_in(
    conn: &Conn<'_>,
    kind: &str,
    identity: &str,
    body: &Map<String, Value>,
) -> Result<ConfigDocument, StoreError> {
    let text = validate(kind, identity, body)?;
    let ts = now();
    match conn.execute(
        "INSERT INTO config_documents (kind, identity, body, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?4)",
        vals![kind, identity, text, ts],
    ) {
        Err(e) if is_unique_violation(&e) => {
            return Err(StoreError::ConfigExists {
                kind: kind.to_owned(),
                identity: identity.to_owned(),
            })
        }
        r => r?,
    };
    bump_version(conn, "config_version")?;
    Ok(ConfigDocument {
        kind: kind.to_owned(),
        identity: identity.to_owned(),
        body: body.clone(),
        updated_at: ts,
    })
}

/// [`Store::remove_config`] inside the caller's transaction.
pub fn remove_config_in(conn: &Conn<'_>, kind: &str, identity: &str) -> Result<(), StoreError> {
    let n = conn.execute(
        "DELETE FROM config_documents WHERE kind = ?1 AND identity = ?2",
        vals![kind, identity],
    )?;
    if n == 0 {
        return Err(StoreError::NoSuchConfig {
            kind: kind.to_owned(),
            identity: identity.to_owned(),
        });
    }
    bump_version(conn, "config_version")?;
    Ok(())
}

impl Store {
    /// The document of `kind` at exactly `identity`, `None` if absent.
    pub fn get_config(
        &self,
        kind: &str,
        identity: &str,
    ) -> Result<Option<ConfigDocument>, StoreError> {
        self.read(|c| get_config_in(c, kind, identity))
    }

    /// Every document of `kind`: Global first, then Site:, Service: and Tag: scopes, each
    /// alphabetically.
    pub fn list_config(&self, kind: &str) -> Result<Vec<ConfigDocument>, StoreError> {
        let rows = self.read(|c| {
            c.query(
                &format!(
                    "SELECT {CONFIG_COLUMNS} FROM config_documents WHERE kind = ?1 {CONFIG_ORDER}"
                ),
                vals![kind],
            )
        })?;
        rows.iter().map(doc_from_row).collect()
    }

    /// Inserts or replaces the whole document; bumps `config_version`.
    pub fn put_config(
        &self,
        kind: &str,
        identity: &str,
        body: &Map<String, Value>,
    ) -> Result<ConfigDocument, StoreError> {
        self.transaction(|tx| put_config_in(tx, kind, identity, body))
    }

    /// Inserts a new document; `ConfigExists` if one is already at (kind, identity).
    pub fn create_config(
        &self,
        kind: &str,
        identity: &str,
        body: &Map<String, Value>,
    ) -> Result<ConfigDocument, StoreError> {
        self.transaction(|tx| create_config_in(tx, kind, identity, body))
    }

    /// Deletes a document; `NoSuchConfig` if absent.
    pub fn remove_config(&self, kind: &str, identity: &str) -> Result<(), StoreError> {
        self.transaction(|tx| remove_config_in(tx, kind, identity))
    }

    /// Changes on every committed write to configuration documents (also by other processes).
    pub fn config_version(&self) -> Result<i64, StoreError> {
        self.read(|c| read_version(c, "config_version"))
    }
}
