//! SIP, SIPS and tel URIs (RFC 3261 §19.1, RFC 3966), parsed as borrowed views.

use crate::text::{find_byte, split_byte};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Sip,
    Sips,
    Tel,
    /// Any other absolute URI (RFC 3986); a proxy answers 416 for these in a Request-URI.
    Other,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UriError(pub &'static str);

impl fmt::Display for UriError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// A URI as slices of its text. For `tel:` the number is in `user` and `host` is empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uri<'a> {
    pub scheme: Scheme,
    pub scheme_str: &'a str,
    pub user: Option<&'a str>,
    pub password: Option<&'a str>,
    pub host: &'a str,
    pub port: Option<u16>,
    /// `;`-separated parameters without the leading `;`.
    pub params: &'a str,
    /// `?`-headers without the leading `?`.
    pub headers: Option<&'a str>,
}

fn is_scheme_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.')
}

fn is_unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
        )
}

/// Checks `%HH` escapes and that every other byte is allowed by `ok`.
fn check_escaped(s: &str, ok: impl Fn(u8) -> bool) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if i + 2 >= b.len() {
                return false;
            }
            if !(b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit()) {
                return false;
            }
            i += 3;
        } else if ok(b[i]) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

impl<'a> Uri<'a> {
    pub fn parse(s: &'a str) -> Result<Uri<'a>, UriError> {
        let colon = find_byte(s, b':').ok_or(UriError("URI has no scheme"))?;
        let scheme_str = &s[..colon];
        let sb = scheme_str.as_bytes();
        if sb.is_empty() || !sb[0].is_ascii_alphabetic() || !sb.iter().all(|&c| is_scheme_char(c)) {
            return Err(UriError("bad URI scheme"));
        }
        let rest = &s[colon + 1..];
        if rest.bytes().any(|c| c <= b' ' || c == 0x7f) {
            return Err(UriError("whitespace or control character in URI"));
        }
        let scheme = if scheme_str.eq_ignore_ascii_case("sip") {
            Scheme::Sip
        } else if scheme_str.eq_ignore_ascii_case("sips") {
            Scheme::Sips
        } else if scheme_str.eq_ignore_ascii_case("tel") {
            Scheme::Tel
        } else {
            Scheme::Other
        };
        match scheme {
            Scheme::Sip | Scheme::Sips => Self::parse_sip(scheme, scheme_str, rest),
            Scheme::Tel => {
                let (number, params) = match find_byte(rest, b';') {
                    Some(i) => (&rest[..i], &rest[i + 1..]),
                    None => (rest, ""),
                };
                if number.is_empty()
                    || !number.bytes().all(|c| {
                        c.is_ascii_hexdigit()
                            || matches!(c, b'+' | b'-' | b'.' | b'(' | b')' | b'*' | b'#')
                    })
                {
                    return Err(UriError("bad telephone number in tel URI"));
                }
                Ok(Uri {
                    scheme,
                    scheme_str,
                    user: Some(number),
                    password: None,
                    host: "",
                    port: None,
                    params,
                    headers: None,
                })
            }
            Scheme::Other => {
                if rest.is_empty() {
                    return Err(UriError("empty URI"));
                }
                Ok(Uri {
                    scheme,
                    scheme_str,
                    user: None,
                    password: None,
                    host: "",
                    port: None,
                    params: "",
                    headers: None,
                })
            }
        }
    }

    fn parse_sip(scheme: Scheme, scheme_str: &'a str, rest: &'a str) -> Result<Uri<'a>, UriError> {
        let (userinfo, hostpart) = match find_byte(rest, b'@') {
            Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
            None => (None, rest),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(ui) => {
                let (u, p) = match find_byte(ui, b':') {
                    Some(i) => (&ui[..i], Some(&ui[i + 1..])),
                    None => (ui, None),
                };
                if u.is_empty() {
                    return Err(UriError("empty user part in URI"));
                }
                let user_ok = |c: u8| is_unreserved(c) || b"&=+$,;?/".contains(&c);
                if !check_escaped(u, user_ok) {
                    return Err(UriError("bad character in URI user part"));
                }
                if let Some(p) = p {
                    if !check_escaped(p, |c| is_unreserved(c) || b"&=+$,".contains(&c)) {
                        return Err(UriError("bad character in URI password"));
                    }
                }
                (Some(u), p)
            }
        };
        // hostport ends at the first ';' or '?' (outside an IPv6 reference, which has neither).
        let end = hostpart.find([';', '?']).unwrap_or(hostpart.len());
        let hostport = &hostpart[..end];
        let (host, port) = split_hostport(hostport)?;
        let mut tail = &hostpart[end..];
        let mut params = "";
        let mut headers = None;
        if let Some(t) = tail.strip_prefix(';') {
            let pend = find_byte(t, b'?').unwrap_or(t.len());
            params = &t[..pend];
            tail = &t[pend..];
            let param_ok = |c: u8| is_unreserved(c) || b"[]/:&+$=".contains(&c);
            for p in split_byte(params, b';') {
                if p.is_empty() || !check_escaped(p, param_ok) {
                    return Err(UriError("bad URI parameter"));
                }
            }
        }
        if let Some(h) = tail.strip_prefix('?') {
            if !check_escaped(h, |c| is_unreserved(c) || b"[]/?:+$&=".contains(&c)) {
                return Err(UriError("bad URI header"));
            }
            headers = Some(h);
        }
        Ok(Uri {
            scheme,
            scheme_str,
            user,
            password,
            host,
            port,
            params,
            headers,
        })
    }

