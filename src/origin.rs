//! Allowed origins of client tokens (SPEC §4). [`OriginPattern`] is one operator entry, parsed
//! once when a token is created or changed; [`RequestOrigin`] is a request's `Origin` header,
//! parsed once per request; [`OriginList::allows`] decides without allocating. Mobile tokens
//! (SPEC §14) hold app identities instead (`android://...`, `ios://...`: `app.rs`), and an
//! [`OriginList`] is one kind or the other (`list.rs`).
//!
//! Choices beyond the letter of SPEC §4 (operators need them in the README too):
//! - Each `*` matches exactly one non-empty DNS label, and a pattern may hold several:
//!   `https://*.*.example.com` matches `https://a.b.example.com`, not `https://b.example.com`
//!   nor `https://x.a.b.example.com`. Only the last label must be explicit, so `https://*.com`
//!   is accepted (no public-suffix list is consulted). `*` is refused inside IP addresses.
//! - Whitespace or control characters anywhere in an entry are refused, not trimmed: a pasted
//!   newline or stray space is shown to the operator instead of silently changing the entry.
//! - A pattern's lone trailing `/` is dropped. A request origin must be a serialized origin as
//!   browsers send it, so there a trailing `/` is a path and refused.
//! - Scheme and host are case-insensitive. Hosts are canonicalized as browsers do (WHATWG URL
//!   host parser from the `url` crate): IDN to punycode (UTS #46), IPv4 to dotted decimal, IPv6
//!   to the compressed bracketed form. Percent-encoding and ASCII punctuation other than `-`,
//!   `_`, `.` (and `*` in patterns) are refused as typos, as are empty labels (`a..com`,
//!   a trailing `.`), labels over 63 and hosts over 253 characters.
//! - `Display` and serde use the canonical form: lowercase, default port elided, no `/`.
//!
//! Request path: browsers always send a serialized, lowercase, ASCII origin, so
//! [`RequestOrigin::parse`] first tries a byte scan that keeps the host as a range into the one
//! copy of the header it stores. Anything unusual (uppercase, IDN, IPv6, non-canonical IPv4,
//! errors) falls back to the full parser shared with [`OriginPattern::parse`]. The fast path
//! does not check label lengths or punycode validity; such a label can never equal a pattern's
//! literal label, and under a `*` it is just "any label", so the decision is unchanged.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

pub use app::{AppIdentity, AppPattern, Platform};
pub use list::OriginList;
use parse::{canonical_host, fast_path, split, Side};

mod app;
mod list;
mod parse;
#[cfg(test)]
mod tests;

