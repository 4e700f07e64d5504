//! Matching tests: every SPEC §4 table row, scheme and port rules, default-port and case
//! equivalence, IDN and IP hosts, and agreement of the request fast path with the full parser.

use super::*;

#[test]
fn spec_table_rows() {
    assert_matches(
        "https://*.example.com",
        &["https://app.example.com", "https://www.example.com"],
        &["https://example.com", "https://sub.app.example.com"],
    );
    assert_matches(
        "https://*.apps.example.com",
        &[
            "https://prod.apps.example.com",
            "https://dev.apps.example.com",
        ],
        &["https://apps.example.com"],
    );
    assert_matches(
        "https://app.*.example.com",
        &[
            "https://app.staging.example.com",
            "https://app.prod.example.com",
        ],
        &["https://app.example.com"],
    );
}

#[test]
fn scheme_and_port_must_match_exactly() {
    assert_matches(
        "https://*.example.com",
        &["https://app.example.com"],
        &["http://app.example.com", "https://app.example.com:8443"],
    );
    assert_matches(
        "http://localhost:3000",
        &["http://localhost:3000"],
        &[
            "http://localhost",
            "http://localhost:3001",
            "https://localhost:3000",
        ],
    );
}

#[test]
fn exact_patterns_match_only_their_host() {
    assert_matches(
        "https://app.example.com",
        &["https://app.example.com"],
        &[
            "https://example.com",
            "https://x.app.example.com",
            "https://app.example.co",
            "https://app.example.com.evil.com",
            "https://evilapp.example.com",
        ],
    );
}

#[test]
fn wildcards_do_not_match_lookalike_suffixes() {
    assert_matches(
        "https://*.example.com",
        &[],
        &[
            "https://app.notexample.com",
            "https://app.example.com.evil.com",
            "https://example.com.evil.com",
        ],
    );
}

#[test]
fn default_ports_are_elided_on_both_sides() {
    assert_eq!(pattern("https://a.com:443"), pattern("https://a.com"));
    assert_eq!(pattern("http://a.com:80"), pattern("http://a.com"));
    assert_eq!(pattern("https://a.com:443").to_string(), "https://a.com");
    assert_eq!(pattern("http://a.com:80/").to_string(), "http://a.com");
    assert_matches(
        "https://a.com",
        &["https://a.com", "https://a.com:443"],
        &["https://a.com:80"],
    );
    assert_matches(
        "https://a.com:443",
        &["https://a.com", "https://a.com:443"],
        &[],
    );
    assert_matches(
        "http://a.com:80",
        &["http://a.com", "http://a.com:80"],
        &["http://a.com:443"],
    );
    // A port that is the *other* scheme's default is not elided.
    assert_eq!(pattern("https://a.com:80").to_string(), "https://a.com:80");
    assert_eq!(pattern("http://a.com:443").to_string(), "http://a.com:443");
    assert_matches(
        "https://*.a.com",
        &["https://x.a.com:443"],
        &["https://x.a.com:80"],
    );
}

#[test]
fn scheme_and_host_are_case_insensitive() {
    let p = pattern("HTTPS://App.Example.COM");
    assert_eq!(p.to_string(), "https://app.example.com");
    assert_eq!(p, pattern("https://app.example.com"));
    assert_eq!(
        pattern("Https://*.EXAMPLE.com").to_string(),
        "https://*.example.com"
    );
    assert_matches(
        "https://*.example.com",
        &[
            "https://APP.example.com",
            "HTTPS://app.Example.COM",
            "https://app.example.com",
        ],
        &["HTTP://APP.EXAMPLE.COM"],
    );
    // The echoed value is the header as sent, not the canonical form.
    assert_eq!(
        request("HTTPS://App.Example.com:443").as_str(),
        "HTTPS://App.Example.com:443"
    );
}

#[test]
fn idn_hosts_are_compared_in_punycode() {
    let p = pattern("https://bücher.example");
    assert_eq!(p.to_string(), "https://xn--bcher-kva.example");
    assert_eq!(p, pattern("https://xn--bcher-kva.example"));
    assert_eq!(p, pattern("https://BÜCHER.example"));
    assert_matches(
        "https://bücher.example",
        &[
            "https://xn--bcher-kva.example",
            "https://bücher.example",
            "https://BÜCHER.EXAMPLE",
        ],
        &["https://bucher.example"],
    );
    assert_eq!(
        pattern("https://*.bücher.de").to_string(),
        "https://*.xn--bcher-kva.de"
    );
    assert_matches(
        "https://*.bücher.de",
        &["https://shop.xn--bcher-kva.de", "https://shop.bücher.de"],
        &[],
    );
    assert_matches(
        "https://*.example.com",
        &["https://xn--bcher-kva.example.com"],
        &[],
    );
    assert_eq!(
        request("https://bücher.example").as_str(),
        "https://bücher.example"
    );
}

