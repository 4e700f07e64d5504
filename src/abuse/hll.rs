//! A small HyperLogLog over atomics: distinct client addresses and remote_write series per
//! token, in at most 1 KiB per sketch whatever the traffic, and 72 bytes while few are seen.
//!
//! 2^10 one-byte registers give a standard error of 1.04 / sqrt(1024) = 3.25 %. Most tokens
//! see few clients in a window (one Prometheus, one office NAT), so a sketch starts *sparse*:
//! up to [`SPARSE`] set registers are kept as `index << 8 | rank` in one cache line, and the
//! 1 KiB of dense registers is allocated only when a 17th register is set. The sparse slots
//! hold exactly the registers the dense array would, so estimates are the same in both forms.
//!
//! Inserting is lock-free: dense, one relaxed load and, only when the register grows, one
//! `fetch_max`; sparse, a scan of at most 16 slots and a compare-exchange when a slot is
//! taken or raised. Once a sketch has seen a population, repeat visitors cost loads. A switch
//! to dense leaves the sparse slots in place and every read takes the maximum of both, so a
//! rank raised in a slot while another thread switches is never lost. Estimation (off the
//! request path) is the original HyperLogLog estimator with linear counting for small counts
//! (Flajolet et al. 2007); the large-range correction is not needed with 64-bit hashes.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, AtomicU8, Ordering::Relaxed};
use std::sync::OnceLock;

/// Index bits: 2^P registers.
const P: u32 = 10;
/// Registers per sketch.
pub const REGISTERS: usize = 1 << P;
/// Relative standard error of an estimate.
pub const STANDARD_ERROR: f64 = 1.04 / 32.0;
/// Registers a sparse sketch keeps before it allocates the dense ones (64 bytes of slots).
pub const SPARSE: usize = 16;

type Dense = Box<[AtomicU8; REGISTERS]>;

pub struct Hll {
    /// Set registers while sparse, each `index << 8 | rank` (0: a free slot; a rank is at
    /// least 1, so a set register is never 0).
    sparse: [AtomicU32; SPARSE],
    /// The dense registers, allocated by the first insert that finds no slot.
    dense: OnceLock<Dense>,
}

impl Default for Hll {
    fn default() -> Self {
        Hll::new()
    }
}

impl Hll {
    pub fn new() -> Hll {
        Hll {
            sparse: Default::default(),
            dense: OnceLock::new(),
        }
    }

    /// Adds one element by its 64-bit hash (which must be well mixed: see [`mix`]).
    #[inline]
    pub fn insert(&self, hash: u64) {
        let index = (hash >> (64 - P)) as usize;
        // The remaining bits, with a stop bit so the rank is at most 64 - P + 1.
        let rank = ((hash << P) | (1 << (P - 1))).leading_zeros() as u8 + 1;
        if let Some(dense) = self.dense.get() {
            return raise(dense, index, rank);
        }
        let entry = ((index as u32) << 8) | u32::from(rank);
        for slot in &self.sparse {
            let mut current = slot.load(Relaxed);
            loop {
                let next = if current == 0 {
                    entry
                } else if current >> 8 == index as u32 {
                    if current >= entry {
                        return;
                    }
                    entry
                } else {
                    break;
                };
                match slot.compare_exchange(current, next, Relaxed, Relaxed) {
                    Ok(_) => return,
                    // Taken or raised meanwhile: look at it again.
                    Err(now) => current = now,
                }
            }
        }
        let dense = self
            .dense
            .get_or_init(|| Box::new(std::array::from_fn(|_| AtomicU8::new(0))));
        raise(dense, index, rank);
    }

    pub fn clear(&self) {
        for s in &self.sparse {
            s.store(0, Relaxed);
        }
        if let Some(dense) = self.dense.get() {
            for r in dense.iter() {
                r.store(0, Relaxed);
            }
        }
    }

    /// Heap bytes of this sketch: 0 while sparse.
    pub fn heap_bytes(&self) -> usize {
        self.dense.get().map_or(0, |_| REGISTERS)
    }

    /// The registers as the dense form has them (a copy, off the request path).
    fn registers(&self) -> [u8; REGISTERS] {
        let mut out = [0u8; REGISTERS];
        if let Some(dense) = self.dense.get() {
            for (o, r) in out.iter_mut().zip(dense.iter()) {
                *o = r.load(Relaxed);
            }
        }
        for s in &self.sparse {
            let v = s.load(Relaxed);
            if let Some(o) = out.get_mut((v >> 8) as usize) {
                *o = (*o).max(v as u8);
            }
        }
        out
    }

