//! Pipeline behaviour across shards, driven through `sim::Sim`.

use super::sim::*;
use crate::proto::*;
use bytes::Buf;

fn get_data(path: &str, watch: bool) -> GetDataRequest {
    GetDataRequest {
        path: path.into(),
        watch,
    }
}

#[test]
fn sessions_are_created_through_the_commit_shard_with_zookeepers_password() {
    let mut sim = Sim::new(2);
    let (_, a, pa) = sim.session(1);
    let (_, b, _) = sim.session(0);
    assert_ne!(a, b);
    assert_eq!(&pa[..], &crate::session::password(a)[..]);
    // Both replicas know both sessions.
    for s in &sim.shards {
        assert!(s.with_tree(|t| t.session_timeout(a)).is_some());
        assert!(s.with_tree(|t| t.session_timeout(b)).is_some());
    }
}

#[test]
fn a_read_after_a_write_on_one_session_sees_the_write() {
    let mut sim = Sim::new(2);
    let (c, _, _) = sim.session(1);
    sim.send(1, c, 1, OpCode::Create, &create_req("/a", b"v1", 0))
        .unwrap();
    // Pipelined before the create is committed: must wait for it.
    sim.send(1, c, 2, OpCode::GetData, &get_data("/a", false))
        .unwrap();
    assert!(sim.frames(1, c).is_empty(), "nothing may be answered yet");
    sim.pump();
    let f = sim.frames(1, c);
    assert_eq!(f.len(), 2);
    assert_eq!((f[0].hdr.xid, f[0].hdr.err), (1, 0));
    assert_eq!(CreateResponse::from_bytes(&f[0].body).unwrap().path, "/a");
    assert_eq!((f[1].hdr.xid, f[1].hdr.err), (2, 0));
    let d = GetDataResponse::from_bytes(&f[1].body).unwrap();
    assert_eq!(&d.data[..], b"v1");
    assert_eq!(d.stat.czxid, f[0].hdr.zxid);
}

/// Two shards: a session on shard 1 (returned first) with a data watch on "/n", made
/// by a session on shard 0 (returned second), which then sets "/n" to "new" (xid 2).
/// Nothing is pumped after the setData.
fn watched_node_set_from_shard_0() -> (Sim, u64, u64) {
    let mut sim = Sim::new(2);
    let (w, _, _) = sim.session(1);
    let (c, _, _) = sim.session(0);
    sim.send(0, c, 1, OpCode::Create, &create_req("/n", b"old", 0))
        .unwrap();
    sim.pump();
    sim.send(1, w, 1, OpCode::GetData, &get_data("/n", true))
        .unwrap();
    let _ = sim.frames(1, w);
    sim.send(0, c, 2, OpCode::SetData, &set_data("/n", b"new"))
        .unwrap();
    (sim, w, c)
}

