//! The client address of an ingest request behind proxies (SPEC §15): the per-client budget
//! (`ratelimit`), the logs and abuse monitoring all key on it. Off by default: with no
//! `server.trusted_proxies` the TCP peer (or the PROXY protocol source, `server/proxy.rs`) is
//! the client, and `X-Forwarded-For` is never read, so a client cannot pick its own budget.
//!
//! With trusted proxies, a request whose peer is one of them is attributed to the right-most
//! `X-Forwarded-For` entry that is not itself trusted: every entry right of it was appended by
//! a proxy we trust, everything left of it was written by the client and may be forged. When
//! all entries are trusted, the left-most one is the client. An entry that is not an address
//! ends the walk: the last trusted address before it is the client.

use std::net::IpAddr;

use hyper::header::HeaderMap;
use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `server.trusted_proxies`: CIDRs (IPv4 and IPv6); a bare address means just that address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    /// The networks whose connections may name a client in `X-Forwarded-For`.
    nets: Vec<IpNet>,
}

impl TrustedProxies {
    /// Parses `10.0.0.0/8`, `2001:db8::/32`, or a bare address (a /32 or /128).
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<TrustedProxies, String> {
        let nets = items
            .iter()
            .map(|item| {
                let s = item.as_ref().trim();
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map(|n| n.trunc())
                    .map_err(|_| format!("{s:?} is not a CIDR (e.g. 10.0.0.0/8) or an IP address"))
            })
            .collect::<Result<_, _>>()?;
        Ok(TrustedProxies { nets })
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// The client of a request that arrived from `peer` with `headers`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if self.nets.is_empty() || !self.trusts(peer) {
            return peer;
        }
        let mut client = peer;
        // Several X-Forwarded-For headers form one list, in order (RFC 9110 §5.3).
        for value in headers.get_all("x-forwarded-for").iter().rev() {
            let Ok(value) = value.to_str() else {
                return client;
            };
            for entry in value.rsplit(',') {
                let Some(ip) = parse_entry(entry) else {
                    return client;
                };
                client = ip;
                if !self.trusts(ip) {
                    return ip;
                }
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, optionally with a port (`1.2.3.4:5`, `[::1]:5`).
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
        .map(|ip| ip.to_canonical())
}

impl<'de> Deserialize<'de> for TrustedProxies {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let items = Vec::<String>::deserialize(d)?;
        TrustedProxies::parse(&items).map_err(serde::de::Error::custom)
    }
}

impl Serialize for TrustedProxies {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.nets.iter().map(|n| n.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(trusted: &[&str], peer: &str, xff: &[&str]) -> String {
        let mut headers = HeaderMap::new();
        for v in xff {
            headers.append("x-forwarded-for", v.parse().unwrap());
        }
        let t = TrustedProxies::parse(trusted).unwrap();
        t.client(peer.parse().unwrap(), &headers).to_string()
    }

    #[test]
    fn right_most_untrusted_entry_is_the_client() {
        let lb = &["10.0.0.0/8", "2001:db8::/32"];
        assert_eq!(
            client(lb, "10.1.1.1", &["6.6.6.6, 1.2.3.4, 10.9.9.9"]),
            "1.2.3.4"
        );
        assert_eq!(
            client(lb, "10.1.1.1", &["6.6.6.6", "1.2.3.4", "10.2.2.2"]),
            "1.2.3.4"
        );
        assert_eq!(
            client(lb, "2001:db8::1", &["[2001:db9::7]:443"]),
            "2001:db9::7"
        );
        assert_eq!(client(lb, "10.1.1.1", &["1.2.3.4:5678"]), "1.2.3.4");
    }

    #[test]
    fn untrusted_peers_and_empty_config_ignore_the_header() {
        assert_eq!(
            client(&["10.0.0.0/8"], "192.0.2.1", &["1.2.3.4"]),
            "192.0.2.1"
        );
        assert_eq!(client(&[], "10.1.1.1", &["1.2.3.4"]), "10.1.1.1");
        assert_eq!(client(&["10.0.0.0/8"], "10.1.1.1", &[]), "10.1.1.1");
    }

    #[test]
    fn all_trusted_is_the_left_most_and_garbage_stops_the_walk() {
        let t = &["10.0.0.0/8"];
        assert_eq!(client(t, "10.1.1.1", &["10.3.3.3, 10.2.2.2"]), "10.3.3.3");
        assert_eq!(
            client(t, "10.1.1.1", &["1.2.3.4, nonsense, 10.2.2.2"]),
            "10.2.2.2"
        );
        assert_eq!(client(t, "10.1.1.1", &["unknown"]), "10.1.1.1");
    }

    #[test]
    fn mapped_addresses_and_bare_ips() {
        assert_eq!(
            client(&["10.0.0.1"], "::ffff:10.0.0.1", &["1.2.3.4"]),
            "1.2.3.4"
        );
        assert_eq!(client(&["10.0.0.1"], "10.0.0.2", &["1.2.3.4"]), "10.0.0.2");
        assert!(TrustedProxies::parse(&["10.0.0.0/33"]).is_err());
        assert!(TrustedProxies::parse(&["example.com"]).is_err());
    }
}
