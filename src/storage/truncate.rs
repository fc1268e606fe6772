//! Cutting the txn log after a zxid, crash-safely. One implementation serves ZAB's
//! TRUNC ([`TxnLog::truncate_after`](super::TxnLog::truncate_after)), the offline
//! `corral log truncate` ([`super::tools::log_truncate`]) and recovery, which finishes a
//! cut that a crash interrupted (row 14 of the table in `recovery`).
//!
//! # Why a marker and a copy
//!
//! The obvious cut, rewriting the segment in place, is not crash-safe. The frame holding
//! the cut must be re-encoded with fewer txns (frames are per batch, see `log`), and a
//! torn write of it can destroy the txns it keeps. Zeroing the frames after the cut can
//! be torn too, leaving a later frame valid after a destroyed one: damage that recovery
//! must refuse (row 8). And removing the later segments and cutting the one that holds
//! the cut are two steps: a crash between them leaves a log whose later segments no
//! longer follow (row 11, refused). So:
//!
//! 1. `truncate.<zxid>` is created in the log dir and the directory synced. From here on
//!    the cut is decided: recovery completes it.
//! 2. The segments wholly after `zxid` are removed, directory synced.
//! 3. If anything changes in the segment holding `zxid`, its bytes up to the cut (the
//!    frame holding `zxid` re-encoded with only its txns <= `zxid`) are written to
//!    `log.<first>.trunc`, zero-filled to the segment's size, fdatasync'd, renamed over
//!    the segment, directory synced. The rename swaps whole files: the txns kept are
//!    never under a write.
//! 4. The marker is removed, directory synced.
//!
//! A power cut before the marker is durable leaves the old log. After it, recovery
//! removes any `.trunc` copy (never trusted: it may be torn) and redoes steps 2 to 4
//! from what is on disk: each step is idempotent (a segment already cut needs no copy,
//! removed segments are not listed), so recovery always ends with exactly the cut log.
//! Several markers (a cut interrupted, then another one by the offline tool) are all
//! decided cuts: their composition, the cut after the lowest, is made.

use std::path::{Path, PathBuf};

use super::backend::{align_down, align_up, Backend, StorageFile};
use super::log::{
    damage_after, decode_frame, encode_frame, frame_after, parse_segment_header, SEG_HEADER_LEN,
    SEG_PREFIX,
};
use super::recovery::{list_numbered, repair_hint};
use super::{io_err, parse_zxid_name, zxid_hex, Result, StorageError};

/// `truncate.<zxid>`: a decided cut after `zxid` (step 1 of the module doc).
pub const MARKER_PREFIX: &str = "truncate.";
/// `log.<first>.trunc`: the cut copy of a segment, before it is renamed over it.
pub const COPY_SUFFIX: &str = ".trunc";

/// How a cut treats damage (a bad frame, or one that does not decode) before `zxid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnDamage {
    /// [`StorageError::Corrupt`]: ZAB's TRUNC and recovery never discard txns <= `zxid`.
    Refuse,
    /// Cut at the damage: the offline tool repairs a log this way.
    Cut,
}

/// What a cut after `zxid` does, computed from the files without changing them.
#[derive(Debug)]
pub(crate) struct Plan {
    pub zxid: i64,
    /// Segments holding no txn <= `zxid`, ascending.
    pub remove: Vec<PathBuf>,
    /// The segment that ends the log afterwards.
    pub keep: Option<Kept>,
    /// The last logged txn <= `zxid`.
    pub last_kept: Option<i64>,
    /// Damage the cut was moved to ([`OnDamage::Cut`] only): the file and offset.
    pub damaged_at: Option<(PathBuf, usize)>,
}

#[derive(Debug)]
pub(crate) struct Kept {
    pub path: PathBuf,
    /// The file's size (kept: segments are preallocated).
    pub size: u64,
    /// The end of its data after the cut.
    pub end: u64,
    /// The new contents `[0, end)` when the file must be replaced; None if it already
    /// ends at the cut with only zeros after.
    pub rewrite: Option<Vec<u8>>,
    /// The bytes `[align_down(end), end)`, for the log to append after them.
    pub tail: Vec<u8>,
}

impl Plan {
    /// Whether the log already ends at the cut.
    pub fn is_noop(&self) -> bool {
        self.remove.is_empty() && self.keep.as_ref().is_none_or(|k| k.rewrite.is_none())
    }
}

pub(crate) fn marker_name(zxid: i64) -> String {
    format!("{MARKER_PREFIX}{}", zxid_hex(zxid))
}

fn copy_path(segment: &Path) -> PathBuf {
    let name = segment
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    segment.with_file_name(format!("{name}{COPY_SUFFIX}"))
}

