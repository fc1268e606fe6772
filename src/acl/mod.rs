//! ACL schemes and permission checks, as ZooKeeper's `ProviderRegistry` with its two
//! built-in providers (`ip`, `digest`) plus the pseudo-schemes `world`, `auth` and
//! `super`.
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
//!   with.
//!
//! Sans-IO: pure functions over ids and ACL lists.

pub mod ip;
mod java;

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
}

/// `world:anyone`, the id every ACL check lets through.
pub const ANYONE_ID: &str = "anyone";

/// Authentication providers configured for this server.
#[derive(Debug, Clone, Default)]
pub struct AuthProviders {
    /// `DigestAuthenticationProvider.superDigest`: "super:BASE64" (as `generate_digest`).
    pub super_digest: Option<String>,
}

impl AuthProviders {
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

/// Whether a scheme has a provider in ZooKeeper's default registry. `world`, `auth`
/// and `super` are not providers: ZooKeeper special-cases them by name.
fn is_provider(scheme: &str) -> bool {
    matches!(scheme, scheme::DIGEST | scheme::IP)
}

/// `AuthenticationProvider.isAuthenticated`: whether an id of this scheme is a
/// credential the `auth` ACL scheme may expand to. True for digest, false for ip, and
/// false (skipped) for schemes without a provider such as `super`.
fn is_authenticated_scheme(scheme: &str) -> bool {
    scheme == scheme::DIGEST
}

/// `AuthenticationProvider.isValid(id)` for the providers corral has.
fn is_valid_id(scheme: &str, id: &str) -> bool {
    match scheme {
        // "user:hash": Java's split(":") must give exactly two pieces, so a trailing
        // colon is tolerated ("a:b:") and an empty user is too (":b").
        scheme::DIGEST => java::split_drop_trailing(id, ':').len() == 2,
        scheme::IP => ip::is_valid(id),
        _ => false,
    }
}

/// `AuthenticationProvider.matches(id, aclExpr)`.
fn provider_matches(scheme: &str, id: &str, acl_expr: &str) -> bool {
    match scheme {
        scheme::DIGEST => id == acl_expr,
        scheme::IP => ip::matches(id, acl_expr),
        _ => false,
    }
}

/// Whether `auth` may do `perm` on a node with `acl` (super always may).
///
/// As `ZooKeeperServer.checkACL`: an empty ACL allows everything; a `super` id in
/// `auth` allows everything; otherwise some entry granting `perm` must be
/// `world:anyone`, or of a provider scheme (digest, ip) matching an id of the same
/// scheme in `auth`. Entries of other schemes (`auth`, `super`, `world:x`) match
/// nothing.
pub fn check_acl(acl: &[Acl], perm: i32, auth: &[Id]) -> bool {
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
        is_provider(&a.id.scheme)
            && auth
                .iter()
                .any(|c| c.scheme == a.id.scheme && provider_matches(&c.scheme, &c.id, &a.id.id))
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
pub fn fixup_acl(acl: &[Acl], auth: &[Id]) -> Result<Vec<Acl>, ErrorCode> {
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
                    .filter(|c| is_authenticated_scheme(&c.scheme))
                    .map(|c| Acl {
                        perms: a.perms,
                        id: c.clone(),
                    }),
            );
            if out.len() == before {
                return Err(ErrorCode::InvalidAcl);
            }
        } else if is_valid_id(s, i) {
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
    auth.iter()
        .map(|a| ClientInfo {
            auth_scheme: a.scheme.clone(),
            user: user_name(a).unwrap_or_default(),
        })
        .collect()
}

/// `AuthUtil.getUser`: None when the scheme has no provider.
pub fn user_name(a: &Id) -> Option<String> {
    match a.scheme.as_str() {
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
}
