//! TLS between ensemble members, on the election and quorum ports, as ZooKeeper's
//! `sslQuorum` and `portUnification` (`QuorumX509Util`, `UnifiedServerSocket`):
//!
//! - `sslQuorum=true`: every connection this server dials is TLS, with the quorum key
//!   store as its certificate and the quorum trust store checking the other side's
//!   (and its name, unless `ssl.quorum.hostnameVerification=false`); every connection
//!   it accepts must be TLS, with a certificate the trust store accepts and, as
//!   `QuorumX509Util` checks, that names the dialling server's address.
//! - `portUnification=true`: accepted connections may be either, told apart by their
//!   first byte, so a plain ensemble can be rolled to TLS one server at a time
//!   (portUnification on everywhere, then sslQuorum, then portUnification off).
//!
//! [`PeerStream`] is what `peer_links` reads and writes: plain or TLS, one type.

use std::io;
use std::os::unix::io::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_lite::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;
use rustls::pki_types::ServerName;

use crate::config::Config;

/// A connection to another member, plain or TLS.
pub(crate) enum PeerStream {
    Plain(TcpStream),
    Tls(Box<futures_rustls::TlsStream<TcpStream>>),
}

impl PeerStream {
    /// The socket's descriptor (for shutting it down from another task).
    pub fn fd(&self) -> RawFd {
        match self {
            PeerStream::Plain(s) => s.as_raw_fd(),
            PeerStream::Tls(s) => s.get_ref().0.as_raw_fd(),
        }
    }
}

impl AsyncRead for PeerStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            PeerStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            PeerStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for PeerStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            PeerStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            PeerStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PeerStream::Plain(s) => Pin::new(s).poll_flush(cx),
            PeerStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PeerStream::Plain(s) => Pin::new(s).poll_close(cx),
            PeerStream::Tls(s) => Pin::new(s.as_mut()).poll_close(cx),
        }
    }
}

/// The quorum TLS settings, loaded at start.
pub(crate) struct QuorumTls {
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
    /// `sslQuorum`: dial TLS, and (without unification) accept only TLS.
    ssl_quorum: bool,
    /// `portUnification`: accept plain and TLS.
    unify: bool,
    verify_client_host: bool,
}

fn tls_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

impl QuorumTls {
    /// `None` when the ensemble talks plain only.
    pub fn from_config(config: &Config) -> Result<Option<QuorumTls>, String> {
        let t = &config.tls;
        if !t.quorum_tls_enabled() {
            return Ok(None);
        }
        let server = crate::tls::server_config(&t.quorum, "ssl.quorum.")
            .map_err(|e| format!("cannot set up TLS between servers: {e}"))?;
        let client = crate::tls::client_config(&t.quorum, "ssl.quorum.")
            .map_err(|e| format!("cannot set up TLS between servers: {e}"))?;
        Ok(Some(QuorumTls {
            server,
            client,
            ssl_quorum: t.ssl_quorum,
            unify: t.port_unification,
            verify_client_host: t.quorum.client_hostname_verification,
        }))
    }

    /// A connection this server dialled to `host`, TLS when `sslQuorum`.
    pub async fn outgoing(&self, stream: TcpStream, host: &str) -> io::Result<PeerStream> {
        if !self.ssl_quorum {
            return Ok(PeerStream::Plain(stream));
        }
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| tls_err(format!("{host} is not a name TLS can check: {e}")))?;
        let s = futures_rustls::TlsConnector::from(self.client.clone())
            .connect(name, stream)
            .await?;
        Ok(PeerStream::Tls(Box::new(
            futures_rustls::TlsStream::Client(s),
        )))
    }

    /// A connection another member dialled: TLS, plain, or either by its first byte.
    pub async fn incoming(&self, stream: TcpStream) -> io::Result<PeerStream> {
        let tls = if self.unify {
            let mut first = [0u8; 1];
            match stream.peek(&mut first).await? {
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                _ => first[0] == 0x16,
            }
        } else {
            self.ssl_quorum
        };
        if !tls {
            return Ok(PeerStream::Plain(stream));
        }
        let remote = stream.peer_addr().ok();
        let s = futures_rustls::TlsAcceptor::from(self.server.clone())
            .accept(stream)
            .await?;
        if self.verify_client_host {
            let names = s
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .zip(remote)
                .is_some_and(|(leaf, r)| crate::tls::subject::names_address(leaf, r.ip()));
            if !names {
                return Err(tls_err(format!(
                    "the certificate of the member dialling from {remote:?} does not name its address (ssl.quorum.hostnameVerification)"
                )));
            }
        }
        Ok(PeerStream::Tls(Box::new(
            futures_rustls::TlsStream::Server(s),
        )))
    }
}

/// `PeerStream::Plain` when there is no quorum TLS, else what `tls` makes of it, by
/// `timeout`.
pub(crate) async fn secure(
    tls: Option<&QuorumTls>,
    stream: TcpStream,
    dialled_host: Option<&str>,
    timeout: Duration,
) -> io::Result<PeerStream> {
    let Some(tls) = tls else {
        return Ok(PeerStream::Plain(stream));
    };
    let handshake = async {
        match dialled_host {
            Some(host) => tls.outgoing(stream, host).await,
            None => tls.incoming(stream).await,
        }
    };
    let expired = async {
        glommio::timer::sleep(timeout).await;
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "no TLS handshake in time",
        ))
    };
    futures_lite::future::or(handshake, expired).await
}
