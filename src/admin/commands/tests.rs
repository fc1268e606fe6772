//! The AdminServer's commands: routing, names, JSON shape and layout, auth, limits.
//! The shapes were checked against Debian's ZooKeeper 3.8 answering the same requests
//! (and `tests/admin_server.rs` compares both servers' key sets end to end).

use super::*;
use crate::admin::{SessionEphemerals, SessionExpiry, SessionWatches};

fn config(text: &str) -> Config {
    Config::parse(text, "t.cfg").expect("valid config").0
}

fn facts(config: &Config) -> Facts<'_> {
    Facts {
        view: AdminView::default(),
        config,
        client_port: 2181,
        quorum: None,
        last_snapshot: None,
        trace_mask: DEFAULT_TRACE_MASK,
        digest: None,
    }
}

fn keys(j: &Json) -> Vec<&str> {
    match j {
        Json::Obj(f) => f.iter().map(|(k, _)| k.as_str()).collect(),
        _ => panic!("not an object: {j:?}"),
    }
}

fn field<'a>(j: &'a Json, key: &str) -> &'a Json {
    match j {
        Json::Obj(f) => &f.iter().find(|(k, _)| k == key).expect(key).1,
        _ => panic!("not an object"),
    }
}

fn run_named(name: &str, kwargs: &[(&str, &str)], f: &Facts) -> Json {
    let kw = kwargs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    run(lookup(name).expect(name), &kw, f).to_json()
}

#[test]
fn every_name_and_alias_of_zookeeper_resolves() {
    let names = [
        ("ruok", "ruok"),
        ("monitor", "monitor"),
        ("mntr", "monitor"),
        ("server_stats", "server_stats"),
        ("srvr", "server_stats"),
        ("stats", "stats"),
        ("stat", "stats"),
        ("configuration", "configuration"),
        ("conf", "configuration"),
        ("config", "configuration"),
        ("connections", "connections"),
        ("cons", "connections"),
        ("dump", "dump"),
        ("environment", "environment"),
        ("env", "environment"),
        ("envi", "environment"),
        ("dirs", "dirs"),
        ("watches", "watches"),
        ("wchc", "watches"),
        ("watches_by_path", "watches_by_path"),
        ("wchp", "watches_by_path"),
        ("watch_summary", "watch_summary"),
        ("wchs", "watch_summary"),
        ("is_read_only", "is_read_only"),
        ("isro", "is_read_only"),
        ("leader", "leader"),
        ("lead", "leader"),
        ("voting_view", "voting_view"),
        ("zabstate", "zabstate"),
        ("observers", "observers"),
        ("obsr", "observers"),
        ("last_snapshot", "last_snapshot"),
        ("lsnp", "last_snapshot"),
        ("initial_configuration", "initial_configuration"),
        ("icfg", "initial_configuration"),
        ("hash", "hash"),
        ("system_properties", "system_properties"),
        ("sysp", "system_properties"),
        ("stat_reset", "stat_reset"),
        ("srst", "stat_reset"),
        ("connection_stat_reset", "connection_stat_reset"),
        ("crst", "connection_stat_reset"),
        (
            "observer_connection_stat_reset",
            "observer_connection_stat_reset",
        ),
        ("orst", "observer_connection_stat_reset"),
        ("get_trace_mask", "get_trace_mask"),
        ("gtmk", "get_trace_mask"),
        ("set_trace_mask", "set_trace_mask"),
        ("stmk", "set_trace_mask"),
        ("snapshot", "snapshot"),
        ("snap", "snapshot"),
        ("restore", "restore"),
        ("rest", "restore"),
    ];
    for (name, primary) in names {
        assert_eq!(lookup(name).map(|c| c.primary()), Some(primary), "{name}");
    }
    assert!(lookup("RUOK").is_none() && lookup("nope").is_none());
    assert_eq!(COMMANDS.len(), 28);
}

#[test]
fn the_command_list_is_zookeepers_links() {
    let links = command_links("/commands");
    assert!(links.starts_with(
        "<a href=\"/commands/configuration\">configuration</a>\n<br/>\n\
         <a href=\"/commands/connection_stat_reset\">connection_stat_reset</a>\n<br/>\n"
    ));
    assert!(links.ends_with("<a href=\"/commands/zabstate\">zabstate</a>\n<br/>\n"));
    assert_eq!(links.matches("<br/>").count(), COMMANDS.len());
}

