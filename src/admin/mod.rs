//! Four-letter words: the text of ZooKeeper's `ruok`, `srvr`, `stat`, `conf`, `cons`,
//! `envi`, `mntr`, `wchs`, `wchc`, `wchp`, `dump`, `isro`, `dirs`, `crst`, `srst` replies,
//! byte for byte as ZooKeeper 3.8 prints them (its `*Command` classes, `ServerStats`,
//! `ZooKeeperServer.dumpConf`, `ServerCnxn.dumpConnectionInfo`, the watch managers'
//! dumps and `ExpiryQueue.dump`), so monitoring tools and scripts written for ZooKeeper
//! parse corral's output unchanged.
//!
//! Sans-IO: the server gathers an [`AdminView`] (plain owned data) and calls
//! [`four_letter`]; this module only formats. Side effects of `crst`/`srst` (resetting
//! statistics) are the server's job; here they only produce the acknowledgement.
//! Whitelisting is decided by `Config::four_letter_allowed`; [`not_in_whitelist`] is the
//! reply when it says no.

pub mod commands;
pub mod java;
pub mod prometheus;

use std::net::SocketAddr;

/// The ZooKeeper release whose wire protocol and behaviour corral follows. Reported as
/// the leading part of the version string: kazoo's `server_version()` takes the leading
/// digits and dots of `zookeeper.version` from `envi`, and zkServer.sh/zkCli only look
/// at `srvr`'s `Mode:` line, so `3.8.4-corral-…` reads as 3.8.4 everywhere.
pub const ZK_COMPAT_VERSION: &str = "3.8.4";

/// corral's own version.
pub const CORRAL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// ZooKeeper's reply from a server that is not serving yet (or any more).
pub const ZK_NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests";

/// The words this module formats (and `gtmk`, `stmk`, `hash`, which it does not).
pub use crate::config::KNOWN_FOUR_LETTER_WORDS;

/// `Version.getFullVersion()`'s shape, `<version>-<revision>, built on <date>`:
/// `3.8.4-corral-0.1.0, built on 2025-01-01 12:00 UTC`.
pub fn full_version(build_date: &str) -> String {
    format!("{ZK_COMPAT_VERSION}-corral-{CORRAL_VERSION}, built on {build_date}")
}

/// Whether `cmd` is one of ZooKeeper's four-letter words. The server must only treat
/// the first four bytes of a connection as a command when this holds (otherwise they
/// are the length prefix of a ConnectRequest).
pub fn is_four_letter_word(cmd: &str) -> bool {
    KNOWN_FOUR_LETTER_WORDS.contains(&cmd)
}

/// The reply to a known word that the whitelist does not allow.
pub fn not_in_whitelist(cmd: &str) -> String {
    format!("{cmd} is not executed because it is not in the whitelist.\n")
}

/// Request latency over all requests, in ms (ZooKeeper's `AvgMinMaxCounter`):
/// min/avg/max as `srvr` and `mntr` print them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LatencyStats {
    /// Smallest latency seen (0 when `count` is 0).
    pub min: i64,
    /// Largest latency seen.
    pub max: i64,
    /// Sum of every latency, for the average.
    pub total: i64,
    /// Number of requests measured.
    pub count: i64,
}

impl LatencyStats {
    /// Adds one measurement.
    pub fn record(&mut self, v: i64) {
        if self.count == 0 || v < self.min {
            self.min = v;
        }
        self.max = self.max.max(v);
        self.total += v;
        self.count += 1;
    }

    /// The average rounded half-up to 4 places, as ZooKeeper prints it.
    pub fn avg(&self) -> f64 {
        java::avg4(self.total, self.count)
    }
}

