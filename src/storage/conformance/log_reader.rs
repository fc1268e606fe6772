//! Reading logged txns back (`storage::log_reader`, a leader's DIFF), on both backends:
//! ranges over several segments with batches straddling their ends, purged and missing
//! ranges, `max_txns`, epochs, reading beside appends, after a cut and after an
//! installed snapshot, and junk after the durable end; then, on the simulator only,
//! torn tails and half-made segments left by power cuts.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::super::backend::{Backend, SimBackend};
use super::super::install::install_snapshot;
use super::super::log::{check_frame, encode_frame, segment_name, TxnLog, SEG_HEADER_LEN};
use super::super::log_reader::{oldest_complete_from, read_txns_after};
use super::super::snapshot::write_snapshot;
use super::super::tools::purge;
use super::super::{Result, StorageError};
use super::{batch, damage, node, on_disk, on_sim, open, segments, sim_dirs, Batch, Dirs};
use crate::tree::DataTree;

/// Epoch `e`, counter `c`.
fn zx(e: i64, c: i64) -> i64 {
    (e << 32) | c
}

fn first_zxids(segs: &[PathBuf]) -> Vec<i64> {
    segs.iter()
        .map(|p| {
            let n = p.file_name().unwrap().to_str().unwrap();
            i64::from_str_radix(n.strip_prefix("log.").unwrap(), 16).unwrap()
        })
        .collect()
}

async fn read<B: Backend>(b: &B, d: &Dirs, after: i64, up_to: i64) -> Result<Batch> {
    read_txns_after(b, &d.log, after, up_to, usize::MAX).await
}

/// The error of a read that must fail.
async fn refused<B: Backend>(b: &B, d: &Dirs, after: i64, up_to: i64, max: usize) -> StorageError {
    match read_txns_after(b, &d.log, after, up_to, max).await {
        Ok(v) => panic!(
            "reading ({after:#x}, {up_to:#x}] should fail, got {} txns",
            v.len()
        ),
        Err(e) => e,
    }
}

fn is_invalid(e: &StorageError) -> bool {
    matches!(e, StorageError::Invalid(_))
}

/// Appends batches of `sizes` from zxid `first`; returns the last zxid of each batch.
async fn append_all<B: Backend>(log: &mut TxnLog<B>, first: i64, sizes: &[usize]) -> Vec<i64> {
    let mut z = first;
    let mut ends = Vec::new();
    for &n in sizes {
        log.append_batch(&batch(z, n)).await.unwrap();
        z += n as i64;
        ends.push(z - 1);
    }
    ends
}

const SIZES: [usize; 14] = [1, 5, 17, 40, 3, 60, 2, 30, 30, 7, 25, 1, 45, 12];

/// The end of the data of a segment (after its last valid frame).
async fn data_end<B: Backend>(b: &B, path: &Path) -> usize {
    let buf = b.map(path).await.unwrap();
    let mut off = SEG_HEADER_LEN;
    while let Some(f) = check_frame(&buf, off) {
        off = f.end;
    }
    off
}

// ---- the suite -------------------------------------------------------------------------

async fn reads_every_range_across_segments<B: Backend>(b: B, d: Dirs) {
    let (_, mut log) = open(&b, &d).await.unwrap();
    assert_eq!(oldest_complete_from(&b, &d.log).await.unwrap(), None);
    let ends = append_all(&mut log, 1, &SIZES).await;
    let last = *ends.last().unwrap();
    let segs = first_zxids(&segments(&b, &d).await);
    assert!(segs.len() >= 4, "the log rolls over: {segs:?}");
    assert_eq!(oldest_complete_from(&b, &d.log).await.unwrap(), Some(0));
    // Batch ends, points inside batches (ranges whose ends cut a frame) and the
    // boundaries of segments.
    let mut points = vec![0, 1, last];
    for &e in &ends {
        points.extend([e, e - 1, e + 1]);
    }
    for &s in &segs {
        points.extend([s - 1, s]);
    }
    points.retain(|&p| (0..=last).contains(&p));
    points.sort();
    points.dedup();
    let mut pairs = 0;
    for (i, &after) in points.iter().enumerate() {
        for &up_to in &points[i..] {
            let n = (up_to - after) as usize;
            let got = read(&b, &d, after, up_to).await.unwrap();
            assert!(got == batch(after + 1, n), "({after}, {up_to}]");
            pairs += 1;
        }
    }
    assert!(pairs > 300, "{pairs}");
    // max_txns: exactly enough, one short (caught before reading, within an epoch).
    for (after, up_to) in [(0, last), (segs[1] - 1, segs[2] + 3), (17, 18)] {
        let n = (up_to - after) as usize;
        let got = read_txns_after(&b, &d.log, after, up_to, n).await.unwrap();
        assert_eq!(got.len(), n);
        assert!(is_invalid(&refused(&b, &d, after, up_to, n - 1).await));
    }
    // Past the end, an empty range reversed.
    assert!(is_invalid(&refused(&b, &d, 3, last + 1, usize::MAX).await));
    assert!(is_invalid(&refused(&b, &d, 9, 8, usize::MAX).await));
    // The log is still appended to as before.
    log.append_batch(&batch(last + 1, 3)).await.unwrap();
    assert_eq!(
        read(&b, &d, 0, last + 3).await.unwrap(),
        batch(1, last as usize + 3)
    );
}

