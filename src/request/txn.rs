//! The txn: the unit the commit shard produces from a write request, that every shard
//! applies to its tree, and that the storage engine will log and ZAB will replicate.
//! Shapes follow `zookeeper.jute`'s `org.apache.zookeeper.txn` module.

use bytes::Bytes;

use crate::proto::{Acl, ErrorCode, OpCode};

/// `TxnHeader`: who asked (`client_id` is the session id, `cxid` its xid), the zxid the
/// commit shard assigned, and the commit shard's clock at prep time (ctime/mtime come
/// from here, never from the applying shard's clock, so every replica agrees).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnHeader {
    pub client_id: i64,
    pub cxid: i32,
    pub zxid: i64,
    pub time: i64,
    /// The opcode of the request that produced the txn (create2, createContainer, ... are
    /// kept distinct so the reply can be encoded; `Error` for a failed request).
    pub op: OpCode,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Txn {
    /// `CreateSessionTxn`.
    CreateSession { timeout: i32 },
    /// `CloseSessionTxn`: deletes the session's ephemerals (the list is taken at apply).
    CloseSession,
    /// `CreateTxn` / `CreateContainerTxn` / `CreateTTLTxn`: `ephemeral_owner` already holds
    /// the session id, the container marker or the TTL encoding; `path` has the
    /// sequential suffix; `parent_cversion` is the parent's cversion after this create.
    Create {
        path: String,
        data: Bytes,
        acl: Vec<Acl>,
        ephemeral_owner: i64,
        parent_cversion: i32,
    },
    /// `DeleteTxn` (also for deleteContainer and TTL expiry).
    Delete { path: String },
    /// `SetDataTxn`: `version` is the node's version after the change.
    SetData {
        path: String,
        data: Bytes,
        version: i32,
    },
    /// `SetACLTxn`: `version` is the node's aversion after the change.
    SetAcl {
        path: String,
        acl: Vec<Acl>,
        version: i32,
    },
    /// `CheckVersionTxn`, only inside a multi.
    Check { path: String, version: i32 },
    /// `MultiTxn`. When any op failed, every sub-txn is an `Error`: the failing op's own
    /// code, `Ok` for those before it, `RuntimeInconsistency` for those after.
    Multi(Vec<(OpCode, Txn)>),
    /// `ErrorTxn`: a write that failed in prep still consumes a zxid, as in ZooKeeper.
    Error(ErrorCode),
}