/// Why an origin (pattern or `Origin` header) was refused. `Copy` so that refusing a hostile
/// request costs nothing; the offending entry is named by the caller (see [`OriginList::parse_all`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OriginError {
    #[error("the origin is empty")]
    Empty,
    #[error(
        "whitespace and control characters are not allowed (check for a stray space or newline)"
    )]
    Whitespace,
    #[error("the origin 'null' is not allowed")]
    Null,
    #[error("a bare '*' is not allowed (list each origin, e.g. https://*.example.com)")]
    BareWildcard,
    #[error("missing scheme (expected http:// or https://)")]
    MissingScheme,
    #[error("unsupported scheme (expected http:// or https://)")]
    UnsupportedScheme,
    #[error("'*' is not allowed in the scheme")]
    WildcardInScheme,
    #[error("userinfo (user@ or user:password@) is not allowed")]
    Userinfo,
    #[error("paths are not allowed")]
    Path,
    #[error("a query ('?...') is not allowed")]
    Query,
    #[error("a fragment ('#...') is not allowed")]
    Fragment,
    #[error("missing host")]
    EmptyHost,
    #[error("'*' is not allowed in the port")]
    WildcardInPort,
    #[error("invalid port (expected a number from 1 to 65535)")]
    InvalidPort,
    #[error("invalid host: {0}")]
    InvalidHost(&'static str),
    #[error("empty DNS label (check for '..' or a leading or trailing '.')")]
    EmptyLabel,
    #[error("'*' must be a whole DNS label")]
    PartialWildcard,
    #[error("the last label (TLD) must not be a wildcard")]
    WildcardTld,
    #[error("'*' is not allowed in an IP address")]
    WildcardInIp,
    #[error("a request origin cannot contain '*'")]
    WildcardInRequest,
    #[error("the origin is not valid UTF-8")]
    NotUtf8,
    #[error(
        "an app identity (android:// or ios://) needs a mobile token (client_type \"mobile\")"
    )]
    AppIdentityOnWebToken,
    #[error("a mobile token takes app identities (android:// or ios://), not web origins")]
    WebOriginOnMobileToken,
    #[error("missing scheme (expected android:// or ios://)")]
    MissingAppScheme,
    #[error("unsupported scheme (expected android:// or ios://)")]
    UnsupportedAppScheme,
    #[error("missing application id or bundle id")]
    MissingAppId,
    #[error("an app identity is at most 255 characters")]
    AppIdTooLong,
    #[error("an app identity needs at least two dot-separated labels (reverse-DNS, e.g. com.example.shop)")]
    AppIdTooFewLabels,
    #[error("an Android application id label starts with a letter and holds only letters, digits and '_'")]
    AndroidLabel,
    #[error("an iOS bundle id label holds only letters, digits and '-'")]
    IosLabel,
    #[error("'*' must be a whole label")]
    AppPartialWildcard,
    #[error("'*' cannot stand for the first label")]
    WildcardFirstLabel,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scheme {
    Http,
    Https,
}

impl Scheme {
    fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum PatternHost {
    /// No wildcard (domain, IPv4 or bracketed IPv6): one string comparison.
    Exact(Box<str>),
    /// At least one `*`: the canonical host as one string (one allocation, read right to
    /// left by `matches`), e.g. `*.app.*.example.com`, and where the literal labels right of
    /// the last `*` start (`.example.com`; never empty, as the TLD is explicit), so that one
    /// `ends_with` refuses a request for another domain.
    Wildcard {
        /// The whole canonical pattern host.
        pattern: Box<str>,
        /// Byte offset of the suffix in `pattern` (a host is at most 253 bytes).
        suffix_at: u16,
    },
}

/// A parsed allowed-origin entry (from the admin API).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OriginPattern {
    /// Must equal the request's scheme exactly (http never matches https).
    scheme: Scheme,
    /// Canonical, pre-split host so that `matches` allocates nothing.
    host: PatternHost,
    /// Effective port (default filled in), so `:443` and no port compare equal.
    port: u16,
}

impl OriginPattern {
    /// Parses and canonicalizes one operator entry; the error says what is wrong with it.
    pub fn parse(s: &str) -> Result<OriginPattern, OriginError> {
        let parts = split(s, Side::Pattern)?;
        Ok(OriginPattern {
            scheme: parts.scheme,
            host: canonical_host(parts.host, Side::Pattern)?,
            port: parts.port,
        })
    }

    /// Whether the entry's host has a `*`.
    pub fn is_wildcard(&self) -> bool {
        matches!(self.host, PatternHost::Wildcard { .. })
    }

    /// Whether a request from `origin` is allowed by this entry. Allocates nothing.
    pub fn matches(&self, origin: &RequestOrigin) -> bool {
        if self.scheme != origin.scheme || self.port != origin.port {
            return false;
        }
        let host = origin.host();
        match &self.host {
            PatternHost::Exact(exact) => **exact == *host,
            PatternHost::Wildcard { pattern, suffix_at } => {
                let (head, suffix) = pattern.split_at(usize::from(*suffix_at));
                let Some(rest) = host.strip_suffix(suffix) else {
                    return false;
                };
                if head == "*" {
                    // The common `*.example.com`: exactly one more non-empty label.
                    return !rest.is_empty() && !rest.contains('.');
                }
                // Label by label from the right: `*` is any one non-empty label.
                let mut theirs = rest.rsplit('.');
                let all_match = head.rsplit('.').all(|ours| match theirs.next() {
                    None => false,
                    Some(label) if ours == "*" => !label.is_empty(),
                    Some(label) => ours == label,
                });
                // Exactly as many labels: `*.example.com` must not match `a.b.example.com`.
                all_match && theirs.next().is_none()
            }
        }
    }
}

