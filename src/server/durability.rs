//! The server's use of the storage engine beyond the log: recovering the state at start
//! (shard 0 reads it and builds the server's one tree), and taking fuzzy snapshots every
//! `snapCount` txns, holding up commits for one step at most (on the last shard, off the
//! commit pipeline's core; see `commit_task`). (Logging each batch before it is applied or
//! answered is in `commit_task`.)

use std::cell::Cell;
use std::path::PathBuf;
use std::rc::Rc;
use std::thread::ScopedJoinHandle;

pub use super::early_build::EarlyBuild;
use super::Runtime;
use crate::config::Config;
pub(super) use crate::storage::restore::finish_tree;
use crate::storage::restore::{self, RestoreStop, SnapChanges};
use crate::storage::snapshot::SnapRecord;
use crate::storage::{recover, GlommioBackend, LogConfig, Recovered, SnapshotWriter, TxnLog};
use crate::tree::{DataTree, Restorer};

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
    let (recovered, mut log) = recover(GlommioBackend, log_cfg, &snap_dir)
        .await
        .map_err(|e| e.to_string())?;
    log.set_fsync_warning_threshold(std::time::Duration::from_millis(
        config.fsync_warning_threshold_ms,
    ));
    for w in &recovered.warnings {
        tracing::warn!("recovery: {w}");
    }
    tracing::info!(
        ms = started.elapsed().as_millis() as u64,
        snapshot_nodes = recovered.snapshot.as_ref().map_or(0, |s| s.node_records),
        txns = recovered.txns.len(),
        "read snapshot and log"
    );
    Ok((recovered, log))
}

/// Builds the tree from what `read_state` found, taking the snapshot's part from
/// `early` when it built from the snapshot recovery settled on. Also says whether znode
/// data was left in the mapped snapshot, for [`rehome_data`].
pub fn build_tree(rec: &Recovered, early: Option<EarlyBuild>) -> Result<(DataTree, bool), String> {
    let started = std::time::Instant::now();
    let (tree, early) = match early.and_then(|e| e.take(rec)) {
        Some(t) => (finish_tree(t, rec)?, true),
        None => (tree_from(rec)?, false),
    };
    let mapped = tree.holds_mapping();
    tracing::info!(
        ms = started.elapsed().as_millis() as u64,
        early,
        last_zxid = format!("{:#x}", tree.last_processed_zxid()),
        znodes = tree.znode_count(),
        sessions = tree.sessions().len(),
        "tree built"
    );
    Ok((tree, mapped))
}

/// After a restore, gives every znode whose data still points into the mapped snapshot
/// its own copy, a step at a time between batches, so that the mapping (and, if purge
/// deletes the file, its disk space) is released once the shard is serving. Restoring
/// from the mapping is what makes a restart fast; keeping it would pin a snapshot
/// that may be long gone.
pub async fn rehome_data(rt: Rc<Runtime>) {
    let started = std::time::Instant::now();
    let mut passes = 0;
    loop {
        passes += 1;
        let removals = rt.shard.borrow().tree.get().removals();
        let (mut at, mut moved) = (0usize, 0usize);
        loop {
            let (next, n) = {
                let mut shard = rt.shard.borrow_mut();
                let _write = shard.tree.write();
                shard.tree.get_mut().rehome_data_step(at, WALK_STEP * 4)
            };
            moved += n;
            let Some(next) = next else {
                break;
            };
            at = next;
            glommio::timer::sleep(STEP_PAUSE).await;
        }
        // Removals move slots, so a pass in steps can miss a node. A pass during which
        // nothing was removed visited every slot: if it found none left, done. Under
        // steady removals, the ninth pass runs in one go (no batch in between, nothing
        // moves), holding every shard's reads for its length.
        if moved == 0 && rt.shard.borrow().tree.get().removals() == removals {
            break;
        }
        if passes >= 8 {
            let mut shard = rt.shard.borrow_mut();
            let _write = shard.tree.write();
            shard.tree.get_mut().rehome_data_step(0, usize::MAX);
            break;
        }
    }
    // The check reads every znode: the owner does it outside the writer flag (it is the
    // only writer), and the file is unmapped outside it too.
    let left = rt.shard.borrow().tree.get().mapped_nodes();
    assert_eq!(left, 0, "znode data still lies in the snapshot mapping");
    let mapping = {
        let mut shard = rt.shard.borrow_mut();
        let _write = shard.tree.write();
        shard.tree.get_mut().take_mapping()
    };
    drop(mapping);
    tracing::info!(
        passes,
        ms = started.elapsed().as_millis() as u64,
        "znode data copied out of the snapshot mapping"
    );
}

