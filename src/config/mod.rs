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
//! a limit should stop the server, not be ignored. Unknown keys, keys corral does not
//! implement, and ensemble keys a standalone server ignores are returned as warnings.
//!
//! Parsing is sans-IO (`Config::parse` takes the text); only [`Config::load`] reads a
//! file, and only `clientPortAddress` host names other than `localhost` are resolved
//! (once, at startup), as ZooKeeper does with `InetAddress.getByName`.

pub mod properties;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use crate::limits::Limits;
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
    #[error("{file}:{line}: malformed \\uxxxx escape")]
    Syntax { file: String, line: usize },
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One `server.N=...` line of an ensemble configuration, kept for later ensemble work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerEntry {
    /// The `N` of `server.N` (the server id, `myid`).
    pub id: u64,
    /// The value as written: `host:quorumPort:electionPort[:role][;[clientAddr:]clientPort]`.
    pub spec: String,
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
    /// `clientPortAddress` and `clientPort`. Without `clientPortAddress` every address
    /// (0.0.0.0) is bound, as ZooKeeper. Port 0 asks the OS for a free port.
    pub client_port_address: SocketAddr,
    /// `secureClientPort`: parsed, but TLS is not supported (a warning says so).
    pub secure_client_port: Option<u16>,
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
    /// corral's own key `shards`: executors (default: every core).
    pub shards: Option<usize>,
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
    /// `forceSync`: fsync the log before acknowledging. Only "no" turns it off in
    /// ZooKeeper; corral also takes "false".
    pub force_sync: bool,
    /// `admin.enableServer`. corral has no HTTP AdminServer, so this is false unless the
    /// file says otherwise (then a warning says it is not served).
    pub admin_enable_server: bool,
    /// `admin.serverPort` (default 8080).
    pub admin_server_port: u16,
    /// `initLimit` (ticks): kept for ensemble work; standalone ignores it.
    pub init_limit: Option<u32>,
    /// `syncLimit` (ticks): kept for ensemble work; standalone ignores it.
    pub sync_limit: Option<u32>,
    /// `server.N` lines, sorted by id: kept for ensemble work; standalone ignores them.
    pub servers: Vec<ServerEntry>,
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
            admin_enable_server: false,
            admin_server_port: 8080,
            init_limit: None,
            sync_limit: None,
            servers: Vec::new(),
        }
    }
}

/// Keys ZooKeeper reads that corral does not implement: accepted with a warning so a
/// ZooKeeper zoo.cfg still starts.
const UNSUPPORTED_KEYS: &[&str] = &[
    "secureClientPortAddress",
    "localSessionsEnabled",
    "localSessionsUpgradingEnabled",
    "observerMasterPort",
    "connectToLearnerMasterLimit",
    "electionAlg",
    "quorumListenOnAllIPs",
    "peerType",
    "syncEnabled",
    "dynamicConfigFile",
    "standaloneEnabled",
    "reconfigEnabled",
    "sslQuorum",
    "portUnification",
    "sslQuorumReloadCertFiles",
    "quorum.auth.enableSasl",
    "quorum.auth.serverRequireSasl",
    "quorum.auth.learnerRequireSasl",
    "quorum.auth.learner.saslLoginContext",
    "quorum.auth.server.saslLoginContext",
    "quorum.auth.kerberos.servicePrincipal",
    "quorum.cnxn.threads.size",
    "metricsProvider.className",
    "multiAddress.enabled",
    "multiAddress.reachabilityCheckTimeoutMs",
    "multiAddress.reachabilityCheckEnabled",
    "oraclePath",
    "serverCnxnFactory",
    "authProvider",
    "admin.serverAddress",
    "admin.commandURL",
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

/// `forceSync`: ZooKeeper turns syncing off only for exactly "no".
fn parse_force_sync(v: &str) -> Result<bool, Bad> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        _ => Err("must be yes or no".into()),
    }
}

/// `server.N` value: `host:port:port[:role][;clientPart]`, lightly checked so an obvious
/// typo is caught now rather than when ensembles arrive.
fn check_server_spec(v: &str) -> Result<(), Bad> {
    // Several addresses may be given, separated by '|' (multiAddress).
    let quorum = v.split(';').next().unwrap_or("");
    for addr in quorum.split('|') {
        // "[v6]:p:p" or "host:p:p[:role]".
        let rest = if let Some(stripped) = addr.strip_prefix('[') {
            match stripped.find(']') {
                Some(i) => &stripped[i + 1..],
                None => return Err("unterminated [ in address".into()),
            }
        } else {
            addr.find(':').map(|i| &addr[i..]).unwrap_or("")
        };
        let parts: Vec<&str> = rest.trim_start_matches(':').split(':').collect();
        if rest.is_empty() || parts.len() < 2 || parts.len() > 3 {
            return Err("expected host:quorumPort:electionPort[:participant|observer]".into());
        }
        parse_port(parts[0].trim())?;
        parse_port(parts[1].trim())?;
        if let Some(role) = parts.get(2) {
            let r = role.trim().to_ascii_lowercase();
            if r != "participant" && r != "observer" {
                return Err("role must be participant or observer".into());
            }
        }
    }
    Ok(())
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
        other => other,
    }
}

