//! The per-shard watch registry, as ZooKeeper's `WatchManager` pair inside `DataTree`.
//!
//! ZooKeeper keeps two registries: `dataWatches` (getData/exists watches, persistent and
//! persistent-recursive watches) and `childWatches` (getChildren watches and persistent
//! watches). Which registry a change consults decides who hears about it, so this module
//! keeps the same two tables and the same rules rather than a flattened equivalent:
//!
//! | change at `path`          | data table at `path` | child table at `path` | recursive on ancestors |
//! |---------------------------|----------------------|-----------------------|------------------------|
//! | NodeCreated               | yes                  | no                    | yes                    |
//! | NodeDataChanged           | yes                  | no                    | yes                    |
//! | NodeDeleted               | yes                  | yes (the quirk)       | yes                    |
//! | NodeChildrenChanged       | no                   | yes                   | no (not in child table)|
//!
//! A persistent watch sits in both tables, so it hears all four event types for its own
//! path; a persistent-recursive watch sits only in the data table, so it hears
//! created/changed/deleted for its path and every descendant, but never
//! NodeChildrenChanged. One-shot (standard) watches are consumed when they fire;
//! persistent ones stay, even across the node's deletion. A (watcher, path) pair may
//! hold several modes at once (ZooKeeper 3.9's `WatchStats`), e.g. a one-shot data
//! watch beside a persistent watch: firing consumes only the one-shot part.
//!
//! Watchers are connections of this shard ([`WatcherId`]); the caller turns each hit into
//! a `WatcherEvent` (and checks READ on the node's ACL before delivering, as ZooKeeper
//! 3.9 does). Sans-IO: plain maps, no clocks or sockets.

use std::collections::{HashMap, HashSet};

use crate::proto::{watcher_type, EventType};

/// A connection on this shard.
pub type WatcherId = u64;

/// ZooKeeper's `WatcherMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WatcherMode {
    /// One-shot: getData/exists/getChildren with watch.
    Standard,
    /// addWatch PERSISTENT.
    Persistent,
    /// addWatch PERSISTENT_RECURSIVE.
    PersistentRecursive,
}

impl WatcherMode {
    /// `WatcherMode.fromZooDef` for an AddWatchRequest's `mode`
    /// (`proto::add_watch_mode`); None for anything else (ZooKeeper throws).
    pub fn from_add_watch_mode(mode: i32) -> Option<WatcherMode> {
        use crate::proto::add_watch_mode::*;
        match mode {
            PERSISTENT => Some(WatcherMode::Persistent),
            PERSISTENT_RECURSIVE => Some(WatcherMode::PersistentRecursive),
            _ => None,
        }
    }

    /// The `WatchStats` flag bit of the mode (`1 << ordinal`).
    fn flag(self) -> u8 {
        match self {
            WatcherMode::Standard => 1,
            WatcherMode::Persistent => 2,
            WatcherMode::PersistentRecursive => 4,
        }
    }
}

const RECURSIVE: u8 = 4;

/// The `wchs` numbers (ZooKeeper's `WatchesSummary`), from the data table only, as
/// ZooKeeper reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WatchesSummary {
    /// "N connections watching": connections with an entry in the table. As in
    /// ZooKeeper, a connection whose last one-shot watch fired still counts until it
    /// closes or removes a watch.
    pub num_connections: usize,
    /// "watching M paths".
    pub num_paths: usize,
    /// "Total watches:T": (connection, path) pairs.
    pub total_watches: usize,
}

/// One ZooKeeper `WatchManager`: path -> watchers and watcher -> (path -> mode flags).
#[derive(Default)]
struct Table {
    by_path: HashMap<String, HashSet<WatcherId>>,
    by_watcher: HashMap<WatcherId, HashMap<String, u8>>,
    /// How many (watcher, path) pairs hold a recursive mode: while zero, a trigger need
    /// not look at ancestors (`recursiveWatchQty`).
    recursive: usize,
}

impl Table {
    /// `addWatch(path, watcher, mode)`: true if the pair gained the mode.
    fn add(&mut self, path: &str, w: WatcherId, mode: WatcherMode) -> bool {
        self.by_path.entry(path.to_string()).or_default().insert(w);
        let paths = self.by_watcher.entry(w).or_default();
        let flags = paths.entry(path.to_string()).or_insert(0);
        // ZooKeeper 3.8 keeps one mode per (watcher, path) in each table: a new watch
        // replaces the old one's mode (`WatcherModeManager.setWatcherMode`), so a
        // one-shot watch set over a persistent one turns it one-shot. (3.9 keeps both.)
        let old = *flags;
        *flags = mode.flag();
        if old & RECURSIVE != 0 {
            self.recursive -= 1;
        }
        if mode == WatcherMode::PersistentRecursive {
            self.recursive += 1;
        }
        old != mode.flag()
    }

