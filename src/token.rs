//! The token model (SPEC §3): what the store persists about a token, and the typed, validated
//! input of the admin API (create and patch).
//!
//! Only digests of secrets are kept (see `secret`); the id is the public handle used in the
//! admin API and in metric labels.

use serde::{Deserialize, Serialize};

use crate::abuse::AbuseOverrides;
use crate::appcheck::{Attestation, SettingsError};
use crate::config::LimitOverrides;
use crate::origin::{OriginError, OriginList};
use crate::secret::{Digest, TokenType};

pub mod cache;
pub mod follow;
pub mod registry;
pub mod store;

/// Kind of client a client token is for: browsers (`Origin`, CORS) or mobile apps
/// (`X-Client-Origin`, no CORS; SPEC §14).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientType {
    Web,
    Mobile,
}

impl ClientType {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientType::Web => "web",
            ClientType::Mobile => "mobile",
        }
    }
}

/// One secret that authenticates a token: the current one, or the previous one during a
/// rotation's grace period.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSecret {
    /// SHA-256 of the secret, hex; the secret itself is never stored.
    #[serde(with = "digest_hex")]
    pub digest: Digest,
    /// Unix seconds after which this secret stops working (`None`: current secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
}

/// A token as persisted by the store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Public, stable, URL-safe id; used in the admin API and as the `token_id` label.
    pub id: String,
    /// Human description.
    pub name: String,
    #[serde(rename = "type")]
    pub token_type: TokenType,
    /// `Some` exactly for client tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_type: Option<ClientType>,
    /// Allowed origins (web client tokens) or app identities (mobile ones); non-empty exactly
    /// for client tokens.
    #[serde(default)]
    pub origins: OriginList,
    /// Free label for the usage dashboard.
    #[serde(default)]
    pub environment: String,
    /// Value of the upstream tenant header (e.g. `X-Scope-OrgID`) for this token's data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Per-token overrides of the type's default rate limits.
    #[serde(default, skip_serializing_if = "LimitOverrides::is_empty")]
    pub limits: LimitOverrides,
    /// Unix seconds.
    pub created_at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotated_at: Option<u64>,
    /// Set when revoked; a revoked token's secrets never work again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<u64>,
    /// Set while disabled (by an operator or by the abuse monitor's `block`); reversible.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_at: Option<u64>,
    /// Per-token abuse settings over the `[abuse]` defaults.
    #[serde(default, skip_serializing_if = "AbuseOverrides::is_empty")]
    pub abuse: AbuseOverrides,
    /// Unix seconds (minute precision) of the last accepted request, persisted lazily by the
    /// abuse engine: at most one store write a minute for all tokens together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<u64>,
    /// Digests of the secrets that authenticate this token.
    pub secrets: Vec<StoredSecret>,
    /// Id of the audit event of the last change written to this record. The audit event is
    /// written first, so at start-up an audited change whose id is not here never reached the
    /// store (see `registry`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_event: Option<u64>,
    /// App Check settings of a mobile token; `None` is mode `off`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation: Option<Attestation>,
}

/// Why an admin API input is refused; each maps to a `400` with details.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenInputError {
    #[error("name must be 1 to 200 characters")]
    BadName,
    #[error("environment must be at most 64 characters of [A-Za-z0-9_.-]")]
    BadEnvironment,
    #[error("tenant must be 1 to 128 printable ASCII characters")]
    BadTenant,
    #[error("a web client token needs at least one origin")]
    NoOrigins,
    #[error("only client tokens have origins")]
    OriginsOnRemoteWrite,
    #[error("client_type is only for client tokens")]
    ClientTypeOnRemoteWrite,
    #[error("invalid origins")]
    BadOrigins(Vec<(String, OriginError)>),
    #[error("attestation is only for mobile client tokens (client_type \"mobile\")")]
    AttestationNotMobile,
    #[error(transparent)]
    BadAttestation(#[from] SettingsError),
    #[error("changing client_type needs the new origins in the same call")]
    ClientTypeNeedsOrigins,
    #[error("{0}")]
    BadAbuse(&'static str),
}

impl TokenInputError {
    /// One human line per problem (one per bad origin entry).
    pub fn details(&self) -> Vec<String> {
        match self {
            TokenInputError::BadOrigins(bad) => bad
                .iter()
                .map(|(entry, e)| format!("origin {entry:?}: {e}"))
                .collect(),
            other => vec![other.to_string()],
        }
    }
}

/// Validated input of `POST /api/v1/tokens`.
#[derive(Clone, Debug)]
pub struct NewToken {
    pub name: String,
    pub token_type: TokenType,
    pub client_type: Option<ClientType>,
    pub origins: OriginList,
    pub environment: String,
    pub tenant: Option<String>,
    pub limits: LimitOverrides,
    /// Mobile tokens only; `None` is `off`.
    pub attestation: Option<Attestation>,
    pub abuse: AbuseOverrides,
}

/// Raw JSON body of create; [`NewToken::parse`] turns it into a [`NewToken`].
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    pub name: String,
    #[serde(rename = "type")]
    pub token_type: TokenType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_type: Option<ClientType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origins: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<LimitOverrides>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation: Option<Attestation>,
    pub abuse: Option<AbuseOverrides>,
}

