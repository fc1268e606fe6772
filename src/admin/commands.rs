//! The AdminServer's commands: what ZooKeeper 3.8/3.9's Jetty AdminServer answers at
//! `http://host:8080/commands/<name>` (its `Commands.java`), as JSON with the same keys
//! and the same JSON types, so Kubernetes probes (`/commands/ruok`) and scripts that
//! read `/commands/monitor` work against corral unchanged.
//!
//! Sans-IO, like the four-letter words beside it: the server gathers [`Facts`] (an
//! [`AdminView`] plus the few things only the HTTP commands print) and this module
//! routes a request ([`route`]), builds each command's [`CommandResponse`] ([`run`]),
//! checks the `Authorization` header of the commands that need it ([`check_auth`]),
//! gates and rate-limits `snapshot` and `restore` ([`snapshot_refusal`],
//! [`restore_refusal`], [`RateLimiter`]) and prints the JSON the way Jackson's
//! pretty printer does ([`Json::to_pretty`]). Side effects (resetting statistics,
//! storing the trace mask, taking and streaming a snapshot, restoring one) are the server's
//! (`src/server/admin_http.rs`); here they are only named.
//!
//! What ZooKeeper does and corral copies: every response carries `command` (the
//! primary name) and `error` (null, or why not); an unknown name is answered 200 with
//! `"error": "Unknown command: <name>"`; a command that needs a running server answers
//! 200 with ZooKeeper's "not currently serving" error when it is not; `GET /commands`
//! lists the primary names as HTML links; methods the servlet does not take are
//! answered as Jetty answers them (405, TRACE 403, unknown methods 501).
//!
//! Where corral has no such thing the value is the one ZooKeeper prints when it has
//! none: no secure port (`secure_connections` empty), no observer-side learner
//! handlers (`observers` lists none, with the count of synced observers), no JVM
//! (`system_properties` lists what corral knows, all strings).

use std::collections::BTreeMap;

use super::{java, AdminView, ConnectionInfo, MetricValue, ZK_NOT_SERVING};
use crate::config::Config;
use crate::proto::records::{Acl, Id};
use crate::quorum::verifier::QuorumServer;
use crate::quorum::{LearnerType, Sid};

/// `ZooTrace`'s default text trace mask (client requests, server packets, sessions,
/// warnings), what `get_trace_mask` answers until `set_trace_mask` changes it.
pub const DEFAULT_TRACE_MASK: i64 = 306;

/// The minimum interval between two `snapshot` (or two `restore`) runs, ZooKeeper's
/// `zookeeper.admin.rateLimiterIntervalInMS` default: streaming the whole tree is
/// costly.
pub const RATE_LIMIT_INTERVAL_MS: i64 = 300_000;

/// Response headers of `snapshot` (`SnapshotCommand`): the snapshot's zxid as `0x..`
/// and its size in bytes.
pub const HEADER_LAST_ZXID: &str = "last_zxid";
pub const HEADER_SNAPSHOT_SIZE: &str = "snapshot_size";

/// One AdminServer command: its names (primary first, then aliases) and how it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Command {
    pub names: &'static [&'static str],
    /// Answered only while the server serves (`CommandBase.serverRequired`).
    pub server_required: bool,
    /// Needs an `Authorization` header granting ALL on `/` (`AuthRequest`).
    pub auth: bool,
    /// Runs on POST instead of GET (`PostCommand`: only `restore`).
    pub post: bool,
}

impl Command {
    pub fn primary(&self) -> &'static str {
        self.names[0]
    }

    /// The four-letter word whose facts this command prints, for `Detail::for_command`.
    pub fn four_letter_word(&self) -> Option<&'static str> {
        self.names
            .iter()
            .copied()
            .find(|n| super::is_four_letter_word(n))
    }
}

const fn get(names: &'static [&'static str], server_required: bool) -> Command {
    Command {
        names,
        server_required,
        auth: false,
        post: false,
    }
}

/// ZooKeeper 3.9's `Commands` registry (3.8's less `snapshot` and `restore`).
pub const COMMANDS: &[Command] = &[
    get(&["connection_stat_reset", "crst"], true),
    get(&["configuration", "conf", "config"], true),
    get(&["connections", "cons"], true),
    get(&["hash"], true),
    get(&["dirs"], true),
    get(&["dump"], true),
    get(&["environment", "env", "envi"], false),
    get(&["get_trace_mask", "gtmk"], false),
    get(&["initial_configuration", "icfg"], true),
    get(&["is_read_only", "isro"], true),
    get(&["last_snapshot", "lsnp"], true),
    get(&["leader", "lead"], true),
    get(&["monitor", "mntr"], false),
    get(&["observer_connection_stat_reset", "orst"], true),
    Command {
        names: &["restore", "rest"],
        server_required: true,
        auth: true,
        post: true,
    },
    get(&["ruok"], true),
    get(&["set_trace_mask", "stmk"], false),
    Command {
        names: &["snapshot", "snap"],
        server_required: true,
        auth: true,
        post: false,
    },
    get(&["server_stats", "srvr"], true),
    get(&["stats", "stat"], true),
    get(&["stat_reset", "srst"], true),
    get(&["observers", "obsr"], true),
    get(&["system_properties", "sysp"], false),
    get(&["voting_view"], true),
    get(&["watches", "wchc"], true),
    get(&["watches_by_path", "wchp"], true),
    get(&["watch_summary", "wchs"], true),
    get(&["zabstate"], false),
];

