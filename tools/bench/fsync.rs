//! `corral-bench fsync`: what durability costs on the disk under `--dir`.
//!
//! Two parts, both on the real file system (nothing talks to a server):
//!
//! 1. Latency of one 4 KiB write + fdatasync, four ways: (a) O_DIRECT overwrite of a
//!    zero-filled preallocated file, which is what corral's txn log does; (b) O_DIRECT
//!    into an fallocate'd file (unwritten extents, converted at sync time); (c) buffered
//!    append + fdatasync, roughly what Apache ZooKeeper's `FileTxnLog` does through the
//!    JVM; (d) buffered write into a sparse file preallocated by writing its last byte,
//!    which is exactly ZooKeeper's `FilePadding`. (a) and (b) go through corral's own
//!    `GlommioBackend` (glommio `DmaFile`, io_uring), (c) and (d) through plain blocking
//!    `write` + `fdatasync` as the JVM issues them.
//! 2. Group commit through corral's real `storage::TxnLog`: K records in flight, each
//!    round logged with one `append_batch` (one frame, one aligned O_DIRECT write, one
//!    fdatasync) and acknowledged together, so the numbers are the engine's own.
//!
//! Why both: the issue asks whether zero-filling segments and batching syncs pay off;
//! part 1 isolates the file-layout choice, part 2 shows what batching buys as the
//! number of writers grows. Everything is written under a private subdirectory of
//! `--dir` that is removed afterwards, also on error.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use bytes::Bytes;
use clap::Args;
use corral::proto::OpCode;
use corral::request::txn::{Txn, TxnHeader};
use corral::storage::backend::align_up;
use corral::storage::log::{FRAME_HEADER_LEN, SEG_HEADER_LEN};
use corral::storage::txn_codec::txn_to_bytes;
use corral::storage::{recover, Backend, GlommioBackend, LogConfig, StorageFile};
use serde::Serialize;

const BLOCK: usize = 4096;

#[derive(Args, Debug, Clone)]
pub struct FsyncArgs {
    /// Directory on the disk to measure (created if missing; our files are removed).
    #[arg(long, default_value = "./data")]
    pub dir: PathBuf,
    /// Measured 4 KiB write + fdatasync per latency test.
    #[arg(long, default_value_t = 2000)]
    pub iterations: usize,
    /// Unmeasured iterations (and group-commit rounds) before measuring.
    #[arg(long, default_value_t = 20)]
    pub warmup: usize,
    /// Data bytes per record in the group-commit test (a setData of this size).
    #[arg(long, default_value_t = 100)]
    pub record_size: usize,
    /// Records in flight per group-commit round, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64,256,1024")]
    pub in_flight: Vec<usize>,
    /// Measured group-commit rounds per in-flight level [default: --iterations].
    #[arg(long)]
    pub rounds: Option<usize>,
    /// Skip the 4 KiB latency tests.
    #[arg(long)]
    pub no_latency: bool,
    /// Skip the group-commit test.
    #[arg(long)]
    pub no_group_commit: bool,
    /// Write the results as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

// ---------------------------------------------------------------------------------------
// Results.

#[derive(Serialize, Debug, Clone, Default)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub kernel: String,
    pub dir: String,
    pub fs_type: String,
    pub fs_device: String,
    pub fs_mount_point: String,
    pub fs_options: String,
    /// `/sys/block/<dev>/queue/write_cache`: "write back" means the device claims a
    /// volatile cache that fdatasync must flush.
    pub device_write_cache: String,
    pub device_rotational: String,
    /// `/proc/loadavg` when the run started: other work on the machine widens the tails.
    pub load_average: String,
}

