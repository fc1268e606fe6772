//! The node table: every znode of a tree by path. A dense vector of (path, node) slots
//! with a hash index of slot numbers beside it, instead of a hash map holding the
//! nodes: a hash table is at most 7/8 full and doubles as it grows, so with ~120-byte
//! entries a map of 1M znodes sits in 2M slots (~250 MB per shard, all of it fresh
//! memory to fault in at a restart). Here the index costs 4 bytes per bucket and the
//! slots are exactly as many as the znodes (reserved up front when restoring).
//!
//! Removal moves the last slot into the hole (one index entry updated), so slot numbers
//! are not stable: nothing outside keeps them.
//!
//! Growing either part copies or rehashes every znode (about 160 ms at 1M znodes here).
//! The tree's owner does that work before it takes the writer flag (`prepare_room`,
//! while the other shards go on reading the table as it is) and only swaps the result
//! in under the flag (`install_room`), so readers never wait for a growth; the storage
//! it replaced is freed after the flag is down (`Retired`).
//!
//! A restore may put nodes in without indexing them (`push_unindexed`: their paths
//! known to be new) and index them all at once (`index_pending`), in the order of their
//! buckets: one index probe per node in hash order is a cache miss each (the index of
//! 1M znodes is ~10 MB), in bucket order it is a pass over the index. No lookup may
//! happen in between: every one asserts that nothing waits to be indexed.

use ahash::RandomState;
use hashbrown::HashTable;

use super::thin_path::ThinPath;
use super::Node;

/// A path's hash in one table, from [`NodeTable::get_mut_or_hash`].
pub struct PathHash(u64);

pub struct NodeTable {
    index: HashTable<u32>,
    slots: Vec<(ThinPath, Node)>,
    hasher: RandomState,
    /// Counts every change (and every `&mut` handed out): a `Room` prepared at one
    /// count is installed only at the same count.
    changes: u64,
    /// Counts removals: the only change that moves a slot.
    removals: u64,
    /// The hashes of the last slots, pushed by `push_unindexed` and not yet indexed.
    unindexed: Vec<u64>,
}

impl Clone for NodeTable {
    fn clone(&self) -> Self {
        assert!(self.unindexed.is_empty(), "{UNINDEXED}");
        NodeTable {
            index: self.index.clone(),
            slots: self.slots.clone(),
            hasher: self.hasher.clone(),
            changes: 0,
            removals: 0,
            unindexed: Vec::new(),
        }
    }
}

impl Default for NodeTable {
    fn default() -> Self {
        NodeTable {
            index: HashTable::new(),
            slots: Vec::new(),
            hasher: RandomState::new(),
            changes: 0,
            removals: 0,
            unindexed: Vec::new(),
        }
    }
}

const UNINDEXED: &str = "node table used with slots not yet indexed";

/// Bigger storage for a `NodeTable`, built from it without changing it (see the module
/// comment). `slots` holds a bitwise copy of the table's slots beyond its length 0: it
/// owns them only once installed, when the table's own buffer gives them up.
pub struct Room {
    index: Option<HashTable<u32>>,
    slots: Option<Vec<(ThinPath, Node)>>,
    len: usize,
    changes: u64,
}

/// The storage a growth replaced: giving its pages back to the system took 12-33 ms
/// here at 2-4M znodes (hundreds of MB), so the owner drops it after it lets go of the
/// writer flag, not under it (where reads on every other shard would wait for it).
#[must_use = "drop it outside the writer flag"]
pub struct Retired {
    _index: Option<HashTable<u32>>,
    /// Length 0: its nodes moved to the new buffer; dropping frees only the buffer.
    _slots: Option<Vec<(ThinPath, Node)>>,
}

impl Drop for Room {
    fn drop(&mut self) {
        // Not installed: the copies are the table's nodes, never to be dropped here
        // (`slots` has length 0, so dropping it frees only its buffer).
        if let Some(s) = &self.slots {
            debug_assert!(s.is_empty());
        }
    }
}

impl NodeTable {
    fn hash(&self, path: &str) -> u64 {
        self.hasher.hash_one(path)
    }

