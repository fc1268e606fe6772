//! Measurements and what is written from them: per-thread recorders (latency in
//! nanoseconds in HdrHistograms), the result record (JSON), HdrHistogram's percentile
//! distribution file (.hgrm), the final table, the errors by code, and the client's own
//! CPU time (getrusage), so a client that is the bottleneck shows.
//!
//! Throughput and latency count only successful replies: an error reply (a refusal is
//! fast) is counted by its ZooKeeper error code instead, and a code not declared
//! expected (`--expect-errors`) makes the run exit non-zero.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::mntr::Throttle;
use crate::procstat::ServerCpu;
use crate::workload::RunConfig;

/// Latencies are recorded in nanoseconds, 1 ns .. 100 s, 3 significant digits.
pub fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid histogram bounds")
}

/// What one worker thread measured. Sessions on a thread share it (no lock: the
/// thread's runtime runs one task at a time).
pub struct Recorder {
    /// Latency of measured ops (from the intended send time in fixed-rate mode).
    pub latency: Histogram<u64>,
    /// Fixed-rate mode: latency from the actual send (what coordinated omission hides).
    pub service: Histogram<u64>,
    /// Watch workload: time until the last watcher of a round was notified.
    pub fanout: Histogram<u64>,
    /// Since the last progress tick (every op, warm-up included).
    pub interval: Histogram<u64>,
    /// Ops meant to be sent inside the window, whatever their reply.
    pub ops: u64,
    /// Of those, the ones answered without error.
    pub ok: u64,
    /// Successful ops completed inside the measured window (whenever they were meant to
    /// be sent): the throughput.
    pub ok_in_window: u64,
    /// Open loop: requests scheduled inside the window that were never sent because
    /// the server kept every session's window full. Each is in `latency` with the
    /// time it had waited at the end, a lower bound.
    pub missed: u64,
    pub by_kind: BTreeMap<&'static str, u64>,
    /// Error replies of measured ops, by code.
    pub errors: BTreeMap<i32, u64>,
    /// Error replies of every op, warm-up and drain included, by code.
    pub errors_all: BTreeMap<i32, u64>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            latency: new_hist(),
            service: new_hist(),
            fanout: new_hist(),
            interval: new_hist(),
            ops: 0,
            ok: 0,
            ok_in_window: 0,
            missed: 0,
            by_kind: BTreeMap::new(),
            errors: BTreeMap::new(),
            errors_all: BTreeMap::new(),
        }
    }
}

impl Recorder {
    pub fn merge(&mut self, o: &Recorder) {
        self.latency.add(&o.latency).expect("same bounds");
        self.service.add(&o.service).expect("same bounds");
        self.fanout.add(&o.fanout).expect("same bounds");
        self.ops += o.ops;
        self.ok += o.ok;
        self.ok_in_window += o.ok_in_window;
        self.missed += o.missed;
        for (k, v) in &o.by_kind {
            *self.by_kind.entry(k).or_default() += v;
        }
        for (k, v) in &o.errors {
            *self.errors.entry(*k).or_default() += v;
        }
        for (k, v) in &o.errors_all {
            *self.errors_all.entry(*k).or_default() += v;
        }
    }
}

/// Latency summary in microseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub p9999: f64,
    pub max: f64,
}

pub fn percentiles(h: &Histogram<u64>) -> Percentiles {
    if h.is_empty() {
        return Percentiles::default();
    }
    let us = |v: u64| v as f64 / 1000.0;
    Percentiles {
        count: h.len(),
        min: us(h.min()),
        mean: h.mean() / 1000.0,
        p50: us(h.value_at_quantile(0.5)),
        p90: us(h.value_at_quantile(0.9)),
        p99: us(h.value_at_quantile(0.99)),
        p999: us(h.value_at_quantile(0.999)),
        p9999: us(h.value_at_quantile(0.9999)),
        max: us(h.max()),
    }
}

/// (percentile 0..100, latency in microseconds) points of the whole distribution, for
/// plotting; HdrHistogram's percentile iteration, 5 ticks per half distance.
pub fn curve(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    h.iter_quantiles(5)
        .map(|v| {
            (
                v.quantile_iterated_to() * 100.0,
                v.value_iterated_to() as f64 / 1000.0,
            )
        })
        .collect()
}

