//! Gathering what the four-letter words print. Each shard owns its connections and
//! watches, so each publishes a `ShardReport` into a shared board a few times a second
//! (and the shard answering the word refreshes its own first). A word thus sees other
//! shards' counters at most one refresh period old, and no request path ever takes the
//! board's lock.
//!
//! The lists (every connection for `cons`/`stat`/`dump`, every watch for `wchc`/`wchp`)
//! cost time and memory in proportion to the connections and watches a shard holds:
//! tens of thousands of connections and a million watches are ordinary in production.
//! So they are built only when a word asks for them ([`Board::ask_detail`]): the
//! asking shard wakes every shard's report task (its own too), each answers on its
//! next turn, and the periodic refresh stays O(1) however much a shard holds. `wchs`
//! and `zk_watch_count` come from the WatchManager's counters; the `wchc`/`wchp`
//! listing is built [`WATCH_LISTING_STEP`] paths at a time with pauses in between, so
//! even a listing of millions of watches never holds a shard for long (ZooKeeper
//! documents `wchc` and `wchp` as expensive: it copies its whole table under the
//! manager's lock).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use super::shard::Shard;
use super::Runtime;
use crate::admin::{
    self, AdminView, ConnectionInfo, Detail, LatencyStats, SessionWatches, Summary,
};
use crate::watch::{WatcherId, WatchesSummary};

/// Paths a shard adds to its `wchc`/`wchp` listing per step at most (about a
/// millisecond of copying strings), with a pause after each step.
pub const WATCH_LISTING_STEP: usize = 16_384;

/// One shard's contribution.
#[derive(Debug, Clone, Default)]
pub struct ShardReport {
    pub latency: LatencyStats,
    pub packets_received: u64,
    pub packets_sent: u64,
    pub outstanding: u64,
    pub connection_count: u64,
    pub watch_count: u64,
    /// `wchs`' numbers for this shard, from counters.
    pub watches_summary: WatchesSummary,
    /// The detail request (`Board::ask_detail`) the lists below answer; 0 before any.
    pub detail_gen: u64,
    /// Filled only to answer a detail request, empty otherwise.
    pub connections: Vec<ConnectionInfo>,
    /// Filled only to answer a detail request, empty otherwise.
    pub data_watches: Vec<SessionWatches>,
    /// When the lists were built: they are dropped `DETAIL_KEEP` later (a word reads
    /// them within `DETAIL_WAIT`), so a `wchc` leaves no copy of every watch behind.
    detail_at: Option<std::time::Instant>,
}

/// Bits of `Board::detail`.
const DETAIL_CONNECTIONS: u8 = 1;
const DETAIL_WATCHES: u8 = 2;

/// How long a word waits for the other shards' lists (a shard busy for longer answers
/// with what it published last, which may be empty).
const DETAIL_WAIT: std::time::Duration = std::time::Duration::from_secs(2);
const DETAIL_KEEP: std::time::Duration = std::time::Duration::from_secs(5);

