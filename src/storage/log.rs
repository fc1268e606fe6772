//! The txn log: segment files of checksummed batch frames, appended with one aligned
//! O_DIRECT write and one fdatasync per batch (group commit).
//!
//! # Segment files
//!
//! `log.<first zxid as 16 hex digits>` in the log dir, like ZooKeeper's, so sorting the
//! names sorts the log. Each segment is created at its full size (`prealloc_size`,
//! 64 MiB by default, or larger for one huge batch) by writing zeros, then synced and its
//! directory synced, before any batch goes in. Why zero-fill instead of fallocate or
//! ZooKeeper's sparse preallocation: an overwrite of already-written blocks needs no
//! block allocation or extent conversion at fdatasync time. Measured here (ext4 on a
//! virtual disk, 4 KiB write + fdatasync, p50/p99): zero-filled 151/278 us, fallocate'd
//! (unwritten extents) 212/623 us, plain append 209/359 us; fio: ~10k syncs/s
//! overwriting written blocks vs ~5k/s fallocate'd and ~6.4k/s sparse. The probe
//! `zero_fill_vs_fallocate_probe` (an ignored test in `conformance`; run it with
//! `cargo test --release --lib storage::conformance::zero_fill_vs_fallocate_probe --
//! --ignored --nocapture`) repeats the measurement through this module's backend; one run
//! on a busy shared machine: preparing 64 MiB took 46 ms zero-filled vs 0.5 ms
//! fallocate'd, then 2000 4 KiB write+fdatasync were p50/p99 258/765 us zero-filled vs
//! 306/920 us fallocate'd. The one-off 46 ms per 64 MiB segment buys every later sync.
//! It also means fdatasync never has
//! to write the file size, and a zero header marks the end of the data.
//!
//! ```text
//! segment header (24 bytes): "CRLG" | u32 version=1 | i64 first_zxid | u32 0 | u32 crc32c(previous 20 bytes)
//! frames, each starting 8-byte aligned, then zeros to the end of the file
//! ```
//!
//! # Frames
//!
//! One frame per batch:
//!
//! ```text
//! u32 payload_len | u32 OVERLAPS bit | count | i64 first_zxid | u32 crc32c(payload) | u32 crc32c(previous 20 bytes)
//! payload: count x (u32 len | txn encoded by txn_codec)
//! zero padding to a multiple of 8
//! ```
//!
//! The top bit of the count word is [`OVERLAPS`]: see "Appends in flight" below.
//!
//! Why a frame per batch rather than per txn: a batch is one write, and a power cut can
//! tear that write at any subset of its 512-byte sectors. With one frame per batch a torn
//! write is exactly one bad frame at the tail, so "a bad frame followed by a valid
//! frame" can only mean damage to data that was already acknowledged (the next batch is
//! written only after the previous fdatasync returned). With a frame per txn, surviving
//! sectors of the torn batch would look like valid records after a bad one. The header
//! has its own crc so a scan for valid frames past a bad one rejects garbage after
//! reading 24 bytes, and an all-zero header is invalid (its crc is not zero), so the
//! zero-filled rest of the segment ends the data.
//!
//! # Writes
//!
//! Writes are aligned to 4096: the block holding the end of the previous frame is
//! rewritten together with the new frame (we keep those bytes in memory). The rewrite
//! repeats the acknowledged bytes exactly, so even a torn rewrite leaves them intact:
//! every sector is either the old or the new version of the same bytes.
//!
//! # Appends in flight
//!
//! Up to [`MAX_APPENDS_IN_FLIGHT`] appends may be on their way to the disk at once
//! ([`TxnLog::start_append`], [`TxnLog::complete_append`]): with each append one
//! `RWF_DSYNC` write, the device takes several flushes in parallel (on this project's
//! virtual disk, 4 KiB durable writes: ~6,000/s one at a time, ~9,500/s two staggered,
//! ~14,000/s four; `appends_in_flight_probe` in `conformance`). An append is
//! acknowledged only once it and every append before it are durable
//! ([`TxnLog::complete_append`] takes them in order). Two writes in flight at once must
//! not share a block: the device may apply them in either order, and the older one's
//! zeros past its end would overwrite the newer frame's start. So a frame started while
//! another is in flight begins on the next 4096 boundary (zeros between) and carries
//! [`OVERLAPS`]. Readers follow a frame by the next one at its end or, failing that,
//! by an [`OVERLAPS`] frame at the next 4096 boundary with only zeros between
//! ([`frame_after`]).
//!
//! A power cut can then leave a torn frame followed by valid frames that were in flight
//! with it: none of them was acknowledged (the torn one was not durable). Hence the
//! rule that tells a torn tail from damage ([`damage_after`]): past the first spot that
//! is not a valid frame, at most `MAX_APPENDS_IN_FLIGHT - 1` valid frames may follow,
//! each with [`OVERLAPS`] set; any other valid frame there means acknowledged data was
//! damaged. Recovery zeroes such a tail (up to its last non-zero byte) like any torn
//! tail, so a stale frame cannot be taken for the continuation of a later append.
//!
//! # Failures
//!
//! ENOSPC (creating or filling a segment) -> [`StorageError::NoSpace`]: nothing of the
//! batch is written or acknowledged, the in-memory position is unchanged, the current
//! segment stays open, and a later `append_batch` goes on from the same place. Segments
//! are preallocated, so a full disk only stops batches that need a roll-over (and the
//! rare frame write that still needs blocks): batches that fit in the current segment
//! keep going. After a failed segment creation, appends that need a new segment fail at
//! once without touching the disk, and creation is tried again at most every
//! [`NO_SPACE_RETRY`] (a ready spare is always used), so a full disk is not hammered
//! with 64 MiB of zeros per batch; [`TxnLog::out_of_space`] tells whether the log is in
//! that state. The server answers the writes of a refused batch with THROTTLEDOP and
//! stays up (see `server::commit`); writes resume by themselves once space returns.
//! EIO on fdatasync (or on a log write, or any error after which what reached the disk
//! is unknown) -> [`StorageError::Fatal`] and the log refuses all further appends: after
//! a failed fsync Linux may have dropped the dirty pages and a retry could succeed
//! without the data ever reaching the disk. The server stops on it.
//!
//! # Cutting and restarting the log (ZAB)
//!
//! [`TxnLog::truncate_after`] (ZAB's TRUNC) cuts the log after a zxid through
//! `storage::truncate`, which owns the crash-safe order; `storage::install` restarts it
//! after a snapshot received from a leader. Either way the next append continues after
//! the zxid given, under the usual rule ([`zxid_follows`]: the next counter, or any
//! zxid of a later epoch). An error in the middle of either leaves the log refusing
//! everything (as after EIO): what is on disk is then for recovery to settle.

