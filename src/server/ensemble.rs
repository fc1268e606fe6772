//! The commit pipeline of an ensemble member, on shard 0: the one place that owns the
//! quorum [`Peer`] and carries out its actions.
//!
//! Clients' writes reach shard 0 as in standalone mode (`ToCommit` batches from every
//! shard). What happens next depends on the role the peer plays:
//! - **Leader, established**: the `CommitCore` preps them into txns (zxids from the new
//!   epoch), each is encoded as ZooKeeper's PROPOSAL data and proposed; committed txns
//!   are applied and broadcast to the shards when the peer says `Commit`.
//! - **Follower or observer, up to date**: each write is forwarded as REQUEST (a new
//!   session gets its id here, with our myid in the top byte, as ZooKeeper's learners
//!   do); the txns the leader commits are applied here, and a txn that answers one of
//!   our clients is matched to it by (session id, cxid), as ZooKeeper's
//!   `CommitProcessor` does.
//! - **Not serving** (looking, syncing): nothing is served; every client connection
//!   was closed when serving stopped (ZooKeeper without read-only mode).
//!
//! Storage actions go to one task that carries them out in order and reports each once
//! durable (`storage_task`); network actions go to [`QuorumNet`].
//!
//! A client that reconnects here with an existing session is answered only once the
//! leader's REVALIDATE answer is back (ZooKeeper's `Learner.validateSession`), so a
//! session the leader has just expired is refused, not resumed from our copy.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use glommio::channels::shared_channel::ConnectedSender;

use super::commit::CommitCore;
use super::messages::*;
use super::notify::Notify;
use super::peer_links::{PeerInbox, QuorumNet};
use super::{durability, now_wall_ms, Runtime};
use crate::config::Config;
use crate::proto::{OpCode, Request};
use crate::quorum::wire::{self, QuorumPacket};
use crate::quorum::zab::{Action, EpochFile, Event, Peer, PeerConfig, PeerState, ZabTxn};
use crate::quorum::{zk_txn, zxid, ServerState, Sid};
use crate::request::{Txn, TxnHeader};
use crate::session::SessionIdGenerator;
use crate::storage::{GlommioBackend, StorageError, TxnLog};
use crate::tree::DataTree;

/// The most txns a DIFF reads from the log on disk; a learner further behind gets a
/// SNAP (ZooKeeper bounds it by size: `snapshotSizeFactor` of the snapshot).
const MAX_DIFF_FROM_LOG: usize = 100_000;

/// How often the leader re-reads where the log on disk starts (purge moves it).
const LOG_HORIZON_EVERY: Duration = Duration::from_secs(2);

/// Tells the peer, now, periodically and when the storage task asks (`refresh`: the
/// log got its first txns, or was cut or replaced), from where the log on disk is
/// complete. Without the ask, a new ensemble's leader knew of no log for up to 2 s and
/// gave a learner that fell behind its window in memory a SNAP where the log could
/// have given a DIFF.
async fn log_horizon(dir: std::path::PathBuf, inbox: Rc<PeerInbox>, refresh: Rc<Notify>) {
    loop {
        match crate::storage::log_reader::oldest_complete_from(&GlommioBackend, &dir).await {
            Ok(complete_from) => inbox.push(Event::LogHorizon { complete_from }),
            Err(e) => tracing::warn!("reading where the txn log starts: {e}"),
        }
        futures_lite::future::or(glommio::timer::sleep(LOG_HORIZON_EVERY), refresh.wait()).await;
    }
}

/// The `PeerConfig` for this server's zoo.cfg (which must be distributed).
pub fn peer_config(config: &Config) -> PeerConfig {
    let quorum = config.quorum.as_ref().expect("an ensemble config");
    let my_sid = config.server_id.expect("myid is known in an ensemble");
    let me = quorum.get(my_sid).expect("myid is in the server list");
    PeerConfig {
        my_sid,
        my_type: me.learner_type,
        voters: quorum.voters().map(|s| s.id).collect(),
        tick_ms: config.tick_time as i64,
        init_limit: config.init_limit as i64,
        sync_limit: config.sync_limit as i64,
        commit_log_count: 500,
        config_string: Bytes::from(quorum.to_config_string()),
        min_notification_interval_ms: crate::quorum::election::MIN_NOTIFICATION_INTERVAL_MS,
        max_notification_interval_ms: crate::quorum::election::MAX_NOTIFICATION_INTERVAL_MS,
        #[cfg(test)]
        unsafe_ack_before_log: false,
    }
}

/// Encodes our txn as ZooKeeper's PROPOSAL data, with the tree digest after it when
/// known (a ZooKeeper follower checks it).
fn zab_txn(hdr: &TxnHeader, txn: &Txn, tree: &DataTree, digest: Option<i64>) -> ZabTxn {
    let close_paths = match txn {
        Txn::CloseSession => tree.ephemerals(hdr.client_id),
        _ => Vec::new(),
    };
    let mut buf = BytesMut::new();
    zk_txn::encode_txn(hdr, txn, &close_paths, digest, &mut buf);
    ZabTxn {
        zxid: hdr.zxid,
        data: buf.freeze(),
    }
}

