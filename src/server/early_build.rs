//! A restart's tree, built from the newest snapshot on a thread of its own while
//! recovery checks that snapshot and reads the log on shard 0.
//!
//! Recovery trusts a snapshot only once its every record parses and its crc32c holds
//! (`storage::snapshot::decode_snapshot`); building the tree then walks the records a
//! second time. One after the other, on a 1M-znode restart here, that was ~0.2-0.3 s of
//! checking and log reading, then ~0.8-0.9 s of building, while the second core sat
//! idle. So the build starts at once, on that core, from the file recovery will most
//! likely settle on (the newest), and its tree is used only if recovery did settle on
//! that very file (same path, same inode: a snapshot is never written again once it has
//! its name) and the build went through. Otherwise it is stopped and thrown away and
//! the tree is built after the check, as before: a damaged newest snapshot, an older
//! one chosen, a snapshot installed by recovery over the name, all fall back.
//!
//! The early build reads records unchecked: damage ends its iteration (a short, wrong
//! tree, never a panic), and such a tree is never taken, because the check then fails
//! for that file.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use super::durability::restore_records;
use crate::storage::backend::Mapped;
use crate::storage::restore;
use crate::storage::snapshot::{UncheckedSnapshot, SNAP_PREFIX};
use crate::storage::Recovered;
use crate::tree::DataTree;

/// The snapshot's part of a tree, being built on another thread (see the module doc).
pub struct EarlyBuild {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Option<Built>>>,
}

struct Built {
    file: FileId,
    tree: Result<DataTree, String>,
    ms: u64,
}

/// Which file a path named when it was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
    len: u64,
}

impl FileId {
    fn of(md: &std::fs::Metadata) -> FileId {
        FileId {
            dev: md.dev(),
            ino: md.ino(),
            len: md.len(),
        }
    }
}

impl EarlyBuild {
    /// Starts building from the newest snapshot in `snap_dir`, if there is one. Call it
    /// with the data directory locked, from a thread not pinned to shard 0's core (the
    /// new thread inherits the caller's CPU affinity).
    pub fn start(snap_dir: &Path) -> Option<EarlyBuild> {
        let path = newest_snapshot(snap_dir)?;
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let (path, stop) = (path.clone(), stop.clone());
            std::thread::Builder::new()
                .name("corral-restore".into())
                .spawn(move || build(&path, &stop))
                .map_err(|e| tracing::info!("no early tree build: {e}"))
                .ok()?
        };
        Some(EarlyBuild {
            path,
            stop,
            handle: Some(handle),
        })
    }

    /// The tree holding the records of `rec`'s snapshot, if it was built from that very
    /// file and went through; `None` otherwise (the caller builds it).
    pub fn take(mut self, rec: &Recovered) -> Option<DataTree> {
        let s = rec.snapshot.as_ref()?;
        if s.path != self.path {
            tracing::info!(
                early = %self.path.display(),
                recovered = %s.path.display(),
                "the tree built early is not of the snapshot recovery chose: building again"
            );
            return None;
        }
        let now = std::fs::metadata(&s.path).ok().map(|m| FileId::of(&m));
        let built = self.handle.take()?.join().ok()??;
        if now != Some(built.file) {
            tracing::info!(
                path = %s.path.display(),
                "the snapshot file changed under the early build: building again"
            );
            return None;
        }
        match built.tree {
            Ok(t) => {
                tracing::info!(
                    ms = built.ms,
                    "snapshot restored on a second thread while recovery checked it"
                );
                Some(t)
            }
            Err(e) => {
                // The check passed for this file, so the build cannot have failed on
                // its records: said, and built again the usual way.
                tracing::warn!("the early tree build failed ({e}): building again");
                None
            }
        }
    }
}

impl Drop for EarlyBuild {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The snapshot with the highest zxid in its name, as recovery tries them first.
fn newest_snapshot(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let z = crate::storage::parse_zxid_name(&name, SNAP_PREFIX)?;
            Some((z, e.path()))
        })
        .max()
        .map(|(_, p)| p)
}

fn build(path: &Path, stop: &AtomicBool) -> Option<Built> {
    let started = Instant::now();
    let f = std::fs::File::open(path).ok()?;
    let md = f.metadata().ok()?;
    if md.len() == 0 {
        return None;
    }
    // SAFETY: a snapshot is written under a `.tmp` name and never again once renamed to
    // its own (recovery and purge only delete it); `take` checks the file is the one
    // recovery checked.
    let m = unsafe { memmap2::Mmap::map(&f) }.ok()?;
    let s = UncheckedSnapshot::open(Mapped::Mmap(m))?;
    let tree = build_from(path, &s, &|| stop.load(Ordering::Relaxed));
    Some(Built {
        file: FileId::of(&md),
        tree,
        ms: started.elapsed().as_millis() as u64,
    })
}

