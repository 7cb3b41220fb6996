//! Where a request's client address comes from, and how addresses are grouped for limits.
//!
//! The address is the TCP peer, unless the peer is one of the operator's trusted proxies
//! (`TRUSTED_PROXIES`, off by default): only then is the client address read from
//! `CLIENT_IP_HEADER`. Any client can send `cf-connecting-ip` or `x-forwarded-for`, so honouring
//! them from anyone else would let each guess of a PIN come from a new "address".
//!
//! Limits count per [`bucket`]: an IPv4 address, or an IPv6 /64 (one subscriber usually holds a
//! whole /64, so counting single IPv6 addresses would let them rotate for free).

use axum::http::HeaderMap;
use ipnet::IpNet;
use std::net::IpAddr;
use std::str::FromStr;

/// The proxies whose client-address header is believed: addresses or CIDR blocks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }
}

impl FromStr for TrustedProxies {
    type Err = String;

    /// `10.0.0.0/8, 192.0.2.7, 2001:db8::/32`; empty: no proxy is trusted.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("{entry:?} is not an IP address or CIDR block"))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }
}

/// The client address of a request that came from `peer`: `header` (lower-case) is read only when
/// `peer` is a trusted proxy. `x-forwarded-for` is read right to left, skipping further trusted
/// proxies, so addresses a client put in front of the list are never believed; any other header
/// (`cf-connecting-ip`, `x-real-ip`) holds one address. A missing or malformed header falls back
/// to the peer.
pub fn client_ip(
    peer: IpAddr,
    headers: &HeaderMap,
    trusted: &TrustedProxies,
    header: &str,
) -> IpAddr {
    let peer = canonical(peer);
    if !trusted.trusts(peer) {
        return peer;
    }
    let Some(value) = headers.get(header).and_then(|v| v.to_str().ok()) else {
        return peer;
    };
    let parse = |s: &str| s.trim().parse::<IpAddr>().ok().map(canonical);
    if header == "x-forwarded-for" {
        let mut hops = value.rsplit(',');
        hops.find_map(|hop| parse(hop).filter(|ip| !trusted.trusts(*ip)))
            .unwrap_or(peer)
    } else {
        parse(value).unwrap_or(peer)
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:203.0.113.9`, what a dual-stack socket reports) is the
/// IPv4 address it carries.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The group of addresses a limit counts together: the IPv4 address (/32) or the IPv6 /64.
pub fn bucket(ip: IpAddr) -> IpNet {
    let ip = canonical(ip);
    let prefix = if ip.is_ipv4() { 32 } else { 64 };
    IpNet::new(ip, prefix)
        .expect("32 and 64 are valid prefix lengths")
        .trunc()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(name: &'static str, value: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(name, HeaderValue::from_str(value).unwrap());
        map
    }

    #[test]
    fn ipv6_clients_are_grouped_by_their_64_and_ipv4_by_address() {
        assert_eq!(
            bucket(ip("2001:db8:1:2::1")),
            bucket(ip("2001:db8:1:2:ffff::9"))
        );
        assert_eq!(
            bucket(ip("2001:db8:1:2::1")).to_string(),
            "2001:db8:1:2::/64"
        );
        assert_ne!(bucket(ip("2001:db8:1:2::1")), bucket(ip("2001:db8:1:3::1")));
        assert_eq!(bucket(ip("203.0.113.9")).to_string(), "203.0.113.9/32");
        assert_eq!(bucket(ip("::ffff:203.0.113.9")), bucket(ip("203.0.113.9")));
    }

    #[test]
    fn proxies_are_addresses_or_blocks_and_none_by_default() {
        let trusted: TrustedProxies = " 10.0.0.0/8, 192.0.2.7 ,2001:db8::/32".parse().unwrap();
        assert!(trusted.trusts(ip("10.1.2.3")));
        assert!(trusted.trusts(ip("::ffff:10.1.2.3")));
        assert!(trusted.trusts(ip("192.0.2.7")));
        assert!(!trusted.trusts(ip("192.0.2.8")));
        assert!(trusted.trusts(ip("2001:db8:ff::1")));
        assert_eq!("".parse::<TrustedProxies>(), Ok(TrustedProxies::default()));
        assert!("10.0.0.0/33".parse::<TrustedProxies>().is_err());
        assert!("proxy.local".parse::<TrustedProxies>().is_err());
    }

    #[test]
    fn headers_are_believed_only_from_trusted_proxies() {
        let none = TrustedProxies::default();
        let spoofed = headers("cf-connecting-ip", "198.51.100.1");
        assert_eq!(
            client_ip(ip("203.0.113.5"), &spoofed, &none, "cf-connecting-ip"),
            ip("203.0.113.5")
        );
        let proxy: TrustedProxies = "127.0.0.1".parse().unwrap();
        assert_eq!(
            client_ip(ip("127.0.0.1"), &spoofed, &proxy, "cf-connecting-ip"),
            ip("198.51.100.1")
        );
        assert_eq!(
            client_ip(ip("203.0.113.5"), &spoofed, &proxy, "cf-connecting-ip"),
            ip("203.0.113.5"),
            "a client that is not the proxy"
        );
        let junk = headers("cf-connecting-ip", "not an address");
        assert_eq!(
            client_ip(ip("127.0.0.1"), &junk, &proxy, "cf-connecting-ip"),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn forwarded_for_is_read_from_the_right_past_trusted_hops() {
        let proxies: TrustedProxies = "127.0.0.1, 10.0.0.0/8".parse().unwrap();
        let chain = headers("x-forwarded-for", "6.6.6.6, 198.51.100.1, 10.0.0.2");
        assert_eq!(
            client_ip(ip("127.0.0.1"), &chain, &proxies, "x-forwarded-for"),
            ip("198.51.100.1"),
            "the client's own claim (6.6.6.6) is not believed"
        );
        let only_proxies = headers("x-forwarded-for", "10.0.0.3");
        assert_eq!(
            client_ip(ip("127.0.0.1"), &only_proxies, &proxies, "x-forwarded-for"),
            ip("127.0.0.1")
        );
    }
}
