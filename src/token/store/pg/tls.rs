//! TLS to PostgreSQL: the URL's `sslmode` and `sslrootcert` read as libpq reads them, on the
//! rustls (ring) the edge already has, so no second TLS stack or crate is linked.
//!
//! | `sslmode`            | TLS                         | server certificate                  |
//! |----------------------|-----------------------------|-------------------------------------|
//! | `disable`            | never                       | -                                   |
//! | `allow`, `prefer`    | if the server offers it     | not checked                         |
//! | `require`            | always                      | not checked (`verify-ca` when       |
//! |                      |                             | `sslrootcert` is given, as libpq)   |
//! | `verify-ca`          | always                      | signed by the root                  |
//! | `verify-full`        | always                      | signed by the root, names the host  |
//!
//! Roots: `sslrootcert=<PEM file>`, `sslrootcert=system` (the system's store; then only
//! `verify-full`, as libpq 16), else `~/.postgresql/root.crt` like libpq. `allow` tries TLS
//! first (tokio-postgres cannot try plain first); it accepts the same servers. Client
//! certificates (`sslcert`, `sslkey`) are not supported: tokio-postgres refuses the URL.
//! No channel binding: SCRAM runs without `-PLUS`, as libpq does with `channel_binding=prefer`
//! when the TLS library offers none.

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use postgres::config::SslMode;
use postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What the server's certificate must prove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// Encryption only (`prefer`, `require`): anyone on the path may answer.
    Nothing,
    /// Signed by a trusted root, whatever name it carries (`verify-ca`).
    Chain,
    /// Signed by a trusted root and naming the host dialled (`verify-full`).
    ChainAndName,
}

/// Splits `sslmode` and `sslrootcert` off a `postgres://` URL (tokio-postgres knows neither
/// `verify-*` nor `sslrootcert`) and builds the connector they ask for. Returns the URL left
/// for tokio-postgres with the `SslMode` it should negotiate.
pub(super) fn parse(url: &str) -> Result<(String, SslMode, MakeRustls), String> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let (mut mode, mut root) = (None, None);
    // The other parameters go on byte for byte (re-encoding would turn `%20` into `+`).
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let decoded = url::form_urlencoded::parse(pair.as_bytes()).next();
        match decoded {
            Some((k, v)) if k == "sslmode" => mode = Some(v.into_owned()),
            Some((k, v)) if k == "sslrootcert" => root = Some(v.into_owned()),
            _ => rest.push(pair),
        }
    }
    let left = if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    let system = root.as_deref() == Some("system");
    let mode = mode.unwrap_or_else(|| if system { "verify-full" } else { "prefer" }.into());
    let (ssl, check) = match mode.as_str() {
        "disable" => (SslMode::Disable, Check::Nothing),
        "allow" | "prefer" => (SslMode::Prefer, Check::Nothing),
        "require" if root.is_some() => (SslMode::Require, Check::Chain),
        "require" => (SslMode::Require, Check::Nothing),
        "verify-ca" => (SslMode::Require, Check::Chain),
        "verify-full" => (SslMode::Require, Check::ChainAndName),
        other => {
            return Err(format!(
            "sslmode={other}: not one of disable, allow, prefer, require, verify-ca, verify-full"
        ))
        }
    };
    if system && check != Check::ChainAndName {
        return Err(format!(
            "sslmode={mode} with sslrootcert=system: use verify-full (as libpq)"
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier: Arc<dyn ServerCertVerifier> = if check == Check::Nothing {
        Arc::new(Unchecked(provider.clone()))
    } else {
        let roots = roots(root.as_deref())?;
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| format!("sslrootcert: {e}"))?;
        Arc::new(Verified { inner, check })
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok((left, ssl, MakeRustls(Arc::new(config))))
}

/// The trusted roots: a PEM file, the system's store, or libpq's default file.
fn roots(root: Option<&str>) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    if root == Some("system") {
        let found = rustls_native_certs::load_native_certs();
        let (added, _) = store.add_parsable_certificates(found.certs);
        if added == 0 {
            return Err("sslrootcert=system: no certificate in the system's store".into());
        }
        return Ok(store);
    }
    let path = match root {
        Some(p) => PathBuf::from(p),
        None => std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".postgresql/root.crt"))
            .filter(|p| p.exists())
            .ok_or("sslmode verify-ca/verify-full needs sslrootcert=<PEM file> (no ~/.postgresql/root.crt)")?,
    };
    let pem = std::fs::read(&path).map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
        store
            .add(cert)
            .map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
    }
    if store.is_empty() {
        return Err(format!("sslrootcert {}: no certificate", path.display()));
    }
    Ok(store)
}

/// `prefer`/`require`: the handshake's signatures are checked, the certificate is not.
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`/`verify-full`: webpki's check; for `verify-ca` a certificate naming another
/// host is accepted (webpki checks the name last, after the chain, expiry and usage).
#[derive(Debug)]
struct Verified {
    inner: Arc<WebPkiServerVerifier>,
    check: Check,
}

impl ServerCertVerifier for Verified {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if self.check == Check::Chain => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The connector handed to `postgres::Config::connect`; cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct MakeRustls(Arc<ClientConfig>);

impl<S> MakeTlsConnect<S> for MakeRustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Stream<S>;
    type TlsConnect = Connect;
    type Error = rustls::pki_types::InvalidDnsNameError;

    fn make_tls_connect(&mut self, host: &str) -> Result<Connect, Self::Error> {
        Ok(Connect {
            config: self.0.clone(),
            name: ServerName::try_from(host)?.to_owned(),
        })
    }
}

/// One handshake, to the host named in the URL (SNI and, for `verify-full`, the name checked).
pub struct Connect {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl<S> TlsConnect<S> for Connect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Stream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Stream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        let connector = tokio_rustls::TlsConnector::from(self.config);
        Box::pin(async move {
            connector
                .connect(self.name, stream)
                .await
                .map(|s| Stream(Box::new(s)))
        })
    }
}

/// The TLS session (boxed: a rustls connection is large and the enum holding it is not).
pub struct Stream<S>(Box<tokio_rustls::client::TlsStream<S>>);

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for Stream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Stream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Stream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(url: &str) -> Result<(String, SslMode), String> {
        parse(url).map(|(left, ssl, _)| (left, ssl))
    }

    #[test]
    fn modes_as_libpq_reads_them() {
        let u = "postgres://u:p@127.0.0.1:5432/db";
        assert_eq!(mode(u).unwrap(), (u.to_owned(), SslMode::Prefer));
        for (m, want) in [
            ("disable", SslMode::Disable),
            ("allow", SslMode::Prefer),
            ("prefer", SslMode::Prefer),
            ("require", SslMode::Require),
        ] {
            let url = format!("{u}?application_name=x&sslmode={m}&options=-c%20a%3Db");
            let left = format!("{u}?application_name=x&options=-c%20a%3Db");
            assert_eq!(mode(&url).unwrap(), (left, want));
        }
        assert!(mode(&format!(
            "{u}?sslmode=verify-full&sslrootcert=/nonexistent.pem"
        ))
        .unwrap_err()
        .contains("/nonexistent.pem"));
        assert!(mode(&format!("{u}?sslmode=bogus"))
            .unwrap_err()
            .contains("bogus"));
        assert!(mode(&format!("{u}?sslmode=require&sslrootcert=system"))
            .unwrap_err()
            .contains("verify-full"));
    }
}
