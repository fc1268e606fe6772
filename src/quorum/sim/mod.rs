//! A deterministic simulator of a whole ensemble: 3 to 5 servers' real [`Peer`]s in one
//! process, driven from one seed through crashes, restarts, partitions (symmetric and
//! one-way), connection resets, message delay and loss, and slow disks, with a checker
//! that runs after every step. In the manner of FoundationDB's simulation and
//! TigerBeetle's VOPR: every source of nondeterminism (time, the network, the disk, the
//! workload, the faults) comes from [`SimRng`], so a failing seed replays exactly.
//!
//! What the simulator plays is the runtime's side of the `zab` contract: it carries out
//! actions (storage operations complete in order after a random delay, and are lost if
//! the server crashes first; packets cross the real wire codec), answers clients, and
//! restarts crashed servers from what their disk kept (the snapshot and the log,
//! applied in full, as recovery does).
//!
//! Checked after every step ([`Checker`]):
//! - at most one leader established per epoch;
//! - every server's committed state is a prefix of one common sequence (no two servers
//!   ever commit different txns at the same position, and no holes);
//! - durable epochs never go back (asserted by the core itself);
//! - every write acknowledged to a client is in that sequence, and at the end of the
//!   liveness phase (faults healed) every server holds all of them and serves.
//!
//! Replay a seed: `CORRAL_SIM_SEED=<seed> cargo test --lib quorum::sim::replay -- --nocapture`.
//! Swarm size: `CORRAL_SIM_SEEDS` (default: as many as fit in a few seconds).

mod node;
mod world;

#[cfg(test)]
mod tests;

pub use world::SimReport;
