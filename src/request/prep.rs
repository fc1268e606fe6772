//! Turning write requests into txns on the commit shard: ZooKeeper's
//! `PrepRequestProcessor`. Checks run in ZooKeeper's order, so a request that breaks
//! several rules gets the same error code as from ZooKeeper.
//!
//! Txns are prepped before the commit shard's tree has applied the ones before them
//! (a whole batch is logged first), so prep reads the tree through the outstanding
//! changes (ZooKeeper's `ChangeRecord`s): the latest prepped state of every path that a
//! prepped-but-unapplied txn touched. `applied(zxid)` drops the ones the tree now shows.
//!
//! Where ZooKeeper's records lag the truth (a setACL record keeps the old ACL, a
//! closeSession record keeps the parent's child count, "" and "/" are separate keys
//! for the root), these records hold what the tree will hold once the txn is applied:
//! the answer ZooKeeper gives when the earlier txn has already been applied.

use ahash::{AHashMap as HashMap, AHashSet as HashSet};
use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;

use crate::acl;
use crate::proto::{
    ephemeral_owner, perms, Acl, CreateMode, ErrorCode, Id, MultiOp, OpCode, Request,
};
use crate::quorum::digest;
use crate::request::path::is_valid_path;
use crate::request::txn::Txn;
use crate::tree::{quota, DataTree, EphemeralType, NodeData, StatPersisted, StatsTrack};

/// Settings from zoo.cfg that change what prep accepts.
#[derive(Debug, Clone, Default)]
pub struct PrepConfig {
    /// `extendedTypesEnabled`: TTL nodes allowed.
    pub extended_types: bool,
    /// `enforceQuota`: exceeding a quota gives QuotaExceeded instead of a warning.
    pub enforce_quota: bool,
    /// `jute.maxbuffer`: the largest znode data accepted (0: no limit here).
    pub max_buffer: usize,
}

/// Who sent the request and when.
pub struct PrepCtx<'a> {
    pub session_id: i64,
    /// The session's authenticated ids (ip, digest, super, ...), as `acl` produces them.
    pub auth: &'a [Id],
    /// The commit shard's wall clock, milliseconds since the epoch. Must be the txn
    /// header's `time`: ctime/mtime of prepped records come from it.
    pub now_ms: i64,
}

/// The opcode for the header of the txn that `prep` made from a request of opcode
/// `req_op`: `Error` for an error txn, as ZooKeeper retypes a failed request's header.
pub fn txn_op(req_op: OpCode, txn: &Txn) -> OpCode {
    if matches!(txn, Txn::Error(_)) {
        OpCode::Error
    } else {
        req_op
    }
}

/// A path's state as prep sees it (`ChangeRecord` with a stat).
#[derive(Debug, Clone)]
struct PendingNode {
    stat: StatPersisted,
    child_count: i32,
    acl: Arc<[Acl]>,
    data: PendingData,
}

/// A pending node's data: the tree's (shared, not copied) or a request's new data.
#[derive(Debug, Clone)]
enum PendingData {
    Tree(NodeData),
    New(Bytes),
}

impl std::ops::Deref for PendingData {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            PendingData::Tree(d) => d,
            PendingData::New(b) => b,
        }
    }
}

/// The latest outstanding change of a path; `node: None` means deleted.
#[derive(Debug, Clone)]
struct Change {
    zxid: i64,
    node: Option<PendingNode>,
}

/// ZooKeeper's PrepRequestProcessor: holds the outstanding changes of txns that were
/// prepped but are not yet applied to the commit shard's tree.
pub struct Prepper {
    pub config: PrepConfig,
    /// `outstandingChangesForPath`: the latest change per path.
    latest: HashMap<String, Change>,
    /// `outstandingChanges`: (zxid, path) in prep order, to drop on `applied`.
    order: VecDeque<(i64, String)>,
    /// While prepping a multi: the changes it replaced, to restore if an op fails.
    undo: Option<Vec<(String, Option<Change>)>>,
    /// ZooKeeper's tree digest as it will be once every prepped txn is applied (an
    /// ensemble leader sends it in each proposal's TxnDigest); None when off.
    digest: Option<i64>,
    /// The digest before the multi being prepped, to restore if an op fails.
    undo_digest: Option<i64>,
}

