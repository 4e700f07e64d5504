//! Counting the items of an OTLP JSON export request without building it.
//!
//! Why not `opentelemetry-proto`'s serde support (0.31, `with-serde`): it refuses OTLP JSON that
//! the OpenTelemetry JS SDK sends and the OTLP spec allows:
//! - an empty `AnyValue` `{}`: the JS SDK's `toAnyValue` emits it for `null`/`undefined`, e.g.
//!   the `body` of every log record emitted without one ("no known keys found");
//! - 64-bit integers as JSON numbers (`"startTimeUnixNano": 1795822428659000000`): the JS SDK
//!   sends numbers where `BigInt` is missing, and proto3 JSON accepts numbers or strings;
//! - `{}` as a whole request ("missing field resourceSpans"), and `null` for any field.
//!
//! It also builds every string and attribute only to count spans. This walker instead checks the
//! spine `resource*[] -> scope*[] -> items[]` (objects and arrays, `null` taken as unset as
//! proto3 JSON says), that every item is an object, and each item's ids (hex, case-insensitive,
//! empty or of the exact length) and timestamps (`fixed64` as number or decimal string). Every
//! other field, known or not, is skipped with `IgnoredAny`: still checked to be well-formed JSON,
//! but not typed. Unknown fields are ignored, as OTLP/JSON receivers must. A repeated spine key
//! is refused, so that the count is unambiguous.
//!
//! Nesting: serde_json skips an ignored value iteratively and without its recursion limit, so
//! `[` x 100,000 inside an attribute was accepted and forwarded to receivers that may recurse
//! on it (issue 17). [`outline::scan`] refuses any body nested deeper than [`MAX_JSON_DEPTH`]
//! first, in one pass over the bytes without recursion.

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;
use std::ops::Range;

use super::{outline, RumError, Signal};

mod fast;

/// The deepest nesting of arrays and objects accepted anywhere in a JSON body. The same as
/// serde_json's own recursion limit, so a skipped value is held to the bound a typed one is.
/// Real OTLP is far shallower: a span attribute's value sits 10 levels deep, and each nested
/// `arrayValue` / `kvlistValue` adds 3.
pub const MAX_JSON_DEPTH: usize = 128;

/// Counts the spans or log records of a JSON export request (the whole body must be one JSON
/// object, in UTF-8).
/// Also says where the items are when the body is exactly `{"resourceSpans": [...]}` (or
/// `resourceLogs`), from the same pass that checks the nesting ([`outline`]).
pub(super) fn count(signal: Signal, body: &[u8]) -> Result<(u64, Option<Range<usize>>), RumError> {
    let key = match signal {
        Signal::Traces => "resourceSpans",
        Signal::Logs => "resourceLogs",
    };
    // Checked once, here: the walk needs it too (strings skipped by `IgnoredAny` must be valid
    // UTF-8 as well), and a body the fast path gives up on goes on to the walk.
    let utf8 = std::str::from_utf8(body);
    if let Ok(_text) = utf8 {
        if let Some((count, top)) = fast::count(signal, body) {
            // Every unit test that counts JSON also checks the fast path against the walk.
            #[cfg(test)]
            {
                assert_eq!(
                    walk(signal, _text),
                    Ok(count),
                    "fast path and walk disagree"
                );
                let outline = outline::scan(body).expect("the fast path passed a deep body");
                assert_eq!(outline.items(body, key), top.items(body, key));
            }
            return Ok((count, top.items(body, key)));
        }
    }
    // Malformed or unusual: the nesting check, then the walk, decide.
    let top = outline::scan(body)?;
    let text = utf8.map_err(|_| RumError::BadJson)?;
    let count = walk(signal, text)?;
    Ok((count, top.items(body, key)))
}

/// The serde walk: the reference reader, and the one that decides every body [`fast`] does
/// not vouch for.
fn walk(signal: Signal, text: &str) -> Result<u64, RumError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let count = Node {
        signal,
        level: Level::Request,
    }
    .deserialize(&mut deserializer)
    .map_err(|_| RumError::BadJson)?;
    deserializer.end().map_err(|_| RumError::BadJson)?;
    Ok(count)
}

/// The message being walked, from the request down to one span or log record.
#[derive(Clone, Copy)]
enum Level {
    /// `Export*ServiceRequest`: holds `resourceSpans` / `resourceLogs`.
    Request,
    /// `ResourceSpans` / `ResourceLogs`: holds `scopeSpans` / `scopeLogs`.
    Resource,
    /// `ScopeSpans` / `ScopeLogs`: holds `spans` / `logRecords`.
    Scope,
    /// One `Span` / `LogRecord`: counts 1.
    Item,
}

impl Level {
    fn child(self) -> Level {
        match self {
            Level::Request => Level::Resource,
            Level::Resource => Level::Scope,
            Level::Scope | Level::Item => Level::Item,
        }
    }
}

