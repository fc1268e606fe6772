//! Scripted scenarios for one peer, named for the ZooKeeper bugs they keep out: each
//! feeds a learner or leader the packets and storage completions of one schedule and
//! checks what it sends, and when.

use bytes::Bytes;

use super::peer::{Peer, PeerConfig, PeerState, Role};
use super::{Action, EpochFile, Event, ZabTxn};
use crate::quorum::election::Vote;
use crate::quorum::wire::{self, QuorumPacket};
use crate::quorum::{zxid, LearnerType, ServerState};

fn cfg(my_sid: u64, voters: &[u64]) -> PeerConfig {
    PeerConfig {
        my_sid,
        my_type: LearnerType::Participant,
        voters: voters.iter().copied().collect(),
        tick_ms: 100,
        init_limit: 10,
        sync_limit: 5,
        commit_log_count: 500,
        config_string: Bytes::from_static(b"server.1=127.0.0.1:2888:3888:participant\nversion=0"),
        min_notification_interval_ms: 200,
        max_notification_interval_ms: 1000,
        unsafe_ack_before_log: false,
    }
}

/// Packets sent, as (type, zxid).
fn sent(out: &[Action]) -> Vec<(i32, i64)> {
    out.iter()
        .filter_map(|a| match a {
            Action::Send { pkt, .. } => Some((pkt.typ, pkt.zxid)),
            _ => None,
        })
        .collect()
}

struct Learner {
    peer: Peer,
    link: u64,
    now: i64,
}

impl Learner {
    /// Server 1 of {1, 2, 3}, decided to follow server 2, connected to it.
    fn following(state: PeerState) -> Learner {
        let mut out = Vec::new();
        let mut peer = Peer::new(cfg(1, &[1, 2, 3]), state, 0, &mut out);
        out.clear();
        let vote = Vote {
            leader: 2,
            zxid: 0,
            election_epoch: 1,
            peer_epoch: 0,
            state: ServerState::Following,
        };
        peer.decided(0, ServerState::Following, vote, &mut out);
        let link = out
            .iter()
            .find_map(|a| match a {
                Action::ConnectToLeader { link, .. } => Some(*link),
                _ => None,
            })
            .expect("connects to the leader");
        let accepted = peer.accepted_epoch();
        let mut l = Learner { peer, link, now: 0 };
        let out = l.ev(Event::LeaderConnected { link });
        assert_eq!(
            sent(&out),
            vec![(wire::FOLLOWERINFO, zxid::make(accepted, 0))]
        );
        l
    }

    fn ev(&mut self, ev: Event) -> Vec<Action> {
        self.now += 1;
        let mut out = Vec::new();
        self.peer.handle(self.now, ev, &mut out);
        out
    }

    fn packet(&mut self, p: QuorumPacket) -> Vec<Action> {
        let link = self.link;
        self.ev(Event::Packet { link, pkt: p })
    }

    /// LEADERINFO of `epoch` through ACKEPOCH (acceptedEpoch written first).
    fn accept_epoch(&mut self, epoch: i64) {
        let out = self.packet(QuorumPacket::new(
            wire::LEADERINFO,
            zxid::make(epoch, 0),
            Some(wire::leader_info_data(wire::PROTOCOL_VERSION)),
        ));
        assert_eq!(
            out,
            vec![Action::WriteEpoch {
                file: EpochFile::Accepted,
                epoch
            }],
            "acceptedEpoch is written before anything is sent"
        );
        let out = self.ev(Event::EpochWritten {
            file: EpochFile::Accepted,
            epoch,
        });
        assert_eq!(sent(&out).first().map(|s| s.0), Some(wire::ACKEPOCH));
    }
}

fn txn(z: i64) -> QuorumPacket {
    QuorumPacket::new(wire::PROPOSAL, z, Some(Bytes::from(vec![z as u8; 8])))
}