#[test]
fn a_watch_event_comes_before_any_reply_that_shows_the_change() {
    let (mut sim, w, _) = watched_node_set_from_shard_0();
    sim.pump();
    sim.send(1, w, 2, OpCode::GetData, &get_data("/n", false))
        .unwrap();
    let f = sim.frames(1, w);
    assert_eq!(f.len(), 2);
    assert_eq!(f[0].hdr.xid, xid::NOTIFICATION);
    let ev = WatcherEvent::from_bytes(&f[0].body).unwrap();
    assert_eq!(ev.r#type, EventType::NodeDataChanged as i32);
    assert_eq!(ev.path, "/n");
    assert_eq!(f[1].hdr.xid, 2);
    assert_eq!(
        &GetDataResponse::from_bytes(&f[1].body).unwrap().data[..],
        b"new"
    );
}

fn set_data(path: &str, data: &'static [u8]) -> SetDataRequest {
    SetDataRequest {
        path: path.into(),
        data: bytes::Bytes::from_static(data),
        version: -1,
    }
}

/// With one tree applied a batch at a time, a read pipelined between two writes of one
/// session sees the first and not the second: the second is held until the read ran,
/// so the two are never in one batch.
#[test]
fn a_read_between_two_pipelined_writes_sees_the_first_only() {
    for shard in [0, 1] {
        let mut sim = Sim::new(2);
        let (c, _, _) = sim.session(shard);
        sim.send(shard, c, 1, OpCode::Create, &create_req("/a", b"0", 0))
            .unwrap();
        sim.pump();
        let _ = sim.frames(shard, c);
        sim.send(shard, c, 2, OpCode::SetData, &set_data("/a", b"1"))
            .unwrap();
        sim.send(shard, c, 3, OpCode::GetData, &get_data("/a", false))
            .unwrap();
        sim.send(shard, c, 4, OpCode::SetData, &set_data("/a", b"2"))
            .unwrap();
        sim.send(shard, c, 5, OpCode::GetData, &get_data("/a", false))
            .unwrap();
        sim.pump();
        let f = sim.frames(shard, c);
        let xids: Vec<i32> = f.iter().map(|f| f.hdr.xid).collect();
        assert_eq!(xids, [2, 3, 4, 5]);
        let read = |f: &Frame| GetDataResponse::from_bytes(&f.body).unwrap().data;
        assert_eq!(&read(&f[1])[..], b"1", "the read between the writes");
        assert_eq!(&read(&f[3])[..], b"2");
        assert!(f[1].hdr.zxid < f[2].hdr.zxid);
    }
}

/// The owner applies a batch before another shard has delivered it: a read arriving
/// there first delivers the batch's watch events, so its reply never shows a change
/// before the event announcing it.
#[test]
fn a_read_on_a_shard_behind_the_tree_delivers_the_events_first() {
    let (mut sim, w, _) = watched_node_set_from_shard_0();
    // Only the owner applies; shard 1 has not been woken.
    let msg = sim.shards[0].take_outbox().unwrap();
    sim.core.on_input(msg, sim.now_ms);
    let batch = sim.shards[0].with_tree(|t| {
        sim.core
            .build_batch(t, 1_700_000_000_000 + sim.now_ms, sim.now_ms)
    });
    sim.shards[0].apply_batch(std::sync::Arc::new(batch));
    assert!(sim.frames(1, w).is_empty(), "shard 1 delivered nothing yet");
    sim.send(1, w, 2, OpCode::GetData, &get_data("/n", false))
        .unwrap();
    let f = sim.frames(1, w);
    assert_eq!(f.len(), 2);
    assert_eq!(f[0].hdr.xid, xid::NOTIFICATION);
    assert_eq!(f[1].hdr.xid, 2);
    assert_eq!(
        &GetDataResponse::from_bytes(&f[1].body).unwrap().data[..],
        b"new"
    );
    // The wake-up that comes later finds nothing more to deliver.
    assert_eq!(sim.shards[1].deliver_queued(), 0);
    assert!(sim.frames(1, w).is_empty());
}

#[test]
fn resuming_a_session_on_another_shard_closes_the_old_connection() {
    let mut sim = Sim::new(2);
    let (old, id, pw) = sim.session(0);
    let new = sim.open(1);
    let rsp = sim.connect(1, new, id, &pw);
    assert_eq!(rsp.session_id, id);
    assert!(rsp.time_out > 0);
    assert!(sim.is_closing(0, old));
    assert!(!sim.is_closing(1, new));
}

/// ZooKeeper answers a resumed session only once the session tracker (the leader's,
/// through REVALIDATE, on a learner) has touched it: a session whose expiry is decided
/// but not yet applied on this replica is refused, not resumed from the replica's copy.
#[test]
fn a_session_expired_but_not_yet_applied_here_is_not_resumed() {
    let mut sim = Sim::new(2);
    let (old, id, pw) = sim.session(0);
    sim.now_ms += 30_000;
    // The commit core expires the session; its closeSession is not applied yet.
    let expiry = sim.shards[0].with_tree(|t| {
        sim.core
            .build_batch(t, 1_700_000_000_000 + sim.now_ms, sim.now_ms)
    });
    assert_eq!(expiry.len(), 1, "the expiry's closeSession");
    assert!(sim.shards[1].with_tree(|t| t.session_timeout(id)).is_some());
    let c = sim.open(1);
    let rsp = sim.connect(1, c, id, &pw);
    assert_eq!((rsp.session_id, rsp.time_out), (0, 0));
    assert!(sim.is_closing(1, c));
    sim.apply(expiry);
    assert!(sim.is_closing(0, old));
}

/// Requests a client pipelines behind a resuming ConnectRequest wait for the answer,
/// then run in order.
#[test]
fn requests_pipelined_behind_a_resume_wait_for_it() {
    let mut sim = Sim::new(2);
    let (_, id, pw) = sim.session(0);
    let c = sim.open(1);
    let req = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        time_out: 10_000,
        session_id: id,
        passwd: pw.clone(),
        read_only: Some(false),
    };
    sim.shards[1].on_frame(c, &req.to_bytes()).unwrap();
    sim.send(
        1,
        c,
        1,
        OpCode::Exists,
        &ExistsRequest {
            path: "/".into(),
            watch: false,
        },
    )
    .unwrap();
    assert!(
        sim.shards[1]
            .take_output(c)
            .is_none_or(|(o, _)| o.is_empty()),
        "nothing is answered before the session is revalidated"
    );
    sim.pump();
    let (out, _) = sim.shards[1].take_output(c).unwrap();
    let mut out = out.freeze();
    let len = out.get_i32() as usize;
    let rsp = ConnectResponse::from_bytes(&out[..len]).unwrap();
    assert_eq!(rsp.session_id, id);
    out.advance(len);
    let len = out.get_i32() as usize;
    let hdr = ReplyHeader::decode(&mut Reader::new(&out[..len])).unwrap();
    assert_eq!((hdr.xid, hdr.err), (1, 0));
}

