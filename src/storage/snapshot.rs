//! Snapshots: the whole tree and the session table at one zxid, in a file sealed by a
//! crc32c, so recovery can replay the log from there instead of from the beginning.
//!
//! Defined over plain types ([`SnapshotNode`], sessions as `(id, timeout)`) so it does
//! not depend on the tree's internals; the server converts both ways.
//!
//! # File
//!
//! `snapshot.<last zxid as 16 hex digits>` in the snapshot dir, written as
//! `snapshot.<zxid>.tmp` with aligned O_DIRECT writes, fdatasync'd, renamed, and the
//! directory synced: a crash leaves either no snapshot or a complete one (plus maybe a
//! stale `.tmp` that recovery and purge delete). A snapshot is complete and trusted
//! only if its seal checks, so a half-written or damaged one is skipped for an older
//! one (see `recovery`).
//!
//! ```text
//! header:  "CRSN" | u32 version=1 | i64 last_zxid
//! records: u8 tag, then
//!   1 node:    ustring path | buffer data | vector<ACL> acl | long czxid | long mzxid |
//!              long ctime | long mtime | int version | int cversion | int aversion |
//!              long ephemeralOwner | long pzxid                     (jute)
//!   2 session: long id | int timeout
//!   0xFF end:  u64 node count | u64 session count | i64 last_zxid |
//!              u32 crc32c(every byte of the file before this field)
//! zeros to the next 4096 boundary (O_DIRECT writes whole blocks)
//! ```
//!
//! Loading maps the file (memmap2 through the backend) and decodes it with the jute
//! reader, which checks every length against the bytes present.

use std::path::{Path, PathBuf};

use bytes::{BufMut, Bytes, BytesMut};

use super::backend::{align_up, Backend, StorageFile, ALIGN};
use super::{io_err, zxid_hex, Result, StorageError};
use crate::proto::{Acl, Jute, Reader};

pub const SNAP_PREFIX: &str = "snapshot.";
pub const SNAP_MAGIC: [u8; 4] = *b"CRSN";
pub const SNAP_VERSION: u32 = 1;
const TAG_NODE: u8 = 1;
const TAG_SESSION: u8 = 2;
const TAG_END: u8 = 0xFF;
/// The writer flushes whole blocks once this much is buffered.
const FLUSH_AT: usize = 1 << 20;

/// The persisted part of a znode's Stat: the tree's own `StatPersisted` (`dataLength`
/// and `numChildren` are derived), stored verbatim.
pub use crate::tree::StatPersisted as StatFields;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotNode {
    pub path: String,
    pub data: Bytes,
    pub acl: Vec<Acl>,
    pub stat: StatFields,
}

/// A snapshot read back and verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedSnapshot {
    pub path: PathBuf,
    pub last_zxid: i64,
    /// In the order they were pushed (the server pushes parents before children).
    pub nodes: Vec<SnapshotNode>,
    /// `(session id, timeout ms)`.
    pub sessions: Vec<(i64, i32)>,
}

pub fn snapshot_name(last_zxid: i64) -> String {
    format!("{SNAP_PREFIX}{}", zxid_hex(last_zxid))
}

/// Streams a snapshot to disk: push nodes and sessions in any order, then `finish`.
/// Dropping it without `finish` leaves only a `.tmp` file, which is never loaded.
pub struct SnapshotWriter<B: Backend> {
    backend: B,
    dir: PathBuf,
    tmp: PathBuf,
    file: B::File,
    last_zxid: i64,
    buf: BytesMut,
    /// Bytes already written (always a multiple of ALIGN).
    written: u64,
    crc: u32,
    nodes: u64,
    sessions: u64,
}

impl<B: Backend> SnapshotWriter<B> {
    /// Starts `dir/snapshot.<last_zxid>.tmp`.
    pub async fn create(backend: B, dir: &Path, last_zxid: i64) -> Result<Self> {
        let tmp = dir.join(format!("{}.tmp", snapshot_name(last_zxid)));
        let file = backend
            .create(&tmp)
            .await
            .map_err(io_err(format!("creating {}", tmp.display())))?;
        let mut buf = BytesMut::with_capacity(FLUSH_AT + ALIGN);
        buf.put_slice(&SNAP_MAGIC);
        buf.put_u32(SNAP_VERSION);
        buf.put_i64(last_zxid);
        Ok(SnapshotWriter {
            backend,
            dir: dir.to_path_buf(),
            tmp,
            file,
            last_zxid,
            buf,
            written: 0,
            crc: 0,
            nodes: 0,
            sessions: 0,
        })
    }

    pub async fn push_node(
        &mut self,
        path: &str,
        data: &[u8],
        acl: &[Acl],
        stat: &StatFields,
    ) -> Result<()> {
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
        self.maybe_flush().await
    }