/// Whether `name` is a cut copy of a segment (`log.<hex>.trunc`).
pub(crate) fn is_copy_name(name: &str) -> bool {
    name.strip_suffix(COPY_SUFFIX)
        .is_some_and(|seg| parse_zxid_name(seg, SEG_PREFIX).is_some())
}

/// Where the cut falls in one segment.
struct Scan {
    /// End of the last frame kept whole.
    off: usize,
    /// The frame holding `zxid` re-encoded with its txns <= `zxid`.
    reframe: Option<Vec<u8>>,
    last_kept: Option<i64>,
    damaged_at: Option<usize>,
}

fn scan_segment(buf: &[u8], path: &Path, zxid: i64, on_damage: OnDamage) -> Result<Scan> {
    let mut s = Scan {
        off: SEG_HEADER_LEN,
        reframe: None,
        last_kept: None,
        damaged_at: None,
    };
    let damaged = |s: &Scan, what: String| -> Result<()> {
        match on_damage {
            OnDamage::Refuse => Err(StorageError::Corrupt(format!(
                "cannot cut txn log {} after zxid {zxid:#x}: it is damaged at offset {} \
                 before that zxid ({what}). Inspect it with `corral log dump {}`; to keep \
                 the log up to the last good txn before the damage, run `{}`",
                path.display(),
                s.off,
                path.display(),
                s.last_kept.map_or(
                    "corral log truncate --zxid <that txn's zxid>".into(),
                    repair_hint
                )
            ))),
            OnDamage::Cut => Ok(()),
        }
    };
    loop {
        let Some(f) = frame_after(buf, s.off, s.last_kept) else {
            // The end of the data, a torn tail (nothing valid after it but appends that
            // were in flight with it) or damage.
            if let Some(v) = damage_after(buf, s.off) {
                damaged(
                    &s,
                    format!("not a valid frame, yet one follows at offset {}", v.offset),
                )?;
                s.damaged_at = Some(s.off);
            }
            return Ok(s);
        };
        let txns = match decode_frame(buf, &f) {
            Ok(t) => t,
            Err(m) => {
                damaged(&s, m)?;
                s.damaged_at = Some(s.off);
                return Ok(s);
            }
        };
        let n = txns.iter().take_while(|(h, _)| h.zxid <= zxid).count();
        if n < txns.len() {
            if n > 0 {
                s.last_kept = Some(txns[n - 1].0.zxid);
                s.reframe = Some(encode_frame(&txns[..n]));
            }
            return Ok(s);
        }
        s.last_kept = txns.last().map(|(h, _)| h.zxid).or(s.last_kept);
        s.off = f.end;
    }
}

/// Works out the cut after `zxid` of the log in `log_dir` (reads only).
pub(crate) async fn plan<B: Backend>(
    backend: &B,
    log_dir: &Path,
    zxid: i64,
    on_damage: OnDamage,
) -> Result<Plan> {
    let segs = list_numbered(backend, log_dir, SEG_PREFIX).await?;
    let mut k = segs.iter().rposition(|(z, _)| *z <= zxid);
    let mut remove: Vec<PathBuf> = segs[k.map_or(0, |k| k + 1)..]
        .iter()
        .map(|(_, p)| p.clone())
        .collect();
    let mut damaged_at = None;
    // The segment named at or before `zxid` normally holds it; one that holds nothing
    // valid (a crash or a full disk right after it was made) goes too, and the one
    // before it ends the log.
    while let Some(i) = k {
        let path = &segs[i].1;
        let buf = backend
            .map(path)
            .await
            .map_err(io_err(format!("reading {}", path.display())))?;
        if parse_segment_header(&buf).is_none() {
            return Err(StorageError::Corrupt(format!(
                "cannot cut txn log {} after zxid {zxid:#x}: bad segment header; remove the \
                 file by hand if it holds nothing you need",
                path.display()
            )));
        }
        let s = scan_segment(&buf, path, zxid, on_damage)?;
        if let Some(off) = s.damaged_at {
            damaged_at = Some((path.clone(), off));
        }
        if s.off == SEG_HEADER_LEN && s.reframe.is_none() {
            remove.insert(0, path.clone());
            k = i.checked_sub(1);
            continue;
        }
        let mut head_len = s.off;
        let rest_dirty = buf[s.off..].iter().any(|&b| b != 0);
        let rewrite = match &s.reframe {
            Some(r) => {
                let mut v = Vec::with_capacity(s.off + r.len());
                v.extend_from_slice(&buf[..s.off]);
                v.extend_from_slice(r);
                head_len += r.len();
                Some(v)
            }
            None if rest_dirty => Some(buf[..s.off].to_vec()),
            None => None,
        };
        let end = head_len as u64;
        let tail_from = align_down(end) as usize;
        let tail = match &rewrite {
            Some(v) => v[tail_from..].to_vec(),
            None => buf[tail_from..head_len].to_vec(),
        };
        let size = align_up((buf.len() as u64).max(end));
        return Ok(Plan {
            zxid,
            remove,
            keep: Some(Kept {
                path: path.clone(),
                size,
                end,
                rewrite,
                tail,
            }),
            last_kept: s.last_kept,
            damaged_at,
        });
    }
    Ok(Plan {
        zxid,
        remove,
        keep: None,
        last_kept: None,
        damaged_at,
    })
}

