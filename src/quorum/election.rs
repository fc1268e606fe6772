//! Fast leader election: ZooKeeper's `FastLeaderElection` (§1.5-1.9) as a sans-IO state
//! machine, one per server, alive for the server's whole life.
//!
//! It owns what ZooKeeper's FLE object and its `WorkerReceiver` own: the `logicalclock`,
//! the proposal (`proposedLeader`/`proposedZxid`/`proposedEpoch`), the round's `recvset`
//! and `outofelection` tallies, the `notTimeout` back-off and the `finalizeWait` timer,
//! and `QuorumPeer.currentVote`, the vote a settled server answers LOOKING peers with.
//! It lives as long as the server because ZooKeeper's does: the `logicalclock` carries
//! over from round to round, and a FOLLOWING, LEADING or OBSERVING server keeps answering
//! LOOKING peers so that they can find the established leader.
//!
//! Events in, actions out: [`Election::start`] (lookForLeader begins),
//! [`Election::on_notification`] (a notification arrived on the election port),
//! [`Election::on_tick`] (time passed). Each returns [`ElectionAction`]s that the runtime
//! carries out in order. The caller passes a monotonic `now_ms` into every call, and
//! [`Election::next_timeout`] says when the next `on_tick` has work to do. There is no
//! queue inside (but for notifications that arrive before the first `start`): a
//! notification is handled when it is passed in, as ZooKeeper's `recvqueue.poll` loop
//! handles one at a time, and the poll timeouts become deadlines checked by `on_tick`.
//! Quorums are majorities of the voters (`QuorumMaj`); reconfig (a next config's
//! voters, `processReconfig` on a newer received config) is not supported, so the
//! config bytes peers send are not interpreted here.
//!
//! Peers are not trusted: a notification naming unknown sids, carrying absurd epochs or
//! `i64::MIN`s is answered or ignored exactly as ZooKeeper would, and never panics.
//!
//! One deliberate difference: ZooKeeper always waits `finalizeWait` once a quorum backs
//! its proposal; here the wait is skipped when every other voter has voted in the round
//! or is known to be down (`Election::peer_down`), since no better vote can come then.
//! It only ends the same election sooner (a leader's failover: 30 ms instead of 230).
//!
//! Safety of the ensemble does not rest on this module: like ZooKeeper's, the election
//! is a heuristic that a slow or lost notification can fool into two servers deciding
//! LEADING in one round. ZAB's epoch establishment (a leader needs a quorum of
//! followers to acknowledge its new epoch) is what keeps two leaders from both serving.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;

use super::wire::Notification;
use super::{LearnerType, ServerState, Sid};

/// `FastLeaderElection.finalizeWait`: how long a quorum must go unchallenged by a
/// better vote before the election ends.
pub const FINALIZE_WAIT_MS: i64 = 200;

/// Default of `zookeeper.fastleader.minNotificationInterval`: the first `notTimeout`.
pub const MIN_NOTIFICATION_INTERVAL_MS: i64 = 200;

/// Default of `zookeeper.fastleader.maxNotificationInterval`: the back-off cap.
pub const MAX_NOTIFICATION_INTERVAL_MS: i64 = 60_000;

/// Notifications that arrive before the first [`Election::start`] are kept, as ZooKeeper's
/// `recvqueue` keeps them for `lookForLeader`; the oldest goes first when full, as with
/// QuorumCnxManager's `RECV_CAPACITY`.
const PRE_START_CAPACITY: usize = 100;

/// A vote: who is (or is proposed as) leader, as the runtime sees it.
///
/// `leader` is ZooKeeper's signed `long` id, not a [`Sid`]: an observer's initial proposal
/// is `i64::MIN` and a peer may name anything. A decided vote always names a voter
/// ([`Vote::leader_sid`] is then `Some`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vote {
    pub leader: i64,
    /// The leader's last logged zxid at election time; not updated afterwards.
    pub zxid: i64,
    /// The `logicalclock` of the round that produced the vote (-1 before any round).
    pub election_epoch: i64,
    /// The leader's epoch; after sync, the new epoch (`updateElectionVote`).
    pub peer_epoch: i64,
    /// The state of the server holding the vote.
    pub state: ServerState,
}

impl Vote {
    /// The leader as a sid, if it can be one.
    pub fn leader_sid(&self) -> Option<Sid> {
        Sid::try_from(self.leader).ok()
    }
}

/// What the runtime must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElectionAction {
    /// Send `n` to server `to` on the election port. When `to` is our own sid this is
    /// ZooKeeper's loopback: feed it straight back with `on_notification(my_sid, n)`.
    Send { to: Sid, n: Notification },
    /// A poll timed out while no peer's send queue was empty: (re)connect to every
    /// voter (ZooKeeper's `connectAll`).
    ConnectAll,
    /// The election is over: become `state` (LEADING, FOLLOWING or OBSERVING) with `vote`
    /// as the leader. The election has already settled into this state and now answers
    /// LOOKING peers with `vote`; call [`Election::start`] to look again.
    Decided { state: ServerState, vote: Vote },
}

/// `FastLeaderElection.totalOrderPredicate`: does the vote `(new_id, new_zxid, new_epoch)`
/// beat `(cur_id, cur_zxid, cur_epoch)`? Peer epoch first, then zxid, then sid, all
/// signed. (ZooKeeper first rejects candidates of weight 0; `QuorumMaj` weighs every id
/// 1, so that check never fires for majority quorums and is left out.)
pub fn total_order_predicate(
    new_id: i64,
    new_zxid: i64,
    new_epoch: i64,
    cur_id: i64,
    cur_zxid: i64,
    cur_epoch: i64,
) -> bool {
    (new_epoch, new_zxid, new_id) > (cur_epoch, cur_zxid, cur_id)
}

/// ZooKeeper's `Vote` as kept in `recvset` and `outofelection`: unlike [`Vote`] it has a
/// format version, and its equality is ZooKeeper's, not field-by-field.
#[derive(Debug, Clone, Copy)]
struct TallyVote {
    version: i32,
    id: i64,
    zxid: i64,
    election_epoch: i64,
    peer_epoch: i64,
    state: ServerState,
}

impl TallyVote {
    /// `Vote.equals`. A LOOKING vote must match on everything that identifies a
    /// proposal. Settled votes match on leader and peer epoch only, because a follower's
    /// zxid and election epoch are frozen at election time while its peer epoch moves on
    /// after sync (ZOOKEEPER-1805); and when exactly one side comes from a pre-3.4.6
    /// server (version 0), whose peer epoch means something else, on leader alone
    /// (ZOOKEEPER-1732).
    fn same_as(&self, other: &TallyVote) -> bool {
        if self.state == ServerState::Looking || other.state == ServerState::Looking {
            self.id == other.id
                && self.zxid == other.zxid
                && self.election_epoch == other.election_epoch
                && self.peer_epoch == other.peer_epoch
        } else if (self.version > 0) != (other.version > 0) {
            self.id == other.id
        } else {
            self.id == other.id && self.peer_epoch == other.peer_epoch
        }
    }
}

/// The state of one `lookForLeader` call.
#[derive(Debug)]
struct Round {
    /// Votes of this round (`n.electionEpoch == logicalclock`), by sender.
    recvset: BTreeMap<Sid, TallyVote>,
    /// FOLLOWING/LEADING votes of any round, by sender: how a late joiner finds an
    /// established leader.
    outofelection: BTreeMap<Sid, TallyVote>,
    /// The poll timeout; doubles on each timeout up to the maximum, never shrinks.
    not_timeout: i64,
    /// When the current `recvqueue.poll(notTimeout)` times out.
    poll_deadline: i64,
    /// Set while a quorum backs our proposal: when the `finalizeWait` poll times out.
    finalize_deadline: Option<i64>,
    /// Voters whose election port refused a connection during this round and that
    /// have sent nothing since: their process is down, so no vote can come from them.
    down: BTreeSet<Sid>,
}

/// Fast leader election for one server. See the module comment.
#[derive(Debug)]
pub struct Election {
    my_sid: Sid,
    my_type: LearnerType,
    voters: BTreeSet<Sid>,
    config: Bytes,
    min_notification_interval_ms: i64,
    max_notification_interval_ms: i64,

    /// `QuorumPeer.getPeerState()`.
    state: ServerState,
    logicalclock: i64,
    proposed_leader: i64,
    proposed_zxid: i64,
    proposed_epoch: i64,
    /// `getInitId()`, `getInitLastLoggedZxid()`, `getPeerEpoch()` of the current round.
    init_id: i64,
    init_zxid: i64,
    init_epoch: i64,
    /// `QuorumPeer.currentVote`: the last decided vote (the initial vote before the
    /// first decision). Its `state` is kept equal to `state`.
    current_vote: Vote,
    /// Whether `start` has run once (ZooKeeper's `startLeaderElection` seeds
    /// `currentVote` then).
    started: bool,
    /// `Some` while a round is running, which is exactly while LOOKING after `start`.
    round: Option<Round>,
    /// Notifications received before the first `start`.
    pre_start: VecDeque<(Sid, Notification)>,
}

