//! Four-letter word output compared with what a real ZooKeeper 3.8.0 (Debian package,
//! standalone, `4lw.commands.whitelist=*`) answered. Setup of the capture: kazoo
//! session A (timeout 15 s) created /app/a, ephemerals /app/eph1 and /app/eph2, watched
//! /app/a (getData), /app (children) and /nope (exists); session B (30 s) created the
//! ephemeral /z2eph and watched /app/a. The expected strings are the captured replies;
//! the views hold the numbers the server had at that moment.

use super::*;

/// The version string the captured server reported.
const ZK_VERSION: &str = "3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC";
const SID_A: i64 = 0x10000088a300000;
const SID_B: i64 = 0x10000088a300001;

fn conn_a() -> ConnectionInfo {
    ConnectionInfo {
        remote: "127.0.0.1:58530".parse().unwrap(),
        interest_ops: 1,
        outstanding_requests: 0,
        packets_received: 11,
        packets_sent: 11,
        session_id: SID_A,
        last_operation: "EXIS".into(),
        established_ms: 1795307140346,
        session_timeout: 15000,
        last_cxid: 0xa,
        last_zxid: 0x5,
        last_response_time: 571279,
        last_latency: 0,
        // avglat = total / count in whole ms: 22 / 11 = 2.
        latency: LatencyStats {
            min: 0,
            max: 7,
            total: 22,
            count: 11,
        },
        expires_at_ms: Some(1795307159000),
    }
}

fn conn_b() -> ConnectionInfo {
    ConnectionInfo {
        remote: "127.0.0.1:58544".parse().unwrap(),
        interest_ops: 1,
        outstanding_requests: 0,
        packets_received: 3,
        packets_sent: 3,
        session_id: SID_B,
        last_operation: "GETD".into(),
        established_ms: 1795307140426,
        session_timeout: 30000,
        last_cxid: 0x2,
        last_zxid: 0x7,
        last_response_time: 571299,
        last_latency: 0,
        latency: LatencyStats {
            min: 0,
            max: 4,
            total: 5,
            count: 3,
        },
        expires_at_ms: Some(1795307179000),
    }
}

/// The connection sending the four-letter word: no session yet.
fn conn_4lw(port: u16, expires_at_ms: Option<i64>) -> ConnectionInfo {
    ConnectionInfo {
        remote: SocketAddr::from(([127, 0, 0, 1], port)),
        interest_ops: 0,
        outstanding_requests: 0,
        packets_received: 1,
        packets_sent: 0,
        session_id: 0,
        last_operation: "NA".into(),
        established_ms: 0,
        session_timeout: 0,
        last_cxid: -1,
        last_zxid: -1,
        last_response_time: 0,
        last_latency: 0,
        latency: LatencyStats::default(),
        expires_at_ms,
    }
}

fn view() -> AdminView {
    AdminView {
        running: true,
        version: ZK_VERSION.into(),
        stats: ServerStats {
            packets_received: 16,
            packets_sent: 15,
            // 33 ms over 14 requests: avg 2.3571.
            latency: LatencyStats {
                min: 0,
                max: 7,
                total: 33,
                count: 14,
            },
            outstanding_requests: 0,
            last_processed_zxid: 7,
            num_alive_connections: 3,
            node_count: 10,
            server_state: "standalone".into(),
            read_only: false,
        },
        connections: vec![],
        data_watches: vec![
            SessionWatches {
                session_id: SID_A,
                paths: vec!["/app/a".into(), "/nope".into()],
            },
            SessionWatches {
                session_id: SID_B,
                paths: vec!["/app/a".into()],
            },
        ],
        watch_count: 4,
        watches_summary: None,
        sessions: vec![
            SessionExpiry {
                session_id: SID_B,
                expires_at_ms: 1795307171000,
            },
            SessionExpiry {
                session_id: SID_A,
                expires_at_ms: 1795307157000,
            },
        ],
        session_count: 2,
        ephemerals: vec![
            SessionEphemerals {
                session_id: SID_A,
                paths: vec!["/app/eph1".into(), "/app/eph2".into()],
            },
            SessionEphemerals {
                session_id: SID_B,
                paths: vec!["/z2eph".into()],
            },
        ],
        ephemerals_count: 3,
        approximate_data_size: 81,
        data_dir_size: 67109337,
        log_dir_size: 67109337,
        conf_lines: vec![
            "clientPort=40341".into(),
            "secureClientPort=-1".into(),
            "dataDir=/tmp/zkcfg/data/version-2".into(),
            "dataLogDir=/tmp/zkcfg/data/version-2".into(),
            "tickTime=2000".into(),
            "maxClientCnxns=60".into(),
            "minSessionTimeout=4000".into(),
            "maxSessionTimeout=40000".into(),
            "clientPortListenBacklog=-1".into(),
            "serverId=0".into(),
        ],
        env: vec![
            ("zookeeper.version".into(), ZK_VERSION.into()),
            ("host.name".into(), "localhost".into()),
            ("os.name".into(), "Linux".into()),
        ],
        uptime_ms: 15614,
        open_file_descriptor_count: 44,
        max_file_descriptor_count: 20000,
        client_response_size: BufferStats {
            last: 88,
            min: 16,
            max: 88,
        },
        auth_failed_count: 0,
        extra_metrics: vec![],
    }
}

