//! HTTP Digest authentication for SIP (RFC 2617, RFC 7616, RFC 8760).
//!
//! Everything here is pure computation: the caller passes the current time in, so the
//! module can be tested deterministically and used from any runtime.
//!
//! - [`Credentials`]: parse an `Authorization` / `Proxy-Authorization` value (borrowing
//!   from the input unless a quoted-string had escapes).
//! - [`Challenge`]: build (server) or parse (client) a `WWW-Authenticate` /
//!   `Proxy-Authenticate` value.
//! - [`verify`], [`response`], [`authorization`]: the response computation, both sides.
//! - [`NonceManager`]: self-validating nonces with expiry and `nc` replay protection in
//!   a fixed-size lock-free table.

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use hmac::{Hmac, Mac};
use md5::Md5;
use sha2::{Digest as _, Sha256};

/// Digest hash algorithm. confab offers MD5 (what every SIP client speaks) and SHA-256.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    /// Algorithm for an `algorithm=` value. Case-insensitive because RFC 7616 says so
    /// and real clients send `md5`. The `-sess` variants are not supported (`None`):
    /// their HA1 depends on the nonce, so a stored HA1 cannot be used.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        if name.eq_ignore_ascii_case("MD5") {
            Some(Algorithm::Md5)
        } else if name.eq_ignore_ascii_case("SHA-256") {
            Some(Algorithm::Sha256)
        } else {
            None
        }
    }

    /// Lower-case hex digest of `data`.
    pub fn hex(self, data: &[u8]) -> String {
        match self {
            Algorithm::Md5 => to_hex(&Md5::digest(data)),
            Algorithm::Sha256 => to_hex(&Sha256::digest(data)),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// HA1 = H(username ":" realm ":" password), what the store keeps instead of the password.
pub fn ha1(alg: Algorithm, username: &str, realm: &str, password: &str) -> String {
    let mut buf = Vec::with_capacity(username.len() + realm.len() + password.len() + 2);
    buf.extend_from_slice(username.as_bytes());
    buf.push(b':');
    buf.extend_from_slice(realm.as_bytes());
    buf.push(b':');
    buf.extend_from_slice(password.as_bytes());
    alg.hex(&buf)
}

pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// Why a Digest header value was rejected. `Display` is short ASCII so it can go
/// straight into a SIP reason phrase (e.g. `400 missing 'nonce' parameter`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DigestError {
    /// The auth-scheme is not `Digest` (e.g. `Basic`), or the value is empty.
    NotDigest,
    /// The auth-param list does not follow `name = value *(, name = value)`.
    Malformed,
    /// A quoted-string has no closing quote.
    UnterminatedQuote,
    /// A mandatory parameter is absent (parameter name inside).
    Missing(&'static str),
    /// A known parameter appears twice: ambiguous, so refused rather than guessed.
    Duplicate(&'static str),
    /// `algorithm=` names something other than MD5 or SHA-256.
    UnknownAlgorithm,
    /// `nc` is not exactly 8 hex digits.
    InvalidNc,
    /// A challenge offers qop but not `auth` (only `auth-int`, which is unsupported).
    UnsupportedQop,
}

impl fmt::Display for DigestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DigestError::NotDigest => f.write_str("auth scheme is not Digest"),
            DigestError::Malformed => f.write_str("malformed Digest parameters"),
            DigestError::UnterminatedQuote => f.write_str("unterminated quoted-string"),
            DigestError::Missing(name) => write!(f, "missing '{name}' parameter"),
            DigestError::Duplicate(name) => write!(f, "duplicate '{name}' parameter"),
            DigestError::UnknownAlgorithm => f.write_str("unsupported algorithm"),
            DigestError::InvalidNc => f.write_str("invalid 'nc' parameter"),
            DigestError::UnsupportedQop => f.write_str("unsupported qop"),
        }
    }
}

impl std::error::Error for DigestError {}

// ---------------------------------------------------------------------------------------
// auth-param list parsing (shared by Credentials and Challenge)
// ---------------------------------------------------------------------------------------

fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// RFC 3261 `token` characters.
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

fn skip_lws(s: &str) -> &str {
    let n = s.bytes().take_while(|&b| is_lws(b)).count();
    &s[n..]
}

/// Strips the `Digest` scheme, returning the auth-param list.
fn strip_scheme(value: &str) -> Result<&str, DigestError> {
    let value = skip_lws(value);
    let n = value.bytes().take_while(|&b| is_token(b)).count();
    if !value[..n].eq_ignore_ascii_case("Digest") {
        return Err(DigestError::NotDigest);
    }
    let rest = &value[n..];
    match rest.bytes().next() {
        None => Ok(rest),
        Some(b) if is_lws(b) => Ok(rest),
        Some(_) => Err(DigestError::Malformed),
    }
}

/// Parses a quoted-string starting after the opening quote. Returns the unescaped
/// content (borrowed unless it contained a quoted-pair) and the remaining input.
/// A CR or LF is refused, bare or escaped: neither qdtext nor quoted-pair allows one
/// (folding has been undone by the message parser), and no serializer could carry it.
fn parse_quoted(s: &str) -> Result<(Cow<'_, str>, &str), DigestError> {
    let bytes = s.as_bytes();
    let mut i = 0;
    // Fast path: no backslash before the closing quote means we can borrow.
    while i < bytes.len() {
        match bytes[i] {
            b'"' => return Ok((Cow::Borrowed(&s[..i]), &s[i + 1..])),
            b'\\' => break,
            b'\r' | b'\n' => return Err(DigestError::Malformed),
            _ => i += 1,
        }
    }
    let mut out = String::with_capacity(s.len());
    out.push_str(&s[..i]);
    let mut chars = s[i..].char_indices();
    while let Some((j, c)) = chars.next() {
        match c {
            '"' => return Ok((Cow::Owned(out), &s[i + j + 1..])),
            '\r' | '\n' => return Err(DigestError::Malformed),
            '\\' => match chars.next() {
                Some((_, '\r' | '\n')) => return Err(DigestError::Malformed),
                Some((_, e)) => out.push(e),
                None => break,
            },
            c => out.push(c),
        }
    }
    Err(DigestError::UnterminatedQuote)
}

/// Walks `name=value` pairs, calling `f` for each. Names are tokens; values are
/// quoted-strings or bare words (up to whitespace or comma: lenient, because some
/// clients leave e.g. `algorithm` or `nc` unquoted and a few do so for other values).
/// Empty list elements (`a=1,,b=2`) are skipped as RFC 7230 §7 allows.
fn parse_params<'a>(
    mut rest: &'a str,
    mut f: impl FnMut(&'a str, Cow<'a, str>) -> Result<(), DigestError>,
) -> Result<(), DigestError> {
    loop {
        rest = skip_lws(rest);
        if rest.is_empty() {
            return Ok(());
        }
        if let Some(r) = rest.strip_prefix(',') {
            rest = r;
            continue;
        }
        let n = rest.bytes().take_while(|&b| is_token(b)).count();
        if n == 0 {
            return Err(DigestError::Malformed);
        }
        let name = &rest[..n];
        rest = skip_lws(&rest[n..]);
        rest = rest.strip_prefix('=').ok_or(DigestError::Malformed)?;
        rest = skip_lws(rest);
        let value;
        if let Some(r) = rest.strip_prefix('"') {
            (value, rest) = parse_quoted(r)?;
        } else {
            let n = rest
                .bytes()
                .take_while(|&b| b != b',' && !is_lws(b))
                .count();
            if n == 0 || rest[..n].contains('"') {
                return Err(DigestError::Malformed);
            }
            value = Cow::Borrowed(&rest[..n]);
            rest = &rest[n..];
        }
        f(name, value)?;
        rest = skip_lws(rest);
        if rest.is_empty() {
            return Ok(());
        }
        rest = rest.strip_prefix(',').ok_or(DigestError::Malformed)?;
    }
}