/// Builds the tree a recovery describes: the snapshot, then every txn after it.
///
/// Straight from the mapped snapshot, with no intermediate copy of its records: shard 0
/// runs this at start (unless an [`EarlyBuild`] did the snapshot's part), and it is the
/// part of a restart that grows with the tree.
pub fn tree_from(rec: &Recovered) -> Result<DataTree, String> {
    let mut tree = DataTree::new();
    if let Some(s) = &rec.snapshot {
        tree.reserve(s.node_records as usize);
        let records = restore::records_parents_first(s);
        restore_records(&mut tree, &s.path, s.mapping(), records, None, &|| false)?;
    }
    finish_tree(tree, rec)
}

/// A thread collecting a snapshot's changes after its walk (`early_build`).
pub(super) type ChangesCollector<'a, 's> =
    ScopedJoinHandle<'s, Result<SnapChanges<'a>, RestoreStop<'a>>>;

/// Puts a snapshot's node and tombstone records into `tree` (new, or reserved), data
/// left in `mapping` (the mapped file the records borrow from). `stop` is asked every
/// few thousand records: an early build nobody wants any more ends there, with an error.
/// The changes after the walk come from `collector` if given, else from the records.
pub(super) fn restore_records<'a>(
    tree: &mut DataTree,
    path: &std::path::Path,
    mapping: bytes::Bytes,
    records: impl Iterator<Item = SnapRecord<'a>>,
    collector: Option<ChangesCollector<'a, '_>>,
    stop: &dyn Fn() -> bool,
) -> Result<(), String> {
    // Data points into the mapped file: no copy, no fresh memory to fault in (on this
    // VM, zeroing fresh pages was the largest cost of a restore). Once the shard
    // serves, `rehome_data` copies it out so the mapping can go.
    let mut r = Restorer::new(tree);
    r.keep_mapping(mapping);
    let restored = match collector {
        None => restore::restore_records(&mut r, records, stop),
        Some(collector) => restore::restore_records_with(&mut r, records, stop, |_, _| {
            // Nothing in collecting is meant to panic; should it, this build is given
            // up (the caller builds again) rather than the server.
            collector.join().unwrap_or(Err(RestoreStop::Stopped))
        }),
    };
    r.finish();
    restored.map_err(|e| match e {
        RestoreStop::Stopped => e.to_string(),
        _ => format!("snapshot {}: {e}: the snapshot is damaged", path.display()),
    })
}

/// The pause between steps of background work on a shard (snapshot walk, rounds,
/// rehoming): a timer sleep, so batches are applied and the reactor is polled between
/// steps (bare yields could keep glommio from polling it).
const STEP_PAUSE: std::time::Duration = std::time::Duration::from_micros(50);

/// Nodes visited per step of a snapshot walk, between which commits go on (a few
/// hundred microseconds of work).
const WALK_STEP: usize = 1024;

/// Decides when to snapshot and runs one snapshot at a time in the background.
pub struct Snapshotter {
    dir: PathBuf,
    /// Txns logged since the last snapshot started.
    since: u64,
    /// Txns until the next snapshot: drawn in [snapCount/2, snapCount] afresh for each
    /// one, as ZooKeeper's SyncRequestProcessor does, so that the servers of an ensemble
    /// do not snapshot at once. (Drawn once from the start time, three servers started
    /// together snapshotted within a few txns of each other, every time.)
    threshold: u64,
    snap_count: u64,
    rng: rand::rngs::StdRng,
}

/// One snapshot at a time on a shard: the background ones ([`Snapshotter`]) and the
/// AdminServer's `snapshot` ([`take_snapshot_now`]) take turns here (two walks of one
/// tree at once would split its record of changes).
#[derive(Default)]
pub struct SnapshotSlot {
    busy: Cell<bool>,
    freed: super::notify::Broadcast,
}

impl SnapshotSlot {
    fn release(&self) {
        self.busy.set(false);
        self.freed.notify_all();
    }
}