/// Removes `p`; one already gone (say, by a purge meanwhile) is what was wanted.
pub(crate) async fn remove_file<B: Backend>(backend: &B, p: &Path) -> Result<()> {
    match backend.remove(p).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StorageError::Io {
            context: format!("removing {}", p.display()),
            source: e,
        }),
        _ => Ok(()),
    }
}

async fn sync_dir<B: Backend>(backend: &B, dir: &Path) -> Result<()> {
    backend
        .sync_dir(dir)
        .await
        .map_err(io_err(format!("syncing {}", dir.display())))
}

/// Steps 2 and 3 of the module doc.
async fn execute<B: Backend>(backend: &B, log_dir: &Path, plan: &Plan) -> Result<()> {
    for p in plan.remove.iter().rev() {
        remove_file(backend, p).await?;
    }
    if !plan.remove.is_empty() {
        sync_dir(backend, log_dir).await?;
    }
    let Some(k) = &plan.keep else {
        return Ok(());
    };
    let Some(head) = &k.rewrite else {
        return Ok(());
    };
    let copy = copy_path(&k.path);
    let ctx = format!("writing {}", copy.display());
    let file = backend.create(&copy).await.map_err(io_err(&ctx))?;
    let written = async {
        const CHUNK: usize = 1 << 20;
        let mut pos = 0usize;
        while pos < head.len() {
            let n = (head.len() - pos).min(CHUNK);
            let mut block = head[pos..pos + n].to_vec();
            block.resize(align_up(n as u64) as usize, 0);
            file.write_at(pos as u64, &block).await?;
            pos += n;
        }
        let filled = align_up(head.len() as u64);
        if k.size > filled {
            file.zero_fill(filled, k.size).await?;
        }
        file.fdatasync().await
    }
    .await;
    let _ = file.close().await;
    written.map_err(io_err(ctx))?;
    backend
        .rename(&copy, &k.path)
        .await
        .map_err(io_err(format!(
            "renaming {} to {}",
            copy.display(),
            k.path.display()
        )))?;
    sync_dir(backend, log_dir).await
}

/// Makes the cut `plan` describes (module doc, steps 1 to 4). Nothing is written if
/// the log already ends at the cut. On an error the cut is decided or not; either way
/// recovery leaves the old log or the cut one.
pub(crate) async fn cut<B: Backend>(backend: &B, log_dir: &Path, plan: &Plan) -> Result<()> {
    if plan.is_noop() {
        return Ok(());
    }
    let marker = log_dir.join(marker_name(plan.zxid));
    let f = backend
        .create(&marker)
        .await
        .map_err(io_err(format!("creating {}", marker.display())))?;
    let _ = f.close().await;
    sync_dir(backend, log_dir).await?;
    execute(backend, log_dir, plan).await?;
    backend
        .remove(&marker)
        .await
        .map_err(io_err(format!("removing {}", marker.display())))?;
    sync_dir(backend, log_dir).await
}

/// Finishes cuts a crash interrupted (row 14 of recovery's table): removes every
/// `.trunc` copy, then, if markers are left, redoes the cut after the lowest marked zxid
/// and removes the markers. Returns that zxid.
pub(crate) async fn finish_interrupted<B: Backend>(
    backend: &B,
    log_dir: &Path,
    on_damage: OnDamage,
) -> Result<Option<i64>> {
    let names = backend
        .list_dir(log_dir)
        .await
        .map_err(io_err(format!("listing {}", log_dir.display())))?;
    let mut markers = Vec::new();
    let mut dirty = false;
    for n in &names {
        let p = log_dir.join(n);
        if let Some(z) = parse_zxid_name(n, MARKER_PREFIX) {
            markers.push((z, p));
        } else if is_copy_name(n) {
            remove_file(backend, &p).await?;
            dirty = true;
        }
    }
    let Some(&(zxid, _)) = markers.iter().min() else {
        if dirty {
            sync_dir(backend, log_dir).await?;
        }
        return Ok(None);
    };
    let plan = plan(backend, log_dir, zxid, on_damage).await?;
    execute(backend, log_dir, &plan).await?;
    for (_, m) in &markers {
        remove_file(backend, m).await?;
    }
    sync_dir(backend, log_dir).await?;
    Ok(Some(zxid))
}
