//! `ingest-edge store migrate --to postgres://...`: the file store of one edge into the
//! PostgreSQL store of several (SPEC §16).

use std::io::Write;
use std::path::Path;

use clap::Subcommand;

use super::CliError;
use crate::config::Config;
use crate::token::store::pg::{redacted, PgStore};
use crate::token::store::{FileStore, StoreError, TokenStore};

#[derive(Subcommand, Debug)]
pub enum StoreAction {
    /// Copy the file store into PostgreSQL (tokens already there are left as they are; the
    /// audit trail is copied only into an empty one, so a second run duplicates nothing).
    Migrate {
        /// The PostgreSQL URL (the edges' future `store.url`).
        #[arg(long)]
        to: String,
    },
}

/// Audit events per insert transaction.
const AUDIT_BATCH: usize = 1000;

pub fn run(config: &Path, action: StoreAction, out: &mut impl Write) -> Result<(), CliError> {
    let config = Config::load(config, false).map_err(|e| e.to_string())?;
    match action {
        StoreAction::Migrate { to } => migrate(&config, &to, out),
    }
}

fn migrate(config: &Config, to: &str, out: &mut impl Write) -> Result<(), CliError> {
    let shown = redacted(to);
    let from = FileStore::open(&config.data_dir.0).map_err(|e| e.to_string())?;
    let target =
        PgStore::connect(to, &config.server.edge_name()).map_err(|e| format!("{shown}: {e}"))?;
    let (mut copied, mut present) = (0usize, 0usize);
    let mut failed = None;
    from.for_each(&mut |record| {
        if failed.is_some() {
            return;
        }
        match target.replace(None, &record) {
            Ok(()) => copied += 1,
            Err(StoreError::Conflict(_)) => present += 1,
            Err(e) => failed = Some(e),
        }
    })
    .map_err(|e| e.to_string())?;
    if let Some(e) = failed {
        return Err(format!("{shown}: {e} ({copied} tokens copied before it)").into());
    }
    writeln!(
        out,
        "tokens: {copied} copied, {present} already in {shown} (left as they are)"
    )?;
    if !target.read_audit(1).map_err(|e| e.to_string())?.is_empty() {
        writeln!(
            out,
            "audit trail: not copied ({shown} already has one; copying again would duplicate it)"
        )?;
        return Ok(());
    }
    let events = from.read_audit(usize::MAX).map_err(|e| e.to_string())?;
    for batch in events.chunks(AUDIT_BATCH) {
        target
            .append_audit(batch)
            .map_err(|e| format!("{shown}: {e}"))?;
    }
    writeln!(out, "audit trail: {} events copied", events.len())?;
    Ok(())
}
