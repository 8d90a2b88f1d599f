//! Lync's rules for simple URLs (../shared/reference/lync-2013.md §5): every URL is
//! `https://` with a host name and no port, may carry a path (the path form
//! `https://lync.example.test/Meet`), is used once, and is not a prefix of another; a
//! configuration has at most one `Meet` URL per SIP domain, at most one `Dialin` and at
//! most one `Cscp` (Control Panel) URL, and each simple URL's ActiveUrl is one of its
//! entries. Pure functions: the admin shell checks with them, the web services (issue #18)
//! will route with [`UrlParts`].

use crate::docs::{SimpleUrl, SimpleUrlConfiguration};

/// The components, as Lync spells them.
pub const COMPONENTS: &[&str] = &["Meet", "Dialin", "Cscp"];

/// Longest URL accepted.
const MAX_URL: usize = 1024;

/// A simple URL split for comparison and routing: the host and path segments, lowercase
/// (host names and IIS paths are case-insensitive).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlParts {
    pub host: String,
    pub path: Vec<String>,
}

impl UrlParts {
    /// Whether `self` is `other` or a prefix of it (same host, and `self`'s path segments
    /// begin `other`'s): `https://a.test/Meet` covers `https://a.test/Meet/x` but not
    /// `https://a.test/Meeting`.
    pub fn covers(&self, other: &UrlParts) -> bool {
        self.host == other.host
            && self.path.len() <= other.path.len()
            && self.path.iter().zip(&other.path).all(|(a, b)| a == b)
    }
}

/// Whether `name` is a DNS name with at least two labels (letters, digits and hyphens, not
/// at either end of a label) and a last label that is not all digits (not an IP address).
pub fn is_domain_name(name: &str) -> bool {
    let labels: Vec<&str> = name.split('.').collect();
    name.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
        })
        && !labels
            .last()
            .is_some_and(|l| l.bytes().all(|c| c.is_ascii_digit()))
}

/// Parses a simple URL: `https://<fqdn>[/<segment>…]`, no port, no user, query or fragment.
pub fn parse_url(url: &str) -> Result<UrlParts, String> {
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .ok_or_else(|| format!("'{url}' is not an https:// URL: simple URLs use https"))?;
    if url.len() > MAX_URL {
        return Err(format!("'{url}' is longer than {MAX_URL} characters"));
    }
    if rest.contains(['?', '#']) {
        return Err(format!(
            "'{url}' has a query or fragment: a simple URL is a host and a path"
        ));
    }
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    if host.contains('@') {
        return Err(format!(
            "'{url}' names a user: a simple URL is a host and a path"
        ));
    }
    if host.contains(':') || host.starts_with('[') {
        return Err(format!(
            "'{url}' names a port (or an IPv6 address): a simple URL uses the standard https port"
        ));
    }
    if !is_domain_name(host) {
        return Err(format!(
            "'{url}' does not name a host: a simple URL's host is a fully qualified domain name"
        ));
    }
    let path = path.strip_suffix('/').unwrap_or(path);
    let mut segments = vec![];
    if !path.is_empty() {
        for seg in path.split('/') {
            let ok = !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"-._~".contains(&c));
            if !ok {
                return Err(format!(
                    "'{url}' has a bad path segment '{seg}': use letters, digits, '-', '.', '_' and '~'"
                ));
            }
            segments.push(seg.to_string());
        }
    }
    Ok(UrlParts {
        host: host.to_string(),
        path: segments,
    })
}

/// The component as Lync spells it (`Admin` is accepted for `Cscp`, the Control Panel).
pub fn component(raw: &str) -> Result<&'static str, String> {
    let raw = raw.trim();
    if raw.eq_ignore_ascii_case("Admin") {
        return Ok("Cscp");
    }
    COMPONENTS
        .iter()
        .copied()
        .find(|c| c.eq_ignore_ascii_case(raw))
        .ok_or_else(|| {
            format!("'{raw}' is not a simple URL component; use Meet, Dialin or Cscp (Admin)")
        })
}

/// The domain of a simple URL of `component` (canonical): a SIP domain (lowercase) for
/// `Meet`, `*` for `Dialin` and `Cscp`.
pub fn domain(component: &str, raw: &str) -> Result<String, String> {
    let d = raw.trim().to_ascii_lowercase();
    if component == "Meet" {
        if is_domain_name(&d) {
            Ok(d)
        } else {
            Err(format!(
                "'{raw}' is not a SIP domain: a Meet URL belongs to one SIP domain"
            ))
        }
    } else if d == "*" {
        Ok(d)
    } else {
        Err(format!(
            "a {component} URL is for the whole organization: its Domain is *, not '{raw}'"
        ))
    }
}

