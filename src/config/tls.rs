//! The TLS keys of zoo.cfg, as ZooKeeper 3.8 reads them (`X509Util`, `ClientX509Util`,
//! `QuorumX509Util`, `NettyServerCnxnFactory`, `QuorumPeerConfig`): where the secure
//! client port listens, which stores hold the key and the trusted certificates, and
//! what a handshake may negotiate. This module only parses and checks the settings;
//! `crate::tls` loads the stores and builds the rustls configurations at start, so a
//! store that cannot be read stops the server with the file's name and the reason.
//!
//! ZooKeeper takes most of these as Java system properties (`zookeeper.ssl.*`); a
//! zoo.cfg key `k` becomes the property `zookeeper.k`. So both spellings arrive here
//! folded to the short one (`ssl.keyStore.location`), by `canonical`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

/// `ssl.clientAuth`: whether the server asks a client for its certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// No certificate is asked for.
    None,
    /// Asked for; a client without one is let in (with no x509 id).
    Want,
    /// Required, ZooKeeper's default: a client without a trusted certificate fails the
    /// handshake.
    #[default]
    Need,
}

/// The format of a key or trust store (`ssl.keyStore.type`, or the file's extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreType {
    Pem,
    Pkcs12,
    Jks,
}

impl StoreType {
    /// `KeyStoreFileType.fromPropertyValue`: the names ZooKeeper accepts, any case.
    fn from_property(v: &str) -> Result<StoreType, String> {
        match v.to_ascii_uppercase().as_str() {
            "PEM" => Ok(StoreType::Pem),
            "PKCS12" => Ok(StoreType::Pkcs12),
            "JKS" => Ok(StoreType::Jks),
            "BCFKS" => Err("BCFKS stores (Bouncy Castle FIPS) are not supported by corral; convert the store to PKCS12 or PEM".into()),
            _ => Err(format!("unknown store type {v:?} (PEM, PKCS12 or JKS)")),
        }
    }

    /// `KeyStoreFileType.fromFilename`: `.pem`, `.p12`/`.pfx`, `.jks`.
    fn from_file_name(path: &std::path::Path) -> Option<StoreType> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "pem" | "crt" => Some(StoreType::Pem),
            "p12" | "pfx" => Some(StoreType::Pkcs12),
            "jks" => Some(StoreType::Jks),
            _ => None,
        }
    }
}

/// `ssl.clientCertIdType=SAN` and its `ssl.clientCertIdSan*` keys (ZooKeeper's
/// `ClientX509Util.getClientId`): the x509 id is cut from the one subjectAltName entry
/// of `match_type` that `match_regex` finds, by `extract_regex`'s group
/// `extract_group`. `None` (`SDN`, the default): the subject DN.
#[derive(Debug, Clone)]
pub struct SanClientId {
    /// The GeneralName tag: 1 rfc822Name, 2 dNSName, 4 directoryName, 6 URI,
    /// 7 iPAddress, 8 registeredID (0, 3, 5 have no text form; Java fails on them).
    pub match_type: u8,
    pub match_regex: regex::Regex,
    pub extract_regex: regex::Regex,
    pub extract_group: usize,
}

impl PartialEq for SanClientId {
    fn eq(&self, o: &Self) -> bool {
        self.match_type == o.match_type
            && self.match_regex.as_str() == o.match_regex.as_str()
            && self.extract_regex.as_str() == o.extract_regex.as_str()
            && self.extract_group == o.extract_group
    }
}

impl Eq for SanClientId {}

/// A key store or trust store as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSpec {
    pub location: PathBuf,
    /// `*.password`, or the content of `*.passwordPath` (trailing newline dropped).
    pub password: Option<String>,
    pub store_type: StoreType,
}