/// Server-wide statistics (`ServerStats` and the tree's counters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerStats {
    /// Packets read from clients since start or `srst` (four-letter words included).
    pub packets_received: u64,
    /// Packets written to clients since start or `srst`.
    pub packets_sent: u64,
    /// Request latency since start or `srst`.
    pub latency: LatencyStats,
    /// Requests read but not answered yet.
    pub outstanding_requests: u64,
    /// The last zxid applied to the tree.
    pub last_processed_zxid: i64,
    /// Open client connections (with or without a session).
    pub num_alive_connections: u64,
    /// Znodes in the tree, the root and /zookeeper subtree included.
    pub node_count: u64,
    /// `"standalone"` for corral (later `"leader"`/`"follower"`/`"observer"`).
    pub server_state: String,
    /// Read-only mode: `srvr`/`stat` say so and `isro` answers "ro".
    pub read_only: bool,
}

impl Default for ServerStats {
    fn default() -> Self {
        ServerStats {
            packets_received: 0,
            packets_sent: 0,
            latency: LatencyStats::default(),
            outstanding_requests: 0,
            last_processed_zxid: 0,
            num_alive_connections: 0,
            node_count: 0,
            server_state: "standalone".into(),
            read_only: false,
        }
    }
}

/// One client connection as `cons`, `stat` and `dump` show it (`ServerCnxn`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// The client's address.
    pub remote: SocketAddr,
    /// Selector interest: 1 while the connection is read from, 0 while reads are
    /// paused (throttled). Printed in hex as ZooKeeper's NIO interest ops.
    pub interest_ops: u32,
    /// Requests from this connection not yet answered (`queued=`).
    pub outstanding_requests: u64,
    /// Packets read from this connection since it opened or `crst` (`recved=`).
    pub packets_received: u64,
    /// Packets written to it (`sent=`).
    pub packets_sent: u64,
    /// The session, or 0 before the handshake (then only the brief form is printed).
    pub session_id: i64,
    /// Short name of the last operation (`lop=`): see [`last_op_name`]; "NA" initially
    /// and after `crst`.
    pub last_operation: String,
    /// Wall-clock ms since the epoch when the session was established (`est=`).
    pub established_ms: i64,
    /// Negotiated session timeout in ms (`to=`).
    pub session_timeout: i32,
    /// Last cxid answered (`lcxid=`); negative (-1 initially and after `crst`) omits it.
    pub last_cxid: i64,
    /// Last zxid answered (`lzxid=`); -1 after `crst`.
    pub last_zxid: i64,
    /// Time of the last response (`lresp=`), in ms of ZooKeeper's monotonic clock
    /// (`Time.currentElapsedTime`); 0 after `crst`.
    pub last_response_time: i64,
    /// Latency of the last request, ms (`llat=`).
    pub last_latency: i64,
    /// Smallest, total, count and largest latency of this connection (`minlat`,
    /// `avglat` = total / count in whole ms, `maxlat`).
    pub latency: LatencyStats,
    /// When the connection is closed if idle, wall-clock ms since the epoch, for
    /// `dump`'s "Connections dump" (`None`: not tracked, not listed).
    pub expires_at_ms: Option<i64>,
}

/// The watches of one connection's session in the data table (getData/exists and
/// persistent watches), the data `wchs`, `wchc` and `wchp` print: one entry per
/// connection of `watch::WatchManager::watches_by_watcher`, merged over shards. An
/// entry with no paths left still counts as a connection in `wchs`, as in ZooKeeper.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionWatches {
    pub session_id: i64,
    /// Watched paths, each once.
    pub paths: Vec<String>,
}

/// A live session and its expiry, for `dump`'s "SessionTracker dump".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionExpiry {
    pub session_id: i64,
    /// The expiry bucket: wall-clock ms since the epoch, rounded up to the tick as the
    /// session tracker does. Sessions with equal values are printed together.
    pub expires_at_ms: i64,
}

/// The ephemeral znodes a session owns, for `dump`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionEphemerals {
    pub session_id: i64,
    pub paths: Vec<String>,
}

/// Smallest/largest/last size of a response buffer (`BufferStats`; -1 when none yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BufferStats {
    pub last: i64,
    pub min: i64,
    pub max: i64,
}

impl Default for BufferStats {
    fn default() -> Self {
        BufferStats {
            last: -1,
            min: -1,
            max: -1,
        }
    }
}

/// A value printed by `mntr`: integers plain, floats as Java's `Double.toString`.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricValue {
    Int(i64),
    Float(f64),
    Text(String),
}

