//! zoo.cfg: reading the configuration file into a [`Config`], with ZooKeeper's key names,
//! defaults and validation, and printing it back for the `conf` four-letter word.
//!
//! ZooKeeper reads zoo.cfg with `java.util.Properties` (see [`properties`]), trims every
//! key and value, interprets the keys `QuorumPeerConfig` knows, and turns every other
//! key `k` into the Java system property `zookeeper.k` (that is how `snapCount`,
//! `4lw.commands.whitelist`, `admin.*` and friends work). corral accepts the same file:
//! the same keys, the same defaults (including the ones derived from `tickTime`), and a
//! few extra spellings where ZooKeeper's own name is a system property
//! (`zookeeper.extendedTypesEnabled`, `zookeeper.enforceQuota`,
//! `zookeeper.DigestAuthenticationProvider.superDigest`).
//!
//! Where ZooKeeper silently falls back to a default on a malformed value (system
//! properties read with `Integer.getInteger`), corral refuses the file instead: a typo in
//! a limit should stop the server, not be ignored. Unknown keys and keys corral does
//! not implement are returned as warnings.
//!
//! ZooKeeper's system properties themselves (`-Dname=value` in `SERVER_JVMFLAGS` and
//! `JVMFLAGS`, or a `java.env` beside zoo.cfg) are read by [`Config::load`] and enter
//! the same parse under the file's own lines ([`jvm_flags`],
//! [`Config::parse_with_sysprops`]). The authentication keys (`authProvider.N`, SASL's
//! JAAS file, `enforce.auth.*`, super users) are in [`auth`].
//!
//! The ensemble keys (`server.N`, `initLimit`, `peerType`, the `myid` file, ...) are
//! read and checked as `QuorumPeerConfig.setupQuorumPeerConfig` does, in the private
//! `ensemble` module.
//!
//! Parsing is sans-IO (`Config::parse` takes the text, [`Config::parse_with_myid`] also
//! the content of `dataDir/myid`); only [`Config::load`] reads files, and only client
//! host names other than `localhost` are resolved (once, at startup), as ZooKeeper
//! does with `InetAddress.getByName`.

pub mod auth;
mod ensemble;
pub mod jaas;
pub mod jvm_flags;
pub mod properties;
pub mod quorum_auth;
pub mod tls;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use crate::limits::Limits;
use crate::quorum::verifier::QuorumVerifier;
use crate::quorum::{LearnerType, Sid};
use crate::request::PrepConfig;

/// corral's built-in configuration (conf/zoo.cfg), used when no file is given.
pub const EMBEDDED_DEFAULT: &str = include_str!("../../conf/zoo.cfg");

/// The four-letter words ZooKeeper knows (`FourLetterCommands.cmd2String`, less the
/// telnet close sequence). `4lw.commands.whitelist=*` allows exactly these.
pub const KNOWN_FOUR_LETTER_WORDS: &[&str] = &[
    "conf", "cons", "crst", "dirs", "dump", "envi", "gtmk", "ruok", "stmk", "srst", "srvr", "stat",
    "wchc", "wchp", "wchs", "mntr", "isro", "hash",
];

/// ZooKeeper's `tickTime` when zoo.cfg has none (`ZooKeeperServer.DEFAULT_TICK_TIME`).
pub const ZK_DEFAULT_TICK_TIME: u32 = 3000;

/// `autopurge.snapRetainCount` below this is raised to it (`PurgeTxnLog` keeps 3).
pub const MIN_SNAP_RETAIN_COUNT: u32 = 3;

/// `electionAlg`: ZooKeeper 3.8 accepts only 3, fast leader election.
pub const ELECTION_ALG: u32 = 3;

