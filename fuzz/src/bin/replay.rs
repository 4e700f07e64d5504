//! Runs one target's checks on files, without AFL: `replay TARGET FILE...`. A crash found by
//! `run.sh` reproduces here with a backtrace (`RUST_BACKTRACE=1`).

use ingest_edge_fuzz as fuzz;

fn main() {
    let mut args = std::env::args().skip(1);
    let target = args.next().unwrap_or_default();
    let check: fn(&[u8]) = match target.as_str() {
        "origin" => fuzz::origin::check,
        "secret" => fuzz::secret::check,
        "remote_write" => fuzz::remote_write::check,
        "rum_count" => fuzz::rum_count::check,
        "gunzip" => fuzz::gunzip::check,
        "http_head" => fuzz::http_head::check,
        _ => {
            eprintln!(
                "usage: replay origin|secret|remote_write|rum_count|gunzip|http_head FILE..."
            );
            std::process::exit(2);
        }
    };
    for path in args {
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        check(&data);
        println!("{path}: ok");
    }
}