    fn find(&self, path: &str) -> Option<usize> {
        assert!(self.unindexed.is_empty(), "{UNINDEXED}");
        let slots = &self.slots;
        self.index
            .find(self.hash(path), |&i| &*slots[i as usize].0 == path)
            .map(|&i| i as usize)
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Storage with room for `extra` more znodes when either part lacks it, built
    /// without changing the table (readers on other cores may read it meanwhile).
    pub fn prepare_room(&self, extra: usize) -> Option<Room> {
        assert!(self.unindexed.is_empty(), "{UNINDEXED}");
        let len = self.slots.len();
        let want = (len + extra).max(len * 2);
        let index_short = self.index.capacity() - self.index.len() < extra;
        let slots_short = self.slots.capacity() - len < extra;
        if !index_short && !slots_short {
            return None;
        }
        let index = index_short.then(|| {
            let mut index = HashTable::with_capacity(want);
            let slots = &self.slots;
            let hasher = &self.hasher;
            for (i, (k, _)) in slots.iter().enumerate() {
                index.insert_unique(self.hash(k), i as u32, |&j| {
                    hasher.hash_one(&*slots[j as usize].0)
                });
            }
            index
        });
        let slots = slots_short.then(|| {
            let mut v: Vec<(ThinPath, Node)> = Vec::with_capacity(want);
            // SAFETY: `v` has room for `len` elements and does not overlap the
            // table's buffer. The copies stay beyond `v`'s length (0) until
            // `install_room` hands them over, so nothing is owned twice.
            unsafe { std::ptr::copy_nonoverlapping(self.slots.as_ptr(), v.as_mut_ptr(), len) };
            v
        });
        Some(Room {
            index,
            slots,
            len,
            changes: self.changes,
        })
    }

    /// Swaps in storage from `prepare_room`. The table must not have changed since.
    /// Hands back the storage it replaced, for the caller to free where no reader
    /// waits for it.
    pub fn install_room(&mut self, mut room: Room) -> Retired {
        assert!(
            room.changes == self.changes && room.len == self.slots.len(),
            "node table changed between prepare_room and install_room"
        );
        let mut retired = Retired {
            _index: None,
            _slots: None,
        };
        if let Some(index) = room.index.take() {
            assert_eq!(index.len(), self.index.len());
            retired._index = Some(std::mem::replace(&mut self.index, index));
        }
        if let Some(mut slots) = room.slots.take() {
            // SAFETY: `slots` holds a bitwise copy of every slot (unchanged since, as
            // checked above). It takes them over; the old buffer gives them up
            // without dropping them.
            unsafe {
                slots.set_len(room.len);
                let mut old = std::mem::replace(&mut self.slots, slots);
                old.set_len(0);
                retired._slots = Some(old);
            }
        }
        retired
    }

    pub fn reserve(&mut self, n: usize) {
        self.changes += 1;
        let slots = &self.slots;
        let hasher = &self.hasher;
        self.index
            .reserve(n, |&i| hasher.hash_one(&*slots[i as usize].0));
        self.slots.reserve_exact(n);
    }

    /// Znodes that fit in the slots without growing them.
    pub fn spare(&self) -> usize {
        self.slots.capacity() - self.slots.len()
    }

    pub fn contains_key(&self, path: &str) -> bool {
        self.find(path).is_some()
    }

    pub fn get(&self, path: &str) -> Option<&Node> {
        self.find(path).map(|i| &self.slots[i].1)
    }

    pub fn get_mut(&mut self, path: &str) -> Option<&mut Node> {
        self.changes += 1;
        self.find(path).map(|i| &mut self.slots[i].1)
    }

    /// Puts `node` at `path`, handing back the node it replaces.
    pub fn insert(&mut self, path: ThinPath, node: Node) -> Option<Node> {
        self.changes += 1;
        if let Some(i) = self.find(&path) {
            return Some(std::mem::replace(&mut self.slots[i].1, node));
        }
        let h = self.hash(&path);
        self.push_new(h, path, node);
        None
    }

    /// The node at `path`, or, when there is none, the path's hash for
    /// [`insert_absent`](Self::insert_absent): a restore looks each path up once.
    pub fn get_mut_or_hash(&mut self, path: &str) -> Result<&mut Node, PathHash> {
        assert!(self.unindexed.is_empty(), "{UNINDEXED}");
        self.changes += 1;
        let h = self.hash(path);
        let slots = &self.slots;
        match self.index.find(h, |&i| &*slots[i as usize].0 == path) {
            Some(&i) => Ok(&mut self.slots[i as usize].1),
            None => Err(PathHash(h)),
        }
    }

    /// Puts `node` at `path`, which `get_mut_or_hash` found absent (nothing has put
    /// that path in since: a second node at one path would shadow the first).
    pub fn insert_absent(&mut self, hash: PathHash, path: ThinPath, node: Node) {
        self.changes += 1;
        debug_assert!(
            self.find(&path).is_none(),
            "insert_absent of a present path"
        );
        self.push_new(hash.0, path, node);
    }

    /// The hash of `path` in this table, for [`push_unindexed`](Self::push_unindexed).
    pub fn path_hash(&self, path: &str) -> PathHash {
        PathHash(self.hash(path))
    }

    /// Puts `node` at `path` without indexing it: the caller knows no node has that
    /// path, in the index or among the unindexed ones (a second node at one path would
    /// shadow the first), and calls [`index_pending`](Self::index_pending) before any
    /// lookup.
    pub fn push_unindexed(&mut self, hash: PathHash, path: ThinPath, node: Node) {
        self.changes += 1;
        assert!(self.slots.len() < u32::MAX as usize, "node table full");
        self.slots.push((path, node));
        self.unindexed.push(hash.0);
    }

    /// Indexes the slots [`push_unindexed`](Self::push_unindexed) put in, in the order
    /// of the index buckets they start probing from, so that the inserts walk the index
    /// once instead of missing the cache each (see the module comment).
    pub fn index_pending(&mut self) {
        if self.unindexed.is_empty() {
            return;
        }
        let n = self.unindexed.len();
        let first = self.slots.len() - n;
        let slots = &self.slots;
        let hasher = &self.hasher;
        self.index
            .reserve(n, |&i| hasher.hash_one(&*slots[i as usize].0));
        // hashbrown starts a probe at `hash & (buckets - 1)` and keeps 7/8 of its
        // buckets usable; the order only speeds things up, any order is correct.
        let buckets = (self.index.capacity().saturating_mul(8) / 7)
            .max(1)
            .next_power_of_two() as u64;
        let mut order: Vec<(u64, u32)> = self
            .unindexed
            .iter()
            .enumerate()
            .map(|(k, &h)| (h & (buckets - 1), (first + k) as u32))
            .collect();
        order.sort_unstable_by_key(|&(bucket, _)| bucket);
        let unindexed = std::mem::take(&mut self.unindexed);
        for (_, i) in order {
            let h = unindexed[i as usize - first];
            self.index
                .insert_unique(h, i, |&j| hasher.hash_one(&*slots[j as usize].0));
        }
    }

    fn push_new(&mut self, h: u64, path: ThinPath, node: Node) {
        // The index holds u32 slot numbers; 4 billion znodes is far beyond any limit.
        assert!(self.slots.len() < u32::MAX as usize, "node table full");
        let i = self.slots.len() as u32;
        self.slots.push((path, node));
        let slots = &self.slots;
        let hasher = &self.hasher;
        self.index
            .insert_unique(h, i, |&j| hasher.hash_one(&*slots[j as usize].0));
    }

    /// Removals so far: a walk over slot numbers that saw none visited every slot.
    pub fn removals(&self) -> u64 {
        self.removals
    }

    pub fn remove(&mut self, path: &str) -> Option<Node> {
        assert!(self.unindexed.is_empty(), "{UNINDEXED}");
        self.changes += 1;
        self.removals += 1;
        let h = self.hash(path);
        let slots = &self.slots;
        let entry = self
            .index
            .find_entry(h, |&i| &*slots[i as usize].0 == path)
            .ok()?;
        let (i, _) = entry.remove();
        let i = i as usize;
        let last = self.slots.len() - 1;
        if i != last {
            // The last slot moves into the hole: point its index entry at `i`.
            let moved_hash = self.hash(&self.slots[last].0);
            let slot = self
                .index
                .find_mut(moved_hash, |&j| j as usize == last)
                .expect("every slot is indexed");
            *slot = i as u32;
        }
        Some(self.slots.swap_remove(i).1)
    }

    /// The node in slot `i` (slots are `0..len()`; a removal moves the last slot into
    /// the hole).
    pub fn slot_mut(&mut self, i: usize) -> Option<&mut Node> {
        self.changes += 1;
        self.slots.get_mut(i).map(|(_, n)| n)
    }

    pub fn values(&self) -> impl Iterator<Item = &Node> {
        self.slots.iter().map(|(_, n)| n)
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.slots.iter().map(|(k, _)| &**k)
    }
}

/// For tests only: code that serves clients looks nodes up with `get`.
#[cfg(test)]
impl std::ops::Index<&str> for NodeTable {
    type Output = Node;
    fn index(&self, path: &str) -> &Node {
        self.get(path).expect("no such node")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::{AclId, NodeData, StatPersisted};

    fn node(v: i32) -> Node {
        let mut n = Node::new(NodeData::empty(), AclId::OPEN, StatPersisted::default());
        n.stat.version = v;
        n
    }

    #[test]
    fn behaves_like_a_map_under_random_changes() {
        let mut t = NodeTable::default();
        let mut model = std::collections::HashMap::new();
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for step in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = format!("/k{}", x % 500);
            if x.is_multiple_of(3) {
                assert_eq!(
                    t.remove(&key).map(|n| n.stat.version),
                    model.remove(&key),
                    "{step}"
                );
            } else {
                assert_eq!(
                    t.insert(key.as_str().into(), node(step))
                        .map(|n| n.stat.version),
                    model.insert(key, step)
                );
            }
            assert_eq!(t.len(), model.len());
        }
        for (k, v) in &model {
            assert_eq!(t.get(k).map(|n| n.stat.version), Some(*v));
        }
        assert_eq!(t.keys().count(), model.len());
        assert!(t.get("/nope").is_none());
    }