/// A zoo.cfg that cannot be used. Every variant names the file; value errors also name
/// the key and the line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}:{line}: invalid value {value:?} for {key}: {reason}")]
    BadValue {
        file: String,
        line: usize,
        key: String,
        value: String,
        reason: String,
    },
    #[error("{file}: {key} is not set")]
    Missing { file: String, key: String },
    /// A key an ensemble needs and the file lacks.
    #[error("{file}: {key} is not set: {reason}")]
    NotSet {
        file: String,
        key: String,
        reason: String,
    },
    /// The `myid` file (named by `path`) is missing, malformed or names no member.
    #[error("{}: {reason}", path.display())]
    MyId { path: PathBuf, reason: String },
    #[error("{file}:{line}: malformed \\uxxxx escape")]
    Syntax { file: String, line: usize },
    /// A system property (`-D` in `SERVER_JVMFLAGS`/`JVMFLAGS`) with a bad value.
    #[error("system property {key}={value:?} (from {origin}): {reason}")]
    SysProp {
        key: String,
        value: String,
        origin: String,
        reason: String,
    },
    /// The JVM flags or the JAAS login configuration cannot be used.
    #[error("{0}")]
    Auth(String),
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `tickTime` (ms). 3000 when the file has none, as ZooKeeper; the embedded default
    /// sets 2000.
    pub tick_time: u32,
    /// `dataDir`: snapshots. Required.
    pub data_dir: PathBuf,
    /// `dataLogDir`: the transaction log (default: `dataDir`).
    pub data_log_dir: PathBuf,
    /// The address clients connect to: `clientPortAddress` and `clientPort`, or this
    /// server's `;[host:]port` on its `server.N` line, which wins when present (as in
    /// ZooKeeper's `setupClientPort`). Without a host every address (0.0.0.0) is bound,
    /// as ZooKeeper. Port 0 asks the OS for a free port.
    pub client_port_address: SocketAddr,
    /// `secureClientPort` (the port alone, as `conf` shows it; where it listens and
    /// with which stores is in `tls`).
    pub secure_client_port: Option<u16>,
    /// `secureClientPort*`, `ssl.*`, `sslQuorum`, `portUnification`,
    /// `client.portUnification` (`config::tls`).
    pub tls: tls::TlsConfig,
    /// `quorum.auth.*`: DIGEST-MD5 between servers (`config::quorum_auth`).
    pub quorum_auth: quorum_auth::QuorumAuthConfig,
    /// `clientPortListenBacklog` (-1 = the system default).
    pub client_port_listen_backlog: i32,
    /// `minSessionTimeout` (ms; default 2 x tickTime).
    pub min_session_timeout: u32,
    /// `maxSessionTimeout` (ms; default 20 x tickTime).
    pub max_session_timeout: u32,
    /// `extendedTypesEnabled` / `zookeeper.extendedTypesEnabled`: TTL nodes.
    pub extended_types_enabled: bool,
    /// `enforceQuota` / `zookeeper.enforceQuota`.
    pub enforce_quota: bool,
    /// `DigestAuthenticationProvider.superDigest` (also `superDigest` and
    /// `zookeeper.DigestAuthenticationProvider.superDigest`): `super:<base64 sha1>`.
    pub super_digest: Option<String>,
    /// `znode.container.checkIntervalMs`.
    pub container_check_interval_ms: u64,
    /// `znode.container.maxPerMinute`: containers/TTL nodes deleted per minute at most.
    pub container_max_per_minute: u32,
    /// `znode.container.maxNeverUsedIntervalMs` (0 = never delete containers that never
    /// had a child, ZooKeeper 3.8's default).
    pub container_max_never_used_interval_ms: u64,
    /// corral's own key `shards`: executors (default: every core, shared among the
    /// ensemble's members on this host: [`Config::shard_count`]).
    pub shards: Option<usize>,
    /// corral's own key `pinShards` (true/false): each executor on its own core. Unset:
    /// pinned unless another member of the ensemble runs on this host
    /// ([`Config::shards_pinned`]).
    pub pin_shards: Option<bool>,
    /// corral's own key `logAppendsInFlight` (1 to 4, default 4): how many batches a
    /// standalone server's txn log writes at once (`storage::log`, "Appends in
    /// flight"). Each is one durable write; disks take several flushes in parallel, so
    /// more in flight means more batches made durable per second when the disk is the
    /// limit. 1 writes one batch at a time. Without `forceSync` always 1.
    pub log_appends_in_flight: usize,
    /// `4lw.commands.whitelist`, lower-cased; "*" allows all. `srvr` is always allowed
    /// on top of it, as in ZooKeeper.
    pub four_letter_whitelist: Vec<String>,
    /// `jute.maxbuffer`, `maxClientCnxns`, `globalOutstandingLimit`.
    pub limits: Limits,
    /// `preAllocSize`, converted from KiB (as written) to bytes. Default 64 MiB.
    pub pre_alloc_size: u64,
    /// `snapCount`: transactions between snapshots. Default 100000.
    pub snap_count: u32,
    /// `autopurge.snapRetainCount` (at least 3).
    pub autopurge_snap_retain_count: u32,
    /// `autopurge.purgeInterval` in ms (written in hours unless suffixed); 0 = never.
    pub autopurge_purge_interval_ms: u64,
    /// `forceSync`: fsync the log before acknowledging. Off only for exactly "no", as
    /// in ZooKeeper (`!"no".equals(value)`); any other value but "yes" is warned about.
    pub force_sync: bool,
    /// `fsync.warningthresholdms` / `zookeeper.fsync.warningthresholdms` (ms, default
    /// 1000): a log fdatasync slower than this is logged as a warning, as ZooKeeper's
    /// FileTxnLog does.
    pub fsync_warning_threshold_ms: u64,
    /// `nio.sessionlessCnxnTimeout` / `zookeeper.nio.sessionlessCnxnTimeout` (ms,
    /// default 10000): a client connection that has not sent its ConnectRequest this
    /// long after it was accepted is closed.
    pub sessionless_cnxn_timeout_ms: u64,
    /// corral's `corral.logFormat` (`text` or `json`); the `CORRAL_LOG_FORMAT`
    /// environment variable overrides it.
    pub log_format: LogFormat,
    /// corral's `corral.logLevel`: a tracing filter (`info`, `corral=debug,warn`, ...);
    /// `CORRAL_LOG` or `RUST_LOG` override it. `None`: `info`.
    pub log_level: Option<String>,
    /// `admin.enableServer`: serve ZooKeeper's AdminServer commands over HTTP
    /// (`src/server/admin_http.rs`). True by default, as in ZooKeeper.
    pub admin_enable_server: bool,
    /// `admin.serverAddress` (default `0.0.0.0`), resolved when the server binds.
    pub admin_server_address: String,
    /// `admin.serverPort` (default 8080).
    pub admin_server_port: u16,
    /// `admin.commandURL`: the path prefix of the commands (default `/commands`).
    pub admin_command_url: String,
    /// `admin.idleTimeout` (ms, default 30000): an HTTP connection idle this long is
    /// closed.
    pub admin_idle_timeout_ms: u32,
    /// `admin.snapshot.enabled`: the `snapshot` command may stream a snapshot. Off by
    /// default: it hands out every znode to whoever passes its auth check.
    pub admin_snapshot_enabled: bool,
    /// `admin.restore.enabled`: the `restore` command is offered (corral then answers
    /// that it cannot restore; see `admin::commands`).
    pub admin_restore_enabled: bool,
    /// The configuration file's text as read (the `initial_configuration` command).
    pub initial_config: String,
    /// The `server.N` lines (and `version`, if given) as ZooKeeper's `QuorumMaj`;
    /// `None` when the file has no `server.N` line. Having one does not make an
    /// ensemble: see [`Config::is_distributed`].
    pub quorum: Option<QuorumVerifier>,
    /// This server's id from `dataDir/myid`, when the file exists and names a member
    /// (an ensemble member must have one; a standalone server may).
    pub server_id: Option<Sid>,
    /// This server's role, from its `server.N` line (which overrides `peerType`, as in
    /// ZooKeeper); participant when standalone.
    pub peer_type: LearnerType,
    /// `initLimit` (ticks a follower has to connect and sync to a new leader). 0 = not
    /// set, which only a standalone server may leave it.
    pub init_limit: u32,
    /// `syncLimit` (ticks a follower may lag before the leader drops it). 0 = not set.
    pub sync_limit: u32,
    /// `connectToLearnerMasterLimit` (ticks to connect to the leader after an
    /// election); 0 = use `initLimit`.
    pub connect_to_learner_master_limit: u32,
    /// `standaloneEnabled`: with true (the default) a lone participant runs standalone.
    pub standalone_enabled: bool,
    /// `reconfigEnabled`: accepted; corral does not implement reconfig (warned).
    pub reconfig_enabled: bool,
    /// `syncEnabled`: observers log txns and take snapshots like participants.
    pub sync_enabled: bool,
    /// `quorumListenOnAllIPs`: bind the quorum and election ports on every address
    /// instead of this server's line's host.
    pub quorum_listen_on_all_ips: bool,
    /// `electionPortBindRetry` / `zookeeper.electionPortBindRetry`: tries to bind the
    /// election port, 1 s apart (0 = forever).
    pub election_port_bind_retry: u32,
    /// `cnxTimeout` / `zookeeper.cnxTimeout` (ms): connect timeout to a peer's election
    /// port. 0 = none (Java's connect timeout 0 waits for ever).
    pub cnx_timeout_ms: u32,
    /// `metricsProvider.className` naming ZooKeeper's Prometheus provider (or corral's
    /// short name `prometheus`): where `/metrics` is served. `None` with ZooKeeper's
    /// default provider, whose metrics only `mntr` shows.
    pub metrics_provider: Option<PrometheusConfig>,
    /// `authProvider.N`, SASL's JAAS file, super users, `enforce.auth.*`
    /// (`config::auth`).
    pub auth: auth::AuthConfig,
}

/// `metricsProvider.className` of ZooKeeper's Prometheus provider.
pub const PROMETHEUS_PROVIDER_CLASS: &str =
    "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider";

/// ZooKeeper's providers without an endpoint of their own: `mntr` only, as without a
/// `metricsProvider.className`.
const DEFAULT_PROVIDER_CLASSES: &[&str] = &[
    "org.apache.zookeeper.metrics.impl.DefaultMetricsProvider",
    "org.apache.zookeeper.metrics.impl.NullMetricsProvider",
];

/// The settings `PrometheusMetricsProvider.configure` reads (`metricsProvider.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrometheusConfig {
    /// `metricsProvider.httpHost` and `metricsProvider.httpPort`: where `/metrics` is
    /// served (default 0.0.0.0:7000, as ZooKeeper).
    pub addr: SocketAddr,
    /// `metricsProvider.exportJvmInfo` (default true). corral has no JVM: accepted, and
    /// no `jvm_*` metrics are exported either way.
    pub export_jvm_info: bool,
}

impl Default for PrometheusConfig {
    fn default() -> Self {
        PrometheusConfig {
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 7000),
            export_jvm_info: true,
        }
    }
}

