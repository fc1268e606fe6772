//! Tests of zoo.cfg parsing: ZooKeeper's defaults, overrides, comments, and one test per
//! refused value checking that the message names the key, the line and the file.

use super::*;

fn parse(text: &str) -> (Config, Vec<String>) {
    match Config::parse(text, "test.cfg") {
        Ok(r) => r,
        Err(e) => panic!("unexpected error: {e}"),
    }
}

fn parse_err(text: &str) -> String {
    match Config::parse(text, "test.cfg") {
        Ok(_) => panic!("expected an error for {text:?}"),
        Err(e) => e.to_string(),
    }
}

const MINIMAL: &str = "dataDir=/var/zk\nclientPort=2181\n";

#[test]
fn embedded_default_matches_config_default() {
    let (c, warnings) = Config::parse(EMBEDDED_DEFAULT, "conf/zoo.cfg").unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(c, Config::default());
    assert_eq!(Config::embedded(), Config::default());
    assert_eq!(c.client_port_address, "127.0.0.1:2181".parse().unwrap());
    assert_eq!(c.tick_time, 2000);
    assert_eq!(c.data_dir, PathBuf::from("./data"));
}

#[test]
fn sample_parses_and_lists_every_key() {
    let sample = include_str!("../../conf/zoo.cfg.sample");
    let (c, warnings) = Config::parse(sample, "zoo.cfg.sample").unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(c.client_port_address.port(), 2181);
    // Uncommenting every key must give a valid file with only the expected warnings.
    let uncommented: String = sample
        .lines()
        .map(|l| {
            l.strip_prefix('#')
                .filter(|r| r.contains('=') && !r.starts_with(' '))
                .unwrap_or(l)
        })
        .collect::<Vec<_>>()
        .join("\n");
    // Three server.N lines make an ensemble, which needs a myid.
    let (c, warnings) = Config::parse_with_myid(&uncommented, "all.cfg", Some("1\n")).unwrap();
    assert_eq!(c.shards, Some(4));
    assert!(c.is_distributed());
    assert_eq!(c.quorum.as_ref().unwrap().voter_count(), 3);
    assert_eq!(c.server_id, Some(1));
    for w in &warnings {
        assert!(
            w.contains("secureClientPort") || w.contains("overrides"),
            "unexpected warning {w}"
        );
    }
    for key in [
        "tickTime",
        "dataDir",
        "dataLogDir",
        "clientPort",
        "clientPortAddress",
        "secureClientPort",
        "maxClientCnxns",
        "minSessionTimeout",
        "maxSessionTimeout",
        "globalOutstandingLimit",
        "preAllocSize",
        "snapCount",
        "autopurge.snapRetainCount",
        "autopurge.purgeInterval",
        "4lw.commands.whitelist",
        "jute.maxbuffer",
        "extendedTypesEnabled",
        "enforceQuota",
        "superDigest",
        "forceSync",
        "admin.enableServer",
        "admin.serverPort",
        "znode.container.checkIntervalMs",
        "znode.container.maxPerMinute",
        "initLimit",
        "syncLimit",
        "server.1",
        "shards",
        "logAppendsInFlight",
    ] {
        assert!(sample.contains(key), "sample lacks {key}");
    }
}

#[test]
fn zookeeper_defaults_when_keys_are_absent() {
    let (c, warnings) = parse(MINIMAL);
    assert!(warnings.is_empty());
    assert_eq!(c.tick_time, 3000);
    assert_eq!(c.data_dir, PathBuf::from("/var/zk"));
    assert_eq!(c.data_log_dir, PathBuf::from("/var/zk"));
    // No clientPortAddress: every address, as InetSocketAddress(port).
    assert_eq!(c.client_port_address, "0.0.0.0:2181".parse().unwrap());
    assert_eq!(c.min_session_timeout, 6000);
    assert_eq!(c.max_session_timeout, 60000);
    assert_eq!(c.limits.max_client_cnxns, 60);
    assert_eq!(c.limits.global_outstanding_limit, 1000);
    assert_eq!(c.limits.max_buffer, 0xfffff);
    assert_eq!(c.pre_alloc_size, 64 * 1024 * 1024);
    assert_eq!(c.snap_count, 100_000);
    assert_eq!(c.autopurge_snap_retain_count, 3);
    assert_eq!(c.autopurge_purge_interval_ms, 0);
    assert_eq!(c.four_letter_whitelist, vec!["srvr".to_string()]);
    assert!(c.force_sync);
    assert!(!c.extended_types_enabled);
    assert!(!c.enforce_quota);
    assert_eq!(c.super_digest, None);
    assert_eq!(c.container_check_interval_ms, 60000);
    assert_eq!(c.container_max_per_minute, 10000);
    assert_eq!(c.admin_server_port, 8080);
    assert_eq!(c.client_port_listen_backlog, -1);
    assert_eq!(c.secure_client_port, None);
    assert_eq!(c.shards, None);
    // Ensemble keys: ZooKeeper's defaults, and no server list.
    assert_eq!(c.quorum, None);
    assert_eq!(c.server_id, None);
    assert!(!c.is_distributed());
    assert_eq!(c.peer_type, LearnerType::Participant);
    assert_eq!((c.init_limit, c.sync_limit), (0, 0));
    assert_eq!(c.connect_to_learner_master_limit, 0);
    assert!(c.standalone_enabled && c.sync_enabled);
    assert!(!c.reconfig_enabled && !c.quorum_listen_on_all_ips);
    assert_eq!(c.election_port_bind_retry, 3);
    assert_eq!(c.cnx_timeout_ms, 5000);
}

#[test]
fn session_timeouts_follow_tick_time_unless_set() {
    let (c, _) = parse("tickTime=1000\ndataDir=/d\nclientPort=1\n");
    assert_eq!(
        (c.min_session_timeout, c.max_session_timeout),
        (2000, 20000)
    );
    let (c, _) = parse("tickTime=1000\ndataDir=/d\nclientPort=1\nminSessionTimeout=500\n");
    assert_eq!((c.min_session_timeout, c.max_session_timeout), (500, 20000));
    let (c, _) = parse("dataDir=/d\nclientPort=1\nmaxSessionTimeout=90000\nminSessionTimeout=-1\n");
    assert_eq!(
        (c.min_session_timeout, c.max_session_timeout),
        (6000, 90000)
    );
}