/// ZOOKEEPER-3911, 4394, 4643, 4646: a learner ACKed NEWLEADER before the txns synced
/// to it were durable (or before currentEpoch was), so a quorum "had" a history some
/// of its members could lose in a crash. Here NEWLEADER is ACKed only after every
/// synced txn is logged and then currentEpoch is written, and no PROPOSAL is ACKed
/// before UPTODATE; the synced history is applied at UPTODATE.
#[test]
fn zookeeper_4394_newleader_is_acked_only_after_the_synced_history_and_epoch_are_durable() {
    let mut l = Learner::following(PeerState::default());
    l.accept_epoch(1);
    let (z1, z2) = (zxid::make(1, 1), zxid::make(1, 2));
    assert!(sent(&l.packet(QuorumPacket::new(wire::DIFF, 0, None))).is_empty());
    let out = l.packet(txn(z1));
    assert!(matches!(&out[..], [Action::Log { txns }] if txns[0].zxid == z1));
    assert!(
        l.packet(QuorumPacket::new(wire::COMMIT, z1, None))
            .is_empty(),
        "nothing applied before UPTODATE"
    );
    l.packet(txn(z2));
    let out = l.packet(QuorumPacket::new(wire::NEWLEADER, zxid::make(1, 0), None));
    assert!(
        out.is_empty(),
        "NEWLEADER with txns not yet durable: {out:?}"
    );
    let out = l.ev(Event::Logged { zxid: z1 });
    assert!(out.is_empty(), "still one synced txn not durable: {out:?}");
    let out = l.ev(Event::Logged { zxid: z2 });
    assert_eq!(
        out,
        vec![Action::WriteEpoch {
            file: EpochFile::Current,
            epoch: 1
        }],
        "currentEpoch only after the history, and no ACK yet"
    );
    let out = l.ev(Event::EpochWritten {
        file: EpochFile::Current,
        epoch: 1,
    });
    assert_eq!(sent(&out), vec![(wire::ACK, zxid::make(1, 0))]);
    let out = l.packet(QuorumPacket::new(wire::UPTODATE, -1, None));
    assert_eq!(
        sent(&out),
        vec![
            (wire::ACK, zxid::make(1, 0)),
            (wire::ACK, z1),
            (wire::ACK, z2)
        ],
        "the UPTODATE ACK first, then the synced proposals in order"
    );
    assert!(out.contains(&Action::Commit { up_to: z1 }));
    assert!(l.peer.serving());
}

/// A follower's ACK of a PROPOSAL leaves only once its log holds it.
#[test]
fn a_proposal_is_acked_only_once_logged() {
    let mut l = Learner::following(PeerState::default());
    l.accept_epoch(1);
    l.packet(QuorumPacket::new(wire::DIFF, 0, None));
    l.packet(QuorumPacket::new(wire::NEWLEADER, zxid::make(1, 0), None));
    l.ev(Event::EpochWritten {
        file: EpochFile::Current,
        epoch: 1,
    });
    l.packet(QuorumPacket::new(wire::UPTODATE, -1, None));
    let z = zxid::make(1, 1);
    let out = l.packet(txn(z));
    assert!(
        sent(&out).is_empty(),
        "ACK before the txn is durable: {out:?}"
    );
    let out = l.ev(Event::Logged { zxid: z });
    assert_eq!(sent(&out), vec![(wire::ACK, z)]);
    // A COMMIT applies it.
    let out = l.packet(QuorumPacket::new(wire::COMMIT, z, None));
    assert_eq!(out, vec![Action::Commit { up_to: z }]);
}

fn looking(out: &[Action]) -> bool {
    out.iter().any(|a| {
        matches!(
            a,
            Action::RoleChanged {
                state: ServerState::Looking,
                ..
            }
        )
    })
}

