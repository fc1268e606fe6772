//! corral: a ZooKeeper-compatible coordination server.
//!
//! Module map (sans-IO unless noted):
//! - [`proto`] holds jute codec, records, framing.
//! - [`tree`] holds the DataTree: znodes, Stat rules, ephemerals, quotas.
//! - [`acl`] holds ACL schemes and permission checks.
//! - [`request`] holds `prep` (request -> txn or error) and `apply` (txn -> tree change and
//!   watch triggers). Plain functions over state.
//! - [`session`] holds session ids, passwords, tick-bucketed expiry.
//! - [`watch`] holds per-shard watch registry.
//! - [`config`] holds zoo.cfg.
//! - [`admin`] holds four-letter words.
//! - [`quorum`] holds the ensemble: ZAB, fast leader election, the quorum wire protocol.
//! - [`sasl`] holds the SASL DIGEST-MD5 mechanisms: the server for client sessions
//!   (opcode 102) and quorum members, the client for quorum SASL.
//! - [`tls`] holds the TLS stores (PEM, PKCS12, JKS), the rustls configurations and the
//!   x509 id of a client certificate. Reads the store files at start; no sockets.
//! - [`fuzzing`] holds the fuzz targets' logic, shared by `fuzz/` and the corpus replay.
//! - [`server`] holds the glommio runtime, the only module that touches sockets.

pub mod acl;
pub mod admin;
pub mod config;
#[doc(hidden)]
pub mod fuzzing;
pub mod limits;
pub mod proto;
pub mod quorum;
pub mod request;
pub mod sasl;
pub mod server;
pub mod session;
pub mod storage;
pub mod tls;
pub mod tree;
pub mod watch;
