//! The SNAP stream (§2.8): the whole DataTree and the session table, as a ZooKeeper
//! 3.8 leader writes them on the quorum port right after `QuorumPacket{SNAP, zxid}` for
//! a learner too far behind for a DIFF. This module owns both ends: [`SnapWriter`] (we
//! lead) and [`SnapReader`] (we follow a corral or a Java leader).
//!
//! ```text
//! int    sessionCount; (long sessionId, int timeoutMs) * sessionCount   SerializeUtils
//! int    aclMapCount;  (long aclRef, vector<ACL>) * aclMapCount          ReferenceCountedACLCache
//! (ustring path, buffer data, long aclRef, StatPersisted) * nodes        DataTree.serializeNode
//! ustring "/"                                                             end of the nodes
//! ustring "BenWasHere"                                                    LearnerHandler's signature
//! ```
//!
//! Nodes come parent first (the root as ""), and a Java follower refuses a node whose
//! parent it has not read. `aclRef` -1 is `OPEN_ACL_UNSAFE` with no map entry; any
//! other names a map entry (our `AclId` numbers, which like ZooKeeper's start at 1).
//! Unlike ZooKeeper's snapshot file there is no header, checksum or digest.
//!
//! The stream has no length of its own and QuorumPackets follow it on the same socket,
//! so the reader is fed whatever arrived and stops exactly after the signature. A
//! leader sends a tree of any size this way, so the reader trusts no length: each
//! `ustring`/`buffer` is checked against the caller's limit (Java's `jute.maxbuffer`
//! check) and nothing is allocated ahead of the bytes that back it; memory grows only
//! with what the peer actually sent.

use ahash::AHashMap as HashMap;
use bytes::{BufMut, BytesMut};

use crate::proto::jute::null_slice;
use crate::proto::{Acl, Id, Jute};
use crate::tree::quota::{
    self, StatsTrack, CONFIG_ZOOKEEPER, LIMIT_NODE, PROC_ZOOKEEPER, QUOTA_ZOOKEEPER,
};
use crate::tree::{split_path, AclId, DataTree, Node, Restorer, StatPersisted};

/// What `LearnerHandler` writes after the tree and `Learner` checks.
pub const SIGNATURE: &str = "BenWasHere";

/// The path that ends the nodes (no node is ever called "/": the root is "").
const END_OF_NODES: &str = "/";

/// `ReferenceCountedACLCache.OPEN_UNSAFE_ACL_ID`.
pub const OPEN_UNSAFE_ACL_ID: i64 = -1;

/// Bytes of one ACL at the least (perms and two string lengths): bounds an ACL list's
/// count by the limit a client's setACL had to fit in.
const MIN_ACL_LEN: usize = 12;

/// A depth-first, parent-first walk of a tree that keeps one path buffer instead of a
/// string per node. The root's path is "" (as ZooKeeper names it in a snapshot and in
/// the digest); siblings come in name order.
pub(crate) struct PreOrder<'t> {
    tree: &'t DataTree,
    path: String,
    /// Per node on the way down with children left: its path's length and the rest of
    /// its children.
    frames: Vec<(usize, Box<dyn Iterator<Item = &'t str> + 't>)>,
    started: bool,
}

impl<'t> PreOrder<'t> {
    pub(crate) fn new(tree: &'t DataTree) -> PreOrder<'t> {
        PreOrder {
            tree,
            path: String::new(),
            frames: Vec::new(),
            started: false,
        }
    }

    /// The path of the node `advance` last returned.
    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    /// The next node, `None` when all are visited.
    pub(crate) fn advance(&mut self) -> Option<&'t Node> {
        let node = if !self.started {
            self.started = true;
            self.tree.get("")?
        } else {
            loop {
                let (len, children) = self.frames.last_mut()?;
                let len = *len;
                let Some(name) = children.next() else {
                    self.frames.pop();
                    continue;
                };
                self.path.truncate(len);
                self.path.push('/');
                self.path.push_str(name);
                // A child name always has its node; skipping one that did not would
                // only leave out a node that is not there.
                if let Some(n) = self.tree.get(&self.path) {
                    break n;
                }
            }
        };
        if node.num_children() > 0 {
            self.frames
                .push((self.path.len(), Box::new(node.children())));
        }
        Some(node)
    }
}

/// The wire `aclRef` of a node's ACL.
fn acl_ref(id: AclId) -> i64 {
    if id == AclId::OPEN {
        OPEN_UNSAFE_ACL_ID
    } else {
        i64::from(id.0)
    }
}

fn put_ustring(out: &mut BytesMut, s: &str) {
    out.put_i32(s.len() as i32);
    out.put_slice(s.as_bytes());
}

/// `DataTree.serializeNodeData`: the path, then `DataNode` (data, aclRef, StatPersisted).
fn put_node(out: &mut BytesMut, path: &str, node: &Node) {
    let data = node.data();
    out.reserve(4 + path.len() + 4 + data.len() + 8 + 60);
    put_ustring(out, path);
    crate::proto::jute::put_buffer(out, data); // a null buffer stays null (-1)
    out.put_i64(acl_ref(node.acl_id()));
    let st = node.persisted();
    out.put_i64(st.czxid);
    out.put_i64(st.mzxid);
    out.put_i64(st.ctime);
    out.put_i64(st.mtime);
    out.put_i32(st.version);
    out.put_i32(st.cversion);
    out.put_i32(st.aversion);
    out.put_i64(st.ephemeral_owner);
    out.put_i64(st.pzxid);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriteStage {
    Head,
    Nodes,
    Done,
}

/// Writes a SNAP stream a piece at a time, so a large tree goes out in socket-sized
/// pieces instead of one buffer the size of the tree. It borrows the tree, so the tree
/// stays as it was when the stream began (the stream is exact, not fuzzy like
/// ZooKeeper's); the SNAP packet's zxid is the tree's `last_processed_zxid` then.
pub struct SnapWriter<'t> {
    tree: &'t DataTree,
    sessions: &'t [(i64, i32)],
    walk: PreOrder<'t>,
    stage: WriteStage,
}

impl<'t> SnapWriter<'t> {
    /// `sessions`: the global sessions with their timeouts (ZooKeeper sends
    /// `getSessionWithTimeOuts`), usually `tree.sessions()`.
    pub fn new(tree: &'t DataTree, sessions: &'t [(i64, i32)]) -> SnapWriter<'t> {
        SnapWriter {
            tree,
            sessions,
            walk: PreOrder::new(tree),
            stage: WriteStage::Head,
        }
    }

    pub fn is_done(&self) -> bool {
        self.stage == WriteStage::Done
    }

    /// Appends the next piece to `out`: whole records until at least `budget` bytes
    /// are added or the stream ends (the session table and ACL map go in the first
    /// piece whatever the budget). True once the signature is written.
    pub fn write_some(&mut self, out: &mut BytesMut, budget: usize) -> bool {
        let start = out.len();
        if self.stage == WriteStage::Head {
            out.reserve(4 + self.sessions.len() * 12);
            out.put_i32(self.sessions.len().min(i32::MAX as usize) as i32);
            for &(id, timeout) in self.sessions {
                out.put_i64(id);
                out.put_i32(timeout);
            }
            let entries = self.tree.acl_cache().entries();
            out.put_i32(entries.len() as i32);
            for (id, list) in entries {
                out.put_i64(acl_ref(id));
                out.put_i32(list.len() as i32);
                for acl in list.iter() {
                    acl.encode(out);
                }
            }
            self.stage = WriteStage::Nodes;
        }
        while self.stage == WriteStage::Nodes && out.len() - start < budget {
            match self.walk.advance() {
                Some(node) => put_node(out, self.walk.path(), node),
                None => {
                    put_ustring(out, END_OF_NODES);
                    put_ustring(out, SIGNATURE);
                    self.stage = WriteStage::Done;
                }
            }
        }
        self.is_done()
    }
}