#[test]
fn a_wrong_password_gets_the_expired_answer() {
    let mut sim = Sim::new(1);
    let (_, id, _) = sim.session(0);
    let c = sim.open(0);
    let rsp = sim.connect(0, c, id, &[7; 16]);
    assert_eq!((rsp.session_id, rsp.time_out), (0, 0));
    assert!(sim.is_closing(0, c));
}

#[test]
fn closing_a_session_deletes_its_ephemerals_and_tells_watchers() {
    let mut sim = Sim::new(2);
    let (owner, _, _) = sim.session(0);
    let (w, _, _) = sim.session(1);
    sim.send(0, owner, 1, OpCode::Create, &create_req("/e", b"", 1))
        .unwrap();
    sim.pump();
    sim.send(
        1,
        w,
        1,
        OpCode::Exists,
        &ExistsRequest {
            path: "/e".into(),
            watch: true,
        },
    )
    .unwrap();
    let _ = sim.frames(1, w);
    sim.send(0, owner, 2, OpCode::CloseSession, &()).unwrap();
    sim.pump();
    let f = sim.frames(0, owner);
    assert_eq!(
        (f.last().unwrap().hdr.xid, f.last().unwrap().hdr.err),
        (2, 0)
    );
    assert!(sim.is_closing(0, owner));
    let f = sim.frames(1, w);
    assert_eq!(f.len(), 1);
    let ev = WatcherEvent::from_bytes(&f[0].body).unwrap();
    assert_eq!(ev.r#type, EventType::NodeDeleted as i32);
    for s in &sim.shards {
        assert!(s.with_tree(|t| t.stat("/e")).is_none());
    }
}

#[test]
fn expired_sessions_lose_their_ephemerals() {
    let mut sim = Sim::new(2);
    let (c, id, _) = sim.session(1);
    sim.send(1, c, 1, OpCode::Create, &create_req("/x", b"", 1))
        .unwrap();
    sim.pump();
    sim.advance(30_000);
    for s in &sim.shards {
        assert!(s.with_tree(|t| t.stat("/x")).is_none());
        assert!(s.with_tree(|t| t.session_timeout(id)).is_none());
    }
    assert!(sim.is_closing(1, c));
}

#[test]
fn an_unknown_opcode_is_answered_unimplemented_and_closed() {
    let mut sim = Sim::new(1);
    let (c, _, _) = sim.session(0);
    let mut f = bytes::BytesMut::new();
    RequestHeader {
        xid: 5,
        r#type: 999,
    }
    .encode(&mut f);
    sim.shards[0].on_frame(c, &f).unwrap();
    let fr = sim.frames(0, c);
    assert_eq!(fr[0].hdr.err, ErrorCode::Unimplemented.as_i32());
    assert!(sim.is_closing(0, c));
}

#[test]
fn a_malformed_body_fails_only_that_request_and_a_bad_header_closes() {
    let mut sim = Sim::new(1);
    let (bad, _, _) = sim.session(0);
    let (good, _, _) = sim.session(0);
    let mut f = bytes::BytesMut::new();
    RequestHeader {
        xid: 1,
        r#type: OpCode::Create.as_i32(),
    }
    .encode(&mut f);
    f.extend_from_slice(&[0, 0, 0, 200, b'x']);
    sim.shards[0].on_frame(bad, &f).unwrap();
    let fr = sim.frames(0, bad);
    assert_eq!(
        (fr[0].hdr.xid, fr[0].hdr.err),
        (1, ErrorCode::MarshallingError.as_i32())
    );
    assert!(!sim.is_closing(0, bad));
    // Three bytes cannot even hold a RequestHeader.
    assert!(sim.shards[0].on_frame(bad, &[0, 0, 1]).is_err());
    sim.send(0, good, 1, OpCode::Create, &create_req("/ok", b"", 0))
        .unwrap();
    sim.pump();
    assert_eq!(sim.frames(0, good)[0].hdr.err, 0);
}

#[test]
fn auth_pipelined_behind_connect_is_answered_after_the_connect_response() {
    let mut sim = Sim::new(2);
    let c = sim.open(1);
    let req = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        time_out: 10_000,
        session_id: 0,
        passwd: bytes::Bytes::from_static(&[0; 16]),
        read_only: None,
    };
    sim.shards[1].on_frame(c, &req.to_bytes()).unwrap();
    sim.send(
        1,
        c,
        xid::AUTH,
        OpCode::Auth,
        &AuthPacket {
            r#type: 0,
            scheme: "digest".into(),
            auth: bytes::Bytes::from_static(b"u:p"),
        },
    )
    .unwrap();
    assert!(sim.frames(1, c).is_empty());
    sim.pump();
    let (out, _) = sim.shards[1].take_output(c).unwrap();
    // ConnectResponse first (no readOnly byte: the request had none), then the auth reply.
    let len = i32::from_be_bytes(out[..4].try_into().unwrap()) as usize;
    assert_eq!(len, 4 + 4 + 8 + 4 + 16);
    let auth = ReplyHeader::from_bytes(&out[4 + len + 4..]).unwrap();
    assert_eq!((auth.xid, auth.err), (xid::AUTH, 0));
}

