//! Input checks, done before anything reaches the database so bad data never gets stored and
//! the caller (CLI, admin API) gets a message naming the problem.

use crate::StoreError;

pub const MAX_USERNAME_LEN: usize = 64;
pub const MAX_PASSWORD_LEN: usize = 256;
pub const MAX_DISPLAY_NAME_LEN: usize = 128;
const MAX_DOMAIN_LEN: usize = 253;

fn invalid(msg: String) -> StoreError {
    StoreError::Invalid(msg)
}

/// A SIP user part: 1..=64 of ASCII letters, digits and `-_.!~*'+`. A conservative subset of
/// RFC 3261 `user`, so it never needs escaping in a URI or a Digest header.
pub fn validate_username(username: &str) -> Result<(), StoreError> {
    if username.is_empty() {
        return Err(invalid("username is empty".into()));
    }
    let len = username.chars().count();
    if len > MAX_USERNAME_LEN {
        return Err(invalid(format!(
            "username is {len} characters long, at most {MAX_USERNAME_LEN} allowed"
        )));
    }
    if let Some(c) = username.chars().find(|&c| !is_user_char(c)) {
        return Err(invalid(format!(
            "username {username:?} contains {c:?}; allowed are letters, digits and -_.!~*'+"
        )));
    }
    Ok(())
}

fn is_user_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_.!~*'+".contains(c)
}

/// Checks a domain (hostname, IPv4 or bracketed IPv6 literal) and returns it lower-cased, the
/// form it is stored and hashed in (it is the digest realm).
pub fn normalize_domain(domain: &str) -> Result<String, StoreError> {
    if domain.is_empty() {
        return Err(invalid("domain is empty".into()));
    }
    if let Some(inner) = domain.strip_prefix('[') {
        let Some(addr) = inner.strip_suffix(']') else {
            return Err(invalid(format!(
                "domain {domain:?}: IPv6 literal lacks closing ']'"
            )));
        };
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(invalid(format!(
                "domain {domain:?}: not a valid IPv6 address"
            )));
        }
        return Ok(domain.to_ascii_lowercase());
    }
    if domain.len() > MAX_DOMAIN_LEN {
        return Err(invalid(format!(
            "domain is {} characters long, at most {MAX_DOMAIN_LEN} allowed",
            domain.len()
        )));
    }
    if let Some(c) = domain
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || c == '-' || c == '.'))
    {
        return Err(invalid(format!(
            "domain {domain:?} contains {c:?}; allowed are letters, digits, '-', '.' or a [IPv6] literal"
        )));
    }
    for label in domain.split('.') {
        if label.is_empty() {
            return Err(invalid(format!(
                "domain {domain:?} has an empty label (leading, trailing or double dot)"
            )));
        }
        if label.len() > 63 {
            return Err(invalid(format!(
                "domain {domain:?} has a label longer than 63 characters"
            )));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(invalid(format!(
                "domain {domain:?} has a label starting or ending with '-'"
            )));
        }
    }
    Ok(domain.to_ascii_lowercase())
}

/// Non-empty, at most 256 characters; anything else is allowed (it is only ever hashed).
pub fn validate_password(password: &str) -> Result<(), StoreError> {
    if password.is_empty() {
        return Err(invalid("password is empty".into()));
    }
    let len = password.chars().count();
    if len > MAX_PASSWORD_LEN {
        return Err(invalid(format!(
            "password is {len} characters long, at most {MAX_PASSWORD_LEN} allowed"
        )));
    }
    Ok(())
}

/// At most 128 characters, no control characters (it ends up in From/To headers).
pub fn validate_display_name(name: &str) -> Result<(), StoreError> {
    let len = name.chars().count();
    if len > MAX_DISPLAY_NAME_LEN {
        return Err(invalid(format!(
            "display name is {len} characters long, at most {MAX_DISPLAY_NAME_LEN} allowed"
        )));
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(invalid(format!(
            "display name contains control character {c:?}"
        )));
    }
    Ok(())
}

/// Longest organisational unit (LDAP distinguished name) a user may be placed in.
pub const MAX_OU_LEN: usize = 512;