    pub async fn push_session(&mut self, id: i64, timeout: i32) -> Result<()> {
        self.buf.put_u8(TAG_SESSION);
        self.buf.put_i64(id);
        self.buf.put_i32(timeout);
        self.sessions += 1;
        self.maybe_flush().await
    }

    async fn maybe_flush(&mut self) -> Result<()> {
        if self.buf.len() < FLUSH_AT {
            return Ok(());
        }
        let whole = self.buf.len() / ALIGN * ALIGN;
        let chunk = self.buf.split_to(whole);
        self.crc = crc32c::crc32c_append(self.crc, &chunk);
        self.file
            .write_at(self.written, &chunk)
            .await
            .map_err(io_err(format!("writing {}", self.tmp.display())))?;
        self.written += whole as u64;
        Ok(())
    }

    /// Seals, syncs and publishes the snapshot; returns its final path.
    pub async fn finish(mut self) -> Result<PathBuf> {
        self.buf.put_u8(TAG_END);
        self.buf.put_u64(self.nodes);
        self.buf.put_u64(self.sessions);
        self.buf.put_i64(self.last_zxid);
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
        let dst = self.dir.join(snapshot_name(self.last_zxid));
        self.backend
            .rename(&self.tmp, &dst)
            .await
            .map_err(io_err(format!("renaming {}", self.tmp.display())))?;
        self.backend
            .sync_dir(&self.dir)
            .await
            .map_err(io_err(format!("syncing {}", self.dir.display())))?;
        Ok(dst)
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

/// Loads and verifies a snapshot file. Any damage is [`StorageError::Corrupt`] naming the
/// file and offset.
pub async fn load_snapshot<B: Backend>(backend: &B, path: &Path) -> Result<LoadedSnapshot> {
    let m = backend
        .map(path)
        .await
        .map_err(io_err(format!("reading {}", path.display())))?;
    decode_snapshot(&m, path)
}

/// Decodes a snapshot from its bytes.
pub fn decode_snapshot(buf: &[u8], path: &Path) -> Result<LoadedSnapshot> {
    let bad = |off: usize, what: &str| {
        StorageError::Corrupt(format!(
            "snapshot {} is damaged at offset {off}: {what}",
            path.display()
        ))
    };
    if buf.len() < 16 || buf[0..4] != SNAP_MAGIC {
        return Err(bad(0, "no snapshot header"));
    }
    let mut r = Reader::new(&buf[4..]);
    let dec = |e: crate::proto::DecodeError, at: usize| bad(at, &e.to_string());
    let version = r.read_i32().map_err(|e| dec(e, 4))?;
    if version as u32 != SNAP_VERSION {
        return Err(bad(4, &format!("unknown version {version}")));
    }
    let last_zxid = r.read_i64().map_err(|e| dec(e, 8))?;
    let mut nodes = Vec::new();
    let mut sessions = Vec::new();
    loop {
        let at = 4 + r.position();
        // One tag byte: read_bool checks it is there, then take its value.
        r.read_bool().map_err(|e| dec(e, at))?;
        let tag = buf[at];
        match tag {
            TAG_NODE => {
                let n = (|| -> std::result::Result<SnapshotNode, crate::proto::DecodeError> {
                    let path = String::decode(&mut r)?;
                    let data = Bytes::decode(&mut r)?;
                    let acl = Vec::<Acl>::decode(&mut r)?;
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
                    Ok(SnapshotNode {
                        path,
                        data,
                        acl,
                        stat,
                    })
                })()
                .map_err(|e| dec(e, at))?;
                nodes.push(n);
            }
            TAG_SESSION => {
                let id = r.read_i64().map_err(|e| dec(e, at))?;
                let to = r.read_i32().map_err(|e| dec(e, at))?;
                sessions.push((id, to));
            }
            TAG_END => {
                let n_nodes = r.read_i64().map_err(|e| dec(e, at))? as u64;
                let n_sessions = r.read_i64().map_err(|e| dec(e, at))? as u64;
                let z = r.read_i64().map_err(|e| dec(e, at))?;
                let crc_at = 4 + r.position();
                let crc = r.read_i32().map_err(|e| dec(e, crc_at))? as u32;
                if crc32c::crc32c(&buf[..crc_at]) != crc {
                    return Err(bad(crc_at, "checksum mismatch"));
                }
                if n_nodes != nodes.len() as u64
                    || n_sessions != sessions.len() as u64
                    || z != last_zxid
                {
                    return Err(bad(at, "end record disagrees with the contents"));
                }
                return Ok(LoadedSnapshot {
                    path: path.to_path_buf(),
                    last_zxid,
                    nodes,
                    sessions,
                });
            }
            other => return Err(bad(at, &format!("unknown record tag {other}"))),
        }
    }
}
