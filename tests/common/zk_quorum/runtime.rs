//! A small blocking runtime for one corral [`Peer`]: std threads and std::net, no
//! glommio. Only what a learner needs against Java servers: the election port (both
//! connection directions, ZooKeeper's larger-sid-wins rule), the quorum link to the
//! leader (unframed QuorumPackets, the SNAP stream), and an in-memory storage that
//! reports every storage action as durable at once. Committed txns are decoded with
//! `zk_txn::decode_txn`, applied to a DataTree (the SNAP's, or an empty one) with
//! corral's own `apply`, and the tree digest after each is compared with the TxnDigest
//! ZooKeeper put in the proposal.
//!
//! Everything the peer and the wire did is recorded in [`Observed`], shared with the
//! test thread, which polls it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use corral::quorum::digest::tree_digest;
use corral::quorum::snap_stream::{SnapLoad, SnapReader};
use corral::quorum::wire::{
    self, decode_frame, decode_packet, encode_frame, packet_type_name, InitialMessage,
    Notification, QuorumPacket,
};
use corral::quorum::zab::{Action, EpochFile, Event, LinkId, Peer, PeerConfig, PeerState, ZabTxn};
use corral::quorum::zk_txn::{decode_forwarded, decode_txn, encode_txn, ForwardedRequest};
use corral::quorum::{LearnerType, ServerState, Sid};
use corral::request::{txn_op, PrepConfig, PrepCtx, Prepper};
use corral::request::{Txn, TxnHeader};
use corral::tree::DataTree;

/// `jute.maxbuffer` + extrasize, ZooKeeper's default read limit per buffer.
pub const MAX_BUFFER: usize = 2 * 0xfffff;
/// How often the peer is ticked.
const TICK: Duration = Duration::from_millis(20);
/// Trace lines kept (PINGs are counted, not traced).
const TRACE_CAP: usize = 20_000;

/// One member of the ensemble as the runtime needs it.
#[derive(Debug, Clone)]
pub struct MemberAddr {
    pub sid: Sid,
    pub quorum: SocketAddr,
    pub election: SocketAddr,
    pub learner_type: LearnerType,
}

/// A txn the peer committed, decoded, applied to our tree.
#[derive(Debug, Clone)]
pub struct CommittedTxn {
    pub zxid: i64,
    pub hdr: TxnHeader,
    pub txn: Txn,
    /// The TxnDigest in the proposal (None if absent or of another version).
    pub digest_expected: Option<i64>,
    /// Our tree's digest after applying it.
    pub digest_ours: i64,
    /// `apply`'s result, as text (errors show a txn that did not fit our tree).
    pub result: String,
}

/// What the SNAP brought.
#[derive(Debug, Clone)]
pub struct SnapInfo {
    pub zxid: i64,
    pub nodes: usize,
    pub sessions: usize,
    pub digest: i64,
}

/// A role the peer announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleSeen {
    pub at_ms: i64,
    pub state: ServerState,
    pub leader: Option<Sid>,
    pub epoch: i64,
    pub serving: bool,
}

/// What the runtime saw and did, for the test thread.
#[derive(Default)]
pub struct Observed {
    pub trace: Vec<String>,
    pub roles: Vec<RoleSeen>,
    /// The first packet after ACKEPOCH (DIFF/TRUNC/SNAP), per sync.
    pub sync_modes: Vec<String>,
    pub snaps: Vec<SnapInfo>,
    pub committed: Vec<CommittedTxn>,
    /// Quorum packets received / sent: (type, zxid), PINGs excluded.
    pub packets_in: Vec<(i32, i64)>,
    pub packets_out: Vec<(i32, i64)>,
    /// Both directions in the order they happened: (sent by us, type, zxid), PINGs
    /// excluded.
    pub wire: Vec<(bool, i32, i64)>,
    pub pings_in: u64,
    pub pings_out: u64,
    pub notifications_in: u64,
    pub notifications_out: u64,
    /// Anything wrong on our side: a decode error, an action this runtime cannot do.
    pub problems: Vec<String>,
    /// Set when the runtime's thread ended (cleanly or not).
    pub stopped: bool,
    /// The tree after the last commit (for content checks).
    pub tree: Option<DataTree>,
}

impl Observed {
    pub fn last_role(&self) -> Option<RoleSeen> {
        self.roles.last().copied()
    }

    pub fn serving_as(&self, state: ServerState) -> Option<RoleSeen> {
        self.last_role().filter(|r| r.serving && r.state == state)
    }

    pub fn last_committed(&self) -> Option<i64> {
        self.committed.last().map(|c| c.zxid)
    }

