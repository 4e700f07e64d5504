//! Frames round trip, corruption is detected, and the JSON piece recorded at acceptance merges
//! exactly like the merge's own parse.

use super::*;

fn batch(body: &'static [u8]) -> Batch {
    Batch {
        queue: Queue::RemoteWrite,
        token_id: Arc::from("tok1"),
        tenant: Some(Arc::from("team-a")),
        content_type: "application/x-protobuf",
        content_encoding: Some("snappy"),
        body: Bytes::from_static(body),
        items: 42,
        json_piece: None,
    }
}

#[test]
fn round_trip() {
    let frame = encode_frame(&batch(b"hello body"), 1234).unwrap();
    let Frame::Valid { payload, len } = check_frame(&frame) else {
        panic!("frame not valid")
    };
    assert_eq!(len, frame.len());
    let s = decode_payload(Bytes::copy_from_slice(&frame[payload])).unwrap();
    assert_eq!(s.queue, Queue::RemoteWrite);
    assert_eq!(s.accepted_ms, 1234);
    assert_eq!(accepted_ms_of(&frame[FRAME_HEADER..]), Some(1234));
    assert_eq!(&*s.token_id, "tok1");
    assert_eq!(s.tenant.as_deref(), Some("team-a"));
    assert_eq!(&*s.content_type, "application/x-protobuf");
    assert_eq!(s.content_encoding.as_deref(), Some("snappy"));
    assert_eq!(s.items, 42);
    assert_eq!(&s.body[..], b"hello body");
    assert_eq!(encode_spooled(&s).unwrap(), frame);
    assert_eq!(frame_raw(&frame[FRAME_HEADER..]), frame);
}

#[test]
fn optional_fields_absent() {
    let mut b = batch(b"");
    b.tenant = None;
    b.content_encoding = None;
    b.queue = Queue::Logs;
    let frame = encode_frame(&b, 1).unwrap();
    let s = decode_payload(Bytes::copy_from_slice(&frame[FRAME_HEADER..])).unwrap();
    assert_eq!(
        (s.tenant, s.content_encoding, s.queue),
        (None, None, Queue::Logs)
    );
    assert!(s.body.is_empty());
}

#[test]
fn every_flipped_byte_is_detected() {
    let frame = encode_frame(&batch(b"some body bytes"), 7).unwrap();
    for i in 0..frame.len() {
        let mut f = frame.clone();
        f[i] ^= 0x40;
        assert!(
            !matches!(check_frame(&f), Frame::Valid { .. }),
            "flip at {i} undetected"
        );
    }
}

#[test]
fn truncated_and_zeroed_frames() {
    let frame = encode_frame(&batch(b"abc"), 7).unwrap();
    for cut in 0..frame.len() {
        assert!(matches!(
            check_frame(&frame[..cut]),
            Frame::Incomplete { .. }
        ));
    }
    assert_eq!(check_frame(&[0u8; 64]), Frame::Corrupt);
    let mut huge = frame.clone();
    huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(check_frame(&huge), Frame::Corrupt);
}

#[test]
fn garbage_payload_is_an_error_not_a_panic() {
    for n in 0..40 {
        let junk = Bytes::from(vec![1u8; n]);
        let _ = decode_payload(junk);
    }
    assert_eq!(
        decode_payload(Bytes::from_static(&[9; 30])),
        Err(RecordError::Version(9))
    );
}

/// A RUM batch as the request path builds it: the piece comes from counting the body.
fn rum_batch(queue: Queue, body: &[u8]) -> Batch {
    let signal = match queue {
        Queue::Logs => crate::rum::Signal::Logs,
        _ => crate::rum::Signal::Traces,
    };
    let json_piece = crate::rum::count_up_to(signal, crate::rum::Format::Json, body, u64::MAX)
        .ok()
        .and_then(|c| c.json_piece);
    Batch {
        queue,
        token_id: Arc::from("tok1"),
        tenant: None,
        content_type: "application/json",
        content_encoding: None,
        body: Bytes::copy_from_slice(body),
        items: 1,
        json_piece,
    }
}

/// Merges a record with itself, once trusting the piece found at acceptance and once
/// parsing as before: the merged bodies must be the same, refusals too.
fn merged_body(first: Spooled, second: Spooled) -> Option<Bytes> {
    let mut group = crate::pipeline::merge::Group::new(first, 1 << 30);
    if !group.push(&second) {
        return None;
    }
    group.finish().1.map(|m| m.body)
}

#[test]
fn the_json_piece_found_at_acceptance_merges_like_a_full_parse() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/otel-js-2.12");
    let mut bodies: Vec<(Queue, Vec<u8>)> = ["export_00.json.body", "export_01.json.body"]
        .iter()
        .map(|f| (Queue::Traces, std::fs::read(format!("{dir}/{f}")).unwrap()))
        .collect();
    for (queue, text) in [
        (
            Queue::Traces,
            r#" { "resourceSpans" : [ {"a":"]}\"["} , {"b":[[]]} ] } "#,
        ),
        (Queue::Traces, "{\"resourceSpans\":[\n]}\n"),
        (
            Queue::Logs,
            r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{}]}]}]}"#,
        ),
        (Queue::Traces, r#"{"resourceSpans":[{}],"x":[1]}"#),
        (Queue::Traces, r#"{"resourceSpans":null}"#),
        (Queue::Traces, r#"{"resource\u0053pans":[{}]}"#),
        (Queue::Traces, r#"{"resourceLogs":[{}]}"#),
        (Queue::Traces, r#"{}"#),
        (Queue::Traces, r#"{"resourceSpans":[{"s":"\\"}]}"#),
    ] {
        bodies.push((queue, text.as_bytes().to_vec()));
    }
    let mut found = 0;
    for (queue, body) in &bodies {
        let frame = encode_frame(&rum_batch(*queue, body), 9).unwrap();
        let Frame::Valid { payload, .. } = check_frame(&frame) else {
            panic!("frame not valid")
        };
        let spooled = decode_payload(Bytes::copy_from_slice(&frame[payload])).unwrap();
        assert_eq!(&spooled.body[..], &body[..]);
        assert_eq!(encode_spooled(&spooled).unwrap(), frame);
        assert_eq!(
            spooled.json_piece,
            Spooled::from_batch(rum_batch(*queue, body), 9).json_piece
        );
        found += usize::from(spooled.json_piece.is_some());
        let mut parsed = spooled.clone();
        parsed.json_piece = None;
        assert_eq!(
            merged_body(spooled.clone(), spooled.clone()),
            merged_body(parsed.clone(), parsed),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    // The fixtures, the whitespace, empty, logs and escaped-string shapes.
    assert_eq!(found, 6);
}

#[test]
fn version_1_records_still_decode_without_a_piece() {
    let frame = encode_frame(&batch(b"{\"resourceSpans\":[]}"), 3).unwrap();
    assert_eq!(frame[FRAME_HEADER], VERSION);
    let s = decode_payload(Bytes::copy_from_slice(&frame[FRAME_HEADER..])).unwrap();
    assert_eq!(s.json_piece, None);
    let mut b = rum_batch(Queue::Traces, b"{\"resourceSpans\":[{}]}");
    let frame = encode_frame(&b, 3).unwrap();
    assert_eq!(frame[FRAME_HEADER], VERSION_PIECE);
    b.content_type = "application/x-protobuf";
    let frame = encode_frame(&b, 3).unwrap();
    assert_eq!(frame[FRAME_HEADER], VERSION);
}
