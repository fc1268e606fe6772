//! Jute encode/decode of the records on the hot path: getData replies and create
//! requests, plus frame splitting of a pipelined stream.

use bytes::{Bytes, BytesMut};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

use corral::proto::frame::next_frame;
use corral::proto::*;

fn stat() -> Stat {
    Stat {
        czxid: 0x1_0000_0001,
        mzxid: 0x1_0000_0002,
        ctime: 1_700_000_000_000,
        mtime: 1_700_000_000_001,
        version: 3,
        cversion: 0,
        aversion: 0,
        ephemeral_owner: 0,
        data_length: 100,
        num_children: 0,
        pzxid: 0x1_0000_0001,
    }
}

fn bench(c: &mut Criterion) {
    let rsp = GetDataResponse {
        data: Bytes::from(vec![7u8; 100]),
        stat: stat(),
    };
    let mut g = c.benchmark_group("jute");
    g.throughput(Throughput::Elements(1));
    g.bench_function("encode GetDataResponse 100B", |b| {
        let mut out = BytesMut::with_capacity(1 << 16);
        b.iter(|| {
            out.clear();
            encode_reply(
                &mut out,
                ReplyHeader {
                    xid: 1,
                    zxid: 2,
                    err: 0,
                },
                Some(black_box(&rsp)),
            );
        })
    });
    let encoded = rsp.to_bytes();
    g.bench_function("decode GetDataResponse 100B", |b| {
        b.iter(|| GetDataResponse::from_bytes(black_box(&encoded)).unwrap())
    });
    let req = CreateRequest {
        path: "/bench/node-0000012345".into(),
        data: Bytes::from(vec![1u8; 100]),
        acl: vec![Acl {
            perms: perms::ALL,
            id: Id {
                scheme: "world".into(),
                id: "anyone".into(),
            },
        }],
        flags: 0,
    };
    let mut body = BytesMut::new();
    RequestHeader { xid: 1, r#type: 1 }.encode(&mut body);
    req.encode(&mut body);
    g.bench_function("decode create request", |b| {
        b.iter(|| {
            let mut r = Reader::new(black_box(&body));
            let h = RequestHeader::decode(&mut r).unwrap();
            decode_request(h.r#type, &body[r.position()..]).unwrap()
        })
    });
    g.finish();

    let mut stream = BytesMut::new();
    for _ in 0..1000 {
        stream.extend_from_slice(&(body.len() as i32).to_be_bytes());
        stream.extend_from_slice(&body);
    }
    let mut g = c.benchmark_group("frame");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("split 1000 pipelined frames", |b| {
        b.iter(|| {
            let mut s = stream.clone();
            let mut n = 0;
            while let Some(f) = next_frame(&mut s, 0xfffff).unwrap() {
                n += f.len();
            }
            n
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
