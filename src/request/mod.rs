//! Request processing as plain functions over state, no I/O:
//! - [`prep`]: on the commit shard, a write request becomes a [`txn::Txn`] (or an
//!   `Error` txn), checked against the tree plus the changes still in flight
//!   (ZooKeeper's `PrepRequestProcessor` and its outstanding `ChangeRecord`s).
//! - [`apply`]: on every shard, a txn changes that shard's tree and yields the result
//!   and the watch triggers (ZooKeeper's `DataTree.processTxn`).
//! - [`read`]: reads answered from the shard's own tree (ZooKeeper's
//!   `FinalRequestProcessor` read branch).
//! - [`reply`]: encoding a txn's result as the client's reply body.

pub mod apply;
pub mod path;
pub mod prep;
pub mod read;
pub mod reply;
pub mod txn;

pub use apply::{apply, TxnResult, WatchTrigger};
pub use prep::{txn_op, PrepConfig, PrepCtx, Prepper};
pub use read::{process_read, ReadOutcome, ReadReply, WatchRegistration};
pub use txn::{Txn, TxnHeader};

/// Test support: a commit pipeline in miniature (prep, apply, `applied`), with
/// batching so tests can prep several txns before applying them.
#[cfg(test)]
pub(crate) mod harness {
    use super::*;
    use crate::proto::{Acl, CreateRequest, Id, OpCode, Request};
    use crate::tree::DataTree;
    use bytes::Bytes;

    pub const SESSION: i64 = 0x1234;
    pub const NOW: i64 = 1_000_000;

    pub struct Harness {
        pub tree: DataTree,
        pub prepper: Prepper,
        pub zxid: i64,
        pub triggers: Vec<WatchTrigger>,
        /// Prepped but not applied: (header, txn).
        pub pending: Vec<(TxnHeader, Txn)>,
        pub now: i64,
    }

    pub fn open_acl() -> Vec<Acl> {
        crate::tree::open_acl_unsafe()
    }

    pub fn create_req(path: &str, data: &[u8], flags: i32) -> Request {
        Request::Create {
            op: OpCode::Create2,
            req: CreateRequest {
                path: path.into(),
                data: Bytes::copy_from_slice(data),
                acl: open_acl(),
                flags,
            },
        }
    }

    impl Harness {
        pub fn new() -> Self {
            Self::with_config(PrepConfig {
                extended_types: true,
                enforce_quota: false,
                max_buffer: 0xfffff,
            })
        }

        pub fn with_config(config: PrepConfig) -> Self {
            Harness {
                tree: DataTree::new(),
                prepper: Prepper::new(config),
                zxid: 0,
                triggers: Vec::new(),
                pending: Vec::new(),
                now: NOW,
            }
        }

        /// Preps `req` for `session` without applying it.
        pub fn prep_as(&mut self, session: i64, req: &Request) -> Txn {
            self.zxid += 1;
            let auth: Vec<Id> = Vec::new();
            let ctx = PrepCtx {
                session_id: session,
                auth: &auth,
                now_ms: self.now,
            };
            let txn = self.prepper.prep(&self.tree, self.zxid, &ctx, req);
            let hdr = TxnHeader {
                client_id: session,
                cxid: 1,
                zxid: self.zxid,
                time: self.now,
                op: txn_op(req.opcode(), &txn),
            };
            self.pending.push((hdr, txn.clone()));
            txn
        }

        pub fn prep(&mut self, req: &Request) -> Txn {
            self.prep_as(SESSION, req)
        }

        /// Applies every pending txn, returning their results.
        pub fn flush(&mut self) -> Vec<TxnResult> {
            let pending = std::mem::take(&mut self.pending);
            let mut out = Vec::new();
            for (hdr, txn) in pending {
                out.push(apply(&mut self.tree, &hdr, &txn, &mut self.triggers));
                self.prepper.applied(hdr.zxid);
            }
            out
        }

        pub fn write_as(&mut self, session: i64, req: &Request) -> TxnResult {
            self.prep_as(session, req);
            self.flush().pop().expect("one result")
        }

        pub fn write(&mut self, req: &Request) -> TxnResult {
            self.write_as(SESSION, req)
        }

        pub fn create(&mut self, path: &str, flags: i32) -> TxnResult {
            self.write(&create_req(path, b"", flags))
        }

        pub fn open_session(&mut self, session: i64, timeout: i32) {
            self.zxid += 1;
            let hdr = TxnHeader {
                client_id: session,
                cxid: 0,
                zxid: self.zxid,
                time: self.now,
                op: OpCode::CreateSession,
            };
            apply(
                &mut self.tree,
                &hdr,
                &Txn::CreateSession { timeout },
                &mut self.triggers,
            );
        }
    }
}