#[test]
fn ruok_and_isro() {
    assert_eq!(four_letter("ruok", &view()), "imok");
    assert_eq!(four_letter("isro", &view()), "rw");
    let mut v = view();
    v.stats.read_only = true;
    assert_eq!(four_letter("isro", &v), "ro");
    v.running = false;
    assert_eq!(four_letter("isro", &v), "null");
    assert_eq!(four_letter("ruok", &v), "imok");
}

#[test]
fn srvr_matches_zookeeper() {
    assert_eq!(
        four_letter("srvr", &view()),
        "Zookeeper version: 3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC\nLatency min/avg/max: 0/2.3571/7\nReceived: 16\nSent: 15\nConnections: 3\nOutstanding: 0\nZxid: 0x7\nMode: standalone\nNode count: 10\n"
    );
    // After srst ZooKeeper printed an empty latency as 0/0.0/0.
    let mut v = view();
    v.stats.latency = LatencyStats::default();
    v.stats.packets_received = 1;
    v.stats.packets_sent = 1;
    assert_eq!(
        four_letter("srvr", &v),
        "Zookeeper version: 3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC\nLatency min/avg/max: 0/0.0/0\nReceived: 1\nSent: 1\nConnections: 3\nOutstanding: 0\nZxid: 0x7\nMode: standalone\nNode count: 10\n"
    );
}

#[test]
fn stat_matches_zookeeper() {
    let mut v = view();
    v.stats.packets_received = 17;
    v.stats.packets_sent = 16;
    v.connections = vec![conn_a(), conn_b(), conn_4lw(58576, None)];
    assert_eq!(
        four_letter("stat", &v),
        "Zookeeper version: 3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC\nClients:\n /127.0.0.1:58530[1](queued=0,recved=11,sent=11)\n /127.0.0.1:58544[1](queued=0,recved=3,sent=3)\n /127.0.0.1:58576[0](queued=0,recved=1,sent=0)\n\nLatency min/avg/max: 0/2.3571/7\nReceived: 17\nSent: 16\nConnections: 3\nOutstanding: 0\nZxid: 0x7\nMode: standalone\nNode count: 10\n"
    );
}

#[test]
fn read_only_line_in_srvr() {
    let mut v = view();
    v.stats.read_only = true;
    let out = four_letter("srvr", &v);
    assert!(out.starts_with(&format!(
        "Zookeeper version: {ZK_VERSION}\nREAD-ONLY mode; serving only read-only clients\nLatency"
    )));
}

#[test]
fn conf_matches_zookeeper() {
    assert_eq!(
        four_letter("conf", &view()),
        "clientPort=40341\nsecureClientPort=-1\ndataDir=/tmp/zkcfg/data/version-2\ndataDirSize=67109337\ndataLogDir=/tmp/zkcfg/data/version-2\ndataLogSize=67109337\ntickTime=2000\nmaxClientCnxns=60\nminSessionTimeout=4000\nmaxSessionTimeout=40000\nclientPortListenBacklog=-1\nserverId=0\n"
    );
}

