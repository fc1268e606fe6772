//! A cross-check of the benchmark's headline read figure with a client library that is
//! not ours: the `zookeeper-client` crate, pipelining getData of 100-byte znodes from
//! S sessions with K requests in flight each, closed loop, counting successful replies
//! only (any error stops the run with a non-zero exit).
//!
//!   cargo run --release --example zk_client_reads -- HOST:PORT [SESSIONS] [IN_FLIGHT] [SECONDS]
//!
//! `tools/bench-vs-zookeeper` runs the same load with corral-bench; this program shares
//! no code with it, so a figure both agree on is not an artefact of our own client.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use zookeeper_client as zk;

const KEYS: usize = 1000;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let host = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "127.0.0.1:2181".into());
    let sessions: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(8);
    let in_flight: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(16);
    let seconds: u64 = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(10);

    let connect = || async {
        zk::Client::connector()
            .with_session_timeout(Duration::from_secs(20))
            .connect(&host)
            .await
            .unwrap_or_else(|e| {
                eprintln!("cannot connect to {host}: {e}");
                std::process::exit(2)
            })
    };
    let setup = connect().await;
    let opts = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    let value = vec![b'v'; 100];
    match setup.create("/zkcr", b"", &opts).await {
        Ok(_) | Err(zk::Error::NodeExists) => {}
        Err(e) => panic!("create /zkcr: {e}"),
    }
    let paths: Arc<Vec<String>> = Arc::new((0..KEYS).map(|k| format!("/zkcr/k{k}")).collect());
    for p in paths.iter() {
        match setup.create(p, &value, &opts).await {
            Ok(_) | Err(zk::Error::NodeExists) => {}
            Err(e) => panic!("create {p}: {e}"),
        }
    }

    let ok = Arc::new(AtomicU64::new(0));
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for s in 0..sessions {
        let c = connect().await;
        for w in 0..in_flight {
            let (c, paths, ok, measuring, stop) = (
                c.clone(),
                paths.clone(),
                ok.clone(),
                measuring.clone(),
                stop.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut i = s * in_flight + w;
                while !stop.load(Ordering::Relaxed) {
                    let (data, _) = c
                        .get_data(&paths[i % KEYS])
                        .await
                        .unwrap_or_else(|e| panic!("getData: {e}"));
                    assert_eq!(data.len(), 100);
                    if measuring.load(Ordering::Relaxed) {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    i += 7;
                }
            }));
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    measuring.store(true, Ordering::Relaxed);
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let n = ok.load(Ordering::Relaxed);
    let took = t0.elapsed();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        if t.await.is_err() {
            eprintln!("a reader failed");
            std::process::exit(1);
        }
    }
    println!(
        "{host}: {sessions} sessions x {in_flight} in flight: {:.0} ok getData/s over {:.1} s",
        n as f64 / took.as_secs_f64(),
        took.as_secs_f64()
    );
}
