//! A learner: ZooKeeper's `Learner` (`registerWithLeader`, `syncWithLeader`) with its
//! `Follower` and `Observer` broadcast loops.
//!
//! Sync (§2.4, §2.9): FOLLOWERINFO or OBSERVERINFO; on LEADERINFO of a newer epoch the
//! acceptedEpoch is written before ACKEPOCH; then DIFF, TRUNC or SNAP and the leader's
//! history as PROPOSAL/COMMIT pairs, each PROPOSAL logged as it comes; at NEWLEADER,
//! once every synced txn, truncation and snapshot is durable, currentEpoch is written
//! and only then is NEWLEADER ACKed; at UPTODATE the synced history is applied, the
//! sync-phase proposals are ACKed and clients are served. Nothing is applied before
//! UPTODATE: only then has a quorum accepted the leader's history, so nothing a client
//! could read here is ever truncated away. A TRUNC below the snapshot our state starts
//! from cannot be carried out: we reconnect to the leader reporting no history (last
//! zxid -1), which gets us a SNAP (see the TRUNC case for why that is safe).
//!
//! Broadcast (§3.2): a follower ACKs each PROPOSAL once its log holds it, and applies a
//! COMMIT, which must name its oldest pending proposal, once logged. An observer logs and
//! applies each INFORM. Nothing heard from the leader for syncLimit ticks (initLimit
//! while syncing) sends the server back to looking.

use std::collections::VecDeque;

use super::peer::Peer;
use super::{Action, EpochFile, Event, LinkId, ZabTxn};
use crate::quorum::wire::{self, QuorumPacket};
use crate::quorum::{zxid, LearnerType, ServerState, Sid};
use crate::storage::zxid_follows;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// ConnectToLeader asked for.
    Connecting,
    /// Our info sent; waiting for LEADERINFO.
    LeaderInfo,
    /// acceptedEpoch = the leader's epoch is being written; ACKEPOCH follows.
    WritingAcceptedEpoch,
    /// ACKEPOCH sent; waiting for DIFF, TRUNC or SNAP.
    SyncMode,
    /// Receiving the history; NEWLEADER not yet received (or not yet acted on).
    Syncing,
    /// currentEpoch = the new epoch is being written; the NEWLEADER ACK follows.
    WritingCurrentEpoch,
    /// NEWLEADER ACKed; waiting for UPTODATE.
    UpToDate,
    Broadcast,
}

pub(super) struct Learner {
    leader: Sid,
    kind: LearnerType,
    link: LinkId,
    phase: Phase,
    new_epoch: i64,
    /// NEWLEADER received: ACK it once the synced history is durable.
    newleader: bool,
    /// A TRUNC or snapshot install is on its way to the disk.
    storage_pending: bool,
    /// The highest zxid the leader has told us is committed (applied once logged, and
    /// not before UPTODATE).
    commit_target: i64,
    /// Proposals received and not yet committed, oldest first (a COMMIT must name the
    /// first).
    pending: VecDeque<i64>,
    /// Followers: proposals not yet ACKed (none are ACKed before UPTODATE).
    unacked: VecDeque<i64>,
    /// Sessions touched since the last PING reply.
    touches: Vec<(i64, i32)>,
    /// When the leader was last heard from.
    last_heard_ms: i64,
    /// Our durable state cannot be cut back to the leader's history (a TRUNC below our
    /// snapshot): this connection reports the last zxid as -1, which asks for a SNAP.
    no_history: bool,
    /// The leader asked for a TRUNC below our snapshot: reconnect to it with
    /// `no_history` (see [`Learner::wants_snap`]).
    rejoin_for_snap: bool,
}

impl Learner {
    pub(super) fn start(peer: &Peer, leader: Sid, link: LinkId, now_ms: i64) -> Learner {
        Learner {
            leader,
            kind: peer.cfg.my_type,
            link,
            phase: Phase::Connecting,
            new_epoch: 0,
            newleader: false,
            storage_pending: false,
            commit_target: peer.history.last_committed(),
            pending: VecDeque::new(),
            unacked: VecDeque::new(),
            touches: Vec::new(),
            last_heard_ms: now_ms,
            no_history: false,
            rejoin_for_snap: false,
        }
    }

