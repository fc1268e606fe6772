//! The DataTree: every znode of the server, with ZooKeeper's Stat rules, the ACL
//! cache, ephemerals per session, the sessions table, container/TTL bookkeeping and
//! quota accounting. It changes only through `request::apply` (one committed txn at a
//! time, on the shard that owns it: `server/one_tree.rs`); reads and prep look at it
//! directly.
//!
//! Semantics follow ZooKeeper's `DataTree.java`/`DataNode.java`. Two details worth
//! knowing: a node stores the *create count* of its children as `cversion` (what
//! sequential names are numbered from) and `Stat.cversion` is derived from it as
//! `cversion * 2 - numChildren` (ZooKeeper's "v3 semantics"); and the root is also
//! reachable as "" (ZooKeeper keeps both keys), which is why `node_count` is one more
//! than the number of znodes.

pub mod acl_cache;
mod child_name;
mod child_set;
mod ephemeral_set;
mod node_data;
mod node_table;
pub use node_table::Retired;
pub mod quota;
mod restore;
mod snapshot_walk;
mod thin_path;

pub use node_data::NodeData;
pub use restore::{Changes, OrderedChanges, RestoreError, Restorer};
pub use snapshot_walk::SnapshotWalk;

// ahash: paths are hashed on every request; SipHash showed as ~9% of read CPU. ahash
// keeps per-process random keys, so clients still cannot aim collisions.
use ahash::{AHashMap as HashMap, AHashSet as HashSet};
use child_name::ChildName;
use child_set::ChildSet;
use ephemeral_set::EphemeralSet;
use std::sync::Arc;

use bytes::Bytes;

use crate::proto::{ephemeral_owner, Acl, ErrorCode, Stat};

pub use acl_cache::{open_acl_unsafe, read_acl_unsafe, AclCache, AclId};
pub use quota::StatsTrack;
use quota::{QuotaPaths, CONFIG_ZOOKEEPER, PROC_ZOOKEEPER, QUOTA_ZOOKEEPER, STAT_NODE};

/// `StatPersisted`: what a znode stores. `cversion` is the raw create count (see the
/// module comment); `Node::stat` derives the client-visible Stat.
///
/// Packed to 4-byte alignment: its 60 bytes would otherwise be padded to 64, and the
/// ACL id beside it in `Node` to another 8 (a node-table slot of 96 bytes instead of
/// 88). Fields are read and written by value; a reference to one does not compile.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C, packed(4))]
pub struct StatPersisted {
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
    pub pzxid: i64,
}

impl StatPersisted {
    /// `DataTree.createStat`.
    pub fn new_node(zxid: i64, time: i64, ephemeral_owner: i64) -> Self {
        StatPersisted {
            czxid: zxid,
            mzxid: zxid,
            ctime: time,
            mtime: time,
            version: 0,
            cversion: 0,
            aversion: 0,
            ephemeral_owner,
            pzxid: zxid,
        }
    }

    /// `DataNode.copyStat` given the node's data length and child count.
    pub fn to_stat(&self, data_length: usize, num_children: usize) -> Stat {
        let n = num_children.min(i32::MAX as usize) as i32;
        let owner = match EphemeralType::of(self.ephemeral_owner) {
            EphemeralType::Normal => self.ephemeral_owner,
            _ => 0,
        };
        Stat {
            czxid: self.czxid,
            mzxid: self.mzxid,
            ctime: self.ctime,
            mtime: self.mtime,
            version: self.version,
            cversion: self.cversion.wrapping_mul(2).wrapping_sub(n),
            aversion: self.aversion,
            ephemeral_owner: owner,
            data_length: data_length.min(i32::MAX as usize) as i32,
            num_children: n,
            pzxid: self.pzxid,
        }
    }
}

/// `EphemeralType`: what a node's `ephemeralOwner` says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EphemeralType {
    /// A persistent node (owner 0).
    Void,
    /// An ephemeral node owned by a session.
    Normal,
    Container,
    /// A TTL node, with its TTL in ms.
    Ttl(i64),
}