/// What recovery found, as the peer starts from it: the epoch files and the newest
/// txns (for DIFF should this server lead).
pub async fn peer_state(
    config: &Config,
    rec: &crate::storage::Recovered,
) -> Result<PeerState, String> {
    let (accepted, current) =
        crate::storage::epoch::load_epochs(&GlommioBackend, &config.data_dir, rec.last_zxid)
            .await
            .map_err(|e| e.to_string())?;
    let keep = 500usize;
    let skip = rec.txns.len().saturating_sub(keep);
    let empty = DataTree::new();
    let committed_log = rec.txns[skip..]
        .iter()
        .map(|(h, t)| zab_txn(h, t, &empty, None))
        .collect();
    Ok(PeerState {
        accepted_epoch: accepted,
        current_epoch: current,
        last_logged_zxid: rec.last_zxid,
        committed_log,
        snapshot_zxid: rec.snapshot.as_ref().map_or(0, |s| s.last_zxid),
    })
}

/// A txn waiting for its commit, or an item that waits behind txns (a sync, a
/// reattach) to be handed to the shards in order.
enum Given {
    Txn {
        hdr: TxnHeader,
        txn: Txn,
        origin: Option<Origin>,
    },
    Other(Committed),
}

/// A learner's client write at the leader: where to answer, and the request's opcode
/// (and its multi's ops), which shape the reply.
type LocalWrite = (Origin, OpCode, Vec<OpCode>);

/// Storage work, in the order the peer asked for it.
enum StorageOp {
    Append(Vec<(TxnHeader, Txn)>),
    Epoch(EpochFile, i64),
    Truncate(i64),
    Install(Arc<DataTree>, i64),
}

struct StorageQueue {
    ops: RefCell<VecDeque<StorageOp>>,
    ready: Notify,
    /// Asks `log_horizon` to read where the log starts again.
    horizon: Rc<Notify>,
    /// A tree reloaded from the disk after a truncation below the applied state, for
    /// the pipeline to hand to every shard.
    reloaded: RefCell<Option<Arc<DataTree>>>,
}

struct Pipeline {
    rt: Rc<Runtime>,
    peer: Peer,
    net: Rc<QuorumNet>,
    inbox: Rc<PeerInbox>,
    storage: Rc<StorageQueue>,
    senders: Vec<ConnectedSender<Wake>>,
    core: CommitCore,
    given: VecDeque<Given>,
    /// Learner: our clients' writes at the leader, by (session id, cxid), with the
    /// opcode of the request (and of a multi's ops) that shapes the reply.
    local: HashMap<(i64, i32), VecDeque<LocalWrite>>,
    /// Learner: our clients' syncs forwarded, oldest first.
    syncs: VecDeque<(Origin, String)>,
    /// Learner: reconnecting clients waiting for the leader's REVALIDATE answer, by
    /// session id, oldest first (the leader answers each REVALIDATE in turn).
    revalidating: HashMap<i64, VecDeque<Origin>>,
    session_ids: SessionIdGenerator,
    /// Snapshots are taken here only when shard 0 is the only shard (otherwise on the
    /// last shard, as in standalone mode).
    snapshotter: Option<durability::Snapshotter>,
    my_sid: Sid,
    state: ServerState,
    serving: bool,
    /// The highest zxid the peer committed that is not applied yet. A learner gets one
    /// COMMIT per txn and a leader reaches quorum one ACK at a time: applying each
    /// alone cost a write scope, an outcome queued and a wake-up of every other shard
    /// per txn. Commits are therefore applied once per round of events
    /// (`apply_commits`), and at once before any action that could observe the tree.
    committed: Option<i64>,
}

