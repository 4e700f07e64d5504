//! A throwaway PKI made at test time with rcgen: one CA and leaf certificates for
//! `127.0.0.1` and `localhost`, written as PEM files the edge reads like certbot's.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use base64::Engine as _;
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, IsCa, KeyPair, SerialNumber,
};
use sha2::Digest as _;

pub struct Ca {
    cert: Certificate,
    key: KeyPair,
}

/// One leaf: what the edge presents, and what a client compares against.
pub struct Leaf {
    /// PEM chain: the leaf, then the CA (as `fullchain.pem`).
    pub chain_pem: String,
    pub key_pem: String,
    /// DER of the leaf, as a client sees its peer certificate.
    pub der: Vec<u8>,
    /// base64(SHA-256(SubjectPublicKeyInfo)): Chromium's `--ignore-certificate-errors-spki-list`.
    pub spki_sha256: String,
}

impl Ca {
    pub fn new() -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "ingest-edge test CA");
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// Writes the CA certificate to `dir/ca.pem`.
    pub fn write(&self, dir: &Path) -> PathBuf {
        let path = dir.join("ca.pem");
        std::fs::write(&path, self.pem()).unwrap();
        path
    }

    /// A leaf for 127.0.0.1 and localhost with this common name and serial.
    pub fn leaf(&self, cn: &str, serial: u64) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.serial_number = Some(SerialNumber::from(serial));
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        let spki = sha2::Sha256::digest(key.public_key_der());
        Leaf {
            chain_pem: format!("{}{}", cert.pem(), self.cert.pem()),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
            spki_sha256: base64::engine::general_purpose::STANDARD.encode(spki),
        }
    }
}

impl Leaf {
    /// Writes `cert.pem` and `key.pem` into `dir` in place; returns their paths.
    pub fn write(&self, dir: &Path) -> (PathBuf, PathBuf) {
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, &self.chain_pem).unwrap();
        std::fs::write(&key, &self.key_pem).unwrap();
        (cert, key)
    }

    /// Replaces `cert.pem` and `key.pem` in `dir` the way certbot and most deploy tools do:
    /// write new files beside them, then rename over (new inodes, never a half file).
    pub fn swap_into(&self, dir: &Path) {
        std::fs::write(dir.join("key.pem.new"), &self.key_pem).unwrap();
        std::fs::write(dir.join("cert.pem.new"), &self.chain_pem).unwrap();
        std::fs::rename(dir.join("key.pem.new"), dir.join("key.pem")).unwrap();
        std::fs::rename(dir.join("cert.pem.new"), dir.join("cert.pem")).unwrap();
    }
}