impl Default for Config {
    /// The embedded default, conf/zoo.cfg (a test checks they agree).
    fn default() -> Self {
        Config {
            tick_time: 2000,
            data_dir: "./data".into(),
            data_log_dir: "./data".into(),
            client_port_address: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 2181),
            secure_client_port: None,
            tls: tls::TlsConfig::default(),
            quorum_auth: quorum_auth::QuorumAuthConfig::default(),
            client_port_listen_backlog: -1,
            min_session_timeout: 4000,
            max_session_timeout: 40000,
            extended_types_enabled: false,
            enforce_quota: false,
            super_digest: None,
            container_check_interval_ms: 60000,
            container_max_per_minute: 10000,
            container_max_never_used_interval_ms: 0,
            shards: None,
            pin_shards: None,
            log_appends_in_flight: crate::storage::log::MAX_APPENDS_IN_FLIGHT,
            four_letter_whitelist: ["srvr", "stat", "ruok", "mntr", "conf", "isro"]
                .into_iter()
                .map(String::from)
                .collect(),
            limits: Limits::default(),
            pre_alloc_size: 65536 * 1024,
            snap_count: 100_000,
            autopurge_snap_retain_count: MIN_SNAP_RETAIN_COUNT,
            autopurge_purge_interval_ms: 0,
            force_sync: true,
            fsync_warning_threshold_ms: 1000,
            sessionless_cnxn_timeout_ms: 10_000,
            log_format: LogFormat::Text,
            log_level: None,
            admin_enable_server: true,
            admin_server_address: "127.0.0.1".into(),
            admin_server_port: 8080,
            admin_command_url: "/commands".into(),
            admin_idle_timeout_ms: 30000,
            admin_snapshot_enabled: false,
            admin_restore_enabled: false,
            initial_config: EMBEDDED_DEFAULT.to_string(),
            quorum: None,
            server_id: None,
            peer_type: LearnerType::Participant,
            init_limit: 0,
            sync_limit: 0,
            connect_to_learner_master_limit: 0,
            standalone_enabled: true,
            reconfig_enabled: false,
            sync_enabled: true,
            quorum_listen_on_all_ips: false,
            election_port_bind_retry: 3,
            cnx_timeout_ms: 5000,
            metrics_provider: None,
            auth: auth::AuthConfig::default(),
        }
    }
}

/// Keys ZooKeeper reads that corral does not implement: accepted with a warning so a
/// ZooKeeper zoo.cfg still starts.
const UNSUPPORTED_KEYS: &[&str] = &[
    "localSessionsEnabled",
    "localSessionsUpgradingEnabled",
    "observerMasterPort",
    "multiAddress.reachabilityCheckTimeoutMs",
    "multiAddress.reachabilityCheckEnabled",
    "oraclePath",
    "jvm.pause.monitor",
    "audit.enable",
];

/// A value that cannot be used, before the file and line are attached.
struct Bad(String);

impl From<&str> for Bad {
    fn from(s: &str) -> Self {
        Bad(s.to_string())
    }
}

/// Java's `Integer.parseInt`: optional sign, decimal digits, 32-bit range.
fn parse_int(v: &str) -> Result<i64, Bad> {
    v.parse::<i32>()
        .map(i64::from)
        .map_err(|_| Bad("not a 32-bit integer".into()))
}

/// Java's `Long.parseLong`.
fn parse_long(v: &str) -> Result<i64, Bad> {
    v.parse::<i64>().map_err(|_| Bad("not an integer".into()))
}

/// Java's `Long.decode`, used by `Integer.getInteger`/`Long.getLong` (how ZooKeeper
/// reads its system-property keys): decimal, `0x`/`0X`/`#` hex, or `0`-prefixed octal.
fn parse_decode(v: &str) -> Result<i64, Bad> {
    let bad = || Bad("not an integer".into());
    let (neg, rest) = match v.as_bytes().first() {
        Some(b'-') => (true, &v[1..]),
        Some(b'+') => (false, &v[1..]),
        _ => (false, v),
    };
    if rest.starts_with('-') || rest.starts_with('+') {
        return Err(bad());
    }
    let (digits, radix) =
        if let Some(h) = rest.strip_prefix("0x").or_else(|| rest.strip_prefix("0X")) {
            (h, 16)
        } else if let Some(h) = rest.strip_prefix('#') {
            (h, 16)
        } else if rest.len() > 1 && rest.starts_with('0') {
            (&rest[1..], 8)
        } else {
            (rest, 10)
        };
    if digits.is_empty() || digits.starts_with('-') || digits.starts_with('+') {
        return Err(bad());
    }
    let mag = i128::from_str_radix(digits, radix).map_err(|_| bad())?;
    let val = if neg { -mag } else { mag };
    i64::try_from(val).map_err(|_| bad())
}

/// `Integer.getInteger`: `Long.decode` within 32 bits.
fn parse_decode_int(v: &str) -> Result<i64, Bad> {
    let n = parse_decode(v)?;
    if i32::try_from(n).is_err() {
        return Err(Bad("not a 32-bit integer".into()));
    }
    Ok(n)
}

fn at_least(n: i64, min: i64) -> Result<i64, Bad> {
    if n < min {
        Err(Bad(format!("must be at least {min}")))
    } else {
        Ok(n)
    }
}

/// `QuorumPeerConfig.parseBoolean`: "true" or "false", any case.
fn parse_bool(v: &str) -> Result<bool, Bad> {
    if v.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if v.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err("must be true or false".into())
    }
}

fn parse_port(v: &str) -> Result<u16, Bad> {
    let n = parse_int(v)?;
    u16::try_from(n).map_err(|_| Bad("port out of range 0-65535".into()))
}

/// `Time.parseTimeInterval` for `autopurge.purgeInterval`: a bare number is hours
/// (ZooKeeper 3.8 accepts only that); 3.9 also takes `ms`, `s`, `m`, `h`, `d` suffixes.
fn parse_purge_interval(v: &str) -> Result<u64, Bad> {
    const HOUR: i64 = 3_600_000;
    let last = v.chars().last().ok_or(Bad("empty".into()))?;
    let ms = if last.is_ascii_digit() {
        parse_int(v)?.checked_mul(HOUR)
    } else if let Some(n) = v.strip_suffix("ms").or_else(|| v.strip_suffix("MS")) {
        Some(parse_int(n)?)
    } else {
        let n = parse_int(&v[..v.len() - last.len_utf8()])?;
        let unit = match last.to_ascii_uppercase() {
            'S' => 1000,
            'M' => 60_000,
            'H' => HOUR,
            'D' => 24 * HOUR,
            _ => return Err("unknown time unit (use ms, s, m, h or d)".into()),
        };
        n.checked_mul(unit)
    };
    let ms = ms.ok_or(Bad("too large".into()))?;
    u64::try_from(ms).map_err(|_| Bad("must not be negative".into()))
}

