//! The commit pipeline's tasks: shard 0 gathers the other shards' writes, builds a
//! batch with the commit core (`commit::CommitCore`), makes it durable in the txn log
//! (one fdatasync per batch), applies it and hands it to every other shard; the other
//! shards carry their writes to shard 0 and apply what comes back. Also the log's
//! helpers that run beside it (spare segments, autopurge) and the AdminServer's
//! `restore` between two batches. Standalone only: an ensemble member's pipeline is
//! `ensemble.rs`. The runtime wiring that starts these tasks is `mod.rs`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use glommio::channels::shared_channel::{self, ConnectedSender};

use super::commit::{self, CommitCore};
use super::messages::*;
use super::notify::Notify;
use super::{admin_view, durability, now_wall_ms, Runtime};
use crate::config::Config;
use crate::storage::log::{AppendDone, FrameBuilder, MAX_APPENDS_IN_FLIGHT};
use crate::storage::{GlommioBackend, StorageError, TxnLog};
use crate::tree::DataTree;

/// Shard 0: queues what another shard sent and wakes the commit task.
pub(super) async fn receive_from_shard(
    rx: shared_channel::SharedReceiver<ToCommit>,
    inbox: Rc<RefCell<Vec<ToCommit>>>,
    rt: Rc<Runtime>,
) {
    let rx = rx.connect().await;
    while let Some(msg) = rx.recv().await {
        inbox.borrow_mut().push(msg);
        rt.outbox_ready.notify();
    }
}

