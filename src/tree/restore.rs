//! Walking the tree for a snapshot and rebuilding it from one. A snapshot stores each
//! znode's `StatPersisted` verbatim (the raw child create count as `cversion`), so a
//! restored tree answers exactly as the one that was saved.

use std::sync::Arc;

use bytes::Bytes;

use ahash::AHashMap as HashMap;

use super::acl_cache::AclId;
use super::node_table::PathHash;
use super::quota::{LIMIT_NODE, QUOTA_ZOOKEEPER};
use super::{
    java_len, split_path, ChildName, DataTree, EphemeralType, Node, NodeData, StatPersisted,
};
use crate::proto::{Acl, ErrorCode};

impl DataTree {
    /// Visits every znode, each parent before its children.
    pub fn for_each_node(&self, mut f: impl FnMut(&str, &Node, &Arc<[Acl]>)) {
        let mut stack: Vec<String> = vec!["/".to_string()];
        while let Some(path) = stack.pop() {
            let Some(node) = self.nodes.get(path.as_str()) else {
                continue;
            };
            f(&path, node, self.acl(node));
            for child in node.children() {
                let p = if path == "/" {
                    format!("/{child}")
                } else {
                    format!("{path}/{child}")
                };
                stack.push(p);
            }
        }
    }

    /// Puts back one znode read from a snapshot, after its parent (see [`Restorer`]).
    pub fn restore_node(
        &mut self,
        path: &str,
        data: &[u8],
        acl: &[Acl],
        stat: StatPersisted,
    ) -> Result<AclId, ErrorCode> {
        let mut r = Restorer::new(self);
        let id = r.intern_acl(acl);
        r.node(path, data, id, stat)?;
        r.finish();
        Ok(id)
    }

    /// Gives znode data that still lies in the mapped snapshot a restore pointed it
    /// into its own copy, for the nodes in slots `from..from + budget` of the node
    /// table. Returns the next slot (`None` at the end of the table) and how many were
    /// moved. Slots shift when nodes are removed, so the caller repeats passes until one
    /// moves nothing, then calls [`release_mapping`](Self::release_mapping).
    pub fn rehome_data_step(&mut self, from: usize, budget: usize) -> (Option<usize>, usize) {
        let to = from.saturating_add(budget).min(self.nodes.len());
        let mut moved = 0;
        for i in from..to {
            if let Some(n) = self.nodes.slot_mut(i) {
                if n.data.is_mapped() {
                    n.data = n.data.clone();
                    moved += 1;
                }
            }
        }
        ((to < self.nodes.len()).then_some(to), moved)
    }

    /// Whether a restore left data in a mapped snapshot that this tree keeps.
    pub fn holds_mapping(&self) -> bool {
        self.mapping.is_some()
    }

    /// Znodes whose data still lies in the mapped snapshot (a pass over every znode).
    pub fn mapped_nodes(&self) -> usize {
        self.nodes.values().filter(|n| n.data.is_mapped()).count()
    }

    /// Lets go of the mapped snapshot once no znode's data lies in it.
    pub fn release_mapping(&mut self) {
        assert_eq!(
            self.mapped_nodes(),
            0,
            "releasing the snapshot mapping while znode data still lies in it"
        );
        self.mapping = None;
    }

    /// The mapped snapshot, handed over to be dropped elsewhere (unmapping a large file
    /// takes a while). The caller has seen [`mapped_nodes`](Self::mapped_nodes) at 0
    /// since the last restore step; nothing else puts data in a mapping.
    pub fn take_mapping(&mut self) -> Option<bytes::Bytes> {
        self.mapping.take()
    }

    /// Znodes removed so far (removals move slots: see `rehome_data_step`).
    pub fn removals(&self) -> u64 {
        self.nodes.removals()
    }

    /// Room for `n` more znodes, so a large restore does not rehash as it grows.
    pub fn reserve(&mut self, n: usize) {
        self.nodes.reserve(n);
    }

