//! Unit tests of the secret format: generation, the documented regexes, every kind of
//! malformation, digests and what may be printed.

use super::*;

const TYPES: [TokenType; 2] = [TokenType::Client, TokenType::RemoteWrite];

/// Full-string match of the one regex shape used here, `<literal>[0-9A-Za-z]{N}`, interpreted
/// from the regex text itself so that a wrong constant fails the test.
fn regex_matches(regex: &str, s: &str) -> bool {
    let (literal, rest) = regex.split_once('[').expect("a character class");
    let count = rest
        .strip_prefix("0-9A-Za-z]{")
        .and_then(|r| r.strip_suffix('}'))
        .and_then(|n| n.parse::<usize>().ok())
        .expect("[0-9A-Za-z]{N}");
    assert!(literal
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_'));
    match s.strip_prefix(literal) {
        Some(tail) => tail.len() == count && tail.bytes().all(|b| b.is_ascii_alphanumeric()),
        None => false,
    }
}

fn regex_of(ty: TokenType) -> &'static str {
    match ty {
        TokenType::Client => CLIENT_REGEX,
        TokenType::RemoteWrite => REMOTE_WRITE_REGEX,
    }
}

/// Builds a CRC-valid secret from any random part, computing the checksum independently of
/// `encode_checksum` (repeated division into a string).
fn with_checksum(prefix: &str, random: &str) -> String {
    let mut value = crc32fast::hash(random.as_bytes());
    let mut digits = Vec::new();
    for _ in 0..CHECKSUM_LEN {
        digits.push(ALPHABET[(value % 62) as usize] as char);
        value /= 62;
    }
    let checksum: String = digits.into_iter().rev().collect();
    format!("{prefix}{random}{checksum}")
}

#[test]
fn sizes_meet_the_spec() {
    // >= 160 random bits: 62^27 >= 2^160.
    assert!(RANDOM_LEN as f64 * 62f64.log2() >= 160.0);
    assert!(62u64.pow(CHECKSUM_LEN as u32) > u64::from(u32::MAX));
    assert_eq!(SECRET_LEN, 37);
    assert_ne!(CLIENT_PREFIX, REMOTE_WRITE_PREFIX);
}

#[test]
fn generated_secrets_round_trip_and_match_their_regex() {
    for ty in TYPES {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let secret = TokenSecret::generate(ty);
            let text = secret.expose();
            assert_eq!(text.len(), SECRET_LEN);
            assert!(text.starts_with(ty.prefix()));
            assert!(regex_matches(regex_of(ty), text), "{text}");
            let other = TYPES.into_iter().find(|&t| t != ty).unwrap();
            assert!(!regex_matches(regex_of(other), text), "{text}");
            let parsed = TokenSecret::parse(text).unwrap();
            assert_eq!(parsed, secret);
            assert_eq!(parsed.token_type(), ty);
            assert_eq!(parsed.digest(), secret.digest());
            assert!(seen.insert(text.to_string()), "duplicate secret");
        }
    }
}

#[test]
fn generated_random_parts_use_the_whole_alphabet() {
    // 200 secrets * 27 chars: each of the 62 digits is expected ~87 times.
    let mut counts = [0u32; 62];
    for _ in 0..200 {
        let secret = TokenSecret::generate(TokenType::Client);
        for b in &secret.expose().as_bytes()[PREFIX_LEN..PREFIX_LEN + RANDOM_LEN] {
            counts[usize::from(DIGIT_VALUE[usize::from(*b)])] += 1;
        }
    }
    assert!(counts.iter().all(|&c| c > 30), "{counts:?}");
}

