//! zoo.cfg. CONTRACT STUB: owned by the config/admin work.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::limits::Limits;
use crate::request::PrepConfig;

#[derive(Debug, Clone)]
pub struct Config {
    pub tick_time: u32,
    pub data_dir: PathBuf,
    pub data_log_dir: PathBuf,
    pub client_port_address: SocketAddr,
    pub min_session_timeout: u32,
    pub max_session_timeout: u32,
    pub extended_types_enabled: bool,
    pub enforce_quota: bool,
    pub super_digest: Option<String>,
    /// `znode.container.checkIntervalMs`.
    pub container_check_interval_ms: u64,
    /// corral's own key `shards`: executors (default: every core).
    pub shards: Option<usize>,
    /// `4lw.commands.whitelist`, lower-cased; "*" allows all.
    pub four_letter_whitelist: Vec<String>,
    pub limits: Limits,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            tick_time: 2000,
            data_dir: "./data".into(),
            data_log_dir: "./data".into(),
            client_port_address: "127.0.0.1:2181".parse().unwrap(),
            min_session_timeout: 4000,
            max_session_timeout: 40000,
            extended_types_enabled: false,
            enforce_quota: false,
            super_digest: None,
            container_check_interval_ms: 60000,
            shards: None,
            four_letter_whitelist: vec!["srvr".into()],
            limits: Limits::default(),
        }
    }
}

impl Config {
    pub fn prep_config(&self) -> PrepConfig {
        PrepConfig {
            extended_types: self.extended_types_enabled,
            enforce_quota: self.enforce_quota,
            max_buffer: self.limits.max_buffer,
        }
    }

    pub fn four_letter_allowed(&self, cmd: &str) -> bool {
        self.four_letter_whitelist
            .iter()
            .any(|w| w == "*" || w == cmd)
    }
}