/// Splits an LDAP distinguished name (RFC 4514: `OU=Sales,DC=example,DC=test`) into its
/// relative distinguished names, each as `TYPE=value` with the attribute type upper-cased
/// and the space around `=` and `,` removed. A backslash escapes the next character (so
/// `OU=Sales\, EMEA` is one component). Errors name the problem.
pub fn dn_components(dn: &str) -> Result<Vec<String>, StoreError> {
    let dn = dn.trim();
    if dn.is_empty() {
        return Err(invalid("organisational unit is empty".into()));
    }
    let len = dn.chars().count();
    if len > MAX_OU_LEN {
        return Err(invalid(format!(
            "organisational unit is {len} characters long, at most {MAX_OU_LEN} allowed"
        )));
    }
    if let Some(c) = dn.chars().find(|c| c.is_control()) {
        return Err(invalid(format!(
            "organisational unit contains control character {c:?}"
        )));
    }
    let mut parts = vec![];
    let mut cur = String::new();
    let mut chars = dn.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(next) = chars.next() else {
                    return Err(invalid(format!(
                        "organisational unit {dn:?} ends with a lone '\\'"
                    )));
                };
                cur.push('\\');
                cur.push(next);
            }
            ',' => parts.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    parts.push(cur);
    parts
        .iter()
        .map(|rdn| {
            let Some((ty, value)) = rdn.split_once('=') else {
                return Err(invalid(format!(
                    "organisational unit {dn:?}: '{}' is not TYPE=value (e.g. OU=Sales,DC=example,DC=test)",
                    rdn.trim()
                )));
            };
            let (ty, value) = (ty.trim(), value.trim());
            let ty_ok = ty.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && ty.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            if !ty_ok {
                return Err(invalid(format!(
                    "organisational unit {dn:?}: '{ty}' is not an attribute type such as OU, DC or CN"
                )));
            }
            if value.is_empty() || value == "\\" {
                return Err(invalid(format!(
                    "organisational unit {dn:?}: {ty}= has no value"
                )));
            }
            Ok(format!("{}={value}", ty.to_ascii_uppercase()))
        })
        .collect()
}

/// The canonical spelling of an organisational unit: [`dn_components`] joined by `,`.
pub fn normalize_ou(dn: &str) -> Result<String, StoreError> {
    Ok(dn_components(dn)?.join(","))
}

/// Whether the organisational unit `ou` is `scope` or below it: the components of `scope`
/// are the last components of `ou`, compared whole and ignoring case (never a raw string
/// prefix or suffix, so `OU=XSales,DC=x` is not within `OU=Sales,DC=x`). A malformed DN is
/// within nothing.
pub fn ou_within(ou: &str, scope: &str) -> bool {
    let (Ok(ou), Ok(scope)) = (dn_components(ou), dn_components(scope)) else {
        return false;
    };
    scope.len() <= ou.len()
        && ou[ou.len() - scope.len()..]
            .iter()
            .zip(&scope)
            .all(|(a, b)| a.to_lowercase() == b.to_lowercase())
}

/// A member of an information barrier's SegmentA/SegmentB (CsInformationBarrier), as the
/// cmdlet accepts it and the server matches it: `[sip:]user@domain` one user,
/// `[sip:]*@domain` (or `@domain`) or `domain` everyone of a domain. Lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BarrierMember {
    /// `user@domain`
    User(String),
    Domain(String),
}

