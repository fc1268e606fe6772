//! The observer thread of a run: at the start and at the end of the measured window it
//! reads the server processes' CPU time (`--server-pid`), the client's own (getrusage)
//! and each server's `mntr`; in between it polls `srvr` every 250 ms for the peak of
//! outstanding requests. Nothing of it runs on the client's worker threads.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::mntr;
use crate::procstat::{self, Reading};
use crate::report::{self, ClientCpu};
use crate::run::{Shared, Timing};

/// What to observe besides the client.
#[derive(Debug, Clone, Default)]
pub struct ProbeConfig {
    /// Server processes whose CPU is charged to the run.
    pub pids: Vec<u32>,
    /// Servers asked `mntr` / `srvr` (empty: none).
    pub hosts: Vec<String>,
    /// The servers' `globalOutstandingLimit`, to judge the peak against.
    pub limit: Option<u64>,
}

struct Snapshot {
    at: Instant,
    client: (f64, f64),
    procs: Vec<Reading>,
    mntr: Vec<Option<BTreeMap<String, f64>>>,
}

fn snapshot(cfg: &ProbeConfig) -> Snapshot {
    // CPU first (cheap, exact instant), then the servers' counters.
    let at = Instant::now();
    let client = report::rusage();
    let procs = procstat::read_all(&cfg.pids);
    let mntr = cfg.hosts.iter().map(|h| mntr::mntr(h)).collect();
    Snapshot {
        at,
        client,
        procs,
        mntr,
    }
}

/// `Outstanding: N` of a `srvr` answer.
pub fn srvr_outstanding(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("Outstanding:"))
        .and_then(|v| v.trim().parse().ok())
}

/// What the probe saw over the window.
pub struct Observed {
    pub window_s: f64,
    pub client: ClientCpu,
    pub before: Vec<Reading>,
    pub after: Vec<Reading>,
    pub rss: Vec<Option<f64>>,
    pub throttle: Vec<mntr::Throttle>,
}

/// Sleeps until `target_ns` on the run's clock, or until `finished`.
fn sleep_until(sh: &Shared, target_ns: u64, finished: &AtomicBool) {
    loop {
        let now = sh.now();
        if now >= target_ns || finished.load(Relaxed) {
            return;
        }
        std::thread::sleep(Duration::from_nanos((target_ns - now).min(50_000_000)));
    }
}

/// Starts the observer; join it once the run's threads have ended (and `finished` is
/// set, which ends a window bounded by an op count rather than by time).
pub fn spawn(
    cfg: ProbeConfig,
    sh: Arc<Shared>,
    timing: Timing,
    finished: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Observed> {
    std::thread::spawn(move || {
        sleep_until(&sh, timing.measure_from_ns, &finished);
        let start = snapshot(&cfg);
        let mut peaks: Vec<Option<u64>> = start
            .mntr
            .iter()
            .map(|m| {
                m.as_ref()
                    .and_then(|m| m.get("outstanding_requests"))
                    .map(|v| *v as u64)
            })
            .collect();
        // Poll the peak of outstanding requests every 250 ms.
        const POLL_NS: u64 = 250_000_000;
        let mut next = sh.now() + POLL_NS;
        while !finished.load(Relaxed) && sh.now() < timing.end_ns && !cfg.hosts.is_empty() {
            sleep_until(&sh, next.min(timing.end_ns), &finished);
            if sh.now() >= timing.end_ns || finished.load(Relaxed) {
                break;
            }
            next = sh.now() + POLL_NS;
            for (i, h) in cfg.hosts.iter().enumerate() {
                let v = mntr::four_letter(h, "srvr", Duration::from_secs(1))
                    .ok()
                    .and_then(|t| srvr_outstanding(&t));
                if let Some(v) = v {
                    peaks[i] = Some(peaks[i].map_or(v, |p| p.max(v)));
                }
            }
        }
        sleep_until(&sh, timing.end_ns, &finished);
        let end = snapshot(&cfg);
        let rss = cfg.pids.iter().map(|&p| procstat::rss_mib(p)).collect();
        for (i, m) in end.mntr.iter().enumerate() {
            if let Some(v) = m.as_ref().and_then(|m| m.get("outstanding_requests")) {
                peaks[i] = Some(peaks[i].map_or(*v as u64, |p| p.max(*v as u64)));
            }
        }
        let throttle = cfg
            .hosts
            .iter()
            .enumerate()
            .map(|(i, h)| {
                mntr::assess(
                    h,
                    start.mntr[i].as_ref(),
                    end.mntr[i].as_ref(),
                    peaks[i],
                    cfg.limit,
                )
            })
            .collect();
        let window_s = end.at.duration_since(start.at).as_secs_f64();
        let (u, s) = (end.client.0 - start.client.0, end.client.1 - start.client.1);
        Observed {
            window_s,
            client: ClientCpu {
                user_s: u,
                sys_s: s,
                wall_s: window_s,
                cores: if window_s > 0.0 {
                    (u + s) / window_s
                } else {
                    0.0
                },
            },
            before: start.procs,
            after: end.procs,
            rss,
            throttle,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srvr_outstanding_parses() {
        let t = "Zookeeper version: 3.8.0\nLatency min/avg/max: 0/0.1/9\nReceived: 5\n\
                 Sent: 4\nConnections: 1\nOutstanding: 17\nZxid: 0x5\nMode: standalone\n";
        assert_eq!(srvr_outstanding(t), Some(17));
        assert_eq!(srvr_outstanding("nothing"), None);
    }
}