#[test]
fn every_key_is_read() {
    let text = "\
tickTime = 500
dataDir=/data/snap
dataLogDir=/data/log
clientPort=0
clientPortAddress=::1
clientPortListenBacklog=128
maxClientCnxns=0
minSessionTimeout=1000
maxSessionTimeout=30000
globalOutstandingLimit=0x800
maxProposalsInFlight=64
preAllocSize=1024
snapCount=5000
autopurge.snapRetainCount=5
autopurge.purgeInterval=2
4lw.commands.whitelist=RUOK, mntr,,stat
jute.maxbuffer=4194304
zookeeper.extendedTypesEnabled=true
enforceQuota=TRUE
DigestAuthenticationProvider.superDigest=super:lK75jTNcA+U9vtVEw5vB51mj/w4=
forceSync=no
admin.enableServer=false
admin.serverPort=9090
znode.container.checkIntervalMs=1000
znode.container.maxPerMinute=100
znode.container.maxNeverUsedIntervalMs=300000
shards=3
";
    let (c, warnings) = parse(text);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(c.tick_time, 500);
    assert_eq!(c.data_dir, PathBuf::from("/data/snap"));
    assert_eq!(c.data_log_dir, PathBuf::from("/data/log"));
    assert_eq!(c.client_port_address, "[::1]:0".parse().unwrap());
    assert_eq!(c.client_port_listen_backlog, 128);
    assert_eq!(c.limits.max_client_cnxns, 0);
    assert_eq!(
        (c.min_session_timeout, c.max_session_timeout),
        (1000, 30000)
    );
    assert_eq!(c.limits.global_outstanding_limit, 2048);
    assert_eq!(c.limits.max_proposals_in_flight, 64);
    assert_eq!(c.pre_alloc_size, 1024 * 1024);
    assert_eq!(c.snap_count, 5000);
    assert_eq!(c.autopurge_snap_retain_count, 5);
    assert_eq!(c.autopurge_purge_interval_ms, 2 * 3_600_000);
    assert_eq!(
        c.four_letter_whitelist,
        vec!["ruok", "mntr", "stat", "srvr"]
    );
    assert_eq!(c.limits.max_buffer, 4 * 1024 * 1024);
    assert!(c.extended_types_enabled);
    assert!(c.enforce_quota);
    assert_eq!(
        c.super_digest.as_deref(),
        Some("super:lK75jTNcA+U9vtVEw5vB51mj/w4=")
    );
    assert!(!c.force_sync);
    assert!(!c.admin_enable_server);
    assert_eq!(c.admin_server_port, 9090);
    assert_eq!(c.container_check_interval_ms, 1000);
    assert_eq!(c.container_max_per_minute, 100);
    assert_eq!(c.container_max_never_used_interval_ms, 300000);
    assert_eq!(c.shards, Some(3));
    let p = c.prep_config();
    assert!(p.extended_types && p.enforce_quota);
    assert_eq!(p.max_buffer, 4 * 1024 * 1024);
}

#[test]
fn alias_spellings() {
    let (c, _) = parse(&format!("{MINIMAL}extendedTypesEnabled=true\nzookeeper.enforceQuota=true\nsuperDigest=super:lK75jTNcA+U9vtVEw5vB51mj/w4=\n"));
    assert!(c.extended_types_enabled && c.enforce_quota && c.super_digest.is_some());
    let (c, _) = parse(&format!(
        "{MINIMAL}zookeeper.DigestAuthenticationProvider.superDigest=super:lK75jTNcA+U9vtVEw5vB51mj/w4=\n"
    ));
    assert!(c.super_digest.is_some());
}

#[test]
fn comments_whitespace_and_overrides() {
    let text = "\
# a comment
! another comment
   dataDir   =   /x   
clientPort: 2181
clientPort=2182
tickTime 2500
";
    let (c, warnings) = parse(text);
    assert_eq!(c.data_dir, PathBuf::from("/x"));
    assert_eq!(c.client_port_address.port(), 2182);
    assert_eq!(c.tick_time, 2500);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("test.cfg:5") && warnings[0].contains("line 4"),
        "{}",
        warnings[0]
    );
}

#[test]
fn a_bad_value_overridden_later_is_not_an_error() {
    // As with a Properties table, only the last value of a key is looked at.
    let (c, _) = parse(&format!("{MINIMAL}tickTime=abc\ntickTime=100\n"));
    assert_eq!(c.tick_time, 100);
}

#[test]
fn unknown_and_unsupported_keys_are_warnings() {
    let (_, warnings) = parse(&format!(
        "{MINIMAL}tickTim=2000\nlocalSessionsEnabled=true\n"
    ));
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].contains("test.cfg:3") && warnings[0].contains("unknown key tickTim"));
    assert!(warnings[1].contains("test.cfg:4") && warnings[1].contains("localSessionsEnabled"));
}

#[test]
fn secure_client_port_is_parsed_with_its_stores() {
    let (c, warnings) = parse(&format!(
        "{MINIMAL}secureClientPort=2281\nzookeeper.ssl.keyStore.location=/k/server.p12\nssl.keyStore.password=pw\n"
    ));
    assert_eq!(c.secure_client_port, Some(2281));
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(c.tls.secure_client_address.map(|a| a.port()), Some(2281));
    let ks = c.tls.client.key_store.as_ref().unwrap();
    assert_eq!(ks.location, std::path::PathBuf::from("/k/server.p12"));
    assert_eq!(ks.password.as_deref(), Some("pw"));
    let e = Config::parse(&format!("{MINIMAL}secureClientPort=2281\n"), "zoo.cfg").unwrap_err();
    assert!(e.to_string().contains("ssl.keyStore.location"), "{e}");
    assert!(c
        .to_conf_lines()
        .contains(&"secureClientPort=2281".to_string()));
}

#[test]
fn admin_server_keys() {
    // ZooKeeper's defaults: served on every address, port 8080, /commands.
    let (c, warnings) = parse(MINIMAL);
    assert!(warnings.is_empty());
    assert!(c.admin_enable_server);
    assert_eq!(c.admin_server_address, "0.0.0.0");
    assert_eq!(c.admin_server_port, 8080);
    assert_eq!(c.admin_command_url, "/commands");
    assert_eq!(c.admin_idle_timeout_ms, 30000);
    assert!(!c.admin_snapshot_enabled && !c.admin_restore_enabled);
    assert_eq!(c.initial_config, MINIMAL);
    // The embedded default keeps it on loopback, like the client port.
    assert_eq!(Config::default().admin_server_address, "127.0.0.1");

    let (c, warnings) = parse(&format!(
        "{MINIMAL}admin.enableServer=false\nadmin.serverAddress=::1\nadmin.serverPort=0x1f91\n\
         admin.commandURL=/zk/cmds/\nadmin.idleTimeout=500\nadmin.snapshot.enabled=true\n\
         zookeeper.admin.restore.enabled=TRUE\n"
    ));
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(!c.admin_enable_server);
    assert_eq!(c.admin_server_address, "::1");
    assert_eq!(c.admin_server_port, 8081);
    assert_eq!(c.admin_command_url, "/zk/cmds");
    assert_eq!(c.admin_idle_timeout_ms, 500);
    assert!(c.admin_snapshot_enabled && c.admin_restore_enabled);
    // The system-property spelling is the same key.
    let (c, _) = parse(&format!("{MINIMAL}zookeeper.admin.serverPort=9999\n"));
    assert_eq!(c.admin_server_port, 9999);
}

#[test]
fn whitelist_rules() {
    let (c, _) = parse(&format!("{MINIMAL}4lw.commands.whitelist=*\n"));
    for w in KNOWN_FOUR_LETTER_WORDS {
        assert!(c.four_letter_allowed(w), "{w}");
    }
    assert!(!c.four_letter_allowed("abcd"));
    let (c, warnings) = parse(&format!(
        "{MINIMAL}4lw.commands.whitelist=stat, ruok, nope\n"
    ));
    assert!(c.four_letter_allowed("stat") && c.four_letter_allowed("ruok"));
    assert!(c.four_letter_allowed("srvr"), "srvr is always allowed");
    assert!(!c.four_letter_allowed("mntr"));
    assert!(warnings[0].contains("\"nope\""));
    // Absent: ZooKeeper 3.8 allows only srvr.
    let (c, _) = parse(MINIMAL);
    assert!(c.four_letter_allowed("srvr"));
    assert!(!c.four_letter_allowed("ruok"));
    // Even a whitelist without srvr allows it (ZooKeeper adds it for zkServer.sh).
    let c = Config {
        four_letter_whitelist: vec!["ruok".into()],
        ..Config::default()
    };
    assert!(c.four_letter_allowed("srvr"));
}