/// HdrHistogram's `outputPercentileDistribution` text (values in microseconds), the
/// format HdrHistogram's plotter and `hdr-plot` read.
pub fn hgrm(h: &Histogram<u64>) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0u64;
    for v in h.iter_quantiles(5) {
        total += v.count_since_last_iteration();
        let q = v.quantile_iterated_to();
        let us = v.value_iterated_to() as f64 / 1000.0;
        if q < 1.0 {
            let _ = writeln!(s, "{us:12.3} {q:2.12} {total:10} {:14.2}", 1.0 / (1.0 - q));
        } else {
            let _ = writeln!(s, "{us:12.3} {q:2.12} {total:10}");
        }
    }
    let _ = writeln!(
        s,
        "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]",
        h.mean() / 1000.0,
        h.stdev() / 1000.0
    );
    let _ = writeln!(
        s,
        "#[Max     = {:12.3}, Total count    = {:12}]",
        h.max() as f64 / 1000.0,
        h.len()
    );
    let _ = writeln!(
        s,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        h.buckets(),
        h.distinct_values()
    );
    s
}

/// The client's own CPU use over the run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ClientCpu {
    pub user_s: f64,
    pub sys_s: f64,
    pub wall_s: f64,
    /// (user + sys) / wall: 1.0 is one core kept busy.
    pub cores: f64,
}

/// This process's (user, system) CPU seconds so far.
pub fn rusage() -> (f64, f64) {
    // SAFETY: getrusage writes a plain struct we own.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    (t(u.ru_utime), t(u.ru_stime))
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub kernel: String,
    pub hostname: String,
}

pub fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("unknown")
        .trim()
        .to_string();
    let rd = |p: &str| {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    Machine {
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        cpu_model,
        kernel: rd("/proc/sys/kernel/osrelease"),
        hostname: rd("/proc/sys/kernel/hostname"),
    }
}

/// One run's result, as written by `--json` and read back by `plot`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunResult {
    pub label: String,
    pub workload: String,
    pub config: serde_json::Value,
    /// Seconds measured (after warm-up).
    pub measured_s: f64,
    /// Ops meant to be sent inside the window, errors included.
    pub ops: u64,
    /// Of those, answered without error.
    #[serde(default)]
    pub ok_ops: u64,
    /// Successful replies per second of the window (errors never count).
    pub ops_per_sec: f64,
    /// Requests in flight over all sessions (closed loop: the concurrency).
    #[serde(default)]
    pub inflight: usize,
    /// Open loop: scheduled requests never sent (see `Recorder::missed`).
    #[serde(default)]
    pub missed: u64,
    /// Error replies of measured ops.
    pub errors: u64,
    pub errors_by_code: BTreeMap<String, u64>,
    /// Error replies over the whole run (warm-up and drain too), by code.
    #[serde(default)]
    pub errors_all_by_code: BTreeMap<String, u64>,
    /// Codes declared expected (`--expect-errors`).
    #[serde(default)]
    pub expected_errors: Vec<String>,
    /// Error replies over the whole run whose code was not expected, plus failed
    /// sessions: non-zero makes the run exit non-zero.
    #[serde(default)]
    pub unexpected_errors: u64,
    /// Sessions that failed (connection lost, refused), with why.
    #[serde(default)]
    pub session_failures: Vec<String>,
    pub ops_by_kind: BTreeMap<String, u64>,
    pub latency_us: Percentiles,
    /// Fixed-rate runs: latency from the actual send time (not corrected).
    pub service_latency_us: Option<Percentiles>,
    /// Watch runs: time until every watcher of a round was notified.
    pub fanout_latency_us: Option<Percentiles>,
    /// (percentile, microseconds) over the whole distribution.
    pub curve: Vec<(f64, f64)>,
    /// The client's CPU over the whole run (connects, warm-up and drain included).
    pub client_cpu: ClientCpu,
    /// The client's CPU inside the measured window.
    #[serde(default)]
    pub client_cpu_window: Option<ClientCpu>,
    /// Client CPU per successful op inside the window, microseconds.
    #[serde(default)]
    pub client_us_per_op: Option<f64>,
    /// CPU of the `--server-pid` processes inside the window.
    #[serde(default)]
    pub server_cpu: Option<ServerCpu>,
    /// Per server asked `mntr`: whether it throttled during the window.
    #[serde(default)]
    pub throttle: Vec<Throttle>,
    /// Some server throttled, or some reply was THROTTLEDOP.
    #[serde(default)]
    pub throttled: bool,
    pub machine: Machine,
    pub unix_time: u64,
    /// TLS connections: the protocol and cipher suite negotiated (of the process's first
    /// TLS connection); None for plain TCP.
    #[serde(default)]
    pub tls: Option<String>,
}