/// Shard 0 of an ensemble member: runs the quorum peer and the commit pipeline until
/// the process stops.
pub(super) async fn ensemble_task(
    rt: Rc<Runtime>,
    from_shards: Rc<RefCell<Vec<ToCommit>>>,
    to_shards: Vec<glommio::channels::shared_channel::SharedSender<Wake>>,
    log: TxnLog<GlommioBackend>,
    state: PeerState,
) {
    let config = rt.config.clone();
    let inbox = PeerInbox::new();
    let net = match QuorumNet::start(&config, inbox.clone()) {
        Ok(n) => n,
        Err(e) => {
            tracing::error!("cannot start the quorum ports: {e}");
            eprintln!("corral: cannot start the quorum ports: {e}");
            std::process::exit(14);
        }
    };
    let to_shards_len = to_shards.len();
    let mut senders = Vec::new();
    for tx in to_shards {
        senders.push(tx.connect().await);
    }
    let storage = Rc::new(StorageQueue {
        ops: RefCell::default(),
        ready: Notify::default(),
        horizon: Rc::new(Notify::default()),
        reloaded: RefCell::default(),
    });
    glommio::spawn_local(storage_task(
        rt.clone(),
        storage.clone(),
        inbox.clone(),
        log,
    ))
    .detach();
    glommio::spawn_local(log_horizon(
        config.data_log_dir.clone(),
        inbox.clone(),
        storage.horizon.clone(),
    ))
    .detach();
    let cfg = peer_config(&config);
    let my_sid = cfg.my_sid;
    let now = rt.now_mono_ms();
    let mut actions = Vec::new();
    let peer = Peer::new(cfg, state, now, &mut actions);
    let core = {
        let shard = rt.shard.borrow();
        CommitCore::new(
            config.prep_config(),
            config.tick_time as i64,
            shard.tree.get(),
            now_wall_ms(),
            my_sid as i64,
        )
    };
    let only_shard = to_shards_len == 0;
    let mut p = Pipeline {
        rt: rt.clone(),
        peer,
        net,
        inbox: inbox.clone(),
        storage,
        senders,
        core,
        given: VecDeque::new(),
        local: HashMap::new(),
        syncs: VecDeque::new(),
        revalidating: HashMap::new(),
        session_ids: SessionIdGenerator::new(my_sid as i64, now_wall_ms()),
        snapshotter: None,
        my_sid,
        state: ServerState::Looking,
        serving: false,
        committed: None,
    };
    if only_shard {
        p.snapshotter = Some(durability::Snapshotter::new(&config, rand::random()));
    }
    p.rt.serving.store(false, Ordering::Release);
    p.execute(actions).await;
    let tick = Duration::from_millis(20);
    let mut next_tick = rt.now_mono_ms();
    let reap_every = config.container_check_interval_ms.max(10) as i64;
    let mut last_reap = rt.now_mono_ms();
    loop {
        // Wake for events, clients, the tick, or the election's next timer, whichever
        // comes first (see the runtime contract in quorum::zab).
        let now = rt.now_mono_ms();
        let due = p
            .peer
            .next_timeout()
            .map_or(next_tick, |t| t.min(next_tick));
        let wait = Duration::from_millis((due - now).clamp(0, tick.as_millis() as i64) as u64);
        futures_lite::future::or(
            futures_lite::future::or(inbox.wait(), rt.outbox_ready.wait()),
            glommio::timer::sleep(wait),
        )
        .await;
        let reloaded = p.storage.reloaded.borrow_mut().take();
        if let Some(tree) = reloaded {
            p.publish(vec![Committed::Install(InstalledTree(tree))])
                .await;
        }
        // Events, including the loopback notifications our own actions queue.
        for _ in 0..64 {
            let events = inbox.drain();
            if events.is_empty() {
                break;
            }
            for ev in events {
                p.handle(ev).await;
            }
            p.apply_commits().await;
        }
        let now = rt.now_mono_ms();
        if now >= next_tick || p.peer.next_timeout().is_some_and(|t| now >= t) {
            next_tick = now + tick.as_millis() as i64;
            let all_delivered = p.net.all_delivered();
            p.handle(Event::Tick { all_delivered }).await;
            p.apply_commits().await;
            p.rt.board.set_learner_counts(p.peer.learner_counts());
        }
        // Clients' writes.
        let mut msgs: Vec<ToCommit> = std::mem::take(&mut *from_shards.borrow_mut());
        if let Some(own) = rt.shard.borrow_mut().take_outbox() {
            msgs.push(own);
        }
        let reap = now - last_reap >= reap_every;
        if reap {
            last_reap = now;
        }
        p.on_clients(msgs, reap).await;
        p.apply_commits().await;
    }
}

impl Pipeline {
    async fn handle(&mut self, ev: Event) {
        let mut actions = Vec::new();
        self.peer.handle(self.rt.now_mono_ms(), ev, &mut actions);
        self.execute(actions).await;
    }

