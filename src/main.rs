//! The `corral` binary: `corral server [--config FILE]`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

// glibc malloc spent ~40% of a 1M-znode restore in malloc/free and consolidation, and
// its per-thread arenas grow apart under shard-per-core churn.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "corral",
    version,
    about = "A ZooKeeper-compatible coordination server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Server {
        /// A zoo.cfg; without it, the embedded default (conf/zoo.cfg).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Inspect or repair the txn log.
    Log {
        #[command(subcommand)]
        command: LogCommand,
    },
    /// Inspect a snapshot.
    Snapshot {
        #[command(subcommand)]
        command: SnapshotCommand,
    },
    /// Delete old snapshots and the logs only they needed, keeping the newest `count`.
    Purge {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Snapshots to keep (at least 3).
        #[arg(long, short = 'n', default_value_t = 3)]
        count: usize,
    },
}

#[derive(Subcommand)]
enum LogCommand {
    /// Print every txn of a log segment.
    Dump { file: PathBuf },
    /// Cut the log after txn ZXID (the repair a refused recovery names).
    Truncate {
        /// The last zxid to keep, decimal or 0x-hex.
        #[arg(long)]
        zxid: String,
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum SnapshotCommand {
    /// Print a snapshot's sessions and znodes.
    Dump {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

fn load_config(path: Option<PathBuf>) -> Result<corral::config::Config, ExitCode> {
    let (cfg, warnings) = read_config(path)?;
    for w in warnings {
        tracing::warn!("{w}");
    }
    Ok(cfg)
}

/// The configuration and its warnings, not yet logged: the server reads its log
/// settings from it before logging starts.
fn read_config(path: Option<PathBuf>) -> Result<(corral::config::Config, Vec<String>), ExitCode> {
    match path {
        None => Ok((corral::config::Config::embedded(), Vec::new())),
        Some(path) => match corral::config::Config::load(&path) {
            Ok(loaded) => Ok(loaded),
            Err(e) => {
                eprintln!("corral: {e}");
                Err(ExitCode::from(2))
            }
        },
    }
}

/// `corral server`: the one place that decides how a configuration is served.
/// ZooKeeper's `QuorumPeerMain` runs a quorum peer when `isDistributed()` and a
/// standalone server otherwise (no server list, or one participant with
/// standaloneEnabled=true, which then uses its server line's client port). An
/// ensemble configuration always runs as an ensemble member, never standalone (that
/// would let this server accept writes its peers never see).
fn serve(cfg: corral::config::Config) -> ExitCode {
    if let (true, Some(qv)) = (cfg.is_distributed(), &cfg.quorum) {
        let me = cfg.my_server().map(|s| s.id).unwrap_or_default();
        tracing::info!(
            myid = me,
            members = qv.members.len(),
            voters = qv.voter_count(),
            "starting as an ensemble member"
        );
    }
    // ZooKeeper's ProviderRegistry: process-wide, set up once from the configuration.
    corral::acl::install_registry(corral::acl::Registry::from_config(&cfg.auth));
    match corral::server::run(cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("corral: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a storage tool on a one-off glommio executor (the storage backend needs one).
fn run_tool<F, Fut>(f: F) -> ExitCode
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<String, corral::storage::StorageError>> + 'static,
{
    let ex = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .io_memory(1 << 20)
        .spawn(move || async move { f().await });
    match ex.map(|h| h.join()) {
        Ok(Ok(Ok(out))) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Ok(Ok(Err(e))) => {
            eprintln!("corral: {e}");
            ExitCode::FAILURE
        }
        Ok(Err(e)) => {
            eprintln!("corral: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("corral: cannot start an executor: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse_zxid(s: &str) -> Option<i64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok().map(|v| v as i64),
        None => s.parse().ok(),
    }
}

/// The tools that change the data directories refuse to run beside a server.
fn lock(dirs: &[&std::path::Path]) -> Result<corral::storage::dir_lock::DirLock, ExitCode> {
    corral::storage::dir_lock::lock_dirs(dirs).map_err(|msg| {
        eprintln!("corral: {msg}");
        ExitCode::FAILURE
    })
}

/// Starts logging to stderr. The format is `CORRAL_LOG_FORMAT` (`text` or `json`),
/// else the configuration's `corral.logFormat`; the level filter is `CORRAL_LOG`, else
/// `RUST_LOG`, else `corral.logLevel`, else `info` (tracing's EnvFilter syntax, e.g.
/// `corral=debug,info`). So an operator changes either with a restart, never a rebuild.
/// A value that cannot be used is refused (exit 2), as a bad zoo.cfg value is.
fn init_logging(format: corral::config::LogFormat, level: Option<&str>) -> Result<(), ExitCode> {
    use corral::config::LogFormat;
    use tracing_subscriber::EnvFilter;
    let format = match std::env::var("CORRAL_LOG_FORMAT") {
        Ok(v) => match LogFormat::parse(v.trim()) {
            Some(f) => f,
            None => {
                eprintln!("corral: CORRAL_LOG_FORMAT={v:?}: must be text or json");
                return Err(ExitCode::from(2));
            }
        },
        Err(_) => format,
    };
    let (source, directives) = ["CORRAL_LOG", "RUST_LOG"]
        .into_iter()
        .find_map(|k| std::env::var(k).ok().map(|v| (k, v)))
        .or_else(|| level.map(|l| ("corral.logLevel", l.to_string())))
        .unwrap_or(("default", "info".to_string()));
    let filter = match EnvFilter::builder().parse(&directives) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("corral: {source}={directives:?} is not a log filter: {e}");
            return Err(ExitCode::from(2));
        }
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        // One object per line, the event's message and fields at the top level, for
        // log shippers: {"timestamp":..,"level":"INFO","message":..,"target":..}.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init(),
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The tools log to the environment's settings only; the server also reads its
    // configuration's (below).
    if !matches!(cli.command, Command::Server { .. }) {
        if let Err(code) = init_logging(corral::config::LogFormat::Text, None) {
            return code;
        }
    }
    match cli.command {
        Command::Server { config } => {
            // The configuration says how to log, so it is read first; its warnings
            // are logged once logging runs.
            let (cfg, warnings) = match read_config(config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            if let Err(code) = init_logging(cfg.log_format, cfg.log_level.as_deref()) {
                return code;
            }
            for w in warnings {
                tracing::warn!("{w}");
            }
            serve(cfg)
        }
        Command::Log {
            command: LogCommand::Dump { file },
        } => run_tool(move || async move {
            corral::storage::tools::log_dump(&corral::storage::GlommioBackend, &file).await
        }),
        Command::Log {
            command: LogCommand::Truncate { zxid, config },
        } => {
            let Some(z) = parse_zxid(&zxid) else {
                eprintln!("corral: --zxid {zxid:?} is not a zxid (decimal or 0x-hex)");
                return ExitCode::from(2);
            };
            let cfg = match load_config(config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let _lock = match lock(&[&cfg.data_log_dir]) {
                Ok(l) => l,
                Err(code) => return code,
            };
            run_tool(move || async move {
                corral::storage::tools::log_truncate(
                    &corral::storage::GlommioBackend,
                    &cfg.data_log_dir,
                    z,
                )
                .await
            })
        }
        Command::Snapshot {
            command: SnapshotCommand::Dump { file, json },
        } => run_tool(move || async move {
            corral::storage::tools::snapshot_dump(&corral::storage::GlommioBackend, &file, json)
                .await
        }),
        Command::Purge { config, count } => {
            let cfg = match load_config(config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let _lock = match lock(&[&cfg.data_dir, &cfg.data_log_dir]) {
                Ok(l) => l,
                Err(code) => return code,
            };
            run_tool(move || async move {
                let removed = corral::storage::tools::purge(
                    &corral::storage::GlommioBackend,
                    &cfg.data_log_dir,
                    &cfg.data_dir,
                    count.max(3),
                )
                .await?;
                Ok(removed
                    .iter()
                    .map(|p| format!("removed {}\n", p.display()))
                    .collect())
            })
        }
    }
}
