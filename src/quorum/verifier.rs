//! The ensemble's membership: ZooKeeper's `QuorumPeer.QuorumServer` (one `server.N`
//! line) and `QuorumMaj` (majority quorums over the participants), as plain data.
//!
//! This module owns two things that must match ZooKeeper 3.8 exactly because they
//! cross the wire or come from the same zoo.cfg a ZooKeeper server reads:
//! - how a `server.N` value is parsed (`QuorumServer.initializeWithAddressString` and
//!   `ConfigUtils.getHostAndPort`), and
//! - the config string (`QuorumMaj.toString`) that FLE notifications and NEWLEADER
//!   carry (§1.4 of the protocol notes), and its parser (the `server.*`/`version` subset
//!   of `QuorumPeerConfig.parseDynamicConfig`).
//!
//! Host names are kept as written and never resolved here: resolution (and retrying it
//! when DNS changes) is the runtime's job, and keeping the text lets a config string
//! round-trip. One consequence: ZooKeeper prints an IPv6 literal the way Java formats
//! it (`[::1]` comes back as `[0:0:0:0:0:0:0:1]`); corral prints it as written. Peers
//! compare configs with `QuorumMaj.equals` (same version, or same resolved addresses),
//! never as text, so the spelling does not matter on the wire.
//!
//! Not supported, and refused rather than ignored because ignoring them would change
//! who counts toward a quorum: several `|`-separated addresses per server
//! (multiAddress) and hierarchical quorums (`group.*`/`weight.*`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use super::{LearnerType, Sid};

/// A `server.N` line or config string that cannot be used. `key` is the property
/// (`server.3`, `version`, ...), `reason` says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct QuorumConfigError {
    pub key: String,
    pub reason: String,
}

impl QuorumConfigError {
    fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        QuorumConfigError {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// The shape ZooKeeper's `wrongFormat` message describes, in corral's words.
const SERVER_FORMAT: &str =
    "expected host:quorumPort:electionPort[:participant|observer][;[clientHost:]clientPort]";

/// One member of the ensemble: the value of its `server.N` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumServer {
    /// The `N` of `server.N`.
    pub id: Sid,
    /// Where learners connect to the leader (host as written, IPv6 without brackets).
    pub quorum_addr: (String, u16),
    /// Where leader election connects (same host as `quorum_addr` in a server line).
    pub election_addr: (String, u16),
    pub learner_type: LearnerType,
    /// The client address from the line's `;[clientHost:]clientPort` part, only when
    /// the line has one (ZooKeeper's `isClientAddrFromStatic` case prints none). A bare
    /// port means every address: host `0.0.0.0`, as ZooKeeper.
    pub client_addr: Option<(String, u16)>,
}

/// Java's `String.split` with limit 0: trailing empty strings are dropped (so
/// `a:1:2:` reads like `a:1:2`, a leniency ZooKeeper inherits), leading ones are kept.
fn java_split(s: &str, sep: char) -> Vec<&str> {
    if s.is_empty() {
        return vec![""];
    }
    let mut parts: Vec<&str> = s.split(sep).collect();
    while parts.last().is_some_and(|p| p.is_empty()) {
        parts.pop();
    }
    parts
}

/// `ConfigUtils.getHostAndPort`: `host:rest...` split on `:`, or `[v6]:rest...` with
/// the brackets removed from the host.
fn host_and_port(s: &str) -> Result<Vec<&str>, String> {
    let Some(inner) = s.strip_prefix('[') else {
        return Ok(java_split(s, ':'));
    };
    let Some(close) = inner.find(']') else {
        return Err(format!("{s:?} starts with '[' but has no matching ']'"));
    };
    let host = &inner[..close];
    let after = &inner[close + 1..];
    if after.is_empty() {
        return Ok(vec![host]);
    }
    // ZooKeeper skips the character after ']' unseen; a typo there is refused here.
    let Some(ports) = after.strip_prefix(':') else {
        return Err(format!("{s:?}: expected ':' after ']'"));
    };
    if ports.is_empty() {
        return Err(format!("{s:?} has no port after the colon"));
    }
    let mut parts = vec![host];
    parts.extend(java_split(ports, ':'));
    Ok(parts)
}

/// `Integer.parseInt` then `InetSocketAddress`'s range check.
fn parse_port(s: &str, what: &str) -> Result<u16, String> {
    let n: i64 = s
        .parse::<i32>()
        .map_err(|_| format!("{what} port {s:?} is not a number"))?
        .into();
    u16::try_from(n).map_err(|_| format!("{what} port {n} is out of range 0-65535"))
}

fn learner_type_name(t: LearnerType) -> &'static str {
    match t {
        LearnerType::Participant => "participant",
        LearnerType::Observer => "observer",
    }
}