pub fn error_name(code: i32) -> String {
    if code == crate::run::BAD_REPLY {
        return "BadReply".into();
    }
    match corral::proto::ErrorCode::from_i32(code) {
        Some(e) => format!("{e:?}({code})"),
        None => format!("{code}"),
    }
}

/// An error code from its number ("-101") or its name as corral spells it ("NoNode",
/// any case; also "BadReply" for corral-bench's own).
pub fn parse_error_code(s: &str) -> Result<i32, String> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i32>() {
        return Ok(n);
    }
    if s.eq_ignore_ascii_case("BadReply") {
        return Ok(crate::run::BAD_REPLY);
    }
    (-200..=0)
        .find(|&c| {
            corral::proto::ErrorCode::from_i32(c)
                .is_some_and(|e| format!("{e:?}").eq_ignore_ascii_case(s))
        })
        .ok_or_else(|| format!("unknown error code {s:?} (a number, or a name such as NoNode)"))
}

/// `--expect-errors`: comma-separated codes.
pub fn parse_error_codes(s: &str) -> Result<Vec<i32>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(parse_error_code)
        .collect()
}

/// Error replies whose code is not in `expected`.
pub fn unexpected(errors: &BTreeMap<i32, u64>, expected: &[i32]) -> u64 {
    errors
        .iter()
        .filter(|(c, _)| !expected.contains(c))
        .map(|(_, n)| n)
        .sum()
}

/// The errors by code, for stderr: measured (inside the window) and over the whole run.
pub fn error_table(
    measured: &BTreeMap<i32, u64>,
    all: &BTreeMap<i32, u64>,
    expected: &[i32],
) -> String {
    let mut s = String::new();
    if all.is_empty() && measured.is_empty() {
        return s;
    }
    let _ = writeln!(
        s,
        "  {:>6}  {:<28} {:>10} {:>10}  expected",
        "code", "error", "measured", "whole run"
    );
    let mut codes: Vec<i32> = all.keys().chain(measured.keys()).copied().collect();
    codes.sort_unstable();
    codes.dedup();
    for c in codes {
        let _ = writeln!(
            s,
            "  {c:>6}  {:<28} {:>10} {:>10}  {}",
            error_name(c),
            measured.get(&c).copied().unwrap_or(0),
            all.get(&c).copied().unwrap_or(0),
            if expected.contains(&c) { "yes" } else { "NO" }
        );
    }
    s
}

pub fn build_result(cfg: &RunConfig, rec: &Recorder, measured_s: f64, cpu: ClientCpu) -> RunResult {
    let errors: u64 = rec.errors.values().sum();
    let throughput_ops = if cfg.ops.is_some() {
        rec.ok
    } else {
        rec.ok_in_window
    };
    RunResult {
        label: cfg.label.clone(),
        workload: cfg.workload.clone(),
        config: serde_json::to_value(cfg).unwrap_or_default(),
        measured_s,
        ops: rec.ops,
        ok_ops: rec.ok,
        inflight: cfg.total_inflight(),
        missed: rec.missed,
        ops_per_sec: if measured_s > 0.0 {
            throughput_ops as f64 / measured_s
        } else {
            0.0
        },
        errors,
        errors_by_code: rec
            .errors
            .iter()
            .map(|(k, v)| (error_name(*k), *v))
            .collect(),
        errors_all_by_code: rec
            .errors_all
            .iter()
            .map(|(k, v)| (error_name(*k), *v))
            .collect(),
        expected_errors: Vec::new(),
        unexpected_errors: 0,
        session_failures: Vec::new(),
        ops_by_kind: rec
            .by_kind
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect(),
        latency_us: percentiles(&rec.latency),
        service_latency_us: (!rec.service.is_empty()).then(|| percentiles(&rec.service)),
        fanout_latency_us: (!rec.fanout.is_empty()).then(|| percentiles(&rec.fanout)),
        curve: curve(&rec.latency),
        client_cpu: cpu,
        client_cpu_window: None,
        client_us_per_op: None,
        server_cpu: None,
        throttle: Vec::new(),
        throttled: rec
            .errors_all
            .contains_key(&(corral::proto::ErrorCode::Throttled as i32)),
        machine: machine(),
        unix_time: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        tls: None,
    }
}

fn fmt_us(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.1} ms", v / 1000.0)
    } else if v >= 1000.0 {
        format!("{:.2} ms", v / 1000.0)
    } else {
        format!("{v:.0} us")
    }
}

