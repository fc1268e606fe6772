//! The leader: ZooKeeper's `Leader` and its `LearnerHandler`s as one state machine.
//!
//! Establishment (§2.4, §2.6): FOLLOWERINFO from a quorum fixes the new epoch (one past
//! every acceptedEpoch seen), written to acceptedEpoch before LEADERINFO goes out (a
//! learner that connects later having accepted a later epoch makes the leader step
//! down, as that learner could never follow it); ACKEPOCH from a quorum lets the leader
//! write currentEpoch; then each learner is synced (DIFF, TRUNC or SNAP, then the
//! history as PROPOSAL/COMMIT pairs, then NEWLEADER), and once a quorum has ACKed
//! NEWLEADER the whole history is committed, UPTODATE goes out and the leader serves.
//! Each phase must finish within initLimit ticks, or the leader goes back to looking.
//!
//! Broadcast (§3.2): proposals go to every follower being synced or synced, commits in
//! zxid order once a quorum of voters (the leader counted only once its own log holds
//! the txn) has ACKed, COMMIT to followers and INFORM to observers. A leader that has
//! not heard from a quorum within syncLimit ticks steps down.

use std::collections::{BTreeMap, BTreeSet};

use super::history::SyncPlan;
use super::peer::{LearnerCounts, Peer, PeerConfig};
use super::{Action, EpochFile, Event, LinkId, ZabTxn};
use crate::quorum::wire::{self, QuorumPacket};
use crate::quorum::{zxid, LearnerType, ServerState, Sid};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// Waiting for a quorum of FOLLOWERINFO to pick the epoch.
    Epoch,
    /// acceptedEpoch = new epoch is being written.
    WritingAcceptedEpoch,
    /// LEADERINFO sent; waiting for a quorum of ACKEPOCH.
    EpochAcks,
    /// currentEpoch = new epoch is being written.
    WritingCurrentEpoch,
    /// Learners synced; waiting for a quorum of NEWLEADER ACKs.
    NewLeaderAcks,
    Established,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HandlerState {
    /// Connected; FOLLOWERINFO/OBSERVERINFO not yet read.
    Info,
    /// Its info is read; LEADERINFO not yet sent (the epoch is not settled).
    LeaderInfo,
    /// LEADERINFO sent; ACKEPOCH not yet read.
    EpochAck,
    /// ACKEPOCH read (its last zxid kept); waiting for the leader's currentEpoch.
    Sync { peer_last_zxid: i64 },
    /// The txns it lacks (up to `before`, then the window) are being read from the
    /// log on disk (`ReadLog`).
    ReadingLog { peer_last_zxid: i64, before: i64 },
    /// Synced and NEWLEADER sent; forwarding; the NEWLEADER ACK not yet read.
    NewLeaderAck,
    /// UPTODATE sent: broadcast.
    UpToDate,
}

/// A `LearnerHandler`.
#[derive(Debug)]
struct Handler {
    sid: Sid,
    kind: LearnerType,
    state: HandlerState,
    /// The tick by which the learner must have sent something (initLimit while it
    /// syncs, syncLimit after).
    deadline_tick: i64,
}

impl Handler {
    fn forwarding(&self) -> bool {
        matches!(
            self.state,
            HandlerState::NewLeaderAck | HandlerState::UpToDate
        )
    }
}

pub(super) struct Leader {
    phase: Phase,
    /// The epoch being established (set once a quorum's FOLLOWERINFO is in).
    new_epoch: i64,
    /// acceptedEpochs of the voters that connected, for picking the epoch.
    connecting: BTreeMap<Sid, i64>,
    /// The newest acceptedEpoch of any learner that connected before the epoch was
    /// picked, observers and non-voters included (ZooKeeper's `getEpochToPropose`
    /// takes every learner's): the new epoch must be past it, or that learner refuses
    /// it.
    max_learner_accepted: i64,
    epoch_acks: BTreeSet<Sid>,
    newleader_acks: BTreeSet<Sid>,
    /// Where the synced history ends: everything up to it is committed at
    /// establishment.
    sync_limit_zxid: i64,
    handlers: BTreeMap<LinkId, Handler>,
    /// Outstanding proposals and the voters that ACKed each.
    outstanding: BTreeMap<i64, BTreeSet<Sid>>,
    last_proposed: i64,
    /// Learners' SYNCs waiting for a zxid to commit.
    pending_syncs: Vec<(LinkId, i64)>,
    /// Syncs done by DIFF or TRUNC, and by SNAP (mntr's zk_diff_count, zk_snap_count).
    diff_syncs: usize,
    snap_syncs: usize,
    tick: i64,
    next_tick_ms: i64,
    next_ping_ms: i64,
    /// The tick by which the current establishment phase must be done.
    phase_deadline_tick: i64,
}