impl MetricValue {
    fn render(&self) -> String {
        match self {
            MetricValue::Int(i) => i.to_string(),
            MetricValue::Float(f) => java::double(*f),
            MetricValue::Text(t) => t.clone(),
        }
    }
}

/// A distribution, printed by `mntr` in ZooKeeper's summary style:
/// `avg_X`, `min_X`, `max_X`, `cnt_X`, `sum_X`, and `p50_X` .. `p999_X` when given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub min: i64,
    pub max: i64,
    pub count: i64,
    pub sum: i64,
    /// p50, p95, p99, p999, if the distribution keeps quantiles.
    pub percentiles: Option<[i64; 4]>,
}

/// `mntr` lines for `summary` under `name` (e.g. `fsynctime`), as ZooKeeper's
/// metrics provider prints a summary; for [`AdminView::extra_metrics`].
pub fn summary_metrics(name: &str, s: &Summary) -> Vec<(String, MetricValue)> {
    let mut v = vec![
        (
            format!("avg_{name}"),
            MetricValue::Float(java::avg4(s.sum, s.count)),
        ),
        (format!("min_{name}"), MetricValue::Int(s.min)),
        (format!("max_{name}"), MetricValue::Int(s.max)),
        (format!("cnt_{name}"), MetricValue::Int(s.count)),
        (format!("sum_{name}"), MetricValue::Int(s.sum)),
    ];
    if let Some(p) = s.percentiles {
        for (label, val) in ["p50", "p95", "p99", "p999"].iter().zip(p) {
            v.push((format!("{label}_{name}"), MetricValue::Int(val)));
        }
    }
    v
}

/// What the server knows, gathered for one four-letter word. Every field is plain
/// owned data. The big lists are only read by the words that print them (see
/// [`Detail::for_command`]); the server may leave them empty for the others.
#[derive(Debug, Clone, PartialEq)]
pub struct AdminView {
    /// `false` while starting or shutting down: most words then answer
    /// [`ZK_NOT_SERVING`], as ZooKeeper does.
    pub running: bool,
    /// The full version string, normally [`full_version`].
    pub version: String,
    /// Server-wide counters (`srvr`, `stat`, `mntr`).
    pub stats: ServerStats,
    /// Every client connection (`stat`, `cons`, `dump`). Detail.
    pub connections: Vec<ConnectionInfo>,
    /// Data watches per session (`wchs`, `wchc`, `wchp`). Detail.
    pub data_watches: Vec<SessionWatches>,
    /// Data plus child watches over every session (`mntr`'s `zk_watch_count`).
    pub watch_count: u64,
    /// `wchs`' numbers from the watch tables' counters, summed over shards (a path
    /// watched from two shards counts twice); None: `wchs` counts `data_watches`.
    pub watches_summary: Option<crate::watch::WatchesSummary>,
    /// Live sessions and their expiry buckets (`dump`). Detail.
    pub sessions: Vec<SessionExpiry>,
    /// Number of live sessions (`mntr`'s `zk_global_sessions`).
    pub session_count: u64,
    /// Ephemeral znodes per owning session, sessions without any omitted (`dump`).
    /// Detail.
    pub ephemerals: Vec<SessionEphemerals>,
    /// Ephemeral znodes in the tree (`mntr`'s `zk_ephemerals_count`).
    pub ephemerals_count: u64,
    /// Sum of path lengths and data sizes over the tree (`zk_approximate_data_size`).
    pub approximate_data_size: u64,
    /// Bytes in the snapshot directory (`dirs`, `conf`).
    pub data_dir_size: u64,
    /// Bytes in the transaction log directory (`dirs`, `conf`).
    pub log_dir_size: u64,
    /// `conf` lines, normally `Config::conf_lines_for_port(bound_port)`; `dataDirSize`
    /// and `dataLogSize` are inserted after `dataDir=` and `dataLogDir=`.
    pub conf_lines: Vec<String>,
    /// `envi` entries, normally [`env_entries`].
    pub env: Vec<(String, String)>,
    /// ms since the server started (`zk_uptime`).
    pub uptime_ms: u64,
    /// Open and maximum file descriptors of the process (-1 when unknown).
    pub open_file_descriptor_count: i64,
    pub max_file_descriptor_count: i64,
    /// Sizes of responses sent (`zk_last/min/max_client_response_size`).
    pub client_response_size: BufferStats,
    /// Failed authentications (`zk_auth_failed_count`).
    pub auth_failed_count: u64,
    /// corral's own `mntr` lines, printed after ZooKeeper's as `zk_<key>\t<value>`
    /// (e.g. fsync latency percentiles from [`summary_metrics`]).
    pub extra_metrics: Vec<(String, MetricValue)>,
}