/// `delimitedHostString`: IPv6 literals get their brackets back.
fn delimited(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

impl QuorumServer {
    /// Parses the value of `server.<sid>` as ZooKeeper 3.8 does (without multiAddress).
    pub fn parse(sid: Sid, value: &str) -> Result<QuorumServer, QuorumConfigError> {
        let err = |reason: String| QuorumConfigError::new(format!("server.{sid}"), reason);
        let server_client = java_split(value, ';');
        if server_client.is_empty() || server_client.len() > 2 {
            return Err(err(SERVER_FORMAT.into()));
        }
        let server_part = server_client[0];
        if server_part.contains('|') {
            return Err(err(
                "several addresses separated by '|' need multiAddress.enabled, which corral does not support"
                    .into(),
            ));
        }

        let client_addr = match server_client.get(1) {
            None => None,
            Some(client) => {
                let parts = host_and_port(client).map_err(err)?;
                if parts.is_empty() || parts.len() > 2 {
                    return Err(err(SERVER_FORMAT.into()));
                }
                let host = if parts.len() == 2 {
                    parts[0]
                } else {
                    "0.0.0.0"
                };
                if host.is_empty() {
                    return Err(err("empty client host before ':'".into()));
                }
                let port = parse_port(parts[parts.len() - 1], "client").map_err(err)?;
                Some((host.to_string(), port))
            }
        };

        let parts = host_and_port(server_part).map_err(err)?;
        if parts.len() < 3 || parts.len() > 4 {
            return Err(err(SERVER_FORMAT.into()));
        }
        let host = parts[0];
        if host.is_empty() {
            // Java resolves "" to the loopback address: certainly not what was meant.
            return Err(err("empty host".into()));
        }
        let quorum_port = parse_port(parts[1], "quorum").map_err(err)?;
        let election_port = parse_port(parts[2], "election").map_err(err)?;
        // ZooKeeper binds port 0 to a free port, which no peer could then find.
        if quorum_port == 0 || election_port == 0 {
            return Err(err(
                "quorum and election ports must not be 0: peers connect to them".into(),
            ));
        }
        if quorum_port == election_port {
            return Err(err(format!(
                "the quorum port and the election port must differ (both are {quorum_port})"
            )));
        }
        let learner_type = match parts.get(3) {
            None => LearnerType::Participant,
            Some(t) => match t.trim().to_ascii_lowercase().as_str() {
                "participant" => LearnerType::Participant,
                "observer" => LearnerType::Observer,
                _ => {
                    return Err(err(format!(
                        "unrecognised peer type {t:?} (participant or observer)"
                    )))
                }
            },
        };
        Ok(QuorumServer {
            id: sid,
            quorum_addr: (host.to_string(), quorum_port),
            election_addr: (host.to_string(), election_port),
            learner_type,
            client_addr,
        })
    }

    pub fn is_voter(&self) -> bool {
        self.learner_type == LearnerType::Participant
    }
}

impl fmt::Display for QuorumServer {
    /// `QuorumServer.toString`: the value of the `server.N` line, role always written.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}:{}",
            delimited(&self.quorum_addr.0),
            self.quorum_addr.1,
            self.election_addr.1,
            learner_type_name(self.learner_type)
        )?;
        if let Some((host, port)) = &self.client_addr {
            write!(f, ";{}:{}", delimited(host), port)?;
        }
        Ok(())
    }
}