/// Segments removed by a purge (or lost): a range that needs one is refused.
async fn purged_and_missing_ranges_are_refused<B: Backend>(b: B, d: Dirs) {
    let (_, mut log) = open(&b, &d).await.unwrap();
    let mut ends = append_all(&mut log, 1, &SIZES).await;
    ends.extend(append_all(&mut log, ends[ends.len() - 1] + 1, &SIZES).await);
    let last = *ends.last().unwrap();
    let before = first_zxids(&segments(&b, &d).await);
    assert!(before.len() >= 6, "{before:?}");
    // Inside the third segment: the purge keeps it and removes the two before.
    let snap_at = before[2] + 2;
    write_snapshot(b.clone(), &d.snap, snap_at, &[node("/", 1)], &[])
        .await
        .unwrap();
    let removed = purge(&b, &d.log, &d.snap, 1).await.unwrap();
    assert!(!removed.is_empty(), "the purge removes old segments");
    let segs = first_zxids(&segments(&b, &d).await);
    assert_eq!(segs, before[2..]);
    let f = segs[0];
    assert_eq!(oldest_complete_from(&b, &d.log).await.unwrap(), Some(f - 1));
    // From the oldest complete point on, every range reads.
    for after in [f - 1, f, snap_at, last - 1] {
        let got = read(&b, &d, after, last).await.unwrap();
        assert_eq!(got, batch(after + 1, (last - after) as usize));
    }
    // Before it: refused, whether the start was purged or lies further back.
    for after in [f - 2, 1, 0] {
        assert!(is_invalid(&refused(&b, &d, after, last, usize::MAX).await));
    }
    // A lost segment in the middle: ranges across it or starting in it are refused,
    // ranges after it still read.
    assert!(segs.len() >= 4, "{segs:?}");
    let gone = segs[1];
    b.remove(&d.log.join(segment_name(gone))).await.unwrap();
    b.sync_dir(&d.log).await.unwrap();
    let e = refused(&b, &d, f, last, usize::MAX).await;
    assert!(matches!(e, StorageError::Corrupt(_)), "{e}");
    assert!(e.to_string().contains("gap"), "{e}");
    assert!(is_invalid(
        &refused(&b, &d, gone + 1, last, usize::MAX).await
    ));
    let got = read(&b, &d, segs[2] - 1, last).await.unwrap();
    assert_eq!(got, batch(segs[2], (last - segs[2] + 1) as usize));
    // Within the oldest segment, before the hole.
    let got = read(&b, &d, f - 1, gone - 1).await.unwrap();
    assert_eq!(got, batch(f, (gone - f) as usize));
}

