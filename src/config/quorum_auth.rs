//! Quorum SASL as ZooKeeper's `QuorumPeerConfig` reads it (`quorum.auth.*`): whether
//! servers authenticate each other with DIGEST-MD5 on the quorum and election ports,
//! and which JAAS sections hold the credentials (`QuorumServer`: the `user_NAME`
//! table a server checks; `QuorumLearner`: the `username`/`password` it presents).
//! The JAAS file itself is `java.security.auth.login.config` (`config::auth`); its
//! sections are read when the quorum links start.

/// `quorum.auth.*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumAuthConfig {
    /// `quorum.auth.enableSasl`.
    pub enable_sasl: bool,
    /// `quorum.auth.serverRequireSasl`: connections that do not authenticate (or fail
    /// to) are closed; otherwise they are let through.
    pub server_require_sasl: bool,
    /// `quorum.auth.learnerRequireSasl`: this server authenticates when it dials; off,
    /// it does not even try (as ZooKeeper's `SaslQuorumAuthLearner`).
    pub learner_require_sasl: bool,
    /// `quorum.auth.learner.saslLoginContext` (default `QuorumLearner`).
    pub learner_login_context: String,
    /// `quorum.auth.server.saslLoginContext` (default `QuorumServer`).
    pub server_login_context: String,
}

impl Default for QuorumAuthConfig {
    fn default() -> Self {
        QuorumAuthConfig {
            enable_sasl: false,
            server_require_sasl: false,
            learner_require_sasl: false,
            learner_login_context: "QuorumLearner".into(),
            server_login_context: "QuorumServer".into(),
        }
    }
}

/// Whether `key` is one of ours.
pub fn handles(key: &str) -> bool {
    key.starts_with("quorum.auth.") || key == "quorum.cnxn.threads.size"
}

/// Sets one key; `Err` is the reason the value is refused. Warnings for keys that
/// change nothing here go to `warn`.
pub fn set(
    c: &mut QuorumAuthConfig,
    key: &str,
    value: &str,
    warn: &mut dyn FnMut(String),
) -> Result<(), String> {
    let flag = || value.trim().eq_ignore_ascii_case("true");
    match key {
        "quorum.auth.enableSasl" => c.enable_sasl = flag(),
        "quorum.auth.serverRequireSasl" => c.server_require_sasl = flag(),
        "quorum.auth.learnerRequireSasl" => c.learner_require_sasl = flag(),
        "quorum.auth.learner.saslLoginContext" => c.learner_login_context = value.trim().into(),
        "quorum.auth.server.saslLoginContext" => c.server_login_context = value.trim().into(),
        "quorum.auth.kerberos.servicePrincipal" => warn(format!(
            "{key}: corral's quorum SASL is DIGEST-MD5 only (no Kerberos); ignored"
        )),
        "quorum.cnxn.threads.size" => warn(format!(
            "{key}: corral authenticates quorum connections on its own executor; ignored"
        )),
        _ => return Err(format!("unknown quorum SASL key {key}")),
    }
    Ok(())
}

/// `QuorumPeerConfig`'s check: requiring SASL needs it enabled.
pub fn validate(c: &QuorumAuthConfig) -> Result<(), (&'static str, String)> {
    if !c.enable_sasl {
        for (key, on) in [
            ("quorum.auth.serverRequireSasl", c.server_require_sasl),
            ("quorum.auth.learnerRequireSasl", c.learner_require_sasl),
        ] {
            if on {
                return Err((
                    key,
                    format!("quorum.auth.enableSasl is disabled, so cannot enable {key}"),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_the_enable_rule() {
        let mut c = QuorumAuthConfig::default();
        let mut warnings = Vec::new();
        set(&mut c, "quorum.auth.serverRequireSasl", "true", &mut |w| {
            warnings.push(w)
        })
        .unwrap();
        assert_eq!(validate(&c).unwrap_err().0, "quorum.auth.serverRequireSasl");
        set(&mut c, "quorum.auth.enableSasl", "TRUE", &mut |w| {
            warnings.push(w)
        })
        .unwrap();
        set(
            &mut c,
            "quorum.auth.learner.saslLoginContext",
            "L",
            &mut |w| warnings.push(w),
        )
        .unwrap();
        assert!(validate(&c).is_ok());
        assert!(c.enable_sasl && c.server_require_sasl && !c.learner_require_sasl);
        assert_eq!(c.learner_login_context, "L");
        set(
            &mut c,
            "quorum.auth.kerberos.servicePrincipal",
            "zk/h",
            &mut |w| warnings.push(w),
        )
        .unwrap();
        assert_eq!(warnings.len(), 1);
        assert!(handles("quorum.auth.enableSasl") && !handles("quorumListenOnAllIPs"));
    }
}
