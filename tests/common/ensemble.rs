//! A loopback ensemble for the ensemble tests: N voters and M observers on 127.0.0.1,
//! each with fresh client, quorum and election ports, its own data dir and `myid`,
//! started from `target/debug/corral` (or, with `CORRAL_TEST_ZOOKEEPER=1`, as Apache
//! ZooKeeper 3.8 `QuorumPeerMain` processes: the same tests then check themselves
//! against the reference implementation).
//!
//! # Partitions
//!
//! With [`Opts::proxied`], every *directed pair* of servers (A dials B) gets two TCP
//! proxies of its own, one for B's quorum port and one for B's election port, and A's
//! zoo.cfg names those proxy ports as B's addresses (A's own `server.A` line keeps its
//! real ports, which it binds). So each server has its own zoo.cfg, and every byte of
//! quorum and election traffic between two servers crosses exactly one proxy that
//! belongs to that pair: [`Ensemble::isolate`] blocks (new connections are closed on
//! accept) and cuts (live connections are shut down) every proxy into and out of a
//! server; [`Ensemble::partition`] does the same for the pairs across two groups.
//!
//! One detail makes that hold for the election port: when a lower sid dials a higher
//! one, ZooKeeper's `QuorumCnxManager.handleConnection` drops the connection and dials
//! back to the address the dialler *advertised* in its initial message (its own
//! `server.N` line: the real port), which would bypass the proxies. The election
//! proxies therefore rewrite that address, on the way through, to the proxy of the
//! reverse pair (B dials A), so the call-back crosses a proxy of the pair too. Client
//! ports are never proxied (clients connect to servers directly), and traffic a test
//! sends itself is not affected by partitions.
//!
//! # Processes
//!
//! Every process is started here, remembered by its `Child` (so by pid), and killed
//! with SIGKILL when the test kills it or when the ensemble is dropped; nothing else is
//! ever signalled. Every port is checked free before a server is started on it (glommio
//! binds with SO_REUSEPORT: a leftover server would silently share the port).
//!
//! Server output is captured, each line stamped with the ms since the ensemble was
//! created, in memory and in `server.log` of the server's dir; test events go through
//! [`Ensemble::note`] with the same clock. When a test panics, the notes and the tail
//! of every server's log are printed (`CORRAL_ENSEMBLE_LOG_LINES`, default 150) and
//! the temp dir is kept (its path is printed); `CORRAL_ENSEMBLE_KEEP=1` keeps it always.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use zookeeper_client as zk;

use super::{four_letter_word_blocking, using_zookeeper};

pub const INIT_LIMIT: u64 = 10;
pub const SYNC_LIMIT: u64 = 5;

/// Only one ensemble at a time in a test binary: several at tickTime 300 ms on two
/// cores would time each other out. Tests hold the guard for their whole run (an async
/// mutex: it is held across awaits, and each test has its own runtime).
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// The tick every ensemble test uses: `CORRAL_ENSEMBLE_TICK` ms, default 300.
pub fn tick_ms() -> u64 {
    std::env::var("CORRAL_ENSEMBLE_TICK")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300)
}

#[derive(Debug, Clone)]
pub struct Opts {
    pub voters: usize,
    pub observers: usize,
    pub proxied: bool,
    pub tick_ms: u64,
    /// Extra zoo.cfg lines ("key=value") for every server.
    pub extra_cfg: Vec<String>,
}

impl Opts {
    pub fn voters(n: usize) -> Opts {
        Opts {
            voters: n,
            observers: 0,
            proxied: false,
            tick_ms: tick_ms(),
            extra_cfg: Vec::new(),
        }
    }

    pub fn observers(mut self, m: usize) -> Opts {
        self.observers = m;
        self
    }

    pub fn proxied(mut self) -> Opts {
        self.proxied = true;
        self
    }

    pub fn cfg(mut self, line: &str) -> Opts {
        self.extra_cfg.push(line.to_string());
        self
    }
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
    /// Answered something else.
    Unknown,
    /// Not running, or no answer.
    Down,
}

impl Mode {
    pub fn serving(self) -> bool {
        matches!(self, Mode::Leader | Mode::Follower | Mode::Observer)
    }

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
}

/// One member: its ports, dir and (while running) process.
pub struct Member {
    pub sid: u64,
    pub observer: bool,
    pub client_port: u16,
    pub quorum_port: u16,
    pub election_port: u16,
    pub dir: PathBuf,
    child: Option<Child>,
    pid: Option<u32>,
    log: Arc<Mutex<Vec<String>>>,
    starts: usize,
    /// zoo.cfg lines of this member only, after the ensemble's (`set_member_cfg`).
    member_cfg: Vec<String>,
}

