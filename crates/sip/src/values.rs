//! Typed views of header values: Via, name-addr (From/To/Contact/Route), CSeq, lists.
//! Each borrows from the header text; nothing is copied.

use crate::message::Method;
use crate::text::{find_byte, split_byte};
use crate::uri::{param_lookup, split_hostport, Uri, UriError};
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValueError(pub &'static str);

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl From<UriError> for ValueError {
    fn from(e: UriError) -> Self {
        ValueError(e.0)
    }
}

/// Splits a header value on commas that are outside quotes and angle brackets.
pub fn split_list(v: &str) -> impl Iterator<Item = &str> {
    let b = v.as_bytes();
    let mut start = 0;
    // no comma at all (most values): one item, found without the byte-by-byte walk
    let mut i = if find_byte(v, b',').is_none() {
        b.len()
    } else {
        0
    };
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let mut in_quote = false;
        let mut in_angle = false;
        while i < b.len() {
            match b[i] {
                b'\\' if in_quote => i += 1,
                b'"' => in_quote = !in_quote,
                b'<' if !in_quote => in_angle = true,
                b'>' if !in_quote => in_angle = false,
                b',' if !in_quote && !in_angle => {
                    let item = v[start..i].trim();
                    i += 1;
                    start = i;
                    return Some(item);
                }
                _ => {}
            }
            i += 1;
        }
        done = true;
        Some(v[start.min(v.len())..].trim())
    })
}

fn is_token_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&c)
}

pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
}

/// `SIP/2.0/UDP host:port;branch=…` (RFC 3261 §20.42).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Via<'a> {
    pub transport: &'a str,
    pub host: &'a str,
    pub port: Option<u16>,
    pub params: &'a str,
}

impl<'a> Via<'a> {
    pub fn parse(v: &'a str) -> Result<Via<'a>, ValueError> {
        let mut parts = v.splitn(3, '/');
        let proto = parts.next().unwrap_or("").trim();
        let version = parts
            .next()
            .ok_or(ValueError("Via has no protocol version"))?
            .trim();
        let rest = parts
            .next()
            .ok_or(ValueError("Via has no transport"))?
            .trim_start();
        if !proto.eq_ignore_ascii_case("SIP") || !is_token(version) {
            return Err(ValueError("Via protocol is not SIP"));
        }
        let tend = rest
            .find([' ', '\t'])
            .ok_or(ValueError("Via has no sent-by"))?;
        let transport = &rest[..tend];
        if !is_token(transport) {
            return Err(ValueError("bad Via transport"));
        }
        let rest = rest[tend..].trim_start();
        let (sent_by, params) = match find_byte(rest, b';') {
            Some(i) => (rest[..i].trim(), rest[i + 1..].trim()),
            None => (rest.trim(), ""),
        };
        // LWS is allowed around ':' in sent-by.
        let (host, port) = if sent_by.contains([' ', '\t']) {
            let compact: &str = sent_by;
            let (h, p) = compact
                .split_once(':')
                .ok_or(ValueError("bad Via sent-by"))?;
            let p = p.trim();
            let port: u16 = p.parse().map_err(|_| ValueError("bad Via port"))?;
            (split_hostport(h.trim())?.0, Some(port))
        } else {
            split_hostport(sent_by)?
        };
        for p in split_byte(params, b';').filter(|p| !p.trim().is_empty()) {
            let name = p.split('=').next().unwrap_or("").trim();
            if !is_token(name) {
                return Err(ValueError("bad Via parameter"));
            }
        }
        if split_byte(params, b';').any(|p| p.trim().is_empty()) && !params.is_empty() {
            return Err(ValueError("empty Via parameter"));
        }
        Ok(Via {
            transport,
            host,
            port,
            params,
        })
    }

    pub fn param(&self, name: &str) -> Option<&'a str> {
        param_lookup(self.params, name)
    }

    pub fn branch(&self) -> Option<&'a str> {
        self.param("branch")
    }

    /// RFC 3261 branch magic cookie: the branch alone identifies the transaction.
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch().is_some_and(|b| b.starts_with("z9hG4bK"))
    }
}

/// `["Display Name"] <uri>;params` or `uri;params` (RFC 3261 §20.10, §20.20).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameAddr<'a> {
    pub display: Option<&'a str>,
    pub uri_str: &'a str,
    /// header parameters (after the URI), without the leading `;`.
    pub params: &'a str,
    pub bracketed: bool,
}

