//! Snapshots: the whole tree and the session table at one zxid, in a file sealed by a
//! crc32c, so recovery can replay the log from there instead of from the beginning.
//!
//! Defined over plain types (paths, data, ACLs, [`StatFields`], sessions as `(id,
//! timeout)`) so it does not depend on the tree's internals; the server converts both
//! ways.
//!
//! # Fuzzy snapshots
//!
//! The server writes a snapshot while it goes on committing (see
//! `server::durability`): it walks the tree in steps between batches, parents before
//! children, so the nodes it writes early may change before it is done. The tree notes
//! every path that changes during the walk (`tree::snapshot_walk`). After the walk
//! comes a marker, then the state of each changed path, in rounds between batches
//! while the changes keep coming, and a last round all at once: a node record for a
//! path that exists, a *tombstone* for one that does not. The last round ends at the
//! zxid the end record names.
//!
//! To load: apply the walk's records in order (each after its parent), then take the
//! records after the marker, keep the last word on each path, and apply those removals
//! children first and those nodes parents first. That gives exactly the tree at the
//! end record's zxid: a path changed after the walk wrote it has a later record, and a
//! path that never changed was written by the walk as it is. Unlike ZooKeeper's fuzzy
//! snapshot, which is replayed with txns that may already be in it (and so needs every
//! txn to be idempotent), this one is exact at its zxid: the log is replayed strictly
//! after it.
//!
//! # File
//!
//! `snapshot.<last zxid as 16 hex digits>` in the snapshot dir, written as
//! `snapshot.<start zxid>.tmp` with aligned O_DIRECT writes, fdatasync'd, renamed to its
//! final name, and the directory synced: a crash leaves either no snapshot or a complete
//! one (plus maybe a stale `.tmp` that recovery and purge delete). A snapshot is
//! complete and trusted only if its seal checks, so a half-written or damaged one is
//! skipped for an older one (see `recovery`).
//!
//! ```text
//! header:  "CRSN" | u32 version=2 | i64 start_zxid (the tree's zxid when the walk began)
//! records: u8 tag, then
//!   1 node:      ustring path | buffer data | vector<ACL> acl | long czxid | long mzxid |
//!                long ctime | long mtime | int version | int cversion | int aversion |
//!                long ephemeralOwner | long pzxid                   (jute)
//!   2 session:   long id | int timeout
//!   3 tombstone: ustring path
//!   4 marker:    (nothing) the walk's records end, the changes follow
//!   0xFF end:    u64 node records | u64 session count | u64 tombstones | i64 last_zxid |
//!                u32 crc32c(every byte of the file before this field)
//! zeros to the next 4096 boundary (O_DIRECT writes whole blocks)
//! ```
//!
//! Version 1 (written by earlier builds, still read) has no tombstones and no tombstone
//! count, and its header holds the last zxid.
//!
//! # Loading
//!
//! Loading maps the file (memmap2 through the backend), checks the seal and walks every
//! record once with the jute reader, which checks every length against the bytes present.
//! Nothing is copied out: [`LoadedSnapshot::records`] hands out borrowed records, so each
//! shard builds its tree straight from the mapped bytes.

use std::path::{Path, PathBuf};

use bytes::{BufMut, Bytes, BytesMut};

use super::backend::{align_up, Backend, Mapped, StorageFile, ALIGN};
use super::{io_err, zxid_hex, Result, StorageError};
use crate::proto::{Acl, DecodeError, Jute, Reader};

pub const SNAP_PREFIX: &str = "snapshot.";
pub const SNAP_MAGIC: [u8; 4] = *b"CRSN";
pub const SNAP_VERSION: u32 = 2;
const TAG_NODE: u8 = 1;
const TAG_SESSION: u8 = 2;
const TAG_TOMBSTONE: u8 = 3;
const TAG_CHANGES: u8 = 4;
const TAG_END: u8 = 0xFF;
/// The writer flushes whole blocks once this much is buffered.
const FLUSH_AT: usize = 1 << 20;
const HEADER_LEN: usize = 16;

/// The persisted part of a znode's Stat: the tree's own `StatPersisted` (`dataLength`
/// and `numChildren` are derived), stored verbatim.
pub use crate::tree::StatPersisted as StatFields;

