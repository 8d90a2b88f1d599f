//! Routing by simple URLs (CsSimpleUrlConfiguration): which component a request's host and
//! path fall under, and the URLs the pages hand out (a meeting's join link, the dial-in
//! page).
//!
//! The configuration in force is `Site:<this server's site>` if there is one, else Global
//! (Lync's rule). It is read from the store at most once a second, and again only when the
//! store's configuration version changed; no lock is held across the read.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use confab_policy::docs::SimpleUrlConfiguration;
use confab_policy::simple_url::{parse_url, UrlParts};
use confab_policy::Document;

use super::Site;

/// How often the store's configuration version is looked at.
const FRESH: Duration = Duration::from_secs(1);

/// One simple URL entry, parsed.
#[derive(Clone, Debug)]
pub struct Entry {
    /// "Meet", "Dialin" or "Cscp".
    pub component: &'static str,
    /// The SIP domain of a Meet URL (lower case); "*" for the others.
    pub domain: String,
    pub parts: UrlParts,
    /// The URL as configured.
    pub url: String,
    /// Whether it is its simple URL's ActiveUrl (the one handed out).
    pub active: bool,
}

/// The simple URLs in force.
#[derive(Clone, Debug, Default)]
pub struct SimpleUrls {
    /// Longest path first, so the most specific entry matches.
    pub entries: Vec<Entry>,
}

impl SimpleUrls {
    fn from_config(c: &SimpleUrlConfiguration) -> SimpleUrls {
        let mut entries = vec![];
        for su in &c.simple_url {
            let Some(component) = confab_policy::simple_url::COMPONENTS
                .iter()
                .find(|n| n.eq_ignore_ascii_case(&su.component))
            else {
                continue;
            };
            for e in &su.simple_url_entry {
                if let Ok(parts) = parse_url(&e.url) {
                    entries.push(Entry {
                        component,
                        domain: su.domain.to_ascii_lowercase(),
                        parts,
                        url: e.url.trim_end_matches('/').to_string(),
                        active: e.url.eq_ignore_ascii_case(&su.active_url),
                    });
                }
            }
        }
        entries.sort_by_key(|e| std::cmp::Reverse(e.parts.path.len()));
        SimpleUrls { entries }
    }

    /// The ActiveUrl of `component` (for Meet: of the SIP domain `domain`).
    pub fn active(&self, component: &str, domain: Option<&str>) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| {
                e.active
                    && e.component == component
                    && domain.is_none_or(|d| e.domain.eq_ignore_ascii_case(d) || e.domain == "*")
            })
            .map(|e| e.url.as_str())
    }

    /// The canonical path for a request to `host` and `path`, if it is a simple URL.
    pub fn resolve(&self, host: &str, path: &str) -> Option<String> {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        for e in &self.entries {
            if e.parts.host != host || e.parts.path.len() > segments.len() {
                continue;
            }
            if e.parts
                .path
                .iter()
                .zip(&segments)
                .all(|(a, b)| a.eq_ignore_ascii_case(b))
            {
                let rest = &segments[e.parts.path.len()..];
                return Some(canonical_of(e.component, rest));
            }
        }
        None
    }
}

fn canonical_of(component: &str, rest: &[&str]) -> String {
    let mut p = format!("/_/{}", component.to_ascii_lowercase());
    for s in rest {
        p.push('/');
        p.push_str(s);
    }
    p
}

/// The canonical path of a path form (`/meet/…`, `/dialin`, `/cscp`, any case) or of an
/// autodiscover host's root; `None` for anything else.
fn path_form(host: Option<&str>, path: &str) -> Option<String> {
    if path == "/" || path.is_empty() {
        if let Some(h) = host {
            if h.starts_with("lyncdiscover.") || h.starts_with("lyncdiscoverinternal.") {
                return Some(super::autodiscover::ROOT.to_string());
            }
        }
        return None;
    }
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let first = segments.first()?;
    let component = ["Meet", "Dialin", "Cscp"]
        .into_iter()
        .find(|c| c.eq_ignore_ascii_case(first))?;
    Some(canonical_of(component, &segments[1..]))
}

/// Paths that are never rewritten.
fn is_canonical(path: &str) -> bool {
    path.starts_with("/_/")
        || path == "/_"
        || path.starts_with("/api/")
        || path == "/metrics"
        || path
            .get(..14)
            .is_some_and(|p| p.eq_ignore_ascii_case("/autodiscover/"))
}

/// The simple URLs in force, refreshed from the store.
pub struct UrlCache {
    inner: Mutex<Cached>,
}

struct Cached {
    urls: std::sync::Arc<SimpleUrls>,
    version: Option<i64>,
    checked: Option<Instant>,
}

impl Default for UrlCache {
    fn default() -> Self {
        UrlCache {
            inner: Mutex::new(Cached {
                urls: Default::default(),
                version: None,
                checked: None,
            }),
        }
    }
}

