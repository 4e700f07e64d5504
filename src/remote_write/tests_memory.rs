//! What a request may make the decoder allocate and keep (issue 17): the snappy expansion
//! bound checked before the decompression buffer is allocated, the 2.0 symbol count limit, and
//! the per-thread buffers given back after a large request.

use super::decoder::checked_len;
use super::tests::{snappy, NOW};
use super::{Decoder, Limits, RwError, Version, Written};

/// A 2.0 request holding only `n` empty symbols (field 4, length 0), uncompressed.
fn empty_symbols(n: usize) -> Vec<u8> {
    [0x22u8, 0x00].repeat(n)
}

#[test]
fn the_most_compressible_input_passes_the_expansion_bound() {
    let limits = Limits::default();
    let zeros = snappy(&vec![0u8; 32 << 20]);
    // Snappy gets close to the bound on a run: about 3 bytes per 64.
    assert!(
        zeros.len() < (32 << 20) * 3 / 64 + (32 << 20) / 1000,
        "{}",
        zeros.len()
    );
    assert_eq!(checked_len(&zeros, &limits), Ok(32 << 20));
    for raw in [
        Vec::new(),
        vec![0u8; 1],
        vec![7u8; 64],
        vec![0u8; 65_536],
        vec![0u8; 65_537],
        empty_symbols(16 << 20),
        (0..1_000_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect(),
    ] {
        assert_eq!(checked_len(&snappy(&raw), &limits), Ok(raw.len()));
    }
}

#[test]
fn an_impossible_declared_length_is_refused_before_allocating() {
    // Issue 17: 6 bytes declaring 32 MiB (varint 2^25, then a 1-byte literal).
    let body = [0x80, 0x80, 0x80, 0x10, 0x00, 0x00];
    let mut decoder = Decoder::new();
    let got = decoder.decode(Version::V2, &body, &Limits::default(), NOW);
    assert_eq!(got, Err(RwError::BadEncoding));
    assert_eq!(decoder.buffer_capacity(), 0, "nothing may be allocated");

    // The bound is exact: 30 payload bytes can stand for 640 decoded bytes, not 641.
    let with_header = |declared: u8| {
        let mut b = vec![declared + 0x80, 0x05];
        b.extend([0u8; 30]);
        b
    };
    let limits = Limits::default();
    assert_eq!(checked_len(&with_header(0), &limits), Ok(640));
    assert_eq!(
        checked_len(&with_header(1), &limits),
        Err(RwError::BadEncoding)
    );
}

#[test]
fn a_declared_length_over_the_limit_is_still_too_large_first() {
    // Over the limit and impossible: the limit answers (413), as before the bound existed.
    let body = [0x80, 0x80, 0x80, 0x80, 0x10];
    let got = checked_len(&body, &Limits::default());
    assert!(matches!(got, Err(RwError::TooLarge { .. })), "{got:?}");
}

#[test]
fn the_symbols_table_is_bounded_by_half_the_decoded_limit() {
    let limits = Limits::default();
    assert_eq!(limits.max_symbols(), 1 << 20);
    let entry = std::mem::size_of::<&[u8]>();
    assert!(limits.max_symbols() * entry <= limits.max_decoded_bytes / 2);
    // A small decoded limit cannot be reached by the count: no refusal for it.
    let small = Limits {
        max_decoded_bytes: 4096,
        ..Limits::default()
    };
    assert!(small.max_symbols() * 2 > small.max_decoded_bytes);
}

#[test]
fn more_symbols_than_the_limit_is_413_too_large() {
    let limits = Limits {
        max_decoded_bytes: 4 << 20,
        ..Limits::default()
    };
    let max = limits.max_symbols();
    assert_eq!(max, 131_072);
    let mut decoder = Decoder::new();
    let at = snappy(&empty_symbols(max));
    assert_eq!(
        decoder.decode(Version::V2, &at, &limits, NOW),
        Ok(Written::default())
    );
    let over = snappy(&empty_symbols(max + 1));
    let err = decoder
        .decode(Version::V2, &over, &limits, NOW)
        .unwrap_err();
    assert_eq!(err, RwError::TooManySymbols { limit: max });
    assert_eq!((err.status(), err.reason()), (413, "too_large"));
    assert!(err.to_string().contains("131072"), "{err}");
    assert_eq!(
        decoder.symbols_capacity(),
        0,
        "a table past the kept size is given back"
    );
}

#[test]
fn a_large_symbols_table_is_given_back_and_a_small_one_kept() {
    let limits = Limits::default();
    let mut decoder = Decoder::new();
    let small = snappy(&empty_symbols(1000));
    assert_eq!(
        decoder.decode(Version::V2, &small, &limits, NOW),
        Ok(Written::default())
    );
    let warm = decoder.symbols_capacity();
    assert!(warm >= 1000);
    assert_eq!(
        decoder.decode(Version::V2, &small, &limits, NOW),
        Ok(Written::default())
    );
    assert_eq!(decoder.symbols_capacity(), warm, "a warm table is reused");

    let large = snappy(&empty_symbols(200_000));
    assert_eq!(
        decoder.decode(Version::V2, &large, &limits, NOW),
        Ok(Written::default())
    );
    assert_eq!(
        decoder.symbols_capacity(),
        0,
        "a 200k-entry table is not pinned"
    );
}