/// A node with owned fields (tests, tools, and [`write_snapshot`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotNode {
    pub path: String,
    pub data: Bytes,
    pub acl: Vec<Acl>,
    pub stat: StatFields,
}

/// One record of a loaded snapshot, borrowed from the mapped file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapRecord<'a> {
    Node(NodeRecord<'a>),
    Tombstone(&'a str),
    /// The walk's records end; the changes made during it follow.
    ChangesFollow,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeRecord<'a> {
    pub path: &'a str,
    /// `None`: jute's null buffer (kept apart from empty data).
    pub data: Option<&'a [u8]>,
    /// The encoded `vector<ACL>`, as stored: equal bytes mean an equal list, which lets a
    /// loader skip decoding the ACL each sibling repeats.
    pub acl_raw: &'a [u8],
    pub stat: StatFields,
}

impl NodeRecord<'_> {
    /// The ACL list (the record was checked to decode when the snapshot was loaded).
    pub fn acl(&self) -> Vec<Acl> {
        Vec::<Acl>::decode(&mut Reader::new(self.acl_raw)).unwrap_or_default()
    }

    /// The data as owned bytes, a null buffer staying null.
    pub fn data_bytes(&self) -> Bytes {
        match self.data {
            None => crate::proto::jute::null_buffer(),
            Some(d) => Bytes::copy_from_slice(d),
        }
    }

    pub fn to_owned(&self) -> SnapshotNode {
        SnapshotNode {
            path: self.path.to_string(),
            data: self.data_bytes(),
            acl: self.acl(),
            stat: self.stat,
        }
    }
}

/// A snapshot mapped, its seal checked and every record checked to decode.
pub struct LoadedSnapshot {
    pub path: PathBuf,
    pub version: u32,
    /// The tree's zxid when the walk began (equal to `last_zxid` in version 1).
    pub start_zxid: i64,
    /// The zxid the snapshot's contents are exact at: replay the log after it.
    pub last_zxid: i64,
    /// `(session id, timeout ms)`, in file order.
    pub sessions: Vec<(i64, i32)>,
    pub node_records: u64,
    pub tombstones: u64,
    bytes: std::sync::Arc<Mapped>,
    /// Where the records end (the end record's tag).
    end: usize,
}

impl std::fmt::Debug for LoadedSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedSnapshot")
            .field("path", &self.path)
            .field("last_zxid", &self.last_zxid)
            .field("node_records", &self.node_records)
            .field("tombstones", &self.tombstones)
            .field("sessions", &self.sessions.len())
            .finish()
    }
}

/// Owns a mapped snapshot for [`Bytes::from_owner`], so that znode data can point into
/// the mapping instead of being copied.
pub struct SharedMapping(pub std::sync::Arc<Mapped>);

impl AsRef<[u8]> for SharedMapping {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl LoadedSnapshot {
    /// The whole mapped file, as [`Bytes`] with its own reference count: a tree restored
    /// from it keeps one while znode data still lies in it (`Restorer::keep_mapping`).
    pub fn mapping(&self) -> Bytes {
        Bytes::from_owner(SharedMapping(self.bytes.clone()))
    }

    /// The node and tombstone records in file order (see the module doc for how to read
    /// them).
    pub fn records(&self) -> Records<'_> {
        Records {
            r: Reader::new(&self.bytes[HEADER_LEN..self.end]),
        }
    }

    /// The nodes the snapshot describes, with tombstones and later records applied, in
    /// the order each path first appears.
    pub fn nodes(&self) -> Vec<SnapshotNode> {
        let mut order: Vec<SnapshotNode> = Vec::new();
        let mut at: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        let mut gone = vec![];
        for rec in self.records() {
            match rec {
                SnapRecord::Node(n) => match at.get(n.path) {
                    Some(&i) => {
                        order[i] = n.to_owned();
                        gone[i] = false;
                    }
                    None => {
                        at.insert(n.path, order.len());
                        order.push(n.to_owned());
                        gone.push(false);
                    }
                },
                SnapRecord::Tombstone(p) => {
                    if let Some(&i) = at.get(p) {
                        gone[i] = true;
                    }
                }
                SnapRecord::ChangesFollow => {}
            }
        }
        order
            .into_iter()
            .zip(gone)
            .filter(|(_, g)| !g)
            .map(|(n, _)| n)
            .collect()
    }
}