/// The shared board, one slot per shard, plus reset requests (`crst`, `srst`) that each
/// shard honours on its next refresh.
pub struct Board {
    pub slots: Vec<Mutex<ShardReport>>,
    /// Bumped by `srst`; a shard that sees a new value zeroes its server counters.
    pub srst_gen: AtomicU64,
    /// Bumped by `crst`; a shard that sees a new value zeroes its connection counters.
    pub crst_gen: AtomicU64,
    /// The txn log's fsync latency (µs), published by the commit shard.
    pub fsync: Mutex<Option<Summary>>,
    /// In an ensemble: this server's role, as `srvr`'s `Mode:` says it.
    pub quorum: Mutex<Option<QuorumReport>>,
    /// For `/metrics` only (`metricsProvider.className`), left empty without it: txns
    /// per group-commit fsync, published by the commit shard beside `fsync`.
    pub batch_txns: Mutex<Option<Summary>>,
    /// For `/metrics`: the snapshots taken, recorded once each by the snapshot task.
    pub snapshots: Mutex<SnapshotRecord>,
    /// For `/metrics`: one slot per shard, refreshed with `slots`.
    pub metric_slots: Vec<Mutex<ShardMetrics>>,
    /// Each shard's requests in flight, kept current (not on the report's period):
    /// `globalOutstandingLimit` bounds their sum, server-wide as in ZooKeeper.
    pub in_flight: Vec<std::sync::atomic::AtomicUsize>,
    /// How many times a connection stopped reading because the server-wide limit was
    /// reached (for the benchmark's "throttled" column and `/metrics`).
    pub throttled: AtomicU64,
    /// The last detail request (see the module comment) and the lists asked for since
    /// every shard last answered, in one word: generation << 8 | `DETAIL_*` bits. A
    /// request adds its bits, so concurrent words all get theirs; the bits are cleared
    /// once every shard has answered the latest request and none came since (one
    /// compare-and-swap, so a newer request's bits are never lost).
    detail: AtomicU64,
    /// Wakes a shard's report task for a detail request, across executors (a permit is
    /// kept if the task is busy).
    detail_wake: Vec<tokio::sync::Notify>,
}

/// A shard's numbers that only `/metrics` shows.
#[derive(Debug, Clone, Default)]
pub struct ShardMetrics {
    /// Committed txns (up to the last zxid shard 0 published) not applied here yet.
    pub apply_lag_txns: u64,
    /// The tree's counts; published by shard 0 only (the tree's owner; every shard reads the same tree).
    pub tree: Option<crate::admin::prometheus::TreeFacts>,
}

/// Snapshot durations for `/metrics`' `snapshottime`.
#[derive(Debug, Default)]
pub struct SnapshotRecord {
    /// Each snapshot's duration in ms; `None` before the first.
    pub took_ms: Option<hdrhistogram::Histogram<u64>>,
    /// How long the last snapshot's longest step held its shard, µs.
    pub last_longest_step_us: Option<u64>,
}

/// An ensemble member's role and its learners, for `srvr`, `stat` and `mntr`.
#[derive(Debug, Clone, Default)]
pub struct QuorumReport {
    /// `leader`, `follower`, `observer`, or `looking` (not serving).
    pub mode: &'static str,
    /// ZooKeeper's `ZabState` as the AdminServer's `zabstate` prints it: `election`
    /// while looking, `synchronization` while leading or following before serving,
    /// `broadcast` once serving.
    pub zab_state: &'static str,
    /// The leader this member follows or is (`None`: unknown, e.g. while looking).
    pub leader: Option<crate::quorum::Sid>,
    pub counts: crate::quorum::zab::LearnerCounts,
}

impl Board {
    /// The ensemble task's role changed.
    pub fn set_quorum_state(&self, state: crate::quorum::ServerState, serving: bool) {
        use crate::quorum::ServerState::*;
        let mode = match (state, serving) {
            (Leading, true) => "leader",
            (Following, true) => "follower",
            (Observing, true) => "observer",
            _ => "looking",
        };
        let zab_state = match (state, serving) {
            (Looking, _) => "election",
            (_, false) => "synchronization",
            (_, true) => "broadcast",
        };
        let mut q = self.quorum.lock().unwrap_or_else(|e| e.into_inner());
        let (counts, leader) = q.as_ref().map(|r| (r.counts, r.leader)).unwrap_or_default();
        // A new election forgets the old leader; serving keeps the one named last.
        let leader = if state == Looking { None } else { leader };
        *q = Some(QuorumReport {
            mode,
            zab_state,
            leader,
            counts,
        });
    }

    /// The leader the ensemble task now follows (or is), for the AdminServer's
    /// `leader` command.
    pub fn set_leader(&self, leader: Option<crate::quorum::Sid>) {
        let mut q = self.quorum.lock().unwrap_or_else(|e| e.into_inner());
        match q.as_mut() {
            Some(r) => r.leader = leader,
            None => {
                *q = Some(QuorumReport {
                    mode: "looking",
                    zab_state: "election",
                    leader,
                    counts: Default::default(),
                })
            }
        }
    }

