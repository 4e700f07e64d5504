//! Prometheus Remote-Write 1.0 and 2.0: header checks, the snappy length guard, protobuf
//! decoding and receiver-side validation of `POST /api/v1/write` bodies (SPEC §6).
//!
//! Order of work for one request, cheapest first so that bad input costs as little as possible:
//! 1. [`Version::from_content_type`] and [`check_encoding`] on the headers, before the body is
//!    read (`415`);
//! 2. [`Decoder::decode`]: the snappy header's declared length against
//!    [`Limits::max_decoded_bytes`] (`413`) and against what the compressed bytes can possibly
//!    decode to (`400 bad_encoding`), both before anything is allocated; decompression into a
//!    buffer the decoder keeps between requests (`400 bad_encoding`), then one scan of the
//!    protobuf that borrows every string from that buffer, validates each series as it goes
//!    (`400 bad_payload` / `400 invalid_series` and the limit reasons) and counts what the
//!    request carries ([`Written`]).
//!
//! Code map: `wire` reads protobuf fields from a borrowed buffer; `scan_v1` / `scan_v2` walk
//! the two messages with it; `validate` holds the label rules and [`Problem`], `names` the 1.0
//! name grammars (checked once per position per request); `histogram` the
//! native histogram consistency rules; [`proto_v1`] / [`proto_v2`] are the prost types of both
//! messages (used to decode native histograms, and by senders and tests to encode).
//!
//! Invariants: a size the client declared is checked against a limit before anything is
//! allocated from it; the body is copied once (by decompression) and never again; once a
//! [`Decoder`] is warm, decoding allocates nothing, per request, series or label (native
//! histograms excepted: they are rare and decoded with prost; so is a request larger than what a
//! decoder keeps between requests, 4 MiB decoded and 65,536 symbols). Memory per request is
//! bounded by the limits, whatever the body says: the decoded body at most
//! [`Limits::max_decoded_bytes`], the symbols table at most half of that
//! ([`Limits::max_symbols`]).
//!
//! Nothing here does I/O or touches hyper; the server maps [`RwError`] to a response with
//! [`RwError::status`] and [`RwError::reason`].

mod decoder;
mod histogram;
mod names;
pub mod proto_v1;
pub mod proto_v2;
mod scan_v1;
mod scan_v2;
mod validate;
use crate::wire;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_histogram;
#[cfg(test)]
mod tests_known;
#[cfg(test)]
mod tests_memory;
#[cfg(test)]
mod tests_v1;
#[cfg(test)]
mod tests_v2;
#[cfg(test)]
mod tests_wire;

pub use decoder::Decoder;
pub use validate::{hash_series, series_hashes, Problem};

/// Which protobuf message a request body holds, chosen by its `Content-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// `prometheus.WriteRequest` (Remote-Write 1.0).
    V1,
    /// `io.prometheus.write.v2.Request` (Remote-Write 2.0).
    V2,
}

const MEDIA_TYPE: &str = "application/x-protobuf";
const PROTO_V1: &str = "prometheus.WriteRequest";
const PROTO_V2: &str = "io.prometheus.write.v2.Request";

