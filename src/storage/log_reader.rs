//! Reading logged txns back while the log is appended to: the txns a leader sends a
//! learner in a DIFF when the learner is further behind than the proposals the leader
//! keeps in memory (ZooKeeper's `ZKDatabase.getProposalsFromTxnLog`).
//!
//! Two calls, meant to be used together:
//!
//! 1. [`oldest_complete_from`] gives `Z`: every txn after `Z` up to the end of the log is
//!    in the log on disk. A learner whose last zxid is below `Z` needs a SNAP.
//! 2. [`read_txns_after`] returns the logged txns in `(after, up_to]`, or an error when
//!    the log does not hold that range whole, so the caller sends a SNAP instead.
//!
//! # Reading beside the appends
//!
//! The reader opens its own handles on the segment files and reads them with
//! `read_at` in aligned chunks, from the start of a segment up to the frame that holds
//! `up_to` (frames are sequential, so a segment is read from its start, but never past
//! the end of the data: not the zero-filled rest of a 64 MiB segment). The caller
//! guarantees that `up_to` is durable (an `append_batch` that logged it returned Ok).
//! Why that makes reading safe while the same process appends:
//!
//! - Every byte of the frames up to the one holding `up_to` was written and synced
//!   before the call. The next append rewrites the block holding the end of the last
//!   frame with the same bytes (see `log`), so a read racing it sees those bytes either
//!   way.
//! - The reader interprets nothing after the frame holding `up_to`: the bytes past it
//!   may be a frame being written, zeros, or (after a power cut) a torn tail. It never
//!   opens a segment newer than the one holding `up_to`, which may be half made.
//! - Every frame it uses passes both checksums (header and payload), and every txn of
//!   the range must follow the one before it (`zxid_follows`).
//!
//! The calls must not run concurrently with [`TxnLog::truncate_after`] or
//! [`install_snapshot`](super::install_snapshot), which replace segment files (a leader
//! does neither). A purge meanwhile is fine: it removes whole old segments, and a range
//! that needed one is refused.
//!
//! [`TxnLog::truncate_after`]: super::TxnLog::truncate_after

use std::path::Path;

use super::backend::{align_down, align_up, Backend, StorageFile};
use super::log::{
    check_frame, continues, decode_frame, parse_segment_header, FrameAt, FRAME_HEADER_LEN,
    SEG_HEADER_LEN, SEG_PREFIX,
};
use super::recovery::list_numbered;
use super::{io_err, zxid_follows, Result, StorageError};
use crate::request::txn::{Txn, TxnHeader};

/// Bytes read from a segment at a time (more if one frame is larger).
const CHUNK: usize = 256 << 10;

/// Which zxid the log on disk is complete after: `Some(Z)` means every txn with a zxid
/// greater than `Z`, up to the end of the log, is in the log's segments (so
/// [`read_txns_after`]`(Z, up_to, ..)` can serve any durable `up_to`). `None` when the
/// log holds no segment (none yet, or all removed by a snapshot install) or only a
/// segment being created (no txn in it yet).
///
/// Precisely, `Z` is `F - 1`, where `F` is the first zxid of the oldest segment
/// `log.<F>`: the log names a segment after the first txn of the batch that opened it,
/// and the segment's checksummed header repeats `F` (checked here; a disagreement is
/// [`StorageError::Corrupt`]). Purge deletes whole segments from the oldest on (those
/// holding only txns older than the oldest kept snapshot), and truncation keeps a
/// segment's start, so the remaining segments hold every txn from `F` on, contiguously
/// (recovery checked it at startup, `append_batch` checks each batch). The txn logged
/// before `F` is not known: when `F` opens an epoch its predecessor may be any zxid of
/// an earlier epoch, and that txn may be in a purged segment. So `F - 1` is the lowest
/// value for which the claim holds in general: a learner at the previous epoch's last
/// zxid needs a SNAP once the segment holding that zxid is gone (ZooKeeper likewise
/// serves a DIFF from its txn log only if the log holds the learner's last zxid).
///
/// A purge may remove the oldest segment at any time; the answer describes the log at
/// the call, and [`read_txns_after`] checks again.
pub async fn oldest_complete_from<B: Backend>(backend: &B, log_dir: &Path) -> Result<Option<i64>> {
    // A purge between listing and opening: list again.
    for _ in 0..8 {
        let segs = list_numbered(backend, log_dir, SEG_PREFIX).await?;
        let Some((first, path)) = segs.first() else {
            return Ok(None);
        };
        let file = match backend.open(path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err(format!("opening {}", path.display()))(e)),
        };
        let head = file.read_at(0, SEG_HEADER_LEN).await;
        let _ = file.close().await;
        let head = head.map_err(io_err(format!("reading {}", path.display())))?;
        return match parse_segment_header(&head) {
            Some(z) if z == *first => Ok(Some(first.saturating_sub(1))),
            Some(z) => Err(StorageError::Corrupt(format!(
                "txn log {}: the header says first zxid {z:#x}, the name {first:#x}",
                path.display()
            ))),
            // The only segment, still being created: no txn is in it.
            None if segs.len() == 1 => Ok(None),
            None => Err(StorageError::Corrupt(format!(
                "txn log {}: bad segment header",
                path.display()
            ))),
        };
    }
    Err(StorageError::Invalid(format!(
        "the oldest segment of {} kept being removed while read",
        log_dir.display()
    )))
}

