//! corral: a ZooKeeper-compatible coordination server.
//!
//! Module map (sans-IO unless noted):
//! - [`proto`]: jute codec, records, framing.
//! - [`tree`]: the DataTree: znodes, Stat rules, ephemerals, quotas.
//! - [`acl`]: ACL schemes and permission checks.
//! - [`request`]: `prep` (request -> txn or error) and `apply` (txn -> tree change and
//!   watch triggers). Plain functions over state.
//! - [`session`]: session ids, passwords, tick-bucketed expiry.
//! - [`watch`]: per-shard watch registry.
//! - [`config`]: zoo.cfg.
//! - [`admin`]: four-letter words.
//! - [`server`]: the glommio runtime, the only module that touches sockets.

pub mod acl;
pub mod admin;
pub mod config;
pub mod limits;
pub mod proto;
pub mod request;
pub mod server;
pub mod session;
pub mod tree;
pub mod watch;