    pub fn set_learner_counts(&self, counts: crate::quorum::zab::LearnerCounts) {
        let mut q = self.quorum.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = q.as_mut() {
            r.counts = counts;
        }
    }
}

impl Board {
    pub fn new(shards: usize) -> Arc<Board> {
        Arc::new(Board {
            slots: (0..shards).map(|_| Mutex::default()).collect(),
            srst_gen: AtomicU64::new(0),
            crst_gen: AtomicU64::new(0),
            fsync: Mutex::new(None),
            quorum: Mutex::new(None),
            batch_txns: Mutex::new(None),
            snapshots: Mutex::default(),
            metric_slots: (0..shards).map(|_| Mutex::default()).collect(),
            in_flight: (0..shards).map(|_| Default::default()).collect(),
            throttled: AtomicU64::new(0),
            detail: AtomicU64::new(0),
            detail_wake: (0..shards).map(|_| Default::default()).collect(),
        })
    }

    /// Asks every shard for the lists `detail` needs; returns the request's generation
    /// (0 when it needs none).
    fn ask_detail(&self, detail: Detail) -> u64 {
        let what = if detail.connections {
            DETAIL_CONNECTIONS
        } else {
            0
        } | if detail.data_watches {
            DETAIL_WATCHES
        } else {
            0
        };
        if what == 0 {
            return 0;
        }
        let before = self
            .detail
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                Some((((v >> 8) + 1) << 8) | (v & 0xff) | u64::from(what))
            })
            .unwrap_or_else(|v| v);
        let gen = (before >> 8) + 1;
        for w in &self.detail_wake {
            w.notify_one();
        }
        gen
    }

    /// Resolves when shard `shard` is asked for lists (the report task's wake-up).
    pub async fn detail_asked(&self, shard: usize) {
        match self.detail_wake.get(shard) {
            Some(w) => w.notified().await,
            None => std::future::pending().await,
        }
    }

    /// The detail request shard `shard` has not answered yet: its generation and
    /// `DETAIL_*` bits.
    pub fn detail_pending(&self, shard: usize) -> Option<(u64, u8)> {
        let v = self.detail.load(Ordering::Acquire);
        let asked = v >> 8;
        let answered = self
            .slots
            .get(shard)?
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .detail_gen;
        (asked > answered).then_some((asked, (v & 0xff) as u8))
    }

    /// Whether every shard's published lists answer request `gen`. Once they answer
    /// the latest request, its bits are cleared: a later word asks for its own.
    fn detail_answered(&self, gen: u64) -> bool {
        let v = self.detail.load(Ordering::Acquire);
        let latest = v >> 8;
        let all = |g: u64| {
            self.slots
                .iter()
                .all(|s| s.lock().unwrap_or_else(|e| e.into_inner()).detail_gen >= g)
        };
        if v & 0xff != 0 && all(latest) {
            // Fails harmlessly if a request came in between.
            let _ =
                self.detail
                    .compare_exchange(v, latest << 8, Ordering::AcqRel, Ordering::Relaxed);
        }
        all(gen)
    }

    /// Requests in flight on the whole server: `own` (the caller's live count for its
    /// shard `shard`) plus what the other shards last published.
    pub fn in_flight_total(&self, shard: usize, own: usize) -> usize {
        self.in_flight
            .iter()
            .enumerate()
            .map(|(i, n)| {
                if i == shard {
                    own
                } else {
                    n.load(Ordering::Relaxed)
                }
            })
            .sum()
    }

    /// A snapshot was taken in `took`; its longest step held the shard `longest_step_us`.
    pub fn record_snapshot(&self, took: std::time::Duration, longest_step_us: u64) {
        let mut r = self.snapshots.lock().unwrap_or_else(|e| e.into_inner());
        let h = r.took_ms.get_or_insert_with(|| {
            hdrhistogram::Histogram::new_with_bounds(1, 24 * 3_600_000, 2)
                .expect("valid histogram bounds")
        });
        h.saturating_record(took.as_millis().max(1) as u64);
        r.last_longest_step_us = Some(longest_step_us);
    }
}

