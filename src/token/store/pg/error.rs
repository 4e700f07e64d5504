//! The store's errors as the edge reports them: outages apart from database errors, the cause
//! spelled out, and the URL without its password.

use crate::token::store::StoreError;

/// The URL without its password (in the user part or a `password=` parameter), for logs.
pub fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            if u.query_pairs().any(|(k, _)| k == "password") {
                let pairs: Vec<(String, String)> = u
                    .query_pairs()
                    .map(|(k, v)| {
                        let v = if k == "password" {
                            "***".into()
                        } else {
                            v.into_owned()
                        };
                        (k.into_owned(), v)
                    })
                    .collect();
                u.query_pairs_mut().clear().extend_pairs(pairs);
            }
            u.to_string()
        }
        Err(_) => "<unparsable store.url>".to_owned(),
    }
}

/// The error and its causes: tokio-postgres's own text is only the kind ("db error", "error
/// performing TLS handshake"); the server's message or the certificate problem is the cause.
pub fn detail(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text = format!("{text}: {c}");
        cause = c.source();
    }
    text
}

/// Connection-level failures are outages (503 and retry); the rest are database errors.
pub(super) fn classify(e: postgres::Error) -> StoreError {
    match e.code() {
        Some(code) if !code.code().starts_with("08") && !code.code().starts_with("57P") => {
            StoreError::Database(detail(&e))
        }
        _ => StoreError::Unavailable(detail(&e)),
    }
}

pub(super) fn corrupt(e: serde_json::Error) -> StoreError {
    StoreError::Corrupt {
        path: "postgres".into(),
        source: e,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn no_password_in_the_logged_url() {
        for url in [
            "postgres://u:pw-one@h/db?sslmode=require",
            "postgres://u@h/db?password=pw-one&sslmode=require",
        ] {
            let shown = super::redacted(url);
            assert!(
                !shown.contains("pw-one") && shown.contains("***"),
                "{shown}"
            );
            assert!(shown.contains("sslmode=require"), "{shown}");
        }
    }
}
