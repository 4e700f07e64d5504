//! Token secrets (SPEC §3): making new ones, recognising a well-formed one before any lookup,
//! and the digest under which a token is stored and cached (the secret itself never is).
//!
//! Format: `<prefix><27 random base62 chars><6 base62 chars of the CRC32 of the random part>`,
//! 37 ASCII characters in all. 27 uniformly drawn base62 characters carry log2(62^27) ≈ 160.8
//! bits, the SPEC's minimum of 160. The CRC32 (IEEE, as `crc32fast` computes it) is written
//! big-endian in base62, zero-padded to 6 characters (62^6 > 2^32), so every secret has the same
//! length and the regexes below are exact. The checksum lets the edge refuse typos and
//! made-up tokens without a lookup, and lets secret scanners drop false positives offline.
//!
//! The prefixes differ per type so that scanners can allow-list the public client tokens
//! (`iec_`: ingest-edge client) and keep flagging the secret remote-write ones (`iew_`:
//! ingest-edge write).

#[cfg(test)]
mod tests;

use rand::rngs::OsRng;
use rand::Rng;
use sha2::{Digest as _, Sha256};
use std::fmt;
use subtle::ConstantTimeEq;

/// Prefix of client (RUM, public) secrets.
pub const CLIENT_PREFIX: &str = "iec_";
/// Prefix of remote-write (private) secrets.
pub const REMOTE_WRITE_PREFIX: &str = "iew_";
/// Length of every prefix.
pub const PREFIX_LEN: usize = 4;
/// Base62 characters of the random part.
pub const RANDOM_LEN: usize = 27;
/// Base62 characters of the checksum.
pub const CHECKSUM_LEN: usize = 6;
/// Length of a whole secret.
pub const SECRET_LEN: usize = PREFIX_LEN + RANDOM_LEN + CHECKSUM_LEN;
/// Every client secret, and nothing else that this edge issues, matches this regex (add `\b`
/// on both sides when scanning free text).
pub const CLIENT_REGEX: &str = "iec_[0-9A-Za-z]{33}";
/// Every remote-write secret, and nothing else that this edge issues, matches this regex (add
/// `\b` on both sides when scanning free text).
pub const REMOTE_WRITE_REGEX: &str = "iew_[0-9A-Za-z]{33}";

const _: () = assert!(CLIENT_PREFIX.len() == PREFIX_LEN && REMOTE_WRITE_PREFIX.len() == PREFIX_LEN);

/// Digits in value order: `0-9`, `A-Z`, `a-z`.
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const NOT_A_DIGIT: u8 = u8::MAX;
/// Byte -> base62 digit value, or `NOT_A_DIGIT`: one table lookup per character while parsing.
const DIGIT_VALUE: [u8; 256] = {
    let mut table = [NOT_A_DIGIT; 256];
    let mut i = 0;
    while i < ALPHABET.len() {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// What a token is for; decides which endpoints accept it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenType {
    /// Browser RUM (OTLP/HTTP): public, bound to origins.
    Client,
    /// Prometheus remote_write: private.
    RemoteWrite,
}

impl TokenType {
    /// The name used in the admin API, config and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenType::Client => "client",
            TokenType::RemoteWrite => "remote_write",
        }
    }

    /// The prefix of this type's secrets.
    pub fn prefix(self) -> &'static str {
        match self {
            TokenType::Client => CLIENT_PREFIX,
            TokenType::RemoteWrite => REMOTE_WRITE_PREFIX,
        }
    }
}

/// A syntactically valid secret: prefix, length, alphabet and checksum all checked. Holding one
/// says nothing about whether a token with this secret exists.
///
/// Deliberately no `Display`, and `Debug` hides the secret, so that it cannot reach a log by
/// accident; [`TokenSecret::expose`] is the one way to read it.
#[derive(Clone)]
pub struct TokenSecret {
    /// Decided by the prefix; kept so callers need not re-read it.
    ty: TokenType,
    /// The whole secret (ASCII). A fixed-size array so that parsing never allocates.
    bytes: [u8; SECRET_LEN],
}

impl TokenSecret {
    /// A new secret of this type from the operating system's randomness.
    pub fn generate(ty: TokenType) -> TokenSecret {
        let mut bytes = [0u8; SECRET_LEN];
        let (prefix, rest) = bytes.split_at_mut(PREFIX_LEN);
        prefix.copy_from_slice(ty.prefix().as_bytes());
        let (random, checksum) = rest.split_at_mut(RANDOM_LEN);
        for byte in random.iter_mut() {
            // `gen_range` samples uniformly (rejection, no modulo bias).
            *byte = ALPHABET[OsRng.gen_range(0..ALPHABET.len())];
        }
        checksum.copy_from_slice(&encode_checksum(crc32fast::hash(random)));
        TokenSecret { ty, bytes }
    }

