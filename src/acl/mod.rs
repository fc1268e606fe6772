//! ACL schemes and permission checks, as ZooKeeper's `ProviderRegistry` with its two
//! built-in providers (`ip`, `digest`), the two a configuration may register with
//! `authProvider.N` (`sasl`, `x509`: see [`Registry`]), plus the pseudo-schemes
//! `world`, `auth` and `super`.
//!
//! What the server needs from this module, and ZooKeeper's name for it:
//! - [`AuthProviders::add_auth`]: the auth packet (`addAuth`), the ids a session gains.
//!   ZooKeeper keeps a connection's ids in a set (`ServerCnxn.authInfo`): the caller
//!   must not add an id twice. The set is unordered in ZooKeeper; here the caller's
//!   list order (insertion order) is what whoAmI and the `auth` expansion follow.
//! - [`check_acl`]: `ZooKeeperServer.checkACL`, asked before every read/write and
//!   before a watch event is delivered (READ on the node).
//! - [`fixup_acl`]: `PrepRequestProcessor.fixupACL`, validating create/setACL lists.
//! - [`client_infos`]: `AuthUtil.getClientInfos`, the whoAmI answer.
//! - [`connection_ids`] / [`ip::host_address`]: the `ip` id every connection starts
//!   with; [`AuthProviders::x509_ids`]: what a TLS client's certificate adds.
//! - [`AuthProviders::sasl_ids`]: what a completed SASL login adds.
//!
//! Which providers exist is process-wide in ZooKeeper (`ProviderRegistry` is static),
//! and so it is here: the server installs its [`Registry`] once at start
//! ([`install_registry`]); [`check_acl`], [`fixup_acl`] and [`client_infos`] consult
//! it only for `sasl` and `x509` entries, so the common path takes no lock. The same
//! checks against an explicit registry ([`Registry::check_acl`], ...) are what the
//! tests use.
//!
//! Sans-IO: pure functions over ids and ACL lists.

pub mod ip;
mod java;
mod x500;

use std::sync::{Arc, RwLock};

use base64::Engine as _;
use sha1::{Digest as _, Sha1};

use crate::proto::{Acl, ClientInfo, ErrorCode, Id};

/// Scheme names, as ZooKeeper spells them.
pub mod scheme {
    pub const WORLD: &str = "world";
    pub const AUTH: &str = "auth";
    pub const DIGEST: &str = "digest";
    pub const IP: &str = "ip";
    pub const SUPER: &str = "super";
    pub const SASL: &str = "sasl";
    pub const X509: &str = "x509";
}

/// The providers a configuration registered beyond `ip` and `digest`, with the
/// settings their `matches` reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registry {
    /// `SASLAuthenticationProvider` is registered.
    pub sasl: bool,
    /// `X509AuthenticationProvider` is registered.
    pub x509: bool,
    /// `zookeeper.letAnySaslUserDoX`: an ACL id every SASL id matches.
    pub let_any_sasl_user_do_x: Option<String>,
    /// `zookeeper.X509AuthenticationProvider.superUser`: the subject that matches
    /// every x509 ACL entry.
    pub x509_super_user: Option<String>,
}

static REGISTRY: RwLock<Option<Arc<Registry>>> = RwLock::new(None);

/// Installs the process's provider registry (the server does, once at start).
pub fn install_registry(r: Registry) {
    let mut g = REGISTRY.write().unwrap_or_else(|p| p.into_inner());
    *g = Some(Arc::new(r));
}

/// The installed registry (ip and digest only until one is installed).
pub fn registry() -> Arc<Registry> {
    REGISTRY
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .unwrap_or_default()
}

/// Where the checks find the registry: the installed one (looked up only when an
/// entry of a registrable scheme is met) or one given.
#[derive(Clone, Copy)]
enum Lookup<'a> {
    Installed,
    Given(&'a Registry),
}

impl Lookup<'_> {
    fn with<R>(self, f: impl FnOnce(&Registry) -> R) -> R {
        match self {
            Lookup::Given(r) => f(r),
            Lookup::Installed => f(&registry()),
        }
    }
}

impl Registry {
    /// The registry a configuration asks for.
    pub fn from_config(c: &crate::config::auth::AuthConfig) -> Registry {
        Registry {
            sasl: c.sasl_provider,
            x509: c.x509_provider,
            let_any_sasl_user_do_x: c.let_any_sasl_user_do_x.clone(),
            x509_super_user: c.x509_super_user.clone(),
        }
    }

