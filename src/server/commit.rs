//! The commit pipeline's logic, owned by shard 0: the one place that assigns zxids and
//! session ids, preps write requests into txns, and tracks session expiry. Pure logic:
//! the runtime feeds it the shards' batches and the clocks, and carries its committed
//! batches to the tree (applied once, on shard 0) and to every shard's clients.
//!
//! Where storage slots in: `build_batch` (and `reap`) return txns that are prepped but
//! not yet applied anywhere; the runtime appends them to the txn log and waits for the
//! batch to be durable before it applies and broadcasts them. `Prepper` keeps the
//! outstanding changes of the batches being logged. While one batch is in the log, the
//! next is built behind it (`build_batch_behind`), so prepping overlaps the disk; the
//! core keeps both undoable until `logged` says the first is durable.
//!
//! A batch the log cannot take because the disk is full is handed back to [`CommitCore::reject`]
//! (with the batch built behind it, which was prepped on top of it):
//! every write in it is answered THROTTLEDOP instead of being applied, and the core is
//! rolled back to the log's last zxid, as if the batch had never been prepped: the next
//! batch reuses its zxids, preps against the tree without its changes, and the session
//! tracker is restored (sessions it created forgotten, sessions it closed tracked
//! again, an expired one due again at the next tick so its expiry is retried).

use super::messages::*;
use crate::limits::MAX_EXPIRED_CLOSES_PER_BATCH;
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
    /// What the batches not yet known to be logged changed in the tracker, oldest
    /// first: each session's state before (timeout, closing), None if it was not
    /// tracked. Undone by `reject`.
    tracker_undo: Vec<(i64, Option<(i32, bool)>)>,
    /// Where each batch after the oldest one not yet known to be logged begins in
    /// `tracker_undo`, oldest first: a mark per batch handed to the log after it
    /// ([`CommitCore::sealed`], or the first [`CommitCore::build_batch_behind`]), so
    /// `logged` forgets exactly the oldest batch's entries. And how many expired
    /// sessions' closes the batch being built holds so far.
    behind_marks: std::collections::VecDeque<usize>,
    behind_closes: usize,
    /// This server's id (0 standalone).
    server_id: u64,
    /// An ensemble leader: the tree digest after each txn of the batch being built
    /// (by zxid), for the proposals' TxnDigest; error txns have none, as in ZooKeeper.
    digests: Vec<(i64, i64)>,
    /// An ensemble leader: which server holds each session's connection
    /// (`SessionImpl.owner`). A write from another server fails with SessionMoved; the
    /// owner moves when a client reconnects elsewhere (REVALIDATE).
    owners: ahash::AHashMap<i64, u64>,
}

impl CommitCore {
    /// `tree` is shard 0's tree as recovered. `server_id` fills the top byte of the
    /// session ids this server hands out (0 standalone, myid in an ensemble).
    pub fn new(
        cfg: PrepConfig,
        tick_ms: i64,
        tree: &DataTree,
        now_wall_ms: i64,
        server_id: i64,
    ) -> CommitCore {
        let mut tracker = SessionTracker::new(tick_ms);
        for (id, timeout) in tree.sessions() {
            tracker.add(id, timeout, 0);
        }
        CommitCore {
            prepper: Prepper::new(cfg),
            tracker,
            last_zxid: tree.last_processed_zxid(),
            next_session_id: session::initial_session_id(server_id, now_wall_ms),
            inbox: Vec::new(),
            tracker_undo: Vec::new(),
            behind_marks: Default::default(),
            behind_closes: 0,
            server_id: server_id as u64,
            digests: Vec::new(),
            owners: ahash::AHashMap::new(),
        }
    }

    /// The server an item came from: a learner's sid for a forwarded request.
    fn server_of(&self, origin: &Origin) -> u64 {
        if origin.shard == Origin::REMOTE_SHARD {
            origin.conn
        } else {
            self.server_id
        }
    }

    /// The digests of the txns built since the last call, by zxid (see `digests`).
    pub fn take_digests(&mut self) -> Vec<(i64, i64)> {
        std::mem::take(&mut self.digests)
    }

    fn note_digest(&mut self, zxid: i64, txn: &Txn) {
        if let (Some(d), false) = (self.prepper.digest(), matches!(txn, Txn::Error(_))) {
            self.digests.push((zxid, d));
        }
    }

    /// Leader: `session_id`'s client now talks to `server` (it reconnected there).
    pub fn set_owner(&mut self, session_id: i64, server: u64) {
        if self.server_id != 0 && self.tracker.contains(session_id) {
            self.owners.insert(session_id, server);
        }
    }

    /// `checkSession` with its owner: a session without one (it predates this leader)
    /// takes the first server it is heard from; another server's request is refused.
    fn check_owner(&mut self, session_id: i64, server: u64) -> bool {
        if self.server_id == 0 {
            // Standalone: every session's connection is here.
            return true;
        }
        match self.owners.get(&session_id) {
            Some(&o) => o == server,
            None => {
                if self.tracker.contains(session_id) {
                    self.owners.insert(session_id, server);
                }
                true
            }
        }
    }