/// Shard 0: the commit pipeline's task. Wakes on new work or on the tick, builds one
/// batch from everything waiting and logs it; while the disk writes it, applies the
/// batch logged before (sends it to the other shards and applies it here) and builds
/// the next batch from what arrives, so prepping and applying overlap the disk
/// instead of taking turns with it. A batch is applied and answered only once the log
/// holds it. A batch the log cannot take because the disk is full is not retried: its
/// writes (and those of the batch built behind it, prepped on top of it) go out as
/// rejections answered THROTTLEDOP (ZooKeeper's "not executed at all, retry with back
/// off"; a new session's connection is closed), the commit core is rolled back to the
/// log's last zxid, syncs and reattaches go through, and reads go on. The log fails
/// such batches fast while the disk stays full, and the next batch that can be logged
/// resumes writes. Any other log error stops the server (exit 70).
pub(super) async fn commit_task(
    rt: Rc<Runtime>,
    inbox: Rc<RefCell<Vec<ToCommit>>>,
    to_shards: Vec<shared_channel::SharedSender<Wake>>,
    mut log: TxnLog<GlommioBackend>,
) {
    let mut senders: Vec<ConnectedSender<Wake>> = Vec::new();
    for tx in to_shards {
        senders.push(tx.connect().await);
    }
    // Snapshots are walked by the last shard, off the commit pipeline's core (every
    // txn in the tree is logged before it is applied); here only when this is the
    // only shard.
    let snapshotter = senders
        .is_empty()
        .then(|| durability::Snapshotter::new(&rt.config, rand::random()));
    let tick = Duration::from_millis((rt.config.tick_time as u64 / 2).clamp(10, 1000));
    let core = {
        let shard = rt.shard.borrow();
        CommitCore::new(
            rt.config.prep_config(),
            rt.config.tick_time as i64,
            shard.tree.get(),
            now_wall_ms(),
            0,
        )
    };
    let mut p = Pipeline {
        last_reap: rt.now_mono_ms(),
        reap_every: rt.config.container_check_interval_ms.max(10) as i64,
        stats: LogStats::new(&rt),
        rt,
        inbox,
        senders,
        core,
        snapshotter,
    };
    // Whether writes are being refused for lack of disk space (logged once each way).
    let mut disk_full = false;
    let spares = Spares::start(&p.rt.config, &log);
    let depth = appends_in_flight(&p.rt.config, &log);
    // Handed to the log and not yet retired, oldest first (each retired, applied and
    // answered only once it and every append before it are durable).
    let mut flight: VecDeque<InFlight> = VecDeque::new();
    // Built and not yet handed to the log (its txns encoded as a log frame as the batch
    // is built).
    let mut current: Vec<Committed> = Vec::new();
    let mut frame = FrameBuilder::default();
    loop {
        // Retire the appends that are durable, in order; their batches are applied
        // after the next append is on its way.
        let mut retired: Vec<(Vec<Committed>, usize)> = Vec::new();
        while flight.front().is_some_and(|f| f.done.is_some()) {
            let f = flight.pop_front().expect("checked above");
            let outcome = match f.done.expect("checked above") {
                // A batch of syncs and reattaches only: nothing was logged.
                None => Ok(()),
                Some(done) => log.complete_append(done),
            };
            if durable(outcome, &log, &mut disk_full) {
                p.core.logged();
                p.stats.logged(&p.rt, &log, f.txns);
                retired.push((f.batch, f.txns));
            } else {
                // A full disk (the log refuses this only for an append nothing
                // overlapped, so none is in flight behind it): its writes and those
                // built behind it are answered THROTTLEDOP and the core forgets them
                // (the next batch reuses their zxids); syncs and reattaches go through.
                // Behind it only batches without txns (syncs, reattaches) can wait:
                // they go through with the rejections, in order.
                let mut batch = f.batch;
                for g in flight.drain(..) {
                    assert!(g.txns == 0, "a refused append had others behind it");
                    batch.extend(g.batch);
                }
                batch.append(&mut current);
                frame = FrameBuilder::default();
                let now = p.rt.now_mono_ms();
                let rejected = p.core.reject(batch, log.last_zxid(), now);
                retired.push((rejected, 0));
            }
            spares.ask(&log);
        }
        if flight.is_empty() && current.is_empty() {
            // Nothing to overlap with: answer what is logged, then wait for work.
            for (batch, txns) in retired.drain(..) {
                p.finish(batch, txns);
            }
            if !p.core.has_work() && !p.rt.restores.is_waiting() {
                let rt = &p.rt;
                futures_lite::future::or(
                    futures_lite::future::or(rt.outbox_ready.wait(), glommio::timer::sleep(tick)),
                    rt.restores.wake.notified(),
                )
                .await;
            }
            if let Some(req) = p.rt.restores.take() {
                // Here, between two batches: every batch before is logged, applied and
                // sent; the next is built against the restored tree.
                if let Some(restored) =
                    restore_between_batches(&p.rt, &mut log, &p.senders, req).await
                {
                    p.core = restored;
                }
            }
            p.stats.publish_if_due(&p.rt, &log);
            current = p.build(false, &mut frame);
            if current.is_empty() {
                continue;
            }
        }
        let mut started = false;
        if !current.is_empty() && flight.len() < depth && log.can_start(&frame) {
            spares.offer(&mut log);
            p.core.sealed();
            let txns = frame.len();
            let batch = std::mem::take(&mut current);
            let appended = if frame.is_empty() {
                // Syncs and reattaches only: nothing to log, answered in order.
                Ok(None)
            } else {
                log.start_append(&frame).await.map(Some)
            };
            frame = FrameBuilder::default();
            match appended {
                Ok(io) => {
                    let mut f = InFlight {
                        batch,
                        txns,
                        io: io.map(|io| Box::pin(io.run()) as AppendFuture),
                        done: None,
                    };
                    f.poll_once().await;
                    flight.push_back(f);
                    started = true;
                }
                Err(e) => {
                    // Nothing was handed to the disk; the log refuses a roll-over
                    // while appends are in flight, so none is.
                    let refused = durable(Err(e), &log, &mut disk_full);
                    debug_assert!(!refused);
                    assert!(
                        flight.is_empty(),
                        "a refused roll-over had appends in flight"
                    );
                    let now = p.rt.now_mono_ms();
                    let rejected = p.core.reject(batch, log.last_zxid(), now);
                    retired.push((rejected, 0));
                }
            }
        }
        for (batch, txns) in retired.drain(..) {
            p.finish(batch, txns);
        }
        // Started one (maybe another can start), one is ready to retire, or none is in
        // flight (after a rejection): back to the top.
        if started || flight.front().is_none_or(|f| f.done.is_some()) {
            continue;
        }
        // Wait for an append to become durable or for work to build into the next
        // batch. A waiting restore gets the pipeline drained: nothing more is built.
        let building = !p.rt.restores.is_waiting();
        let woke = {
            let work = p.rt.outbox_ready.wait();
            futures_lite::pin!(work);
            std::future::poll_fn(|cx| {
                let mut durable = false;
                for f in flight.iter_mut() {
                    durable |= f.poll(cx);
                }
                if durable {
                    return Poll::Ready(false);
                }
                if building && work.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(true);
                }
                Poll::Pending
            })
            .await
        };
        if woke {
            let more = p.build(true, &mut frame);
            current.extend(more);
        }
    }
}