#[test]
fn a_wrong_password_still_moves_the_session_off_its_connection() {
    let mut sim = Sim::new(2);
    let (live, id, pw) = sim.session(0);
    let bad = sim.open(1);
    let mut wrong = pw.to_vec();
    wrong[0] ^= 0xff;
    assert_eq!(sim.connect(1, bad, id, &wrong).session_id, 0);
    assert!(sim.is_closing(0, live));
    assert!(sim.is_closing(1, bad));
    let again = sim.open(1);
    assert_eq!(sim.connect(1, again, id, &pw).session_id, id);
}

#[test]
fn a_bare_check_is_unimplemented_as_in_zookeeper() {
    let mut sim = Sim::new(1);
    let (c, _, _) = sim.session(0);
    sim.send(
        0,
        c,
        3,
        OpCode::Check,
        &CheckVersionRequest {
            path: "/".into(),
            version: 0,
        },
    )
    .unwrap();
    let fr = sim.frames(0, c);
    assert_eq!(
        (fr[0].hdr.xid, fr[0].hdr.err),
        (3, ErrorCode::Unimplemented.as_i32())
    );
    assert!(sim.is_closing(0, c));
}

#[test]
fn a_watcher_without_read_on_the_node_is_not_told() {
    let mut sim = Sim::new(2);
    let (w, _, _) = sim.session(1);
    let (c, _, _) = sim.session(0);
    sim.send(
        1,
        w,
        1,
        OpCode::Exists,
        &ExistsRequest {
            path: "/secret".into(),
            watch: true,
        },
    )
    .unwrap();
    let _ = sim.frames(1, w);
    let mut req = create_req("/secret", b"", 0);
    req.acl = vec![Acl {
        perms: perms::ALL,
        id: Id {
            scheme: "ip".into(),
            id: "10.9.9.9".into(),
        },
    }];
    sim.send(0, c, 1, OpCode::Create, &req).unwrap();
    sim.pump();
    assert_eq!(sim.frames(0, c)[0].hdr.err, 0);
    assert!(
        sim.frames(1, w).is_empty(),
        "NodeCreated must not reach a watcher without READ"
    );
}

