//! One client connection to the target: TCP, then TLS for `https://` targets (rustls, ring,
//! trusting `--tls-ca`), then HTTP/1.1 or, with `--h2`, HTTP/2 (ALPN `h2` on TLS, prior
//! knowledge on plain TCP). Each worker owns one connection and keeps one request in flight
//! on it, whatever the protocol, so runs with and without `--h2` load the server alike.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper::header::HOST;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::rustls;
use tokio_rustls::TlsConnector;

use crate::target::Target;

/// How connections are made; built once per run.
#[derive(Clone)]
pub struct Connector {
    /// `Some` for `https://` targets.
    tls: Option<TlsConnector>,
    /// `--h2`.
    h2: bool,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("tls", &self.tls.is_some())
            .field("h2", &self.h2)
            .finish()
    }
}

impl Connector {
    /// `ca`: PEM file of the CA that signed the target's certificate (needed for `https://`).
    pub fn new(target: &Target, ca: Option<&Path>, h2: bool) -> Result<Connector, String> {
        let tls = match (target.tls, ca) {
            (false, _) => None,
            (true, None) => return Err("an https:// target needs --tls-ca FILE".into()),
            (true, Some(path)) => Some(tls_connector(path, h2)?),
        };
        Ok(Connector { tls, h2 })
    }

    /// Opens one connection.
    pub async fn connect(&self, target: &Target, limit: Duration) -> Result<Sender, &'static str> {
        let stream = match timeout(limit, TcpStream::connect(target.addr)).await {
            Err(_) => return Err("connect_timeout"),
            Ok(Err(_)) => return Err("connect"),
            Ok(Ok(s)) => s,
        };
        // Small requests must not wait for Nagle.
        let _ = stream.set_nodelay(true);
        match &self.tls {
            None => self.handshake(stream).await,
            Some(tls) => {
                let name = rustls::pki_types::ServerName::try_from(target.server_name.clone())
                    .map_err(|_| "tls_name")?;
                let stream = timeout(limit, tls.connect(name, stream))
                    .await
                    .map_err(|_| "tls_timeout")?
                    .map_err(|_| "tls")?;
                if self.h2 && stream.get_ref().1.alpn_protocol() != Some(b"h2") {
                    return Err("no_h2_alpn");
                }
                self.handshake(stream).await
            }
        }
    }

    async fn handshake<I>(&self, io: I) -> Result<Sender, &'static str>
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let io = TokioIo::new(io);
        if self.h2 {
            let (sender, conn) = http2::handshake(TokioExecutor::new(), io)
                .await
                .map_err(|_| "handshake")?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok(Sender::H2(sender))
        } else {
            let (sender, conn) = http1::handshake(io).await.map_err(|_| "handshake")?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok(Sender::H1(sender))
        }
    }
}

fn tls_connector(ca: &Path, h2: bool) -> Result<TlsConnector, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).map_err(|e| format!("{}: {e}", ca.display()))? {
        let cert = cert.map_err(|e| format!("{}: {e}", ca.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("{}: {e}", ca.display()))?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![if h2 {
        b"h2".to_vec()
    } else {
        b"http/1.1".to_vec()
    }];
    Ok(TlsConnector::from(Arc::new(config)))
}

/// A ready connection of either protocol.
pub enum Sender {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

impl Sender {
    /// `Err` once the server closed the connection.
    pub async fn ready(&mut self) -> Result<(), hyper::Error> {
        match self {
            Sender::H1(s) => s.ready().await,
            Sender::H2(s) => s.ready().await,
        }
    }

    /// Sends one request (origin-form URI and `Host` as built for HTTP/1.1) and drains the
    /// response; returns the status code.
    pub async fn send(
        &mut self,
        target: &Target,
        mut req: Request<Full<Bytes>>,
    ) -> Result<u16, hyper::Error> {
        let resp = match self {
            Sender::H1(s) => s.send_request(req).await?,
            Sender::H2(s) => {
                // HTTP/2 carries scheme and authority as pseudo-headers, not `Host`.
                *req.uri_mut() = target.absolute.clone();
                req.headers_mut().remove(HOST);
                s.send_request(req).await?
            }
        };
        let status = resp.status().as_u16();
        resp.into_body().collect().await?;
        Ok(status)
    }
}
