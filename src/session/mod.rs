//! Session ids, passwords, timeout negotiation and expiry, as ZooKeeper's
//! `SessionTrackerImpl`, `ExpiryQueue` and `ZooKeeperServer.generatePasswd`.
//!
//! Ids and passwords are computed exactly as ZooKeeper does so that a client's
//! (id, password) pair means the same thing here as there: the password is a pure
//! function of the id, checked without state. Expiry is tick-bucketed: a deadline is
//! rounded up to the next tick, so the tracker (on shard 0) wakes once per tick rather
//! than once per session.
//!
//! An expiry storm (many sessions due in the same tick) is handed out in bounded steps:
//! every due session is marked closing at once, as ZooKeeper's expirer does, so none
//! can be revived by a late ping, but the commit core takes them from a queue a
//! bounded number at a time ([`SessionTracker::take_expired`]), so the closes (and
//! their ephemerals' deletions) spread over several batches with client requests in
//! between instead of one batch that holds every shard for the whole storm.
//!
//! Sans-IO: time comes in as `now_ms`. ZooKeeper uses `Time.currentElapsedTime()`
//! (a monotonic clock in ms) for both the first session id and expiry; callers should
//! pass the same kind of clock.

mod java_random;

use ahash::{AHashMap as HashMap, AHashSet as HashSet};
use std::collections::{BTreeMap, VecDeque};

pub use java_random::JavaRandom;

use crate::proto::ErrorCode;

/// `ZooKeeperServer.superSecret`, mixed into the password seed.
const SUPER_SECRET: i64 = 0xB3415C00;

/// `EphemeralType.CONTAINER_EPHEMERAL_OWNER`: marks container nodes in
/// `ephemeral_owner`, so it can never be a session id.
const CONTAINER_EPHEMERAL_OWNER: i64 = i64::MIN;

/// The first session id of a server, as ZooKeeper's `SessionTrackerImpl.initializeNextSession`.
///
/// The server id fills the top byte; below it sit bits of the clock (shifted left 24,
/// then logically right 8, so the top byte is clear before the server id is or-ed in),
/// so ids from a restarted server do not collide with those it handed out before.
pub fn initial_session_id(server_id: i64, now_ms: i64) -> i64 {
    let mut next = ((now_ms.wrapping_shl(24) as u64) >> 8) as i64;
    next |= server_id.wrapping_shl(56);
    if next == CONTAINER_EPHEMERAL_OWNER {
        next += 1;
    }
    next
}

/// The session id counter (`SessionTrackerImpl.nextSessionId`): starts at
/// [`initial_session_id`] and counts up by one per created session.
#[derive(Debug, Clone)]
pub struct SessionIdGenerator {
    next: i64,
}

impl SessionIdGenerator {
    pub fn new(server_id: i64, now_ms: i64) -> Self {
        SessionIdGenerator {
            next: initial_session_id(server_id, now_ms),
        }
    }

    /// The next id (`getAndIncrement`). Wraps like Java's long; ZooKeeper does not skip
    /// 0 or the container marker here either, but with a 40-bit clock field neither is
    /// reachable in practice.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> i64 {
        let id = self.next;
        self.next = self.next.wrapping_add(1);
        id
    }

    /// The id the next call to `next` returns.
    pub fn peek(&self) -> i64 {
        self.next
    }
}

/// The 16-byte password of `session_id`, as ZooKeeper makes it
/// (`new Random(sessionId ^ superSecret).nextBytes`), so it can be checked without state.
///
/// `java.util.Random` keeps only 48 bits of its seed, so ids equal in their low 48 bits
/// share a password, as in ZooKeeper.
pub fn password(session_id: i64) -> [u8; 16] {
    let mut p = [0u8; 16];
    JavaRandom::new(session_id ^ SUPER_SECRET).next_bytes(&mut p);
    p
}

/// `ZooKeeperServer.checkPasswd`: a reconnect's password is right when the id is not 0
/// and the bytes are exactly [`password`]`(session_id)`.
pub fn is_valid_password(session_id: i64, passwd: &[u8]) -> bool {
    session_id != 0 && passwd == password(session_id)
}

