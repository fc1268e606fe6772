//! Txn log batch append: one batch of 64 setData txns (100-byte values) per iteration,
//! through the engine's own `TxnLog::append_batch`, on the in-memory simulator (encoding,
//! crc32c and framing only), and on the real O_DIRECT backend in a temp dir with and
//! without the fdatasync. Each sample runs in a fresh glommio executor; only the appends
//! are timed.

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use corral::proto::OpCode;
use corral::request::{Txn, TxnHeader};
use corral::storage::{recover, Backend, GlommioBackend, LogConfig, SimBackend};

const BATCH: usize = 64;

fn batch(first_zxid: i64) -> Vec<(TxnHeader, Txn)> {
    (0..BATCH as i64)
        .map(|i| {
            (
                TxnHeader {
                    client_id: 0x1234,
                    cxid: i as i32,
                    zxid: first_zxid + i,
                    time: 1_700_000_000_000,
                    op: OpCode::SetData,
                },
                Txn::SetData {
                    path: format!("/bench/k{}", i % 1000),
                    data: Bytes::from(vec![7u8; 100]),
                    version: i as i32,
                },
            )
        })
        .collect()
}

/// Runs `iters` appends of one batch each in a new executor; returns their total time.
fn timed<B: Backend + 'static, F: FnOnce() -> B + Send + 'static>(
    make_backend: F,
    dir: std::path::PathBuf,
    force_sync: bool,
    iters: u64,
) -> Duration {
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .io_memory(4 << 20)
        .spawn(move || async move {
            let mut cfg = LogConfig::new(dir.join("log"));
            cfg.force_sync = force_sync;
            cfg.prealloc_size = 64 << 20;
            let (rec, mut log) = recover(make_backend(), cfg, &dir.join("snap"))
                .await
                .unwrap();
            let mut next = rec.last_zxid + 1;
            let batches: Vec<_> = (0..iters)
                .map(|i| batch(next + i as i64 * BATCH as i64))
                .collect();
            next += iters as i64 * BATCH as i64;
            let _ = next;
            let t = Instant::now();
            for b in &batches {
                log.append_batch(b).await.unwrap();
            }
            t.elapsed()
        })
        .unwrap()
        .join()
        .unwrap()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("txn log append (64 x 100 B setData)");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.sample_size(20);
    g.bench_function("simulated disk", |b| {
        b.iter_custom(|iters| timed(|| SimBackend::new(7), "/sim".into(), true, iters))
    });
    for (name, sync) in [
        ("O_DIRECT, no fdatasync", false),
        ("O_DIRECT + fdatasync", true),
    ] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let dir = tempfile::tempdir().unwrap();
                let d = timed(|| GlommioBackend, dir.path().to_path_buf(), sync, iters);
                drop(dir);
                d
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
