//! The real `corral` binary in one ensemble with Debian's Apache ZooKeeper 3.8
//! (`QuorumPeerMain`), both started from the same zoo.cfg keys (`server.N` lines,
//! `dataDir/myid`, tickTime 500 ms, initLimit 10, syncLimit 5):
//!
//! - `corral_follows_zookeeper`: ZooKeeper 1 and 2 elect a leader, corral 3 joins as
//!   its follower; clients write through every server (creates, setData, deletes,
//!   ephemerals, sequential nodes, multis, writes that fail); every server then has the
//!   same tree (paths, data, ACLs and the Stat fields that must agree) and nothing
//!   acknowledged is lost; the ZooKeeper leader's `mntr` counts corral as a synced
//!   follower and no ZooKeeper server counts a digest mismatch. Then corral is killed
//!   with SIGKILL twice: after a few writes it rejoins by DIFF, after more than 500
//!   (ZooKeeper's commitLogCount) by SNAP, and the trees match again each time.
//! - `zookeeper_follows_corral`: corral 3 leads ZooKeeper 1 and 2 (it starts first and
//!   has the highest sid), same load and checks; then ZooKeeper 1 is killed and rejoins
//!   from corral by DIFF, ZooKeeper 2 is killed and after more than 500 writes rejoins
//!   by SNAP (or a DIFF from corral's log on disk), and finally corral itself is killed:
//!   ZooKeeper takes over with every acknowledged write and corral rejoins as its
//!   follower.
//! - `corral_observes_zookeeper`: ZooKeeper 1, 2, 3 vote, corral 4 observes; writes
//!   through ZooKeeper and through corral (forwarded) are seen everywhere and the
//!   leader counts one synced observer; the observer is killed and rejoins by DIFF.
//!
//! ZooKeeper keeps `/zookeeper/config` per server (its own `server.N` lines); a
//! difference there is reported at the end of a test so that the later phases run.
//! No ZooKeeper server may count a digest mismatch (`mntr`) or log a txn it could not
//! apply (its DataTree logs those at DEBUG, which the harness turns on).
//!
//! Needs Debian's `zookeeper` package and java; without them each test prints why it
//! skipped and passes. Run with `cargo test --test mixed_ensemble -- --nocapture`. On a
//! failure the events, each server's log tail and the kept temp dir are printed
//! (`CORRAL_MIXED_LOG_LINES`, `CORRAL_MIXED_KEEP=1`); `CORRAL_MIXED_BIN=/path/to/corral`
//! runs another corral build.

#[path = "common/mixed.rs"]
mod mixed;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use mixed::{Kind, Mixed, Mode};
use zookeeper_client as zk;

const TICK_MS: u64 = 500;
const INIT_LIMIT: u64 = 10;
const SYNC_LIMIT: u64 = 5;

/// Writes it takes to fall out of a ZooKeeper leader's committed log (commitLogCount
/// 500, and corral keeps as many) and get a SNAP instead of a DIFF.
const SNAP_WRITES: usize = 560;

/// The budget of one client request; the ensemble is idle otherwise, so a request that
/// takes this long is lost.
const OP_TIMEOUT: Duration = Duration::from_secs(20);

fn skip_without_zookeeper(test: &str) -> bool {
    if let Some(why) = mixed::zookeeper_missing() {
        eprintln!("skipped {test}: Apache ZooKeeper is not available here: {why}");
        return true;
    }
    false
}

fn open() -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())
}

fn mode(m: zk::CreateMode) -> zk::CreateOptions<'static> {
    m.with_acls(zk::Acls::anyone_all())
}

