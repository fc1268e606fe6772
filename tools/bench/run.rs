//! The load engine: many sessions over few threads. Each worker thread runs a
//! single-threaded tokio runtime whose sessions share one `Recorder` without locks.
//! A session keeps up to `outstanding` requests in flight, batching every request it can
//! send into one write and every reply that arrived into one pass.
//!
//! Closed loop (default): a reply makes room for the next request at once.
//! Open loop (`--rate`): each session sends on a fixed schedule whatever the replies do,
//! and latency is measured from the *intended* send time, so a server stall is charged
//! to every request it delayed (no coordinated omission), not just to the ones already
//! sent. Tokio's timers tick in milliseconds, too coarse for that schedule, so a
//! per-thread pacer sleeps in ~50 us steps and wakes the thread's sessions; the
//! schedule is then kept to within about 0.1 ms.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use tokio::sync::{watch, Notify};

use corral::proto::*;

use crate::client::{open_acl, parse_reply, Conn};
use crate::report::{new_hist, Recorder};
use crate::workload::{
    self, key_path, pick, wide_path, Kind, OpKind, Rng, RunConfig, ROOT, WATCH_PATH,
};

/// When the measured window lies, in nanoseconds since `Shared::base`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub start_ns: u64,
    pub measure_from_ns: u64,
    /// `u64::MAX` when the run is bounded by an op count.
    pub end_ns: u64,
}

impl Timing {
    pub fn measured(&self, t: u64) -> bool {
        t >= self.measure_from_ns && t < self.end_ns
    }
}

/// State shared by every thread of a run.
pub struct Shared {
    pub base: Instant,
    pub run_id: u64,
    pub stop: AtomicBool,
    /// Measured ops handed out so far (op-count mode).
    pub claimed: AtomicU64,
    pub connected: AtomicUsize,
    pub failed: AtomicUsize,
    pub failures: Mutex<Vec<String>>,
    /// Progress: every completed op / error, warm-up included (flushed by each thread
    /// every 250 ms).
    pub progress_ops: AtomicU64,
    pub progress_errors: AtomicU64,
    pub interval: Mutex<Histogram<u64>>,
    go: watch::Sender<Option<Timing>>,
    // Watch workload rounds.
    pub watch_sent_ns: AtomicU64,
    pub notified: AtomicUsize,
    pub armed: AtomicUsize,
    pub all_armed: Notify,
}

impl Shared {
    pub fn new(run_id: u64) -> Shared {
        Shared {
            base: Instant::now(),
            run_id,
            stop: AtomicBool::new(false),
            claimed: AtomicU64::new(0),
            connected: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            failures: Mutex::new(Vec::new()),
            progress_ops: AtomicU64::new(0),
            progress_errors: AtomicU64::new(0),
            interval: Mutex::new(new_hist()),
            go: watch::channel(None).0,
            watch_sent_ns: AtomicU64::new(0),
            notified: AtomicUsize::new(0),
            armed: AtomicUsize::new(0),
            all_armed: Notify::new(),
        }
    }