/// Publishes what only `/metrics` shows of this shard: how far what it delivered to
/// its clients trails the last zxid shard 0 committed and, on shard 0, the tree's
/// counts. Only called when the metrics provider is on.
pub fn publish_metrics(shard: &Shard, board: &Board, published: i64) {
    let applied = shard.delivered_zxid;
    // Zxids count txns within an epoch; across an epoch change the lag is at least
    // the new epoch's txns.
    let lag = match (published >> 32, applied >> 32) {
        _ if published <= applied => 0,
        (p, a) if p == a => (published - applied) as u64,
        _ => (published & 0xffff_ffff) as u64,
    };
    let tree = (shard.id == 0).then(|| {
        let t = shard.tree.get();
        crate::admin::prometheus::TreeFacts {
            znode_count: t.node_count() as u64,
            ephemerals_count: t.ephemeral_count() as u64,
            approximate_data_size: t.approximate_data_size(),
            global_sessions: t.session_count() as u64,
        }
    });
    if let Some(slot) = board.metric_slots.get(shard.id) {
        *slot.lock().unwrap_or_else(|e| e.into_inner()) = ShardMetrics {
            apply_lag_txns: lag,
            tree,
        };
    }
}

/// What a shard remembers of the resets it already applied.
#[derive(Default)]
pub struct SeenResets {
    srst: u64,
    crst: u64,
}

/// What a shard's report task built to answer a detail request.
pub struct DetailAnswer {
    pub gen: u64,
    what: u8,
    /// The `wchc` listing, when asked for (built by [`list_watches`]).
    data_watches: Option<Vec<SessionWatches>>,
}

impl DetailAnswer {
    pub fn wants_watches(&self) -> bool {
        self.what & DETAIL_WATCHES != 0
    }
}

/// The answer shard `shard` owes, if any (its watch listing still to be made).
pub fn detail_owed(board: &Board, shard: usize) -> Option<DetailAnswer> {
    board.detail_pending(shard).map(|(gen, what)| DetailAnswer {
        gen,
        what,
        data_watches: None,
    })
}

/// Builds the shard's `wchc` listing `WATCH_LISTING_STEP` paths at a time, pausing
/// between steps so requests and batches go on (a connection is listed as it was when
/// its step reached it).
pub async fn list_watches(rt: &Runtime, answer: &mut DetailAnswer) {
    let mut cursor = 0usize;
    let mut all: Vec<(WatcherId, SessionWatches)> = Vec::new();
    loop {
        let done = {
            let shard = rt.shard.borrow();
            let mut got = Vec::new();
            let done = shard
                .watches
                .listing_step(&mut cursor, WATCH_LISTING_STEP, &mut got);
            let session_of = |w: u64| shard.conns.get(&w).map(|c| c.session_id).unwrap_or(0);
            all.extend(got.into_iter().map(|(w, paths)| {
                (
                    w,
                    SessionWatches {
                        session_id: session_of(w),
                        paths,
                    },
                )
            }));
            done
        };
        if done {
            break;
        }
        glommio::timer::sleep(std::time::Duration::from_micros(50)).await;
    }
    all.sort_unstable_by_key(|(w, _)| *w);
    answer.data_watches = Some(all.into_iter().map(|(_, sw)| sw).collect());
}

