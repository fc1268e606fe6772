//! The commit pipeline's logic, owned by shard 0: the one place that assigns zxids and
//! session ids, preps write requests into txns, and tracks session expiry. Pure logic:
//! the runtime feeds it the shards' batches and the clocks, and carries its committed
//! batches to every shard (shard 0's own tree included).
//!
//! Where storage slots in: `build_batch` returns txns that are prepped but not yet
//! applied anywhere; the runtime will append them to the txn log and wait for the
//! batch to be durable before it applies and broadcasts them. `Prepper` keeps the
//! outstanding changes, so the next batch can be prepped while one is being logged.

use super::messages::*;
use crate::proto::{ErrorCode, OpCode, Request};
use crate::request::{PrepConfig, PrepCtx, Prepper, Txn, TxnHeader};
use crate::session::{self, SessionTracker};
use crate::tree::DataTree;

pub struct CommitCore {
    prepper: Prepper,
    tracker: SessionTracker,
    /// The last zxid handed out.
    last_zxid: i64,
    next_session_id: i64,
    inbox: Vec<WriteItem>,
}

impl CommitCore {
    /// `tree` is shard 0's tree as recovered (empty until storage lands).
    pub fn new(cfg: PrepConfig, tick_ms: i64, tree: &DataTree, now_wall_ms: i64) -> CommitCore {
        let mut tracker = SessionTracker::new(tick_ms);
        for (id, timeout) in tree.sessions() {
            tracker.add(id, timeout, 0);
        }
        CommitCore {
            prepper: Prepper::new(cfg),
            tracker,
            last_zxid: tree.last_processed_zxid(),
            next_session_id: session::initial_session_id(0, now_wall_ms),
            inbox: Vec::new(),
        }
    }

    /// A batch from a shard. Touches are applied at once; items wait for `build_batch`.
    pub fn on_input(&mut self, msg: ToCommit, now_mono_ms: i64) {
        for s in msg.touches {
            self.tracker.touch(s, now_mono_ms);
        }
        self.inbox.extend(msg.items);
    }

    pub fn has_work(&self) -> bool {
        !self.inbox.is_empty()
    }

    fn next_zxid(&mut self) -> i64 {
        self.last_zxid += 1;
        self.last_zxid
    }

    /// Preps everything received since the last call, plus the closing of expired
    /// sessions, into one batch in zxid order.
    pub fn build_batch(
        &mut self,
        tree: &DataTree,
        now_wall_ms: i64,
        now_mono_ms: i64,
    ) -> Vec<Committed> {
        let mut out = Vec::with_capacity(self.inbox.len());
        for item in std::mem::take(&mut self.inbox) {
            match item.kind {
                WriteKind::CreateSession { timeout } => {
                    let session_id = self.next_session_id;
                    self.next_session_id += 1;
                    self.tracker.add(session_id, timeout, now_mono_ms);
                    let hdr = TxnHeader {
                        client_id: session_id,
                        cxid: 0,
                        zxid: self.next_zxid(),
                        time: now_wall_ms,
                        op: OpCode::CreateSession,
                    };
                    out.push(Committed::Txn {
                        hdr,
                        txn: Txn::CreateSession { timeout },
                        origin: Some(item.origin),
                    });
                }
                WriteKind::Request(req) => {
                    let zxid = self.next_zxid();
                    let op = req.opcode();
                    let txn = if !self.tracker.touch(item.session_id, now_mono_ms) {
                        Txn::Error(ErrorCode::SessionExpired)
                    } else {
                        let ctx = PrepCtx {
                            session_id: item.session_id,
                            auth: &item.auth,
                            now_ms: now_wall_ms,
                        };
                        self.prepper.prep(tree, zxid, &ctx, &req)
                    };
                    if matches!(req, Request::CloseSession) {
                        self.tracker.remove(item.session_id);
                    }
                    let hdr = TxnHeader {
                        client_id: item.session_id,
                        cxid: item.origin.xid,
                        zxid,
                        time: now_wall_ms,
                        op,
                    };
                    out.push(Committed::Txn {
                        hdr,
                        txn,
                        origin: Some(item.origin),
                    });
                }
                WriteKind::Sync(path) => out.push(Committed::Sync {
                    origin: item.origin,
                    path,
                }),
                WriteKind::Reattach => {
                    self.tracker.touch(item.session_id, now_mono_ms);
                    out.push(Committed::Reattach {
                        session_id: item.session_id,
                        origin: item.origin,
                    });
                }
            }
        }
        for session_id in self.tracker.expired(now_mono_ms) {
            self.tracker.remove(session_id);
            let zxid = self.next_zxid();
            let ctx = PrepCtx {
                session_id,
                auth: &[],
                now_ms: now_wall_ms,
            };
            let txn = self.prepper.prep(tree, zxid, &ctx, &Request::CloseSession);
            out.push(Committed::Txn {
                hdr: TxnHeader {
                    client_id: session_id,
                    cxid: 0,
                    zxid,
                    time: now_wall_ms,
                    op: OpCode::CloseSession,
                },
                txn,
                origin: None,
            });
        }
        out
    }

    /// Deletes for the containers and TTL nodes that qualify at `now_wall_ms`.
    pub fn reap(&mut self, tree: &DataTree, now_wall_ms: i64) -> Vec<Committed> {
        let mut out = Vec::new();
        for path in tree.reap_candidates(now_wall_ms) {
            let zxid = self.last_zxid + 1;
            if let Some(txn) = self.prepper.prep_reap(tree, zxid, &path) {
                self.last_zxid = zxid;
                out.push(Committed::Txn {
                    hdr: TxnHeader {
                        client_id: 0,
                        cxid: 0,
                        zxid,
                        time: now_wall_ms,
                        op: OpCode::DeleteContainer,
                    },
                    txn,
                    origin: None,
                });
            }
        }
        out
    }

    /// The batch up to `zxid` is applied to shard 0's tree.
    pub fn applied(&mut self, zxid: i64) {
        self.prepper.applied(zxid);
    }
}

/// The highest zxid in a batch, if it holds any txn.
pub fn batch_last_zxid(batch: &[Committed]) -> Option<i64> {
    batch.iter().rev().find_map(|c| match c {
        Committed::Txn { hdr, .. } => Some(hdr.zxid),
        _ => None,
    })
}