    /// Registers `path` under its kind's index (ephemerals, containers, TTLs, quotas):
    /// for a created node and a restored one alike.
    pub(super) fn index_node(&mut self, path: &str, owner: i64) {
        match EphemeralType::of(owner) {
            EphemeralType::Container => {
                self.containers.insert(path.into());
            }
            EphemeralType::Ttl(_) => {
                self.ttls.insert(path.into());
            }
            EphemeralType::Normal => {
                self.ephemerals
                    .entry(owner)
                    .or_default()
                    .insert(path.into());
            }
            EphemeralType::Void => {}
        }
        if let Some((parent, LIMIT_NODE)) = split_path(path) {
            if let Some(quota_path) = parent.strip_prefix(QUOTA_ZOOKEEPER) {
                self.quotas.add(quota_path);
            }
        }
    }

    pub(super) fn unindex_node(&mut self, path: &str, owner: i64) {
        match EphemeralType::of(owner) {
            EphemeralType::Container => {
                self.containers.remove(path);
            }
            EphemeralType::Ttl(_) => {
                self.ttls.remove(path);
            }
            EphemeralType::Normal => {
                if let Some(s) = self.ephemerals.get_mut(&owner) {
                    s.remove(path);
                }
            }
            EphemeralType::Void => {}
        }
        if let Some((parent, LIMIT_NODE)) = split_path(path) {
            if let Some(quota_path) = parent.strip_prefix(QUOTA_ZOOKEEPER) {
                self.quotas.remove(quota_path);
            }
        }
    }
}

/// Rebuilds a tree from a snapshot's records, in their order: [`node`](Self::node)
/// puts a node in (or replaces an existing one's data, ACL and stat, keeping its
/// children), [`remove`](Self::remove) takes a childless one out. Stats are restored
/// verbatim: nothing here moves a parent's cversion or pzxid or a quota's stats, which
/// the records already hold.
///
/// Built for speed at start: a snapshot lists siblings together, so names are linked
/// into their parent's child set in runs (one parent lookup and one reserve per run),
/// and the caller can hand an ACL it has already interned for a run of equal ACLs.
///
/// A run whose parent had no children when it began, its names coming in increasing
/// order as a walk lists them, puts its nodes in without looking each path up (each
/// name past the last is new) and indexes them together when the run ends (see
/// `node_table`): on a 1M-znode restore, one index lookup per node in hash order was
/// the largest single cost.
///
/// The changes a fuzzy snapshot appends after its walk are not in an order this
/// takes: they go through [`Changes`] first, then [`apply_changes`](Self::apply_changes).
pub struct Restorer<'t> {
    tree: &'t mut DataTree,
    /// The parent of the current run of new nodes, and their names not yet linked.
    parent: String,
    names: Vec<ChildName>,
    /// Whether the current run's parent had no children when it began and every name
    /// since went in past the one before: a name past the last is then new.
    fresh_run: bool,
}

impl Drop for Restorer<'_> {
    fn drop(&mut self) {
        // A restore given up halfway leaves a tree whose every node is indexed.
        self.tree.nodes.index_pending();
    }
}

/// The changes a fuzzy snapshot appends after its walk (see `snapshot_walk`): in no
/// useful order, a path possibly named several times. Collected here, the last word on
/// each path winning; [`into_order`](Self::into_order) then lists them as a
/// [`Restorer`] takes them. Holds no tree, so it can be collected on another thread
/// while the walk's records are restored (a restart does: `server::early_build`).
pub struct Changes<'a, V> {
    /// The last word on each path so far (`None`: removed).
    last: HashMap<&'a str, Option<V>>,
}

/// Collected [`Changes`], in the order they go in: `removals` children first, then
/// `nodes` parents first.
pub struct OrderedChanges<'a, V> {
    pub removals: Vec<&'a str>,
    pub nodes: Vec<(&'a str, V)>,
}

