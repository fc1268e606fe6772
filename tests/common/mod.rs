//! Shared harness for corral's integration tests: starts a server (corral, or Apache
//! ZooKeeper 3.8 when `CORRAL_TEST_ZOOKEEPER=1`) from a zoo.cfg in a temp dir, a
//! `zookeeper-client` connector, a cuttable TCP proxy (to force reconnects), and a raw
//! protocol connection built on `corral::proto` for the tests that must speak bytes.
//!
//! The same test bodies run against both servers, so every expectation is first checked
//! against the reference implementation.

#![allow(dead_code)]

pub mod durable;
pub mod ensemble;
pub mod ports;
pub mod raw;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use zookeeper_client as zk;

/// The zoo.cfg every test server starts from; `extra_cfg_lines` override keys.
const BASE_CFG: &[(&str, &str)] = &[
    ("tickTime", "200"),
    // The AdminServer's default port 8080 would collide between parallel servers.
    ("admin.enableServer", "false"),
    ("4lw.commands.whitelist", "*"),
    ("maxClientCnxns", "0"),
];

/// Keys ZooKeeper reads as JVM system properties rather than from zoo.cfg, with the
/// property name each one maps to.
const ZK_SYSTEM_PROPERTIES: &[(&str, &str)] = &[
    ("extendedTypesEnabled", "zookeeper.extendedTypesEnabled"),
    ("enforceQuota", "zookeeper.enforceQuota"),
    (
        "DigestAuthenticationProvider.superDigest",
        "zookeeper.DigestAuthenticationProvider.superDigest",
    ),
    (
        "znode.container.checkIntervalMs",
        "znode.container.checkIntervalMs",
    ),
    ("jute.maxbuffer", "jute.maxbuffer"),
];

/// The superuser every test server knows: `super:test`.
pub const SUPER_USER: &str = "super:test";
/// `DigestAuthenticationProvider.generateDigest("super:test")`.
pub const SUPER_DIGEST: &str = "super:D/InIHSb7yEEbrWz8b9l71RjZJU=";

pub fn using_zookeeper() -> bool {
    std::env::var("CORRAL_TEST_ZOOKEEPER").is_ok_and(|v| v == "1")
}