#[test]
fn routes() {
    let r = |m, p| route(m, p, "/commands");
    assert_eq!(r("GET", "/commands"), Route::Links);
    assert_eq!(r("GET", "/commands/"), Route::Links);
    assert_eq!(r("POST", "/commands"), Route::Links);
    assert_eq!(
        r("GET", "/commands/ruok"),
        Route::Run {
            name: "ruok".into(),
            post: false
        }
    );
    assert_eq!(
        r("HEAD", "/commands/mntr"),
        Route::Run {
            name: "mntr".into(),
            post: false
        }
    );
    assert_eq!(
        r("POST", "/commands/restore"),
        Route::Run {
            name: "restore".into(),
            post: true
        }
    );
    // Jetty strips only the leading slash: "//" asks for the command "/".
    assert_eq!(
        r("GET", "/commands//"),
        Route::Run {
            name: "/".into(),
            post: false
        }
    );
    assert_eq!(r("GET", "/commandsx"), Route::NotFound);
    assert_eq!(r("GET", "/"), Route::NotFound);
    assert_eq!(r("PUT", "/commands/ruok"), Route::MethodNotAllowed);
    assert_eq!(r("DELETE", "/commands/ruok"), Route::MethodNotAllowed);
    assert_eq!(r("TRACE", "/commands/ruok"), Route::Forbidden);
    assert_eq!(r("OPTIONS", "/commands/ruok"), Route::Options);
    assert_eq!(r("PATCH", "/commands/ruok"), Route::NotImplemented);
    assert_eq!(r("BREW", "/commands/ruok"), Route::NotImplemented);
    // commandURL=/ serves every command at the root.
    assert_eq!(
        route("GET", "/ruok", ""),
        Route::Run {
            name: "ruok".into(),
            post: false
        }
    );
    assert_eq!(route("GET", "/", ""), Route::Links);
}

#[test]
fn jackson_layout() {
    let j = Json::Obj(vec![
        ("a".into(), Json::Int(1)),
        ("b".into(), Json::Arr(vec![])),
        ("c".into(), Json::Obj(vec![])),
        ("d".into(), Json::Arr(vec![Json::Int(1), Json::str("x")])),
        (
            "e".into(),
            Json::Arr(vec![Json::Obj(vec![("f".into(), Json::Float(0.0))])]),
        ),
        ("g".into(), Json::str("q\"\\\n\u{1}é")),
        ("h".into(), Json::Null),
    ]);
    assert_eq!(
        j.to_pretty(),
        "{\n  \"a\" : 1,\n  \"b\" : [ ],\n  \"c\" : { },\n  \"d\" : [ 1, \"x\" ],\n  \"e\" : [ {\n    \"f\" : 0.0\n  } ],\n  \"g\" : \"q\\\"\\\\\\n\\u0001é\",\n  \"h\" : null\n}"
    );
    // What ZooKeeper answers to ruok, byte for byte.
    let c = config("dataDir=/d\nclientPort=1\n");
    let f = facts(&c);
    assert_eq!(
        run(lookup("ruok").unwrap(), &BTreeMap::new(), &f).body(),
        "{\n  \"command\" : \"ruok\",\n  \"error\" : null\n}"
    );
    // Every command answers an object ending in `command` and `error` (parsed as JSON
    // end to end by tests/admin_server.rs; serde_json is kept out of the library's
    // tests, where its `PartialEq` impls for integers upset type inference elsewhere).
    for cmd in COMMANDS {
        let j = run(cmd, &BTreeMap::new(), &f).to_json();
        let k = keys(&j);
        assert!(k.contains(&"command") && k.contains(&"error"), "{k:?}");
    }
}

#[test]
fn unknown_and_not_serving() {
    let u = unknown_command("nosuch");
    assert_eq!(u.status, 200);
    assert_eq!(
        u.body(),
        "{\n  \"command\" : \"nosuch\",\n  \"error\" : \"Unknown command: nosuch\"\n}"
    );
    let c = config("dataDir=/d\nclientPort=1\n");
    let mut f = facts(&c);
    f.view.running = false;
    let j = run_named("srvr", &[], &f);
    assert_eq!(
        field(&j, "error"),
        &Json::str("This ZooKeeper instance is not currently serving requests")
    );
    // Commands that need no server still answer.
    let j = run_named("mntr", &[], &f);
    assert_eq!(field(&j, "error"), &Json::Null);
    assert_eq!(field(&j, "server_state"), &Json::str("standalone"));
}