use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use hdrhistogram::Histogram;

use super::backend::{align_down, align_up, Backend, StorageFile, SyncedWriteError, ALIGN};
use super::snapshot::SNAP_PREFIX;
use super::truncate::{self, OnDamage};
use super::txn_codec::{decode_txn, encode_txn};
use super::{zxid_follows, zxid_hex, Result, StorageError};
use crate::request::txn::{Txn, TxnHeader};

pub const SEG_PREFIX: &str = "log.";
pub const SEG_MAGIC: [u8; 4] = *b"CRLG";
pub const SEG_VERSION: u32 = 1;
pub const SEG_HEADER_LEN: usize = 24;
pub const FRAME_HEADER_LEN: usize = 24;
/// ZooKeeper's default `preAllocSize`.
pub const DEFAULT_PREALLOC: u64 = 64 << 20;
/// The top bit of a frame's count word: the frame was written while an earlier append
/// was still in flight, so it starts on a 4096 boundary (module doc, "Appends in
/// flight").
pub const OVERLAPS: u32 = 1 << 31;
/// The most appends in flight at once, counted from the oldest not yet completed to the
/// newest. Recovery's torn-tail rule relies on it: a writer must never exceed it.
pub const MAX_APPENDS_IN_FLIGHT: usize = 4;

/// Where and how the log writes.
#[derive(Debug, Clone)]
pub struct LogConfig {
    pub dir: PathBuf,
    /// Size each new segment is zero-filled to (rounded up to 4096).
    pub prealloc_size: u64,
    /// ZooKeeper's `forceSync`: false skips the per-batch fdatasync (not durable).
    pub force_sync: bool,
}

impl LogConfig {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        LogConfig {
            dir: dir.into(),
            prealloc_size: DEFAULT_PREALLOC,
            force_sync: true,
        }
    }
}

pub fn segment_name(first_zxid: i64) -> String {
    format!("{SEG_PREFIX}{}", zxid_hex(first_zxid))
}

pub(crate) fn encode_segment_header(first_zxid: i64) -> [u8; SEG_HEADER_LEN] {
    let mut h = [0u8; SEG_HEADER_LEN];
    h[0..4].copy_from_slice(&SEG_MAGIC);
    h[4..8].copy_from_slice(&SEG_VERSION.to_be_bytes());
    h[8..16].copy_from_slice(&first_zxid.to_be_bytes());
    let crc = crc32c::crc32c(&h[..20]);
    h[20..24].copy_from_slice(&crc.to_be_bytes());
    h
}

/// The first zxid from a valid segment header.
pub(crate) fn parse_segment_header(buf: &[u8]) -> Option<i64> {
    let h = buf.get(..SEG_HEADER_LEN)?;
    if h[0..4] != SEG_MAGIC || be_u32(&h[4..8]) != SEG_VERSION {
        return None;
    }
    if crc32c::crc32c(&h[..20]) != be_u32(&h[20..24]) {
        return None;
    }
    Some(i64::from_be_bytes(h[8..16].try_into().ok()?))
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Encodes a batch as one frame (padded to 8 bytes).
pub(crate) fn encode_frame(batch: &[(TxnHeader, Txn)]) -> Vec<u8> {
    let mut f = FrameBuilder::default();
    for (h, t) in batch {
        f.push(h, t);
    }
    let mut out = Vec::with_capacity(f.frame_len());
    f.write_frame(&mut out, false);
    out
}

/// One batch being encoded as a log frame, txn by txn: a caller can encode the next
/// batch while the log writes the one before, so the disk does not wait for the
/// encoding. [`TxnLog::append_frame`] logs it.
#[derive(Default)]
pub struct FrameBuilder {
    /// count x (u32 len | txn)
    payload: BytesMut,
    count: u32,
    first_zxid: i64,
    last_zxid: i64,
    /// The first txn whose zxid did not follow the one before it in the batch.
    out_of_order: Option<(i64, i64)>,
}

impl FrameBuilder {
    pub fn push(&mut self, h: &TxnHeader, t: &Txn) {
        if self.count == 0 {
            self.first_zxid = h.zxid;
        } else if self.out_of_order.is_none() && !zxid_follows(self.last_zxid, h.zxid) {
            self.out_of_order = Some((self.last_zxid, h.zxid));
        }
        self.last_zxid = h.zxid;
        self.count += 1;
        let at = self.payload.len();
        self.payload.extend_from_slice(&[0; 4]);
        encode_txn(h, t, &mut self.payload);
        let len = (self.payload.len() - at - 4) as u32;
        self.payload[at..at + 4].copy_from_slice(&len.to_be_bytes());
    }

    /// Txns in the batch.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes of the frame, padding included.
    fn frame_len(&self) -> usize {
        (FRAME_HEADER_LEN + self.payload.len()).div_ceil(8) * 8
    }

    /// Appends the frame (header, payload, padding) to `out`; `overlaps`: written while
    /// an earlier append is in flight ([`OVERLAPS`]).
    fn write_frame(&self, out: &mut Vec<u8>, overlaps: bool) {
        let start = out.len();
        out.extend_from_slice(&(self.payload.len() as u32).to_be_bytes());
        let count = if overlaps {
            self.count | OVERLAPS
        } else {
            self.count
        };
        out.extend_from_slice(&count.to_be_bytes());
        out.extend_from_slice(&self.first_zxid.to_be_bytes());
        out.extend_from_slice(&crc32c::crc32c(&self.payload).to_be_bytes());
        let hcrc = crc32c::crc32c(&out[start..start + 20]);
        out.extend_from_slice(&hcrc.to_be_bytes());
        out.extend_from_slice(&self.payload);
        out.resize(start + self.frame_len(), 0);
    }
}

/// A frame whose header and payload checksums hold.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrameAt {
    pub offset: usize,
    pub first_zxid: i64,
    pub count: u32,
    /// Written while an earlier append was in flight ([`OVERLAPS`]).
    pub overlaps: bool,
    /// Offset just past the frame's padding.
    pub end: usize,
    payload: (usize, usize),
}

