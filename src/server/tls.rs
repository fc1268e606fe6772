//! TLS on client connections: telling a TLS client from a plain one on a unified port
//! (`client.portUnification`), the handshake on the connection's own shard, and what
//! the handshake proved about the client (its certificate's subject, for the `x509`
//! scheme). The rustls configuration is built once at start (`crate::tls`).
//!
//! As ZooKeeper's `NettyServerCnxnFactory.CertificateVerifier`: when the server asks
//! for client certificates (`ssl.clientAuth` want or need), the `x509` provider must be
//! configured (`authProvider.x509=...X509AuthenticationProvider`), or the connection is
//! closed ("X509 Auth provider not found"); a client that presented a certificate gets
//! the `x509` id of its subject. With `ssl.clientHostnameVerification` the certificate
//! must name the client's address.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_rustls::server::TlsStream;
use glommio::net::TcpStream;

use crate::config::tls::ClientAuth;

/// The first byte of a TLS record carrying a handshake (a ClientHello). A plain client
/// starts with a frame length (0 for any sane length) or a four-letter word.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// Whether the connection's first byte opens a TLS handshake. `None`: the client
/// closed or sent nothing before `deadline`.
pub(crate) async fn looks_like_tls(stream: &TcpStream, deadline: Instant) -> Option<bool> {
    let mut first = [0u8; 1];
    let peek = async {
        match stream.peek(&mut first).await {
            Ok(1) => Some(first[0] == TLS_HANDSHAKE_RECORD),
            _ => None,
        }
    };
    let expired = async {
        glommio::timer::sleep(deadline.saturating_duration_since(Instant::now())).await;
        None
    };
    futures_lite::future::or(peek, expired).await
}

/// A finished handshake: the stream, and the client certificate's subject when the
/// client presented one.
pub(crate) struct Accepted {
    pub stream: TlsStream<TcpStream>,
    pub subject: Option<String>,
}

/// Runs the server side of the handshake, by `deadline`, and checks what ZooKeeper
/// checks after it. Errors are for the log: the connection is then closed.
pub(crate) async fn accept(
    cfg: Arc<rustls::ServerConfig>,
    settings: &crate::config::tls::X509Settings,
    x509_provider: bool,
    stream: TcpStream,
    remote: SocketAddr,
    deadline: Instant,
) -> Result<Accepted, String> {
    let handshake = async {
        futures_rustls::TlsAcceptor::from(cfg)
            .accept(stream)
            .await
            .map_err(|e| format!("TLS handshake failed: {e}"))
    };
    let expired = async {
        glommio::timer::sleep(deadline.saturating_duration_since(Instant::now())).await;
        Err("no TLS handshake in time".to_string())
    };
    let stream = futures_lite::future::or(handshake, expired).await?;
    if settings.client_auth == ClientAuth::None {
        return Ok(Accepted {
            stream,
            subject: None,
        });
    }
    if !x509_provider {
        return Err(
            "X509 Auth provider not found: x509 (set authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider, as ZooKeeper requires)"
                .into(),
        );
    }
    let (_, conn) = stream.get_ref();
    let Some(leaf) = conn.peer_certificates().and_then(|c| c.first()) else {
        // `want` and the client sent none: in, without an x509 id.
        return Ok(Accepted {
            stream,
            subject: None,
        });
    };
    if settings.client_hostname_verification
        && !crate::tls::subject::names_address(leaf, remote.ip())
    {
        return Err(format!(
            "the client certificate does not name {} (ssl.clientHostnameVerification; set it or ssl.hostnameVerification to false to not check)",
            remote.ip()
        ));
    }
    let subject = crate::tls::subject::client_id(leaf, settings.san_client_id.as_ref())?;
    Ok(Accepted {
        stream,
        subject: Some(subject),
    })
}

/// How long a unified port waits for a connection's first byte.
pub(crate) fn detection_timeout(settings: &crate::config::tls::X509Settings) -> Duration {
    Duration::from_millis(settings.handshake_detection_timeout_ms)
}
