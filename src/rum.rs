//! OTLP/HTTP export bodies sent by browsers (SPEC §5): which encoding a request uses, how many
//! spans or log records it carries, and the empty success body to answer it with.
//!
//! This module is pure: it sees an already decompressed body and never does I/O. Neither
//! encoding is built into messages to be counted: protobuf bodies are walked on the wire by
//! [`proto`] (building them with prost costs ~100x the body in memory), JSON bodies by the
//! lenient counter in [`json`], because `opentelemetry-proto`'s serde support rejects valid
//! OTLP JSON that the OpenTelemetry JS SDK really sends (the reasons are listed there).

mod json;
mod outline;
mod proto;
pub mod status;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_proto;

use std::ops::Range;

pub use json::MAX_JSON_DEPTH;

/// The OTLP signal of a RUM endpoint: `/v1/traces` or `/v1/logs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Traces,
    Logs,
}

impl Signal {
    /// The label value used in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Logs => "logs",
        }
    }
}

/// The encoding of an OTLP/HTTP body, chosen by the request's `Content-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Protobuf,
}

impl Format {
    /// From the `Content-Type` header value (absent: refused). `application/json` and
    /// `text/plain` (what `navigator.sendBeacon` sends for a string, and a "simple" type that
    /// needs no CORS preflight) are OTLP JSON; `application/x-protobuf` is binary protobuf.
    /// The media type is compared case-insensitively and its parameters (`charset`) ignored.
    pub fn from_content_type(value: Option<&[u8]>) -> Result<Format, RumError> {
        let value = value.ok_or(RumError::UnsupportedMediaType)?;
        let media_type = value
            .split(|&b| b == b';')
            .next()
            .unwrap_or_default()
            .trim_ascii();
        if media_type.eq_ignore_ascii_case(b"application/json")
            || media_type.eq_ignore_ascii_case(b"text/plain")
        {
            Ok(Format::Json)
        } else if media_type.eq_ignore_ascii_case(b"application/x-protobuf") {
            Ok(Format::Protobuf)
        } else {
            Err(RumError::UnsupportedMediaType)
        }
    }

    /// The format to answer a request in, even a refused one whose `Content-Type` is absent or
    /// unsupported: protobuf only when the request is protobuf, JSON otherwise (SPEC §15).
    pub fn for_reply(value: Option<&[u8]>) -> Format {
        match Format::from_content_type(value) {
            Ok(Format::Protobuf) => Format::Protobuf,
            _ => Format::Json,
        }
    }

    /// The `Content-Type` of a response in this format. OTLP/HTTP requires the response to use
    /// the request's encoding; a `text/plain` request is answered as `application/json`.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Protobuf => "application/x-protobuf",
        }
    }
}

/// Decodes an (already decompressed) OTLP export request and returns the number of items it
/// carries: spans for [`Signal::Traces`], log records for [`Signal::Logs`]. Bodies that are not
/// a valid `ExportTraceServiceRequest` / `ExportLogsServiceRequest` are refused. An empty
/// request (`{}` in JSON, zero bytes in protobuf) is valid and carries 0 items.
pub fn count_items(signal: Signal, format: Format, body: &[u8]) -> Result<u64, RumError> {
    count_items_up_to(signal, format, body, u64::MAX)
}

/// [`count_items`] for the request path: a protobuf body carrying more than `max_items` is
/// refused with [`RumError::TooManyItems`] as soon as the count passes it, without reading
/// (or validating) the rest. JSON is always counted whole: its walk allocates nothing per
/// item, and its cost is bounded by the body size anyway.
pub fn count_items_up_to(
    signal: Signal,
    format: Format,
    body: &[u8],
    max_items: u64,
) -> Result<u64, RumError> {
    count_up_to(signal, format, body, max_items).map(|c| c.items)
}

/// What counting a body learnt about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counted {
    /// Spans or log records.
    pub items: u64,
    /// JSON exactly `{"resourceSpans": [...]}` (or `resourceLogs`): the byte range of the
    /// array's elements, so that the forwarder can splice bodies without parsing them again
    /// (`pipeline::merge`). `None` for protobuf and any other JSON shape.
    pub json_piece: Option<Range<usize>>,
}

/// [`count_items_up_to`], with where a JSON body's items are (from the same pass).
pub fn count_up_to(
    signal: Signal,
    format: Format,
    body: &[u8],
    max_items: u64,
) -> Result<Counted, RumError> {
    Ok(match format {
        Format::Json => {
            let (items, json_piece) = json::count(signal, body)?;
            Counted { items, json_piece }
        }
        Format::Protobuf => Counted {
            items: proto::count(signal, body, max_items)?,
            json_piece: None,
        },
    })
}

/// The body of a full-success response: an empty `Export*ServiceResponse` (its
/// `partial_success` left unset, as OTLP/HTTP requires) in the request's format. An empty
/// protobuf message encodes to zero bytes; in JSON it is `{}`.
pub fn empty_response(format: Format) -> &'static [u8] {
    match format {
        Format::Json => b"{}",
        Format::Protobuf => b"",
    }
}

/// Why a RUM body was refused. `Copy` with static texts so the hot path never allocates for
/// an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RumError {
    #[error(
        "unsupported Content-Type: expected application/json, text/plain or application/x-protobuf"
    )]
    UnsupportedMediaType,
    #[error("body is not a valid OTLP JSON export request")]
    BadJson,
    #[error("body is not a valid OTLP protobuf export request")]
    BadProtobuf,
    #[error("JSON nested deeper than {max} levels", max = MAX_JSON_DEPTH)]
    JsonTooDeep,
    #[error("request has more items than the token's items_burst")]
    TooManyItems,
}

impl RumError {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            RumError::UnsupportedMediaType => 415,
            RumError::BadJson | RumError::BadProtobuf | RumError::JsonTooDeep => 400,
            RumError::TooManyItems => 413,
        }
    }

    /// The rejection reason label for the usage metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            RumError::UnsupportedMediaType => "unsupported_media_type",
            RumError::BadJson | RumError::BadProtobuf | RumError::JsonTooDeep => "bad_payload",
            RumError::TooManyItems => "too_large",
        }
    }
}
