//! Integrity of what confab hands out in Record-Route (RFC 5626 §5.2): every Record-Route
//! entry confab adds carries a token in its user part, an HMAC over the dialog it was made
//! for (Call-ID and the initiator's tag) and the flow it names, if any. An in-dialog request
//! that comes back through such an entry proves that confab record-routed this dialog; a
//! To tag alone proves nothing. The key lives in the central store, so every server on it
//! accepts the others' entries, and entries survive restarts.
//!
//! Form: `cf-<20 hex digits of HMAC-SHA256>` or `cf-<mac>-<flow>`, where flow is
//! `<t><ip>_<port>` (t: u udp, t tcp, s tls, w ws, x wss; ':' of IPv6 written '-').
//!
//! Front ends of a pool (pool/) forward requests to each other with a Route entry
//! `cp-<mac>-<expiry>[-<flow>]`: a MAC over the request's Call-ID, From tag and CSeq
//! number, an expiry ([`POOL_TOKEN_TTL_S`] on, Unix seconds in 8 hex digits) and the flow
//! (the client's connection at the receiving front end, when the request is for a
//! registered contact). Only a front end of the pool can make one (the key is the pool's),
//! so the receiver takes the request as already authenticated and authorized by the
//! sender; an overheard entry is good for that request alone (its retransmissions, its
//! CANCEL and ACK), and for a minute at most.

use crate::config::Transport;
use crate::net::Dest;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

const PREFIX: &str = "cf-";
const POOL_PREFIX: &str = "cp-";
/// Hex digits of the MAC kept in a token (80 bits, as RFC 5626's HMAC-SHA1-80).
const MAC_HEX: usize = 20;
/// How long a pool Route entry is good for (seconds): a transaction's life (64·T1 = 32 s)
/// and the front ends' clocks differing by some seconds.
pub const POOL_TOKEN_TTL_S: u64 = 60;
/// Hex digits of a pool entry's expiry.
const EXPIRY_HEX: usize = 8;

/// What a pool Route entry is bound to: the request's Call-ID, From tag and CSeq number
/// (its CANCEL and ACK carry the same entry with the same number).
pub fn pool_material(expiry: u64, seq: u32, flow_text: &str) -> String {
    format!("{expiry:08x}|{seq}|{flow_text}")
}

/// What a valid token says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The flow to reach the party behind this entry, if it named one.
    pub flow: Option<Dest>,
    /// A pool token: another front end of the pool forwarded this request.
    pub pool: bool,
}

/// Why a token was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invalid {
    /// Not of our form at all (not a token of ours).
    NotAToken,
    /// Of our form, but the MAC does not match this dialog: forged, tampered, or replayed
    /// into another dialog.
    BadMac,
}

/// Signs and checks Record-Route tokens with the store's key.
#[derive(Clone)]
pub struct RouteTokens {
    key: [u8; 32],
}

impl RouteTokens {
    pub fn new(key: [u8; 32]) -> RouteTokens {
        RouteTokens { key }
    }

    fn mac(&self, call_id: &str, tag: &str, flow: &str) -> [u8; MAC_HEX / 2] {
        self.mac_for(b"confab-rr\0", call_id, tag, flow)
    }

    fn mac_for(&self, purpose: &[u8], call_id: &str, tag: &str, flow: &str) -> [u8; MAC_HEX / 2] {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("any key length");
        m.update(purpose);
        m.update(call_id.as_bytes());
        m.update(b"\0");
        m.update(tag.as_bytes());
        m.update(b"\0");
        m.update(flow.as_bytes());
        let full = m.finalize().into_bytes();
        let mut out = [0u8; MAC_HEX / 2];
        out.copy_from_slice(&full[..MAC_HEX / 2]);
        out
    }