/// `minSessionTimeout` as configured, or ZooKeeper's default `2 * tickTime` for -1.
pub fn min_session_timeout(tick_ms: i32, configured: i32) -> i32 {
    if configured == -1 {
        tick_ms.saturating_mul(2)
    } else {
        configured
    }
}

/// `maxSessionTimeout` as configured, or ZooKeeper's default `20 * tickTime` for -1.
pub fn max_session_timeout(tick_ms: i32, configured: i32) -> i32 {
    if configured == -1 {
        tick_ms.saturating_mul(20)
    } else {
        configured
    }
}

/// The timeout a connect request gets (`processConnectRequest`): raised to `min`, then
/// lowered to `max`, in that order (so with min > max, max wins).
pub fn timeout_negotiation(requested: i32, min: i32, max: i32) -> i32 {
    let mut t = requested;
    if t < min {
        t = min;
    }
    if t > max {
        t = max;
    }
    t
}

#[derive(Debug, Clone, Copy)]
struct Tracked {
    timeout_ms: i32,
    /// The bucket the session is in (`ExpiryQueue.elemMap`); may name a bucket already
    /// expired, as in ZooKeeper, once the session is closing.
    deadline: i64,
    closing: bool,
    /// Waiting in `SessionTracker::expiring` to be handed out: a session is queued at
    /// most once, whatever happens to its bucket meanwhile.
    queued: bool,
}

/// Tick-bucketed expiry (ZooKeeper's `ExpiryQueue`): a session's deadline is rounded up
/// to the next tick, so expiry is checked once per tick, not per session.
pub struct SessionTracker {
    pub tick_ms: i64,
    sessions: HashMap<i64, Tracked>,
    /// Deadline (a multiple of `tick_ms`) -> sessions due then (`expiryMap`).
    buckets: BTreeMap<i64, HashSet<i64>>,
    /// Expired (closing) sessions not yet handed out by `take_expired`, oldest
    /// deadline first.
    expiring: VecDeque<i64>,
}

impl SessionTracker {
    pub fn new(tick_ms: i64) -> Self {
        SessionTracker {
            // A zero tick would divide by zero; config validation should prevent it.
            tick_ms: tick_ms.max(1),
            sessions: HashMap::new(),
            buckets: BTreeMap::new(),
            expiring: VecDeque::new(),
        }
    }

    /// `ExpiryQueue.roundToNextInterval`: the first tick strictly after `time`.
    pub fn round_to_next_interval(&self, time: i64) -> i64 {
        (time / self.tick_ms + 1) * self.tick_ms
    }

    /// `trackSession`: starts tracking `session_id`, due at now + timeout rounded up.
    /// For a session already tracked, only its deadline moves (using `timeout_ms`; the
    /// recorded timeout stays), as in ZooKeeper, even if it is closing.
    pub fn add(&mut self, session_id: i64, timeout_ms: i32, now_ms: i64) {
        self.sessions.entry(session_id).or_insert(Tracked {
            timeout_ms,
            // No bucket yet: `update` finds nothing to leave.
            deadline: i64::MIN,
            closing: false,
            queued: false,
        });
        self.update(session_id, timeout_ms, now_ms);
    }

    /// `ExpiryQueue.update`: moves the session to the bucket of now + timeout.
    fn update(&mut self, session_id: i64, timeout_ms: i32, now_ms: i64) {
        let new_deadline = self.round_to_next_interval(now_ms.saturating_add(timeout_ms.into()));
        let Some(s) = self.sessions.get_mut(&session_id) else {
            return;
        };
        if s.deadline == new_deadline {
            return;
        }
        let old = std::mem::replace(&mut s.deadline, new_deadline);
        self.buckets
            .entry(new_deadline)
            .or_default()
            .insert(session_id);
        if let Some(set) = self.buckets.get_mut(&old) {
            set.remove(&session_id);
            if set.is_empty() {
                self.buckets.remove(&old);
            }
        }
    }

