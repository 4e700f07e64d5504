//! Small response builders shared by the ingest and ops listeners.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Response, StatusCode};

use crate::reject::Reject;
use crate::rum;

pub type Body = Full<Bytes>;
pub type Resp = Response<Body>;

pub fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

pub fn empty(code: u16) -> Resp {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = status(code);
    r
}

pub fn bytes(code: u16, content_type: &'static str, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status(code);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

pub fn text(code: u16, body: impl Into<String>) -> Resp {
    let mut s = body.into();
    s.push('\n');
    bytes(code, "text/plain; charset=utf-8", s)
}

pub fn json(code: u16, value: &impl serde::Serialize) -> Resp {
    let body = serde_json::to_vec(value).unwrap_or_default();
    bytes(code, "application/json", body)
}

/// The response of a refused remote_write request: status, reason text, `Retry-After`.
pub fn reject(r: &Reject) -> Resp {
    with_retry_after(text(r.status, r.text()), r)
}

/// The response of a refused RUM request (SPEC §15): a `google.rpc.Status` in the request's
/// format, the reason in its `message`, and `Retry-After`.
pub fn reject_otlp(r: &Reject, format: rum::Format) -> Resp {
    let body = rum::status::body(format, r.grpc_code(), r.text());
    with_retry_after(bytes(r.status, format.content_type(), body), r)
}

fn with_retry_after(mut resp: Resp, r: &Reject) -> Resp {
    if let Some(secs) = r.retry_after {
        resp.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}
