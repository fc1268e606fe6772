//! ZAB as ZooKeeper 3.8 runs it: one [`Peer`] per server, which is looking (fast leader
//! election), leading (`Leader` with one `LearnerHandler` per learner) or learning
//! (`Learner`, as a follower or an observer). Sans-IO: the runtime feeds [`Event`]s to
//! [`Peer::handle`] and carries out the [`Action`]s it returns, in order.
//!
//! # The runtime's side of the contract
//!
//! - Storage actions ([`Action::Log`], [`Action::Truncate`], [`Action::InstallSnap`],
//!   [`Action::WriteAcceptedEpoch`], [`Action::WriteCurrentEpoch`]) are carried out in
//!   the order given, each after the one before it is durable, and each reports back
//!   ([`Event::Logged`], [`Event::Truncated`], ...) once durable, in that order.
//! - [`Action::Commit`] applies, in zxid order, every txn given in `Log` actions up to
//!   `up_to` (a leader commits on a quorum's acks, so its own copy may still be on its
//!   way to the disk).
//! - Sends on one link arrive in order or the link breaks ([`Event::LinkClosed`]).
//! - Time: call [`Peer::handle`] with [`Event::Tick`] at least every few tens of
//!   milliseconds, and at [`Peer::next_timeout`] when that is sooner (the election's
//!   finalizeWait and notification timers are that precise in ZooKeeper, and a late
//!   decision can leave a leader waiting for followers that already moved on).
//! - The quorum port may accept learners at any time: a learner that connects while
//!   this server is still looking is kept for the leader it may become.
//!
//! # Send after persist, by construction
//!
//! Every message that promises durability is built only in the handler of the event
//! that reports it: a follower's ACK of a PROPOSAL in [`Event::Logged`]; ACKEPOCH in
//! [`Event::AcceptedEpochWritten`]; the ACK of NEWLEADER in
//! [`Event::CurrentEpochWritten`], and `WriteCurrentEpoch` itself only once every synced
//! txn, truncation and snapshot is durable (ZOOKEEPER-4394's order: the synced history,
//! then currentEpoch, then the ACK). A leader counts its own vote for a proposal, and
//! for NEWLEADER, only from `Logged` too. LEADERINFO leaves after the leader's
//! acceptedEpoch is durable, NEWLEADER after its currentEpoch is.

mod history;
mod leader;
mod learner;
mod peer;
#[cfg(test)]
mod tests;

use bytes::Bytes;

pub use history::{History, SyncPlan};
pub use peer::{LearnerCounts, Peer, PeerConfig, PeerState, OWN_LINK_BIT};

use super::wire::{Notification, QuorumPacket};
use super::{ServerState, Sid};
use crate::proto::Id;

/// A txn as ZAB carries it: its zxid and its bytes as ZooKeeper sends them in a
/// PROPOSAL (TxnHeader + txn record [+ TxnDigest]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZabTxn {
    pub zxid: i64,
    pub data: Bytes,
}

/// A quorum-port connection, numbered by the runtime.
pub type LinkId = u64;

/// Which epoch file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochFile {
    Accepted,
    Current,
}