    /// `ProviderRegistry.getProvider(scheme) != null`.
    pub fn has_provider(&self, scheme: &str) -> bool {
        match scheme {
            scheme::DIGEST | scheme::IP => true,
            scheme::SASL => self.sasl,
            scheme::X509 => self.x509,
            _ => false,
        }
    }

    /// [`check_acl`] with this registry.
    pub fn check_acl(&self, acl: &[Acl], perm: i32, auth: &[Id]) -> bool {
        check(acl, perm, auth, Lookup::Given(self))
    }

    /// [`fixup_acl`] with this registry.
    pub fn fixup_acl(&self, acl: &[Acl], auth: &[Id]) -> Result<Vec<Acl>, ErrorCode> {
        fixup(acl, auth, Lookup::Given(self))
    }

    /// [`client_infos`] with this registry.
    pub fn client_infos(&self, auth: &[Id]) -> Vec<ClientInfo> {
        infos(auth, Lookup::Given(self))
    }

    /// `SASLAuthenticationProvider.matches` / `X509AuthenticationProvider.matches`.
    fn matches(&self, scheme: &str, id: &str, acl_expr: &str) -> bool {
        match scheme {
            scheme::SASL => {
                id == "super"
                    || id == acl_expr
                    || self.let_any_sasl_user_do_x.as_deref() == Some(acl_expr)
            }
            scheme::X509 => self.x509_super_user.as_deref() == Some(id) || id == acl_expr,
            _ => false,
        }
    }
}

/// `world:anyone`, the id every ACL check lets through.
pub const ANYONE_ID: &str = "anyone";

/// Authentication providers configured for this server.
#[derive(Debug, Clone, Default)]
pub struct AuthProviders {
    /// `DigestAuthenticationProvider.superDigest`: "super:BASE64" (as `generate_digest`).
    pub super_digest: Option<String>,
    /// `authProvider.N`, SASL and x509 settings (`config::auth`).
    pub config: Arc<crate::config::auth::AuthConfig>,
}

impl AuthProviders {
    /// The providers a configuration sets up.
    pub fn from_config(c: &crate::config::Config) -> AuthProviders {
        AuthProviders {
            super_digest: c.super_digest.clone(),
            config: Arc::new(c.auth.clone()),
        }
    }

    /// For a TLS client that presented a certificate with this subject (RFC 2253, as
    /// Java's `X500Principal.getName()`): the ids its connection gains after its `ip`
    /// id, as `X509AuthenticationProvider.handleAuthentication` adds them:
    /// `super:<subject>` when the subject is
    /// `zookeeper.X509AuthenticationProvider.superUser`, then `x509:<subject>`.
    ///
    /// None when no x509 provider is registered (`authProvider.N=...X509AuthenticationProvider`):
    /// ZooKeeper then closes the connection ("X509 Auth provider not found").
    pub fn x509_ids(&self, subject: &str) -> Option<Vec<Id>> {
        if !self.config.x509_provider {
            return None;
        }
        let mut ids = Vec::with_capacity(2);
        if self.config.x509_super_user.as_deref() == Some(subject) {
            ids.push(id(scheme::SUPER, subject));
        }
        ids.push(id(scheme::X509, subject));
        Some(ids)
    }

    /// The ids a completed SASL login as `authorization_id` adds, as
    /// `ZooKeeperServer.processSasl`: `sasl:<id>`, then `super:` (empty id) when a
    /// `zookeeper.superUser` or `zookeeper.superUser.*` property names it.
    pub fn sasl_ids(&self, authorization_id: &str) -> Vec<Id> {
        let mut ids = vec![id(scheme::SASL, authorization_id)];
        if !authorization_id.is_empty()
            && self
                .config
                .super_users
                .iter()
                .any(|u| u == authorization_id)
        {
            ids.push(id(scheme::SUPER, ""));
        }
        ids
    }

    /// `addAuth(scheme, auth)`: the ids the session gains, or AuthFailed for a bad
    /// credential or an unknown scheme.
    ///
    /// The `ip` scheme ignores its credential and re-adds the connection's own address,
    /// which this function does not know: it answers Ok with no ids. That is exact as
    /// long as the session's auth list already holds its [`connection_ids`], since
    /// ZooKeeper's auth info is a set and the re-added id changes nothing.
    /// [`AuthProviders::add_auth`] returns the id itself.
    pub fn authenticate(&self, scheme: &str, auth: &[u8]) -> Result<Vec<Id>, ErrorCode> {
        match scheme {
            scheme::IP => Ok(Vec::new()),
            _ => self.add_auth(scheme, auth, ""),
        }
    }