    /// A learner that reports no usable history (last zxid -1): the leader must send a
    /// SNAP, and only a SNAP is accepted.
    pub(super) fn without_history(mut self) -> Learner {
        self.no_history = true;
        self
    }

    /// After the learner gave up its connection: the leader it should reconnect to at
    /// once, asking for a SNAP, if it gave up because of a TRUNC below its snapshot.
    pub(super) fn wants_snap(&self) -> Option<Sid> {
        (self.rejoin_for_snap && !self.no_history).then_some(self.leader)
    }

    pub(super) fn is_observer(&self) -> bool {
        self.kind == LearnerType::Observer
    }

    pub(super) fn up_to_date(&self) -> bool {
        self.phase == Phase::Broadcast
    }

    pub(super) fn leader(&self) -> Sid {
        self.leader
    }

    fn send(&self, out: &mut Vec<Action>, p: QuorumPacket) {
        out.push(Action::Send {
            link: self.link,
            pkt: p,
        });
    }

    /// Returns false when the server goes back to looking.
    pub(super) fn handle(
        &mut self,
        peer: &mut Peer,
        now_ms: i64,
        ev: Event,
        out: &mut Vec<Action>,
    ) -> bool {
        let keep = match ev {
            Event::Tick { .. } => {
                let limit = if matches!(self.phase, Phase::Broadcast | Phase::UpToDate) {
                    peer.cfg.sync_limit
                } else {
                    peer.cfg.init_limit
                };
                if now_ms - self.last_heard_ms > limit * peer.cfg.tick_ms {
                    tracing::warn!(leader = self.leader, phase = ?self.phase, "nothing heard from the leader in time");
                    false
                } else {
                    true
                }
            }
            Event::LeaderConnected { link }
                if link == self.link && self.phase == Phase::Connecting =>
            {
                self.last_heard_ms = now_ms;
                let typ = if self.is_observer() {
                    wire::OBSERVERINFO
                } else {
                    wire::FOLLOWERINFO
                };
                let info = wire::LearnerInfo {
                    server_id: peer.cfg.my_sid as i64,
                    protocol_version: wire::PROTOCOL_VERSION,
                    config_version: 0,
                };
                self.send(
                    out,
                    QuorumPacket::new(
                        typ,
                        zxid::make(peer.accepted_epoch, 0),
                        Some(info.to_bytes()),
                    ),
                );
                self.phase = Phase::LeaderInfo;
                true
            }
            Event::LeaderConnected { link } | Event::LearnerConnected { link } => {
                out.push(Action::Close { link });
                true
            }
            Event::LinkClosed { link } => link != self.link,
            Event::Packet { link, pkt } => {
                if link != self.link {
                    out.push(Action::Close { link });
                    return true;
                }
                self.last_heard_ms = now_ms;
                match self.on_packet(peer, pkt, out) {
                    Ok(()) => true,
                    Err(why) => {
                        tracing::warn!(leader = self.leader, "leaving the leader: {why}");
                        false
                    }
                }
            }
            Event::SnapReceived { link, zxid } => {
                if link != self.link || self.phase != Phase::SyncMode {
                    tracing::warn!("a SNAP out of place");
                    false
                } else {
                    self.last_heard_ms = now_ms;
                    // The snapshot is the leader's committed state: our whole history
                    // is replaced by it.
                    peer.history.reset(zxid);
                    peer.resets_pending += 1;
                    self.commit_target = zxid;
                    self.storage_pending = true;
                    self.phase = Phase::Syncing;
                    out.push(Action::InstallSnap { link, zxid });
                    true
                }
            }
            Event::Truncated { .. } | Event::SnapInstalled { .. } => {
                self.storage_pending = false;
                self.try_ack_newleader(peer, out);
                true
            }
            Event::Logged { .. } => {
                self.try_ack_newleader(peer, out);
                if self.phase == Phase::Broadcast {
                    self.ack_logged(peer, out);
                    self.commit(peer, out);
                }
                true
            }
            Event::EpochWritten { file, epoch } => {
                match (self.phase, file) {
                    (Phase::WritingAcceptedEpoch, EpochFile::Accepted)
                        if epoch == self.new_epoch =>
                    {
                        self.send_ack_epoch(peer, Some(peer.current_epoch), out);
                    }
                    (Phase::WritingCurrentEpoch, EpochFile::Current) if epoch == self.new_epoch => {
                        self.phase = Phase::UpToDate;
                        self.send(
                            out,
                            QuorumPacket::new(wire::ACK, zxid::make(self.new_epoch, 0), None),
                        );
                    }
                    _ => {}
                }
                true
            }
            Event::Forward {
                session_id,
                cxid,
                op,
                body,
                auth,
            } => {
                if self.phase == Phase::Broadcast {
                    let data = wire::LearnerRequest {
                        session_id,
                        cxid,
                        typ: op,
                        body,
                    }
                    .to_bytes();
                    out.push(Action::Send {
                        link: self.link,
                        pkt: QuorumPacket {
                            typ: wire::REQUEST,
                            zxid: -1,
                            data: Some(data),
                            authinfo: Some(auth),
                        },
                    });
                }
                true
            }
            Event::Revalidate {
                session_id,
                timeout,
            } => {
                if self.phase == Phase::Broadcast {
                    self.send(
                        out,
                        QuorumPacket::new(
                            wire::REVALIDATE,
                            -1,
                            Some(
                                wire::RevalidateRequest {
                                    session_id,
                                    timeout,
                                }
                                .to_bytes(),
                            ),
                        ),
                    );
                }
                true
            }
            Event::Touched { sessions } => {
                self.touches.extend(sessions);
                true
            }
            Event::Propose { .. }
            | Event::RevalidateAnswer { .. }
            | Event::Notification { .. }
            | Event::LogRead { .. }
            | Event::LogHorizon { .. }
            | Event::PeerDown { .. } => true,
        };
        if !keep {
            out.push(Action::Close { link: self.link });
        }
        keep
    }