impl Snapshotter {
    /// `seed` draws the thresholds (the server passes a random one).
    pub fn new(config: &Config, seed: u64) -> Snapshotter {
        use rand::SeedableRng;
        let mut s = Snapshotter {
            dir: config.data_dir.clone(),
            since: 0,
            threshold: 0,
            snap_count: config.snap_count.max(2) as u64,
            rng: rand::rngs::StdRng::seed_from_u64(seed),
        };
        s.roll();
        s
    }

    fn roll(&mut self) {
        use rand::Rng;
        let half = self.snap_count / 2;
        self.threshold = self.rng.gen_range(half..=self.snap_count);
    }

    /// Whether `txns` more logged txns make a snapshot due; if so, the count starts
    /// again towards a new threshold.
    fn due(&mut self, txns: u64) -> bool {
        self.since += txns;
        if self.since < self.threshold {
            return false;
        }
        self.since = 0;
        self.roll();
        true
    }

    /// Called after each batch of `txns` logged txns, once this shard's tree holds it.
    pub fn after_batch(&mut self, rt: &Rc<Runtime>, txns: u64) {
        if rt.snapshots.busy.get() {
            // Counted towards the next one.
            self.since += txns;
            return;
        }
        if !self.due(txns) {
            return;
        }
        rt.snapshots.busy.set(true);
        let dir = self.dir.clone();
        let rt = rt.clone();
        glommio::spawn_local(async move {
            let _ = run_snapshot(&rt, &dir).await;
            rt.snapshots.release();
        })
        .detach();
    }
}

/// The AdminServer's `snapshot`: a fresh snapshot of this shard's tree (the shard that
/// takes the snapshots), taken by the same fuzzy walk as the background ones, once any
/// snapshot under way is done. Returns its path and zxid. Runs in a task of its own,
/// so a client that goes away does not leave a walk half done.
pub async fn take_snapshot_now(rt: &Rc<Runtime>) -> Result<(PathBuf, i64), String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let rt = rt.clone();
    glommio::spawn_local(async move {
        rt.snapshots
            .freed
            .wait_until(|| !rt.snapshots.busy.get())
            .await;
        rt.snapshots.busy.set(true);
        let dir = rt.config.data_dir.clone();
        let r = run_snapshot(&rt, &dir).await;
        rt.snapshots.release();
        let _ = tx.send(r);
    })
    .detach();
    rx.await
        .unwrap_or_else(|_| Err("the snapshot task ended".into()))
}

/// Takes one snapshot, logging and recording it; on failure removes its partial file.
async fn run_snapshot(rt: &Rc<Runtime>, dir: &std::path::Path) -> Result<(PathBuf, i64), String> {
    let started = std::time::Instant::now();
    // The zxid `take_snapshot` names its `.tmp` file by (read with no wait in between).
    let start_zxid = rt.shard.borrow().with_tree(|t| t.last_processed_zxid());
    match take_snapshot(rt, dir).await {
        Ok(t) => {
            tracing::info!(
                path = %t.path.display(),
                nodes = t.walked,
                changed_during_walk = t.changed,
                end_ms = t.end_us / 1000,
                longest_step_us = t.longest_step_us,
                longest_step_cpu_us = t.longest_step_cpu_us,
                longest_step_minor_faults = t.longest_step_usage.minor_faults,
                longest_step_major_faults = t.longest_step_usage.major_faults,
                longest_step_switches = t.longest_step_usage.voluntary_switches,
                longest_step_preempted = t.longest_step_usage.involuntary_switches,
                longest_read_wait_us = super::one_tree::take_longest_read_wait_us(),
                longest_commit_wait_us = super::one_tree::take_longest_write_wait_us(),
                total_ms = started.elapsed().as_millis() as u64,
                "snapshot taken (the last round held this shard for end_ms)"
            );
            // `snapshottime` and corral_snapshot_longest_step_seconds.
            rt.board
                .record_snapshot(started.elapsed(), t.longest_step_us);
            Ok((t.path, t.last_zxid))
        }
        // A failed snapshot loses nothing: the log still holds every txn. Its
        // partial file goes at once: on a full disk it holds space the log needs.
        // Only its own: the commit pipeline may be writing a restored snapshot's
        // `.tmp` meanwhile (`restore_between_batches`).
        Err(e) => {
            rt.shard.borrow().with_tree(|t| t.finish_snapshot_walk());
            tracing::error!("snapshot failed: {e}");
            remove_partial_snapshot(dir, start_zxid).await;
            Err(e.to_string())
        }
    }
}

