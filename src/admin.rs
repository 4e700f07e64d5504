//! The admin API of the ops listener (SPEC §9): token create, list, show, patch, rotate,
//! revoke, and the audit trail. JSON in and out; errors as
//! `{"error": {"code", "message", "details"}}`.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hyper::header::AUTHORIZATION;
use hyper::{Method, Request};
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use crate::body::{self, RequestBody};
use crate::console::SessionAccess;
use crate::edge::AppState;
use crate::http::{self, Resp};
use crate::secret::TokenSecret;
use crate::time::{rfc3339, unix_now};
use crate::token::registry::{RegistryError, DEFAULT_GRACE};
use crate::token::store::StoreError;
use crate::token::{self, CreateBody, NewToken, PatchBody, TokenRecord};

mod reads;

/// Admin request bodies are small JSON documents; a larger declared `Content-Length` is
/// `413` before anything is read.
const MAX_ADMIN_BODY: usize = 64 << 10;

/// The admin key, and the id it is known by in the audit trail.
pub struct AdminKey {
    key: String,
    /// `key:` + the first 8 hex digits of the key's SHA-256: identifies, does not reveal.
    pub id: String,
}

impl AdminKey {
    pub fn new(key: String) -> AdminKey {
        use sha2::Digest;
        let hash = sha2::Sha256::digest(key.as_bytes());
        let id = format!(
            "key:{:02x}{:02x}{:02x}{:02x}",
            hash[0], hash[1], hash[2], hash[3]
        );
        AdminKey { key, id }
    }

    /// The configured key, or the one kept in `<data_dir>/admin.key` (generated, mode 0600, on
    /// first start). Returns the key and, when generated or read from disk, its path.
    pub fn load_or_generate(
        configured: Option<&str>,
        data_dir: &Path,
    ) -> std::io::Result<(AdminKey, Option<std::path::PathBuf>)> {
        if let Some(k) = configured {
            return Ok((AdminKey::new(k.to_owned()), None));
        }
        let path = key_path(data_dir);
        match std::fs::read_to_string(&path) {
            Ok(k) => return Ok((AdminKey::new(k.trim().to_owned()), Some(path))),
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            Err(_) => {}
        }
        std::fs::create_dir_all(data_dir)?;
        let key = random_key();
        write_private(&path, key.as_bytes())?;
        Ok((AdminKey::new(key), Some(path)))
    }

    pub fn expose(&self) -> &str {
        &self.key
    }

    pub(crate) fn matches(&self, presented: &[u8]) -> bool {
        self.key.as_bytes().ct_eq(presented).into()
    }
}

pub fn key_path(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("admin.key")
}

fn random_key() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rngs::OsRng;
    (0..40)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect()
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn error(status: u16, code: &str, message: &str, details: Vec<String>) -> Resp {
    http::json(
        status,
        &json!({"error": {"code": code, "message": message, "details": details}}),
    )
}

/// `503 store_unavailable` with `Retry-After`: the shared store is down; the edge keeps
/// serving tokens from its cache, and the call can be retried as is.
fn store_unavailable(e: &StoreError) -> Resp {
    tracing::warn!(error = %e, "admin call refused: token store unavailable");
    let mut resp = error(
        503,
        "store_unavailable",
        "the token store is unreachable; tokens keep working from the cache; retry later",
        vec![],
    );
    resp.headers_mut().insert(
        hyper::header::RETRY_AFTER,
        hyper::header::HeaderValue::from_static("5"),
    );
    resp
}

