//! Custom admin roles (Lync's New-CsAdminRole): a copy of a built-in template with its own
//! cmdlet list and configuration/user scopes. Built-in roles are not stored; the admin layer
//! knows them.

use crate::db::{vals, Conn, Row};

use crate::users::{is_unique_violation, now};
use crate::{bump_version, read_version, Store, StoreError};

/// Longest role identity (and template name).
pub const MAX_ROLE_IDENTITY_LEN: usize = 64;
/// Longest cmdlet name or scope in a role.
pub const MAX_ROLE_ITEM_LEN: usize = 256;
/// Most entries in one of a role's lists.
pub const MAX_ROLE_ITEMS: usize = 1000;

/// A stored custom role.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AdminRoleRow {
    /// E.g. "RedmondHelpdesk"; unique ignoring ASCII case.
    pub identity: String,
    /// Built-in role it was derived from, e.g. "CsHelpDesk".
    pub template: String,
    /// Cmdlets the role may run.
    pub cmdlets: Vec<String>,
    /// E.g. ["Global"] or ["Site:Redmond"].
    pub config_scopes: Vec<String>,
    /// E.g. ["Global"] or ["OU:ou=Redmond,dc=example,dc=test"].
    pub user_scopes: Vec<String>,
}

/// A role identity (also what admins' role lists hold): 1..=64 ASCII letters, digits and `-_.`.
pub fn validate_role_identity(identity: &str) -> Result<(), StoreError> {
    validate_role_name("role identity", identity)
}

fn validate_role_name(what: &str, name: &str) -> Result<(), StoreError> {
    if name.is_empty() {
        return Err(StoreError::Invalid(format!("{what} is empty")));
    }
    let len = name.chars().count();
    if len > MAX_ROLE_IDENTITY_LEN {
        return Err(StoreError::Invalid(format!(
            "{what} is {len} characters long, at most {MAX_ROLE_IDENTITY_LEN} allowed"
        )));
    }
    if let Some(c) = name
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))
    {
        return Err(StoreError::Invalid(format!(
            "{what} {name:?} contains {c:?}; allowed are letters, digits and -_."
        )));
    }
    Ok(())
}

fn validate_items(what: &str, items: &[String]) -> Result<(), StoreError> {
    if items.len() > MAX_ROLE_ITEMS {
        return Err(StoreError::Invalid(format!(
            "role has {} {what}, at most {MAX_ROLE_ITEMS} allowed",
            items.len()
        )));
    }
    for item in items {
        if item.trim().is_empty() {
            return Err(StoreError::Invalid(format!(
                "role {what} contain an empty entry"
            )));
        }
        let len = item.chars().count();
        if len > MAX_ROLE_ITEM_LEN {
            return Err(StoreError::Invalid(format!(
                "role {what} entry is {len} characters long, at most {MAX_ROLE_ITEM_LEN} allowed"
            )));
        }
        if item.chars().any(char::is_control) {
            return Err(StoreError::Invalid(format!(
                "role {what} entry {item:?} contains a control character"
            )));
        }
    }
    Ok(())
}

fn validate_role(role: &AdminRoleRow) -> Result<(), StoreError> {
    validate_role_identity(&role.identity)?;
    validate_role_name("role template", &role.template)?;
    validate_items("cmdlets", &role.cmdlets)?;
    validate_items("config scopes", &role.config_scopes)?;
    validate_items("user scopes", &role.user_scopes)?;
    Ok(())
}

/// A string list as stored: a JSON array.
pub(crate) fn encode_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

/// Reads a JSON-array column.
pub(crate) fn decode_list(r: &Row, idx: usize) -> Result<Vec<String>, StoreError> {
    let text: String = r.get(idx)?;
    serde_json::from_str(&text).map_err(|e| {
        StoreError::Invalid(format!(
            "stored list in column {idx} is not a JSON array: {e}"
        ))
    })
}

const ROLE_COLUMNS: &str = "identity, template, cmdlets, config_scopes, user_scopes";

fn role_from_row(r: &Row) -> Result<AdminRoleRow, StoreError> {
    Ok(AdminRoleRow {
        identity: r.get(0)?,
        template: r.get(1)?,
        cmdlets: decode_list(r, 2)?,
        config_scopes: decode_list(r, 3)?,
        user_scopes: decode_list(r, 4)?,
    })
}

