//! `corral-bench scale --scenario S`: what a server costs as it grows (issue 12), one
//! scenario per invocation against one server, written as points of cost against size
//! (JSON) that tools/bench-vs-zookeeper puts side by side for corral and ZooKeeper:
//!
//! - `connections --steps 1000,5000,...`: idle sessions opened in steps (spread over
//!   source addresses of 127.1.0.0/16), each with one data watch, kept alive with
//!   pings; at each step the server's RSS, bytes per session, and getData latency and
//!   server CPU per op of a separate small load.
//! - `expiry --sessions N --expire-in D`: N sessions, each with one ephemeral, created
//!   and then dropped without closeSession (the socket is closed). So that N can pass
//!   the process's open-file limit, each session is detached right after its create,
//!   and each asks for the timeout that ends at one common deadline (start + D): all N
//!   expire together whatever the order they were made in. Observer sessions watch
//!   every ephemeral (exists) and the parent (getChildren); a read/write load runs
//!   throughout. Reported: storm duration (first to last NodeDeleted), the load's p99
//!   and throughput before and during the storm, server CPU per expired session; checked:
//!   every ephemeral gone, every watch fired exactly once.
//! - `fanout --watchers W`: W sessions each watching one znode, one setData, the
//!   latency from its send to each WatchedEvent's arrival (several rounds); then each
//!   session sets `--watches-per-conn` data watches over `--watch-paths` znodes: RSS
//!   before and after, per watch. Checked: each watcher notified exactly once a round.
//! - `tree --from A --to B`: grows a tree of 100-byte znodes (10,000 per parent) to B;
//!   RSS per znode, getData and setData latency and CPU per op at a fixed modest load.
//! - `wide --children N`: one node with N children: time to create them, getChildren
//!   latency, time to delete them.
//!
//! Only successful replies count; any error reply, failed session or failed check
//! makes the run exit non-zero (after writing what it measured).

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::Semaphore;

use corral::proto::*;

use crate::client::open_acl;
use crate::procstat;
use crate::scale_session::{
    percentiles, source_addr, spawn_load, Lean, LoadKind, LoadOut, LoadSpec, Sample,
};
use crate::workload::parse_duration;

#[derive(Args, Debug, Clone)]
pub struct ScaleArgs {
    /// connections, expiry, fanout, tree or wide.
    #[arg(long)]
    pub scenario: String,
    /// The server (one host:port, an IP address).
    #[arg(long, default_value = "127.0.0.1:2181")]
    pub host: String,
    /// The server's process id: its RSS (VmRSS) and CPU time are read from /proc.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// A name for this run in the JSON and plot legends.
    #[arg(long)]
    pub label: Option<String>,
    /// Write the result here (JSON).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// connections: the session counts measured at.
    #[arg(long, value_delimiter = ',', default_value = "1000,5000,10000")]
    pub steps: Vec<usize>,
    /// expiry: sessions (each with one ephemeral) that expire together.
    #[arg(long, default_value_t = 2000)]
    pub sessions: usize,
    /// expiry: observer sessions the ephemerals' watches are spread over.
    #[arg(long, default_value_t = 16)]
    pub observers: usize,
    /// expiry: the common deadline, from the start of the run (every session asks for
    /// the timeout that ends there, so it must fit the server's maxSessionTimeout).
    #[arg(long, default_value = "15s")]
    pub expire_in: String,
    /// fanout: sessions watching the one znode.
    #[arg(long, default_value_t = 1000)]
    pub watchers: usize,
    /// fanout: setData rounds (each watcher notified once per round).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// fanout: data watches each session then sets, for memory per watch.
    #[arg(long, default_value_t = 100)]
    pub watches_per_conn: usize,
    /// fanout: distinct znodes those watches are spread over.
    #[arg(long, default_value_t = 10_000)]
    pub watch_paths: usize,
    /// tree: znodes already there (made by an earlier step).
    #[arg(long, default_value_t = 0)]
    pub from: u64,
    /// tree: znodes after this step.
    #[arg(long, default_value_t = 100_000)]
    pub to: u64,
    /// tree: the server's RSS when empty (MiB), for bytes per znode [default: read at --from 0].
    #[arg(long)]
    pub base_rss_mib: Option<f64>,
    /// wide: children of the one wide node.
    #[arg(long, default_value_t = 20_000)]
    pub children: usize,
    /// The measuring load: sessions.
    #[arg(long, default_value_t = 8)]
    pub load_sessions: usize,
    /// The measuring load: requests in flight per session.
    #[arg(long, default_value_t = 16)]
    pub load_inflight: usize,
    /// The measuring load: measured time per point.
    #[arg(long, default_value = "3s")]
    pub load_duration: String,
    /// Sessions being opened at once.
    #[arg(long, default_value_t = 256)]
    pub connect_concurrency: usize,
    /// Run before each RSS reading (sh -c), e.g. `jcmd PID GC.run` so a JVM's RSS
    /// is read after a full collection instead of with its uncollected garbage.
    #[arg(long)]
    pub settle_cmd: Option<String>,
    /// Bytes of each znode's data.
    #[arg(long, default_value_t = 100)]
    pub value_size: usize,
}

/// What one scale run wrote: points of cost against size, and its checks.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ScaleResult {
    pub scenario: String,
    pub label: String,
    pub settings: BTreeMap<String, Value>,
    /// One map per size measured at; every point has "size".
    pub points: Vec<BTreeMap<String, f64>>,
    /// Counts checked (each with what was expected).
    pub checks: BTreeMap<String, Value>,
    /// Why the run failed, if it did.
    pub failed: Option<String>,
}

fn err(s: impl Into<String>) -> io::Error {
    io::Error::other(s.into())
}

fn rss(pid: Option<u32>) -> Option<f64> {
    pid.and_then(procstat::rss_mib)
}

