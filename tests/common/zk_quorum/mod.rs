//! A mixed ensemble for the quorum oracle tests: Apache ZooKeeper 3.8 servers (Debian's
//! `zookeeper` package, run as `QuorumPeerMain` from a zoo.cfg in a temp dir) next to
//! corral peers driven by the blocking test runtime in [`runtime`].
//!
//! Conventions as in `tests/common/mod.rs` and `tests/python/servers.py`: a temp dir per
//! server, loopback only, fresh ports checked free before use, the admin server off,
//! every four-letter word whitelisted, and exactly the processes started here are
//! killed (by their `Child` handle) when the ensemble is dropped.

#![allow(dead_code)]

pub mod runtime;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use corral::quorum::verifier::{QuorumServer, QuorumVerifier};
use corral::quorum::{LearnerType, Sid};

use runtime::{CorralPeer, MemberAddr, RuntimeConfig, Storage};

/// The jars the brief's command line names; without them the tests skip.
pub const REQUIRED_JARS: &[&str] = &[
    "/usr/share/java/zookeeper.jar",
    "/usr/share/java/slf4j-log4j12.jar",
    "/usr/share/java/log4j-1.2.jar",
];

/// The class path: the required jars first; zookeeper.jar's manifest pulls in the rest
/// (jute, netty, metrics, commons-cli...), listed again as tests/common does in case a
/// packaging has no manifest class path. Missing optional jars are harmless.
const OPTIONAL_JARS: &[&str] = &[
    "/usr/share/java/zookeeper-jute.jar",
    "/usr/share/java/slf4j-api.jar",
    "/usr/share/java/netty-all.jar",
    "/usr/share/java/metrics-core.jar",
    "/usr/share/java/commons-cli.jar",
    "/usr/share/java/snappy-java.jar",
];

/// None when ZooKeeper can run here, else why not (the tests print it and pass).
pub fn zookeeper_missing() -> Option<String> {
    for j in REQUIRED_JARS {
        if !Path::new(j).exists() {
            return Some(format!(
                "{j} is missing (install Debian's `zookeeper` package)"
            ));
        }
    }
    match Command::new("java")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => None,
        _ => Some("no working `java` on PATH".to_string()),
    }
}

/// Only one mixed ensemble at a time: several JVMs at tickTime 200 ms on a loaded
/// machine would time each other out.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Who runs a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    ZooKeeper,
    Corral,
    /// Configured but never started.
    Absent,
}

#[derive(Debug, Clone)]
pub struct Member {
    pub sid: Sid,
    pub kind: Kind,
    pub learner_type: LearnerType,
    pub quorum_port: u16,
    pub election_port: u16,
    pub client_port: u16,
}

impl Member {
    pub fn client_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.client_port))
    }
}

pub const TICK_MS: i64 = 200;
pub const INIT_LIMIT: i64 = 10;
pub const SYNC_LIMIT: i64 = 5;

/// A running ZooKeeper server.
pub struct ZkServer {
    pub sid: Sid,
    pub client: SocketAddr,
    child: Option<Child>,
    pid: u32,
    log: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl ZkServer {
    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log.lock().unwrap();
        let start = log.len().saturating_sub(n);
        log[start..].join("\n")
    }

    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    pub fn log_grep(&self, needle: &str) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .cloned()
            .collect()
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => c.try_wait().ok().flatten().is_none(),
            None => false,
        }
    }

    /// Kills exactly this process (SIGKILL to its pid, through its `Child`).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn four_letter(&self, word: &str) -> Option<String> {
        four_letter(self.client, word)
    }

    /// `srvr`'s Mode line: "leader", "follower", "observer", or None while not serving.
    pub fn mode(&self) -> Option<String> {
        let s = self.four_letter("srvr")?;
        s.lines()
            .find_map(|l| l.strip_prefix("Mode: "))
            .map(|m| m.trim().to_string())
    }

    /// `mntr` as key -> value.
    pub fn mntr(&self) -> BTreeMap<String, String> {
        self.four_letter("mntr")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(k, v)| (k.to_string(), v.trim().to_string()))
            .collect()
    }
}