fn lat_row(name: &str, p: &Percentiles) -> String {
    format!(
        "  {name:<16} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}  (mean {})\n",
        fmt_us(p.min),
        fmt_us(p.p50),
        fmt_us(p.p90),
        fmt_us(p.p99),
        fmt_us(p.p999),
        fmt_us(p.max),
        fmt_us(p.mean)
    )
}

/// The final human-readable table.
pub fn table(cfg: &RunConfig, r: &RunResult) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "corral-bench {} [{}] against {}",
        r.workload,
        r.label,
        cfg.hosts.join(",")
    );
    let mode = match cfg.rate {
        Some(rate) => format!("open loop at {rate:.0} ops/s (latency from intended send time)"),
        None => "closed loop".into(),
    };
    let shape = match cfg.inflight {
        Some(_) => format!("{} in flight over {} sessions", r.inflight, cfg.sessions),
        None => format!(
            "{} sessions x {} outstanding",
            cfg.sessions, cfg.outstanding
        ),
    };
    let _ = writeln!(
        s,
        "  {shape}, {} B values, {} keys, {} thread(s), {mode}",
        cfg.value_size, cfg.keys, cfg.threads
    );
    if let Some(t) = &r.tls {
        let _ = writeln!(s, "  over TLS: {t}");
    }
    let _ = writeln!(
        s,
        "  measured {:.1} s after {:.1} s warm-up: {} ok ops, {:.0} ok ops/s, {} errors{}",
        r.measured_s,
        cfg.warmup_s,
        r.ok_ops,
        r.ops_per_sec,
        r.errors,
        if r.errors_by_code.is_empty() {
            String::new()
        } else {
            format!(" {:?}", r.errors_by_code)
        }
    );
    if r.missed > 0 {
        let _ = writeln!(
            s,
            "  {} scheduled requests never sent: the server kept every window full (in latency as a lower bound)",
            r.missed
        );
    }
    if r.ops_by_kind.len() > 1 {
        let _ = writeln!(s, "  ops by kind: {:?}", r.ops_by_kind);
    }
    let _ = writeln!(
        s,
        "  {:<16} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "latency", "min", "p50", "p90", "p99", "p99.9", "max"
    );
    s.push_str(&lat_row(
        if cfg.rate.is_some() {
            "corrected"
        } else {
            "request"
        },
        &r.latency_us,
    ));
    if let Some(p) = &r.service_latency_us {
        s.push_str(&lat_row("from actual send", p));
    }
    if let Some(p) = &r.fanout_latency_us {
        s.push_str(&lat_row("fan-out (last)", p));
    }
    let _ = writeln!(
        s,
        "  client CPU: {:.2} s user + {:.2} s sys over {:.1} s = {:.0}% of one core ({} cpus: {})",
        r.client_cpu.user_s,
        r.client_cpu.sys_s,
        r.client_cpu.wall_s,
        r.client_cpu.cores * 100.0,
        r.machine.cpus,
        r.machine.cpu_model
    );
    if let Some(c) = &r.client_cpu_window {
        let _ = writeln!(
            s,
            "  client CPU in the window: {:.0}% of one core, {} per ok op",
            c.cores * 100.0,
            r.client_us_per_op.map_or("n/a".into(), fmt_us_precise)
        );
    }
    if let Some(c) = &r.server_cpu {
        let per: Vec<String> = c
            .per_server
            .iter()
            .map(|p| {
                format!(
                    "{} {}: {}",
                    p.comm,
                    p.pid,
                    p.cpu_s.map_or("gone".into(), |v| format!("{v:.2} s"))
                )
            })
            .collect();
        let _ = writeln!(
            s,
            "  server CPU in the window: {:.2} s = {:.0}% of one core, {} per ok op{} ({})",
            c.cpu_s,
            c.cores * 100.0,
            c.us_per_op.map_or("n/a".into(), fmt_us_precise),
            if c.complete {
                ""
            } else {
                " [a server process was gone]"
            },
            per.join(", ")
        );
    }
    for t in &r.throttle {
        if t.throttled {
            let _ = writeln!(s, "  THROTTLED {}: {}", t.host, t.reasons.join("; "));
        } else if !t.observed {
            let _ = writeln!(s, "  {}: no mntr answer (throttling not known)", t.host);
        }
    }
    if r.throttled && r.throttle.iter().all(|t| !t.throttled) {
        let _ = writeln!(s, "  THROTTLED: replies with THROTTLEDOP");
    }
    s
}