impl BarrierMember {
    /// `None` for anything else: an empty part, a second `@`, white space or control
    /// characters in the user, a domain that is not a host name.
    pub fn parse(raw: &str) -> Option<BarrierMember> {
        let s = raw.trim();
        let s = s
            .get(..4)
            .filter(|p| p.eq_ignore_ascii_case("sip:"))
            .map_or(s, |_| &s[4..])
            .to_ascii_lowercase();
        let is_domain = |d: &str| {
            !d.is_empty()
                && !d.starts_with(['.', '-'])
                && !d.ends_with(['.', '-'])
                && !d.contains("..")
                && d.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        };
        match s.split_once('@') {
            Some(("*" | "", domain)) => is_domain(domain).then(|| Self::Domain(domain.into())),
            Some((user, domain)) => {
                let user_ok = !domain.contains('@')
                    && !user
                        .bytes()
                        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control());
                (user_ok && is_domain(domain)).then_some(Self::User(s))
            }
            None => is_domain(&s).then_some(Self::Domain(s)),
        }
    }

    /// Whether the lower-cased `user@domain` is this member.
    pub fn contains(&self, who: &str) -> bool {
        match self {
            Self::User(u) => u == who,
            Self::Domain(d) => who.rsplit_once('@').is_some_and(|(_, wd)| wd == d),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        for ok in ["a", "alice", "Bob.Smith", "x-y_z!~*'+", &"a".repeat(64)] {
            validate_username(ok).unwrap();
        }
        for bad in ["", "a b", "a@b", "a:b", "é", &"a".repeat(65)] {
            assert!(
                matches!(validate_username(bad), Err(StoreError::Invalid(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn domains() {
        assert_eq!(normalize_domain("Example.TEST").unwrap(), "example.test");
        assert_eq!(normalize_domain("192.0.2.1").unwrap(), "192.0.2.1");
        assert_eq!(normalize_domain("[2001:DB8::1]").unwrap(), "[2001:db8::1]");
        assert_eq!(normalize_domain("localhost").unwrap(), "localhost");
        for bad in [
            "",
            "a..b",
            ".a",
            "a.",
            "-a.b",
            "a-.b",
            "a_b",
            "a b",
            "a:5060",
            "[::1",
            "[zz]",
            "[1.2.3.4]",
        ] {
            assert!(
                matches!(normalize_domain(bad), Err(StoreError::Invalid(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn passwords_and_names() {
        validate_password("x").unwrap();
        validate_password(&"é".repeat(256)).unwrap();
        assert!(validate_password("").is_err());
        assert!(validate_password(&"x".repeat(257)).is_err());
        validate_display_name("").unwrap();
        validate_display_name("Alice Ünlü").unwrap();
        assert!(validate_display_name(&"x".repeat(129)).is_err());
        assert!(validate_display_name("a\r\nVia: x").is_err());
    }

    #[test]
    fn barrier_members() {
        use BarrierMember::*;
        for (raw, want) in [
            ("sip:Alice@A.test", User("alice@a.test".into())),
            ("SIP:bob@a.test", User("bob@a.test".into())),
            (" carol@x-y.example ", User("carol@x-y.example".into())),
            ("*@b.test", Domain("b.test".into())),
            ("@b.test", Domain("b.test".into())),
            ("Partner.Example", Domain("partner.example".into())),
        ] {
            assert_eq!(BarrierMember::parse(raw), Some(want), "{raw}");
        }
        for bad in [
            "",
            "alice@",
            "@",
            "*@",
            "a@b@c",
            "two words",
            "sip:",
            "a@.test",
            "bad..domain",
            "x@y z",
            "a@-b.test",
        ] {
            assert_eq!(BarrierMember::parse(bad), None, "{bad:?}");
        }
        let d = BarrierMember::parse("*@b.test").unwrap();
        assert!(d.contains("x@b.test") && !d.contains("x@a.test"));
        let u = BarrierMember::parse("sip:x@b.test").unwrap();
        assert!(u.contains("x@b.test") && !u.contains("y@b.test"));
    }

    #[test]
    fn organisational_units() {
        assert_eq!(
            normalize_ou(" ou = Sales , dc=Example,DC=test ").unwrap(),
            "OU=Sales,DC=Example,DC=test"
        );
        assert_eq!(
            dn_components(r"OU=Sales\, EMEA,DC=x").unwrap(),
            [r"OU=Sales\, EMEA", "DC=x"]
        );
        for bad in [
            "",
            "Sales",
            "OU=,DC=x",
            "OU=a,,DC=x",
            "=a",
            "O U=a",
            "OU=a\\",
            "OU=a\nb",
        ] {
            assert!(normalize_ou(bad).is_err(), "{bad:?}");
        }
        assert!(normalize_ou(&format!("OU={}", "x".repeat(600))).is_err());
        let scope = "OU=Sales,DC=example,DC=test";
        assert!(ou_within("OU=Sales,DC=example,DC=test", scope));
        assert!(ou_within("ou=sales,dc=EXAMPLE,dc=test", scope));
        assert!(ou_within("OU=Team1, OU=Sales,DC=example,DC=test", scope));
        assert!(ou_within(
            "OU=Ünterteam,OU=SALES,DC=example,DC=test",
            "ou=sales,dc=example,dc=test"
        ));
        for out in [
            "OU=XSales,DC=example,DC=test",
            "OU=Sales2,DC=example,DC=test",
            "OU=Sales,DC=example,DC=test2",
            "DC=example,DC=test",
            "OU=Sales,DC=other,DC=test",
            r"OU=a\,OU=Sales,DC=example,DC=test",
            "garbage",
        ] {
            assert!(!ou_within(out, scope), "{out}");
        }
        assert!(ou_within(
            r"OU=a\,OU=Sales,DC=example,DC=test",
            "DC=example,DC=test"
        ));
    }
}