/// Checks the frame at `off`; None if it is not a valid frame (zeros, torn, garbage).
pub(crate) fn check_frame(buf: &[u8], off: usize) -> Option<FrameAt> {
    let h = buf.get(off..off.checked_add(FRAME_HEADER_LEN)?)?;
    if crc32c::crc32c(&h[..20]) != be_u32(&h[20..24]) {
        return None;
    }
    let len = be_u32(&h[0..4]) as usize;
    let word = be_u32(&h[4..8]);
    let (count, overlaps) = (word & !OVERLAPS, word & OVERLAPS != 0);
    if len == 0 || count == 0 || count as usize > len / 4 {
        return None;
    }
    // An overlapping frame always starts a block (module doc).
    if overlaps && !off.is_multiple_of(ALIGN) {
        return None;
    }
    let start = off + FRAME_HEADER_LEN;
    let end = start.checked_add(len)?;
    let payload = buf.get(start..end)?;
    if crc32c::crc32c(payload) != be_u32(&h[16..20]) {
        return None;
    }
    Some(FrameAt {
        offset: off,
        first_zxid: i64::from_be_bytes(h[8..16].try_into().ok()?),
        count,
        overlaps,
        end: end.div_ceil(8) * 8,
        payload: (start, end),
    })
}

/// The fewest payload bytes one txn takes: its length, the header (8 + 4 + 8 + 8 + 4)
/// and the body's kind and smallest field (4 + 4).
const MIN_TXN_LEN: usize = 4 + 32 + 8;

/// Decodes a checked frame's txns. An error here means the bytes were written wrong
/// (their checksum holds): corruption, never a torn write.
pub(crate) fn decode_frame(
    buf: &[u8],
    f: &FrameAt,
) -> std::result::Result<Vec<(TxnHeader, Txn)>, String> {
    let mut p = &buf[f.payload.0..f.payload.1];
    // A txn takes at least MIN_TXN_LEN bytes of payload: reserve by what can be there,
    // not by the count (which a damaged frame with good checksums could make ~len/4).
    let mut out = Vec::with_capacity((f.count as usize).min(p.len() / MIN_TXN_LEN));
    for i in 0..f.count {
        if p.len() < 4 {
            return Err(format!("txn {i} of the frame is truncated"));
        }
        let len = be_u32(&p[..4]) as usize;
        let body = p
            .get(4..4usize.saturating_add(len))
            .ok_or_else(|| format!("txn {i} of the frame overruns it"))?;
        let (h, t) = decode_txn(body).map_err(|e| format!("txn {i} does not decode: {e}"))?;
        let want = if i == 0 { Some(f.first_zxid) } else { None };
        if let Some(w) = want {
            if h.zxid != w {
                return Err(format!(
                    "first txn has zxid {:#x}, frame says {w:#x}",
                    h.zxid
                ));
            }
        }
        if let Some((prev, _)) = out.last() {
            let prev: &TxnHeader = prev;
            if !zxid_follows(prev.zxid, h.zxid) {
                return Err(format!(
                    "zxid {:#x} does not follow {:#x} inside the frame",
                    h.zxid, prev.zxid
                ));
            }
        }
        out.push((h, t));
        p = &p[4 + len..];
    }
    if !p.is_empty() {
        return Err("trailing bytes in frame payload".into());
    }
    Ok(out)
}

/// The first valid frame at or after `from` (8-byte steps), for telling a torn tail
/// (nothing valid after the bad spot) from damage in the middle of the log.
pub(crate) fn find_valid_frame_after(buf: &[u8], from: usize) -> Option<FrameAt> {
    let mut off = from.div_ceil(8) * 8;
    while off + FRAME_HEADER_LEN <= buf.len() {
        // Fast path over the zero-filled rest of a segment.
        if buf[off..off + 8] == [0u8; 8] && buf[off + 8..off + 16] == [0u8; 8] {
            off += 8;
            continue;
        }
        if let Some(f) = check_frame(buf, off) {
            return Some(f);
        }
        off += 8;
    }
    None
}