impl EphemeralType {
    pub fn of(owner: i64) -> EphemeralType {
        if owner == 0 {
            EphemeralType::Void
        } else if ephemeral_owner::is_container(owner) {
            EphemeralType::Container
        } else if let Some(ttl) = ephemeral_owner::ttl_of(owner) {
            EphemeralType::Ttl(ttl)
        } else {
            EphemeralType::Normal
        }
    }
}

/// One znode. Kept small: most znodes are leaves, so the child set is boxed and absent
/// until the first child, and the ACL is a cache id.
///
/// The child set is ordered (sorted chunks, `child_set.rs`; not a hash set) so that a
/// snapshot walk can stop anywhere in a wide node and resume after the last name it
/// visited, whatever was added or removed meanwhile. getChildren therefore lists names sorted; ZooKeeper
/// promises no order.
#[derive(Debug, Clone)]
pub struct Node {
    data: NodeData,
    stat: StatPersisted,
    acl: AclId,
    // Boxed on purpose: an absent set costs 8 bytes instead of 48 on every leaf.
    #[allow(clippy::box_collection)]
    children: Option<Box<ChildSet>>,
}

// Paid once per znode in the node table (with an 8-byte key): see `docs/one-tree.md`,
// "Bytes per znode".
const _: () = assert!(std::mem::size_of::<Node>() == 80);

impl Node {
    fn new(data: NodeData, acl: AclId, stat: StatPersisted) -> Node {
        Node {
            data,
            stat,
            acl,
            children: None,
        }
    }

    pub fn data(&self) -> &NodeData {
        &self.data
    }

    pub fn persisted(&self) -> &StatPersisted {
        &self.stat
    }

    pub fn acl_id(&self) -> AclId {
        self.acl
    }

    pub fn num_children(&self) -> usize {
        self.children.as_ref().map_or(0, |c| c.len())
    }

    /// Child names, sorted (ZooKeeper answers in HashSet order; no order is promised).
    pub fn children(&self) -> impl Iterator<Item = &str> {
        self.children.iter().flat_map(|c| c.iter().map(|s| &**s))
    }

    /// The client-visible Stat (`DataNode.copyStat`).
    pub fn stat(&self) -> Stat {
        self.stat.to_stat(self.data.len(), self.num_children())
    }

    fn add_child(&mut self, name: &str) {
        self.children
            .get_or_insert_with(Default::default)
            .insert(name.into());
    }

    fn remove_child(&mut self, name: &str) {
        if let Some(c) = self.children.as_mut() {
            c.remove(name);
            if c.is_empty() {
                self.children = None;
            }
        }
    }
}

/// Splits `path` at its last '/': (parent, child name). The parent of "/a" is "/"
/// (ZooKeeper says "", its alias for the root). `None` when there is no '/'.
pub fn split_path(path: &str) -> Option<(&str, &str)> {
    let i = path.rfind('/')?;
    let parent = if i == 0 { "/" } else { &path[..i] };
    Some((parent, &path[i + 1..]))
}

/// Java's `String.length()`: UTF-16 code units, as ZooKeeper measures data sizes.
fn java_len(s: &str) -> u64 {
    if s.is_ascii() {
        s.len() as u64
    } else {
        s.encode_utf16().count() as u64
    }
}

#[derive(Clone)]
pub struct DataTree {
    nodes: node_table::NodeTable,
    acls: AclCache,
    sessions: HashMap<i64, i32>,
    /// Session -> its ephemeral paths. As in ZooKeeper, a session's (possibly empty)
    /// set stays until the session is closed.
    ephemerals: HashMap<i64, EphemeralSet>,
    containers: HashSet<Box<str>>,
    ttls: HashSet<Box<str>>,
    quotas: QuotaPaths,
    /// `nodeDataSize`: path lengths plus data lengths, kept as ZooKeeper keeps it.
    data_size: u64,
    last_processed_zxid: i64,
    /// Paths changed since a snapshot walk started (`None` when no walk runs). Behind
    /// a mutex because the walk runs on a shard that only reads the tree (under its
    /// reader flag), while the owner's applies note changes under the writer flag: the
    /// two never overlap, the mutex only makes that visible to the compiler.
    changed: snapshot_walk::ChangeRecord,
    /// The mapped snapshot a restore left znode data in (`NodeData::in_mapping`), kept
    /// until every such znode has its own copy (`release_mapping`).
    mapping: Option<Bytes>,
}

