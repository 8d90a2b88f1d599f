//! Server applications: the SIP filter scripts of the enabled `CsServerApplication`
//! documents (see confab-scripts), loaded at startup and again when the configuration or a
//! script file changes.
//!
//! A Critical application whose script cannot be loaded stops the server at startup; at a
//! reload it keeps the previous scripts running (with an error in the log). A non-critical
//! one is skipped with an error in the log.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use confab_scripts::{AppConfig, Filters, Limits, LoadError};
use parking_lot::{Mutex, RwLock};
use serde_json::{Map, Value};

pub const KIND: &str = <confab_policy::ServerApplication as confab_policy::Document>::DEF.noun;

/// The live scripts. Requests check one atomic flag when there are none.
pub struct ScriptFilters {
    current: RwLock<Arc<Filters>>,
    active: AtomicBool,
    version: Mutex<Option<i64>>,
    dir: PathBuf,
    limits: Limits,
}

impl ScriptFilters {
    /// Scripts named by a relative path are looked up in `dir` (`<data_dir>/scripts`).
    pub fn new(dir: PathBuf, limits: Limits) -> ScriptFilters {
        ScriptFilters {
            current: RwLock::new(Arc::new(Filters::empty())),
            active: AtomicBool::new(false),
            version: Mutex::new(None),
            dir,
            limits,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The scripts to run, or None when there are none (the common case costs one load).
    #[inline]
    pub fn get(&self) -> Option<Arc<Filters>> {
        if !self.active.load(Ordering::Acquire) {
            return None;
        }
        Some(self.current.read().clone())
    }

    fn set(&self, f: Filters) {
        let active = !f.is_empty();
        *self.current.write() = Arc::new(f);
        self.active.store(active, Ordering::Release);
    }

    fn read(
        &self,
        store: &confab_store::Store,
    ) -> Result<(Filters, Vec<LoadError>), confab_store::StoreError> {
        let apps: Vec<AppConfig> = store
            .list_config(KIND)?
            .into_iter()
            .map(|d| app_config(&d.identity, &d.body))
            .collect();
        Ok(Filters::load(&apps, &self.dir, &self.limits))
    }

    /// Startup: a Critical application that fails to load is an error.
    pub fn load(&self, store: &confab_store::Store) -> anyhow::Result<()> {
        let version = store.config_version()?;
        let (filters, errors) = self.read(store)?;
        if let Some(e) = errors.iter().find(|e| e.critical) {
            anyhow::bail!("critical {e}");
        }
        for e in &errors {
            tracing::error!("skipped {e}");
        }
        for id in filters.identities() {
            tracing::info!(application = id, "server application loaded");
        }
        self.set(filters);
        *self.version.lock() = Some(version);
        Ok(())
    }

    /// Reloads when the configuration version moved or a script file changed.
    pub fn refresh(&self, store: &confab_store::Store) -> Result<bool, confab_store::StoreError> {
        let v = store.config_version()?;
        let mut seen = self.version.lock();
        if *seen == Some(v) && !self.current.read().changed_on_disk() {
            return Ok(false);
        }
        // a configuration change that is not about applications reloads them too: cheap, rare
        let (filters, errors) = self.read(store)?;
        *seen = Some(v);
        if let Some(e) = errors.iter().find(|e| e.critical) {
            tracing::error!("critical {e}; the previous server applications stay in force");
            return Ok(false);
        }
        for e in &errors {
            tracing::error!("skipped {e}");
        }
        tracing::info!(applications = ?filters.identities(), "server applications reloaded");
        self.set(filters);
        Ok(true)
    }
}

/// A `CsServerApplication` document as the scripts crate wants it (read through its typed
/// definition in confab-policy: Enabled false, Critical true, Priority -1 by default).
pub fn app_config(identity: &str, body: &Map<String, Value>) -> AppConfig {
    use confab_policy::Document;
    let (app, bad) = confab_policy::ServerApplication::from_body(body);
    if !bad.is_empty() {
        tracing::warn!(
            application = identity,
            properties = ?bad,
            "stored values of the wrong type: their defaults apply"
        );
    }
    AppConfig {
        identity: identity.to_string(),
        uri: app.uri,
        script_name: app.script_name,
        enabled: app.enabled,
        critical: app.critical,
        priority: app.priority,
    }
}

impl crate::core::Core {
    /// Runs the server applications on a new request; header edits are applied here. Their
    /// choice of next hop is returned, to be used after sign-in and policy.
    pub(crate) fn request_scripts(
        &self,
        msg: &mut confab_sip::Message,
        src: &crate::net::Source,
    ) -> Result<Option<crate::net::Dest>, crate::pipeline::Verdict> {
        use crate::pipeline::Verdict;
        let Some(filters) = self.scripts.get() else {
            return Ok(None);
        };
        let ctx = self.script_context(msg, confab_scripts::Direction::In, src);
        let outcome = filters.run(msg, &ctx);
        outcome.apply_edits(msg);
        match outcome.verdict {
            confab_scripts::Verdict::Pass => Ok(None),
            confab_scripts::Verdict::Respond { status, reason } => {
                Err(Verdict::Reply(status, Some(reason)))
            }
            confab_scripts::Verdict::Drop => Err(Verdict::Drop),
            confab_scripts::Verdict::Route(hop) => {
                match confab_sip::Uri::parse(&hop)
                    .ok()
                    .as_ref()
                    .and_then(crate::core::uri_dest)
                {
                    Some(dest) => Ok(Some(dest)),
                    None => Err(Verdict::reply(
                        500,
                        format!("Server application chose an unusable next hop {hop}"),
                    )),
                }
            }
        }
    }
}