fn ms(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

// ---------------------------------------------------------------------------------
// Clients and what they were told.

/// A client session connected to exactly one server.
struct Conn {
    name: String,
    server: u64,
    client: zk::Client,
    session: i64,
}

/// What the test expects of a node it wrote (and was acknowledged).
#[derive(Debug, Clone)]
struct Expect {
    data: Vec<u8>,
    /// 0 for a persistent node, else the owning session.
    owner: i64,
    /// From the last acknowledging reply's Stat, when the reply carried a valid one.
    czxid: Option<i64>,
    mzxid: Option<i64>,
    version: Option<i32>,
}

/// The client side of a test: a tokio runtime, and the model of every acknowledged
/// write under the test's root.
struct Load {
    rt: tokio::runtime::Runtime,
    model: BTreeMap<String, Expect>,
    acked: usize,
    failed_as_expected: usize,
    /// Differences reported at the end of the test, so that its later phases still
    /// run: /zookeeper/config (see `compare_trees`).
    deferred: Vec<String>,
}

impl Load {
    fn new() -> Load {
        Load {
            rt: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap(),
            model: BTreeMap::new(),
            acked: 0,
            failed_as_expected: 0,
            deferred: Vec::new(),
        }
    }

    /// Connects to server `sid` alone (retrying while it does not serve yet).
    fn connect(&self, mx: &Mixed, sid: u64, timeout: Duration) -> Conn {
        let addr = mx.client_addr(sid).to_string();
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = self.rt.block_on(async {
            loop {
                let c = zk::Client::connector()
                    .with_session_timeout(timeout)
                    .with_connection_timeout(Duration::from_secs(5));
                match tokio::time::timeout(Duration::from_secs(10), c.connect(&addr)).await {
                    Ok(Ok(c)) => break c,
                    other => {
                        if Instant::now() > deadline {
                            let why = match other {
                                Ok(Err(e)) => e.to_string(),
                                _ => "timed out".into(),
                            };
                            mx.fail(format!(
                                "cannot connect to {} at {addr}: {why}",
                                mx.name(sid)
                            ));
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        });
        let session = client.session_id().0;
        let name = format!("{}/session {session:#x}", mx.name(sid));
        mx.note(format!(
            "client connected to {} (session {session:#x}, timeout {:?})",
            mx.name(sid),
            client.session_timeout()
        ));
        Conn {
            name,
            server: sid,
            client,
            session,
        }
    }

    fn run<T, E: std::fmt::Debug>(
        &self,
        mx: &Mixed,
        c: &Conn,
        what: &str,
        fut: impl std::future::Future<Output = Result<T, E>>,
    ) -> T {
        match self
            .rt
            .block_on(async { tokio::time::timeout(OP_TIMEOUT, fut).await })
        {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => mx.fail(format!("{what} through {} failed: {e:?}", c.name)),
            Err(_) => mx.fail(format!(
                "{what} through {} got no answer in {OP_TIMEOUT:?}",
                c.name
            )),
        }
    }

    /// A request that must fail with `want`.
    fn expect_err<T: std::fmt::Debug>(
        &mut self,
        mx: &Mixed,
        c: &Conn,
        what: &str,
        want: zk::Error,
        fut: impl std::future::Future<Output = Result<T, zk::Error>>,
    ) {
        match self
            .rt
            .block_on(async { tokio::time::timeout(OP_TIMEOUT, fut).await })
        {
            Ok(Err(e)) if e == want => self.failed_as_expected += 1,
            Ok(other) => mx.fail(format!(
                "{what} through {}: expected {want:?}, got {other:?}",
                c.name
            )),
            Err(_) => mx.fail(format!(
                "{what} through {} got no answer in {OP_TIMEOUT:?}",
                c.name
            )),
        }
    }

    fn record_stat(&mut self, path: &str, stat: &zk::Stat) {
        if let Some(e) = self.model.get_mut(path) {
            if stat.czxid > 0 {
                e.czxid = Some(stat.czxid);
                e.mzxid = Some(stat.mzxid);
                e.version = Some(stat.version);
            }
        }
    }

    /// Creates `path`, reads it back through the same server, and records it. Returns
    /// the created path (with its sequence number, for sequential modes).
    fn create(
        &mut self,
        mx: &Mixed,
        c: &Conn,
        path: &str,
        data: &[u8],
        m: zk::CreateMode,
    ) -> String {
        let opts = mode(m);
        let (stat, seq) = self.run(
            mx,
            c,
            &format!("create {path}"),
            c.client.create(path, data, &opts),
        );
        let actual = if seq.into_i64() >= 0 {
            format!("{path}{seq}")
        } else {
            path.to_string()
        };
        let ephemeral = matches!(
            m,
            zk::CreateMode::Ephemeral | zk::CreateMode::EphemeralSequential
        );
        self.model.insert(
            actual.clone(),
            Expect {
                data: data.to_vec(),
                owner: if ephemeral { c.session } else { 0 },
                czxid: None,
                mzxid: None,
                version: None,
            },
        );
        self.record_stat(&actual, &stat);
        self.acked += 1;
        // The server that answered has applied the write: read it back there.
        let (got, st) = self.run(
            mx,
            c,
            &format!("getData {actual}"),
            c.client.get_data(&actual),
        );
        if got != data || st.czxid != stat.czxid {
            mx.fail(format!(
                "{}: read back {actual} right after creating it: data {:?} czxid {:#x}, the create said czxid {:#x}",
                c.name,
                String::from_utf8_lossy(&got),
                st.czxid,
                stat.czxid
            ));
        }
        actual
    }

    fn set(&mut self, mx: &Mixed, c: &Conn, path: &str, data: &[u8]) {
        let stat = self.run(
            mx,
            c,
            &format!("setData {path}"),
            c.client.set_data(path, data, None),
        );
        self.model
            .get_mut(path)
            .unwrap_or_else(|| panic!("setData of {path}, which the model does not have"))
            .data = data.to_vec();
        self.record_stat(path, &stat);
        self.acked += 1;
        let (got, st) = self.run(mx, c, &format!("getData {path}"), c.client.get_data(path));
        if got != data || st.mzxid != stat.mzxid {
            mx.fail(format!(
                "{}: read back {path} right after setData: mzxid {:#x}, setData said {:#x}",
                c.name, st.mzxid, stat.mzxid
            ));
        }
    }

    fn delete(&mut self, mx: &Mixed, c: &Conn, path: &str) {
        self.run(
            mx,
            c,
            &format!("delete {path}"),
            c.client.delete(path, None),
        );
        self.model.remove(path);
        self.acked += 1;
        let st = self.run(mx, c, &format!("exists {path}"), c.client.check_stat(path));
        if st.is_some() {
            mx.fail(format!(
                "{}: {path} still exists right after its delete",
                c.name
            ));
        }
    }

    /// Many creates in flight at once through `c` (pipelined on its connection).
    fn bulk_create(&mut self, mx: &Mixed, c: &Conn, paths: Vec<String>) {
        let started = Instant::now();
        let n = paths.len();
        for chunk in paths.chunks(100) {
            let _rt = self.rt.enter();
            let mut set = tokio::task::JoinSet::new();
            for p in chunk {
                let cl = c.client.clone();
                let p = p.clone();
                set.spawn(async move {
                    let data = format!("bulk {p}").into_bytes();
                    let r = tokio::time::timeout(OP_TIMEOUT, cl.create(&p, &data, &open())).await;
                    (p, data, r)
                });
            }
            let results = self.rt.block_on(async {
                let mut out = Vec::new();
                while let Some(r) = set.join_next().await {
                    out.push(r.expect("task"));
                }
                out
            });
            for (p, data, r) in results {
                match r {
                    Ok(Ok((stat, _))) => {
                        self.model.insert(
                            p.clone(),
                            Expect {
                                data,
                                owner: 0,
                                czxid: None,
                                mzxid: None,
                                version: None,
                            },
                        );
                        self.record_stat(&p, &stat);
                        self.acked += 1;
                    }
                    Ok(Err(e)) => {
                        mx.fail(format!("bulk create {p} through {} failed: {e}", c.name))
                    }
                    Err(_) => mx.fail(format!(
                        "bulk create {p} through {} got no answer in {OP_TIMEOUT:?}",
                        c.name
                    )),
                }
            }
        }
        mx.note(format!(
            "{n} creates pipelined through {} in {}",
            c.name,
            ms(started.elapsed())
        ));
    }

    /// Many setData in flight at once through `c`, each on its own node.
    fn bulk_set(&mut self, mx: &Mixed, c: &Conn, paths: Vec<String>, round: usize) {
        for chunk in paths.chunks(100) {
            let _rt = self.rt.enter();
            let mut set = tokio::task::JoinSet::new();
            for p in chunk {
                let cl = c.client.clone();
                let p = p.clone();
                set.spawn(async move {
                    let data = format!("round {round} of {p}").into_bytes();
                    let r = tokio::time::timeout(OP_TIMEOUT, cl.set_data(&p, &data, None)).await;
                    (p, data, r)
                });
            }
            let results = self.rt.block_on(async {
                let mut out = Vec::new();
                while let Some(r) = set.join_next().await {
                    out.push(r.expect("task"));
                }
                out
            });
            for (p, data, r) in results {
                match r {
                    Ok(Ok(stat)) => {
                        self.model.get_mut(&p).unwrap().data = data;
                        self.record_stat(&p, &stat);
                        self.acked += 1;
                    }
                    Ok(Err(e)) => {
                        mx.fail(format!("bulk setData {p} through {} failed: {e}", c.name))
                    }
                    Err(_) => mx.fail(format!(
                        "bulk setData {p} through {} got no answer in {OP_TIMEOUT:?}",
                        c.name
                    )),
                }
            }
        }
    }

    /// Ends `c`'s session and waits (through `via`) until its ephemerals are gone.
    fn close(&mut self, mx: &Mixed, c: Conn, via: &Conn) {
        let session = c.session;
        let name = c.name.clone();
        self.rt.block_on(async move {
            drop(c);
            tokio::time::sleep(Duration::from_millis(100)).await;
        });
        self.session_gone(
            mx,
            session,
            via,
            Duration::from_secs(15),
            &format!("the close of {name}"),
        );
    }

    /// Drops the model's ephemerals of `session` and waits until `via` sees none of
    /// them (the session was closed or expires).
    fn session_gone(&mut self, mx: &Mixed, session: i64, via: &Conn, within: Duration, what: &str) {
        let paths: Vec<String> = self
            .model
            .iter()
            .filter(|(_, e)| e.owner == session)
            .map(|(p, _)| p.clone())
            .collect();
        self.model.retain(|_, e| e.owner != session);
        let started = Instant::now();
        let deadline = started + within;
        loop {
            let mut left = Vec::new();
            for p in &paths {
                if self
                    .run(mx, via, &format!("exists {p}"), via.client.check_stat(p))
                    .is_some()
                {
                    left.push(p.clone());
                }
            }
            if left.is_empty() {
                mx.note(format!(
                    "{what}: its {} ephemerals are gone (seen through {}) after {}",
                    paths.len(),
                    via.name,
                    ms(started.elapsed())
                ));
                return;
            }
            if Instant::now() > deadline {
                mx.fail(format!(
                    "{what}: session {session:#x}'s ephemerals {left:?} still exist after {within:?} (seen through {})",
                    via.name
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Every kind of write a client makes, through `c`, under `dir` (which exists),
    /// and the writes that must fail: each failing one must leave the tree alone.
    fn workload(&mut self, mx: &Mixed, c: &Conn, dir: &str, tag: &str) {
        let base = format!("{dir}/{tag}");
        // Persistent, changed twice.
        self.create(
            mx,
            c,
            &base,
            format!("first {tag}").as_bytes(),
            zk::CreateMode::Persistent,
        );
        self.set(mx, c, &base, format!("second {tag} \u{2713}").as_bytes());
        self.set(mx, c, &base, &[0u8, 1, 2, 254, 255]);
        // Children: sequential, ephemeral, ephemeral sequential, empty data.
        for _ in 0..2 {
            self.create(
                mx,
                c,
                &format!("{base}/seq-"),
                b"",
                zk::CreateMode::PersistentSequential,
            );
        }
        self.create(
            mx,
            c,
            &format!("{base}/eph"),
            tag.as_bytes(),
            zk::CreateMode::Ephemeral,
        );
        self.create(
            mx,
            c,
            &format!("{base}/eseq-"),
            b"e",
            zk::CreateMode::EphemeralSequential,
        );
        // A node that comes and goes.
        self.create(
            mx,
            c,
            &format!("{base}/gone"),
            b"x",
            zk::CreateMode::Persistent,
        );
        self.delete(mx, c, &format!("{base}/gone"));
        self.create(
            mx,
            c,
            &format!("{base}/gone2"),
            b"y",
            zk::CreateMode::Persistent,
        );
        // A multi: check, create, setData with its version, delete.
        let version = self.model[&base].version.unwrap_or(2);
        let results = {
            let mut w = c.client.new_multi_writer();
            w.add_check_version(&base, version).unwrap();
            w.add_create(&format!("{base}/m1"), b"from a multi", &open())
                .unwrap();
            w.add_create(
                &format!("{base}/mseq-"),
                b"",
                &mode(zk::CreateMode::PersistentSequential),
            )
            .unwrap();
            w.add_set_data(&base, b"set in a multi", Some(version))
                .unwrap();
            w.add_delete(&format!("{base}/gone2"), None).unwrap();
            self.run(mx, c, &format!("multi on {base}"), w.commit())
        };
        self.acked += 1;
        match &results[..] {
            [zk::MultiWriteResult::Check, zk::MultiWriteResult::Create { path: p1, stat: s1 }, zk::MultiWriteResult::Create { path: p2, stat: s2 }, zk::MultiWriteResult::SetData { stat: s3 }, zk::MultiWriteResult::Delete] =>
            {
                for (p, s, data) in [(p1, s1, &b"from a multi"[..]), (p2, s2, &b""[..])] {
                    self.model.insert(
                        p.clone(),
                        Expect {
                            data: data.to_vec(),
                            owner: 0,
                            czxid: None,
                            mzxid: None,
                            version: None,
                        },
                    );
                    self.record_stat(p, s);
                }
                self.model.get_mut(&base).unwrap().data = b"set in a multi".to_vec();
                self.record_stat(&base, s3);
                self.model.remove(&format!("{base}/gone2"));
            }
            other => {
                check_zk_applied(mx, "a multi's unexpected results");
                mx.fail(format!(
                    "multi through {}: unexpected results {other:?}",
                    c.name
                ))
            }
        }
        // Writes that fail; none may change anything.
        self.expect_err(
            mx,
            c,
            &format!("create existing {base}"),
            zk::Error::NodeExists,
            async { c.client.create(&base, b"again", &open()).await },
        );
        self.expect_err(
            mx,
            c,
            &format!("setData {base} at a stale version"),
            zk::Error::BadVersion,
            async { c.client.set_data(&base, b"stale", Some(0)).await },
        );
        self.expect_err(
            mx,
            c,
            &format!("delete missing {base}/none"),
            zk::Error::NoNode,
            async { c.client.delete(&format!("{base}/none"), None).await },
        );
        self.expect_err(
            mx,
            c,
            &format!("create under missing {base}/none"),
            zk::Error::NoNode,
            async {
                c.client
                    .create(&format!("{base}/none/child"), b"", &open())
                    .await
            },
        );
        self.expect_err(
            mx,
            c,
            &format!("delete non-empty {base}"),
            zk::Error::NotEmpty,
            async { c.client.delete(&base, None).await },
        );
        self.expect_err(
            mx,
            c,
            &format!("create under ephemeral {base}/eph"),
            zk::Error::NoChildrenForEphemerals,
            async {
                c.client
                    .create(&format!("{base}/eph/child"), b"", &open())
                    .await
            },
        );
        // A multi that fails at its third op: its first two must not happen.
        let failed = {
            let mut w = c.client.new_multi_writer();
            w.add_create(&format!("{base}/never"), b"", &open())
                .unwrap();
            w.add_set_data(&base, b"never", None).unwrap();
            w.add_create(&base, b"exists", &open()).unwrap();
            self.rt
                .block_on(async { tokio::time::timeout(OP_TIMEOUT, w.commit()).await })
        };
        match failed {
            Ok(Err(zk::MultiWriteError::OperationFailed {
                index: 2,
                source: zk::Error::NodeExists,
            })) => self.failed_as_expected += 1,
            other => mx.fail(format!(
                "failing multi through {}: expected NodeExists at op 2, got {other:?}",
                c.name
            )),
        }
        let never = self.run(
            mx,
            c,
            "exists never",
            c.client.check_stat(&format!("{base}/never")),
        );
        if never.is_some() {
            mx.fail(format!("{}: a failed multi created {base}/never", c.name));
        }
    }
}

// ---------------------------------------------------------------------------------
// Trees.

#[derive(Debug, Clone, PartialEq)]
struct Node {
    data: Vec<u8>,
    stat: zk::Stat,
    acl: String,
    children: Vec<String>,
}

/// The whole tree as `c`'s server has it, after a sync.
fn walk(load: &Load, mx: &Mixed, c: &Conn) -> BTreeMap<String, Node> {
    load.run(mx, c, "sync /", c.client.sync("/"));
    let mut out = BTreeMap::new();
    let mut level = vec!["/".to_string()];
    while !level.is_empty() {
        let _rt = load.rt.enter();
        let mut set = tokio::task::JoinSet::new();
        for p in level.drain(..) {
            let cl = c.client.clone();
            set.spawn(async move {
                let r = tokio::time::timeout(OP_TIMEOUT, async {
                    let (data, stat) = cl.get_data(&p).await?;
                    let (mut children, _) = cl.get_children(&p).await?;
                    let (acl, _) = cl.get_acl(&p).await?;
                    children.sort();
                    Ok::<_, zk::Error>(Node {
                        data,
                        stat,
                        acl: format!("{acl:?}"),
                        children,
                    })
                })
                .await;
                (p, r)
            });
        }
        let results = load.rt.block_on(async {
            let mut v = Vec::new();
            while let Some(r) = set.join_next().await {
                v.push(r.expect("task"));
            }
            v
        });
        for (p, r) in results {
            let node = match r {
                Ok(Ok(n)) => n,
                Ok(Err(e)) => mx.fail(format!("walking {p} on {}: {e}", c.name)),
                Err(_) => mx.fail(format!("walking {p} on {}: no answer", c.name)),
            };
            for ch in &node.children {
                level.push(if p == "/" {
                    format!("/{ch}")
                } else {
                    format!("{p}/{ch}")
                });
            }
            out.insert(p, node);
        }
    }
    out
}

/// Differences between two nodes in what must agree across servers: data, ACL,
/// children, and every Stat field but ctime/mtime, which are compared only under
/// `strict_time_under` (ZooKeeper servers differ among themselves in the times of
/// /zookeeper/config).
fn node_diff(path: &str, a: &Node, b: &Node, strict_time_under: &str) -> Vec<String> {
    let mut d = Vec::new();
    let (x, y) = (&a.stat, &b.stat);
    macro_rules! field {
        ($f:ident) => {
            if x.$f != y.$f {
                d.push(format!("{} {:#x} vs {:#x}", stringify!($f), x.$f, y.$f));
            }
        };
    }
    field!(czxid);
    field!(mzxid);
    field!(pzxid);
    field!(version);
    field!(cversion);
    field!(aversion);
    field!(ephemeral_owner);
    field!(data_length);
    field!(num_children);
    if path.starts_with(strict_time_under) {
        field!(ctime);
        field!(mtime);
    }
    if a.data != b.data {
        d.push(format!(
            "data {:?} vs {:?}",
            String::from_utf8_lossy(&a.data),
            String::from_utf8_lossy(&b.data)
        ));
    }
    if a.acl != b.acl {
        d.push(format!("acl {} vs {}", a.acl, b.acl));
    }
    if a.children != b.children {
        d.push(format!("children {:?} vs {:?}", a.children, b.children));
    }
    d
}

/// Walks every server's tree (through `conns`, one per server) and checks that they
/// are the same, and that the subtree under `root` is exactly the model. Returns the
/// number of nodes.
///
/// `/zookeeper/config` differences go to `load.deferred` instead (the test fails on
/// them at its end): ZooKeeper keeps that node per server (each sets it from its own
/// config at start and after a SNAP: `ZKDatabase.initConfigInZKDatabase`, data the
/// `server.N` lines and `version=0`, Stat version -1, mtime its own clock), so only
/// its data and version must agree.
fn compare_trees(load: &mut Load, mx: &Mixed, conns: &[&Conn], root: &str, what: &str) -> usize {
    let started = Instant::now();
    let trees: Vec<(&Conn, BTreeMap<String, Node>)> =
        conns.iter().map(|c| (*c, walk(load, mx, c))).collect();
    let (ref_conn, reference) = &trees[0];
    let mut problems = Vec::new();
    let mut time_notes = BTreeSet::new();
    for (c, tree) in &trees[1..] {
        let a: BTreeSet<&String> = reference.keys().collect();
        let b: BTreeSet<&String> = tree.keys().collect();
        for p in a.difference(&b) {
            problems.push(format!("{p}: on {} but not on {}", ref_conn.name, c.name));
        }
        for p in b.difference(&a) {
            problems.push(format!("{p}: on {} but not on {}", c.name, ref_conn.name));
        }
        for p in a.intersection(&b) {
            let (x, y) = (&reference[*p], &tree[*p]);
            let diffs = node_diff(p, x, y, root);
            if p.as_str() == "/zookeeper/config" && !diffs.is_empty() {
                load.deferred.push(format!(
                    "{what}: {} vs {}: {}",
                    mx.name(ref_conn.server),
                    mx.name(c.server),
                    diffs.join("; ")
                ));
                continue;
            }
            for d in diffs {
                problems.push(format!(
                    "{p}: {} vs {}: {d}",
                    mx.name(ref_conn.server),
                    mx.name(c.server)
                ));
            }
            if (x.stat.ctime, x.stat.mtime) != (y.stat.ctime, y.stat.mtime) {
                time_notes.insert(format!(
                    "{p}: ctime/mtime {}/{} on {} vs {}/{} on {}",
                    x.stat.ctime,
                    x.stat.mtime,
                    mx.name(ref_conn.server),
                    y.stat.ctime,
                    y.stat.mtime,
                    mx.name(c.server)
                ));
            }
        }
    }
    // The model: every acknowledged write, nothing else.
    let prefix = format!("{root}/");
    let have: BTreeSet<&String> = reference
        .keys()
        .filter(|p| p.starts_with(&prefix))
        .collect();
    let want: BTreeSet<&String> = load.model.keys().collect();
    for p in want.difference(&have) {
        problems.push(format!("{p}: acknowledged but missing"));
    }
    for p in have.difference(&want) {
        problems.push(format!(
            "{p}: present but never acknowledged (or deleted/expired)"
        ));
    }
    for p in want.intersection(&have) {
        let (e, n) = (&load.model[*p], &reference[*p]);
        if e.data != n.data {
            problems.push(format!(
                "{p}: data {:?}, acknowledged {:?}",
                String::from_utf8_lossy(&n.data),
                String::from_utf8_lossy(&e.data)
            ));
        }
        if e.owner != n.stat.ephemeral_owner {
            problems.push(format!(
                "{p}: ephemeralOwner {:#x}, created by session {:#x}",
                n.stat.ephemeral_owner, e.owner
            ));
        }
        for (f, want, got) in [
            ("czxid", e.czxid, n.stat.czxid),
            ("mzxid", e.mzxid, n.stat.mzxid),
        ] {
            if want.is_some_and(|w| w != got) {
                problems.push(format!(
                    "{p}: {f} {got:#x}, the reply said {:#x}",
                    want.unwrap()
                ));
            }
        }
        if e.version.is_some_and(|v| v != n.stat.version) {
            problems.push(format!(
                "{p}: version {}, the reply said {}",
                n.stat.version,
                e.version.unwrap()
            ));
        }
    }
    if !time_notes.is_empty() {
        mx.note(format!(
            "{what}: ctime/mtime differ outside {root} (not compared):\n  {}",
            time_notes.into_iter().collect::<Vec<_>>().join("\n  ")
        ));
    }
    if !problems.is_empty() {
        let n = problems.len();
        problems.truncate(60);
        mx.fail(format!(
            "{what}: the trees differ ({n} problems; servers {:?}):\n  {}",
            conns.iter().map(|c| mx.name(c.server)).collect::<Vec<_>>(),
            problems.join("\n  ")
        ));
    }
    let nodes = reference.len();
    mx.note(format!(
        "{what}: {} trees identical ({nodes} nodes, {} under {root} as acknowledged) in {}",
        conns.len(),
        want.len(),
        ms(started.elapsed())
    ));
    nodes
}

// ---------------------------------------------------------------------------------
// mntr and logs.

fn mntr_get(m: &BTreeMap<String, String>, k: &str) -> String {
    m.get(k).cloned().unwrap_or_else(|| "(absent)".into())
}

/// The mntr keys about learners and digests, for notes.
fn mntr_summary(m: &BTreeMap<String, String>) -> String {
    m.iter()
        .filter(|(k, _)| {
            k.starts_with("zk_synced_")
                || k.contains("digest")
                || matches!(
                    k.as_str(),
                    "zk_server_state" | "zk_learners" | "zk_pending_syncs" | "zk_znode_count"
                )
        })
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// No ZooKeeper member counts a digest mismatch (a ZooKeeper follower checks each
/// proposal's TxnDigest against its tree, and its tree against the snapshot's digest).
fn check_digests(mx: &Mixed, what: &str) {
    check_zk_applied(mx, what);
    for sid in mx.sids_of(Kind::ZooKeeper) {
        let m = mx.mntr(sid);
        if m.is_empty() {
            continue; // not running
        }
        let v = mntr_get(&m, "zk_digest_mismatches_count");
        mx.note(format!(
            "{what}: {} mntr: {}",
            mx.name(sid),
            mntr_summary(&m)
        ));
        if v != "0" {
            mx.fail(format!(
                "{what}: {} counts zk_digest_mismatches_count={v}; its digest log lines:\n{}",
                mx.name(sid),
                mx.log_grep_from(sid, 0, &["igest"]).join("\n")
            ));
        }
    }
}

/// No ZooKeeper member failed to apply a txn: ZooKeeper's `DataTree.processTxn`
/// catches the IOException of a record it cannot read, logs it at DEBUG
/// (`Failed: <header>:<txn>`) and goes on, so a txn it cannot read is silently not
/// (or partly) applied.
fn check_zk_applied(mx: &Mixed, what: &str) {
    for sid in mx.sids_of(Kind::ZooKeeper) {
        let failed = mx.log_grep_from(sid, 0, &["DataTree - Failed", "Invalid type of op"]);
        if !failed.is_empty() {
            mx.fail(format!(
                "{what}: {} could not apply {} txn(s):\n  {}",
                mx.name(sid),
                failed.len(),
                failed.join("\n  ")
            ));
        }
    }
}

/// What each ZooKeeper member's DataTree said about digests: how many txns it
/// checked against the proposal's TxnDigest ("Digests are matching", DEBUG), the
/// highest such zxid, and every other digest line (mismatches, snapshots without a
/// digest). A txn that comes without a digest (corral's) is not checked and not
/// logged.
fn note_digest_checks(mx: &Mixed, what: &str) {
    for sid in mx.sids_of(Kind::ZooKeeper) {
        let lines = mx.log_grep_from(sid, 0, &["igest"]);
        let matching: Vec<&String> = lines
            .iter()
            .filter(|l| l.contains("Digests are matching"))
            .collect();
        let last = matching
            .last()
            .and_then(|l| l.split("Zxid: ").nth(1))
            .and_then(|r| r.split(',').next())
            .unwrap_or("-");
        let other: Vec<&String> = lines
            .iter()
            .filter(|l| {
                !l.contains("Digests are matching")
                    && !l.contains("DigestAuthenticationProvider")
                    && !l.contains("digest.enabled")
            })
            .collect();
        mx.note(format!(
            "{what}: {} checked {} txns against their TxnDigest (all matching; last zxid 0x{last}); other digest lines:\n  {}",
            mx.name(sid),
            matching.len(),
            other
                .iter()
                .map(|l| l.as_str())
                .collect::<Vec<_>>()
                .join("\n  ")
        ));
    }
}

/// Waits until the leader's mntr shows `key` = `want`.
fn wait_learners(mx: &Mixed, leader: u64, key: &str, want: usize, what: &str) {
    let started = Instant::now();
    let m = mx.wait_mntr(
        leader,
        Duration::from_secs(20),
        &format!("{key}={want}"),
        |m| m.get(key).map(String::as_str) == Some(want.to_string().as_str()),
    );
    mx.note(format!(
        "{what}: {} mntr after {}: {}",
        mx.name(leader),
        ms(started.elapsed()),
        mntr_summary(&m)
    ));
}

/// Lines a ZooKeeper leader logs when it syncs a learner.
const SYNC_LINES: &[&str] = &[
    "Synchronizing with Learner",
    "Sending DIFF",
    "Sending TRUNC",
    "Sending SNAP",
    "Sending snapshot",
    "Follower sid:",
    "Observer sid:",
    "Received NEWLEADER-ACK",
];

/// Fails on what was deferred to the end of the test.
fn fail_on_deferred(mx: &Mixed, load: &Load) {
    if !load.deferred.is_empty() {
        mx.fail(format!(
            "/zookeeper/config differs between servers (ZooKeeper keeps the ensemble's \
             config there: a client's getConfig reads it):\n  {}",
            load.deferred.join("\n  ")
        ));
    }
}

/// WARN/ERROR lines of `sid`'s log from line `from`, for notes.
fn warnings(mx: &Mixed, sid: u64, from: usize) -> Vec<String> {
    mx.log_grep_from(sid, from, &[" WARN ", " ERROR ", "WARN ", "ERROR "])
}

fn note_warnings(mx: &Mixed, what: &str) {
    for sid in mx.sids() {
        let w = warnings(mx, sid, 0);
        if !w.is_empty() {
            let shown = w.len().min(25);
            mx.note(format!(
                "{what}: {} logged {} WARN/ERROR lines; the last {shown}:\n  {}",
                mx.name(sid),
                w.len(),
                w[w.len() - shown..].join("\n  ")
            ));
        }
    }
}

// ---------------------------------------------------------------------------------
// 1 (and 4): corral follows a ZooKeeper leader, and is killed and catches up.

#[test]
fn corral_follows_zookeeper() {
    if skip_without_zookeeper("corral_follows_zookeeper") {
        return;
    }
    let _serial = mixed::serial();
    let t = Instant::now();
    let mut mx = Mixed::new(
        &[
            (1, Kind::ZooKeeper, false),
            (2, Kind::ZooKeeper, false),
            (3, Kind::Corral, false),
        ],
        TICK_MS,
        INIT_LIMIT,
        SYNC_LIMIT,
    );
    // ZooKeeper 1 and 2 are a quorum of three; corral 3 joins what they elected.
    mx.start(&[1, 2]);
    let leader = mx.wait_settled(&[1, 2], Duration::from_secs(60));
    wait_learners(&mx, leader, "zk_synced_followers", 1, "before corral");
    let log_mark = mx.log_len(leader);
    mx.start(&[3]);
    let l2 = mx.wait_settled(&[1, 2, 3], Duration::from_secs(30));
    assert_eq!(l2, leader, "the leader changed when corral joined");
    assert_eq!(mx.mode(3), Mode::Follower);
    wait_learners(&mx, leader, "zk_synced_followers", 2, "corral joined");
    mx.note(format!(
        "{} synced corral 3:\n  {}",
        mx.name(leader),
        mx.log_grep_from(leader, log_mark, SYNC_LINES).join("\n  ")
    ));
    mx.note(format!("corral 3 mntr: {}", mntr_summary(&mx.mntr(3))));
    let up = t.elapsed();

    let mut load = Load::new();
    let session_timeout = Duration::from_secs(4);
    let c1 = load.connect(&mx, 1, Duration::from_secs(10));
    let c2 = load.connect(&mx, 2, Duration::from_secs(10));
    let mut c3 = load.connect(&mx, 3, session_timeout);
    if c3.session >> 56 != 3 {
        mx.note(format!(
            "note: corral's session id {:#x} does not carry its sid in the top byte",
            c3.session
        ));
    }
    let root = "/mixed";
    load.run(
        &mx,
        &c3,
        "create /mixed",
        c3.client.create(root, b"root", &open()),
    );
    for (c, tag) in [(&c3, "c3a"), (&c1, "z1a"), (&c2, "z2a"), (&c3, "c3b")] {
        load.workload(&mx, c, root, tag);
    }
    // Writes from all three at once.
    load.create(&mx, &c3, "/mixed/par", b"", zk::CreateMode::Persistent);
    for c in [&c1, &c2, &c3] {
        let paths = (0..40)
            .map(|i| format!("/mixed/par/s{}-{i:03}", c.server))
            .collect();
        load.bulk_create(&mx, c, paths);
    }
    // A session through corral closes: its ephemerals go everywhere.
    let short = load.connect(&mx, 3, session_timeout);
    load.create(
        &mx,
        &short,
        "/mixed/short-lived",
        b"",
        zk::CreateMode::Ephemeral,
    );
    load.close(&mx, short, &c1);
    let writes = t.elapsed();
    compare_trees(&mut load, &mx, &[&c1, &c2, &c3], root, "after the load");
    check_digests(&mx, "after the load");
    wait_learners(&mx, leader, "zk_synced_followers", 2, "after the load");
    mx.note(format!(
        "phase 1: {} writes acknowledged, {} failed as expected; up in {}, load in {}",
        load.acked,
        load.failed_as_expected,
        ms(up),
        ms(writes - up)
    ));

    // 4a: kill -9 corral after some writes; a few more; it rejoins by DIFF.
    let kill_at = Instant::now();
    load.create(
        &mx,
        &c3,
        "/mixed/before-kill",
        b"last through corral",
        zk::CreateMode::Persistent,
    );
    mx.kill9(3);
    wait_learners(&mx, leader, "zk_synced_followers", 1, "corral killed");
    let dead = std::mem::replace(&mut c3, load.connect(&mx, 1, Duration::from_secs(10)));
    let dead_session = lose(&load, dead);
    for (c, tag) in [(&c1, "z1-while-down"), (&c2, "z2-while-down")] {
        load.workload(&mx, c, root, tag);
    }
    // corral's client session expires at the leader: its ephemerals go.
    load.session_gone(
        &mx,
        dead_session,
        &c1,
        Duration::from_secs(20),
        "the expiry of corral's client session",
    );
    let log_mark = mx.log_len(leader);
    let restart = Instant::now();
    mx.start(&[3]);
    mx.wait_settled(&[1, 2, 3], Duration::from_secs(30));
    wait_learners(&mx, leader, "zk_synced_followers", 2, "corral restarted");
    let synced = mx.log_grep_from(leader, log_mark, SYNC_LINES);
    mx.note(format!(
        "corral 3 rejoined in {} (killed {} earlier); {} synced it:\n  {}",
        ms(restart.elapsed()),
        ms(kill_at.elapsed()),
        mx.name(leader),
        synced.join("\n  ")
    ));
    if !synced.iter().any(|l| l.contains("Sending DIFF")) {
        mx.fail(format!(
            "after a few writes, {} did not sync corral by DIFF",
            mx.name(leader)
        ));
    }
    c3 = load.connect(&mx, 3, session_timeout);
    load.workload(&mx, &c3, root, "c3-after-diff");
    compare_trees(&mut load, &mx, &[&c1, &c2, &c3], root, "after the DIFF");
    check_digests(&mx, "after the DIFF");

    // 4b: kill -9 corral again; more than 500 writes (past the leader's window in
    // memory); it rejoins by SNAP or by a DIFF from the leader's txn log.
    mx.kill9(3);
    wait_learners(&mx, leader, "zk_synced_followers", 1, "corral killed again");
    let dead = std::mem::replace(&mut c3, load.connect(&mx, 1, Duration::from_secs(10)));
    let dead_session = lose(&load, dead);
    load.create(&mx, &c1, "/mixed/bulk", b"", zk::CreateMode::Persistent);
    let half = SNAP_WRITES / 2;
    let paths: Vec<String> = (0..half).map(|i| format!("/mixed/bulk/n{i:04}")).collect();
    load.bulk_create(&mx, &c1, paths[..half / 2].to_vec());
    load.bulk_create(&mx, &c2, paths[half / 2..].to_vec());
    load.bulk_set(&mx, &c2, paths.clone(), 1);
    load.session_gone(
        &mx,
        dead_session,
        &c1,
        Duration::from_secs(20),
        "the expiry of corral's second client session",
    );
    let log_mark = mx.log_len(leader);
    let restart = Instant::now();
    mx.start(&[3]);
    mx.wait_settled(&[1, 2, 3], Duration::from_secs(30));
    wait_learners(
        &mx,
        leader,
        "zk_synced_followers",
        2,
        "corral restarted after 500+ writes",
    );
    let synced = mx.log_grep_from(leader, log_mark, SYNC_LINES);
    mx.note(format!(
        "corral 3 rejoined in {}; {} synced it:\n  {}",
        ms(restart.elapsed()),
        mx.name(leader),
        synced.join("\n  ")
    ));
    // Beyond the 500 txns in memory, ZooKeeper sends a SNAP or (snapshotSizeFactor,
    // 0.33 by default) a DIFF read from its txn log: either is right here.
    if !synced.iter().any(|l| {
        l.contains("Sending snapshot") || l.contains("Sending SNAP") || l.contains("Sending DIFF")
    }) {
        mx.fail(format!(
            "after {SNAP_WRITES}+ writes, {} synced corral by neither SNAP nor DIFF",
            mx.name(leader)
        ));
    }
    c3 = load.connect(&mx, 3, session_timeout);
    load.workload(&mx, &c3, root, "c3-after-snap");
    load.bulk_set(&mx, &c3, paths[..50].to_vec(), 2);
    compare_trees(&mut load, &mx, &[&c1, &c2, &c3], root, "after the SNAP");
    check_digests(&mx, "after the SNAP");
    wait_learners(&mx, leader, "zk_synced_followers", 2, "at the end");
    note_digest_checks(&mx, "corral_follows_zookeeper");
    note_warnings(&mx, "corral_follows_zookeeper");
    fail_on_deferred(&mx, &load);
    mx.note(format!(
        "corral_follows_zookeeper: {} writes acknowledged, {} failed as expected, in {}",
        load.acked,
        load.failed_as_expected,
        ms(t.elapsed())
    ));
    drop((c1, c2, c3));
}

// ---------------------------------------------------------------------------------
// 2: ZooKeeper follows a corral leader.

/// Lines a ZooKeeper learner logs about how it synced, and about digests.
const LEARNER_SYNC_LINES: &[&str] = &[
    "FOLLOWING",
    "OBSERVING",
    "Getting a diff",
    "Getting a snapshot",
    "Getting a truncate",
    "Learner received NEWLEADER",
    "Learner received UPTODATE",
    "igest",
    "Unexpected extra paths",
];

#[test]
fn zookeeper_follows_corral() {
    if skip_without_zookeeper("zookeeper_follows_corral") {
        return;
    }
    let _serial = mixed::serial();
    let t = Instant::now();
    let mut mx = Mixed::new(
        &[
            (1, Kind::ZooKeeper, false),
            (2, Kind::ZooKeeper, false),
            (3, Kind::Corral, false),
        ],
        TICK_MS,
        INIT_LIMIT,
        SYNC_LIMIT,
    );
    // With empty data the highest (epoch, zxid, sid) is corral's: started first, it
    // leads.
    mx.start(&[3, 1, 2]);
    let leader = mx.wait_settled(&[1, 2, 3], Duration::from_secs(60));
    if leader != 3 {
        mx.fail(format!(
            "expected corral 3 to lead, {} does",
            mx.name(leader)
        ));
    }
    wait_learners(&mx, 3, "zk_synced_followers", 2, "corral leads");
    for sid in [1, 2] {
        mx.note(format!(
            "{} followed corral:\n  {}",
            mx.name(sid),
            mx.log_grep_from(sid, 0, LEARNER_SYNC_LINES).join("\n  ")
        ));
    }
    let up = t.elapsed();

    // Sessions on servers that are killed later have short timeouts.
    let short = Duration::from_secs(4);
    let long = Duration::from_secs(10);
    let mut load = Load::new();
    let mut c1 = load.connect(&mx, 1, short);
    let mut c2 = load.connect(&mx, 2, short);
    let mut c3 = load.connect(&mx, 3, short);
    let root = "/mixed";
    load.run(
        &mx,
        &c1,
        "create /mixed",
        c1.client.create(root, b"root", &open()),
    );
    for (c, tag) in [(&c3, "c3a"), (&c1, "z1a"), (&c2, "z2a"), (&c1, "z1b")] {
        load.workload(&mx, c, root, tag);
    }
    load.create(&mx, &c3, "/mixed/par", b"", zk::CreateMode::Persistent);
    for c in [&c1, &c2, &c3] {
        let paths = (0..40)
            .map(|i| format!("/mixed/par/s{}-{i:03}", c.server))
            .collect();
        load.bulk_create(&mx, c, paths);
    }
    // A session through a ZooKeeper follower closes: corral proposes the closeSession.
    let brief = load.connect(&mx, 2, short);
    load.create(
        &mx,
        &brief,
        "/mixed/short-lived",
        b"",
        zk::CreateMode::Ephemeral,
    );
    load.close(&mx, brief, &c3);
    compare_trees(&mut load, &mx, &[&c3, &c1, &c2], root, "after the load");
    check_digests(&mx, "after the load");
    wait_learners(&mx, 3, "zk_synced_followers", 2, "after the load");
    mx.note(format!(
        "phase 1: {} writes acknowledged, {} failed as expected; up in {}, load in {}",
        load.acked,
        load.failed_as_expected,
        ms(up),
        ms(t.elapsed() - up)
    ));

    // ZooKeeper 1 is killed; after a few writes it rejoins from corral by DIFF.
    mx.kill9(1);
    wait_learners(&mx, 3, "zk_synced_followers", 1, "ZooKeeper 1 killed");
    let dead = std::mem::replace(&mut c1, load.connect(&mx, 2, long));
    let dead_session = lose(&load, dead);
    load.workload(&mx, &c3, root, "c3-while-z1-down");
    load.workload(&mx, &c2, root, "z2-while-z1-down");
    let brief = load.connect(&mx, 3, short);
    load.create(
        &mx,
        &brief,
        "/mixed/short-lived-2",
        b"",
        zk::CreateMode::Ephemeral,
    );
    load.close(&mx, brief, &c3);
    load.session_gone(
        &mx,
        dead_session,
        &c3,
        Duration::from_secs(20),
        "the expiry of ZooKeeper 1's client session",
    );
    let log_mark = mx.log_len(1);
    let restart = Instant::now();
    mx.start(&[1]);
    mx.wait_settled(&[1, 2, 3], Duration::from_secs(60));
    wait_learners(&mx, 3, "zk_synced_followers", 2, "ZooKeeper 1 restarted");
    let seen = mx.log_grep_from(1, log_mark, LEARNER_SYNC_LINES);
    mx.note(format!(
        "ZooKeeper 1 rejoined corral in {}:\n  {}",
        ms(restart.elapsed()),
        seen.join("\n  ")
    ));
    if !seen.iter().any(|l| l.contains("Getting a diff")) {
        mx.fail("after a few writes, ZooKeeper 1 did not get a DIFF from corral".into());
    }
    c1 = load.connect(&mx, 1, long);
    load.workload(&mx, &c1, root, "z1-after-diff");
    compare_trees(
        &mut load,
        &mx,
        &[&c3, &c1, &c2],
        root,
        "after ZooKeeper 1's DIFF",
    );
    check_digests(&mx, "after ZooKeeper 1's DIFF");

    // ZooKeeper 2 is killed; after 500+ writes it rejoins from corral by SNAP.
    mx.kill9(2);
    wait_learners(&mx, 3, "zk_synced_followers", 1, "ZooKeeper 2 killed");
    let dead = std::mem::replace(&mut c2, load.connect(&mx, 1, long));
    let dead_session = lose(&load, dead);
    load.create(&mx, &c3, "/mixed/bulk", b"", zk::CreateMode::Persistent);
    let half = SNAP_WRITES / 2;
    let paths: Vec<String> = (0..half).map(|i| format!("/mixed/bulk/n{i:04}")).collect();
    load.bulk_create(&mx, &c3, paths[..half / 2].to_vec());
    load.bulk_create(&mx, &c1, paths[half / 2..].to_vec());
    load.bulk_set(&mx, &c3, paths.clone(), 1);
    load.session_gone(
        &mx,
        dead_session,
        &c3,
        Duration::from_secs(20),
        "the expiry of ZooKeeper 2's client session",
    );
    let log_mark = mx.log_len(2);
    let restart = Instant::now();
    mx.start(&[2]);
    mx.wait_settled(&[1, 2, 3], Duration::from_secs(60));
    wait_learners(&mx, 3, "zk_synced_followers", 2, "ZooKeeper 2 restarted");
    let seen = mx.log_grep_from(2, log_mark, LEARNER_SYNC_LINES);
    mx.note(format!(
        "ZooKeeper 2 rejoined corral in {}:\n  {}",
        ms(restart.elapsed()),
        seen.join("\n  ")
    ));
    // Beyond corral's 500 txns in memory: a SNAP, or a DIFF read back from corral's
    // log on disk (ZooKeeper's syncFollower rule 4), whichever corral chose.
    match (
        seen.iter().any(|l| l.contains("Getting a snapshot")),
        seen.iter().any(|l| l.contains("Getting a diff")),
    ) {
        (true, _) => mx.note("ZooKeeper 2 got a SNAP from corral"),
        (false, true) => mx.note("ZooKeeper 2 got a DIFF from corral (from its log on disk)"),
        _ => mx.fail(format!(
            "after {SNAP_WRITES}+ writes, ZooKeeper 2 got neither a SNAP nor a DIFF from corral"
        )),
    }
    c2 = load.connect(&mx, 2, long);
    load.workload(&mx, &c2, root, "z2-after-snap");
    load.workload(&mx, &c3, root, "c3-after-snap");
    compare_trees(
        &mut load,
        &mx,
        &[&c3, &c1, &c2],
        root,
        "after ZooKeeper 2's SNAP",
    );
    check_digests(&mx, "after ZooKeeper 2's SNAP");

    // The corral leader is killed: ZooKeeper takes over with everything acknowledged,
    // and corral rejoins as its follower.
    mx.kill9(3);
    let handover = Instant::now();
    let new_leader = mx.wait_settled(&[1, 2], Duration::from_secs(30));
    mx.note(format!(
        "{} leads {} after corral's kill",
        mx.name(new_leader),
        ms(handover.elapsed())
    ));
    let dead = std::mem::replace(&mut c3, load.connect(&mx, 1, long));
    let dead_session = lose(&load, dead);
    load.session_gone(
        &mx,
        dead_session,
        &c1,
        Duration::from_secs(20),
        "the expiry of corral's client session",
    );
    compare_trees(&mut load, &mx, &[&c1, &c2], root, "after the handover");
    load.workload(&mx, &c1, root, "z1-after-handover");
    load.workload(&mx, &c2, root, "z2-after-handover");
    let log_mark = mx.log_len(new_leader);
    mx.start(&[3]);
    mx.wait_settled(&[1, 2, 3], Duration::from_secs(30));
    wait_learners(
        &mx,
        new_leader,
        "zk_synced_followers",
        2,
        "corral rejoined as a follower",
    );
    mx.note(format!(
        "{} synced corral 3:\n  {}",
        mx.name(new_leader),
        mx.log_grep_from(new_leader, log_mark, SYNC_LINES)
            .join("\n  ")
    ));
    c3 = load.connect(&mx, 3, long);
    load.workload(&mx, &c3, root, "c3-following");
    compare_trees(
        &mut load,
        &mx,
        &[&c1, &c2, &c3],
        root,
        "after corral rejoined",
    );
    check_digests(&mx, "after corral rejoined");
    note_digest_checks(&mx, "zookeeper_follows_corral");
    note_warnings(&mx, "zookeeper_follows_corral");
    fail_on_deferred(&mx, &load);
    mx.note(format!(
        "zookeeper_follows_corral: {} writes acknowledged, {} failed as expected, in {}",
        load.acked,
        load.failed_as_expected,
        ms(t.elapsed())
    ));
    drop((c1, c2, c3));
}

/// Drops a client whose server was killed; returns its session, which the leader
/// expires.
fn lose(load: &Load, c: Conn) -> i64 {
    let session = c.session;
    load.rt.block_on(async move { drop(c) });
    session
}

// ---------------------------------------------------------------------------------
// 3: corral observes a ZooKeeper ensemble.

#[test]
fn corral_observes_zookeeper() {
    if skip_without_zookeeper("corral_observes_zookeeper") {
        return;
    }
    let _serial = mixed::serial();
    let t = Instant::now();
    let mut mx = Mixed::new(
        &[
            (1, Kind::ZooKeeper, false),
            (2, Kind::ZooKeeper, false),
            (3, Kind::ZooKeeper, false),
            (4, Kind::Corral, true),
        ],
        TICK_MS,
        INIT_LIMIT,
        SYNC_LIMIT,
    );
    mx.start(&[1, 2, 3, 4]);
    let leader = mx.wait_settled(&[1, 2, 3, 4], Duration::from_secs(60));
    assert_eq!(mx.mode(4), Mode::Observer);
    wait_learners(&mx, leader, "zk_synced_observers", 1, "corral observes");
    wait_learners(&mx, leader, "zk_synced_followers", 2, "corral observes");
    mx.note(format!("corral 4 mntr: {}", mntr_summary(&mx.mntr(4))));
    let up = t.elapsed();

    let mut load = Load::new();
    let mut conns: Vec<Conn> = [1, 2, 3]
        .into_iter()
        .map(|s| load.connect(&mx, s, Duration::from_secs(10)))
        .collect();
    conns.push(load.connect(&mx, 4, Duration::from_secs(4)));
    let root = "/mixed";
    load.run(
        &mx,
        &conns[3],
        "create /mixed",
        conns[3].client.create(root, b"root", &open()),
    );
    for c in &conns {
        load.workload(&mx, c, root, &format!("s{}", c.server));
    }
    load.workload(&mx, &conns[3], root, "c4b");
    load.create(
        &mx,
        &conns[3],
        "/mixed/par",
        b"",
        zk::CreateMode::Persistent,
    );
    for c in &conns {
        let paths = (0..30)
            .map(|i| format!("/mixed/par/s{}-{i:03}", c.server))
            .collect();
        load.bulk_create(&mx, c, paths);
    }
    let brief = load.connect(&mx, 4, Duration::from_secs(4));
    load.create(
        &mx,
        &brief,
        "/mixed/short-lived",
        b"",
        zk::CreateMode::Ephemeral,
    );
    load.close(&mx, brief, &conns[0]);
    {
        let refs: Vec<&Conn> = conns.iter().collect();
        compare_trees(&mut load, &mx, &refs, root, "after the load");
    }
    check_digests(&mx, "after the load");
    wait_learners(&mx, leader, "zk_synced_observers", 1, "after the load");

    // The observer is killed; ZooKeeper goes on; it rejoins by DIFF.
    mx.kill9(4);
    wait_learners(&mx, leader, "zk_synced_observers", 0, "corral killed");
    let dead = conns.pop().unwrap();
    let dead_session = lose(&load, dead);
    for c in &conns[..3] {
        load.workload(&mx, c, root, &format!("s{}-while-down", c.server));
    }
    load.session_gone(
        &mx,
        dead_session,
        &conns[0],
        Duration::from_secs(20),
        "the expiry of the observer's client session",
    );
    let log_mark = mx.log_len(leader);
    mx.start(&[4]);
    mx.wait_settled(&[1, 2, 3, 4], Duration::from_secs(30));
    wait_learners(&mx, leader, "zk_synced_observers", 1, "corral restarted");
    let synced = mx.log_grep_from(leader, log_mark, SYNC_LINES);
    mx.note(format!(
        "{} synced observer corral 4:\n  {}",
        mx.name(leader),
        synced.join("\n  ")
    ));
    if !synced.iter().any(|l| l.contains("Sending DIFF")) {
        mx.fail(format!(
            "after a few writes, {} did not sync the observer by DIFF",
            mx.name(leader)
        ));
    }
    conns.push(load.connect(&mx, 4, Duration::from_secs(10)));
    load.workload(&mx, &conns[3], root, "c4-after-diff");
    {
        let refs: Vec<&Conn> = conns.iter().collect();
        compare_trees(&mut load, &mx, &refs, root, "after the observer's DIFF");
    }
    check_digests(&mx, "after the observer's DIFF");
    note_digest_checks(&mx, "corral_observes_zookeeper");
    note_warnings(&mx, "corral_observes_zookeeper");
    fail_on_deferred(&mx, &load);
    mx.note(format!(
        "corral_observes_zookeeper: {} writes acknowledged, {} failed as expected; up in {}, total {}",
        load.acked,
        load.failed_as_expected,
        ms(up),
        ms(t.elapsed())
    ));
    drop(conns);
}

/// `sslQuorum=true` on both kinds of server: ZooKeeper 1 and 2 and corral 3 form one
/// ensemble over TLS (PKCS12 stores, hostname verification on), writes through corral
/// and through ZooKeeper are seen on both, then corral is killed and rejoins over TLS.
#[test]
fn zookeeper_and_corral_form_a_tls_ensemble() {
    if skip_without_zookeeper("zookeeper_and_corral_form_a_tls_ensemble") {
        return;
    }
    let _serial = mixed::serial();
    let certs = tempfile::Builder::new()
        .prefix("corral-certs-")
        .tempdir()
        .unwrap();
    let made = std::process::Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tools/make-test-certs"
    ))
    .arg(certs.path())
    .arg("testpass")
    .output()
    .expect("tools/make-test-certs");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let c = |f: &str| certs.path().join(f).display().to_string();
    let mut mx = two_zookeepers_and_corral(&[
        "sslQuorum=true".into(),
        format!("ssl.quorum.keyStore.location={}", c("server.p12")),
        "ssl.quorum.keyStore.password=testpass".into(),
        format!("ssl.quorum.trustStore.location={}", c("truststore.p12")),
        "ssl.quorum.trustStore.password=testpass".into(),
    ]);
    mx.start(&[1, 2, 3]);
    let leader = mx.wait_settled(&[1, 2, 3], Duration::from_secs(60));
    wait_learners(&mx, leader, "zk_synced_followers", 2, "TLS ensemble");
    let root = "/tls";
    let (mut load, conns) = write_through_all(&mx, root, "over TLS");
    mx.kill9(3);
    mx.start(&[3]);
    mx.wait_settled(&[1, 2, 3], Duration::from_secs(60));
    corral_is_back(&mx, &mut load, &conns[0], root, "corral back over TLS");
}

/// `quorum.auth.enableSasl` with DIGEST-MD5 on every server (learner and server
/// required), credentials in a JAAS file passed as `-Djava.security.auth.login.config`
/// (corral reads it from `SERVER_JVMFLAGS`): ZooKeeper 1 and 2 and corral 3 form one
/// ensemble (corral, with the highest sid, checks ZooKeeper's credentials when it
/// leads), then corral is killed and rejoins the ZooKeeper leader as a SASL learner. A
/// corral with a wrong password is kept out.
#[test]
fn zookeeper_and_corral_authenticate_each_other_with_quorum_sasl() {
    if skip_without_zookeeper("zookeeper_and_corral_authenticate_each_other_with_quorum_sasl") {
        return;
    }
    let _serial = mixed::serial();
    let dir = tempfile::Builder::new()
        .prefix("corral-jaas-")
        .tempdir()
        .unwrap();
    let jaas = |password: &str| {
        format!(
            "QuorumServer {{\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  user_quorum=\"s3cret\";\n}};\n\
             QuorumLearner {{\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  username=\"quorum\"\n  password=\"{password}\";\n}};\n"
        )
    };
    let good = dir.path().join("jaas.conf");
    std::fs::write(&good, jaas("s3cret")).unwrap();
    let mut mx = two_zookeepers_and_corral(&[
        "quorum.auth.enableSasl=true".into(),
        "quorum.auth.learnerRequireSasl=true".into(),
        "quorum.auth.serverRequireSasl=true".into(),
    ]);
    mx.add_jvm_flags(&[format!(
        "-Djava.security.auth.login.config={}",
        good.display()
    )]);
    mx.start(&[1, 2, 3]);
    let leader = mx.wait_settled(&[1, 2, 3], Duration::from_secs(60));
    mx.note(format!("leader: {}", mx.name(leader)));
    wait_learners(&mx, leader, "zk_synced_followers", 2, "quorum SASL");
    let root = "/qsasl";
    let (mut load, conns) = write_through_all(&mx, root, "quorum SASL");
    // corral checked the ZooKeeper servers' credentials (as leader, or on the election
    // port), and each ZooKeeper checked corral's.
    assert!(
        !mx.log_grep_from(3, 0, &["quorum SASL: quorum authenticated"])
            .is_empty(),
        "corral never authenticated a peer"
    );
    for zk in [1, 2] {
        assert!(
            !mx.log_grep_from(
                zk,
                0,
                &["Successfully completed the authentication using SASL"]
            )
            .is_empty(),
            "{} never completed quorum SASL",
            mx.name(zk)
        );
    }
    // ZooKeeper leads once corral is gone; corral comes back as its SASL learner.
    mx.kill9(3);
    let zk_leader = mx.wait_settled(&[1, 2], Duration::from_secs(60));
    mx.start(&[3]);
    mx.wait_settled(&[1, 2, 3], Duration::from_secs(60));
    wait_learners(&mx, zk_leader, "zk_synced_followers", 2, "corral back");
    corral_is_back(&mx, &mut load, &conns[0], root, "corral back over SASL");
    drop(conns);

    // The wrong password: corral cannot join the ZooKeeper pair.
    mx.kill9(3);
    let bad = dir.path().join("jaas-bad.conf");
    std::fs::write(&bad, jaas("wrong")).unwrap();
    mx.set_jvm_flags(&[format!(
        "-Djava.security.auth.login.config={}",
        bad.display()
    )]);
    mx.start(&[3]);
    std::thread::sleep(Duration::from_secs(8));
    let m = mx.mode(3);
    assert!(
        !m.serving(),
        "corral with a wrong quorum password serves as {m:?}"
    );
    let learners = mx.mntr(zk_leader);
    assert_eq!(
        mntr_get(&learners, "zk_synced_followers"),
        "1",
        "the ZooKeeper leader counts only its ZooKeeper follower"
    );
}

/// ZooKeeper 1 and 2 and corral 3 (which, with the highest sid, leads when all start
/// together), every server with the zoo.cfg lines `cfg`.
fn two_zookeepers_and_corral(cfg: &[String]) -> Mixed {
    let mut mx = Mixed::new(
        &[
            (1, Kind::ZooKeeper, false),
            (2, Kind::ZooKeeper, false),
            (3, Kind::Corral, false),
        ],
        TICK_MS,
        INIT_LIMIT,
        SYNC_LIMIT,
    );
    mx.add_cfg(cfg);
    mx
}

/// A session on each of servers 1, 2, 3 of a settled ensemble; `root` created through
/// corral 3, the workload run through every server, and the three trees compared.
fn write_through_all(mx: &Mixed, root: &str, what: &str) -> (Load, Vec<Conn>) {
    let mut load = Load::new();
    let conns: Vec<Conn> = [1, 2, 3]
        .into_iter()
        .map(|s| load.connect(mx, s, Duration::from_secs(10)))
        .collect();
    load.run(
        mx,
        &conns[2],
        &format!("create {root}"),
        conns[2].client.create(root, b"", &open()),
    );
    for c in &conns {
        load.workload(mx, c, root, &format!("s{}", c.server));
    }
    compare_trees(
        &mut load,
        mx,
        &[&conns[0], &conns[1], &conns[2]],
        root,
        what,
    );
    (load, conns)
}

/// corral 3 restarted and settled: a session on it sees a new workload written through
/// `other` as every server does, no digest mismatch, and nothing acknowledged is lost.
fn corral_is_back(mx: &Mixed, load: &mut Load, other: &Conn, root: &str, what: &str) {
    let again = load.connect(mx, 3, Duration::from_secs(10));
    load.workload(mx, other, root, "after");
    compare_trees(load, mx, &[other, &again], root, what);
    check_digests(mx, what);
    fail_on_deferred(mx, load);
}
