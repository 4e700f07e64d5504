//! AFL entry point for the `origin` checks (see `src/origin.rs`).

fn main() {
    afl::fuzz!(|data: &[u8]| {
        ingest_edge_fuzz::origin::check(data);
    });
}