/// Every logged txn with `after < zxid <= up_to`, in zxid order, each frame's checksums
/// verified. `up_to` must be the zxid of a durable logged txn (normally
/// [`TxnLog::last_zxid`](super::TxnLog::last_zxid) read at the call): nothing after the
/// frame holding it is read, so appends may go on meanwhile (see the module doc).
/// `after == up_to` gives an empty result.
///
/// Errors instead of a short or wrong result, so that the caller falls back to a SNAP:
/// - [`StorageError::Invalid`] when the log does not hold the range whole: `after >
///   up_to`; the segment holding the txns right after `after` was purged (`after` is
///   below [`oldest_complete_from`]); `after` is not a logged txn and the first logged
///   txn after it is not `after + 1` (say, `after` is a txn of a losing epoch that the
///   log does not have, or the log starts after it); `up_to` is not a logged txn or is
///   past the end of the log; or the range holds more than `max_txns` txns.
/// - [`StorageError::Corrupt`] when a segment the range needs is damaged: a bad header,
///   a frame that fails its checksums or does not decode where data should be, or two
///   txns of the range that do not follow each other (a gap, e.g. a lost segment).
/// - [`StorageError::Io`] when a segment cannot be opened or read (a purge may remove
///   one between the listing and the open).
///
/// The first txn returned follows `after` with nothing possible in between: either the
/// log holds `after` itself and the next logged txn comes first, or the first is
/// `after + 1`. So a learner whose last txn is `after` gets exactly the history after it.
pub async fn read_txns_after<B: Backend>(
    backend: &B,
    log_dir: &Path,
    after: i64,
    up_to: i64,
    max_txns: usize,
) -> Result<Vec<(TxnHeader, Txn)>> {
    if after > up_to {
        return Err(StorageError::Invalid(format!(
            "cannot read the txns after zxid {after:#x} up to {up_to:#x}: a reversed range"
        )));
    }
    if after == up_to {
        return Ok(Vec::new());
    }
    // Within one epoch the range holds exactly `up_to - after` txns.
    if after >> 32 == up_to >> 32 && (up_to - after) as u64 > max_txns as u64 {
        return Err(too_many(max_txns, after, up_to));
    }
    let next = after + 1;
    let segs = list_numbered(backend, log_dir, SEG_PREFIX).await?;
    // The segment holding `after` (or starting right after it).
    let Some(start) = segs.iter().rposition(|(z, _)| *z <= next) else {
        return Err(StorageError::Invalid(match segs.first() {
            Some((z, _)) => format!(
                "the txns right after zxid {after:#x} are no longer logged: the oldest log \
                 segment starts at {z:#x}"
            ),
            None => format!("no txn after zxid {after:#x} is logged: the log is empty"),
        }));
    };
    let mut out: Vec<(TxnHeader, Txn)> = Vec::new();
    // The last logged txn at or before `after` seen so far.
    let mut below: Option<i64> = None;
    for (i, (name, path)) in segs.iter().enumerate().skip(start) {
        let newest = i + 1 == segs.len();
        let file = backend
            .open(path)
            .await
            .map_err(io_err(format!("opening {}", path.display())))?;
        let mut seg = SegmentReader {
            file,
            path,
            base: 0,
            buf: Vec::new(),
        };
        let done = seg
            .read_range(*name, after, up_to, max_txns, &mut below, &mut out, newest)
            .await;
        let _ = seg.file.close().await;
        if done? {
            return match out.last() {
                Some((h, _)) if h.zxid == up_to => Ok(out),
                last => Err(StorageError::Invalid(format!(
                    "zxid {up_to:#x} is not a logged txn (the log goes from {:#x} to a later \
                     txn)",
                    last.map_or(after, |(h, _)| h.zxid)
                ))),
            };
        }
    }
    let last = out.last().map(|(h, _)| h.zxid).or(below);
    Err(StorageError::Invalid(format!(
        "the log ends at zxid {}, before {up_to:#x}",
        last.map_or("(none)".to_string(), |z| format!("{z:#x}"))
    )))
}

