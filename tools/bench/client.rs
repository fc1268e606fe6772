//! corral-bench's own lean ZooKeeper client: one TCP connection per session, requests
//! framed with corral's jute codec (`corral::proto`), replies split with
//! `proto::frame::next_frame`. It does no bookkeeping beyond what a load generator
//! needs (no watch callbacks, no reconnects), so its cost per request stays small and
//! the server, not the client, is what a run measures.
//!
//! With `--tls-ca` (and `--tls-cert`/`--tls-key` for a client certificate) every
//! connection of the process is TLS (tokio-rustls on aws-lc-rs, the provider corral's
//! server uses), set up once by [`init_tls`]. The handshake is part of `connect`, so it
//! falls outside a run's measured window as the TCP connect does. Without TLS the
//! stream is the bare `TcpStream`: the only extra on the hot path is the match on
//! [`Stream`]'s variant in `flush` and `fill` (no boxing, no dynamic dispatch, no
//! extra copy).

use std::io;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use clap::Args;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

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

/// TLS for every connection of the process (`--tls-ca`, `--tls-cert`, `--tls-key`).
#[derive(Args, Debug, Default, Clone)]
pub struct TlsArgs {
    /// Connect with TLS, trusting the CA certificates of this PEM file (the servers'
    /// secure client port, `secureClientPort`).
    #[arg(long)]
    pub tls_ca: Option<PathBuf>,
    /// The client certificate (PEM, chain first) shown to servers (`ssl.clientAuth=need`).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1, unencrypted).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The name the servers' certificates are checked against [default: each host of
    /// --hosts, an IP address or a DNS name].
    #[arg(long)]
    pub tls_server_name: Option<String>,
}

struct Tls {
    connector: TlsConnector,
    server_name: Option<ServerName<'static>>,
}

static TLS: OnceLock<Tls> = OnceLock::new();
/// The protocol and cipher suite of the first TLS connection made.
static NEGOTIATED: OnceLock<String> = OnceLock::new();

/// The rustls client configuration of `a` (None: plain TCP).
pub fn tls_config(a: &TlsArgs) -> Result<Option<Arc<rustls::ClientConfig>>, String> {
    let Some(ca) = &a.tls_ca else {
        if a.tls_cert.is_some() || a.tls_server_name.is_some() {
            return Err("--tls-cert, --tls-key and --tls-server-name need --tls-ca".into());
        }
        return Ok(None);
    };
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("--tls-ca {}: {e}", ca.display()))?;
    if certs.is_empty() {
        return Err(format!("--tls-ca {}: no certificate", ca.display()));
    }
    for c in certs {
        roots
            .add(c)
            .map_err(|e| format!("--tls-ca {}: {e}", ca.display()))?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(
        rustls::crypto::aws_lc_rs::default_provider().into(),
    )
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots);
    let cfg = match (&a.tls_cert, &a.tls_key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|i| i.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("--tls-cert {}: {e}", cert.display()))?;
            if chain.is_empty() {
                return Err(format!("--tls-cert {}: no certificate", cert.display()));
            }
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| format!("--tls-key {}: {e}", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("client certificate: {e}"))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Some(Arc::new(cfg)))
}

/// Makes every later connection of the process TLS when `a` asks for it.
pub fn init_tls(a: &TlsArgs) -> Result<(), String> {
    let Some(cfg) = tls_config(a)? else {
        return Ok(());
    };
    let server_name = match &a.tls_server_name {
        Some(n) => Some(
            ServerName::try_from(n.clone()).map_err(|e| format!("--tls-server-name {n}: {e}"))?,
        ),
        None => None,
    };
    TLS.set(Tls {
        connector: TlsConnector::from(cfg),
        server_name,
    })
    .map_err(|_| "TLS set up twice".to_string())
}

/// "TLSv1_3 TLS13_AES_256_GCM_SHA384" of the first TLS connection, if any was made.
pub fn tls_negotiated() -> Option<String> {
    NEGOTIATED.get().cloned()
}