/// Epoch changes: the first txn returned must follow `after` with nothing possible in
/// between, and `max_txns` counts across epochs.
async fn ranges_over_epochs<B: Backend>(b: B, d: Dirs) {
    let (_, mut log) = open(&b, &d).await.unwrap();
    append_all(&mut log, 1, &[4, 6]).await;
    append_all(&mut log, zx(2, 1), &[30, 30, 30, 2]).await;
    let last = zx(2, 92);
    let mut want = batch(1, 10);
    want.extend(batch(zx(2, 1), 92));
    let from = |after: i64| -> Batch {
        want.iter()
            .filter(|(h, _)| h.zxid > after)
            .cloned()
            .collect()
    };
    assert_eq!(read(&b, &d, 0, last).await.unwrap(), want);
    // The last txn of epoch 0 is logged: the next is epoch 2's first.
    assert_eq!(read(&b, &d, 10, last).await.unwrap(), from(10));
    assert_eq!(read(&b, &d, 10, zx(2, 1)).await.unwrap(), from(10)[..1]);
    // zx(2, 0) is not logged, but nothing can lie between it and zx(2, 1).
    assert_eq!(read(&b, &d, zx(2, 0), last).await.unwrap(), from(10));
    assert_eq!(
        read(&b, &d, zx(2, 40), last).await.unwrap(),
        from(zx(2, 40))
    );
    // A txn of epoch 1 (say, a losing leader's proposal the learner has): not logged,
    // and the txns right after it are unknown.
    for after in [zx(1, 5), 11, zx(2, 0) - 1] {
        let e = refused(&b, &d, after, last, usize::MAX).await;
        assert!(is_invalid(&e), "{e}");
    }
    // `up_to` not a logged txn, or past the end.
    for up_to in [zx(1, 3), zx(2, 93)] {
        assert!(is_invalid(&refused(&b, &d, 5, up_to, usize::MAX).await));
    }
    // max_txns across the epoch change (not known before reading).
    let n = from(5).len();
    let got = read_txns_after(&b, &d.log, 5, last, n).await.unwrap();
    assert_eq!(got, from(5));
    assert!(is_invalid(&refused(&b, &d, 5, last, n - 1).await));
    assert!(is_invalid(&refused(&b, &d, 5, last, 0).await));
    assert_eq!(read(&b, &d, last, last).await.unwrap(), vec![]);
}

/// Reading while the same process appends: each read sees exactly up to the durable
/// end it was given, though later batches (and roll-overs) are being written.
async fn reads_beside_appends<B: Backend>(b: B, d: Dirs) {
    let (_, mut log) = open(&b, &d).await.unwrap();
    log.append_batch(&batch(1, 3)).await.unwrap();
    let durable = Rc::new(Cell::new(3i64));
    let done = Rc::new(Cell::new(false));
    let appender = {
        let (durable, done) = (durable.clone(), done.clone());
        async move {
            let mut z = 4;
            for i in 0..120 {
                let n = 1 + (i * 7) % 23;
                log.append_batch(&batch(z, n)).await.unwrap();
                z += n as i64;
                durable.set(z - 1);
                futures_lite::future::yield_now().await;
            }
            done.set(true);
            log
        }
    };
    let reader = {
        let b = b.clone();
        let log_dir = d.log.clone();
        async move {
            let mut reads = 0u32;
            let mut ups = Vec::new();
            while !done.get() {
                let up_to = durable.get();
                for after in [0, up_to / 2, up_to - 1, (up_to - 40).max(0)] {
                    let got = read_txns_after(&b, &log_dir, after, up_to, usize::MAX)
                        .await
                        .unwrap();
                    assert!(got == batch(after + 1, (up_to - after) as usize));
                    reads += 1;
                }
                assert_eq!(oldest_complete_from(&b, &log_dir).await.unwrap(), Some(0));
                ups.push(up_to);
                futures_lite::future::yield_now().await;
            }
            (reads, ups)
        }
    };
    let (mut log, (reads, mut ups)) = futures_lite::future::zip(appender, reader).await;
    ups.dedup();
    // The reads interleaved with the appends (how often depends on the disk).
    assert!(reads >= 8 && ups.len() >= 2, "{reads} reads at {ups:?}");
    assert!(segments(&b, &d).await.len() > 10);
    // A durable end read again after more appends: still exactly that.
    let up_to = log.last_zxid();
    log.append_batch(&batch(up_to + 1, 50)).await.unwrap();
    let got = read(&b, &d, 10, up_to).await.unwrap();
    assert_eq!(got, batch(11, (up_to - 10) as usize));
}

