//! The tree's side of a fuzzy snapshot: a walk that visits every znode, parent before
//! children and siblings in name order, a bounded number at a time so commits go on
//! between steps, and the record of every path that changed meanwhile. The snapshot
//! writer appends the state of those paths after the walk, in rounds until few are
//! left, then a last round all at once; loading the walk's records and then the
//! changes, the last word on each path winning, gives exactly the tree at the zxid of
//! that last round (see `storage::snapshot` and `Restorer`).
//!
//! Why the record is complete: a node that changed after the walk (or a round) wrote
//! it, a node created after its parent was visited, and a node deleted before it was
//! reached all pass through `create_node`, `delete_node`, `set_data`, `set_acl` or a
//! quota stats rewrite, which note the path (and for creates and deletes the parent,
//! whose cversion, pzxid and child count change). A node that did not change throughout
//! existed when its parent was visited, so the walk reached it: a parent's children are
//! visited in name order from a cursor (the last name visited), which stays valid
//! whatever is added or removed around it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use ahash::AHashSet as HashSet;

use super::{ChildName, DataTree, Node};
use crate::proto::Acl;

/// A walk in progress: the nodes visited whose children are not all visited yet.
pub struct SnapshotWalk {
    stack: Vec<Frame>,
    started: bool,
}

struct Frame {
    /// The parent's path, and the same with a trailing '/'.
    path: String,
    prefix: String,
    /// The last child name visited.
    after: Option<ChildName>,
}

/// Paths a walk's record held, in no order.
pub struct ChangedPaths(HashSet<Box<str>>);

impl ChangedPaths {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_vec(self) -> Vec<Box<str>> {
        self.0.into_iter().collect()
    }
}

/// The paths changed while a walk runs. A copy of the tree starts with no walk.
#[derive(Default)]
pub(super) struct ChangeRecord {
    /// Whether a walk runs: checked on every change without taking the lock.
    on: AtomicBool,
    paths: Mutex<Option<HashSet<Box<str>>>>,
}

impl Clone for ChangeRecord {
    fn clone(&self) -> Self {
        ChangeRecord::default()
    }
}

