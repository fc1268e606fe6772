use super::*;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

#[test]
fn fresh_tree_matches_zookeeper() {
    let t = DataTree::new();
    // Values read from a fresh ZooKeeper 3.8.0.
    let root = t.stat("/").unwrap();
    assert_eq!((root.cversion, root.num_children, root.pzxid), (-1, 1, 0));
    let zk = t.stat("/zookeeper").unwrap();
    assert_eq!((zk.cversion, zk.num_children), (-2, 2));
    let q = t.stat("/zookeeper/quota").unwrap();
    assert_eq!((q.cversion, q.num_children, q.aversion), (0, 0, 0));
    let c = t.stat("/zookeeper/config").unwrap();
    assert_eq!(c.aversion, -1);
    assert_eq!(
        &**t.acl_of("/zookeeper/config").unwrap(),
        &read_acl_unsafe()[..]
    );
    assert_eq!(&**t.acl_of("/").unwrap(), &open_acl_unsafe()[..]);
    assert_eq!(t.node_count(), 5);
    assert_eq!(t.znode_count(), 4);
    assert_eq!(t.approximate_data_size(), 44);
    assert_eq!(t.all_children_number("/"), Some(3));
    assert_eq!(t.all_children_number("/zookeeper"), Some(2));
    assert_eq!(t.last_processed_zxid(), 0);
    // "" is the root, as in ZooKeeper.
    assert_eq!(t.stat(""), t.stat("/"));
}

#[test]
fn create_sets_stat_and_parent_cversion_pzxid() {
    let mut t = DataTree::new();
    let s = t
        .create_node("/a", b("xy"), &open_acl_unsafe(), 0, 1, 7, 1000)
        .unwrap();
    assert_eq!((s.czxid, s.mzxid, s.pzxid), (7, 7, 7));
    assert_eq!((s.ctime, s.mtime), (1000, 1000));
    assert_eq!((s.version, s.cversion, s.aversion), (0, 0, 0));
    assert_eq!(
        (s.data_length, s.num_children, s.ephemeral_owner),
        (2, 0, 0)
    );
    let root = t.stat("/").unwrap();
    // cversion 1 with two children shows as 1*2-2 = 0, as ZooKeeper shows it.
    assert_eq!((root.cversion, root.pzxid, root.num_children), (0, 7, 2));
    // A stale parent_cversion (replay) changes neither cversion nor pzxid.
    t.create_node("/b", b(""), &open_acl_unsafe(), 0, 1, 8, 1000)
        .unwrap();
    let root = t.stat("/").unwrap();
    assert_eq!((root.pzxid, root.num_children), (7, 3));
    assert_eq!(t.get("/").unwrap().persisted().cversion, 1);
    // -1 means one more than now.
    t.create_node("/a/c", b(""), &open_acl_unsafe(), 0, -1, 9, 1000)
        .unwrap();
    assert_eq!(t.get("/a").unwrap().persisted().cversion, 1);
    assert_eq!(t.stat("/a").unwrap().pzxid, 9);
    assert_eq!(
        t.create_node("/a", b(""), &open_acl_unsafe(), 0, 5, 10, 0),
        Err(ErrorCode::NodeExists)
    );
    assert_eq!(
        t.create_node("/x/y", b(""), &open_acl_unsafe(), 0, 1, 10, 0),
        Err(ErrorCode::NoNode)
    );
    assert_eq!(
        t.create_node("nope", b(""), &open_acl_unsafe(), 0, 1, 10, 0),
        Err(ErrorCode::NoNode)
    );
}

#[test]
fn delete_moves_pzxid_not_cversion() {
    let mut t = DataTree::new();
    t.create_node("/p", b(""), &open_acl_unsafe(), 0, 1, 2, 0)
        .unwrap();
    t.create_node("/p/c", b("abc"), &open_acl_unsafe(), 0, 1, 3, 0)
        .unwrap();
    let size = t.approximate_data_size();
    t.delete_node("/p/c", 4).unwrap();
    let p = t.stat("/p").unwrap();
    // Raw cversion stays 1; shown as 1*2-0 = 2.
    assert_eq!((p.cversion, p.pzxid, p.num_children), (2, 4, 0));
    assert_eq!(t.approximate_data_size(), size - 4 - 3);
    assert_eq!(t.delete_node("/p/c", 5), Err(ErrorCode::NoNode));
    assert_eq!(t.delete_node("/", 5), Err(ErrorCode::NoNode));
    assert_eq!(t.stat("/p/c"), None);
}

