//! The AdminServer over HTTP (`admin.serverPort`, `/commands/<name>`), against real
//! corral processes: every command and alias with its values checked; the JSON key
//! sets and value types of every command compared with Debian's Apache ZooKeeper 3.8
//! (Jetty AdminServer from Debian's jars) answering the same questions; an ensemble's
//! `leader`, `voting_view`, `zabstate` and `observers`; a port already in use;
//! `snapshot` then `restore` (into the same server after changes and through a
//! restart, into a fresh server, a damaged body refused, gates and rate limits).
//!
//! Ports come from below the ephemeral range and are checked free before a server is
//! started on them; every process started here is killed by its own handle on drop
//! (also when a test panics).

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::ports::{fresh_port, port_is_free};
use common::{anyone, mode, using_zookeeper, TestServer};
use serde_json::Value;
use zookeeper_client as zk;

/// One HTTP answer.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A blocking HTTP/1.1 request (`Connection: close`), read to the end.
fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    http_with_body(port, method, path, headers, &[])
}

/// [`http`] with a request body (sent with its Content-Length on a POST).
fn http_with_body(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read the reply");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 4 + size..];
    }
}

fn get(port: u16, cmd: &str) -> Value {
    let r = http(port, "GET", &format!("/commands/{cmd}"), &[]);
    assert_eq!(r.status, 200, "{cmd}: {}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"), "{cmd}");
    r.json()
}

/// Every name ZooKeeper 3.9 registers, primary first.
const COMMANDS: &[&[&str]] = &[
    &["connection_stat_reset", "crst"],
    &["configuration", "conf", "config"],
    &["connections", "cons"],
    &["hash"],
    &["dirs"],
    &["dump"],
    &["environment", "env", "envi"],
    &["get_trace_mask", "gtmk"],
    &["initial_configuration", "icfg"],
    &["is_read_only", "isro"],
    &["last_snapshot", "lsnp"],
    &["leader", "lead"],
    &["monitor", "mntr"],
    &["observer_connection_stat_reset", "orst"],
    &["restore", "rest"],
    &["ruok"],
    &["set_trace_mask", "stmk"],
    &["snapshot", "snap"],
    &["server_stats", "srvr"],
    &["stats", "stat"],
    &["stat_reset", "srst"],
    &["observers", "obsr"],
    &["system_properties", "sysp"],
    &["voting_view"],
    &["watches", "wchc"],
    &["watches_by_path", "wchp"],
    &["watch_summary", "wchs"],
    &["zabstate"],
];

/// What `dumpMonitorValues` puts in `monitor` on a standalone 3.8 server, before the
/// metrics provider's own counters.
const MONITOR_KEYS: &[&str] = &[
    "version",
    "server_state",
    "ephemerals_count",
    "num_alive_connections",
    "avg_latency",
    "outstanding_requests",
    "znode_count",
    "global_sessions",
    "non_mtls_remote_conn_count",
    "last_client_response_size",
    "packets_sent",
    "packets_received",
    "max_client_response_size",
    "connection_drop_probability",
    "watch_count",
    "auth_failed_count",
    "min_latency",
    "max_file_descriptor_count",
    "approximate_data_size",
    "open_file_descriptor_count",
    "local_sessions",
    "uptime",
    "max_latency",
    "outstanding_tls_handshake",
    "min_client_response_size",
    "non_mtls_local_conn_count",
];

fn start_corral(admin_port: u16, extra: &[&str]) -> TestServer {
    assert!(port_is_free(admin_port), "admin port {admin_port} is taken");
    let port_line = format!("admin.serverPort={admin_port}");
    let mut lines = vec![
        "admin.enableServer=true",
        "admin.serverAddress=127.0.0.1",
        port_line.as_str(),
    ];
    lines.extend_from_slice(extra);
    TestServer::start(&lines)
}