/// The frame that continues the data ending at `end` (the end of a frame, or of the
/// segment header) after the txn `prev_last` (None: not known): one right there, or else
/// one written while the frame before it was in flight: [`OVERLAPS`] set, at the next
/// 4096 boundary, only zeros between, and holding exactly the next zxid. An
/// [`OVERLAPS`] frame always continues the epoch of the frame before it (a batch of a
/// new epoch has nothing in flight before it), so `prev_last + 1` is the only zxid it
/// can start with; one that does not is past a lost frame (a torn tail) and ends the
/// data here.
pub(crate) fn frame_after(buf: &[u8], end: usize, prev_last: Option<i64>) -> Option<FrameAt> {
    if let Some(f) = check_frame(buf, end) {
        return continues(&f, prev_last, false).then_some(f);
    }
    let next = align_up(end as u64) as usize;
    if next == end || buf.get(end..next)?.iter().any(|&b| b != 0) {
        return None;
    }
    check_frame(buf, next).filter(|f| continues(f, prev_last, true))
}

/// Whether the valid frame `f`, found right at the end of the data (`past_gap` false)
/// or at the next block boundary past zeros (true), continues the data after the txn
/// `prev_last` ([`frame_after`]'s rule, shared with the DIFF reader).
pub(crate) fn continues(f: &FrameAt, prev_last: Option<i64>, past_gap: bool) -> bool {
    let follows = prev_last.map(|p| f.first_zxid == p.wrapping_add(1));
    if past_gap {
        f.overlaps && follows == Some(true)
    } else {
        !f.overlaps || follows != Some(false)
    }
}

/// Past `off`, the first spot that is not a valid frame (no [`frame_after`] the data):
/// a valid frame showing that acknowledged data was damaged, or None for a torn tail.
/// A torn frame may be followed by at most `MAX_APPENDS_IN_FLIGHT - 1` frames that were
/// in flight with it ([`OVERLAPS`] set); none of them was acknowledged, as an append is
/// acknowledged only after every append before it is durable.
pub(crate) fn damage_after(buf: &[u8], off: usize) -> Option<FrameAt> {
    let mut from = off + 8;
    let mut in_flight_with_it = MAX_APPENDS_IN_FLIGHT - 1;
    while let Some(v) = find_valid_frame_after(buf, from) {
        if !v.overlaps || in_flight_with_it == 0 {
            return Some(v);
        }
        in_flight_with_it -= 1;
        from = v.end;
    }
    None
}

/// The segment the log appends to.
struct OpenSegment<F> {
    /// Shared with the appends in flight ([`AppendIo`]).
    file: Rc<F>,
    path: PathBuf,
    size: u64,
    /// End of the last frame written.
    pos: u64,
    /// The bytes of `[align_down(pos), pos)`: rewritten with the next frame.
    tail: Vec<u8>,
}

/// The append side of the txn log. Obtained from [`super::recover`], which positions it
/// after the last valid frame.
pub struct TxnLog<B: Backend> {
    backend: B,
    cfg: LogConfig,
    seg: Option<OpenSegment<B::File>>,
    /// The last zxid known durable (appends completed in order).
    last_zxid: i64,
    /// The last zxid handed to the disk (`last_zxid` plus the appends in flight).
    started_zxid: i64,
    /// Appends started and not yet completed (module doc, "Appends in flight").
    in_flight: usize,
    /// The zxid of the state the log's txns start after: the recovered snapshot's (0
    /// without one), or an installed snapshot's. The log cannot be cut below it.
    base_zxid: i64,
    /// Where recovery found the snapshots: a cut below one of them is refused.
    snap_dir: Option<PathBuf>,
    /// Write + fdatasync time of each append (see `fsync_histogram`).
    fsync_us: Histogram<u64>,
    fatal: Option<String>,
    /// The next segment, zero-filled ahead of need by `prepare_spare`, so a roll-over
    /// renames a ready file instead of zero-filling 64 MiB on the commit path.
    spare: Option<Spare<B::File>>,
    /// When making a segment last failed with ENOSPC; None once one was made.
    no_space_at: Option<Instant>,
    no_space_retry: Duration,
    /// A batch's fdatasync slower than this is logged as a warning (ZooKeeper's
    /// `fsync.warningthresholdms`, 1000 ms by default).
    fsync_warning: Duration,
}

/// How long the log waits after a segment creation failed for lack of space before it
/// tries again (appends needing a roll-over fail at once meanwhile).
pub const NO_SPACE_RETRY: Duration = Duration::from_millis(500);

/// The next segment file, zero-filled and synced ahead of need by [`prepare_spare`].
pub struct Spare<F> {
    file: F,
    path: PathBuf,
    size: u64,
}

/// Spare segments are `log.spare.<n>`: no zxid in the name, so recovery and purge never
/// take one for a segment, and each is a file of its own.
pub const SPARE_PREFIX: &str = "log.spare.";

/// Makes spare segment number `n` of `size` bytes in `dir`: created, zero-filled,
/// synced. Meant to run in its own task beside the appends (the writes proceed
/// concurrently), so a roll-over renames a ready file instead of zero-filling 64 MiB
/// while writes wait.
pub async fn prepare_spare<B: Backend>(
    backend: &B,
    dir: &Path,
    n: u64,
    size: u64,
) -> io::Result<Spare<B::File>> {
    let path = dir.join(format!("{SPARE_PREFIX}{n}"));
    let file = backend.create(&path).await?;
    let done = async {
        file.zero_fill(0, size).await?;
        file.fdatasync().await
    }
    .await;
    match done {
        Ok(()) => Ok(Spare { file, path, size }),
        Err(e) => {
            let _ = file.close().await;
            let _ = backend.remove(&path).await;
            Err(e)
        }
    }
}

fn is_enospc(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOSPC) || e.kind() == io::ErrorKind::StorageFull
}