/// The command any of whose names is `name` (names are case-sensitive, as ZooKeeper's).
pub fn lookup(name: &str) -> Option<&'static Command> {
    COMMANDS.iter().find(|c| c.names.contains(&name))
}

/// The body of `GET <commandURL>`: a link per primary name, sorted, each line followed
/// by `<br/>` (what `JettyAdminServer.commandLinks` prints).
pub fn command_links(command_url: &str) -> String {
    let mut names: Vec<&str> = COMMANDS.iter().map(|c| c.primary()).collect();
    names.sort_unstable();
    let mut out = String::new();
    for n in names {
        out.push_str(&format!("<a href=\"{command_url}/{n}\">{n}</a>\n<br/>\n"));
    }
    out
}

/// A JSON value whose objects keep their insertion order (ZooKeeper's responses are
/// `LinkedHashMap`s: data first, then `command` and `error`).
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn str(s: impl Into<String>) -> Json {
        Json::Str(s.into())
    }

    fn uint(v: u64) -> Json {
        Json::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }

    /// Jackson's `DefaultPrettyPrinter` layout (what ZooKeeper's `JsonOutputter`
    /// writes): objects one field a line indented by two spaces with `" : "`, arrays
    /// on one line as `[ a, b ]`, empty ones `{ }` and `[ ]`.
    pub fn to_pretty(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0);
        out
    }

    fn write(&self, out: &mut String, depth: usize) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Int(i) => out.push_str(&i.to_string()),
            // JSON has no NaN or Infinity; Jackson would write them bare, which no
            // parser reads back. Never produced by corral's facts; null keeps it valid.
            Json::Float(f) if !f.is_finite() => out.push_str("null"),
            Json::Float(f) => out.push_str(&java::double(*f)),
            Json::Str(s) => write_str(out, s),
            Json::Arr(items) if items.is_empty() => out.push_str("[ ]"),
            Json::Arr(items) => {
                out.push_str("[ ");
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    v.write(out, depth);
                }
                out.push_str(" ]");
            }
            Json::Obj(fields) if fields.is_empty() => out.push_str("{ }"),
            Json::Obj(fields) => {
                out.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push('\n');
                    indent(out, depth + 1);
                    write_str(out, k);
                    out.push_str(" : ");
                    v.write(out, depth + 1);
                }
                out.push('\n');
                indent(out, depth);
                out.push('}');
            }
        }
    }
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

/// A JSON string literal, escaped as Jackson does (quotes, backslashes and control
/// characters; everything else as is).
fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// What ZooKeeper's `CommandResponse` holds: the primary name, an error or none, the
/// data in insertion order, the HTTP status and extra headers.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandResponse {
    pub command: String,
    pub error: Option<String>,
    pub data: Vec<(String, Json)>,
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

impl CommandResponse {
    pub fn new(command: &str) -> CommandResponse {
        CommandResponse {
            command: command.to_string(),
            error: None,
            data: Vec::new(),
            status: 200,
            headers: Vec::new(),
        }
    }

    fn with_error(command: &str, error: impl Into<String>, status: u16) -> CommandResponse {
        CommandResponse {
            error: Some(error.into()),
            status,
            ..CommandResponse::new(command)
        }
    }

    fn put(&mut self, key: &str, value: Json) {
        match self.data.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.data.push((key.to_string(), value)),
        }
    }

    /// `CommandResponse.toMap`: the data, then `command` and `error`. A command that
    /// put its own `error` into the data (`leader`, `set_trace_mask`) keeps it there,
    /// first, as the `LinkedHashMap` does.
    pub fn to_json(&self) -> Json {
        let mut fields = self.data.clone();
        if !fields.iter().any(|(k, _)| k == "command") {
            fields.push(("command".into(), Json::str(&self.command)));
        }
        if !fields.iter().any(|(k, _)| k == "error") {
            let e = match &self.error {
                Some(e) => Json::str(e),
                None => Json::Null,
            };
            fields.push(("error".into(), e));
        }
        Json::Obj(fields)
    }

    /// The response body as ZooKeeper's `JsonOutputter` writes it.
    pub fn body(&self) -> String {
        self.to_json().to_pretty()
    }
}

/// `Unknown command: <name>`, answered 200 as ZooKeeper does.
pub fn unknown_command(name: &str) -> CommandResponse {
    CommandResponse::with_error(name, format!("Unknown command: {name}"), 200)
}

