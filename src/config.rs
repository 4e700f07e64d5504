//! Configuration: the TOML file (`config/edge.toml`), the built-in defaults for every key that
//! is absent, and the `INGEST_EDGE_*` environment overrides of SPEC §2.
//!
//! Parsing produces typed values (socket addresses, non-zero rates, byte sizes, durations), so
//! the rest of the crate never re-checks a setting.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod abuse;
mod check;
mod endpoints;
mod limits;
mod pipeline;
mod server;

pub use abuse::{AbuseConfig, LeakedSecretAction, UsageConfig};
pub use endpoints::{
    AdminConfig, BodyLimits, MobileConfig, RemoteWriteConfig, RotationPeriod, RumConfig,
    StoreConfig,
};
pub use limits::{LimitDefaults, LimitOverrides, RateLimits, RedisUrl};
pub use pipeline::PipelineSettings;
pub use server::ServerConfig;

/// Everything that can be configured. Every field has a default (see `Default` impls), so an
/// empty file is a valid configuration.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Listener addresses, connection caps and timeouts.
    pub server: ServerConfig,
    /// Where the token store, audit log, admin key and spool live.
    pub data_dir: DataDir,
    /// The shared token store of several edges (SPEC §16); empty: the files in `data_dir`.
    pub store: StoreConfig,
    /// Admin API key and token lifecycle settings.
    pub admin: AdminConfig,
    /// Body size limits per endpoint.
    pub body: BodyLimits,
    /// RUM (browser) endpoint settings.
    pub rum: RumConfig,
    /// remote_write endpoint settings.
    pub remote_write: RemoteWriteConfig,
    /// Default per-token rate limits by token type.
    pub limits: LimitDefaults,
    /// Usage metrics settings.
    pub usage: UsageConfig,
    /// The hand-off to the spool and upstream forwarders.
    pub pipeline: PipelineSettings,
    /// Abuse monitoring: windows, thresholds, default response, the webhook and the
    /// leaked-secret endpoint (SPEC §12).
    pub abuse: AbuseConfig,
    /// Mobile client tokens (App Check keys).
    pub mobile: MobileConfig,
    /// Log filter (tracing `EnvFilter` syntax).
    pub log: String,
}

/// The data directory; a newtype so the default (`./data`) lives in one place.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(transparent)]
pub struct DataDir(pub PathBuf);

impl Default for DataDir {
    fn default() -> Self {
        DataDir(PathBuf::from("./data"))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("invalid value {value:?} in environment variable {var}: {reason}")]
    Env {
        var: &'static str,
        value: String,
        reason: String,
    },
    #[error("invalid setting {key}: {reason}")]
    Invalid { key: &'static str, reason: String },
}

impl Config {
    /// Loads `path` if it exists (a missing default file means built-in defaults), then applies
    /// the environment overrides.
    pub fn load(path: &Path, must_exist: bool) -> Result<Config, ConfigError> {
        let mut config = match std::fs::read_to_string(path) {
            Ok(text) => Config::from_toml(&text).map_err(|source| ConfigError::Parse {
                path: path.to_owned(),
                source: Box::new(source),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => Config::default(),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        config.apply_env(|var| std::env::var(var).ok())?;
        config.check()?;
        Ok(config)
    }

    pub fn from_toml(text: &str) -> Result<Config, toml::de::Error> {
        toml::from_str(text)
    }

    /// SPEC §2 overrides; `get` is injected so tests need not touch the process environment.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn addr(var: &'static str, value: String) -> Result<SocketAddr, ConfigError> {
            value
                .parse()
                .map_err(|e: std::net::AddrParseError| ConfigError::Env {
                    var,
                    value,
                    reason: e.to_string(),
                })
        }
        if let Some(v) = get("INGEST_EDGE_INGEST_ADDR") {
            self.server.ingest_addr = addr("INGEST_EDGE_INGEST_ADDR", v)?;
        }
        if let Some(v) = get("INGEST_EDGE_OPS_ADDR") {
            self.server.ops_addr = addr("INGEST_EDGE_OPS_ADDR", v)?;
        }
        if let Some(v) = get("INGEST_EDGE_DATA_DIR") {
            self.data_dir = DataDir(PathBuf::from(v));
        }
        if let Some(v) = get("INGEST_EDGE_ADMIN_KEY") {
            self.admin.key = Some(v);
        }
        if let Some(v) = get("INGEST_EDGE_STORE_URL") {
            self.store.url = v;
        }
        if let Some(v) = get("INGEST_EDGE_REDIS_URL") {
            self.limits.redis_url = RedisUrl(v);
        }
        if let Some(v) = get("INGEST_EDGE_LOG") {
            self.log = v;
        }
        if let Some(v) = get("INGEST_EDGE_REMOTE_WRITE_UPSTREAM") {
            self.pipeline.remote_write_upstream = Some(v).filter(|v| !v.is_empty());
        }
        if let Some(v) = get("INGEST_EDGE_OTLP_UPSTREAM") {
            self.pipeline.otlp_upstream = Some(v).filter(|v| !v.is_empty());
        }
        Ok(())
    }

    pub fn log_filter(&self) -> &str {
        if self.log.is_empty() {
            "info"
        } else {
            &self.log
        }
    }
}

/// Durations in the config are human strings (`"30s"`, `"90d"`, `"1h 30m"`).
mod humantime_serde_compat {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub trait AsDuration: Sized {
        fn duration(&self) -> Duration;
        fn from_duration(d: Duration) -> Self;
    }
    impl AsDuration for Duration {
        fn duration(&self) -> Duration {
            *self
        }
        fn from_duration(d: Duration) -> Self {
            d
        }
    }
    impl AsDuration for super::RotationPeriod {
        fn duration(&self) -> Duration {
            self.0
        }
        fn from_duration(d: Duration) -> Self {
            super::RotationPeriod(d)
        }
    }

    pub fn serialize<S: Serializer, T: AsDuration>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(v.duration()).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>, T: AsDuration>(d: D) -> Result<T, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text)
            .map(T::from_duration)
            .map_err(|e| serde::de::Error::custom(format!("{text:?}: {e}")))
    }
}

#[cfg(test)]
mod tests;
