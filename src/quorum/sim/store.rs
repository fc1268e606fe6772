//! A simulated server's disk: the real storage engine (`storage::log`, `epoch`,
//! `install`, `recovery`) over its own fault-injecting [`SimBackend`], driven the way
//! `server::ensemble`'s `storage_task` and `server::durability` drive it on a real disk.
//!
//! Every storage future is run to completion with a plain `block_on`: `SimBackend`'s
//! operations never wait for I/O, so each operation finishes in one poll, at one instant
//! of simulated time. A slow disk is modelled by the world delaying the completion
//! event, not the operation.

use std::path::Path;

use crate::quorum::zab::{EpochFile, ZabTxn};
use crate::request::{Txn, TxnHeader};
use crate::storage::restore;
use crate::storage::{
    epoch, install_snapshot, recover, LogConfig, Recovered, SimBackend, StorageError, TxnLog,
};
use crate::tree::DataTree;

/// ZooKeeper's dataDir (snapshots and the epoch files).
pub const SNAP_DIR: &str = "/data/snap";
/// ZooKeeper's dataLogDir.
pub const LOG_DIR: &str = "/data/log";
/// Small segments, so that logs roll over (and a full disk bites) within a run.
pub const PREALLOC: u64 = 16 * 1024;

pub fn snap_dir() -> &'static Path {
    Path::new(SNAP_DIR)
}

pub fn log_config() -> LogConfig {
    LogConfig {
        dir: LOG_DIR.into(),
        prealloc_size: PREALLOC,
        force_sync: true,
    }
}

/// Runs a storage future to completion: over `SimBackend` nothing ever waits.
pub fn run<F: std::future::Future>(f: F) -> F::Output {
    futures_lite::future::block_on(f)
}

/// What a server starts from after a crash: recovery, the epoch files and the tree built
/// from the snapshot and the log (`durability::read_state`, `build_tree`,
/// `ensemble::peer_state`).
pub struct Restored {
    pub rec: Recovered,
    pub log: TxnLog<SimBackend>,
    pub accepted_epoch: i64,
    pub current_epoch: i64,
    pub tree: DataTree,
}

/// Recovery as a restarting server runs it.
pub fn restore(disk: &SimBackend) -> Result<Restored, String> {
    run(async {
        let (rec, log) = recover(disk.clone(), log_config(), snap_dir())
            .await
            .map_err(|e| format!("recovery: {e}"))?;
        let (accepted_epoch, current_epoch) = epoch::load_epochs(disk, snap_dir(), rec.last_zxid)
            .await
            .map_err(|e| format!("loading the epochs: {e}"))?;
        let tree = tree_from(&rec)?;
        Ok(Restored {
            rec,
            log,
            accepted_epoch,
            current_epoch,
            tree,
        })
    })
}

/// The tree a recovery describes: the snapshot, then every txn after it, as
/// `server::durability::tree_from` builds it (through the same
/// [`crate::storage::restore`] steps), with the data copied instead of left in the
/// mapping.
pub fn tree_from(rec: &Recovered) -> Result<DataTree, String> {
    let mut tree = DataTree::new();
    if let Some(s) = &rec.snapshot {
        let mut r = crate::tree::Restorer::new(&mut tree);
        let records = restore::records_parents_first(s);
        restore::restore_records(&mut r, records, &|| false)
            .map_err(|e| format!("snapshot {}: {e}", s.path.display()))?;
        r.finish();
    }
    restore::finish_tree(tree, rec)
}

/// The most txns a DIFF reads from the log on disk (`ensemble::MAX_DIFF_FROM_LOG`).
const MAX_DIFF_FROM_LOG: usize = 100_000;

/// From where the log on disk is complete (`ensemble::log_horizon`); Err: the runtime
/// only logs a warning and tells the peer nothing.
pub fn horizon(disk: &SimBackend) -> Result<Option<i64>, StorageError> {
    run(crate::storage::log_reader::oldest_complete_from(
        disk,
        Path::new(LOG_DIR),
    ))
}

