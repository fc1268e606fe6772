//! The oracle for corral's quorum code: a real Apache ZooKeeper 3.8 ensemble with a
//! corral `Peer` as one of its members, driven by a small blocking runtime in the test
//! (`tests/common/zk_quorum/`). The peer must elect with the Java servers, sync from a
//! Java leader (SNAP or DIFF), ACK its proposals so that they count toward a quorum,
//! and see every client write as a committed txn whose decoded contents match what the
//! client wrote; our tree, built from the SNAP with corral's own `apply`, must also
//! reach the digest ZooKeeper put in each proposal.
//!
//! Needs Debian's `zookeeper` package (and java); without it each test prints why it
//! skipped and passes. Run with `cargo test --test zk_quorum_oracle -- --nocapture`.

#[path = "common/zk_quorum/mod.rs"]
mod zk_quorum;

use std::time::{Duration, Instant};

use corral::quorum::wire;
use corral::quorum::{LearnerType, ServerState, Sid};
use corral::request::Txn;
use zookeeper_client as zk;

use zk_quorum::runtime::{show_txn, CommittedTxn, Observed};
use zk_quorum::{Ensemble, Kind};

/// A test's whole budget; every wait inside is shorter.
const TEST_BUDGET: Duration = Duration::from_secs(90);

fn skip_without_zookeeper(test: &str) -> bool {
    if let Some(why) = zk_quorum::zookeeper_missing() {
        eprintln!("skipped {test}: Apache ZooKeeper is not available here: {why}");
        return true;
    }
    false
}

// ---------------------------------------------------------------------------------
// A client that writes through the ZooKeeper servers and remembers what it wrote.

#[derive(Clone, PartialEq, Eq)]
enum Op {
    Create {
        path: String,
        data: Vec<u8>,
        ephemeral: bool,
    },
    SetData {
        path: String,
        data: Vec<u8>,
    },
    Delete {
        path: String,
    },
}

impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = |d: &[u8]| format!("{:?}", String::from_utf8_lossy(d));
        match self {
            Op::Create {
                path,
                data,
                ephemeral,
            } => write!(
                f,
                "create{} {path} {}",
                if *ephemeral { " ephemeral" } else { "" },
                text(data)
            ),
            Op::SetData { path, data } => write!(f, "setData {path} {}", text(data)),
            Op::Delete { path } => write!(f, "delete {path}"),
        }
    }
}

#[derive(Debug, Clone)]
struct Wrote {
    op: Op,
    /// From the reply's Stat (czxid / mzxid); None for a delete.
    zxid: Option<i64>,
}

struct Writer {
    rt: tokio::runtime::Runtime,
    client: Option<zk::Client>,
    session: i64,
    wrote: Vec<Wrote>,
}

fn open_acl() -> zk::Acls<'static> {
    zk::Acls::anyone_all()
}

impl Writer {
    fn connect(connect_string: &str) -> Writer {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let cs = connect_string.to_string();
        let client = rt.block_on(async move {
            let fut = zk::Client::connector()
                .with_session_timeout(Duration::from_secs(10))
                .with_connection_timeout(Duration::from_secs(5))
                .connect(&cs);
            match tokio::time::timeout(Duration::from_secs(15), fut).await {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => panic!("client could not connect to {cs}: {e}"),
                Err(_) => panic!("client connect to {cs} timed out"),
            }
        });
        let session = client.session_id().0;
        Writer {
            rt,
            client: Some(client),
            session,
            wrote: Vec::new(),
        }
    }

    fn client(&self) -> &zk::Client {
        self.client.as_ref().unwrap()
    }

    fn run<T, E: std::fmt::Display>(
        &self,
        what: &str,
        fut: impl std::future::Future<Output = Result<T, E>>,
    ) -> T {
        match self
            .rt
            .block_on(async { tokio::time::timeout(Duration::from_secs(15), fut).await })
        {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => panic!("client {what} failed: {e}"),
            Err(_) => panic!("client {what} did not complete in 15 s (no quorum?)"),
        }
    }

    /// Creates `path`; returns the created path (sequential names get their suffix).
    fn create(&mut self, path: &str, data: &[u8], mode: zk::CreateMode) -> String {
        let opts = mode.with_acls(open_acl());
        let (stat, seq) = self.run(
            &format!("create {path}"),
            self.client().create(path, data, &opts),
        );
        let actual = if seq.into_i64() >= 0 {
            format!("{path}{seq}")
        } else {
            path.to_string()
        };
        self.wrote.push(Wrote {
            op: Op::Create {
                path: actual.clone(),
                data: data.to_vec(),
                ephemeral: matches!(
                    mode,
                    zk::CreateMode::Ephemeral | zk::CreateMode::EphemeralSequential
                ),
            },
            zxid: Some(stat.czxid),
        });
        actual
    }

    /// A create that may fail (or not answer within `within`); not recorded.
    fn try_create(&self, path: &str, within: Duration) -> Result<i64, String> {
        let opts = zk::CreateMode::Persistent.with_acls(open_acl());
        let fut = self.client().create(path, b"", &opts);
        match self
            .rt
            .block_on(async { tokio::time::timeout(within, fut).await })
        {
            Ok(Ok((stat, _))) => Ok(stat.czxid),
            Ok(Err(e)) => Err(format!("error: {e}")),
            Err(_) => Err(format!("no answer in {within:?}")),
        }
    }

