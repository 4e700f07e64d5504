//! Token secrets (`TokenSecret::parse`), run on every request's bearer token.
//!
//! Checked beyond "no panic": an accepted secret is exactly `SECRET_LEN` ASCII alphanumerics
//! after its prefix, its type is the one its prefix names, `expose` gives back the input,
//! parsing that again gives an equal secret with the same digest, and its digest's hex
//! round-trips. Changing any one character of an accepted secret is refused (the checksum
//! catches every single-character typo).

use ingest_edge::secret::{Digest, TokenSecret, TokenType, SECRET_LEN};

pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(secret) = TokenSecret::parse(text) else {
        return;
    };
    assert_eq!(secret.expose(), text, "expose is not the input");
    assert_eq!(text.len(), ingest_edge::secret::SECRET_LEN);
    let prefix = secret.token_type().prefix();
    assert!(
        text.starts_with(prefix),
        "type {:?} for {text:?}",
        secret.token_type()
    );
    assert!(matches!(
        secret.token_type(),
        TokenType::Client | TokenType::RemoteWrite
    ));
    assert!(
        text[prefix.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric()),
        "non-alphanumeric secret accepted: {text:?}"
    );
    let again = TokenSecret::parse(secret.expose()).expect("an exposed secret parses");
    assert!(again == secret, "re-parsed secret differs");
    let digest = secret.digest();
    assert!(digest.ct_eq(&again.digest()), "digest is not stable");
    assert!(Digest::from_hex(&digest.to_hex()).is_some_and(|d| d.ct_eq(&digest)));
    // One changed character: each position, to a different alphanumeric.
    let mut bytes = text.as_bytes().to_vec();
    for at in prefix.len()..SECRET_LEN {
        let Some(&orig) = bytes.get(at) else { break };
        let changed = if orig == b'0' { b'1' } else { b'0' };
        bytes[at] = changed;
        let typo = std::str::from_utf8(&bytes).expect("ASCII");
        assert!(TokenSecret::parse(typo).is_err(), "typo {typo:?} accepted");
        bytes[at] = orig;
    }
}