#[test]
fn standalone_shapes_are_zookeepers() {
    let c = config("dataDir=/d\nclientPort=1\ntickTime=200\n");
    let mut f = facts(&c);
    f.view.stats.node_count = 5;
    let j = run_named("srvr", &[], &f);
    assert_eq!(
        keys(&j),
        [
            "version",
            "read_only",
            "server_stats",
            "client_response",
            "node_count",
            "command",
            "error"
        ]
    );
    assert_eq!(
        keys(field(&j, "server_stats")),
        [
            "packets_sent",
            "packets_received",
            "fsync_threshold_exceed_count",
            "client_response_stats",
            "data_dir_size",
            "log_dir_size",
            "provider_null",
            "server_state",
            "last_processed_zxid",
            "outstanding_requests",
            "avg_latency",
            "max_latency",
            "min_latency",
            "num_alive_client_connections",
            "auth_failed_count",
            "non_mtlsremote_conn_count",
            "non_mtlslocal_conn_count",
            "uptime"
        ]
    );
    assert_eq!(field(&j, "node_count"), &Json::Int(5));
    let j = run_named("conf", &[], &f);
    assert_eq!(
        keys(&j),
        [
            "client_port",
            "data_dir",
            "data_log_dir",
            "tick_time",
            "max_client_cnxns",
            "min_session_timeout",
            "max_session_timeout",
            "server_id",
            "client_port_listen_backlog",
            "command",
            "error"
        ]
    );
    assert_eq!(field(&j, "min_session_timeout"), &Json::Int(400));
    let j = run_named("lead", &[], &f);
    assert_eq!(keys(&j), ["error", "command"]);
    assert_eq!(field(&j, "error"), &Json::str("server is not initialized"));
    let j = run_named("zabstate", &[], &f);
    assert_eq!(keys(&j), ["voting", "zabstate", "command", "error"]);
    let j = run_named("voting_view", &[], &f);
    assert_eq!(field(&j, "current_config"), &Json::Obj(vec![]));
    let j = run_named("lsnp", &[], &f);
    assert_eq!(field(&j, "zxid"), &Json::str("ffffffffffffffff"));
    assert_eq!(field(&j, "timestamp"), &Json::Int(-1));
    let j = run_named("icfg", &[], &f);
    assert_eq!(
        field(&j, "initial_configuration"),
        &Json::str("dataDir=/d\nclientPort=1\ntickTime=200\n")
    );
    let j = run_named("sysp", &[], &f);
    assert!(keys(&j).contains(&"zookeeper.admin.serverPort"));
}

#[test]
fn sessions_watches_and_connections() {
    let c = config("dataDir=/d\nclientPort=1\n");
    let mut f = facts(&c);
    f.view.sessions = vec![
        SessionExpiry {
            session_id: 7,
            expires_at_ms: 1000,
        },
        SessionExpiry {
            session_id: 8,
            expires_at_ms: 1000,
        },
    ];
    f.view.ephemerals = vec![SessionEphemerals {
        session_id: 7,
        paths: vec!["/e".into()],
    }];
    f.view.data_watches = vec![
        SessionWatches {
            session_id: 7,
            paths: vec!["/b".into(), "/a".into()],
        },
        SessionWatches {
            session_id: 8,
            paths: vec!["/a".into()],
        },
    ];
    f.view.connections = vec![ConnectionInfo {
        remote: "127.0.0.1:5000".parse().unwrap(),
        interest_ops: 1,
        outstanding_requests: 0,
        packets_received: 4,
        packets_sent: 4,
        session_id: 7,
        last_operation: "EXIS".into(),
        established_ms: 99,
        session_timeout: 4000,
        last_cxid: 3,
        last_zxid: 2,
        last_response_time: 5,
        last_latency: 1,
        latency: Default::default(),
        expires_at_ms: None,
    }];
    let j = run_named("dump", &[], &f);
    assert_eq!(
        field(&j, "expiry_time_to_session_ids"),
        &Json::Obj(vec![(
            "1000".into(),
            Json::Arr(vec![Json::Int(7), Json::Int(8)])
        )])
    );
    assert_eq!(
        field(&j, "session_id_to_ephemeral_paths"),
        &Json::Obj(vec![("7".into(), Json::Arr(vec![Json::str("/e")]))])
    );
    let j = run_named("wchc", &[], &f);
    assert_eq!(
        field(field(&j, "session_id_to_watched_paths"), "7"),
        &Json::Arr(vec![Json::str("/a"), Json::str("/b")])
    );
    let j = run_named("wchp", &[], &f);
    assert_eq!(
        field(field(&j, "path_to_session_ids"), "/a"),
        &Json::Arr(vec![Json::Int(7), Json::Int(8)])
    );
    let j = run_named("wchs", &[], &f);
    assert_eq!(field(&j, "num_connections"), &Json::Int(2));
    assert_eq!(field(&j, "num_paths"), &Json::Int(2));
    assert_eq!(field(&j, "num_total_watches"), &Json::Int(3));
    let j = run_named("cons", &[], &f);
    let Json::Arr(conns) = field(&j, "connections") else {
        panic!()
    };
    assert_eq!(keys(&conns[0]).len(), 16);
    assert_eq!(
        field(&conns[0], "remote_socket_address"),
        &Json::str("127.0.0.1:5000")
    );
    let j = run_named("stat", &[], &f);
    let Json::Arr(conns) = field(&j, "connections") else {
        panic!()
    };
    assert_eq!(
        keys(&conns[0]),
        [
            "remote_socket_address",
            "interest_ops",
            "outstanding_requests",
            "packets_received",
            "packets_sent"
        ]
    );
}

