//! The forwarders' HTTP client, shared by both upstreams (SPEC §15): `http://` or `https://`
//! with rustls (ring provider; TLS 1.2 and 1.3), the system roots plus
//! `pipeline.upstream_ca_file`, and optional credentials (a bearer token, or Basic auth)
//! read from files once at start. The credential only ever lives in a header value marked
//! sensitive, so neither a log line nor a `Debug` print shows it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};

use super::{PipelineConfig, PipelineError};
use crate::config::PipelineSettings;

/// How the edge authenticates to its upstreams.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Credentials {
    /// No `Authorization` header.
    #[default]
    None,
    /// `Authorization: Bearer <file contents>`.
    BearerFile(PathBuf),
    /// `Authorization: Basic base64(username:<file contents>)`.
    Basic {
        /// Not a secret; sent as is.
        username: String,
        /// Where the password is; only the path is ever printed.
        password_file: PathBuf,
    },
}

impl Credentials {
    /// From the `[pipeline]` settings (their combinations are checked by `Config::check`).
    pub fn from_settings(p: &PipelineSettings) -> Credentials {
        match (
            &p.upstream_bearer_token_file,
            &p.upstream_username,
            &p.upstream_password_file,
        ) {
            (Some(file), _, _) => Credentials::BearerFile(file.clone()),
            (None, Some(username), Some(password_file)) => Credentials::Basic {
                username: username.clone(),
                password_file: password_file.clone(),
            },
            _ => Credentials::None,
        }
    }

    /// The `Authorization` value, with the files read now. Trailing whitespace (the newline an
    /// editor or `echo` leaves) is not part of a secret.
    fn header(&self) -> Result<Option<HeaderValue>, PipelineError> {
        let value = match self {
            Credentials::None => return Ok(None),
            Credentials::BearerFile(file) => format!("Bearer {}", read_secret(file)?),
            Credentials::Basic {
                username,
                password_file,
            } => {
                let pair = format!("{username}:{}", read_secret(password_file)?);
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                )
            }
        };
        let mut value = HeaderValue::try_from(value).map_err(|_| {
            PipelineError::Config(
                "upstream credentials: the file holds characters not allowed in a header".into(),
            )
        })?;
        value.set_sensitive(true);
        Ok(Some(value))
    }
}

fn read_secret(file: &Path) -> Result<String, PipelineError> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        PipelineError::Config(format!("cannot read upstream credential {file:?}: {e}"))
    })?;
    let secret = text.trim_end();
    if secret.is_empty() {
        return Err(PipelineError::Config(format!(
            "upstream credential {file:?} is empty"
        )));
    }
    Ok(secret.to_owned())
}

/// Builds the client for both upstreams.
pub(super) fn build(cfg: &PipelineConfig) -> Result<reqwest::Client, PipelineError> {
    let mut builder = reqwest::Client::builder()
        .timeout(cfg.upstream_timeout)
        .connect_timeout(cfg.upstream_timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("ingest-edge/", env!("CARGO_PKG_VERSION")))
        .no_proxy()
        .use_rustls_tls()
        .min_tls_version(reqwest::tls::Version::TLS_1_2);
    if let Some(file) = &cfg.upstream_ca_file {
        let pem = std::fs::read(file).map_err(|e| {
            PipelineError::Config(format!(
                "cannot read pipeline.upstream_ca_file {file:?}: {e}"
            ))
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            PipelineError::Config(format!("pipeline.upstream_ca_file {file:?}: {e}"))
        })?;
        if certs.is_empty() {
            return Err(PipelineError::Config(format!(
                "pipeline.upstream_ca_file {file:?} holds no PEM certificate"
            )));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    if let Some(auth) = cfg.upstream_credentials.header()? {
        // On every request to either upstream; reqwest drops it on a redirect to another host.
        builder = builder.default_headers(HeaderMap::from_iter([(AUTHORIZATION, auth)]));
    }
    builder
        .build()
        .map_err(|e| PipelineError::Config(format!("http client: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_read_trimmed_and_sensitive() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "s3cr3t\n").unwrap();
        let h = Credentials::BearerFile(token.clone())
            .header()
            .unwrap()
            .unwrap();
        assert_eq!(h, "Bearer s3cr3t");
        assert!(h.is_sensitive());
        assert!(!format!("{h:?}").contains("s3cr3t"));
        let basic = Credentials::Basic {
            username: "edge".into(),
            password_file: token,
        };
        // base64("edge:s3cr3t")
        assert_eq!(basic.header().unwrap().unwrap(), "Basic ZWRnZTpzM2NyM3Q=");
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        assert!(Credentials::BearerFile(empty).header().is_err());
        let missing = Credentials::BearerFile(dir.path().join("missing")).header();
        assert!(missing.is_err());
        assert_eq!(Credentials::None.header().unwrap(), None);
    }
}