/// The whole SNAP stream of `tree` into `out` in one go (see [`SnapWriter`]).
pub fn write_snap(tree: &DataTree, sessions: &[(i64, i32)], out: &mut BytesMut) {
    let mut w = SnapWriter::new(tree, sessions);
    while !w.write_some(out, usize::MAX) {}
}

/// Why a SNAP stream was refused. A Java follower would throw on the same input
/// (except where noted at the check), so the sync is abandoned and retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapError {
    /// A length over the limit (`BinaryInputArchive.checkLength`) or below -1.
    #[error("Unreasonable length = {len} for {what} (limit {max})")]
    Unreasonable {
        what: &'static str,
        len: i64,
        max: usize,
    },
    #[error("negative count {count} for {what}")]
    BadCount { what: &'static str, count: i32 },
    /// A path that is not "" (first) or an absolute path with non-empty names.
    #[error("invalid path {0:?} in snapshot")]
    BadPath(String),
    #[error("Invalid Datatree, unable to find parent {parent} of path {path}")]
    InvalidDatatree { parent: String, path: String },
    #[error("node {path} refers to ACL {acl_ref}, which the ACL map does not hold")]
    UnknownAcl { path: String, acl_ref: i64 },
    #[error("Missing signature")]
    MissingSignature,
    #[error("the snapshot stream ended early")]
    Incomplete,
}

/// One item could not be read: its bytes are not all here yet, or it is malformed.
enum Stall {
    NeedMore,
    Bad(SnapError),
}

impl From<SnapError> for Stall {
    fn from(e: SnapError) -> Stall {
        Stall::Bad(e)
    }
}

/// A cursor over the bytes at hand that tells "not here yet" from "malformed".
struct Cur<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Stall> {
        if self.buf.len() - self.pos < n {
            return Err(Stall::NeedMore);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn i32(&mut self) -> Result<i32, Stall> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i64(&mut self) -> Result<i64, Stall> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    /// A `buffer`/`ustring` body (`None`: null), its length checked against `max`
    /// before its bytes are waited for.
    fn raw(&mut self, what: &'static str, max: usize) -> Result<Option<&'a [u8]>, Stall> {
        let len = self.i32()?;
        if len == -1 {
            return Ok(None);
        }
        if len < 0 || len as usize > max {
            return Err(Stall::Bad(SnapError::Unreasonable {
                what,
                len: len.into(),
                max,
            }));
        }
        self.take(len as usize).map(Some)
    }

    fn stat(&mut self) -> Result<StatPersisted, Stall> {
        Ok(StatPersisted {
            czxid: self.i64()?,
            mzxid: self.i64()?,
            ctime: self.i64()?,
            mtime: self.i64()?,
            version: self.i32()?,
            cversion: self.i32()?,
            aversion: self.i32()?,
            ephemeral_owner: self.i64()?,
            pzxid: self.i64()?,
        })
    }
}

/// Where the reader is in the stream.
#[derive(Debug)]
enum Stage {
    SessionCount,
    Sessions {
        left: u32,
    },
    AclCount,
    /// Next: an ACL map entry's ref and list count, `left` entries to go.
    AclEntries {
        left: u32,
    },
    /// Inside an entry's list.
    AclList {
        entries_left: u32,
        acl_ref: i64,
        left: u32,
        list: Vec<Acl>,
    },
    Nodes,
    Signature,
    Done,
}

/// The tree and sessions a complete SNAP stream described.
#[derive(Clone)]
pub struct SnapLoad {
    /// With its sessions added, quota stats recounted (as `DataTree.setupQuota`), and
    /// `last_processed_zxid` still 0: the caller sets it to the SNAP packet's zxid.
    pub tree: DataTree,
    /// `(session id, timeout ms)` in stream order.
    pub sessions: Vec<(i64, i32)>,
}

/// Reads a SNAP stream fed in pieces as they arrive (see the module comment).
pub struct SnapReader {
    max_len: usize,
    stage: Stage,
    /// The start of an item whose bytes are not all here yet.
    pending: Vec<u8>,
    tree: DataTree,
    sessions: Vec<(i64, i32)>,
    /// The ACL map: wire ref -> list. Interned into the tree only when a node uses it,
    /// so unused entries are dropped (`purgeUnused`).
    acls: HashMap<i64, Vec<Acl>>,
    /// The ACL of the node put last (wire ref, our id): the node holds a reference, so
    /// the next node with the same ref can share it without hashing the list again.
    last_acl: Option<(i64, AclId)>,
    nodes_read: u64,
    /// Which of /zookeeper, /zookeeper/quota and /zookeeper/config the stream has
    /// given: our fresh tree already holds them, a Java follower's does not, and a
    /// node below one the stream has not given is refused as Java refuses it.
    builtins_read: [bool; 3],
    failed: Option<SnapError>,
}

const BUILTINS: [&str; 3] = [PROC_ZOOKEEPER, QUOTA_ZOOKEEPER, CONFIG_ZOOKEEPER];

impl SnapReader {
    /// `max_len`: the longest `ustring`/`buffer` accepted; ZooKeeper's is
    /// `jute.maxbuffer` plus `zookeeper.jute.maxbuffer.extrasize` (2 MiB by default).
    pub fn new(max_len: usize) -> SnapReader {
        SnapReader {
            max_len,
            stage: Stage::SessionCount,
            pending: Vec::new(),
            tree: DataTree::new(),
            sessions: Vec::new(),
            acls: HashMap::new(),
            last_acl: None,
            nodes_read: 0,
            builtins_read: [false; 3],
            failed: None,
        }
    }

    /// True once the signature has been read.
    pub fn is_done(&self) -> bool {
        matches!(self.stage, Stage::Done)
    }

    /// Nodes read so far (for progress logs).
    pub fn nodes_read(&self) -> u64 {
        self.nodes_read
    }

    /// Takes the next bytes of the socket. Returns how many belong to the stream: all
    /// of `buf` until the signature, then only up to its end (what follows is the next
    /// QuorumPacket), then 0. An error is final: every later call repeats it.
    pub fn feed(&mut self, buf: &[u8]) -> Result<usize, SnapError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.is_done() {
            return Ok(0);
        }
        let result = if self.pending.is_empty() {
            self.parse(buf).map(|used| {
                if self.is_done() {
                    used
                } else {
                    self.pending.extend_from_slice(&buf[used..]);
                    buf.len()
                }
            })
        } else {
            // An item began in an earlier piece: read on from a copy that joins them.
            let held = self.pending.len();
            let mut joined = std::mem::take(&mut self.pending);
            joined.extend_from_slice(buf);
            self.parse(&joined).map(|used| {
                if self.is_done() {
                    // The held bytes could not complete an item alone, so the stream
                    // ends past them.
                    used.saturating_sub(held)
                } else {
                    joined.drain(..used);
                    self.pending = joined;
                    buf.len()
                }
            })
        };
        if let Err(e) = &result {
            self.failed = Some(e.clone());
            self.pending = Vec::new();
        }
        result
    }

    /// The tree and sessions, once the stream is complete.
    pub fn finish(self) -> Result<SnapLoad, SnapError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if !self.is_done() {
            return Err(SnapError::Incomplete);
        }
        Ok(SnapLoad {
            tree: self.tree,
            sessions: self.sessions,
        })
    }

