//! Saved server state: what the server holds only in memory (registrations, presence) is
//! written here on a graceful stop and taken back on the next start, so a restart does not
//! make every user unreachable until their client refreshes.

use rusqlite::params;

use crate::{Store, StoreError};

impl Store {
    /// Replaces the saved items of `kind` with `items`, in one transaction.
    pub fn save_snapshot(&self, kind: &str, items: &[String]) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM state_snapshot WHERE kind = ?1", params![kind])?;
        {
            let mut ins = tx.prepare("INSERT INTO state_snapshot(kind, body) VALUES (?1, ?2)")?;
            for item in items {
                ins.execute(params![kind, item])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Returns and deletes the saved items of `kind`, in the order they were saved.
    pub fn take_snapshot(&self, kind: &str) -> Result<Vec<String>, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let items = {
            let mut q = tx.prepare("SELECT body FROM state_snapshot WHERE kind = ?1 ORDER BY id")?;
            let rows = q.query_map(params![kind], |r| r.get::<_, String>(0))?;
            rows.collect::<Result<Vec<_>, _>>()?
        };
        tx.execute("DELETE FROM state_snapshot WHERE kind = ?1", params![kind])?;
        tx.commit()?;
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_then_take_once() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        s.save_snapshot("bindings", &["a".into(), "b".into()]).unwrap();
        s.save_snapshot("bindings", &["c".into()]).unwrap();
        s.save_snapshot("other", &["x".into()]).unwrap();
        drop(s);
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.take_snapshot("bindings").unwrap(), ["c"]);
        assert!(s.take_snapshot("bindings").unwrap().is_empty(), "taken only once");
        assert_eq!(s.take_snapshot("other").unwrap(), ["x"]);
    }
}