/// Bytes after the durable end (a frame being written, half of one, a torn one) are
/// never looked at.
async fn junk_after_the_durable_end_is_not_read<B: Backend>(b: B, d: Dirs) {
    let (_, mut log) = open(&b, &d).await.unwrap();
    let ends = append_all(&mut log, 1, &SIZES[..8]).await;
    let up_to = *ends.last().unwrap();
    drop(log);
    let newest = segments(&b, &d).await.pop().unwrap();
    let end = data_end(&b, &newest).await;
    let next = encode_frame(&batch(up_to + 1, 5));
    let want = batch(1, up_to as usize);
    // A whole frame written but not yet synced; half of one; one with a torn middle;
    // garbage.
    let mut torn = next.clone();
    torn[next.len() / 2] ^= 0xff;
    for junk in [
        next.clone(),
        next[..next.len() / 2].to_vec(),
        torn,
        vec![0xa5; 700],
    ] {
        damage(&b, &newest, end as u64, &junk).await;
        assert_eq!(read(&b, &d, 0, up_to).await.unwrap(), want);
        assert_eq!(
            read(&b, &d, up_to - 1, up_to).await.unwrap(),
            want[want.len() - 1..]
        );
        assert_eq!(oldest_complete_from(&b, &d.log).await.unwrap(), Some(0));
    }
    // The same junk in an older segment, where no write can be under way: damage.
    let segs = segments(&b, &d).await;
    let older = &segs[segs.len() - 2];
    let end = data_end(&b, older).await;
    damage(&b, older, end as u64, &[0xa5; 40]).await;
    let e = refused(&b, &d, 0, up_to, usize::MAX).await;
    assert!(matches!(e, StorageError::Corrupt(_)), "{e}");
}

/// A damaged frame inside the range is an error, never a short result.
async fn damage_in_the_range_is_refused<B: Backend>(b: B, d: Dirs) {
    let (_, mut log) = open(&b, &d).await.unwrap();
    let ends = append_all(&mut log, 1, &SIZES).await;
    let last = *ends.last().unwrap();
    drop(log);
    let segs = segments(&b, &d).await;
    let firsts = first_zxids(&segs);
    // A payload byte of the second frame of the second segment.
    let buf = b.map(&segs[1]).await.unwrap().to_vec();
    let f1 = check_frame(&buf, SEG_HEADER_LEN).unwrap();
    let f2 = check_frame(&buf, f1.end).unwrap();
    damage(
        &b,
        &segs[1],
        (f2.offset + 30) as u64,
        &[buf[f2.offset + 30] ^ 0x10],
    )
    .await;
    for (after, up_to) in [(0, last), (firsts[1] - 1, firsts[2]), (0, firsts[2] - 1)] {
        let e = refused(&b, &d, after, up_to, usize::MAX).await;
        assert!(matches!(e, StorageError::Corrupt(_)), "{e}");
    }
    // Ranges not needing that segment are read.
    let got = read(&b, &d, 0, firsts[1] - 1).await.unwrap();
    assert_eq!(got, batch(1, firsts[1] as usize - 1));
    let got = read(&b, &d, firsts[2] - 1, last).await.unwrap();
    assert_eq!(got, batch(firsts[2], (last - firsts[2] + 1) as usize));
    // A bad segment header.
    damage(&b, &segs[2], 10, &[0xee]).await;
    let e = refused(&b, &d, firsts[2] - 1, last, usize::MAX).await;
    assert!(matches!(e, StorageError::Corrupt(_)), "{e}");
}

/// After ZAB's TRUNC the reader sees the cut log and what follows it.
async fn reads_after_truncate<B: Backend>(b: B, d: Dirs) {
    let (_, mut log) = open(&b, &d).await.unwrap();
    let ends = append_all(&mut log, 1, &[30; 8]).await;
    assert!(segments(&b, &d).await.len() >= 3);
    assert_eq!(read(&b, &d, 0, 240).await.unwrap(), batch(1, 240));
    // Inside a batch of the second segment.
    let cut = first_zxids(&segments(&b, &d).await)[1] + 5;
    log.truncate_after(cut).await.unwrap();
    log.append_batch(&batch(zx(1, 1), 40)).await.unwrap();
    log.append_batch(&batch(zx(1, 41), 40)).await.unwrap();
    let mut want = batch(1, cut as usize);
    want.extend(batch(zx(1, 1), 80));
    assert_eq!(read(&b, &d, 0, zx(1, 80)).await.unwrap(), want);
    assert_eq!(
        read(&b, &d, cut, zx(1, 80)).await.unwrap(),
        want[cut as usize..]
    );
    assert_eq!(read(&b, &d, cut - 3, cut).await.unwrap(), batch(cut - 2, 3));
    assert_eq!(oldest_complete_from(&b, &d.log).await.unwrap(), Some(0));
    // The cut txns are gone: as an end, or as a start (a learner that has them).
    assert!(is_invalid(&refused(&b, &d, 0, ends[7], usize::MAX).await));
    assert!(is_invalid(
        &refused(&b, &d, cut + 2, zx(1, 80), usize::MAX).await
    ));
}