/// A running server; killed on drop.
pub struct TestServer {
    pub addr: SocketAddr,
    pub is_zookeeper: bool,
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// Starts a server with the base config plus `extra_cfg_lines` ("key=value"), and
    /// returns once it accepts clients.
    pub fn start(extra_cfg_lines: &[&str]) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = dir.path().join("data");
        std::fs::create_dir_all(&data_dir).unwrap();
        let mut cfg = base_cfg(&data_dir);
        for line in extra_cfg_lines {
            let (k, v) = line.split_once('=').expect("cfg line is key=value");
            cfg.insert(k.trim().to_string(), v.trim().to_string());
        }
        if using_zookeeper() {
            Self::start_zookeeper(dir, cfg)
        } else {
            Self::start_corral(dir, cfg)
        }
    }

    fn write_cfg(dir: &tempfile::TempDir, cfg: &BTreeMap<String, String>) -> std::path::PathBuf {
        let path = dir.path().join("zoo.cfg");
        let mut text = String::new();
        for (k, v) in cfg {
            text.push_str(&format!("{k}={v}\n"));
        }
        std::fs::write(&path, text).unwrap();
        path
    }

    fn start_corral(dir: tempfile::TempDir, mut cfg: BTreeMap<String, String>) -> TestServer {
        cfg.insert("clientPort".into(), "0".into());
        // corral's own key; lets a run pin the shard count (e.g. to compare 1 and N).
        if let Ok(n) = std::env::var("CORRAL_TEST_SHARDS") {
            cfg.insert("shards".into(), n);
        }
        let cfg_path = Self::write_cfg(&dir, &cfg);
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
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        drain_lines(stderr, log.clone(), None);
        drain_lines(stdout, log.clone(), Some(tx));
        let addr = match rx.recv_timeout(Duration::from_secs(15)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "corral did not announce its client port; output:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
        };
        TestServer {
            addr,
            is_zookeeper: false,
            child,
            log,
            _dir: dir,
        }
    }

    fn start_zookeeper(dir: tempfile::TempDir, mut cfg: BTreeMap<String, String>) -> TestServer {
        let port = free_port();
        cfg.insert("clientPort".into(), port.to_string());
        cfg.insert("admin.enableServer".into(), "false".into());
        let log4j = dir.path().join("log4j.properties");
        std::fs::write(
            &log4j,
            "log4j.rootLogger=INFO, C\n\
             log4j.appender.C=org.apache.log4j.ConsoleAppender\n\
             log4j.appender.C.layout=org.apache.log4j.PatternLayout\n\
             log4j.appender.C.layout.ConversionPattern=%-5p %c{1} - %m%n\n",
        )
        .unwrap();
        let mut props = vec![
            "-Dzookeeper.admin.enableServer=false".to_string(),
            format!("-Dlog4j.configuration=file:{}", log4j.display()),
        ];
        for (key, prop) in ZK_SYSTEM_PROPERTIES {
            if let Some(v) = cfg.remove(*key) {
                props.push(format!("-D{prop}={v}"));
            }
        }
        let cfg_path = Self::write_cfg(&dir, &cfg);
        let cp = zk_classpath(&[]);
        let mut child = Command::new("java")
            .args(["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"])
            .args(&props)
            .arg("-cp")
            .arg(cp)
            .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
            .arg(&cfg_path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn java");
        let log = Arc::new(Mutex::new(Vec::new()));
        drain_lines(child.stdout.take().unwrap(), log.clone(), None);
        drain_lines(child.stderr.take().unwrap(), log.clone(), None);
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            // ruok answers imok before the server takes sessions; srvr shows a Mode
            // only once it serves requests.
            if four_letter_word_blocking(addr, "ruok").as_deref() == Some("imok")
                && four_letter_word_blocking(addr, "srvr").is_some_and(|s| s.contains("Mode:"))
            {
                break;
            }
            if Instant::now() > deadline || child.try_wait().ok().flatten().is_some() {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "ZooKeeper did not start; output:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        TestServer {
            addr,
            is_zookeeper: true,
            child,
            log,
            _dir: dir,
        }
    }

    pub fn connect_string(&self) -> String {
        self.addr.to_string()
    }

    /// A connected client with the default session timeout.
    pub async fn client(&self) -> zk::Client {
        self.connector()
            .connect(&self.connect_string())
            .await
            .expect("connect")
    }

    /// A connector that fails fast instead of cycling forever on a dead server.
    pub fn connector(&self) -> zk::Connector {
        zk::Client::connector()
            .with_session_timeout(Duration::from_secs(10))
            .with_connection_timeout(Duration::from_secs(5))
    }

    /// The server's captured output so far (for failure messages).
    pub fn output(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() && std::env::var("CORRAL_TEST_SHOW_LOG").is_ok() {
            eprintln!("---- server output ----\n{}", self.output());
        }
    }
}

/// The config every test server starts from: the base keys, `data_dir`, loopback only.
pub(crate) fn base_cfg(data_dir: &std::path::Path) -> BTreeMap<String, String> {
    let mut cfg: BTreeMap<String, String> = BASE_CFG
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    cfg.insert("dataDir".into(), data_dir.display().to_string());
    cfg.insert("clientPortAddress".into(), "127.0.0.1".into());
    cfg
}

/// Reads a child's output line by line into `log`; with `announce`, sends the address
/// from corral's `corral: serving clients on ADDR` line.
fn drain_lines(
    r: impl Read + Send + 'static,
    log: Arc<Mutex<Vec<String>>>,
    announce: Option<mpsc::Sender<SocketAddr>>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            let addr = announce.as_ref().and_then(|_| {
                line.trim()
                    .strip_prefix("corral: serving clients on ")
                    .and_then(|rest| rest.trim().parse::<SocketAddr>().ok())
            });
            // Logged before announced: whoever waits for the address sees the line.
            {
                let mut log = log.lock().unwrap();
                if log.len() < 5000 {
                    log.push(line);
                }
            }
            if let (Some(tx), Some(addr)) = (&announce, addr) {
                let _ = tx.send(addr);
            }
        }
    });
}

/// A port nobody listens on right now (bind :0, read it, release it).
/// Debian's Apache ZooKeeper 3.8 jars (in `/usr/share/java`), for every harness that
/// starts ZooKeeper servers.
pub const ZK_JARS: &[&str] = &[
    "zookeeper.jar",
    "zookeeper-jute.jar",
    "slf4j-api.jar",
    "slf4j-log4j12.jar",
    "log4j-1.2.jar",
    "netty-all.jar",
    "netty-handler.jar",
    "netty-transport.jar",
    "netty-common.jar",
    "netty-buffer.jar",
    "netty-codec.jar",
    "netty-resolver.jar",
    "netty-transport-native-unix-common.jar",
    "metrics-core.jar",
    "commons-cli.jar",
    "snappy-java.jar",
];

