//! The schema: `migrations/*.sql`, each applied once, in order, under an advisory lock.

use postgres::Client;

use super::classify;
use crate::token::store::StoreError;

/// Migrations in order; each runs once, recorded in `ingest_edge_migrations`.
const MIGRATIONS: &[(i32, &str)] = &[(1, include_str!("../../../../migrations/0001_tokens.sql"))];
/// Advisory lock key of the migration step (any constant; "ingedge1" in ASCII).
const MIGRATION_LOCK: i64 = 0x696e_6765_6467_6531;

/// Creates or updates the schema: one transaction, serialized by an advisory lock.
pub(super) fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let mut tx = client.transaction().map_err(classify)?;
    // "already exists, skipping" notices at every start say nothing.
    tx.batch_execute("SET LOCAL client_min_messages = warning")
        .map_err(classify)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(classify)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS ingest_edge_migrations \
         (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .map_err(classify)?;
    for (version, sql) in MIGRATIONS {
        let done = tx
            .query_opt(
                "SELECT 1 FROM ingest_edge_migrations WHERE version = $1",
                &[version],
            )
            .map_err(classify)?;
        if done.is_none() {
            tx.batch_execute(sql).map_err(classify)?;
            tx.execute(
                "INSERT INTO ingest_edge_migrations (version) VALUES ($1)",
                &[version],
            )
            .map_err(classify)?;
            tracing::info!(version, "token store migration applied");
        }
    }
    tx.commit().map_err(classify)
}
