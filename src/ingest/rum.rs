//! `POST /v1/traces`, `POST /v1/logs` and their CORS preflights (SPEC §5): browser RUM with a
//! public client token bound to origins.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use hyper::header::{CONTENT_ENCODING, CONTENT_TYPE};
use hyper::{Method, Request};

use super::cors::CorsPolicy;
use super::mobile;
use super::{finish, refuse_otlp};
use crate::auth;
use crate::body::{self, RequestBody};
use crate::edge::AppState;
use crate::http::{self, Resp};
use crate::origin::RequestOrigin;
use crate::pipeline::{Batch, Queue};
use crate::ratelimit::global;
use crate::reject::{Reason, Reject};
use crate::rum::{self, Format, Signal};
use crate::secret::TokenType;
use crate::time::unix_now;
use crate::token::cache::ActiveToken;
use crate::usage::Endpoint;

pub async fn handle(
    state: &Arc<AppState>,
    req: &mut Request<RequestBody>,
    peer: IpAddr,
    endpoint: Endpoint,
) -> Resp {
    // Refusals answer in the request's format, even before its Content-Type is checked.
    let reply = Format::for_reply(req.headers().get(CONTENT_TYPE).map(|v| v.as_bytes()));
    let origin = match auth::request_origin(req.headers()) {
        Ok(origin) => origin,
        // No CORS headers: there is no one origin to answer.
        Err(reason) => return refuse_otlp(state.usage.unknown(), endpoint, &reason.into(), reply),
    };
    if req.method() == Method::OPTIONS {
        return preflight(state, req, origin.as_ref());
    }
    let token = match identify(state, req, origin.as_ref()) {
        Ok(t) => t,
        Err((reject, token, cors)) => {
            super::watch_refusal(state, &reject, token.as_deref(), origin.as_ref(), peer);
            let usage = token
                .as_ref()
                .map(|t| &t.usage)
                .unwrap_or(state.usage.unknown());
            let mut resp = refuse_otlp(usage, endpoint, &reject, reply);
            if let (true, Some(o)) = (cors, &origin) {
                CorsPolicy::decorate(&mut resp, o);
            }
            return resp;
        }
    };
    // From here on the origin is allowed for this token: every response carries CORS headers
    // (never for mobile tokens, which no browser may use).
    let cors = match origin {
        _ if mobile::is_mobile(&token) => None,
        Some(origin) => Some(origin),
        None => return http::empty(500),
    };
    token.watch().client(peer);
    if let Some(origin) = &cors {
        token.watch().origin_allowed(&token.origins, origin);
    }
    let mut resp = match accept(state, &token, req, peer, endpoint).await {
        Ok(resp) => finish(&token.usage, endpoint, resp),
        Err(reject) => refuse_otlp(&token.usage, endpoint, &reject, reply),
    };
    if let Some(origin) = &cors {
        CorsPolicy::decorate(&mut resp, origin);
    }
    resp
}

type Refusal = (Reject, Option<Arc<ActiveToken>>, bool);

/// Phases 3 and 4: the token and the origin. The `bool` says whether the refusal may carry
/// CORS headers: yes for token problems (so the page can read its `401`), never for a refusal
/// because of the origin itself.
fn identify(
    state: &AppState,
    req: &Request<RequestBody>,
    origin: Option<&RequestOrigin>,
) -> Result<Arc<ActiveToken>, Refusal> {
    let header = auth::header_token(req.headers()).map_err(|r| (r.into(), None, true))?;
    let raw = auth::pick_token(header.as_deref(), auth::query_token(req.uri().query()))
        .map_err(|r| (r.into(), None, true))?;
    let token = auth::authenticate(state.registry.cache(), raw, TokenType::Client, unix_now())
        .map_err(|e| (e.reject, e.token, true))?;
    if mobile::is_mobile(&token) {
        return match mobile::check_app(&token, req.headers()) {
            Ok(()) => Ok(token),
            Err(r) => Err((r.into(), Some(token), false)),
        };
    }
    match auth::check_origin(&token, origin) {
        Ok(()) => Ok(token),
        Err(r) => Err((r.into(), Some(token), false)),
    }
}