// ---- a full disk: writes refused with THROTTLEDOP ----------------------------------

#[test]
fn a_full_disk_answers_writes_throttled_keeps_reads_and_resumes() {
    let mut sim = Sim::new(2);
    let (c, _, _) = sim.session(1);
    let (w, _, _) = sim.session(0);
    sim.send(1, c, 1, OpCode::Create, &create_req("/kept", b"v", 0))
        .unwrap();
    sim.pump();
    let kept_zxid = sim.frames(1, c)[0].hdr.zxid;
    sim.send(
        0,
        w,
        1,
        OpCode::Exists,
        &ExistsRequest {
            path: "/lost".into(),
            watch: true,
        },
    )
    .unwrap();
    let _ = sim.frames(0, w);
    sim.disk_full = true;
    sim.send(1, c, 2, OpCode::Create, &create_req("/lost", b"", 0))
        .unwrap();
    // Pipelined behind the refused write: still answered, in order.
    sim.send(1, c, 3, OpCode::GetData, &get_data("/kept", false))
        .unwrap();
    sim.pump();
    let f = sim.frames(1, c);
    assert_eq!(f.len(), 2);
    assert_eq!(
        (f[0].hdr.xid, f[0].hdr.err, f[0].hdr.zxid),
        (2, ErrorCode::Throttled.as_i32(), kept_zxid)
    );
    assert_eq!((f[1].hdr.xid, f[1].hdr.err), (3, 0));
    assert_eq!(
        &GetDataResponse::from_bytes(&f[1].body).unwrap().data[..],
        b"v"
    );
    for s in &sim.shards {
        assert!(s.with_tree(|t| t.stat("/lost")).is_none());
        assert_eq!(s.with_tree(|t| t.last_processed_zxid()), kept_zxid);
    }
    assert!(
        sim.frames(0, w).is_empty(),
        "no watch fired for a refused write"
    );
    // Space returns: the retried write succeeds with the zxid the refused one had.
    sim.disk_full = false;
    sim.send(1, c, 4, OpCode::Create, &create_req("/lost", b"", 0))
        .unwrap();
    sim.pump();
    let f = sim.frames(1, c);
    assert_eq!((f[0].hdr.xid, f[0].hdr.err), (4, 0));
    assert_eq!(f[0].hdr.zxid, kept_zxid + 1);
    assert_eq!(sim.frames(0, w).len(), 1, "the watch fires now");
}