/// How a request is answered, from its method and path alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET <commandURL>` or `<commandURL>/`: [`command_links`], no content type.
    Links,
    /// Run this command (the name is whatever followed the prefix; it may be unknown).
    Run { name: String, post: bool },
    /// Outside `<commandURL>`: Jetty's 404 page.
    NotFound,
    /// A method the servlet does not implement for this path (405, Jetty's page for
    /// POST, an empty body otherwise).
    MethodNotAllowed,
    /// TRACE: refused by ZooKeeper's security constraint (403, no body).
    Forbidden,
    /// OPTIONS: 200 with the allowed methods.
    Options,
    /// A method HTTP servlets do not know (501, no body).
    NotImplemented,
}

/// `Allow` of an OPTIONS answer (the servlet implements GET and POST).
pub const ALLOWED_METHODS: &str = "GET, HEAD, POST, TRACE, OPTIONS";

/// Routes `method` on `path` (already percent-decoded, without the query) under
/// `command_url` (no trailing slash; empty for the root).
pub fn route(method: &str, path: &str, command_url: &str) -> Route {
    let rest = if path == command_url {
        Some("")
    } else {
        path.strip_prefix(command_url)
            .filter(|r| r.starts_with('/'))
    };
    match method {
        "TRACE" => return Route::Forbidden,
        "OPTIONS" if rest.is_some() => return Route::Options,
        "GET" | "HEAD" | "POST" | "OPTIONS" => {}
        "PUT" | "DELETE" => {
            return if rest.is_some() {
                Route::MethodNotAllowed
            } else {
                Route::NotFound
            }
        }
        _ => return Route::NotImplemented,
    }
    let Some(rest) = rest else {
        return Route::NotFound;
    };
    if rest.is_empty() || rest == "/" {
        // The servlet prints the links for GET and POST alike.
        return Route::Links;
    }
    if method == "OPTIONS" {
        return Route::Options;
    }
    Route::Run {
        name: rest[1..].to_string(),
        post: method == "POST",
    }
}

/// Jetty's HTML error page, so a script that shows the body shows the same words.
pub fn error_page(status: u16, reason: &str, message: &str, uri: &str) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let (message, uri) = (esc(message), esc(uri));
    format!(
        "<html>\n<head>\n<meta http-equiv=\"Content-Type\" content=\"text/html;charset=ISO-8859-1\"/>\n\
         <title>Error {status} {message}</title>\n</head>\n<body><h2>HTTP ERROR {status} {message}</h2>\n\
         <table>\n<tr><th>URI:</th><td>{uri}</td></tr>\n<tr><th>STATUS:</th><td>{status}</td></tr>\n\
         <tr><th>MESSAGE:</th><td>{message}</td></tr>\n</table>\n<hr/>{reason}<hr/>\n\n</body>\n</html>\n"
    )
}

/// A quorum member's state, for `leader`, `zabstate`, `observers` and `srvr`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuorumFacts {
    /// `leader`, `follower`, `observer` or `looking`.
    pub mode: String,
    /// ZooKeeper's `ZabState`, lower case: `election`, `discovery`,
    /// `synchronization` or `broadcast`.
    pub zab_state: String,
    /// The established leader's id, when known.
    pub leader: Option<Sid>,
    /// Observers synced with this leader (0 elsewhere).
    pub synced_observers: u64,
}

/// The newest snapshot on disk (`FileTxnSnapLog.getLastSnapshotInfo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub zxid: i64,
    /// Its file's modification time, in seconds since the epoch (as ZooKeeper's
    /// `lastModified() / 1000`).
    pub timestamp_secs: i64,
}

/// Everything the commands print, gathered by the server for one request.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    /// What the four-letter words print (with the details the command needs).
    pub view: AdminView,
    pub config: &'a Config,
    /// The client port actually bound.
    pub client_port: u16,
    /// In an ensemble: this member's state.
    pub quorum: Option<QuorumFacts>,
    pub last_snapshot: Option<SnapshotInfo>,
    /// The current text trace mask.
    pub trace_mask: i64,
    /// The tree's digest at the last applied zxid, for `hash` (when computed).
    pub digest: Option<(i64, i64)>,
}

/// `system_properties`: corral has no JVM; it lists the Java-style properties it can
/// answer truthfully (from `envi`'s facts) and the `zookeeper.*` properties ZooKeeper
/// would have set from this zoo.cfg's AdminServer and four-letter-word keys, sorted.
pub fn system_properties(config: &Config, env: &[(String, String)]) -> Vec<(String, String)> {
    let mut props: BTreeMap<String, String> = env
        .iter()
        .filter(|(k, _)| k.starts_with("os.") || k.starts_with("user."))
        .cloned()
        .collect();
    for (k, v) in [
        ("file.separator", "/"),
        ("line.separator", "\n"),
        ("path.separator", ":"),
    ] {
        props.insert(k.into(), v.into());
    }
    props.insert(
        "zookeeper.admin.enableServer".into(),
        config.admin_enable_server.to_string(),
    );
    props.insert(
        "zookeeper.admin.serverAddress".into(),
        config.admin_server_address.clone(),
    );
    props.insert(
        "zookeeper.admin.serverPort".into(),
        config.admin_server_port.to_string(),
    );
    props.insert(
        "zookeeper.admin.commandURL".into(),
        config.admin_command_url.clone(),
    );
    props.insert(
        "zookeeper.admin.idleTimeout".into(),
        config.admin_idle_timeout_ms.to_string(),
    );
    props.insert(
        "zookeeper.4lw.commands.whitelist".into(),
        config.four_letter_whitelist.join(","),
    );
    props.into_iter().collect()
}