fn no_such_role(identity: &str) -> StoreError {
    StoreError::NoSuchRole(identity.to_owned())
}

/// Reads one role (case-insensitive) on any connection (or transaction).
pub fn get_role_in(conn: &Conn<'_>, identity: &str) -> Result<Option<AdminRoleRow>, StoreError> {
    conn.query_opt(
        &format!("SELECT {ROLE_COLUMNS} FROM admin_roles WHERE lower(identity) = lower(?1)"),
        vals![identity],
    )?
    .map(|r| role_from_row(&r))
    .transpose()
}

/// [`Store::create_role`] inside the caller's transaction.
pub fn create_role_in(conn: &Conn<'_>, role: &AdminRoleRow) -> Result<(), StoreError> {
    validate_role(role)?;
    match conn.execute(
        "INSERT INTO admin_roles (identity, template, cmdlets, config_scopes, user_scopes,
                                  created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
        vals![
            &role.identity,
            &role.template,
            encode_list(&role.cmdlets),
            encode_list(&role.config_scopes),
            encode_list(&role.user_scopes),
            now()
        ],
    ) {
        Err(e) if is_unique_violation(&e) => {
            return Err(StoreError::RoleExists(role.identity.clone()))
        }
        r => r?,
    };
    bump_version(conn, "roles_version")?;
    Ok(())
}

/// [`Store::update_role`] inside the caller's transaction.
pub fn update_role_in(conn: &Conn<'_>, role: &AdminRoleRow) -> Result<(), StoreError> {
    validate_role(role)?;
    // The identity keeps its stored spelling.
    let n = conn.execute(
        "UPDATE admin_roles SET template = ?2, cmdlets = ?3, config_scopes = ?4,
                user_scopes = ?5, updated_at = ?6
         WHERE lower(identity) = lower(?1)",
        vals![
            &role.identity,
            &role.template,
            encode_list(&role.cmdlets),
            encode_list(&role.config_scopes),
            encode_list(&role.user_scopes),
            now()
        ],
    )?;
    if n == 0 {
        return Err(no_such_role(&role.identity));
    }
    bump_version(conn, "roles_version")?;
    Ok(())
}

/// [`Store::remove_role`] inside the caller's transaction.
pub fn remove_role_in(conn: &Conn<'_>, identity: &str) -> Result<(), StoreError> {
    if conn.execute(
        "DELETE FROM admin_roles WHERE lower(identity) = lower(?1)",
        vals![identity],
    )? == 0
    {
        return Err(no_such_role(identity));
    }
    bump_version(conn, "roles_version")?;
    Ok(())
}

impl Store {
    /// Stores a new custom role; `RoleExists` if the identity is taken in any letter case.
    pub fn create_role(&self, role: &AdminRoleRow) -> Result<(), StoreError> {
        self.transaction(|tx| create_role_in(tx, role))
    }

    /// Case-insensitive lookup; `None` if absent.
    pub fn get_role(&self, identity: &str) -> Result<Option<AdminRoleRow>, StoreError> {
        self.read(|c| get_role_in(c, identity))
    }

    /// All custom roles, ordered by identity (case-insensitively).
    pub fn list_roles(&self) -> Result<Vec<AdminRoleRow>, StoreError> {
        let rows = self.read(|c| {
            c.query(
                &format!(
                    "SELECT {ROLE_COLUMNS} FROM admin_roles ORDER BY lower(identity), identity"
                ),
                &[],
            )
        })?;
        rows.iter().map(role_from_row).collect()
    }

    /// Replaces template, cmdlets and scopes of the role named `role.identity`; `NoSuchRole`
    /// if absent.
    pub fn update_role(&self, role: &AdminRoleRow) -> Result<(), StoreError> {
        self.transaction(|tx| update_role_in(tx, role))
    }

    /// Deletes a custom role; `NoSuchRole` if absent. Admins keep the identity in their role
    /// lists (the admin layer decides whether that is allowed).
    pub fn remove_role(&self, identity: &str) -> Result<(), StoreError> {
        self.transaction(|tx| remove_role_in(tx, identity))
    }

    /// Changes on every committed write to custom roles (also by other processes).
    pub fn roles_version(&self) -> Result<i64, StoreError> {
        self.read(|c| read_version(c, "roles_version"))
    }
}