#[test]
fn a_full_disk_closes_a_new_sessions_connection() {
    let mut sim = Sim::new(2);
    sim.disk_full = true;
    let c = sim.open(1);
    let req = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        time_out: 10_000,
        session_id: 0,
        passwd: bytes::Bytes::from_static(&[0; 16]),
        read_only: Some(false),
    };
    sim.shards[1].on_frame(c, &req.to_bytes()).unwrap();
    sim.pump();
    assert!(sim.frames(1, c).is_empty(), "no ConnectResponse");
    assert!(sim.is_closing(1, c));
    for s in &sim.shards {
        assert!(s.with_tree(|t| t.sessions()).is_empty());
    }
    // Nothing is left to expire, and a reconnect once space returns works.
    sim.disk_full = false;
    sim.advance(30_000);
    let (_, id, _) = sim.session(1);
    assert_ne!(id, 0);
    assert_eq!(sim.shards[0].with_tree(|t| t.sessions()).len(), 1);
}

#[test]
fn a_refused_close_or_expiry_leaves_the_session_and_is_retried() {
    let mut sim = Sim::new(2);
    let (c, id, _) = sim.session(0);
    sim.send(0, c, 1, OpCode::Create, &create_req("/e", b"", 1))
        .unwrap();
    sim.pump();
    let _ = sim.frames(0, c);
    sim.disk_full = true;
    sim.send(0, c, 2, OpCode::CloseSession, &()).unwrap();
    sim.pump();
    let f = sim.frames(0, c);
    assert_eq!(
        (f[0].hdr.xid, f[0].hdr.err),
        (2, ErrorCode::Throttled.as_i32())
    );
    assert!(!sim.is_closing(0, c), "the session goes on");
    // Its writes are still taken (and refused only for lack of space).
    sim.send(
        0,
        c,
        3,
        OpCode::SetData,
        &SetDataRequest {
            path: "/e".into(),
            data: bytes::Bytes::from_static(b"x"),
            version: -1,
        },
    )
    .unwrap();
    sim.pump();
    let f = sim.frames(0, c);
    assert_eq!(
        (f[0].hdr.xid, f[0].hdr.err),
        (3, ErrorCode::Throttled.as_i32())
    );
    // Now it times out while the disk is full: the expiry is refused too.
    sim.advance(30_000);
    for s in &sim.shards {
        assert!(s.with_tree(|t| t.session_timeout(id)).is_some());
        assert!(s.with_tree(|t| t.stat("/e")).is_some());
    }
    // Once space returns the expiry is retried at the next tick.
    sim.disk_full = false;
    sim.advance(100);
    for s in &sim.shards {
        assert!(s.with_tree(|t| t.session_timeout(id)).is_none());
        assert!(s.with_tree(|t| t.stat("/e")).is_none());
    }
    assert!(sim.is_closing(0, c));
}

/// SASL (opcode 102) and `enforce.auth` on a shard, with the DIGEST-MD5 client side
/// computed by `sasl::digest_md5::response_value`.
mod sasl {
    use super::*;
    use crate::acl::AuthProviders;
    use crate::config::auth::AuthConfig;
    use crate::sasl::digest_md5::{response_value, ResponseInput};
    use crate::sasl::kerberos::NameRules;
    use crate::sasl::SaslServerSettings;
    use crate::server::messages::ConnId;
    use bytes::Bytes;
    use rand::SeedableRng;
    use std::sync::{Arc, Mutex};

    fn providers(f: impl FnOnce(&mut AuthConfig)) -> AuthProviders {
        let mut c = AuthConfig {
            sasl_provider: true,
            super_users: vec!["admin".into()],
            sasl: Some(Arc::new(SaslServerSettings {
                users: [("bob", "bobsecret"), ("admin", "adminsecret")]
                    .into_iter()
                    .map(|(u, p)| (u.to_string(), p.to_string()))
                    .collect(),
                super_password: None,
                names: NameRules::default(),
                nonce_source: Mutex::new(Box::new(rand::rngs::StdRng::seed_from_u64(1))),
            })),
            ..AuthConfig::default()
        };
        f(&mut c);
        AuthProviders {
            super_digest: None,
            config: Arc::new(c),
        }
    }

    fn sim_with(p: AuthProviders) -> Sim {
        let mut sim = Sim::new(1);
        sim.shards[0].cfg.auth = p;
        sim
    }

