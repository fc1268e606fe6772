//! `corral-bench`: a load generator for any ZooKeeper-protocol server (corral or
//! Apache ZooKeeper, one or several host:port).
//!
//! - `corral-bench run --hosts H --workload read|write|exists|mixed|create|create-delete|
//!   children|watch|churn|populate|custom [knobs]`: one run, with a live progress line
//!   on stderr, a final table on stdout, and `--json`, `--hgrm`, `--svg` files.
//! - `corral-bench sweep --hosts H --workload read|write [--levels 1,8,32,128,256,1024]`:
//!   one short closed-loop run per in-flight level (one session at level 1, eight
//!   sessions from 8 on, the requests split over them) and a table per level.
//! - `corral-bench plot --out F.svg RUN.json...`: overlays the latency percentiles of
//!   several runs.
//! - `corral-bench scale --scenario connections|expiry|fanout|tree|wide --host H
//!   --server-pid P --json F`: cost against size (memory, latency, CPU per op), see
//!   scale.rs; `corral-bench scale-plot --out F.svg --metrics a,b F.json...` plots it.
//! - `corral-bench wait-ready --hosts H --path P`: polls until a getData of P succeeds
//!   and prints how long that took (restart timing).
//! - `corral-bench first-write --hosts H [--kill-pid PID]`: kill -9 a server (the
//!   leader) and time until a write succeeds on any of the hosts (failover timing).
//!
//! It speaks the protocol with its own lean client over corral's codec, keeps N
//! requests in flight per session, and reports its own CPU time so a client that is
//! the bottleneck is visible. Throughput and latency count only successful replies;
//! errors are counted by ZooKeeper error code, and an error whose code was not declared
//! expected (`--expect-errors`) makes the run exit non-zero. With `--server-pid` it
//! charges the servers' CPU (utime + stime of /proc/PID/stat) inside the measured
//! window to the run, per successful op, and it asks each server `mntr` whether it
//! throttled. See tools/bench/run.rs for how latencies are measured.
//!
//! `--tls-ca CA.pem [--tls-cert C.pem --tls-key K.pem]` (run, sweep, wait-ready,
//! first-write) makes every connection TLS (see client.rs); `--mntr-hosts` then points
//! the four-letter words at the servers' plain ports.

mod client;
mod failover;
mod fsync;
mod mntr;
mod plot;
mod probe;
mod procstat;
mod report;
mod run;
mod scale;
mod scale_plot;
mod scale_session;
mod sweep;
mod workload;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};

use report::{build_result, ClientCpu, Recorder, RunResult};
use run::{Shared, Timing};
use workload::{Kind, RunConfig, WorkloadFile};

#[derive(Parser)]
#[command(
    name = "corral-bench",
    version,
    about = "Load generator for ZooKeeper-protocol servers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one workload.
    Run(Box<RunArgs>),
    /// Run a workload at several in-flight levels, one short closed-loop run each.
    Sweep(Box<sweep::SweepArgs>),
    /// Overlay the latency percentiles of several `--json` results in one SVG.
    Plot {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "latency by percentile")]
        title: String,
        files: Vec<PathBuf>,
    },
    /// Wait until a getData of PATH succeeds; print the seconds it took.
    WaitReady {
        #[arg(long, default_value = "127.0.0.1:2181")]
        hosts: String,
        #[arg(long, default_value = "/")]
        path: String,
        #[arg(long, default_value = "300s")]
        timeout: String,
        #[command(flatten)]
        tls: client::TlsArgs,
    },
    /// Measure write + fdatasync latency and the txn log's group commit on a directory.
    Fsync(Box<fsync::FsyncArgs>),
    /// Cost against size (issue 12): connections, expiry, fanout, tree or wide (see
    /// tools/bench/scale.rs); writes points as JSON.
    Scale(Box<scale::ScaleArgs>),
    /// Plots `scale` results: one panel per metric, cost against size, a line per label.
    ScalePlot {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "cost against size")]
        title: String,
        #[arg(long, default_value = "size")]
        x_label: String,
        /// Point keys to plot, one panel each.
        #[arg(long, value_delimiter = ',')]
        metrics: Vec<String>,
        files: Vec<PathBuf>,
    },
    /// Time until a write succeeds on any of the hosts, from a kill -9 of --kill-pid
    /// (or from now); prints a JSON line.
    FirstWrite {
        /// The servers to write through (the survivors), comma-separated.
        #[arg(long)]
        hosts: String,
        /// The znode to setData (must exist).
        #[arg(long, default_value = "/corral-bench")]
        path: String,
        /// A server process to SIGKILL first (one the caller started: the leader).
        #[arg(long)]
        kill_pid: Option<u32>,
        #[arg(long, default_value = "60s")]
        timeout: String,
        #[command(flatten)]
        tls: client::TlsArgs,
    },
}