impl FromStr for OriginPattern {
    type Err = OriginError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OriginPattern::parse(s)
    }
}

impl fmt::Display for OriginPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.scheme.as_str())?;
        match &self.host {
            PatternHost::Exact(host) | PatternHost::Wildcard { pattern: host, .. } => {
                f.write_str(host)?
            }
        }
        if self.port != self.scheme.default_port() {
            write!(f, ":{}", self.port)?;
        }
        Ok(())
    }
}

impl serde::Serialize for OriginPattern {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for OriginPattern {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        OriginPattern::parse(&s)
            .map_err(|e| serde::de::Error::custom(format_args!("invalid origin '{s}': {e}")))
    }
}

/// The longest `Origin` header parsed; longer is malformed without looking further. A valid
/// origin serializes to at most 267 bytes (`https://`, a 253-byte host, `:65535`); the slack is
/// for the forms the slow path canonicalizes (percent-encoded or uppercase hosts), and the
/// bound keeps the IDN mapping and the copy echoed in CORS headers small whatever is sent.
pub const MAX_REQUEST_ORIGIN_LEN: usize = 2048;

/// The Origin header of a request, parsed. Cheap: one copy of the header (needed to echo it),
/// plus a canonical host string only when the header was not already canonical.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestOrigin {
    /// The header exactly as received: echoed in `Access-Control-Allow-Origin`, and on the
    /// fast path also the storage the host is read from.
    raw: Box<str>,
    /// Compared with the pattern's scheme.
    scheme: Scheme,
    /// Where the canonical host lives.
    host: RequestHost,
    /// Effective port (default filled in), like [`OriginPattern`]'s.
    port: u16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum RequestHost {
    /// The header was already canonical: the host is this byte range of `raw`.
    InRaw(Range<usize>),
    /// The header needed canonicalizing (case, IDN, IP forms): the converted host.
    Canonical(Box<str>),
}

impl RequestOrigin {
    /// `None` for a missing header is handled by the caller; `"null"` and anything malformed is an Err.
    pub fn parse(header: &[u8]) -> Result<RequestOrigin, OriginError> {
        if header.len() > MAX_REQUEST_ORIGIN_LEN {
            return Err(OriginError::InvalidHost("longer than 253 characters"));
        }
        let s = std::str::from_utf8(header).map_err(|_| OriginError::NotUtf8)?;
        if let Some((scheme, host, port)) = fast_path(s) {
            return Ok(RequestOrigin {
                raw: s.into(),
                scheme,
                host: RequestHost::InRaw(host),
                port,
            });
        }
        let parts = split(s, Side::Request)?;
        let host = match canonical_host(parts.host, Side::Request)? {
            PatternHost::Exact(host) => host,
            // `canonical_host` refuses `*` on the request side; stay total rather than panic.
            PatternHost::Wildcard { .. } => return Err(OriginError::WildcardInRequest),
        };
        Ok(RequestOrigin {
            raw: s.into(),
            scheme: parts.scheme,
            host: RequestHost::Canonical(host),
            port: parts.port,
        })
    }

    /// The origin exactly as the browser sent it (for `Access-Control-Allow-Origin`).
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    fn host(&self) -> &str {
        match &self.host {
            RequestHost::InRaw(range) => self.raw.get(range.clone()).unwrap_or(""),
            RequestHost::Canonical(host) => host,
        }
    }
}