impl<'a, V> Changes<'a, V> {
    /// Room for `n` paths: a restore knows about how many records follow the walk, and
    /// growing the map (rehashing every path so far at each doubling) was a tenth of a
    /// 1M-znode restore.
    pub fn with_capacity(n: usize) -> Self {
        Changes {
            last: HashMap::with_capacity(n),
        }
    }

    /// `path` is as `value` says (the root may be named "").
    pub fn node(&mut self, path: &'a str, value: V) {
        self.last.insert(root_as_slash(path), Some(value));
    }

    /// `path` is gone.
    pub fn removal(&mut self, path: &'a str) {
        self.last.insert(root_as_slash(path), None);
    }

    pub fn len(&self) -> usize {
        self.last.len()
    }

    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }

    /// The last words, in the order a [`Restorer`] takes them.
    ///
    /// Within a depth they go by path, not in the map's (hash) order: the walk put
    /// siblings in the node table in name order, so the changed ones that are there
    /// already are then found in the order they lie in memory (a restore spent twice
    /// as long putting 235k changes in hash order). The sort compares a key of each
    /// path's first 32 bytes before the paths themselves, which it seldom reaches.
    pub fn into_order(self) -> OrderedChanges<'a, V> {
        let mut words: Vec<(&'a str, Option<V>)> = self.last.into_iter().collect();
        let mut keys: Vec<SortKey> = words
            .iter()
            .enumerate()
            .map(|(i, (p, w))| SortKey::of(p, w.is_none(), i))
            .collect();
        keys.sort_unstable_by(|a, b| a.cmp_with(b, &words));
        let mut removals = Vec::new();
        let mut nodes = Vec::with_capacity(words.len());
        for k in keys {
            let (path, word) = &mut words[k.index];
            match word.take() {
                Some(v) => nodes.push((*path, v)),
                None => removals.push(*path),
            }
        }
        OrderedChanges { removals, nodes }
    }
}

/// Where a change goes in [`Changes::into_order`]: removals first, deepest first;
/// then nodes, shallowest first; then by path, compared first through two words of
/// its bytes.
struct SortKey {
    rank: (bool, u64),
    head: [u128; 2],
    index: usize,
}

impl SortKey {
    fn of(path: &str, removal: bool, index: usize) -> SortKey {
        let depth = path.bytes().filter(|&b| b == b'/').count() as u64;
        let rank = if removal {
            (false, u64::MAX - depth)
        } else {
            (true, depth)
        };
        let word = |from: usize| {
            let mut b = [0u8; 16];
            let bytes = path.as_bytes().get(from..).unwrap_or(&[]);
            let n = bytes.len().min(16);
            b[..n].copy_from_slice(&bytes[..n]);
            u128::from_be_bytes(b)
        };
        SortKey {
            rank,
            head: [word(0), word(16)],
            index,
        }
    }

    fn cmp_with<V>(&self, other: &SortKey, words: &[(&str, Option<V>)]) -> std::cmp::Ordering {
        (self.rank, self.head)
            .cmp(&(other.rank, other.head))
            .then_with(|| words[self.index].0.cmp(words[other.index].0))
    }
}

/// Paths come from a file or a peer: only a well-formed one goes in. "//a" or "/a/"
/// would be keyed apart from the name linked into the parent ("a", ""), leaving a child
/// listed that no lookup finds.
fn well_formed(path: &str) -> bool {
    path.starts_with('/') && !path.ends_with('/') && !path.contains("//")
}

fn root_as_slash(path: &str) -> &str {
    if path.is_empty() {
        "/"
    } else {
        path
    }
}

/// A path that could not be restored, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreError {
    pub path: String,
    pub error: ErrorCode,
}

impl std::fmt::Display for RestoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "node {} cannot be restored ({:?})",
            self.path, self.error
        )
    }
}

