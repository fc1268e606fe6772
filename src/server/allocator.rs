//! Giving freed memory back to the system when a connection that held much of it goes.
//!
//! The server runs on mimalloc (`main.rs`), which returns the pages a thread frees to
//! the system only after a delay, and only when that thread next allocates or frees at
//! page granularity. A connection closed for not reading its output (up to
//! `max_pending_output`, 64 MiB) frees all of it at once; if its shard then only serves
//! small requests, the pages can stay resident for half a minute, and a client that
//! provokes such closes one after another keeps the server's RSS high. So the shard
//! asks the allocator to purge at once after such a close. Rare (a slow reader's
//! close), and it walks only the calling thread's pages. The same delay keeps a quiet
//! shard's freed pages after a burst; each shard lets the allocator purge once a
//! second (`return_expired`).

/// A close that frees at least this much queued output purges at once.
pub const GIVE_BACK_AFTER: usize = 1 << 20;

/// Asks the allocator to return the calling thread's free pages to the system now.
/// Harmless when mimalloc is not the global allocator (unit tests): it then collects
/// an empty heap.
pub fn give_back_freed() {
    // SAFETY: `mi_collect` takes no pointers and may be called from any thread.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

/// Lets the allocator purge the calling thread's free pages whose purge delay has
/// passed. mimalloc checks that delay only when the thread allocates or frees at page
/// granularity, so a shard that went quiet after a burst (a populate, say) kept what
/// it freed; each shard calls this once a second from its report loop. Measured: RSS
/// holding 1M znodes after a populate with `shards=8`, three rounds, 330-345 MiB
/// without, 320-322 MiB with; a call takes under 0.2 ms, once 1.4-1.7 ms right after
/// the populate (the purge itself).
pub fn return_expired() {
    // SAFETY: `mi_collect` takes no pointers and may be called from any thread.
    unsafe { libmimalloc_sys::mi_collect(false) }
}
