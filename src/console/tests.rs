//! The console's embedded files: all of them, nothing from another host, served with ETag.

use hyper::header::HeaderValue;
use hyper::HeaderMap;

use super::assets::{Assets, FILES};

/// SVG's XML namespace: an identifier `createElementNS` needs, never fetched.
const SVG_NAMESPACE: &str = "http://www.w3.org/2000/svg";

/// Every place in `text` that names another host: `http://` or `https://` (except the SVG
/// namespace), or a scheme-relative `//host` right after a quote, `(`, `=` or backtick (a JS
/// comment's `//` follows a space or a line start, so it is not one).
fn external_urls(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for scheme in ["http://", "https://"] {
        for (at, _) in text.match_indices(scheme) {
            if !text[at..].starts_with(SVG_NAMESPACE) {
                found.push(text[at..].chars().take(60).collect());
            }
        }
    }
    for (at, _) in text.match_indices("//") {
        let before = text[..at].chars().next_back();
        let after = text[at + 2..].chars().next();
        if matches!(before, Some('"' | '\'' | '(' | '=' | '`'))
            && after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '[' || c == '$')
        {
            found.push(text[at..].chars().take(60).collect());
        }
    }
    found
}

#[test]
fn the_scanner_finds_external_urls() {
    for bad in [
        r#"<script src="https://cdn.example/x.js"></script>"#,
        "@import url(//fonts.example/css);",
        "fetch('http://127.0.0.2:9464/api')",
        "const u = `//${host}/x`;",
        r#"<link href="//cdn.example/a.css">"#,
    ] {
        assert!(!external_urls(bad).is_empty(), "missed: {bad}");
    }
    for good in [
        "// a comment\nconst x = 1; // another",
        "document.createElementNS('http://www.w3.org/2000/svg', 'svg')",
        r#"<script type="module" src="/console/app.js"></script>"#,
    ] {
        assert_eq!(external_urls(good), Vec::<String>::new(), "{good}");
    }
}

#[test]
fn no_embedded_file_references_another_host() {
    for f in FILES {
        let text = std::str::from_utf8(f.body).unwrap_or_else(|_| panic!("{} is UTF-8", f.path));
        let found = external_urls(text);
        assert!(found.is_empty(), "{} references {found:?}", f.path);
    }
}

/// No build step: the directory is what is embedded. Every file there is listed (served), and
/// every listed file exists (`include_bytes!` would not compile otherwise).
#[test]
fn every_file_in_the_assets_directory_is_embedded() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/console/assets");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .expect("assets dir")
        .map(|e| {
            format!(
                "/console/{}",
                e.expect("entry").file_name().to_string_lossy()
            )
        })
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = FILES.iter().map(|f| f.path.to_owned()).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
}

/// Inline scripts and styles would need `'unsafe-inline'`; the CSP has none.
#[test]
fn the_page_has_no_inline_script_or_style() {
    for f in FILES.iter().filter(|f| f.path.ends_with(".html")) {
        let text = std::str::from_utf8(f.body).unwrap_or_default();
        assert!(!text.contains("<style"), "{}", f.path);
        assert!(!text.contains("style="), "{}", f.path);
        assert!(!text.contains(" on"), "{}: an inline handler", f.path);
        for (at, _) in text.match_indices("<script") {
            let tag = &text[at..at + text[at..].find('>').unwrap_or(0)];
            assert!(tag.contains(" src="), "{}: inline script {tag}", f.path);
        }
    }
    for f in FILES.iter().filter(|f| f.path.ends_with(".js")) {
        let text = std::str::from_utf8(f.body).unwrap_or_default();
        assert!(
            !text.contains("innerHTML"),
            "{}: builds DOM nodes instead",
            f.path
        );
        assert!(!text.contains("setAttribute('style'"), "{}", f.path);
    }
}

#[test]
fn files_are_served_with_etag_and_revalidated() {
    let assets = Assets::default();
    let page = assets.respond("/", &HeaderMap::new()).expect("the page");
    assert_eq!(page.status(), 200);
    let h = page.headers();
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    assert_eq!(h["cache-control"], "no-cache");
    assert!(h["content-security-policy"]
        .to_str()
        .unwrap_or_default()
        .starts_with("default-src 'self'"));
    let etag = h["etag"].clone();
    assert_eq!(etag.len(), 18, "{etag:?}");

    let mut again = HeaderMap::new();
    again.insert("if-none-match", etag.clone());
    let r = assets.respond("/console/index.html", &again).expect("page");
    assert_eq!(r.status(), 304);
    assert_eq!(r.headers()["etag"], etag);

    let mut stale = HeaderMap::new();
    stale.insert("if-none-match", HeaderValue::from_static("\"0000\""));
    assert_eq!(
        assets.respond("/", &stale).map(|r| r.status().as_u16()),
        Some(200)
    );
    let css = assets.respond("/console/console.css", &again).expect("css");
    assert_eq!(css.status(), 200, "another file's ETag does not match");
    assert!(assets
        .respond("/console/nope.js", &HeaderMap::new())
        .is_none());
    assert!(assets
        .respond("/console/../Cargo.toml", &HeaderMap::new())
        .is_none());
}