/// How many appends the standalone pipeline keeps in flight: `logAppendsInFlight`
/// with `forceSync`; without it a write returns at once and one is enough.
fn appends_in_flight(config: &Config, log: &TxnLog<GlommioBackend>) -> usize {
    if !log.config().force_sync {
        return 1;
    }
    config.log_appends_in_flight.clamp(1, MAX_APPENDS_IN_FLIGHT)
}

type AppendFuture = Pin<Box<dyn Future<Output = AppendDone>>>;

/// A batch handed to the log and not yet retired.
struct InFlight {
    batch: Vec<Committed>,
    /// Txns of it in the log.
    txns: usize,
    /// Its write (None: the batch held no txn).
    io: Option<AppendFuture>,
    /// Once the write finished: its outcome (None for a batch without txns).
    done: Option<Option<AppendDone>>,
}

impl InFlight {
    /// Polls the write if it has not finished; true if it just did.
    fn poll(&mut self, cx: &mut Context<'_>) -> bool {
        if self.done.is_some() {
            return false;
        }
        match self.io.as_mut() {
            None => {
                self.done = Some(None);
                true
            }
            Some(io) => match io.as_mut().poll(cx) {
                Poll::Ready(d) => {
                    self.done = Some(Some(d));
                    self.io = None;
                    true
                }
                Poll::Pending => false,
            },
        }
    }

    /// The first poll hands the write to the kernel.
    async fn poll_once(&mut self) {
        std::future::poll_fn(|cx| {
            self.poll(cx);
            Poll::Ready(())
        })
        .await
    }
}

/// Whether an append's outcome means durable: Ok. A full disk (ENOSPC, nothing of the
/// batch counts: the caller rejects its writes with THROTTLEDOP, reads go on, nothing
/// acknowledged is touched, and later batches are tried as they come, so writes resume
/// by themselves once space returns): false. Any other error leaves durability unknown
/// and stops the server: an fsync is never retried. `disk_full` remembers the state, so
/// each change is logged once.
fn durable(
    outcome: Result<(), StorageError>,
    log: &TxnLog<GlommioBackend>,
    disk_full: &mut bool,
) -> bool {
    match outcome {
        Ok(()) => {
            // A batch that fit in the current segment says nothing about the disk;
            // resumed means a new segment could be made again.
            if *disk_full && !log.out_of_space() {
                *disk_full = false;
                tracing::warn!("disk space is back: writes resume");
            }
            true
        }
        Err(StorageError::NoSpace(m)) => {
            if !*disk_full {
                *disk_full = true;
                tracing::error!(
                    "txn log: {m}; the disk is full: writes fail with THROTTLEDOP until space returns"
                );
            }
            false
        }
        Err(e) => {
            tracing::error!("txn log failed, stopping so no write is acknowledged unlogged: {e}");
            eprintln!("corral: txn log failed: {e}");
            std::process::exit(70);
        }
    }
}

/// The commit task's state besides the log and the batches in flight.
struct Pipeline {
    rt: Rc<Runtime>,
    inbox: Rc<RefCell<Vec<ToCommit>>>,
    senders: Vec<ConnectedSender<Wake>>,
    core: CommitCore,
    snapshotter: Option<durability::Snapshotter>,
    stats: LogStats,
    last_reap: i64,
    reap_every: i64,
}

