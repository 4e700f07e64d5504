//! The grammar shared by patterns and `Origin` headers: taking `scheme://host[:port]` apart,
//! canonicalizing the host the way browsers do, and the allocation-free fast path for the
//! serialized origins browsers send.

use std::ops::Range;

use url::Host;

use super::{OriginError, PatternHost, Scheme};

/// Which grammar applies: the two differ only in `*` and the trailing `/`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    /// An operator entry: `*` labels and a trailing `/` allowed.
    Pattern,
    /// An `Origin` header: neither.
    Request,
}

/// `scheme://host[:port]` taken apart; the host is still raw text.
pub(super) struct Parts<'a> {
    /// The scheme, case-folded.
    pub(super) scheme: Scheme,
    /// The host as written, not yet canonical.
    pub(super) host: &'a str,
    /// Effective port (default filled in).
    pub(super) port: u16,
}

/// Takes `scheme://host[:port]` apart, refusing everything else with its specific reason.
pub(super) fn split(s: &str, side: Side) -> Result<Parts<'_>, OriginError> {
    if s.is_empty() {
        return Err(OriginError::Empty);
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(OriginError::Whitespace);
    }
    if s.eq_ignore_ascii_case("null") {
        return Err(OriginError::Null);
    }
    if s == "*" {
        return Err(OriginError::BareWildcard);
    }
    let (scheme, rest) = s.split_once("://").ok_or(OriginError::MissingScheme)?;
    let scheme = if scheme.eq_ignore_ascii_case("https") {
        Scheme::Https
    } else if scheme.eq_ignore_ascii_case("http") {
        Scheme::Http
    } else if scheme.contains('*') {
        return Err(OriginError::WildcardInScheme);
    } else if scheme.is_empty() {
        return Err(OriginError::MissingScheme);
    } else if super::app::is_app_scheme(scheme) {
        return Err(OriginError::AppIdentityOnWebToken);
    } else {
        return Err(OriginError::UnsupportedScheme);
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at_checked(end).unwrap_or((rest, ""));
    check_tail(tail, side)?;
    if authority.contains('@') {
        return Err(OriginError::Userinfo);
    }
    let (host, port) = split_host_port(authority)?;
    let port = match port {
        Some(port) => parse_port(port)?,
        None => scheme.default_port(),
    };
    if host.is_empty() {
        return Err(OriginError::EmptyHost);
    }
    Ok(Parts { scheme, host, port })
}

/// Whatever follows the authority: nothing, or (patterns only) a lone `/`.
fn check_tail(tail: &str, side: Side) -> Result<(), OriginError> {
    let path_end = tail.find(['?', '#']).unwrap_or(tail.len());
    let (path, after) = tail.split_at_checked(path_end).unwrap_or((tail, ""));
    if path.len() > 1 || (path == "/" && side == Side::Request) {
        return Err(OriginError::Path);
    }
    match after.as_bytes().first() {
        None => Ok(()),
        Some(b'?') => Err(OriginError::Query),
        Some(_) => Err(OriginError::Fragment),
    }
}

fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), OriginError> {
    if authority.starts_with('[') {
        let close = authority
            .find(']')
            .ok_or(OriginError::InvalidHost("unterminated IPv6 address"))?;
        let (host, after) = authority
            .split_at_checked(close + 1)
            .unwrap_or((authority, ""));
        return match after.strip_prefix(':') {
            Some(port) => Ok((host, Some(port))),
            None if after.is_empty() => Ok((host, None)),
            None => Err(OriginError::InvalidHost(
                "unexpected text after the IPv6 address",
            )),
        };
    }
    match authority.split_once(':') {
        // `http://::1` or `http://2001:db8::1`: say what is wrong rather than "invalid port".
        Some((host, port)) if port.contains(':') && host.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Err(OriginError::InvalidHost(
                "an IPv6 address must be in brackets, e.g. http://[::1]:8080",
            ))
        }
        Some((host, port)) => Ok((host, Some(port))),
        None => Ok((authority, None)),
    }
}

fn parse_port(port: &str) -> Result<u16, OriginError> {
    if port.contains('*') {
        return Err(OriginError::WildcardInPort);
    }
    // The length bound keeps `parse` from seeing absurd inputs; `u16` bounds the value.
    if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(OriginError::InvalidPort);
    }
    match port.parse::<u16>() {
        Ok(port) if port != 0 => Ok(port),
        _ => Err(OriginError::InvalidPort),
    }
}