/// One `X509Util`'s settings: `ssl.*` for clients, `ssl.quorum.*` between servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct X509Settings {
    pub key_store: Option<StoreSpec>,
    pub trust_store: Option<StoreSpec>,
    /// `ssl.protocol` (default TLSv1.3, as ZooKeeper 3.9 on a JDK that has it).
    pub protocol: String,
    /// `ssl.enabledProtocols`; by default `protocol`, plus TLSv1.2 when that is
    /// TLSv1.3 (ZooKeeper 3.9's default, which 3.8 clients speaking TLSv1.2 reach).
    pub enabled_protocols: Vec<String>,
    /// `ssl.ciphersuites` (Java/IANA names); empty = rustls's defaults.
    pub cipher_suites: Vec<String>,
    pub client_auth: ClientAuth,
    /// `ssl.hostnameVerification` (default true).
    pub hostname_verification: bool,
    /// `ssl.clientHostnameVerification`: the server checks a client certificate
    /// against the client's address. As in ZooKeeper (`ClientX509Util` never does,
    /// `QuorumX509Util` does with `hostnameVerification`): off by default on the client
    /// port, `hostnameVerification` between servers.
    pub client_hostname_verification: bool,
    /// `ssl.handshakeDetectionTimeoutMillis` (default 5000): how long a connection on
    /// a unified port has to send its first byte.
    pub handshake_detection_timeout_ms: u64,
    /// `ssl.clientCertIdType=SAN` (client port only).
    pub san_client_id: Option<SanClientId>,
}

impl Default for X509Settings {
    fn default() -> Self {
        X509Settings {
            key_store: None,
            trust_store: None,
            protocol: "TLSv1.3".into(),
            enabled_protocols: vec!["TLSv1.3".into(), "TLSv1.2".into()],
            cipher_suites: Vec::new(),
            client_auth: ClientAuth::Need,
            hostname_verification: true,
            client_hostname_verification: true,
            handshake_detection_timeout_ms: 5000,
            san_client_id: None,
        }
    }
}

/// Everything TLS in zoo.cfg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// `secureClientPortAddress` and `secureClientPort`: where TLS clients connect.
    pub secure_client_address: Option<SocketAddr>,
    /// `client.portUnification` / `zookeeper.client.portUnification`: the plain client
    /// port also accepts TLS (told apart by the first byte).
    pub client_port_unification: bool,
    /// `ssl.*`.
    pub client: X509Settings,
    /// `sslQuorum`: servers talk TLS to each other on the quorum and election ports.
    pub ssl_quorum: bool,
    /// `portUnification`: the quorum and election ports accept plain and TLS peers
    /// (for rolling a plain ensemble to TLS).
    pub port_unification: bool,
    /// `ssl.quorum.*`.
    pub quorum: X509Settings,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            secure_client_address: None,
            client_port_unification: false,
            // ClientX509Util never checks client host names; QuorumX509Util does.
            client: X509Settings {
                client_hostname_verification: false,
                ..X509Settings::default()
            },
            ssl_quorum: false,
            port_unification: false,
            quorum: X509Settings::default(),
        }
    }
}

impl TlsConfig {
    /// Whether any listener needs the client-side stores loaded.
    pub fn client_tls_enabled(&self) -> bool {
        self.secure_client_address.is_some() || self.client_port_unification
    }

    /// Whether the quorum links need the quorum stores loaded.
    pub fn quorum_tls_enabled(&self) -> bool {
        self.ssl_quorum || self.port_unification
    }
}

/// The short spelling of a TLS key, or `None` when `key` is not one of them.
pub fn canonical(key: &str) -> Option<&str> {
    let k = key.strip_prefix("zookeeper.").unwrap_or(key);
    let known = k.starts_with("ssl.")
        || matches!(
            k,
            "secureClientPort"
                | "secureClientPortAddress"
                | "client.portUnification"
                | "serverCnxnFactory"
                | "sslQuorum"
                | "portUnification"
                | "sslQuorumReloadCertFiles"
                | "client.certReload"
        );
    known.then_some(k)
}

/// The TLS keys seen while parsing, turned into a [`TlsConfig`] by [`TlsKeys::finish`].
#[derive(Default)]
pub(crate) struct TlsKeys {
    values: Vec<(String, String, usize)>,
}

