//! Every data opcode through the `zookeeper-client` crate, with the Stat rules ZooKeeper
//! follows (compared as relations between zxids, never as absolute values).

mod common;

use std::time::Duration;

use common::*;
use zk::{CreateMode, Error};
use zookeeper_client as zk;

#[tokio::test]
async fn create_persistent_stat_and_parent_stat() {
    let srv = TestServer::start(&[]);
    let c = srv.client().await;
    let (pstat, seq) = c.create("/p", b"parent", &anyone()).await.unwrap();
    assert_eq!(seq.into_i64(), -1);
    assert_eq!(pstat.czxid, pstat.mzxid);
    assert_eq!(pstat.czxid, pstat.pzxid);
    assert_eq!((pstat.version, pstat.cversion, pstat.aversion), (0, 0, 0));
    assert_eq!(pstat.ephemeral_owner, 0);
    assert_eq!(pstat.data_length, 6);
    assert_eq!(pstat.num_children, 0);
    assert_eq!(pstat.ctime, pstat.mtime);

    let (cstat, _) = c.create("/p/c", b"", &anyone()).await.unwrap();
    assert!(cstat.czxid > pstat.czxid);
    assert_eq!(cstat.data_length, 0);

    let (data, p2) = c.get_data("/p").await.unwrap();
    assert_eq!(data, b"parent");
    // A child's creation changes the parent's pzxid/cversion/numChildren only.
    assert_eq!(p2.pzxid, cstat.czxid);
    assert_eq!(p2.cversion, 1);
    assert_eq!(p2.num_children, 1);
    assert_eq!(p2.mzxid, pstat.mzxid);
    assert_eq!(p2.version, 0);
    assert_eq!(p2.czxid, pstat.czxid);

    // The create2 Stat equals what a later read sees.
    let (_, c2) = c.get_data("/p/c").await.unwrap();
    assert_eq!(c2, cstat);

    assert_eq!(
        c.create("/p/c", b"", &anyone()).await.unwrap_err(),
        Error::NodeExists
    );
    assert_eq!(
        c.create("/missing/c", b"", &anyone()).await.unwrap_err(),
        Error::NoNode
    );
}

#[tokio::test]
async fn sequential_names_follow_parent_cversion() {
    let srv = TestServer::start(&[]);
    let c = srv.client().await;
    c.create("/q", b"", &anyone()).await.unwrap();
    let (_, s0) = c
        .create("/q/a-", b"", &mode(CreateMode::PersistentSequential))
        .await
        .unwrap();
    assert_eq!(s0.into_i64(), 0);
    c.create("/q/plain", b"", &anyone()).await.unwrap();
    c.delete("/q/plain", None).await.unwrap();
    // ZooKeeper stores cversion as the count of child creations and reports it as
    // `creations * 2 - numChildren` (DataNode.copyStat), so a delete shows as +1 in the
    // Stat while the sequence counter, taken from the stored count, does not move.
    let q = c.check_stat("/q").await.unwrap().unwrap();
    assert_eq!((q.cversion, q.num_children), (3, 1));
    let (st, s1) = c
        .create("/q/b-", b"", &mode(CreateMode::EphemeralSequential))
        .await
        .unwrap();
    assert_eq!(s1.into_i64(), 2);
    assert_eq!(st.ephemeral_owner, c.session_id().0);
    let q = c.check_stat("/q").await.unwrap().unwrap();
    assert_eq!((q.cversion, q.num_children), (4, 2));
    let mut kids = c.list_children("/q").await.unwrap();
    kids.sort();
    assert_eq!(kids, vec!["a-0000000000", "b-0000000002"]);
    // A sequential name at the root works too and has ten digits.
    let (_, s) = c
        .create("/r", b"", &mode(CreateMode::PersistentSequential))
        .await
        .unwrap();
    let root = c.list_children("/").await.unwrap();
    assert!(root.contains(&format!("r{s}")), "{root:?}");
}

#[tokio::test]
async fn ephemeral_owner_and_no_children_for_ephemerals() {
    let srv = TestServer::start(&[]);
    let c = srv.client().await;
    let (st, _) = c
        .create("/e", b"x", &mode(CreateMode::Ephemeral))
        .await
        .unwrap();
    assert_eq!(st.ephemeral_owner, c.session_id().0);
    assert_eq!(
        c.create("/e/child", b"", &anyone()).await.unwrap_err(),
        Error::NoChildrenForEphemerals
    );
    assert_eq!(c.list_ephemerals("/").await.unwrap(), vec!["/e"]);
}

