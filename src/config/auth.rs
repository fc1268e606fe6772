//! The authentication keys: which ACL providers are registered, SASL's login
//! configuration, the super users, and whether sessions must authenticate.
//!
//! ZooKeeper reads all of these as Java system properties; a zoo.cfg key `k` it does
//! not parse itself becomes the property `zookeeper.k`. So each key is accepted here
//! under its zoo.cfg name and under its property name (with `zookeeper.`):
//!
//! | zoo.cfg | system property | meaning |
//! |---|---|---|
//! | `authProvider.N` | `zookeeper.authProvider.N` | register a provider class (`ProviderRegistry`) |
//! | `java.security.auth.login.config` | same | the JAAS file; its `Server` section's `user_NAME="pw"` are the DIGEST-MD5 users |
//! | `sasl.serverconfig` | `zookeeper.sasl.serverconfig` | the JAAS section name (default `Server`) |
//! | `sessionRequireClientSASLAuth` | `zookeeper.sessionRequireClientSASLAuth` | same as `enforce.auth.enabled=true` with schemes `sasl` |
//! | `enforce.auth.enabled`, `enforce.auth.schemes` | `zookeeper.enforce.auth.*` | every request before authentication gets SessionClosedRequireSaslAuth |
//! | `allowSaslFailedClients` | `zookeeper.allowSaslFailedClients` | a failed SASL login keeps the connection |
//! | `kerberos.removeHostFromPrincipal`, `kerberos.removeRealmFromPrincipal` | `zookeeper.kerberos.*` | the shape of the `sasl` id |
//! | `superUser`, `superUser.X` | `zookeeper.superUser[.X]` | SASL ids that also get `super` |
//! | `X509AuthenticationProvider.superUser` | `zookeeper.X509AuthenticationProvider.superUser` | the certificate subject that is super |
//! | `SASLAuthenticationProvider.superPassword` | `zookeeper.SASLAuthenticationProvider.superPassword` | the password of DIGEST-MD5 user `super` |
//! | `letAnySaslUserDoX` | `zookeeper.letAnySaslUserDoX` | ACL id any SASL user matches |
//! | `security.auth_to_local` | `zookeeper.security.auth_to_local` | only `DEFAULT` is supported |
//!
//! The values are checked as the server starts (`AuthenticationHelper`): enforcing
//! authentication needs schemes, and each must be a registered provider. A JAAS
//! `Server` section using Kerberos (`Krb5LoginModule`) is refused: corral has no
//! GSSAPI. The JAAS file is read by [`AuthConfig::load_login_config`] (from
//! `Config::load`); parsing stays sans-IO.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use super::jaas;
use super::{parse_bool, Bad};
use crate::sasl::kerberos::NameRules;
use crate::sasl::SaslServerSettings;

/// ZooKeeper's provider classes corral implements, and their schemes.
pub const PROVIDER_CLASSES: &[(&str, &str)] = &[
    (
        "org.apache.zookeeper.server.auth.SASLAuthenticationProvider",
        "sasl",
    ),
    (
        "org.apache.zookeeper.server.auth.X509AuthenticationProvider",
        "x509",
    ),
    (
        "org.apache.zookeeper.server.auth.DigestAuthenticationProvider",
        "digest",
    ),
    (
        "org.apache.zookeeper.server.auth.IPAuthenticationProvider",
        "ip",
    ),
];

/// The login module ZooKeeper's DIGEST-MD5 users are listed under.
pub const DIGEST_LOGIN_MODULE: &str = "org.apache.zookeeper.server.auth.DigestLoginModule";
/// The JAAS section the server reads unless `zookeeper.sasl.serverconfig` names another.
pub const DEFAULT_LOGIN_CONTEXT: &str = "Server";

