//! The request bodies and headers of one load run: built once, before the clock starts, and
//! rotated by the workers so that no body is encoded or compressed on the send path.

mod proto;
pub mod rum;
pub mod series;

use std::fmt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use hyper::header::{
    HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, ORIGIN,
};

/// What traffic to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Synthetic Prometheus remote-write 1.0 requests.
    RwV1,
    /// Synthetic Prometheus remote-write 2.0 requests.
    RwV2,
    /// Replay of real Prometheus 2.42 remote-write bodies (1.0) from a directory.
    RwFixtures,
    /// OTLP/HTTP JSON trace exports as sent by the OpenTelemetry JS web SDK.
    Rum,
}

/// Where the token travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TokenIn {
    /// `Authorization: Bearer <token>`.
    Header,
    /// `?token=<token>` (what `navigator.sendBeacon` has to use).
    Query,
}

/// Inputs to [`build`].
#[derive(Clone, Debug)]
pub struct WorkloadSpec {
    /// Kind of traffic.
    pub mode: Mode,
    /// How many distinct bodies to rotate (synthetic modes).
    pub bodies: usize,
    /// Samples per remote-write request (synthetic modes).
    pub samples: usize,
    /// Seed of every random choice, so bodies are identical across runs.
    pub seed: u64,
    /// Directory holding `body_*.bin` for `rw-fixtures`.
    pub fixtures: PathBuf,
    /// Token to send, if any.
    pub token: Option<String>,
    /// Where the token goes.
    pub token_in: TokenIn,
    /// `Origin` header value (RUM).
    pub origin: Option<String>,
}

/// One prepared body.
#[derive(Clone, Debug)]
pub struct Payload {
    /// The bytes on the wire (already compressed where the protocol says so).
    pub body: Bytes,
    /// Samples (remote-write) or spans (RUM) in the body, credited on a 2xx.
    pub items: u64,
}

/// Everything the workers need to send requests of one kind.
#[derive(Clone, Debug)]
pub struct Workload {
    /// The traffic kind these bodies belong to.
    pub mode: Mode,
    /// Bodies rotated round-robin.
    pub payloads: Vec<Payload>,
    /// Headers common to every request (no `Host`: the target adds it).
    pub headers: HeaderMap,
    /// What `items` counts, for the report ("samples" or "spans").
    pub item_name: &'static str,
}

/// Why a workload could not be built.
#[derive(Debug)]
pub enum PayloadError {
    /// The fixture directory could not be read.
    Fixtures(PathBuf, std::io::Error),
    /// The fixture directory has no `body_*.bin`.
    NoFixtures(PathBuf),
    /// A fixture is not snappy + protobuf.
    BadFixture(PathBuf, String),
    /// A token or origin cannot be a header value.
    BadHeader(&'static str),
    /// `--bodies` or `--samples` is zero.
    Empty,
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fixtures(p, e) => write!(f, "reading fixtures in {}: {e}", p.display()),
            Self::NoFixtures(p) => write!(f, "no body_*.bin in {}", p.display()),
            Self::BadFixture(p, e) => write!(f, "fixture {}: {e}", p.display()),
            Self::BadHeader(what) => write!(f, "{what} is not a valid header value"),
            Self::Empty => write!(f, "--bodies and --samples must be at least 1"),
        }
    }
}

impl std::error::Error for PayloadError {}

/// The shared Prometheus 2.42 fixtures, kept in the repository (`tests/fixtures`).
pub const DEFAULT_FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/prometheus-2.42"
);

/// A fixed timestamp keeps bodies byte-identical between runs; receivers under test here
/// only forward, they do not reject old samples.
const BASE_TIMESTAMP_MS: i64 = 1_795_822_428_000;

const RW_VERSION: HeaderName = HeaderName::from_static("x-prometheus-remote-write-version");