/// Two members (or one member's client and server ports) on the same `host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressConflict {
    /// The member found second (higher sid, or the same one for its own client port).
    pub sid: Sid,
    pub what: &'static str,
    pub other_sid: Sid,
    pub other_what: &'static str,
    /// `host:port` as written in `sid`'s line.
    pub addr: String,
}

impl fmt::Display for AddressConflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} address {} of server.{} is also the {} address of server.{}",
            self.what, self.addr, self.sid, self.other_what, self.other_sid
        )
    }
}

/// Hosts compared for [`QuorumVerifier::address_conflict`]: IP literals by value (so
/// `::1` and `0:0::1` match), names case-insensitively. Names are not resolved.
fn host_key(host: &str) -> String {
    match host.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => host.to_ascii_lowercase(),
    }
}

fn is_wildcard(host: &str) -> bool {
    host.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified())
}

/// ZooKeeper's `QuorumMaj`: the members by sid and the config version. A quorum is
/// more than half of the participants; observers never count.
///
/// Invariant: each key of `members` is its server's `id`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QuorumVerifier {
    pub members: BTreeMap<Sid, QuorumServer>,
    /// The config version (`version=<hex>`; 0 unless reconfig wrote one). Peers restart
    /// their election when they see a higher one (§1.4), so keep the ensemble's.
    pub version: i64,
}

impl QuorumVerifier {
    /// Builds a verifier; a sid given twice is refused.
    pub fn new(
        servers: impl IntoIterator<Item = QuorumServer>,
        version: i64,
    ) -> Result<QuorumVerifier, QuorumConfigError> {
        let mut members = BTreeMap::new();
        for s in servers {
            let id = s.id;
            if members.insert(id, s).is_some() {
                return Err(QuorumConfigError::new(
                    format!("server.{id}"),
                    "the server id is given twice",
                ));
            }
        }
        Ok(QuorumVerifier { members, version })
    }