/// The authentication settings.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// `authProvider.N` that registered the `sasl` provider.
    pub sasl_provider: bool,
    /// `authProvider.N` that registered the `x509` provider.
    pub x509_provider: bool,
    /// `java.security.auth.login.config`.
    pub login_config: Option<PathBuf>,
    /// `zookeeper.sasl.serverconfig` (default `Server`).
    pub login_context: String,
    /// The DIGEST-MD5 users once the JAAS file is loaded; None without a JAAS file or
    /// without the section (then SASL tokens are answered with nothing, as ZooKeeper).
    pub sasl: Option<Arc<SaslServerSettings>>,
    /// `enforce.auth.enabled` (or `sessionRequireClientSASLAuth`).
    pub enforce_auth: bool,
    /// `enforce.auth.schemes` (or `sasl` for `sessionRequireClientSASLAuth`).
    pub enforce_auth_schemes: Vec<String>,
    /// `allowSaslFailedClients`.
    pub allow_sasl_failed_clients: bool,
    /// `kerberos.remove*FromPrincipal` and the default realm.
    pub names: NameRules,
    /// `superUser` and `superUser.*`: SASL ids that are super.
    pub super_users: Vec<String>,
    /// `X509AuthenticationProvider.superUser`.
    pub x509_super_user: Option<String>,
    /// `SASLAuthenticationProvider.superPassword`.
    pub sasl_super_password: Option<String>,
    /// `letAnySaslUserDoX`.
    pub let_any_sasl_user_do_x: Option<String>,
    /// `java.security.krb5.conf` (where the default realm would be read).
    pub krb5_conf: Option<PathBuf>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            sasl_provider: false,
            x509_provider: false,
            login_config: None,
            login_context: DEFAULT_LOGIN_CONTEXT.to_string(),
            sasl: None,
            enforce_auth: false,
            enforce_auth_schemes: Vec::new(),
            allow_sasl_failed_clients: false,
            names: NameRules::default(),
            super_users: Vec::new(),
            x509_super_user: None,
            sasl_super_password: None,
            let_any_sasl_user_do_x: None,
            krb5_conf: None,
        }
    }
}

impl PartialEq for AuthConfig {
    fn eq(&self, o: &Self) -> bool {
        self.sasl_provider == o.sasl_provider
            && self.x509_provider == o.x509_provider
            && self.login_config == o.login_config
            && self.login_context == o.login_context
            && self.sasl.as_ref().map(|s| &s.users) == o.sasl.as_ref().map(|s| &s.users)
            && self.enforce_auth == o.enforce_auth
            && self.enforce_auth_schemes == o.enforce_auth_schemes
            && self.allow_sasl_failed_clients == o.allow_sasl_failed_clients
            && self.names == o.names
            && self.super_users == o.super_users
            && self.x509_super_user == o.x509_super_user
            && self.sasl_super_password == o.sasl_super_password
            && self.let_any_sasl_user_do_x == o.let_any_sasl_user_do_x
            && self.krb5_conf == o.krb5_conf
    }
}

impl AuthConfig {
    /// Whether SASL required by `enforce.auth` (`AuthenticationHelper.isSaslAuthRequired`).
    pub fn sasl_auth_required(&self) -> bool {
        self.enforce_auth && self.enforce_auth_schemes.iter().any(|s| s == "sasl")
    }

    /// Whether a provider for `scheme` is registered (`ProviderRegistry.getProvider`).
    pub fn has_provider(&self, scheme: &str) -> bool {
        match scheme {
            "ip" | "digest" => true,
            "sasl" => self.sasl_provider,
            "x509" => self.x509_provider,
            _ => false,
        }
    }

