//! Sessions: creation and timeout negotiation, close and expiry (ephemerals removed,
//! watchers told), reconnecting to the same session, setWatches after a reconnect, and
//! refusal of wrong passwords and unknown sessions.

mod common;

use std::time::Duration;

use common::raw::*;
use common::*;
use corral::proto::*;
use zk::{CreateMode, Error, EventType};
use zookeeper_client as zk;

#[tokio::test]
async fn timeout_negotiation_and_handshake_shape() {
    let srv = TestServer::start(&["minSessionTimeout=1000", "maxSessionTimeout=3000"]);
    let mut c = RawConn::open(srv.addr).await;
    let short = c.handshake(&connect_request(10, 0, &[0; 16])).await;
    assert_eq!(short.time_out, 1000);
    assert_ne!(short.session_id, 0);
    assert_eq!(short.passwd.len(), 16);
    assert_eq!(short.read_only, Some(false));
    let mut c2 = RawConn::open(srv.addr).await;
    let long = c2.handshake(&connect_request(1_000_000, 0, &[0; 16])).await;
    assert_eq!(long.time_out, 3000);
    assert_ne!(long.session_id, short.session_id);
    let mut c3 = RawConn::open(srv.addr).await;
    let mid = c3.handshake(&connect_request(2000, 0, &[0; 16])).await;
    assert_eq!(mid.time_out, 2000);
    // A client that omits the readOnly byte gets a reply without it.
    let mut old = RawConn::open(srv.addr).await;
    let mut req = connect_request(2000, 0, &[0; 16]);
    req.read_only = None;
    assert_eq!(old.handshake(&req).await.read_only, None);
    // Pings are answered with xid -2.
    c.send_xid(xid::PING, OpCode::Ping.as_i32(), None).await;
    let r = c.reply().await;
    assert_eq!((r.header.xid, r.header.err), (xid::PING, 0));
}

#[tokio::test]
async fn default_bounds_are_two_and_twenty_ticks() {
    let srv = TestServer::start(&["tickTime=100"]);
    let mut c = RawConn::open(srv.addr).await;
    assert_eq!(
        c.handshake(&connect_request(1, 0, &[0; 16])).await.time_out,
        200
    );
    let mut c = RawConn::open(srv.addr).await;
    assert_eq!(
        c.handshake(&connect_request(60_000, 0, &[0; 16]))
            .await
            .time_out,
        2000
    );
}

#[tokio::test]
async fn close_session_removes_ephemerals_and_notifies() {
    let srv = TestServer::start(&[]);
    let a = srv.client().await;
    let b = srv.client().await;
    a.create("/eph", b"", &mode(CreateMode::Ephemeral))
        .await
        .unwrap();
    a.create("/keep", b"", &anyone()).await.unwrap();
    let (st, w) = b.check_and_watch_stat("/eph").await.unwrap();
    assert_eq!(st.unwrap().ephemeral_owner, a.session_id().0);
    drop(a); // the last handle closes the session
    let ev = within(10, "NodeDeleted after close", w.changed()).await;
    assert_eq!(ev.event_type, EventType::NodeDeleted);
    assert_eq!(ev.path, "/eph");
    assert!(b.check_stat("/eph").await.unwrap().is_none());
    assert!(b.check_stat("/keep").await.unwrap().is_some());
}

#[tokio::test]
async fn raw_close_session_then_reuse_is_refused() {
    let srv = TestServer::start(&[]);
    let (mut a, resp) = RawConn::connect(srv.addr).await;
    let r = a
        .call(OpCode::Create, Some(&create_req("/x", b"", 1)))
        .await;
    assert_eq!(r.err(), 0);
    let r = a.call(OpCode::CloseSession, None).await;
    assert_eq!(r.err(), 0);
    assert!(r.body.is_empty());
    assert!(a.closed_within(Duration::from_secs(5)).await);
    let mut again = RawConn::open(srv.addr).await;
    let refused = again
        .handshake(&connect_request(4000, resp.session_id, &resp.passwd))
        .await;
    assert_eq!(refused.session_id, 0);
    assert_eq!(refused.time_out, 0);
    assert!(again.closed_within(Duration::from_secs(5)).await);
    let b = srv.client().await;
    assert!(b.check_stat("/x").await.unwrap().is_none());
}

#[tokio::test]
async fn expiry_removes_ephemerals_and_closes_silent_connection() {
    let srv = TestServer::start(&[]);
    let watcher = srv.client().await;
    // A raw session that never pings: the server must expire it after ~400ms.
    let mut quiet = RawConn::open(srv.addr).await;
    let resp = quiet.handshake(&connect_request(400, 0, &[0; 16])).await;
    assert_eq!(resp.time_out, 400);
    let r = quiet
        .call(OpCode::Create, Some(&create_req("/quiet", b"", 1)))
        .await;
    assert_eq!(r.err(), 0);
    let (_, w) = watcher.check_and_watch_stat("/quiet").await.unwrap();
    let ev = within(10, "NodeDeleted after expiry", w.changed()).await;
    assert_eq!(ev.event_type, EventType::NodeDeleted);
    assert!(
        quiet.closed_within(Duration::from_secs(5)).await,
        "expired session's connection is closed"
    );
    // The expired session cannot be resumed.
    let mut again = RawConn::open(srv.addr).await;
    let refused = again
        .handshake(&connect_request(4000, resp.session_id, &resp.passwd))
        .await;
    assert_eq!((refused.session_id, refused.time_out), (0, 0));
}