/// The tree of `s`'s records. The changes a fuzzy snapshot appends after its walk are
/// collected and ordered on a thread of their own while this one puts the walk in
/// (on a 1M-znode restore here whose snapshot was taken while 235k znodes were
/// created, that was ~0.2 s of the build's ~0.75 s; shard 0's core, which checks the
/// snapshot meanwhile, has room for it). That thread reads the walk's records again
/// to find where the changes start.
fn build_from(
    path: &Path,
    s: &UncheckedSnapshot,
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<DataTree, String> {
    let mut tree = DataTree::new();
    let hint = s.node_records_hint.unwrap_or(0) as usize;
    tree.reserve(hint);
    std::thread::scope(|scope| {
        let collector = std::thread::Builder::new()
            .name("corral-changes".into())
            .spawn_scoped(scope, || {
                let mut records = s.records();
                let walked = restore::skip_walk(&mut records);
                restore::collect_changes(records, hint.saturating_sub(walked), stop)
            });
        let collector = collector
            .map_err(|e| tracing::info!("changes collected after the walk, on this thread: {e}"))
            .ok();
        restore_records(&mut tree, path, s.mapping(), s.records(), collector, stop)
    })
    .map(|()| tree)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Acl, Id};
    use crate::storage::snapshot::{load_snapshot, SnapshotWriter, StatFields};
    use crate::storage::GlommioBackend;

    fn anyone() -> Vec<Acl> {
        vec![Acl {
            perms: 31,
            id: Id {
                scheme: "world".into(),
                id: "anyone".into(),
            },
        }]
    }

    fn st(z: i64) -> StatFields {
        StatFields {
            czxid: z,
            mzxid: z,
            pzxid: z,
            ..Default::default()
        }
    }

    /// Writes a fuzzy snapshot sealed at `last` into `dir` through the real backend.
    fn write(dir: &Path, last: i64, data: &[u8]) -> PathBuf {
        let dir = dir.to_path_buf();
        let data = data.to_vec();
        run(move || async move {
            let mut w = SnapshotWriter::create(GlommioBackend, &dir, 5)
                .await
                .unwrap();
            w.add_node("/", b"", &anyone(), &st(0));
            w.add_node("/a", &data, &anyone(), &st(1));
            for i in 0..5000 {
                w.add_node(&format!("/a/n{i:05}"), b"v", &anyone(), &st(2));
            }
            w.add_changes_marker();
            w.add_tombstone("/a/n00007");
            // Collected on a thread of its own: the last word on a path wins, and a
            // child listed before its parent goes in after it.
            w.add_node("/a/n00010", b"older", &anyone(), &st(3));
            w.add_node("/c/d", b"child", &anyone(), &st(4));
            w.add_node("/c", b"parent", &anyone(), &st(4));
            w.add_node("/a/n00010", b"newer", &anyone(), &st(4));
            w.add_node("/b", b"late", &anyone(), &st(last));
            w.add_session(0x42, 3000);
            w.finish_at(last).await.unwrap()
        })
    }

    fn run<T, G, F>(g: G) -> T
    where
        T: Send + 'static,
        G: FnOnce() -> F + Send + 'static,
        F: std::future::Future<Output = T> + 'static,
    {
        glommio::LocalExecutorBuilder::default()
            .spawn(g)
            .unwrap()
            .join()
            .unwrap()
    }

    fn recovered(path: &Path) -> Recovered {
        let path = path.to_path_buf();
        let snap = run(move || async move { load_snapshot(&GlommioBackend, &path).await.unwrap() });
        Recovered {
            last_zxid: snap.last_zxid,
            snapshot: Some(snap),
            txns: vec![],
            warnings: vec![],
        }
    }

    /// A recovery that found no snapshot to trust.
    fn nothing_recovered() -> Recovered {
        Recovered {
            snapshot: None,
            txns: vec![],
            last_zxid: 0,
            warnings: vec![],
        }
    }

    fn same(a: &DataTree, b: &DataTree) {
        assert_eq!(a.znode_count(), b.znode_count());
        assert_eq!(a.children("/a").unwrap(), b.children("/a").unwrap());
        assert_eq!(a.children("/").unwrap(), b.children("/").unwrap());
        assert_eq!(a.get("/b").unwrap().data(), b.get("/b").unwrap().data());
        assert_eq!(a.sessions(), b.sessions());
        assert_eq!(a.last_processed_zxid(), b.last_processed_zxid());
        assert_eq!(
            crate::quorum::digest::tree_digest(a),
            crate::quorum::digest::tree_digest(b)
        );
    }

    #[test]
    fn the_early_tree_is_the_tree_built_after_the_check() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), 9, b"first");
        let newest = write(d.path(), 12, b"second");
        let early = EarlyBuild::start(d.path()).expect("a snapshot to build from");
        assert_eq!(early.path, newest);
        let rec = recovered(&newest);
        let t = early
            .take(&rec)
            .expect("built from the snapshot recovery chose");
        let t = super::super::durability::finish_tree(t, &rec).unwrap();
        let after = super::super::durability::tree_from(&rec).unwrap();
        same(&t, &after);
        assert!(!t.exists("/a/n00007"));
        assert_eq!(&t.get("/a").unwrap().data()[..], b"second");
        assert_eq!(&t.get("/a/n00010").unwrap().data()[..], b"newer");
        assert_eq!(&t.get("/c/d").unwrap().data()[..], b"child");
        assert_eq!(t.children("/c").unwrap(), vec!["d"]);
        assert_eq!(t.sessions(), vec![(0x42, 3000)]);
        assert_eq!(t.last_processed_zxid(), 12);
    }

    #[test]
    fn an_early_tree_of_another_snapshot_is_not_taken() {
        let d = tempfile::tempdir().unwrap();
        let older = write(d.path(), 9, b"first");
        write(d.path(), 12, b"second");
        // Recovery settled on the older one (as when the newest fails its check).
        let early = EarlyBuild::start(d.path()).unwrap();
        assert!(early.take(&recovered(&older)).is_none());
        // Or on none at all.
        let early = EarlyBuild::start(d.path()).unwrap();
        assert!(early.take(&nothing_recovered()).is_none());
    }

    #[test]
    fn a_snapshot_replaced_under_its_name_is_built_again() {
        let d = tempfile::tempdir().unwrap();
        let newest = write(d.path(), 12, b"second");
        let early = EarlyBuild::start(d.path()).unwrap();
        // Built from the old file before the new one takes its name.
        let handle = early.handle.as_ref().unwrap();
        let t = std::time::Instant::now();
        while !handle.is_finished() {
            assert!(t.elapsed() < std::time::Duration::from_secs(30));
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        // Another file takes the name (as an install that recovery finishes would):
        // recovery checks the new file, so the tree of the old one must not be used.
        let other = tempfile::tempdir().unwrap();
        let moved = write(other.path(), 12, b"third");
        std::fs::rename(&moved, &newest).unwrap();
        assert!(early.take(&recovered(&newest)).is_none());
    }

    #[test]
    fn a_damaged_newest_snapshot_gives_no_early_tree_and_no_panic() {
        let d = tempfile::tempdir().unwrap();
        let newest = write(d.path(), 12, b"second");
        let mut bytes = std::fs::read(&newest).unwrap();
        // Every few bytes flipped, lengths included: an unchecked read must stop, not
        // fail.
        for i in (40..bytes.len()).step_by(97) {
            bytes[i] ^= 0x5a;
        }
        std::fs::write(&newest, &bytes).unwrap();
        if let Some(early) = EarlyBuild::start(d.path()) {
            // The check refuses this file; recovery would pick another, or none.
            assert!(early.take(&nothing_recovered()).is_none());
        }
        // Truncated anywhere, the unchecked records end without a panic.
        for cut in [17, 100, 1000, bytes.len() / 2] {
            let b = std::fs::read(&newest).unwrap()[..cut].to_vec();
            if let Some(s) = UncheckedSnapshot::open(Mapped::Owned(b)) {
                let _ = build_from(&newest, &s, &|| false);
            }
        }
    }

    #[test]
    fn the_node_count_hint_is_the_end_records() {
        let d = tempfile::tempdir().unwrap();
        let p = write(d.path(), 12, b"second");
        let s = UncheckedSnapshot::open(Mapped::Owned(std::fs::read(&p).unwrap())).unwrap();
        let checked = recovered(&p);
        assert_eq!(
            s.node_records_hint,
            Some(checked.snapshot.unwrap().node_records)
        );
    }
}