/// Canonicalizes a raw host as a browser would, then checks the wildcard rules.
pub(super) fn canonical_host(raw: &str, side: Side) -> Result<PatternHost, OriginError> {
    let bracketed = raw.starts_with('[');
    if bracketed && raw.contains('*') {
        return Err(OriginError::WildcardInIp);
    }
    if !bracketed {
        if raw.contains('%') {
            return Err(OriginError::InvalidHost("percent-encoding is not allowed"));
        }
        let typo = |c: char| {
            c.is_ascii() && !matches!(c, 'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' | '.' | '*')
        };
        if raw.contains(typo) {
            return Err(OriginError::InvalidHost(
                "only letters, digits, '-', '_' and '.' are allowed in a host name",
            ));
        }
    }
    let domain = match Host::parse(raw) {
        Ok(Host::Domain(domain)) => domain,
        Ok(ip @ (Host::Ipv4(_) | Host::Ipv6(_))) => {
            return Ok(PatternHost::Exact(ip.to_string().into()))
        }
        Err(url::ParseError::InvalidIpv4Address) if raw.contains('*') => {
            return Err(OriginError::WildcardInIp)
        }
        Err(e) => return Err(host_error(e)),
    };
    if domain.len() > 253 {
        return Err(OriginError::InvalidHost("longer than 253 characters"));
    }
    for label in domain.split('.') {
        if label.is_empty() {
            return Err(OriginError::EmptyLabel);
        }
        if label.len() > 63 {
            return Err(OriginError::InvalidHost(
                "a label is longer than 63 characters",
            ));
        }
    }
    // Checked after IDN mapping, which can turn e.g. a full-width asterisk into `*`.
    if !domain.contains('*') {
        return Ok(PatternHost::Exact(domain.into()));
    }
    if side == Side::Request {
        return Err(OriginError::WildcardInRequest);
    }
    let (left, suffix) = match domain.rfind('*') {
        Some(star) => domain.split_at_checked(star + 1).unwrap_or((&domain, "")),
        None => (domain.as_str(), ""),
    };
    if suffix.is_empty() {
        return Err(OriginError::WildcardTld);
    }
    if !suffix.starts_with('.') {
        return Err(OriginError::PartialWildcard); // `a.b*.com`: the `*` is glued to text
    }
    if left
        .split('.')
        .any(|label| label != "*" && label.contains('*'))
    {
        return Err(OriginError::PartialWildcard);
    }
    let suffix_at = u16::try_from(left.len())
        .map_err(|_| OriginError::InvalidHost("longer than 253 characters"))?;
    Ok(PatternHost::Wildcard {
        pattern: domain.into(),
        suffix_at,
    })
}

fn host_error(e: url::ParseError) -> OriginError {
    OriginError::InvalidHost(match e {
        url::ParseError::EmptyHost => return OriginError::EmptyHost,
        url::ParseError::IdnaError => "invalid international domain name",
        url::ParseError::InvalidIpv4Address => "invalid IPv4 address",
        url::ParseError::InvalidIpv6Address => "invalid IPv6 address",
        url::ParseError::InvalidDomainCharacter => "invalid character",
        _ => "not a valid host name",
    })
}

/// Recognizes the serialized origin browsers send (`http(s)://` + lowercase ASCII host +
/// optional port) and returns its parts without allocating; `None` sends it to the full parser.
pub(super) fn fast_path(s: &str) -> Option<(Scheme, Range<usize>, u16)> {
    let (scheme, start) = if s.starts_with("https://") {
        (Scheme::Https, "https://".len())
    } else if s.starts_with("http://") {
        (Scheme::Http, "http://".len())
    } else {
        return None;
    };
    let authority = s.get(start..)?;
    // One pass over the host: character class, no empty label, where the last label starts.
    let mut host_end = authority.len();
    let mut label_start = 0;
    for (i, b) in authority.bytes().enumerate() {
        match b {
            // A label's 64th character leaves the fast path: the slow one refuses it (DNS
            // labels are at most 63 bytes), as it refuses a host over 253 bytes below.
            b'a'..=b'z' | b'0'..=b'9' | b'-' if i - label_start < 63 => {}
            b'.' if i > label_start => label_start = i + 1,
            b':' => {
                host_end = i;
                break;
            }
            _ => return None,
        }
    }
    if host_end == label_start || host_end > 253 {
        return None; // empty host or trailing `.`, or too long
    }
    let port = match authority.get(host_end..) {
        Some("") | None => scheme.default_port(),
        Some(colon_port) => parse_port(colon_port.get(1..)?).ok()?,
    };
    // The URL host parser reads a host ending in a number as IPv4 (`127.1`, `0x7f.1`);
    // only the canonical dotted quad is already in the form a pattern stores.
    let host = authority.get(..host_end)?;
    if authority.as_bytes().get(label_start)?.is_ascii_digit() && !is_canonical_ipv4(host) {
        return None;
    }
    Some((scheme, start..start + host_end, port))
}

fn is_canonical_ipv4(host: &str) -> bool {
    let mut parts = 0;
    host.split('.').all(|part| {
        parts += 1;
        (part == "0" || !part.starts_with('0')) && part.len() <= 3 && part.parse::<u8>().is_ok()
    }) && parts == 4
}
