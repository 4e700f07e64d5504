//! remote_write tokens (Bearer, Basic, wrong type, revoked, unknown, malformed) and the real
//! request bodies Prometheus 2.42 sent, counted with our own decoder.

use ingest_edge::secret::{TokenSecret, TokenType};
use prost::Message;

use super::*;

#[tokio::test]
async fn tokens_are_checked_and_rejections_counted() {
    let edge = TestEdge::start().await;
    let (id, secret) = edge.remote_write_token().await;
    let (cid, csecret) = edge.client_token(&["http://localhost:3000"]).await;
    let basic = |user: &str, pass: &str| {
        edge.http
            .post(edge.ingest_url("/api/v1/write"))
            .basic_auth(user, Some(pass))
            .header("content-type", CT_V1)
            .header("content-encoding", "snappy")
            .body(v1_n_samples(3))
    };
    // SPEC §6: Basic auth with the token as the password (any user name).
    assert_eq!(
        basic("prometheus", &secret).send().await.unwrap().status(),
        204
    );
    assert_eq!(basic("", &secret).send().await.unwrap().status(), 204);
    assert_eq!(
        write(&edge, &secret, CT_V1, v1_n_samples(3)).await.status(),
        204
    );
    assert_eq!(
        basic("prometheus", "wrong").send().await.unwrap().status(),
        401
    );
    // A client (browser) token may not remote-write.
    assert_eq!(
        write(&edge, &csecret, CT_V1, v1_n_samples(3))
            .await
            .status(),
        403
    );
    // A well-formed secret this edge has never issued.
    let unknown = TokenSecret::generate(TokenType::RemoteWrite);
    let r = write(&edge, unknown.expose(), CT_V1, v1_n_samples(3)).await;
    assert_eq!(r.status(), 401);
    assert_eq!(
        write(&edge, "not-a-token", CT_V1, v1_n_samples(3))
            .await
            .status(),
        401
    );
    let r = edge
        .http
        .post(edge.ingest_url("/api/v1/write"))
        .header("content-type", CT_V1)
        .header("content-encoding", "snappy")
        .body(v1_n_samples(3))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Revoked: the secret stops working at once.
    let (s, _) = edge
        .admin(
            reqwest::Method::DELETE,
            &format!("/api/v1/tokens/{id}"),
            None,
        )
        .await;
    assert_eq!(s, 200);
    let r = write(&edge, &secret, CT_V1, v1_n_samples(3)).await;
    assert_eq!(r.status(), 401);
    let m = edge.metrics().await;
    let v = |s: String| series_value(&m, &s);
    assert_eq!(
        v(format!("ingest_samples_total{{token_id=\"{id}\"}}")),
        Some(9.0)
    );
    assert_eq!(v(rejected(&id, "revoked_token")), Some(1.0));
    assert_eq!(v(rejected(&cid, "wrong_token_type")), Some(1.0));
    assert_eq!(v(requests(&cid, 403)), Some(1.0));
    // Requests matching no token are counted under token_id="" (SPEC §8).
    assert_eq!(v(rejected("", "unknown_token")), Some(1.0));
    assert_eq!(
        v(rejected("", "malformed_token")),
        Some(2.0),
        "Basic with a bad password + garbage"
    );
    assert_eq!(v(rejected("", "missing_token")), Some(1.0));
    assert!(
        !m.contains(&secret) && !m.contains(&csecret),
        "a secret leaked into /metrics"
    );
}

/// What a body holds, by our own decode: samples, histograms, exemplars, metadata.
fn fixture_counts(raw: &[u8]) -> [u64; 4] {
    let req = v1::WriteRequest::decode(raw).unwrap();
    let sum = |f: fn(&v1::TimeSeries) -> usize| req.timeseries.iter().map(f).sum::<usize>() as u64;
    [
        sum(|t| t.samples.len()),
        sum(|t| t.histograms.len()),
        sum(|t| t.exemplars.len()),
        req.metadata.len() as u64,
    ]
}

#[tokio::test]
async fn prometheus_2_42_bodies_are_accepted_and_counted_exactly() {
    let edge = TestEdge::start().await;
    let (id, secret) = edge.remote_write_token().await;
    let dir = fixtures().join("prometheus-2.42");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("body_") && n.ends_with(".bin"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 6, "{names:?}");
    let (mut want, mut wire, mut decoded) = ([0u64; 4], 0u64, 0u64);
    for name in &names {
        let body = std::fs::read(dir.join(name)).unwrap();
        let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
        let got = fixture_counts(&raw);
        if name == "body_004.bin" {
            // The README: body_004 carries metadata only.
            assert!(got[0] == 0 && got[3] > 0, "{name}: {got:?}");
        }
        for (w, g) in want.iter_mut().zip(got) {
            *w += g;
        }
        wire += body.len() as u64;
        decoded += raw.len() as u64;
        // The headers exactly as Prometheus sent them, but for ours.
        let headers: serde_json::Map<String, serde_json::Value> = serde_json::from_str(
            &std::fs::read_to_string(dir.join(name.replace(".bin", ".json"))).unwrap(),
        )
        .unwrap();
        let mut req = edge
            .http
            .post(edge.ingest_url("/api/v1/write"))
            .bearer_auth(&secret);
        for (k, v) in &headers {
            if !["host", "content-length", "authorization"].contains(&k.to_lowercase().as_str()) {
                req = req.header(k.as_str(), v.as_str().unwrap());
            }
        }
        let r = req.body(body).send().await.unwrap();
        assert_eq!(r.status(), 204, "{name}: {}", r.text().await.unwrap());
        assert_eq!(written(r.headers()), None, "{name}");
    }
    assert!(
        want[0] > 1000 && want[3] > 0,
        "fixtures hold data: {want:?}"
    );
    let m = edge.metrics().await;
    let v = |s: String| series_value(&m, &s).unwrap_or(0.0);
    for (k, w) in ["samples", "histograms", "exemplars", "metadata"]
        .iter()
        .zip(want)
    {
        assert_eq!(
            v(format!("ingest_{k}_total{{token_id=\"{id}\"}}")),
            w as f64,
            "{k}"
        );
    }
    assert_eq!(v(requests(&id, 204)), 6.0);
    let ep = "endpoint=\"remote_write\"";
    assert_eq!(
        v(format!(
            "ingest_received_bytes_total{{token_id=\"{id}\",{ep}}}"
        )),
        wire as f64
    );
    assert_eq!(
        v(format!(
            "ingest_decoded_bytes_total{{token_id=\"{id}\",{ep}}}"
        )),
        decoded as f64
    );
}