#[tokio::test]
async fn detached_client_expires_and_cannot_resume() {
    let srv = TestServer::start(&[]);
    let b = srv.client().await;
    let a = srv
        .connector()
        .with_session_timeout(Duration::from_millis(800))
        .with_detached()
        .connect(&srv.connect_string())
        .await
        .unwrap();
    a.create("/gone", b"", &mode(CreateMode::EphemeralSequential))
        .await
        .unwrap();
    let path = a.list_ephemerals("/").await.unwrap().remove(0);
    let session = a.session().clone();
    let (_, w) = b.check_and_watch_stat(&path).await.unwrap();
    drop(a); // detached: the connection goes, the session is not closed
    let ev = within(15, "NodeDeleted after expiry", w.changed()).await;
    assert_eq!(ev.event_type, EventType::NodeDeleted);
    let err = srv
        .connector()
        .with_session(session)
        .connect(&srv.connect_string())
        .await
        .unwrap_err();
    assert_eq!(err, Error::SessionExpired);
}

#[tokio::test]
async fn reconnect_with_id_and_password_keeps_the_session() {
    let srv = TestServer::start(&[]);
    let a = srv
        .connector()
        .with_detached()
        .connect(&srv.connect_string())
        .await
        .unwrap();
    let id = a.session_id();
    a.create("/mine", b"", &mode(CreateMode::Ephemeral))
        .await
        .unwrap();
    let session = a.session().clone();
    drop(a);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let a2 = srv
        .connector()
        .with_session(session)
        .connect(&srv.connect_string())
        .await
        .unwrap();
    assert_eq!(a2.session_id(), id);
    let st = a2.check_stat("/mine").await.unwrap().unwrap();
    assert_eq!(st.ephemeral_owner, id.0);
    assert_eq!(a2.list_ephemerals("/").await.unwrap(), vec!["/mine"]);
}