#[test]
fn set_data_and_set_acl() {
    let mut t = DataTree::new();
    t.create_node("/a", b("1"), &open_acl_unsafe(), 0, 1, 2, 10)
        .unwrap();
    let s = t.set_data("/a", b("hello"), 1, 3, 20).unwrap();
    assert_eq!((s.version, s.mzxid, s.mtime, s.data_length), (1, 3, 20, 5));
    assert_eq!((s.czxid, s.ctime), (2, 10));
    assert_eq!(t.approximate_data_size(), 44 + 2 + 5);
    assert_eq!(t.set_data("/nope", b(""), 1, 3, 20), Err(ErrorCode::NoNode));
    assert_eq!(t.acl_cache_size(), 2);
    let s = t.set_acl("/a", &read_acl_unsafe(), 1).unwrap();
    assert_eq!((s.aversion, s.version), (1, 1));
    // The open list lost its only counted user.
    assert_eq!(t.acl_cache_size(), 1);
    assert_eq!(&**t.acl_of("/a").unwrap(), &read_acl_unsafe()[..]);
    t.delete_node("/a", 4).unwrap();
    assert_eq!(t.acl_cache_size(), 1); // /zookeeper/config still holds it
}

#[test]
fn ephemerals_and_sessions() {
    let mut t = DataTree::new();
    t.add_session(5, 3000);
    t.create_node("/e1", b(""), &open_acl_unsafe(), 5, -1, 2, 0)
        .unwrap();
    t.create_node("/e0", b(""), &open_acl_unsafe(), 5, -1, 3, 0)
        .unwrap();
    assert_eq!(t.stat("/e1").unwrap().ephemeral_owner, 5);
    assert_eq!(t.ephemerals(5), vec!["/e0".to_string(), "/e1".to_string()]);
    assert_eq!(t.ephemeral_count(), 2);
    assert_eq!(t.session_timeout(5), Some(3000));
    assert_eq!(t.sessions(), vec![(5, 3000)]);
    t.delete_node("/e0", 4).unwrap();
    assert_eq!(t.ephemerals(5), vec!["/e1".to_string()]);
    assert_eq!(t.remove_session(5), vec!["/e1".to_string()]);
    assert_eq!(t.session_timeout(5), None);
    assert!(t.ephemerals(5).is_empty());
}

#[test]
fn containers_and_ttls_are_reap_candidates_by_zookeeper_rules() {
    let mut t = DataTree::new();
    let c = ephemeral_owner::CONTAINER;
    t.create_node("/c", b(""), &open_acl_unsafe(), c, -1, 2, 0)
        .unwrap();
    // Container and TTL owners are not shown to clients.
    assert_eq!(t.stat("/c").unwrap().ephemeral_owner, 0);
    // Never had a child: not a candidate.
    assert!(t.reap_candidates(1_000_000).is_empty());
    t.create_node("/c/x", b(""), &open_acl_unsafe(), 0, -1, 3, 0)
        .unwrap();
    assert!(t.reap_candidates(1_000_000).is_empty());
    t.delete_node("/c/x", 4).unwrap();
    assert_eq!(t.reap_candidates(1_000_000), vec!["/c".to_string()]);
    assert_eq!(t.containers(), vec!["/c".to_string()]);

    let ttl = ephemeral_owner::ttl(100);
    t.create_node("/t", b(""), &open_acl_unsafe(), ttl, -1, 5, 1000)
        .unwrap();
    assert_eq!(t.stat("/t").unwrap().ephemeral_owner, 0);
    assert_eq!(t.ttls(), vec!["/t".to_string()]);
    // mtime + ttl must be strictly in the past.
    assert_eq!(t.reap_candidates(1100), vec!["/c".to_string()]);
    assert_eq!(
        t.reap_candidates(1101),
        vec!["/c".to_string(), "/t".to_string()]
    );
    // A modification restarts the clock.
    t.set_data("/t", b("x"), 1, 6, 1050).unwrap();
    assert_eq!(t.reap_candidates(1101), vec!["/c".to_string()]);
    // A TTL node with a child is kept.
    t.create_node("/t/k", b(""), &open_acl_unsafe(), 0, -1, 7, 0)
        .unwrap();
    assert_eq!(t.reap_candidates(10_000), vec!["/c".to_string()]);
    t.delete_node("/t/k", 8).unwrap();
    t.delete_node("/t", 9).unwrap();
    t.delete_node("/c", 10).unwrap();
    assert!(t.containers().is_empty() && t.ttls().is_empty());
}

