//! One simulated server: its disk (what survives a crash), its applied state, and the
//! [`Peer`] while it runs.

use std::collections::{BTreeMap, VecDeque};

use crate::quorum::zab::{EpochFile, Peer, PeerState, ZabTxn};
use crate::storage::zxid_follows;

/// What a server's disk holds durably.
#[derive(Debug, Clone, Default)]
pub struct Disk {
    pub accepted_epoch: i64,
    pub current_epoch: i64,
    /// The state a SNAP installed (every txn applied up to it, in order).
    pub snapshot: Vec<ZabTxn>,
    pub log: Vec<ZabTxn>,
}

impl Disk {
    pub fn last_zxid(&self) -> i64 {
        self.log
            .last()
            .or(self.snapshot.last())
            .map_or(0, |t| t.zxid)
    }

    /// Snapshot then log: what recovery applies.
    pub fn recovered_state(&self) -> Vec<ZabTxn> {
        let mut s = self.snapshot.clone();
        s.extend(self.log.iter().cloned());
        s
    }
}

/// A storage operation on its way to the disk.
#[derive(Debug, Clone)]
pub enum StorageOp {
    Append(Vec<ZabTxn>),
    Epoch(EpochFile, i64),
    Truncate(i64),
    Install(Vec<ZabTxn>),
}

pub struct Node {
    pub sid: u64,
    pub disk: Disk,
    /// Incremented at every crash: events for an earlier incarnation are dropped.
    pub generation: u64,
    pub peer: Option<Peer>,
    /// The applied state: every txn in order.
    pub applied: Vec<ZabTxn>,
    /// How much of `applied` came through a Commit (checked against the common
    /// sequence); what recovery applied beyond it is tentative until then.
    pub confirmed: usize,
    /// Txns given in Log actions and not yet applied, oldest first.
    pub given: VecDeque<ZabTxn>,
    /// Storage operations not yet durable, oldest first.
    pub storage: VecDeque<StorageOp>,
    /// When the head storage operation completes (None: nothing in progress).
    pub storage_busy: bool,
    /// SNAP states received, by link, until installed.
    pub snaps: BTreeMap<u64, Vec<ZabTxn>>,
    /// Sim time until which this disk is slow.
    pub slow_disk_until: i64,
    /// Local link numbering for accepted connections.
    pub next_link: u64,
}

impl Node {
    pub fn new(sid: u64) -> Node {
        Node {
            sid,
            disk: Disk::default(),
            generation: 0,
            peer: None,
            applied: Vec::new(),
            confirmed: 0,
            given: VecDeque::new(),
            storage: VecDeque::new(),
            storage_busy: false,
            snaps: BTreeMap::new(),
            slow_disk_until: 0,
            next_link: 0,
        }
    }

    /// What recovery hands the peer, and the state it applies.
    pub fn recover(&mut self, keep: usize) -> PeerState {
        self.applied = self.disk.recovered_state();
        self.confirmed = 0;
        self.given.clear();
        self.storage.clear();
        self.storage_busy = false;
        self.snaps.clear();
        let skip = self.applied.len().saturating_sub(keep);
        PeerState {
            accepted_epoch: self.disk.accepted_epoch,
            current_epoch: self.disk.current_epoch,
            last_logged_zxid: self.disk.last_zxid(),
            committed_log: self.applied[skip..].to_vec(),
        }
    }

    pub fn crash(&mut self) {
        self.peer = None;
        self.generation += 1;
        self.storage.clear();
        self.storage_busy = false;
        self.given.clear();
        self.snaps.clear();
    }

    pub fn applied_zxid(&self) -> i64 {
        self.applied.last().map_or(0, |t| t.zxid)
    }

    /// Applies every given txn up to `up_to`; returns them.
    pub fn commit(&mut self, up_to: i64) -> Result<Vec<ZabTxn>, String> {
        let mut done = Vec::new();
        while self.given.front().is_some_and(|t| t.zxid <= up_to) {
            let t = self.given.pop_front().expect("front checked");
            let last = self.applied_zxid();
            if t.zxid <= last {
                // Applied by recovery already (a tentative tail now committed).
                continue;
            }
            if !zxid_follows(last, t.zxid) {
                return Err(format!(
                    "server {}: applying {:#x} after {last:#x} leaves a hole",
                    self.sid, t.zxid
                ));
            }
            self.applied.push(t.clone());
            done.push(t);
        }
        if self.applied_zxid() < up_to {
            return Err(format!(
                "server {}: told to commit up to {up_to:#x} but holds only up to {:#x}",
                self.sid,
                self.applied_zxid()
            ));
        }
        self.confirmed = self.applied.len();
        Ok(done)
    }

    /// Carries out the head storage operation durably; returns it.
    pub fn complete_storage(&mut self) -> Result<StorageOp, String> {
        let mut op = self.storage.pop_front().ok_or("no storage operation")?;
        // Group commit, as the runtime's storage task does: appends waiting behind
        // this one are written with it.
        if let StorageOp::Append(txns) = &mut op {
            while let Some(StorageOp::Append(_)) = self.storage.front() {
                if let Some(StorageOp::Append(more)) = self.storage.pop_front() {
                    txns.extend(more);
                }
            }
        }
        match &op {
            StorageOp::Append(txns) => {
                for t in txns {
                    let last = self.disk.last_zxid();
                    if t.zxid <= last || !zxid_follows(last, t.zxid) {
                        return Err(format!(
                            "server {}: log append {:#x} after {last:#x}",
                            self.sid, t.zxid
                        ));
                    }
                    self.disk.log.push(t.clone());
                }
            }
            StorageOp::Epoch(EpochFile::Accepted, e) => self.disk.accepted_epoch = *e,
            StorageOp::Epoch(EpochFile::Current, e) => self.disk.current_epoch = *e,
            StorageOp::Truncate(z) => {
                let base = self.disk.snapshot.last().map_or(0, |t| t.zxid);
                if *z < base {
                    return Err(format!(
                        "server {}: TRUNC to {z:#x} below its snapshot at {base:#x}",
                        self.sid
                    ));
                }
                self.disk.log.retain(|t| t.zxid <= *z);
                if self.applied_zxid() > *z {
                    // The state had applied what is gone: reload it from the disk.
                    self.applied = self.disk.recovered_state();
                    self.confirmed = self.confirmed.min(self.applied.len());
                }
            }
            StorageOp::Install(state) => {
                self.disk.snapshot = state.clone();
                self.disk.log.clear();
                self.applied = state.clone();
                self.confirmed = self.applied.len();
            }
        }
        Ok(op)
    }
}
