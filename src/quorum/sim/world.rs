//! The simulated world: time, the network, the workload, the faults and the checker.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use bytes::{Bytes, BytesMut};

use super::node::{Node, StorageOp};
use crate::quorum::wire::{self, Notification};
use crate::quorum::zab::{Action, Event, LinkId, PeerConfig, ZabTxn};
use crate::quorum::{LearnerType, ServerState, Sid};
use crate::storage::backend::SimRng;

/// Which faults a run injects.
#[derive(Debug, Clone, Copy)]
pub struct Faults {
    pub crashes: bool,
    pub partitions: bool,
    pub link_resets: bool,
    pub slow_disks: bool,
    /// Every disk slow all the time (appends take 50-350 ms), so much is in flight when
    /// a crash comes.
    pub always_slow_disks: bool,
    /// The whole ensemble loses power at once now and then.
    pub whole_power_loss: bool,
    /// Election messages lost at random (per mille).
    pub election_loss_permille: u64,
}

impl Faults {
    pub fn all() -> Faults {
        Faults {
            crashes: true,
            partitions: true,
            link_resets: true,
            slow_disks: true,
            always_slow_disks: false,
            whole_power_loss: true,
            election_loss_permille: 20,
        }
    }

    /// Slow disks everywhere and whole-ensemble power losses: the schedule that loses
    /// an acknowledged write if anyone acknowledges what is not durable.
    pub fn power_losses() -> Faults {
        Faults {
            always_slow_disks: true,
            ..Faults::all()
        }
    }

    pub fn none() -> Faults {
        Faults {
            crashes: false,
            partitions: false,
            link_resets: false,
            slow_disks: false,
            always_slow_disks: false,
            whole_power_loss: false,
            election_loss_permille: 0,
        }
    }
}

/// What a run did.
#[derive(Debug, Default, Clone)]
pub struct SimReport {
    pub committed: usize,
    pub acked_writes: usize,
    pub crashes: u64,
    pub partitions: u64,
    pub link_resets: u64,
    pub slow_disks: u64,
    pub power_losses: u64,
    pub leaders: usize,
    pub steps: u64,
}

enum What {
    Tick(usize),
    /// An event for a server's peer (dropped if the server restarted since).
    Deliver {
        to: usize,
        generation: u64,
        ev: Event,
    },
    /// A message on a quorum connection (dropped if the connection broke).
    OnConn {
        conn: usize,
        to_side: usize,
        msg: ConnMsg,
    },
    StorageDone {
        node: usize,
        generation: u64,
    },
    Client,
    Fault,
    Restart(usize),
    /// The election connection from one server to another is back: the newest
    /// notification that did not get through is sent again (`lastMessageSent`).
    Reconnect(usize, usize),
}

enum ConnMsg {
    Packet(Bytes),
    Snap { zxid: i64, state: Vec<ZabTxn> },
    Closed,
}

/// A quorum-port connection: side 0 dialled (the learner), side 1 accepted.
struct Conn {
    ends: [(usize, LinkId, u64); 2],
    /// Per direction (from side i): still delivering.
    open: [bool; 2],
    /// Per direction: the time the last message is delivered (FIFO).
    last_at: [i64; 2],
}

pub struct World {
    pub rng: SimRng,
    pub now: i64,
    seq: u64,
    queue: BinaryHeap<Reverse<(i64, u64)>>,
    events: BTreeMap<u64, What>,
    pub nodes: Vec<Node>,
    cfgs: Vec<PeerConfig>,
    conns: Vec<Conn>,
    /// blocked[a][b]: nothing from a reaches b.
    blocked: Vec<Vec<bool>>,
    /// The newest notification each server sent each other one, and whether it was
    /// lost (so the reconnection sends it again, as `QuorumCnxManager` does: election
    /// messages travel over TCP and are lost only with their connection).
    last_note: BTreeMap<(usize, usize), (Notification, bool)>,
    faults: Faults,
    /// Until when faults are injected; after it the liveness phase heals everything.
    pub fault_until: i64,
    pub checker: Checker,
    pub report: SimReport,
    next_write: u64,
    /// Clients stop writing at this time (so the liveness check can demand equality).
    pub clients_until: i64,
    /// Writes a client is waiting for: write id -> the server it was sent to.
    waiting: BTreeMap<u64, usize>,
}