type PResult<T> = Result<T, ErrorCode>;

/// ZooKeeper keys the root as "" when it is a parent; both mean "/".
fn key(path: &str) -> &str {
    if path.is_empty() {
        "/"
    } else {
        path
    }
}

/// `checkAndIncVersion`.
fn check_and_inc_version(current: i32, expected: i32) -> PResult<i32> {
    if expected != -1 && expected != current {
        return Err(ErrorCode::BadVersion);
    }
    let next = current.wrapping_add(1);
    Ok(if next == -1 { 0 } else { next })
}

/// `removeDuplicates` then `fixupACL`.
fn fixup(acl_list: &[Acl], auth: &[Id]) -> PResult<Vec<Acl>> {
    let mut uniq: Vec<Acl> = Vec::with_capacity(acl_list.len());
    for a in acl_list {
        if !uniq.contains(a) {
            uniq.push(a.clone());
        }
    }
    if uniq.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    acl::fixup_acl(&uniq, auth)
}

fn check_perm(acl_list: &[Acl], perm: i32, auth: &[Id]) -> PResult<()> {
    if acl::check_acl(acl_list, perm, auth) {
        Ok(())
    } else {
        Err(ErrorCode::NoAuth)
    }
}

fn validate_path(path: &str) -> PResult<()> {
    if is_valid_path(path) {
        Ok(())
    } else {
        Err(ErrorCode::BadArguments)
    }
}

/// The opcode of a create op inside a multi. ZooKeeper 3.9 keeps the opcode the client
/// sent, so a create2 op answers with path and Stat (3.8.0 dropped it and answered with
/// the path only, ZOOKEEPER-4026). A plain create with container flags makes a
/// container, as in both.
fn multi_create_op(sent: OpCode, flags: i32) -> OpCode {
    if sent == OpCode::Create && CreateMode::from_flags(flags) == Some(CreateMode::Container) {
        OpCode::CreateContainer
    } else {
        sent
    }
}

/// `getParentPathAndValidate`: delete's only path check.
fn parent_for_delete(path: &str) -> PResult<&str> {
    let i = path.rfind('/').ok_or(ErrorCode::BadArguments)?;
    if path.contains('\0') || DataTree::is_special_path(path) {
        return Err(ErrorCode::BadArguments);
    }
    Ok(&path[..i])
}

impl Prepper {
    pub fn new(config: PrepConfig) -> Self {
        Prepper {
            config,
            latest: HashMap::new(),
            order: VecDeque::new(),
            undo: None,
            digest: None,
            undo_digest: None,
        }
    }

    /// How many outstanding changes are held (ZooKeeper's `outstandingChanges` size).
    pub fn outstanding(&self) -> usize {
        self.order.len()
    }

    /// `getRecordForPath`.
    fn record(&self, tree: &DataTree, path: &str) -> PResult<PendingNode> {
        let k = key(path);
        if let Some(c) = self.latest.get(k) {
            return c.node.clone().ok_or(ErrorCode::NoNode);
        }
        let n = tree.get(k).ok_or(ErrorCode::NoNode)?;
        Ok(PendingNode {
            stat: *n.persisted(),
            child_count: n.num_children().min(i32::MAX as usize) as i32,
            acl: tree.acl(n).clone(),
            data: PendingData::Tree(n.data().clone()),
        })
    }

    /// `addChangeRecord`. With the digest on, it moves by this path's change: the
    /// node's digest as it will be, less its digest as it was (its latest outstanding
    /// change, or the tree).
    fn add_change(&mut self, tree: &DataTree, zxid: i64, path: &str, node: Option<PendingNode>) {
        let k = key(path).to_string();
        if let Some(d) = self.digest.as_mut() {
            let before = match self.latest.get(&k) {
                Some(c) => c
                    .node
                    .as_ref()
                    .map_or(0, |n| digest::node_digest(&k, &n.data, &n.stat)),
                None => tree
                    .get(&k)
                    .map_or(0, |n| digest::node_digest(&k, n.data(), n.persisted())),
            };
            let after = node
                .as_ref()
                .map_or(0, |n| digest::node_digest(&k, &n.data, &n.stat));
            *d = d.wrapping_sub(before).wrapping_add(after);
        }
        let prev = self.latest.insert(k.clone(), Change { zxid, node });
        if let Some(u) = self.undo.as_mut() {
            u.push((k.clone(), prev));
        }
        self.order.push_back((zxid, k));
    }