/// `clientPortAddress`: an IP literal (IPv6 with or without brackets), `localhost`, or a
/// host name resolved now (ZooKeeper calls `InetAddress.getByName` at startup too).
fn parse_host(v: &str) -> Result<IpAddr, Bad> {
    let unbracketed = v
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(v);
    if let Ok(ip) = unbracketed.parse::<IpAddr>() {
        return Ok(ip);
    }
    if v.eq_ignore_ascii_case("localhost") {
        return Ok(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    if v.is_empty() {
        return Err("empty address".into());
    }
    (v, 0u16)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .map(|a| a.ip())
        .ok_or_else(|| Bad("cannot resolve host name".into()))
}

/// `forceSync`: ZooKeeper's FileTxnLog syncs unless the value is exactly "no"
/// (`!System.getProperty("zookeeper.forceSync", "yes").equals("no")`): "NO", "false"
/// or "off" all leave fsync on. corral means the same, and says so for any value other
/// than "yes" or "no" (the second result), since such a value was probably meant to
/// turn it off.
fn parse_force_sync(v: &str) -> (bool, Option<String>) {
    match v {
        "no" => (false, None),
        "yes" => (true, None),
        _ => (
            true,
            Some(format!(
                "forceSync={v}: only exactly \"no\" turns fsync off (as in ZooKeeper); fsync stays on"
            )),
        ),
    }
}

/// How the server's log lines are written (`corral.logFormat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (`timestamp`, `level`, `message`, `target`, fields).
    Json,
}

impl LogFormat {
    /// `text` or `json`, any case.
    pub fn parse(v: &str) -> Option<LogFormat> {
        if v.eq_ignore_ascii_case("text") {
            Some(LogFormat::Text)
        } else if v.eq_ignore_ascii_case("json") {
            Some(LogFormat::Json)
        } else {
            None
        }
    }
}

/// The `metricsProvider.*` keys of a file, decided once all are read (the class name
/// may come after the keys it gives meaning to).
#[derive(Default)]
struct MetricsKeys {
    class: Option<(String, usize)>,
    host: Option<IpAddr>,
    port: Option<u16>,
    export_jvm_info: Option<(bool, usize)>,
}

impl MetricsKeys {
    /// The Prometheus endpoint the keys ask for. An unknown class name is refused
    /// (ZooKeeper cannot start without the class either); the Prometheus keys without
    /// the Prometheus class are warned about, since they change nothing.
    fn provider(
        self,
        file: &str,
        entries: &[(String, String, String, usize)],
        warnings: &mut Vec<String>,
    ) -> Result<Option<PrometheusConfig>, ConfigError> {
        let prometheus = match &self.class {
            None => false,
            Some((class, _))
                if class == PROMETHEUS_PROVIDER_CLASS || class.eq_ignore_ascii_case("prometheus") =>
            {
                true
            }
            Some((class, _)) if DEFAULT_PROVIDER_CLASSES.contains(&class.as_str()) => false,
            Some((class, line)) => {
                return Err(ConfigError::BadValue {
                    file: file.to_string(),
                    line: *line,
                    key: "metricsProvider.className".into(),
                    value: class.clone(),
                    reason: format!(
                        "unknown metrics provider: corral serves {PROMETHEUS_PROVIDER_CLASS} (or `prometheus`); ZooKeeper's DefaultMetricsProvider leaves metrics to mntr"
                    ),
                })
            }
        };
        if !prometheus {
            for (canon, key, _, line) in entries {
                let prometheus_key = matches!(
                    canon.as_str(),
                    "metricsProvider.httpHost"
                        | "metricsProvider.httpPort"
                        | "metricsProvider.exportJvmInfo"
                );
                if prometheus_key {
                    warnings.push(format!(
                        "{file}:{line}: {key} has no effect without metricsProvider.className={PROMETHEUS_PROVIDER_CLASS}"
                    ));
                }
            }
            return Ok(None);
        }
        let mut p = PrometheusConfig::default();
        if let Some(ip) = self.host {
            p.addr.set_ip(ip);
        }
        if let Some(port) = self.port {
            p.addr.set_port(port);
        }
        if let Some((export, line)) = self.export_jvm_info {
            p.export_jvm_info = export;
            if export {
                warnings.push(format!(
                    "{file}:{line}: metricsProvider.exportJvmInfo: corral has no JVM; no jvm_* metrics are exported"
                ));
            }
        }
        Ok(Some(p))
    }
}

/// The spelling corral reads for `key`, folding ZooKeeper's system-property names.
fn canonical_key(key: &str) -> &str {
    match key {
        "zookeeper.extendedTypesEnabled" => "extendedTypesEnabled",
        "zookeeper.enforceQuota" => "enforceQuota",
        "superDigest"
        | "zookeeper.DigestAuthenticationProvider.superDigest"
        | "DigestAuthenticationProvider.superDigest" => "DigestAuthenticationProvider.superDigest",
        "zookeeper.4lw.commands.whitelist" => "4lw.commands.whitelist",
        // ZooKeeper reads these two only as system properties; in zoo.cfg the short
        // name becomes that property.
        "zookeeper.electionPortBindRetry" => "electionPortBindRetry",
        "zookeeper.cnxTimeout" => "cnxTimeout",
        // System properties FileTxnLog and NIOServerCnxnFactory read; in zoo.cfg the
        // short name becomes that property.
        "zookeeper.fsync.warningthresholdms" => "fsync.warningthresholdms",
        "zookeeper.nio.sessionlessCnxnTimeout" => "nio.sessionlessCnxnTimeout",
        // The AdminServer's keys are system properties too (`zookeeper.admin.*`).
        other if tls::canonical(other).is_some() => tls::canonical(other).unwrap_or(other),
        other if auth::canonical(other).is_some() => auth::canonical(other).unwrap_or(other),
        other if other.starts_with("zookeeper.admin.") => &other["zookeeper.".len()..],
        other => other,
    }
}

/// The last `dataDir` of zoo.cfg `text`, found the way `parse` finds it, so `load` can
/// read the myid beside it before parsing. `None` when there is none (or the text does
/// not parse: `parse` then reports why).
fn data_dir_in(text: &str) -> Option<PathBuf> {
    properties::parse(text)
        .ok()?
        .into_iter()
        .rev()
        .find(|e| java_trim(&e.key) == "dataDir")
        .map(|e| PathBuf::from(java_trim(&e.value)))
        .filter(|p| !p.as_os_str().is_empty())
}

/// The content of a myid file, `None` when there is no such file (ZooKeeper reads it
/// only if `isFile`; a standalone server needs none).
fn read_myid(path: &Path) -> Result<Option<String>, ConfigError> {
    let io = |source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => {
            let bytes = std::fs::read(path).map_err(io)?;
            Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
        }
        Ok(_) => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(e)),
    }
}

/// Java's `String.trim`: drops every char up to and including U+0020 at both ends.
fn java_trim(s: &str) -> &str {
    s.trim_matches(|c: char| c <= ' ')
}

impl Config {
    /// Parses zoo.cfg `text` with no `myid` file; `source_name` (usually the path)
    /// names the file in errors and warnings. Returns the configuration and the
    /// warnings to log. An ensemble member's configuration needs its myid: see
    /// [`Config::parse_with_myid`].
    pub fn parse(text: &str, source_name: &str) -> Result<(Config, Vec<String>), ConfigError> {
        Config::parse_with_myid(text, source_name, None)
    }

    /// Parses zoo.cfg `text` given the content of `dataDir/myid` (`None` when there is
    /// no such file), as ZooKeeper does: a myid that exists must be a number, even for
    /// a standalone server; an ensemble member must have one naming a `server.N` line.
    pub fn parse_with_myid(
        text: &str,
        source_name: &str,
        myid: Option<&str>,
    ) -> Result<(Config, Vec<String>), ConfigError> {
        Config::parse_with_sysprops(text, source_name, myid, &[])
    }

