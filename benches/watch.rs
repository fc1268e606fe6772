//! WatchManager costs with many watchers: firing a data watch held by N connections
//! (one-shot, so each round re-arms them, as clients do), firing persistent watches
//! (no re-arm), a change nobody watches among many watched paths, and dropping a
//! closed connection's watches.

use criterion::{
    black_box, criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput,
};

use corral::proto::EventType;
use corral::watch::{WatchManager, WatcherMode};

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("watch");
    for n in [100u64, 1_000, 10_000] {
        g.throughput(Throughput::Elements(n));
        g.bench_with_input(
            BenchmarkId::new("arm + trigger one-shot data watch", n),
            &n,
            |b, &n| {
                let mut wm = WatchManager::new();
                let mut out = Vec::with_capacity(n as usize);
                b.iter(|| {
                    for w in 0..n {
                        wm.add_data_watch("/lock/leader", w);
                    }
                    out.clear();
                    wm.trigger("/lock/leader", EventType::NodeDataChanged, &mut out);
                    assert_eq!(out.len(), n as usize);
                    black_box(out.len())
                })
            },
        );
        g.bench_with_input(
            BenchmarkId::new("trigger persistent watch", n),
            &n,
            |b, &n| {
                let mut wm = WatchManager::new();
                for w in 0..n {
                    wm.add_watch("/config", w, WatcherMode::Persistent);
                }
                let mut out = Vec::with_capacity(n as usize);
                b.iter(|| {
                    out.clear();
                    wm.trigger("/config", EventType::NodeDataChanged, &mut out);
                    black_box(out.len())
                })
            },
        );
        g.bench_with_input(
            BenchmarkId::new("trigger recursive watches above a deep path", n),
            &n,
            |b, &n| {
                let mut wm = WatchManager::new();
                for w in 0..n {
                    wm.add_watch("/app", w, WatcherMode::PersistentRecursive);
                }
                let mut out = Vec::with_capacity(n as usize);
                b.iter(|| {
                    out.clear();
                    wm.trigger("/app/a/b/c/d", EventType::NodeCreated, &mut out);
                    black_box(out.len())
                })
            },
        );
    }
    g.throughput(Throughput::Elements(1));
    g.bench_function("trigger unwatched path among 100k watched", |b| {
        let mut wm = WatchManager::new();
        for w in 0..100_000u64 {
            wm.add_data_watch(&format!("/n/{w}"), w);
        }
        let mut out = Vec::new();
        b.iter(|| {
            out.clear();
            wm.trigger("/n/none", EventType::NodeDataChanged, &mut out);
            black_box(out.len())
        })
    });
    g.bench_function("remove_watcher holding 1000 of 100k watches", |b| {
        b.iter_batched(
            || {
                let mut wm = WatchManager::new();
                for p in 0..1_000u64 {
                    for w in 0..100u64 {
                        wm.add_data_watch(&format!("/n/{p}"), w);
                    }
                }
                wm
            },
            |mut wm| {
                wm.remove_watcher(7);
                wm
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