impl<B: Backend> TxnLog<B> {
    /// A log appending after `last_zxid`; `resume` is the newest segment to continue
    /// (its path, size, end of data and the bytes of its last partial block).
    pub(crate) async fn resume(
        backend: B,
        cfg: LogConfig,
        last_zxid: i64,
        base_zxid: i64,
        snap_dir: Option<PathBuf>,
        resume: Option<(PathBuf, u64, u64, Vec<u8>)>,
    ) -> Result<Self> {
        let seg = match resume {
            None => None,
            Some((path, size, pos, tail)) => {
                let file = backend
                    .open(&path)
                    .await
                    .map_err(super::io_err(format!("opening {}", path.display())))?;
                Some(OpenSegment {
                    file: Rc::new(file),
                    path,
                    size,
                    pos,
                    tail,
                })
            }
        };
        Ok(TxnLog {
            spare: None,
            backend,
            cfg,
            seg,
            last_zxid,
            started_zxid: last_zxid,
            in_flight: 0,
            base_zxid,
            snap_dir,
            fsync_us: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                .expect("static histogram bounds are valid"),
            fatal: None,
            no_space_at: None,
            no_space_retry: NO_SPACE_RETRY,
            fsync_warning: Duration::from_millis(1000),
        })
    }

    /// The zxid of the last durable txn (or of the snapshot if the log holds nothing
    /// newer).
    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    /// The zxid of the snapshot the log's txns start after (at recovery, or the last
    /// installed one): the lowest zxid [`Self::truncate_after`] accepts.
    pub fn base_zxid(&self) -> i64 {
        self.base_zxid
    }

    /// Sets `fsync.warningthresholdms`: slower fdatasyncs are logged as warnings.
    pub fn set_fsync_warning_threshold(&mut self, threshold: Duration) {
        self.fsync_warning = threshold;
    }

    /// Durability latencies of appends, in microseconds, from `start_append` to the
    /// completion of its write: with the glommio backend one `RWF_DSYNC` write, so the
    /// write and its flush together (the flush alone cannot be timed apart from it).
    pub fn fsync_histogram(&self) -> &Histogram<u64> {
        &self.fsync_us
    }

    /// The message of the fatal error that stopped the log, if any.
    pub fn failed(&self) -> Option<&str> {
        self.fatal.as_deref()
    }

    /// The segment being appended to.
    pub fn current_segment(&self) -> Option<&Path> {
        self.seg.as_ref().map(|s| s.path.as_path())
    }

    pub fn config(&self) -> &LogConfig {
        &self.cfg
    }

    pub(crate) fn poison(&mut self, msg: String) -> StorageError {
        self.fatal = Some(msg.clone());
        StorageError::Fatal(msg)
    }

    /// Err(Fatal) once the log has refused further work.
    pub(crate) fn check_usable(&self) -> Result<()> {
        match &self.fatal {
            Some(m) => Err(StorageError::Fatal(m.clone())),
            None => Ok(()),
        }
    }

    /// Closes the segment being appended to (before its files are replaced or removed).
    pub(crate) async fn close_segment(&mut self) {
        if let Some(old) = self.seg.take() {
            close_shared(old.file).await;
        }
    }

    /// After a snapshot at `zxid` was installed and every segment removed: the next
    /// append starts a new segment and must follow `zxid`.
    pub(crate) fn restart_after(&mut self, zxid: i64) {
        assert_eq!(
            self.in_flight, 0,
            "the log restarted under appends in flight"
        );
        self.seg = None;
        self.last_zxid = zxid;
        self.started_zxid = zxid;
        self.base_zxid = zxid;
    }

    /// Err(Invalid) while appends are in flight: cutting, restarting or closing the log
    /// waits for them.
    fn check_quiet(&self, what: &str) -> Result<()> {
        if self.in_flight > 0 {
            return Err(StorageError::Invalid(format!(
                "cannot {what} with {} appends in flight",
                self.in_flight
            )));
        }
        Ok(())
    }

    /// ZAB's TRUNC: afterwards the log holds exactly its txns up to `zxid`, durably, and
    /// the next append continues after `zxid`.
    ///
    /// `zxid` must be a logged txn or [`Self::base_zxid`] (then every txn after the
    /// snapshot goes, and the log may end up empty), and at most [`Self::last_zxid`]
    /// (equal: nothing to do); else [`StorageError::Invalid`] and nothing changes. A
    /// snapshot newer than `zxid` in the snapshot dir recovery read is refused the same
    /// way: recovery loads the newest snapshot, so one past the cut would bring the cut
    /// txns back (ZOOKEEPER-1549's dirty snapshot). A server must not snapshot txns that
    /// are not committed (as recovery applies a follower's whole log, uncommitted
    /// proposals included, that means no snapshot between a restart and the sync).
    ///
    /// Crash safety (see `storage::truncate`): until the cut is decided on disk a power
    /// cut leaves the old log; after, recovery finishes the cut. A failure once the files
    /// are being changed returns [`StorageError::Fatal`] and the log refuses all further
    /// work: the server must stop and let recovery settle it.
    pub async fn truncate_after(&mut self, zxid: i64) -> Result<()> {
        self.check_usable()?;
        self.check_quiet("cut the log")?;
        if zxid > self.last_zxid {
            return Err(StorageError::Invalid(format!(
                "cannot cut the log after zxid {zxid:#x}: it ends at {:#x}",
                self.last_zxid
            )));
        }
        if zxid < self.base_zxid {
            return Err(StorageError::Invalid(format!(
                "cannot cut the log after zxid {zxid:#x}: the state starts from a snapshot \
                 at {:#x}",
                self.base_zxid
            )));
        }
        if zxid == self.last_zxid {
            return Ok(());
        }
        if let Some(dir) = &self.snap_dir {
            let snaps = super::recovery::list_numbered(&self.backend, dir, SNAP_PREFIX).await?;
            if let Some((s, p)) = snaps.last().filter(|(s, _)| *s > zxid) {
                return Err(StorageError::Invalid(format!(
                    "cannot cut the log after zxid {zxid:#x}: snapshot {} holds the state at \
                     {s:#x}, past the cut",
                    p.display()
                )));
            }
        }
        let plan = truncate::plan(&self.backend, &self.cfg.dir, zxid, OnDamage::Refuse).await?;
        let resume_here = plan.last_kept == Some(zxid);
        if !resume_here && zxid != self.base_zxid {
            return Err(StorageError::Invalid(format!(
                "cannot cut the log after zxid {zxid:#x}: no such txn is logged (the last \
                 one before it is {})",
                plan.last_kept
                    .map_or("none".to_string(), |z| format!("{z:#x}"))
            )));
        }
        // From here on the files change.
        self.close_segment().await;
        if let Err(e) = truncate::cut(&self.backend, &self.cfg.dir, &plan).await {
            return Err(self.poison(format!("cutting the log after zxid {zxid:#x}: {e}")));
        }
        self.last_zxid = zxid;
        self.started_zxid = zxid;
        // A log that now ends before the snapshot is not continued (as at recovery,
        // row 12): the next append starts a new segment.
        if let (true, Some(k)) = (resume_here, plan.keep) {
            match self.backend.open(&k.path).await {
                Ok(file) => {
                    self.seg = Some(OpenSegment {
                        file: Rc::new(file),
                        path: k.path,
                        size: k.size,
                        pos: k.end,
                        tail: k.tail,
                    })
                }
                Err(e) => {
                    let msg = format!("opening {} after the cut: {e}", k.path.display());
                    return Err(self.poison(msg));
                }
            }
        }
        Ok(())
    }