    /// Reads whole items from `s`; returns the bytes they took.
    fn parse(&mut self, s: &[u8]) -> Result<usize, SnapError> {
        let mut at = 0;
        loop {
            let (used, stalled) = match self.stage {
                Stage::Done => return Ok(at),
                Stage::Nodes => self.nodes(&s[at..])?,
                Stage::Signature => self.signature(&s[at..])?,
                _ => self.head(&s[at..])?,
            };
            at += used;
            if stalled {
                return Ok(at);
            }
        }
    }

    /// The session table and the ACL map, up to the first node. Returns the bytes
    /// taken and whether more are needed.
    fn head(&mut self, s: &[u8]) -> Result<(usize, bool), SnapError> {
        let mut at = 0;
        loop {
            let mut c = Cur { buf: s, pos: at };
            match self.head_item(&mut c) {
                Ok(()) => at = c.pos,
                Err(Stall::NeedMore) => return Ok((at, true)),
                Err(Stall::Bad(e)) => return Err(e),
            }
            if matches!(self.stage, Stage::Nodes) {
                return Ok((at, false));
            }
        }
    }

    /// One item of the head; the state moves only once the item is whole.
    fn head_item(&mut self, c: &mut Cur<'_>) -> Result<(), Stall> {
        let max = self.max_len;
        match &mut self.stage {
            Stage::SessionCount => {
                let n = c.i32()?;
                if n < 0 {
                    // Java reads a negative count as none; no writer sends one.
                    return Err(SnapError::BadCount {
                        what: "sessions",
                        count: n,
                    }
                    .into());
                }
                // Reserved by what can have arrived, not by what the count claims.
                self.sessions.reserve((n as usize).min(c.buf.len() / 12));
                self.stage = Stage::Sessions { left: n as u32 };
            }
            Stage::Sessions { left: 0 } => self.stage = Stage::AclCount,
            Stage::Sessions { left } => {
                let id = c.i64()?;
                let timeout = c.i32()?;
                *left -= 1;
                self.sessions.push((id, timeout));
            }
            Stage::AclCount => {
                let n = c.i32()?;
                if n < 0 {
                    return Err(SnapError::BadCount {
                        what: "ACL map",
                        count: n,
                    }
                    .into());
                }
                self.stage = Stage::AclEntries { left: n as u32 };
            }
            Stage::AclEntries { left: 0 } => self.stage = Stage::Nodes,
            Stage::AclEntries { left } => {
                let entries_left = *left - 1;
                let acl_ref = c.i64()?;
                let n = c.i32()?;
                // -1 (a null list) makes ZooKeeper throw "missing acls".
                if n < 0 {
                    return Err(SnapError::BadCount {
                        what: "ACL list",
                        count: n,
                    }
                    .into());
                }
                if n as usize > max / MIN_ACL_LEN {
                    return Err(SnapError::Unreasonable {
                        what: "ACL list",
                        len: n.into(),
                        max: max / MIN_ACL_LEN,
                    }
                    .into());
                }
                self.stage = Stage::AclList {
                    entries_left,
                    acl_ref,
                    left: n as u32,
                    list: Vec::new(),
                };
            }
            Stage::AclList {
                entries_left,
                acl_ref,
                left: 0,
                list,
            } => {
                // A ref given twice: the later list wins, as in ZooKeeper's map.
                self.acls.insert(*acl_ref, std::mem::take(list));
                self.stage = Stage::AclEntries {
                    left: *entries_left,
                };
            }
            Stage::AclList { left, list, .. } => {
                let perms = c.i32()?;
                let scheme = c.raw("ACL scheme", max)?;
                let id = c.raw("ACL id", max)?;
                *left -= 1;
                list.push(Acl {
                    perms,
                    id: Id {
                        scheme: java_string(scheme),
                        id: java_string(id),
                    },
                });
            }
            Stage::Nodes | Stage::Signature | Stage::Done => {}
        }
        Ok(())
    }

    /// Nodes up to the end marker, put into the tree through a [`Restorer`] (which
    /// indexes ephemerals, containers, TTLs and quotas and links children in runs).
    fn nodes(&mut self, s: &[u8]) -> Result<(usize, bool), SnapError> {
        let SnapReader {
            max_len,
            stage,
            tree,
            acls,
            last_acl,
            nodes_read,
            builtins_read,
            ..
        } = self;
        let max = *max_len;
        let mut restorer = Restorer::new(tree);
        let mut at = 0;
        let outcome = loop {
            let mut c = Cur { buf: s, pos: at };
            // Decoded only once the whole record is here: an item is retried as its
            // bytes trickle in, and a long path must not be decoded on every try.
            let path = match c.raw("path", max) {
                Ok(Some(p)) => p,
                Ok(None) => break Err(SnapError::BadPath("(null)".into())),
                Err(Stall::NeedMore) => break Ok(true),
                Err(Stall::Bad(e)) => break Err(e),
            };
            if path == END_OF_NODES.as_bytes() {
                at = c.pos;
                *stage = Stage::Signature;
                break Ok(false);
            }
            let data = match c.raw("data", max) {
                Ok(d) => d,
                Err(Stall::NeedMore) => break Ok(true),
                Err(Stall::Bad(e)) => break Err(e),
            };
            let (acl_ref, stat) = match c.i64().and_then(|a| Ok((a, c.stat()?))) {
                Ok(v) => v,
                Err(Stall::NeedMore) => break Ok(true),
                Err(Stall::Bad(e)) => break Err(e),
            };
            at = c.pos;

            let path = String::from_utf8_lossy(path);
            if let Err(e) = check_path(&path, *nodes_read, builtins_read) {
                break Err(e);
            }
            let acl = if acl_ref == OPEN_UNSAFE_ACL_ID {
                AclId::OPEN
            } else {
                match *last_acl {
                    Some((r, id)) if r == acl_ref => {
                        restorer.reuse_acl(id);
                        id
                    }
                    _ => match acls.get(&acl_ref) {
                        Some(list) => restorer.intern_acl(list),
                        // ZooKeeper logs this and loads on; the node's ACL is then
                        // unknown, which must not turn into an open one.
                        None => {
                            break Err(SnapError::UnknownAcl {
                                path: path.into_owned(),
                                acl_ref,
                            })
                        }
                    },
                }
            };
            let data = data.unwrap_or(null_slice());
            if restorer.node(&path, data, acl, stat).is_err() {
                let parent = split_path(&path).map_or("", |(p, _)| p);
                let parent = if parent == "/" { "" } else { parent };
                break Err(SnapError::InvalidDatatree {
                    parent: parent.to_string(),
                    path: path.into_owned(),
                });
            }
            *last_acl = (acl != AclId::OPEN).then_some((acl_ref, acl));
            *nodes_read += 1;
        };
        // Links the children the restorer holds, so the tree is whole between pieces.
        restorer.finish();
        let stalled = outcome?;
        if matches!(self.stage, Stage::Signature) {
            self.end_of_nodes();
        }
        Ok((at, stalled))
    }