/// The invariants, checked as the run goes.
#[derive(Default)]
pub struct Checker {
    /// The one sequence every server's committed state is a prefix of.
    pub canon: Vec<ZabTxn>,
    /// epoch -> the leader established in it.
    pub leaders: BTreeMap<i64, Sid>,
    /// Write id -> the zxid it was acknowledged at.
    pub acked: BTreeMap<u64, i64>,
}

const TICK_MS: i64 = 100;

fn write_id(t: &ZabTxn) -> Option<u64> {
    t.data
        .get(..8)
        .map(|b| u64::from_be_bytes(b.try_into().expect("8 bytes")))
}

impl World {
    /// `voters` participants and `observers` observers, sids 1..=n.
    pub fn new(seed: u64, voters: usize, observers: usize, faults: Faults) -> World {
        let n = voters + observers;
        let voter_set: BTreeSet<Sid> = (1..=voters as Sid).collect();
        let config_string = Bytes::from(
            (1..=n)
                .map(|i| {
                    format!(
                        "server.{i}=127.0.0.1:{}:{}:{}\n",
                        2887 + i,
                        3887 + i,
                        if i <= voters {
                            "participant"
                        } else {
                            "observer"
                        }
                    )
                })
                .collect::<String>()
                + "version=0",
        );
        let cfgs = (1..=n)
            .map(|i| PeerConfig {
                my_sid: i as Sid,
                my_type: if i <= voters {
                    LearnerType::Participant
                } else {
                    LearnerType::Observer
                },
                voters: voter_set.clone(),
                tick_ms: TICK_MS,
                init_limit: 10,
                sync_limit: 5,
                commit_log_count: 50,
                config_string: config_string.clone(),
                min_notification_interval_ms: 50,
                max_notification_interval_ms: 800,
                unsafe_ack_before_log: false,
            })
            .collect();
        let mut w = World {
            rng: SimRng::new(seed),
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            events: BTreeMap::new(),
            nodes: (1..=n).map(|i| Node::new(i as u64)).collect(),
            cfgs,
            conns: Vec::new(),
            blocked: vec![vec![false; n]; n],
            last_note: BTreeMap::new(),
            faults,
            fault_until: 20_000,
            checker: Checker::default(),
            report: SimReport::default(),
            next_write: 1,
            clients_until: i64::MAX,
            waiting: BTreeMap::new(),
        };
        for i in 0..n {
            let at = w.rng.below(50) as i64;
            w.at(at, What::Restart(i));
        }
        w.at(300, What::Client);
        w.at(500, What::Fault);
        w
    }

    /// Makes followers ACK proposals before they are durable (to show the checker
    /// catches a broken send-after-persist rule).
    pub fn sabotage_ack_before_log(&mut self) {
        for c in &mut self.cfgs {
            c.unsafe_ack_before_log = true;
        }
    }

    fn at(&mut self, delay: i64, what: What) {
        self.seq += 1;
        self.queue
            .push(Reverse((self.now + delay.max(0), self.seq)));
        self.events.insert(self.seq, what);
    }

    fn deliver(&mut self, delay: i64, to: usize, ev: Event) {
        let generation = self.nodes[to].generation;
        self.at(delay, What::Deliver { to, generation, ev });
    }

    fn net_delay(&mut self) -> i64 {
        1 + self.rng.below(4) as i64
    }

    /// Runs until `until` (sim ms); Err with a description at the first violation.
    pub fn run(&mut self, until: i64) -> Result<(), String> {
        while let Some(Reverse((t, seq))) = self.queue.pop() {
            if t > until {
                self.queue.push(Reverse((t, seq)));
                break;
            }
            self.now = t;
            let what = self.events.remove(&seq).expect("event stored");
            self.report.steps += 1;
            self.step(what)?;
        }
        self.now = until;
        Ok(())
    }

