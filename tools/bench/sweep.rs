//! `corral-bench sweep`: the same workload at several levels of requests in flight,
//! one short closed-loop run per level (1, 8, 32, 128, 256, 1024 by default: one
//! session at level 1, `--max-sessions` (8) sessions from 8 on, the level's requests
//! split evenly over them). The key space is set up once. Every level gets a row:
//! successful ops/s, p50/p99/p99.9, server CPU per op (with `--server-pid`), the
//! client's own CPU, errors, and whether a server throttled. The whole sweep goes to
//! `--json` as `{"levels": [RunResult, ...], ...}`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::Arc;

use clap::Args;
use serde::{Deserialize, Serialize};

use crate::report::{self, RunResult};
use crate::workload::{self, Kind};
use crate::{execute, report_errors, resolve, run, RunArgs, Watch};

#[derive(Args, Debug)]
pub struct SweepArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Requests in flight at each level, comma-separated [default: 1,8,32,128,256,1024].
    #[arg(long)]
    pub levels: Option<String>,
    /// Sessions at levels from 8 up (level 1 has one session; a level below this many
    /// has one session per request).
    #[arg(long, default_value_t = 8)]
    pub max_sessions: usize,
    /// Also print, to stderr, the progress line of every second of each level
    /// (replies/s, p99 and the slowest reply of that second): when stalls happen.
    #[arg(long)]
    pub timeline: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepResult {
    pub label: String,
    pub workload: String,
    pub hosts: Vec<String>,
    pub levels: Vec<RunResult>,
    /// Unexpected errors over every level (non-zero: the sweep exits non-zero).
    pub unexpected_errors: u64,
    /// In-flight levels at which some server throttled.
    pub throttled_levels: Vec<usize>,
}

fn cell_us(v: Option<f64>) -> String {
    v.map_or("-".into(), report::fmt_us_precise)
}

fn fmt_lat(us: f64) -> String {
    if us >= 10_000.0 {
        format!("{:.1}ms", us / 1000.0)
    } else if us >= 1000.0 {
        format!("{:.2}ms", us / 1000.0)
    } else {
        format!("{us:.0}us")
    }
}

/// The per-level table.
pub fn sweep_table(rs: &[RunResult]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "  {:>9} {:>8} {:>12} {:>9} {:>9} {:>9} {:>12} {:>8} {:>12} {:>8} {:>7}  throttled",
        "in flight",
        "sessions",
        "ok ops/s",
        "p50",
        "p99",
        "p99.9",
        "server/op",
        "srv cpu",
        "client/op",
        "cli cpu",
        "errors"
    );
    for r in rs {
        let sessions = r
            .config
            .get("sessions")
            .and_then(|v| v.as_u64())
            .unwrap_or(0);
        let throttled = if r.throttled {
            let who: Vec<&str> = r
                .throttle
                .iter()
                .filter(|t| t.throttled)
                .map(|t| t.host.as_str())
                .collect();
            if who.is_empty() {
                "YES (THROTTLEDOP)".to_string()
            } else {
                format!("YES ({})", who.join(","))
            }
        } else if r.throttle.iter().any(|t| !t.observed) || r.throttle.is_empty() {
            "?".to_string()
        } else {
            "no".to_string()
        };
        let _ = writeln!(
            s,
            "  {:>9} {:>8} {:>12.0} {:>9} {:>9} {:>9} {:>12} {:>8} {:>12} {:>8} {:>7}  {throttled}",
            r.inflight,
            sessions,
            r.ops_per_sec,
            fmt_lat(r.latency_us.p50),
            fmt_lat(r.latency_us.p99),
            fmt_lat(r.latency_us.p999),
            cell_us(r.server_cpu.as_ref().and_then(|c| c.us_per_op)),
            r.server_cpu
                .as_ref()
                .map_or("-".into(), |c| format!("{:.2}", c.cores)),
            cell_us(r.client_us_per_op),
            r.client_cpu_window
                .as_ref()
                .map_or("-".into(), |c| format!("{:.2}", c.cores)),
            r.errors_all_by_code.values().sum::<u64>(),
        );
    }
    s.push_str(
        "  (server/op, client/op: CPU per successful op; srv/cli cpu: cores busy in the window)\n",
    );
    s
}

