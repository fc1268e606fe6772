//! Key and trust stores in the three formats ZooKeeper reads: PEM (certificates and a
//! PKCS#8 key, which may be encrypted with the store's password, as ZooKeeper's
//! `PemReader`), PKCS12 and JKS (the `jks` and `p12-keystore` crates decode them).
//!
//! A key store gives the server's certificate chain and private key (its first private
//! key entry, as Java's `KeyManagerFactory` picks when there is one); a trust store
//! gives the certificates that anchor a peer's chain (every certificate in it, trusted
//! entries and the chains of key entries alike, as Java's `TrustManagerFactory`).

use rustls_pki_types::pem::{PemObject, SectionKind};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::config::tls::{StoreSpec, StoreType};

/// Why a store cannot be used; the message names the file.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct StoreError {
    pub path: String,
    pub reason: String,
}

/// A key store's content.
pub struct KeyMaterial {
    /// The server's certificate first, then its issuers.
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyMaterial")
            .field("chain", &self.chain.len())
            .finish_non_exhaustive()
    }
}

fn err(spec: &StoreSpec, reason: impl Into<String>) -> StoreError {
    StoreError {
        path: spec.location.display().to_string(),
        reason: reason.into(),
    }
}

fn read(spec: &StoreSpec) -> Result<Vec<u8>, StoreError> {
    std::fs::read(&spec.location).map_err(|e| err(spec, format!("cannot read the store: {e}")))
}

/// Java stores must have a password; an empty one is what ZooKeeper passes when none
/// is configured.
fn password(spec: &StoreSpec) -> &str {
    spec.password.as_deref().unwrap_or("")
}

/// Loads the server's key and certificate chain from a key store.
pub fn load_key_store(spec: &StoreSpec) -> Result<KeyMaterial, StoreError> {
    let bytes = read(spec)?;
    let m = match spec.store_type {
        StoreType::Pem => pem_key(spec, &bytes)?,
        StoreType::Pkcs12 => pkcs12_key(spec, &bytes)?,
        StoreType::Jks => jks_key(spec, &bytes)?,
    };
    if m.chain.is_empty() {
        return Err(err(spec, "the key store holds a key but no certificate"));
    }
    Ok(m)
}

/// Loads the trusted certificates of a trust store.
pub fn load_trust_store(spec: &StoreSpec) -> Result<Vec<CertificateDer<'static>>, StoreError> {
    let bytes = read(spec)?;
    let certs = match spec.store_type {
        StoreType::Pem => pem_certs(spec, &bytes)?,
        StoreType::Pkcs12 => {
            let ks = pkcs12(spec, &bytes)?;
            let mut out = Vec::new();
            for (_, e) in ks.entries() {
                match e {
                    p12_keystore::KeyStoreEntry::Certificate(c) => {
                        out.push(CertificateDer::from(c.as_der().to_vec()))
                    }
                    p12_keystore::KeyStoreEntry::PrivateKeyChain(ch) => out.extend(
                        ch.certs()
                            .iter()
                            .map(|c| CertificateDer::from(c.as_der().to_vec())),
                    ),
                    _ => {}
                }
            }
            out
        }
        StoreType::Jks => {
            let ks = jks_store(spec, &bytes)?;
            let mut out = Vec::new();
            for alias in ks.aliases() {
                if let Ok(t) = ks.get_trusted_certificate_entry(&alias) {
                    out.push(CertificateDer::from(t.certificate.content.clone()));
                } else if let Ok(chain) = ks.get_private_key_entry_certificate_chain(&alias) {
                    out.extend(chain.into_iter().map(|c| CertificateDer::from(c.content)));
                }
            }
            out
        }
    };
    if certs.is_empty() {
        return Err(err(spec, "the trust store holds no certificate"));
    }
    Ok(certs)
}

fn pem_certs(spec: &StoreSpec, bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, StoreError> {
    CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(spec, format!("not a PEM file: {e}")))
}

fn pem_key(spec: &StoreSpec, bytes: &[u8]) -> Result<KeyMaterial, StoreError> {
    let chain = pem_certs(spec, bytes)?;
    let mut key: Option<PrivateKeyDer<'static>> = None;
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(bytes) {
        let (kind, der) = section.map_err(|e| err(spec, format!("not a PEM file: {e}")))?;
        let k = match kind {
            SectionKind::PrivateKey => PrivateKeyDer::Pkcs8(der.into()),
            SectionKind::RsaPrivateKey => PrivateKeyDer::Pkcs1(der.into()),
            SectionKind::EcPrivateKey => PrivateKeyDer::Sec1(der.into()),
            _ => continue,
        };
        key.get_or_insert(k);
    }
    if key.is_none() {
        key = encrypted_pem_key(spec, bytes)?;
    }
    let key = key.ok_or_else(|| err(spec, "no private key in the PEM key store"))?;
    Ok(KeyMaterial { chain, key })
}

