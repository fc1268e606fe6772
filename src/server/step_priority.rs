//! Real-time priority for the stretches in which a shard holds what the commit pipeline
//! waits for: a snapshot walk step holds its reader flag (`one_tree.rs`), and the owner
//! cannot apply the next batch until the step drops it.
//!
//! Such a step costs well under a millisecond of CPU, yet held commits 3-13 ms in most
//! snapshots on two cores shared with a load generator, and 62-143 ms in a few: a trace
//! (sched_switch) showed the walker preempted mid-step by a kworker on its core, and the
//! scheduler then running another task (the load generator) for a whole 4 ms tick or
//! more before it came back to the walker. Fair scheduling gave the walker's core away
//! while it held the flag: priority inversion. The classic remedy is a priority ceiling:
//! while the step holds the flag its thread runs as SCHED_FIFO (priority 1, the lowest
//! real-time one), which no ordinary task preempts; interrupts still run. A step is a
//! bounded piece of work (`WALK_STEP` znodes), so the kernel's real-time throttling
//! (95 % of each second by default) is never near.
//!
//! Needs CAP_SYS_NICE or an RLIMIT_RTPRIO of at least 1 (systemd: `LimitRTPRIO=1`).
//! Without either the step runs at the thread's normal priority, as before, and the
//! server says so once at the first snapshot. A thread an operator already put in
//! another policy (`chrt`) is left alone.

use std::cell::Cell;

thread_local! {
    /// Whether this thread may be raised: unknown until the first try.
    static ALLOWED: Cell<Option<bool>> = const { Cell::new(None) };
}

/// This thread at real-time priority until dropped (or nothing, if it may not be).
pub struct Raised(());

impl Drop for Raised {
    fn drop(&mut self) {
        // SAFETY: sched_param is a plain C struct; pid 0 is the calling thread. Back to
        // SCHED_OTHER, which keeps the thread's nice value.
        let param = libc::sched_param { sched_priority: 0 };
        let r = unsafe { libc::sched_setscheduler(0, libc::SCHED_OTHER, &param) };
        if r != 0 {
            // Nothing to lose but fairness; say it, and do not raise this thread again.
            ALLOWED.with(|a| a.set(Some(false)));
            tracing::warn!(
                "could not return a snapshot thread to normal priority: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

/// Raises the calling thread to SCHED_FIFO priority 1 for as long as the result lives,
/// if it runs under the normal policy and may be raised.
pub fn raise() -> Option<Raised> {
    let allowed = ALLOWED.with(|a| a.get());
    if allowed == Some(false) {
        return None;
    }
    // The policy is looked at on the first try only: after that this thread is either
    // left alone or known to run under the normal policy between steps.
    // SAFETY: no pointers; pid 0 is the calling thread.
    if allowed.is_none() && unsafe { libc::sched_getscheduler(0) } != libc::SCHED_OTHER {
        ALLOWED.with(|a| a.set(Some(false)));
        tracing::info!("snapshot walk steps keep this thread's own scheduling policy");
        return None;
    }
    let param = libc::sched_param { sched_priority: 1 };
    // SAFETY: as above; `param` outlives the call.
    let r = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) };
    if r != 0 {
        let e = std::io::Error::last_os_error();
        ALLOWED.with(|a| a.set(Some(false)));
        tracing::info!(
            "snapshot walk steps run at normal priority ({e}): with CAP_SYS_NICE or \
             RLIMIT_RTPRIO >= 1 (systemd LimitRTPRIO=1) the scheduler does not preempt a \
             step while it holds commits"
        );
        return None;
    }
    if ALLOWED.with(|a| a.replace(Some(true))).is_none() {
        tracing::info!("snapshot walk steps run at real-time priority (SCHED_FIFO 1)");
    }
    Some(Raised(()))
}

#[cfg(test)]
mod tests {
    /// Raised, the thread runs as SCHED_FIFO; dropped, as SCHED_OTHER again. Where the
    /// test may not raise itself (no CAP_SYS_NICE), `raise` must say so and change
    /// nothing.
    #[test]
    fn a_raised_thread_runs_real_time_and_comes_back() {
        std::thread::spawn(|| {
            // SAFETY: no pointers.
            let policy = || unsafe { libc::sched_getscheduler(0) };
            assert_eq!(policy(), libc::SCHED_OTHER);
            match super::raise() {
                Some(r) => {
                    assert_eq!(policy(), libc::SCHED_FIFO);
                    drop(r);
                    assert_eq!(policy(), libc::SCHED_OTHER);
                    assert!(super::raise().is_some(), "raised a second time");
                }
                None => {
                    assert_eq!(policy(), libc::SCHED_OTHER);
                    assert!(super::raise().is_none(), "refused once, not tried again");
                }
            }
            assert_eq!(policy(), libc::SCHED_OTHER);
        })
        .join()
        .unwrap();
    }
}