impl Default for DataTree {
    fn default() -> Self {
        Self::new()
    }
}

impl DataTree {
    /// A tree holding `/`, `/zookeeper`, `/zookeeper/quota` and `/zookeeper/config`.
    pub fn new() -> Self {
        let mut t = DataTree {
            nodes: Default::default(),
            acls: AclCache::new(),
            sessions: HashMap::new(),
            ephemerals: HashMap::new(),
            containers: HashSet::new(),
            ttls: HashSet::new(),
            quotas: QuotaPaths::default(),
            data_size: 0,
            last_processed_zxid: 0,
            changed: Default::default(),
            mapping: None,
        };
        // Built-in nodes have all-zero stats and the uncounted open ACL; children are
        // added without touching cversion, so "/" shows cversion -1 and "/zookeeper" -2.
        let blank = || Node::new(NodeData::empty(), AclId::OPEN, StatPersisted::default());
        let mut root = blank();
        root.add_child("zookeeper");
        let mut proc_node = blank();
        proc_node.add_child("quota");
        proc_node.add_child("config");
        let mut config = blank();
        // addConfigNode: setACL(READ_ACL_UNSAFE, -1) leaves aversion at -1.
        config.acl = t.acls.intern(&read_acl_unsafe());
        config.stat.aversion = -1;
        t.nodes.insert("/".into(), root);
        t.nodes.insert(PROC_ZOOKEEPER.into(), proc_node);
        t.nodes.insert(QUOTA_ZOOKEEPER.into(), blank());
        t.nodes.insert(CONFIG_ZOOKEEPER.into(), config);
        t.data_size = t.nodes.keys().map(java_len).sum();
        t
    }

    pub fn last_processed_zxid(&self) -> i64 {
        self.last_processed_zxid
    }

    pub fn set_last_processed_zxid(&mut self, zxid: i64) {
        if zxid > self.last_processed_zxid {
            self.last_processed_zxid = zxid;
        }
    }

    /// Room for `extra` more znodes in the node table, when it lacks it, built without
    /// changing the tree (`node_table`'s module comment says why).
    pub fn prepare_room(&self, extra: usize) -> Option<node_table::Room> {
        self.nodes.prepare_room(extra)
    }

    /// Swaps in what `prepare_room` built; the tree must not have changed since.
    /// Returns the storage it replaced (see `node_table::Retired`).
    pub fn install_room(&mut self, room: node_table::Room) -> node_table::Retired {
        self.nodes.install_room(room)
    }

    /// ZooKeeper's `getNodeCount` (mntr's `zk_znode_count`): the znodes plus one, since
    /// ZooKeeper keys the root both as "" and "/". A fresh tree answers 5.
    pub fn node_count(&self) -> usize {
        self.nodes.len() + 1
    }

    /// The number of znodes, root included (a fresh tree has 4).
    pub fn znode_count(&self) -> usize {
        self.nodes.len()
    }

    /// Bytes of path names and data, as ZooKeeper's `approximateDataSize`
    /// (`cachedApproximateDataSize`: quota stat rewrites are not counted, as there).
    pub fn approximate_data_size(&self) -> u64 {
        self.data_size
    }

    /// `aclCacheSize`.
    pub fn acl_cache_size(&self) -> usize {
        self.acls.len()
    }

    /// The node at `path` ("" is the root, as in ZooKeeper).
    pub fn get(&self, path: &str) -> Option<&Node> {
        if path.is_empty() {
            return self.nodes.get("/");
        }
        self.nodes.get(path)
    }

    pub fn exists(&self, path: &str) -> bool {
        self.get(path).is_some()
    }

    pub fn stat(&self, path: &str) -> Option<Stat> {
        self.get(path).map(Node::stat)
    }

    /// The ACL list of `node`.
    pub fn acl(&self, node: &Node) -> &Arc<[Acl]> {
        self.acls.get(node.acl)
    }

    pub fn acl_of(&self, path: &str) -> Option<&Arc<[Acl]>> {
        self.get(path).map(|n| self.acl(n))
    }

