//! The epoch files of a ZAB ensemble member, ZooKeeper's `acceptedEpoch` (the newest
//! epoch this server promised a prospective leader: ACKEPOCH leaves only once it is
//! durable) and `currentEpoch` (the epoch of the last NEWLEADER it acknowledged). Leader
//! election and synchronisation trust them after any crash, so this module owns their
//! format and their atomic replacement.
//!
//! # Format
//!
//! In dataDir, beside the snapshots, as ZooKeeper keeps them: the epoch in decimal ASCII
//! and nothing else (ZooKeeper writes no newline; one trailing newline is accepted on
//! reading, as ZooKeeper's `readLine` does). A dataDir moved between ZooKeeper and
//! corral keeps its epochs.
//!
//! # Writing
//!
//! [`write_epoch`]: `<name>.tmp` is created, written, cut to the digits' length,
//! fdatasync'd, renamed over `<name>`, and the directory synced. The rename is the
//! commit: a power cut at any point leaves `<name>` holding the old value (or, if
//! it did not exist, no file) or the new one, never a mix or an empty file. A `.tmp`
//! left by a crash is never read; [`load_epochs`] removes it at start.
//!
//! Any error is returned: the caller must not report the write (ZAB would send an
//! ACKEPOCH or an ACK of NEWLEADER on it), and the server stops.

use std::io;
use std::path::Path;

use super::backend::{Backend, StorageFile, ALIGN};
use super::{io_err, Result, StorageError};

/// ZooKeeper's `QuorumPeer.ACCEPTED_EPOCH_FILENAME`.
pub const ACCEPTED_EPOCH: &str = "acceptedEpoch";
/// ZooKeeper's `QuorumPeer.CURRENT_EPOCH_FILENAME`.
pub const CURRENT_EPOCH: &str = "currentEpoch";
/// What a writer's temporary file adds to the name (ZooKeeper's
/// `AtomicFileOutputStream.TMP_EXTENSION`).
pub const TMP_SUFFIX: &str = ".tmp";

/// The epoch in `dir/name`; `None` if the file does not exist. A file that does not
/// hold a decimal number is [`StorageError::Corrupt`] naming it. A `<name>.tmp` beside
/// it (a writer that crashed) is ignored.
pub async fn read_epoch<B: Backend>(backend: &B, dir: &Path, name: &str) -> Result<Option<i64>> {
    let path = dir.join(name);
    let bytes = match backend.map(&path).await {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(StorageError::Io {
                context: format!("reading {}", path.display()),
                source: e,
            })
        }
    };
    let text = std::str::from_utf8(&bytes).ok();
    let digits = text.map(|t| {
        t.strip_suffix("\r\n")
            .or_else(|| t.strip_suffix('\n'))
            .unwrap_or(t)
    });
    match digits.and_then(|d| d.parse::<i64>().ok()) {
        Some(e) => Ok(Some(e)),
        None => {
            let shown: String = bytes
                .iter()
                .take(40)
                .flat_map(|b| b.escape_ascii())
                .map(char::from)
                .collect();
            Err(StorageError::Corrupt(format!(
                "epoch file {} does not hold an epoch (decimal digits): it holds {} bytes \"{shown}\"{}",
                path.display(),
                bytes.len(),
                if bytes.len() > 40 { "..." } else { "" }
            )))
        }
    }
}

/// Replaces `dir/name` with `epoch`, atomically and durably (see the module doc): when
/// it returns Ok the file holds `epoch` and survives a power cut; when it fails the file
/// holds the old value or the new one.
pub async fn write_epoch<B: Backend>(
    backend: &B,
    dir: &Path,
    name: &str,
    epoch: i64,
) -> Result<()> {
    backend
        .create_dir_all(dir)
        .await
        .map_err(io_err(format!("creating {}", dir.display())))?;
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}{TMP_SUFFIX}"));
    let text = epoch.to_string();
    // O_DIRECT writes whole blocks: write one, then cut the file to the digits.
    let mut block = vec![0u8; ALIGN];
    block[..text.len()].copy_from_slice(text.as_bytes());
    let ctx = format!("writing {}", tmp.display());
    let file = backend.create(&tmp).await.map_err(io_err(&ctx))?;
    let written = async {
        file.write_at(0, &block).await?;
        file.set_len(text.len() as u64).await?;
        file.fdatasync().await
    }
    .await;
    let _ = file.close().await;
    written.map_err(io_err(ctx))?;
    backend.rename(&tmp, &path).await.map_err(io_err(format!(
        "renaming {} to {}",
        tmp.display(),
        path.display()
    )))?;
    backend
        .sync_dir(dir)
        .await
        .map_err(io_err(format!("syncing {}", dir.display())))
}

