//! The `/metrics` page: what the server knows, in the Prometheus text format, under the
//! names and types ZooKeeper 3.8's `PrometheusMetricsProvider` exports, so Grafana
//! boards and alert rules written for ZooKeeper read corral unchanged.
//!
//! Sans-IO: the server gathers [`Facts`] (plain owned numbers) and calls [`encode`];
//! serving is `server::metrics_http`'s job.
//!
//! What ZooKeeper exports, and so what is copied here:
//! - its gauges (`ZooKeeperServer.registerMetrics`, `LeaderZooKeeperServer`,
//!   `QuorumZooKeeperServer`: `znode_count`, `packets_received`, `learners`, ...) are
//!   Prometheus gauges whose help text is their name;
//! - its counters (`ServerMetrics`: `diff_count`, `snap_count`) are Prometheus counters
//!   named exactly so, without a `_total` suffix: ZooKeeper 3.8 uses the Java
//!   simpleclient 0.9, which predates that suffix;
//! - its summaries (`fsynctime`, `snapshottime`, `sync_processor_batch_size`) are
//!   Prometheus summaries with `_count`, `_sum` and, being `DetailLevel.BASIC`, the one
//!   quantile 0.5, in ZooKeeper's units (ms, txns). ZooKeeper's quantiles cover a
//!   sliding 10-minute window; corral's cover the server's life (as `mntr`'s do);
//! - the format is text 0.0.4 (`text/plain; version=0.0.4`), as simpleclient 0.9's
//!   servlet serves it.
//!
//! Facts corral does not have (proposal sizes, local sessions, TLS, JVM) are left out
//! rather than exported as made-up constants. corral's own facts are `corral_` metrics
//! with the usual Prometheus units.
//!
//! The encoding is the `prometheus` crate's (`TextEncoder` over its `MetricFamily`
//! model), not `prometheus-client`'s: that crate writes OpenMetrics, always appends
//! `_total` to a counter's name and has no summary type, so it can express neither
//! `diff_count` nor `fsynctime` as ZooKeeper exports them.

use prometheus::proto::{
    Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType, Quantile, Summary as PromSummary,
};
use prometheus::TextEncoder;

use super::{LatencyStats, Summary};

/// The `Content-Type` of [`encode`]'s text.
pub const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

/// What the metrics page shows. Counts are since the server started (or `srst`, for the
/// ones `srst` resets, as in ZooKeeper).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    /// Request latency in ms (`avg_latency`, `min_latency`, `max_latency`).
    pub latency: LatencyStats,
    pub packets_received: u64,
    pub packets_sent: u64,
    pub num_alive_connections: u64,
    pub outstanding_requests: u64,
    /// ms since the server started.
    pub uptime_ms: u64,
    /// The data tree's counts; `None` until a shard has published them.
    pub tree: Option<TreeFacts>,
    /// Data and child watches over every shard.
    pub watch_count: u64,
    /// Open and maximum file descriptors of the process, when known.
    pub open_file_descriptor_count: Option<u64>,
    pub max_file_descriptor_count: Option<u64>,
    /// The txn log's fsync latency, in µs.
    pub fsync_us: Option<Summary>,
    /// Txns made durable per group-commit fsync.
    pub batch_txns: Option<Summary>,
    /// How long each snapshot took, start to file closed, in ms.
    pub snapshot_ms: Option<Summary>,
    /// How long the last snapshot's longest step held its shard, in µs.
    pub snapshot_longest_step_us: Option<u64>,
    /// In an ensemble, while this server has a role.
    pub quorum: Option<QuorumFacts>,
    /// One entry per shard, in shard order.
    pub shards: Vec<ShardFacts>,
    /// corral's version, for `corral_build_info`.
    pub version: String,
}

/// The tree's counts, from one replica.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeFacts {
    pub znode_count: u64,
    pub ephemerals_count: u64,
    pub approximate_data_size: u64,
    pub global_sessions: u64,
}