/// A client cut off while others change things re-registers its watches with
/// setWatches on reconnect and is told about what it missed.
#[tokio::test]
async fn watches_survive_reconnect_via_set_watches() {
    let srv = TestServer::start(&[]);
    let proxy = Proxy::start(srv.addr).await;
    let a = srv
        .connector()
        .connect(&proxy.addr.to_string())
        .await
        .unwrap();
    let b = srv.client().await;
    a.create("/w", b"", &anyone()).await.unwrap();
    let (_, _, data_w) = a.get_and_watch_data("/w").await.unwrap();
    let (_, exist_w) = a.check_and_watch_stat("/later").await.unwrap();
    let (_, child_w) = a.list_and_watch_children("/w").await.unwrap();
    let (_, still_w) = a.check_and_watch_stat("/never").await.unwrap();

    proxy.set_blocked(true);
    proxy.cut();
    b.set_data("/w", b"changed", None).await.unwrap();
    b.create("/later", b"", &anyone()).await.unwrap();
    b.create("/w/kid", b"", &anyone()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.set_blocked(false);

    let ev = within(15, "data event after reconnect", data_w.changed()).await;
    assert_eq!(ev.event_type, EventType::NodeDataChanged);
    let ev = within(5, "exist event after reconnect", exist_w.changed()).await;
    assert_eq!(ev.event_type, EventType::NodeCreated);
    let ev = within(5, "child event after reconnect", child_w.changed()).await;
    assert_eq!(ev.event_type, EventType::NodeChildrenChanged);
    // A watch on an untouched path is re-registered, not fired.
    let still = tokio::spawn(async move { still_w.changed().await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!still.is_finished());
    b.create("/never", b"", &anyone()).await.unwrap();
    let ev = within(5, "re-registered watch", still).await.unwrap();
    assert_eq!(ev.event_type, EventType::NodeCreated);
}

/// setWatches on the wire: watches older than relativeZxid fire at once, the rest
/// are registered.
#[tokio::test]
async fn raw_set_watches_fires_missed_changes() {
    let srv = TestServer::start(&[]);
    let (mut w, _) = RawConn::connect(srv.addr).await;
    let r = w
        .call(OpCode::Create, Some(&create_req("/sw", b"", 0)))
        .await;
    let created = r.header.zxid;
    let set = SetDataRequest {
        path: "/sw".into(),
        data: "1".into(),
        version: -1,
    };
    assert_eq!(w.call(OpCode::SetData, Some(&set)).await.err(), 0);

    let (mut c, _) = RawConn::connect(srv.addr).await;
    let sw = SetWatches {
        relative_zxid: created,
        data_watches: vec!["/sw".into()],
        exist_watches: vec!["/absent".into(), "/sw".into()],
        child_watches: vec!["/sw".into()],
    };
    c.send_xid(xid::SET_WATCHES, OpCode::SetWatches.as_i32(), Some(&sw))
        .await;
    let r = c.reply().await;
    assert_eq!((r.header.xid, r.header.err), (xid::SET_WATCHES, 0));
    let r = c
        .call(OpCode::Sync, Some(&SyncRequest { path: "/".into() }))
        .await;
    assert_eq!(r.err(), 0);
    let mut evs: Vec<(i32, String)> = c.events.drain(..).map(|e| (e.r#type, e.path)).collect();
    evs.sort();
    // An exist watch on a node that exists fires NodeCreated; /sw's data changed after
    // relativeZxid so its data watch fires; its children did not change, and /absent
    // does not exist yet, so those two are registered.
    assert_eq!(evs, vec![(1, "/sw".to_string()), (3, "/sw".to_string())]);

    assert_eq!(
        w.call(OpCode::Create, Some(&create_req("/absent", b"", 0)))
            .await
            .err(),
        0
    );
    assert_eq!(
        w.call(OpCode::Create, Some(&create_req("/sw/k", b"", 0)))
            .await
            .err(),
        0
    );
    let r = c
        .call(OpCode::Sync, Some(&SyncRequest { path: "/".into() }))
        .await;
    assert_eq!(r.err(), 0);
    let mut evs: Vec<(i32, String)> = c.events.drain(..).map(|e| (e.r#type, e.path)).collect();
    evs.sort();
    assert_eq!(
        evs,
        vec![(1, "/absent".to_string()), (4, "/sw".to_string())]
    );
}

#[tokio::test]
async fn wrong_password_or_unknown_session_is_expired() {
    let srv = TestServer::start(&[]);
    let (mut live, resp) = RawConn::connect(srv.addr).await;
    let mut bad = RawConn::open(srv.addr).await;
    let mut wrong = resp.passwd.to_vec();
    wrong[0] ^= 0xff;
    let refused = bad
        .handshake(&connect_request(4000, resp.session_id, &wrong))
        .await;
    assert_eq!(refused.session_id, 0);
    assert_eq!(refused.time_out, 0);
    assert_eq!(&refused.passwd[..], &[0u8; 16]);
    assert!(bad.closed_within(Duration::from_secs(5)).await);

    let mut unknown = RawConn::open(srv.addr).await;
    let refused = unknown
        .handshake(&connect_request(4000, 0x0123_4567_89ab, &[7; 16]))
        .await;
    assert_eq!((refused.session_id, refused.time_out), (0, 0));
    assert!(unknown.closed_within(Duration::from_secs(5)).await);

    // ZooKeeper closes the session's current connection before it checks the
    // password (ZooKeeperServer.processConnectRequest, CLIENT_RECONNECT), so even a
    // failed attempt moves the session off `live`; the session itself survives.
    assert!(live.closed_within(Duration::from_secs(5)).await);

    // It can move to a new connection with the right password.
    let mut moved = RawConn::open(srv.addr).await;
    let ok = moved
        .handshake(&connect_request(4000, resp.session_id, &resp.passwd))
        .await;
    assert_eq!(ok.session_id, resp.session_id);
    assert_eq!(ok.passwd, resp.passwd);
}

/// Clients (this crate's `with_auth`, the Java client) pipeline requests right behind
/// the ConnectRequest, in the same TCP segment; they must all be served in order.
#[tokio::test]
async fn requests_pipelined_behind_connect_are_served() {
    let srv = TestServer::start(&[]);
    let mut c = RawConn::open(srv.addr).await;
    let mut bytes = frame(&connect_request(4000, 0, &[0; 16]).to_bytes());
    let auth = AuthPacket {
        r#type: 0,
        scheme: "digest".into(),
        auth: "alice:secret".into(),
    };
    let mut req = bytes::BytesMut::new();
    RequestHeader {
        xid: xid::AUTH,
        r#type: OpCode::Auth.as_i32(),
    }
    .encode(&mut req);
    auth.encode(&mut req);
    bytes.extend_from_slice(&frame(&req));
    let mut req = bytes::BytesMut::new();
    RequestHeader {
        xid: 1,
        r#type: OpCode::Exists.as_i32(),
    }
    .encode(&mut req);
    ExistsRequest {
        path: "/".into(),
        watch: false,
    }
    .encode(&mut req);
    bytes.extend_from_slice(&frame(&req));
    c.send_bytes(&bytes).await.unwrap();
    let Read::Frame(b) = c.read_frame(Duration::from_secs(5)).await else {
        panic!("no ConnectResponse")
    };
    assert_ne!(ConnectResponse::from_bytes(&b).unwrap().session_id, 0);
    let r = c.reply().await;
    assert_eq!((r.header.xid, r.err()), (xid::AUTH, 0));
    let r = c.reply().await;
    assert_eq!((r.header.xid, r.err()), (1, 0));
}