impl Election {
    /// A server's election, LOOKING but idle until [`Election::start`].
    ///
    /// `voters` are the participants of the current config (ZooKeeper's
    /// `getCurrentAndNextConfigVoters`); `config` is `QuorumVerifier.toString()` in UTF-8,
    /// sent in every notification. The intervals are ZooKeeper's
    /// `minNotificationInterval`/`maxNotificationInterval`
    /// ([`MIN_NOTIFICATION_INTERVAL_MS`], [`MAX_NOTIFICATION_INTERVAL_MS`] by default).
    pub fn new(
        my_sid: Sid,
        my_type: LearnerType,
        voters: BTreeSet<Sid>,
        config: Bytes,
        min_notification_interval_ms: i64,
        max_notification_interval_ms: i64,
    ) -> Self {
        // Config errors, not peer input: ZooKeeper ids are Java longs, and an election
        // without voters or with a zero poll timeout cannot run.
        assert!(!voters.is_empty(), "an election needs voters");
        assert!(
            i64::try_from(my_sid).is_ok() && voters.iter().all(|&s| i64::try_from(s).is_ok()),
            "sids must fit a Java long"
        );
        assert!(
            min_notification_interval_ms > 0
                && max_notification_interval_ms >= min_notification_interval_ms,
            "notification intervals must satisfy 0 < min <= max"
        );
        let me = my_sid as i64;
        Election {
            my_sid,
            my_type,
            voters,
            config,
            min_notification_interval_ms,
            max_notification_interval_ms,
            state: ServerState::Looking,
            logicalclock: 0,
            proposed_leader: -1,
            proposed_zxid: -1,
            proposed_epoch: 0,
            init_id: me,
            init_zxid: -1,
            init_epoch: -1,
            current_vote: Vote {
                leader: me,
                zxid: -1,
                election_epoch: -1,
                peer_epoch: -1,
                state: ServerState::Looking,
            },
            started: false,
            round: None,
            pre_start: VecDeque::new(),
        }
    }

    /// Start a round (`lookForLeader`): become LOOKING, bump the `logicalclock`, propose
    /// ourselves as `(my_sid, last_logged_zxid, current_epoch)` and send that to every
    /// voter, ourselves included. A server that is not a voter proposes `i64::MIN` as id,
    /// and an observer `i64::MIN` as zxid and epoch too, so neither is ever proposed.
    ///
    /// `last_logged_zxid` is the last zxid in the loaded database and log,
    /// `current_epoch` the `currentEpoch` file. Call it at boot and whenever the server
    /// stops leading, following or observing.
    pub fn start(
        &mut self,
        last_logged_zxid: i64,
        current_epoch: i64,
        now_ms: i64,
    ) -> Vec<ElectionAction> {
        let me = self.my_sid as i64;
        if !self.started {
            // startLeaderElection: the vote non-voters are told about until a
            // decision replaces it. It names us even on an observer.
            self.current_vote = Vote {
                leader: me,
                zxid: last_logged_zxid,
                election_epoch: -1,
                peer_epoch: current_epoch,
                state: ServerState::Looking,
            };
            self.started = true;
        }
        self.state = ServerState::Looking;
        self.current_vote.state = ServerState::Looking;
        // ZooKeeper's AtomicLong wraps; a peer can push our clock to i64::MAX.
        self.logicalclock = self.logicalclock.wrapping_add(1);
        self.init_id = if self.voters.contains(&self.my_sid) {
            me
        } else {
            i64::MIN
        };
        (self.init_zxid, self.init_epoch) = match self.my_type {
            LearnerType::Participant => (last_logged_zxid, current_epoch),
            LearnerType::Observer => (i64::MIN, i64::MIN),
        };
        self.update_proposal(self.init_id, self.init_zxid, self.init_epoch);
        self.round = Some(Round {
            recvset: BTreeMap::new(),
            outofelection: BTreeMap::new(),
            not_timeout: self.min_notification_interval_ms,
            poll_deadline: now_ms.saturating_add(self.min_notification_interval_ms),
            finalize_deadline: None,
            down: BTreeSet::new(),
        });
        let mut out = Vec::new();
        self.send_notifications(&mut out);
        // Replayed in arrival order; any left after a decision get the settled answers.
        for (from, n) in std::mem::take(&mut self.pre_start) {
            out.extend(self.on_notification(from, n, now_ms));
        }
        out
    }

    /// A notification from server `from` (the sid of the connection it came on).
    ///
    /// Replies first, as `WorkerReceiver` does: a non-voter gets our current vote at once
    /// and nothing more; a LOOKING sender behind our round gets our proposal while we
    /// look; a LOOKING sender gets our current vote once we are settled. Then, while
    /// LOOKING, the notification goes through `lookForLeader`'s loop.
    pub fn on_notification(
        &mut self,
        from: Sid,
        n: Notification,
        now_ms: i64,
    ) -> Vec<ElectionAction> {
        let mut out = Vec::new();
        if self.state == ServerState::Looking && self.round.is_none() {
            if self.pre_start.len() == PRE_START_CAPACITY {
                self.pre_start.pop_front();
            }
            self.pre_start.push_back((from, n));
            return out;
        }
        if !self.voters.contains(&from) {
            // We never send to ourselves unless we are a voter, so a non-voter "from
            // us" is not a loopback; answering it would loop forever. (Between a
            // LOOKING voter and a settled non-voter, ZooKeeper's rules do ping-pong
            // until the voter settles; we keep that, as peers may rely on the answers.)
            if from != self.my_sid {
                let v = self.current_vote;
                out.push(self.send(
                    from,
                    self.state,
                    v.leader,
                    v.zxid,
                    self.logicalclock,
                    v.peer_epoch,
                ));
            }
            return out;
        }
        if self.state == ServerState::Looking {
            if n.state == ServerState::Looking && n.election_epoch < self.logicalclock {
                out.push(self.send(
                    from,
                    ServerState::Looking,
                    self.proposed_leader,
                    self.proposed_zxid,
                    self.logicalclock,
                    self.proposed_epoch,
                ));
            }
            self.poll(from, n, now_ms, &mut out);
        } else if n.state == ServerState::Looking {
            let v = self.current_vote;
            out.push(self.send(
                from,
                self.state,
                v.leader,
                v.zxid,
                v.election_epoch,
                v.peer_epoch,
            ));
        }
        out
    }

    /// Time passed. `have_delivered` is ZooKeeper's `QuorumCnxManager.haveDelivered()`:
    /// true if the send queue to *some* peer is empty (despite its name, one suffices;
    /// false if there are no queues yet). On a poll timeout we re-send our proposal if
    /// it is true and ask for [`ElectionAction::ConnectAll`] otherwise, then double
    /// `notTimeout`. When `finalizeWait` runs out unchallenged, the election ends.
    pub fn on_tick(&mut self, now_ms: i64, have_delivered: bool) -> Vec<ElectionAction> {
        let mut out = Vec::new();
        let max = self.max_notification_interval_ms;
        let Some(round) = self.round.as_mut() else {
            return out;
        };
        if let Some(deadline) = round.finalize_deadline {
            if now_ms >= deadline {
                let leader = self.proposed_leader;
                let (zxid, epoch) = (self.proposed_zxid, self.proposed_epoch);
                out.push(self.decide(leader, zxid, self.logicalclock, epoch));
            }
            return out;
        }
        if now_ms < round.poll_deadline {
            return out;
        }
        round.not_timeout = round.not_timeout.saturating_mul(2).min(max);
        round.poll_deadline = now_ms.saturating_add(round.not_timeout);
        if have_delivered {
            self.send_notifications(&mut out);
        } else {
            out.push(ElectionAction::ConnectAll);
        }
        out
    }

    /// After sync with the new leader: the peer epoch LOOKING peers are told is the new
    /// epoch (`QuorumPeer.updateElectionVote`); zxid and election epoch stay as elected.
    pub fn update_peer_epoch(&mut self, epoch: i64) {
        self.current_vote.peer_epoch = epoch;
    }

    /// When `on_tick` next has work to do, if ever (only while LOOKING).
    /// Server `sid`'s election port refused a connection: its process is down. Until it
    /// sends something, this round waits for no vote from it; a `finalizeWait` under way
    /// ends now if it was waiting for none but such voters.
    pub fn peer_down(&mut self, sid: Sid, now_ms: i64) {
        if sid == self.my_sid || !self.voters.contains(&sid) {
            return;
        }
        let Some(round) = self.round.as_mut() else {
            return;
        };
        round.down.insert(sid);
        if round.finalize_deadline.is_some() {
            let deadline = self.finalize_deadline(now_ms);
            let round = self.round_mut();
            round.finalize_deadline = round.finalize_deadline.map(|d| d.min(deadline));
        }
    }

    pub fn next_timeout(&self) -> Option<i64> {
        let round = self.round.as_ref()?;
        Some(round.finalize_deadline.unwrap_or(round.poll_deadline))
    }

    pub fn logicalclock(&self) -> i64 {
        self.logicalclock
    }

    /// `QuorumPeer.getPeerState()`.
    pub fn state(&self) -> ServerState {
        self.state
    }

    pub fn is_looking(&self) -> bool {
        self.state == ServerState::Looking
    }

    /// `QuorumPeer.getCurrentVote()`: the last decided vote, or the initial one before
    /// the first decision. While LOOKING it is still the previous round's outcome; the
    /// vote being pushed is [`Election::proposal`].
    pub fn current_vote(&self) -> Vote {
        self.current_vote
    }

    /// `FastLeaderElection.getVote()` with the round's clock: what we propose now.
    pub fn proposal(&self) -> Vote {
        Vote {
            leader: self.proposed_leader,
            zxid: self.proposed_zxid,
            election_epoch: self.logicalclock,
            peer_epoch: self.proposed_epoch,
            state: ServerState::Looking,
        }
    }

    /// One notification taken off ZooKeeper's `recvqueue` by `lookForLeader`.
    fn poll(&mut self, from: Sid, n: Notification, now_ms: i64, out: &mut Vec<ElectionAction>) {
        let proposal = (
            self.proposed_leader,
            self.proposed_zxid,
            self.proposed_epoch,
        );
        let round = self
            .round
            .as_mut()
            .expect("LOOKING after start has a round");
        round.down.remove(&from);
        if round.finalize_deadline.is_some() {
            // Draining the queue for finalizeWait: anything not better is consumed
            // unprocessed and the wait starts over; a better vote resumes the loop.
            if !total_order_predicate(
                n.leader,
                n.zxid,
                n.peer_epoch,
                proposal.0,
                proposal.1,
                proposal.2,
            ) {
                let deadline = self.finalize_deadline(now_ms);
                self.round_mut().finalize_deadline = Some(deadline);
                return;
            }
            round.finalize_deadline = None;
        }
        round.poll_deadline = now_ms.saturating_add(round.not_timeout);
        if !self.voters.contains(&from) || !self.is_voter_id(n.leader) {
            return;
        }
        match n.state {
            ServerState::Looking => self.looking_notification(from, &n, now_ms, out),
            ServerState::Observing => {}
            ServerState::Following | ServerState::Leading => {
                if let Some(decided) = self.received_following_notification(from, &n) {
                    out.push(decided);
                }
            }
        }
    }