/// The answer to GET command `cmd` (already looked up; not `restore`, which is a
/// POST, nor `snapshot`, which streams: see [`snapshot_refusal`]). `kwargs` are the
/// query parameters, the first value of each. The caller applies what the reset
/// commands and `set_trace_mask` ask for: see [`Effect`].
pub fn run(cmd: &Command, kwargs: &BTreeMap<String, String>, facts: &Facts) -> CommandResponse {
    let name = cmd.primary();
    if cmd.server_required && !facts.view.running {
        return CommandResponse::with_error(name, ZK_NOT_SERVING, 200);
    }
    let mut r = CommandResponse::new(name);
    let view = &facts.view;
    match name {
        "ruok" | "connection_stat_reset" | "stat_reset" | "observer_connection_stat_reset" => {}
        "configuration" => conf(&mut r, facts),
        "connections" => {
            r.put("connections", connections(&view.connections, false));
            r.put("secure_connections", Json::Arr(Vec::new()));
        }
        "hash" => {
            let digests = facts
                .digest
                .iter()
                .map(|(zxid, digest)| {
                    Json::Obj(vec![
                        ("zxid".into(), Json::Int(*zxid)),
                        // DigestCalculator.DIGEST_VERSION, the one corral computes.
                        ("digest_version".into(), Json::Int(2)),
                        ("digest".into(), Json::Int(*digest)),
                    ])
                })
                .collect();
            r.put("digests", Json::Arr(digests));
        }
        "dirs" => {
            r.put("datadir_size", Json::uint(view.data_dir_size));
            r.put("logdir_size", Json::uint(view.log_dir_size));
        }
        "dump" => dump(&mut r, view),
        "environment" => {
            for (k, v) in &view.env {
                r.put(k, Json::str(v));
            }
        }
        "get_trace_mask" => r.put("tracemask", Json::Int(facts.trace_mask)),
        "set_trace_mask" => match kwargs.get("traceMask") {
            None => r.put(
                "error",
                Json::str("setTraceMask requires long traceMask argument"),
            ),
            Some(v) => match parse_java_long(v) {
                Some(mask) => r.put("tracemask", Json::Int(mask)),
                None => r.put(
                    "error",
                    Json::str(format!(
                        "setTraceMask requires long traceMask argument, got {v}"
                    )),
                ),
            },
        },
        "initial_configuration" => r.put(
            "initial_configuration",
            Json::str(&facts.config.initial_config),
        ),
        "is_read_only" => r.put("read_only", Json::Bool(view.stats.read_only)),
        "last_snapshot" => {
            let (zxid, ts) = facts
                .last_snapshot
                .map(|s| (s.zxid, s.timestamp_secs))
                .unwrap_or((-1, -1));
            r.put("zxid", Json::str(java::hex(zxid)));
            r.put("timestamp", Json::Int(ts));
        }
        "leader" => leader(&mut r, facts),
        "monitor" => {
            for (k, v) in super::monitor_values(view) {
                let v = match v {
                    MetricValue::Int(i) => Json::Int(i),
                    MetricValue::Float(f) => Json::Float(f),
                    MetricValue::Text(t) => Json::Str(t),
                };
                r.put(&k, v);
            }
        }
        "server_stats" => srvr(&mut r, facts),
        "stats" => {
            srvr(&mut r, facts);
            r.put("connections", connections(&view.connections, true));
            r.put("secure_connections", Json::Arr(Vec::new()));
        }
        "observers" => {
            let n = facts.quorum.as_ref().map_or(0, |q| q.synced_observers);
            r.put("synced_observers", Json::uint(n));
            // corral's leader does not publish per-learner statistics (LearnerHandler
            // info); the count above is exact.
            r.put("observers", Json::Arr(Vec::new()));
        }
        "system_properties" => {
            for (k, v) in system_properties(facts.config, &view.env) {
                r.put(&k, Json::Str(v));
            }
        }
        "voting_view" => voting_view(&mut r, facts),
        "watches" => {
            let mut by_session: Vec<(i64, Vec<String>)> = Vec::new();
            for w in &view.data_watches {
                match by_session.iter_mut().find(|(s, _)| *s == w.session_id) {
                    Some((_, paths)) => paths.extend(w.paths.iter().cloned()),
                    None => by_session.push((w.session_id, w.paths.clone())),
                }
            }
            let map = by_session
                .into_iter()
                .map(|(sid, mut paths)| {
                    paths.sort();
                    paths.dedup();
                    (
                        sid.to_string(),
                        Json::Arr(paths.into_iter().map(Json::Str).collect()),
                    )
                })
                .collect();
            r.put("session_id_to_watched_paths", Json::Obj(map));
        }
        "watches_by_path" => {
            let mut by_path: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
            for w in &view.data_watches {
                for p in &w.paths {
                    let sids = by_path.entry(p.as_str()).or_default();
                    if !sids.contains(&w.session_id) {
                        sids.push(w.session_id);
                    }
                }
            }
            let map = by_path
                .into_iter()
                .map(|(p, sids)| {
                    (
                        p.to_string(),
                        Json::Arr(sids.into_iter().map(Json::Int).collect()),
                    )
                })
                .collect();
            r.put("path_to_session_ids", Json::Obj(map));
        }
        "watch_summary" => {
            if let Some(s) = view.watches_summary {
                r.put("num_connections", Json::uint(s.num_connections as u64));
                r.put("num_paths", Json::uint(s.num_paths as u64));
                r.put("num_total_watches", Json::uint(s.total_watches as u64));
                return r;
            }
            let mut paths: Vec<&str> = view
                .data_watches
                .iter()
                .flat_map(|w| w.paths.iter().map(String::as_str))
                .collect();
            let total = paths.len();
            paths.sort_unstable();
            paths.dedup();
            r.put(
                "num_connections",
                Json::uint(view.data_watches.len() as u64),
            );
            r.put("num_paths", Json::uint(paths.len() as u64));
            r.put("num_total_watches", Json::uint(total as u64));
        }
        "zabstate" => zabstate(&mut r, facts),
        // `snapshot` and `restore` are answered by their own functions.
        _ => return unknown_command(name),
    }
    r
}

