//! The audit log of administrative commands. Append-only: there is no API to change or delete
//! entries, and a trigger refuses UPDATEs made by hand.

use crate::db::{vals, Backend, Conn, Row, Value};
use crate::{now_ms, Store, StoreError};

/// One logged command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    /// Unix milliseconds.
    pub at_ms: i64,
    pub admin: String,
    /// Where the command came from: "local shell", "rest 127.0.0.1:5555", ...
    pub origin: String,
    /// The command line, secrets already redacted.
    pub command: String,
    pub success: bool,
    /// Outcome summary or error message.
    pub result: String,
}

/// Selects entries for [`Store::query_audit`]; every set field must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only this admin's commands (ignoring ASCII case).
    pub admin: Option<String>,
    /// Only entries at or after this time (unix milliseconds).
    pub since_ms: Option<i64>,
    /// Only commands containing this substring (ignoring ASCII case).
    pub contains: Option<String>,
    /// At most this many entries, newest first; 0 means no limit.
    pub limit: usize,
}

/// [`Store::append_audit`] inside the caller's transaction, so a change and its record commit
/// (or roll back) together.
pub fn append_audit_in(
    conn: &Conn<'_>,
    admin: &str,
    origin: &str,
    command: &str,
    success: bool,
    result: &str,
) -> Result<i64, StoreError> {
    conn.query_one(
        "INSERT INTO audit_log (at, admin, origin, command, success, result)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
        vals![now_ms(), admin, origin, command, success, result],
    )?
    .get(0)
}

fn entry_from_row(r: &Row) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        id: r.get(0)?,
        at_ms: r.get(1)?,
        admin: r.get(2)?,
        origin: r.get(3)?,
        command: r.get(4)?,
        success: r.get(5)?,
        result: r.get(6)?,
    })
}

impl Store {
    /// Records a command; returns the entry's id (ids grow with every append).
    pub fn append_audit(
        &self,
        admin: &str,
        origin: &str,
        command: &str,
        success: bool,
        result: &str,
    ) -> Result<i64, StoreError> {
        self.read(|c| append_audit_in(c, admin, origin, command, success, result))
    }

    /// Entries matching `filter`, newest (highest id) first.
    pub fn query_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        let mut sql = String::from(
            "SELECT id, at, admin, origin, command, success, result FROM audit_log WHERE 1 = 1",
        );
        let mut args: Vec<Value> = Vec::new();
        if let Some(admin) = &filter.admin {
            args.push(Value::Text(admin.clone()));
            sql.push_str(&format!(" AND lower(admin) = lower(?{})", args.len()));
        }
        if let Some(since) = filter.since_ms {
            args.push(Value::Int(since));
            sql.push_str(&format!(" AND at >= ?{}", args.len()));
        }
        if let Some(sub) = &filter.contains {
            args.push(Value::Text(sub.to_ascii_lowercase()));
            // The same function under two names.
            let instr = match self.backend() {
                Backend::Sqlite => "instr",
                Backend::Postgres => "strpos",
            };
            sql.push_str(&format!(
                " AND {instr}(lower(command), ?{}) > 0",
                args.len()
            ));
        }
        sql.push_str(" ORDER BY id DESC");
        if filter.limit > 0 {
            args.push(Value::Int(i64::try_from(filter.limit).unwrap_or(i64::MAX)));
            sql.push_str(&format!(" LIMIT ?{}", args.len()));
        }
        let rows = self.read(|c| c.query(&sql, &args))?;
        rows.iter().map(entry_from_row).collect()
    }
}
