use super::*;
use crate::request::harness::*;
use bytes::Bytes;

fn read(h: &Harness, req: Request) -> ReadOutcome {
    process_read(&h.tree, SESSION, &[], &req)
}

fn setup() -> Harness {
    let mut h = Harness::new();
    h.write(&create_req("/a", b"data", 0));
    h.create("/a/x", 0);
    h.create("/a/y", 0);
    h.create("/a/x/z", 0);
    h.create("/a/e1", 1);
    h.create("/b-e", 1);
    h.write_as(99, &create_req("/other", b"", 1));
    h
}

#[test]
fn exists_watches_even_missing_nodes() {
    let h = setup();
    let o = read(
        &h,
        Request::Exists(ExistsRequest {
            path: "/nope".into(),
            watch: true,
        }),
    );
    assert_eq!(o.reply, Err(ErrorCode::NoNode));
    assert_eq!(o.watch, Some(WatchRegistration::Data("/nope".into())));
    let o = read(
        &h,
        Request::Exists(ExistsRequest {
            path: "/a".into(),
            watch: false,
        }),
    );
    assert_eq!(
        o.reply,
        Ok(ReadReply::Exists(ExistsResponse {
            stat: h.tree.stat("/a").unwrap()
        }))
    );
    assert_eq!(o.watch, None);
    let o = read(
        &h,
        Request::Exists(ExistsRequest {
            path: "/a\0".into(),
            watch: true,
        }),
    );
    assert_eq!(o.reply, Err(ErrorCode::BadArguments));
    assert_eq!(o.watch, None);
}

#[test]
fn get_data_watches_only_existing_nodes() {
    let h = setup();
    let o = read(
        &h,
        Request::GetData(GetDataRequest {
            path: "/a".into(),
            watch: true,
        }),
    );
    let Ok(ReadReply::GetData(r)) = &o.reply else {
        panic!("{o:?}")
    };
    assert_eq!(&r.data[..], b"data");
    assert_eq!(r.stat.num_children, 3);
    assert_eq!(o.watch, Some(WatchRegistration::Data("/a".into())));
    let o = read(
        &h,
        Request::GetData(GetDataRequest {
            path: "/nope".into(),
            watch: true,
        }),
    );
    assert_eq!(
        o,
        ReadOutcome {
            reply: Err(ErrorCode::NoNode),
            watch: None
        }
    );
    // No path validation on reads: an invalid path is just absent.
    let o = read(
        &h,
        Request::GetData(GetDataRequest {
            path: "bad".into(),
            watch: false,
        }),
    );
    assert_eq!(o.reply, Err(ErrorCode::NoNode));
}

#[test]
fn children_reads() {
    let h = setup();
    let o = read(
        &h,
        Request::GetChildren(GetChildrenRequest {
            path: "/a".into(),
            watch: true,
        }),
    );
    let Ok(ReadReply::GetChildren(r)) = &o.reply else {
        panic!("{o:?}")
    };
    let mut c = r.children.clone();
    c.sort();
    assert_eq!(c, vec!["e1", "x", "y"]);
    assert_eq!(o.watch, Some(WatchRegistration::Child("/a".into())));
    let o = read(
        &h,
        Request::GetChildren2(GetChildren2Request {
            path: "/a/x".into(),
            watch: false,
        }),
    );
    let Ok(ReadReply::GetChildren2(r)) = &o.reply else {
        panic!("{o:?}")
    };
    assert_eq!(r.children, vec!["z".to_string()]);
    assert_eq!(r.stat, h.tree.stat("/a/x").unwrap());
    assert_eq!(o.watch, None);
    let o = read(
        &h,
        Request::GetChildren2(GetChildren2Request {
            path: "/nope".into(),
            watch: true,
        }),
    );
    assert_eq!(
        o,
        ReadOutcome {
            reply: Err(ErrorCode::NoNode),
            watch: None
        }
    );
    let o = read(
        &h,
        Request::GetAllChildrenNumber(GetAllChildrenNumberRequest { path: "/a".into() }),
    );
    assert_eq!(
        o.reply,
        Ok(ReadReply::GetAllChildrenNumber(
            GetAllChildrenNumberResponse { total_number: 4 }
        ))
    );
    let o = read(
        &h,
        Request::GetAllChildrenNumber(GetAllChildrenNumberRequest {
            path: "/nope".into(),
        }),
    );
    assert_eq!(o.reply, Err(ErrorCode::NoNode));
}