#[test]
fn known_answer_and_crc_valid_random_secrets_parse() {
    // Checksum computed with Python's zlib.crc32(b"0" * 27), base62 "0-9A-Za-z".
    let known = format!("iec_{}2MvMGi", "0".repeat(27));
    let secret = TokenSecret::parse(&known).unwrap();
    assert_eq!(secret.token_type(), TokenType::Client);
    assert_eq!(secret.expose(), known);
    assert_eq!(
        crc32fast::hash(b"123456789"),
        0xCBF4_3926,
        "CRC-32/IEEE check value"
    );
    assert_eq!(encode_checksum(0xCBF4_3926), *b"3jZRME");
    assert_eq!(encode_checksum(0), *b"000000");
    assert_eq!(encode_checksum(u32::MAX), *b"4gfFC3");

    // A random part that did not come from `generate`, with a valid checksum, parses.
    let random = "Zz09aAbBcCdDeEfFgGhHiIjJkKl";
    for (prefix, ty) in [
        ("iec_", TokenType::Client),
        ("iew_", TokenType::RemoteWrite),
    ] {
        let text = with_checksum(prefix, random);
        let secret = TokenSecret::parse(&text).unwrap();
        assert_eq!(secret.token_type(), ty);
        assert_eq!(secret.expose(), text);
    }
}

#[test]
fn wrong_prefix() {
    let valid = TokenSecret::generate(TokenType::Client);
    let tail = &valid.expose()[PREFIX_LEN..];
    for prefix in [
        "",
        "IEC_",
        "iex_",
        "ie_",
        "iec-",
        "xyz_",
        "Bearer iec_",
        " iec_",
    ] {
        let text = format!("{prefix}{tail}");
        assert_eq!(
            TokenSecret::parse(&text),
            Err(SecretError::WrongPrefix),
            "{text}"
        );
    }
    for short in ["", "i", "ie", "iec"] {
        assert_eq!(TokenSecret::parse(short), Err(SecretError::WrongPrefix));
    }
}

#[test]
fn wrong_length() {
    for ty in TYPES {
        let text = TokenSecret::generate(ty).expose().to_string();
        let too_short = &text[..SECRET_LEN - 1];
        let too_long = format!("{text}0");
        for bad in [ty.prefix(), too_short, &too_long, &format!("{text} ")] {
            assert_eq!(
                TokenSecret::parse(bad),
                Err(SecretError::WrongLength),
                "{bad}"
            );
        }
    }
}

#[test]
fn bad_alphabet_anywhere_after_the_prefix() {
    let text = TokenSecret::generate(TokenType::RemoteWrite)
        .expose()
        .to_string();
    for position in PREFIX_LEN..SECRET_LEN {
        for bad in [b'-', b'_', b'+', b'/', b'=', b' ', b'.', b'\0'] {
            let mut bytes = text.clone().into_bytes();
            bytes[position] = bad;
            let candidate = String::from_utf8(bytes).unwrap();
            assert_eq!(
                TokenSecret::parse(&candidate),
                Err(SecretError::BadAlphabet),
                "{candidate:?}"
            );
        }
    }
    // A two-byte character in place of two ASCII ones keeps the byte length.
    let non_ascii = format!("{}é{}", &text[..10], &text[12..]);
    assert_eq!(non_ascii.len(), SECRET_LEN);
    assert_eq!(
        TokenSecret::parse(&non_ascii),
        Err(SecretError::BadAlphabet)
    );
}

#[test]
fn any_single_character_change_breaks_the_checksum() {
    for ty in TYPES {
        let text = TokenSecret::generate(ty).expose().to_string();
        for position in PREFIX_LEN..SECRET_LEN {
            let original = text.as_bytes()[position];
            // The next digit in the alphabet ("off by one"), and a case flip where there is one.
            let next = ALPHABET[(usize::from(DIGIT_VALUE[usize::from(original)]) + 1) % 62];
            let flipped = if original.is_ascii_alphabetic() {
                original ^ 0x20
            } else {
                next
            };
            for replacement in [next, flipped] {
                let mut bytes = text.clone().into_bytes();
                bytes[position] = replacement;
                let candidate = String::from_utf8(bytes).unwrap();
                assert_eq!(
                    TokenSecret::parse(&candidate),
                    Err(SecretError::BadChecksum),
                    "{position}"
                );
            }
        }
        // Two adjacent characters swapped.
        let mut bytes = text.clone().into_bytes();
        let (a, b) = (PREFIX_LEN + 3, PREFIX_LEN + 4);
        if bytes[a] != bytes[b] {
            bytes.swap(a, b);
            let swapped = String::from_utf8(bytes).unwrap();
            assert_eq!(TokenSecret::parse(&swapped), Err(SecretError::BadChecksum));
        }
    }
}

