//! The commit pipeline's tasks: shard 0 gathers the other shards' writes, builds a
//! batch with the commit core (`commit::CommitCore`), makes it durable in the txn log
//! (one fdatasync per batch), applies it and hands it to every other shard; the other
//! shards carry their writes to shard 0 and apply what comes back. Also the log's
//! helpers that run beside it (spare segments, autopurge) and the AdminServer's
//! `restore` between two batches. Standalone only: an ensemble member's pipeline is
//! `ensemble.rs`. The runtime wiring that starts these tasks is `mod.rs`.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use glommio::channels::shared_channel::{self, ConnectedSender};

use super::commit::{self, CommitCore};
use super::messages::*;
use super::notify::Notify;
use super::{admin_view, durability, now_wall_ms, Runtime};
use crate::config::Config;
use crate::request::{Txn, TxnHeader};
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
/// batch from everything waiting, logs it, then sends it to the other shards and
/// applies it here. A batch the log cannot take because the disk is full is not
/// retried: its writes go out as rejections answered THROTTLEDOP (ZooKeeper's "not
/// executed at all, retry with back off"; a new session's connection is closed), the
/// commit core is rolled back to the log's last zxid, its syncs and reattaches go
/// through, and reads go on. The log fails such batches fast while the disk stays
/// full, and the next batch that can be logged resumes writes. Any other log error
/// stops the server (exit 70).
pub(super) async fn commit_task(
    rt: Rc<Runtime>,
    inbox: Rc<RefCell<Vec<ToCommit>>>,
    to_shards: Vec<shared_channel::SharedSender<Wake>>,
    mut log: TxnLog<GlommioBackend>,
) {
    // Snapshots are walked by the last shard, off the commit pipeline's core (every
    // txn in the tree is logged before it is applied); here only when this is the
    // only shard.
    let mut snapshotter = to_shards
        .is_empty()
        .then(|| durability::Snapshotter::new(&rt.config, now_wall_ms() as u64));
    let mut last_fsync_publish = rt.now_mono_ms();
    // Txns per fsync, for `/metrics` only; and whether the board lacks the latest
    // fsync and batch numbers (published on the next wake-up once 200 ms have passed,
    // so an idle server's numbers are not left stale).
    let mut batch_txns = rt.config.metrics_provider.is_some().then(|| {
        hdrhistogram::Histogram::<u64>::new_with_bounds(1, 1 << 24, 2)
            .expect("valid histogram bounds")
    });
    let mut log_stats_pending = false;
    let mut senders: Vec<ConnectedSender<Wake>> = Vec::new();
    for tx in to_shards {
        senders.push(tx.connect().await);
    }
    let tick = Duration::from_millis((rt.config.tick_time as u64 / 2).clamp(10, 1000));
    let reap_every = rt.config.container_check_interval_ms.max(10) as i64;
    let mut core = {
        let shard = rt.shard.borrow();
        CommitCore::new(
            rt.config.prep_config(),
            rt.config.tick_time as i64,
            shard.tree.get(),
            now_wall_ms(),
            0,
        )
    };
    let mut last_reap = rt.now_mono_ms();
    // Whether writes are being refused for lack of disk space (logged once each way).
    let mut disk_full = false;
    // The next log segment is made by its own task, beside the appends, and handed
    // over here: a roll-over then renames a ready file instead of zero-filling 64 MiB
    // while writes wait.
    let spare_slot: Rc<RefCell<Option<crate::storage::log::Spare<_>>>> = Rc::default();
    let spare_wanted = Rc::new(Notify::default());
    glommio::spawn_local(make_spares(
        rt.config.data_log_dir.clone(),
        log.spare_size(),
        spare_slot.clone(),
        spare_wanted.clone(),
    ))
    .detach();
    spare_wanted.notify();
    loop {
        futures_lite::future::or(
            futures_lite::future::or(rt.outbox_ready.wait(), glommio::timer::sleep(tick)),
            rt.restores.wake.notified(),
        )
        .await;
        if let Some(req) = rt.restores.take() {
            // Here, between two batches: every batch before is logged, applied and
            // sent; the next is built against the restored tree.
            if let Some(restored) = restore_between_batches(&rt, &mut log, &senders, req).await {
                core = restored;
            }
        }
        if log_stats_pending && rt.now_mono_ms() - last_fsync_publish >= 200 {
            last_fsync_publish = rt.now_mono_ms();
            log_stats_pending = false;
            admin_view::publish_log_stats(&rt.board, log.fsync_histogram(), batch_txns.as_ref());
        }
        if log.wants_spare() {
            if let Some(spare) = spare_slot.borrow_mut().take() {
                log.offer_spare(spare);
            }
        }
        let now_mono = rt.now_mono_ms();
        let now_wall = now_wall_ms();
        let own = rt.shard.borrow_mut().take_outbox();
        if let Some(msg) = own {
            core.on_input(msg, now_mono);
        }
        for msg in inbox.borrow_mut().drain(..) {
            core.on_input(msg, now_mono);
        }
        let mut batch = {
            let shard = rt.shard.borrow();
            core.build_batch(shard.tree.get(), now_wall, now_mono)
        };
        if now_mono - last_reap >= reap_every {
            last_reap = now_mono;
            let shard = rt.shard.borrow();
            // Reaping runs against the tree after this batch; entries it finds that
            // this batch already changes are re-checked by prep_reap via the
            // outstanding changes.
            batch.extend(core.reap(shard.tree.get(), now_wall));
        }
        if batch.is_empty() {
            continue;
        }
        // Durable before visible: a batch is applied, broadcast and answered only once
        // the log holds it.
        let records: Vec<(TxnHeader, Txn)> = batch
            .iter()
            .filter_map(|c| match c {
                Committed::Txn { hdr, txn, .. } => Some((*hdr, txn.clone())),
                _ => None,
            })
            .collect();
        let logged = append_durably(&mut log, &records, &mut disk_full).await;
        if log.wants_spare() {
            spare_wanted.notify();
        }
        // A full disk: the batch's writes are answered THROTTLEDOP and the core forgets
        // them (the next batch reuses their zxids); syncs and reattaches go through.
        let (batch, records) = if logged {
            (batch, records)
        } else {
            let batch = core.reject(batch, log.last_zxid(), rt.now_mono_ms());
            (batch, Vec::new())
        };
        if batch.is_empty() {
            continue;
        }
        let last = commit::batch_last_zxid(&batch);
        if let (Some(h), false) = (batch_txns.as_mut(), records.is_empty()) {
            h.saturating_record(records.len() as u64);
        }
        log_stats_pending = true;
        if rt.now_mono_ms() - last_fsync_publish >= 200 {
            last_fsync_publish = rt.now_mono_ms();
            log_stats_pending = false;
            admin_view::publish_log_stats(&rt.board, log.fsync_histogram(), batch_txns.as_ref());
        }
        let batch: Batch = Arc::new(batch);
        if let Some(z) = last {
            rt.published.store(z, std::sync::atomic::Ordering::Release);
        }
        rt.apply(batch, &senders);
        if let Some(z) = last {
            core.applied(z);
        }
        if let Some(s) = snapshotter.as_mut() {
            s.after_batch(&rt, records.len() as u64);
        }
        rt.flush_dirty();
        // More may have arrived while we were sending.
        if core.has_work() || !inbox.borrow().is_empty() || rt.shard.borrow().has_outbox() {
            rt.outbox_ready.notify();
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

/// Makes one spare log segment each time the commit task asks for one, waiting
/// `NO_SPACE_RETRY` after a failure (a full disk) before it tries again.
pub(super) async fn make_spares(
    dir: std::path::PathBuf,
    size: u64,
    slot: Rc<RefCell<Option<crate::storage::log::Spare<crate::storage::backend::GlommioFile>>>>,
    wanted: Rc<Notify>,
) {
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

/// Appends a batch to the log. True when it is durable; false when the disk is full
/// (ENOSPC, nothing of the batch written: the caller rejects its writes with
/// THROTTLEDOP, reads go on, nothing acknowledged is touched, and later batches are
/// tried as they come, so writes resume by themselves once space returns). Any other
/// error leaves durability unknown and stops the server: an fsync is never retried.
/// `disk_full` remembers the state, so each change is logged once.
pub(super) async fn append_durably(
    log: &mut TxnLog<GlommioBackend>,
    records: &[(TxnHeader, Txn)],
    disk_full: &mut bool,
) -> bool {
    if records.is_empty() {
        return true;
    }
    match log.append_batch(records).await {
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
        snapshots.then(|| durability::Snapshotter::new(&rt.config, now_wall_ms() as u64));
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
