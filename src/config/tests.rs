use std::time::Duration;

use super::*;

#[test]
fn empty_file_is_all_defaults() {
    let c = Config::from_toml("").unwrap();
    assert_eq!(c.server.ingest_addr.port(), 8080);
    assert_eq!(c.server.ops_addr.port(), 9464);
    assert_eq!(c.body.rum_max_wire_bytes, 1 << 20);
    assert_eq!(c.remote_write.throttle_status, 429);
}

#[test]
fn shipped_config_file_parses_and_matches_defaults() {
    let text = include_str!("../../config/edge.toml");
    let c = Config::from_toml(text).unwrap();
    let d = Config::default();
    assert_eq!(c.server.ingest_addr, d.server.ingest_addr);
    assert_eq!(c.limits.client, d.limits.client);
    assert_eq!(c.limits.remote_write, d.limits.remote_write);
    assert_eq!(c.body.remote_write_max_decoded_bytes, 32 << 20);
    assert_eq!(c.admin.rotation_period, RotationPeriod::default());
    assert_eq!(c.server.body_read_timeout, d.server.body_read_timeout);
    assert_eq!(c.server.write_timeout, d.server.write_timeout);
    assert_eq!(c.server.max_header_bytes, d.server.max_header_bytes);
    assert_eq!(
        c.server.tls_handshake_timeout,
        d.server.tls_handshake_timeout
    );
    assert_eq!(
        c.server.h2_max_concurrent_streams,
        d.server.h2_max_concurrent_streams
    );
    assert!(c.server.tls_cert_file.is_none() && !c.server.ops_tls);
    assert_eq!(c.store.poll_interval, d.store.poll_interval);
    assert_eq!(c.pipeline.backpressure_bytes, d.pipeline.backpressure_bytes);
    assert_eq!(
        c.pipeline.backpressure_max_wait,
        d.pipeline.backpressure_max_wait
    );
    assert!(c.store.url.is_empty() && c.server.name.is_empty());
    assert!(c.check().is_ok());
    assert_eq!(c.mobile.app_check_jwks_file, None);
    let m = Config::from_toml("[mobile]\napp_check_jwks_file = \"/k/jwks.json\"").unwrap();
    assert_eq!(
        m.mobile.app_check_jwks_file,
        Some(PathBuf::from("/k/jwks.json"))
    );
}

#[test]
fn env_overrides_file() {
    let mut c = Config::default();
    c.apply_env(|v| match v {
        "INGEST_EDGE_INGEST_ADDR" => Some("127.0.0.1:0".into()),
        "INGEST_EDGE_DATA_DIR" => Some("/tmp/x".into()),
        _ => None,
    })
    .unwrap();
    assert_eq!(c.server.ingest_addr.port(), 0);
    assert_eq!(c.data_dir.0, PathBuf::from("/tmp/x"));
    let bad = c.apply_env(|v| (v == "INGEST_EDGE_OPS_ADDR").then(|| "nope".to_string()));
    assert!(matches!(bad, Err(ConfigError::Env { .. })));
}

#[test]
fn store_url_from_env_checked_and_never_shown_with_its_password() {
    let mut c = Config::default();
    let url = "postgres://ingest:hunter2-secret@127.0.0.1:5432/edges";
    c.apply_env(|v| (v == "INGEST_EDGE_STORE_URL").then(|| url.to_string()))
        .unwrap();
    assert_eq!(c.store.url, url);
    assert!(c.check().is_ok());
    let shown = format!("{c:?}");
    assert!(
        shown.contains("127.0.0.1:5432") && !shown.contains("hunter2-secret"),
        "{shown}"
    );
    c.store.poll_interval = Duration::from_secs(31);
    assert!(
        c.check().is_err(),
        "a poll slower than 30 s breaks SPEC §16"
    );
    c.store.poll_interval = Duration::from_secs(10);
    c.store.url = "mysql://x".into();
    assert!(c.check().is_err());
}