/// An `ENCRYPTED PRIVATE KEY` section (PKCS#8 with PBES2, as `openssl pkcs8 -topk8`
/// writes), decrypted with the store's password.
fn encrypted_pem_key(
    spec: &StoreSpec,
    bytes: &[u8],
) -> Result<Option<PrivateKeyDer<'static>>, StoreError> {
    use base64::Engine as _;
    use pkcs8::der::Decode as _;
    const BEGIN: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
    const END: &str = "-----END ENCRYPTED PRIVATE KEY-----";
    let text = String::from_utf8_lossy(bytes);
    let Some(start) = text.find(BEGIN) else {
        return Ok(None);
    };
    let body = &text[start + BEGIN.len()..];
    let end = body
        .find(END)
        .ok_or_else(|| err(spec, "an ENCRYPTED PRIVATE KEY section has no end"))?;
    let b64: String = body[..end].chars().filter(|c| !c.is_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| err(spec, format!("the encrypted key is not base64: {e}")))?;
    let info = pkcs8::EncryptedPrivateKeyInfoRef::from_der(&der).map_err(|e| {
        err(
            spec,
            format!(
                "the encrypted key cannot be read ({e}): corral decrypts PBES2 keys, as `openssl pkcs8 -topk8 -v2 aes-256-cbc` writes them; re-encrypt a PKCS#12-PBE (3DES) key with that command, or use a PKCS12 store"
            ),
        )
    })?;
    let Some(pw) = spec.password.as_deref() else {
        return Err(err(
            spec,
            "the private key is encrypted and no keyStore.password is set",
        ));
    };
    let doc = info.decrypt(pw).map_err(|e| {
        err(
            spec,
            format!("cannot decrypt the private key (wrong password?): {e}"),
        )
    })?;
    Ok(Some(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        doc.as_bytes().to_vec(),
    ))))
}

fn pkcs12(spec: &StoreSpec, bytes: &[u8]) -> Result<p12_keystore::KeyStore, StoreError> {
    p12_keystore::KeyStore::from_pkcs12(
        bytes,
        password(spec),
        p12_keystore::Pkcs12ImportPolicy::Relaxed,
    )
    .map_err(|e| {
        err(
            spec,
            format!("cannot open the PKCS12 store (wrong password?): {e}"),
        )
    })
}

fn pkcs12_key(spec: &StoreSpec, bytes: &[u8]) -> Result<KeyMaterial, StoreError> {
    let ks = pkcs12(spec, bytes)?;
    let (_, chain) = ks
        .private_key_chain()
        .ok_or_else(|| err(spec, "the PKCS12 store holds no private key"))?;
    Ok(KeyMaterial {
        chain: chain
            .certs()
            .iter()
            .map(|c| CertificateDer::from(c.as_der().to_vec()))
            .collect(),
        key: PrivateKeyDer::Pkcs8(chain.key().as_der().to_vec().into()),
    })
}

fn jks_store(spec: &StoreSpec, bytes: &[u8]) -> Result<jks::KeyStore, StoreError> {
    // keytool refuses passwords under 6 characters, but a store may still have one.
    let mut ks = jks::KeyStore::with_options(jks::KeyStoreOptions {
        min_password_len: 0,
        ..Default::default()
    });
    ks.load(bytes, password(spec).as_bytes()).map_err(|e| {
        err(
            spec,
            format!("cannot open the JKS store (wrong password?): {e}"),
        )
    })?;
    Ok(ks)
}

fn jks_key(spec: &StoreSpec, bytes: &[u8]) -> Result<KeyMaterial, StoreError> {
    let ks = jks_store(spec, bytes)?;
    let mut aliases = ks.aliases();
    aliases.sort();
    let alias = aliases
        .into_iter()
        .find(|a| ks.is_private_key_entry(a))
        .ok_or_else(|| err(spec, "the JKS store holds no private key entry"))?;
    // ZooKeeper protects the key with the store's password.
    let entry = ks
        .get_private_key_entry(&alias, password(spec).as_bytes())
        .map_err(|e| err(spec, format!("cannot decrypt key entry {alias:?}: {e}")))?;
    Ok(KeyMaterial {
        chain: entry
            .certificate_chain
            .into_iter()
            .map(|c| CertificateDer::from(c.content))
            .collect(),
        key: PrivateKeyDer::Pkcs8(entry.private_key.into()),
    })
}
