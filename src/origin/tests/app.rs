//! App identities (SPEC §14): the README's valid and invalid tables, row by row (parsed from
//! README.md so the documentation cannot drift), plus the edges the tables leave out.

use super::super::{AppIdentity, AppPattern, OriginError, OriginList};

const README: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"));

/// The rows of the table that follows `<!-- table: NAME ...-->` in the README, each as its
/// cells, header and separator skipped.
fn table(name: &str) -> Vec<Vec<String>> {
    let marker = format!("<!-- table: {name} ");
    let start = README
        .find(&marker)
        .unwrap_or_else(|| panic!("README has no table {name}"));
    let rows: Vec<Vec<String>> = README[start..]
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect();
    assert!(rows.len() >= 5, "table {name} has {} rows", rows.len());
    rows
}

/// `` `a`, `b` `` -> ["a", "b"].
fn codes(cell: &str) -> Vec<&str> {
    cell.split(", ")
        .map(|c| c.trim().trim_matches('`'))
        .filter(|c| !c.is_empty())
        .collect()
}

fn allows(pattern: &AppPattern, request: &str) -> bool {
    AppIdentity::parse(request.as_bytes()).is_ok_and(|app| pattern.matches(&app))
}

#[test]
fn readme_valid_table_row_by_row() {
    for row in table("app-identities-valid") {
        let [pattern, yes, no] = &row[..] else {
            panic!("row {row:?} should have 3 cells");
        };
        let pattern = pattern.trim_matches('`');
        let p = AppPattern::parse(pattern)
            .unwrap_or_else(|e| panic!("README pattern {pattern} should parse: {e}"));
        for r in codes(yes) {
            assert!(allows(&p, r), "{pattern} should match {r}");
            // A match through the list, as the request path does it.
            let list = OriginList::parse_app_all(&[pattern]).unwrap();
            assert!(list.allows_app(&AppIdentity::parse(r.as_bytes()).unwrap()));
        }
        for r in codes(no) {
            assert!(!allows(&p, r), "{pattern} should not match {r}");
        }
    }
}

#[test]
fn readme_invalid_table_row_by_row() {
    for row in table("app-identities-invalid") {
        let [client, entry, reason] = &row[..] else {
            panic!("row {row:?} should have 3 cells");
        };
        let entry = entry
            .strip_prefix('`')
            .and_then(|e| e.strip_suffix('`'))
            .unwrap();
        let bad = match client.as_str() {
            "mobile" => OriginList::parse_app_all(&["android://com.ok.app", entry]),
            "web" => OriginList::parse_all(&["https://ok.example.com", entry]),
            other => panic!("client_type {other}"),
        }
        .expect_err(entry);
        assert_eq!(bad.len(), 1, "{entry}: {bad:?}");
        assert_eq!(bad[0].0, entry);
        assert_eq!(bad[0].1.to_string(), *reason, "reason for {entry}");
    }
}

#[test]
fn request_side_refuses_wildcards_and_trailing_slash() {
    let refused = |s: &str| AppIdentity::parse(s.as_bytes()).unwrap_err();
    assert_eq!(
        refused("android://com.example.*"),
        OriginError::WildcardInRequest
    );
    assert_eq!(
        refused("android://com.ex*.shop"),
        OriginError::WildcardInRequest
    );
    assert_eq!(refused("android://com.example.shop/"), OriginError::Path);
    assert_eq!(
        refused("https://shop.example.com"),
        OriginError::WebOriginOnMobileToken
    );
    assert_eq!(refused(""), OriginError::Empty);
    assert_eq!(
        AppIdentity::parse(&[b'a', 0xff]).unwrap_err(),
        OriginError::NotUtf8
    );
    let long = format!("android://com.{}", "a".repeat(260));
    assert_eq!(refused(&long), OriginError::AppIdTooLong);
}

#[test]
fn lists_are_web_or_app_never_both() {
    let app = OriginList::parse_app_all(&["ios://com.example.shop"]).unwrap();
    let web = OriginList::parse_all(&["https://app.example.com"]).unwrap();
    let id = AppIdentity::parse(b"ios://com.example.shop").unwrap();
    let browser = crate::origin::RequestOrigin::parse(b"https://app.example.com").unwrap();
    assert!(app.allows_app(&id) && !app.allows(&browser));
    assert!(web.allows(&browser) && !web.allows_app(&id));
    assert!(app.is_app() && !web.is_app());
}

#[test]
fn app_lists_round_trip_through_serde() -> Result<(), serde_json::Error> {
    let list: OriginList =
        serde_json::from_str(r#"["android://com.example.*","IOS://Com.Example.Shop/"]"#)?;
    assert!(list.is_app());
    let json = serde_json::to_string(&list)?;
    assert_eq!(
        json,
        r#"["android://com.example.*","ios://com.example.shop"]"#
    );
    assert_eq!(serde_json::from_str::<OriginList>(&json)?, list);
    let err = serde_json::from_str::<OriginList>(r#"["android://com.ok.app","https://a.com"]"#)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("https://a.com") && err.contains("not web origins"),
        "{err}"
    );
    Ok(())
}
