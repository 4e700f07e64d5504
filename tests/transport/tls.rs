//! TLS: HTTP/2 and HTTP/1.1 over TLS, certificate pick-up without dropping connections,
//! protocol versions, and the handshake timeout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Version;
use tokio::io::AsyncReadExt;
use tokio_rustls::rustls;

use super::common::{series_value, TestEdge};
use super::pki::Ca;
use super::*;

/// The DER of the certificate the server presented on this response's connection.
fn peer_cert(r: &reqwest::Response) -> Vec<u8> {
    r.extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|i| i.peer_certificate())
        .expect("TLS info on the response")
        .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_write_and_rum_over_tls_use_h2_by_alpn() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let leaf = ca.leaf("edge-1", 1);
    leaf.write(dir.path());
    let edge = tls_edge(dir.path(), |_| {}).await;
    let base = format!("https://127.0.0.1:{}", edge.ingest.port());
    let (rw_id, rw) = edge.remote_write_token().await;
    let (_, rum) = edge.client_token(&[ORIGIN]).await;
    let http = tls_client(&ca.pem());

    let r = rw_request(&http, &base, &rw, rw_body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "{:?}", r.text().await);
    let r = rw_request(&http, &base, &rw, rw_body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), Version::HTTP_2);
    assert_eq!(r.status(), 204);
    assert_eq!(peer_cert(&r), leaf.der);
    let r = rum_request(&http, &base, &rum).send().await.unwrap();
    assert_eq!(r.version(), Version::HTTP_2);
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let samples = edge
        .metric_value(&format!("ingest_samples_total{{token_id=\"{rw_id}\"}}"))
        .await
        .unwrap_or(0.0);
    assert!(samples > 0.0, "no samples counted over h2/TLS");
    // One connection carried all three requests.
    assert_eq!(connections(&edge, "h2", true).await, 1.0);

    // An HTTP/1.1-only client gets HTTP/1.1 over the same listener.
    let h1 = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap())
        .http1_only()
        .build()
        .unwrap();
    let r = rum_request(&h1, &base, &rum).send().await.unwrap();
    assert_eq!(r.version(), Version::HTTP_11);
    assert_eq!(r.status(), 200);
    assert_eq!(connections(&edge, "http1", true).await, 1.0);

    // Plain HTTP on the TLS port is a failed handshake, not a request.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/healthz", edge.ingest.port()))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP was served on the TLS listener");
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_certificate_is_picked_up_and_open_connections_stay() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let old = ca.leaf("edge-old", 1);
    old.write(dir.path());
    let edge = tls_edge(dir.path(), |_| {}).await;
    let base = format!("https://127.0.0.1:{}", edge.ingest.port());
    let kept = tls_client(&ca.pem());
    let r = kept.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(peer_cert(&r), old.der);

    let new = ca.leaf("edge-new", 2);
    new.swap_into(dir.path());
    // SPEC §15: within 10 s of the change, without a signal.
    let started = Instant::now();
    loop {
        let fresh = tls_client(&ca.pem());
        let r = fresh.get(format!("{base}/healthz")).send().await.unwrap();
        if peer_cert(&r) == new.der {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "new certificate not presented 10 s after the rename"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The connection opened before the swap still works, and it is the same connection.
    let before = connections(&edge, "h2", true).await;
    let r = rw_request(&kept, &base, "wrong-token", rw_body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(peer_cert(&r), old.der, "the old connection was replaced");
    assert_eq!(connections(&edge, "h2", true).await, before);
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_certificate_keeps_the_old_one_and_reload_on_request_is_immediate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let old = ca.leaf("edge-old", 1);
    old.write(dir.path());
    let edge = tls_edge(dir.path(), |_| {}).await;
    let base = format!("https://127.0.0.1:{}", edge.ingest.port());
    let get = || async {
        let r = tls_client(&ca.pem())
            .get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap();
        peer_cert(&r)
    };
    // A key that does not match the certificate (a deploy caught half way).
    let other = ca.leaf("edge-other", 3);
    std::fs::write(dir.path().join("key.pem"), &other.key_pem).unwrap();
    let e = edge.edge.as_ref().unwrap();
    assert_eq!(e.reload_tls(), Some(false));
    assert_eq!(get().await, old.der);
    // Garbage, too.
    std::fs::write(dir.path().join("cert.pem"), "not a certificate").unwrap();
    assert_eq!(e.reload_tls(), Some(false));
    assert_eq!(get().await, old.der);
    // What SIGHUP does: at once, no waiting for the poll.
    let new = ca.leaf("edge-new", 2);
    new.write(dir.path());
    assert_eq!(e.reload_tls(), Some(true));
    assert_eq!(get().await, new.der);
    edge.stop().await;
}

/// A rustls client limited to `version`; returns what was negotiated.
async fn handshake_with(
    addr: std::net::SocketAddr,
    ca_pem: &str,
    version: &'static rustls::SupportedProtocolVersion,
) -> Option<rustls::ProtocolVersion> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[version])
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let tls = connector.connect(name, tcp).await.ok()?;
    tls.get_ref().1.protocol_version()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_1_2_and_1_3_are_served_and_1_1_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    ca.leaf("edge", 1).write(dir.path());
    let edge = tls_edge(dir.path(), |_| {}).await;
    assert_eq!(
        handshake_with(edge.ingest, &ca.pem(), &rustls::version::TLS12).await,
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    assert_eq!(
        handshake_with(edge.ingest, &ca.pem(), &rustls::version::TLS13).await,
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    // rustls cannot speak TLS 1.1; OpenSSL can, once its own security level allows it.
    let out = tokio::process::Command::new("openssl")
        .args(["s_client", "-connect", &edge.ingest.to_string(), "-tls1_1"])
        .args(["-cipher", "DEFAULT:@SECLEVEL=0"])
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("openssl CLI");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.status.success(),
        "TLS 1.1 handshake succeeded:\n{text}"
    );
    // The refusal came from the edge as a TLS alert (rustls answers a TLS 1.1 hello with
    // handshake_failure), not from OpenSSL refusing to send it.
    assert!(text.contains("SSL alert number"), "{text}");
    assert!(!text.contains("no protocols available"), "{text}");
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_handshake_loses_its_slot() {
    let dir = tempfile::tempdir().unwrap();
    Ca::new().leaf("edge", 1).write(dir.path());
    let edge = tls_edge(dir.path(), |c| {
        c.server.tls_handshake_timeout = Duration::from_millis(500);
        c.server.max_connections = 1;
    })
    .await;
    let mut stalled = tokio::net::TcpStream::connect(edge.ingest).await.unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(5), stalled.read(&mut buf))
        .await
        .expect("stalled handshake still open after 5 s")
        .unwrap_or(0);
    assert_eq!(n, 0);
    assert!(started.elapsed() < Duration::from_secs(3));
    let m = edge.metrics().await;
    assert_eq!(
        series_value(&m, "ingest_connections_active{listener=\"ingest\"}"),
        Some(0.0)
    );
    let _: &TestEdge = &edge;
    edge.stop().await;
}

/// The binary itself: `SIGHUP` reloads at once (a process without the handler would die of
/// the signal) and the edge keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_running_binary() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let old = ca.leaf("edge-old", 1);
    let (cert, key) = old.write(dir.path());
    let config = dir.path().join("edge.toml");
    let data = dir.path().join("data");
    std::fs::write(
        &config,
        format!(
            "data_dir = {data:?}\n[server]\ningest_addr = \"127.0.0.1:0\"\n\
             ops_addr = \"127.0.0.1:0\"\ntls_cert_file = {cert:?}\ntls_key_file = {key:?}\n\
             [admin]\nkey = \"sighup-test-admin-key-0000\"\n"
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ingest-edge"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("INGEST_EDGE_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let wait_for = |needle: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            if line.contains(needle) {
                return line;
            }
        }
        panic!("the edge never logged {needle:?}");
    };
    let listening = wait_for("listening ingest=");
    let ingest = listening
        .split_whitespace()
        .find_map(|w| w.strip_prefix("ingest="))
        .unwrap()
        .to_string();
    let get = || async {
        let r = tls_client(&ca.pem())
            .get(format!("https://{ingest}/healthz"))
            .send()
            .await
            .unwrap();
        peer_cert(&r)
    };
    assert_eq!(get().await, old.der);
    let new = ca.leaf("edge-new", 2);
    new.write(dir.path());
    let status = std::process::Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let line = wait_for("SIGHUP");
    assert!(line.contains("TLS certificate reloaded"), "{line}");
    assert_eq!(get().await, new.der);
    assert!(
        child.try_wait().unwrap().is_none(),
        "the edge died of SIGHUP"
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_tls_puts_the_ops_listener_behind_the_same_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let leaf = ca.leaf("edge", 1);
    leaf.write(dir.path());
    let edge = tls_edge(dir.path(), |c| c.server.ops_tls = true).await;
    let r = tls_client(&ca.pem())
        .get(format!("https://127.0.0.1:{}/readyz", edge.ops.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(peer_cert(&r), leaf.der);
    let plain = reqwest::Client::new()
        .get(format!("http://{}/readyz", edge.ops))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP served on the TLS ops listener");
    // The console's session cookie is `Secure` once the ops listener speaks TLS, so a browser
    // never sends it over plain HTTP.
    let signed_in = tls_client(&ca.pem())
        .post(format!(
            "https://127.0.0.1:{}/api/v1/session",
            edge.ops.port()
        ))
        .json(&serde_json::json!({"key": edge.admin_key}))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 200);
    let cookie = signed_in.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.ends_with("; Secure"), "{cookie}");
    edge.stop().await;
}