/// RSS after `--settle-cmd` (if any) has run.
fn settled_rss(a: &ScaleArgs) -> Option<f64> {
    if let (Some(cmd), Some(_)) = (&a.settle_cmd, a.server_pid) {
        let _ = std::process::Command::new("sh")
            .args(["-c", cmd])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        std::thread::sleep(Duration::from_millis(200));
    }
    rss(a.server_pid)
}

fn cpu(pid: Option<u32>) -> Option<f64> {
    pid.and_then(procstat::process_cpu).map(|(_, s)| s)
}

const MIB: f64 = 1024.0 * 1024.0;
const KEYS: &str = "/scale/k";
const KEY_COUNT: usize = 1000;

fn key_paths() -> Arc<Vec<String>> {
    Arc::new((0..KEY_COUNT).map(|i| format!("{KEYS}/k{i}")).collect())
}

fn create_req(
    path: String,
    data: Bytes,
    mode: CreateMode,
) -> (OpCode, Box<dyn JuteDyn + Send + Sync>) {
    (
        OpCode::Create,
        Box::new(CreateRequest {
            path,
            data,
            acl: open_acl(),
            flags: mode.flags(),
        }),
    )
}

/// One request per path, the paths split over `sessions` sessions with `window` in
/// flight each; returns seconds. `what` names the op in errors.
async fn pipelined_over<F>(
    addr: SocketAddr,
    paths: Vec<String>,
    sessions: usize,
    window: usize,
    what: &'static str,
    make: F,
) -> io::Result<f64>
where
    F: Fn(&str) -> (OpCode, Box<dyn JuteDyn + Send + Sync>) + Clone + 'static,
{
    let t0 = Instant::now();
    let paths = Arc::new(paths);
    let per = paths.len().div_ceil(sessions.max(1)).max(1);
    let mut tasks = Vec::new();
    for s in 0..sessions.max(1) {
        let paths = paths.clone();
        let make = make.clone();
        tasks.push(tokio::task::spawn_local(async move {
            let lo = (s * per).min(paths.len());
            let hi = ((s + 1) * per).min(paths.len());
            if lo == hi {
                return Ok(());
            }
            let mut c = Lean::connect(addr, None, crate::client::SESSION_TIMEOUT_MS).await?;
            for chunk in paths[lo..hi].chunks(10_000) {
                let reqs: Vec<_> = chunk.iter().map(|p| make(p)).collect();
                c.pipeline(what, &reqs, window).await?;
            }
            Ok::<(), io::Error>(())
        }));
    }
    for t in tasks {
        t.await.map_err(err_join)??;
    }
    Ok(t0.elapsed().as_secs_f64())
}

/// Creates `paths` over `sessions` sessions, `window` in flight each; returns seconds.
async fn create_many(
    addr: SocketAddr,
    paths: Vec<String>,
    data: Bytes,
    sessions: usize,
    window: usize,
) -> io::Result<f64> {
    pipelined_over(addr, paths, sessions, window, "create", move |p| {
        create_req(p.to_string(), data.clone(), CreateMode::Persistent)
    })
    .await
}

/// Deletes `paths` over `sessions` sessions; returns seconds.
async fn delete_many(
    addr: SocketAddr,
    paths: Vec<String>,
    sessions: usize,
    window: usize,
) -> io::Result<f64> {
    pipelined_over(addr, paths, sessions, window, "delete", |p| {
        (
            OpCode::Delete,
            Box::new(DeleteRequest {
                path: p.to_string(),
                version: -1,
            }) as Box<dyn JuteDyn + Send + Sync>,
        )
    })
    .await
}

fn err_join(e: tokio::task::JoinError) -> io::Error {
    err(format!("task: {e}"))
}

/// The read keys every scenario's load uses (made once per server).
async fn setup_keys(addr: SocketAddr, value: &Bytes) -> io::Result<()> {
    let mut d = Lean::connect(addr, None, crate::client::SESSION_TIMEOUT_MS).await?;
    d.ensure("/scale").await?;
    d.ensure(KEYS).await?;
    let have = d.children(KEYS, false).await?.len();
    if have == 0 {
        create_many(addr, key_paths().to_vec(), value.clone(), 1, 128).await?;
    } else if have != KEY_COUNT {
        return Err(err(format!("{KEYS} holds {have} keys, not {KEY_COUNT}")));
    }
    Ok(())
}

/// A measured load: (its output, server CPU seconds, wall seconds).
async fn measured_load(
    a: &ScaleArgs,
    addr: SocketAddr,
    kind: LoadKind,
    keys: Arc<Vec<String>>,
    dur: Duration,
) -> io::Result<(LoadOut, Option<f64>, f64)> {
    let stop = Arc::new(AtomicBool::new(false));
    let origin = Instant::now();
    let spec = LoadSpec {
        addr,
        sessions: a.load_sessions,
        inflight: a.load_inflight,
        kind,
        keys,
        value: Bytes::from(vec![b'v'; a.value_size]),
    };
    let c0 = cpu(a.server_pid);
    let h = spawn_load(spec, origin, stop.clone());
    tokio::time::sleep(dur).await;
    stop.store(true, Relaxed);
    while !h.is_finished() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let wall = origin.elapsed().as_secs_f64();
    let c1 = cpu(a.server_pid);
    let out = h.join().map_err(|_| err("load thread panicked"))??;
    if !out.errors.is_empty() {
        return Err(err(format!("load: error replies by code {:?}", out.errors)));
    }
    Ok((out, c0.zip(c1).map(|(b, e)| e - b), wall))
}