impl UrlCache {
    /// The simple URLs in force now.
    pub(crate) async fn current(&self, site: &Site) -> std::sync::Arc<SimpleUrls> {
        let (urls, stale, version) = {
            let c = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            let stale = c.checked.is_none_or(|t| t.elapsed() >= FRESH);
            (c.urls.clone(), stale, c.version)
        };
        if !stale {
            return urls;
        }
        let store = site.api.store.clone();
        let server_site = site.settings.site.clone();
        let loaded = tokio::task::spawn_blocking(move || -> Option<(i64, Option<SimpleUrls>)> {
            let v = store.config_version().ok()?;
            if Some(v) == version {
                return Some((v, None));
            }
            let docs = store.list_config(SimpleUrlConfiguration::DEF.noun).ok()?;
            let pick = |want: &dyn Fn(&str) -> bool| docs.iter().find(|d| want(&d.identity));
            let doc = server_site
                .as_deref()
                .and_then(|s| pick(&|id| id.eq_ignore_ascii_case(&format!("Site:{s}"))))
                .or_else(|| pick(&|id| id.eq_ignore_ascii_case("Global")));
            let cfg = doc
                .map(|d| SimpleUrlConfiguration::from_body(&d.body).0)
                .unwrap_or_default();
            Some((v, Some(SimpleUrls::from_config(&cfg))))
        })
        .await
        .ok()
        .flatten();
        let mut c = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        c.checked = Some(Instant::now());
        if let Some((v, new)) = loaded {
            c.version = Some(v);
            if let Some(new) = new {
                c.urls = std::sync::Arc::new(new);
            }
        }
        c.urls.clone()
    }

    /// The canonical path for a request, if it must be rewritten.
    pub(crate) async fn canonical(
        &self,
        site: &Site,
        host: Option<&str>,
        path: &str,
    ) -> Option<String> {
        if is_canonical(path) {
            return None;
        }
        if let Some(h) = host {
            let urls = self.current(site).await;
            if let Some(p) = urls.resolve(h, path) {
                return Some(p);
            }
        }
        path_form(host, path)
    }
}

/// The URL of a meeting's page: the organizer's domain's Meet URL (its ActiveUrl) with the
/// organizer's user name and the key, as Lync's meeting links; without a Meet URL, the path
/// form on `fallback_base` (e.g. `https://127.0.0.1:4443`).
pub fn meet_url(urls: &SimpleUrls, organizer: &str, key: &str, fallback_base: &str) -> String {
    let (user, domain) = organizer.split_once('@').unwrap_or((organizer, ""));
    match urls.active("Meet", Some(domain)) {
        Some(base) => format!("{base}/{user}/{key}"),
        None => format!("{}/meet/{user}/{key}", fallback_base.trim_end_matches('/')),
    }
}

/// The dial-in page's URL: the Dialin simple URL, else the path form on `fallback_base`.
pub fn dialin_url(urls: &SimpleUrls, fallback_base: &str) -> String {
    match urls.active("Dialin", None) {
        Some(base) => base.to_string(),
        None => format!("{}/dialin", fallback_base.trim_end_matches('/')),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use confab_policy::docs::{SimpleUrl, SimpleUrlEntry};

    fn urls() -> SimpleUrls {
        let su = |c: &str, d: &str, url: &[&str]| SimpleUrl {
            component: c.into(),
            domain: d.into(),
            simple_url_entry: url
                .iter()
                .map(|u| SimpleUrlEntry { url: u.to_string() })
                .collect(),
            active_url: url[0].into(),
        };
        SimpleUrls::from_config(&SimpleUrlConfiguration {
            simple_url: vec![
                su(
                    "Meet",
                    "example.test",
                    &[
                        "https://meet.example.test",
                        "https://lync.example.test/Meet",
                    ],
                ),
                su("Dialin", "*", &["https://lync.example.test/Dialin"]),
                su("Cscp", "*", &["https://admin.example.test"]),
            ],
        })
    }

    #[test]
    fn host_and_path_forms_resolve() {
        let u = urls();
        assert_eq!(
            u.resolve("meet.example.test", "/alice/ABCD1234").as_deref(),
            Some("/_/meet/alice/ABCD1234")
        );
        assert_eq!(
            u.resolve("meet.example.test", "/").as_deref(),
            Some("/_/meet")
        );
        assert_eq!(
            u.resolve("lync.example.test", "/meet/alice/K").as_deref(),
            Some("/_/meet/alice/K")
        );
        assert_eq!(
            u.resolve("lync.example.test", "/DIALIN").as_deref(),
            Some("/_/dialin")
        );
        assert_eq!(u.resolve("lync.example.test", "/Meeting/x"), None);
        assert_eq!(
            u.resolve("admin.example.test", "/").as_deref(),
            Some("/_/cscp")
        );
        assert_eq!(u.resolve("other.example.test", "/alice/K"), None);
    }

    #[test]
    fn path_forms_and_canonical_paths() {
        assert_eq!(
            path_form(None, "/Meet/alice/K").as_deref(),
            Some("/_/meet/alice/K")
        );
        assert_eq!(path_form(None, "/dialin/").as_deref(), Some("/_/dialin"));
        assert_eq!(
            path_form(Some("lyncdiscover.example.test"), "/").as_deref(),
            Some(super::super::autodiscover::ROOT)
        );
        assert_eq!(path_form(Some("example.test"), "/"), None);
        assert_eq!(path_form(None, "/meeting"), None);
        assert!(is_canonical("/_/static/confab.css"));
        assert!(is_canonical("/api/v1/users"));
        assert!(is_canonical("/Autodiscover/AutodiscoverService.svc/root"));
        assert!(!is_canonical("/meet/a/b"));
    }

    #[test]
    fn links_use_the_active_urls() {
        let u = urls();
        assert_eq!(
            meet_url(&u, "alice@example.test", "ABCD1234", "https://x"),
            "https://meet.example.test/alice/ABCD1234"
        );
        assert_eq!(
            meet_url(&u, "bob@other.test", "K", "https://127.0.0.1:4443/"),
            "https://127.0.0.1:4443/meet/bob/K"
        );
        assert_eq!(
            dialin_url(&u, "https://x"),
            "https://lync.example.test/Dialin"
        );
        assert_eq!(
            dialin_url(&SimpleUrls::default(), "https://x"),
            "https://x/dialin"
        );
    }
}