impl Pipeline {
    /// A batch of everything waiting (and the containers and TTL nodes due for
    /// reaping), its txns also encoded into `frame`; `behind`: built while the batch
    /// before it is still being logged.
    fn build(&mut self, behind: bool, frame: &mut FrameBuilder) -> Vec<Committed> {
        let now_mono = self.rt.now_mono_ms();
        let now_wall = now_wall_ms();
        let own = self.rt.shard.borrow_mut().take_outbox();
        if let Some(msg) = own {
            self.core.on_input(msg, now_mono);
        }
        for msg in self.inbox.borrow_mut().drain(..) {
            self.core.on_input(msg, now_mono);
        }
        let shard = self.rt.shard.borrow();
        let tree = shard.tree.get();
        let mut batch = if behind {
            self.core.build_batch_behind(tree, now_wall, now_mono)
        } else {
            self.core.build_batch(tree, now_wall, now_mono)
        };
        if now_mono - self.last_reap >= self.reap_every {
            self.last_reap = now_mono;
            // Reaping runs against the tree before the batches being built and
            // logged; entries they already change are re-checked by prep_reap via
            // the outstanding changes.
            batch.extend(self.core.reap(tree, now_wall));
        }
        for c in &batch {
            if let Committed::Txn { hdr, txn, .. } = c {
                frame.push(hdr, txn);
            }
        }
        batch
    }

    /// Applies a logged batch (or rejections) here and hands it to the other shards;
    /// `txns` of it were logged.
    fn finish(&mut self, batch: Vec<Committed>, txns: usize) {
        if batch.is_empty() {
            return;
        }
        let last = commit::batch_last_zxid(&batch);
        let batch: Batch = Arc::new(batch);
        if let Some(z) = last {
            self.rt
                .published
                .store(z, std::sync::atomic::Ordering::Release);
        }
        self.rt.apply(batch, &self.senders);
        if let Some(z) = last {
            self.core.applied(z);
        }
        if let Some(s) = self.snapshotter.as_mut() {
            s.after_batch(&self.rt, txns as u64);
        }
        self.rt.flush_dirty();
    }
}

/// The log's figures for `mntr` and `/metrics`: fsync latencies and txns per fsync,
/// published at most every 200 ms (and on the next wake-up after that, so an idle
/// server's numbers are not left stale).
struct LogStats {
    last_publish: i64,
    pending: bool,
    /// Txns per fsync, for `/metrics` only.
    batch_txns: Option<hdrhistogram::Histogram<u64>>,
}

impl LogStats {
    fn new(rt: &Runtime) -> LogStats {
        LogStats {
            last_publish: rt.now_mono_ms(),
            pending: false,
            batch_txns: rt.config.metrics_provider.is_some().then(|| {
                hdrhistogram::Histogram::<u64>::new_with_bounds(1, 1 << 24, 2)
                    .expect("valid histogram bounds")
            }),
        }
    }

    fn logged(&mut self, rt: &Runtime, log: &TxnLog<GlommioBackend>, txns: usize) {
        if let (Some(h), true) = (self.batch_txns.as_mut(), txns > 0) {
            h.saturating_record(txns as u64);
        }
        self.pending = true;
        self.publish_if_due(rt, log);
    }

    fn publish_if_due(&mut self, rt: &Runtime, log: &TxnLog<GlommioBackend>) {
        if self.pending && rt.now_mono_ms() - self.last_publish >= 200 {
            self.last_publish = rt.now_mono_ms();
            self.pending = false;
            admin_view::publish_log_stats(
                &rt.board,
                log.fsync_histogram(),
                self.batch_txns.as_ref(),
            );
        }
    }
}

