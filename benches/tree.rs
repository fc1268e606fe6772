//! DataTree costs per request, through the same functions the shards call:
//! `request::apply` for committed txns (create, setData, delete), `Prepper::prep` +
//! `apply` for the commit shard's whole write path, and `request::process_read` (plus
//! reply encoding) for getData, on a tree holding 100k znodes of 100 bytes.

use bytes::{Bytes, BytesMut};
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};

use corral::proto::*;
use corral::request::{apply, process_read, txn_op, PrepConfig, PrepCtx, Prepper, Txn, TxnHeader};
use corral::tree::{open_acl_unsafe, DataTree};

const KEYS: u64 = 100_000;
const SESSION: i64 = 0x1234;
const NOW: i64 = 1_700_000_000_000;

fn key(i: u64) -> String {
    format!("/bench/k{i:08}")
}

struct Fixture {
    tree: DataTree,
    zxid: i64,
    value: Bytes,
}

impl Fixture {
    fn new() -> Fixture {
        let mut f = Fixture {
            tree: DataTree::new(),
            zxid: 0,
            value: Bytes::from(vec![b'x'; 100]),
        };
        f.create("/bench");
        for i in 0..KEYS {
            f.create(&key(i));
        }
        f
    }

    fn hdr(&mut self, op: OpCode) -> TxnHeader {
        self.zxid += 1;
        TxnHeader {
            client_id: SESSION,
            cxid: 1,
            zxid: self.zxid,
            time: NOW,
            op,
        }
    }

    fn create(&mut self, path: &str) {
        let hdr = self.hdr(OpCode::Create);
        let txn = Txn::Create {
            path: path.into(),
            data: self.value.clone(),
            acl: open_acl_unsafe(),
            ephemeral_owner: 0,
            parent_cversion: -1,
        };
        let mut triggers = Vec::new();
        let r = apply(&mut self.tree, &hdr, &txn, &mut triggers);
        assert_eq!(r.err(), ErrorCode::Ok, "{path}");
    }
}

/// A cheap sequence of keys spread over the key space (an LCG, so no `rand` here).
struct Keys(u64);
impl Keys {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % KEYS
    }
}

fn bench(c: &mut Criterion) {
    let mut f = Fixture::new();
    let mut keys = Keys(7);
    let mut g = c.benchmark_group("tree");
    g.throughput(Throughput::Elements(1));

    g.bench_function("apply setData 100B", |b| {
        let mut triggers = Vec::new();
        b.iter(|| {
            let hdr = f.hdr(OpCode::SetData);
            let txn = Txn::SetData {
                path: key(keys.next()),
                data: f.value.clone(),
                version: 1,
            };
            triggers.clear();
            black_box(apply(&mut f.tree, &hdr, &txn, &mut triggers))
        })
    });

    g.bench_function("apply create + delete", |b| {
        let mut triggers = Vec::new();
        let mut n = 0u64;
        b.iter(|| {
            n += 1;
            let path = format!("/bench/new{n}");
            let hdr = f.hdr(OpCode::Create);
            let txn = Txn::Create {
                path: path.clone(),
                data: f.value.clone(),
                acl: open_acl_unsafe(),
                ephemeral_owner: 0,
                parent_cversion: -1,
            };
            triggers.clear();
            black_box(apply(&mut f.tree, &hdr, &txn, &mut triggers));
            let hdr = f.hdr(OpCode::Delete);
            black_box(apply(
                &mut f.tree,
                &hdr,
                &Txn::Delete { path },
                &mut triggers,
            ))
        })
    });

    g.bench_function("apply create (growing tree)", |b| {
        let mut triggers = Vec::new();
        let mut n = 0u64;
        b.iter_batched(
            || {
                n += 1;
                format!("/bench/grow{n}")
            },
            |path| {
                let hdr = f.hdr(OpCode::Create);
                let txn = Txn::Create {
                    path,
                    data: f.value.clone(),
                    acl: open_acl_unsafe(),
                    ephemeral_owner: 0,
                    parent_cversion: -1,
                };
                triggers.clear();
                black_box(apply(&mut f.tree, &hdr, &txn, &mut triggers))
            },
            BatchSize::SmallInput,
        )
    });

    g.bench_function("prep + apply setData 100B", |b| {
        let mut prepper = Prepper::new(PrepConfig {
            extended_types: true,
            enforce_quota: false,
            max_buffer: 0xfffff,
        });
        let auth: Vec<Id> = Vec::new();
        let mut triggers = Vec::new();
        b.iter(|| {
            let req = Request::SetData(SetDataRequest {
                path: key(keys.next()),
                data: f.value.clone(),
                version: -1,
            });
            f.zxid += 1;
            let zxid = f.zxid;
            let ctx = PrepCtx {
                session_id: SESSION,
                auth: &auth,
                now_ms: NOW,
            };
            let txn = prepper.prep(&f.tree, zxid, &ctx, &req);
            let hdr = TxnHeader {
                client_id: SESSION,
                cxid: 1,
                zxid,
                time: NOW,
                op: txn_op(req.opcode(), &txn),
            };
            triggers.clear();
            let r = apply(&mut f.tree, &hdr, &txn, &mut triggers);
            prepper.applied(zxid);
            black_box(r)
        })
    });

    g.bench_function("process_read getData 100B + encode reply", |b| {
        let auth: Vec<Id> = Vec::new();
        let mut out = BytesMut::with_capacity(1 << 16);
        b.iter(|| {
            let req = Request::GetData(GetDataRequest {
                path: key(keys.next()),
                watch: false,
            });
            let o = process_read(&f.tree, SESSION, &auth, &req);
            out.clear();
            let reply = o.reply.expect("key exists");
            let hdr = ReplyHeader {
                xid: 1,
                zxid: f.zxid,
                err: 0,
            };
            let start = out.len();
            encode_reply(&mut out, hdr, None);
            reply.encode(&mut out);
            // Patch the frame length to cover the body too.
            let len = (out.len() - start - 4) as i32;
            out[start..start + 4].copy_from_slice(&len.to_be_bytes());
            black_box(out.len())
        })
    });

    g.bench_function("process_read getData missing node", |b| {
        let auth: Vec<Id> = Vec::new();
        b.iter(|| {
            let req = Request::GetData(GetDataRequest {
                path: format!("/bench/missing{}", keys.next()),
                watch: false,
            });
            black_box(process_read(&f.tree, SESSION, &auth, &req))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