impl<'t> Restorer<'t> {
    pub fn new(tree: &'t mut DataTree) -> Restorer<'t> {
        Restorer {
            tree,
            parent: String::new(),
            names: Vec::new(),
            fresh_run: false,
        }
    }

    /// Znodes the tree has room for without growing: after the caller reserved room
    /// for a snapshot's every node record ([`DataTree::reserve`]) and the walk's went
    /// in, about as many as the changes after it.
    pub fn room(&self) -> usize {
        self.tree.nodes.spare()
    }

    /// Interns `acl`, counting one use: pass the id to [`node`](Self::node).
    pub fn intern_acl(&mut self, acl: &[Acl]) -> AclId {
        self.tree.acls.intern(acl)
    }

    /// Counts one more use of an interned ACL, for another node carrying it.
    pub fn reuse_acl(&mut self, id: AclId) {
        self.tree.acls.add_usage(id);
    }

    /// Links the pending names into their parent's child set.
    fn link(&mut self) {
        self.tree.nodes.index_pending();
        // The parent has children now: a run in it from here on looks names up.
        self.fresh_run = false;
        if self.names.is_empty() {
            return;
        }
        // Checked to exist when the run began, and nothing removes a node while a
        // run is pending (`remove` links first).
        if let Some(p) = self.tree.nodes.get_mut(self.parent.as_str()) {
            let set = p.children.get_or_insert_with(Default::default);
            if set.is_empty() {
                // A snapshot lists siblings sorted: a bulk build, no searching.
                **set = self.names.drain(..).collect();
            } else {
                set.extend(self.names.drain(..));
            }
        }
        self.names.clear();
    }

    /// Puts `path` in with one use of `acl` (already counted by `intern_acl` or
    /// `reuse_acl`). Its parent must be there. A path already present (a built-in node,
    /// or a later record for the same path) takes the new data, ACL and stat.
    pub fn node(
        &mut self,
        path: &str,
        data: &[u8],
        acl: AclId,
        stat: StatPersisted,
    ) -> Result<(), ErrorCode> {
        self.put(path, NodeData::copy_from(data), acl, stat)
    }

    /// Keeps `mapping` (a mapped snapshot) alive as long as the tree, so that
    /// [`node_in_mapping`](Self::node_in_mapping) can leave data in it. A tree keeps one
    /// mapping: replacing it could leave data pointing into the one let go.
    pub fn keep_mapping(&mut self, mapping: Bytes) {
        assert!(
            self.tree.mapping.is_none(),
            "a tree keeps one snapshot mapping"
        );
        self.tree.mapping = Some(mapping);
    }

    /// As [`node`](Self::node), leaving `data` where it lies when it is a record's data
    /// in the mapping given to [`keep_mapping`](Self::keep_mapping) (else copying it).
    pub fn node_in_mapping(
        &mut self,
        path: &str,
        data: &[u8],
        acl: AclId,
        stat: StatPersisted,
    ) -> Result<(), ErrorCode> {
        let d = match &self.tree.mapping {
            // SAFETY: the tree keeps the mapping until no node's data lies in it
            // (`release_mapping`, `take_mapping` after `mapped_nodes` is 0), and this
            // data goes into that tree.
            Some(m) => unsafe { NodeData::in_mapping(m, data) },
            None => NodeData::copy_from(data),
        };
        self.put(path, d, acl, stat)
    }

    fn put(
        &mut self,
        path: &str,
        data: NodeData,
        acl: AclId,
        stat: StatPersisted,
    ) -> Result<(), ErrorCode> {
        let key = if path.is_empty() { "/" } else { path };
        if self.fresh_run {
            if let Some((parent, name)) = split_path(key) {
                if parent == self.parent
                    && well_formed(key)
                    && self.names.last().is_some_and(|last| &**last < name)
                {
                    let hash = self.tree.nodes.path_hash(key);
                    self.add(key, name, hash, Node::new(data, acl, stat), false);
                    return Ok(());
                }
            }
            // Anything else ends the run's freedom from lookups: the lookups below
            // need every node indexed, and a name that is not past the last could be
            // one of the run's already.
            self.fresh_run = false;
        }
        self.tree.nodes.index_pending();
        let hash = match self.tree.nodes.get_mut_or_hash(key) {
            Err(hash) => hash,
            Ok(existing) => {
                let old_owner = existing.stat.ephemeral_owner;
                let old_acl = std::mem::replace(&mut existing.acl, acl);
                self.tree.data_size =
                    self.tree.data_size - existing.data.len() as u64 + data.len() as u64;
                existing.data = data;
                existing.stat = stat;
                self.tree.acls.release(old_acl);
                if old_owner != stat.ephemeral_owner {
                    self.tree.unindex_node(key, old_owner);
                    self.tree.index_node(key, stat.ephemeral_owner);
                }
                return Ok(());
            }
        };
        if !well_formed(key) {
            return Err(ErrorCode::BadArguments);
        }
        let (parent, name) = split_path(key).ok_or(ErrorCode::NoNode)?;
        if parent != self.parent {
            self.link();
            let Some(p) = self.tree.nodes.get(parent) else {
                return Err(ErrorCode::NoNode);
            };
            self.fresh_run = p.num_children() == 0;
            self.parent.clear();
            self.parent.push_str(parent);
        }
        // Absent still: linking the parent's pending names above puts no path in.
        self.add(key, name, hash, Node::new(data, acl, stat), true);
        Ok(())
    }

    /// Puts a node at `key` (named `name` in the current run's parent), which no node
    /// has: indexed now, or with the run (see the type's doc).
    fn add(&mut self, key: &str, name: &str, hash: PathHash, node: Node, indexed: bool) {
        self.names.push(name.into());
        self.tree.data_size += java_len(key) + node.data.len() as u64;
        let owner = node.stat.ephemeral_owner;
        if indexed {
            self.tree.nodes.insert_absent(hash, key.into(), node);
        } else {
            self.tree.nodes.push_unindexed(hash, key.into(), node);
        }
        if owner != 0 || name == LIMIT_NODE {
            self.tree.index_node(key, owner);
        }
    }

    /// Takes `path` out: it must have no children (a snapshot removes children first).
    /// An absent path is fine: it never made it into this snapshot.
    pub fn remove(&mut self, path: &str) -> Result<(), ErrorCode> {
        self.take_out(path)
    }

    fn take_out(&mut self, path: &str) -> Result<(), ErrorCode> {
        self.link();
        // The run of siblings ends here: the next node checks that its parent is
        // there, since this removal may have taken the run's parent out.
        self.parent.clear();
        let key = if path.is_empty() { "/" } else { path };
        let Some(node) = self.tree.nodes.get(key) else {
            return Ok(());
        };
        if node.num_children() > 0 {
            return Err(ErrorCode::NotEmpty);
        }
        if DataTree::is_special_path(key) {
            return Err(ErrorCode::BadArguments);
        }
        let node = self.tree.nodes.remove(key).expect("looked up above");
        if let Some((parent, name)) = split_path(key) {
            if let Some(p) = self.tree.nodes.get_mut(parent) {
                p.remove_child(name);
            }
        }
        self.tree.acls.release(node.acl);
        self.tree.data_size = self
            .tree
            .data_size
            .saturating_sub(java_len(key) + node.data.len() as u64);
        self.tree.unindex_node(key, node.stat.ephemeral_owner);
        Ok(())
    }

    /// Puts collected changes in: the removals, then each node through `put` (which
    /// interns its ACL and calls [`node`](Self::node) or
    /// [`node_in_mapping`](Self::node_in_mapping)). The first refusal ends it.
    pub fn apply_changes<V>(
        &mut self,
        changes: OrderedChanges<'_, V>,
        mut put: impl FnMut(&mut Self, &str, V) -> Result<(), ErrorCode>,
    ) -> Result<(), RestoreError> {
        let failed = |path: &str, error| RestoreError {
            path: path.to_string(),
            error,
        };
        for p in changes.removals {
            self.take_out(p).map_err(|e| failed(p, e))?;
        }
        self.link();
        for (p, v) in changes.nodes {
            put(self, p, v).map_err(|e| failed(p, e))?;
        }
        Ok(())
    }

    /// Links what is pending and drops the ephemeral sets a removal left empty (a
    /// snapshot loaded without removals would have none).
    pub fn finish(mut self) {
        self.link();
        self.tree.ephemerals.retain(|_, s| s.len() > 0);
    }
}

#[cfg(test)]
mod tests {
    use crate::proto::*;
    use crate::request::{apply, Txn, TxnHeader};
    use crate::tree::*;