    /// Logs a batch: one frame, one aligned write, one fdatasync (if `force_sync`).
    /// When it returns Ok every txn of the batch is durable. Zxids must continue the
    /// log (`zxid_follows`), else [`StorageError::Invalid`] and nothing is written.
    pub async fn append_batch(&mut self, batch: &[(TxnHeader, Txn)]) -> Result<()> {
        let mut frame = FrameBuilder::default();
        for (h, t) in batch {
            frame.push(h, t);
        }
        self.append_frame(&frame).await
    }

    /// As [`TxnLog::append_batch`], for a batch encoded beforehand.
    pub async fn append_frame(&mut self, frame: &FrameBuilder) -> Result<()> {
        self.check_quiet("append and wait")?;
        if frame.is_empty() {
            return self.check_usable();
        }
        let io = self.start_append(frame).await?;
        let done = io.run().await;
        self.complete_append(done)
    }

    /// Whether [`Self::start_append`] can take `frame` now: nothing in flight, or fewer
    /// than `MAX_APPENDS_IN_FLIGHT` and room for it in the current segment (a roll-over
    /// waits until nothing is in flight, so a torn frame is always in the newest
    /// segment).
    pub fn can_start(&self, frame: &FrameBuilder) -> bool {
        self.in_flight == 0
            || (self.in_flight < MAX_APPENDS_IN_FLIGHT
                && self.fatal.is_none()
                && self.room_at(frame.frame_len() as u64).is_some())
    }

    /// Where the next frame of `need` bytes goes in the current segment (after the data,
    /// or at the next block boundary while appends are in flight), if it fits there.
    fn room_at(&self, need: u64) -> Option<u64> {
        let s = self.seg.as_ref()?;
        let at = if self.in_flight > 0 {
            align_up(s.pos)
        } else {
            s.pos
        };
        (at + need <= s.size).then_some(at)
    }

    /// Appends started and not yet completed.
    pub fn appends_in_flight(&self) -> usize {
        self.in_flight
    }

    /// Hands a batch (one frame) to the disk: returns the write to run
    /// ([`AppendIo::run`]); its outcome goes to [`Self::complete_append`], in the order
    /// the appends were started, and only an Ok from there means the batch is durable.
    /// Zxids must continue the log (`zxid_follows`), else [`StorageError::Invalid`] and
    /// nothing is written. A frame started while others are in flight starts the next
    /// block and carries [`OVERLAPS`] (module doc); callers check [`Self::can_start`]
    /// first (a roll-over with appends in flight is refused as Invalid).
    pub async fn start_append(&mut self, frame: &FrameBuilder) -> Result<AppendIo<B::File>> {
        self.check_usable()?;
        if frame.is_empty() {
            return Err(StorageError::Invalid("an empty batch has no frame".into()));
        }
        let (prev, zxid) = frame
            .out_of_order
            .unwrap_or((self.started_zxid, frame.first_zxid));
        if !zxid_follows(prev, zxid) {
            return Err(StorageError::Invalid(format!(
                "zxid {zxid:#x} does not follow {prev:#x}"
            )));
        }
        let overlaps = self.in_flight > 0;
        assert!(
            self.in_flight < MAX_APPENDS_IN_FLIGHT,
            "more appends in flight than recovery allows for"
        );
        let need = frame.frame_len() as u64;
        let at = match self.room_at(need) {
            Some(at) => at,
            None => {
                self.check_quiet("start a new segment")?;
                self.roll(frame.first_zxid, need).await?;
                self.room_at(need).ok_or_else(|| {
                    StorageError::Invalid("no room for the frame after a roll-over".into())
                })?
            }
        };
        let Some(seg) = self.seg.as_mut() else {
            return Err(StorageError::Invalid("no open segment after roll".into()));
        };
        let (start, mut buf) = if overlaps {
            (at, Vec::with_capacity(align_up(need) as usize))
        } else {
            let start = align_down(at);
            let mut buf = Vec::with_capacity((align_up(at + need) - start) as usize);
            buf.extend_from_slice(&seg.tail);
            (start, buf)
        };
        frame.write_frame(&mut buf, overlaps);
        buf.resize(align_up(buf.len() as u64) as usize, 0);
        let undo = Undo {
            pos: seg.pos,
            tail: std::mem::take(&mut seg.tail),
            started_zxid: self.started_zxid,
            overlaps,
        };
        let new_pos = at + need;
        let tail_start = (align_down(new_pos) - start) as usize;
        seg.tail = buf[tail_start..(new_pos - start) as usize].to_vec();
        seg.pos = new_pos;
        self.started_zxid = frame.last_zxid;
        self.in_flight += 1;
        Ok(AppendIo {
            file: seg.file.clone(),
            start,
            buf,
            sync: self.cfg.force_sync,
            done: AppendDone {
                result: Ok(()),
                started: Instant::now(),
                start,
                last_zxid: frame.last_zxid,
                undo,
            },
        })
    }

