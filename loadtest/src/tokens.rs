//! Many tokens at once: `loadtest seed-tokens` writes a token store holding N copies of the
//! edge's own `bench` tokens (each with a fresh secret), and `--tokens-file` makes a run send
//! each request with the next of those secrets, so the edge's per-token state (cache entries,
//! limiters, usage counters, `/metrics` series) is exercised at that population.
//!
//! Why a seeded store and not N admin calls: the embedded file store rewrites and fsyncs all
//! of `tokens.json` on every create, one create at a time, so creating through the API is
//! quadratic (1,000 creates took 28.6 s on the 2-core bench machine, 16 in parallel; 10,000
//! would take many minutes). The copies are made from a record the edge itself wrote (created
//! through the admin API, with the run's limits and origins), so the record format is the
//! edge's; only the secret's shape is restated here (prefix, 27 base62 characters, a base62
//! CRC32 of them; stored as the SHA-256 hex of the whole secret). If that drifts, the seeded
//! tokens answer `401` and the smoke check that uses them fails.

use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use sha2::{Digest, Sha256};

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const RANDOM_LEN: usize = 27;
const CHECKSUM_LEN: usize = 6;
/// Most tokens one seeding writes (per type).
pub const MAX_TOKENS: usize = 1_000_000;

/// A new secret of the type whose prefix is `prefix` (`iec_` client, `iew_` remote_write).
fn secret(rng: &mut StdRng, prefix: &str) -> String {
    let random: Vec<u8> = (0..RANDOM_LEN)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())])
        .collect();
    let mut crc = crc32fast::hash(&random);
    let mut checksum = [b'0'; CHECKSUM_LEN];
    for slot in checksum.iter_mut().rev() {
        *slot = ALPHABET[(crc % 62) as usize];
        crc /= 62;
    }
    let mut s = String::with_capacity(prefix.len() + RANDOM_LEN + CHECKSUM_LEN);
    s.push_str(prefix);
    s.extend(random.iter().chain(checksum.iter()).map(|&b| char::from(b)));
    s
}

fn digest_hex(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Reads the store at `from`, adds `count` copies of each of its tokens named `template`
/// (one remote_write, one client), writes the result to `to` and the new secrets to
/// `<secrets_dir>/remote_write.txt` and `client.txt` (one per line). Returns how many tokens
/// of each type were written.
pub fn seed(
    from: &Path,
    to: &Path,
    template: &str,
    count: usize,
    secrets_dir: &Path,
) -> Result<Vec<(String, usize)>, String> {
    if count == 0 || count > MAX_TOKENS {
        return Err(format!("--count must be 1..={MAX_TOKENS}"));
    }
    let text = std::fs::read(from).map_err(|e| format!("{}: {e}", from.display()))?;
    let mut store: Value =
        serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", from.display()))?;
    let tokens = store
        .get_mut("tokens")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| format!("{}: no \"tokens\" array", from.display()))?;
    let templates: Vec<Value> = tokens
        .iter()
        .filter(|t| t.get("name").and_then(Value::as_str) == Some(template))
        .cloned()
        .collect();
    if templates.is_empty() {
        return Err(format!("{}: no token named {template:?}", from.display()));
    }
    let mut rng = StdRng::from_entropy();
    let mut written = Vec::new();
    for (n, tpl) in templates.iter().enumerate() {
        // The store calls it `type` (serde rename of `token_type`); accept either.
        let kind = tpl
            .get("type")
            .or_else(|| tpl.get("token_type"))
            .and_then(Value::as_str)
            .ok_or("template token without a type")?
            .to_owned();
        // A secret entry shaped like the template's own (only the digest differs).
        let mut entry = tpl
            .get("secrets")
            .and_then(|s| s.get(0))
            .cloned()
            .unwrap_or_else(|| serde_json::json!({}));
        let entry_obj = entry
            .as_object_mut()
            .ok_or("template secret entry is not an object")?;
        let prefix = match kind.as_str() {
            "client" => "iec_",
            "remote_write" => "iew_",
            other => return Err(format!("unknown token_type {other:?}")),
        };
        let mut secrets = String::with_capacity(count * 40);
        for i in 0..count {
            let s = secret(&mut rng, prefix);
            let mut t = tpl.clone();
            let obj = t.as_object_mut().ok_or("template token is not an object")?;
            // 12 base62 characters like the edge's own ids, unique by construction.
            obj.insert("id".into(), Value::from(format!("tk_LT{n}{i:09}")));
            obj.insert("name".into(), Value::from(format!("{template}-{kind}-{i}")));
            entry_obj.insert("digest".into(), Value::from(digest_hex(&s)));
            obj.insert(
                "secrets".into(),
                Value::Array(vec![Value::Object(entry_obj.clone())]),
            );
            tokens.push(t);
            secrets.push_str(&s);
            secrets.push('\n');
        }
        let path = secrets_dir.join(format!("{kind}.txt"));
        std::fs::write(&path, secrets).map_err(|e| format!("{}: {e}", path.display()))?;
        written.push((kind, count));
    }
    let bytes = serde_json::to_vec(&store).map_err(|e| e.to_string())?;
    let tmp = to.with_extension("seed-tmp");
    std::fs::write(&tmp, bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, to).map_err(|e| format!("{}: {e}", to.display()))?;
    Ok(written)
}

