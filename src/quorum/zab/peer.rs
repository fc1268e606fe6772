//! The `QuorumPeer`: one server's durable ZAB state and the role it plays, switching
//! between looking (fast leader election), leading and learning.

use std::collections::BTreeSet;

use bytes::Bytes;

use super::history::History;
use super::leader::Leader;
use super::learner::Learner;
use super::{Action, EpochFile, Event, LinkId, ZabTxn};
use crate::quorum::election::{Election, ElectionAction, Vote};
use crate::quorum::{LearnerType, ServerState, Sid};

/// What a peer is configured with (zoo.cfg's ensemble keys).
#[derive(Debug, Clone)]
pub struct PeerConfig {
    pub my_sid: Sid,
    pub my_type: LearnerType,
    pub voters: BTreeSet<Sid>,
    pub tick_ms: i64,
    pub init_limit: i64,
    pub sync_limit: i64,
    /// `zookeeper.commitLogCount`: committed txns a leader keeps for DIFF (>= 500).
    pub commit_log_count: usize,
    /// `QuorumVerifier.toString()`: sent in notifications and NEWLEADER.
    pub config_string: Bytes,
    pub min_notification_interval_ms: i64,
    pub max_notification_interval_ms: i64,
    /// Test-only sabotage, to show the simulator catches a broken rule: a follower
    /// ACKs a PROPOSAL as soon as it asks for it to be logged.
    #[cfg(test)]
    pub unsafe_ack_before_log: bool,
}

impl PeerConfig {
    pub fn is_quorum(&self, sids: &BTreeSet<Sid>) -> bool {
        sids.iter().filter(|s| self.voters.contains(s)).count() * 2 > self.voters.len()
    }

    pub fn is_voter(&self, sid: Sid) -> bool {
        self.voters.contains(&sid)
    }
}

/// What a peer starts from: its epoch files and what recovery found in its storage.
#[derive(Debug, Clone, Default)]
pub struct PeerState {
    pub accepted_epoch: i64,
    pub current_epoch: i64,
    /// The last zxid in the log (recovery applied every txn up to it).
    pub last_logged_zxid: i64,
    /// The newest logged txns (for DIFF when this server leads), oldest first, ending at
    /// `last_logged_zxid`.
    pub committed_log: Vec<ZabTxn>,
    /// The zxid of the snapshot the state was recovered from (0: none): the log starts
    /// after it, so a TRUNC cannot go below it (`TxnLog::truncate_after`).
    pub snapshot_zxid: i64,
}

pub(super) enum Role {
    Looking,
    Leading(Leader),
    Learning(Learner),
}

/// One server's ZAB state machine. See the module comment of `zab`.
pub struct Peer {
    pub(super) cfg: PeerConfig,
    /// The epoch files as durably written.
    pub(super) accepted_epoch: i64,
    pub(super) current_epoch: i64,
    /// Every txn given to `Log` up to here is durable.
    pub(super) last_logged: i64,
    /// Truncations and snapshot installs asked for and not yet durable. Storage
    /// actions complete in order, so every `Logged` that arrives meanwhile is for an
    /// append asked for before the reset, which the reset supersedes: ignored.
    pub(super) resets_pending: u32,
    /// Committed txns (a bounded window) and the ones logged after them.
    pub(super) history: History,
    /// The log on disk holds every txn after this zxid (a leader DIFFs from it for
    /// learners older than `history`).
    pub(super) log_complete_from: Option<i64>,
    /// The zxid of the snapshot the durable state starts from (recovered, or installed
    /// from a SNAP): the state cannot be truncated below it (see `Learner`'s TRUNC).
    pub(super) snapshot_zxid: i64,
    pub(super) election: Election,
    pub(super) role: Role,
    next_link: LinkId,
    /// Learners that connected while this server was still looking, with what they
    /// sent: ZooKeeper opens its quorum port only once it leads, so a learner that
    /// decided first retries its connect; here the port is always open and such a
    /// learner is kept for the leader this server may become (closed otherwise).
    early_learners: std::collections::BTreeMap<LinkId, Vec<crate::quorum::wire::QuorumPacket>>,
}

