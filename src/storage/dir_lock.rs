//! One process per data directory. Two servers on one dataDir would append to the same
//! log and corrupt it, and nothing else stops the second: every shard listens with
//! SO_REUSEPORT, so a second server on the same port binds without an error. The server
//! and the offline tools that change files (`log truncate`, `purge`) hold an exclusive
//! `flock` on `corral.lock` in each directory they use; the kernel drops it when the
//! process exits, however it exits, so a crash leaves nothing to clean up.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

pub const LOCK_FILE: &str = "corral.lock";

/// Held locks; dropping it releases them.
#[derive(Debug)]
pub struct DirLock {
    _files: Vec<std::fs::File>,
}

/// Locks each directory (created if missing; duplicates locked once). Fails with a
/// message naming the directory when another process holds it.
pub fn lock_dirs(dirs: &[&Path]) -> Result<DirLock, String> {
    let mut seen: Vec<PathBuf> = Vec::new();
    let mut files = Vec::new();
    for dir in dirs {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let canon = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        if seen.contains(&canon) {
            continue;
        }
        let path = canon.join(LOCK_FILE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| format!("opening {}: {e}", path.display()))?;
        // SAFETY: flock on a descriptor this function owns.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            return Err(if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                format!(
                    "{} is in use by another corral process (it holds {}): stop that one first",
                    canon.display(),
                    path.display()
                )
            } else {
                format!("locking {}: {e}", path.display())
            });
        }
        seen.push(canon);
        files.push(file);
    }
    Ok(DirLock { _files: files })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_a_directory_is_refused_until_the_first_is_dropped() {
        let d = tempfile::tempdir().unwrap();
        let sub = d.path().join("logs");
        let first = lock_dirs(&[d.path(), &sub, d.path()]).unwrap();
        let err = lock_dirs(&[&sub]).unwrap_err();
        assert!(err.contains("in use by another corral process"), "{err}");
        drop(first);
        lock_dirs(&[d.path(), &sub]).unwrap();
    }
}