#[test]
fn get_acl_returns_list_and_stat() {
    let h = setup();
    let o = read(
        &h,
        Request::GetAcl(GetAclRequest {
            path: "/zookeeper/config".into(),
        }),
    );
    let Ok(ReadReply::GetAcl(r)) = &o.reply else {
        panic!("{o:?}")
    };
    assert_eq!(r.acl, crate::tree::read_acl_unsafe());
    assert_eq!(r.stat.aversion, -1);
    let o = read(
        &h,
        Request::GetAcl(GetAclRequest {
            path: "/nope".into(),
        }),
    );
    assert_eq!(o.reply, Err(ErrorCode::NoNode));
}

#[test]
fn get_ephemerals_filters_by_prefix() {
    let h = setup();
    let eph = |prefix: &str| match read(
        &h,
        Request::GetEphemerals(GetEphemeralsRequest {
            prefix_path: prefix.into(),
        }),
    )
    .reply
    {
        Ok(ReadReply::GetEphemerals(r)) => {
            let mut v = r.ephemerals;
            v.sort();
            v
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(eph("/"), vec!["/a/e1", "/b-e"]);
    assert_eq!(eph(""), vec!["/a/e1", "/b-e"]);
    assert_eq!(eph(" / "), vec!["/a/e1", "/b-e"]);
    assert_eq!(eph("/a"), vec!["/a/e1"]);
    // A plain string prefix, not a path prefix.
    assert_eq!(eph("/b"), vec!["/b-e"]);
    assert!(eph("/zzz").is_empty());
}

#[test]
fn multi_read_reports_per_op() {
    let h = setup();
    let req = Request::MultiRead(MultiRequest {
        ops: vec![
            MultiOp::GetData(GetDataRequest {
                path: "/a".into(),
                watch: true,
            }),
            MultiOp::GetChildren(GetChildrenRequest {
                path: "/nope".into(),
                watch: true,
            }),
            MultiOp::GetChildren(GetChildrenRequest {
                path: "/a/x".into(),
                watch: false,
            }),
        ],
    });
    let o = read(&h, req);
    assert_eq!(o.watch, None);
    assert_eq!(
        o.reply,
        Ok(ReadReply::MultiRead(MultiResponse {
            results: vec![
                OpResult::GetData {
                    data: Bytes::from_static(b"data"),
                    stat: h.tree.stat("/a").unwrap(),
                },
                OpResult::Error(ErrorCode::NoNode),
                OpResult::GetChildren {
                    children: vec!["z".into()]
                },
            ]
        }))
    );
    let req = Request::MultiRead(MultiRequest {
        ops: vec![MultiOp::Delete(DeleteRequest {
            path: "/a".into(),
            version: -1,
        })],
    });
    assert_eq!(read(&h, req).reply, Err(ErrorCode::MarshallingError));
    assert_eq!(read(&h, Request::Ping).reply, Err(ErrorCode::Unimplemented));
}

#[test]
fn reply_encodes_like_the_record() {
    let h = setup();
    let o = read(&h, Request::GetAcl(GetAclRequest { path: "/a".into() }));
    let mut w = bytes::BytesMut::new();
    o.reply.unwrap().encode(&mut w);
    let back = GetAclResponse::from_bytes(&w).unwrap();
    assert_eq!(back.acl, crate::tree::open_acl_unsafe());
}

#[test]
fn get_acl_masks_digests_without_admin() {
    let mut h = Harness::new();
    let acl = vec![Acl {
        perms: perms::READ,
        id: Id {
            scheme: "digest".into(),
            id: "user:secret".into(),
        },
    }];
    h.write(&Request::Create {
        op: OpCode::Create,
        req: CreateRequest {
            path: "/d".into(),
            data: Bytes::new(),
            acl,
            flags: 0,
        },
    });
    let auth = vec![Id {
        scheme: "digest".into(),
        id: "user:secret".into(),
    }];
    let o = process_read(
        &h.tree,
        SESSION,
        &auth,
        &Request::GetAcl(GetAclRequest { path: "/d".into() }),
    );
    let Ok(ReadReply::GetAcl(r)) = o.reply else {
        panic!()
    };
    assert_eq!(r.acl[0].id.id, "user:x");
    let o = process_read(
        &h.tree,
        SESSION,
        &[],
        &Request::GetAcl(GetAclRequest { path: "/d".into() }),
    );
    assert_eq!(o.reply, Err(ErrorCode::NoAuth));
}