/// A leader's DIFF read from the log on disk (`ensemble::Pipeline::read_log`): the
/// logged txns with `from <= zxid < before`, as PROPOSAL data, or None (the learner
/// gets a SNAP) when the log does not hold them whole or they would outweigh a third of
/// a snapshot of `tree`.
pub fn read_log(disk: &SimBackend, tree: &DataTree, from: i64, before: i64) -> Option<Vec<ZabTxn>> {
    let snapshot_bytes = tree.approximate_data_size() + tree.node_count() as u64 * 68;
    // From the learner's own last txn on, or after it when that is an epoch's zero.
    let after = if crate::quorum::zxid::counter_of(from) == 0 {
        from
    } else {
        from - 1
    };
    let records = run(crate::storage::log_reader::read_txns_after(
        disk,
        Path::new(LOG_DIR),
        after,
        before - 1,
        MAX_DIFF_FROM_LOG,
    ))
    .ok()?;
    let empty = DataTree::new();
    let txns: Vec<ZabTxn> = records
        .iter()
        .map(|(h, t)| super::workload::encode(h, t, &empty))
        .collect();
    let bytes: u64 = txns.iter().map(|t| t.data.len() as u64).sum();
    (bytes.saturating_mul(3) <= snapshot_bytes).then_some(txns)
}

/// A storage operation, in the order the peer asked for it (as `ensemble::StorageOp`).
pub enum StorageOp {
    Append(Vec<(TxnHeader, Txn)>),
    Epoch(EpochFile, i64),
    Truncate(i64),
    /// The leader's tree at the zxid, received in a SNAP.
    Install(Box<DataTree>, i64),
}

/// What an operation that completed reports, and a tree reloaded from the disk after a
/// truncation below the applied state.
pub struct Completed {
    pub op: Done,
    pub reloaded: Option<DataTree>,
}

#[derive(Debug, Clone, Copy)]
pub enum Done {
    Logged(i64),
    Epoch(EpochFile, i64),
    Truncated(i64),
    Installed(i64),
}

/// Why an operation failed: the engine refused (the runtime stops the server, exit 70)
/// or the state after it makes no sense (a bug the simulator reports).
pub enum Failed {
    Storage(String, StorageError),
    Broken(String),
}

/// Carries out one operation as `ensemble::storage_task` does, durably when it returns
/// Ok. `applied` is the zxid of the server's applied state (a truncation below it
/// reloads the state from the disk, replacing `log`).
pub fn execute(
    disk: &SimBackend,
    log: &mut TxnLog<SimBackend>,
    op: StorageOp,
    applied: i64,
) -> Result<Completed, Failed> {
    run(async {
        match op {
            StorageOp::Append(records) => {
                let last = records
                    .last()
                    .map(|(h, _)| h.zxid)
                    .ok_or_else(|| Failed::Broken("an empty append".into()))?;
                log.append_batch(&records)
                    .await
                    .map_err(|e| Failed::Storage("txn log append".into(), e))?;
                Ok(Completed {
                    op: Done::Logged(last),
                    reloaded: None,
                })
            }
            StorageOp::Epoch(file, e) => {
                let name = match file {
                    EpochFile::Accepted => epoch::ACCEPTED_EPOCH,
                    EpochFile::Current => epoch::CURRENT_EPOCH,
                };
                epoch::write_epoch(disk, snap_dir(), name, e)
                    .await
                    .map_err(|err| Failed::Storage(format!("writing {name}"), err))?;
                Ok(Completed {
                    op: Done::Epoch(file, e),
                    reloaded: None,
                })
            }
            StorageOp::Truncate(z) => {
                log.truncate_after(z)
                    .await
                    .map_err(|e| Failed::Storage(format!("truncating the log after {z:#x}"), e))?;
                let mut reloaded = None;
                if applied > z {
                    // The state applied what is gone: reload it from the disk (and the
                    // log with it), as the runtime does through `read_state`.
                    let (rec, new_log) = recover(disk.clone(), log_config(), snap_dir())
                        .await
                        .map_err(|e| Failed::Storage("reloading the state".into(), e))?;
                    *log = new_log;
                    if rec.last_zxid != z {
                        return Err(Failed::Broken(format!(
                            "after TRUNC to {z:#x} the disk recovers up to {:#x}",
                            rec.last_zxid
                        )));
                    }
                    reloaded = Some(tree_from(&rec).map_err(Failed::Broken)?);
                }
                Ok(Completed {
                    op: Done::Truncated(z),
                    reloaded,
                })
            }
            StorageOp::Install(tree, z) => {
                install_snapshot(disk, snap_dir(), &tree, z, log)
                    .await
                    .map_err(|e| Failed::Storage("installing the leader's snapshot".into(), e))?;
                Ok(Completed {
                    op: Done::Installed(z),
                    reloaded: None,
                })
            }
        }
    })
}