#[derive(Args, Debug, Default, Clone)]
pub struct RunArgs {
    /// Servers, comma-separated host:port; sessions are spread over them.
    #[arg(long, default_value = "127.0.0.1:2181")]
    hosts: String,
    /// read, write, exists, mixed, create, create-delete, children, watch, churn,
    /// populate, or custom (with a workload file's [mix]).
    #[arg(long, short)]
    workload: Option<String>,
    /// A TOML workload file (flags override its values).
    #[arg(long)]
    workload_file: Option<PathBuf>,
    /// A name for this run in tables, JSON and plot legends.
    #[arg(long)]
    label: Option<String>,
    /// Sessions (watchers for `watch`, concurrent churners for `churn`). [default: 8]
    #[arg(long, short)]
    sessions: Option<usize>,
    /// Requests in flight per session. [default: 32]
    #[arg(long, short)]
    outstanding: Option<usize>,
    /// Requests in flight over all sessions, split evenly (instead of --outstanding).
    #[arg(long)]
    inflight: Option<usize>,
    /// Worker threads the sessions are spread over. [default: 1]
    #[arg(long, short)]
    threads: Option<usize>,
    /// Bytes per value written or created. [default: 100]
    #[arg(long)]
    value_size: Option<usize>,
    /// Keys read/written (the key space under /corral-bench/k). [default: 10000]
    #[arg(long)]
    keys: Option<u64>,
    /// Measured time ("10s", "500ms", "2m"). [default: 10s]
    #[arg(long, short)]
    duration: Option<String>,
    /// Stop after this many measured ops instead of after a duration.
    #[arg(long)]
    ops: Option<u64>,
    /// Unmeasured time before measuring. [default: 2s]
    #[arg(long)]
    warmup: Option<String>,
    /// Open loop: total requests per second, latency from the intended send time.
    #[arg(long)]
    rate: Option<f64>,
    /// For `mixed`: fraction of reads. [default: 0.9]
    #[arg(long)]
    read_ratio: Option<f64>,
    /// Creates are sequential.
    #[arg(long)]
    sequential: bool,
    /// Creates are ephemeral.
    #[arg(long)]
    ephemeral: bool,
    /// For `children`: wide nodes. [default: 4]
    #[arg(long)]
    wide_nodes: Option<u64>,
    /// For `children`: children per wide node. [default: 1000]
    #[arg(long)]
    width: Option<u64>,
    /// Skip creating the key space and other znodes the workload uses.
    #[arg(long)]
    no_setup: bool,
    /// Write the result as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write HdrHistogram's percentile distribution (.hgrm, microseconds).
    #[arg(long)]
    hgrm: Option<PathBuf>,
    /// Write a latency-percentile plot of this run (SVG).
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Also print the result JSON on stdout.
    #[arg(long)]
    print_json: bool,
    /// Server process ids (comma-separated or repeated): their CPU time (utime + stime
    /// of /proc/PID/stat) inside the measured window is reported, per successful op.
    #[arg(long = "server-pid", value_delimiter = ',')]
    server_pids: Vec<u32>,
    /// Do not ask the servers `mntr` and `srvr` (throttling is then not known).
    #[arg(long)]
    no_mntr: bool,
    /// Where to ask `mntr` and `srvr` (plain-text four-letter words), comma-separated
    /// host:port [default: --hosts]. With TLS, the servers' plain client ports.
    #[arg(long)]
    mntr_hosts: Option<String>,
    #[command(flatten)]
    pub tls: client::TlsArgs,
    /// The servers' globalOutstandingLimit: outstanding_requests reaching it during the
    /// window is reported as throttling.
    #[arg(long)]
    outstanding_limit: Option<u64>,
    /// Error codes this workload expects (names such as NoNode, or numbers),
    /// comma-separated. Any other error reply, or a failed session, makes the run exit
    /// non-zero.
    #[arg(long, default_value = "")]
    expect_errors: String,
}

