//! The storage seam: the engine reaches the OS only through [`Backend`] and
//! [`StorageFile`], so the same engine runs on disk (glommio `DmaFile`, O_DIRECT) and
//! in memory under injected faults.
//!
//! Contract (what the engine relies on, and what [`SimBackend`] enforces):
//! - Writes are O_DIRECT: offset and length multiples of [`ALIGN`] (4096; the disk here
//!   accepts 512 but NVMe wants 4096). A write is not durable until `fdatasync` returns
//!   Ok; at a power cut an unsynced write may be lost whole, kept whole, or torn at
//!   512-byte sector granularity (any subset of its sectors).
//! - Creating, renaming and removing files is not durable until `sync_dir` on the
//!   directory returns Ok.
//! - `fdatasync` failing with EIO means the data's fate is unknown (the kernel may have
//!   dropped the dirty pages); the engine treats it as fatal and never retries.
//! - `map` returns the whole file for reading (memmap2 on disk). Used at startup and by
//!   the tools, never on the append path, so its blocking open is acceptable.
//! - `set_len` (ftruncate) gives a file an exact, unaligned length (the epoch files hold
//!   a few ASCII digits, as ZooKeeper writes them); like a write it is durable only once
//!   `fdatasync` returns Ok, and a power cut before that keeps or loses it.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// O_DIRECT alignment used for every offset and length we write.
pub const ALIGN: usize = 4096;

pub fn align_up(v: u64) -> u64 {
    v.div_ceil(ALIGN as u64) * ALIGN as u64
}

pub fn align_down(v: u64) -> u64 {
    v / ALIGN as u64 * ALIGN as u64
}

/// A whole file's bytes for reading.
pub enum Mapped {
    Mmap(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Deref for Mapped {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Mapped::Mmap(m) => m,
            Mapped::Owned(v) => v,
        }
    }
}

/// An open file (read+write, O_DIRECT).
#[allow(async_fn_in_trait)]
pub trait StorageFile {
    /// Writes all of `buf` at `pos`; both aligned to [`ALIGN`]. Extends the file if needed.
    async fn write_at(&self, pos: u64, buf: &[u8]) -> io::Result<()>;
    /// Reads up to `len` bytes at `pos` (short at end of file).
    async fn read_at(&self, pos: u64, len: usize) -> io::Result<Vec<u8>>;
    async fn fdatasync(&self) -> io::Result<()>;
    /// Writes all of `buf` at `pos` (as `write_at`), then makes the file durable (as
    /// `fdatasync`). A backend may do both in one request.
    async fn write_and_sync(&self, pos: u64, buf: &[u8]) -> Result<(), SyncedWriteError> {
        self.write_at(pos, buf)
            .await
            .map_err(SyncedWriteError::Write)?;
        self.fdatasync().await.map_err(SyncedWriteError::Sync)
    }
    /// Writes zeros over `[from, to)` (aligned): allocates real, written blocks.
    async fn zero_fill(&self, from: u64, to: u64) -> io::Result<()>;
    /// fallocate(2) up to `len` (unwritten extents). Kept for the probe; the log zero-fills.
    async fn allocate(&self, len: u64) -> io::Result<()>;
    /// ftruncate(2): the file's length becomes `len` (any value), cutting or extending
    /// with zeros. Durable once `fdatasync` returns Ok.
    async fn set_len(&self, len: u64) -> io::Result<()>;
    async fn size(&self) -> io::Result<u64>;
    async fn close(self) -> io::Result<()>;
}

/// Which half of a `write_and_sync` failed, as far as the backend can tell. The log
/// takes `Write` with ENOSPC as the write refused (nothing of it written, the batch can
/// be retried later) and every other error of either half as leaving the disk's
/// contents unknown. A backend that writes and syncs in one request (a DSYNC write)
/// reports `Write`, with ENOSPC only when the write itself was refused.
#[derive(Debug)]
pub enum SyncedWriteError {
    Write(io::Error),
    Sync(io::Error),
}

