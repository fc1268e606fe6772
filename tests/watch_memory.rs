//! Memory per watch of the WatchManager, before (main's plain-map layout, kept as
//! `src/watch/reference.rs`) and after (the compact layout), counted by a global
//! allocator that tracks live bytes: 1M watches over 10,000 connections, laid out
//! three ways (every watch on its own path; 100 paths shared by every connection; a
//! pool of 100,000 paths, each watched by 10). Prints bytes per watch for each.
//!
//! Long (a few seconds, ~1 GB at its peak): runs only with CORRAL_WATCH_MEMORY=1.
//! `CORRAL_WATCH_MEMORY=1 cargo test --release --test watch_memory -- --nocapture`
//!
//! What it asserts is not a figure (those live in the report) but what holds at any
//! size: closing every connection gives every byte back, in both layouts.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};

use corral::proto::EventType;
use corral::watch::{WatchManager, WatcherId, WatcherMode, WatchesSummary};

/// The reference file names these through `crate::` and `super::`.
mod proto {
    pub use corral::proto::*;
}
#[path = "../src/watch/reference.rs"]
mod reference;
use reference::ReferenceWatchManager;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Relaxed);
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Relaxed);
        System.realloc(p, l, new)
    }
}

#[global_allocator]
static A: Counting = Counting;

/// What both layouts offer that the measurement needs.
trait Manager {
    fn add(&mut self, path: &str, w: WatcherId);
    fn close(&mut self, w: WatcherId);
    fn fire(&mut self, path: &str) -> usize;
    fn count(&self) -> usize;
    fn summary(&self) -> WatchesSummary;
}

impl Manager for WatchManager {
    fn add(&mut self, path: &str, w: WatcherId) {
        self.add_watch(path, w, WatcherMode::Standard)
    }
    fn close(&mut self, w: WatcherId) {
        self.remove_watcher(w)
    }
    fn fire(&mut self, path: &str) -> usize {
        let mut out = Vec::new();
        self.trigger(path, EventType::NodeDataChanged, &mut out);
        out.len()
    }
    fn count(&self) -> usize {
        self.watch_count()
    }
    fn summary(&self) -> WatchesSummary {
        WatchManager::summary(self)
    }
}

impl Manager for ReferenceWatchManager {
    fn add(&mut self, path: &str, w: WatcherId) {
        self.add_watch(path, w, WatcherMode::Standard)
    }
    fn close(&mut self, w: WatcherId) {
        self.remove_watcher(w)
    }
    fn fire(&mut self, path: &str) -> usize {
        let mut out = Vec::new();
        self.trigger(path, EventType::NodeDataChanged, &mut out);
        out.len()
    }
    fn count(&self) -> usize {
        self.watch_count()
    }
    fn summary(&self) -> WatchesSummary {
        ReferenceWatchManager::summary(self)
    }
}

const CONNS: u64 = 10_000;
const PER_CONN: u64 = 100;

#[derive(Clone, Copy, Debug)]
enum Layout2 {
    /// Every watch on its own path: 1M paths.
    Distinct,
    /// Every connection watches the same 100 paths.
    Shared,
    /// 100,000 paths, each watched by 10 connections.
    Pool,
}

fn path_of(layout: Layout2, w: u64, i: u64) -> String {
    let n = match layout {
        Layout2::Distinct => w * PER_CONN + i,
        Layout2::Shared => i,
        Layout2::Pool => (w * PER_CONN + i) % 100_000,
    };
    format!("/scale/w/{n:06}")
}

/// Live bytes the manager holds per watch once filled.
fn measure<M: Manager>(mut m: M, layout: Layout2) -> f64 {
    // Paths are made before counting starts, as the server's request buffers hold
    // them before a watch is set; only what the manager keeps counts.
    let paths: Vec<Vec<String>> = (0..CONNS)
        .map(|w| (0..PER_CONN).map(|i| path_of(layout, w, i)).collect())
        .collect();
    let before = LIVE.load(Relaxed);
    for (w, ps) in paths.iter().enumerate() {
        for p in ps {
            m.add(p, w as u64 + 1);
        }
    }
    let held = LIVE.load(Relaxed) - before;
    let total = (CONNS * PER_CONN) as usize;
    assert_eq!(m.count(), total);
    assert_eq!(m.summary().total_watches, total);
    assert_eq!(m.summary().num_connections, CONNS as usize);
    // One change reaches every watcher of its path.
    let fired = m.fire(&paths[0][0]);
    assert_eq!(
        fired,
        match layout {
            Layout2::Distinct => 1,
            Layout2::Shared => CONNS as usize,
            Layout2::Pool => 10,
        }
    );
    for w in 1..=CONNS {
        m.close(w);
    }
    assert_eq!(m.count(), 0);
    drop(m);
    assert_eq!(
        LIVE.load(Relaxed),
        before,
        "every byte back after the closes"
    );
    held as f64 / total as f64
}

#[test]
fn memory_per_watch() {
    if std::env::var("CORRAL_WATCH_MEMORY").is_err() {
        eprintln!("skipped: set CORRAL_WATCH_MEMORY=1 to measure");
        return;
    }
    println!("1M one-shot data watches over 10,000 connections, 100 each: bytes held per watch");
    println!(
        "{:<42} {:>12} {:>12} {:>8}",
        "layout", "before", "after", "ratio"
    );
    for layout in [Layout2::Distinct, Layout2::Pool, Layout2::Shared] {
        let before = measure(ReferenceWatchManager::new(), layout);
        let after = measure(WatchManager::new(), layout);
        let name = match layout {
            Layout2::Distinct => "1M paths, one watcher each",
            Layout2::Pool => "100k paths, 10 watchers each",
            Layout2::Shared => "100 paths, 10k watchers each",
        };
        println!(
            "{name:<42} {before:>12.1} {after:>12.1} {:>8.2}",
            after / before
        );
    }
}