    /// Growing through a prepared room keeps every node, and the room's copies are
    /// owned once: by the table after the install, by nobody if it is dropped.
    #[test]
    fn a_prepared_room_keeps_every_node_and_owns_them_once() {
        let mut t = NodeTable::default();
        for i in 0..1000 {
            t.insert(format!("/k{i}").as_str().into(), node(i));
            if let Some(room) = t.prepare_room(8) {
                if i % 2 == 0 {
                    let _ = t.install_room(room);
                } else {
                    drop(room);
                }
            }
        }
        for i in 0..1000 {
            assert_eq!(t.get(&format!("/k{i}")).map(|n| n.stat.version), Some(i));
        }
        let room = t.prepare_room(1 << 12).expect("short of room");
        drop(t.install_room(room));
        assert!(t.prepare_room(1 << 11).is_none());
        for i in 0..1000 {
            assert!(t.remove(&format!("/k{i}")).is_some());
        }
        assert_eq!(t.len(), 0);
    }

    /// Nodes put in unindexed are found once indexed, among indexed ones and after a
    /// growth of the index; a lookup before that is refused.
    #[test]
    fn unindexed_nodes_are_found_once_indexed() {
        let mut t = NodeTable::default();
        t.insert("/a".into(), node(0));
        for round in 0..3 {
            for i in 0..5000 {
                let p = format!("/r{round}/{i}");
                let h = t.path_hash(&p);
                t.push_unindexed(h, p.as_str().into(), node(i));
            }
            t.index_pending();
            t.index_pending();
        }
        assert_eq!(t.len(), 15_001);
        for round in 0..3 {
            for i in 0..5000 {
                let got = t.get(&format!("/r{round}/{i}")).map(|n| n.stat.version);
                assert_eq!(got, Some(i));
            }
        }
        assert!(t.remove("/r1/7").is_some());
        assert!(t.get("/r1/7").is_none());
        assert_eq!(t.get("/a").map(|n| n.stat.version), Some(0));
    }

    #[test]
    #[should_panic(expected = "not yet indexed")]
    fn a_lookup_with_nodes_unindexed_is_refused() {
        let mut t = NodeTable::default();
        let h = t.path_hash("/a");
        t.push_unindexed(h, "/a".into(), node(1));
        let _ = t.get("/a");
    }

    #[test]
    #[should_panic(expected = "changed between")]
    fn a_room_is_not_installed_over_a_change() {
        let mut t = NodeTable::default();
        t.insert("/a".into(), node(1));
        let room = t.prepare_room(1 << 10).unwrap();
        t.insert("/b".into(), node(2));
        drop(t.install_room(room));
    }
}
