//! Hostile and malformed input on raw sockets: bad frame lengths, malformed connect
//! requests, garbage, unknown opcodes and bad paths, connection limits per IP; and the
//! four-letter words. After each, a separate session must keep working.

mod common;

use std::time::Duration;

use common::raw::*;
use common::*;
use corral::proto::*;

/// jute.maxbuffer for these servers.
const MAX_BUFFER: i32 = 100_000;

fn start() -> TestServer {
    TestServer::start(&[&format!("jute.maxbuffer={MAX_BUFFER}")])
}

/// A long-lived healthy session that must survive whatever the hostile one does.
async fn assert_healthy(c: &zookeeper_client::Client, tag: &str) {
    let path = format!("/healthy-{tag}");
    c.create(&path, tag.as_bytes(), &anyone()).await.unwrap();
    assert_eq!(c.get_data(&path).await.unwrap().0, tag.as_bytes());
}

#[tokio::test]
async fn frame_lengths_out_of_range_close_only_that_connection() {
    let srv = start();
    let good = srv.client().await;
    // Above jute.maxbuffer, after a valid handshake.
    let (mut c, _) = RawConn::connect(srv.addr).await;
    c.send_bytes(&(MAX_BUFFER * 4).to_be_bytes()).await.unwrap();
    assert!(c.closed_within(Duration::from_secs(5)).await);
    assert_healthy(&good, "big").await;
    // i32::MAX, before any handshake.
    let mut c = RawConn::open(srv.addr).await;
    c.send_bytes(&i32::MAX.to_be_bytes()).await.unwrap();
    assert!(c.closed_within(Duration::from_secs(5)).await);
    // Negative lengths, before and after the handshake.
    let mut c = RawConn::open(srv.addr).await;
    c.send_bytes(&(-5i32).to_be_bytes()).await.unwrap();
    assert!(c.closed_within(Duration::from_secs(5)).await);
    let (mut c, _) = RawConn::connect(srv.addr).await;
    c.send_bytes(&(-1i32).to_be_bytes()).await.unwrap();
    assert!(c.closed_within(Duration::from_secs(5)).await);
    assert_healthy(&good, "neg").await;
}

#[tokio::test]
async fn data_up_to_the_limit_is_fine_and_over_it_is_refused() {
    let srv = start();
    let good = srv.client().await;
    // Comfortably below the limit, including the request's own overhead.
    let data = vec![7u8; (MAX_BUFFER as usize) / 2];
    good.create("/big", &data, &anyone()).await.unwrap();
    assert_eq!(good.get_data("/big").await.unwrap().0.len(), data.len());
    // A whole frame over the limit (sent completely) still closes the connection.
    let (mut c, _) = RawConn::connect(srv.addr).await;
    let set = SetDataRequest {
        path: "/big".into(),
        data: vec![1u8; MAX_BUFFER as usize + 1000].into(),
        version: -1,
    };
    let mut body = bytes::BytesMut::new();
    RequestHeader {
        xid: 1,
        r#type: OpCode::SetData.as_i32(),
    }
    .encode(&mut body);
    set.encode(&mut body);
    let _ = c.send_bytes(&frame(&body)).await;
    assert!(c.closed_within(Duration::from_secs(5)).await);
    assert_eq!(good.get_data("/big").await.unwrap().0.len(), data.len());
}

#[tokio::test]
async fn malformed_connect_requests_are_dropped() {
    let srv = start();
    let good = srv.client().await;
    // Too short to be a ConnectRequest.
    let mut c = RawConn::open(srv.addr).await;
    c.send_frame(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]).await;
    assert!(c.closed_within(Duration::from_secs(5)).await);
    // A password length that runs past the frame.
    let mut bad = connect_request(4000, 0, &[0; 16]).to_bytes();
    let at = 4 + 8 + 4 + 8;
    bad[at..at + 4].copy_from_slice(&1000i32.to_be_bytes());
    let mut c = RawConn::open(srv.addr).await;
    c.send_frame(&bad).await;
    assert!(c.closed_within(Duration::from_secs(5)).await);
    // An empty frame.
    let mut c = RawConn::open(srv.addr).await;
    c.send_frame(&[]).await;
    assert!(c.closed_within(Duration::from_secs(5)).await);
    assert_healthy(&good, "connect").await;
}

#[tokio::test]
async fn garbage_after_a_valid_connect() {
    let srv = start();
    let good = srv.client().await;
    // A frame too short to hold a RequestHeader: closed without a reply.
    let (mut c, _) = RawConn::connect(srv.addr).await;
    c.send_frame(&[1, 2, 3]).await;
    assert_eq!(
        c.try_reply(Duration::from_secs(5)).await.unwrap_err(),
        Read::Closed
    );
    // A valid header with a truncated body: MarshallingError for that xid.
    let (mut c, _) = RawConn::connect(srv.addr).await;
    let mut body = bytes::BytesMut::new();
    RequestHeader {
        xid: 9,
        r#type: OpCode::GetData.as_i32(),
    }
    .encode(&mut body);
    body.extend_from_slice(&[0, 0, 0, 100, b'/']);
    c.send_frame(&body).await;
    let r = c.try_reply(Duration::from_secs(5)).await.expect("a reply");
    assert_eq!(r.header.xid, 9);
    assert_eq!(r.err(), ErrorCode::MarshallingError.as_i32());
    // Random bytes.
    let (mut c, _) = RawConn::connect(srv.addr).await;
    let junk: Vec<u8> = (0..64u32).map(|i| (i * 37 + 11) as u8).collect();
    let _ = c.send_bytes(&junk).await;
    assert!(c.closed_within(Duration::from_secs(5)).await);
    assert_healthy(&good, "garbage").await;
}