impl Member {
    pub fn client_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.client_port))
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => c.try_wait().ok().flatten().is_none(),
            None => false,
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.pid
    }
}

/// A TCP proxy for one directed pair of servers and one port (quorum or election).
struct LinkProxy {
    addr: SocketAddr,
    state: Arc<ProxyState>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Default)]
struct ProxyState {
    stop: AtomicBool,
    blocked: AtomicBool,
    /// Holds back what the target sends to the dialler (the kernel buffers it) until
    /// cleared: a slow link in one direction, connections kept.
    held: AtomicBool,
    next_id: AtomicU64,
    /// Live connections: (client side, server side), for `cut`.
    conns: Mutex<HashMap<u64, (TcpStream, TcpStream)>>,
    forwarded: AtomicU64,
    refused: AtomicU64,
}

impl ProxyState {
    fn cut(&self) {
        let conns = self.conns.lock().unwrap();
        for (a, b) in conns.values() {
            let _ = a.shutdown(Shutdown::Both);
            let _ = b.shutdown(Shutdown::Both);
        }
    }
}

impl LinkProxy {
    /// Binds now (so the port is ours); forwards to `target` once `run` is called.
    fn bind() -> (TcpListener, SocketAddr) {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind a proxy port");
        let addr = l.local_addr().unwrap();
        (l, addr)
    }

