//! `ChildSet`: a znode's child names, sorted, in chunks of at most [`CHUNK`] names.
//!
//! Why not a `BTreeSet<ChildName>`: children are mostly created in ascending order
//! (sequential znodes, numbered keys, a snapshot's sorted siblings), and a B-tree
//! splits a full leaf in half at each append at its end, so its leaves stay ~55-60 %
//! full: ~27 bytes per 16-byte name. Here an append past the last name of a full last
//! chunk starts a new chunk and leaves the full one full (~16.4 bytes per name); an
//! insert into the middle of a full chunk splits it in halves, as a B-tree does. A set
//! of a few names is one small vector (a B-tree leaf has 11 slots from the first name).
//!
//! Lookups binary-search the chunks by their last names, then the chunk. A chunk left
//! below a quarter full by removals is merged into a neighbour when they fit in one,
//! and gives back capacity it no longer needs, so a set that shrinks shrinks in memory.
//! The order is the byte order of the names, as `ChildName`'s, so a snapshot walk can
//! resume after the last name it visited ([`ChildSet::after`]).

use std::collections::VecDeque;

use super::child_name::ChildName;

/// Names per chunk at most: a full chunk is one 1 KiB allocation.
pub const CHUNK: usize = 64;

#[derive(Debug, Default, Clone)]
pub struct ChildSet {
    /// Non-empty chunks, each sorted, each chunk's names after the previous chunk's. A
    /// deque: deleting a wide node's children in order empties its first chunks.
    chunks: VecDeque<Vec<ChildName>>,
    len: usize,
}

impl ChildSet {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The chunk that holds `name`, or where it would go: the first whose last name is
    /// not below it, else the last chunk. None when the set is empty.
    fn chunk_for(&self, name: &str) -> Option<usize> {
        if self.chunks.is_empty() {
            return None;
        }
        let i = self
            .chunks
            .partition_point(|c| c.last().is_some_and(|l| &**l < name));
        Some(i.min(self.chunks.len() - 1))
    }

    #[cfg(test)]
    fn contains(&self, name: &str) -> bool {
        self.chunk_for(name).is_some_and(|ci| {
            self.chunks[ci]
                .binary_search_by(|x| (**x).cmp(name))
                .is_ok()
        })
    }

    /// Adds `name`; false (and nothing changes) if it is there already.
    pub fn insert(&mut self, name: ChildName) -> bool {
        // Past the last name: the common case (sequential znodes, numbered keys, a
        // snapshot's sorted siblings), one comparison instead of two searches.
        if let Some(last) = self.chunks.back_mut() {
            if last.last().is_some_and(|l| **l < *name) {
                self.len += 1;
                if last.len() < CHUNK {
                    grow(last);
                    last.push(name);
                } else {
                    self.chunks.push_back(vec![name]);
                }
                return true;
            }
        }
        let Some(ci) = self.chunk_for(&name) else {
            self.chunks.push_back(vec![name]);
            self.len = 1;
            return true;
        };
        let last = self.chunks.len() - 1;
        let chunk = &mut self.chunks[ci];
        let at = match chunk.binary_search_by(|x| (**x).cmp(&*name)) {
            Ok(_) => return false,
            Err(at) => at,
        };
        self.len += 1;
        if chunk.len() < CHUNK {
            grow(chunk);
            chunk.insert(at, name);
            return true;
        }
        if at == CHUNK && ci == last {
            // Past the last name of the set: a new chunk, and the full one stays full.
            self.chunks.push_back(vec![name]);
            return true;
        }
        let mut right = chunk.split_off(CHUNK / 2);
        if at <= CHUNK / 2 {
            chunk.insert(at, name);
        } else {
            grow(&mut right);
            right.insert(at - CHUNK / 2, name);
        }
        self.chunks.insert(ci + 1, right);
        true
    }

    /// Removes `name`; false if it is not there.
    pub fn remove(&mut self, name: &str) -> bool {
        let Some(ci) = self.chunk_for(name) else {
            return false;
        };
        let chunk = &mut self.chunks[ci];
        let Ok(at) = chunk.binary_search_by(|x| (**x).cmp(name)) else {
            return false;
        };
        chunk.remove(at);
        self.len -= 1;
        if chunk.is_empty() {
            self.chunks.remove(ci);
            if self.chunks.is_empty() {
                self.chunks = VecDeque::new();
            }
            return true;
        }
        if chunk.len() < CHUNK / 4 {
            self.merge_small(ci);
        }
        true
    }