#[test]
fn purge_interval_units() {
    let ms = |v: &str| {
        parse(&format!("{MINIMAL}autopurge.purgeInterval={v}\n"))
            .0
            .autopurge_purge_interval_ms
    };
    assert_eq!(ms("0"), 0);
    assert_eq!(ms("1"), 3_600_000);
    assert_eq!(ms("30m"), 1_800_000);
    assert_eq!(ms("10s"), 10_000);
    assert_eq!(ms("500ms"), 500);
    assert_eq!(ms("1d"), 86_400_000);
}

#[test]
fn snap_retain_count_below_three_is_raised() {
    let (c, warnings) = parse(&format!("{MINIMAL}autopurge.snapRetainCount=1\n"));
    assert_eq!(c.autopurge_snap_retain_count, 3);
    assert!(warnings[0].contains("snapRetainCount"));
}

#[test]
fn client_port_zero_and_localhost() {
    let (c, _) = parse("dataDir=/d\nclientPort=0\nclientPortAddress=localhost\n");
    assert_eq!(c.client_port_address, "127.0.0.1:0".parse().unwrap());
    let (c, _) = parse("dataDir=/d\nclientPort=0\nclientPortAddress=[::1]\n");
    assert_eq!(c.client_port_address, "[::1]:0".parse().unwrap());
}

#[test]
fn java_decode_forms() {
    let mb = |v: &str| {
        parse(&format!("{MINIMAL}jute.maxbuffer={v}\n"))
            .0
            .limits
            .max_buffer
    };
    assert_eq!(mb("1048576"), 1048576);
    assert_eq!(mb("0x100000"), 1048576);
    assert_eq!(mb("#100000"), 1048576);
    assert_eq!(mb("010"), 8);
}

/// Asserts that `text` is refused with a message naming `key`, `line` and the file.
fn assert_refused(text: &str, key: &str, line: usize) {
    let msg = parse_err(text);
    assert!(
        msg.contains(&format!("test.cfg:{line}:")),
        "{msg:?} lacks line {line}"
    );
    assert!(msg.contains(key), "{msg:?} lacks key {key}");
}

#[test]
fn bad_values_name_key_line_and_file() {
    let cases: &[(&str, &str)] = &[
        ("tickTime", "abc"),
        ("tickTime", "0"),
        ("tickTime", "-5"),
        ("tickTime", "99999999999"),
        ("clientPort", "65536"),
        ("clientPort", "-1"),
        ("clientPort", "21 81"),
        ("clientPortAddress", "no such host.invalid"),
        ("secureClientPort", "x"),
        ("clientPortListenBacklog", "many"),
        ("maxClientCnxns", "-1"),
        ("maxClientCnxns", "ten"),
        ("minSessionTimeout", "-7"),
        ("maxSessionTimeout", "4s"),
        ("globalOutstandingLimit", "0"),
        ("maxProposalsInFlight", "0"),
        ("maxProposalsInFlight", "many"),
        ("preAllocSize", "64M"),
        ("preAllocSize", "-1"),
        ("snapCount", "1"),
        ("autopurge.snapRetainCount", "three"),
        ("autopurge.purgeInterval", "1w"),
        ("autopurge.purgeInterval", "-1"),
        ("jute.maxbuffer", "1MB"),
        ("jute.maxbuffer", "0"),
        ("extendedTypesEnabled", "yes"),
        ("zookeeper.extendedTypesEnabled", "1"),
        ("enforceQuota", "on"),
        ("DigestAuthenticationProvider.superDigest", "super:password"),
        ("superDigest", "admin:lK75jTNcA+U9vtVEw5vB51mj/w4="),
        ("admin.enableServer", "yes"),
        ("admin.serverPort", "80800"),
        ("admin.serverAddress", ""),
        ("admin.commandURL", "commands"),
        ("admin.idleTimeout", "0"),
        ("admin.idleTimeout", "30s"),
        ("admin.snapshot.enabled", "yes"),
        ("admin.restore.enabled", "1"),
        ("znode.container.checkIntervalMs", "0"),
        ("znode.container.maxPerMinute", "lots"),
        ("znode.container.maxNeverUsedIntervalMs", "-3"),
        ("initLimit", "ten"),
        ("syncLimit", "-1"),
        ("connectToLearnerMasterLimit", "-1"),
        ("electionAlg", "1"),
        ("electionAlg", "fast"),
        ("peerType", "leader"),
        ("standaloneEnabled", "no"),
        ("reconfigEnabled", "1"),
        ("syncEnabled", "yes"),
        ("quorumListenOnAllIPs", "all"),
        ("electionPortBindRetry", "-1"),
        ("zookeeper.electionPortBindRetry", "three"),
        ("cnxTimeout", "5s"),
        ("zookeeper.cnxTimeout", "-1"),
        ("multiAddress.enabled", "true"),
        ("multiAddress.enabled", "maybe"),
        ("dynamicConfigFile", "/etc/zk/zoo.cfg.dynamic"),
        ("version", "0x1"),
        ("server.x", "a:1:2"),
        ("server.0", "a:1:2"),
        ("server.-1", "a:1:2"),
        ("server.1", "a:1"),
        ("server.1", "a:1:2:leader"),
        ("server.1", "a:99999:2"),
        ("server.1", "a:2888:2888"),
        ("server.1", "a:2888:3888|b:2888:3888"),
        ("server.1", "[::1:2888:3888"),
        ("server.1", "a:2888:3888;x"),
        ("shards", "0"),
        ("shards", "all"),
        ("dataDir", ""),
    ];
    for (key, value) in cases {
        // The bad key on line 3, after the two required keys.
        let text = format!("dataDir=/d\nclientPort=2181\n{key}={value}\n");
        assert_refused(&text, key, 3);
    }
}

#[test]
fn session_timeout_order_is_checked() {
    assert_refused(
        "dataDir=/d\nclientPort=1\nmaxSessionTimeout=1000\nminSessionTimeout=5000\n",
        "minSessionTimeout",
        4,
    );
    // maxSessionTimeout alone below the derived minimum (2 x 3000).
    assert_refused(
        "dataDir=/d\nclientPort=1\nmaxSessionTimeout=1000\n",
        "maxSessionTimeout",
        3,
    );
}

#[test]
fn missing_required_keys() {
    let msg = parse_err("clientPort=2181\n");
    assert!(
        msg.contains("test.cfg") && msg.contains("dataDir is not set"),
        "{msg}"
    );
    let msg = parse_err("dataDir=/d\n");
    assert!(msg.contains("clientPort is not set"), "{msg}");
}

#[test]
fn malformed_escape_names_line() {
    let msg = parse_err("dataDir=/d\nclientPort=1\ndataLogDir=\\u12\n");
    assert!(msg.contains("test.cfg:3"), "{msg}");
}

#[test]
fn load_reads_a_file_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zoo.cfg");
    std::fs::write(&path, "dataDir=/d\nclientPort=0\ntickTime=x\n").unwrap();
    let msg = Config::load(&path).unwrap_err().to_string();
    assert!(
        msg.contains(&format!("{}:3:", path.display())) && msg.contains("tickTime"),
        "{msg}"
    );
    std::fs::write(&path, "dataDir=/d\nclientPort=0\n").unwrap();
    let (c, _) = Config::load(&path).unwrap();
    assert_eq!(c.client_port_address.port(), 0);
    let msg = Config::load(&dir.path().join("absent.cfg"))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("absent.cfg"), "{msg}");
}

