//! Gathering what the four-letter words print. Each shard owns its connections and
//! watches, so each publishes a `ShardReport` into a shared board a few times a second
//! (and the shard answering the word refreshes its own first). A word thus sees other
//! shards' state at most one refresh period old, and no request path ever takes the
//! board's lock.
//!
//! Watches are the one part that can be huge (a million is an ordinary load), so no
//! refresh walks them all: `wchs` and `zk_watch_count` come from the WatchManager's
//! counters (O(1)), and the `wchc`/`wchp` listing is built at most
//! [`WATCH_LISTING_STEP`] paths per refresh and published whole once a pass over the
//! table is complete. A small table (under one step) is thus listed afresh at every
//! refresh, as before; a large one is listed as it was over the last few refreshes,
//! never by holding a shard for the whole table (ZooKeeper documents `wchc` and
//! `wchp` as expensive: it copies its whole table under the manager's lock).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use super::shard::Shard;
use super::Runtime;
use crate::admin::{
    self, AdminView, ConnectionInfo, Detail, LatencyStats, SessionWatches, Summary,
};
use crate::watch::{WatcherId, WatchesSummary};

/// Paths a shard adds to its `wchc`/`wchp` listing per refresh at most (about a
/// millisecond of copying strings), so a listing of 1M watches takes ~60 refreshes
/// instead of one long stall of the shard.
pub const WATCH_LISTING_STEP: usize = 16_384;

/// One shard's contribution.
#[derive(Debug, Clone, Default)]
pub struct ShardReport {
    pub latency: LatencyStats,
    pub packets_received: u64,
    pub packets_sent: u64,
    pub outstanding: u64,
    pub connections: Vec<ConnectionInfo>,
    /// The last complete listing of the shard's data watches (see the module comment).
    pub data_watches: Vec<SessionWatches>,
    pub watch_count: u64,
    /// `wchs`' numbers for this shard, from counters.
    pub watches_summary: WatchesSummary,
}

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
}

/// A shard's numbers that only `/metrics` shows.
#[derive(Debug, Clone, Default)]
pub struct ShardMetrics {
    /// Committed txns (up to the last zxid shard 0 published) not applied here yet.
    pub apply_lag_txns: u64,
    /// The tree's counts; published by shard 0 only (every replica holds the same).
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
        })
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

/// Publishes what only `/metrics` shows of this shard: how far its replica trails the
/// last zxid shard 0 published and, on shard 0, the tree's counts. Only called when
/// the metrics provider is on.
pub fn publish_metrics(shard: &Shard, board: &Board, published: i64) {
    let applied = shard.tree.last_processed_zxid();
    // Zxids count txns within an epoch; across an epoch change the lag is at least
    // the new epoch's txns.
    let lag = match (published >> 32, applied >> 32) {
        _ if published <= applied => 0,
        (p, a) if p == a => (published - applied) as u64,
        _ => (published & 0xffff_ffff) as u64,
    };
    let tree = (shard.id == 0).then(|| {
        let t = &shard.tree;
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

/// What a shard remembers between two refreshes of its report: the resets it already
/// applied, and its `wchc` listing in progress.
#[derive(Default)]
pub struct SeenResets {
    srst: u64,
    crst: u64,
    listing: WatchListing,
}

/// A pass over the shard's watch table, [`WATCH_LISTING_STEP`] paths per refresh.
#[derive(Default)]
struct WatchListing {
    /// The next connection slot to list.
    cursor: usize,
    /// What this pass listed so far, by connection.
    partial: Vec<(WatcherId, SessionWatches)>,
}

impl WatchListing {
    /// Lists one more step; the whole listing, sorted by connection, once the pass
    /// is complete (the next call starts a new pass).
    fn step(&mut self, shard: &Shard) -> Option<Vec<SessionWatches>> {
        let mut got = Vec::new();
        let done = shard
            .watches
            .listing_step(&mut self.cursor, WATCH_LISTING_STEP, &mut got);
        let session_of = |w: u64| shard.conns.get(&w).map(|c| c.session_id).unwrap_or(0);
        self.partial.extend(got.into_iter().map(|(w, paths)| {
            (
                w,
                SessionWatches {
                    session_id: session_of(w),
                    paths,
                },
            )
        }));
        if !done {
            return None;
        }
        self.cursor = 0;
        let mut all = std::mem::take(&mut self.partial);
        all.sort_unstable_by_key(|(w, _)| *w);
        Some(all.into_iter().map(|(_, sw)| sw).collect())
    }
}

/// Applies pending resets and publishes this shard's report.
pub fn publish(shard: &mut Shard, board: &Board, seen: &mut SeenResets) {
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
    let listing = seen.listing.step(shard);
    let mut report = report(shard);
    if let Some(slot) = board.slots.get(shard.id) {
        let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
        // Until this pass is complete, the last complete listing stands.
        report.data_watches = listing.unwrap_or_else(|| std::mem::take(&mut slot.data_watches));
        *slot = report;
    }
}

/// The shard's report, but for its watch listing (left empty: see `publish`).
fn report(shard: &Shard) -> ShardReport {
    ShardReport {
        latency: shard.stats.latency.clone(),
        packets_received: shard.stats.packets_received,
        packets_sent: shard.stats.packets_sent,
        outstanding: shard.outstanding as u64,
        connections: shard
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
            .collect(),
        data_watches: Vec::new(),
        watch_count: shard.watches.watch_count() as u64,
        watches_summary: shard.watches.summary(),
    }
}

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The reply to four-letter word `cmd`, answered on `rt`'s shard.
pub fn answer(rt: &Runtime, cmd: &str) -> String {
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
    let view = gather(rt, Detail::for_command(cmd));
    admin::four_letter(cmd, &view)
}

/// Everything the four-letter words (and the AdminServer's commands) print, gathered
/// on `rt`'s shard: its own report refreshed, the other shards' latest, the tree's
/// counts, and the lists `detail` asks for.
pub fn gather(rt: &Runtime, detail: Detail) -> AdminView {
    {
        let mut shard = rt.shard.borrow_mut();
        publish(&mut shard, &rt.board, &mut rt.seen_resets.borrow_mut());
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
        view.stats.num_alive_connections += r.connections.len() as u64;
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
    let tree = &shard.tree;
    view.stats.last_processed_zxid = tree.last_processed_zxid();
    view.stats.node_count = tree.node_count() as u64;
    view.approximate_data_size = tree.approximate_data_size();
    view.ephemerals_count = tree.ephemeral_count() as u64;
    let sessions = tree.sessions();
    view.session_count = sessions.len() as u64;
    if detail.sessions || detail.ephemerals {
        let now = wall_ms();
        for (id, timeout) in &sessions {
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
