//! Recovery: the newest valid snapshot, then every logged txn after it, and a log
//! positioned to append after the last valid frame.
//!
//! # Decision table
//!
//! | # | What recovery finds | What it does |
//! |---|---|---|
//! | 1 | No snapshot and no log | Empty state, `last_zxid` 0 |
//! | 2 | `snapshot.*.tmp` | A snapshot whose writer crashed: deleted |
//! | 3 | Newest snapshot fails its seal or does not decode | Skipped with a warning; the next older one is tried; with none left, recovery starts from the empty tree and the whole log |
//! | 4 | Newest segment's header is damaged and it holds no valid frame | Crash while the segment was being created (nothing in it was acknowledged): deleted |
//! | 5 | Any other damaged segment header, or a name that disagrees with its header | Refuse |
//! | 6 | Zeros after the last frame | End of the data (segments are zero-filled) |
//! | 7 | Newest segment: a bad frame (torn, zero-filled or garbage) with no valid frame after it | The torn write of an unacknowledged batch: cut off (zeroed and synced, under a `tailcut.<first zxid>` marker), with a warning |
//! | 7b | `tailcut.<Z>` in the log dir: a cut of the torn tail of segment Z that did not finish (its fdatasync failed, or the power went) | The whole rest of the segment after its last frame is zeroed again and synced, whatever reads show there (they may show the zeros of the failed cut while the disk still holds the torn bytes); then the marker is removed. A marker whose segment is not the newest is stale: removed |
//! | 8 | A bad frame followed by a valid frame, in any segment | Refuse: acknowledged txns were damaged. The message names the file, the offset and the repair command `corral log truncate --zxid Z` (Z = last good zxid) |
//! | 9 | An older segment with non-zero garbage after its last frame | Refuse (a segment is synced before the next one starts, so this is damage) |
//! | 10 | A frame whose checksums hold but whose txns do not decode | Refuse (written wrong, not torn) |
//! | 11 | The first txn after the snapshot does not follow its zxid, or two txns do not follow each other (`zxid_follows`) | Refuse: a gap (a lost or deleted segment) |
//! | 12 | The log ends before the snapshot's zxid | Fine: the snapshot holds those txns; the next append starts a new segment |
//! | 13 | `snapshot.<Z>.install`: a snapshot received from a leader, installed up to its commit point when the power went | Finished first (`install`): the file must load and be exact at Z (else refuse, naming it); every log segment, cut copy and cut marker is removed, then every snapshot newer than Z; then it is renamed to `snapshot.<Z>`. The state is that snapshot with an empty log, never the snapshot with the old log after it (which may hold a losing epoch's txns that follow Z by number) |
//! | 14 | `truncate.<Z>` in the log dir: a cut of the log (ZAB's TRUNC or `corral log truncate`) decided when the power went; `log.<first>.trunc` cut copies | Finished next (`truncate`): copies are removed (never trusted), the cut after Z is redone from what is on disk (idempotent), the marker removed. Several markers: the cut after the lowest. Damage before Z: refuse, as any damage (the tool repairs it) |
//!
//! Row 7's marker is what makes a failed cut safe: a recovery whose cut got EIO from
//! fdatasync fails, and so does every later one until a cut is durable, because the next
//! recovery would otherwise read back the zeros the failed cut wrote (the page cache, or
//! the device's, still holds them) and trust them; the log would roll over past the
//! segment without syncing it again, and a power cut would bring the torn bytes back in
//! what is then an older segment (row 9: refused). Never trust what was not synced.
//!
//! Rows 7 and 14 discard bytes. Row 7 only bytes no `append_batch` ever returned Ok for:
//! a batch is one write, and the next write starts only after its fdatasync. Row 14 only
//! txns that a cut, decided before the crash, removes.
//!
//! With `force_sync = false` several unsynced batches can be torn at a power cut and
//! recovery may then refuse under row 8; the repair command resolves it (that mode
//! gives no durability promise, as in ZooKeeper).

