//! Applying committed txns to a tree. CONTRACT STUB: owned by the tree/request work.

use crate::proto::{ErrorCode, EventType, Stat};
use crate::request::txn::{Txn, TxnHeader};
use crate::tree::DataTree;

/// The outcome of one txn, from which the reply is encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnResult {
    Created {
        path: String,
        stat: Stat,
    },
    Deleted,
    SetData {
        stat: Stat,
    },
    SetAcl {
        stat: Stat,
    },
    Checked,
    /// One result per op (each `Error` when the multi failed).
    Multi(Vec<TxnResult>),
    SessionCreated,
    SessionClosed,
    Error(ErrorCode),
}

/// A change that fires watches: ZooKeeper's `triggerWatch(path, type)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchTrigger {
    pub path: String,
    pub event: EventType,
}

/// Applies `txn` with header `hdr` to `tree`, appending the watch triggers in the order
/// ZooKeeper fires them. Never panics on a txn that prep produced against this tree's
/// history; a txn that does not fit (e.g. deleting a missing node) gives an `Error`.
pub fn apply(
    tree: &mut DataTree,
    hdr: &TxnHeader,
    txn: &Txn,
    triggers: &mut Vec<WatchTrigger>,
) -> TxnResult {
    let _ = (tree, hdr, txn, triggers);
    todo!("apply")
}