    /// Pushes the session's deadline to now + its timeout. False if it is not tracked.
    /// Also false, without moving it, when the session is closing (`touchSession`).
    pub fn touch(&mut self, session_id: i64, now_ms: i64) -> bool {
        match self.sessions.get(&session_id) {
            Some(s) if !s.closing => {
                let t = s.timeout_ms;
                self.update(session_id, t, now_ms);
                true
            }
            _ => false,
        }
    }

    /// `removeSession`: forgets the session (after its closeSession txn is applied).
    pub fn remove(&mut self, session_id: i64) {
        if let Some(s) = self.sessions.remove(&session_id) {
            if let Some(set) = self.buckets.get_mut(&s.deadline) {
                set.remove(&session_id);
                if set.is_empty() {
                    self.buckets.remove(&s.deadline);
                }
            }
        }
    }

    /// Sessions whose deadline is at or before `now_ms`; they stay tracked (as closing)
    /// until `remove`, and are not returned again.
    ///
    /// As the `SessionTracker.run` loop: every due bucket is taken whole, in
    /// deadline order, and each of its sessions marked closing. Ids within one bucket
    /// come out sorted (ZooKeeper's order there is a hash set's). Also hands out what
    /// an earlier [`SessionTracker::take_expired`] left queued.
    pub fn expired(&mut self, now_ms: i64) -> Vec<i64> {
        self.take_expired(now_ms, usize::MAX)
    }

    /// [`SessionTracker::expired`] in bounded steps: every due bucket is taken and
    /// its sessions marked closing at once (so none can be touched back to life), but
    /// at most `max` of them are returned; the rest wait, in order, for the next calls.
    /// A session is returned once, however often this is called, unless it is
    /// removed and tracked again (then it is a new session to this tracker).
    pub fn take_expired(&mut self, now_ms: i64, max: usize) -> Vec<i64> {
        while let Some(entry) = self.buckets.first_entry() {
            if *entry.key() > now_ms {
                break;
            }
            let mut ids: Vec<i64> = entry.remove().into_iter().collect();
            ids.sort_unstable();
            for id in ids {
                if let Some(s) = self.sessions.get_mut(&id) {
                    s.closing = true;
                    if !s.queued {
                        s.queued = true;
                        self.expiring.push_back(id);
                    }
                }
            }
        }
        let mut out = Vec::new();
        while out.len() < max {
            let Some(id) = self.expiring.pop_front() else {
                break;
            };
            // A session removed since it was queued (and maybe tracked again since,
            // unqueued) is not this queue's to hand out.
            if let Some(s) = self.sessions.get_mut(&id) {
                if s.queued {
                    s.queued = false;
                    out.push(id);
                }
            }
        }
        out
    }

    /// Expired sessions queued by [`SessionTracker::take_expired`] and not yet handed
    /// out (an upper bound: some may have been removed since).
    pub fn expired_pending(&self) -> usize {
        self.expiring.len()
    }

    /// When `expired` next has something to return from a bucket, if ever: the
    /// earliest deadline (`ExpiryQueue.getWaitTime` as an absolute time). Queued
    /// sessions ([`SessionTracker::expired_pending`]) are due already.
    pub fn next_deadline(&self) -> Option<i64> {
        self.buckets.keys().next().copied()
    }

    /// `setSessionClosing`: a closeSession request was accepted; the session accepts no
    /// more touches and requests answer SessionExpired.
    pub fn set_closing(&mut self, session_id: i64) {
        if let Some(s) = self.sessions.get_mut(&session_id) {
            s.closing = true;
        }
    }

    /// `checkSession` (without owner tracking, which only matters between servers):
    /// UnknownSession when not tracked, SessionExpired when closing.
    pub fn check_session(&self, session_id: i64) -> Result<(), ErrorCode> {
        match self.sessions.get(&session_id) {
            None => Err(ErrorCode::UnknownSession),
            Some(s) if s.closing => Err(ErrorCode::SessionExpired),
            Some(_) => Ok(()),
        }
    }

    pub fn contains(&self, session_id: i64) -> bool {
        self.sessions.contains_key(&session_id)
    }

