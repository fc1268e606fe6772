//! Applying committed txns to a tree: ZooKeeper's `DataTree.processTxn`. Every shard
//! runs this over the same txn stream, so it must be deterministic: ephemerals of a
//! closing session are deleted in sorted order, and nothing here reads a clock.

use std::sync::Arc;

use crate::proto::{Acl, ErrorCode, EventType, OpCode, Stat};
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
    /// A multi's plain `create` op (opcode create, not create2): its result carries the
    /// path only, so it is kept apart from `Created` for the MultiResponse encoding.
    CreatedPath {
        path: String,
    },
}

impl TxnResult {
    /// The error code of this result (`Ok` for a success; for a multi, its first
    /// non-Ok sub-result, as `ProcessTxnResult.err`).
    pub fn err(&self) -> ErrorCode {
        match self {
            TxnResult::Error(e) => *e,
            TxnResult::Multi(rs) => rs
                .iter()
                .map(TxnResult::err)
                .find(|e| *e != ErrorCode::Ok)
                .unwrap_or(ErrorCode::Ok),
            _ => ErrorCode::Ok,
        }
    }
}

/// A change that fires watches: ZooKeeper's `triggerWatch(path, type)`. A
/// `NodeDeleted` trigger is meant for both the data and the child watchers of `path`,
/// as ZooKeeper fires both tables for a deleted node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchTrigger {
    pub path: String,
    pub event: EventType,
    /// The ACL of `path`'s node (taken before a delete): a watcher without READ on it
    /// is not told (ZooKeeper's `ServerCnxn.process`, CVE-2024-23944).
    pub acl: Arc<[Acl]>,
}

fn trigger(triggers: &mut Vec<WatchTrigger>, path: &str, event: EventType, acl: Arc<[Acl]>) {
    triggers.push(WatchTrigger {
        path: path.to_string(),
        event,
        acl,
    });
}

/// The ACL of `path`'s node (open if absent, which prep makes impossible).
fn acl_of(tree: &DataTree, path: &str) -> Arc<[Acl]> {
    tree.acl_of(path)
        .cloned()
        .unwrap_or_else(|| Arc::from(Vec::new()))
}

fn parent_of(path: &str) -> &str {
    crate::tree::split_path(path).map_or("/", |(p, _)| p)
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
    let r = apply_one(tree, hdr, hdr.op, txn, triggers);
    tree.set_last_processed_zxid(hdr.zxid);
    r
}

fn apply_one(
    tree: &mut DataTree,
    hdr: &TxnHeader,
    op: OpCode,
    txn: &Txn,
    triggers: &mut Vec<WatchTrigger>,
) -> TxnResult {
    match txn {
        Txn::CreateSession { timeout } => {
            tree.add_session(hdr.client_id, *timeout);
            TxnResult::SessionCreated
        }
        Txn::CloseSession => {
            for path in tree.remove_session(hdr.client_id) {
                // A missing node is ignored, as killSession does.
                let acl = acl_of(tree, &path);
                if tree.delete_node(&path, hdr.zxid).is_ok() {
                    trigger(triggers, &path, EventType::NodeDeleted, acl);
                    let parent = parent_of(&path);
                    trigger(
                        triggers,
                        parent,
                        EventType::NodeChildrenChanged,
                        acl_of(tree, parent),
                    );
                }
            }
            TxnResult::SessionClosed
        }
        Txn::Create {
            path,
            data,
            acl,
            ephemeral_owner,
            parent_cversion,
        } => match tree.create_node(
            path,
            data.clone(),
            acl,
            *ephemeral_owner,
            *parent_cversion,
            hdr.zxid,
            hdr.time,
        ) {
            Ok(stat) => {
                trigger(triggers, path, EventType::NodeCreated, acl_of(tree, path));
                let parent = parent_of(path);
                trigger(
                    triggers,
                    parent,
                    EventType::NodeChildrenChanged,
                    acl_of(tree, parent),
                );
                if op == OpCode::Create {
                    // Only reachable inside a multi: a top-level create is encoded from
                    // its opcode, which the caller passes to the reply encoder.
                    if hdr.op == OpCode::Multi {
                        return TxnResult::CreatedPath { path: path.clone() };
                    }
                }
                TxnResult::Created {
                    path: path.clone(),
                    stat,
                }
            }
            Err(e) => TxnResult::Error(e),
        },
        Txn::Delete { path } => {
            let acl = acl_of(tree, path);
            match tree.delete_node(path, hdr.zxid) {
                Ok(()) => {
                    trigger(triggers, path, EventType::NodeDeleted, acl);
                    let parent = parent_of(path);
                    trigger(
                        triggers,
                        parent,
                        EventType::NodeChildrenChanged,
                        acl_of(tree, parent),
                    );
                    TxnResult::Deleted
                }
                Err(e) => TxnResult::Error(e),
            }
        }
        Txn::SetData {
            path,
            data,
            version,
        } => match tree.set_data(path, data.clone(), *version, hdr.zxid, hdr.time) {
            Ok(stat) => {
                trigger(
                    triggers,
                    path,
                    EventType::NodeDataChanged,
                    acl_of(tree, path),
                );
                TxnResult::SetData { stat }
            }
            Err(e) => TxnResult::Error(e),
        },
        Txn::SetAcl { path, acl, version } => match tree.set_acl(path, acl, *version) {
            Ok(stat) => TxnResult::SetAcl { stat },
            Err(e) => TxnResult::Error(e),
        },
        Txn::Check { .. } => TxnResult::Checked,
        Txn::Error(e) => TxnResult::Error(*e),
        Txn::Multi(ops) => {
            // A multi that failed in prep carries Error sub-txns: then nothing is
            // applied and every op reports an error (Ok before the failing op,
            // RuntimeInconsistency after it), whatever the other sub-txns say.
            let failed = ops.iter().any(|(_, t)| matches!(t, Txn::Error(_)));
            let mut post_failed = false;
            let mut results = Vec::with_capacity(ops.len());
            for (sub_op, sub) in ops {
                if failed {
                    match sub {
                        Txn::Error(e) => {
                            post_failed = true;
                            results.push(TxnResult::Error(*e));
                        }
                        _ => results.push(TxnResult::Error(if post_failed {
                            ErrorCode::RuntimeInconsistency
                        } else {
                            ErrorCode::Ok
                        })),
                    }
                    continue;
                }
                let r = match sub {
                    // Nested multis and session txns cannot be sub-txns.
                    Txn::Multi(_) | Txn::CreateSession { .. } | Txn::CloseSession => {
                        TxnResult::Error(ErrorCode::MarshallingError)
                    }
                    _ => {
                        let sub_hdr = TxnHeader {
                            op: OpCode::Multi,
                            ..*hdr
                        };
                        apply_one(tree, &sub_hdr, *sub_op, sub, triggers)
                    }
                };
                results.push(r);
            }
            TxnResult::Multi(results)
        }
    }
}

#[cfg(test)]
mod tests;