pub fn resolve(a: &RunArgs) -> Result<RunConfig, String> {
    let file = match &a.workload_file {
        Some(p) => WorkloadFile::load(p)?,
        None => WorkloadFile::default(),
    };
    let name = a
        .workload
        .clone()
        .or_else(|| file.workload.clone())
        .unwrap_or_else(|| {
            if file.mix.is_some() {
                "custom".into()
            } else {
                "read".into()
            }
        });
    let read_ratio = a.read_ratio.or(file.read_ratio).unwrap_or(0.9);
    let (kind, mut mix) = workload::named(&name, read_ratio)?;
    if let Some(m) = &file.mix {
        mix = m.clone();
    }
    if kind == Kind::Ops && mix.table().is_none() {
        return Err("the workload's mix has no op with a weight above zero".into());
    }
    let dur = |flag: &Option<String>,
               file_v: &Option<toml::Value>,
               default: f64|
     -> Result<f64, String> {
        Ok(match flag {
            Some(s) => workload::parse_duration(s)?.as_secs_f64(),
            None => WorkloadFile::duration_of(file_v)?.map_or(default, |d| d.as_secs_f64()),
        })
    };
    let hosts: Vec<String> = a
        .hosts
        .split(',')
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .collect();
    if hosts.is_empty() {
        return Err("--hosts names no server".into());
    }
    let sessions = a.sessions.or(file.sessions).unwrap_or(8).max(1);
    let threads = a.threads.unwrap_or(1).clamp(1, sessions);
    let rate = a.rate.or(file.rate);
    if let Some(r) = rate {
        if !(r > 0.0 && r.is_finite()) {
            return Err(format!("--rate {r} must be positive"));
        }
    }
    let label = a
        .label
        .clone()
        .or(file.name.clone())
        .unwrap_or_else(|| format!("{name}@{}", hosts.join(",")));
    Ok(RunConfig {
        label,
        workload: file
            .name
            .clone()
            .filter(|_| a.workload.is_none())
            .unwrap_or(name),
        kind,
        mix,
        hosts,
        sessions,
        outstanding: a.outstanding.or(file.outstanding).unwrap_or(32).max(1),
        inflight: a.inflight.map(|n| n.max(1)),
        threads,
        value_size: a.value_size.or(file.value_size).unwrap_or(100),
        keys: a.keys.or(file.keys).unwrap_or(10_000).max(1),
        duration_s: dur(&a.duration, &file.duration, 10.0)?,
        warmup_s: dur(&a.warmup, &file.warmup, 2.0)?,
        ops: a.ops.or(file.ops),
        rate,
        sequential: a.sequential || file.sequential.unwrap_or(false),
        ephemeral: a.ephemeral || file.ephemeral.unwrap_or(false),
        wide_nodes: a.wide_nodes.or(file.wide_nodes).unwrap_or(4).max(1),
        width: a.width.or(file.width).unwrap_or(1000),
        setup: !a.no_setup,
    })
}