fn registry_error(e: RegistryError) -> Resp {
    match e {
        RegistryError::NotApplied(s @ StoreError::Unavailable(_))
        | RegistryError::Store(s @ StoreError::Unavailable(_)) => store_unavailable(&s),
        RegistryError::NotApplied(StoreError::Conflict(ref id)) => error(
            409,
            "conflict",
            &format!(
                "token {id:?} was changed on another edge meanwhile; nothing was applied; retry"
            ),
            vec![],
        ),
        RegistryError::NotFound(_) => error(404, "not_found", &e.to_string(), vec![]),
        RegistryError::Revoked(_) => error(409, "revoked", &e.to_string(), vec![]),
        RegistryError::GraceTooLong => error(400, "invalid_grace_period", &e.to_string(), vec![]),
        RegistryError::Input(input) => {
            error(400, "invalid_token", "invalid token", input.details())
        }
        RegistryError::NotApplied(s) => {
            tracing::error!(error = %s, "token change not applied");
            error(
                500,
                "not_applied",
                "the change was not applied (the token store failed; see the edge's log); retry it",
                vec![],
            )
        }
        RegistryError::Store(s) => {
            tracing::error!(error = %s, "token store failure");
            error(
                500,
                "store_error",
                "the token store failed; see the edge's log",
                vec![],
            )
        }
    }
}

/// The API view of a token: never a secret or a digest.
pub fn view(state: &AppState, r: &TokenRecord) -> Value {
    let now = unix_now();
    let grace_until = r
        .secrets
        .iter()
        .filter_map(|s| s.expires_at)
        .filter(|t| *t > now)
        .max();
    let rotation_due =
        !r.is_revoked() && r.age_secs(now) >= state.config.admin.rotation_period.0.as_secs();
    json!({
        "id": r.id,
        "name": r.name,
        "type": r.token_type,
        "client_type": r.client_type,
        "origins": r.origins,
        "environment": r.environment,
        "tenant": r.tenant,
        "limits": r.limits,
        "attestation": r.attestation,
        "status": if r.is_revoked() {
            "revoked"
        } else if r.is_disabled() {
            "disabled"
        } else {
            "active"
        },
        "disabled_at": r.disabled_at.map(rfc3339),
        "abuse": r.abuse.resolve(&state.config.abuse),
        "last_used_at": last_used_at(state, r).map(rfc3339),
        "created_at": rfc3339(r.created_at),
        "rotated_at": r.rotated_at.map(rfc3339),
        "revoked_at": r.revoked_at.map(rfc3339),
        "previous_secret_valid_until": grace_until.map(rfc3339),
        "age_seconds": r.age_secs(now),
        "rotation_due": rotation_due,
    })
}

/// The newer of the persisted `last_used_at` and this edge's in-memory one (which the
/// engine writes at most once a minute).
fn last_used_at(state: &AppState, r: &TokenRecord) -> Option<u64> {
    let live = state
        .registry
        .active(&r.id)
        .and_then(|t| t.watch().get().and_then(|w| w.last_used()));
    live.max(r.last_used_at)
}

fn with_secret(state: &AppState, r: &TokenRecord, secret: &TokenSecret) -> Value {
    let mut v = view(state, r);
    v["token"] = Value::String(secret.expose().to_owned());
    v
}

async fn read_json<T: serde::de::DeserializeOwned>(
    state: &AppState,
    req: &mut Request<RequestBody>,
) -> Result<T, Resp> {
    let bytes = body::read_bounded(
        req.body_mut(),
        MAX_ADMIN_BODY,
        state.config.server.body_read_timeout,
        0,
    )
    .await
    .map_err(|r| error(r.status, "bad_body", r.text(), vec![]))?;
    // An empty body reads as `{}`: `rotate` with no options is a plain POST.
    let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        &bytes
    };
    serde_json::from_slice(text).map_err(|e| {
        error(
            400,
            "invalid_json",
            "invalid JSON body",
            vec![e.to_string()],
        )
    })
}

/// Runs a change to completion even when its client goes away: hyper drops a request's future
/// when the connection closes, and a change stopped between its audit and store writes, or
/// before its cache update, would be half applied.
async fn to_completion<T: Send + 'static>(
    change: impl Future<Output = Result<T, RegistryError>> + Send + 'static,
) -> Result<T, RegistryError> {
    tokio::spawn(change).await.unwrap_or_else(|e| {
        Err(RegistryError::Store(crate::token::store::StoreError::Io {
            path: "change task".into(),
            source: std::io::Error::other(e.to_string()),
        }))
    })
}