/// A snapshot file's records, read before (or without) the check [`decode_snapshot`]
/// makes: for a loader that builds a tree on another thread while recovery checks the
/// same file (`server::durability::EarlyBuild`), and keeps that tree only if the check
/// passed for that very file. Iterating stops at the end record or at the first record
/// that does not parse, so damage gives a short (wrong) tree, never a panic.
pub struct UncheckedSnapshot {
    bytes: std::sync::Arc<Mapped>,
    /// The node record count the end record seems to give (found by looking back over
    /// the padding, unchecked, at most one per `MIN_NODE_RECORD` bytes of file): a size
    /// to reserve.
    pub node_records_hint: Option<u64>,
}

/// The fewest bytes a node record takes (tag, path of one byte, null data, no ACL,
/// the stat), which bounds any count a file of some length can hold.
const MIN_NODE_RECORD: usize = 1 + 5 + 4 + 4 + 6 * 8 + 3 * 4;

impl UncheckedSnapshot {
    /// `None` unless the file starts with a version 2 header (version 1 lists nodes in
    /// no order and is loaded only after its check).
    pub fn open(bytes: Mapped) -> Option<UncheckedSnapshot> {
        let buf: &[u8] = &bytes;
        if buf.len() < HEADER_LEN || buf[0..4] != SNAP_MAGIC {
            return None;
        }
        if u32::from_be_bytes(buf[4..8].try_into().expect("4 bytes")) != SNAP_VERSION {
            return None;
        }
        let node_records_hint =
            end_record_hint(buf).filter(|&n| n <= (buf.len() / MIN_NODE_RECORD) as u64);
        Some(UncheckedSnapshot {
            bytes: std::sync::Arc::new(bytes),
            node_records_hint,
        })
    }

    pub fn records(&self) -> Records<'_> {
        Records {
            r: Reader::new(&self.bytes[HEADER_LEN..]),
        }
    }

    /// As [`LoadedSnapshot::mapping`].
    pub fn mapping(&self) -> Bytes {
        Bytes::from_owner(SharedMapping(self.bytes.clone()))
    }
}

/// The node count of a version 2 end record, found from the file's end: the record
/// (37 bytes) ends where the zero padding begins, give or take the crc's own zero
/// bytes. A guess, for sizing only.
fn end_record_hint(buf: &[u8]) -> Option<u64> {
    const END_LEN: usize = 1 + 8 + 8 + 8 + 8 + 4;
    let last = buf.iter().rposition(|&b| b != 0)?;
    (last + 1..=last + 4)
        .filter(|&end| end >= HEADER_LEN + END_LEN && end <= buf.len())
        .map(|end| end - END_LEN)
        .find(|&at| buf[at] == TAG_END)
        .map(|at| u64::from_be_bytes(buf[at + 1..at + 9].try_into().expect("8 bytes")))
}

/// Iterates a loaded snapshot's node and tombstone records (sessions are in
/// [`LoadedSnapshot::sessions`]).
pub struct Records<'a> {
    r: Reader<'a>,
}

impl<'a> Iterator for Records<'a> {
    type Item = SnapRecord<'a>;
    fn next(&mut self) -> Option<SnapRecord<'a>> {
        // Every record was checked at load: a failure here cannot happen, and ends the
        // iteration rather than panicking.
        loop {
            match read_record(&mut self.r).ok()?? {
                Record::Node(n) => return Some(SnapRecord::Node(n)),
                Record::Tombstone(p) => return Some(SnapRecord::Tombstone(p)),
                Record::Changes => return Some(SnapRecord::ChangesFollow),
                Record::Session(..) => continue,
                Record::End | Record::Unknown => return None,
            }
        }
    }
}

enum Record<'a> {
    Node(NodeRecord<'a>),
    Tombstone(&'a str),
    Session(i64, i32),
    Changes,
    End,
    Unknown,
}

fn read_str<'a>(r: &mut Reader<'a>) -> std::result::Result<&'a str, DecodeError> {
    let raw = r.read_raw()?.unwrap_or(&[]);
    std::str::from_utf8(raw).map_err(|_| DecodeError::BadUtf8)
}