/// Java's `String.trim`: drops every char up to and including U+0020 at both ends.
fn java_trim(s: &str) -> &str {
    s.trim_matches(|c: char| c <= ' ')
}

impl Config {
    /// Parses zoo.cfg `text`; `source_name` (usually the path) names the file in errors
    /// and warnings. Returns the configuration and the warnings to log.
    pub fn parse(text: &str, source_name: &str) -> Result<(Config, Vec<String>), ConfigError> {
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
            if let Some((_, _, prev)) = last.get(&canon) {
                warnings.push(format!(
                    "{file}:{}: {key} overrides the value given on line {prev}",
                    e.line
                ));
            }
            last.insert(canon, (key, value, e.line));
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
            ..Config::default()
        };
        let mut data_dir: Option<PathBuf> = None;
        let mut data_log_dir: Option<PathBuf> = None;
        let mut client_port: Option<(u16, usize)> = None;
        let mut client_host: Option<(IpAddr, usize)> = None;
        let mut min_to: Option<(u32, usize)> = None;
        let mut max_to: Option<(u32, usize)> = None;
        let mut tick_line = None;

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
                    warnings.push(format!(
                        "{file}:{line}: secureClientPort: TLS is not supported by corral; the port is not opened"
                    ));
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
                "forceSync" => c.force_sync = parse_force_sync(v).map_err(bad)?,
                "admin.enableServer" => {
                    c.admin_enable_server = parse_bool(v).map_err(bad)?;
                    if c.admin_enable_server {
                        warnings.push(format!(
                            "{file}:{line}: admin.enableServer: corral has no HTTP AdminServer; use the four-letter words"
                        ));
                    }
                }
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
                    let n = at_least(parse_int(v).map_err(bad)?, 1).map_err(bad)? as u32;
                    if canon == "initLimit" {
                        c.init_limit = Some(n);
                    } else {
                        c.sync_limit = Some(n);
                    }
                    warnings.push(format!(
                        "{file}:{line}: {key} only matters to an ensemble; standalone corral ignores it"
                    ));
                }
                "shards" => {
                    c.shards = Some(at_least(parse_int(v).map_err(bad)?, 1).map_err(bad)? as usize)
                }
                k if k.starts_with("server.") => {
                    let id = k["server.".len()..]
                        .parse::<u64>()
                        .map_err(|_| bad("the N of server.N must be a number".into()))?;
                    check_server_spec(v).map_err(bad)?;
                    c.servers.push(ServerEntry {
                        id,
                        spec: v.to_string(),
                    });
                    warnings.push(format!(
                        "{file}:{line}: {key} only matters to an ensemble; standalone corral ignores it"
                    ));
                }
                k if UNSUPPORTED_KEYS.contains(&k)
                    || k.starts_with("metricsProvider.")
                    || k.starts_with("ssl.")
                    || k.starts_with("group.")
                    || k.starts_with("weight.") =>
                {
                    warnings.push(format!(
                        "{file}:{line}: {key} is not supported by corral; ignored"
                    ));
                }
                _ => warnings.push(format!("{file}:{line}: unknown key {key}; ignored")),
            }
        }
        c.servers.sort_by_key(|s| s.id);

        c.data_dir = data_dir.ok_or_else(|| ConfigError::Missing {
            file: file.clone(),
            key: "dataDir".into(),
        })?;
        c.data_log_dir = data_log_dir.unwrap_or_else(|| c.data_dir.clone());

        let (port, _) = client_port.ok_or_else(|| ConfigError::Missing {
            file: file.clone(),
            key: "clientPort".into(),
        })?;
        let ip = client_host
            .map(|(ip, _)| ip)
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        c.client_port_address = SocketAddr::new(ip, port);

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

    /// Reads and parses the zoo.cfg at `path` (the path names the file in messages).
    pub fn load(path: &Path) -> Result<(Config, Vec<String>), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, &path.display().to_string())
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
    /// (ZooKeeper prints the bound port, which differs when clientPort=0).
    pub fn conf_lines_for_port(&self, bound_port: u16) -> Vec<String> {
        let abs = |p: &Path| {
            std::path::absolute(p)
                .unwrap_or_else(|_| p.to_path_buf())
                .display()
                .to_string()
        };
        vec![
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
            // Standalone ZooKeeper reports server id 0.
            "serverId=0".to_string(),
        ]
    }
}

#[cfg(test)]
mod tests;
