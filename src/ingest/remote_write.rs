//! `POST /api/v1/write` (SPEC §6): Prometheus remote_write 1.0 and 2.0 with a secret
//! remote-write token.

use std::cell::RefCell;
use std::net::IpAddr;
use std::sync::Arc;

use hyper::header::{HeaderValue, CONTENT_ENCODING, CONTENT_TYPE};
use hyper::Request;

use super::{finish, refuse};
use crate::auth;
use crate::body::{self, RequestBody};
use crate::edge::AppState;
use crate::http::{self, Resp};
use crate::pipeline::{Batch, Queue};
use crate::ratelimit::{global, Client};
use crate::reject::{Reason, Reject};
use crate::remote_write::{check_encoding, Decoder, RwError, Version, Written};
use crate::secret::TokenType;
use crate::time::{unix_now, unix_now_ms};
use crate::token::cache::ActiveToken;
use crate::usage::Endpoint;

const ENDPOINT: Endpoint = Endpoint::RemoteWrite;

thread_local! {
    /// Decode buffers reused by every request this worker thread handles.
    static DECODER: RefCell<Decoder> = RefCell::new(Decoder::new());
}

pub async fn handle(state: &Arc<AppState>, req: &mut Request<RequestBody>, peer: IpAddr) -> Resp {
    let token = match identify(state, req) {
        Ok(t) => t,
        Err(e) => {
            super::watch_refusal(state, &e.reject, e.token.as_deref(), None, peer);
            let usage = e
                .token
                .as_ref()
                .map(|t| &t.usage)
                .unwrap_or(state.usage.unknown());
            return refuse(usage, ENDPOINT, &e.reject);
        }
    };
    token.watch().client(peer);
    let version =
        match Version::from_content_type(req.headers().get(CONTENT_TYPE).map(|v| v.as_bytes())) {
            Ok(v) => v,
            Err(e) => return refuse(&token.usage, ENDPOINT, &rw_reject(e)),
        };
    let (result, written) = accept(state, &token, req, peer, version).await;
    let mut resp = match result {
        Ok(()) => finish(&token.usage, ENDPOINT, http::empty(204)),
        Err(reject) => refuse(&token.usage, ENDPOINT, &reject),
    };
    if version == Version::V2 {
        let h = resp.headers_mut();
        for (name, n) in [
            ("x-prometheus-remote-write-samples-written", written.samples),
            (
                "x-prometheus-remote-write-histograms-written",
                written.histograms,
            ),
            (
                "x-prometheus-remote-write-exemplars-written",
                written.exemplars,
            ),
        ] {
            h.insert(name, HeaderValue::from(n));
        }
    }
    resp
}

fn identify(
    state: &AppState,
    req: &Request<RequestBody>,
) -> Result<Arc<ActiveToken>, auth::AuthError> {
    let header = auth::header_token(req.headers())?;
    let raw = auth::pick_token(header.as_deref(), None)?;
    auth::authenticate(
        state.registry.cache(),
        raw,
        TokenType::RemoteWrite,
        unix_now(),
    )
}

fn rw_reject(e: RwError) -> Reject {
    Reject::new(Reason::from_label(e.reason()).unwrap_or(Reason::InvalidSeries))
        .with_status(e.status())
        .with_detail(e.to_string())
}

/// Phases 5 to 11. Returns what was written (all zero unless accepted: a request is all or
/// nothing).
async fn accept(
    state: &AppState,
    token: &ActiveToken,
    req: &mut Request<RequestBody>,
    peer: IpAddr,
    version: Version,
) -> (Result<(), Reject>, Written) {
    let throttle = state.config.remote_write.throttle_status;
    let limits = &state.config.body;
    let result = async {
        check_encoding(req.headers().get(CONTENT_ENCODING).map(|v| v.as_bytes()))
            .map_err(rw_reject)?;
        let global = state.global_limits.as_deref();
        global::check_request(global, &token.limiter, &token.id, Client::Addr(peer))
            .await
            .map_err(|r| r.with_status(throttle))?;
        body::check_declared_length(req.headers(), limits.remote_write_max_wire_bytes)?;
        let hint = body::declared_length(req.headers());
        let wire = body::read_bounded(
            req.body_mut(),
            limits.remote_write_max_wire_bytes,
            state.config.server.body_read_timeout,
            hint,
        )
        .await?;
        let now_ms = unix_now_ms();
        crate::remote_write::hash_series(token.watch().sample_series());
        let written = DECODER
            .with(|d| {
                d.borrow_mut()
                    .decode(version, &wire, &state.rw_limits, now_ms)
            })
            .map_err(|e| {
                token.usage.bytes(ENDPOINT, wire.len() as u64, 0);
                rw_reject(e)
            })?;
        // Same thread as the decode (no await in between): its series hashes are still there.
        crate::remote_write::series_hashes(|h| token.watch().series(h));
        // The decoder has checked the snappy length header, so it is the decoded size.
        let decoded_len = snap::raw::decompress_len(&wire).unwrap_or(0);
        token
            .usage
            .bytes(ENDPOINT, wire.len() as u64, decoded_len as u64);
        let items = written.samples + written.histograms + written.exemplars;
        global::check_items(global, &token.limiter, &token.id, items)
            .await
            .map_err(|r| {
                if r.status == 429 {
                    r.with_status(throttle)
                } else {
                    r
                }
            })?;
        token.watch().passed(items)?;
        let wire_len = wire.len() as u64;
        let batch = Batch {
            queue: Queue::RemoteWrite,
            token_id: token.id.clone(),
            tenant: token.tenant.clone(),
            content_type: version.content_type(),
            content_encoding: Some("snappy"),
            body: wire,
            items,
            json_piece: None,
        };
        super::hand_off(state, batch).await?;
        token.usage.remote_write(
            written.samples,
            written.histograms,
            written.exemplars,
            written.metadata,
        );
        token.watch().accepted(items, wire_len, unix_now());
        Ok(written)
    }
    .await;
    match result {
        Ok(w) => (Ok(()), w),
        Err(r) => (Err(r), Written::default()),
    }
}