/// Early learner connections kept while looking, and packets kept for each (a
/// learner sends one FOLLOWERINFO and waits).
const MAX_EARLY_LEARNERS: usize = 64;
const MAX_EARLY_PACKETS: usize = 4;

/// Links the peer opens itself (to a leader) have this bit set; the runtime numbers
/// the ones it accepts without it.
pub const OWN_LINK_BIT: LinkId = 1 << 63;

impl Peer {
    /// A peer after recovery; it starts looking at once.
    pub fn new(cfg: PeerConfig, state: PeerState, now_ms: i64, out: &mut Vec<Action>) -> Peer {
        assert!(
            state.accepted_epoch >= state.current_epoch,
            "acceptedEpoch {} is older than currentEpoch {}",
            state.accepted_epoch,
            state.current_epoch
        );
        let mut history = History::new(cfg.commit_log_count, state.last_logged_zxid);
        let skip = state
            .committed_log
            .len()
            .saturating_sub(cfg.commit_log_count);
        for t in state.committed_log.into_iter().skip(skip) {
            assert!(
                t.zxid <= state.last_logged_zxid,
                "committed log past the log's end"
            );
            history.push(t);
        }
        let election = Election::new(
            cfg.my_sid,
            cfg.my_type,
            cfg.voters.clone(),
            cfg.config_string.clone(),
            cfg.min_notification_interval_ms,
            cfg.max_notification_interval_ms,
        );
        let mut peer = Peer {
            cfg,
            accepted_epoch: state.accepted_epoch,
            current_epoch: state.current_epoch,
            last_logged: state.last_logged_zxid,
            resets_pending: 0,
            history,
            log_complete_from: None,
            snapshot_zxid: state.snapshot_zxid,
            election,
            role: Role::Looking,
            next_link: 0,
            early_learners: Default::default(),
        };
        peer.look(now_ms, out);
        peer
    }

    pub fn sid(&self) -> Sid {
        self.cfg.my_sid
    }

    pub fn state(&self) -> ServerState {
        match &self.role {
            Role::Looking => ServerState::Looking,
            Role::Leading(_) => ServerState::Leading,
            Role::Learning(l) if l.is_observer() => ServerState::Observing,
            Role::Learning(_) => ServerState::Following,
        }
    }

    /// Whether clients may be served: an established leader, a learner up to date.
    pub fn serving(&self) -> bool {
        match &self.role {
            Role::Looking => false,
            Role::Leading(l) => l.established(),
            Role::Learning(l) => l.up_to_date(),
        }
    }

    /// When the next timer is due (the election's), if sooner than the next tick.
    pub fn next_timeout(&self) -> Option<i64> {
        self.election.next_timeout()
    }

    /// The election's state, for diagnostics: its round and its current proposal.
    pub fn election(&self) -> &Election {
        &self.election
    }

    pub fn accepted_epoch(&self) -> i64 {
        self.accepted_epoch
    }

    pub fn current_epoch(&self) -> i64 {
        self.current_epoch
    }

    pub fn last_logged_zxid(&self) -> i64 {
        self.last_logged
    }

    pub fn last_committed_zxid(&self) -> i64 {
        self.history.last_committed()
    }

    /// The sid of the leader this server follows or is, once known.
    pub fn leader(&self) -> Option<Sid> {
        match &self.role {
            Role::Looking => None,
            Role::Leading(_) => Some(self.cfg.my_sid),
            Role::Learning(l) => Some(l.leader()),
        }
    }

    /// The bytes of the txns held in memory from `zxid` on: with those read from the log,
    /// the whole tail a DIFF would send, which ZooKeeper's `snapshotSizeFactor` rule
    /// weighs against a snapshot.
    pub fn history_bytes_from(&self, zxid: i64) -> u64 {
        self.history
            .after(zxid - 1)
            .map(|t| t.data.len() as u64)
            .sum()
    }

    /// Leader, established: the zxid the next proposal must have, or None when this
    /// epoch has no zxid left (the leader steps down when asked to propose past it,
    /// ZOOKEEPER-1277).
    pub fn next_zxid(&self) -> Option<i64> {
        match &self.role {
            Role::Leading(l) if l.established() => l.next_zxid(),
            _ => None,
        }
    }