impl Leader {
    pub(super) fn start(peer: &mut Peer, now_ms: i64, out: &mut Vec<Action>) -> Leader {
        out.push(Action::RoleChanged {
            state: ServerState::Leading,
            leader: Some(peer.cfg.my_sid),
            epoch: peer.current_epoch,
            serving: false,
        });
        let mut connecting = BTreeMap::new();
        connecting.insert(peer.cfg.my_sid, peer.accepted_epoch);
        Leader {
            phase: Phase::Epoch,
            new_epoch: 0,
            connecting,
            max_learner_accepted: 0,
            epoch_acks: BTreeSet::new(),
            newleader_acks: BTreeSet::new(),
            sync_limit_zxid: 0,
            handlers: BTreeMap::new(),
            outstanding: BTreeMap::new(),
            last_proposed: 0,
            pending_syncs: Vec::new(),
            diff_syncs: 0,
            snap_syncs: 0,
            tick: 0,
            next_tick_ms: now_ms + peer.cfg.tick_ms,
            next_ping_ms: now_ms + peer.cfg.tick_ms / 2,
            phase_deadline_tick: peer.cfg.init_limit,
        }
    }

    pub(super) fn established(&self) -> bool {
        self.phase == Phase::Established
    }

    /// Tests: pretend this epoch has already used its zxids up to `zxid`.
    #[cfg(test)]
    pub(super) fn skip_to(&mut self, zxid: i64) {
        self.last_proposed = zxid;
    }

    pub(super) fn next_zxid(&self) -> Option<i64> {
        let next = self.last_proposed + 1;
        (zxid::counter_of(next) < 0xffff_ffff).then_some(next)
    }

    /// Proposals sent and not yet committed.
    pub(super) fn proposals_in_flight(&self) -> usize {
        self.outstanding.len()
    }

    pub(super) fn counts(&self, cfg: &PeerConfig) -> LearnerCounts {
        let mut c = LearnerCounts {
            pending_syncs: self.pending_syncs.len(),
            diff_syncs: self.diff_syncs,
            snap_syncs: self.snap_syncs,
            ..LearnerCounts::default()
        };
        for h in self.handlers.values() {
            let synced = h.state == HandlerState::UpToDate;
            match h.kind {
                LearnerType::Observer => c.observers += synced as usize,
                LearnerType::Participant => {
                    c.followers += 1;
                    if synced && cfg.is_voter(h.sid) {
                        c.synced_followers += 1;
                    } else if synced {
                        c.synced_non_voting_followers += 1;
                    }
                }
            }
            if !synced && h.state != HandlerState::Info {
                c.syncing += 1;
            }
        }
        c
    }

    /// Returns false when the leader steps down (the peer goes back to looking).
    pub(super) fn handle(
        &mut self,
        peer: &mut Peer,
        now_ms: i64,
        ev: Event,
        out: &mut Vec<Action>,
    ) -> bool {
        let keep = match ev {
            Event::Tick { .. } => self.on_tick(peer, now_ms, out),
            Event::LearnerConnected { link } => {
                self.handlers.insert(
                    link,
                    Handler {
                        sid: 0,
                        kind: LearnerType::Participant,
                        state: HandlerState::Info,
                        deadline_tick: self.tick + peer.cfg.init_limit,
                    },
                );
                true
            }
            Event::LeaderConnected { link } | Event::SnapReceived { link, .. } => {
                out.push(Action::Close { link });
                true
            }
            Event::Packet { link, pkt } => self.on_packet(peer, link, pkt, out),
            Event::LinkClosed { link } => {
                self.handlers.remove(&link);
                self.pending_syncs.retain(|(l, _)| *l != link);
                true
            }
            Event::Logged { zxid } => {
                let me = peer.cfg.my_sid;
                for (_, acks) in self.outstanding.range_mut(..=zxid) {
                    acks.insert(me);
                }
                match self.phase {
                    Phase::NewLeaderAcks => self.try_establish(peer, out),
                    Phase::Established => self.try_commit(peer, out),
                    _ => {}
                }
                true
            }
            Event::EpochWritten { file, epoch } => self.on_epoch_written(peer, file, epoch, out),
            Event::Propose { txns } => self.propose(peer, txns, out),
            Event::LogRead { link, txns } => {
                self.on_log_read(peer, link, txns, out);
                true
            }
            Event::RevalidateAnswer {
                link,
                session_id,
                valid,
            } => {
                if self.handlers.contains_key(&link) {
                    out.push(Action::Send {
                        link,
                        pkt: QuorumPacket::new(
                            wire::REVALIDATE,
                            -1,
                            Some(wire::RevalidateReply { session_id, valid }.to_bytes()),
                        ),
                    });
                }
                true
            }
            // Learner-side events mean nothing here.
            Event::Forward { .. } | Event::Revalidate { .. } | Event::Touched { .. } => true,
            Event::Truncated { .. } | Event::SnapInstalled { .. } => true,
            Event::Notification { .. } | Event::LogHorizon { .. } | Event::PeerDown { .. } => true,
        };
        if !keep {
            self.shutdown(out);
        }
        keep
    }

