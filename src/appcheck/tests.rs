//! App Check verification against tokens minted here with the test keys of
//! `tests/fixtures/app-check` (one case per way a token can be wrong), key reloading, and a
//! timing print (`cargo test --release --lib appcheck::tests::verify_timing -- --nocapture`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::{json, Value};

use super::*;

const PROJECT: &str = "123456789012";
const APP: &str = "1:123456789012:android:0a1b2c3d4e5f6789";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/app-check")
        .join(name)
}

fn settings(mode: Mode) -> Attestation {
    Attestation {
        mode,
        project_number: PROJECT.into(),
        app_ids: vec!["1:123456789012:ios:ffff".into(), APP.into()],
    }
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn good_claims() -> Value {
    let now = now();
    json!({
        "iss": format!("https://firebaseappcheck.googleapis.com/{PROJECT}"),
        "aud": [format!("projects/{PROJECT}"), "projects/shop-prod"],
        "sub": APP,
        "iat": now,
        "exp": now + 3600,
    })
}

fn mint_with(key_file: &str, kid: &str, claims: &Value) -> String {
    let pem = std::fs::read(fixture(key_file)).unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.into());
    encode(&header, claims, &EncodingKey::from_rsa_pem(&pem).unwrap()).unwrap()
}

fn mint(claims: &Value) -> String {
    mint_with("test-key.pem", "test-key-1", claims)
}

fn with(field: &str, value: Value) -> Value {
    let mut c = good_claims();
    c[field] = value;
    c
}

fn b64(v: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v)
}

fn keys() -> KeyStore {
    KeyStore::new(Some(fixture("jwks.json")))
}

fn check(keys: &KeyStore, token: &str) -> Result<(), AppCheckError> {
    verify(
        keys,
        &settings(Mode::Enforce),
        Some(token.as_bytes()),
        now(),
    )
}

#[test]
fn a_valid_token_passes_with_either_audience_form() {
    let keys = keys();
    assert_eq!(check(&keys, &mint(&good_claims())), Ok(()));
    let single = with("aud", json!(format!("projects/{PROJECT}")));
    assert_eq!(check(&keys, &mint(&single)), Ok(()));
    // Within the 60 s leeway on both sides.
    assert_eq!(check(&keys, &mint(&with("exp", json!(now() - 30)))), Ok(()));
    assert_eq!(check(&keys, &mint(&with("iat", json!(now() + 30)))), Ok(()));
}

#[test]
fn every_wrong_token_fails_with_its_reason() {
    let keys = keys();
    let now = now();
    let pub_pem = std::fs::read(fixture("test-key.pub.pem")).unwrap();
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some("test-key-1".into());
    let hs256_with_public_key =
        encode(&hs, &good_claims(), &EncodingKey::from_secret(&pub_pem)).unwrap();
    let alg_none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","kid":"test-key-1","typ":"JWT"}"#),
        b64(good_claims().to_string().as_bytes())
    );
    let mut flipped = mint(&good_claims()).into_bytes();
    let last = flipped.len() - 2;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let cases: Vec<(&str, String, AppCheckError)> = vec![
        (
            "expired",
            mint(&with("exp", json!(now - 120))),
            AppCheckError::Expired,
        ),
        (
            "nbf ahead",
            mint(&with("nbf", json!(now + 300))),
            AppCheckError::NotYetValid,
        ),
        (
            "iat ahead",
            mint(&with("iat", json!(now + 300))),
            AppCheckError::NotYetValid,
        ),
        (
            "wrong audience",
            mint(&with("aud", json!(["projects/999"]))),
            AppCheckError::Audience,
        ),
        (
            "audience prefix only",
            mint(&with("aud", json!("123456789012"))),
            AppCheckError::Audience,
        ),
        (
            "wrong issuer",
            mint(&with(
                "iss",
                json!("https://firebaseappcheck.googleapis.com/999"),
            )),
            AppCheckError::Issuer,
        ),
        (
            "issuer of another service",
            mint(&with(
                "iss",
                json!(format!("https://securetoken.google.com/{PROJECT}")),
            )),
            AppCheckError::Issuer,
        ),
        (
            "wrong app",
            mint(&with("sub", json!("1:123456789012:android:evil"))),
            AppCheckError::App,
        ),
        (
            "bad signature (other key, same kid)",
            mint_with("other-key.pem", "test-key-1", &good_claims()),
            AppCheckError::Signature,
        ),
        (
            "bad signature (bytes flipped)",
            String::from_utf8(flipped).unwrap(),
            AppCheckError::Signature,
        ),
        (
            "unknown kid",
            mint_with("test-key.pem", "nope", &good_claims()),
            AppCheckError::UnknownKey,
        ),
        ("alg none", alg_none, AppCheckError::Malformed),
        (
            "HS256 with the public key",
            hs256_with_public_key,
            AppCheckError::Algorithm,
        ),
        ("not a JWT", "hello".into(), AppCheckError::Malformed),
        (
            "over 4 KiB",
            "a".repeat(MAX_TOKEN_BYTES + 1),
            AppCheckError::TooLarge,
        ),
    ];
    for (what, token, want) in cases {
        assert_eq!(check(&keys, &token), Err(want), "{what}");
    }
    assert_eq!(
        verify(&keys, &settings(Mode::Enforce), None, now),
        Err(AppCheckError::Missing)
    );
}