/// Stores `value` into an empty slot, or reports the duplicate.
fn set_once<T>(slot: &mut Option<T>, name: &'static str, value: T) -> Result<(), DigestError> {
    if slot.is_some() {
        return Err(DigestError::Duplicate(name));
    }
    *slot = Some(value);
    Ok(())
}

fn parse_hex_nibble(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Exactly 8 hex digits to u32 (`from_str_radix` would also accept a sign and other lengths).
fn parse_hex_u32(s: &[u8]) -> Option<u32> {
    if s.len() != 8 {
        return None;
    }
    s.iter()
        .try_fold(0u32, |acc, &b| Some(acc << 4 | parse_hex_nibble(b)? as u32))
}

fn nc_hex(nc: u32) -> [u8; 8] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 8];
    for (i, o) in out.iter_mut().enumerate() {
        *o = HEX[((nc >> (28 - 4 * i)) & 15) as usize];
    }
    out
}

/// Appends `"s"`, escaping `"` and `\`. CR and LF cannot be carried in a header value
/// at all (header injection), so they become spaces.
fn push_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\r' | '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
}

// ---------------------------------------------------------------------------------------
// Credentials
// ---------------------------------------------------------------------------------------

/// Parsed `Digest` credentials from an `Authorization` / `Proxy-Authorization` value.
/// Fields borrow from the header unless unescaping forced a copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials<'a> {
    pub username: Cow<'a, str>,
    pub realm: Cow<'a, str>,
    pub nonce: Cow<'a, str>,
    pub uri: Cow<'a, str>,
    pub response: Cow<'a, str>,
    /// `None` when absent; RFC 2617 then means MD5.
    pub algorithm: Option<Algorithm>,
    pub cnonce: Option<Cow<'a, str>>,
    pub opaque: Option<Cow<'a, str>>,
    pub qop: Option<Cow<'a, str>>,
    pub nc: Option<u32>,
}

impl<'a> Credentials<'a> {
    /// Parses a credentials header value. Unknown parameters are ignored (forward
    /// compatibility, e.g. `userhash`); duplicates and missing mandatory ones are errors.
    /// With `qop`, `nc` and `cnonce` are mandatory (RFC 2617 §3.2.2).
    pub fn parse(value: &'a str) -> Result<Credentials<'a>, DigestError> {
        let params = strip_scheme(value)?;
        let mut username = None;
        let mut realm = None;
        let mut nonce = None;
        let mut uri = None;
        let mut response = None;
        let mut algorithm = None;
        let mut cnonce = None;
        let mut opaque = None;
        let mut qop = None;
        let mut nc = None;
        parse_params(params, |name, v| match known_name(name) {
            Some("username") => set_once(&mut username, "username", v),
            Some("realm") => set_once(&mut realm, "realm", v),
            Some("nonce") => set_once(&mut nonce, "nonce", v),
            Some("uri") => set_once(&mut uri, "uri", v),
            Some("response") => set_once(&mut response, "response", v),
            Some("cnonce") => set_once(&mut cnonce, "cnonce", v),
            Some("opaque") => set_once(&mut opaque, "opaque", v),
            Some("qop") => set_once(&mut qop, "qop", v),
            Some("algorithm") => {
                let alg = Algorithm::from_name(&v).ok_or(DigestError::UnknownAlgorithm)?;
                set_once(&mut algorithm, "algorithm", alg)
            }
            Some("nc") => {
                let n = parse_hex_u32(v.as_bytes()).ok_or(DigestError::InvalidNc)?;
                set_once(&mut nc, "nc", n)
            }
            _ => Ok(()),
        })?;
        let creds = Credentials {
            username: username.ok_or(DigestError::Missing("username"))?,
            realm: realm.ok_or(DigestError::Missing("realm"))?,
            nonce: nonce.ok_or(DigestError::Missing("nonce"))?,
            uri: uri.ok_or(DigestError::Missing("uri"))?,
            response: response.ok_or(DigestError::Missing("response"))?,
            algorithm,
            cnonce,
            opaque,
            qop,
            nc,
        };
        if creds.qop.is_some() {
            if creds.nc.is_none() {
                return Err(DigestError::Missing("nc"));
            }
            if creds.cnonce.is_none() {
                return Err(DigestError::Missing("cnonce"));
            }
        }
        Ok(creds)
    }

    /// The algorithm to compute with: absent means MD5 (RFC 2617 §3.2.1).
    pub fn algorithm_or_default(&self) -> Algorithm {
        self.algorithm.unwrap_or(Algorithm::Md5)
    }

    /// Serializes back to a header value (e.g. for a proxy re-emitting credentials).
    pub fn to_header_value(&self) -> String {
        let mut out = String::with_capacity(256);
        out.push_str("Digest username=");
        push_quoted(&mut out, &self.username);
        out.push_str(", realm=");
        push_quoted(&mut out, &self.realm);
        out.push_str(", nonce=");
        push_quoted(&mut out, &self.nonce);
        out.push_str(", uri=");
        push_quoted(&mut out, &self.uri);
        out.push_str(", response=");
        push_quoted(&mut out, &self.response);
        if let Some(alg) = self.algorithm {
            out.push_str(", algorithm=");
            out.push_str(alg.name());
        }
        if let Some(cnonce) = &self.cnonce {
            out.push_str(", cnonce=");
            push_quoted(&mut out, cnonce);
        }
        if let Some(opaque) = &self.opaque {
            out.push_str(", opaque=");
            push_quoted(&mut out, opaque);
        }
        if let Some(qop) = &self.qop {
            out.push_str(", qop=");
            push_token_or_quoted(&mut out, qop);
        }
        if let Some(nc) = self.nc {
            out.push_str(", nc=");
            out.extend(nc_hex(nc).iter().map(|&b| b as char));
        }
        out
    }
}

/// Writes a value bare when it is a token (the customary form for `qop=auth`), quoted otherwise.
fn push_token_or_quoted(out: &mut String, s: &str) {
    if !s.is_empty() && s.bytes().all(is_token) {
        out.push_str(s);
    } else {
        push_quoted(out, s);
    }
}

/// Maps a parameter name to its canonical (lower-case) spelling if it is one we know,
/// without allocating; names are case-insensitive (RFC 7616 §3.4).
fn known_name(name: &str) -> Option<&'static str> {
    const NAMES: [&str; 11] = [
        "username",
        "realm",
        "nonce",
        "uri",
        "response",
        "algorithm",
        "cnonce",
        "opaque",
        "qop",
        "nc",
        "stale",
    ];
    NAMES.iter().copied().find(|n| n.eq_ignore_ascii_case(name))
}

