//! The two database backends behind [`crate::Store`]: embedded SQLite (rusqlite) and
//! PostgreSQL (the sync `postgres` client, run on a thread of its own).
//!
//! SQL is written once, in the subset both understand, with `?1`-style placeholders;
//! [`pg_sql`] turns them into PostgreSQL's `$1`. The few real dialect differences (schema DDL,
//! `PRAGMA`s, `VACUUM INTO`) live in `migrations.rs` and `backup.rs`.

use std::sync::mpsc;

use crate::StoreError;

/// A parameter or a column value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Int(v as i64)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Text(v.to_owned())
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Value {
        Value::Text(v.clone())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Text(v)
    }
}
impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Value {
        Value::Blob(v.to_vec())
    }
}
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Value {
        Value::Blob(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}

/// `vals![a, b]` is `&[Value::from(a), Value::from(b)]`.
macro_rules! vals {
    ($($v:expr),* $(,)?) => { &[$($crate::db::Value::from($v)),*][..] };
}
pub(crate) use vals;

/// One result row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row(pub Vec<Value>);

/// Conversion of a column value to a Rust type.
pub trait FromValue: Sized {
    fn from_value(v: &Value) -> Option<Self>;
}
impl FromValue for i64 {
    fn from_value(v: &Value) -> Option<i64> {
        match v {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
}
impl FromValue for bool {
    fn from_value(v: &Value) -> Option<bool> {
        i64::from_value(v).map(|i| i != 0)
    }
}
impl FromValue for String {
    fn from_value(v: &Value) -> Option<String> {
        match v {
            Value::Text(s) => Some(s.clone()),
            _ => None,
        }
    }
}
impl FromValue for Vec<u8> {
    fn from_value(v: &Value) -> Option<Vec<u8>> {
        match v {
            Value::Blob(b) => Some(b.clone()),
            // SQLite lets a BLOB column hold text written by hand.
            Value::Text(s) => Some(s.as_bytes().to_vec()),
            _ => None,
        }
    }
}
impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: &Value) -> Option<Option<T>> {
        match v {
            Value::Null => Some(None),
            v => T::from_value(v).map(Some),
        }
    }
}

impl Row {
    /// Column `idx` as `T`; a clear error if it is missing or of another type.
    pub fn get<T: FromValue>(&self, idx: usize) -> Result<T, StoreError> {
        let v = self
            .0
            .get(idx)
            .ok_or_else(|| StoreError::Invalid(format!("result has no column {idx}")))?;
        T::from_value(v).ok_or_else(|| {
            StoreError::Invalid(format!(
                "column {idx} holds {v:?}, expected {}",
                std::any::type_name::<T>()
            ))
        })
    }
}

/// Which database a [`Conn`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A connection, or a transaction on one: what the store's statements (and the [`crate::tx`]
/// functions) run on.
pub struct Conn<'a> {
    inner: Inner<'a>,
}