    /// Reads the JAAS file (`read` gets its text) and takes the DIGEST-MD5 users of the
    /// login section, as ZooKeeper's `configureSaslLogin` and
    /// `SaslServerCallbackHandler` do. A missing or malformed file is an error (ZooKeeper
    /// does not start); a file without the section leaves SASL off, with a warning.
    pub fn load_login_config(
        &mut self,
        read: &dyn Fn(&std::path::Path) -> std::io::Result<String>,
        warnings: &mut Vec<String>,
    ) -> Result<(), String> {
        if self.names.default_realm.is_empty() {
            let krb5 = self
                .krb5_conf
                .clone()
                .unwrap_or_else(|| PathBuf::from("/etc/krb5.conf"));
            if let Ok(text) = read(&krb5) {
                self.names.default_realm = krb5_default_realm(&text).unwrap_or_default();
            }
        }
        let Some(path) = self.login_config.clone() else {
            return Ok(());
        };
        let text = read(&path).map_err(|e| {
            format!(
                "java.security.auth.login.config: cannot read {}: {e}",
                path.display()
            )
        })?;
        let cfg = jaas::parse(&text)
            .map_err(|e| format!("{}:{}: {}", path.display(), e.line, e.reason))?;
        let Some(modules) = cfg.sections.get(&self.login_context) else {
            warnings.push(format!(
                "{}: no JAAS section named '{}': SASL authentication is off",
                path.display(),
                self.login_context
            ));
            return Ok(());
        };
        let mut users = HashMap::new();
        for m in modules {
            if m.class.ends_with("Krb5LoginModule") {
                return Err(format!(
                    "{}:{}: {}: GSSAPI (Kerberos) SASL is not supported by corral; use {DIGEST_LOGIN_MODULE} (DIGEST-MD5)",
                    path.display(),
                    m.line,
                    m.class
                ));
            }
            if m.class != DIGEST_LOGIN_MODULE {
                warnings.push(format!(
                    "{}:{}: login module {} is not run by corral; only its user_NAME options are read",
                    path.display(),
                    m.line,
                    m.class
                ));
            }
            for (k, v) in &m.options {
                if let Some(user) = k.strip_prefix("user_") {
                    users.insert(user.to_string(), v.clone());
                }
            }
        }
        self.sasl = Some(Arc::new(SaslServerSettings::new(
            users,
            self.sasl_super_password.clone(),
            self.names.clone(),
        )));
        Ok(())
    }
}

/// `default_realm` of krb5.conf's `[libdefaults]`.
fn krb5_default_realm(text: &str) -> Option<String> {
    let mut in_libdefaults = false;
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with('[') {
            in_libdefaults = l == "[libdefaults]";
        } else if in_libdefaults {
            if let Some((k, v)) = l.split_once('=') {
                if k.trim() == "default_realm" {
                    return Some(v.trim().to_string());
                }
            }
        }
    }
    None
}

/// The short (zoo.cfg) spelling of an authentication key, when `key` is one.
pub fn canonical(key: &str) -> Option<&str> {
    let k = key.strip_prefix("zookeeper.").unwrap_or(key);
    let known = matches!(
        k,
        "authProvider"
            | "sasl.serverconfig"
            | "sessionRequireClientSASLAuth"
            | "enforce.auth.enabled"
            | "enforce.auth.schemes"
            | "allowSaslFailedClients"
            | "kerberos.removeHostFromPrincipal"
            | "kerberos.removeRealmFromPrincipal"
            | "superUser"
            | "X509AuthenticationProvider.superUser"
            | "SASLAuthenticationProvider.superPassword"
            | "letAnySaslUserDoX"
            | "security.auth_to_local"
    ) || k.starts_with("authProvider.")
        || k.starts_with("superUser.");
    if known {
        return Some(k);
    }
    // Properties that keep their own names.
    matches!(
        key,
        "java.security.auth.login.config" | "java.security.krb5.realm" | "java.security.krb5.conf"
    )
    .then_some(key)
}

/// The authentication keys of a file, decided once all are read.
#[derive(Debug, Default)]
pub(super) struct AuthKeys {
    providers: BTreeMap<String, (String, usize)>,
    session_require_sasl: Option<(bool, usize)>,
    enforce_enabled: Option<(bool, usize)>,
    enforce_schemes: Option<(String, usize)>,
    cfg: AuthConfig,
}

/// An invalid value found after all keys are read.
pub(super) struct LateBad {
    pub key: String,
    pub value: String,
    pub line: usize,
    pub reason: String,
}

/// `"true".equals(v)` in ZooKeeper: corral takes exactly `true` or `false`.
fn strict_bool(v: &str) -> Result<bool, Bad> {
    match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(Bad(
            "must be true or false (ZooKeeper compares with \"true\" exactly)".into(),
        )),
    }
}