// ---------------------------------------------------------------------------------------
// Challenge
// ---------------------------------------------------------------------------------------

/// A server challenge (`WWW-Authenticate` / `Proxy-Authenticate` value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: Algorithm,
    /// Offer `qop="auth"`. Should be true: without qop there is no `nc`, hence no replay
    /// protection beyond nonce expiry.
    pub qop_auth: bool,
    /// The client's nonce expired but its credentials were right: it may retry
    /// with the new nonce without asking the user (RFC 2617 §3.2.1).
    pub stale: bool,
}

impl Challenge {
    /// `Digest realm="..", nonce="..", [opaque="..", ]algorithm=MD5[, qop="auth"][, stale=true]`
    pub fn to_header_value(&self) -> String {
        let mut out = String::with_capacity(128);
        out.push_str("Digest realm=");
        push_quoted(&mut out, &self.realm);
        out.push_str(", nonce=");
        push_quoted(&mut out, &self.nonce);
        if let Some(opaque) = &self.opaque {
            out.push_str(", opaque=");
            push_quoted(&mut out, opaque);
        }
        out.push_str(", algorithm=");
        out.push_str(self.algorithm.name());
        if self.qop_auth {
            out.push_str(", qop=\"auth\"");
        }
        if self.stale {
            out.push_str(", stale=true");
        }
        out
    }

    /// Parses a challenge (client side). `qop` may be a list; `qop_auth` is set when it
    /// contains `auth`, and a list without `auth` is [`DigestError::UnsupportedQop`]
    /// because the client would be obliged to use a qop it cannot do. Missing
    /// `algorithm` means MD5; an unknown one is an error so a client facing several
    /// challenges can skip to the next.
    pub fn parse(value: &str) -> Result<Challenge, DigestError> {
        let params = strip_scheme(value)?;
        let mut realm: Option<Cow<'_, str>> = None;
        let mut nonce: Option<Cow<'_, str>> = None;
        let mut opaque: Option<Cow<'_, str>> = None;
        let mut algorithm = None;
        let mut qop: Option<bool> = None;
        let mut stale = None;
        parse_params(params, |name, v| match known_name(name) {
            Some("realm") => set_once(&mut realm, "realm", v),
            Some("nonce") => set_once(&mut nonce, "nonce", v),
            Some("opaque") => set_once(&mut opaque, "opaque", v),
            Some("algorithm") => {
                let alg = Algorithm::from_name(&v).ok_or(DigestError::UnknownAlgorithm)?;
                set_once(&mut algorithm, "algorithm", alg)
            }
            Some("qop") => {
                let auth = v.split(',').any(|q| q.trim().eq_ignore_ascii_case("auth"));
                if !auth {
                    return Err(DigestError::UnsupportedQop);
                }
                set_once(&mut qop, "qop", true)
            }
            Some("stale") => set_once(&mut stale, "stale", v.eq_ignore_ascii_case("true")),
            _ => Ok(()),
        })?;
        Ok(Challenge {
            realm: realm.ok_or(DigestError::Missing("realm"))?.into_owned(),
            nonce: nonce.ok_or(DigestError::Missing("nonce"))?.into_owned(),
            opaque: opaque.map(Cow::into_owned),
            algorithm: algorithm.unwrap_or(Algorithm::Md5),
            qop_auth: qop.unwrap_or(false),
            stale: stale.unwrap_or(false),
        })
    }
}

// ---------------------------------------------------------------------------------------
// Response computation
// ---------------------------------------------------------------------------------------

/// Incremental hash, so the response is computed without building intermediate strings.
enum Hasher {
    Md5(Md5),
    Sha256(Sha256),
}

impl Hasher {
    fn new(alg: Algorithm) -> Hasher {
        match alg {
            Algorithm::Md5 => Hasher::Md5(Md5::new()),
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Md5(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
        }
    }

    /// Writes the lower-hex digest into `out`, returning its length (32 or 64).
    fn finish_hex(self, out: &mut [u8; 64]) -> usize {
        fn write(bytes: &[u8], out: &mut [u8; 64]) -> usize {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            for (i, b) in bytes.iter().enumerate() {
                out[2 * i] = HEX[(b >> 4) as usize];
                out[2 * i + 1] = HEX[(b & 15) as usize];
            }
            bytes.len() * 2
        }
        match self {
            Hasher::Md5(h) => write(&h.finalize(), out),
            Hasher::Sha256(h) => write(&h.finalize(), out),
        }
    }
}

/// Computes the response into a stack buffer (no allocation on the verify path).
#[allow(clippy::too_many_arguments)]
fn response_into(
    alg: Algorithm,
    ha1_hex: &str,
    nonce: &str,
    nc: Option<u32>,
    cnonce: Option<&str>,
    qop: Option<&str>,
    method: &str,
    uri: &str,
    out: &mut [u8; 64],
) -> usize {
    let mut ha2 = [0u8; 64];
    let mut h = Hasher::new(alg);
    h.update(method.as_bytes());
    h.update(b":");
    h.update(uri.as_bytes());
    let ha2_len = h.finish_hex(&mut ha2);

    let mut h = Hasher::new(alg);
    h.update(ha1_hex.as_bytes());
    h.update(b":");
    h.update(nonce.as_bytes());
    h.update(b":");
    if let Some(qop) = qop {
        h.update(&nc_hex(nc.unwrap_or(0)));
        h.update(b":");
        h.update(cnonce.unwrap_or("").as_bytes());
        h.update(b":");
        h.update(qop.as_bytes());
        h.update(b":");
    }
    h.update(&ha2[..ha2_len]);
    h.finish_hex(out)
}

/// The `response` value: with `qop`, H(HA1:nonce:nc:cnonce:qop:HA2) (missing `nc` /
/// `cnonce` count as 0 / empty); without, the RFC 2069 form H(HA1:nonce:HA2).
/// HA2 = H(method:uri). `ha1_hex` must have been computed with the same `alg`.
#[allow(clippy::too_many_arguments)]
pub fn response(
    alg: Algorithm,
    ha1_hex: &str,
    nonce: &str,
    nc: Option<u32>,
    cnonce: Option<&str>,
    qop: Option<&str>,
    method: &str,
    uri: &str,
) -> String {
    let mut out = [0u8; 64];
    let n = response_into(alg, ha1_hex, nonce, nc, cnonce, qop, method, uri, &mut out);
    out[..n].iter().map(|&b| b as char).collect()
}

/// Compares without early exit so the timing does not reveal how many leading
/// characters of a forged response were right. Hex case is ignored.
fn ct_eq_hex(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| {
        acc | (x.to_ascii_lowercase() ^ y.to_ascii_lowercase())
    });
    std::hint::black_box(diff) == 0
}