    fn sasl(sim: &mut Sim, c: ConnId, xid: i32, token: &[u8]) -> Frame {
        sim.send(
            0,
            c,
            xid,
            OpCode::Sasl,
            &GetSaslRequest {
                token: Bytes::copy_from_slice(token),
            },
        )
        .unwrap();
        let mut f = sim.frames(0, c);
        assert_eq!(f.len(), 1, "{f:?}");
        f.remove(0)
    }

    fn token(f: &Frame) -> Option<Vec<u8>> {
        let mut r = Reader::new(&f.body);
        let n = r.read_i32().unwrap();
        (n >= 0).then(|| f.body[4..4 + n as usize].to_vec())
    }

    /// The client's digest-response to `challenge`.
    fn respond(challenge: &[u8], user: &str, password: &str) -> Vec<u8> {
        let text = std::str::from_utf8(challenge).unwrap();
        let nonce = text
            .split("nonce=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let input = ResponseInput {
            digest_uri: "zookeeper/zk-sasl-md5",
            qop: "auth",
            username: user,
            realm: "zk-sasl-md5",
            password,
            nonce: nonce.as_bytes(),
            cnonce: b"clientnonce",
            nonce_count: 1,
            authzid: None,
        };
        let resp = String::from_utf8(response_value("AUTHENTICATE", &input)).unwrap();
        format!(
            "username=\"{user}\",realm=\"zk-sasl-md5\",nonce=\"{nonce}\",cnonce=\"clientnonce\",nc=00000001,qop=auth,digest-uri=\"zookeeper/zk-sasl-md5\",response={resp}"
        )
        .into_bytes()
    }

    fn ids(sim: &Sim, c: ConnId) -> Vec<(String, String)> {
        sim.shards[0].conns[&c]
            .auth
            .iter()
            .map(|i| (i.scheme.clone(), i.id.clone()))
            .collect()
    }

    fn pair(s: &str, i: &str) -> (String, String) {
        (s.into(), i.into())
    }

    #[test]
    fn a_digest_login_adds_the_sasl_id_and_super_for_a_super_user() {
        for (user, password, extra) in [
            ("bob", "bobsecret", vec![pair("sasl", "bob")]),
            (
                "admin",
                "adminsecret",
                vec![pair("sasl", "admin"), pair("super", "")],
            ),
        ] {
            let mut sim = sim_with(providers(|_| {}));
            let (c, _, _) = sim.session(0);
            let ch = sasl(&mut sim, c, 1, b"");
            assert_eq!(ch.hdr.err, 0);
            let challenge = token(&ch).unwrap();
            assert!(challenge.starts_with(b"realm=\"zk-sasl-md5\",nonce=\""));
            let done = sasl(&mut sim, c, 2, &respond(&challenge, user, password));
            assert_eq!(done.hdr.err, 0);
            assert!(token(&done).unwrap().starts_with(b"rspauth="));
            let mut want = vec![pair("ip", "127.0.0.1")];
            want.extend(extra);
            assert_eq!(ids(&sim, c), want);
            assert!(!sim.is_closing(0, c));
        }
    }

    #[test]
    fn a_failed_login_is_auth_failed_and_closes_unless_allowed() {
        let mut sim = sim_with(providers(|_| {}));
        let (c, _, _) = sim.session(0);
        let ch = token(&sasl(&mut sim, c, 1, b"")).unwrap();
        let f = sasl(&mut sim, c, 2, &respond(&ch, "bob", "wrong"));
        assert_eq!(f.hdr.err, ErrorCode::AuthFailed.as_i32());
        assert_eq!(token(&f), None);
        assert!(sim.is_closing(0, c));
        assert_eq!(ids(&sim, c), vec![pair("ip", "127.0.0.1")]);

        let mut sim = sim_with(providers(|c| c.allow_sasl_failed_clients = true));
        let (c, _, _) = sim.session(0);
        let ch = token(&sasl(&mut sim, c, 1, b"")).unwrap();
        let f = sasl(&mut sim, c, 2, &respond(&ch, "mallory", "bobsecret"));
        assert_eq!((f.hdr.err, token(&f)), (0, None));
        assert!(!sim.is_closing(0, c));
        // A garbage token after that fails again, still allowed.
        let f = sasl(&mut sim, c, 3, b"\"\"\"");
        assert_eq!((f.hdr.err, token(&f)), (0, None));
    }