use std::path::{Path, PathBuf};

use super::backend::{align_down, align_up, Backend, StorageFile, ALIGN};
use super::log::{
    damage_after, decode_frame, find_valid_frame_after, frame_after, parse_segment_header,
    LogConfig, TxnLog, SEG_HEADER_LEN, SEG_PREFIX,
};
use super::snapshot::{load_snapshot, LoadedSnapshot, SNAP_PREFIX};
use super::truncate::OnDamage;
use super::{install, truncate};
use super::{io_err, parse_zxid_name, zxid_follows, zxid_hex, Result, StorageError};
use crate::request::txn::{Txn, TxnHeader};

/// What recovery hands the server: load `snapshot` (if any), then apply `txns` in order.
#[derive(Debug)]
pub struct Recovered {
    pub snapshot: Option<LoadedSnapshot>,
    /// Every logged txn after the snapshot's zxid, in zxid order.
    pub txns: Vec<(TxnHeader, Txn)>,
    /// The zxid of the last txn in the state (snapshot or log); 0 if empty.
    pub last_zxid: i64,
    /// Things recovery tolerated (skipped snapshots, cut tails): for the server's log.
    pub warnings: Vec<String>,
}

/// The files named `<prefix><hex zxid>` in `dir`, sorted by zxid.
pub(crate) async fn list_numbered<B: Backend>(
    backend: &B,
    dir: &Path,
    prefix: &str,
) -> Result<Vec<(i64, PathBuf)>> {
    let names = backend
        .list_dir(dir)
        .await
        .map_err(io_err(format!("listing {}", dir.display())))?;
    let mut v: Vec<(i64, PathBuf)> = names
        .iter()
        .filter_map(|n| parse_zxid_name(n, prefix).map(|z| (z, dir.join(n))))
        .collect();
    v.sort();
    Ok(v)
}

/// `tailcut.<first zxid of the segment>`: row 7's cut of a segment's torn tail is under
/// way; until it is removed, whatever reads show after that segment's last frame is not
/// known to be on the disk (row 7b).
pub(crate) const TAIL_CUT_PREFIX: &str = "tailcut.";

pub(crate) fn repair_hint(last_good: i64) -> String {
    format!("corral log truncate --zxid {last_good:#x}")
}