#[test]
fn conf_lines_match_zookeeper_dump_conf() {
    let (c, _) = parse(
        "tickTime=2000\ndataDir=/tmp/zkcfg/data\nclientPort=40341\nclientPortAddress=127.0.0.1\n",
    );
    assert_eq!(
        c.to_conf_lines(),
        vec![
            "clientPort=40341",
            "secureClientPort=-1",
            "dataDir=/tmp/zkcfg/data",
            "dataLogDir=/tmp/zkcfg/data",
            "tickTime=2000",
            "maxClientCnxns=60",
            "minSessionTimeout=4000",
            "maxSessionTimeout=40000",
            "clientPortListenBacklog=-1",
            "serverId=0",
        ]
    );
    assert_eq!(c.conf_lines_for_port(5555)[0], "clientPort=5555");
    // Relative directories are printed absolute, as File.getAbsolutePath does.
    let lines = Config::default().to_conf_lines();
    let data = lines.iter().find(|l| l.starts_with("dataDir=")).unwrap();
    assert!(data["dataDir=".len()..].starts_with('/'), "{data}");
}

// ---------------------------------------------------------------- ensembles

/// Three participants and an observer on one host, as conf/ensemble/ has them.
const ENSEMBLE: &str = "\
tickTime=2000
initLimit=10
syncLimit=5
dataDir=/d
clientPort=2181
server.1=127.0.0.1:2888:3888
server.2=127.0.0.1:2889:3889
server.3=127.0.0.1:2890:3890
server.4=127.0.0.1:2891:3891:observer
";

fn parse_myid(text: &str, myid: Option<&str>) -> (Config, Vec<String>) {
    match Config::parse_with_myid(text, "test.cfg", myid) {
        Ok(r) => r,
        Err(e) => panic!("unexpected error: {e}"),
    }
}

fn myid_err(text: &str, myid: Option<&str>) -> String {
    match Config::parse_with_myid(text, "test.cfg", myid) {
        Ok(_) => panic!("expected an error for {text:?} with myid {myid:?}"),
        Err(e) => e.to_string(),
    }
}

/// `ENSEMBLE` with `line` replacing the line that starts with its key (or added).
fn ensemble_with(line: &str) -> String {
    let key = line.split('=').next().unwrap();
    let mut out: Vec<String> = ENSEMBLE
        .lines()
        .filter(|l| l.split('=').next() != Some(key))
        .map(String::from)
        .collect();
    out.push(line.to_string());
    out.join("\n") + "\n"
}

#[test]
fn ensemble_member_reads_its_membership_and_role() {
    let (c, warnings) = parse_myid(ENSEMBLE, Some("2\n"));
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(c.is_distributed());
    assert_eq!(c.server_id, Some(2));
    assert_eq!(c.peer_type, LearnerType::Participant);
    assert_eq!((c.init_limit, c.sync_limit), (10, 5));
    let qv = c.quorum.as_ref().unwrap();
    assert_eq!(qv.voters().map(|s| s.id).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(qv.observers().map(|s| s.id).collect::<Vec<_>>(), vec![4]);
    assert_eq!(qv.version, 0);
    let me = c.my_server().unwrap();
    assert_eq!(me.quorum_addr, ("127.0.0.1".to_string(), 2889));
    assert_eq!(me.election_addr, ("127.0.0.1".to_string(), 3889));
    // No ;client part: the static clientPort, every address.
    assert_eq!(c.client_port_address, "0.0.0.0:2181".parse().unwrap());
    assert_eq!(me.client_addr, None);

    let (c, warnings) = parse_myid(&ensemble_with("peerType=observer"), Some("4"));
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(c.peer_type, LearnerType::Observer);
    assert_eq!(c.server_id, Some(4));
}

#[test]
fn ensemble_keys_and_their_system_property_spellings() {
    let text = format!(
        "{ENSEMBLE}connectToLearnerMasterLimit=3\nelectionAlg=3\nstandaloneEnabled=true\n\
         syncEnabled=false\nquorumListenOnAllIPs=true\nmultiAddress.enabled=false\n\
         zookeeper.electionPortBindRetry=0x10\nzookeeper.cnxTimeout=1500\nreconfigEnabled=false\n"
    );
    let (c, warnings) = parse_myid(&text, Some("1"));
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(c.connect_to_learner_master_limit, 3);
    assert!(!c.sync_enabled && c.quorum_listen_on_all_ips && !c.reconfig_enabled);
    assert_eq!(c.election_port_bind_retry, 16);
    assert_eq!(c.cnx_timeout_ms, 1500);
    let (c, _) = parse_myid(
        &format!("{ENSEMBLE}electionPortBindRetry=0\ncnxTimeout=0\n"),
        Some("1"),
    );
    assert_eq!((c.election_port_bind_retry, c.cnx_timeout_ms), (0, 0));
    // Both spellings are one key: the later line wins, with a warning.
    let (c, warnings) = parse_myid(
        &format!("{ENSEMBLE}cnxTimeout=100\nzookeeper.cnxTimeout=200\n"),
        Some("1"),
    );
    assert_eq!(c.cnx_timeout_ms, 200);
    assert!(warnings[0].contains("overrides"), "{warnings:?}");
}

#[test]
fn reconfig_enabled_is_accepted_with_a_warning() {
    let (c, warnings) = parse_myid(&format!("{ENSEMBLE}reconfigEnabled=true\n"), Some("1"));
    assert!(c.reconfig_enabled);
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0].starts_with("test.cfg:10: reconfigEnabled")
            && warnings[0].contains("does not support"),
        "{}",
        warnings[0]
    );
}

#[test]
fn version_key_sets_the_config_version() {
    let (c, _) = parse_myid(&format!("{ENSEMBLE}version=100000000\n"), Some("1"));
    assert_eq!(c.quorum.unwrap().version, 0x1_0000_0000);
    // Without server lines it means nothing: warned.
    let (c, warnings) = parse(&format!("{MINIMAL}version=1\n"));
    assert_eq!(c.quorum, None);
    assert!(warnings[0].contains("test.cfg:3: version"), "{warnings:?}");
}

#[test]
fn accepted_server_line_forms() {
    let text = "\
initLimit=5
syncLimit=2
dataDir=/d
server.1=[2001:db8::1]:2888:3888;[2001:db8::1]:2181
server.2=[2001:db8::2]:2888:3888:participant;2181
server.3=zk3.example.com:2888:3888:OBSERVER
server.4=zk4.example.com:2888:3888:participant
server.5=zk5.example.com:2888:3888
";
    let (c, warnings) = parse_myid(text, Some("2"));
    let qv = c.quorum.as_ref().unwrap();
    assert_eq!(qv.voter_count(), 4);
    assert!(!qv.is_voter(3));
    assert_eq!(qv.get(1).unwrap().quorum_addr.0, "2001:db8::1");
    // No clientPort at all: this server's line gives it (every address, port 2181).
    assert_eq!(c.client_port_address, "0.0.0.0:2181".parse().unwrap());
    // Four voters: ZooKeeper warns, and so does corral; it does not refuse.
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("4 participants: non-optimal configuration"));
    assert_eq!(
        qv.to_config_string(),
        "server.1=[2001:db8::1]:2888:3888:participant;[2001:db8::1]:2181\n\
         server.2=[2001:db8::2]:2888:3888:participant;0.0.0.0:2181\n\
         server.3=zk3.example.com:2888:3888:observer\n\
         server.4=zk4.example.com:2888:3888:participant\n\
         server.5=zk5.example.com:2888:3888:participant\n\
         version=0"
    );
}