/// Removes the partial file of the snapshot that started at `start_zxid` (recovery
/// deletes any other `.tmp` at the next start).
async fn remove_partial_snapshot(dir: &std::path::Path, start_zxid: i64) {
    use crate::storage::Backend;
    let name = format!(
        "{}.tmp",
        crate::storage::snapshot::snapshot_name(start_zxid)
    );
    match GlommioBackend.remove(&dir.join(&name)).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!("removing {name}: {e}"),
    }
}

struct Taken {
    path: PathBuf,
    last_zxid: i64,
    walked: u64,
    changed: usize,
    /// How long the last round (changes, sessions) held the shard, in us.
    end_us: u64,
    /// The longest walk step inside its read scope, in us: while it runs on a shard
    /// other than the owner, commits wait for it.
    longest_step_us: u64,
    /// The same step's CPU time on this thread: the part of the hold that is ours
    /// (the rest is the thread waiting for a core).
    longest_step_cpu_us: u64,
    /// The same step's page faults and context switches on this thread: CPU spent in
    /// the kernel mapping or zeroing memory, waiting for the disk, blocked, or
    /// preempted (the thread ready, a core busy with another).
    longest_step_usage: ThreadUsage,
}

/// Rounds of changes written between batches before the last one.
const MAX_CHANGE_ROUNDS: usize = 8;
/// A round this small is followed by the last one.
const FEW_CHANGES: usize = 2048;

/// The current state of each path: its node, or a tombstone.
fn write_changes(tree: &DataTree, paths: &[Box<str>], w: &mut SnapshotWriter<GlommioBackend>) {
    for p in paths {
        match tree.get(p) {
            Some(node) => w.add_node(p, node.data(), tree.acl(node), node.persisted()),
            None => w.add_tombstone(p),
        }
    }
}

/// A fuzzy snapshot of this shard's tree, exact at the zxid of its last round (see
/// `storage::snapshot` and `tree::snapshot_walk`). The walk goes a step at a time with
/// a timer sleep between steps, so batches commit meanwhile and the reactor is polled.
async fn take_snapshot(rt: &Rc<Runtime>, dir: &std::path::Path) -> crate::storage::Result<Taken> {
    // An ensemble member may replace its tree (a SNAP from its leader) while the walk
    // sleeps between steps: the walk of the old tree is then abandoned.
    let (generation, start_zxid, mut walk) = {
        let shard = rt.shard.borrow();
        let _read = shard.tree.read();
        let t = shard.tree.get();
        (
            shard.tree.generation(),
            t.last_processed_zxid(),
            t.start_snapshot_walk(),
        )
    };
    let replaced = || on_tree(rt, generation, |_| ());
    let mut w = SnapshotWriter::create(GlommioBackend, dir, start_zxid).await?;
    let mut walked = 0u64;
    let mut longest_step_us = 0u64;
    let mut longest_step_cpu_us = 0u64;
    let mut longest_step_usage = ThreadUsage::default();
    loop {
        replaced()?;
        // Timed inside the read scope: the time it holds commits, not the time it
        // waited for the owner to let it in (`longest_read_wait_us`).
        let (done, held_us, cpu_us, usage) = on_tree(rt, generation, |t| {
            let step = std::time::Instant::now();
            let step_cpu = thread_cpu_us();
            let step_usage = ThreadUsage::now();
            let done = t.snapshot_walk_step(&mut walk, WALK_STEP, |path, node, acl| {
                walked += 1;
                w.add_node(path, node.data(), acl, node.persisted());
            });
            let held_us = step.elapsed().as_micros() as u64;
            let cpu = thread_cpu_us().saturating_sub(step_cpu);
            let usage = if held_us >= longest_step_us {
                ThreadUsage::now().since(&step_usage)
            } else {
                ThreadUsage::default()
            };
            (done, held_us, cpu, usage)
        })?;
        if held_us >= longest_step_us {
            longest_step_us = held_us;
            longest_step_cpu_us = cpu_us;
            longest_step_usage = usage;
        }
        w.flush().await?;
        if done {
            break;
        }
        glommio::timer::sleep(STEP_PAUSE).await;
    }
    // The changes made meanwhile: rounds between batches while many keep coming, then
    // the last round, the only part that holds up commits.
    w.add_changes_marker();
    let mut changed = 0usize;
    for _ in 0..MAX_CHANGE_ROUNDS {
        replaced()?;
        let paths = on_tree(rt, generation, |t| t.take_snapshot_changes())?.into_vec();
        changed += paths.len();
        let few = paths.len() < FEW_CHANGES;
        for chunk in paths.chunks(WALK_STEP) {
            on_tree(rt, generation, |t| write_changes(t, chunk, &mut w))?;
            w.flush().await?;
            glommio::timer::sleep(STEP_PAUSE).await;
        }
        if few {
            break;
        }
    }
    replaced()?;
    let end = std::time::Instant::now();
    let last_zxid = on_tree(rt, generation, |tree| {
        let paths = tree.finish_snapshot_walk();
        changed += paths.len();
        write_changes(tree, &paths, &mut w);
        for (id, timeout) in tree.sessions() {
            w.add_session(id, timeout);
        }
        tree.last_processed_zxid()
    })?;
    let end_us = end.elapsed().as_micros() as u64;
    let path = w.finish_at(last_zxid).await?;
    Ok(Taken {
        path,
        last_zxid,
        walked,
        changed,
        end_us,
        longest_step_us,
        longest_step_cpu_us,
        longest_step_usage,
    })
}