/// A TLS key whose value cannot be used.
#[derive(Debug)]
pub(crate) struct BadTls {
    pub key: String,
    pub value: String,
    pub line: usize,
    pub reason: String,
}

impl TlsKeys {
    /// Records `key` (already canonical) = `value` from `line`.
    pub fn set(&mut self, key: &str, value: &str, line: usize) {
        self.values.retain(|(k, _, _)| k != key);
        self.values.push((key.to_string(), value.to_string(), line));
    }

    fn get(&self, key: &str) -> Option<(&str, usize)> {
        self.values
            .iter()
            .find(|(k, _, _)| k == key)
            .map(|(_, v, l)| (v.as_str(), *l))
    }

    /// Builds the configuration. `client_host` is `clientPortAddress`'s host, the
    /// secure port's default host as in ZooKeeper. Warnings go to `warnings`.
    pub fn finish(
        &self,
        client_host: Option<IpAddr>,
        file: &str,
        warnings: &mut Vec<String>,
    ) -> Result<TlsConfig, BadTls> {
        let bad = |key: &str, reason: String| {
            let (value, line) = self.get(key).unwrap_or(("", 0));
            BadTls {
                key: key.to_string(),
                value: value.to_string(),
                line,
                reason,
            }
        };
        let boolean = |key: &str, default: bool| -> Result<bool, BadTls> {
            match self.get(key) {
                None => Ok(default),
                // Java's Boolean.parseBoolean: "true" in any case, anything else false.
                Some((v, _)) => Ok(v.trim().eq_ignore_ascii_case("true")),
            }
        };
        let mut c = TlsConfig::default();
        if let Some((v, _)) = self.get("secureClientPort") {
            let port: u16 = v
                .trim()
                .parse()
                .map_err(|_| bad("secureClientPort", "not a port number".into()))?;
            let ip = match self.get("secureClientPortAddress") {
                Some((h, _)) => h.trim().parse::<IpAddr>().map_err(|_| {
                    bad(
                        "secureClientPortAddress",
                        "not an IP address (corral does not resolve host names here)".into(),
                    )
                })?,
                None => client_host.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            };
            c.secure_client_address = Some(SocketAddr::new(ip, port));
        } else if let Some((_, line)) = self.get("secureClientPortAddress") {
            warnings.push(format!(
                "{file}:{line}: secureClientPortAddress is set but secureClientPort is not; ignored"
            ));
        }
        c.client_port_unification = boolean("client.portUnification", false)?;
        c.ssl_quorum = boolean("sslQuorum", false)?;
        c.port_unification = boolean("portUnification", false)?;
        if let Some((v, line)) = self.get("serverCnxnFactory") {
            // corral has one connection factory; ZooKeeper needs Netty's for TLS.
            let v = v.trim();
            if v != "org.apache.zookeeper.server.NettyServerCnxnFactory"
                && v != "org.apache.zookeeper.server.NIOServerCnxnFactory"
            {
                warnings.push(format!(
                    "{file}:{line}: serverCnxnFactory {v} is not one of ZooKeeper's; corral uses its own either way"
                ));
            }
        }
        for key in ["sslQuorumReloadCertFiles", "client.certReload"] {
            if let Some((v, line)) = self.get(key) {
                if v.trim().eq_ignore_ascii_case("true") {
                    warnings.push(format!(
                        "{file}:{line}: {key}: corral loads the stores at start only; restart it to pick up new certificates"
                    ));
                }
            }
        }
        c.client = self.x509("ssl.", &bad, file, warnings)?;
        c.quorum = self.x509("ssl.quorum.", &bad, file, warnings)?;
        if c.client_tls_enabled() && c.client.key_store.is_none() {
            let key = if c.secure_client_address.is_some() {
                "secureClientPort"
            } else {
                "client.portUnification"
            };
            return Err(bad(
                key,
                "TLS for clients needs ssl.keyStore.location (the server's key and certificate)"
                    .into(),
            ));
        }
        if c.quorum_tls_enabled() && c.quorum.key_store.is_none() {
            let key = if c.ssl_quorum {
                "sslQuorum"
            } else {
                "portUnification"
            };
            return Err(bad(
                key,
                "TLS between servers needs ssl.quorum.keyStore.location".into(),
            ));
        }
        if c.quorum_tls_enabled() && c.quorum.trust_store.is_none() {
            let key = if c.ssl_quorum {
                "sslQuorum"
            } else {
                "portUnification"
            };
            return Err(bad(
                key,
                "TLS between servers needs ssl.quorum.trustStore.location (to check the other servers' certificates)".into(),
            ));
        }
        Ok(c)
    }

