//! Starting and running corral as an operator does: real `corral server` processes on
//! fixed ports (taken from below the kernel's ephemeral range and checked free first),
//! each stopped by its pid when its guard drops, also on a failed assertion.
//!
//! - a client port another process holds (a plain listener, or another corral on
//!   another dataDir) is refused with "address in use" and the port, while the
//!   server's own shards share it; a restart binds past the TIME-WAIT entries of
//!   connections corral closed itself;
//! - `nio.sessionlessCnxnTimeout`: a connection without a ConnectRequest is closed,
//!   four-letter words and sessions are not;
//! - logs as JSON (`CORRAL_LOG_FORMAT`, `corral.logFormat`), the level from the
//!   environment, the slow-fsync warning;
//! - systemd readiness: READY=1 on `NOTIFY_SOCKET`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use corral::proto::{ConnectRequest, Jute};

#[path = "common/ports.rs"]
#[allow(dead_code)]
mod ports;

/// A free loopback port below the ephemeral range, so no outgoing connection's local
/// port (which the kernel takes from that range) can be holding it by chance.
fn fresh_port() -> u16 {
    ports::fresh_port(&mut Vec::new())
}

/// A corral process; killed (by its pid) when dropped.
struct Corral {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    /// stderr only (the log), in order.
    log: Arc<Mutex<Vec<String>>>,
}

/// A data directory with a zoo.cfg for client port `port`, plus `extra` lines.
fn config(dir: &Path, port: u16, extra: &[&str]) -> PathBuf {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let mut text = format!(
        "tickTime=200\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
         4lw.commands.whitelist=*\nmaxClientCnxns=0\nadmin.enableServer=false\n",
        data.display()
    );
    for l in extra {
        text.push_str(l);
        text.push('\n');
    }
    let path = dir.join("zoo.cfg");
    std::fs::write(&path, text).unwrap();
    path
}

impl Corral {
    fn spawn(cfg: &Path, env: &[(&str, &str)]) -> Corral {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_corral"));
        cmd.arg("server")
            .arg("--config")
            .arg(cfg)
            .env_remove("RUST_LOG")
            .env_remove("CORRAL_LOG")
            .env_remove("CORRAL_LOG_FORMAT")
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn corral");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::new(Mutex::new(Vec::new()));
        let drain = |r: Box<dyn Read + Send>, also: Option<Arc<Mutex<Vec<String>>>>| {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(r).lines() {
                    let Ok(line) = line else { break };
                    if let Some(a) = &also {
                        a.lock().unwrap().push(line.clone());
                    }
                    lines.lock().unwrap().push(line);
                }
            });
        };
        drain(Box::new(child.stdout.take().unwrap()), None);
        drain(Box::new(child.stderr.take().unwrap()), Some(log.clone()));
        Corral { child, lines, log }
    }

    fn output(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Waits for "corral: serving clients on ADDR".
    fn wait_serving(&mut self) -> SocketAddr {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let found = self.lines.lock().unwrap().iter().find_map(|l| {
                l.strip_prefix("corral: serving clients on ")
                    .and_then(|a| a.trim().parse().ok())
            });
            if let Some(a) = found {
                return a;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // Let the drain threads take the last lines.
                std::thread::sleep(Duration::from_millis(100));
                panic!("corral exited ({status}):\n{}", self.output());
            }
            assert!(
                Instant::now() < deadline,
                "corral did not serve:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the process to exit by itself.
    fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the drain threads take the last lines.
                std::thread::sleep(Duration::from_millis(100));
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "corral did not exit:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Corral {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sends a four-letter word and reads the answer (the server closes after it).
fn four_letter_word(addr: SocketAddr, word: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(word.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut v = (body.len() as i32).to_be_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

/// Reads one length-prefixed frame's body.
fn read_frame(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut body)?;
    Ok(body)
}

/// Opens a session: sends a ConnectRequest and reads the response.
fn open_session(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        time_out: 10_000,
        session_id: 0,
        passwd: vec![0u8; 16].into(),
        read_only: Some(false),
    };
    s.write_all(&frame(&req.to_bytes())).unwrap();
    let resp = read_frame(&mut s).expect("ConnectResponse");
    assert!(resp.len() >= 20, "short ConnectResponse");
    s
}

/// How long until the server closes `s` (EOF or reset), or None if it is still open
/// after `wait`.
fn closed_after(s: &mut TcpStream, wait: Duration) -> Option<Duration> {
    let start = Instant::now();
    s.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 64];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => continue,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return None
            }
            Err(_) => return Some(start.elapsed()),
        }
    }
}