#[derive(Serialize, Debug, Clone)]
pub struct LatencyRow {
    pub name: String,
    pub what: String,
    pub iterations: usize,
    /// Preparing the file before measuring (zero-fill / fallocate / padding + sync).
    pub prepare_ms: f64,
    pub syncs_per_s: f64,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

#[derive(Serialize, Debug, Clone)]
pub struct GroupRow {
    pub in_flight: usize,
    pub rounds: usize,
    pub records_per_s: f64,
    pub batches_per_s: f64,
    /// Bytes of one batch frame (O_DIRECT writes are this rounded up to 4 KiB, plus the
    /// rewritten tail block).
    pub frame_bytes: usize,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    /// The log's own fdatasync histogram (includes the warm-up rounds).
    pub fsync_p50_us: f64,
    pub fsync_p99_us: f64,
    /// Segments the log started during the measured rounds (0: steady state).
    pub segment_rolls: usize,
}

#[derive(Serialize, Debug, Clone)]
pub struct GroupCommit {
    pub engine: String,
    pub record_data_bytes: usize,
    /// One encoded `(TxnHeader, Txn)` plus its 4-byte length prefix in the frame.
    pub record_encoded_bytes: usize,
    pub segment_prealloc_note: String,
    pub rows: Vec<GroupRow>,
}

#[derive(Serialize, Debug, Clone)]
pub struct FsyncResult {
    pub machine: Machine,
    pub warmup: usize,
    pub latency: Vec<LatencyRow>,
    pub group_commit: Option<GroupCommit>,
    pub notes: Vec<String>,
}

// ---------------------------------------------------------------------------------------
// Statistics.

/// Nearest-rank percentile of sorted samples (`q` in 0..=1); 0 when empty.
pub fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1e3
}

fn latency_row(name: &str, what: &str, prep_ns: u64, mut ns: Vec<u64>) -> LatencyRow {
    ns.sort_unstable();
    let total: u64 = ns.iter().sum();
    let n = ns.len().max(1) as f64;
    LatencyRow {
        name: name.into(),
        what: what.into(),
        iterations: ns.len(),
        prepare_ms: prep_ns as f64 / 1e6,
        syncs_per_s: if total == 0 {
            0.0
        } else {
            ns.len() as f64 / (total as f64 / 1e9)
        },
        mean_us: us(total) / n,
        p50_us: us(percentile(&ns, 0.5)),
        p99_us: us(percentile(&ns, 0.99)),
        p999_us: us(percentile(&ns, 0.999)),
        max_us: us(ns.last().copied().unwrap_or(0)),
    }
}

// ---------------------------------------------------------------------------------------
// Machine description.

/// Undoes the octal escapes /proc/mounts uses for blanks and backslashes.
fn unescape_mount(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mount holding `dir` (already canonical): the longest mount point that is a
/// prefix of it. Returns (device, mount point, fs type, options).
pub fn mount_of(mounts: &str, dir: &Path) -> Option<(String, String, String, String)> {
    let mut best: Option<(String, String, String, String)> = None;
    for line in mounts.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 4 {
            continue;
        }
        let mp = unescape_mount(f[1]);
        if !dir.starts_with(Path::new(&mp)) {
            continue;
        }
        // Later lines shadow earlier ones on the same mount point (over-mounts).
        if best.as_ref().is_none_or(|b| mp.len() >= b.1.len()) {
            best = Some((unescape_mount(f[0]), mp, f[2].into(), f[3].into()));
        }
    }
    best
}

