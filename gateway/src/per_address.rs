//! Limits per client address, so that one client cannot exhaust what all clients share: open
//! connections, the rate of hellos, and (in the hub) the dialogues held.
//!
//! The address is the TCP peer's, or, when `SWITCHBOARD_GATEWAY_CLIENT_IP_HEADER` names a
//! header set by a trusted proxy in front of the gateway (e.g. `X-Forwarded-For`), the last
//! address in that header.

use axum::http::HeaderMap;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Mutex;

/// Open connections and the hello rate, per address.
pub(crate) struct PerAddress {
    open: Mutex<HashMap<IpAddr, usize>>,
    max_open: usize,
    hellos: DefaultKeyedRateLimiter<IpAddr>,
}

impl PerAddress {
    /// At most `max_open` connections per address; hellos at `hello_rate` per second with
    /// bursts of `hello_burst`.
    pub(crate) fn new(max_open: usize, hello_rate: f64, hello_burst: u32) -> PerAddress {
        let burst = NonZeroU32::new(hello_burst.max(1)).unwrap_or(NonZeroU32::MIN);
        let period = std::time::Duration::from_secs_f64(1.0 / hello_rate.max(0.001));
        let quota = Quota::with_period(period).unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN)).allow_burst(burst);
        PerAddress { open: Mutex::new(HashMap::new()), max_open, hellos: RateLimiter::keyed(quota) }
    }

    /// Takes a connection slot for `ip`; `false` when it holds as many as it may.
    pub(crate) fn try_open(&self, ip: IpAddr) -> bool {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= self.max_open {
            return false;
        }
        *n += 1;
        true
    }

    /// Gives a slot back.
    pub(crate) fn close(&self, ip: IpAddr) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&ip);
            }
        }
    }

    /// Whether `ip` may send another hello now.
    pub(crate) fn allow_hello(&self, ip: IpAddr) -> bool {
        let allowed = self.hellos.check_key(&ip).is_ok();
        if self.hellos.len() > 100_000 {
            self.hellos.retain_recent();
        }
        allowed
    }
}

/// The client's address: the last entry of `header` when one is configured and present and
/// parses, else the peer's.
pub(crate) fn client_ip(peer: SocketAddr, headers: &HeaderMap, header: Option<&str>) -> IpAddr {
    header
        .and_then(|name| headers.get(name))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|last| last.trim().parse::<IpAddr>().ok())
        .unwrap_or_else(|| peer.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_cannot_take_every_slot() {
        let limits = PerAddress::new(2, 1.0, 1);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(limits.try_open(a));
        assert!(limits.try_open(a));
        assert!(!limits.try_open(a), "third connection of one address");
        assert!(limits.try_open(b), "another address still gets in");
        limits.close(a);
        assert!(limits.try_open(a), "a closed slot is free again");
    }

    #[test]
    fn hellos_are_rate_limited_per_address() {
        let limits = PerAddress::new(10, 0.01, 3);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!((0..10).filter(|_| limits.allow_hello(a)).count(), 3);
        assert!(limits.allow_hello(b));
    }

    #[test]
    fn the_proxy_header_is_used_only_when_configured() {
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "1.2.3.4, 5.6.7.8".parse().unwrap());
        assert_eq!(client_ip(peer, &headers, None), peer.ip());
        assert_eq!(client_ip(peer, &headers, Some("x-forwarded-for")), "5.6.7.8".parse::<IpAddr>().unwrap());
        headers.insert("x-forwarded-for", "garbage".parse().unwrap());
        assert_eq!(client_ip(peer, &headers, Some("x-forwarded-for")), peer.ip());
    }
}