/// Applies pending resets and publishes this shard's report, with the lists of
/// `answer` when it answers a detail request.
pub fn publish(
    shard: &mut Shard,
    board: &Board,
    seen: &mut SeenResets,
    answer: Option<DetailAnswer>,
) {
    let srst = board.srst_gen.load(Ordering::Relaxed);
    if srst != seen.srst {
        seen.srst = srst;
        shard.stats = Default::default();
    }
    let crst = board.crst_gen.load(Ordering::Relaxed);
    if crst != seen.crst {
        seen.crst = crst;
        for c in shard.conns.values_mut() {
            c.stats = Default::default();
            c.stats.last_zxid = -1;
            c.stats.last_xid = -1;
        }
    }
    let Some(slot) = board.slots.get(shard.id) else {
        return;
    };
    let answered = answer.is_some();
    let report = report(shard, answer);
    let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
    if !answered {
        // Lists answering the last request stay a while (a word may still be reading
        // them); they are not rebuilt on the refresh period.
        let ShardReport {
            detail_gen,
            connections,
            data_watches,
            detail_at,
            ..
        } = std::mem::take(&mut *slot);
        let keep = detail_at.is_some_and(|at| at.elapsed() < DETAIL_KEEP);
        *slot = ShardReport {
            detail_gen,
            connections: if keep { connections } else { Vec::new() },
            data_watches: if keep { data_watches } else { Vec::new() },
            detail_at: if keep { detail_at } else { None },
            ..report
        };
    } else {
        *slot = report;
    }
}

/// This shard's counters, plus the lists `answer` holds or asks for.
fn report(shard: &Shard, answer: Option<DetailAnswer>) -> ShardReport {
    let answered_at = answer.as_ref().map(|_| std::time::Instant::now());
    let (detail_gen, what, listed) = match answer {
        Some(a) => (a.gen, a.what, a.data_watches),
        None => (0, 0, None),
    };
    let connections = if what & DETAIL_CONNECTIONS != 0 {
        shard
            .conns
            .values()
            .map(|c| ConnectionInfo {
                remote: c.remote,
                interest_ops: 1,
                outstanding_requests: c.queued() as u64,
                packets_received: c.stats.packets_received,
                packets_sent: c.stats.packets_sent,
                session_id: if c.is_connected() { c.session_id } else { 0 },
                last_operation: if c.stats.last_op.is_empty() {
                    "NA".into()
                } else {
                    c.stats.last_op.into()
                },
                established_ms: c.established_ms,
                session_timeout: c.timeout,
                last_cxid: c.stats.last_xid as i64,
                last_zxid: c.stats.last_zxid,
                last_response_time: c.stats.last_response,
                last_latency: c.stats.last_latency,
                latency: c.stats.latency.clone(),
                expires_at_ms: None,
            })
            .collect()
    } else {
        Vec::new()
    };
    let data_watches = listed.unwrap_or_default();
    ShardReport {
        latency: shard.stats.latency.clone(),
        packets_received: shard.stats.packets_received,
        packets_sent: shard.stats.packets_sent,
        outstanding: shard.outstanding as u64,
        connection_count: shard.conns.len() as u64,
        watch_count: shard.watches.watch_count() as u64,
        watches_summary: shard.watches.summary(),
        detail_gen,
        connections,
        data_watches,
        detail_at: answered_at,
    }
}

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The reply to four-letter word `cmd`, answered on `rt`'s shard.
pub async fn answer(rt: &Runtime, cmd: &str) -> String {
    if !admin::is_four_letter_word(cmd) {
        return String::new();
    }
    if !rt.config.four_letter_allowed(cmd) {
        return admin::not_in_whitelist(cmd);
    }
    match cmd {
        "srst" => {
            rt.board.srst_gen.fetch_add(1, Ordering::Relaxed);
        }
        "crst" => {
            rt.board.crst_gen.fetch_add(1, Ordering::Relaxed);
        }
        _ => {}
    }
    let view = gather(rt, Detail::for_command(cmd)).await;
    admin::four_letter(cmd, &view)
}