fn read_trim(p: impl AsRef<Path>) -> String {
    fs::read_to_string(p)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The block device's queue directory for `/dev/NAME` (a partition's is its disk's).
fn queue_dir(device: &str) -> Option<PathBuf> {
    let name = Path::new(device).file_name()?.to_str()?;
    let sys = fs::canonicalize(Path::new("/sys/class/block").join(name)).ok()?;
    [sys.join("queue"), sys.parent()?.join("queue")]
        .into_iter()
        .find(|q| q.is_dir())
}

pub fn describe_machine(dir: &Path) -> Machine {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let canon = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mounts = fs::read_to_string("/proc/mounts").unwrap_or_default();
    let (dev, mp, ty, opts) = mount_of(&mounts, &canon).unwrap_or_default();
    let q = queue_dir(&dev);
    let qread = |f: &str| q.as_ref().map(|q| read_trim(q.join(f))).unwrap_or_default();
    Machine {
        cpus,
        cpu_model,
        kernel: read_trim("/proc/sys/kernel/osrelease"),
        dir: canon.display().to_string(),
        fs_type: ty,
        fs_device: dev,
        fs_mount_point: mp,
        fs_options: opts,
        device_write_cache: qread("write_cache"),
        device_rotational: qread("rotational"),
        load_average: read_trim("/proc/loadavg"),
    }
}

// ---------------------------------------------------------------------------------------
// Part 1: 4 KiB write + fdatasync.

#[derive(Clone, Copy)]
enum Prep {
    ZeroFill,
    Fallocate,
}

/// O_DIRECT through corral's backend: prepare `n` blocks, then overwrite them one by one
/// with a sync after each. Returns (prepare ns, per-iteration ns of the measured part).
async fn direct_latency(
    path: &Path,
    prep: Prep,
    warmup: usize,
    iterations: usize,
) -> io::Result<(u64, Vec<u64>)> {
    let b = GlommioBackend;
    let f = b.create(path).await?;
    let len = ((warmup + iterations) * BLOCK) as u64;
    let t = Instant::now();
    match prep {
        Prep::ZeroFill => f.zero_fill(0, len).await?,
        Prep::Fallocate => f.allocate(len).await?,
    }
    f.fdatasync().await?;
    if let Some(d) = path.parent() {
        b.sync_dir(d).await?;
    }
    let prep_ns = t.elapsed().as_nanos() as u64;
    let block = vec![0xa5u8; BLOCK];
    let mut out = Vec::with_capacity(iterations);
    for i in 0..warmup + iterations {
        let t = Instant::now();
        f.write_at((i * BLOCK) as u64, &block).await?;
        f.fdatasync().await?;
        if i >= warmup {
            out.push(t.elapsed().as_nanos() as u64);
        }
    }
    f.close().await?;
    b.remove(path).await?;
    Ok((prep_ns, out))
}

/// Buffered writes with blocking syscalls, as the JVM issues them: `sparse` pads the
/// file first by writing its last byte (ZooKeeper's `FilePadding`) and writes inside it;
/// otherwise every write appends and grows the file.
fn buffered_latency(
    path: &Path,
    sparse: bool,
    warmup: usize,
    iterations: usize,
) -> io::Result<(u64, Vec<u64>)> {
    let mut f = fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(path)?;
    let t = Instant::now();
    if sparse {
        let len = ((warmup + iterations) * BLOCK) as u64;
        f.write_all_at(&[0], len - 1)?;
    }
    f.sync_all()?;
    if let Some(d) = path.parent() {
        fs::File::open(d)?.sync_all()?;
    }
    let prep_ns = t.elapsed().as_nanos() as u64;
    let block = vec![0xa5u8; BLOCK];
    let mut out = Vec::with_capacity(iterations);
    for i in 0..warmup + iterations {
        let t = Instant::now();
        if sparse {
            f.write_all_at(&block, (i * BLOCK) as u64)?;
        } else {
            f.write_all(&block)?;
        }
        f.sync_data()?;
        if i >= warmup {
            out.push(t.elapsed().as_nanos() as u64);
        }
    }
    drop(f);
    fs::remove_file(path)?;
    Ok((prep_ns, out))
}

// ---------------------------------------------------------------------------------------
// Part 2: group commit through the real TxnLog.

/// `k` setData txns of `data` bytes, with fixed-width paths so every record encodes to
/// the same size.
fn make_batch(k: usize, data_size: usize) -> Vec<(TxnHeader, Txn)> {
    let data = Bytes::from(vec![0x5au8; data_size]);
    (0..k)
        .map(|i| {
            (
                TxnHeader {
                    client_id: 0x1000_0000_0000 + (i % 64) as i64,
                    cxid: i as i32,
                    zxid: 0,
                    time: 1_700_000_000_000,
                    op: OpCode::SetData,
                },
                Txn::SetData {
                    path: format!("/corral-bench/k{i:010}"),
                    data: data.clone(),
                    version: 1,
                },
            )
        })
        .collect()
}

/// Bytes one record takes in a frame: its encoding plus the u32 length prefix.
fn encoded_record_len(data_size: usize) -> usize {
    let b = make_batch(1, data_size);
    4 + txn_to_bytes(&b[0].0, &b[0].1).len()
}

fn frame_len(k: usize, rec: usize) -> usize {
    (FRAME_HEADER_LEN + k * rec).div_ceil(8) * 8
}

async fn group_commit_one(
    root: &Path,
    k: usize,
    data_size: usize,
    warmup: usize,
    rounds: usize,
) -> Result<GroupRow, String> {
    let dir = root.join(format!("group-{k}"));
    let frame = frame_len(k, encoded_record_len(data_size));
    let mut cfg = LogConfig::new(dir.join("log"));
    // One segment holds the whole run so the measured rounds never pay for zero-filling
    // a new one (64 MiB takes ~50 ms here); the server's segments are 64 MiB.
    cfg.prealloc_size =
        align_up((SEG_HEADER_LEN + (warmup + rounds + 1) * frame) as u64 + (64 << 10));
    let (_, mut log) = recover(GlommioBackend, cfg, &dir.join("snap"))
        .await
        .map_err(|e| format!("opening the txn log in {}: {e}", dir.display()))?;
    let mut batch = make_batch(k, data_size);
    let mut zxid = log.last_zxid();
    let mut lat = Vec::with_capacity(rounds);
    let mut rolls = 0;
    let mut seg = None;
    let mut measured_ns = 0u64;
    for r in 0..warmup.max(1) + rounds {
        for (h, _) in batch.iter_mut() {
            zxid += 1;
            h.zxid = zxid;
        }
        let t = Instant::now();
        log.append_batch(&batch)
            .await
            .map_err(|e| format!("append_batch of {k} records: {e}"))?;
        let ns = t.elapsed().as_nanos() as u64;
        let cur = log.current_segment().map(Path::to_path_buf);
        if r >= warmup.max(1) {
            lat.push(ns);
            measured_ns += ns;
            if cur != seg {
                rolls += 1;
            }
        }
        seg = cur;
    }
    let fh = log.fsync_histogram();
    let (fsync_p50_us, fsync_p99_us) = (
        fh.value_at_quantile(0.5) as f64,
        fh.value_at_quantile(0.99) as f64,
    );
    drop(log);
    let _ = fs::remove_dir_all(&dir);
    lat.sort_unstable();
    let secs = (measured_ns as f64 / 1e9).max(1e-9);
    Ok(GroupRow {
        in_flight: k,
        rounds,
        records_per_s: (k * rounds) as f64 / secs,
        batches_per_s: rounds as f64 / secs,
        frame_bytes: frame,
        p50_us: us(percentile(&lat, 0.5)),
        p99_us: us(percentile(&lat, 0.99)),
        p999_us: us(percentile(&lat, 0.999)),
        max_us: us(lat.last().copied().unwrap_or(0)),
        fsync_p50_us,
        fsync_p99_us,
        segment_rolls: rolls,
    })
}

// ---------------------------------------------------------------------------------------
// Driver.

/// Removes the private work directory (and `--dir` if we created it and it is empty)
/// however the run ends.
struct Cleanup {
    work: PathBuf,
    created_root: Option<PathBuf>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.work);
        if let Some(r) = &self.created_root {
            let _ = fs::remove_dir(r);
        }
    }
}

