//! ZooKeeper's `ReferenceCountedACLCache`: every distinct ACL list is stored once and
//! nodes hold a small id. Most trees use a handful of ACL lists for millions of nodes,
//! so this keeps a znode to four bytes of ACL instead of a vector of strings.

use std::collections::HashMap;
use std::sync::Arc;

use crate::proto::{perms, Acl, Id};

/// A node's handle on its ACL list. `OPEN` is ZooKeeper's `-1`: the implicit
/// `OPEN_ACL_UNSAFE` the built-in nodes carry, which is not reference counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AclId(pub(crate) u32);

impl AclId {
    pub const OPEN: AclId = AclId(u32::MAX);
}

/// `world:anyone` with every permission.
pub fn open_acl_unsafe() -> Vec<Acl> {
    vec![Acl {
        perms: perms::ALL,
        id: Id {
            scheme: "world".into(),
            id: "anyone".into(),
        },
    }]
}

/// `world:anyone` with READ only.
pub fn read_acl_unsafe() -> Vec<Acl> {
    vec![Acl {
        perms: perms::READ,
        id: Id {
            scheme: "world".into(),
            id: "anyone".into(),
        },
    }]
}

#[derive(Debug, Clone)]
pub struct AclCache {
    by_id: HashMap<u32, (Arc<[Acl]>, u64)>,
    by_acl: HashMap<Arc<[Acl]>, u32>,
    /// `aclIndex`: ids are never reused, as in ZooKeeper.
    next: u32,
    open: Arc<[Acl]>,
}

impl Default for AclCache {
    fn default() -> Self {
        Self::new()
    }
}

impl AclCache {
    pub fn new() -> Self {
        AclCache {
            by_id: HashMap::new(),
            by_acl: HashMap::new(),
            next: 0,
            open: open_acl_unsafe().into(),
        }
    }

    /// `convertAcls`: the id of `acl`, interning it, with one more reference.
    pub fn intern(&mut self, acl: &[Acl]) -> AclId {
        if let Some(&id) = self.by_acl.get(acl) {
            if let Some(e) = self.by_id.get_mut(&id) {
                e.1 += 1;
            }
            return AclId(id);
        }
        self.next = self.next.wrapping_add(1);
        if self.next == u32::MAX {
            self.next = 1;
        }
        let id = self.next;
        let list: Arc<[Acl]> = acl.into();
        self.by_acl.insert(list.clone(), id);
        self.by_id.insert(id, (list, 1));
        AclId(id)
    }

    /// Every interned list with its reference count.
    #[cfg(test)]
    pub(crate) fn by_id_for_tests(&self) -> impl Iterator<Item = (&Arc<[Acl]>, u64)> {
        self.by_id.values().map(|(l, c)| (l, *c))
    }

    /// One more reference to a list already interned as `id`.
    pub fn add_usage(&mut self, id: AclId) {
        if let Some(e) = self.by_id.get_mut(&id.0) {
            e.1 += 1;
        }
    }

    /// `removeUsage`: drops one reference, forgetting the list at zero.
    pub fn release(&mut self, id: AclId) {
        if id == AclId::OPEN {
            return;
        }
        let gone = match self.by_id.get_mut(&id.0) {
            Some(e) => {
                e.1 = e.1.saturating_sub(1);
                e.1 == 0
            }
            None => false,
        };
        if gone {
            if let Some((list, _)) = self.by_id.remove(&id.0) {
                self.by_acl.remove(&list);
            }
        }
    }

    /// `convertLong`.
    pub fn get(&self, id: AclId) -> &Arc<[Acl]> {
        if id == AclId::OPEN {
            return &self.open;
        }
        match self.by_id.get(&id.0) {
            Some((list, _)) => list,
            // Cannot happen while nodes hold their references; an open list is the
            // least surprising answer and never panics.
            None => &self.open,
        }
    }

    /// Every counted list with its id, sorted by id: ZooKeeper's `longKeyMap`, which a
    /// SNAP stream lists ahead of the nodes that refer to it by id.
    pub fn entries(&self) -> Vec<(AclId, &Arc<[Acl]>)> {
        let mut v: Vec<(AclId, &Arc<[Acl]>)> = self
            .by_id
            .iter()
            .map(|(id, (l, _))| (AclId(*id), l))
            .collect();
        v.sort_unstable_by_key(|(id, _)| id.0);
        v
    }

    /// `aclCacheSize`: distinct counted lists.
    pub fn len(&self) -> usize {
        self.by_acl.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_acl.is_empty()
    }
}

impl super::DataTree {
    /// The ACL cache, read-only (the SNAP writer lists its entries).
    pub fn acl_cache(&self) -> &AclCache {
        &self.acls
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_lists_share_one_entry_and_are_counted() {
        let mut c = AclCache::new();
        let a = c.intern(&open_acl_unsafe());
        let b = c.intern(&open_acl_unsafe());
        assert_eq!(a, b);
        let r = c.intern(&read_acl_unsafe());
        assert_ne!(a, r);
        assert_eq!(c.len(), 2);
        c.release(a);
        assert_eq!(c.len(), 2);
        c.release(b);
        assert_eq!(c.len(), 1);
        assert_eq!(&**c.get(r), &read_acl_unsafe()[..]);
        // A new list gets a fresh id, never a reused one.
        let a2 = c.intern(&open_acl_unsafe());
        assert_ne!(a2, a);
    }

    #[test]
    fn open_is_not_counted() {
        let mut c = AclCache::new();
        c.release(AclId::OPEN);
        assert_eq!(&**c.get(AclId::OPEN), &open_acl_unsafe()[..]);
        assert!(c.is_empty());
    }
}
