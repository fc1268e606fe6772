//! Transparent huge pages, off for the server process by default.
//!
//! With THP the allocator's fresh arenas are backed by 2 MiB pages, and the first touch
//! of each is a page fault that zeroes 2 MiB (in this VM, about a millisecond, often
//! several in a row). Those faults land where a growing tree first touches its new
//! memory: in the owner's apply, under the writer flag of `one_tree.rs`, where every
//! shard's reads wait for them. Measured while a tree grew to 600k znodes under a read
//! and write load (2 shards): with THP, reads waited up to 30-35 ms for the writer and
//! the load's read max was 18.8 ms; without, 3.9 ms and 5.5 ms, creates 10 % faster,
//! and getData at 128 in flight and setData at 256 unchanged. A 1M-znode restart
//! took 0.61-0.64 s against 0.74-1.75 s, and RSS was 474 against 491 MiB.
//!
//! `CORRAL_THP=1` in the environment keeps the system's THP setting for the process.

/// Disables THP for this process (`PR_SET_THP_DISABLE`) unless `CORRAL_THP=1`.
/// Returns whether it did.
pub fn disable_unless_asked() -> std::io::Result<bool> {
    if std::env::var("CORRAL_THP").is_ok_and(|v| v == "1") {
        return Ok(false);
    }
    // SAFETY: PR_SET_THP_DISABLE takes an integer flag and no pointers.
    let r = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(true)
}