/// One record at the reader's position; `None` at the end of the bytes.
fn read_record<'a>(r: &mut Reader<'a>) -> std::result::Result<Option<Record<'a>>, DecodeError> {
    if r.remaining() == 0 {
        return Ok(None);
    }
    let tag = r.read_u8()?;
    Ok(Some(match tag {
        TAG_NODE => {
            let path = read_str(r)?;
            let data = r.read_raw()?;
            let acl_start = r.position();
            let n = r.read_count()?.unwrap_or(0);
            // Checked as an ACL would decode (perms, scheme, id), without building one.
            for _ in 0..n {
                r.read_i32()?;
                read_str(r)?;
                read_str(r)?;
            }
            let acl_raw = r.since(acl_start);
            let stat = StatFields {
                czxid: r.read_i64()?,
                mzxid: r.read_i64()?,
                ctime: r.read_i64()?,
                mtime: r.read_i64()?,
                version: r.read_i32()?,
                cversion: r.read_i32()?,
                aversion: r.read_i32()?,
                ephemeral_owner: r.read_i64()?,
                pzxid: r.read_i64()?,
            };
            Record::Node(NodeRecord {
                path,
                data,
                acl_raw,
                stat,
            })
        }
        TAG_SESSION => Record::Session(r.read_i64()?, r.read_i32()?),
        TAG_TOMBSTONE => Record::Tombstone(read_str(r)?),
        TAG_CHANGES => Record::Changes,
        TAG_END => Record::End,
        _ => Record::Unknown,
    }))
}

pub fn snapshot_name(last_zxid: i64) -> String {
    format!("{SNAP_PREFIX}{}", zxid_hex(last_zxid))
}

/// Streams a snapshot to disk: add nodes, tombstones and sessions in the order the
/// module doc requires, flushing now and then, then `finish`. Dropping it without
/// `finish` leaves only a `.tmp` file, which is never loaded.
pub struct SnapshotWriter<B: Backend> {
    backend: B,
    dir: PathBuf,
    tmp: PathBuf,
    file: B::File,
    start_zxid: i64,
    buf: BytesMut,
    /// Bytes already written (always a multiple of ALIGN).
    written: u64,
    crc: u32,
    nodes: u64,
    sessions: u64,
    tombstones: u64,
}

impl<B: Backend> SnapshotWriter<B> {
    /// Starts `dir/snapshot.<start_zxid>.tmp`.
    pub async fn create(backend: B, dir: &Path, start_zxid: i64) -> Result<Self> {
        let tmp = dir.join(format!("{}.tmp", snapshot_name(start_zxid)));
        let file = backend
            .create(&tmp)
            .await
            .map_err(io_err(format!("creating {}", tmp.display())))?;
        // Room for what a walk step adds past FLUSH_AT before the flush after it, so
        // the buffer is not regrown: with FLUSH_AT + one block, the step that crossed
        // it copied the buffer into fresh memory, and took ~250-330 page faults (about
        // a third of its 1.1-1.5 ms, all of it time the owner's commits wait for).
        let mut buf = BytesMut::with_capacity(2 * FLUSH_AT);
        buf.put_slice(&SNAP_MAGIC);
        buf.put_u32(SNAP_VERSION);
        buf.put_i64(start_zxid);
        Ok(SnapshotWriter {
            backend,
            dir: dir.to_path_buf(),
            tmp,
            file,
            start_zxid,
            buf,
            written: 0,
            crc: 0,
            nodes: 0,
            sessions: 0,
            tombstones: 0,
        })
    }

    /// Encodes a node record into the buffer (no I/O: see [`flush`](Self::flush)).
    pub fn add_node(&mut self, path: &str, data: &[u8], acl: &[Acl], stat: &StatFields) {
        let b = &mut self.buf;
        b.put_u8(TAG_NODE);
        b.put_i32(path.len() as i32);
        b.put_slice(path.as_bytes());
        // -1 keeps a null buffer null (see `proto::jute::null_buffer`).
        if crate::proto::jute::is_null_buffer(data) {
            b.put_i32(-1);
        } else {
            b.put_i32(data.len() as i32);
            b.put_slice(data);
        }
        b.put_i32(acl.len() as i32);
        for a in acl {
            a.encode(b);
        }
        b.put_i64(stat.czxid);
        b.put_i64(stat.mzxid);
        b.put_i64(stat.ctime);
        b.put_i64(stat.mtime);
        b.put_i32(stat.version);
        b.put_i32(stat.cversion);
        b.put_i32(stat.aversion);
        b.put_i64(stat.ephemeral_owner);
        b.put_i64(stat.pzxid);
        self.nodes += 1;
    }

