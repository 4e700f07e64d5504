//! A token's allowed origins: web origins for web client tokens, app identities for mobile
//! ones (SPEC §4, §14). One list is never both, so a web token cannot be satisfied by an app
//! identity header and a mobile token never by a browser `Origin`.

use std::sync::Arc;

use super::{AppIdentity, AppPattern, OriginError, OriginPattern, RequestOrigin};

/// A token's allowed origins. Shared, not copied, between the stored record and the cache
/// entry built from it (a million tokens would otherwise hold two copies of every list).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OriginList(Entries);

/// Web origins or app identities, never both.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Entries {
    Web(Arc<[OriginPattern]>),
    App(Arc<[AppPattern]>),
}

impl Default for OriginList {
    fn default() -> OriginList {
        OriginList(Entries::Web(Arc::from(Vec::new())))
    }
}

/// Parses every entry with `parse`; on failure one (entry, reason) per bad entry, in order.
fn parse_each<S: AsRef<str>, P>(
    entries: &[S],
    parse: impl Fn(&str) -> Result<P, OriginError>,
) -> Result<Vec<P>, Vec<(String, OriginError)>> {
    let mut good = Vec::with_capacity(entries.len());
    let mut bad = Vec::new();
    for entry in entries {
        match parse(entry.as_ref()) {
            Ok(pattern) => good.push(pattern),
            Err(e) => bad.push((entry.as_ref().to_owned(), e)),
        }
    }
    if bad.is_empty() {
        Ok(good)
    } else {
        Err(bad)
    }
}

impl OriginList {
    /// Parses the web origins of a web client token; on failure returns one (entry, reason)
    /// per bad entry, in input order (an app identity is a bad entry here).
    pub fn parse_all<S: AsRef<str>>(
        entries: &[S],
    ) -> Result<OriginList, Vec<(String, OriginError)>> {
        parse_each(entries, OriginPattern::parse).map(|v| OriginList(Entries::Web(v.into())))
    }

    /// Parses the app identities of a mobile client token, like [`OriginList::parse_all`]
    /// (a web origin is a bad entry here).
    pub fn parse_app_all<S: AsRef<str>>(
        entries: &[S],
    ) -> Result<OriginList, Vec<(String, OriginError)>> {
        parse_each(entries, AppPattern::parse).map(|v| OriginList(Entries::App(v.into())))
    }

    /// Whether any web entry matches a browser origin. Allocates nothing.
    pub fn allows(&self, origin: &RequestOrigin) -> bool {
        match &self.0 {
            Entries::Web(list) => list.iter().any(|pattern| pattern.matches(origin)),
            Entries::App(_) => false,
        }
    }

    /// Whether `origin` is allowed by a wildcard entry and by no exact one (the abuse
    /// monitor's `new_origin` signal is about these only). Never for an app list.
    pub fn allows_only_by_wildcard(&self, origin: &RequestOrigin) -> bool {
        let Entries::Web(list) = &self.0 else {
            return false;
        };
        let mut by_wildcard = false;
        for p in list.iter().filter(|p| p.matches(origin)) {
            if !p.is_wildcard() {
                return false;
            }
            by_wildcard = true;
        }
        by_wildcard
    }

    /// Whether any app entry matches a mobile request's `X-Client-Origin`. Allocates nothing.
    pub fn allows_app(&self, app: &AppIdentity<'_>) -> bool {
        match &self.0 {
            Entries::App(list) => list.iter().any(|pattern| pattern.matches(app)),
            Entries::Web(_) => false,
        }
    }

    /// No entries: a client token with this list would refuse every request.
    pub fn is_empty(&self) -> bool {
        match &self.0 {
            Entries::Web(list) => list.is_empty(),
            Entries::App(list) => list.is_empty(),
        }
    }

    /// Whether this list holds app identities (a mobile token's list).
    pub fn is_app(&self) -> bool {
        matches!(self.0, Entries::App(_))
    }

    /// The web entries, in the operator's order (none for an app list).
    pub fn patterns(&self) -> &[OriginPattern] {
        match &self.0 {
            Entries::Web(list) => list,
            Entries::App(_) => &[],
        }
    }

    /// The app entries, in the operator's order (none for a web list).
    pub fn app_patterns(&self) -> &[AppPattern] {
        match &self.0 {
            Entries::App(list) => list,
            Entries::Web(_) => &[],
        }
    }
}

impl serde::Serialize for OriginList {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Entries::Web(list) => serializer.collect_seq(list.iter()),
            Entries::App(list) => serializer.collect_seq(list.iter().map(|p| p.to_string())),
        }
    }
}

impl<'de> serde::Deserialize<'de> for OriginList {
    /// A stored list is an app list when its first entry is an app identity; a mixed list is
    /// refused like any bad entry (the admin API never writes one).
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let entries = Vec::<String>::deserialize(deserializer)?;
        let app = entries.first().is_some_and(|e| {
            e.split_once("://")
                .is_some_and(|(scheme, _)| super::app::is_app_scheme(scheme))
        });
        let parsed = if app {
            OriginList::parse_app_all(&entries)
        } else {
            OriginList::parse_all(&entries)
        };
        parsed.map_err(|bad| {
            // `parse_each` never returns an empty error list; stay total anyway.
            let (entry, e) = bad
                .into_iter()
                .next()
                .unwrap_or((String::new(), OriginError::Empty));
            serde::de::Error::custom(format_args!("invalid origin '{entry}': {e}"))
        })
    }
}