/// Phases 5 to 11 for an identified token from an allowed origin.
async fn accept(
    state: &AppState,
    token: &ActiveToken,
    req: &mut Request<RequestBody>,
    peer: IpAddr,
    endpoint: Endpoint,
) -> Result<Resp, Reject> {
    let limits = &state.config.body;
    let format =
        Format::from_content_type(req.headers().get(CONTENT_TYPE).map(|v| v.as_bytes()))
            .map_err(|e| Reject::new(Reason::UnsupportedMediaType).with_detail(e.to_string()))?;
    let gzip = match req.headers().get(CONTENT_ENCODING).map(|v| v.as_bytes()) {
        None => false,
        Some(v) if v.eq_ignore_ascii_case(b"identity") => false,
        Some(v) if v.eq_ignore_ascii_case(b"gzip") => true,
        Some(_) => {
            return Err(Reject::new(Reason::UnsupportedMediaType)
                .with_message("Content-Encoding must be gzip or absent"))
        }
    };
    let client = mobile::client(token, req.headers(), peer);
    global::check_request(
        state.global_limits.as_deref(),
        &token.limiter,
        &token.id,
        client,
    )
    .await?;
    mobile::attest(state, token, req.headers())?;
    body::check_declared_length(req.headers(), limits.rum_max_wire_bytes)?;
    let hint = body::declared_length(req.headers());
    let wire = body::read_bounded(
        req.body_mut(),
        limits.rum_max_wire_bytes,
        state.config.server.body_read_timeout,
        hint,
    )
    .await?;
    let decoded: Bytes = if gzip {
        body::gunzip_bounded(&wire, limits.rum_max_decoded_bytes)?.into()
    } else {
        wire.clone()
    };
    token
        .usage
        .bytes(endpoint, wire.len() as u64, decoded.len() as u64);
    let signal = match endpoint {
        Endpoint::Logs => Signal::Logs,
        _ => Signal::Traces,
    };
    // Counting stops at the burst: more could never pass `check_items` anyway.
    let max_items = u64::from(token.limiter.limits.items_burst.get());
    let counted = rum::count_up_to(signal, format, &decoded, max_items).map_err(|e| {
        Reject::new(Reason::from_label(e.reason()).unwrap_or(Reason::BadPayload))
            .with_status(e.status())
            .with_detail(e.to_string())
    })?;
    let items = counted.items;
    global::check_items(
        state.global_limits.as_deref(),
        &token.limiter,
        &token.id,
        items,
    )
    .await?;
    token.watch().passed(items)?;
    let batch = Batch {
        queue: if signal == Signal::Logs {
            Queue::Logs
        } else {
            Queue::Traces
        },
        token_id: token.id.clone(),
        tenant: token.tenant.clone(),
        content_type: format.content_type(),
        content_encoding: None,
        body: decoded,
        items,
        json_piece: counted.json_piece,
    };
    super::hand_off(state, batch).await?;
    token.usage.rum_items(endpoint, items);
    token.watch().accepted(items, wire.len() as u64, unix_now());
    Ok(http::bytes(
        200,
        format.content_type(),
        Bytes::from_static(rum::empty_response(format)),
    ))
}

/// Phase 2: preflights carry no token header; with `?token=` the origin is checked against it.
fn preflight(state: &AppState, req: &Request<RequestBody>, origin: Option<&RequestOrigin>) -> Resp {
    let Some(origin) = origin else {
        return http::text(403, "missing or null Origin");
    };
    if let Some(raw) = auth::query_token(req.uri().query()) {
        let allowed =
            auth::authenticate(state.registry.cache(), raw, TokenType::Client, unix_now())
                .ok()
                .is_some_and(|t| auth::check_origin(&t, Some(origin)).is_ok());
        if !allowed {
            return http::text(403, "origin not allowed for this token");
        }
    }
    state.cors.preflight(req.headers(), origin)
}