/// Raw JSON body of `PATCH /api/v1/tokens/{id}`: every field optional.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PatchBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origins: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<LimitOverrides>,
    /// Switching between `web` and `mobile` needs `origins` of the new kind in the same call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_type: Option<ClientType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation: Option<Attestation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abuse: Option<AbuseOverrides>,
}

fn check_name(name: &str) -> Result<String, TokenInputError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(TokenInputError::BadName);
    }
    Ok(name.to_owned())
}

fn check_environment(env: &str) -> Result<String, TokenInputError> {
    let ok = env.len() <= 64
        && env
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(env.to_owned())
    } else {
        Err(TokenInputError::BadEnvironment)
    }
}

fn check_tenant(tenant: &str) -> Result<String, TokenInputError> {
    let ok =
        !tenant.is_empty() && tenant.len() <= 128 && tenant.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(tenant.to_owned())
    } else {
        Err(TokenInputError::BadTenant)
    }
}

fn check_abuse(abuse: AbuseOverrides) -> Result<AbuseOverrides, TokenInputError> {
    abuse.check().map_err(TokenInputError::BadAbuse)?;
    Ok(abuse)
}

/// The origin rules of a client token, used by create, patch and the console's
/// `POST /api/v1/origins/validate` alike: web origins for web tokens, app identities for
/// mobile ones (SPEC §14); every entry parses, and there is at least one.
pub fn parse_client_origins(
    entries: &[String],
    client: ClientType,
) -> Result<OriginList, TokenInputError> {
    let parsed = match client {
        ClientType::Web => OriginList::parse_all(entries),
        ClientType::Mobile => OriginList::parse_app_all(entries),
    };
    let parsed = parsed.map_err(TokenInputError::BadOrigins)?;
    if parsed.is_empty() {
        return Err(TokenInputError::NoOrigins);
    }
    Ok(parsed)
}

/// Attestation settings are for mobile tokens; `off` is kept as `None`.
fn check_attestation(
    settings: Option<&Attestation>,
    client: Option<ClientType>,
) -> Result<Option<Attestation>, TokenInputError> {
    let Some(settings) = settings.cloned().map(Attestation::validated).transpose()? else {
        return Ok(None);
    };
    match (settings, client) {
        (Some(_), c) if c != Some(ClientType::Mobile) => Err(TokenInputError::AttestationNotMobile),
        (settings, _) => Ok(settings),
    }
}

impl NewToken {
    pub fn parse(body: CreateBody) -> Result<NewToken, TokenInputError> {
        let name = check_name(&body.name)?;
        let environment = check_environment(body.environment.as_deref().unwrap_or(""))?;
        let tenant = body.tenant.as_deref().map(check_tenant).transpose()?;
        let (client_type, origins) = match body.token_type {
            TokenType::Client => {
                let client = body.client_type.unwrap_or(ClientType::Web);
                let origins = parse_client_origins(body.origins.as_deref().unwrap_or(&[]), client)?;
                (Some(client), origins)
            }
            TokenType::RemoteWrite => {
                if body.client_type.is_some() {
                    return Err(TokenInputError::ClientTypeOnRemoteWrite);
                }
                if body.origins.as_ref().is_some_and(|o| !o.is_empty()) {
                    return Err(TokenInputError::OriginsOnRemoteWrite);
                }
                (None, OriginList::default())
            }
        };
        let attestation = check_attestation(body.attestation.as_ref(), client_type)?;
        Ok(NewToken {
            name,
            token_type: body.token_type,
            client_type,
            origins,
            environment,
            tenant,
            limits: body.limits.unwrap_or_default(),
            attestation,
            abuse: check_abuse(body.abuse.unwrap_or_default())?,
        })
    }
}