    /// Takes the outcome of the oldest append in flight. Ok: it is durable (and with it
    /// every append started before it). ENOSPC on an append that nothing overlapped
    /// ([`StorageError::NoSpace`]): nothing of it counts, the log goes on from where it
    /// was before it. Any other failure is fatal and sticky: with appends overlapping,
    /// what reached the disk is for recovery to settle.
    pub fn complete_append(&mut self, done: AppendDone) -> Result<()> {
        assert!(
            self.in_flight > 0,
            "an append completed that was never started"
        );
        self.in_flight -= 1;
        self.check_usable()?;
        // Only named in messages: not copied per append.
        let path = || {
            self.seg
                .as_ref()
                .map_or_else(|| PathBuf::from("?"), |s| s.path.clone())
        };
        let start = done.start;
        match done.result {
            Ok(()) => {}
            Err(SyncedWriteError::Write(e)) => {
                let msg = format!("writing {} at {start}: {e}", path().display());
                if is_enospc(&e) && !done.undo.overlaps && self.in_flight == 0 {
                    if let Some(seg) = self.seg.as_mut() {
                        seg.pos = done.undo.pos;
                        seg.tail = done.undo.tail;
                    }
                    self.started_zxid = done.undo.started_zxid;
                    return Err(StorageError::NoSpace(msg));
                }
                return Err(self.poison(msg));
            }
            Err(SyncedWriteError::Sync(e)) => {
                let msg = format!("fdatasync of {}: {e}", path().display());
                return Err(self.poison(msg));
            }
        }
        if self.cfg.force_sync {
            let us = done.started.elapsed().as_micros().clamp(1, 3_600_000_000) as u64;
            let _ = self.fsync_us.record(us);
            if Duration::from_micros(us) > self.fsync_warning {
                // ZooKeeper's FileTxnLog words it so; operators grep for it.
                tracing::warn!(
                    ms = us / 1000,
                    file = %path().display(),
                    "fsync-ing the write ahead log took {}ms which will adversely effect operation latency",
                    us / 1000
                );
            }
        }
        self.last_zxid = done.last_zxid;
        Ok(())
    }

    /// Starts a new segment named by `first_zxid`, zero-filled, synced, its name synced
    /// (or a prepared spare renamed to it). The current segment stays open until the new
    /// one is ready, so when the disk is full, batches that still fit in it go on.
    async fn roll(&mut self, first_zxid: i64, need: u64) -> Result<()> {
        let size = align_up(
            self.cfg
                .prealloc_size
                .max(SEG_HEADER_LEN as u64 + need)
                .max(ALIGN as u64),
        );
        let path = self.cfg.dir.join(segment_name(first_zxid));
        let file = match self.take_spare(&path, first_zxid, size).await? {
            Some(file) => file,
            None => {
                if let Some(at) = self.no_space_at {
                    // The disk was full moments ago: fail fast instead of writing up
                    // to 64 MiB of zeros into it again for every batch.
                    if at.elapsed() < self.no_space_retry {
                        return Err(StorageError::NoSpace(format!(
                            "no room for a new log segment in {} (next try in under {:?})",
                            self.cfg.dir.display(),
                            self.no_space_retry
                        )));
                    }
                }
                match self.create_segment(&path, first_zxid, size).await {
                    Ok(file) => file,
                    Err((e, synced)) => {
                        // Leave no half-made segment behind (recovery would also drop it).
                        let _ = self.backend.remove(&path).await;
                        let _ = self.backend.sync_dir(&self.cfg.dir).await;
                        let msg = format!("creating {}: {e}", path.display());
                        return Err(if is_enospc(&e) {
                            self.no_space_at = Some(Instant::now());
                            StorageError::NoSpace(msg)
                        } else if synced {
                            self.poison(msg)
                        } else {
                            StorageError::Io {
                                context: msg,
                                source: e,
                            }
                        });
                    }
                }
            }
        };
        self.no_space_at = None;
        if let Some(old) = self.seg.take() {
            // Without per-batch syncs the old segment's frames must be on disk before
            // any goes into the new one: recovery refuses a gap before a later segment.
            if !self.cfg.force_sync {
                if let Err(e) = old.file.fdatasync().await {
                    let _ = file.close().await;
                    let msg = format!("fdatasync of {}: {e}", old.path.display());
                    return Err(self.poison(msg));
                }
            }
            close_shared(old.file).await;
        }
        self.seg = Some(OpenSegment {
            file: Rc::new(file),
            path,
            size,
            pos: SEG_HEADER_LEN as u64,
            tail: encode_segment_header(first_zxid).to_vec(),
        });
        Ok(())
    }

    /// Whether the last try to make a new segment found the disk full (and none has
    /// been made since): appends that need a roll-over fail with
    /// [`StorageError::NoSpace`] at once, and segment creation is retried at most every
    /// [`Self::set_no_space_retry`] (500 ms by default).
    pub fn out_of_space(&self) -> bool {
        self.no_space_at.is_some()
    }

