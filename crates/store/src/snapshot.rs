//! Saved server state: what the server holds only in memory (registrations, presence) is
//! written here on a graceful stop and taken back on the next start, so a restart does not
//! make every user unreachable until their client refreshes.

use crate::db::vals;
use crate::{Store, StoreError};

impl Store {
    /// Replaces the saved items of `kind` with `items`, in one transaction.
    pub fn save_snapshot(&self, kind: &str, items: &[String]) -> Result<(), StoreError> {
        self.transaction(|tx| {
            tx.execute("DELETE FROM state_snapshot WHERE kind = ?1", vals![kind])?;
            for item in items {
                tx.execute(
                    "INSERT INTO state_snapshot(kind, body) VALUES (?1, ?2)",
                    vals![kind, item],
                )?;
            }
            Ok(())
        })
    }

    /// Returns and deletes the saved items of `kind`, in the order they were saved.
    pub fn take_snapshot(&self, kind: &str) -> Result<Vec<String>, StoreError> {
        self.transaction(|tx| {
            let rows = tx.query(
                "SELECT body FROM state_snapshot WHERE kind = ?1 ORDER BY id",
                vals![kind],
            )?;
            tx.execute("DELETE FROM state_snapshot WHERE kind = ?1", vals![kind])?;
            rows.iter().map(|r| r.get(0)).collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_then_take_once() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        s.save_snapshot("bindings", &["a".into(), "b".into()])
            .unwrap();
        s.save_snapshot("bindings", &["c".into()]).unwrap();
        s.save_snapshot("other", &["x".into()]).unwrap();
        drop(s);
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.take_snapshot("bindings").unwrap(), ["c"]);
        assert!(
            s.take_snapshot("bindings").unwrap().is_empty(),
            "taken only once"
        );
        assert_eq!(s.take_snapshot("other").unwrap(), ["x"]);
    }
}
