//! A bounded top-K (Space-Saving, Metwally et al. 2005): the most frequent keys of an
//! unbounded stream (rejected origins, client addresses) in `capacity` slots.
//!
//! A key not tracked replaces the least counted one and inherits its count (kept as the
//! overestimate `error`), so any key seen more than `total / capacity` times is guaranteed to be
//! listed. Updates scan the slots (capacity is small): callers hold it behind a mutex taken
//! only on refusals or on a sample of requests, never on every request.

use serde::Serialize;

/// One listed key.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Counted<K> {
    pub key: K,
    /// Estimated occurrences (an upper bound).
    pub count: u64,
    /// How much of `count` may come from keys this one replaced.
    pub error: u64,
}

pub struct TopK<K> {
    slots: Vec<Counted<K>>,
    capacity: usize,
}

impl<K: PartialEq + Clone> TopK<K> {
    pub fn new(capacity: usize) -> TopK<K> {
        TopK {
            slots: Vec::new(),
            capacity: capacity.max(1),
        }
    }

    /// Counts `weight` occurrences of `key`.
    pub fn add(&mut self, key: &K, weight: u64) {
        if let Some(s) = self.slots.iter_mut().find(|s| s.key == *key) {
            s.count += weight;
            return;
        }
        if self.slots.len() < self.capacity {
            self.slots.push(Counted {
                key: key.clone(),
                count: weight,
                error: 0,
            });
            return;
        }
        if let Some(min) = self.slots.iter_mut().min_by_key(|s| s.count) {
            *min = Counted {
                key: key.clone(),
                count: min.count + weight,
                error: min.count,
            };
        }
    }

    /// The `n` most counted keys, most first.
    pub fn top(&self, n: usize) -> Vec<Counted<K>> {
        let mut all = self.slots.clone();
        all.sort_by_key(|c| std::cmp::Reverse(c.count));
        all.truncate(n);
        all
    }

    pub fn clear(&mut self) {
        self.slots.clear();
    }

    /// Heap bytes held (for the memory figure), excluding what keys own.
    pub fn heap_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Counted<K>>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heavy_hitters_survive_a_flood_of_singletons() {
        // 13,000 occurrences in 16 slots: any key seen more than 812 times is kept.
        let mut t = TopK::new(16);
        for i in 0..10_000u32 {
            t.add(&i, 1);
            if i % 5 == 0 {
                t.add(&1_000_000, 1);
            }
            if i % 10 == 0 {
                t.add(&2_000_000, 1);
            }
        }
        let top = t.top(2);
        assert_eq!(top[0].key, 1_000_000);
        assert_eq!(top[1].key, 2_000_000);
        // Space-Saving never undercounts, and `count - error` never overcounts.
        assert!(top[0].count >= 2_000);
        assert!(top[0].count - top[0].error <= 2_000);
        assert_eq!(t.top(100).len(), 16);
    }

    #[test]
    fn exact_while_under_capacity() {
        let mut t = TopK::new(4);
        t.add(&"a", 3);
        t.add(&"b", 1);
        t.add(&"a", 1);
        assert_eq!(
            t.top(5),
            vec![
                Counted {
                    key: "a",
                    count: 4,
                    error: 0
                },
                Counted {
                    key: "b",
                    count: 1,
                    error: 0
                }
            ]
        );
    }
}
