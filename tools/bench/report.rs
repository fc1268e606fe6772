//! Measurements and what is written from them: per-thread recorders (latency in
//! nanoseconds in HdrHistograms), the result record (JSON), HdrHistogram's percentile
//! distribution file (.hgrm), the final table, and the client's own CPU time
//! (getrusage), so a client that is the bottleneck shows.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

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
    pub ops: u64,
    /// Ops completed inside the measured window (whenever they were meant to be sent):
    /// the throughput.
    pub done_in_window: u64,
    /// Open loop: requests scheduled inside the window that were never sent because
    /// the server kept every session's window full. Each is in `latency` with the
    /// time it had waited at the end, a lower bound.
    pub missed: u64,
    pub by_kind: BTreeMap<&'static str, u64>,
    pub errors: BTreeMap<i32, u64>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            latency: new_hist(),
            service: new_hist(),
            fanout: new_hist(),
            interval: new_hist(),
            ops: 0,
            done_in_window: 0,
            missed: 0,
            by_kind: BTreeMap::new(),
            errors: BTreeMap::new(),
        }
    }
}

impl Recorder {
    pub fn merge(&mut self, o: &Recorder) {
        self.latency.add(&o.latency).expect("same bounds");
        self.service.add(&o.service).expect("same bounds");
        self.fanout.add(&o.fanout).expect("same bounds");
        self.ops += o.ops;
        self.done_in_window += o.done_in_window;
        self.missed += o.missed;
        for (k, v) in &o.by_kind {
            *self.by_kind.entry(k).or_default() += v;
        }
        for (k, v) in &o.errors {
            *self.errors.entry(*k).or_default() += v;
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
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    pub label: String,
    pub workload: String,
    pub config: serde_json::Value,
    /// Seconds measured (after warm-up).
    pub measured_s: f64,
    pub ops: u64,
    pub ops_per_sec: f64,
    /// Open loop: scheduled requests never sent (see `Recorder::missed`).
    #[serde(default)]
    pub missed: u64,
    pub errors: u64,
    pub errors_by_code: BTreeMap<String, u64>,
    pub ops_by_kind: BTreeMap<String, u64>,
    pub latency_us: Percentiles,
    /// Fixed-rate runs: latency from the actual send time (not corrected).
    pub service_latency_us: Option<Percentiles>,
    /// Watch runs: time until every watcher of a round was notified.
    pub fanout_latency_us: Option<Percentiles>,
    /// (percentile, microseconds) over the whole distribution.
    pub curve: Vec<(f64, f64)>,
    pub client_cpu: ClientCpu,
    pub machine: Machine,
    pub unix_time: u64,
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

pub fn build_result(cfg: &RunConfig, rec: &Recorder, measured_s: f64, cpu: ClientCpu) -> RunResult {
    let errors: u64 = rec.errors.values().sum();
    RunResult {
        label: cfg.label.clone(),
        workload: cfg.workload.clone(),
        config: serde_json::to_value(cfg).unwrap_or_default(),
        measured_s,
        ops: rec.ops,
        missed: rec.missed,
        ops_per_sec: if measured_s > 0.0 {
            rec.done_in_window
                .max(if cfg.ops.is_some() { rec.ops } else { 0 }) as f64
                / measured_s
        } else {
            0.0
        },
        errors,
        errors_by_code: rec
            .errors
            .iter()
            .map(|(k, v)| (error_name(*k), *v))
            .collect(),
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
        machine: machine(),
        unix_time: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
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
    let _ = writeln!(
        s,
        "  {} sessions x {} outstanding, {} B values, {} keys, {} thread(s), {mode}",
        cfg.sessions, cfg.outstanding, cfg.value_size, cfg.keys, cfg.threads
    );
    let _ = writeln!(
        s,
        "  measured {:.1} s after {:.1} s warm-up: {} ops, {:.0} ops/s, {} errors{}",
        r.measured_s,
        cfg.warmup_s,
        r.ops,
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
    s
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
        a.merge(&b);
        assert_eq!(a.ops, 5);
        assert_eq!(a.errors[&-101], 4);
        assert_eq!(a.latency.len(), 1);
        assert_eq!(a.by_kind["getData"], 3);
        assert_eq!(error_name(-101), "NoNode(-101)");
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