    /// Found by the `snapshot_load` fuzz target (`regress-double-slash-path`): a
    /// snapshot record for "//We" went in keyed "//We" while "/" listed a child "We",
    /// which no lookup found. Malformed paths are refused, in changes mode too.
    #[test]
    fn malformed_paths_are_refused() {
        for changes in [false, true] {
            for bad in ["//We", "/a/", "/a//b", "a", "/a/b/"] {
                let mut t = DataTree::new();
                let mut r = Restorer::new(&mut t);
                r.node("/a", b"", AclId::OPEN, StatPersisted::default())
                    .unwrap();
                if changes {
                    let mut c = Changes::with_capacity(1);
                    c.node(bad, ());
                    let done = r.apply_changes(c.into_order(), |r, p, ()| {
                        r.node(p, b"", AclId::OPEN, Default::default())
                    });
                    assert_eq!(done.map_err(|e| e.error), Err(ErrorCode::BadArguments));
                } else {
                    let put = r.node(bad, b"", AclId::OPEN, Default::default());
                    assert!(put.is_err(), "{bad}");
                }
                r.finish();
                assert!(!t.exists(bad), "{bad}");
                assert_eq!(t.children("/").unwrap(), vec!["a", "zookeeper"]);
                assert_eq!(t.children("/a").unwrap(), Vec::<String>::new());
            }
        }
    }