/// ZOOKEEPER-4925: a learner's log gained a hole. A proposal that does not follow the
/// last one held, and a COMMIT of a txn that is not the oldest pending, make the
/// learner leave the leader instead of logging or applying out of order.
#[test]
fn zookeeper_4925_a_hole_in_the_stream_sends_the_learner_back_to_looking() {
    let mut l = Learner::following(PeerState::default());
    l.accept_epoch(1);
    l.packet(QuorumPacket::new(wire::DIFF, 0, None));
    l.packet(txn(zxid::make(1, 1)));
    let out = l.packet(txn(zxid::make(1, 3)));
    assert!(looking(&out), "{out:?}");
    assert!(!out.iter().any(|a| matches!(a, Action::Log { .. })));

    let mut l = Learner::following(PeerState::default());
    l.accept_epoch(1);
    l.packet(QuorumPacket::new(wire::DIFF, 0, None));
    l.packet(txn(zxid::make(1, 1)));
    l.packet(txn(zxid::make(1, 2)));
    let out = l.packet(QuorumPacket::new(wire::COMMIT, zxid::make(1, 2), None));
    assert!(
        looking(&out),
        "a COMMIT skipping the oldest pending: {out:?}"
    );
}

/// ZOOKEEPER-2872 / 3642: a SNAP sync interrupted before NEWLEADER. The snapshot
/// installed is the leader's history (committed once a leader of a later epoch holds
/// it, or else cut back by a TRUNC: see
/// `zookeeper_1549_a_trunc_below_the_snapshot_asks_for_a_snap`); the learner goes back
/// to looking with the snapshot's zxid as its last, and a new sync starts from there.
#[test]
fn zookeeper_3642_an_interrupted_snap_sync_leaves_a_consistent_learner() {
    let mut l = Learner::following(PeerState {
        last_logged_zxid: zxid::make(1, 3),
        accepted_epoch: 1,
        current_epoch: 1,
        ..PeerState::default()
    });
    l.accept_epoch(2);
    let link = l.link;
    let snap_at = zxid::make(1, 9);
    let out = l.ev(Event::SnapReceived {
        link,
        zxid: snap_at,
    });
    assert_eq!(
        out,
        vec![Action::InstallSnap {
            link,
            zxid: snap_at
        }]
    );
    l.packet(txn(zxid::make(2, 1)));
    let out = l.ev(Event::LinkClosed { link });
    assert!(looking(&out));
    assert_eq!(
        l.peer.current_epoch(),
        1,
        "currentEpoch untouched without NEWLEADER"
    );
    // The vote it looks with names the snapshot's zxid or later (what it logged).
    let vote_zxids: Vec<i64> = out
        .iter()
        .filter_map(|a| match a {
            Action::SendNotification { n, .. } => Some(n.zxid),
            _ => None,
        })
        .collect();
    assert!(!vote_zxids.is_empty() && vote_zxids.iter().all(|&z| z >= snap_at));
}