enum Inner<'a> {
    Sqlite(&'a rusqlite::Connection),
    Pg(&'a PgClient),
}

impl<'a> Conn<'a> {
    pub(crate) fn sqlite(c: &'a rusqlite::Connection) -> Conn<'a> {
        Conn {
            inner: Inner::Sqlite(c),
        }
    }

    pub(crate) fn pg(c: &'a PgClient) -> Conn<'a> {
        Conn {
            inner: Inner::Pg(c),
        }
    }

    pub fn backend(&self) -> Backend {
        match self.inner {
            Inner::Sqlite(_) => Backend::Sqlite,
            Inner::Pg(_) => Backend::Postgres,
        }
    }

    /// Runs a statement; returns the number of rows it changed.
    pub(crate) fn execute(&self, sql: &str, params: &[Value]) -> Result<usize, StoreError> {
        match self.inner {
            Inner::Sqlite(c) => Ok(c
                .prepare_cached(sql)?
                .execute(rusqlite::params_from_iter(params.iter().map(SqliteParam)))?),
            Inner::Pg(c) => {
                let (sql, params) = (pg_sql(sql), params.to_vec());
                c.run(move |conn| {
                    let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                        params.iter().map(|p| p as _).collect();
                    conn.with_statement(&sql, |client, stmt| client.execute(stmt, &refs))
                        .map(|n| n as usize)
                })?
                .map_err(StoreError::from)
            }
        }
    }

    /// Runs a query and returns all its rows.
    pub(crate) fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
        match self.inner {
            Inner::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                let n = stmt.column_count();
                let rows = stmt.query_map(
                    rusqlite::params_from_iter(params.iter().map(SqliteParam)),
                    |r| {
                        (0..n)
                            .map(|i| Ok(sqlite_value(r.get_ref(i)?)))
                            .collect::<rusqlite::Result<Vec<_>>>()
                            .map(Row)
                    },
                )?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            }
            Inner::Pg(c) => {
                let (sql, params) = (pg_sql(sql), params.to_vec());
                c.run(move |conn| -> Result<Vec<Row>, StoreError> {
                    let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                        params.iter().map(|p| p as _).collect();
                    conn.with_statement(&sql, |client, stmt| client.query(stmt, &refs))?
                        .iter()
                        .map(pg_row)
                        .collect()
                })?
            }
        }
    }

    /// The first row, if any.
    pub(crate) fn query_opt(&self, sql: &str, params: &[Value]) -> Result<Option<Row>, StoreError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// The first row; an error if there is none.
    pub(crate) fn query_one(&self, sql: &str, params: &[Value]) -> Result<Row, StoreError> {
        self.query_opt(sql, params)?
            .ok_or_else(|| StoreError::Invalid(format!("query returned no row: {sql}")))
    }

    /// Runs several `;`-separated statements without parameters (DDL).
    pub(crate) fn batch(&self, sql: &str) -> Result<(), StoreError> {
        match self.inner {
            Inner::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Inner::Pg(c) => {
                let sql = sql.to_owned();
                c.run(move |conn| {
                    // DDL (a migration) may change what a cached statement returns;
                    // transaction control does not
                    let word = sql.split_whitespace().next().unwrap_or("");
                    if !["BEGIN", "COMMIT", "ROLLBACK", "SET"]
                        .iter()
                        .any(|w| word.eq_ignore_ascii_case(w))
                    {
                        conn.statements.clear();
                    }
                    conn.client.batch_execute(&sql)
                })?
                .map_err(StoreError::from)
            }
        }
    }
}

/// `?N` -> `$N` outside quoted strings and identifiers.
pub(crate) fn pg_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut quote: Option<char> = None;
    for c in sql.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '?' => {
                out.push('$');
                continue;
            }
            None => {}
        }
        out.push(c);
    }
    out
}

struct SqliteParam<'a>(&'a Value);

impl rusqlite::ToSql for SqliteParam<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self.0 {
            Value::Null => ValueRef::Null,
            Value::Int(i) => ValueRef::Integer(*i),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

fn sqlite_value(v: rusqlite::types::ValueRef<'_>) -> Value {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        // The schema has no REAL columns; keep whatever a hand edit put there readable.
        ValueRef::Real(f) => Value::Text(f.to_string()),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

impl postgres::types::ToSql for Value {
    fn to_sql(
        &self,
        ty: &postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        use postgres::types::{IsNull, Type};
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::BOOL => (*i != 0).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => i.to_string().as_str().to_sql(ty, out),
                _ => Err(format!("cannot send an integer as {ty}").into()),
            },
            Value::Text(s) => match *ty {
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                    s.as_str().to_sql(ty, out)
                }
                Type::BYTEA => s.as_bytes().to_sql(ty, out),
                _ => Err(format!("cannot send text as {ty}").into()),
            },
            Value::Blob(b) => match *ty {
                Type::BYTEA => b.as_slice().to_sql(ty, out),
                _ => Err(format!("cannot send bytes as {ty}").into()),
            },
        }
    }

    fn accepts(_: &postgres::types::Type) -> bool {
        true // checked per value in to_sql
    }

    postgres::types::to_sql_checked!();
}

fn pg_row(r: &postgres::Row) -> Result<Row, StoreError> {
    use postgres::types::Type;
    let mut out = Vec::with_capacity(r.len());
    for (i, col) in r.columns().iter().enumerate() {
        let v = match *col.type_() {
            Type::INT8 => r.try_get::<_, Option<i64>>(i)?.map(Value::Int),
            Type::INT4 => r
                .try_get::<_, Option<i32>>(i)?
                .map(|v| Value::Int(v.into())),
            Type::INT2 => r
                .try_get::<_, Option<i16>>(i)?
                .map(|v| Value::Int(v.into())),
            Type::BOOL => r
                .try_get::<_, Option<bool>>(i)?
                .map(|v| Value::Int(v.into())),
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => {
                r.try_get::<_, Option<String>>(i)?.map(Value::Text)
            }
            Type::BYTEA => r.try_get::<_, Option<Vec<u8>>>(i)?.map(Value::Blob),
            ref other => {
                return Err(StoreError::Invalid(format!(
                    "column {} has type {other}, which the store does not read",
                    col.name()
                )))
            }
        };
        out.push(v.unwrap_or(Value::Null));
    }
    Ok(Row(out))
}