    /// One prefix's settings (`ssl.` or `ssl.quorum.`).
    fn x509(
        &self,
        prefix: &str,
        bad: &dyn Fn(&str, String) -> BadTls,
        file: &str,
        warnings: &mut Vec<String>,
    ) -> Result<X509Settings, BadTls> {
        let key = |name: &str| format!("{prefix}{name}");
        let mut s = X509Settings {
            key_store: self.store(prefix, "keyStore", bad)?,
            trust_store: self.store(prefix, "trustStore", bad)?,
            ..X509Settings::default()
        };
        if let Some((v, _)) = self.get(&key("protocol")) {
            let v = v.trim();
            check_protocol(v).map_err(|r| bad(&key("protocol"), r))?;
            s.protocol = v.to_string();
            s.enabled_protocols = if v == "TLSv1.3" {
                vec!["TLSv1.3".into(), "TLSv1.2".into()]
            } else {
                vec![v.to_string()]
            };
        }
        if let Some((v, _)) = self.get(&key("enabledProtocols")) {
            let list: Vec<String> = split_list(v);
            for p in &list {
                check_protocol(p).map_err(|r| bad(&key("enabledProtocols"), r))?;
            }
            if list.is_empty() {
                return Err(bad(&key("enabledProtocols"), "empty list".into()));
            }
            s.enabled_protocols = list;
        }
        if let Some((v, _)) = self.get(&key("ciphersuites")) {
            s.cipher_suites = split_list(v);
        }
        if let Some((v, _)) = self.get(&key("clientAuth")) {
            s.client_auth = match v.trim().to_ascii_uppercase().as_str() {
                "NONE" => ClientAuth::None,
                "WANT" => ClientAuth::Want,
                "NEED" | "" => ClientAuth::Need,
                _ => return Err(bad(&key("clientAuth"), "must be none, want or need".into())),
            };
        }
        let flag = |name: &str, default: bool| match self.get(&key(name)) {
            None => default,
            Some((v, _)) => v.trim().eq_ignore_ascii_case("true"),
        };
        s.hostname_verification = flag("hostnameVerification", true);
        let quorum = prefix == "ssl.quorum.";
        s.client_hostname_verification = flag(
            "clientHostnameVerification",
            quorum && s.hostname_verification,
        );
        if let Some((v, _)) = self.get(&key("handshakeDetectionTimeoutMillis")) {
            s.handshake_detection_timeout_ms = v
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| {
                    bad(
                        &key("handshakeDetectionTimeoutMillis"),
                        "must be a positive number of milliseconds".into(),
                    )
                })?;
        }
        if let Some((v, _)) = self.get(&key("clientCertIdType")) {
            if v.trim().eq_ignore_ascii_case("SAN") {
                s.san_client_id = Some(self.san_client_id(prefix, bad)?);
            } else if !v.trim().eq_ignore_ascii_case("SDN") {
                return Err(bad(&key("clientCertIdType"), "must be SAN or SDN".into()));
            }
        }
        for (name, what) in [("crl", "certificate revocation lists"), ("ocsp", "OCSP")] {
            if flag(name, false) {
                let line = self.get(&key(name)).map(|e| e.1).unwrap_or(0);
                warnings.push(format!(
                    "{file}:{line}: {}: corral does not check {what}; only the trust store decides",
                    key(name)
                ));
            }
        }
        for name in ["context.supplier.class", "sslProvider"] {
            if let Some((v, line)) = self.get(&key(name)) {
                warnings.push(format!(
                    "{file}:{line}: {}={v}: corral always uses rustls; ignored",
                    key(name)
                ));
            }
        }
        Ok(s)
    }

    /// The `clientCertIdSan*` keys. ZooKeeper only finds them wrong at the first TLS
    /// client (and then falls back to the subject); here a bad value stops the start.
    fn san_client_id(
        &self,
        prefix: &str,
        bad: &dyn Fn(&str, String) -> BadTls,
    ) -> Result<SanClientId, BadTls> {
        let key = |name: &str| format!("{prefix}{name}");
        let need = |name: &str| {
            self.get(&key(name))
                .map(|(v, _)| v.to_string())
                .ok_or_else(|| {
                    bad(
                        &key("clientCertIdType"),
                        format!("SAN needs {} as well", key(name)),
                    )
                })
        };
        let match_type = need("clientCertIdSanMatchType")?
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|t| *t <= 8)
            .ok_or_else(|| {
                bad(
                    &key("clientCertIdSanMatchType"),
                    "must be a GeneralName tag, 0 to 8".into(),
                )
            })?;
        let regex = |name: &str| -> Result<regex::Regex, BadTls> {
            regex::Regex::new(&need(name)?)
                .map_err(|e| bad(&key(name), format!("not a regular expression: {e}")))
        };
        let extract_group = match self.get(&key("clientCertIdSanExtractMatcherGroupIndex")) {
            None => 1,
            Some((v, _)) => v.trim().parse::<usize>().map_err(|_| {
                bad(
                    &key("clientCertIdSanExtractMatcherGroupIndex"),
                    "must be a group number".into(),
                )
            })?,
        };
        Ok(SanClientId {
            match_type,
            match_regex: regex("clientCertIdSanMatchRegex")?,
            extract_regex: regex("clientCertIdSanExtractRegex")?,
            extract_group,
        })
    }

    fn store(
        &self,
        prefix: &str,
        which: &str,
        bad: &dyn Fn(&str, String) -> BadTls,
    ) -> Result<Option<StoreSpec>, BadTls> {
        let loc_key = format!("{prefix}{which}.location");
        let Some((loc, _)) = self.get(&loc_key) else {
            return Ok(None);
        };
        let loc = loc.trim();
        if loc.is_empty() {
            return Ok(None);
        }
        let location = PathBuf::from(loc);
        let type_key = format!("{prefix}{which}.type");
        let store_type = match self.get(&type_key) {
            Some((t, _)) if !t.trim().is_empty() => {
                StoreType::from_property(t.trim()).map_err(|r| bad(&type_key, r))?
            }
            _ => StoreType::from_file_name(&location).ok_or_else(|| {
                bad(
                    &loc_key,
                    format!(
                        "cannot tell the store's format from its name; set {type_key} (PEM, PKCS12 or JKS)"
                    ),
                )
            })?,
        };
        let pw_key = format!("{prefix}{which}.password");
        let pw_path_key = format!("{prefix}{which}.passwordPath");
        let password = match (self.get(&pw_key), self.get(&pw_path_key)) {
            (Some((p, _)), _) => Some(p.to_string()),
            (None, Some((path, _))) => {
                let text = std::fs::read_to_string(path.trim())
                    .map_err(|e| bad(&pw_path_key, format!("cannot read it: {e}")))?;
                Some(text.trim_end_matches(['\r', '\n']).to_string())
            }
            (None, None) => None,
        };
        Ok(Some(StoreSpec {
            location,
            password,
            store_type,
        }))
    }
}

