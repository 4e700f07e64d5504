//! The per-token series of mobile client tokens (SPEC §14): App Check failures in `report`
//! mode and mobile tokens seen with a browser `Origin`. Both are shown, zero included, for
//! every mobile token that has had a request, so an alert can use `rate()` from the start.

use std::fmt::Write as _;

use super::{header, Escaped};
use crate::token::cache::ActiveToken;
use crate::token::ClientType;

/// Appends both counters for the mobile tokens among `shown`.
pub(super) fn render(out: &mut String, shown: &[&ActiveToken]) {
    let mobile = || {
        shown.iter().filter(|t| {
            t.client_type == Some(ClientType::Mobile) && t.usage.counters.get().is_some()
        })
    };
    header(
        out,
        "ingest_attestation_failures_total",
        "counter",
        "App Check tokens missing or failing for mobile tokens in attestation mode report (accepted anyway).",
    );
    for t in mobile() {
        let v = t.usage.load(|c| &c.attestation_failures);
        let _ = writeln!(
            out,
            "ingest_attestation_failures_total{{token_id=\"{}\"}} {v}",
            Escaped(&t.id)
        );
    }
    header(
        out,
        "ingest_mobile_token_in_browser_total",
        "counter",
        "Requests refused because a mobile token came with a browser Origin (abuse signal mobile_token_in_browser).",
    );
    for t in mobile() {
        let v = t.usage.load(|c| &c.mobile_in_browser);
        let _ = writeln!(
            out,
            "ingest_mobile_token_in_browser_total{{token_id=\"{}\"}} {v}",
            Escaped(&t.id)
        );
    }
}