    /// `removeWatcher(watcher)`: the connection closed.
    fn remove_watcher(&mut self, w: WatcherId) {
        let Some(paths) = self.by_watcher.remove(&w) else {
            return;
        };
        for (p, flags) in paths {
            if let Some(set) = self.by_path.get_mut(&p) {
                set.remove(&w);
                if set.is_empty() {
                    self.by_path.remove(&p);
                }
            }
            if flags & RECURSIVE != 0 {
                self.recursive -= 1;
            }
        }
    }

    /// `triggerWatch` without delivery: pushes every watcher that fires for a change at
    /// `path` (possibly more than once if it fires at several levels) and consumes the
    /// one-shot watches at `path`.
    fn trigger(&mut self, path: &str, children_changed: bool, found: &mut Vec<WatcherId>) {
        let all_levels = self.recursive > 0;
        for (level, local) in PathParents::new(path).enumerate() {
            if level > 0 && !all_levels {
                break;
            }
            let Some(set) = self.by_path.get_mut(local) else {
                continue;
            };
            if level == 0 {
                set.retain(|w| {
                    let Some(paths) = self.by_watcher.get_mut(w) else {
                        return true;
                    };
                    let Some(flags) = paths.get_mut(local) else {
                        return true;
                    };
                    // A recursive watch never hears NodeChildrenChanged.
                    if children_changed && *flags & RECURSIVE != 0 {
                        return true;
                    }
                    found.push(*w);
                    *flags &= !WatcherMode::Standard.flag();
                    if *flags == 0 {
                        // ZooKeeper leaves the watcher's (now maybe empty) path map in
                        // place here; `wchs`/`wchc` show it until the connection goes.
                        paths.remove(local);
                        false
                    } else {
                        true
                    }
                });
                if set.is_empty() {
                    self.by_path.remove(local);
                }
            } else {
                for w in set.iter() {
                    let recursive = self
                        .by_watcher
                        .get(w)
                        .and_then(|paths| paths.get(local))
                        .is_some_and(|flags| flags & RECURSIVE != 0);
                    if recursive && !children_changed {
                        found.push(*w);
                    }
                }
            }
        }
    }

    /// `containsWatcher(path, watcher, mode)`; `None` means any mode.
    fn contains(&self, path: &str, w: WatcherId, mode: Option<WatcherMode>) -> bool {
        self.by_watcher
            .get(&w)
            .and_then(|paths| paths.get(path))
            .is_some_and(|flags| mode.is_none_or(|m| flags & m.flag() != 0))
    }

    /// `removeWatcher(path, watcher, mode)`; `None` removes every mode. True if
    /// anything was removed.
    fn remove(&mut self, path: &str, w: WatcherId, mode: Option<WatcherMode>) -> bool {
        if !self.by_path.contains_key(path) {
            return false;
        }
        let Some(paths) = self.by_watcher.get_mut(&w) else {
            return false;
        };
        let old = paths.get(path).copied().unwrap_or(0);
        let new = match mode {
            Some(m) => old & !m.flag(),
            None => 0,
        };
        if new == old {
            return false;
        }
        if new != 0 {
            paths.insert(path.to_string(), new);
        } else {
            // `unwatch`: unlike a trigger, this also drops an emptied watcher entry.
            paths.remove(path);
            if paths.is_empty() {
                self.by_watcher.remove(&w);
            }
            if let Some(set) = self.by_path.get_mut(path) {
                set.remove(&w);
                if set.is_empty() {
                    self.by_path.remove(path);
                }
            }
        }
        if old & RECURSIVE != 0 && new & RECURSIVE == 0 {
            self.recursive -= 1;
        }
        true
    }

    /// `size()`: (watcher, path) pairs.
    fn size(&self) -> usize {
        self.by_path.values().map(HashSet::len).sum()
    }
}

/// ZooKeeper's `PathParentIterator.forAll`: the path itself, then each ancestor up to
/// "/". Stops (rather than failing as Java would) on a path without a leading '/'.
struct PathParents<'a> {
    next: Option<&'a str>,
}

impl<'a> PathParents<'a> {
    fn new(path: &'a str) -> Self {
        PathParents {
            next: (!path.is_empty()).then_some(path),
        }
    }
}