    fn step(&mut self, what: What) -> Result<(), String> {
        match what {
            What::Tick(i) => {
                if self.nodes[i].peer.is_some() {
                    self.feed(
                        i,
                        Event::Tick {
                            all_delivered: true,
                        },
                    )?;
                    self.at(10, What::Tick(i));
                }
            }
            What::Deliver { to, generation, ev } => {
                if self.nodes[to].generation == generation && self.nodes[to].peer.is_some() {
                    self.feed(to, ev)?;
                }
            }
            What::OnConn { conn, to_side, msg } => self.on_conn(conn, to_side, msg)?,
            What::StorageDone { node, generation } => {
                if self.nodes[node].generation == generation {
                    self.storage_done(node)?;
                }
            }
            What::Client => {
                if self.now < self.clients_until {
                    self.client();
                }
                let d = 5 + self.rng.below(20) as i64;
                self.at(d, What::Client);
            }
            What::Fault => {
                if self.now < self.fault_until {
                    self.fault();
                    let d = 200 + self.rng.below(800) as i64;
                    self.at(d, What::Fault);
                } else {
                    self.heal_all();
                }
            }
            What::Reconnect(a, b) => {
                if let Some((n, true)) = self.last_note.get(&(a, b)).cloned() {
                    if self.nodes[a].peer.is_some() {
                        self.send_note(a, b, n)?;
                    }
                }
            }
            What::Restart(i) => {
                if self.nodes[i].peer.is_none() {
                    self.restart(i)?;
                }
            }
        }
        Ok(())
    }

    fn restart(&mut self, i: usize) -> Result<(), String> {
        let keep = self.cfgs[i].commit_log_count;
        let state = self.nodes[i].recover(keep);
        let mut out = Vec::new();
        let peer = crate::quorum::zab::Peer::new(self.cfgs[i].clone(), state, self.now, &mut out);
        self.nodes[i].peer = Some(peer);
        self.at(10, What::Tick(i));
        self.carry_out(i, out)
    }

    fn feed(&mut self, i: usize, ev: Event) -> Result<(), String> {
        let mut out = Vec::new();
        let now = self.now;
        let Some(peer) = self.nodes[i].peer.as_mut() else {
            return Ok(());
        };
        peer.handle(now, ev, &mut out);
        self.carry_out(i, out)
    }

    fn carry_out(&mut self, i: usize, actions: Vec<Action>) -> Result<(), String> {
        for a in actions {
            self.action(i, a)?;
        }
        Ok(())
    }