    /// The participants (`getVotingMembers`), by sid.
    pub fn voters(&self) -> impl Iterator<Item = &QuorumServer> + '_ {
        self.members.values().filter(|s| s.is_voter())
    }

    /// The observers (`getObservingMembers`), by sid.
    pub fn observers(&self) -> impl Iterator<Item = &QuorumServer> + '_ {
        self.members.values().filter(|s| !s.is_voter())
    }

    pub fn voter_count(&self) -> usize {
        self.voters().count()
    }

    pub fn observer_count(&self) -> usize {
        self.observers().count()
    }

    pub fn is_voter(&self, sid: Sid) -> bool {
        self.members.get(&sid).is_some_and(|s| s.is_voter())
    }

    pub fn get(&self, sid: Sid) -> Option<&QuorumServer> {
        self.members.get(&sid)
    }

    /// `containsQuorum`: do the distinct voters among `acks` number more than half of
    /// the voters? ZooKeeper's ack sets only ever hold voters (`SyncedLearnerTracker`
    /// drops the rest); here observers, unknown sids and repeats are ignored, which
    /// gives the same answer on such sets.
    pub fn contains_quorum<'a>(&self, acks: impl IntoIterator<Item = &'a Sid>) -> bool {
        let voting: BTreeSet<Sid> = acks
            .into_iter()
            .copied()
            .filter(|&s| self.is_voter(s))
            .collect();
        voting.len() > self.voter_count() / 2
    }

    /// `QuorumMaj.toString`: one `server.N=...` line per member, each ending in `\n`,
    /// then `version=<hex>` with no newline. Members come in sid order; ZooKeeper
    /// prints its HashMap's order, which is the same for sids below its table size (16
    /// for up to 12 members) and differs beyond. Readers parse it as properties, so
    /// order carries no meaning.
    pub fn to_config_string(&self) -> String {
        let mut out = String::new();
        for s in self.members.values() {
            out.push_str(&format!("server.{}={}\n", s.id, s));
        }
        // Long.toHexString: two's complement, lower case, no prefix.
        out.push_str(&format!("version={:x}", self.version as u64));
        out
    }

    /// Parses a config string as `parseDynamicConfig` does for a peer's (the
    /// `server.*` and `version` keys only; anything else is an "Unrecognised
    /// parameter"). Observers without a participant are refused, as ZooKeeper always
    /// does; the other membership rules depend on `standaloneEnabled` and are the
    /// caller's (see `config`).
    pub fn parse_config_string(text: &str) -> Result<QuorumVerifier, QuorumConfigError> {
        let entries = crate::config::properties::parse(text).map_err(|e| {
            QuorumConfigError::new(
                format!("line {}", e.line),
                "malformed \\uxxxx escape".to_string(),
            )
        })?;
        let mut servers = Vec::new();
        let mut version = None;
        for e in entries {
            let key = java_trim(&e.key);
            let value = java_trim(&e.value);
            if key.starts_with("group") || key.starts_with("weight") {
                return Err(QuorumConfigError::new(
                    key,
                    "hierarchical quorums (group/weight) are not supported by corral",
                ));
            } else if let Some(n) = key.strip_prefix("server.") {
                let sid = parse_sid(n).map_err(|r| QuorumConfigError::new(key, r))?;
                servers.push(QuorumServer::parse(sid, value)?);
            } else if key == "version" {
                if version.is_some() {
                    return Err(QuorumConfigError::new(key, "given twice"));
                }
                version = Some(parse_version(value).map_err(|r| QuorumConfigError::new(key, r))?);
            } else {
                return Err(QuorumConfigError::new(key, "Unrecognised parameter"));
            }
        }
        let qv = QuorumVerifier::new(servers, version.unwrap_or(0))?;
        qv.check_observers_have_participants()?;
        Ok(qv)
    }

    /// "Observers w/o participants is an invalid configuration" (`parseDynamicConfig`
    /// refuses it whatever `standaloneEnabled` says).
    pub fn check_observers_have_participants(&self) -> Result<(), QuorumConfigError> {
        if self.voter_count() == 0 {
            if let Some(o) = self.observers().next() {
                return Err(QuorumConfigError::new(
                    format!("server.{}", o.id),
                    "Observers w/o participants is an invalid configuration: no server.N line is a participant",
                ));
            }
        }
        Ok(())
    }

    /// The first `host:port` used twice: by two members' quorum or election addresses,
    /// or by an explicit client address (wildcard client addresses such as a bare
    /// `;2181` are per machine and never conflict). ZooKeeper checks this only on
    /// reconfig; at start-up a clash would fail later, at bind time, on one server.
    pub fn address_conflict(&self) -> Option<AddressConflict> {
        let mut seen: Vec<(String, u16, Sid, &'static str)> = Vec::new();
        for s in self.members.values() {
            let mut addrs = vec![("quorum", &s.quorum_addr), ("election", &s.election_addr)];
            if let Some(c) = &s.client_addr {
                if !is_wildcard(&c.0) {
                    addrs.push(("client", c));
                }
            }
            for (what, (host, port)) in addrs {
                let key = host_key(host);
                if let Some((_, _, other_sid, other_what)) =
                    seen.iter().find(|(k, p, _, _)| *k == key && p == port)
                {
                    return Some(AddressConflict {
                        sid: s.id,
                        what,
                        other_sid: *other_sid,
                        other_what,
                        addr: format!("{}:{}", delimited(host), port),
                    });
                }
                seen.push((key, *port, s.id, what));
            }
        }
        None
    }
}

/// Java's `String.trim`.
fn java_trim(s: &str) -> &str {
    s.trim_matches(|c: char| c <= ' ')
}

/// The `N` of `server.N`: ZooKeeper takes any `Long.parseLong`; corral takes the ids
/// ZooKeeper documents (1 and up; myid files hold "a value between 1 and 255").
pub fn parse_sid(n: &str) -> Result<Sid, String> {
    match n.parse::<i64>() {
        Ok(v) if v >= 1 => Ok(v as Sid),
        Ok(v) => Err(format!("the server id {v} must be a positive number")),
        Err(_) => Err(format!("the server id {n:?} is not a number")),
    }
}

