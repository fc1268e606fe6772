//! Serving `/metrics` (`metricsProvider.className` = ZooKeeper's Prometheus provider) on
//! `metricsProvider.httpHost:httpPort`.
//!
//! HTTP is `admin_http::serve_http` (hyper 1.x on glommio), run on a small executor of
//! its own ("corral-metrics", not pinned), not on a shard: a scrape never queues behind
//! client requests, nor a shard behind a scrape. It asks no shard anything either. It
//! reads the shared [`Board`], where every shard already publishes its numbers a few
//! times a second for the four-letter words (plus, with this provider on, its apply lag
//! and, on shard 0, the tree's counts: `admin_view::publish_metrics`). So a scrape sees
//! numbers at most one refresh (200 ms) old, costs the shards nothing, and the idle
//! executor sleeps in the kernel. The page itself is made by the sans-IO
//! `admin::prometheus`.
//!
//! The port is bound when the server starts, before recovery, without SO_REUSEPORT (as
//! `std` binds): a port another process holds stops corral with an "address in use"
//! error naming it, as ZooKeeper refuses to start when its provider cannot bind.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};

use super::admin_http::{self, Body};
use super::admin_view::{self, Board};
use crate::admin::prometheus::{self, Facts, LeaderFacts, QuorumFacts, ShardFacts};
use crate::admin::{LatencyStats, CORRAL_VERSION};
use crate::config::Config;

/// A connection that neither sends nor takes a byte for this long is closed (the
/// Java provider's Jetty default).
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Binds `addr` for `/metrics`. The message of an error names the address, and says
/// "address in use" when another process holds the port.
pub fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, String> {
    std::net::TcpListener::bind(addr).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            format!(
                "address in use: port {} is held by another process (a ZooKeeper, or another corral?)",
                addr.port()
            )
        } else {
            e.to_string()
        }
    })
}

/// What the endpoint reads: everything is shared with the shards.
pub struct Sources {
    pub board: Arc<Board>,
    pub config: Arc<Config>,
    /// When the server started (`uptime`).
    pub epoch: Instant,
}

/// Serves `/metrics` on `listener` from an executor of its own, for the life of the
/// process.
pub fn spawn(listener: std::net::TcpListener, sources: Sources) -> Result<(), String> {
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .name("corral-metrics")
        .io_memory(1 << 20)
        .spawn(move || async move {
            let sources = Rc::new(sources);
            admin_http::serve_http(listener, IDLE_TIMEOUT, move |req, _peer| {
                let page = respond(&req, &sources);
                async move { page }
            })
            .await
        })
        .map_err(|e| e.to_string())?;
    tracing::info!(%addr, "serving Prometheus metrics on /metrics");
    Ok(())
}

/// `/metrics` for GET (and HEAD); 404 for any other path, 405 for other methods (the
/// Java provider refuses TRACE; only reading makes sense here).
fn respond<B>(req: &Request<B>, sources: &Sources) -> Response<Body> {
    let reply = |status: StatusCode, body: String| {
        let mut r = Response::new(admin_http::full(body));
        *r.status_mut() = status;
        r
    };
    if req.uri().path() != "/metrics" {
        return reply(
            StatusCode::NOT_FOUND,
            "only /metrics is served here\n".into(),
        );
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = reply(StatusCode::METHOD_NOT_ALLOWED, String::new());
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let mut r = reply(StatusCode::OK, prometheus::encode(&facts(sources)));
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(prometheus::CONTENT_TYPE),
    );
    r
}

/// The numbers the shards last published, merged as the four-letter words merge them.
pub fn facts(src: &Sources) -> Facts {
    let board = &src.board;
    let mut f = Facts {
        version: CORRAL_VERSION.to_string(),
        uptime_ms: src.epoch.elapsed().as_millis() as u64,
        ..Facts::default()
    };
    for (i, slot) in board.slots.iter().enumerate() {
        let r = slot.lock().unwrap_or_else(|e| e.into_inner());
        merge_latency(&mut f.latency, &r.latency);
        f.packets_received += r.packets_received;
        f.packets_sent += r.packets_sent;
        f.outstanding_requests += r.outstanding;
        f.num_alive_connections += r.connection_count;
        f.watch_count += r.watch_count;
        let m = board
            .metric_slots
            .get(i)
            .map(|m| m.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .unwrap_or_default();
        if let Some(t) = m.tree {
            f.tree = Some(t);
        }
        f.shards.push(ShardFacts {
            connections: r.connection_count,
            apply_lag_txns: m.apply_lag_txns,
        });
    }
    f.fsync_us = board
        .fsync
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    f.batch_txns = board
        .batch_txns
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    {
        let s = board.snapshots.lock().unwrap_or_else(|e| e.into_inner());
        f.snapshot_ms = s.took_ms.as_ref().map(admin_view::fsync_summary);
        f.snapshot_longest_step_us = s.last_longest_step_us;
    }
    let quorum = board
        .quorum
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    // ZooKeeper registers the role's gauges while the role's server runs.
    if let Some(q) = quorum.filter(|q| q.mode != "looking") {
        let c = q.counts;
        f.quorum = Some(QuorumFacts {
            quorum_size: src
                .config
                .quorum
                .as_ref()
                .map(|v| v.voter_count() as u64)
                .unwrap_or(0),
            leader: (q.mode == "leader").then(|| LeaderFacts {
                learners: (c.followers + c.observers + c.syncing) as u64,
                synced_followers: c.synced_followers as u64,
                synced_non_voting_followers: c.synced_non_voting_followers as u64,
                synced_observers: c.observers as u64,
                pending_syncs: c.pending_syncs as u64,
                diff_count: c.diff_syncs as u64,
                snap_count: c.snap_syncs as u64,
            }),
        });
    }
    f.open_file_descriptor_count = std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|d| d.count() as u64);
    f.max_file_descriptor_count = max_fds();
    f
}

/// Adds one shard's latency to the server's (min of mins, max of maxes, sums).
fn merge_latency(into: &mut LatencyStats, l: &LatencyStats) {
    if l.count == 0 {
        return;
    }
    into.min = if into.count == 0 {
        l.min
    } else {
        into.min.min(l.min)
    };
    into.max = into.max.max(l.max);
    into.total += l.total;
    into.count += l.count;
}

/// The soft limit on open descriptors (what the JVM's `getMaxFileDescriptorCount`
/// reports).
fn max_fds() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    (rc == 0 && lim.rlim_cur != libc::RLIM_INFINITY).then_some(lim.rlim_cur)
}