    fn action(&mut self, i: usize, a: Action) -> Result<(), String> {
        match a {
            Action::SendNotification { to, n } => {
                let to = to as usize - 1;
                if to == i {
                    let from = self.nodes[i].sid;
                    self.deliver(0, i, Event::Notification { from, n });
                } else {
                    self.send_note(i, to, n)?;
                }
            }
            Action::ConnectAll => {}
            Action::ConnectToLeader { leader, link } => {
                let l = leader as usize - 1;
                let d = self.net_delay();
                if l == i
                    || self.nodes[l].peer.is_none()
                    || self.blocked[i][l]
                    || self.blocked[l][i]
                {
                    self.deliver(d + 50, i, Event::LinkClosed { link });
                } else {
                    self.nodes[l].next_link += 1;
                    let their = self.nodes[l].next_link;
                    self.conns.push(Conn {
                        ends: [
                            (i, link, self.nodes[i].generation),
                            (l, their, self.nodes[l].generation),
                        ],
                        open: [true, true],
                        last_at: [0, 0],
                    });
                    self.deliver(d, l, Event::LearnerConnected { link: their });
                    self.deliver(d + 1, i, Event::LeaderConnected { link });
                }
            }
            Action::Send { link, pkt } => {
                let mut buf = BytesMut::new();
                pkt.encode(&mut buf);
                self.conn_send(i, link, ConnMsg::Packet(buf.freeze()));
            }
            Action::SendSnap { link, zxid } => {
                let n = &self.nodes[i];
                if n.applied_zxid() != zxid {
                    return Err(format!(
                        "server {}: SNAP at {zxid:#x} but its state is at {:#x}",
                        n.sid,
                        n.applied_zxid()
                    ));
                }
                let state = n.applied.clone();
                self.conn_send(i, link, ConnMsg::Snap { zxid, state });
            }
            Action::Close { link } => {
                if let Some((c, side)) = self.find_conn(i, link) {
                    if self.conns[c].open[side] {
                        self.conn_send(i, link, ConnMsg::Closed);
                    }
                    self.conns[c].open[side] = false;
                }
            }
            Action::Log { txns } => {
                self.nodes[i].given.extend(txns.iter().cloned());
                self.storage(i, StorageOp::Append(txns));
            }
            Action::WriteEpoch { file, epoch } => self.storage(i, StorageOp::Epoch(file, epoch)),
            Action::Truncate { zxid } => {
                self.nodes[i].given.retain(|t| t.zxid <= zxid);
                self.storage(i, StorageOp::Truncate(zxid));
            }
            Action::InstallSnap { link, zxid } => {
                let state = self.nodes[i]
                    .snaps
                    .remove(&link)
                    .ok_or("InstallSnap without a SNAP")?;
                if state.last().map_or(0, |t| t.zxid) != zxid {
                    return Err("InstallSnap at another zxid than received".into());
                }
                self.nodes[i].given.clear();
                self.storage(i, StorageOp::Install(state));
            }
            Action::Commit { up_to } => {
                let done = self.nodes[i].commit(up_to)?;
                self.check_prefix(i)?;
                for t in done {
                    if let Some(id) = write_id(&t) {
                        if self.waiting.get(&id) == Some(&i) {
                            self.waiting.remove(&id);
                            self.checker.acked.insert(id, t.zxid);
                            self.report.acked_writes += 1;
                        }
                    }
                }
            }
            Action::Submit { body, .. } => {
                // The leader's commit pipeline: the body is the client's write id.
                self.propose(i, body);
            }
            Action::Revalidate {
                link, session_id, ..
            } => self.deliver(
                0,
                i,
                Event::RevalidateAnswer {
                    link,
                    session_id,
                    valid: true,
                },
            ),
            Action::TouchSessions { .. } | Action::RevalidateResult { .. } | Action::SyncDone => {}
            Action::RoleChanged {
                state,
                epoch,
                serving,
                ..
            } => {
                if std::env::var("CORRAL_SIM_TRACE").is_ok() {
                    eprintln!(
                        "{:>6} ms server {}: {state:?} epoch {epoch} serving {serving}",
                        self.now, self.nodes[i].sid
                    );
                }
                if state == ServerState::Leading && serving {
                    let sid = self.nodes[i].sid;
                    match self.checker.leaders.insert(epoch, sid) {
                        Some(other) if other != sid => {
                            return Err(format!(
                                "two leaders established in epoch {epoch}: {other} and {sid}"
                            ))
                        }
                        _ => self.report.leaders += 1,
                    }
                }
                if !serving {
                    // Clients of this server lose their pending writes (their
                    // connections close); they were never acknowledged.
                    self.waiting.retain(|_, s| *s != i);
                }
            }
        }
        Ok(())
    }

    fn send_note(&mut self, i: usize, to: usize, n: Notification) -> Result<(), String> {
        let lost = self.rng.below(1000) < self.faults.election_loss_permille;
        if self.blocked[i][to] || lost {
            self.last_note.insert((i, to), (n, true));
            if !self.blocked[i][to] {
                // The connection broke: it comes back after a while.
                let d = 100 + self.rng.below(400) as i64;
                self.at(d, What::Reconnect(i, to));
            }
            return Ok(());
        }
        // Through the wire codec, as a real peer would get it.
        let mut buf = BytesMut::new();
        n.encode(&mut buf);
        let decoded = Notification::decode(&buf).ok_or("notification did not decode")?;
        self.last_note.insert((i, to), (n, false));
        let from = self.nodes[i].sid;
        let d = self.net_delay();
        self.deliver(d, to, Event::Notification { from, n: decoded });
        Ok(())
    }