    /// Child names of `path`, unsorted.
    pub fn children(&self, path: &str) -> Option<Vec<String>> {
        self.get(path)
            .map(|n| n.children().map(str::to_owned).collect())
    }

    /// `getAllChildrenNumber`: every descendant of `path`.
    pub fn all_children_number(&self, path: &str) -> Option<i32> {
        let node = self.get(path)?;
        // ZooKeeper keeps the root under "" and "/": for "/" it answers size - 2 (every
        // node but the root), for "" it counts the keys starting with "/" (every node).
        if path == "/" {
            return Some((self.nodes.len() - 1).min(i32::MAX as usize) as i32);
        }
        if path.is_empty() {
            return Some(self.nodes.len().min(i32::MAX as usize) as i32);
        }
        let mut count: usize = 0;
        let mut stack: Vec<String> = node.children().map(|c| format!("{path}/{c}")).collect();
        while let Some(p) = stack.pop() {
            count += 1;
            if let Some(n) = self.nodes.get(p.as_str()) {
                stack.extend(n.children().map(|c| format!("{p}/{c}")));
            }
        }
        Some(count.min(i32::MAX as usize) as i32)
    }

    /// The live sessions and their negotiated timeouts (ms).
    pub fn session_timeout(&self, session_id: i64) -> Option<i32> {
        self.sessions.get(&session_id).copied()
    }

    /// Sessions sorted by id.
    pub fn sessions(&self) -> Vec<(i64, i32)> {
        let mut v: Vec<(i64, i32)> = self.sessions.iter().map(|(k, v)| (*k, *v)).collect();
        v.sort_unstable();
        v
    }

    /// Live sessions (`sessions().len()` without building the list).
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    pub fn add_session(&mut self, session_id: i64, timeout: i32) {
        self.sessions.insert(session_id, timeout);
    }

    /// Forgets the session and hands back its ephemerals in the order ZooKeeper deletes
    /// them (the caller deletes them, as `killSession` does).
    pub fn remove_session(&mut self, session_id: i64) -> Vec<String> {
        self.sessions.remove(&session_id);
        self.ephemerals
            .remove(&session_id)
            .map(|s| s.java_clone_order())
            .unwrap_or_default()
    }

    /// The ephemeral paths owned by `session_id`, sorted.
    pub fn ephemerals(&self, session_id: i64) -> Vec<String> {
        let mut v: Vec<String> = self
            .ephemerals
            .get(&session_id)
            .map(|s| s.iter().map(|p| p.to_string()).collect())
            .unwrap_or_default();
        v.sort_unstable();
        v
    }

    /// Every session with an ephemeral set (the `dump` command), sorted by id.
    pub fn sessions_with_ephemerals(&self) -> Vec<(i64, Vec<String>)> {
        let mut ids: Vec<i64> = self.ephemerals.keys().copied().collect();
        ids.sort_unstable();
        ids.into_iter()
            .map(|id| (id, self.ephemerals(id)))
            .collect()
    }

    pub fn ephemeral_count(&self) -> usize {
        self.ephemerals.values().map(|s| s.len()).sum()
    }

    /// Paths of container nodes, sorted.
    pub fn containers(&self) -> Vec<String> {
        let mut v: Vec<String> = self.containers.iter().map(|p| p.to_string()).collect();
        v.sort_unstable();
        v
    }

    /// Paths of TTL nodes, sorted.
    pub fn ttls(&self) -> Vec<String> {
        let mut v: Vec<String> = self.ttls.iter().map(|p| p.to_string()).collect();
        v.sort_unstable();
        v
    }

    /// Containers that had a child and are now empty, and TTL nodes that are childless
    /// and unmodified for longer than their TTL at `now_ms`: ContainerManager's
    /// candidates, to be confirmed by `Prepper::prep_reap`. Sorted.
    pub fn reap_candidates(&self, now_ms: i64) -> Vec<String> {
        let mut v = Vec::new();
        for p in &self.containers {
            if let Some(n) = self.nodes.get(p) {
                // cversion > 0 keeps a container that never had a child from being
                // reaped right after its creation.
                if n.num_children() == 0 && n.stat.cversion > 0 {
                    v.push(p.to_string());
                }
            }
        }
        for p in &self.ttls {
            if let Some(n) = self.nodes.get(p) {
                if n.num_children() != 0 {
                    continue;
                }
                if let EphemeralType::Ttl(ttl) = EphemeralType::of(n.stat.ephemeral_owner) {
                    if ttl != 0 && now_ms.saturating_sub(n.stat.mtime) > ttl {
                        v.push(p.to_string());
                    }
                }
            }
        }
        v.sort_unstable();
        v
    }