#[tokio::test]
async fn container_and_ttl_nodes() {
    let srv = TestServer::start(&[
        "extendedTypesEnabled=true",
        "znode.container.checkIntervalMs=100",
    ]);
    let c = srv.client().await;
    let (st, _) = c
        .create("/box", b"", &mode(CreateMode::Container))
        .await
        .unwrap();
    // Containers and TTL nodes keep a special ephemeralOwner internally, but clients
    // are shown 0 (DataNode.getClientEphemeralOwner).
    assert_eq!(st.ephemeral_owner, 0);
    let ttl = mode(CreateMode::Persistent).with_ttl(Duration::from_millis(300));
    let (tst, _) = c.create("/ttl", b"", &ttl).await.unwrap();
    assert_eq!(tst.ephemeral_owner, 0);
    assert_eq!(
        c.check_stat("/ttl").await.unwrap().unwrap().ephemeral_owner,
        0
    );
    let sttl = mode(CreateMode::PersistentSequential).with_ttl(Duration::from_millis(300));
    let (_, seq) = c.create("/box/t-", b"", &sttl).await.unwrap();
    let seq_path = format!("/box/t-{seq}");

    // An empty container that never had children is kept; the TTL node and the
    // sequential TTL child are removed once their TTL passes; then the container,
    // having had a child, is removed as well.
    let gone = eventually(Duration::from_secs(10), || async {
        c.check_stat("/ttl").await.unwrap().is_none()
            && c.check_stat(&seq_path).await.unwrap().is_none()
            && c.check_stat("/box").await.unwrap().is_none()
    })
    .await;
    assert!(gone, "ttl nodes and emptied container should be deleted");

    let (_, _) = c
        .create("/box2", b"", &mode(CreateMode::Container))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        c.check_stat("/box2").await.unwrap().is_some(),
        "a container that never had a child is not deleted"
    );
}

#[tokio::test]
async fn ttl_refused_without_extended_types() {
    let srv = TestServer::start(&[]);
    let c = srv.client().await;
    let ttl = mode(CreateMode::Persistent).with_ttl(Duration::from_secs(5));
    assert_eq!(
        c.create("/ttl", b"", &ttl).await.unwrap_err(),
        Error::Unimplemented
    );
}

#[tokio::test]
async fn delete_with_versions() {
    let srv = TestServer::start(&[]);
    let c = srv.client().await;
    c.create("/d", b"", &anyone()).await.unwrap();
    let (kid, _) = c.create("/d/k", b"", &anyone()).await.unwrap();
    c.set_data("/d/k", b"1", None).await.unwrap();
    assert_eq!(c.delete("/d", None).await.unwrap_err(), Error::NotEmpty);
    assert_eq!(
        c.delete("/d/k", Some(0)).await.unwrap_err(),
        Error::BadVersion
    );
    assert_eq!(c.delete("/d/none", None).await.unwrap_err(), Error::NoNode);
    let (_, before) = c.get_data("/d").await.unwrap();
    c.delete("/d/k", Some(1)).await.unwrap();
    let (_, after) = c.get_data("/d").await.unwrap();
    assert!(after.pzxid > kid.czxid);
    assert_eq!(after.cversion, before.cversion + 1);
    assert_eq!(after.num_children, 0);
    assert_eq!(after.mzxid, before.mzxid);
    assert!(c.check_stat("/d/k").await.unwrap().is_none());
    c.delete("/d", Some(0)).await.unwrap();
    assert_eq!(c.get_data("/d").await.unwrap_err(), Error::NoNode);
}

#[tokio::test]
async fn exists_get_and_set_data_stats() {
    let srv = TestServer::start(&[]);
    let c = srv.client().await;
    assert_eq!(c.check_stat("/x").await.unwrap(), None);
    let (created, _) = c.create("/x", b"abc", &anyone()).await.unwrap();
    assert_eq!(c.check_stat("/x").await.unwrap(), Some(created));
    let set = c.set_data("/x", b"hello", Some(0)).await.unwrap();
    assert_eq!(set.version, 1);
    assert_eq!(set.czxid, created.czxid);
    assert!(set.mzxid > created.mzxid);
    assert_eq!(set.pzxid, created.pzxid, "setData leaves pzxid alone");
    assert_eq!(set.data_length, 5);
    assert!(set.mtime >= set.ctime);
    assert_eq!(
        c.set_data("/x", b"z", Some(0)).await.unwrap_err(),
        Error::BadVersion
    );
    assert_eq!(
        c.set_data("/nope", b"z", None).await.unwrap_err(),
        Error::NoNode
    );
    let set2 = c.set_data("/x", b"", None).await.unwrap();
    assert_eq!(set2.version, 2);
    assert_eq!(set2.data_length, 0);
    let (data, st) = c.get_data("/x").await.unwrap();
    assert!(data.is_empty());
    assert_eq!(st, set2);
}