    fn propose(&mut self, i: usize, body: Bytes) {
        let now = self.now;
        let Some(peer) = self.nodes[i].peer.as_mut() else {
            return;
        };
        let Some(zxid) = peer.next_zxid() else {
            return;
        };
        let mut out = Vec::new();
        peer.handle(
            now,
            Event::Propose {
                txns: vec![ZabTxn { zxid, data: body }],
            },
            &mut out,
        );
        let _ = self.carry_out(i, out);
    }

    fn storage(&mut self, i: usize, op: StorageOp) {
        self.nodes[i].storage.push_back(op);
        self.kick_storage(i);
    }

    fn kick_storage(&mut self, i: usize) {
        let n = &self.nodes[i];
        if n.storage_busy || n.storage.is_empty() {
            return;
        }
        let slow = self.faults.always_slow_disks || n.slow_disk_until > self.now;
        let generation = n.generation;
        self.nodes[i].storage_busy = true;
        let d = if slow {
            50 + self.rng.below(300) as i64
        } else {
            1 + self.rng.below(3) as i64
        };
        self.at(
            d,
            What::StorageDone {
                node: i,
                generation,
            },
        );
    }

    fn storage_done(&mut self, i: usize) -> Result<(), String> {
        self.nodes[i].storage_busy = false;
        let op = self.nodes[i].complete_storage()?;
        let ev = match op {
            StorageOp::Append(txns) => Event::Logged {
                zxid: txns.last().expect("non-empty append").zxid,
            },
            StorageOp::Epoch(file, epoch) => Event::EpochWritten { file, epoch },
            StorageOp::Truncate(zxid) => Event::Truncated { zxid },
            StorageOp::Install(state) => {
                self.check_prefix(i)?;
                Event::SnapInstalled {
                    zxid: state.last().map_or(0, |t| t.zxid),
                }
            }
        };
        self.feed(i, ev)?;
        self.kick_storage(i);
        Ok(())
    }

    fn find_conn(&self, node: usize, link: LinkId) -> Option<(usize, usize)> {
        let generation = self.nodes[node].generation;
        self.conns.iter().enumerate().rev().find_map(|(c, conn)| {
            (0..2)
                .find(|&s| conn.ends[s] == (node, link, generation))
                .map(|s| (c, s))
        })
    }

    fn conn_send(&mut self, node: usize, link: LinkId, msg: ConnMsg) {
        let Some((c, side)) = self.find_conn(node, link) else {
            return;
        };
        let other = 1 - side;
        let to = self.conns[c].ends[other].0;
        if !self.conns[c].open[side] {
            return;
        }
        if self.blocked[node][to] {
            // A stalled connection: nothing more gets through in this direction.
            self.conns[c].open[side] = false;
            return;
        }
        let d = self.net_delay();
        let at = (self.now + d).max(self.conns[c].last_at[side]);
        self.conns[c].last_at[side] = at;
        let delay = at - self.now;
        self.at(
            delay,
            What::OnConn {
                conn: c,
                to_side: other,
                msg,
            },
        );
    }

    fn on_conn(&mut self, c: usize, to_side: usize, msg: ConnMsg) -> Result<(), String> {
        let (node, link, generation) = self.conns[c].ends[to_side];
        if self.nodes[node].generation != generation || self.nodes[node].peer.is_none() {
            return Ok(());
        }
        if !self.conns[c].open[1 - to_side] && !matches!(msg, ConnMsg::Closed) {
            return Ok(());
        }
        match msg {
            ConnMsg::Packet(bytes) => {
                let (pkt, used) = wire::decode_packet(&bytes, 1 << 20)
                    .map_err(|e| format!("packet did not decode: {e}"))?
                    .ok_or("packet incomplete")?;
                if used != bytes.len() {
                    return Err("packet decode left bytes".into());
                }
                self.feed(node, Event::Packet { link, pkt })
            }
            ConnMsg::Snap { zxid, state } => {
                self.nodes[node].snaps.insert(link, state);
                self.feed(node, Event::SnapReceived { link, zxid })
            }
            ConnMsg::Closed => {
                self.conns[c].open = [false, false];
                self.feed(node, Event::LinkClosed { link })
            }
        }
    }

