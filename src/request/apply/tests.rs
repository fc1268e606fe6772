use super::*;
use crate::request::harness::*;
use bytes::Bytes;

fn hdr(zxid: i64, op: OpCode) -> TxnHeader {
    TxnHeader {
        client_id: SESSION,
        cxid: 1,
        zxid,
        time: 500,
        op,
    }
}

fn create_txn(path: &str, owner: i64, parent_cversion: i32) -> Txn {
    Txn::Create {
        path: path.into(),
        data: Bytes::from_static(b"d"),
        acl: open_acl(),
        ephemeral_owner: owner,
        parent_cversion,
    }
}

fn t(path: &str, event: EventType) -> WatchTrigger {
    WatchTrigger {
        path: path.into(),
        event,
        acl: open_acl().into(),
    }
}

#[test]
fn create_delete_set_data_fire_in_zookeeper_order() {
    let mut tree = DataTree::new();
    let mut tr = Vec::new();
    let r = apply(
        &mut tree,
        &hdr(2, OpCode::Create2),
        &create_txn("/a", 0, 1),
        &mut tr,
    );
    let TxnResult::Created { path, stat } = r else {
        panic!("{r:?}")
    };
    assert_eq!((path.as_str(), stat.czxid, stat.ctime), ("/a", 2, 500));
    assert_eq!(
        tr,
        vec![
            t("/a", EventType::NodeCreated),
            t("/", EventType::NodeChildrenChanged)
        ]
    );
    assert_eq!(tree.last_processed_zxid(), 2);
    tr.clear();
    apply(
        &mut tree,
        &hdr(3, OpCode::Create),
        &create_txn("/a/b", 0, 1),
        &mut tr,
    );
    assert_eq!(
        tr,
        vec![
            t("/a/b", EventType::NodeCreated),
            t("/a", EventType::NodeChildrenChanged)
        ]
    );
    tr.clear();
    let r = apply(
        &mut tree,
        &hdr(4, OpCode::SetData),
        &Txn::SetData {
            path: "/a/b".into(),
            data: Bytes::from_static(b"xyz"),
            version: 1,
        },
        &mut tr,
    );
    let TxnResult::SetData { stat } = r else {
        panic!("{r:?}")
    };
    assert_eq!((stat.version, stat.mzxid, stat.data_length), (1, 4, 3));
    assert_eq!(tr, vec![t("/a/b", EventType::NodeDataChanged)]);
    tr.clear();
    let r = apply(
        &mut tree,
        &hdr(5, OpCode::SetAcl),
        &Txn::SetAcl {
            path: "/a/b".into(),
            acl: crate::tree::read_acl_unsafe(),
            version: 1,
        },
        &mut tr,
    );
    assert!(matches!(r, TxnResult::SetAcl { stat } if stat.aversion == 1));
    assert!(tr.is_empty());
    let r = apply(
        &mut tree,
        &hdr(6, OpCode::Delete),
        &Txn::Delete {
            path: "/a/b".into(),
        },
        &mut tr,
    );
    assert_eq!(r, TxnResult::Deleted);
    assert_eq!(
        tr,
        vec![
            // The deleted node's ACL, as it was before the delete.
            WatchTrigger {
                acl: crate::tree::read_acl_unsafe().into(),
                ..t("/a/b", EventType::NodeDeleted)
            },
            t("/a", EventType::NodeChildrenChanged)
        ]
    );
    assert_eq!(tree.last_processed_zxid(), 6);
}

#[test]
fn txns_that_do_not_fit_give_errors() {
    let mut tree = DataTree::new();
    let mut tr = Vec::new();
    let del = Txn::Delete { path: "/x".into() };
    assert_eq!(
        apply(&mut tree, &hdr(2, OpCode::Delete), &del, &mut tr),
        TxnResult::Error(ErrorCode::NoNode)
    );
    let c = create_txn("/x/y", 0, 1);
    assert_eq!(
        apply(&mut tree, &hdr(3, OpCode::Create), &c, &mut tr),
        TxnResult::Error(ErrorCode::NoNode)
    );
    let c = create_txn("/zookeeper", 0, 1);
    assert_eq!(
        apply(&mut tree, &hdr(4, OpCode::Create), &c, &mut tr),
        TxnResult::Error(ErrorCode::NodeExists)
    );
    let c = create_txn("", 0, 1);
    assert_eq!(
        apply(&mut tree, &hdr(5, OpCode::Create), &c, &mut tr),
        TxnResult::Error(ErrorCode::NoNode)
    );
    assert_eq!(
        apply(
            &mut tree,
            &hdr(6, OpCode::Error),
            &Txn::Error(ErrorCode::BadVersion),
            &mut tr
        ),
        TxnResult::Error(ErrorCode::BadVersion)
    );
    assert!(tr.is_empty());
    // Even a failed txn advances last_processed_zxid.
    assert_eq!(tree.last_processed_zxid(), 6);
}

