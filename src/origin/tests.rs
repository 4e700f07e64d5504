//! Unit tests for `origin`: the pattern grammar (every SPEC §4 valid and invalid example, ports,
//! paths, whitespace, wildcard placement), serde and error reporting. Matching is in
//! `tests/matching.rs`.

use super::*;

mod app;
mod matching;

fn pattern(s: &str) -> OriginPattern {
    match OriginPattern::parse(s) {
        Ok(p) => p,
        Err(e) => panic!("pattern {s:?} should parse, got: {e}"),
    }
}

fn request(s: &str) -> RequestOrigin {
    match RequestOrigin::parse(s.as_bytes()) {
        Ok(o) => o,
        Err(e) => panic!("request origin {s:?} should parse, got: {e}"),
    }
}

fn assert_matches(p: &str, yes: &[&str], no: &[&str]) {
    let pat = pattern(p);
    for o in yes {
        assert!(pat.matches(&request(o)), "{p} should match {o}");
    }
    for o in no {
        assert!(!pat.matches(&request(o)), "{p} should not match {o}");
    }
}

fn assert_invalid(s: &str, expected: OriginError) {
    assert_eq!(OriginPattern::parse(s), Err(expected), "pattern {s:?}");
}

#[test]
fn spec_valid_examples_parse_to_their_canonical_form() {
    for s in [
        "https://app.example.com",
        "https://www.example.com",
        "http://localhost:3000",
        "https://*.example.com",
        "https://*.apps.example.com",
        "https://app.*.example.com",
    ] {
        assert_eq!(pattern(s).to_string(), s);
    }
}

#[test]
fn spec_invalid_examples_are_refused_with_their_reason() {
    assert_invalid("example.com", OriginError::MissingScheme);
    assert_invalid("app.example.com", OriginError::MissingScheme);
    assert_invalid("https://example.*", OriginError::WildcardTld);
    assert_invalid("https://a*.x.com", OriginError::PartialWildcard);
    assert_invalid("*://example.com", OriginError::WildcardInScheme);
    assert_invalid("http*://example.com", OriginError::WildcardInScheme);
    assert_invalid("https://example.com:*", OriginError::WildcardInPort);
    assert_invalid("https://example.com:44*", OriginError::WildcardInPort);
    assert_invalid("null", OriginError::Null);
    assert_invalid("NULL", OriginError::Null);
    assert_invalid("*", OriginError::BareWildcard);
    assert_invalid("", OriginError::Empty);
}

#[test]
fn ports_must_be_1_to_65535() {
    assert_eq!(pattern("http://a.com:1").to_string(), "http://a.com:1");
    assert_eq!(
        pattern("http://a.com:65535").to_string(),
        "http://a.com:65535"
    );
    assert_eq!(
        pattern("http://a.com:03000").to_string(),
        "http://a.com:3000"
    );
    for bad in [
        "0", "65536", "99999", "", "abc", "-1", "+80", "1e3", "000443", "80:80",
    ] {
        assert_invalid(&format!("http://a.com:{bad}"), OriginError::InvalidPort);
        assert_eq!(
            RequestOrigin::parse(format!("http://a.com:{bad}").as_bytes()),
            Err(OriginError::InvalidPort),
            "port {bad:?}"
        );
    }
}

#[test]
fn a_lone_trailing_slash_is_dropped_from_patterns_only() {
    assert_eq!(pattern("https://a.com/"), pattern("https://a.com"));
    assert_eq!(pattern("https://*.a.com/").to_string(), "https://*.a.com");
    assert_eq!(
        pattern("http://localhost:3000/").to_string(),
        "http://localhost:3000"
    );
    assert_eq!(
        RequestOrigin::parse(b"https://a.com/"),
        Err(OriginError::Path)
    );
}