/// Adds `prefix`_p50_us, _p99_us, _p999_us, _max_us, _ops_s and (with CPU) _cpu_us_per_op.
fn put_load(
    p: &mut BTreeMap<String, f64>,
    prefix: &str,
    samples: &[Sample],
    wall: f64,
    cpu_s: Option<f64>,
) {
    let mut lats: Vec<u32> = samples.iter().map(|s| s.lat_us).collect();
    let n = lats.len();
    if let Some([p50, p99, p999, max]) = percentiles(&mut lats) {
        p.insert(format!("{prefix}_p50_us"), p50);
        p.insert(format!("{prefix}_p99_us"), p99);
        p.insert(format!("{prefix}_p999_us"), p999);
        p.insert(format!("{prefix}_max_us"), max);
    }
    p.insert(format!("{prefix}_ops"), n as f64);
    if wall > 0.0 {
        p.insert(format!("{prefix}_ops_s"), n as f64 / wall);
    }
    if let (Some(c), true) = (cpu_s, n > 0) {
        p.insert(format!("{prefix}_cpu_us_per_op"), c * 1e6 / n as f64);
    }
}

pub fn scale_cmd(a: ScaleArgs) -> Result<(), String> {
    let addr: SocketAddr = a
        .host
        .parse()
        .map_err(|e| format!("--host {}: {e} (an IP address and port)", a.host))?;
    raise_nofile();
    let mut res = ScaleResult {
        scenario: a.scenario.clone(),
        label: a.label.clone().unwrap_or_else(|| a.scenario.clone()),
        ..Default::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let local = tokio::task::LocalSet::new();
    let r = local.block_on(&rt, async {
        match a.scenario.as_str() {
            "connections" => connections(&a, addr, &mut res).await,
            "expiry" => expiry(&a, addr, &mut res).await,
            "fanout" => fanout(&a, addr, &mut res).await,
            "tree" => tree(&a, addr, &mut res).await,
            "wide" => wide(&a, addr, &mut res).await,
            s => Err(err(format!(
                "unknown scenario {s} (connections, expiry, fanout, tree, wide)"
            ))),
        }
    });
    if let Err(e) = &r {
        res.failed = Some(e.to_string());
    }
    let text = serde_json::to_string_pretty(&res).map_err(|e| e.to_string())?;
    if let Some(p) = &a.json {
        std::fs::write(p, &text).map_err(|e| format!("{}: {e}", p.display()))?;
    } else {
        println!("{text}");
    }
    for p in &res.points {
        eprintln!(
            "{} {}: {}",
            res.label,
            res.scenario,
            p.iter()
                .map(|(k, v)| format!("{k}={v:.1}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    r.map_err(|e| format!("{} {}: {e}", res.label, res.scenario))
}

/// The soft open-file limit up to the hard one: one descriptor per session.
fn raise_nofile() {
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        let mut l = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 && l.rlim_cur < l.rlim_max {
            l.rlim_cur = l.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        }
    }
}

/// Opens `n` sessions (numbered from `first`, for their source address) `conc` at a
/// time, each then given to `then`.
async fn open_sessions<F, Fut, T>(
    addr: SocketAddr,
    first: usize,
    n: usize,
    conc: usize,
    timeout_ms: i32,
    then: F,
) -> io::Result<Vec<T>>
where
    F: Fn(usize, Lean) -> Fut + Clone + 'static,
    Fut: std::future::Future<Output = io::Result<T>> + 'static,
    T: 'static,
{
    let sem = Arc::new(Semaphore::new(conc.max(1)));
    let mut tasks = Vec::with_capacity(n);
    for i in first..first + n {
        let permit = sem
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| err(e.to_string()))?;
        let then = then.clone();
        tasks.push(tokio::task::spawn_local(async move {
            let c = Lean::connect(addr, Some(source_addr(i)), timeout_ms)
                .await
                .map_err(|e| err(format!("session {i}: {e}")))?;
            let r = then(i, c).await;
            drop(permit);
            r
        }));
    }
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.map_err(err_join)??);
    }
    Ok(out)
}

async fn connections(a: &ScaleArgs, addr: SocketAddr, res: &mut ScaleResult) -> io::Result<()> {
    let value = Bytes::from(vec![b'v'; a.value_size]);
    let dur = parse_duration(&a.load_duration).map_err(err)?;
    setup_keys(addr, &value).await?;
    let mut d = Lean::connect(addr, None, crate::client::SESSION_TIMEOUT_MS).await?;
    d.ensure("/scale/c").await?;
    for z in 0..100 {
        d.ensure(&format!("/scale/c/z{z}")).await?;
    }
    res.settings.insert("steps".into(), json!(a.steps));
    res.settings.insert(
        "load".into(),
        json!(format!(
            "getData, {} sessions x {} in flight, {} per step",
            a.load_sessions, a.load_inflight, a.load_duration
        )),
    );
    // Unmeasured: the servers' first requests (ZooKeeper's JIT) are not charged to a step.
    measured_load(a, addr, LoadKind::Read, key_paths(), Duration::from_secs(1)).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let base = settled_rss(a);
    if let Some(b) = base {
        res.settings.insert("base_rss_mib".into(), json!(b));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut held = Vec::new();
    for &step in &a.steps {
        if step < held.len() {
            return Err(err("--steps must grow"));
        }
        let t0 = Instant::now();
        let new = open_sessions(
            addr,
            held.len(),
            step - held.len(),
            a.connect_concurrency,
            crate::client::SESSION_TIMEOUT_MS,
            {
                let stop = stop.clone();
                move |i, mut c: Lean| {
                    let stop = stop.clone();
                    async move {
                        let req = ExistsRequest {
                            path: format!("/scale/c/z{}", i % 100),
                            watch: true,
                        };
                        let (hdr, _) = c.call(OpCode::Exists, Some(&req)).await?;
                        crate::scale_session::check("exists", &hdr)?;
                        Ok(tokio::task::spawn_local(c.hold(stop, None)))
                    }
                }
            },
        )
        .await?;
        let open_s = t0.elapsed().as_secs_f64();
        held.extend(new);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut p = BTreeMap::new();
        p.insert("size".into(), held.len() as f64);
        p.insert("open_s".into(), open_s);
        if let (Some(r), Some(b)) = (settled_rss(a), base) {
            p.insert("rss_mib".into(), r);
            p.insert(
                "bytes_per_session".into(),
                (r - b) * MIB / held.len() as f64,
            );
        }
        let (out, c, wall) = measured_load(a, addr, LoadKind::Read, key_paths(), dur).await?;
        put_load(&mut p, "read", &out.samples, wall, c);
        res.points.push(p);
        if held.iter().any(|h| h.is_finished()) {
            break;
        }
    }
    stop.store(true, Relaxed);
    let n = held.len();
    let mut alive = 0;
    let mut failures = Vec::new();
    for h in held {
        match h.await.map_err(err_join)? {
            Ok(_) => alive += 1,
            Err(e) => failures.push(e.to_string()),
        }
    }
    res.checks.insert(
        "sessions_alive_at_end".into(),
        json!({"got": alive, "want": n}),
    );
    if alive != n {
        failures.sort();
        failures.dedup();
        return Err(err(format!(
            "{} of {n} idle sessions failed: {:?}",
            n - alive,
            &failures[..failures.len().min(3)]
        )));
    }
    Ok(())
}

/// The server's CPU seconds, read every 50 ms, for a window's CPU afterwards.
fn cpu_sampler(
    pid: Option<u32>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<(Instant, f64)>> {
    tokio::task::spawn_local(async move {
        let mut v = Vec::new();
        while !stop.load(Relaxed) {
            if let Some(c) = cpu(pid) {
                v.push((Instant::now(), c));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if let Some(c) = cpu(pid) {
            v.push((Instant::now(), c));
        }
        v
    })
}

/// The CPU reading at `t` (linear between samples).
fn cpu_at(samples: &[(Instant, f64)], t: Instant) -> Option<f64> {
    let i = samples.iter().position(|(s, _)| *s >= t)?;
    if i == 0 {
        return Some(samples[0].1);
    }
    let (t0, c0) = samples[i - 1];
    let (t1, c1) = samples[i];
    let span = t1.duration_since(t0).as_secs_f64();
    let f = if span > 0.0 {
        t.duration_since(t0).as_secs_f64() / span
    } else {
        1.0
    };
    Some(c0 + (c1 - c0) * f)
}

async fn expiry(a: &ScaleArgs, addr: SocketAddr, res: &mut ScaleResult) -> io::Result<()> {
    let start = Instant::now();
    let expire_in = parse_duration(&a.expire_in).map_err(err)?;
    let deadline = start + expire_in;
    let value = Bytes::from(vec![b'v'; a.value_size]);
    let n = a.sessions;
    setup_keys(addr, &value).await?;
    let mut d = Lean::connect(addr, None, crate::client::SESSION_TIMEOUT_MS).await?;
    d.ensure("/scale/e").await?;
    if !d.children("/scale/e", false).await?.is_empty() {
        return Err(err("/scale/e is not empty"));
    }
    res.settings.insert("sessions".into(), json!(n));
    res.settings.insert("observers".into(), json!(a.observers));
    res.settings.insert("expire_in".into(), json!(a.expire_in));
    res.settings.insert(
        "load".into(),
        json!(format!(
            "80% getData / 20% setData, {} sessions x {} in flight",
            a.load_sessions, a.load_inflight
        )),
    );
    let stop_load = Arc::new(AtomicBool::new(false));
    let origin = Instant::now();
    let load = spawn_load(
        LoadSpec {
            addr,
            sessions: a.load_sessions,
            inflight: a.load_inflight,
            kind: LoadKind::Mixed(0.8),
            keys: key_paths(),
            value: value.clone(),
        },
        origin,
        stop_load.clone(),
    );
    let stop_cpu = Arc::new(AtomicBool::new(false));
    let sampler = cpu_sampler(a.server_pid, stop_cpu.clone());

    // The storm's sessions: each asks for the timeout that ends at the deadline,
    // creates its ephemeral and is dropped (socket closed, no closeSession).
    let t_create = Instant::now();
    let sem = Arc::new(Semaphore::new(a.connect_concurrency.max(1)));
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let permit = sem
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| err(e.to_string()))?;
        tasks.push(tokio::task::spawn_local(async move {
            let left = deadline.saturating_duration_since(Instant::now()).as_millis() as i32;
            let mut c = Lean::connect(addr, Some(source_addr(i)), left)
                .await
                .map_err(|e| err(format!("session {i}: {e}")))?;
            if (c.timeout_ms - left).abs() > 50 {
                return Err(err(format!(
                    "session {i} asked for a {left} ms timeout and was given {} ms: raise --expire-in \
                     (sessions are made too slowly) or the server's maxSessionTimeout",
                    c.timeout_ms
                )));
            }
            c.create(&format!("/scale/e/s{i}"), b"", CreateMode::Ephemeral).await?;
            drop(c);
            drop(permit);
            Ok::<(), io::Error>(())
        }));
    }
    for t in tasks {
        t.await.map_err(err_join)??;
    }
    let create_s = t_create.elapsed().as_secs_f64();
    // Connected only now: making 100,000 sessions can outlast an idle session's timeout.
    let mut observers = Vec::new();
    for _ in 0..a.observers.max(1) {
        observers.push(Lean::connect(addr, None, crate::client::SESSION_TIMEOUT_MS).await?);
    }

    // Every ephemeral watched once (exists), spread over the observers, and the parent
    // by each observer (getChildren).
    let o = observers.len();
    let mut armed = Vec::new();
    for (k, mut ob) in observers.into_iter().enumerate() {
        armed.push(tokio::task::spawn_local(async move {
            let reqs: Vec<(OpCode, Box<dyn JuteDyn + Send + Sync>)> = (k..n)
                .step_by(o)
                .map(|i| {
                    (
                        OpCode::Exists,
                        Box::new(ExistsRequest {
                            path: format!("/scale/e/s{i}"),
                            watch: true,
                        }) as Box<dyn JuteDyn + Send + Sync>,
                    )
                })
                .collect();
            ob.pipeline(
                "exists (an ephemeral gone before its watch was set: raise --expire-in)",
                &reqs,
                256,
            )
            .await?;
            let kids = ob.children("/scale/e", true).await?;
            if kids.len() != n {
                return Err(err(format!(
                    "/scale/e holds {} ephemerals, not {n}",
                    kids.len()
                )));
            }
            Ok::<Lean, io::Error>(ob)
        }));
    }
    let mut observers = Vec::new();
    for t in armed {
        observers.push(t.await.map_err(err_join)??);
    }
    let t_armed = Instant::now();
    if t_armed + Duration::from_millis(500) > deadline {
        return Err(err(format!(
            "the sessions and watches took {:.1} s of --expire-in {}: no time left to measure before the storm",
            t_armed.duration_since(start).as_secs_f64(),
            a.expire_in
        )));
    }
    let seen = Arc::new(AtomicUsize::new(0));
    let stop_obs = Arc::new(AtomicBool::new(false));
    let holds: Vec<_> = observers
        .into_iter()
        .map(|ob| tokio::task::spawn_local(ob.hold(stop_obs.clone(), Some(seen.clone()))))
        .collect();
    let want = n + o;
    let give_up = deadline + Duration::from_secs(120);
    while seen.load(Relaxed) < want
        && Instant::now() < give_up
        && !holds.iter().any(|h| h.is_finished())
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Late duplicates would arrive now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop_obs.store(true, Relaxed);
    stop_load.store(true, Relaxed);
    stop_cpu.store(true, Relaxed);
    let mut deleted: Vec<(Instant, String)> = Vec::new();
    let mut child_events = 0usize;
    let mut other_events = 0usize;
    for h in holds {
        let ob = h.await.map_err(err_join)??;
        for (t, ev) in ob.events {
            if ev.r#type == EventType::NodeDeleted as i32 {
                deleted.push((t, ev.path));
            } else if ev.r#type == EventType::NodeChildrenChanged as i32 && ev.path == "/scale/e" {
                child_events += 1;
            } else {
                other_events += 1;
            }
        }
    }
    // The load stops once its requests in flight are answered: a server still stuck in
    // the storm fails the run instead of hanging it.
    let t_stop = Instant::now();
    while !load.is_finished() {
        if t_stop.elapsed() > Duration::from_secs(30) {
            return Err(err(format!(
                "the server left the load's requests unanswered for 30 s; {} of {want} watch events \
                 arrived by {:.0} s after the deadline",
                seen.load(Relaxed),
                Instant::now().saturating_duration_since(deadline).as_secs_f64()
            )));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let out = load.join().map_err(|_| err("load thread panicked"))??;
    let cpu_samples = sampler.await.map_err(err_join)?;
    // A new session: `d` sat idle through the storm, possibly past its timeout.
    drop(d);
    let left = Lean::connect(addr, None, crate::client::SESSION_TIMEOUT_MS)
        .await?
        .children("/scale/e", false)
        .await?
        .len();

    deleted.sort();
    let distinct: HashSet<&str> = deleted.iter().map(|(_, p)| p.as_str()).collect();
    let all_named = (0..n).all(|i| distinct.contains(format!("/scale/e/s{i}").as_str()));
    res.checks
        .insert("ephemerals_left".into(), json!({"got": left, "want": 0}));
    res.checks.insert(
        "node_deleted_events".into(),
        json!({"got": deleted.len(), "want": n}),
    );
    res.checks.insert(
        "distinct_paths_deleted".into(),
        json!({"got": distinct.len(), "want": n, "all_named": all_named}),
    );
    res.checks.insert(
        "parent_child_events".into(),
        json!({"got": child_events, "want": o}),
    );
    res.checks.insert(
        "other_events".into(),
        json!({"got": other_events, "want": 0}),
    );
    if !out.errors.is_empty() {
        return Err(err(format!("load: error replies by code {:?}", out.errors)));
    }
    let (Some(first), Some(last)) = (deleted.first().map(|x| x.0), deleted.last().map(|x| x.0))
    else {
        return Err(err("no ephemeral was deleted"));
    };
    let us = |t: Instant| t.saturating_duration_since(origin).as_micros() as u64;
    // An op counts for a window when it was in flight at any moment of it: a storm
    // that stalls the server for 80 ms shows in the ops it held up, however short the
    // window between the first and the last NodeDeleted is.
    let window = |lo: Instant, hi: Instant| -> Vec<Sample> {
        let (lo, hi) = (us(lo), us(hi));
        out.samples
            .iter()
            .filter(|s| s.done_us >= lo && s.done_us.saturating_sub(s.lat_us as u64) <= hi)
            .copied()
            .collect()
    };
    let mut p = BTreeMap::new();
    p.insert("size".into(), n as f64);
    p.insert("create_s".into(), create_s);
    p.insert("storm_s".into(), last.duration_since(first).as_secs_f64());
    p.insert(
        "first_expiry_after_deadline_s".into(),
        first.saturating_duration_since(deadline).as_secs_f64(),
    );
    p.insert(
        "last_expiry_after_deadline_s".into(),
        last.saturating_duration_since(deadline).as_secs_f64(),
    );
    // Before: from the watches set until shortly before the deadline (no expiry yet).
    let before_hi = first
        .min(deadline)
        .checked_sub(Duration::from_millis(100))
        .unwrap_or(t_armed)
        .max(t_armed);
    for (name, lo, hi) in [("before", t_armed, before_hi), ("during", first, last)] {
        let w = window(lo, hi);
        // Throughput only over a window long enough for it to mean something.
        let secs = hi.saturating_duration_since(lo).as_secs_f64();
        let secs = if secs >= 0.2 { secs } else { 0.0 };
        let (reads, writes): (Vec<Sample>, Vec<Sample>) = w.iter().partition(|s| !s.write);
        put_load(&mut p, &format!("read_{name}"), &reads, secs, None);
        put_load(&mut p, &format!("write_{name}"), &writes, secs, None);
        put_load(&mut p, &format!("all_{name}"), &w, secs, None);
    }
    if let (Some(c0), Some(c1)) = (cpu_at(&cpu_samples, first), cpu_at(&cpu_samples, last)) {
        p.insert("storm_cpu_s".into(), c1 - c0);
        p.insert(
            "cpu_us_per_expired_session".into(),
            (c1 - c0) * 1e6 / n as f64,
        );
    }
    res.points.push(p);
    let ok = left == 0
        && deleted.len() == n
        && distinct.len() == n
        && all_named
        && child_events == o
        && other_events == 0;
    if !ok {
        return Err(err(format!("checks failed: {:?}", res.checks)));
    }
    Ok(())
}

/// What the fan-out driver and its worker threads share.
struct Fan {
    connected: AtomicUsize,
    armed: AtomicUsize,
    watched: AtomicUsize,
    /// (round, arrival) of every hot-znode notification.
    arrivals: Mutex<Vec<(usize, Instant)>>,
    /// Notifications beyond one per round, or of anything else.
    extra: AtomicUsize,
    failed: Mutex<Vec<String>>,
}

const HOT: &str = "/scale/f/hot";

async fn wait_phase(rx: &mut tokio::sync::watch::Receiver<usize>, p: usize) -> io::Result<()> {
    rx.wait_for(|v| *v >= p)
        .await
        .map_err(|_| err("driver gone"))?;
    Ok(())
}

async fn watcher(
    mut c: Lean,
    i: usize,
    a: Arc<ScaleArgs>,
    fan: Arc<Fan>,
    mut rx: tokio::sync::watch::Receiver<usize>,
) -> io::Result<()> {
    for r in 0..a.rounds {
        wait_phase(&mut rx, r + 1).await?;
        let req = GetDataRequest {
            path: HOT.into(),
            watch: true,
        };
        let (hdr, _) = c.call(OpCode::GetData, Some(&req)).await?;
        crate::scale_session::check("getData", &hdr)?;
        fan.armed.fetch_add(1, Relaxed);
        loop {
            match c.next_reply().await? {
                Err(ev) if ev.r#type == EventType::NodeDataChanged as i32 && ev.path == HOT => {
                    fan.arrivals
                        .lock()
                        .unwrap()
                        .push((r, c.events.last().map(|e| e.0).unwrap_or_else(Instant::now)));
                    break;
                }
                Err(_) => {
                    fan.extra.fetch_add(1, Relaxed);
                }
                Ok((hdr, _)) => return Err(err(format!("unexpected reply xid {}", hdr.xid))),
            }
        }
    }
    wait_phase(&mut rx, a.rounds + 1).await?;
    let reqs: Vec<(OpCode, Box<dyn JuteDyn + Send + Sync>)> = (0..a.watches_per_conn)
        .map(|j| {
            (
                OpCode::GetData,
                Box::new(GetDataRequest {
                    path: format!("/scale/f/p{}", (i * a.watches_per_conn + j) % a.watch_paths),
                    watch: true,
                }) as Box<dyn JuteDyn + Send + Sync>,
            )
        })
        .collect();
    c.pipeline("getData (watch)", &reqs, 100).await?;
    fan.watched.fetch_add(1, Relaxed);
    let n_before = c.events.len();
    wait_phase(&mut rx, a.rounds + 2).await?;
    // Anything late: a duplicate notification of the last round would be here.
    if let Ok(r) = tokio::time::timeout(Duration::from_millis(100), c.next_reply()).await {
        match r? {
            Err(_) => {
                fan.extra.fetch_add(1, Relaxed);
            }
            Ok((hdr, _)) => return Err(err(format!("unexpected reply xid {}", hdr.xid))),
        }
    }
    if c.events.len() > n_before {
        fan.extra.fetch_add(c.events.len() - n_before - 1, Relaxed);
    }
    Ok(())
}

/// One fan-out worker thread: connects its share of the watchers and runs them.
fn fan_worker(
    addr: SocketAddr,
    ids: Vec<usize>,
    a: Arc<ScaleArgs>,
    fan: Arc<Fan>,
    rx: tokio::sync::watch::Receiver<usize>,
    conc: usize,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                fan.failed.lock().unwrap().push(e.to_string());
                return;
            }
        };
        let local = tokio::task::LocalSet::new();
        local.block_on(&rt, async move {
            let sem = Arc::new(Semaphore::new(conc.max(1)));
            let mut tasks = Vec::new();
            for i in ids {
                let Ok(permit) = sem.clone().acquire_owned().await else {
                    return;
                };
                let (a, fan, rx) = (a.clone(), fan.clone(), rx.clone());
                tasks.push(tokio::task::spawn_local(async move {
                    let c = Lean::connect(
                        addr,
                        Some(source_addr(i)),
                        crate::client::SESSION_TIMEOUT_MS,
                    )
                    .await;
                    drop(permit);
                    let r = match c {
                        Ok(c) => {
                            fan.connected.fetch_add(1, Relaxed);
                            watcher(c, i, a, fan.clone(), rx).await
                        }
                        Err(e) => Err(e),
                    };
                    if let Err(e) = r {
                        fan.failed.lock().unwrap().push(format!("watcher {i}: {e}"));
                    }
                }));
            }
            for t in tasks {
                let _ = t.await;
            }
        })
    })
}

