//! Origin patterns (`OriginPattern::parse`, `OriginList::parse_all`) and request origins
//! (`RequestOrigin::parse`, `OriginList::allows`).
//!
//! Input: lines. Every line is parsed as an operator pattern and the last line, as raw bytes,
//! is also parsed as a browser's `Origin` header. Checked beyond "no panic":
//! - a parsed pattern prints to a string that parses to the same pattern, and printing is
//!   idempotent (what the admin API stores is what it parsed);
//! - a request origin keeps the header exactly (`as_str`, echoed in CORS headers);
//! - a header that is also a valid non-wildcard pattern is allowed by that pattern, before
//!   and after the pattern's round trip (the operator's entry `X` lets the browser's `X` in);
//! - `parse_all` keeps every good line in order or names exactly the bad ones;
//! - `allows` is "any entry matches", and `allows_only_by_wildcard` implies `allows`.

use ingest_edge::origin::{OriginList, OriginPattern, RequestOrigin};

pub fn check(data: &[u8]) {
    let lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    let texts: Vec<&str> = lines
        .iter()
        .filter_map(|l| std::str::from_utf8(l).ok())
        .collect();
    let mut patterns = Vec::new();
    for text in &texts {
        if let Ok(pattern) = OriginPattern::parse(text) {
            round_trips(&pattern);
            patterns.push(pattern);
        }
    }
    match OriginList::parse_all(&texts) {
        Ok(list) => assert_eq!(
            list.patterns(),
            &patterns[..],
            "parse_all kept other entries"
        ),
        Err(bad) => {
            assert_eq!(
                bad.len() + patterns.len(),
                texts.len(),
                "bad entries miscounted"
            );
            for (entry, _) in &bad {
                assert!(
                    OriginPattern::parse(entry).is_err(),
                    "good entry {entry:?} refused"
                );
            }
        }
    }
    let Some(last) = lines.last() else { return };
    let Ok(origin) = RequestOrigin::parse(last) else {
        return;
    };
    assert_eq!(
        origin.as_str().as_bytes(),
        *last,
        "the echoed origin is not the header"
    );
    if let Ok(text) = std::str::from_utf8(last) {
        if let Ok(own) = OriginPattern::parse(text) {
            if !own.is_wildcard() {
                assert!(
                    own.matches(&origin),
                    "pattern {text:?} refuses the same origin"
                );
                let again = OriginPattern::parse(&own.to_string()).unwrap_or_else(|e| {
                    panic!("printed pattern {own} does not parse: {e}");
                });
                assert!(
                    again.matches(&origin),
                    "printed {own} refuses origin {text:?}"
                );
            }
        }
    }
    let list = OriginList::parse_all(&texts).unwrap_or_else(|_| {
        OriginList::parse_all(&patterns.iter().map(|p| p.to_string()).collect::<Vec<_>>())
            .unwrap_or_else(|e| panic!("printed patterns do not parse: {e:?}"))
    });
    let any = list.patterns().iter().any(|p| p.matches(&origin));
    assert_eq!(list.allows(&origin), any, "allows is not any-match");
    if list.allows_only_by_wildcard(&origin) {
        assert!(any, "allowed only by wildcard but no entry matches");
        assert!(
            list.patterns()
                .iter()
                .filter(|p| p.matches(&origin))
                .all(|p| p.is_wildcard()),
            "an exact entry matches too"
        );
    }
}

/// Printing then parsing gives the same pattern, and printing that gives the same text.
fn round_trips(pattern: &OriginPattern) {
    let printed = pattern.to_string();
    let again = OriginPattern::parse(&printed)
        .unwrap_or_else(|e| panic!("printed pattern {printed:?} does not parse: {e}"));
    assert_eq!(&again, pattern, "{printed:?} parses to another pattern");
    assert_eq!(again.to_string(), printed, "printing is not idempotent");
}
