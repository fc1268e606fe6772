//! A mixed ensemble of real processes for `tests/mixed_ensemble.rs`: Apache ZooKeeper
//! 3.8 servers (Debian's `zookeeper` package, run as `QuorumPeerMain`) next to corral
//! servers (`target/debug/corral server --config zoo.cfg`), all from the same zoo.cfg
//! keys: `server.N=127.0.0.1:quorumPort:electionPort[:observer]` lines, `dataDir/myid`,
//! tickTime/initLimit/syncLimit, loopback only, every four-letter word whitelisted.
//!
//! # Processes
//!
//! Every process is started here and remembered by its `Child` (so by pid); a test
//! kills it with SIGKILL through that handle, and the drop kills exactly those that
//! still run. Nothing else is ever signalled. Every port is checked free before a
//! server is started on it (glommio binds with SO_REUSEPORT: a leftover process would
//! silently share the port).
//!
//! # Logs
//!
//! Each server's stdout and stderr (corral's tracing output, ZooKeeper's log4j console
//! log) are captured line by line, stamped with the ms since the ensemble was created,
//! in memory and in `server.log` of the server's dir; test events go through
//! [`Mixed::note`] on the same clock. When a test panics, the notes and the tail of
//! every server's log are printed (`CORRAL_MIXED_LOG_LINES`, default 200) and the temp
//! dir is kept (its path is printed); `CORRAL_MIXED_KEEP=1` keeps it always.
//!
//! ZooKeeper's `DataTree` logs at DEBUG: it is where a txn ZooKeeper cannot apply is
//! reported (`Failed: <header>:<txn>` with the IOException), and nowhere else.
//! `CORRAL_MIXED_BIN=/path/to/corral` runs another corral build than this crate's.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Jars without which ZooKeeper cannot run here (the tests then skip).
const REQUIRED_JARS: &[&str] = &[
    "/usr/share/java/zookeeper.jar",
    "/usr/share/java/zookeeper-jute.jar",
    "/usr/share/java/slf4j-api.jar",
    "/usr/share/java/slf4j-log4j12.jar",
    "/usr/share/java/log4j-1.2.jar",
];

/// The rest of the class path (zookeeper.jar's manifest names most of them too);
/// missing ones are left out.
const OPTIONAL_JARS: &[&str] = &[
    "/usr/share/java/netty-all.jar",
    "/usr/share/java/netty-handler.jar",
    "/usr/share/java/netty-transport.jar",
    "/usr/share/java/netty-common.jar",
    "/usr/share/java/netty-buffer.jar",
    "/usr/share/java/netty-codec.jar",
    "/usr/share/java/netty-resolver.jar",
    "/usr/share/java/netty-transport-native-unix-common.jar",
    "/usr/share/java/metrics-core.jar",
    "/usr/share/java/commons-cli.jar",
    "/usr/share/java/snappy-java.jar",
];

/// None when ZooKeeper can run here, else why not.
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

/// One mixed ensemble at a time per test binary (three JVMs and corral on a small
/// machine would time each other out). Tests hold the guard for their whole run.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    ZooKeeper,
    Corral,
}

/// What `srvr` says a member is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Leader,
    Follower,
    Observer,
    Standalone,
    /// Answers, but "This ZooKeeper instance is not currently serving requests".
    NotServing,
    Unknown,
    /// Not running, or no answer.
    Down,
}

impl Mode {
    pub fn parse(srvr: Option<&str>) -> Mode {
        let Some(text) = srvr else { return Mode::Down };
        if text.contains("not currently serving") {
            return Mode::NotServing;
        }
        match text
            .lines()
            .find_map(|l| l.strip_prefix("Mode:"))
            .map(|m| m.trim())
        {
            Some("leader") => Mode::Leader,
            Some("follower") => Mode::Follower,
            Some("observer") => Mode::Observer,
            Some("standalone") => Mode::Standalone,
            _ if text.is_empty() => Mode::Down,
            _ => Mode::Unknown,
        }
    }

    pub fn serving(self) -> bool {
        matches!(self, Mode::Leader | Mode::Follower | Mode::Observer)
    }
}

pub struct Member {
    pub sid: u64,
    pub kind: Kind,
    pub observer: bool,
    pub client_port: u16,
    pub quorum_port: u16,
    pub election_port: u16,
    pub dir: PathBuf,
    child: Option<Child>,
    pid: Option<u32>,
    log: Arc<Mutex<Vec<String>>>,
    starts: usize,
}