/// ZOOKEEPER-1549's dirty snapshot, reached through SNAP (simulator seeds 12 and 5361
/// with power losses): a leader not yet established SNAPs its whole state, its
/// uncommitted tail included, and fails; the learner's state is now a snapshot holding
/// that tail. The next leader never had the tail and sends a TRUNC below the snapshot,
/// which no log cut can do. The learner changes nothing on disk, reconnects to the same
/// leader at once and reports its last zxid as -1 (with no epoch: it has accepted this
/// one already), which gets it a SNAP; a DIFF or TRUNC on that connection is refused.
#[test]
fn zookeeper_1549_a_trunc_below_the_snapshot_asks_for_a_snap() {
    let mut l = Learner::following(PeerState {
        last_logged_zxid: zxid::make(1, 0x22),
        accepted_epoch: 2,
        current_epoch: 0,
        snapshot_zxid: zxid::make(1, 0x22),
        ..PeerState::default()
    });
    l.accept_epoch(3);
    let old = l.link;
    let out = l.packet(QuorumPacket::new(wire::TRUNC, zxid::make(1, 0x14), None));
    assert!(!out.iter().any(|a| matches!(a, Action::Truncate { .. })));
    assert!(!looking(&out), "{out:?}");
    assert!(out.contains(&Action::Close { link: old }));
    let link = out
        .iter()
        .find_map(|a| match a {
            Action::ConnectToLeader { leader: 2, link } => Some(*link),
            _ => None,
        })
        .expect("reconnects to the same leader");
    l.link = link;
    let out = l.ev(Event::LeaderConnected { link });
    assert_eq!(sent(&out), vec![(wire::FOLLOWERINFO, zxid::make(3, 0))]);
    let out = l.packet(QuorumPacket::new(
        wire::LEADERINFO,
        zxid::make(3, 0),
        Some(wire::leader_info_data(wire::PROTOCOL_VERSION)),
    ));
    assert_eq!(sent(&out), vec![(wire::ACKEPOCH, -1)]);
    let ack = match &out[0] {
        Action::Send { pkt, .. } => pkt.data.clone().expect("ACKEPOCH data"),
        a => panic!("{a:?}"),
    };
    assert_eq!(wire::decode_ack_epoch(&ack).expect("decodes"), None);
    // A SNAP is what it asked for.
    let snap_at = zxid::make(1, 0x14);
    let out = l.ev(Event::SnapReceived {
        link,
        zxid: snap_at,
    });
    assert_eq!(
        out,
        vec![Action::InstallSnap {
            link,
            zxid: snap_at
        }]
    );
    l.ev(Event::SnapInstalled { zxid: snap_at });
    assert_eq!(l.peer.last_logged_zxid(), snap_at);

    // Asked for a SNAP, told to DIFF: back to looking, not to the leader again.
    let mut l = Learner::following(PeerState {
        last_logged_zxid: zxid::make(1, 0x22),
        accepted_epoch: 2,
        snapshot_zxid: zxid::make(1, 0x22),
        ..PeerState::default()
    });
    l.accept_epoch(3);
    let out = l.packet(QuorumPacket::new(wire::TRUNC, zxid::make(1, 0x14), None));
    let link = out
        .iter()
        .find_map(|a| match a {
            Action::ConnectToLeader { link, .. } => Some(*link),
            _ => None,
        })
        .expect("reconnects");
    l.link = link;
    l.ev(Event::LeaderConnected { link });
    l.packet(QuorumPacket::new(
        wire::LEADERINFO,
        zxid::make(3, 0),
        Some(wire::leader_info_data(wire::PROTOCOL_VERSION)),
    ));
    let out = l.packet(QuorumPacket::new(wire::DIFF, zxid::make(1, 0x14), None));
    assert!(looking(&out), "{out:?}");
}

/// A TRUNC past the learner's own log is refused (the leader is confused or hostile).
#[test]
fn a_trunc_past_the_log_is_refused() {
    let mut l = Learner::following(PeerState {
        last_logged_zxid: zxid::make(1, 3),
        accepted_epoch: 1,
        current_epoch: 1,
        ..PeerState::default()
    });
    l.accept_epoch(2);
    let out = l.packet(QuorumPacket::new(wire::TRUNC, zxid::make(1, 7), None));
    assert!(looking(&out), "{out:?}");
    assert!(!out.iter().any(|a| matches!(a, Action::Truncate { .. })));
}

/// A leader of a one-voter ensemble, established.
fn sole_leader() -> (Peer, i64) {
    sole_leader_with(cfg(1, &[1]))
}

fn sole_leader_with(c: PeerConfig) -> (Peer, i64) {
    let mut out = Vec::new();
    let mut peer = Peer::new(c, PeerState::default(), 0, &mut out);
    let mut now = 0;
    for _ in 0..100 {
        if peer.state() == ServerState::Leading {
            break;
        }
        now += 50;
        let mut o = Vec::new();
        // Feed loopback notifications and ticks until the election decides.
        for a in std::mem::take(&mut out) {
            if let Action::SendNotification { to: 1, n } = a {
                peer.handle(now, Event::Notification { from: 1, n }, &mut o);
            }
        }
        peer.handle(
            now,
            Event::Tick {
                all_delivered: true,
            },
            &mut o,
        );
        out = o;
    }
    assert_eq!(peer.state(), ServerState::Leading);
    // Epoch writes complete.
    for _ in 0..4 {
        let writes: Vec<(EpochFile, i64)> = out
            .iter()
            .filter_map(|a| match a {
                Action::WriteEpoch { file, epoch } => Some((*file, *epoch)),
                _ => None,
            })
            .collect();
        out.clear();
        for (file, epoch) in writes {
            peer.handle(now, Event::EpochWritten { file, epoch }, &mut out);
        }
    }
    assert!(peer.serving(), "a one-voter leader establishes by itself");
    (peer, now)
}

