//! AFL entry point for the `remote_write` checks (see `src/remote_write.rs`).

fn main() {
    afl::fuzz!(|data: &[u8]| {
        ingest_edge_fuzz::remote_write::check(data);
    });
}