    pub fn now(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    pub fn go(&self, t: Timing) {
        self.go.send_replace(Some(t));
    }

    async fn wait_go(&self) -> Timing {
        let mut rx = self.go.subscribe();
        let t = rx
            .wait_for(|t| t.is_some())
            .await
            .expect("sender lives in Shared");
        t.expect("waited for Some")
    }

    pub fn fail(&self, what: String) {
        self.failed.fetch_add(1, Relaxed);
        if let Ok(mut f) = self.failures.lock() {
            if f.len() < 20 {
                f.push(what);
            }
        }
    }
}

/// Per-thread state besides the recorder.
struct Local {
    rec: RefCell<Recorder>,
    progress_ops: Cell<u64>,
    progress_errors: Cell<u64>,
    /// Latest completion of a measured op (for op-count runs).
    last_done_ns: Cell<u64>,
    live: Cell<usize>,
    tick: Notify,
}

impl Local {
    #[allow(clippy::too_many_arguments)]
    fn done(
        &self,
        t: &Timing,
        kind: &'static str,
        intended: u64,
        sent: u64,
        now: u64,
        err: i32,
        open_loop: bool,
    ) {
        let mut r = self.rec.borrow_mut();
        let lat = now.saturating_sub(intended).max(1);
        self.progress_ops.set(self.progress_ops.get() + 1);
        if err != 0 {
            // An error reply is neither throughput nor latency (a fast refusal would
            // flatter both): it is counted by its code.
            self.progress_errors.set(self.progress_errors.get() + 1);
            *r.errors_all.entry(err).or_default() += 1;
        } else {
            r.interval.saturating_record(lat);
            if t.measured(now) {
                r.ok_in_window += 1;
            }
        }
        if t.measured(intended) {
            r.ops += 1;
            *r.by_kind.entry(kind).or_default() += 1;
            if err != 0 {
                *r.errors.entry(err).or_default() += 1;
            } else {
                r.ok += 1;
                r.latency.saturating_record(lat);
                if open_loop {
                    r.service.saturating_record(now.saturating_sub(sent).max(1));
                }
            }
            if now > self.last_done_ns.get() {
                self.last_done_ns.set(now);
            }
        }
    }
}

/// Bytes of a getData reply body besides the data: its length prefix and the Stat.
const GET_DATA_FIXED: usize = 4 + 68;

/// The error code counted for a reply whose body is not what was asked for.
pub const BAD_REPLY: i32 = 1;

struct InFlight {
    xid: i32,
    kind: OpKind,
    intended: u64,
    sent: u64,
}

fn io_err(msg: String) -> io::Error {
    io::Error::other(msg)
}

/// One pipelined session of an `Ops` run.
async fn ops_session(
    idx: usize,
    cfg: Arc<RunConfig>,
    sh: Arc<Shared>,
    local: Rc<Local>,
    mut conn: Conn,
) -> io::Result<()> {
    let t = sh.wait_go().await;
    let table = cfg.mix.table().ok_or_else(|| io_err("empty mix".into()))?;
    let total_w = table[table.len() - 1].0 as u64;
    let window = cfg.window(idx);
    let value = Bytes::from(vec![b'x'; cfg.value_size]);
    let acl = open_acl();
    let flags = cfg.create_flags();
    let keys = cfg.keys.max(1);
    let wide = cfg.wide_nodes.max(1);
    let mut rng = Rng::new(sh.run_id ^ ((idx as u64 + 1) << 20));
    let mut created: VecDeque<String> = VecDeque::new();
    let mut inflight: VecDeque<InFlight> = VecDeque::with_capacity(window);
    let interval_ns = cfg
        .rate
        .map(|r| ((cfg.sessions as f64 * 1e9 / r) as u64).max(1));
    // Sessions start staggered over one interval so the schedule is smooth overall.
    let mut next_due =
        t.start_ns + interval_ns.map_or(0, |iv| iv * idx as u64 / cfg.sessions as u64);
    let mut seq = 0u64;
    let mut last_send = sh.now();
    let mut missed_counted = false;
    let ping_every = 10_000_000_000u64;
    loop {
        let now = sh.now();
        let stopping = now >= t.end_ns || sh.stop.load(Relaxed);
        if !stopping {
            while inflight.len() < window {
                let intended = match interval_ns {
                    Some(iv) => {
                        if next_due > now {
                            break;
                        }
                        let d = next_due;
                        next_due += iv;
                        d
                    }
                    None => now,
                };
                if let Some(limit) = cfg.ops {
                    if intended >= t.measure_from_ns && sh.claimed.fetch_add(1, Relaxed) >= limit {
                        sh.stop.store(true, Relaxed);
                        break;
                    }
                }
                let mut kind = pick(&table, rng.below(total_w) as u32);
                if kind == OpKind::Delete && created.is_empty() {
                    kind = OpKind::Create;
                }
                let xid = conn.xid();
                match kind {
                    OpKind::Get => {
                        let r = GetDataRequest {
                            path: key_path(rng.below(keys)),
                            watch: false,
                        };
                        conn.push(xid, OpCode::GetData, Some(&r));
                    }
                    OpKind::Exists => {
                        let r = ExistsRequest {
                            path: key_path(rng.below(keys)),
                            watch: false,
                        };
                        conn.push(xid, OpCode::Exists, Some(&r));
                    }
                    OpKind::Set => {
                        let r = SetDataRequest {
                            path: key_path(rng.below(keys)),
                            data: value.clone(),
                            version: -1,
                        };
                        conn.push(xid, OpCode::SetData, Some(&r));
                    }
                    OpKind::Create => {
                        seq += 1;
                        let path = if cfg.sequential {
                            format!("{ROOT}/c/r{:x}-s{idx}-", sh.run_id)
                        } else {
                            format!("{ROOT}/c/r{:x}-s{idx}-{seq}", sh.run_id)
                        };
                        let r = CreateRequest {
                            path,
                            data: value.clone(),
                            acl: acl.clone(),
                            flags,
                        };
                        conn.push(xid, OpCode::Create, Some(&r));
                    }
                    OpKind::Delete => {
                        let r = DeleteRequest {
                            path: created.pop_front().expect("checked non-empty"),
                            version: -1,
                        };
                        conn.push(xid, OpCode::Delete, Some(&r));
                    }
                    OpKind::Children => {
                        let r = GetChildrenRequest {
                            path: wide_path(rng.below(wide)),
                            watch: false,
                        };
                        conn.push(xid, OpCode::GetChildren, Some(&r));
                    }
                }
                inflight.push_back(InFlight {
                    xid,
                    kind,
                    intended,
                    sent: now,
                });
            }
        }
        if stopping && !missed_counted {
            missed_counted = true;
            if let Some(iv) = interval_ns {
                // Requests the schedule wanted sent inside the window but the full
                // window held back: charge them what they had waited so far.
                let mut r = local.rec.borrow_mut();
                while next_due < t.end_ns.min(now) {
                    if next_due >= t.measure_from_ns {
                        r.missed += 1;
                        r.latency
                            .saturating_record(now.saturating_sub(next_due).max(1));
                    }
                    next_due += iv;
                }
            }
        }
        if stopping && inflight.is_empty() {
            break;
        }
        if !stopping && inflight.is_empty() && now.saturating_sub(last_send) > ping_every {
            conn.push_ping();
        }
        if !conn.wbuf.is_empty() {
            conn.flush().await?;
            last_send = now;
        }
        // Wait for replies; in open loop also for the schedule (the pacer's tick).
        if interval_ns.is_some() && !stopping && inflight.len() < window {
            tokio::select! {
                r = conn.fill() => r?,
                _ = local.tick.notified() => {}
            }
        } else if inflight.is_empty() {
            // Stopping in op-count mode with nothing in flight is handled above; here
            // only an idle open-loop session waits, so a short sleep is enough.
            tokio::select! {
                r = conn.fill() => r?,
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        } else {
            conn.fill().await?;
        }
        let now = sh.now();
        while let Some(frame) = conn.next_frame()? {
            let (hdr, body) = parse_reply(&frame)?;
            if hdr.xid < 0 {
                continue; // ping reply or a notification
            }
            let pos = if inflight.front().map(|f| f.xid) == Some(hdr.xid) {
                0
            } else {
                inflight
                    .iter()
                    .position(|f| f.xid == hdr.xid)
                    .ok_or_else(|| io_err(format!("reply to unknown xid {}", hdr.xid)))?
            };
            let f = inflight.remove(pos).expect("position is in range");
            let mut err = hdr.err;
            if f.kind == OpKind::Get && err == 0 && body.len() != GET_DATA_FIXED + cfg.value_size {
                // A getData reply must carry the value setup wrote (length + data + Stat).
                err = BAD_REPLY;
            }
            if f.kind == OpKind::Create && hdr.err == 0 && cfg.mix.delete > 0 {
                let rsp = CreateResponse::from_bytes(&body)
                    .map_err(|e| io_err(format!("bad create reply: {e}")))?;
                created.push_back(rsp.path);
            }
            local.done(
                &t,
                f.kind.name(),
                f.intended,
                f.sent,
                now,
                err,
                interval_ns.is_some(),
            );
        }
    }
    conn.close().await
}

/// A watcher of the watch workload: arms a data watch on `WATCH_PATH`, and on every
/// notification records its latency from the writer's send and arms again.
async fn watcher_session(
    cfg: Arc<RunConfig>,
    sh: Arc<Shared>,
    local: Rc<Local>,
    mut conn: Conn,
) -> io::Result<()> {
    let t = sh.wait_go().await;
    let watchers = cfg.sessions;
    let arm = GetDataRequest {
        path: WATCH_PATH.into(),
        watch: true,
    };
    let mut arm_xid = conn.xid();
    conn.push(arm_xid, OpCode::GetData, Some(&arm));
    conn.flush().await?;
    let mut last_send = sh.now();
    loop {
        if sh.stop.load(Relaxed) || sh.now() >= t.end_ns {
            break;
        }
        tokio::select! {
            r = conn.fill() => r?,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        let now = sh.now();
        while let Some(frame) = conn.next_frame()? {
            let (hdr, body) = parse_reply(&frame)?;
            if hdr.xid == xid::NOTIFICATION {
                let ev = WatcherEvent::from_bytes(&body)
                    .map_err(|e| io_err(format!("bad notification: {e}")))?;
                if ev.r#type != EventType::NodeDataChanged as i32 {
                    continue;
                }
                let sent = sh.watch_sent_ns.load(Relaxed);
                local.done(&t, "notification", sent, sent, now, 0, false);
                if sh.notified.fetch_add(1, Relaxed) + 1 == watchers && t.measured(sent) {
                    local
                        .rec
                        .borrow_mut()
                        .fanout
                        .saturating_record(now.saturating_sub(sent).max(1));
                }
                arm_xid = conn.xid();
                conn.push(arm_xid, OpCode::GetData, Some(&arm));
            } else if hdr.xid == arm_xid {
                if hdr.err != 0 {
                    return Err(io_err(format!("arming the watch failed: {}", hdr.err)));
                }
                if sh.armed.fetch_add(1, Relaxed) + 1 == watchers {
                    sh.all_armed.notify_one();
                }
            }
        }
        if now.saturating_sub(last_send) > 10_000_000_000 {
            conn.push_ping();
        }
        if !conn.wbuf.is_empty() {
            conn.flush().await?;
            last_send = now;
        }
    }
    conn.close().await
}

/// The writer of the watch workload: once every watcher is armed, changes the node and
/// waits for every watcher to be notified and armed again.
async fn watch_writer(cfg: Arc<RunConfig>, sh: Arc<Shared>, mut conn: Conn) -> io::Result<()> {
    let t = sh.wait_go().await;
    let watchers = cfg.sessions;
    let wait_armed = |sh: Arc<Shared>| async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while sh.armed.load(Relaxed) < watchers {
            if tokio::time::timeout_at(deadline, sh.all_armed.notified())
                .await
                .is_err()
            {
                return false;
            }
        }
        true
    };
    let mut timeouts = 0;
    if !wait_armed(sh.clone()).await {
        return Err(io_err("watchers did not arm within 5 s".into()));
    }
    let mut round = 0u64;
    while sh.now() < t.end_ns && !sh.stop.load(Relaxed) {
        round += 1;
        sh.armed.store(0, Relaxed);
        sh.notified.store(0, Relaxed);
        sh.watch_sent_ns.store(sh.now(), Relaxed);
        let r = SetDataRequest {
            path: WATCH_PATH.into(),
            data: Bytes::copy_from_slice(&round.to_be_bytes()),
            version: -1,
        };
        let (hdr, _) = conn.call(OpCode::SetData, Some(&r)).await?;
        if hdr.err != 0 {
            return Err(io_err(format!(
                "setData on the watched node failed: {}",
                hdr.err
            )));
        }
        if !wait_armed(sh.clone()).await {
            timeouts += 1;
            if timeouts > 3 {
                return Err(io_err(format!(
                    "only {} of {watchers} watchers notified and re-armed within 5 s",
                    sh.armed.load(Relaxed)
                )));
            }
        }
    }
    sh.stop.store(true, Relaxed);
    conn.close().await
}

/// A churn worker: opens and closes sessions back to back.
async fn churn_session(
    idx: usize,
    cfg: Arc<RunConfig>,
    sh: Arc<Shared>,
    local: Rc<Local>,
) -> io::Result<()> {
    let t = sh.wait_go().await;
    let addr = &cfg.hosts[idx % cfg.hosts.len()];
    while sh.now() < t.end_ns && !sh.stop.load(Relaxed) {
        let t0 = sh.now();
        if let Some(limit) = cfg.ops {
            if t0 >= t.measure_from_ns && sh.claimed.fetch_add(1, Relaxed) >= limit {
                sh.stop.store(true, Relaxed);
                break;
            }
        }
        let r = async { Conn::connect(addr).await?.close().await }.await;
        let err = match r {
            Ok(()) => 0,
            Err(_) => ErrorCode::ConnectionLoss as i32,
        };
        local.done(&t, "connect+close", t0, t0, sh.now(), err, false);
        if err != 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    Ok(())
}

/// Flushes the thread's progress counters and interval histogram every 250 ms, and in
/// open loop paces the sessions; ends when the thread's sessions have.
async fn thread_helpers(sh: Arc<Shared>, local: Rc<Local>, open_loop: bool) {
    let mut last_flush = Instant::now();
    loop {
        if local.live.get() == 0 {
            break;
        }
        if open_loop {
            // A blocking sleep: tokio's timer is millisecond-grained. yield_now lets the
            // runtime poll its sockets before this task runs again.
            std::thread::sleep(Duration::from_micros(50));
            local.tick.notify_waiters();
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if last_flush.elapsed() >= Duration::from_millis(250) {
            last_flush = Instant::now();
            flush_progress(&sh, &local);
        }
    }
    flush_progress(&sh, &local);
}

fn flush_progress(sh: &Shared, local: &Local) {
    sh.progress_ops
        .fetch_add(local.progress_ops.replace(0), Relaxed);
    sh.progress_errors
        .fetch_add(local.progress_errors.replace(0), Relaxed);
    let mut r = local.rec.borrow_mut();
    if let Ok(mut i) = sh.interval.lock() {
        let _ = i.add(&r.interval);
    }
    r.interval.reset();
}

/// What a worker thread hands back.
pub struct ThreadOutput {
    pub rec: Recorder,
    pub last_done_ns: u64,
}

/// Runs the sessions `idx` with `idx % threads == thread` on this thread.
pub fn worker_thread(thread: usize, cfg: Arc<RunConfig>, sh: Arc<Shared>) -> ThreadOutput {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let local = Rc::new(Local {
        rec: RefCell::new(Recorder::default()),
        progress_ops: Cell::new(0),
        progress_errors: Cell::new(0),
        last_done_ns: Cell::new(0),
        live: Cell::new(0),
        tick: Notify::new(),
    });
    let set = tokio::task::LocalSet::new();
    let l2 = local.clone();
    set.block_on(&rt, async move {
        let local = l2;
        let mut handles = Vec::new();
        let mine: Vec<usize> = (0..cfg.sessions)
            .filter(|i| i % cfg.threads == thread)
            .collect();
        local
            .live
            .set(mine.len() + usize::from(thread == 0 && cfg.kind == Kind::Watch));
        for idx in mine {
            let (cfg, sh, local) = (cfg.clone(), sh.clone(), local.clone());
            handles.push(tokio::task::spawn_local(async move {
                let addr = cfg.hosts[idx % cfg.hosts.len()].clone();
                let r = async {
                    match cfg.kind {
                        Kind::Churn => {
                            sh.connected.fetch_add(1, Relaxed);
                            churn_session(idx, cfg.clone(), sh.clone(), local.clone()).await
                        }
                        Kind::Ops | Kind::Watch | Kind::Populate => {
                            let conn = Conn::connect(&addr)
                                .await
                                .map_err(|e| io_err(format!("connecting to {addr}: {e}")))?;
                            sh.connected.fetch_add(1, Relaxed);
                            if cfg.kind == Kind::Watch {
                                watcher_session(cfg.clone(), sh.clone(), local.clone(), conn).await
                            } else {
                                ops_session(idx, cfg.clone(), sh.clone(), local.clone(), conn).await
                            }
                        }
                    }
                }
                .await;
                if let Err(e) = r {
                    sh.fail(format!("session {idx}: {e}"));
                    sh.stop.store(true, Relaxed);
                }
                local.live.set(local.live.get() - 1);
            }));
        }
        if thread == 0 && cfg.kind == Kind::Watch {
            let (cfg, sh, local) = (cfg.clone(), sh.clone(), local.clone());
            handles.push(tokio::task::spawn_local(async move {
                let r = async {
                    let conn = Conn::connect(&cfg.hosts[0]).await?;
                    sh.connected.fetch_add(1, Relaxed);
                    watch_writer(cfg.clone(), sh.clone(), conn).await
                }
                .await;
                if let Err(e) = r {
                    sh.fail(format!("watch writer: {e}"));
                    sh.stop.store(true, Relaxed);
                }
                local.live.set(local.live.get() - 1);
            }));
        }
        let open_loop = cfg.rate.is_some();
        let helpers =
            tokio::task::spawn_local(thread_helpers(sh.clone(), local.clone(), open_loop));
        for h in handles {
            let _ = h.await;
        }
        let _ = helpers.await;
    });
    let last_done_ns = local.last_done_ns.get();
    let rec = Rc::try_unwrap(local)
        .ok()
        .expect("every task has ended")
        .rec
        .into_inner();
    ThreadOutput { rec, last_done_ns }
}

// ---- setup ----

/// Creates `path` unless it exists.
async fn ensure(conn: &mut Conn, path: &str, data: Bytes) -> io::Result<()> {
    let r = CreateRequest {
        path: path.into(),
        data,
        acl: open_acl(),
        flags: 0,
    };
    let (hdr, _) = conn.call(OpCode::Create, Some(&r)).await?;
    if hdr.err != 0 && hdr.err != ErrorCode::NodeExists as i32 {
        return Err(io_err(format!(
            "create {path}: {}",
            crate::report::error_name(hdr.err)
        )));
    }
    Ok(())
}

/// Creates the paths `name(i)` for `i` in `first..total` with pipelined sessions; an
/// existing node gets `value` set when `overwrite` (so a key space left by an earlier
/// run with another value size is corrected).
#[allow(clippy::too_many_arguments)]
async fn fill(
    hosts: &[String],
    sessions: usize,
    window: usize,
    first: u64,
    total: u64,
    name: Arc<dyn Fn(u64) -> String>,
    value: Bytes,
    overwrite: bool,
    progress: Rc<Cell<u64>>,
) -> io::Result<()> {
    let next = Rc::new(Cell::new(first));
    let mut tasks = Vec::new();
    for s in 0..sessions {
        let addr = hosts[s % hosts.len()].clone();
        let (next, name, value, progress) =
            (next.clone(), name.clone(), value.clone(), progress.clone());
        tasks.push(tokio::task::spawn_local(async move {
            let mut conn = Conn::connect(&addr).await?;
            let acl = open_acl();
            // (xid, index, was a setData)
            let mut inflight: VecDeque<(i32, u64, bool)> = VecDeque::new();
            let mut resets: Vec<u64> = Vec::new();
            loop {
                while inflight.len() < window {
                    let xid = conn.xid();
                    if let Some(i) = resets.pop() {
                        let r = SetDataRequest {
                            path: name(i),
                            data: value.clone(),
                            version: -1,
                        };
                        conn.push(xid, OpCode::SetData, Some(&r));
                        inflight.push_back((xid, i, true));
                        continue;
                    }
                    let i = next.get();
                    if i >= total {
                        break;
                    }
                    next.set(i + 1);
                    let r = CreateRequest {
                        path: name(i),
                        data: value.clone(),
                        acl: acl.clone(),
                        flags: 0,
                    };
                    conn.push(xid, OpCode::Create, Some(&r));
                    inflight.push_back((xid, i, false));
                }
                if inflight.is_empty() {
                    break;
                }
                conn.flush().await?;
                conn.fill().await?;
                while let Some(frame) = conn.next_frame()? {
                    let (hdr, _) = parse_reply(&frame)?;
                    if hdr.xid < 0 {
                        continue;
                    }
                    let pos = inflight
                        .iter()
                        .position(|f| f.0 == hdr.xid)
                        .ok_or_else(|| io_err(format!("reply to unknown xid {}", hdr.xid)))?;
                    let (_, i, was_set) = inflight.remove(pos).expect("in range");
                    match hdr.err {
                        0 => progress.set(progress.get() + 1),
                        e if e == ErrorCode::NodeExists as i32 && !was_set => {
                            if overwrite {
                                resets.push(i);
                            } else {
                                progress.set(progress.get() + 1);
                            }
                        }
                        e => {
                            return Err(io_err(format!(
                                "setup of {}: {}",
                                name(i),
                                crate::report::error_name(e)
                            )))
                        }
                    }
                }
            }
            conn.close().await
        }));
    }
    for t in tasks {
        t.await.map_err(|e| io_err(e.to_string()))??;
    }
    Ok(())
}

/// Whether key `i` exists with a value of `size` bytes (then an earlier run's key
/// space is reused as it is).
async fn key_ready(conn: &mut Conn, i: u64, size: usize) -> io::Result<bool> {
    let r = GetDataRequest {
        path: key_path(i),
        watch: false,
    };
    let (hdr, body) = conn.call(OpCode::GetData, Some(&r)).await?;
    Ok(hdr.err == 0 && GetDataResponse::from_bytes(&body).is_ok_and(|d| d.data.len() == size))
}

/// Creates the znodes the run reads and writes (idempotent), reporting progress on
/// stderr for big key spaces.
pub fn setup(cfg: &RunConfig) -> io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let set = tokio::task::LocalSet::new();
    set.block_on(&rt, async {
        let mut conn = Conn::connect(&cfg.hosts[0]).await?;
        for p in ["", "/k", "/c", "/w"] {
            ensure(&mut conn, &format!("{ROOT}{p}"), Bytes::new()).await?;
        }
        ensure(&mut conn, WATCH_PATH, Bytes::new()).await?;
        let value = Bytes::from(vec![b'x'; cfg.value_size]);
        // (what, first index, end index, name of index i, overwrite existing)
        #[allow(clippy::type_complexity)]
        let mut jobs: Vec<(String, u64, u64, Arc<dyn Fn(u64) -> String>, bool)> = Vec::new();
        if (cfg.kind == Kind::Populate || (cfg.kind == Kind::Ops && cfg.mix.uses_keys()))
            && !key_ready(&mut conn, cfg.keys - 1, cfg.value_size).await?
        {
            // Keys are created in order, so an earlier run's key space is a prefix:
            // find where it ends and create only the rest (fewer failed creates).
            let (mut lo, mut hi) = (0u64, cfg.keys - 1);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if key_ready(&mut conn, mid, cfg.value_size).await? {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            jobs.push(("keys".into(), lo, cfg.keys, Arc::new(workload::key_path), true));
        }
        if cfg.kind == Kind::Ops && cfg.mix.children > 0 {
            for w in 0..cfg.wide_nodes {
                ensure(&mut conn, &wide_path(w), Bytes::new()).await?;
                let parent = wide_path(w);
                jobs.push((
                    format!("children of {parent}"),
                    0,
                    cfg.width,
                    Arc::new(move |i| format!("{parent}/{i:06}")),
                    false,
                ));
            }
        }
        conn.close().await?;
        for (what, first, total, name, overwrite) in jobs {
            let progress = Rc::new(Cell::new(0u64));
            let started = Instant::now();
            let p2 = progress.clone();
            // Gives up when nothing completes for 60 s (a stalled server).
            let watchdog = async move {
                let mut last = (0, Instant::now());
                loop {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    eprintln!("setup: {} of {total} {what}", p2.get());
                    if p2.get() != last.0 {
                        last = (p2.get(), Instant::now());
                    } else if last.1.elapsed() > Duration::from_secs(60) {
                        return io_err(format!("setup stalled at {} of {total} {what}", p2.get()));
                    }
                }
            };
            tokio::select! {
                r = fill(&cfg.hosts, 8, 128, first, total, name, value.clone(), overwrite, progress.clone()) => r?,
                e = watchdog => return Err(e),
            }
            if total >= 100_000 {
                eprintln!(
                    "setup: {total} znodes in {:.1} s ({:.0}/s)",
                    started.elapsed().as_secs_f64(),
                    total as f64 / started.elapsed().as_secs_f64()
                );
            }
        }
        Ok(())
    })
}

/// Polls `addr` until a getData of `path` succeeds; the time it took.
pub fn wait_ready(addr: &str, path: &str, timeout: Duration) -> io::Result<Duration> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let start = Instant::now();
    rt.block_on(async {
        let mut last = String::from("never connected");
        while start.elapsed() < timeout {
            let attempt = async {
                let mut c = Conn::connect(addr).await?;
                let r = GetDataRequest {
                    path: path.into(),
                    watch: false,
                };
                let (hdr, _) = c.call(OpCode::GetData, Some(&r)).await?;
                let _ = c.close().await;
                if hdr.err == 0 {
                    Ok(())
                } else {
                    Err(io_err(format!(
                        "getData {path}: {}",
                        crate::report::error_name(hdr.err)
                    )))
                }
            };
            match tokio::time::timeout(Duration::from_secs(2), attempt).await {
                Ok(Ok(())) => return Ok(start.elapsed()),
                Ok(Err(e)) => last = e.to_string(),
                Err(_) => last = "timed out".into(),
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("{addr} did not serve {path} within {timeout:?}: {last}"),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> Local {
        Local {
            rec: RefCell::new(Recorder::default()),
            progress_ops: Cell::new(0),
            progress_errors: Cell::new(0),
            last_done_ns: Cell::new(0),
            live: Cell::new(0),
            tick: Notify::new(),
        }
    }

    #[test]
    fn only_ops_intended_inside_the_window_are_measured() {
        let t = Timing {
            start_ns: 0,
            measure_from_ns: 1_000,
            end_ns: 10_000,
        };
        let l = local();
        l.done(&t, "getData", 500, 500, 900, 0, false); // warm-up
        l.done(&t, "getData", 2_000, 2_000, 2_500, 0, false);
        l.done(&t, "getData", 3_000, 3_000, 3_400, -101, false);
        l.done(&t, "getData", 10_000, 10_000, 10_100, 0, false); // after the end
        let r = l.rec.borrow();
        assert_eq!(r.ops, 2);
        // Only the successful reply is throughput and latency; the error is counted.
        assert_eq!((r.ok, r.latency.len()), (1, 1));
        assert_eq!(r.errors[&-101], 1);
        assert_eq!(r.errors_all[&-101], 1);
        assert_eq!(l.progress_ops.get(), 4);
        assert_eq!(l.progress_errors.get(), 1);
        assert_eq!(l.last_done_ns.get(), 3_400);
        assert_eq!(r.ok_in_window, 1);
    }

    #[test]
    fn open_loop_charges_the_wait_before_sending() {
        // Intended at 1000, sent late at 5000 (the server held the window full), reply
        // at 5100: corrected latency is 4100 ns, the service time only 100 ns.
        let t = Timing {
            start_ns: 0,
            measure_from_ns: 0,
            end_ns: u64::MAX,
        };
        let l = local();
        l.done(&t, "getData", 1_000, 5_000, 5_100, 0, true);
        let r = l.rec.borrow();
        assert_eq!(r.latency.max(), r.latency.highest_equivalent(4_100));
        assert_eq!(r.service.max(), r.service.highest_equivalent(100));
    }
}