/// An ensemble member with a role (leading, following or observing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuorumFacts {
    /// Voting members (`quorum_size`).
    pub quorum_size: u64,
    /// Set while leading.
    pub leader: Option<LeaderFacts>,
}

/// What a leader knows of its learners.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaderFacts {
    pub learners: u64,
    pub synced_followers: u64,
    pub synced_non_voting_followers: u64,
    pub synced_observers: u64,
    pub pending_syncs: u64,
    /// Learners synced by DIFF (or TRUNC), and by SNAP, since this server leads.
    pub diff_count: u64,
    pub snap_count: u64,
}

/// One shard's own numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardFacts {
    /// Client connections this shard accepted and serves.
    pub connections: u64,
    /// Committed txns this shard's replica had not applied yet when it last reported.
    pub apply_lag_txns: u64,
}

/// The metrics page for `f`.
pub fn encode(f: &Facts) -> String {
    let mut out = Families::default();
    let s = &mut out;

    // ZooKeeperServer.registerMetrics.
    s.gauge("avg_latency", f.latency_avg());
    s.gauge("min_latency", f.latency.min as f64);
    s.gauge("max_latency", f.latency.max as f64);
    s.gauge("packets_received", f.packets_received as f64);
    s.gauge("packets_sent", f.packets_sent as f64);
    s.gauge("num_alive_connections", f.num_alive_connections as f64);
    s.gauge("outstanding_requests", f.outstanding_requests as f64);
    s.gauge("uptime", f.uptime_ms as f64);
    if let Some(t) = &f.tree {
        s.gauge("znode_count", t.znode_count as f64);
        s.gauge("ephemerals_count", t.ephemerals_count as f64);
        s.gauge("approximate_data_size", t.approximate_data_size as f64);
        s.gauge("global_sessions", t.global_sessions as f64);
    }
    s.gauge("watch_count", f.watch_count as f64);
    // Every corral session is global, and no connection is ever dropped at random.
    s.gauge("local_sessions", 0.0);
    s.gauge("connection_drop_probability", 0.0);
    if let Some(n) = f.open_file_descriptor_count {
        s.gauge("open_file_descriptor_count", n as f64);
    }
    if let Some(n) = f.max_file_descriptor_count {
        s.gauge("max_file_descriptor_count", n as f64);
    }

    // ServerMetrics' summaries, in ZooKeeper's units.
    if let Some(x) = &f.fsync_us {
        s.summary("fsynctime", "fsynctime", x, 1e-3);
    }
    if let Some(x) = &f.snapshot_ms {
        s.summary("snapshottime", "snapshottime", x, 1.0);
    }
    if let Some(x) = &f.batch_txns {
        s.summary(
            "sync_processor_batch_size",
            "sync_processor_batch_size",
            x,
            1.0,
        );
    }

    // QuorumZooKeeperServer, LeaderZooKeeperServer, FollowerZooKeeperServer.
    if let Some(q) = &f.quorum {
        s.gauge("quorum_size", q.quorum_size as f64);
        match &q.leader {
            Some(l) => {
                s.gauge("learners", l.learners as f64);
                s.gauge("synced_followers", l.synced_followers as f64);
                s.gauge(
                    "synced_non_voting_followers",
                    l.synced_non_voting_followers as f64,
                );
                s.gauge("synced_observers", l.synced_observers as f64);
                s.gauge("pending_syncs", l.pending_syncs as f64);
                s.counter("diff_count", l.diff_count as f64);
                s.counter("snap_count", l.snap_count as f64);
            }
            // A follower registers synced_observers too (observers it serves as
            // observer master; corral has none).
            None => s.gauge("synced_observers", 0.0),
        }
    }

    // corral's own.
    s.labelled(
        "corral_build_info",
        "corral's version, and the ZooKeeper version it follows",
        MetricType::GAUGE,
        vec![one(
            &[
                ("version", f.version.as_str()),
                ("zookeeper_version", super::ZK_COMPAT_VERSION),
            ],
            1.0,
        )],
    );
    if !f.shards.is_empty() {
        let per_shard = |v: &dyn Fn(&ShardFacts) -> u64| {
            f.shards
                .iter()
                .enumerate()
                .map(|(i, sh)| one(&[("shard", &i.to_string())], v(sh) as f64))
                .collect::<Vec<_>>()
        };
        s.labelled(
            "corral_shard_connections",
            "Client connections served by each shard (executor)",
            MetricType::GAUGE,
            per_shard(&|sh| sh.connections),
        );
        s.labelled(
            "corral_shard_apply_lag",
            "Committed txns a shard's replica had not applied yet at its last report",
            MetricType::GAUGE,
            per_shard(&|sh| sh.apply_lag_txns),
        );
    }
    if let Some(us) = f.snapshot_longest_step_us {
        s.labelled(
            "corral_snapshot_longest_step_seconds",
            "How long the last snapshot's longest step held its shard",
            MetricType::GAUGE,
            vec![one(&[], us as f64 / 1e6)],
        );
    }

    TextEncoder::new()
        .encode_to_string(&out.0)
        // The encoder only refuses a family without a name or without samples, and
        // every family above has both.
        .unwrap_or_else(|e| format!("# corral: cannot encode metrics: {e}\n"))
}