#[test]
fn a_port_held_by_a_plain_listener_is_refused() {
    let port = fresh_port();
    let _holder = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut c = Corral::spawn(&config(dir.path(), port, &[]), &[]);
    let status = c.wait_exit(Duration::from_secs(20));
    assert!(!status.success(), "exited {status}:\n{}", c.output());
    let out = c.output();
    assert!(out.contains("address in use"), "{out}");
    assert!(out.contains(&port.to_string()), "{out}");
}

#[test]
fn a_port_held_by_another_corral_is_refused_and_shards_share_it() {
    let port = fresh_port();
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Two shards: they share the port between them.
    let mut first = Corral::spawn(&config(d1.path(), port, &["shards=2"]), &[]);
    let addr = first.wait_serving();
    assert_eq!(addr.port(), port);
    // Another dataDir, so its lock does not stop it; SO_REUSEPORT would let it in.
    let mut second = Corral::spawn(&config(d2.path(), port, &["shards=2"]), &[]);
    let status = second.wait_exit(Duration::from_secs(20));
    assert!(!status.success(), "second corral: {status}");
    let out = second.output();
    assert!(out.contains("address in use"), "{out}");
    assert!(out.contains(&port.to_string()), "{out}");
    // The first one still owns every connection.
    for _ in 0..20 {
        assert_eq!(four_letter_word(addr, "ruok").as_deref(), Some("imok"));
    }
    let s = four_letter_word(addr, "srvr").unwrap();
    assert!(s.contains("Mode: standalone"), "{s}");
}

/// The port's TIME-WAIT entries in /proc/net/tcp (state 06).
fn time_wait_entries(port: u16) -> usize {
    let text = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let local = format!(":{port:04X}");
    text.lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[1].ends_with(&local) && f[3] == "06"
        })
        .count()
}

#[test]
fn a_restart_binds_past_its_own_time_wait_connections() {
    let port = fresh_port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), port, &[]);
    let mut c = Corral::spawn(&cfg, &[]);
    let addr = c.wait_serving();
    // corral closes a four-letter word's connection first: TIME-WAIT on its side.
    for _ in 0..10 {
        assert_eq!(four_letter_word(addr, "ruok").as_deref(), Some("imok"));
    }
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        time_wait_entries(port) > 0,
        "no TIME-WAIT entry on {port}: the test would prove nothing"
    );
    c.stop();
    let mut c = Corral::spawn(&cfg, &[]);
    assert_eq!(c.wait_serving().port(), port);
    assert_eq!(four_letter_word(addr, "ruok").as_deref(), Some("imok"));
}

