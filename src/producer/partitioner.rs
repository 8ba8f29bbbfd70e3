//! Choosing a partition, exactly as the Java client does.
//!
//! Order: an explicit partition on the record, then a custom [`Partitioner`], then the key
//! hash (`murmur2(key) & 0x7fffffff % partition_count`, over all partitions, available or
//! not), then the uniform sticky partitioner for keyless records (KIP-794).

use std::sync::{Arc, Mutex};

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
/// at the latest at twice that), then move to another partition: weighted by the load
/// stats the Sender publishes (adaptive partitioning, KIP-794) when there are any, else a
/// random available one.
#[derive(Debug, Default)]
pub(crate) struct StickyPartition {
    state: Mutex<Sticky>,
    /// The adaptive load stats, replaced by the Sender's drain and read by `send` only when
    /// the sticky partition switches (never per record). `None`: switch uniformly.
    load: Mutex<Option<Arc<LoadStats>>>,
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
                let p = self.next(partition_count, available, None);
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
            s.current = Some(self.next(partition_count, available, Some(partition)));
            s.bytes = 0;
        }
    }

    /// Publishes new load stats (the Sender, once per drain round); unchanged stats are
    /// not replaced.
    pub(crate) fn set_load(&self, stats: Option<LoadStats>) {
        let mut slot = self.load.lock().unwrap();
        if slot.as_deref() != stats.as_ref() {
            *slot = stats.map(Arc::new);
        }
    }

    /// The load stats in force (tests and diagnostics).
    #[cfg(test)]
    pub(crate) fn load(&self) -> Option<Arc<LoadStats>> {
        self.load.lock().unwrap().clone()
    }

    fn next(&self, partition_count: i32, available: &[i32], not: Option<i32>) -> i32 {
        let load = self.load.lock().unwrap().clone();
        let mut rng = rand::rng();
        pick(partition_count, available, not, load.as_deref(), &mut |n| rng.random_range(0..n))
    }
}

/// Adaptive partitioning's view of a topic (Java's `PartitionLoadStats`): the partitions
/// a keyless record may switch to, with a cumulative frequency table of their weights.
/// A partition's weight is `max queue + 1 - its queue` (queues counted in batches), so a
/// partition whose broker drains slowly, and whose queue therefore grows, is picked less.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LoadStats {
    /// Running sums of the weights; the last is the total.
    cumulative: Vec<u32>,
    partitions: Vec<i32>,
}

impl LoadStats {
    /// The stats of a topic of `partition_count` partitions from the queue sizes of the
    /// partitions that may be picked (`(partition, batches queued)`: those with a leader
    /// whose broker is not unavailable). `None` (switch uniformly) as in Java: fewer than 2
    /// partitions, none to pick, or all partitions pickable with equal queues.
    pub(crate) fn from_queues(partition_count: i32, queues: &[(i32, u32)]) -> Option<LoadStats> {
        if queues.is_empty() || partition_count < 2 {
            return None;
        }
        let max = queues.iter().map(|(_, q)| *q).max().unwrap_or(0);
        let all_equal = queues.iter().all(|(_, q)| *q == max);
        if all_equal && queues.len() == partition_count as usize {
            return None;
        }
        let mut sum = 0u32;
        let cumulative = queues
            .iter()
            .map(|(_, q)| {
                sum = sum.saturating_add(max - q + 1);
                sum
            })
            .collect();
        Some(LoadStats { cumulative, partitions: queues.iter().map(|(p, _)| *p).collect() })
    }

    /// The sum of the weights: a pick draws a number in `0..total`.
    pub(crate) fn total(&self) -> u32 {
        self.cumulative.last().copied().unwrap_or(0)
    }

    /// The partition drawn by `r` in `0..total()`: the first whose running sum exceeds it.
    pub(crate) fn partition_at(&self, r: u32) -> i32 {
        let i = self.cumulative.partition_point(|c| *c <= r);
        self.partitions[i.min(self.partitions.len() - 1)]
    }
}