    /// Chunk `ci` is below a quarter full: into a neighbour if the two fit in one, else
    /// it gives back the capacity it no longer needs.
    fn merge_small(&mut self, ci: usize) {
        let n = self.chunks[ci].len();
        if ci + 1 < self.chunks.len() && n + self.chunks[ci + 1].len() <= CHUNK {
            let next = self.chunks.remove(ci + 1).expect("a next chunk");
            self.chunks[ci].reserve_exact(next.len());
            self.chunks[ci].extend(next);
        } else if ci > 0 && self.chunks[ci - 1].len() + n <= CHUNK {
            let this = self.chunks.remove(ci).expect("this chunk");
            self.chunks[ci - 1].reserve_exact(this.len());
            self.chunks[ci - 1].extend(this);
        } else {
            // Halving the room only when a quarter is used: one reallocation per
            // halving, not one per removal.
            let c = &mut self.chunks[ci];
            if c.capacity() > 4 * c.len() {
                c.shrink_to(2 * c.len());
            }
        }
    }

    /// Every name, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &ChildName> {
        self.chunks.iter().flatten()
    }

    /// The names after `after` (all of them for None), sorted.
    pub fn after(&self, after: Option<&str>) -> impl Iterator<Item = &ChildName> {
        let (ci, start) = match after {
            None => (0, 0),
            Some(a) => {
                let ci = self
                    .chunks
                    .partition_point(|c| c.last().is_some_and(|l| &**l <= a));
                let start = self
                    .chunks
                    .get(ci)
                    .map_or(0, |c| c.partition_point(|x| &**x <= a));
                (ci, start)
            }
        };
        let first = self.chunks.get(ci).map_or(&[][..], |c| &c[start..]);
        let rest = self.chunks.range((ci + 1).min(self.chunks.len())..);
        first.iter().chain(rest.flatten())
    }
}

/// Room for one more name in a chunk below [`CHUNK`]: doubling, but never past it
/// (`Vec`'s own growth would take a chunk of 48 to 96).
fn grow(chunk: &mut Vec<ChildName>) {
    if chunk.len() == chunk.capacity() {
        chunk.reserve_exact(chunk.len().clamp(1, CHUNK - chunk.len()));
    }
}

impl Extend<ChildName> for ChildSet {
    fn extend<I: IntoIterator<Item = ChildName>>(&mut self, names: I) {
        for name in names {
            self.insert(name);
        }
    }
}