    pub fn is_closing(&self, session_id: i64) -> bool {
        self.sessions.get(&session_id).is_some_and(|s| s.closing)
    }

    /// The negotiated timeout recorded when the session was added.
    pub fn timeout(&self, session_id: i64) -> Option<i32> {
        self.sessions.get(&session_id).map(|s| s.timeout_ms)
    }

    /// The current deadline bucket of a session.
    pub fn deadline(&self, session_id: i64) -> Option<i64> {
        self.sessions.get(&session_id).map(|s| s.deadline)
    }

    /// Number of tracked sessions, closing ones included.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Every tracked session with its timeout, sorted by id (`sessionsWithTimeout`,
    /// what a snapshot records).
    pub fn sessions_with_timeout(&self) -> Vec<(i64, i32)> {
        let mut v: Vec<(i64, i32)> = self
            .sessions
            .iter()
            .map(|(id, s)| (*id, s.timeout_ms))
            .collect();
        v.sort_unstable();
        v
    }

    /// The pending buckets in deadline order, each with its sorted session ids: the data
    /// of the `dump` four-letter word ("Session Sets (N)/(M):", "k expire at T:").
    /// `N` is the number of buckets returned, `M` is [`SessionTracker::len`].
    pub fn expiry_buckets(&self) -> Vec<(i64, Vec<i64>)> {
        self.buckets
            .iter()
            .map(|(t, set)| {
                let mut ids: Vec<i64> = set.iter().copied().collect();
                ids.sort_unstable();
                (*t, ids)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    // The reference values below were printed by OpenJDK 17 running:
    //
    //   Random r = new Random(id ^ 0xB3415C00L); byte[] p = new byte[16]; r.nextBytes(p);
    //   long n = (now << 24) >>> 8; n = n | (serverId << 56);
    //   if (n == Long.MIN_VALUE) ++n;
    #[test]
    fn passwords_match_jvm() {
        let cases: [(i64, &str); 9] = [
            (0, "f22acd4a97e69d6d20a49bb638eadb38"),
            (1, "054cc74a37327db215e702e20c73f005"),
            (-1, "20f62cb5648dc2d771471c8a2486a9ee"),
            (0x100000000000000, "f22acd4a97e69d6d20a49bb638eadb38"),
            (0x0185f3a2b4c50000, "910b236e4a64919557fb3a97a376c31d"),
            (i64::MIN, "f22acd4a97e69d6d20a49bb638eadb38"),
            (i64::MAX, "20f62cb5648dc2d771471c8a2486a9ee"),
            (0xB3415C00, "60b420bb3851d9d47acb933dbe70399b"),
            (72057594037927937, "054cc74a37327db215e702e20c73f005"),
        ];
        for (id, want) in cases {
            assert_eq!(hex(&password(id)), want, "session {id:#x}");
        }
    }

    #[test]
    fn password_check() {
        let id = 0x0185f3a2b4c50000;
        assert!(is_valid_password(id, &password(id)));
        let mut wrong = password(id);
        wrong[15] ^= 1;
        assert!(!is_valid_password(id, &wrong));
        assert!(!is_valid_password(id, &password(id)[..15]));
        assert!(!is_valid_password(id, &[]));
        // Session 0 never has a valid password.
        assert!(!is_valid_password(0, &password(0)));
    }

    #[test]
    fn initial_ids_match_jvm() {
        let cases: [(i64, i64, i64); 8] = [
            (1, 1700000000123, 111411200008060928),
            (0, 0, 0),
            (255, 123456789, -72049503173804032),
            (5, 0x7fffffffffff, 432345564227502080),
            (1, 0x800000000000, 72057594037927936),
            // The container marker is skipped.
            (128, 0, -9223372036854775807),
            (-1, 99, -72057594031439872),
            (3, -5, 288230376151384064),
        ];
        for (sid, now, want) in cases {
            assert_eq!(initial_session_id(sid, now), want, "sid {sid} now {now}");
        }
    }

    #[test]
    fn id_generator_counts_up() {
        let mut g = SessionIdGenerator::new(1, 1700000000123);
        assert_eq!(g.peek(), 111411200008060928);
        assert_eq!(g.next(), 111411200008060928);
        assert_eq!(g.next(), 111411200008060929);
        assert_eq!(g.peek(), 111411200008060930);
    }

    #[test]
    fn timeouts() {
        assert_eq!(min_session_timeout(2000, -1), 4000);
        assert_eq!(max_session_timeout(2000, -1), 40000);
        assert_eq!(min_session_timeout(2000, 1000), 1000);
        assert_eq!(max_session_timeout(2000, 90000), 90000);
        assert_eq!(timeout_negotiation(30000, 4000, 40000), 30000);
        assert_eq!(timeout_negotiation(100, 4000, 40000), 4000);
        assert_eq!(timeout_negotiation(-5, 4000, 40000), 4000);
        assert_eq!(timeout_negotiation(100000, 4000, 40000), 40000);
        assert_eq!(timeout_negotiation(4000, 4000, 40000), 4000);
        assert_eq!(timeout_negotiation(40000, 4000, 40000), 40000);
        // min > max: max is applied last and wins.
        assert_eq!(timeout_negotiation(1, 5000, 3000), 3000);
        assert_eq!(timeout_negotiation(i32::MAX, 5000, 3000), 3000);
    }

    #[test]
    fn deadlines_round_up_to_next_tick() {
        let t = SessionTracker::new(2000);
        assert_eq!(t.round_to_next_interval(0), 2000);
        assert_eq!(t.round_to_next_interval(1999), 2000);
        // Exactly on a tick still goes to the next one.
        assert_eq!(t.round_to_next_interval(2000), 4000);
        assert_eq!(t.round_to_next_interval(2001), 4000);
    }

    #[test]
    fn expires_once_at_bucket_time() {
        let mut t = SessionTracker::new(2000);
        t.add(1, 5000, 100); // 5100 -> 6000
        t.add(2, 5000, 1900); // 6900 -> 8000
        assert_eq!(t.deadline(1), Some(6000));
        assert_eq!(t.deadline(2), Some(8000));
        assert_eq!(t.next_deadline(), Some(6000));
        assert!(t.expired(5999).is_empty());
        assert_eq!(t.expired(6000), vec![1]);
        assert!(t.is_closing(1));
        assert_eq!(t.check_session(1), Err(ErrorCode::SessionExpired));
        assert_eq!(t.check_session(2), Ok(()));
        // Not returned again, still tracked until removed.
        assert!(t.expired(7000).is_empty());
        assert!(t.contains(1));
        assert_eq!(t.expired(100_000), vec![2]);
        assert!(t.expired(200_000).is_empty());
        t.remove(1);
        t.remove(2);
        assert!(t.is_empty());
        assert_eq!(t.check_session(1), Err(ErrorCode::UnknownSession));
        assert_eq!(t.next_deadline(), None);
    }

    #[test]
    fn late_poll_takes_every_due_bucket_in_order() {
        let mut t = SessionTracker::new(1000);
        t.add(30, 5000, 0); // 6000
        t.add(10, 1000, 0); // 2000
        t.add(20, 1000, 0); // 2000
        t.add(40, 9000, 0); // 10000
        assert_eq!(
            t.expiry_buckets(),
            vec![(2000, vec![10, 20]), (6000, vec![30]), (10000, vec![40])]
        );
        assert_eq!(t.expired(6500), vec![10, 20, 30]);
        assert_eq!(t.expiry_buckets(), vec![(10000, vec![40])]);
    }

    #[test]
    fn touch_moves_deadline() {
        let mut t = SessionTracker::new(1000);
        t.add(7, 3000, 0); // 4000
        assert!(t.touch(7, 2500)); // 5500 -> 6000
        assert_eq!(t.deadline(7), Some(6000));
        assert!(t.expired(4000).is_empty());
        assert_eq!(t.expiry_buckets(), vec![(6000, vec![7])]);
        // Touching within the same tick changes nothing.
        assert!(t.touch(7, 2999));
        assert_eq!(t.deadline(7), Some(6000));
        assert_eq!(t.expired(6000), vec![7]);
        // Closing sessions and unknown ones cannot be touched.
        assert!(!t.touch(7, 6001));
        assert!(!t.touch(99, 0));
        assert!(t.expired(100_000).is_empty());
    }

    #[test]
    fn set_closing_blocks_touch_but_not_expiry() {
        let mut t = SessionTracker::new(1000);
        t.add(5, 2000, 0);
        t.set_closing(5);
        assert!(!t.touch(5, 500));
        assert_eq!(t.check_session(5), Err(ErrorCode::SessionExpired));
        // Still in its bucket: the expirer sees it if the close never completes.
        assert_eq!(t.expired(3000), vec![5]);
    }

    #[test]
    fn remove_takes_it_out_of_its_bucket() {
        let mut t = SessionTracker::new(1000);
        t.add(1, 2000, 0);
        t.add(2, 2000, 0);
        t.remove(1);
        t.remove(42); // unknown: no effect
        assert_eq!(t.len(), 1);
        assert_eq!(t.expired(3000), vec![2]);
    }

    #[test]
    fn re_adding_keeps_timeout_and_moves_deadline() {
        let mut t = SessionTracker::new(1000);
        t.add(1, 2000, 0);
        t.add(1, 9000, 0);
        assert_eq!(t.timeout(1), Some(2000));
        assert_eq!(t.deadline(1), Some(10000));
        assert_eq!(t.sessions_with_timeout(), vec![(1, 2000)]);
        // A touch uses the recorded timeout again.
        assert!(t.touch(1, 0));
        assert_eq!(t.deadline(1), Some(3000));
    }

    #[test]
    fn a_storm_is_handed_out_in_bounded_steps_each_session_once() {
        let mut t = SessionTracker::new(1000);
        for id in 0..10 {
            t.add(id, 1000, 0); // all due at 2000
        }
        t.add(100, 3000, 0); // due at 4000
        assert!(t.take_expired(1999, 3).is_empty());
        assert_eq!(t.take_expired(2000, 3), vec![0, 1, 2]);
        // Every due session is closing at once, handed out or not: no ping revives it.
        for id in 0..10 {
            assert!(t.is_closing(id), "{id}");
            assert!(!t.touch(id, 2000));
        }
        assert_eq!(t.expired_pending(), 7);
        assert_eq!(t.take_expired(2000, 3), vec![3, 4, 5]);
        // Removing a queued session (its close went another way) drops it from the queue.
        t.remove(6);
        // A later bucket falls due meanwhile: it queues behind the earlier one.
        assert_eq!(t.take_expired(4000, 3), vec![7, 8, 9]);
        assert_eq!(t.take_expired(4000, 3), vec![100]);
        assert!(t.take_expired(100_000, 3).is_empty());
        assert_eq!(t.expired_pending(), 0);
        // Handed-out sessions stay tracked (closing) until removed, and never come back.
        assert!(t.contains(0) && t.is_closing(0));
        assert!(t.expired(200_000).is_empty());
    }

    #[test]
    fn a_session_tracked_again_after_removal_expires_once_more() {
        let mut t = SessionTracker::new(1000);
        t.add(1, 1000, 0);
        t.add(2, 1000, 0);
        assert_eq!(t.take_expired(2000, 1), vec![1]);
        // 2 is queued; it is removed and tracked afresh (a rejected batch does this).
        t.remove(2);
        t.add(2, 1000, 2000); // due at 4000
        assert!(!t.is_closing(2));
        assert!(
            t.take_expired(2000, 10).is_empty(),
            "the stale queue entry is skipped"
        );
        assert_eq!(t.take_expired(4000, 10), vec![2]);
        assert!(t.take_expired(9000, 10).is_empty());
    }

    #[test]
    fn zero_tick_does_not_divide_by_zero() {
        let mut t = SessionTracker::new(0);
        t.add(1, 10, 0);
        assert_eq!(t.expired(11), vec![1]);
    }
}
