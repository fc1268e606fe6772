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
pub mod prep;
pub mod read;
pub mod reply;
pub mod txn;

pub use apply::{apply, TxnResult, WatchTrigger};
pub use prep::{PrepConfig, PrepCtx, Prepper};
pub use read::{process_read, ReadOutcome, ReadReply, WatchRegistration};
pub use txn::{Txn, TxnHeader};