    /// Leader: proposals sent and not yet committed (0 in any other role).
    pub fn proposals_in_flight(&self) -> usize {
        match &self.role {
            Role::Leading(l) => l.proposals_in_flight(),
            _ => 0,
        }
    }

    /// Leader: followers (voters and not) and observers that are synced, and how many
    /// learners are syncing (for mntr).
    pub fn learner_counts(&self) -> LearnerCounts {
        match &self.role {
            Role::Leading(l) => l.counts(&self.cfg),
            _ => LearnerCounts::default(),
        }
    }

    pub(super) fn new_link(&mut self) -> LinkId {
        self.next_link += 1;
        OWN_LINK_BIT | self.next_link
    }

    /// Feeds one event; the actions to carry out are appended to `out`.
    pub fn handle(&mut self, now_ms: i64, ev: Event, out: &mut Vec<Action>) {
        match ev {
            Event::Notification { from, n } => {
                let acts = self.election.on_notification(from, n, now_ms);
                self.election_actions(now_ms, acts, out);
            }
            Event::Tick { all_delivered } => {
                if self.election.is_looking() {
                    let acts = self.election.on_tick(now_ms, all_delivered);
                    self.election_actions(now_ms, acts, out);
                }
                self.role_event(now_ms, Event::Tick { all_delivered }, out);
            }
            Event::LogHorizon { complete_from } => self.log_complete_from = complete_from,
            Event::PeerDown { sid } => self.election.peer_down(sid, now_ms),
            Event::Logged { .. } if self.resets_pending > 0 => {}
            Event::Truncated { zxid } | Event::SnapInstalled { zxid } => {
                assert!(self.resets_pending > 0, "a storage reset nobody asked for");
                self.resets_pending -= 1;
                // The log now ends at `zxid`: whatever it held after is gone (TRUNC)
                // or replaced by the snapshot (SNAP).
                self.last_logged = zxid;
                if matches!(ev, Event::SnapInstalled { .. }) {
                    self.snapshot_zxid = zxid;
                }
                self.role_event(now_ms, ev, out);
            }
            Event::Logged { zxid } => {
                assert!(
                    zxid >= self.last_logged,
                    "the log went back: {zxid:#x} after {:#x}",
                    self.last_logged
                );
                assert!(
                    zxid <= self.history.last_zxid(),
                    "logged {zxid:#x}, never asked past {:#x}",
                    self.history.last_zxid()
                );
                self.last_logged = zxid;
                self.role_event(now_ms, Event::Logged { zxid }, out);
            }
            Event::EpochWritten { file, epoch } => {
                match file {
                    EpochFile::Accepted => {
                        assert!(epoch >= self.accepted_epoch, "acceptedEpoch went back");
                        self.accepted_epoch = epoch;
                    }
                    EpochFile::Current => {
                        assert!(epoch >= self.current_epoch, "currentEpoch went back");
                        assert!(
                            epoch <= self.accepted_epoch,
                            "currentEpoch past acceptedEpoch"
                        );
                        self.current_epoch = epoch;
                    }
                }
                self.role_event(now_ms, Event::EpochWritten { file, epoch }, out);
            }
            ev => self.role_event(now_ms, ev, out),
        }
    }