/// ZOOKEEPER-1277: the zxid counter must not roll over into the epoch bits. A leader
/// whose epoch has no zxid left gives none out, and steps down when asked to propose
/// the last counter, so a new epoch begins.
#[test]
fn zookeeper_1277_a_leader_steps_down_before_the_counter_rolls_over() {
    let (mut peer, now) = sole_leader();
    let epoch = peer.current_epoch();
    assert_eq!(peer.next_zxid(), Some(zxid::make(epoch, 1)));
    let Role::Leading(l) = &mut peer.role else {
        panic!("leading")
    };
    l.skip_to(zxid::make(epoch, 0xffff_fffd));
    assert_eq!(peer.next_zxid(), Some(zxid::make(epoch, 0xffff_fffe)));
    let mut out = Vec::new();
    peer.handle(
        now,
        Event::Propose {
            txns: vec![ZabTxn {
                zxid: zxid::make(epoch, 0xffff_fffe),
                data: Bytes::from_static(b"last"),
            }],
        },
        &mut out,
    );
    assert_eq!(peer.next_zxid(), None, "no zxid left in this epoch");
    let mut out = Vec::new();
    peer.handle(
        now,
        Event::Propose {
            txns: vec![ZabTxn {
                zxid: zxid::make(epoch, 0xffff_ffff),
                data: Bytes::from_static(b"rolls over"),
            }],
        },
        &mut out,
    );
    assert!(looking(&out), "{out:?}");
    assert!(!out.iter().any(|a| matches!(a, Action::Log { .. })));
}

fn learner_info(typ: i32, sid: u64, accepted_epoch: i64) -> QuorumPacket {
    let info = wire::LearnerInfo {
        server_id: sid as i64,
        protocol_version: wire::PROTOCOL_VERSION,
        config_version: 0,
    };
    QuorumPacket::new(typ, zxid::make(accepted_epoch, 0), Some(info.to_bytes()))
}

/// ZOOKEEPER-3608's lockout (simulator seed 2813, and 227, 507, 880, 1585, 1883 and 5164
/// with power losses): a would-be leader wrote acceptedEpoch e+1 and e+2 in two attempts
/// that failed, while the others stayed at e; they elected a leader of e+1 without it.
/// It refuses LEADERINFO(e+1), looks, finds that leader and refuses again, for as long
/// as that leader lasts. A leader that sees a learner's acceptedEpoch past its own
/// epoch steps down, so that the next election picks an epoch the learner accepts.
#[test]
fn zookeeper_3608_a_leader_steps_down_for_a_learner_that_accepted_a_later_epoch() {
    let (mut peer, now) = sole_leader();
    let epoch = peer.current_epoch();
    let mut out = Vec::new();
    peer.handle(now, Event::LearnerConnected { link: 7 }, &mut out);
    // A learner that accepted this very epoch is kept (its ACKEPOCH just does not count).
    peer.handle(
        now,
        Event::Packet {
            link: 7,
            pkt: learner_info(wire::FOLLOWERINFO, 2, epoch),
        },
        &mut out,
    );
    assert!(!looking(&out), "{out:?}");
    assert_eq!(sent(&out), vec![(wire::LEADERINFO, zxid::make(epoch, 0))]);
    let mut out = Vec::new();
    peer.handle(now, Event::LearnerConnected { link: 8 }, &mut out);
    peer.handle(
        now,
        Event::Packet {
            link: 8,
            pkt: learner_info(wire::FOLLOWERINFO, 3, epoch + 1),
        },
        &mut out,
    );
    assert!(looking(&out), "{out:?}");
    assert!(out.contains(&Action::Close { link: 8 }));
}