    fn set_data(&mut self, path: &str, data: &[u8]) {
        let stat = self.run(
            &format!("setData {path}"),
            self.client().set_data(path, data, None),
        );
        self.wrote.push(Wrote {
            op: Op::SetData {
                path: path.into(),
                data: data.to_vec(),
            },
            zxid: Some(stat.mzxid),
        });
    }

    fn delete(&mut self, path: &str) {
        self.run(&format!("delete {path}"), self.client().delete(path, None));
        self.wrote.push(Wrote {
            op: Op::Delete { path: path.into() },
            zxid: None,
        });
    }

    fn last_zxid(&self) -> i64 {
        self.wrote.iter().filter_map(|w| w.zxid).max().unwrap_or(0)
    }

    /// The standard batch of writes under `root`: every txn kind a client makes.
    fn write_batch(&mut self, root: &str, tag: &str) {
        self.create(
            &format!("{root}/p-{tag}"),
            format!("persistent {tag}").as_bytes(),
            zk::CreateMode::Persistent,
        );
        self.set_data(
            &format!("{root}/p-{tag}"),
            format!("changed {tag} \u{2713}").as_bytes(),
        );
        self.create(
            &format!("{root}/e-{tag}"),
            b"ephemeral",
            zk::CreateMode::Ephemeral,
        );
        self.create(
            &format!("{root}/s-{tag}-"),
            b"",
            zk::CreateMode::PersistentSequential,
        );
        self.create(
            &format!("{root}/gone-{tag}"),
            &[0u8, 1, 2, 255],
            zk::CreateMode::Persistent,
        );
        self.delete(&format!("{root}/gone-{tag}"));
        // A marker last, so its zxid bounds the batch.
        self.create(
            &format!("{root}/done-{tag}"),
            tag.as_bytes(),
            zk::CreateMode::Persistent,
        );
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Dropping the client closes its session; give it a moment on its runtime.
        if let Some(c) = self.client.take() {
            self.rt.block_on(async move {
                drop(c);
                tokio::time::sleep(Duration::from_millis(100)).await;
            });
        }
    }
}

// ---------------------------------------------------------------------------------
// Checks on what the corral peer committed.

/// What a committed txn is, in the client's terms (None: not a client write).
fn as_op(c: &CommittedTxn) -> Option<Op> {
    match &c.txn {
        Txn::Create {
            path,
            data,
            ephemeral_owner,
            ..
        } => Some(Op::Create {
            path: path.clone(),
            data: data.to_vec(),
            ephemeral: *ephemeral_owner == c.hdr.client_id && *ephemeral_owner != 0,
        }),
        Txn::SetData { path, data, .. } => Some(Op::SetData {
            path: path.clone(),
            data: data.to_vec(),
        }),
        Txn::Delete { path } => Some(Op::Delete { path: path.clone() }),
        _ => None,
    }
}

/// The client's writes after index `from` must be, in order, exactly the session's
/// committed client txns with a zxid above `after`, each at the zxid the client saw.
fn check_writes_arrived(o: &Observed, w: &Writer, from: usize, after: i64) -> Vec<String> {
    let got: Vec<(i64, Op)> = o
        .committed
        .iter()
        .filter(|c| c.hdr.client_id == w.session && c.zxid > after)
        .filter_map(|c| as_op(c).map(|op| (c.zxid, op)))
        .collect();
    let want = &w.wrote[from..];
    let mut lines = Vec::new();
    assert_eq!(
        got.len(),
        want.len(),
        "session {:#x}: the client made {} writes after {after:#x}, corral committed {}:\n got {got:#?}\n want {want:#?}",
        w.session,
        want.len(),
        got.len()
    );
    for ((zxid, op), exp) in got.iter().zip(want) {
        assert_eq!(
            op, &exp.op,
            "committed txn {zxid:#x} differs from the client's write"
        );
        if let Some(z) = exp.zxid {
            assert_eq!(
                *zxid, z,
                "{op:?}: client saw zxid {z:#x}, corral committed it at {zxid:#x}"
            );
        }
        lines.push(format!("  {zxid:#x} {op:?}"));
    }
    lines
}

/// Committed zxids follow `base` one by one (a new epoch restarts at counter 1).
fn check_no_holes(committed: &[CommittedTxn], base: i64) {
    let mut prev = base;
    for c in committed {
        let z = c.zxid;
        let follows = z == prev + 1 || (z >> 32 > prev >> 32 && z & 0xffff_ffff == 1);
        assert!(
            follows,
            "committed zxids have a hole or go back: {z:#x} after {prev:#x}; all: {:?}",
            committed
                .iter()
                .map(|c| format!("{:#x}", c.zxid))
                .collect::<Vec<_>>()
        );
        prev = z;
    }
}

/// Our digest after each txn against ZooKeeper's TxnDigest. Returns mismatches.
fn digest_mismatches(committed: &[CommittedTxn]) -> Vec<String> {
    committed
        .iter()
        .filter(|c| c.digest_expected.is_some_and(|d| d != c.digest_ours))
        .map(|c| {
            format!(
                "{:#x} {}: ZooKeeper digest {:#x}, ours {:#x} (apply: {})",
                c.zxid,
                show_txn(&c.txn),
                c.digest_expected.unwrap(),
                c.digest_ours,
                c.result
            )
        })
        .collect()
}

fn apply_errors(committed: &[CommittedTxn]) -> Vec<String> {
    committed
        .iter()
        .filter(|c| c.result.starts_with("Error") && !matches!(c.txn, Txn::Error(_)))
        .map(|c| format!("{:#x} {} -> {}", c.zxid, show_txn(&c.txn), c.result))
        .collect()
}