/// Recovers the state from `snap_dir` and `log_cfg.dir` (creating them if missing) and
/// returns the log ready to append after `Recovered::last_zxid`.
pub async fn recover<B: Backend>(
    backend: B,
    log_cfg: LogConfig,
    snap_dir: &Path,
) -> Result<(Recovered, TxnLog<B>)> {
    let log_dir = log_cfg.dir.clone();
    for d in [&log_dir, &snap_dir.to_path_buf()] {
        backend
            .create_dir_all(d)
            .await
            .map_err(io_err(format!("creating {}", d.display())))?;
    }
    let mut warnings = Vec::new();

    // Interrupted installs and cuts (rows 13, 14).
    if let Some(z) = install::finish_interrupted(&backend, snap_dir, &log_dir).await? {
        warnings.push(format!(
            "finished installing the snapshot at zxid {z:#x} received from a leader (a crash \
             interrupted it); the old log was removed"
        ));
    }
    if let Some(z) = truncate::finish_interrupted(&backend, &log_dir, OnDamage::Refuse).await? {
        warnings.push(format!(
            "finished cutting the log after zxid {z:#x} (a crash interrupted the cut)"
        ));
    }

    // Snapshots (rows 2, 3).
    let names = backend
        .list_dir(snap_dir)
        .await
        .map_err(io_err(format!("listing {}", snap_dir.display())))?;
    let mut removed_tmp = false;
    for n in &names {
        if n.starts_with(SNAP_PREFIX) && n.ends_with(".tmp") {
            let p = snap_dir.join(n);
            backend
                .remove(&p)
                .await
                .map_err(io_err(format!("removing {}", p.display())))?;
            removed_tmp = true;
        }
    }
    if removed_tmp {
        backend
            .sync_dir(snap_dir)
            .await
            .map_err(io_err(format!("syncing {}", snap_dir.display())))?;
    }
    let mut snapshot = None;
    for (_, p) in list_numbered(&backend, snap_dir, SNAP_PREFIX)
        .await?
        .iter()
        .rev()
    {
        match load_snapshot(&backend, p).await {
            Ok(s) => {
                snapshot = Some(s);
                break;
            }
            Err(StorageError::Corrupt(m)) => {
                warnings.push(format!("skipping snapshot: {m}"));
            }
            Err(e) => return Err(e),
        }
    }
    let snap_zxid = snapshot.as_ref().map(|s| s.last_zxid).unwrap_or(0);

    // Logs.
    let segs = list_numbered(&backend, &log_dir, SEG_PREFIX).await?;
    // Row 7b: cuts of a torn tail that did not finish (by the segment's first zxid).
    let tail_cuts = list_numbered(&backend, &log_dir, TAIL_CUT_PREFIX).await?;
    let start = segs.iter().rposition(|(z, _)| *z <= snap_zxid).unwrap_or(0);
    let mut txns = Vec::new();
    // The last zxid seen in the log (continuity is checked across the whole log read).
    let mut prev: Option<i64> = None;
    // Newest segment to resume: (path, size, end of data, tail block bytes, cut range).
    let mut resume = None;
    // The newest segment's torn tail to zero: (path, its first zxid, from, to, tail).
    let mut cut: Option<(PathBuf, i64, u64, u64, Vec<u8>)> = None;
    let mut drop_newest: Option<PathBuf> = None;
    for (i, (name_zxid, path)) in segs.iter().enumerate().skip(start) {
        let newest = i + 1 == segs.len();
        let buf = backend
            .map(path)
            .await
            .map_err(io_err(format!("reading {}", path.display())))?;
        let corrupt = |off: usize, what: String, last_good: i64| {
            StorageError::Corrupt(format!(
                "refusing to start: txn log {} is damaged at offset {off}: {what}. \
                 Inspect it with `corral log dump {}`; to keep the log up to the last good \
                 txn and discard everything after it, run `{}`",
                path.display(),
                path.display(),
                repair_hint(last_good)
            ))
        };
        // The last zxid known good when damage is found (for the repair command).
        let good = |txns: &Vec<(TxnHeader, Txn)>| txns.last().map_or(snap_zxid, |(h, _)| h.zxid);
        match parse_segment_header(&buf) {
            None => {
                if newest && find_valid_frame_after(&buf, SEG_HEADER_LEN).is_none() {
                    warnings.push(format!(
                        "removing {}: its header is incomplete (crash while creating it)",
                        path.display()
                    ));
                    drop_newest = Some(path.clone());
                    break;
                }
                return Err(corrupt(0, "bad segment header".into(), good(&txns)));
            }
            Some(z) if z != *name_zxid => {
                return Err(corrupt(
                    0,
                    format!("header says first zxid {z:#x}, name says {name_zxid:#x}"),
                    good(&txns),
                ));
            }
            Some(_) => {}
        }
        let mut off = SEG_HEADER_LEN;
        let mut frames = 0usize;
        while let Some(f) = frame_after(&buf, off, prev) {
            let at = f.offset;
            let batch = decode_frame(&buf, &f).map_err(|m| corrupt(at, m, good(&txns)))?;
            for (h, t) in batch {
                // A segment is named by (and its header holds) the first zxid written
                // to it; a txn below that is damage. Left unchecked, such a segment
                // sorted after the next new one and the log recovered in another order
                // once an append had made that segment.
                if h.zxid < *name_zxid {
                    return Err(corrupt(
                        at,
                        format!(
                            "zxid {:#x} below the segment's first zxid {name_zxid:#x}",
                            h.zxid
                        ),
                        good(&txns),
                    ));
                }
                if prev.is_some_and(|p| h.zxid <= p) {
                    return Err(corrupt(
                        at,
                        format!(
                            "zxid {:#x} after {:#x}: not increasing",
                            h.zxid,
                            prev.unwrap_or(0)
                        ),
                        good(&txns),
                    ));
                }
                // Row 11: every txn past the snapshot follows the one before it (the
                // first follows the snapshot). Older txns are only skipped: a log may
                // have a gap that a snapshot covers.
                if h.zxid > snap_zxid {
                    let before = good(&txns);
                    if !zxid_follows(before, h.zxid) {
                        return Err(corrupt(
                            at,
                            format!(
                                "gap in the log: the state ends at zxid {before:#x} but the \
                                 next logged txn is {:#x}",
                                h.zxid
                            ),
                            before,
                        ));
                    }
                    txns.push((h, t));
                }
                prev = Some(h.zxid);
            }
            frames += 1;
            off = f.end;
        }
        // `off` is the first spot that is not a valid frame: the end of the data or damage.
        if let Some(v) = damage_after(&buf, off) {
            return Err(corrupt(
                off,
                format!(
                    "not a valid frame, yet a valid frame (zxid {:#x}) follows at offset {}, \
                     so acknowledged txns were damaged",
                    v.first_zxid, v.offset
                ),
                good(&txns),
            ));
        }
        let garbage_end = buf[off..]
            .iter()
            .rposition(|&b| b != 0)
            .map(|p| off + p + 1);
        if !newest {
            if garbage_end.is_some() {
                return Err(corrupt(
                    off,
                    "damaged bytes after the last frame".into(),
                    good(&txns),
                ));
            }
            continue;
        }
        let tail_start = align_down(off as u64) as usize;
        let tail = buf[tail_start..off].to_vec();
        let unfinished_cut = tail_cuts.iter().any(|(z, _)| z == name_zxid);
        if let Some(g) = garbage_end {
            warnings.push(format!(
                "cutting the torn tail of {} at offset {off} ({} bytes of an unacknowledged batch)",
                path.display(),
                g - off
            ));
            let to = if unfinished_cut {
                align_up(buf.len() as u64)
            } else {
                align_up(g as u64)
            };
            cut = Some((
                path.clone(),
                *name_zxid,
                tail_start as u64,
                to,
                tail.clone(),
            ));
        } else if unfinished_cut {
            // Row 7b: the zeros read here may be the failed cut's, not the disk's.
            warnings.push(format!(
                "cutting the torn tail of {} at offset {off} again: the last cut did not \
                 finish",
                path.display()
            ));
            cut = Some((
                path.clone(),
                *name_zxid,
                tail_start as u64,
                align_up(buf.len() as u64),
                tail.clone(),
            ));
        }
        if frames == 0 {
            drop_newest = Some(path.clone());
        } else {
            resume = Some((path.clone(), buf.len() as u64, off as u64, tail));
        }
    }

    // Row 7: zero the torn tail durably, so a later scan never mistakes it for damage;
    // under a marker until the zeros are synced (row 7b).
    let mut finished_cut = None;
    if let Some((path, seg_zxid, from, to, tail)) = cut {
        if drop_newest.as_ref() != Some(&path) {
            let marker = log_dir.join(format!("{TAIL_CUT_PREFIX}{}", zxid_hex(seg_zxid)));
            if !tail_cuts.iter().any(|(z, _)| *z == seg_zxid) {
                let m = backend
                    .create(&marker)
                    .await
                    .map_err(io_err(format!("creating {}", marker.display())))?;
                let _ = m.close().await;
                backend
                    .sync_dir(&log_dir)
                    .await
                    .map_err(io_err(format!("syncing {}", log_dir.display())))?;
            }
            let f = backend
                .open(&path)
                .await
                .map_err(io_err(format!("opening {}", path.display())))?;
            let mut first = vec![0u8; ALIGN];
            first[..tail.len()].copy_from_slice(&tail);
            let ctx = format!("cutting the tail of {}", path.display());
            f.write_at(from, &first).await.map_err(io_err(&ctx))?;
            if to > from + ALIGN as u64 {
                f.zero_fill(from + ALIGN as u64, to)
                    .await
                    .map_err(io_err(&ctx))?;
            }
            // EIO here fails the recovery, and the marker makes the next one cut again.
            f.fdatasync().await.map_err(io_err(&ctx))?;
            let _ = f.close().await;
            finished_cut = Some(seg_zxid);
        }
    }
    // Every cut is durable now (a marked segment that is the newest was cut again
    // above; one that is not holds no tail the log continues from: a stale marker).
    let mut markers_gone = false;
    let made_now = finished_cut.filter(|z| !tail_cuts.iter().any(|(m, _)| m == z));
    let made_now = made_now.map(|z| (z, log_dir.join(format!("{TAIL_CUT_PREFIX}{}", zxid_hex(z)))));
    for (_, p) in tail_cuts.iter().chain(made_now.iter()) {
        backend
            .remove(p)
            .await
            .map_err(io_err(format!("removing {}", p.display())))?;
        markers_gone = true;
    }
    if markers_gone {
        backend
            .sync_dir(&log_dir)
            .await
            .map_err(io_err(format!("syncing {}", log_dir.display())))?;
    }
    // Rows 4 and 7 with nothing valid: the newest segment holds no acknowledged txn.
    if let Some(p) = drop_newest {
        backend
            .remove(&p)
            .await
            .map_err(io_err(format!("removing {}", p.display())))?;
        backend
            .sync_dir(&log_dir)
            .await
            .map_err(io_err(format!("syncing {}", log_dir.display())))?;
    }

    let log_last = prev.unwrap_or(0);
    let last_zxid = txns.last().map(|(h, _)| h.zxid).unwrap_or(snap_zxid);
    // Row 12: a log behind the snapshot is not continued; a new segment starts.
    if log_last != last_zxid {
        resume = None;
    }
    let log = TxnLog::resume(
        backend,
        log_cfg,
        last_zxid,
        snap_zxid,
        Some(snap_dir.to_path_buf()),
        resume,
    )
    .await?;
    Ok((
        Recovered {
            snapshot,
            txns,
            last_zxid,
            warnings,
        },
        log,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::OpCode;
    use crate::storage::backend::SimBackend;
    use crate::storage::log::{encode_frame, encode_segment_header, segment_name};

    /// Found by the `txn_log_recovery` fuzz target (`regress-segment-below-its-name`): a
    /// segment named (and headed) 0x100 holding txns 1 and 2 recovered, then the log
    /// appended txn 3 to a new `log.…03`, which sorts before it, and the next recovery
    /// refused a gap. Such a segment is refused at once.
    #[test]
    fn a_txn_below_its_segments_first_zxid_is_refused() {
        futures_lite::future::block_on(async {
            let b = SimBackend::new(1);
            let (log, snap) = (Path::new("/l"), Path::new("/s"));
            b.create_dir_all(log).await.unwrap();
            let txn = |z: i64| {
                let h = TxnHeader {
                    client_id: 1,
                    cxid: 1,
                    zxid: z,
                    time: 1,
                    op: OpCode::Delete,
                };
                (h, Txn::Delete { path: "/a".into() })
            };
            let mut seg = encode_segment_header(0x100).to_vec();
            seg.extend(encode_frame(&[txn(1), txn(2)]));
            let p = log.join(segment_name(0x100));
            let _ = b.create(&p).await.unwrap().close().await;
            b.corrupt(&p, 0, &seg);
            let cfg = LogConfig {
                prealloc_size: 8192,
                ..LogConfig::new(log)
            };
            match recover(b.clone(), cfg, snap).await {
                Err(StorageError::Corrupt(m)) => assert!(m.contains("below the segment"), "{m}"),
                other => panic!("{:?}", other.map(|(r, _)| r)),
            }
        });
    }
}