    /// lookForLeader's `case LOOKING`.
    fn looking_notification(
        &mut self,
        from: Sid,
        n: &Notification,
        now_ms: i64,
        out: &mut Vec<ElectionAction>,
    ) {
        // -1 is the zxid of a server that could not load its database: it must not
        // take part in, or sway, an election.
        if self.init_zxid == -1 || n.zxid == -1 {
            return;
        }
        if n.election_epoch > self.logicalclock {
            // A newer round: votes of ours from the old round mean nothing, and what we
            // had adopted there is forgotten; start again from our own vote.
            self.logicalclock = n.election_epoch;
            self.round_mut().recvset.clear();
            if total_order_predicate(
                n.leader,
                n.zxid,
                n.peer_epoch,
                self.init_id,
                self.init_zxid,
                self.init_epoch,
            ) {
                self.update_proposal(n.leader, n.zxid, n.peer_epoch);
            } else {
                self.update_proposal(self.init_id, self.init_zxid, self.init_epoch);
            }
            self.send_notifications(out);
        } else if n.election_epoch < self.logicalclock {
            return;
        } else if total_order_predicate(
            n.leader,
            n.zxid,
            n.peer_epoch,
            self.proposed_leader,
            self.proposed_zxid,
            self.proposed_epoch,
        ) {
            self.update_proposal(n.leader, n.zxid, n.peer_epoch);
            self.send_notifications(out);
        }
        let vote = TallyVote {
            version: 0,
            id: n.leader,
            zxid: n.zxid,
            election_epoch: n.election_epoch,
            peer_epoch: n.peer_epoch,
            state: ServerState::Looking,
        };
        let mine = TallyVote {
            version: 0,
            id: self.proposed_leader,
            zxid: self.proposed_zxid,
            election_epoch: self.logicalclock,
            peer_epoch: self.proposed_epoch,
            state: ServerState::Looking,
        };
        self.round_mut().recvset.insert(from, vote);
        if self.has_quorum(&self.round_ref().recvset, &mine) {
            let deadline = self.finalize_deadline(now_ms);
            self.round_mut().finalize_deadline = Some(deadline);
        }
    }

    /// `receivedFollowingNotification` (LEADING adds only the 2-node oracle, which
    /// majority quorums never consult).
    fn received_following_notification(
        &mut self,
        from: Sid,
        n: &Notification,
    ) -> Option<ElectionAction> {
        let theirs = TallyVote {
            version: n.version,
            id: n.leader,
            zxid: n.zxid,
            election_epoch: n.election_epoch,
            peer_epoch: n.peer_epoch,
            state: n.state,
        };
        if n.election_epoch == self.logicalclock {
            // Same round: settled servers count alongside LOOKING ones.
            let stored = TallyVote {
                version: 0,
                ..theirs
            };
            self.round_mut().recvset.insert(from, stored);
            let recvset = &self.round_ref().recvset;
            if self.has_quorum(recvset, &theirs)
                && self.check_leader(recvset, n.leader, n.election_epoch)
            {
                return Some(self.decide(n.leader, n.zxid, n.election_epoch, n.peer_epoch));
            }
        }
        // Any round (the current one included, ZOOKEEPER-1732): a quorum already settled
        // on a leader that says it is leading is an established ensemble to join.
        self.round_mut().outofelection.insert(from, theirs);
        let outofelection = &self.round_ref().outofelection;
        if self.has_quorum(outofelection, &theirs)
            && self.check_leader(outofelection, n.leader, n.election_epoch)
        {
            self.logicalclock = n.election_epoch;
            return Some(self.decide(n.leader, n.zxid, n.election_epoch, n.peer_epoch));
        }
        None
    }

    /// `checkLeader`: followers alone do not make a leader. Unless the leader is us, it
    /// must itself have told us it is LEADING, or we would keep electing a crashed
    /// leader its old followers still name. If it is us, the votes must be of our own
    /// round, not left over from before we restarted.
    fn check_leader(
        &self,
        votes: &BTreeMap<Sid, TallyVote>,
        leader: i64,
        election_epoch: i64,
    ) -> bool {
        if leader != self.my_sid as i64 {
            match Sid::try_from(leader).ok().and_then(|s| votes.get(&s)) {
                Some(v) => v.state == ServerState::Leading,
                None => false,
            }
        } else {
            self.logicalclock == election_epoch
        }
    }

    /// `getVoteTracker(..).hasAllQuorums()` for a majority quorum of the voters.
    /// When a `finalizeWait` that starts now ends: `FINALIZE_WAIT_MS` from now, as in
    /// ZooKeeper, unless every other voter has voted in this round or is down
    /// ([`Election::peer_down`]). The wait is for a better vote from a voter not heard
    /// from; with none left that could send one, it would only delay the same decision
    /// (a leader's failover: the dead leader's port refuses at once). What the election
    /// may decide is unchanged: a decision on a quorum's votes without waiting is one a
    /// lost notification could produce in ZooKeeper too, and ZAB's epoch establishment,
    /// not the election, keeps two leaders from serving (module comment).
    fn finalize_deadline(&self, now_ms: i64) -> i64 {
        let round = self.round_ref();
        let none_left = self
            .voters
            .iter()
            .all(|v| *v == self.my_sid || round.recvset.contains_key(v) || round.down.contains(v));
        if none_left {
            now_ms
        } else {
            now_ms.saturating_add(FINALIZE_WAIT_MS)
        }
    }

    fn has_quorum(&self, votes: &BTreeMap<Sid, TallyVote>, vote: &TallyVote) -> bool {
        let acks = votes
            .iter()
            .filter(|(sid, v)| self.voters.contains(sid) && vote.same_as(v))
            .count();
        acks > self.voters.len() / 2
    }

    /// The election ends: settle into LEADING if the leader is us, else into our
    /// learning state (`setPeerState`), with the decided vote as `currentVote`.
    fn decide(
        &mut self,
        leader: i64,
        zxid: i64,
        election_epoch: i64,
        peer_epoch: i64,
    ) -> ElectionAction {
        // Every vote counted toward a quorum names a voter (the filter in `poll`), and
        // a decision needs a counted vote equal to the one decided.
        assert!(self.is_voter_id(leader), "decided on non-voter {leader}");
        let state = if leader == self.my_sid as i64 {
            ServerState::Leading
        } else {
            match self.my_type {
                LearnerType::Participant => ServerState::Following,
                LearnerType::Observer => ServerState::Observing,
            }
        };
        self.state = state;
        self.round = None;
        let vote = Vote {
            leader,
            zxid,
            election_epoch,
            peer_epoch,
            state,
        };
        self.current_vote = vote;
        ElectionAction::Decided { state, vote }
    }

    fn update_proposal(&mut self, leader: i64, zxid: i64, epoch: i64) {
        self.proposed_leader = leader;
        self.proposed_zxid = zxid;
        self.proposed_epoch = epoch;
    }

    /// `sendNotifications`: our proposal, as LOOKING, to every voter including us.
    fn send_notifications(&self, out: &mut Vec<ElectionAction>) {
        for &to in &self.voters {
            out.push(self.send(
                to,
                ServerState::Looking,
                self.proposed_leader,
                self.proposed_zxid,
                self.logicalclock,
                self.proposed_epoch,
            ));
        }
    }

    fn send(
        &self,
        to: Sid,
        state: ServerState,
        leader: i64,
        zxid: i64,
        election_epoch: i64,
        peer_epoch: i64,
    ) -> ElectionAction {
        ElectionAction::Send {
            to,
            n: Notification {
                state,
                leader,
                zxid,
                election_epoch,
                peer_epoch,
                version: Notification::CURRENT_VERSION,
                config: self.config.clone(),
            },
        }
    }

    fn is_voter_id(&self, id: i64) -> bool {
        Sid::try_from(id).is_ok_and(|s| self.voters.contains(&s))
    }

    fn round_mut(&mut self) -> &mut Round {
        self.round
            .as_mut()
            .expect("LOOKING after start has a round")
    }

