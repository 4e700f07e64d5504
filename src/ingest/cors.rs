//! CORS for the RUM endpoints, per the Fetch standard (SPEC §5).
//!
//! The allowed origin is always echoed exactly (never `*`, since credentials are allowed), with
//! `Vary: Origin` so caches keep responses per origin. A refusal because of the origin itself
//! carries no CORS headers, so the browser blocks the page from reading it.

use hyper::header::{
    HeaderMap, HeaderValue, ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS,
    ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS,
    ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS, VARY,
};

use crate::config::RumConfig;
use crate::http::{self, Resp};
use crate::origin::RequestOrigin;

/// Preflight answers, prepared once from the config.
pub struct CorsPolicy {
    /// Lowercase header names a preflight may be granted.
    allowed_headers: Vec<String>,
    max_age: HeaderValue,
}

impl CorsPolicy {
    pub fn new(cfg: &RumConfig) -> CorsPolicy {
        CorsPolicy {
            allowed_headers: cfg
                .allowed_headers
                .iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .collect(),
            max_age: HeaderValue::from(cfg.preflight_max_age_secs),
        }
    }

    /// The headers every response to an allowed origin carries, errors and `429` included.
    pub fn decorate(resp: &mut Resp, origin: &RequestOrigin) {
        let h = resp.headers_mut();
        if let Ok(v) = HeaderValue::from_str(origin.as_str()) {
            h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, v);
            h.insert(
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
            h.insert(
                ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static("Retry-After"),
            );
        }
        h.append(VARY, HeaderValue::from_static("Origin"));
    }

    /// `204` for an allowed preflight.
    pub fn preflight(&self, request: &HeaderMap, origin: &RequestOrigin) -> Resp {
        let mut resp = http::empty(204);
        CorsPolicy::decorate(&mut resp, origin);
        let h = resp.headers_mut();
        h.insert(
            ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("POST, OPTIONS"),
        );
        h.insert(ACCESS_CONTROL_MAX_AGE, self.max_age.clone());
        let granted = self.granted_headers(request);
        if !granted.is_empty() {
            if let Ok(v) = HeaderValue::from_str(&granted) {
                h.insert(ACCESS_CONTROL_ALLOW_HEADERS, v);
            }
        }
        let pna = request
            .get("access-control-request-private-network")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
        if pna {
            h.insert(
                "access-control-allow-private-network",
                HeaderValue::from_static("true"),
            );
        }
        resp
    }

    /// The requested headers that the allow-list grants, lowercase, comma-separated.
    fn granted_headers(&self, request: &HeaderMap) -> String {
        let mut out = String::new();
        for value in request.get_all(ACCESS_CONTROL_REQUEST_HEADERS) {
            let Ok(value) = value.to_str() else { continue };
            for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                let lower = name.to_ascii_lowercase();
                if self.allowed_headers.contains(&lower) {
                    if !out.is_empty() {
                        out.push_str(", ");
                    }
                    out.push_str(&lower);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> RequestOrigin {
        RequestOrigin::parse(b"https://app.example.com").unwrap()
    }

    #[test]
    fn preflight_grants_only_allow_listed_headers() {
        let p = CorsPolicy::new(&RumConfig::default());
        let mut req = HeaderMap::new();
        req.insert(
            ACCESS_CONTROL_REQUEST_HEADERS,
            HeaderValue::from_static("Content-Type, X-Evil, authorization"),
        );
        req.insert(
            "access-control-request-private-network",
            HeaderValue::from_static("true"),
        );
        let r = p.preflight(&req, &origin());
        assert_eq!(r.status(), 204);
        let h = r.headers();
        assert_eq!(h[ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example.com");
        assert_eq!(
            h[ACCESS_CONTROL_ALLOW_HEADERS],
            "content-type, authorization"
        );
        assert_eq!(h[ACCESS_CONTROL_ALLOW_METHODS], "POST, OPTIONS");
        assert_eq!(h[ACCESS_CONTROL_MAX_AGE], "7200");
        assert_eq!(h["access-control-allow-private-network"], "true");
        assert_eq!(h[ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
        assert_eq!(h[VARY], "Origin");
    }

    #[test]
    fn no_private_network_header_unless_asked() {
        let p = CorsPolicy::new(&RumConfig::default());
        let r = p.preflight(&HeaderMap::new(), &origin());
        assert!(r
            .headers()
            .get("access-control-allow-private-network")
            .is_none());
        assert!(r.headers().get(ACCESS_CONTROL_ALLOW_HEADERS).is_none());
    }
}