/// What a key of the current message means for the walk.
enum Key {
    /// The repeated field leading one level down (`resourceSpans`, `scopeSpans`, `spans`, ...).
    Children(&'static str),
    /// A nested message we only require to be an object (`resource`, `scope`).
    Object,
    /// A trace or span id of this many bytes, hex-encoded.
    Id(usize),
    /// A `fixed64` timestamp in nanoseconds.
    Nanos,
    /// Anything else, including unknown fields: skipped.
    Other,
}

fn classify(signal: Signal, level: Level, key: &[u8]) -> Key {
    match (level, signal, key) {
        (Level::Request, Signal::Traces, b"resourceSpans") => Key::Children("resourceSpans"),
        (Level::Request, Signal::Logs, b"resourceLogs") => Key::Children("resourceLogs"),
        (Level::Resource, _, b"resource") => Key::Object,
        (Level::Resource, Signal::Traces, b"scopeSpans") => Key::Children("scopeSpans"),
        (Level::Resource, Signal::Logs, b"scopeLogs") => Key::Children("scopeLogs"),
        (Level::Scope, _, b"scope") => Key::Object,
        (Level::Scope, Signal::Traces, b"spans") => Key::Children("spans"),
        (Level::Scope, Signal::Logs, b"logRecords") => Key::Children("logRecords"),
        (Level::Item, _, b"traceId") => Key::Id(16),
        (Level::Item, _, b"spanId") => Key::Id(8),
        (Level::Item, Signal::Traces, b"parentSpanId") => Key::Id(8),
        (Level::Item, Signal::Traces, b"startTimeUnixNano" | b"endTimeUnixNano") => Key::Nanos,
        (Level::Item, Signal::Logs, b"timeUnixNano" | b"observedTimeUnixNano") => Key::Nanos,
        _ => Key::Other,
    }
}

/// One message of the spine; yields the number of items below it.
#[derive(Clone, Copy)]
struct Node {
    signal: Signal,
    level: Level,
}

impl<'de> DeserializeSeed<'de> for Node {
    type Value = u64;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<u64, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Node {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an OTLP JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<u64, A::Error> {
        let mut count = 0u64;
        let mut seen_children = false;
        while let Some(key) = map.next_key_seed(KeySeed(self))? {
            match key {
                Key::Children(name) => {
                    if seen_children {
                        return Err(de::Error::duplicate_field(name));
                    }
                    seen_children = true;
                    count = map.next_value_seed(List(Node {
                        signal: self.signal,
                        level: self.level.child(),
                    }))?;
                }
                Key::Object => map.next_value_seed(OptionalObject)?,
                Key::Id(bytes) => map.next_value_seed(HexId(bytes))?,
                Key::Nanos => map.next_value_seed(Fixed64)?,
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(match self.level {
            Level::Item => 1,
            _ => count,
        })
    }
}

/// Reads a key without allocating and classifies it for the message it belongs to.
struct KeySeed(Node);

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_identifier(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
        Ok(classify(self.0.signal, self.0.level, key.as_bytes()))
    }
}

/// A repeated message field: an array of nodes, or `null` (empty). Yields the sum of their
/// counts.
#[derive(Clone, Copy)]
struct List(Node);

impl<'de> DeserializeSeed<'de> for List {
    type Value = u64;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<u64, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for List {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of OTLP JSON objects, or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<u64, E> {
        Ok(0)
    }

    fn visit_unit<E: de::Error>(self) -> Result<u64, E> {
        Ok(0)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<u64, D::Error> {
        deserializer.deserialize_seq(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<u64, A::Error> {
        let mut total = 0u64;
        // An element `null` is refused (deserialize_map), as proto3 JSON does in repeated fields.
        while let Some(count) = seq.next_element_seed(self.0)? {
            total = total.saturating_add(count);
        }
        Ok(total)
    }
}

/// A nested message we do not look into: an object (any content) or `null`.
struct OptionalObject;

impl<'de> DeserializeSeed<'de> for OptionalObject {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for OptionalObject {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(())
    }
}

/// A `bytes` id in OTLP's hex form: empty (unset) or exactly this many bytes; `null` is unset.
struct HexId(usize);

impl<'de> DeserializeSeed<'de> for HexId {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for HexId {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "an empty string or {} hex digits", self.0 * 2)
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_str(self)
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<(), E> {
        let well_formed = value.is_empty()
            || (value.len() == self.0 * 2 && value.bytes().all(|b| b.is_ascii_hexdigit()));
        if well_formed {
            Ok(())
        } else {
            Err(E::invalid_value(de::Unexpected::Str(value), &self))
        }
    }
}

/// A `fixed64`: a JSON number or a decimal string (proto3 JSON accepts both), or `null`.
struct Fixed64;

impl<'de> DeserializeSeed<'de> for Fixed64 {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Fixed64 {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an unsigned 64-bit integer, as a number or a decimal string")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<(), E> {
        if value >= 0 {
            Ok(())
        } else {
            Err(E::invalid_value(de::Unexpected::Signed(value), &self))
        }
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<(), E> {
        // proto3 JSON also accepts exponent notation (`1.7e18`) when the value is integral.
        let integral = value.is_finite() && value >= 0.0 && value.fract() == 0.0;
        if integral && value < 18_446_744_073_709_551_616.0 {
            Ok(())
        } else {
            Err(E::invalid_value(de::Unexpected::Float(value), &self))
        }
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<(), E> {
        match value.parse::<u64>() {
            Ok(_) => Ok(()),
            Err(_) => Err(E::invalid_value(de::Unexpected::Str(value), &self)),
        }
    }
}