impl ChangeRecord {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<HashSet<Box<str>>>> {
        self.paths.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl DataTree {
    /// Starts a walk and the record of changed paths. One walk at a time: starting
    /// another drops the record of the first.
    pub fn start_snapshot_walk(&self) -> SnapshotWalk {
        *self.changed.lock() = Some(Default::default());
        self.changed.on.store(true, Ordering::Relaxed);
        SnapshotWalk {
            stack: Vec::new(),
            started: false,
        }
    }

    /// Visits about `budget` nodes (`f(path, node, acl)`); true when the walk is
    /// complete.
    pub fn snapshot_walk_step(
        &self,
        walk: &mut SnapshotWalk,
        budget: usize,
        mut f: impl FnMut(&str, &Node, &Arc<[Acl]>),
    ) -> bool {
        if !walk.started {
            walk.started = true;
            if let Some(root) = self.nodes.get("/") {
                f("/", root, self.acl(root));
                walk.push("/");
            }
        }
        let mut spent = 0usize;
        let mut batch: Vec<ChildName> = Vec::new();
        let mut path = String::new();
        while spent < budget {
            let Some(top) = walk.stack.last_mut() else {
                return true;
            };
            // The next names after the cursor. A parent gone since is skipped: its
            // children are gone too, each one a change.
            batch.clear();
            if let Some(set) = self
                .nodes
                .get(top.path.as_str())
                .and_then(|p| p.children.as_deref())
            {
                let names = set.after(top.after.as_deref());
                batch.extend(names.take(budget - spent).cloned());
            }
            let Some(last) = batch.last() else {
                walk.stack.pop();
                continue;
            };
            top.after = Some(last.clone());
            let prefix_len = top.prefix.len();
            path.clear();
            path.push_str(&top.prefix);
            for name in &batch {
                path.truncate(prefix_len);
                path.push_str(name);
                spent += 1;
                if let Some(node) = self.nodes.get(path.as_str()) {
                    f(&path, node, self.acl(node));
                    if node.num_children() > 0 {
                        walk.push(&path);
                    }
                }
            }
        }
        walk.stack.is_empty()
    }

    /// The paths changed since the walk started or since the last call, unordered;
    /// the record goes on.
    /// The record is swapped out, not drained: the caller may turn it into a list
    /// after it lets the tree go.
    pub fn take_snapshot_changes(&self) -> ChangedPaths {
        ChangedPaths(match self.changed.lock().as_mut() {
            Some(c) => std::mem::take(c),
            None => HashSet::new(),
        })
    }

    /// Ends the record and hands back the paths changed since the last
    /// `take_snapshot_changes`.
    pub fn finish_snapshot_walk(&self) -> Vec<Box<str>> {
        self.changed.on.store(false, Ordering::Relaxed);
        self.changed
            .lock()
            .take()
            .map(|c| c.into_iter().collect())
            .unwrap_or_default()
    }

    /// Room for `extra` more changed paths in a running walk's record. The owner calls
    /// it before it takes the writer flag: growing the record rehashes every path in it
    /// (tens of ms at a few 100k), which would otherwise hold every reader.
    pub fn reserve_snapshot_changes(&self, extra: usize) {
        if !self.changed.on.load(Ordering::Relaxed) {
            return;
        }
        if let Some(c) = self.changed.lock().as_mut() {
            c.reserve(extra);
        }
    }

    /// Whether a walk's record of changes is on.
    pub fn snapshot_walk_running(&self) -> bool {
        self.changed.on.load(Ordering::Relaxed)
    }

    /// Notes a changed path while a walk runs ("" is the root).
    pub(super) fn note_change(&mut self, path: &str) {
        if !self.changed.on.load(Ordering::Relaxed) {
            return;
        }
        if let Some(c) = self.changed.lock().as_mut() {
            let key = if path.is_empty() { "/" } else { path };
            if !c.contains(key) {
                c.insert(key.into());
            }
        }
    }
}

impl SnapshotWalk {
    fn push(&mut self, path: &str) {
        let prefix = if path == "/" {
            "/".to_string()
        } else {
            format!("{path}/")
        };
        self.stack.push(Frame {
            path: path.to_string(),
            prefix,
            after: None,
        });
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::super::quota::{LIMIT_NODE, QUOTA_ZOOKEEPER, STAT_NODE};
    use super::super::*;
    use crate::proto::{ephemeral_owner, perms, Id};

    /// One snapshot record, as the server writes it (the file format is tested in
    /// `storage`).
    enum Rec {
        Node(String, Bytes, Vec<Acl>, StatPersisted),
        Gone(String),
        ChangesFollow,
    }

    fn rec(path: &str, node: &Node, acl: &Arc<[Acl]>) -> Rec {
        Rec::Node(
            path.to_string(),
            node.data().to_bytes(),
            acl.to_vec(),
            *node.persisted(),
        )
    }

    fn load(records: &[Rec]) -> DataTree {
        let mut t = DataTree::new();
        let mut r = Restorer::new(&mut t);
        let mut changes: Option<Changes<&Rec>> = None;
        for x in records {
            match (x, &mut changes) {
                (Rec::ChangesFollow, c) => {
                    c.get_or_insert_with(|| Changes::with_capacity(0));
                }
                (Rec::Node(p, ..), Some(c)) => c.node(p, x),
                (Rec::Gone(p), Some(c)) => c.removal(p),
                (Rec::Node(p, d, acl, st), None) => {
                    let id = r.intern_acl(acl);
                    r.node(p, d, id, *st)
                        .unwrap_or_else(|e| panic!("{p}: {e:?}"));
                }
                (Rec::Gone(p), None) => r.remove(p).unwrap_or_else(|e| panic!("{p}: {e:?}")),
            }
        }
        if let Some(c) = changes {
            r.apply_changes(c.into_order(), |r, p, x| {
                let Rec::Node(_, d, acl, st) = x else {
                    unreachable!("only nodes are put")
                };
                let id = r.intern_acl(acl);
                r.node(p, d, id, *st)
            })
            .unwrap_or_else(|e| panic!("{e}"));
        }
        r.finish();
        t
    }

    /// Everything a tree answers with, in a canonical order. `restored`: also what only
    /// two restored trees agree on (ACL reference counts, and the data size, which a
    /// live tree does not move on quota stats rewrites, as in ZooKeeper).
    fn canon(t: &DataTree, restored: bool) -> String {
        let mut paths: Vec<&str> = t.nodes.keys().collect();
        paths.sort_unstable();
        let mut out = String::new();
        for p in paths {
            let n = &t.nodes[p];
            let mut kids: Vec<&str> = n.children().collect();
            kids.sort_unstable();
            out.push_str(&format!(
                "{p} {:?} null={} {:?} {:?} {:?}\n",
                &n.data[..],
                crate::proto::jute::is_null_buffer(&n.data),
                &**t.acl(n),
                n.stat(),
                kids
            ));
        }
        let eph: Vec<_> = t
            .sessions_with_ephemerals()
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .collect();
        out.push_str(&format!(
            "eph {eph:?}\ncontainers {:?}\nttls {:?}\nquota {:?}\n",
            t.containers(),
            t.ttls(),
            ["/a/x", "/a/c/y", "/y/a"].map(|p| t.max_prefix_with_quota(p)),
        ));
        if restored {
            out.push_str(&format!("size {}\n", t.approximate_data_size()));
            let mut acls: Vec<String> = t
                .acls
                .by_id_for_tests()
                .map(|(l, c)| format!("{l:?}={c}"))
                .collect();
            acls.sort_unstable();
            out.push_str(&format!("acls {acls:?}\n"));
        }
        out
    }

    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    /// A random change, through the same calls `request::apply` makes.
    fn mutate(t: &mut DataTree, rng: &mut Rng, zxid: &mut i64) {
        *zxid += 1;
        let z = *zxid;
        let acls = [
            open_acl_unsafe(),
            read_acl_unsafe(),
            vec![Acl {
                perms: perms::ALL,
                id: Id {
                    scheme: "digest".into(),
                    id: "u:x".into(),
                },
            }],
        ];
        let mut paths: Vec<String> = t.nodes.keys().map(|k| k.to_string()).collect();
        paths.sort_unstable();
        let pick = |rng: &mut Rng, v: &[String]| v[rng.below(v.len())].clone();
        match rng.below(10) {
            0..=3 => {
                let parents: Vec<String> = paths
                    .iter()
                    .filter(|p| {
                        p.matches('/').count() < 4
                            && (!p.starts_with("/zookeeper") || p.starts_with(QUOTA_ZOOKEEPER))
                    })
                    .cloned()
                    .collect();
                let parent = pick(rng, &parents);
                let names = ["a", "b", "c", "x", "y", LIMIT_NODE, STAT_NODE];
                let name = names[rng.below(names.len())];
                let path = if parent == "/" {
                    format!("/{name}")
                } else {
                    format!("{parent}/{name}")
                };
                let owner = match rng.below(6) {
                    0 => 0x100 + rng.below(3) as i64,
                    1 => ephemeral_owner::CONTAINER,
                    2 => ephemeral_owner::ttl(1000),
                    _ => 0,
                };
                let data = if rng.below(8) == 0 {
                    crate::proto::jute::null_buffer()
                } else {
                    Bytes::from(format!("d{z}"))
                };
                let acl = &acls[rng.below(acls.len())];
                let _ = t.create_node(&path, data, acl, owner, -1, z, z * 10);
            }
            4..=5 => {
                let leaves: Vec<String> = paths
                    .iter()
                    .filter(|p| t.nodes[p.as_str()].num_children() == 0)
                    .filter(|p| !DataTree::is_special_path(p))
                    .cloned()
                    .collect();
                if !leaves.is_empty() {
                    let p = pick(rng, &leaves);
                    t.delete_node(&p, z).unwrap();
                }
            }
            6..=8 => {
                let p = pick(rng, &paths);
                let v = t.nodes[p.as_str()].stat.version + 1;
                t.set_data(&p, Bytes::from(format!("s{z}")), v, z, z * 10)
                    .unwrap();
            }
            _ => {
                let p = pick(rng, &paths);
                let v = t.nodes[p.as_str()].stat.aversion + 1;
                t.set_acl(&p, &acls[rng.below(acls.len())], v).unwrap();
            }
        }
        t.set_last_processed_zxid(z);
    }

    #[test]
    fn a_fuzzy_snapshot_is_exact_at_the_end_of_its_walk() {
        for seed in 1..=300u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let mut t = DataTree::new();
            let mut zxid = 0;
            for _ in 0..rng.below(120) + 5 {
                mutate(&mut t, &mut rng, &mut zxid);
            }
            let mut records = Vec::new();
            let mut walk = t.start_snapshot_walk();
            loop {
                let budget = 1 + rng.below(4);
                let done =
                    t.snapshot_walk_step(&mut walk, budget, |p, n, a| records.push(rec(p, n, a)));
                for _ in 0..rng.below(4) {
                    mutate(&mut t, &mut rng, &mut zxid);
                }
                if done {
                    break;
                }
            }
            // The changes: a few rounds with more changes between their pieces,
            // then the last round at once.
            records.push(Rec::ChangesFollow);
            let current = |t: &DataTree, p: &str| match t.get(p) {
                Some(n) => rec(p, n, t.acl(n)),
                None => Rec::Gone(p.to_string()),
            };
            for _ in 0..rng.below(4) {
                let paths = t.take_snapshot_changes().into_vec();
                for piece in paths.chunks(1 + rng.below(3)) {
                    records.extend(piece.iter().map(|p| current(&t, p)));
                    for _ in 0..rng.below(3) {
                        mutate(&mut t, &mut rng, &mut zxid);
                    }
                }
            }
            for p in t.finish_snapshot_walk() {
                records.push(current(&t, &p));
            }
            let fuzzy = load(&records);
            // The same tree snapshotted with nothing changing.
            let mut still = Vec::new();
            t.for_each_node(|p, n, a| still.push(rec(p, n, a)));
            let exact = load(&still);
            assert_eq!(canon(&fuzzy, true), canon(&exact, true), "seed {seed}");
            assert_eq!(canon(&fuzzy, false), canon(&t, false), "seed {seed}");
            // Changes after the walk are no longer recorded.
            mutate(&mut t, &mut rng, &mut zxid);
            assert!(!t.snapshot_walk_running());
        }
    }

