//! ACL schemes and permission checks. CONTRACT STUB: owned by the acl/session/watch work.

use crate::proto::{Acl, ErrorCode, Id};

/// Authentication providers configured for this server.
#[derive(Debug, Clone, Default)]
pub struct AuthProviders {
    /// `DigestAuthenticationProvider.superDigest`: "super:BASE64" (as `generate_digest`).
    pub super_digest: Option<String>,
}

impl AuthProviders {
    /// `addAuth(scheme, auth)`: the ids the session gains, or AuthFailed for a bad
    /// credential or an unknown scheme.
    pub fn authenticate(&self, scheme: &str, auth: &[u8]) -> Result<Vec<Id>, ErrorCode> {
        let _ = (scheme, auth);
        Err(ErrorCode::AuthFailed)
    }
}

/// The ids every connection starts with: `ip:<client address>`.
pub fn connection_ids(client_ip: &str) -> Vec<Id> {
    vec![Id {
        scheme: "ip".into(),
        id: client_ip.into(),
    }]
}

/// Whether `auth` may do `perm` on a node with `acl` (super always may).
pub fn check_acl(acl: &[Acl], perm: i32, auth: &[Id]) -> bool {
    let _ = (acl, perm, auth);
    true
}

/// Validates an ACL for create/setACL and expands the `auth` scheme into the session's
/// authenticated ids, as ZooKeeper's `fixupACL`. InvalidACL when empty, malformed, or
/// `auth` with no authenticated id.
pub fn fixup_acl(acl: &[Acl], auth: &[Id]) -> Result<Vec<Acl>, ErrorCode> {
    let _ = auth;
    Ok(acl.to_vec())
}

/// "user:password" -> "user:base64(sha1(user:password))".
pub fn generate_digest(id_password: &str) -> String {
    id_password.to_string()
}
