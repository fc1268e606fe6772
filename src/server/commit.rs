//! The commit pipeline's logic, owned by shard 0: the one place that assigns zxids and
//! session ids, preps write requests into txns, and tracks session expiry. Pure logic:
//! the runtime feeds it the shards' batches and the clocks, and carries its committed
//! batches to every shard (shard 0's own tree included).
//!
//! Where storage slots in: `build_batch` (and `reap`) return txns that are prepped but
//! not yet applied anywhere; the runtime appends them to the txn log and waits for the
//! batch to be durable before it applies and broadcasts them. `Prepper` keeps the
//! outstanding changes of the batch being logged.
//!
//! A batch the log cannot take because the disk is full is handed back to [`CommitCore::reject`]:
//! every write in it is answered THROTTLEDOP instead of being applied, and the core is
//! rolled back to the log's last zxid, as if the batch had never been prepped: the next
//! batch reuses its zxids, preps against the tree without its changes, and the session
//! tracker is restored (sessions it created forgotten, sessions it closed tracked
//! again, an expired one due again at the next tick so its expiry is retried).

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
    /// What the batch being built changed in the tracker, oldest first: each session's
    /// state before (timeout, closing), None if it was not tracked. Undone by `reject`.
    tracker_undo: Vec<(i64, Option<(i32, bool)>)>,
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
            tracker_undo: Vec::new(),
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

    /// Notes a session's tracker state before the batch changes it.
    fn save_tracker(&mut self, session_id: i64) {
        let prior = self.tracker.timeout(session_id).map(|t| (t, self.tracker.is_closing(session_id)));
        self.tracker_undo.push((session_id, prior));
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
        // The previous batch was logged or rejected before this one is built.
        self.tracker_undo.clear();
        for item in std::mem::take(&mut self.inbox) {
            match item.kind {
                WriteKind::CreateSession { timeout } => {
                    let session_id = self.next_session_id;
                    self.next_session_id += 1;
                    self.save_tracker(session_id);
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
                        self.save_tracker(item.session_id);
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
            self.save_tracker(session_id);
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

    /// The log could not take `batch` (the disk is full; it holds everything up to
    /// `logged_zxid` and nothing of the batch). Returns what to hand the shards instead:
    /// every write with a client becomes a [`Committed::Rejected`] answered with
    /// THROTTLEDOP, txns without one (expiries, reaps) are dropped, Sync and Reattach
    /// items go through. The core is rolled back as if the batch had never been
    /// prepped: zxids after `logged_zxid` are handed out again, the prepper forgets
    /// their changes, and the tracker is as before the batch, except that a session
    /// whose expiry was rejected is due again at the next tick (so the expiry is
    /// retried) and a session created by the batch is gone (its connection is closed:
    /// a ConnectResponse cannot carry an error, so the client reconnects).
    pub fn reject(
        &mut self,
        batch: Vec<Committed>,
        logged_zxid: i64,
        now_mono_ms: i64,
    ) -> Vec<Committed> {
        assert!(
            logged_zxid <= self.last_zxid,
            "the log is ahead of the zxids handed out"
        );
        self.last_zxid = logged_zxid;
        self.prepper.discard_after(logged_zxid);
        for (session_id, prior) in std::mem::take(&mut self.tracker_undo).into_iter().rev() {
            self.tracker.remove(session_id);
            if let Some((timeout, closing)) = prior {
                if closing {
                    // Due at the next tick: its expiry (or close) is tried again then.
                    self.tracker
                        .add(session_id, timeout, now_mono_ms - i64::from(timeout));
                    self.tracker.set_closing(session_id);
                } else {
                    self.tracker.add(session_id, timeout, now_mono_ms);
                }
            }
        }
        batch
            .into_iter()
            .filter_map(|c| match c {
                Committed::Txn {
                    hdr,
                    origin: Some(origin),
                    ..
                } => Some(Committed::Rejected {
                    origin,
                    op: hdr.op,
                    err: ErrorCode::Throttled,
                }),
                Committed::Txn { origin: None, .. } => None,
                other => Some(other),
            })
            .collect()
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