impl Default for AdminView {
    fn default() -> Self {
        AdminView {
            running: true,
            version: full_version("unknown"),
            stats: ServerStats::default(),
            connections: Vec::new(),
            data_watches: Vec::new(),
            watch_count: 0,
            watches_summary: None,
            sessions: Vec::new(),
            session_count: 0,
            ephemerals: Vec::new(),
            ephemerals_count: 0,
            approximate_data_size: 0,
            data_dir_size: 0,
            log_dir_size: 0,
            conf_lines: Vec::new(),
            env: Vec::new(),
            uptime_ms: 0,
            open_file_descriptor_count: -1,
            max_file_descriptor_count: -1,
            client_response_size: BufferStats::default(),
            auth_failed_count: 0,
            extra_metrics: Vec::new(),
        }
    }
}

/// Which costly parts of an [`AdminView`] a word reads, so the server gathers only those.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Detail {
    pub connections: bool,
    pub data_watches: bool,
    pub sessions: bool,
    pub ephemerals: bool,
}

impl Detail {
    pub fn for_command(cmd: &str) -> Detail {
        match cmd {
            "stat" | "cons" => Detail {
                connections: true,
                ..Detail::default()
            },
            "wchc" | "wchp" => Detail {
                data_watches: true,
                ..Detail::default()
            },
            "dump" => Detail {
                connections: true,
                sessions: true,
                ephemerals: true,
                ..Detail::default()
            },
            _ => Detail::default(),
        }
    }
}

/// Facts about the process for `envi`, gathered by the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvFacts {
    pub host_name: String,
    pub os_name: String,
    pub os_arch: String,
    pub os_version: String,
    pub user_name: String,
    pub user_home: String,
    pub user_dir: String,
    /// Executors running.
    pub shards: usize,
}

/// `envi` entries in ZooKeeper's `Environment.list` order. The `java.*` and JVM memory
/// entries have no meaning for corral and are left out; `corral.*` entries are added.
/// Missing facts print as `<NA>`, as in ZooKeeper.
pub fn env_entries(version: &str, f: &EnvFacts) -> Vec<(String, String)> {
    let na = |s: &str| {
        if s.is_empty() {
            "<NA>".to_string()
        } else {
            s.to_string()
        }
    };
    vec![
        ("zookeeper.version".into(), version.to_string()),
        ("host.name".into(), na(&f.host_name)),
        ("os.name".into(), na(&f.os_name)),
        ("os.arch".into(), na(&f.os_arch)),
        ("os.version".into(), na(&f.os_version)),
        ("user.name".into(), na(&f.user_name)),
        ("user.home".into(), na(&f.user_home)),
        ("user.dir".into(), na(&f.user_dir)),
        ("corral.version".into(), CORRAL_VERSION.to_string()),
        ("corral.shards".into(), f.shards.to_string()),
    ]
}

/// `lop=` names, from ZooKeeper's `FinalRequestProcessor` (op codes as in
/// `proto::consts::OpCode`). Unknown codes give "NA".
pub fn last_op_name(op_code: i32) -> &'static str {
    match op_code {
        11 => "PING",
        -10 => "SESS",
        14 => "MULT",
        22 => "MLTR",
        1 | 15 | 19 | 21 => "CREA",
        2 | 20 => "DELE",
        5 => "SETD",
        16 => "RECO",
        7 => "SETA",
        -11 => "CLOS",
        9 => "SYNC",
        13 => "CHEC",
        3 => "EXIS",
        4 => "GETD",
        101 => "SETW",
        105 => "STW2",
        106 => "ADDW",
        6 => "GETA",
        8 | 12 => "GETC",
        104 => "GETACN",
        17 => "CHKW",
        18 => "REMW",
        107 => "HOMI",
        103 => "GETE",
        _ => "NA",
    }
}