#[test]
fn path_query_fragment_and_userinfo_are_refused() {
    for (s, e) in [
        ("https://a.com//", OriginError::Path),
        ("https://a.com/app", OriginError::Path),
        ("https://a.com/app/", OriginError::Path),
        ("https://a.com:8080/x", OriginError::Path),
        ("https://a.com/app?x=1", OriginError::Path),
        ("https://a.com?x=1", OriginError::Query),
        ("https://a.com?", OriginError::Query),
        ("https://a.com#top", OriginError::Fragment),
        ("https://user@a.com", OriginError::Userinfo),
        ("https://user:secret@a.com", OriginError::Userinfo),
        ("https://@a.com", OriginError::Userinfo),
    ] {
        assert_invalid(s, e);
        assert_eq!(RequestOrigin::parse(s.as_bytes()), Err(e), "request {s:?}");
    }
    // A pattern may end in `/`, so what follows it is reported; a request may not.
    assert_invalid("https://a.com/?x=1", OriginError::Query);
    assert_invalid("https://a.com/#top", OriginError::Fragment);
    assert_eq!(
        RequestOrigin::parse(b"https://a.com/?x=1"),
        Err(OriginError::Path)
    );
    assert_eq!(
        RequestOrigin::parse(b"https://a.com/#top"),
        Err(OriginError::Path)
    );
}

#[test]
fn schemes_other_than_http_and_https_are_refused() {
    for s in [
        "ftp://a.com",
        "ws://a.com",
        "wss://a.com",
        "file://a.com",
        "chrome-extension://abc",
    ] {
        assert_invalid(s, OriginError::UnsupportedScheme);
    }
    for s in [
        "://a.com",
        "https:/a.com",
        "https:a.com",
        "//a.com",
        "localhost:3000",
        "a.com:443",
    ] {
        assert_invalid(s, OriginError::MissingScheme);
    }
}

#[test]
fn whitespace_is_refused_not_trimmed() {
    for s in [
        " https://a.com",
        "https://a.com ",
        "https://a.com\n",
        "\thttps://a.com",
        "https://a .com",
        "https://a.com\u{a0}",
    ] {
        assert_invalid(s, OriginError::Whitespace);
    }
}

#[test]
fn hosts_must_be_well_formed() {
    assert_invalid("https://", OriginError::EmptyHost);
    assert_invalid("https://:443", OriginError::EmptyHost);
    assert_invalid("https://a..com", OriginError::EmptyLabel);
    assert_invalid("https://.a.com", OriginError::EmptyLabel);
    assert_invalid("https://a.com.", OriginError::EmptyLabel);
    assert_invalid("https://*..com", OriginError::EmptyLabel);
    for s in [
        "https://ex%61mple.com",
        "https://a!b.com",
        "https://a,b.com",
        "https://a\\b.com",
        "https://a^b.com",
    ] {
        assert!(
            matches!(OriginPattern::parse(s), Err(OriginError::InvalidHost(_))),
            "{s}"
        );
    }
    assert_eq!(
        pattern("https://my_app.example.com").to_string(),
        "https://my_app.example.com"
    );
    assert_eq!(
        pattern("https://a-b.example.com").to_string(),
        "https://a-b.example.com"
    );
    let label63 = "a".repeat(63);
    assert_eq!(
        pattern(&format!("https://{label63}.com")).to_string(),
        format!("https://{label63}.com")
    );
    assert!(matches!(
        OriginPattern::parse(&format!("https://a{label63}.com")),
        Err(OriginError::InvalidHost(_))
    ));
    let long = format!("https://{}com", format!("{label63}.").repeat(4));
    assert!(matches!(
        OriginPattern::parse(&long),
        Err(OriginError::InvalidHost(_))
    ));
    assert!(matches!(
        OriginPattern::parse("https://xn--a.com"),
        Err(OriginError::InvalidHost(_))
    ));
}

#[test]
fn request_origins_are_held_to_the_same_host_limits_and_a_length_bound() {
    let label63 = "a".repeat(63);
    assert_eq!(
        request(&format!("https://{label63}.com")).as_str(),
        format!("https://{label63}.com")
    );
    // Issue 17: the fast path took any label length, so a 10 KB single label was echoed.
    for long in [
        format!("http://a{label63}"),
        format!("https://a{label63}.com:8443"),
        format!("http://{}", "a".repeat(10_000)),
        format!("https://{}com", format!("{label63}.").repeat(4)),
    ] {
        assert!(RequestOrigin::parse(long.as_bytes()).is_err(), "{long}");
    }
    let over = format!("https://{}", "A".repeat(MAX_REQUEST_ORIGIN_LEN));
    assert!(RequestOrigin::parse(over.as_bytes()).is_err());
}

