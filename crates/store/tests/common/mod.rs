//! The backends the store's tests run on: SQLite always, and PostgreSQL when
//! `CONFAB_TEST_POSTGRES=postgres://…` names a server (each test in a fresh schema, dropped at
//! the end). With `CONFAB_REQUIRE_POSTGRES=1` a missing URL fails the test instead.
#![allow(dead_code)]

use confab_store::{Store, StoreError};

/// One test's store location.
pub struct TestDb {
    pub name: &'static str,
    dir: tempfile::TempDir,
    pg: Option<(String, String)>, // (server URL, schema)
}

impl TestDb {
    /// A new connection to this test's store (call again for "another process").
    pub fn open(&self) -> Result<Store, StoreError> {
        match &self.pg {
            None => Store::open(self.dir.path()),
            Some((url, schema)) => Store::open_url(&schema_url(url, schema)),
        }
    }

    /// The URL or directory, as `confab --store` takes it.
    pub fn spec(&self) -> String {
        match &self.pg {
            None => self.dir.path().display().to_string(),
            Some((url, schema)) => schema_url(url, schema),
        }
    }

    /// The temporary directory (the SQLite store's data directory).
    pub fn dir(&self) -> &tempfile::TempDir {
        &self.dir
    }

    pub fn is_postgres(&self) -> bool {
        self.pg.is_some()
    }
}

/// `url` with the search path set to `schema`.
pub fn schema_url(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20search_path%3D{schema}")
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((url, schema)) = &self.pg {
            if let Ok(mut c) = postgres::Client::connect(url, postgres::NoTls) {
                let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
            }
        }
    }
}

/// The PostgreSQL server URL for tests, if any; panics when one is required but not given.
pub fn postgres_url() -> Option<String> {
    match std::env::var("CONFAB_TEST_POSTGRES") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            assert!(
                std::env::var("CONFAB_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "CONFAB_REQUIRE_POSTGRES=1 but CONFAB_TEST_POSTGRES is not set"
            );
            None
        }
    }
}

/// A fresh, empty PostgreSQL schema on the test server.
pub fn fresh_schema(url: &str) -> String {
    let schema = format!("confab_test_{:016x}", rand::random::<u64>());
    let mut c = postgres::Client::connect(url, postgres::NoTls)
        .unwrap_or_else(|e| panic!("connecting to CONFAB_TEST_POSTGRES: {e}"));
    c.batch_execute(&format!("CREATE SCHEMA {schema}")).unwrap();
    schema
}

/// SQLite only, for tests that edit the file by hand.
pub fn sqlite_db() -> TestDb {
    TestDb {
        name: "sqlite",
        dir: tempfile::tempdir().unwrap(),
        pg: None,
    }
}

/// SQLite, then PostgreSQL when configured.
pub fn test_dbs() -> Vec<TestDb> {
    let mut dbs = vec![TestDb {
        name: "sqlite",
        dir: tempfile::tempdir().unwrap(),
        pg: None,
    }];
    if let Some(url) = postgres_url() {
        let schema = fresh_schema(&url);
        dbs.push(TestDb {
            name: "postgres",
            dir: tempfile::tempdir().unwrap(),
            pg: Some((url, schema)),
        });
    }
    dbs
}