type Job = Box<dyn FnOnce(&mut PgConn) + Send>;

/// The connection and its prepared statements: each SQL text is prepared once per
/// connection, not on every call (which costs a round trip to the server each time).
pub(crate) struct PgConn {
    client: postgres::Client,
    statements: std::collections::HashMap<String, postgres::Statement>,
}

/// Prepared statements kept per connection; the store has a few dozen distinct ones.
const MAX_STATEMENTS: usize = 256;

impl PgConn {
    fn new(client: postgres::Client) -> PgConn {
        PgConn {
            client,
            statements: Default::default(),
        }
    }

    fn statement(&mut self, sql: &str) -> Result<postgres::Statement, postgres::Error> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        if self.statements.len() >= MAX_STATEMENTS {
            self.statements.clear();
        }
        self.statements.insert(sql.to_owned(), s.clone());
        Ok(s)
    }

    /// Runs `f` with the cached statement for `sql`. If the schema changed under it
    /// (another server of the pool migrated: "cached plan must not change result type"),
    /// the statements are prepared afresh and `f` runs once more.
    fn with_statement<T>(
        &mut self,
        sql: &str,
        f: impl Fn(&mut postgres::Client, &postgres::Statement) -> Result<T, postgres::Error>,
    ) -> Result<T, postgres::Error> {
        let stmt = self.statement(sql)?;
        match f(&mut self.client, &stmt) {
            Err(e)
                if e.code() == Some(&postgres::error::SqlState::FEATURE_NOT_SUPPORTED)
                    || e.code() == Some(&postgres::error::SqlState::INVALID_SQL_STATEMENT_NAME) =>
            {
                self.statements.clear();
                let stmt = self.statement(sql)?;
                f(&mut self.client, &stmt)
            }
            r => r,
        }
    }
}

/// A PostgreSQL connection owned by a thread of its own. The sync `postgres` client runs a
/// private tokio runtime and panics when called from inside another one, and the server calls
/// the store from tokio tasks; so every call is sent to this thread and waited for.
pub(crate) struct PgClient {
    jobs: mpsc::Sender<Job>,
}

impl PgClient {
    /// Connects (TLS off: the store is meant to be reached on a trusted network or loopback).
    pub(crate) fn connect(url: &str) -> Result<PgClient, StoreError> {
        let config: postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Invalid(format!("PostgreSQL URL: {e}")))?;
        let (jobs, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("confab-postgres".into())
            .spawn(move || {
                let mut conn = match config.connect(postgres::NoTls) {
                    Ok(c) => {
                        let _ = ready_tx.send(Ok(()));
                        PgConn::new(c)
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                // Ends when the store (the only sender) is dropped.
                while let Ok(job) = rx.recv() {
                    if conn.client.is_closed() {
                        // The server went away (restart, idle kill): one fresh try per job,
                        // with statements prepared anew on the new connection.
                        if let Ok(c) = config.connect(postgres::NoTls) {
                            conn = PgConn::new(c);
                        }
                    }
                    job(&mut conn);
                }
            })?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(PgClient { jobs }),
            Ok(Err(e)) => Err(StoreError::Postgres(e)),
            Err(_) => Err(StoreError::Invalid(
                "PostgreSQL connection thread died".into(),
            )),
        }
    }

    /// Runs `f` on the connection's thread and waits for its result.
    pub(crate) fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut PgConn) -> T + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.jobs
            .send(Box::new(move |c| {
                let _ = tx.send(f(c));
            }))
            .map_err(|_| StoreError::Invalid("PostgreSQL connection thread is gone".into()))?;
        rx.recv()
            .map_err(|_| StoreError::Invalid("PostgreSQL connection thread panicked".into()))
    }
}

/// Whether `e` is a UNIQUE or PRIMARY KEY violation, on either backend.
pub(crate) fn is_unique_violation(e: &StoreError) -> bool {
    match e {
        StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => {
            f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
        }
        StoreError::Postgres(p) => p.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_translate_outside_quotes() {
        assert_eq!(
            pg_sql("SELECT '?1', \"a?\" FROM t WHERE a = ?1 AND b = ?12"),
            "SELECT '?1', \"a?\" FROM t WHERE a = $1 AND b = $12"
        );
    }
}