pub fn measure(a: &FsyncArgs) -> Result<FsyncResult, String> {
    if a.iterations == 0 {
        return Err("--iterations must be at least 1".into());
    }
    if a.in_flight.contains(&0) {
        return Err("--in-flight levels must be at least 1".into());
    }
    let created_root = if a.dir.exists() {
        None
    } else {
        fs::create_dir_all(&a.dir).map_err(|e| format!("creating {}: {e}", a.dir.display()))?;
        Some(a.dir.clone())
    };
    // Absolute: glommio's `Directory::open` (behind `sync_dir`) fails with EBADF on a
    // relative path.
    let root =
        std::path::absolute(&a.dir).map_err(|e| format!("resolving {}: {e}", a.dir.display()))?;
    let work = root.join(format!("corral-bench-fsync.{}", std::process::id()));
    let _cleanup = Cleanup {
        work: work.clone(),
        created_root,
    };
    fs::create_dir_all(&work).map_err(|e| format!("creating {}: {e}", work.display()))?;
    let machine = describe_machine(&a.dir);
    let (warmup, iterations) = (a.warmup, a.iterations);
    let rounds = a.rounds.unwrap_or(iterations).max(1);

    let mut latency = Vec::new();
    if !a.no_latency {
        eprintln!("corral-bench fsync: 4 KiB write + fdatasync, {iterations} iterations each ...");
    }
    let ex = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .name("fsync-bench")
        .io_memory(4 << 20)
        .make()
        .map_err(|e| format!("starting a glommio executor: {e}"))?;
    let (direct, group) = ex.run({
        let work = work.clone();
        let a = a.clone();
        async move {
            let mut direct = Vec::new();
            if !a.no_latency {
                for (name, prep) in [
                    ("zero-filled", Prep::ZeroFill),
                    ("fallocated", Prep::Fallocate),
                ] {
                    let p = work.join(name);
                    let r = direct_latency(&p, prep, warmup, iterations)
                        .await
                        .map_err(|e| format!("{name} O_DIRECT test in {}: {e}", p.display()))?;
                    direct.push(r);
                }
            }
            let mut group = Vec::new();
            if !a.no_group_commit {
                for &k in &a.in_flight {
                    eprintln!(
                        "corral-bench fsync: group commit, {k} in flight, {rounds} rounds ..."
                    );
                    group.push(group_commit_one(&work, k, a.record_size, warmup, rounds).await?);
                }
            }
            Ok::<_, String>((direct, group))
        }
    })?;
    if !a.no_latency {
        let mut direct = direct.into_iter();
        if let Some((prep, ns)) = direct.next() {
            latency.push(latency_row(
                "a) O_DIRECT, zero-filled",
                "overwrite of a zero-filled, synced file (corral's txn log); glommio DmaFile",
                prep,
                ns,
            ));
        }
        if let Some((prep, ns)) = direct.next() {
            latency.push(latency_row(
                "b) O_DIRECT, fallocated",
                "write into fallocate'd unwritten extents; glommio DmaFile",
                prep,
                ns,
            ));
        }
        for (name, what, sparse) in [
            (
                "c) buffered append",
                "write(2) appending to the file + fdatasync (the file grows each time)",
                false,
            ),
            (
                "d) buffered, sparse pad",
                "write(2) into a file padded by writing its last byte (ZooKeeper FilePadding) + fdatasync",
                true,
            ),
        ] {
            let p = work.join(if sparse { "sparse" } else { "append" });
            let (prep, ns) = buffered_latency(&p, sparse, warmup, iterations)
                .map_err(|e| format!("{name} test in {}: {e}", p.display()))?;
            latency.push(latency_row(name, what, prep, ns));
        }
    }
    let group_commit = (!a.no_group_commit).then(|| GroupCommit {
        engine:
            "corral::storage::TxnLog::append_batch on GlommioBackend (the server's own log code)"
                .into(),
        record_data_bytes: a.record_size,
        record_encoded_bytes: encoded_record_len(a.record_size),
        segment_prealloc_note:
            "Each K logs into one zero-filled segment sized for its run, created before measuring"
                .into(),
        rows: group,
    });
    let mut notes = vec![
        "Latency is wall time of write + fdatasync (group commit: of one append_batch: encode, write, fdatasync). Percentiles are nearest-rank over every measured sample.".to_string(),
        "fdatasync on a virtual disk may be absorbed by the host's cache and take ~100 us; a real SSD without power-loss protection takes ~0.5-2 ms per flush and a spinning disk 5-10 ms, so divide the single-writer rates accordingly and expect group commit to matter more there.".to_string(),
    ];
    if machine.device_write_cache == "write back" {
        notes.push(format!(
            "{} reports a volatile write-back cache, so each fdatasync also sends it a flush; whether the host then makes the data durable is not visible from inside the guest.",
            machine.fs_device
        ));
    }
    Ok(FsyncResult {
        machine,
        warmup,
        latency,
        group_commit,
        notes,
    })
}