/// The AdminServer's `restore` (standalone), run by `commit_task` between two batches.
/// Returns the commit core of the restored state, or `None` when nothing changed (the
/// requester is told why).
///
/// The restored state gets zxid `max(snapshot's zxid, last logged zxid + 1)`: above
/// every zxid the old state had, so a zxid never goes backwards (for clients, or in the
/// log), and the old log's txns, which follow the snapshot's own zxid when it is older,
/// are never replayed on top of it.
///
/// Durability: the tree is made durable before any shard sees it, by
/// `storage::install_snapshot`, the way an ensemble member installs its leader's SNAP:
/// written as `snapshot.<zxid>.tmp` and synced; renamed `.install` (the commit point);
/// every log segment and every snapshot newer than `zxid` removed; renamed
/// `snapshot.<zxid>`. A crash before the commit point recovers the old state (the
/// `.tmp` is deleted, the log and old snapshots are untouched); a crash after it
/// recovers the restored state (recovery finishes the install, and no log is left to
/// replay on it); never a mix. A fuzzy snapshot of the old tree that a shard finishes
/// meanwhile is named by an older zxid, so recovery still loads the restored one.
/// A failure before the commit point leaves the old state serving; after it, the log
/// is unusable and the server stops (exit 70): recovery settles it.
///
/// Then one batch hands the new tree to every shard: `CloseAll` (every client
/// connection is closed: their watches and pending requests belong to the old tree;
/// clients reconnect and a session the snapshot holds is revalidated, any other is
/// expired, as ZooKeeper's session tracker rebuilt from the restored database
/// decides) and `Install`. Requests queued in the commit core and not yet built into
/// a batch are dropped with their connections; those arriving later are prepped
/// against the restored tree (ZooKeeper holds submissions during the restore, then
/// runs them on the new database).
pub(super) async fn restore_between_batches(
    rt: &Rc<Runtime>,
    log: &mut TxnLog<GlommioBackend>,
    senders: &[ConnectedSender<Wake>],
    req: RestoreRequest,
) -> Option<CommitCore> {
    let RestoreRequest { mut tree, reply } = req;
    let started = Instant::now();
    let before = log
        .last_zxid()
        .max(rt.shard.borrow().tree.get().last_processed_zxid());
    let snapshot_zxid = tree.last_processed_zxid();
    let zxid = snapshot_zxid.max(before.saturating_add(1));
    tree.set_last_processed_zxid(zxid);
    if let Err(e) =
        crate::storage::install_snapshot(&GlommioBackend, &rt.config.data_dir, &tree, zxid, log)
            .await
    {
        if log.check_usable().is_err() {
            tracing::error!(
                "restore: {e}; stopping so that recovery settles the interrupted install"
            );
            eprintln!("corral: restore failed after its commit point: {e}");
            std::process::exit(70);
        }
        tracing::warn!("restore: the snapshot could not be written, nothing changed: {e}");
        let _ = reply.send(Err(format!("the restored snapshot cannot be written: {e}")));
        return None;
    }
    let tree: Arc<DataTree> = Arc::from(tree);
    let batch: Batch = Arc::new(vec![
        Committed::CloseAll,
        Committed::Install(InstalledTree(tree.clone())),
    ]);
    rt.published
        .store(zxid, std::sync::atomic::Ordering::Release);
    rt.apply(batch, senders);
    let now_mono = rt.now_mono_ms();
    let mut core = CommitCore::new(
        rt.config.prep_config(),
        rt.config.tick_time as i64,
        &tree,
        now_wall_ms(),
        0,
    );
    // Every session of the snapshot gets its full timeout from now.
    for (id, _) in tree.sessions() {
        core.touch(id, now_mono);
    }
    rt.flush_dirty();
    tracing::info!(
        snapshot_zxid = format!("{snapshot_zxid:#x}"),
        zxid = format!("{zxid:#x}"),
        znodes = tree.znode_count(),
        sessions = tree.sessions().len(),
        ms = started.elapsed().as_millis() as u64,
        "restored from a snapshot posted to the AdminServer"
    );
    let _ = reply.send(Ok(zxid));
    Some(core)
}

/// The next log segment, made by its own task beside the appends and handed to the log
/// before an append: a roll-over then renames a ready file instead of zero-filling
/// 64 MiB (and syncing it) while writes wait. Used by the standalone pipeline and by
/// an ensemble member's storage task.
pub(super) struct Spares {
    slot: SpareSlot,
    wanted: Rc<Notify>,
}

impl Spares {
    /// Starts the task that makes them, and asks it for the first.
    pub(super) fn start(config: &Config, log: &TxnLog<GlommioBackend>) -> Spares {
        let spares = Spares {
            slot: Rc::default(),
            wanted: Rc::new(Notify::default()),
        };
        glommio::spawn_local(make_spares(
            config.data_log_dir.clone(),
            log.spare_size(),
            spares.slot.clone(),
            spares.wanted.clone(),
        ))
        .detach();
        spares.wanted.notify();
        spares
    }

    /// Before an append: hands a ready spare to a log that has none.
    pub(super) fn offer(&self, log: &mut TxnLog<GlommioBackend>) {
        if log.wants_spare() {
            if let Some(spare) = self.slot.borrow_mut().take() {
                log.offer_spare(spare);
            }
        }
    }

