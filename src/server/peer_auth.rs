//! Quorum SASL on the wire (`quorum.auth.enableSasl`), as ZooKeeper's
//! `SaslQuorumAuthLearner` and `SaslQuorumAuthServer` run it with DIGEST-MD5: the
//! dialling server (a learner to its leader, or any server on the election port after
//! its initial message) is the SASL client with the JAAS `QuorumLearner` credentials;
//! the accepting one is the server, checking them against the `QuorumServer`
//! section's `user_NAME` table. The exchange is a few `QuorumAuthPacket`s before any
//! other byte of the protocol.
//!
//! - `quorum.auth.learnerRequireSasl=false`: this server does not authenticate when it
//!   dials (it sends nothing).
//! - `quorum.auth.serverRequireSasl=false`: a connection that does not start with an
//!   auth packet, or whose authentication fails, is let through (ZooKeeper logs it);
//!   `true`: it is closed.
//!
//! The mechanisms are sans-IO (`crate::sasl`); this file only moves their tokens.

use std::collections::HashMap;
use std::io;

use bytes::{Buf, BytesMut};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use rand::RngCore;

use super::peer_tls::PeerStream;
use crate::config::Config;
use crate::quorum::auth_packet::{starts_with_auth, AuthStatus, QuorumAuthPacket};
use crate::sasl::digest_md5_client::DigestMd5Client;
use crate::sasl::{DigestMd5Server, SaslServerSettings, Step};

/// `QuorumAuth.QUORUM_SERVER_PROTOCOL_NAME` and `QUORUM_SERVER_SASL_DIGEST` (the server
/// name and realm).
const QUORUM: crate::sasl::digest_md5::Service = crate::sasl::digest_md5::Service::QUORUM;
/// `SaslQuorumAuthServer.MAX_RETRIES`.
const MAX_RETRIES: usize = 5;

/// The quorum SASL settings with the credentials read from the JAAS file.
pub(crate) struct QuorumSasl {
    /// `QuorumLearner`'s username and password, when `learnerRequireSasl`.
    learner: Option<(String, String)>,
    server: SaslServerSettings,
    server_require: bool,
}

fn bad_data(m: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, m.into())
}

impl QuorumSasl {
    /// `None` without `quorum.auth.enableSasl`. Reads the JAAS file: its two sections
    /// must be there, as ZooKeeper's constructors insist.
    pub fn from_config(config: &Config) -> Result<Option<QuorumSasl>, String> {
        let q = &config.quorum_auth;
        if !q.enable_sasl {
            return Ok(None);
        }
        let path = config.auth.login_config.as_ref().ok_or(
            "quorum.auth.enableSasl needs a JAAS file (java.security.auth.login.config) with the QuorumServer and QuorumLearner sections",
        )?;
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read the JAAS file: {e}", path.display()))?;
        let jaas = crate::config::jaas::parse(&text)
            .map_err(|e| format!("{}:{}: {}", path.display(), e.line, e.reason))?;
        let section = |name: &str| {
            jaas.sections.get(name).ok_or_else(|| {
                format!(
                    "{}: SASL-authentication failed because the specified JAAS configuration section '{name}' could not be found",
                    path.display()
                )
            })
        };
        let mut users = HashMap::new();
        for m in section(&q.server_login_context)? {
            for (k, v) in &m.options {
                if let Some(user) = k.strip_prefix("user_") {
                    users.insert(user.to_string(), v.clone());
                }
            }
        }
        let learner = if q.learner_require_sasl {
            let modules = section(&q.learner_login_context)?;
            let opt = |k: &str| modules.iter().find_map(|m| m.options.get(k).cloned());
            match (opt("username"), opt("password")) {
                (Some(u), Some(p)) => Some((u, p)),
                _ => {
                    return Err(format!(
                        "{}: section '{}' needs username and password (DigestLoginModule)",
                        path.display(),
                        q.learner_login_context
                    ))
                }
            }
        } else {
            None
        };
        Ok(Some(QuorumSasl {
            learner,
            server: SaslServerSettings::new(users, None, Default::default()),
            server_require: q.server_require_sasl,
        }))
    }