#[test]
fn conf_from_config_has_zookeeper_keys() {
    let (c, _) = crate::config::Config::parse(
        "tickTime=2000\ndataDir=/tmp/zkcfg/data\nclientPort=0\n",
        "t",
    )
    .unwrap();
    let v = AdminView {
        conf_lines: c.conf_lines_for_port(40341),
        ..view()
    };
    let keys: Vec<String> = four_letter("conf", &v)
        .lines()
        .map(|l| l.split('=').next().unwrap().to_string())
        .collect();
    assert_eq!(
        keys,
        [
            "clientPort",
            "secureClientPort",
            "dataDir",
            "dataDirSize",
            "dataLogDir",
            "dataLogSize",
            "tickTime",
            "maxClientCnxns",
            "minSessionTimeout",
            "maxSessionTimeout",
            "clientPortListenBacklog",
            "serverId"
        ]
    );
}

#[test]
fn cons_matches_zookeeper() {
    let mut v = view();
    v.connections = vec![conn_4lw(58592, None), conn_a(), conn_b()];
    assert_eq!(
        four_letter("cons", &v),
        " /127.0.0.1:58592[0](queued=0,recved=1,sent=0)\n /127.0.0.1:58530[1](queued=0,recved=11,sent=11,sid=0x10000088a300000,lop=EXIS,est=1795307140346,to=15000,lcxid=0xa,lzxid=0x5,lresp=571279,llat=0,minlat=0,avglat=2,maxlat=7)\n /127.0.0.1:58544[1](queued=0,recved=3,sent=3,sid=0x10000088a300001,lop=GETD,est=1795307140426,to=30000,lcxid=0x2,lzxid=0x7,lresp=571299,llat=0,minlat=0,avglat=1,maxlat=4)\n\n"
    );
}

#[test]
fn cons_after_crst_matches_zookeeper() {
    // crst sets counters to 0, lop to NA, lcxid/lzxid to -1 (lcxid then disappears).
    let reset = |c: ConnectionInfo| ConnectionInfo {
        packets_received: 0,
        packets_sent: 0,
        last_operation: "NA".into(),
        last_cxid: -1,
        last_zxid: -1,
        last_response_time: 0,
        last_latency: 0,
        latency: LatencyStats::default(),
        ..c
    };
    let mut v = view();
    v.connections = vec![conn_4lw(58768, None), reset(conn_a()), reset(conn_b())];
    assert_eq!(four_letter("crst", &v), "Connection stats reset.\n");
    assert_eq!(
        four_letter("cons", &v),
        " /127.0.0.1:58768[0](queued=0,recved=1,sent=0)\n /127.0.0.1:58530[1](queued=0,recved=0,sent=0,sid=0x10000088a300000,lop=NA,est=1795307140346,to=15000,lzxid=0xffffffffffffffff,lresp=0,llat=0,minlat=0,avglat=0,maxlat=0)\n /127.0.0.1:58544[1](queued=0,recved=0,sent=0,sid=0x10000088a300001,lop=NA,est=1795307140426,to=30000,lzxid=0xffffffffffffffff,lresp=0,llat=0,minlat=0,avglat=0,maxlat=0)\n\n"
    );
    assert_eq!(four_letter("srst", &v), "Server stats reset.\n");
}

