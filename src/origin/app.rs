//! App identities of mobile client tokens (SPEC §14): `android://<application id>` and
//! `ios://<bundle id>`. [`AppPattern`] is one operator entry, parsed once when a token is
//! created or changed; [`AppIdentity`] is a request's `X-Client-Origin` header, borrowed from
//! the header without allocating.
//!
//! Rules (the README tables are tested against them row by row):
//! - Reverse-DNS: at least two dot-separated labels, no empty label, nothing after the id but
//!   (in an operator entry) one trailing `/`, which is dropped as for web origins.
//! - Android labels are `[A-Za-z][A-Za-z0-9_]*` and compared case-sensitively (an application
//!   id is a Java package name); iOS labels are `[A-Za-z0-9-]+` and compared case-insensitively
//!   (bundle ids are), so iOS patterns are kept lowercase.
//! - A `*` is exactly one whole label and never the first one: `android://com.example.*`
//!   matches `com.example.shop`, not `com.example` nor `com.example.shop.debug`.
//! - The scheme is case-insensitive; at most 255 characters after it (a bound, not a platform
//!   rule: real ids are far shorter).

use std::fmt;

use super::OriginError;

/// Longest id accepted after the scheme.
const MAX_ID_LEN: usize = 255;

/// Which platform an app identity names; the two differ in label syntax and case rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Platform {
    Android,
    Ios,
}

impl Platform {
    fn scheme(self) -> &'static str {
        match self {
            Platform::Android => "android",
            Platform::Ios => "ios",
        }
    }

    fn label_ok(self, label: &str) -> bool {
        let mut bytes = label.bytes();
        match self {
            Platform::Android => {
                bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
                    && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
            }
            Platform::Ios => {
                !label.is_empty() && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'-')
            }
        }
    }

    fn label_error(self) -> OriginError {
        match self {
            Platform::Android => OriginError::AndroidLabel,
            Platform::Ios => OriginError::IosLabel,
        }
    }

    fn same_label(self, ours: &str, theirs: &str) -> bool {
        match self {
            Platform::Android => ours == theirs,
            Platform::Ios => ours.eq_ignore_ascii_case(theirs),
        }
    }
}

/// Whether `entry` names an app identity (so a web token can refuse it with the right reason).
pub(super) fn is_app_scheme(scheme: &str) -> bool {
    scheme.eq_ignore_ascii_case("android") || scheme.eq_ignore_ascii_case("ios")
}

/// A parsed allowed app identity of a mobile token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppPattern {
    /// Must equal the request's platform (an Android id never matches an iOS request).
    platform: Platform,
    /// The id, lowercased for iOS; `*` labels kept as written.
    id: Box<str>,
    /// Whether a label is `*`; without one, matching is one string comparison.
    wildcard: bool,
}

impl AppPattern {
    /// Parses and canonicalizes one operator entry; the error says what is wrong with it.
    pub fn parse(s: &str) -> Result<AppPattern, OriginError> {
        let (platform, id) = split(s, true)?;
        let wildcard = id.split('.').any(|l| l == "*");
        let id = match platform {
            Platform::Android => id.into(),
            Platform::Ios => id.to_ascii_lowercase().into(),
        };
        Ok(AppPattern {
            platform,
            id,
            wildcard,
        })
    }

    /// Whether a request naming `app` is allowed by this entry. Allocates nothing.
    pub fn matches(&self, app: &AppIdentity<'_>) -> bool {
        if self.platform != app.platform {
            return false;
        }
        if !self.wildcard {
            return self.platform.same_label(&self.id, app.id);
        }
        let mut theirs = app.id.split('.');
        let all_match = self.id.split('.').all(|ours| match theirs.next() {
            None => false,
            // Request labels are never empty (checked by `AppIdentity::parse`).
            Some(_) if ours == "*" => true,
            Some(label) => self.platform.same_label(ours, label),
        });
        // Exactly as many labels: `com.example.*` must not match `com.example.shop.debug`.
        all_match && theirs.next().is_none()
    }
}

impl fmt::Display for AppPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.platform.scheme(), self.id)
    }
}

/// The `X-Client-Origin` header of a mobile request, checked but borrowed from the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppIdentity<'a> {
    /// Compared with the pattern's platform.
    platform: Platform,
    /// The id as sent (iOS ids are compared ignoring case).
    id: &'a str,
}

impl<'a> AppIdentity<'a> {
    /// Parses a header value: same grammar as a pattern, without `*` or a trailing `/`.
    pub fn parse(header: &'a [u8]) -> Result<AppIdentity<'a>, OriginError> {
        let s = std::str::from_utf8(header).map_err(|_| OriginError::NotUtf8)?;
        let (platform, id) = split(s, false)?;
        Ok(AppIdentity { platform, id })
    }
}

/// Takes `scheme://id` apart and checks every label; `pattern` allows `*` labels and one
/// trailing `/`. Returns the platform and the id as written.
fn split(s: &str, pattern: bool) -> Result<(Platform, &str), OriginError> {
    if s.is_empty() {
        return Err(OriginError::Empty);
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(OriginError::Whitespace);
    }
    let Some((scheme, rest)) = s.split_once("://") else {
        return Err(OriginError::MissingAppScheme);
    };
    let platform = if scheme.eq_ignore_ascii_case("android") {
        Platform::Android
    } else if scheme.eq_ignore_ascii_case("ios") {
        Platform::Ios
    } else if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") {
        return Err(OriginError::WebOriginOnMobileToken);
    } else if scheme.is_empty() {
        return Err(OriginError::MissingAppScheme);
    } else {
        return Err(OriginError::UnsupportedAppScheme);
    };
    let id = match rest.strip_suffix('/') {
        Some(id) if pattern => id,
        _ => rest,
    };
    if id.contains('/') || (!pattern && rest.ends_with('/')) {
        return Err(OriginError::Path);
    }
    if id.contains('?') {
        return Err(OriginError::Query);
    }
    if id.contains('#') {
        return Err(OriginError::Fragment);
    }
    if id.is_empty() {
        return Err(OriginError::MissingAppId);
    }
    if id.len() > MAX_ID_LEN {
        return Err(OriginError::AppIdTooLong);
    }
    let mut labels = 0usize;
    for (i, label) in id.split('.').enumerate() {
        labels += 1;
        if label.is_empty() {
            return Err(OriginError::EmptyLabel);
        }
        if label == "*" {
            if !pattern {
                return Err(OriginError::WildcardInRequest);
            }
            if i == 0 {
                return Err(OriginError::WildcardFirstLabel);
            }
            continue;
        }
        if label.contains('*') {
            return Err(if pattern {
                OriginError::AppPartialWildcard
            } else {
                OriginError::WildcardInRequest
            });
        }
        if !platform.label_ok(label) {
            return Err(platform.label_error());
        }
    }
    if labels < 2 {
        return Err(OriginError::AppIdTooFewLabels);
    }
    Ok((platform, id))
}
