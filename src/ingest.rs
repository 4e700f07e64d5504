//! The public listener's request handling: routing, and the bookkeeping every ingest request
//! gets (one `ingest_requests_total` increment with its final status, one
//! `ingest_rejected_total` increment with its reason when refused).
//!
//! The phases of a request, in order (each may end it):
//! 1. route (404/405);
//! 2. CORS preflight (RUM, no token needed);
//! 3. token: location, format, lookup, type (401/403);
//! 4. origin (RUM, 403; mobile tokens: `X-Client-Origin`, see `mobile`);
//! 5. media type and encoding (415, before the body);
//! 6. request rate (429); mobile tokens: App Check attestation (401);
//! 7. body read with size and time bounds (413/408);
//! 8. decompress and decode (400/413);
//! 9. item rate (429/413);
//! 10. hand-off (503);
//! 11. count.

use std::net::IpAddr;
use std::sync::Arc;

use hyper::{Method, Request};

use crate::body::RequestBody;
use crate::edge::AppState;
use crate::http::{self, Resp};
use crate::pipeline::{Batch, HandoffError};
use crate::reject::{Reason, Reject};
use crate::rum::Format;
use crate::usage::{Endpoint, TokenUsage};

pub mod cors;
pub mod mobile;
pub mod remote_write;
pub mod rum;

/// Dispatches one request of the ingest listener.
/// `peer` is the TCP peer, or the client a PROXY header named; behind trusted proxies the
/// client is taken from `X-Forwarded-For` here, once, for every phase that keys on it.
pub async fn handle(state: &Arc<AppState>, req: &mut Request<RequestBody>, peer: IpAddr) -> Resp {
    let peer = state
        .config
        .server
        .trusted_proxies
        .client(peer, req.headers());
    let path = req.uri().path();
    let endpoint = match path {
        "/v1/traces" => Endpoint::Traces,
        "/v1/logs" => Endpoint::Logs,
        "/api/v1/write" => Endpoint::RemoteWrite,
        "/healthz" if req.method() == Method::GET || req.method() == Method::HEAD => {
            return http::text(200, "ok");
        }
        // GitHub's partner endpoint: no ingest token, so none of the phases below.
        crate::abuse::secret_scanning::PATH => {
            return crate::abuse::secret_scanning::handle(state, req).await;
        }
        _ => return http::text(404, "not found"),
    };
    let started = std::time::Instant::now();
    let resp = match (endpoint, req.method()) {
        (Endpoint::RemoteWrite, &Method::POST) => remote_write::handle(state, req, peer).await,
        (Endpoint::Traces | Endpoint::Logs, &Method::POST | &Method::OPTIONS) => {
            rum::handle(state, req, peer, endpoint).await
        }
        _ => {
            let mut r = http::text(405, "method not allowed");
            let allow = if endpoint == Endpoint::RemoteWrite {
                "POST"
            } else {
                "POST, OPTIONS"
            };
            r.headers_mut().insert(
                hyper::header::ALLOW,
                hyper::header::HeaderValue::from_static(allow),
            );
            r
        }
    };
    state
        .op_metrics
        .request_duration(endpoint)
        .record(started.elapsed().as_secs_f64());
    resp
}

/// Phase 10: the hand-off. A 2xx may only follow `Ok` (the batch is durable).
pub async fn hand_off(state: &AppState, batch: Batch) -> Result<(), Reject> {
    state.pipeline.submit(batch).await.map_err(|e| match e {
        HandoffError::Overloaded { retry_after_secs } => {
            Reject::new(Reason::Overloaded).retry_after(retry_after_secs)
        }
        other => {
            tracing::error!(error = %other, "hand-off to the pipeline failed");
            Reject::new(Reason::Overloaded).retry_after(1)
        }
    })
}

/// Tells the abuse monitor about a refusal before the token was accepted: an origin refused
/// for a known token (`origin_storm`), or no usable token at all (`auth_storm`).
pub fn watch_refusal(
    state: &AppState,
    reject: &Reject,
    token: Option<&crate::token::cache::ActiveToken>,
    origin: Option<&crate::origin::RequestOrigin>,
    peer: IpAddr,
) {
    match (reject.reason, token) {
        (Reason::OriginNotAllowed, Some(t)) => t.watch().origin_refused(origin),
        (Reason::MissingToken | Reason::MalformedToken | Reason::UnknownToken, _) => {
            state.abuse.auth_refused(peer)
        }
        _ => {}
    }
}

/// Counts a finished request under `usage` and returns its response.
pub fn finish(usage: &TokenUsage, endpoint: Endpoint, resp: Resp) -> Resp {
    usage.request(endpoint, resp.status().as_u16());
    resp
}

/// Counts a refusal (request and reason) and builds its response: plain text (remote_write).
pub fn refuse(usage: &TokenUsage, endpoint: Endpoint, reject: &Reject) -> Resp {
    usage.rejected(endpoint, reject.reason);
    finish(usage, endpoint, http::reject(reject))
}

/// [`refuse`] for RUM: the body is a `google.rpc.Status` in `format` (SPEC §15).
pub fn refuse_otlp(
    usage: &TokenUsage,
    endpoint: Endpoint,
    reject: &Reject,
    format: Format,
) -> Resp {
    usage.rejected(endpoint, reject.reason);
    finish(usage, endpoint, http::reject_otlp(reject, format))
}
