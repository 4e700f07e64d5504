//! RUM error bodies (SPEC §15) against a real edge on 127.0.0.1:0: every refusal is a
//! `google.rpc.Status` in the request's format (protobuf for protobuf, JSON otherwise, a
//! `text/plain` beacon included) with a non-zero gRPC code matching the HTTP status and the
//! reason in `message`; remote_write errors stay plain text.

mod common;

use common::TestEdge;
use prost::Message;
use serde_json::json;

const ORIGIN: &str = "http://localhost:3000";

/// `google.rpc.Status`, declared here independently of the edge's own type.
#[derive(Clone, PartialEq, prost::Message)]
struct Status {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

const UNAUTHENTICATED: i32 = 16;
const PERMISSION_DENIED: i32 = 7;
const INVALID_ARGUMENT: i32 = 3;
const UNAVAILABLE: i32 = 14;

/// Posts to `/v1/traces` and returns (status, content-type, body).
async fn post(
    edge: &TestEdge,
    token: &str,
    origin: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, String, Vec<u8>) {
    let r = edge
        .http
        .post(edge.ingest_url("/v1/traces"))
        .bearer_auth(token)
        .header("origin", origin)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, ct, r.bytes().await.unwrap().to_vec())
}

/// Decodes the body in the format `content_type` asked for and checks code and message.
fn assert_status(
    what: &str,
    content_type: &str,
    (status, ct, body): &(u16, String, Vec<u8>),
    want_status: u16,
    want_code: i32,
    message_has: &str,
) {
    assert_eq!(*status, want_status, "{what} ({content_type})");
    let s = if content_type == "application/x-protobuf" {
        assert_eq!(ct, "application/x-protobuf", "{what}");
        Status::decode(body.as_slice())
            .unwrap_or_else(|e| panic!("{what}: not a protobuf Status: {e}"))
    } else {
        assert_eq!(ct, "application/json", "{what} ({content_type})");
        let v: serde_json::Value = serde_json::from_slice(body)
            .unwrap_or_else(|e| panic!("{what}: not JSON: {e}: {body:?}"));
        Status {
            code: v["code"].as_i64().expect("numeric code") as i32,
            message: v["message"].as_str().expect("message").to_owned(),
        }
    };
    assert_eq!(s.code, want_code, "{what} ({content_type}): {s:?}");
    assert!(
        s.message.contains(message_has),
        "{what} ({content_type}): {s:?}"
    );
}

#[tokio::test]
async fn every_status_class_is_a_status_in_the_request_format() {
    let edge = TestEdge::start_with(|c| c.body.rum_max_wire_bytes = 1024).await;
    let (_, client) = edge.client_token(&[ORIGIN]).await;
    let (_, rw) = edge.remote_write_token().await;
    let (_, tiny) = edge
        .create_token(
            json!({"name": "tiny", "type": "client", "origins": [ORIGIN],
            "limits": {"requests_per_second": 1, "requests_burst": 1}}),
        )
        .await;
    let unknown = client.replace(|c: char| c.is_ascii_digit(), "7");
    for ct in ["application/json", "text/plain", "application/x-protobuf"] {
        let r = post(&edge, &unknown, ORIGIN, ct, Vec::new()).await;
        assert_status("unknown token", ct, &r, 401, UNAUTHENTICATED, "token");
        let r = post(&edge, &rw, ORIGIN, ct, Vec::new()).await;
        assert_status(
            "wrong token type",
            ct,
            &r,
            403,
            PERMISSION_DENIED,
            "token type",
        );
        let r = post(&edge, &client, "https://evil.example", ct, Vec::new()).await;
        assert_status("origin", ct, &r, 403, PERMISSION_DENIED, "origin");
        let r = post(&edge, &client, ORIGIN, ct, b"\xff{not an export".to_vec()).await;
        assert_status("garbage", ct, &r, 400, INVALID_ARGUMENT, "not a valid OTLP");
        let r = post(&edge, &client, ORIGIN, ct, vec![b' '; 2048]).await;
        assert_status("too large", ct, &r, 413, INVALID_ARGUMENT, "too large");
        // The tiny token's burst of 1: the first passes (or was spent by an earlier format).
        let _ = post(&edge, &tiny, ORIGIN, ct, b"{}".to_vec()).await;
        let r = post(&edge, &tiny, ORIGIN, ct, b"{}".to_vec()).await;
        assert_status("rate limited", ct, &r, 429, UNAVAILABLE, "rate limit");
    }
    // An unsupported type is answered in JSON, the default.
    let r = post(&edge, &client, ORIGIN, "image/png", b"x".to_vec()).await;
    assert_status(
        "unsupported type",
        "image/png",
        &r,
        415,
        INVALID_ARGUMENT,
        "Content-Type",
    );
}

#[tokio::test]
async fn overload_is_unavailable_and_remote_write_errors_stay_text() {
    // A pipeline that holds nothing: the hand-off refuses with 503.
    let edge = TestEdge::start_with(|c| c.pipeline.max_bytes = 1).await;
    let (_, client) = edge.client_token(&[ORIGIN]).await;
    let export = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b100","name":"x","kind":1,"startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}"#;
    for ct in ["application/json", "application/x-protobuf"] {
        let body = if ct == "application/json" {
            export.to_vec()
        } else {
            use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
            let req: ExportTraceServiceRequest = serde_json::from_slice(export).unwrap();
            req.encode_to_vec()
        };
        let r = post(&edge, &client, ORIGIN, ct, body).await;
        assert_status("overloaded", ct, &r, 503, UNAVAILABLE, "overloaded");
    }
    let r = edge
        .http
        .post(edge.ingest_url("/api/v1/write"))
        .bearer_auth("not-a-token")
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "snappy")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
}