impl FromIterator<ChildName> for ChildSet {
    fn from_iter<I: IntoIterator<Item = ChildName>>(names: I) -> ChildSet {
        let mut set = ChildSet::default();
        set.extend(names);
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use std::collections::BTreeSet;

    fn check(set: &ChildSet, model: &BTreeSet<String>) {
        assert_eq!(set.len(), model.len());
        let got: Vec<&str> = set.iter().map(|n| &**n).collect();
        let want: Vec<&str> = model.iter().map(String::as_str).collect();
        assert_eq!(got, want);
        for c in &set.chunks {
            assert!(!c.is_empty() && c.len() <= CHUNK, "chunk of {}", c.len());
        }
    }

    /// Random inserts and removes (short and long names, duplicates, absent names)
    /// against a BTreeSet: same contents, same order, `after` from every kind of key.
    #[test]
    fn random_operations_match_a_btreeset() {
        for seed in 1..40u64 {
            // Seeded, so a failure replays.
            let mut rng = StdRng::seed_from_u64(seed);
            let mut set = ChildSet::default();
            let mut model = BTreeSet::new();
            let space = rng.gen_range(1..=2000u64);
            for _ in 0..3000 {
                let k = rng.gen_range(0..space);
                let name = if k.is_multiple_of(7) {
                    format!("a-rather-long-child-name-{k:06}")
                } else {
                    format!("n{k:05}")
                };
                if rng.gen_ratio(1, 3) {
                    assert_eq!(set.remove(&name), model.remove(&name), "{name}");
                } else {
                    assert_eq!(
                        set.insert(ChildName::new(&name)),
                        model.insert(name.clone())
                    );
                }
                assert_eq!(set.contains(&name), model.contains(&name));
            }
            check(&set, &model);
            for probe in ["", "a", "n00000", "n00999", "n0100", "zzz"]
                .into_iter()
                .map(String::from)
                .chain(model.iter().step_by(17).cloned())
            {
                let got: Vec<&str> = set.after(Some(&probe)).map(|n| &**n).collect();
                let want: Vec<&str> = model
                    .range::<str, _>((
                        std::ops::Bound::Excluded(probe.as_str()),
                        std::ops::Bound::Unbounded,
                    ))
                    .map(String::as_str)
                    .collect();
                assert_eq!(got, want, "after {probe:?}");
            }
            // Remove everything: the set ends empty and holds no chunk.
            for name in model.iter() {
                assert!(set.remove(name));
            }
            assert!(set.is_empty() && set.chunks.is_empty());
            assert!(set.after(Some("x")).next().is_none());
        }
    }

    /// Names appended in order fill every chunk but the last; inserts in the middle
    /// split, removals merge: the chunk count stays near the minimum.
    #[test]
    fn ascending_appends_leave_full_chunks() {
        let mut set = ChildSet::default();
        for i in 0..10_000 {
            assert!(set.insert(ChildName::new(&format!("n{i:06}"))));
        }
        assert_eq!(set.chunks.len(), 10_000usize.div_ceil(CHUNK));
        assert!(set
            .chunks
            .range(..set.chunks.len() - 1)
            .all(|c| c.len() == CHUNK));
        // Sorted input in bulk (a snapshot's siblings) does the same.
        let bulk: ChildSet = (0..1000)
            .map(|i| ChildName::new(&format!("b{i:04}")))
            .collect();
        assert_eq!(bulk.chunks.len(), 1000usize.div_ceil(CHUNK));
        // Remove all but every 50th: chunks merge back.
        for i in 0..10_000 {
            if i % 50 != 0 {
                assert!(set.remove(&format!("n{i:06}")));
            }
        }
        assert_eq!(set.len(), 200);
        assert!(
            set.chunks.len() <= 200 / (CHUNK / 4) + 2,
            "{}",
            set.chunks.len()
        );
        assert!(set.chunks.iter().all(|c| c.capacity() <= CHUNK));
    }
}

#[cfg(test)]
mod speed {
    use super::*;
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    use std::collections::BTreeSet;
    use std::time::Instant;

    /// Times inserts, lookups and removes in one wide set against a BTreeSet (printed,
    /// not asserted: speed lives in benchmarks). `cargo test --release --lib
    /// tree::child_set::speed -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn wide_set_speed() {
        let n = 1_000_000u64;
        let names: Vec<String> = (0..n).map(|i| format!("n{i:07}")).collect();
        // A fixed permutation of the names, for random-order inserts and removes.
        let mut order: Vec<usize> = (0..n as usize).collect();
        order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(1));
        for (label, seq) in [("ascending", false), ("random", true)] {
            let pick = |i: usize| &names[if seq { order[i] } else { i }];
            let t = Instant::now();
            let mut b = BTreeSet::new();
            for i in 0..n as usize {
                b.insert(ChildName::new(pick(i)));
            }
            let bt_ins = t.elapsed();
            let t = Instant::now();
            let mut c = ChildSet::default();
            for i in 0..n as usize {
                c.insert(ChildName::new(pick(i)));
            }
            let cs_ins = t.elapsed();
            let t = Instant::now();
            let bt_iter: usize = b.iter().map(|n| n.len()).sum();
            let bt_it = t.elapsed();
            let t = Instant::now();
            let cs_iter: usize = c.iter().map(|n| n.len()).sum();
            let cs_it = t.elapsed();
            assert_eq!(bt_iter, cs_iter);
            let t = Instant::now();
            for i in 0..n as usize {
                b.remove(&**pick(i));
            }
            let bt_rm = t.elapsed();
            let t = Instant::now();
            for i in 0..n as usize {
                c.remove(pick(i));
            }
            let cs_rm = t.elapsed();
            println!(
                "{label}: insert {bt_ins:?} (BTreeSet) vs {cs_ins:?}; iterate {bt_it:?} vs {cs_it:?}; remove {bt_rm:?} vs {cs_rm:?}"
            );
        }
    }
}