    /// Estimated distinct elements inserted since the last `clear`.
    pub fn estimate(&self) -> f64 {
        estimate(self.registers().into_iter())
    }

    /// Estimated distinct elements of the union of two sketches.
    pub fn union_estimate(&self, other: &Hll) -> f64 {
        let (a, b) = (self.registers(), other.registers());
        estimate(a.into_iter().zip(b).map(|(a, b)| a.max(b)))
    }
}

#[inline]
fn raise(dense: &[AtomicU8; REGISTERS], index: usize, rank: u8) {
    if let Some(r) = dense.get(index) {
        if r.load(Relaxed) < rank {
            r.fetch_max(rank, Relaxed);
        }
    }
}

fn estimate(registers: impl Iterator<Item = u8>) -> f64 {
    let m = REGISTERS as f64;
    let mut sum = 0.0;
    let mut zeros = 0usize;
    for r in registers {
        sum += 1.0 / f64::from(1u32 << u32::from(r.min(31)));
        zeros += usize::from(r == 0);
    }
    let alpha = 0.7213 / (1.0 + 1.079 / m);
    let raw = alpha * m * m / sum;
    if raw <= 2.5 * m && zeros > 0 {
        m * (m / zeros as f64).ln()
    } else {
        raw
    }
}

/// A 64-bit finalizer (SplitMix64): spreads any input over all 64 bits.
#[inline]
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The sketch hash of a client address.
#[inline]
pub fn hash_addr(addr: IpAddr) -> u64 {
    match addr {
        IpAddr::V4(v4) => mix(u64::from(u32::from(v4))),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            mix((bits as u64) ^ mix((bits >> 64) as u64))
        }
    }
}

/// Folds one label pair into a series hash with one or two multiplies: the value's length,
/// its first 8 and (when longer) last 8 bytes, and the name's first 8. Label sets that differ
/// only in the middle of a value longer than 16 bytes, or only past a name's eighth byte,
/// collide: that can only undercount new series. Runs in the remote_write validator, where
/// the bytes are already in cache (see `benches/request_path.rs` for its cost).
#[inline(always)]
pub fn fold_label(h: u64, name: &[u8], value: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let head = first8(value) ^ first8(name).rotate_left(29) ^ ((value.len() as u64) << 56);
    let h = (h ^ head).wrapping_mul(K).rotate_left(31);
    if value.len() > 8 {
        let tail = value.len() - 8;
        (h ^ first8(value.get(tail..).unwrap_or(&[])))
            .wrapping_mul(K)
            .rotate_left(31)
    } else {
        h
    }
}

/// The first 8 bytes (zero-padded) as a little-endian word.
#[inline(always)]
fn first8(s: &[u8]) -> u64 {
    match s.get(..8) {
        Some(b) => {
            let mut w = [0u8; 8];
            w.copy_from_slice(b);
            u64::from_le_bytes(w)
        }
        None => {
            let mut w = [0u8; 8];
            w[..s.len()].copy_from_slice(s);
            u64::from_le_bytes(w)
        }
    }
}

