//! What a request says about its client, believed only as far as the
//! configured proxies vouch for it.
//!
//! `X-Forwarded-For`/`-Proto`/`-Host` and `Forwarded` (RFC 7239) are plain
//! request headers: any client can send them. They are read only when the
//! TCP peer is one of `trusted_proxies` (default none); otherwise the client
//! is the peer, the scheme is the listener's and the host is `Host`. Every
//! use of the client's address (sign-in throttling), scheme (HSTS, `Secure`
//! and `__Host-` cookies) and host (same-origin checks) goes through
//! [`client`]; actix-web's own `connection_info()` believes the headers from
//! anyone and is not used.

use std::net::{IpAddr, Ipv6Addr};

use actix_web::http::header;
use actix_web::HttpRequest;

/// One trusted address or network (`10.0.0.1`, `10.0.0.0/8`, `::1`, `fd00::/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Net {
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    fn parse(text: &str) -> Option<Net> {
        let (a, p) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = a.trim().parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.trim().parse::<u8>().ok().filter(|p| *p <= max)?,
            None => max,
        };
        Some(Net { addr, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        fn bits(ip: IpAddr) -> (u128, u32) {
            match ip {
                IpAddr::V4(v) => (u128::from(u32::from(v)), 32),
                IpAddr::V6(v) => (u128::from(v), 128),
            }
        }
        let ip = match ip {
            IpAddr::V6(v) => v.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        let ((a, wa), (b, wb)) = (bits(self.addr), bits(ip));
        if wa != wb {
            return false;
        }
        let shift = wa - u32::from(self.prefix);
        shift >= wa || (a >> shift) == (b >> shift)
    }
}

/// The proxies whose forwarded headers are believed (`HEALTHCARD_TRUSTED_PROXIES`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Net>);

impl TrustedProxies {
    /// A comma- or space-separated list of addresses and CIDR networks.
    pub fn parse(text: &str) -> Result<TrustedProxies, String> {
        Self::parse_all(text.split([',', ' ']).filter(|s| !s.trim().is_empty()))
    }

    pub fn parse_all<'a>(
        items: impl IntoIterator<Item = &'a str>,
    ) -> Result<TrustedProxies, String> {
        items
            .into_iter()
            .map(|i| Net::parse(i).ok_or_else(|| format!("not an address or network: {i:?}")))
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The client of a request, as far as it can be believed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// The client's address: the peer, or the first untrusted hop a trusted proxy names.
    pub ip: IpAddr,
    /// Whether the client's connection is HTTPS (ours, or the trusted proxy's).
    pub https: bool,
    /// The host the client asked for (`Host`, or a trusted proxy's forwarded host).
    pub host: Option<String>,
}

impl Client {
    /// The key under which sign-in failures of this client are counted:
    /// its IPv4 address, or its IPv6 /64 (one subscriber usually holds a
    /// whole /64, so single IPv6 addresses cost an attacker nothing).
    pub fn source_key(&self) -> String {
        match self.ip {
            IpAddr::V4(v) => v.to_string(),
            IpAddr::V6(v) => {
                let s = v.segments();
                let net = Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
                format!("{net}/64")
            }
        }
    }
}

fn header_str<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// A `for=` or `X-Forwarded-For` node: an address, maybe quoted, bracketed
/// or with a port; obfuscated identifiers and `unknown` are not addresses.
fn node_ip(text: &str) -> Option<IpAddr> {
    let t = text.trim().trim_matches('"');
    if let Ok(ip) = t.parse() {
        return Some(ip);
    }
    if let Some(rest) = t.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    t.rsplit_once(':').and_then(|(a, _)| a.parse().ok())
}

/// One `Forwarded` element's `for`, `proto` and `host`.
#[derive(Default)]
struct Element {
    for_ip: Option<IpAddr>,
    proto: Option<String>,
    host: Option<String>,
}

fn forwarded(value: &str) -> Vec<Element> {
    value
        .split(',')
        .map(|el| {
            let mut e = Element::default();
            for pair in el.split(';') {
                let Some((k, v)) = pair.split_once('=') else {
                    continue;
                };
                let v = v.trim().trim_matches('"');
                match k.trim().to_ascii_lowercase().as_str() {
                    "for" => e.for_ip = node_ip(v),
                    "proto" => e.proto = Some(v.to_ascii_lowercase()),
                    "host" => e.host = Some(v.to_string()),
                    _ => {}
                }
            }
            e
        })
        .collect()
}

/// The index of the client in a chain of hops (nearest last): the rightmost
/// hop that is not a trusted proxy, or the leftmost when all are trusted.
fn client_index(hops: &[Option<IpAddr>], trusted: &TrustedProxies) -> Option<usize> {
    if hops.is_empty() {
        return None;
    }
    for (i, h) in hops.iter().enumerate().rev() {
        match h {
            Some(ip) if trusted.contains(*ip) => continue,
            _ => return Some(i),
        }
    }
    Some(0)
}

/// Who the client of `req` is. Trusted proxies are read from the app's data
/// ([`TrustedProxies`] registered by `startup`); none registered means none trusted.
pub fn client(req: &HttpRequest) -> Client {
    let trusted = req
        .app_data::<actix_web::web::Data<TrustedProxies>>()
        .map(|t| t.get_ref().clone())
        .unwrap_or_default();
    client_with(req, &trusted)
}

/// As [`client`], with the trusted proxies given.
pub fn client_with(req: &HttpRequest, trusted: &TrustedProxies) -> Client {
    let peer = req
        .peer_addr()
        .map(|a| a.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let direct = Client {
        ip: peer,
        https: req.app_config().secure(),
        host: header_str(req, header::HOST.as_str()).map(str::to_string),
    };
    if !trusted.contains(peer) {
        return direct;
    }
    if let Some(value) = header_str(req, "forwarded") {
        let els = forwarded(value);
        let hops: Vec<Option<IpAddr>> = els.iter().map(|e| e.for_ip).collect();
        if let Some(i) = client_index(&hops, trusted) {
            let e = &els[i];
            return Client {
                ip: e.for_ip.unwrap_or(peer),
                https: e.proto.as_deref().map_or(direct.https, |p| p == "https"),
                host: e.host.clone().or(direct.host),
            };
        }
    }
    let hops: Vec<Option<IpAddr>> = header_str(req, "x-forwarded-for")
        .map(|v| v.split(',').map(node_ip).collect())
        .unwrap_or_default();
    let first = |name: &str| {
        header_str(req, name)
            .and_then(|v| v.split(',').next())
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    Client {
        ip: client_index(&hops, trusted)
            .and_then(|i| hops[i])
            .unwrap_or(peer),
        https: first("x-forwarded-proto").map_or(direct.https, |p| p.eq_ignore_ascii_case("https")),
        host: first("x-forwarded-host").or(direct.host),
    }
}

/// The name a cookie has on this request's scheme: `__Host-` + `base` over
/// HTTPS (the browser then insists on `Secure`, `Path=/` and no `Domain`, so
/// neither a sibling domain nor a plain-HTTP page can plant or overwrite it),
/// the plain `base` over plain HTTP (local development on
/// `http://127.0.0.1`, where a browser refuses `Secure` cookies).
pub fn cookie_name(https: bool, base: &str) -> String {
    if https {
        format!("__Host-{base}")
    } else {
        base.to_string()
    }
}

/// The request's cookie `base` under its scheme's name: over HTTPS only the
/// `__Host-` one is read, so a plain-named cookie planted by someone else is
/// ignored.
pub fn cookie(req: &HttpRequest, base: &str) -> Option<String> {
    let name = cookie_name(client(req).https, base);
    req.cookie(&name).map(|c| c.value().to_string())
}

/// What a request's `Origin` header says about where it was sent from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// No `Origin` header (a non-browser client, or a same-origin GET).
    Absent,
    /// It names the host the request was sent to ([`client`]'s host, scheme aside).
    Same,
    /// Another site, `null`, or a header that cannot be read.
    Foreign,
}

/// The one comparison of `Origin` with the request's host. The callers
/// decide what [`Origin::Absent`] is worth: a cookie-authenticated API
/// change refuses it (the origin is its only proof), a portal form accepts
/// it (its CSRF token, bound to a cookie, is the proof; see docs/security.md).
pub fn origin(req: &HttpRequest) -> Origin {
    let Some(value) = req.headers().get(header::ORIGIN) else {
        return Origin::Absent;
    };
    let same = value
        .to_str()
        .ok()
        .zip(client(req).host)
        .is_some_and(|(o, h)| {
            o.split_once("://")
                .is_some_and(|(_, rest)| rest.trim_end_matches('/').eq_ignore_ascii_case(&h))
        });
    if same {
        Origin::Same
    } else {
        Origin::Foreign
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn req(peer: &str, headers: &[(&str, &str)]) -> HttpRequest {
        let mut r = TestRequest::default()
            .peer_addr(peer.parse().unwrap())
            .insert_header(("host", "card.example"));
        for h in headers {
            r = r.insert_header(*h);
        }
        r.to_http_request()
    }

    #[test]
    fn networks_parse_and_match() {
        let t = TrustedProxies::parse("10.0.0.0/8, 192.168.1.7 ::1,fd00::/8").unwrap();
        for yes in [
            "10.1.2.3",
            "192.168.1.7",
            "::1",
            "fd12::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(t.contains(yes.parse().unwrap()), "{yes}");
        }
        for no in ["11.0.0.1", "192.168.1.8", "::2", "fe80::1"] {
            assert!(!t.contains(no.parse().unwrap()), "{no}");
        }
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("localhost").is_err());
        assert!(TrustedProxies::parse("").unwrap().is_empty());
        assert!(TrustedProxies::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
    }

    #[test]
    fn forwarded_headers_from_an_untrusted_peer_change_nothing() {
        let r = req(
            "203.0.113.9:5000",
            &[
                ("x-forwarded-for", "1.2.3.4"),
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "evil.example"),
                ("forwarded", "for=1.2.3.4;proto=https;host=evil.example"),
            ],
        );
        let t = TrustedProxies::parse("10.0.0.1").unwrap();
        let c = client_with(&r, &t);
        assert_eq!(c.ip, "203.0.113.9".parse::<IpAddr>().unwrap());
        assert!(!c.https);
        assert_eq!(c.host.as_deref(), Some("card.example"));
    }

    #[test]
    fn a_trusted_proxy_is_believed_up_to_the_first_untrusted_hop() {
        let t = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let r = req(
            "10.0.0.1:5000",
            &[
                ("x-forwarded-for", "6.6.6.6, 198.51.100.4, 10.0.0.2"),
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "hc.example"),
            ],
        );
        let c = client_with(&r, &t);
        assert_eq!(
            c.ip,
            "198.51.100.4".parse::<IpAddr>().unwrap(),
            "6.6.6.6 is the client's own claim"
        );
        assert!(c.https);
        assert_eq!(c.host.as_deref(), Some("hc.example"));
        let r = req(
            "10.0.0.1:5000",
            &[(
                "forwarded",
                "for=6.6.6.6, for=\"[2001:db8::5]:443\";proto=https;host=hc.example, for=10.0.0.3;proto=http",
            )],
        );
        let c = client_with(&r, &t);
        assert_eq!(c.ip, "2001:db8::5".parse::<IpAddr>().unwrap());
        assert!(c.https);
        assert_eq!(c.host.as_deref(), Some("hc.example"));
        assert_eq!(c.source_key(), "2001:db8::/64");
    }

    #[test]
    fn host_cookies_only_over_https() {
        assert_eq!(cookie_name(true, "hc_session"), "__Host-hc_session");
        assert_eq!(cookie_name(false, "hc_session"), "hc_session");
    }

    #[test]
    fn origin_is_compared_with_the_host_it_was_sent_to() {
        let peer = "203.0.113.9:4000";
        assert_eq!(origin(&req(peer, &[])), Origin::Absent);
        for same in ["https://card.example", "http://CARD.example/"] {
            assert_eq!(
                origin(&req(peer, &[("origin", same)])),
                Origin::Same,
                "{same}"
            );
        }
        for foreign in [
            "https://evil.example",
            "https://card.example.evil.example",
            "https://card.example:8443",
            "null",
            "card.example",
        ] {
            assert_eq!(
                origin(&req(peer, &[("origin", foreign)])),
                Origin::Foreign,
                "{foreign}"
            );
        }
    }
}
