//! Authentication of ingest requests: where the token comes from (Bearer header, Basic
//! password, `?token=`), the cheap format check before any lookup, the cache lookup, type
//! scoping (SPEC §3) and, for client tokens, the origin check (SPEC §4).

use std::sync::Arc;

use hyper::header::{HeaderMap, AUTHORIZATION, ORIGIN};

use crate::origin::RequestOrigin;
use crate::reject::{Reason, Reject};
use crate::secret::{TokenSecret, TokenType};
use crate::token::cache::{ActiveToken, Lookup, TokenCache};

/// A refused authentication, with the token it is to be counted under when one was identified.
pub struct AuthError {
    pub reject: Reject,
    pub token: Option<Arc<ActiveToken>>,
}

impl From<Reason> for AuthError {
    fn from(r: Reason) -> AuthError {
        AuthError {
            reject: Reject::new(r),
            token: None,
        }
    }
}

/// The token of the `Authorization` header: `Bearer <token>`, or Basic with the token as the
/// password (what Prometheus' `basic_auth` sends). `Err` for a header that is present but
/// unusable.
pub fn header_token(headers: &HeaderMap) -> Result<Option<String>, Reason> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| Reason::MalformedToken)?;
    let (scheme, rest) = value.split_once(' ').ok_or(Reason::MalformedToken)?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Ok(Some(rest.to_owned()));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        use base64::Engine as _;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .map_err(|_| Reason::MalformedToken)?;
        let text = String::from_utf8(raw).map_err(|_| Reason::MalformedToken)?;
        let (_, password) = text.split_once(':').ok_or(Reason::MalformedToken)?;
        return Ok(Some(password.to_owned()));
    }
    Err(Reason::MalformedToken)
}

/// The `token` query parameter (sendBeacon cannot set headers). Token characters are base62,
/// so no percent-decoding is needed: an encoded token is malformed anyway.
pub fn query_token(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
}

/// The one token of a request: header and query may both be present only if equal.
pub fn pick_token<'a>(header: Option<&'a str>, query: Option<&'a str>) -> Result<&'a str, Reason> {
    match (header, query) {
        (Some(h), Some(q)) if h != q => Err(Reason::ConflictingTokens),
        (Some(t), _) | (None, Some(t)) => Ok(t),
        (None, None) => Err(Reason::MissingToken),
    }
}

/// Format check, lookup and type scoping.
pub fn authenticate(
    cache: &TokenCache,
    raw: &str,
    expected: TokenType,
    now: u64,
) -> Result<Arc<ActiveToken>, AuthError> {
    let secret = TokenSecret::parse(raw).map_err(|_| Reason::MalformedToken)?;
    match cache.lookup(&secret.digest(), now) {
        Lookup::Unknown => Err(Reason::UnknownToken.into()),
        Lookup::Revoked(token) => Err(AuthError {
            reject: Reject::new(Reason::RevokedToken),
            token: Some(token),
        }),
        Lookup::Active(token) if token.token_type != expected => Err(AuthError {
            reject: Reject::new(Reason::WrongTokenType),
            token: Some(token),
        }),
        Lookup::Active(token) if token.disabled => Err(AuthError {
            reject: Reject::new(Reason::TokenDisabled),
            token: Some(token),
        }),
        Lookup::Active(token) => Ok(token),
    }
}

/// The request's `Origin`, checked against a web client token's list.
pub fn check_origin(token: &ActiveToken, origin: Option<&RequestOrigin>) -> Result<(), Reason> {
    match origin {
        None => Err(Reason::MissingOrigin),
        Some(o) if token.origins.allows(o) => Ok(()),
        Some(_) => Err(Reason::OriginNotAllowed),
    }
}

/// Parses the `Origin` header: `None` when absent or `null` or malformed (all refused the same
/// way for web client tokens; an over-long one is malformed, see
/// [`crate::origin::MAX_REQUEST_ORIGIN_LEN`]). More than one `Origin` header is refused
/// (`bad_origin`) rather than picking one: a browser sends exactly one, and a check made on one
/// copy while a proxy or upstream reads the other is how confusions start.
pub fn request_origin(headers: &HeaderMap) -> Result<Option<RequestOrigin>, Reason> {
    let mut values = headers.get_all(ORIGIN).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Reason::BadOrigin);
    }
    Ok(RequestOrigin::parse(value.as_bytes()).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(auth).unwrap());
        h
    }

    #[test]
    fn bearer_and_basic() {
        assert_eq!(
            header_token(&headers("Bearer abc")).unwrap().as_deref(),
            Some("abc")
        );
        assert_eq!(
            header_token(&headers("bearer  abc ")).unwrap().as_deref(),
            Some("abc")
        );
        // "prometheus:s3cret"
        assert_eq!(
            header_token(&headers("Basic cHJvbWV0aGV1czpzM2NyZXQ="))
                .unwrap()
                .as_deref(),
            Some("s3cret")
        );
        assert!(header_token(&headers("Basic !!!")).is_err());
        assert!(header_token(&headers("Token abc")).is_err());
        assert_eq!(header_token(&HeaderMap::new()).unwrap(), None);
    }

    #[test]
    fn one_origin_header_at_most() {
        let mut h = HeaderMap::new();
        assert_eq!(request_origin(&h), Ok(None));
        h.append(ORIGIN, HeaderValue::from_static("https://a.example"));
        let one = request_origin(&h).unwrap().unwrap();
        assert_eq!(one.as_str(), "https://a.example");
        h.append(ORIGIN, HeaderValue::from_static("https://a.example"));
        assert_eq!(request_origin(&h), Err(Reason::BadOrigin));
        let mut h = HeaderMap::new();
        h.insert(ORIGIN, HeaderValue::from_static("null"));
        assert_eq!(request_origin(&h), Ok(None));
    }

    #[test]
    fn query_and_conflicts() {
        assert_eq!(query_token(Some("a=1&token=xyz")), Some("xyz"));
        assert_eq!(query_token(Some("tokens=1")), None);
        assert_eq!(query_token(None), None);
        assert_eq!(pick_token(Some("a"), Some("a")), Ok("a"));
        assert_eq!(
            pick_token(Some("a"), Some("b")),
            Err(Reason::ConflictingTokens)
        );
        assert_eq!(pick_token(None, None), Err(Reason::MissingToken));
    }
}