    #[test]
    fn a_wide_node_is_walked_in_steps_in_name_order() {
        let mut t = DataTree::new();
        for i in 0..1000 {
            t.create_node(
                &format!("/n{i}"),
                Bytes::new(),
                &open_acl_unsafe(),
                0,
                -1,
                i + 1,
                0,
            )
            .unwrap();
        }
        let mut walk = t.start_snapshot_walk();
        let mut seen: Vec<String> = Vec::new();
        let mut steps = 0;
        while !t.snapshot_walk_step(&mut walk, 100, |p, _, _| seen.push(p.to_string())) {
            steps += 1;
            // Changes around the cursor: a name before it and one after it.
            let z = 2000 + steps as i64;
            let _ = t.delete_node(&format!("/n{}", steps * 97 % 1000), z);
        }
        let changed = t.finish_snapshot_walk();
        assert!(steps >= 9, "{steps} steps");
        // Every node that never changed was visited once, in name order per parent.
        for i in 0..1000 {
            let p = format!("/n{i}");
            if !changed.iter().any(|c| **c == *p) {
                assert_eq!(seen.iter().filter(|s| **s == p).count(), 1, "{p}");
            }
        }
        let ns: Vec<&String> = seen.iter().filter(|p| p.starts_with("/n")).collect();
        assert!(ns.windows(2).all(|w| w[0] < w[1]));
    }
}

#[cfg(test)]
mod speed {
    use super::super::*;

    /// `cargo test --release --lib walk_speed -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn walk_speed() {
        let mut t = DataTree::new();
        t.create_node("/k", Bytes::new(), &open_acl_unsafe(), 0, -1, 1, 0)
            .unwrap();
        let data = Bytes::from(vec![7u8; 100]);
        for i in 0..1_000_000i64 {
            t.create_node(
                &format!("/k/{i:08}"),
                data.clone(),
                &open_acl_unsafe(),
                0,
                -1,
                i + 2,
                0,
            )
            .unwrap();
        }
        for budget in [1024usize, 1 << 30] {
            let started = std::time::Instant::now();
            let mut walk = t.start_snapshot_walk();
            let mut n = 0u64;
            let mut buf = bytes::BytesMut::with_capacity(1 << 20);
            while !t.snapshot_walk_step(&mut walk, budget, |p, node, acl| {
                n += 1;
                use bytes::BufMut;
                buf.put_slice(p.as_bytes());
                buf.put_slice(node.data());
                buf.put_u64(acl.len() as u64);
                if buf.len() > 1 << 20 {
                    buf.clear();
                }
            }) {}
            t.finish_snapshot_walk();
            eprintln!("budget {budget}: {n} nodes in {:?}", started.elapsed());
        }
    }
}