/// The java classpath of [`ZK_JARS`] plus `extra` jars, leaving out those not installed.
pub fn zk_classpath(extra: &[&str]) -> String {
    ZK_JARS
        .iter()
        .chain(extra)
        .map(|j| format!("/usr/share/java/{j}"))
        .filter(|p| std::path::Path::new(p).exists())
        .collect::<Vec<_>>()
        .join(":")
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Sends a four-letter word and reads the whole answer (the server closes after it).
pub fn four_letter_word_blocking(addr: SocketAddr, word: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(word.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// Waits up to `within` for `f` to return true, polling.
pub async fn eventually<F, Fut>(within: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if f().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Awaits `fut` for at most `secs` seconds, panicking with `what` otherwise.
pub async fn within<T>(secs: u64, what: &str, fut: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(secs), fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {secs}s waiting for {what}"),
    }
}

/// Asserts that `fut` does not complete within `ms` milliseconds.
pub async fn assert_pending<T: std::fmt::Debug>(
    ms: u64,
    what: &str,
    fut: impl std::future::Future<Output = T>,
) {
    if let Ok(v) = tokio::time::timeout(Duration::from_millis(ms), fut).await {
        panic!("{what}: expected nothing, got {v:?}");
    }
}

pub fn anyone() -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())
}

pub fn mode(m: zk::CreateMode) -> zk::CreateOptions<'static> {
    m.with_acls(zk::Acls::anyone_all())
}

/// A TCP proxy in front of the server whose live connections can be cut, so a client
/// sees a connection loss and reconnects (through the proxy again) to the same session.
pub struct Proxy {
    pub addr: SocketAddr,
    blocked: Arc<std::sync::atomic::AtomicBool>,
    cut: tokio::sync::watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (cut, cut_rx) = tokio::sync::watch::channel(0u64);
        let blocked = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let is_blocked = blocked.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if is_blocked.load(std::sync::atomic::Ordering::SeqCst) {
                    continue; // dropping `inbound` refuses the connection
                }
                let mut cut_rx = cut_rx.clone();
                cut_rx.borrow_and_update();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut_rx.changed() => {}
                    }
                });
            }
        });
        Proxy {
            addr,
            blocked,
            cut,
            task,
        }
    }

    /// While blocked, new connections are closed as soon as they are accepted.
    pub fn set_blocked(&self, blocked: bool) {
        self.blocked
            .store(blocked, std::sync::atomic::Ordering::SeqCst);
    }

    /// Drops every connection currently open through the proxy.
    pub fn cut(&self) {
        self.cut.send_modify(|n| *n += 1);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Test certificates (`tools/make-test-certs`, password "testpass"), made once per
/// test process; `None` when openssl or keytool is missing (the caller says it
/// skips).
pub fn test_certs() -> Option<std::path::PathBuf> {
    static DIR: std::sync::OnceLock<Option<tempfile::TempDir>> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let tools = ["/usr/bin/openssl", "/usr/bin/keytool"];
        if !tools.iter().all(|t| std::path::Path::new(t).exists()) {
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("corral-certs-")
            .tempdir()
            .expect("temp dir");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tools/make-test-certs");
        let out = Command::new(script)
            .arg(dir.path())
            .arg("testpass")
            .output()
            .expect("run tools/make-test-certs");
        assert!(
            out.status.success(),
            "make-test-certs failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(dir)
    })
    .as_ref()
    .map(|d| d.path().to_path_buf())
}

/// The zoo.cfg lines that turn on TLS between servers with the test certificates in
/// `certs`, in store format `ext` ("jks", "p12").
pub fn ssl_quorum_cfg(certs: &std::path::Path, ext: &str) -> Vec<String> {
    let trust = format!("truststore.{ext}");
    let key = format!("server.{ext}");
    vec![
        "sslQuorum=true".into(),
        format!("ssl.quorum.keyStore.location={}", certs.join(key).display()),
        "ssl.quorum.keyStore.password=testpass".into(),
        format!(
            "ssl.quorum.trustStore.location={}",
            certs.join(trust).display()
        ),
        "ssl.quorum.trustStore.password=testpass".into(),
    ]
}