/// `wchs`'s "Total watches:N", if the server answers it.
fn total_watches(addr: SocketAddr) -> Option<u64> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(b"wchs").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.lines()
        .find_map(|l| l.trim().strip_prefix("Total watches:"))
        .and_then(|v| v.trim().parse().ok())
}

async fn fanout(a: &ScaleArgs, addr: SocketAddr, res: &mut ScaleResult) -> io::Result<()> {
    let value = Bytes::from(vec![b'v'; a.value_size]);
    let w = a.watchers;
    // Idle while the watchers connect and set their watches: a long timeout (the
    // server caps it at its maxSessionTimeout).
    let mut d = Lean::connect(addr, None, 120_000).await?;
    d.ensure("/scale").await?;
    d.ensure("/scale/f").await?;
    d.ensure(HOT).await?;
    if d.children("/scale/f", false).await?.len() <= 1 {
        create_many(
            addr,
            (0..a.watch_paths)
                .map(|j| format!("/scale/f/p{j}"))
                .collect(),
            value.clone(),
            4,
            128,
        )
        .await?;
    }
    res.settings.insert("watchers".into(), json!(w));
    res.settings.insert("rounds".into(), json!(a.rounds));
    res.settings
        .insert("watches_per_conn".into(), json!(a.watches_per_conn));
    res.settings
        .insert("watch_paths".into(), json!(a.watch_paths));
    let fan = Arc::new(Fan {
        connected: AtomicUsize::new(0),
        armed: AtomicUsize::new(0),
        watched: AtomicUsize::new(0),
        arrivals: Mutex::new(Vec::new()),
        extra: AtomicUsize::new(0),
        failed: Mutex::new(Vec::new()),
    });
    let (tx, rx) = tokio::sync::watch::channel(0usize);
    let a2 = Arc::new(a.clone());
    let threads = 2;
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            fan_worker(
                addr,
                (t..w).step_by(threads).collect(),
                a2.clone(),
                fan.clone(),
                rx.clone(),
                a.connect_concurrency / threads,
            )
        })
        .collect();
    let failed = |fan: &Fan| -> io::Result<()> {
        let f = fan.failed.lock().unwrap();
        if f.is_empty() {
            Ok(())
        } else {
            Err(err(format!(
                "{} watchers failed: {:?}",
                f.len(),
                &f[..f.len().min(3)]
            )))
        }
    };
    let wait = |what: &'static str, fan: Arc<Fan>, f: Box<dyn Fn(&Fan) -> bool>, secs: u64| async move {
        let t = Instant::now();
        while !f(&fan) {
            failed(&fan)?;
            if t.elapsed() > Duration::from_secs(secs) {
                return Err(err(format!("timed out waiting for {what}")));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Ok::<(), io::Error>(())
    };
    let t_open = Instant::now();
    wait(
        "the watchers' sessions",
        fan.clone(),
        Box::new(move |f| f.connected.load(Relaxed) >= w),
        300,
    )
    .await?;
    let open_s = t_open.elapsed().as_secs_f64();
    let mut sent = Vec::new();
    let mut cpu_notify = 0.0;
    for r in 0..a.rounds {
        tx.send_replace(r + 1);
        wait(
            "the watches to be set",
            fan.clone(),
            Box::new(move |f| f.armed.load(Relaxed) >= w * (r + 1)),
            120,
        )
        .await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let c0 = cpu(a.server_pid);
        let t0 = Instant::now();
        let req = SetDataRequest {
            path: HOT.into(),
            data: value.clone(),
            version: -1,
        };
        let (hdr, _) = d.call(OpCode::SetData, Some(&req)).await?;
        crate::scale_session::check("setData", &hdr)?;
        sent.push(t0);
        wait(
            "every notification",
            fan.clone(),
            Box::new(move |f| f.arrivals.lock().unwrap().len() >= w * (r + 1)),
            60,
        )
        .await?;
        if let (Some(c0), Some(c1)) = (c0, cpu(a.server_pid)) {
            cpu_notify += c1 - c0;
        }
    }
    // Settled (allocations of the rounds returned) before the memory baseline.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut lats: Vec<u32> = fan
        .arrivals
        .lock()
        .unwrap()
        .iter()
        .map(|(r, t)| {
            t.saturating_duration_since(sent[*r])
                .as_micros()
                .min(u32::MAX as u128) as u32
        })
        .collect();
    let notified = lats.len();
    let mut p = BTreeMap::new();
    p.insert("size".into(), w as f64);
    p.insert("open_s".into(), open_s);
    if let Some([p50, p99, p999, max]) = percentiles(&mut lats) {
        p.insert("notify_p50_us".into(), p50);
        p.insert("notify_p99_us".into(), p99);
        p.insert("notify_p999_us".into(), p999);
        p.insert("notify_max_us".into(), max);
    }
    if a.server_pid.is_some() && notified > 0 {
        p.insert(
            "cpu_us_per_notification".into(),
            cpu_notify * 1e6 / notified as f64,
        );
    }
    // Memory per watch: the same sessions set `watches_per_conn` data watches each.
    let rss0 = settled_rss(a);
    tx.send_replace(a.rounds + 1);
    let t_w = Instant::now();
    wait(
        "the memory watches",
        fan.clone(),
        Box::new(move |f| f.watched.load(Relaxed) >= w),
        600,
    )
    .await?;
    let set_s = t_w.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss1 = settled_rss(a);
    let watches = (w * a.watches_per_conn) as f64;
    p.insert("watches".into(), watches);
    p.insert("watches_set_s".into(), set_s);
    if let (Some(r0), Some(r1)) = (rss0, rss1) {
        p.insert("rss_before_watches_mib".into(), r0);
        p.insert("rss_mib".into(), r1);
        p.insert("bytes_per_watch".into(), (r1 - r0) * MIB / watches);
    }
    let server_watches = tokio::task::spawn_blocking(move || total_watches(addr))
        .await
        .map_err(err_join)?;
    tx.send_replace(a.rounds + 2);
    for t in workers {
        t.join().map_err(|_| err("watcher thread panicked"))?;
    }
    res.points.push(p);
    let extra = fan.extra.load(Relaxed);
    res.checks.insert(
        "notifications".into(),
        json!({"got": notified, "want": w * a.rounds}),
    );
    res.checks.insert(
        "extra_notifications".into(),
        json!({"got": extra, "want": 0}),
    );
    if let Some(sw) = server_watches {
        res.checks.insert(
            "server_total_watches".into(),
            json!({"got": sw, "want": w * a.watches_per_conn}),
        );
    }
    failed(&fan)?;
    if notified != w * a.rounds
        || extra != 0
        || server_watches.is_some_and(|sw| sw != (w * a.watches_per_conn) as u64)
    {
        return Err(err(format!("checks failed: {:?}", res.checks)));
    }
    Ok(())
}