    /// `rollbackPendingChanges`: forgets the records of a failed multi.
    fn rollback(&mut self, zxid: i64) {
        if let Some(u) = self.undo.as_mut() {
            while let Some((k, prev)) = u.pop() {
                match prev {
                    Some(c) => {
                        self.latest.insert(k, c);
                    }
                    None => {
                        self.latest.remove(&k);
                    }
                }
            }
        }
        while matches!(self.order.back(), Some((z, _)) if *z == zxid) {
            self.order.pop_back();
        }
    }

    /// Prepares a write `req` (create*, delete, setData, setACL, check, multi,
    /// closeSession, reconfig) as txn `zxid`. Errors become `Txn::Error`; use
    /// [`txn_op`] for the header's opcode.
    pub fn prep(&mut self, tree: &DataTree, zxid: i64, ctx: &PrepCtx, req: &Request) -> Txn {
        let r = match req {
            Request::Create { op, req: c } => {
                self.prep_create(tree, zxid, ctx, *op, &c.path, &c.data, &c.acl, c.flags, -1)
            }
            Request::CreateTtl(c) => self.prep_create(
                tree,
                zxid,
                ctx,
                OpCode::CreateTtl,
                &c.path,
                &c.data,
                &c.acl,
                c.flags,
                c.ttl,
            ),
            Request::Delete(d) => self.prep_delete(tree, zxid, ctx, &d.path, d.version),
            Request::SetData(s) => self.prep_set_data(tree, zxid, ctx, &s.path, &s.data, s.version),
            Request::SetAcl(s) => self.prep_set_acl(tree, zxid, ctx, &s.path, &s.acl, s.version),
            Request::Check(c) => self.prep_check(tree, ctx, &c.path, c.version),
            Request::Multi(m) => Ok(self.prep_multi(tree, zxid, ctx, &m.ops)),
            Request::CloseSession => Ok(self.prep_close_session(tree, zxid, ctx.session_id)),
            // Standalone ZooKeeper has reconfig disabled (reconfigEnabled=false).
            Request::Reconfig(_) => Err(ErrorCode::ReconfigDisabled),
            _ => Err(ErrorCode::Unimplemented),
        };
        r.unwrap_or_else(Txn::Error)
    }