    fn shutdown(&mut self, out: &mut Vec<Action>) {
        for link in std::mem::take(&mut self.handlers).into_keys() {
            out.push(Action::Close { link });
        }
    }

    fn close(&mut self, link: LinkId, why: &str, out: &mut Vec<Action>) {
        if let Some(h) = self.handlers.remove(&link) {
            tracing::warn!(sid = h.sid, "closing learner: {why}");
        }
        self.pending_syncs.retain(|(l, _)| *l != link);
        out.push(Action::Close { link });
    }

    fn on_tick(&mut self, peer: &mut Peer, now_ms: i64, out: &mut Vec<Action>) -> bool {
        if now_ms >= self.next_ping_ms {
            self.next_ping_ms = now_ms + (peer.cfg.tick_ms / 2).max(1);
            for (&link, h) in &self.handlers {
                if h.forwarding() {
                    out.push(Action::Send {
                        link,
                        pkt: QuorumPacket::new(wire::PING, self.last_proposed, None),
                    });
                }
            }
        }
        if self.phase == Phase::NewLeaderAcks {
            self.try_establish(peer, out);
        }
        if self.phase == Phase::Epoch {
            self.try_pick_epoch(peer, out);
        }
        while now_ms >= self.next_tick_ms {
            self.next_tick_ms += peer.cfg.tick_ms;
            self.tick += 1;
            let late: Vec<LinkId> = self
                .handlers
                .iter()
                .filter(|(_, h)| self.tick > h.deadline_tick)
                .map(|(l, _)| *l)
                .collect();
            for link in late {
                self.close(link, "nothing heard within the limit", out);
            }
            if self.phase == Phase::Established {
                let mut synced: BTreeSet<Sid> = self
                    .handlers
                    .values()
                    .filter(|h| h.forwarding())
                    .map(|h| h.sid)
                    .collect();
                synced.insert(peer.cfg.my_sid);
                if !peer.cfg.is_quorum(&synced) {
                    tracing::warn!("leader lost its quorum; stepping down");
                    return false;
                }
            } else if self.tick > self.phase_deadline_tick {
                tracing::warn!(phase = ?self.phase, "leader not established within initLimit; stepping down");
                return false;
            }
        }
        true
    }