    /// A client sends a write to a random server that serves.
    fn client(&mut self) {
        let i = self.rng.below(self.nodes.len() as u64) as usize;
        let Some(peer) = self.nodes[i].peer.as_ref() else {
            return;
        };
        if !peer.serving() {
            return;
        }
        let id = self.next_write;
        self.next_write += 1;
        self.waiting.insert(id, i);
        let body = Bytes::copy_from_slice(&id.to_be_bytes());
        if peer.state() == ServerState::Leading {
            self.propose(i, body);
        } else {
            let _ = self.feed(
                i,
                Event::Forward {
                    session_id: 1,
                    cxid: id as i32,
                    op: 5,
                    body,
                    auth: Vec::new(),
                },
            );
        }
    }

    fn fault(&mut self) {
        let n = self.nodes.len();
        if self.faults.whole_power_loss && self.rng.below(12) == 0 {
            self.report.power_losses += 1;
            for v in 0..n {
                if self.nodes[v].peer.is_some() {
                    self.crash(v);
                    let d = 100 + self.rng.below(1000) as i64;
                    self.at(d, What::Restart(v));
                }
            }
            return;
        }
        match self.rng.below(10) {
            0..=2 if self.faults.crashes => {
                let i = self.rng.below(n as u64) as usize;
                // Sometimes two servers lose power together (a rack, a PDU).
                let mut victims = vec![i];
                if self.rng.below(3) == 0 {
                    victims.push(self.rng.below(n as u64) as usize);
                }
                for v in victims {
                    if self.nodes[v].peer.is_some() {
                        self.crash(v);
                        let d = 100 + self.rng.below(3000) as i64;
                        self.at(d, What::Restart(v));
                    }
                }
            }
            3..=4 if self.faults.partitions => {
                self.report.partitions += 1;
                let a = self.rng.below(n as u64) as usize;
                if self.rng.below(2) == 0 {
                    // Isolate a server both ways.
                    for b in 0..n {
                        if b != a {
                            self.blocked[a][b] = true;
                            self.blocked[b][a] = true;
                        }
                    }
                } else {
                    let b = self.rng.below(n as u64) as usize;
                    if a != b {
                        self.blocked[a][b] = true;
                    }
                }
            }
            5 if self.faults.partitions => self.heal_network(),
            6 if self.faults.link_resets && !self.conns.is_empty() => {
                self.report.link_resets += 1;
                let c = self.rng.below(self.conns.len() as u64) as usize;
                for side in 0..2 {
                    let (node, link, _) = self.conns[c].ends[side];
                    if self.conns[c].open[side] {
                        self.conn_send(node, link, ConnMsg::Closed);
                    }
                }
                self.conns[c].open = [false, false];
            }
            7 if self.faults.slow_disks => {
                self.report.slow_disks += 1;
                let i = self.rng.below(n as u64) as usize;
                self.nodes[i].slow_disk_until = self.now + 500 + self.rng.below(2000) as i64;
            }
            _ => {}
        }
    }

    fn crash(&mut self, i: usize) {
        self.report.crashes += 1;
        self.waiting.retain(|_, s| *s != i);
        // Its connections reset: the other ends hear of it.
        let generation = self.nodes[i].generation;
        for c in 0..self.conns.len() {
            for side in 0..2 {
                let (node, link, g) = self.conns[c].ends[side];
                if node == i && g == generation && self.conns[c].open[side] {
                    self.conn_send(node, link, ConnMsg::Closed);
                    self.conns[c].open[side] = false;
                }
            }
        }
        self.nodes[i].crash();
        self.last_note.retain(|(a, _), _| *a != i);
    }

    fn heal_network(&mut self) {
        for row in &mut self.blocked {
            row.iter_mut().for_each(|b| *b = false);
        }
        let lost: Vec<(usize, usize)> = self
            .last_note
            .iter()
            .filter(|(_, (_, lost))| *lost)
            .map(|(k, _)| *k)
            .collect();
        for (a, b) in lost {
            let d = 10 + self.rng.below(200) as i64;
            self.at(d, What::Reconnect(a, b));
        }
    }