#[test]
fn null_and_junk_request_origins_are_refused() {
    assert_eq!(RequestOrigin::parse(b"null"), Err(OriginError::Null));
    assert_eq!(RequestOrigin::parse(b""), Err(OriginError::Empty));
    assert_eq!(RequestOrigin::parse(b"*"), Err(OriginError::BareWildcard));
    assert_eq!(
        RequestOrigin::parse(b"example.com"),
        Err(OriginError::MissingScheme)
    );
    assert_eq!(
        RequestOrigin::parse(b"file://"),
        Err(OriginError::UnsupportedScheme)
    );
    assert_eq!(
        RequestOrigin::parse(b"https://"),
        Err(OriginError::EmptyHost)
    );
    assert_eq!(
        RequestOrigin::parse(b"https://\xff.com"),
        Err(OriginError::NotUtf8)
    );
    assert_eq!(
        RequestOrigin::parse(b"https://a.com\r\n"),
        Err(OriginError::Whitespace)
    );
    assert_eq!(
        RequestOrigin::parse(b"https://*.a.com"),
        Err(OriginError::WildcardInRequest)
    );
    assert_eq!(
        RequestOrigin::parse(b"https://a.com."),
        Err(OriginError::EmptyLabel)
    );
    assert_eq!(
        RequestOrigin::parse(b"https://a..com"),
        Err(OriginError::EmptyLabel)
    );
    assert!(matches!(
        RequestOrigin::parse(b"https://a<b.com"),
        Err(OriginError::InvalidHost(_))
    ));
}

#[test]
fn multiple_wildcards_each_match_one_label() {
    assert_eq!(
        pattern("https://*.*.example.com").to_string(),
        "https://*.*.example.com"
    );
    assert_matches(
        "https://*.*.example.com",
        &["https://a.b.example.com", "https://www.eu.example.com"],
        &[
            "https://b.example.com",
            "https://x.a.b.example.com",
            "https://example.com",
        ],
    );
    assert_matches(
        "https://*.app.*.example.com",
        &["https://eu.app.prod.example.com"],
        &[
            "https://app.prod.example.com",
            "https://eu.web.prod.example.com",
        ],
    );
}

#[test]
fn a_wildcard_above_the_tld_only_is_allowed() {
    assert_matches(
        "https://*.com",
        &["https://example.com"],
        &["https://a.example.com", "https://example.org"],
    );
}

#[test]
fn ipv6_hosts_work_without_wildcards() {
    let p = pattern("http://[::1]:8080");
    assert_eq!(p.to_string(), "http://[::1]:8080");
    assert_eq!(p, pattern("http://[0:0:0:0:0:0:0:1]:8080"));
    assert_eq!(
        pattern("https://[2001:DB8::1]").to_string(),
        "https://[2001:db8::1]"
    );
    assert_matches(
        "http://[::1]:8080",
        &["http://[::1]:8080", "http://[0::1]:8080"],
        &[
            "http://[::1]:8081",
            "http://[::1]",
            "https://[::1]:8080",
            "http://[::2]:8080",
        ],
    );
    assert_eq!(request("http://[::1]:8080").as_str(), "http://[::1]:8080");
    assert_invalid("http://[*::1]", OriginError::WildcardInIp);
    assert_invalid("http://[::1]:*", OriginError::WildcardInPort);
    assert!(matches!(
        OriginPattern::parse("http://[::1"),
        Err(OriginError::InvalidHost(_))
    ));
    assert!(matches!(
        OriginPattern::parse("http://[::1]x"),
        Err(OriginError::InvalidHost(_))
    ));
    assert!(matches!(
        OriginPattern::parse("http://[::g]"),
        Err(OriginError::InvalidHost(_))
    ));
    assert!(matches!(
        OriginPattern::parse("http://::1"),
        Err(OriginError::InvalidHost(_))
    ));
}

#[test]
fn ipv4_hosts_are_canonicalized() {
    assert_eq!(
        pattern("http://127.0.0.1:8080").to_string(),
        "http://127.0.0.1:8080"
    );
    assert_eq!(pattern("http://127.1").to_string(), "http://127.0.0.1");
    assert_matches(
        "http://127.0.0.1:8080",
        &[
            "http://127.0.0.1:8080",
            "http://127.1:8080",
            "http://0x7f.0.0.1:8080",
        ],
        &["http://127.0.0.2:8080", "http://127.0.0.1"],
    );
    assert_invalid("http://*.0.0.1", OriginError::WildcardInIp);
    assert!(matches!(
        OriginPattern::parse("http://256.0.0.1"),
        Err(OriginError::InvalidHost(_))
    ));
    assert!(matches!(
        OriginPattern::parse("http://1.2.3.4.5"),
        Err(OriginError::InvalidHost(_))
    ));
}

/// Everything the fast path accepts, the full parser must read the same way.
#[test]
fn fast_path_agrees_with_the_full_parser() {
    for s in [
        "https://app.example.com",
        "http://localhost:3000",
        "https://a.com:443",
        "http://a.com:80",
        "https://a-b.c-d.example:8443",
        "http://127.0.0.1:8080",
        "http://0.0.0.0",
        "https://1password.com",
        "https://xn--bcher-kva.example",
    ] {
        let (scheme, range, port) = match fast_path(s) {
            Some(parts) => parts,
            None => panic!("{s} should take the fast path"),
        };
        let parts = match split(s, Side::Request) {
            Ok(parts) => parts,
            Err(e) => panic!("{s}: {e}"),
        };
        let slow_host = canonical_host(parts.host, Side::Request);
        assert_eq!((scheme, port), (parts.scheme, parts.port), "{s}");
        assert_eq!(slow_host, Ok(PatternHost::Exact(s[range].into())), "{s}");
    }
    for s in [
        "HTTPS://a.com",
        "https://A.com",
        "https://bücher.de",
        "http://[::1]",
        "http://127.1",
        "http://010.0.0.1",
        "https://a.com.",
        "https://a_b.com",
        "null",
    ] {
        assert_eq!(fast_path(s), None, "{s} should take the slow path");
    }
}

#[test]
fn request_origin_keeps_the_header_exactly() {
    for s in [
        "https://app.example.com",
        "https://app.example.com:443",
        "http://localhost:3000",
        "HTTPS://APP.example.com",
    ] {
        assert_eq!(request(s).as_str(), s);
    }
}