/// Checks one simple URL and puts it in canonical form (component spelling, lowercase
/// domain, trimmed URLs); returns its entries parsed.
pub fn check_simple_url(u: &mut SimpleUrl) -> Result<Vec<UrlParts>, String> {
    u.component = component(&u.component)?.to_string();
    u.domain = domain(&u.component, &u.domain)?;
    let what = format!("the {} URL of {}", u.component, u.domain);
    if u.simple_url_entry.is_empty() {
        return Err(format!(
            "{what} has no SimpleUrlEntry: add one made by New-CsSimpleUrlEntry"
        ));
    }
    let mut parts = vec![];
    for e in &mut u.simple_url_entry {
        e.url = e.url.trim().to_string();
        parts.push(parse_url(&e.url)?);
    }
    u.active_url = u.active_url.trim().to_string();
    if u.active_url.is_empty() {
        return Err(format!(
            "{what} has no ActiveUrl: it must be one of its SimpleUrlEntry URLs"
        ));
    }
    let active = parse_url(&u.active_url)?;
    if !parts.contains(&active) {
        return Err(format!(
            "ActiveUrl '{}' of {what} is not one of its SimpleUrlEntry URLs",
            u.active_url
        ));
    }
    Ok(parts)
}

/// Checks a whole configuration as Lync does, putting its simple URLs in canonical form.
pub fn check_configuration(c: &mut SimpleUrlConfiguration) -> Result<(), String> {
    let mut urls: Vec<(String, UrlParts)> = vec![];
    for i in 0..c.simple_url.len() {
        let parts = check_simple_url(&mut c.simple_url[i])?;
        let u = &c.simple_url[i];
        if let Some(other) = c.simple_url[..i]
            .iter()
            .find(|o| o.component == u.component && o.domain == u.domain)
        {
            return Err(match u.component.as_str() {
                "Meet" => format!(
                    "domain {} has two Meet URLs ('{}' and '{}'): one Meet URL per SIP domain",
                    u.domain, other.active_url, u.active_url
                ),
                c => format!(
                    "two {c} URLs ('{}' and '{}'): a configuration has one {c} URL",
                    other.active_url, u.active_url
                ),
            });
        }
        for (e, p) in u.simple_url_entry.iter().zip(parts) {
            for (seen, q) in &urls {
                if *q == p {
                    return Err(format!(
                        "'{}' is used twice (as '{seen}'): each simple URL is unique",
                        e.url
                    ));
                }
                if q.covers(&p) || p.covers(q) {
                    let (short, long) = if q.covers(&p) {
                        (seen.as_str(), e.url.as_str())
                    } else {
                        (e.url.as_str(), seen.as_str())
                    };
                    return Err(format!(
                        "'{short}' is a prefix of '{long}': a simple URL may not be a prefix of another"
                    ));
                }
            }
            urls.push((e.url.clone(), p));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docs::SimpleUrlEntry;

    fn su(component: &str, domain: &str, urls: &[&str], active: &str) -> SimpleUrl {
        SimpleUrl {
            component: component.into(),
            domain: domain.into(),
            simple_url_entry: urls
                .iter()
                .map(|u| SimpleUrlEntry { url: u.to_string() })
                .collect(),
            active_url: active.into(),
        }
    }

    fn check(list: Vec<SimpleUrl>) -> Result<SimpleUrlConfiguration, String> {
        let mut c = SimpleUrlConfiguration { simple_url: list };
        check_configuration(&mut c).map(|_| c)
    }

    #[test]
    fn urls_are_https_hosts_without_port() {
        let p = parse_url("HTTPS://Lync.Example.test/Meet/").unwrap();
        assert_eq!(p.host, "lync.example.test");
        assert_eq!(p.path, vec!["meet".to_string()]);
        assert!(parse_url("https://meet.example.test")
            .unwrap()
            .path
            .is_empty());
        for (bad, why) in [
            ("http://meet.example.test", "https"),
            ("meet.example.test", "https"),
            ("https://meet.example.test:443", "port"),
            ("https://meet.example.test:8443/Meet", "port"),
            ("https://[::1]/Meet", "port"),
            ("https://user@meet.example.test", "user"),
            ("https://meet", "host"),
            ("https://192.0.2.1/Meet", "host"),
            ("https://", "host"),
            ("https://-x.example.test", "host"),
            ("https://meet.example.test/a//b", "segment"),
            ("https://meet.example.test/../x", "segment"),
            ("https://meet.example.test/a b", "segment"),
            ("https://meet.example.test/?x=1", "query"),
        ] {
            let e = parse_url(bad).unwrap_err();
            assert!(e.contains(bad) && e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn prefixes_are_by_path_segment() {
        let a = parse_url("https://lync.example.test/Meet").unwrap();
        let b = parse_url("https://lync.example.test/meet/x").unwrap();
        let c = parse_url("https://lync.example.test/Meeting").unwrap();
        let root = parse_url("https://lync.example.test").unwrap();
        assert!(a.covers(&b) && !b.covers(&a));
        assert!(!a.covers(&c) && !c.covers(&a));
        assert!(root.covers(&a));
        assert!(!parse_url("https://meet.example.test")
            .unwrap()
            .covers(&parse_url("https://meet.example.test2").unwrap()));
    }

    #[test]
    fn a_cookbook_configuration_is_canonical() {
        let c = check(vec![
            su(
                "meet",
                "Example.TEST",
                &["https://lync.example.test/Meet"],
                "https://lync.example.test/Meet",
            ),
            su(
                "DIALIN",
                "*",
                &["https://lync.example.test/Dialin"],
                "https://lync.example.test/dialin",
            ),
            su(
                "admin",
                "*",
                &["https://admin.example.test"],
                "https://admin.example.test",
            ),
            su(
                "Meet",
                "other.test",
                &[" https://meet.other.test "],
                "https://meet.other.test",
            ),
        ])
        .unwrap();
        let u = &c.simple_url;
        assert_eq!(
            (u[0].component.as_str(), u[0].domain.as_str()),
            ("Meet", "example.test")
        );
        assert_eq!(u[1].component, "Dialin");
        assert_eq!(u[2].component, "Cscp");
        assert_eq!(u[3].simple_url_entry[0].url, "https://meet.other.test");
    }

    #[test]
    fn every_rule_is_enforced() {
        let m = |d: &str, u: &str| su("Meet", d, &[u], u);
        let cases: Vec<(Vec<SimpleUrl>, &str)> = vec![
            (
                vec![su("Web", "*", &["https://a.test"], "https://a.test")],
                "component",
            ),
            (
                vec![su(
                    "Dialin",
                    "example.test",
                    &["https://a.test"],
                    "https://a.test",
                )],
                "Domain is *",
            ),
            (
                vec![su("Meet", "*", &["https://a.test"], "https://a.test")],
                "SIP domain",
            ),
            (
                vec![su("Meet", "example.test", &[], "https://a.test")],
                "no SimpleUrlEntry",
            ),
            (
                vec![su("Meet", "example.test", &["https://a.test"], "")],
                "no ActiveUrl",
            ),
            (
                vec![su(
                    "Meet",
                    "example.test",
                    &["https://a.test"],
                    "https://b.test",
                )],
                "not one of its SimpleUrlEntry",
            ),
            (
                vec![
                    m("example.test", "https://a.test"),
                    m("EXAMPLE.test", "https://b.test"),
                ],
                "two Meet URLs",
            ),
            (
                vec![
                    su("Dialin", "*", &["https://a.test"], "https://a.test"),
                    su("dialin", "*", &["https://b.test"], "https://b.test"),
                ],
                "two Dialin URLs",
            ),
            (
                vec![
                    su("Cscp", "*", &["https://a.test"], "https://a.test"),
                    su("Admin", "*", &["https://b.test"], "https://b.test"),
                ],
                "two Cscp URLs",
            ),
            (
                vec![
                    m("example.test", "https://a.test/Meet"),
                    m("other.test", "https://A.test/meet"),
                ],
                "used twice",
            ),
            (
                vec![
                    m("example.test", "https://a.test/Meet"),
                    m("other.test", "https://a.test/Meet/x"),
                ],
                "is a prefix of",
            ),
            (
                vec![
                    m("example.test", "https://a.test/Meet/x"),
                    m("other.test", "https://a.test"),
                ],
                "'https://a.test' is a prefix of 'https://a.test/Meet/x'",
            ),
            (vec![m("example.test", "https://a.test:444")], "port"),
        ];
        for (list, want) in cases {
            let e = check(list.clone()).unwrap_err();
            assert!(e.contains(want), "{list:?}: {e}");
        }
        // the path form shares a host
        check(vec![
            m("example.test", "https://lync.example.test/Meet"),
            su(
                "Dialin",
                "*",
                &["https://lync.example.test/Dialin"],
                "https://lync.example.test/Dialin",
            ),
        ])
        .unwrap();
    }
}
