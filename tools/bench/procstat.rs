//! CPU accounting: a server process's CPU time from `/proc/<pid>/stat` (utime + stime,
//! every thread of the process, dead threads included), the client's own from
//! getrusage, both read at the start and the end of the measured window, so a figure
//! per successful op can be given. When client and servers share two cores, server
//! CPU per op is the fair comparison: throughput alone rewards whoever takes the
//! client's share of the machine.

use serde::{Deserialize, Serialize};

/// Clock ticks per second of `/proc/<pid>/stat` times.
pub fn clk_tck() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// (comm, utime + stime in clock ticks) from the text of `/proc/<pid>/stat`. The
/// command name is in parentheses and may itself hold spaces and parentheses, so the
/// fields are counted from the last `)`: state is field 3, utime 14, stime 15.
pub fn parse_stat(text: &str) -> Option<(String, u64)> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    let rest: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    // rest[0] is field 3 (state): utime is field 14, so rest[11]; stime rest[12].
    let utime: u64 = rest.get(11)?.parse().ok()?;
    let stime: u64 = rest.get(12)?.parse().ok()?;
    Some((comm, utime + stime))
}

/// (comm, CPU seconds so far) of process `pid`, or None if it is gone.
pub fn process_cpu(pid: u32) -> Option<(String, f64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (comm, ticks) = parse_stat(&text)?;
    Some((comm, ticks as f64 / clk_tck()))
}

/// Resident set size of `pid` in MiB (VmRSS), or None if it is gone.
pub fn rss_mib(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
}

/// One server process over the measured window.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PidCpu {
    pub pid: u32,
    pub comm: String,
    /// CPU seconds used inside the window; None when the process was gone at either
    /// end (then the totals leave it out and `complete` is false).
    pub cpu_s: Option<f64>,
    /// VmRSS at the end of the window.
    pub rss_mib: Option<f64>,
}

/// Every server process given by `--server-pid`, over the measured window.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ServerCpu {
    pub per_server: Vec<PidCpu>,
    /// Sum over the servers.
    pub cpu_s: f64,
    /// cpu_s / window: 1.0 is one core kept busy.
    pub cores: f64,
    /// cpu_s per successful op, in microseconds (None with no successful op).
    pub us_per_op: Option<f64>,
    /// Every process was there at both ends.
    pub complete: bool,
}

/// Microseconds of CPU per op, or None when no op succeeded.
pub fn us_per_op(cpu_s: f64, ops: u64) -> Option<f64> {
    (ops > 0).then(|| cpu_s * 1e6 / ops as f64)
}

/// A reading of one process at one end of the window: (pid, comm and CPU seconds).
pub type Reading = (u32, Option<(String, f64)>);

pub fn read_all(pids: &[u32]) -> Vec<Reading> {
    pids.iter().map(|&p| (p, process_cpu(p))).collect()
}

/// Server CPU over the window from the readings at its start and end, the window's
/// length and the successful ops completed in it.
pub fn server_cpu(
    before: &[Reading],
    after: &[Reading],
    rss: &[Option<f64>],
    window_s: f64,
    ok_ops: u64,
) -> ServerCpu {
    let mut per_server = Vec::new();
    let mut complete = true;
    for (i, (pid, b)) in before.iter().enumerate() {
        let a = after
            .iter()
            .find(|(p, _)| p == pid)
            .and_then(|(_, a)| a.as_ref());
        let (comm, cpu_s) = match (b, a) {
            (Some((comm, b)), Some((_, a))) => (comm.clone(), Some((a - b).max(0.0))),
            (Some((comm, _)), None) | (None, Some((comm, _))) => (comm.clone(), None),
            (None, None) => (String::new(), None),
        };
        complete &= cpu_s.is_some();
        per_server.push(PidCpu {
            pid: *pid,
            comm,
            cpu_s,
            rss_mib: rss.get(i).copied().flatten(),
        });
    }
    let cpu_s: f64 = per_server.iter().filter_map(|p| p.cpu_s).sum();
    ServerCpu {
        cpu_s,
        cores: if window_s > 0.0 {
            cpu_s / window_s
        } else {
            0.0
        },
        us_per_op: us_per_op(cpu_s, ok_ops),
        complete,
        per_server,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        // A comm with a space and a parenthesis, as a JVM thread name can be.
        let line = "4242 (java (main) x) S 1 4242 4242 0 -1 4194560 53521 0 0 0 \
                    1234 567 0 0 20 0 31 0 5461 7036153856 118017 18446744073709551615";
        let (comm, ticks) = parse_stat(line).unwrap();
        assert_eq!(comm, "java (main) x");
        assert_eq!(ticks, 1234 + 567);
        assert!(parse_stat("12 (x) S 1 2").is_none());
        assert!(parse_stat("garbage").is_none());
    }

    #[test]
    fn our_own_stat_parses_and_moves_forward() {
        let me = std::process::id();
        let (_, a) = process_cpu(me).unwrap();
        let mut x = 0u64;
        for i in 0..50_000_000u64 {
            x = x.wrapping_add(i ^ (i >> 3));
        }
        std::hint::black_box(x);
        let (_, b) = process_cpu(me).unwrap();
        assert!(b >= a);
        assert!(rss_mib(me).unwrap() > 0.0);
        assert!(process_cpu(u32::MAX).is_none());
    }

    #[test]
    fn cpu_per_op_sums_every_server_over_successful_ops() {
        let before = vec![
            (10, Some(("corral".to_string(), 1.0))),
            (11, Some(("java".to_string(), 5.0))),
        ];
        let after = vec![
            (10, Some(("corral".to_string(), 3.0))),
            (11, Some(("java".to_string(), 6.0))),
        ];
        let c = server_cpu(&before, &after, &[Some(30.0), None], 2.0, 1_000_000);
        assert_eq!(c.cpu_s, 3.0);
        assert_eq!(c.cores, 1.5);
        assert_eq!(c.us_per_op, Some(3.0));
        assert!(c.complete);
        assert_eq!(c.per_server[0].cpu_s, Some(2.0));
        assert_eq!(c.per_server[0].rss_mib, Some(30.0));
        assert_eq!(c.per_server[1].rss_mib, None);
        // A process gone at the end is left out and the figure marked incomplete.
        let gone = vec![(10, Some(("corral".to_string(), 3.0))), (11, None)];
        let c = server_cpu(&before, &gone, &[], 2.0, 0);
        assert_eq!(c.cpu_s, 2.0);
        assert!(!c.complete);
        assert_eq!(c.us_per_op, None);
        assert_eq!(us_per_op(0.5, 250_000), Some(2.0));
    }
}