/// The secrets of a `--tokens-file`: one per line, blank lines ignored.
pub fn load(path: &PathBuf) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let tokens: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    if tokens.is_empty() {
        return Err(format!("{}: no tokens", path.display()));
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_have_the_edge_shape() {
        let mut rng = StdRng::seed_from_u64(7);
        let s = secret(&mut rng, "iew_");
        assert_eq!(s.len(), 37);
        assert!(s.starts_with("iew_"));
        assert!(s.bytes().skip(4).all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(s, secret(&mut rng, "iew_"));
        // The checksum is the base62 CRC32 of the random part, most significant digit first.
        let crc = crc32fast::hash(&s.as_bytes()[4..31]);
        let mut v = 0u64;
        for b in s.bytes().skip(31) {
            v = v * 62 + ALPHABET.iter().position(|&a| a == b).unwrap() as u64;
        }
        assert_eq!(v, u64::from(crc));
        assert_eq!(digest_hex("abc").len(), 64);
        assert!(digest_hex("abc").starts_with("ba7816bf"));
    }

    #[test]
    fn seeding_copies_the_templates() {
        let dir = std::env::temp_dir().join(format!("lt-seed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let from = dir.join("tokens.json");
        std::fs::write(
            &from,
            r#"{"version":1,"tokens":[
              {"id":"tk_a","name":"bench","type":"remote_write","secrets":[{"digest":"x"}],"limits":{"requests_per_second":9}},
              {"id":"tk_b","name":"bench","type":"client","origins":["http://localhost:3000"],"secrets":[]},
              {"id":"tk_c","name":"other","type":"client","secrets":[]}]}"#,
        )
        .unwrap();
        let to = dir.join("out.json");
        let done = seed(&from, &to, "bench", 3, &dir).unwrap();
        assert_eq!(done.len(), 2);
        let v: Value = serde_json::from_slice(&std::fs::read(&to).unwrap()).unwrap();
        let tokens = v["tokens"].as_array().unwrap();
        assert_eq!(tokens.len(), 3 + 6);
        assert_eq!(v["version"], 1);
        let rw = load(&dir.join("remote_write.txt")).unwrap();
        assert_eq!(rw.len(), 3);
        let copy = tokens
            .iter()
            .find(|t| t["secrets"][0]["digest"] == digest_hex(&rw[1]))
            .unwrap();
        assert_eq!(copy["limits"]["requests_per_second"], 9);
        assert_eq!(copy["type"], "remote_write");
        assert_eq!(copy["secrets"].as_array().unwrap().len(), 1);
        let ids: std::collections::HashSet<_> = tokens.iter().map(|t| t["id"].clone()).collect();
        assert_eq!(ids.len(), 9);
        assert!(seed(&from, &to, "nobody", 3, &dir).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