/// Everything the four-letter words (and the AdminServer's commands) print, gathered
/// on `rt`'s shard: its own report refreshed, the other shards' latest, the tree's
/// counts, and the lists `detail` asks for.
pub async fn gather(rt: &Runtime, detail: Detail) -> AdminView {
    let gen = rt.board.ask_detail(detail);
    {
        let mut shard = rt.shard.borrow_mut();
        publish(
            &mut shard,
            &rt.board,
            &mut rt.seen_resets.borrow_mut(),
            None,
        );
    }
    if gen > 0 {
        let deadline = std::time::Instant::now() + DETAIL_WAIT;
        while !rt.board.detail_answered(gen) && std::time::Instant::now() < deadline {
            glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
        }
    }
    let shard = rt.shard.borrow();
    let version = admin::full_version("corral");
    let mut view = AdminView {
        env: admin::env_entries(&version, &env_facts(rt.board.slots.len())),
        version,
        conf_lines: rt.config.conf_lines_for_port(rt.bound_port.get()),
        ..AdminView::default()
    };
    let mut summary = WatchesSummary::default();
    for slot in &rt.board.slots {
        let r = slot.lock().unwrap_or_else(|e| e.into_inner());
        view.stats.packets_received += r.packets_received;
        let l = &r.latency;
        if l.count > 0 {
            let v = &mut view.stats.latency;
            v.min = if v.count == 0 {
                l.min
            } else {
                v.min.min(l.min)
            };
            v.max = v.max.max(l.max);
            v.total += l.total;
            v.count += l.count;
        }
        view.stats.packets_sent += r.packets_sent;
        view.stats.outstanding_requests += r.outstanding;
        view.stats.num_alive_connections += r.connection_count;
        view.watch_count += r.watch_count;
        // Summed over shards: exact for connections and watches (each connection is
        // on one shard); a path watched from two shards counts once per shard.
        let (sum, own) = (&mut summary, r.watches_summary);
        sum.num_connections += own.num_connections;
        sum.num_paths += own.num_paths;
        sum.total_watches += own.total_watches;
        if detail.connections {
            view.connections.extend(r.connections.iter().cloned());
        }
        if detail.data_watches {
            view.data_watches.extend(r.data_watches.iter().cloned());
        }
    }
    view.watches_summary = Some(summary);
    let _read = shard.tree.read();
    let tree = shard.tree.get();
    view.stats.last_processed_zxid = tree.last_processed_zxid();
    view.stats.node_count = tree.node_count() as u64;
    view.approximate_data_size = tree.approximate_data_size();
    view.ephemerals_count = tree.ephemeral_count() as u64;
    view.session_count = tree.session_count() as u64;
    if detail.sessions || detail.ephemerals {
        let now = wall_ms();
        for (id, timeout) in &tree.sessions() {
            if detail.sessions {
                view.sessions.push(admin::SessionExpiry {
                    session_id: *id,
                    expires_at_ms: now + *timeout as i64,
                });
            }
            let paths = tree.ephemerals(*id);
            if detail.ephemerals && !paths.is_empty() {
                view.ephemerals.push(admin::SessionEphemerals {
                    session_id: *id,
                    paths,
                });
            }
        }
    }
    if let Some(f) = rt
        .board
        .fsync
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
    {
        view.extra_metrics = admin::summary_metrics("fsync_time_us", f);
    }
    let quorum = rt
        .board
        .quorum
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if let Some(q) = quorum {
        view.stats.server_state = q.mode.into();
        view.running = rt.serving.load(Ordering::Acquire);
        if q.mode == "leader" {
            use admin::MetricValue::Int;
            let c = q.counts;
            let n = |v: usize| Int(v as i64);
            view.extra_metrics.extend([
                (
                    "learners".to_string(),
                    n(c.followers + c.observers + c.syncing),
                ),
                ("followers".to_string(), n(c.followers)),
                ("synced_followers".to_string(), n(c.synced_followers)),
                (
                    "synced_non_voting_followers".to_string(),
                    n(c.synced_non_voting_followers),
                ),
                ("synced_observers".to_string(), n(c.observers)),
                ("pending_syncs".to_string(), n(c.pending_syncs)),
                ("diff_count".to_string(), n(c.diff_syncs)),
                ("snap_count".to_string(), n(c.snap_syncs)),
            ]);
        }
    }
    view.uptime_ms = rt.epoch.elapsed().as_millis() as u64;
    view.data_dir_size = dir_size(&rt.config.data_dir);
    view.log_dir_size = dir_size(&rt.config.data_log_dir);
    view.open_file_descriptor_count = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count() as i64)
        .unwrap_or(-1);
    view
}