/// Runs `f` on the tree in a read scope of this shard (the owner's commits wait for
/// it, so it is one step); an error if the tree was replaced since the walk started
/// (an ensemble's SNAP from its leader): the walk of the old tree stops instead of
/// going on in the new one.
fn on_tree<R>(
    rt: &Runtime,
    generation: u64,
    f: impl FnOnce(&DataTree) -> R,
) -> crate::storage::Result<R> {
    let shard = rt.shard.borrow();
    // Raised before the flag is taken and lowered after it is dropped (declaration
    // order): no moment holding the flag at normal priority.
    let _raised = (!shard.tree.is_owner())
        .then(super::step_priority::raise)
        .flatten();
    let _read = shard.tree.read();
    if shard.tree.generation() != generation {
        return Err(crate::storage::StorageError::Invalid(
            "the tree was replaced during the snapshot walk; abandoned".into(),
        ));
    }
    Ok(f(shard.tree.get()))
}

/// One thread's page faults and context switches, to tell where a long walk step's
/// time went: voluntary switches are waits, involuntary ones preemptions (the thread
/// ready, its core given to another).
#[derive(Default, Clone, Copy)]
struct ThreadUsage {
    minor_faults: u64,
    major_faults: u64,
    voluntary_switches: u64,
    involuntary_switches: u64,
}

impl ThreadUsage {
    /// This thread's counts so far (`getrusage(RUSAGE_THREAD)`); zeros if unavailable.
    fn now() -> ThreadUsage {
        // SAFETY: an all-zero rusage is a valid value of this plain C struct.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: getrusage writes one rusage, which `ru` is.
        if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) } != 0 {
            return ThreadUsage::default();
        }
        ThreadUsage {
            minor_faults: ru.ru_minflt as u64,
            major_faults: ru.ru_majflt as u64,
            voluntary_switches: ru.ru_nvcsw as u64,
            involuntary_switches: ru.ru_nivcsw as u64,
        }
    }

    fn since(&self, before: &ThreadUsage) -> ThreadUsage {
        ThreadUsage {
            minor_faults: self.minor_faults.saturating_sub(before.minor_faults),
            major_faults: self.major_faults.saturating_sub(before.major_faults),
            voluntary_switches: self
                .voluntary_switches
                .saturating_sub(before.voluntary_switches),
            involuntary_switches: self
                .involuntary_switches
                .saturating_sub(before.involuntary_switches),
        }
    }
}

/// This thread's CPU time in us (`CLOCK_THREAD_CPUTIME_ID`); 0 if unavailable.
fn thread_cpu_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which `ts` is.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
}

#[cfg(test)]
mod tests {
    /// Each snapshot's threshold is drawn afresh in [snapCount/2, snapCount], so
    /// servers whose first draws were close drift apart.
    #[test]
    fn snapshot_thresholds_are_drawn_afresh_for_each_snapshot() {
        let config = crate::config::Config {
            snap_count: 1000,
            ..Default::default()
        };
        let mut points = Vec::new();
        for seed in [1u64, 2] {
            let mut s = super::Snapshotter::new(&config, seed);
            let mut at = Vec::new();
            for z in 1..=20_000u64 {
                if s.due(1) {
                    at.push(z);
                }
            }
            let gaps: Vec<u64> = at.windows(2).map(|w| w[1] - w[0]).collect();
            assert!(gaps.iter().all(|g| (500..=1000).contains(g)), "{gaps:?}");
            assert!(
                gaps.windows(2).any(|w| w[0] != w[1]),
                "drawn once: {gaps:?}"
            );
            points.push(at);
        }
        assert_ne!(points[0], points[1]);
    }