impl<'a> NameAddr<'a> {
    pub fn parse(v: &'a str) -> Result<NameAddr<'a>, ValueError> {
        let v = v.trim();
        if let Some(lt) = find_unquoted(v, b'<') {
            let display = v[..lt].trim();
            if !display.is_empty() {
                if display.starts_with('"') {
                    if !display.ends_with('"') || display.len() < 2 || !valid_quoted(display) {
                        return Err(ValueError("bad quoted display name"));
                    }
                } else if !display.split_whitespace().all(is_token) {
                    return Err(ValueError("bad display name"));
                }
            }
            let rest = &v[lt + 1..];
            let gt = find_byte(rest, b'>').ok_or(ValueError("missing '>' after URI"))?;
            let uri_str = &rest[..gt];
            let after = rest[gt + 1..].trim();
            let params = match after.strip_prefix(';') {
                Some(p) => p.trim(),
                None if after.is_empty() => "",
                None => return Err(ValueError("junk after '>'")),
            };
            Uri::parse(uri_str)?;
            Ok(NameAddr {
                display: if display.is_empty() {
                    None
                } else {
                    Some(display)
                },
                uri_str,
                params,
                bracketed: true,
            })
        } else {
            // addr-spec form: parameters after the URI belong to the header, and the URI
            // cannot contain ',', '?' or ';' params (RFC 3261 §20.10).
            let (uri_str, params) = match find_byte(v, b';') {
                Some(i) => (v[..i].trim(), v[i + 1..].trim()),
                None => (v, ""),
            };
            if uri_str.contains([' ', '\t', '"']) {
                return Err(ValueError("URI with spaces must be enclosed in '<>'"));
            }
            if uri_str.contains(['?', ',']) {
                return Err(ValueError("URI with headers must be enclosed in '<>'"));
            }
            Uri::parse(uri_str)?;
            Ok(NameAddr {
                display: None,
                uri_str,
                params,
                bracketed: false,
            })
        }
    }

    pub fn uri(&self) -> Uri<'a> {
        // parse() already validated it.
        Uri::parse(self.uri_str).expect("validated in NameAddr::parse")
    }

    pub fn param(&self, name: &str) -> Option<&'a str> {
        param_lookup(self.params, name)
    }

    pub fn tag(&self) -> Option<&'a str> {
        self.param("tag").filter(|t| !t.is_empty())
    }
}

fn find_unquoted(s: &str, ch: u8) -> Option<usize> {
    let b = s.as_bytes();
    let mut in_quote = false;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if in_quote => i += 1,
            b'"' => in_quote = !in_quote,
            c if c == ch && !in_quote => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

fn valid_quoted(s: &str) -> bool {
    let inner = &s.as_bytes()[1..s.len() - 1];
    let mut i = 0;
    while i < inner.len() {
        match inner[i] {
            b'\\' => {
                if i + 1 >= inner.len() {
                    return false;
                }
                i += 2;
            }
            b'"' => return false,
            _ => i += 1,
        }
    }
    true
}

/// `CSeq: 4711 INVITE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CSeq {
    pub seq: u32,
    pub method: Method,
}

impl CSeq {
    pub fn parse(v: &crate::text::Text) -> Option<CSeq> {
        let s = v.trim();
        let mut it = s.split_ascii_whitespace();
        let num = it.next()?;
        let method = it.next()?;
        if it.next().is_some()
            || !num.bytes().all(|c| c.is_ascii_digit())
            || num.len() > 10
            || !is_token(method)
        {
            return None;
        }
        let seq: u64 = num.parse().ok()?;
        if seq > u32::MAX as u64 {
            return None;
        }
        Some(CSeq {
            seq: seq as u32,
            method: Method::parse(v.slice_ref(method)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_list_respects_quotes_and_brackets() {
        let v = r#""Doe, John" <sip:j@x;a=1,2>, <sip:b@y>;q=0.5 , sip:c@z"#;
        let items: Vec<_> = split_list(v).collect();
        assert_eq!(
            items,
            [
                r#""Doe, John" <sip:j@x;a=1,2>"#,
                "<sip:b@y>;q=0.5",
                "sip:c@z"
            ]
        );
    }

    #[test]
    fn via_with_lws() {
        let v = Via::parse("SIP / 2.0 / UDP  host.example.com : 5060 ;branch=z9hG4bKabc;rport")
            .unwrap();
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.host, "host.example.com");
        assert_eq!(v.port, Some(5060));
        assert_eq!(v.branch(), Some("z9hG4bKabc"));
        assert_eq!(v.param("rport"), Some(""));
        assert!(v.has_rfc3261_branch());
        assert!(Via::parse("SIP/2.0/UDP").is_err());
        assert!(Via::parse("HTTP/1.1/UDP host").is_err());
    }

    #[test]
    fn name_addr_forms() {
        let n = NameAddr::parse(r#""Alice \"A\"" <sip:alice@example.test;transport=tcp>;tag=abc"#)
            .unwrap();
        assert_eq!(n.display, Some(r#""Alice \"A\"""#));
        assert_eq!(n.uri().user, Some("alice"));
        assert_eq!(n.tag(), Some("abc"));
        let a = NameAddr::parse("sip:bob@example.test;tag=x").unwrap();
        assert_eq!(a.uri_str, "sip:bob@example.test");
        assert_eq!(a.tag(), Some("x"));
        assert!(NameAddr::parse("<sip:a@b").is_err());
        assert!(NameAddr::parse("Bob sip:a@b").is_err());
    }
}
