//! Java system properties from where ZooKeeper's start scripts put them, so an
//! operator's `java.env` and `SERVER_JVMFLAGS` keep working.
//!
//! `zkServer.sh` runs `java ... $JVMFLAGS QuorumPeerMain zoo.cfg` after
//! `JVMFLAGS="$SERVER_JVMFLAGS $JVMFLAGS"`, and `zkEnv.sh` first sources `java.env`
//! from the configuration directory (beside zoo.cfg). So the `-Dname=value` words of
//! `SERVER_JVMFLAGS` then `JVMFLAGS` are the server's system properties, the later one
//! winning when a name repeats. corral reads them the same way:
//!
//! - [`system_properties`]: the environment's two variables, after applying a
//!   `java.env` that simply assigns them (`[export] SERVER_JVMFLAGS="..."`, possibly
//!   with `$SERVER_JVMFLAGS`/`${JVMFLAGS}` inside; other lines are ignored).
//! - Words are split as the shell splits them, honouring `'...'`, `"..."` and `\`
//!   (so a quoted path with a space stays one word). Words other than `-D...` (heap
//!   sizes, GC flags, `-cp`) are ignored, silently.
//! - [`config_key`]: which zoo.cfg key a property means. ZooKeeper's `QuorumPeerConfig`
//!   turns a zoo.cfg key `k` it does not parse itself into the property
//!   `zookeeper.k`, so `-Dzookeeper.k=v` means zoo.cfg `k=v`; the keys it parses itself
//!   (`dataDir`, `clientPort`, `server.N`, ...) are not read from properties, and
//!   neither are they here. Properties without the prefix keep their names, and only
//!   those ZooKeeper reads are taken (`jute.maxbuffer`, `znode.container.*`,
//!   `java.security.auth.login.config`, ...).
//!
//! zoo.cfg wins over a property (`Config::parse_with_sysprops`): ZooKeeper sets the
//! zoo.cfg keys as properties after the JVM started, over the command line's.
//!
//! Sans-IO: the caller reads the environment and the file.

/// One `-D` property, in command-line order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemProperty {
    pub name: String,
    pub value: String,
    /// Where it came from, for messages (`SERVER_JVMFLAGS`, `JVMFLAGS`).
    pub source: &'static str,
}