impl Facts {
    /// ZooKeeper's `getAvgLatency`: total / count as a double, 0 before any request.
    fn latency_avg(&self) -> f64 {
        if self.latency.count == 0 {
            0.0
        } else {
            self.latency.total as f64 / self.latency.count as f64
        }
    }
}

/// The families built so far, in output order.
#[derive(Default)]
struct Families(Vec<MetricFamily>);

impl Families {
    /// A ZooKeeper gauge: unlabelled, help text = name.
    fn gauge(&mut self, name: &str, v: f64) {
        let mut g = Gauge::default();
        g.set_value(v);
        self.push(name, name, MetricType::GAUGE, vec![Metric::from_gauge(g)]);
    }

    /// A ZooKeeper counter, named without `_total` as simpleclient 0.9 writes it.
    fn counter(&mut self, name: &str, v: f64) {
        let mut c = Counter::default();
        c.set_value(v);
        let mut m = Metric::default();
        m.set_counter(c);
        self.push(name, name, MetricType::COUNTER, vec![m]);
    }

    /// A summary with quantile 0.5 (ZooKeeper's `DetailLevel.BASIC`); `scale`
    /// converts the recorded unit into the exported one.
    fn summary(&mut self, name: &str, help: &str, x: &Summary, scale: f64) {
        let mut s = PromSummary::default();
        s.set_sample_count(u64::try_from(x.count).unwrap_or(0));
        s.set_sample_sum(x.sum as f64 * scale);
        if let Some([p50, ..]) = x.percentiles {
            let mut q = Quantile::default();
            q.set_quantile(0.5);
            q.set_value(p50 as f64 * scale);
            s.set_quantile(vec![q]);
        }
        let mut m = Metric::default();
        m.set_summary(s);
        self.push(name, help, MetricType::SUMMARY, vec![m]);
    }

    /// A family of gauges or counters with labels. Empty families are left out (the
    /// text format has no way to declare a family without samples).
    fn labelled(&mut self, name: &str, help: &str, t: MetricType, metrics: Vec<Metric>) {
        if !metrics.is_empty() {
            self.push(name, help, t, metrics);
        }
    }

    fn push(&mut self, name: &str, help: &str, t: MetricType, metrics: Vec<Metric>) {
        let mut f = MetricFamily::default();
        f.set_name(name.to_string());
        f.set_help(help.to_string());
        f.set_field_type(t);
        f.set_metric(metrics);
        self.0.push(f);
    }
}