    /// A run in a childless parent goes in without lookups while its names increase; a
    /// name that does not (a damaged or hostile file) is looked up, finds the node a
    /// name before it put in, and takes its place instead of shadowing it.
    #[test]
    fn a_run_out_of_order_neither_loses_nor_doubles_a_node() {
        let orders: [&[&str]; 4] = [
            &["b", "c", "d"],
            &["b", "c", "b", "d"],
            &["c", "b", "c", "a"],
            &["b", "b", "c", "c"],
        ];
        for names in orders {
            let mut t = DataTree::new();
            let mut r = Restorer::new(&mut t);
            r.node("/p", b"", AclId::OPEN, StatPersisted::default())
                .unwrap();
            for (v, n) in names.iter().enumerate() {
                let st = StatPersisted {
                    version: v as i32,
                    ..Default::default()
                };
                r.node(&format!("/p/{n}"), b"", AclId::OPEN, st).unwrap();
            }
            r.finish();
            let mut want: Vec<&str> = names.to_vec();
            want.sort();
            want.dedup();
            assert_eq!(t.children("/p").unwrap(), want, "{names:?}");
            assert_eq!(t.znode_count(), want.len() + 5, "{names:?}");
            for n in want {
                let last = names.iter().rposition(|x| *x == n).unwrap() as i32;
                let got = t.get(&format!("/p/{n}")).expect("indexed");
                assert_eq!(got.stat().version, last, "{names:?}: the last record wins");
            }
        }
    }

