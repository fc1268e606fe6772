//! The leader's recent history and the choice of how to bring a learner up to date
//! (ZooKeeper's `LearnerHandler.syncFollower` over `ZKDatabase.committedLog`, §2.7).
//!
//! The history is a window of the newest txns the leader holds, oldest first and
//! without holes: committed ones (up to `commitLogCount` of them) followed by those
//! still to be committed (the tail it logged before it became leader, then its own
//! outstanding proposals). A learner whose last zxid is in or next to the window gets
//! a DIFF of what follows it, one with txns the leader never had gets a TRUNC to where
//! their histories agree, and one older than the window gets a SNAP.
//!
//! ZooKeeper can also DIFF from the txn log on disk for a learner older than the
//! in-memory window (`snapshotSizeFactor`); corral sends a SNAP then.

use std::collections::VecDeque;

use super::ZabTxn;
use crate::quorum::zxid;

/// How a learner whose last logged zxid is `peer_last_zxid` is synced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncPlan {
    /// DIFF: the learner keeps its log; then the txns from `from_index` of the window.
    Diff { from_index: usize },
    /// TRUNC to `zxid`: the learner drops its log after it; then the txns from
    /// `from_index` of the window.
    Trunc { zxid: i64, from_index: usize },
    /// SNAP: the learner takes the leader's state at its last applied zxid, then every
    /// txn of the window after that zxid.
    Snap,
}

/// The window of newest txns; see the module comment.
#[derive(Debug, Default)]
pub struct History {
    txns: VecDeque<ZabTxn>,
    /// How many committed txns to keep (ZooKeeper's `commitLogCount`, at least 500).
    keep_committed: usize,
    /// The last committed zxid: txns up to it are committed, those after it are not.
    last_committed: i64,
}

impl History {
    pub fn new(keep_committed: usize, last_committed: i64) -> History {
        History {
            txns: VecDeque::new(),
            keep_committed: keep_committed.max(1),
            last_committed,
        }
    }

    /// Adds the next txn (its zxid is after every txn held).
    pub fn push(&mut self, txn: ZabTxn) {
        if let Some(last) = self.txns.back() {
            assert!(
                txn.zxid > last.zxid,
                "history out of order: {:#x} after {:#x}",
                txn.zxid,
                last.zxid
            );
        }
        self.txns.push_back(txn);
    }

    /// Everything up to `zxid` is committed; trims the committed part to its bound.
    pub fn committed(&mut self, zxid: i64) {
        assert!(zxid >= self.last_committed, "commit point went back");
        self.last_committed = zxid;
        let committed = self.txns.iter().take_while(|t| t.zxid <= zxid).count();
        for _ in self.keep_committed..committed {
            self.txns.pop_front();
        }
    }

    /// Drops every txn after `zxid` (a TRUNC received, or a tail abandoned).
    pub fn truncate_after(&mut self, zxid: i64) {
        while self.txns.back().is_some_and(|t| t.zxid > zxid) {
            self.txns.pop_back();
        }
        self.last_committed = self.last_committed.min(zxid);
    }

    /// Forgets everything (a SNAP installed at `zxid`).
    pub fn reset(&mut self, zxid: i64) {
        self.txns.clear();
        self.last_committed = zxid;
    }

    pub fn last_committed(&self) -> i64 {
        self.last_committed
    }

    /// The newest zxid held, or the commit point when nothing is.
    pub fn last_zxid(&self) -> i64 {
        self.txns.back().map_or(self.last_committed, |t| t.zxid)
    }

    pub fn len(&self) -> usize {
        self.txns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.txns.is_empty()
    }

    pub fn get(&self, i: usize) -> &ZabTxn {
        &self.txns[i]
    }

    pub fn iter_from(&self, i: usize) -> impl Iterator<Item = &ZabTxn> {
        self.txns.iter().skip(i)
    }

    /// The txns after `zxid`, oldest first.
    pub fn after(&self, zxid: i64) -> impl Iterator<Item = &ZabTxn> {
        let i = self.txns.partition_point(|t| t.zxid <= zxid);
        self.txns.iter().skip(i)
    }

    /// The txn at `zxid`, if held.
    pub fn find(&self, zxid: i64) -> Option<&ZabTxn> {
        let i = self.txns.partition_point(|t| t.zxid < zxid);
        self.txns.get(i).filter(|t| t.zxid == zxid)
    }

