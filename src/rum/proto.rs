//! Counting the items of an OTLP protobuf export request without building it.
//!
//! Why not `ExportTraceServiceRequest::decode`: prost materialises every message, and a message
//! costs far more in memory than on the wire (an empty `Span` is 2 bytes encoded, ~250 bytes
//! built), so 8 KB of gzip inflating to 8 MiB of empty spans cost ~1 GiB of RSS (issue 17).
//! This walker reads the body with the borrowing [`crate::wire`] reader, allocates nothing,
//! and stops as soon as the count passes the caller's limit.
//!
//! It accepts exactly what prost accepts for the published `opentelemetry-proto` 0.31 types:
//! every message of the schema (down to `AnyValue`s inside `KvlistValue`s) is walked, a known
//! field with the wrong wire type is refused, strings must be UTF-8, nested lengths must stay
//! inside their parent, unknown fields are skipped, and prost's recursion limit (100) is spent
//! the same way. `rum/tests.rs` checks that against prost on real and mutated bodies.

use crate::wire::{Fields, Value, WireError, RECURSION_LIMIT};

use super::{RumError, Signal};

/// Counts the spans or log records of an export request; `Err(TooManyItems)` as soon as there
/// are more than `max_items` (the rest of the body is not read).
pub(super) fn count(signal: Signal, body: &[u8], max_items: u64) -> Result<u64, RumError> {
    let top = match signal {
        Signal::Traces => Msg::TraceRequest,
        Signal::Logs => Msg::LogsRequest,
    };
    let mut walk = Walk {
        items: 0,
        max_items,
    };
    match walk.message(top, body, RECURSION_LIMIT) {
        Ok(()) => Ok(walk.items),
        Err(Stop::TooMany) => Err(RumError::TooManyItems),
        Err(Stop::Malformed) => Err(RumError::BadProtobuf),
    }
}

/// Why the walk ended early.
enum Stop {
    /// Not what prost would decode.
    Malformed,
    /// More items than the limit; the rest was not looked at.
    TooMany,
}

impl From<WireError> for Stop {
    fn from(_: WireError) -> Stop {
        Stop::Malformed
    }
}

/// The messages of the two export requests (field numbers from `opentelemetry-proto` 0.31).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Msg {
    TraceRequest,
    ResourceSpans,
    ScopeSpans,
    Span,
    Event,
    Link,
    Status,
    LogsRequest,
    ResourceLogs,
    ScopeLogs,
    LogRecord,
    Resource,
    EntityRef,
    Scope,
    KeyValue,
    AnyValue,
    ArrayValue,
    KeyValueList,
}

/// What a known field holds, i.e. which wire type prost requires and what it checks inside.
#[derive(Clone, Copy)]
enum Kind {
    /// `string`: length-delimited, UTF-8.
    Str,
    /// `bytes`: length-delimited, anything.
    Bytes,
    /// `uint32`, `int64`, `bool`, enums: a varint (prost truncates, never refuses a value).
    Varint,
    Fixed32,
    /// `fixed64` and `double`.
    Fixed64,
    /// A nested message (repeated, optional or a oneof variant: all walked the same way).
    Message(Msg),
}