    /// The last word on each path wins; removals go children first, then nodes
    /// parents first, siblings by name (paths longer than the sort's 32-byte key
    /// included).
    #[test]
    fn changes_come_out_in_the_order_a_restorer_takes() {
        let long = "/a/0123456789abcdef0123456789abcdef";
        let longer = "/a/0123456789abcdef0123456789abcdef0";
        let mut c = Changes::with_capacity(0);
        c.node("/a/c", 1);
        c.removal("/x/y");
        c.node(longer, 2);
        c.node("/a", 3);
        c.removal("/x");
        c.node("/a/b", 4);
        c.node(long, 5);
        c.removal("/a/c");
        c.node("/a/c", 6);
        c.node("", 7);
        c.removal("/z");
        assert_eq!(c.len(), 9);
        let o = c.into_order();
        assert_eq!(o.removals, vec!["/x/y", "/x", "/z"]);
        assert_eq!(
            o.nodes,
            vec![
                ("/", 7),
                ("/a", 3),
                (long, 5),
                (longer, 2),
                ("/a/b", 4),
                ("/a/c", 6)
            ]
        );
    }

    /// A node whose parent a tombstone took out is refused, not put in without a
    /// parent listing it (the run of siblings the removal ended does not vouch for
    /// it), in a walk and among a fuzzy snapshot's changes alike. Records like these
    /// can come from a peer's SNAP as well as from a file.
    #[test]
    fn a_node_under_a_removed_parent_is_refused() {
        for changes in [false, true] {
            let mut t = DataTree::new();
            let mut r = Restorer::new(&mut t);
            let st = StatPersisted::default();
            r.node("/a", b"", AclId::OPEN, st).unwrap();
            r.node("/a/b", b"", AclId::OPEN, st).unwrap();
            if changes {
                let mut c = Changes::with_capacity(3);
                c.removal("/a/b");
                c.removal("/a");
                c.node("/a/c", ());
                let e = r
                    .apply_changes(c.into_order(), |r, p, ()| r.node(p, b"", AclId::OPEN, st))
                    .unwrap_err();
                assert_eq!((e.path.as_str(), e.error), ("/a/c", ErrorCode::NoNode));
            } else {
                r.remove("/a/b").unwrap();
                r.remove("/a").unwrap();
                let put = r.node("/a/c", b"", AclId::OPEN, st);
                assert_eq!(put, Err(ErrorCode::NoNode));
            }
            r.finish();
            assert!(!t.exists("/a/c"), "changes: {changes}");
            assert!(!t.exists("/a"));
        }
    }

    fn create(t: &mut DataTree, zxid: i64, path: &str, owner: i64) {
        let hdr = TxnHeader {
            client_id: 7,
            cxid: 1,
            zxid,
            time: 1000 + zxid,
            op: OpCode::Create,
        };
        let txn = Txn::Create {
            path: path.into(),
            data: bytes::Bytes::from(format!("d{zxid}")),
            acl: open_acl_unsafe(),
            ephemeral_owner: owner,
            parent_cversion: -1,
        };
        let mut trig = Vec::new();
        apply(t, &hdr, &txn, &mut trig);
    }