fn too_many(max_txns: usize, after: i64, up_to: i64) -> StorageError {
    StorageError::Invalid(format!(
        "more than {max_txns} txns after zxid {after:#x} up to {up_to:#x}"
    ))
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// The payload length and first zxid of a frame header whose checksum holds.
fn frame_header(h: &[u8]) -> Option<(usize, i64)> {
    let h = h.get(..FRAME_HEADER_LEN)?;
    if crc32c::crc32c(&h[..20]) != be_u32(&h[20..24]) {
        return None;
    }
    let len = be_u32(&h[0..4]) as usize;
    (len > 0).then(|| {
        (
            len,
            i64::from_be_bytes(h[8..16].try_into().unwrap_or_default()),
        )
    })
}

/// One segment, read forward in aligned chunks.
struct SegmentReader<'a, F> {
    file: F,
    path: &'a Path,
    /// The file offset of `buf[0]`.
    base: u64,
    buf: Vec<u8>,
}

impl<F: StorageFile> SegmentReader<'_, F> {
    /// Makes `[off, off + len)` available in `buf`; false if the file ends before.
    async fn fill(&mut self, off: u64, len: usize) -> Result<bool> {
        let end = off + len as u64;
        let have = self.base + self.buf.len() as u64;
        if off >= self.base && end <= have {
            return Ok(true);
        }
        let from = align_down(off);
        let want = (align_up(end) - from).max(CHUNK as u64) as usize;
        self.buf = self
            .file
            .read_at(from, want)
            .await
            .map_err(io_err(format!("reading {} at {from}", self.path.display())))?;
        self.base = from;
        Ok(end <= from + self.buf.len() as u64)
    }

    /// `buf`'s index of file offset `off` (which `fill` made available).
    fn idx(&self, off: u64) -> usize {
        (off - self.base) as usize
    }

    /// The valid frame at `off` (its offsets index `buf` until the next `fill`), or
    /// None: zeros, the end of the file, or anything that fails the checksums.
    async fn frame_at(&mut self, off: u64) -> Result<Option<FrameAt>> {
        if !self.fill(off, FRAME_HEADER_LEN).await? {
            return Ok(None);
        }
        let Some((len, _)) = frame_header(&self.buf[self.idx(off)..]) else {
            return Ok(None);
        };
        if !self.fill(off, FRAME_HEADER_LEN + len).await? {
            return Ok(None);
        }
        Ok(check_frame(&self.buf, self.idx(off)))
    }

    /// The frame that continues the data ending at `off`: at `off`, or one written while
    /// the frame before it was in flight (`log::frame_after`: `OVERLAPS` set, at the
    /// next 4096 boundary, zeros between). Its offsets index `buf`; `.offset` there
    /// plus `self.base` is where it is in the file.
    async fn frame_after(&mut self, off: u64, prev_last: Option<i64>) -> Result<Option<FrameAt>> {
        if let Some(f) = self.frame_at(off).await? {
            return Ok(continues(&f, prev_last, false).then_some(f));
        }
        let next = align_up(off);
        if next == off || !self.fill(off, (next - off) as usize).await? {
            return Ok(None);
        }
        let (i, j) = (self.idx(off), self.idx(next));
        if self.buf[i..j].iter().any(|&b| b != 0) {
            return Ok(None);
        }
        Ok(self
            .frame_at(next)
            .await?
            .filter(|f| continues(f, prev_last, true)))
    }

    /// The first zxid of the frame at `off` if its header is already in `buf`.
    fn peek_first_zxid(&self, off: u64) -> Option<i64> {
        if off < self.base {
            return None;
        }
        frame_header(self.buf.get(self.idx(off)..)?).map(|(_, z)| z)
    }

    fn corrupt(&self, off: u64, what: String) -> StorageError {
        StorageError::Corrupt(format!(
            "txn log {} is damaged at offset {off}: {what}",
            self.path.display()
        ))
    }

    /// Reads the segment named `name`, adding the txns of `(after, up_to]` to `out`
    /// (more than `max_txns` is an error). `below` tracks the last txn at or before
    /// `after`. Ok(true) once a txn at or past `up_to` was seen.
    #[allow(clippy::too_many_arguments)]
    async fn read_range(
        &mut self,
        name: i64,
        after: i64,
        up_to: i64,
        max_txns: usize,
        below: &mut Option<i64>,
        out: &mut Vec<(TxnHeader, Txn)>,
        newest: bool,
    ) -> Result<bool> {
        let head_ok = self.fill(0, SEG_HEADER_LEN).await?;
        match parse_segment_header(&self.buf).filter(|_| head_ok) {
            Some(z) if z == name => {}
            Some(z) => {
                return Err(self.corrupt(
                    0,
                    format!("the header says first zxid {z:#x}, the name {name:#x}"),
                ))
            }
            None => return Err(self.corrupt(0, "bad segment header".into())),
        }
        let mut off = SEG_HEADER_LEN as u64;
        // The last txn of the frame before (None when it was skipped undecoded: the
        // frame after it then starts right at its end).
        let mut prev_last: Option<i64> = None;
        loop {
            let Some(f) = self.frame_after(off, prev_last).await? else {
                break;
            };
            let at = self.base + f.offset as u64;
            let end = self.base + f.end as u64;
            // A frame followed by one starting at or before `after` holds nothing of the
            // range, nor `after` itself: its txns need no decoding.
            if self.peek_first_zxid(end).is_some_and(|z| z <= after) {
                off = end;
                prev_last = None;
                continue;
            }
            let txns = decode_frame(&self.buf, &f).map_err(|m| self.corrupt(at, m))?;
            prev_last = txns.last().map(|(h, _)| h.zxid);
            for (h, t) in txns {
                let z = h.zxid;
                if z <= after {
                    *below = Some(z);
                    continue;
                }
                if z > up_to {
                    return Ok(true);
                }
                match out.last() {
                    None if *below != Some(after) && z != after + 1 => {
                        return Err(StorageError::Invalid(format!(
                            "zxid {after:#x} is not a logged txn: the log goes from {} to \
                             {z:#x}, so the txns right after it are not known",
                            below.map_or("its start".to_string(), |b| format!("{b:#x}"))
                        )));
                    }
                    Some((p, _)) if !(z > p.zxid && zxid_follows(p.zxid, z)) => {
                        return Err(self.corrupt(
                            at,
                            format!("gap in the log: zxid {z:#x} after {:#x}", p.zxid),
                        ));
                    }
                    _ => {}
                }
                if out.len() == max_txns {
                    return Err(too_many(max_txns, after, up_to));
                }
                out.push((h, t));
                if z == up_to {
                    return Ok(true);
                }
            }
            off = end;
        }
        // `off` is the end of this segment's data. In an older segment (closed, synced,
        // zero-filled after its last frame) anything but zeros there is damage. In the
        // newest segment the bytes there may be a frame being written: not looked at.
        if !newest && self.fill(off, FRAME_HEADER_LEN).await? {
            let i = self.idx(off);
            if self.buf[i..i + FRAME_HEADER_LEN].iter().any(|&b| b != 0) {
                return Err(self.corrupt(off, "not a valid frame".into()));
            }
        }
        Ok(false)
    }
}