    #[test]
    fn what_zookeeper_does_not_catch_drops_the_connection_unanswered() {
        // A malformed Kerberos name (IllegalArgumentException in ZooKeeper's handler)
        // ends the connection without a reply, even with allowSaslFailedClients.
        let mut p = providers(|c| c.allow_sasl_failed_clients = true);
        let cfg = Arc::make_mut(&mut p.config);
        let mut users = cfg.sasl.as_ref().unwrap().users.clone();
        users.insert("a@b@c".into(), "pw".into());
        cfg.sasl = Some(Arc::new(SaslServerSettings {
            users,
            super_password: None,
            names: NameRules::default(),
            nonce_source: Mutex::new(Box::new(rand::rngs::StdRng::seed_from_u64(2))),
        }));
        let mut sim = sim_with(p);
        let (c, _, _) = sim.session(0);
        let ch = token(&sasl(&mut sim, c, 1, b"")).unwrap();
        sim.send(
            0,
            c,
            2,
            OpCode::Sasl,
            &GetSaslRequest {
                token: Bytes::from(respond(&ch, "a@b@c", "pw")),
            },
        )
        .unwrap();
        assert!(sim.frames(0, c).is_empty());
        assert!(sim.is_closing(0, c));
    }

    #[test]
    fn without_a_jaas_section_a_token_gets_a_null_answer() {
        let mut sim = sim_with(providers(|c| c.sasl = None));
        let (c, _, _) = sim.session(0);
        let f = sasl(&mut sim, c, 1, b"anything");
        assert_eq!((f.hdr.err, token(&f)), (0, None));
        assert_eq!(ids(&sim, c), vec![pair("ip", "127.0.0.1")]);
    }

    fn exists(sim: &mut Sim, c: ConnId, xid: i32) {
        sim.send(
            0,
            c,
            xid,
            OpCode::Exists,
            &ExistsRequest {
                path: "/".into(),
                watch: false,
            },
        )
        .unwrap();
    }

    #[test]
    fn enforced_sasl_refuses_other_requests_before_login() {
        let required = |c: &mut AuthConfig| {
            c.enforce_auth = true;
            c.enforce_auth_schemes = vec!["sasl".into()];
        };
        let mut sim = sim_with(providers(required));
        let (c, _, _) = sim.session(0);
        exists(&mut sim, c, 1);
        exists(&mut sim, c, 2);
        let f = sim.frames(0, c);
        // Answered once, then the connection reads nothing more.
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(
            (f[0].hdr.xid, f[0].hdr.err),
            (1, ErrorCode::SessionClosedRequireSaslAuth.as_i32())
        );
        assert!(sim.is_closing(0, c));

        // A failed login under required SASL is refused with the same code.
        let mut sim = sim_with(providers(|c| {
            required(c);
            c.allow_sasl_failed_clients = true;
        }));
        let (c, _, _) = sim.session(0);
        let ch = token(&sasl(&mut sim, c, 1, b"")).unwrap();
        let f = sasl(&mut sim, c, 2, &respond(&ch, "bob", "wrong"));
        assert_eq!(f.hdr.err, ErrorCode::SessionClosedRequireSaslAuth.as_i32());
        assert!(sim.is_closing(0, c));

        // After a login, requests go through.
        let mut sim = sim_with(providers(required));
        let (c, _, _) = sim.session(0);
        let ch = token(&sasl(&mut sim, c, 1, b"")).unwrap();
        assert_eq!(
            sasl(&mut sim, c, 2, &respond(&ch, "bob", "bobsecret"))
                .hdr
                .err,
            0
        );
        exists(&mut sim, c, 3);
        let f = sim.frames(0, c);
        assert_eq!((f[0].hdr.xid, f[0].hdr.err), (3, 0));
    }
}
