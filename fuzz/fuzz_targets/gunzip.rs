//! AFL entry point for the `gunzip` checks (see `src/gunzip.rs`).

fn main() {
    afl::fuzz!(|data: &[u8]| {
        ingest_edge_fuzz::gunzip::check(data);
    });
}