    /// Ends the walk's records: what follows are changes made during the walk.
    pub fn add_changes_marker(&mut self) {
        self.buf.put_u8(TAG_CHANGES);
    }

    /// Encodes a tombstone: `path` does not exist at the snapshot's zxid.
    pub fn add_tombstone(&mut self, path: &str) {
        self.buf.put_u8(TAG_TOMBSTONE);
        self.buf.put_i32(path.len() as i32);
        self.buf.put_slice(path.as_bytes());
        self.tombstones += 1;
    }

    pub fn add_session(&mut self, id: i64, timeout: i32) {
        self.buf.put_u8(TAG_SESSION);
        self.buf.put_i64(id);
        self.buf.put_i32(timeout);
        self.sessions += 1;
    }

    pub async fn push_node(
        &mut self,
        path: &str,
        data: &[u8],
        acl: &[Acl],
        stat: &StatFields,
    ) -> Result<()> {
        self.add_node(path, data, acl, stat);
        self.flush().await
    }

    pub async fn push_session(&mut self, id: i64, timeout: i32) -> Result<()> {
        self.add_session(id, timeout);
        self.flush().await
    }

    /// Writes the buffered whole blocks once at least `FLUSH_AT` bytes wait.
    pub async fn flush(&mut self) -> Result<()> {
        if self.buf.len() < FLUSH_AT {
            return Ok(());
        }
        let whole = self.buf.len() / ALIGN * ALIGN;
        let chunk = &self.buf[..whole];
        self.crc = crc32c::crc32c_append(self.crc, chunk);
        self.file
            .write_at(self.written, chunk)
            .await
            .map_err(io_err(format!("writing {}", self.tmp.display())))?;
        self.written += whole as u64;
        // The tail (under a block) moves to the front of the same buffer, which thus
        // keeps its pages for the whole snapshot (see `create`).
        let tail = self.buf.len() - whole;
        self.buf.copy_within(whole.., 0);
        self.buf.truncate(tail);
        Ok(())
    }

    /// Seals a snapshot taken without changes during the writing (its start zxid is
    /// its last).
    pub async fn finish(self) -> Result<PathBuf> {
        let z = self.start_zxid;
        self.finish_at(z).await
    }

    /// Seals the snapshot as exact at `last_zxid`, syncs it and publishes it as
    /// `snapshot.<last_zxid>`; returns that path.
    pub async fn finish_at(self, last_zxid: i64) -> Result<PathBuf> {
        let backend = self.backend.clone();
        let dir = self.dir.clone();
        let tmp = self.seal_at(last_zxid).await?;
        let dst = dir.join(snapshot_name(last_zxid));
        backend
            .rename(&tmp, &dst)
            .await
            .map_err(io_err(format!("renaming {}", tmp.display())))?;
        backend
            .sync_dir(&dir)
            .await
            .map_err(io_err(format!("syncing {}", dir.display())))?;
        // Written around the page cache: have it read back in the background, so a
        // restart maps it from memory (a cold 1M-znode snapshot added ~0.5 s here).
        if let Err(e) = backend.prefetch(&dst).await {
            tracing::debug!("prefetching {}: {e}", dst.display());
        }
        Ok(dst)
    }

    /// Seals the snapshot as exact at `last_zxid` and syncs it, but leaves it under its
    /// `.tmp` name (never loaded, deleted by recovery): the caller publishes it (see
    /// `storage::install`). Returns the `.tmp` path.
    pub async fn seal_at(mut self, last_zxid: i64) -> Result<PathBuf> {
        self.buf.put_u8(TAG_END);
        self.buf.put_u64(self.nodes);
        self.buf.put_u64(self.sessions);
        self.buf.put_u64(self.tombstones);
        self.buf.put_i64(last_zxid);
        let crc = crc32c::crc32c_append(self.crc, &self.buf);
        self.buf.put_u32(crc);
        let len = align_up(self.buf.len() as u64) as usize;
        self.buf.resize(len, 0);
        let ctx = || format!("writing {}", self.tmp.display());
        self.file
            .write_at(self.written, &self.buf)
            .await
            .map_err(io_err(ctx()))?;
        self.file.fdatasync().await.map_err(io_err(ctx()))?;
        let _ = self.file.close().await;
        Ok(self.tmp)
    }
}

