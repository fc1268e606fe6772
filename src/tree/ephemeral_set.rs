//! A session's ephemeral paths, remembering enough to list them in the order ZooKeeper
//! deletes them when the session closes. ZooKeeper deletes in the iteration order of
//! `new ArrayList<>(ephemerals.get(session).clone())`: a Java `HashSet<String>` whose
//! order follows `String.hashCode` and the table sizes, which depend on the set's
//! history. Clients see that order in their NodeDeleted events, so we reproduce it.

use ahash::AHashMap as HashMap;

#[derive(Debug, Clone, Default)]
pub struct EphemeralSet {
    /// Path -> insertion sequence (Java's bucket lists keep insertion order).
    seq: HashMap<Box<str>, u64>,
    next: u64,
    /// The largest size the set ever had: a Java table grows and never shrinks.
    max_len: usize,
}

impl EphemeralSet {
    pub fn insert(&mut self, path: Box<str>) -> bool {
        if self.seq.contains_key(&path) {
            return false;
        }
        self.seq.insert(path, self.next);
        self.next += 1;
        self.max_len = self.max_len.max(self.seq.len());
        true
    }

    pub fn remove(&mut self, path: &str) -> bool {
        self.seq.remove(path).is_some()
    }

    pub fn len(&self) -> usize {
        self.seq.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.seq.keys().map(|p| &**p)
    }

    /// The paths in the order Java iterates a clone of this set (`HashSet.clone()`
    /// re-inserts the entries, in the original's order, into a table sized for them).
    pub fn java_clone_order(&self) -> Vec<String> {
        let orig_cap = original_capacity(self.max_len);
        let mut v: Vec<(u32, u64, &str)> = self
            .seq
            .iter()
            .map(|(p, &s)| (spread(java_string_hash(p)), s, &**p))
            .collect();
        v.sort_by_key(|&(h, s, _)| (h & (orig_cap - 1), s));
        let clone_cap = clone_capacity(v.len());
        v.sort_by_key(|&(h, _, _)| h & (clone_cap - 1)); // stable: keeps the original order
        v.into_iter().map(|(_, _, p)| p.to_string()).collect()
    }
}

/// `String.hashCode`: over UTF-16 code units, wrapping.
fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, u| h.wrapping_mul(31).wrapping_add(u as i32))
}

/// `HashMap.hash`: the high half folded into the low half.
fn spread(h: i32) -> u32 {
    let h = h as u32;
    h ^ (h >> 16)
}

/// The table of a default `HashSet` that once held `max_len` entries: 16, doubled
/// whenever the size exceeds 3/4 of it.
fn original_capacity(max_len: usize) -> u32 {
    let mut cap: u32 = 16;
    while max_len > (cap as usize) * 3 / 4 {
        cap *= 2;
    }
    cap
}

/// The table `HashMap.putMapEntries` gives a fresh copy of `s` entries (JDK 17:
/// `tableSizeFor((int) (s / 0.75f + 1.0f))`).
fn clone_capacity(s: usize) -> u32 {
    let t = (s as f32 / 0.75f32 + 1.0f32) as u32;
    t.max(1).next_power_of_two()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_hash_matches_java() {
        // Values printed by `"...".hashCode()` on a JVM.
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("/zookeeper"), 954_481_661);
        assert_eq!(java_string_hash("hello"), 99_162_322);
        assert_eq!(java_string_hash("/s18/b"), 1_453_290_142);
        assert_eq!(java_string_hash("é/ü"), 225_622);
    }

    #[test]
    fn capacities_follow_hashmap() {
        assert_eq!(original_capacity(0), 16);
        assert_eq!(original_capacity(12), 16);
        assert_eq!(original_capacity(13), 32);
        assert_eq!(clone_capacity(1), 2);
        assert_eq!(clone_capacity(5), 8);
        assert_eq!(clone_capacity(12), 32);
    }

    #[test]
    fn clone_order_matches_a_jvm_after_growth_and_removals() {
        // Printed by OpenJDK 17: a HashSet grown to 16 entries, 11 removed, cloned, listed.
        let mut s = EphemeralSet::default();
        s.insert("/s18/b".into());
        s.insert("/s18/a00000000000000000004/a0000000000".into());
        for i in 1..=14 {
            s.insert(format!("/x/{i}").into());
        }
        for i in 3..14 {
            s.remove(&format!("/x/{i}"));
        }
        assert_eq!(
            s.java_clone_order(),
            vec![
                "/s18/b",
                "/s18/a00000000000000000004/a0000000000",
                "/x/2",
                "/x/14",
                "/x/1"
            ]
        );
    }

    #[test]
    fn order_is_by_bucket_then_insertion() {
        let mut s = EphemeralSet::default();
        for p in ["/b", "/a", "/c"] {
            s.insert(p.into());
        }
        let order = s.java_clone_order();
        assert_eq!(order.len(), 3);
        // Single characters after "/": hashes 47*31 + c, consecutive buckets.
        assert_eq!(order, vec!["/a", "/b", "/c"]);
    }
}