    async fn execute(&mut self, actions: Vec<Action>) {
        for a in actions {
            // Sends and appends neither read the tree nor answer anyone: commits wait
            // behind them. Anything else sees every commit applied first.
            if !matches!(
                a,
                Action::Commit { .. } | Action::Send { .. } | Action::Log { .. }
            ) {
                self.apply_commits().await;
            }
            match a {
                Action::SendNotification { to, n } => {
                    if to == self.my_sid {
                        self.inbox.push(Event::Notification {
                            from: self.my_sid,
                            n,
                        });
                    } else {
                        self.net.send_notification(to, n);
                    }
                }
                Action::ConnectAll => self.net.connect_all(),
                Action::ConnectToLeader { leader, link } => {
                    self.net.connect_to_leader(leader, link)
                }
                Action::Send { link, pkt } => self.net.send(link, &pkt),
                Action::SendSnap { link, zxid } => self.send_snap(link, zxid),
                Action::Close { link } => self.net.close(link),
                Action::Log { txns } => self.log(txns),
                Action::WriteEpoch { file, epoch } => self.store(StorageOp::Epoch(file, epoch)),
                Action::Truncate { zxid } => {
                    tracing::info!(zxid = format!("{zxid:#x}"), "sync: TRUNC from the leader");
                    self.given
                        .retain(|g| matches!(g, Given::Txn { hdr, .. } if hdr.zxid <= zxid));
                    self.store(StorageOp::Truncate(zxid));
                }
                Action::InstallSnap { link, zxid } => match self.net.take_snap(link) {
                    Some((mut tree, _sessions)) => {
                        tracing::info!(zxid = format!("{zxid:#x}"), "sync: SNAP from the leader");
                        tree.set_last_processed_zxid(zxid);
                        self.given.clear();
                        let tree = Arc::new(tree);
                        self.publish(vec![Committed::Install(InstalledTree(tree.clone()))])
                            .await;
                        self.store(StorageOp::Install(tree, zxid));
                    }
                    None => {
                        tracing::error!("a SNAP to install was not received whole");
                        self.net.close(link);
                    }
                },
                // Applied before the next action that could see it (a SendSnap later in
                // the same list must), or at the end of this round of events.
                Action::Commit { up_to } => {
                    self.committed = Some(self.committed.map_or(up_to, |c| c.max(up_to)));
                }
                Action::ReadLog { link, from, before } => self.read_log(link, from, before),
                Action::Submit {
                    from,
                    session_id,
                    cxid,
                    op,
                    body,
                    auth,
                } => self.submit(from, session_id, cxid, op, &body, auth),
                Action::Revalidate {
                    from,
                    link,
                    session_id,
                    ..
                } => {
                    let valid = self.core.touch(session_id, self.rt.now_mono_ms());
                    if valid {
                        self.core.set_owner(session_id, from);
                    }
                    self.inbox.push(Event::RevalidateAnswer {
                        link,
                        session_id,
                        valid,
                    });
                }
                Action::TouchSessions { sessions } => {
                    let now = self.rt.now_mono_ms();
                    for (id, _) in sessions {
                        self.core.touch(id, now);
                    }
                }
                Action::RevalidateResult { session_id, valid } => {
                    // Queued behind the txns given so far: the client's view then holds
                    // at least what it held before it reconnected.
                    let origin = match self.revalidating.get_mut(&session_id) {
                        Some(q) => {
                            let o = q.pop_front();
                            if q.is_empty() {
                                self.revalidating.remove(&session_id);
                            }
                            o
                        }
                        None => None,
                    };
                    if let Some(origin) = origin {
                        self.given.push_back(Given::Other(Committed::Reattach {
                            session_id,
                            origin,
                            valid,
                        }));
                    }
                }
                Action::SyncDone => {
                    if let Some((origin, path)) = self.syncs.pop_front() {
                        self.given
                            .push_back(Given::Other(Committed::Sync { origin, path }));
                    }
                }
                Action::RoleChanged {
                    state,
                    leader,
                    epoch,
                    serving,
                } => self.role_changed(state, leader, epoch, serving).await,
            }
        }
        self.flush_ready().await;
    }

    fn store(&self, op: StorageOp) {
        self.storage.ops.borrow_mut().push_back(op);
        self.storage.ready.notify();
    }

    /// Log: our own proposals are in `given` already; a learner's come from the leader
    /// and are decoded here.
    fn log(&mut self, txns: Vec<ZabTxn>) {
        let mut records = Vec::with_capacity(txns.len());
        let max = self.rt.config.limits.max_buffer;
        // A leader's own proposals: the newest entries of `given`, found in one pass.
        let first = txns.first().map_or(i64::MAX, |t| t.zxid);
        let mut own: HashMap<i64, (TxnHeader, Txn)> = HashMap::new();
        for g in self.given.iter().rev() {
            if let Given::Txn { hdr, txn, .. } = g {
                if hdr.zxid < first {
                    break;
                }
                own.insert(hdr.zxid, (*hdr, txn.clone()));
            }
        }
        for t in txns {
            let (hdr, txn) = match own.remove(&t.zxid) {
                Some(r) => r,
                None => match zk_txn::decode_txn(&t.data, max) {
                    Ok((hdr, txn, _digest)) => {
                        self.given.push_back(Given::Txn {
                            hdr,
                            txn: txn.clone(),
                            origin: None,
                        });
                        (hdr, txn)
                    }
                    Err(e) => {
                        // The leader sent a txn we cannot read: we cannot follow it.
                        tracing::error!(zxid = t.zxid, "cannot decode a proposal: {e}");
                        eprintln!("corral: cannot decode proposal {:#x}: {e}", t.zxid);
                        std::process::exit(13);
                    }
                },
            };
            records.push((hdr, txn));
        }
        self.store(StorageOp::Append(records));
    }

