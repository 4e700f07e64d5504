//! The URL under load, parsed once into what a raw connection needs (socket address, `Host`
//! header, origin-form path for HTTP/1.1, the absolute URI for HTTP/2, whether TLS is on). Only loopback targets are accepted: this tool must never
//! be pointed at a machine other than the one it runs on.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use hyper::header::HeaderValue;
use hyper::Uri;

/// A parsed, loopback-only target.
#[derive(Clone, Debug)]
pub struct Target {
    /// Where to connect.
    pub addr: SocketAddr,
    /// `Host` header (hyper's low-level client does not add one).
    pub host: HeaderValue,
    /// Origin-form request target, including `?token=` when the token goes in the query.
    pub path: Uri,
    /// The same as an absolute URI: HTTP/2 sends scheme and authority as pseudo-headers.
    pub absolute: Uri,
    /// `https://`: connect with TLS.
    pub tls: bool,
    /// The host name to verify the certificate against.
    pub server_name: String,
    /// The URL as given, for the report (the query token is not echoed).
    pub display: String,
}

/// Why a target URL was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum TargetError {
    /// Not an absolute `http://host[:port]/path` URL.
    Invalid(String),
    /// Anything but `http` and `https`.
    Scheme(String),
    /// Host is not loopback (`127.0.0.0/8`, `::1`, `localhost`).
    NotLoopback(String),
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(u) => write!(f, "not an absolute http(s) URL: {u}"),
            Self::Scheme(s) => write!(f, "scheme {s:?} not supported (http or https only)"),
            Self::NotLoopback(h) => {
                write!(
                    f,
                    "refusing non-loopback host {h:?}: only 127.0.0.0/8, [::1] and localhost"
                )
            }
        }
    }
}

impl std::error::Error for TargetError {}

impl Target {
    /// Parses `url`; `query_token` is appended as `token=<value>` to the query.
    pub fn parse(url: &str, query_token: Option<&str>) -> Result<Self, TargetError> {
        let uri: Uri = url
            .parse()
            .map_err(|_| TargetError::Invalid(url.to_string()))?;
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            Some(other) => return Err(TargetError::Scheme(other.to_string())),
            None => return Err(TargetError::Invalid(url.to_string())),
        };
        let auth = uri
            .authority()
            .ok_or_else(|| TargetError::Invalid(url.to_string()))?;
        if auth.as_str().contains('@') {
            return Err(TargetError::Invalid(url.to_string()));
        }
        let host = auth.host();
        let ip = loopback_ip(host).ok_or_else(|| TargetError::NotLoopback(host.to_string()))?;
        let port = auth.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let mut path = uri.path().to_string();
        if path.is_empty() {
            path.push('/');
        }
        let mut query: Vec<String> = uri.query().map(|q| vec![q.to_string()]).unwrap_or_default();
        if let Some(token) = query_token {
            query.push(format!("token={}", percent_encode(token)));
        }
        if !query.is_empty() {
            path = format!("{path}?{}", query.join("&"));
        }
        let scheme = if tls { "https" } else { "http" };
        let absolute: Uri = format!("{scheme}://{}{path}", auth.as_str())
            .parse()
            .map_err(|_| TargetError::Invalid(url.to_string()))?;
        let path: Uri = path
            .parse()
            .map_err(|_| TargetError::Invalid(url.to_string()))?;
        let host = HeaderValue::from_str(auth.as_str())
            .map_err(|_| TargetError::Invalid(url.to_string()))?;
        Ok(Target {
            addr: SocketAddr::new(ip, port),
            host,
            path,
            absolute,
            tls,
            server_name: host_name(auth.host()).to_string(),
            display: url.to_string(),
        })
    }
}

/// `[::1]` -> `::1`: rustls wants the bare address.
fn host_name(host: &str) -> &str {
    host.trim_start_matches('[').trim_end_matches(']')
}

fn loopback_ip(host: &str) -> Option<IpAddr> {
    if host.eq_ignore_ascii_case("localhost") {
        return Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = bare.parse().ok()?;
    ip.is_loopback().then_some(ip)
}

/// Tokens are base62 in practice; anything else is escaped so the request line stays valid.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_only() {
        assert!(Target::parse("http://127.0.0.1:8080/api/v1/write", None).is_ok());
        assert!(Target::parse("http://127.3.4.5:1/", None).is_ok());
        assert!(Target::parse("http://localhost:3000/v1/traces", None).is_ok());
        assert!(Target::parse("http://[::1]:9/x", None).is_ok());
        for bad in [
            "http://10.0.0.1/",
            "http://192.168.1.1:80/",
            "http://example.com/",
            "http://8.8.8.8/",
        ] {
            assert!(
                matches!(Target::parse(bad, None), Err(TargetError::NotLoopback(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            Target::parse("ftp://127.0.0.1/", None),
            Err(TargetError::Scheme(_))
        ));
        let t = Target::parse("https://localhost/v1/traces", None).unwrap();
        assert!(t.tls);
        assert_eq!(t.addr.port(), 443);
        assert_eq!(t.server_name, "localhost");
        assert_eq!(t.absolute, "https://localhost/v1/traces");
        assert!(Target::parse("127.0.0.1:80/x", None).is_err());
        assert!(Target::parse("http://user:pw@127.0.0.1/x", None).is_err());
    }

    #[test]
    fn path_host_and_query_token() {
        let t = Target::parse("http://localhost:3000/v1/traces?x=1", Some("ab c")).unwrap();
        assert_eq!(t.addr, "127.0.0.1:3000".parse().unwrap());
        assert_eq!(t.host, "localhost:3000");
        assert_eq!(t.path, "/v1/traces?x=1&token=ab%20c");
        let t = Target::parse("http://127.0.0.1", None).unwrap();
        assert_eq!(t.path, "/");
        assert_eq!(t.addr.port(), 80);
    }
}
