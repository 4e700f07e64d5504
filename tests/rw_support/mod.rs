//! Remote-write request builders for the integration tests, written from the specs
//! (prometheus/prompb `remote.proto`, `types.proto`, `io/prometheus/write/v2/types.proto`)
//! independently of the crate's own decoder, plus a few HTTP helpers for sending them.
#![allow(dead_code)]

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub mod cases;
mod cases_v2;
mod proto;

pub use proto::{hist, v1, v2};

pub const CT_V1: &str = "application/x-protobuf";
pub const CT_V1_PROTO: &str = "application/x-protobuf;proto=prometheus.WriteRequest";
pub const CT_V2: &str = "application/x-protobuf;proto=io.prometheus.write.v2.Request";
/// The stale-marker NaN bit pattern of both specs.
pub const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// v1 labels from pairs, in the given order (tests decide whether they are sorted).
pub fn labels(pairs: &[(&str, &str)]) -> Vec<v1::Label> {
    pairs
        .iter()
        .map(|(n, v)| v1::Label {
            name: n.to_string(),
            value: v.to_string(),
        })
        .collect()
}

/// A v1 series with the given labels and one sample per value, 1 ms apart, ending now - 1 s.
pub fn series(pairs: &[(&str, &str)], values: &[f64]) -> v1::TimeSeries {
    let t0 = now_ms() - 1000 - values.len() as i64;
    v1::TimeSeries {
        labels: labels(pairs),
        samples: values
            .iter()
            .enumerate()
            .map(|(i, &value)| v1::Sample {
                value,
                timestamp: t0 + i as i64,
            })
            .collect(),
        ..Default::default()
    }
}

pub fn v1_body(req: &v1::WriteRequest) -> Vec<u8> {
    snappy(&prost::Message::encode_to_vec(req))
}

pub fn v1_series_body(ts: Vec<v1::TimeSeries>) -> Vec<u8> {
    v1_body(&v1::WriteRequest {
        timeseries: ts,
        metadata: vec![],
    })
}

/// v1 request of `n` single-sample series `metric_i{job="t"}`.
pub fn v1_n_samples(n: usize) -> Vec<u8> {
    v1_series_body(
        (0..n)
            .map(|i| series(&[("__name__", &format!("m_{i}")), ("job", "t")], &[1.0]))
            .collect(),
    )
}

/// Builds a v2 request, interning strings into a symbol table that starts with `""`.
#[derive(Default)]
pub struct V2Builder {
    pub req: v2::Request,
}

impl V2Builder {
    pub fn new() -> V2Builder {
        V2Builder {
            req: v2::Request {
                symbols: vec![String::new()],
                timeseries: vec![],
            },
        }
    }

    pub fn sym(&mut self, s: &str) -> u32 {
        if let Some(i) = self.req.symbols.iter().position(|x| x == s) {
            return i as u32;
        }
        self.req.symbols.push(s.to_string());
        (self.req.symbols.len() - 1) as u32
    }

    pub fn refs(&mut self, pairs: &[(&str, &str)]) -> Vec<u32> {
        pairs
            .iter()
            .flat_map(|(n, v)| [self.sym(n), self.sym(v)])
            .collect()
    }

    /// Adds a series with one sample per value (1 ms apart, ending now - 1 s).
    pub fn series(&mut self, pairs: &[(&str, &str)], values: &[f64]) -> &mut v2::TimeSeries {
        let labels_refs = self.refs(pairs);
        let t0 = now_ms() - 1000 - values.len() as i64;
        let samples = values
            .iter()
            .enumerate()
            .map(|(i, &value)| v2::Sample {
                value,
                timestamp: t0 + i as i64,
                start_timestamp: 0,
            })
            .collect();
        self.req.timeseries.push(v2::TimeSeries {
            labels_refs,
            samples,
            ..Default::default()
        });
        self.req.timeseries.last_mut().unwrap()
    }

    pub fn body(&self) -> Vec<u8> {
        snappy(&prost::Message::encode_to_vec(&self.req))
    }
}

pub fn snappy(raw: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new().compress_vec(raw).unwrap()
}

/// A snappy block-format preamble (varint uncompressed length) followed by `rest`.
pub fn snappy_header(declared: u64, rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    varint(declared, &mut out);
    out.extend_from_slice(rest);
    out
}

/// Appends `n` as a base-128 varint (protobuf and the snappy preamble use the same encoding).
pub fn varint(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Appends protobuf field `field` as a length-delimited record holding `data`.
pub fn pb_bytes(field: u64, data: &[u8], out: &mut Vec<u8>) {
    varint(field << 3 | 2, out);
    varint(data.len() as u64, out);
    out.extend_from_slice(data);
}

/// Appends protobuf field `field` as a varint record.
pub fn pb_varint(field: u64, value: u64, out: &mut Vec<u8>) {
    varint(field << 3, out);
    varint(value, out);
}

/// The compressed data of a snappy block, after its varint length preamble.
pub fn snappy_payload(body: &[u8]) -> &[u8] {
    let preamble = body.iter().take_while(|b| **b & 0x80 != 0).count() + 1;
    &body[preamble..]
}

/// A raw HTTP/1.1 exchange: sends `head` (request line and headers, without the blank line)
/// and then `body_start`, keeping the connection open (the rest of the body never comes), and
/// returns the response's status, head and how long it took to arrive.
pub async fn raw_exchange(
    addr: std::net::SocketAddr,
    head: &str,
    body_start: &[u8],
) -> (u16, String, Duration) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    s.write_all(format!("{head}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    s.write_all(body_start).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let read = async {
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut chunk).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("a response within 10 s");
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    (status, text, started.elapsed())
}
