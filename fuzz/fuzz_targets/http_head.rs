//! AFL entry point for the `http_head` checks (see `src/http_head.rs`).

fn main() {
    afl::fuzz!(|data: &[u8]| {
        ingest_edge_fuzz::http_head::check(data);
    });
}