#[test]
fn voter_counts_follow_zookeeper() {
    let servers = |n: u64| -> String {
        (1..=n)
            .map(|i| format!("server.{i}=127.0.0.1:{}:{}\n", 2887 + i, 3887 + i))
            .collect()
    };
    let limits = "initLimit=10\nsyncLimit=5\n";
    // Two voters: distributed, warned that no failure is tolerated.
    let (c, w) = parse_myid(&format!("{MINIMAL}{limits}{}", servers(2)), Some("1"));
    assert!(c.is_distributed());
    assert_eq!(w.len(), 1);
    assert!(w[0].contains("2 participant(s): no server failure will be tolerated"));
    // Three and five: no warning.
    for n in [3, 5] {
        let (c, w) = parse_myid(&format!("{MINIMAL}{limits}{}", servers(n)), Some("1"));
        assert!(c.is_distributed() && w.is_empty(), "{n}: {w:?}");
    }
    // Four and six: warned, accepted.
    for n in [4, 6] {
        let (c, w) = parse_myid(&format!("{MINIMAL}{limits}{}", servers(n)), Some("1"));
        assert!(c.is_distributed(), "{n}");
        assert!(w[0].contains("consider an odd number of servers"), "{w:?}");
    }
    // One voter with standaloneEnabled=false: an ensemble of one, warned.
    let (c, w) = parse_myid(
        &format!("{MINIMAL}{limits}standaloneEnabled=false\n{}", servers(1)),
        Some("1"),
    );
    assert!(c.is_distributed());
    assert!(
        w[0].contains("no server failure will be tolerated"),
        "{w:?}"
    );
    // ... which may have observers then.
    let (c, _) = parse_myid(
        &format!(
            "{MINIMAL}{limits}standaloneEnabled=false\n{}server.9=127.0.0.1:2999:3999:observer\n",
            servers(1)
        ),
        Some("9"),
    );
    assert_eq!(c.peer_type, LearnerType::Observer);
}

#[test]
fn a_lone_participant_runs_standalone() {
    let text = format!("{MINIMAL}server.1=127.0.0.1:2888:3888;127.0.0.1:2191\n");
    // Without a myid the line is not known to be this server's: clientPort applies.
    let (c, w) = parse(&text);
    assert!(!c.is_distributed());
    assert_eq!(c.client_port_address, "0.0.0.0:2181".parse().unwrap());
    assert_eq!(c.server_id, None);
    assert_eq!(w.len(), 1);
    assert!(
        w[0].starts_with("test.cfg:3: only one server is listed")
            && w[0].contains("running standalone"),
        "{w:?}"
    );
    // With myid 1 the line's client address is used, as ZooKeeper's setupClientPort.
    let text = "dataDir=/d\nserver.1=127.0.0.1:2888:3888;127.0.0.1:2191\n";
    let (c, _) = parse_myid(text, Some("1"));
    assert!(!c.is_distributed());
    assert_eq!(c.server_id, Some(1));
    assert_eq!(c.client_port_address, "127.0.0.1:2191".parse().unwrap());
    // Standalone prints what a standalone ZooKeeper prints.
    assert_eq!(c.to_conf_lines().last().unwrap(), "serverId=0");
    // No initLimit/syncLimit needed, and 0 is "not set", accepted standalone.
    let (c, _) = parse(&format!("{MINIMAL}initLimit=0\nsyncLimit=0\n"));
    assert_eq!((c.init_limit, c.sync_limit), (0, 0));
}

#[test]
fn is_distributed_as_zookeeper() {
    let is = |text: &str, myid: Option<&str>| parse_myid(text, myid).0.is_distributed();
    assert!(!is(MINIMAL, None));
    assert!(!is(&format!("{MINIMAL}server.1=a:1:2\n"), None));
    assert!(!is(
        &format!("{MINIMAL}server.1=a:1:2\nstandaloneEnabled=true\n"),
        None
    ));
    assert!(is(
        &format!("{MINIMAL}initLimit=1\nsyncLimit=1\nserver.1=a:1:2\nstandaloneEnabled=false\n"),
        Some("1")
    ));
    assert!(is(ENSEMBLE, Some("1")));
    // Observers do not count: two voters and an observer is still distributed, one
    // voter and an observer is refused below (Observers w/o quorum).
    assert!(is(
        "initLimit=1\nsyncLimit=1\ndataDir=/d\nclientPort=1\nserver.1=a:1:2\nserver.2=b:1:2\nserver.3=c:1:2:observer\n",
        Some("3")
    ));
}

#[test]
fn myid_parsing_rules() {
    let id = |myid: &str| parse_myid(ENSEMBLE, Some(myid)).0.server_id;
    assert_eq!(id("1"), Some(1));
    assert_eq!(id("3\n"), Some(3));
    assert_eq!(id("3\r\n"), Some(3));
    // Only the first line is read.
    assert_eq!(id("2\nanything at all\n"), Some(2));
    // Long.parseLong takes a plus sign.
    assert_eq!(id("+2"), Some(2));
    for bad in [
        " 1",
        "1 ",
        "1\t",
        "",
        "\n1",
        "one",
        "0x1",
        "1.0",
        "\u{feff}1",
    ] {
        let msg = myid_err(ENSEMBLE, Some(bad));
        assert!(
            msg.starts_with("/d/myid: the first line") && msg.contains("is not a number"),
            "{bad:?}: {msg}"
        );
        assert!(msg.contains("no spaces"), "{msg}");
    }
    // Not a member.
    let msg = myid_err(ENSEMBLE, Some("7"));
    assert_eq!(
        msg,
        "/d/myid: My id 7 not in the peer list: test.cfg lists server ids 1, 2, 3, 4"
    );
    let msg = myid_err(ENSEMBLE, Some("0"));
    assert!(msg.contains("My id 0 not in the peer list"), "{msg}");
    let msg = myid_err(ENSEMBLE, Some("-1"));
    assert!(msg.contains("My id -1 not in the peer list"), "{msg}");
    // Missing.
    let msg = myid_err(ENSEMBLE, None);
    assert!(
        msg.starts_with(
            "/d/myid: myid file is missing: test.cfg describes an ensemble (3 participants)"
        ),
        "{msg}"
    );
    // A standalone server needs no myid, but one that exists must be a number, as in
    // ZooKeeper (setupMyId reads it whenever the file exists).
    let (c, _) = parse_myid(MINIMAL, Some("5"));
    assert_eq!(c.server_id, None);
    let msg = myid_err(MINIMAL, Some("five"));
    assert!(
        msg.starts_with("/var/zk/myid: the first line \"five\""),
        "{msg}"
    );
}

#[test]
fn extended_types_limit_server_ids() {
    let text = "initLimit=1\nsyncLimit=1\ndataDir=/d\nclientPort=1\nextendedTypesEnabled=true\n\
                server.254=a:1:2\nserver.255=b:1:2\nserver.3=c:1:2\n";
    assert_eq!(parse_myid(text, Some("254")).0.server_id, Some(254));
    let msg = myid_err(text, Some("255"));
    assert!(
        msg.starts_with("/d/myid: server id 255 is too large") && msg.contains("254"),
        "{msg}"
    );
}

/// Asserts the error names `key` and `line` of test.cfg and contains `why`.
fn assert_refused_why(text: &str, myid: Option<&str>, key: &str, line: usize, why: &str) {
    let msg = myid_err(text, myid);
    assert!(
        msg.contains(&format!("test.cfg:{line}:")),
        "{msg:?} lacks line {line}"
    );
    assert!(msg.contains(key), "{msg:?} lacks key {key}");
    assert!(msg.contains(why), "{msg:?} lacks {why:?}");
}