#[derive(Debug, Clone)]
pub enum Event {
    /// Time passed (every call carries `now_ms`; this one only lets timers fire).
    /// `all_delivered`: every election message sent was handed to its peer's
    /// connection (ZooKeeper's `haveDelivered`).
    Tick { all_delivered: bool },
    /// An election notification from `from` (loopback from ourselves included).
    Notification { from: Sid, n: Notification },
    /// Learner: the connection to the leader asked for by `ConnectToLeader` is up.
    LeaderConnected { link: LinkId },
    /// Leader: a learner connected to the quorum port.
    LearnerConnected { link: LinkId },
    /// A packet arrived on a link. A SNAP packet is not passed on: the runtime reads
    /// the snapshot stream after it and reports [`Event::SnapReceived`].
    Packet { link: LinkId, pkt: QuorumPacket },
    /// Learner: a SNAP at `zxid` and its snapshot stream were read from the leader; the
    /// runtime holds the state until `InstallSnap`.
    SnapReceived { link: LinkId, zxid: i64 },
    /// A link broke or was closed.
    LinkClosed { link: LinkId },
    /// Every txn given in `Log` actions up to `zxid` is durable.
    Logged { zxid: i64 },
    /// An epoch file holds `epoch`, durably.
    EpochWritten { file: EpochFile, epoch: i64 },
    /// The log holds nothing after `zxid`, durably.
    Truncated { zxid: i64 },
    /// The snapshot received at `zxid` is the server's state, durably; its log holds
    /// nothing after `zxid`.
    SnapInstalled { zxid: i64 },
    /// Leader: txns the commit pipeline prepped, with consecutive zxids from
    /// [`Peer::next_zxid`].
    Propose { txns: Vec<ZabTxn> },
    /// Learner: a client's write (or sync, createSession, closeSession) to forward as
    /// REQUEST: the body is the request after its header, as the client sent it.
    Forward {
        session_id: i64,
        cxid: i32,
        op: i32,
        body: Bytes,
        auth: Vec<Id>,
    },
    /// Learner: a client resumes `session_id` here; ask the leader (REVALIDATE).
    Revalidate { session_id: i64, timeout: i32 },
    /// Leader: the answer to [`Action::Revalidate`].
    RevalidateAnswer {
        link: LinkId,
        session_id: i64,
        valid: bool,
    },
    /// Learner: sessions whose clients were heard from, for the next PING reply.
    Touched { sessions: Vec<(i64, i32)> },
    /// Leader: the answer to [`Action::ReadLog`]: the logged txns asked for, oldest
    /// first, or None when the log could not give them all.
    LogRead {
        link: LinkId,
        txns: Option<Vec<ZabTxn>>,
    },
    /// The log on disk holds every txn after this zxid (None: it is empty), as recovery
    /// found it or after a purge, truncation or snapshot install changed it.
    LogHorizon { complete_from: Option<i64> },
    /// An election connection to `sid` was refused: nothing listens on its election
    /// port, so its process is down (a dial that times out says nothing of the kind).
    PeerDown { sid: Sid },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Election: send `n` to `to` (`to` may be ourselves: feed it back).
    SendNotification {
        to: Sid,
        n: Notification,
    },
    /// Election: (re)connect to every voter's election port.
    ConnectAll,
    /// Learner: connect to `leader`'s quorum port; report `LeaderConnected` or
    /// `LinkClosed`.
    ConnectToLeader {
        leader: Sid,
        link: LinkId,
    },
    Send {
        link: LinkId,
        pkt: QuorumPacket,
    },
    /// Leader: send SNAP at `zxid` and the snapshot stream of the state at `zxid` (the
    /// state after every `Commit` given so far: `zxid` is the last committed).
    SendSnap {
        link: LinkId,
        zxid: i64,
    },
    Close {
        link: LinkId,
    },
    /// Append these txns to the log; report `Logged`.
    Log {
        txns: Vec<ZabTxn>,
    },
    WriteEpoch {
        file: EpochFile,
        epoch: i64,
    },
    /// Drop every txn after `zxid` from the log (and from the state, reloading it if it
    /// had applied any); report `Truncated`.
    Truncate {
        zxid: i64,
    },
    /// Make the snapshot received on `link` the state, persist it and start the log
    /// after it; report `SnapInstalled`.
    InstallSnap {
        link: LinkId,
        zxid: i64,
    },
    /// Apply every txn given in `Log` actions up to `up_to`.
    Commit {
        up_to: i64,
    },
    /// Leader: read the logged txns with `from <= zxid < before` (durable here) for a
    /// learner's DIFF; report [`Event::LogRead`].
    ReadLog {
        link: LinkId,
        from: i64,
        before: i64,
    },
    /// Leader: a learner forwarded a client request (REQUEST); prep and propose it.
    Submit {
        from: Sid,
        session_id: i64,
        cxid: i32,
        op: i32,
        body: Bytes,
        auth: Vec<Id>,
    },
    /// Leader: is `session_id` alive? (touch it; it now belongs to learner `from`.)
    Revalidate {
        from: Sid,
        link: LinkId,
        session_id: i64,
        timeout: i32,
    },
    /// Leader: sessions a learner's clients kept alive.
    TouchSessions {
        sessions: Vec<(i64, i32)>,
    },
    /// Learner: the leader's answer to our REVALIDATE.
    RevalidateResult {
        session_id: i64,
        valid: bool,
    },
    /// Learner: the oldest client `sync` forwarded is done (the leader's SYNC).
    SyncDone,
    /// The server's role changed. `serving`: clients may be served (a leader once
    /// established, a learner once up to date).
    RoleChanged {
        state: ServerState,
        leader: Option<Sid>,
        epoch: i64,
        serving: bool,
    },
}
