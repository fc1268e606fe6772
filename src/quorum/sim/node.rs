//! One simulated server: its disk (a [`SimBackend`] holding a real data dir and log
//! dir), its applied state (a real [`DataTree`]), and the [`Peer`] while it runs.

use std::collections::{BTreeMap, VecDeque};

use super::store::{Completed, StorageOp};
use crate::quorum::zab::{Peer, ZabTxn};
use crate::request::{apply, Prepper, Txn, TxnHeader};
use crate::storage::{zxid_follows, SimBackend, TxnLog};
use crate::tree::DataTree;

/// A txn given in a `Log` action, waiting for its commit.
pub struct Given {
    pub t: ZabTxn,
    pub hdr: TxnHeader,
    pub txn: Txn,
}

/// What the checker knows of a snapshot's contents: the committed position it starts
/// from and the txns past it that were tentative when it was taken (a restarted
/// leader's state holds its whole log).
#[derive(Debug, Clone, Default)]
pub struct SnapMeta {
    pub confirmed: i64,
    pub tentative: Vec<ZabTxn>,
}

pub struct Node {
    pub sid: u64,
    /// The disk: survives crashes, loses what was not durable at a power cut.
    pub disk: SimBackend,
    /// The open log while the server runs.
    pub log: Option<TxnLog<SimBackend>>,
    /// Incremented at every crash: events for an earlier incarnation are dropped.
    pub generation: u64,
    pub peer: Option<Peer>,
    /// The applied state.
    pub tree: DataTree,
    /// The zxid up to which the applied state was checked against the common sequence
    /// (a commit, an installed SNAP, or the snapshot recovery loaded).
    pub confirmed: i64,
    /// Txns recovery applied past `confirmed`: tentative until a commit covers them.
    pub tentative: VecDeque<ZabTxn>,
    /// Txns given in Log actions and not yet applied, oldest first.
    pub given: VecDeque<Given>,
    /// Leader: its own proposals between prep and the Log action (as the runtime keeps
    /// them in its `given`, never decoding its own txns).
    pub own: BTreeMap<i64, (TxnHeader, Txn)>,
    /// Established leader: the commit pipeline's prep.
    pub prepper: Option<Prepper>,
    /// Storage operations not yet started, oldest first.
    pub storage: VecDeque<StorageOp>,
    /// An operation is under way (started, or its completion not yet reported).
    pub storage_busy: bool,
    /// The operation done on the disk whose completion is not yet reported.
    pub in_flight: Option<Completed>,
    /// SNAP states received, by link, until installed.
    pub snaps: BTreeMap<u64, (DataTree, SnapMeta)>,
    /// Sim time until which this disk is slow.
    pub slow_disk_until: i64,
    /// Local link numbering for accepted connections.
    pub next_link: u64,
    /// A power cut is scheduled inside one of the next storage operations.
    pub cut_armed: bool,
    /// The next fdatasync fails with EIO (injected).
    pub eio_armed: bool,
    /// The disk is full until this sim time (injected ENOSPC).
    pub full_until: i64,
}

impl Node {
    pub fn new(sid: u64, disk_seed: u64) -> Node {
        Node {
            sid,
            disk: SimBackend::new(disk_seed),
            log: None,
            generation: 0,
            peer: None,
            tree: DataTree::new(),
            confirmed: 0,
            tentative: VecDeque::new(),
            given: VecDeque::new(),
            own: BTreeMap::new(),
            prepper: None,
            storage: VecDeque::new(),
            storage_busy: false,
            in_flight: None,
            snaps: BTreeMap::new(),
            slow_disk_until: 0,
            next_link: 0,
            cut_armed: false,
            eio_armed: false,
            full_until: 0,
        }
    }

    /// The process is gone: everything in memory goes (the disk keeps what it kept).
    pub fn crash(&mut self) {
        self.peer = None;
        self.log = None;
        self.generation += 1;
        self.storage.clear();
        self.storage_busy = false;
        self.in_flight = None;
        self.given.clear();
        self.own.clear();
        self.prepper = None;
        self.snaps.clear();
        self.tentative.clear();
        self.cut_armed = false;
    }

    /// Whether an injected storage fault (ENOSPC, EIO) may be what made an operation
    /// fail.
    pub fn storage_fault_active(&self, now: i64) -> bool {
        self.eio_armed || self.full_until > now
    }

    pub fn applied_zxid(&self) -> i64 {
        self.tree.last_processed_zxid()
    }

    /// Applies every given txn up to `up_to`. Returns the txns this commit confirms, in
    /// order (a tentative tail recovery applied, then the txns applied now), and the
    /// headers of those applied now (for the clients).
    pub fn commit(&mut self, up_to: i64) -> Result<(Vec<ZabTxn>, Vec<TxnHeader>), String> {
        let mut confirmed = Vec::new();
        while self.tentative.front().is_some_and(|t| t.zxid <= up_to) {
            confirmed.push(self.tentative.pop_front().expect("front checked"));
        }
        let mut applied = Vec::new();
        let mut triggers = Vec::new();
        while self.given.front().is_some_and(|g| g.t.zxid <= up_to) {
            let g = self.given.pop_front().expect("front checked");
            let last = self.applied_zxid();
            if g.t.zxid <= last {
                // Applied by recovery already (a tentative tail now committed): it must
                // be the same txn.
                if let Some(t) = confirmed.iter().find(|t| t.zxid == g.t.zxid) {
                    if *t != g.t {
                        return Err(format!(
                            "server {}: recovery applied {:#x} as {:?}, the commit gives {:?}",
                            self.sid, t.zxid, t.data, g.t.data
                        ));
                    }
                }
                continue;
            }
            if !zxid_follows(last, g.t.zxid) {
                return Err(format!(
                    "server {}: applying {:#x} after {last:#x} leaves a hole",
                    self.sid, g.t.zxid
                ));
            }
            triggers.clear();
            apply(&mut self.tree, &g.hdr, &g.txn, &mut triggers);
            applied.push(g.hdr);
            confirmed.push(g.t);
        }
        if self.applied_zxid() < up_to {
            return Err(format!(
                "server {}: told to commit up to {up_to:#x} but holds only up to {:#x}",
                self.sid,
                self.applied_zxid()
            ));
        }
        Ok((confirmed, applied))
    }
}