/// Checks the client's `response` against the expected one. `ha1_hex` is the stored
/// HA1 for the credentials' algorithm (default MD5); `method` is the request method.
/// Only `qop=auth` or no qop are accepted: `auth-int` would need the body hash and is
/// refused (false). Nonce freshness is a separate concern, see [`NonceManager::check`].
pub fn verify(creds: &Credentials, method: &str, ha1_hex: &str) -> bool {
    let qop = match &creds.qop {
        None => None,
        Some(q) if q.eq_ignore_ascii_case("auth") => {
            if creds.nc.is_none() || creds.cnonce.is_none() {
                return false;
            }
            Some(&**q)
        }
        Some(_) => return false,
    };
    let mut expected = [0u8; 64];
    let n = response_into(
        creds.algorithm_or_default(),
        ha1_hex,
        &creds.nonce,
        creds.nc,
        creds.cnonce.as_deref(),
        qop,
        method,
        &creds.uri,
        &mut expected,
    );
    ct_eq_hex(&expected[..n], creds.response.as_bytes())
}

/// Client side (test clients): a full `Authorization` value answering `challenge`.
/// Uses `qop=auth` with `cnonce`/`nc` when the challenge offered qop, the RFC 2069 form
/// otherwise; echoes `opaque` as required.
pub fn authorization(
    challenge: &Challenge,
    username: &str,
    password: &str,
    method: &str,
    uri: &str,
    cnonce: &str,
    nc: u32,
) -> String {
    let alg = challenge.algorithm;
    let ha1 = ha1(alg, username, &challenge.realm, password);
    let (qop, cnonce_opt, nc_opt) = if challenge.qop_auth {
        (Some("auth"), Some(cnonce), Some(nc))
    } else {
        (None, None, None)
    };
    let resp = response(
        alg,
        &ha1,
        &challenge.nonce,
        nc_opt,
        cnonce_opt,
        qop,
        method,
        uri,
    );
    let mut out = String::with_capacity(256);
    out.push_str("Digest username=");
    push_quoted(&mut out, username);
    out.push_str(", realm=");
    push_quoted(&mut out, &challenge.realm);
    out.push_str(", nonce=");
    push_quoted(&mut out, &challenge.nonce);
    out.push_str(", uri=");
    push_quoted(&mut out, uri);
    out.push_str(", response=");
    push_quoted(&mut out, &resp);
    out.push_str(", algorithm=");
    out.push_str(alg.name());
    if challenge.qop_auth {
        out.push_str(", cnonce=");
        push_quoted(&mut out, cnonce);
        out.push_str(", qop=auth, nc=");
        out.extend(nc_hex(nc).iter().map(|&b| b as char));
    }
    if let Some(opaque) = &challenge.opaque {
        out.push_str(", opaque=");
        push_quoted(&mut out, opaque);
    }
    out
}

// ---------------------------------------------------------------------------------------
// Nonces
// ---------------------------------------------------------------------------------------

/// Outcome of [`NonceManager::check`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NonceCheck {
    /// Ours, fresh, and (with `nc`) not seen before.
    Valid,
    /// Ours but expired or evicted: challenge again with `stale=true` so the client
    /// retries silently.
    Stale,
    /// Not ours (malformed or MAC mismatch): treat as no credentials.
    Invalid,
    /// `nc` not above the highest seen for this nonce: a replayed request.
    Replay,
}

/// Future-dated nonces within this many seconds are accepted, because callers may pass
/// a per-thread cached clock and a fast client can answer before every cache ticks.
const CLOCK_SKEW_SECS: i32 = 60;

/// Largest table: 2^24 slots × 8 bytes = 128 MiB.
const MAX_SLOTS_LOG2: u8 = 24;

/// Issues self-authenticating nonces and tracks `nc` per nonce in a fixed-size table,
/// so memory is bounded no matter how many challenges are sent (no map, no locks).
///
/// Nonce = hex(time u32 BE ‖ counter u32 BE ‖ HMAC-SHA256(secret, time ‖ counter)[..8]).
/// The MAC makes forged nonces [`NonceCheck::Invalid`] without any lookup; the time
/// bounds the lifetime; the counter picks slot `counter & mask`, which remembers the
/// newest counter issued into it and the highest `nc` seen. When the slot is reused by
/// a newer nonce the older one becomes [`NonceCheck::Stale`], so the table size bounds
/// how many nonces can be outstanding at once (size it above issue rate × lifetime).
///
/// Each slot packs (counter << 32 | last_nc) into one `AtomicU64`, so reissue and `nc`
/// update are a single atomic step: a check racing a reissue can never carry the old
/// nonce's `nc` into the new one.
pub struct NonceManager {
    /// HMAC keyed once; cloned per use (cheaper than re-keying, no allocation).
    mac: Hmac<Sha256>,
    lifetime_secs: u32,
    mask: u32,
    counter: AtomicU32,
    slots: Box<[AtomicU64]>,
}

impl fmt::Debug for NonceManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key stays out of logs.
        f.debug_struct("NonceManager")
            .field("lifetime_secs", &self.lifetime_secs)
            .field("slots", &self.slots.len())
            .finish_non_exhaustive()
    }
}

impl NonceManager {
    /// `slots_log2` is clamped to 1..=24. The counter starts at a random value so that,
    /// if the secret survives a restart, the new process does not re-arm the old
    /// process's still-unexpired nonces (their slot would otherwise match again with a
    /// reset `nc`). Slots start marked with a counter that cannot map to them, so no
    /// nonce is valid before it is issued.
    pub fn new(secret: [u8; 32], lifetime_secs: u32, slots_log2: u8) -> NonceManager {
        let log2 = slots_log2.clamp(1, MAX_SLOTS_LOG2);
        let n = 1usize << log2;
        let mask = (n - 1) as u32;
        let slots = (0..n as u32)
            .map(|i| AtomicU64::new(((i.wrapping_add(1) & mask) as u64) << 32))
            .collect();
        NonceManager {
            mac: <Hmac<Sha256> as Mac>::new_from_slice(&secret).expect("HMAC takes any key size"),
            lifetime_secs,
            mask,
            counter: AtomicU32::new(rand::random()),
            slots,
        }
    }