    #[test]
    fn a_restored_tree_answers_like_the_saved_one() {
        let mut t = DataTree::new();
        let hdr = TxnHeader {
            client_id: 7,
            cxid: 0,
            zxid: 1,
            time: 1,
            op: OpCode::CreateSession,
        };
        apply(
            &mut t,
            &hdr,
            &Txn::CreateSession { timeout: 5000 },
            &mut Vec::new(),
        );
        create(&mut t, 2, "/a", 0);
        create(&mut t, 3, "/a/b", 0);
        create(&mut t, 4, "/a/e", 7);
        create(&mut t, 5, "/c", ephemeral_owner::CONTAINER);
        create(&mut t, 6, "/a/x", 0);
        apply(
            &mut t,
            &TxnHeader {
                client_id: 7,
                cxid: 2,
                zxid: 7,
                time: 9,
                op: OpCode::Delete,
            },
            &Txn::Delete {
                path: "/a/x".into(),
            },
            &mut Vec::new(),
        );

        let mut r = DataTree::new();
        let mut seen = Vec::new();
        t.for_each_node(|path, node, acl| {
            seen.push(path.to_string());
            r.restore_node(path, node.data(), acl, *node.persisted())
                .unwrap();
        });
        for (id, to) in t.sessions() {
            r.add_session(id, to);
        }
        r.set_last_processed_zxid(t.last_processed_zxid());

        assert!(seen.iter().position(|p| p == "/a") < seen.iter().position(|p| p == "/a/b"));
        for p in [
            "/",
            "/a",
            "/a/b",
            "/a/e",
            "/c",
            "/zookeeper",
            "/zookeeper/config",
        ] {
            assert_eq!(r.stat(p), t.stat(p), "{p}");
            assert_eq!(r.get(p).unwrap().data(), t.get(p).unwrap().data());
            let mut a = r.children(p).unwrap();
            let mut b = t.children(p).unwrap();
            a.sort();
            b.sort();
            assert_eq!(a, b);
        }
        assert_eq!(r.ephemerals(7), vec!["/a/e".to_string()]);
        assert_eq!(r.containers(), vec!["/c".to_string()]);
        assert_eq!(r.node_count(), t.node_count());
        assert_eq!(r.approximate_data_size(), t.approximate_data_size());
        assert_eq!(r.last_processed_zxid(), 7);
    }

    /// A stand-in for a mapped snapshot: `n` records of a big-endian length and 10
    /// bytes of 9s, and a tree restored with its data left in it.
    fn restored_in_mapping(n: usize) -> DataTree {
        let mut m = Vec::new();
        for _ in 0..n {
            m.extend_from_slice(&10i32.to_be_bytes());
            m.extend_from_slice(&[9u8; 10]);
        }
        let mapping = bytes::Bytes::from(m);
        let mut t = DataTree::new();
        let mut r = Restorer::new(&mut t);
        r.keep_mapping(mapping.clone());
        for i in 0..n {
            let acl = r.intern_acl(&open_acl_unsafe());
            let d = &mapping[i * 14 + 4..i * 14 + 14];
            r.node_in_mapping(&format!("/n{i}"), d, acl, StatPersisted::default())
                .unwrap();
        }
        r.finish();
        t
    }

    #[test]
    fn rehoming_moves_every_node_off_the_mapping_even_as_slots_move() {
        let mut t = restored_in_mapping(400);
        assert_eq!(t.mapped_nodes(), 400);
        // A pass in steps, with removals (which move slots) between the steps.
        let mut at = 0;
        let mut removed = 0;
        while let (Some(next), _) = t.rehome_data_step(at, 25) {
            at = next;
            t.delete_node(&format!("/n{}", 399 - removed), 1000)
                .unwrap();
            removed += 1;
        }
        // The last pass, in one go, leaves nothing in the mapping.
        t.rehome_data_step(0, usize::MAX);
        assert_eq!(t.mapped_nodes(), 0);
        t.release_mapping();
        assert!(!t.holds_mapping());
        for i in 0..400 - removed {
            assert_eq!(
                &t.get(&format!("/n{i}")).unwrap().data()[..],
                &[9u8; 10][..]
            );
        }
    }

    #[test]
    #[should_panic(expected = "still lies in it")]
    fn the_mapping_is_not_released_while_data_lies_in_it() {
        let mut t = restored_in_mapping(3);
        t.release_mapping();
    }

    #[test]
    fn a_clone_of_a_tree_holding_a_mapping_copies_its_data_out() {
        let t = restored_in_mapping(5);
        let c = t.clone();
        drop(t);
        assert_eq!(c.mapped_nodes(), 0);
        assert_eq!(&c.get("/n4").unwrap().data()[..], &[9u8; 10][..]);
    }
}