/// ZooKeeper's start-up rules for the epochs (`QuorumPeer.loadDataBase`), given the
/// zxid of the last txn of the recovered state. Returns `(acceptedEpoch,
/// currentEpoch)`.
///
/// - Stale `.tmp` files of crashed writers are removed.
/// - A missing file is created holding the epoch of `last_zxid` (`last_zxid >> 32`), as
///   ZooKeeper does for a data dir from before epochs existed.
/// - The last zxid from an epoch newer than `currentEpoch` is refused: this server
///   holds txns of an epoch whose NEWLEADER it never acknowledged.
/// - `acceptedEpoch < currentEpoch` is refused.
///
/// Unlike ZooKeeper, a `currentEpoch.tmp` is never taken for the current epoch: with
/// the write order of [`write_epoch`] a `.tmp` is only ever an uncommitted write.
pub async fn load_epochs<B: Backend>(
    backend: &B,
    dir: &Path,
    last_zxid: i64,
) -> Result<(i64, i64)> {
    backend
        .create_dir_all(dir)
        .await
        .map_err(io_err(format!("creating {}", dir.display())))?;
    let names = backend
        .list_dir(dir)
        .await
        .map_err(io_err(format!("listing {}", dir.display())))?;
    let mut removed = false;
    for name in [ACCEPTED_EPOCH, CURRENT_EPOCH] {
        let tmp = format!("{name}{TMP_SUFFIX}");
        if names.contains(&tmp) {
            let p = dir.join(&tmp);
            backend
                .remove(&p)
                .await
                .map_err(io_err(format!("removing {}", p.display())))?;
            removed = true;
        }
    }
    if removed {
        backend
            .sync_dir(dir)
            .await
            .map_err(io_err(format!("syncing {}", dir.display())))?;
    }
    let of_zxid = last_zxid >> 32;
    let accepted_file = read_epoch(backend, dir, ACCEPTED_EPOCH).await?;
    let mut current = match read_epoch(backend, dir, CURRENT_EPOCH).await? {
        Some(e) => e,
        None => {
            write_epoch(backend, dir, CURRENT_EPOCH, of_zxid).await?;
            of_zxid
        }
    };
    if of_zxid > current {
        // A learner logs the txns its new leader syncs to it (some of that leader's
        // epoch when it joins an established leader) before it writes currentEpoch;
        // a crash in between leaves a log ahead of currentEpoch. Those txns exist only
        // because a quorum acknowledged NEWLEADER for their epoch, and this server had
        // accepted it: adopt it, as ZooKeeper 3.4's updatingEpoch marker did. A log
        // ahead of acceptedEpoch as well is damage.
        if accepted_file.is_some_and(|a| of_zxid <= a) {
            tracing::warn!(
                "{} is {current:#x} but the log holds txns of epoch {of_zxid:#x} (a crash \
                 between syncing with a leader and acknowledging it): adopting {of_zxid:#x}",
                dir.join(CURRENT_EPOCH).display()
            );
            write_epoch(backend, dir, CURRENT_EPOCH, of_zxid).await?;
            current = of_zxid;
        } else {
            return Err(StorageError::Corrupt(format!(
                "The current epoch, {current:#x}, is older than the last zxid, {last_zxid:#x} \
                 (of epoch {of_zxid:#x}): {} is behind the data in {}",
                dir.join(CURRENT_EPOCH).display(),
                dir.display()
            )));
        }
    }
    let accepted = match accepted_file {
        Some(e) => e,
        None => {
            write_epoch(backend, dir, ACCEPTED_EPOCH, of_zxid).await?;
            of_zxid
        }
    };
    if accepted < current {
        return Err(StorageError::Corrupt(format!(
            "The accepted epoch, {accepted:#x} is less than the current epoch, {current:#x} \
             ({} and {})",
            dir.join(ACCEPTED_EPOCH).display(),
            dir.join(CURRENT_EPOCH).display()
        )));
    }
    Ok((accepted, current))
}