    fn tag(&self, time: u32, counter: u32) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(&time.to_be_bytes());
        mac.update(&counter.to_be_bytes());
        mac
    }

    /// A fresh nonce (32 lower-hex chars). Times are taken mod 2^32 seconds, and age is
    /// computed with wrapping arithmetic, so 2106 is not a cliff.
    pub fn issue(&self, now_unix_secs: u64) -> String {
        let time = now_unix_secs as u32;
        // Relaxed: the counter only needs uniqueness; the slot store publishes the state.
        let counter = self.counter.fetch_add(1, Ordering::Relaxed);
        self.slots[(counter & self.mask) as usize].store((counter as u64) << 32, Ordering::Release);
        let tag = self.tag(time, counter).finalize().into_bytes();
        let mut raw = [0u8; 16];
        raw[..4].copy_from_slice(&time.to_be_bytes());
        raw[4..8].copy_from_slice(&counter.to_be_bytes());
        raw[8..].copy_from_slice(&tag[..8]);
        to_hex(&raw)
    }

    /// Validates a nonce from credentials. With `nc` (qop=auth) it also records `nc`,
    /// so each (nonce, nc) is accepted once and must increase. Without `nc` (no qop) the
    /// nonce stays reusable until it expires: there is nothing to detect a replay with.
    ///
    /// Call this only after [`verify`] succeeded, otherwise a forged request could
    /// advance `nc` and lock out the real client's next requests.
    pub fn check(&self, nonce: &str, nc: Option<u32>, now_unix_secs: u64) -> NonceCheck {
        let b = nonce.as_bytes();
        if b.len() != 32 {
            return NonceCheck::Invalid;
        }
        let (Some(time), Some(counter)) = (parse_hex_u32(&b[..8]), parse_hex_u32(&b[8..16])) else {
            return NonceCheck::Invalid;
        };
        let mut tag = [0u8; 8];
        for (i, t) in tag.iter_mut().enumerate() {
            let (Some(hi), Some(lo)) = (
                parse_hex_nibble(b[16 + 2 * i]),
                parse_hex_nibble(b[17 + 2 * i]),
            ) else {
                return NonceCheck::Invalid;
            };
            *t = hi << 4 | lo;
        }
        // Constant-time comparison of the truncated MAC.
        if self.tag(time, counter).verify_truncated_left(&tag).is_err() {
            return NonceCheck::Invalid;
        }

        let age = (now_unix_secs as u32).wrapping_sub(time) as i32;
        if age < -CLOCK_SKEW_SECS || (age > 0 && age as u32 > self.lifetime_secs) {
            return NonceCheck::Stale;
        }

        let slot = &self.slots[(counter & self.mask) as usize];
        let mut cur = slot.load(Ordering::Acquire);
        loop {
            if (cur >> 32) as u32 != counter {
                return NonceCheck::Stale;
            }
            let Some(nc) = nc else {
                return NonceCheck::Valid;
            };
            if nc <= cur as u32 {
                return NonceCheck::Replay;
            }
            let new = (counter as u64) << 32 | nc as u64;
            match slot.compare_exchange_weak(cur, new, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return NonceCheck::Valid,
                Err(actual) => cur = actual,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC7616_NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    const RFC7616_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
    const RFC7616_OPAQUE: &str = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS";

    #[test]
    fn algorithm_from_name() {
        assert_eq!(Algorithm::from_name("MD5"), Some(Algorithm::Md5));
        assert_eq!(Algorithm::from_name("md5"), Some(Algorithm::Md5));
        assert_eq!(Algorithm::from_name("sha-256"), Some(Algorithm::Sha256));
        assert_eq!(Algorithm::from_name("SHA-256"), Some(Algorithm::Sha256));
        assert_eq!(Algorithm::from_name("MD5-sess"), None);
        assert_eq!(Algorithm::from_name("SHA-512-256"), None);
        assert_eq!(Algorithm::from_name(""), None);
        assert_eq!(Algorithm::Sha256.to_string(), "SHA-256");
    }

    #[test]
    fn rfc2617_example() {
        let ha1 = ha1(
            Algorithm::Md5,
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
        );
        let r = response(
            Algorithm::Md5,
            &ha1,
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            Some(1),
            Some("0a4f113b"),
            Some("auth"),
            "GET",
            "/dir/index.html",
        );
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");

        // The header exactly as printed in RFC 2617 §3.5 (with folding whitespace).
        let hdr = "Digest username=\"Mufasa\",\r\n\
                   \trealm=\"testrealm@host.com\",\r\n\
                   \tnonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\",\r\n\
                   \turi=\"/dir/index.html\",\r\n\
                   \tqop=auth,\r\n\
                   \tnc=00000001,\r\n\
                   \tcnonce=\"0a4f113b\",\r\n\
                   \tresponse=\"6629fae49393a05397450978507c4ef1\",\r\n\
                   \topaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";
        let c = Credentials::parse(hdr).unwrap();
        assert_eq!(c.username, "Mufasa");
        assert_eq!(c.nc, Some(1));
        assert_eq!(c.qop.as_deref(), Some("auth"));
        assert_eq!(c.algorithm, None);
        assert_eq!(
            c.opaque.as_deref(),
            Some("5ccc069c403ebaf9f0171e9517f40e41")
        );
        assert!(matches!(c.username, Cow::Borrowed(_)));
        assert!(verify(&c, "GET", &ha1));
        assert!(!verify(&c, "POST", &ha1));
        let wrong = super::ha1(
            Algorithm::Md5,
            "Mufasa",
            "testrealm@host.com",
            "circle of life",
        );
        assert!(!verify(&c, "GET", &wrong));
    }

    fn rfc7616_challenge(alg: Algorithm) -> Challenge {
        Challenge {
            realm: "http-auth@example.org".into(),
            nonce: RFC7616_NONCE.into(),
            opaque: Some(RFC7616_OPAQUE.into()),
            algorithm: alg,
            qop_auth: true,
            stale: false,
        }
    }

    #[test]
    fn rfc7616_examples() {
        for (alg, expected) in [
            (Algorithm::Md5, "8ca523f5e9506fed4657c9700eebdbec"),
            (
                Algorithm::Sha256,
                "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
            ),
        ] {
            let ha1 = ha1(alg, "Mufasa", "http-auth@example.org", "Circle of Life");
            let r = response(
                alg,
                &ha1,
                RFC7616_NONCE,
                Some(1),
                Some(RFC7616_CNONCE),
                Some("auth"),
                "GET",
                "/dir/index.html",
            );
            assert_eq!(r, expected);

            let ch = rfc7616_challenge(alg);
            let hdr = authorization(
                &ch,
                "Mufasa",
                "Circle of Life",
                "GET",
                "/dir/index.html",
                RFC7616_CNONCE,
                1,
            );
            let c = Credentials::parse(&hdr).unwrap();
            assert_eq!(c.response, expected);
            assert_eq!(c.algorithm, Some(alg));
            assert_eq!(c.opaque.as_deref(), Some(RFC7616_OPAQUE));
            assert_eq!(c.nc, Some(1));
            assert_eq!(c.cnonce.as_deref(), Some(RFC7616_CNONCE));
            assert!(verify(&c, "GET", &ha1));
            // Upper-case hex from a sloppy client still verifies.
            let mut upper = c.clone();
            upper.response = Cow::Owned(expected.to_ascii_uppercase());
            assert!(verify(&upper, "GET", &ha1));
        }
    }

    #[test]
    fn rfc7616_sha256_header_as_printed() {
        let hdr = r#"Digest username="Mufasa",
       realm="http-auth@example.org",
       uri="/dir/index.html",
       algorithm=SHA-256,
       nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
       nc=00000001,
       cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
       qop=auth,
       response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
       opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;
        let c = Credentials::parse(hdr).unwrap();
        let ha1 = ha1(
            Algorithm::Sha256,
            "Mufasa",
            "http-auth@example.org",
            "Circle of Life",
        );
        assert!(verify(&c, "GET", &ha1));
        // The MD5 HA1 does not verify a SHA-256 response.
        let md5 = super::ha1(
            Algorithm::Md5,
            "Mufasa",
            "http-auth@example.org",
            "Circle of Life",
        );
        assert!(!verify(&c, "GET", &md5));
    }

    #[test]
    fn no_qop_rfc2069_form() {
        let ch = Challenge {
            realm: "example.test".into(),
            nonce: "abc".into(),
            opaque: None,
            algorithm: Algorithm::Md5,
            qop_auth: false,
            stale: false,
        };
        let hdr = authorization(
            &ch,
            "alice",
            "pw",
            "REGISTER",
            "sip:example.test",
            "ignored",
            7,
        );
        assert!(!hdr.contains("qop"));
        assert!(!hdr.contains("cnonce"));
        assert!(!hdr.contains("nc="));
        assert!(!hdr.contains("opaque"));
        let c = Credentials::parse(&hdr).unwrap();
        assert_eq!(
            (c.qop.as_deref(), c.nc, c.cnonce.as_deref()),
            (None, None, None)
        );
        let h = ha1(Algorithm::Md5, "alice", "example.test", "pw");
        assert!(verify(&c, "REGISTER", &h));
        assert_eq!(
            c.response,
            Algorithm::Md5.hex(
                format!(
                    "{h}:abc:{}",
                    Algorithm::Md5.hex(b"REGISTER:sip:example.test")
                )
                .as_bytes()
            )
        );
    }

    #[test]
    fn verify_rejects_auth_int_and_unknown_qop() {
        let h = ha1(Algorithm::Md5, "u", "r", "p");
        let resp = response(
            Algorithm::Md5,
            &h,
            "n",
            Some(1),
            Some("c"),
            Some("auth-int"),
            "INVITE",
            "sip:x",
        );
        let hdr = format!(
            "Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"sip:x\", response=\"{resp}\", qop=auth-int, nc=00000001, cnonce=\"c\""
        );
        let c = Credentials::parse(&hdr).unwrap();
        assert!(!verify(&c, "INVITE", &h));
        // Hand-built credentials missing nc under qop=auth are refused too.
        let mut c2 = c.clone();
        c2.qop = Some("auth".into());
        c2.nc = None;
        assert!(!verify(&c2, "INVITE", &h));
        // A response of the wrong length is simply wrong.
        let mut c3 = c.clone();
        c3.qop = Some("auth".into());
        c3.response = "00".into();
        assert!(!verify(&c3, "INVITE", &h));
    }

    #[test]
    fn credentials_parsing_details() {
        // Case-insensitive scheme and names, LWS around '=', escapes, unknown params,
        // empty list elements, mixed-case nc hex.
        let hdr = "  dIgEsT  USERNAME = \"al\\\"ice\\\\\" ,, Realm=\"r\",nonce=n1 ,uri=\"sip:a@b;x=\\y\",\
                   response=\"abc\", foo=\"bar, baz\", userhash=false, qop=\"auth\", NC=0000000A, cnonce=c1";
        let c = Credentials::parse(hdr).unwrap();
        assert_eq!(c.username, "al\"ice\\");
        assert!(matches!(c.username, Cow::Owned(_)));
        assert_eq!(c.realm, "r");
        assert_eq!(c.nonce, "n1");
        assert_eq!(c.uri, "sip:a@b;x=y");
        assert_eq!(c.response, "abc");
        assert_eq!(c.qop.as_deref(), Some("auth"));
        assert_eq!(c.nc, Some(10));
        assert_eq!(c.cnonce.as_deref(), Some("c1"));
        assert_eq!(c.algorithm_or_default(), Algorithm::Md5);

        // UTF-8 survives, escaped or not.
        let c = Credentials::parse(
            "Digest username=\"j\u{f6}rg\\\u{e9}\", realm=r, nonce=n, uri=u, response=x",
        )
        .unwrap();
        assert_eq!(c.username, "j\u{f6}rg\u{e9}");

        // Round trip through to_header_value.
        let again = c.to_header_value();
        assert_eq!(Credentials::parse(&again).unwrap(), c);
        let full = Credentials::parse(hdr).unwrap();
        assert_eq!(Credentials::parse(&full.to_header_value()).unwrap(), full);
    }

    #[test]
    fn credentials_errors() {
        use DigestError::*;
        let base = "username=\"u\", realm=\"r\", nonce=\"n\", uri=\"sip:x\", response=\"rr\"";
        let p = |s: &str| Credentials::parse(s).map(|_| ());
        assert_eq!(p(&format!("Digest {base}")), Ok(()));

        assert_eq!(p(""), Err(NotDigest));
        assert_eq!(p("Basic dXNlcjpwdw=="), Err(NotDigest));
        assert_eq!(p("Digestusername=\"u\""), Err(NotDigest));
        assert_eq!(p("Digest,username=\"u\""), Err(Malformed));
        assert_eq!(p("Digest username"), Err(Malformed));
        assert_eq!(p("Digest username="), Err(Malformed));
        assert_eq!(p("Digest =\"u\""), Err(Malformed));
        assert_eq!(p("Digest username=\"u\" realm=\"r\""), Err(Malformed));
        assert_eq!(p("Digest username=u\"v\""), Err(Malformed));
        assert_eq!(p("Digest username=\"u"), Err(UnterminatedQuote));
        assert_eq!(p("Digest username=\"u\\\""), Err(UnterminatedQuote));
        assert_eq!(p("Digest username=\"u\\"), Err(UnterminatedQuote));

        for (name, missing) in [
            (
                "username",
                "realm=\"r\", nonce=\"n\", uri=\"sip:x\", response=\"rr\"",
            ),
            (
                "realm",
                "username=\"u\", nonce=\"n\", uri=\"sip:x\", response=\"rr\"",
            ),
            (
                "nonce",
                "username=\"u\", realm=\"r\", uri=\"sip:x\", response=\"rr\"",
            ),
            (
                "uri",
                "username=\"u\", realm=\"r\", nonce=\"n\", response=\"rr\"",
            ),
            (
                "response",
                "username=\"u\", realm=\"r\", nonce=\"n\", uri=\"sip:x\"",
            ),
        ] {
            assert_eq!(p(&format!("Digest {missing}")), Err(Missing(name)));
        }
        assert_eq!(p("Digest"), Err(Missing("username")));
        assert_eq!(
            p(&format!("Digest {base}, qop=auth, cnonce=\"c\"")),
            Err(Missing("nc"))
        );
        assert_eq!(
            p(&format!("Digest {base}, qop=auth, nc=00000001")),
            Err(Missing("cnonce"))
        );

        for dup in [
            "username", "realm", "nonce", "uri", "response", "cnonce", "opaque", "qop",
        ] {
            assert_eq!(
                p(&format!("Digest {base}, {dup}=\"x\", {dup}=\"y\"")),
                Err(Duplicate(dup)),
                "{dup}"
            );
        }
        assert_eq!(
            p(&format!("Digest {base}, algorithm=MD5, Algorithm=md5")),
            Err(Duplicate("algorithm"))
        );
        assert_eq!(
            p(&format!("Digest {base}, nc=00000001, nc=00000002")),
            Err(Duplicate("nc"))
        );
        // Username given twice with different case of the name is still a duplicate.
        assert_eq!(
            p(&format!("Digest {base}, UserName=\"v\"")),
            Err(Duplicate("username"))
        );

        assert_eq!(
            p(&format!("Digest {base}, algorithm=MD5-sess")),
            Err(UnknownAlgorithm)
        );
        assert_eq!(
            p(&format!("Digest {base}, algorithm=\"SHA-512-256\"")),
            Err(UnknownAlgorithm)
        );
        for nc in ["1", "0000001", "000000001", "0000000g", "+0000001", "\"\""] {
            assert_eq!(
                p(&format!("Digest {base}, qop=auth, cnonce=c, nc={nc}")),
                Err(InvalidNc),
                "{nc}"
            );
        }
    }

    #[test]
    fn error_messages_are_short_ascii() {
        use DigestError::*;
        let all = [
            NotDigest,
            Malformed,
            UnterminatedQuote,
            Missing("nonce"),
            Duplicate("nc"),
            UnknownAlgorithm,
            InvalidNc,
            UnsupportedQop,
        ];
        for e in all {
            let s = e.to_string();
            assert!(s.is_ascii() && !s.is_empty() && s.len() <= 40, "{s}");
        }
        assert_eq!(Missing("nonce").to_string(), "missing 'nonce' parameter");
        assert_eq!(Duplicate("nc").to_string(), "duplicate 'nc' parameter");
    }

    #[test]
    fn challenge_format_and_parse() {
        let mut ch = Challenge {
            realm: "example.test".into(),
            nonce: "0123abcd".into(),
            opaque: None,
            algorithm: Algorithm::Md5,
            qop_auth: true,
            stale: false,
        };
        assert_eq!(
            ch.to_header_value(),
            "Digest realm=\"example.test\", nonce=\"0123abcd\", algorithm=MD5, qop=\"auth\""
        );
        assert_eq!(Challenge::parse(&ch.to_header_value()).unwrap(), ch);

        ch.stale = true;
        ch.algorithm = Algorithm::Sha256;
        ch.opaque = Some("op\"aque".into());
        ch.realm = "we\\ird".into();
        assert_eq!(
            ch.to_header_value(),
            "Digest realm=\"we\\\\ird\", nonce=\"0123abcd\", opaque=\"op\\\"aque\", algorithm=SHA-256, qop=\"auth\", stale=true"
        );
        assert_eq!(Challenge::parse(&ch.to_header_value()).unwrap(), ch);

        ch.qop_auth = false;
        ch.stale = false;
        ch.opaque = None;
        assert_eq!(
            ch.to_header_value(),
            "Digest realm=\"we\\\\ird\", nonce=\"0123abcd\", algorithm=SHA-256"
        );
        assert_eq!(Challenge::parse(&ch.to_header_value()).unwrap(), ch);

        // CR/LF cannot leak into a header.
        ch.realm = "a\r\nVia: evil".into();
        assert!(!ch.to_header_value().contains('\n'));

        // RFC 7616 §3.9.1 challenge with a qop list and defaults.
        let c = Challenge::parse(
            "Digest\r\n realm=\"http-auth@example.org\",\r\n qop=\"auth, auth-int\",\r\n algorithm=SHA-256,\r\n \
             nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\",\r\n opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"",
        )
        .unwrap();
        assert_eq!(c, rfc7616_challenge(Algorithm::Sha256));
        let c = Challenge::parse(
            "Digest realm=r, nonce=n, qop=\"auth-int,auth\", stale=TRUE, domain=\"sip:x\"",
        )
        .unwrap();
        assert!(c.qop_auth && c.stale);
        assert_eq!(c.algorithm, Algorithm::Md5);
        let c = Challenge::parse("Digest realm=r, nonce=n, stale=false").unwrap();
        assert!(!c.qop_auth && !c.stale);
    }

    #[test]
    fn challenge_errors() {
        use DigestError::*;
        let p = |s: &str| Challenge::parse(s).map(|_| ());
        assert_eq!(p("Basic realm=\"r\""), Err(NotDigest));
        assert_eq!(p("Digest realm=\"r\" nonce=\"n\""), Err(Malformed));
        assert_eq!(p("Digest realm=\"r"), Err(UnterminatedQuote));
        assert_eq!(p("Digest nonce=n"), Err(Missing("realm")));
        assert_eq!(p("Digest realm=r"), Err(Missing("nonce")));
        assert_eq!(
            p("Digest realm=r, nonce=n, realm=s"),
            Err(Duplicate("realm"))
        );
        assert_eq!(
            p("Digest realm=r, nonce=n, nonce=m"),
            Err(Duplicate("nonce"))
        );
        assert_eq!(
            p("Digest realm=r, nonce=n, opaque=a, opaque=b"),
            Err(Duplicate("opaque"))
        );
        assert_eq!(
            p("Digest realm=r, nonce=n, qop=auth, qop=auth"),
            Err(Duplicate("qop"))
        );
        assert_eq!(
            p("Digest realm=r, nonce=n, stale=true, stale=true"),
            Err(Duplicate("stale"))
        );
        assert_eq!(
            p("Digest realm=r, nonce=n, algorithm=MD5, algorithm=MD5"),
            Err(Duplicate("algorithm"))
        );
        assert_eq!(
            p("Digest realm=r, nonce=n, algorithm=SHA-512-256"),
            Err(UnknownAlgorithm)
        );
        assert_eq!(
            p("Digest realm=r, nonce=n, qop=\"auth-int\""),
            Err(UnsupportedQop)
        );
    }

    #[test]
    fn client_server_round_trip() {
        let nm = NonceManager::new([7; 32], 300, 4);
        let ch = Challenge {
            realm: "example.test".into(),
            nonce: nm.issue(1_000),
            opaque: None,
            algorithm: Algorithm::Sha256,
            qop_auth: true,
            stale: false,
        };
        let parsed = Challenge::parse(&ch.to_header_value()).unwrap();
        let stored = ha1(Algorithm::Sha256, "bob", "example.test", "s3cret");
        for nc in 1..=3 {
            let hdr = authorization(
                &parsed,
                "bob",
                "s3cret",
                "REGISTER",
                "sip:example.test",
                "cn",
                nc,
            );
            let c = Credentials::parse(&hdr).unwrap();
            assert!(verify(&c, "REGISTER", &stored));
            assert_eq!(nm.check(&c.nonce, c.nc, 1_010), NonceCheck::Valid);
            assert_eq!(nm.check(&c.nonce, c.nc, 1_011), NonceCheck::Replay);
        }
    }

    #[test]
    fn nonce_format() {
        let nm = NonceManager::new([1; 32], 60, 8);
        let n = nm.issue(0x0102_0304);
        assert_eq!(n.len(), 32);
        assert!(n.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
        assert_eq!(&n[..8], "01020304");
        let n2 = nm.issue(0x0102_0304);
        assert_ne!(n, n2);
        let c1 = u32::from_str_radix(&n[8..16], 16).unwrap();
        let c2 = u32::from_str_radix(&n2[8..16], 16).unwrap();
        assert_eq!(c2, c1.wrapping_add(1));
        assert!(format!("{nm:?}").contains("NonceManager"));
    }

    #[test]
    fn nonce_valid_replay_and_increasing_nc() {
        let nm = NonceManager::new([2; 32], 60, 8);
        let n = nm.issue(1_000);
        assert_eq!(nm.check(&n, Some(1), 1_000), NonceCheck::Valid);
        assert_eq!(nm.check(&n, Some(1), 1_001), NonceCheck::Replay);
        assert_eq!(nm.check(&n, Some(0), 1_001), NonceCheck::Replay);
        assert_eq!(nm.check(&n, Some(2), 1_001), NonceCheck::Valid);
        assert_eq!(nm.check(&n, Some(5), 1_002), NonceCheck::Valid); // gaps are fine
        assert_eq!(nm.check(&n, Some(4), 1_002), NonceCheck::Replay); // going back is not
        assert_eq!(nm.check(&n, Some(u32::MAX), 1_002), NonceCheck::Valid);
        assert_eq!(nm.check(&n, Some(u32::MAX), 1_002), NonceCheck::Replay);
        // Upper-case hex of our own nonce is still ours.
        assert_eq!(
            nm.check(&n.to_ascii_uppercase(), None, 1_002),
            NonceCheck::Valid
        );

        // Without qop there is no nc: reusable while fresh.
        let m = nm.issue(1_000);
        assert_eq!(nm.check(&m, None, 1_000), NonceCheck::Valid);
        assert_eq!(nm.check(&m, None, 1_030), NonceCheck::Valid);
        // A nonce's nc is independent of another nonce's.
        assert_eq!(nm.check(&m, Some(1), 1_030), NonceCheck::Valid);
    }

    #[test]
    fn nonce_stale_after_lifetime() {
        let nm = NonceManager::new([3; 32], 60, 8);
        let n = nm.issue(1_000);
        assert_eq!(nm.check(&n, None, 1_060), NonceCheck::Valid);
        assert_eq!(nm.check(&n, None, 1_061), NonceCheck::Stale);
        assert_eq!(nm.check(&n, Some(1), 1_061), NonceCheck::Stale);
        // Slightly future-dated (clock skew) is tolerated, far future is not.
        assert_eq!(nm.check(&n, None, 990), NonceCheck::Valid);
        assert_eq!(nm.check(&n, None, 100), NonceCheck::Stale);
        // Wrap-around of the 32-bit time is handled.
        let w = nm.issue(u32::MAX as u64 - 10);
        assert_eq!(
            nm.check(&w, Some(1), u32::MAX as u64 + 20),
            NonceCheck::Valid
        );
        assert_eq!(
            nm.check(&w, Some(2), u32::MAX as u64 + 60),
            NonceCheck::Stale
        );
    }

    #[test]
    fn nonce_stale_after_slot_reuse() {
        let nm = NonceManager::new([4; 32], 600, 2); // 4 slots
        let first = nm.issue(1_000);
        assert_eq!(nm.check(&first, Some(3), 1_000), NonceCheck::Valid);
        let others: Vec<_> = (0..3).map(|_| nm.issue(1_000)).collect();
        assert_eq!(nm.check(&first, Some(4), 1_000), NonceCheck::Valid);
        let reuser = nm.issue(1_000); // same slot as `first`
        assert_eq!(nm.check(&first, Some(5), 1_000), NonceCheck::Stale);
        assert_eq!(nm.check(&first, None, 1_000), NonceCheck::Stale);
        // The new occupant starts with a clean nc.
        assert_eq!(nm.check(&reuser, Some(1), 1_000), NonceCheck::Valid);
        for o in &others {
            assert_eq!(nm.check(o, Some(1), 1_000), NonceCheck::Valid);
        }

        // slots_log2 = 0 is clamped to 2 slots rather than making every nonce share one.
        let tiny = NonceManager::new([4; 32], 600, 0);
        let a = tiny.issue(0);
        let b = tiny.issue(0);
        assert_eq!(tiny.check(&a, Some(1), 0), NonceCheck::Valid);
        assert_eq!(tiny.check(&b, Some(1), 0), NonceCheck::Valid);
        let _c = tiny.issue(0);
        assert_eq!(tiny.check(&a, Some(2), 0), NonceCheck::Stale);
    }

    #[test]
    fn nonce_invalid() {
        let nm = NonceManager::new([5; 32], 60, 8);
        let n = nm.issue(1_000);
        // Flip one MAC nibble.
        let mut t = n.clone().into_bytes();
        t[31] = if t[31] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            nm.check(std::str::from_utf8(&t).unwrap(), Some(1), 1_000),
            NonceCheck::Invalid
        );
        // Change the time (trying to extend the lifetime) without the key.
        let mut t = n.clone().into_bytes();
        t[7] = if t[7] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            nm.check(std::str::from_utf8(&t).unwrap(), None, 1_000),
            NonceCheck::Invalid
        );
        // Change the counter.
        let mut t = n.clone().into_bytes();
        t[15] = if t[15] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            nm.check(std::str::from_utf8(&t).unwrap(), None, 1_000),
            NonceCheck::Invalid
        );
        // Another server's secret.
        let other = NonceManager::new([6; 32], 60, 8);
        assert_eq!(other.check(&n, Some(1), 1_000), NonceCheck::Invalid);
        // Garbage.
        for g in [
            "",
            "abc",
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            &"z".repeat(32),
            &format!("{}x", &n[..31]),
        ] {
            assert_eq!(nm.check(g, Some(1), 1_000), NonceCheck::Invalid, "{g}");
        }
        // Multi-byte UTF-8 of the right byte length must not panic.
        let u = format!("{}\u{e9}", &n[..30]);
        assert_eq!(u.len(), 32);
        assert_eq!(nm.check(&u, None, 1_000), NonceCheck::Invalid);
        // The genuine one was untouched by all of the above.
        assert_eq!(nm.check(&n, Some(1), 1_000), NonceCheck::Valid);
    }

    #[test]
    fn nonce_fresh_slots_reject_unissued_counters() {
        // A nonce minted with the same secret by "another process" whose counter
        // maps to a slot never issued here must not validate.
        let a = NonceManager::new([8; 32], 600, 4);
        let b = NonceManager::new([8; 32], 600, 4);
        let n = a.issue(1_000);
        assert_eq!(b.check(&n, Some(1), 1_000), NonceCheck::Stale);
    }

    #[test]
    fn nonce_concurrent_nc_is_accepted_once() {
        use std::sync::Arc;
        let nm = Arc::new(NonceManager::new([9; 32], 600, 6));
        let n = Arc::new(nm.issue(0));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (nm, n) = (nm.clone(), n.clone());
                std::thread::spawn(move || {
                    (1..=1000u32)
                        .filter(|&nc| nm.check(&n, Some(nc), 0) == NonceCheck::Valid)
                        .count()
                })
            })
            .collect();
        let total: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        // Each nc value is accepted at most once across all threads, and nc=1000 at least once.
        assert!((1..=1000).contains(&total));
        assert_eq!(nm.check(&n, Some(1000), 0), NonceCheck::Replay);
    }
}
