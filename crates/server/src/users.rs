//! The credentials the server checks on every request, cached from the store.
//! Reloaded when the store's users version changes (e.g. after `confab user add`
//! in another process), so changes take effect without a restart.

use confab_store::Store;
use parking_lot::RwLock;
use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;

#[derive(Debug)]
pub struct UserCred {
    pub username: String,
    pub domain: String,
    pub enabled: bool,
    pub ha1_md5: String,
    pub ha1_sha256: String,
    /// MD5 HA1 over `user@domain` and over `user@` (empty when not stored yet).
    pub ha1_md5_at_domain: String,
    pub ha1_md5_at: String,
    /// Lync's LineURI (`tel:+14255550100[;ext=100]`), canonical as the store keeps it.
    pub line_uri: Option<String>,
    /// EnterpriseVoiceEnabled: the user may call phone numbers.
    pub enterprise_voice: bool,
    /// The user's call forwarding settings (None: the defaults).
    pub forwarding: Option<Arc<confab_voice::CallForwarding>>,
    /// HostedVoiceMail: unanswered, busy and declined calls go to voicemail.
    pub hosted_voicemail: bool,
}

pub fn user_key(user: &str, domain: &str) -> String {
    let mut k = String::with_capacity(user.len() + domain.len() + 1);
    for c in user.chars() {
        k.extend(c.to_lowercase());
    }
    k.push('@');
    k.push_str(&domain.to_ascii_lowercase());
    k
}

#[derive(Default)]
pub struct UserCache {
    map: RwLock<Arc<HashMap<String, Arc<UserCred>>>>,
    /// Reverse number lookup: a LineURI's number (`+14255550100`, `+14255550100;ext=100`)
    /// -> the user's key. A number without its extension names the user only when one
    /// user has it.
    numbers: RwLock<Arc<HashMap<String, String>>>,
    /// The store's users version last loaded; None before the first load.
    version: RwLock<Option<i64>>,
}

impl UserCache {
    pub fn get(&self, user: &str, domain: &str) -> Option<Arc<UserCred>> {
        let map = self.map.read().clone();
        map.get(&user_key(user, domain)).cloned()
    }

    /// The user whose LineURI is `number` (E.164 `+digits`, optionally `;ext=digits`): the
    /// exact LineURI first, else the number without its extension when one user has it.
    pub fn by_number(&self, number: &str) -> Option<Arc<UserCred>> {
        let numbers = self.numbers.read().clone();
        let key = numbers.get(number)?;
        let map = self.map.read().clone();
        map.get(key).cloned()
    }

    pub fn len(&self) -> usize {
        self.map.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reloads from the store if it changed since the last load. Returns whether it did.
    pub fn refresh(&self, store: &Store) -> Result<bool, confab_store::StoreError> {
        let v = store.users_version()?;
        if *self.version.read() == Some(v) {
            return Ok(false);
        }
        let users = store.list_users(None)?;
        let mut map = HashMap::with_capacity_and_hasher(users.len(), Default::default());
        let mut numbers: HashMap<String, String> = HashMap::default();
        let mut bases: HashMap<String, Option<String>> = HashMap::default();
        for u in &users {
            let Some(n) = u.line_uri.as_deref().and_then(|l| l.strip_prefix("tel:")) else {
                continue;
            };
            let key = user_key(&u.username, &u.domain);
            if let Some((base, _)) = n.split_once(';') {
                bases
                    .entry(base.to_string())
                    .and_modify(|k| *k = None)
                    .or_insert(Some(key.clone()));
            }
            numbers.insert(n.to_string(), key);
        }
        for (base, key) in bases {
            if let Some(k) = key {
                numbers.entry(base).or_insert(k);
            }
        }
        for u in users {
            map.insert(
                user_key(&u.username, &u.domain),
                Arc::new(UserCred {
                    username: u.username,
                    domain: u.domain,
                    enabled: u.enabled,
                    ha1_md5: u.ha1_md5,
                    ha1_sha256: u.ha1_sha256,
                    ha1_md5_at_domain: u.ha1_md5_at_domain,
                    ha1_md5_at: u.ha1_md5_at,
                    line_uri: u.line_uri,
                    enterprise_voice: u.enterprise_voice_enabled,
                    forwarding: Some(confab_voice::CallForwarding::from_stored(
                        u.call_forwarding.as_deref(),
                    ))
                    .filter(|f| !f.is_default())
                    .map(Arc::new),
                    hosted_voicemail: u.hosted_voicemail,
                }),
            );
        }
        *self.map.write() = Arc::new(map);
        *self.numbers.write() = Arc::new(numbers);
        *self.version.write() = Some(v);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reloads_only_when_the_store_changed_even_with_no_users() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let cache = UserCache::default();
        assert!(cache.refresh(&store).unwrap(), "the first load");
        // an empty store is not a reason to reload every time
        assert!(!cache.refresh(&store).unwrap());
        assert!(cache.is_empty());
        store.seed_users("example.test", "user", 2, "pw-").unwrap();
        assert!(cache.refresh(&store).unwrap());
        assert!(!cache.refresh(&store).unwrap());
        assert!(cache.get("USER0001", "example.test").is_some());
    }
}
