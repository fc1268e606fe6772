//! Installing a snapshot received from a leader (ZAB's SNAP): the leader's tree at a
//! zxid becomes this server's durable state and the log restarts after it. This module
//! owns the order of that replacement and what recovery does with each crash state
//! (row 13 of the table in `recovery`).
//!
//! # Order
//!
//! 1. The tree is written as `snapshot.<zxid>.tmp`, sealed and fdatasync'd, like any
//!    snapshot. A crash here leaves a `.tmp` that recovery deletes (row 2): the old state.
//! 2. It is renamed to `snapshot.<zxid>.install` and the snapshot dir synced. This is the
//!    commit point: from here recovery finishes the install.
//! 3. Every log segment is removed (and any cut copy or marker of `truncate`), the log
//!    dir synced; then every snapshot newer than `zxid` is removed, the snapshot dir
//!    synced.
//! 4. The file is renamed to `snapshot.<zxid>` (replacing one of that name) and the
//!    snapshot dir synced.
//!
//! # Why not publish the snapshot first and then remove the log
//!
//! Between the two, recovery would load the new snapshot and replay the old log after
//! it. The old log may hold txns after `zxid` that follow it by number (`zxid + 1`, ...,
//! or a later epoch) yet are not the leader's: a follower's proposals from an epoch whose
//! leader lost. Recovery cannot tell those from txns logged after the snapshot (rows 11
//! and 12 accept both), so the snapshot gets its loadable name only once the old log is
//! gone, and until then the `.install` name tells recovery that the old log is void.
//! Newer snapshots go for the same reason: recovery loads the newest one.
//!
//! Older snapshots stay (purge removes them in time): they describe committed states
//! older than `zxid`, a fall-back if the new snapshot were ever damaged on disk (row 3).

use std::path::{Path, PathBuf};

use super::backend::Backend;
use super::recovery::list_numbered;
use super::snapshot::{load_snapshot, snapshot_name, SnapshotWriter, SNAP_PREFIX};
use super::truncate::{self, remove_file};
use super::{io_err, parse_zxid_name, Result, StorageError, TxnLog};
use crate::tree::DataTree;

/// What the sealed snapshot is renamed to at the commit point (step 2).
pub const INSTALL_SUFFIX: &str = ".install";

/// Nodes written between flushes of the snapshot writer.
const STEP: usize = 1024;

fn install_name(zxid: i64) -> String {
    format!("{}{INSTALL_SUFFIX}", snapshot_name(zxid))
}

/// The zxid of a pending install's file name (`snapshot.<hex>.install`).
fn parse_install_name(name: &str) -> Option<i64> {
    parse_zxid_name(name.strip_suffix(INSTALL_SUFFIX)?, SNAP_PREFIX)
}

/// Writes `tree` as a snapshot exact at `zxid`, sealed and synced, under its `.tmp`
/// name (not loadable yet). The tree cannot change meanwhile (it is borrowed), so the
/// snapshot is a plain walk, parents first, with no changes section.
async fn write_tree<B: Backend>(
    backend: &B,
    snap_dir: &Path,
    tree: &DataTree,
    zxid: i64,
) -> Result<PathBuf> {
    let mut w = SnapshotWriter::create(backend.clone(), snap_dir, zxid).await?;
    // The paths first (for_each_node takes a closure that cannot wait for the disk),
    // then the nodes a step at a time, flushing between steps.
    let mut paths: Vec<Box<str>> = Vec::with_capacity(tree.node_count());
    tree.for_each_node(|p, _, _| paths.push(p.into()));
    for step in paths.chunks(STEP) {
        for p in step {
            if let Some(node) = tree.get(p) {
                w.add_node(p, node.data(), tree.acl(node), node.persisted());
            }
        }
        w.flush().await?;
    }
    for (id, timeout) in tree.sessions() {
        w.add_session(id, timeout);
    }
    w.seal_at(zxid).await
}

async fn sync_dir<B: Backend>(backend: &B, dir: &Path) -> Result<()> {
    backend
        .sync_dir(dir)
        .await
        .map_err(io_err(format!("syncing {}", dir.display())))
}

/// Steps 3 and 4: from a durable `snapshot.<zxid>.install` to `snapshot.<zxid>` with no
/// log. Idempotent (recovery repeats it after a crash). Returns the snapshot's path.
async fn complete<B: Backend>(
    backend: &B,
    snap_dir: &Path,
    log_dir: &Path,
    zxid: i64,
) -> Result<PathBuf> {
    let names = backend
        .list_dir(log_dir)
        .await
        .map_err(io_err(format!("listing {}", log_dir.display())))?;
    // Newest first, as a cut removes them.
    let mut old: Vec<(i64, &String)> = names
        .iter()
        .filter_map(|n| parse_zxid_name(n, super::log::SEG_PREFIX).map(|z| (z, n)))
        .collect();
    old.sort();
    let mut gone = false;
    for (_, n) in old.iter().rev() {
        remove_file(backend, &log_dir.join(n)).await?;
        gone = true;
    }
    for n in &names {
        if truncate::is_copy_name(n) || parse_zxid_name(n, truncate::MARKER_PREFIX).is_some() {
            remove_file(backend, &log_dir.join(n)).await?;
            gone = true;
        }
    }
    if gone {
        sync_dir(backend, log_dir).await?;
    }
    let mut newer = false;
    for (z, p) in list_numbered(backend, snap_dir, SNAP_PREFIX).await? {
        if z > zxid {
            remove_file(backend, &p).await?;
            newer = true;
        }
    }
    if newer {
        sync_dir(backend, snap_dir).await?;
    }
    let pending = snap_dir.join(install_name(zxid));
    let dst = snap_dir.join(snapshot_name(zxid));
    backend
        .rename(&pending, &dst)
        .await
        .map_err(io_err(format!(
            "renaming {} to {}",
            pending.display(),
            dst.display()
        )))?;
    sync_dir(backend, snap_dir).await?;
    Ok(dst)
}