/// ZooKeeper answers an unknown opcode with Unimplemented (zxid -1) and then closes
/// the connection.
#[tokio::test]
async fn unknown_opcode_is_unimplemented_then_closed() {
    let srv = start();
    let good = srv.client().await;
    let (mut c, _) = RawConn::connect(srv.addr).await;
    let xid = c.send(999, None).await;
    let r = c.reply().await;
    assert_eq!(r.header.xid, xid);
    assert_eq!(r.err(), ErrorCode::Unimplemented.as_i32());
    assert_eq!(r.header.zxid, -1);
    assert!(c.closed_within(Duration::from_secs(5)).await);
    assert_healthy(&good, "opcode").await;
}

/// Invalid paths. create first splits off the parent (no '/' or a NUL: BadArguments),
/// then looks the parent up (NoNode), then validates the full path (BadArguments);
/// reads just look the path up and find nothing.
#[tokio::test]
async fn bad_paths_and_flags() {
    let srv = start();
    let (mut c, _) = RawConn::connect(srv.addr).await;
    let bad_args = ErrorCode::BadArguments.as_i32();
    let no_node = ErrorCode::NoNode.as_i32();
    assert_eq!(
        c.call(OpCode::Create, Some(&create_req("/ok", b"", 0)))
            .await
            .err(),
        0
    );
    for (p, want) in [
        ("noslash", bad_args),
        ("", bad_args),
        ("/ok/nul\u{0}", bad_args),
        ("/ok/", bad_args),
        ("/ok/.", bad_args),
        ("/ok/..", bad_args),
        ("/missing/", no_node),
        ("/ok//b", no_node),
        ("/ok/./b", no_node),
    ] {
        let r = c.call(OpCode::Create, Some(&create_req(p, b"", 0))).await;
        assert_eq!(r.err(), want, "create {p:?}");
    }
    let r = c
        .call(OpCode::Create, Some(&create_req("/flags", b"", 42)))
        .await;
    assert_eq!(r.err(), bad_args, "unknown create flags");
    let get = GetDataRequest {
        path: "noslash".into(),
        watch: false,
    };
    assert_eq!(
        c.call(OpCode::GetData, Some(&get)).await.err(),
        ErrorCode::NoNode.as_i32()
    );
    let del = DeleteRequest {
        path: "/".into(),
        version: -1,
    };
    assert_eq!(
        c.call(OpCode::Delete, Some(&del)).await.err(),
        bad_args,
        "delete root"
    );
    // The connection is still fine.
    let ex = ExistsRequest {
        path: "/".into(),
        watch: false,
    };
    assert_eq!(c.call(OpCode::Exists, Some(&ex)).await.err(), 0);
}

#[tokio::test]
async fn max_client_cnxns_per_ip() {
    let srv = TestServer::start(&["maxClientCnxns=3"]);
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(RawConn::connect(srv.addr).await.0);
    }
    let mut fourth = RawConn::open(srv.addr).await;
    let _ = fourth
        .send_frame(&connect_request(4000, 0, &[0; 16]).to_bytes())
        .await;
    assert_eq!(
        fourth.read_frame(Duration::from_secs(5)).await,
        Read::Closed,
        "a fourth connection from the same IP is refused"
    );
    // Closing one makes room again.
    drop(open.pop());
    let ok = eventually(Duration::from_secs(5), || async {
        let mut c = RawConn::open(srv.addr).await;
        c.send_frame(&connect_request(4000, 0, &[0; 16]).to_bytes())
            .await;
        matches!(c.read_frame(Duration::from_secs(2)).await, Read::Frame(_))
    })
    .await;
    assert!(ok, "a connection is accepted once another closed");
}

#[tokio::test]
async fn four_letter_words() {
    let srv = start();
    let addr = srv.addr;
    let ask =
        |w: &'static str| tokio::task::spawn_blocking(move || four_letter_word_blocking(addr, w));
    assert_eq!(ask("ruok").await.unwrap().as_deref(), Some("imok"));
    assert_eq!(ask("isro").await.unwrap().as_deref(), Some("rw"));
    let srvr = ask("srvr").await.unwrap().unwrap();
    assert!(srvr.contains("Mode: standalone"), "{srvr}");
    assert!(srvr.contains("Node count:"), "{srvr}");
    assert!(srvr.contains("Zxid: 0x"), "{srvr}");
    let mntr = ask("mntr").await.unwrap().unwrap();
    assert!(mntr.contains("zk_server_state\tstandalone"), "{mntr}");
    assert!(mntr.contains("zk_znode_count\t"), "{mntr}");

    let limited = TestServer::start(&["4lw.commands.whitelist=ruok"]);
    let addr = limited.addr;
    let ask =
        |w: &'static str| tokio::task::spawn_blocking(move || four_letter_word_blocking(addr, w));
    assert_eq!(ask("ruok").await.unwrap().as_deref(), Some("imok"));
    let refused = ask("mntr").await.unwrap().unwrap();
    assert!(
        refused.starts_with("mntr is not executed because it is not in the whitelist."),
        "{refused}"
    );
    // srvr is always enabled (zkServer.sh depends on it).
    assert!(ask("srvr")
        .await
        .unwrap()
        .unwrap()
        .contains("Mode: standalone"));
}