/// Whether the request may use the admin API: the bearer key (constant time), or else the
/// console's session cookie, with which a change must also pass the console's CSRF check
/// (refused with `403` before anything is read or changed).
fn authorise(state: &AppState, req: &Request<RequestBody>) -> Result<(), Box<Resp>> {
    let presented = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let unauthorised = || {
        Box::new(error(
            401,
            "unauthorized",
            "missing or wrong admin key",
            vec![],
        ))
    };
    if let Some(k) = presented {
        return if state.admin_key.matches(k.as_bytes()) {
            Ok(())
        } else {
            Err(unauthorised())
        };
    }
    match state.console.session_access(req.method(), req.headers()) {
        SessionAccess::Granted => Ok(()),
        SessionAccess::CsrfRefused(why) => Err(Box::new(error(403, "csrf", why, vec![]))),
        SessionAccess::None => Err(unauthorised()),
    }
}

/// Handles `/api/v1/tokens...`, `/api/v1/abuse`, `/api/v1/audit` and `/api/v1/origins/validate`.
pub async fn handle(state: &Arc<AppState>, req: &mut Request<RequestBody>) -> Resp {
    if let Err(refused) = authorise(state, req) {
        return *refused;
    }
    let who = state.admin_key.id.clone();
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(3).collect();
    let method = req.method().clone();
    match (method, segments.as_slice()) {
        (Method::GET, ["audit"]) => {
            let limit = req
                .uri()
                .query()
                .and_then(|q| q.split('&').find_map(|p| p.strip_prefix("limit=")))
                .and_then(|n| n.parse().ok())
                .unwrap_or(100usize)
                .min(10_000);
            match state.registry.audit(limit).await {
                Ok(events) => http::json(200, &json!({ "events": events })),
                Err(e) => registry_error(e.into()),
            }
        }
        (Method::GET, ["tokens"]) => match state.registry.list().await {
            Ok(all) => {
                let tokens: Vec<Value> = all.iter().map(|r| view(state, r)).collect();
                http::json(200, &json!({ "tokens": tokens }))
            }
            Err(e) => registry_error(e.into()),
        },
        (Method::POST, ["tokens"]) => {
            let body: CreateBody = match read_json(state, req).await {
                Ok(b) => b,
                Err(resp) => return resp,
            };
            let new = match NewToken::parse(body) {
                Ok(n) => n,
                Err(e) => return registry_error(e.into()),
            };
            let st = Arc::clone(state);
            match to_completion(async move { st.registry.create(new, &who).await }).await {
                Ok((r, secret)) => {
                    tracing::info!(token_id = %r.id, kind = r.token_type.as_str(), "token created");
                    http::json(201, &with_secret(state, &r, &secret))
                }
                Err(e) => registry_error(e),
            }
        }
        (Method::GET, ["tokens", id]) => match state.registry.get(id).await {
            Ok(Some(r)) => http::json(200, &view(state, &r)),
            Ok(None) => registry_error(RegistryError::NotFound((*id).to_owned())),
            Err(e) => registry_error(e.into()),
        },
        (Method::PATCH, ["tokens", id]) => {
            let id = (*id).to_owned();
            let body: PatchBody = match read_json(state, req).await {
                Ok(b) => b,
                Err(resp) => return resp,
            };
            let st = Arc::clone(state);
            match to_completion(async move { st.registry.update(&id, &body, &who).await }).await {
                Ok(r) => http::json(200, &view(state, &r)),
                Err(e) => registry_error(e),
            }
        }
        (Method::DELETE, ["tokens", id]) => {
            let (st, id) = (Arc::clone(state), (*id).to_owned());
            match to_completion(async move { st.registry.revoke(&id, &who).await }).await {
                Ok(r) => {
                    tracing::info!(token_id = %r.id, "token revoked");
                    http::json(200, &view(state, &r))
                }
                Err(e) => registry_error(e),
            }
        }
        (Method::POST, ["tokens", id, "rotate"]) => {
            let id = (*id).to_owned();
            #[derive(serde::Deserialize)]
            #[serde(deny_unknown_fields)]
            struct RotateBody {
                grace_period_seconds: Option<u64>,
            }
            let body: RotateBody = match read_json(state, req).await {
                Ok(b) => b,
                Err(resp) => return resp,
            };
            let grace = body
                .grace_period_seconds
                .map(Duration::from_secs)
                .unwrap_or(DEFAULT_GRACE);
            let st = Arc::clone(state);
            match to_completion(async move { st.registry.rotate(&id, grace, &who).await }).await {
                Ok((r, secret)) => {
                    tracing::info!(token_id = %r.id, grace_secs = grace.as_secs(), "token rotated");
                    http::json(200, &with_secret(state, &r, &secret))
                }
                Err(e) => registry_error(e),
            }
        }
        (Method::GET, ["tokens", id, "usage"]) => reads::usage(state, id, req.uri().query()),
        (Method::GET, ["tokens", id, "abuse"]) => reads::token_abuse(state, id),
        (Method::GET, ["abuse"]) => reads::edge_abuse(state),
        (Method::POST, ["tokens", id, "disable" | "enable"]) => {
            let enable = segments.last() == Some(&"enable");
            let result = if enable {
                state.registry.enable(id, &who).await
            } else {
                state.registry.disable(id, &who).await
            };
            match result {
                Ok(r) => http::json(200, &view(state, &r)),
                Err(e) => registry_error(e),
            }
        }
        (Method::POST, ["tokens", id, "expect-spike"]) => {
            let id = (*id).to_owned();
            #[derive(serde::Deserialize)]
            #[serde(deny_unknown_fields)]
            struct ExpectBody {
                for_seconds: u64,
            }
            let body: ExpectBody = match read_json(state, req).await {
                Ok(b) => b,
                Err(resp) => return resp,
            };
            match state
                .abuse
                .expect_spike_for(&state.registry, &id, body.for_seconds, &who)
                .await
            {
                Ok(until) => http::json(
                    200,
                    &json!({"id": id, "expect_spike_until": rfc3339(until)}),
                ),
                Err(e) => registry_error(e),
            }
        }
        (Method::POST, ["tokens", id, "abuse", "reset"]) => {
            match state.abuse.reset_token(&state.registry, id, &who).await {
                Ok(()) => http::json(200, &json!({"id": id, "reset": true})),
                Err(e) => registry_error(e),
            }
        }
        // The create path's own origin rules and messages, with no side effect: the console
        // checks the origins field as the operator types.
        (Method::POST, ["origins", "validate"]) => {
            #[derive(serde::Deserialize)]
            #[serde(deny_unknown_fields)]
            struct ValidateBody {
                origins: Vec<String>,
                /// The console names the token's client type: web origins or, for mobile
                /// tokens, app identities (SPEC §14). Default web.
                client_type: Option<token::ClientType>,
            }
            match read_json::<ValidateBody>(state, req).await {
                Ok(b) => {
                    let details = token::parse_client_origins(
                        &b.origins,
                        b.client_type.unwrap_or(token::ClientType::Web),
                    )
                    .err()
                    .map(|e| e.details())
                    .unwrap_or_default();
                    http::json(200, &json!({ "details": details }))
                }
                Err(resp) => resp,
            }
        }
        (
            _,
            ["tokens"]
            | ["tokens", _]
            | ["tokens", _, "rotate" | "disable" | "enable" | "expect-spike" | "usage" | "abuse"]
            | ["tokens", _, "abuse", "reset"]
            | ["audit"]
            | ["abuse"]
            | ["origins", "validate"],
        ) => error(405, "method_not_allowed", "method not allowed", vec![]),
        _ => error(404, "not_found", "no such admin endpoint", vec![]),
    }
}