    fn role_event(&mut self, now_ms: i64, ev: Event, out: &mut Vec<Action>) {
        let role = std::mem::replace(&mut self.role, Role::Looking);
        let next = match role {
            Role::Looking => {
                match ev {
                    Event::LearnerConnected { link } => {
                        if self.early_learners.len() < MAX_EARLY_LEARNERS {
                            self.early_learners.insert(link, Vec::new());
                        } else {
                            out.push(Action::Close { link });
                        }
                    }
                    Event::Packet { link, pkt } if self.early_learners.contains_key(&link) => {
                        let kept = self.early_learners.get_mut(&link).expect("checked");
                        if kept.len() < MAX_EARLY_PACKETS {
                            kept.push(pkt);
                        } else {
                            self.early_learners.remove(&link);
                            out.push(Action::Close { link });
                        }
                    }
                    Event::LinkClosed { link } => {
                        self.early_learners.remove(&link);
                    }
                    // A link of an earlier role: close it.
                    Event::LeaderConnected { link }
                    | Event::SnapReceived { link, .. }
                    | Event::Packet { link, .. } => out.push(Action::Close { link }),
                    _ => {}
                }
                Some(Role::Looking)
            }
            Role::Leading(mut l) => l.handle(self, now_ms, ev, out).then_some(Role::Leading(l)),
            Role::Learning(mut l) => {
                if l.handle(self, now_ms, ev, out) {
                    Some(Role::Learning(l))
                } else if let Some(leader) = l.wants_snap() {
                    // A TRUNC below our snapshot: straight back to the same leader,
                    // asking for a SNAP (see the TRUNC case of `Learner::on_packet`).
                    let link = self.new_link();
                    let l = Learner::start(self, leader, link, now_ms).without_history();
                    out.push(Action::ConnectToLeader { leader, link });
                    Some(Role::Learning(l))
                } else {
                    None
                }
            }
        };
        match next {
            Some(r) => self.role = r,
            None => self.look(now_ms, out),
        }
    }

    /// Back to LOOKING: a new election round from what this server has logged.
    pub(super) fn look(&mut self, now_ms: i64, out: &mut Vec<Action>) {
        self.role = Role::Looking;
        out.push(Action::RoleChanged {
            state: ServerState::Looking,
            leader: None,
            epoch: self.current_epoch,
            serving: false,
        });
        let acts = self
            .election
            .start(self.history.last_zxid(), self.current_epoch, now_ms);
        self.election_actions(now_ms, acts, out);
    }

    fn election_actions(&mut self, now_ms: i64, acts: Vec<ElectionAction>, out: &mut Vec<Action>) {
        for a in acts {
            match a {
                ElectionAction::Send { to, n } => out.push(Action::SendNotification { to, n }),
                ElectionAction::ConnectAll => out.push(Action::ConnectAll),
                ElectionAction::Decided { state, vote } => self.decided(now_ms, state, vote, out),
            }
        }
    }

    pub(super) fn decided(
        &mut self,
        now_ms: i64,
        state: ServerState,
        vote: Vote,
        out: &mut Vec<Action>,
    ) {
        if !matches!(self.role, Role::Looking) {
            return;
        }
        let Some(leader) = vote.leader_sid() else {
            return;
        };
        match state {
            ServerState::Leading => {
                let l = Leader::start(self, now_ms, out);
                self.role = Role::Leading(l);
                // Learners that connected while we were still looking.
                for (link, pkts) in std::mem::take(&mut self.early_learners) {
                    self.role_event(now_ms, Event::LearnerConnected { link }, out);
                    for pkt in pkts {
                        self.role_event(now_ms, Event::Packet { link, pkt }, out);
                    }
                }
                // A one-voter ensemble is a quorum by itself.
                self.role_event(
                    now_ms,
                    Event::Tick {
                        all_delivered: true,
                    },
                    out,
                );
            }
            ServerState::Following | ServerState::Observing => {
                for link in std::mem::take(&mut self.early_learners).into_keys() {
                    out.push(Action::Close { link });
                }
                let link = self.new_link();
                let l = Learner::start(self, leader, link, now_ms);
                out.push(Action::RoleChanged {
                    state,
                    leader: Some(leader),
                    epoch: self.current_epoch,
                    serving: false,
                });
                out.push(Action::ConnectToLeader { leader, link });
                self.role = Role::Learning(l);
            }
            ServerState::Looking => {}
        }
    }
}

/// Learners of a leader, by kind (mntr's `zk_followers`, `zk_synced_followers`, ...).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LearnerCounts {
    pub followers: usize,
    pub synced_followers: usize,
    pub synced_non_voting_followers: usize,
    pub observers: usize,
    pub syncing: usize,
    /// Learners' SYNCs waiting for a commit (`zk_pending_syncs`).
    pub pending_syncs: usize,
    /// Learners synced by DIFF or TRUNC, and by SNAP, since this server leads.
    pub diff_syncs: usize,
    pub snap_syncs: usize,
}
