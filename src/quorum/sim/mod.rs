//! A deterministic simulator of a whole ensemble: 3 to 5 servers' real [`Peer`]s and
//! real storage engines in one process, driven from one seed through power cuts (at
//! once, inside a storage operation, inside recovery), whole-ensemble power losses,
//! full disks and failing fdatasyncs, partitions (symmetric and one-way), connection
//! resets, message delay and loss, and slow disks, with a checker that runs after every
//! step. In the manner of FoundationDB's simulation and TigerBeetle's VOPR: every source
//! of nondeterminism (time, the network, the disk, the workload, the faults) comes from
//! [`SimRng`], so a failing seed replays exactly.
//!
//! What the simulator plays is the runtime's side of the `zab` contract, as
//! `server::ensemble` plays it on a real disk:
//! - Each server has its own [`SimBackend`] (seeded from the world's rng) holding a data
//!   dir and a log dir. Storage actions run through the real engine (`TxnLog`
//!   group-committed appends, `epoch::write_epoch`, `TxnLog::truncate_after` with the
//!   state reloaded from the disk when it had applied past the cut, `install_snapshot`),
//!   in order, each at once when the previous one has reported; a slow disk delays the
//!   completion event, not the operation (`store`).
//! - A crash is a power cut: `SimBackend::power_cut` (unsynced writes kept, lost or torn
//!   by sector) or `cut_power_after(n)` inside one of the server's next storage
//!   operations. An injected ENOSPC or EIO makes the operation fail and the server stop,
//!   as the runtime exits with 70. A restart is `storage::recover`, `epoch::load_epochs`
//!   and the tree built from the recovered snapshot and txns.
//! - Clients send real ZooKeeper requests (create, sequential and ephemeral creates,
//!   setData, delete, createSession, closeSession), forwarded by learners as REQUEST
//!   bodies; leaders prep them with the real `Prepper` into txns encoded as ZooKeeper
//!   PROPOSAL data; learners decode them; every server applies committed txns to a real
//!   `DataTree` (`workload`). A write's id is its `cxid`.
//! - SNAP streams the leader's tree through `snap_stream` and reads it back with
//!   `SnapReader`; a DIFF older than the leader's window is read from its log on disk
//!   (`storage::log_reader`), and the log's horizon is reported as the runtime does.
//! - Packets and notifications cross the real wire codec.
//!
//! Checked after every step ([`Checker`]):
//! - at most one leader established per epoch;
//! - every server's committed state is a prefix of one common sequence (no two servers
//!   ever commit different txns at the same position, and no holes), including what a
//!   restart recovered and what a SNAP installed; a TRUNC never takes away a txn the
//!   server committed;
//! - servers that hold the same prefix hold the same state (tree digest and sessions,
//!   compared at every 16th position, at installs, at restarts and at the end), and a
//!   SNAP stream reads back as the state that was sent;
//! - durable epochs never go back (asserted by the core itself); recovery never refuses
//!   what a power cut left, and no storage operation fails without an injected fault;
//! - every write acknowledged to a client is in that sequence, and at the end of the
//!   liveness phase (faults healed) every server holds all of them, serves, and after a
//!   last power cut recovers exactly that state from its disk.
//!
//! Replay a seed: `CORRAL_SIM_SEED=<seed> cargo test --lib quorum::sim::tests::replay --
//! --nocapture` (`CORRAL_SIM_TRACE=1` prints what each server does). Swarm: time-boxed
//! by `CORRAL_SIM_SECONDS` (default 20), or `CORRAL_SIM_SEEDS` seeds from
//! `CORRAL_SIM_FIRST_SEED`; `CORRAL_SIM_FAULTS=power_losses|no_storage_errors` picks
//! another fault set, `CORRAL_SIM_KEEP_GOING=1` reports every failing seed.
//!
//! [`SimBackend`]: crate::storage::SimBackend

mod node;
mod store;
mod workload;
mod world;

#[cfg(test)]
mod tests;

pub use world::SimReport;