    /// [`Config::parse_with_myid`] with the server's Java system properties (the `-D`
    /// flags of `SERVER_JVMFLAGS` and `JVMFLAGS`, see [`jvm_flags`]) under the file:
    /// a property stands for the zoo.cfg key [`jvm_flags::config_key`] names, and the
    /// file's own line for that key wins. Properties corral has no use for (JVM and
    /// logging settings) are ignored without a warning.
    pub fn parse_with_sysprops(
        text: &str,
        source_name: &str,
        myid: Option<&str>,
        sysprops: &[jvm_flags::SystemProperty],
    ) -> Result<(Config, Vec<String>), ConfigError> {
        let (c, warnings) =
            Config::parse_entries(text, source_name, myid, sysprops).map_err(|e| match e {
                // Line 0 is a system property's (see `parse_entries`).
                ConfigError::BadValue {
                    line: 0,
                    key,
                    value,
                    reason,
                    ..
                } => {
                    let name = key.strip_prefix("-D").unwrap_or(&key).to_string();
                    let source = sysprops
                        .iter()
                        .rev()
                        .find(|p| p.name == name)
                        .map(|p| p.source)
                        .unwrap_or("JVM flags");
                    ConfigError::SysProp {
                        key: name,
                        value,
                        origin: source.to_string(),
                        reason,
                    }
                }
                e => e,
            })?;
        let quiet = format!("{source_name}:0: ");
        let warnings = warnings
            .into_iter()
            .filter(|w| !w.starts_with(&quiet))
            .collect();
        Ok((c, warnings))
    }