impl Msg {
    /// The kind of field `tag`, `None` for a field prost would skip as unknown.
    fn field(self, tag: u32) -> Option<Kind> {
        use Kind::*;
        Some(match (self, tag) {
            (Msg::TraceRequest, 1) => Message(Msg::ResourceSpans),
            (Msg::ResourceSpans, 1) | (Msg::ResourceLogs, 1) => Message(Msg::Resource),
            (Msg::ResourceSpans, 2) => Message(Msg::ScopeSpans),
            (Msg::ScopeSpans, 1) | (Msg::ScopeLogs, 1) => Message(Msg::Scope),
            (Msg::ScopeSpans, 2) => Message(Msg::Span),
            (Msg::ResourceSpans | Msg::ScopeSpans | Msg::ResourceLogs | Msg::ScopeLogs, 3) => Str,
            (Msg::Span, 1 | 2 | 4) => Bytes,
            (Msg::Span, 3 | 5) => Str,
            (Msg::Span, 6 | 10 | 12 | 14) => Varint,
            (Msg::Span, 7 | 8) => Fixed64,
            (Msg::Span, 9) => Message(Msg::KeyValue),
            (Msg::Span, 11) => Message(Msg::Event),
            (Msg::Span, 13) => Message(Msg::Link),
            (Msg::Span, 15) => Message(Msg::Status),
            (Msg::Span, 16) => Fixed32,
            (Msg::Event, 1) => Fixed64,
            (Msg::Event, 2) => Str,
            (Msg::Event, 3) => Message(Msg::KeyValue),
            (Msg::Event, 4) => Varint,
            (Msg::Link, 1 | 2) => Bytes,
            (Msg::Link, 3) => Str,
            (Msg::Link, 4) => Message(Msg::KeyValue),
            (Msg::Link, 5) => Varint,
            (Msg::Link, 6) => Fixed32,
            (Msg::Status, 2) => Str,
            (Msg::Status, 3) => Varint,
            (Msg::LogsRequest, 1) => Message(Msg::ResourceLogs),
            (Msg::ResourceLogs, 2) => Message(Msg::ScopeLogs),
            (Msg::ScopeLogs, 2) => Message(Msg::LogRecord),
            (Msg::LogRecord, 1 | 11) => Fixed64,
            (Msg::LogRecord, 2 | 7) => Varint,
            (Msg::LogRecord, 3 | 12) => Str,
            (Msg::LogRecord, 5) => Message(Msg::AnyValue),
            (Msg::LogRecord, 6) => Message(Msg::KeyValue),
            (Msg::LogRecord, 8) => Fixed32,
            (Msg::LogRecord, 9 | 10) => Bytes,
            (Msg::Resource, 1) => Message(Msg::KeyValue),
            (Msg::Resource, 2) => Varint,
            (Msg::Resource, 3) => Message(Msg::EntityRef),
            (Msg::EntityRef, 1..=4) => Str,
            (Msg::Scope, 1 | 2) => Str,
            (Msg::Scope, 3) => Message(Msg::KeyValue),
            (Msg::Scope, 4) => Varint,
            (Msg::KeyValue, 1) => Str,
            (Msg::KeyValue, 2) => Message(Msg::AnyValue),
            (Msg::AnyValue, 1) => Str,
            (Msg::AnyValue, 2 | 3) => Varint,
            (Msg::AnyValue, 4) => Fixed64,
            (Msg::AnyValue, 5) => Message(Msg::ArrayValue),
            (Msg::AnyValue, 6) => Message(Msg::KeyValueList),
            (Msg::AnyValue, 7) => Bytes,
            (Msg::ArrayValue, 1) => Message(Msg::AnyValue),
            (Msg::KeyValueList, 1) => Message(Msg::KeyValue),
            _ => return None,
        })
    }

    /// Whether each occurrence of this message is one item of the request.
    fn is_item(self) -> bool {
        matches!(self, Msg::Span | Msg::LogRecord)
    }
}

/// The running count of one request.
struct Walk {
    items: u64,
    max_items: u64,
}

impl Walk {
    /// Walks one message whose fields are decoded with `recursion` budget left. The Rust
    /// recursion is bounded by that budget (at most [`RECURSION_LIMIT`] frames).
    fn message(&mut self, msg: Msg, body: &[u8], recursion: u32) -> Result<(), Stop> {
        let mut fields = Fields::nested(body, recursion);
        while let Some(field) = fields.next_field() {
            let (tag, value) = field?;
            let Some(kind) = msg.field(tag) else {
                // prost's skip_field refuses anything once the budget is spent.
                if recursion == 0 {
                    return Err(Stop::Malformed);
                }
                continue;
            };
            match (kind, value) {
                (Kind::Str, Value::Len(s)) => {
                    std::str::from_utf8(s).map_err(|_| Stop::Malformed)?;
                }
                (Kind::Bytes, Value::Len(_))
                | (Kind::Varint, Value::Varint(_))
                | (Kind::Fixed32, Value::Fixed32(_))
                | (Kind::Fixed64, Value::Fixed64(_)) => {}
                (Kind::Message(child), Value::Len(inner)) => {
                    let Some(left) = recursion.checked_sub(1) else {
                        return Err(Stop::Malformed);
                    };
                    if child.is_item() {
                        self.items += 1;
                        if self.items > self.max_items {
                            return Err(Stop::TooMany);
                        }
                    }
                    self.message(child, inner, left)?;
                }
                _ => return Err(Stop::Malformed),
            }
        }
        Ok(())
    }
}