    /// An ensemble leader once established: the next zxid follows `zxid` (the new
    /// epoch's zero), nothing is outstanding, and every session of `tree` is tracked
    /// afresh from `now_mono_ms` (learners report theirs in PINGs from now on).
    pub fn lead_from(&mut self, cfg: PrepConfig, zxid: i64, tree: &DataTree, now_mono_ms: i64) {
        self.prepper = Prepper::new(cfg);
        self.prepper.start_digest(tree);
        self.digests.clear();
        self.last_zxid = zxid;
        let mut tracker = SessionTracker::new(self.tracker.tick_ms);
        for (id, timeout) in tree.sessions() {
            tracker.add(id, timeout, now_mono_ms);
        }
        self.tracker = tracker;
        self.inbox.clear();
        self.tracker_undo.clear();
        self.behind_marks.clear();
        self.owners.clear();
    }

    /// Leader: a learner's client is alive (PING touch table, REVALIDATE). False if
    /// the session is unknown or closing.
    pub fn touch(&mut self, session_id: i64, now_mono_ms: i64) -> bool {
        self.tracker.touch(session_id, now_mono_ms)
    }

    /// A batch from a shard. Touches are applied at once; items wait for `build_batch`.
    pub fn on_input(&mut self, msg: ToCommit, now_mono_ms: i64) {
        for s in msg.touches {
            self.tracker.touch(s, now_mono_ms);
        }
        self.inbox.extend(msg.items);
    }

    /// Whether a batch built now would hold something: queued items, or expired
    /// sessions still waiting for their close (an expiry storm goes out
    /// [`MAX_EXPIRED_CLOSES_PER_BATCH`] at a time, so the caller should build the
    /// next batch at once rather than wait for its tick).
    pub fn has_work(&self) -> bool {
        !self.inbox.is_empty() || self.tracker.expired_pending() > 0
    }

    /// Notes a session's tracker state before the batch changes it.
    fn save_tracker(&mut self, session_id: i64) {
        let prior = self
            .tracker
            .timeout(session_id)
            .map(|t| (t, self.tracker.is_closing(session_id)));
        self.tracker_undo.push((session_id, prior));
    }

    fn next_zxid(&mut self) -> i64 {
        self.last_zxid += 1;
        self.last_zxid
    }

    /// Preps everything received since the last call, plus the closing of expired
    /// sessions, into one batch in zxid order: the clients' items first, then at most
    /// [`MAX_EXPIRED_CLOSES_PER_BATCH`] closes of expired sessions, oldest deadline
    /// first. Those beyond it are already closing (their pings and requests are
    /// refused, as ZooKeeper's) and go out in the next batches; see `has_work`.
    pub fn build_batch(
        &mut self,
        tree: &DataTree,
        now_wall_ms: i64,
        now_mono_ms: i64,
    ) -> Vec<Committed> {
        self.build_batch_at_most(tree, now_wall_ms, now_mono_ms, usize::MAX)
    }

    /// As `build_batch`, with at most `max_items` entries (an ensemble leader's room
    /// under `maxProposalsInFlight`): the oldest queued items first, then expired
    /// sessions' closes while room is left. The rest stay queued, in order, for the
    /// next batch (`has_work` stays true).
    pub fn build_batch_at_most(
        &mut self,
        tree: &DataTree,
        now_wall_ms: i64,
        now_mono_ms: i64,
        max_items: usize,
    ) -> Vec<Committed> {
        // The previous batch was logged or rejected before this one is built.
        self.tracker_undo.clear();
        self.behind_marks.clear();
        let closes = MAX_EXPIRED_CLOSES_PER_BATCH.min(max_items.saturating_sub(self.inbox.len()));
        self.build_into(tree, now_wall_ms, now_mono_ms, max_items, closes)
            .0
    }

    /// Standalone: builds (more of) the batch that will follow the one the log is
    /// writing now, so prepping overlaps the disk. Prepped against `tree` and the
    /// changes of the batch in the log, as every batch is. The batch in the log stays
    /// undoable: if it is rejected, this one must be rejected with it (`reject` takes
    /// both), as it was prepped on top of it. [`CommitCore::logged`] says it is durable.
    pub fn build_batch_behind(
        &mut self,
        tree: &DataTree,
        now_wall_ms: i64,
        now_mono_ms: i64,
    ) -> Vec<Committed> {
        if self.behind_marks.is_empty() {
            self.sealed();
        }
        // The batch gets its expiry closes over several calls, at most
        // MAX_EXPIRED_CLOSES_PER_BATCH in all.
        let closes = MAX_EXPIRED_CLOSES_PER_BATCH - self.behind_closes;
        let (batch, closed) = self.build_into(tree, now_wall_ms, now_mono_ms, usize::MAX, closes);
        self.behind_closes += closed;
        batch
    }

    /// Standalone: the batch built so far goes to the log (which may be writing others
    /// still); what is built next is a new batch. The first `build_batch_behind` after a
    /// batch went to the log implies it.
    pub fn sealed(&mut self) {
        self.behind_marks.push_back(self.tracker_undo.len());
        self.behind_closes = 0;
    }