/// A cheap hash of a byte string (8 bytes at a time), finished with [`mix`].
#[inline]
pub fn hash_bytes(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = seed ^ (bytes.len() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(c);
        h = (h ^ u64::from_le_bytes(word))
            .wrapping_mul(0x1000_0000_01b3)
            .rotate_left(29);
    }
    let mut tail = [0u8; 8];
    let rest = chunks.remainder();
    tail[..rest.len()].copy_from_slice(rest);
    mix(h ^ u64::from_le_bytes(tail))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relative_error(n: u64, salt: u64) -> f64 {
        let h = Hll::new();
        for i in 0..n {
            h.insert(mix(i ^ (salt << 40)));
        }
        (h.estimate() - n as f64).abs() / n as f64
    }

    /// Within three standard errors at small, middle and large counts (several seeds each,
    /// so one lucky seed cannot pass a broken estimator).
    #[test]
    fn estimates_are_within_three_standard_errors() {
        for n in [1_000u64, 10_000, 100_000] {
            for salt in 1..=4 {
                let e = relative_error(n, salt);
                assert!(e < 3.0 * STANDARD_ERROR, "n={n} salt={salt}: error {e}");
            }
        }
        assert!(relative_error(10, 9) < 0.05);
    }

    /// The dense registers of `hashes`, computed apart from `Hll`, and their estimate.
    fn reference(hashes: impl Iterator<Item = u64>) -> (usize, f64) {
        let mut r = [0u8; REGISTERS];
        for h in hashes {
            let index = (h >> (64 - P)) as usize;
            let rank = ((h << P) | (1 << (P - 1))).leading_zeros() as u8 + 1;
            r[index] = r[index].max(rank);
        }
        let set = r.iter().filter(|&&x| x > 0).count();
        (set, estimate(r.into_iter()))
    }

    /// A sketch stays sparse (no heap) up to SPARSE set registers, goes dense after, and
    /// estimates exactly what the dense registers give at every step, repeats included.
    #[test]
    fn sparse_until_full_then_dense_with_the_same_estimates() {
        let h = Hll::new();
        for n in 1..=200u64 {
            h.insert(mix(n));
            h.insert(mix(n / 2)); // a repeat, sometimes with the same register
            let (set, want) = reference((1..=n).chain((0..=n).map(|i| i / 2)).map(mix));
            assert_eq!(h.estimate(), want, "n={n}");
            let heap = if set > SPARSE { REGISTERS } else { 0 };
            assert_eq!(h.heap_bytes(), heap, "n={n}: {set} registers set");
        }
        let other = Hll::new();
        other.insert(mix(1_000));
        let (_, want) = reference((0..=200u64).chain([1_000]).map(mix));
        assert_eq!(h.union_estimate(&other), want);
        assert_eq!(other.union_estimate(&h), want);
        h.clear();
        assert_eq!(h.estimate(), 0.0);
    }

    /// Threads inserting at once into a sparse sketch, across the switch to dense, lose no
    /// register: the result is exactly the dense registers of everything inserted.
    #[test]
    fn concurrent_inserts_across_the_switch_lose_nothing() {
        for round in 0..20u64 {
            let h = Hll::new();
            std::thread::scope(|s| {
                for t in 0..4u64 {
                    let h = &h;
                    s.spawn(move || {
                        for i in 0..40u64 {
                            h.insert(mix((round << 32) | ((i * 4 + t) % 30)));
                            h.insert(mix((round << 32) | (100 + t * 40 + i)));
                        }
                    });
                }
            });
            let all = (0..30u64).chain(100..260).map(|i| mix((round << 32) | i));
            assert_eq!(h.estimate(), reference(all).1, "round {round}");
        }
    }

    #[test]
    fn repeats_do_not_count_and_union_counts_both() {
        let a = Hll::new();
        let b = Hll::new();
        for _ in 0..5 {
            for i in 0..2_000u64 {
                a.insert(mix(i));
            }
        }
        for i in 1_000..3_000u64 {
            b.insert(mix(i));
        }
        let ea = a.estimate();
        assert!(
            (ea - 2_000.0).abs() < 2_000.0 * 3.0 * STANDARD_ERROR,
            "{ea}"
        );
        let u = a.union_estimate(&b);
        assert!((u - 3_000.0).abs() < 3_000.0 * 3.0 * STANDARD_ERROR, "{u}");
        a.clear();
        assert_eq!(a.estimate(), 0.0);
    }

    #[test]
    fn label_set_hashes_tell_series_apart() {
        let h = Hll::new();
        for i in 0..10_000u32 {
            let pod = format!("api-7d9f8b6c5-{i:05}");
            let mut x = fold_label(0, b"__name__", b"http_requests_total");
            x = fold_label(x, b"job", b"api");
            x = fold_label(x, b"pod", pod.as_bytes());
            h.insert(mix(x));
        }
        let e = h.estimate();
        assert!(
            (e - 10_000.0).abs() < 10_000.0 * 3.0 * STANDARD_ERROR,
            "{e}"
        );
    }

    #[test]
    fn byte_hashes_spread() {
        let h = Hll::new();
        for i in 0..10_000u32 {
            h.insert(hash_bytes(0, format!("series_{i}{{job=\"a\"}}").as_bytes()));
        }
        let e = h.estimate();
        assert!(
            (e - 10_000.0).abs() < 10_000.0 * 3.0 * STANDARD_ERROR,
            "{e}"
        );
    }
}