/// `Long.parseLong(v, 16)`: an optional sign and hex digits, no `0x`, within 64 bits.
pub fn parse_version(v: &str) -> Result<i64, String> {
    let bad = || format!("{v:?} is not a hexadecimal config version");
    let (neg, digits) = match v.as_bytes().first() {
        Some(b'-') => (true, &v[1..]),
        Some(b'+') => (false, &v[1..]),
        _ => (false, v),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let mag = u128::from_str_radix(digits, 16).map_err(|_| bad())?;
    let val = if neg { -(mag as i128) } else { mag as i128 };
    i64::try_from(val).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(sid: Sid, v: &str) -> QuorumServer {
        QuorumServer::parse(sid, v).unwrap_or_else(|e| panic!("{v}: {e}"))
    }

    fn refused(v: &str) -> String {
        match QuorumServer::parse(1, v) {
            Ok(s) => panic!("{v:?} parsed as {s:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn plain_line_is_a_participant_without_client_address() {
        let s = server(1, "zk1.example.com:2888:3888");
        assert_eq!(
            s,
            QuorumServer {
                id: 1,
                quorum_addr: ("zk1.example.com".into(), 2888),
                election_addr: ("zk1.example.com".into(), 3888),
                learner_type: LearnerType::Participant,
                client_addr: None,
            }
        );
        assert_eq!(s.to_string(), "zk1.example.com:2888:3888:participant");
    }

    #[test]
    fn roles_are_case_insensitive_and_trimmed() {
        assert_eq!(
            server(4, "h:1:2:observer").learner_type,
            LearnerType::Observer
        );
        assert_eq!(
            server(4, "h:1:2:OBSERVER ").learner_type,
            LearnerType::Observer
        );
        assert_eq!(
            server(4, "h:1:2:Participant").learner_type,
            LearnerType::Participant
        );
    }

    #[test]
    fn client_part_forms() {
        // A bare port means every address, written back as 0.0.0.0 as ZooKeeper does.
        let s = server(1, "h:2888:3888;2181");
        assert_eq!(s.client_addr, Some(("0.0.0.0".into(), 2181)));
        assert_eq!(s.to_string(), "h:2888:3888:participant;0.0.0.0:2181");
        let s = server(2, "h:2888:3888:observer;127.0.0.1:2182");
        assert_eq!(s.client_addr, Some(("127.0.0.1".into(), 2182)));
        assert_eq!(s.to_string(), "h:2888:3888:observer;127.0.0.1:2182");
        let s = server(3, "h:2888:3888;[::1]:2183");
        assert_eq!(s.client_addr, Some(("::1".into(), 2183)));
        assert_eq!(s.to_string(), "h:2888:3888:participant;[::1]:2183");
        // Java's split drops trailing empty parts: a trailing ';' or ':' is harmless.
        assert_eq!(server(1, "h:2888:3888;").client_addr, None);
        assert_eq!(
            server(1, "h:2888:3888:").learner_type,
            LearnerType::Participant
        );
    }

    #[test]
    fn ipv6_in_brackets() {
        let s = server(2, "[2001:db8::7]:2888:3888:observer;[2001:db8::7]:2181");
        assert_eq!(s.quorum_addr, ("2001:db8::7".into(), 2888));
        assert_eq!(s.election_addr, ("2001:db8::7".into(), 3888));
        assert_eq!(s.learner_type, LearnerType::Observer);
        assert_eq!(
            s.to_string(),
            "[2001:db8::7]:2888:3888:observer;[2001:db8::7]:2181"
        );
    }

    #[test]
    fn malformed_lines_are_refused_with_a_reason() {
        for (v, why) in [
            ("h:2888", "expected host:quorumPort:electionPort"),
            ("h", "expected host:quorumPort"),
            ("h:1:2:observer:x", "expected host:quorumPort"),
            ("h:1:2;3;4", "expected host:quorumPort"),
            ("h:1:2;a:b:3", "expected host:quorumPort"),
            ("::1:2888:3888", "expected host:quorumPort"),
            ("h:x:3888", "quorum port \"x\" is not a number"),
            ("h:2888:3888x", "election port \"3888x\" is not a number"),
            ("h:2888:99999", "election port 99999 is out of range"),
            ("h:2888:3888;port", "client port \"port\" is not a number"),
            ("h:2888:3888;:2181", "empty client host"),
            (":2888:3888", "empty host"),
            ("h:2888:2888", "must differ (both are 2888)"),
            ("h:0:3888", "must not be 0"),
            ("h:2888:3888:leader", "unrecognised peer type \"leader\""),
            ("[::1:2888:3888", "no matching ']'"),
            ("[::1]:", "no port after the colon"),
            ("[::1]2888:3888", "expected ':' after ']'"),
            ("a:2888:3888|b:2888:3888", "multiAddress"),
        ] {
            let msg = refused(v);
            assert!(msg.starts_with("server.1: "), "{v}: {msg}");
            assert!(msg.contains(why), "{v}: {msg:?} lacks {why:?}");
        }
    }

    fn three_plus_observer() -> QuorumVerifier {
        QuorumVerifier::parse_config_string(
            "server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\n\
             server.2=127.0.0.1:2889:3889:participant;0.0.0.0:2182\n\
             server.3=127.0.0.1:2890:3890:participant;0.0.0.0:2183\n\
             server.4=127.0.0.1:2891:3891:observer;0.0.0.0:2184\n\
             version=0",
        )
        .unwrap()
    }

    #[test]
    fn three_voters_and_an_observer_print_exactly_as_zookeeper() {
        let qv = QuorumVerifier::new(
            [
                server(3, "127.0.0.1:2890:3890"),
                server(1, "127.0.0.1:2888:3888"),
                server(4, "127.0.0.1:2891:3891:observer"),
                server(2, "127.0.0.1:2889:3889:participant;2182"),
            ],
            0,
        )
        .unwrap();
        assert_eq!(
            qv.to_config_string(),
            "server.1=127.0.0.1:2888:3888:participant\n\
             server.2=127.0.0.1:2889:3889:participant;0.0.0.0:2182\n\
             server.3=127.0.0.1:2890:3890:participant\n\
             server.4=127.0.0.1:2891:3891:observer\n\
             version=0"
        );
        assert_eq!(qv.voters().map(|s| s.id).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(qv.observers().map(|s| s.id).collect::<Vec<_>>(), vec![4]);
        assert!(qv.is_voter(2) && !qv.is_voter(4) && !qv.is_voter(9));
    }

    #[test]
    fn config_string_round_trips() {
        let qv = three_plus_observer();
        let text = qv.to_config_string();
        assert_eq!(QuorumVerifier::parse_config_string(&text).unwrap(), qv);
        assert_eq!(
            QuorumVerifier::parse_config_string(&text)
                .unwrap()
                .to_config_string(),
            text
        );

        let mut qv = QuorumVerifier::new(
            [
                server(7, "[fe80::1]:2888:3888"),
                server(12, "zk12:2888:3888:observer;[::]:2181"),
                server(8, "zk8:2888:3888"),
            ],
            0x1_0000_0003,
        )
        .unwrap();
        let text = qv.to_config_string();
        assert!(text.ends_with("\nversion=100000003"), "{text}");
        assert_eq!(QuorumVerifier::parse_config_string(&text).unwrap(), qv);
        // Negative versions print as Long.toHexString does.
        qv.version = -1;
        assert!(qv.to_config_string().ends_with("version=ffffffffffffffff"));
    }

    #[test]
    fn version_is_hex_and_defaults_to_zero() {
        let qv = QuorumVerifier::parse_config_string("server.1=h:1:2\nversion=1a").unwrap();
        assert_eq!(qv.version, 0x1a);
        let qv = QuorumVerifier::parse_config_string("server.1=h:1:2").unwrap();
        assert_eq!(qv.version, 0);
        for bad in ["0x10", "", "g", "8000000000000000"] {
            let e = QuorumVerifier::parse_config_string(&format!("server.1=h:1:2\nversion={bad}"))
                .unwrap_err();
            assert_eq!(e.key, "version", "{bad}");
        }
    }

    #[test]
    fn config_string_refusals() {
        let err = |t: &str| QuorumVerifier::parse_config_string(t).unwrap_err();
        let e = err("server.1=h:1:2\nclientPort=2181");
        assert_eq!(
            (e.key.as_str(), e.reason.as_str()),
            ("clientPort", "Unrecognised parameter")
        );
        let e = err("server.1=h:1:2\ngroup.1=1\nweight.1=1");
        assert_eq!(e.key, "group.1");
        assert!(e.reason.contains("hierarchical"));
        let e = err("server.1=h:1:2\nweight.1=1");
        assert!(e.reason.contains("not supported"));
        let e = err("server.x=h:1:2");
        assert_eq!(e.key, "server.x");
        assert!(e.reason.contains("not a number"));
        let e = err("server.0=h:1:2");
        assert!(e.reason.contains("positive"), "{e}");
        let e = err("server.1=h:1:2\nserver.01=h:3:4");
        assert_eq!(e.to_string(), "server.1: the server id is given twice");
        let e = err("server.5=h:1:2:observer\nversion=0");
        assert_eq!(e.key, "server.5");
        assert!(e.reason.starts_with("Observers w/o participants"));
        let e = err("server.1=h:1:1");
        assert!(e.reason.contains("must differ"));
    }

    #[test]
    fn majority_of_voters_only() {
        let qv = three_plus_observer();
        assert!(!qv.contains_quorum(&[]));
        assert!(!qv.contains_quorum(&[1]));
        assert!(qv.contains_quorum(&[1, 3]));
        // The observer, an unknown sid and a repeat do not make a majority.
        assert!(!qv.contains_quorum(&[1, 4]));
        assert!(!qv.contains_quorum(&[2, 9]));
        assert!(!qv.contains_quorum(&[2, 2]));
        let set: BTreeSet<Sid> = [1, 2, 3].into();
        assert!(qv.contains_quorum(&set));

        // Four voters: half is 2, so a quorum needs 3.
        let four =
            QuorumVerifier::new((1..=4).map(|i| server(i, &format!("h{i}:1:2"))), 0).unwrap();
        assert!(!four.contains_quorum(&[1, 2]));
        assert!(four.contains_quorum(&[1, 2, 4]));
        // One voter is its own quorum.
        let one = QuorumVerifier::new([server(1, "h:1:2")], 0).unwrap();
        assert!(one.contains_quorum(&[1]));
    }

    #[test]
    fn address_conflicts() {
        let qv = |lines: &[(Sid, &str)]| {
            QuorumVerifier::new(lines.iter().map(|(i, v)| server(*i, v)), 0).unwrap()
        };
        assert_eq!(three_plus_observer().address_conflict(), None);
        let c = qv(&[(1, "a:2888:3888"), (2, "a:2888:3889")])
            .address_conflict()
            .unwrap();
        assert_eq!(
            (c.sid, c.what, c.other_sid, c.other_what),
            (2, "quorum", 1, "quorum")
        );
        assert_eq!(
            c.to_string(),
            "quorum address a:2888 of server.2 is also the quorum address of server.1"
        );
        // Another member's election port, IPv6 spelled differently, names in any case.
        let c = qv(&[(1, "[::1]:2888:3888"), (3, "[0:0::1]:3888:4888")])
            .address_conflict()
            .unwrap();
        assert_eq!((c.sid, c.what, c.other_what), (3, "quorum", "election"));
        assert!(qv(&[(1, "Zk1:1:2"), (2, "zk1:3:2")])
            .address_conflict()
            .is_some());
        // Same ports on different hosts are fine; so are wildcard client ports.
        assert_eq!(
            qv(&[(1, "a:2888:3888;2181"), (2, "b:2888:3888;2181")]).address_conflict(),
            None
        );
        // An explicit client address counts, even against the same server's ports.
        let c = qv(&[(1, "a:2888:3888;a:2888")]).address_conflict().unwrap();
        assert_eq!(
            (c.sid, c.what, c.other_sid, c.other_what),
            (1, "client", 1, "quorum")
        );
    }
}