#[test]
fn redis_url_from_file_or_env_checked_and_never_shown_with_its_password() {
    let c = Config::from_toml("[limits]\nredis_url = \"redis://127.0.0.1:6379\"").unwrap();
    assert_eq!(c.limits.redis_url.0, "redis://127.0.0.1:6379");
    assert!(c.check().is_ok());
    let mut c = Config::default();
    let url = "redis://:hunter2-secret@127.0.0.1:6379/0";
    c.apply_env(|v| (v == "INGEST_EDGE_REDIS_URL").then(|| url.to_string()))
        .unwrap();
    assert_eq!(c.limits.redis_url.0, url);
    let shown = format!("{c:?}");
    assert!(
        shown.contains("127.0.0.1:6379") && !shown.contains("hunter2-secret"),
        "{shown}"
    );
    // TLS, with or without a private CA; a CA file without TLS, or another scheme, is refused.
    c.limits.redis_url.0 = "rediss://127.0.0.1".into();
    assert!(c.check().is_ok());
    c.limits.redis_ca_file = Some("ca.pem".into());
    assert!(c.check().is_ok());
    c.limits.redis_url.0 = url.into();
    assert!(c.check().is_err(), "a CA file for plain redis://");
    c.limits.redis_ca_file = None;
    c.limits.redis_url.0 = "http://127.0.0.1:6379".into();
    assert!(c.check().is_err());
}

#[test]
fn unknown_keys_and_bad_values_are_refused() {
    assert!(Config::from_toml("[server]\nnope = 1").is_err());
    assert!(Config::from_toml("[limits.client]\nrequests_per_second = 0").is_err());
    let c = Config::from_toml("[remote_write]\nthrottle_status = 500").unwrap();
    assert!(c.check().is_err());
    let c = Config::from_toml("[server]\nmax_header_bytes = 100").unwrap();
    assert!(c.check().is_err());
    let c = Config::from_toml("[server]\nwrite_timeout = \"0s\"").unwrap();
    assert!(c.check().is_err());
    assert!(Config::default().check().is_ok());
}

#[test]
fn proxy_and_upstream_tls_settings() {
    let c = Config::from_toml(
        "[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"2001:db8::1\"]\nproxy_protocol = true",
    )
    .unwrap();
    assert!(!c.server.trusted_proxies.is_empty() && c.server.proxy_protocol);
    assert!(Config::from_toml("[server]\ntrusted_proxies = [\"10.0.0.0/40\"]").is_err());
    let https = "[pipeline]\notlp_upstream = \"https://collector:4318\"";
    assert!(Config::from_toml(https).unwrap().check().is_ok());
    let ftp = "[pipeline]\notlp_upstream = \"ftp://collector\"";
    assert!(Config::from_toml(ftp).unwrap().check().is_err());
    let both = "[pipeline]\nupstream_bearer_token_file = \"/t\"\nupstream_username = \"u\"\nupstream_password_file = \"/p\"";
    assert!(Config::from_toml(both).unwrap().check().is_err());
    let user_only = "[pipeline]\nupstream_username = \"u\"";
    assert!(Config::from_toml(user_only).unwrap().check().is_err());
    let basic = "[pipeline]\nupstream_username = \"u\"\nupstream_password_file = \"/p\"";
    assert!(Config::from_toml(basic).unwrap().check().is_ok());
}

#[test]
fn tls_files_come_in_pairs() {
    let c = Config::from_toml("[server]\ntls_cert_file = \"/x/fullchain.pem\"").unwrap();
    assert!(c.check().is_err());
    let c = Config::from_toml("[server]\nops_tls = true").unwrap();
    assert!(c.check().is_err());
    let c = Config::from_toml(
        "[server]\ntls_cert_file = \"/x/fullchain.pem\"\ntls_key_file = \"/x/privkey.pem\"\nops_tls = true",
    )
    .unwrap();
    assert!(c.check().is_ok());
    let c = Config::from_toml("[server]\nh2_max_concurrent_streams = 0").unwrap();
    assert!(c.check().is_err());
}