fn tree_path(i: u64) -> String {
    format!("/scale/t/b{}/n{i}", i / 10_000)
}

async fn tree(a: &ScaleArgs, addr: SocketAddr, res: &mut ScaleResult) -> io::Result<()> {
    let value = Bytes::from(vec![b'v'; a.value_size]);
    let dur = parse_duration(&a.load_duration).map_err(err)?;
    if a.to <= a.from {
        return Err(err("--to must be above --from"));
    }
    let mut d = Lean::connect(addr, None, crate::client::SESSION_TIMEOUT_MS).await?;
    let base = a
        .base_rss_mib
        .or(if a.from == 0 { settled_rss(a) } else { None });
    d.ensure("/scale").await?;
    d.ensure("/scale/t").await?;
    for b in a.from / 10_000..=(a.to - 1) / 10_000 {
        d.ensure(&format!("/scale/t/b{b}")).await?;
    }
    res.settings
        .insert("value_size".into(), json!(a.value_size));
    res.settings.insert(
        "load".into(),
        json!(format!(
            "getData then setData of random znodes, {} sessions x {} in flight, {} each",
            a.load_sessions, a.load_inflight, a.load_duration
        )),
    );
    let c0 = cpu(a.server_pid);
    let create_s = create_many(
        addr,
        (a.from..a.to).map(tree_path).collect(),
        value.clone(),
        8,
        64,
    )
    .await?;
    let c1 = cpu(a.server_pid);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut p = BTreeMap::new();
    p.insert("size".into(), a.to as f64);
    p.insert("create_s".into(), create_s);
    p.insert("creates_per_s".into(), (a.to - a.from) as f64 / create_s);
    if let (Some(c0), Some(c1)) = (c0, c1) {
        p.insert(
            "create_cpu_us_per_op".into(),
            (c1 - c0) * 1e6 / (a.to - a.from) as f64,
        );
    }
    if let Some(r) = settled_rss(a) {
        p.insert("rss_mib".into(), r);
        if let Some(b) = base {
            p.insert("base_rss_mib".into(), b);
            p.insert("bytes_per_znode".into(), (r - b) * MIB / a.to as f64);
        }
    }
    let mut x = a.to.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let keys: Arc<Vec<String>> = Arc::new(
        (0..10_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                tree_path(x % a.to)
            })
            .collect(),
    );
    let (out, c, wall) = measured_load(a, addr, LoadKind::Read, keys.clone(), dur).await?;
    put_load(&mut p, "read", &out.samples, wall, c);
    let (out, c, wall) = measured_load(a, addr, LoadKind::Write, keys, dur).await?;
    put_load(&mut p, "write", &out.samples, wall, c);
    res.points.push(p);
    Ok(())
}

