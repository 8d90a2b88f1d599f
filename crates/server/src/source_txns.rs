//! Pending server transactions per source address, so that one address cannot fill the
//! global transaction table (`[limits] max_transactions`): over its share
//! (`max_transactions_per_source`) its new requests get 503 with Retry-After while other
//! addresses are still served. Addresses in `[defence] trusted` (a load balancer, a
//! benchmark client) are not limited.
//!
//! A count per address in 16 sharded maps; an address leaves its map when its count
//! drops to zero, so the table holds at most one entry per pending transaction.

use confab_sip::{response_to, HeaderName, Message};
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use std::net::IpAddr;

const SHARDS: usize = 16;

pub struct SourceTxns {
    shards: Vec<Mutex<FxHashMap<IpAddr, u32>>>,
}

impl Default for SourceTxns {
    fn default() -> Self {
        SourceTxns {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(FxHashMap::default()))
                .collect(),
        }
    }
}

impl SourceTxns {
    fn shard(&self, ip: IpAddr) -> &Mutex<FxHashMap<IpAddr, u32>> {
        let h = match ip {
            IpAddr::V4(v) => u32::from(v) as usize,
            IpAddr::V6(v) => v
                .octets()
                .iter()
                .fold(0usize, |a, b| a.wrapping_mul(31).wrapping_add(*b as usize)),
        };
        &self.shards[h % SHARDS]
    }

    /// Counts one more pending transaction from `ip`, unless it already has `max`.
    pub fn try_add(&self, ip: IpAddr, max: usize) -> bool {
        let mut s = self.shard(ip).lock();
        let n = s.entry(ip).or_insert(0);
        if *n as usize >= max {
            if *n == 0 {
                s.remove(&ip);
            }
            return false;
        }
        *n += 1;
        true
    }

    /// A transaction counted by `try_add` is gone.
    pub fn remove(&self, ip: IpAddr) {
        let mut s = self.shard(ip).lock();
        if let Some(n) = s.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                s.remove(&ip);
            }
        }
    }

    /// Pending transactions of `ip`.
    pub fn get(&self, ip: IpAddr) -> usize {
        self.shard(ip).lock().get(&ip).copied().unwrap_or(0) as usize
    }

    /// Addresses with pending transactions.
    pub fn addresses(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }
}

/// The answer to a request over its address's share: 503 with Retry-After.
pub fn refusal(req: &Message, max: usize, tag: &str) -> Message {
    let mut r = response_to(
        req,
        503,
        Some(&format!(
            "Too many pending requests from this address (limit {max})"
        )),
        Some(tag),
    );
    r.headers.push(HeaderName::RetryAfter, "5");
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_address_up_to_the_share_and_forgets_idle_addresses() {
        let t = SourceTxns::default();
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "::1".parse().unwrap());
        assert!((0..3).all(|_| t.try_add(a, 3)));
        assert!(!t.try_add(a, 3), "over its share");
        assert!(t.try_add(b, 3), "another address is not affected");
        assert_eq!((t.get(a), t.get(b)), (3, 1));
        t.remove(a);
        assert!(t.try_add(a, 3));
        for _ in 0..3 {
            t.remove(a);
        }
        t.remove(b);
        assert_eq!(t.addresses(), 0, "no entry is left behind");
        assert!(!t.try_add(a, 0));
        assert_eq!(t.addresses(), 0);
        t.remove(a); // unknown: nothing happens
    }
}
