//! AFL entry point for the `rum_count` checks (see `src/rum_count.rs`).

fn main() {
    afl::fuzz!(|data: &[u8]| {
        ingest_edge_fuzz::rum_count::check(data);
    });
}
