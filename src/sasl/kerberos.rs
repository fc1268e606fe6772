//! The `sasl` id a successful login gets, as ZooKeeper's
//! `SaslServerCallbackHandler.handleAuthorizeCallback` builds it.
//!
//! ZooKeeper parses the authenticated user name as a Kerberos principal
//! (`KerberosName`: `service[/host]@REALM`, or a plain name without `@`), maps it to a
//! short name with the `auth_to_local` rules, then appends `/host` unless
//! `zookeeper.kerberos.removeHostFromPrincipal=true` and `@REALM` unless
//! `zookeeper.kerberos.removeRealmFromPrincipal=true`. Only the `DEFAULT` rule is
//! supported here (ZooKeeper's default for `zookeeper.security.auth_to_local`): it maps
//! a principal of the default realm to its first component. A principal of another
//! realm matches no rule; ZooKeeper then logs the error and keeps the authorization id
//! the client asked for (its `authzid`, else the user name), and so does corral.
//!
//! Without a Kerberos configuration the JVM's default realm is "" (ZooKeeper's
//! `KerberosName` falls back to it), so for DIGEST-MD5 users `bob` stays `bob` and
//! `bob@EXAMPLE.COM` stays `bob@EXAMPLE.COM`, whatever the two flags say.

use super::SaslError;

/// `zookeeper.kerberos.removeHostFromPrincipal`, `...removeRealmFromPrincipal` and the
/// default realm (`java.security.krb5.realm`, or krb5.conf's `default_realm`; "" when
/// there is none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameRules {
    pub remove_host: bool,
    pub remove_realm: bool,
    pub default_realm: String,
}

/// A principal split as ZooKeeper's `KerberosName` splits it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KerberosName<'a> {
    pub service: &'a str,
    pub host: Option<&'a str>,
    pub realm: Option<&'a str>,
}

impl<'a> KerberosName<'a> {
    /// `new KerberosName(name)`: `([^/@]*)(/([^/@]*))?@([^/@]*)`, or a name without `@`
    /// taken whole; anything else (two `@`, a `/` in the realm, two `/` before it) is
    /// malformed.
    pub fn parse(name: &'a str) -> Result<KerberosName<'a>, SaslError> {
        let Some((before, realm)) = name.split_once('@') else {
            return Ok(KerberosName {
                service: name,
                host: None,
                realm: None,
            });
        };
        // IllegalArgumentException in Java (see `digest_md5::FailureKind`).
        let malformed = || SaslError(format!("Malformed Kerberos name: {name}"));
        if realm.contains(['@', '/']) {
            return Err(malformed());
        }
        let (service, host) = match before.split_once('/') {
            Some((_, h)) if h.contains('/') => return Err(malformed()),
            Some((s, h)) => (s, Some(h)),
            None => (before, None),
        };
        Ok(KerberosName {
            service,
            host,
            realm: Some(realm),
        })
    }

    /// `getShortName()` under the `DEFAULT` rule: None when no rule matches
    /// (ZooKeeper's `NoMatchingRule`).
    fn short_name(&self, rules: &NameRules) -> Option<&'a str> {
        match (self.host, self.realm) {
            (None, None) => Some(self.service),
            (_, Some(realm)) if realm == rules.default_realm => Some(self.service),
            _ => None,
        }
    }
}

/// The authorization id of a login: `authentication_id` is the user name that proved
/// its password, `requested` the client's authzid (or that user name when it sent
/// none). A malformed principal is an error (ZooKeeper's handler throws there and the
/// login does not complete).
pub fn authorized_id(
    authentication_id: &str,
    requested: &str,
    rules: &NameRules,
) -> Result<String, SaslError> {
    let name = KerberosName::parse(authentication_id)?;
    let Some(short) = name.short_name(rules) else {
        return Ok(requested.to_string());
    };
    let mut id = short.to_string();
    if let (false, Some(host)) = (rules.remove_host, name.host) {
        id.push('/');
        id.push_str(host);
    }
    if let (false, Some(realm)) = (rules.remove_realm, name.realm) {
        id.push('@');
        id.push_str(realm);
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(remove_host: bool, remove_realm: bool, realm: &str) -> NameRules {
        NameRules {
            remove_host,
            remove_realm,
            default_realm: realm.into(),
        }
    }

    #[test]
    fn parses_like_kerberos_name() {
        assert_eq!(
            KerberosName::parse("zk/host.example@EXAMPLE.COM").unwrap(),
            KerberosName {
                service: "zk",
                host: Some("host.example"),
                realm: Some("EXAMPLE.COM")
            }
        );
        assert_eq!(
            KerberosName::parse("bob").unwrap(),
            KerberosName {
                service: "bob",
                host: None,
                realm: None
            }
        );
        // No '@': taken whole, slashes and all.
        assert_eq!(KerberosName::parse("a/b/c").unwrap().service, "a/b/c");
        assert_eq!(KerberosName::parse("bob@").unwrap().realm, Some(""));
        for bad in ["a@b@c", "a/b/c@R", "a@R/x", "@@"] {
            assert!(KerberosName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn plain_names_stay() {
        for r in [rules(false, false, ""), rules(true, true, "")] {
            assert_eq!(authorized_id("bob", "bob", &r).unwrap(), "bob");
            assert_eq!(authorized_id("a/b", "a/b", &r).unwrap(), "a/b");
        }
        // A plain name ignores the client's authzid: the id is the authenticated user.
        assert_eq!(
            authorized_id("bob", "alice", &rules(false, false, "")).unwrap(),
            "bob"
        );
    }

    #[test]
    fn default_realm_principals_are_shortened_by_the_flags() {
        let p = "zk/h.example@EXAMPLE.COM";
        assert_eq!(
            authorized_id(p, p, &rules(false, false, "EXAMPLE.COM")).unwrap(),
            p
        );
        assert_eq!(
            authorized_id(p, p, &rules(true, false, "EXAMPLE.COM")).unwrap(),
            "zk@EXAMPLE.COM"
        );
        assert_eq!(
            authorized_id(p, p, &rules(false, true, "EXAMPLE.COM")).unwrap(),
            "zk/h.example"
        );
        assert_eq!(
            authorized_id(p, p, &rules(true, true, "EXAMPLE.COM")).unwrap(),
            "zk"
        );
        // Without a Kerberos configuration the default realm is "".
        assert_eq!(
            authorized_id("bob@", "bob@", &rules(false, true, "")).unwrap(),
            "bob"
        );
    }

    #[test]
    fn other_realms_keep_the_requested_id() {
        // No rule matches: ZooKeeper keeps the authzid the client asked for.
        assert_eq!(
            authorized_id("bob@OTHER", "bob@OTHER", &rules(true, true, "")).unwrap(),
            "bob@OTHER"
        );
        assert_eq!(
            authorized_id("bob@OTHER", "carol", &rules(true, true, "EXAMPLE")).unwrap(),
            "carol"
        );
        assert!(authorized_id("a@b@c", "x", &rules(false, false, "")).is_err());
    }
}