/// Writes a whole snapshot from plain values (convenience over [`SnapshotWriter`]).
pub async fn write_snapshot<B: Backend>(
    backend: B,
    dir: &Path,
    last_zxid: i64,
    nodes: &[SnapshotNode],
    sessions: &[(i64, i32)],
) -> Result<PathBuf> {
    let mut w = SnapshotWriter::create(backend, dir, last_zxid).await?;
    for n in nodes {
        w.push_node(&n.path, &n.data, &n.acl, &n.stat).await?;
    }
    for &(id, to) in sessions {
        w.push_session(id, to).await?;
    }
    w.finish().await
}

/// Maps, checks and indexes a snapshot file. Any damage is [`StorageError::Corrupt`]
/// naming the file and offset.
pub async fn load_snapshot<B: Backend>(backend: &B, path: &Path) -> Result<LoadedSnapshot> {
    let m = backend
        .map(path)
        .await
        .map_err(io_err(format!("reading {}", path.display())))?;
    decode_snapshot(m, path)
}

/// Checks a snapshot's bytes: the seal, then every record, so that iterating the
/// records later cannot fail.
pub fn decode_snapshot(bytes: Mapped, path: &Path) -> Result<LoadedSnapshot> {
    let bad = |off: usize, what: &str| {
        StorageError::Corrupt(format!(
            "snapshot {} is damaged at offset {off}: {what}",
            path.display()
        ))
    };
    let buf: &[u8] = &bytes;
    if buf.len() < HEADER_LEN || buf[0..4] != SNAP_MAGIC {
        return Err(bad(0, "no snapshot header"));
    }
    let version = u32::from_be_bytes(buf[4..8].try_into().expect("4 bytes"));
    if version != 1 && version != SNAP_VERSION {
        return Err(bad(4, &format!("unknown version {version}")));
    }
    let header_zxid = i64::from_be_bytes(buf[8..16].try_into().expect("8 bytes"));
    let mut r = Reader::new(&buf[HEADER_LEN..]);
    let mut sessions = Vec::new();
    let (mut nodes, mut tombstones) = (0u64, 0u64);
    let mut changes = false;
    loop {
        let at = HEADER_LEN + r.position();
        let rec = match read_record(&mut r) {
            Ok(Some(rec)) => rec,
            Ok(None) => return Err(bad(at, "no end record")),
            Err(e) => return Err(bad(at, &e.to_string())),
        };
        match rec {
            Record::Node(_) => nodes += 1,
            Record::Tombstone(_) if version >= 2 => tombstones += 1,
            Record::Changes if version >= 2 && !changes => changes = true,
            Record::Session(id, to) => sessions.push((id, to)),
            Record::End => {
                let dec = |e: DecodeError| bad(at, &e.to_string());
                let n_nodes = r.read_i64().map_err(dec)? as u64;
                let n_sessions = r.read_i64().map_err(dec)? as u64;
                let n_tombstones = if version >= 2 {
                    r.read_i64().map_err(dec)? as u64
                } else {
                    0
                };
                let last_zxid = r.read_i64().map_err(dec)?;
                let crc_at = HEADER_LEN + r.position();
                let crc = r.read_i32().map_err(|e| bad(crc_at, &e.to_string()))? as u32;
                if crc32c::crc32c(&buf[..crc_at]) != crc {
                    return Err(bad(crc_at, "checksum mismatch"));
                }
                if n_nodes != nodes
                    || n_sessions != sessions.len() as u64
                    || n_tombstones != tombstones
                    || (version == 1 && last_zxid != header_zxid)
                    || last_zxid < header_zxid
                {
                    return Err(bad(at, "end record disagrees with the contents"));
                }
                return Ok(LoadedSnapshot {
                    path: path.to_path_buf(),
                    version,
                    start_zxid: header_zxid,
                    last_zxid,
                    sessions,
                    node_records: nodes,
                    tombstones,
                    bytes: std::sync::Arc::new(bytes),
                    end: at,
                });
            }
            Record::Tombstone(_) | Record::Changes | Record::Unknown => {
                return Err(bad(at, &format!("unknown record tag {}", buf[at])))
            }
        }
    }
}