#[test]
fn connections_without_a_connect_request_are_closed() {
    let port = fresh_port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        port,
        &["nio.sessionlessCnxnTimeout=1000", "tickTime=2000"],
    );
    let mut c = Corral::spawn(&cfg, &[]);
    let addr = c.wait_serving();

    // Silent: closed after about a second.
    let mut silent = TcpStream::connect(addr).unwrap();
    let t = closed_after(&mut silent, Duration::from_secs(8)).expect("silent conn closed");
    assert!(t >= Duration::from_millis(700), "closed too early: {t:?}");
    // Half a ConnectRequest: its length, then nothing.
    let mut partial = TcpStream::connect(addr).unwrap();
    partial.write_all(&100i32.to_be_bytes()).unwrap();
    partial.write_all(&[0u8; 10]).unwrap();
    assert!(closed_after(&mut partial, Duration::from_secs(8)).is_some());

    // A four-letter word sent late within the time is answered.
    let mut word = TcpStream::connect(addr).unwrap();
    std::thread::sleep(Duration::from_millis(400));
    word.write_all(b"ruok").unwrap();
    word.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut out = String::new();
    word.read_to_string(&mut out).unwrap();
    assert_eq!(out, "imok");

    // A session idle for longer than the sessionless timeout stays (its own timeout
    // is 10 s): a ping after 2.5 s is answered.
    let mut session = open_session(addr);
    assert_eq!(
        closed_after(&mut session, Duration::from_millis(2500)),
        None
    );
    let mut ping = (-2i32).to_be_bytes().to_vec();
    ping.extend_from_slice(&11i32.to_be_bytes());
    session.write_all(&frame(&ping)).unwrap();
    session
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let reply = read_frame(&mut session).expect("ping reply");
    assert_eq!(&reply[..4], &(-2i32).to_be_bytes());
}

/// Every line of `log` parses as a JSON object with a level and a message.
fn json_lines(log: &[String]) -> Vec<serde_json::Value> {
    log.iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
            assert!(v["level"].is_string(), "no level: {l}");
            assert!(v["message"].is_string(), "no message: {l}");
            assert!(v["timestamp"].is_string(), "no timestamp: {l}");
            v
        })
        .collect()
}

#[test]
fn json_logs_from_the_environment_or_the_config() {
    let port = fresh_port();
    let dir = tempfile::tempdir().unwrap();
    // Every fsync is "slow" at a threshold of 0 ms: the warning is logged.
    let cfg = config(dir.path(), port, &["fsync.warningthresholdms=0"]);
    let mut c = Corral::spawn(&cfg, &[("CORRAL_LOG_FORMAT", "json")]);
    let addr = c.wait_serving();
    // A new session is a txn: logged, fsynced, warned about.
    drop(open_session(addr));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = c.log.lock().unwrap().clone();
        let lines = json_lines(&log);
        let serving = lines
            .iter()
            .any(|v| v["level"] == "INFO" && v["message"] == "serving clients");
        let slow = lines.iter().any(|v| {
            v["level"] == "WARN"
                && v["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("fsync-ing the write ahead log took"))
        });
        if serving && slow {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "serving={serving} slow-fsync={slow}:\n{}",
            log.join("\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    c.stop();

    // The config key, and the level from the environment: warnings only.
    let cfg = config(dir.path(), port, &["corral.logFormat=json"]);
    let mut c = Corral::spawn(&cfg, &[("CORRAL_LOG", "warn")]);
    let addr = c.wait_serving();
    drop(open_session(addr));
    std::thread::sleep(Duration::from_millis(300));
    let log = c.log.lock().unwrap().clone();
    for v in json_lines(&log) {
        assert!(v["level"] == "WARN" || v["level"] == "ERROR", "{v}");
    }
    c.stop();

    // Text stays the default; a bad format is refused.
    let mut c = Corral::spawn(&cfg, &[("CORRAL_LOG_FORMAT", "xml")]);
    let status = c.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(2), "{}", c.output());
    assert!(c.output().contains("CORRAL_LOG_FORMAT"), "{}", c.output());
}

#[test]
fn systemd_is_told_when_the_server_is_ready() {
    let port = fresh_port();
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let cfg = config(dir.path(), port, &[]);
    let mut c = Corral::spawn(&cfg, &[("NOTIFY_SOCKET", sock_path.to_str().unwrap())]);
    let mut buf = [0u8; 512];
    let n = sock.recv(&mut buf).expect("a notification");
    let msg = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(msg.lines().any(|l| l == "READY=1"), "{msg:?}");
    // Ready means serving.
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    assert_eq!(four_letter_word(addr, "ruok").as_deref(), Some("imok"));
    assert!(
        msg.contains(&format!("STATUS=serving clients on {addr}")),
        "{msg:?}"
    );
    assert_eq!(c.wait_serving(), addr);
}
