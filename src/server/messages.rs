//! What crosses between shards. Shards send write requests (and the sessions they saw
//! alive) to the commit shard in batches; the commit shard sends back committed
//! batches, shared by every shard through one `Arc`. One hop per batch, never one per
//! request: a hop to a parked executor costs tens of microseconds here.

use std::sync::Arc;

use crate::proto::{ErrorCode, Id, OpCode, Request};
use crate::request::{Txn, TxnHeader, TxnResult, WatchTrigger};

/// A connection, unique within its shard.
pub type ConnId = u64;

/// Where a request came from, so its reply can find its way back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    pub shard: usize,
    pub conn: ConnId,
    pub xid: i32,
}

impl Origin {
    /// The `shard` of a request a learner forwarded to this leader.
    pub const REMOTE_SHARD: usize = usize::MAX;

    /// A request learner `sid` forwarded to this leader: no shard here answers it (its
    /// own server does, once the txn is committed there); `conn` holds the learner's
    /// sid, the session's owner at the leader.
    pub fn remote(cxid: i32, sid: u64) -> Origin {
        Origin {
            shard: Self::REMOTE_SHARD,
            conn: sid,
            xid: cxid,
        }
    }
}

#[derive(Debug, Clone)]
pub enum WriteKind {
    /// A request whose opcode is a write (create*, delete, setData, setACL, multi,
    /// reconfig, closeSession).
    Request(Request),
    /// `sync`: ordered behind every write sent before it, changes nothing.
    Sync(String),
    /// A new session asked for by a ConnectRequest, with its negotiated timeout.
    CreateSession { timeout: i32 },
    /// A client resumed `session_id` on `origin`: any other connection holding it is
    /// closed. `passwd_ok`: the password matched, so the session is revalidated (touched
    /// where it is tracked: here, or at the leader through REVALIDATE) and moves to
    /// `origin`'s server; otherwise the attempt only closes the old connection, as in
    /// ZooKeeper's `processConnectRequest`.
    Reattach { passwd_ok: bool },
}

#[derive(Debug, Clone)]
pub struct WriteItem {
    pub origin: Origin,
    pub session_id: i64,
    /// The session's authenticated ids, for ACL checks in prep.
    pub auth: Arc<[Id]>,
    pub kind: WriteKind,
}

/// One shard's batch for the commit shard.
#[derive(Debug, Default)]
pub struct ToCommit {
    pub items: Vec<WriteItem>,
    /// Sessions that sent anything since the last batch (ZooKeeper's touchSession).
    pub touches: Vec<i64>,
}

impl ToCommit {
    pub fn is_empty(&self) -> bool {
        self.items.is_empty() && self.touches.is_empty()
    }
}

#[derive(Debug, Clone)]
pub enum Committed {
    Txn {
        hdr: TxnHeader,
        txn: Txn,
        origin: Option<Origin>,
    },
    Sync {
        origin: Origin,
        path: String,
    },
    /// The answer to a `WriteKind::Reattach`: `valid` if the session is alive where it is
    /// tracked (the commit core, or the leader's REVALIDATE answer). The origin's shard
    /// answers the ConnectResponse only now, so a session that expired a moment before
    /// is refused (ZooKeeper's `finishSessionInit` after `revalidateSession`).
    Reattach {
        session_id: i64,
        origin: Origin,
        valid: bool,
    },
    /// An ensemble member synced to its leader by a snapshot, or reloaded after a
    /// truncation: the server's tree becomes a copy of this one. No client is
    /// connected then (a server that is not serving has closed them all).
    Install(InstalledTree),
    /// The server stopped serving (it lost its leader or its quorum): every client
    /// connection is closed, as ZooKeeper does; clients reconnect elsewhere.
    CloseAll,
    /// A write that was prepped but could not be logged (the disk is full): never
    /// applied anywhere, answered with `err` (THROTTLEDOP) and the shard's last zxid.
    /// For a CreateSession (`op`), whose ConnectResponse cannot carry an error, the
    /// connection is closed instead and the client reconnects.
    Rejected {
        origin: Origin,
        op: OpCode,
        err: ErrorCode,
    },
}

/// A tree every shard takes a copy of (see [`Committed::Install`]).
#[derive(Clone)]
pub struct InstalledTree(pub Arc<crate::tree::DataTree>);

impl std::fmt::Debug for InstalledTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "InstalledTree(zxid {:#x}, {} nodes)",
            self.0.last_processed_zxid(),
            self.0.node_count()
        )
    }
}

/// What the commit shard publishes: immutable, shared by every shard.
pub type Batch = Arc<Vec<Committed>>;

/// What applying one stretch of a batch to the shared tree gave: every shard delivers
/// it to its own clients (watch events, replies) without touching the tree again.
#[derive(Debug)]
pub struct Applied {
    /// The committed batch this stretch (`range`) is part of.
    pub batch: Batch,
    pub range: std::ops::Range<usize>,
    /// One per `Committed::Txn` of the stretch, in order.
    pub results: Vec<TxnResult>,
    /// The watch triggers of every txn, in order; the `i`-th txn's end at
    /// `trigger_ends[i]`.
    pub triggers: Vec<WatchTrigger>,
    pub trigger_ends: Vec<u32>,
    /// The tree's last zxid once the batch is applied.
    pub zxid: i64,
}

impl Applied {
    /// The batch's entries this outcome covers.
    pub fn entries(&self) -> impl Iterator<Item = &Committed> {
        self.batch[self.range.clone()].iter()
    }
}

/// Tells a shard that outcomes are queued for it (the count queued so far).
pub type Wake = u64;

/// The AdminServer's `restore` (standalone only), handed from the shard serving the
/// AdminServer to the commit pipeline: `tree`, built from the snapshot a client
/// posted, becomes the state between two batches (see `commit_task`). The answer is
/// the zxid the restored state has, or why it was not restored.
pub struct RestoreRequest {
    pub tree: Box<crate::tree::DataTree>,
    pub reply: tokio::sync::oneshot::Sender<Result<i64, String>>,
}

/// Where a [`RestoreRequest`] waits for the commit pipeline, shared by every shard.
/// `wake` wakes the commit task across executors (a permit is kept if it is busy).
#[derive(Default)]
pub struct RestoreSlot {
    request: std::sync::Mutex<Option<RestoreRequest>>,
    pub wake: tokio::sync::Notify,
}

impl RestoreSlot {
    /// Leaves `req` for the commit pipeline; false (and `req` is dropped) if another
    /// restore is waiting.
    pub fn offer(&self, req: RestoreRequest) -> bool {
        let mut slot = self.request.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_some() {
            return false;
        }
        *slot = Some(req);
        drop(slot);
        self.wake.notify_one();
        true
    }

    /// Whether a restore waits for the commit pipeline.
    pub fn is_waiting(&self) -> bool {
        self.request
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    pub fn take(&self) -> Option<RestoreRequest> {
        self.request
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }
}