#[test]
fn ensemble_refusals_name_key_line_and_reason() {
    // A server id twice, as the same key or another spelling of it.
    assert_refused_why(
        &format!("{ENSEMBLE}server.2=127.0.0.1:2892:3892\n"),
        Some("1"),
        "server.2",
        10,
        "given twice (line 7",
    );
    assert_refused_why(
        &format!("{ENSEMBLE}server.02=127.0.0.1:2892:3892\n"),
        Some("1"),
        "server.02",
        10,
        "names server id 2, as server.2 on line 7 does",
    );
    // Two members on one quorum or election address.
    assert_refused_why(
        &ensemble_with("server.3=127.0.0.1:2888:3890"),
        Some("1"),
        "server.3",
        9,
        "quorum address 127.0.0.1:2888 of server.3 is also the quorum address of server.1",
    );
    assert_refused_why(
        &ensemble_with("server.3=127.0.0.1:2890:3889"),
        Some("1"),
        "server.3",
        9,
        "election address 127.0.0.1:3889 of server.3 is also the election address of server.2",
    );
    // A member's quorum port equal to its election port.
    assert_refused_why(
        &ensemble_with("server.3=127.0.0.1:2890:2890"),
        Some("1"),
        "server.3",
        9,
        "the quorum port and the election port must differ",
    );
    // Observers with no participant.
    assert_refused_why(
        "dataDir=/d\nclientPort=1\nserver.1=a:1:2:observer\nserver.2=b:1:2:observer\n",
        None,
        "server.1",
        3,
        "Observers w/o participants is an invalid configuration",
    );
    // One participant (standalone) with observers.
    assert_refused_why(
        "dataDir=/d\nclientPort=1\nserver.1=a:1:2\nserver.2=b:1:2:observer\n",
        None,
        "server.2",
        4,
        "Observers w/o quorum is an invalid configuration",
    );
    // standaloneEnabled=false needs a participant.
    assert_refused_why(
        &format!("{MINIMAL}standaloneEnabled=false\n"),
        None,
        "standaloneEnabled",
        3,
        "needs a participant: there is no server.N line",
    );
    assert_refused_why(
        &format!("{MINIMAL}standaloneEnabled=false\nserver.1=a:1:2:observer\n"),
        None,
        "standaloneEnabled",
        3,
        "every server.N line is an observer",
    );
    // initLimit/syncLimit zero in an ensemble.
    assert_refused_why(
        &ensemble_with("initLimit=0"),
        Some("1"),
        "initLimit",
        9,
        "must be greater than 0 in an ensemble",
    );
    assert_refused_why(
        &ensemble_with("syncLimit=0"),
        Some("1"),
        "syncLimit",
        9,
        "must be greater than 0 in an ensemble",
    );
    // Hierarchical quorums beside server lines.
    assert_refused_why(
        &format!("{ENSEMBLE}group.1=1:2:3\n"),
        Some("1"),
        "group.1",
        10,
        "hierarchical quorums",
    );
    // Keys corral refuses outright.
    assert_refused_why(
        &format!("{ENSEMBLE}dynamicConfigFile=/etc/zk/zoo.cfg.dynamic.100000000\n"),
        Some("1"),
        "dynamicConfigFile",
        10,
        "not supported",
    );
    assert_refused_why(
        &format!("{ENSEMBLE}multiAddress.enabled=true\n"),
        Some("1"),
        "multiAddress.enabled",
        10,
        "does not support multiAddress",
    );
    assert_refused_why(
        &format!("{ENSEMBLE}electionAlg=0\n"),
        Some("1"),
        "electionAlg",
        10,
        "only 3",
    );
    assert_refused_why(
        &ensemble_with("server.4=127.0.0.1:2891:3891|127.0.0.2:2891:3891:observer"),
        Some("1"),
        "server.4",
        9,
        "multiAddress",
    );
}

#[test]
fn missing_limits_in_an_ensemble() {
    let without = |key: &str| {
        ENSEMBLE
            .lines()
            .filter(|l| !l.starts_with(key))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let msg = myid_err(&without("initLimit"), Some("1"));
    assert!(
        msg.starts_with("test.cfg: initLimit is not set: an ensemble (3 participants) needs it"),
        "{msg}"
    );
    let msg = myid_err(&without("syncLimit"), Some("1"));
    assert!(msg.starts_with("test.cfg: syncLimit is not set"), "{msg}");
}

#[test]
fn client_port_precedence() {
    let servers = "server.1=127.0.0.1:2888:3888;127.0.0.1:2191\nserver.2=127.0.0.1:2889:3889;2192\nserver.3=127.0.0.1:2890:3890\n";
    let base = format!("initLimit=10\nsyncLimit=5\ndataDir=/d\n{servers}");
    // No clientPort: each server's own line.
    let addr = |extra: &str, myid: &str| {
        parse_myid(&format!("{base}{extra}"), Some(myid))
            .0
            .client_port_address
    };
    assert_eq!(addr("", "1"), "127.0.0.1:2191".parse().unwrap());
    assert_eq!(addr("", "2"), "0.0.0.0:2192".parse().unwrap());
    // A clientPort that agrees with the line (same port on every address, or the same
    // address) is fine; the line's address is used.
    assert_eq!(
        addr("clientPort=2191\n", "1"),
        "127.0.0.1:2191".parse().unwrap()
    );
    assert_eq!(
        addr("clientPort=2191\nclientPortAddress=127.0.0.1\n", "1"),
        "127.0.0.1:2191".parse().unwrap()
    );
    assert_eq!(
        addr("clientPort=2192\n", "2"),
        "0.0.0.0:2192".parse().unwrap()
    );
    // clientPort=0 is "not set" to ZooKeeper: the line wins.
    assert_eq!(
        addr("clientPort=0\n", "1"),
        "127.0.0.1:2191".parse().unwrap()
    );
    // Server 3's line has no client part: clientPort/clientPortAddress.
    assert_eq!(
        addr("clientPort=2193\nclientPortAddress=127.0.0.1\n", "3"),
        "127.0.0.1:2193".parse().unwrap()
    );
    // Another server's client part never applies.
    let msg = myid_err(&base, Some("3"));
    assert_eq!(msg, "test.cfg: clientPort is not set");
    // Disagreements are refused on this server's line.
    assert_refused_why(
        &format!("{base}clientPort=2181\n"),
        Some("1"),
        "server.1",
        4,
        "this server's client address 127.0.0.1:2191 disagrees with clientPort/clientPortAddress (0.0.0.0:2181, line 7)",
    );
    assert_refused_why(
        &format!("{base}clientPort=2191\nclientPortAddress=127.0.0.2\n"),
        Some("1"),
        "server.1",
        4,
        "disagrees with clientPort/clientPortAddress (127.0.0.2:2191",
    );
    // A bare ;port means every address, which a specific clientPortAddress is not.
    assert_refused_why(
        &format!("{base}clientPort=2192\nclientPortAddress=127.0.0.1\n"),
        Some("2"),
        "server.2",
        5,
        "disagrees",
    );
    // clientPortAddress alone is refused, as ZooKeeper does.
    assert_refused_why(
        &format!("{base}clientPortAddress=127.0.0.1\n"),
        Some("1"),
        "clientPortAddress",
        7,
        "clientPortAddress is set but clientPort is not set",
    );
}

#[test]
fn peer_type_disagreement_is_warned_and_the_server_line_wins() {
    // peerType=participant on the observer.
    let (c, w) = parse_myid(&ensemble_with("peerType=participant"), Some("4"));
    assert_eq!(c.peer_type, LearnerType::Observer);
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(
        w[0],
        "test.cfg:10: peerType=participant disagrees with the server list (server.4's line makes this server observer); the server list wins, as in ZooKeeper"
    );
    // peerType=observer on a participant.
    let (c, w) = parse_myid(&ensemble_with("peerType=observer"), Some("1"));
    assert_eq!(c.peer_type, LearnerType::Participant);
    assert!(
        w[0].starts_with("test.cfg:10: peerType=observer disagrees"),
        "{w:?}"
    );
    // No peerType on the observer: ZooKeeper's default (participant) disagrees too.
    let (c, w) = parse_myid(ENSEMBLE, Some("4"));
    assert_eq!(c.peer_type, LearnerType::Observer);
    assert!(
        w[0].starts_with("test.cfg:9: peerType is not set (participant) disagrees"),
        "{w:?}"
    );
    // Case-insensitive, as ZooKeeper's toLowerCase.
    let (c, w) = parse_myid(&ensemble_with("peerType=OBSERVER"), Some("4"));
    assert_eq!(c.peer_type, LearnerType::Observer);
    assert!(w.is_empty(), "{w:?}");
}

#[test]
fn conf_lines_of_an_ensemble_member() {
    let (c, _) = parse_myid(
        &format!("{ENSEMBLE}clientPortAddress=127.0.0.1\n"),
        Some("2"),
    );
    let lines = c.conf_lines_for_port(2181);
    let tail: Vec<&str> = lines.iter().skip(8).map(String::as_str).collect();
    assert_eq!(
        tail,
        vec![
            "clientPortListenBacklog=-1",
            "serverId=2",
            "initLimit=10",
            "syncLimit=5",
            "electionAlg=3",
            "electionPort=3889",
            "quorumPort=2889",
            "peerType=0",
            "membership: ",
            "server.1=127.0.0.1:2888:3888:participant",
            "server.2=127.0.0.1:2889:3889:participant",
            "server.3=127.0.0.1:2890:3890:participant",
            "server.4=127.0.0.1:2891:3891:observer",
            "version=0",
        ]
    );
    let (c, _) = parse_myid(&ensemble_with("peerType=observer"), Some("4"));
    assert!(c.to_conf_lines().contains(&"peerType=1".to_string()));
}

#[test]
fn ensemble_files_in_conf_describe_one_ensemble() {
    let files = [
        include_str!("../../conf/ensemble/zoo1.cfg"),
        include_str!("../../conf/ensemble/zoo2.cfg"),
        include_str!("../../conf/ensemble/zoo3.cfg"),
        include_str!("../../conf/ensemble/zoo4.cfg"),
    ];
    let mut membership = None;
    for (i, text) in files.iter().enumerate() {
        let n = i as u64 + 1;
        let name = format!("conf/ensemble/zoo{n}.cfg");
        assert!(
            text.lines().next().unwrap().starts_with('#') && text.contains(&format!("echo {n} >")),
            "{name} must say what it is and what myid holds"
        );
        let (c, warnings) = Config::parse_with_myid(text, &name, Some(&format!("{n}\n")))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(warnings.is_empty(), "{name}: {warnings:?}");
        assert!(c.is_distributed(), "{name}");
        assert_eq!(c.server_id, Some(n));
        let role = if n == 4 {
            LearnerType::Observer
        } else {
            LearnerType::Participant
        };
        assert_eq!(c.peer_type, role, "{name}");
        assert_eq!(
            c.client_port_address,
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 2180 + n as u16)
        );
        assert_eq!(c.data_dir, PathBuf::from(format!("./data/ensemble/{n}")));
        assert_eq!((c.tick_time, c.init_limit, c.sync_limit), (2000, 10, 5));
        for w in ["srvr", "stat", "mntr", "conf", "ruok"] {
            assert!(c.four_letter_allowed(w), "{name}: {w}");
        }
        let me = c.my_server().unwrap();
        assert_eq!(me.quorum_addr, ("127.0.0.1".to_string(), 2887 + n as u16));
        assert_eq!(me.election_addr, ("127.0.0.1".to_string(), 3887 + n as u16));
        let qv = c.quorum.unwrap();
        match &membership {
            None => membership = Some(qv),
            Some(first) => assert_eq!(&qv, first, "{name} lists other members"),
        }
    }
    let qv = membership.unwrap();
    assert_eq!(qv.voter_count(), 3);
    assert_eq!(qv.observers().map(|s| s.id).collect::<Vec<_>>(), vec![4]);
}