    /// What ZooKeeper does once the nodes are read: quota stats recounted
    /// (`setupQuota`), and the session table (kept by our tree, by ZKDatabase there).
    fn end_of_nodes(&mut self) {
        setup_quota(&mut self.tree);
        for &(id, timeout) in &self.sessions {
            self.tree.add_session(id, timeout);
        }
    }

    fn signature(&mut self, s: &[u8]) -> Result<(usize, bool), SnapError> {
        let mut c = Cur { buf: s, pos: 0 };
        // A length other than the signature's is refused at once: waiting for that
        // many bytes could only end in the same refusal.
        match c.i32() {
            Ok(n) if n == SIGNATURE.len() as i32 => {}
            Ok(_) => return Err(SnapError::MissingSignature),
            Err(_) => return Ok((0, true)),
        }
        match c.take(SIGNATURE.len()) {
            Ok(b) if b == SIGNATURE.as_bytes() => {
                self.stage = Stage::Done;
                Ok((c.pos, false))
            }
            Ok(_) => Err(SnapError::MissingSignature),
            Err(_) => Ok((0, true)),
        }
    }
}

/// A `ustring` as Java's `readString` decodes it: malformed UTF-8 becomes U+FFFD (a
/// Java writer sends a character outside the BMP as CESU-8), null becomes "".
fn java_string(b: Option<&[u8]>) -> String {
    b.map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default()
}

/// A node's path must be the root first, then absolute with non-empty names, and a
/// built-in parent must have come before it in the stream.
fn check_path(path: &str, nodes_read: u64, builtins_read: &mut [bool; 3]) -> Result<(), SnapError> {
    if nodes_read == 0 {
        if !path.is_empty() {
            // DataTree.deserialize finds no parent: the root is always first.
            return Err(SnapError::InvalidDatatree {
                parent: String::new(),
                path: path.to_string(),
            });
        }
        return Ok(());
    }
    if !path.starts_with('/') || path.ends_with('/') || path.contains("//") {
        return Err(SnapError::BadPath(path.to_string()));
    }
    if path.starts_with(PROC_ZOOKEEPER) {
        let parent = split_path(path).map_or("", |(p, _)| p);
        for (i, b) in BUILTINS.iter().enumerate() {
            if parent == *b && !builtins_read[i] {
                return Err(SnapError::InvalidDatatree {
                    parent: parent.to_string(),
                    path: path.to_string(),
                });
            }
            if path == *b {
                builtins_read[i] = true;
            }
        }
    }
    Ok(())
}

/// `DataTree.setupQuota`: each limit node under /zookeeper/quota that has no
/// children names a quota'd path, whose stats node is rewritten with the count and
/// bytes of that subtree as loaded. A fuzzy snapshot can hold stats out of step with
/// the nodes; ZooKeeper recounts, so the trees (and later the stats) agree.
fn setup_quota(tree: &mut DataTree) {
    let limit_suffix = format!("/{LIMIT_NODE}");
    let mut limits = Vec::new();
    let mut stack = vec![QUOTA_ZOOKEEPER.to_string()];
    while let Some(p) = stack.pop() {
        let Some(n) = tree.get(&p) else { continue };
        if n.num_children() == 0 {
            if p.ends_with(&limit_suffix) {
                limits.push(p);
            }
            continue;
        }
        stack.extend(n.children().map(|c| format!("{p}/{c}")));
    }
    for limit in limits {
        // `path.indexOf("/zookeeper_limits")`: the first occurrence, as ZooKeeper.
        let Some(end) = limit.find(&limit_suffix) else {
            continue;
        };
        let Some(real) = limit.get(QUOTA_ZOOKEEPER.len()..end) else {
            continue;
        };
        let (count, bytes) = subtree_counts(tree, real);
        let sp = quota::stat_path(real);
        let Some(stats) = tree.get(&sp) else { continue };
        let mut st = StatsTrack::default();
        st.set_count(count);
        st.set_bytes(bytes);
        let text = st.to_text();
        if stats.data()[..] == *text.as_bytes() {
            continue;
        }
        let (acl, stat) = (stats.acl_id(), *stats.persisted());
        let mut r = Restorer::new(tree);
        // The node keeps its ACL: one more use for the record, one less for the old.
        r.reuse_acl(acl);
        let _ = r.node(&sp, text.as_bytes(), acl, stat);
        r.finish();
    }
}

