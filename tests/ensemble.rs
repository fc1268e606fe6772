//! Ensemble tests: loopback ensembles of `corral server` processes (the harness is
//! `tests/common/ensemble.rs`), driven by the `zookeeper-client` crate: election and
//! replication, observers, repeated kill -9 of the leader under a writer load, an
//! isolated leader (user-space proxies on every quorum and election link), followers
//! catching up by DIFF and by SNAP, a whole-ensemble kill -9, and a session resumed at
//! a lagging follower after the leader expired it.
//!
//! `CORRAL_TEST_ZOOKEEPER=1` runs the same tests against Apache ZooKeeper 3.8 servers
//! (a check of the tests themselves). Tests in this file run one at a time (one
//! ensemble at a time). Knobs: `CORRAL_ENSEMBLE_CYCLES` (leader kills, default 3),
//! `CORRAL_ENSEMBLE_TICK` (tickTime ms, default 300), `CORRAL_ENSEMBLE_KEEP=1` (keep the
//! dirs and logs), `CORRAL_ENSEMBLE_LOG_LINES` (log lines printed on failure).
//! Run with `cargo test --test ensemble -- --nocapture` to see the timings.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::ensemble::{connect, serial, sid_list, try_connect, Ensemble, Mode, Notes, Opts};
use common::{anyone, within};
use zookeeper_client as zk;

/// How long an ensemble may take to elect and sync after a start or a restart.
const SETTLE: Duration = Duration::from_secs(60);
/// How long connecting to a member may take (it may not serve yet).
const CONNECT: Duration = Duration::from_secs(30);

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// A znode as read back: data, czxid, data version.
type Node = (Vec<u8>, i64, i32);

/// Every child of `parent` with its data (reads pipelined). `None` for `parent` missing.
async fn read_tree(c: &zk::Client, parent: &str) -> Option<BTreeMap<String, Node>> {
    let mut names = match c.list_children(parent).await {
        Ok(n) => n,
        Err(zk::Error::NoNode) => return None,
        Err(e) => panic!("list_children {parent}: {e}"),
    };
    names.sort();
    let paths: Vec<String> = names.iter().map(|n| format!("{parent}/{n}")).collect();
    let mut out = BTreeMap::new();
    for chunk in paths.chunks(500) {
        let futs: Vec<_> = chunk.iter().map(|p| c.get_data(p)).collect();
        for (p, f) in chunk.iter().zip(futs) {
            match f.await {
                Ok((data, stat)) => {
                    out.insert(p.clone(), (data, stat.czxid, stat.version));
                }
                Err(zk::Error::NoNode) => {}
                Err(e) => panic!("get_data {p}: {e}"),
            }
        }
    }
    Some(out)
}

/// Members `0..count` each hold exactly `want` under `parent` (read after a `sync`);
/// the ensemble fails the test with the difference otherwise.
async fn assert_members_hold(
    e: &Ensemble,
    count: usize,
    parent: &str,
    want: &BTreeMap<String, Node>,
    what: &str,
) {
    for i in 0..count {
        let got = read_tree_synced(e, i, parent).await;
        if &got != want {
            e.fail(format!(
                "server.{} {what}: {}",
                i + 1,
                tree_diff(&got, want)
            ));
        }
    }
}

/// `read_tree` through member `i` alone, after a `sync` (so it has everything committed
/// before the call).
async fn read_tree_synced(e: &Ensemble, i: usize, parent: &str) -> BTreeMap<String, Node> {
    let cs = e.connect_string_of(&[i]);
    let c = within(
        40,
        &format!("connect to server.{}", i + 1),
        connect(&cs, CONNECT),
    )
    .await;
    within(30, "sync", c.sync(parent))
        .await
        .unwrap_or_else(|err| panic!("sync {parent} on server.{}: {err}", i + 1));
    within(60, "read_tree", read_tree(&c, parent))
        .await
        .unwrap_or_else(|| panic!("{parent} is missing on server.{}", i + 1))
}

/// Creates `parent/{prefix}{k:05}` = `{prefix}{k}` for k in `range`, pipelined in chunks
/// of 100 through `c`; returns (path, czxid) in issue order. Every create must succeed.
async fn create_many(
    c: &zk::Client,
    parent: &str,
    prefix: &str,
    range: std::ops::Range<usize>,
) -> Vec<(String, i64)> {
    let opts = anyone();
    let paths: Vec<(String, String)> = range
        .map(|k| (format!("{parent}/{prefix}{k:05}"), format!("{prefix}{k}")))
        .collect();
    let mut out = Vec::with_capacity(paths.len());
    for chunk in paths.chunks(100) {
        let futs: Vec<_> = chunk
            .iter()
            .map(|(p, d)| c.create(p, d.as_bytes(), &opts))
            .collect();
        for ((p, _), f) in chunk.iter().zip(futs) {
            let (stat, _) = within(60, "a create", f)
                .await
                .unwrap_or_else(|err| panic!("create {p}: {err}"));
            out.push((p.clone(), stat.czxid));
        }
    }
    out
}

/// What `create_many` wrote, as `read_tree` returns it (czxid from the replies).
fn expected_of(created: &[(String, i64)]) -> BTreeMap<String, Node> {
    created
        .iter()
        .map(|(p, z)| {
            let name = p.rsplit('/').next().unwrap();
            let (prefix, k) = name.split_at(name.len() - 5);
            let data = format!("{prefix}{}", k.parse::<usize>().unwrap()).into_bytes();
            (p.clone(), (data, *z, 0))
        })
        .collect()
}

fn assert_increasing(what: &str, zxids: &[i64]) {
    for w in zxids.windows(2) {
        assert!(
            w[0] < w[1],
            "{what}: zxids not in issue order: {:#x} then {:#x}",
            w[0],
            w[1]
        );
    }
}

/// A short description of how two trees differ.
fn tree_diff(a: &BTreeMap<String, Node>, b: &BTreeMap<String, Node>) -> String {
    let only_a: Vec<_> = a.keys().filter(|k| !b.contains_key(*k)).take(5).collect();
    let only_b: Vec<_> = b.keys().filter(|k| !a.contains_key(*k)).take(5).collect();
    let differ: Vec<_> = a
        .iter()
        .filter(|(k, v)| b.get(*k).is_some_and(|w| w != *v))
        .map(|(k, v)| format!("{k}: {:?} vs {:?}", v, b[k]))
        .take(5)
        .collect();
    format!(
        "{} vs {} entries; only in first (up to 5): {only_a:?}; only in second: {only_b:?}; \
         different: {differ:?}",
        a.len(),
        b.len()
    )
}

fn mntr_num(m: &BTreeMap<String, String>, key: &str) -> Option<i64> {
    m.get(key).and_then(|v| v.parse().ok())
}