/// After a snapshot from a leader is installed the log is empty until appends resume;
/// then it is complete after the snapshot's zxid only.
async fn reads_after_install_snapshot<B: Backend>(b: B, d: Dirs) {
    let (_, mut log) = open(&b, &d).await.unwrap();
    append_all(&mut log, 1, &[30; 5]).await;
    let s = zx(2, 7);
    let mut tree = DataTree::new();
    tree.set_last_processed_zxid(s);
    install_snapshot(&b, &d.snap, &tree, s, &mut log)
        .await
        .unwrap();
    assert_eq!(oldest_complete_from(&b, &d.log).await.unwrap(), None);
    assert!(is_invalid(&refused(&b, &d, 0, 100, usize::MAX).await));
    log.append_batch(&batch(s + 1, 50)).await.unwrap();
    log.append_batch(&batch(s + 51, 50)).await.unwrap();
    log.append_batch(&batch(zx(3, 1), 10)).await.unwrap();
    assert_eq!(oldest_complete_from(&b, &d.log).await.unwrap(), Some(s));
    let mut want = batch(s + 1, 100);
    want.extend(batch(zx(3, 1), 10));
    assert_eq!(read(&b, &d, s, zx(3, 10)).await.unwrap(), want);
    assert_eq!(read(&b, &d, s + 60, s + 100).await.unwrap(), want[60..100]);
    // Before the snapshot: not in the log (the old txns were removed).
    for after in [s - 1, 100, 0] {
        assert!(is_invalid(
            &refused(&b, &d, after, zx(3, 10), usize::MAX).await
        ));
    }
}

conformance!(
    reads_every_range_across_segments,
    purged_and_missing_ranges_are_refused,
    ranges_over_epochs,
    reads_beside_appends,
    junk_after_the_durable_end_is_not_read,
    damage_in_the_range_is_refused,
    reads_after_truncate,
    reads_after_install_snapshot,
);

// ---- simulator only: power cuts --------------------------------------------------------

/// A power cut at every step of a run of appends that rolls over segments: whatever
/// the cut leaves after the last acknowledged txn (a torn frame, a half-made segment,
/// a lost name), reading up to that txn gives exactly the acknowledged txns, before
/// recovery has run.
#[test]
fn torn_tails_after_power_cuts_do_not_affect_reads() {
    futures_lite::future::block_on(async {
        let mut steps = 0u64;
        let mut torn_segments = 0;
        loop {
            let b = SimBackend::new(steps.wrapping_mul(0x9e37) + 11);
            let d = sim_dirs();
            let (_, mut log) = open(&b, &d).await.unwrap();
            log.append_batch(&batch(1, 20)).await.unwrap();
            let mut acked = 20i64;
            b.cut_power_after(steps);
            let mut cut = false;
            for n in [9usize, 31, 1, 44, 17, 60, 5] {
                match log.append_batch(&batch(acked + 1, n)).await {
                    Ok(()) => acked += n as i64,
                    Err(_) => {
                        cut = true;
                        break;
                    }
                }
            }
            if !cut {
                break;
            }
            drop(log);
            let want = batch(1, acked as usize);
            assert_eq!(read(&b, &d, 0, acked).await.unwrap(), want, "step {steps}");
            let got = read(&b, &d, acked - 3, acked).await.unwrap();
            assert_eq!(got, want[acked as usize - 3..], "step {steps}");
            assert_eq!(oldest_complete_from(&b, &d.log).await.unwrap(), Some(0));
            let newest = segments(&b, &d).await.pop().unwrap();
            if data_end(&b, &newest).await == SEG_HEADER_LEN {
                torn_segments += 1;
            }
            steps += 1;
        }
        assert!(steps > 20, "{steps}");
        assert!(torn_segments > 0);
    });
}

/// The only segment, cut while being made: the log holds nothing.
#[test]
fn a_half_made_only_segment_is_an_empty_log() {
    futures_lite::future::block_on(async {
        for steps in 0..4 {
            let b = SimBackend::new(3 + steps);
            let d = sim_dirs();
            let (_, mut log) = open(&b, &d).await.unwrap();
            b.cut_power_after(steps);
            assert!(log.append_batch(&batch(1, 5)).await.is_err());
            drop(log);
            // The segment's name may or may not have survived; its header may be torn.
            let oldest = oldest_complete_from(&b, &d.log).await.unwrap();
            assert!(matches!(oldest, None | Some(0)), "{oldest:?}");
            assert_eq!(read(&b, &d, 0, 0).await.unwrap(), vec![]);
            // 5 is not durable (a caller error): refused either way.
            refused(&b, &d, 0, 5, usize::MAX).await;
        }
    });
}