    fn send_ack_epoch(&mut self, peer: &Peer, epoch: Option<i64>, out: &mut Vec<Action>) {
        self.phase = Phase::SyncMode;
        let last_zxid = if self.no_history {
            -1
        } else {
            peer.history.last_zxid()
        };
        self.send(
            out,
            QuorumPacket::new(wire::ACKEPOCH, last_zxid, Some(wire::ack_epoch_data(epoch))),
        );
    }

    fn on_packet(
        &mut self,
        peer: &mut Peer,
        p: QuorumPacket,
        out: &mut Vec<Action>,
    ) -> Result<(), String> {
        match (self.phase, p.typ) {
            (Phase::LeaderInfo, wire::LEADERINFO) => {
                let new_epoch = zxid::epoch_of(p.zxid);
                self.new_epoch = new_epoch;
                if new_epoch > peer.accepted_epoch {
                    self.phase = Phase::WritingAcceptedEpoch;
                    out.push(Action::WriteEpoch {
                        file: EpochFile::Accepted,
                        epoch: new_epoch,
                    });
                } else if new_epoch == peer.accepted_epoch {
                    // Already accepted: this ACKEPOCH does not count toward the quorum.
                    self.send_ack_epoch(peer, None, out);
                } else {
                    return Err(format!(
                        "leader's epoch {new_epoch} is older than our acceptedEpoch {}",
                        peer.accepted_epoch
                    ));
                }
                Ok(())
            }
            (Phase::SyncMode, wire::DIFF | wire::TRUNC) if self.no_history => Err(format!(
                "sync type {} after asking for a SNAP (last zxid -1)",
                p.typ
            )),
            (Phase::SyncMode, wire::DIFF) => {
                tracing::info!(leader = self.leader, "sync: DIFF from the leader");
                // Our whole log is part of the leader's history.
                self.commit_target = peer.history.last_zxid();
                self.phase = Phase::Syncing;
                Ok(())
            }
            (Phase::SyncMode, wire::TRUNC) => {
                let z = p.zxid;
                if z > peer.history.last_zxid() {
                    return Err(format!("TRUNC to {z:#x}, past our log's end"));
                }
                if z < peer.snapshot_zxid {
                    // ZOOKEEPER-1549's dirty snapshot: our state is a snapshot holding
                    // txns the leader's history does not (a SNAP from a leader that
                    // failed before its epoch was established carried its uncommitted
                    // tail), and a snapshot cannot be cut. ZooKeeper's learner exits
                    // here (or, when its log can be cut, silently keeps the snapshot's
                    // extra txns); we reconnect at once and report our last zxid as -1,
                    // the zxid of a server with no usable database, for which ZooKeeper's
                    // and corral's leaders send a SNAP (-1 is older than any history,
                    // and no log holds the txn before it).
                    //
                    // Why nothing committed can be lost: nothing is removed here. The
                    // disk keeps its state until a SNAP from this leader replaces it,
                    // which is an ordinary SNAP sync: the leader's history holds every
                    // committed txn, as it does for any learner it syncs. A -1 ACKEPOCH
                    // never counts toward the leader's quorum of epoch acks (ZooKeeper's
                    // `waitForEpochAck` and ours skip it), so no leader is established on
                    // the word of a server that reported no history; and a TRUNC comes
                    // only after that quorum was reached, so the reconnect needs none.
                    // If this leader is gone by then, we go back to looking with our
                    // state as the disk holds it, and vote with it as before.
                    self.rejoin_for_snap = true;
                    return Err(format!(
                        "TRUNC to {z:#x}, below our snapshot at {:#x}: reconnecting for a SNAP",
                        peer.snapshot_zxid
                    ));
                }
                peer.history.truncate_after(z);
                peer.resets_pending += 1;
                self.commit_target = z;
                self.storage_pending = true;
                self.phase = Phase::Syncing;
                out.push(Action::Truncate { zxid: z });
                Ok(())
            }
            (
                Phase::Syncing | Phase::WritingCurrentEpoch | Phase::UpToDate | Phase::Broadcast,
                wire::PROPOSAL,
            ) => {
                let data = p.data.ok_or("a PROPOSAL without a txn")?;
                self.on_proposal(peer, ZabTxn { zxid: p.zxid, data }, out)?;
                if !self.is_observer() {
                    self.unacked.push_back(p.zxid);
                    #[cfg(test)]
                    if peer.cfg.unsafe_ack_before_log && self.phase == Phase::Broadcast {
                        self.unacked.pop_back();
                        self.send(out, QuorumPacket::new(wire::ACK, p.zxid, None));
                    }
                }
                Ok(())
            }
            (
                Phase::Syncing | Phase::WritingCurrentEpoch | Phase::UpToDate | Phase::Broadcast,
                wire::COMMIT,
            ) => {
                if self.pending.front() != Some(&p.zxid) {
                    return Err(format!(
                        "COMMIT of {:#x}, but the oldest pending proposal is {:?}",
                        p.zxid,
                        self.pending.front()
                    ));
                }
                self.pending.pop_front();
                self.commit_target = p.zxid;
                if self.phase == Phase::Broadcast {
                    self.commit(peer, out);
                }
                Ok(())
            }
            (
                Phase::Syncing | Phase::WritingCurrentEpoch | Phase::UpToDate | Phase::Broadcast,
                wire::INFORM,
            ) if self.is_observer() => {
                let data = p.data.ok_or("an INFORM without a txn")?;
                self.on_proposal(peer, ZabTxn { zxid: p.zxid, data }, out)?;
                self.pending.pop_back();
                self.commit_target = p.zxid;
                if self.phase == Phase::Broadcast {
                    self.commit(peer, out);
                }
                Ok(())
            }
            (Phase::Syncing, wire::NEWLEADER) => {
                if zxid::epoch_of(p.zxid) != self.new_epoch {
                    return Err(format!(
                        "NEWLEADER for epoch {}, expected {}",
                        zxid::epoch_of(p.zxid),
                        self.new_epoch
                    ));
                }
                self.newleader = true;
                self.try_ack_newleader(peer, out);
                Ok(())
            }
            (Phase::UpToDate, wire::UPTODATE) => {
                self.phase = Phase::Broadcast;
                self.send(
                    out,
                    QuorumPacket::new(wire::ACK, zxid::make(self.new_epoch, 0), None),
                );
                self.ack_logged(peer, out);
                self.commit(peer, out);
                peer.election.update_peer_epoch(self.new_epoch);
                out.push(Action::RoleChanged {
                    state: if self.is_observer() {
                        ServerState::Observing
                    } else {
                        ServerState::Following
                    },
                    leader: Some(self.leader),
                    epoch: self.new_epoch,
                    serving: true,
                });
                Ok(())
            }
            (Phase::Broadcast, wire::PING) => {
                let touches: Vec<wire::SessionTouch> = std::mem::take(&mut self.touches)
                    .into_iter()
                    .map(|(session_id, timeout)| wire::SessionTouch {
                        session_id,
                        timeout,
                    })
                    .collect();
                self.send(
                    out,
                    QuorumPacket::new(wire::PING, p.zxid, Some(wire::ping_reply_data(&touches))),
                );
                Ok(())
            }
            (Phase::Broadcast, wire::SYNC) => {
                out.push(Action::SyncDone);
                Ok(())
            }
            (Phase::Broadcast, wire::REVALIDATE) => {
                let r = p
                    .data
                    .as_deref()
                    .map(wire::RevalidateReply::decode)
                    .ok_or("an empty REVALIDATE")?
                    .map_err(|e| format!("malformed REVALIDATE: {e}"))?;
                out.push(Action::RevalidateResult {
                    session_id: r.session_id,
                    valid: r.valid,
                });
                Ok(())
            }
            // PINGs before UPTODATE are ignored, as ZooKeeper's learner does.
            (_, wire::PING) => Ok(()),
            (phase, typ) => Err(format!("unexpected packet type {typ} in phase {phase:?}")),
        }
    }