impl Member {
    pub fn client_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.client_port))
    }

    pub fn name(&self) -> String {
        let k = match self.kind {
            Kind::ZooKeeper => "ZooKeeper",
            Kind::Corral => "corral",
        };
        format!("{k} {}", self.sid)
    }

    fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => c.try_wait().ok().flatten().is_none(),
            None => false,
        }
    }
}

pub struct Mixed {
    pub members: Vec<Member>,
    pub tick_ms: u64,
    pub init_limit: u64,
    pub sync_limit: u64,
    pub t0: Instant,
    root: Option<tempfile::TempDir>,
    notes: Arc<Mutex<Vec<String>>>,
    /// zoo.cfg lines every server gets (`add_cfg`).
    extra_cfg: Vec<String>,
    /// `-Dname=value` flags every server gets (`add_jvm_flags`): on ZooKeeper's java
    /// command line, in corral's `SERVER_JVMFLAGS` (where zkServer.sh puts them).
    jvm_flags: Vec<String>,
}

#[path = "ports.rs"]
mod ports;
use ports::{fresh_port, port_is_free, ss_port};

/// Sends a four-letter word and reads the whole answer (the server closes after it).
pub fn four_letter(addr: SocketAddr, word: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(word.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

impl Mixed {
    /// Creates the ensemble (dirs, myid files, zoo.cfg, ports) without starting
    /// anything. `layout`: (sid, who runs it, observer?).
    pub fn new(
        layout: &[(u64, Kind, bool)],
        tick_ms: u64,
        init_limit: u64,
        sync_limit: u64,
    ) -> Mixed {
        let root = tempfile::Builder::new()
            .prefix("corral-mixed-")
            .tempdir()
            .expect("temp dir");
        let mut taken = Vec::new();
        let mut port = || fresh_port(&mut taken);
        let mut members = Vec::new();
        for &(sid, kind, observer) in layout {
            let dir = root.path().join(format!("server{sid}"));
            std::fs::create_dir_all(dir.join("data")).unwrap();
            std::fs::write(dir.join("data").join("myid"), format!("{sid}\n")).unwrap();
            members.push(Member {
                sid,
                kind,
                observer,
                client_port: port(),
                quorum_port: port(),
                election_port: port(),
                dir,
                child: None,
                pid: None,
                log: Arc::default(),
                starts: 0,
            });
        }
        let m = Mixed {
            members,
            tick_ms,
            init_limit,
            sync_limit,
            t0: Instant::now(),
            root: Some(root),
            notes: Arc::default(),
            extra_cfg: Vec::new(),
            jvm_flags: Vec::new(),
        };
        for i in 0..m.members.len() {
            let text = m.config_text(i);
            std::fs::write(m.members[i].dir.join("zoo.cfg"), &text).unwrap();
        }
        m.note(format!(
            "ensemble in {}:\n{}",
            m.root.as_ref().unwrap().path().display(),
            m.config_text(0)
        ));
        m
    }

    /// Adds zoo.cfg lines ("key=value") for every server and rewrites the files; call
    /// before `start`.
    pub fn add_cfg(&mut self, lines: &[String]) {
        self.extra_cfg.extend_from_slice(lines);
        for i in 0..self.members.len() {
            let text = self.config_text(i);
            std::fs::write(self.members[i].dir.join("zoo.cfg"), &text).unwrap();
        }
    }

    /// Adds JVM system properties ("-Dname=value") for every server; before `start`.
    pub fn add_jvm_flags(&mut self, flags: &[String]) {
        self.jvm_flags.extend_from_slice(flags);
    }

    /// Replaces the JVM system properties of every server started from now on.
    pub fn set_jvm_flags(&mut self, flags: &[String]) {
        self.jvm_flags = flags.to_vec();
    }

    fn idx(&self, sid: u64) -> usize {
        self.members
            .iter()
            .position(|m| m.sid == sid)
            .unwrap_or_else(|| panic!("no member {sid}"))
    }

    pub fn member(&self, sid: u64) -> &Member {
        &self.members[self.idx(sid)]
    }

    pub fn name(&self, sid: u64) -> String {
        self.member(sid).name()
    }

    pub fn sids(&self) -> Vec<u64> {
        self.members.iter().map(|m| m.sid).collect()
    }

    pub fn sids_of(&self, kind: Kind) -> Vec<u64> {
        self.members
            .iter()
            .filter(|m| m.kind == kind)
            .map(|m| m.sid)
            .collect()
    }

    pub fn elapsed_ms(&self) -> u128 {
        self.t0.elapsed().as_millis()
    }

    pub fn note(&self, s: impl Into<String>) {
        let s = format!("[+{:>6}ms] {}", self.elapsed_ms(), s.into());
        eprintln!("{s}");
        self.notes.lock().unwrap().push(s);
    }

    /// The same zoo.cfg for every member (a ZooKeeper member's own `peerType` line
    /// aside, which both servers read).
    pub fn config_text(&self, i: usize) -> String {
        let m = &self.members[i];
        let mut cfg = String::new();
        cfg.push_str(&format!("tickTime={}\n", self.tick_ms));
        cfg.push_str(&format!("initLimit={}\n", self.init_limit));
        cfg.push_str(&format!("syncLimit={}\n", self.sync_limit));
        cfg.push_str(&format!("dataDir={}\n", m.dir.join("data").display()));
        cfg.push_str(&format!("clientPort={}\n", m.client_port));
        cfg.push_str("clientPortAddress=127.0.0.1\n");
        cfg.push_str("admin.enableServer=false\n");
        cfg.push_str("4lw.commands.whitelist=*\n");
        cfg.push_str("maxClientCnxns=0\n");
        if m.observer {
            cfg.push_str("peerType=observer\n");
        }
        if m.kind == Kind::Corral {
            // Members on one host share its cores (one shard each here by default); two
            // keep the cross-shard paths of an ensemble member under test.
            let n = std::env::var("CORRAL_TEST_SHARDS").unwrap_or_else(|_| "2".into());
            cfg.push_str(&format!("shards={n}\n"));
        }
        for line in &self.extra_cfg {
            cfg.push_str(line);
            cfg.push('\n');
        }
        for o in &self.members {
            let role = if o.observer { ":observer" } else { "" };
            cfg.push_str(&format!(
                "server.{}=127.0.0.1:{}:{}{role}\n",
                o.sid, o.quorum_port, o.election_port
            ));
        }
        cfg
    }

    /// Starts the given members (all spawned first), without waiting for them.
    pub fn start(&mut self, sids: &[u64]) {
        for &sid in sids {
            self.spawn(self.idx(sid));
        }
    }

    fn spawn(&mut self, i: usize) {
        assert!(
            self.members[i].child.is_none(),
            "{} already runs",
            self.members[i].name()
        );
        let t0 = self.t0;
        let (sid, ports) = {
            let m = &self.members[i];
            (m.sid, [m.client_port, m.quorum_port, m.election_port])
        };
        for p in ports {
            self.wait_port_free(sid, p);
        }
        let m = &mut self.members[i];
        let cfg_path = m.dir.join("zoo.cfg");
        let mut cmd = match m.kind {
            Kind::ZooKeeper => {
                let log4j = m.dir.join("log4j.properties");
                std::fs::write(
                    &log4j,
                    "log4j.rootLogger=INFO, C\n\
                     log4j.appender.C=org.apache.log4j.ConsoleAppender\n\
                     log4j.appender.C.layout=org.apache.log4j.PatternLayout\n\
                     log4j.appender.C.layout.ConversionPattern=%d{HH:mm:ss,SSS} [%t] %-5p %c{1} - %m%n\n\
                     log4j.logger.org.apache.zookeeper.server.DataTree=DEBUG\n",
                )
                .unwrap();
                let cp = REQUIRED_JARS
                    .iter()
                    .chain(OPTIONAL_JARS)
                    .filter(|j| Path::new(j).exists())
                    .copied()
                    .collect::<Vec<_>>()
                    .join(":");
                let mut c = Command::new("java");
                c.args(["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"])
                    .arg(format!("-Dlog4j.configuration=file:{}", log4j.display()))
                    .arg("-Dzookeeper.admin.enableServer=false")
                    .args(&self.jvm_flags)
                    .arg("-cp")
                    .arg(cp)
                    .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
                    .arg(&cfg_path);
                c
            }
            Kind::Corral => {
                let bin = std::env::var_os("CORRAL_MIXED_BIN")
                    .unwrap_or_else(|| env!("CARGO_BIN_EXE_corral").into());
                let mut c = Command::new(bin);
                c.arg("server").arg("--config").arg(&cfg_path);
                if !self.jvm_flags.is_empty() {
                    c.env("SERVER_JVMFLAGS", self.jvm_flags.join(" "));
                }
                if std::env::var_os("RUST_LOG").is_none() {
                    c.env("RUST_LOG", "info");
                }
                c
            }
        };
        let mut child = cmd
            .current_dir(&m.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn a server");
        m.starts += 1;
        let pid = child.id();
        m.pid = Some(pid);
        let header = format!(
            "[+{:>6}ms] ===== {} start #{} pid {pid} =====",
            t0.elapsed().as_millis(),
            m.name(),
            m.starts
        );
        let file = Arc::new(Mutex::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(m.dir.join("server.log"))
                .unwrap(),
        ));
        let _ = writeln!(file.lock().unwrap(), "{header}");
        push_line(&m.log, header);
        drain(
            child.stdout.take().unwrap(),
            m.log.clone(),
            file.clone(),
            t0,
        );
        drain(child.stderr.take().unwrap(), m.log.clone(), file, t0);
        m.child = Some(child);
        let name = m.name();
        self.note(format!("{name} started, pid {pid}"));
    }

    /// Waits (up to 30 s) until nothing listens on `port`.
    fn wait_port_free(&self, sid: u64, port: u16) {
        if port_is_free(port) {
            return;
        }
        let t = Instant::now();
        let seen = ss_port(port);
        loop {
            std::thread::sleep(Duration::from_millis(50));
            if port_is_free(port) {
                self.note(format!(
                    "port {port} of server.{sid} was in use at its start; free after {:?}. ss:\n{seen}",
                    t.elapsed()
                ));
                return;
            }
            if t.elapsed() > Duration::from_secs(30) {
                self.fail(format!(
                    "port {port} of server.{sid} is still in use after 30 s (a leftover \
                     listener would share it). ss at first:\n{seen}\nnow:\n{}",
                    ss_port(port)
                ));
            }
        }
    }

    /// SIGKILL member `sid` (its own process, through its `Child`) and reap it.
    pub fn kill9(&mut self, sid: u64) {
        let i = self.idx(sid);
        let m = &mut self.members[i];
        if let Some(mut c) = m.child.take() {
            let _ = c.kill();
            let status = c.wait();
            let (name, pid) = (m.name(), m.pid.take());
            push_line(
                &m.log,
                format!(
                    "[+{:>6}ms] ===== killed with SIGKILL =====",
                    self.t0.elapsed().as_millis()
                ),
            );
            self.note(format!(
                "{name} (pid {pid:?}) killed with SIGKILL ({})",
                status.map(|s| s.to_string()).unwrap_or_default()
            ));
        }
    }

    pub fn is_running(&mut self, sid: u64) -> bool {
        let i = self.idx(sid);
        self.members[i].is_running()
    }

    pub fn client_addr(&self, sid: u64) -> SocketAddr {
        self.member(sid).client_addr()
    }

    pub fn connect_string(&self, sids: &[u64]) -> String {
        sids.iter()
            .map(|&s| self.client_addr(s).to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn four_letter(&self, sid: u64, word: &str) -> Option<String> {
        four_letter(self.client_addr(sid), word)
    }

    pub fn mode(&mut self, sid: u64) -> Mode {
        if !self.is_running(sid) {
            return Mode::Down;
        }
        Mode::parse(self.four_letter(sid, "srvr").as_deref())
    }

    pub fn modes(&mut self) -> Vec<(u64, Mode)> {
        self.sids().into_iter().map(|s| (s, self.mode(s))).collect()
    }

    /// `mntr` as key -> value (empty if no answer).
    pub fn mntr(&self, sid: u64) -> BTreeMap<String, String> {
        self.four_letter(sid, "mntr")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(k, v)| (k.to_string(), v.trim().to_string()))
            .collect()
    }

    /// Waits until every member in `sids` serves in its role (voters leader or
    /// follower, observers observer) and exactly one of them leads; returns the
    /// leader. Fails early if one of them exited.
    pub fn wait_settled(&mut self, sids: &[u64], within: Duration) -> u64 {
        let deadline = Instant::now() + within;
        loop {
            let mut leaders = Vec::new();
            let mut ok = true;
            for &sid in sids {
                if !self.is_running(sid) {
                    std::thread::sleep(Duration::from_millis(200));
                    self.fail(format!(
                        "{} exited; the last lines of its log:\n{}",
                        self.name(sid),
                        self.log_tail(sid, 6)
                    ));
                }
                let observer = self.member(sid).observer;
                match (self.mode(sid), observer) {
                    (Mode::Leader, false) => leaders.push(sid),
                    (Mode::Follower, false) | (Mode::Observer, true) => {}
                    _ => ok = false,
                }
            }
            if ok && leaders.len() == 1 {
                let modes = self.modes();
                self.note(format!("settled: {modes:?}"));
                return leaders[0];
            }
            if Instant::now() > deadline {
                let modes = self.modes();
                self.fail(format!(
                    "{sids:?} did not settle (one leader, the rest serving) within {within:?}; modes now {modes:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until `sid`'s mntr satisfies `ok`; returns it.
    pub fn wait_mntr(
        &self,
        sid: u64,
        within: Duration,
        what: &str,
        ok: impl Fn(&BTreeMap<String, String>) -> bool,
    ) -> BTreeMap<String, String> {
        let deadline = Instant::now() + within;
        loop {
            let m = self.mntr(sid);
            if ok(&m) {
                return m;
            }
            if Instant::now() > deadline {
                self.fail(format!(
                    "{}'s mntr never showed {what} within {within:?}; it shows:\n{}",
                    self.name(sid),
                    m.iter()
                        .map(|(k, v)| format!("  {k}\t{v}"))
                        .collect::<Vec<_>>()
                        .join("\n")
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    // ---- logs ----

    pub fn log_len(&self, sid: u64) -> usize {
        self.member(sid).log.lock().unwrap().len()
    }

    pub fn log_lines(&self, sid: u64) -> Vec<String> {
        self.member(sid).log.lock().unwrap().clone()
    }

    pub fn log_tail(&self, sid: u64, n: usize) -> String {
        let log = self.member(sid).log.lock().unwrap();
        let start = log.len().saturating_sub(n);
        log[start..].join("\n")
    }

    /// Lines of `sid`'s log from line `from` on that contain any of `needles`.
    pub fn log_grep_from(&self, sid: u64, from: usize, needles: &[&str]) -> Vec<String> {
        let log = self.member(sid).log.lock().unwrap();
        log.iter()
            .skip(from)
            .filter(|l| needles.iter().any(|n| l.contains(n)))
            .cloned()
            .collect()
    }

    /// Panics with `msg` (the drop prints the notes and logs).
    pub fn fail(&self, msg: String) -> ! {
        self.note(format!("FAILED: {msg}"));
        panic!("{msg}");
    }

    fn dump(&self) {
        let n: usize = std::env::var("CORRAL_MIXED_LOG_LINES")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(200);
        let mut out = String::new();
        out.push_str("\n======== mixed ensemble test failed: events ========\n");
        for l in self.notes.lock().unwrap().iter() {
            out.push_str(l);
            out.push('\n');
        }
        for m in &self.members {
            let marked = self.log_grep_from(m.sid, 0, MARKED);
            if !marked.is_empty() {
                out.push_str(&format!(
                    "======== {}: every ERROR line and txn it failed to apply ========\n{}\n",
                    m.name(),
                    marked.join("\n")
                ));
            }
        }
        for m in &self.members {
            out.push_str(&format!(
                "======== {} log (last {n} lines) ========\n{}\n",
                m.name(),
                self.log_tail(m.sid, n)
            ));
        }
        eprintln!("{out}");
    }
}

impl Drop for Mixed {
    fn drop(&mut self) {
        let panicking = std::thread::panicking();
        if panicking {
            self.dump();
        }
        for m in &mut self.members {
            if let Some(mut c) = m.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        let keep = panicking || std::env::var("CORRAL_MIXED_KEEP").is_ok_and(|v| v == "1");
        if let Some(root) = self.root.take() {
            if keep {
                let path = root.keep();
                eprintln!(
                    "mixed ensemble dir kept: {} (server*/server.log, zoo.cfg, data)",
                    path.display()
                );
            }
        }
    }
}

/// Log lines a failure report shows in full: errors, and txns ZooKeeper's DataTree
/// could not apply (logged at DEBUG only).
pub const MARKED: &[&str] = &[" ERROR ", "DataTree - Failed", "Exception: "];

fn push_line(log: &Mutex<Vec<String>>, line: String) {
    let mut log = log.lock().unwrap();
    if log.len() >= 100_000 {
        log.drain(..20_000);
    }
    log.push(line);
}

/// Reads a child's output into the memory log and the server's log file, each line
/// stamped.
fn drain(
    r: impl Read + Send + 'static,
    log: Arc<Mutex<Vec<String>>>,
    file: Arc<Mutex<std::fs::File>>,
    t0: Instant,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            let stamped = format!("[+{:>6}ms] {line}", t0.elapsed().as_millis());
            let _ = writeln!(file.lock().unwrap(), "{stamped}");
            push_line(&log, stamped);
        }
    });
}