/// The reply to four-letter word `cmd` (already known to be whitelisted). Unknown
/// words, and `gtmk`/`stmk`/`hash` which corral does not implement, give "".
pub fn four_letter(cmd: &str, view: &AdminView) -> String {
    let mut out = String::new();
    // Words that answer even when the server is not serving.
    match cmd {
        "ruok" => return "imok".into(),
        "envi" => {
            envi(&mut out, view);
            return out;
        }
        "isro" => {
            return if !view.running {
                "null"
            } else if view.stats.read_only {
                "ro"
            } else {
                "rw"
            }
            .into()
        }
        _ => {}
    }
    let serving_words = [
        "srvr", "stat", "conf", "cons", "mntr", "wchs", "wchc", "wchp", "dump", "dirs", "crst",
        "srst",
    ];
    if !serving_words.contains(&cmd) {
        return out;
    }
    if !view.running {
        return format!("{ZK_NOT_SERVING}\n");
    }
    match cmd {
        "srvr" => stat(&mut out, view, false),
        "stat" => stat(&mut out, view, true),
        "conf" => conf(&mut out, view),
        "cons" => {
            for c in &view.connections {
                connection(&mut out, c, false);
                out.push('\n');
            }
            out.push('\n');
        }
        "mntr" => mntr(&mut out, view),
        "wchs" => wchs(&mut out, view),
        "wchc" => wchc(&mut out, view),
        "wchp" => wchp(&mut out, view),
        "dump" => dump(&mut out, view),
        "dirs" => {
            out.push_str(&format!("datadir_size: {}\n", view.data_dir_size));
            out.push_str(&format!("logdir_size: {}\n", view.log_dir_size));
        }
        "crst" => out.push_str("Connection stats reset.\n"),
        "srst" => out.push_str("Server stats reset.\n"),
        _ => {}
    }
    out
}

fn envi(out: &mut String, view: &AdminView) {
    out.push_str("Environment:\n");
    for (k, v) in &view.env {
        out.push_str(&format!("{k}={v}\n"));
    }
}

/// `srvr` and `stat` (`StatCommand` + `ServerStats.toString`).
fn stat(out: &mut String, view: &AdminView, with_clients: bool) {
    let s = &view.stats;
    out.push_str(&format!("Zookeeper version: {}\n", view.version));
    if s.read_only {
        out.push_str("READ-ONLY mode; serving only read-only clients\n");
    }
    if with_clients {
        out.push_str("Clients:\n");
        for c in &view.connections {
            connection(out, c, true);
            out.push('\n');
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "Latency min/avg/max: {}/{}/{}\n",
        s.latency.min,
        java::double(s.latency.avg()),
        s.latency.max
    ));
    out.push_str(&format!("Received: {}\n", s.packets_received));
    out.push_str(&format!("Sent: {}\n", s.packets_sent));
    out.push_str(&format!("Connections: {}\n", s.num_alive_connections));
    out.push_str(&format!("Outstanding: {}\n", s.outstanding_requests));
    out.push_str(&format!("Zxid: 0x{}\n", java::hex(s.last_processed_zxid)));
    out.push_str(&format!("Mode: {}\n", s.server_state));
    out.push_str(&format!("Node count: {}\n", s.node_count));
}