/// What the server must do for a command besides answering it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    None,
    /// `stat_reset`: zero the server statistics.
    ResetServerStats,
    /// `connection_stat_reset`: zero every connection's statistics.
    ResetConnectionStats,
    /// `set_trace_mask` with a valid mask.
    SetTraceMask(i64),
}

/// The side effect of `cmd` with `kwargs`, applied before the answer is built (so
/// `stat_reset` followed by `srvr` shows zeroes).
pub fn effect(cmd: &Command, kwargs: &BTreeMap<String, String>) -> Effect {
    match cmd.primary() {
        "stat_reset" => Effect::ResetServerStats,
        "connection_stat_reset" => Effect::ResetConnectionStats,
        "set_trace_mask" => kwargs
            .get("traceMask")
            .and_then(|v| parse_java_long(v))
            .map_or(Effect::None, Effect::SetTraceMask),
        _ => Effect::None,
    }
}

/// Java's `Long.parseLong`: optional sign, decimal digits only.
fn parse_java_long(v: &str) -> Option<i64> {
    let digits = v.strip_prefix(['-', '+']).unwrap_or(v);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

/// A socket address as Jackson's `InetSocketAddressSerializer` writes it:
/// `127.0.0.1:2181`, `[0:0:0:0:0:0:0:1]:2181`.
fn jackson_addr(addr: &std::net::SocketAddr) -> String {
    java::socket_addr(addr).trim_start_matches('/').to_string()
}

/// `ServerCnxn.getConnectionInfo(brief)`.
fn connections(conns: &[ConnectionInfo], brief: bool) -> Json {
    Json::Arr(
        conns
            .iter()
            .map(|c| {
                let mut o = vec![
                    (
                        "remote_socket_address".into(),
                        Json::str(jackson_addr(&c.remote)),
                    ),
                    ("interest_ops".into(), Json::Int(c.interest_ops.into())),
                    (
                        "outstanding_requests".into(),
                        Json::uint(c.outstanding_requests),
                    ),
                    ("packets_received".into(), Json::uint(c.packets_received)),
                    ("packets_sent".into(), Json::uint(c.packets_sent)),
                ];
                if !brief {
                    let avg = if c.latency.count == 0 {
                        0
                    } else {
                        c.latency.total / c.latency.count
                    };
                    o.extend([
                        ("session_id".into(), Json::Int(c.session_id)),
                        ("last_operation".into(), Json::str(&c.last_operation)),
                        ("established".into(), Json::Int(c.established_ms)),
                        (
                            "session_timeout".into(),
                            Json::Int(c.session_timeout.into()),
                        ),
                        ("last_cxid".into(), Json::Int(c.last_cxid)),
                        ("last_zxid".into(), Json::Int(c.last_zxid)),
                        ("last_response_time".into(), Json::Int(c.last_response_time)),
                        ("last_latency".into(), Json::Int(c.last_latency)),
                        ("min_latency".into(), Json::Int(c.latency.min)),
                        ("avg_latency".into(), Json::Int(avg)),
                        ("max_latency".into(), Json::Int(c.latency.max)),
                    ]);
                }
                Json::Obj(o)
            })
            .collect(),
    )
}

/// `BufferStats` as Jackson writes the bean.
fn buffer_stats(b: &super::BufferStats) -> Json {
    Json::Obj(vec![
        ("last_buffer_size".into(), Json::Int(b.last)),
        ("min_buffer_size".into(), Json::Int(b.min)),
        ("max_buffer_size".into(), Json::Int(b.max)),
    ])
}

/// `server_stats` (SrvrCommand): the `ServerStats` bean as Jackson writes it, in the
/// order ZooKeeper 3.8 printed it.
fn srvr(r: &mut CommandResponse, facts: &Facts) {
    let view = &facts.view;
    let s = &view.stats;
    let stats = Json::Obj(vec![
        ("packets_sent".into(), Json::uint(s.packets_sent)),
        ("packets_received".into(), Json::uint(s.packets_received)),
        ("fsync_threshold_exceed_count".into(), Json::Int(0)),
        (
            "client_response_stats".into(),
            buffer_stats(&view.client_response_size),
        ),
        ("data_dir_size".into(), Json::uint(view.data_dir_size)),
        ("log_dir_size".into(), Json::uint(view.log_dir_size)),
        ("provider_null".into(), Json::Bool(false)),
        ("server_state".into(), Json::str(&s.server_state)),
        (
            "last_processed_zxid".into(),
            Json::Int(s.last_processed_zxid),
        ),
        (
            "outstanding_requests".into(),
            Json::uint(s.outstanding_requests),
        ),
        ("avg_latency".into(), Json::Float(s.latency.avg())),
        ("max_latency".into(), Json::Int(s.latency.max)),
        ("min_latency".into(), Json::Int(s.latency.min)),
        (
            "num_alive_client_connections".into(),
            Json::uint(s.num_alive_connections),
        ),
        (
            "auth_failed_count".into(),
            Json::uint(view.auth_failed_count),
        ),
        ("non_mtlsremote_conn_count".into(), Json::Int(0)),
        ("non_mtlslocal_conn_count".into(), Json::Int(0)),
        ("uptime".into(), Json::uint(view.uptime_ms)),
    ]);
    r.put("version", Json::str(&view.version));
    r.put("read_only", Json::Bool(s.read_only));
    r.put("server_stats", stats);
    r.put("client_response", buffer_stats(&view.client_response_size));
    if facts.quorum.as_ref().is_some_and(|q| q.mode == "leader") {
        // Proposal sizes are not measured: the bean's initial values.
        r.put(
            "proposal_stats",
            buffer_stats(&super::BufferStats::default()),
        );
    }
    r.put("node_count", Json::uint(s.node_count));
}

/// `ZooKeeperServerConf.toMap`.
fn conf(r: &mut CommandResponse, facts: &Facts) {
    let c = facts.config;
    let abs = |p: &std::path::Path| {
        std::path::absolute(p)
            .unwrap_or_else(|_| p.to_path_buf())
            .display()
            .to_string()
    };
    r.put("client_port", Json::Int(facts.client_port.into()));
    r.put("data_dir", Json::str(abs(&c.data_dir)));
    r.put("data_log_dir", Json::str(abs(&c.data_log_dir)));
    r.put("tick_time", Json::Int(c.tick_time.into()));
    r.put(
        "max_client_cnxns",
        Json::uint(c.limits.max_client_cnxns as u64),
    );
    r.put(
        "min_session_timeout",
        Json::Int(c.min_session_timeout.into()),
    );
    r.put(
        "max_session_timeout",
        Json::Int(c.max_session_timeout.into()),
    );
    let server_id = if c.is_distributed() {
        c.server_id.unwrap_or(0)
    } else {
        0
    };
    r.put("server_id", Json::Int(server_id as i64));
    r.put(
        "client_port_listen_backlog",
        Json::Int(c.client_port_listen_backlog.into()),
    );
}

/// `dump`: sessions by expiry time, ephemerals by session (map keys are strings in
/// JSON, as Jackson writes `Map<Long, ...>`).
fn dump(r: &mut CommandResponse, view: &AdminView) {
    let mut by_time: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for s in &view.sessions {
        by_time
            .entry(s.expires_at_ms)
            .or_default()
            .push(s.session_id);
    }
    let expiry = by_time
        .into_iter()
        .map(|(t, ids)| {
            (
                t.to_string(),
                Json::Arr(ids.into_iter().map(Json::Int).collect()),
            )
        })
        .collect();
    r.put("expiry_time_to_session_ids", Json::Obj(expiry));
    let ephemerals = view
        .ephemerals
        .iter()
        .map(|e| {
            (
                e.session_id.to_string(),
                Json::Arr(e.paths.iter().cloned().map(Json::Str).collect()),
            )
        })
        .collect();
    r.put("session_id_to_ephemeral_paths", Json::Obj(ephemerals));
}

/// `leader` (LeaderCommand): a standalone server is "not initialized".
fn leader(r: &mut CommandResponse, facts: &Facts) {
    let (Some(q), Some(qv)) = (&facts.quorum, &facts.config.quorum) else {
        r.put("error", Json::str("server is not initialized"));
        return;
    };
    r.put("is_leader", Json::Bool(q.mode == "leader"));
    r.put("leader_id", Json::Int(q.leader.map_or(-1, |s| s as i64)));
    // `QuorumPeer.getLeaderAddress`: the host strings of the leader's quorum address.
    let ip = q
        .leader
        .and_then(|sid| qv.get(sid))
        .map(|s| s.quorum_addr.0.clone())
        .unwrap_or_default();
    r.put("leader_ip", Json::Str(ip));
}

fn host_port(h: &(String, u16)) -> String {
    if h.0.contains(':') {
        format!("[{}]:{}", h.0, h.1)
    } else {
        format!("{}:{}", h.0, h.1)
    }
}

/// This server's client address as `QuorumPeer.getClientAddress` has it.
fn own_client_address(facts: &Facts) -> String {
    let a = facts.config.client_port_address;
    jackson_addr(&std::net::SocketAddr::new(a.ip(), facts.client_port))
}

/// `voting_view`: the voting members, by id.
fn voting_view(r: &mut CommandResponse, facts: &Facts) {
    let me = facts.config.server_id;
    let members = match (&facts.quorum, &facts.config.quorum) {
        (Some(_), Some(qv)) => qv
            .voters()
            .map(|s: &QuorumServer| {
                // ZooKeeper knows a member's client address only from its server line,
                // or for itself (`isClientAddrFromStatic`).
                let client = match &s.client_addr {
                    Some(c) => host_port(c),
                    None if Some(s.id) == me => own_client_address(facts),
                    None => String::new(),
                };
                (
                    s.id.to_string(),
                    Json::Obj(vec![
                        (
                            "server_addresses".into(),
                            Json::Arr(vec![Json::str(host_port(&s.quorum_addr))]),
                        ),
                        (
                            "election_addresses".into(),
                            Json::Arr(vec![Json::str(host_port(&s.election_addr))]),
                        ),
                        ("client_address".into(), Json::Str(client)),
                        ("learner_type".into(), Json::str("participant")),
                    ]),
                )
            })
            .collect(),
        _ => Vec::new(),
    };
    r.put("current_config", Json::Obj(members));
}

/// A `MultipleAddresses` of one address, as Jackson writes the bean (ZooKeeper's
/// `zabstate` serializes the object, getters and all).
fn multiple_addresses(a: &(String, u16)) -> Json {
    let one = Json::str(host_port(a));
    Json::Obj(vec![
        ("empty".into(), Json::Bool(false)),
        ("all_addresses".into(), Json::Arr(vec![one.clone()])),
        (
            "all_reachable_addresses".into(),
            Json::Arr(vec![one.clone()]),
        ),
        ("one".into(), one.clone()),
        ("reachable_address".into(), one.clone()),
        (
            "wildcard_addresses".into(),
            Json::Arr(vec![Json::str(format!("0.0.0.0:{}", a.1))]),
        ),
        ("all_ports".into(), Json::Arr(vec![Json::Int(a.1.into())])),
        ("all_host_strings".into(), Json::Arr(vec![Json::str(&a.0)])),
        (
            "all_reachable_addresses_or_all".into(),
            Json::Arr(vec![one.clone()]),
        ),
        ("reachable_or_one".into(), one),
    ])
}

/// `zabstate`.
fn zabstate(r: &mut CommandResponse, facts: &Facts) {
    let (Some(q), Some(me)) = (&facts.quorum, facts.config.my_server()) else {
        r.put("voting", Json::Bool(false));
        r.put("zabstate", Json::str(""));
        return;
    };
    let zxid = facts.view.stats.last_processed_zxid;
    r.put("myid", Json::Int(me.id as i64));
    r.put("is_leader", Json::Bool(q.mode == "leader"));
    r.put("quorum_address", multiple_addresses(&me.quorum_addr));
    r.put("election_address", multiple_addresses(&me.election_addr));
    r.put("client_address", Json::Str(own_client_address(facts)));
    r.put(
        "voting",
        Json::Bool(me.learner_type == LearnerType::Participant),
    );
    r.put("last_zxid", Json::str(format!("0x{}", java::hex(zxid))));
    r.put("zab_epoch", Json::Int(zxid >> 32));
    r.put("zab_counter", Json::Int(zxid & 0xffff_ffff));
    r.put("zabstate", Json::str(&q.zab_state));
}

/// Why `snapshot` is not streamed, checked in ZooKeeper's order (disabled 503, then
/// the rate limit 429), or `None` to stream. The auth check comes before this.
pub fn snapshot_refusal(
    config: &Config,
    limiter: &mut RateLimiter,
    now_ms: i64,
) -> Option<CommandResponse> {
    if !config.admin_snapshot_enabled {
        return Some(CommandResponse::with_error(
            "snapshot",
            "snapshot command is disabled (admin.snapshot.enabled=false)",
            503,
        ));
    }
    if !limiter.allow(now_ms) {
        return Some(CommandResponse::with_error(
            "snapshot",
            "snapshot rate limited: at most one per 5 minutes",
            429,
        ));
    }
    None
}

/// The largest snapshot `restore` reads from a request's body (it is held in memory
/// while the tree is built from it); a longer body is refused unread.
pub const RESTORE_MAX_BYTES: u64 = 4 << 30;

/// Why `restore` does not run, checked in ZooKeeper's order (disabled 503, then the
/// rate limit 429), or `None` to read the body and restore. The auth check comes
/// before this. `distributed`: the server is an ensemble member, where corral refuses
/// (500, ZooKeeper's failure status): ZooKeeper 3.9 replaces only the one member's
/// database, outside ZAB, so that member silently disagrees with its ensemble until
/// its next sync; corral does not offer that. Checked before the rate limit, so a
/// refusal costs no turn.
pub fn restore_refusal(
    config: &Config,
    distributed: bool,
    limiter: &mut RateLimiter,
    now_ms: i64,
) -> Option<CommandResponse> {
    if !config.admin_restore_enabled {
        return Some(CommandResponse::with_error(
            "restore",
            "restore command is disabled (admin.restore.enabled=false)",
            503,
        ));
    }
    if distributed {
        return Some(restore_failed(
            "restore is supported on a standalone server only: an ensemble member's state \
             is its leader's",
        ));
    }
    if !limiter.allow(now_ms) {
        return Some(CommandResponse::with_error(
            "restore",
            "restore rate limited: at most one per 5 minutes",
            429,
        ));
    }
    None
}

/// A restore that failed (a body that is not a snapshot, a disk error): ZooKeeper's
/// 500, with why; nothing changed.
pub fn restore_failed(why: impl Into<String>) -> CommandResponse {
    CommandResponse::with_error("restore", why, 500)
}

/// A restore done: `last_zxid` is the restored state's zxid (a number, as ZooKeeper's
/// `RestoreCommand` puts the long).
pub fn restored(last_zxid: i64) -> CommandResponse {
    let mut r = CommandResponse::new("restore");
    r.put("last_zxid", Json::Int(last_zxid));
    r
}

/// ZooKeeper's `RateLimiter(1, interval)`: one run per interval.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    interval_ms: i64,
    last: Option<i64>,
}

