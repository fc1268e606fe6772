//! Replays every fuzz target's corpus (`fuzz/corpus/<target>/`, the fuzzers' minimised
//! corpora with every crash they found) through the same `corral::fuzzing` functions the
//! cargo-fuzz targets call, on stable Rust, with allocation counted as under the fuzzers.
//! A missing or empty corpus fails: a replay of nothing would prove nothing.
//!
//! `cargo test --test fuzz_corpus -- --ignored write_seeds` rewrites the hand-made seeds
//! (`seed-*` files) from valid encodings; see `fuzz/README.md`.

use std::path::{Path, PathBuf};

use bytes::{BufMut, Bytes, BytesMut};
use corral::fuzzing;

#[global_allocator]
static ALLOC: fuzzing::CountingAlloc = fuzzing::CountingAlloc;

type Target = fn(&[u8]);

const TARGETS: &[(&str, Target)] = &[
    ("client_frame", fuzzing::client_frame),
    ("client_request", fuzzing::client_request),
    ("client_multi", fuzzing::client_multi),
    ("quorum_packet", fuzzing::quorum_packet),
    ("quorum_txn", fuzzing::quorum_txn),
    ("election", fuzzing::election),
    ("snap_stream", fuzzing::snap_stream),
    ("storage_txn", fuzzing::storage_txn),
    ("txn_log_recovery", fuzzing::txn_log_recovery),
    ("snapshot_load", fuzzing::snapshot_load),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn replay(name: &str) {
    let f = TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f)
        .expect("a known target");
    let dir = fuzz_dir().join("corpus").join(name);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {} is missing: {e}", dir.display()))
        .map(|e| e.expect("a readable corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "corpus {} is empty", dir.display());
    for p in &files {
        let data = std::fs::read(p).expect("a readable corpus file");
        let r = std::panic::catch_unwind(|| f(&data));
        assert!(r.is_ok(), "{name} failed on {}", p.display());
    }
    eprintln!("{name}: {} corpus files replayed", files.len());
}

#[test]
fn client_frame() {
    replay("client_frame");
}

#[test]
fn client_request() {
    replay("client_request");
}

#[test]
fn client_multi() {
    replay("client_multi");
}

#[test]
fn quorum_packet() {
    replay("quorum_packet");
}

#[test]
fn quorum_txn() {
    replay("quorum_txn");
}

#[test]
fn election() {
    replay("election");
}

#[test]
fn snap_stream() {
    replay("snap_stream");
}

#[test]
fn storage_txn() {
    replay("storage_txn");
}

#[test]
fn txn_log_recovery() {
    replay("txn_log_recovery");
}

#[test]
fn snapshot_load() {
    replay("snapshot_load");
}

/// Every cargo-fuzz target is replayed here, and nothing here lacks a target.
#[test]
fn every_fuzz_target_is_replayed() {
    let mut targets: Vec<String> = std::fs::read_dir(fuzz_dir().join("fuzz_targets"))
        .expect("fuzz/fuzz_targets")
        .filter_map(|e| {
            let p = e.ok()?.path();
            (p.extension()? == "rs").then(|| p.file_stem()?.to_str().map(str::to_owned))?
        })
        .collect();
    targets.sort();
    let mut known: Vec<String> = TARGETS.iter().map(|(n, _)| n.to_string()).collect();
    known.sort();
    assert_eq!(targets, known);
}

// ---- seeds ---------------------------------------------------------------------------

mod seeds {
    use super::*;
    use corral::proto::*;
    use corral::quorum::wire::{self, InitialMessage, LearnerInfo, Notification, QuorumPacket};
    use corral::quorum::{zk_txn, ServerState};
    use corral::request::txn::{Txn, TxnHeader};
    use corral::storage::backend::SimBackend;
    use corral::storage::snapshot::{write_snapshot, SnapshotNode, StatFields};
    use corral::storage::txn_codec;
    use corral::tree::DataTree;

    fn acl() -> Vec<Acl> {
        vec![
            Acl {
                perms: 31,
                id: Id {
                    scheme: "world".into(),
                    id: "anyone".into(),
                },
            },
            Acl {
                perms: 1,
                id: Id {
                    scheme: "digest".into(),
                    id: "u:hash=".into(),
                },
            },
        ]
    }

    fn s(v: &str) -> String {
        v.to_string()
    }

    pub fn requests() -> Vec<Request> {
        let create = CreateRequest {
            path: s("/a"),
            data: Bytes::from_static(b"data"),
            acl: acl(),
            flags: 3,
        };
        let ops = vec![
            MultiOp::Create {
                op: OpCode::Create2,
                req: create.clone(),
            },
            MultiOp::CreateTtl(CreateTtlRequest {
                path: s("/t"),
                data: Bytes::new(),
                acl: acl(),
                flags: 5,
                ttl: 100,
            }),
            MultiOp::Delete(DeleteRequest {
                path: s("/b"),
                version: -1,
            }),
            MultiOp::SetData(SetDataRequest {
                path: s("/c"),
                data: Bytes::from_static(b"x"),
                version: 2,
            }),
            MultiOp::Check(CheckVersionRequest {
                path: s("/d"),
                version: 1,
            }),
        ];
        let reads = vec![
            MultiOp::GetChildren(GetChildrenRequest {
                path: s("/e"),
                watch: false,
            }),
            MultiOp::GetData(GetDataRequest {
                path: s("/f"),
                watch: true,
            }),
        ];
        let watches = vec![s("/w1"), s("/w2")];
        vec![
            Request::Create {
                op: OpCode::Create,
                req: create.clone(),
            },
            Request::Create {
                op: OpCode::CreateContainer,
                req: create,
            },
            Request::CreateTtl(CreateTtlRequest {
                path: s("/ttl"),
                data: Bytes::from_static(b"t"),
                acl: acl(),
                flags: 6,
                ttl: 1000,
            }),
            Request::Delete(DeleteRequest {
                path: s("/a"),
                version: 0,
            }),
            Request::Exists(ExistsRequest {
                path: s("/a"),
                watch: true,
            }),
            Request::GetData(GetDataRequest {
                path: s("/a"),
                watch: false,
            }),
            Request::SetData(SetDataRequest {
                path: s("/a"),
                data: Bytes::from_static(b"new"),
                version: -1,
            }),
            Request::GetAcl(GetAclRequest { path: s("/a") }),
            Request::SetAcl(SetAclRequest {
                path: s("/a"),
                acl: acl(),
                version: 0,
            }),
            Request::GetChildren(GetChildrenRequest {
                path: s("/"),
                watch: true,
            }),
            Request::GetChildren2(GetChildren2Request {
                path: s("/"),
                watch: false,
            }),
            Request::Sync(SyncRequest { path: s("/") }),
            Request::Ping,
            Request::Check(CheckVersionRequest {
                path: s("/a"),
                version: 3,
            }),
            Request::Multi(MultiRequest { ops }),
            Request::MultiRead(MultiRequest { ops: reads }),
            Request::Reconfig(ReconfigRequest {
                joining_servers: s("server.4=h:1:2"),
                leaving_servers: s("3"),
                new_members: s(""),
                cur_config_id: -1,
            }),
            Request::CheckWatches(CheckWatchesRequest {
                path: s("/a"),
                r#type: 1,
            }),
            Request::RemoveWatches(RemoveWatchesRequest {
                path: s("/a"),
                r#type: 3,
            }),
            Request::Auth(AuthPacket {
                r#type: 0,
                scheme: s("digest"),
                auth: Bytes::from_static(b"u:p"),
            }),
            Request::SetWatches(SetWatches {
                relative_zxid: 5,
                data_watches: watches.clone(),
                exist_watches: watches.clone(),
                child_watches: vec![],
            }),
            Request::SetWatches2(SetWatches2 {
                relative_zxid: 5,
                data_watches: watches.clone(),
                exist_watches: vec![],
                child_watches: watches.clone(),
                persistent_watches: watches.clone(),
                persistent_recursive_watches: watches,
            }),
            Request::Sasl(GetSaslRequest {
                token: Bytes::from_static(b"tok"),
            }),
            Request::GetEphemerals(GetEphemeralsRequest {
                prefix_path: s("/"),
            }),
            Request::GetAllChildrenNumber(GetAllChildrenNumberRequest { path: s("/") }),
            Request::AddWatch(AddWatchRequest {
                path: s("/a"),
                mode: 1,
            }),
            Request::WhoAmI,
            Request::CloseSession,
        ]
    }

    pub fn txns() -> Vec<(OpCode, Txn)> {
        vec![
            (OpCode::CreateSession, Txn::CreateSession { timeout: 30000 }),
            (
                OpCode::Create,
                Txn::Create {
                    path: s("/a"),
                    data: Bytes::from_static(b"d"),
                    acl: acl(),
                    ephemeral_owner: 0,
                    parent_cversion: 1,
                },
            ),
            (
                OpCode::Create2,
                Txn::Create {
                    path: s("/a/e"),
                    data: Bytes::new(),
                    acl: acl(),
                    ephemeral_owner: 0x77,
                    parent_cversion: 1,
                },
            ),
            (
                OpCode::SetData,
                Txn::SetData {
                    path: s("/a"),
                    data: Bytes::from_static(b"v"),
                    version: 1,
                },
            ),
            (
                OpCode::SetAcl,
                Txn::SetAcl {
                    path: s("/a"),
                    acl: acl(),
                    version: 1,
                },
            ),
            (
                OpCode::Multi,
                Txn::Multi(vec![
                    (
                        OpCode::Create,
                        Txn::Create {
                            path: s("/m"),
                            data: Bytes::new(),
                            acl: acl(),
                            ephemeral_owner: 0,
                            parent_cversion: 2,
                        },
                    ),
                    (
                        OpCode::Check,
                        Txn::Check {
                            path: s("/m"),
                            version: 0,
                        },
                    ),
                    (OpCode::Delete, Txn::Delete { path: s("/m") }),
                ]),
            ),
            (
                OpCode::Multi,
                Txn::Multi(vec![
                    (OpCode::Error, Txn::Error(ErrorCode::Ok)),
                    (OpCode::Error, Txn::Error(ErrorCode::NoNode)),
                    (OpCode::Error, Txn::Error(ErrorCode::RuntimeInconsistency)),
                ]),
            ),
            (OpCode::Delete, Txn::Delete { path: s("/a/e") }),
            (OpCode::Error, Txn::Error(ErrorCode::NodeExists)),
            (OpCode::CloseSession, Txn::CloseSession),
        ]
    }

    fn hdr(zxid: i64, op: OpCode) -> TxnHeader {
        TxnHeader {
            client_id: 0x77,
            cxid: zxid as i32,
            zxid,
            time: 1_700_000_000_000 + zxid,
            op,
        }
    }

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut v = (body.len() as i32).to_be_bytes().to_vec();
        v.extend_from_slice(body);
        v
    }

    fn sample_tree() -> DataTree {
        let mut t = DataTree::new();
        let nodes = [
            ("/a", 0),
            ("/a/b", 0),
            ("/a/c", 0x55),
            ("/z", 0),
            ("/zookeeper/quota/a", 0),
        ];
        for (z, (p, owner)) in (1..).zip(nodes) {
            t.create_node(p, Bytes::from_static(b"data"), &acl(), owner, -1, z, z)
                .expect("create");
        }
        t.add_session(0x55, 30000);
        t
    }

    pub fn write(target: &str, name: &str, data: &[u8]) {
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join(format!("seed-{name}")), data).expect("write seed");
    }

    pub fn client(requests: &[Request]) {
        let connect = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            time_out: 30000,
            session_id: 0,
            passwd: Bytes::from_static(&[0; 16]),
            read_only: Some(false),
        };
        let mut stream = vec![0x41u8];
        stream.extend(frame(&connect.to_bytes()));
        for (i, r) in requests.iter().enumerate() {
            let mut body = BytesMut::new();
            let typ = zk_txn::encode_request(r, &mut body);
            let mut f = RequestHeader {
                xid: i as i32 + 1,
                r#type: typ,
            }
            .to_bytes();
            f.extend_from_slice(&body);
            stream.extend(frame(&f));
            let mut one = vec![0u8];
            one.extend(frame(&connect.to_bytes()));
            one.extend(frame(&f));
            write("client_frame", &format!("req-{i}"), &one);

            let mut cr = ((typ + 11) as u32).to_be_bytes().to_vec();
            cr.extend_from_slice(&body);
            write("client_request", &format!("{i}"), &cr);
            if let Request::Multi(m) | Request::MultiRead(m) = r {
                write("client_multi", &format!("req-{i}"), &m.to_bytes());
            }
        }
        write("client_frame", "session", &stream);
        write("client_frame", "ruok", b"\x00ruok");
        let old = ConnectRequest {
            read_only: None,
            session_id: 0x1234,
            last_zxid_seen: 9,
            ..connect
        };
        let mut v = vec![0u8];
        v.extend(frame(&old.to_bytes()));
        write("client_frame", "old-connect", &v);
        for (op, body) in [(-10, 30000i32.to_be_bytes().to_vec()), (20, b"/c".to_vec())] {
            let mut cr = ((op + 11) as u32).to_be_bytes().to_vec();
            cr.extend(body);
            write("client_request", &format!("fwd{op}"), &cr);
        }
        let stat = Stat {
            czxid: 1,
            mzxid: 2,
            version: 3,
            ..Default::default()
        };
        let resp = MultiResponse {
            results: vec![
                OpResult::Create { path: s("/a") },
                OpResult::Create2 {
                    path: s("/b"),
                    stat,
                },
                OpResult::Delete,
                OpResult::SetData { stat },
                OpResult::Check,
                OpResult::GetChildren {
                    children: vec![s("x"), s("y")],
                },
                OpResult::GetData {
                    data: Bytes::from_static(b"d"),
                    stat,
                },
                OpResult::Error(ErrorCode::NoNode),
            ],
        };
        write("client_multi", "resp", &resp.to_bytes());
    }

    pub fn quorum(requests: &[Request]) {
        let mut txn_payloads = Vec::new();
        for (i, (op, t)) in txns().into_iter().enumerate() {
            let h = hdr(0x1_0000_0001 + i as i64, op);
            let mut out = BytesMut::new();
            zk_txn::encode_txn(&h, &t, &[s("/a/e")], Some(i as i64 * 77), &mut out);
            write("quorum_txn", &format!("{i}"), &out);
            let mut no_digest = BytesMut::new();
            zk_txn::encode_txn(&h, &t, &[], None, &mut no_digest);
            write("quorum_txn", &format!("{i}-nodigest"), &no_digest);
            txn_payloads.push(out.freeze());
            write(
                "storage_txn",
                &format!("{i}"),
                &txn_codec::txn_to_bytes(&h, &t),
            );
        }
        let li = LearnerInfo {
            server_id: 2,
            protocol_version: wire::PROTOCOL_VERSION,
            config_version: 0x1_0000_0000,
        };
        let mut packets = vec![
            QuorumPacket::new(wire::FOLLOWERINFO, 0x1_0000_0000, Some(li.to_bytes())),
            QuorumPacket::new(
                wire::LEADERINFO,
                0x2_0000_0000,
                Some(wire::leader_info_data(wire::PROTOCOL_VERSION)),
            ),
            QuorumPacket::new(wire::ACKEPOCH, 5, Some(wire::ack_epoch_data(Some(1)))),
            QuorumPacket::new(wire::DIFF, 5, None),
            QuorumPacket::new(
                wire::PING,
                5,
                Some(wire::ping_reply_data(&[wire::SessionTouch {
                    session_id: 0x77,
                    timeout: 30000,
                }])),
            ),
            QuorumPacket::new(
                wire::REVALIDATE,
                0,
                Some(
                    wire::RevalidateRequest {
                        session_id: 0x77,
                        timeout: 30000,
                    }
                    .to_bytes(),
                ),
            ),
            QuorumPacket::new(
                wire::REVALIDATE,
                0,
                Some(
                    wire::RevalidateReply {
                        session_id: 0x77,
                        valid: true,
                    }
                    .to_bytes(),
                ),
            ),
            QuorumPacket::new(wire::COMMIT, 0x2_0000_0001, None),
            QuorumPacket::new(wire::UPTODATE, 0, None),
        ];
        for (i, d) in txn_payloads.iter().enumerate() {
            let typ = if i % 2 == 0 {
                wire::PROPOSAL
            } else {
                wire::INFORM
            };
            packets.push(QuorumPacket::new(typ, 0x1_0000_0001, Some(d.clone())));
        }
        for r in requests.iter().take(12) {
            let mut body = BytesMut::new();
            let typ = zk_txn::encode_request(r, &mut body);
            let lr = wire::LearnerRequest {
                session_id: 0x77,
                cxid: 4,
                typ,
                body: body.freeze(),
            };
            let mut p = QuorumPacket::new(wire::REQUEST, 0, Some(lr.to_bytes()));
            p.authinfo = Some(vec![Id {
                scheme: s("ip"),
                id: s("127.0.0.1"),
            }]);
            packets.push(p);
        }
        let mut all = vec![0x41u8];
        for (i, p) in packets.iter().enumerate() {
            let mut one = BytesMut::new();
            p.encode(&mut one);
            all.extend_from_slice(&one);
            let mut v = vec![0u8];
            v.extend_from_slice(&one);
            write("quorum_packet", &format!("{i}"), &v);
        }
        write("quorum_packet", "stream", &all);
    }

    pub fn election() {
        let mut init = BytesMut::new();
        InitialMessage::v1(2, "127.0.0.1:3888").encode(&mut init);
        let mut v2 = BytesMut::new();
        InitialMessage {
            protocol_version: wire::PROTOCOL_VERSION_V2,
            sid: 3,
            addrs: vec![s("[::1]:3888"), s("0.0.0.0:3889"), s("h:1")],
        }
        .encode(&mut v2);
        let notes: Vec<Notification> = [
            (ServerState::Looking, 2, 0x1_0000_0009, 1, 1),
            (ServerState::Looking, 3, 0x1_0000_0005, 1, 1),
            (ServerState::Following, 2, 0x1_0000_0009, 1, 1),
            (ServerState::Leading, 2, 0x1_0000_0009, 2, 1),
            (ServerState::Observing, 1, 0x1_0000_0009, 1, 1),
        ]
        .into_iter()
        .map(|(state, leader, zxid, ee, pe)| Notification {
            state,
            leader,
            zxid,
            election_epoch: ee,
            peer_epoch: pe,
            version: 2,
            config: Bytes::from_static(b"server.1=a:1:2\nversion=0"),
        })
        .collect();
        for (i, start) in [&init[..], &v2[..], &3i64.to_be_bytes()[..]]
            .into_iter()
            .enumerate()
        {
            let mut v = vec![if i == 0 { 0x41 } else { 0 }];
            v.extend_from_slice(start);
            for n in &notes {
                let mut p = BytesMut::new();
                n.encode(&mut p);
                let mut f = BytesMut::new();
                wire::encode_frame(&p, &mut f);
                v.extend_from_slice(&f);
            }
            // The old 28- and 40-byte forms.
            let mut old = BytesMut::new();
            old.put_i32(0);
            old.put_i64(2);
            old.put_i64(0x1_0000_0009);
            old.put_i64(1);
            let mut f = BytesMut::new();
            wire::encode_frame(&old, &mut f);
            old.put_i64(1);
            wire::encode_frame(&old, &mut f);
            v.extend_from_slice(&f);
            write("election", &format!("{i}"), &v);
        }
    }

    pub fn snapshots() {
        let tree = sample_tree();
        let sessions = [(0x55i64, 30000i32), (0x66, 4000)];
        let mut out = BytesMut::new();
        corral::quorum::snap_stream::write_snap(&tree, &sessions, &mut out);
        for seed in [0u8, 0x41, 0x13] {
            let mut v = vec![seed];
            v.extend_from_slice(&out);
            write("snap_stream", &format!("{seed:02x}"), &v);
        }
        let empty = DataTree::new();
        let mut out = BytesMut::new();
        corral::quorum::snap_stream::write_snap(&empty, &[], &mut out);
        let mut v = vec![0u8];
        v.extend_from_slice(&out);
        write("snap_stream", "empty", &v);

        let stat = |z: i64, owner: i64| StatFields {
            czxid: z,
            mzxid: z,
            ctime: z,
            mtime: z,
            version: 0,
            cversion: 0,
            aversion: 0,
            ephemeral_owner: owner,
            pzxid: z,
        };
        let nodes = vec![
            SnapshotNode {
                path: s("/"),
                data: Bytes::new(),
                acl: acl(),
                stat: stat(0, 0),
            },
            SnapshotNode {
                path: s("/a"),
                data: Bytes::from_static(b"data"),
                acl: acl(),
                stat: stat(1, 0),
            },
            SnapshotNode {
                path: s("/a/e"),
                data: corral::proto::jute::null_buffer(),
                acl: vec![],
                stat: stat(2, 0x55),
            },
            SnapshotNode {
                path: s("/zookeeper/quota/a"),
                data: Bytes::new(),
                acl: acl(),
                stat: stat(3, 0),
            },
        ];
        let b = SimBackend::new(3);
        let dir = Path::new("/snap");
        let p = futures_lite::future::block_on(async {
            use corral::storage::backend::Backend;
            b.create_dir_all(dir).await.expect("mkdir");
            write_snapshot(b.clone(), dir, 3, &nodes, &[(0x55, 30000)])
                .await
                .expect("snapshot")
        });
        let bytes = b.read_file(&p).expect("written");
        // The zero padding after the seal is not needed to load; keep seeds short.
        let end = bytes.iter().rposition(|&x| x != 0).map_or(0, |e| e + 1);
        write(
            "snapshot_load",
            "v2",
            &bytes[..end.max(bytes.len().min(end + 4))],
        );
        // With changes after the walk: a tombstone and a later record.
        let b = SimBackend::new(4);
        let p = futures_lite::future::block_on(async {
            use corral::storage::backend::Backend;
            use corral::storage::snapshot::SnapshotWriter;
            b.create_dir_all(dir).await.expect("mkdir");
            let mut w = SnapshotWriter::create(b.clone(), dir, 3).await.expect("w");
            for n in &nodes {
                w.add_node(&n.path, &n.data, &n.acl, &n.stat);
            }
            w.add_session(0x55, 30000);
            w.add_changes_marker();
            w.add_tombstone("/a/e");
            w.add_node("/a", b"new", &acl(), &stat(5, 0));
            w.finish_at(5).await.expect("seal")
        });
        let bytes = b.read_file(&p).expect("written");
        let end = bytes.iter().rposition(|&x| x != 0).map_or(0, |e| e + 1);
        write("snapshot_load", "fuzzy", &bytes[..end]);
    }

    /// Inputs for `fuzzing::txn_log_recovery` (layout in `recovery_input_segments`).
    pub fn logs() {
        let txns = txns();
        let payload = |from: i64, n: usize| {
            let mut p = Vec::new();
            for (i, (op, t)) in txns.iter().cycle().take(n).enumerate() {
                let enc = txn_codec::txn_to_bytes(&hdr(from + i as i64, *op), t);
                p.extend_from_slice(&(enc.len() as u32).to_be_bytes());
                p.extend_from_slice(&enc);
            }
            p
        };
        let frame = |v: &mut Vec<u8>, from: i64, n: usize| {
            let p = payload(from, n);
            v.push(1);
            v.extend_from_slice(&(n as u32).to_be_bytes());
            v.extend_from_slice(&from.to_be_bytes());
            v.extend_from_slice(&(p.len() as u16).to_be_bytes());
            v.extend_from_slice(&p);
        };
        let segment = |v: &mut Vec<u8>, z: i64| {
            v.push(0);
            v.extend_from_slice(&z.to_be_bytes());
        };
        let raw = |v: &mut Vec<u8>, b: &[u8]| {
            v.push(2);
            v.extend_from_slice(&(b.len() as u16).to_be_bytes());
            v.extend_from_slice(b);
        };
        // One segment, three batches.
        let mut v = vec![0u8];
        segment(&mut v, 1);
        frame(&mut v, 1, 3);
        frame(&mut v, 4, 1);
        frame(&mut v, 5, 5);
        write("txn_log_recovery", "one-segment", &v);
        // A torn tail after the last batch.
        let mut t = v.clone();
        raw(&mut t, &[0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8]);
        write("txn_log_recovery", "torn-tail", &t);
        // The same with an unfinished cut marker.
        t[0] = 1;
        write("txn_log_recovery", "tailcut", &t);
        // Two segments, the second starting a new epoch.
        let mut v = vec![0u8];
        segment(&mut v, 1);
        frame(&mut v, 1, 4);
        segment(&mut v, 0x1_0000_0001);
        frame(&mut v, 0x1_0000_0001, 2);
        write("txn_log_recovery", "two-segments", &v);
        // A gap between segments, and a damaged middle frame.
        let mut v = vec![0u8];
        segment(&mut v, 1);
        frame(&mut v, 1, 2);
        segment(&mut v, 7);
        frame(&mut v, 7, 2);
        write("txn_log_recovery", "gap", &v);
        let mut v = vec![0u8];
        segment(&mut v, 1);
        frame(&mut v, 1, 2);
        raw(&mut v, &[1; 40]);
        frame(&mut v, 3, 2);
        write("txn_log_recovery", "damaged-middle", &v);
        // A segment with a bad header.
        let mut v = vec![0u8];
        v.push(3);
        v.extend_from_slice(&1i64.to_be_bytes());
        raw(&mut v, b"CRLG\0\0\0\x01garbage-header!!");
        write("txn_log_recovery", "bad-header", &v);
    }
}

/// Rewrites the `seed-*` files of every corpus from valid encodings. Run it when a format
/// changes, then minimise as `fuzz/README.md` says.
#[test]
#[ignore]
fn write_seeds() {
    let requests = seeds::requests();
    seeds::client(&requests);
    seeds::quorum(&requests);
    seeds::election();
    seeds::snapshots();
    seeds::logs();
}