/// Microseconds with two decimals below 10 us (CPU per op is often a few us).
pub fn fmt_us_precise(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.2} us")
    } else {
        fmt_us(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist_1_to_1000us() -> Histogram<u64> {
        let mut h = new_hist();
        for us in 1..=1000u64 {
            h.record(us * 1000).unwrap();
        }
        h
    }

    #[test]
    fn percentiles_are_in_microseconds() {
        let p = percentiles(&hist_1_to_1000us());
        assert_eq!(p.count, 1000);
        assert!((p.min - 1.0).abs() < 0.01);
        assert!((p.p50 - 500.0).abs() < 1.0, "{}", p.p50);
        assert!((p.p99 - 990.0).abs() < 1.0, "{}", p.p99);
        assert!((p.max - 1000.0).abs() < 1.0);
        assert_eq!(percentiles(&new_hist()), Percentiles::default());
    }

    #[test]
    fn hgrm_counts_every_value_and_ends_at_max() {
        let h = hist_1_to_1000us();
        let text = hgrm(&h);
        let rows: Vec<Vec<f64>> = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty() && !l.contains("Value"))
            .map(|l| l.split_whitespace().map(|x| x.parse().unwrap()).collect())
            .collect();
        let last = rows.last().unwrap();
        assert_eq!(last[2], 1000.0);
        assert!((last[0] - 1000.0).abs() < 1.0);
        assert!(rows.windows(2).all(|w| w[0][1] <= w[1][1]));
        assert!(text.contains("Total count    =         1000"));
    }

    #[test]
    fn curve_is_monotonic() {
        let c = curve(&hist_1_to_1000us());
        assert!(c.len() > 10);
        assert!(c.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
        assert_eq!(c.last().unwrap().0, 100.0);
    }

    #[test]
    fn merge_adds_counts_and_errors() {
        let mut a = Recorder::default();
        let mut b = Recorder::default();
        a.ops = 2;
        b.ops = 3;
        b.errors.insert(-101, 4);
        b.latency.record(5000).unwrap();
        *b.by_kind.entry("getData").or_default() += 3;
        b.errors_all.insert(-101, 6);
        b.ok = 1;
        a.merge(&b);
        assert_eq!(a.ops, 5);
        assert_eq!(a.ok, 1);
        assert_eq!(a.errors_all[&-101], 6);
        assert_eq!(a.errors[&-101], 4);
        assert_eq!(a.latency.len(), 1);
        assert_eq!(a.by_kind["getData"], 3);
        assert_eq!(error_name(-101), "NoNode(-101)");
    }

    #[test]
    fn error_codes_parse_by_name_or_number() {
        assert_eq!(parse_error_code("NoNode").unwrap(), -101);
        assert_eq!(parse_error_code("nonode").unwrap(), -101);
        assert_eq!(parse_error_code("-110").unwrap(), -110);
        assert_eq!(parse_error_code("BadReply").unwrap(), crate::run::BAD_REPLY);
        assert!(parse_error_code("NoSuchThing").is_err());
        assert_eq!(
            parse_error_codes("NoNode, NodeExists").unwrap(),
            vec![-101, -110]
        );
        assert_eq!(parse_error_codes("").unwrap(), Vec::<i32>::new());
    }

    #[test]
    fn the_error_table_marks_unexpected_codes() {
        let measured: BTreeMap<i32, u64> = [(-101, 3)].into_iter().collect();
        let all: BTreeMap<i32, u64> = [(-101, 5), (-4, 1)].into_iter().collect();
        assert_eq!(unexpected(&all, &[]), 6);
        assert_eq!(unexpected(&all, &[-101]), 1);
        assert_eq!(unexpected(&all, &[-101, -4]), 0);
        let t = error_table(&measured, &all, &[-101]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        assert!(
            lines[1].contains("-101") && lines[1].contains("NoNode") && lines[1].ends_with("yes")
        );
        assert!(
            lines[2].contains("ConnectionLoss") && lines[2].ends_with("NO"),
            "{t}"
        );
        assert!(lines[1].split_whitespace().any(|w| w == "3"));
        assert!(error_table(&BTreeMap::new(), &BTreeMap::new(), &[]).is_empty());
    }

    #[test]
    fn rusage_moves_forward() {
        let (u0, _) = rusage();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        std::hint::black_box(x);
        let (u1, _) = rusage();
        assert!(u1 >= u0);
    }
}
