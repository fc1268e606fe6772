//! The node table: every znode of a tree by path. A dense vector of (path, node) slots
//! with a hash index of slot numbers beside it, instead of a hash map holding the
//! nodes: a hash table is at most 7/8 full and doubles as it grows, so with ~120-byte
//! entries a map of 1M znodes sits in 2M slots (~250 MB per shard, all of it fresh
//! memory to fault in at a restart). Here the index costs 4 bytes per bucket and the
//! slots are exactly as many as the znodes (reserved up front when restoring).
//!
//! Removal moves the last slot into the hole (one index entry updated), so slot numbers
//! are not stable: nothing outside keeps them.

use ahash::RandomState;
use hashbrown::HashTable;

use super::Node;

pub struct NodeTable {
    index: HashTable<u32>,
    slots: Vec<(Box<str>, Node)>,
    hasher: RandomState,
}

impl Clone for NodeTable {
    fn clone(&self) -> Self {
        NodeTable {
            index: self.index.clone(),
            slots: self.slots.clone(),
            hasher: self.hasher.clone(),
        }
    }
}

impl Default for NodeTable {
    fn default() -> Self {
        NodeTable {
            index: HashTable::new(),
            slots: Vec::new(),
            hasher: RandomState::new(),
        }
    }
}

impl NodeTable {
    fn hash(&self, path: &str) -> u64 {
        self.hasher.hash_one(path)
    }

    fn find(&self, path: &str) -> Option<usize> {
        let slots = &self.slots;
        self.index
            .find(self.hash(path), |&i| &*slots[i as usize].0 == path)
            .map(|&i| i as usize)
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn reserve(&mut self, n: usize) {
        let slots = &self.slots;
        let hasher = &self.hasher;
        self.index
            .reserve(n, |&i| hasher.hash_one(&*slots[i as usize].0));
        self.slots.reserve_exact(n);
    }

    pub fn contains_key(&self, path: &str) -> bool {
        self.find(path).is_some()
    }

    pub fn get(&self, path: &str) -> Option<&Node> {
        self.find(path).map(|i| &self.slots[i].1)
    }

    pub fn get_mut(&mut self, path: &str) -> Option<&mut Node> {
        self.find(path).map(|i| &mut self.slots[i].1)
    }

    /// Puts `node` at `path`, handing back the node it replaces.
    pub fn insert(&mut self, path: Box<str>, node: Node) -> Option<Node> {
        if let Some(i) = self.find(&path) {
            return Some(std::mem::replace(&mut self.slots[i].1, node));
        }
        // The index holds u32 slot numbers; 4 billion znodes is far beyond any limit.
        assert!(self.slots.len() < u32::MAX as usize, "node table full");
        let i = self.slots.len() as u32;
        let h = self.hash(&path);
        self.slots.push((path, node));
        let slots = &self.slots;
        let hasher = &self.hasher;
        self.index
            .insert_unique(h, i, |&j| hasher.hash_one(&*slots[j as usize].0));
        None
    }

    pub fn remove(&mut self, path: &str) -> Option<Node> {
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
        self.slots.get_mut(i).map(|(_, n)| n)
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
    use crate::tree::{AclId, StatPersisted};
    use bytes::Bytes;

    fn node(v: i32) -> Node {
        let mut n = Node::new(Bytes::new(), AclId::OPEN, StatPersisted::default());
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
                    t.insert(key.clone().into(), node(step))
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
}