impl AuthKeys {
    /// One key (canonical spelling, see [`canonical`]) at `line`.
    pub(super) fn set(
        &mut self,
        key: &str,
        value: &str,
        line: usize,
        warnings: &mut Vec<String>,
        file: &str,
    ) -> Result<(), Bad> {
        let c = &mut self.cfg;
        match key {
            "authProvider" => warnings.push(format!(
                "{file}:{line}: authProvider is ignored: ZooKeeper registers providers from authProvider.<N>"
            )),
            k if k.starts_with("authProvider.") => {
                let Some((_, scheme)) = PROVIDER_CLASSES.iter().find(|(c, _)| *c == value) else {
                    let known: Vec<&str> = PROVIDER_CLASSES.iter().map(|(c, _)| *c).collect();
                    return Err(Bad(format!(
                        "unknown authentication provider class; corral has {}",
                        known.join(", ")
                    )));
                };
                match *scheme {
                    "sasl" => c.sasl_provider = true,
                    "x509" => c.x509_provider = true,
                    _ => {}
                }
                self.providers.insert(k.to_string(), (value.to_string(), line));
            }
            "java.security.auth.login.config" => {
                if value.is_empty() {
                    return Err(Bad("names no file".into()));
                }
                c.login_config = Some(PathBuf::from(value));
            }
            "sasl.serverconfig" => {
                if value.is_empty() {
                    return Err(Bad("names no JAAS section".into()));
                }
                c.login_context = value.to_string();
            }
            "sessionRequireClientSASLAuth" => {
                self.session_require_sasl = Some((parse_bool(value)?, line))
            }
            "enforce.auth.enabled" => self.enforce_enabled = Some((parse_bool(value)?, line)),
            "enforce.auth.schemes" => self.enforce_schemes = Some((value.to_string(), line)),
            "allowSaslFailedClients" => c.allow_sasl_failed_clients = parse_bool(value)?,
            "kerberos.removeHostFromPrincipal" => c.names.remove_host = strict_bool(value)?,
            "kerberos.removeRealmFromPrincipal" => c.names.remove_realm = strict_bool(value)?,
            k if k == "superUser" || k.starts_with("superUser.") => {
                if !value.is_empty() {
                    c.super_users.push(value.to_string());
                }
            }
            "X509AuthenticationProvider.superUser" => c.x509_super_user = Some(value.to_string()),
            "SASLAuthenticationProvider.superPassword" => {
                c.sasl_super_password = Some(value.to_string())
            }
            "letAnySaslUserDoX" => c.let_any_sasl_user_do_x = Some(value.to_string()),
            "security.auth_to_local" => {
                if value.trim() != "DEFAULT" {
                    return Err(Bad(
                        "corral supports only the DEFAULT principal mapping rule".into(),
                    ));
                }
            }
            "java.security.krb5.realm" => c.names.default_realm = value.to_string(),
            "java.security.krb5.conf" => c.krb5_conf = Some(PathBuf::from(value)),
            _ => return Err(Bad("not an authentication key".into())),
        }
        Ok(())
    }