    /// `addAuth(scheme, auth)` on a connection from `client_ip` (as
    /// [`ip::host_address`]): the ids to append to the session's auth list, in order.
    ///
    /// - `digest`: any bytes are accepted (ZooKeeper never fails a digest addAuth):
    ///   `digest:generate_digest(auth)`, preceded by `super:` (empty id) when that digest
    ///   equals the configured super digest.
    /// - `ip`: `ip:<client_ip>`, whatever the credential.
    /// - anything else (world, auth, super, sasl, x509, ...): AuthFailed, as there is no
    ///   provider for it. ZooKeeper then closes the connection.
    pub fn add_auth(
        &self,
        scheme: &str,
        auth: &[u8],
        client_ip: &str,
    ) -> Result<Vec<Id>, ErrorCode> {
        match scheme {
            scheme::DIGEST => {
                // `new String(authData)`: the JVM's UTF-8 decoding, malformed input replaced.
                let id_password = String::from_utf8_lossy(auth);
                let digest = generate_digest(&id_password);
                let mut ids = Vec::with_capacity(2);
                if self.super_digest.as_deref() == Some(digest.as_str()) {
                    ids.push(id(scheme::SUPER, ""));
                }
                ids.push(id(scheme::DIGEST, &digest));
                Ok(ids)
            }
            scheme::IP => Ok(vec![id(scheme::IP, client_ip)]),
            _ => Err(ErrorCode::AuthFailed),
        }
    }
}

fn id(scheme: &str, id: &str) -> Id {
    Id {
        scheme: scheme.into(),
        id: id.into(),
    }
}

/// The ids every connection starts with: `ip:<client address>`.
pub fn connection_ids(client_ip: &str) -> Vec<Id> {
    vec![Id {
        scheme: "ip".into(),
        id: client_ip.into(),
    }]
}

/// Whether a scheme has a provider: digest and ip always, sasl and x509 when
/// registered. `world`, `auth` and `super` are not providers: ZooKeeper special-cases
/// them by name.
fn is_provider(scheme: &str, reg: Lookup<'_>) -> bool {
    match scheme {
        scheme::DIGEST | scheme::IP => true,
        scheme::SASL | scheme::X509 => reg.with(|r| r.has_provider(scheme)),
        _ => false,
    }
}

/// `AuthenticationProvider.isAuthenticated`: whether an id of this scheme is a
/// credential the `auth` ACL scheme may expand to. True for digest and for a
/// registered sasl or x509, false for ip, and false (skipped) for schemes without a
/// provider such as `super`.
fn is_authenticated_scheme(scheme: &str, reg: Lookup<'_>) -> bool {
    match scheme {
        scheme::DIGEST => true,
        scheme::SASL | scheme::X509 => reg.with(|r| r.has_provider(scheme)),
        _ => false,
    }
}

/// `AuthenticationProvider.isValid(id)` for the providers corral has.
fn is_valid_id(scheme: &str, id: &str, reg: Lookup<'_>) -> bool {
    match scheme {
        // "user:hash": Java's split(":") must give exactly two pieces, so a trailing
        // colon is tolerated ("a:b:") and an empty user is too (":b").
        scheme::DIGEST => java::split_drop_trailing(id, ':').len() == 2,
        scheme::IP => ip::is_valid(id),
        // `new KerberosName(id)` does not throw.
        scheme::SASL => {
            reg.with(|r| r.sasl) && crate::sasl::kerberos::KerberosName::parse(id).is_ok()
        }
        // `new X500Principal(id)` does not throw.
        scheme::X509 => reg.with(|r| r.x509) && x500::is_valid_dn(id),
        _ => false,
    }
}

/// `AuthenticationProvider.matches(id, aclExpr)`.
fn provider_matches(scheme: &str, id: &str, acl_expr: &str, reg: Lookup<'_>) -> bool {
    match scheme {
        scheme::DIGEST => id == acl_expr,
        scheme::IP => ip::matches(id, acl_expr),
        scheme::SASL | scheme::X509 => reg.with(|r| r.matches(scheme, id, acl_expr)),
        _ => false,
    }
}

