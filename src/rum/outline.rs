//! The byte pass over an OTLP JSON body that comes before its walk: it refuses nesting deeper
//! than [`MAX_JSON_DEPTH`] and, on the way, notes the outline of the top-level object, which
//! is enough to say where the items of a `{"resourceSpans": [...]}` body are. The forwarder's
//! merge splices records at that range (`pipeline::merge`) instead of parsing every body a
//! second time.

use std::ops::Range;

use super::json::MAX_JSON_DEPTH;
use super::RumError;

/// What the pass saw at the top level.
#[derive(Debug, Default)]
pub(super) struct TopLevel {
    /// A `,` directly inside the top-level object: it has more than one member.
    pub(super) commas: usize,
    /// Offset of the first array or object opened directly inside the top-level object.
    pub(super) open: Option<usize>,
    /// Offset of the bracket closing it.
    pub(super) close: Option<usize>,
}

/// Refuses a body whose arrays and objects nest deeper than [`MAX_JSON_DEPTH`]. Brackets inside
/// strings do not count; anything else malformed is left to the parser (this pass only has to
/// be right for bodies the parser would accept).
pub(super) fn scan(body: &[u8]) -> Result<TopLevel, RumError> {
    let mut top = TopLevel::default();
    let mut depth = 0usize;
    let mut at = 0usize;
    while let Some(&b) = body.get(at) {
        match b {
            b'"' => {
                at = string_end(body, at + 1);
                continue;
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    return Err(RumError::JsonTooDeep);
                }
                if depth == 2 && top.open.is_none() {
                    top.open = Some(at);
                }
            }
            b']' | b'}' => {
                if depth == 2 && top.close.is_none() {
                    top.close = Some(at);
                }
                depth = depth.saturating_sub(1);
            }
            b',' if depth == 1 => top.commas += 1,
            _ => {}
        }
        at += 1;
    }
    Ok(top)
}

/// The offset just past the closing quote of the string whose contents start at `from`, or
/// the body's length when it never closes. Strings are most of an OTLP body, so this jumps
/// from quote or backslash to the next with `memchr2` instead of looking at every byte: the
/// byte-at-a-time loop was a fifth of the instructions of a whole RUM request (callgrind).
fn string_end(body: &[u8], mut from: usize) -> usize {
    loop {
        let rest = body.get(from..).unwrap_or_default();
        let Some(i) = memchr::memchr2(b'"', b'\\', rest) else {
            return body.len();
        };
        let hit = from + i;
        if body.get(hit) == Some(&b'"') {
            return hit + 1;
        }
        // A backslash: whatever it escapes (a quote too) is part of the string.
        from = hit + 2;
    }
}

impl TopLevel {
    /// For a body the walk accepted: the byte range of the elements of the `key` array when
    /// the body reads exactly `{"<key>": [...]}` (JSON whitespace between the tokens, the key
    /// spelt without escapes), trimmed of whitespace; an empty range at the array's start when
    /// it has no elements (as the merge's parse answers). `None` for any other shape, which the merge then parses itself.
    pub(super) fn items(&self, body: &[u8], key: &str) -> Option<Range<usize>> {
        let (open, close) = (self.open?, self.close?);
        if self.commas != 0 || body.get(open) != Some(&b'[') || body.get(close) != Some(&b']') {
            return None;
        }
        let mut at = expect(body, skip_ws(body, 0), b"{")?;
        at = expect(body, skip_ws(body, at), b"\"")?;
        at = expect(body, at, key.as_bytes())?;
        at = expect(body, at, b"\"")?;
        at = expect(body, skip_ws(body, at), b":")?;
        if skip_ws(body, at) != open {
            return None;
        }
        at = expect(body, skip_ws(body, close + 1), b"}")?;
        if skip_ws(body, at) != body.len() {
            return None;
        }
        let first = skip_ws(body, open + 1);
        if first == close {
            // What the merge's own parse answers for an empty array.
            return Some(open..open);
        }
        let mut end = close;
        while end > first && body.get(end - 1).copied().is_some_and(is_ws) {
            end -= 1;
        }
        Some(first..end)
    }
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn skip_ws(body: &[u8], mut at: usize) -> usize {
    while body.get(at).copied().is_some_and(is_ws) {
        at += 1;
    }
    at
}

/// `at` moved past `token` when the body has it there.
fn expect(body: &[u8], at: usize, token: &[u8]) -> Option<usize> {
    let end = at.checked_add(token.len())?;
    (body.get(at..end)? == token).then_some(end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rum::{count_up_to, Format, Signal};

    fn piece(signal: Signal, body: &str) -> Option<Range<usize>> {
        count_up_to(signal, Format::Json, body.as_bytes(), u64::MAX)
            .unwrap()
            .json_piece
    }

    #[test]
    fn the_piece_of_the_js_sdk_fixtures_is_their_resource_spans() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/otel-js-2.12");
        for name in ["export_00.json.body", "export_01.json.body"] {
            let body = std::fs::read_to_string(format!("{dir}/{name}")).unwrap();
            let range = piece(Signal::Traces, &body).expect(name);
            let spliced: serde_json::Value =
                serde_json::from_str(&format!("[{}]", &body[range])).unwrap();
            let whole: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(spliced, whole["resourceSpans"], "{name}");
        }
    }

    #[test]
    fn only_the_one_array_shape_has_a_piece() {
        let spaced = " {\n \"resourceSpans\" : [ {\"a\":\"],}\\\"[{\"} , {} ]\t} \r\n";
        let r = piece(Signal::Traces, spaced).unwrap();
        assert_eq!(&spaced[r], "{\"a\":\"],}\\\"[{\"} , {}");
        let empty = "{\"resourceSpans\":[ \n ]}";
        assert_eq!(piece(Signal::Traces, empty), Some(17..17));
        let logs = r#"{"resourceLogs":[{"scopeLogs":[]}]}"#;
        assert_eq!(
            &logs[piece(Signal::Logs, logs).unwrap()],
            r#"{"scopeLogs":[]}"#
        );
        for other in [
            r#"{"resourceSpans":[{}],"extra":[1]}"#,
            r#"{"extra":1,"resourceSpans":[{}]}"#,
            r#"{"resourceSpans":null}"#,
            r#"{"resource\u0053pans":[{}]}"#,
            r#"{"resourceLogs":[{}]}"#,
            r#"{}"#,
        ] {
            assert_eq!(piece(Signal::Traces, other), None, "{other}");
        }
        assert_eq!(piece(Signal::Logs, r#"{"resourceSpans":[{}]}"#), None);
    }

    #[test]
    fn nesting_is_counted_outside_strings_only() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(scan(deep(MAX_JSON_DEPTH).as_bytes()).is_ok());
        assert_eq!(
            scan(deep(MAX_JSON_DEPTH + 1).as_bytes()).unwrap_err(),
            RumError::JsonTooDeep
        );
        let quoted = format!("[\"{}\\\"{}\"]", "[".repeat(500), "{".repeat(500));
        assert!(scan(quoted.as_bytes()).is_ok());
        let escaped_backslash = format!("[\"\\\\\"{}]", "[".repeat(MAX_JSON_DEPTH));
        assert_eq!(
            scan(escaped_backslash.as_bytes()).unwrap_err(),
            RumError::JsonTooDeep
        );
        assert!(scan(b"\"never closed [[[[").is_ok());
    }
}