    #[allow(clippy::too_many_arguments)]
    fn prep_create(
        &mut self,
        tree: &DataTree,
        zxid: i64,
        ctx: &PrepCtx,
        op: OpCode,
        path: &str,
        data: &Bytes,
        acl_list: &[Acl],
        flags: i32,
        ttl: i64,
    ) -> PResult<Txn> {
        let mode = CreateMode::from_flags(flags).ok_or(ErrorCode::BadArguments)?;
        // validateCreateRequest
        if mode.is_ttl() && !self.config.extended_types {
            return Err(ErrorCode::Unimplemented);
        }
        if mode.is_ttl() {
            if ttl > ephemeral_owner::MAX_TTL || ttl <= 0 {
                return Err(ErrorCode::BadArguments);
            }
        } else if ttl >= 0 || op == OpCode::CreateTtl {
            // validateTTL: a TTL with a mode that has none. (Inside a multi, `Op.create`
            // has already turned such an op into a plain create: see `prep_multi`.)
            return Err(ErrorCode::BadArguments);
        }
        // validatePathForCreate
        let last_slash = path.rfind('/').ok_or(ErrorCode::BadArguments)?;
        if path.contains('\0') {
            return Err(ErrorCode::BadArguments);
        }
        if self.config.max_buffer > 0 && data.len() > self.config.max_buffer {
            return Err(ErrorCode::MarshallingError);
        }
        let parent_path = &path[..last_slash];
        let list_acl = fixup(acl_list, ctx.auth)?;
        let parent = self.record(tree, parent_path)?;
        check_perm(&parent.acl, perms::CREATE, ctx.auth)?;
        let path = if mode.is_sequential() {
            format!("{path}{:010}", parent.stat.cversion)
        } else {
            path.to_string()
        };
        validate_path(&path)?;
        if self.record(tree, &path).is_ok() {
            return Err(ErrorCode::NodeExists);
        }
        if EphemeralType::of(parent.stat.ephemeral_owner) == EphemeralType::Normal {
            return Err(ErrorCode::NoChildrenForEphemerals);
        }
        let new_cversion = parent.stat.cversion.wrapping_add(1);
        self.check_quota(tree, &path, None, data.len())?;
        // The owner the applied node will have: ZooKeeper's apply derives it from the
        // txn type (createContainer, createTTL) or the ephemeral flag.
        let owner = match op {
            OpCode::CreateContainer => ephemeral_owner::CONTAINER,
            OpCode::CreateTtl => ephemeral_owner::ttl(ttl),
            _ if mode.is_ephemeral() => ctx.session_id,
            _ => 0,
        };
        let mut parent = parent;
        parent.child_count = parent.child_count.saturating_add(1);
        parent.stat.cversion = new_cversion;
        parent.stat.pzxid = zxid;
        self.add_change(tree, zxid, parent_path, Some(parent));
        let acl_arc: Arc<[Acl]> = list_acl.clone().into();
        self.add_change(
            tree,
            zxid,
            &path,
            Some(PendingNode {
                stat: StatPersisted::new_node(zxid, ctx.now_ms, owner),
                child_count: 0,
                acl: acl_arc,
                data: PendingData::New(data.clone()),
            }),
        );
        Ok(Txn::Create {
            path,
            data: data.clone(),
            acl: list_acl,
            ephemeral_owner: owner,
            parent_cversion: new_cversion,
        })
    }

    fn prep_delete(
        &mut self,
        tree: &DataTree,
        zxid: i64,
        ctx: &PrepCtx,
        path: &str,
        version: i32,
    ) -> PResult<Txn> {
        let parent_path = parent_for_delete(path)?;
        let mut parent = self.record(tree, parent_path)?;
        check_perm(&parent.acl, perms::DELETE, ctx.auth)?;
        let node = self.record(tree, path)?;
        check_and_inc_version(node.stat.version, version)?;
        if node.child_count > 0 {
            return Err(ErrorCode::NotEmpty);
        }
        parent.child_count -= 1;
        parent.stat.pzxid = zxid;
        self.add_change(tree, zxid, parent_path, Some(parent));
        self.add_change(tree, zxid, path, None);
        Ok(Txn::Delete {
            path: path.to_string(),
        })
    }

    fn prep_set_data(
        &mut self,
        tree: &DataTree,
        zxid: i64,
        ctx: &PrepCtx,
        path: &str,
        data: &Bytes,
        version: i32,
    ) -> PResult<Txn> {
        validate_path(path)?;
        if self.config.max_buffer > 0 && data.len() > self.config.max_buffer {
            return Err(ErrorCode::MarshallingError);
        }
        let mut node = self.record(tree, path)?;
        check_perm(&node.acl, perms::WRITE, ctx.auth)?;
        self.check_quota(tree, path, Some(node.data.len()), data.len())?;
        let new_version = check_and_inc_version(node.stat.version, version)?;
        node.stat.version = new_version;
        node.stat.mtime = ctx.now_ms;
        node.stat.mzxid = zxid;
        node.data = PendingData::New(data.clone());
        self.add_change(tree, zxid, path, Some(node));
        Ok(Txn::SetData {
            path: path.to_string(),
            data: data.clone(),
            version: new_version,
        })
    }

