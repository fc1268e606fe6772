//! Turning write requests into txns on the commit shard. CONTRACT STUB.

use crate::proto::{Id, Request};
use crate::request::txn::Txn;
use crate::tree::DataTree;

/// Settings from zoo.cfg that change what prep accepts.
#[derive(Debug, Clone, Default)]
pub struct PrepConfig {
    /// `extendedTypesEnabled`: TTL nodes allowed.
    pub extended_types: bool,
    /// `enforceQuota`: exceeding a quota gives QuotaExceeded instead of a warning.
    pub enforce_quota: bool,
    /// `jute.maxbuffer`: the largest znode data accepted.
    pub max_buffer: usize,
}

/// Who sent the request and when.
pub struct PrepCtx<'a> {
    pub session_id: i64,
    /// The session's authenticated ids (ip, digest, super, ...), as `acl` produces them.
    pub auth: &'a [Id],
    /// The commit shard's wall clock, milliseconds since the epoch.
    pub now_ms: i64,
}

/// ZooKeeper's PrepRequestProcessor: holds the outstanding changes of txns that were
/// prepped but are not yet applied to the commit shard's tree.
pub struct Prepper {
    pub config: PrepConfig,
}

impl Prepper {
    pub fn new(config: PrepConfig) -> Self {
        Prepper { config }
    }

    /// Prepares a write `req` (create*, delete, setData, setACL, check, multi,
    /// closeSession, reconfig) as txn `zxid`. Errors become `Txn::Error`.
    pub fn prep(&mut self, tree: &DataTree, zxid: i64, ctx: &PrepCtx, req: &Request) -> Txn {
        let _ = (tree, zxid, ctx, req);
        todo!("prep")
    }

    /// The txn that removes a container or an expired TTL node found by the reaper, or
    /// `None` if it no longer qualifies.
    pub fn prep_reap(&mut self, tree: &DataTree, zxid: i64, path: &str) -> Option<Txn> {
        let _ = (tree, zxid, path);
        todo!("prep_reap")
    }

    /// Called after the txn `zxid` has been applied to the commit shard's tree: drops
    /// the outstanding changes it covered.
    pub fn applied(&mut self, zxid: i64) {
        let _ = zxid;
    }
}
