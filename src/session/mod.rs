//! Session ids, passwords and expiry. CONTRACT STUB: owned by the acl/session/watch work.

/// The first session id of a server, as ZooKeeper's `SessionTrackerImpl.initializeNextSession`.
pub fn initial_session_id(server_id: i64, now_ms: i64) -> i64 {
    let _ = (server_id, now_ms);
    1
}

/// The 16-byte password of `session_id`, as ZooKeeper makes it
/// (`new Random(sessionId ^ superSecret).nextBytes`), so it can be checked without state.
pub fn password(session_id: i64) -> [u8; 16] {
    let _ = session_id;
    [0; 16]
}

/// Tick-bucketed expiry (ZooKeeper's `ExpiryQueue`): a session's deadline is rounded up
/// to the next tick, so expiry is checked once per tick, not per session.
pub struct SessionTracker {
    pub tick_ms: i64,
}

impl SessionTracker {
    pub fn new(tick_ms: i64) -> Self {
        SessionTracker { tick_ms }
    }

    pub fn add(&mut self, session_id: i64, timeout_ms: i32, now_ms: i64) {
        let _ = (session_id, timeout_ms, now_ms);
    }

    /// Pushes the session's deadline to now + its timeout. False if it is not tracked.
    pub fn touch(&mut self, session_id: i64, now_ms: i64) -> bool {
        let _ = (session_id, now_ms);
        true
    }

    pub fn remove(&mut self, session_id: i64) {
        let _ = session_id;
    }

    /// Sessions whose deadline is at or before `now_ms`; they stay tracked (as closing)
    /// until `remove`, and are not returned again.
    pub fn expired(&mut self, now_ms: i64) -> Vec<i64> {
        let _ = now_ms;
        Vec::new()
    }
}