    fn prep_set_acl(
        &mut self,
        tree: &DataTree,
        zxid: i64,
        ctx: &PrepCtx,
        path: &str,
        acl_list: &[Acl],
        version: i32,
    ) -> PResult<Txn> {
        validate_path(path)?;
        let list_acl = fixup(acl_list, ctx.auth)?;
        let mut node = self.record(tree, path)?;
        check_perm(&node.acl, perms::ADMIN, ctx.auth)?;
        let new_version = check_and_inc_version(node.stat.aversion, version)?;
        node.stat.aversion = new_version;
        node.acl = list_acl.clone().into();
        self.add_change(tree, zxid, path, Some(node));
        Ok(Txn::SetAcl {
            path: path.to_string(),
            acl: list_acl,
            version: new_version,
        })
    }

    fn prep_check(
        &mut self,
        tree: &DataTree,
        ctx: &PrepCtx,
        path: &str,
        version: i32,
    ) -> PResult<Txn> {
        validate_path(path)?;
        let node = self.record(tree, path)?;
        check_perm(&node.acl, perms::READ, ctx.auth)?;
        let v = check_and_inc_version(node.stat.version, version)?;
        Ok(Txn::Check {
            path: path.to_string(),
            version: v,
        })
    }

    fn prep_multi(&mut self, tree: &DataTree, zxid: i64, ctx: &PrepCtx, ops: &[MultiOp]) -> Txn {
        // MultiOperationRecord refuses reads mixed into a write multi.
        if ops.iter().any(MultiOp::is_read) {
            return Txn::Error(ErrorCode::MarshallingError);
        }
        self.undo = Some(Vec::new());
        self.undo_digest = self.digest;
        let mut txns: Vec<(OpCode, Txn)> = Vec::with_capacity(ops.len());
        let mut failed = false;
        for op in ops {
            if failed {
                txns.push((OpCode::Error, Txn::Error(ErrorCode::RuntimeInconsistency)));
                continue;
            }
            let r = match op {
                MultiOp::Create { req, op: sent } => self.prep_create(
                    tree,
                    zxid,
                    ctx,
                    multi_create_op(*sent, req.flags),
                    &req.path,
                    &req.data,
                    &req.acl,
                    req.flags,
                    -1,
                ),
                MultiOp::CreateTtl(c) => {
                    // `Op.create(path, data, acl, flags, ttl)` keeps the TTL only for a
                    // TTL mode; otherwise the op is a plain create and the TTL is dropped.
                    let ttl_mode = CreateMode::from_flags(c.flags).is_some_and(|m| m.is_ttl());
                    let (op, ttl) = if ttl_mode {
                        (OpCode::CreateTtl, c.ttl)
                    } else {
                        (multi_create_op(OpCode::Create, c.flags), -1)
                    };
                    self.prep_create(tree, zxid, ctx, op, &c.path, &c.data, &c.acl, c.flags, ttl)
                }
                MultiOp::Delete(d) => self.prep_delete(tree, zxid, ctx, &d.path, d.version),
                MultiOp::SetData(s) => {
                    self.prep_set_data(tree, zxid, ctx, &s.path, &s.data, s.version)
                }
                MultiOp::Check(c) => self.prep_check(tree, ctx, &c.path, c.version),
                MultiOp::GetChildren(_) | MultiOp::GetData(_) => Err(ErrorCode::MarshallingError),
            };
            match r {
                Ok(t) => {
                    let sub_op = match op {
                        MultiOp::Create { req, op: sent } => multi_create_op(*sent, req.flags),
                        MultiOp::CreateTtl(c)
                            if !CreateMode::from_flags(c.flags).is_some_and(|m| m.is_ttl()) =>
                        {
                            multi_create_op(OpCode::Create, c.flags)
                        }
                        _ => op.opcode(),
                    };
                    txns.push((sub_op, t))
                }
                Err(e) => {
                    failed = true;
                    self.rollback(zxid);
                    self.digest = self.undo_digest;
                    txns.push((OpCode::Error, Txn::Error(e)));
                }
            }
        }
        self.undo = None;
        if failed {
            // Ops before the failing one report Ok (see `Txn::Multi`).
            for (op, t) in txns.iter_mut() {
                if matches!(t, Txn::Error(_)) {
                    break;
                }
                *op = OpCode::Error;
                *t = Txn::Error(ErrorCode::Ok);
            }
        }
        Txn::Multi(txns)
    }

