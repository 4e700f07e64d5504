//! What a follower reads: the rows changed since its cursor (see `token::follow`).

use std::time::Duration;

use postgres::Client;

use super::{classify, corrupt};
use crate::token::store::StoreError;
use crate::token::TokenRecord;

/// Where a follower starts: the newest revision and the database's clock when the tokens
/// were loaded.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cursor {
    pub revision: i64,
    /// Database time, unix milliseconds.
    pub at_ms: i64,
}

/// Changed rows since `cursor` (and, against commits that land out of sequence order, every
/// row updated in the `margin` before it), oldest revision first, with the new cursor.
pub fn changes_since(
    client: &mut Client,
    cursor: Cursor,
    margin: Duration,
) -> Result<(Vec<TokenRecord>, Cursor), StoreError> {
    let now = client
        .query_one(
            "SELECT (extract(epoch FROM now()) * 1000)::bigint, \
             (SELECT coalesce(max(revision), 0) FROM ingest_edge_tokens)",
            &[],
        )
        .map_err(classify)?;
    let since_ms = cursor.at_ms - i64::try_from(margin.as_millis()).unwrap_or(0);
    let rows = client
        .query(
            "SELECT record::text, revision FROM ingest_edge_tokens \
             WHERE revision > $1 OR updated_at > to_timestamp($2::bigint / 1000.0) \
             ORDER BY revision",
            &[&cursor.revision, &since_ms],
        )
        .map_err(classify)?;
    let mut next = Cursor {
        revision: cursor.revision,
        at_ms: now.try_get(0).map_err(classify)?,
    };
    next.revision = next.revision.max(now.try_get(1).map_err(classify)?);
    let mut records = Vec::with_capacity(rows.len());
    for row in rows {
        let text: String = row.try_get(0).map_err(classify)?;
        records.push(serde_json::from_str(&text).map_err(corrupt)?);
    }
    Ok((records, next))
}