pub fn sweep_cmd(a: SweepArgs) -> Result<(), String> {
    let levels = match &a.levels {
        Some(l) => workload::parse_levels(l)?,
        None => workload::SWEEP_LEVELS.to_vec(),
    };
    if a.run.rate.is_some() {
        return Err("a sweep is closed loop: --rate does not apply".into());
    }
    let base = resolve(&a.run)?;
    if base.kind != Kind::Ops {
        return Err(format!(
            "a sweep needs a pipelined workload (read, write, ...), not {}",
            base.workload
        ));
    }
    let watch = Watch {
        progress: a.timeline,
        ..Watch::from_args(&a.run, &base)?
    };
    if base.setup {
        run::setup(&base).map_err(|e| format!("setup: {e}"))?;
    }
    eprintln!(
        "corral-bench sweep {} [{}] against {}: levels {:?}, {:.1} s after {:.1} s warm-up each",
        base.workload,
        base.label,
        base.hosts.join(","),
        levels,
        base.duration_s,
        base.warmup_s
    );
    let mut results = Vec::new();
    let mut problems = Vec::new();
    for &level in &levels {
        let mut cfg = base.clone();
        cfg.sessions = workload::sweep_sessions(level, a.max_sessions);
        cfg.inflight = Some(level);
        cfg.threads = cfg.threads.min(cfg.sessions).max(1);
        cfg.setup = false;
        cfg.label = format!("{}@{level}", base.label);
        let cfg = Arc::new(cfg);
        let (r, rec) = execute(cfg.clone(), &watch)?;
        eprintln!(
            "  {level:>5} in flight: {:>10.0} ok ops/s  p99 {:>9}  server {}/op  errors {}{}",
            r.ops_per_sec,
            fmt_lat(r.latency_us.p99),
            cell_us(r.server_cpu.as_ref().and_then(|c| c.us_per_op)),
            r.errors_all_by_code.values().sum::<u64>(),
            if r.throttled { "  THROTTLED" } else { "" }
        );
        if let Err(e) = report_errors(&r, &rec, &watch.expected) {
            problems.push(e);
        }
        results.push(r);
    }
    let sweep = SweepResult {
        label: base.label.clone(),
        workload: base.workload.clone(),
        hosts: base.hosts.clone(),
        unexpected_errors: results.iter().map(|r| r.unexpected_errors).sum(),
        throttled_levels: results
            .iter()
            .filter(|r| r.throttled)
            .map(|r| r.inflight)
            .collect(),
        levels: results,
    };
    println!(
        "corral-bench sweep {} [{}] against {}: {} B values, {} keys, closed loop, {:.1} s measured after {:.1} s warm-up per level",
        sweep.workload,
        sweep.label,
        sweep.hosts.join(","),
        base.value_size,
        base.keys,
        base.duration_s,
        base.warmup_s
    );
    if let Some(t) = sweep.levels.iter().find_map(|r| r.tls.as_ref()) {
        println!("  over TLS: {t}");
    }
    print!("{}", sweep_table(&sweep.levels));
    if let Some(p) = &a.run.json {
        let json = serde_json::to_string_pretty(&sweep).map_err(|e| e.to_string())?;
        std::fs::write(p, json).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    if let Some(p) = &a.run.svg {
        crate::plot::plot(
            &sweep.levels,
            &format!("{} by in-flight level", base.label),
            p,
        )?;
    }
    let _ = std::io::stdout().flush();
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mntr::Throttle;
    use crate::procstat::ServerCpu;

    fn result(inflight: usize, throttled: bool) -> RunResult {
        let cfg = crate::resolve(&RunArgs {
            hosts: "127.0.0.1:1".into(),
            inflight: Some(inflight),
            sessions: Some(workload::sweep_sessions(inflight, 8)),
            ..RunArgs::default()
        })
        .unwrap();
        let mut r = report::build_result(
            &cfg,
            &report::Recorder::default(),
            1.0,
            report::ClientCpu::default(),
        );
        r.server_cpu = Some(ServerCpu {
            us_per_op: Some(3.25),
            cores: 0.8,
            ..ServerCpu::default()
        });
        r.throttle = vec![Throttle {
            host: "127.0.0.1:1".into(),
            observed: true,
            throttled,
            ..Throttle::default()
        }];
        r.throttled = throttled;
        r
    }

    #[test]
    fn a_row_per_level_with_cpu_per_op_and_throttling() {
        let t = sweep_table(&[result(1, false), result(1024, true)]);
        let rows: Vec<&str> = t.lines().collect();
        assert_eq!(rows.len(), 4, "{t}");
        let first: Vec<&str> = rows[1].split_whitespace().collect();
        assert_eq!(&first[..2], &["1", "1"]);
        assert!(
            rows[1].contains("3.25 us") && rows[1].ends_with("no"),
            "{t}"
        );
        let last: Vec<&str> = rows[2].split_whitespace().collect();
        assert_eq!(&last[..2], &["1024", "8"]);
        assert!(rows[2].contains("YES (127.0.0.1:1)"), "{t}");
    }
}