    fn round_ref(&self) -> &Round {
        self.round
            .as_ref()
            .expect("LOOKING after start has a round")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ServerState::{Following, Leading, Looking, Observing};

    const CONFIG: &[u8] = b"server.1=a:2888:3888:participant\nversion=0";

    fn voters(sids: &[Sid]) -> BTreeSet<Sid> {
        sids.iter().copied().collect()
    }

    fn election(me: Sid, ty: LearnerType, voter_sids: &[Sid]) -> Election {
        Election::new(
            me,
            ty,
            voters(voter_sids),
            Bytes::from_static(CONFIG),
            MIN_NOTIFICATION_INTERVAL_MS,
            MAX_NOTIFICATION_INTERVAL_MS,
        )
    }

    fn note(state: ServerState, leader: i64, zxid: i64, ee: i64, pe: i64) -> Notification {
        Notification {
            state,
            leader,
            zxid,
            election_epoch: ee,
            peer_epoch: pe,
            version: Notification::CURRENT_VERSION,
            config: Bytes::from_static(CONFIG),
        }
    }

    fn sends(actions: &[ElectionAction]) -> Vec<(Sid, Notification)> {
        actions
            .iter()
            .filter_map(|a| match a {
                ElectionAction::Send { to, n } => Some((*to, n.clone())),
                _ => None,
            })
            .collect()
    }

    fn decided(actions: &[ElectionAction]) -> Option<(ServerState, Vote)> {
        actions.iter().find_map(|a| match a {
            ElectionAction::Decided { state, vote } => Some((*state, *vote)),
            _ => None,
        })
    }

    /// Run `f` and feed our own loopback sends back in, as the runtime does; returns
    /// everything else.
    fn with_loopback(
        e: &mut Election,
        now: i64,
        f: impl FnOnce(&mut Election) -> Vec<ElectionAction>,
    ) -> Vec<ElectionAction> {
        let me = e.my_sid;
        let mut out = Vec::new();
        let mut todo: VecDeque<ElectionAction> = f(e).into();
        while let Some(a) = todo.pop_front() {
            match a {
                ElectionAction::Send { to, n } if to == me => {
                    todo.extend(e.on_notification(me, n, now));
                }
                other => out.push(other),
            }
        }
        out
    }

    // ---- comparison and equality ----

    #[test]
    fn total_order_is_peer_epoch_then_zxid_then_sid_signed() {
        // A higher epoch wins over any zxid and sid.
        assert!(total_order_predicate(1, 0, 2, 9, i64::MAX, 1));
        // Same epoch: zxid decides, regardless of sid.
        assert!(total_order_predicate(
            1,
            0x1_0000_0002,
            1,
            9,
            0x1_0000_0001,
            1
        ));
        assert!(!total_order_predicate(
            9,
            0x1_0000_0001,
            1,
            1,
            0x1_0000_0002,
            1
        ));
        // Same epoch and zxid: sid decides; an identical vote does not win.
        assert!(total_order_predicate(3, 7, 1, 2, 7, 1));
        assert!(!total_order_predicate(3, 7, 1, 3, 7, 1));
        // Signed: an observer's i64::MIN proposal loses to anything.
        assert!(total_order_predicate(
            1,
            -1,
            0,
            i64::MIN,
            i64::MIN,
            i64::MIN
        ));
        assert!(!total_order_predicate(
            i64::MIN,
            i64::MIN,
            i64::MIN,
            1,
            -1,
            -1
        ));
    }

    fn tv(version: i32, id: i64, zxid: i64, ee: i64, pe: i64, state: ServerState) -> TallyVote {
        TallyVote {
            version,
            id,
            zxid,
            election_epoch: ee,
            peer_epoch: pe,
            state,
        }
    }

    #[test]
    fn vote_equality_follows_zookeeper() {
        // LOOKING on either side: id, zxid, election epoch and peer epoch all count.
        let a = tv(0, 3, 10, 1, 1, Looking);
        assert!(a.same_as(&tv(2, 3, 10, 1, 1, Following)));
        assert!(!a.same_as(&tv(0, 3, 11, 1, 1, Looking)));
        assert!(!a.same_as(&tv(0, 3, 10, 2, 1, Looking)));
        assert!(!a.same_as(&tv(0, 3, 10, 1, 2, Following)));
        // Settled, same versioning: id and peer epoch only.
        let f = tv(2, 3, 10, 1, 5, Following);
        assert!(f.same_as(&tv(2, 3, 99, 7, 5, Leading)));
        assert!(!f.same_as(&tv(2, 3, 10, 1, 6, Leading)));
        assert!(!f.same_as(&tv(2, 4, 10, 1, 5, Leading)));
        assert!(tv(0, 3, 1, 1, 5, Following).same_as(&tv(0, 3, 2, 2, 5, Leading)));
        // Settled, exactly one side version 0: id only.
        assert!(f.same_as(&tv(0, 3, 10, 1, 6, Leading)));
        assert!(!f.same_as(&tv(0, 4, 10, 1, 5, Leading)));
    }

    // ---- starting a round ----

    #[test]
    fn start_proposes_self_to_every_voter_including_self() {
        let mut e = election(2, LearnerType::Participant, &[1, 2, 3]);
        let out = e.start(0x1_0000_0007, 1, 0);
        assert_eq!(e.logicalclock(), 1);
        assert!(e.is_looking());
        let s = sends(&out);
        assert_eq!(
            s.iter().map(|(to, _)| *to).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        for (_, n) in &s {
            assert_eq!(*n, note(Looking, 2, 0x1_0000_0007, 1, 1));
        }
        assert_eq!(e.next_timeout(), Some(MIN_NOTIFICATION_INTERVAL_MS));
        // Each round bumps the clock.
        e.start(0x1_0000_0007, 1, 10);
        assert_eq!(e.logicalclock(), 2);
    }

    #[test]
    fn observer_proposes_min_and_does_not_send_to_itself() {
        let mut e = election(4, LearnerType::Observer, &[1, 2, 3]);
        let s = sends(&e.start(0x1_0000_0007, 1, 0));
        assert_eq!(
            s.iter().map(|(to, _)| *to).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        for (_, n) in &s {
            assert_eq!(*n, note(Looking, i64::MIN, i64::MIN, 1, i64::MIN));
        }
        // But what it tells non-voters before deciding is startLeaderElection's vote.
        assert_eq!(e.current_vote().leader, 4);
    }

    // ---- receive-side rules (WorkerReceiver) ----

    #[test]
    fn non_voter_gets_current_vote_at_once_and_is_not_counted() {
        let mut e = election(1, LearnerType::Participant, &[1, 2, 3]);
        let out = with_loopback(&mut e, 0, |e| e.start(0x1_0000_0005, 1, 0));
        assert!(decided(&out).is_none());
        // An observer (sid 9) proposing us, in our round: answered with currentVote and
        // our clock, never tallied, so our own vote stays a minority of one.
        let n9 = note(Looking, 1, 0x1_0000_0005, 1, 1);
        for t in [10, 20, 30] {
            let out = e.on_notification(9, n9.clone(), t);
            assert_eq!(
                out,
                vec![ElectionAction::Send {
                    to: 9,
                    n: note(Looking, 1, 0x1_0000_0005, 1, 1)
                }]
            );
        }
        // Non-voter traffic is not taken off the queue: it does not push back the poll.
        assert_eq!(e.next_timeout(), Some(MIN_NOTIFICATION_INTERVAL_MS));
        assert!(decided(&e.on_tick(30 + FINALIZE_WAIT_MS, false)).is_none());
        assert!(e.is_looking());
        assert_eq!(e.round_ref().recvset.len(), 1);
        // A voter agreeing makes the quorum.
        with_loopback(&mut e, 240, |e| e.on_notification(2, n9.clone(), 240));
        assert_eq!(e.next_timeout(), Some(240 + FINALIZE_WAIT_MS));
    }

    #[test]
    fn settled_server_answers_non_voter_with_its_state_and_logicalclock() {
        let mut e = settled_follower();
        let out = e.on_notification(9, note(Looking, i64::MIN, i64::MIN, 1, i64::MIN), 0);
        assert_eq!(
            sends(&out),
            vec![(9, note(Following, 3, 0x1_0000_0009, 1, 1))]
        );
        // Even a settled non-voter sender is answered: the rule looks at the sender only.
        let out = e.on_notification(9, note(Observing, 3, 0x1_0000_0009, 1, 1), 0);
        assert_eq!(sends(&out).len(), 1);
    }

    /// Server 1 of {1,2,3}, FOLLOWING 3 after round 1.
    fn settled_follower() -> Election {
        let mut e = election(1, LearnerType::Participant, &[1, 2, 3]);
        with_loopback(&mut e, 0, |e| e.start(0x1_0000_0005, 1, 0));
        e.on_notification(3, note(Leading, 3, 0x1_0000_0009, 1, 1), 5);
        let out = e.on_notification(2, note(Following, 3, 0x1_0000_0009, 1, 1), 5);
        assert_eq!(decided(&out).map(|d| d.0), Some(Following));
        e
    }

    #[test]
    fn looking_server_answers_lagging_looking_sender_with_its_proposal() {
        let mut e = election(1, LearnerType::Participant, &[1, 2, 3]);
        for t in 0..3 {
            e.start(0x1_0000_0005, 1, t);
        }
        assert_eq!(e.logicalclock(), 3);
        // Sender 2 is in round 1 with a better vote: it gets our round-3 proposal, and
        // its stale vote changes nothing.
        let out = e.on_notification(2, note(Looking, 2, 0x1_0000_0009, 1, 1), 10);
        assert_eq!(
            out,
            vec![ElectionAction::Send {
                to: 2,
                n: note(Looking, 1, 0x1_0000_0005, 3, 1)
            }]
        );
        assert_eq!(e.proposal().leader, 1);
        assert!(e.round_ref().recvset.is_empty());
        // A same-round sender with a worse vote gets no answer.
        let out = e.on_notification(2, note(Looking, 1, 0x1_0000_0001, 3, 1), 10);
        assert_eq!(out, vec![]);
        // A lagging settled sender is not answered, and it does not count here.
        let out = e.on_notification(2, note(Following, 3, 0x1_0000_0001, 1, 1), 10);
        assert_eq!(out, vec![]);
    }

    #[test]
    fn settled_server_answers_looking_senders_only_with_its_current_vote() {
        let mut e = settled_follower();
        assert!(!e.is_looking());
        assert_eq!(e.state(), Following);
        assert_eq!(
            e.current_vote(),
            Vote {
                leader: 3,
                zxid: 0x1_0000_0009,
                election_epoch: 1,
                peer_epoch: 1,
                state: Following
            }
        );
        // A LOOKING sender, whatever its round, gets currentVote with its election epoch.
        let out = e.on_notification(2, note(Looking, 2, 0x1_0000_0002, 7, 1), 100);
        assert_eq!(
            out,
            vec![ElectionAction::Send {
                to: 2,
                n: note(Following, 3, 0x1_0000_0009, 1, 1)
            }]
        );
        // After sync the peer epoch is the new epoch; the zxid stays the elected one.
        e.update_peer_epoch(2);
        let out = e.on_notification(2, note(Looking, 2, 0x1_0000_0002, 7, 1), 100);
        assert_eq!(
            sends(&out),
            vec![(2, note(Following, 3, 0x1_0000_0009, 1, 2))]
        );
        // Settled senders get nothing, and nothing changes.
        for st in [Following, Leading, Observing] {
            assert_eq!(e.on_notification(2, note(st, 2, 5, 9, 9), 100), vec![]);
        }
        assert_eq!(e.state(), Following);
        assert_eq!(e.on_tick(1_000_000, true), vec![]);
        assert_eq!(e.next_timeout(), None);
    }

    // ---- lookForLeader's filters and LOOKING rules ----

    #[test]
    fn notifications_naming_or_from_non_voters_are_not_processed() {
        let mut e = election(1, LearnerType::Participant, &[1, 2, 3]);
        e.start(0x1_0000_0005, 1, 0);
        // A voter proposing a non-voter with a huge epoch: ignored, no adoption.
        assert_eq!(
            e.on_notification(2, note(Looking, 9, 0, 1, 1_000), 10),
            vec![]
        );
        assert_eq!(
            e.on_notification(2, note(Looking, -5, 0, 1, 1_000), 10),
            vec![]
        );
        assert_eq!(
            e.on_notification(2, note(Leading, 9, 0, 1, 1_000), 10),
            vec![]
        );
        assert_eq!(e.proposal().leader, 1);
        assert!(e.round_ref().recvset.is_empty());
        assert!(e.round_ref().outofelection.is_empty());
        // But it was taken off the queue, so the poll timer restarted.
        assert_eq!(e.next_timeout(), Some(10 + MIN_NOTIFICATION_INTERVAL_MS));
        // An OBSERVING sender is ignored too: not adopted, not tallied.
        assert_eq!(
            e.on_notification(2, note(Observing, 3, 9, 1, 9), 10),
            vec![]
        );
        assert_eq!(e.proposal().leader, 1);
        assert!(e.round_ref().recvset.is_empty());
        assert!(e.round_ref().outofelection.is_empty());
    }

    #[test]
    fn minus_one_zxids_keep_out_of_looking_votes() {
        // Our own zxid is -1: LOOKING votes are ignored entirely.
        let mut e = election(1, LearnerType::Participant, &[1, 2, 3]);
        with_loopback(&mut e, 0, |e| e.start(-1, 0, 0));
        assert!(e.round_ref().recvset.is_empty());
        assert_eq!(e.on_notification(2, note(Looking, 3, 5, 1, 1), 1), vec![]);
        assert_eq!(e.on_notification(2, note(Looking, 3, 5, 9, 1), 1), vec![]);
        assert_eq!(e.logicalclock(), 1);
        // ... yet it can still join an established leader.
        e.on_notification(3, note(Leading, 3, 5, 4, 1), 2);
        let out = e.on_notification(2, note(Following, 3, 5, 4, 1), 2);
        assert_eq!(
            decided(&out).map(|d| (d.0, d.1.leader)),
            Some((Following, 3))
        );

        // A sender with zxid -1 is ignored, however good it looks otherwise.
        let mut e = election(1, LearnerType::Participant, &[1, 2, 3]);
        e.start(0x1_0000_0005, 1, 0);
        assert_eq!(e.on_notification(2, note(Looking, 3, -1, 5, 99), 1), vec![]);
        assert_eq!((e.logicalclock(), e.proposal().leader), (1, 1));
    }

    #[test]
    fn newer_round_adopts_clock_clears_recvset_and_restarts_from_own_vote() {
        // Five voters, so that two votes for 3 are no quorum (no finalizeWait).
        let mut e = election(1, LearnerType::Participant, &[1, 2, 3, 4, 5]);
        with_loopback(&mut e, 0, |e| e.start(0x1_0000_0005, 1, 0));
        // Round 1: adopt 3's better vote.
        let out = with_loopback(&mut e, 1, |e| {
            e.on_notification(3, note(Looking, 3, 0x1_0000_0009, 1, 1), 1)
        });
        assert_eq!(sends(&out).len(), 4);
        assert_eq!(e.proposal().leader, 3);
        // Round 2 from 2 with a vote worse than 3's: it is compared with our *initial*
        // vote, which it beats, so 2 is adopted (what we adopted in round 1 is gone).
        let out = e.on_notification(2, note(Looking, 2, 0x1_0000_0007, 2, 1), 2);
        assert_eq!((e.logicalclock(), e.proposal().leader), (2, 2));
        let s = sends(&out);
        assert_eq!(s.len(), 5);
        assert!(s
            .iter()
            .all(|(_, n)| *n == note(Looking, 2, 0x1_0000_0007, 2, 1)));
        // recvset was cleared, then holds only 2's round-2 vote.
        let recvset = &e.round_ref().recvset;
        assert_eq!(recvset.keys().copied().collect::<Vec<_>>(), vec![2]);
        assert_eq!(recvset[&2].election_epoch, 2);
        // Round 3 with a vote our initial one beats: back to proposing ourselves.
        let out = e.on_notification(3, note(Looking, 3, 0x1_0000_0004, 3, 1), 3);
        assert_eq!((e.logicalclock(), e.proposal().leader), (3, 1));
        assert!(sends(&out)
            .iter()
            .all(|(_, n)| *n == note(Looking, 1, 0x1_0000_0005, 3, 1)));
    }

    // ---- finalizeWait ----

    /// Server 2 of {1,2,3} with 1 agreeing on 2 at t=10: in finalizeWait until 210.
    fn in_finalize_wait() -> Election {
        let mut e = election(2, LearnerType::Participant, &[1, 2, 3]);
        with_loopback(&mut e, 0, |e| e.start(0x1_0000_0005, 1, 0));
        assert_eq!(e.next_timeout(), Some(MIN_NOTIFICATION_INTERVAL_MS));
        let out = e.on_notification(1, note(Looking, 2, 0x1_0000_0005, 1, 1), 10);
        assert_eq!(out, vec![]);
        assert_eq!(e.next_timeout(), Some(10 + FINALIZE_WAIT_MS));
        e
    }

    /// A leader's failover: server 2 of {1,2,3}, 3 (the old leader) down. With 3's port
    /// refusing before the quorum forms, the election decides at once; refused during
    /// the wait, the wait ends then. Either way the same vote as after 200 ms.
    #[test]
    fn finalize_wait_is_skipped_when_every_voter_not_heard_from_is_down() {
        let want = Vote {
            leader: 2,
            zxid: 0x1_0000_0005,
            election_epoch: 1,
            peer_epoch: 1,
            state: Leading,
        };
        // Down first, then the quorum.
        let mut e = election(2, LearnerType::Participant, &[1, 2, 3]);
        with_loopback(&mut e, 0, |e| e.start(0x1_0000_0005, 1, 0));
        e.peer_down(3, 5);
        e.on_notification(1, note(Looking, 2, 0x1_0000_0005, 1, 1), 10);
        assert_eq!(e.next_timeout(), Some(10));
        assert_eq!(decided(&e.on_tick(10, true)), Some((Leading, want)));
        // The quorum first, then down during the wait.
        let mut e = in_finalize_wait();
        e.peer_down(3, 50);
        assert_eq!(e.next_timeout(), Some(50));
        assert_eq!(decided(&e.on_tick(50, true)), Some((Leading, want)));
    }

    /// What does not skip the wait: a voter that is down but not the only one missing
    /// (five voters), one that has sent something since it was refused, a refusal from
    /// an earlier round, and a non-voter's or our own sid.
    #[test]
    fn finalize_wait_stays_while_a_voter_could_still_send_a_better_vote() {
        let mut e = election(1, LearnerType::Participant, &[1, 2, 3, 4, 5]);
        with_loopback(&mut e, 0, |e| e.start(0x1_0000_0009, 1, 0));
        e.peer_down(5, 1);
        e.on_notification(2, note(Looking, 1, 0x1_0000_0009, 1, 1), 10);
        e.on_notification(3, note(Looking, 1, 0x1_0000_0009, 1, 1), 11);
        assert_eq!(
            e.next_timeout(),
            Some(11 + FINALIZE_WAIT_MS),
            "4 not heard from"
        );
        // 4 refused too: nobody left, the wait ends.
        e.peer_down(4, 20);
        assert_eq!(e.next_timeout(), Some(20));

        // Refused, then heard from (it came back): no longer counted as down.
        let mut e = in_finalize_wait();
        e.peer_down(3, 20);
        let mut e2 = in_finalize_wait();
        e2.on_notification(3, note(Looking, 3, 0x1_0000_0001, 1, 1), 30);
        e2.peer_down(7, 31);
        e2.peer_down(2, 31);
        assert_eq!(e2.next_timeout(), Some(30 + FINALIZE_WAIT_MS));
        assert_eq!(e.next_timeout(), Some(20));

        // A refusal belongs to its round.
        let mut e = election(2, LearnerType::Participant, &[1, 2, 3]);
        with_loopback(&mut e, 0, |e| e.start(0x1_0000_0005, 1, 0));
        e.peer_down(3, 5);
        with_loopback(&mut e, 6, |e| e.start(0x1_0000_0005, 1, 6));
        e.on_notification(1, note(Looking, 2, 0x1_0000_0005, e.logicalclock(), 1), 10);
        assert_eq!(e.next_timeout(), Some(10 + FINALIZE_WAIT_MS));
    }

    #[test]
    fn quorum_unchallenged_for_finalize_wait_decides() {
        let mut e = in_finalize_wait();
        assert_eq!(e.on_tick(209, true), vec![]);
        assert!(e.is_looking());
        let out = e.on_tick(210, true);
        let vote = Vote {
            leader: 2,
            zxid: 0x1_0000_0005,
            election_epoch: 1,
            peer_epoch: 1,
            state: Leading,
        };
        assert_eq!(
            out,
            vec![ElectionAction::Decided {
                state: Leading,
                vote
            }]
        );
        assert_eq!((e.state(), e.current_vote()), (Leading, vote));
        assert_eq!(e.next_timeout(), None);
    }

    #[test]
    fn worse_vote_during_finalize_wait_is_consumed_and_restarts_the_wait() {
        let mut e = in_finalize_wait();
        // 3 proposes itself but with a lower zxid: not better, not even recorded.
        assert_eq!(
            e.on_notification(3, note(Looking, 3, 0x1_0000_0001, 1, 1), 100),
            vec![]
        );
        assert!(!e.round_ref().recvset.contains_key(&3));
        // So is a newer round's notification that is not better: ZooKeeper's drain
        // loop compares votes only, not rounds.
        assert_eq!(e.on_notification(1, note(Looking, 1, 5, 2, 1), 100), vec![]);
        assert_eq!(e.logicalclock(), 1);
        assert_eq!(e.on_tick(210, true), vec![]);
        assert_eq!(e.next_timeout(), Some(300));
        assert_eq!(decided(&e.on_tick(300, true)).map(|d| d.0), Some(Leading));
    }

    #[test]
    fn better_vote_during_finalize_wait_changes_the_outcome() {
        let mut e = in_finalize_wait();
        let out = e.on_notification(3, note(Looking, 3, 0x1_0000_0005, 1, 1), 100);
        // The loop resumes: 3 is adopted and announced.
        assert_eq!(e.proposal().leader, 3);
        assert_eq!(sends(&out).len(), 3);
        let out = with_loopback(&mut e, 100, |_| out);
        assert!(decided(&out).is_none());
        // Our own (now 3) vote and 3's make a quorum for 3; 1's stale vote for 2 does not
        // count. Every voter has voted in this round, so no better vote can come (each
        // one's own vote is at most its current one, and 3's is the best of those): no
        // finalizeWait, where ZooKeeper would wait until 300.
        assert_eq!(e.next_timeout(), Some(100));
        let (state, vote) = decided(&e.on_tick(100, true)).unwrap();
        assert_eq!((state, vote.leader, vote.election_epoch), (Following, 3, 1));
    }

    // ---- learning the leader from FOLLOWING/LEADING peers ----

    #[test]
    fn same_round_settled_votes_decide_once_the_leader_says_it_leads() {
        let mut e = election(1, LearnerType::Participant, &[1, 2, 3, 4, 5]);
        with_loopback(&mut e, 0, |e| e.start(0x1_0000_0001, 1, 0));
        for s in [2, 3, 4] {
            let out = e.on_notification(s, note(Following, 5, 0x1_0000_0009, 1, 1), 1);
            assert_eq!(out, vec![]);
        }
        // A quorum names 5 in our round, but 5 has not said it leads.
        assert!(e.is_looking());
        let out = e.on_notification(5, note(Leading, 5, 0x1_0000_0009, 1, 1), 2);
        assert_eq!(
            decided(&out),
            Some((
                Following,
                Vote {
                    leader: 5,
                    zxid: 0x1_0000_0009,
                    election_epoch: 1,
                    peer_epoch: 1,
                    state: Following
                }
            ))
        );
    }

    #[test]
    fn everyone_else_naming_us_in_our_round_makes_us_leader() {
        let mut e = election(3, LearnerType::Participant, &[1, 2, 3]);
        e.start(0x1_0000_0009, 1, 0);
        e.on_notification(1, note(Following, 3, 0x1_0000_0009, 1, 1), 1);
        let out = e.on_notification(2, note(Following, 3, 0x1_0000_0009, 1, 1), 1);
        assert_eq!(decided(&out).map(|d| (d.0, d.1.leader)), Some((Leading, 3)));
    }

    #[test]
    fn restarted_former_leader_ignores_followers_of_an_older_round() {
        // 1 and 2 still follow 3 from round 5; 3 restarted and is in round 1. checkLeader
        // wants our clock to be that round, so 3 does not lead on their word.
        let mut e = election(3, LearnerType::Participant, &[1, 2, 3]);
        with_loopback(&mut e, 0, |e| e.start(0x1_0000_0009, 1, 0));
        for s in [1, 2] {
            assert_eq!(
                e.on_notification(s, note(Following, 3, 0x1_0000_0009, 5, 2), 1),
                vec![]
            );
        }
        assert_eq!(e.round_ref().outofelection.len(), 2);
        assert!(e.is_looking());
        assert_eq!(e.logicalclock(), 1);
    }

    #[test]
    fn out_of_election_quorum_needs_matching_peer_epochs() {
        // 2 synced (peer epoch 2), 4 not yet (still 1): they do not agree, so no quorum
        // for 3 although 3 says it leads.
        let mut e = election(1, LearnerType::Participant, &[1, 2, 3, 4, 5]);
        e.start(0x1_0000_0001, 1, 0);
        e.on_notification(3, note(Leading, 3, 0x1_0000_0009, 4, 2), 1);
        e.on_notification(2, note(Following, 3, 0x1_0000_0009, 4, 2), 1);
        let out = e.on_notification(4, note(Following, 3, 0x1_0000_0009, 4, 1), 1);
        assert!(decided(&out).is_none());
        // 4's next notification after its sync agrees.
        let out = e.on_notification(4, note(Following, 3, 0x1_0000_0009, 4, 2), 2);
        let (state, vote) = decided(&out).unwrap();
        assert_eq!((state, vote.leader, vote.peer_epoch), (Following, 3, 2));
        assert_eq!(e.logicalclock(), 4);
    }

    // ---- timers ----

    #[test]
    fn poll_timeout_resends_or_connects_with_exponential_backoff() {
        let mut e = Election::new(
            1,
            LearnerType::Participant,
            voters(&[1, 2, 3]),
            Bytes::from_static(CONFIG),
            200,
            1000,
        );
        e.start(5, 1, 0);
        assert_eq!(e.on_tick(199, true), vec![]);
        let out = e.on_tick(200, true);
        assert_eq!(sends(&out).len(), 3);
        assert!(sends(&out)
            .iter()
            .all(|(_, n)| *n == note(Looking, 1, 5, 1, 1)));
        assert_eq!(e.next_timeout(), Some(600));
        // A notification restarts the poll with the current (doubled) timeout.
        e.on_notification(2, note(Looking, 1, 0, 1, 0), 500);
        assert_eq!(e.next_timeout(), Some(900));
        assert_eq!(e.on_tick(900, false), vec![ElectionAction::ConnectAll]);
        assert_eq!(e.next_timeout(), Some(900 + 800));
        e.on_tick(1700, false);
        assert_eq!(e.next_timeout(), Some(1700 + 1000));
        e.on_tick(2700, false);
        assert_eq!(e.next_timeout(), Some(2700 + 1000));
        // A new round starts from the minimum again.
        e.start(5, 1, 3000);
        assert_eq!(e.next_timeout(), Some(3200));
    }

    // ---- hostile and early input ----

    #[test]
    fn hostile_notifications_do_not_panic() {
        let weird = [
            note(Looking, i64::MAX, i64::MAX, i64::MAX, i64::MAX),
            note(Looking, 2, i64::MIN, i64::MAX, i64::MIN),
            note(Looking, i64::MIN, 0, i64::MIN, 0),
            note(Leading, 2, i64::MAX, i64::MIN, i64::MAX),
            note(Following, 2, 0, i64::MAX, -1),
        ];
        for ty in [LearnerType::Participant, LearnerType::Observer] {
            let me = if ty == LearnerType::Participant { 1 } else { 4 };
            let mut e = election(me, ty, &[1, 2, 3]);
            e.start(5, 1, 0);
            for (i, n) in weird.iter().cycle().take(50).enumerate() {
                for from in [0, 1, 2, 3, 4, 9, u64::MAX] {
                    let t = i as i64;
                    e.on_notification(from, n.clone(), t);
                    e.on_tick(t, i % 2 == 0);
                    if !e.is_looking() {
                        // Settled on a peer's word, as ZooKeeper would; look again.
                        assert!(e.current_vote().leader_sid().is_some());
                        e.start(5, 1, t);
                    }
                }
            }
        }
        // A peer can push our clock to i64::MAX; the next round wraps as ZooKeeper's
        // AtomicLong does, and timers saturate.
        let mut e = election(1, LearnerType::Participant, &[1, 2, 3]);
        e.start(5, 1, 0);
        e.on_notification(2, note(Looking, 2, 5, i64::MAX, 1), 1);
        assert_eq!(e.logicalclock(), i64::MAX);
        e.start(5, 1, i64::MAX - 1);
        assert_eq!(e.logicalclock(), i64::MIN);
        assert_eq!(e.next_timeout(), Some(i64::MAX));
        e.on_tick(i64::MAX, true);
    }

    #[test]
    fn notifications_before_start_are_processed_by_the_first_round() {
        let mut e = election(1, LearnerType::Participant, &[1, 2, 3]);
        assert_eq!(e.on_notification(3, note(Leading, 3, 9, 4, 1), 0), vec![]);
        assert_eq!(e.on_notification(2, note(Following, 3, 9, 4, 1), 0), vec![]);
        assert_eq!(e.on_tick(10_000, true), vec![]);
        let out = e.start(5, 1, 10);
        assert_eq!(
            decided(&out).map(|d| (d.0, d.1.leader)),
            Some((Following, 3))
        );
        // The buffer is bounded: the oldest go.
        let mut e = election(1, LearnerType::Participant, &[1, 2, 3]);
        for i in 0..(PRE_START_CAPACITY as i64 + 50) {
            e.on_notification(2, note(Looking, 2, i, 1, 1), 0);
        }
        assert_eq!(e.pre_start.len(), PRE_START_CAPACITY);
        assert_eq!(e.pre_start[0].1.zxid, 50);
    }

    // ---- a seeded network of several servers ----

    /// splitmix64: a small, fixed generator so every seed replays identically.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        fn range(&mut self, lo: i64, hi: i64) -> i64 {
            lo + self.below((hi - lo + 1) as u64) as i64
        }

        fn chance(&mut self, permille: u64) -> bool {
            self.below(1000) < permille
        }
    }

    #[derive(Clone, Copy)]
    struct NetConfig {
        min_delay: i64,
        max_delay: i64,
        /// A delivered message is delivered once more, later (a reconnect re-sending
        /// `lastMessageSent`).
        dup_permille: u64,
        /// A new message on a link evicts the one still queued on it (SEND_CAPACITY = 1).
        supersede_permille: u64,
        /// Any message is lost (a connection breaking under it).
        loss_permille: u64,
    }

    const RELIABLE: NetConfig = NetConfig {
        min_delay: 1,
        max_delay: 20,
        dup_permille: 0,
        supersede_permille: 0,
        loss_permille: 0,
    };

    struct Msg {
        at: i64,
        seq: u64,
        from: Sid,
        to: Sid,
        n: Notification,
    }

    struct Node {
        e: Election,
        zxid: i64,
        epoch: i64,
        ty: LearnerType,
    }

    #[derive(Debug, Clone, Copy)]
    struct Decision {
        sid: Sid,
        at: i64,
        state: ServerState,
        vote: Vote,
    }

    struct Sim {
        now: i64,
        rng: Rng,
        net: NetConfig,
        voters: BTreeSet<Sid>,
        nodes: BTreeMap<Sid, Node>,
        inflight: Vec<Msg>,
        /// Cut off from every other server (its loopback still works).
        isolated: BTreeSet<Sid>,
        decisions: Vec<Decision>,
        sent: Vec<(Sid, Sid, Notification)>,
        connect_alls: BTreeMap<Sid, Vec<i64>>,
    }

    impl Sim {
        /// `servers`: (sid, type, last logged zxid, current epoch).
        fn new(seed: u64, net: NetConfig, servers: &[(Sid, LearnerType, i64, i64)]) -> Sim {
            let voters: BTreeSet<Sid> = servers
                .iter()
                .filter(|s| s.1 == LearnerType::Participant)
                .map(|s| s.0)
                .collect();
            let mut sim = Sim {
                now: 0,
                rng: Rng(seed),
                net,
                voters,
                nodes: BTreeMap::new(),
                inflight: Vec::new(),
                isolated: BTreeSet::new(),
                decisions: Vec::new(),
                sent: Vec::new(),
                connect_alls: BTreeMap::new(),
            };
            for &(sid, ty, zxid, epoch) in servers {
                sim.add(sid, ty, zxid, epoch);
            }
            sim
        }

        /// A (re)booted server: a fresh election, not started.
        fn add(&mut self, sid: Sid, ty: LearnerType, zxid: i64, epoch: i64) {
            let e = Election::new(
                sid,
                ty,
                self.voters.clone(),
                Bytes::from_static(CONFIG),
                MIN_NOTIFICATION_INTERVAL_MS,
                MAX_NOTIFICATION_INTERVAL_MS,
            );
            self.nodes.insert(sid, Node { e, zxid, epoch, ty });
        }

        fn start(&mut self, sid: Sid) {
            let node = self.nodes.get_mut(&sid).unwrap();
            let out = node.e.start(node.zxid, node.epoch, self.now);
            self.apply(sid, out);
        }

        fn start_all_in_random_order(&mut self) {
            let mut sids: Vec<Sid> = self.nodes.keys().copied().collect();
            while !sids.is_empty() {
                let i = self.rng.below(sids.len() as u64) as usize;
                let sid = sids.swap_remove(i);
                self.start(sid);
            }
        }

        fn apply(&mut self, from: Sid, actions: Vec<ElectionAction>) {
            for a in actions {
                match a {
                    ElectionAction::Send { to, n } => {
                        self.sent.push((from, to, n.clone()));
                        if to == from {
                            let node = self.nodes.get_mut(&from).unwrap();
                            let out = node.e.on_notification(from, n, self.now);
                            self.apply(from, out);
                        } else {
                            self.enqueue(from, to, n);
                        }
                    }
                    ElectionAction::ConnectAll => {
                        self.connect_alls.entry(from).or_default().push(self.now)
                    }
                    ElectionAction::Decided { state, vote } => self.decisions.push(Decision {
                        sid: from,
                        at: self.now,
                        state,
                        vote,
                    }),
                }
            }
        }

        fn enqueue(&mut self, from: Sid, to: Sid, n: Notification) {
            if self.isolated.contains(&from) || self.isolated.contains(&to) {
                return;
            }
            if self.rng.chance(self.net.loss_permille) {
                return;
            }
            if self.rng.chance(self.net.supersede_permille) {
                if let Some(i) = self
                    .inflight
                    .iter()
                    .position(|m| m.from == from && m.to == to)
                {
                    self.inflight.remove(i);
                }
            }
            let at = self.now + self.rng.range(self.net.min_delay, self.net.max_delay);
            let seq = self.rng.next();
            self.inflight.push(Msg {
                at,
                seq,
                from,
                to,
                n,
            });
        }

        /// Runs the next event at or before `limit`; false if there is none.
        fn step(&mut self, limit: i64) -> bool {
            let msg = self
                .inflight
                .iter()
                .enumerate()
                .min_by_key(|(_, m)| (m.at, m.seq))
                .map(|(i, m)| (m.at, i));
            let timer = self
                .nodes
                .iter()
                .filter_map(|(sid, node)| node.e.next_timeout().map(|t| (t, *sid)))
                .min();
            let msg_first = match (msg, timer) {
                (Some((at, _)), Some((t, _))) => at <= t,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => return false,
            };
            if let (true, Some((at, i))) = (msg_first, msg) {
                if at > limit {
                    return false;
                }
                let m = self.inflight.remove(i);
                self.now = self.now.max(m.at);
                if self.rng.chance(self.net.dup_permille) {
                    self.enqueue(m.from, m.to, m.n.clone());
                }
                if self.isolated.contains(&m.from) || self.isolated.contains(&m.to) {
                    return true;
                }
                if let Some(node) = self.nodes.get_mut(&m.to) {
                    let out = node.e.on_notification(m.from, m.n, self.now);
                    self.apply(m.to, out);
                }
            } else if let Some((t, sid)) = timer {
                if t > limit {
                    return false;
                }
                self.now = self.now.max(t);
                let delivered = !self.isolated.contains(&sid);
                let node = self.nodes.get_mut(&sid).unwrap();
                let out = node.e.on_tick(self.now, delivered);
                self.apply(sid, out);
            }
            true
        }

        fn run_until(&mut self, limit: i64) {
            let mut steps = 0;
            while self.step(limit) {
                steps += 1;
                assert!(steps < 1_000_000, "runaway simulation");
            }
            self.now = self.now.max(limit);
        }

        /// The latest decision of `sid`.
        fn decision(&self, sid: Sid) -> Option<Decision> {
            self.decisions.iter().rev().find(|d| d.sid == sid).copied()
        }

        /// Everyone decided, on `leader`: it LEADING, voters FOLLOWING, observers OBSERVING,
        /// each once, and the vote is the leader's own.
        fn assert_all_decided_on(&self, leader: Sid) {
            let l = &self.nodes[&leader];
            for (&sid, node) in &self.nodes {
                let ds: Vec<_> = self.decisions.iter().filter(|d| d.sid == sid).collect();
                assert_eq!(ds.len(), 1, "server {sid} decisions: {ds:?}");
                let d = ds[0];
                let want = match (sid == leader, node.ty) {
                    (true, _) => Leading,
                    (false, LearnerType::Participant) => Following,
                    (false, LearnerType::Observer) => Observing,
                };
                assert_eq!(d.state, want, "server {sid}");
                assert_eq!(
                    (d.vote.leader, d.vote.zxid, d.vote.peer_epoch),
                    (leader as i64, l.zxid, l.epoch),
                    "server {sid}"
                );
                assert_eq!(node.e.state(), want);
                assert_eq!(node.e.current_vote(), d.vote);
            }
        }
    }

    fn participants(specs: &[(Sid, i64, i64)]) -> Vec<(Sid, LearnerType, i64, i64)> {
        specs
            .iter()
            .map(|&(sid, zxid, epoch)| (sid, LearnerType::Participant, zxid, epoch))
            .collect()
    }

    #[test]
    fn three_and_five_voters_elect_the_highest_sid() {
        for n in [3u64, 5] {
            for seed in 0..20 {
                let specs: Vec<_> = (1..=n).map(|s| (s, 0x1_0000_0010, 1)).collect();
                let mut sim = Sim::new(seed, RELIABLE, &participants(&specs));
                sim.start_all_in_random_order();
                sim.run_until(10_000);
                sim.assert_all_decided_on(n);
                assert!(sim.decisions.iter().all(|d| d.vote.election_epoch == 1));
            }
        }
    }

    #[test]
    fn highest_zxid_wins_over_higher_sid() {
        for seed in 0..20 {
            let specs = [
                (1, 0x1_0000_0010, 1),
                (2, 0x1_0000_0030, 1),
                (3, 0x1_0000_0020, 1),
                (4, 0x1_0000_0030 - 1, 1),
                (5, 0x1_0000_0001, 1),
            ];
            let mut sim = Sim::new(seed, RELIABLE, &participants(&specs));
            sim.start_all_in_random_order();
            sim.run_until(10_000);
            sim.assert_all_decided_on(2);
        }
    }

    #[test]
    fn peer_epoch_dominates_zxid() {
        for seed in 0..20 {
            // 1 has the newer epoch but fewer txns in it; 3 has the most txns of epoch 1.
            let specs = [
                (1, 0x2_0000_0001, 2),
                (2, 0x1_0000_0005, 1),
                (3, 0x1_0000_ffff, 1),
            ];
            let mut sim = Sim::new(seed, RELIABLE, &participants(&specs));
            sim.start_all_in_random_order();
            sim.run_until(10_000);
            sim.assert_all_decided_on(1);
            // The epoch compared is the currentEpoch passed in, not the zxid's.
            let specs = [
                (1, 0x1_0000_0001, 2),
                (2, 0x1_0000_0005, 1),
                (3, 0x1_0000_ffff, 1),
            ];
            let mut sim = Sim::new(seed, RELIABLE, &participants(&specs));
            sim.start_all_in_random_order();
            sim.run_until(10_000);
            sim.assert_all_decided_on(1);
        }
    }

    #[test]
    fn observer_observes_the_elected_leader_and_never_proposes_itself() {
        for seed in 0..20 {
            let mut servers = participants(&[
                (1, 0x1_0000_0010, 1),
                (2, 0x1_0000_0010, 1),
                (3, 0x1_0000_0010, 1),
            ]);
            // The observer has the freshest data and the highest sid: it must not matter.
            servers.push((4, LearnerType::Observer, 0x1_0000_0099, 1));
            let mut sim = Sim::new(seed, RELIABLE, &servers);
            sim.start_all_in_random_order();
            sim.run_until(60_000);
            sim.assert_all_decided_on(3);
            for (from, to, n) in &sim.sent {
                assert_ne!(n.leader, 4, "{from} -> {to}: {n:?}");
                if *from == 4 {
                    assert_ne!(*to, 4, "an observer sends nothing to itself");
                }
            }
        }
    }

    /// Four voters of {1..5} elect 5 through `rounds` elections, then 5 takes the new
    /// epoch 2 and 2..4 sync to it.
    fn established_ensemble(seed: u64, rounds: usize) -> Sim {
        let specs: Vec<_> = (1..=5).map(|s| (s, 0x1_0000_0010, 1)).collect();
        let mut sim = Sim::new(seed, RELIABLE, &participants(&specs));
        sim.nodes.remove(&1);
        for _ in 0..rounds {
            for sid in 2..=5 {
                sim.start(sid);
            }
            let deadline = sim.now + 10_000;
            sim.run_until(deadline);
            for sid in 2..=5 {
                assert!(!sim.nodes[&sid].e.is_looking());
            }
        }
        for sid in 2..=5 {
            assert_eq!(sim.decision(sid).unwrap().vote.leader, 5);
            sim.nodes.get_mut(&sid).unwrap().e.update_peer_epoch(2);
        }
        sim.decisions.clear();
        sim
    }

    #[test]
    fn restarting_server_joins_established_ensemble_through_replies() {
        for seed in 0..20 {
            let mut sim = established_ensemble(seed, 3);
            let clock = sim.nodes[&5].e.logicalclock();
            assert_eq!(clock, 3);
            sim.add(1, LearnerType::Participant, 0x1_0000_0002, 1);
            sim.start(1);
            assert_eq!(sim.nodes[&1].e.logicalclock(), 1);
            let deadline = sim.now + 10_000;
            sim.run_until(deadline);
            let d = sim.decision(1).expect("server 1 decides");
            assert_eq!(d.state, Following);
            assert_eq!(
                (d.vote.leader, d.vote.election_epoch, d.vote.peer_epoch),
                (5, clock, 2)
            );
            assert_eq!(sim.nodes[&1].e.logicalclock(), clock);
            // Nobody else moved.
            assert_eq!(sim.decisions.len(), 1);
            assert_eq!(sim.nodes[&5].e.state(), Leading);
        }
    }

    #[test]
    fn restarting_server_waits_for_the_leader_itself() {
        for seed in 0..10 {
            let mut sim = established_ensemble(seed, 2);
            // The leader is unreachable; its three followers still name it.
            sim.isolated.insert(5);
            sim.add(1, LearnerType::Participant, 0x1_0000_0002, 1);
            sim.start(1);
            let deadline = sim.now + 30_000;
            sim.run_until(deadline);
            assert!(sim.decision(1).is_none());
            assert!(sim.nodes[&1].e.is_looking());
            assert_eq!(sim.nodes[&1].e.round_ref().outofelection.len(), 3);
            // Once the leader answers (after 1's next re-send), 1 follows it.
            sim.isolated.remove(&5);
            let deadline = sim.now + 120_000;
            sim.run_until(deadline);
            let d = sim.decision(1).expect("server 1 decides");
            assert_eq!((d.state, d.vote.leader), (Following, 5));
        }
    }

    #[test]
    fn minority_never_decides_and_keeps_reconnecting_with_backoff() {
        for seed in 0..10 {
            let specs = [
                (1, 0x1_0000_0099, 1),
                (2, 0x1_0000_0010, 1),
                (3, 0x1_0000_0010, 1),
            ];
            let mut sim = Sim::new(seed, RELIABLE, &participants(&specs));
            sim.nodes.remove(&2);
            sim.nodes.remove(&3);
            sim.isolated.insert(1);
            sim.start(1);
            sim.run_until(400_000);
            assert!(sim.decisions.is_empty());
            assert!(sim.nodes[&1].e.is_looking());
            let times = &sim.connect_alls[&1];
            let gaps: Vec<i64> = std::iter::once(times[0])
                .chain(times.windows(2).map(|w| w[1] - w[0]))
                .collect();
            assert_eq!(&gaps[..6], &[200, 400, 800, 1600, 3200, 6400]);
            assert!(gaps.iter().all(|&g| g <= MAX_NOTIFICATION_INTERVAL_MS));
            assert_eq!(*gaps.last().unwrap(), MAX_NOTIFICATION_INTERVAL_MS);

            // With 2 of 3 reachable but the other down, still nothing: 1 and 3 agree.
            let mut sim = Sim::new(seed, RELIABLE, &participants(&specs));
            sim.nodes.remove(&2);
            sim.start_all_in_random_order();
            sim.run_until(10_000);
            assert_eq!(sim.decision(1).map(|d| d.state), Some(Leading));
            assert_eq!(sim.decision(3).map(|d| d.state), Some(Following));
        }
    }

    /// Random ensembles (3-7 voters, 0-2 observers, tied and untied zxids and epochs),
    /// random start order, delays up to `max_delay`.
    fn random_ensemble(seed: u64, net: NetConfig) -> Sim {
        let mut rng = Rng(seed ^ 0x5eed);
        let n_voters = [3, 4, 5, 7][rng.below(4) as usize];
        let n_observers = rng.below(3);
        let mut servers = Vec::new();
        for sid in 1..=(n_voters + n_observers) {
            let epoch = rng.range(1, 2);
            let zxid = (rng.range(1, 2) << 32) | rng.range(0, 3);
            let ty = if sid <= n_voters {
                LearnerType::Participant
            } else {
                LearnerType::Observer
            };
            servers.push((sid, ty, zxid, epoch));
        }
        Sim::new(seed, net, &servers)
    }

    fn expected_leader(sim: &Sim) -> Sid {
        *sim.voters
            .iter()
            .max_by_key(|s| (sim.nodes[s].epoch, sim.nodes[s].zxid, **s))
            .unwrap()
    }

    #[test]
    fn random_delivery_with_duplicates_and_superseded_sends_elects_one_leader() {
        // Delays stay under finalizeWait: a quorum can only settle before the best
        // vote arrives if that vote is slower than finalizeWait (see the module comment).
        let net = NetConfig {
            min_delay: 1,
            max_delay: 150,
            dup_permille: 100,
            supersede_permille: 300,
            loss_permille: 0,
        };
        let mut slowest = 0;
        for seed in 0..500 {
            let mut sim = random_ensemble(seed, net);
            sim.start_all_in_random_order();
            sim.run_until(60_000);
            let leader = expected_leader(&sim);
            sim.assert_all_decided_on(leader);
            slowest = slowest.max(sim.decisions.iter().map(|d| d.at).max().unwrap());
        }
        // Bounded: the worst of these seeds takes about 1.4 s; a server left waiting
        // through several poll back-offs (0.2, 0.4, 0.8, 1.6 s...) would not be.
        assert!(slowest <= 3_000, "slowest decision at {slowest} ms");
    }

    #[test]
    fn random_delivery_with_loss_never_decides_inconsistently_with_itself() {
        // Lost notifications can split an FLE round (as in ZooKeeper); what must hold
        // regardless: decisions name a real voter's own vote, only that voter leads on
        // it, and leaders are never observers.
        let net = NetConfig {
            min_delay: 1,
            max_delay: 300,
            dup_permille: 100,
            supersede_permille: 300,
            loss_permille: 150,
        };
        let mut decided_all = 0;
        for seed in 0..300 {
            let mut sim = random_ensemble(seed, net);
            sim.start_all_in_random_order();
            sim.run_until(120_000);
            for d in &sim.decisions {
                let leader = d.vote.leader_sid().unwrap();
                assert!(sim.voters.contains(&leader));
                let l = &sim.nodes[&leader];
                assert_eq!((d.vote.zxid, d.vote.peer_epoch), (l.zxid, l.epoch));
                assert_eq!(d.state == Leading, leader == d.sid);
                if sim.nodes[&d.sid].ty == LearnerType::Observer {
                    assert_eq!(d.state, Observing);
                }
                assert_eq!(sim.decisions.iter().filter(|x| x.sid == d.sid).count(), 1);
            }
            if sim.decisions.len() == sim.nodes.len() {
                decided_all += 1;
            }
        }
        // Retries make progress despite loss in most runs.
        assert!(
            decided_all > 270,
            "only {decided_all} of 300 runs fully decided"
        );
    }
}