    /// Checks the format (in this order: prefix, length, alphabet, checksum). Runs on every
    /// request, so it is a few comparisons, one table lookup per character and one CRC32 over
    /// 27 bytes; it never allocates.
    pub fn parse(s: &str) -> Result<TokenSecret, SecretError> {
        let input = s.as_bytes();
        let ty = match input.get(..PREFIX_LEN) {
            Some(prefix) if prefix == CLIENT_PREFIX.as_bytes() => TokenType::Client,
            Some(prefix) if prefix == REMOTE_WRITE_PREFIX.as_bytes() => TokenType::RemoteWrite,
            _ => return Err(SecretError::WrongPrefix),
        };
        let bytes: [u8; SECRET_LEN] = input.try_into().map_err(|_| SecretError::WrongLength)?;
        let (_, body) = bytes.split_at(PREFIX_LEN);
        if body
            .iter()
            .any(|&b| DIGIT_VALUE[usize::from(b)] == NOT_A_DIGIT)
        {
            return Err(SecretError::BadAlphabet);
        }
        let (random, checksum) = body.split_at(RANDOM_LEN);
        // The encoding of a u32 is unique, so comparing encodings is comparing values.
        if checksum != encode_checksum(crc32fast::hash(random)) {
            return Err(SecretError::BadChecksum);
        }
        Ok(TokenSecret { ty, bytes })
    }

    /// The type the prefix says.
    pub fn token_type(&self) -> TokenType {
        self.ty
    }

    /// The full secret. Only for showing it once, in the answer to a create or rotate.
    pub fn expose(&self) -> &str {
        // Always ASCII by construction (prefix + base62), so the fallback is never taken.
        std::str::from_utf8(&self.bytes).unwrap_or_default()
    }

    /// SHA-256 of the full secret: what the store and the cache key tokens by.
    pub fn digest(&self) -> Digest {
        Digest(Sha256::digest(self.bytes).into())
    }
}

/// Constant-time, so comparing secrets cannot leak how much of one matched.
impl PartialEq for TokenSecret {
    fn eq(&self, other: &TokenSecret) -> bool {
        self.bytes.ct_eq(&other.bytes).into()
    }
}

impl Eq for TokenSecret {}

impl fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenSecret({}, ***)", self.ty.as_str())
    }
}

/// The CRC32 as exactly `CHECKSUM_LEN` base62 digits, most significant first.
fn encode_checksum(crc: u32) -> [u8; CHECKSUM_LEN] {
    let mut out = [b'0'; CHECKSUM_LEN];
    let mut rest = crc;
    for slot in out.iter_mut().rev() {
        // `rest % 62` < 62: always inside ALPHABET.
        *slot = ALPHABET[(rest % 62) as usize];
        rest /= 62;
    }
    out
}

/// SHA-256 of a secret. What is stored on disk and keys the in-memory cache; reveals nothing
/// usable about the secret.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// 64 lowercase hex digits, for the store file.
    pub fn to_hex(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(64);
        for byte in self.0 {
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
        out
    }

    /// Reads [`Digest::to_hex`]'s output back (either case); `None` unless exactly 64 hex digits.
    pub fn from_hex(s: &str) -> Option<Digest> {
        if s.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
            let [high, low] = pair else { return None };
            *byte = (hex_value(*high)? << 4) | hex_value(*low)?;
        }
        Some(Digest(out))
    }

    /// Constant-time equality, for comparing a presented secret's digest with a stored one
    /// outside of a hash lookup.
    pub fn ct_eq(&self, other: &Digest) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// A short prefix is enough to tell digests apart in a debug log.
impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, ..] = self.0;
        write!(f, "Digest({a:02x}{b:02x}{c:02x}{d:02x}…)")
    }
}

/// As its hex string, so a store file stays readable.
impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Digest, D::Error> {
        let text = String::deserialize(deserializer)?;
        Digest::from_hex(&text)
            .ok_or_else(|| serde::de::Error::custom("expected a digest of 64 hex digits"))
    }
}

/// Why a presented secret is not well-formed. All of them are answered alike (`401`,
/// `malformed_token`): the variants are for tests and debug logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("token does not start with a known prefix (iec_ or iew_)")]
    WrongPrefix,
    #[error("token has the wrong length")]
    WrongLength,
    #[error("token has a character outside 0-9, A-Z, a-z")]
    BadAlphabet,
    #[error("token checksum does not match")]
    BadChecksum,
}

impl SecretError {
    /// The HTTP status a malformed token is answered with.
    pub fn status(&self) -> u16 {
        401
    }

    /// The rejection reason label for the usage metrics.
    pub fn reason(&self) -> &'static str {
        "malformed_token"
    }
}