impl Drop for ZkServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends a four-letter word and reads the whole answer.
pub fn four_letter(addr: SocketAddr, word: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    s.write_all(word.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

#[path = "../ports.rs"]
mod ports;
use ports::{fresh_port, port_is_free, ss_port};

/// The ensemble: members, their processes, the corral peers' runtimes.
pub struct Ensemble {
    pub members: Vec<Member>,
    pub t0: Instant,
    zk: BTreeMap<Sid, ZkServer>,
    corral: BTreeMap<Sid, CorralPeer>,
    /// Election and quorum listeners of corral members, bound at creation so nobody
    /// takes the ports.
    listeners: BTreeMap<Sid, (TcpListener, TcpListener)>,
    /// What a stopped corral peer left on its "disk".
    saved: BTreeMap<Sid, Storage>,
    /// Printed with the logs when a test fails.
    pub notes: Mutex<Vec<String>>,
}

impl Ensemble {
    /// `layout`: (sid, who runs it, participant or observer).
    pub fn new(layout: &[(Sid, Kind, LearnerType)]) -> Ensemble {
        let mut taken = Vec::new();
        let mut members = Vec::new();
        let mut listeners = BTreeMap::new();
        for &(sid, kind, learner_type) in layout {
            // A corral member's election and quorum ports are bound now and held.
            let (election_port, quorum_port) = if kind == Kind::Corral {
                let bind = |taken: &mut Vec<u16>| {
                    let p = fresh_port(taken);
                    let l = TcpListener::bind(("127.0.0.1", p)).expect("bind a corral port");
                    (l, p)
                };
                let (e, ep) = bind(&mut taken);
                let (q, qp) = bind(&mut taken);
                listeners.insert(sid, (e, q));
                (ep, qp)
            } else {
                (fresh_port(&mut taken), fresh_port(&mut taken))
            };
            members.push(Member {
                sid,
                kind,
                learner_type,
                quorum_port,
                election_port,
                client_port: fresh_port(&mut taken),
            });
        }
        Ensemble {
            members,
            t0: Instant::now(),
            zk: BTreeMap::new(),
            corral: BTreeMap::new(),
            listeners,
            saved: BTreeMap::new(),
            notes: Mutex::new(Vec::new()),
        }
    }

    pub fn member(&self, sid: Sid) -> &Member {
        self.members.iter().find(|m| m.sid == sid).expect("member")
    }

    pub fn elapsed_ms(&self) -> u128 {
        self.t0.elapsed().as_millis()
    }

    pub fn note(&self, s: impl Into<String>) {
        let s = s.into();
        eprintln!("[{:>6}ms] {s}", self.elapsed_ms());
        self.notes.lock().unwrap().push(s);
    }

    /// The `server.N` lines, as both ZooKeeper's zoo.cfg and our config string use them.
    fn server_value(m: &Member) -> String {
        let t = match m.learner_type {
            LearnerType::Participant => "participant",
            LearnerType::Observer => "observer",
        };
        format!("127.0.0.1:{}:{}:{t}", m.quorum_port, m.election_port)
    }

    /// `QuorumMaj.toString()` of this ensemble, built with corral's verifier.
    pub fn config_string(&self) -> String {
        let servers = self.members.iter().map(|m| {
            QuorumServer::parse(m.sid, &Self::server_value(m)).expect("server line parses")
        });
        QuorumVerifier::new(servers, 0)
            .expect("verifier")
            .to_config_string()
    }

    /// Starts the given ZooKeeper members together and waits until each serves.
    pub fn start_zookeepers(&mut self, sids: &[Sid]) {
        for &sid in sids {
            let zk = self.spawn_zookeeper(sid);
            self.zk.insert(sid, zk);
        }
        let deadline = Instant::now() + Duration::from_secs(45);
        for &sid in sids {
            loop {
                let zk = self.zk.get_mut(&sid).unwrap();
                if zk.mode().is_some() {
                    let mode = zk.mode().unwrap();
                    self.note(format!("ZooKeeper {sid} serves as {mode}"));
                    break;
                }
                if !zk.is_running() {
                    panic!(
                        "ZooKeeper {sid} exited during start-up; log:\n{}",
                        zk.log_tail(80)
                    );
                }
                if Instant::now() > deadline {
                    panic!(
                        "ZooKeeper {sid} did not serve within 45 s; log:\n{}",
                        zk.log_tail(80)
                    );
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    fn spawn_zookeeper(&mut self, sid: Sid) -> ZkServer {
        // A server another test binary killed a moment ago may hold a port until the
        // kernel has torn its sockets down: wait a little before calling it taken.
        let wait_free = |p: u16| {
            let deadline = Instant::now() + Duration::from_secs(5);
            while !port_is_free(p) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            port_is_free(p)
        };
        let client_port = self.member(sid).client_port;
        if !wait_free(client_port) {
            // Only this member's own zoo.cfg names its client port, so another
            // process that took it since it was picked costs nothing but a new pick.
            let mut taken: Vec<u16> = self
                .members
                .iter()
                .flat_map(|m| [m.client_port, m.quorum_port, m.election_port])
                .collect();
            let fresh = fresh_port(&mut taken);
            self.note(format!(
                "client port {client_port} picked for ZooKeeper {sid} was taken; using {fresh}. ss:\n{}",
                ss_port(client_port)
            ));
            let m = self.members.iter_mut().find(|m| m.sid == sid).unwrap();
            m.client_port = fresh;
        }
        let m = self.member(sid).clone();
        assert_eq!(m.kind, Kind::ZooKeeper);
        for p in [m.quorum_port, m.election_port] {
            // Every member's config names these, so they cannot be picked again.
            assert!(
                wait_free(p),
                "port {p} picked for ZooKeeper {sid} is still taken after 5 s; rerun. ss:\n{}",
                ss_port(p)
            );
        }
        let dir = tempfile::Builder::new()
            .prefix(&format!("corral-zkq-{sid}-"))
            .tempdir()
            .expect("temp dir");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join("myid"), format!("{sid}\n")).unwrap();
        let mut cfg = String::new();
        cfg.push_str(&format!("tickTime={TICK_MS}\n"));
        cfg.push_str(&format!("initLimit={INIT_LIMIT}\n"));
        cfg.push_str(&format!("syncLimit={SYNC_LIMIT}\n"));
        cfg.push_str(&format!("dataDir={}\n", data.display()));
        cfg.push_str(&format!("clientPort={}\n", m.client_port));
        cfg.push_str("clientPortAddress=127.0.0.1\n");
        cfg.push_str("admin.enableServer=false\n");
        cfg.push_str("4lw.commands.whitelist=*\n");
        cfg.push_str("maxClientCnxns=0\n");
        if m.learner_type == LearnerType::Observer {
            cfg.push_str("peerType=observer\n");
        }
        for o in &self.members {
            cfg.push_str(&format!("server.{}={}\n", o.sid, Self::server_value(o)));
        }
        let cfg_path: PathBuf = dir.path().join("zoo.cfg");
        std::fs::write(&cfg_path, &cfg).unwrap();
        let log4j = dir.path().join("log4j.properties");
        std::fs::write(
            &log4j,
            "log4j.rootLogger=INFO, C\n\
             log4j.appender.C=org.apache.log4j.ConsoleAppender\n\
             log4j.appender.C.layout=org.apache.log4j.PatternLayout\n\
             log4j.appender.C.layout.ConversionPattern=%d{HH:mm:ss,SSS} [%t] %-5p %c{1} - %m%n\n",
        )
        .unwrap();
        let cp = REQUIRED_JARS
            .iter()
            .chain(OPTIONAL_JARS)
            .filter(|j| Path::new(j).exists())
            .copied()
            .collect::<Vec<_>>()
            .join(":");
        let mut child = Command::new("java")
            .args(["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"])
            .arg(format!("-Dlog4j.configuration=file:{}", log4j.display()))
            .arg("-Dzookeeper.admin.enableServer=false")
            .arg("-Dzookeeper.fastleader.maxNotificationInterval=2000")
            .arg("-cp")
            .arg(cp)
            .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
            .arg(&cfg_path)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn java");
        let pid = child.id();
        let log = Arc::new(Mutex::new(Vec::new()));
        drain(child.stdout.take().unwrap(), log.clone());
        drain(child.stderr.take().unwrap(), log.clone());
        self.note(format!(
            "ZooKeeper {sid} started, pid {pid}, config:\n{cfg}"
        ));
        ZkServer {
            sid,
            client: m.client_addr(),
            child: Some(child),
            pid,
            log,
            _dir: dir,
        }
    }

    pub fn zk(&self, sid: Sid) -> &ZkServer {
        &self.zk[&sid]
    }

    pub fn zk_mut(&mut self, sid: Sid) -> &mut ZkServer {
        self.zk.get_mut(&sid).unwrap()
    }

    /// Running ZooKeeper members.
    pub fn zk_sids(&self) -> Vec<Sid> {
        self.zk.keys().copied().collect()
    }

    /// The ZooKeeper member whose srvr says "leader", waiting up to `within`.
    pub fn zk_leader(&self, within: Duration) -> Option<Sid> {
        let deadline = Instant::now() + within;
        loop {
            for (sid, zk) in &self.zk {
                if zk.child.is_some() && zk.mode().as_deref() == Some("leader") {
                    return Some(*sid);
                }
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The client connect string of the running ZooKeeper members.
    pub fn connect_string(&self, sids: &[Sid]) -> String {
        sids.iter()
            .map(|s| self.member(*s).client_addr().to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Kills ZooKeeper `sid` (its process only).
    pub fn kill_zookeeper(&mut self, sid: Sid) {
        let zk = self.zk.get_mut(&sid).unwrap();
        let pid = zk.pid;
        zk.kill();
        self.note(format!("ZooKeeper {sid} (pid {pid}) killed"));
    }

    /// Starts corral member `sid` from what it left on its "disk" (nothing at first).
    pub fn start_corral(&mut self, sid: Sid) {
        let m = self.member(sid).clone();
        assert_eq!(m.kind, Kind::Corral);
        let (listener, quorum_listener) = match self.listeners.remove(&sid) {
            Some(l) => l,
            None => (
                TcpListener::bind(("127.0.0.1", m.election_port))
                    .expect("re-bind our election port"),
                TcpListener::bind(("127.0.0.1", m.quorum_port)).expect("re-bind our quorum port"),
            ),
        };
        let members = self
            .members
            .iter()
            .map(|o| MemberAddr {
                sid: o.sid,
                quorum: SocketAddr::from(([127, 0, 0, 1], o.quorum_port)),
                election: SocketAddr::from(([127, 0, 0, 1], o.election_port)),
                learner_type: o.learner_type,
            })
            .collect();
        let cfg = RuntimeConfig {
            my_sid: sid,
            my_type: m.learner_type,
            members,
            tick_ms: TICK_MS,
            init_limit: INIT_LIMIT,
            sync_limit: SYNC_LIMIT,
            config_string: self.config_string(),
            quorum_listener,
        };
        let storage = self.saved.remove(&sid).unwrap_or_default();
        self.note(format!(
            "corral {sid} ({:?}) starts on election port {}, lastLogged {:#x}",
            m.learner_type,
            m.election_port,
            storage.last_logged()
        ));
        let peer = CorralPeer::start(cfg, listener, storage);
        self.corral.insert(sid, peer);
    }

    /// Stops corral member `sid`, keeping its storage for a later `start_corral`.
    pub fn stop_corral(&mut self, sid: Sid) {
        if let Some(mut p) = self.corral.remove(&sid) {
            let storage = p.stop();
            self.note(format!(
                "corral {sid} stopped: acceptedEpoch {} currentEpoch {} lastLogged {:#x} applied {:#x}",
                storage.accepted_epoch,
                storage.current_epoch,
                storage.last_logged(),
                storage.applied
            ));
            // Keep what it observed for the failure report.
            let trace = p.with(|o| o.trace.clone());
            self.notes.lock().unwrap().push(format!(
                "trace of the stopped corral {sid}:\n{}",
                trace.join("\n")
            ));
            self.saved.insert(sid, storage);
        }
    }

    pub fn corral(&self, sid: Sid) -> &CorralPeer {
        &self.corral[&sid]
    }

    /// Waits until `f` holds on corral `sid`'s observations; panics with `what` and the
    /// logs after `within`.
    pub fn wait_corral(
        &self,
        sid: Sid,
        within: Duration,
        what: &str,
        mut f: impl FnMut(&runtime::Observed) -> bool,
    ) {
        let deadline = Instant::now() + within;
        loop {
            if self.corral(sid).with(&mut f) {
                return;
            }
            if self.corral(sid).with(|o| o.stopped) {
                panic!("corral {sid} runtime stopped while waiting for {what}");
            }
            if Instant::now() > deadline {
                panic!("timed out after {within:?} waiting for corral {sid}: {what}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything useful after a failure: notes, corral traces, ZooKeeper log tails.
    pub fn report(&self) -> String {
        let mut out = String::new();
        out.push_str("==== notes ====\n");
        out.push_str(&self.notes.lock().unwrap().join("\n"));
        for (sid, p) in &self.corral {
            p.with(|o| {
                out.push_str(&format!(
                    "\n==== corral {sid}: roles {:?}\nproblems {:?}\npings in/out {}/{}, notifications in/out {}/{}\n---- trace (last 300) ----\n",
                    o.roles, o.problems, o.pings_in, o.pings_out, o.notifications_in, o.notifications_out
                ));
                let start = o.trace.len().saturating_sub(300);
                out.push_str(&o.trace[start..].join("\n"));
            });
        }
        for (sid, zk) in &self.zk {
            out.push_str(&format!(
                "\n==== ZooKeeper {sid} log (last 120 lines) ====\n{}",
                zk.log_tail(120)
            ));
        }
        out
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.report());
        } else if std::env::var("CORRAL_ZKQ_SHOW_LOG").is_ok_and(|v| v == "1") {
            // The full story of a passing run, for evidence.
            for (sid, zk) in &self.zk {
                eprintln!(
                    "==== ZooKeeper {sid} full log ====\n{}",
                    zk.log_lines().join("\n")
                );
            }
            for (sid, p) in &self.corral {
                p.with(|o| eprintln!("==== corral {sid} trace ====\n{}", o.trace.join("\n")));
            }
            eprintln!("==== notes ====\n{}", self.notes.lock().unwrap().join("\n"));
        }
        // Corral runtimes first (they hold sockets to the ZooKeepers), then exactly the
        // ZooKeeper processes this ensemble started.
        let sids: Vec<Sid> = self.corral.keys().copied().collect();
        for sid in sids {
            if let Some(mut p) = self.corral.remove(&sid) {
                p.stop();
            }
        }
        for (_, mut zk) in std::mem::take(&mut self.zk) {
            zk.kill();
        }
    }
}

fn drain(r: impl Read + Send + 'static, log: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            let mut log = log.lock().unwrap();
            if log.len() < 50_000 {
                log.push(line);
            }
        }
    });
}