    fn parse_entries(
        text: &str,
        source_name: &str,
        myid: Option<&str>,
        sysprops: &[jvm_flags::SystemProperty],
    ) -> Result<(Config, Vec<String>), ConfigError> {
        let file = source_name.to_string();
        let entries = properties::parse(text).map_err(|e| ConfigError::Syntax {
            file: file.clone(),
            line: e.line,
        })?;
        let mut warnings = Vec::new();

        // Later keys override earlier ones, as in a Properties table. Aliases count as
        // the same key.
        let mut last: HashMap<String, (String, String, usize)> = HashMap::new();
        for e in entries {
            let key = java_trim(&e.key).to_string();
            let value = java_trim(&e.value).to_string();
            let canon = canonical_key(&key).to_string();
            if let Some((_, prev_value, prev)) = last.get(&canon) {
                // Properties keeps the last line, but a member silently dropped from
                // the ensemble is worse than a refused file.
                if canon.starts_with("server.") {
                    return Err(ConfigError::BadValue {
                        file,
                        line: e.line,
                        key,
                        value: value.clone(),
                        reason: format!(
                            "given twice (line {prev} has {prev_value:?}): each server id is listed once"
                        ),
                    });
                }
                warnings.push(format!(
                    "{file}:{}: {key} overrides the value given on line {prev}",
                    e.line
                ));
            }
            last.insert(canon, (key, value, e.line));
        }
        // System properties under the file (line 0 marks them): a later property wins
        // over an earlier one, any zoo.cfg line over both.
        for p in sysprops {
            let Some(key) = jvm_flags::config_key(&p.name) else {
                continue;
            };
            let canon = canonical_key(&key).to_string();
            if last.get(&canon).is_some_and(|e| e.2 > 0) {
                continue;
            }
            last.insert(
                canon,
                (format!("-D{}", p.name), java_trim(&p.value).to_string(), 0),
            );
        }
        let mut final_entries: Vec<(String, String, String, usize)> = last
            .into_iter()
            .map(|(canon, (key, value, line))| (canon, key, value, line))
            .collect();
        final_entries.sort_by_key(|e| e.3);

        let mut c = Config {
            tick_time: ZK_DEFAULT_TICK_TIME,
            data_dir: PathBuf::new(),
            data_log_dir: PathBuf::new(),
            four_letter_whitelist: vec!["srvr".into()],
            admin_server_address: "0.0.0.0".into(),
            initial_config: text.to_string(),
            ..Config::default()
        };
        let mut data_dir: Option<PathBuf> = None;
        let mut data_log_dir: Option<PathBuf> = None;
        let mut client_port: Option<(u16, usize)> = None;
        let mut client_host: Option<(IpAddr, usize)> = None;
        let mut min_to: Option<(u32, usize)> = None;
        let mut max_to: Option<(u32, usize)> = None;
        let mut tick_line = None;
        let mut ens = ensemble::EnsembleKeys::default();
        let mut metrics = MetricsKeys::default();
        let mut tls_keys = tls::TlsKeys::default();
        let mut auth_keys = auth::AuthKeys::default();

        for (canon, key, value, line) in &final_entries {
            let line = *line;
            let bad = |b: Bad| ConfigError::BadValue {
                file: file.clone(),
                line,
                key: key.clone(),
                value: value.clone(),
                reason: b.0,
            };
            let v = value.as_str();
            match canon.as_str() {
                "tickTime" => {
                    c.tick_time = at_least(parse_int(v).map_err(bad)?, 1).map_err(bad)? as u32;
                    tick_line = Some(line);
                }
                "dataDir" | "dataLogDir" => {
                    if v.is_empty() {
                        return Err(bad("empty path".into()));
                    }
                    // Relative paths are taken from the working directory, and not warned
                    // about (ZooKeeper warns): the embedded default uses ./data on purpose.
                    if canon == "dataDir" {
                        data_dir = Some(v.into());
                    } else {
                        data_log_dir = Some(v.into());
                    }
                }
                "clientPort" => client_port = Some((parse_port(v).map_err(bad)?, line)),
                "clientPortAddress" => client_host = Some((parse_host(v).map_err(bad)?, line)),
                "secureClientPort" => {
                    c.secure_client_port = Some(parse_port(v).map_err(bad)?);
                    tls_keys.set(canon, v, line);
                }
                k if tls::canonical(k).is_some() => tls_keys.set(k, v, line),
                k if quorum_auth::handles(k) => {
                    let mut warn = |w: String| warnings.push(format!("{file}:{line}: {w}"));
                    quorum_auth::set(&mut c.quorum_auth, k, v, &mut warn).map_err(|r| bad(Bad(r)))?;
                }
                k if auth::canonical(k).is_some() => {
                    auth_keys.set(k, v, line, &mut warnings, &file).map_err(bad)?
                }
                "clientPortListenBacklog" => {
                    c.client_port_listen_backlog = parse_int(v).map_err(bad)? as i32
                }
                "maxClientCnxns" => {
                    c.limits.max_client_cnxns =
                        at_least(parse_int(v).map_err(bad)?, 0).map_err(bad)? as usize
                }
                "minSessionTimeout" | "maxSessionTimeout" => {
                    let n = parse_int(v).map_err(bad)?;
                    // -1 means "derive from tickTime", as in ZooKeeper.
                    let slot = if canon == "minSessionTimeout" {
                        &mut min_to
                    } else {
                        &mut max_to
                    };
                    *slot = match n {
                        -1 => None,
                        n if n < 0 => {
                            return Err(bad("must not be negative (-1 = default)".into()))
                        }
                        n => Some((n as u32, line)),
                    };
                }
                "globalOutstandingLimit" => {
                    c.limits.global_outstanding_limit =
                        at_least(parse_decode_int(v).map_err(bad)?, 1).map_err(bad)? as usize
                }
                "maxProposalsInFlight" => {
                    c.limits.max_proposals_in_flight =
                        at_least(parse_int(v).map_err(bad)?, 1).map_err(bad)? as usize
                }
                "preAllocSize" => {
                    let kib = at_least(parse_long(v).map_err(bad)?, 0).map_err(bad)?;
                    c.pre_alloc_size = (kib as u64)
                        .checked_mul(1024)
                        .ok_or_else(|| bad("too large".into()))?;
                }
                "snapCount" => {
                    // SyncRequestProcessor needs at least 2 (it snapshots at a random
                    // point in [snapCount/2, snapCount]).
                    c.snap_count =
                        at_least(parse_decode_int(v).map_err(bad)?, 2).map_err(bad)? as u32
                }
                "autopurge.snapRetainCount" => {
                    let n = parse_int(v).map_err(bad)?;
                    if n < MIN_SNAP_RETAIN_COUNT as i64 {
                        warnings.push(format!(
                            "{file}:{line}: invalid autopurge.snapRetainCount: {n}; using {MIN_SNAP_RETAIN_COUNT}"
                        ));
                        c.autopurge_snap_retain_count = MIN_SNAP_RETAIN_COUNT;
                    } else {
                        c.autopurge_snap_retain_count = n as u32;
                    }
                }
                "autopurge.purgeInterval" => {
                    c.autopurge_purge_interval_ms = parse_purge_interval(v).map_err(bad)?
                }
                "4lw.commands.whitelist" => {
                    let mut list = Vec::new();
                    for w in v.split(',').map(|w| java_trim(w).to_ascii_lowercase()) {
                        if w.is_empty() {
                            continue;
                        }
                        if w == "*" {
                            list = vec!["*".to_string()];
                            break;
                        }
                        if !KNOWN_FOUR_LETTER_WORDS.contains(&w.as_str()) {
                            warnings.push(format!(
                                "{file}:{line}: 4lw.commands.whitelist: unknown four-letter word {w:?}"
                            ));
                        }
                        if !list.contains(&w) {
                            list.push(w);
                        }
                    }
                    if !list.iter().any(|w| w == "*" || w == "srvr") {
                        // zkServer.sh status needs srvr; ZooKeeper always allows it.
                        list.push("srvr".into());
                    }
                    c.four_letter_whitelist = list;
                }
                "jute.maxbuffer" => {
                    c.limits.max_buffer =
                        at_least(parse_decode_int(v).map_err(bad)?, 1).map_err(bad)? as usize
                }
                "extendedTypesEnabled" => c.extended_types_enabled = parse_bool(v).map_err(bad)?,
                "enforceQuota" => c.enforce_quota = parse_bool(v).map_err(bad)?,
                "DigestAuthenticationProvider.superDigest" => {
                    // DigestAuthenticationProvider compares "super:" + base64(sha1) with
                    // this string verbatim; check its shape to catch a pasted password.
                    let Some(digest) = v.strip_prefix("super:") else {
                        return Err(bad("must be super:<base64 sha1 digest>".into()));
                    };
                    let ok = digest.len() == 28
                        && digest.ends_with('=')
                        && digest[..27]
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
                    if !ok {
                        return Err(bad(
                            "must be super:<base64 sha1 digest> (28 characters)".into()
                        ));
                    }
                    c.super_digest = Some(v.to_string());
                }
                "forceSync" => {
                    let (on, warning) = parse_force_sync(v);
                    c.force_sync = on;
                    if let Some(w) = warning {
                        warnings.push(format!("{file}:{line}: {w}"));
                    }
                }
                "fsync.warningthresholdms" => {
                    c.fsync_warning_threshold_ms =
                        at_least(parse_decode(v).map_err(bad)?, 0).map_err(bad)? as u64
                }
                "nio.sessionlessCnxnTimeout" => {
                    c.sessionless_cnxn_timeout_ms =
                        at_least(parse_decode_int(v).map_err(bad)?, 1).map_err(bad)? as u64
                }
                "corral.logFormat" => {
                    c.log_format =
                        LogFormat::parse(v).ok_or_else(|| bad("must be text or json".into()))?
                }
                "corral.logLevel" => {
                    if v.is_empty() {
                        return Err(bad("empty filter".into()));
                    }
                    c.log_level = Some(v.to_string());
                }
                "admin.enableServer" => c.admin_enable_server = parse_bool(v).map_err(bad)?,
                "admin.serverAddress" => {
                    if v.is_empty() {
                        return Err(bad("must be a host name or address".into()));
                    }
                    c.admin_server_address = v.to_string();
                }
                "admin.commandURL" => {
                    if !v.starts_with('/') || v.contains(['?', '#', ' ']) {
                        return Err(bad("must be a path starting with /".into()));
                    }
                    // Jetty maps `<url>/*`: a trailing slash names the same prefix.
                    let trimmed = v.trim_end_matches('/');
                    c.admin_command_url = trimmed.to_string();
                }
                "admin.idleTimeout" => {
                    c.admin_idle_timeout_ms =
                        at_least(parse_decode_int(v).map_err(bad)?, 1).map_err(bad)? as u32
                }
                "admin.snapshot.enabled" => {
                    c.admin_snapshot_enabled = parse_bool(v).map_err(bad)?
                }
                "admin.restore.enabled" => c.admin_restore_enabled = parse_bool(v).map_err(bad)?,
                "admin.serverPort" => {
                    let n = parse_decode_int(v).map_err(bad)?;
                    c.admin_server_port =
                        u16::try_from(n).map_err(|_| bad("port out of range 0-65535".into()))?;
                }
                "znode.container.checkIntervalMs" => {
                    c.container_check_interval_ms =
                        at_least(parse_decode_int(v).map_err(bad)?, 1).map_err(bad)? as u64
                }
                "znode.container.maxPerMinute" => {
                    c.container_max_per_minute =
                        at_least(parse_decode_int(v).map_err(bad)?, 1).map_err(bad)? as u32
                }
                "znode.container.maxNeverUsedIntervalMs" => {
                    c.container_max_never_used_interval_ms =
                        at_least(parse_decode(v).map_err(bad)?, 0).map_err(bad)? as u64
                }
                "initLimit" | "syncLimit" => {
                    // 0 means "not set" to ZooKeeper; an ensemble refuses it later.
                    let n = at_least(parse_int(v).map_err(bad)?, 0).map_err(bad)? as u32;
                    if canon == "initLimit" {
                        ens.init_limit = Some((n, line));
                    } else {
                        ens.sync_limit = Some((n, line));
                    }
                }
                "connectToLearnerMasterLimit" => {
                    c.connect_to_learner_master_limit =
                        at_least(parse_int(v).map_err(bad)?, 0).map_err(bad)? as u32
                }
                "electionAlg" => {
                    if parse_int(v).map_err(bad)? != ELECTION_ALG as i64 {
                        return Err(bad(
                            "only 3 (fast leader election) is supported, as in ZooKeeper 3.8"
                                .into(),
                        ));
                    }
                }
                "peerType" => {
                    let t = match v.to_lowercase().as_str() {
                        "observer" => LearnerType::Observer,
                        "participant" => LearnerType::Participant,
                        _ => return Err(bad("must be observer or participant".into())),
                    };
                    ens.peer_type = Some((t, line));
                }
                "standaloneEnabled" => {
                    c.standalone_enabled = parse_bool(v).map_err(bad)?;
                    ens.standalone_line = Some(line);
                }
                "reconfigEnabled" => {
                    c.reconfig_enabled = parse_bool(v).map_err(bad)?;
                    if c.reconfig_enabled {
                        warnings.push(format!(
                            "{file}:{line}: reconfigEnabled: corral does not support dynamic reconfiguration; the membership stays as written here"
                        ));
                    }
                }
                "syncEnabled" => c.sync_enabled = parse_bool(v).map_err(bad)?,
                "quorumListenOnAllIPs" => c.quorum_listen_on_all_ips = parse_bool(v).map_err(bad)?,
                "electionPortBindRetry" => {
                    // ZooKeeper falls back to 3 on a negative value; corral refuses it.
                    c.election_port_bind_retry = at_least(parse_decode_int(v).map_err(bad)?, 0)
                        .map_err(bad)? as u32
                }
                "cnxTimeout" => {
                    c.cnx_timeout_ms =
                        at_least(parse_int(v).map_err(bad)?, 0).map_err(bad)? as u32
                }
                "multiAddress.enabled" => {
                    if parse_bool(v).map_err(bad)? {
                        return Err(bad(
                            "corral does not support multiAddress (several addresses per server)"
                                .into(),
                        ));
                    }
                }
                "dynamicConfigFile" => {
                    return Err(bad(
                        "dynamic configuration files are not supported by corral (nor is reconfig): put the server.N lines in this file"
                            .into(),
                    ))
                }
                "version" => {
                    ens.version = Some((
                        crate::quorum::verifier::parse_version(v).map_err(|r| bad(Bad(r)))?,
                        line,
                    ))
                }
                "shards" => {
                    c.shards = Some(at_least(parse_int(v).map_err(bad)?, 1).map_err(bad)? as usize)
                }
                "pinShards" => c.pin_shards = Some(parse_bool(v).map_err(bad)?),
                "logAppendsInFlight" => {
                    let max = crate::storage::log::MAX_APPENDS_IN_FLIGHT as i64;
                    let n = at_least(parse_int(v).map_err(bad)?, 1).map_err(bad)?;
                    if n > max {
                        return Err(bad(Bad(format!("must be at most {max}"))));
                    }
                    c.log_appends_in_flight = n as usize;
                }
                k if k.starts_with("server.") => {
                    let sid = crate::quorum::verifier::parse_sid(&k["server.".len()..])
                        .map_err(|r| bad(Bad(r)))?;
                    let server = crate::quorum::verifier::QuorumServer::parse(sid, v)
                        .map_err(|e| bad(Bad(e.reason)))?;
                    ens.servers.push(ensemble::ServerLine {
                        server,
                        key: key.clone(),
                        value: value.clone(),
                        line,
                    });
                }
                "metricsProvider.className" => metrics.class = Some((v.to_string(), line)),
                "metricsProvider.httpHost" => {
                    metrics.host = Some(parse_host(v).map_err(bad)?)
                }
                "metricsProvider.httpPort" => {
                    metrics.port = Some(parse_port(v).map_err(bad)?)
                }
                "metricsProvider.exportJvmInfo" => {
                    metrics.export_jvm_info = Some((parse_bool(v).map_err(bad)?, line))
                }
                // The Java provider's pool that feeds its summaries: corral computes
                // them at each scrape, so only the values are checked.
                "metricsProvider.numWorkerThreads" | "metricsProvider.maxQueueSize" => {
                    parse_int(v).map_err(bad)?;
                }
                "metricsProvider.workerShutdownTimeoutMs" => {
                    parse_long(v).map_err(bad)?;
                }
                k if UNSUPPORTED_KEYS.contains(&k)
                    || k.starts_with("metricsProvider.")
                    || k.starts_with("group.")
                    || k.starts_with("weight.") =>
                {
                    if k.starts_with("group.") || k.starts_with("weight.") {
                        ens.hierarchical
                            .get_or_insert((key.clone(), value.clone(), line));
                    }
                    warnings.push(format!(
                        "{file}:{line}: {key} is not supported by corral; ignored"
                    ));
                }
                _ => warnings.push(format!("{file}:{line}: unknown key {key}; ignored")),
            }
        }
        c.data_dir = data_dir.ok_or_else(|| ConfigError::Missing {
            file: file.clone(),
            key: "dataDir".into(),
        })?;
        c.data_log_dir = data_log_dir.unwrap_or_else(|| c.data_dir.clone());

        if let (None, Some((_, line))) = (client_port, client_host) {
            let value = final_entries
                .iter()
                .find(|e| e.0 == "clientPortAddress")
                .map(|e| e.2.clone())
                .unwrap_or_default();
            return Err(ConfigError::BadValue {
                file,
                line,
                key: "clientPortAddress".into(),
                value,
                reason: "clientPortAddress is set but clientPort is not set".into(),
            });
        }
        // Without a host every address, as InetSocketAddress(port).
        let static_client = client_port.map(|(port, line)| {
            let ip = client_host
                .map(|(ip, _)| ip)
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
            (SocketAddr::new(ip, port), line)
        });
        ensemble::setup_quorum_peer(&mut c, ens, static_client, myid, &file, &mut warnings)?;
        c.metrics_provider = metrics.provider(&file, &final_entries, &mut warnings)?;
        c.auth = auth_keys.finish().map_err(|b| ConfigError::BadValue {
            file: file.clone(),
            line: b.line,
            key: b.key,
            value: b.value,
            reason: b.reason,
        })?;
        c.tls = tls_keys
            .finish(client_host.map(|h| h.0), &file, &mut warnings)
            .map_err(|b| ConfigError::BadValue {
                file: file.clone(),
                line: b.line,
                key: b.key,
                value: b.value,
                reason: b.reason,
            })?;
        quorum_auth::validate(&c.quorum_auth).map_err(|(key, reason)| {
            let (value, line) = final_entries
                .iter()
                .find(|e| e.0 == key)
                .map(|e| (e.2.clone(), e.3))
                .unwrap_or_default();
            ConfigError::BadValue {
                file: file.clone(),
                line,
                key: key.into(),
                value,
                reason,
            }
        })?;
        // QuorumPeerConfig.configureSSLAuth: a secure client port registers the x509
        // provider when no `authProvider.x509` names one.
        if c.tls.secure_client_address.is_some() {
            c.auth.x509_provider = true;
        }

        c.min_session_timeout = min_to.map(|m| m.0).unwrap_or(c.tick_time.saturating_mul(2));
        c.max_session_timeout = max_to
            .map(|m| m.0)
            .unwrap_or(c.tick_time.saturating_mul(20));
        if c.min_session_timeout > c.max_session_timeout {
            // Blame whichever of the three keys came last in the file.
            let (key, line, value) = [
                min_to.map(|(v, l)| ("minSessionTimeout", l, v)),
                max_to.map(|(v, l)| ("maxSessionTimeout", l, v)),
                tick_line.map(|l| ("tickTime", l, c.tick_time)),
            ]
            .into_iter()
            .flatten()
            .max_by_key(|e| e.1)
            .unwrap_or(("minSessionTimeout", 0, c.min_session_timeout));
            return Err(ConfigError::BadValue {
                file,
                line,
                key: key.into(),
                value: value.to_string(),
                reason: format!(
                    "minSessionTimeout ({}) must not be larger than maxSessionTimeout ({})",
                    c.min_session_timeout, c.max_session_timeout
                ),
            });
        }
        Ok((c, warnings))
    }

