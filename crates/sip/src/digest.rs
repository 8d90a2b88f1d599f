//! HTTP Digest authentication for SIP (RFC 2617, RFC 7616, RFC 8760).

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

    /// Lower-case hex digest of `data`.
    pub fn hex(self, data: &[u8]) -> String {
        match self {
            Algorithm::Md5 => to_hex(&Md5::digest(data)),
            Algorithm::Sha256 => to_hex(&Sha256::digest(data)),
        }
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