/// The file system operations the engine uses.
#[allow(async_fn_in_trait)]
pub trait Backend: Clone {
    type File: StorageFile;
    /// Opens an existing file read+write.
    async fn open(&self, path: &Path) -> io::Result<Self::File>;
    /// Creates (or truncates) a file, read+write.
    async fn create(&self, path: &Path) -> io::Result<Self::File>;
    /// Asks the kernel to read `path` into the page cache in the background: a new
    /// snapshot, written with O_DIRECT, so that a restart maps it from memory. (Writing
    /// snapshots through the page cache instead was tried: on ext4 a log fdatasync then
    /// waited behind their writeback, and write p99.9 went from 7 ms to 72 ms.)
    async fn prefetch(&self, _path: &Path) -> io::Result<()> {
        Ok(())
    }
    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    async fn remove(&self, path: &Path) -> io::Result<()>;
    /// File names (not paths) in `dir`, unsorted.
    async fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>>;
    async fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    async fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    async fn map(&self, path: &Path) -> io::Result<Mapped>;
}

// ---------------------------------------------------------------------------------------
// Real backend: glommio DmaFile.

/// The disk backend: glommio `DmaFile` (O_DIRECT through io_uring). Must be used from
/// inside a glommio executor.
#[derive(Clone, Copy, Debug, Default)]
pub struct GlommioBackend;

/// A `DmaFile` opened read+write (`DmaFile::create` would open it write-only).
pub struct GlommioFile(glommio::io::DmaFile);

const ZERO_CHUNK: usize = 1 << 20;

impl GlommioFile {
    /// `buf` in a DMA buffer, for a write at `pos` (both aligned).
    fn dma_copy(&self, pos: u64, buf: &[u8]) -> glommio::io::DmaBuffer {
        debug_assert!(pos.is_multiple_of(ALIGN as u64) && buf.len().is_multiple_of(ALIGN));
        let mut dma = self.0.alloc_dma_buffer(buf.len());
        dma.as_bytes_mut().copy_from_slice(buf);
        dma
    }
}

/// A write of `want` bytes that wrote `n`: short is an error.
fn whole_write(n: usize, want: usize) -> io::Result<()> {
    if n == want {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::WriteZero,
        format!("short write: {n} of {want} bytes"),
    ))
}

impl StorageFile for GlommioFile {
    async fn write_at(&self, pos: u64, buf: &[u8]) -> io::Result<()> {
        let n = self.0.write_at(self.dma_copy(pos, buf), pos).await?;
        whole_write(n, buf.len())
    }