    /// Standalone: the oldest batch the log was writing is durable; only what was
    /// built after it can still be rejected.
    pub fn logged(&mut self) {
        match self.behind_marks.pop_front() {
            Some(mark) => {
                self.tracker_undo.drain(..mark);
                for m in self.behind_marks.iter_mut() {
                    *m -= mark;
                }
            }
            None => self.tracker_undo.clear(),
        }
    }

    fn build_into(
        &mut self,
        tree: &DataTree,
        now_wall_ms: i64,
        now_mono_ms: i64,
        max_items: usize,
        closes: usize,
    ) -> (Vec<Committed>, usize) {
        let taken = if self.inbox.len() > max_items {
            let rest = self.inbox.split_off(max_items);
            std::mem::replace(&mut self.inbox, rest)
        } else {
            std::mem::take(&mut self.inbox)
        };
        let mut out = Vec::with_capacity(taken.len());
        for item in taken {
            match item.kind {
                WriteKind::CreateSession { timeout } => {
                    // A learner's client comes with the id its server chose.
                    let session_id = if item.session_id != 0 {
                        item.session_id
                    } else {
                        self.next_session_id += 1;
                        self.next_session_id - 1
                    };
                    self.save_tracker(session_id);
                    self.tracker.add(session_id, timeout, now_mono_ms);
                    if self.server_id != 0 {
                        let owner = self.server_of(&item.origin);
                        self.owners.insert(session_id, owner);
                    }
                    let hdr = TxnHeader {
                        client_id: session_id,
                        cxid: 0,
                        zxid: self.next_zxid(),
                        time: now_wall_ms,
                        op: OpCode::CreateSession,
                    };
                    let txn = Txn::CreateSession { timeout };
                    self.note_digest(hdr.zxid, &txn);
                    out.push(Committed::Txn {
                        hdr,
                        txn,
                        origin: Some(item.origin),
                    });
                }
                WriteKind::Request(req) => {
                    let zxid = self.next_zxid();
                    let op = req.opcode();
                    let from = self.server_of(&item.origin);
                    let txn = if !self.tracker.touch(item.session_id, now_mono_ms) {
                        Txn::Error(ErrorCode::SessionExpired)
                    } else if !self.check_owner(item.session_id, from) {
                        Txn::Error(ErrorCode::SessionMoved)
                    } else {
                        let ctx = PrepCtx {
                            session_id: item.session_id,
                            auth: &item.auth,
                            now_ms: now_wall_ms,
                        };
                        self.prepper.prep(tree, zxid, &ctx, &req)
                    };
                    if matches!(req, Request::CloseSession) && !matches!(txn, Txn::Error(_)) {
                        self.save_tracker(item.session_id);
                        self.tracker.remove(item.session_id);
                        self.owners.remove(&item.session_id);
                    }
                    let hdr = TxnHeader {
                        client_id: item.session_id,
                        cxid: item.origin.xid,
                        zxid,
                        time: now_wall_ms,
                        op,
                    };
                    self.note_digest(zxid, &txn);
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
                WriteKind::Reattach { passwd_ok } => {
                    // `touch` refuses a session already expired (closing): its
                    // closeSession is prepped but may not be applied on the shards yet.
                    let valid = passwd_ok && self.tracker.touch(item.session_id, now_mono_ms);
                    if valid {
                        let owner = self.server_of(&item.origin);
                        self.set_owner(item.session_id, owner);
                    }
                    out.push(Committed::Reattach {
                        session_id: item.session_id,
                        origin: item.origin,
                        valid,
                    });
                }
            }
        }
        let expired = self.tracker.take_expired(now_mono_ms, closes);
        let closed = expired.len();
        for session_id in expired {
            self.save_tracker(session_id);
            self.tracker.remove(session_id);
            self.owners.remove(&session_id);
            let zxid = self.next_zxid();
            let ctx = PrepCtx {
                session_id,
                auth: &[],
                now_ms: now_wall_ms,
            };
            let txn = self.prepper.prep(tree, zxid, &ctx, &Request::CloseSession);
            self.note_digest(zxid, &txn);
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
        (out, closed)
    }

    /// Deletes for the containers and TTL nodes that qualify at `now_wall_ms`.
    pub fn reap(&mut self, tree: &DataTree, now_wall_ms: i64) -> Vec<Committed> {
        let mut out = Vec::new();
        for path in tree.reap_candidates(now_wall_ms) {
            let zxid = self.last_zxid + 1;
            if let Some(txn) = self.prepper.prep_reap(tree, zxid, &path) {
                self.last_zxid = zxid;
                self.note_digest(zxid, &txn);
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
        self.behind_marks.clear();
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::proto::{Acl, CreateRequest, DeleteRequest, Id};
    use crate::request::apply;

    const WALL: i64 = 1_700_000_000_000;

    fn origin(xid: i32) -> Origin {
        Origin {
            shard: 0,
            conn: 1,
            xid,
        }
    }

    fn item(session_id: i64, xid: i32, kind: WriteKind) -> WriteItem {
        WriteItem {
            origin: origin(xid),
            session_id,
            auth: Arc::from(Vec::<Id>::new()),
            kind,
        }
    }

    fn create(path: &str) -> WriteKind {
        WriteKind::Request(Request::Create {
            op: OpCode::Create,
            req: CreateRequest {
                path: path.into(),
                data: bytes::Bytes::new(),
                acl: vec![Acl {
                    perms: crate::proto::perms::ALL,
                    id: Id {
                        scheme: "world".into(),
                        id: "anyone".into(),
                    },
                }],
                flags: 0,
            },
        })
    }

    fn send(core: &mut CommitCore, items: Vec<WriteItem>, now: i64) {
        core.on_input(
            ToCommit {
                items,
                touches: Vec::new(),
            },
            now,
        );
    }

    fn txns(batch: &[Committed]) -> Vec<(TxnHeader, Txn)> {
        batch
            .iter()
            .filter_map(|c| match c {
                Committed::Txn { hdr, txn, .. } => Some((*hdr, txn.clone())),
                _ => None,
            })
            .collect()
    }

    /// Applies a logged batch to the tree, as the runtime does.
    fn commit(core: &mut CommitCore, tree: &mut DataTree, batch: &[Committed]) {
        let mut trig = Vec::new();
        for (h, t) in txns(batch) {
            apply(tree, &h, &t, &mut trig);
        }
        if let Some(z) = batch_last_zxid(batch) {
            core.applied(z);
        }
    }

    fn new_session(core: &mut CommitCore, tree: &mut DataTree, now: i64) -> i64 {
        new_sessions(core, tree, 1, now)[0]
    }

    /// `n` sessions of 1 s, created in one committed batch; their ids.
    fn new_sessions(core: &mut CommitCore, tree: &mut DataTree, n: usize, now: i64) -> Vec<i64> {
        send(
            core,
            (0..n)
                .map(|_| item(0, 0, WriteKind::CreateSession { timeout: 1000 }))
                .collect(),
            now,
        );
        let b = core.build_batch(tree, WALL, now);
        commit(core, tree, &b);
        txns(&b).iter().map(|(h, _)| h.client_id).collect()
    }

    /// `maxProposalsInFlight`: a batch takes the oldest items up to the room given,
    /// the rest wait in order, and expired sessions' closes take only room left over.
    #[test]
    fn a_batch_at_most_takes_the_oldest_items_and_leaves_the_rest_in_order() {
        let mut tree = DataTree::new();
        let mut core = CommitCore::new(PrepConfig::default(), 100, &tree, WALL, 0);
        let s = new_session(&mut core, &mut tree, 0);
        let doomed = new_session(&mut core, &mut tree, 0);
        let paths: Vec<String> = (0..5).map(|i| format!("/a{i}")).collect();
        send(
            &mut core,
            paths
                .iter()
                .enumerate()
                .map(|(i, p)| item(s, i as i32 + 1, create(p)))
                .collect(),
            10,
        );
        let mut made = Vec::new();
        let mut zxids = Vec::new();
        for room in [2, 0, 2] {
            let b = core.build_batch_at_most(&tree, WALL, 10, room);
            assert_eq!(b.len(), room, "{b:?}");
            for (h, t) in txns(&b) {
                let Txn::Create { path, .. } = &t else {
                    panic!("{t:?}")
                };
                made.push(path.clone());
                zxids.push(h.zxid);
            }
            commit(&mut core, &mut tree, &b);
            assert!(core.has_work());
        }
        assert_eq!(made, paths[..4]);
        assert!(zxids.windows(2).all(|w| w[1] == w[0] + 1), "{zxids:?}");
        // Both sessions are past their timeout now (`s` writes again, so only
        // `doomed` is due): with room for one, the last create goes and the close waits.
        core.on_input(
            ToCommit {
                items: Vec::new(),
                touches: vec![s],
            },
            2_500,
        );
        let b = core.build_batch_at_most(&tree, WALL, 2_500, 1);
        assert_eq!(txns(&b).len(), 1);
        assert!(matches!(&txns(&b)[0].1, Txn::Create { path, .. } if path == "/a4"));
        commit(&mut core, &mut tree, &b);
        assert!(core.has_work(), "the expired session's close still waits");
        let b = core.build_batch_at_most(&tree, WALL, 2_500, 10);
        let closes: Vec<i64> = txns(&b)
            .iter()
            .filter(|(h, _)| h.op == OpCode::CloseSession)
            .map(|(h, _)| h.client_id)
            .collect();
        assert_eq!(closes, vec![doomed]);
        assert!(!core.has_work());
    }

    #[test]
    fn a_rejected_batch_is_answered_throttled_and_its_zxids_are_reused() {
        let mut tree = DataTree::new();
        let mut core = CommitCore::new(PrepConfig::default(), 100, &tree, WALL, 0);
        let s = new_session(&mut core, &mut tree, 0);
        let logged = tree.last_processed_zxid();
        send(
            &mut core,
            vec![
                item(s, 1, create("/a")),
                item(s, 2, WriteKind::Sync("/".into())),
                item(s, 3, create("/a/b")),
            ],
            10,
        );
        let refused = core.build_batch(&tree, WALL, 10);
        let refused_txns = txns(&refused);
        assert_eq!(refused_txns.len(), 2);
        let out = core.reject(refused, logged, 10);
        assert_eq!(out.len(), 3);
        assert!(matches!(
            out[0],
            Committed::Rejected { origin: o, op: OpCode::Create, err: ErrorCode::Throttled } if o.xid == 1
        ));
        assert!(matches!(&out[1], Committed::Sync { origin: o, .. } if o.xid == 2));
        assert!(matches!(
            out[2],
            Committed::Rejected { origin: o, err: ErrorCode::Throttled, .. } if o.xid == 3
        ));
        assert_eq!(batch_last_zxid(&out), None, "nothing to apply");
        // The same writes again: the same zxids and txns, prepped against the tree alone
        // (had the refused /a counted, /a would exist).
        send(
            &mut core,
            vec![item(s, 1, create("/a")), item(s, 3, create("/a/b"))],
            20,
        );
        let again = core.build_batch(&tree, WALL, 20);
        assert_eq!(txns(&again), refused_txns);
        // And a create of /a/b alone after a refusal fails as the tree says: no /a.
        core.reject(again, logged, 20);
        send(&mut core, vec![item(s, 3, create("/a/b"))], 30);
        let b = core.build_batch(&tree, WALL, 30);
        let t = txns(&b);
        assert_eq!(t[0].0.zxid, logged + 1);
        assert_eq!(t[0].1, Txn::Error(ErrorCode::NoNode));
    }

    #[test]
    fn a_rejected_batch_restores_the_session_tracker() {
        let mut tree = DataTree::new();
        let mut core = CommitCore::new(PrepConfig::default(), 100, &tree, WALL, 0);
        let closer = new_session(&mut core, &mut tree, 0);
        let expiring = new_session(&mut core, &mut tree, 0);
        let logged = tree.last_processed_zxid();
        // Keep `closer` alive, let `expiring` expire, open a new session and close
        // `closer`, all in one batch that the log refuses.
        core.on_input(
            ToCommit {
                items: vec![
                    item(0, 0, WriteKind::CreateSession { timeout: 1000 }),
                    item(closer, 5, WriteKind::Request(Request::CloseSession)),
                ],
                touches: vec![closer],
            },
            1000,
        );
        let b = core.build_batch(&tree, WALL, 1200);
        let t = txns(&b);
        assert_eq!(t.len(), 3, "{t:?}");
        let created = t[0].0.client_id;
        assert_eq!(t[2].0.client_id, expiring);
        assert!(!core.tracker.contains(closer) && !core.tracker.contains(expiring));
        let out = core.reject(b, logged, 1200);
        assert!(matches!(
            out[..],
            [
                Committed::Rejected {
                    op: OpCode::CreateSession,
                    ..
                },
                Committed::Rejected {
                    op: OpCode::CloseSession,
                    ..
                }
            ]
        ));
        // The new session is forgotten; the closed one is tracked and alive again; the
        // expired one is tracked, closing, and due at the next tick.
        assert!(!core.tracker.contains(created));
        assert!(core.tracker.contains(closer) && !core.tracker.is_closing(closer));
        assert_eq!(core.tracker.timeout(closer), Some(1000));
        assert!(core.tracker.is_closing(expiring));
        assert_eq!(core.tracker.deadline(expiring), Some(1300));
        // The retried expiry reuses the refused zxids, and goes through once logged.
        let b = core.build_batch(&tree, WALL, 1300);
        let t = txns(&b);
        assert_eq!(t.len(), 1);
        assert_eq!((t[0].0.client_id, t[0].0.zxid), (expiring, logged + 1));
        assert_eq!(t[0].1, Txn::CloseSession);
        commit(&mut core, &mut tree, &b);
        assert_eq!(tree.session_timeout(expiring), None);
        assert_eq!(tree.session_timeout(closer), Some(1000));
        // The closed session's requests are served again.
        send(
            &mut core,
            vec![item(
                closer,
                6,
                WriteKind::Request(Request::Delete(DeleteRequest {
                    path: "/none".into(),
                    version: -1,
                })),
            )],
            1300,
        );
        let b = core.build_batch(&tree, WALL, 1300);
        assert_eq!(txns(&b)[0].1, Txn::Error(ErrorCode::NoNode));
    }

    /// A batch built behind one still being logged: prepped on top of it (its zxids
    /// follow, it sees the first batch's changes), and when the log refuses the first,
    /// both are rejected and the tracker is as before either; once the first is logged,
    /// a refusal of the second undoes only the second.
    #[test]
    fn a_batch_built_behind_a_refused_one_is_rejected_with_it() {
        let mut tree = DataTree::new();
        let mut core = CommitCore::new(PrepConfig::default(), 100, &tree, WALL, 0);
        let a = new_session(&mut core, &mut tree, 0);
        let b = new_session(&mut core, &mut tree, 0);
        let logged = tree.last_processed_zxid();
        send(
            &mut core,
            vec![
                item(a, 1, create("/x")),
                item(a, 2, WriteKind::Request(Request::CloseSession)),
            ],
            10,
        );
        let first = core.build_batch(&tree, WALL, 10);
        assert_eq!(txns(&first).len(), 2);
        assert!(!core.tracker.contains(a));
        // Behind it: b closes, a new session comes, and a create of the node the first
        // batch creates fails, as prepped against that batch's changes.
        send(
            &mut core,
            vec![
                item(b, 1, create("/x")),
                item(b, 2, WriteKind::Request(Request::CloseSession)),
                item(0, 0, WriteKind::CreateSession { timeout: 1000 }),
            ],
            20,
        );
        let behind = core.build_batch_behind(&tree, WALL, 20);
        let t = txns(&behind);
        assert_eq!(t.len(), 3);
        assert_eq!(t[0].0.zxid, logged + 3);
        assert_eq!(t[0].1, Txn::Error(ErrorCode::NodeExists));
        let created = t[2].0.client_id;
        assert!(!core.tracker.contains(b) && core.tracker.contains(created));
        // More of it, built on another wake-up, is part of the same batch.
        send(&mut core, vec![item(created, 1, create("/y"))], 30);
        let more = core.build_batch_behind(&tree, WALL, 30);
        assert_eq!(txns(&more)[0].0.zxid, logged + 6);
        // The log refuses the first batch: everything is rejected and undone.
        let all: Vec<Committed> = first.into_iter().chain(behind).chain(more).collect();
        let out = core.reject(all, logged, 40);
        assert_eq!(out.len(), 6);
        assert!(out.iter().all(|c| matches!(c, Committed::Rejected { .. })));
        assert!(core.tracker.contains(a) && core.tracker.contains(b));
        assert!(!core.tracker.contains(created));
        assert!(!core.tracker.is_closing(a) && !core.tracker.is_closing(b));
        // Again, and this time the first batch is logged before the refusal of the
        // one behind it: only the latter is undone.
        send(
            &mut core,
            vec![item(a, 3, WriteKind::Request(Request::CloseSession))],
            50,
        );
        let first = core.build_batch(&tree, WALL, 50);
        assert_eq!(txns(&first)[0].0.zxid, logged + 1);
        send(
            &mut core,
            vec![item(b, 3, WriteKind::Request(Request::CloseSession))],
            50,
        );
        let behind = core.build_batch_behind(&tree, WALL, 50);
        core.logged();
        let out = core.reject(behind, logged + 1, 60);
        assert!(matches!(out[..], [Committed::Rejected { .. }]));
        assert!(!core.tracker.contains(a), "the logged close stays");
        assert!(core.tracker.contains(b) && !core.tracker.is_closing(b));
        commit(&mut core, &mut tree, &first);
        assert_eq!(tree.session_timeout(a), None);
        assert_eq!(tree.session_timeout(b), Some(1000));
    }

    /// A batch built behind another over several calls holds at most
    /// MAX_EXPIRED_CLOSES_PER_BATCH expiry closes in all; the next one gets its own.
    #[test]
    fn a_batch_built_behind_in_several_calls_holds_a_bounded_number_of_closes() {
        let mut tree = DataTree::new();
        let mut core = CommitCore::new(PrepConfig::default(), 100, &tree, WALL, 0);
        let n = 2 * MAX_EXPIRED_CLOSES_PER_BATCH + 50;
        new_sessions(&mut core, &mut tree, n, 0);
        let closes = |b: &[Committed]| txns(b).len();
        let first = core.build_batch(&tree, WALL, 5000);
        assert_eq!(closes(&first), MAX_EXPIRED_CLOSES_PER_BATCH);
        let behind = core.build_batch_behind(&tree, WALL, 5000);
        assert_eq!(closes(&behind), MAX_EXPIRED_CLOSES_PER_BATCH);
        assert_eq!(closes(&core.build_batch_behind(&tree, WALL, 5000)), 0);
        core.logged();
        assert_eq!(closes(&core.build_batch_behind(&tree, WALL, 5000)), 50);
    }

    /// An expiry storm: 100,000 sessions (5,000 in a debug build), each with an
    /// ephemeral, all due in the same tick. Their closes go out over several batches of at most
    /// MAX_EXPIRED_CLOSES_PER_BATCH, every session exactly once and in zxid order,
    /// with a live client's write at the head of every batch; a storm session's own
    /// write and resume meanwhile are refused (it is closing, not lost); in the end
    /// every ephemeral is gone and the live session's nodes remain.
    #[test]
    fn an_expiry_storm_is_closed_in_bounded_batches_each_session_once() {
        // 100k in an optimized build (~2 s); a debug build, the default suite's, takes
        // 5k (10 batches) to stay fast.
        const N: usize = if cfg!(debug_assertions) {
            5_000
        } else {
            100_000
        };
        let mut tree = DataTree::new();
        let mut core = CommitCore::new(PrepConfig::default(), 100, &tree, WALL, 0);
        let ids = new_sessions(&mut core, &mut tree, N, 0);
        assert_eq!(ids.len(), N);
        let eph = |i: usize| {
            let WriteKind::Request(Request::Create { op, mut req }) = create(&format!("/e{i}"))
            else {
                unreachable!()
            };
            req.flags = 1; // ephemeral
            WriteKind::Request(Request::Create { op, req })
        };
        send(
            &mut core,
            ids.iter()
                .enumerate()
                .map(|(i, &s)| item(s, 1, eph(i)))
                .collect(),
            0,
        );
        let b = core.build_batch(&tree, WALL, 0);
        assert!(txns(&b)
            .iter()
            .all(|(_, t)| matches!(t, Txn::Create { .. })));
        commit(&mut core, &mut tree, &b);
        assert_eq!(tree.ephemeral_count(), N);
        // A session that stays alive: created later, so due later.
        let live = new_session(&mut core, &mut tree, 900);

        let mut closed: Vec<i64> = Vec::new();
        let mut batches = 0;
        let mut last_zxid = tree.last_processed_zxid();
        let mut now = 1100; // every storm session is due (deadline 1100)
        loop {
            let mut items = vec![item(live, batches, create(&format!("/live{batches}")))];
            if batches == 1 {
                // A storm session not closed yet writes and tries to resume.
                let s = *ids.last().unwrap();
                items.push(item(s, 7, create("/late")));
                items.push(item(s, 8, WriteKind::Reattach { passwd_ok: true }));
            }
            core.on_input(
                ToCommit {
                    items,
                    touches: vec![live],
                },
                now,
            );
            let b = core.build_batch(&tree, WALL, now);
            let t = txns(&b);
            assert!(
                matches!(t[0].1, Txn::Create { .. }) && t[0].0.client_id == live,
                "the live client's write leads batch {batches}"
            );
            let closes: Vec<i64> = t
                .iter()
                .filter(|(h, _)| h.op == OpCode::CloseSession)
                .map(|(h, tx)| {
                    assert_eq!(*tx, Txn::CloseSession);
                    h.client_id
                })
                .collect();
            assert!(closes.len() <= MAX_EXPIRED_CLOSES_PER_BATCH);
            if batches == 1 {
                assert_eq!(t[1].1, Txn::Error(ErrorCode::SessionExpired));
                assert!(b
                    .iter()
                    .any(|c| matches!(c, Committed::Reattach { valid: false, .. })));
            }
            for (h, _) in &t {
                assert_eq!(h.zxid, last_zxid + 1);
                last_zxid = h.zxid;
            }
            commit(&mut core, &mut tree, &b);
            batches += 1;
            if closes.is_empty() {
                assert!(!core.has_work());
                break;
            }
            closed.extend(closes);
            assert_eq!(core.has_work(), closed.len() < N);
            now += 10;
        }
        assert!(
            batches as usize > N / MAX_EXPIRED_CLOSES_PER_BATCH,
            "{batches} batches"
        );
        let mut sorted = closed.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), N, "every storm session closed exactly once");
        assert_eq!(closed.len(), N);
        assert!(sorted.binary_search(&live).is_err());
        assert_eq!(tree.ephemeral_count(), 0);
        assert_eq!(tree.session_count(), 1);
        assert!(tree.get("/live0").is_some() && tree.get("/late").is_none());
        assert!(tree.get(&format!("/live{}", batches - 1)).is_some());
    }

    /// A batch of storm closes the log refuses is retried (at the next tick), and the
    /// closes still queued behind it are neither lost nor doubled.
    #[test]
    fn a_rejected_storm_batch_loses_and_doubles_no_close() {
        let n = MAX_EXPIRED_CLOSES_PER_BATCH * 2 + 7;
        let mut tree = DataTree::new();
        let mut core = CommitCore::new(PrepConfig::default(), 100, &tree, WALL, 0);
        new_sessions(&mut core, &mut tree, n, 0);
        let logged = tree.last_processed_zxid();
        let first = core.build_batch(&tree, WALL, 1100);
        assert_eq!(txns(&first).len(), MAX_EXPIRED_CLOSES_PER_BATCH);
        core.reject(first, logged, 1100);
        let mut closed = Vec::new();
        let mut now = 1100;
        for _ in 0..20 {
            let b = core.build_batch(&tree, WALL, now);
            closed.extend(txns(&b).iter().map(|(h, _)| h.client_id));
            commit(&mut core, &mut tree, &b);
            now += 50;
        }
        closed.sort_unstable();
        let before = closed.len();
        closed.dedup();
        assert_eq!(before, n, "no close doubled");
        assert_eq!(closed.len(), n, "no close lost");
        assert_eq!(tree.session_count(), 0);
    }

    /// ZooKeeper's session owner check on a leader: a session's writes come from the
    /// server its client is connected to; once it reconnects elsewhere (REVALIDATE), a
    /// write through its old connection fails with SessionMoved.
    #[test]
    fn a_write_from_a_server_the_session_moved_away_from_fails_with_session_moved() {
        let mut tree = DataTree::new();
        let mut core = CommitCore::new(PrepConfig::default(), 100, &tree, WALL, 1);
        let remote = |xid, sid, session, kind| WriteItem {
            origin: Origin::remote(xid, sid),
            session_id: session,
            auth: Arc::from(Vec::<Id>::new()),
            kind,
        };
        // Server 2 opens the session for its client, with the id it chose.
        let s = (2i64 << 56) | 7;
        send(
            &mut core,
            vec![remote(0, 2, s, WriteKind::CreateSession { timeout: 1000 })],
            0,
        );
        let b = core.build_batch(&tree, WALL, 0);
        assert_eq!(txns(&b)[0].0.client_id, s);
        commit(&mut core, &mut tree, &b);
        // Its writes through server 2 go through; through server 3 they do not.
        send(&mut core, vec![remote(1, 2, s, create("/a"))], 10);
        let b = core.build_batch(&tree, WALL, 10);
        assert!(matches!(txns(&b)[0].1, Txn::Create { .. }));
        commit(&mut core, &mut tree, &b);
        send(&mut core, vec![remote(2, 3, s, create("/b"))], 20);
        let b = core.build_batch(&tree, WALL, 20);
        assert_eq!(txns(&b)[0].1, Txn::Error(ErrorCode::SessionMoved));
        commit(&mut core, &mut tree, &b);
        // The client reconnects to server 3 (REVALIDATE there): now server 2's old
        // connection is the one refused.
        core.set_owner(s, 3);
        send(
            &mut core,
            vec![remote(3, 3, s, create("/b")), remote(4, 2, s, create("/c"))],
            30,
        );
        let b = core.build_batch(&tree, WALL, 30);
        let t = txns(&b);
        assert!(matches!(t[0].1, Txn::Create { .. }));
        assert_eq!(t[1].1, Txn::Error(ErrorCode::SessionMoved));
    }

    /// The TxnDigest a leader proposes is the digest of the tree once the txn is
    /// applied (ZooKeeper's followers check it): prep's running digest, over creates,
    /// sequential and ephemeral nodes, setData, deletes, a failed and a good multi, and a
    /// session's close, equals the applied tree's digest after every txn.
    #[test]
    fn the_proposed_digest_is_the_applied_trees() {
        use crate::proto::{MultiOp, MultiRequest, SetDataRequest};
        use crate::quorum::digest::tree_digest;
        let mut tree = DataTree::new();
        let mut core = CommitCore::new(PrepConfig::default(), 100, &tree, WALL, 1);
        core.lead_from(PrepConfig::default(), 1 << 32, &tree, 0);
        let s = new_session(&mut core, &mut tree, 0);
        let mk = |path: &str, flags: i32| {
            WriteKind::Request(Request::Create {
                op: OpCode::Create2,
                req: CreateRequest {
                    path: path.into(),
                    data: bytes::Bytes::from_static(b"data"),
                    acl: crate::tree::open_acl_unsafe(),
                    flags,
                },
            })
        };
        let set = |path: &str| {
            WriteKind::Request(Request::SetData(SetDataRequest {
                path: path.into(),
                data: bytes::Bytes::from_static(b"new data"),
                version: -1,
            }))
        };
        let multi = |ops: Vec<MultiOp>| WriteKind::Request(Request::Multi(MultiRequest { ops }));
        let mop = |path: &str| MultiOp::Create {
            op: OpCode::Create,
            req: CreateRequest {
                path: path.into(),
                data: bytes::Bytes::new(),
                acl: crate::tree::open_acl_unsafe(),
                flags: 0,
            },
        };
        let items = vec![
            item(s, 1, mk("/a", 0)),
            item(s, 2, mk("/a/seq-", 2)),
            item(s, 3, mk("/a/eph", 1)),
            item(s, 4, set("/a")),
            item(s, 5, multi(vec![mop("/m1"), mop("/nope/x")])),
            item(s, 6, multi(vec![mop("/m2"), mop("/m2/c")])),
            item(
                s,
                7,
                WriteKind::Request(Request::Delete(DeleteRequest {
                    path: "/m2/c".into(),
                    version: -1,
                })),
            ),
            item(s, 8, WriteKind::Request(Request::CloseSession)),
        ];
        send(&mut core, items, 10);
        let b = core.build_batch(&tree, WALL, 10);
        let digests: std::collections::HashMap<i64, i64> =
            core.take_digests().into_iter().collect();
        let mut checked = 0;
        let mut trig = Vec::new();
        for (h, t) in txns(&b) {
            apply(&mut tree, &h, &t, &mut trig);
            match digests.get(&h.zxid) {
                Some(&d) => {
                    assert_eq!(d, tree_digest(&tree), "after {:?} {t:?}", h.op);
                    checked += 1;
                }
                None => assert!(matches!(t, Txn::Error(_)), "no digest for {t:?}"),
            }
        }
        // A failed multi is a multi txn (of error sub-txns), digested as ZooKeeper does:
        // the tree it leaves is unchanged.
        assert_eq!(checked, 8, "every txn carries a digest");
        assert!(
            tree.get("/a/eph").is_none(),
            "the close deleted the ephemeral"
        );
    }
}