fn fmt_rate(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// What a run watches besides itself (server CPU, throttling) and which error codes it
/// tolerates.
pub struct Watch {
    pub probe: probe::ProbeConfig,
    pub expected: Vec<i32>,
    /// Print the progress line (a sweep prints one line per level instead).
    pub progress: bool,
}

impl Watch {
    pub fn from_args(a: &RunArgs, cfg: &RunConfig) -> Result<Watch, String> {
        Ok(Watch {
            probe: probe::ProbeConfig {
                pids: a.server_pids.clone(),
                hosts: if a.no_mntr {
                    Vec::new()
                } else if let Some(m) = &a.mntr_hosts {
                    m.split(',')
                        .map(|h| h.trim().to_string())
                        .filter(|h| !h.is_empty())
                        .collect()
                } else {
                    cfg.hosts.clone()
                },
                limit: a.outstanding_limit,
            },
            expected: report::parse_error_codes(&a.expect_errors)?,
            progress: true,
        })
    }
}

/// One run of `cfg` (its znodes already set up): the result and the merged recorder.
pub fn execute(cfg: Arc<RunConfig>, watch: &Watch) -> Result<(RunResult, Recorder), String> {
    let run_id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id());
    let sh = Arc::new(Shared::new(run_id));
    let cpu0 = report::rusage();
    let wall0 = Instant::now();
    let mut threads = Vec::new();
    for t in 0..cfg.threads {
        let (cfg, sh) = (cfg.clone(), sh.clone());
        threads.push(
            std::thread::Builder::new()
                .name(format!("bench-{t}"))
                .spawn(move || run::worker_thread(t, cfg, sh))
                .map_err(|e| e.to_string())?,
        );
    }
    // Start the clock once every session is connected.
    let expected = cfg.sessions + usize::from(cfg.kind == Kind::Watch);
    let connect_deadline = Instant::now() + Duration::from_secs(30);
    while sh.connected.load(Relaxed) + sh.failed.load(Relaxed) < expected
        && Instant::now() < connect_deadline
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    let now = sh.now();
    let warm = (cfg.warmup_s * 1e9) as u64;
    let timing = Timing {
        start_ns: now,
        measure_from_ns: now + warm,
        end_ns: if cfg.ops.is_some() {
            u64::MAX
        } else {
            now + warm + (cfg.duration_s * 1e9) as u64
        },
    };
    if sh.connected.load(Relaxed) < expected {
        sh.stop.store(true, Relaxed);
    }
    let finished = Arc::new(AtomicBool::new(false));
    let observer = probe::spawn(watch.probe.clone(), sh.clone(), timing, finished.clone());
    sh.go(timing);
    // Progress once a second until the threads end.
    let tty = std::io::stderr().is_terminal() && watch.progress;
    let mut last_ops = 0u64;
    let mut last_t = Instant::now();
    let started = Instant::now();
    let grace = Duration::from_secs_f64(cfg.warmup_s + cfg.duration_s + 30.0);
    while threads.iter().any(|t| !t.is_finished()) {
        std::thread::sleep(Duration::from_millis(100));
        if last_t.elapsed() < Duration::from_secs(1) {
            continue;
        }
        let ops = sh.progress_ops.load(Relaxed);
        let errors = sh.progress_errors.load(Relaxed);
        let dt = last_t.elapsed().as_secs_f64();
        last_t = Instant::now();
        let (p99, max) = {
            let mut h = sh.interval.lock().map_err(|e| e.to_string())?;
            let v = if h.is_empty() {
                (0, 0)
            } else {
                (h.value_at_quantile(0.99), h.max())
            };
            h.reset();
            v
        };
        let phase = if sh.now() < timing.measure_from_ns {
            "warm-up"
        } else if sh.now() < timing.end_ns && !sh.stop.load(Relaxed) {
            "measuring"
        } else {
            "draining"
        };
        let line = format!(
            "[{:>5.1}s] {:>9} replies/s  p99 {:>9.3} ms  max {:>9.3} ms  errors {}  ({phase})",
            started.elapsed().as_secs_f64(),
            fmt_rate((ops - last_ops) as f64 / dt),
            p99 as f64 / 1e6,
            max as f64 / 1e6,
            errors
        );
        last_ops = ops;
        if tty {
            eprint!("\r{line}   ");
        } else if watch.progress {
            eprintln!("{line}");
        }
        if cfg.ops.is_none() && started.elapsed() > grace {
            eprintln!("\ncorral-bench: sessions did not finish 30 s after the end; giving up");
            sh.stop.store(true, Relaxed);
            finished.store(true, Relaxed);
            return Err("run did not finish".into());
        }
    }
    if tty {
        eprintln!();
    }
    let mut rec = Recorder::default();
    let mut last_done = 0;
    for t in threads {
        let out = t
            .join()
            .map_err(|_| "a worker thread panicked".to_string())?;
        rec.merge(&out.rec);
        last_done = last_done.max(out.last_done_ns);
    }
    finished.store(true, Relaxed);
    let observed = observer
        .join()
        .map_err(|_| "the probe thread panicked".to_string())?;
    let cpu1 = report::rusage();
    let wall = wall0.elapsed().as_secs_f64();
    let failures = sh.failures.lock().map(|f| f.clone()).unwrap_or_default();
    if !failures.is_empty() && rec.ops == 0 {
        for f in &failures {
            eprintln!("corral-bench: {f}");
        }
        return Err(format!("{} session(s) failed", sh.failed.load(Relaxed)));
    }
    let measured_s = if cfg.ops.is_some() {
        last_done.saturating_sub(timing.measure_from_ns) as f64 / 1e9
    } else {
        cfg.duration_s
    };
    let cpu = ClientCpu {
        user_s: cpu1.0 - cpu0.0,
        sys_s: cpu1.1 - cpu0.1,
        wall_s: wall,
        cores: (cpu1.0 - cpu0.0 + cpu1.1 - cpu0.1) / wall.max(1e-9),
    };
    let mut result = build_result(&cfg, &rec, measured_s, cpu);
    let window_ok = if cfg.ops.is_some() {
        rec.ok
    } else {
        rec.ok_in_window
    };
    result.client_us_per_op =
        procstat::us_per_op(observed.client.user_s + observed.client.sys_s, window_ok);
    result.client_cpu_window = Some(observed.client.clone());
    if !watch.probe.pids.is_empty() {
        result.server_cpu = Some(procstat::server_cpu(
            &observed.before,
            &observed.after,
            &observed.rss,
            observed.window_s,
            window_ok,
        ));
    }
    result.throttled |= observed.throttle.iter().any(|t| t.throttled);
    result.throttle = observed.throttle;
    result.expected_errors = watch
        .expected
        .iter()
        .map(|c| report::error_name(*c))
        .collect();
    result.unexpected_errors =
        report::unexpected(&rec.errors_all, &watch.expected) + failures.len() as u64;
    result.session_failures = failures;
    result.tls = client::tls_negotiated();
    Ok((result, rec))
}