fn is_learner_key(k: &str) -> bool {
    k.starts_with("zk_synced_")
        || matches!(
            k,
            "zk_server_state"
                | "zk_learners"
                | "zk_followers"
                | "zk_observers"
                | "zk_pending_syncs"
        )
}

/// Waits until ZooKeeper `sid`'s mntr shows `key` = `want`; returns the learner lines.
fn wait_mntr(ens: &Ensemble, sid: Sid, key: &str, want: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let m = ens.zk(sid).mntr();
        let shown = m
            .iter()
            .filter(|(k, _)| is_learner_key(k))
            .map(|(k, v)| format!("{k}\t{v}"))
            .collect::<Vec<_>>()
            .join("\n");
        if m.get(key).map(String::as_str) == Some(want) {
            return shown;
        }
        if Instant::now() > deadline {
            panic!("ZooKeeper {sid} mntr: {key} never became {want} in {within:?}; mntr shows:\n{shown}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn packet_names(ps: &[(i32, i64)]) -> String {
    ps.iter()
        .map(|(t, z)| format!("{}({z:#x})", wire::packet_type_name(*t)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The first `n` packets each way, for the report.
fn handshake(o: &Observed, n: usize) -> String {
    format!(
        "  in : {}\n  out: {}",
        packet_names(&o.packets_in[..o.packets_in.len().min(n)]),
        packet_names(&o.packets_out[..o.packets_out.len().min(n)])
    )
}

/// Lines of ZooKeeper `zk`'s log about learner `sid` (and the leader's side of syncs).
fn learner_log(ens: &Ensemble, zk: Sid, sid: Sid) -> Vec<String> {
    let needles = [
        format!("sid: {sid} "),
        format!("sid:{sid}"),
        format!("sid: {sid}"),
        format!("n.sid:{sid},"),
        format!("from {sid}"),
        format!("myid={sid}"),
    ];
    ens.zk(zk)
        .log_lines()
        .into_iter()
        .filter(|l| {
            needles.iter().any(|n| l.contains(n.as_str()))
                || l.contains("NEWLEADER")
                || l.contains("Sending snapshot")
                || l.contains("Sending DIFF")
                || l.contains("Sending TRUNC")
                || l.contains("WARN")
                || l.contains("ERROR")
        })
        .collect()
}

/// Stays idle for three times the sync timeout (syncLimit * tickTime): only PINGs flow,
/// and the ZooKeeper leader must keep counting corral `sid` as synced throughout, which
/// it does only if corral answers its PINGs (`LearnerHandler.synced`).
fn idle_and_check(
    ens: &Ensemble,
    sid: Sid,
    leader: Sid,
    key: &str,
    want: &str,
    state: ServerState,
) {
    let idle = Duration::from_millis((3 * zk_quorum::SYNC_LIMIT * zk_quorum::TICK_MS) as u64);
    let (roles_before, pings_before) = ens
        .corral(sid)
        .with(|o| (o.roles.len(), (o.pings_in, o.pings_out)));
    let until = Instant::now() + idle;
    while Instant::now() < until {
        let m = ens.zk(leader).mntr();
        assert_eq!(
            m.get(key).map(String::as_str),
            Some(want),
            "while idle, ZooKeeper {leader} stopped counting corral {sid} ({key} = {:?})",
            m.get(key)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (roles, pings, serving) = ens.corral(sid).with(|o| {
        (
            o.roles[roles_before..].to_vec(),
            (o.pings_in, o.pings_out),
            o.serving_as(state).is_some(),
        )
    });
    assert!(
        roles.is_empty() && serving,
        "corral {sid} changed role while idle: {roles:?}"
    );
    assert!(
        pings.0 > pings_before.0 && pings.1 > pings_before.1,
        "no PINGs exchanged while idle: {pings_before:?} -> {pings:?}"
    );
    ens.note(format!(
        "idle {idle:?}: corral {sid} still {state:?}, PINGs in/out {:?} -> {:?}, leader's {key} stayed {want}",
        pings_before, pings
    ));
}

/// For each zxid, corral's ACK left before the leader's COMMIT arrived.
fn check_ack_before_commit(o: &Observed, zxids: &[i64]) -> Vec<String> {
    zxids
        .iter()
        .map(|z| {
            let ack = o.wire.iter().position(|&(out, t, x)| out && t == wire::ACK && x == *z);
            let commit = o.wire.iter().position(|&(out, t, x)| !out && t == wire::COMMIT && x == *z);
            let prop = o.wire.iter().position(|&(out, t, x)| !out && t == wire::PROPOSAL && x == *z);
            match (prop, ack, commit) {
                (Some(p), Some(a), Some(c)) if p < a && a < c => {
                    format!("  {z:#x}: <-PROPOSAL #{p}  ->ACK #{a}  <-COMMIT #{c}")
                }
                other => panic!("{z:#x}: PROPOSAL/ACK/COMMIT positions {other:?}, expected PROPOSAL < ACK < COMMIT"),
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------
// Forming the ensemble.

const ROOT: &str = "/oracle";

/// ZK 1 and 2 up with a leader, a client that wrote `ROOT` and a first batch, then the
/// corral voter 3 joined and serving as a follower. Returns the ZooKeeper leader.
fn form_with_corral_follower(ens: &mut Ensemble, w_out: &mut Option<Writer>) -> Sid {
    ens.start_zookeepers(&[1, 2]);
    let leader = ens
        .zk_leader(Duration::from_secs(20))
        .expect("ZooKeeper 1 and 2 elected no leader");
    ens.note(format!("ZooKeeper leader before corral joins: {leader}"));
    let mut w = Writer::connect(&ens.connect_string(&[1, 2]));
    ens.note(format!("client session {:#x}", w.session));
    w.create(ROOT, b"root of the oracle", zk::CreateMode::Persistent);
    w.write_batch(ROOT, "before");
    ens.note(format!(
        "wrote {} txns before corral joined, last zxid {:#x}",
        w.wrote.len(),
        w.last_zxid()
    ));

    let t = Instant::now();
    ens.start_corral(3);
    ens.wait_corral(3, Duration::from_secs(30), "FOLLOWING and serving", |o| {
        o.serving_as(ServerState::Following).is_some()
    });
    let role = ens.corral(3).with(|o| o.last_role().unwrap());
    ens.note(format!(
        "corral 3 serving as follower of {:?}, epoch {}, {} ms after start",
        role.leader,
        role.epoch,
        t.elapsed().as_millis()
    ));
    assert_eq!(
        role.leader,
        Some(leader),
        "corral follows a different leader than ZooKeeper's srvr shows"
    );
    *w_out = Some(w);
    leader
}

/// What every sync must show: the handshake in ZooKeeper's order, and the snapshot
/// holding what was written before.
fn check_sync(ens: &Ensemble, w: &Writer, before: usize) {
    let (modes, hs, snaps, tree_ok, problems) = ens.corral(3).with(|o| {
        let tree_ok = o.tree.as_ref().map(|t| {
            w.wrote[..before]
                .iter()
                .filter_map(|x| match &x.op {
                    Op::Create { path, .. } => Some(path.clone()),
                    _ => None,
                })
                .map(|p| (p.clone(), t.exists(&p)))
                .collect::<Vec<_>>()
        });
        (
            o.sync_modes.clone(),
            handshake(o, 8),
            o.snaps.clone(),
            tree_ok,
            o.problems.clone(),
        )
    });
    ens.note(format!(
        "sync modes {modes:?}; snapshots {snaps:?}\nhandshake:\n{hs}"
    ));
    assert!(problems.is_empty(), "runtime problems: {problems:?}");
    let out = ens.corral(3).with(|o| o.packets_out.clone());
    let types: Vec<i32> = out.iter().map(|p| p.0).collect();
    assert_eq!(
        &types[..3.min(types.len())],
        &[wire::FOLLOWERINFO, wire::ACKEPOCH, wire::ACK],
        "our first packets: {}",
        packet_names(&out)
    );
    if let Some(tree) = tree_ok {
        // Created-then-deleted nodes are gone by the snapshot; the rest are there.
        let gone: Vec<String> = w.wrote[..before]
            .iter()
            .filter_map(|x| match &x.op {
                Op::Delete { path } => Some(path.clone()),
                _ => None,
            })
            .collect();
        for (p, exists) in tree {
            if gone.contains(&p) {
                assert!(
                    !exists,
                    "{p} was deleted before the sync but our tree has it"
                );
            } else {
                assert!(
                    exists,
                    "{p} was written before the sync but our synced tree lacks it"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// The tests.

#[test]
fn corral_follows_a_zookeeper_leader() {
    if skip_without_zookeeper("corral_follows_a_zookeeper_leader") {
        return;
    }
    let _serial = zk_quorum::serial();
    let started = Instant::now();
    let mut ens = Ensemble::new(&[
        (1, Kind::ZooKeeper, LearnerType::Participant),
        (2, Kind::ZooKeeper, LearnerType::Participant),
        (3, Kind::Corral, LearnerType::Participant),
    ]);
    let mut w = None;
    let leader = form_with_corral_follower(&mut ens, &mut w);
    let mut w = w.unwrap();
    let before = w.wrote.len();
    check_sync(&ens, &w, before);

    // Writes after the sync reach corral as PROPOSAL + COMMIT.
    let after_from = w.wrote.len();
    let base = ens
        .corral(3)
        .with(|o| o.snaps.last().map(|s| s.zxid).unwrap_or(0));
    w.write_batch(ROOT, "after");
    for i in 0..20 {
        w.create(
            &format!("{ROOT}/n{i:02}"),
            format!("value {i}").as_bytes(),
            zk::CreateMode::Persistent,
        );
    }
    let last = w.last_zxid();
    ens.wait_corral(
        3,
        Duration::from_secs(15),
        "the last write committed",
        |o| o.last_committed().is_some_and(|z| z >= last),
    );
    let (lines, committed, o_summary) = ens.corral(3).with(|o| {
        let lines = check_writes_arrived(o, &w, after_from, base);
        (
            lines,
            o.committed.clone(),
            format!(
                "{} committed, pings in/out {}/{}, {} ACKs sent",
                o.committed.len(),
                o.pings_in,
                o.pings_out,
                o.packets_out.iter().filter(|p| p.0 == wire::ACK).count()
            ),
        )
    });
    check_no_holes(&committed, base);
    ens.note(format!(
        "client writes as corral committed them:\n{}",
        lines.join("\n")
    ));
    ens.note(o_summary);

    // ZooKeeper's view: corral is a synced follower of the leader.
    let mntr = wait_mntr(
        &ens,
        leader,
        "zk_synced_followers",
        "2",
        Duration::from_secs(5),
    );
    ens.note(format!("leader {leader} mntr:\n{mntr}"));
    idle_and_check(
        &ens,
        3,
        leader,
        "zk_synced_followers",
        "2",
        ServerState::Following,
    );
    ens.note(format!(
        "leader {leader} log about learner 3:\n{}",
        learner_log(&ens, leader, 3).join("\n")
    ));

    let bad = digest_mismatches(&committed);
    let errs = apply_errors(&committed);
    ens.note(format!(
        "digest mismatches: {bad:#?}\napply errors: {errs:#?}"
    ));
    assert!(
        errs.is_empty(),
        "txns that did not apply to our synced tree: {errs:#?}"
    );
    assert!(
        bad.is_empty(),
        "our tree digest differs from ZooKeeper's TxnDigest: {bad:#?}"
    );
    let problems = ens.corral(3).with(|o| o.problems.clone());
    assert!(problems.is_empty(), "runtime problems: {problems:?}");
    assert!(
        started.elapsed() < TEST_BUDGET,
        "took {:?}",
        started.elapsed()
    );
    eprintln!(
        "corral_follows_a_zookeeper_leader passed in {:?}",
        started.elapsed()
    );
}

#[test]
fn a_zookeeper_quorum_commits_with_corral_as_the_needed_vote() {
    if skip_without_zookeeper("a_zookeeper_quorum_commits_with_corral_as_the_needed_vote") {
        return;
    }
    let _serial = zk_quorum::serial();
    let started = Instant::now();
    let mut ens = Ensemble::new(&[
        (1, Kind::ZooKeeper, LearnerType::Participant),
        (2, Kind::ZooKeeper, LearnerType::Participant),
        (3, Kind::Corral, LearnerType::Participant),
    ]);
    let mut w = None;
    let leader = form_with_corral_follower(&mut ens, &mut w);
    drop(w); // its session lives on the ensemble; a new one writes through the leader.
    let follower = if leader == 1 { 2 } else { 1 };
    wait_mntr(
        &ens,
        leader,
        "zk_synced_followers",
        "2",
        Duration::from_secs(5),
    );

    // Stop the Java follower: the leader's quorum is now itself and corral.
    ens.kill_zookeeper(follower);
    let acks_before = ens
        .corral(3)
        .with(|o| o.packets_out.iter().filter(|p| p.0 == wire::ACK).count());
    let mut w = Writer::connect(&ens.connect_string(&[leader]));
    let from = w.wrote.len();
    let base = ens.corral(3).with(|o| o.last_committed().unwrap_or(0));
    let t = Instant::now();
    w.write_batch(ROOT, "twoofthree");
    for i in 0..10 {
        w.create(
            &format!("{ROOT}/q{i:02}"),
            format!("needs corral {i}").as_bytes(),
            zk::CreateMode::Persistent,
        );
    }
    ens.note(format!(
        "{} writes committed by ZooKeeper {leader} with {follower} down, in {} ms",
        w.wrote.len() - from,
        t.elapsed().as_millis()
    ));
    let last = w.last_zxid();
    ens.wait_corral(
        3,
        Duration::from_secs(10),
        "the writes committed on corral",
        |o| o.last_committed().is_some_and(|z| z >= last),
    );
    let zxids: Vec<i64> = w.wrote[from..].iter().filter_map(|x| x.zxid).collect();
    let (lines, order, acked) = ens.corral(3).with(|o| {
        let acked = o
            .packets_out
            .iter()
            .filter(|p| p.0 == wire::ACK && p.1 > base)
            .count();
        (
            check_writes_arrived(o, &w, from, base),
            check_ack_before_commit(o, &zxids),
            acked,
        )
    });
    ens.note(format!(
        "committed with corral's vote:\n{}",
        lines.join("\n")
    ));
    // With only the leader and corral, nothing commits without corral's ACK: each
    // COMMIT came after our ACK of that zxid.
    ens.note(format!(
        "corral sent {acked} ACKs after the follower died (ACKs before: {acks_before}); wire order:\n{}",
        order.join("\n")
    ));
    assert_eq!(
        ens.zk(leader).mode().as_deref(),
        Some("leader"),
        "ZooKeeper {leader} stopped leading with corral as its only follower"
    );
    let mntr = wait_mntr(
        &ens,
        leader,
        "zk_synced_followers",
        "1",
        Duration::from_secs(5),
    );
    ens.note(format!(
        "leader {leader} mntr with {follower} down:\n{mntr}"
    ));

    // Idle: the two-member quorum lives on corral's PING replies alone; then it commits
    // again.
    idle_and_check(
        &ens,
        3,
        leader,
        "zk_synced_followers",
        "1",
        ServerState::Following,
    );
    let from2 = w.wrote.len();
    w.write_batch(ROOT, "afteridle");
    let last = w.last_zxid();
    ens.wait_corral(
        3,
        Duration::from_secs(10),
        "writes after the idle period committed",
        |o| o.last_committed().is_some_and(|z| z >= last),
    );
    let base2 = w.wrote[from2 - 1].zxid.unwrap_or(base);
    ens.corral(3)
        .with(|o| check_writes_arrived(o, &w, from2, base2));
    let (committed, snap_base) = ens.corral(3).with(|o| {
        (
            o.committed.clone(),
            o.snaps.last().map(|s| s.zxid).unwrap_or(0),
        )
    });
    check_no_holes(&committed, snap_base);

    let problems = ens.corral(3).with(|o| o.problems.clone());
    assert!(problems.is_empty(), "runtime problems: {problems:?}");

    // The control: without corral the leader has no quorum, so a write cannot commit
    // and the leader gives up leading.
    let mark = ens.zk(leader).log_lines().len();
    ens.stop_corral(3);
    let t = Instant::now();
    let r = w.try_create(&format!("{ROOT}/without-corral"), Duration::from_secs(4));
    ens.note(format!(
        "write with corral stopped: {r:?} after {} ms",
        t.elapsed().as_millis()
    ));
    assert!(r.is_err(), "a write committed with only 1 of 3 voters up");
    let deadline = Instant::now() + Duration::from_secs(10);
    while ens.zk(leader).mode().as_deref() == Some("leader") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let mode = ens.zk(leader).mode();
    ens.note(format!(
        "ZooKeeper {leader} without corral: srvr mode {mode:?}"
    ));
    assert_ne!(
        mode.as_deref(),
        Some("leader"),
        "ZooKeeper {leader} kept leading alone"
    );
    let lost: Vec<String> = ens.zk(leader).log_lines()[mark..]
        .iter()
        .filter(|l| {
            l.contains("Shutdown called")
                || l.contains("Not sufficient")
                || l.contains("PeerState set to LOOKING")
                || l.contains("GOODBYE")
        })
        .take(12)
        .cloned()
        .collect();
    ens.note(format!(
        "ZooKeeper {leader} log on losing corral:\n{}",
        lost.join("\n")
    ));

    let bad = digest_mismatches(&committed);
    assert!(
        bad.is_empty(),
        "our tree digest differs from ZooKeeper's TxnDigest: {bad:#?}"
    );
    assert!(
        started.elapsed() < TEST_BUDGET,
        "took {:?}",
        started.elapsed()
    );
    eprintln!(
        "a_zookeeper_quorum_commits_with_corral_as_the_needed_vote passed in {:?}",
        started.elapsed()
    );
}

#[test]
fn corral_observes_a_zookeeper_ensemble() {
    if skip_without_zookeeper("corral_observes_a_zookeeper_ensemble") {
        return;
    }
    let _serial = zk_quorum::serial();
    let started = Instant::now();
    // Voters 1 and 2 (ZooKeeper) are a quorum of three; voter 3 is configured but never
    // runs, so the observer is the only corral member.
    let mut ens = Ensemble::new(&[
        (1, Kind::ZooKeeper, LearnerType::Participant),
        (2, Kind::ZooKeeper, LearnerType::Participant),
        (3, Kind::Absent, LearnerType::Participant),
        (4, Kind::Corral, LearnerType::Observer),
    ]);
    ens.start_zookeepers(&[1, 2]);
    let leader = ens
        .zk_leader(Duration::from_secs(20))
        .expect("no ZooKeeper leader");
    let mut w = Writer::connect(&ens.connect_string(&[1, 2]));
    w.create(ROOT, b"observed", zk::CreateMode::Persistent);
    w.write_batch(ROOT, "before");
    ens.start_corral(4);
    ens.wait_corral(4, Duration::from_secs(30), "OBSERVING and serving", |o| {
        o.serving_as(ServerState::Observing).is_some()
    });
    let role = ens.corral(4).with(|o| o.last_role().unwrap());
    ens.note(format!(
        "corral 4 observes leader {:?} (srvr: {leader}), epoch {}",
        role.leader, role.epoch
    ));
    assert_eq!(role.leader, Some(leader));
    let (hs, modes) = ens
        .corral(4)
        .with(|o| (handshake(o, 8), o.sync_modes.clone()));
    ens.note(format!("observer sync {modes:?}\nhandshake:\n{hs}"));
    let first_out = ens.corral(4).with(|o| o.packets_out.first().copied());
    assert_eq!(first_out.map(|p| p.0), Some(wire::OBSERVERINFO));

    let from = w.wrote.len();
    let base = ens
        .corral(4)
        .with(|o| o.snaps.last().map(|s| s.zxid).unwrap_or(0));
    w.write_batch(ROOT, "after");
    let last = w.last_zxid();
    ens.wait_corral(
        4,
        Duration::from_secs(10),
        "the INFORMed writes applied",
        |o| o.last_committed().is_some_and(|z| z >= last),
    );
    let (lines, informs, proposals, acks, committed) = ens.corral(4).with(|o| {
        (
            check_writes_arrived(o, &w, from, base),
            o.packets_in
                .iter()
                .filter(|p| p.0 == wire::INFORM && p.1 > base)
                .count(),
            o.packets_in
                .iter()
                .filter(|p| p.0 == wire::PROPOSAL && p.1 > base)
                .count(),
            o.packets_out
                .iter()
                .filter(|p| p.0 == wire::ACK && p.1 & 0xffff_ffff != 0)
                .count(),
            o.committed.clone(),
        )
    });
    ens.note(format!(
        "observer got {informs} INFORMs, {proposals} PROPOSALs, sent {acks} proposal ACKs:\n{}",
        lines.join("\n")
    ));
    assert!(informs >= w.wrote.len() - from, "fewer INFORMs than writes");
    assert_eq!(proposals, 0, "an observer got PROPOSALs after its sync");
    assert_eq!(acks, 0, "an observer ACKed proposals");
    check_no_holes(&committed, base);
    let mntr = wait_mntr(
        &ens,
        leader,
        "zk_synced_observers",
        "1",
        Duration::from_secs(5),
    );
    ens.note(format!("leader {leader} mntr:\n{mntr}"));
    idle_and_check(
        &ens,
        4,
        leader,
        "zk_synced_observers",
        "1",
        ServerState::Observing,
    );
    ens.note(format!(
        "leader {leader} log about the observer:\n{}",
        learner_log(&ens, leader, 4).join("\n")
    ));
    let bad = digest_mismatches(&committed);
    assert!(
        bad.is_empty(),
        "our tree digest differs from ZooKeeper's TxnDigest: {bad:#?}"
    );
    let problems = ens.corral(4).with(|o| o.problems.clone());
    assert!(problems.is_empty(), "runtime problems: {problems:?}");
    assert!(
        started.elapsed() < TEST_BUDGET,
        "took {:?}",
        started.elapsed()
    );
    eprintln!(
        "corral_observes_a_zookeeper_ensemble passed in {:?}",
        started.elapsed()
    );
}

/// A restart: corral stops, the ensemble moves on, corral comes back with its log and
/// epochs and must be brought up to date by DIFF (PROPOSAL/COMMIT pairs in the sync).
#[test]
fn corral_rejoins_by_diff_after_a_restart() {
    if skip_without_zookeeper("corral_rejoins_by_diff_after_a_restart") {
        return;
    }
    let _serial = zk_quorum::serial();
    let started = Instant::now();
    let mut ens = Ensemble::new(&[
        (1, Kind::ZooKeeper, LearnerType::Participant),
        (2, Kind::ZooKeeper, LearnerType::Participant),
        (3, Kind::Corral, LearnerType::Participant),
    ]);
    let mut w = None;
    let leader = form_with_corral_follower(&mut ens, &mut w);
    let mut w = w.unwrap();
    w.write_batch(ROOT, "first");
    let last = w.last_zxid();
    ens.wait_corral(3, Duration::from_secs(10), "first batch committed", |o| {
        o.last_committed().is_some_and(|z| z >= last)
    });
    ens.stop_corral(3);
    let from = w.wrote.len();
    let base = last;
    w.write_batch(ROOT, "missed");
    ens.start_corral(3);
    ens.wait_corral(
        3,
        Duration::from_secs(30),
        "FOLLOWING and serving again",
        |o| o.serving_as(ServerState::Following).is_some(),
    );
    let (modes, hs, ins) = ens
        .corral(3)
        .with(|o| (o.sync_modes.clone(), handshake(o, 30), o.packets_in.clone()));
    ens.note(format!("rejoin sync modes {modes:?}\nhandshake:\n{hs}"));
    assert_eq!(
        modes.first().map(String::as_str),
        Some("DIFF"),
        "expected a DIFF sync on rejoin"
    );
    // The missed writes came inside the sync as PROPOSAL/COMMIT pairs.
    let nl = ins
        .iter()
        .position(|p| p.0 == wire::NEWLEADER)
        .expect("no NEWLEADER");
    let synced_props = ins[..nl].iter().filter(|p| p.0 == wire::PROPOSAL).count();
    assert!(
        synced_props >= w.wrote.len() - from,
        "DIFF carried {synced_props} proposals"
    );
    w.write_batch(ROOT, "back");
    let last = w.last_zxid();
    ens.wait_corral(
        3,
        Duration::from_secs(10),
        "writes after rejoin committed",
        |o| o.last_committed().is_some_and(|z| z >= last),
    );
    let (lines, committed) = ens
        .corral(3)
        .with(|o| (check_writes_arrived(o, &w, from, base), o.committed.clone()));
    ens.note(format!("after the rejoin:\n{}", lines.join("\n")));
    check_no_holes(&committed, base);
    wait_mntr(
        &ens,
        leader,
        "zk_synced_followers",
        "2",
        Duration::from_secs(5),
    );
    let bad = digest_mismatches(&committed);
    assert!(
        bad.is_empty(),
        "our tree digest differs from ZooKeeper's TxnDigest: {bad:#?}"
    );
    let problems = ens.corral(3).with(|o| o.problems.clone());
    assert!(problems.is_empty(), "runtime problems: {problems:?}");
    assert!(
        started.elapsed() < TEST_BUDGET,
        "took {:?}",
        started.elapsed()
    );
    eprintln!(
        "corral_rejoins_by_diff_after_a_restart passed in {:?}",
        started.elapsed()
    );
}

/// Reads `path` through a client of ZooKeeper at `connect`: (data, mzxid).
fn read_back(w: &Writer, path: &str) -> (Vec<u8>, i64) {
    let (data, stat) = w.run(&format!("getData {path}"), w.client().get_data(path));
    (data, stat.mzxid)
}

/// The other direction: when the ZooKeeper leader dies, the surviving ZooKeeper and
/// corral elect corral (same epoch and zxid, larger sid), and corral's Leader must
/// establish a new epoch with a Java follower, take its forwarded writes (REQUEST,
/// prepped here with corral's Prepper), and a fresh Java server must sync from it.
/// The Java followers check corral's TxnDigest on every txn they apply.
#[test]
fn zookeeper_follows_corral_when_corral_is_elected() {
    if skip_without_zookeeper("zookeeper_follows_corral_when_corral_is_elected") {
        return;
    }
    let _serial = zk_quorum::serial();
    let started = Instant::now();
    let mut ens = Ensemble::new(&[
        (1, Kind::ZooKeeper, LearnerType::Participant),
        (2, Kind::ZooKeeper, LearnerType::Participant),
        (3, Kind::Corral, LearnerType::Participant),
    ]);
    let mut w = None;
    let zk_leader = form_with_corral_follower(&mut ens, &mut w);
    let w = w.unwrap();
    let survivor = if zk_leader == 1 { 2 } else { 1 };
    // Everything written so far, as corral applied it, for later reads.
    let before: Vec<(String, Vec<u8>)> = ens.corral(3).with(|o| {
        let t = o.tree.as_ref().unwrap();
        w.wrote
            .iter()
            .filter_map(|x| match &x.op {
                Op::Create {
                    path,
                    ephemeral: false,
                    ..
                }
                | Op::SetData { path, .. } => Some(path.clone()),
                _ => None,
            })
            .filter_map(|p| t.get(&p).map(|n| (p.clone(), n.data().to_vec())))
            .collect()
    });
    drop(w);

    ens.kill_zookeeper(zk_leader);
    ens.wait_corral(3, Duration::from_secs(30), "LEADING and established", |o| {
        o.serving_as(ServerState::Leading).is_some()
    });
    let role = ens.corral(3).with(|o| o.last_role().unwrap());
    ens.note(format!(
        "corral 3 leads epoch {}; roles {:?}",
        role.epoch,
        ens.corral(3).with(|o| o.roles.clone())
    ));
    let deadline = Instant::now() + Duration::from_secs(10);
    while ens.zk(survivor).mode().as_deref() != Some("follower") {
        assert!(
            Instant::now() < deadline,
            "ZooKeeper {survivor} never served as corral's follower: {:?}",
            ens.zk(survivor).mode()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let hs = ens.corral(3).with(|o| {
        let start = o
            .wire
            .iter()
            .rposition(|p| !p.0 && p.1 == wire::FOLLOWERINFO)
            .unwrap_or(0);
        o.wire[start..]
            .iter()
            .take(12)
            .map(|(out, t, z)| {
                format!(
                    "{}{}({z:#x})",
                    if *out { "->" } else { "<-" },
                    wire::packet_type_name(*t)
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    });
    ens.note(format!(
        "ZooKeeper {survivor} follows corral; leader-side handshake: {hs}"
    ));

    // Writes through the Java follower, forwarded to corral.
    let mut w = Writer::connect(&ens.connect_string(&[survivor]));
    ens.note(format!(
        "client session {:#x} created through corral",
        w.session
    ));
    w.write_batch(ROOT, "corralleads");
    for (p, data) in &before {
        let (got, _) = read_back(&w, p);
        assert_eq!(
            &got, data,
            "{p} read through ZooKeeper {survivor} after the new epoch"
        );
    }
    let (got, mzxid) = read_back(&w, &format!("{ROOT}/p-corralleads"));
    assert_eq!(got, "changed corralleads \u{2713}".as_bytes());
    assert_eq!(
        mzxid >> 32,
        role.epoch,
        "the write's zxid is not of corral's epoch"
    );
    ens.note(format!(
        "writes through ZooKeeper {survivor} committed by corral, last zxid {:#x}",
        w.last_zxid()
    ));

    // A fresh Java server (empty data dir) syncs from corral.
    ens.start_zookeepers(&[zk_leader]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while ens.zk(zk_leader).mode().as_deref() != Some("follower") {
        assert!(
            Instant::now() < deadline,
            "fresh ZooKeeper {zk_leader} never followed corral: {:?}",
            ens.zk(zk_leader).mode()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let sync_line: Vec<String> = ens
        .zk(zk_leader)
        .log_lines()
        .into_iter()
        .filter(|l| l.contains("Getting a") || l.contains("from leader") || l.contains("snapshot"))
        .take(6)
        .collect();
    ens.note(format!(
        "fresh ZooKeeper {zk_leader} synced from corral:\n{}",
        sync_line.join("\n")
    ));
    let w2 = Writer::connect(&ens.connect_string(&[zk_leader]));
    for (p, data) in before.iter().chain(
        [(
            format!("{ROOT}/p-corralleads"),
            "changed corralleads \u{2713}".as_bytes().to_vec(),
        )]
        .iter(),
    ) {
        let (got, _) = read_back(&w2, p);
        assert_eq!(
            &got, data,
            "{p} read through the fresh ZooKeeper {zk_leader}"
        );
    }
    let mut w2 = w2;
    w2.write_batch(ROOT, "threeway");
    let (got, _) = read_back(&w, &format!("{ROOT}/done-threeway"));
    assert_eq!(got, b"threeway");

    // The Java followers' own check of corral's digests.
    for sid in [survivor, zk_leader] {
        let m = ens.zk(sid).mntr();
        let mismatches = ens.zk(sid).log_grep("digest mismatch");
        ens.note(format!(
            "ZooKeeper {sid}: zk_digest_mismatches_count {:?}, zk_znode_count {:?}, log: {mismatches:?}",
            m.get("zk_digest_mismatches_count"),
            m.get("zk_znode_count")
        ));
        assert!(
            mismatches.is_empty(),
            "ZooKeeper {sid} found corral's digests wrong: {mismatches:#?}"
        );
        assert_eq!(
            m.get("zk_digest_mismatches_count").map(String::as_str),
            Some("0")
        );
    }
    let problems = ens.corral(3).with(|o| o.problems.clone());
    assert!(problems.is_empty(), "runtime problems: {problems:?}");
    assert!(
        started.elapsed() < TEST_BUDGET,
        "took {:?}",
        started.elapsed()
    );
    eprintln!(
        "zookeeper_follows_corral_when_corral_is_elected passed in {:?}",
        started.elapsed()
    );
}