    /// Reads and parses the zoo.cfg at `path` (the path names the file in messages),
    /// and `dataDir/myid` if it exists (relative to the working directory when dataDir
    /// is, as the server uses it).
    pub fn load(path: &Path) -> Result<(Config, Vec<String>), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let myid = match data_dir_in(&text) {
            Some(dir) => read_myid(&dir.join("myid"))?,
            None => None,
        };
        // zkEnv.sh sources java.env from the configuration directory.
        let java_env = path
            .parent()
            .map(|d| d.join("java.env"))
            .filter(|p| p.is_file())
            .map(|p| {
                std::fs::read_to_string(&p).map_err(|source| ConfigError::Io { path: p, source })
            })
            .transpose()?;
        let sysprops = jvm_flags::system_properties(
            std::env::var("SERVER_JVMFLAGS").ok().as_deref(),
            std::env::var("JVMFLAGS").ok().as_deref(),
            java_env.as_deref(),
        )
        .map_err(ConfigError::Auth)?;
        let (mut c, mut warnings) = Config::parse_with_sysprops(
            &text,
            &path.display().to_string(),
            myid.as_deref(),
            &sysprops,
        )?;
        c.auth
            .load_login_config(&|p| std::fs::read_to_string(p), &mut warnings)
            .map_err(ConfigError::Auth)?;
        Ok((c, warnings))
    }

    /// ZooKeeper's `isDistributed`: there are `server.N` lines and either more than
    /// one participant or `standaloneEnabled=false`. Otherwise the server runs
    /// standalone, even with a (single-participant) server list.
    pub fn is_distributed(&self) -> bool {
        self.quorum
            .as_ref()
            .is_some_and(|q| !self.standalone_enabled || q.voter_count() > 1)
    }

    /// Whether each executor is pinned to its own core: `pinShards`, off unless set.
    /// Pinned executors of several busy servers on the same cores wait for each other:
    /// on two cores, a 3-voter corral ensemble on loopback did 22k and 75k writes/s at
    /// 32 and 256 in flight pinned against 25k and 97k not pinned, and pinned, with each
    /// server in its own scheduling group (its own session, as systemd services or the
    /// benchmark harness start them), its slowest writes took 0.4-0.6 s against
    /// 20-60 ms. A server alone on its host was once faster pinned (standalone writes
    /// at 32 in flight: 75k against 67k/s), while each log append's fdatasync ran on an
    /// io_uring worker pinned with the shard; since appends are DSYNC writes it is
    /// faster unpinned as well: 68-74k against 54-64k writes/s at 32 in flight and
    /// 308-341k against 284-325k at 256 (four alternating rounds, two cores shared
    /// with the client), reads about the same (getData at 128 in flight 820-861k
    /// against 817-887k/s, at 32 289-305k against 280-303k, at 8 78-82k against
    /// 86-90k; p99 at a fixed 38,000/s 0.64 against 0.66-0.70 ms).
    pub fn shards_pinned(&self) -> bool {
        self.pin_shards.unwrap_or(false)
    }

    /// The number of shards: `shards` if set; otherwise the cores divided among the
    /// members of this server's ensemble that run on this host (at least one each).
    /// Shard-per-core means a shard per core this server has: three voters on two
    /// cores with two shards each ran six executors on two cores (and a cross-shard hop
    /// for each write of a client on a second shard); with one each, a 3-voter ensemble
    /// on loopback did 18.8-19.2k and 77-82k writes/s at 32 and 256 in flight against
    /// 14.8-15.4k and 53-63k, at less CPU per write (75-76 against 88-95 us at 32).
    pub fn shard_count(&self, cpus: usize) -> usize {
        self.shards
            .unwrap_or_else(|| cpus / self.members_on_this_host())
            .max(1)
    }

    /// How many members of this server's ensemble (itself included, observers too) run
    /// on its host: those whose quorum address has the same host name, or which are on
    /// loopback when it is. 1 for a standalone server.
    pub fn members_on_this_host(&self) -> usize {
        let (Some(q), Some(me)) = (self.quorum.as_ref(), self.my_server()) else {
            return 1;
        };
        if !self.is_distributed() {
            return 1;
        }
        let loopback = |h: &str| {
            h.eq_ignore_ascii_case("localhost")
                || h.parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        };
        let mine = &me.quorum_addr.0;
        let others = q
            .voters()
            .chain(q.observers())
            .filter(|o| {
                o.id != me.id
                    && (o.quorum_addr.0.eq_ignore_ascii_case(mine)
                        || (loopback(&o.quorum_addr.0) && loopback(mine)))
            })
            .count();
        1 + others
    }

    /// This server's `server.N` line, when myid names one.
    pub fn my_server(&self) -> Option<&crate::quorum::verifier::QuorumServer> {
        self.quorum.as_ref()?.get(self.server_id?)
    }

    /// The embedded default configuration (conf/zoo.cfg).
    pub fn embedded() -> Config {
        Config::parse(EMBEDDED_DEFAULT, "<embedded zoo.cfg>")
            .expect("the embedded zoo.cfg is valid (tested)")
            .0
    }

    pub fn prep_config(&self) -> PrepConfig {
        PrepConfig {
            extended_types: self.extended_types_enabled,
            enforce_quota: self.enforce_quota,
            max_buffer: self.limits.max_buffer,
        }
    }

    /// Whether four-letter word `cmd` may run. `srvr` always may (ZooKeeper adds it to
    /// every whitelist because zkServer.sh status uses it); "*" allows every known word.
    pub fn four_letter_allowed(&self, cmd: &str) -> bool {
        cmd == "srvr"
            || self
                .four_letter_whitelist
                .iter()
                .any(|w| (w == "*" && KNOWN_FOUR_LETTER_WORDS.contains(&cmd)) || w == cmd)
    }

    /// The `conf` four-letter word's lines, in `ZooKeeperServer.dumpConf` order, without
    /// the two directory sizes (the admin formatter inserts `dataDirSize` and
    /// `dataLogSize`, which change as the server runs). `clientPort` is the configured
    /// port; see [`Config::conf_lines_for_port`] when it was 0.
    pub fn to_conf_lines(&self) -> Vec<String> {
        self.conf_lines_for_port(self.client_port_address.port())
    }

    /// [`Config::to_conf_lines`] reporting `bound_port`, the port actually listened on
    /// (ZooKeeper prints the bound port, which differs when clientPort=0). An ensemble
    /// member adds what `QuorumZooKeeperServer.dumpConf` adds: the limits, electionAlg,
    /// its own election and quorum ports, `peerType` as LearnerType's ordinal
    /// (participant 0, observer 1), then `membership: ` and the config string's lines.
    /// ZooKeeper prints the config string without a final newline, so its `conf`
    /// output ends in `version=<hex>` with none.
    pub fn conf_lines_for_port(&self, bound_port: u16) -> Vec<String> {
        let abs = |p: &Path| {
            std::path::absolute(p)
                .unwrap_or_else(|_| p.to_path_buf())
                .display()
                .to_string()
        };
        let mut lines = vec![
            format!("clientPort={bound_port}"),
            format!(
                "secureClientPort={}",
                self.secure_client_port.map(i32::from).unwrap_or(-1)
            ),
            format!("dataDir={}", abs(&self.data_dir)),
            format!("dataLogDir={}", abs(&self.data_log_dir)),
            format!("tickTime={}", self.tick_time),
            format!("maxClientCnxns={}", self.limits.max_client_cnxns),
            format!("minSessionTimeout={}", self.min_session_timeout),
            format!("maxSessionTimeout={}", self.max_session_timeout),
            format!(
                "clientPortListenBacklog={}",
                self.client_port_listen_backlog
            ),
        ];
        match (self.is_distributed(), &self.quorum, self.my_server()) {
            (true, Some(qv), Some(me)) => {
                lines.push(format!("serverId={}", me.id));
                lines.push(format!("initLimit={}", self.init_limit));
                lines.push(format!("syncLimit={}", self.sync_limit));
                lines.push(format!("electionAlg={ELECTION_ALG}"));
                lines.push(format!("electionPort={}", me.election_addr.1));
                lines.push(format!("quorumPort={}", me.quorum_addr.1));
                let ordinal = match self.peer_type {
                    LearnerType::Participant => 0,
                    LearnerType::Observer => 1,
                };
                lines.push(format!("peerType={ordinal}"));
                lines.push("membership: ".to_string());
                lines.extend(qv.to_config_string().split('\n').map(String::from));
            }
            // Standalone ZooKeeper reports server id 0.
            _ => lines.push("serverId=0".to_string()),
        }
        lines
    }
}

#[cfg(test)]
mod tests;