    /// `getMaxPrefixWithQuota`.
    pub fn max_prefix_with_quota(&self, path: &str) -> Option<String> {
        self.quotas.max_prefix(path)
    }

    /// `createNode`. `parent_cversion` -1 means "one more than now". Only a
    /// `parent_cversion` above the parent's current one moves its cversion and pzxid.
    #[allow(clippy::too_many_arguments)]
    pub fn create_node(
        &mut self,
        path: &str,
        data: Bytes,
        acl: &[Acl],
        ephemeral_owner: i64,
        parent_cversion: i32,
        zxid: i64,
        time: i64,
    ) -> Result<Stat, ErrorCode> {
        let (parent_name, child_name) = split_path(path).ok_or(ErrorCode::NoNode)?;
        if !self.nodes.contains_key(parent_name) {
            return Err(ErrorCode::NoNode);
        }
        if self.nodes.contains_key(path) {
            return Err(ErrorCode::NodeExists);
        }
        let data_len = data.len() as i64;
        self.note_change(path);
        self.note_change(parent_name);
        let acl_id = self.acls.intern(acl);
        let parent = self.nodes.get_mut(parent_name).expect("checked above");
        let new_cversion = if parent_cversion == -1 {
            parent.stat.cversion.wrapping_add(1)
        } else {
            parent_cversion
        };
        if new_cversion > parent.stat.cversion {
            parent.stat.cversion = new_cversion;
            parent.stat.pzxid = zxid;
        }
        parent.add_child(child_name);
        let node = Node::new(
            NodeData::copy_from(&data),
            acl_id,
            StatPersisted::new_node(zxid, time, ephemeral_owner),
        );
        let stat = node.stat();
        self.data_size += java_len(path) + data_len as u64;
        self.nodes.insert(path.into(), node);
        self.index_node(path, ephemeral_owner);
        if let Some(quota_path) = parent_name.strip_prefix(QUOTA_ZOOKEEPER) {
            if child_name == STAT_NODE {
                self.update_quota_for_path(quota_path);
            }
        }
        if let Some(prefix) = self.quotas.max_prefix(path) {
            self.update_quota_stat(&prefix, data_len, 1);
        }
        Ok(stat)
    }

    /// `deleteNode`: removes a node (its children are not looked at: prep guarantees
    /// there are none). The parent's pzxid moves forward; its cversion does not.
    pub fn delete_node(&mut self, path: &str, zxid: i64) -> Result<(), ErrorCode> {
        let (parent_name, child_name) = split_path(path).ok_or(ErrorCode::NoNode)?;
        if path == "/" || !self.nodes.contains_key(parent_name) {
            return Err(ErrorCode::NoNode);
        }
        let node = self.nodes.remove(path).ok_or(ErrorCode::NoNode)?;
        self.note_change(path);
        self.note_change(parent_name);
        let parent = self.nodes.get_mut(parent_name).expect("checked above");
        parent.remove_child(child_name);
        if zxid > parent.stat.pzxid {
            parent.stat.pzxid = zxid;
        }
        self.acls.release(node.acl);
        self.data_size = self
            .data_size
            .saturating_sub(java_len(path) + node.data.len() as u64);
        self.unindex_node(path, node.stat.ephemeral_owner);
        if let Some(prefix) = self.quotas.max_prefix(path) {
            self.update_quota_stat(&prefix, -(node.data.len() as i64), -1);
        }
        Ok(())
    }