    /// Leader: reads a learner's DIFF from the log on disk, beside the pipeline.
    fn read_log(&self, link: u64, from: i64, before: i64) {
        let dir = self.rt.config.data_log_dir.clone();
        let inbox = self.inbox.clone();
        // ZooKeeper's `snapshotSizeFactor` (0.33): a DIFF whose txns weigh more than a
        // third of a snapshot goes as a SNAP instead. The snapshot's size is estimated
        // from the tree (data, paths, and a Stat per node).
        let snapshot_bytes = {
            let shard = self.rt.shard.borrow();
            shard.tree.get().approximate_data_size() + shard.tree.get().node_count() as u64 * 68
        };
        // The DIFF would also carry the window from `before` on: ZooKeeper weighs the
        // whole tail of the log after the learner's last txn.
        let window_bytes = self.peer.history_bytes_from(before);
        // From the learner's own last txn on (so the peer can check it is ours), or
        // after it when that is an epoch's zero (no txn is stored there).
        let after = if zxid::counter_of(from) == 0 {
            from
        } else {
            from - 1
        };
        glommio::spawn_local(async move {
            let read = crate::storage::log_reader::read_txns_after(
                &GlommioBackend,
                &dir,
                after,
                before - 1,
                MAX_DIFF_FROM_LOG,
            )
            .await;
            let txns = match read {
                Ok(records) => {
                    let empty = DataTree::new();
                    let txns: Vec<ZabTxn> = records
                        .iter()
                        .map(|(h, t)| zab_txn(h, t, &empty, None))
                        .collect();
                    let bytes: u64 =
                        window_bytes + txns.iter().map(|t| t.data.len() as u64).sum::<u64>();
                    if bytes.saturating_mul(3) > snapshot_bytes {
                        tracing::info!(
                            bytes,
                            snapshot_bytes,
                            "a learner's DIFF would outweigh a third of a snapshot: it gets a SNAP"
                        );
                        None
                    } else {
                        Some(txns)
                    }
                }
                Err(e) => {
                    tracing::info!("a learner's DIFF is not in the log ({e}): it gets a SNAP");
                    None
                }
            };
            inbox.push(Event::LogRead { link, txns });
        })
        .detach();
    }

    fn send_snap(&self, link: u64, zxid: i64) {
        let shard = self.rt.shard.borrow();
        assert_eq!(
            shard.tree.get().last_processed_zxid(),
            zxid,
            "a SNAP must be the state at the last commit"
        );
        let sessions = shard.tree.get().sessions();
        let mut buf = BytesMut::new();
        crate::quorum::snap_stream::write_snap(shard.tree.get(), &sessions, &mut buf);
        self.net.send(
            link,
            &QuorumPacket {
                typ: wire::SNAP,
                zxid,
                data: None,
                authinfo: None,
            },
        );
        self.net.send_raw(link, buf.freeze());
    }

    /// Leader: a learner's forwarded request enters the commit pipeline.
    fn submit(
        &mut self,
        from: Sid,
        session_id: i64,
        cxid: i32,
        op: i32,
        body: &[u8],
        auth: Vec<crate::proto::Id>,
    ) {
        let kind = match zk_txn::decode_forwarded(op, body) {
            Ok(zk_txn::ForwardedRequest::Client(req)) => WriteKind::Request(req),
            Ok(zk_txn::ForwardedRequest::CreateSession { timeout }) => {
                WriteKind::CreateSession { timeout }
            }
            Ok(zk_txn::ForwardedRequest::DeleteContainer { path }) => {
                // Only a leader's container manager deletes containers.
                tracing::warn!(session_id, %path, "a learner forwarded deleteContainer: ignored");
                return;
            }
            Err(e) => {
                tracing::warn!(
                    session_id,
                    cxid,
                    op,
                    "a learner forwarded a request that does not decode: {e}"
                );
                return;
            }
        };
        self.core.on_input(
            ToCommit {
                items: vec![WriteItem {
                    origin: Origin::remote(cxid, from),
                    session_id,
                    auth: Arc::from(auth),
                    kind,
                }],
                touches: Vec::new(),
            },
            self.rt.now_mono_ms(),
        );
    }

    /// Clients' writes from every shard, by role.
    async fn on_clients(&mut self, msgs: Vec<ToCommit>, reap: bool) {
        let leading = self.state == ServerState::Leading;
        if !self.serving {
            // Their connections are being closed; nothing is answered.
            return;
        }
        if leading {
            let now = self.rt.now_mono_ms();
            for m in msgs {
                self.core.on_input(m, now);
            }
            self.propose(reap).await;
            return;
        }
        let mut touched = Vec::new();
        for m in msgs {
            {
                let shard = self.rt.shard.borrow();
                for s in m.touches {
                    if let Some(t) = shard.tree.get().session_timeout(s) {
                        touched.push((s, t));
                    }
                }
            }
            for item in m.items {
                self.forward(item).await;
            }
        }
        if !touched.is_empty() {
            self.handle(Event::Touched { sessions: touched }).await;
        }
    }

