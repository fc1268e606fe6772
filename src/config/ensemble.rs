//! The ensemble half of zoo.cfg: from the `server.N` lines, the ensemble keys and the
//! `myid` file to the membership, this server's id, role and client address, checked
//! in the order of ZooKeeper's `QuorumPeerConfig.setupQuorumPeerConfig`
//! (`parseDynamicConfig`, `setupMyId`, `setupClientPort`, `setupPeerType`,
//! `checkValidity`) plus `QuorumPeer.start`'s "My id N not in the peer list".
//!
//! It lives beside the rest of the parser because its answers change what a standalone
//! server does too (a lone participant's client port comes from its server line), and
//! apart from it because these rules are ZooKeeper's in detail: which member counts
//! how, what is refused and what is only warned about. corral refuses a few more
//! things than ZooKeeper, each a configuration that could only fail later or silently
//! shrink the ensemble: a server id listed twice, two members on one address, hosts
//! that are empty, and quorum/election port 0. It never refuses what ZooKeeper merely
//! warns about (an even number of participants, fewer than three).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::{parse_host, Config, ConfigError};
use crate::quorum::verifier::{QuorumServer, QuorumVerifier};
use crate::quorum::{LearnerType, Sid};

/// With `extendedTypesEnabled`, server ids above this are refused: TTL nodes keep the
/// server id in the top byte of `ephemeralOwner`, 0xff marks a TTL
/// (`EphemeralType.MAX_EXTENDED_SERVER_ID`).
pub const MAX_EXTENDED_SERVER_ID: Sid = 254;

/// One `server.N` line: the parsed member and where it was written.
pub(super) struct ServerLine {
    pub server: QuorumServer,
    pub key: String,
    pub value: String,
    pub line: usize,
}

/// The ensemble keys as read from the file, with their lines, before they are checked
/// against each other and the myid.
#[derive(Default)]
pub(super) struct EnsembleKeys {
    /// In file order.
    pub servers: Vec<ServerLine>,
    pub version: Option<(i64, usize)>,
    pub init_limit: Option<(u32, usize)>,
    pub sync_limit: Option<(u32, usize)>,
    pub peer_type: Option<(LearnerType, usize)>,
    pub standalone_line: Option<usize>,
    /// The first `group.*`/`weight.*` key: (key, value, line).
    pub hierarchical: Option<(String, String, usize)>,
}

fn role_name(t: LearnerType) -> &'static str {
    match t {
        LearnerType::Participant => "participant",
        LearnerType::Observer => "observer",
    }
}

