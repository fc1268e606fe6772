//! corral's durable storage engine: the txn log, snapshots, recovery and the offline
//! tools behind `corral log ...` / `corral snapshot ...`.
//!
//! - [`txn_codec`]: the jute encoding of one `(TxnHeader, Txn)`.
//! - [`backend`]: the only seam to the OS (a glommio `DmaFile` backend and a seeded,
//!   fault-injecting in-memory backend used by the tests).
//! - [`log`]: segment files of batch frames; `append_batch` is durable when it returns.
//! - [`log_reader`]: logged txns read back beside the appends (a leader's DIFF).
//! - [`snapshot`]: crc-sealed snapshot files written by a streaming writer.
//! - [`recovery`]: newest valid snapshot + every logged txn after it, with the refusal
//!   rules in a decision table.
//! - [`tools`]: purge, dump, truncate.
//! - [`truncate`]: cutting the log after a zxid crash-safely (ZAB's TRUNC, the offline
//!   tool, and recovery finishing an interrupted cut).
//! - [`install`]: a snapshot received from a leader (ZAB's SNAP) becomes the state.
//! - [`epoch`]: ZooKeeper's `acceptedEpoch` / `currentEpoch` files.
//! - [`dir_lock`]: one process per data directory.
//!
//! Nothing here panics on what a disk can contain: every length, count and checksum read
//! back is checked before use.

pub mod backend;
pub mod dir_lock;
pub mod epoch;
pub mod install;
pub mod log;
pub mod log_reader;
pub mod recovery;
pub mod restore;
pub mod snapshot;
pub mod tools;
pub mod truncate;
pub mod txn_codec;

#[cfg(test)]
mod conformance;

pub use backend::{Backend, GlommioBackend, SimBackend, StorageFile};
pub use epoch::{load_epochs, read_epoch, write_epoch, ACCEPTED_EPOCH, CURRENT_EPOCH};
pub use install::install_snapshot;
pub use log::{LogConfig, TxnLog};
pub use log_reader::{oldest_complete_from, read_txns_after};
pub use recovery::{recover, Recovered};
pub use snapshot::{load_snapshot, LoadedSnapshot, SnapshotNode, SnapshotWriter, StatFields};

use std::io;

/// Every failure of the storage engine. The server maps them as follows:
/// [`NoSpace`](StorageError::NoSpace) fails the batch's requests with a client error and
/// keeps running; [`Fatal`](StorageError::Fatal) stops the server; the others are
/// startup/tool failures to print.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// ENOSPC: the batch was not logged (nothing is acknowledged), earlier batches are
    /// intact, and `append_batch` may be called again once space returns.
    #[error("no space left on device: {0}")]
    NoSpace(String),
    /// The durability of the log is unknown (EIO on fdatasync or on a log write): after
    /// a failed fsync the kernel may have dropped the dirty pages, so retrying could
    /// report success for data that is gone. The log refuses every later append.
    #[error("fatal storage failure, the server must stop: {0}")]
    Fatal(String),
    /// An I/O error outside the append path (opening, listing, renaming ...).
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    /// The data on disk is not trustworthy; the message says where and how to repair.
    #[error("{0}")]
    Corrupt(String),
    /// A caller error (e.g. zxids out of order).
    #[error("invalid argument: {0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, StorageError>;

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> StorageError {
    let context = context.into();
    move |source| StorageError::Io { context, source }
}

/// Whether `next` may directly follow `prev` in the txn stream: the next counter, or the
/// first zxids of a later epoch (the counter restarts when the epoch changes).
pub fn zxid_follows(prev: i64, next: i64) -> bool {
    next == prev.wrapping_add(1) || (next >> 32) > (prev >> 32)
}

/// The file-name form of a zxid, 16 lowercase hex digits as in ZooKeeper's `log.<zxid>`.
pub(crate) fn zxid_hex(z: i64) -> String {
    format!("{:016x}", z as u64)
}

/// Parses `<prefix><hex>`; None for anything else (temp files, strangers). A zxid is
/// never negative (an epoch is a Java int), so a name above `i64::MAX` is a stranger
/// too: taken for a segment, it sorted before every real one, and a recovery that
/// skipped it as older than the state read it once the segments after it were gone.
pub(crate) fn parse_zxid_name(name: &str, prefix: &str) -> Option<i64> {
    let hex = name.strip_prefix(prefix)?;
    if hex.is_empty() || hex.len() > 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    i64::from_str_radix(hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `txn_log_recovery` fuzz target (`regress-negative-segment-name`):
    /// `log.d5d5d5d5d5d560d5` (a negative zxid) with garbage in it was skipped by a
    /// recovery, then read (and refused) by the one after an acknowledged append.
    #[test]
    fn names_past_the_largest_zxid_are_strangers() {
        assert_eq!(
            parse_zxid_name("log.0000000100000002", "log."),
            Some(0x1_0000_0002)
        );
        assert_eq!(
            parse_zxid_name("log.7fffffffffffffff", "log."),
            Some(i64::MAX)
        );
        assert_eq!(parse_zxid_name("log.d5d5d5d5d5d560d5", "log."), None);
        assert_eq!(parse_zxid_name("log.8000000000000000", "log."), None);
        assert_eq!(parse_zxid_name("log.", "log."), None);
        assert_eq!(parse_zxid_name("log.00000000000000001", "log."), None);
        assert_eq!(parse_zxid_name("log.+1", "log."), None);
    }
}