    /// How to sync a learner whose last logged zxid is `peer_last_zxid`, when the
    /// leader's history ends at `limit` (its last committed zxid once established; its
    /// last logged zxid while it establishes, as all of it is committed then). Txns in
    /// the window after `limit` are outstanding proposals, forwarded separately.
    pub fn plan(&self, peer_last_zxid: i64, limit: i64) -> SyncPlan {
        let end = self.txns.partition_point(|t| t.zxid <= limit);
        let (min, max) = if end == 0 {
            (limit, limit)
        } else {
            (self.txns[0].zxid, self.txns[end - 1].zxid)
        };
        let new_epoch_zxid = zxid::counter_of(peer_last_zxid) == 0;
        if peer_last_zxid == limit {
            return SyncPlan::Diff { from_index: end };
        }
        if peer_last_zxid > max && !new_epoch_zxid {
            // The learner has txns the leader never had at the end of its log.
            return SyncPlan::Trunc {
                zxid: max,
                from_index: end,
            };
        }
        if end > 0 && min <= peer_last_zxid && peer_last_zxid <= max {
            let i = self.txns.partition_point(|t| t.zxid <= peer_last_zxid);
            if self.txns[i - 1].zxid == peer_last_zxid || new_epoch_zxid {
                return SyncPlan::Diff { from_index: i };
            }
            // The learner's last txn is not ours: truncate it back to the txn before,
            // the last point both histories share.
            let shared = self.txns[i - 1].zxid;
            if zxid::epoch_of(shared) != zxid::epoch_of(peer_last_zxid) {
                // ZooKeeper never sends a TRUNC across an epoch boundary.
                return SyncPlan::Snap;
            }
            return SyncPlan::Trunc {
                zxid: shared,
                from_index: i,
            };
        }
        if peer_last_zxid > max && new_epoch_zxid {
            // An empty new epoch after all we hold: nothing to send.
            return SyncPlan::Diff { from_index: end };
        }
        SyncPlan::Snap
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn z(e: i64, c: i64) -> i64 {
        zxid::make(e, c)
    }

    fn hist(zxids: &[i64], committed: i64) -> History {
        let mut h = History::new(500, 0);
        for &x in zxids {
            h.push(ZabTxn {
                zxid: x,
                data: Bytes::new(),
            });
        }
        h.committed(committed);
        h
    }

    #[test]
    fn a_learner_at_the_end_gets_an_empty_diff() {
        let h = hist(&[z(1, 1), z(1, 2), z(1, 3)], z(1, 3));
        assert_eq!(h.plan(z(1, 3), z(1, 3)), SyncPlan::Diff { from_index: 3 });
    }

    #[test]
    fn a_learner_inside_the_window_gets_the_rest() {
        let h = hist(&[z(1, 1), z(1, 2), z(1, 3)], z(1, 3));
        assert_eq!(h.plan(z(1, 1), z(1, 3)), SyncPlan::Diff { from_index: 1 });
        // A new-epoch zxid inside the window: the txns after it.
        let h = hist(&[z(1, 1), z(2, 1), z(2, 2)], z(2, 2));
        assert_eq!(h.plan(z(2, 0), z(2, 2)), SyncPlan::Diff { from_index: 1 });
    }

    #[test]
    fn a_learner_ahead_is_truncated_to_the_leaders_end() {
        let h = hist(&[z(1, 1), z(1, 2)], z(1, 2));
        assert_eq!(
            h.plan(z(1, 5), z(1, 2)),
            SyncPlan::Trunc {
                zxid: z(1, 2),
                from_index: 2
            }
        );
    }

    #[test]
    fn a_learner_with_a_txn_the_leader_lacks_is_truncated_to_the_shared_point() {
        // The learner logged (1,3) that never committed; the leader went on in epoch 2.
        let h = hist(&[z(1, 1), z(1, 2), z(2, 1), z(2, 2)], z(2, 2));
        assert_eq!(
            h.plan(z(1, 3), z(2, 2)),
            SyncPlan::Trunc {
                zxid: z(1, 2),
                from_index: 2
            }
        );
    }

    #[test]
    fn a_truncation_across_epochs_becomes_a_snap() {
        // The learner logged (2,5) under a leader that failed; this leader never had
        // epoch 2 and the point both share is in epoch 1.
        let h = hist(&[z(1, 8), z(1, 9), z(3, 1)], z(3, 1));
        assert_eq!(h.plan(z(2, 5), z(3, 1)), SyncPlan::Snap);
    }

    #[test]
    fn a_learner_older_than_the_window_gets_a_snap() {
        let mut h = History::new(2, 0);
        for c in 1..=5 {
            h.push(ZabTxn {
                zxid: z(1, c),
                data: Bytes::new(),
            });
        }
        h.committed(z(1, 5));
        assert_eq!(h.len(), 2, "trimmed to the bound");
        assert_eq!(h.plan(z(1, 1), z(1, 5)), SyncPlan::Snap);
        assert_eq!(h.plan(0, z(1, 5)), SyncPlan::Snap);
        assert_eq!(h.plan(z(1, 4), z(1, 5)), SyncPlan::Diff { from_index: 1 });
    }

    #[test]
    fn outstanding_proposals_are_not_part_of_the_plan() {
        // Committed up to (1,2); (1,3) is outstanding.
        let h = hist(&[z(1, 1), z(1, 2), z(1, 3)], z(1, 2));
        assert_eq!(h.plan(z(1, 2), z(1, 2)), SyncPlan::Diff { from_index: 2 });
        // A learner that already logged the outstanding proposal is truncated to the
        // commit point and gets it again as a proposal.
        assert_eq!(
            h.plan(z(1, 3), z(1, 2)),
            SyncPlan::Trunc {
                zxid: z(1, 2),
                from_index: 2
            }
        );
    }

    #[test]
    fn an_empty_window_diffs_only_an_equal_learner() {
        let h = History::new(500, z(1, 7));
        assert_eq!(h.plan(z(1, 7), z(1, 7)), SyncPlan::Diff { from_index: 0 });
        assert_eq!(h.plan(z(1, 3), z(1, 7)), SyncPlan::Snap);
        assert!(
            matches!(h.plan(z(1, 9), z(1, 7)), SyncPlan::Trunc { zxid, .. } if zxid == z(1, 7))
        );
    }
}