/// Fills `c.quorum`, `server_id`, `peer_type`, the limits and `client_port_address`.
/// `static_client` is `clientPort`/`clientPortAddress` (with clientPort's line), if
/// set; `myid` the content of `dataDir/myid`, if that file exists.
pub(super) fn setup_quorum_peer(
    c: &mut Config,
    keys: EnsembleKeys,
    static_client: Option<(SocketAddr, usize)>,
    myid: Option<&str>,
    file: &str,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    let bad = |l: &ServerLine, reason: String| ConfigError::BadValue {
        file: file.to_string(),
        line: l.line,
        key: l.key.clone(),
        value: l.value.clone(),
        reason,
    };
    let standalone_false = |reason: &str| ConfigError::BadValue {
        file: file.to_string(),
        line: keys.standalone_line.unwrap_or(0),
        key: "standaloneEnabled".into(),
        value: "false".into(),
        reason: reason.into(),
    };

    // parseDynamicConfig: the membership and its participant rules.
    let mut lines: BTreeMap<Sid, &ServerLine> = BTreeMap::new();
    for l in &keys.servers {
        if let Some(prev) = lines.insert(l.server.id, l) {
            return Err(bad(
                l,
                format!(
                    "names server id {}, as {} on line {} does: each server id is listed once",
                    l.server.id, prev.key, prev.line
                ),
            ));
        }
    }
    let line_of = |sid: Sid| lines[&sid];
    if keys.servers.is_empty() {
        if !c.standalone_enabled {
            return Err(standalone_false(
                "standaloneEnabled=false needs a participant: there is no server.N line",
            ));
        }
        if let Some((_, line)) = keys.version {
            warnings.push(format!(
                "{file}:{line}: version only applies to server.N lines; there are none, so it is ignored"
            ));
        }
        c.quorum = None;
    } else {
        if let Some((key, value, line)) = &keys.hierarchical {
            return Err(ConfigError::BadValue {
                file: file.to_string(),
                line: *line,
                key: key.clone(),
                value: value.clone(),
                reason: "hierarchical quorums (group/weight) are not supported by corral, and ignoring them would change what a quorum is".into(),
            });
        }
        let qv = QuorumVerifier {
            members: lines
                .iter()
                .map(|(&id, l)| (id, l.server.clone()))
                .collect(),
            version: keys.version.map_or(0, |v| v.0),
        };
        if let Some(conflict) = qv.address_conflict() {
            return Err(bad(line_of(conflict.sid), conflict.to_string()));
        }
        let voters = qv.voter_count();
        let first_observer = qv.observers().next().map(|s| line_of(s.id));
        if voters == 0 {
            if !c.standalone_enabled {
                return Err(standalone_false(
                    "standaloneEnabled=false needs a participant: every server.N line is an observer",
                ));
            }
            if let Some(o) = first_observer {
                return Err(bad(
                    o,
                    "Observers w/o participants is an invalid configuration: no server.N line is a participant".into(),
                ));
            }
        } else if voters == 1 && c.standalone_enabled {
            if let Some(o) = first_observer {
                return Err(bad(
                    o,
                    "Observers w/o quorum is an invalid configuration: with one participant and standaloneEnabled=true the server runs standalone (standaloneEnabled=false runs a lone participant with observers)".into(),
                ));
            }
            if let Some(p) = qv.voters().next().map(|s| line_of(s.id)) {
                warnings.push(format!(
                    "{file}:{}: only one server is listed and standaloneEnabled is true: running standalone, as ZooKeeper does",
                    p.line
                ));
            }
        } else if voters <= 2 {
            warnings.push(format!(
                "{file}: {voters} participant(s): no server failure will be tolerated; you need at least 3 servers"
            ));
        } else if voters.is_multiple_of(2) {
            warnings.push(format!(
                "{file}: {voters} participants: non-optimal configuration, consider an odd number of servers ({voters} tolerate as many failures as {})",
                voters - 1
            ));
        }
        c.quorum = Some(qv);
    }

    // setupMyId: a myid that exists must be a number, standalone or not.
    let myid_path = c.data_dir.join("myid");
    let my_id: Option<i64> = match myid {
        None => None,
        Some(text) => {
            // BufferedReader.readLine: up to the first \n, \r or \r\n.
            let first = text.split(['\n', '\r']).next().unwrap_or("");
            Some(first.parse::<i64>().map_err(|_| ConfigError::MyId {
                path: myid_path.clone(),
                reason: format!(
                    "the first line {first:?} is not a number: myid must hold the server id alone, with no spaces or other characters (ZooKeeper reads it without trimming)"
                ),
            })?)
        }
    };
    let own: Option<&ServerLine> = my_id
        .and_then(|id| Sid::try_from(id).ok())
        .and_then(|id| lines.get(&id).copied());

    // setupClientPort: the own line's client address wins; a clientPort that
    // disagrees with it is refused.
    let mut client = static_client.map(|(a, _)| a);
    if let Some(own) = own {
        if let Some((host, port)) = &own.server.client_addr {
            let ip =
                parse_host(host).map_err(|b| bad(own, format!("client host {host:?}: {}", b.0)))?;
            let from_line = SocketAddr::new(ip, *port);
            // clientPort=0 is "not set" to ZooKeeper (corral's "any free port").
            if let Some((st, st_line)) = static_client.filter(|(st, _)| st.port() != 0) {
                let differs = if st.ip().is_unspecified() {
                    st.port() != *port
                } else {
                    st != from_line
                };
                if differs {
                    return Err(bad(
                        own,
                        format!(
                            "this server's client address {from_line} disagrees with clientPort/clientPortAddress ({st}, line {st_line}); make them agree or drop one"
                        ),
                    ));
                }
            }
            client = Some(from_line);
        }
    }
    c.client_port_address = client.ok_or_else(|| ConfigError::Missing {
        file: file.to_string(),
        key: "clientPort".into(),
    })?;

    // setupPeerType: the server list decides; a disagreeing peerType is only warned.
    let role = own.map_or(LearnerType::Participant, |l| l.server.learner_type);
    let configured = keys.peer_type.map_or(LearnerType::Participant, |p| p.0);
    if role != configured {
        let where_ = match (keys.peer_type, own) {
            (Some((_, line)), _) => format!("{file}:{line}: peerType={}", role_name(configured)),
            (None, Some(l)) => format!("{file}:{}: peerType is not set (participant)", l.line),
            (None, None) => format!("{file}: peerType"),
        };
        let listed = match own {
            Some(l) => format!("{}'s line makes this server {}", l.key, role_name(role)),
            None => "this server is no observer in the server list".to_string(),
        };
        warnings.push(format!(
            "{where_} disagrees with the server list ({listed}); the server list wins, as in ZooKeeper"
        ));
    }
    c.peer_type = role;

    c.init_limit = keys.init_limit.map_or(0, |v| v.0);
    c.sync_limit = keys.sync_limit.map_or(0, |v| v.0);
    c.server_id = own.map(|l| l.server.id);
    if !c.is_distributed() {
        return Ok(());
    }

    // checkValidity, then QuorumPeer.start's membership check.
    let voters = c.quorum.as_ref().map_or(0, |q| q.voter_count());
    for (key, value, what) in [
        (
            "initLimit",
            keys.init_limit,
            "the ticks a follower has to connect and sync to a new leader",
        ),
        (
            "syncLimit",
            keys.sync_limit,
            "the ticks a follower may fall behind before the leader drops it",
        ),
    ] {
        match value {
            None => {
                return Err(ConfigError::NotSet {
                    file: file.to_string(),
                    key: key.into(),
                    reason: format!("an ensemble ({voters} participants) needs it: {what}"),
                })
            }
            Some((0, line)) => {
                return Err(ConfigError::BadValue {
                    file: file.to_string(),
                    line,
                    key: key.into(),
                    value: "0".into(),
                    reason: format!("must be greater than 0 in an ensemble: {what}"),
                })
            }
            Some(_) => {}
        }
    }
    let listed = || {
        lines
            .keys()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some(id) = my_id else {
        return Err(ConfigError::MyId {
            path: myid_path,
            reason: format!(
                "myid file is missing: {file} describes an ensemble ({voters} participants), and each member's dataDir/myid must hold the N of its server.N line (one of {})",
                listed()
            ),
        });
    };
    if own.is_none() {
        return Err(ConfigError::MyId {
            path: myid_path,
            reason: format!(
                "My id {id} not in the peer list: {file} lists server ids {}",
                listed()
            ),
        });
    }
    if c.extended_types_enabled && id as Sid > MAX_EXTENDED_SERVER_ID {
        return Err(ConfigError::MyId {
            path: myid_path,
            reason: format!(
                "server id {id} is too large: with extendedTypesEnabled (TTL nodes) server ids cannot be larger than {MAX_EXTENDED_SERVER_ID}"
            ),
        });
    }
    Ok(())
}