    /// As the dialling side, on a fresh connection (after the election port's initial
    /// message). Nothing at all without `learnerRequireSasl`.
    pub async fn as_learner(&self, s: &mut PeerStream) -> io::Result<()> {
        let Some((user, password)) = &self.learner else {
            return Ok(());
        };
        let mut client = DigestMd5Client::new(user, password, QUORUM.protocol, QUORUM.server_name);
        let mut buf = BytesMut::new();
        send(s, AuthStatus::InProgress, Some(Vec::new())).await?;
        let mut p = receive(s, &mut buf).await?;
        loop {
            let token = p.token.clone().unwrap_or_default();
            match p.status {
                AuthStatus::Error => {
                    return Err(bad_data("quorum SASL: the server refused our credentials"))
                }
                AuthStatus::Success => {
                    if !client.is_complete() {
                        let extra = client
                            .evaluate_challenge(&token, &[])
                            .map_err(|e| bad_data(format!("quorum SASL: {e}")))?;
                        if extra.is_some() || !client.is_complete() {
                            return Err(bad_data(
                                "quorum SASL: protocol error: the server said success too early",
                            ));
                        }
                    }
                    return Ok(());
                }
                AuthStatus::InProgress => {
                    let mut cnonce = [0u8; 30];
                    rand::thread_rng().fill_bytes(&mut cnonce);
                    let reply = client
                        .evaluate_challenge(&token, &cnonce)
                        .map_err(|e| bad_data(format!("quorum SASL: {e}")))?;
                    send(s, AuthStatus::InProgress, Some(reply.unwrap_or_default())).await?;
                    p = receive(s, &mut buf).await?;
                }
            }
        }
    }

    /// As the accepting side: `buf` holds what was read already (and keeps what is
    /// read past the exchange). `Err` means close the connection.
    pub async fn as_server(&self, s: &mut PeerStream, buf: &mut BytesMut) -> io::Result<()> {
        if let Err(e) = fill(s, buf, 8).await {
            // A dialler that authenticates nothing and hangs up (a smaller sid asking
            // for a call-back on the election port): ZooKeeper's `nextPacketIsAuth`
            // fails the same way, and without serverRequireSasl the connection is
            // handled on (here: the call-back is made).
            if self.server_require {
                return Err(e);
            }
            return Ok(());
        }
        let first: [u8; 8] = buf[..8].try_into().unwrap_or_default();
        if !starts_with_auth(&first) {
            if self.server_require {
                return Err(bad_data(
                    "quorum SASL: the peer is not trying to authenticate and authentication is required",
                ));
            }
            return Ok(());
        }
        match self.exchange(s, buf).await {
            Ok(who) => {
                tracing::info!("quorum SASL: {who} authenticated");
                Ok(())
            }
            Err(e) => {
                let _ = send(s, AuthStatus::Error, Some(Vec::new())).await;
                if self.server_require {
                    Err(e)
                } else {
                    tracing::warn!(
                        "quorum SASL failed ({e}); keeping the connection (quorum.auth.serverRequireSasl=false)"
                    );
                    Ok(())
                }
            }
        }
    }

    async fn exchange(&self, s: &mut PeerStream, buf: &mut BytesMut) -> io::Result<String> {
        let mut server = DigestMd5Server::for_service(QUORUM);
        let mut token = receive(s, buf).await?.token.unwrap_or_default();
        for _ in 0..=MAX_RETRIES {
            match server.evaluate_response(&token, &self.server) {
                Ok(Step::Challenge(ch)) => {
                    send(s, AuthStatus::InProgress, Some(ch)).await?;
                    token = receive(s, buf).await?.token.unwrap_or_default();
                }
                Ok(Step::Complete {
                    token,
                    authorization_id,
                }) => {
                    send(s, AuthStatus::Success, Some(token)).await?;
                    return Ok(authorization_id);
                }
                Err(e) => return Err(bad_data(format!("quorum SASL: {e}"))),
            }
        }
        Err(bad_data("quorum SASL: too many rounds"))
    }
}

async fn send(s: &mut PeerStream, status: AuthStatus, token: Option<Vec<u8>>) -> io::Result<()> {
    let mut out = BytesMut::new();
    QuorumAuthPacket::new(status, token).encode(&mut out);
    s.write_all(&out).await?;
    s.flush().await
}

/// Reads until `buf` holds at least `n` bytes.
async fn fill(s: &mut PeerStream, buf: &mut BytesMut, n: usize) -> io::Result<()> {
    let mut chunk = [0u8; 512];
    while buf.len() < n {
        match s.read(&mut chunk).await? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            k => buf.extend_from_slice(&chunk[..k]),
        }
    }
    Ok(())
}

async fn receive(s: &mut PeerStream, buf: &mut BytesMut) -> io::Result<QuorumAuthPacket> {
    loop {
        match QuorumAuthPacket::decode(buf) {
            Ok(Some((p, used))) => {
                buf.advance(used);
                return Ok(p);
            }
            Ok(None) => {
                let want = buf.len() + 1;
                fill(s, buf, want).await?;
            }
            Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        }
    }
}