/// The epoch a leader picks is past every connected learner's acceptedEpoch, an
/// observer's too (as ZooKeeper's `getEpochToPropose`), though only voters make the
/// quorum it waits for.
#[test]
fn the_new_epoch_is_past_every_connected_learners_accepted_epoch() {
    let mut out = Vec::new();
    let mut peer = Peer::new(cfg(1, &[1, 2, 3]), PeerState::default(), 0, &mut out);
    let vote = Vote {
        leader: 1,
        zxid: 0,
        election_epoch: 1,
        peer_epoch: 0,
        state: ServerState::Leading,
    };
    let mut out = Vec::new();
    peer.decided(0, ServerState::Leading, vote, &mut out);
    peer.handle(1, Event::LearnerConnected { link: 4 }, &mut out);
    peer.handle(
        1,
        Event::Packet {
            link: 4,
            pkt: learner_info(wire::OBSERVERINFO, 4, 9),
        },
        &mut out,
    );
    assert!(!out.iter().any(|a| matches!(a, Action::WriteEpoch { .. })));
    peer.handle(1, Event::LearnerConnected { link: 2 }, &mut out);
    let mut out = Vec::new();
    peer.handle(
        1,
        Event::Packet {
            link: 2,
            pkt: learner_info(wire::FOLLOWERINFO, 2, 3),
        },
        &mut out,
    );
    assert_eq!(
        out,
        vec![Action::WriteEpoch {
            file: EpochFile::Accepted,
            epoch: 10
        }]
    );
}

/// A sole leader commits its own proposal only once its own log holds it.
#[test]
fn a_leader_counts_its_own_vote_only_once_logged() {
    let (mut peer, now) = sole_leader();
    let z = peer.next_zxid().expect("established");
    let mut out = Vec::new();
    peer.handle(
        now,
        Event::Propose {
            txns: vec![ZabTxn {
                zxid: z,
                data: Bytes::from_static(b"x"),
            }],
        },
        &mut out,
    );
    assert!(!out.iter().any(|a| matches!(a, Action::Commit { .. })));
    let mut out = Vec::new();
    peer.handle(now, Event::Logged { zxid: z }, &mut out);
    assert_eq!(out, vec![Action::Commit { up_to: z }]);
}

/// What the pipeline holds `maxProposalsInFlight` against: proposals sent and not
/// yet committed, in no other role than leader.
#[test]
fn a_leader_counts_its_proposals_in_flight_until_committed() {
    let (mut peer, now) = sole_leader();
    assert_eq!(peer.proposals_in_flight(), 0);
    let first = peer.next_zxid().expect("established");
    let mut out = Vec::new();
    peer.handle(
        now,
        Event::Propose {
            txns: (0..3)
                .map(|i| ZabTxn {
                    zxid: first + i,
                    data: Bytes::from_static(b"x"),
                })
                .collect(),
        },
        &mut out,
    );
    assert_eq!(peer.proposals_in_flight(), 3);
    peer.handle(now, Event::Logged { zxid: first + 1 }, &mut out);
    assert_eq!(peer.proposals_in_flight(), 1);
    peer.handle(now, Event::Logged { zxid: first + 2 }, &mut out);
    assert_eq!(peer.proposals_in_flight(), 0);
    let follower = Peer::new(cfg(1, &[1, 2, 3]), PeerState::default(), now, &mut out);
    assert_eq!(follower.proposals_in_flight(), 0);
}