impl TokenRecord {
    /// Applies a validated patch to a copy of this record.
    pub fn patched(&self, body: &PatchBody) -> Result<TokenRecord, TokenInputError> {
        let mut next = self.clone();
        if let Some(name) = &body.name {
            next.name = check_name(name)?;
        }
        if let Some(env) = &body.environment {
            next.environment = check_environment(env)?;
        }
        if let Some(tenant) = &body.tenant {
            next.tenant = if tenant.is_empty() {
                None
            } else {
                Some(check_tenant(tenant)?)
            };
        }
        if let Some(client) = body.client_type {
            if self.token_type == TokenType::RemoteWrite {
                return Err(TokenInputError::ClientTypeOnRemoteWrite);
            }
            if Some(client) != self.client_type && body.origins.is_none() {
                return Err(TokenInputError::ClientTypeNeedsOrigins);
            }
            next.client_type = Some(client);
        }
        if let Some(origins) = &body.origins {
            if self.token_type == TokenType::RemoteWrite {
                if !origins.is_empty() {
                    return Err(TokenInputError::OriginsOnRemoteWrite);
                }
            } else {
                let client = next.client_type.unwrap_or(ClientType::Web);
                next.origins = parse_client_origins(origins, client)?;
            }
        }
        if let Some(settings) = &body.attestation {
            next.attestation = check_attestation(Some(settings), next.client_type)?;
        } else if next.attestation.is_some() && next.client_type != Some(ClientType::Mobile) {
            return Err(TokenInputError::AttestationNotMobile);
        }
        if let Some(limits) = &body.limits {
            next.limits = *limits;
        }
        if let Some(abuse) = body.abuse {
            next.abuse = check_abuse(abuse)?;
        }
        Ok(next)
    }

    pub fn is_revoked(&self) -> bool {
        self.revoked_at.is_some()
    }

    pub fn is_disabled(&self) -> bool {
        self.disabled_at.is_some()
    }

    /// Seconds since creation or the last rotation.
    pub fn age_secs(&self, now: u64) -> u64 {
        now.saturating_sub(self.rotated_at.unwrap_or(self.created_at))
    }
}

/// A fresh public id: `tk_` and 12 base62 characters (71 bits: collisions are checked anyway).
pub fn new_token_id() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::thread_rng();
    let mut id = String::with_capacity(15);
    id.push_str("tk_");
    for _ in 0..12 {
        id.push(char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]));
    }
    id
}

mod digest_hex {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::secret::Digest;

    pub fn serialize<S: Serializer>(d: &Digest, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&d.to_hex())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let text = String::deserialize(d)?;
        Digest::from_hex(&text).ok_or_else(|| serde::de::Error::custom("bad digest"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(origins: &[&str]) -> CreateBody {
        CreateBody {
            name: "Production RUM Token".into(),
            token_type: TokenType::Client,
            client_type: None,
            origins: Some(origins.iter().map(|s| s.to_string()).collect()),
            environment: Some("production".into()),
            tenant: None,
            limits: None,
            attestation: None,
            abuse: None,
        }
    }

    #[test]
    fn client_token_needs_valid_origins() {
        let t = NewToken::parse(client(&["https://*.example.com"])).unwrap();
        assert_eq!(t.client_type, Some(ClientType::Web));
        assert!(matches!(
            NewToken::parse(client(&[])),
            Err(TokenInputError::NoOrigins)
        ));
        let err = NewToken::parse(client(&[
            "example.com",
            "https://ok.com",
            "https://example.*",
        ]))
        .unwrap_err();
        let details = err.details();
        assert_eq!(details.len(), 2, "{details:?}");
        assert!(details[0].contains("example.com"));
        assert!(details[1].contains("https://example.*"));
    }

    #[test]
    fn remote_write_token_has_no_origins() {
        let mut body = client(&["https://a.com"]);
        body.token_type = TokenType::RemoteWrite;
        assert!(matches!(
            NewToken::parse(body),
            Err(TokenInputError::OriginsOnRemoteWrite)
        ));
    }

    #[test]
    fn names_and_environments_are_checked() {
        let mut body = client(&["https://a.com"]);
        body.name = "  ".into();
        assert!(matches!(
            NewToken::parse(body),
            Err(TokenInputError::BadName)
        ));
        let mut body = client(&["https://a.com"]);
        body.environment = Some("prod uction".into());
        assert!(matches!(
            NewToken::parse(body),
            Err(TokenInputError::BadEnvironment)
        ));
    }

    #[test]
    fn ids_are_url_safe_and_distinct() {
        let a = new_token_id();
        assert_eq!(a.len(), 15);
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
        assert_ne!(a, new_token_id());
    }
}
