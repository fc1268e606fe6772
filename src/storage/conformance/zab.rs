//! The storage operations of a ZAB ensemble member, on both backends: the epoch files,
//! cutting the log (TRUNC), installing a leader's snapshot (SNAP), appends that change
//! epoch after them, and recovery of the crash states each leaves; then, on the
//! simulator only, a power cut at every step of each operation (and of the recovery that
//! finishes it), and seeded runs mixing them all.

use std::path::Path;

use bytes::Bytes;

use super::super::backend::{align_up, Backend, SimBackend, StorageFile};
use super::super::epoch::{
    load_epochs, read_epoch, write_epoch, ACCEPTED_EPOCH, CURRENT_EPOCH, TMP_SUFFIX,
};
use super::super::install::install_snapshot;
use super::super::log::{segment_name, TxnLog};
use super::super::recovery::Recovered;
use super::super::snapshot::{snapshot_name, write_snapshot, SnapshotWriter};
use super::super::tools::log_truncate;
use super::super::truncate::{marker_name, COPY_SUFFIX};
use super::super::StorageError;
use super::{batch, node, open, segments, sim_dirs, zxids, Batch, Dirs};
use crate::tree::DataTree;

/// Epoch `e`, counter `c`.
fn zx(e: i64, c: i64) -> i64 {
    (e << 32) | c
}

/// Like [`batch`], with the session id set to `tag`: txns of two histories that share
/// zxids tell apart.
fn tagged(first: i64, n: usize, tag: i64) -> Batch {
    let mut b = batch(first, n);
    for (h, _) in &mut b {
        h.client_id = tag;
    }
    b
}

/// (zxid, tag) of every recovered txn.
fn history(r: &Recovered) -> Vec<(i64, i64)> {
    r.txns.iter().map(|(h, _)| (h.zxid, h.client_id)).collect()
}

