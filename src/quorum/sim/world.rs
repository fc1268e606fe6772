//! The simulated world: time, the network, the workload, the faults and the checker.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use bytes::{Bytes, BytesMut};

use super::node::{Given, Node, SnapMeta};
use super::store::{self, Done, Failed, StorageOp};
use super::workload::{self, Write};
use crate::quorum::snap_stream::{write_snap, SnapReader};
use crate::quorum::wire::{self, Notification};
use crate::quorum::zab::{Action, Event, LinkId, PeerConfig, PeerState, ZabTxn};
use crate::quorum::{zk_txn, LearnerType, ServerState, Sid};
use crate::request::{PrepConfig, Prepper, Txn, TxnHeader};
use crate::storage::backend::SimRng;
use crate::storage::StorageError;

/// Which faults a run injects.
#[derive(Debug, Clone, Copy)]
pub struct Faults {
    /// Servers lose power: at once, or in the middle of one of their next storage
    /// operations (and now and then again during the recovery that follows).
    pub crashes: bool,
    pub partitions: bool,
    pub link_resets: bool,
    pub slow_disks: bool,
    /// Every disk slow all the time (completions take 50-350 ms), so much is queued
    /// when a crash comes.
    pub always_slow_disks: bool,
    /// The whole ensemble loses power at once now and then.
    pub whole_power_loss: bool,
    /// Election messages lost at random (per mille).
    pub election_loss_permille: u64,
    /// A disk fills up for a while (ENOSPC) or fails an fdatasync (EIO); the server
    /// stops on it (exit 70) and is restarted.
    pub storage_errors: bool,
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
            storage_errors: true,
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
            storage_errors: false,
        }
    }
}

/// What a run did.
#[derive(Debug, Default, Clone)]
pub struct SimReport {
    pub committed: usize,
    pub acked_writes: usize,
    /// Servers that went down (every cause below).
    pub crashes: u64,
    /// Power cut at once (`SimBackend::power_cut`): unsynced writes kept, lost or torn.
    pub power_cuts: u64,
    /// Power cut inside a storage operation (`cut_power_after`).
    pub mid_op_cuts: u64,
    /// Power cut inside the recovery of a restarting server.
    pub recovery_cuts: u64,
    /// Servers stopped by an injected storage failure (exit 70): ENOSPC, EIO.
    pub enospc_stops: u64,
    pub eio_stops: u64,
    /// Restarts that failed (recovery under an injected fault) and were retried.
    pub failed_restarts: u64,
    pub partitions: u64,
    pub link_resets: u64,
    pub slow_disks: u64,
    pub power_losses: u64,
    pub snaps_installed: u64,
    /// DIFFs a leader read from its log on disk (older than its window in memory).
    pub diffs_from_disk: u64,
    pub truncations: u64,
    /// Truncations below the applied state, which reload it from the disk.
    pub state_reloads: u64,
    /// What recoveries reported: torn tails cut, interrupted installs and cuts
    /// finished, half-made segments removed.
    pub torn_tails: u64,
    pub finished_installs: u64,
    pub finished_cuts: u64,
    pub dropped_segments: u64,
    pub leaders: usize,
    pub steps: u64,
}