impl<'a> Iterator for PathParents<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let cur = self.next?;
        self.next = if cur == "/" {
            None
        } else {
            match cur.rfind('/') {
                Some(0) => Some("/"),
                Some(i) => Some(&cur[..i]),
                None => None,
            }
        };
        Some(cur)
    }
}

#[derive(Default)]
pub struct WatchManager {
    /// `DataTree.dataWatches`.
    data: Table,
    /// `DataTree.childWatches`.
    child: Table,
}

impl WatchManager {
    pub fn new() -> Self {
        Self::default()
    }
    /// getData/exists with watch: fires on NodeCreated/NodeDeleted/NodeDataChanged.
    pub fn add_data_watch(&mut self, path: &str, w: WatcherId) {
        self.data.add(path, w, WatcherMode::Standard);
    }
    /// getChildren with watch: fires on NodeChildrenChanged/NodeDeleted.
    pub fn add_child_watch(&mut self, path: &str, w: WatcherId) {
        self.child.add(path, w, WatcherMode::Standard);
    }
    /// addWatch: persistent (every event on the path) or persistent-recursive (every
    /// event on the path and below, except NodeChildrenChanged).
    pub fn add_persistent_watch(&mut self, path: &str, w: WatcherId, recursive: bool) {
        if recursive {
            // ZooKeeper 3.8 puts a recursive watch in both tables (3.9's ZOOKEEPER-4466
            // stopped adding it to the child table), so it replaces a one-shot child
            // watch of the same connection on the same path.
            self.data.add(path, w, WatcherMode::PersistentRecursive);
            self.child.add(path, w, WatcherMode::PersistentRecursive);
        } else {
            self.data.add(path, w, WatcherMode::Persistent);
            self.child.add(path, w, WatcherMode::Persistent);
        }
    }
    /// `DataTree.addWatch(path, watcher, mode)` for either mode (Standard is taken as a
    /// one-shot data watch).
    pub fn add_watch(&mut self, path: &str, w: WatcherId, mode: WatcherMode) {
        match mode {
            WatcherMode::Standard => self.add_data_watch(path, w),
            WatcherMode::Persistent => self.add_persistent_watch(path, w, false),
            WatcherMode::PersistentRecursive => self.add_persistent_watch(path, w, true),
        }
    }
    /// Fires the watches for one change, as ZooKeeper's DataTree + WatchManager do for
    /// the triggers `apply` emits: NodeCreated/NodeDataChanged at `path` reach data
    /// watches; NodeDeleted reaches data and child watches at `path`;
    /// NodeChildrenChanged (at the parent) reaches child watches. One-shot watches are
    /// removed as they fire. Each watcher gets at most one event per call.
    ///
    /// The watchers to notify are appended to `out` in ascending order (ZooKeeper's
    /// order is a hash set's, so none is promised). For NodeDeleted, a connection with
    /// both a data and a child watch on the node gets one event and loses both watches,
    /// as ZooKeeper's suppress set does. Other event types fire nothing.
    pub fn trigger(&mut self, path: &str, event: EventType, out: &mut Vec<WatcherId>) {
        let start = out.len();
        match event {
            EventType::NodeCreated | EventType::NodeDataChanged => {
                self.data.trigger(path, false, out)
            }
            EventType::NodeDeleted => {
                self.data.trigger(path, false, out);
                self.child.trigger(path, false, out);
            }
            EventType::NodeChildrenChanged => self.child.trigger(path, true, out),
            _ => {}
        }
        let fired = &mut out[start..];
        fired.sort_unstable();
        let mut kept = start;
        for i in start..out.len() {
            if kept == start || out[kept - 1] != out[i] {
                out[kept] = out[i];
                kept += 1;
            }
        }
        out.truncate(kept);
    }
    /// Drops every watch of a closed connection.
    pub fn remove_watcher(&mut self, w: WatcherId) {
        self.data.remove_watcher(w);
        self.child.remove_watcher(w);
    }
    /// checkWatches (`remove` false) / removeWatches (`remove` true) for `watcher_type`
    /// (proto::watcher_type). False when the watcher has no such watch (the caller
    /// answers NoWatcher). The *WatchRemoved events are made by the client library.
    ///
    /// As `DataTree.containsWatcher`/`removeWatch`: Children and Data are the one-shot
    /// watches only (a persistent watch is not a child or data watch here); Persistent
    /// and PersistentRecursive are those modes; Any is every mode in both tables. An
    /// unknown type matches nothing.
    pub fn check_or_remove(
        &mut self,
        path: &str,
        watcher_type: i32,
        w: WatcherId,
        remove: bool,
    ) -> bool {
        if !remove {
            return self.contains_watcher(path, watcher_type, w);
        }
        let std = Some(WatcherMode::Standard);
        match watcher_type {
            watcher_type::CHILDREN => self.child.remove(path, w, std),
            watcher_type::DATA => self.data.remove(path, w, std),
            watcher_type::PERSISTENT => {
                let m = Some(WatcherMode::Persistent);
                let c = self.child.remove(path, w, m);
                let d = self.data.remove(path, w, m);
                c || d
            }
            watcher_type::PERSISTENT_RECURSIVE => {
                let m = Some(WatcherMode::PersistentRecursive);
                let c = self.child.remove(path, w, m);
                let d = self.data.remove(path, w, m);
                c || d
            }
            watcher_type::ANY => {
                let c = self.child.remove(path, w, None);
                let d = self.data.remove(path, w, None);
                c || d
            }
            _ => false,
        }
    }
    /// checkWatches without the `&mut`: whether `w` has a watch of `watcher_type` on
    /// `path`.
    pub fn contains_watcher(&self, path: &str, watcher_type: i32, w: WatcherId) -> bool {
        match watcher_type {
            watcher_type::CHILDREN => self.child.contains(path, w, Some(WatcherMode::Standard)),
            watcher_type::DATA => self.data.contains(path, w, Some(WatcherMode::Standard)),
            watcher_type::PERSISTENT => self.data.contains(path, w, Some(WatcherMode::Persistent)),
            watcher_type::PERSISTENT_RECURSIVE => {
                self.data
                    .contains(path, w, Some(WatcherMode::PersistentRecursive))
            }
            watcher_type::ANY => {
                self.child.contains(path, w, None) || self.data.contains(path, w, None)
            }
            _ => false,
        }
    }
    /// `DataTree.getWatchCount`: (watcher, path) pairs in both tables, so a persistent
    /// watch counts twice (it lives in both), as in `mntr`'s zk_watch_count.
    pub fn watch_count(&self) -> usize {
        self.data.size() + self.child.size()
    }
    /// `wchs`: the summary of the data table (ZooKeeper's 4lw never show child watches).
    pub fn summary(&self) -> WatchesSummary {
        WatchesSummary {
            num_connections: self.data.by_watcher.len(),
            num_paths: self.data.by_path.len(),
            total_watches: self.data.by_watcher.values().map(HashMap::len).sum(),
        }
    }
    /// `wchc` (`getWatches`): each connection of the data table with its watched paths,
    /// sorted by connection then path. May include connections with no paths left (see
    /// [`WatchesSummary::num_connections`]). The caller maps connections to sessions.
    pub fn watches_by_watcher(&self) -> Vec<(WatcherId, Vec<String>)> {
        let mut v: Vec<(WatcherId, Vec<String>)> = self
            .data
            .by_watcher
            .iter()
            .map(|(w, paths)| {
                let mut p: Vec<String> = paths.keys().cloned().collect();
                p.sort_unstable();
                (*w, p)
            })
            .collect();
        v.sort_unstable_by_key(|(w, _)| *w);
        v
    }
    /// `wchp` (`getWatchesByPath`): each path of the data table with its watching
    /// connections, sorted by path then connection.
    pub fn watches_by_path(&self) -> Vec<(String, Vec<WatcherId>)> {
        let mut v: Vec<(String, Vec<WatcherId>)> = self
            .data
            .by_path
            .iter()
            .map(|(p, set)| {
                let mut ws: Vec<WatcherId> = set.iter().copied().collect();
                ws.sort_unstable();
                (p.clone(), ws)
            })
            .collect();
        v.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        v
    }
    /// Whether the connection has any watch in either table.
    pub fn has_watches(&self, w: WatcherId) -> bool {
        [&self.data, &self.child]
            .iter()
            .any(|t| t.by_watcher.get(&w).is_some_and(|p| !p.is_empty()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::watcher_type as wt;
    use EventType::*;

    fn fire(m: &mut WatchManager, path: &str, e: EventType) -> Vec<WatcherId> {
        let mut out = Vec::new();
        m.trigger(path, e, &mut out);
        out
    }

    /// The events DataTree emits for each operation.
    fn create(m: &mut WatchManager, path: &str, parent: &str) -> (Vec<u64>, Vec<u64>) {
        (
            fire(m, path, NodeCreated),
            fire(m, parent, NodeChildrenChanged),
        )
    }
    fn delete(m: &mut WatchManager, path: &str, parent: &str) -> (Vec<u64>, Vec<u64>) {
        (
            fire(m, path, NodeDeleted),
            fire(m, parent, NodeChildrenChanged),
        )
    }

    #[test]
    fn parents_iterate_to_root() {
        let v: Vec<&str> = PathParents::new("/a/b/c").collect();
        assert_eq!(v, vec!["/a/b/c", "/a/b", "/a", "/"]);
        assert_eq!(PathParents::new("/").collect::<Vec<_>>(), vec!["/"]);
        assert_eq!(PathParents::new("/a").collect::<Vec<_>>(), vec!["/a", "/"]);
        assert!(PathParents::new("").next().is_none());
        assert_eq!(
            PathParents::new("a/b").collect::<Vec<_>>(),
            vec!["a/b", "a"]
        );
    }

    #[test]
    fn data_watch_is_one_shot_for_created_changed_deleted() {
        for e in [NodeCreated, NodeDataChanged, NodeDeleted] {
            let mut m = WatchManager::new();
            m.add_data_watch("/a", 1);
            assert_eq!(fire(&mut m, "/a", e), vec![1], "{e:?}");
            assert!(fire(&mut m, "/a", e).is_empty(), "{e:?} fired twice");
            assert_eq!(m.watch_count(), 0);
        }
    }

    #[test]
    fn data_watch_ignores_children_and_other_paths() {
        let mut m = WatchManager::new();
        m.add_data_watch("/a", 1);
        assert!(fire(&mut m, "/a", NodeChildrenChanged).is_empty());
        assert!(fire(&mut m, "/a/b", NodeCreated).is_empty());
        assert!(fire(&mut m, "/ab", NodeDataChanged).is_empty());
        assert!(fire(&mut m, "/", NodeDataChanged).is_empty());
        assert_eq!(fire(&mut m, "/a", NodeDataChanged), vec![1]);
    }

    #[test]
    fn child_watch_fires_on_children_changed_and_on_own_delete() {
        let mut m = WatchManager::new();
        m.add_child_watch("/a", 1);
        assert!(fire(&mut m, "/a", NodeCreated).is_empty());
        assert!(fire(&mut m, "/a", NodeDataChanged).is_empty());
        assert_eq!(fire(&mut m, "/a", NodeChildrenChanged), vec![1]);
        assert!(fire(&mut m, "/a", NodeChildrenChanged).is_empty());
        // The quirk: NodeDeleted on the node itself reaches its child watches.
        m.add_child_watch("/a", 1);
        assert_eq!(fire(&mut m, "/a", NodeDeleted), vec![1]);
        assert_eq!(m.watch_count(), 0);
    }

    #[test]
    fn create_and_delete_sequences() {
        let mut m = WatchManager::new();
        m.add_data_watch("/p/c", 1); // exists watch on a missing node
        m.add_child_watch("/p", 2);
        m.add_data_watch("/p", 3);
        assert_eq!(create(&mut m, "/p/c", "/p"), (vec![1], vec![2]));
        m.add_data_watch("/p/c", 1);
        m.add_child_watch("/p", 2);
        assert_eq!(delete(&mut m, "/p/c", "/p"), (vec![1], vec![2]));
        // The data watch on the parent is untouched by either.
        assert!(m.contains_watcher("/p", wt::DATA, 3));
        // Root is the parent of top-level nodes.
        m.add_child_watch("/", 4);
        assert_eq!(create(&mut m, "/x", "/"), (vec![], vec![4]));
    }

    #[test]
    fn delete_notifies_once_and_consumes_both() {
        let mut m = WatchManager::new();
        m.add_data_watch("/a", 1);
        m.add_child_watch("/a", 1);
        m.add_child_watch("/a", 2);
        assert_eq!(fire(&mut m, "/a", NodeDeleted), vec![1, 2]);
        assert_eq!(m.watch_count(), 0);
        assert!(!m.contains_watcher("/a", wt::ANY, 1));
    }

    #[test]
    fn many_watchers_deduplicated_and_sorted() {
        let mut m = WatchManager::new();
        for w in [9, 3, 7, 3] {
            m.add_data_watch("/n", w);
        }
        assert_eq!(m.watch_count(), 3);
        let mut out = vec![100];
        m.trigger("/n", NodeDataChanged, &mut out);
        // Appends after what the caller already had.
        assert_eq!(out, vec![100, 3, 7, 9]);
    }

    #[test]
    fn persistent_watch_hears_all_four_on_its_path_and_stays() {
        let mut m = WatchManager::new();
        m.add_persistent_watch("/a", 1, false);
        assert_eq!(m.watch_count(), 2); // one in each table
        for e in [
            NodeCreated,
            NodeDataChanged,
            NodeChildrenChanged,
            NodeDeleted,
            NodeCreated,
        ] {
            assert_eq!(fire(&mut m, "/a", e), vec![1], "{e:?}");
        }
        // Not descendants, not the parent.
        assert!(fire(&mut m, "/a/b", NodeCreated).is_empty());
        assert!(fire(&mut m, "/a/b", NodeDeleted).is_empty());
        assert!(fire(&mut m, "/", NodeChildrenChanged).is_empty());
        assert_eq!(m.watch_count(), 2);
        // Creating a child: the persistent watch hears NodeChildrenChanged on /a.
        assert_eq!(create(&mut m, "/a/b", "/a"), (vec![], vec![1]));
    }

    #[test]
    fn recursive_watch_hears_subtree_but_never_children_changed() {
        let mut m = WatchManager::new();
        m.add_persistent_watch("/a", 1, true);
        assert_eq!(m.watch_count(), 2); // both tables, as ZooKeeper 3.8
        for p in ["/a", "/a/b", "/a/b/c/d"] {
            for e in [NodeCreated, NodeDataChanged, NodeDeleted] {
                assert_eq!(fire(&mut m, p, e), vec![1], "{p} {e:?}");
            }
            assert!(fire(&mut m, p, NodeChildrenChanged).is_empty(), "{p}");
        }
        assert!(fire(&mut m, "/", NodeDataChanged).is_empty());
        assert!(fire(&mut m, "/ab", NodeCreated).is_empty());
        assert!(fire(&mut m, "/b/a", NodeCreated).is_empty());
        // A create under /a: NodeCreated only.
        assert_eq!(create(&mut m, "/a/x", "/a"), (vec![1], vec![]));
        assert_eq!(m.watch_count(), 2);
    }

    #[test]
    fn recursive_at_root_sees_everything() {
        let mut m = WatchManager::new();
        m.add_persistent_watch("/", 5, true);
        assert_eq!(fire(&mut m, "/x/y", NodeDataChanged), vec![5]);
        assert_eq!(fire(&mut m, "/", NodeDataChanged), vec![5]);
    }

    #[test]
    fn recursive_at_several_levels_notifies_once() {
        let mut m = WatchManager::new();
        m.add_persistent_watch("/a", 1, true);
        m.add_persistent_watch("/a/b", 1, true);
        m.add_data_watch("/a/b/c", 1);
        m.add_persistent_watch("/a/b", 2, true);
        assert_eq!(fire(&mut m, "/a/b/c", NodeDataChanged), vec![1, 2]);
        // The one-shot part was consumed, the recursive ones stay.
        assert!(!m.contains_watcher("/a/b/c", wt::DATA, 1));
        assert_eq!(fire(&mut m, "/a/b/c", NodeDataChanged), vec![1, 2]);
    }

    #[test]
    fn a_one_shot_watch_replaces_a_persistent_one_on_the_same_path() {
        // ZooKeeper 3.8: one mode per (watcher, path) in each table.
        let mut m = WatchManager::new();
        m.add_persistent_watch("/a", 1, false);
        m.add_data_watch("/a", 1);
        m.add_child_watch("/a", 1);
        assert!(m.contains_watcher("/a", wt::DATA, 1));
        assert!(m.contains_watcher("/a", wt::CHILDREN, 1));
        assert!(!m.contains_watcher("/a", wt::PERSISTENT, 1));
        assert_eq!(fire(&mut m, "/a", NodeDataChanged), vec![1]);
        assert!(!m.contains_watcher("/a", wt::DATA, 1));
        assert_eq!(fire(&mut m, "/a", NodeChildrenChanged), vec![1]);
        assert!(!m.contains_watcher("/a", wt::CHILDREN, 1));
        // Nothing persistent is left.
        assert!(fire(&mut m, "/a", NodeDataChanged).is_empty());
        assert!(fire(&mut m, "/a", NodeChildrenChanged).is_empty());
    }

    #[test]
    fn a_persistent_watch_replaces_a_one_shot_one() {
        let mut m = WatchManager::new();
        m.add_data_watch("/a", 1);
        m.add_persistent_watch("/a", 1, false);
        assert_eq!(fire(&mut m, "/a", NodeDataChanged), vec![1]);
        assert_eq!(fire(&mut m, "/a", NodeDataChanged), vec![1]);
        assert!(m.contains_watcher("/a", wt::PERSISTENT, 1));
    }

    #[test]
    fn a_one_shot_watch_replaces_a_recursive_one_in_its_table() {
        let mut m = WatchManager::new();
        m.add_persistent_watch("/a", 1, true);
        m.add_data_watch("/a", 1);
        // The data table now holds a one-shot watch on /a: changes below /a no longer
        // reach watcher 1 through it.
        assert!(fire(&mut m, "/a/b", NodeDataChanged).is_empty());
        assert_eq!(fire(&mut m, "/a", NodeDataChanged), vec![1]);
        assert!(!m.contains_watcher("/a", wt::DATA, 1));
    }

    #[test]
    fn none_and_removed_events_fire_nothing() {
        let mut m = WatchManager::new();
        m.add_data_watch("/a", 1);
        m.add_child_watch("/a", 1);
        m.add_persistent_watch("/a", 2, true);
        for e in [
            EventType::None,
            DataWatchRemoved,
            ChildWatchRemoved,
            PersistentWatchRemoved,
        ] {
            assert!(fire(&mut m, "/a", e).is_empty());
        }
        assert_eq!(m.watch_count(), 4);
    }

    #[test]
    fn remove_watcher_drops_everything_of_a_connection() {
        let mut m = WatchManager::new();
        m.add_data_watch("/a", 1);
        m.add_child_watch("/a", 1);
        m.add_persistent_watch("/b", 1, false);
        m.add_persistent_watch("/c", 1, true);
        m.add_data_watch("/a", 2);
        m.remove_watcher(1);
        assert!(!m.has_watches(1));
        assert_eq!(m.watch_count(), 1);
        assert_eq!(fire(&mut m, "/c/x", NodeCreated), vec![]);
        assert_eq!(fire(&mut m, "/a", NodeDeleted), vec![2]);
        // The recursive counter went back to zero: ancestors are no longer walked.
        assert_eq!(m.data.recursive, 0);
        m.remove_watcher(77); // unknown: no effect
    }

    #[test]
    fn check_watches_by_type() {
        let mut m = WatchManager::new();
        m.add_data_watch("/d", 1);
        m.add_child_watch("/c", 1);
        m.add_persistent_watch("/p", 1, false);
        m.add_persistent_watch("/r", 1, true);
        let has = |m: &mut WatchManager, p: &str, t: i32| m.check_or_remove(p, t, 1, false);
        assert!(has(&mut m, "/d", wt::DATA));
        assert!(!has(&mut m, "/d", wt::CHILDREN));
        assert!(has(&mut m, "/c", wt::CHILDREN));
        assert!(!has(&mut m, "/c", wt::DATA));
        // A persistent watch is neither a data nor a child watch for checkWatches.
        assert!(!has(&mut m, "/p", wt::DATA));
        assert!(!has(&mut m, "/p", wt::CHILDREN));
        assert!(has(&mut m, "/p", wt::PERSISTENT));
        assert!(!has(&mut m, "/p", wt::PERSISTENT_RECURSIVE));
        assert!(has(&mut m, "/r", wt::PERSISTENT_RECURSIVE));
        assert!(!has(&mut m, "/r", wt::PERSISTENT));
        for p in ["/d", "/c", "/p", "/r"] {
            assert!(has(&mut m, p, wt::ANY), "{p}");
        }
        assert!(!has(&mut m, "/none", wt::ANY));
        assert!(!m.check_or_remove("/d", wt::DATA, 2, false));
        assert!(!has(&mut m, "/d", 0));
        assert!(!has(&mut m, "/d", 6));
        // Checking removes nothing.
        assert_eq!(m.watch_count(), 6);
    }

    #[test]
    fn remove_watches_by_type() {
        let mut m = WatchManager::new();
        m.add_data_watch("/a", 1);
        m.add_child_watch("/a", 1);
        assert!(!m.check_or_remove("/a", wt::PERSISTENT, 1, true));
        assert!(m.check_or_remove("/a", wt::DATA, 1, true));
        assert!(!m.check_or_remove("/a", wt::DATA, 1, true));
        assert!(m.contains_watcher("/a", wt::CHILDREN, 1));
        assert!(m.check_or_remove("/a", wt::CHILDREN, 1, true));
        assert_eq!(m.watch_count(), 0);

        m.add_persistent_watch("/p", 1, false);
        m.add_data_watch("/p", 1);
        assert!(m.check_or_remove("/p", wt::PERSISTENT, 1, true));
        // Only the persistent mode went; the one-shot data watch is still there.
        assert!(m.contains_watcher("/p", wt::DATA, 1));
        assert!(!m.contains_watcher("/p", wt::PERSISTENT, 1));
        assert_eq!(fire(&mut m, "/p", NodeChildrenChanged), vec![]);
        assert_eq!(fire(&mut m, "/p", NodeDataChanged), vec![1]);

        m.add_persistent_watch("/r", 1, true);
        assert!(!m.check_or_remove("/r", wt::PERSISTENT, 1, true));
        assert!(m.check_or_remove("/r", wt::PERSISTENT_RECURSIVE, 1, true));
        assert_eq!(m.data.recursive, 0);
        assert_eq!(fire(&mut m, "/r/x", NodeCreated), vec![]);

        m.add_persistent_watch("/x", 1, true);
        m.add_data_watch("/x", 1);
        m.add_child_watch("/x", 1);
        m.add_data_watch("/x", 2);
        assert!(m.check_or_remove("/x", wt::ANY, 1, true));
        assert!(!m.check_or_remove("/x", wt::ANY, 1, true));
        assert_eq!(m.data.recursive, 0);
        assert_eq!(fire(&mut m, "/x", NodeDeleted), vec![2]);
        assert!(!m.check_or_remove("/x", 99, 1, true));
    }

    #[test]
    fn four_letter_word_data() {
        let mut m = WatchManager::new();
        m.add_data_watch("/a", 1);
        m.add_data_watch("/b", 1);
        m.add_data_watch("/a", 2);
        m.add_child_watch("/c", 3); // child watches are invisible to wchs/wchc/wchp
        m.add_persistent_watch("/p", 4, false);
        assert_eq!(
            m.summary(),
            WatchesSummary {
                num_connections: 3,
                num_paths: 3,
                total_watches: 4
            }
        );
        assert_eq!(m.watch_count(), 6);
        assert_eq!(
            m.watches_by_watcher(),
            vec![
                (1, vec!["/a".to_string(), "/b".to_string()]),
                (2, vec!["/a".to_string()]),
                (4, vec!["/p".to_string()]),
            ]
        );
        assert_eq!(
            m.watches_by_path(),
            vec![
                ("/a".to_string(), vec![1, 2]),
                ("/b".to_string(), vec![1]),
                ("/p".to_string(), vec![4]),
            ]
        );
        // As ZooKeeper: a connection whose watch fired stays listed, with no paths.
        fire(&mut m, "/a", NodeDataChanged);
        assert_eq!(
            m.summary(),
            WatchesSummary {
                num_connections: 3,
                num_paths: 2,
                total_watches: 2
            }
        );
        assert_eq!(m.watches_by_watcher()[1], (2, vec![]));
        assert!(!m.has_watches(2));
        // ... until it closes.
        m.remove_watcher(2);
        assert_eq!(m.summary().num_connections, 2);
    }

    #[test]
    fn add_watch_mode_parsing() {
        assert_eq!(
            WatcherMode::from_add_watch_mode(0),
            Some(WatcherMode::Persistent)
        );
        assert_eq!(
            WatcherMode::from_add_watch_mode(1),
            Some(WatcherMode::PersistentRecursive)
        );
        assert_eq!(WatcherMode::from_add_watch_mode(2), Option::None);
        assert_eq!(WatcherMode::from_add_watch_mode(-1), Option::None);
        let mut m = WatchManager::new();
        m.add_watch("/a", 1, WatcherMode::PersistentRecursive);
        m.add_watch("/b", 1, WatcherMode::Persistent);
        m.add_watch("/c", 1, WatcherMode::Standard);
        assert!(m.contains_watcher("/a", wt::PERSISTENT_RECURSIVE, 1));
        assert!(m.contains_watcher("/b", wt::PERSISTENT, 1));
        assert!(m.contains_watcher("/c", wt::DATA, 1));
    }

    #[test]
    fn adding_twice_is_one_watch() {
        let mut m = WatchManager::new();
        m.add_persistent_watch("/r", 1, true);
        m.add_persistent_watch("/r", 1, true);
        assert_eq!(m.data.recursive, 1);
        m.add_child_watch("/c", 1);
        m.add_child_watch("/c", 1);
        assert_eq!(m.watch_count(), 3);
        assert!(m.check_or_remove("/r", wt::PERSISTENT_RECURSIVE, 1, true));
        assert_eq!(m.data.recursive, 0);
    }
}
