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
    let (c, warnings) = Config::parse(&uncommented, "all.cfg").unwrap();
    assert_eq!(c.shards, Some(4));
    assert_eq!(c.servers.len(), 3);
    for w in &warnings {
        assert!(
            w.contains("secureClientPort") || w.contains("ensemble") || w.contains("overrides"),
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
    assert_eq!(c.init_limit, None);
    assert!(c.servers.is_empty());
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
fn ensemble_keys_are_kept_and_warned() {
    let (c, warnings) = parse(&format!(
        "{MINIMAL}initLimit=10\nsyncLimit=5\nserver.2=b:2888:3888\nserver.1=a:2888:3888:participant;2181\nserver.3=[::1]:2888:3888:observer\n"
    ));
    assert_eq!(c.init_limit, Some(10));
    assert_eq!(c.sync_limit, Some(5));
    assert_eq!(
        c.servers.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(c.servers[0].spec, "a:2888:3888:participant;2181");
    assert_eq!(warnings.len(), 5);
    assert!(warnings.iter().all(|w| w.contains("standalone")));
}

#[test]
fn secure_client_port_is_warned_unsupported() {
    let (c, warnings) = parse(&format!("{MINIMAL}secureClientPort=2281\n"));
    assert_eq!(c.secure_client_port, Some(2281));
    assert!(warnings[0].contains("secureClientPort") && warnings[0].contains("not supported"));
    assert!(c
        .to_conf_lines()
        .contains(&"secureClientPort=2281".to_string()));
}

#[test]
fn admin_enable_server_true_is_warned() {
    let (c, warnings) = parse(&format!("{MINIMAL}admin.enableServer=true\n"));
    assert!(c.admin_enable_server);
    assert!(warnings[0].contains("AdminServer"));
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
        ("forceSync", "maybe"),
        ("admin.enableServer", "yes"),
        ("admin.serverPort", "80800"),
        ("znode.container.checkIntervalMs", "0"),
        ("znode.container.maxPerMinute", "lots"),
        ("znode.container.maxNeverUsedIntervalMs", "-3"),
        ("initLimit", "ten"),
        ("syncLimit", "0"),
        ("server.x", "a:1:2"),
        ("server.1", "a:1"),
        ("server.1", "a:1:2:leader"),
        ("server.1", "a:99999:2"),
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