    /// `rewrite`: on election connections, the address to put in the dialler's initial
    /// message instead of the one it advertises.
    fn run(listener: TcpListener, target: SocketAddr, rewrite: Option<String>) -> LinkProxy {
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(ProxyState::default());
        let st = state.clone();
        listener.set_nonblocking(true).unwrap();
        let thread = std::thread::spawn(move || {
            while !st.stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((inbound, _)) => {
                        let _ = inbound.set_nonblocking(false);
                        if st.blocked.load(Ordering::SeqCst) {
                            st.refused.fetch_add(1, Ordering::Relaxed);
                            let _ = inbound.shutdown(Shutdown::Both);
                            continue;
                        }
                        let st = st.clone();
                        let rewrite = rewrite.clone();
                        std::thread::spawn(move || forward(st, inbound, target, rewrite));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        LinkProxy {
            addr,
            state,
            thread: Some(thread),
        }
    }

    fn set_blocked(&self, blocked: bool) {
        self.state.blocked.store(blocked, Ordering::SeqCst);
    }

    fn cut(&self) {
        self.state.cut();
    }
}

impl Drop for LinkProxy {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        self.state.blocked.store(true, Ordering::SeqCst);
        self.state.cut();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One proxied connection: connect to the target, register (unless blocked meanwhile),
/// then copy both ways until either side ends or the connection is cut.
fn forward(st: Arc<ProxyState>, inbound: TcpStream, target: SocketAddr, rewrite: Option<String>) {
    let Ok(outbound) = TcpStream::connect_timeout(&target, Duration::from_secs(2)) else {
        let _ = inbound.shutdown(Shutdown::Both);
        return;
    };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let id = st.next_id.fetch_add(1, Ordering::Relaxed);
    {
        // `blocked` is checked under the lock `cut` takes: a connection registered after
        // an isolate's cut would otherwise survive it.
        let mut conns = st.conns.lock().unwrap();
        if st.blocked.load(Ordering::SeqCst) {
            st.refused.fetch_add(1, Ordering::Relaxed);
            let _ = inbound.shutdown(Shutdown::Both);
            let _ = outbound.shutdown(Shutdown::Both);
            return;
        }
        let (Ok(a), Ok(b)) = (inbound.try_clone(), outbound.try_clone()) else {
            return;
        };
        conns.insert(id, (a, b));
    }
    st.forwarded.fetch_add(1, Ordering::Relaxed);
    let (Ok(mut in_r), Ok(mut out_w)) = (inbound.try_clone(), outbound.try_clone()) else {
        return;
    };
    let (mut out_r, mut in_w) = (outbound, inbound);
    let up = std::thread::spawn(move || {
        if let Some(addr) = rewrite {
            if rewrite_initial_message(&mut in_r, &mut out_w, &addr).is_err() {
                let _ = in_r.shutdown(Shutdown::Both);
                let _ = out_w.shutdown(Shutdown::Both);
                return;
            }
        }
        let _ = std::io::copy(&mut in_r, &mut out_w);
        let _ = in_r.shutdown(Shutdown::Both);
        let _ = out_w.shutdown(Shutdown::Both);
    });
    copy_unless_held(&st, &mut out_r, &mut in_w);
    let _ = out_r.shutdown(Shutdown::Both);
    let _ = in_w.shutdown(Shutdown::Both);
    let _ = up.join();
    st.conns.lock().unwrap().remove(&id);
}

/// Copies target-to-dialler bytes, pausing while the proxy is held.
fn copy_unless_held(st: &ProxyState, r: &mut TcpStream, w: &mut TcpStream) {
    let wait = || {
        while st.held.load(Ordering::SeqCst) && !st.stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        wait();
        let n = match r.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // Read before a hold began: held back too.
        wait();
        if w.write_all(&buf[..n]).is_err() {
            return;
        }
    }
}

/// `QuorumCnxManager`'s initial message on an election connection: a negative protocol
/// version (-65536 V1, -65535 V2), the sid, and the length-prefixed address string the
/// dialler advertises; a non-negative first long is the pre-3.5 form (the sid alone).
/// Forwards it with the address replaced by `addr`.
fn rewrite_initial_message(
    r: &mut TcpStream,
    w: &mut TcpStream,
    addr: &str,
) -> std::io::Result<()> {
    r.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut head = [0u8; 8];
    r.read_exact(&mut head)?;
    let version = i64::from_be_bytes(head);
    if version == -65536 || version == -65535 {
        let mut rest = [0u8; 12];
        r.read_exact(&mut rest)?;
        let len = i32::from_be_bytes(rest[8..12].try_into().unwrap());
        if !(1..=2048).contains(&len) {
            // Not what ZooKeeper would accept either: pass it on unchanged.
            w.write_all(&head)?;
            w.write_all(&rest)?;
        } else {
            let mut old = vec![0u8; len as usize];
            r.read_exact(&mut old)?;
            let mut msg = Vec::with_capacity(20 + addr.len());
            msg.extend_from_slice(&head);
            msg.extend_from_slice(&rest[..8]);
            msg.extend_from_slice(&(addr.len() as i32).to_be_bytes());
            msg.extend_from_slice(addr.as_bytes());
            w.write_all(&msg)?;
        }
    } else {
        w.write_all(&head)?;
    }
    r.set_read_timeout(None)?;
    Ok(())
}

/// The quorum and election proxies of one directed pair.
struct PairProxies {
    quorum: LinkProxy,
    election: LinkProxy,
}

/// The ensemble. Members are addressed by index `i` (sid `i + 1`); voters first, then
/// observers.
pub struct Ensemble {
    pub members: Vec<Member>,
    pub opts: Opts,
    pub t0: Instant,
    root: Option<tempfile::TempDir>,
    /// (from, to) -> the proxies `from` dials `to` through.
    links: BTreeMap<(usize, usize), PairProxies>,
    notes: Arc<Mutex<Vec<String>>>,
    zookeeper: bool,
}

use super::ports::{fresh_port, port_is_free, ss_port};

impl Ensemble {
    /// Creates the ensemble (dirs, myid files, ports, proxies) and starts every member;
    /// returns once each one runs and answers on its client port (not necessarily
    /// serving: see [`wait_settled`](Self::wait_settled)).
    pub fn launch(opts: Opts) -> Ensemble {
        let mut e = Ensemble::new(opts);
        e.start_all();
        e
    }

    /// As [`launch`](Self::launch), without starting anything.
    pub fn new(opts: Opts) -> Ensemble {
        let n = opts.voters + opts.observers;
        assert!(opts.voters >= 1 && n >= 1);
        let root = tempfile::Builder::new()
            .prefix("corral-ensemble-")
            .tempdir()
            .expect("temp dir");
        let mut taken = Vec::new();
        let mut members = Vec::new();
        for i in 0..n {
            let sid = i as u64 + 1;
            let dir = root.path().join(format!("server{sid}"));
            std::fs::create_dir_all(dir.join("data")).unwrap();
            std::fs::write(dir.join("data").join("myid"), format!("{sid}\n")).unwrap();
            members.push(Member {
                sid,
                observer: i >= opts.voters,
                client_port: fresh_port(&mut taken),
                quorum_port: fresh_port(&mut taken),
                election_port: fresh_port(&mut taken),
                dir,
                child: None,
                pid: None,
                log: Arc::default(),
                starts: 0,
                member_cfg: Vec::new(),
            });
        }
        let mut links = BTreeMap::new();
        if opts.proxied {
            // Bind every proxy first: an election proxy must know its reverse pair's port.
            let mut bound = BTreeMap::new();
            for a in 0..n {
                for b in 0..n {
                    if a != b {
                        bound.insert((a, b), (LinkProxy::bind(), LinkProxy::bind()));
                    }
                }
            }
            let election_addr: BTreeMap<(usize, usize), SocketAddr> =
                bound.iter().map(|(k, (_, (_, e)))| (*k, *e)).collect();
            for ((a, b), ((ql, _), (el, _))) in bound {
                let to = &members[b];
                let quorum =
                    LinkProxy::run(ql, SocketAddr::from(([127, 0, 0, 1], to.quorum_port)), None);
                // What `a` advertises, as `b` should dial it back: b's proxy to a.
                let back = election_addr[&(b, a)].to_string();
                let election = LinkProxy::run(
                    el,
                    SocketAddr::from(([127, 0, 0, 1], to.election_port)),
                    Some(back),
                );
                links.insert((a, b), PairProxies { quorum, election });
            }
        }
        let e = Ensemble {
            members,
            opts,
            t0: Instant::now(),
            root: Some(root),
            links,
            notes: Arc::default(),
            zookeeper: using_zookeeper(),
        };
        let layout: Vec<String> = e
            .members
            .iter()
            .map(|m| {
                format!(
                    "server.{} {} client {} quorum {} election {}",
                    m.sid,
                    if m.observer { "observer" } else { "voter" },
                    m.client_port,
                    m.quorum_port,
                    m.election_port
                )
            })
            .collect();
        e.note(format!(
            "ensemble of {} ({}), tickTime {} ms{}, in {}:\n  {}",
            if e.zookeeper { "ZooKeeper" } else { "corral" },
            e.opts.voters,
            e.opts.tick_ms,
            if e.opts.proxied { ", proxied" } else { "" },
            e.root.as_ref().unwrap().path().display(),
            layout.join("\n  ")
        ));
        e
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_zookeeper(&self) -> bool {
        self.zookeeper
    }

    pub fn voters(&self) -> Vec<usize> {
        (0..self.opts.voters).collect()
    }

    pub fn observers(&self) -> Vec<usize> {
        (self.opts.voters..self.len()).collect()
    }

    pub fn elapsed_ms(&self) -> u128 {
        self.t0.elapsed().as_millis()
    }

    /// Records (and prints) a test event, stamped like the server logs.
    pub fn note(&self, s: impl Into<String>) {
        let s = format!("[+{:>6}ms] {}", self.elapsed_ms(), s.into());
        eprintln!("{s}");
        self.notes.lock().unwrap().push(s);
    }

    /// A closure-friendly handle to [`note`](Self::note) for spawned tasks.
    pub fn notes(&self) -> Notes {
        Notes {
            t0: self.t0,
            notes: self.notes.clone(),
        }
    }

    /// How `from` reaches `to`'s quorum and election ports: the pair's proxies when
    /// proxied, else the real ports.
    fn ports_seen_by(&self, from: usize, to: usize) -> (u16, u16) {
        if from != to {
            if let Some(p) = self.links.get(&(from, to)) {
                return (p.quorum.addr.port(), p.election.addr.port());
            }
        }
        let m = &self.members[to];
        (m.quorum_port, m.election_port)
    }

    /// zoo.cfg of member `i` (each member has its own when proxied).
    pub fn config_text(&self, i: usize) -> String {
        let m = &self.members[i];
        let mut cfg = String::new();
        cfg.push_str(&format!("tickTime={}\n", self.opts.tick_ms));
        cfg.push_str(&format!("initLimit={INIT_LIMIT}\n"));
        cfg.push_str(&format!("syncLimit={SYNC_LIMIT}\n"));
        cfg.push_str(&format!("dataDir={}\n", m.data_dir().display()));
        cfg.push_str(&format!("clientPort={}\n", m.client_port));
        cfg.push_str("clientPortAddress=127.0.0.1\n");
        cfg.push_str("4lw.commands.whitelist=*\n");
        cfg.push_str("maxClientCnxns=0\n");
        // Sessions must outlive a leader change (the default max is 20 ticks).
        cfg.push_str("maxSessionTimeout=60000\n");
        cfg.push_str("admin.enableServer=false\n");
        if m.observer {
            cfg.push_str("peerType=observer\n");
        }
        if !self.zookeeper {
            // Members on one host share its cores (one shard each here by default); two
            // keep the cross-shard paths of an ensemble member under test.
            let n = std::env::var("CORRAL_TEST_SHARDS").unwrap_or_else(|_| "2".into());
            cfg.push_str(&format!("shards={n}\n"));
        }
        for line in self.opts.extra_cfg.iter().chain(&m.member_cfg) {
            cfg.push_str(line);
            cfg.push('\n');
        }
        for (j, o) in self.members.iter().enumerate() {
            let (q, e) = self.ports_seen_by(i, j);
            let role = if o.observer { ":observer" } else { "" };
            cfg.push_str(&format!("server.{}=127.0.0.1:{q}:{e}{role}\n", o.sid));
        }
        cfg
    }

    /// Sets member `i`'s own zoo.cfg lines (after the ensemble's, so they win); they
    /// take effect at its next start.
    pub fn set_member_cfg(&mut self, i: usize, lines: &[&str]) {
        self.members[i].member_cfg = lines.iter().map(|l| l.to_string()).collect();
    }

    /// Starts every member not running (all spawned first: a corral member might only
    /// answer once a quorum is up), then waits until each answers.
    pub fn start_all(&mut self) {
        let idx: Vec<usize> = (0..self.len())
            .filter(|&i| self.members[i].child.is_none())
            .collect();
        let ready: Vec<_> = idx.iter().map(|&i| (i, self.spawn(i))).collect();
        for (i, rx) in ready {
            self.await_up(i, rx);
        }
    }

    /// Starts member `i` (on the data it has) and waits until it answers.
    pub fn start(&mut self, i: usize) {
        let rx = self.spawn(i);
        self.await_up(i, rx);
    }

    /// kill -9 member `i` if it runs, then start it again on the same data dir.
    pub fn restart(&mut self, i: usize) {
        self.kill9(i);
        self.start(i);
    }

    /// SIGKILL member `i` (its own process, by its `Child`) and reap it.
    pub fn kill9(&mut self, i: usize) {
        let m = &mut self.members[i];
        if let Some(mut c) = m.child.take() {
            let _ = c.kill();
            let status = c.wait();
            let (sid, pid) = (m.sid, m.pid.take());
            self.note(format!(
                "server.{sid} (pid {pid:?}) killed with SIGKILL ({})",
                status.map(|s| s.to_string()).unwrap_or_default()
            ));
        }
    }

    /// SIGKILL every member.
    pub fn kill_all(&mut self) {
        for i in 0..self.len() {
            self.kill9(i);
        }
    }

    pub fn is_running(&mut self, i: usize) -> bool {
        self.members[i].is_running()
    }

    fn spawn(&mut self, i: usize) -> mpsc::Receiver<()> {
        assert!(self.members[i].child.is_none(), "server {i} already runs");
        let cfg_text = self.config_text(i);
        let zookeeper = self.zookeeper;
        let t0 = self.t0;
        let sid = self.members[i].sid;
        let ports = {
            let m = &self.members[i];
            [m.client_port, m.quorum_port, m.election_port]
        };
        for p in ports {
            self.wait_port_free(sid, p);
        }
        let m = &mut self.members[i];
        let cfg_path = m.dir.join("zoo.cfg");
        std::fs::write(&cfg_path, &cfg_text).unwrap();
        let mut cmd = if zookeeper {
            let log4j = m.dir.join("log4j.properties");
            std::fs::write(
                &log4j,
                "log4j.rootLogger=INFO, C\n\
                 log4j.appender.C=org.apache.log4j.ConsoleAppender\n\
                 log4j.appender.C.layout=org.apache.log4j.PatternLayout\n\
                 log4j.appender.C.layout.ConversionPattern=%d{HH:mm:ss,SSS} [%t] %-5p %c{1} - %m%n\n",
            )
            .unwrap();
            let cp = super::zk_classpath(&[]);
            let mut c = Command::new("java");
            c.args(["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"])
                .arg(format!("-Dlog4j.configuration=file:{}", log4j.display()))
                .arg("-Dzookeeper.admin.enableServer=false")
                .arg("-cp")
                .arg(cp)
                .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
                .arg(&cfg_path);
            c
        } else {
            let mut c = Command::new(env!("CARGO_BIN_EXE_corral"));
            c.arg("server").arg("--config").arg(&cfg_path);
            c
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
            "[+{:>6}ms] ===== server.{} start #{} pid {pid} =====",
            t0.elapsed().as_millis(),
            m.sid,
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
        let (tx, rx) = mpsc::channel();
        drain(
            child.stdout.take().unwrap(),
            m.log.clone(),
            file.clone(),
            t0,
            Some(tx),
        );
        drain(child.stderr.take().unwrap(), m.log.clone(), file, t0, None);
        m.child = Some(child);
        let sid = m.sid;
        self.note(format!("server.{sid} started, pid {pid}"));
        rx
    }

    /// Waits (up to 30 s) until nothing listens on `port` any more; notes how long that
    /// took and what `ss` showed on it when it was not free at once. A listener left on
    /// it would share the port with the server started next (SO_REUSEPORT).
    fn wait_port_free(&self, sid: u64, port: u16) {
        if port_is_free(port) {
            return;
        }
        let t = Instant::now();
        let seen = ss_port(port);
        loop {
            std::thread::sleep(Duration::from_millis(20));
            if port_is_free(port) {
                self.note(format!(
                    "port {port} of server.{sid}: a connection to it was still accepted at \
                     its start (after the previous process was reaped); free after {:?}. \
                     `ss -tanp` on it just after that connect:\n{seen}",
                    t.elapsed()
                ));
                return;
            }
            if t.elapsed() > Duration::from_secs(30) {
                self.fail(format!(
                    "port {port} of server.{sid} is still in use 30 s after the server was \
                     stopped (a leftover listener would share it: SO_REUSEPORT). `ss -tanp` \
                     on it at first:\n{seen}\nnow:\n{}",
                    ss_port(port)
                ));
            }
        }
    }

    /// Waits until member `i` announced its client port (corral) or answers `ruok`.
    fn await_up(&mut self, i: usize, announced: mpsc::Receiver<()>) {
        let deadline = Instant::now() + Duration::from_secs(if self.zookeeper { 60 } else { 30 });
        let addr = self.members[i].client_addr();
        loop {
            if announced.try_recv().is_ok() {
                break;
            }
            if four_letter_word_blocking(addr, "ruok").as_deref() == Some("imok") {
                break;
            }
            if !self.members[i].is_running() {
                std::thread::sleep(Duration::from_millis(200));
                panic!(
                    "server.{} exited during start-up; its log:\n{}",
                    self.members[i].sid,
                    self.log_tail(i, 60)
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "server.{} did not answer on {addr} in time; its log:\n{}",
                    self.members[i].sid,
                    self.log_tail(i, 60)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn client_addr(&self, i: usize) -> SocketAddr {
        self.members[i].client_addr()
    }

    /// The client connect string of every member.
    pub fn connect_string(&self) -> String {
        self.connect_string_of(&(0..self.len()).collect::<Vec<_>>())
    }

    pub fn connect_string_of(&self, idx: &[usize]) -> String {
        idx.iter()
            .map(|&i| self.client_addr(i).to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn four_letter(&self, i: usize, word: &str) -> Option<String> {
        four_letter_word_blocking(self.client_addr(i), word)
    }

    /// What member `i`'s `srvr` says (Down if it is not running).
    pub fn mode(&mut self, i: usize) -> Mode {
        if !self.members[i].is_running() {
            return Mode::Down;
        }
        Mode::parse(self.four_letter(i, "srvr").as_deref())
    }

    pub fn modes(&mut self) -> Vec<Mode> {
        (0..self.len()).map(|i| self.mode(i)).collect()
    }

    /// `mntr` as key -> value (empty if no answer).
    pub fn mntr(&self, i: usize) -> BTreeMap<String, String> {
        self.four_letter(i, "mntr")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(k, v)| (k.to_string(), v.trim().to_string()))
            .collect()
    }

    /// The running members that say leader now.
    pub fn leaders(&mut self) -> Vec<usize> {
        (0..self.len())
            .filter(|&i| self.mode(i) == Mode::Leader)
            .collect()
    }

    /// The one leader among running members, if exactly one says so.
    pub fn leader(&mut self) -> Option<usize> {
        match self.leaders()[..] {
            [l] => Some(l),
            _ => None,
        }
    }

    /// Waits until exactly one running member says leader.
    pub fn wait_for_leader(&mut self, within: Duration) -> usize {
        let all: Vec<usize> = (0..self.len()).collect();
        self.wait_for_leader_among(&all, within)
    }

    /// Waits until exactly one of `among` says leader (others may say anything).
    pub fn wait_for_leader_among(&mut self, among: &[usize], within: Duration) -> usize {
        let deadline = Instant::now() + within;
        loop {
            let leaders: Vec<usize> = among
                .iter()
                .copied()
                .filter(|&i| self.mode(i) == Mode::Leader)
                .collect();
            if let [l] = leaders[..] {
                return l;
            }
            if Instant::now() > deadline {
                let modes = self.modes();
                self.fail(format!(
                    "no single leader among {:?} within {within:?}; modes now {modes:?}",
                    among.iter().map(|i| i + 1).collect::<Vec<_>>()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until every running member serves in its role (voters leader or follower,
    /// observers observer) and exactly one is leader; returns the leader.
    pub fn wait_settled(&mut self, within: Duration) -> usize {
        let all: Vec<usize> = (0..self.len()).collect();
        self.wait_settled_among(&all, within)
    }

    /// As [`wait_settled`](Self::wait_settled), for the running members of `among`.
    pub fn wait_settled_among(&mut self, among: &[usize], within: Duration) -> usize {
        let deadline = Instant::now() + within;
        loop {
            let mut leaders = Vec::new();
            let mut ok = true;
            for &i in among {
                if !self.members[i].is_running() {
                    continue;
                }
                match (self.mode(i), self.members[i].observer) {
                    (Mode::Leader, false) => leaders.push(i),
                    (Mode::Follower, false) | (Mode::Observer, true) => {}
                    _ => ok = false,
                }
            }
            if ok && leaders.len() == 1 {
                return leaders[0];
            }
            if Instant::now() > deadline {
                let modes = self.modes();
                self.fail(format!(
                    "members {:?} did not settle (one leader, the rest serving) within \
                     {within:?}; modes now {modes:?}",
                    among.iter().map(|i| i + 1).collect::<Vec<_>>()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until member `i`'s mode satisfies `ok`; returns it.
    pub fn wait_mode(
        &mut self,
        i: usize,
        within: Duration,
        what: &str,
        ok: impl Fn(Mode) -> bool,
    ) -> Mode {
        let deadline = Instant::now() + within;
        loop {
            let m = self.mode(i);
            if ok(m) {
                return m;
            }
            if Instant::now() > deadline {
                let modes = self.modes();
                self.fail(format!(
                    "server.{} did not become {what} within {within:?}: it says {m:?}; modes \
                     now {modes:?}",
                    i + 1
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    // ---- partitions ----

    fn pairs_between(&self, a: &[usize], b: &[usize]) -> Vec<(usize, usize)> {
        let mut v = Vec::new();
        for &x in a {
            for &y in b {
                if x != y {
                    v.push((x, y));
                    v.push((y, x));
                }
            }
        }
        v
    }

    fn set_pairs(&self, pairs: &[(usize, usize)], blocked: bool) {
        assert!(
            self.opts.proxied,
            "partitions need an ensemble started with Opts::proxied()"
        );
        for p in pairs {
            let l = &self.links[p];
            l.quorum.set_blocked(blocked);
            l.election.set_blocked(blocked);
        }
        if blocked {
            for p in pairs {
                let l = &self.links[p];
                l.quorum.cut();
                l.election.cut();
            }
        }
    }

    /// Cuts member `i` off from every other member: blocks and cuts the quorum and
    /// election proxies of every pair that has `i` on either side. Client traffic is
    /// not affected.
    pub fn isolate(&self, i: usize) {
        let others: Vec<usize> = (0..self.len()).filter(|&j| j != i).collect();
        self.set_pairs(&self.pairs_between(&[i], &others), true);
        self.note(format!(
            "server.{} isolated from {:?}",
            i + 1,
            sid_list(&others)
        ));
    }

    /// Lets member `i` reach every other member again.
    pub fn heal(&self, i: usize) {
        let others: Vec<usize> = (0..self.len()).filter(|&j| j != i).collect();
        self.set_pairs(&self.pairs_between(&[i], &others), false);
        self.note(format!("server.{} healed", i + 1));
    }

    /// Cuts every pair with one side in `a` and the other in `b`.
    pub fn partition(&self, a: &[usize], b: &[usize]) {
        self.set_pairs(&self.pairs_between(a, b), true);
        self.note(format!("partition {:?} | {:?}", sid_list(a), sid_list(b)));
    }

    /// Unblocks every pair.
    pub fn heal_all(&self) {
        let pairs: Vec<(usize, usize)> = self.links.keys().copied().collect();
        self.set_pairs(&pairs, false);
        self.note("all links healed");
    }

    /// Holds back (or, with `held` false, releases) what member `to` sends member `from`
    /// on the quorum connection `from` dialled (a learner's link to its leader), without
    /// cutting it: the learner falls behind while the leader hears it.
    pub fn hold_quorum_link(&self, from: usize, to: usize, held: bool) {
        let l = &self.links[&(from, to)];
        l.quorum.state.held.store(held, Ordering::SeqCst);
        self.note(format!(
            "server.{} -> server.{} quorum link {}",
            to + 1,
            from + 1,
            if held { "held" } else { "released" }
        ));
    }

    /// Connections forwarded and refused by the proxies of pair (from, to), for notes.
    pub fn link_counts(&self, from: usize, to: usize) -> (u64, u64) {
        let l = &self.links[&(from, to)];
        let f = l.quorum.state.forwarded.load(Ordering::Relaxed)
            + l.election.state.forwarded.load(Ordering::Relaxed);
        let r = l.quorum.state.refused.load(Ordering::Relaxed)
            + l.election.state.refused.load(Ordering::Relaxed);
        (f, r)
    }

    // ---- logs ----

    pub fn log_tail(&self, i: usize, n: usize) -> String {
        let log = self.members[i].log.lock().unwrap();
        let start = log.len().saturating_sub(n);
        log[start..].join("\n")
    }

    /// Lines of member `i`'s log (every start) containing `needle`.
    pub fn log_grep(&self, i: usize, needle: &str) -> Vec<String> {
        self.members[i]
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .cloned()
            .collect()
    }

    /// Panics with `msg` (the drop prints the notes and logs).
    pub fn fail(&self, msg: String) -> ! {
        self.note(format!("FAILED: {msg}"));
        panic!("{msg}");
    }

    fn dump(&mut self) {
        let n: usize = std::env::var("CORRAL_ENSEMBLE_LOG_LINES")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(150);
        let mut out = String::new();
        out.push_str("\n======== ensemble test failed: events ========\n");
        for l in self.notes.lock().unwrap().iter() {
            out.push_str(l);
            out.push('\n');
        }
        for i in 0..self.len() {
            out.push_str(&format!(
                "======== server.{} log (last {n} lines) ========\n{}\n",
                self.members[i].sid,
                self.log_tail(i, n)
            ));
        }
        eprintln!("{out}");
    }
}

/// `server.N` names of member indices, for notes.
pub fn sid_list(idx: &[usize]) -> Vec<usize> {
    idx.iter().map(|i| i + 1).collect()
}

/// A `Send` handle for notes from spawned tasks.
#[derive(Clone)]
pub struct Notes {
    t0: Instant,
    notes: Arc<Mutex<Vec<String>>>,
}

impl Notes {
    pub fn note(&self, s: impl Into<String>) {
        let s = format!("[+{:>6}ms] {}", self.t0.elapsed().as_millis(), s.into());
        eprintln!("{s}");
        self.notes.lock().unwrap().push(s);
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        let panicking = std::thread::panicking();
        if panicking {
            self.dump();
        }
        for i in 0..self.len() {
            if let Some(mut c) = self.members[i].child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        self.links.clear();
        let keep = panicking || std::env::var("CORRAL_ENSEMBLE_KEEP").is_ok_and(|v| v == "1");
        if let Some(root) = self.root.take() {
            if keep {
                let path = root.keep();
                eprintln!(
                    "ensemble dir kept: {} (server*/server.log, zoo.cfg, data)",
                    path.display()
                );
            }
        }
    }
}

fn push_line(log: &Mutex<Vec<String>>, line: String) {
    let mut log = log.lock().unwrap();
    if log.len() >= 50_000 {
        log.drain(..10_000);
    }
    log.push(line);
}

/// Reads a child's output into the memory log and the server's log file, each line
/// stamped; with `announce`, signals corral's `corral: serving clients on` line.
fn drain(
    r: impl Read + Send + 'static,
    log: Arc<Mutex<Vec<String>>>,
    file: Arc<Mutex<std::fs::File>>,
    t0: Instant,
    announce: Option<mpsc::Sender<()>>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            let is_announce = line.trim().starts_with("corral: serving clients on ");
            let stamped = format!("[+{:>6}ms] {line}", t0.elapsed().as_millis());
            let _ = writeln!(file.lock().unwrap(), "{stamped}");
            push_line(&log, stamped);
            if is_announce {
                if let Some(tx) = &announce {
                    let _ = tx.send(());
                }
            }
        }
    });
}

// ---- clients ----

/// A connector for ensemble tests: a 10 s session, 5 s per connection attempt.
pub fn connector() -> zk::Connector {
    zk::Client::connector()
        .with_session_timeout(Duration::from_secs(10))
        .with_connection_timeout(Duration::from_secs(5))
}

/// Connects to `connect_string`, retrying until `within` (a member may not serve yet).
pub async fn connect(connect_string: &str, within: Duration) -> zk::Client {
    let deadline = Instant::now() + within;
    loop {
        let attempt =
            tokio::time::timeout(Duration::from_secs(10), connector().connect(connect_string))
                .await;
        match attempt {
            Ok(Ok(c)) => return c,
            Ok(Err(e)) if Instant::now() > deadline => {
                panic!("cannot connect to {connect_string} within {within:?}: {e}")
            }
            Err(_) if Instant::now() > deadline => {
                panic!("cannot connect to {connect_string} within {within:?}: timed out")
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// One connection attempt to `connect_string` (for checking that a member refuses).
pub async fn try_connect(connect_string: &str, within: Duration) -> Result<zk::Client, String> {
    let c = zk::Client::connector()
        .with_session_timeout(Duration::from_secs(10))
        .with_connection_timeout(within);
    match tokio::time::timeout(within + Duration::from_secs(2), c.connect(connect_string)).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".into()),
    }
}