/// The errors of a run on stderr, and whether any was unexpected (as an Err).
pub fn report_errors(r: &RunResult, rec: &Recorder, expected: &[i32]) -> Result<(), String> {
    let t = report::error_table(&rec.errors, &rec.errors_all, expected);
    if !t.is_empty() {
        eprintln!("corral-bench: errors by code [{}]:\n{t}", r.label);
    }
    for f in &r.session_failures {
        eprintln!("corral-bench: {f}");
    }
    if r.unexpected_errors > 0 {
        return Err(format!(
            "[{}] {} unexpected error(s): {} error replies not declared with --expect-errors, {} failed session(s)",
            r.label,
            r.unexpected_errors,
            r.unexpected_errors - r.session_failures.len() as u64,
            r.session_failures.len()
        ));
    }
    // A stalled server answers nothing and reports no error: that is a failed run too,
    // not a level at 0 ops/s (seen once: one write outstanding on a fresh ZooKeeper
    // ensemble for the whole window).
    if r.config.get("kind").and_then(|k| k.as_str()) == Some("ops") && r.ops_per_sec <= 0.0 {
        return Err(format!(
            "[{}] no successful reply in the {:.1} s measured: the server answered nothing",
            r.label, r.measured_s
        ));
    }
    Ok(())
}