    /// A blocking `pread` into an aligned buffer: glommio 0.9's io_uring read fails with
    /// EOPNOTSUPP on this machine's disk (measured: every `read_at`/`read_at_aligned`),
    /// while writes work. Reads are off the append path (recovery and the tools map
    /// files instead; this serves tests and tools), so blocking briefly is acceptable.
    async fn read_at(&self, pos: u64, len: usize) -> io::Result<Vec<u8>> {
        use std::os::fd::AsRawFd;
        let start = align_down(pos);
        let end = align_up(pos + len as u64);
        let mut dma = self.0.alloc_dma_buffer((end - start) as usize);
        let buf = dma.as_bytes_mut();
        let mut got = 0usize;
        while got < buf.len() {
            // SAFETY: the pointer and length describe the live, aligned DMA buffer.
            let n = unsafe {
                libc::pread(
                    self.0.as_raw_fd(),
                    buf[got..].as_mut_ptr().cast(),
                    buf.len() - got,
                    (start + got as u64) as libc::off_t,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if n == 0 {
                break;
            }
            got += n as usize;
        }
        let from = ((pos - start) as usize).min(got);
        let to = (from + len).min(got);
        Ok(buf[from..to].to_vec())
    }

    async fn fdatasync(&self) -> io::Result<()> {
        Ok(self.0.fdatasync().await?)
    }

    /// One write with `RWF_DSYNC` (vendored glommio's `write_at_dsync`): it completes
    /// once durable, the kernel issuing the flush from the write's own completion. The
    /// write and its fdatasync linked in one submission were slower: the kernel queued
    /// the linked fdatasync to an io_uring worker only when this executor next ran its
    /// task work, and the worker, pinned to this core, waited for it. An error may be
    /// the write's or the flush's, so only ENOSPC (the write refused) is told apart,
    /// as the log needs.
    async fn write_and_sync(&self, pos: u64, buf: &[u8]) -> Result<(), SyncedWriteError> {
        let n = self
            .0
            .write_at_dsync(self.dma_copy(pos, buf), pos)
            .await
            .map_err(|e| SyncedWriteError::Write(e.into()))?;
        whole_write(n, buf.len()).map_err(SyncedWriteError::Write)
    }

    async fn zero_fill(&self, from: u64, to: u64) -> io::Result<()> {
        let mut pos = from;
        while pos < to {
            let n = ((to - pos) as usize).min(ZERO_CHUNK);
            let mut dma = self.0.alloc_dma_buffer(n);
            dma.as_bytes_mut().fill(0);
            let w = self.0.write_at(dma, pos).await?;
            if w != n {
                return Err(io::Error::new(io::ErrorKind::WriteZero, "short zero-fill"));
            }
            pos += n as u64;
        }
        Ok(())
    }

    async fn allocate(&self, len: u64) -> io::Result<()> {
        Ok(self.0.pre_allocate(len, false).await?)
    }

    async fn set_len(&self, len: u64) -> io::Result<()> {
        Ok(self.0.truncate(len).await?)
    }

    async fn size(&self) -> io::Result<u64> {
        Ok(self.0.file_size().await?)
    }

    async fn close(self) -> io::Result<()> {
        Ok(self.0.close().await?)
    }
}

impl Backend for GlommioBackend {
    type File = GlommioFile;

    async fn open(&self, path: &Path) -> io::Result<GlommioFile> {
        let f = glommio::io::OpenOptions::new()
            .read(true)
            .write(true)
            .dma_open(std::path::absolute(path)?)
            .await?;
        Ok(GlommioFile(f))
    }

    async fn create(&self, path: &Path) -> io::Result<GlommioFile> {
        let f = glommio::io::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .dma_open(std::path::absolute(path)?)
            .await?;
        Ok(GlommioFile(f))
    }

    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        Ok(glommio::io::rename(from, to).await?)
    }

    async fn remove(&self, path: &Path) -> io::Result<()> {
        Ok(glommio::io::remove(path).await?)
    }

    async fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        // Blocking, but small directories and only at startup / purge time.
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            if let Ok(name) = e.file_name().into_string() {
                out.push(name);
            }
        }
        Ok(out)
    }

    async fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        // glommio's Directory::open fails (EBADF) on a relative path, and zoo.cfg's
        // dataDir is often relative (the embedded default is ./data).
        let dir = std::path::absolute(dir)?;
        let d = glommio::io::Directory::open(&dir).await?;
        d.sync().await?;
        Ok(d.close().await?)
    }

    async fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    async fn prefetch(&self, path: &Path) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let f = std::fs::File::open(path)?;
        // SAFETY: an advisory call on a descriptor owned here.
        let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_WILLNEED) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        Ok(())
    }

    async fn map(&self, path: &Path) -> io::Result<Mapped> {
        let f = std::fs::File::open(path)?;
        if f.metadata()?.len() == 0 {
            return Ok(Mapped::Owned(Vec::new()));
        }
        // SAFETY: the engine maps only files it no longer writes (closed segments,
        // sealed snapshots) or that no writer has open yet (startup, offline tools).
        let m = unsafe { memmap2::Mmap::map(&f)? };
        Ok(Mapped::Mmap(m))
    }
}

// ---------------------------------------------------------------------------------------
// Simulated backend with faults.

const SECTOR: usize = 512;

/// splitmix64: a tiny deterministic generator so a failing seed replays exactly.
#[derive(Clone, Debug)]
pub struct SimRng(u64);