    /// Leader: preps what waits (and expired sessions, and reapable containers) and
    /// proposes it.
    async fn propose(&mut self, reap: bool) {
        let Some(next) = self.peer.next_zxid() else {
            return;
        };
        let limit = self.rt.config.limits.max_proposals_in_flight;
        let in_flight = self.peer.proposals_in_flight();
        if in_flight >= limit {
            // Commits coming back (events) bring us here again; the writes wait.
            return;
        }
        let (batch, txns) = {
            let shard = self.rt.shard.borrow();
            let mut batch = self.core.build_batch_at_most(
                shard.tree.get(),
                now_wall_ms(),
                self.rt.now_mono_ms(),
                limit - in_flight,
            );
            // Reaping adds a few deletes at most once per containerCheckInterval; it
            // waits for a batch with room to spare.
            let reap = reap && batch.len() < limit - in_flight;
            if reap {
                batch.extend(self.core.reap(shard.tree.get(), now_wall_ms()));
            }
            let digests: HashMap<i64, i64> = self.core.take_digests().into_iter().collect();
            let txns: Vec<ZabTxn> = batch
                .iter()
                .filter_map(|c| match c {
                    Committed::Txn { hdr, txn, .. } => Some(zab_txn(
                        hdr,
                        txn,
                        shard.tree.get(),
                        digests.get(&hdr.zxid).copied(),
                    )),
                    _ => None,
                })
                .collect();
            (batch, txns)
        };
        if batch.is_empty() {
            return;
        }
        if let Some(first) = txns.first() {
            assert_eq!(
                first.zxid, next,
                "the commit pipeline and the leader disagree on the next zxid"
            );
        }
        for c in batch {
            self.given.push_back(match c {
                Committed::Txn { hdr, txn, origin } => Given::Txn { hdr, txn, origin },
                other => Given::Other(other),
            });
        }
        if !txns.is_empty() {
            self.handle(Event::Propose { txns }).await;
        }
        // An expiry storm's closes go out a bounded number per batch: the next batch
        // is built at once, not at the next wake-up.
        if self.core.has_work() {
            self.rt.outbox_ready.notify();
        }
    }

    /// Learner: one client write goes to the leader.
    async fn forward(&mut self, item: WriteItem) {
        let o = item.origin;
        let mut sub_ops = Vec::new();
        let (session_id, op, body, opcode) = match item.kind {
            WriteKind::Request(req) => {
                let opcode = req.opcode();
                if let Request::Multi(m) = &req {
                    sub_ops = m.ops.iter().map(|o| o.opcode()).collect();
                }
                let mut buf = BytesMut::new();
                let op = zk_txn::encode_forwarded(&zk_txn::ForwardedRequest::Client(req), &mut buf);
                (item.session_id, op, buf.freeze(), opcode)
            }
            WriteKind::CreateSession { timeout } => {
                let id = self.session_ids.next();
                (
                    id,
                    OpCode::CreateSession.as_i32(),
                    zk_txn::create_session_body(timeout),
                    OpCode::CreateSession,
                )
            }
            WriteKind::Sync(path) => {
                self.syncs.push_back((o, path.clone()));
                let mut buf = BytesMut::new();
                let op = zk_txn::encode_forwarded(
                    &zk_txn::ForwardedRequest::Client(Request::Sync(crate::proto::SyncRequest {
                        path,
                    })),
                    &mut buf,
                );
                self.handle(Event::Forward {
                    session_id: item.session_id,
                    cxid: o.xid,
                    op,
                    body: buf.freeze(),
                    auth: item.auth.to_vec(),
                })
                .await;
                return;
            }
            WriteKind::Reattach { passwd_ok } => {
                if !passwd_ok {
                    // Refused here (ZooKeeper checks the password before it asks the
                    // leader); only the session's other connections are closed.
                    self.given.push_back(Given::Other(Committed::Reattach {
                        session_id: item.session_id,
                        origin: o,
                        valid: false,
                    }));
                    self.flush_ready().await;
                    return;
                }
                let timeout = self
                    .rt
                    .shard
                    .borrow()
                    .tree
                    .get()
                    .session_timeout(item.session_id)
                    .unwrap_or(0);
                self.revalidating
                    .entry(item.session_id)
                    .or_default()
                    .push_back(o);
                self.handle(Event::Revalidate {
                    session_id: item.session_id,
                    timeout,
                })
                .await;
                return;
            }
        };
        let cxid = if opcode == OpCode::CreateSession {
            0
        } else {
            o.xid
        };
        self.local
            .entry((session_id, cxid))
            .or_default()
            .push_back((o, opcode, sub_ops));
        self.handle(Event::Forward {
            session_id,
            cxid,
            op,
            body,
            auth: item.auth.to_vec(),
        })
        .await;
    }

    /// Applies what the peer committed and is not applied yet.
    async fn apply_commits(&mut self) {
        if let Some(up_to) = self.committed.take() {
            self.commit(up_to).await;
        }
    }

