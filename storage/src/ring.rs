//! The consistent-hash ring that places short codes on Redis shards (API_CONTRACT.md §9):
//! MD5, 150 virtual nodes per shard, shard ids `shard0..N` in `REDIS_SHARDS` order, and a
//! clockwise walk for failover.

use md5::{Digest, Md5};

pub const VIRTUAL_NODES: usize = 150;

fn point(key: &str) -> u128 {
    u128::from_be_bytes(Md5::digest(key.as_bytes()).into())
}

/// Ring positions of `shard0..N`.
#[derive(Debug, Clone)]
pub struct HashRing {
    points: Vec<(u128, usize)>,
    shards: usize,
}

impl HashRing {
    /// A ring of `shards` shards; virtual node `i` of shard `s` sits at `md5("shard{s}:{i}")`.
    #[must_use]
    pub fn new(shards: usize) -> Self {
        let mut points: Vec<(u128, usize)> = (0..shards)
            .flat_map(|s| (0..VIRTUAL_NODES).map(move |i| (point(&format!("shard{s}:{i}")), s)))
            .collect();
        points.sort_unstable();
        Self { points, shards }
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.shards
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.shards == 0
    }

    /// The shards in the order a key tries them: its owner first, then clockwise, each once.
    #[must_use]
    pub fn preference(&self, key: &str) -> Vec<usize> {
        if self.points.is_empty() {
            return Vec::new();
        }
        let h = point(key);
        let start = self.points.partition_point(|(p, _)| *p < h) % self.points.len();
        let mut order = Vec::with_capacity(self.shards);
        for k in 0..self.points.len() {
            let shard = self.points[(start + k) % self.points.len()].1;
            if !order.contains(&shard) {
                order.push(shard);
                if order.len() == self.shards {
                    break;
                }
            }
        }
        order
    }

    /// The shard that owns `key`.
    #[must_use]
    pub fn owner(&self, key: &str) -> Option<usize> {
        self.preference(key).first().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_an_owner_and_a_full_failover_order() {
        let ring = HashRing::new(3);
        for key in ["a", "d5DnL5", "KZ6mAC", "zzzzzz"] {
            let order = ring.preference(key);
            assert_eq!(order.len(), 3);
            let mut sorted = order.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, vec![0, 1, 2]);
            assert_eq!(ring.owner(key), Some(order[0]));
        }
    }

    #[test]
    fn keys_spread_over_shards() {
        let ring = HashRing::new(3);
        let mut counts = [0usize; 3];
        for i in 0..3000 {
            counts[ring.owner(&format!("code{i}")).unwrap()] += 1;
        }
        for c in counts {
            assert!(c > 700, "uneven spread: {counts:?}");
        }
    }

    #[test]
    fn adding_a_shard_moves_only_a_fraction_of_keys() {
        let (three, four) = (HashRing::new(3), HashRing::new(4));
        let moved = (0..2000)
            .filter(|i| three.owner(&format!("k{i}")) != four.owner(&format!("k{i}")))
            .count();
        assert!(moved < 800, "{moved} of 2000 keys moved");
    }

    #[test]
    fn an_empty_ring_owns_nothing() {
        assert_eq!(HashRing::new(0).owner("x"), None);
    }
}