    use crate::proto::{Acl, Id};
    use crate::storage::{load_snapshot, Backend, SimBackend, SnapshotWriter, StatFields};

    #[test]
    fn a_fuzzy_snapshot_builds_the_tree_its_last_words_describe() {
        let acl = |id: &str| {
            vec![Acl {
                perms: 31,
                id: Id {
                    scheme: "world".into(),
                    id: id.into(),
                },
            }]
        };
        let st = |z: i64| StatFields {
            czxid: z,
            mzxid: z,
            pzxid: z,
            ..Default::default()
        };
        let rec = futures_lite::future::block_on(async {
            let b = SimBackend::new(7);
            let dir = std::path::Path::new("/snap");
            b.create_dir_all(dir).await.unwrap();
            let mut w = SnapshotWriter::create(b.clone(), dir, 5).await.unwrap();
            w.add_node("/", b"", &acl("anyone"), &st(0));
            w.add_node("/a", b"old", &acl("anyone"), &st(1));
            w.add_node("/a/b", b"x", &acl("anyone"), &st(2));
            w.add_node("/a/c", b"y", &acl("other"), &st(3));
            w.add_changes_marker();
            // Changes arrive in any order; the last word on each path wins.
            w.add_node("/n/m", b"deep", &acl("anyone"), &st(9));
            w.add_tombstone("/a/b");
            w.add_node("/a", b"new", &acl("other"), &st(8));
            w.add_node("/n", b"", &acl("anyone"), &st(7));
            w.add_tombstone("/a/c");
            w.add_node("/a/c", b"again", &acl("anyone"), &st(10));
            w.add_session(0x77, 4000);
            let p = w.finish_at(10).await.unwrap();
            let snapshot = load_snapshot(&b, &p).await.unwrap();
            crate::storage::Recovered {
                snapshot: Some(snapshot),
                txns: vec![],
                last_zxid: 10,
                warnings: vec![],
            }
        });
        let t = super::tree_from(&rec).unwrap();
        assert!(!t.exists("/a/b"));
        assert_eq!(&t.get("/a").unwrap().data()[..], b"new");
        assert_eq!(&**t.acl_of("/a").unwrap(), &acl("other")[..]);
        assert_eq!(&t.get("/a/c").unwrap().data()[..], b"again");
        assert_eq!(&**t.acl_of("/a/c").unwrap(), &acl("anyone")[..]);
        assert_eq!(&t.get("/n/m").unwrap().data()[..], b"deep");
        assert_eq!(t.children("/a").unwrap(), vec!["c".to_string()]);
        assert_eq!(
            t.children("/").unwrap(),
            vec!["a".to_string(), "n".to_string(), "zookeeper".to_string()]
        );
        assert_eq!(t.sessions(), vec![(0x77, 4000)]);
        assert_eq!(t.last_processed_zxid(), 10);
    }
}

#[cfg(test)]
mod speed {
    /// Times loading a real snapshot: `CORRAL_SNAPSHOT=FILE cargo test --release --lib
    /// load_speed -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn load_speed() {
        let Ok(file) = std::env::var("CORRAL_SNAPSHOT") else {
            return;
        };
        let path = std::path::PathBuf::from(file);
        let bytes = std::fs::read(&path).unwrap();
        let t = std::time::Instant::now();
        let s = crate::storage::snapshot::decode_snapshot(
            crate::storage::backend::Mapped::Owned(bytes),
            &path,
        )
        .unwrap();
        eprintln!("verify: {:?}", t.elapsed());
        let t = std::time::Instant::now();
        let n = s.records().count();
        eprintln!("iterate {n} records: {:?}", t.elapsed());
        let rec = crate::storage::Recovered {
            snapshot: Some(s),
            txns: vec![],
            last_zxid: 0,
            warnings: vec![],
        };
        for _ in 0..2 {
            let t = std::time::Instant::now();
            let tree = super::tree_from(&rec).unwrap();
            eprintln!(
                "tree_from: {:?} ({} znodes)",
                t.elapsed(),
                tree.znode_count()
            );
        }
    }
}