#[test]
fn load_reads_myid_beside_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(
        &cfg,
        ENSEMBLE.replace("dataDir=/d", &format!("dataDir={}", data.display())),
    )
    .unwrap();
    let msg = Config::load(&cfg).unwrap_err().to_string();
    assert!(
        msg.starts_with(&format!(
            "{}: myid file is missing",
            data.join("myid").display()
        )),
        "{msg}"
    );
    std::fs::write(data.join("myid"), "3\n").unwrap();
    let (c, _) = Config::load(&cfg).unwrap();
    assert_eq!(c.server_id, Some(3));
    // A directory named myid is no myid file, as Java's isFile says.
    std::fs::remove_file(data.join("myid")).unwrap();
    std::fs::create_dir(data.join("myid")).unwrap();
    let msg = Config::load(&cfg).unwrap_err().to_string();
    assert!(msg.contains("myid file is missing"), "{msg}");
}

#[test]
fn prometheus_provider_defaults_to_zookeepers_endpoint() {
    let (c, warnings) = parse(MINIMAL);
    assert_eq!(c.metrics_provider, None);
    assert!(warnings.is_empty());
    let (c, warnings) = parse(&format!(
        "{MINIMAL}metricsProvider.className={PROMETHEUS_PROVIDER_CLASS}\n"
    ));
    assert!(warnings.is_empty(), "{warnings:?}");
    let p = c.metrics_provider.expect("prometheus provider");
    assert_eq!(p.addr, "0.0.0.0:7000".parse().unwrap());
    assert!(p.export_jvm_info);
}

#[test]
fn prometheus_provider_keys() {
    // The keys may come before the class name; the short name is corral's own.
    let (c, warnings) = parse(&format!(
        "{MINIMAL}metricsProvider.httpPort=7001\nmetricsProvider.httpHost=127.0.0.1\n\
         metricsProvider.exportJvmInfo=false\nmetricsProvider.numWorkerThreads=4\n\
         metricsProvider.className=prometheus\n"
    ));
    assert!(warnings.is_empty(), "{warnings:?}");
    let p = c.metrics_provider.expect("prometheus provider");
    assert_eq!(p.addr, "127.0.0.1:7001".parse().unwrap());
    assert!(!p.export_jvm_info);
    // exportJvmInfo=true is accepted, and said to export nothing.
    let (c, warnings) = parse(&format!(
        "{MINIMAL}metricsProvider.className=prometheus\nmetricsProvider.exportJvmInfo=true\n"
    ));
    assert!(c.metrics_provider.is_some());
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("test.cfg:4") && warnings[0].contains("no JVM"));
}

#[test]
fn default_metrics_providers_serve_no_endpoint() {
    let (c, warnings) = parse(&format!(
        "{MINIMAL}metricsProvider.className=org.apache.zookeeper.metrics.impl.DefaultMetricsProvider\n"
    ));
    assert_eq!(c.metrics_provider, None);
    assert!(warnings.is_empty(), "{warnings:?}");
    // The Prometheus keys alone change nothing, and say so.
    let (c, warnings) = parse(&format!("{MINIMAL}metricsProvider.httpPort=7001\n"));
    assert_eq!(c.metrics_provider, None);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("test.cfg:3") && warnings[0].contains("no effect"));
}