    fn heal_all(&mut self) {
        self.heal_network();
        for i in 0..self.nodes.len() {
            self.nodes[i].slow_disk_until = 0;
            if self.nodes[i].peer.is_none() {
                self.at(0, What::Restart(i));
            }
        }
    }

    /// A server's committed state is a prefix of the common sequence (extending it).
    fn check_prefix(&mut self, i: usize) -> Result<(), String> {
        let n = &self.nodes[i];
        let confirmed = &n.applied[..n.confirmed];
        let canon = &mut self.checker.canon;
        let shared = confirmed.len().min(canon.len());
        if let Some(k) = (0..shared).find(|&k| confirmed[k] != canon[k]) {
            return Err(format!(
                "server {} committed {:#x}/{:?} at position {k} where another committed {:#x}/{:?}",
                n.sid,
                confirmed[k].zxid,
                write_id(&confirmed[k]),
                canon[k].zxid,
                write_id(&canon[k])
            ));
        }
        if confirmed.len() > canon.len() {
            canon.extend_from_slice(&confirmed[canon.len()..]);
        }
        self.report.committed = canon.len();
        Ok(())
    }

    /// After the liveness phase: everything healed has converged and serves, and holds
    /// every acknowledged write.
    pub fn check_converged(&mut self) -> Result<(), String> {
        for i in 0..self.nodes.len() {
            let n = &self.nodes[i];
            let Some(peer) = n.peer.as_ref() else {
                return Err(format!("server {} is not running", n.sid));
            };
            if !peer.serving() {
                return Err(format!(
                    "server {} does not serve after the liveness phase ({:?})",
                    n.sid,
                    peer.state()
                ));
            }
        }
        for (&id, &zxid) in &self.checker.acked {
            let pos = self.checker.canon.iter().position(|t| t.zxid == zxid);
            match pos {
                Some(p) if write_id(&self.checker.canon[p]) == Some(id) => {}
                _ => return Err(format!("acknowledged write {id} at {zxid:#x} is lost")),
            }
        }
        // Every server has applied the whole common sequence.
        let canon_len = self.checker.canon.len();
        for n in &self.nodes {
            if n.confirmed != canon_len {
                return Err(format!(
                    "server {} holds {} committed txns of {canon_len}",
                    n.sid, n.confirmed
                ));
            }
        }
        Ok(())
    }

    /// Each server's role and progress, for a failure report.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        for n in &self.nodes {
            match &n.peer {
                None => s += &format!("  server {}: down\n", n.sid),
                Some(p) => {
                    s += &format!(
                        "  server {}: {:?} leader {:?} serving {} epochs {}/{} logged {:#x} committed {:#x} applied {:#x} confirmed {} election {} {:?} {:?} next {:?}\n",
                        n.sid,
                        p.state(),
                        p.leader(),
                        p.serving(),
                        p.accepted_epoch(),
                        p.current_epoch(),
                        p.last_logged_zxid(),
                        p.last_committed_zxid(),
                        n.applied_zxid(),
                        n.confirmed,
                        p.election().logicalclock(),
                        p.election().state(),
                        p.election().proposal(),
                        p.election().next_timeout()
                    )
                }
            }
        }
        s + &format!("  common sequence: {} txns\n", self.checker.canon.len())
    }
}

/// Runs one seed: a fault phase, then a liveness phase with every fault healed.
pub fn run_seed(
    seed: u64,
    voters: usize,
    observers: usize,
    faults: Faults,
    sabotage: bool,
) -> Result<SimReport, String> {
    let mut w = World::new(seed, voters, observers, faults);
    if sabotage {
        w.sabotage_ack_before_log();
    }
    w.fault_until = 15_000;
    w.run(15_000)?;
    // Liveness: heal, keep writing, then stop writing and let the ensemble converge.
    let acked_before = w.report.acked_writes;
    w.clients_until = 30_000;
    w.run(35_000)?;
    if w.report.acked_writes == acked_before {
        return Err(format!(
            "no write was acknowledged in the liveness phase\n{}",
            w.describe()
        ));
    }
    w.check_converged()
        .map_err(|e| format!("{e}\n{}", w.describe()))?;
    Ok(w.report.clone())
}