    /// `setData`: `version` is the node's new version, chosen by prep.
    pub fn set_data(
        &mut self,
        path: &str,
        data: Bytes,
        version: i32,
        zxid: i64,
        time: i64,
    ) -> Result<Stat, ErrorCode> {
        let key = if path.is_empty() { "/" } else { path };
        // One lookup: setData is the commonest write, applied on every shard.
        let Some(n) = self.nodes.get_mut(key) else {
            return Err(ErrorCode::NoNode);
        };
        let old_len = n.data.len() as i64;
        let new_len = data.len() as i64;
        n.data = NodeData::copy_from(&data);
        n.stat.mtime = time;
        n.stat.mzxid = zxid;
        n.stat.version = version;
        let stat = n.stat();
        self.note_change(key);
        self.data_size = (self.data_size as i64 + new_len - old_len).max(0) as u64;
        if let Some(prefix) = self.quotas.max_prefix(path) {
            self.update_quota_stat(&prefix, new_len - old_len, 0);
        }
        Ok(stat)
    }

    /// An ensemble member's `/zookeeper/config`: the membership as this server's
    /// config has it, set outside any txn (ZooKeeper's `initConfigInZKDatabase`, at
    /// start and after a SNAP: data replaced, version -1, mzxid the config's version,
    /// mtime now).
    pub fn init_config_node(&mut self, data: Bytes, config_version: i64, time: i64) {
        let Some(n) = self.nodes.get_mut(quota::CONFIG_ZOOKEEPER) else {
            return;
        };
        let old_len = n.data.len() as i64;
        let new_len = data.len() as i64;
        n.data = NodeData::copy_from(&data);
        n.stat.version = -1;
        n.stat.mzxid = config_version;
        n.stat.mtime = time;
        self.data_size = (self.data_size as i64 + new_len - old_len).max(0) as u64;
    }

    /// `setACL`: `version` is the node's new aversion, chosen by prep.
    pub fn set_acl(&mut self, path: &str, acl: &[Acl], version: i32) -> Result<Stat, ErrorCode> {
        let key = if path.is_empty() { "/" } else { path };
        if !self.nodes.contains_key(key) {
            return Err(ErrorCode::NoNode);
        }
        self.note_change(key);
        let new_id = self.acls.intern(acl);
        let n = self.nodes.get_mut(key).expect("checked above");
        let old = std::mem::replace(&mut n.acl, new_id);
        n.stat.aversion = version;
        let stat = n.stat();
        self.acls.release(old);
        Ok(stat)
    }

    /// `updateQuotaStat`: rewrites the stats node's data in place (no Stat change).
    fn update_quota_stat(&mut self, prefix: &str, bytes_diff: i64, count_diff: i64) {
        let sp = quota::stat_path(prefix);
        if self.nodes.contains_key(sp.as_str()) {
            self.note_change(&sp);
        }
        if let Some(n) = self.nodes.get_mut(sp.as_str()) {
            let mut st = StatsTrack::parse(&n.data);
            st.set_count(st.count() + count_diff);
            st.set_bytes(st.bytes() + bytes_diff);
            n.data = NodeData::copy_from(st.to_text().as_bytes());
        }
    }

    /// `updateQuotaForPath`: recounts the subtree at `path` into its stats node.
    fn update_quota_for_path(&mut self, path: &str) {
        let (mut count, mut bytes) = (0i64, 0i64);
        let mut stack = vec![path.to_string()];
        while let Some(p) = stack.pop() {
            if let Some(n) = self.nodes.get(p.as_str()) {
                count += 1;
                bytes += n.data.len() as i64;
                stack.extend(n.children().map(|c| format!("{p}/{c}")));
            }
        }
        let sp = quota::stat_path(path);
        if self.nodes.contains_key(sp.as_str()) {
            self.note_change(&sp);
        }
        if let Some(n) = self.nodes.get_mut(sp.as_str()) {
            let mut st = StatsTrack::default();
            st.set_count(count);
            st.set_bytes(bytes);
            n.data = NodeData::copy_from(st.to_text().as_bytes());
        }
    }

    /// Whether `path` is one of the built-in nodes that may not be deleted.
    pub fn is_special_path(path: &str) -> bool {
        matches!(
            path,
            "/" | PROC_ZOOKEEPER | QUOTA_ZOOKEEPER | CONFIG_ZOOKEEPER
        )
    }
}

#[cfg(test)]
mod tests;