    /// How long after a failed segment creation (ENOSPC) the next one is tried.
    pub fn set_no_space_retry(&mut self, every: Duration) {
        self.no_space_retry = every;
    }

    /// Whether the log has no prepared spare segment (see [`prepare_spare`]).
    pub fn wants_spare(&self) -> bool {
        self.spare.is_none() && self.fatal.is_none()
    }

    /// The size a spare must have to serve the next roll-over.
    pub fn spare_size(&self) -> u64 {
        align_up(self.cfg.prealloc_size.max(ALIGN as u64))
    }

    /// Hands the log a spare made by [`prepare_spare`], for its next roll-over.
    pub fn offer_spare(&mut self, spare: Spare<B::File>) {
        if self.spare.is_none() {
            self.spare = Some(spare);
        }
    }

    /// Turns a ready spare into segment `path`: header written and synced, then renamed
    /// and the directory synced. `None` if no ready spare of that size exists.
    async fn take_spare(
        &mut self,
        path: &Path,
        first_zxid: i64,
        size: u64,
    ) -> Result<Option<B::File>> {
        if self.spare.as_ref().is_none_or(|sp| sp.size != size) {
            return Ok(None);
        }
        let sp = self.spare.take().expect("checked above");
        let mut first = vec![0u8; ALIGN];
        first[..SEG_HEADER_LEN].copy_from_slice(&encode_segment_header(first_zxid));
        let done = async {
            sp.file.write_at(0, &first).await?;
            sp.file.fdatasync().await?;
            self.backend.rename(&sp.path, path).await?;
            self.backend.sync_dir(&self.cfg.dir).await
        }
        .await;
        match done {
            Ok(()) => Ok(Some(sp.file)),
            Err(e) => {
                // Whether the header or the rename reached the disk is unknown now.
                let msg = format!("turning {} into {}: {e}", sp.path.display(), path.display());
                Err(self.poison(msg))
            }
        }
    }

    /// Err carries whether the failure was an fdatasync (fatal).
    async fn create_segment(
        &self,
        path: &Path,
        first_zxid: i64,
        size: u64,
    ) -> std::result::Result<B::File, (io::Error, bool)> {
        let file = self.backend.create(path).await.map_err(|e| (e, false))?;
        let mut first = vec![0u8; ALIGN];
        first[..SEG_HEADER_LEN].copy_from_slice(&encode_segment_header(first_zxid));
        file.write_at(0, &first).await.map_err(|e| (e, false))?;
        file.zero_fill(ALIGN as u64, size)
            .await
            .map_err(|e| (e, false))?;
        file.fdatasync().await.map_err(|e| (e, true))?;
        self.backend
            .sync_dir(&self.cfg.dir)
            .await
            .map_err(|e| (e, true))?;
        Ok(file)
    }
}

/// An append handed to the disk by [`TxnLog::start_append`]: its write, not yet issued.
/// It holds the segment's file, so running it needs no borrow of the log.
pub struct AppendIo<F> {
    file: Rc<F>,
    start: u64,
    buf: Vec<u8>,
    sync: bool,
    done: AppendDone,
}

impl<F: StorageFile> AppendIo<F> {
    /// Writes the frame (durably, with `forceSync`); the first poll issues the write.
    pub async fn run(self) -> AppendDone {
        let AppendIo {
            file,
            start,
            buf,
            sync,
            mut done,
        } = self;
        done.result = if sync {
            file.write_and_sync(start, &buf).await
        } else {
            file.write_at(start, &buf)
                .await
                .map_err(SyncedWriteError::Write)
        };
        done
    }
}

/// How an append's write ended, for [`TxnLog::complete_append`].
pub struct AppendDone {
    result: std::result::Result<(), SyncedWriteError>,
    started: Instant,
    start: u64,
    last_zxid: i64,
    undo: Undo,
}

/// The log's position before an append, to go back to when the disk refused it.
struct Undo {
    pos: u64,
    tail: Vec<u8>,
    started_zxid: i64,
    overlaps: bool,
}

/// Closes a segment file once no append in flight holds it any more (a roll-over or a
/// cut waits for those, so in practice at once).
async fn close_shared<F: StorageFile>(file: Rc<F>) {
    if let Ok(f) = Rc::try_unwrap(file) {
        let _ = f.close().await;
    }
}

/// Removes spare segments left by an earlier run (none is in use before the log opens).
pub async fn remove_stale_spares<B: Backend>(backend: &B, dir: &Path) -> io::Result<usize> {
    let mut n = 0;
    for name in backend.list_dir(dir).await? {
        if name.starts_with(SPARE_PREFIX) {
            backend.remove(&dir.join(&name)).await?;
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame whose checksums hold but whose count claims a txn per 4 bytes (the most
    /// `check_frame` lets through): refused as truncated, reserving only the txns the
    /// payload could hold (`MIN_TXN_LEN` each), not `count` of them.
    #[test]
    fn a_frame_claiming_more_txns_than_fit_is_refused() {
        let payload = vec![0u8; 4096];
        let mut f = Vec::new();
        f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        f.extend_from_slice(&((payload.len() / 4) as u32).to_be_bytes());
        f.extend_from_slice(&1i64.to_be_bytes());
        f.extend_from_slice(&crc32c::crc32c(&payload).to_be_bytes());
        let hcrc = crc32c::crc32c(&f);
        f.extend_from_slice(&hcrc.to_be_bytes());
        f.extend_from_slice(&payload);
        let at = check_frame(&f, 0).expect("checksums hold");
        assert_eq!(at.count, 1024);
        let e = decode_frame(&f, &at).unwrap_err();
        assert!(e.contains("does not decode"), "{e}");
    }
}