#[tokio::test]
async fn get_and_set_acl_versions() {
    let srv = TestServer::start(&[]);
    let c = srv.client().await;
    let (created, _) = c.create("/a", b"", &anyone()).await.unwrap();
    let (acl, st) = c.get_acl("/a").await.unwrap();
    assert_eq!(acl, zk::Acls::anyone_all().to_vec());
    assert_eq!(st, created);
    let read_only = [zk::Acl::new(
        zk::Permission::READ | zk::Permission::ADMIN,
        zk::AuthId::anyone(),
    )];
    let st = c.set_acl("/a", &read_only, Some(0)).await.unwrap();
    assert_eq!(st.aversion, 1);
    assert_eq!(st.version, 0);
    assert_eq!(st.mzxid, created.mzxid, "setACL does not touch mzxid");
    assert_eq!(
        c.set_acl("/a", &read_only, Some(0)).await.unwrap_err(),
        Error::BadVersion
    );
    assert_eq!(c.get_acl("/a").await.unwrap().0, read_only.to_vec());
    assert_eq!(
        c.set_data("/a", b"x", None).await.unwrap_err(),
        Error::NoAuth
    );
    assert_eq!(c.get_acl("/zz").await.unwrap_err(), Error::NoNode);
}

#[tokio::test]
async fn children_children2_and_counts() {
    let srv = TestServer::start(&[]);
    let c = srv.client().await;
    c.create("/t", b"", &anyone()).await.unwrap();
    for n in ["a", "b", "c"] {
        c.create(&format!("/t/{n}"), b"", &anyone()).await.unwrap();
    }
    c.create("/t/a/deep", b"", &anyone()).await.unwrap();
    c.create("/t/a/deep/er", b"", &anyone()).await.unwrap();
    let mut kids = c.list_children("/t").await.unwrap();
    kids.sort();
    assert_eq!(kids, vec!["a", "b", "c"]);
    let (mut kids2, st) = c.get_children("/t").await.unwrap();
    kids2.sort();
    assert_eq!(kids2, kids);
    assert_eq!(st, c.check_stat("/t").await.unwrap().unwrap());
    assert_eq!(st.num_children, 3);
    assert_eq!(st.cversion, 3);
    assert_eq!(c.count_descendants_number("/t").await.unwrap(), 5);
    assert_eq!(c.count_descendants_number("/t/b").await.unwrap(), 0);
    assert_eq!(
        c.count_descendants_number("/none").await.unwrap_err(),
        Error::NoNode
    );
    assert_eq!(c.list_children("/none").await.unwrap_err(), Error::NoNode);
    assert!(c
        .list_children("/")
        .await
        .unwrap()
        .contains(&"zookeeper".to_string()));
}

#[tokio::test]
async fn sync_and_root_and_system_nodes() {
    let srv = TestServer::start(&[]);
    let c = srv.client().await;
    c.sync("/").await.unwrap();
    c.create("/s", b"", &anyone()).await.unwrap();
    c.sync("/s").await.unwrap();
    let root = c.check_stat("/").await.unwrap().unwrap();
    assert_eq!(root.czxid, 0);
    assert_eq!(root.ephemeral_owner, 0);
    let mut zkkids = c.list_children("/zookeeper").await.unwrap();
    zkkids.sort();
    assert_eq!(zkkids, vec!["config", "quota"]);
}

#[tokio::test]
async fn get_ephemerals_lists_only_own_session() {
    let srv = TestServer::start(&[]);
    let a = srv.client().await;
    let b = srv.client().await;
    a.create("/app", b"", &anyone()).await.unwrap();
    a.create("/app/a1", b"", &mode(CreateMode::Ephemeral))
        .await
        .unwrap();
    a.create("/app/a2", b"", &mode(CreateMode::Ephemeral))
        .await
        .unwrap();
    a.create("/other", b"", &mode(CreateMode::Ephemeral))
        .await
        .unwrap();
    b.create("/app/b1", b"", &mode(CreateMode::Ephemeral))
        .await
        .unwrap();
    let mut mine = a.list_ephemerals("/app").await.unwrap();
    mine.sort();
    assert_eq!(mine, vec!["/app/a1", "/app/a2"]);
    let mut all = a.list_ephemerals("/").await.unwrap();
    all.sort();
    assert_eq!(all, vec!["/app/a1", "/app/a2", "/other"]);
    assert_eq!(b.list_ephemerals("/").await.unwrap(), vec!["/app/b1"]);
    // A prefix, not a path: "/app/a" matches both a1 and a2.
    assert_eq!(a.list_ephemerals("/app/a").await.unwrap().len(), 2);
    assert!(a.list_ephemerals("/nothing").await.unwrap().is_empty());
}

#[tokio::test]
async fn reconfig_is_disabled() {
    let srv = TestServer::start(&[]);
    let c = srv.client().await;
    let servers = ["server.1=127.0.0.1:2888:3888"];
    let update = zk::EnsembleUpdate::New {
        ensemble: servers.iter().copied(),
    };
    assert_eq!(
        c.update_ensemble(update, None).await.unwrap_err(),
        Error::ReconfigDisabled
    );
}
