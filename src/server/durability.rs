//! The commit shard's use of the storage engine: recovering the tree at start, and
//! taking snapshots every `snapCount` txns. (Logging each batch before it is applied or
//! answered is in `commit_task`.)

use std::cell::Cell;
use std::path::PathBuf;
use std::rc::Rc;

use crate::config::Config;
use crate::request::apply;
use bytes::Bytes;

use crate::proto::Acl;
use crate::storage::{
    recover, GlommioBackend, LogConfig, Recovered, SnapshotWriter, StatFields, TxnLog,
};
use crate::tree::DataTree;
use std::sync::Arc;

/// Where snapshots live (ZooKeeper's dataDir) and where the log lives (dataLogDir).
pub fn dirs(config: &Config) -> (PathBuf, PathBuf) {
    (config.data_dir.clone(), config.data_log_dir.clone())
}

/// Reads the newest state from disk (snapshot and the logs after it) and opens the log
/// for appending.
pub async fn read_state(config: &Config) -> Result<(Recovered, TxnLog<GlommioBackend>), String> {
    let (snap_dir, log_dir) = dirs(config);
    let log_cfg = LogConfig {
        dir: log_dir,
        prealloc_size: config.pre_alloc_size.max(4096),
        force_sync: config.force_sync,
    };
    if !config.force_sync {
        tracing::warn!("forceSync=no: acknowledged writes can be lost at a power failure");
    }
    let started = std::time::Instant::now();
    let (recovered, log) = recover(GlommioBackend, log_cfg, &snap_dir)
        .await
        .map_err(|e| e.to_string())?;
    for w in &recovered.warnings {
        tracing::warn!("recovery: {w}");
    }
    tracing::info!(
        ms = started.elapsed().as_millis() as u64,
        snapshot_nodes = recovered.snapshot.as_ref().map_or(0, |s| s.nodes.len()),
        txns = recovered.txns.len(),
        "read snapshot and log"
    );
    Ok((recovered, log))
}

/// Builds one shard's tree from what `read_state` found.
pub fn build_tree(rec: &Recovered) -> Result<DataTree, String> {
    let started = std::time::Instant::now();
    let tree = tree_from(rec)?;
    tracing::info!(
        ms = started.elapsed().as_millis() as u64,
        last_zxid = format!("{:#x}", tree.last_processed_zxid()),
        znodes = tree.znode_count(),
        sessions = tree.sessions().len(),
        "tree built"
    );
    Ok(tree)
}

/// Builds the tree a recovery describes: the snapshot, then every txn after it.
pub fn tree_from(rec: &Recovered) -> Result<DataTree, String> {
    let mut tree = DataTree::new();
    if let Some(s) = &rec.snapshot {
        tree.reserve(s.nodes.len());
        // Parents before children: a snapshot lists nodes in any order.
        let mut order: Vec<usize> = (0..s.nodes.len()).collect();
        order.sort_by_key(|&i| s.nodes[i].path.bytes().filter(|&b| b == b'/').count());
        let mut prev: Option<(&[crate::proto::Acl], crate::tree::acl_cache::AclId)> = None;
        for n in order.iter().map(|&i| &s.nodes[i]) {
            let stat = n.stat;
            let restored = match prev {
                Some((acl, id)) if acl == &n.acl[..] => {
                    tree.restore_node_same_acl(&n.path, n.data.clone(), id, stat)
                }
                _ => tree.restore_node(&n.path, n.data.clone(), &n.acl, stat),
            };
            let id = restored.map_err(|e| {
                format!(
                    "snapshot {}: node {} cannot be restored ({e:?}): the snapshot is damaged",
                    s.path.display(),
                    n.path
                )
            })?;
            prev = Some((&n.acl[..], id));
        }
        for &(id, timeout) in &s.sessions {
            tree.add_session(id, timeout);
        }
        tree.set_last_processed_zxid(s.last_zxid);
    }
    let mut triggers = Vec::new();
    for (hdr, txn) in &rec.txns {
        triggers.clear();
        apply(&mut tree, hdr, txn, &mut triggers);
    }
    tree.set_last_processed_zxid(rec.last_zxid.max(tree.last_processed_zxid()));
    Ok(tree)
}

/// Decides when to snapshot and runs one snapshot at a time in the background.
pub struct Snapshotter {
    dir: PathBuf,
    /// Txns logged since the last snapshot started.
    since: u64,
    /// This server's threshold: ZooKeeper randomises it in [snapCount/2, snapCount] so
    /// that the servers of an ensemble do not all snapshot at once.
    threshold: u64,
    running: Rc<Cell<bool>>,
}

impl Snapshotter {
    pub fn new(config: &Config, seed: u64) -> Snapshotter {
        let snap_count = config.snap_count.max(2) as u64;
        let half = snap_count / 2;
        let threshold = half + seed % (snap_count - half + 1);
        Snapshotter {
            dir: config.data_dir.clone(),
            since: 0,
            threshold,
            running: Rc::default(),
        }
    }

    /// Called after each logged batch of `txns` txns, with the commit shard's tree
    /// (already holding that batch).
    pub fn after_batch(&mut self, tree: &DataTree, txns: u64) {
        self.since += txns;
        if self.since < self.threshold || self.running.get() {
            return;
        }
        self.since = 0;
        self.running.set(true);
        // The copy is the only part done on the commit path; the encoding and the I/O
        // happen in a task, interleaved with commits.
        let last_zxid = tree.last_processed_zxid();
        let copy_started = std::time::Instant::now();
        // Paths, data (shared bytes) and ACLs (shared lists): nothing deep-copied but
        // the path strings.
        let mut nodes: Vec<(String, Bytes, Arc<[Acl]>, StatFields)> =
            Vec::with_capacity(tree.znode_count());
        tree.for_each_node_unordered(|path, node, acl| {
            nodes.push((
                path.to_string(),
                node.data().clone(),
                acl.clone(),
                *node.persisted(),
            ));
        });
        let sessions = tree.sessions();
        tracing::info!(
            nodes = nodes.len(),
            copy_ms = copy_started.elapsed().as_millis() as u64,
            "snapshot started (the copy is the part that holds up commits)"
        );
        let dir = self.dir.clone();
        let running = self.running.clone();
        glommio::spawn_local(async move {
            let r = write_snapshot(&dir, last_zxid, &nodes, &sessions).await;
            match r {
                Ok(p) => tracing::info!(path = %p.display(), "snapshot taken"),
                // A failed snapshot loses nothing: the log still holds every txn.
                Err(e) => tracing::error!("snapshot at {last_zxid:#x} failed: {e}"),
            }
            running.set(false);
        })
        .detach();
    }
}

async fn write_snapshot(
    dir: &std::path::Path,
    last_zxid: i64,
    nodes: &[(String, Bytes, Arc<[Acl]>, StatFields)],
    sessions: &[(i64, i32)],
) -> crate::storage::Result<PathBuf> {
    let mut w = SnapshotWriter::create(GlommioBackend, dir, last_zxid).await?;
    for (path, data, acl, stat) in nodes {
        w.push_node(path, data, acl, stat).await?;
    }
    for &(id, timeout) in sessions {
        w.push_session(id, timeout).await?;
    }
    w.finish().await
}