fn fmt_rate(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

pub fn table(r: &FsyncResult) -> String {
    use std::fmt::Write as _;
    let m = &r.machine;
    let mut s = String::new();
    let _ = writeln!(s, "corral-bench fsync");
    let _ = writeln!(
        s,
        "  machine: {} cpus ({}), kernel {}, load average at start {}",
        m.cpus,
        if m.cpu_model.is_empty() {
            "model unknown"
        } else {
            &m.cpu_model
        },
        m.kernel,
        m.load_average
            .split(' ')
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let _ = writeln!(
        s,
        "  dir:     {} on {} {} (mounted at {}, {})",
        m.dir, m.fs_type, m.fs_device, m.fs_mount_point, m.fs_options
    );
    if !m.device_write_cache.is_empty() {
        let _ = writeln!(
            s,
            "  device:  write_cache={}, rotational={}",
            m.device_write_cache, m.device_rotational
        );
    }
    if !r.latency.is_empty() {
        let _ = writeln!(
            s,
            "\n1. One 4 KiB write + fdatasync, {} iterations each after {} unmeasured (microseconds)",
            r.latency[0].iterations, r.warmup
        );
        let _ = writeln!(
            s,
            "  {:<26} {:>9} {:>8} {:>8} {:>8} {:>8} {:>9} {:>10}",
            "file", "syncs/s", "mean", "p50", "p99", "p99.9", "max", "prepare"
        );
        for l in &r.latency {
            let _ = writeln!(
                s,
                "  {:<26} {:>9} {:>8.0} {:>8.0} {:>8.0} {:>8.0} {:>9.0} {:>8.1}ms",
                l.name,
                fmt_rate(l.syncs_per_s),
                l.mean_us,
                l.p50_us,
                l.p99_us,
                l.p999_us,
                l.max_us,
                l.prepare_ms
            );
        }
        for l in &r.latency {
            let _ = writeln!(s, "     {}: {}", &l.name[..1], l.what);
        }
    }
    if let Some(g) = &r.group_commit {
        let _ = writeln!(s, "\n2. Group commit through {}", g.engine);
        let _ = writeln!(
            s,
            "   K setData txns of {} data bytes in flight ({} bytes each in a frame); each round is one\n   \
             append_batch of all K = one frame, one aligned O_DIRECT write, one fdatasync, then all K\n   \
             are acknowledged.\n   {}.\n   \"fsync p50/p99\" is the log's own fdatasync histogram (us).",
            g.record_data_bytes, g.record_encoded_bytes, g.segment_prealloc_note
        );
        let _ = writeln!(
            s,
            "  {:>6} {:>7} {:>10} {:>9} {:>9} {:>8} {:>8} {:>8} {:>9} {:>14}",
            "K",
            "rounds",
            "records/s",
            "batches/s",
            "frame B",
            "p50 us",
            "p99 us",
            "p99.9",
            "max us",
            "fsync p50/p99"
        );
        for row in &g.rows {
            let _ = writeln!(
                s,
                "  {:>6} {:>7} {:>10} {:>9} {:>9} {:>8.0} {:>8.0} {:>8.0} {:>9.0} {:>14}{}",
                row.in_flight,
                row.rounds,
                fmt_rate(row.records_per_s),
                fmt_rate(row.batches_per_s),
                row.frame_bytes,
                row.p50_us,
                row.p99_us,
                row.p999_us,
                row.max_us,
                format!("{:.0}/{:.0}", row.fsync_p50_us, row.fsync_p99_us),
                if row.segment_rolls > 0 {
                    format!("  ({} segment rolls)", row.segment_rolls)
                } else {
                    String::new()
                }
            );
        }
    }
    let _ = writeln!(s, "\nNotes:");
    for n in &r.notes {
        let _ = writeln!(s, "  - {n}");
    }
    s
}

pub fn run(a: FsyncArgs) -> Result<(), String> {
    let r = measure(&a)?;
    print!("{}", table(&r));
    let _ = io::stdout().flush();
    if let Some(p) = &a.json {
        let json = serde_json::to_string_pretty(&r).map_err(|e| e.to_string())?;
        fs::write(p, json).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=1000).collect();
        assert_eq!(percentile(&v, 0.5), 500);
        assert_eq!(percentile(&v, 0.99), 990);
        assert_eq!(percentile(&v, 0.999), 999);
        assert_eq!(percentile(&v, 1.0), 1000);
        assert_eq!(percentile(&v, 0.0), 1);
        assert_eq!(percentile(&[7], 0.99), 7);
        assert_eq!(percentile(&[], 0.5), 0);
    }

    #[test]
    fn mount_is_the_longest_prefix_and_unescaped() {
        let mounts = "/dev/vda / ext4 rw,relatime 0 0\n\
                      tmpfs /tmp tmpfs rw 0 0\n\
                      /dev/vdb /data\\040dir xfs rw,noatime 0 0\n\
                      /dev/vdc /tmpfoo ext4 rw 0 0\n";
        let m = |p: &str| mount_of(mounts, Path::new(p)).unwrap();
        assert_eq!(m("/work/x").2, "ext4");
        assert_eq!(m("/tmp/a/b").1, "/tmp");
        // Component-wise: /tmpfoo is not under /tmp.
        assert_eq!(m("/tmpfoo/z").0, "/dev/vdc");
        let d = m("/data dir/sub");
        assert_eq!(
            (d.0.as_str(), d.1.as_str(), d.2.as_str()),
            ("/dev/vdb", "/data dir", "xfs")
        );
        assert!(mount_of("", Path::new("/x")).is_none());
    }

    #[test]
    fn frame_size_matches_the_engine_encoding() {
        let rec = encoded_record_len(100);
        // header 32 + bodyType 4 + path (4 + 25) + data (4 + 100) + version 4, plus prefix 4.
        assert_eq!(rec, 32 + 4 + 4 + 25 + 4 + 100 + 4 + 4);
        assert_eq!(frame_len(1, rec) % 8, 0);
        assert!(frame_len(16, rec) >= FRAME_HEADER_LEN + 16 * rec);
    }

    #[test]
    fn a_small_run_measures_everything_and_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("fresh");
        let a = FsyncArgs {
            dir: dir.clone(),
            iterations: 10,
            warmup: 2,
            record_size: 100,
            in_flight: vec![1, 8],
            rounds: Some(5),
            no_latency: false,
            no_group_commit: false,
            json: None,
        };
        let r = measure(&a).unwrap();
        assert_eq!(r.latency.len(), 4);
        for l in &r.latency {
            assert_eq!(l.iterations, 10);
            assert!(l.p50_us > 0.0 && l.p50_us <= l.p99_us && l.p99_us <= l.max_us);
        }
        let g = r.group_commit.as_ref().unwrap();
        assert_eq!(
            g.rows.iter().map(|r| r.in_flight).collect::<Vec<_>>(),
            [1, 8]
        );
        for row in &g.rows {
            assert_eq!(row.segment_rolls, 0);
            assert!(row.records_per_s > 0.0);
            assert!(row.fsync_p50_us > 0.0);
        }
        assert!(!r.machine.kernel.is_empty());
        assert!(!r.machine.fs_type.is_empty());
        // We created --dir, so it is gone again with everything in it.
        assert!(!dir.exists());
        let t = table(&r);
        assert!(t.contains("zero-filled") && t.contains("records/s"));
    }
}