/// Splits `s` into words as a POSIX shell does (no expansion): blanks separate words;
/// `'...'` is literal; `"..."` keeps blanks and takes `\` before `"`, `\`, `$` and
/// `` ` `` literally; an unquoted `\` takes the next character literally.
pub fn split_words(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => cur.push(ch),
                        None => return Err("unterminated ' quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e @ ('"' | '\\' | '$' | '`')) => cur.push(e),
                            Some('\n') => {}
                            Some(other) => {
                                cur.push('\\');
                                cur.push(other);
                            }
                            None => return Err("unterminated \" quote".into()),
                        },
                        Some(ch) => cur.push(ch),
                        None => return Err("unterminated \" quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some('\n') | None => {}
                    Some(ch) => cur.push(ch),
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// The `-Dname[=value]` words of `flags`, in order (`-Dname` alone sets "", as Java).
pub fn parse_flags(flags: &str, source: &'static str) -> Result<Vec<SystemProperty>, String> {
    let words = split_words(flags).map_err(|e| format!("{source}: {e}"))?;
    Ok(words
        .iter()
        .filter_map(|w| w.strip_prefix("-D"))
        .filter(|nv| !nv.is_empty())
        .map(|nv| {
            let (name, value) = nv.split_once('=').unwrap_or((nv, ""));
            SystemProperty {
                name: name.to_string(),
                value: value.to_string(),
                source,
            }
        })
        .collect())
}

/// Applies a `java.env` to the two variables: lines `[export] NAME=value` for
/// `SERVER_JVMFLAGS` and `JVMFLAGS`, the value a shell word in which `$NAME` and
/// `${NAME}` of those two variables are expanded. Other lines (comments, other
/// variables, shell logic) are ignored; ZooKeeper's shell would run them.
pub fn apply_java_env(
    text: &str,
    server_jvmflags: &mut String,
    jvmflags: &mut String,
) -> Result<(), String> {
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let line = line.strip_prefix("export ").map(str::trim).unwrap_or(line);
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        if name != "SERVER_JVMFLAGS" && name != "JVMFLAGS" {
            continue;
        }
        let expanded = expand(value, server_jvmflags, jvmflags);
        let words = split_words(&expanded).map_err(|e| format!("java.env:{}: {e}", n + 1))?;
        // An assignment's value is one word; blanks inside come from quotes.
        let v = words.join(" ");
        if name == "SERVER_JVMFLAGS" {
            *server_jvmflags = v;
        } else {
            *jvmflags = v;
        }
    }
    Ok(())
}

/// `$SERVER_JVMFLAGS`, `${SERVER_JVMFLAGS}`, `$JVMFLAGS`, `${JVMFLAGS}` outside single
/// quotes.
fn expand(value: &str, server: &str, jvm: &str) -> String {
    let mut out = String::new();
    let mut in_single = false;
    let mut rest = value;
    while let Some(c) = rest.chars().next() {
        if c == '\'' {
            in_single = !in_single;
        }
        if c == '$' && !in_single {
            let candidates = [
                ("${SERVER_JVMFLAGS}", server),
                ("$SERVER_JVMFLAGS", server),
                ("${JVMFLAGS}", jvm),
                ("$JVMFLAGS", jvm),
            ];
            if let Some((pat, v)) = candidates.iter().find(|(p, _)| rest.starts_with(p)) {
                out.push_str(v);
                rest = &rest[pat.len()..];
                continue;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// The server's system properties: `SERVER_JVMFLAGS` then `JVMFLAGS` (after
/// `java_env`, when given), in command-line order.
pub fn system_properties(
    server_jvmflags: Option<&str>,
    jvmflags: Option<&str>,
    java_env: Option<&str>,
) -> Result<Vec<SystemProperty>, String> {
    let mut server = server_jvmflags.unwrap_or("").to_string();
    let mut jvm = jvmflags.unwrap_or("").to_string();
    if let Some(text) = java_env {
        apply_java_env(text, &mut server, &mut jvm)?;
    }
    let mut props = parse_flags(&server, "SERVER_JVMFLAGS")?;
    props.extend(parse_flags(&jvm, "JVMFLAGS")?);
    Ok(props)
}

/// Keys `QuorumPeerConfig` parses itself: never read from system properties.
const QUORUM_PEER_CONFIG_KEYS: &[&str] = &[
    "dataDir",
    "dataLogDir",
    "clientPort",
    "localSessionsEnabled",
    "localSessionsUpgradingEnabled",
    "clientPortAddress",
    "secureClientPort",
    "secureClientPortAddress",
    "observerMasterPort",
    "clientPortListenBacklog",
    "tickTime",
    "maxClientCnxns",
    "minSessionTimeout",
    "maxSessionTimeout",
    "initLimit",
    "syncLimit",
    "connectToLearnerMasterLimit",
    "electionAlg",
    "quorumListenOnAllIPs",
    "peerType",
    "syncEnabled",
    "dynamicConfigFile",
    "autopurge.snapRetainCount",
    "autopurge.purgeInterval",
    "standaloneEnabled",
    "reconfigEnabled",
    "sslQuorum",
    "portUnification",
    "sslQuorumReloadCertFiles",
    "quorum.cnxn.threads.size",
    "multiAddress.enabled",
    "multiAddress.reachabilityCheckTimeoutMs",
    "multiAddress.reachabilityCheckEnabled",
    "oraclePath",
    "version",
];

/// Properties ZooKeeper reads under their own names (no `zookeeper.` prefix) that
/// corral knows.
const PLAIN_PROPERTIES: &[&str] = &[
    "jute.maxbuffer",
    "znode.container.checkIntervalMs",
    "znode.container.maxPerMinute",
    "znode.container.maxNeverUsedIntervalMs",
    "java.security.auth.login.config",
    "java.security.krb5.realm",
    "java.security.krb5.conf",
];

/// The zoo.cfg key a system property stands for, or None when ZooKeeper would not
/// read it from there (or corral has no use for it).
pub fn config_key(name: &str) -> Option<String> {
    if let Some(k) = name.strip_prefix("zookeeper.") {
        let native = QUORUM_PEER_CONFIG_KEYS.contains(&k)
            || k.starts_with("server.")
            || k.starts_with("group.")
            || k.starts_with("weight.")
            || k.starts_with("metricsProvider.")
            || k.starts_with("quorum.auth.");
        return (!native && !k.is_empty()).then(|| k.to_string());
    }
    PLAIN_PROPERTIES.contains(&name).then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_like_the_shell() {
        assert_eq!(
            split_words("  -Xmx1g   -Da=b\t-Dc='x y' -Dd=\"p q\\\"r\" e\\ f ").unwrap(),
            vec!["-Xmx1g", "-Da=b", "-Dc=x y", "-Dd=p q\"r", "e f"]
        );
        assert_eq!(split_words("a''b \"\"").unwrap(), vec!["ab", ""]);
        assert!(split_words("-Da='open").is_err());
        assert!(split_words("-Da=\"open").is_err());
    }

    #[test]
    fn only_d_flags_are_properties() {
        let p = parse_flags(
            "-Xmx512m -XX:+UseG1GC -cp x.jar -Dzookeeper.snapCount=5 -Dflag -D -Dk=a=b",
            "JVMFLAGS",
        )
        .unwrap();
        let got: Vec<(&str, &str)> = p
            .iter()
            .map(|p| (p.name.as_str(), p.value.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![("zookeeper.snapCount", "5"), ("flag", ""), ("k", "a=b")]
        );
    }

    #[test]
    fn server_flags_come_first_so_jvmflags_win() {
        let p = system_properties(Some("-Da=1 -Db=2"), Some("-Da=3"), None).unwrap();
        let a: Vec<&str> = p
            .iter()
            .filter(|p| p.name == "a")
            .map(|p| p.value.as_str())
            .collect();
        assert_eq!(a, vec!["1", "3"]);
        assert_eq!(p[0].source, "SERVER_JVMFLAGS");
        assert_eq!(p[2].source, "JVMFLAGS");
    }

    #[test]
    fn java_env_assignments_apply() {
        let env = "# ZooKeeper's java.env\n\
                   export SERVER_JVMFLAGS=\"$SERVER_JVMFLAGS -Djava.security.auth.login.config=/etc/zk/jaas.conf\"\n\
                   JVMFLAGS='-Dzookeeper.superUser=bob'\n\
                   JAVA_OPTS=\"-Xmx1g\"\n\
                   if [ -n \"$X\" ]; then :; fi\n";
        let p = system_properties(
            Some("-Dzookeeper.authProvider.1=x"),
            Some("-Dold=1"),
            Some(env),
        )
        .unwrap();
        let got: Vec<(&str, &str)> = p
            .iter()
            .map(|p| (p.name.as_str(), p.value.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("zookeeper.authProvider.1", "x"),
                ("java.security.auth.login.config", "/etc/zk/jaas.conf"),
                ("zookeeper.superUser", "bob"),
            ]
        );
        assert!(system_properties(None, None, Some("JVMFLAGS=\"-Da")).is_err());
    }

    #[test]
    fn property_names_map_to_zoo_cfg_keys() {
        assert_eq!(
            config_key("zookeeper.ssl.keyStore.location").as_deref(),
            Some("ssl.keyStore.location")
        );
        assert_eq!(
            config_key("zookeeper.authProvider.1").as_deref(),
            Some("authProvider.1")
        );
        assert_eq!(
            config_key("zookeeper.sessionRequireClientSASLAuth").as_deref(),
            Some("sessionRequireClientSASLAuth")
        );
        assert_eq!(
            config_key("java.security.auth.login.config").as_deref(),
            Some("java.security.auth.login.config")
        );
        assert_eq!(
            config_key("jute.maxbuffer").as_deref(),
            Some("jute.maxbuffer")
        );
        // QuorumPeerConfig's own keys are not properties; JVM and logging ones unknown.
        for ignored in [
            "zookeeper.dataDir",
            "zookeeper.clientPort",
            "zookeeper.server.1",
            "zookeeper.quorum.auth.enableSasl",
            "dataDir",
            "log4j.configuration",
            "com.sun.management.jmxremote",
            "zookeeper.",
        ] {
            assert_eq!(config_key(ignored), None, "{ignored}");
        }
    }
}

#[cfg(test)]
mod config_tests {
    use super::*;
    use crate::config::{Config, ConfigError};

    fn props(flags: &str) -> Vec<SystemProperty> {
        system_properties(Some(flags), None, None).unwrap()
    }

    const BASE: &str = "dataDir=/tmp/x\nclientPort=2181\n";

    #[test]
    fn properties_are_config_entries_under_the_file() {
        let p = props(
            "-Xmx1g -Dzookeeper.snapCount=5000 -Dzookeeper.authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider \
             -Djava.security.auth.login.config=/etc/zk/jaas.conf -Dzookeeper.superUser=bob \
             -Dzookeeper.log.dir=/var/log/zk -Dlog4j.configuration=file:x -Dzookeeper.clientPort=1 \
             -Dcom.sun.management.jmxremote",
        );
        let (c, w) = Config::parse_with_sysprops(BASE, "zoo.cfg", None, &p).unwrap();
        assert_eq!(c.snap_count, 5000);
        assert!(c.auth.sasl_provider);
        assert_eq!(
            c.auth.login_config.as_deref(),
            Some(std::path::Path::new("/etc/zk/jaas.conf"))
        );
        assert_eq!(c.auth.super_users, vec!["bob"]);
        // QuorumPeerConfig's own keys are not taken from properties.
        assert_eq!(c.client_port_address.port(), 2181);
        // JVM and logging properties: no warning flood.
        assert!(w.is_empty(), "{w:?}");

        // zoo.cfg wins over a property, whatever the spelling.
        let (c, w) = Config::parse_with_sysprops(
            &format!("{BASE}snapCount=7000\nzookeeper.superUser=carol\n"),
            "zoo.cfg",
            None,
            &props("-Dzookeeper.snapCount=5000 -Dzookeeper.superUser=bob"),
        )
        .unwrap();
        assert_eq!(c.snap_count, 7000);
        assert_eq!(c.auth.super_users, vec!["carol"]);
        assert!(w.is_empty(), "{w:?}");
    }

    #[test]
    fn tls_properties_reach_the_tls_keys() {
        // -Dzookeeper.ssl.* means zoo.cfg ssl.*, parsed by config::tls.
        let (c, w) = Config::parse_with_sysprops(
            BASE,
            "zoo.cfg",
            None,
            &props("-Dzookeeper.ssl.clientAuth=want"),
        )
        .unwrap();
        assert_eq!(
            c.tls.client.client_auth,
            crate::config::tls::ClientAuth::Want
        );
        assert!(w.is_empty(), "{w:?}");
    }

    #[test]
    fn a_bad_property_is_named_with_its_variable() {
        let e = Config::parse_with_sysprops(
            BASE,
            "zoo.cfg",
            None,
            &props("-Dzookeeper.snapCount=lots"),
        )
        .unwrap_err();
        assert!(matches!(e, ConfigError::SysProp { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(
            msg.contains("zookeeper.snapCount") && msg.contains("SERVER_JVMFLAGS"),
            "{msg}"
        );
    }
}