impl SimRng {
    pub fn new(seed: u64) -> Self {
        SimRng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

#[derive(Default)]
struct Inode {
    /// What reads see (the page cache).
    data: Vec<u8>,
    /// What survives a power cut.
    durable: Vec<u8>,
    /// Writes and length changes since the last fdatasync, in order.
    pending: Vec<Pending>,
}

enum Pending {
    Write(u64, Vec<u8>),
    SetLen(u64),
}

impl Pending {
    fn apply_to(&self, v: &mut Vec<u8>) {
        match self {
            Pending::Write(pos, buf) => apply(v, *pos, buf),
            Pending::SetLen(len) => v.resize(*len as usize, 0),
        }
    }
}

enum DirOp {
    Link(PathBuf, usize),
    Unlink(PathBuf),
    /// rename(2) is atomic: after a crash the file is under one of the two names,
    /// never under neither (ext4 journals it as one operation).
    Rename(PathBuf, PathBuf, usize),
}

impl DirOp {
    fn in_dir(&self, dir: &Path) -> bool {
        match self {
            DirOp::Link(p, _) | DirOp::Unlink(p) => p.parent() == Some(dir),
            DirOp::Rename(from, to, _) => from.parent() == Some(dir) || to.parent() == Some(dir),
        }
    }

    fn apply_to(self, names: &mut BTreeMap<PathBuf, usize>) {
        match self {
            DirOp::Link(p, i) => {
                names.insert(p, i);
            }
            DirOp::Unlink(p) => {
                names.remove(&p);
            }
            DirOp::Rename(from, to, i) => {
                names.remove(&from);
                names.insert(to, i);
            }
        }
    }
}

struct SimState {
    rng: SimRng,
    inodes: Vec<Inode>,
    /// The namespace reads see.
    names: BTreeMap<PathBuf, usize>,
    /// The namespace that survives a power cut.
    durable_names: BTreeMap<PathBuf, usize>,
    /// Namespace changes since the last sync_dir of their directory.
    pending_dir: Vec<DirOp>,
    dirs: Vec<PathBuf>,
    /// Total bytes of linked files allowed; writes beyond fail with ENOSPC.
    capacity: Option<u64>,
    /// This many next fdatasyncs fail with EIO.
    fail_syncs: u32,
    /// Bumped by a power cut: handles from before are dead.
    generation: u64,
    /// A scheduled power cut: fires at the operation this counts down to.
    cut_in: Option<u64>,
    stats: SimStats,
}

/// Counters for tests.
#[derive(Clone, Copy, Debug, Default)]
pub struct SimStats {
    pub writes: u64,
    pub fdatasyncs: u64,
    pub power_cuts: u64,
    /// Files created (`create` calls that got that far).
    pub creates: u64,
}

/// An in-memory file system that models what a crash can leave behind: unsynced writes
/// lost, kept or torn by sector; unsynced directory changes lost (a random prefix of
/// them survives; a rename survives whole or not at all, as rename(2) is atomic); ENOSPC
/// when a capacity is set; EIO from fdatasync on demand. All randomness comes from the
/// seed.
#[derive(Clone)]
pub struct SimBackend {
    st: Rc<RefCell<SimState>>,
}

pub struct SimFile {
    st: Rc<RefCell<SimState>>,
    inode: usize,
    generation: u64,
}

fn errno(e: i32) -> io::Error {
    io::Error::from_raw_os_error(e)
}

impl SimBackend {
    pub fn new(seed: u64) -> Self {
        SimBackend {
            st: Rc::new(RefCell::new(SimState {
                rng: SimRng::new(seed),
                inodes: Vec::new(),
                names: BTreeMap::new(),
                durable_names: BTreeMap::new(),
                pending_dir: Vec::new(),
                dirs: Vec::new(),
                capacity: None,
                fail_syncs: 0,
                generation: 0,
                cut_in: None,
                stats: SimStats::default(),
            })),
        }
    }

    /// Limits the bytes all linked files may hold (None: unlimited).
    pub fn set_capacity(&self, cap: Option<u64>) {
        self.st.borrow_mut().capacity = cap;
    }

    /// Bytes currently held by linked files.
    pub fn used(&self) -> u64 {
        self.st.borrow().used()
    }

    /// The next `n` fdatasync calls fail with EIO.
    pub fn fail_next_syncs(&self, n: u32) {
        self.st.borrow_mut().fail_syncs = n;
    }

    pub fn stats(&self) -> SimStats {
        self.st.borrow().stats
    }

    /// Simulates a power cut: every unsynced write is independently kept, lost or torn
    /// by sector; a random prefix of the unsynced namespace changes survives. Open
    /// handles die (their operations fail with EIO).
    pub fn power_cut(&self) {
        self.st.borrow_mut().power_cut();
    }

    /// Cuts the power during the `n`-th next mutating operation (write, set_len,
    /// fdatasync, create, rename, remove, sync_dir; 0 = the very next one). A write is cut after it
    /// was issued, so it may be torn. The operation fails with EIO, as do all later
    /// operations on files opened before the cut.
    pub fn cut_power_after(&self, n: u64) {
        self.st.borrow_mut().cut_in = Some(n);
    }

    /// Whether a scheduled cut has happened (and cleared itself).
    pub fn cut_pending(&self) -> bool {
        self.st.borrow().cut_in.is_some()
    }

    /// Raw bytes of a file as reads see them (for tests that damage files).
    pub fn read_file(&self, path: &Path) -> Option<Vec<u8>> {
        let st = self.st.borrow();
        st.names.get(path).map(|&i| st.inodes[i].data.clone())
    }

    /// Overwrites bytes of a file durably, bypassing alignment (for tests that damage
    /// files as a failing disk would).
    pub fn corrupt(&self, path: &Path, pos: u64, bytes: &[u8]) {
        let mut st = self.st.borrow_mut();
        if let Some(&i) = st.names.get(path) {
            let ino = &mut st.inodes[i];
            apply(&mut ino.data, pos, bytes);
            apply(&mut ino.durable, pos, bytes);
        }
    }
}

fn apply(v: &mut Vec<u8>, pos: u64, buf: &[u8]) {
    let pos = pos as usize;
    if v.len() < pos + buf.len() {
        v.resize(pos + buf.len(), 0);
    }
    v[pos..pos + buf.len()].copy_from_slice(buf);
}

impl SimState {
    fn power_cut(&mut self) {
        let st = self;
        st.stats.power_cuts += 1;
        st.generation += 1;
        st.cut_in = None;
        for ino in st.inodes.iter_mut() {
            for op in std::mem::take(&mut ino.pending) {
                // Kept whole, lost, or (a write) torn by sector; a length change is
                // kept or lost.
                match st.rng.below(3) {
                    0 => op.apply_to(&mut ino.durable),
                    1 => {}
                    _ => match &op {
                        Pending::SetLen(_) => op.apply_to(&mut ino.durable),
                        Pending::Write(pos, buf) => {
                            for (i, sector) in buf.chunks(SECTOR).enumerate() {
                                if st.rng.below(2) == 0 {
                                    apply(&mut ino.durable, pos + (i * SECTOR) as u64, sector);
                                }
                            }
                        }
                    },
                }
            }
            ino.data = ino.durable.clone();
        }
        let pending = std::mem::take(&mut st.pending_dir);
        let keep = st.rng.below(pending.len() as u64 + 1) as usize;
        for op in pending.into_iter().take(keep) {
            op.apply_to(&mut st.durable_names);
        }
        st.names = st.durable_names.clone();
    }

    /// Counts down a scheduled power cut; Err(EIO) when it fires.
    fn tick(&mut self) -> io::Result<()> {
        match self.cut_in {
            Some(0) => {
                self.power_cut();
                Err(errno(libc::EIO))
            }
            Some(n) => {
                self.cut_in = Some(n - 1);
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn used(&self) -> u64 {
        self.names
            .values()
            .map(|&i| self.inodes[i].data.len() as u64)
            .sum()
    }

    fn link(&mut self, path: &Path, ino: usize) {
        self.names.insert(path.to_path_buf(), ino);
        self.pending_dir.push(DirOp::Link(path.to_path_buf(), ino));
    }

    fn dir_exists(&self, dir: &Path) -> bool {
        self.dirs.iter().any(|d| d == dir)
    }
}

impl SimFile {
    fn check(&self) -> io::Result<()> {
        if self.st.borrow().generation != self.generation {
            return Err(errno(libc::EIO));
        }
        Ok(())
    }
}

impl StorageFile for SimFile {
    async fn write_at(&self, pos: u64, buf: &[u8]) -> io::Result<()> {
        self.check()?;
        if !pos.is_multiple_of(ALIGN as u64) || !buf.len().is_multiple_of(ALIGN) {
            return Err(errno(libc::EINVAL));
        }
        let mut st = self.st.borrow_mut();
        let cur = st.inodes[self.inode].data.len() as u64;
        let end = pos + buf.len() as u64;
        if let Some(cap) = st.capacity {
            if end > cur && st.used() + (end - cur) > cap {
                return Err(errno(libc::ENOSPC));
            }
        }
        st.stats.writes += 1;
        let ino = &mut st.inodes[self.inode];
        apply(&mut ino.data, pos, buf);
        ino.pending.push(Pending::Write(pos, buf.to_vec()));
        st.tick()
    }

    async fn read_at(&self, pos: u64, len: usize) -> io::Result<Vec<u8>> {
        self.check()?;
        let st = self.st.borrow();
        let d = &st.inodes[self.inode].data;
        let start = (pos as usize).min(d.len());
        let end = start.saturating_add(len).min(d.len());
        Ok(d[start..end].to_vec())
    }

    async fn fdatasync(&self) -> io::Result<()> {
        self.check()?;
        let mut st = self.st.borrow_mut();
        st.tick()?;
        st.stats.fdatasyncs += 1;
        if st.fail_syncs > 0 {
            st.fail_syncs -= 1;
            return Err(errno(libc::EIO));
        }
        let ino = &mut st.inodes[self.inode];
        for op in std::mem::take(&mut ino.pending) {
            op.apply_to(&mut ino.durable);
        }
        Ok(())
    }

    async fn zero_fill(&self, from: u64, to: u64) -> io::Result<()> {
        let mut pos = from;
        while pos < to {
            let n = ((to - pos) as usize).min(ZERO_CHUNK);
            self.write_at(pos, &vec![0u8; n]).await?;
            pos += n as u64;
        }
        Ok(())
    }

    async fn allocate(&self, len: u64) -> io::Result<()> {
        let cur = self.size().await?;
        if len > cur {
            self.zero_fill(align_down(cur), align_up(len)).await?;
        }
        Ok(())
    }

    async fn set_len(&self, len: u64) -> io::Result<()> {
        self.check()?;
        let mut st = self.st.borrow_mut();
        let cur = st.inodes[self.inode].data.len() as u64;
        if let Some(cap) = st.capacity {
            if len > cur && st.used() + (len - cur) > cap {
                return Err(errno(libc::ENOSPC));
            }
        }
        st.stats.writes += 1;
        let ino = &mut st.inodes[self.inode];
        let op = Pending::SetLen(len);
        op.apply_to(&mut ino.data);
        ino.pending.push(op);
        st.tick()
    }

    async fn size(&self) -> io::Result<u64> {
        self.check()?;
        Ok(self.st.borrow().inodes[self.inode].data.len() as u64)
    }

    async fn close(self) -> io::Result<()> {
        Ok(())
    }
}

impl Backend for SimBackend {
    type File = SimFile;

    async fn open(&self, path: &Path) -> io::Result<SimFile> {
        let st = self.st.borrow();
        let &inode = st.names.get(path).ok_or_else(|| errno(libc::ENOENT))?;
        Ok(SimFile {
            st: self.st.clone(),
            inode,
            generation: st.generation,
        })
    }

    async fn create(&self, path: &Path) -> io::Result<SimFile> {
        let mut st = self.st.borrow_mut();
        st.tick()?;
        let parent = path.parent().unwrap_or(Path::new(""));
        if !st.dir_exists(parent) {
            return Err(errno(libc::ENOENT));
        }
        // O_TRUNC modelled as a fresh inode replacing the name: the old contents stay
        // reachable through the durable namespace until the directory is synced.
        st.stats.creates += 1;
        st.inodes.push(Inode::default());
        let inode = st.inodes.len() - 1;
        st.link(path, inode);
        Ok(SimFile {
            st: self.st.clone(),
            inode,
            generation: st.generation,
        })
    }

    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.st.borrow_mut();
        st.tick()?;
        let ino = st.names.remove(from).ok_or_else(|| errno(libc::ENOENT))?;
        st.names.insert(to.to_path_buf(), ino);
        st.pending_dir
            .push(DirOp::Rename(from.to_path_buf(), to.to_path_buf(), ino));
        Ok(())
    }

    async fn remove(&self, path: &Path) -> io::Result<()> {
        let mut st = self.st.borrow_mut();
        st.tick()?;
        st.names.remove(path).ok_or_else(|| errno(libc::ENOENT))?;
        st.pending_dir.push(DirOp::Unlink(path.to_path_buf()));
        Ok(())
    }

    async fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let st = self.st.borrow();
        if !st.dir_exists(dir) {
            return Err(errno(libc::ENOENT));
        }
        Ok(st
            .names
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
            .collect())
    }

    async fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.st.borrow_mut();
        st.tick()?;
        let st = &mut *st;
        let (mine, rest): (Vec<DirOp>, Vec<DirOp>) = std::mem::take(&mut st.pending_dir)
            .into_iter()
            .partition(|op| op.in_dir(dir));
        st.pending_dir = rest;
        for op in mine {
            op.apply_to(&mut st.durable_names);
        }
        Ok(())
    }

    async fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.st.borrow_mut();
        // Directories are modelled as always durable: the engine creates them once.
        let mut d = Some(dir);
        while let Some(p) = d {
            if !st.dir_exists(p) {
                st.dirs.push(p.to_path_buf());
            }
            d = p.parent();
        }
        Ok(())
    }

    async fn map(&self, path: &Path) -> io::Result<Mapped> {
        let st = self.st.borrow();
        let &i = st.names.get(path).ok_or_else(|| errno(libc::ENOENT))?;
        Ok(Mapped::Owned(st.inodes[i].data.clone()))
    }
}