/// The host part of `host:port` (`[v6]:port` too) as a name to verify.
fn server_name_of(addr: &str) -> io::Result<ServerName<'static>> {
    let host = match addr.rsplit_once(':') {
        Some((h, _)) => h,
        None => addr,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{addr}: {e}")))
}

/// A connection's byte stream: the bare socket, or TLS over it.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Stream {
    async fn connect(addr: &str) -> io::Result<Stream> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let Some(tls) = TLS.get() else {
            return Ok(Stream::Plain(tcp));
        };
        let name = match &tls.server_name {
            Some(n) => n.clone(),
            None => server_name_of(addr)?,
        };
        let s = tls
            .connector
            .connect(name, tcp)
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("TLS handshake: {e}")))?;
        if NEGOTIATED.get().is_none() {
            let c = s.get_ref().1;
            let v = c
                .protocol_version()
                .map_or("?".to_string(), |v| format!("{v:?}"));
            let cs = c
                .negotiated_cipher_suite()
                .map_or("?".to_string(), |cs| format!("{:?}", cs.suite()));
            let _ = NEGOTIATED.set(format!("{v} {cs}"));
        }
        Ok(Stream::Tls(Box::new(s)))
    }
}

pub struct Conn {
    pub stream: Stream,
    pub rbuf: BytesMut,
    pub wbuf: BytesMut,
    pub session_id: i64,
    next_xid: i32,
}

impl Conn {
    /// Opens a TCP (or TLS, see [`init_tls`]) connection and a new session on it.
    pub async fn connect(addr: &str) -> io::Result<Conn> {
        let stream = Stream::connect(addr).await?;
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
            match &mut self.stream {
                Stream::Plain(s) => s.write_all(&self.wbuf).await?,
                Stream::Tls(s) => {
                    // tokio-rustls may keep records it could not send yet in the
                    // session: flush pushes them out before we wait for replies.
                    s.write_all(&self.wbuf).await?;
                    s.flush().await?;
                }
            }
            self.wbuf.clear();
        }
        Ok(())
    }

    /// Reads whatever bytes have arrived (at least one). Cancel-safe: `read_buf` on a
    /// TcpStream loses nothing when dropped, nor does it on a tokio-rustls stream (what
    /// was read from the socket stays in the TLS session until a read takes it), so
    /// this may sit in a `select!`.
    pub async fn fill(&mut self) -> io::Result<()> {
        if self.rbuf.capacity() - self.rbuf.len() < 16 << 10 {
            self.rbuf.reserve(64 << 10);
        }
        let n = match &mut self.stream {
            Stream::Plain(s) => s.read_buf(&mut self.rbuf).await?,
            Stream::Tls(s) => s.read_buf(&mut self.rbuf).await?,
        };
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
        if let Stream::Tls(s) = &mut self.stream {
            // close_notify, so neither server logs a truncated TLS stream; the server
            // may already have closed the socket after closeSession.
            let _ = tokio::time::timeout(Duration::from_secs(1), s.shutdown()).await;
        }
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
    fn tls_names_the_host_of_each_address() {
        assert!(matches!(
            server_name_of("127.0.0.1:2181").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name_of("[::1]:2181").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name_of("localhost:2181").unwrap(),
            ServerName::DnsName(_)
        ));
    }

    #[test]
    fn tls_is_off_without_a_ca_and_a_lone_cert_is_refused() {
        assert!(tls_config(&TlsArgs::default()).unwrap().is_none());
        let lone = TlsArgs {
            tls_cert: Some("c.pem".into()),
            tls_key: Some("k.pem".into()),
            ..TlsArgs::default()
        };
        assert!(tls_config(&lone).is_err());
        let missing = TlsArgs {
            tls_ca: Some("/nonexistent/ca.pem".into()),
            ..TlsArgs::default()
        };
        assert!(tls_config(&missing).unwrap_err().contains("--tls-ca"));
    }

    #[test]
    fn xids_skip_the_reserved_negative_range() {
        assert_eq!(following_xid(i32::MAX), 1);
        assert_eq!(following_xid(5), 6);
    }
}
