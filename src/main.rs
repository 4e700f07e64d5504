//! The `ingest-edge` binary: parses the command line and hands over to the library.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = ingest_edge::cli::Cli::parse();
    ingest_edge::cli::run(cli)
}
