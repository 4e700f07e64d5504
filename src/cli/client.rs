//! The control-plane client behind `ingest-edge token ...` and `ingest-edge audit`: HTTP calls
//! to the admin API and human-readable tables.

use std::io::{self, Write};

use serde_json::{json, Value};

use super::{CliError, Conn, TokenAction};
use crate::config::Config;

pub(super) struct Admin {
    base: String,
    key: String,
    http: reqwest::blocking::Client,
}

impl Admin {
    pub(super) fn connect(conn: &Conn) -> Result<Admin, String> {
        let config = Config::load(&conn.config, false).map_err(|e| e.to_string())?;
        let base = conn
            .admin_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", config.server.ops_addr));
        let key = match (&conn.admin_key, &config.admin.key) {
            (Some(k), _) | (None, Some(k)) => k.clone(),
            (None, None) => {
                let path = crate::admin::key_path(&config.data_dir.0);
                std::fs::read_to_string(&path)
                    .map(|k| k.trim().to_owned())
                    .map_err(|e| {
                        format!(
                            "no admin key: pass --admin-key or set INGEST_EDGE_ADMIN_KEY ({} : {e})",
                            path.display()
                        )
                    })?
            }
        };
        let http = reqwest::blocking::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Admin {
            base: base.trim_end_matches('/').to_owned(),
            key,
            http,
        })
    }

    pub(super) fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method, &url).bearer_auth(&self.key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .map_err(|e| format!("cannot reach the admin API at {}: {e}", self.base))?;
        let status = resp.status();
        let value: Value = resp.json().unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(value);
        }
        let err = &value["error"];
        let mut message = format!(
            "{} ({})",
            err["message"].as_str().unwrap_or("request failed"),
            status.as_u16()
        );
        if let Some(details) = err["details"].as_array() {
            for d in details.iter().filter_map(Value::as_str) {
                message.push_str("\n  - ");
                message.push_str(d);
            }
        }
        Err(message)
    }
}

pub fn token(conn: &Conn, action: TokenAction, out: &mut impl Write) -> Result<(), CliError> {
    let admin = Admin::connect(conn)?;
    use reqwest::Method;
    match action {
        TokenAction::Create {
            token_type,
            name,
            origins,
            environment,
            tenant,
            limits,
            mobile,
            json,
        } => {
            let mut body = json!({"name": name, "type": token_type});
            mobile.apply(&mut body)?;
            if token_type == "client" {
                body["origins"] = json!(origins);
            } else if !origins.is_empty() {
                return Err("--origin is only for client tokens".into());
            }
            if let Some(e) = environment {
                body["environment"] = json!(e);
            }
            if let Some(t) = tenant {
                body["tenant"] = json!(t);
            }
            if let Some(l) = limits.to_json() {
                body["limits"] = l;
            }
            let t = admin.call(Method::POST, "/api/v1/tokens", Some(body))?;
            print_with_secret(out, &t, json)?;
        }
        TokenAction::List { json } => {
            let v = admin.call(Method::GET, "/api/v1/tokens", None)?;
            if json {
                writeln!(out, "{}", pretty(&v))?;
            } else {
                print_table(
                    out,
                    v["tokens"].as_array().map(Vec::as_slice).unwrap_or(&[]),
                )?;
            }
        }
        TokenAction::Show { id, json } => {
            let t = admin.call(Method::GET, &format!("/api/v1/tokens/{id}"), None)?;
            print_token(out, &t, json)?;
        }
        TokenAction::Update {
            id,
            name,
            origins,
            environment,
            tenant,
            limits,
            mobile,
            json,
        } => {
            let mut body = json!({});
            mobile.apply(&mut body)?;
            if let Some(n) = name {
                body["name"] = json!(n);
            }
            if !origins.is_empty() {
                body["origins"] = json!(origins);
            }
            if let Some(e) = environment {
                body["environment"] = json!(e);
            }
            if let Some(t) = tenant {
                body["tenant"] = json!(t);
            }
            if let Some(l) = limits.to_json() {
                body["limits"] = l;
            }
            if body.as_object().is_some_and(|o| o.is_empty()) {
                return Err(
                    "nothing to update: pass --name, --origin, --environment, --tenant or a limit"
                        .into(),
                );
            }
            let t = admin.call(Method::PATCH, &format!("/api/v1/tokens/{id}"), Some(body))?;
            print_token(out, &t, json)?;
        }
        TokenAction::Rotate { id, grace, json } => {
            let body = match grace {
                Some(g) => json!({"grace_period_seconds": g.as_secs()}),
                None => json!({}),
            };
            let t = admin.call(
                Method::POST,
                &format!("/api/v1/tokens/{id}/rotate"),
                Some(body),
            )?;
            print_with_secret(out, &t, json)?;
        }
        TokenAction::Disable { id, json } => switch(&admin, out, &id, "disable", json)?,
        TokenAction::Enable { id, json } => switch(&admin, out, &id, "enable", json)?,
        TokenAction::ExpectSpike { id, duration } => {
            let v = admin.call(
                Method::POST,
                &format!("/api/v1/tokens/{id}/expect-spike"),
                Some(json!({"for_seconds": duration.as_secs()})),
            )?;
            writeln!(
                out,
                "{id}: spike expected until {}",
                s(&v["expect_spike_until"])
            )?;
        }
        TokenAction::AbuseReset { id } => {
            admin.call(
                Method::POST,
                &format!("/api/v1/tokens/{id}/abuse/reset"),
                None,
            )?;
            writeln!(
                out,
                "{id}: baselines forgotten, warm-up restarted, throttle lifted"
            )?;
        }
        TokenAction::Usage { id, range, json } => {
            let v = admin.call(
                Method::GET,
                &format!("/api/v1/tokens/{id}/usage?range={range}"),
                None,
            )?;
            if json {
                writeln!(out, "{}", pretty(&v))?;
            } else {
                super::abuse::print_usage(out, &v)?;
            }
        }
        TokenAction::Abuse { id, json } => {
            let v = admin.call(Method::GET, &format!("/api/v1/tokens/{id}/abuse"), None)?;
            if json {
                writeln!(out, "{}", pretty(&v))?;
            } else {
                super::abuse::print_token_abuse(out, &v)?;
            }
        }
        TokenAction::Revoke { id, json } => {
            let t = admin.call(Method::DELETE, &format!("/api/v1/tokens/{id}"), None)?;
            if json {
                writeln!(out, "{}", pretty(&t))?;
            } else {
                writeln!(out, "revoked {}", t["id"].as_str().unwrap_or(&id))?;
            }
        }
    }
    Ok(())
}

