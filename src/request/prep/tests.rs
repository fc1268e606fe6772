use super::*;
use crate::proto::{
    CheckVersionRequest, CreateRequest, CreateTtlRequest, DeleteRequest, MultiRequest,
    ReconfigRequest, SetAclRequest, SetDataRequest,
};
use crate::request::apply::TxnResult;
use crate::request::harness::*;
use crate::request::TxnHeader;

fn err_of(t: &Txn) -> Option<ErrorCode> {
    match t {
        Txn::Error(e) => Some(*e),
        _ => None,
    }
}

fn delete(path: &str, version: i32) -> Request {
    Request::Delete(DeleteRequest {
        path: path.into(),
        version,
    })
}

fn set_data(path: &str, data: &[u8], version: i32) -> Request {
    Request::SetData(SetDataRequest {
        path: path.into(),
        data: Bytes::copy_from_slice(data),
        version,
    })
}

fn set_acl(path: &str, acl: Vec<Acl>, version: i32) -> Request {
    Request::SetAcl(SetAclRequest {
        path: path.into(),
        acl,
        version,
    })
}

fn check(path: &str, version: i32) -> Request {
    Request::Check(CheckVersionRequest {
        path: path.into(),
        version,
    })
}

fn ttl_req(path: &str, flags: i32, ttl: i64) -> Request {
    Request::CreateTtl(CreateTtlRequest {
        path: path.into(),
        data: Bytes::new(),
        acl: open_acl(),
        flags,
        ttl,
    })
}

fn create_op(op: OpCode, path: &str, flags: i32) -> MultiOp {
    MultiOp::Create {
        op,
        req: CreateRequest {
            path: path.into(),
            data: Bytes::new(),
            acl: open_acl(),
            flags,
        },
    }
}

fn multi(ops: Vec<MultiOp>) -> Request {
    Request::Multi(MultiRequest { ops })
}

