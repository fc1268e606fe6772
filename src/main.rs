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
            let mut cfg = corral::config::Config::default();
            if let Some(path) = config {
                // Interim: only clientPort, until the zoo.cfg reader lands.
                let text = match std::fs::read_to_string(&path) {
                    Ok(t) => t,
                    Err(e) => {
                        eprintln!("corral: cannot read {}: {e}", path.display());
                        return ExitCode::from(2);
                    }
                };
                for line in text.lines() {
                    if let Some(v) = line.trim().strip_prefix("clientPort=") {
                        cfg.client_port_address
                            .set_port(v.trim().parse().unwrap_or(2181));
                    }
                }
            }
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