fn run_cmd(a: RunArgs) -> Result<(), String> {
    let cfg = Arc::new(resolve(&a)?);
    let watch = Watch::from_args(&a, &cfg)?;
    if cfg.setup {
        run::setup(&cfg).map_err(|e| format!("setup: {e}"))?;
    }
    if cfg.kind == Kind::Populate {
        println!(
            "corral-bench: {} znodes of {} B under {}/k on {}",
            cfg.keys,
            cfg.value_size,
            workload::ROOT,
            cfg.hosts.join(",")
        );
        return Ok(());
    }
    let (result, rec) = execute(cfg.clone(), &watch)?;
    print!("{}", report::table(&cfg, &result));
    if !result.session_failures.is_empty() {
        println!(
            "  WARNING: {} session(s) failed: {}",
            result.session_failures.len(),
            result.session_failures[0]
        );
    }
    let json = serde_json::to_string_pretty(&result).map_err(|e| e.to_string())?;
    if a.print_json {
        println!("{json}");
    }
    if let Some(p) = &a.json {
        std::fs::write(p, &json).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    if let Some(p) = &a.hgrm {
        std::fs::write(p, report::hgrm(&rec.latency))
            .map_err(|e| format!("{}: {e}", p.display()))?;
    }
    if let Some(p) = &a.svg {
        plot::plot(
            std::slice::from_ref(&result),
            &format!("{} latency", cfg.label),
            p,
        )?;
    }
    let _ = std::io::stdout().flush();
    report_errors(&result, &rec, &watch.expected)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let tls = match &cli.command {
        Command::Run(a) => Some(&a.tls),
        Command::Sweep(a) => Some(&a.run.tls),
        Command::WaitReady { tls, .. } | Command::FirstWrite { tls, .. } => Some(tls),
        Command::Plot { .. } | Command::Fsync(_) => None,
        Command::Scale(_) | Command::ScalePlot { .. } => None,
    };
    if let Some(Err(e)) = tls.map(client::init_tls) {
        eprintln!("corral-bench: {e}");
        return ExitCode::FAILURE;
    }
    let r = match cli.command {
        Command::Run(a) => run_cmd(*a),
        Command::Sweep(a) => sweep::sweep_cmd(*a),
        Command::FirstWrite {
            hosts,
            path,
            kill_pid,
            timeout,
            ..
        } => (|| {
            let timeout = workload::parse_duration(&timeout)?;
            let hosts: Vec<String> = hosts
                .split(',')
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
                .collect();
            if hosts.is_empty() {
                return Err("--hosts names no server".to_string());
            }
            let r = failover::first_write(&hosts, &path, kill_pid, timeout)
                .map_err(|e| e.to_string())?;
            println!("{}", serde_json::to_string(&r).map_err(|e| e.to_string())?);
            Ok(())
        })(),
        Command::Fsync(a) => fsync::run(*a),
        Command::Scale(a) => scale::scale_cmd(*a),
        Command::ScalePlot {
            out,
            title,
            x_label,
            metrics,
            files,
        } => (|| {
            let mut runs = Vec::new();
            for f in &files {
                let text =
                    std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
                runs.push(
                    serde_json::from_str::<scale::ScaleResult>(&text)
                        .map_err(|e| format!("{}: {e}", f.display()))?,
                );
            }
            scale_plot::plot(&runs, &metrics, &title, &x_label, &out)
        })(),
        Command::Plot { out, title, files } => (|| {
            let mut runs = Vec::new();
            for f in &files {
                let text =
                    std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
                runs.push(
                    serde_json::from_str::<report::RunResult>(&text)
                        .map_err(|e| format!("{}: {e}", f.display()))?,
                );
            }
            plot::plot(&runs, &title, &out)
        })(),
        Command::WaitReady {
            hosts,
            path,
            timeout,
            ..
        } => (|| {
            let timeout = workload::parse_duration(&timeout)?;
            let host = hosts.split(',').next().unwrap_or_default().to_string();
            let d = run::wait_ready(&host, &path, timeout).map_err(|e| e.to_string())?;
            println!("{:.3}", d.as_secs_f64());
            Ok(())
        })(),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("corral-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(f: impl FnOnce(&mut RunArgs)) -> RunArgs {
        let mut a = RunArgs {
            hosts: "127.0.0.1:1".into(),
            ..RunArgs::default()
        };
        f(&mut a);
        a
    }

    #[test]
    fn defaults_resolve() {
        let c = resolve(&args(|_| {})).unwrap();
        assert_eq!(c.workload, "read");
        assert_eq!(
            (c.sessions, c.outstanding, c.value_size, c.keys),
            (8, 32, 100, 10_000)
        );
        assert_eq!((c.duration_s, c.warmup_s), (10.0, 2.0));
        assert_eq!(c.mix.get, 1);
    }

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("w.toml");
        std::fs::write(
            &p,
            "name = \"locks\"\nsessions = 16\noutstanding = 4\nduration = \"3s\"\n[mix]\ncreate = 1\ndelete = 1\n",
        )
        .unwrap();
        let c = resolve(&args(|a| {
            a.workload_file = Some(p.clone());
            a.sessions = Some(2);
        }))
        .unwrap();
        assert_eq!((c.sessions, c.outstanding, c.duration_s), (2, 4, 3.0));
        assert_eq!((c.mix.create, c.mix.delete, c.mix.get), (1, 1, 0));
        assert_eq!(c.workload, "locks");
        assert_eq!(c.kind, Kind::Ops);
    }

    #[test]
    fn bad_knobs_are_refused() {
        assert!(resolve(&args(|a| a.rate = Some(-5.0))).is_err());
        assert!(resolve(&args(|a| a.hosts = ",".into())).is_err());
        assert!(resolve(&args(|a| a.duration = Some("soon".into()))).is_err());
        assert!(resolve(&args(|a| a.workload = Some("custom".into()))).is_err());
    }
}