    /// Value of a URI parameter (`Some("")` for a flag such as `lr`).
    pub fn param(&self, name: &str) -> Option<&'a str> {
        param_lookup(self.params, name)
    }

    /// The `transport` parameter, lower-cased by the caller's comparison.
    pub fn transport(&self) -> Option<&'a str> {
        self.param("transport")
    }

    /// Host without IPv6 brackets.
    pub fn host_unbracketed(&self) -> &'a str {
        self.host.trim_start_matches('[').trim_end_matches(']')
    }
}

/// Splits `host[:port]`, validating both.
pub fn split_hostport(hp: &str) -> Result<(&str, Option<u16>), UriError> {
    let (host, port) = if let Some(stripped) = hp.strip_prefix('[') {
        let close = stripped
            .find(']')
            .ok_or(UriError("unterminated IPv6 reference"))?;
        let inner = &stripped[..close];
        if inner.is_empty()
            || !inner
                .bytes()
                .all(|c| c.is_ascii_hexdigit() || c == b':' || c == b'.')
            || !inner.contains(':')
        {
            return Err(UriError("bad IPv6 reference"));
        }
        let after = &stripped[close + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(UriError("junk after IPv6 reference")),
        };
        (&hp[..close + 2], port)
    } else {
        match hp.rfind(':') {
            Some(i) => (&hp[..i], Some(&hp[i + 1..])),
            None => (hp, None),
        }
    };
    if host.is_empty() {
        return Err(UriError("empty host"));
    }
    if !host.starts_with('[') {
        let hb = host.as_bytes();
        if !hb
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.')
        {
            return Err(UriError("bad character in host"));
        }
        if hb[0] == b'-' || hb[0] == b'.' || host.contains("..") {
            return Err(UriError("bad host name"));
        }
    }
    let port = match port {
        None => None,
        Some(p) => {
            if p.is_empty() || p.len() > 5 || !p.bytes().all(|c| c.is_ascii_digit()) {
                return Err(UriError("bad port"));
            }
            let n: u32 = p.parse().map_err(|_| UriError("bad port"))?;
            if n > 65535 {
                return Err(UriError("port out of range"));
            }
            Some(n as u16)
        }
    };
    Ok((host, port))
}

/// Finds `name` (case-insensitive) in a `;`-separated parameter list.
pub fn param_lookup<'a>(params: &'a str, name: &str) -> Option<&'a str> {
    for p in split_byte(params, b';') {
        let p = p.trim();
        let (k, v) = match find_byte(p, b'=') {
            Some(i) => (p[..i].trim(), p[i + 1..].trim()),
            None => (p, ""),
        };
        if k.eq_ignore_ascii_case(name) {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_sip_uri() {
        let u =
            Uri::parse("sips:alice:secret@[2001:db8::1]:5061;transport=tcp;lr?subject=hi%20there")
                .unwrap();
        assert_eq!(u.scheme, Scheme::Sips);
        assert_eq!(u.user, Some("alice"));
        assert_eq!(u.password, Some("secret"));
        assert_eq!(u.host, "[2001:db8::1]");
        assert_eq!(u.host_unbracketed(), "2001:db8::1");
        assert_eq!(u.port, Some(5061));
        assert_eq!(u.transport(), Some("tcp"));
        assert_eq!(u.param("lr"), Some(""));
        assert_eq!(u.headers, Some("subject=hi%20there"));
    }

    #[test]
    fn user_with_semicolon_and_escapes() {
        let u = Uri::parse("sip:%61lice;day=tuesday@example.test").unwrap();
        assert_eq!(u.user, Some("%61lice;day=tuesday"));
        assert_eq!(u.host, "example.test");
        assert_eq!(u.params, "");
    }

    #[test]
    fn tel_and_other_schemes() {
        let u = Uri::parse("tel:+1-201-555-0123;phone-context=example.com").unwrap();
        assert_eq!(u.scheme, Scheme::Tel);
        assert_eq!(u.user, Some("+1-201-555-0123"));
        assert_eq!(
            Uri::parse("mailto:bob@example.com").unwrap().scheme,
            Scheme::Other
        );
    }

    #[test]
    fn rejects_bad_uris() {
        for bad in [
            "example.com",
            "sip:",
            "sip:alice@",
            "sip:a@host:99999",
            "sip:a@ho st",
            "sip:a@[::1",
            "sip:@host",
            "sip:a@host;",
            "sip:a%zz@host",
            "1sip:x",
        ] {
            assert!(Uri::parse(bad).is_err(), "{bad} should be rejected");
        }
    }
}