/// `DataTree.getCounts`: nodes and data bytes in the subtree at `path`.
fn subtree_counts(tree: &DataTree, path: &str) -> (i64, i64) {
    let (mut count, mut bytes) = (0i64, 0i64);
    let mut stack = vec![path.to_string()];
    while let Some(p) = stack.pop() {
        let Some(n) = tree.get(&p) else { continue };
        count += 1;
        bytes += n.data().len() as i64;
        stack.extend(n.children().map(|c| format!("{p}/{c}")));
    }
    (count, bytes)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::proto::ephemeral_owner;
    use crate::proto::jute::{is_null_buffer, null_buffer};
    use crate::quorum::digest::tree_digest;
    use crate::tree::{open_acl_unsafe, read_acl_unsafe};
    use bytes::Bytes;

    // Streams written by ZooKeeper 3.8.0's own code (Debian's zookeeper.jar) with
    //     SerializeUtils.serializeSnapshot(tree, BinaryOutputArchive.getArchive(bos), sessions);
    //     oa.writeString("BenWasHere", "signature");
    // as LearnerHandler sends them, hex-dumped. JAVA_FRESH_TREE is `new DataTree()` with
    // no sessions; JAVA_RICH_TREE is the tree of `Oracle.rich` (in [`rich_tree`]'s
    // comment), built through ZooKeeper's DataTree API with the same calls as
    // `rich_tree` makes on ours.
    const JAVA_FRESH_TREE: &str = concat!(
        "00000000000000010000000000000001000000010000000100000005776f726c6400000006616e796f6e6500",
        "00000000000000ffffffffffffffff0000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000a2f7a6f6f6b65657065",
        "7200000000ffffffffffffffff00000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000112f7a6f6f6b65657065722f",
        "636f6e6669670000000000000000000000010000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000ffffffff00000000000000000000000000000000000000102f7a6f6f6b65",
        "657065722f71756f746100000000ffffffffffffffff00000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000012f00",
        "00000a42656e57617348657265",
    );

    const JAVA_RICH_TREE: &str = concat!(
        "00000003000000000000010000007530000000000000020000002710000000000000030000000fa000000003",
        "0000000000000001000000010000000100000005776f726c6400000006616e796f6e65000000000000000200",
        "0000010000001f00000005776f726c6400000006616e796f6e65000000000000000400000001000000030000",
        "00026970000000093132372e302e302e310000000000000009726f6f742064617461ffffffffffffffff0000",
        "0000000000000000000000000010000000000000000000000000000003f80000000100000005000000000000",
        "000000000000000000000000000f000000042f6170700000000668656c6c6f32000000000000000200000000",
        "00000001000000000000000800000000000003e900000000000003f000000001000000040000000000000000",
        "00000000000000000000000e000000132f6170702f7365712d30303030303030303032ffffffff0000000000",
        "0000040000000000000004000000000000000400000000000003ec00000000000003ec000000000000000000",
        "000000000000000000020000000000000000040000000a2f6170702f6166746572000000027a7a0000000000",
        "000002000000000000000e000000000000000e00000000000003f600000000000003f6000000000000000000",
        "0000000000000000000300000000000000000e000000082f6170702f65706800000000000000000000000200",
        "00000000000003000000000000000300000000000003eb00000000000003eb00000000000000000000000000",
        "000000000001000000000000000003000000082f6170702f63666700000003783d3100000000000000010000",
        "000000000002000000000000000200000000000003ea00000000000003ea0000000000000000000000010000",
        "00000000000000000000000000020000000a2f7a6f6f6b656570657200000000ffffffffffffffff00000000",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000112f7a6f6f6b65657065722f636f6e6669670000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000000000000000000000ffffff",
        "ff00000000000000000000000000000000000000102f7a6f6f6b65657065722f71756f746100000000ffffff",
        "ffffffffff000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "01000000000000000000000000000000000000000b000000142f7a6f6f6b65657065722f71756f74612f6170",
        "70000000000000000000000002000000000000000b000000000000000b00000000000003f300000000000003",
        "f30000000000000002000000000000000000000000000000000000000d000000252f7a6f6f6b65657065722f",
        "71756f74612f6170702f7a6f6f6b65657065725f6c696d69747300000011636f756e743d31302c6279746573",
        "3d2d310000000000000002000000000000000c000000000000000c00000000000003f400000000000003f400",
        "00000000000000000000000000000000000000000000000000000c000000242f7a6f6f6b65657065722f7175",
        "6f74612f6170702f7a6f6f6b65657065725f737461747300000010636f756e743d352c62797465733d313100",
        "00000000000002000000000000000d000000000000000d00000000000003f500000000000003f50000000000",
        "000000000000000000000000000000000000000000000d000000052f636f6e74000000016300000000000000",
        "020000000000000005000000000000000500000000000003ed00000000000003ed0000000000000001000000",
        "00800000000000000000000000000000060000000b2f636f6e742f6368696c64000000026363000000000000",
        "00020000000000000006000000000000000600000000000003ee00000000000003ee00000000000000000000",
        "000000000000000000000000000000000006000000032fc3bc00000001750000000000000002000000000000",
        "000f000000000000000f00000000000003f700000000000003f7000000000000000000000000000000000000",
        "0000000000000000000f000000042f74746c0000000174000000000000000200000000000000070000000000",
        "00000700000000000003ef00000000000003ef000000000000000000000000ff000000000013880000000000",
        "000007000000012f0000000a42656e57617348657265",
    );

    /// `Oracle.rich`'s `getTreeDigest()` for that tree.
    pub(crate) const JAVA_RICH_TREE_DIGEST: i64 = 20341541998;

    pub(crate) fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    pub(crate) fn acl(perms: i32, scheme: &str, id: &str) -> Acl {
        Acl {
            perms,
            id: Id {
                scheme: scheme.into(),
                id: id.into(),
            },
        }
    }

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    /// Plain, ephemeral, sequential, container and TTL nodes, four ACL lists (one
    /// released again), a quota with its stats, a deleted node, a non-ASCII name and
    /// root data; three sessions. The same calls, on ZooKeeper's DataTree, made the
    /// Java oracle's tree (`java -Dfile.encoding=UTF-8 -Dzookeeper.extendedTypesEnabled=true
    /// -cp .:zookeeper.jar:zookeeper-jute.jar:slf4j-nop.jar org.apache.zookeeper.server.Oracle rich`):
    ///
    /// ```java
    /// package org.apache.zookeeper.server;   // for DigestCalculator and lastProcessedZxid
    /// static DataTree rich(Map<Long, Integer> sessions) throws Exception {
    ///   DataTree t = new DataTree();
    ///   sessions.put(0x100L, 30000); sessions.put(0x200L, 10000); sessions.put(0x300L, 4000);
    ///   List<ACL> open = ZooDefs.Ids.OPEN_ACL_UNSAFE;
    ///   t.createNode("/app", b("hello"), open, 0, -1, 1, 1001);
    ///   t.createNode("/app/cfg", b("x=1"), acl(31, "digest", "user:pw", 1, "world", "anyone"), 0, -1, 2, 1002);
    ///   t.createNode("/app/eph", b(""), open, 0x100, -1, 3, 1003);
    ///   t.createNode("/app/seq-0000000002", null, acl(3, "ip", "127.0.0.1"), 0x200, -1, 4, 1004);
    ///   t.createNode("/cont", b("c"), open, Long.MIN_VALUE, -1, 5, 1005);
    ///   t.createNode("/cont/child", b("cc"), open, 0, -1, 6, 1006);
    ///   t.createNode("/ttl", b("t"), open, 0xFF00000000000000L | 5000, -1, 7, 1007);
    ///   t.setData("/app", b("hello2"), 1, 8, 1008);
    ///   t.setACL("/app/cfg", ZooDefs.Ids.READ_ACL_UNSAFE, 1);
    ///   t.createNode("/gone", b("g"), open, 0, -1, 9, 1009);
    ///   t.deleteNode("/gone", 10);
    ///   t.createNode("/zookeeper/quota/app", b(""), open, 0, -1, 11, 1011);
    ///   t.createNode("/zookeeper/quota/app/zookeeper_limits", b("count=10,bytes=-1"), open, 0, -1, 12, 1012);
    ///   t.createNode("/zookeeper/quota/app/zookeeper_stats", b("count=0,bytes=0"), open, 0, -1, 13, 1013);
    ///   t.createNode("/app/after", b("zz"), open, 0x300, -1, 14, 1014);
    ///   t.createNode("/\u00fc", b("u"), open, 0, -1, 15, 1015);
    ///   t.setData("/", b("root data"), 1, 16, 1016);
    ///   t.lastProcessedZxid = 16;
    ///   return t;
    /// }
    /// // then: print t.getTreeDigest() and the hex of the stream, as in JAVA_RICH_TREE.
    /// ```
    pub(crate) fn rich_tree() -> DataTree {
        let mut t = DataTree::new();
        for (id, timeout) in [(0x100, 30000), (0x200, 10000), (0x300, 4000)] {
            t.add_session(id, timeout);
        }
        let open = open_acl_unsafe();
        let create = |t: &mut DataTree, path: &str, data: Bytes, acl: &[Acl], owner, zxid| {
            t.create_node(path, data, acl, owner, -1, zxid, 1000 + zxid)
                .unwrap_or_else(|e| panic!("{path}: {e:?}"));
        };
        create(&mut t, "/app", b("hello"), &open, 0, 1);
        let cfg_acl = [acl(31, "digest", "user:pw"), acl(1, "world", "anyone")];
        create(&mut t, "/app/cfg", b("x=1"), &cfg_acl, 0, 2);
        create(&mut t, "/app/eph", b(""), &open, 0x100, 3);
        let ip = [acl(3, "ip", "127.0.0.1")];
        create(&mut t, "/app/seq-0000000002", null_buffer(), &ip, 0x200, 4);
        create(
            &mut t,
            "/cont",
            b("c"),
            &open,
            ephemeral_owner::CONTAINER,
            5,
        );
        create(&mut t, "/cont/child", b("cc"), &open, 0, 6);
        create(&mut t, "/ttl", b("t"), &open, ephemeral_owner::ttl(5000), 7);
        t.set_data("/app", b("hello2"), 1, 8, 1008).unwrap();
        t.set_acl("/app/cfg", &read_acl_unsafe(), 1).unwrap();
        create(&mut t, "/gone", b("g"), &open, 0, 9);
        t.delete_node("/gone", 10).unwrap();
        create(&mut t, "/zookeeper/quota/app", b(""), &open, 0, 11);
        let limits = b("count=10,bytes=-1");
        create(
            &mut t,
            "/zookeeper/quota/app/zookeeper_limits",
            limits,
            &open,
            0,
            12,
        );
        let stats = b("count=0,bytes=0");
        create(
            &mut t,
            "/zookeeper/quota/app/zookeeper_stats",
            stats,
            &open,
            0,
            13,
        );
        create(&mut t, "/app/after", b("zz"), &open, 0x300, 14);
        create(&mut t, "/\u{fc}", b("u"), &open, 0, 15);
        t.set_data("/", b("root data"), 1, 16, 1016).unwrap();
        t.set_last_processed_zxid(16);
        t
    }

    /// Everything a tree holds that a SNAP carries or derives, in a canonical form. A
    /// live tree's data size leaves out quota stats rewrites (as ZooKeeper's does) and
    /// a loaded one counts the stats as loaded, so `size` only for loaded trees.
    fn canon(t: &DataTree, size: bool) -> String {
        let mut out = String::new();
        let mut walk = PreOrder::new(t);
        while let Some(n) = walk.advance() {
            let kids: Vec<&str> = n.children().collect();
            out.push_str(&format!(
                "{:?} {:?} null={} {:?} {:?} {:?}\n",
                walk.path(),
                &n.data()[..],
                is_null_buffer(n.data()),
                &**t.acl(n),
                n.persisted(),
                kids
            ));
        }
        out.push_str(&format!(
            "sessions {:?}\nephemerals {:?}\ncontainers {:?}\nttls {:?}\n",
            t.sessions(),
            t.sessions_with_ephemerals(),
            t.containers(),
            t.ttls()
        ));
        out.push_str(&format!(
            "quota {:?} nodes {} acls {} digest {}\n",
            ["/app/cfg", "/cont", "/"].map(|p| t.max_prefix_with_quota(p)),
            t.node_count(),
            t.acl_cache_size(),
            tree_digest(t)
        ));
        if size {
            out.push_str(&format!("size {}\n", t.approximate_data_size()));
        }
        out
    }

    fn stream_of(t: &DataTree) -> Vec<u8> {
        let mut out = BytesMut::new();
        write_snap(t, &t.sessions(), &mut out);
        out.to_vec()
    }

    /// Reads `stream` fed in pieces of `piece` bytes; the whole of it must be taken.
    fn read(stream: &[u8], piece: usize) -> SnapLoad {
        let mut r = SnapReader::new(0xfffff * 2);
        let mut taken = 0;
        for chunk in stream.chunks(piece) {
            taken += r.feed(chunk).unwrap();
        }
        assert_eq!(taken, stream.len());
        r.finish().unwrap()
    }

    #[test]
    fn a_fresh_tree_streams_byte_for_byte_as_zookeeper() {
        // No sessions; the ACL map holds READ_ACL_UNSAFE as ref 1 (the config node's);
        // "", /zookeeper, /zookeeper/config (ref 1, aversion -1), /zookeeper/quota with
        // the others on -1 (OPEN_ACL_UNSAFE); "/" and the signature.
        let ours = stream_of(&DataTree::new());
        assert_eq!(ours, unhex(JAVA_FRESH_TREE));
        assert_eq!(ours.len(), 409);
    }

    #[test]
    fn zookeepers_stream_loads_into_the_tree_the_same_calls_build() {
        let ours = rich_tree();
        let java = unhex(JAVA_RICH_TREE);
        let mut loaded = read(&java, java.len());
        loaded.tree.set_last_processed_zxid(16);
        assert_eq!(canon(&loaded.tree, false), canon(&ours, false));
        assert_eq!(
            loaded.sessions,
            vec![(0x100, 30000), (0x200, 10000), (0x300, 4000)]
        );
        assert_eq!(tree_digest(&loaded.tree), JAVA_RICH_TREE_DIGEST);
        assert_eq!(loaded.tree.ephemerals(0x100), vec!["/app/eph".to_string()]);
        assert_eq!(
            loaded.tree.ephemerals(0x200),
            vec!["/app/seq-0000000002".to_string()]
        );
        assert_eq!(loaded.tree.containers(), vec!["/cont".to_string()]);
        assert_eq!(loaded.tree.ttls(), vec!["/ttl".to_string()]);
        let seq = loaded.tree.get("/app/seq-0000000002").unwrap();
        assert!(is_null_buffer(seq.data()));
        assert_eq!(&**loaded.tree.acl(seq), &[acl(3, "ip", "127.0.0.1")][..]);
        assert_eq!(
            &**loaded.tree.acl_of("/app/cfg").unwrap(),
            &read_acl_unsafe()[..]
        );
        // ZooKeeper's ACL map held three lists; the digest+world one was released.
        assert_eq!(loaded.tree.acl_cache_size(), 3);
    }

    #[test]
    fn our_stream_reads_back_as_the_same_tree() {
        let t = rich_tree();
        let stream = stream_of(&t);
        // Ours lists siblings in name order, ZooKeeper in HashSet order: the same
        // records, so the same length.
        assert_eq!(stream.len(), unhex(JAVA_RICH_TREE).len());
        let mut loaded = read(&stream, 4096);
        loaded.tree.set_last_processed_zxid(16);
        assert_eq!(canon(&loaded.tree, false), canon(&t, false));
        assert_eq!(loaded.sessions, t.sessions());
        // Loaded from ZooKeeper's stream or from ours: the same, data size included.
        let java = unhex(JAVA_RICH_TREE);
        let mut from_java = read(&java, 7);
        from_java.tree.set_last_processed_zxid(16);
        assert_eq!(canon(&from_java.tree, true), canon(&loaded.tree, true));
        // A second round trip: the loaded tree numbers its ACL lists afresh (in the
        // order nodes use them), so the refs may differ, but nothing else.
        let again = stream_of(&loaded.tree);
        assert_eq!(again.len(), stream.len());
        let mut reloaded = read(&again, 1);
        reloaded.tree.set_last_processed_zxid(16);
        assert_eq!(canon(&reloaded.tree, true), canon(&loaded.tree, true));
    }

    /// Prints our stream of [`rich_tree`] for ZooKeeper to read:
    /// `cargo test --lib dump_rich_stream_for_java -- --ignored --nocapture`, the hex
    /// line into `ours.hex`, then (same package and class path as `rich_tree`'s):
    ///
    /// ```java
    /// byte[] in = unhex(new String(Files.readAllBytes(Paths.get("ours.hex"))).trim());
    /// ByteArrayInputStream bis = new ByteArrayInputStream(in);
    /// BinaryInputArchive ia = BinaryInputArchive.getArchive(bis);
    /// DataTree t = new DataTree();
    /// Map<Long, Integer> sessions = new TreeMap<>();
    /// SerializeUtils.deserializeSnapshot(t, ia, sessions);   // as Learner.syncWithLeader
    /// String sig = ia.readString("signature");
    /// System.out.println("signature " + sig + " trailing " + bis.available());
    /// System.out.println("sessions " + sessions + " digest " + t.getTreeDigest());
    /// // and every node (path, data, ACL, StatPersisted), walking getChildren sorted
    /// ```
    ///
    /// ZooKeeper 3.8.0 read it: signature BenWasHere, 0 bytes trailing, the three
    /// sessions, digest 20341541998 (= JAVA_RICH_TREE_DIGEST), and a node listing
    /// identical to the one it prints for its own `rich` tree.
    #[test]
    #[ignore]
    fn dump_rich_stream_for_java() {
        let hex: String = stream_of(&rich_tree())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        println!("{hex}");
    }

    #[test]
    fn one_byte_at_a_time_it_stops_exactly_after_the_signature() {
        let stream = unhex(JAVA_RICH_TREE);
        // A QuorumPacket (UPTODATE) follows on the same socket.
        let mut wire = stream.clone();
        wire.extend_from_slice(&[0, 0, 0, 12, 0xff, 0xff, 0xff, 0xff]);
        let mut r = SnapReader::new(1 << 20);
        let mut taken = 0;
        for (i, byte) in wire.iter().enumerate() {
            let n = r.feed(std::slice::from_ref(byte)).unwrap();
            taken += n;
            assert_eq!(r.is_done(), i + 1 >= stream.len(), "at {i}");
            assert_eq!(n, usize::from(i < stream.len()), "at {i}");
        }
        assert_eq!(taken, stream.len());
        let one = r.finish().unwrap();
        let whole = read(&stream, stream.len());
        assert_eq!(canon(&one.tree, true), canon(&whole.tree, true));

        // Pieces of every size from 1 to 64, the last one running past the end.
        for piece in 1..=64 {
            let mut r = SnapReader::new(1 << 20);
            let mut taken = 0;
            for chunk in wire.chunks(piece) {
                taken += r.feed(chunk).unwrap();
            }
            assert_eq!(taken, stream.len(), "piece {piece}");
            assert_eq!(
                canon(&r.finish().unwrap().tree, true),
                canon(&whole.tree, true)
            );
        }
    }

    #[test]
    fn every_truncation_waits_for_more_and_is_incomplete() {
        let stream = unhex(JAVA_RICH_TREE);
        for len in 0..stream.len() {
            let mut r = SnapReader::new(1 << 20);
            assert_eq!(r.feed(&stream[..len]), Ok(len), "at {len}");
            assert!(!r.is_done());
            assert_eq!(r.finish().err(), Some(SnapError::Incomplete), "at {len}");
        }
    }

    #[test]
    fn garbage_and_corrupted_streams_never_panic() {
        let stream = unhex(JAVA_RICH_TREE);
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut refused = 0;
        for round in 0..3000 {
            let mut bytes = stream.clone();
            if round % 3 == 0 {
                bytes.iter_mut().for_each(|b| *b = next() as u8);
            } else {
                for _ in 0..1 + round % 4 {
                    let i = next() as usize % bytes.len();
                    bytes[i] ^= 1 << (next() % 8);
                }
            }
            let mut r = SnapReader::new(1 << 16);
            let piece = 1 + next() as usize % 200;
            let mut taken = 0;
            let mut failed = None;
            for chunk in bytes.chunks(piece) {
                match r.feed(chunk) {
                    Ok(n) => taken += n,
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            match failed {
                Some(e) => {
                    refused += 1;
                    // An error is final.
                    assert_eq!(r.feed(&[0; 8]), Err(e.clone()));
                    assert_eq!(r.finish().err(), Some(e));
                }
                None => assert!(taken <= bytes.len()),
            }
        }
        assert!(refused > 1000, "{refused} refused");
    }

    /// A stream from parts: sessions, ACL map entries, nodes, then the end marker and
    /// `signature`.
    fn build(
        sessions: &[(i64, i32)],
        acls: &[(i64, Vec<Acl>)],
        nodes: &[(&str, &[u8], i64, StatPersisted)],
        signature: &str,
    ) -> Vec<u8> {
        let mut out = BytesMut::new();
        out.put_i32(sessions.len() as i32);
        for &(id, to) in sessions {
            out.put_i64(id);
            out.put_i32(to);
        }
        out.put_i32(acls.len() as i32);
        for (r, list) in acls {
            out.put_i64(*r);
            list.encode(&mut out);
        }
        for &(path, data, acl, stat) in nodes {
            put_ustring(&mut out, path);
            Bytes::copy_from_slice(data).encode(&mut out);
            out.put_i64(acl);
            out.put_i64(stat.czxid);
            out.put_i64(stat.mzxid);
            out.put_i64(stat.ctime);
            out.put_i64(stat.mtime);
            out.put_i32(stat.version);
            out.put_i32(stat.cversion);
            out.put_i32(stat.aversion);
            out.put_i64(stat.ephemeral_owner);
            out.put_i64(stat.pzxid);
        }
        put_ustring(&mut out, "/");
        put_ustring(&mut out, signature);
        out.to_vec()
    }

    fn feed_all(stream: &[u8]) -> Result<SnapLoad, SnapError> {
        let mut r = SnapReader::new(1024);
        r.feed(stream)?;
        r.finish()
    }

    #[test]
    fn malformed_streams_are_refused_with_zookeepers_reasons() {
        let st = StatPersisted::default();
        let builtins: Vec<(&str, &[u8], i64, StatPersisted)> = vec![
            ("", b"", -1, st),
            ("/zookeeper", b"", -1, st),
            ("/zookeeper/quota", b"", -1, st),
        ];
        let with = |extra: (&'static str, &'static [u8], i64, StatPersisted)| {
            let mut v = builtins.clone();
            v.push(extra);
            v
        };
        // A well-formed one loads.
        let ok = build(&[(5, 100)], &[], &with(("/a", b"x", -1, st)), SIGNATURE);
        let loaded = feed_all(&ok).unwrap();
        assert_eq!(loaded.tree.get("/a").unwrap().data(), &b("x"));
        assert_eq!(loaded.tree.session_timeout(5), Some(100));

        let orphan = build(&[], &[], &with(("/a/b", b"", -1, st)), SIGNATURE);
        assert_eq!(
            feed_all(&orphan).err(),
            Some(SnapError::InvalidDatatree {
                parent: "/a".into(),
                path: "/a/b".into()
            })
        );
        let rootless = build(&[], &[], &[("/a", b"", -1, st)], SIGNATURE);
        assert!(matches!(
            feed_all(&rootless),
            Err(SnapError::InvalidDatatree { .. })
        ));
        // /zookeeper/config is in our fresh tree but not yet in this stream.
        let early = build(
            &[],
            &[],
            &with(("/zookeeper/config/x", b"", -1, st)),
            SIGNATURE,
        );
        assert!(matches!(
            feed_all(&early),
            Err(SnapError::InvalidDatatree { .. })
        ));
        let unsigned = build(&[], &[], &builtins, "BenWasHers");
        assert_eq!(feed_all(&unsigned).err(), Some(SnapError::MissingSignature));
        let short_sig = build(&[], &[], &builtins, "Ben");
        assert_eq!(
            feed_all(&short_sig).err(),
            Some(SnapError::MissingSignature)
        );
        let dangling = build(&[], &[], &with(("/a", b"", 7, st)), SIGNATURE);
        assert_eq!(
            feed_all(&dangling).err(),
            Some(SnapError::UnknownAcl {
                path: "/a".into(),
                acl_ref: 7
            })
        );
        for bad in ["/a/", "//a", "a"] {
            let s = build(&[], &[], &with((bad, b"", -1, st)), SIGNATURE);
            assert!(matches!(feed_all(&s), Err(SnapError::BadPath(_))), "{bad}");
        }
        // Data over the limit is refused on its length alone: the claimed 2000 bytes
        // never arrive.
        let mut big = build(&[], &[], &builtins, SIGNATURE);
        big.truncate(big.len() - 4 - 1 - 4 - 10);
        big.extend_from_slice(&[0, 0, 0, 2, b'/', b'a', 0, 0, 0x07, 0xd0]);
        assert_eq!(
            feed_all(&big).err(),
            Some(SnapError::Unreasonable {
                what: "data",
                len: 2000,
                max: 1024
            })
        );
        // A null ACL list, a negative count and a list too long for any request.
        for (count, want) in [(-1, "ACL list"), (i32::MAX, "ACL list")] {
            let mut s = vec![0, 0, 0, 0, 0, 0, 0, 1];
            s.extend_from_slice(&3i64.to_be_bytes());
            s.extend_from_slice(&count.to_be_bytes());
            match feed_all(&s).err() {
                Some(SnapError::BadCount { what, .. })
                | Some(SnapError::Unreasonable { what, .. }) => {
                    assert_eq!(what, want)
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            feed_all(&[0xff, 0xff, 0xff, 0xfe]),
            Err(SnapError::BadCount { .. })
        ));
        // A huge session count is taken at its word, not allocated ahead.
        let mut r = SnapReader::new(1024);
        assert_eq!(r.feed(&i32::MAX.to_be_bytes()), Ok(4));
        assert!(r.sessions.capacity() < 1024);
    }

    #[test]
    fn stale_quota_stats_are_recounted_on_load() {
        let mut t = rich_tree();
        let stats = "/zookeeper/quota/app/zookeeper_stats";
        let stat = *t.get(stats).unwrap().persisted();
        t.restore_node(stats, b"count=99,bytes=99", &open_acl_unsafe(), stat)
            .unwrap();
        let loaded = read(&stream_of(&t), 100);
        let n = loaded.tree.get(stats).unwrap();
        assert_eq!(n.data(), &b("count=5,bytes=11"));
        assert_eq!(n.persisted(), &stat);
        assert_eq!(
            loaded.tree.max_prefix_with_quota("/app/cfg").as_deref(),
            Some("/app")
        );
    }

    #[test]
    fn a_large_tree_goes_in_pieces_and_comes_back_whole() {
        let mut t = DataTree::new();
        let acls = [
            open_acl_unsafe(),
            read_acl_unsafe(),
            vec![acl(31, "sasl", "u")],
        ];
        let mut zxid = 0;
        for i in 0..40 {
            zxid += 1;
            let p = format!("/d{i}");
            t.create_node(&p, b(&p), &acls[i % 3], 0, -1, zxid, zxid)
                .unwrap();
            for j in 0..100 {
                zxid += 1;
                let owner = if j % 7 == 0 { 0x40 + (j % 3) as i64 } else { 0 };
                let c = format!("{p}/n{j:04}");
                t.create_node(&c, b(&c), &acls[j % 3], owner, -1, zxid, zxid)
                    .unwrap();
            }
        }
        let whole = stream_of(&t);
        // The chunked writer: the same bytes, each piece at most one record over.
        let sessions = t.sessions();
        let mut w = SnapWriter::new(&t, &sessions);
        let mut pieced = Vec::new();
        let mut pieces = 0;
        loop {
            let mut out = BytesMut::new();
            let done = w.write_some(&mut out, 1000);
            assert!(out.len() < 1000 + 200 || pieces == 0, "{}", out.len());
            pieced.extend_from_slice(&out);
            pieces += 1;
            if done {
                break;
            }
        }
        assert!(w.is_done());
        assert!(pieces > 100);
        assert_eq!(pieced, whole);
        let loaded = read(&whole, 1500);
        assert_eq!(canon(&loaded.tree, true), canon(&t, true));
        assert_eq!(loaded.tree.ephemerals(0x40).len(), 40 * 5);
    }
}

#[cfg(test)]
mod speed {
    use super::*;
    use crate::tree::open_acl_unsafe;
    use bytes::Bytes;

    /// `cargo test --release --lib snap_speed -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn snap_speed() {
        let mut t = DataTree::new();
        t.create_node("/k", Bytes::new(), &open_acl_unsafe(), 0, -1, 1, 0)
            .unwrap();
        let data = Bytes::from(vec![7u8; 100]);
        for i in 0..1_000_000i64 {
            let path = format!("/k/{i:08}");
            t.create_node(&path, data.clone(), &open_acl_unsafe(), 0, -1, i + 2, 0)
                .unwrap();
        }
        let sessions = t.sessions();
        let started = std::time::Instant::now();
        let mut w = SnapWriter::new(&t, &sessions);
        let mut out = BytesMut::with_capacity(1 << 17);
        let mut stream = Vec::new();
        while !w.write_some(&mut out, 1 << 16) {
            stream.extend_from_slice(&out);
            out.clear();
        }
        stream.extend_from_slice(&out);
        eprintln!("write: {} bytes in {:?}", stream.len(), started.elapsed());
        let started = std::time::Instant::now();
        let mut r = SnapReader::new(1 << 21);
        for piece in stream.chunks(1 << 16) {
            r.feed(piece).unwrap();
        }
        let loaded = r.finish().unwrap();
        eprintln!("read: {:?}", started.elapsed());
        assert_eq!(loaded.tree.znode_count(), t.znode_count());
        let started = std::time::Instant::now();
        let d = crate::quorum::digest::tree_digest(&loaded.tree);
        eprintln!("digest {d}: {:?}", started.elapsed());
    }
}