    fn on_packet(
        &mut self,
        peer: &mut Peer,
        link: LinkId,
        p: QuorumPacket,
        out: &mut Vec<Action>,
    ) -> bool {
        let Some(h) = self.handlers.get_mut(&link) else {
            out.push(Action::Close { link });
            return true;
        };
        // Anything heard keeps the learner alive.
        h.deadline_tick = self.tick
            + if h.forwarding() {
                peer.cfg.sync_limit
            } else {
                peer.cfg.init_limit
            };
        match (h.state, p.typ) {
            (HandlerState::Info, wire::FOLLOWERINFO | wire::OBSERVERINFO) => {
                let info = wire::LearnerInfo::decode(p.data.as_deref().unwrap_or(&[]));
                let sid = match info.server_id {
                    Some(sid) if sid > 0 => sid as Sid,
                    _ => {
                        self.close(link, "LearnerInfo without a valid sid", out);
                        return true;
                    }
                };
                if info.protocol_version < wire::PROTOCOL_VERSION {
                    // The pre-Zab-1.0 handshake (no LEADERINFO) is not spoken here.
                    self.close(link, "learner protocol older than 0x10000", out);
                    return true;
                }
                // A newer connection from the same server replaces the older one.
                let older: Vec<LinkId> = self
                    .handlers
                    .iter()
                    .filter(|(l, o)| **l != link && o.sid == sid && o.state != HandlerState::Info)
                    .map(|(l, _)| *l)
                    .collect();
                for l in older {
                    self.close(l, "replaced by a newer connection", out);
                }
                let h = self.handlers.get_mut(&link).expect("handler present");
                h.sid = sid;
                h.kind = if p.typ == wire::OBSERVERINFO {
                    LearnerType::Observer
                } else {
                    LearnerType::Participant
                };
                h.state = HandlerState::LeaderInfo;
                let kind = h.kind;
                let learner_accepted = zxid::epoch_of(p.zxid);
                if self.phase == Phase::Epoch {
                    self.max_learner_accepted = self.max_learner_accepted.max(learner_accepted);
                    if kind == LearnerType::Participant && peer.cfg.is_voter(sid) {
                        self.connecting.insert(sid, learner_accepted);
                        self.try_pick_epoch(peer, out);
                    }
                } else if learner_accepted > self.new_epoch {
                    // ZOOKEEPER-3608's lockout: this learner accepted a later epoch than
                    // ours (typically its own, as a would-be leader that wrote
                    // acceptedEpoch and then failed to establish, more than once, while
                    // the others never heard of it), after our epoch was picked without
                    // it. It must refuse our LEADERINFO (acceptedEpoch never goes back),
                    // go back to looking, find us leading, and refuse again: ZooKeeper
                    // 3.8 leaves it locked out for as long as this leader lasts. Only a
                    // leader with a later epoch can take it back, so step down (as
                    // ZOOKEEPER-1277 does when the epoch's zxids run out): the epoch we
                    // wrote to our acceptedEpoch, and the learners that took it to
                    // theirs, make the next leader's epoch past ours, at least as late
                    // as this learner's (which it then accepts again), or later if it
                    // connects in time to be counted. Always safe: a leader may stop at
                    // any time, and nothing here is written.
                    tracing::warn!(
                        sid,
                        learner_accepted,
                        epoch = self.new_epoch,
                        "a learner accepted a later epoch than ours; stepping down so that a \
                         new election picks one it can follow"
                    );
                    return false;
                }
                if self.phase >= Phase::EpochAcks {
                    self.send_leader_info(link, out);
                }
                true
            }
            (HandlerState::EpochAck, wire::ACKEPOCH) => {
                let epoch = match p.data.as_deref().map(wire::decode_ack_epoch) {
                    Some(Ok(e)) => e.unwrap_or(-1),
                    _ => {
                        self.close(link, "malformed ACKEPOCH", out);
                        return true;
                    }
                };
                let peer_last = p.zxid;
                let leader_summary = (peer.current_epoch, peer.history.last_zxid());
                if epoch != -1 && (epoch, peer_last) > leader_summary {
                    self.close(link, "follower is ahead of the leader", out);
                    return true;
                }
                let h = self.handlers.get_mut(&link).expect("handler present");
                h.state = HandlerState::Sync {
                    peer_last_zxid: peer_last,
                };
                if h.kind == LearnerType::Participant
                    && peer.cfg.is_voter(h.sid)
                    && epoch != -1
                    && peer_last != -1
                {
                    self.epoch_acks.insert(h.sid);
                }
                if self.phase == Phase::EpochAcks {
                    let mut acks = self.epoch_acks.clone();
                    acks.insert(peer.cfg.my_sid);
                    if peer.cfg.is_quorum(&acks) {
                        self.phase = Phase::WritingCurrentEpoch;
                        out.push(Action::WriteEpoch {
                            file: EpochFile::Current,
                            epoch: self.new_epoch,
                        });
                    }
                } else if self.phase >= Phase::NewLeaderAcks {
                    self.sync_learner(peer, link, out);
                }
                true
            }
            (HandlerState::NewLeaderAck, wire::ACK) => {
                if p.zxid != zxid::make(self.new_epoch, 0) {
                    self.close(
                        link,
                        "the first packet after sync was not the NEWLEADER ACK",
                        out,
                    );
                    return true;
                }
                let sid = h.sid;
                let voter = h.kind == LearnerType::Participant && peer.cfg.is_voter(sid);
                if self.phase == Phase::Established {
                    self.send_up_to_date(link, peer, out);
                } else if voter {
                    self.newleader_acks.insert(sid);
                    self.try_establish(peer, out);
                } else {
                    // Non-voters wait for establishment like everyone else.
                    self.newleader_acks.insert(sid);
                }
                true
            }
            (HandlerState::UpToDate, wire::ACK) => {
                if zxid::counter_of(p.zxid) == 0 {
                    return true; // the ACK of UPTODATE
                }
                if h.kind == LearnerType::Participant && peer.cfg.is_voter(h.sid) {
                    let sid = h.sid;
                    if let Some(acks) = self.outstanding.get_mut(&p.zxid) {
                        acks.insert(sid);
                        self.try_commit(peer, out);
                    }
                }
                true
            }
            (HandlerState::UpToDate, wire::PING) => {
                match p
                    .data
                    .as_deref()
                    .map(wire::decode_touch_table)
                    .unwrap_or(Ok(Vec::new()))
                {
                    Ok(t) if !t.is_empty() => out.push(Action::TouchSessions {
                        sessions: t.iter().map(|t| (t.session_id, t.timeout)).collect(),
                    }),
                    Ok(_) => {}
                    Err(_) => self.close(link, "malformed PING", out),
                }
                true
            }
            (HandlerState::UpToDate, wire::REVALIDATE) => {
                let from = h.sid;
                match p.data.as_deref().map(wire::RevalidateRequest::decode) {
                    Some(Ok(r)) => out.push(Action::Revalidate {
                        from,
                        link,
                        session_id: r.session_id,
                        timeout: r.timeout,
                    }),
                    _ => self.close(link, "malformed REVALIDATE", out),
                }
                true
            }
            (HandlerState::UpToDate, wire::REQUEST) => {
                let sid = h.sid;
                let Some(Ok(r)) = p.data.as_ref().map(wire::LearnerRequest::decode) else {
                    self.close(link, "malformed REQUEST", out);
                    return true;
                };
                if r.typ == crate::proto::OpCode::Sync.as_i32() {
                    // Answered once every proposal made before it is committed.
                    if self.outstanding.is_empty() {
                        out.push(Action::Send {
                            link,
                            pkt: QuorumPacket::new(wire::SYNC, 0, None),
                        });
                    } else {
                        self.pending_syncs.push((link, self.last_proposed));
                    }
                    return true;
                }
                out.push(Action::Submit {
                    from: sid,
                    session_id: r.session_id,
                    cxid: r.cxid,
                    op: r.typ,
                    body: r.body,
                    auth: p.authinfo.unwrap_or_default(),
                });
                true
            }
            // PINGs answered during sync, ACKs of sync-phase proposals: nothing to do.
            (HandlerState::NewLeaderAck, wire::PING) => true,
            (state, typ) => {
                self.close(
                    link,
                    &format!("unexpected packet type {typ} in state {state:?}"),
                    out,
                );
                true
            }
        }
    }