impl RateLimiter {
    pub fn new(interval_ms: i64) -> RateLimiter {
        RateLimiter {
            interval_ms,
            last: None,
        }
    }

    /// Whether a run may start at `now_ms` (and if so, counts it).
    pub fn allow(&mut self, now_ms: i64) -> bool {
        match self.last {
            Some(t) if now_ms - t < self.interval_ms => false,
            _ => {
                self.last = Some(now_ms);
                true
            }
        }
    }
}

/// The `Authorization` check of `snapshot`/`restore` (`Commands.handleAuthentication`
/// and `handleAuthorization`): the header is `<scheme> [<credential>]`; the ids that
/// scheme's provider grants must hold every bit of ALL on `/`. Errors are ZooKeeper's
/// (status, message).
pub fn check_auth(
    header: Option<&str>,
    client_ip: &str,
    auth: &crate::acl::AuthProviders,
    root_acl: &[Acl],
) -> Result<(), (u16, &'static str)> {
    let Some(header) = header else {
        return Err((401, "Auth info is missing for the command"));
    };
    let parts: Vec<&str> = header.split(' ').collect();
    if parts.is_empty() || parts.len() > 2 {
        return Err((401, "Not authenticated"));
    }
    let credential = parts.get(1).copied().unwrap_or("").as_bytes();
    let ids: Vec<Id> = auth
        .add_auth(parts[0], credential, client_ip)
        .map_err(|_| (401, "Not authenticated"))?;
    if ids.is_empty() {
        return Err((401, "Not authenticated"));
    }
    let all = crate::proto::consts::perms::ALL;
    for bit in 0..5 {
        let perm = 1 << bit;
        if all & perm != 0 && !crate::acl::check_acl(root_acl, perm, &ids) {
            return Err((403, "Not authorized"));
        }
    }
    Ok(())
}

/// Percent-decodes a URL path or query component (`+` is a space in a query). Bytes
/// that do not decode are kept as written; invalid UTF-8 is replaced.
pub fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The query parameters, the first value of each name (the servlet's
/// `getParameterMap()` with `[0]`).
pub fn query_params(query: Option<&str>) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        m.entry(percent_decode(k, true))
            .or_insert_with(|| percent_decode(v, true));
    }
    m
}

#[cfg(test)]
mod tests;
