//! Whether a server throttled during a run, from its `mntr` four-letter word (corral
//! answers it with ZooKeeper's keys): the throttle counters' growth between the start
//! and the end of the measured window, and the peak of `zk_outstanding_requests`
//! polled during it, against the `globalOutstandingLimit` both servers were given.
//!
//! ZooKeeper 3.8 has no counter for the throttling `globalOutstandingLimit` does (a
//! connection simply stops being read while more than the limit is in process), so the
//! peak of `outstanding_requests` at or above the limit is what shows it; its
//! counters show the other kinds (`throttled_ops`, `request_throttle_wait_count`,
//! `stale_requests_dropped`, `large_requests_rejected`, `connection_rejected`,
//! `connection_drop_count`). A counter corral adds with `throttl` in its name is
//! picked up too.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Counters whose growth means requests were held back or refused.
pub const THROTTLE_COUNTERS: &[&str] = &[
    "throttled_ops",
    "request_throttle_wait_count",
    "stale_requests_dropped",
    "large_requests_rejected",
    "connection_rejected",
    "connection_drop_count",
];

/// Prefixes of summary values (`zk_avg_x`, `zk_p99_x`, ...): not counters.
const SUMMARY_PREFIXES: &[&str] = &[
    "avg_", "min_", "max_", "cnt_", "sum_", "p50_", "p95_", "p99_", "p999_",
];

pub fn is_throttle_counter(key: &str) -> bool {
    THROTTLE_COUNTERS.contains(&key)
        || (key.contains("throttl") && !SUMMARY_PREFIXES.iter().any(|p| key.starts_with(p)))
}

/// Sends a four-letter word and reads the answer until the server closes.
pub fn four_letter(addr: &str, cmd: &str, timeout: Duration) -> std::io::Result<String> {
    let sa = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other(format!("{addr}: no address")))?;
    let mut s = TcpStream::connect_timeout(&sa, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.write_all(cmd.as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// The numeric values of a `mntr` answer, keys without `zk_`.
pub fn parse_mntr(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once('\t')?;
            let k = k.trim().strip_prefix("zk_").unwrap_or(k.trim());
            Some((k.to_string(), v.trim().parse::<f64>().ok()?))
        })
        .collect()
}

/// `mntr` of `addr`, or None when it does not answer one (4lw not allowed, down).
pub fn mntr(addr: &str) -> Option<BTreeMap<String, f64>> {
    let text = four_letter(addr, "mntr", Duration::from_secs(2)).ok()?;
    let m = parse_mntr(&text);
    (!m.is_empty()).then_some(m)
}

/// What one server's `mntr` said about throttling over the window.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Throttle {
    pub host: String,
    /// `mntr` answered at both ends.
    pub observed: bool,
    /// Throttle counters that grew, with their growth.
    pub counters: BTreeMap<String, f64>,
    /// Highest `outstanding_requests` seen (`srvr` polled every 250 ms, and `mntr` at
    /// both ends).
    pub peak_outstanding: Option<u64>,
    /// The `globalOutstandingLimit` the servers were given (`--outstanding-limit`).
    pub limit: Option<u64>,
    pub throttled: bool,
    /// Why `throttled` is set, in words.
    pub reasons: Vec<String>,
}

/// Judges one server from its `mntr` at both ends and the polled peak.
pub fn assess(
    host: &str,
    before: Option<&BTreeMap<String, f64>>,
    after: Option<&BTreeMap<String, f64>>,
    peak_outstanding: Option<u64>,
    limit: Option<u64>,
) -> Throttle {
    let mut t = Throttle {
        host: host.to_string(),
        observed: before.is_some() && after.is_some(),
        peak_outstanding,
        limit,
        ..Throttle::default()
    };
    if let (Some(b), Some(a)) = (before, after) {
        for (k, v) in a {
            if !is_throttle_counter(k) {
                continue;
            }
            let grew = v - b.get(k).copied().unwrap_or(0.0);
            if grew > 0.0 {
                t.counters.insert(k.clone(), grew);
                t.reasons.push(format!("{k} +{grew}"));
            }
        }
    }
    if let (Some(p), Some(l)) = (peak_outstanding, limit) {
        if p >= l {
            t.reasons
                .push(format!("outstanding_requests reached {p} (limit {l})"));
        }
    }
    t.throttled = !t.reasons.is_empty();
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn mntr_text_parses_numbers_only() {
        let t = "zk_version\t3.8.0-x, built on 2024\nzk_outstanding_requests\t12\n\
                 zk_avg_latency\t0.25\nzk_throttled_ops\t0\nzk_server_state\tleader\n";
        let v = parse_mntr(t);
        assert_eq!(v.len(), 3);
        assert_eq!(v["outstanding_requests"], 12.0);
        assert_eq!(v["avg_latency"], 0.25);
    }

    #[test]
    fn throttle_counters_exclude_summaries() {
        assert!(is_throttle_counter("throttled_ops"));
        assert!(is_throttle_counter("request_throttle_wait_count"));
        assert!(is_throttle_counter("connection_rejected"));
        assert!(is_throttle_counter("corral_throttled_reads"));
        assert!(!is_throttle_counter("p99_request_throttle_queue_time_ms"));
        assert!(!is_throttle_counter("cnt_request_throttle_queue_time_ms"));
        assert!(!is_throttle_counter("packets_sent"));
    }

    #[test]
    fn growth_of_a_counter_or_a_peak_at_the_limit_is_throttling() {
        let b = m(&[("throttled_ops", 5.0), ("packets_sent", 1.0)]);
        let quiet = m(&[("throttled_ops", 5.0), ("packets_sent", 900.0)]);
        let t = assess("h:1", Some(&b), Some(&quiet), Some(999), Some(1000));
        assert!(t.observed && !t.throttled, "{t:?}");
        let grew = m(&[("throttled_ops", 7.0), ("request_throttle_wait_count", 1.0)]);
        let t = assess("h:1", Some(&b), Some(&grew), Some(10), Some(1000));
        assert!(t.throttled);
        assert_eq!(t.counters["throttled_ops"], 2.0);
        assert_eq!(t.counters["request_throttle_wait_count"], 1.0);
        let t = assess("h:1", Some(&b), Some(&quiet), Some(1000), Some(1000));
        assert!(t.throttled);
        assert!(t.reasons[0].contains("reached 1000"), "{:?}", t.reasons);
        // No mntr: nothing is known, nothing claimed.
        let t = assess("h:1", None, None, None, Some(1000));
        assert!(!t.observed && !t.throttled);
    }
}