    /// A txn from the leader: it must follow our log without a hole (ZOOKEEPER-4925).
    fn on_proposal(
        &mut self,
        peer: &mut Peer,
        t: ZabTxn,
        out: &mut Vec<Action>,
    ) -> Result<(), String> {
        let last = peer.history.last_zxid();
        if t.zxid <= last || !zxid_follows(last, t.zxid) || zxid::counter_of(t.zxid) == 0 {
            return Err(format!(
                "txn {:#x} does not follow our last {last:#x}",
                t.zxid
            ));
        }
        peer.history.push(t.clone());
        self.pending.push_back(t.zxid);
        out.push(Action::Log { txns: vec![t] });
        Ok(())
    }

    /// After NEWLEADER: once every synced txn, truncation and snapshot is durable, write
    /// currentEpoch; the ACK leaves when that is durable (ZOOKEEPER-4394).
    fn try_ack_newleader(&mut self, peer: &mut Peer, out: &mut Vec<Action>) {
        if self.phase != Phase::Syncing
            || !self.newleader
            || self.storage_pending
            || peer.last_logged < peer.history.last_zxid()
        {
            return;
        }
        self.phase = Phase::WritingCurrentEpoch;
        out.push(Action::WriteEpoch {
            file: EpochFile::Current,
            epoch: self.new_epoch,
        });
    }

    /// Followers: ACK, in order, every proposal the log holds.
    fn ack_logged(&mut self, peer: &Peer, out: &mut Vec<Action>) {
        while let Some(&z) = self.unacked.front() {
            if z > peer.last_logged {
                break;
            }
            self.unacked.pop_front();
            self.send(out, QuorumPacket::new(wire::ACK, z, None));
        }
    }

    /// Applies what the leader committed and our log holds.
    fn commit(&mut self, peer: &mut Peer, out: &mut Vec<Action>) {
        let up_to = self.commit_target.min(peer.last_logged);
        if up_to > peer.history.last_committed() {
            peer.history.committed(up_to);
            out.push(Action::Commit { up_to });
        }
    }
}
