//! Watches and session expiry at scale, on a real server (issue 12, items 2 and 3),
//! checked for what they must do, not timed (the timings are benchmarks):
//!
//! - an expiry storm: 2,000 sessions, each with an ephemeral, expire together while
//!   another client writes and reads: every ephemeral goes, every watch on them fires
//!   exactly once, and every request of the other client is answered;
//! - a fan-out: one change watched by 1,000 sessions notifies each exactly once, and
//!   `wchs` counts the watches before and after.
//!
//! Raw connections (tests/common/raw.rs) for the many sessions: they send nothing
//! unless told, so dropping them lets their sessions expire, and their frames are
//! read one by one.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::raw::*;
use common::*;
use corral::proto::*;

/// Opens `n` sessions with `timeout_ms`, 100 handshakes in flight at a time.
async fn open_sessions(addr: std::net::SocketAddr, n: usize, timeout_ms: i32) -> Vec<RawConn> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let mut chunk = Vec::new();
        for _ in 0..(n - out.len()).min(100) {
            let mut c = RawConn::open(addr).await;
            c.send_frame(&connect_request(timeout_ms, 0, &[0; 16]).to_bytes())
                .await;
            chunk.push(c);
        }
        for c in chunk.iter_mut() {
            match c.read_frame(Duration::from_secs(10)).await {
                Read::Frame(b) => {
                    let r = ConnectResponse::from_bytes(&b).expect("ConnectResponse");
                    assert_ne!(r.session_id, 0, "a session refused");
                }
                other => panic!("no ConnectResponse: {other:?}"),
            }
        }
        out.extend(chunk);
    }
    out
}

/// Sends `req(i)` on connection i, all before reading any reply; each must succeed.
async fn on_each(conns: &mut [RawConn], op: OpCode, req: impl Fn(usize) -> Box<dyn JuteDyn>) {
    let mut xids = Vec::with_capacity(conns.len());
    for (i, c) in conns.iter_mut().enumerate() {
        xids.push(c.send(op.as_i32(), Some(req(i).as_ref())).await);
    }
    for (i, c) in conns.iter_mut().enumerate() {
        let r = c.reply().await;
        assert_eq!(
            (r.header.xid, r.err()),
            (xids[i], 0),
            "{op:?} on session {i}"
        );
    }
}

/// A ping on every connection, all sent before any reply is read: their sessions'
/// deadlines move to the same moment (within the time the sends take).
async fn ping_all(conns: &mut [RawConn]) {
    for c in conns.iter_mut() {
        c.send_xid(xid::PING, OpCode::Ping.as_i32(), None).await;
    }
    for c in conns.iter_mut() {
        let r = c.reply().await;
        assert_eq!(r.header.xid, xid::PING);
    }
}

/// `wchs` once it shows `total` watches (corral's shards publish their counts every
/// 200 ms, so another shard's may lag that much).
async fn wchs_when_total(addr: std::net::SocketAddr, total: u64) -> (u64, u64, u64) {
    let mut last = (0, 0, 0);
    let seen = eventually(Duration::from_secs(10), || {
        last = wchs_numbers(addr);
        std::future::ready(last.2 == total)
    })
    .await;
    assert!(seen, "wchs shows {last:?}, not {total} watches");
    last
}