    /// The settings, checked as `AuthenticationHelper` checks them.
    pub(super) fn finish(mut self) -> Result<AuthConfig, LateBad> {
        let require_sasl = self.session_require_sasl.filter(|r| r.0);
        if require_sasl.is_some() {
            self.cfg.enforce_auth = true;
            self.cfg.enforce_auth_schemes = vec!["sasl".into()];
        } else {
            self.cfg.enforce_auth = self.enforce_enabled.map(|e| e.0).unwrap_or(false);
            if let Some((s, _)) = &self.enforce_schemes {
                // `split(",")` then trim: Java drops trailing empty pieces only.
                let mut parts: Vec<String> = s.split(',').map(|p| p.trim().to_string()).collect();
                while parts.len() > 1 && parts.last().is_some_and(|p| p.is_empty()) {
                    parts.pop();
                }
                if s.is_empty() {
                    parts.clear();
                }
                self.cfg.enforce_auth_schemes = parts;
            }
        }
        if self.cfg.enforce_auth {
            let (line, key, value) = match (&self.enforce_enabled, &self.enforce_schemes) {
                _ if require_sasl.is_some() => (
                    require_sasl.map(|r| r.1).unwrap_or(0),
                    "sessionRequireClientSASLAuth".to_string(),
                    "true".to_string(),
                ),
                (_, Some((s, l))) => (*l, "enforce.auth.schemes".to_string(), s.clone()),
                (Some((_, l)), None) => (*l, "enforce.auth.enabled".to_string(), "true".into()),
                (None, None) => (0, "enforce.auth.enabled".to_string(), "true".into()),
            };
            if self.cfg.enforce_auth_schemes.is_empty() {
                return Err(LateBad {
                    key: "enforce.auth.schemes".into(),
                    value: String::new(),
                    line,
                    reason: "enforce.auth.enabled is true: enforce.auth.schemes must be configured"
                        .into(),
                });
            }
            for s in &self.cfg.enforce_auth_schemes {
                if !self.cfg.has_provider(s) {
                    let hint = match s.as_str() {
                        "sasl" => " (add authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider)",
                        "x509" => " (add authProvider.1=org.apache.zookeeper.server.auth.X509AuthenticationProvider)",
                        _ => "",
                    };
                    return Err(LateBad {
                        key: key.clone(),
                        value: value.clone(),
                        line,
                        reason: format!("Authentication scheme {s} is not available{hint}"),
                    });
                }
            }
        }
        Ok(self.cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn parse(text: &str) -> Result<(Config, Vec<String>), String> {
        Config::parse(
            &format!("dataDir=/tmp/x\nclientPort=2181\n{text}"),
            "zoo.cfg",
        )
        .map_err(|e| e.to_string())
    }

    const SASL: &str =
        "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n";

    #[test]
    fn providers_by_class_name() {
        let (c, w) = parse(&format!(
            "{SASL}authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider\n\
             zookeeper.authProvider.2=org.apache.zookeeper.server.auth.DigestAuthenticationProvider\n"
        ))
        .unwrap();
        assert!(c.auth.sasl_provider && c.auth.x509_provider, "{w:?}");
        assert!(c.auth.has_provider("digest") && c.auth.has_provider("ip"));
        assert!(w.is_empty(), "{w:?}");
        let (c, _) = parse("").unwrap();
        assert!(!c.auth.has_provider("sasl") && !c.auth.has_provider("x509"));
        let e = parse("authProvider.1=com.example.MyProvider\n").unwrap_err();
        assert!(
            e.contains("zoo.cfg:3") && e.contains("unknown authentication provider class"),
            "{e}"
        );
    }

    #[test]
    fn enforce_auth_needs_available_schemes() {
        let e = parse("enforce.auth.enabled=true\n").unwrap_err();
        assert!(e.contains("enforce.auth.schemes must be configured"), "{e}");
        let e = parse("enforce.auth.enabled=true\nenforce.auth.schemes=sasl\n").unwrap_err();
        assert!(
            e.contains("Authentication scheme sasl is not available"),
            "{e}"
        );
        let e = parse("sessionRequireClientSASLAuth=true\n").unwrap_err();
        assert!(e.contains("sasl is not available"), "{e}");
        let (c, _) = parse(&format!(
            "{SASL}enforce.auth.enabled=true\nenforce.auth.schemes= sasl , digest\n"
        ))
        .unwrap();
        assert!(c.auth.enforce_auth);
        assert_eq!(c.auth.enforce_auth_schemes, vec!["sasl", "digest"]);
        assert!(c.auth.sasl_auth_required());
        // sessionRequireClientSASLAuth wins over enforce.auth.*.
        let (c, _) = parse(&format!(
            "{SASL}zookeeper.sessionRequireClientSASLAuth=true\nenforce.auth.schemes=digest\n"
        ))
        .unwrap();
        assert_eq!(c.auth.enforce_auth_schemes, vec!["sasl"]);
        // Schemes without enabling change nothing.
        let (c, _) = parse("enforce.auth.schemes=digest\n").unwrap();
        assert!(!c.auth.enforce_auth && !c.auth.sasl_auth_required());
        let (c, _) = parse("enforce.auth.enabled=true\nenforce.auth.schemes=digest\n").unwrap();
        assert!(c.auth.enforce_auth && !c.auth.sasl_auth_required());
    }

    #[test]
    fn both_spellings_and_values() {
        let (c, _) = parse(
            "zookeeper.superUser=bob\nsuperUser.2=carol\nzookeeper.allowSaslFailedClients=true\n\
             kerberos.removeHostFromPrincipal=true\nzookeeper.kerberos.removeRealmFromPrincipal=true\n\
             X509AuthenticationProvider.superUser=CN=admin\nzookeeper.sasl.serverconfig=ZkServer\n\
             java.security.auth.login.config=/etc/zk/jaas.conf\n",
        )
        .unwrap();
        let a = &c.auth;
        assert_eq!(a.super_users, vec!["bob", "carol"]);
        assert!(a.allow_sasl_failed_clients && a.names.remove_host && a.names.remove_realm);
        assert_eq!(a.x509_super_user.as_deref(), Some("CN=admin"));
        assert_eq!(a.login_context, "ZkServer");
        assert_eq!(a.login_config, Some(PathBuf::from("/etc/zk/jaas.conf")));
        let e = parse("kerberos.removeHostFromPrincipal=TRUE\n").unwrap_err();
        assert!(e.contains("exactly"), "{e}");
        let e = parse("security.auth_to_local=RULE:[1:$1]\n").unwrap_err();
        assert!(e.contains("DEFAULT"), "{e}");
        let (c, _) = parse("").unwrap();
        assert_eq!(c.auth.login_context, "Server");
    }

    fn reader(
        files: &'static [(&'static str, &'static str)],
    ) -> impl Fn(&std::path::Path) -> std::io::Result<String> {
        move |p| {
            files
                .iter()
                .find(|(n, _)| std::path::Path::new(n) == p)
                .map(|(_, t)| t.to_string())
                .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
        }
    }

    #[test]
    fn jaas_file_gives_the_users() {
        let (mut c, _) = parse("java.security.auth.login.config=/j.conf\n").unwrap();
        let mut w = Vec::new();
        c.auth
            .load_login_config(
                &reader(&[(
                    "/j.conf",
                    "Server { org.apache.zookeeper.server.auth.DigestLoginModule required user_bob=\"pw\" user_super=\"s\" debug=\"true\"; };",
                )]),
                &mut w,
            )
            .unwrap();
        let s = c.auth.sasl.as_ref().unwrap();
        assert_eq!(s.password("bob"), Some("pw"));
        assert_eq!(s.password("super"), Some("s"));
        assert_eq!(s.users.len(), 2);
        assert!(w.is_empty(), "{w:?}");
        // The Debug form never shows passwords.
        assert!(!format!("{s:?}").contains("pw"));
    }

    #[test]
    fn jaas_problems_are_clear() {
        let (mut c, _) = parse("java.security.auth.login.config=/missing.conf\n").unwrap();
        let e = c
            .auth
            .load_login_config(&reader(&[]), &mut Vec::new())
            .unwrap_err();
        assert!(e.contains("cannot read /missing.conf"), "{e}");

        let (mut c, _) = parse("java.security.auth.login.config=/bad.conf\n").unwrap();
        let e = c
            .auth
            .load_login_config(
                &reader(&[("/bad.conf", "Server {\n x.Y required\n};")]),
                &mut Vec::new(),
            )
            .unwrap_err();
        assert!(e.starts_with("/bad.conf:3:"), "{e}");

        let (mut c, _) = parse("java.security.auth.login.config=/k.conf\n").unwrap();
        let e = c
            .auth
            .load_login_config(
                &reader(&[(
                    "/k.conf",
                    "Server {\n com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true;\n};",
                )]),
                &mut Vec::new(),
            )
            .unwrap_err();
        assert!(e.contains("/k.conf:2") && e.contains("GSSAPI"), "{e}");

        // No Server section: SASL stays off, with a warning (ZooKeeper starts too).
        let (mut c, _) = parse("java.security.auth.login.config=/c.conf\n").unwrap();
        let mut w = Vec::new();
        c.auth
            .load_login_config(
                &reader(&[("/c.conf", "Client { a.B required username=\"u\"; };")]),
                &mut w,
            )
            .unwrap();
        assert!(c.auth.sasl.is_none());
        assert!(w[0].contains("no JAAS section named 'Server'"), "{w:?}");
    }

    #[test]
    fn krb5_default_realm_is_read() {
        assert_eq!(
            krb5_default_realm(
                "[logging]\n default_realm = NO\n[libdefaults]\n  default_realm = EXAMPLE.COM\n"
            )
            .as_deref(),
            Some("EXAMPLE.COM")
        );
        assert_eq!(krb5_default_realm("[realms]\n"), None);
    }
}