#[test]
fn the_checksum_does_not_cover_the_prefix() {
    // Documented behaviour: the SPEC puts the CRC over the random part only, so a secret with
    // its prefix swapped is well-formed (and then unknown to the store: `401 unknown_token`).
    let client = TokenSecret::generate(TokenType::Client);
    let swapped = format!("{REMOTE_WRITE_PREFIX}{}", &client.expose()[PREFIX_LEN..]);
    let parsed = TokenSecret::parse(&swapped).unwrap();
    assert_eq!(parsed.token_type(), TokenType::RemoteWrite);
    assert_ne!(parsed.digest(), client.digest());
}

#[test]
fn digest_is_sha256_of_the_whole_secret() {
    let secret = TokenSecret::generate(TokenType::Client);
    let expected: [u8; 32] = Sha256::digest(secret.expose().as_bytes()).into();
    assert_eq!(secret.digest(), Digest(expected));
    // Known answer: SHA-256("abc").
    let abc: [u8; 32] = Sha256::digest(b"abc").into();
    assert_eq!(
        Digest(abc).to_hex(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn digest_hex_round_trip_and_refusals() {
    let digest = TokenSecret::generate(TokenType::RemoteWrite).digest();
    let hex = digest.to_hex();
    assert_eq!(hex.len(), 64);
    assert_eq!(Digest::from_hex(&hex), Some(digest));
    assert_eq!(Digest::from_hex(&hex.to_uppercase()), Some(digest));
    assert!(digest.ct_eq(&digest));
    assert!(!digest.ct_eq(&Digest([0; 32])));
    for bad in [
        &hex[..63],
        &format!("{hex}0"),
        &format!("{}g", &hex[..63]),
        "",
        &"é".repeat(32),
    ] {
        assert_eq!(Digest::from_hex(bad), None, "{bad}");
    }
    let json = serde_json::to_string(&digest).unwrap();
    assert_eq!(json, format!("\"{hex}\""));
    assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), digest);
    assert!(serde_json::from_str::<Digest>("\"abc\"").is_err());
}

#[test]
fn nothing_printable_shows_the_secret() {
    let secret = TokenSecret::generate(TokenType::RemoteWrite);
    let random = &secret.expose()[PREFIX_LEN..];
    let debug = format!("{secret:?} {:?}", Some(&secret));
    assert!(
        debug.starts_with("TokenSecret(remote_write, ***)"),
        "{debug}"
    );
    assert!(!debug.contains(random));
    let digest = format!("{:?}", secret.digest());
    assert_eq!(digest.len(), "Digest(01234567…)".len(), "{digest}");
    assert!(secret.digest().to_hex().starts_with(&digest[7..15]));
}

#[test]
fn names_and_error_mapping() {
    assert_eq!(TokenType::Client.as_str(), "client");
    assert_eq!(TokenType::RemoteWrite.as_str(), "remote_write");
    assert_eq!(
        serde_json::to_string(&TokenType::RemoteWrite).unwrap(),
        "\"remote_write\""
    );
    assert_eq!(
        serde_json::from_str::<TokenType>("\"client\"").unwrap(),
        TokenType::Client
    );
    for error in [
        SecretError::WrongPrefix,
        SecretError::WrongLength,
        SecretError::BadAlphabet,
        SecretError::BadChecksum,
    ] {
        assert_eq!(error.status(), 401);
        assert_eq!(error.reason(), "malformed_token");
        assert!(!error.to_string().is_empty());
    }
}