/// `ServerCnxn.dumpConnectionInfo`.
fn connection(out: &mut String, c: &ConnectionInfo, brief: bool) {
    out.push(' ');
    out.push_str(&java::socket_addr(&c.remote));
    out.push('[');
    if c.interest_ops == 0 {
        out.push('0');
    } else {
        out.push_str(&format!("{:x}", c.interest_ops));
    }
    out.push_str(&format!(
        "](queued={},recved={},sent={}",
        c.outstanding_requests, c.packets_received, c.packets_sent
    ));
    if !brief && c.session_id != 0 {
        out.push_str(&format!(
            ",sid=0x{},lop={},est={},to={}",
            java::hex(c.session_id),
            c.last_operation,
            c.established_ms,
            c.session_timeout
        ));
        if c.last_cxid >= 0 {
            out.push_str(&format!(",lcxid=0x{}", java::hex(c.last_cxid)));
        }
        let avg = if c.latency.count == 0 {
            0
        } else {
            c.latency.total / c.latency.count
        };
        out.push_str(&format!(
            ",lzxid=0x{},lresp={},llat={},minlat={},avglat={},maxlat={}",
            java::hex(c.last_zxid),
            c.last_response_time,
            c.last_latency,
            c.latency.min,
            avg,
            c.latency.max
        ));
    }
    out.push(')');
}

/// `conf`: the config lines with the directory sizes inserted where dumpConf has them.
fn conf(out: &mut String, view: &AdminView) {
    for line in &view.conf_lines {
        out.push_str(line);
        out.push('\n');
        if line.starts_with("dataDir=") {
            out.push_str(&format!("dataDirSize={}\n", view.data_dir_size));
        } else if line.starts_with("dataLogDir=") {
            out.push_str(&format!("dataLogSize={}\n", view.log_dir_size));
        }
    }
}

/// `mntr`: `zk_<key>\t<value>` lines. ZooKeeper prints version and state first, then
/// its gauges in hash order; corral uses the order a 3.8 server printed them in, then
/// its own metrics.
fn mntr(out: &mut String, view: &AdminView) {
    for (k, v) in monitor_values(view) {
        out.push_str(&format!("zk_{k}\t{}\n", v.render()));
    }
}

/// What `mntr` prints, without the `zk_` prefix, in its order: ZooKeeper's own values,
/// then corral's [`AdminView::extra_metrics`]. The AdminServer's `monitor` command
/// answers the same pairs as JSON.
pub fn monitor_values(view: &AdminView) -> Vec<(String, MetricValue)> {
    use MetricValue::{Float, Int, Text};
    let s = &view.stats;
    let n = |v: u64| Int(i64::try_from(v).unwrap_or(i64::MAX));
    let lines: Vec<(&str, MetricValue)> = vec![
        ("version", Text(view.version.clone())),
        ("server_state", Text(s.server_state.clone())),
        ("ephemerals_count", n(view.ephemerals_count)),
        ("num_alive_connections", n(s.num_alive_connections)),
        ("avg_latency", Float(s.latency.avg())),
        ("outstanding_requests", n(s.outstanding_requests)),
        ("znode_count", n(s.node_count)),
        ("global_sessions", n(view.session_count)),
        ("non_mtls_remote_conn_count", Int(0)),
        (
            "last_client_response_size",
            Int(view.client_response_size.last),
        ),
        ("packets_sent", n(s.packets_sent)),
        ("packets_received", n(s.packets_received)),
        (
            "max_client_response_size",
            Int(view.client_response_size.max),
        ),
        ("connection_drop_probability", Float(0.0)),
        ("watch_count", n(view.watch_count)),
        ("auth_failed_count", n(view.auth_failed_count)),
        ("min_latency", Int(s.latency.min)),
        (
            "max_file_descriptor_count",
            Int(view.max_file_descriptor_count),
        ),
        ("approximate_data_size", n(view.approximate_data_size)),
        (
            "open_file_descriptor_count",
            Int(view.open_file_descriptor_count),
        ),
        ("local_sessions", Int(0)),
        ("uptime", n(view.uptime_ms)),
        ("max_latency", Int(s.latency.max)),
        ("outstanding_tls_handshake", Int(0)),
        (
            "min_client_response_size",
            Int(view.client_response_size.min),
        ),
        ("non_mtls_local_conn_count", Int(0)),
    ];
    lines
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .chain(view.extra_metrics.iter().cloned())
        .collect()
}

