//! Gzip request bodies (`body::gunzip_bounded`).
//!
//! Input: bytes 0 and 1 are the output limit (little-endian `u16`), the rest is the body.
//! Checked beyond "no panic", against flate2's unbounded `GzDecoder` on the same bytes: an
//! accepted body's output is within the limit and is exactly what the unbounded decoder
//! produces; output over the limit is refused with `413`; and a body the unbounded decoder
//! inflates within the limit is accepted (the bound never refuses good data).

use std::io::Read;

use ingest_edge::body::gunzip_bounded;

pub fn check(data: &[u8]) {
    let (lo, rest) = crate::split_first(data);
    let (hi, body) = crate::split_first(rest);
    let max = usize::from(u16::from_le_bytes([lo, hi]));
    let got = gunzip_bounded(body, max);
    // The reference: all of it (capped well past the limit, so a bomb cannot run away).
    let mut want = Vec::new();
    let reference = flate2::read::GzDecoder::new(body)
        .take(u64::from(u16::MAX) * 2)
        .read_to_end(&mut want);
    match (got, reference) {
        (Ok(out), Ok(_)) => {
            assert!(
                out.len() <= max,
                "output {} over the limit {max}",
                out.len()
            );
            assert_eq!(out, want, "output differs from flate2's");
        }
        (Ok(out), Err(e)) => panic!("accepted {} bytes flate2 refuses: {e}", out.len()),
        (Err(reject), Ok(_)) if want.len() > max => assert_eq!(reject.status, 413),
        (Err(reject), Ok(_)) => {
            panic!(
                "refused ({}) a body inflating to {} <= {max}",
                reject.status,
                want.len()
            )
        }
        (Err(_), Err(_)) => {}
    }
}