impl Version {
    /// From the `Content-Type` header value (`None` = header missing).
    ///
    /// `application/x-protobuf` without a `proto` parameter, or with
    /// `proto=prometheus.WriteRequest`, is [`Version::V1`];
    /// `proto=io.prometheus.write.v2.Request` is [`Version::V2`]; anything else is
    /// [`RwError::UnsupportedContentType`]. Per RFC 9110 the media type and parameter names
    /// are case-insensitive, whitespace around `;` and `=` is allowed and the value may be
    /// quoted; the message name itself is compared exactly. Other parameters are ignored.
    ///
    /// A missing header is refused too. Both specs make it a sender MUST (1.0 fixes the value,
    /// 2.0 says receivers MUST use it to pick the schema), every Prometheus version sends it, and
    /// guessing 1.0 would silently decode a 2.0 body as an empty request (tags 1 to 3 are
    /// reserved in 2.0 for exactly that reason) and answer 204 for data that was dropped.
    pub fn from_content_type(value: Option<&[u8]>) -> Result<Version, RwError> {
        let value = value.ok_or(RwError::UnsupportedContentType)?;
        let value = std::str::from_utf8(value).map_err(|_| RwError::UnsupportedContentType)?;
        let mut parts = value.split(';');
        let media = parts.next().unwrap_or_default().trim();
        if !media.eq_ignore_ascii_case(MEDIA_TYPE) {
            return Err(RwError::UnsupportedContentType);
        }
        let mut proto = None;
        for param in parts {
            let param = param.trim();
            if param.is_empty() {
                continue;
            }
            let (name, val) = param
                .split_once('=')
                .ok_or(RwError::UnsupportedContentType)?;
            if !name.trim().eq_ignore_ascii_case("proto") {
                continue;
            }
            let val = val.trim();
            let val = val
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(val);
            if proto.replace(val).is_some() {
                // Two `proto` parameters: ambiguous, so unsupported.
                return Err(RwError::UnsupportedContentType);
            }
        }
        match proto {
            None | Some(PROTO_V1) => Ok(Version::V1),
            Some(PROTO_V2) => Ok(Version::V2),
            Some(_) => Err(RwError::UnsupportedContentType),
        }
    }

    /// The canonical `Content-Type` for this version (what a sender should send).
    pub fn content_type(self) -> &'static str {
        match self {
            Version::V1 => "application/x-protobuf;proto=prometheus.WriteRequest",
            Version::V2 => "application/x-protobuf;proto=io.prometheus.write.v2.Request",
        }
    }
}

/// `Content-Encoding` must be exactly `snappy` (case-insensitive, surrounding whitespace
/// allowed): snappy block format is the only encoding either spec defines. A missing header or
/// anything else, including a list such as `snappy, gzip`, is [`RwError::UnsupportedEncoding`].
pub fn check_encoding(value: Option<&[u8]>) -> Result<(), RwError> {
    match value {
        Some(v) if v.trim_ascii().eq_ignore_ascii_case(b"snappy") => Ok(()),
        _ => Err(RwError::UnsupportedEncoding),
    }
}

/// Per-token receiver limits, in the spirit of Mimir's distributor.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest decompressed body accepted; checked against the snappy header before allocating.
    pub max_decoded_bytes: usize,
    /// Most labels (including `__name__`) one series may have.
    pub max_label_names_per_series: usize,
    /// Longest label name, in bytes.
    pub max_label_name_len: usize,
    /// Longest label value, in bytes.
    pub max_label_value_len: usize,
    /// How far ahead of the edge's clock a timestamp may be, in milliseconds.
    pub max_future_ms: i64,
}

impl Default for Limits {
    /// SPEC §6 and issue 3 defaults: 32 MiB decoded, 30 labels, 1024-byte names, 2048-byte
    /// values, 10 minutes into the future.
    fn default() -> Limits {
        Limits {
            max_decoded_bytes: 32 << 20,
            max_label_names_per_series: 30,
            max_label_name_len: 1024,
            max_label_value_len: 2048,
            max_future_ms: 10 * 60 * 1000,
        }
    }
}

/// Decoded bytes the limit must allow per 2.0 symbol ([`Limits::max_symbols`]).
const DECODED_BYTES_PER_SYMBOL: usize = 32;

/// [`Limits::max_symbols`] never goes below this, so that a small decoded limit never refuses a
/// table for its count (2 wire bytes per entry: a limit under 128 KiB cannot reach it anyway).
const MIN_MAX_SYMBOLS: usize = 64 << 10;

impl Limits {
    /// Most entries a 2.0 symbols table may have: one per 32 bytes of
    /// [`Limits::max_decoded_bytes`] (1,048,576 at the default 32 MiB), at least 65,536.
    ///
    /// Why: an entry costs 2 bytes on the wire (`22 00`) but 16 in memory (a borrowed slice),
    /// so without a count a body at the decoded limit could build a table 8 times its size
    /// (256 MiB at 32 MiB, issue 17). At one per 32 bytes the table is at most half the
    /// decoded limit. Real senders are far below it: a symbol is a distinct label name or
    /// value, and Prometheus's default batch of 2000 samples carries a few thousand. Derived
    /// rather than configured, so that raising the decoded limit raises it in proportion.
    pub fn max_symbols(&self) -> usize {
        (self.max_decoded_bytes / DECODED_BYTES_PER_SYMBOL).max(MIN_MAX_SYMBOLS)
    }
}

