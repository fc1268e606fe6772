//! Bytes per znode of the tree alone, with the server's allocator: no server, no log,
//! no clients, so a change to the tree's layout can be measured in seconds.
//!
//! `cargo run --release --example tree_memory -- [znodes] [data bytes]` builds the tree
//! scenario's shape (`/scale/t/b<i / 10,000>/n<i>`, default 1M znodes of 100 bytes),
//! reads every znode's data once (as getData and snapshots do), and prints resident
//! memory per znode. `RESERVE=1` sizes the node table up front (as a restore does), so
//! that buffers the table outgrew are not in the figure.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use bytes::Bytes;
use corral::tree::{open_acl_unsafe, DataTree};

fn rss() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").expect("statm");
    let pages: u64 = s
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("rss");
    pages * 4096
}

fn arg(i: usize, default: u64) -> u64 {
    std::env::args()
        .nth(i)
        .map(|s| s.parse().expect("a number"))
        .unwrap_or(default)
}

fn main() {
    let n = arg(1, 1_000_000);
    let value = vec![b'v'; arg(2, 100) as usize];
    let acl = open_acl_unsafe();
    let mut t = DataTree::new();
    let mut zxid = 2;
    let mut create = |t: &mut DataTree, path: &str, data: Bytes| {
        t.create_node(path, data, &acl, 0, -1, zxid, 0)
            .expect("create");
        zxid += 1;
    };
    create(&mut t, "/scale", Bytes::new());
    create(&mut t, "/scale/t", Bytes::new());
    for b in 0..=n / 10_000 {
        create(&mut t, &format!("/scale/t/b{b}"), Bytes::new());
    }
    if std::env::var_os("RESERVE").is_some() {
        t.reserve(n as usize);
    }
    let before = rss();
    for i in 0..n {
        let path = format!("/scale/t/b{}/n{i}", i / 10_000);
        create(&mut t, &path, Bytes::copy_from_slice(&value));
    }
    for i in 0..n {
        let path = format!("/scale/t/b{}/n{i}", i / 10_000);
        let data = t.get(&path).expect("created").data().clone();
        std::hint::black_box(&data);
    }
    // Freed buffers (the table's growth) go back to the system after a delay.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let after = rss();
    println!(
        "{n} znodes of {} bytes: {:.1} bytes per znode",
        value.len(),
        (after - before) as f64 / n as f64
    );
}