async fn wide(a: &ScaleArgs, addr: SocketAddr, res: &mut ScaleResult) -> io::Result<()> {
    let n = a.children;
    let mut d = Lean::connect(addr, None, crate::client::SESSION_TIMEOUT_MS).await?;
    d.ensure("/scale").await?;
    d.ensure("/scale/w").await?;
    if !d.children("/scale/w", false).await?.is_empty() {
        return Err(err("/scale/w is not empty"));
    }
    res.settings.insert("children".into(), json!(n));
    res.settings.insert("child data".into(), json!("empty"));
    let mut p = BTreeMap::new();
    p.insert("size".into(), n as f64);
    let c0 = cpu(a.server_pid);
    let create_s = create_many(
        addr,
        (0..n).map(|i| format!("/scale/w/c{i}")).collect(),
        Bytes::new(),
        8,
        64,
    )
    .await?;
    let c1 = cpu(a.server_pid);
    p.insert("create_s".into(), create_s);
    p.insert("creates_per_s".into(), n as f64 / create_s);
    if let (Some(c0), Some(c1)) = (c0, c1) {
        p.insert("create_cpu_us_per_op".into(), (c1 - c0) * 1e6 / n as f64);
    }
    // New sessions from here: creating a million children can outlast `d`'s timeout.
    let mut d = Lean::connect(addr, None, crate::client::SESSION_TIMEOUT_MS).await?;
    let mut times = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let kids = d.children("/scale/w", false).await?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
        if kids.len() != n {
            return Err(err(format!(
                "getChildren /scale/w returned {} children, not {n}",
                kids.len()
            )));
        }
    }
    times.sort_by(f64::total_cmp);
    p.insert("get_children_ms".into(), times[1]);
    p.insert("get_children_max_ms".into(), times[2]);
    let c2 = cpu(a.server_pid);
    let delete_s = delete_many(
        addr,
        (0..n).map(|i| format!("/scale/w/c{i}")).collect(),
        8,
        64,
    )
    .await?;
    let c3 = cpu(a.server_pid);
    p.insert("delete_s".into(), delete_s);
    p.insert("deletes_per_s".into(), n as f64 / delete_s);
    if let (Some(c2), Some(c3)) = (c2, c3) {
        p.insert("delete_cpu_us_per_op".into(), (c3 - c2) * 1e6 / n as f64);
    }
    let left = Lean::connect(addr, None, crate::client::SESSION_TIMEOUT_MS)
        .await?
        .children("/scale/w", false)
        .await?
        .len();
    res.checks
        .insert("children_listed".into(), json!({"got": n, "want": n}));
    res.checks
        .insert("children_left".into(), json!({"got": left, "want": 0}));
    res.points.push(p);
    if left != 0 {
        return Err(err(format!("{left} children left after deleting them all")));
    }
    Ok(())
}
