//! Times building a tree from a snapshot file, phase by phase, as a restart does it on
//! one thread (the server collects the changes after the walk on a second one; see
//! `server::early_build`). Repeats the build to show its spread, which on a VM is wide.
//!
//! ```text
//! cargo run --release --example restore_time -- <data dir>/snapshot.<zxid> [times]
//! ```
//!
//! Pin it to a core (`taskset -c 1`) to keep the scheduler out of the figures. Runs on
//! mimalloc with transparent huge pages off, as the server does.

use std::time::Instant;

use corral::storage::backend::Mapped;
use corral::storage::restore::{apply_changes, collect_changes, restore_walk};
use corral::storage::snapshot::UncheckedSnapshot;
use corral::tree::{DataTree, Restorer};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: restore_time <snapshot file> [times]");
        std::process::exit(2);
    };
    let times: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(5);
    // SAFETY: PR_SET_THP_DISABLE takes an integer flag and no pointers.
    unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    let f = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    for _ in 0..times {
        let t0 = Instant::now();
        // SAFETY: a snapshot file is not written again once it has its name.
        let m = unsafe { memmap2::Mmap::map(&f) }.expect("mapping the snapshot");
        let s = UncheckedSnapshot::open(Mapped::Mmap(m)).expect("a snapshot file");
        let mut tree = DataTree::new();
        tree.reserve(s.node_records_hint.unwrap_or(0) as usize);
        let mut r = Restorer::new(&mut tree);
        r.keep_mapping(s.mapping());
        let mut records = s.records();
        restore_walk(&mut r, &mut records, &|| false).expect("the walk's records");
        let walk = t0.elapsed();
        let room = r.room();
        let changes = collect_changes(records, room, &|| false).expect("the changes");
        let collect = t0.elapsed();
        apply_changes(&mut r, changes).expect("the changes put in");
        r.finish();
        let all = t0.elapsed();
        println!(
            "{} znodes (digest {:#x}) in {} ms: walk {} ms, changes collected {} ms, put in {} ms",
            tree.znode_count(),
            corral::quorum::digest::tree_digest(&tree),
            all.as_millis(),
            walk.as_millis(),
            (collect - walk).as_millis(),
            (all - collect).as_millis()
        );
    }
}
