//! Lync 2013 privacy relationships: each user's contact list puts contacts in one of five
//! access levels, which decide what they see of the user's presence (pidf::view) and
//! whether they can reach the user. Cached from the store and reloaded when the store's
//! contacts version changes, so `confab contact …` takes effect on live subscriptions.

use crate::users::user_key;
use confab_sip::pidf::Level;
use confab_store::Store;
use parking_lot::RwLock;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

type Lists = HashMap<String, HashMap<String, Level>>;

pub struct Privacy {
    /// owner → contact → explicitly assigned level
    lists: RwLock<Arc<Lists>>,
    version: RwLock<Option<i64>>,
    domains: Vec<String>,
}

impl Privacy {
    pub fn new(domains: Vec<String>) -> Privacy {
        Privacy {
            lists: RwLock::new(Arc::new(HashMap::new())),
            version: RwLock::new(None),
            domains,
        }
    }

    /// The level at which `watcher` sees `presentity` (both user@domain keys).
    /// Without an explicit assignment: Colleagues for people of this organisation (any
    /// domain confab serves), External Contacts for everyone else.
    pub fn level(&self, presentity: &str, watcher: &str) -> Level {
        if presentity == watcher {
            return Level::FriendsAndFamily;
        }
        if let Some(l) = self
            .lists
            .read()
            .get(presentity)
            .and_then(|m| m.get(watcher))
        {
            return *l;
        }
        let domain = watcher.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
        if self.domains.iter().any(|d| d.eq_ignore_ascii_case(domain)) {
            Level::Colleagues
        } else {
            Level::External
        }
    }

    /// Reloads if the store changed; returns the owners whose lists changed.
    pub fn refresh(&self, store: &Store) -> Result<Vec<String>, confab_store::StoreError> {
        let v = store.contacts_version()?;
        if *self.version.read() == Some(v) {
            return Ok(vec![]);
        }
        let mut lists: Lists = HashMap::new();
        for c in store.all_contacts()? {
            if !c.explicit_level {
                continue; // auto-assigned: the default rule above decides
            }
            let level = c.level;
            let (ou, od) = c.owner.rsplit_once('@').unwrap_or((&c.owner, ""));
            let (cu, cd) = c.contact.rsplit_once('@').unwrap_or((&c.contact, ""));
            lists
                .entry(user_key(ou, od))
                .or_default()
                .insert(user_key(cu, cd), level);
        }
        let old = self.lists.read().clone();
        let owners: HashSet<&String> = old.keys().chain(lists.keys()).collect();
        let changed = owners
            .into_iter()
            .filter(|o| old.get(*o) != lists.get(*o))
            .cloned()
            .collect();
        *self.lists.write() = Arc::new(lists);
        *self.version.write() = Some(v);
        tracing::info!("contact lists loaded (contacts version {v})");
        Ok(changed)
    }
}
