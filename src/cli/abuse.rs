//! The abuse-monitoring side of the CLI: `ingest-edge abuse list`, and the tables of
//! `token usage` and `token abuse` (SPEC §12 reads).

use std::io::{self, Write};

use serde_json::Value;

use super::client::{pretty, s, Admin};
use super::{CliError, Conn};

/// `ingest-edge abuse list`.
pub fn abuse_list(conn: &Conn, json: bool, out: &mut impl Write) -> Result<(), CliError> {
    let admin = Admin::connect(conn)?;
    let v = admin.call(reqwest::Method::GET, "/api/v1/abuse", None)?;
    if json {
        writeln!(out, "{}", pretty(&v))?;
        return Ok(());
    }
    let tokens = v["tokens"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if tokens.is_empty() {
        writeln!(out, "no token has an active signal")?;
    }
    for t in tokens {
        let signals: Vec<String> = t["signals"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .map(|sig| format!("{} ({})", s(&sig["signal"]), s(&sig["action"])))
            .collect();
        writeln!(
            out,
            "{:<16} {:<24} {}",
            s(&t["token_id"]),
            s(&t["name"]),
            signals.join(", ")
        )?;
    }
    let storm = &v["auth_storm"];
    writeln!(
        out,
        "auth_storm: {} ({:.1}/s, threshold {})",
        if storm["active"] == true {
            "active"
        } else {
            "quiet"
        },
        storm["value"].as_f64().unwrap_or(0.0),
        s(&storm["threshold"])
    )?;
    for a in v["auth_storm_top_addresses"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        writeln!(out, "  {:<40} {}", s(&a["key"]), s(&a["count"]))?;
    }
    print_events(out, &v["recent_events"])?;
    Ok(())
}

pub(super) fn print_usage(out: &mut impl Write, v: &Value) -> io::Result<()> {
    writeln!(
        out,
        "{:<22} {:>10} {:>10} {:>12}  REJECTED",
        "STEP", "REQUESTS", "ITEMS", "BYTES"
    )?;
    let (mut requests, mut items, mut bytes) = (0u64, 0u64, 0u64);
    for p in v["points"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
        let n = |k: &str| p[k].as_u64().unwrap_or(0);
        requests += n("requests");
        items += n("items");
        bytes += n("bytes");
        let rejected: Vec<String> = p["rejected"]
            .as_object()
            .map(|m| m.iter().map(|(k, c)| format!("{k}={c}")).collect())
            .unwrap_or_default();
        let t = p["t"].as_u64().unwrap_or(0);
        writeln!(
            out,
            "{:<22} {:>10} {:>10} {:>12}  {}",
            crate::time::rfc3339(t),
            n("requests"),
            n("items"),
            n("bytes"),
            rejected.join(" ")
        )?;
    }
    writeln!(
        out,
        "{:<22} {requests:>10} {items:>10} {bytes:>12}",
        "total"
    )
}

pub(super) fn print_token_abuse(out: &mut impl Write, v: &Value) -> io::Result<()> {
    writeln!(
        out,
        "mode {}  items/s {:.1} (baseline {:.1})  distinct clients {:.0}{}",
        s(&v["settings"]["mode"]),
        v["items_per_second"].as_f64().unwrap_or(0.0),
        v["baseline_items_per_second"].as_f64().unwrap_or(0.0),
        v["distinct_clients"].as_f64().unwrap_or(0.0),
        if v["throttled"] == true {
            "  THROTTLED"
        } else {
            ""
        }
    )?;
    for sig in v["signals"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
        writeln!(
            out,
            "  {:<16} {:<7} value {:.2} threshold {:.2}",
            s(&sig["signal"]),
            if sig["active"] == true {
                "ACTIVE"
            } else {
                "quiet"
            },
            sig["value"].as_f64().unwrap_or(0.0),
            sig["threshold"].as_f64().unwrap_or(0.0)
        )?;
    }
    for (title, key) in [
        ("top rejected origins", "top_rejected_origins"),
        ("top clients", "top_clients"),
    ] {
        writeln!(out, "{title}:")?;
        for c in v[key].as_array().map(Vec::as_slice).unwrap_or(&[]) {
            writeln!(out, "  {:<48} {}", s(&c["key"]), s(&c["count"]))?;
        }
    }
    print_events(out, &v["recent_events"])
}

fn print_events(out: &mut impl Write, events: &Value) -> io::Result<()> {
    writeln!(out, "recent events:")?;
    for e in events.as_array().map(Vec::as_slice).unwrap_or(&[]) {
        writeln!(
            out,
            "  {} {:<16} {:<16} {:<14} {}",
            crate::time::rfc3339(e["at"].as_u64().unwrap_or(0)),
            s(&e["token_id"]),
            s(&e["event"]),
            s(&e["signal"]),
            s(&e["action"])
        )?;
    }
    Ok(())
}
