//! Counting the items in a body the sink received, so that "delivered" can be measured in the
//! same unit as "accepted" (samples, spans) and not only in requests or bytes, which differ
//! between forwarders that merge or re-encode batches.
//!
//! - remote_write 1.0 and 2.0 (snappy): the protobuf is walked, not decoded: samples and
//!   histograms of every series are counted without allocating a message.
//! - OTLP JSON traces: occurrences of the `"spanId"` key (one per span; the generator emits
//!   no span links, which would also carry one).
//!
//! Anything else (other encodings, OTLP protobuf) is counted as `uncounted` requests, so a
//! table never shows zero delivered items for data that did arrive in a form we do not read.

/// What one body held.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Items {
    /// remote_write samples and histogram samples.
    pub samples: u64,
    /// OTLP spans.
    pub spans: u64,
    /// The body could not be read (unknown encoding or not valid for its type).
    pub uncounted: bool,
}

/// Counts the items of one request body from its headers and path.
pub fn count(path: &str, content_type: &str, encoding: Option<&str>, body: &[u8]) -> Items {
    let uncounted = Items {
        uncounted: true,
        ..Items::default()
    };
    if content_type.starts_with("application/json") && encoding.is_none() {
        if path.ends_with("/v1/traces") {
            return Items {
                spans: occurrences(body, b"\"spanId\""),
                ..Items::default()
            };
        }
        return uncounted;
    }
    if content_type.starts_with("application/x-protobuf") && encoding == Some("snappy") {
        let v2 = content_type.contains("io.prometheus.write.v2");
        let Ok(raw) = snap::raw::Decoder::new().decompress_vec(body) else {
            return uncounted;
        };
        return match remote_write_samples(&raw, v2) {
            Some(samples) => Items {
                samples,
                ..Items::default()
            },
            None => uncounted,
        };
    }
    uncounted
}

fn occurrences(hay: &[u8], needle: &[u8]) -> u64 {
    let Some(&first) = needle.first() else {
        return 0;
    };
    let mut n = 0;
    let mut i = 0;
    while let Some(off) = hay
        .get(i..)
        .and_then(|h| h.iter().position(|&b| b == first))
    {
        i += off;
        if hay.get(i..i + needle.len()) == Some(needle) {
            n += 1;
            i += needle.len();
        } else {
            i += 1;
        }
    }
    n
}

/// Samples + histograms in a `WriteRequest` (1.0: series are field 1, samples 2, histograms
/// 4) or an `io.prometheus.write.v2.Request` (series 5, samples 2, histograms 3).
fn remote_write_samples(msg: &[u8], v2: bool) -> Option<u64> {
    let (series_field, histogram_field) = if v2 { (5, 3) } else { (1, 4) };
    let mut total = 0;
    for field in Fields(msg) {
        let (number, value) = field?;
        if number == series_field {
            for inner in Fields(value?) {
                let (n, _) = inner?;
                if n == 2 || n == histogram_field {
                    total += 1;
                }
            }
        }
    }
    Some(total)
}

/// Iterates the top-level fields of a protobuf message: `(field number, Some(bytes))` for
/// length-delimited fields, `(field number, None)` for the others; an item is `None` when the
/// message is malformed (and iteration stops).
struct Fields<'a>(&'a [u8]);

impl<'a> Iterator for Fields<'a> {
    type Item = Option<(u64, Option<&'a [u8]>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let parsed = self.step();
        if parsed.is_none() {
            self.0 = &[];
        }
        Some(parsed)
    }
}

impl<'a> Fields<'a> {
    fn step(&mut self) -> Option<(u64, Option<&'a [u8]>)> {
        let key = varint(&mut self.0)?;
        let number = key >> 3;
        match key & 7 {
            0 => varint(&mut self.0).map(|_| (number, None)),
            1 => self.skip(8).map(|_| (number, None)),
            5 => self.skip(4).map(|_| (number, None)),
            2 => {
                let len = usize::try_from(varint(&mut self.0)?).ok()?;
                self.skip(len).map(|bytes| (number, Some(bytes)))
            }
            _ => None,
        }
    }

    fn skip(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
}

fn varint(buf: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = buf.split_first()?;
        *buf = rest;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::{self, Mode, TokenIn, WorkloadSpec};

    fn workload(mode: Mode) -> payload::Workload {
        payload::build(&WorkloadSpec {
            mode,
            bodies: 2,
            samples: 1500,
            seed: 3,
            fixtures: payload::DEFAULT_FIXTURES.into(),
            token: None,
            token_in: TokenIn::Header,
            origin: None,
        })
        .unwrap()
    }

    #[test]
    fn counts_what_the_generator_sends() {
        for (mode, path) in [
            (Mode::RwV1, "/api/v1/write"),
            (Mode::RwV2, "/api/v1/write"),
            (Mode::RwFixtures, "/api/v1/write"),
            (Mode::Rum, "/v1/traces"),
        ] {
            let w = workload(mode);
            let ct = w.headers[hyper::header::CONTENT_TYPE].to_str().unwrap();
            let enc = w
                .headers
                .get(hyper::header::CONTENT_ENCODING)
                .map(|v| v.to_str().unwrap());
            for p in &w.payloads {
                let got = count(path, ct, enc, &p.body);
                assert!(!got.uncounted, "{mode:?}");
                assert_eq!(got.samples + got.spans, p.items, "{mode:?}");
            }
        }
    }

    #[test]
    fn merged_snappy_blocks_count_as_the_sum() {
        // What the edge's merge sends: the elements of two blocks behind one length varint.
        let w = workload(Mode::RwV1);
        let raw: Vec<Vec<u8>> = w
            .payloads
            .iter()
            .map(|p| snap::raw::Decoder::new().decompress_vec(&p.body).unwrap())
            .collect();
        let joined: Vec<u8> = raw.concat();
        let body = snap::raw::Encoder::new().compress_vec(&joined).unwrap();
        let got = count(
            "/api/v1/write",
            "application/x-protobuf",
            Some("snappy"),
            &body,
        );
        assert_eq!(got.samples, 3000);
    }

    #[test]
    fn unreadable_bodies_are_uncounted() {
        let bad = count(
            "/api/v1/write",
            "application/x-protobuf",
            Some("snappy"),
            b"junk",
        );
        assert!(bad.uncounted);
        let zstd = count(
            "/api/v1/write",
            "application/x-protobuf",
            Some("zstd"),
            b"x",
        );
        assert!(zstd.uncounted);
        // A truncated protobuf is refused, not counted short.
        let w = workload(Mode::RwV1);
        let raw = snap::raw::Decoder::new()
            .decompress_vec(&w.payloads[0].body)
            .unwrap();
        let cut = snap::raw::Encoder::new()
            .compress_vec(&raw[..raw.len() - 3])
            .unwrap();
        assert!(
            count(
                "/api/v1/write",
                "application/x-protobuf",
                Some("snappy"),
                &cut
            )
            .uncounted
        );
        assert_eq!(occurrences(b"\"spanId\":1,\"spanId\"", b"\"spanId\""), 2);
    }
}