    fn prep_close_session(&mut self, tree: &DataTree, zxid: i64, session_id: i64) -> Txn {
        let mut es: HashSet<String> = tree.ephemerals(session_id).into_iter().collect();
        for (path, c) in &self.latest {
            match &c.node {
                None => {
                    es.remove(path);
                }
                Some(n) if n.stat.ephemeral_owner == session_id => {
                    es.insert(path.clone());
                }
                Some(_) => {}
            }
        }
        let mut es: Vec<String> = es.into_iter().collect();
        es.sort_unstable();
        for p in es {
            if let Some((parent_path, _)) = crate::tree::split_path(&p) {
                if let Ok(mut parent) = self.record(tree, parent_path) {
                    parent.child_count -= 1;
                    parent.stat.pzxid = zxid;
                    self.add_change(tree, zxid, parent_path, Some(parent));
                }
            }
            self.add_change(tree, zxid, &p, None);
        }
        Txn::CloseSession
    }

    /// `checkQuota`: only hard limits refuse, and only with `enforce_quota`. Reads the
    /// tree's limit and stats nodes, as ZooKeeper does.
    fn check_quota(
        &self,
        tree: &DataTree,
        path: &str,
        last_len: Option<usize>,
        new_len: usize,
    ) -> PResult<()> {
        if !self.config.enforce_quota {
            return Ok(());
        }
        let Some(prefix) = tree.max_prefix_with_quota(path) else {
            return Ok(());
        };
        let (bytes_diff, count_diff) = match last_len {
            None => (new_len as i64, 1i64),
            Some(old) => (new_len as i64 - old as i64, 0),
        };
        let Some(limit_node) = tree.get(&quota::limit_path(&prefix)) else {
            return Ok(());
        };
        let limits = StatsTrack::parse(limit_node.data());
        let check_count =
            count_diff != 0 && (limits.count() > -1 || limits.count_hard_limit() > -1);
        let check_bytes = bytes_diff != 0 && (limits.bytes() > -1 || limits.byte_hard_limit() > -1);
        if !check_count && !check_bytes {
            return Ok(());
        }
        let Some(stat_node) = tree.get(&quota::stat_path(&prefix)) else {
            return Ok(());
        };
        let current = StatsTrack::parse(stat_node.data());
        if check_count
            && limits.count_hard_limit() > -1
            && current.count() + count_diff > limits.count_hard_limit()
        {
            return Err(ErrorCode::QuotaExceeded);
        }
        if check_bytes
            && limits.byte_hard_limit() > -1
            && current.bytes() + bytes_diff > limits.byte_hard_limit()
        {
            return Err(ErrorCode::QuotaExceeded);
        }
        Ok(())
    }

    /// The txn that removes a container or an expired TTL node found by the reaper, or
    /// `None` if it no longer qualifies (ZooKeeper's deleteContainer prep: it must
    /// exist, be childless and be a container or TTL node). The txn's header should
    /// carry opcode `DeleteContainer` and session 0.
    pub fn prep_reap(&mut self, tree: &DataTree, zxid: i64, path: &str) -> Option<Txn> {
        let parent_path = parent_for_delete(path).ok()?;
        let node = self.record(tree, path).ok()?;
        if node.child_count > 0 {
            return None;
        }
        match EphemeralType::of(node.stat.ephemeral_owner) {
            EphemeralType::Container | EphemeralType::Ttl(_) => {}
            EphemeralType::Normal | EphemeralType::Void => return None,
        }
        let mut parent = self.record(tree, parent_path).ok()?;
        parent.child_count -= 1;
        parent.stat.pzxid = zxid;
        self.add_change(tree, zxid, parent_path, Some(parent));
        self.add_change(tree, zxid, path, None);
        Some(Txn::Delete {
            path: path.to_string(),
        })
    }

