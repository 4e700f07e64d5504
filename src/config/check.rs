//! The cross-field checks of a loaded configuration: what serde's types cannot say.

use std::time::Duration;

use super::{Config, ConfigError};

impl Config {
    /// Cross-field checks that serde cannot express.
    pub fn check(&self) -> Result<(), ConfigError> {
        if !matches!(self.remote_write.throttle_status, 429 | 503) {
            return Err(ConfigError::Invalid {
                key: "remote_write.throttle_status",
                reason: "must be 429 or 503".into(),
            });
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(30)).contains(&self.store.poll_interval) {
            return Err(ConfigError::Invalid {
                key: "store.poll_interval",
                reason: "must be between 1s and 30s".into(),
            });
        }
        let redis = &self.limits.redis_url.0;
        if !redis.is_empty() && !redis.starts_with("redis://") && !redis.starts_with("rediss://") {
            return Err(ConfigError::Invalid {
                key: "limits.redis_url",
                reason: "must be a redis:// or rediss:// (TLS) URL".into(),
            });
        }
        if self.limits.redis_ca_file.is_some() && !redis.starts_with("rediss://") {
            return Err(ConfigError::Invalid {
                key: "limits.redis_ca_file",
                reason: "is for a rediss:// (TLS) limits.redis_url".into(),
            });
        }
        if !self.store.url.is_empty() && !self.store.url.starts_with("postgres") {
            return Err(ConfigError::Invalid {
                key: "store.url",
                reason: "must be a postgres:// or postgresql:// URL".into(),
            });
        }
        if self.server.write_timeout.is_zero() {
            // Zero would drop every connection at its first full send buffer.
            return Err(ConfigError::Invalid {
                key: "server.write_timeout",
                reason: "must be more than 0".into(),
            });
        }
        if !(1024..=1 << 20).contains(&self.server.max_header_bytes) {
            return Err(ConfigError::Invalid {
                key: "server.max_header_bytes",
                reason: "must be between 1 KiB and 1 MiB".into(),
            });
        }
        if self.server.tls_cert_file.is_some() != self.server.tls_key_file.is_some() {
            return Err(ConfigError::Invalid {
                key: "server.tls_cert_file",
                reason: "tls_cert_file and tls_key_file are set together or not at all".into(),
            });
        }
        if self.server.ops_tls && self.server.tls_cert_file.is_none() {
            return Err(ConfigError::Invalid {
                key: "server.ops_tls",
                reason: "needs tls_cert_file and tls_key_file".into(),
            });
        }
        if self.server.tls_handshake_timeout.is_zero() || self.server.h2_max_concurrent_streams == 0
        {
            return Err(ConfigError::Invalid {
                key: "server.tls_handshake_timeout",
                reason: "tls_handshake_timeout and h2_max_concurrent_streams must be more than 0"
                    .into(),
            });
        }
        if let Some(key) = &self.admin.key {
            if key.len() < 16 {
                return Err(ConfigError::Invalid {
                    key: "admin.key",
                    reason: "must be at least 16 characters".into(),
                });
            }
        }
        for (key, n) in [
            (
                "pipeline.forward_concurrency",
                self.pipeline.forward_concurrency,
            ),
            (
                "pipeline.rum_forward_concurrency",
                self.pipeline.rum_forward_concurrency,
            ),
        ] {
            if !(1..=64).contains(&n) {
                return Err(ConfigError::Invalid {
                    key,
                    reason: "must be between 1 and 64".into(),
                });
            }
        }
        let abuse = &self.abuse;
        if abuse.short_window < Duration::from_millis(600) {
            return Err(ConfigError::Invalid {
                key: "abuse.short_window",
                reason: "must be at least 600ms (six ticks of at least 100 ms)".into(),
            });
        }
        if abuse.baseline_window < abuse.short_window {
            return Err(ConfigError::Invalid {
                key: "abuse.baseline_window",
                reason: "must be at least abuse.short_window".into(),
            });
        }
        if !(abuse.spike_factor.is_finite() && abuse.spike_factor > 1.0) {
            return Err(ConfigError::Invalid {
                key: "abuse.spike_factor",
                reason: "must be a number above 1".into(),
            });
        }
        for (key, v) in [
            ("abuse.min_items_per_second", abuse.min_items_per_second),
            (
                "abuse.origin_storm_per_second",
                abuse.origin_storm_per_second,
            ),
            ("abuse.auth_storm_per_second", abuse.auth_storm_per_second),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(ConfigError::Invalid {
                    key,
                    reason: "must be a number of at least 0".into(),
                });
            }
        }
        if self.pipeline.backpressure_max_wait > Duration::from_secs(60) {
            return Err(ConfigError::Invalid {
                key: "pipeline.backpressure_max_wait",
                reason: "must be at most 60s (a sender times out first)".into(),
            });
        }
        if self.pipeline.forward_batch_bytes > 64 << 20 {
            return Err(ConfigError::Invalid {
                key: "pipeline.forward_batch_bytes",
                reason: "must be at most 64 MiB (67108864); 0 turns merging off".into(),
            });
        }
        if self.pipeline.forward_linger > Duration::from_secs(1) {
            return Err(ConfigError::Invalid {
                key: "pipeline.forward_linger",
                reason: "must be at most 1s (it delays every delivery of an idle edge)".into(),
            });
        }
        let webhook_url = Some(self.abuse.webhook_url.clone()).filter(|u| !u.is_empty());
        for (key, url) in [
            (
                "pipeline.remote_write_upstream",
                &self.pipeline.remote_write_upstream,
            ),
            ("pipeline.otlp_upstream", &self.pipeline.otlp_upstream),
            ("abuse.webhook_url", &webhook_url),
        ] {
            if let Some(url) = url {
                let parsed = url::Url::parse(url).map_err(|e| ConfigError::Invalid {
                    key,
                    reason: format!("{url:?}: {e}"),
                })?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(ConfigError::Invalid {
                        key,
                        reason: format!("{url:?}: scheme must be http or https"),
                    });
                }
            }
        }
        let p = &self.pipeline;
        if p.upstream_bearer_token_file.is_some()
            && (p.upstream_username.is_some() || p.upstream_password_file.is_some())
        {
            return Err(ConfigError::Invalid {
                key: "pipeline.upstream_bearer_token_file",
                reason: "set either a bearer token or a username and password, not both".into(),
            });
        }
        if p.upstream_username.is_some() != p.upstream_password_file.is_some() {
            return Err(ConfigError::Invalid {
                key: "pipeline.upstream_username",
                reason: "upstream_username and upstream_password_file go together".into(),
            });
        }
        Ok(())
    }
}
