//! The `corral` binary: `corral server [--config FILE]`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Server { config } => {
            let cfg = match config {
                None => corral::config::Config::embedded(),
                Some(path) => match corral::config::Config::load(&path) {
                    Ok((cfg, warnings)) => {
                        for w in warnings {
                            tracing::warn!("{w}");
                        }
                        cfg
                    }
                    Err(e) => {
                        eprintln!("corral: {e}");
                        return ExitCode::from(2);
                    }
                },
            };
            match corral::server::run(cfg) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("corral: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