/// Bytes in the files of `dir` and its subdirectories, as ZooKeeper's
/// `getDataDirSize`/`getLogDirSize` (0 when it cannot be read).
fn dir_size(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            Some(if meta.is_dir() {
                dir_size(&e.path())
            } else {
                meta.len()
            })
        })
        .sum()
}

/// What `envi` reports about the host and process.
fn env_facts(shards: usize) -> admin::EnvFacts {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    admin::EnvFacts {
        host_name: read("/proc/sys/kernel/hostname"),
        os_name: "Linux".into(),
        os_arch: std::env::consts::ARCH.into(),
        os_version: read("/proc/sys/kernel/osrelease"),
        user_name: std::env::var("USER").unwrap_or_default(),
        user_home: std::env::var("HOME").unwrap_or_default(),
        user_dir: std::env::current_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_default(),
        shards,
    }
}

/// Puts the commit shard's log numbers on the board: fsync latency (`mntr`,
/// `/metrics`) and, when `/metrics` is on, txns per fsync.
pub fn publish_log_stats(
    board: &Board,
    fsync_us: &hdrhistogram::Histogram<u64>,
    batch_txns: Option<&hdrhistogram::Histogram<u64>>,
) {
    *board.fsync.lock().unwrap_or_else(|e| e.into_inner()) = Some(fsync_summary(fsync_us));
    if let Some(h) = batch_txns {
        *board.batch_txns.lock().unwrap_or_else(|e| e.into_inner()) = Some(fsync_summary(h));
    }
}

/// The fsync latency distribution as `mntr` prints it.
pub fn fsync_summary(h: &hdrhistogram::Histogram<u64>) -> Summary {
    Summary {
        min: h.min() as i64,
        max: h.max() as i64,
        count: h.len() as i64,
        sum: (h.mean() * h.len() as f64) as i64,
        percentiles: Some([
            h.value_at_quantile(0.5) as i64,
            h.value_at_quantile(0.95) as i64,
            h.value_at_quantile(0.99) as i64,
            h.value_at_quantile(0.999) as i64,
        ]),
    }
}

#[cfg(test)]
mod detail_tests {
    use super::*;
    use crate::admin::Detail;

    fn answer(board: &Board, shard: usize) {
        let (gen, _) = board.detail_pending(shard).expect("asked");
        board.slots[shard]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .detail_gen = gen;
    }

    /// A `wchc` asks every shard for the watch listing; once all have answered, a later
    /// `cons` asks for the connections only (the bits do not accumulate), while two
    /// words asking at once both get their lists.
    #[test]
    fn detail_bits_reset_once_every_shard_answered() {
        let board = Board::new(2);
        let wchc = Detail {
            data_watches: true,
            ..Detail::default()
        };
        let cons = Detail {
            connections: true,
            ..Detail::default()
        };
        let g1 = board.ask_detail(wchc);
        assert_eq!(board.detail_pending(0), Some((g1, DETAIL_WATCHES)));
        // A second word before the answers: both lists.
        let g2 = board.ask_detail(cons);
        assert_eq!(
            board.detail_pending(1),
            Some((g2, DETAIL_WATCHES | DETAIL_CONNECTIONS))
        );
        answer(&board, 0);
        assert!(!board.detail_answered(g1));
        answer(&board, 1);
        assert!(board.detail_answered(g1) && board.detail_answered(g2));
        assert_eq!(board.detail_pending(0), None);
        let g3 = board.ask_detail(cons);
        assert_eq!(board.detail_pending(0), Some((g3, DETAIL_CONNECTIONS)));
    }
}