/// Whether `auth` may do `perm` on a node with `acl` (super always may).
///
/// As `ZooKeeperServer.checkACL`: an empty ACL allows everything; a `super` id in
/// `auth` allows everything; otherwise some entry granting `perm` must be
/// `world:anyone`, or of a provider scheme (digest, ip, and sasl/x509 when
/// registered) matching an id of the same scheme in `auth`. Entries of other schemes
/// (`auth`, `super`, `world:x`) match nothing.
pub fn check_acl(acl: &[Acl], perm: i32, auth: &[Id]) -> bool {
    check(acl, perm, auth, Lookup::Installed)
}

fn check(acl: &[Acl], perm: i32, auth: &[Id], reg: Lookup<'_>) -> bool {
    if acl.is_empty() {
        return true;
    }
    if auth.iter().any(|a| a.scheme == scheme::SUPER) {
        return true;
    }
    acl.iter().any(|a| {
        if a.perms & perm == 0 {
            return false;
        }
        if a.id.scheme == scheme::WORLD && a.id.id == ANYONE_ID {
            return true;
        }
        is_provider(&a.id.scheme, reg)
            && auth.iter().any(|c| {
                c.scheme == a.id.scheme && provider_matches(&c.scheme, &c.id, &a.id.id, reg)
            })
    })
}

/// Validates an ACL for create/setACL and expands the `auth` scheme into the session's
/// authenticated ids, as ZooKeeper's `fixupACL`. InvalidACL when empty, malformed, or
/// `auth` with no authenticated id.
///
/// Exactly as ZooKeeper: duplicates are dropped first (keeping the first of equal
/// entries), then each entry in order is kept (`world:anyone`, or a digest/ip id its
/// provider finds valid), or expanded (`auth:<anything>` becomes one entry with its
/// perms per `digest` id of the session, in session order; ip and super ids are not
/// credentials for this), or rejected (any other scheme or id, including `world:x`
/// and `super:x`). The expansion may reintroduce duplicates; ZooKeeper keeps them too.
/// With sasl or x509 registered, their ids are valid entries (a Kerberos name, an
/// X.500 name) and their session ids are credentials `auth` expands to.
pub fn fixup_acl(acl: &[Acl], auth: &[Id]) -> Result<Vec<Acl>, ErrorCode> {
    fixup(acl, auth, Lookup::Installed)
}

fn fixup(acl: &[Acl], auth: &[Id], reg: Lookup<'_>) -> Result<Vec<Acl>, ErrorCode> {
    let mut unique: Vec<&Acl> = Vec::with_capacity(acl.len());
    for a in acl {
        if !unique.contains(&a) {
            unique.push(a);
        }
    }
    if unique.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    let mut out = Vec::with_capacity(unique.len());
    for a in unique {
        let (s, i) = (a.id.scheme.as_str(), a.id.id.as_str());
        if s == scheme::WORLD && i == ANYONE_ID {
            out.push(a.clone());
        } else if s == scheme::AUTH {
            let before = out.len();
            out.extend(
                auth.iter()
                    .filter(|c| is_authenticated_scheme(&c.scheme, reg))
                    .map(|c| Acl {
                        perms: a.perms,
                        id: c.clone(),
                    }),
            );
            if out.len() == before {
                return Err(ErrorCode::InvalidAcl);
            }
        } else if is_valid_id(s, i, reg) {
            out.push(a.clone());
        } else {
            return Err(ErrorCode::InvalidAcl);
        }
    }
    Ok(out)
}