fn created_path(r: &TxnResult) -> String {
    match r {
        TxnResult::Created { path, .. } | TxnResult::CreatedPath { path } => path.clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn create_errors_in_zookeeper_order() {
    let mut h = Harness::new();
    h.create("/e", 1);
    h.create("/p", 0);
    let cases: Vec<(Request, ErrorCode)> = vec![
        (create_req("/a", b"", 7), ErrorCode::BadArguments),
        (create_req("/a", b"", -1), ErrorCode::BadArguments),
        (create_req("a", b"", 0), ErrorCode::BadArguments),
        (create_req("", b"", 0), ErrorCode::BadArguments),
        (create_req("/a\0b", b"", 0), ErrorCode::BadArguments),
        // The parent is looked up before the path is validated (ZooKeeper 3.8.0 says
        // NoNode for "/nonex/" and BadArguments for "/p/").
        (create_req("/nonex/", b"", 0), ErrorCode::NoNode),
        (create_req("/p/", b"", 0), ErrorCode::BadArguments),
        (create_req("/p//x", b"", 0), ErrorCode::NoNode),
        (create_req("/p/.", b"", 0), ErrorCode::BadArguments),
        (create_req("/x/y", b"", 0), ErrorCode::NoNode),
        (create_req("/", b"", 0), ErrorCode::NodeExists),
        (create_req("/p", b"", 0), ErrorCode::NodeExists),
        (create_req("/e", b"", 0), ErrorCode::NodeExists),
        (
            create_req("/e/x", b"", 0),
            ErrorCode::NoChildrenForEphemerals,
        ),
        (
            create_req("/e/x", b"", 3),
            ErrorCode::NoChildrenForEphemerals,
        ),
        // A TTL mode through plain create has no TTL.
        (create_req("/t", b"", 5), ErrorCode::BadArguments),
        (ttl_req("/t", 5, 0), ErrorCode::BadArguments),
        (ttl_req("/t", 5, -5), ErrorCode::BadArguments),
        (
            ttl_req("/t", 5, crate::proto::ephemeral_owner::MAX_TTL + 1),
            ErrorCode::BadArguments,
        ),
        (ttl_req("/t", 0, 100), ErrorCode::BadArguments),
        (ttl_req("/t", 0, -1), ErrorCode::BadArguments),
    ];
    for (req, code) in cases {
        let before = h.tree.znode_count();
        let t = h.prep(&req);
        assert_eq!(err_of(&t), Some(code), "{req:?}");
        assert!(matches!(h.flush()[0], TxnResult::Error(e) if e == code));
        assert_eq!(h.tree.znode_count(), before);
    }
    // An empty ACL is invalid.
    let req = Request::Create {
        op: OpCode::Create,
        req: CreateRequest {
            path: "/z".into(),
            data: Bytes::new(),
            acl: vec![],
            flags: 0,
        },
    };
    assert_eq!(err_of(&h.prep(&req)), Some(ErrorCode::InvalidAcl));
}

#[test]
fn ttl_needs_extended_types() {
    let mut h = Harness::with_config(PrepConfig::default());
    assert_eq!(
        err_of(&h.prep(&ttl_req("/t", 5, 100))),
        Some(ErrorCode::Unimplemented)
    );
    assert_eq!(
        err_of(&h.prep(&ttl_req("/t", 6, 0))),
        Some(ErrorCode::Unimplemented)
    );
    let mut h = Harness::new();
    let t = h.prep(&ttl_req("/t", 5, 100));
    assert!(
        matches!(&t, Txn::Create { ephemeral_owner, .. } if *ephemeral_owner == crate::proto::ephemeral_owner::ttl(100))
    );
    let t = h.prep(&ttl_req("/t", 6, 100));
    assert!(matches!(&t, Txn::Create { path, .. } if path == "/t0000000001"));
    h.flush();
    assert_eq!(
        h.tree.ttls(),
        vec!["/t".to_string(), "/t0000000001".to_string()]
    );
}

#[test]
fn create_modes_set_ephemeral_owner() {
    let mut h = Harness::new();
    let owner = |h: &mut Harness, req: &Request| match h.prep(req) {
        Txn::Create {
            ephemeral_owner, ..
        } => ephemeral_owner,
        t => panic!("{t:?}"),
    };
    assert_eq!(owner(&mut h, &create_req("/p", b"", 0)), 0);
    assert_eq!(owner(&mut h, &create_req("/e", b"", 1)), SESSION);
    assert_eq!(owner(&mut h, &create_req("/ps", b"", 2)), 0);
    assert_eq!(owner(&mut h, &create_req("/es", b"", 3)), SESSION);
    let container = Request::Create {
        op: OpCode::CreateContainer,
        req: CreateRequest {
            path: "/c".into(),
            data: Bytes::new(),
            acl: open_acl(),
            flags: 4,
        },
    };
    assert_eq!(
        owner(&mut h, &container),
        crate::proto::ephemeral_owner::CONTAINER
    );
    // Plain create with the container flag makes a persistent node, as ZooKeeper's
    // apply of a CreateTxn does.
    assert_eq!(owner(&mut h, &create_req("/c2", b"", 4)), 0);
    let rs = h.flush();
    assert_eq!(created_path(&rs[2]), "/ps0000000002");
    assert_eq!(created_path(&rs[3]), "/es0000000003");
    assert_eq!(h.tree.containers(), vec!["/c".to_string()]);
    assert_eq!(h.tree.stat("/e").unwrap().ephemeral_owner, SESSION);
}

#[test]
fn create_stat_and_parent_rules() {
    let mut h = Harness::new();
    h.create("/p", 0);
    let z = h.zxid + 1;
    let r = h.write(&create_req("/p/c", b"abc", 0));
    let TxnResult::Created { stat, .. } = r else {
        panic!()
    };
    assert_eq!((stat.czxid, stat.mzxid, stat.pzxid), (z, z, z));
    assert_eq!((stat.ctime, stat.mtime), (NOW, NOW));
    assert_eq!(
        (stat.version, stat.cversion, stat.aversion, stat.data_length),
        (0, 0, 0, 3)
    );
    let p = h.tree.stat("/p").unwrap();
    assert_eq!(
        (p.cversion, p.pzxid, p.num_children, p.mzxid),
        (1, z, 1, z - 1)
    );
    h.write(&delete("/p/c", -1));
    let p = h.tree.stat("/p").unwrap();
    assert_eq!((p.cversion, p.pzxid, p.num_children), (2, z + 1, 0));
}

#[test]
fn sequential_numbering_follows_parent_cversion() {
    let mut h = Harness::new();
    h.create("/q", 0);
    let a = created_path(&h.create("/q/n-", 2));
    assert_eq!(a, "/q/n-0000000000");
    let b = created_path(&h.create("/q/n-", 3));
    assert_eq!(b, "/q/n-0000000001");
    h.write(&delete(&a, -1));
    h.write(&delete(&b, -1));
    // Deletes do not reuse numbers: cversion counts creates.
    assert_eq!(created_path(&h.create("/q/n-", 2)), "/q/n-0000000002");
    h.create("/q/plain", 0);
    assert_eq!(created_path(&h.create("/q/", 2)), "/q/0000000004");
    // Several in one batch, before any is applied.
    let t1 = h.prep(&create_req("/q/b-", b"", 2));
    let t2 = h.prep(&create_req("/q/b-", b"", 2));
    assert!(
        matches!(&t1, Txn::Create { path, parent_cversion, .. } if path == "/q/b-0000000005" && *parent_cversion == 6)
    );
    assert!(
        matches!(&t2, Txn::Create { path, parent_cversion, .. } if path == "/q/b-0000000006" && *parent_cversion == 7)
    );
    h.flush();
    assert!(h.tree.exists("/q/b-0000000006"));
}

#[test]
fn prep_sees_outstanding_changes() {
    let mut h = Harness::new();
    // Two creates of one path in a batch: the second fails.
    let t1 = h.prep(&create_req("/a", b"", 0));
    let t2 = h.prep(&create_req("/a", b"", 0));
    assert!(matches!(t1, Txn::Create { .. }));
    assert_eq!(err_of(&t2), Some(ErrorCode::NodeExists));
    // A child of the not-yet-applied node, then its data with the right versions.
    assert!(matches!(
        h.prep(&create_req("/a/b", b"", 0)),
        Txn::Create { .. }
    ));
    assert!(matches!(
        h.prep(&set_data("/a/b", b"x", 0)),
        Txn::SetData { version: 1, .. }
    ));
    assert_eq!(
        err_of(&h.prep(&set_data("/a/b", b"x", 0))),
        Some(ErrorCode::BadVersion)
    );
    assert!(matches!(
        h.prep(&set_data("/a/b", b"y", 1)),
        Txn::SetData { version: 2, .. }
    ));
    // The parent is not empty until its child's delete is prepped.
    assert_eq!(
        err_of(&h.prep(&delete("/a", -1))),
        Some(ErrorCode::NotEmpty)
    );
    assert!(matches!(h.prep(&delete("/a/b", 2)), Txn::Delete { .. }));
    assert!(matches!(h.prep(&delete("/a", -1)), Txn::Delete { .. }));
    assert_eq!(err_of(&h.prep(&delete("/a", -1))), Some(ErrorCode::NoNode));
    assert!(matches!(
        h.prep(&create_req("/a", b"", 0)),
        Txn::Create { .. }
    ));
    assert!(h.prepper.outstanding() > 0);
    let rs = h.flush();
    assert!(rs
        .iter()
        .all(|r| !matches!(r, TxnResult::Error(ErrorCode::RuntimeInconsistency))));
    assert_eq!(h.prepper.outstanding(), 0);
    assert!(h.tree.exists("/a") && !h.tree.exists("/a/b"));
    // The recreated /a is a new node with a fresh version.
    assert_eq!(h.tree.stat("/a").unwrap().version, 0);
}

#[test]
fn applied_drops_only_covered_changes() {
    let mut h = Harness::new();
    h.prep(&create_req("/a", b"", 0)); // zxid 1
    h.prep(&set_data("/a", b"x", -1)); // zxid 2
    let pending = std::mem::take(&mut h.pending);
    let mut tr = Vec::new();
    crate::request::apply(&mut h.tree, &pending[0].0, &pending[0].1, &mut tr);
    h.prepper.applied(1);
    // /a's latest record (zxid 2) survives: the next setData must see version 1.
    assert!(matches!(
        h.prep(&set_data("/a", b"y", 1)),
        Txn::SetData { version: 2, .. }
    ));
    crate::request::apply(&mut h.tree, &pending[1].0, &pending[1].1, &mut tr);
    h.prepper.applied(2);
    h.flush();
    assert_eq!(h.tree.stat("/a").unwrap().version, 2);
    assert_eq!(h.prepper.outstanding(), 0);
}

#[test]
fn delete_rules() {
    let mut h = Harness::new();
    h.create("/a", 0);
    h.create("/a/b", 0);
    for (p, code) in [
        ("/", ErrorCode::BadArguments),
        ("/zookeeper", ErrorCode::BadArguments),
        ("/zookeeper/quota", ErrorCode::BadArguments),
        ("/zookeeper/config", ErrorCode::BadArguments),
        ("a", ErrorCode::BadArguments),
        ("/a\0", ErrorCode::BadArguments),
        ("/a/", ErrorCode::NoNode),
        ("/x/y", ErrorCode::NoNode),
        ("/a/c", ErrorCode::NoNode),
        ("/a", ErrorCode::NotEmpty),
    ] {
        assert_eq!(err_of(&h.prep(&delete(p, -1))), Some(code), "{p}");
    }
    assert_eq!(
        err_of(&h.prep(&delete("/a/b", 3))),
        Some(ErrorCode::BadVersion)
    );
    // The version is checked before emptiness.
    assert_eq!(
        err_of(&h.prep(&delete("/a", 3))),
        Some(ErrorCode::BadVersion)
    );
    h.flush();
    h.write(&set_data("/a/b", b"", -1));
    assert_eq!(h.write(&delete("/a/b", 1)), TxnResult::Deleted);
    assert_eq!(h.write(&delete("/a", 0)), TxnResult::Deleted);
}

#[test]
fn set_data_set_acl_check_rules() {
    let mut h = Harness::new();
    h.create("/a", 0);
    for p in ["", "a", "/a/", "//a", "/a/../b", "/a\u{1}"] {
        assert_eq!(
            err_of(&h.prep(&set_data(p, b"", -1))),
            Some(ErrorCode::BadArguments),
            "{p:?}"
        );
        assert_eq!(
            err_of(&h.prep(&set_acl(p, open_acl(), -1))),
            Some(ErrorCode::BadArguments)
        );
        assert_eq!(
            err_of(&h.prep(&check(p, -1))),
            Some(ErrorCode::BadArguments)
        );
    }
    assert_eq!(
        err_of(&h.prep(&set_data("/b", b"", -1))),
        Some(ErrorCode::NoNode)
    );
    assert_eq!(
        err_of(&h.prep(&set_acl("/b", open_acl(), -1))),
        Some(ErrorCode::NoNode)
    );
    assert_eq!(err_of(&h.prep(&check("/b", -1))), Some(ErrorCode::NoNode));
    assert_eq!(
        err_of(&h.prep(&set_data("/a", b"", 1))),
        Some(ErrorCode::BadVersion)
    );
    assert_eq!(
        err_of(&h.prep(&set_data("/a", b"", -2))),
        Some(ErrorCode::BadVersion)
    );
    assert_eq!(
        err_of(&h.prep(&set_acl("/a", open_acl(), 1))),
        Some(ErrorCode::BadVersion)
    );
    assert_eq!(
        err_of(&h.prep(&set_acl("/a", vec![], -1))),
        Some(ErrorCode::InvalidAcl)
    );
    assert_eq!(
        err_of(&h.prep(&check("/a", 2))),
        Some(ErrorCode::BadVersion)
    );
    assert_eq!(
        h.prep(&check("/a", 0)),
        Txn::Check {
            path: "/a".into(),
            version: 1
        }
    );
    h.flush();
    let z = h.zxid + 1;
    h.now += 5;
    let r = h.write(&set_data("/a", b"hello", 0));
    let TxnResult::SetData { stat } = r else {
        panic!()
    };
    assert_eq!(
        (stat.version, stat.mzxid, stat.mtime, stat.data_length),
        (1, z, NOW + 5, 5)
    );
    assert_eq!(stat.ctime, NOW);
    let r = h.write(&set_acl("/a", crate::tree::read_acl_unsafe(), 0));
    let TxnResult::SetAcl { stat } = r else {
        panic!()
    };
    assert_eq!((stat.aversion, stat.version, stat.mzxid), (1, 1, z));
    // The root can be written (it is a valid path).
    assert!(matches!(
        h.write(&set_data("/", b"r", -1)),
        TxnResult::SetData { .. }
    ));
}

#[test]
fn version_wraps_past_max_to_zero_skipping_minus_one() {
    assert_eq!(check_and_inc_version(i32::MAX, -1), Ok(i32::MIN));
    assert_eq!(check_and_inc_version(-2, -1), Ok(0));
    assert_eq!(check_and_inc_version(4, 4), Ok(5));
    assert_eq!(check_and_inc_version(4, 3), Err(ErrorCode::BadVersion));
}

#[test]
fn multi_success_uses_one_zxid() {
    let mut h = Harness::new();
    h.create("/x", 0);
    let req = multi(vec![
        create_op(OpCode::Create, "/m", 0),
        create_op(OpCode::Create2, "/m/s-", 2),
        MultiOp::SetData(SetDataRequest {
            path: "/m".into(),
            data: Bytes::from_static(b"d"),
            version: 0,
        }),
        MultiOp::Check(CheckVersionRequest {
            path: "/m".into(),
            version: 1,
        }),
        MultiOp::Delete(DeleteRequest {
            path: "/x".into(),
            version: -1,
        }),
        create_op(OpCode::Create, "/c", 4),
    ]);
    let z = h.zxid + 1;
    let r = h.write(&req);
    let TxnResult::Multi(rs) = &r else {
        panic!("{r:?}")
    };
    // A multi's create op answers with the path only; create2 (as in ZooKeeper 3.9)
    // with path and Stat; a container-mode create op gets a Create2 result.
    assert_eq!(rs[0], TxnResult::CreatedPath { path: "/m".into() });
    assert!(
        matches!(&rs[1], TxnResult::Created { path, stat } if path == "/m/s-0000000000" && stat.czxid == z)
    );
    assert!(matches!(&rs[2], TxnResult::SetData { stat } if stat.version == 1 && stat.mzxid == z));
    assert_eq!(rs[3], TxnResult::Checked);
    assert_eq!(rs[4], TxnResult::Deleted);
    assert!(matches!(&rs[5], TxnResult::Created { path, stat } if path == "/c" && stat.czxid == z));
    assert_eq!(h.tree.stat("/m/s-0000000000").unwrap().czxid, z);
    assert_eq!(h.tree.containers(), vec!["/c".to_string()]);
    assert_eq!(h.tree.last_processed_zxid(), z);
}

#[test]
fn failed_multi_reports_every_op_and_applies_nothing() {
    let mut h = Harness::new();
    h.create("/exists", 0);
    let req = multi(vec![
        create_op(OpCode::Create, "/m1", 0),
        create_op(OpCode::Create, "/exists", 0),
        create_op(OpCode::Create, "/m2", 0),
    ]);
    let t = h.prep(&req);
    assert_eq!(
        t,
        Txn::Multi(vec![
            (OpCode::Error, Txn::Error(ErrorCode::Ok)),
            (OpCode::Error, Txn::Error(ErrorCode::NodeExists)),
            (OpCode::Error, Txn::Error(ErrorCode::RuntimeInconsistency)),
        ])
    );
    // The failed multi's records are rolled back: /m1 can be created in the same batch.
    assert!(matches!(
        h.prep(&create_req("/m1", b"", 0)),
        Txn::Create { .. }
    ));
    let rs = h.flush();
    assert_eq!(
        rs[0],
        TxnResult::Multi(vec![
            TxnResult::Error(ErrorCode::Ok),
            TxnResult::Error(ErrorCode::NodeExists),
            TxnResult::Error(ErrorCode::RuntimeInconsistency),
        ])
    );
    assert!(!h.tree.exists("/m2"));
    assert!(h.tree.exists("/m1"));
    assert_eq!(h.prepper.outstanding(), 0);
}

#[test]
fn failed_multi_restores_earlier_outstanding_records() {
    let mut h = Harness::new();
    h.prep(&create_req("/a", b"", 0));
    h.prep(&set_data("/a", b"1", -1)); // outstanding: /a at version 1
    let req = multi(vec![
        MultiOp::SetData(SetDataRequest {
            path: "/a".into(),
            data: Bytes::new(),
            version: 1,
        }),
        MultiOp::Check(CheckVersionRequest {
            path: "/a".into(),
            version: 99,
        }),
    ]);
    assert!(matches!(h.prep(&req), Txn::Multi(_)));
    // The multi's setData (version 2) was rolled back, the earlier record remains.
    assert!(matches!(
        h.prep(&set_data("/a", b"", 1)),
        Txn::SetData { version: 2, .. }
    ));
    h.flush();
    assert_eq!(h.tree.stat("/a").unwrap().version, 2);
}

#[test]
fn multi_with_reads_is_a_marshalling_error() {
    let mut h = Harness::new();
    let req = multi(vec![
        create_op(OpCode::Create, "/m", 0),
        MultiOp::GetData(crate::proto::GetDataRequest {
            path: "/m".into(),
            watch: false,
        }),
    ]);
    assert_eq!(err_of(&h.prep(&req)), Some(ErrorCode::MarshallingError));
    // Bad flags in a multi fail that op only (ZooKeeper 3.8.0).
    let t = h.prep(&multi(vec![create_op(OpCode::Create, "/f", 9)]));
    assert_eq!(
        t,
        Txn::Multi(vec![(OpCode::Error, Txn::Error(ErrorCode::BadArguments))])
    );
    assert_eq!(h.prep(&multi(vec![])), Txn::Multi(vec![]));
}

#[test]
fn close_session_covers_outstanding_ephemerals() {
    let mut h = Harness::new();
    h.open_session(SESSION, 3000);
    h.create("/p", 0);
    h.create("/p/old", 1);
    // Prepped, not applied: another ephemeral, and the delete of the old one.
    h.prep(&create_req("/p/new", b"", 1));
    h.prep(&delete("/p/old", -1));
    assert_eq!(h.prep(&Request::CloseSession), Txn::CloseSession);
    // Both ephemerals count as gone: /p can be deleted in the same batch.
    assert!(matches!(h.prep(&delete("/p", -1)), Txn::Delete { .. }));
    let rs = h.flush();
    assert_eq!(rs[2], TxnResult::SessionClosed);
    assert_eq!(rs[3], TxnResult::Deleted);
    assert!(!h.tree.exists("/p"));
    assert_eq!(h.tree.ephemeral_count(), 0);
}

#[test]
fn reconfig_is_disabled() {
    let mut h = Harness::new();
    let t = h.prep(&Request::Reconfig(ReconfigRequest {
        joining_servers: String::new(),
        leaving_servers: String::new(),
        new_members: String::new(),
        cur_config_id: -1,
    }));
    assert_eq!(err_of(&t), Some(ErrorCode::ReconfigDisabled));
    assert_eq!(txn_op(OpCode::Reconfig, &t), OpCode::Error);
    assert_eq!(
        err_of(&h.prep(&Request::Ping)),
        Some(ErrorCode::Unimplemented)
    );
}

#[test]
fn data_larger_than_max_buffer_is_refused() {
    let mut h = Harness::with_config(PrepConfig {
        max_buffer: 4,
        ..Default::default()
    });
    assert_eq!(
        err_of(&h.prep(&create_req("/a", b"12345", 0))),
        Some(ErrorCode::MarshallingError)
    );
    assert!(matches!(
        h.prep(&create_req("/a", b"1234", 0)),
        Txn::Create { .. }
    ));
    assert_eq!(
        err_of(&h.prep(&set_data("/a", b"12345", -1))),
        Some(ErrorCode::MarshallingError)
    );
}

fn setup_quota(h: &mut Harness, limits: &[u8]) {
    h.create("/q", 0);
    h.create("/zookeeper/quota/q", 0);
    h.write(&create_req(
        "/zookeeper/quota/q/zookeeper_limits",
        limits,
        0,
    ));
    h.write(&create_req(
        "/zookeeper/quota/q/zookeeper_stats",
        b"count=0,bytes=0",
        0,
    ));
}

#[test]
fn hard_quota_is_enforced() {
    let mut h = Harness::with_config(PrepConfig {
        enforce_quota: true,
        ..Default::default()
    });
    setup_quota(
        &mut h,
        b"count=-1,bytes=-1=;byteHardLimit=10;countHardLimit=2",
    );
    assert!(matches!(
        h.write(&create_req("/q/a", b"12345", 0)),
        TxnResult::Created { .. }
    ));
    // /q and /q/a: a third node breaks the hard count limit.
    assert_eq!(
        err_of(&h.prep(&create_req("/q/b", b"", 0))),
        Some(ErrorCode::QuotaExceeded)
    );
    h.flush();
    assert_eq!(
        err_of(&h.prep(&set_data("/q/a", b"12345678901", -1))),
        Some(ErrorCode::QuotaExceeded)
    );
    assert!(matches!(
        h.prep(&set_data("/q/a", b"1234567890", -1)),
        Txn::SetData { .. }
    ));
    h.flush();
    // Outside the quota'd subtree nothing is checked.
    assert!(matches!(
        h.write(&create_req("/other", b"", 0)),
        TxnResult::Created { .. }
    ));
}

#[test]
fn soft_or_unenforced_quota_only_counts() {
    let mut h = Harness::with_config(PrepConfig {
        enforce_quota: true,
        ..Default::default()
    });
    setup_quota(&mut h, b"count=1,bytes=1");
    assert!(matches!(
        h.write(&create_req("/q/a", b"123", 0)),
        TxnResult::Created { .. }
    ));
    let mut h = Harness::new();
    setup_quota(
        &mut h,
        b"count=-1,bytes=-1=;byteHardLimit=1;countHardLimit=1",
    );
    assert!(matches!(
        h.write(&create_req("/q/a", b"123", 0)),
        TxnResult::Created { .. }
    ));
    let stats = h
        .tree
        .get("/zookeeper/quota/q/zookeeper_stats")
        .unwrap()
        .data()
        .clone();
    assert_eq!(&stats[..], b"count=2,bytes=3");
}

#[test]
fn reap_prep_confirms_candidates() {
    let mut h = Harness::new();
    let container = Request::Create {
        op: OpCode::CreateContainer,
        req: CreateRequest {
            path: "/c".into(),
            data: Bytes::new(),
            acl: open_acl(),
            flags: 4,
        },
    };
    h.write(&container);
    h.create("/c/child", 0);
    h.create("/plain", 0);
    h.create("/eph", 1);
    h.zxid += 1;
    let z = h.zxid;
    assert_eq!(h.prepper.prep_reap(&h.tree, z, "/c"), None, "not empty");
    assert_eq!(h.prepper.prep_reap(&h.tree, z, "/plain"), None);
    assert_eq!(h.prepper.prep_reap(&h.tree, z, "/eph"), None);
    assert_eq!(h.prepper.prep_reap(&h.tree, z, "/nope"), None);
    assert_eq!(h.prepper.prep_reap(&h.tree, z, "/"), None);
    h.write(&delete("/c/child", -1));
    assert_eq!(h.tree.reap_candidates(NOW), vec!["/c".to_string()]);
    h.zxid += 1;
    let z = h.zxid;
    let t = h.prepper.prep_reap(&h.tree, z, "/c").expect("qualifies");
    assert_eq!(t, Txn::Delete { path: "/c".into() });
    // The outstanding delete is seen by the next reap attempt.
    assert_eq!(h.prepper.prep_reap(&h.tree, z + 1, "/c"), None);
    let hdr = TxnHeader {
        client_id: 0,
        cxid: 0,
        zxid: z,
        time: NOW,
        op: OpCode::DeleteContainer,
    };
    let r = crate::request::apply(&mut h.tree, &hdr, &t, &mut h.triggers);
    assert_eq!(r, TxnResult::Deleted);
    h.prepper.applied(z);
    assert!(!h.tree.exists("/c"));
}

#[test]
fn ttl_node_is_reaped_after_expiry() {
    let mut h = Harness::new();
    h.write(&ttl_req("/t", 5, 1000));
    assert!(h.tree.reap_candidates(NOW + 1000).is_empty());
    assert_eq!(h.tree.reap_candidates(NOW + 1001), vec!["/t".to_string()]);
    h.zxid += 1;
    let z = h.zxid;
    assert!(h.prepper.prep_reap(&h.tree, z, "/t").is_some());
}

#[test]
fn permissions_are_checked_on_the_right_node() {
    let mut h = Harness::new();
    let digest_only = vec![Acl {
        perms: crate::proto::perms::ALL,
        id: Id {
            scheme: "digest".into(),
            id: "u:hash".into(),
        },
    }];
    h.write(&Request::Create {
        op: OpCode::Create,
        req: CreateRequest {
            path: "/locked".into(),
            data: Bytes::new(),
            acl: digest_only,
            flags: 0,
        },
    });
    assert_eq!(
        err_of(&h.prep(&create_req("/locked/x", b"", 0))),
        Some(ErrorCode::NoAuth)
    );
    assert_eq!(
        err_of(&h.prep(&set_data("/locked", b"", -1))),
        Some(ErrorCode::NoAuth)
    );
    assert_eq!(
        err_of(&h.prep(&set_acl("/locked", open_acl(), -1))),
        Some(ErrorCode::NoAuth)
    );
    assert_eq!(
        err_of(&h.prep(&check("/locked", -1))),
        Some(ErrorCode::NoAuth)
    );
    // Delete needs DELETE on the parent (open here), not on the node.
    assert!(matches!(h.prep(&delete("/locked", -1)), Txn::Delete { .. }));
}