/// What an accepted request carried: the counts for usage metrics, the rate limiter and the
/// 2.0 `X-Prometheus-Remote-Write-*-Written` headers (a rejected request wrote nothing: all 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// Float samples.
    pub samples: u64,
    /// Native histogram samples.
    pub histograms: u64,
    /// Exemplars.
    pub exemplars: u64,
    /// 1.0: metadata entries; 2.0: series whose metadata has a type, help or unit.
    pub metadata: u64,
}

/// Why a remote-write request was refused. `Copy` and allocation-free: rejecting is cheap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RwError {
    /// Content-Type is not one of the three the specs allow.
    #[error("unsupported Content-Type: use application/x-protobuf, optionally with proto=prometheus.WriteRequest or proto=io.prometheus.write.v2.Request")]
    UnsupportedContentType,
    /// Content-Encoding is not snappy.
    #[error("unsupported Content-Encoding: only snappy (block format) is accepted")]
    UnsupportedEncoding,
    /// The snappy header declares more decoded bytes than allowed.
    #[error("decoded body of {declared} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Length the snappy header declared.
        declared: u64,
        /// The limit in force.
        limit: usize,
    },
    /// The body is not a valid snappy block.
    #[error("body is not valid snappy (block format)")]
    BadEncoding,
    /// The decompressed body is not the protobuf message the Content-Type named.
    #[error("body is not a valid protobuf message of the declared type")]
    BadPayload,
    /// 2.0: the symbols table has more entries than [`Limits::max_symbols`]. A `413` like
    /// [`RwError::TooLarge`], not a `400`: the request is valid, just bigger than this receiver
    /// takes in one piece, and the fix is on the sender's side (smaller batches).
    #[error("symbols table has more than {limit} entries: send smaller batches (queue_config max_samples_per_send)")]
    TooManySymbols {
        /// The limit in force.
        limit: usize,
    },
    /// 2.0: `symbols[0]` is not the empty string.
    #[error("symbols[0] must be the empty string")]
    FirstSymbolNotEmpty,
    /// One series broke a rule; `series` is its index in the request.
    #[error("series {series}: {problem}")]
    InvalidSeries {
        /// Index of the offending series in the request.
        series: usize,
        /// What is wrong with it.
        problem: Problem,
    },
}

impl RwError {
    /// HTTP status: 415 for type/encoding, 413 for too large, 400 otherwise.
    pub fn status(&self) -> u16 {
        match self {
            RwError::UnsupportedContentType | RwError::UnsupportedEncoding => 415,
            RwError::TooLarge { .. } | RwError::TooManySymbols { .. } => 413,
            _ => 400,
        }
    }

    /// Value of the `reason` label of `ingest_rejected_total`, from a fixed set.
    pub fn reason(&self) -> &'static str {
        match self {
            RwError::UnsupportedContentType | RwError::UnsupportedEncoding => {
                "unsupported_media_type"
            }
            RwError::TooLarge { .. } | RwError::TooManySymbols { .. } => "too_large",
            RwError::BadEncoding => "bad_encoding",
            RwError::BadPayload => "bad_payload",
            RwError::FirstSymbolNotEmpty => "invalid_series",
            RwError::InvalidSeries { problem, .. } => match problem {
                Problem::InvalidUtf8 => "bad_payload",
                Problem::TooManyLabels => "too_many_labels",
                Problem::LabelNameTooLong => "label_name_too_long",
                Problem::LabelValueTooLong => "label_value_too_long",
                Problem::TooFarInFuture => "sample_too_far_in_future",
                _ => "invalid_series",
            },
        }
    }
}
