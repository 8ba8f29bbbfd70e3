//! Choosing a partition, exactly as the Java client does.
//!
//! Order: an explicit partition on the record, then a custom [`Partitioner`], then the key
//! hash (`murmur2(key) & 0x7fffffff % partition_count`, over all partitions, available or
//! not), then the uniform sticky partitioner for keyless records (KIP-794).

use std::sync::Mutex;

use rand::RngExt;

/// A custom partitioner (`partitioner.class`).
pub trait Partitioner: Send + Sync + 'static {
    /// The partition for a record of `topic` with `partition_count` partitions, or `None`
    /// to let the built-in partitioner decide (as Java's `-1`). A value outside
    /// `0..partition_count` fails the send with a clear error.
    fn partition(&self, topic: &str, key: Option<&[u8]>, value: Option<&[u8]>, partition_count: i32) -> Option<i32>;
}

/// The Java client's partition for a key: `toPositive(murmur2(key)) % partition_count`.
/// Panics if `partition_count` is not positive.
pub fn partition_for_key(key: &[u8], partition_count: i32) -> i32 {
    assert!(partition_count > 0, "partition_count must be positive");
    let h = murmur2::murmur2(key, murmur2::KAFKA_SEED) & 0x7fff_ffff;
    (h % partition_count as u32) as i32
}

/// Per-topic state of the uniform sticky partitioner for keyless records: stick to one
/// partition until about `batch_size` bytes went to it (switching when its batch closes,
/// at the latest at twice that), then move to a random available partition.
#[derive(Debug, Default)]
pub(crate) struct StickyPartition {
    state: Mutex<Sticky>,
}

#[derive(Debug, Default)]
struct Sticky {
    current: Option<i32>,
    bytes: usize,
}

impl StickyPartition {
    /// The partition for the next keyless record. `available` lists partitions that have a
    /// leader (all partitions are used when none has).
    pub(crate) fn partition(&self, partition_count: i32, available: &[i32]) -> i32 {
        let mut s = self.state.lock().unwrap();
        match s.current {
            Some(p) if p < partition_count => p,
            _ => {
                let p = pick(partition_count, available, None);
                s.current = Some(p);
                s.bytes = 0;
                p
            }
        }
    }

    /// Records that `bytes` went to `partition`; `batch_closed` says its batch just filled.
    /// Moves on once `batch_size` bytes went there and a batch closed, or at 2x batch_size.
    pub(crate) fn on_append(
        &self,
        partition: i32,
        bytes: usize,
        batch_closed: bool,
        batch_size: usize,
        partition_count: i32,
        available: &[i32],
    ) {
        let mut s = self.state.lock().unwrap();
        if s.current != Some(partition) {
            return;
        }
        s.bytes += bytes;
        if (s.bytes >= batch_size && batch_closed) || s.bytes >= 2 * batch_size {
            s.current = Some(pick(partition_count, available, Some(partition)));
            s.bytes = 0;
        }
    }
}

/// A random partition among `available` (all when empty), avoiding `not` when possible.
fn pick(partition_count: i32, available: &[i32], not: Option<i32>) -> i32 {
    let mut rng = rand::rng();
    let candidates: Vec<i32> = if available.is_empty() {
        (0..partition_count).collect()
    } else {
        available.iter().copied().filter(|p| *p < partition_count).collect()
    };
    if candidates.is_empty() {
        return rng.random_range(0..partition_count.max(1));
    }
    if candidates.len() > 1 {
        if let Some(n) = not {
            let others: Vec<i32> = candidates.iter().copied().filter(|p| *p != n).collect();
            return others[rng.random_range(0..others.len())];
        }
    }
    candidates[rng.random_range(0..candidates.len())]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectors of the Java client (murmur2 as Java's signed int, then partitions).
    #[test]
    fn keyed_partitions_match_the_java_client() {
        let vectors: &[(&str, i32, [i32; 4])] = &[
            ("21", -973932308, [0, 0, 0, 0]),
            ("foobar", -790332482, [0, 0, 6, 6]),
            ("abc", 479470107, [0, 3, 7, 3]),
            ("a-little-bit-longer-string", -1486304829, [2, 5, 9, 11]),
            ("", 275646681, [0, 3, 1, 9]),
        ];
        for (key, hash, parts) in vectors {
            assert_eq!(murmur2::murmur2(key.as_bytes(), murmur2::KAFKA_SEED) as i32, *hash, "murmur2({key:?})");
            for (n, want) in [3, 6, 10, 12].iter().zip(parts) {
                assert_eq!(partition_for_key(key.as_bytes(), *n), *want, "key {key:?}, {n} partitions");
            }
        }
    }

    #[test]
    fn sticky_partition_holds_until_a_batch_fills_then_moves() {
        let s = StickyPartition::default();
        let avail = [0, 1, 2, 3, 4, 5];
        let first = s.partition(6, &avail);
        for _ in 0..10 {
            assert_eq!(s.partition(6, &avail), first);
            s.on_append(first, 100, false, 16384, 6, &avail);
        }
        // batch_size reached but no batch closed yet: still sticky.
        s.on_append(first, 16384, false, 16384, 6, &avail);
        assert_eq!(s.partition(6, &avail), first);
        // A batch closes: move to another partition.
        s.on_append(first, 10, true, 16384, 6, &avail);
        assert_ne!(s.partition(6, &avail), first);
    }

    #[test]
    fn sticky_partition_moves_at_twice_the_batch_size_and_only_to_available() {
        let s = StickyPartition::default();
        let avail = [2, 4];
        let first = s.partition(6, &avail);
        assert!(avail.contains(&first));
        s.on_append(first, 2 * 16384, false, 16384, 6, &avail);
        let second = s.partition(6, &avail);
        assert!(avail.contains(&second) && second != first);
    }
}