#[test]
fn wildcards_must_be_whole_labels_and_not_the_tld() {
    assert_invalid("https://*", OriginError::WildcardTld);
    assert_invalid("https://*.*", OriginError::WildcardTld);
    assert_invalid("https://example.com.*", OriginError::WildcardTld);
    assert_invalid("https://*a.example.com", OriginError::PartialWildcard);
    assert_invalid("https://app.ex*ample.com", OriginError::PartialWildcard);
    assert_invalid("https://**.example.com", OriginError::PartialWildcard);
    assert_invalid("https://*.example.c*m", OriginError::PartialWildcard);
}

#[test]
fn serde_round_trips_the_canonical_form() -> Result<(), serde_json::Error> {
    let p: OriginPattern = serde_json::from_str(r#""HTTPS://*.Example.com:443/""#)?;
    assert_eq!(serde_json::to_string(&p)?, r#""https://*.example.com""#);
    let list: OriginList = serde_json::from_str(
        r#"["https://*.example.com","http://localhost:3000","http://[::1]:8080"]"#,
    )?;
    assert_eq!(list.patterns().len(), 3);
    let json = serde_json::to_string(&list)?;
    assert_eq!(
        json,
        r#"["https://*.example.com","http://localhost:3000","http://[::1]:8080"]"#
    );
    assert_eq!(serde_json::from_str::<OriginList>(&json)?, list);
    let err = match serde_json::from_str::<OriginList>(r#"["https://ok.com","example.com"]"#) {
        Ok(l) => panic!("should be refused, got {l:?}"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("example.com") && err.contains("missing scheme"),
        "{err}"
    );
    assert!(serde_json::from_str::<OriginPattern>("42").is_err());
    Ok(())
}

#[test]
fn parse_all_reports_every_bad_entry_in_order() {
    let entries = [
        "https://ok.example.com",
        "example.com",
        "https://*.example.com",
        "https://a*.x.com",
        "null",
    ];
    assert_eq!(
        OriginList::parse_all(&entries),
        Err(vec![
            ("example.com".to_owned(), OriginError::MissingScheme),
            ("https://a*.x.com".to_owned(), OriginError::PartialWildcard),
            ("null".to_owned(), OriginError::Null),
        ])
    );
    let owned: Vec<String> = vec![
        "https://*.example.com".into(),
        "http://localhost:3000/".into(),
    ];
    let list = match OriginList::parse_all(&owned) {
        Ok(list) => list,
        Err(e) => panic!("{e:?}"),
    };
    assert_eq!(
        list.patterns(),
        [
            pattern("https://*.example.com"),
            pattern("http://localhost:3000")
        ]
    );
    assert!(!list.is_empty());
    assert!(list.allows(&request("https://app.example.com")));
    assert!(list.allows(&request("http://localhost:3000")));
    assert!(!list.allows(&request("https://example.com")));
    let empty = OriginList::parse_all::<&str>(&[]);
    assert_eq!(empty, Ok(OriginList::default()));
    assert!(OriginList::default().is_empty());
    assert!(!OriginList::default().allows(&request("https://app.example.com")));
}

#[test]
fn error_messages_are_human() {
    assert_eq!(
        OriginError::MissingScheme.to_string(),
        "missing scheme (expected http:// or https://)"
    );
    assert_eq!(
        OriginError::WildcardTld.to_string(),
        "the last label (TLD) must not be a wildcard"
    );
    assert_eq!(
        OriginError::PartialWildcard.to_string(),
        "'*' must be a whole DNS label"
    );
    assert_eq!(OriginError::Path.to_string(), "paths are not allowed");
    assert_eq!(
        OriginError::Null.to_string(),
        "the origin 'null' is not allowed"
    );
    assert_eq!(
        OriginError::InvalidHost("invalid IPv6 address").to_string(),
        "invalid host: invalid IPv6 address"
    );
    assert_eq!(
        "https://a.com".parse::<OriginPattern>(),
        Ok(pattern("https://a.com"))
    );
}

#[test]
fn idn_mapping_cannot_smuggle_a_wildcard() {
    // UTS #46 maps the full-width asterisk to `*`; the wildcard rules apply after mapping.
    assert_eq!(
        OriginPattern::parse("https://\u{ff0a}.example.com"),
        Ok(pattern("https://*.example.com"))
    );
    assert_invalid(
        "https://a\u{ff0a}.example.com",
        OriginError::PartialWildcard,
    );
    assert_invalid("https://example.\u{ff0a}", OriginError::WildcardTld);
    assert_eq!(
        RequestOrigin::parse("https://\u{ff0a}.example.com".as_bytes()),
        Err(OriginError::WildcardInRequest)
    );
}