/// Waits until the AdminServer answers (it starts with the last shard).
fn wait_admin(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ok = TcpStream::connect_timeout(
            &SocketAddr::from(([127, 0, 0, 1], port)),
            Duration::from_millis(200),
        )
        .is_ok()
            && http(port, "GET", "/commands/srvr", &[]).json()["error"].is_null();
        if ok {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}'s AdminServer did not answer"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A session with an ephemeral znode and a data watch, so the lists commands print
/// have entries.
async fn session_with_state(connect: &str) -> (zk::Client, zk::OneshotWatcher) {
    let c = zk::Client::connector()
        .with_session_timeout(Duration::from_secs(10))
        .connect(connect)
        .await
        .expect("connect");
    c.create("/e", b"x", &mode(zk::CreateMode::Ephemeral))
        .await
        .expect("create /e");
    c.create("/p", b"y", &anyone()).await.expect("create /p");
    let (_, _, w) = c.get_and_watch_data("/e").await.expect("watch /e");
    // No wait: the shard answering a command asks the others for their connections
    // and watches there and then.
    (c, w)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_answers_with_its_values() {
    if using_zookeeper() {
        eprintln!("skipped: corral's own AdminServer (the ZooKeeper comparison is below)");
        return;
    }
    let port = fresh_port(&mut Vec::new());
    let server = start_corral(
        port,
        // snapCount=2: a snapshot is on disk after the first writes, for `snapshot`.
        &[
            "admin.snapshot.enabled=true",
            "admin.idleTimeout=500",
            "snapCount=2",
        ],
    );
    wait_admin(port, "corral");
    let (client, _watch) = session_with_state(&server.connect_string()).await;
    let sid = client.session_id().0;

    // Every name and alias answers as its primary name.
    for names in COMMANDS {
        for name in *names {
            if matches!(
                names[0],
                "snapshot" | "restore" | "stat_reset" | "connection_stat_reset"
            ) {
                continue; // checked below: they act, or are not GETs.
            }
            let v = get(port, name);
            assert_eq!(v["command"], names[0], "{name}: {v}");
            if !matches!(names[0], "leader" | "set_trace_mask") {
                assert!(v["error"].is_null(), "{name}: {v}");
            }
        }
    }

    // The list of commands.
    let r = http(port, "GET", "/commands", &[]);
    assert_eq!(r.status, 200);
    for names in COMMANDS {
        assert!(
            r.text()
                .contains(&format!("<a href=\"/commands/{0}\">{0}</a>", names[0])),
            "{}",
            r.text()
        );
    }
    assert_eq!(http(port, "GET", "/commands/", &[]).text(), r.text());

    let v = get(port, "ruok");
    assert_eq!(v, serde_json::json!({"command": "ruok", "error": null}));

    let v = get(port, "srvr");
    assert!(
        v["version"].as_str().unwrap().starts_with("3.8.4-corral-"),
        "{v}"
    );
    assert_eq!(v["read_only"], false);
    assert_eq!(v["server_stats"]["server_state"], "standalone");
    assert_eq!(v["server_stats"]["provider_null"], false);
    // At least /, /zookeeper, /zookeeper/quota, /e, /p; as monitor counts them.
    let nodes = v["node_count"].as_i64().unwrap();
    assert!(nodes >= 5, "{v}");
    assert!(
        v["server_stats"]["data_dir_size"].as_i64().unwrap() > 0,
        "{v}"
    );
    assert!(v["server_stats"]["last_processed_zxid"].as_i64().unwrap() >= 2);
    assert!(
        v["server_stats"]["num_alive_client_connections"]
            .as_i64()
            .unwrap()
            >= 1
    );

    let v = get(port, "stats");
    let conns = v["connections"].as_array().unwrap();
    assert!(!conns.is_empty(), "{v}");
    assert_eq!(conns[0].as_object().unwrap().len(), 5, "brief form: {v}");
    assert_eq!(v["secure_connections"], serde_json::json!([]));

    let v = get(port, "cons");
    let mine: Vec<&Value> = v["connections"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["session_id"] == sid)
        .collect();
    assert_eq!(mine.len(), 1, "{v}");
    assert!(mine[0]["packets_received"].as_i64().unwrap() >= 3, "{v}");
    assert!(mine[0]["remote_socket_address"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));

    let v = get(port, "conf");
    assert_eq!(v["client_port"], server.addr.port());
    assert_eq!(v["tick_time"], 200);
    assert_eq!(v["server_id"], 0);
    assert_eq!(v["max_client_cnxns"], 0);

    let v = get(port, "dump");
    assert_eq!(
        v["session_id_to_ephemeral_paths"][sid.to_string()],
        serde_json::json!(["/e"]),
        "{v}"
    );
    let expiring: Vec<i64> = v["expiry_time_to_session_ids"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|ids| ids.as_array().unwrap().iter().map(|i| i.as_i64().unwrap()))
        .collect();
    assert!(expiring.contains(&sid), "{v}");

    let v = get(port, "envi");
    assert!(v["zookeeper.version"]
        .as_str()
        .unwrap()
        .starts_with("3.8.4-corral-"));
    assert_eq!(v["os.name"], "Linux");

    let v = get(port, "dirs");
    assert!(v["datadir_size"].as_i64().unwrap() > 0, "{v}");
    assert!(v["logdir_size"].as_i64().unwrap() > 0, "{v}");

    let v = get(port, "wchc");
    assert_eq!(
        v["session_id_to_watched_paths"][sid.to_string()],
        serde_json::json!(["/e"]),
        "{v}"
    );
    let v = get(port, "wchp");
    assert_eq!(
        v["path_to_session_ids"]["/e"],
        serde_json::json!([sid]),
        "{v}"
    );
    let v = get(port, "wchs");
    assert_eq!(v["num_paths"], 1, "{v}");
    assert_eq!(v["num_total_watches"], 1, "{v}");
    assert!(v["num_connections"].as_i64().unwrap() >= 1, "{v}");

    assert_eq!(get(port, "isro")["read_only"], false);
    let v = get(port, "lead");
    assert_eq!(v["error"], "server is not initialized");
    assert_eq!(
        get(port, "voting_view")["current_config"],
        serde_json::json!({})
    );
    let v = get(port, "zabstate");
    assert_eq!(
        (&v["voting"], &v["zabstate"]),
        (&Value::Bool(false), &Value::from(""))
    );
    let v = get(port, "obsr");
    assert_eq!(v["synced_observers"], 0);
    assert_eq!(v["observers"], serde_json::json!([]));

    let v = get(port, "lsnp");
    let zxid = v["zxid"].as_str().unwrap();
    assert!(u64::from_str_radix(zxid, 16).is_ok(), "{v}");
    assert!(v["timestamp"].is_i64(), "{v}");

    let v = get(port, "icfg");
    assert!(
        v["initial_configuration"]
            .as_str()
            .unwrap()
            .contains(&format!("admin.serverPort={port}\n")),
        "{v}"
    );

    let v = get(port, "hash");
    let d = &v["digests"].as_array().unwrap()[0];
    assert!(
        d["zxid"].as_i64().unwrap() >= 2 && d["digest"].is_i64(),
        "{v}"
    );
    assert_eq!(d["digest_version"], 2);

    let v = get(port, "sysp");
    assert_eq!(v["zookeeper.admin.serverPort"], port.to_string());
    assert!(v
        .as_object()
        .unwrap()
        .iter()
        .all(|(k, val)| val.is_string() || k == "error"));

    // Trace mask: ZooKeeper's default, set, read back; bad arguments.
    assert_eq!(get(port, "gtmk")["tracemask"], 306);
    assert_eq!(get(port, "stmk?traceMask=42")["tracemask"], 42);
    assert_eq!(get(port, "gtmk")["tracemask"], 42);
    assert_eq!(
        get(port, "stmk")["error"],
        "setTraceMask requires long traceMask argument"
    );
    assert_eq!(
        get(port, "stmk?traceMask=x1")["error"],
        "setTraceMask requires long traceMask argument, got x1"
    );

    // monitor: ZooKeeper's values, same types, consistent with srvr.
    let v = get(port, "monitor");
    for k in MONITOR_KEYS {
        assert!(v.get(k).is_some(), "monitor lacks {k}: {v}");
    }
    assert_eq!(v["znode_count"], nodes);
    assert_eq!(v["ephemerals_count"], 1);
    assert_eq!(v["watch_count"], 1);
    assert_eq!(v["global_sessions"], 1);
    assert!(v["avg_latency"].is_f64());

    // Resets: counters drop back (other shards' within their next report).
    let before = get(port, "cons")["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["session_id"] == sid)
        .map(|c| c["packets_received"].as_i64().unwrap())
        .unwrap();
    assert_eq!(get(port, "crst")["command"], "connection_stat_reset");
    assert_eq!(get(port, "srst")["command"], "stat_reset");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = get(port, "cons")["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["session_id"] == sid)
        .map(|c| c["packets_received"].as_i64().unwrap())
        .unwrap();
    assert!(after < before, "crst: {before} -> {after}");
    let srvr = get(port, "srvr");
    assert!(
        srvr["server_stats"]["packets_received"].as_i64().unwrap() < 10,
        "{srvr}"
    );

    // snapshot: auth, then a fresh snapshot, then the rate limit.
    let r = http(port, "GET", "/commands/snapshot", &[]);
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.json()["error"], "Auth info is missing for the command");
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(port, "lsnp")["timestamp"] == -1 {
        assert!(Instant::now() < deadline, "no snapshot was taken");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = http(
        port,
        "GET",
        "/commands/snapshot",
        &[("Authorization", "digest u:p")],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    let size: usize = r.header("snapshot_size").unwrap().parse().unwrap();
    assert_eq!(r.body.len(), size);
    assert!(r.header("last_zxid").unwrap().starts_with("0x"));
    let r = http(
        port,
        "GET",
        "/commands/snap",
        &[("Authorization", "digest u:p")],
    );
    assert_eq!(r.status, 429, "{}", r.text());

    // restore: a POST, disabled by default.
    let r = http(
        port,
        "POST",
        "/commands/restore",
        &[("Authorization", "digest u:p")],
    );
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["command"], "restore");
    assert_eq!(http(port, "GET", "/commands/restore", &[]).status, 405);

    // Unknown names and methods, answered as Jetty/ZooKeeper answer them.
    let r = http(port, "GET", "/commands/nosuch", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        serde_json::json!({"command": "nosuch", "error": "Unknown command: nosuch"})
    );
    let r = http(port, "POST", "/commands/ruok", &[]);
    assert_eq!(r.status, 405);
    assert!(r
        .text()
        .contains("HTTP method POST is not supported by this URL"));
    assert_eq!(http(port, "PUT", "/commands/ruok", &[]).status, 405);
    assert_eq!(http(port, "DELETE", "/commands/ruok", &[]).status, 405);
    assert_eq!(http(port, "TRACE", "/commands/ruok", &[]).status, 403);
    assert_eq!(http(port, "PATCH", "/commands/ruok", &[]).status, 501);
    let r = http(port, "OPTIONS", "/commands/ruok", &[]);
    assert_eq!(
        (r.status, r.header("allow")),
        (200, Some("GET, HEAD, POST, TRACE, OPTIONS"))
    );
    let r = http(port, "HEAD", "/commands/ruok", &[]);
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    assert_eq!(http(port, "GET", "/nothing", &[]).status, 404);

    // admin.idleTimeout=500: an idle connection is closed by the server.
    let mut idle = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).expect("connect");
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let t = Instant::now();
    let mut buf = [0u8; 16];
    let n = idle.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the idle connection got data");
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "not closed: {:?}",
        t.elapsed()
    );
    drop(client);
}

#[test]
fn a_taken_admin_port_stops_the_server_naming_it() {
    if using_zookeeper() {
        return;
    }
    let port = fresh_port(&mut Vec::new());
    let _holder = std::net::TcpListener::bind(("0.0.0.0", port)).expect("hold the port");
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=200\ndataDir={}\nclientPort=0\nclientPortAddress=127.0.0.1\nadmin.serverPort={port}\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_corral"))
        .args(["server", "--config"])
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn corral");
    let mut guard = Proc(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = guard.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "corral kept running on a taken admin port"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    guard
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!status.success());
    assert!(err.contains("address in use"), "{err}");
    assert!(err.contains(&format!(":{port}")), "{err}");
    assert!(err.contains("admin.serverPort"), "{err}");
}

/// A child process killed (by its own handle) when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What Debian's ZooKeeper 3.8 needs beyond its base jars for its Jetty AdminServer.
const JETTY_JARS: &[&str] = &[
    "jetty9-server.jar",
    "jetty9-servlet.jar",
    "jetty9-security.jar",
    "jetty9-util.jar",
    "jetty9-io.jar",
    "jetty9-http.jar",
    "servlet-api.jar",
    "jackson-databind.jar",
    "jackson-core.jar",
    "jackson-annotations.jar",
];

/// Apache ZooKeeper 3.8 standalone with its AdminServer on `admin_port`.
fn start_zookeeper(dir: &Path, client_port: u16, admin_port: u16) -> Proc {
    for p in [client_port, admin_port] {
        assert!(port_is_free(p), "port {p} is taken");
    }
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let cfg = dir.join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=200\ndataDir={}\nclientPort={client_port}\nclientPortAddress=127.0.0.1\n\
             4lw.commands.whitelist=*\nmaxClientCnxns=0\nadmin.serverAddress=127.0.0.1\n\
             admin.serverPort={admin_port}\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    let cp = common::zk_classpath(JETTY_JARS);
    let child = Command::new("java")
        .args(["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"])
        .arg("-cp")
        .arg(cp)
        .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn java");
    Proc(child)
}

/// The JSON type of a value, with integers and floats apart (Jackson writes a Java
/// `double` with a fraction, a `long` without).
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Differences in shape between ZooKeeper's `zk` and corral's `ours` at `path`: the
/// same keys (map keys that are data, such as session ids, are not compared), and the
/// same type for each; arrays compared by their first elements.
fn shape_diff(path: &str, zk: &Value, ours: &Value, out: &mut Vec<String>) {
    if kind(zk) != kind(ours) {
        // `error` is null in one and a message in the other only when they disagree
        // about success, which the caller checks.
        out.push(format!(
            "{path}: ZooKeeper {} ({zk}), corral {} ({ours})",
            kind(zk),
            kind(ours)
        ));
        return;
    }
    match (zk, ours) {
        (Value::Object(a), Value::Object(b)) => {
            let data_keys = a
                .keys()
                .chain(b.keys())
                .any(|k| k.starts_with('/') || k.parse::<i64>().is_ok());
            if data_keys {
                if let (Some(x), Some(y)) = (a.values().next(), b.values().next()) {
                    shape_diff(&format!("{path}.*"), x, y, out);
                }
                return;
            }
            let ka: BTreeSet<&String> = a.keys().collect();
            let kb: BTreeSet<&String> = b.keys().collect();
            for k in ka.difference(&kb) {
                out.push(format!("{path}.{k}: only in ZooKeeper"));
            }
            for k in kb.difference(&ka) {
                out.push(format!("{path}.{k}: only in corral"));
            }
            for k in ka.intersection(&kb) {
                shape_diff(&format!("{path}.{k}"), &a[*k], &b[*k], out);
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            if let (Some(x), Some(y)) = (a.first(), b.first()) {
                shape_diff(&format!("{path}[0]"), x, y, out);
            }
        }
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_sets_and_types_match_zookeeper() {
    if using_zookeeper() {
        return;
    }
    if !Path::new("/usr/share/java/jetty9-server.jar").exists() {
        panic!("Debian's libjetty9-java is missing (the zookeeper package pulls it in: tools/test-all)");
    }
    let mut taken = Vec::new();
    let (zk_client, zk_admin, ours_admin) = (
        fresh_port(&mut taken),
        fresh_port(&mut taken),
        fresh_port(&mut taken),
    );
    let dir = tempfile::tempdir().unwrap();
    let _zk = start_zookeeper(dir.path(), zk_client, zk_admin);
    let ours = start_corral(ours_admin, &[]);
    wait_admin(ours_admin, "corral");
    wait_admin(zk_admin, "ZooKeeper");
    let zk_version = get(zk_admin, "srvr")["version"].to_string();
    assert!(zk_version.starts_with("\"3.8."), "{zk_version}");
    let (_c1, _w1) = session_with_state(&format!("127.0.0.1:{zk_client}")).await;
    let (_c2, _w2) = session_with_state(&ours.connect_string()).await;

    // The same list of commands: ZooKeeper 3.8 has all but 3.9's snapshot and restore.
    let links = |port| {
        http(port, "GET", "/commands", &[])
            .text()
            .lines()
            .filter(|l| l.starts_with("<a "))
            .map(String::from)
            .collect::<BTreeSet<String>>()
    };
    let (zk_links, our_links) = (links(zk_admin), links(ours_admin));
    let extra: Vec<&String> = our_links.difference(&zk_links).collect();
    assert!(
        zk_links.is_subset(&our_links),
        "{zk_links:?} vs {our_links:?}"
    );
    assert_eq!(extra.len(), 2, "{extra:?}");

    let mut diffs = Vec::new();
    for names in COMMANDS {
        let name = names[0];
        if matches!(name, "snapshot" | "restore") {
            continue; // not in 3.8
        }
        let zk = get(zk_admin, name);
        let ours = get(ours_admin, name);
        assert_eq!(zk["command"], ours["command"], "{name}");
        assert_eq!(zk["error"], ours["error"], "{name}: {zk} vs {ours}");
        match name {
            // JVM facts against corral's: the keys both have agree in type, and the
            // ones both can state are there.
            "environment" => {
                for k in [
                    "zookeeper.version",
                    "host.name",
                    "os.name",
                    "os.arch",
                    "os.version",
                    "user.name",
                    "user.home",
                    "user.dir",
                ] {
                    assert_eq!(kind(&zk[k]), "string", "{k}");
                    assert_eq!(kind(&ours[k]), "string", "{k}");
                }
            }
            "system_properties" => {
                for v in [&zk, &ours] {
                    let o = v.as_object().unwrap();
                    assert!(o.iter().all(|(k, v)| v.is_string() || k == "error"));
                }
                assert!(ours.get("zookeeper.admin.serverPort").is_some());
            }
            // ZooKeeper adds every counter of its metrics provider; corral has the
            // server's own values, of the same types.
            "monitor" => {
                for k in MONITOR_KEYS {
                    assert_eq!(
                        kind(&zk[k]),
                        kind(&ours[k]),
                        "monitor.{k}: {} vs {}",
                        zk[k],
                        ours[k]
                    );
                }
            }
            _ => shape_diff(name, &zk, &ours, &mut diffs),
        }
    }
    assert!(diffs.is_empty(), "shapes differ:\n{}", diffs.join("\n"));

    // Unknown commands and methods.
    for (method, path) in [
        ("GET", "/commands/nosuch"),
        ("POST", "/commands/ruok"),
        ("PUT", "/commands/ruok"),
        ("DELETE", "/commands/ruok"),
        ("TRACE", "/commands/ruok"),
        ("PATCH", "/commands/ruok"),
        ("GET", "/elsewhere"),
        ("GET", "/commands//"),
    ] {
        let (a, b) = (
            http(zk_admin, method, path, &[]),
            http(ours_admin, method, path, &[]),
        );
        assert_eq!(
            a.status,
            b.status,
            "{method} {path}: {} vs {}",
            a.text(),
            b.text()
        );
        if a.header("content-type") == Some("application/json") {
            assert_eq!(a.json(), b.json(), "{method} {path}");
        }
    }
}

/// A corral ensemble member started from its own zoo.cfg.
struct Member {
    _proc: Proc,
    admin: u16,
    log: Arc<Mutex<Vec<String>>>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensemble_roles() {
    if using_zookeeper() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let mut taken = Vec::new();
    // Two voters and an observer: quorum, election, client and admin ports each.
    let ports: Vec<[u16; 4]> = (0..3)
        .map(|_| {
            [
                fresh_port(&mut taken),
                fresh_port(&mut taken),
                fresh_port(&mut taken),
                fresh_port(&mut taken),
            ]
        })
        .collect();
    let servers: String = ports
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let role = if i == 2 { ":observer" } else { "" };
            format!("server.{}=127.0.0.1:{}:{}{role}\n", i + 1, p[0], p[1])
        })
        .collect();
    let mut members = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        for port in p {
            // Checked while the other members start, a port sometimes looked busy for a
            // moment with nothing on it in `ss` (about 1 run in 4 of this file); it is
            // looked at again for a few seconds before the test gives up.
            let deadline = Instant::now() + Duration::from_secs(5);
            while !port_is_free(*port) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            assert!(
                port_is_free(*port),
                "port {port} is taken: {}",
                String::from_utf8_lossy(
                    &Command::new("ss")
                        .args(["-tanp", &format!("sport = :{port}")])
                        .output()
                        .map(|o| o.stdout)
                        .unwrap_or_default()
                )
            );
        }
        let dir = root.path().join(format!("s{}", i + 1));
        let data = dir.join("data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join("myid"), format!("{}\n", i + 1)).unwrap();
        let cfg = dir.join("zoo.cfg");
        std::fs::write(
            &cfg,
            format!(
                "tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={}\n\
                 clientPortAddress=127.0.0.1\nadmin.serverAddress=127.0.0.1\nadmin.serverPort={}\n\
                 shards=1\n{servers}",
                data.display(),
                p[2],
                p[3]
            ),
        )
        .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_corral"))
            .args(["server", "--config"])
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn corral");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (stderr, l) = (child.stderr.take().unwrap(), log.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                l.lock().unwrap().push(line);
            }
        });
        members.push(Member {
            _proc: Proc(child),
            admin: p[3],
            log,
        });
    }
    // Until every member serves and agrees on the leader.
    let deadline = Instant::now() + Duration::from_secs(30);
    let leader = loop {
        let answers: Vec<Option<Value>> = members
            .iter()
            .map(|m| {
                TcpStream::connect_timeout(
                    &SocketAddr::from(([127, 0, 0, 1], m.admin)),
                    Duration::from_millis(200),
                )
                .ok()
                .map(|_| get(m.admin, "leader"))
            })
            .collect();
        let ids: BTreeSet<i64> = answers
            .iter()
            .flatten()
            .filter(|v| v["error"].is_null())
            .filter_map(|v| v["leader_id"].as_i64())
            .collect();
        if answers
            .iter()
            .all(|a| a.as_ref().is_some_and(|v| v["error"].is_null()))
            && ids.len() == 1
            && ids.iter().all(|i| *i > 0)
        {
            break *ids.iter().next().unwrap();
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = members
                .iter()
                .map(|m| m.log.lock().unwrap().join("\n"))
                .collect();
            panic!("no agreed leader: {answers:?}\n{}", logs.join("\n----\n"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        leader == 1 || leader == 2,
        "an observer cannot lead: {leader}"
    );
    for (i, m) in members.iter().enumerate() {
        let sid = i as i64 + 1;
        let is_leader = sid == leader;
        let v = get(m.admin, "lead");
        assert_eq!(v["is_leader"], is_leader, "{sid}: {v}");
        assert_eq!(v["leader_ip"], "127.0.0.1", "{sid}: {v}");

        let v = get(m.admin, "voting_view");
        let cc = v["current_config"].as_object().unwrap();
        assert_eq!(cc.keys().collect::<Vec<_>>(), ["1", "2"], "{sid}: {v}");
        for (k, s) in cc {
            let p = ports[k.parse::<usize>().unwrap() - 1];
            assert_eq!(
                s["server_addresses"],
                serde_json::json!([format!("127.0.0.1:{}", p[0])])
            );
            assert_eq!(
                s["election_addresses"],
                serde_json::json!([format!("127.0.0.1:{}", p[1])])
            );
            assert_eq!(s["learner_type"], "participant");
            let own = k == &sid.to_string();
            let client = if own {
                format!("127.0.0.1:{}", p[2])
            } else {
                String::new()
            };
            assert_eq!(s["client_address"], client, "{sid}: {v}");
        }

        let v = get(m.admin, "zabstate");
        assert_eq!(v["myid"], sid);
        assert_eq!(v["is_leader"], is_leader);
        assert_eq!(v["voting"], i < 2, "{sid}: {v}");
        assert_eq!(v["zabstate"], "broadcast", "{sid}: {v}");
        assert_eq!(v["client_address"], format!("127.0.0.1:{}", ports[i][2]));
        assert_eq!(
            v["quorum_address"]["one"],
            format!("127.0.0.1:{}", ports[i][0])
        );
        assert_eq!(
            v["election_address"]["all_ports"],
            serde_json::json!([ports[i][1]])
        );
        let zxid = v["last_zxid"].as_str().unwrap();
        let zxid = i64::from_str_radix(zxid.strip_prefix("0x").unwrap(), 16).unwrap();
        assert_eq!(v["zab_epoch"], zxid >> 32, "{sid}: {v}");
        assert_eq!(v["zab_counter"], zxid & 0xffff_ffff, "{sid}: {v}");

        // The leader counts the observer once it has synced, which may be a moment
        // after the roles settled.
        let expect = if is_leader { 1 } else { 0 };
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut v = get(m.admin, "observers");
        while v["synced_observers"] != expect && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            v = get(m.admin, "observers");
        }
        assert_eq!(v["synced_observers"], expect, "{sid}: {v}");

        let v = get(m.admin, "srvr");
        let state = if is_leader {
            "leader"
        } else if i == 2 {
            "observer"
        } else {
            "follower"
        };
        assert_eq!(v["server_stats"]["server_state"], state, "{sid}: {v}");
        assert_eq!(v.get("proposal_stats").is_some(), is_leader, "{sid}: {v}");
        assert_eq!(get(m.admin, "conf")["server_id"], sid);
    }
    drop(members);
}

/// A corral process on a data dir the test keeps, so it can be stopped and started
/// again on the same state; killed (by its own handle) when dropped.
struct Corral {
    addr: SocketAddr,
    admin_port: u16,
    _proc: Proc,
}

impl Corral {
    fn start(dir: &Path, admin_port: u16, extra: &[&str]) -> Corral {
        assert!(port_is_free(admin_port), "admin port {admin_port} is taken");
        let data = dir.join("data");
        std::fs::create_dir_all(&data).unwrap();
        let mut cfg = format!(
            "tickTime=200\nclientPort=0\nclientPortAddress=127.0.0.1\ndataDir={}\n\
             admin.enableServer=true\nadmin.serverAddress=127.0.0.1\nadmin.serverPort={admin_port}\n",
            data.display()
        );
        for l in extra {
            cfg.push_str(l);
            cfg.push('\n');
        }
        if let Ok(n) = std::env::var("CORRAL_TEST_SHARDS") {
            cfg.push_str(&format!("shards={n}\n"));
        }
        let cfg_path = dir.join("corral.cfg");
        std::fs::write(&cfg_path, cfg).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_corral"))
            .arg("server")
            .arg("--config")
            .arg(&cfg_path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn corral");
        let stdout = child.stdout.take().unwrap();
        let proc = Proc(child);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(a) = line.trim().strip_prefix("corral: serving clients on ") {
                    let _ = tx.send(a.trim().parse::<SocketAddr>().ok());
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .ok()
            .flatten()
            .expect("corral announces its client port");
        wait_admin(admin_port, "corral");
        Corral {
            addr,
            admin_port,
            _proc: proc,
        }
    }

    async fn client(&self) -> zk::Client {
        zk::Client::connector()
            .with_session_timeout(Duration::from_secs(10))
            .with_connection_timeout(Duration::from_secs(5))
            .connect(&self.addr.to_string())
            .await
            .expect("connect")
    }
}

const AUTH: &[(&str, &str)] = &[("Authorization", "digest u:p")];
const BOTH_ON: &[&str] = &["admin.snapshot.enabled=true", "admin.restore.enabled=true"];

async fn data_of(c: &zk::Client, path: &str) -> Option<Vec<u8>> {
    match c.get_data(path).await {
        Ok((d, _)) => Some(d),
        Err(zk::Error::NoNode) => None,
        Err(e) => panic!("get {path}: {e}"),
    }
}

/// `snapshot` of a live server, then `restore` of that stream into the same server
/// after changes (and through a restart), into a fresh server, and a refused body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_then_restore() {
    if using_zookeeper() {
        eprintln!("skipped: corral's own snapshot format");
        return;
    }
    let mut ports = Vec::new();
    let dir_a = tempfile::tempdir().unwrap();
    let a = Corral::start(dir_a.path(), fresh_port(&mut ports), BOTH_ON);
    let c = a.client().await;
    c.create("/r", b"one", &anyone()).await.expect("create /r");
    c.create("/r/x", b"1", &anyone())
        .await
        .expect("create /r/x");
    let (_, stat) = c.get_data("/r/x").await.unwrap();

    // A fresh snapshot, at the tree's zxid (no snapshot was on disk before).
    let snap = http(a.admin_port, "GET", "/commands/snapshot", AUTH);
    assert_eq!(snap.status, 200, "{}", snap.text());
    assert_eq!(
        snap.header("content-type"),
        Some("application/octet-stream")
    );
    let hex = snap.header("last_zxid").unwrap();
    let snap_zxid = i64::from_str_radix(hex.strip_prefix("0x").unwrap(), 16).unwrap();
    assert_eq!(snap_zxid, stat.mzxid, "{hex}");
    let size: usize = snap.header("snapshot_size").unwrap().parse().unwrap();
    assert_eq!(snap.body.len(), size);
    assert!(snap.body.starts_with(b"CRSN"));
    assert_eq!(
        http(a.admin_port, "GET", "/commands/snap", AUTH).status,
        429
    );

    // Changes after the snapshot, then the restore of it: the snapshot's tree, at a
    // zxid above every one the server had.
    c.set_data("/r/x", b"2", None).await.unwrap();
    let (after, _) = c.create("/after", b"", &anyone()).await.unwrap();
    let r = http(a.admin_port, "POST", "/commands/restore", &[]);
    assert_eq!(r.status, 401, "{}", r.text());
    let r = http_with_body(a.admin_port, "POST", "/commands/restore", AUTH, &snap.body);
    assert_eq!(r.status, 200, "{}", r.text());
    let restored = r.json()["last_zxid"].as_i64().expect("a number");
    assert_eq!(r.json()["command"], "restore");
    assert!(r.json()["error"].is_null(), "{}", r.text());
    assert!(
        restored > after.czxid,
        "{restored:#x} <= {:#x}",
        after.czxid
    );
    drop(c);
    let c = a.client().await;
    assert_eq!(data_of(&c, "/r/x").await.as_deref(), Some(&b"1"[..]));
    assert_eq!(data_of(&c, "/after").await, None);
    let (stat, _) = c.create("/later", b"", &anyone()).await.unwrap();
    // After the new session's own txn: the log goes on above the restored zxid.
    assert!(stat.czxid > restored, "{:#x} <= {restored:#x}", stat.czxid);
    let r = http_with_body(a.admin_port, "POST", "/commands/rest", AUTH, &snap.body);
    assert_eq!(r.status, 429, "{}", r.text());
    drop(c);

    // A restart comes back with the restored tree (and what followed it).
    drop(a);
    let a = Corral::start(dir_a.path(), fresh_port(&mut ports), BOTH_ON);
    let c = a.client().await;
    assert_eq!(data_of(&c, "/r/x").await.as_deref(), Some(&b"1"[..]));
    assert_eq!(data_of(&c, "/after").await, None);
    assert!(data_of(&c, "/later").await.is_some());
    drop(c);
    drop(a);

    // Into a fresh server: the snapshot's tree at the snapshot's own zxid.
    let dir_b = tempfile::tempdir().unwrap();
    let b = Corral::start(
        dir_b.path(),
        fresh_port(&mut ports),
        &["admin.restore.enabled=true"],
    );
    assert_eq!(
        http(b.admin_port, "GET", "/commands/snapshot", AUTH).status,
        503
    );
    let r = http_with_body(b.admin_port, "POST", "/commands/restore", AUTH, &snap.body);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["last_zxid"], snap_zxid);
    let c = b.client().await;
    assert_eq!(data_of(&c, "/r").await.as_deref(), Some(&b"one"[..]));
    assert_eq!(data_of(&c, "/r/x").await.as_deref(), Some(&b"1"[..]));
    drop(c);
    drop(b);

    // A body that is not a corral snapshot (here one with a flipped byte) is refused
    // and changes nothing; it took the rate limiter's turn, as in ZooKeeper (which
    // checks the limit before reading).
    let dir_c = tempfile::tempdir().unwrap();
    let cs = Corral::start(dir_c.path(), fresh_port(&mut ports), BOTH_ON);
    let c = cs.client().await;
    c.create("/kept", b"k", &anyone()).await.unwrap();
    let mut bad = snap.body.clone();
    bad[40] ^= 0x55;
    let r = http_with_body(cs.admin_port, "POST", "/commands/restore", AUTH, &bad);
    assert_eq!(r.status, 500, "{}", r.text());
    assert_eq!(r.json()["command"], "restore");
    let why = r.json()["error"].as_str().unwrap_or_default().to_string();
    assert!(why.contains("not a valid corral snapshot"), "{why}");
    assert_eq!(data_of(&c, "/kept").await.as_deref(), Some(&b"k"[..]));
    assert_eq!(data_of(&c, "/r").await, None);
    let r = http_with_body(cs.admin_port, "POST", "/commands/restore", AUTH, &snap.body);
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(data_of(&c, "/kept").await.as_deref(), Some(&b"k"[..]));

    // `?streaming=false`: a fresh snapshot, its headers and JSON only.
    let (_, stat) = c.get_data("/kept").await.unwrap();
    let r = http(
        cs.admin_port,
        "GET",
        "/commands/snapshot?streaming=false",
        AUTH,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["command"], "snapshot");
    assert_eq!(
        r.header("last_zxid"),
        Some(format!("0x{:x}", stat.mzxid).as_str())
    );
    assert!(r.header("snapshot_size").unwrap().parse::<u64>().unwrap() > 0);
    drop(c);
}