/// Builds the bodies and headers for `spec`.
pub fn build(spec: &WorkloadSpec) -> Result<Workload, PayloadError> {
    if spec.bodies == 0 || spec.samples == 0 {
        return Err(PayloadError::Empty);
    }
    let mut headers = HeaderMap::new();
    let (payloads, item_name) = match spec.mode {
        Mode::RwV1 | Mode::RwV2 => {
            let v2 = spec.mode == Mode::RwV2;
            let (ct, version) = if v2 {
                (
                    "application/x-protobuf;proto=io.prometheus.write.v2.Request",
                    "2.0.0",
                )
            } else {
                ("application/x-protobuf", "0.1.0")
            };
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("snappy"));
            headers.insert(RW_VERSION, HeaderValue::from_static(version));
            let payloads = (0..spec.bodies)
                .map(|i| {
                    let series = series::generate(spec.seed.wrapping_add(i as u64), spec.samples);
                    let ts = BASE_TIMESTAMP_MS + 15_000 * i as i64;
                    let raw = if v2 {
                        series::encode_v2(&series, ts)
                    } else {
                        series::encode_v1(&series, ts)
                    };
                    Payload {
                        body: snappy(&raw),
                        items: series.len() as u64,
                    }
                })
                .collect();
            (payloads, "samples")
        }
        Mode::RwFixtures => {
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/x-protobuf"),
            );
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("snappy"));
            headers.insert(RW_VERSION, HeaderValue::from_static("0.1.0"));
            (load_fixtures(&spec.fixtures)?, "samples")
        }
        Mode::Rum => {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            let origin = spec.origin.as_deref().unwrap_or("http://localhost:3000");
            let payloads = (0..spec.bodies)
                .map(|i| {
                    let (body, spans) = rum::generate(spec.seed.wrapping_add(i as u64), origin);
                    Payload {
                        body: Bytes::from(body),
                        items: spans,
                    }
                })
                .collect();
            (payloads, "spans")
        }
    };
    if let Some(origin) = &spec.origin {
        let v = HeaderValue::from_str(origin).map_err(|_| PayloadError::BadHeader("--origin"))?;
        headers.insert(ORIGIN, v);
    }
    if let (Some(token), TokenIn::Header) = (&spec.token, spec.token_in) {
        let v = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| PayloadError::BadHeader("--token"))?;
        headers.insert(AUTHORIZATION, v);
    }
    Ok(Workload {
        mode: spec.mode,
        payloads,
        headers,
        item_name,
    })
}

fn snappy(raw: &[u8]) -> Bytes {
    // Compressing an in-memory buffer only fails for inputs over ~4 GiB.
    Bytes::from(
        snap::raw::Encoder::new()
            .compress_vec(raw)
            .unwrap_or_default(),
    )
}

/// Reads every `body_*.bin` (sorted by name) and counts its samples.
fn load_fixtures(dir: &Path) -> Result<Vec<Payload>, PayloadError> {
    let entries = std::fs::read_dir(dir).map_err(|e| PayloadError::Fixtures(dir.into(), e))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with("body_") && name.ends_with(".bin")
        })
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(PayloadError::NoFixtures(dir.into()));
    }
    paths
        .into_iter()
        .map(|p| {
            let body = std::fs::read(&p).map_err(|e| PayloadError::Fixtures(p.clone(), e))?;
            let raw = snap::raw::Decoder::new()
                .decompress_vec(&body)
                .map_err(|e| PayloadError::BadFixture(p.clone(), e.to_string()))?;
            let req: proto::WriteRequestV1 = prost::Message::decode(raw.as_slice())
                .map_err(|e| PayloadError::BadFixture(p.clone(), e.to_string()))?;
            let items = req.timeseries.iter().map(|t| t.samples.len() as u64).sum();
            Ok(Payload {
                body: Bytes::from(body),
                items,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(mode: Mode) -> WorkloadSpec {
        WorkloadSpec {
            mode,
            bodies: 3,
            samples: 2000,
            seed: 1,
            fixtures: PathBuf::from(DEFAULT_FIXTURES),
            token: Some("tok".into()),
            token_in: TokenIn::Header,
            origin: None,
        }
    }

    #[test]
    fn rw_bodies_are_snappy_with_right_headers() {
        for mode in [Mode::RwV1, Mode::RwV2] {
            let w = build(&spec(mode)).unwrap();
            assert_eq!(w.payloads.len(), 3);
            assert!(w.payloads.iter().all(|p| p.items == 2000));
            let raw = snap::raw::Decoder::new()
                .decompress_vec(&w.payloads[0].body)
                .unwrap();
            assert!(raw.len() > w.payloads[0].body.len());
            assert_ne!(w.payloads[0].body, w.payloads[1].body);
            assert_eq!(w.headers[CONTENT_ENCODING], "snappy");
            assert_eq!(w.headers[AUTHORIZATION], "Bearer tok");
            let v2 = w.headers[CONTENT_TYPE]
                .to_str()
                .unwrap()
                .contains("v2.Request");
            assert_eq!(v2, mode == Mode::RwV2);
        }
    }

    #[test]
    fn fixtures_are_counted() {
        let w = build(&spec(Mode::RwFixtures)).unwrap();
        assert_eq!(w.payloads.len(), 6);
        assert!(w.payloads.iter().map(|p| p.items).sum::<u64>() > 0);
    }

    #[test]
    fn query_token_leaves_no_header() {
        let mut s = spec(Mode::Rum);
        s.token_in = TokenIn::Query;
        s.origin = Some("http://localhost:3000".into());
        let w = build(&s).unwrap();
        assert!(w.headers.get(AUTHORIZATION).is_none());
        assert_eq!(w.headers[ORIGIN], "http://localhost:3000");
        assert_eq!(w.headers[CONTENT_TYPE], "application/json");
    }
}
