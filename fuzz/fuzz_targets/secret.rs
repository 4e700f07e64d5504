//! AFL entry point for the `secret` checks (see `src/secret.rs`).

fn main() {
    afl::fuzz!(|data: &[u8]| {
        ingest_edge_fuzz::secret::check(data);
    });
}
