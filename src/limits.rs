//! Every resource limit the server enforces, in one place, so each is checked before
//! the allocation it guards. Values come from zoo.cfg (see `config`).
//!
//! What one client can make the server hold, and what stops it:
//!
//! - input: one frame, at most `max_buffer` (checked on its length prefix, before the
//!   buffer grows); a connection reads no further while it is throttled, so its
//!   unparsed input stays within one read plus one frame;
//! - requests in flight: `global_outstanding_limit` over the server and
//!   `max_outstanding_per_conn` per connection (each overshot by at most the one
//!   request that crossed it);
//! - output: a connection with `output_pause` bytes of replies unwritten reads no
//!   more requests until they are written; past `max_pending_output` (watch events
//!   keep coming) it is closed;
//! - connections: `max_client_cnxns` per IP address, and a connection with no
//!   ConnectRequest within `nio.sessionlessCnxnTimeout` is closed.

/// Expired sessions closed per commit batch at most. An expiry storm (thousands of
/// sessions due in one tick) becomes several batches with client requests in between
/// instead of one batch that holds every shard while it deletes every ephemeral and
/// fires every watch; the rest wait (already closing, so no ping revives them) for the
/// next batches, built at once. ZooKeeper's expirer queues each close into the request
/// pipeline one by one, which interleaves them with other clients' requests likewise.
/// 100, not 500: a request that lands beside a batch of closes waits for all of it, and
/// measured with 20,000 sessions expiring together the other clients' p99 during the
/// storm fell from 13.5 ms to 2.9 ms, the storm still over in 0.1 s (100,000 sessions:
/// p99 20 ms to 4.3 ms, storm 1.0 s to 0.8 s).
pub const MAX_EXPIRED_CLOSES_PER_BATCH: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// `jute.maxbuffer`: the largest frame a client may send, and the largest znode data.
    pub max_buffer: usize,
    /// `maxClientCnxns`: connections from one IP address (0 = unlimited).
    pub max_client_cnxns: usize,
    /// `globalOutstandingLimit`: requests read but not yet answered, over all
    /// connections. Past it, as in ZooKeeper's `ServerCnxn.incrOutstandingAndCheckThrottle`
    /// and `ZooKeeperServer.shouldThrottle`, a connection that has a request of its own
    /// outstanding reads nothing more until its requests are answered; one with none
    /// outstanding still reads, so a flood from some clients cannot shut others out.
    pub global_outstanding_limit: usize,
    /// Requests one connection may have read and not yet had answered before it
    /// stops reading (until one is answered), whatever the server-wide count: one
    /// pipelining client cannot take the whole `globalOutstandingLimit` when that is
    /// set high. ZooKeeper has no such cap; the default equals ZooKeeper's default
    /// `globalOutstandingLimit`, so with default settings a connection is throttled
    /// exactly as in ZooKeeper. (No zoo.cfg key yet.)
    pub max_outstanding_per_conn: usize,
    /// Bytes queued for a client (replies and watch events not yet written to its
    /// socket, including what the writer holds because the socket is full) past which
    /// its connection is closed: a client that stops reading cannot make the server
    /// hold unbounded output. Its own requests stop being read at `output_pause`, so
    /// what gets it here is watch events (other clients' writes), or one reply bigger
    /// than the gap. Checked after every request it sends and whenever output is queued
    /// for it. ZooKeeper 3.8 has no such bound: NIOServerCnxn's `outgoingBuffers` and
    /// Netty's channel queue are unbounded, and a request stops counting as outstanding
    /// once its reply is queued rather than written, so there a client that never reads
    /// grows the server's heap until it runs out. (No zoo.cfg key yet.)
    pub max_pending_output: usize,
    /// Bytes queued for a client above which its connection reads no further requests
    /// until the writer has written them (backpressure: the client's requests wait in
    /// its socket and TCP stops it). A client that pipelines requests faster than it
    /// reads their replies is slowed down, not cut off, and one that never reads holds
    /// about this much (plus one reply) instead of what all its requests would produce.
    /// What it can still not stop is watch events, which `max_pending_output` bounds.
    /// ZooKeeper has none: it reads on and queues. (No zoo.cfg key yet.)
    pub output_pause: usize,
    /// `maxProposalsInFlight` (corral's own key): an ensemble leader proposes no more
    /// txns while this many are proposed and not yet committed; clients' writes wait in
    /// its commit pipeline, unprepared, and go out as commits come back. The leader's
    /// outstanding-proposal table, its learners' unsent queues and their logs' backlog
    /// stay bounded by it even when a quorum is slow, whatever the number of servers
    /// forwarding writes. ZooKeeper has none (each server's `globalOutstandingLimit`
    /// bounds it only in sum). The default, five servers' worth of the default
    /// `globalOutstandingLimit`, leaves any ordinary load untouched.
    pub max_proposals_in_flight: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_buffer: 0xfffff,
            max_client_cnxns: 60,
            global_outstanding_limit: 1000,
            max_outstanding_per_conn: 1000,
            max_pending_output: 64 * 1024 * 1024,
            output_pause: 1024 * 1024,
            max_proposals_in_flight: 5000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Limits;

    /// A connection stops reading at `output_pause`, and the one request it may still
    /// have been answering (a reply of up to `max_buffer`) cannot take it past
    /// `max_pending_output`: only what it cannot stop (watch events) closes it.
    #[test]
    fn a_paused_connection_has_room_for_one_more_reply() {
        let l = Limits::default();
        assert!(l.output_pause + l.max_buffer < l.max_pending_output);
        assert!(l.max_outstanding_per_conn >= 1);
    }
}
