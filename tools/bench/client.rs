//! corral-bench's own lean ZooKeeper client: one TCP connection per session, requests
//! framed with corral's jute codec (`corral::proto`), replies split with
//! `proto::frame::next_frame`. It does no bookkeeping beyond what a load generator
//! needs (no watch callbacks, no reconnects), so its cost per request stays small and
//! the server, not the client, is what a run measures.

use std::io;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use corral::proto::frame::next_frame;
use corral::proto::*;

/// Largest reply accepted: getChildren of a wide node can be megabytes.
pub const MAX_FRAME: usize = 64 << 20;

/// The session timeout asked for; pings go out well within it.
pub const SESSION_TIMEOUT_MS: i32 = 30_000;

fn bad(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// Appends one length-prefixed request frame: `RequestHeader` then `body`.
pub fn put_request(out: &mut BytesMut, xid: i32, op: OpCode, body: Option<&dyn JuteDyn>) {
    let start = out.len();
    out.put_i32(0);
    RequestHeader {
        xid,
        r#type: op.as_i32(),
    }
    .encode(out);
    if let Some(b) = body {
        b.encode_dyn(out);
    }
    let len = (out.len() - start - 4) as i32;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

/// Splits a reply frame into its header and the body that follows it.
pub fn parse_reply(frame: &Bytes) -> io::Result<(ReplyHeader, Bytes)> {
    let mut r = Reader::new(frame);
    let hdr = ReplyHeader::decode(&mut r).map_err(bad)?;
    Ok((hdr, frame.slice(r.position()..)))
}

/// `world:anyone` with every permission: `ZooDefs.Ids.OPEN_ACL_UNSAFE`.
pub fn open_acl() -> Vec<Acl> {
    vec![Acl {
        perms: perms::ALL,
        id: Id {
            scheme: "world".into(),
            id: "anyone".into(),
        },
    }]
}

/// The xid after `x`: positive forever, since negative xids are the protocol's own
/// (notification -1, ping -2, auth -4, setWatches -8).
pub fn following_xid(x: i32) -> i32 {
    if x == i32::MAX {
        1
    } else {
        x + 1
    }
}

pub struct Conn {
    pub stream: TcpStream,
    pub rbuf: BytesMut,
    pub wbuf: BytesMut,
    pub session_id: i64,
    next_xid: i32,
}

impl Conn {
    /// Opens a TCP connection and a new session on it.
    pub async fn connect(addr: &str) -> io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let mut c = Conn {
            stream,
            rbuf: BytesMut::with_capacity(64 << 10),
            wbuf: BytesMut::with_capacity(16 << 10),
            session_id: 0,
            next_xid: 1,
        };
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            time_out: SESSION_TIMEOUT_MS,
            session_id: 0,
            passwd: Bytes::from_static(&[0u8; 16]),
            read_only: Some(false),
        };
        // The connect frame has no RequestHeader.
        let start = c.wbuf.len();
        c.wbuf.put_i32(0);
        req.encode(&mut c.wbuf);
        let len = (c.wbuf.len() - start - 4) as i32;
        c.wbuf[start..start + 4].copy_from_slice(&len.to_be_bytes());
        c.flush().await?;
        let f = c.read_frame().await?;
        let rsp = ConnectResponse::from_bytes(&f).map_err(bad)?;
        if rsp.session_id == 0 || rsp.time_out <= 0 {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                "server refused the session",
            ));
        }
        c.session_id = rsp.session_id;
        Ok(c)
    }

    pub fn xid(&mut self) -> i32 {
        let x = self.next_xid;
        self.next_xid = following_xid(x);
        x
    }

    pub fn push(&mut self, xid: i32, op: OpCode, body: Option<&dyn JuteDyn>) {
        put_request(&mut self.wbuf, xid, op, body);
    }

    pub async fn flush(&mut self) -> io::Result<()> {
        if !self.wbuf.is_empty() {
            self.stream.write_all(&self.wbuf).await?;
            self.wbuf.clear();
        }
        Ok(())
    }

    /// Reads whatever bytes have arrived (at least one). Cancel-safe: `read_buf` on a
    /// TcpStream loses nothing when dropped, so this may sit in a `select!`.
    pub async fn fill(&mut self) -> io::Result<()> {
        if self.rbuf.capacity() - self.rbuf.len() < 16 << 10 {
            self.rbuf.reserve(64 << 10);
        }
        let n = self.stream.read_buf(&mut self.rbuf).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed the connection",
            ));
        }
        Ok(())
    }

    pub fn next_frame(&mut self) -> io::Result<Option<Bytes>> {
        next_frame(&mut self.rbuf, MAX_FRAME).map_err(bad)
    }

    pub async fn read_frame(&mut self) -> io::Result<Bytes> {
        loop {
            if let Some(f) = self.next_frame()? {
                return Ok(f);
            }
            self.fill().await?;
        }
    }

    /// One request, waiting for its reply (notifications and pings are skipped).
    pub async fn call(
        &mut self,
        op: OpCode,
        body: Option<&dyn JuteDyn>,
    ) -> io::Result<(ReplyHeader, Bytes)> {
        let xid = self.xid();
        self.push(xid, op, body);
        self.flush().await?;
        loop {
            let f = self.read_frame().await?;
            let (hdr, body) = parse_reply(&f)?;
            if hdr.xid == xid {
                return Ok((hdr, body));
            }
        }
    }

    /// Sends a ping (xid -2); its reply is skipped by whoever reads next.
    pub fn push_ping(&mut self) {
        put_request(&mut self.wbuf, xid::PING, OpCode::Ping, None);
    }

    /// closeSession, waiting a little for its reply, so the server drops the session
    /// (and its ephemerals) now instead of at expiry.
    pub async fn close(mut self) -> io::Result<()> {
        let r = tokio::time::timeout(
            Duration::from_secs(5),
            self.call(OpCode::CloseSession, None),
        )
        .await;
        match r {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(()),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no reply to closeSession",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_frames_decode_with_corral_codec() {
        let mut out = BytesMut::new();
        let body = GetDataRequest {
            path: "/corral-bench/k/00000001".into(),
            watch: true,
        };
        put_request(&mut out, 7, OpCode::GetData, Some(&body));
        put_request(&mut out, xid::PING, OpCode::Ping, None);
        let f = next_frame(&mut out, MAX_FRAME).unwrap().unwrap();
        let mut r = Reader::new(&f);
        let h = RequestHeader::decode(&mut r).unwrap();
        assert_eq!((h.xid, h.r#type), (7, 4));
        assert_eq!(
            decode_request(h.r#type, &f[r.position()..]).unwrap(),
            Request::GetData(body)
        );
        let f = next_frame(&mut out, MAX_FRAME).unwrap().unwrap();
        assert_eq!(f.len(), 8);
        assert!(out.is_empty());
    }

    #[test]
    fn replies_split_into_header_and_body() {
        let mut out = BytesMut::new();
        let rsp = CreateResponse {
            path: "/a-0000000001".into(),
        };
        encode_reply(
            &mut out,
            ReplyHeader {
                xid: 3,
                zxid: 9,
                err: 0,
            },
            Some(&rsp),
        );
        let f = next_frame(&mut out, MAX_FRAME).unwrap().unwrap();
        let (h, body) = parse_reply(&f).unwrap();
        assert_eq!((h.xid, h.zxid, h.err), (3, 9, 0));
        assert_eq!(CreateResponse::from_bytes(&body).unwrap(), rsp);
    }

    #[test]
    fn xids_skip_the_reserved_negative_range() {
        assert_eq!(following_xid(i32::MAX), 1);
        assert_eq!(following_xid(5), 6);
    }
}