#[test]
fn multi_applies_all_ops_with_one_zxid() {
    let mut tree = DataTree::new();
    let mut tr = Vec::new();
    let m = Txn::Multi(vec![
        (OpCode::Create, create_txn("/a", 0, 1)),
        (
            OpCode::CreateContainer,
            create_txn("/c", ephemeral_owner_container(), 2),
        ),
        (
            OpCode::Check,
            Txn::Check {
                path: "/a".into(),
                version: 1,
            },
        ),
        (OpCode::Delete, Txn::Delete { path: "/a".into() }),
    ]);
    let r = apply(&mut tree, &hdr(9, OpCode::Multi), &m, &mut tr);
    let TxnResult::Multi(rs) = &r else {
        panic!("{r:?}")
    };
    assert_eq!(rs[0], TxnResult::CreatedPath { path: "/a".into() });
    assert!(matches!(&rs[1], TxnResult::Created { path, stat } if path == "/c" && stat.czxid == 9));
    assert_eq!(rs[2], TxnResult::Checked);
    assert_eq!(rs[3], TxnResult::Deleted);
    assert_eq!(r.err(), ErrorCode::Ok);
    assert_eq!(tree.containers(), vec!["/c".to_string()]);
    assert_eq!(tree.stat("/").unwrap().pzxid, 9);
    assert_eq!(tr.len(), 6);
}

fn ephemeral_owner_container() -> i64 {
    crate::proto::ephemeral_owner::CONTAINER
}

#[test]
fn failed_multi_changes_nothing() {
    let mut tree = DataTree::new();
    let mut tr = Vec::new();
    // As prep writes it, and also with real sub-txns before the failure (ZooKeeper's
    // own MultiTxn shape): both apply nothing.
    for first in [Txn::Error(ErrorCode::Ok), create_txn("/a", 0, 1)] {
        let m = Txn::Multi(vec![
            (OpCode::Create, first),
            (OpCode::Error, Txn::Error(ErrorCode::NodeExists)),
            (OpCode::Error, Txn::Error(ErrorCode::RuntimeInconsistency)),
        ]);
        let r = apply(&mut tree, &hdr(3, OpCode::Multi), &m, &mut tr);
        assert_eq!(
            r,
            TxnResult::Multi(vec![
                TxnResult::Error(ErrorCode::Ok),
                TxnResult::Error(ErrorCode::NodeExists),
                TxnResult::Error(ErrorCode::RuntimeInconsistency),
            ])
        );
        assert_eq!(r.err(), ErrorCode::NodeExists);
        assert!(tree.stat("/a").is_none());
        assert!(tr.is_empty());
    }
}

#[test]
fn close_session_deletes_ephemerals_with_triggers() {
    let mut h = Harness::new();
    h.open_session(SESSION, 4000);
    h.open_session(77, 4000);
    assert_eq!(h.tree.session_timeout(SESSION), Some(4000));
    h.create("/p", 0);
    h.create("/p/e2", 1);
    h.create("/e1", 1);
    h.write_as(77, &create_req("/other", b"", 1));
    assert_eq!(
        h.tree.ephemerals(SESSION),
        vec!["/e1".to_string(), "/p/e2".to_string()]
    );
    h.triggers.clear();
    let r = h.write(&crate::proto::Request::CloseSession);
    assert_eq!(r, TxnResult::SessionClosed);
    let zxid = h.zxid;
    assert_eq!(
        h.triggers,
        // ZooKeeper's order: a Java HashSet clone's, here [/p/e2, /e1] (checked on a JVM).
        vec![
            t("/p/e2", EventType::NodeDeleted),
            t("/p", EventType::NodeChildrenChanged),
            t("/e1", EventType::NodeDeleted),
            t("/", EventType::NodeChildrenChanged),
        ]
    );
    assert!(h.tree.stat("/e1").is_none() && h.tree.stat("/p/e2").is_none());
    assert_eq!(h.tree.stat("/p").unwrap().pzxid, zxid);
    assert_eq!(h.tree.session_timeout(SESSION), None);
    assert!(h.tree.ephemerals(SESSION).is_empty());
    // Other sessions keep theirs.
    assert_eq!(h.tree.ephemerals(77), vec!["/other".to_string()]);
    assert_eq!(h.tree.sessions(), vec![(77, 4000)]);
}

#[test]
fn err_of_results() {
    assert_eq!(TxnResult::Deleted.err(), ErrorCode::Ok);
    assert_eq!(TxnResult::Error(ErrorCode::NoAuth).err(), ErrorCode::NoAuth);
}
