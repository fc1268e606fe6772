//! TLS for the client port and between servers, with rustls: the stores of
//! `config::tls` loaded and turned into rustls server and client configurations
//! (`ssl.protocol`/`ssl.enabledProtocols`, `ssl.ciphersuites`, `ssl.clientAuth`,
//! `ssl.hostnameVerification`), and the client certificate's subject as the `x509`
//! auth id. Built once at start: a store that cannot be used stops the server with
//! the file and the reason, as ZooKeeper fails to create its SSL context.
//!
//! No sockets here: `server::tls` runs the handshakes.

pub mod stores;
pub mod subject;

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

use crate::config::tls::{ClientAuth, X509Settings};

/// Why TLS cannot be set up from the configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{0}")]
    Store(#[from] stores::StoreError),
    #[error("{0}")]
    Setting(String),
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The crypto provider with only the cipher suites `ssl.ciphersuites` names (Java's
/// names; TLS 1.3 suites are `TLS_AES_128_GCM_SHA256` there and `TLS13_...` in
/// rustls). Names rustls does not implement are skipped; none left is an error.
fn provider(s: &X509Settings, prefix: &str) -> Result<Arc<CryptoProvider>, TlsError> {
    let mut p = rustls::crypto::aws_lc_rs::default_provider();
    if !s.cipher_suites.is_empty() {
        let wanted: Vec<String> = s
            .cipher_suites
            .iter()
            .map(|n| {
                n.replacen("TLS_AES_", "TLS13_AES_", 1).replacen(
                    "TLS_CHACHA20_",
                    "TLS13_CHACHA20_",
                    1,
                )
            })
            .collect();
        p.cipher_suites
            .retain(|cs| wanted.iter().any(|w| *w == format!("{:?}", cs.suite())));
        if p.cipher_suites.is_empty() {
            return Err(TlsError::Setting(format!(
                "{prefix}ciphersuites: none of {:?} is offered by corral (rustls); it offers {}",
                s.cipher_suites,
                rustls::crypto::aws_lc_rs::default_provider()
                    .cipher_suites
                    .iter()
                    .map(|c| format!("{:?}", c.suite()).replacen("TLS13_", "TLS_", 1))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    Ok(Arc::new(p))
}

fn versions(s: &X509Settings) -> Vec<&'static rustls::SupportedProtocolVersion> {
    let mut v = Vec::new();
    for p in &s.enabled_protocols {
        match p.as_str() {
            "TLSv1.3" | "TLS" => v.push(&rustls::version::TLS13),
            "TLSv1.2" => v.push(&rustls::version::TLS12),
            _ => {}
        }
    }
    if s.enabled_protocols.iter().any(|p| p == "TLS") {
        v.push(&rustls::version::TLS12);
    }
    v.dedup_by_key(|x| x.version);
    v
}

fn roots(s: &X509Settings) -> Result<Option<RootCertStore>, TlsError> {
    let Some(spec) = &s.trust_store else {
        return Ok(None);
    };
    let mut store = RootCertStore::empty();
    for cert in stores::load_trust_store(spec)? {
        store.add(cert).map_err(|e| {
            TlsError::Setting(format!(
                "{}: a trusted certificate cannot be used: {e}",
                spec.location.display()
            ))
        })?;
    }
    Ok(Some(store))
}

/// The server side: what the secure client port (prefix `ssl.`) or the quorum ports
/// (`ssl.quorum.`) offer.
pub fn server_config(s: &X509Settings, prefix: &str) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = provider(s, prefix)?;
    let key_spec = s
        .key_store
        .as_ref()
        .ok_or_else(|| TlsError::Setting(format!("{prefix}keyStore.location is not set")))?;
    let key = stores::load_key_store(key_spec)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions(s))?;
    let builder = match (s.client_auth, roots(s)?) {
        (ClientAuth::None, _) => builder.with_no_client_auth(),
        (auth, Some(roots)) => {
            let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let v = if auth == ClientAuth::Want {
                v.allow_unauthenticated()
            } else {
                v
            };
            builder.with_client_cert_verifier(
                v.build()
                    .map_err(|e| TlsError::Setting(format!("{prefix}trustStore: {e}")))?,
            )
        }
        (_, None) => {
            return Err(TlsError::Setting(format!(
                "{prefix}clientAuth asks clients for certificates, but {prefix}trustStore.location is not set (corral has no default trust store; set clientAuth=none to not ask)"
            )))
        }
    };
    let cfg = builder.with_single_cert(key.chain, key.key).map_err(|e| {
        TlsError::Setting(format!(
            "{}: the key and certificate cannot be used: {e}",
            key_spec.location.display()
        ))
    })?;
    Ok(Arc::new(cfg))
}

/// The client side between servers: the quorum key store as our certificate, the
/// quorum trust store for the other server's, its name checked unless
/// `ssl.quorum.hostnameVerification=false`.
pub fn client_config(s: &X509Settings, prefix: &str) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = provider(s, prefix)?;
    let roots = roots(s)?
        .ok_or_else(|| TlsError::Setting(format!("{prefix}trustStore.location is not set")))?;
    let key_spec = s
        .key_store
        .as_ref()
        .ok_or_else(|| TlsError::Setting(format!("{prefix}keyStore.location is not set")))?;
    let key = stores::load_key_store(key_spec)?;
    let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .map_err(|e| TlsError::Setting(format!("{prefix}trustStore: {e}")))?;
    let builder =
        ClientConfig::builder_with_provider(provider).with_protocol_versions(&versions(s))?;
    let builder = if s.hostname_verification {
        builder.with_webpki_verifier(webpki)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChainOnly(webpki)))
    };
    Ok(Arc::new(
        builder
            .with_client_auth_cert(key.chain, key.key)
            .map_err(|e| {
                TlsError::Setting(format!(
                    "{}: the key and certificate cannot be used: {e}",
                    key_spec.location.display()
                ))
            })?,
    ))
}

/// `hostnameVerification=false`: the chain must still lead to a trusted certificate;
/// only the name is not compared.
#[derive(Debug)]
struct ChainOnly(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        use rustls::{CertificateError, Error};
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