#[test]
fn trace_mask_and_effects() {
    let c = config("dataDir=/d\nclientPort=1\n");
    let f = facts(&c);
    assert_eq!(
        field(&run_named("gtmk", &[], &f), "tracemask"),
        &Json::Int(306)
    );
    let j = run_named("stmk", &[], &f);
    assert_eq!(keys(&j), ["error", "command"]);
    let j = run_named("stmk", &[("traceMask", "abc")], &f);
    assert_eq!(
        field(&j, "error"),
        &Json::str("setTraceMask requires long traceMask argument, got abc")
    );
    let j = run_named("stmk", &[("traceMask", "0")], &f);
    assert_eq!(field(&j, "tracemask"), &Json::Int(0));
    let kw = |v: &str| BTreeMap::from([("traceMask".to_string(), v.to_string())]);
    let stmk = lookup("stmk").unwrap();
    assert_eq!(effect(stmk, &kw("12")), Effect::SetTraceMask(12));
    assert_eq!(effect(stmk, &kw("0x1")), Effect::None);
    assert_eq!(
        effect(lookup("srst").unwrap(), &BTreeMap::new()),
        Effect::ResetServerStats
    );
    assert_eq!(
        effect(lookup("crst").unwrap(), &BTreeMap::new()),
        Effect::ResetConnectionStats
    );
}

#[test]
fn ensemble_shapes() {
    let c = Config::parse_with_myid(
        "dataDir=/d\nclientPort=2181\nclientPortAddress=127.0.0.1\ninitLimit=5\nsyncLimit=2\n\
         server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889\n\
         server.3=127.0.0.1:2890:3890:observer\n",
        "t.cfg",
        Some("1"),
    )
    .expect("valid")
    .0;
    let mut f = facts(&c);
    f.view.stats.last_processed_zxid = (3 << 32) | 5;
    f.quorum = Some(QuorumFacts {
        mode: "leader".into(),
        zab_state: "broadcast".into(),
        leader: Some(1),
        synced_observers: 1,
    });
    let j = run_named("lead", &[], &f);
    assert_eq!(field(&j, "is_leader"), &Json::Bool(true));
    assert_eq!(field(&j, "leader_id"), &Json::Int(1));
    assert_eq!(field(&j, "leader_ip"), &Json::str("127.0.0.1"));
    let j = run_named("voting_view", &[], &f);
    let cc = field(&j, "current_config");
    assert_eq!(keys(cc), ["1", "2"]);
    assert_eq!(
        keys(field(cc, "1")),
        [
            "server_addresses",
            "election_addresses",
            "client_address",
            "learner_type"
        ]
    );
    assert_eq!(
        field(field(cc, "1"), "client_address"),
        &Json::str("127.0.0.1:2181")
    );
    assert_eq!(field(field(cc, "2"), "client_address"), &Json::str(""));
    let j = run_named("zabstate", &[], &f);
    assert_eq!(field(&j, "myid"), &Json::Int(1));
    assert_eq!(field(&j, "last_zxid"), &Json::str("0x300000005"));
    assert_eq!(field(&j, "zab_epoch"), &Json::Int(3));
    assert_eq!(field(&j, "zab_counter"), &Json::Int(5));
    assert_eq!(field(&j, "voting"), &Json::Bool(true));
    assert_eq!(
        field(field(&j, "quorum_address"), "one"),
        &Json::str("127.0.0.1:2888")
    );
    let j = run_named("obsr", &[], &f);
    assert_eq!(field(&j, "synced_observers"), &Json::Int(1));
    let j = run_named("srvr", &[], &f);
    assert!(keys(&j).contains(&"proposal_stats"));
    let j = run_named("conf", &[], &f);
    assert_eq!(field(&j, "server_id"), &Json::Int(1));
}