#[test]
fn wchs_wchc_wchp_match_zookeeper() {
    let v = view();
    assert_eq!(
        four_letter("wchs", &v),
        "2 connections watching 2 paths\nTotal watches:3\n"
    );
    assert_eq!(
        four_letter("wchc", &v),
        "0x10000088a300000\n\t/app/a\n\t/nope\n0x10000088a300001\n\t/app/a\n\n"
    );
    // ZooKeeper lists a path's watchers in hash order (B before A in the capture);
    // corral lists them in session order. Same lines, same shape.
    let out = four_letter("wchp", &v);
    assert_eq!(
        out,
        "/app/a\n\t0x10000088a300000\n\t0x10000088a300001\n/nope\n\t0x10000088a300000\n\n"
    );
    let zk = "/app/a\n\t0x10000088a300001\n\t0x10000088a300000\n/nope\n\t0x10000088a300000\n\n";
    let mut a: Vec<&str> = out.lines().collect();
    let mut b: Vec<&str> = zk.lines().collect();
    a.sort_unstable();
    b.sort_unstable();
    assert_eq!(a, b);
    // No watches at all.
    let empty = AdminView {
        data_watches: vec![],
        ..view()
    };
    assert_eq!(
        four_letter("wchs", &empty),
        "0 connections watching 0 paths\nTotal watches:0\n"
    );
    assert_eq!(four_letter("wchc", &empty), "\n");
    assert_eq!(four_letter("wchp", &empty), "\n");
    // A connection whose one-shot watches all fired still counts, as in ZooKeeper.
    let mut v = view();
    v.data_watches.push(SessionWatches {
        session_id: 0x55,
        paths: vec![],
    });
    assert_eq!(
        four_letter("wchs", &v),
        "3 connections watching 2 paths\nTotal watches:3\n"
    );
    assert!(four_letter("wchc", &v).ends_with("\t/app/a\n0x55\n\n"));
    // The server's counters, when it has them, are what wchs prints.
    v.watches_summary = Some(crate::watch::WatchesSummary {
        num_connections: 7,
        num_paths: 5,
        total_watches: 11,
    });
    assert_eq!(
        four_letter("wchs", &v),
        "7 connections watching 5 paths\nTotal watches:11\n"
    );
}

#[test]
fn dump_matches_zookeeper() {
    let mut v = view();
    v.connections = vec![conn_a(), conn_4lw(58624, Some(1795307159000)), conn_b()];
    assert_eq!(
        four_letter("dump", &v),
        "SessionTracker dump:\nSession Sets (2)/(2):\n1 expire at Sun Nov 22 00:25:57 UTC 2026:\n\t0x10000088a300000\n1 expire at Sun Nov 22 00:26:11 UTC 2026:\n\t0x10000088a300001\nephemeral nodes dump:\nSessions with Ephemerals (2):\n0x10000088a300000:\n\t/app/eph1\n\t/app/eph2\n0x10000088a300001:\n\t/z2eph\nConnections dump:\nConnections Sets (2)/(3):\n2 expire at Sun Nov 22 00:25:59 UTC 2026:\n\tip: /127.0.0.1:58530 sessionId: 0x10000088a300000\n\tip: /127.0.0.1:58624 sessionId: 0x0\n1 expire at Sun Nov 22 00:26:19 UTC 2026:\n\tip: /127.0.0.1:58544 sessionId: 0x10000088a300001\n"
    );
}

#[test]
fn dirs_matches_zookeeper() {
    assert_eq!(
        four_letter("dirs", &view()),
        "datadir_size: 67109337\nlogdir_size: 67109337\n"
    );
}

#[test]
fn envi_shape_matches_zookeeper() {
    assert_eq!(
        four_letter("envi", &view()),
        "Environment:\nzookeeper.version=3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC\nhost.name=localhost\nos.name=Linux\n"
    );
    let facts = EnvFacts {
        host_name: "h".into(),
        shards: 2,
        ..EnvFacts::default()
    };
    let env = env_entries(&full_version("2025-01-01 00:00 UTC"), &facts);
    assert_eq!(env[0].0, "zookeeper.version");
    assert_eq!(env[1], ("host.name".to_string(), "h".to_string()));
    assert_eq!(env[2], ("os.name".to_string(), "<NA>".to_string()));
    assert!(env.contains(&("corral.shards".to_string(), "2".to_string())));
}

#[test]
fn mntr_prints_zookeeper_keys() {
    let mut v = view();
    v.stats.packets_received = 21;
    v.stats.packets_sent = 20;
    let out = four_letter("mntr", &v);
    // The first lines of the capture, in its order (ZooKeeper's hash order).
    let zk = "zk_version\t3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC\nzk_server_state\tstandalone\nzk_ephemerals_count\t3\nzk_num_alive_connections\t3\nzk_avg_latency\t2.3571\nzk_outstanding_requests\t0\nzk_znode_count\t10\nzk_global_sessions\t2\nzk_non_mtls_remote_conn_count\t0\nzk_last_client_response_size\t88\nzk_packets_sent\t20\nzk_packets_received\t21\nzk_max_client_response_size\t88\nzk_connection_drop_probability\t0.0\nzk_watch_count\t4\nzk_auth_failed_count\t0\nzk_min_latency\t0\nzk_max_file_descriptor_count\t20000\nzk_approximate_data_size\t81\nzk_open_file_descriptor_count\t44\nzk_local_sessions\t0\nzk_uptime\t15614\nzk_max_latency\t7\nzk_outstanding_tls_handshake\t0\nzk_min_client_response_size\t16\nzk_non_mtls_local_conn_count\t0\n";
    assert_eq!(out, zk);
    // Every line is key<TAB>value, as monitoring scripts split it.
    assert!(out
        .lines()
        .all(|l| l.starts_with("zk_") && l.split('\t').count() == 2));
}