/// "user:password" -> "user:base64(sha1(user:password))".
///
/// As `DigestAuthenticationProvider.generateDigest`: the user is everything before the
/// first ':' (the whole string if there is none) and the hash covers the whole string.
pub fn generate_digest(id_password: &str) -> String {
    let user = id_password.split(':').next().unwrap_or("");
    let hash = Sha1::digest(id_password.as_bytes());
    format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

/// `AuthUtil.getClientInfos`: the whoAmI answer, one entry per session id in order.
/// The user is the provider's `getUserName`: the ip itself, the digest's user part, and
/// "" for schemes without a provider (`super`).
pub fn client_infos(auth: &[Id]) -> Vec<ClientInfo> {
    infos(auth, Lookup::Installed)
}

fn infos(auth: &[Id], reg: Lookup<'_>) -> Vec<ClientInfo> {
    auth.iter()
        .map(|a| ClientInfo {
            auth_scheme: a.scheme.clone(),
            user: user_name_in(a, reg).unwrap_or_default(),
        })
        .collect()
}

/// `AuthUtil.getUser`: None when the scheme has no provider. The sasl and x509
/// providers name the user by the whole id.
pub fn user_name(a: &Id) -> Option<String> {
    user_name_in(a, Lookup::Installed)
}

fn user_name_in(a: &Id, reg: Lookup<'_>) -> Option<String> {
    match a.scheme.as_str() {
        scheme::SASL | scheme::X509 => reg
            .with(|r| r.has_provider(&a.scheme))
            .then(|| a.id.clone()),
        scheme::IP => Some(a.id.clone()),
        // id.split(":")[0]; Java would throw on an id made only of colons, which addAuth
        // never produces: answer "" there.
        scheme::DIGEST => Some(
            java::split_drop_trailing(&a.id, ':')
                .first()
                .copied()
                .unwrap_or("")
                .to_string(),
        ),
        _ => None,
    }
}

/// `AuthUtil.getUsers`: the comma-joined non-blank user names, for logs and the `cons`
/// listing; None when there are none.
pub fn users(auth: &[Id]) -> Option<String> {
    let names: Vec<String> = auth
        .iter()
        .filter_map(user_name)
        .filter(|n| !n.trim().is_empty())
        .collect();
    if names.is_empty() {
        None
    } else {
        Some(names.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::perms;

    fn acl(perms: i32, s: &str, i: &str) -> Acl {
        Acl {
            perms,
            id: id(s, i),
        }
    }

    fn world() -> Acl {
        acl(perms::ALL, "world", "anyone")
    }

    #[test]
    fn digest_matches_zookeeper() {
        // Reference values from DigestAuthenticationProvider.generateDigest on the JVM.
        assert_eq!(
            generate_digest("super:test"),
            "super:D/InIHSb7yEEbrWz8b9l71RjZJU="
        );
        assert_eq!(
            generate_digest("user:password"),
            "user:tpUq/4Pn5A64fVZyQ0gOJ8ZWqkY="
        );
        assert_eq!(
            generate_digest("bob:secret"),
            "bob:fyVmFCwVbTJYrznoSu1koqYEYF0="
        );
        assert_eq!(
            generate_digest("nocolon"),
            "nocolon:Ra+cHr2ZoHvBjtNArFGNGlVie4g="
        );
        assert_eq!(generate_digest(""), ":2jmj7l5rSw0yVb/vlWAYkK/YBwk=");
        assert_eq!(generate_digest("a:b:c"), "a:cLzgnoJ6mP5qz3w+mwvPE2vDgu0=");
        assert_eq!(generate_digest("é:ü"), "é:Ztqg8TrMmzkSFpOaDBO87lu10+c=");
    }

    #[test]
    fn add_auth_digest() {
        let p = AuthProviders::default();
        assert_eq!(
            p.authenticate("digest", b"user:password"),
            Ok(vec![id("digest", "user:tpUq/4Pn5A64fVZyQ0gOJ8ZWqkY=")])
        );
        // Any credential is accepted, even without a colon.
        assert_eq!(
            p.authenticate("digest", b"nocolon"),
            Ok(vec![id("digest", "nocolon:Ra+cHr2ZoHvBjtNArFGNGlVie4g=")])
        );
        // Malformed UTF-8 is decoded lossily, not refused.
        assert!(p.authenticate("digest", &[0xff, b':', 0xfe]).is_ok());
    }

    #[test]
    fn add_auth_super() {
        let p = AuthProviders {
            super_digest: Some("super:D/InIHSb7yEEbrWz8b9l71RjZJU=".into()),
            ..Default::default()
        };
        assert_eq!(
            p.authenticate("digest", b"super:test"),
            Ok(vec![
                id("super", ""),
                id("digest", "super:D/InIHSb7yEEbrWz8b9l71RjZJU=")
            ])
        );
        // A wrong password is still a successful digest auth, just not super.
        assert_eq!(
            p.authenticate("digest", b"super:wrong").unwrap(),
            vec![id("digest", &generate_digest("super:wrong"))]
        );
    }

    #[test]
    fn add_auth_ip_and_unknown() {
        let p = AuthProviders::default();
        assert_eq!(
            p.add_auth("ip", b"ignored", "10.0.0.1"),
            Ok(vec![id("ip", "10.0.0.1")])
        );
        assert_eq!(p.authenticate("ip", b"whatever"), Ok(vec![]));
        for s in ["world", "auth", "super", "sasl", "x509", "", "DIGEST"] {
            assert_eq!(p.authenticate(s, b"a:b"), Err(ErrorCode::AuthFailed), "{s}");
            assert_eq!(
                p.add_auth(s, b"a:b", "1.2.3.4"),
                Err(ErrorCode::AuthFailed),
                "{s}"
            );
        }
    }

    #[test]
    fn check_acl_rules() {
        let ip_only = connection_ids("10.0.0.1");
        let alice = generate_digest("alice:pw");
        let mut with_alice = ip_only.clone();
        with_alice.push(id("digest", &alice));

        // Empty ACL: anything goes.
        assert!(check_acl(&[], perms::ADMIN, &[]));
        // world:anyone, but only for the perms it grants.
        assert!(check_acl(&[world()], perms::READ, &ip_only));
        let read_only = [acl(perms::READ, "world", "anyone")];
        assert!(check_acl(&read_only, perms::READ, &[]));
        assert!(!check_acl(&read_only, perms::WRITE, &ip_only));
        // world with another id is nothing.
        assert!(!check_acl(
            &[acl(perms::ALL, "world", "someone")],
            perms::READ,
            &ip_only
        ));
        // digest: exact id equality.
        let d = [acl(perms::READ | perms::WRITE, "digest", &alice)];
        assert!(check_acl(&d, perms::WRITE, &with_alice));
        assert!(!check_acl(&d, perms::DELETE, &with_alice));
        assert!(!check_acl(&d, perms::READ, &ip_only));
        assert!(!check_acl(
            &d,
            perms::READ,
            &[id("digest", &generate_digest("alice:other"))]
        ));
        // ip: CIDR match against the connection's ip id.
        let net = [acl(perms::READ, "ip", "10.0.0.0/8")];
        assert!(check_acl(&net, perms::READ, &ip_only));
        assert!(!check_acl(&net, perms::READ, &connection_ids("11.0.0.1")));
        // Schemes must agree: an ip-looking digest id does not match an ip ACL.
        assert!(!check_acl(&net, perms::READ, &[id("digest", "10.0.0.1")]));
        // super in the session: always allowed, even when nothing matches.
        assert!(check_acl(&d, perms::ADMIN, &[id("super", "")]));
        // auth/super entries in a stored ACL match nothing.
        assert!(!check_acl(
            &[acl(perms::ALL, "super", ""), acl(perms::ALL, "auth", "")],
            perms::READ,
            &with_alice
        ));
        // Several entries: any one granting the perm suffices.
        let mixed = [acl(perms::READ, "ip", "192.168.0.0/16"), d[0].clone()];
        assert!(check_acl(&mixed, perms::READ, &with_alice));
        assert!(!check_acl(&mixed, perms::ADMIN, &with_alice));
    }

    #[test]
    fn fixup_rejects_empty_and_unknown() {
        assert_eq!(fixup_acl(&[], &[]), Err(ErrorCode::InvalidAcl));
        for bad in [
            acl(perms::ALL, "world", "someone"),
            acl(perms::ALL, "super", ""),
            acl(perms::ALL, "sasl", "bob"),
            acl(perms::ALL, "", ""),
            acl(perms::ALL, "digest", "nocolon"),
            acl(perms::ALL, "digest", "a:b:c"),
            acl(perms::ALL, "digest", "a:"),
            acl(perms::ALL, "digest", ":"),
            acl(perms::ALL, "ip", "10.0.0.0/33"),
            acl(perms::ALL, "ip", "host.example"),
            acl(perms::ALL, "ip", "nonsense"),
        ] {
            assert_eq!(
                fixup_acl(&[world(), bad.clone()], &[]),
                Err(ErrorCode::InvalidAcl),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn fixup_keeps_valid_ids() {
        let list = vec![
            world(),
            acl(perms::READ, "digest", "u:hash"),
            acl(perms::READ, "digest", ":hash"),
            acl(perms::READ, "digest", "u:hash:"),
            acl(perms::READ, "ip", "10.0.0.0/8"),
            acl(perms::READ, "ip", "::1"),
        ];
        assert_eq!(fixup_acl(&list, &[]), Ok(list));
    }

    #[test]
    fn fixup_removes_duplicates() {
        let a = acl(perms::READ, "ip", "1.2.3.4");
        let b = acl(perms::ALL, "ip", "1.2.3.4");
        assert_eq!(
            fixup_acl(&[a.clone(), b.clone(), a.clone(), world(), b.clone()], &[]),
            Ok(vec![a, b, world()])
        );
    }

    #[test]
    fn fixup_expands_auth() {
        let alice = id("digest", &generate_digest("alice:pw"));
        let bob = id("digest", &generate_digest("bob:pw"));
        let session = vec![
            id("ip", "10.0.0.1"),
            id("super", ""),
            alice.clone(),
            bob.clone(),
        ];
        // Only digest ids are credentials; ip and super are skipped. The auth id's own
        // text is ignored.
        assert_eq!(
            fixup_acl(
                &[acl(perms::READ | perms::ADMIN, "auth", "whatever")],
                &session
            ),
            Ok(vec![
                Acl {
                    perms: perms::READ | perms::ADMIN,
                    id: alice.clone()
                },
                Acl {
                    perms: perms::READ | perms::ADMIN,
                    id: bob.clone()
                },
            ])
        );
        // No authenticated id: InvalidACL, even with ip and super present.
        assert_eq!(
            fixup_acl(
                &[acl(perms::ALL, "auth", "")],
                &[id("ip", "10.0.0.1"), id("super", "")]
            ),
            Err(ErrorCode::InvalidAcl)
        );
        // Expansion happens after deduplication, so duplicates can come back.
        assert_eq!(
            fixup_acl(
                &[
                    Acl {
                        perms: perms::ALL,
                        id: alice.clone()
                    },
                    acl(perms::ALL, "auth", "")
                ],
                std::slice::from_ref(&alice)
            ),
            Ok(vec![
                Acl {
                    perms: perms::ALL,
                    id: alice.clone()
                },
                Acl {
                    perms: perms::ALL,
                    id: alice
                },
            ])
        );
    }

    #[test]
    fn who_am_i() {
        let p = AuthProviders {
            super_digest: Some(generate_digest("super:test")),
            ..Default::default()
        };
        let mut ids = connection_ids("10.0.0.1");
        // The session's ids form a set: adding one again changes nothing.
        for new in [
            p.add_auth("digest", b"super:test", "10.0.0.1").unwrap(),
            p.add_auth("ip", b"", "10.0.0.1").unwrap(),
            p.add_auth("digest", b"super:test", "10.0.0.1").unwrap(),
            p.add_auth("digest", b"bob:pw", "10.0.0.1").unwrap(),
        ] {
            for i in new {
                if !ids.contains(&i) {
                    ids.push(i);
                }
            }
        }
        let infos = client_infos(&ids);
        let pairs: Vec<(&str, &str)> = infos
            .iter()
            .map(|c| (c.auth_scheme.as_str(), c.user.as_str()))
            .collect();
        assert_eq!(
            pairs,
            vec![
                ("ip", "10.0.0.1"),
                ("super", ""),
                ("digest", "super"),
                ("digest", "bob")
            ]
        );
        assert_eq!(users(&ids).as_deref(), Some("10.0.0.1,super,bob"));
        assert_eq!(users(&[id("super", "")]), None);
        assert_eq!(user_name(&id("digest", ":")).as_deref(), Some(""));
    }

    fn registry(sasl: bool, x509: bool) -> Registry {
        Registry {
            sasl,
            x509,
            ..Registry::default()
        }
    }

    #[test]
    fn sasl_and_x509_match_only_when_registered() {
        let bob = [id("ip", "10.0.0.1"), id("sasl", "bob")];
        let sub = "CN=client,O=Apache";
        let cert = [id("ip", "10.0.0.1"), id("x509", sub)];
        let sasl_acl = [acl(perms::READ, "sasl", "bob")];
        let x509_acl = [acl(perms::READ, "x509", sub)];
        let none = Registry::default();
        let both = registry(true, true);
        // Unregistered: the entries match nothing, as an unknown scheme.
        assert!(!none.check_acl(&sasl_acl, perms::READ, &bob));
        assert!(!none.check_acl(&x509_acl, perms::READ, &cert));
        // Registered: equality, for the granted perms only, schemes must agree.
        assert!(both.check_acl(&sasl_acl, perms::READ, &bob));
        assert!(!both.check_acl(&sasl_acl, perms::WRITE, &bob));
        assert!(!both.check_acl(&sasl_acl, perms::READ, &[id("sasl", "alice")]));
        assert!(!both.check_acl(&sasl_acl, perms::READ, &[id("digest", "bob")]));
        assert!(both.check_acl(&x509_acl, perms::READ, &cert));
        assert!(!both.check_acl(&x509_acl, perms::READ, &[id("x509", "CN=other")]));
        // SASLAuthenticationProvider.matches: a sasl id "super" matches every entry.
        assert!(both.check_acl(&sasl_acl, perms::READ, &[id("sasl", "super")]));
        // letAnySaslUserDoX: any sasl id matches that ACL id.
        let any = Registry {
            let_any_sasl_user_do_x: Some("anysasl".into()),
            ..both.clone()
        };
        let open = [acl(perms::READ, "sasl", "anysasl")];
        assert!(any.check_acl(&open, perms::READ, &[id("sasl", "carol")]));
        assert!(!both.check_acl(&open, perms::READ, &[id("sasl", "carol")]));
        // X509AuthenticationProvider.superUser matches every x509 entry.
        let su = Registry {
            x509_super_user: Some("CN=admin".into()),
            ..both.clone()
        };
        assert!(su.check_acl(&x509_acl, perms::READ, &[id("x509", "CN=admin")]));
        assert!(!both.check_acl(&x509_acl, perms::READ, &[id("x509", "CN=admin")]));
    }

    #[test]
    fn fixup_validates_and_expands_registered_schemes() {
        let none = Registry::default();
        let both = registry(true, true);
        for good in [
            acl(perms::ALL, "sasl", "bob"),
            acl(perms::ALL, "sasl", "zk/host@EXAMPLE.COM"),
            acl(perms::ALL, "x509", "CN=client,OU=ZooKeeper,O=Apache"),
        ] {
            assert_eq!(
                none.fixup_acl(std::slice::from_ref(&good), &[]),
                Err(ErrorCode::InvalidAcl),
                "{good:?}"
            );
            assert_eq!(
                both.fixup_acl(std::slice::from_ref(&good), &[]),
                Ok(vec![good.clone()])
            );
        }
        for bad in [
            acl(perms::ALL, "sasl", "a@b@c"),
            acl(perms::ALL, "x509", "not a dn"),
        ] {
            assert_eq!(
                both.fixup_acl(std::slice::from_ref(&bad), &[]),
                Err(ErrorCode::InvalidAcl),
                "{bad:?}"
            );
        }
        // auth expands to registered sasl/x509 ids (isAuthenticated), in session order.
        let session = [
            id("ip", "10.0.0.1"),
            id("sasl", "bob"),
            id("x509", "CN=c"),
            id("super", ""),
        ];
        let auth = [acl(perms::READ, "auth", "")];
        assert_eq!(
            both.fixup_acl(&auth, &session),
            Ok(vec![
                Acl {
                    perms: perms::READ,
                    id: id("sasl", "bob")
                },
                Acl {
                    perms: perms::READ,
                    id: id("x509", "CN=c")
                },
            ])
        );
        assert_eq!(none.fixup_acl(&auth, &session), Err(ErrorCode::InvalidAcl));
    }

    #[test]
    fn who_am_i_names_registered_sasl_and_x509_users() {
        let session = [id("ip", "10.0.0.1"), id("sasl", "bob"), id("x509", "CN=c")];
        let pairs = |infos: Vec<ClientInfo>| -> Vec<(String, String)> {
            infos.into_iter().map(|c| (c.auth_scheme, c.user)).collect()
        };
        let s = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(
            pairs(registry(true, true).client_infos(&session)),
            vec![s("ip", "10.0.0.1"), s("sasl", "bob"), s("x509", "CN=c")]
        );
        // Without the provider, ZooKeeper's getUser has no provider: "".
        assert_eq!(
            pairs(Registry::default().client_infos(&session)),
            vec![s("ip", "10.0.0.1"), s("sasl", ""), s("x509", "")]
        );
    }

    #[test]
    fn ids_a_login_or_a_certificate_adds() {
        let cfg = crate::config::auth::AuthConfig {
            x509_provider: true,
            x509_super_user: Some("CN=admin".into()),
            super_users: vec!["admin".into(), "root".into()],
            ..Default::default()
        };
        let p = AuthProviders {
            super_digest: None,
            config: std::sync::Arc::new(cfg),
        };
        assert_eq!(p.x509_ids("CN=c"), Some(vec![id("x509", "CN=c")]));
        assert_eq!(
            p.x509_ids("CN=admin"),
            Some(vec![id("super", "CN=admin"), id("x509", "CN=admin")])
        );
        assert_eq!(AuthProviders::default().x509_ids("CN=c"), None);
        assert_eq!(p.sasl_ids("bob"), vec![id("sasl", "bob")]);
        assert_eq!(
            p.sasl_ids("root"),
            vec![id("sasl", "root"), id("super", "")]
        );
    }
}