impl SimReport {
    pub fn add(&mut self, r: &SimReport) {
        self.committed += r.committed;
        self.acked_writes += r.acked_writes;
        self.crashes += r.crashes;
        self.power_cuts += r.power_cuts;
        self.mid_op_cuts += r.mid_op_cuts;
        self.recovery_cuts += r.recovery_cuts;
        self.enospc_stops += r.enospc_stops;
        self.eio_stops += r.eio_stops;
        self.failed_restarts += r.failed_restarts;
        self.partitions += r.partitions;
        self.link_resets += r.link_resets;
        self.slow_disks += r.slow_disks;
        self.power_losses += r.power_losses;
        self.snaps_installed += r.snaps_installed;
        self.diffs_from_disk += r.diffs_from_disk;
        self.truncations += r.truncations;
        self.state_reloads += r.state_reloads;
        self.torn_tails += r.torn_tails;
        self.finished_installs += r.finished_installs;
        self.finished_cuts += r.finished_cuts;
        self.dropped_segments += r.dropped_segments;
        self.leaders += r.leaders;
        self.steps += r.steps;
    }
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
    /// The server's storage task takes the next operation.
    StorageStart {
        node: usize,
        generation: u64,
    },
    /// The operation under way reports its completion.
    StorageDone {
        node: usize,
        generation: u64,
    },
    /// A power cut scheduled inside a storage operation has not come: it comes now.
    CutDeadline {
        node: usize,
        generation: u64,
    },
    /// A full disk has room again.
    DiskFreed(usize),
    /// The runtime tells the peer from where its log on disk is complete, at start and
    /// every `HORIZON_EVERY_MS`.
    Horizon {
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
    /// A SNAP and its stream (`snap_stream`'s format), with what the checker knows of
    /// the state it carries (not part of the protocol).
    Snap {
        zxid: i64,
        stream: Bytes,
        meta: SnapMeta,
        print: i64,
    },
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
    /// `CORRAL_SIM_TRACE`: print what happens to each server.
    trace: bool,
}

/// The invariants, checked as the run goes.
#[derive(Default)]
pub struct Checker {
    /// The one sequence every server's committed state is a prefix of (zxids
    /// increasing), as plain PROPOSAL data (closeSession without its path list, which
    /// the log does not keep).
    pub canon: Vec<ZabTxn>,
    /// The state (tree digest and sessions) after each txn of `canon`, where a server
    /// was seen holding exactly that state.
    prints: Vec<Option<i64>>,
    /// epoch -> the leader established in it.
    pub leaders: BTreeMap<i64, Sid>,
    /// Write id -> the zxid it was acknowledged at.
    pub acked: BTreeMap<u64, i64>,
    /// Per server: the snapshots it installed, by zxid (what a recovery that loads one
    /// of them starts from).
    installs: Vec<BTreeMap<i64, SnapMeta>>,
}

impl Checker {
    fn pos(&self, zxid: i64) -> Option<usize> {
        self.canon.binary_search_by_key(&zxid, |t| t.zxid).ok()
    }
}

const TICK_MS: i64 = 100;
/// `ensemble::LOG_HORIZON_EVERY`.
const HORIZON_EVERY_MS: i64 = 2_000;

/// The same txn as plain PROPOSAL data: what the checker compares.
fn plain(hdr: &TxnHeader, txn: &Txn) -> ZabTxn {
    let mut buf = BytesMut::new();
    zk_txn::encode_txn(hdr, txn, &[], None, &mut buf);
    ZabTxn {
        zxid: hdr.zxid,
        data: buf.freeze(),
    }
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
        let mut rng = SimRng::new(seed);
        let nodes = (1..=n)
            .map(|i| Node::new(i as u64, rng.next_u64()))
            .collect();
        let mut w = World {
            rng,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            events: BTreeMap::new(),
            nodes,
            cfgs,
            conns: Vec::new(),
            blocked: vec![vec![false; n]; n],
            last_note: BTreeMap::new(),
            faults,
            fault_until: 20_000,
            checker: Checker {
                installs: vec![BTreeMap::new(); n],
                ..Checker::default()
            },
            report: SimReport::default(),
            next_write: 1,
            clients_until: i64::MAX,
            waiting: BTreeMap::new(),
            trace: std::env::var("CORRAL_SIM_TRACE").is_ok(),
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

    fn trace(&self, i: usize, what: std::fmt::Arguments) {
        if self.trace {
            eprintln!("{:>6} ms server {}: {what}", self.now, self.nodes[i].sid);
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
            What::StorageStart { node, generation } => {
                if self.nodes[node].generation == generation && self.nodes[node].peer.is_some() {
                    self.storage_start(node)?;
                }
            }
            What::StorageDone { node, generation } => {
                if self.nodes[node].generation == generation && self.nodes[node].peer.is_some() {
                    self.storage_done(node)?;
                }
            }
            What::CutDeadline { node, generation } => {
                if self.nodes[node].generation == generation && self.nodes[node].cut_armed {
                    self.power_off(node);
                    self.restart_later(node, 100, 1000);
                }
            }
            What::Horizon { node, generation } => {
                if self.nodes[node].generation == generation && self.nodes[node].peer.is_some() {
                    if let Ok(complete_from) = store::horizon(&self.nodes[node].disk) {
                        self.feed(node, Event::LogHorizon { complete_from })?;
                    }
                    self.at(HORIZON_EVERY_MS, What::Horizon { node, generation });
                }
            }
            What::DiskFreed(i) => {
                if self.nodes[i].full_until <= self.now {
                    self.nodes[i].disk.set_capacity(None);
                }
            }
            What::Client => {
                if self.now < self.clients_until {
                    self.client()?;
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

    fn restart_later(&mut self, i: usize, min: i64, spread: u64) {
        let d = min + self.rng.below(spread) as i64;
        self.at(d, What::Restart(i));
    }

    /// A server starts from its disk: recovery, the epoch files, the tree from the
    /// snapshot and the log (as `server::durability` and `ensemble::peer_state` do).
    fn restart(&mut self, i: usize) -> Result<(), String> {
        // Now and then the power goes again while recovery runs (finishing an
        // interrupted install or cut is itself interrupted).
        let cut = self.faults.crashes && self.now < self.fault_until && self.rng.below(8) == 0;
        if cut {
            let n = self.rng.below(6);
            self.nodes[i].disk.cut_power_after(n);
        }
        let restored = store::restore(&self.nodes[i].disk);
        if cut {
            if !self.nodes[i].disk.cut_pending() {
                self.trace(i, format_args!("power cut inside recovery"));
                self.report.recovery_cuts += 1;
                self.restart_later(i, 100, 1000);
                return Ok(());
            }
            // Recovery finished first: no cut.
            self.nodes[i].disk.cut_power_after(u64::MAX);
        }
        let r = match restored {
            Ok(r) => r,
            Err(e) if self.nodes[i].storage_fault_active(self.now) => {
                // The process stops (what it wrote and did not sync stays in the page
                // cache, where the next start reads it), and is started again.
                self.trace(i, format_args!("cannot start: {e}"));
                self.report.failed_restarts += 1;
                self.restart_later(i, 200, 1000);
                return Ok(());
            }
            Err(e) => {
                return Err(format!(
                    "server {} cannot restart: {e}\n{}",
                    self.nodes[i].sid,
                    self.describe()
                ))
            }
        };
        for w in &r.rec.warnings {
            if w.contains("torn tail") {
                self.report.torn_tails += 1;
            } else if w.contains("finished installing") {
                self.report.finished_installs += 1;
            } else if w.contains("finished cutting") {
                self.report.finished_cuts += 1;
            } else if w.contains("header is incomplete") {
                self.report.dropped_segments += 1;
            }
        }
        let logged: Vec<ZabTxn> = r.rec.txns.iter().map(|(h, t)| plain(h, t)).collect();
        let snap_zxid = r.rec.snapshot.as_ref().map_or(0, |s| s.last_zxid);
        let meta = if snap_zxid == 0 {
            SnapMeta::default()
        } else {
            self.checker.installs[i]
                .get(&snap_zxid)
                .cloned()
                .ok_or_else(|| {
                    format!(
                        "server {} recovered a snapshot at {snap_zxid:#x} it never installed",
                        self.nodes[i].sid
                    )
                })?
        };
        let keep = self.cfgs[i].commit_log_count;
        let skip = logged.len().saturating_sub(keep);
        let state = PeerState {
            accepted_epoch: r.accepted_epoch,
            current_epoch: r.current_epoch,
            last_logged_zxid: r.rec.last_zxid,
            // As `ensemble::peer_state`: the newest logged txns, encoded again.
            committed_log: logged[skip..].to_vec(),
            snapshot_zxid: snap_zxid,
        };
        let n = &mut self.nodes[i];
        n.log = Some(r.log);
        n.tree = r.tree;
        n.confirmed = meta.confirmed;
        n.tentative = meta.tentative.into_iter().chain(logged).collect();
        let expect = n.tentative.back().map_or(n.confirmed, |t| t.zxid);
        if n.applied_zxid() != expect {
            return Err(format!(
                "server {}: recovery built the state at {:#x}, its snapshot and log end at {expect:#x}",
                n.sid,
                n.applied_zxid()
            ));
        }
        self.check_print(i)?;
        self.trace(
            i,
            format_args!(
                "up: snapshot {snap_zxid:#x}, log to {:#x}, epochs {}/{}, confirmed {:#x} + {} tentative{}",
                state.last_logged_zxid,
                state.accepted_epoch,
                state.current_epoch,
                self.nodes[i].confirmed,
                self.nodes[i].tentative.len(),
                if r.rec.warnings.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", r.rec.warnings.join("; "))
                }
            ),
        );
        // Every running server gets a new election connection to this one, on which its
        // `SendWorker` sends `lastMessageSent` first (`peer_links::election_writer`).
        let to_me: Vec<usize> = self
            .last_note
            .keys()
            .filter(|&&(a, b)| b == i && a != i)
            .map(|&(a, _)| a)
            .collect();
        for a in to_me {
            if let Some(e) = self.last_note.get_mut(&(a, i)) {
                e.1 = true;
            }
            let d = 10 + self.rng.below(100) as i64;
            self.at(d, What::Reconnect(a, i));
        }
        let mut out = Vec::new();
        let peer = crate::quorum::zab::Peer::new(self.cfgs[i].clone(), state, self.now, &mut out);
        self.nodes[i].peer = Some(peer);
        self.at(10, What::Tick(i));
        let generation = self.nodes[i].generation;
        self.at(
            0,
            What::Horizon {
                node: i,
                generation,
            },
        );
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
                // The stream as the runtime writes it (`ensemble::send_snap`).
                let sessions = n.tree.sessions();
                let mut buf = BytesMut::new();
                write_snap(&n.tree, &sessions, &mut buf);
                let meta = SnapMeta {
                    confirmed: n.confirmed,
                    tentative: n.tentative.iter().cloned().collect(),
                };
                let print = workload::fingerprint(&n.tree);
                let msg = ConnMsg::Snap {
                    zxid,
                    stream: buf.freeze(),
                    meta,
                    print,
                };
                self.conn_send(i, link, msg);
            }
            Action::Close { link } => {
                if let Some((c, side)) = self.find_conn(i, link) {
                    if self.conns[c].open[side] {
                        self.conn_send(i, link, ConnMsg::Closed);
                    }
                    self.conns[c].open[side] = false;
                }
            }
            Action::Log { txns } => self.log(i, txns)?,
            Action::WriteEpoch { file, epoch } => self.storage(i, StorageOp::Epoch(file, epoch)),
            Action::Truncate { zxid } => {
                let n = &mut self.nodes[i];
                if zxid < n.confirmed {
                    return Err(format!(
                        "server {}: TRUNC to {zxid:#x} takes away txns it committed (up to {:#x})",
                        n.sid, n.confirmed
                    ));
                }
                n.given.retain(|g| g.t.zxid <= zxid);
                self.report.truncations += 1;
                self.trace(i, format_args!("TRUNC to {zxid:#x}"));
                self.storage(i, StorageOp::Truncate(zxid));
            }
            Action::InstallSnap { link, zxid } => {
                let (mut tree, meta) = self.nodes[i]
                    .snaps
                    .remove(&link)
                    .ok_or("InstallSnap without a SNAP")?;
                tree.set_last_processed_zxid(zxid);
                self.checker.installs[i].insert(zxid, meta.clone());
                let n = &mut self.nodes[i];
                // The state is replaced at once, as the runtime publishes it to the
                // shards; the disk follows.
                n.given.clear();
                n.confirmed = meta.confirmed;
                n.tentative = meta.tentative.into_iter().collect();
                n.tree = tree.clone();
                self.check_print(i)?;
                self.report.snaps_installed += 1;
                self.trace(i, format_args!("SNAP at {zxid:#x}"));
                self.storage(i, StorageOp::Install(Box::new(tree), zxid));
            }
            Action::Commit { up_to } => {
                let (confirmed, applied) = self.nodes[i].commit(up_to)?;
                if let (Some(a), Some(b)) = (confirmed.first(), confirmed.last()) {
                    self.trace(i, format_args!("commits {:#x}..={:#x}", a.zxid, b.zxid));
                }
                self.confirm(i, &confirmed)?;
                if let Some(p) = self.nodes[i].prepper.as_mut() {
                    p.applied(up_to);
                }
                for hdr in applied {
                    let id = hdr.cxid as u32 as u64;
                    if self.waiting.get(&id) == Some(&i) {
                        self.waiting.remove(&id);
                        self.checker.acked.insert(id, hdr.zxid);
                        self.report.acked_writes += 1;
                    }
                }
            }
            Action::Submit {
                session_id,
                cxid,
                op,
                body,
                ..
            } => {
                // The leader's commit pipeline: the learner's REQUEST as sent.
                let w = workload::decode_forwarded(op, &body)
                    .map_err(|e| format!("server {}: {e}", self.nodes[i].sid))?;
                self.propose(i, session_id, cxid, &w)?;
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
            Action::ReadLog { link, from, before } => {
                // Read beside the pipeline, from the disk as it is now (the runtime's
                // read is a task of its own: its answer comes a little later).
                let n = &self.nodes[i];
                let txns = store::read_log(&n.disk, &n.tree, from, before);
                self.trace(
                    i,
                    format_args!(
                        "reads its log from {from:#x} before {before:#x}: {:?}",
                        txns.as_ref().map(|t| t.len())
                    ),
                );
                if txns.is_some() {
                    self.report.diffs_from_disk += 1;
                }
                let d = self.net_delay();
                self.deliver(d, i, Event::LogRead { link, txns });
            }
            Action::RoleChanged {
                state,
                epoch,
                serving,
                ..
            } => {
                self.trace(i, format_args!("{state:?} epoch {epoch} serving {serving}"));
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
                    // The commit pipeline starts leading (`CommitCore::lead_from`).
                    self.nodes[i].prepper = Some(Prepper::new(PrepConfig {
                        max_buffer: workload::MAX_BUFFER,
                        ..PrepConfig::default()
                    }));
                } else {
                    self.nodes[i].prepper = None;
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

    /// Log: the leader's own proposals are kept as prepped; a learner's come from the
    /// leader and are decoded (`ensemble::log`).
    fn log(&mut self, i: usize, txns: Vec<ZabTxn>) -> Result<(), String> {
        let n = &mut self.nodes[i];
        let mut records = Vec::with_capacity(txns.len());
        for t in txns {
            let (hdr, txn) = match n.own.remove(&t.zxid) {
                Some(r) => r,
                None => {
                    let (hdr, txn, _digest) = zk_txn::decode_txn(&t.data, workload::MAX_BUFFER)
                        .map_err(|e| {
                            format!(
                                "server {}: proposal {:#x} does not decode: {e}",
                                n.sid, t.zxid
                            )
                        })?;
                    (hdr, txn)
                }
            };
            if hdr.zxid != t.zxid {
                return Err(format!(
                    "server {}: proposal {:#x} carries a header for {:#x}",
                    n.sid, t.zxid, hdr.zxid
                ));
            }
            n.given.push_back(Given {
                t: plain(&hdr, &txn),
                hdr,
                txn: txn.clone(),
            });
            records.push((hdr, txn));
        }
        if !records.is_empty() {
            self.storage(i, StorageOp::Append(records));
        }
        Ok(())
    }

    fn send_note(&mut self, i: usize, to: usize, n: Notification) -> Result<(), String> {
        let lost = self.rng.below(1000) < self.faults.election_loss_permille;
        if self.nodes[to].peer.is_none() {
            // No connection to a server that is down: the notification waits for one
            // (it goes out when that server starts and connects, see `restart`). The
            // dial is refused (nothing listens there) unless the link is cut, where it
            // would time out instead: the runtime reports the refusal (`PeerDown`).
            self.last_note.insert((i, to), (n, true));
            if !self.blocked[i][to] {
                let d = self.net_delay();
                let sid = self.nodes[to].sid;
                self.deliver(d, i, Event::PeerDown { sid });
            }
            return Ok(());
        }
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

    /// The leader's commit pipeline: prep against the applied tree, propose.
    fn propose(&mut self, i: usize, session_id: i64, cxid: i32, w: &Write) -> Result<(), String> {
        let now = self.now;
        let n = &mut self.nodes[i];
        let Some(peer) = n.peer.as_mut() else {
            return Ok(());
        };
        let Some(zxid) = peer.next_zxid() else {
            return Ok(());
        };
        let Some(prepper) = n.prepper.as_mut() else {
            return Ok(());
        };
        let (hdr, txn, t) = workload::prep(prepper, &n.tree, zxid, now, session_id, cxid, w);
        n.own.insert(zxid, (hdr, txn));
        let mut out = Vec::new();
        peer.handle(now, Event::Propose { txns: vec![t] }, &mut out);
        let r = self.carry_out(i, out);
        // Not logged: the peer did not take it.
        self.nodes[i].own.remove(&zxid);
        r
    }

    fn storage(&mut self, i: usize, op: StorageOp) {
        self.nodes[i].storage.push_back(op);
        self.kick_storage(i);
    }

    /// The storage task wakes for the next operation (after the current step, as the
    /// runtime's task runs once the pipeline yields).
    fn kick_storage(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        if n.storage_busy || n.storage.is_empty() || n.peer.is_none() {
            return;
        }
        n.storage_busy = true;
        let generation = n.generation;
        self.at(
            0,
            What::StorageStart {
                node: i,
                generation,
            },
        );
    }

    /// Carries out the next operation on the disk at once (group commit: appends
    /// waiting behind it join it); its completion is reported after the disk's delay.
    fn storage_start(&mut self, i: usize) -> Result<(), String> {
        let now = self.now;
        let n = &mut self.nodes[i];
        let Some(mut op) = n.storage.pop_front() else {
            n.storage_busy = false;
            return Ok(());
        };
        if let StorageOp::Append(records) = &mut op {
            while let Some(StorageOp::Append(_)) = n.storage.front() {
                if let Some(StorageOp::Append(more)) = n.storage.pop_front() {
                    records.extend(more);
                }
            }
        }
        let applied = n.applied_zxid();
        let log = n.log.as_mut().ok_or("a running server without a log")?;
        let result = store::execute(&n.disk, log, op, applied);
        if n.cut_armed && !n.disk.cut_pending() {
            // The power went during the operation: whatever it returned, the server is
            // down and its disk holds what the cut left.
            self.report.mid_op_cuts += 1;
            self.trace(i, format_args!("power cut inside a storage operation"));
            self.crash(i);
            self.restart_later(i, 100, 1500);
            return Ok(());
        }
        match result {
            Ok(done) => {
                n.in_flight = Some(done);
                let slow = self.faults.always_slow_disks || n.slow_disk_until > now;
                let generation = n.generation;
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
                Ok(())
            }
            Err(Failed::Storage(what, e))
                if n.storage_fault_active(now)
                    && !matches!(e, StorageError::Invalid(_) | StorageError::Corrupt(_)) =>
            {
                // The runtime stops: a storage failure that could lose data (and, in
                // an ensemble, any failed append) ends the process with exit 70. What
                // the failed operation left unsynced is kept, lost or torn.
                if matches!(e, StorageError::NoSpace(_)) || n.full_until > now {
                    self.report.enospc_stops += 1;
                } else {
                    self.report.eio_stops += 1;
                }
                self.trace(i, format_args!("{what}: {e}: exit 70"));
                self.power_off(i);
                self.restart_later(i, 100, 1000);
                Ok(())
            }
            Err(Failed::Storage(what, e)) => {
                let sid = n.sid;
                Err(format!(
                    "server {sid}: {what} failed with no fault injected: {e}\n{}",
                    self.describe()
                ))
            }
            Err(Failed::Broken(m)) => Err(format!("server {}: {m}", n.sid)),
        }
    }

    fn storage_done(&mut self, i: usize) -> Result<(), String> {
        let n = &mut self.nodes[i];
        n.storage_busy = false;
        let done = n
            .in_flight
            .take()
            .ok_or("a completion with nothing in flight")?;
        if self.trace {
            self.trace(i, format_args!("disk: {:?}", done.op));
        }
        let n = &mut self.nodes[i];
        let ev = match done.op {
            Done::Logged(zxid) => Event::Logged { zxid },
            Done::Epoch(file, epoch) => Event::EpochWritten { file, epoch },
            Done::Truncated(zxid) => {
                if let Some(tree) = done.reloaded {
                    // The state applied what the cut took: it is the disk's now.
                    n.tree = tree;
                    n.tentative.retain(|t| t.zxid <= zxid);
                    self.report.state_reloads += 1;
                }
                Event::Truncated { zxid }
            }
            Done::Installed(zxid) => Event::SnapInstalled { zxid },
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
                if self.trace && ![wire::PING, wire::REQUEST, wire::REVALIDATE].contains(&pkt.typ) {
                    let from = self.conns[c].ends[1 - to_side].0;
                    self.trace(
                        node,
                        format_args!(
                            "gets type {} {:#x} from server {}",
                            pkt.typ, pkt.zxid, self.nodes[from].sid
                        ),
                    );
                }
                self.feed(node, Event::Packet { link, pkt })
            }
            ConnMsg::Snap {
                zxid,
                stream,
                meta,
                print,
            } => {
                // Read as the runtime reads it, in pieces as they arrive.
                let mut reader = SnapReader::new(workload::MAX_BUFFER + (2 << 20));
                for piece in stream.chunks(1000) {
                    reader
                        .feed(piece)
                        .map_err(|e| format!("a SNAP stream does not read back: {e}"))?;
                }
                let mut tree = reader
                    .finish()
                    .map_err(|e| format!("a SNAP stream does not read back: {e}"))?
                    .tree;
                tree.set_last_processed_zxid(zxid);
                if workload::fingerprint(&tree) != print {
                    return Err(format!(
                        "server {}: the SNAP at {zxid:#x} read back as another state than sent",
                        self.nodes[node].sid
                    ));
                }
                self.nodes[node].snaps.insert(link, (tree, meta));
                self.feed(node, Event::SnapReceived { link, zxid })
            }
            ConnMsg::Closed => {
                self.conns[c].open = [false, false];
                self.feed(node, Event::LinkClosed { link })
            }
        }
    }

    /// A client sends a write to a random server that serves.
    fn client(&mut self) -> Result<(), String> {
        let i = self.rng.below(self.nodes.len() as u64) as usize;
        let Some(peer) = self.nodes[i].peer.as_ref() else {
            return Ok(());
        };
        if !peer.serving() {
            return Ok(());
        }
        let leading = peer.state() == ServerState::Leading;
        let id = self.next_write;
        self.next_write += 1;
        self.waiting.insert(id, i);
        let (session_id, w) = workload::random_write(&mut self.rng, id);
        let cxid = id as i32;
        if leading {
            self.propose(i, session_id, cxid, &w)
        } else {
            let (op, body) = workload::forward_body(&w);
            self.feed(
                i,
                Event::Forward {
                    session_id,
                    cxid,
                    op,
                    body,
                    auth: Vec::new(),
                },
            )
        }
    }

    fn fault(&mut self) {
        let n = self.nodes.len();
        if self.faults.whole_power_loss && self.rng.below(12) == 0 {
            self.report.power_losses += 1;
            for v in 0..n {
                if self.nodes[v].peer.is_some() {
                    self.power_off(v);
                    self.restart_later(v, 100, 1000);
                }
            }
            return;
        }
        match self.rng.below(12) {
            0..=2 if self.faults.crashes => {
                let i = self.rng.below(n as u64) as usize;
                // Sometimes two servers lose power together (a rack, a PDU).
                let mut victims = vec![i];
                if self.rng.below(3) == 0 {
                    victims.push(self.rng.below(n as u64) as usize);
                }
                for v in victims {
                    if self.nodes[v].peer.is_none() || self.nodes[v].cut_armed {
                        continue;
                    }
                    if self.rng.below(2) == 0 {
                        self.power_off(v);
                        self.restart_later(v, 100, 3000);
                    } else {
                        // In the middle of one of its next storage operations (a write
                        // may be torn); if none comes soon, at the deadline.
                        let ops = self.rng.below(16);
                        self.nodes[v].disk.cut_power_after(ops);
                        self.nodes[v].cut_armed = true;
                        let generation = self.nodes[v].generation;
                        let d = 200 + self.rng.below(1500) as i64;
                        self.at(
                            d,
                            What::CutDeadline {
                                node: v,
                                generation,
                            },
                        );
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
            10 if self.faults.storage_errors => {
                // The next fdatasync fails with EIO.
                let i = self.rng.below(n as u64) as usize;
                self.nodes[i].disk.fail_next_syncs(1);
                self.nodes[i].eio_armed = true;
            }
            11 if self.faults.storage_errors => {
                // The disk is full for a while: room for a segment or two, or none.
                let i = self.rng.below(n as u64) as usize;
                let node = &mut self.nodes[i];
                let room = self.rng.below(3 * store::PREALLOC);
                node.disk.set_capacity(Some(node.disk.used() + room));
                let d = 300 + self.rng.below(2500) as i64;
                node.full_until = node.full_until.max(self.now + d);
                self.at(d, What::DiskFreed(i));
            }
            _ => {}
        }
    }

    /// The server loses power: its disk keeps, loses or tears what was not synced.
    fn power_off(&mut self, i: usize) {
        self.report.power_cuts += 1;
        self.nodes[i].disk.power_cut();
        self.crash(i);
    }

    fn crash(&mut self, i: usize) {
        self.trace(i, format_args!("down"));
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
        let n = &mut self.nodes[i];
        n.crash();
        // The injected EIO is spent with the process.
        n.disk.fail_next_syncs(0);
        n.eio_armed = false;
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
            let n = &mut self.nodes[i];
            n.slow_disk_until = 0;
            n.full_until = 0;
            n.disk.set_capacity(None);
            n.disk.fail_next_syncs(0);
            n.eio_armed = false;
            if n.cut_armed {
                // The scheduled cut comes now rather than in the liveness phase.
                self.power_off(i);
            }
            if self.nodes[i].peer.is_none() {
                self.at(0, What::Restart(i));
            }
        }
    }

    /// The txns a server's state now confirms, in order, extend its committed prefix:
    /// each must be the txn the common sequence holds after the one before it (or
    /// extend the sequence).
    fn confirm(&mut self, i: usize, txns: &[ZabTxn]) -> Result<(), String> {
        let sid = self.nodes[i].sid;
        let mut prev = self.nodes[i].confirmed;
        for t in txns {
            let next = if prev == 0 {
                0
            } else {
                self.checker.pos(prev).ok_or_else(|| {
                    format!("server {sid} committed past {prev:#x}, which is not in the common sequence")
                })? + 1
            };
            let canon = &mut self.checker.canon;
            match canon.get(next) {
                Some(c) if c == t => {}
                Some(c) => {
                    return Err(format!(
                        "server {sid} committed {:#x}/{:?} at position {next} where another committed {:#x}/{:?}",
                        t.zxid,
                        workload::write_id(t),
                        c.zxid,
                        workload::write_id(c)
                    ))
                }
                None => {
                    canon.push(t.clone());
                    self.checker.prints.push(None);
                }
            }
            prev = t.zxid;
        }
        self.nodes[i].confirmed = prev;
        self.report.committed = self.checker.canon.len();
        // The digest walks the whole tree: compared at every 16th position (and at
        // every install, restart and at the end).
        if self.checker.pos(prev).is_some_and(|p| p % 16 == 0) {
            self.check_print(i)?;
        }
        Ok(())
    }

    /// A server whose state is exactly its committed prefix holds the same state as
    /// every server that held that prefix (tree digest and sessions).
    fn check_print(&mut self, i: usize) -> Result<(), String> {
        let n = &self.nodes[i];
        if n.confirmed == 0 || n.applied_zxid() != n.confirmed {
            return Ok(());
        }
        let pos = self.checker.pos(n.confirmed).ok_or_else(|| {
            format!(
                "server {} holds a state at {:#x}, which is not in the common sequence",
                n.sid, n.confirmed
            )
        })?;
        let print = workload::fingerprint(&n.tree);
        match self.checker.prints[pos] {
            None => self.checker.prints[pos] = Some(print),
            Some(p) if p != print => {
                return Err(format!(
                    "server {} holds another state at {:#x} than another server held there",
                    n.sid, n.confirmed
                ))
            }
            Some(_) => {}
        }
        Ok(())
    }

    /// After the liveness phase: everything healed has converged and serves, and holds
    /// every acknowledged write, in memory and on its disk.
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
            match self.checker.pos(zxid) {
                Some(p) if workload::write_id(&self.checker.canon[p]) == Some(id) => {}
                _ => return Err(format!("acknowledged write {id} at {zxid:#x} is lost")),
            }
        }
        // Every server has applied the whole common sequence, to the same state.
        let last = self.checker.canon.last().map_or(0, |t| t.zxid);
        for i in 0..self.nodes.len() {
            let n = &self.nodes[i];
            if n.confirmed != last || n.applied_zxid() != last {
                return Err(format!(
                    "server {} committed up to {:#x} (applied {:#x}) of {last:#x}",
                    n.sid,
                    n.confirmed,
                    n.applied_zxid()
                ));
            }
            self.check_print(i)?;
        }
        // And its disk holds it: after a power cut, recovery rebuilds that state.
        let print = self.checker.prints.last().copied().flatten();
        for i in 0..self.nodes.len() {
            self.nodes[i].log = None;
            self.nodes[i].disk.power_cut();
            let r = store::restore(&self.nodes[i].disk)
                .map_err(|e| format!("server {}: final recovery: {e}", self.nodes[i].sid))?;
            if r.rec.last_zxid != last {
                return Err(format!(
                    "server {}: after a final power cut its disk holds up to {:#x} of {last:#x}",
                    self.nodes[i].sid, r.rec.last_zxid
                ));
            }
            if print.is_some_and(|p| p != workload::fingerprint(&r.tree)) {
                return Err(format!(
                    "server {}: after a final power cut recovery builds another state",
                    self.nodes[i].sid
                ));
            }
        }
        Ok(())
    }

    /// ZOOKEEPER-3701's schedule: the established leader's disk fills up (no room
    /// for another byte) for `for_ms`. Returns the leader's sid, if there was one.
    pub fn fill_leaders_disk(&mut self, for_ms: i64) -> Option<Sid> {
        let i = self.nodes.iter().position(|n| {
            n.peer
                .as_ref()
                .is_some_and(|p| p.state() == ServerState::Leading && p.serving())
        })?;
        let node = &mut self.nodes[i];
        node.disk.set_capacity(Some(node.disk.used()));
        node.full_until = node.full_until.max(self.now + for_ms);
        self.at(for_ms, What::DiskFreed(i));
        Some(self.nodes[i].sid)
    }

    /// Each server's role and progress, for a failure report.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        for n in &self.nodes {
            match &n.peer {
                None => s += &format!("  server {}: down\n", n.sid),
                Some(p) => {
                    s += &format!(
                        "  server {}: {:?} leader {:?} serving {} epochs {}/{} logged {:#x} (log {:#x}) committed {:#x} applied {:#x} confirmed {:#x} (+{} tentative) election {} {:?} {:?} next {:?}\n",
                        n.sid,
                        p.state(),
                        p.leader(),
                        p.serving(),
                        p.accepted_epoch(),
                        p.current_epoch(),
                        p.last_logged_zxid(),
                        n.log.as_ref().map_or(0, |l| l.last_zxid()),
                        p.last_committed_zxid(),
                        n.applied_zxid(),
                        n.confirmed,
                        n.tentative.len(),
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