/// A token whose signature checked is remembered, but every later request still checks its
/// time window and the token's settings (only the RSA work is skipped).
#[test]
fn a_remembered_token_is_still_checked_for_time_and_settings() {
    let keys = keys();
    let now = now();
    let token = mint(&with("exp", json!(now + 30)));
    assert_eq!(check(&keys, &token), Ok(()));
    assert_eq!(keys.remembered(), 1);
    assert_eq!(check(&keys, &token), Ok(()));
    assert_eq!(keys.remembered(), 1, "the same token is remembered once");
    let enforce = settings(Mode::Enforce);
    let raw = Some(token.as_bytes());
    assert_eq!(
        verify(&keys, &enforce, raw, now + 200),
        Err(AppCheckError::Expired)
    );
    assert_eq!(
        verify(&keys, &enforce, raw, now - 600),
        Err(AppCheckError::NotYetValid)
    );
    let mut other_project = settings(Mode::Enforce);
    other_project.project_number = "42".into();
    assert_eq!(
        verify(&keys, &other_project, raw, now),
        Err(AppCheckError::Issuer)
    );
    let mut other_app = settings(Mode::Enforce);
    other_app.app_ids = vec!["1:123456789012:android:other".into()];
    assert_eq!(verify(&keys, &other_app, raw, now), Err(AppCheckError::App));
    // Refused signatures are never remembered: each costs a verification again.
    let forged = mint_with("other-key.pem", "test-key-1", &good_claims());
    assert_eq!(check(&keys, &forged), Err(AppCheckError::Signature));
    assert_eq!(check(&keys, &forged), Err(AppCheckError::Signature));
    assert_eq!(keys.remembered(), 1);
}

#[test]
fn settings_are_validated_and_off_is_nothing() {
    assert_eq!(settings(Mode::Off).validated(), Ok(None));
    assert!(settings(Mode::Report).validated().unwrap().is_some());
    let mut s = settings(Mode::Enforce);
    s.project_number = "my-project".into();
    assert_eq!(s.validated(), Err(SettingsError::ProjectNumber));
    let mut s = settings(Mode::Enforce);
    s.app_ids.clear();
    assert_eq!(s.validated(), Err(SettingsError::AppIds));
    let mut s = settings(Mode::Enforce);
    s.app_ids.push("has space".into());
    assert_eq!(s.validated(), Err(SettingsError::AppIds));
}

#[test]
fn a_changed_jwks_file_is_picked_up_and_a_broken_one_keeps_the_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    let set_mtime = |secs: u64| {
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
            .unwrap();
    };
    std::fs::copy(fixture("jwks.json"), &path).unwrap();
    set_mtime(1_000);
    let keys = KeyStore::new(Some(path.clone()));
    let old = mint(&good_claims());
    let new = mint_with("other-key.pem", "test-key-2", &good_claims());
    assert_eq!(check(&keys, &old), Ok(()));
    assert_eq!(check(&keys, &new), Err(AppCheckError::UnknownKey));
    assert!(!keys.refresh(), "unchanged file: nothing to do");

    std::fs::copy(fixture("jwks-rotated.json"), &path).unwrap();
    set_mtime(2_000);
    assert!(keys.refresh());
    assert_eq!(check(&keys, &new), Ok(()));
    assert_eq!(check(&keys, &old), Err(AppCheckError::UnknownKey));

    std::fs::write(&path, b"{\"keys\": [").unwrap();
    set_mtime(3_000);
    assert!(!keys.refresh());
    assert_eq!(
        check(&keys, &new),
        Ok(()),
        "a broken file keeps the previous keys"
    );
}

#[test]
fn no_key_file_fails_every_check() {
    let keys = KeyStore::new(None);
    assert_eq!(
        check(&keys, &mint(&good_claims())),
        Err(AppCheckError::UnknownKey)
    );
}

/// Prints the cost of one verification; not asserted (machines differ).
#[test]
fn verify_timing() {
    let keys = keys();
    let token = mint(&good_claims());
    let settings = settings(Mode::Enforce);
    let n = 200u32;
    let time = |token: &str, forget: bool, ok: bool| {
        let start = Instant::now();
        for _ in 0..n {
            if forget {
                keys.forget_all();
            }
            let r = verify(&keys, &settings, Some(token.as_bytes()), now());
            assert_eq!(r.is_ok(), ok, "{r:?}");
        }
        start.elapsed() / n
    };
    let first = time(&token, true, true);
    let remembered = time(&token, false, true);
    let wrong_app = time(&mint(&with("sub", json!("1:1:android:x"))), true, false);
    let forged = time(
        &mint_with("other-key.pem", "test-key-1", &good_claims()),
        false,
        false,
    );
    let oversized = time(&"a".repeat(MAX_TOKEN_BYTES + 1), false, false);
    println!(
        "app check verify ({n} each, token {} bytes): valid, first seen {first:?}; valid, remembered {remembered:?}; \
         wrong app {wrong_app:?}; bad signature {forged:?}; oversized {oversized:?}",
        token.len()
    );
}