/// The next sticky partition. With load stats (whose partitions still exist): weighted
/// by them, the current partition not avoided (as Java). Else a random partition among
/// `available` (all when empty), avoiding `not` when possible. `random(n)` draws from
/// `0..n`.
fn pick(
    partition_count: i32,
    available: &[i32],
    not: Option<i32>,
    load: Option<&LoadStats>,
    random: &mut dyn FnMut(u32) -> u32,
) -> i32 {
    if let Some(stats) = load {
        if stats.total() > 0 && stats.partitions.iter().all(|p| *p < partition_count) {
            return stats.partition_at(random(stats.total()));
        }
    }
    let draw = |random: &mut dyn FnMut(u32) -> u32, n: usize| random(n as u32) as usize;
    let candidates: Vec<i32> = if available.is_empty() {
        (0..partition_count).collect()
    } else {
        available.iter().copied().filter(|p| *p < partition_count).collect()
    };
    if candidates.is_empty() {
        return draw(random, partition_count.max(1) as usize) as i32;
    }
    if candidates.len() > 1 {
        if let Some(n) = not {
            let others: Vec<i32> = candidates.iter().copied().filter(|p| *p != n).collect();
            return others[draw(random, others.len())];
        }
    }
    candidates[draw(random, candidates.len())]
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

    /// Java's worked example: queues 0 3 1 give weights 4 1 3, running sums 4 5 8; draws
    /// 0..=3 pick the first partition, 4 the second, 5..=7 the third.
    #[test]
    fn load_stats_weigh_partitions_as_java_does() {
        let stats = LoadStats::from_queues(3, &[(0, 0), (1, 3), (2, 1)]).expect("unequal queues: adaptive");
        assert_eq!(stats.total(), 8);
        let picks: Vec<i32> = (0..8).map(|r| stats.partition_at(r)).collect();
        assert_eq!(picks, [0, 0, 0, 0, 1, 2, 2, 2]);
        // Through `pick` with an injected draw: the draw's range is the total weight and the
        // current partition is not avoided.
        for (r, want) in [(0, 0), (3, 0), (4, 1), (5, 2), (7, 2)] {
            let mut seen = None;
            let p = pick(3, &[0, 1, 2], Some(want), Some(&stats), &mut |n| {
                seen = Some(n);
                r
            });
            assert_eq!((p, seen), (want, Some(8)));
        }
    }

    #[test]
    fn load_stats_fall_back_to_uniform_as_java_does() {
        // Equal queues over every partition: nothing to adapt to.
        assert_eq!(LoadStats::from_queues(3, &[(0, 2), (1, 2), (2, 2)]), None);
        // A single partition, or none left to pick.
        assert_eq!(LoadStats::from_queues(1, &[(0, 5)]), None);
        assert_eq!(LoadStats::from_queues(3, &[]), None);
        // Equal queues, but a partition left out (no leader, or an unavailable broker):
        // adaptive still, over the others only.
        let stats = LoadStats::from_queues(3, &[(0, 1), (2, 1)]).expect("a partition was left out");
        assert_eq!((0..stats.total()).map(|r| stats.partition_at(r)).collect::<Vec<_>>(), [0, 2]);
        // Stats naming a partition the topic no longer has are ignored: uniform pick.
        let stale = LoadStats::from_queues(8, &[(7, 0), (0, 4)]).unwrap();
        assert_eq!(pick(3, &[0, 1, 2], None, Some(&stale), &mut |_| 1), 1);
    }

    /// Statistics over many real switches: two partitions with deep queues (weight 1 each
    /// of 22) get about 9% of the switches; the bound of 20% is over 20 standard
    /// deviations away, and the fast ones must each get a share near 45%.
    #[test]
    fn sticky_switches_favour_short_queues() {
        let s = StickyPartition::default();
        let avail = [0, 1, 2, 3];
        s.set_load(LoadStats::from_queues(4, &[(0, 0), (1, 0), (2, 9), (3, 9)]));
        assert!(s.load().is_some());
        let mut counts = [0u32; 4];
        const SWITCHES: u32 = 20_000;
        for _ in 0..SWITCHES {
            let p = s.partition(4, &avail);
            s.on_append(p, 2 * 100, false, 100, 4, &avail);
            counts[s.partition(4, &avail) as usize] += 1;
        }
        let slow = counts[2] + counts[3];
        assert!(slow < SWITCHES / 5, "slow partitions got {slow} of {SWITCHES} switches: {counts:?}");
        assert!(counts[0] > SWITCHES / 3 && counts[1] > SWITCHES / 3, "{counts:?}");
        // Cleared stats: uniform again (each partition near 25%, bound 15%).
        s.set_load(None);
        let mut counts = [0u32; 4];
        for _ in 0..SWITCHES {
            let p = s.partition(4, &avail);
            s.on_append(p, 2 * 100, false, 100, 4, &avail);
            counts[s.partition(4, &avail) as usize] += 1;
        }
        assert!(counts.iter().all(|c| *c > SWITCHES * 15 / 100), "{counts:?}");
    }
}