    /// The non-PING packet sequence, as `<-TYPE(zxid)` / `->TYPE(zxid)` lines.
    pub fn packet_summary(&self) -> String {
        self.trace
            .iter()
            .filter(|l| l.contains(" quorum "))
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// What the runtime keeps between runs (a restart keeps its "disk").
#[derive(Clone, Default)]
pub struct Storage {
    pub accepted_epoch: i64,
    pub current_epoch: i64,
    /// Txns logged after the snapshot base, in order.
    pub log: Vec<ZabTxn>,
    /// The zxid the state (tree) starts from: the installed snapshot's, or 0.
    pub base_zxid: i64,
    /// The tree at `applied`.
    pub tree: Option<DataTree>,
    pub applied: i64,
}

impl Storage {
    pub fn last_logged(&self) -> i64 {
        self.log.last().map_or(self.base_zxid, |t| t.zxid)
    }

    /// What `Peer::new` starts from: the epoch files and the log.
    pub fn peer_state(&self) -> PeerState {
        PeerState {
            accepted_epoch: self.accepted_epoch,
            current_epoch: self.current_epoch,
            last_logged_zxid: self.last_logged(),
            committed_log: self.log.clone(),
            snapshot_zxid: self.base_zxid,
        }
    }
}

pub struct RuntimeConfig {
    pub my_sid: Sid,
    pub my_type: LearnerType,
    pub members: Vec<MemberAddr>,
    pub tick_ms: i64,
    pub init_limit: i64,
    pub sync_limit: i64,
    pub config_string: String,
    /// Our quorum port, bound: learners connect here when we lead.
    pub quorum_listener: TcpListener,
}

/// A running corral peer. Stop it with [`CorralPeer::stop`] (also on drop).
pub struct CorralPeer {
    pub sid: Sid,
    pub observed: Arc<Mutex<Observed>>,
    stop: Arc<AtomicBool>,
    main: Option<JoinHandle<Storage>>,
    acceptor: Option<JoinHandle<()>>,
}

impl CorralPeer {
    /// Starts the peer on `listener` (its election port, already bound) from `storage`.
    pub fn start(cfg: RuntimeConfig, listener: TcpListener, storage: Storage) -> CorralPeer {
        let observed = Arc::new(Mutex::new(Observed::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let t0 = Instant::now();
        // CORRAL_ZKQ_EAGER_ACCEPT=1: accept learners in every role (shows the lost
        // rounds described at `accept_loop`).
        let eager = std::env::var("CORRAL_ZKQ_EAGER_ACCEPT").is_ok_and(|v| v == "1");
        let accept_learners = Arc::new(AtomicBool::new(eager));
        let acceptor = {
            let tx = tx.clone();
            let stop = stop.clone();
            listener
                .set_nonblocking(true)
                .expect("nonblocking listener");
            let quorum = cfg
                .quorum_listener
                .try_clone()
                .expect("clone quorum listener");
            quorum.set_nonblocking(true).expect("nonblocking listener");
            let accept_learners = accept_learners.clone();
            std::thread::Builder::new()
                .name(format!("corral{}-accept", cfg.my_sid))
                .spawn(move || accept_loop(listener, quorum, accept_learners, tx, stop))
                .unwrap()
        };
        let sid = cfg.my_sid;
        let main = {
            let observed = observed.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name(format!("corral{}-main", cfg.my_sid))
                .spawn(move || {
                    let mut rt = Runtime::new(cfg, storage, observed.clone(), tx, rx, stop, t0);
                    rt.accept_learners = Some((accept_learners, eager));
                    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.run()));
                    rt.shutdown();
                    if let Err(e) = &r {
                        let msg = e
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_default();
                        rt.problem(format!("the runtime panicked: {msg}"));
                    }
                    let mut o = observed.lock().unwrap();
                    o.stopped = true;
                    drop(o);
                    rt.storage
                })
                .unwrap()
        };
        CorralPeer {
            sid,
            observed,
            stop,
            main: Some(main),
            acceptor: Some(acceptor),
        }
    }

    /// Stops every thread and socket; returns the storage (for a restart).
    pub fn stop(&mut self) -> Storage {
        self.stop.store(true, Ordering::SeqCst);
        let storage = self
            .main
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
        storage
    }

    pub fn with<T>(&self, f: impl FnOnce(&Observed) -> T) -> T {
        f(&self.observed.lock().unwrap())
    }
}

impl Drop for CorralPeer {
    fn drop(&mut self) {
        self.stop();
    }
}

enum Input {
    /// An election connection whose initial message was read (inbound).
    Inbound {
        sid: Sid,
        stream: TcpStream,
        leftover: Vec<u8>,
    },
    Notification {
        from: Sid,
        n: Notification,
    },
    ElectionClosed {
        sid: Sid,
        conn: u64,
        why: String,
    },
    Packet {
        link: LinkId,
        pkt: QuorumPacket,
    },
    Snap {
        link: LinkId,
        zxid: i64,
        load: Box<SnapLoad>,
    },
    LinkClosed {
        link: LinkId,
        why: String,
    },
    /// A learner connected to our quorum port.
    Learner(TcpStream),
    Problem(String),
}

/// Accepts on the election port (initial message first) and the quorum port.
///
/// Learners are accepted only while `accept_learners` is set (we lead): before that a
/// learner's connection waits in the listen backlog, its FOLLOWERINFO with it, as a
/// ZooKeeper learner that decided FOLLOWING before its leader did expects. ZooKeeper
/// opens the quorum port only when it starts leading, so an early learner is refused
/// and retries; a connection that is accepted and then closed (what `Peer` does with
/// `LearnerConnected` while LOOKING) makes the Java learner give up the round.
fn accept_loop(
    election: TcpListener,
    quorum: TcpListener,
    accept_learners: Arc<AtomicBool>,
    tx: Sender<Input>,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::SeqCst) {
        let mut idle = true;
        if let Ok((stream, _)) = election.accept() {
            idle = false;
            let tx = tx.clone();
            std::thread::spawn(move || read_initial(stream, tx));
        }
        if !accept_learners.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        if let Ok((stream, _)) = quorum.accept() {
            idle = false;
            let _ = stream.set_nonblocking(false);
            let _ = tx.send(Input::Learner(stream));
        }
        if idle {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Reads an inbound election connection's initial message (`handleConnection`).
fn read_initial(mut stream: TcpStream, tx: Sender<Input>) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match InitialMessage::decode(&buf) {
            Ok(Some((m, used))) => {
                let _ = stream.set_read_timeout(None);
                let _ = tx.send(Input::Inbound {
                    sid: m.sid as Sid,
                    stream,
                    leftover: buf[used..].to_vec(),
                });
                return;
            }
            Ok(None) => {}
            Err(e) => {
                let _ = tx.send(Input::Problem(format!("bad initial message: {e}")));
                return;
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Reads election frames from one connection.
fn election_reader(
    sid: Sid,
    conn: u64,
    mut stream: TcpStream,
    mut buf: Vec<u8>,
    tx: Sender<Input>,
) {
    let mut chunk = [0u8; 8192];
    let why = loop {
        loop {
            match decode_frame(&buf) {
                Ok(Some((range, used))) => {
                    match Notification::decode(&buf[range]) {
                        Some(n) => {
                            let _ = tx.send(Input::Notification { from: sid, n });
                        }
                        None => {
                            let _ = tx.send(Input::Problem(format!(
                                "an undecodable notification from {sid}"
                            )));
                        }
                    }
                    buf.drain(..used);
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = tx.send(Input::ElectionClosed {
                        sid,
                        conn,
                        why: format!("bad frame: {e}"),
                    });
                    return;
                }
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) => break "EOF".to_string(),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => break e.to_string(),
        }
    };
    let _ = tx.send(Input::ElectionClosed { sid, conn, why });
}

/// Reads the leader's unframed QuorumPackets, and the snapshot stream after a SNAP.
fn quorum_reader(link: LinkId, mut stream: TcpStream, tx: Sender<Input>) {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut snap: Option<(i64, SnapReader)> = None;
    let why = 'outer: loop {
        loop {
            if let Some((zxid, reader)) = snap.as_mut() {
                match reader.feed(&buf) {
                    Ok(used) => {
                        buf.drain(..used);
                    }
                    Err(e) => break 'outer format!("the SNAP stream was refused: {e}"),
                }
                if !reader.is_done() {
                    break;
                }
                let zxid = *zxid;
                let (_, reader) = snap.take().unwrap();
                match reader.finish() {
                    Ok(load) => {
                        let _ = tx.send(Input::Snap {
                            link,
                            zxid,
                            load: Box::new(load),
                        });
                    }
                    Err(e) => break 'outer format!("the SNAP stream was refused: {e}"),
                }
                continue;
            }
            match decode_packet(&buf, MAX_BUFFER) {
                Ok(Some((pkt, used))) => {
                    buf.drain(..used);
                    if pkt.typ == wire::SNAP {
                        snap = Some((pkt.zxid, SnapReader::new(MAX_BUFFER)));
                        // The SNAP packet itself is only traced; the peer hears of it
                        // as SnapReceived once the stream is read.
                        let _ = tx.send(Input::Problem(String::new()));
                        continue;
                    }
                    if tx.send(Input::Packet { link, pkt }).is_err() {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => break 'outer format!("undecodable QuorumPacket: {e}"),
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) => break "EOF".to_string(),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => break e.to_string(),
        }
    };
    let _ = stream.shutdown(Shutdown::Both);
    let _ = tx.send(Input::LinkClosed { link, why });
}

struct ElectionConn {
    id: u64,
    stream: TcpStream,
}

struct Runtime {
    cfg: RuntimeConfig,
    peer: Option<Peer>,
    storage: Storage,
    observed: Arc<Mutex<Observed>>,
    tx: Sender<Input>,
    rx: Receiver<Input>,
    stop: Arc<AtomicBool>,
    t0: Instant,
    conns: HashMap<Sid, ElectionConn>,
    next_conn: u64,
    /// ZooKeeper's `lastMessageSent`: re-sent when a new connection to that sid starts.
    last_sent: HashMap<Sid, Notification>,
    links: HashMap<LinkId, TcpStream>,
    /// Snapshots read, held until InstallSnap.
    snaps: HashMap<LinkId, (i64, SnapLoad)>,
    /// The link a SNAP packet was just seen on (its stream is being read).
    expecting_first_sync_packet: bool,
    members: BTreeMap<Sid, MemberAddr>,
    /// Leader side: links of accepted learners are numbered from here (without
    /// `OWN_LINK_BIT`).
    next_learner_link: LinkId,
    /// Leader side: the tree after every txn proposed so far (prep runs against it and
    /// each proposal's TxnDigest is its digest), None until the first Submit of a
    /// leadership.
    spec_tree: Option<DataTree>,
    prepper: Prepper,
    /// The highest zxid handed to `Event::Propose` (queued or handled).
    proposed_upto: i64,
    /// Set while we lead (always when the bool, "eager", is true).
    accept_learners: Option<(Arc<AtomicBool>, bool)>,
}

impl Runtime {
    fn new(
        cfg: RuntimeConfig,
        storage: Storage,
        observed: Arc<Mutex<Observed>>,
        tx: Sender<Input>,
        rx: Receiver<Input>,
        stop: Arc<AtomicBool>,
        t0: Instant,
    ) -> Runtime {
        let members = cfg.members.iter().map(|m| (m.sid, m.clone())).collect();
        Runtime {
            cfg,
            peer: None,
            storage,
            observed,
            tx,
            rx,
            stop,
            t0,
            conns: HashMap::new(),
            next_conn: 0,
            last_sent: HashMap::new(),
            links: HashMap::new(),
            snaps: HashMap::new(),
            expecting_first_sync_packet: false,
            members,
            next_learner_link: 0,
            spec_tree: None,
            prepper: Prepper::new(PrepConfig {
                max_buffer: 0xfffff,
                ..PrepConfig::default()
            }),
            proposed_upto: 0,
            accept_learners: None,
        }
    }

    fn now_ms(&self) -> i64 {
        self.t0.elapsed().as_millis() as i64 + 1
    }

    fn trace(&self, line: String) {
        let mut o = self.observed.lock().unwrap();
        if o.trace.len() < TRACE_CAP {
            o.trace.push(format!("{:>6}ms {line}", self.now_ms()));
        }
    }

    fn problem(&self, what: String) {
        self.trace(format!("PROBLEM {what}"));
        self.observed.lock().unwrap().problems.push(what);
    }

    fn run(&mut self) {
        let voters = self
            .cfg
            .members
            .iter()
            .filter(|m| m.learner_type == LearnerType::Participant)
            .map(|m| m.sid)
            .collect();
        let pcfg = PeerConfig {
            my_sid: self.cfg.my_sid,
            my_type: self.cfg.my_type,
            voters,
            tick_ms: self.cfg.tick_ms,
            init_limit: self.cfg.init_limit,
            sync_limit: self.cfg.sync_limit,
            commit_log_count: 500,
            config_string: Bytes::from(self.cfg.config_string.clone()),
            min_notification_interval_ms: 200,
            max_notification_interval_ms: 2000,
        };
        let state = self.storage.peer_state();
        self.trace(format!(
            "start sid {} {:?}: acceptedEpoch {} currentEpoch {} lastLogged {:#x}",
            self.cfg.my_sid,
            self.cfg.my_type,
            state.accepted_epoch,
            state.current_epoch,
            state.last_logged_zxid
        ));
        let mut out = Vec::new();
        let now = self.now_ms();
        self.peer = Some(Peer::new(pcfg, state, now, &mut out));
        let mut queue = VecDeque::new();
        self.execute_all(out, &mut queue);
        self.drain(queue);

        let mut next_tick = Instant::now() + TICK;
        while !self.stop.load(Ordering::SeqCst) {
            // Tick every TICK, and exactly when an election timer is due (finalizeWait
            // and the notification timeout are ZooKeeper's `poll` timeouts: a coarser
            // tick would let a notification arrive after the deadline and restart it).
            let election_due = self
                .peer
                .as_ref()
                .and_then(|p| p.election().next_timeout())
                .map(|ms| self.t0 + Duration::from_millis((ms - 1).max(0) as u64));
            let wake = election_due.map_or(next_tick, |e| e.min(next_tick));
            let wait = wake.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(wait) {
                Ok(input) => self.on_input(input),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            let now = Instant::now();
            let tick_due = now >= next_tick;
            if tick_due {
                next_tick += TICK;
                if next_tick < now {
                    next_tick = now + TICK;
                }
            }
            if tick_due || election_due.is_some_and(|e| now >= e) {
                self.feed(Event::Tick {
                    all_delivered: true,
                });
            }
        }
    }

    fn shutdown(&mut self) {
        for (_, c) in self.conns.drain() {
            let _ = c.stream.shutdown(Shutdown::Both);
        }
        for (_, s) in self.links.drain() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn on_input(&mut self, input: Input) {
        match input {
            Input::Inbound {
                sid,
                stream,
                leftover,
            } => {
                let me = self.cfg.my_sid;
                if sid < me {
                    // handleConnection: a smaller sid asks for a call-back.
                    self.trace(format!(
                        "election: inbound from {sid} (smaller): closed, dialling back"
                    ));
                    let _ = stream.shutdown(Shutdown::Both);
                    if !self.conns.contains_key(&sid) {
                        self.connect_election(sid);
                    }
                } else if sid > me {
                    self.trace(format!("election: inbound from {sid} (larger): kept"));
                    self.install_conn(sid, stream, leftover);
                } else {
                    self.problem(format!("an election connection claiming our own sid {sid}"));
                }
            }
            Input::Notification { from, n } => {
                self.observed.lock().unwrap().notifications_in += 1;
                self.trace(format!("election <- {from}: {}", show_note(&n)));
                self.feed(Event::Notification { from, n });
            }
            Input::ElectionClosed { sid, conn, why } => {
                if self.conns.get(&sid).is_some_and(|c| c.id == conn) {
                    self.trace(format!("election: connection to {sid} closed ({why})"));
                    self.conns.remove(&sid);
                }
            }
            Input::Packet { link, pkt } => {
                if pkt.typ == wire::PING {
                    self.observed.lock().unwrap().pings_in += 1;
                } else {
                    self.trace(format!(
                        "quorum <- {}({:#x}) data {}",
                        packet_type_name(pkt.typ),
                        pkt.zxid,
                        pkt.data.as_ref().map_or(-1, |d| d.len() as i64)
                    ));
                    let mut o = self.observed.lock().unwrap();
                    o.packets_in.push((pkt.typ, pkt.zxid));
                    o.wire.push((false, pkt.typ, pkt.zxid));
                    if self.expecting_first_sync_packet
                        && matches!(pkt.typ, wire::DIFF | wire::TRUNC)
                    {
                        o.sync_modes.push(packet_type_name(pkt.typ).to_string());
                        self.expecting_first_sync_packet = false;
                    }
                }
                self.feed(Event::Packet { link, pkt });
            }
            Input::Snap { link, zxid, load } => {
                let info = SnapInfo {
                    zxid,
                    nodes: load.tree.node_count(),
                    sessions: load.sessions.len(),
                    digest: tree_digest(&load.tree),
                };
                self.trace(format!(
                    "quorum <- SNAP({zxid:#x}) stream read: {} nodes, {} sessions, digest {:#x}",
                    info.nodes, info.sessions, info.digest
                ));
                {
                    let mut o = self.observed.lock().unwrap();
                    o.packets_in.push((wire::SNAP, zxid));
                    o.wire.push((false, wire::SNAP, zxid));
                    o.sync_modes.push("SNAP".into());
                    o.snaps.push(info);
                }
                self.expecting_first_sync_packet = false;
                self.snaps.insert(link, (zxid, *load));
                self.feed(Event::SnapReceived { link, zxid });
            }
            Input::LinkClosed { link, why } => {
                let ours = self.links.remove(&link).is_some();
                self.trace(format!(
                    "quorum: link {link:#x} closed ({why}){}",
                    if ours { "" } else { " [already closed]" }
                ));
                self.feed(Event::LinkClosed { link });
            }
            Input::Learner(stream) => {
                self.next_learner_link += 1;
                let link = self.next_learner_link;
                let _ = stream.set_nodelay(true);
                let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
                let peer_addr = stream.peer_addr().ok();
                let reader = stream.try_clone().expect("clone learner socket");
                let tx = self.tx.clone();
                std::thread::Builder::new()
                    .name(format!("corral{}-learner{link}", self.cfg.my_sid))
                    .spawn(move || quorum_reader(link, reader, tx))
                    .unwrap();
                self.links.insert(link, stream);
                self.trace(format!(
                    "quorum: learner connected from {peer_addr:?}, link {link:#x}"
                ));
                self.feed(Event::LearnerConnected { link });
            }
            Input::Problem(p) => {
                if p.is_empty() {
                    // The SNAP packet marker from the reader.
                    self.trace("quorum <- SNAP packet, reading the snapshot stream".into());
                } else {
                    self.problem(p);
                }
            }
        }
    }

    fn feed(&mut self, ev: Event) {
        let mut q = VecDeque::new();
        q.push_back(ev);
        self.drain(q);
    }

    /// Feeds events (and the reports of storage actions, which come back at once) until
    /// none is left.
    fn drain(&mut self, mut queue: VecDeque<Event>) {
        while let Some(ev) = queue.pop_front() {
            let now = self.now_ms();
            let mut out = Vec::new();
            self.peer.as_mut().unwrap().handle(now, ev, &mut out);
            self.execute_all(out, &mut queue);
        }
    }

    fn execute_all(&mut self, out: Vec<Action>, queue: &mut VecDeque<Event>) {
        for a in out {
            self.execute(a, queue);
        }
    }

    fn execute(&mut self, a: Action, queue: &mut VecDeque<Event>) {
        match a {
            Action::SendNotification { to, n } => {
                self.observed.lock().unwrap().notifications_out += 1;
                if to == self.cfg.my_sid {
                    self.trace(format!("election -> self: {}", show_note(&n)));
                    queue.push_back(Event::Notification { from: to, n });
                } else {
                    self.trace(format!("election -> {to}: {}", show_note(&n)));
                    self.send_notification(to, n);
                }
            }
            Action::ConnectAll => {
                let sids: Vec<Sid> = self
                    .members
                    .values()
                    .filter(|m| m.learner_type == LearnerType::Participant)
                    .map(|m| m.sid)
                    .filter(|s| *s != self.cfg.my_sid && !self.conns.contains_key(s))
                    .collect();
                for s in sids {
                    self.connect_election(s);
                }
            }
            Action::ConnectToLeader { leader, link } => {
                let Some(addr) = self.members.get(&leader).map(|m| m.quorum) else {
                    self.problem(format!("ConnectToLeader: unknown leader {leader}"));
                    queue.push_back(Event::LinkClosed { link });
                    return;
                };
                // Learner.connectToLeader: up to 5 tries, 100 ms apart.
                let mut got = None;
                for attempt in 0..5 {
                    match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
                        Ok(s) => {
                            got = Some(s);
                            break;
                        }
                        Err(e) => {
                            self.trace(format!(
                                "quorum: connect to {leader} at {addr} failed (try {attempt}): {e}"
                            ));
                            std::thread::sleep(Duration::from_millis(100));
                        }
                    }
                }
                match got {
                    Some(s) => {
                        let _ = s.set_nodelay(true);
                        let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
                        let reader = s.try_clone().expect("clone quorum socket");
                        let tx = self.tx.clone();
                        std::thread::Builder::new()
                            .name(format!("corral{}-quorum", self.cfg.my_sid))
                            .spawn(move || quorum_reader(link, reader, tx))
                            .unwrap();
                        self.links.insert(link, s);
                        self.trace(format!(
                            "quorum: connected to leader {leader} at {addr}, link {link:#x}"
                        ));
                        queue.push_back(Event::LeaderConnected { link });
                    }
                    None => queue.push_back(Event::LinkClosed { link }),
                }
            }
            Action::Send { link, pkt } => {
                if pkt.typ == wire::PING {
                    self.observed.lock().unwrap().pings_out += 1;
                } else {
                    self.trace(format!(
                        "quorum -> {}({:#x}) data {}",
                        packet_type_name(pkt.typ),
                        pkt.zxid,
                        pkt.data.as_ref().map_or(-1, |d| d.len() as i64)
                    ));
                    let mut o = self.observed.lock().unwrap();
                    o.packets_out.push((pkt.typ, pkt.zxid));
                    o.wire.push((true, pkt.typ, pkt.zxid));
                }
                if pkt.typ == wire::ACKEPOCH {
                    self.expecting_first_sync_packet = true;
                }
                let mut buf = BytesMut::new();
                pkt.encode(&mut buf);
                let failed = match self.links.get_mut(&link) {
                    Some(s) => s.write_all(&buf).err(),
                    None => None,
                };
                if let Some(e) = failed {
                    self.trace(format!("quorum: write on link {link:#x} failed: {e}"));
                    if let Some(s) = self.links.remove(&link) {
                        let _ = s.shutdown(Shutdown::Both);
                    }
                }
            }
            Action::Close { link } => {
                if let Some(s) = self.links.remove(&link) {
                    self.trace(format!("quorum: closing link {link:#x}"));
                    let _ = s.shutdown(Shutdown::Both);
                }
                self.snaps.remove(&link);
            }
            Action::Log { txns } => {
                let last = txns.last().map(|t| t.zxid);
                self.storage.log.extend(txns);
                if let Some(zxid) = last {
                    queue.push_back(Event::Logged { zxid });
                }
            }
            Action::WriteEpoch { file, epoch } => {
                self.trace(format!("storage: {file:?}Epoch = {epoch}"));
                match file {
                    EpochFile::Accepted => self.storage.accepted_epoch = epoch,
                    EpochFile::Current => self.storage.current_epoch = epoch,
                }
                queue.push_back(Event::EpochWritten { file, epoch });
            }
            Action::Truncate { zxid } => {
                self.trace(format!("storage: truncate after {zxid:#x}"));
                self.storage.log.retain(|t| t.zxid <= zxid);
                if self.storage.applied > zxid {
                    self.problem(format!(
                        "TRUNC to {zxid:#x} below what we applied ({:#x})",
                        self.storage.applied
                    ));
                }
                queue.push_back(Event::Truncated { zxid });
            }
            Action::InstallSnap { link, zxid } => match self.snaps.remove(&link) {
                Some((z, load)) if z == zxid => {
                    let mut tree = load.tree;
                    tree.set_last_processed_zxid(zxid);
                    self.storage.tree = Some(tree.clone());
                    self.storage.base_zxid = zxid;
                    self.storage.applied = zxid;
                    self.storage.log.clear();
                    self.observed.lock().unwrap().tree = Some(tree);
                    self.trace(format!("storage: snapshot at {zxid:#x} installed"));
                    queue.push_back(Event::SnapInstalled { zxid });
                }
                other => self.problem(format!(
                    "InstallSnap({zxid:#x}) on link {link:#x}, but we hold {:?}",
                    other.map(|(z, _)| z)
                )),
            },
            Action::Commit { up_to } => self.commit(up_to),
            Action::RoleChanged {
                state,
                leader,
                epoch,
                serving,
            } => {
                let at_ms = self.now_ms();
                self.trace(format!(
                    "ROLE {state:?} leader {leader:?} epoch {epoch} serving {serving}"
                ));
                if let Some((flag, eager)) = &self.accept_learners {
                    flag.store(*eager || state == ServerState::Leading, Ordering::SeqCst);
                }
                // A new role: what was proposed speculatively is gone.
                self.spec_tree = None;
                self.prepper = Prepper::new(self.prepper.config.clone());
                self.proposed_upto = 0;
                self.observed.lock().unwrap().roles.push(RoleSeen {
                    at_ms,
                    state,
                    leader,
                    epoch,
                    serving,
                });
            }
            // This harness keeps no log on disk: learners behind the window get a SNAP.
            Action::ReadLog { link, .. } => queue.push_back(Event::LogRead { link, txns: None }),
            Action::SyncDone | Action::RevalidateResult { .. } => {
                self.trace(format!("client-side action ignored: {a:?}"));
            }
            Action::SendSnap { link, zxid } => self.send_snap(link, zxid),
            Action::Submit {
                from,
                session_id,
                cxid,
                op,
                body,
                auth,
            } => self.submit(from, session_id, cxid, op, body, auth, queue),
            Action::Revalidate {
                link,
                session_id,
                timeout,
                ..
            } => {
                let valid = self
                    .spec_tree
                    .as_ref()
                    .or(self.storage.tree.as_ref())
                    .is_some_and(|t| t.session_timeout(session_id).is_some());
                self.trace(format!(
                    "leader: REVALIDATE {session_id:#x} (timeout {timeout}) -> {valid}"
                ));
                queue.push_back(Event::RevalidateAnswer {
                    link,
                    session_id,
                    valid,
                });
            }
            Action::TouchSessions { .. } => {}
        }
    }

    /// Applies every logged txn up to `up_to`.
    fn commit(&mut self, up_to: i64) {
        let from = self.storage.applied;
        let todo: Vec<ZabTxn> = self
            .storage
            .log
            .iter()
            .filter(|t| t.zxid > from && t.zxid <= up_to)
            .cloned()
            .collect();
        if todo.last().map(|t| t.zxid) != Some(up_to) {
            self.problem(format!(
                "Commit up to {up_to:#x}, but the log holds {:?} after {from:#x}",
                todo.iter()
                    .map(|t| format!("{:#x}", t.zxid))
                    .collect::<Vec<_>>()
            ));
        }
        let mut tree = self.storage.tree.take().unwrap_or_default();
        for t in todo {
            match decode_txn(&t.data, MAX_BUFFER) {
                Ok((hdr, txn, digest)) => {
                    if hdr.zxid != t.zxid {
                        self.problem(format!(
                            "txn header zxid {:#x} in the packet of {:#x}",
                            hdr.zxid, t.zxid
                        ));
                    }
                    let mut triggers = Vec::new();
                    let result = corral::request::apply(&mut tree, &hdr, &txn, &mut triggers);
                    let ours = tree_digest(&tree);
                    self.trace(format!(
                        "commit {:#x}: {} -> {:?}; digest zk {} ours {:#x}",
                        t.zxid,
                        show_txn(&txn),
                        result,
                        digest.map_or("none".to_string(), |d| format!("{d:#x}")),
                        ours
                    ));
                    self.observed.lock().unwrap().committed.push(CommittedTxn {
                        zxid: t.zxid,
                        hdr,
                        txn,
                        digest_expected: digest,
                        digest_ours: ours,
                        result: format!("{result:?}"),
                    });
                }
                Err(e) => self.problem(format!("decode_txn of {:#x} failed: {e}", t.zxid)),
            }
            self.storage.applied = t.zxid;
        }
        self.observed.lock().unwrap().tree = Some(tree.clone());
        self.storage.tree = Some(tree);
    }

    /// Leader: SNAP at `zxid` and the stream of our state, which must be at `zxid`.
    fn send_snap(&mut self, link: LinkId, zxid: i64) {
        let tree = self.storage.tree.clone().unwrap_or_default();
        if self.storage.applied != zxid
            && !(self.storage.applied == 0 && zxid == self.storage.base_zxid)
        {
            self.problem(format!(
                "SendSnap({zxid:#x}) but our state is at {:#x}",
                self.storage.applied
            ));
        }
        let mut buf = BytesMut::new();
        QuorumPacket::new(wire::SNAP, zxid, None).encode(&mut buf);
        let sessions = tree.sessions();
        corral::quorum::snap_stream::write_snap(&tree, &sessions, &mut buf);
        self.trace(format!(
            "quorum -> SNAP({zxid:#x}) + stream: {} nodes, {} sessions, {} bytes",
            tree.node_count(),
            sessions.len(),
            buf.len()
        ));
        {
            let mut o = self.observed.lock().unwrap();
            o.packets_out.push((wire::SNAP, zxid));
            o.wire.push((true, wire::SNAP, zxid));
        }
        if let Some(s) = self.links.get_mut(&link) {
            if let Err(e) = s.write_all(&buf) {
                self.trace(format!("quorum: SNAP write on link {link:#x} failed: {e}"));
            }
        }
    }

    /// Leader: a learner forwarded a client write; prep it (corral's Prepper, against
    /// the tree after everything proposed) and propose it with the digest after it.
    #[allow(clippy::too_many_arguments)]
    fn submit(
        &mut self,
        from: Sid,
        session_id: i64,
        cxid: i32,
        op: i32,
        body: Bytes,
        auth: Vec<corral::proto::Id>,
        queue: &mut VecDeque<Event>,
    ) {
        let Some(next) = self.peer.as_ref().and_then(|p| p.next_zxid()) else {
            self.problem(format!(
                "Submit from {from} while not an established leader"
            ));
            return;
        };
        let zxid = next.max(self.proposed_upto + 1);
        let mut spec = match self.spec_tree.take() {
            Some(t) => t,
            None => self.storage.tree.clone().unwrap_or_default(),
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let (txn, hdr_op, close_paths) = match decode_forwarded(op, &body) {
            Ok(ForwardedRequest::CreateSession { timeout }) => (
                Txn::CreateSession { timeout },
                corral::proto::OpCode::CreateSession,
                Vec::new(),
            ),
            Ok(ForwardedRequest::Client(req)) => {
                let ctx = PrepCtx {
                    session_id,
                    auth: &auth,
                    now_ms: now,
                };
                let close = if matches!(req, corral::proto::Request::CloseSession) {
                    spec.ephemerals(session_id)
                } else {
                    Vec::new()
                };
                let txn = self.prepper.prep(&spec, zxid, &ctx, &req);
                (txn.clone(), txn_op(req.opcode(), &txn), close)
            }
            Ok(other) => {
                self.problem(format!("Submit of {other:?} is not handled here"));
                self.spec_tree = Some(spec);
                return;
            }
            Err(e) => {
                self.problem(format!("REQUEST body from {from} (type {op}): {e}"));
                self.spec_tree = Some(spec);
                return;
            }
        };
        let hdr = TxnHeader {
            client_id: session_id,
            cxid,
            zxid,
            time: now,
            op: hdr_op,
        };
        let mut triggers = Vec::new();
        corral::request::apply(&mut spec, &hdr, &txn, &mut triggers);
        self.prepper.applied(zxid);
        let digest = tree_digest(&spec);
        let mut data = BytesMut::new();
        encode_txn(&hdr, &txn, &close_paths, Some(digest), &mut data);
        self.trace(format!(
            "leader: REQUEST from {from} session {session_id:#x} cxid {cxid} type {op} -> {zxid:#x} {} digest {digest:#x}",
            show_txn(&txn)
        ));
        self.spec_tree = Some(spec);
        self.proposed_upto = zxid;
        queue.push_back(Event::Propose {
            txns: vec![ZabTxn {
                zxid,
                data: data.freeze(),
            }],
        });
    }

    fn send_notification(&mut self, to: Sid, n: Notification) {
        self.last_sent.insert(to, n.clone());
        if !self.conns.contains_key(&to) {
            // toSend: queue it and connectOne; the new connection sends lastMessageSent.
            self.connect_election(to);
            return;
        }
        self.write_notification(to, &n);
    }

    fn write_notification(&mut self, to: Sid, n: &Notification) {
        let mut payload = BytesMut::new();
        n.encode(&mut payload);
        let mut frame = BytesMut::new();
        encode_frame(&payload, &mut frame);
        let failed = match self.conns.get_mut(&to) {
            Some(c) => c.stream.write_all(&frame).err(),
            None => return,
        };
        if let Some(e) = failed {
            self.trace(format!("election: write to {to} failed: {e}"));
            if let Some(c) = self.conns.remove(&to) {
                let _ = c.stream.shutdown(Shutdown::Both);
            }
        }
    }

    /// `connectOne`: dial `sid`'s election port and send our initial message. Kept only
    /// when we are the larger sid; otherwise the peer dials back.
    fn connect_election(&mut self, sid: Sid) {
        let Some(addr) = self.members.get(&sid).map(|m| m.election) else {
            return;
        };
        let me = self.cfg.my_sid;
        let my_addr = self.members[&me].election;
        let mut s = match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
            Ok(s) => s,
            Err(e) => {
                self.trace(format!("election: connect to {sid} at {addr} failed: {e}"));
                return;
            }
        };
        let _ = s.set_nodelay(true);
        let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
        let mut init = BytesMut::new();
        InitialMessage::v1(me as i64, my_addr.to_string()).encode(&mut init);
        if let Err(e) = s.write_all(&init) {
            self.trace(format!("election: initial message to {sid} failed: {e}"));
            return;
        }
        if sid > me {
            self.trace(format!(
                "election: connected to {sid} (larger): dropped, it dials back"
            ));
            let _ = s.shutdown(Shutdown::Both);
            return;
        }
        self.trace(format!("election: connected to {sid} at {addr}: kept"));
        self.install_conn(sid, s, Vec::new());
    }

    fn install_conn(&mut self, sid: Sid, stream: TcpStream, leftover: Vec<u8>) {
        if let Some(old) = self.conns.remove(&sid) {
            let _ = old.stream.shutdown(Shutdown::Both);
        }
        self.next_conn += 1;
        let id = self.next_conn;
        let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
        let reader = stream.try_clone().expect("clone election socket");
        let tx = self.tx.clone();
        std::thread::Builder::new()
            .name(format!("corral{}-elect{sid}", self.cfg.my_sid))
            .spawn(move || election_reader(sid, id, reader, leftover, tx))
            .unwrap();
        self.conns.insert(sid, ElectionConn { id, stream });
        // SendWorker: a new connection starts by re-sending the last message.
        if let Some(n) = self.last_sent.get(&sid).cloned() {
            self.write_notification(sid, &n);
        }
    }
}

fn show_note(n: &Notification) -> String {
    format!(
        "{:?} leader {} zxid {:#x} electionEpoch {} peerEpoch {} v{} config {}B",
        n.state,
        n.leader,
        n.zxid,
        n.election_epoch,
        n.peer_epoch,
        n.version,
        n.config.len()
    )
}

pub fn show_txn(t: &Txn) -> String {
    match t {
        Txn::Create {
            path,
            data,
            ephemeral_owner,
            ..
        } => format!(
            "create {path} {:?} owner {ephemeral_owner:#x}",
            String::from_utf8_lossy(data)
        ),
        Txn::SetData {
            path,
            data,
            version,
        } => format!(
            "setData {path} {:?} v{version}",
            String::from_utf8_lossy(data)
        ),
        Txn::Delete { path } => format!("delete {path}"),
        other => format!("{other:?}"),
    }
}
