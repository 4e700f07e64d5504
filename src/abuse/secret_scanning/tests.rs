//! Signature checks against signatures made elsewhere: GitHub's documented example and OpenSSL.

use super::keys::{KeySet, VerifyError};

/// GitHub's example from its partner-program documentation (github/docs pull 18776): the
/// payload, its signature and the public key it names.
const GITHUB_KEY_ID: &str = "90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a";
const GITHUB_PAYLOAD: &[u8] = br#"[{"token":"some_token","type":"some_type","url":"some_url"}]"#;
const GITHUB_SIGNATURE: &str =
    "MEUCIQDKZokqnCjrRtw0tni+2Ltvl/uiMJ1EGumEsp1BsNr32AIgQY1YXD2nlj+XNfGK4rBfkMJ1JDOQcYXxa2sY8FNkrKc=";
const GITHUB_KEY: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE9MJJHnMfn2+H4xL4YaPDA4RpJqUq\nkCmRCBnYERxZanmcpzQSXs1X/AljlKkbJ8qpVIW4clayyef9gWhFbNHWAA==\n-----END PUBLIC KEY-----\n";

fn keys_json(id: &str, pem: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "public_keys": [
            {"key_identifier": "some-other-key", "key": "not a key", "is_current": false},
            {"key_identifier": id, "key": pem, "is_current": true},
        ]
    }))
    .unwrap()
}

#[test]
fn githubs_documented_example_verifies() {
    let keys = KeySet::parse(&keys_json(GITHUB_KEY_ID, GITHUB_KEY)).unwrap();
    assert_eq!(keys.len(), 1, "the unusable key is skipped");
    assert_eq!(
        keys.verify(GITHUB_KEY_ID, GITHUB_SIGNATURE, GITHUB_PAYLOAD),
        Ok(())
    );
    let mut tampered = GITHUB_PAYLOAD.to_vec();
    tampered[11] = b'S';
    assert_eq!(
        keys.verify(GITHUB_KEY_ID, GITHUB_SIGNATURE, &tampered),
        Err(VerifyError::Mismatch)
    );
    assert_eq!(
        keys.verify("another-id", GITHUB_SIGNATURE, GITHUB_PAYLOAD),
        Err(VerifyError::UnknownKey)
    );
    assert_eq!(
        keys.verify(GITHUB_KEY_ID, "not base64!", GITHUB_PAYLOAD),
        Err(VerifyError::Malformed)
    );
    assert_eq!(
        keys.verify(GITHUB_KEY_ID, "AAAA", GITHUB_PAYLOAD),
        Err(VerifyError::Malformed)
    );
}

#[test]
fn openssl_signatures_verify_whether_s_is_high_or_low() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/secret-scanning");
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    let keys = KeySet::parse(&keys_json("test", &read("public.pem"))).unwrap();
    let body = std::fs::read(dir.join("body.json")).unwrap();
    for sig in ["high-s.sig.b64", "low-s.sig.b64"] {
        assert_eq!(keys.verify("test", &read(sig), &body), Ok(()), "{sig}");
    }
    // The other key's signature does not pass for this one.
    assert_eq!(
        keys.verify("test", GITHUB_SIGNATURE, &body),
        Err(VerifyError::Mismatch)
    );
}

#[test]
fn a_file_without_a_usable_key_is_refused() {
    assert!(KeySet::parse(b"{}").is_err());
    assert!(KeySet::parse(br#"{"public_keys": []}"#).is_err());
    assert!(KeySet::parse(&keys_json(
        "x",
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"
    ))
    .is_err());
}