    /// The user part of a pool Route entry for the request (`call_id`, `from_tag`, CSeq
    /// number `seq`), naming the flow at the receiving front end when the request is for a
    /// contact registered there; good for [`POOL_TOKEN_TTL_S`] from `now_s` (Unix seconds).
    pub fn sign_pool(
        &self,
        call_id: &str,
        from_tag: &str,
        seq: u32,
        flow: Option<&Dest>,
        now_s: u64,
    ) -> String {
        let flow_text = flow.map(encode_flow).unwrap_or_default();
        let expiry = (now_s + POOL_TOKEN_TTL_S) & 0xffff_ffff;
        let mac = self.mac_for(
            b"confab-pool\0",
            call_id,
            from_tag,
            &pool_material(expiry, seq, &flow_text),
        );
        let mut s =
            String::with_capacity(POOL_PREFIX.len() + MAC_HEX + 2 + EXPIRY_HEX + flow_text.len());
        s.push_str(POOL_PREFIX);
        for b in mac {
            let _ = write!(s, "{b:02x}");
        }
        let _ = write!(s, "-{expiry:08x}");
        if !flow_text.is_empty() {
            s.push('-');
            s.push_str(&flow_text);
        }
        s
    }

    /// The user part of a Record-Route entry for the dialog (`call_id`, initiator's `tag`),
    /// naming `flow` when the party on that side can only be reached over it.
    pub fn sign(&self, call_id: &str, tag: &str, flow: Option<&Dest>) -> String {
        let flow_text = flow.map(encode_flow).unwrap_or_default();
        let mac = self.mac(call_id, tag, &flow_text);
        let mut s = String::with_capacity(PREFIX.len() + MAC_HEX + 1 + flow_text.len());
        s.push_str(PREFIX);
        for b in mac {
            let _ = write!(s, "{b:02x}");
        }
        if !flow_text.is_empty() {
            s.push('-');
            s.push_str(&flow_text);
        }
        s
    }

    /// Checks a Route entry's user part against the request carrying it (`call_id`, its
    /// tags [From, To], its CSeq number `seq`) at `now_s` (Unix seconds). A dialog entry's
    /// MAC must match the Call-ID and one of the tags (From's when the initiator sends, To's
    /// when the other party does); a pool entry's the Call-ID, the From tag and the CSeq
    /// number, before its expiry.
    pub fn verify(
        &self,
        user: &str,
        call_id: &str,
        tags: [&str; 2],
        seq: u32,
        now_s: u64,
    ) -> Result<Verified, Invalid> {
        let (rest, pool) = match user.strip_prefix(PREFIX) {
            Some(r) => (r, false),
            None => (
                user.strip_prefix(POOL_PREFIX).ok_or(Invalid::NotAToken)?,
                true,
            ),
        };
        let (mac_hex, mut after) = match rest.split_at_checked(MAC_HEX) {
            Some((m, "")) => (m, ""),
            Some((m, f)) => (m, f.strip_prefix('-').ok_or(Invalid::BadMac)?),
            None => return Err(Invalid::BadMac),
        };
        let mut given = [0u8; MAC_HEX / 2];
        for (i, out) in given.iter_mut().enumerate() {
            let pair = mac_hex.get(i * 2..i * 2 + 2).ok_or(Invalid::BadMac)?;
            *out = u8::from_str_radix(pair, 16).map_err(|_| Invalid::BadMac)?;
        }
        let expiry = if pool {
            let (hex, rest) = after.split_at_checked(EXPIRY_HEX).ok_or(Invalid::BadMac)?;
            after = match rest {
                "" => "",
                r => r.strip_prefix('-').ok_or(Invalid::BadMac)?,
            };
            // digits only (`from_str_radix` would also take a sign)
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Invalid::BadMac);
            }
            Some(u64::from_str_radix(hex, 16).map_err(|_| Invalid::BadMac)?)
        } else {
            None
        };
        let flow_text = after;
        let flow = if flow_text.is_empty() {
            None
        } else {
            Some(decode_flow(flow_text).ok_or(Invalid::BadMac)?)
        };
        let same = |want: [u8; MAC_HEX / 2]| {
            // constant time: no early exit on the first differing byte
            want.iter()
                .zip(given.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
        };
        let ok = match expiry {
            Some(expiry) => {
                let material = pool_material(expiry, seq, flow_text);
                same(self.mac_for(b"confab-pool\0", call_id, tags[0], &material))
                    && expiry >= now_s & 0xffff_ffff
            }
            None => tags
                .iter()
                .any(|tag| same(self.mac(call_id, tag, flow_text))),
        };
        if ok {
            Ok(Verified { flow, pool })
        } else {
            Err(Invalid::BadMac)
        }
    }
}