    /// Once voters forming a quorum (with the leader) have connected: the new epoch is
    /// one past every acceptedEpoch seen, and the leader accepts it first.
    fn try_pick_epoch(&mut self, peer: &mut Peer, out: &mut Vec<Action>) {
        if self.phase != Phase::Epoch {
            return;
        }
        let sids: BTreeSet<Sid> = self.connecting.keys().copied().collect();
        if !peer.cfg.is_quorum(&sids) {
            return;
        }
        let max = self.connecting.values().copied().max().unwrap_or(0);
        self.new_epoch = max.max(self.max_learner_accepted).max(peer.accepted_epoch) + 1;
        self.phase = Phase::WritingAcceptedEpoch;
        out.push(Action::WriteEpoch {
            file: EpochFile::Accepted,
            epoch: self.new_epoch,
        });
    }

    fn on_epoch_written(
        &mut self,
        peer: &mut Peer,
        file: EpochFile,
        epoch: i64,
        out: &mut Vec<Action>,
    ) -> bool {
        match (self.phase, file) {
            (Phase::WritingAcceptedEpoch, EpochFile::Accepted) if epoch == self.new_epoch => {
                self.phase = Phase::EpochAcks;
                self.phase_deadline_tick = self.tick + peer.cfg.init_limit;
                let waiting: Vec<LinkId> = self
                    .handlers
                    .iter()
                    .filter(|(_, h)| h.state == HandlerState::LeaderInfo)
                    .map(|(l, _)| *l)
                    .collect();
                for link in waiting {
                    self.send_leader_info(link, out);
                }
                // A one-voter ensemble needs no ACKEPOCH but its own.
                let me: BTreeSet<Sid> = [peer.cfg.my_sid].into();
                if peer.cfg.is_quorum(&me) {
                    self.phase = Phase::WritingCurrentEpoch;
                    out.push(Action::WriteEpoch {
                        file: EpochFile::Current,
                        epoch: self.new_epoch,
                    });
                }
            }
            (Phase::WritingCurrentEpoch, EpochFile::Current) if epoch == self.new_epoch => {
                self.phase = Phase::NewLeaderAcks;
                self.phase_deadline_tick = self.tick + peer.cfg.init_limit;
                self.sync_limit_zxid = peer.history.last_zxid();
                self.last_proposed = zxid::make(self.new_epoch, 0);
                let ready: Vec<LinkId> = self
                    .handlers
                    .iter()
                    .filter(|(_, h)| matches!(h.state, HandlerState::Sync { .. }))
                    .map(|(l, _)| *l)
                    .collect();
                for link in ready {
                    self.sync_learner(peer, link, out);
                }
                self.try_establish(peer, out);
            }
            _ => {}
        }
        true
    }