/// Waits until the leader's `mntr` shows `key` = `want`; returns the last mntr.
fn wait_mntr(
    e: &Ensemble,
    i: usize,
    key: &str,
    want: i64,
    within: Duration,
) -> BTreeMap<String, String> {
    let deadline = Instant::now() + within;
    loop {
        let m = e.mntr(i);
        if mntr_num(&m, key) == Some(want) {
            return m;
        }
        if Instant::now() > deadline {
            e.fail(format!(
                "server.{}'s mntr did not show {key} {want} within {within:?}; mntr:\n{}",
                i + 1,
                m.iter()
                    .map(|(k, v)| format!("{k}\t{v}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn median(v: &[Duration]) -> Duration {
    let mut s = v.to_vec();
    s.sort();
    if s.is_empty() {
        Duration::ZERO
    } else {
        s[s.len() / 2]
    }
}

// ---------------------------------------------------------------------------------
// a. Election and replication.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_voters_elect_and_replicate() {
    let _serial = serial().await;
    let started = Instant::now();
    let mut e = Ensemble::launch(Opts::voters(3));
    let leader = e.wait_settled(SETTLE);
    let modes = e.modes();
    e.note(format!(
        "settled: leader server.{}, modes {modes:?}",
        leader + 1
    ));
    assert_eq!(
        modes.iter().filter(|m| **m == Mode::Leader).count(),
        1,
        "modes {modes:?}"
    );
    assert_eq!(
        modes.iter().filter(|m| **m == Mode::Follower).count(),
        2,
        "modes {modes:?}"
    );
    let followers: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    for &i in &followers {
        let state = e.mntr(i).get("zk_server_state").cloned();
        assert_eq!(state.as_deref(), Some("follower"), "server.{} mntr", i + 1);
    }
    assert_eq!(
        e.mntr(leader).get("zk_server_state").map(String::as_str),
        Some("leader")
    );

    let f = followers[0];
    let c = within(40, "connect", connect(&e.connect_string_of(&[f]), CONNECT)).await;
    within(30, "create /a", c.create("/a", b"", &anyone()))
        .await
        .expect("create /a through a follower");
    let t = Instant::now();
    let created = create_many(&c, "/a", "n", 0..100).await;
    e.note(format!(
        "100 creates through follower server.{} in {:?}",
        f + 1,
        t.elapsed()
    ));
    let zxids: Vec<i64> = created.iter().map(|(_, z)| *z).collect();
    assert_increasing("one session's creates through a follower", &zxids);
    let want = expected_of(&created);
    assert_members_hold(
        &e,
        3,
        "/a",
        &want,
        "after sync does not hold the 100 znodes",
    )
    .await;
    let m = wait_mntr(
        &e,
        leader,
        "zk_synced_followers",
        2,
        Duration::from_secs(15),
    );
    for key in ["zk_synced_observers", "zk_pending_syncs", "zk_learners"] {
        e.note(format!("leader mntr {key} = {:?}", m.get(key)));
    }
    assert_eq!(mntr_num(&m, "zk_synced_observers"), Some(0), "leader mntr");
    assert_eq!(mntr_num(&m, "zk_learners"), Some(2), "leader mntr");
    e.note(format!(
        "three_voters_elect_and_replicate: {:?}",
        started.elapsed()
    ));
}

/// `maxProposalsInFlight=1`: the leader proposes one txn at a time and holds the rest
/// of every server's pipelined writes until it commits. Nothing is lost or reordered:
/// each server's session sees its creates committed in order, and every server ends
/// with all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_proposal_in_flight_still_commits_every_write_in_order() {
    let _serial = serial().await;
    let started = Instant::now();
    // Small log segments: every member rolls over many times, into spare segments made
    // beside its appends.
    let mut e = Ensemble::launch(
        Opts::voters(3)
            .cfg("maxProposalsInFlight=1")
            .cfg("preAllocSize=4"),
    );
    let leader = e.wait_settled(SETTLE);
    let c = within(
        40,
        "connect",
        connect(&e.connect_string_of(&[leader]), CONNECT),
    )
    .await;
    within(30, "create /one", c.create("/one", b"", &anyone()))
        .await
        .expect("create /one");
    let mut clients = Vec::new();
    for i in 0..3 {
        clients.push(within(40, "connect", connect(&e.connect_string_of(&[i]), CONNECT)).await);
    }
    // 100 creates in flight from each server's session at once.
    let (a, b, d) = tokio::join!(
        create_many(&clients[0], "/one", "s0-", 0..100),
        create_many(&clients[1], "/one", "s1-", 0..100),
        create_many(&clients[2], "/one", "s2-", 0..100),
    );
    let created = [a, b, d];
    let mut want = BTreeMap::new();
    for (i, made) in created.iter().enumerate() {
        let zxids: Vec<i64> = made.iter().map(|(_, z)| *z).collect();
        assert_increasing(&format!("server.{}'s session's creates", i + 1), &zxids);
        want.extend(expected_of(made));
    }
    assert_eq!(want.len(), 300);
    assert_members_hold(&e, 3, "/one", &want, "does not hold every create").await;
    for m in &e.members {
        let names = |prefix: &str| {
            std::fs::read_dir(m.data_dir())
                .map(|d| {
                    d.filter_map(|f| f.ok()?.file_name().into_string().ok())
                        .filter(|n| n.starts_with(prefix))
                        .count()
                })
                .unwrap_or(0)
        };
        let segments = names("log.") - names("log.spare.");
        assert!(
            segments > 3,
            "{}: {segments} log segments",
            m.data_dir().display()
        );
        // Spares are numbered as they are made, one at a time, each once the last was
        // taken: the next is ready ahead of need, and earlier ones became segments.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let spare: Option<u64> = std::fs::read_dir(m.data_dir())
                .into_iter()
                .flatten()
                .filter_map(|f| f.ok()?.file_name().into_string().ok())
                .filter_map(|n| n.strip_prefix("log.spare.")?.parse().ok())
                .max();
            if spare.is_some_and(|n| n > 1) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{}: spare log segment {spare:?}",
                m.data_dir().display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    e.note(format!(
        "one_proposal_in_flight_still_commits_every_write_in_order: {:?} (leader server.{})",
        started.elapsed(),
        leader + 1
    ));
}

/// `sslQuorum=true`: the election and quorum ports speak TLS (JKS stores), the
/// ensemble elects, replicates through a follower and an observer syncs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_ensemble_elects_and_replicates() {
    let _serial = serial().await;
    let Some(certs) = common::test_certs() else {
        eprintln!("skipped: openssl or keytool missing");
        return;
    };
    let mut opts = Opts::voters(3).observers(1);
    for line in common::ssl_quorum_cfg(&certs, "jks") {
        opts = opts.cfg(&line);
    }
    let mut e = Ensemble::launch(opts);
    let leader = e.wait_settled(SETTLE);
    let f = (0..3).find(|&i| i != leader).unwrap();
    let c = within(40, "connect", connect(&e.connect_string_of(&[f]), CONNECT)).await;
    within(30, "create /tls", c.create("/tls", b"", &anyone()))
        .await
        .expect("create /tls through a follower");
    let created = create_many(&c, "/tls", "n", 0..50).await;
    let want = expected_of(&created);
    assert_members_hold(
        &e,
        4,
        "/tls",
        &want,
        "after sync does not hold the 50 znodes",
    )
    .await;
    let m = wait_mntr(
        &e,
        leader,
        "zk_synced_followers",
        2,
        Duration::from_secs(15),
    );
    assert_eq!(mntr_num(&m, "zk_synced_observers"), Some(1), "leader mntr");
    // The ports speak TLS: a handshake with a certificate from the ensemble's CA
    // passes, and one with no certificate is refused (ssl.quorum.clientAuth=need).
    let port = e.members[leader].election_port;
    let handshake = |cert: bool| {
        // TLS 1.3 refuses a client certificate after the handshake: s_client must
        // stay a moment to read the alert.
        let d = certs.display();
        let with_cert = if cert {
            format!("-cert {d}/client.pem -key {d}/client-key.pem")
        } else {
            String::new()
        };
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "sleep 1 | openssl s_client -connect 127.0.0.1:{port} -CAfile {d}/ca.pem {with_cert}"
            ))
            .output()
            .expect("openssl s_client");
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
    };
    let ok = handshake(true);
    assert!(ok.contains("Verify return code: 0 (ok)"), "{ok}");
    let refused = handshake(false);
    assert!(
        refused.contains("alert"),
        "no client certificate, yet: {refused}"
    );
}

/// Quorum SASL switched on without being required (`quorum.auth.enableSasl=true`, the
/// require flags off, ZooKeeper's first step when rolling SASL in): nobody
/// authenticates, connections that send no auth packet are let through, and the
/// ensemble elects and replicates as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_sasl_enabled_but_not_required_lets_members_through() {
    let _serial = serial().await;
    if common::using_zookeeper() {
        // ZooKeeper reads the JAAS file only from -Djava.security.auth.login.config
        // (tests/mixed_ensemble.rs passes it so); this harness has no JVM flags.
        eprintln!("skipped against ZooKeeper: the JAAS file is named in zoo.cfg here");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let jaas = dir.path().join("jaas.conf");
    std::fs::write(
        &jaas,
        "QuorumServer {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  user_q=\"pw\";\n};\n\
         QuorumLearner {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  username=\"q\"\n  password=\"pw\";\n};\n",
    )
    .unwrap();
    let mut e = Ensemble::launch(
        Opts::voters(3)
            .cfg("quorum.auth.enableSasl=true")
            .cfg(&format!(
                "java.security.auth.login.config={}",
                jaas.display()
            )),
    );
    let mut created = Vec::new();
    roll_step(&mut e, &mut created, "SASL enabled, not required").await;
    let leader = e.wait_settled(SETTLE);
    e.restart((leader + 1) % 3);
    roll_step(&mut e, &mut created, "a follower back").await;
}

/// Rolling a plain ensemble to TLS as ZooKeeper documents it, one restart at a time
/// with a write checked on every member after each: all on `portUnification=true`
/// (plain, accepting TLS too), then each turns on `sslQuorum` (dials TLS), then each
/// turns `portUnification` off (TLS only).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_ensemble_rolls_to_tls_one_server_at_a_time() {
    let _serial = serial().await;
    let Some(certs) = common::test_certs() else {
        eprintln!("skipped: openssl or keytool missing");
        return;
    };
    let mut opts = Opts::voters(3).cfg("portUnification=true");
    for line in common::ssl_quorum_cfg(&certs, "jks") {
        if line != "sslQuorum=true" {
            opts = opts.cfg(&line);
        }
    }
    let mut e = Ensemble::launch(opts);
    let mut created = Vec::new();
    roll_step(&mut e, &mut created, "plain, portUnification everywhere").await;
    for i in 0..3 {
        e.set_member_cfg(i, &["sslQuorum=true"]);
        e.restart(i);
        roll_step(
            &mut e,
            &mut created,
            &format!("server.{} on sslQuorum", i + 1),
        )
        .await;
    }
    for i in 0..3 {
        e.set_member_cfg(i, &["sslQuorum=true", "portUnification=false"]);
        e.restart(i);
        roll_step(&mut e, &mut created, &format!("server.{} TLS only", i + 1)).await;
    }
}

/// One step of the roll: the ensemble settles, a new znode is written, and every
/// member holds every znode written so far.
async fn roll_step(e: &mut Ensemble, created: &mut Vec<String>, what: &str) {
    e.wait_settled(SETTLE);
    let path = format!("/roll/n{}", created.len());
    let c = within(
        40,
        "connect",
        connect(&e.connect_string_of(&[0, 1, 2]), CONNECT),
    )
    .await;
    let _ = c.create("/roll", b"", &anyone()).await;
    within(30, "create", c.create(&path, b"", &anyone()))
        .await
        .unwrap_or_else(|err| panic!("{what}: create {path}: {err:?}"));
    created.push(path);
    let want: Vec<String> = created.clone();
    for i in 0..3 {
        let got: Vec<String> = read_tree_synced(e, i, "/roll").await.into_keys().collect();
        assert_eq!(got, want, "{what}: server.{} after sync", i + 1);
    }
    e.note(format!("{what}: ok"));
}

// ---------------------------------------------------------------------------------
// b. Observers.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observer_serves_reads_and_does_not_vote() {
    let _serial = serial().await;
    let started = Instant::now();
    let mut e = Ensemble::launch(Opts::voters(3).observers(1).proxied());
    let obs = 3;
    let leader = e.wait_settled(SETTLE);
    assert_eq!(e.mode(obs), Mode::Observer);
    assert_eq!(
        e.mntr(obs).get("zk_server_state").map(String::as_str),
        Some("observer")
    );

    // Writes through the observer are visible everywhere.
    let co = within(
        40,
        "connect",
        connect(&e.connect_string_of(&[obs]), CONNECT),
    )
    .await;
    within(30, "create /o", co.create("/o", b"", &anyone()))
        .await
        .expect("create /o through the observer");
    let created = create_many(&co, "/o", "obs", 0..50).await;
    let zxids: Vec<i64> = created.iter().map(|(_, z)| *z).collect();
    assert_increasing("creates through the observer", &zxids);
    let mut want = expected_of(&created);
    assert_members_hold(&e, 4, "/o", &want, "does not hold the observer's writes").await;
    let m = wait_mntr(
        &e,
        leader,
        "zk_synced_observers",
        1,
        Duration::from_secs(15),
    );
    assert_eq!(mntr_num(&m, "zk_synced_followers"), Some(2), "leader mntr");
    e.note(format!(
        "leader mntr: synced_followers {:?} synced_observers {:?} learners {:?} pending_syncs {:?}",
        m.get("zk_synced_followers"),
        m.get("zk_synced_observers"),
        m.get("zk_learners"),
        m.get("zk_pending_syncs")
    ));
    drop(co);

    // Killing the observer does not stop writes.
    e.kill9(obs);
    let voters = e.connect_string_of(&[0, 1, 2]);
    let cv = within(40, "connect", connect(&voters, CONNECT)).await;
    let t = Instant::now();
    let more = create_many(&cv, "/o", "vot", 0..20).await;
    e.note(format!(
        "20 writes with the observer dead took {:?}",
        t.elapsed()
    ));
    want.extend(expected_of(&more));
    assert_eq!(
        e.mode(leader),
        Mode::Leader,
        "the leader changed when the observer died"
    );
    wait_mntr(
        &e,
        leader,
        "zk_synced_observers",
        0,
        Duration::from_secs(15),
    );

    // It comes back and catches up.
    e.start(obs);
    e.wait_mode(obs, SETTLE, "observer", |m| m == Mode::Observer);
    let got = read_tree_synced(&e, obs, "/o").await;
    if got != want {
        e.fail(format!(
            "the restarted observer does not hold every write: {}",
            tree_diff(&got, &want)
        ));
    }
    wait_mntr(
        &e,
        leader,
        "zk_synced_observers",
        1,
        Duration::from_secs(15),
    );

    // Cut off from every voter, it changes nothing for the commits either; healed, it
    // catches up.
    e.isolate(obs);
    let t = Instant::now();
    let cut = create_many(&cv, "/o", "cut", 0..20).await;
    e.note(format!(
        "20 writes with the observer partitioned away took {:?}",
        t.elapsed()
    ));
    want.extend(expected_of(&cut));
    assert_eq!(
        e.mode(leader),
        Mode::Leader,
        "the leader changed when the observer was partitioned"
    );
    e.heal(obs);
    e.wait_mode(obs, SETTLE, "observer", |m| m == Mode::Observer);
    let got = read_tree_synced(&e, obs, "/o").await;
    if got != want {
        e.fail(format!(
            "the healed observer does not hold every write: {}",
            tree_diff(&got, &want)
        ));
    }

    // It does not vote: the leader and the observer alone are no quorum.
    let followers: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    drop(cv);
    for &f in &followers {
        e.kill9(f);
    }
    let t = Instant::now();
    let step_down_within = Duration::from_millis(e.opts.tick_ms * 20) + Duration::from_secs(10);
    e.wait_mode(
        leader,
        step_down_within,
        "no longer leader (no quorum)",
        |m| m != Mode::Leader,
    );
    e.note(format!(
        "with both followers dead, server.{} stopped leading after {:?}",
        leader + 1,
        t.elapsed()
    ));
    let watch_until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < watch_until {
        let modes = e.modes();
        if modes
            .iter()
            .any(|m| matches!(m, Mode::Leader | Mode::Follower | Mode::Observer))
        {
            e.fail(format!(
                "one voter and one observer serve without a quorum of voters: modes {modes:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let refused = try_connect(&e.connect_string_of(&[leader, obs]), Duration::from_secs(3)).await;
    assert!(
        refused.is_err(),
        "a session was established on a member without a quorum"
    );
    // And the ensemble recovers once the followers are back.
    for &f in &followers {
        e.start(f);
    }
    e.wait_settled(SETTLE);
    let c = within(
        40,
        "connect",
        connect(&e.connect_string_of(&[obs]), CONNECT),
    )
    .await;
    within(
        30,
        "a write after recovery",
        c.create("/o/after", b"x", &anyone()),
    )
    .await
    .expect("write through the observer after the followers returned");
    e.note(format!(
        "observer_serves_reads_and_does_not_vote: {:?}",
        started.elapsed()
    ));
}

// ---------------------------------------------------------------------------------
// c. Kill the leader repeatedly under a writer load.

/// One write of a writer session: its sequence number and how it ended.
#[derive(Debug, Clone)]
struct Attempt {
    seq: usize,
    start: Instant,
    end: Instant,
    outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    /// The create was acknowledged, with this czxid.
    Acked(i64),
    /// NodeExists on a retry: an earlier, unacknowledged attempt took effect.
    FoundOnRetry,
    /// An error or a time-out: unknown whether it took effect; retried.
    Unknown(String),
}

/// A writer session: znodes `/kl/{name}/{seq:08}` = `{name}#{seq}`, one at a time.
#[derive(Debug, Clone)]
struct SessionLog {
    name: String,
    session_id: String,
    attempts: Vec<Attempt>,
    ended_by: Option<String>,
    /// Replies that should not happen (a first create finding its znode there).
    anomalies: Vec<String>,
}

impl SessionLog {
    /// Sequence numbers confirmed present (acked, or found on retry).
    fn confirmed(&self) -> usize {
        self.attempts
            .iter()
            .filter(|a| !matches!(a.outcome, Outcome::Unknown(_)))
            .count()
    }

    /// The highest seq ever sent, plus one.
    fn sent(&self) -> usize {
        self.attempts.iter().map(|a| a.seq + 1).max().unwrap_or(0)
    }
}

async fn writer_session(
    cs: String,
    slot: usize,
    stop: Arc<AtomicBool>,
    logs: Arc<Mutex<Vec<SessionLog>>>,
    notes: Notes,
) {
    let opts = anyone();
    let mut generation = 0;
    while !stop.load(Ordering::SeqCst) {
        let client = match tokio::time::timeout(
            Duration::from_secs(20),
            common::ensemble::connector().connect(&cs),
        )
        .await
        {
            Ok(Ok(c)) => c,
            _ => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let name = format!("s{slot}g{generation}");
        generation += 1;
        let parent = format!("/kl/{name}");
        let idx = {
            let mut l = logs.lock().unwrap();
            l.push(SessionLog {
                name: name.clone(),
                session_id: format!("{:#x}", client.session_id().0),
                attempts: Vec::new(),
                ended_by: None,
                anomalies: Vec::new(),
            });
            l.len() - 1
        };
        // The parent, retried until it is there.
        let mut parent_ok = false;
        while !stop.load(Ordering::SeqCst) && !client.state().is_terminated() {
            match tokio::time::timeout(Duration::from_secs(20), client.create(&parent, b"", &opts))
                .await
            {
                Ok(Ok(_)) | Ok(Err(zk::Error::NodeExists)) => {
                    parent_ok = true;
                    break;
                }
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        let mut seq = 0usize;
        let mut uncertain = false;
        while parent_ok && !stop.load(Ordering::SeqCst) {
            let path = format!("{parent}/{seq:08}");
            let data = format!("{name}#{seq}");
            let start = Instant::now();
            let r = tokio::time::timeout(
                Duration::from_secs(20),
                client.create(&path, data.as_bytes(), &opts),
            )
            .await;
            let end = Instant::now();
            let mut anomaly = None;
            let outcome = match r {
                Ok(Ok((stat, _))) => Outcome::Acked(stat.czxid),
                Ok(Err(zk::Error::NodeExists)) if uncertain => Outcome::FoundOnRetry,
                Ok(Err(zk::Error::NodeExists)) => {
                    anomaly = Some(format!(
                        "writer {name}: {path} already existed at the first attempt to create it"
                    ));
                    Outcome::Unknown("NodeExists at the first attempt".into())
                }
                Ok(Err(err)) => Outcome::Unknown(err.to_string()),
                Err(_) => Outcome::Unknown("no reply in 20 s".into()),
            };
            let done = !matches!(outcome, Outcome::Unknown(_));
            {
                let mut l = logs.lock().unwrap();
                l[idx].attempts.push(Attempt {
                    seq,
                    start,
                    end,
                    outcome,
                });
                if let Some(a) = &anomaly {
                    l[idx].anomalies.push(a.clone());
                }
            }
            if let Some(a) = anomaly {
                notes.note(a);
            }
            if done {
                seq += 1;
                uncertain = false;
                tokio::time::sleep(Duration::from_millis(5)).await;
            } else {
                uncertain = true;
                let state = client.state();
                if state.is_terminated() {
                    logs.lock().unwrap()[idx].ended_by = Some(format!("session {state:?}"));
                    notes.note(format!(
                        "writer {name}: session {:#x} ended ({state:?}); a new session follows",
                        client.session_id().0
                    ));
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        if stop.load(Ordering::SeqCst) {
            return;
        }
    }
}

/// The writes of one session as found on one server: seq -> (data, czxid).
fn session_view(tree: &BTreeMap<String, Node>) -> BTreeMap<usize, (Vec<u8>, i64)> {
    tree.iter()
        .map(|(p, (d, z, _))| {
            let seq = p.rsplit('/').next().unwrap().parse::<usize>().unwrap();
            (seq, (d.clone(), *z))
        })
        .collect()
}

/// Checks what a server holds of one writer session against what the session saw.
fn check_session(
    server: usize,
    log: &SessionLog,
    found: &BTreeMap<usize, (Vec<u8>, i64)>,
) -> Result<(), String> {
    let who = format!(
        "server.{} session {} ({})",
        server + 1,
        log.name,
        log.session_id
    );
    if !log.anomalies.is_empty() {
        return Err(format!("{who}: {:?}", log.anomalies));
    }
    // Present writes form a prefix 0..n (the session wrote them one at a time).
    for (k, seq) in found.keys().enumerate() {
        if *seq != k {
            return Err(format!(
                "{who}: hole: write {seq} present but write {k} missing (present: {} writes, \
                 confirmed {}, sent {})",
                found.len(),
                log.confirmed(),
                log.sent()
            ));
        }
    }
    if found.len() > log.sent() {
        return Err(format!(
            "{who}: {} writes present, only {} sent",
            found.len(),
            log.sent()
        ));
    }
    for a in &log.attempts {
        let confirmed = match a.outcome {
            Outcome::Acked(z) => Some(Some(z)),
            Outcome::FoundOnRetry => Some(None),
            Outcome::Unknown(_) => None,
        };
        let Some(czxid) = confirmed else { continue };
        match found.get(&a.seq) {
            None => {
                return Err(format!(
                    "{who}: LOST ACKNOWLEDGED WRITE {} (outcome {:?}); present writes 0..{}",
                    a.seq,
                    a.outcome,
                    found.len()
                ))
            }
            Some((data, z)) => {
                let want = format!("{}#{}", log.name, a.seq).into_bytes();
                if *data != want {
                    return Err(format!(
                        "{who}: write {} holds {:?}, wrote {:?}",
                        a.seq,
                        String::from_utf8_lossy(data),
                        String::from_utf8_lossy(&want)
                    ));
                }
                if let Some(acked) = czxid {
                    if acked != *z {
                        return Err(format!(
                            "{who}: write {} acknowledged with czxid {acked:#x}, holds {z:#x}",
                            a.seq
                        ));
                    }
                }
            }
        }
    }
    let zxids: Vec<i64> = found.values().map(|(_, z)| *z).collect();
    for w in zxids.windows(2) {
        if w[0] >= w[1] {
            return Err(format!(
                "{who}: writes out of session order: czxid {:#x} then {:#x}",
                w[0], w[1]
            ));
        }
    }
    Ok(())
}

/// The first write that was sent at or after `t` and acknowledged: (its end, which session).
fn first_ack_after(logs: &[SessionLog], t: Instant) -> Option<(Instant, String)> {
    logs.iter()
        .flat_map(|l| {
            l.attempts
                .iter()
                .filter(|a| a.start >= t && matches!(a.outcome, Outcome::Acked(_)))
                .map(move |a| (a.end, l.name.clone()))
        })
        .min_by_key(|(end, _)| *end)
}

fn acked_total(logs: &[SessionLog]) -> usize {
    logs.iter()
        .map(|l| {
            l.attempts
                .iter()
                .filter(|a| matches!(a.outcome, Outcome::Acked(_)))
                .count()
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_the_leader_repeatedly() {
    let _serial = serial().await;
    let started = Instant::now();
    let cycles = env_usize("CORRAL_ENSEMBLE_CYCLES", 3);
    let sessions = 4;
    let mut e = Ensemble::launch(Opts::voters(3));
    e.wait_settled(SETTLE);
    let cs = e.connect_string();
    {
        let c = within(40, "connect", connect(&cs, CONNECT)).await;
        within(30, "create /kl", c.create("/kl", b"", &anyone()))
            .await
            .expect("create /kl");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let logs: Arc<Mutex<Vec<SessionLog>>> = Arc::default();
    let tasks: Vec<_> = (0..sessions)
        .map(|s| {
            tokio::spawn(writer_session(
                cs.clone(),
                s,
                stop.clone(),
                logs.clone(),
                e.notes(),
            ))
        })
        .collect();

    let mut kill_to_write = Vec::new();
    for cycle in 0..cycles {
        let leader = e.wait_settled(SETTLE);
        // Writes are flowing before the kill.
        let before = acked_total(&logs.lock().unwrap());
        let deadline = Instant::now() + Duration::from_secs(30);
        while acked_total(&logs.lock().unwrap()) < before + 20 {
            if Instant::now() > deadline {
                e.fail(format!(
                    "cycle {cycle}: writers made no progress before the kill"
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let killed_at = Instant::now();
        e.kill9(leader);
        let deadline = killed_at + Duration::from_secs(60);
        let (first, by) = loop {
            if let Some(x) = first_ack_after(&logs.lock().unwrap(), killed_at) {
                break x;
            }
            if Instant::now() > deadline {
                let modes = e.modes();
                e.fail(format!(
                    "cycle {cycle}: no write acknowledged within 60 s of killing leader \
                     server.{}; modes {modes:?}",
                    leader + 1
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let dt = first - killed_at;
        kill_to_write.push(dt);
        let new_leader = e.wait_for_leader(SETTLE);
        e.note(format!(
            "cycle {cycle}: killed leader server.{}, first write sent after the kill \
             acknowledged {dt:?} later (session {by}); new leader server.{}",
            leader + 1,
            new_leader + 1
        ));
        tokio::time::sleep(Duration::from_secs(1)).await;
        e.start(leader);
        e.wait_settled(SETTLE);
        let back = e.mode(leader);
        e.note(format!(
            "cycle {cycle}: server.{} back as {back:?}",
            leader + 1
        ));
    }
    // A little more load with everyone back, then stop the writers.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        within(60, "writers to stop", t).await.expect("writer task");
    }
    let logs = logs.lock().unwrap().clone();
    e.wait_settled(SETTLE);

    // Every confirmed write on every server, each session's writes in order, and every
    // server holding the same.
    let mut reference: Option<BTreeMap<String, Node>> = None;
    let mut present_total = 0;
    for i in 0..3 {
        let cs = e.connect_string_of(&[i]);
        let c = within(40, "connect", connect(&cs, CONNECT)).await;
        within(30, "sync", c.sync("/kl")).await.expect("sync /kl");
        let mut all = BTreeMap::new();
        for log in &logs {
            let parent = format!("/kl/{}", log.name);
            let tree = within(60, "read", read_tree(&c, &parent))
                .await
                .unwrap_or_default();
            let view = session_view(&tree);
            if let Err(msg) = check_session(i, log, &view) {
                e.fail(msg);
            }
            if i == 0 {
                present_total += view.len();
            }
            all.extend(tree);
        }
        match &reference {
            None => reference = Some(all),
            Some(r) => {
                if *r != all {
                    e.fail(format!(
                        "server.{} and server.1 differ: {}",
                        i + 1,
                        tree_diff(&all, r)
                    ));
                }
            }
        }
    }
    let acked = acked_total(&logs);
    let confirmed: usize = logs.iter().map(|l| l.confirmed()).sum();
    let unknown: usize = logs
        .iter()
        .map(|l| {
            l.attempts
                .iter()
                .filter(|a| matches!(a.outcome, Outcome::Unknown(_)))
                .count()
        })
        .sum();
    let expired: Vec<_> = logs
        .iter()
        .filter_map(|l| {
            l.ended_by
                .as_ref()
                .map(|w| format!("{} {}: {w}", l.name, l.session_id))
        })
        .collect();
    assert!(
        acked > 0,
        "no write was acknowledged: the test checked nothing"
    );
    e.note(format!(
        "kill_the_leader_repeatedly: {cycles} leader kills; kill -> first acknowledged write \
         {:?}, median {:?}; {} sessions, {acked} acked, {confirmed} confirmed, {unknown} \
         unknown outcomes (retried), {present_total} present on every server; sessions \
         ended: {expired:?}; {:?}",
        kill_to_write,
        median(&kill_to_write),
        logs.len(),
        started.elapsed()
    ));
}

// ---------------------------------------------------------------------------------
// d. An isolated leader.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolated_leader_steps_down_and_rejoins() {
    let _serial = serial().await;
    let started = Instant::now();
    let mut e = Ensemble::launch(Opts::voters(3).proxied());
    let old = e.wait_settled(SETTLE);
    let majority: Vec<usize> = (0..3).filter(|&i| i != old).collect();
    e.note(format!(
        "leader server.{}, majority {:?}",
        old + 1,
        sid_list(&majority)
    ));
    let c_all = within(40, "connect", connect(&e.connect_string(), CONNECT)).await;
    within(30, "create /iso", c_all.create("/iso", b"", &anyone()))
        .await
        .expect("create /iso");
    let mut want = expected_of(&create_many(&c_all, "/iso", "pre", 0..20).await);
    drop(c_all);
    // A session on the leader, made before the partition.
    let c_old = within(
        40,
        "connect",
        connect(&e.connect_string_of(&[old]), CONNECT),
    )
    .await;
    within(30, "a read on the leader", c_old.get_data("/iso"))
        .await
        .expect("read through the leader");

    let cut_at = Instant::now();
    e.isolate(old);
    // Writes sent to the isolated leader: all in flight before it can step down.
    let stale_paths: Vec<String> = (0..10).map(|k| format!("/iso/stale{k:02}")).collect();
    let stale = {
        let opts = anyone();
        let futs: Vec<_> = stale_paths
            .iter()
            .map(|p| c_old.create(p, b"stale", &opts))
            .collect();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
        let mut out = Vec::new();
        for (p, f) in stale_paths.iter().zip(futs) {
            let r = tokio::time::timeout_at(deadline, f).await;
            out.push((p.clone(), r.map(|r| r.map(|_| ()))));
        }
        out
    };
    let acked: Vec<_> = stale
        .iter()
        .filter(|(_, r)| matches!(r, Ok(Ok(()))))
        .map(|(p, _)| p.clone())
        .collect();
    e.note(format!(
        "writes sent to the isolated leader ended: {:?}",
        stale
            .iter()
            .map(|(p, r)| format!("{p}: {r:?}"))
            .collect::<Vec<_>>()
    ));
    if !acked.is_empty() {
        e.fail(format!(
            "the isolated leader acknowledged writes it could not have committed: {acked:?}"
        ));
    }
    // It steps down and stops serving.
    let m = e.wait_mode(old, Duration::from_secs(30), "not leading", |m| {
        m != Mode::Leader
    });
    e.note(format!(
        "isolated server.{} stopped leading {:?} after the cut (now {m:?})",
        old + 1,
        cut_at.elapsed()
    ));
    // The majority elects a new leader and takes writes.
    let new = e.wait_for_leader_among(&majority, Duration::from_secs(60));
    e.note(format!(
        "majority elected server.{} {:?} after the cut",
        new + 1,
        cut_at.elapsed()
    ));
    let c_maj = within(
        40,
        "connect",
        connect(&e.connect_string_of(&majority), CONNECT),
    )
    .await;
    let t = Instant::now();
    want.extend(expected_of(
        &create_many(&c_maj, "/iso", "maj", 0..50).await,
    ));
    e.note(format!(
        "50 writes through the majority in {:?}",
        t.elapsed()
    ));
    // The isolated member still does not serve, and takes no new session.
    let m = e.mode(old);
    if m.serving() {
        e.fail(format!(
            "isolated server.{} serves ({m:?}) while cut off from the majority",
            old + 1
        ));
    }
    assert_ne!(
        c_old.state(),
        zk::SessionState::SyncConnected,
        "the client of the isolated leader is still connected"
    );
    let r = try_connect(&e.connect_string_of(&[old]), Duration::from_secs(3)).await;
    if let Ok(c) = r {
        e.fail(format!(
            "isolated server.{} established session {:#x}",
            old + 1,
            c.session_id().0
        ));
    }
    drop(c_old);

    // Heal: it rejoins as a follower and holds exactly the majority's data.
    let healed_at = Instant::now();
    e.heal(old);
    e.wait_mode(old, Duration::from_secs(90), "follower", |m| {
        m == Mode::Follower
    });
    e.note(format!(
        "server.{} rejoined as follower {:?} after the heal",
        old + 1,
        healed_at.elapsed()
    ));
    let reference = read_tree_synced(&e, new, "/iso").await;
    if reference != want {
        e.fail(format!(
            "the new leader does not hold exactly the acknowledged writes: {}",
            tree_diff(&reference, &want)
        ));
    }
    // Directly on the rejoined member (it says follower: its sync is done), then synced.
    let direct = {
        let c = within(
            40,
            "connect",
            connect(&e.connect_string_of(&[old]), CONNECT),
        )
        .await;
        within(60, "read", read_tree(&c, "/iso"))
            .await
            .unwrap_or_default()
    };
    if direct != want {
        e.note(format!(
            "note: a direct read on the rejoined server.{} right after it said follower \
             differed: {}",
            old + 1,
            tree_diff(&direct, &want)
        ));
    }
    let synced = read_tree_synced(&e, old, "/iso").await;
    if synced != want {
        e.fail(format!(
            "the rejoined server.{} does not hold exactly the majority's data: {}",
            old + 1,
            tree_diff(&synced, &want)
        ));
    }
    let third = majority.iter().copied().find(|&i| i != new).unwrap();
    let t3 = read_tree_synced(&e, third, "/iso").await;
    assert!(
        t3 == want,
        "server.{}: {}",
        third + 1,
        tree_diff(&t3, &want)
    );
    e.note(format!(
        "isolated_leader_steps_down_and_rejoins: {:?}",
        started.elapsed()
    ));
}

// ---------------------------------------------------------------------------------
// e. A follower restarted behind catches up (DIFF, then SNAP).

/// Reads `parent` directly on member `i` (no sync) until it equals `want`; returns how
/// long that took, or fails after 15 s.
async fn wait_direct(
    e: &Ensemble,
    i: usize,
    parent: &str,
    want: &BTreeMap<String, Node>,
) -> Duration {
    let c = within(40, "connect", connect(&e.connect_string_of(&[i]), CONNECT)).await;
    let t = Instant::now();
    let mut first = true;
    loop {
        let got = within(60, "read", read_tree(&c, parent))
            .await
            .unwrap_or_default();
        if got == *want {
            return t.elapsed();
        }
        if first {
            e.note(format!(
                "server.{}: first direct read after it said follower is behind: {}",
                i + 1,
                tree_diff(&got, want)
            ));
            first = false;
        }
        if t.elapsed() > Duration::from_secs(15) {
            e.fail(format!(
                "server.{} did not catch up within 15 s: {}",
                i + 1,
                tree_diff(&got, want)
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_restarted_behind_catches_up() {
    let _serial = serial().await;
    let started = Instant::now();
    let mut e = Ensemble::launch(Opts::voters(3));
    let leader = e.wait_settled(SETTLE);
    let f = (0..3).find(|&i| i != leader).unwrap();
    let others: Vec<usize> = (0..3).filter(|&i| i != f).collect();
    let c = within(
        40,
        "connect",
        connect(&e.connect_string_of(&others), CONNECT),
    )
    .await;
    within(30, "create /catch", c.create("/catch", b"", &anyone()))
        .await
        .expect("create /catch");
    let mut want = expected_of(&create_many(&c, "/catch", "base", 0..10).await);
    // The follower holds the base writes before it is first killed: killed before it
    // logged any txn of this epoch, it would rightly get a SNAP where the "diff" phase
    // expects a DIFF (seen once in CI).
    let base = read_tree_synced(&e, f, "/catch").await;
    assert_eq!(base, want, "server.{} before the first kill", f + 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let counts = |e: &Ensemble| {
        let m = e.mntr(leader);
        (
            m.get("zk_diff_count").cloned(),
            m.get("zk_snap_count").cloned(),
        )
    };

    // diff: a few txns behind (the leader's window in memory); snap: 700 behind on a
    // small tree (the txns outweigh a third of a snapshot); disk-diff: 600 behind on a
    // tree made heavy first (ballast), so the txns older than the window are read from
    // the leader's log on disk (ZooKeeper's snapshotSizeFactor rule, in both servers).
    for (phase, n) in [("diff", 20usize), ("snap", 700), ("disk-diff", 600)] {
        if phase == "disk-diff" {
            let ballast = vec![b'b'; 2048];
            within(30, "create /ballast", c.create("/ballast", b"", &anyone()))
                .await
                .expect("create /ballast");
            let paths: Vec<String> = (0..2000).map(|k| format!("/ballast/b{k:05}")).collect();
            let opts = anyone();
            for chunk in paths.chunks(100) {
                let futs: Vec<_> = chunk.iter().map(|p| c.create(p, &ballast, &opts)).collect();
                for f in futs {
                    within(60, "a ballast create", f)
                        .await
                        .expect("ballast create");
                }
            }
        }
        e.kill9(f);
        let t = Instant::now();
        want.extend(expected_of(&create_many(&c, "/catch", phase, 0..n).await));
        e.note(format!(
            "{phase}: {n} writes with server.{} down in {:?}",
            f + 1,
            t.elapsed()
        ));
        let before = counts(&e);
        // The follower's own word on how it synced (corral: "snapshot received";
        // ZooKeeper: "Getting a snapshot from leader"), for the notes.
        let snaps_logged = |e: &Ensemble| {
            e.log_grep(f, "snapshot received").len()
                + e.log_grep(f, "Getting a snapshot from leader").len()
        };
        let snaps_before = snaps_logged(&e);
        let t = Instant::now();
        e.start(f);
        e.wait_mode(f, SETTLE, "follower", |m| m == Mode::Follower);
        let up = t.elapsed();
        let lag = wait_direct(&e, f, "/catch", &want).await;
        let after = counts(&e);
        e.note(format!(
            "{phase}: server.{} said follower {up:?} after its start and held all {} znodes \
             {lag:?} later; leader mntr (diff_count, snap_count) {before:?} -> {after:?}; \
             snapshots the follower logged receiving: {}",
            f + 1,
            want.len(),
            snaps_logged(&e) - snaps_before
        ));
        // Where the leader counts its syncs, the right kind was used.
        let num = |v: &Option<String>| v.as_deref().and_then(|s| s.parse::<i64>().ok());
        let kind = if phase == "snap" { "snap" } else { "diff" };
        let (b, a) = if kind == "diff" {
            (num(&before.0), num(&after.0))
        } else {
            (num(&before.1), num(&after.1))
        };
        if let (Some(b), Some(a)) = (b, a) {
            if a != b + 1 {
                e.fail(format!(
                    "{phase}: the leader's zk_{kind}_count went {b} -> {a}: server.{} was not \
                     synced by {} (mntr (diff_count, snap_count) {before:?} -> {after:?})",
                    f + 1,
                    kind.to_uppercase()
                ));
            }
        }
    }
    // Caught up for real: a write through it, then every server equal.
    let cf = within(40, "connect", connect(&e.connect_string_of(&[f]), CONNECT)).await;
    let (stat, _) = within(
        30,
        "write through the caught-up follower",
        cf.create("/catch/last", b"l", &anyone()),
    )
    .await
    .expect("write through the caught-up follower");
    want.insert("/catch/last".into(), (b"l".to_vec(), stat.czxid, 0));
    assert_members_hold(&e, 3, "/catch", &want, "after catching up").await;
    e.note(format!(
        "follower_restarted_behind_catches_up: {:?}",
        started.elapsed()
    ));
}

// ---------------------------------------------------------------------------------
// f. kill -9 of the whole ensemble.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_ensemble_restart() {
    let _serial = serial().await;
    let started = Instant::now();
    let mut e = Ensemble::launch(Opts::voters(3));
    e.wait_settled(SETTLE);
    let cs = e.connect_string();
    let c = within(40, "connect", connect(&cs, CONNECT)).await;
    within(30, "create /w", c.create("/w", b"", &anyone()))
        .await
        .expect("create /w");
    let created = create_many(&c, "/w", "n", 0..300).await;
    let mut want = expected_of(&created);
    // Some updates too: a znode's version must survive as well.
    for (p, _) in created.iter().take(30) {
        let stat = within(30, "set_data", c.set_data(p, b"updated", None))
            .await
            .unwrap_or_else(|err| panic!("set_data {p}: {err}"));
        let entry = want.get_mut(p).unwrap();
        entry.0 = b"updated".to_vec();
        entry.2 = stat.version;
    }
    drop(c);

    // A writer keeps going while everything is killed.
    let stop = Arc::new(AtomicBool::new(false));
    let logs: Arc<Mutex<Vec<SessionLog>>> = Arc::default();
    {
        let c = within(40, "connect", connect(&cs, CONNECT)).await;
        within(30, "create /kl", c.create("/kl", b"", &anyone()))
            .await
            .expect("create /kl");
    }
    let task = tokio::spawn(writer_session(
        cs.clone(),
        0,
        stop.clone(),
        logs.clone(),
        e.notes(),
    ));
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked_total(&logs.lock().unwrap()) < 30 {
        if Instant::now() > deadline {
            e.fail("the writer made no progress".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    e.kill_all();
    let acked_before_kill = acked_total(&logs.lock().unwrap());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t = Instant::now();
    e.start_all();
    let leader = e.wait_settled(SETTLE);
    e.note(format!(
        "all restarted; settled with leader server.{} after {:?}",
        leader + 1,
        t.elapsed()
    ));
    // Let the writer reconnect and write a little more, then stop it.
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked_total(&logs.lock().unwrap()) < acked_before_kill + 10 {
        if Instant::now() > deadline {
            e.fail("the writer made no progress after the restart".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::SeqCst);
    within(60, "writer to stop", task)
        .await
        .expect("writer task");
    let logs = logs.lock().unwrap().clone();

    for i in 0..3 {
        let got = read_tree_synced(&e, i, "/w").await;
        if got != want {
            e.fail(format!(
                "server.{} after the restart: {}",
                i + 1,
                tree_diff(&got, &want)
            ));
        }
        let cs = e.connect_string_of(&[i]);
        let c = within(40, "connect", connect(&cs, CONNECT)).await;
        for log in &logs {
            let tree = within(60, "read", read_tree(&c, &format!("/kl/{}", log.name)))
                .await
                .unwrap_or_default();
            if let Err(msg) = check_session(i, log, &session_view(&tree)) {
                e.fail(msg);
            }
        }
    }
    e.note(format!(
        "whole_ensemble_restart: {acked_before_kill} writer writes acknowledged before the \
         kill, {} in all; {:?}",
        acked_total(&logs),
        started.elapsed()
    ));
}

// ---------------------------------------------------------------------------------
// g. A session resumed at a follower is revalidated by the leader.

/// A client resumes, at a follower that lags, a session the leader has just expired:
/// the follower's copy still holds the session, but it answers only once the leader's
/// REVALIDATE answer is back (ZooKeeper's `Learner.validateSession`), and that answer
/// says expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_expired_at_the_leader_is_not_resumed_at_a_lagging_follower() {
    use common::raw::{connect_request, create_req, RawConn, Read};
    use corral::proto::{ConnectResponse, Jute, OpCode};
    let _serial = serial().await;
    // The held link must not look dead to the follower (syncLimit ticks).
    let mut e = Ensemble::launch(Opts::voters(3).proxied().cfg("syncLimit=30"));
    let leader = e.wait_settled(SETTLE);
    let followers: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let (f1, f2) = (followers[0], followers[1]);

    // A session on f1 with an ephemeral, and the minimum timeout (2 ticks).
    let min_timeout = 2 * e.opts.tick_ms as i32;
    let mut owner = RawConn::open(e.client_addr(f1)).await;
    let rsp = owner
        .handshake(&connect_request(min_timeout, 0, &[0; 16]))
        .await;
    assert_ne!(rsp.session_id, 0);
    let (session, passwd) = (rsp.session_id, rsp.passwd.clone());
    let r = owner
        .call(
            OpCode::Create,
            Some(&create_req("/revalidate", b"", 1 /* ephemeral */)),
        )
        .await;
    assert_eq!(r.err(), 0, "create the ephemeral");
    let watcher = within(40, "connect", connect(&e.connect_string_of(&[f1]), CONNECT)).await;
    within(20, "sync", watcher.sync("/")).await.expect("sync");
    assert!(within(20, "exists", watcher.check_stat("/revalidate"))
        .await
        .expect("exists")
        .is_some());

    // f2 stops hearing the leader (its link stays up); the client vanishes; the
    // leader expires the session, and f1 sees the ephemeral go.
    e.hold_quorum_link(f2, leader, true);
    drop(owner);
    let gone = common::eventually(Duration::from_secs(20), || async {
        matches!(watcher.check_stat("/revalidate").await, Ok(None))
    })
    .await;
    assert!(gone, "the leader never expired the session");
    assert!(
        e.four_letter(f2, "dump")
            .is_some_and(|d| d.contains("/revalidate")),
        "f2 is meant to lag: its copy still holds the session"
    );

    // The client comes back at f2: no answer while the leader's reply is held back...
    let mut back = RawConn::open(e.client_addr(f2)).await;
    back.send_frame(&connect_request(min_timeout, session, &passwd).to_bytes())
        .await;
    let early = back.read_frame(Duration::from_millis(600)).await;
    e.hold_quorum_link(f2, leader, false);
    if let Read::Frame(b) = &early {
        let rsp = ConnectResponse::from_bytes(b).expect("ConnectResponse");
        panic!(
            "f2 answered before the leader did: session 0x{:x}, timeout {}",
            rsp.session_id, rsp.time_out
        );
    }
    assert_eq!(early, Read::Timeout, "f2 closed the connection instead");
    // ...then the session is refused: the expired answer (all zeros) and a close, or
    // (ZooKeeper, whose connection already carries the session id when the
    // closeSession commit arrives ahead of the REVALIDATE answer) a close alone.
    match back.read_frame(Duration::from_secs(10)).await {
        Read::Frame(b) => {
            let rsp = ConnectResponse::from_bytes(&b).expect("ConnectResponse");
            assert_eq!(
                (rsp.session_id, rsp.time_out),
                (0, 0),
                "an expired session was resumed"
            );
            assert!(back.closed_within(Duration::from_secs(5)).await);
        }
        Read::Closed => {}
        Read::Timeout => panic!("no answer after the release"),
    }
    e.note("the expired session was refused once the leader answered");
}
