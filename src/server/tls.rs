//! TLS for a listener: the rustls configuration (TLS 1.2 and 1.3 only, ALPN `h2` then
//! `http/1.1`, the `ring` provider) and the certificate it presents, which can be replaced
//! while connections are open.
//!
//! The certificate lives behind a lock in [`CertStore`], which rustls asks on every handshake
//! (`ResolvesServerCert`). A reload parses the files into a new `CertifiedKey` first and swaps
//! it in only when that worked: a half-written or mismatched pair keeps the old one. Open
//! connections hold their own session state and never look at the store again, so a swap
//! affects new handshakes only.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

/// Why a certificate pair could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: no PEM certificate found")]
    NoCertificate { path: PathBuf },
    #[error("{path}: no usable PEM private key: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("the key does not fit the certificate: {0}")]
    Mismatch(rustls::Error),
    #[error("TLS setup: {0}")]
    Setup(rustls::Error),
}

/// The certificate currently presented, and where it comes from.
pub struct CertStore {
    /// `server.tls_cert_file`: the chain, leaf first (certbot's `fullchain.pem`).
    cert_path: PathBuf,
    /// `server.tls_key_file`.
    key_path: PathBuf,
    /// What new handshakes get. A read lock per handshake is uncontended in practice (writes
    /// happen on reload only) and cheaper than the handshake by orders of magnitude.
    current: RwLock<Arc<CertifiedKey>>,
    /// The one provider used for parsing keys and for the config.
    provider: Arc<CryptoProvider>,
}

impl fmt::Debug for CertStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertStore")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .finish_non_exhaustive()
    }
}

impl CertStore {
    /// Loads the pair once; an error here stops the edge from starting.
    pub fn open(cert_path: &Path, key_path: &Path) -> Result<Arc<CertStore>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let current = load(cert_path, key_path, &provider)?;
        Ok(Arc::new(CertStore {
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            current: RwLock::new(current),
            provider,
        }))
    }

    /// Reads the files again and, if they make a valid pair, presents it from the next
    /// handshake on. On error the previous certificate stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = load(&self.cert_path, &self.key_path, &self.provider)?;
        // A poisoned lock only means a writer panicked between two whole values.
        let mut slot = self.current.write().unwrap_or_else(|e| e.into_inner());
        *slot = fresh;
        Ok(())
    }

    /// The files to watch for changes.
    pub fn paths(&self) -> [&Path; 2] {
        [&self.cert_path, &self.key_path]
    }

    fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A rustls acceptor that presents whatever this store holds at each handshake.
    pub fn acceptor(self: &Arc<Self>) -> Result<TlsAcceptor, TlsError> {
        let mut config = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(TlsError::Setup)?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Resolver(self.clone())));
        // Preference order: HTTP/2 for the clients that offer it (browsers do).
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

/// The store as rustls sees it (a newtype so the store's own API stays ours).
#[derive(Debug)]
struct Resolver(Arc<CertStore>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.current())
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Parses a PEM chain and key and checks that they belong together.
fn load(
    cert_path: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&read(cert_path)?)
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert_path.to_owned(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(&read(key_path)?).map_err(|e| TlsError::Key {
        path: key_path.to_owned(),
        reason: e.to_string(),
    })?;
    // `from_der` checks the key against the leaf's public key: a reload caught between
    // certbot writing the new chain and the new key must not present a broken pair.
    let certified = CertifiedKey::from_der(chain, key, provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => TlsError::Mismatch(e),
        other => TlsError::Key {
            path: key_path.to_owned(),
            reason: other.to_string(),
        },
    })?;
    Ok(Arc::new(certified))
}