/// `wchs`: `WatchManager.toString` and a newline.
fn wchs(out: &mut String, view: &AdminView) {
    if let Some(s) = view.watches_summary {
        out.push_str(&format!(
            "{} connections watching {} paths\nTotal watches:{}\n",
            s.num_connections, s.num_paths, s.total_watches
        ));
        return;
    }
    // Every entry counts, even one whose paths are all gone: ZooKeeper keeps a
    // connection in its table until it closes (see `watch::WatchesSummary`).
    let watchers = view.data_watches.len();
    let total: usize = view.data_watches.iter().map(|w| w.paths.len()).sum();
    let mut paths: Vec<&str> = view
        .data_watches
        .iter()
        .flat_map(|w| w.paths.iter().map(String::as_str))
        .collect();
    paths.sort_unstable();
    paths.dedup();
    out.push_str(&format!(
        "{watchers} connections watching {} paths\nTotal watches:{total}\n",
        paths.len()
    ));
}

/// `wchc`: per session, its watched paths.
fn wchc(out: &mut String, view: &AdminView) {
    for w in &view.data_watches {
        out.push_str(&format!("0x{}\n", java::hex(w.session_id)));
        for p in &w.paths {
            out.push_str(&format!("\t{p}\n"));
        }
    }
    out.push('\n');
}

/// `wchp`: per path (in first-seen order), the sessions watching it.
fn wchp(out: &mut String, view: &AdminView) {
    let mut order: Vec<&str> = Vec::new();
    let mut by_path: std::collections::HashMap<&str, Vec<i64>> = Default::default();
    for w in &view.data_watches {
        for p in &w.paths {
            let e = by_path.entry(p.as_str()).or_insert_with(|| {
                order.push(p.as_str());
                Vec::new()
            });
            e.push(w.session_id);
        }
    }
    for p in order {
        out.push_str(p);
        out.push('\n');
        for sid in &by_path[p] {
            out.push_str(&format!("\t0x{}\n", java::hex(*sid)));
        }
    }
    out.push('\n');
}

/// `ExpiryQueue.dump`: "Sets (buckets)/(elements):" then each bucket in time order.
fn expiry_dump(out: &mut String, mut items: Vec<(i64, String)>) {
    items.sort_by_key(|i| i.0);
    let mut buckets: Vec<(i64, Vec<String>)> = Vec::new();
    for (t, s) in items {
        match buckets.last_mut() {
            Some((bt, v)) if *bt == t => v.push(s),
            _ => buckets.push((t, vec![s])),
        }
    }
    let elems: usize = buckets.iter().map(|b| b.1.len()).sum();
    out.push_str(&format!("Sets ({})/({elems}):\n", buckets.len()));
    for (t, v) in buckets {
        out.push_str(&format!("{} expire at {}:\n", v.len(), java::date(t)));
        for s in v {
            out.push_str(&format!("\t{s}\n"));
        }
    }
}

/// `dump`: sessions by expiry, ephemerals by session, connections by expiry.
fn dump(out: &mut String, view: &AdminView) {
    out.push_str("SessionTracker dump:\nSession ");
    expiry_dump(
        out,
        view.sessions
            .iter()
            .map(|s| (s.expires_at_ms, format!("0x{}", java::hex(s.session_id))))
            .collect(),
    );
    out.push_str("ephemeral nodes dump:\n");
    out.push_str(&format!(
        "Sessions with Ephemerals ({}):\n",
        view.ephemerals.len()
    ));
    for e in &view.ephemerals {
        out.push_str(&format!("0x{}:\n", java::hex(e.session_id)));
        for p in &e.paths {
            out.push_str(&format!("\t{p}\n"));
        }
    }
    out.push_str("Connections dump:\nConnections ");
    expiry_dump(
        out,
        view.connections
            .iter()
            .filter_map(|c| {
                c.expires_at_ms.map(|t| {
                    (
                        t,
                        format!(
                            "ip: {} sessionId: 0x{}",
                            java::socket_addr(&c.remote),
                            java::hex(c.session_id)
                        ),
                    )
                })
            })
            .collect(),
    );
}

#[cfg(test)]
mod tests;