    fn send_leader_info(&mut self, link: LinkId, out: &mut Vec<Action>) {
        let h = self.handlers.get_mut(&link).expect("handler present");
        h.state = HandlerState::EpochAck;
        out.push(Action::Send {
            link,
            pkt: QuorumPacket::new(
                wire::LEADERINFO,
                zxid::make(self.new_epoch, 0),
                Some(wire::leader_info_data(wire::PROTOCOL_VERSION)),
            ),
        });
    }

    /// DIFF, TRUNC or SNAP, then the history after the sync point as PROPOSAL/COMMIT
    /// pairs, then (for followers) the outstanding proposals, then NEWLEADER. From here
    /// on the learner gets every proposal and commit as they happen.
    fn sync_learner(&mut self, peer: &mut Peer, link: LinkId, out: &mut Vec<Action>) {
        let HandlerState::Sync { peer_last_zxid } = self.handlers[&link].state else {
            return;
        };
        let limit = self.synced_limit(peer);
        let plan = peer.history.plan(peer_last_zxid, limit);
        // ZooKeeper's rule 4: a learner older than the window in memory, whose txns the
        // log on disk still holds, gets a DIFF read from the log (up to what is durable
        // here) before the window.
        if plan == SyncPlan::Snap && !peer.history.is_empty() {
            let first = peer.history.get(0).zxid;
            let reachable = peer
                .log_complete_from
                .is_some_and(|from| from < peer_last_zxid)
                && peer_last_zxid < first
                && first - 1 <= peer.last_logged;
            if reachable {
                let h = self.handlers.get_mut(&link).expect("handler present");
                h.state = HandlerState::ReadingLog {
                    peer_last_zxid,
                    before: first,
                };
                out.push(Action::ReadLog {
                    link,
                    from: peer_last_zxid,
                    before: first,
                });
                return;
            }
        }
        let first = match plan {
            SyncPlan::Diff { .. } => FirstPacket::Diff(peer_last_zxid),
            SyncPlan::Trunc { zxid, .. } => FirstPacket::Trunc(zxid),
            SyncPlan::Snap => FirstPacket::Snap,
        };
        self.finish_sync(peer, link, first, &[], out);
    }

    /// Where the history a learner is synced to ends: the last commit once
    /// established; everything logged while establishing (all of it is committed then).
    fn synced_limit(&self, peer: &Peer) -> i64 {
        if self.phase == Phase::Established {
            peer.history.last_committed()
        } else {
            self.sync_limit_zxid
        }
    }