/// The protocol names rustls can speak.
fn check_protocol(p: &str) -> Result<(), String> {
    match p {
        "TLSv1.2" | "TLSv1.3" | "TLS" => Ok(()),
        "TLSv1" | "TLSv1.1" | "SSLv3" => Err(format!(
            "{p} is not offered by corral (rustls speaks TLSv1.2 and TLSv1.3)"
        )),
        _ => Err(format!("unknown protocol {p:?} (TLSv1.2 or TLSv1.3)")),
    }
}

/// A comma-separated list as ZooKeeper splits it (blank entries dropped).
fn split_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(pairs: &[(&str, &str)]) -> TlsKeys {
        let mut k = TlsKeys::default();
        for (i, (key, v)) in pairs.iter().enumerate() {
            k.set(canonical(key).expect("a TLS key"), v, i + 1);
        }
        k
    }

    #[test]
    fn system_property_spelling_folds_to_the_short_one() {
        assert_eq!(
            canonical("zookeeper.ssl.keyStore.location"),
            Some("ssl.keyStore.location")
        );
        assert_eq!(
            canonical("zookeeper.client.portUnification"),
            Some("client.portUnification")
        );
        assert_eq!(canonical("sslQuorum"), Some("sslQuorum"));
        assert_eq!(canonical("tickTime"), None);
    }

    #[test]
    fn defaults_are_zookeepers() {
        let mut w = Vec::new();
        let c = keys(&[
            ("secureClientPort", "2281"),
            ("ssl.keyStore.location", "/k/server.jks"),
            ("ssl.keyStore.password", "secret"),
        ])
        .finish(None, "zoo.cfg", &mut w)
        .unwrap();
        assert_eq!(
            c.secure_client_address,
            Some("0.0.0.0:2281".parse().unwrap())
        );
        assert_eq!(c.client.client_auth, ClientAuth::Need);
        assert!(c.client.hostname_verification);
        let ks = c.client.key_store.unwrap();
        assert_eq!(ks.store_type, StoreType::Jks);
        assert_eq!(ks.password.as_deref(), Some("secret"));
        assert_eq!(c.client.enabled_protocols, ["TLSv1.3", "TLSv1.2"]);
        assert!(w.is_empty(), "{w:?}");
    }

    #[test]
    fn the_secure_port_binds_where_the_client_port_does_unless_told() {
        let mut w = Vec::new();
        let base = [
            ("secureClientPort", "2281"),
            ("ssl.keyStore.location", "/k/s.p12"),
        ];
        let c = keys(&base)
            .finish(Some("127.0.0.1".parse().unwrap()), "f", &mut w)
            .unwrap();
        assert_eq!(
            c.secure_client_address,
            Some("127.0.0.1:2281".parse().unwrap())
        );
        let mut with_addr = base.to_vec();
        with_addr.push(("secureClientPortAddress", "127.0.0.2"));
        let c = keys(&with_addr)
            .finish(Some("127.0.0.1".parse().unwrap()), "f", &mut w)
            .unwrap();
        assert_eq!(
            c.secure_client_address,
            Some("127.0.0.2:2281".parse().unwrap())
        );
        assert_eq!(c.client.key_store.unwrap().store_type, StoreType::Pkcs12);
    }

    #[test]
    fn a_secure_port_without_a_key_store_is_refused() {
        let e = keys(&[("secureClientPort", "2281")])
            .finish(None, "f", &mut Vec::new())
            .unwrap_err();
        assert_eq!(e.key, "secureClientPort");
        assert!(e.reason.contains("ssl.keyStore.location"), "{}", e.reason);
    }

    #[test]
    fn store_types_come_from_the_type_key_or_the_extension() {
        let e = keys(&[
            ("client.portUnification", "true"),
            ("ssl.keyStore.location", "/k/server.keys"),
        ])
        .finish(None, "f", &mut Vec::new())
        .unwrap_err();
        assert_eq!(e.key, "ssl.keyStore.location");
        let c = keys(&[
            ("client.portUnification", "true"),
            ("ssl.keyStore.location", "/k/server.keys"),
            ("ssl.keyStore.type", "pem"),
        ])
        .finish(None, "f", &mut Vec::new())
        .unwrap();
        assert_eq!(c.client.key_store.unwrap().store_type, StoreType::Pem);
        let e = keys(&[
            ("ssl.keyStore.location", "/k/server.bcfks"),
            ("ssl.keyStore.type", "BCFKS"),
        ])
        .finish(None, "f", &mut Vec::new())
        .unwrap_err();
        assert!(e.reason.contains("not supported"), "{}", e.reason);
    }

    #[test]
    fn client_auth_protocols_and_flags() {
        let mut w = Vec::new();
        let c = keys(&[
            ("ssl.clientAuth", "want"),
            ("ssl.protocol", "TLSv1.2"),
            ("ssl.hostnameVerification", "false"),
            (
                "ssl.ciphersuites",
                "TLS_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            ),
            ("ssl.ocsp", "true"),
        ])
        .finish(None, "f", &mut w)
        .unwrap();
        assert_eq!(c.client.client_auth, ClientAuth::Want);
        assert_eq!(c.client.enabled_protocols, ["TLSv1.2"]);
        assert!(!c.client.hostname_verification);
        assert!(!c.client.client_hostname_verification);
        assert!(c.quorum.client_hostname_verification);
        assert_eq!(c.client.cipher_suites.len(), 2);
        assert!(w.iter().any(|m| m.contains("ssl.ocsp")), "{w:?}");
        let e = keys(&[("ssl.enabledProtocols", "TLSv1.1")])
            .finish(None, "f", &mut Vec::new())
            .unwrap_err();
        assert_eq!(e.key, "ssl.enabledProtocols");
        let e = keys(&[("ssl.clientAuth", "maybe")])
            .finish(None, "f", &mut Vec::new())
            .unwrap_err();
        assert_eq!(e.key, "ssl.clientAuth");
    }

    #[test]
    fn a_san_client_id_needs_its_keys_and_valid_regexes() {
        let base = [
            ("ssl.clientCertIdType", "SAN"),
            ("ssl.clientCertIdSanMatchType", "6"),
            ("ssl.clientCertIdSanMatchRegex", "^spiffe://"),
            ("ssl.clientCertIdSanExtractRegex", "^spiffe://[^/]+/(.+)$"),
        ];
        let c = keys(&base).finish(None, "f", &mut Vec::new()).unwrap();
        let san = c.client.san_client_id.unwrap();
        assert_eq!((san.match_type, san.extract_group), (6, 1));
        let e = keys(&base[..3])
            .finish(None, "f", &mut Vec::new())
            .unwrap_err();
        assert!(e.reason.contains("ExtractRegex"), "{}", e.reason);
        let mut broken = base.to_vec();
        broken[2] = ("ssl.clientCertIdSanMatchRegex", "(");
        let e = keys(&broken)
            .finish(None, "f", &mut Vec::new())
            .unwrap_err();
        assert_eq!(e.key, "ssl.clientCertIdSanMatchRegex");
        let e = keys(&[("ssl.clientCertIdType", "CN")])
            .finish(None, "f", &mut Vec::new())
            .unwrap_err();
        assert_eq!(e.key, "ssl.clientCertIdType");
    }

    #[test]
    fn ssl_quorum_needs_both_quorum_stores() {
        let e = keys(&[
            ("sslQuorum", "true"),
            ("ssl.quorum.keyStore.location", "/k/q.jks"),
        ])
        .finish(None, "f", &mut Vec::new())
        .unwrap_err();
        assert!(e.reason.contains("trustStore"), "{}", e.reason);
        let c = keys(&[
            ("sslQuorum", "true"),
            ("ssl.quorum.keyStore.location", "/k/q.jks"),
            ("ssl.quorum.trustStore.location", "/k/t.jks"),
            ("ssl.quorum.hostnameVerification", "false"),
        ])
        .finish(None, "f", &mut Vec::new())
        .unwrap();
        assert!(c.ssl_quorum && c.quorum_tls_enabled() && !c.client_tls_enabled());
        assert!(!c.quorum.hostname_verification);
        assert!(c.client.hostname_verification);
    }
}