/// ZAB's SNAP: makes `tree`, the leader's state at `zxid`, this server's durable state.
/// Writes it as a snapshot in `snap_dir` (dataDir), removes every segment of `log` (and
/// snapshots newer than `zxid`), and restarts `log` after `zxid`: the next append must
/// follow `zxid` (`zxid + 1`, or any zxid of a later epoch). The snapshot is
/// `snap_dir/snapshot.<zxid>`.
///
/// When it returns Ok the install is durable. A power cut at any point leaves either the
/// old state (old snapshots and log) or the new one (this snapshot, no log), never a mix:
/// see the module doc. A failure while the snapshot is being written leaves the old
/// state and the log usable; a failure after that returns [`StorageError::Fatal`] and
/// the log refuses all further work (the server must stop; recovery settles it).
///
/// The caller must not be writing another snapshot meanwhile: one of the old state
/// published after this install would be newer than it and win at recovery.
pub async fn install_snapshot<B: Backend>(
    backend: &B,
    snap_dir: &Path,
    tree: &DataTree,
    zxid: i64,
    log: &mut TxnLog<B>,
) -> Result<()> {
    log.check_usable()?;
    backend
        .create_dir_all(snap_dir)
        .await
        .map_err(io_err(format!("creating {}", snap_dir.display())))?;
    let tmp = match write_tree(backend, snap_dir, tree, zxid).await {
        Ok(p) => p,
        Err(e) => {
            // Nothing is decided: leave no partial file holding space.
            let tmp = snap_dir.join(format!("{}.tmp", snapshot_name(zxid)));
            let _ = backend.remove(&tmp).await;
            return Err(e);
        }
    };
    let log_dir = log.config().dir.clone();
    log.close_segment().await;
    let pending = snap_dir.join(install_name(zxid));
    let committed = async {
        backend
            .rename(&tmp, &pending)
            .await
            .map_err(io_err(format!("renaming {}", tmp.display())))?;
        sync_dir(backend, snap_dir).await?;
        complete(backend, snap_dir, &log_dir, zxid).await
    }
    .await;
    match committed {
        Ok(dst) => {
            log.restart_after(zxid);
            if let Err(e) = backend.prefetch(&dst).await {
                tracing::debug!("prefetching {}: {e}", dst.display());
            }
            Ok(())
        }
        Err(e) => Err(log.poison(format!("installing the snapshot at zxid {zxid:#x}: {e}"))),
    }
}

/// Row 13 of recovery's table: finishes an install a crash interrupted after its commit
/// point. Returns the zxid of the snapshot installed.
pub(crate) async fn finish_interrupted<B: Backend>(
    backend: &B,
    snap_dir: &Path,
    log_dir: &Path,
) -> Result<Option<i64>> {
    let names = backend
        .list_dir(snap_dir)
        .await
        .map_err(io_err(format!("listing {}", snap_dir.display())))?;
    let mut pending: Vec<(i64, PathBuf)> = names
        .iter()
        .filter_map(|n| parse_install_name(n).map(|z| (z, snap_dir.join(n))))
        .collect();
    pending.sort();
    let Some((zxid, path)) = pending.pop() else {
        return Ok(None);
    };
    if let Some((_, other)) = pending.first() {
        // One install finishes (at recovery at the latest) before another can start.
        return Err(StorageError::Corrupt(format!(
            "refusing to start: two interrupted snapshot installs, {} and {}; remove the \
             one that is not the leader's latest",
            other.display(),
            path.display()
        )));
    }
    match load_snapshot(backend, &path).await {
        Ok(s) if s.last_zxid == zxid => {}
        Ok(s) => {
            return Err(StorageError::Corrupt(format!(
                "refusing to start: {} holds the state at zxid {:#x}, its name says {zxid:#x}",
                path.display(),
                s.last_zxid
            )))
        }
        Err(StorageError::Corrupt(m)) => {
            return Err(StorageError::Corrupt(format!(
                "refusing to start: a snapshot received from the leader was being installed \
                 and is damaged ({m}); the old log may be partly removed already. To start \
                 from the older state, remove {} (the leader will send its state again)",
                path.display()
            )))
        }
        Err(e) => return Err(e),
    }
    complete(backend, snap_dir, log_dir, zxid).await?;
    Ok(Some(zxid))
}