#[test]
fn auth_for_snapshot() {
    use crate::acl::AuthProviders;
    let anyone = |perms| Acl {
        perms,
        id: Id {
            scheme: "world".into(),
            id: "anyone".into(),
        },
    };
    let p = AuthProviders::default();
    let all = crate::proto::consts::perms::ALL;
    assert_eq!(
        check_auth(None, "127.0.0.1", &p, &[anyone(all)]),
        Err((401, "Auth info is missing for the command"))
    );
    assert_eq!(
        check_auth(Some("digest u:p"), "127.0.0.1", &p, &[anyone(all)]),
        Ok(())
    );
    assert_eq!(
        check_auth(Some("digest u:p"), "127.0.0.1", &p, &[anyone(1)]),
        Err((403, "Not authorized"))
    );
    assert_eq!(
        check_auth(Some("ip"), "127.0.0.1", &p, &[anyone(all)]),
        Ok(())
    );
    assert_eq!(
        check_auth(Some("sasl x"), "127.0.0.1", &p, &[anyone(all)]),
        Err((401, "Not authenticated"))
    );
    assert_eq!(
        check_auth(Some("digest a b c"), "127.0.0.1", &p, &[anyone(all)]),
        Err((401, "Not authenticated"))
    );
    // A digest user holding ALL on / may.
    let digest = crate::acl::generate_digest("u:p");
    let acl = [Acl {
        perms: all,
        id: Id {
            scheme: "digest".into(),
            id: digest,
        },
    }];
    assert_eq!(check_auth(Some("digest u:p"), "1.2.3.4", &p, &acl), Ok(()));
    assert_eq!(
        check_auth(Some("digest u:q"), "1.2.3.4", &p, &acl),
        Err((403, "Not authorized"))
    );
}

#[test]
fn snapshot_gates_and_rate_limit() {
    let c = config("dataDir=/d\nclientPort=1\n");
    let mut l = RateLimiter::new(1000);
    assert_eq!(snapshot_refusal(&c, &mut l, 0).map(|r| r.status), Some(503));
    let c = config("dataDir=/d\nclientPort=1\nadmin.snapshot.enabled=true\n");
    assert_eq!(snapshot_refusal(&c, &mut l, 0), None);
    assert_eq!(
        snapshot_refusal(&c, &mut l, 999).map(|r| r.status),
        Some(429)
    );
    assert_eq!(snapshot_refusal(&c, &mut l, 1000), None);
    let status = |r: Option<CommandResponse>| r.map(|r| r.status);
    let mut l = RateLimiter::new(1000);
    assert_eq!(status(restore_refusal(&c, false, &mut l, 0)), Some(503));
    let c = config("dataDir=/d\nclientPort=1\nadmin.restore.enabled=true\n");
    // An ensemble member refuses before taking the limiter's turn.
    assert_eq!(status(restore_refusal(&c, true, &mut l, 0)), Some(500));
    assert_eq!(restore_refusal(&c, false, &mut l, 0), None);
    assert_eq!(status(restore_refusal(&c, false, &mut l, 999)), Some(429));
    assert_eq!(restore_refusal(&c, false, &mut l, 1000), None);
    assert_eq!(restore_failed("x").status, 500);
    let r = restored(0x1_0000_0005);
    assert_eq!(
        r.body(),
        "{\n  \"last_zxid\" : 4294967301,\n  \"command\" : \"restore\",\n  \"error\" : null\n}"
    );
}

#[test]
fn decoding() {
    assert_eq!(percent_decode("/commands/r%75ok", false), "/commands/ruok");
    assert_eq!(percent_decode("a+b%2", true), "a b%2");
    assert_eq!(percent_decode("%zz%", false), "%zz%");
    assert_eq!(percent_decode("%ff", false), "\u{fffd}");
    let q = query_params(Some("traceMask=306&x&traceMask=1&a%20b=c+d"));
    assert_eq!(q.get("traceMask").map(String::as_str), Some("306"));
    assert_eq!(q.get("x").map(String::as_str), Some(""));
    assert_eq!(q.get("a b").map(String::as_str), Some("c d"));
    assert!(query_params(None).is_empty());
}