    /// The answer to `ReadLog`: the logged txns from the learner's last zxid up to the
    /// window in memory. A DIFF if they start at the learner's last txn (it is ours)
    /// and reach the window without a gap; a SNAP otherwise.
    fn on_log_read(
        &mut self,
        peer: &mut Peer,
        link: LinkId,
        read: Option<Vec<ZabTxn>>,
        out: &mut Vec<Action>,
    ) {
        let Some(h) = self.handlers.get_mut(&link) else {
            return;
        };
        let HandlerState::ReadingLog {
            peer_last_zxid,
            before,
        } = h.state
        else {
            return;
        };
        h.state = HandlerState::Sync { peer_last_zxid };
        let txns = read.unwrap_or_default();
        let starts_at_ours = match txns.first() {
            Some(t) if t.zxid == peer_last_zxid => true,
            Some(t) => zxid::counter_of(peer_last_zxid) == 0 && t.zxid > peer_last_zxid,
            None => false,
        };
        let after: Vec<ZabTxn> = txns
            .into_iter()
            .filter(|t| t.zxid > peer_last_zxid)
            .collect();
        let in_order = after
            .windows(2)
            .all(|w| crate::storage::zxid_follows(w[0].zxid, w[1].zxid));
        // What was read ends right before `before`, the window's first txn when the read
        // was asked for; the window may have moved on meanwhile, so it must still hold
        // `before` (zxid arithmetic cannot tell: a later epoch follows anything).
        // What was read must end right before it (same epoch: a txn opening an epoch
        // has no predecessor a zxid can name, so that case gets a SNAP).
        let last_read = after.last().map_or(peer_last_zxid, |t| t.zxid);
        let joins = last_read + 1 == before && peer.history.find(before).is_some();
        let first = if starts_at_ours && in_order && joins {
            FirstPacket::Diff(peer_last_zxid)
        } else {
            FirstPacket::Snap
        };
        let pre = if matches!(first, FirstPacket::Diff(_)) {
            after
        } else {
            Vec::new()
        };
        self.finish_sync(peer, link, first, &pre, out);
    }

    /// DIFF, TRUNC or SNAP, then `pre` (txns read from the log) and the history after
    /// the sync point as PROPOSAL/COMMIT pairs, then (for followers) the outstanding
    /// proposals, then NEWLEADER. From here on the learner gets every proposal and
    /// commit as they happen.
    fn finish_sync(
        &mut self,
        peer: &mut Peer,
        link: LinkId,
        first: FirstPacket,
        pre: &[ZabTxn],
        out: &mut Vec<Action>,
    ) {
        let limit = self.synced_limit(peer);
        let h = self.handlers.get_mut(&link).expect("handler present");
        let observer = h.kind == LearnerType::Observer;
        tracing::info!(sid = h.sid, observer, sync = ?first, "syncing a learner");
        let send = |out: &mut Vec<Action>, p| out.push(Action::Send { link, pkt: p });
        if matches!(first, FirstPacket::Snap) {
            self.snap_syncs += 1;
        } else {
            self.diff_syncs += 1;
        }
        let mut from_zxid = match first {
            FirstPacket::Diff(peer_last_zxid) => {
                send(out, QuorumPacket::new(wire::DIFF, limit, None));
                peer_last_zxid
            }
            FirstPacket::Trunc(zxid) => {
                send(out, QuorumPacket::new(wire::TRUNC, zxid, None));
                zxid
            }
            FirstPacket::Snap => {
                let at = peer.history.last_committed();
                out.push(Action::SendSnap { link, zxid: at });
                at
            }
        };
        for t in pre {
            send(out, proposal(t));
            send(out, QuorumPacket::new(wire::COMMIT, t.zxid, None));
            from_zxid = t.zxid;
        }
        for t in peer.history.after(from_zxid) {
            if t.zxid > limit {
                if !observer {
                    send(out, proposal(t));
                }
            } else {
                send(out, proposal(t));
                send(out, QuorumPacket::new(wire::COMMIT, t.zxid, None));
            }
        }
        send(
            out,
            QuorumPacket::new(
                wire::NEWLEADER,
                zxid::make(self.new_epoch, 0),
                Some(peer.cfg.config_string.clone()),
            ),
        );
        h.state = HandlerState::NewLeaderAck;
    }