#[test]
fn mntr_extra_metrics_follow_in_summary_style() {
    let mut v = view();
    v.extra_metrics = summary_metrics(
        "fsynctime",
        &Summary {
            min: 0,
            max: 4,
            count: 7,
            sum: 10,
            percentiles: Some([1, 4, 4, 4]),
        },
    );
    v.extra_metrics
        .push(("corral_shards".into(), MetricValue::Int(2)));
    let out = four_letter("mntr", &v);
    assert!(out.ends_with(
        "zk_avg_fsynctime\t1.4286\nzk_min_fsynctime\t0\nzk_max_fsynctime\t4\nzk_cnt_fsynctime\t7\nzk_sum_fsynctime\t10\nzk_p50_fsynctime\t1\nzk_p95_fsynctime\t4\nzk_p99_fsynctime\t4\nzk_p999_fsynctime\t4\nzk_corral_shards\t2\n"
    ), "{out}");
}

#[test]
fn not_serving_and_whitelist_replies() {
    let v = AdminView {
        running: false,
        ..view()
    };
    for cmd in [
        "srvr", "stat", "conf", "cons", "mntr", "wchs", "wchc", "wchp", "dump", "dirs", "crst",
        "srst",
    ] {
        assert_eq!(
            four_letter(cmd, &v),
            "This ZooKeeper instance is not currently serving requests\n",
            "{cmd}"
        );
    }
    assert!(four_letter("envi", &v).starts_with("Environment:\n"));
    // As a ZooKeeper started with 4lw.commands.whitelist=ruok, stat answered.
    assert_eq!(
        not_in_whitelist("mntr"),
        "mntr is not executed because it is not in the whitelist.\n"
    );
    assert_eq!(
        not_in_whitelist("conf"),
        "conf is not executed because it is not in the whitelist.\n"
    );
}

#[test]
fn unknown_words() {
    assert!(!is_four_letter_word("xyzw"));
    assert!(is_four_letter_word("mntr"));
    assert_eq!(four_letter("xyzw", &view()), "");
}

#[test]
fn version_string_reads_as_zookeeper_to_clients() {
    let v = full_version("2025-01-01 12:00 UTC");
    assert_eq!(
        v,
        format!("3.8.4-corral-{CORRAL_VERSION}, built on 2025-01-01 12:00 UTC")
    );
    // kazoo's server_version(): leading digits and dots of zookeeper.version.
    let digits: String = v
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    assert_eq!(digits, "3.8.4");
}

#[test]
fn detail_needed_per_word() {
    assert!(Detail::for_command("cons").connections);
    assert!(!Detail::for_command("cons").sessions);
    assert!(Detail::for_command("wchp").data_watches);
    // wchs reads the counters, not the listing.
    assert!(!Detail::for_command("wchs").data_watches);
    let d = Detail::for_command("dump");
    assert!(d.connections && d.sessions && d.ephemerals && !d.data_watches);
    assert_eq!(Detail::for_command("srvr"), Detail::default());
}

#[test]
fn last_op_names() {
    use crate::proto::consts::OpCode;
    assert_eq!(last_op_name(OpCode::GetData as i32), "GETD");
    assert_eq!(last_op_name(OpCode::Exists as i32), "EXIS");
    assert_eq!(last_op_name(OpCode::Ping as i32), "PING");
    assert_eq!(last_op_name(OpCode::CreateSession as i32), "SESS");
    assert_eq!(last_op_name(OpCode::CreateTtl as i32), "CREA");
    assert_eq!(last_op_name(OpCode::GetChildren2 as i32), "GETC");
    assert_eq!(last_op_name(9999), "NA");
}
