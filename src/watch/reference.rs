//! The plain-map WatchManager this module's compact layout replaced (main's, up to
//! the memory work of issue 12): ZooKeeper's two tables as hash maps of strings. Kept
//! as the oracle the compact one is checked against (the randomized test in
//! `mod.rs`) and as the "before" of the memory measurement (`tests/watch_memory.rs`
//! includes this file). Not used by the server.

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};

use super::{WatcherId, WatcherMode, WatchesSummary};
use crate::proto::{watcher_type, EventType};

const RECURSIVE: u8 = 4;

fn flag(m: WatcherMode) -> u8 {
    match m {
        WatcherMode::Standard => 1,
        WatcherMode::Persistent => 2,
        WatcherMode::PersistentRecursive => 4,
    }
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
        *flags = flag(mode);
        if old & RECURSIVE != 0 {
            self.recursive -= 1;
        }
        if mode == WatcherMode::PersistentRecursive {
            self.recursive += 1;
        }
        old != flag(mode)
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
                    *flags &= !flag(WatcherMode::Standard);
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
            .is_some_and(|flags| mode.is_none_or(|m| flags & flag(m) != 0))
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
            Some(m) => old & !flag(m),
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
pub struct ReferenceWatchManager {
    /// `DataTree.dataWatches`.
    data: Table,
    /// `DataTree.childWatches`.
    child: Table,
}

impl ReferenceWatchManager {
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
    /// The data table's recursive-watch counter.
    pub fn data_recursive(&self) -> usize {
        self.data.recursive
    }
}
