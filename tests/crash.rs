//! Process-level crash test of durability: several sessions write with pipelining while
//! every acknowledged write is recorded, corral is killed with SIGKILL at a random
//! moment, restarted on the same data dir, and the recovered tree must hold every
//! acknowledged write, with each session's writes forming a prefix of what it sent (no
//! write present whose predecessor from the same session is missing).
//!
//! Cycles: 20 by default, `CORRAL_CRASH_CYCLES=N` for more; `CORRAL_CRASH_SEED=S`
//! replays a run (the seed is printed). Cycles vary snapCount (small ones make snapshots
//! happen while writes go on) and preAllocSize (small segments roll over often), on one
//! data dir that grows across cycles, and every cycle also re-checks what earlier cycles
//! recovered: a later crash must not lose it.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::durable::DurableServer;
use common::*;
use rand::{Rng, SeedableRng};
use zookeeper_client as zk;

const SESSIONS: usize = 4;
/// Keys each session owns; write i goes to key i % KEYS (a create the first time, a
/// setData after), so a key's value names the last write to it that survived.
const KEYS: usize = 8;
/// Writes each session keeps in flight.
const WINDOW: usize = 16;

fn key_path(cycle: usize, s: usize, j: usize) -> String {
    format!("/c{cycle}s{s}k{j}")
}

/// The value of write `i`; padded so that frames are big enough to roll small segments.
fn value(cycle: usize, s: usize, i: usize, pad: usize) -> Vec<u8> {
    let mut v = format!("c{cycle}s{s}w{i}-").into_bytes();
    v.resize(v.len() + pad, b'x');
    v
}

/// Parses the write index out of `value(cycle, s, ..)`.
fn index_of(cycle: usize, s: usize, data: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(data).ok()?;
    let rest = text.strip_prefix(&format!("c{cycle}s{s}w"))?;
    let (i, pad) = rest.split_once('-')?;
    if !pad.bytes().all(|b| b == b'x') {
        return None;
    }
    i.parse().ok()
}

/// One session's keys as recovered: per key, (write index, version, data) or absent.
type KeyState = Vec<Option<(usize, i32, Vec<u8>)>>;

/// What one session sent and what the server acknowledged (replies arrived OK).
#[derive(Debug, Default, Clone)]
struct Progress {
    sent: usize,
    /// Acknowledged write indices in the order the replies arrived.
    acked: Vec<usize>,
    /// The error that ended the session's run (connection loss after the kill).
    ended_by: Option<String>,
}

/// One session's writer: keeps WINDOW writes in flight until a write fails.
async fn writer(
    client: zk::Client,
    cycle: usize,
    s: usize,
    pad: usize,
    progress: Arc<Mutex<Progress>>,
) {
    type Pending<'a> =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), zk::Error>> + Send + 'a>>;
    let paths: Vec<String> = (0..KEYS).map(|j| key_path(cycle, s, j)).collect();
    let opts = anyone();
    let mut inflight: std::collections::VecDeque<(usize, Pending<'_>)> = Default::default();
    let mut next = 0usize;
    loop {
        while inflight.len() < WINDOW {
            let i = next;
            next += 1;
            let data = value(cycle, s, i, pad);
            let path = &paths[i % KEYS];
            // The request is queued on the connection when the call returns, so requests
            // go out in order and replies come back in order.
            let fut: Pending<'_> = if i < KEYS {
                let f = client.create(path, &data, &opts);
                Box::pin(async move { f.await.map(|_| ()) })
            } else {
                let f = client.set_data(path, &data, None);
                Box::pin(async move { f.await.map(|_| ()) })
            };
            progress.lock().unwrap().sent = next;
            inflight.push_back((i, fut));
        }
        let (i, fut) = inflight.pop_front().unwrap();
        match fut.await {
            Ok(()) => progress.lock().unwrap().acked.push(i),
            Err(e) => {
                progress.lock().unwrap().ended_by = Some(format!("write {i}: {e}"));
                return;
            }
        }
    }
}

/// The recovered state of one session's keys: per key, (write index, version).
async fn read_session(client: &zk::Client, cycle: usize, s: usize) -> KeyState {
    // Pipelined: every request is sent before the first reply is awaited.
    let futs: Vec<_> = (0..KEYS)
        .map(|j| client.get_data(&key_path(cycle, s, j)))
        .collect();
    let mut out = Vec::with_capacity(KEYS);
    for (j, f) in futs.into_iter().enumerate() {
        match f.await {
            Ok((data, stat)) => {
                let i = index_of(cycle, s, &data).unwrap_or_else(|| {
                    panic!(
                        "cycle {cycle} session {s} key {j}: value {:?} was never written",
                        String::from_utf8_lossy(&data)
                    )
                });
                out.push(Some((i, stat.version, data)));
            }
            Err(zk::Error::NoNode) => out.push(None),
            Err(e) => panic!("cycle {cycle} session {s} key {j}: get_data failed: {e}"),
        }
    }
    out
}