    /// Applies every given txn up to `up_to`, with the items queued behind them.
    async fn commit(&mut self, up_to: i64) {
        let mut batch = Vec::new();
        while let Some(g) = self.given.front() {
            if let Given::Txn { hdr, .. } = g {
                if hdr.zxid > up_to {
                    break;
                }
            }
            match self.given.pop_front().expect("front exists") {
                Given::Txn {
                    mut hdr,
                    mut txn,
                    mut origin,
                } => {
                    if origin.is_none() {
                        if let Some(q) = self.local.get_mut(&(hdr.client_id, hdr.cxid)) {
                            if let Some((o, op, sub_ops)) = q.pop_front() {
                                origin = Some(o);
                                if hdr.op == OpCode::Error {
                                    // ZooKeeper's error txns carry no opcode: the
                                    // reply is shaped by the request's.
                                    hdr.op = op;
                                }
                                // A create2 in a multi travels as create (ZooKeeper
                                // 3.8's rule); the client asked for create2's reply.
                                if let Txn::Multi(ops) = &mut txn {
                                    if ops.len() == sub_ops.len() {
                                        for ((o, _), asked) in ops.iter_mut().zip(&sub_ops) {
                                            if *o == OpCode::Create && *asked == OpCode::Create2 {
                                                *o = OpCode::Create2;
                                            }
                                        }
                                    }
                                }
                            }
                            if q.is_empty() {
                                self.local.remove(&(hdr.client_id, hdr.cxid));
                            }
                        }
                    }
                    batch.push(Committed::Txn { hdr, txn, origin });
                }
                Given::Other(c) => batch.push(c),
            }
        }
        if !batch.is_empty() {
            self.publish(batch).await;
        }
    }

    /// Items at the head of `given` that wait for no txn.
    async fn flush_ready(&mut self) {
        let mut batch = Vec::new();
        while matches!(self.given.front(), Some(Given::Other(_))) {
            if let Some(Given::Other(c)) = self.given.pop_front() {
                batch.push(c);
            }
        }
        if !batch.is_empty() {
            self.publish(batch).await;
        }
    }

    /// Hands a batch to every shard (and applies it here), as the standalone commit
    /// task does.
    async fn publish(&mut self, batch: Vec<Committed>) {
        let installed = batch.iter().rev().find_map(|c| match c {
            Committed::Install(t) => Some(t.0.last_processed_zxid()),
            _ => None,
        });
        let last = super::commit::batch_last_zxid(&batch);
        // Before any shard can apply (and answer) the batch: a read anywhere after a
        // reply showing it waits until its own shard has applied it too.
        if let Some(z) = last.or(installed) {
            self.rt.published.store(z, Ordering::Release);
        }
        let txns = self.rt.apply(Arc::new(batch), &self.senders);
        if let Some(z) = last {
            if self.state == ServerState::Leading {
                self.core.applied(z);
            }
        }
        if let Some(s) = self.snapshotter.as_mut() {
            s.after_batch(&self.rt, txns as u64);
        }
        self.rt.flush_dirty();
    }

    async fn role_changed(
        &mut self,
        state: ServerState,
        leader: Option<Sid>,
        epoch: i64,
        serving: bool,
    ) {
        let was_serving = self.serving;
        self.state = state;
        self.serving = serving;
        tracing::info!(?state, ?leader, epoch, serving, "quorum role");
        self.rt.board.set_quorum_state(state, serving);
        self.rt.board.set_leader(leader);
        if was_serving && !serving {
            // ZooKeeper shuts its server down when it loses its leader or quorum:
            // clients lose their connections and reconnect elsewhere. What they were
            // waiting for is no longer answered here.
            self.rt.serving.store(false, Ordering::Release);
            self.local.clear();
            self.syncs.clear();
            self.revalidating.clear();
            for g in self.given.iter_mut() {
                if let Given::Txn { origin, .. } = g {
                    *origin = None;
                }
            }
            self.given.retain(|g| matches!(g, Given::Txn { .. }));
            self.publish(vec![Committed::CloseAll]).await;
        }
        if serving && !was_serving {
            if state == ServerState::Leading {
                let shard = self.rt.shard.borrow();
                self.core.lead_from(
                    self.rt.config.prep_config(),
                    zxid::make(epoch, 0),
                    shard.tree.get(),
                    self.rt.now_mono_ms(),
                );
            }
            self.rt.serving.store(true, Ordering::Release);
        }
    }
}

