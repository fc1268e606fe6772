//! The quorum: everything a corral server needs to be one member of a ZooKeeper 3.8
//! ensemble, as sans-IO code. Nothing under `quorum/` touches a socket, a file, a clock
//! or glommio: events come in (a packet from a peer, a tick, "persisted up to zxid"),
//! actions go out (send, persist, commit, change role). The runtime in `server/`
//! carries them out; the simulator drives several servers' cores from one seed.
//!
//! Names follow ZooKeeper's (`zxid`, `accepted_epoch`, `current_epoch`,
//! `last_logged_zxid`, `LearnerHandler`, FLE's `logicalclock`), so a ZooKeeper engineer
//! finds their way. `../shared/notes/zookeeper-quorum-protocol.md` summarises the
//! protocol from ZooKeeper's source; section numbers in comments (§2.4) refer to it.
//!
//! - [`wire`]: the quorum-port `QuorumPacket` and `LearnerInfo`, the election port's
//!   initial message and FLE notifications, byte for byte as ZooKeeper 3.8.
//! - [`zk_txn`]: txns as ZooKeeper writes them in PROPOSAL/INFORM (TxnHeader + record
//!   [+ TxnDigest]) and the REQUEST body a learner forwards.
//! - [`snap_stream`]: the SNAP stream a leader sends a learner far behind.
//! - [`digest`]: ZooKeeper's tree digest (DigestCalculator + AdHash).
//! - [`verifier`]: the ensemble's members (ZooKeeper's QuorumVerifier / QuorumMaj).
//! - [`election`]: fast leader election.
//! - [`zab`]: the peer: leader, learners, sync and broadcast.

pub mod auth_packet;
pub mod digest;
pub mod election;
pub mod snap_stream;
pub mod verifier;
pub mod wire;
pub mod zab;
pub mod zk_txn;

#[cfg(test)]
mod sim;

/// A server id: the `N` of `server.N` and the content of `myid`.
pub type Sid = u64;

/// Zxids: `epoch << 32 | counter` (ZooKeeper's `ZxidUtils`).
pub mod zxid {
    /// The zxid that opens `epoch` (counter 0: no txn is ever stored at it).
    pub fn make(epoch: i64, counter: i64) -> i64 {
        (epoch << 32) | (counter & 0xffff_ffff)
    }

    pub fn epoch_of(zxid: i64) -> i64 {
        zxid >> 32
    }

    pub fn counter_of(zxid: i64) -> i64 {
        zxid & 0xffff_ffff
    }
}

/// `QuorumPeer.ServerState`, numbered as on the wire (the FLE `state` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServerState {
    Looking = 0,
    Following = 1,
    Leading = 2,
    Observing = 3,
}

impl ServerState {
    pub fn from_i32(v: i32) -> Option<ServerState> {
        Some(match v {
            0 => ServerState::Looking,
            1 => ServerState::Following,
            2 => ServerState::Leading,
            3 => ServerState::Observing,
            _ => return None,
        })
    }
}

/// `QuorumPeer.LearnerType`: voters are participants; observers never vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LearnerType {
    Participant,
    Observer,
}