    /// Established once voters forming a quorum (the leader counted once its own log
    /// holds the whole synced history) have ACKed NEWLEADER.
    fn try_establish(&mut self, peer: &mut Peer, out: &mut Vec<Action>) {
        if self.phase != Phase::NewLeaderAcks {
            return;
        }
        let mut acks: BTreeSet<Sid> = self
            .newleader_acks
            .iter()
            .copied()
            .filter(|s| peer.cfg.is_voter(*s))
            .collect();
        if peer.last_logged >= self.sync_limit_zxid {
            acks.insert(peer.cfg.my_sid);
        }
        if !peer.cfg.is_quorum(&acks) {
            return;
        }
        self.phase = Phase::Established;
        if self.sync_limit_zxid > peer.history.last_committed() {
            peer.history.committed(self.sync_limit_zxid);
            out.push(Action::Commit {
                up_to: self.sync_limit_zxid,
            });
        }
        let acked: Vec<LinkId> = self
            .handlers
            .iter()
            .filter(|(_, h)| {
                h.state == HandlerState::NewLeaderAck && self.newleader_acks.contains(&h.sid)
            })
            .map(|(l, _)| *l)
            .collect();
        for link in acked {
            self.send_up_to_date(link, peer, out);
        }
        peer.election.update_peer_epoch(self.new_epoch);
        out.push(Action::RoleChanged {
            state: ServerState::Leading,
            leader: Some(peer.cfg.my_sid),
            epoch: self.new_epoch,
            serving: true,
        });
    }

    fn send_up_to_date(&mut self, link: LinkId, peer: &Peer, out: &mut Vec<Action>) {
        let h = self.handlers.get_mut(&link).expect("handler present");
        h.state = HandlerState::UpToDate;
        h.deadline_tick = self.tick + peer.cfg.sync_limit;
        out.push(Action::Send {
            link,
            pkt: QuorumPacket::new(wire::UPTODATE, -1, None),
        });
    }

    fn propose(&mut self, peer: &mut Peer, txns: Vec<ZabTxn>, out: &mut Vec<Action>) -> bool {
        assert!(
            self.established(),
            "proposals before the leader is established"
        );
        for t in &txns {
            assert_eq!(
                t.zxid,
                self.last_proposed + 1,
                "proposals must follow each other"
            );
            if zxid::counter_of(t.zxid) == 0xffff_ffff {
                // ZOOKEEPER-1277: the counter would roll over; a new epoch is needed.
                tracing::warn!(
                    "zxid counter exhausted in epoch {}: stepping down",
                    self.new_epoch
                );
                return false;
            }
            self.last_proposed = t.zxid;
            peer.history.push(t.clone());
            self.outstanding.insert(t.zxid, BTreeSet::new());
            for (&link, h) in &self.handlers {
                if h.forwarding() && h.kind == LearnerType::Participant {
                    out.push(Action::Send {
                        link,
                        pkt: proposal(t),
                    });
                }
            }
        }
        if !txns.is_empty() {
            out.push(Action::Log { txns });
        }
        true
    }

    /// Commits, strictly in zxid order, every outstanding proposal a quorum has ACKed.
    fn try_commit(&mut self, peer: &mut Peer, out: &mut Vec<Action>) {
        let mut up_to = None;
        while let Some((&z, acks)) = self.outstanding.first_key_value() {
            if !peer.cfg.is_quorum(acks) {
                break;
            }
            self.outstanding.pop_first();
            up_to = Some(z);
            let data = peer.history.find(z).map(|t| t.data.clone());
            for (&link, h) in &self.handlers {
                if !h.forwarding() {
                    continue;
                }
                let p = match h.kind {
                    LearnerType::Participant => QuorumPacket::new(wire::COMMIT, z, None),
                    LearnerType::Observer => QuorumPacket::new(wire::INFORM, z, data.clone()),
                };
                out.push(Action::Send { link, pkt: p });
            }
        }
        let Some(z) = up_to else { return };
        peer.history.committed(z);
        out.push(Action::Commit { up_to: z });
        let (done, waiting): (Vec<_>, Vec<_>) =
            self.pending_syncs.drain(..).partition(|(_, w)| *w <= z);
        self.pending_syncs = waiting;
        for (link, _) in done {
            out.push(Action::Send {
                link,
                pkt: QuorumPacket::new(wire::SYNC, 0, None),
            });
        }
    }
}

/// How a sync starts.
#[derive(Debug, Clone, Copy)]
enum FirstPacket {
    /// DIFF from the learner's last zxid.
    Diff(i64),
    Trunc(i64),
    Snap,
}

fn proposal(t: &ZabTxn) -> QuorumPacket {
    QuorumPacket::new(wire::PROPOSAL, t.zxid, Some(t.data.clone()))
}