/// Checks one session's recovered keys against what it sent and what was acknowledged;
/// returns the number of its writes present (they are writes 0..n).
fn check_session(cycle: usize, s: usize, pad: usize, state: &KeyState, p: &Progress) -> usize {
    let who = format!("cycle {cycle} session {s}");
    // Replies come in request order, so the acknowledged writes are 0..k.
    for (n, &i) in p.acked.iter().enumerate() {
        assert_eq!(i, n, "{who}: replies arrived out of order: {:?}", p.acked);
    }
    let present = state
        .iter()
        .flatten()
        .map(|(i, _, _)| i + 1)
        .max()
        .unwrap_or(0);
    // Prefix: if write m-1 is present, every key holds the last write to it below m.
    for (j, got) in state.iter().enumerate() {
        let want = (j < present).then(|| j + KEYS * ((present - 1 - j) / KEYS));
        let got_i = got.as_ref().map(|(i, _, _)| *i);
        assert_eq!(
            got_i,
            want,
            "{who} key {j}: hole in the session's writes: write {} is present, so key {j} \
             should hold write {want:?}, it holds {got_i:?} (sent {}, acked {})",
            present.saturating_sub(1),
            p.sent,
            p.acked.len()
        );
        if let Some((i, version, data)) = got {
            assert_eq!(i % KEYS, j, "{who}: write {i} found under key {j}");
            assert_eq!(
                *version as usize,
                (i - j) / KEYS,
                "{who} key {j}: write {i} present with the wrong version"
            );
            assert_eq!(
                data,
                &value(cycle, s, *i, pad),
                "{who} key {j}: value differs"
            );
        }
    }
    assert!(
        present >= p.acked.len(),
        "{who}: LOST ACKNOWLEDGED WRITES: {} writes acknowledged, only {present} present \
         (sent {}, ended by {:?})",
        p.acked.len(),
        p.sent,
        p.ended_by
    );
    assert!(
        present <= p.sent,
        "{who}: {present} writes present but only {} were sent",
        p.sent
    );
    present
}

/// The config of a cycle: the storage knobs vary so snapshots and roll-overs happen at
/// different moments relative to the kill.
fn cycle_cfg(cycle: usize) -> Vec<&'static str> {
    let snap = match cycle % 3 {
        0 => "snapCount=200",
        1 => "snapCount=50",
        _ => "snapCount=100000",
    };
    let prealloc = match cycle % 4 {
        0 | 1 => "preAllocSize=16",
        2 => "preAllocSize=64",
        _ => "preAllocSize=1024",
    };
    vec![snap, prealloc]
}

async fn crash_cycles(cycles: usize, separate_log_dir: bool) {
    let seed: u64 = std::env::var("CORRAL_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::thread_rng().gen());
    eprintln!("crash test: seed {seed} (CORRAL_CRASH_SEED={seed} replays the kill times)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut srv = DurableServer::new(&[]);
    if separate_log_dir {
        let log_dir = srv.root().join("datalog");
        srv.set_cfg(&[&format!("dataLogDir={}", log_dir.display())]);
    }
    srv.set_cfg(&cycle_cfg(0));
    srv.start();
    // What each earlier (cycle, session) recovered to: must never change afterwards.
    let mut settled: Vec<(usize, usize, usize, KeyState)> = Vec::new();
    let started = Instant::now();
    let (mut total_acked, mut total_present) = (0usize, 0usize);
    for cycle in 0..cycles {
        let pad = rng.gen_range(0..400);
        let mut clients = Vec::new();
        for _ in 0..SESSIONS {
            clients.push(within(15, "connect", srv.client()).await);
        }
        let progress: Vec<Arc<Mutex<Progress>>> = (0..SESSIONS).map(|_| Arc::default()).collect();
        let tasks: Vec<_> = clients
            .into_iter()
            .enumerate()
            .map(|(s, c)| tokio::spawn(writer(c, cycle, s, pad, progress[s].clone())))
            .collect();
        let kill_after = Duration::from_millis(rng.gen_range(30..700));
        tokio::time::sleep(kill_after).await;
        srv.kill9();
        for t in tasks {
            within(30, "writers to notice the kill", t)
                .await
                .expect("writer task");
        }
        let progress: Vec<Progress> = progress.iter().map(|p| p.lock().unwrap().clone()).collect();
        let acked: usize = progress.iter().map(|p| p.acked.len()).sum();
        assert!(
            cycle > 0 || acked > 0,
            "no write was acknowledged before the kill: the test checks nothing"
        );

        srv.set_cfg(&cycle_cfg(cycle + 1));
        srv.start();
        let client = within(15, "connect after restart", srv.client()).await;
        let mut this = Vec::new();
        for (s, p) in progress.iter().enumerate() {
            let state = within(15, "reads", read_session(&client, cycle, s)).await;
            let present = check_session(cycle, s, pad, &state, p);
            total_acked += p.acked.len();
            total_present += present;
            this.push((cycle, s, present, state));
        }
        for (c, s, _, before) in &settled {
            let now = within(15, "reads", read_session(&client, *c, *s)).await;
            assert_eq!(
                &now, before,
                "cycle {c} session {s}: what recovery restored after that cycle changed \
                 after the crash of cycle {cycle}"
            );
        }
        settled.extend(this);
        drop(client);
        eprintln!(
            "cycle {cycle}: killed after {kill_after:?}, {acked} acked, {} segments, {} snapshots",
            srv.segments().len(),
            srv.snapshots().len()
        );
    }
    eprintln!(
        "crash test: {cycles} cycles in {:?}; {total_acked} writes acknowledged, \
         {total_present} present after recovery",
        started.elapsed()
    );
    assert!(srv.segments().len() > 1, "no segment roll-over happened");
    assert!(!srv.snapshots().is_empty(), "no snapshot was taken");
}

fn cycles_from_env(default: usize) -> usize {
    std::env::var("CORRAL_CRASH_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_keeps_every_acknowledged_write() {
    crash_cycles(cycles_from_env(20), false).await;
}

/// The same with the log in its own dataLogDir (snapshots and log segments apart).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_with_separate_data_log_dir() {
    crash_cycles(cycles_from_env(20).div_ceil(4), true).await;
}