pub(crate) fn encode_flow(d: &Dest) -> String {
    let t = match d.transport {
        Transport::Udp => 'u',
        Transport::Tcp => 't',
        Transport::Tls => 's',
        Transport::Ws => 'w',
        Transport::Wss => 'x',
    };
    let ip = match d.addr.ip() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => v6.to_string().replace(':', "-"),
    };
    format!("{t}{ip}_{}", d.addr.port())
}

pub(crate) fn decode_flow(text: &str) -> Option<Dest> {
    let transport = match text.as_bytes().first()? {
        b't' => Transport::Tcp,
        b'u' => Transport::Udp,
        b's' => Transport::Tls,
        b'w' => Transport::Ws,
        b'x' => Transport::Wss,
        _ => return None,
    };
    let (ip, port) = text[1..].rsplit_once('_')?;
    let ip: IpAddr = ip.replace('-', ":").parse().ok()?;
    Some(Dest {
        transport,
        addr: SocketAddr::new(ip, port.parse().ok()?),
        conn: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A wall clock for tokens with an expiry (Unix seconds).
    const NOW: u64 = 1_800_000_000;

    fn dest(addr: &str, transport: Transport) -> Dest {
        Dest {
            transport,
            addr: addr.parse().unwrap(),
            conn: None,
        }
    }

    #[test]
    fn signed_tokens_verify_for_their_dialog_only() {
        let t = RouteTokens::new([7; 32]);
        for addr in ["127.0.0.1:5062", "[::1]:40000"] {
            for tr in [
                Transport::Udp,
                Transport::Tcp,
                Transport::Tls,
                Transport::Ws,
                Transport::Wss,
            ] {
                let d = dest(addr, tr);
                let tok = t.sign("call-1", "tagA", Some(&d));
                assert!(
                    confab_sip::values::is_token(&tok),
                    "{tok} fits a URI user part"
                );
                assert_eq!(
                    t.verify(&tok, "call-1", ["tagA", ""], 1, NOW),
                    Ok(Verified {
                        flow: Some(d),
                        pool: false
                    })
                );
                // the other party sends with the initiator's tag in To
                assert_eq!(
                    t.verify(&tok, "call-1", ["tagB", "tagA"], 1, NOW),
                    Ok(Verified {
                        flow: Some(d),
                        pool: false
                    })
                );
                assert_eq!(
                    t.verify(&tok, "call-2", ["tagA", "tagA"], 1, NOW),
                    Err(Invalid::BadMac)
                );
                assert_eq!(
                    t.verify(&tok, "call-1", ["x", "y"], 1, NOW),
                    Err(Invalid::BadMac)
                );
            }
        }
        let plain = t.sign("c", "t", None);
        assert_eq!(plain.len(), 3 + MAC_HEX);
        assert_eq!(
            t.verify(&plain, "c", ["t", ""], 1, NOW),
            Ok(Verified {
                flow: None,
                pool: false
            })
        );
    }

    #[test]
    fn pool_tokens_verify_for_their_request_only() {
        let t = RouteTokens::new([7; 32]);
        let d = dest("127.0.0.1:40000", Transport::Tcp);
        let tok = t.sign_pool("call-1", "a", 1, Some(&d), NOW);
        assert!(tok.starts_with("cp-") && confab_sip::values::is_token(&tok));
        assert_eq!(
            t.verify(&tok, "call-1", ["a", "b"], 1, NOW),
            Ok(Verified {
                flow: Some(d),
                pool: true
            })
        );
        assert_eq!(
            t.verify(&tok, "call-2", ["a", "b"], 1, NOW),
            Err(Invalid::BadMac)
        );
        // bound to the request: its From tag, its CSeq number, for a minute
        assert_eq!(
            t.verify(&tok, "call-1", ["x", "a"], 1, NOW),
            Err(Invalid::BadMac)
        );
        assert_eq!(
            t.verify(&tok, "call-1", ["a", "b"], 2, NOW),
            Err(Invalid::BadMac)
        );
        assert!(t
            .verify(&tok, "call-1", ["a", ""], 1, NOW + POOL_TOKEN_TTL_S)
            .is_ok());
        assert_eq!(
            t.verify(&tok, "call-1", ["a", ""], 1, NOW + POOL_TOKEN_TTL_S + 1),
            Err(Invalid::BadMac)
        );
        // the expiry moved on under a valid MAC, or cut short
        let expiry = format!("{:08x}", NOW + POOL_TOKEN_TTL_S);
        let later = tok.replace(&expiry, &format!("{:08x}", NOW + 3600));
        assert_eq!(
            t.verify(&later, "call-1", ["a", ""], 1, NOW),
            Err(Invalid::BadMac)
        );
        let cut = tok.replace(&format!("-{expiry}"), "");
        assert_eq!(
            t.verify(&cut, "call-1", ["a", ""], 1, NOW),
            Err(Invalid::BadMac)
        );
        // a dialog token is no pool token and the other way round
        let rr = t.sign("call-1", "", Some(&d));
        assert_eq!(
            t.verify(&rr.replacen("cf-", "cp-", 1), "call-1", ["", ""], 1, NOW),
            Err(Invalid::BadMac)
        );
        assert_eq!(
            t.verify(&tok.replacen("cp-", "cf-", 1), "call-1", ["", ""], 1, NOW),
            Err(Invalid::BadMac)
        );
        let plain = t.sign_pool("call-1", "", 1, None, NOW);
        assert_eq!(
            t.verify(&plain, "call-1", ["", ""], 1, NOW),
            Ok(Verified {
                flow: None,
                pool: true
            })
        );
        assert_eq!(
            RouteTokens::new([8; 32]).verify(&plain, "call-1", ["", ""], 1, NOW),
            Err(Invalid::BadMac)
        );
    }

    #[test]
    fn forged_and_tampered_tokens_are_refused() {
        let t = RouteTokens::new([7; 32]);
        let other = RouteTokens::new([8; 32]);
        let d = dest("127.0.0.1:5093", Transport::Udp);
        let good = t.sign("c", "t", Some(&d));
        // the old plain-text form, and a token made with another key
        assert_eq!(
            t.verify("cf-u127.0.0.1_5093", "c", ["t", ""], 1, NOW),
            Err(Invalid::BadMac)
        );
        assert_eq!(
            t.verify(&other.sign("c", "t", Some(&d)), "c", ["t", ""], 1, NOW),
            Err(Invalid::BadMac)
        );
        // the flow changed under a valid MAC
        let moved = good.replace("5093", "5094");
        assert_eq!(
            t.verify(&moved, "c", ["t", ""], 1, NOW),
            Err(Invalid::BadMac)
        );
        // a digit of the MAC changed
        let mut b = good.clone().into_bytes();
        b[3] = if b[3] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            t.verify(&String::from_utf8(b).unwrap(), "c", ["t", ""], 1, NOW),
            Err(Invalid::BadMac)
        );
        assert_eq!(
            t.verify("alice", "c", ["t", ""], 1, NOW),
            Err(Invalid::NotAToken)
        );
        assert_eq!(
            t.verify("cf-", "c", ["t", ""], 1, NOW),
            Err(Invalid::BadMac)
        );
        assert_eq!(
            t.verify("cf-ééééééééééééééééééééé", "c", ["t", ""], 1, NOW),
            Err(Invalid::BadMac)
        );
    }
}