/// ZooKeeper's rule 4 of `syncFollower`: a learner older than the committed txns in
/// memory, whose txns the log on disk still holds, gets a DIFF read from the log, then
/// the window; when what the log gives does not start at the learner's last txn (it
/// is not ours) or leaves a gap, a SNAP.
#[test]
fn a_learner_behind_the_window_is_diffed_from_the_log_on_disk() {
    let mut c = cfg(1, &[1]);
    c.commit_log_count = 3;
    let (mut peer, now) = sole_leader_with(c);
    let epoch = peer.current_epoch();
    let z = |c| zxid::make(epoch, c);
    let data = |c: i64| Bytes::from(vec![c as u8; 4]);
    for c in 1..=10 {
        let mut out = Vec::new();
        peer.handle(
            now,
            Event::Propose {
                txns: vec![ZabTxn {
                    zxid: z(c),
                    data: data(c),
                }],
            },
            &mut out,
        );
        peer.handle(now, Event::Logged { zxid: z(c) }, &mut out);
    }
    assert_eq!(peer.last_committed_zxid(), z(10));
    let mut out = Vec::new();
    peer.handle(
        now,
        Event::LogHorizon {
            complete_from: Some(0),
        },
        &mut out,
    );
    // An observer (server 2) that has everything up to (epoch, 2).
    let sync = |peer: &mut Peer, link: u64| {
        let mut out = Vec::new();
        peer.handle(now, Event::LearnerConnected { link }, &mut out);
        let info = wire::LearnerInfo {
            server_id: 2,
            protocol_version: wire::PROTOCOL_VERSION,
            config_version: 0,
        };
        peer.handle(
            now,
            Event::Packet {
                link,
                pkt: QuorumPacket::new(
                    wire::OBSERVERINFO,
                    zxid::make(epoch, 0),
                    Some(info.to_bytes()),
                ),
            },
            &mut out,
        );
        out.clear();
        peer.handle(
            now,
            Event::Packet {
                link,
                pkt: QuorumPacket::new(wire::ACKEPOCH, z(2), Some(wire::ack_epoch_data(None))),
            },
            &mut out,
        );
        out
    };
    let out = sync(&mut peer, 7);
    assert_eq!(
        out,
        vec![Action::ReadLog {
            link: 7,
            from: z(2),
            before: z(8)
        }],
        "the window holds (8..10): the rest comes from the disk"
    );
    let logged = |from: i64, to: i64| -> Vec<ZabTxn> {
        (from..=to)
            .map(|c| ZabTxn {
                zxid: z(c),
                data: data(c),
            })
            .collect()
    };
    let mut out = Vec::new();
    peer.handle(
        now,
        Event::LogRead {
            link: 7,
            txns: Some(logged(2, 7)),
        },
        &mut out,
    );
    let mut expected = vec![(wire::DIFF, z(10))];
    for c in 3..=10 {
        expected.push((wire::PROPOSAL, z(c)));
        expected.push((wire::COMMIT, z(c)));
    }
    expected.push((wire::NEWLEADER, zxid::make(epoch, 0)));
    assert_eq!(sent(&out), expected);

    // The log's first txn is not the learner's last: its (epoch, 2) is not ours.
    let out = sync(&mut peer, 8);
    assert!(matches!(out[..], [Action::ReadLog { .. }]));
    let mut out = Vec::new();
    peer.handle(
        now,
        Event::LogRead {
            link: 8,
            txns: Some(logged(3, 7)),
        },
        &mut out,
    );
    assert!(
        matches!(out[0], Action::SendSnap { link: 8, .. }),
        "{out:?}"
    );
    // The log could not give them: a SNAP as well.
    sync(&mut peer, 9);
    let mut out = Vec::new();
    peer.handle(
        now,
        Event::LogRead {
            link: 9,
            txns: None,
        },
        &mut out,
    );
    assert!(
        matches!(out[0], Action::SendSnap { link: 9, .. }),
        "{out:?}"
    );
    // A gap between what was read and the window: a SNAP.
    sync(&mut peer, 10);
    let mut out = Vec::new();
    peer.handle(
        now,
        Event::LogRead {
            link: 10,
            txns: Some(logged(2, 5)),
        },
        &mut out,
    );
    assert!(
        matches!(out[0], Action::SendSnap { link: 10, .. }),
        "{out:?}"
    );
}