fn names_of(v: &[std::path::PathBuf]) -> Vec<String> {
    v.iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

async fn dir_names<B: Backend>(b: &B, dir: &Path) -> Vec<String> {
    let mut v = b.list_dir(dir).await.unwrap();
    v.sort();
    v
}

/// Writes `bytes` as a whole file, exactly (not through `write_epoch`).
async fn put_file<B: Backend>(b: &B, path: &Path, bytes: &[u8]) {
    b.create_dir_all(path.parent().unwrap()).await.unwrap();
    let f = b.create(path).await.unwrap();
    let mut block = bytes.to_vec();
    block.resize(align_up(bytes.len().max(1) as u64) as usize, 0);
    f.write_at(0, &block).await.unwrap();
    f.set_len(bytes.len() as u64).await.unwrap();
    f.fdatasync().await.unwrap();
    f.close().await.unwrap();
    b.sync_dir(path.parent().unwrap()).await.unwrap();
}

async fn raw<B: Backend>(b: &B, path: &Path) -> Vec<u8> {
    b.map(path).await.unwrap().to_vec()
}

/// A tree of a few nodes, `/tag` holding `tag`, and a session.
fn tree_with(tag: i64, zxid: i64, extra: usize) -> DataTree {
    let mut t = DataTree::new();
    let acl = super::acl();
    t.create_node("/tag", Bytes::from(tag.to_string()), &acl, 0, -1, zxid, 7)
        .unwrap();
    t.create_node("/a", Bytes::from_static(b"x"), &acl, 0, -1, zxid, 7)
        .unwrap();
    for i in 0..extra {
        t.create_node(
            &format!("/a/n{i:05}"),
            Bytes::from(vec![i as u8; 40]),
            &acl,
            0,
            -1,
            zxid,
            8,
        )
        .unwrap();
    }
    t.add_session(0x77, 4000);
    t.set_last_processed_zxid(zxid);
    t
}

/// The `/tag` of a recovered snapshot.
fn snap_tag(r: &Recovered) -> Option<i64> {
    let s = r.snapshot.as_ref()?;
    let n = s.nodes().into_iter().find(|n| n.path == "/tag")?;
    std::str::from_utf8(&n.data).ok()?.parse().ok()
}

// ---- epoch files -----------------------------------------------------------------------

async fn epoch_files_round_trip<B: Backend>(b: B, d: Dirs) {
    let dir = &d.snap;
    assert_eq!(read_epoch(&b, dir, CURRENT_EPOCH).await.unwrap(), None);
    write_epoch(&b, dir, CURRENT_EPOCH, 5).await.unwrap();
    assert_eq!(read_epoch(&b, dir, CURRENT_EPOCH).await.unwrap(), Some(5));
    write_epoch(&b, dir, CURRENT_EPOCH, 0x1_0000_0001)
        .await
        .unwrap();
    assert_eq!(
        read_epoch(&b, dir, CURRENT_EPOCH).await.unwrap(),
        Some(0x1_0000_0001)
    );
    // Exactly ZooKeeper's bytes: the digits, no newline, no padding.
    assert_eq!(raw(&b, &dir.join(CURRENT_EPOCH)).await, b"4294967297");
    assert_eq!(dir_names(&b, dir).await, vec![CURRENT_EPOCH.to_string()]);
    // As ZooKeeper would leave them: a newline is tolerated.
    put_file(&b, &dir.join(ACCEPTED_EPOCH), b"12\n").await;
    assert_eq!(read_epoch(&b, dir, ACCEPTED_EPOCH).await.unwrap(), Some(12));
    // A crashed writer's .tmp is not read.
    put_file(
        &b,
        &dir.join(format!("{ACCEPTED_EPOCH}{TMP_SUFFIX}")),
        b"9x",
    )
    .await;
    assert_eq!(read_epoch(&b, dir, ACCEPTED_EPOCH).await.unwrap(), Some(12));
    // Garbage is an error naming the file.
    for bad in [&b"12a"[..], b"", b" 3", b"\0\0\0", b"99999999999999999999"] {
        put_file(&b, &dir.join(ACCEPTED_EPOCH), bad).await;
        let e = read_epoch(&b, dir, ACCEPTED_EPOCH).await.err().unwrap();
        assert!(matches!(e, StorageError::Corrupt(_)), "{e}");
        assert!(e.to_string().contains(ACCEPTED_EPOCH), "{e}");
    }
}

async fn epoch_start_up_rules<B: Backend>(b: B, d: Dirs) {
    let dir = &d.snap;
    // Missing: both created holding the epoch of the last zxid.
    assert_eq!(load_epochs(&b, dir, zx(3, 5)).await.unwrap(), (3, 3));
    assert_eq!(raw(&b, &dir.join(CURRENT_EPOCH)).await, b"3");
    assert_eq!(raw(&b, &dir.join(ACCEPTED_EPOCH)).await, b"3");
    // Present: read back, not rewritten.
    write_epoch(&b, dir, ACCEPTED_EPOCH, 4).await.unwrap();
    assert_eq!(load_epochs(&b, dir, zx(3, 9)).await.unwrap(), (4, 3));
    // Stale .tmp files are removed.
    put_file(&b, &dir.join(format!("{CURRENT_EPOCH}{TMP_SUFFIX}")), b"7").await;
    assert_eq!(load_epochs(&b, dir, zx(3, 9)).await.unwrap(), (4, 3));
    assert_eq!(
        dir_names(&b, dir).await,
        vec![ACCEPTED_EPOCH.to_string(), CURRENT_EPOCH.to_string()]
    );
    // Txns of an accepted epoch whose NEWLEADER this server had not yet acknowledged
    // (a crash between syncing and the ACK): currentEpoch adopts it.
    assert_eq!(load_epochs(&b, dir, zx(4, 1)).await.unwrap(), (4, 4));
    assert_eq!(raw(&b, &dir.join(CURRENT_EPOCH)).await, b"4");
    // Txns of an epoch this server never even accepted: damage.
    let e = load_epochs(&b, dir, zx(5, 1)).await.err().unwrap();
    assert!(e.to_string().contains("is older than the last zxid"), "{e}");
    write_epoch(&b, dir, CURRENT_EPOCH, 3).await.unwrap();
    // acceptedEpoch behind currentEpoch.
    write_epoch(&b, dir, ACCEPTED_EPOCH, 2).await.unwrap();
    let e = load_epochs(&b, dir, zx(3, 1)).await.err().unwrap();
    assert!(
        e.to_string().contains("is less than the current epoch"),
        "{e}"
    );
    // A missing acceptedEpoch is created from the zxid, then checked like any.
    b.remove(&dir.join(ACCEPTED_EPOCH)).await.unwrap();
    write_epoch(&b, dir, CURRENT_EPOCH, 5).await.unwrap();
    let e = load_epochs(&b, dir, zx(3, 1)).await.err().unwrap();
    assert!(e.to_string().contains("is less than"), "{e}");
    assert_eq!(read_epoch(&b, dir, ACCEPTED_EPOCH).await.unwrap(), Some(3));
}

// ---- cutting the log (TRUNC) -------------------------------------------------------------

/// The segments up to the one holding `zxid`.
async fn segments_through<B: Backend>(b: &B, d: &Dirs, zxid: i64) -> Vec<std::path::PathBuf> {
    super::super::recovery::list_numbered(b, &d.log, super::super::log::SEG_PREFIX)
        .await
        .unwrap()
        .into_iter()
        .filter(|(z, _)| *z <= zxid)
        .map(|(_, p)| p)
        .collect()
}

/// Names in the log dir that a cut leaves behind while under way.
fn cut_leftovers(names: &[String]) -> Vec<&String> {
    names
        .iter()
        .filter(|n| n.ends_with(COPY_SUFFIX) || n.starts_with("truncate."))
        .collect()
}

/// Appends batches of 30 until the log spans three segments; returns the last zxid.
async fn three_segments<B: Backend>(b: &B, d: &Dirs, log: &mut TxnLog<B>, tag: i64) -> i64 {
    let mut z = log.last_zxid() + 1;
    while segments(b, d).await.len() < 3 {
        log.append_batch(&tagged(z, 30, tag)).await.unwrap();
        z += 30;
    }
    z - 1
}

async fn truncate_after_mid_batch_and_across_segments<B: Backend>(b: B, d: Dirs) {
    let (_, mut log) = open(&b, &d).await.unwrap();
    let last = three_segments(&b, &d, &mut log, 1).await;
    let kept = segments_through(&b, &d, 45).await;
    assert!(kept.len() < segments(&b, &d).await.len());
    // Inside the second batch.
    log.truncate_after(45).await.unwrap();
    assert_eq!(log.last_zxid(), 45);
    assert_eq!(segments(&b, &d).await, kept);
    // Appends go on in the same segment, here in a new epoch.
    assert_eq!(log.current_segment(), kept.last().map(|p| p.as_path()));
    log.append_batch(&tagged(zx(1, 1), 3, 2)).await.unwrap();
    drop(log);
    let (r, mut log) = open(&b, &d).await.unwrap();
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    let mut want = tagged(1, 45, 1);
    want.extend(tagged(zx(1, 1), 3, 2));
    assert_eq!(r.txns, want);
    assert!(last > 90);
    // A cut at the end of a batch (a frame boundary), then the same epoch goes on.
    log.truncate_after(30).await.unwrap();
    log.append_batch(&tagged(31, 2, 3)).await.unwrap();
    drop(log);
    let (r, _) = open(&b, &d).await.unwrap();
    let mut want = tagged(1, 30, 1);
    want.extend(tagged(31, 2, 3));
    assert_eq!(r.txns, want);
}

async fn truncate_after_refuses_what_it_cannot_do<B: Backend>(b: B, d: Dirs) {
    let (_, mut log) = open(&b, &d).await.unwrap();
    log.append_batch(&tagged(1, 5, 1)).await.unwrap();
    log.append_batch(&tagged(zx(2, 1), 5, 1)).await.unwrap();
    let before = segments(&b, &d).await;
    // Past the end; inside an epoch gap (no such txn: the histories part earlier).
    for z in [zx(2, 6), zx(1, 3)] {
        let e = log.truncate_after(z).await.err().unwrap();
        assert!(matches!(e, StorageError::Invalid(_)), "{e}");
    }
    // The end itself: nothing to do.
    log.truncate_after(zx(2, 5)).await.unwrap();
    assert_eq!(segments(&b, &d).await, before);
    // The log is still usable.
    log.append_batch(&tagged(zx(2, 6), 1, 1)).await.unwrap();
    // The epoch boundary: the last txn of epoch 0.
    log.truncate_after(5).await.unwrap();
    log.append_batch(&tagged(zx(3, 1), 2, 2)).await.unwrap();
    drop(log);
    let (r, _) = open(&b, &d).await.unwrap();
    let mut want = tagged(1, 5, 1);
    want.extend(tagged(zx(3, 1), 2, 2));
    assert_eq!(r.txns, want);
}

async fn truncate_after_to_the_snapshot_empties_the_log<B: Backend>(b: B, d: Dirs) {
    let (_, mut log) = open(&b, &d).await.unwrap();
    let last = three_segments(&b, &d, &mut log, 1).await;
    write_snapshot(b.clone(), &d.snap, 40, &[node("/", 40)], &[])
        .await
        .unwrap();
    drop(log);
    let (r, mut log) = open(&b, &d).await.unwrap();
    assert_eq!(log.base_zxid(), 40);
    assert_eq!(zxids(&r), (41..=last).collect::<Vec<_>>());
    // Below the snapshot: refused.
    assert!(matches!(
        log.truncate_after(39).await,
        Err(StorageError::Invalid(_))
    ));
    // A snapshot past the cut (as a server snapshotting meanwhile would write) would
    // bring the cut txns back at recovery: refused, nothing changes.
    write_snapshot(b.clone(), &d.snap, 60, &[node("/", 60)], &[])
        .await
        .unwrap();
    let segs = segments(&b, &d).await;
    let e = log.truncate_after(50).await.err().unwrap();
    assert!(matches!(e, StorageError::Invalid(_)), "{e}");
    assert!(e.to_string().contains(&snapshot_name(60)), "{e}");
    assert_eq!(segments(&b, &d).await, segs);
    b.remove(&d.snap.join(snapshot_name(60))).await.unwrap();
    log.truncate_after(40).await.unwrap();
    log.append_batch(&tagged(41, 2, 2)).await.unwrap();
    drop(log);
    let (r, log) = open(&b, &d).await.unwrap();
    assert_eq!(r.snapshot.as_ref().unwrap().last_zxid, 40);
    assert_eq!(r.txns, tagged(41, 2, 2));
    assert_eq!(log.base_zxid(), 40);
}

async fn truncate_after_with_no_snapshot_can_empty_the_log<B: Backend>(b: B, d: Dirs) {
    let (_, mut log) = open(&b, &d).await.unwrap();
    three_segments(&b, &d, &mut log, 1).await;
    assert_eq!(log.base_zxid(), 0);
    log.truncate_after(0).await.unwrap();
    assert!(segments(&b, &d).await.is_empty());
    assert_eq!(log.last_zxid(), 0);
    log.append_batch(&tagged(zx(1, 1), 4, 2)).await.unwrap();
    drop(log);
    let (r, _) = open(&b, &d).await.unwrap();
    assert_eq!(r.txns, tagged(zx(1, 1), 4, 2));
    assert_eq!(
        names_of(&segments(&b, &d).await),
        vec![segment_name(zx(1, 1))]
    );
}

/// The crash states of a cut, staged by hand: the marker durable, later segments still
/// there, a torn copy beside the segment. Recovery finishes the cut.
async fn recovery_finishes_an_interrupted_cut<B: Backend>(b: B, d: Dirs) {
    let (_, mut log) = open(&b, &d).await.unwrap();
    three_segments(&b, &d, &mut log, 1).await;
    drop(log);
    let kept = segments_through(&b, &d, 45).await;
    put_file(&b, &d.log.join(marker_name(45)), b"").await;
    let copy = d.log.join(format!(
        "{}{COPY_SUFFIX}",
        kept.last().unwrap().file_name().unwrap().to_string_lossy()
    ));
    put_file(&b, &copy, &[0xab; 5000]).await;
    let (r, mut log) = open(&b, &d).await.unwrap();
    assert_eq!(r.txns, tagged(1, 45, 1));
    assert!(
        r.warnings.iter().any(|w| w.contains("finished cutting")),
        "{:?}",
        r.warnings
    );
    assert_eq!(dir_names(&b, &d.log).await, names_of(&kept));
    log.append_batch(&tagged(46, 1, 2)).await.unwrap();
    drop(log);
    // Two markers: the cut after the lowest.
    put_file(&b, &d.log.join(marker_name(40)), b"").await;
    put_file(&b, &d.log.join(marker_name(20)), b"").await;
    let (r, _) = open(&b, &d).await.unwrap();
    assert_eq!(r.txns, tagged(1, 20, 1));
    assert_eq!(
        dir_names(&b, &d.log).await,
        names_of(&segments_through(&b, &d, 20).await)
    );
}

/// The offline tool finishes an interrupted cut before its own, and is crash-safe the
/// same way (it writes a marker too).
async fn log_truncate_tool_finishes_an_interrupted_cut<B: Backend>(b: B, d: Dirs) {
    let (_, mut log) = open(&b, &d).await.unwrap();
    three_segments(&b, &d, &mut log, 1).await;
    drop(log);
    put_file(&b, &d.log.join(marker_name(50)), b"").await;
    let out = log_truncate(&b, &d.log, 60).await.unwrap();
    assert!(out.contains("interrupted cut after zxid 0x32"), "{out}");
    assert!(out.contains("ended (or was damaged) before"), "{out}");
    let (r, _) = open(&b, &d).await.unwrap();
    assert_eq!(r.txns, tagged(1, 50, 1));
}

// ---- installing a leader's snapshot (SNAP) ------------------------------------------------

async fn install_snapshot_replaces_a_diverged_log<B: Backend>(b: B, d: Dirs) {
    let (_, mut log) = open(&b, &d).await.unwrap();
    // This server's history: 1..=50 of which 41..=50 are a losing leader's proposals,
    // and snapshots at 20 and (of those) 45.
    log.append_batch(&tagged(1, 40, 1)).await.unwrap();
    write_snapshot(b.clone(), &d.snap, 20, &[node("/", 20)], &[])
        .await
        .unwrap();
    log.append_batch(&tagged(41, 10, 9)).await.unwrap();
    write_snapshot(b.clone(), &d.snap, 45, &[node("/", 45)], &[])
        .await
        .unwrap();
    // The leader's state at 40: txn 41 of the old log follows it by number.
    let tree = tree_with(7, 40, 3000);
    install_snapshot(&b, &d.snap, &tree, 40, &mut log)
        .await
        .unwrap();
    assert_eq!(log.last_zxid(), 40);
    assert_eq!(log.base_zxid(), 40);
    assert!(segments(&b, &d).await.is_empty());
    assert_eq!(
        dir_names(&b, &d.snap).await,
        vec![snapshot_name(20), snapshot_name(40)]
    );
    // The leader's txns follow, then a new epoch.
    log.append_batch(&tagged(41, 3, 2)).await.unwrap();
    log.append_batch(&tagged(zx(1, 1), 2, 3)).await.unwrap();
    drop(log);
    let (r, log) = open(&b, &d).await.unwrap();
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    let s = r.snapshot.as_ref().unwrap();
    assert_eq!(s.last_zxid, 40);
    assert_eq!(snap_tag(&r), Some(7));
    let mut want = tagged(41, 3, 2);
    want.extend(tagged(zx(1, 1), 2, 3));
    assert_eq!(r.txns, want);
    // Every node and session of the tree, as the tree has them.
    let mut nodes = std::collections::BTreeMap::new();
    tree.for_each_node(|p, n, acl| {
        nodes.insert(
            p.to_string(),
            (n.data().to_bytes(), acl.to_vec(), *n.persisted()),
        );
    });
    let got: std::collections::BTreeMap<_, _> = s
        .nodes()
        .into_iter()
        .map(|n| (n.path, (n.data, n.acl, n.stat)))
        .collect();
    assert_eq!(got, nodes);
    assert_eq!(s.sessions, vec![(0x77, 4000)]);
    drop(log);
}

async fn install_snapshot_ahead_of_the_log_and_again<B: Backend>(b: B, d: Dirs) {
    let (_, mut log) = open(&b, &d).await.unwrap();
    log.append_batch(&tagged(1, 10, 1)).await.unwrap();
    // A leader far ahead, in a later epoch; then a second install, at the same zxid.
    let tree = tree_with(5, zx(2, 7), 10);
    install_snapshot(&b, &d.snap, &tree, zx(2, 7), &mut log)
        .await
        .unwrap();
    let tree = tree_with(6, zx(2, 7), 10);
    install_snapshot(&b, &d.snap, &tree, zx(2, 7), &mut log)
        .await
        .unwrap();
    // The next append must follow it.
    assert!(matches!(
        log.append_batch(&tagged(zx(2, 9), 1, 2)).await,
        Err(StorageError::Invalid(_))
    ));
    log.append_batch(&tagged(zx(2, 8), 1, 2)).await.unwrap();
    // A cut back to the snapshot is allowed, not below it.
    assert!(matches!(
        log.truncate_after(zx(2, 6)).await,
        Err(StorageError::Invalid(_))
    ));
    log.truncate_after(zx(2, 7)).await.unwrap();
    log.append_batch(&tagged(zx(3, 1), 1, 3)).await.unwrap();
    drop(log);
    let (r, _) = open(&b, &d).await.unwrap();
    assert_eq!(r.snapshot.as_ref().unwrap().last_zxid, zx(2, 7));
    assert_eq!(snap_tag(&r), Some(6));
    assert_eq!(r.txns, tagged(zx(3, 1), 1, 3));
}

/// The crash state after the commit point, staged by hand: the sealed snapshot under
/// its `.install` name, the old log and a newer snapshot still there.
async fn recovery_finishes_an_interrupted_install<B: Backend>(b: B, d: Dirs) {
    let (_, mut log) = open(&b, &d).await.unwrap();
    log.append_batch(&tagged(1, 50, 1)).await.unwrap();
    drop(log);
    write_snapshot(b.clone(), &d.snap, 45, &[node("/", 45)], &[])
        .await
        .unwrap();
    put_file(&b, &d.log.join(marker_name(3)), b"").await;
    let mut w = SnapshotWriter::create(b.clone(), &d.snap, 30)
        .await
        .unwrap();
    w.push_node("/", b"", &super::acl(), &node("/", 30).stat)
        .await
        .unwrap();
    let tmp = w.seal_at(30).await.unwrap();
    let pending = d.snap.join(format!("{}.install", snapshot_name(30)));
    b.rename(&tmp, &pending).await.unwrap();
    b.sync_dir(&d.snap).await.unwrap();
    let (r, mut log) = open(&b, &d).await.unwrap();
    assert!(
        r.warnings.iter().any(|w| w.contains("finished installing")),
        "{:?}",
        r.warnings
    );
    assert_eq!(r.snapshot.as_ref().unwrap().last_zxid, 30);
    assert!(r.txns.is_empty(), "the old log is not replayed");
    assert_eq!(r.last_zxid, 30);
    assert!(dir_names(&b, &d.log).await.is_empty());
    assert_eq!(dir_names(&b, &d.snap).await, vec![snapshot_name(30)]);
    log.append_batch(&tagged(31, 2, 2)).await.unwrap();
    drop(log);
    // A damaged pending install is refused, naming it.
    let mut w = SnapshotWriter::create(b.clone(), &d.snap, 35)
        .await
        .unwrap();
    w.push_node("/", b"", &super::acl(), &node("/", 35).stat)
        .await
        .unwrap();
    let tmp = w.seal_at(35).await.unwrap();
    let pending = d.snap.join(format!("{}.install", snapshot_name(35)));
    b.rename(&tmp, &pending).await.unwrap();
    super::damage(&b, &pending, 20, b"!!").await;
    let e = open(&b, &d).await.err().unwrap();
    assert!(matches!(e, StorageError::Corrupt(_)), "{e}");
    assert!(
        e.to_string().contains(&pending.display().to_string()),
        "{e}"
    );
}

// ---- power cuts (simulator) --------------------------------------------------------------

/// Runs `op` with the power cut at its `n`-th mutating operation, for n = 0, 1, ...
/// until it completes before the cut; then cuts the power anyway. `check(n, result)`
/// looks at what is left.
async fn at_every_step<S, SFut, O, OFut, C, CFut>(seed: u64, setup: S, op: O, check: C) -> u64
where
    S: Fn(SimBackend) -> SFut,
    SFut: std::future::Future<Output = TxnLog<SimBackend>>,
    O: Fn(SimBackend, TxnLog<SimBackend>) -> OFut,
    OFut: std::future::Future<Output = bool>,
    C: Fn(SimBackend, bool) -> CFut,
    CFut: std::future::Future<Output = ()>,
{
    for n in 0u64.. {
        let b = SimBackend::new(seed.wrapping_mul(1000).wrapping_add(n));
        let log = setup(b.clone()).await;
        b.cut_power_after(n);
        let ok = op(b.clone(), log).await;
        let finished = b.cut_pending();
        if finished {
            // Completed: a cut right after must change nothing.
            b.power_cut();
        }
        check(b, ok).await;
        if finished {
            assert!(ok, "completed without the cut, yet failed");
            return n;
        }
    }
    unreachable!()
}

/// Recovers with the power cut at step 0 of the first recovery, step 1 of the next (from
/// what the first left), and so on, until one completes: finishing an interrupted
/// operation is itself interrupted at every step. Returns the completed recovery.
async fn recover_through_cuts(b: &SimBackend, d: &Dirs) -> Recovered {
    for m in 0u64.. {
        b.cut_power_after(m);
        let got = open(b, d).await;
        if b.cut_pending() {
            // A cut after recovery completed changes nothing.
            b.power_cut();
            let (r, _) = got.unwrap_or_else(|e| panic!("recovery refused: {e}"));
            return r;
        }
    }
    unreachable!()
}

#[test]
fn epoch_write_is_atomic_under_power_cuts() {
    futures_lite::future::block_on(async {
        let d = sim_dirs();
        for seed in 0..12u64 {
            for existed in [false, true] {
                let steps = at_every_step(
                    seed,
                    |b| {
                        let d = sim_dirs();
                        async move {
                            if existed {
                                write_epoch(&b, &d.snap, CURRENT_EPOCH, 5).await.unwrap();
                            }
                            let (_, log) = open(&b, &d).await.unwrap();
                            log
                        }
                    },
                    |b, _log| {
                        let d = sim_dirs();
                        async move { write_epoch(&b, &d.snap, CURRENT_EPOCH, 123).await.is_ok() }
                    },
                    |b, ok| {
                        let dir = d.snap.clone();
                        async move {
                            let got = read_epoch(&b, &dir, CURRENT_EPOCH).await.unwrap();
                            write_epoch(&b, &dir, ACCEPTED_EPOCH, 1000).await.unwrap();
                            match (ok, existed) {
                                (true, _) => assert_eq!(got, Some(123)),
                                (false, true) => assert!(matches!(got, Some(5) | Some(123))),
                                (false, false) => assert!(matches!(got, None | Some(123))),
                            }
                            // Start-up cleans up and agrees.
                            let (a, c) = load_epochs(&b, &dir, 0).await.unwrap();
                            assert_eq!(Some(c), got.or(Some(0)));
                            assert_eq!(a, 1000);
                            assert!(!dir_names(&b, &dir)
                                .await
                                .iter()
                                .any(|n| n.ends_with(TMP_SUFFIX)));
                        }
                    },
                )
                .await;
                assert!(steps >= 5, "{steps} steps");
            }
        }
    });
}

/// The log before the cut in the power-cut tests: three segments of batches of 30
/// (tag 1), from a snapshot at 10.
async fn trunc_setup(b: SimBackend) -> TxnLog<SimBackend> {
    let d = sim_dirs();
    let (_, mut log) = open(&b, &d).await.unwrap();
    log.append_batch(&tagged(1, 10, 1)).await.unwrap();
    write_snapshot(b.clone(), &d.snap, 10, &[node("/", 10)], &[])
        .await
        .unwrap();
    three_segments(&b, &d, &mut log, 1).await;
    log
}

#[test]
fn truncate_after_is_crash_safe_at_every_step() {
    futures_lite::future::block_on(async {
        let full = {
            let b = SimBackend::new(0);
            trunc_setup(b).await.last_zxid()
        };
        // Inside a batch; at a frame boundary; at the snapshot; at a segment's end.
        for (seed, cut) in [(1u64, 55i64), (2, 40), (3, 10), (4, 70)] {
            // How often a failed cut came back as the old log / the cut one.
            let seen = std::rc::Rc::new(std::cell::Cell::new((0u32, 0u32)));
            let steps = at_every_step(
                seed,
                trunc_setup,
                |_b, mut log| async move { log.truncate_after(cut).await.is_ok() },
                |b, ok| {
                    let d = sim_dirs();
                    let seen = seen.clone();
                    async move {
                        let r = recover_through_cuts(&b, &d).await;
                        let got = zxids(&r);
                        let old: Vec<i64> = (11..=full).collect();
                        let new: Vec<i64> = (11..=cut).collect();
                        assert!(
                            got == new || (!ok && got == old),
                            "cut {cut} ok {ok}: got {:?}..{:?}",
                            got.first(),
                            got.last()
                        );
                        if !ok {
                            let (o, n) = seen.get();
                            seen.set(if got == old { (o + 1, n) } else { (o, n + 1) });
                        }
                        assert_eq!(r.txns, tagged(11, got.len(), 1));
                        // Nothing of the cut is left behind.
                        assert!(cut_leftovers(&dir_names(&b, &d.log).await).is_empty());
                        // The log goes on after whatever it holds, in a new epoch.
                        let (_, mut log) = open(&b, &d).await.unwrap();
                        let next = zx(5, 1);
                        log.append_batch(&tagged(next, 2, 2)).await.unwrap();
                        drop(log);
                        let (r2, _) = open(&b, &d).await.unwrap();
                        let mut want = r.txns.clone();
                        want.extend(tagged(next, 2, 2));
                        assert_eq!(r2.txns, want);
                    }
                },
            )
            .await;
            assert!(steps >= 6, "cut {cut}: only {steps} steps");
            let (old, new) = seen.get();
            assert!(old > 0 && new > 0, "cut {cut}: {old} old, {new} cut");
        }
    });
}

/// The state before the install in the power-cut tests: txns 1..=50 (41..=50 a losing
/// leader's, tag 9) and snapshots at 20 and 45.
async fn install_setup(b: SimBackend) -> TxnLog<SimBackend> {
    let d = sim_dirs();
    let (_, mut log) = open(&b, &d).await.unwrap();
    log.append_batch(&tagged(1, 20, 1)).await.unwrap();
    write_snapshot(b.clone(), &d.snap, 20, &[node("/", 20)], &[])
        .await
        .unwrap();
    log.append_batch(&tagged(21, 20, 1)).await.unwrap();
    log.append_batch(&tagged(41, 10, 9)).await.unwrap();
    write_snapshot(b.clone(), &d.snap, 45, &[node("/", 45)], &[])
        .await
        .unwrap();
    log
}

#[test]
fn install_snapshot_is_crash_safe_at_every_step() {
    futures_lite::future::block_on(async {
        for (seed, extra) in [(1u64, 0usize), (2, 2500)] {
            // How often a failed install came back as the old state / the new one.
            let seen = std::rc::Rc::new(std::cell::Cell::new((0u32, 0u32)));
            let steps = at_every_step(
                seed,
                install_setup,
                |b, mut log| async move {
                    let d = sim_dirs();
                    let tree = tree_with(7, 40, extra);
                    install_snapshot(&b, &d.snap, &tree, 40, &mut log)
                        .await
                        .is_ok()
                },
                |b, ok| {
                    let d = sim_dirs();
                    let seen = seen.clone();
                    async move {
                        let r = recover_through_cuts(&b, &d).await;
                        let snap = r.snapshot.as_ref().unwrap().last_zxid;
                        if !ok {
                            let (o, n) = seen.get();
                            seen.set(if snap == 40 { (o, n + 1) } else { (o + 1, n) });
                        }
                        if snap == 40 {
                            // The new state: the leader's snapshot, nothing after it.
                            assert_eq!(snap_tag(&r), Some(7));
                            assert!(r.txns.is_empty(), "old txns replayed after the install");
                            assert!(segments(&b, &d).await.is_empty());
                        } else {
                            assert!(!ok, "the install returned Ok but did not survive");
                            assert_eq!(
                                snap,
                                45,
                                "{:?} {:?}",
                                r.warnings,
                                dir_names(&b, &d.snap).await
                            );
                            assert_eq!(r.txns, tagged(46, 5, 9));
                        }
                        assert!(!dir_names(&b, &d.snap)
                            .await
                            .iter()
                            .any(|n| n.ends_with(".install") || n.ends_with(".tmp")));
                        // The leader's next txn goes on from whichever state.
                        let (r, mut log) = open(&b, &d).await.unwrap();
                        let next = r.last_zxid + 1;
                        log.append_batch(&tagged(next, 2, 2)).await.unwrap();
                        drop(log);
                        let (r2, _) = open(&b, &d).await.unwrap();
                        assert_eq!(r2.last_zxid, next + 1);
                    }
                },
            )
            .await;
            assert!(steps >= 8, "only {steps} steps");
            let (old, new) = seen.get();
            assert!(old > 0 && new > 0, "{old} old, {new} new");
        }
    });
}

/// Seeded runs mixing appends (changing epoch now and then), cuts and installs, with
/// the power cut at a random step: after each recovery the state is exactly one that
/// the operations could leave (every one that returned Ok is there; the one cut off is
/// there whole or not at all).
#[test]
fn seeded_zab_runs_under_power_cuts() {
    // Per operation: how often a cut one came back as before / as after.
    let mut outcomes = [[0u32; 2]; 3];
    for seed in 0..150u64 {
        futures_lite::future::block_on(zab_run(seed, &mut outcomes));
    }
    // Cuts really fell inside cuts and installs, and left both states.
    for (op, [before, after]) in ["append", "truncate", "install"].iter().zip(outcomes) {
        assert!(
            before > 3 && after > 3,
            "{op}: {before} before, {after} after"
        );
    }
}

/// The durable state as recovery should report it: the installed snapshot's zxid and
/// tag (if any) and the txns after it.
#[derive(Clone, Debug, PartialEq)]
struct Model {
    snap: Option<(i64, i64)>,
    txns: Vec<(i64, i64)>,
}

impl Model {
    fn last(&self) -> i64 {
        self.txns
            .last()
            .map(|t| t.0)
            .or(self.snap.map(|s| s.0))
            .unwrap_or(0)
    }
    fn base(&self) -> i64 {
        self.snap.map_or(0, |s| s.0)
    }
}

async fn zab_run(seed: u64, outcomes: &mut [[u32; 2]; 3]) {
    let b = SimBackend::new(seed);
    let d = sim_dirs();
    let mut rng = super::super::backend::SimRng::new(seed ^ 0x5eed);
    let mut model = Model {
        snap: None,
        txns: vec![],
    };
    let mut tag = 1i64;
    for round in 0..8 {
        let (r, mut log) = open(&b, &d)
            .await
            .unwrap_or_else(|e| panic!("seed {seed} round {round}: recovery refused: {e}"));
        let got = Model {
            snap: r
                .snapshot
                .as_ref()
                .map(|s| (s.last_zxid, snap_tag(&r).unwrap_or(-1))),
            txns: history(&r),
        };
        assert_eq!(got, model, "seed {seed} round {round}");
        b.cut_power_after(rng.below(80));
        // The state if the operation under way when the power goes completes, and
        // which operation that is.
        let mut pending: Option<(Model, usize)> = None;
        while b.cut_pending() {
            tag += 1;
            let after;
            let kind;
            let ok = match rng.below(10) {
                0..=4 => {
                    kind = 0;
                    let last = model.last();
                    let first = if rng.below(4) == 0 {
                        zx((last >> 32) + 1, 1)
                    } else {
                        last + 1
                    };
                    let n = 1 + rng.below(20) as usize;
                    let batch = tagged(first, n, tag);
                    let mut m = model.clone();
                    m.txns.extend(batch.iter().map(|(h, _)| (h.zxid, tag)));
                    after = m;
                    log.append_batch(&batch).await.is_ok()
                }
                5..=7 => {
                    kind = 1;
                    // A logged txn, or the snapshot's zxid.
                    let choices: Vec<i64> = std::iter::once(model.base())
                        .chain(model.txns.iter().map(|t| t.0))
                        .collect();
                    let z = choices[rng.below(choices.len() as u64) as usize];
                    let mut m = model.clone();
                    m.txns.retain(|t| t.0 <= z);
                    after = m;
                    log.truncate_after(z).await.is_ok()
                }
                _ => {
                    kind = 2;
                    // Behind, at, or ahead of this server's last zxid.
                    let last = model.last();
                    let z = match rng.below(3) {
                        0 => model.base().max(last - rng.below(10) as i64),
                        1 => last + 1 + rng.below(10) as i64,
                        _ => zx((last >> 32) + 1, 1 + rng.below(5) as i64),
                    };
                    after = Model {
                        snap: Some((z, tag)),
                        txns: vec![],
                    };
                    let tree = tree_with(tag, z, rng.below(50) as usize);
                    install_snapshot(&b, &d.snap, &tree, z, &mut log)
                        .await
                        .is_ok()
                }
            };
            if ok {
                model = after;
            } else {
                pending = Some((after, kind));
                break;
            }
        }
        drop(log);
        if b.cut_pending() {
            b.power_cut();
        }
        let r = recover_through_cuts(&b, &d).await;
        let got = Model {
            snap: r
                .snapshot
                .as_ref()
                .map(|s| (s.last_zxid, snap_tag(&r).unwrap_or(-1))),
            txns: history(&r),
        };
        match pending {
            _ if got == model => {
                if let Some((_, kind)) = pending {
                    outcomes[kind][0] += 1;
                }
            }
            Some((p, kind)) => {
                assert_eq!(
                    got, p,
                    "seed {seed} round {round}: neither before nor after"
                );
                outcomes[kind][1] += 1;
                model = p;
            }
            None => panic!("seed {seed} round {round}: {got:?} is not {model:?}"),
        }
    }
}

use super::{on_disk, on_sim};

conformance!(
    epoch_files_round_trip,
    epoch_start_up_rules,
    truncate_after_mid_batch_and_across_segments,
    truncate_after_refuses_what_it_cannot_do,
    truncate_after_to_the_snapshot_empties_the_log,
    truncate_after_with_no_snapshot_can_empty_the_log,
    recovery_finishes_an_interrupted_cut,
    log_truncate_tool_finishes_an_interrupted_cut,
    install_snapshot_replaces_a_diverged_log,
    install_snapshot_ahead_of_the_log_and_again,
    recovery_finishes_an_interrupted_install,
);
