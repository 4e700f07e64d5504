//! The private ops listener: `/metrics`, `/readyz`, `/healthz`, the admin API and the console.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use hyper::{Method, Request};

use crate::body::RequestBody;
use crate::edge::AppState;
use crate::http::{self, Resp};

pub async fn handle(state: &Arc<AppState>, req: &mut Request<RequestBody>) -> Resp {
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => {
            let mut out = String::with_capacity(64 << 10);
            let tokens = state.registry.tokens();
            state.usage.render(&mut out, &tokens);
            state.usage.render_abuse(&mut out, &tokens, &state.abuse);
            state.pipeline.render_metrics(&mut out);
            state.webhook.render_metrics(&mut out);
            state.secret_scanning.render_metrics(&mut out);
            state
                .op_metrics
                .render(state.registry.cache().len(), &mut out);
            if let Some(stale) = state.registry.staleness_seconds() {
                out.push_str(
                    "# HELP ingest_store_staleness_seconds Seconds since this edge last knew its \
                     token view matched the shared store.\n\
                     # TYPE ingest_store_staleness_seconds gauge\n",
                );
                out.push_str(&format!("ingest_store_staleness_seconds {stale:.3}\n"));
            }
            if let Some(global) = &state.global_limits {
                global.render_metrics(&mut out);
            }
            http::bytes(200, "text/plain; version=0.0.4; charset=utf-8", out)
        }
        (&Method::GET, "/readyz") => {
            if !state.ready.load(Ordering::SeqCst) {
                http::text(503, "shutting down")
            } else if !state.registry.is_loaded() {
                http::text(
                    503,
                    "no tokens yet: the token store is unreachable and there is no snapshot",
                )
            } else {
                http::text(200, "ready")
            }
        }
        (&Method::GET, "/healthz") => http::text(200, "ok"),
        (&Method::GET | &Method::HEAD, p) if p == "/" || p.starts_with("/console/") => state
            .console
            .assets
            .respond(p, req.headers())
            .unwrap_or_else(|| http::text(404, "not found")),
        (_, "/api/v1/session") => crate::console::session(state, req).await,
        (_, p) if p.starts_with("/api/v1/") => crate::admin::handle(state, req).await,
        _ => http::text(404, "not found"),
    }
}