/// One gauge sample with `labels`.
fn one(labels: &[(&str, &str)], v: f64) -> Metric {
    let mut g = Gauge::default();
    g.set_value(v);
    let mut m = Metric::from_gauge(g);
    m.set_label(
        labels
            .iter()
            .map(|(k, val)| {
                let mut l = LabelPair::default();
                l.set_name(k.to_string());
                l.set_value(val.to_string());
                l
            })
            .collect(),
    );
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sample lines (`name{labels} value`) of `text`, comments skipped.
    fn samples(text: &str) -> Vec<(String, f64)> {
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| {
                let (k, v) = l.rsplit_once(' ').expect("name value");
                (k.to_string(), v.parse().expect("a number"))
            })
            .collect()
    }

    fn value(text: &str, name: &str) -> Option<f64> {
        samples(text)
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    fn type_of<'a>(text: &'a str, name: &str) -> Option<&'a str> {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("# TYPE {name} ")))
    }

    fn standalone() -> Facts {
        Facts {
            latency: LatencyStats {
                min: 1,
                max: 9,
                total: 12,
                count: 4,
            },
            packets_received: 10,
            packets_sent: 11,
            num_alive_connections: 2,
            outstanding_requests: 1,
            uptime_ms: 5000,
            tree: Some(TreeFacts {
                znode_count: 7,
                ephemerals_count: 1,
                approximate_data_size: 300,
                global_sessions: 2,
            }),
            watch_count: 3,
            open_file_descriptor_count: Some(40),
            max_file_descriptor_count: Some(1024),
            fsync_us: Some(Summary {
                min: 500,
                max: 4000,
                count: 3,
                sum: 6000,
                percentiles: Some([1500, 4000, 4000, 4000]),
            }),
            batch_txns: Some(Summary {
                min: 1,
                max: 8,
                count: 3,
                sum: 10,
                percentiles: Some([1, 8, 8, 8]),
            }),
            snapshot_ms: None,
            snapshot_longest_step_us: None,
            quorum: None,
            shards: vec![
                ShardFacts {
                    connections: 2,
                    apply_lag_txns: 0,
                },
                ShardFacts {
                    connections: 0,
                    apply_lag_txns: 5,
                },
            ],
            version: "0.1.0".into(),
        }
    }

    #[test]
    fn zookeeper_gauges_keep_their_names_and_help() {
        let text = encode(&standalone());
        for (name, v) in [
            ("avg_latency", 3.0),
            ("min_latency", 1.0),
            ("max_latency", 9.0),
            ("packets_received", 10.0),
            ("packets_sent", 11.0),
            ("num_alive_connections", 2.0),
            ("outstanding_requests", 1.0),
            ("uptime", 5000.0),
            ("znode_count", 7.0),
            ("ephemerals_count", 1.0),
            ("approximate_data_size", 300.0),
            ("global_sessions", 2.0),
            ("watch_count", 3.0),
            ("local_sessions", 0.0),
            ("open_file_descriptor_count", 40.0),
            ("max_file_descriptor_count", 1024.0),
        ] {
            assert_eq!(type_of(&text, name), Some("gauge"), "{name}\n{text}");
            assert!(
                text.contains(&format!("# HELP {name} {name}\n")),
                "{name}\n{text}"
            );
            assert_eq!(value(&text, name), Some(v), "{name}\n{text}");
        }
        assert_eq!(type_of(&text, "quorum_size"), None, "standalone: no quorum");
        assert_eq!(type_of(&text, "snapshottime"), None, "no snapshot yet");
    }

    #[test]
    fn summaries_as_zookeeper_exports_them() {
        let text = encode(&standalone());
        assert_eq!(type_of(&text, "fsynctime"), Some("summary"));
        // µs recorded, ms exported.
        assert_eq!(value(&text, "fsynctime{quantile=\"0.5\"}"), Some(1.5));
        assert_eq!(value(&text, "fsynctime_sum"), Some(6.0));
        assert_eq!(value(&text, "fsynctime_count"), Some(3.0));
        assert_eq!(type_of(&text, "sync_processor_batch_size"), Some("summary"));
        assert_eq!(
            value(&text, "sync_processor_batch_size{quantile=\"0.5\"}"),
            Some(1.0)
        );
        assert_eq!(value(&text, "sync_processor_batch_size_sum"), Some(10.0));
        // BASIC summaries have only the median.
        assert!(!text.contains("quantile=\"0.9"), "{text}");

        let mut f = standalone();
        f.snapshot_ms = Some(Summary {
            min: 20,
            max: 20,
            count: 1,
            sum: 20,
            percentiles: Some([20; 4]),
        });
        f.snapshot_longest_step_us = Some(1500);
        let text = encode(&f);
        assert_eq!(type_of(&text, "snapshottime"), Some("summary"));
        assert_eq!(value(&text, "snapshottime_count"), Some(1.0));
        assert_eq!(
            value(&text, "corral_snapshot_longest_step_seconds"),
            Some(0.0015)
        );
    }

    #[test]
    fn leader_metrics_and_unsuffixed_counters() {
        let mut f = standalone();
        f.quorum = Some(QuorumFacts {
            quorum_size: 3,
            leader: Some(LeaderFacts {
                learners: 3,
                synced_followers: 2,
                synced_non_voting_followers: 0,
                synced_observers: 1,
                pending_syncs: 0,
                diff_count: 2,
                snap_count: 1,
            }),
        });
        let text = encode(&f);
        assert_eq!(value(&text, "quorum_size"), Some(3.0));
        assert_eq!(value(&text, "learners"), Some(3.0));
        assert_eq!(value(&text, "synced_followers"), Some(2.0));
        assert_eq!(value(&text, "synced_observers"), Some(1.0));
        assert_eq!(type_of(&text, "diff_count"), Some("counter"));
        // simpleclient 0.9 names: no `_total`.
        assert_eq!(value(&text, "diff_count"), Some(2.0));
        assert_eq!(value(&text, "snap_count"), Some(1.0));
        assert!(!text.contains("_total"), "{text}");

        f.quorum.as_mut().unwrap().leader = None;
        let text = encode(&f);
        assert_eq!(value(&text, "quorum_size"), Some(3.0));
        assert_eq!(value(&text, "synced_observers"), Some(0.0));
        assert_eq!(
            type_of(&text, "learners"),
            None,
            "only a leader has learners"
        );
    }

    #[test]
    fn corral_metrics_are_labelled_by_shard() {
        let text = encode(&standalone());
        assert_eq!(type_of(&text, "corral_shard_apply_lag"), Some("gauge"));
        assert_eq!(
            value(&text, "corral_shard_apply_lag{shard=\"1\"}"),
            Some(5.0)
        );
        assert_eq!(
            value(&text, "corral_shard_connections{shard=\"0\"}"),
            Some(2.0)
        );
        assert_eq!(
            value(
                &text,
                "corral_build_info{version=\"0.1.0\",zookeeper_version=\"3.8.4\"}"
            ),
            Some(1.0)
        );
    }

    #[test]
    fn unknown_facts_are_left_out() {
        let text = encode(&Facts::default());
        for name in [
            "znode_count",
            "open_file_descriptor_count",
            "fsynctime",
            "sync_processor_batch_size",
            "corral_shard_apply_lag",
        ] {
            assert_eq!(type_of(&text, name), None, "{name}\n{text}");
        }
        // No request yet: ZooKeeper's AvgMinMaxCounter reports zeros.
        assert_eq!(value(&text, "avg_latency"), Some(0.0));
        assert_eq!(value(&text, "min_latency"), Some(0.0));
        // Every family has a TYPE line before its samples, and every sample parses.
        assert!(text.starts_with("# HELP "), "{text}");
        assert!(!samples(&text).is_empty());
    }
}
