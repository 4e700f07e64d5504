//! The abuse-monitoring reads of the admin API (SPEC §12 "Reads"): a token's usage series,
//! a token's abuse state, and the edge-wide view. They only call the monitor's read API
//! (`abuse::report`); nothing here computes a signal.

use crate::abuse::history::Range;
use crate::edge::AppState;
use crate::http::{self, Resp};
use crate::time::unix_now;

use super::error;

/// `GET /api/v1/tokens/{id}/usage?range=1h|24h|7d` (default `1h`).
pub fn usage(state: &AppState, id: &str, query: Option<&str>) -> Resp {
    let range = query
        .and_then(|q| q.split('&').find_map(|p| p.strip_prefix("range=")))
        .unwrap_or("1h");
    let Some(range) = Range::parse(range) else {
        return error(
            400,
            "invalid_range",
            "range must be 1h, 24h or 7d",
            vec![format!("range {range:?}")],
        );
    };
    match state.registry.active(id) {
        Some(t) => http::json(200, &state.abuse.usage(&t, range, unix_now())),
        None => not_found(id),
    }
}

/// `GET /api/v1/tokens/{id}/abuse`.
pub fn token_abuse(state: &AppState, id: &str) -> Resp {
    match state.registry.active(id) {
        Some(t) => http::json(200, &state.abuse.token_report(&t)),
        None => not_found(id),
    }
}

/// `GET /api/v1/abuse`.
pub fn edge_abuse(state: &AppState) -> Resp {
    http::json(200, &state.abuse.report(&state.registry.tokens()))
}

/// The answer for a token without a request-path view. Revoked tokens keep theirs (their
/// usage until revocation is still worth reading), so this is an id never issued.
fn not_found(id: &str) -> Resp {
    error(404, "not_found", &format!("token {id} not found"), vec![])
}
