//! A corral process bound to one data dir that outlives it: start, `kill -9`, restart on
//! the same files, and starts that are expected to fail (recovery refusing), with the
//! exit status and stderr captured. Used by the crash and recovery tests, which need the
//! bytes on disk to survive the process.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use zookeeper_client as zk;

use super::drain_lines;

/// How a start ended.
pub enum Started {
    /// The server announced its client port.
    Serving(SocketAddr),
    /// The process exited before serving (recovery refused, bad config ...).
    Exited { status: ExitStatus, output: String },
}

/// A data dir (snapshots in `data`, the log in `data` or `datalog`) and at most one
/// corral process running on it.
pub struct DurableServer {
    dir: tempfile::TempDir,
    cfg: BTreeMap<String, String>,
    child: Option<Child>,
    log: Arc<Mutex<Vec<String>>>,
    addr: Option<SocketAddr>,
}

impl DurableServer {
    /// A fresh data dir with the base config plus `extra_cfg_lines` ("key=value"). Nothing
    /// runs until [`start`](Self::start).
    pub fn new(extra_cfg_lines: &[&str]) -> DurableServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = dir.path().join("data");
        std::fs::create_dir_all(&data_dir).unwrap();
        let mut cfg = super::base_cfg(&data_dir);
        cfg.insert("clientPort".into(), "0".into());
        let mut s = DurableServer {
            dir,
            cfg,
            child: None,
            log: Arc::default(),
            addr: None,
        };
        s.set_cfg(extra_cfg_lines);
        s
    }

    /// Overrides config keys for the next start (the data dir stays).
    pub fn set_cfg(&mut self, lines: &[&str]) {
        for line in lines {
            let (k, v) = line.split_once('=').expect("cfg line is key=value");
            self.cfg.insert(k.trim().to_string(), v.trim().to_string());
        }
    }

    /// Where snapshots live (dataDir).
    pub fn data_dir(&self) -> PathBuf {
        PathBuf::from(&self.cfg["dataDir"])
    }

    /// Where the txn log lives (dataLogDir, default dataDir).
    pub fn log_dir(&self) -> PathBuf {
        self.cfg
            .get("dataLogDir")
            .map(PathBuf::from)
            .unwrap_or_else(|| self.data_dir())
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Writes the current config to `zoo.cfg` in the temp dir and returns its path.
    pub fn write_cfg(&self) -> PathBuf {
        let cfg_path = self.dir.path().join("zoo.cfg");
        let text: String = self.cfg.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        std::fs::write(&cfg_path, text).unwrap();
        cfg_path
    }

    /// Runs `corral ARGS... --config zoo.cfg` (an offline tool such as `log truncate`)
    /// to completion; the server must not be running.
    pub fn run_tool(&self, args: &[&str]) -> std::process::Output {
        assert!(
            self.child.is_none(),
            "stop the server before running a tool"
        );
        let cfg_path = self.write_cfg();
        Command::new(env!("CARGO_BIN_EXE_corral"))
            .args(args)
            .arg("--config")
            .arg(&cfg_path)
            .stdin(Stdio::null())
            .output()
            .expect("run corral tool")
    }

    /// Starts corral on the data dir and waits until it serves clients or exits.
    pub fn try_start(&mut self) -> Started {
        assert!(self.child.is_none(), "a server is already running");
        let cfg_path = self.write_cfg();
        let mut child = Command::new(env!("CARGO_BIN_EXE_corral"))
            .arg("server")
            .arg("--config")
            .arg(&cfg_path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn corral");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        drain_lines(child.stderr.take().unwrap(), log.clone(), None);
        drain_lines(child.stdout.take().unwrap(), log.clone(), Some(tx));
        self.log = log;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match rx.recv_timeout(Duration::from_millis(20)) {
                Ok(addr) => {
                    self.child = Some(child);
                    self.addr = Some(addr);
                    return Started::Serving(addr);
                }
                Err(mpsc::RecvTimeoutError::Disconnected)
                | Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            if let Some(status) = child.try_wait().expect("try_wait") {
                // Let the drain threads read what the process wrote before it exited.
                std::thread::sleep(Duration::from_millis(100));
                return Started::Exited {
                    status,
                    output: self.output(),
                };
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "corral neither served nor exited within 30s; output:\n{}",
                    self.output()
                );
            }
        }
    }

    /// Starts corral and panics (with its output) unless it serves clients.
    pub fn start(&mut self) -> SocketAddr {
        match self.try_start() {
            Started::Serving(addr) => addr,
            Started::Exited { status, output } => {
                panic!("corral exited at start ({status}); output:\n{output}")
            }
        }
    }

    /// Starts corral and returns its exit status and output; panics if it serves.
    pub fn start_expecting_refusal(&mut self) -> (ExitStatus, String) {
        match self.try_start() {
            Started::Serving(addr) => {
                let out = self.output();
                self.kill9();
                panic!("corral started on {addr} but recovery should have refused; output:\n{out}")
            }
            Started::Exited { status, output } => (status, output),
        }
    }

    /// SIGKILL, then reap: nothing of the process's memory reaches the disk after this.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill(); // Child::kill is SIGKILL on Unix
            let _ = c.wait();
        }
        self.addr = None;
    }

    /// `kill -9` and start again on the same data dir.
    pub fn restart(&mut self) -> SocketAddr {
        self.kill9();
        self.start()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr.expect("server is running")
    }

    pub fn connect_string(&self) -> String {
        self.addr().to_string()
    }

    /// A connector that gives up quickly on a dead server.
    pub fn connector(&self) -> zk::Connector {
        zk::Client::connector()
            .with_session_timeout(Duration::from_secs(10))
            .with_connection_timeout(Duration::from_secs(5))
    }

    pub async fn client(&self) -> zk::Client {
        self.connector()
            .connect(&self.connect_string())
            .await
            .expect("connect")
    }

    /// The running (or last) process's output so far. Stdout ("serving clients") and
    /// stderr (the recovery log) are drained by separate threads, so this waits, up to a
    /// few seconds, for the stderr line that follows recovery before answering.
    pub fn output(&self) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let out = self.log.lock().unwrap().join("\n");
            // Only a process that served (stdout said so) has that stderr line to wait for.
            let serving = out.contains("corral: serving clients on");
            let logged = out
                .lines()
                .any(|l| l.contains("corral::server") && l.contains("serving clients"));
            if !serving || logged || std::time::Instant::now() > deadline {
                return out;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The txn log segments (`log.<zxid>`), sorted by name (= by first zxid).
    pub fn segments(&self) -> Vec<PathBuf> {
        numbered_files(&self.log_dir(), "log.")
    }

    /// The snapshots (`snapshot.<zxid>`, no `.tmp`), sorted by name (= by zxid).
    pub fn snapshots(&self) -> Vec<PathBuf> {
        numbered_files(&self.data_dir(), "snapshot.")
    }
}

impl Drop for DurableServer {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() && std::env::var("CORRAL_TEST_SHOW_LOG").is_ok() {
            eprintln!("---- server output ----\n{}", self.output());
        }
    }
}

/// Files `<prefix><hex digits>` in `dir`, sorted by name.
pub fn numbered_files(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| {
                    e.file_name().to_str().is_some_and(|n| {
                        n.strip_prefix(prefix).is_some_and(|h| {
                            !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit())
                        })
                    })
                })
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}