pub fn audit(conn: &Conn, limit: usize, json: bool, out: &mut impl Write) -> Result<(), CliError> {
    let admin = Admin::connect(conn)?;
    let v = admin.call(
        reqwest::Method::GET,
        &format!("/api/v1/audit?limit={limit}"),
        None,
    )?;
    if json {
        writeln!(out, "{}", pretty(&v))?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<22} {:<14} {:<8} {:<17} DETAIL",
        "AT", "WHO", "ACTION", "TOKEN"
    )?;
    for e in v["events"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
        writeln!(
            out,
            "{:<22} {:<14} {:<8} {:<17} {}",
            s(&e["at"]),
            s(&e["who"]),
            s(&e["action"]),
            s(&e["token_id"]),
            s(&e["detail"])
        )?;
    }
    Ok(())
}

pub(super) fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

pub(super) fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

fn print_with_secret(out: &mut impl Write, t: &Value, json: bool) -> io::Result<()> {
    if json {
        return writeln!(out, "{}", pretty(t));
    }
    print_token(out, t, false)?;
    writeln!(
        out,
        "\nsecret (shown once, store it now):\n{}",
        s(&t["token"])
    )
}

fn print_token(out: &mut impl Write, t: &Value, json: bool) -> io::Result<()> {
    if json {
        return writeln!(out, "{}", pretty(t));
    }
    for key in [
        "id",
        "name",
        "type",
        "client_type",
        "environment",
        "tenant",
        "status",
        "created_at",
        "rotated_at",
        "revoked_at",
        "previous_secret_valid_until",
        "age_seconds",
    ] {
        let v = s(&t[key]);
        if !v.is_empty() {
            writeln!(out, "{key:<28} {v}")?;
        }
    }
    if let Some(origins) = t["origins"].as_array().filter(|o| !o.is_empty()) {
        let list: Vec<String> = origins.iter().map(s).collect();
        writeln!(out, "{:<28} {}", "origins", list.join(" "))?;
    }
    if t["limits"].as_object().is_some_and(|l| !l.is_empty()) {
        writeln!(out, "{:<28} {}", "limits", t["limits"])?;
    }
    if t["attestation"].is_object() {
        println!("{:<28} {}", "attestation", t["attestation"]);
    }
    if t["rotation_due"].as_bool() == Some(true) {
        writeln!(
            out,
            "{:<28} older than the rotation period: rotate it",
            "warning"
        )?;
    }
    Ok(())
}

fn print_table(out: &mut impl Write, tokens: &[Value]) -> io::Result<()> {
    writeln!(
        out,
        "{:<1} {:<16} {:<12} {:<8} {:<12} {:<8} {:<20} NAME",
        "", "ID", "TYPE", "STATUS", "ENVIRONMENT", "AGE", "CREATED"
    )?;
    for t in tokens {
        let age_days = t["age_seconds"].as_u64().unwrap_or(0) / 86_400;
        writeln!(
            out,
            "{:<1} {:<16} {:<12} {:<8} {:<12} {:<8} {:<20} {}",
            if t["rotation_due"].as_bool() == Some(true) {
                "!"
            } else {
                ""
            },
            s(&t["id"]),
            s(&t["type"]),
            s(&t["status"]),
            s(&t["environment"]),
            format!("{age_days}d"),
            s(&t["created_at"]),
            s(&t["name"])
        )?;
    }
    if tokens
        .iter()
        .any(|t| t["rotation_due"].as_bool() == Some(true))
    {
        writeln!(out, "\n! = not rotated within the rotation period")?;
    }
    Ok(())
}

/// `token disable` / `token enable`.
fn switch(
    admin: &Admin,
    out: &mut impl Write,
    id: &str,
    verb: &str,
    json: bool,
) -> Result<(), CliError> {
    let t = admin.call(
        reqwest::Method::POST,
        &format!("/api/v1/tokens/{id}/{verb}"),
        None,
    )?;
    if json {
        writeln!(out, "{}", pretty(&t))?;
    } else {
        writeln!(out, "{id}: {}", s(&t["status"]))?;
    }
    Ok(())
}