#[test]
fn quota_accounting() {
    let mut t = DataTree::new();
    let acl = open_acl_unsafe();
    t.create_node("/q", b("12"), &acl, 0, -1, 2, 0).unwrap();
    t.create_node("/q/a", b("345"), &acl, 0, -1, 3, 0).unwrap();
    // setquota: the quota node path, the limits node, then the stats node.
    t.create_node("/zookeeper/quota/q", b(""), &acl, 0, -1, 4, 0)
        .unwrap();
    t.create_node(
        "/zookeeper/quota/q/zookeeper_limits",
        b("count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=3"),
        &acl,
        0,
        -1,
        5,
        0,
    )
    .unwrap();
    t.create_node(
        "/zookeeper/quota/q/zookeeper_stats",
        b("count=0,bytes=0"),
        &acl,
        0,
        -1,
        6,
        0,
    )
    .unwrap();
    fn stats_of(t: &DataTree) -> String {
        String::from_utf8(
            t.get("/zookeeper/quota/q/zookeeper_stats")
                .unwrap()
                .data()
                .to_vec(),
        )
        .unwrap()
    }
    assert_eq!(stats_of(&t), "count=2,bytes=5");
    assert_eq!(t.max_prefix_with_quota("/q/a"), Some("/q".into()));
    assert_eq!(t.max_prefix_with_quota("/qq"), None);
    t.create_node("/q/b", b("6789"), &acl, 0, -1, 7, 0).unwrap();
    assert_eq!(stats_of(&t), "count=3,bytes=9");
    t.set_data("/q/b", b("6"), 1, 8, 0).unwrap();
    assert_eq!(stats_of(&t), "count=3,bytes=6");
    t.delete_node("/q/a", 9).unwrap();
    assert_eq!(stats_of(&t), "count=2,bytes=3");
    // The stats rewrite changes no Stat field but the data length.
    let s = t.stat("/zookeeper/quota/q/zookeeper_stats").unwrap();
    assert_eq!((s.version, s.mzxid), (0, 6));
    // Deleting the limits node removes the quota.
    t.delete_node("/zookeeper/quota/q/zookeeper_limits", 10)
        .unwrap();
    assert_eq!(t.max_prefix_with_quota("/q/b"), None);
    t.create_node("/q/c", b("1"), &acl, 0, -1, 11, 0).unwrap();
    assert_eq!(stats_of(&t), "count=2,bytes=3");
}

#[test]
fn children_listing() {
    let mut t = DataTree::new();
    for (i, p) in ["/a", "/a/x", "/a/y", "/a/x/z"].iter().enumerate() {
        t.create_node(p, b(""), &open_acl_unsafe(), 0, -1, i as i64 + 2, 0)
            .unwrap();
    }
    let mut c = t.children("/a").unwrap();
    c.sort();
    assert_eq!(c, vec!["x".to_string(), "y".to_string()]);
    assert_eq!(t.all_children_number("/a"), Some(3));
    assert_eq!(t.all_children_number("/a/x/z"), Some(0));
    assert_eq!(t.all_children_number("/nope"), None);
    assert_eq!(t.all_children_number("/"), Some(7));
    assert_eq!(t.children("/nope"), None);
}

#[test]
fn node_stays_compact() {
    // 1M znodes are benchmarked: keep the per-node struct small.
    assert!(
        std::mem::size_of::<Node>() <= 112,
        "{}",
        std::mem::size_of::<Node>()
    );
}

#[test]
#[ignore = "manual: memory and speed for many znodes (run with --release --nocapture)"]
fn many_znodes() {
    let mut t = DataTree::new();
    let acl = open_acl_unsafe();
    let start = std::time::Instant::now();
    t.create_node("/bench", Bytes::new(), &acl, 0, -1, 1, 0)
        .unwrap();
    for i in 0..1_000_000i64 {
        let p = format!("/bench/node-{i:010}");
        t.create_node(&p, Bytes::from_static(b"0123456789"), &acl, 0, -1, i + 2, 0)
            .unwrap();
    }
    println!(
        "1M creates: {:?}, Node = {} bytes, count {}",
        start.elapsed(),
        std::mem::size_of::<Node>(),
        t.node_count()
    );
}