/// Carries out storage actions in order, each durable before the next starts, and
/// reports each to the peer. Consecutive appends go to the log as one batch (one
/// fdatasync). A failure that could lose data stops the server. The next log segment
/// is made beside the appends (`pipeline::Spares`, as standalone), so a roll-over
/// renames a ready file. Made inline, 64 MiB of zeros and their fdatasync held every
/// append behind them: 150-190 ms stalls (p99.99 and max of the 3-voter bench at 128
/// and 256 in flight, three servers on one disk), 17-30 ms with the spares.
async fn storage_task(
    rt: Rc<Runtime>,
    q: Rc<StorageQueue>,
    inbox: Rc<PeerInbox>,
    mut log: TxnLog<GlommioBackend>,
) {
    let config = rt.config.clone();
    // mntr's fsync figures and the metrics' batch sizes, published at most every 200 ms
    // (after an append: an idle log has nothing new to say).
    let mut batch_txns = config.metrics_provider.is_some().then(|| {
        hdrhistogram::Histogram::<u64>::new_with_bounds(1, 1 << 24, 2)
            .expect("valid histogram bounds")
    });
    let mut last_stats_publish = i64::MIN;
    // Whether an append went in since the horizon was last asked for (at start, after
    // a cut or an installed snapshot): the first one asks again.
    let mut logged_any = false;
    let spares = super::pipeline::Spares::start(&config, &log);
    loop {
        if q.ops.borrow().is_empty() {
            q.ready.wait().await;
            continue;
        }
        let op = q.ops.borrow_mut().pop_front().expect("not empty");
        match op {
            StorageOp::Append(mut records) => {
                // Group commit: every append waiting behind this one joins it.
                loop {
                    let next = {
                        let mut ops = q.ops.borrow_mut();
                        match ops.front() {
                            Some(StorageOp::Append(_)) => ops.pop_front(),
                            _ => None,
                        }
                    };
                    match next {
                        Some(StorageOp::Append(more)) => records.extend(more),
                        _ => break,
                    }
                }
                let Some(last) = records.last().map(|(h, _)| h.zxid) else {
                    continue;
                };
                spares.offer(&mut log);
                let appended = log.append_batch(&records).await;
                spares.ask(&log);
                match appended {
                    Ok(()) => {
                        inbox.push(Event::Logged { zxid: last });
                        if !logged_any {
                            logged_any = true;
                            q.horizon.notify();
                        }
                    }
                    Err(e) => fatal(&format!("txn log append: {e}"), &e),
                }
                if let Some(h) = batch_txns.as_mut() {
                    h.saturating_record(records.len() as u64);
                }
                let now = rt.now_mono_ms();
                if now.saturating_sub(last_stats_publish) >= 200 {
                    last_stats_publish = now;
                    super::admin_view::publish_log_stats(
                        &rt.board,
                        log.fsync_histogram(),
                        batch_txns.as_ref(),
                    );
                }
            }
            StorageOp::Epoch(file, epoch) => {
                let name = match file {
                    EpochFile::Accepted => crate::storage::epoch::ACCEPTED_EPOCH,
                    EpochFile::Current => crate::storage::epoch::CURRENT_EPOCH,
                };
                match crate::storage::epoch::write_epoch(
                    &GlommioBackend,
                    &config.data_dir,
                    name,
                    epoch,
                )
                .await
                {
                    Ok(()) => inbox.push(Event::EpochWritten { file, epoch }),
                    Err(e) => fatal(&format!("writing {name}: {e}"), &e),
                }
            }
            StorageOp::Truncate(zxid) => {
                if let Err(e) = log.truncate_after(zxid).await {
                    fatal(&format!("truncating the log after {zxid:#x}: {e}"), &e);
                }
                // The state applied what is gone (only after a restart, whose recovery
                // applied the whole log): reload it from the disk.
                let applied = rt.shard.borrow().tree.get().last_processed_zxid();
                if applied > zxid {
                    match durability::read_state(&config).await {
                        Ok((rec, new_log)) => {
                            // A spare the old log held stays on disk as `log.spare.<n>`
                            // until the next start removes it (this follows a restart,
                            // and only once).
                            log = new_log;
                            match durability::build_tree(&rec, None) {
                                Ok((tree, _)) => *q.reloaded.borrow_mut() = Some(Arc::new(tree)),
                                Err(e) => fatal_msg(&format!("reloading the state: {e}")),
                            }
                        }
                        Err(e) => fatal_msg(&format!("reloading the state: {e}")),
                    }
                }
                logged_any = false;
                q.horizon.notify();
                inbox.push(Event::Truncated { zxid });
            }
            StorageOp::Install(tree, zxid) => {
                match crate::storage::install_snapshot(
                    &GlommioBackend,
                    &config.data_dir,
                    &tree,
                    zxid,
                    &mut log,
                )
                .await
                {
                    Ok(()) => {
                        logged_any = false;
                        q.horizon.notify();
                        inbox.push(Event::SnapInstalled { zxid })
                    }
                    Err(e) => fatal(&format!("installing the leader's snapshot: {e}"), &e),
                }
            }
        }
    }
}

fn fatal(msg: &str, e: &StorageError) -> ! {
    let _ = e;
    fatal_msg(msg)
}

fn fatal_msg(msg: &str) -> ! {
    tracing::error!("{msg}; stopping so that nothing is acknowledged that is not durable");
    eprintln!("corral: {msg}");
    std::process::exit(70);
}
