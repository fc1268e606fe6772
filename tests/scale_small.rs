//! Small, fast versions of corral-bench's scale scenarios (issue 12) against a real
//! server: the `corral-bench scale` binary drives each one and checks its own counts
//! (it exits non-zero on any error reply or failed check), and the test then checks
//! the result file's counts and, through a separate client, what the server holds
//! afterwards. Correctness only: nothing here is timed (the costs are benchmarks:
//! `tools/bench-vs-zookeeper --scale`).
//!
//! With `CORRAL_TEST_ZOOKEEPER=1` the same scenarios run against ZooKeeper 3.8.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::Value;

/// Sessions may ask for up to a minute: the expiry scenario's sessions ask for the
/// timeout that ends at one common deadline.
const CFG: &[&str] = &["maxSessionTimeout=60000"];

/// Runs `corral-bench scale --scenario S ARGS` against `srv`; its result JSON.
fn scale(srv: &TestServer, scenario: &str, args: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let out = Command::new(env!("CARGO_BIN_EXE_corral-bench"))
        .args([
            "scale",
            "--scenario",
            scenario,
            "--host",
            &srv.connect_string(),
        ])
        .arg("--json")
        .arg(&json)
        .args([
            "--load-duration",
            "300ms",
            "--load-sessions",
            "2",
            "--load-inflight",
            "4",
        ])
        .args(args)
        .output()
        .expect("run corral-bench");
    let text = std::fs::read_to_string(&json).unwrap_or_default();
    assert!(
        out.status.success(),
        "corral-bench scale {scenario} failed: {}\n{text}\nserver:\n{}",
        String::from_utf8_lossy(&out.stderr),
        srv.output()
    );
    read_result(&json)
}

fn read_result(p: &Path) -> Value {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    assert!(v["failed"].is_null(), "run failed: {v}");
    v
}

/// Every check in the result has got == want.
fn checks_hold(v: &Value) {
    let checks = v["checks"].as_object().expect("checks");
    assert!(!checks.is_empty(), "no checks in {v}");
    for (name, c) in checks {
        assert_eq!(c["got"], c["want"], "check {name}: {c}");
    }
}

fn points(v: &Value) -> &Vec<Value> {
    v["points"].as_array().expect("points")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_held_with_their_watches_and_reads_served() {
    let srv = TestServer::start(CFG);
    let v = scale(&srv, "connections", &["--steps", "200,500"]);
    checks_hold(&v);
    assert_eq!(v["checks"]["sessions_alive_at_end"]["got"], 500);
    let p = points(&v);
    assert_eq!(p.len(), 2);
    for (pt, size) in p.iter().zip([200.0, 500.0]) {
        assert_eq!(pt["size"].as_f64(), Some(size));
        assert!(
            pt["read_ops"].as_f64().unwrap() > 0.0,
            "no read served at {size}: {pt}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiry_storm_removes_every_ephemeral_and_fires_every_watch() {
    let srv = TestServer::start(CFG);
    let v = scale(
        &srv,
        "expiry",
        &[
            "--sessions",
            "2000",
            "--observers",
            "8",
            "--expire-in",
            "8s",
        ],
    );
    checks_hold(&v);
    assert_eq!(v["checks"]["node_deleted_events"]["got"], 2000);
    assert_eq!(v["checks"]["distinct_paths_deleted"]["all_named"], true);
    assert_eq!(v["checks"]["parent_child_events"]["got"], 8);
    let c = srv.client().await;
    assert!(c.list_children("/scale/e").await.unwrap().is_empty());
    // The load ran on through the storm.
    assert!(points(&v)[0]["all_during_ops"].as_f64().unwrap() > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fan_out_notifies_every_watcher_exactly_once_per_change() {
    let srv = TestServer::start(CFG);
    let v = scale(
        &srv,
        "fanout",
        &[
            "--watchers",
            "500",
            "--rounds",
            "2",
            "--watch-paths",
            "1000",
            "--watches-per-conn",
            "20",
        ],
    );
    checks_hold(&v);
    assert_eq!(v["checks"]["notifications"]["got"], 1000);
    assert_eq!(v["checks"]["extra_notifications"]["got"], 0);
    // Both servers answer wchs: the server itself counted the 10,000 watches.
    assert_eq!(v["checks"]["server_total_watches"]["got"], 10_000);
    let c = srv.client().await;
    assert_eq!(c.list_children("/scale/f").await.unwrap().len(), 1001);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tree_grows_in_steps_and_every_znode_is_there() {
    let srv = TestServer::start(CFG);
    let v = scale(&srv, "tree", &["--from", "0", "--to", "12000"]);
    assert_eq!(points(&v)[0]["size"].as_f64(), Some(12000.0));
    let v = scale(&srv, "tree", &["--from", "12000", "--to", "25000"]);
    let p = &points(&v)[0];
    assert!(p["read_ops"].as_f64().unwrap() > 0.0 && p["write_ops"].as_f64().unwrap() > 0.0);
    let c = srv.client().await;
    let buckets = c.list_children("/scale/t").await.unwrap();
    assert_eq!(buckets.len(), 3);
    let mut total = 0;
    for b in &buckets {
        total += c
            .list_children(&format!("/scale/t/{b}"))
            .await
            .unwrap()
            .len();
    }
    assert_eq!(total, 25_000);
    assert_eq!(c.get_data("/scale/t/b2/n24999").await.unwrap().0.len(), 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wide_node_takes_and_lists_and_loses_all_its_children() {
    let srv = TestServer::start(CFG);
    let v = scale(&srv, "wide", &["--children", "20000"]);
    checks_hold(&v);
    assert_eq!(points(&v)[0]["size"].as_f64(), Some(20000.0));
    let c = srv.client().await;
    assert!(c.list_children("/scale/w").await.unwrap().is_empty());
}
