//! The client a request comes from, as rate limits count it: the socket peer, or, when the peer
//! is a trusted proxy, the rightmost `X-Forwarded-For` hop that is not one. IPv6 addresses
//! count by their /64 (one subscriber usually has a whole /64).

use std::net::IpAddr;

use actix_web::HttpRequest;
use ipnet::IpNet;

/// The rate-limit key of the client of `req`.
pub fn client_key(req: &HttpRequest, trusted_proxies: &[IpNet]) -> String {
    let trusted = |ip: &IpAddr| trusted_proxies.iter().any(|net| net.contains(ip));
    let mut client = req.peer_addr().map(|a| canonical(a.ip()));
    if client.as_ref().is_some_and(trusted) {
        let hops: Vec<IpAddr> = req
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|hop| hop.trim().parse::<IpAddr>().map(canonical))
            .collect::<Result<_, _>>()
            .unwrap_or_default();
        for hop in hops.into_iter().rev() {
            client = Some(hop);
            if !trusted(&hop) {
                break;
            }
        }
    }
    match client {
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        None => "unknown".into(),
    }
}

/// IPv4 addresses written as IPv6 (`::ffff:a.b.c.d`) count as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn key(peer: &str, xff: Option<&str>, trusted: &[&str]) -> String {
        let mut req = TestRequest::default().peer_addr(peer.parse().unwrap());
        if let Some(xff) = xff {
            req = req.insert_header(("x-forwarded-for", xff));
        }
        let trusted: Vec<IpNet> = trusted.iter().map(|t| t.parse().unwrap()).collect();
        client_key(&req.to_http_request(), &trusted)
    }

    #[test]
    fn the_peer_counts_unless_it_is_a_trusted_proxy() {
        assert_eq!(key("203.0.113.9:5000", Some("198.51.100.1"), &[]), "203.0.113.9", "untrusted peer: header ignored");
        assert_eq!(key("10.0.0.2:5000", Some("198.51.100.1"), &["10.0.0.0/8"]), "198.51.100.1");
        // The rightmost hop that is not a trusted proxy; what the client wrote on the left is ignored.
        assert_eq!(key("10.0.0.2:5000", Some("1.1.1.1, 198.51.100.1, 10.0.0.7"), &["10.0.0.0/8"]), "198.51.100.1");
        assert_eq!(key("10.0.0.2:5000", Some("not-an-ip"), &["10.0.0.0/8"]), "10.0.0.2");
        assert_eq!(key("10.0.0.2:5000", None, &["10.0.0.0/8"]), "10.0.0.2");
    }

    #[test]
    fn ipv6_counts_by_its_64() {
        assert_eq!(key("[2001:db8:1:2:aaaa::1]:5000", None, &[]), "2001:db8:1:2::/64");
        assert_eq!(key("[2001:db8:1:2:bbbb::9]:5000", None, &[]), "2001:db8:1:2::/64");
        assert_eq!(key("[::ffff:192.0.2.7]:5000", None, &[]), "192.0.2.7");
    }
}
