//! `globalOutstandingLimit` is server-wide, as ZooKeeper documents it: a server with a
//! tiny limit and several shards throttles its clients (stops reading) but answers
//! every request in the end, on every shard; nothing deadlocks and nothing fails.

mod common;

use common::*;
use zookeeper_client as zk;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiny_server_wide_limit_throttles_but_answers_everything() {
    let srv = TestServer::start(&["globalOutstandingLimit=2", "shards=2"]);
    let setup = srv.client().await;
    setup.create("/t", b"", &anyone()).await.unwrap();
    // Sixteen sessions (spread over the shards by the kernel), each with 50 writes and
    // 50 reads in flight at once: far past the limit on every shard.
    let mut tasks = Vec::new();
    for s in 0..16 {
        let c: zk::Client = srv.client().await;
        tasks.push(tokio::spawn(async move {
            let opts = anyone();
            let paths: Vec<String> = (0..50).map(|k| format!("/t/s{s}-{k}")).collect();
            let writes: Vec<_> = paths.iter().map(|p| c.create(p, b"v", &opts)).collect();
            for w in writes {
                w.await.expect("a throttled create");
            }
            let reads: Vec<_> = paths.iter().map(|p| c.get_data(p)).collect();
            for r in reads {
                assert_eq!(&r.await.expect("a throttled read").0[..], b"v");
            }
        }));
    }
    for t in tasks {
        within(60, "a throttled session", t).await.unwrap();
    }
    let (children, _) = setup.get_children("/t").await.unwrap();
    assert_eq!(children.len(), 16 * 50);
}
