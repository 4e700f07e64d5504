//! RUM error bodies (SPEC §15): OTLP/HTTP answers a failed export with a `google.rpc.Status`
//! in the request's encoding, so an OpenTelemetry exporter can log the reason. Only
//! `code` and `message` are sent; `details` (repeated `Any`) stays empty.

use bytes::Bytes;
use prost::Message;

use super::Format;

/// `google.rpc.Status` (google/rpc/status.proto) without its `details`: an empty repeated
/// field is not on the wire, so this encodes exactly what the full message would.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Status {
    /// The gRPC status code; never 0 (OK) in an error body.
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// The reason, in English, for a person reading the exporter's log.
    #[prost(string, tag = "2")]
    pub message: String,
}

/// The encoded body: protobuf, or the proto3 JSON mapping (`{"code":16,"message":"..."}`).
pub fn body(format: Format, code: i32, message: &str) -> Bytes {
    match format {
        Format::Protobuf => Status {
            code,
            message: message.to_owned(),
        }
        .encode_to_vec()
        .into(),
        Format::Json => {
            serde_json::to_vec(&serde_json::json!({ "code": code, "message": message }))
                .unwrap_or_default()
                .into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_encodings_carry_code_and_message() {
        let pb = body(Format::Protobuf, 16, "unknown token");
        let decoded = Status::decode(pb.as_ref()).unwrap();
        assert_eq!(
            (decoded.code, decoded.message.as_str()),
            (16, "unknown token")
        );
        let json: serde_json::Value =
            serde_json::from_slice(&body(Format::Json, 3, "a \"b\"")).unwrap();
        assert_eq!(json, serde_json::json!({"code": 3, "message": "a \"b\""}));
    }
}
