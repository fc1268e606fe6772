//! A raw ZooKeeper client connection over a tokio `TcpStream`, encoding with
//! `corral::proto`: the connect handshake, request frames, replies and watch events.
//! Used by tests that need exact bytes (hostile input, multi's per-op results, opcodes
//! the `zookeeper-client` crate does not expose).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use corral::proto::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct RawConn {
    pub stream: TcpStream,
    buf: BytesMut,
    next_xid: i32,
    /// Watch events (xid -1) read while waiting for a reply, in arrival order.
    pub events: Vec<WatcherEvent>,
}

/// What reading a frame found.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    Frame(Bytes),
    /// The server closed the connection (EOF or reset).
    Closed,
    /// Nothing arrived in time.
    Timeout,
}

/// A decoded reply: header and the body bytes after it.
#[derive(Debug)]
pub struct Reply {
    pub header: ReplyHeader,
    pub body: Bytes,
}

impl Reply {
    pub fn decode<T: Jute>(&self) -> T {
        T::from_bytes(&self.body).expect("decode reply body")
    }
    pub fn err(&self) -> i32 {
        self.header.err
    }
}

pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut v = (body.len() as i32).to_be_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

pub fn connect_request(timeout_ms: i32, session_id: i64, passwd: &[u8]) -> ConnectRequest {
    ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        time_out: timeout_ms,
        session_id,
        passwd: Bytes::copy_from_slice(passwd),
        read_only: Some(false),
    }
}

impl RawConn {
    /// Opens a TCP connection without any handshake.
    pub async fn open(addr: SocketAddr) -> RawConn {
        let stream = TcpStream::connect(addr).await.expect("tcp connect");
        stream.set_nodelay(true).unwrap();
        RawConn {
            stream,
            buf: BytesMut::new(),
            next_xid: 1,
            events: Vec::new(),
        }
    }

    /// Opens a connection and creates a new session.
    pub async fn connect(addr: SocketAddr) -> (RawConn, ConnectResponse) {
        let mut c = RawConn::open(addr).await;
        let resp = c.handshake(&connect_request(10_000, 0, &[0; 16])).await;
        assert_ne!(resp.session_id, 0, "server refused a fresh session");
        (c, resp)
    }

    /// Sends a ConnectRequest and reads the ConnectResponse.
    pub async fn handshake(&mut self, req: &ConnectRequest) -> ConnectResponse {
        self.send_frame(&req.to_bytes()).await;
        match self.read_frame(Duration::from_secs(10)).await {
            Read::Frame(b) => ConnectResponse::from_bytes(&b).expect("ConnectResponse"),
            other => panic!("no ConnectResponse: {other:?}"),
        }
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await
    }

    pub async fn send_frame(&mut self, body: &[u8]) {
        self.stream
            .write_all(&frame(body))
            .await
            .expect("write frame");
    }

    /// Sends a request with a fresh xid and returns that xid.
    pub async fn send(&mut self, op: i32, body: Option<&dyn JuteDyn>) -> i32 {
        let xid = self.next_xid;
        self.next_xid += 1;
        self.send_xid(xid, op, body).await;
        xid
    }

    pub async fn send_xid(&mut self, xid: i32, op: i32, body: Option<&dyn JuteDyn>) {
        let mut w = BytesMut::new();
        RequestHeader { xid, r#type: op }.encode(&mut w);
        if let Some(b) = body {
            b.encode_dyn(&mut w);
        }
        self.send_frame(&w).await;
    }

    pub async fn read_frame(&mut self, wait: Duration) -> Read {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if self.buf.len() >= 4 {
                let len = i32::from_be_bytes(self.buf[..4].try_into().unwrap());
                assert!(len >= 0, "server sent a negative frame length");
                let len = len as usize;
                if self.buf.len() >= 4 + len {
                    let _ = self.buf.split_to(4);
                    return Read::Frame(self.buf.split_to(len).freeze());
                }
            }
            self.buf.reserve(64 * 1024);
            match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf)).await {
                Err(_) => return Read::Timeout,
                Ok(Ok(0)) | Ok(Err(_)) => return Read::Closed,
                Ok(Ok(_)) => {}
            }
        }
    }

    /// Reads the next reply that is not a watch event (events go to `self.events`).
    pub async fn reply(&mut self) -> Reply {
        match self.try_reply(Duration::from_secs(10)).await {
            Ok(r) => r,
            Err(e) => panic!("no reply: {e:?}"),
        }
    }

    pub async fn try_reply(&mut self, wait: Duration) -> Result<Reply, Read> {
        loop {
            match self.read_frame(wait).await {
                Read::Frame(b) => {
                    let mut r = Reader::new(&b);
                    let header = ReplyHeader::decode(&mut r).expect("ReplyHeader");
                    let body = b.slice(r.position()..);
                    if header.xid == xid::NOTIFICATION {
                        self.events
                            .push(WatcherEvent::from_bytes(&body).expect("WatcherEvent"));
                        continue;
                    }
                    return Ok(Reply { header, body });
                }
                other => return Err(other),
            }
        }
    }

    /// Sends a request and waits for its reply.
    pub async fn call(&mut self, op: OpCode, body: Option<&dyn JuteDyn>) -> Reply {
        let xid = self.send(op.as_i32(), body).await;
        let r = self.reply().await;
        assert_eq!(r.header.xid, xid, "reply out of order");
        r
    }

    /// Waits until the server closes the connection; false if it stays open for `wait`.
    pub async fn closed_within(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.read_frame(left).await {
                Read::Closed => return true,
                Read::Timeout => return false,
                Read::Frame(_) => continue,
            }
        }
    }
}

pub fn create_req(path: &str, data: &[u8], flags: i32) -> CreateRequest {
    CreateRequest {
        path: path.into(),
        data: Bytes::copy_from_slice(data),
        acl: vec![world_all()],
        flags,
    }
}

pub fn world_all() -> Acl {
    Acl {
        perms: perms::ALL,
        id: Id {
            scheme: "world".into(),
            id: "anyone".into(),
        },
    }
}
