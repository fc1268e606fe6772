//! SASL for client sessions (opcode 102, `GetSASLRequest` / `SetSASLResponse`), as
//! ZooKeeper 3.8's `ZooKeeperSaslServer` with the JDK's DIGEST-MD5 `SaslServer` and
//! ZooKeeper's `SaslServerCallbackHandler`.
//!
//! - [`digest_md5`]: the DIGEST-MD5 server mechanism (RFC 2831) the way the JDK's
//!   `DigestMD5Server` runs it for ZooKeeper: protocol `zookeeper`, server name (and
//!   realm) `zk-sasl-md5`, qop `auth` only, `algorithm=md5-sess`, `charset=utf-8`,
//!   one challenge, then the response check and `rspauth`.
//! - [`kerberos`]: how ZooKeeper's callback handler turns the authenticated user name
//!   into the `sasl` id (`KerberosName`, `kerberos.removeHostFromPrincipal`,
//!   `kerberos.removeRealmFromPrincipal`).
//! - [`SaslServerSettings`]: what the JAAS `Server` section and the system properties
//!   give the mechanism: the `user_NAME="password"` table and the naming rules.
//!
//! Sans-IO: no socket, file or clock. The nonce's random bytes come from the caller
//! (the server draws them from [`SaslServerSettings::nonce_source`], which is injected).
//!
//! GSSAPI (Kerberos) is not implemented: there is no well-kept pure-Rust GSSAPI
//! acceptor, so a JAAS `Server` section using `Krb5LoginModule` is refused when the
//! configuration is read (see `config::auth`).

pub mod digest_md5;
pub mod digest_md5_client;
pub mod kerberos;

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use rand::RngCore;

pub use digest_md5::{DigestMd5Server, Failure, FailureKind, SaslError, Step};

/// The protocol ZooKeeper's server passes to `Sasl.createSaslServer`.
pub const PROTOCOL: &str = "zookeeper";
/// The server name ZooKeeper passes for DIGEST-MD5; the JDK also uses it as the realm.
pub const SERVER_NAME: &str = "zk-sasl-md5";

/// What the server's DIGEST-MD5 mechanism knows: the users of the JAAS `Server`
/// section and how an authenticated name becomes an id.
pub struct SaslServerSettings {
    /// `user_NAME="password"` options of the login section's entries.
    pub users: HashMap<String, String>,
    /// `zookeeper.SASLAuthenticationProvider.superPassword`: the password of user
    /// `super` (only when the JAAS section lists a `user_super`, as in ZooKeeper).
    pub super_password: Option<String>,
    /// The principal rules (`zookeeper.kerberos.*`).
    pub names: kerberos::NameRules,
    /// Where nonces come from (injected: a seeded generator in tests, the OS's entropy
    /// in the server).
    pub nonce_source: Mutex<Box<dyn RngCore + Send>>,
}

impl fmt::Debug for SaslServerSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the passwords.
        let mut users: Vec<&String> = self.users.keys().collect();
        users.sort();
        f.debug_struct("SaslServerSettings")
            .field("users", &users)
            .field(
                "super_password",
                &self.super_password.as_ref().map(|_| "***"),
            )
            .field("names", &self.names)
            .finish()
    }
}

impl SaslServerSettings {
    /// Settings with the OS's entropy as nonce source.
    pub fn new(
        users: HashMap<String, String>,
        super_password: Option<String>,
        names: kerberos::NameRules,
    ) -> SaslServerSettings {
        use rand::SeedableRng;
        SaslServerSettings {
            users,
            super_password,
            names,
            nonce_source: Mutex::new(Box::new(rand::rngs::StdRng::from_entropy())),
        }
    }

    /// The password DIGEST-MD5 checks `user` against, as ZooKeeper's callback handler
    /// gives it: the JAAS `user_<name>` option, or for `super` (when listed) the
    /// `superPassword` property.
    pub fn password(&self, user: &str) -> Option<&str> {
        let listed = self.users.get(user)?;
        if user == "super" {
            if let Some(p) = &self.super_password {
                return Some(p);
            }
        }
        Some(listed)
    }

    /// Fresh random bytes for one nonce.
    pub fn draw_nonce(&self) -> [u8; digest_md5::RAW_NONCE_SIZE] {
        let mut raw = [0u8; digest_md5::RAW_NONCE_SIZE];
        // A poisoned lock only means another thread panicked mid-draw; the generator
        // itself is still usable.
        let mut rng = self
            .nonce_source
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        rng.fill_bytes(&mut raw);
        raw
    }
}