    /// After an append: asks for the next one if the log used its spare.
    pub(super) fn ask(&self, log: &TxnLog<GlommioBackend>) {
        if log.wants_spare() {
            self.wanted.notify();
        }
    }
}

/// Where `make_spares` leaves a ready spare for the log's owner to take.
type SpareSlot =
    Rc<RefCell<Option<crate::storage::log::Spare<crate::storage::backend::GlommioFile>>>>;

/// Makes one spare log segment each time its owner asks for one ([`Spares::ask`]),
/// waiting `NO_SPACE_RETRY` after a failure (a full disk) before it tries again.
async fn make_spares(dir: std::path::PathBuf, size: u64, slot: SpareSlot, wanted: Rc<Notify>) {
    if let Err(e) = crate::storage::log::remove_stale_spares(&GlommioBackend, &dir).await {
        tracing::warn!("removing spare log segments of an earlier run: {e}");
    }
    let mut n: u64 = 0;
    let mut failing = false;
    loop {
        wanted.wait().await;
        if slot.borrow().is_some() {
            continue;
        }
        n += 1;
        match crate::storage::log::prepare_spare(&GlommioBackend, &dir, n, size).await {
            Ok(spare) => {
                *slot.borrow_mut() = Some(spare);
                failing = false;
            }
            // No spare: the roll-over makes the segment itself, as without one. Back
            // off before the next try: every batch asks for one, and a full disk must
            // not get a 64 MiB zero-fill per batch. Warn once per spell of failures.
            Err(e) => {
                if !failing {
                    tracing::warn!("preparing the next log segment: {e}");
                    failing = true;
                }
                glommio::timer::sleep(crate::storage::log::NO_SPACE_RETRY).await;
            }
        }
    }
}

/// `autopurge.purgeInterval`: keeps the newest `autopurge.snapRetainCount` snapshots
/// and the logs they need, as ZooKeeper's DatadirCleanupManager.
pub(super) async fn autopurge(config: Arc<Config>) {
    let every = Duration::from_millis(config.autopurge_purge_interval_ms);
    let keep = config.autopurge_snap_retain_count.max(3) as usize;
    loop {
        glommio::timer::sleep(every).await;
        match crate::storage::tools::purge(
            &GlommioBackend,
            &config.data_log_dir,
            &config.data_dir,
            keep,
        )
        .await
        {
            Ok(removed) => tracing::info!(removed = removed.len(), "autopurge"),
            Err(e) => tracing::warn!("autopurge failed: {e}"),
        }
    }
}

/// Shards other than 0: carries the outbox to shard 0, at once when writes are waiting,
/// and every few milliseconds for session touches.
pub(super) async fn forward_outbox(rt: Rc<Runtime>, tx: ConnectedSender<ToCommit>) {
    let touch_every = Duration::from_millis((rt.config.tick_time as u64 / 4).clamp(5, 500));
    loop {
        futures_lite::future::or(rt.outbox_ready.wait(), glommio::timer::sleep(touch_every)).await;
        let msg = rt.shard.borrow_mut().take_outbox();
        if let Some(msg) = msg {
            if tx.send(msg).await.is_err() {
                tracing::error!("commit shard stopped receiving");
                return;
            }
        }
    }
}

/// Shards other than 0: delivers the outcomes shard 0 queued each time it says so
/// (and on the last shard, takes the snapshots). A read that comes first delivers
/// them itself (`Shard::sync`).
pub(super) async fn apply_batches(
    rt: Rc<Runtime>,
    rx: shared_channel::ConnectedReceiver<Wake>,
    snapshots: bool,
) {
    let mut snapshotter =
        snapshots.then(|| durability::Snapshotter::new(&rt.config, rand::random()));
    // Txns delivered here so far, whether by this task or by a read.
    let mut counted = 0u64;
    while rx.recv().await.is_some() {
        let delivered = {
            let mut shard = rt.shard.borrow_mut();
            shard.now_ms = rt.now_mono_ms();
            shard.deliver_queued();
            shard.txns_delivered
        };
        rt.flush_dirty();
        if let Some(s) = snapshotter.as_mut() {
            s.after_batch(&rt, delivered - counted);
        }
        counted = delivered;
    }
}