#[test]
fn bad_metrics_provider_values_are_refused() {
    let e = parse_err(&format!(
        "{MINIMAL}metricsProvider.className=com.example.MyProvider\n"
    ));
    assert!(
        e.contains("test.cfg:3") && e.contains("unknown metrics provider"),
        "{e}"
    );
    let e = parse_err(&format!(
        "{MINIMAL}metricsProvider.className=prometheus\nmetricsProvider.httpPort=70000\n"
    ));
    assert!(e.contains("test.cfg:4") && e.contains("httpPort"), "{e}");
    let e = parse_err(&format!("{MINIMAL}metricsProvider.exportJvmInfo=yes\n"));
    assert!(e.contains("exportJvmInfo"), "{e}");
    let e = parse_err(&format!("{MINIMAL}metricsProvider.maxQueueSize=lots\n"));
    assert!(e.contains("maxQueueSize"), "{e}");
    // Other metricsProvider keys are unknown to both, and warned as before.
    let (_, warnings) = parse(&format!("{MINIMAL}metricsProvider.httpsPort=7443\n"));
    assert!(warnings[0].contains("httpsPort") && warnings[0].contains("not supported"));
}

/// `forceSync` means what it means to ZooKeeper's FileTxnLog: fsync is off only for
/// exactly "no" (`!"no".equals(value)`), so "NO", "false" or "off" keep it on (with a
/// warning, since they were probably meant to turn it off).
#[test]
fn force_sync_is_off_only_for_exactly_no() {
    let cfg = |v: &str| parse(&format!("{MINIMAL}forceSync={v}\n"));
    assert!(parse(MINIMAL).0.force_sync, "on when absent");
    let (c, w) = cfg("no");
    assert!(!c.force_sync);
    assert!(w.is_empty(), "{w:?}");
    let (c, w) = cfg("yes");
    assert!(c.force_sync);
    assert!(w.is_empty(), "{w:?}");
    // java_trim, as Properties values: " no " is "no".
    assert!(!cfg("  no  ").0.force_sync);
    for v in ["NO", "No", "false", "off", "0", "true", "maybe"] {
        let (c, w) = cfg(v);
        assert!(c.force_sync, "forceSync={v} must leave fsync on");
        assert_eq!(w.len(), 1, "{v}: {w:?}");
        assert!(w[0].contains("fsync stays on") && w[0].contains(v), "{w:?}");
    }
    // The later line wins, as in a Properties table.
    let (c, _) = parse(&format!("{MINIMAL}forceSync=yes\nforceSync=no\n"));
    assert!(!c.force_sync);
}

#[test]
fn operator_keys() {
    let (c, w) = parse(MINIMAL);
    assert!(w.is_empty());
    assert_eq!(c.fsync_warning_threshold_ms, 1000);
    assert_eq!(c.sessionless_cnxn_timeout_ms, 10_000);
    assert_eq!(c.log_format, LogFormat::Text);
    assert_eq!(c.log_level, None);
    let (c, w) = parse(&format!(
        "{MINIMAL}fsync.warningthresholdms=50\nnio.sessionlessCnxnTimeout=2500\n\
         corral.logFormat=JSON\ncorral.logLevel=corral=debug,warn\n"
    ));
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(c.fsync_warning_threshold_ms, 50);
    assert_eq!(c.sessionless_cnxn_timeout_ms, 2500);
    assert_eq!(c.log_format, LogFormat::Json);
    assert_eq!(c.log_level.as_deref(), Some("corral=debug,warn"));
    // ZooKeeper's system-property spellings.
    let (c, w) = parse(&format!(
        "{MINIMAL}zookeeper.fsync.warningthresholdms=7\nzookeeper.nio.sessionlessCnxnTimeout=0x10\n"
    ));
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(c.fsync_warning_threshold_ms, 7);
    assert_eq!(c.sessionless_cnxn_timeout_ms, 16);
    for (key, value) in [
        ("fsync.warningthresholdms", "-1"),
        ("fsync.warningthresholdms", "1s"),
        ("nio.sessionlessCnxnTimeout", "0"),
        ("zookeeper.nio.sessionlessCnxnTimeout", "ten"),
        ("corral.logFormat", "xml"),
        ("corral.logLevel", ""),
    ] {
        assert_refused(&format!("{MINIMAL}{key}={value}\n"), key, 3);
    }
    let sample = include_str!("../../conf/zoo.cfg.sample");
    for key in [
        "nio.sessionlessCnxnTimeout",
        "fsync.warningthresholdms",
        "corral.logFormat",
        "corral.logLevel",
    ] {
        assert!(sample.contains(&format!("#{key}=")), "sample lacks {key}");
    }
}

/// `logAppendsInFlight`: 1 to `MAX_APPENDS_IN_FLIGHT`, that maximum by default.
#[test]
fn log_appends_in_flight_is_bounded_by_what_recovery_allows() {
    let max = crate::storage::log::MAX_APPENDS_IN_FLIGHT;
    assert_eq!(parse(MINIMAL).0.log_appends_in_flight, max);
    assert_eq!(
        parse(&format!("{MINIMAL}logAppendsInFlight=1\n"))
            .0
            .log_appends_in_flight,
        1
    );
    for value in ["0", "-1", &(max + 1).to_string(), "many"] {
        assert_refused(
            &format!("{MINIMAL}logAppendsInFlight={value}\n"),
            "logAppendsInFlight",
            3,
        );
    }
}

/// `pinShards`: explicit either way; unset, not pinned, standalone or in an ensemble.
#[test]
fn shards_are_pinned_only_when_asked() {
    let pinned = |text: &str, myid: Option<&str>| parse_myid(text, myid).0.shards_pinned();
    assert!(!pinned(MINIMAL, None), "standalone");
    assert!(pinned(&format!("{MINIMAL}pinShards=true\n"), None));
    assert!(!pinned(ENSEMBLE, Some("1")), "three members on loopback");
    assert!(pinned(&format!("{ENSEMBLE}pinShards=true\n"), Some("1")));
    let apart = "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=/d\nclientPort=2181\n\
                 server.1=zk1.example:2888:3888\nserver.2=zk2.example:2888:3888\n\
                 server.3=10.0.0.3:2888:3888\n";
    assert!(!pinned(apart, Some("1")));
    assert!(pinned(&format!("{apart}pinShards=true\n"), Some("1")));
    assert!(!pinned(&format!("{apart}pinShards=false\n"), Some("1")));
    assert!(Config::parse_with_myid(&format!("{MINIMAL}pinShards=maybe\n"), "t", None).is_err());
}

/// `shards`: explicit wins; unset, the cores divided among the ensemble's members on
/// this host (observers counted), at least one.
#[test]
fn shards_default_to_the_cores_shared_among_members_on_the_host() {
    let count = |text: &str, myid: Option<&str>, cpus| parse_myid(text, myid).0.shard_count(cpus);
    assert_eq!(count(MINIMAL, None, 8), 8, "standalone: every core");
    assert_eq!(count(MINIMAL, None, 1), 1);
    // Three voters and an observer, all on loopback.
    assert_eq!(count(ENSEMBLE, Some("1"), 2), 1, "four members, two cores");
    assert_eq!(count(ENSEMBLE, Some("2"), 8), 2);
    assert_eq!(count(ENSEMBLE, Some("4"), 64), 16);
    assert_eq!(count(&format!("{ENSEMBLE}shards=4\n"), Some("1"), 2), 4);
    let apart = "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=/d\nclientPort=2181\n\
                 server.1=zk1.example:2888:3888\nserver.2=zk2.example:2888:3888\n\
                 server.3=10.0.0.3:2888:3888\nserver.4=10.0.0.3:2889:3889:observer\n";
    assert_eq!(count(apart, Some("1"), 16), 16, "alone on its host");
    assert_eq!(
        count(apart, Some("3"), 16),
        8,
        "an observer on the same host"
    );
    assert_eq!(count(apart, Some("4"), 16), 8);
    let c = parse_myid(apart, Some("4")).0;
    assert_eq!(c.members_on_this_host(), 2);
}