fn wchs_numbers(addr: std::net::SocketAddr) -> (u64, u64, u64) {
    let text = four_letter_word_blocking(addr, "wchs").expect("wchs answered");
    // "N connections watching M paths\nTotal watches:T\n"
    let words: Vec<&str> = text.split_whitespace().collect();
    let total = text
        .split("Total watches:")
        .nth(1)
        .and_then(|t| t.trim().parse().ok());
    match (words.first(), words.get(3), total) {
        (Some(c), Some(p), Some(t)) => (c.parse().unwrap(), p.parse().unwrap(), t),
        _ => panic!("unexpected wchs: {text:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiry_storm_deletes_every_ephemeral_and_fires_every_watch_once() {
    const N: usize = 2_000;
    // Ticks of 200 ms: sessions may ask 400 ms to 4 s.
    let srv = TestServer::start(&["tickTime=200", "maxClientCnxns=0"]);
    let addr = srv.addr;
    let (mut admin, _) = RawConn::connect(addr).await;
    let r = admin
        .call(
            OpCode::Create,
            Some(&create_req("/storm", b"", 0) as &dyn JuteDyn),
        )
        .await;
    assert_eq!(r.err(), 0);
    let r = admin
        .call(
            OpCode::Create,
            Some(&create_req("/load", b"0", 0) as &dyn JuteDyn),
        )
        .await;
    assert_eq!(r.err(), 0);

    let mut storm = open_sessions(addr, N, 4_000).await;
    on_each(&mut storm, OpCode::Create, |i| {
        Box::new(create_req(&format!("/storm/e{i:05}"), b"", 1))
    })
    .await;

    // The watcher: an exists watch on every ephemeral and a child watch on /storm.
    let mut w = RawConn::open(addr).await;
    w.handshake(&connect_request(4_000, 0, &[0; 16])).await;
    for i in 0..N {
        let req = ExistsRequest {
            path: format!("/storm/e{i:05}"),
            watch: true,
        };
        w.send(OpCode::Exists.as_i32(), Some(&req)).await;
    }
    for i in 0..N {
        assert_eq!(w.reply().await.err(), 0, "exists /storm/e{i:05}");
    }
    let req = GetChildrenRequest {
        path: "/storm".into(),
        watch: true,
    };
    let r = w
        .call(OpCode::GetChildren, Some(&req as &dyn JuteDyn))
        .await;
    assert_eq!(r.decode::<GetChildrenResponse>().children.len(), N);

    // Another client writes and reads all through the storm (in this task, beside
    // the watcher: the raw connection's futures are not Send).
    let stop = AtomicBool::new(false);
    let answered = AtomicU64::new(0);
    let load = async {
        {
            let mut c = RawConn::open(addr).await;
            c.handshake(&connect_request(4_000, 0, &[0; 16])).await;
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let set = SetDataRequest {
                    path: "/load".into(),
                    data: bytes::Bytes::from(i.to_string()),
                    version: -1,
                };
                let r = c.call(OpCode::SetData, Some(&set as &dyn JuteDyn)).await;
                assert_eq!(r.err(), 0, "setData {i} during the storm");
                let get = GetDataRequest {
                    path: "/load".into(),
                    watch: false,
                };
                let r = c.call(OpCode::GetData, Some(&get as &dyn JuteDyn)).await;
                assert_eq!(r.err(), 0, "getData {i} during the storm");
                assert_eq!(r.decode::<GetDataResponse>().data, i.to_string().as_bytes());
                answered.fetch_add(2, Ordering::Relaxed);
                i += 1;
            }
        }
    };

    // Every storm session is seen at once, then goes silent: they expire together.
    ping_all(&mut storm).await;
    drop(storm);
    let watch = async {
        // Each ephemeral's deletion reaches the watcher once, and /storm's child watch once.
        let mut deleted: HashMap<String, u32> = HashMap::new();
        let mut children_changed = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while deleted.len() < N || children_changed == 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {} of {N} deletions seen; server output:\n{}",
                deleted.len(),
                srv.output()
            );
            // A ping keeps the watcher's own session alive while it waits.
            w.send_xid(xid::PING, OpCode::Ping.as_i32(), None).await;
            let r = w.reply().await;
            assert_eq!(r.header.xid, xid::PING);
            for ev in w.events.drain(..) {
                if ev.r#type == EventType::NodeDeleted as i32 {
                    *deleted.entry(ev.path).or_default() += 1;
                } else if ev.r#type == EventType::NodeChildrenChanged as i32 {
                    assert_eq!(ev.path, "/storm");
                    children_changed += 1;
                } else {
                    panic!("unexpected event type {} on {}", ev.r#type, ev.path);
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Nothing more comes: a ping's reply after everything the storm could send.
        tokio::time::sleep(Duration::from_millis(500)).await;
        w.send_xid(xid::PING, OpCode::Ping.as_i32(), None).await;
        w.reply().await;
        for ev in w.events.drain(..) {
            if ev.r#type == EventType::NodeDeleted as i32 {
                *deleted.entry(ev.path).or_default() += 1;
            } else {
                children_changed += 1;
            }
        }
        assert_eq!(children_changed, 1, "the child watch fires once");
        assert_eq!(deleted.len(), N);
        for i in 0..N {
            assert_eq!(
                deleted.get(&format!("/storm/e{i:05}")),
                Some(&1),
                "/storm/e{i:05} deleted once"
            );
        }
        let req = GetChildrenRequest {
            path: "/storm".into(),
            watch: false,
        };
        let r = w
            .call(OpCode::GetChildren, Some(&req as &dyn JuteDyn))
            .await;
        assert!(r.decode::<GetChildrenResponse>().children.is_empty());
        stop.store(true, Ordering::Relaxed);
    };
    tokio::join!(load, watch);
    assert!(answered.load(Ordering::Relaxed) > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_change_watched_by_1000_sessions_notifies_each_once() {
    const N: usize = 1_000;
    let srv = TestServer::start(&["maxClientCnxns=0"]);
    let addr = srv.addr;
    let (mut writer, _) = RawConn::connect(addr).await;
    let r = writer
        .call(
            OpCode::Create,
            Some(&create_req("/fan", b"0", 0) as &dyn JuteDyn),
        )
        .await;
    assert_eq!(r.err(), 0);
    let before = wchs_numbers(addr);
    let mut watchers = open_sessions(addr, N, 10_000).await;
    on_each(&mut watchers, OpCode::GetData, |_| {
        Box::new(GetDataRequest {
            path: "/fan".into(),
            watch: true,
        })
    })
    .await;
    let (conns, paths, _) = wchs_when_total(addr, before.2 + N as u64).await;
    assert_eq!(conns, before.0 + N as u64);
    // One path, counted once per shard that has watchers on it (corral sums the
    // shards' counters; ZooKeeper has one table).
    let shards = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let more = paths - before.1;
    assert!(more >= 1 && more <= shards, "{paths} paths");

    for v in [b"1", b"2"] {
        let set = SetDataRequest {
            path: "/fan".into(),
            data: bytes::Bytes::copy_from_slice(v),
            version: -1,
        };
        assert_eq!(
            writer
                .call(OpCode::SetData, Some(&set as &dyn JuteDyn))
                .await
                .err(),
            0
        );
    }
    // The second write is acknowledged only once every shard applied it, and each
    // shard queues a change's events before anything after it: a ping's reply on
    // each connection comes after every event it will ever get for these writes.
    ping_all(&mut watchers).await;
    for (i, c) in watchers.iter_mut().enumerate() {
        assert_eq!(c.events.len(), 1, "session {i}: {:?}", c.events);
        let ev = &c.events[0];
        assert_eq!(
            (ev.r#type, ev.path.as_str()),
            (EventType::NodeDataChanged as i32, "/fan"),
            "session {i}"
        );
    }
    // The one-shot watches are consumed.
    let (conns_after, _, _) = wchs_when_total(addr, before.2).await;
    // As in ZooKeeper, a connection whose watch fired stays counted until it closes.
    assert_eq!(conns_after, conns);
}