    /// Forgets the outstanding changes of every txn after `zxid`: they were prepped but
    /// will never be applied (their batch could not be logged), so the next txns must
    /// prep against the tree as if they never existed.
    ///
    /// Only the newest change of a path is kept, so an older outstanding change that a
    /// discarded one replaced cannot be brought back: this must be called only when
    /// every txn up to `zxid` is already applied, as in the commit task, which logs,
    /// applies and acknowledges one batch before it preps the next. Asserted, since a
    /// wrong record would prep txns against a state the tree never had.
    pub fn discard_after(&mut self, zxid: i64) {
        // The digest no longer follows the tree (only standalone servers discard).
        self.digest = None;
        while matches!(self.order.back(), Some((z, _)) if *z > zxid) {
            self.order.pop_back();
        }
        self.latest.retain(|_, c| c.zxid <= zxid);
        assert!(
            self.order.is_empty() && self.latest.is_empty(),
            "discarding prepped txns after {zxid:#x} while older ones are not yet applied"
        );
    }

    /// Turns the digest on, from the whole tree's (nothing may be outstanding).
    pub fn start_digest(&mut self, tree: &DataTree) {
        assert!(
            self.latest.is_empty(),
            "the digest starts from an applied tree"
        );
        self.digest = Some(crate::quorum::digest::tree_digest(tree));
    }

    /// The tree digest once everything prepped so far is applied, if on.
    pub fn digest(&self) -> Option<i64> {
        self.digest
    }

    /// Called after the txn `zxid` has been applied to the commit shard's tree: drops
    /// the outstanding changes it covered.
    pub fn applied(&mut self, zxid: i64) {
        while let Some((z, _)) = self.order.front() {
            if *z > zxid {
                break;
            }
            let (_, path) = self.order.pop_front().expect("front exists");
            if matches!(self.latest.get(&path), Some(c) if c.zxid <= zxid) {
                self.latest.remove(&path);
            }
        }
    }
}

#[cfg(test)]
mod tests;

/// `discard_after`: a batch that could not be logged leaves no trace in prep.
#[cfg(test)]
mod discard_tests {
    use super::*;
    use crate::proto::DeleteRequest;
    use crate::request::harness::*;

    #[test]
    fn discarded_txns_leave_prep_as_if_never_prepped() {
        let mut h = Harness::new();
        h.create("/p", 0);
        let logged = h.zxid;
        let parent_before = *h.tree.get("/p").unwrap().persisted();
        // A batch that is prepped, then refused by the log.
        let first = h.prep(&create_req("/p/a", b"x", 0));
        assert!(matches!(first, Txn::Create { .. }));
        let del = Request::Delete(DeleteRequest {
            path: "/p".into(),
            version: -1,
        });
        // /p has a child in the outstanding changes: NotEmpty.
        assert_eq!(h.prep(&del), Txn::Error(ErrorCode::NotEmpty));
        assert!(h.prepper.outstanding() > 0);
        h.pending.clear();
        h.prepper.discard_after(logged);
        assert_eq!(h.prepper.outstanding(), 0);
        // The next batch reuses the zxids and sees only the tree.
        h.zxid = logged;
        let again = h.prep(&create_req("/p/a", b"x", 0));
        assert_eq!(again, first, "same txn as before the refusal");
        h.pending.clear();
        h.prepper.discard_after(logged);
        h.zxid = logged;
        // Without the refused create, /p is empty and may be deleted.
        assert_eq!(
            h.prep(&del),
            Txn::Delete { path: "/p".into() },
            "prepped against the tree, not the refused batch"
        );
        let r = h.flush();
        assert_eq!(r.len(), 1);
        assert!(h.tree.get("/p").is_none());
        assert_eq!({ parent_before.czxid }, logged);
    }

    #[test]
    #[should_panic(expected = "not yet applied")]
    fn discarding_past_unapplied_txns_is_refused() {
        let mut h = Harness::new();
        h.prep(&create_req("/a", b"", 0));
        let kept = h.zxid;
        h.prep(&create_req("/a/b", b"", 0));
        // /a's create (kept) is not applied: its record could not be rebuilt.
        h.prepper.discard_after(kept);
    }
}
