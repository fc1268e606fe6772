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
//! 3.9 does). Sans-IO: plain tables, no clocks or sockets.
//!
//! Layout (memory per watch is the point: a million watches is an ordinary load). The
//! two tables share one entry per (path, connection): each watched path is stored once
//! (a dense slot vector with a 4-byte hash index beside it, as the tree's node table),
//! and holds one sorted `Vec<u32>` of entries, each a connection slot with both tables'
//! mode flags packed in; each connection holds the sorted path slots it watches. So a
//! watch costs 8 bytes beyond its path (4 on each side), where ZooKeeper's two
//! `HashMap<String, Set<Watcher>>` / `HashMap<Watcher, Set<String>>` pairs per table
//! cost a hash node and a table slot on each side. Counters kept on every change answer
//! `wchs` and `zk_watch_count` in O(1); `wchc` is built in bounded steps
//! ([`WatchManager::listing_step`]).

#[cfg(test)]
pub(crate) mod reference;

use ahash::{AHashMap, RandomState};
use hashbrown::HashTable;

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

const STANDARD: u8 = 1;
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

/// Which of ZooKeeper's two `WatchManager`s: `dataWatches` or `childWatches`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    Data,
    Child,
}

impl Table {
    /// Where the table's three mode bits sit in an entry.
    fn shift(self) -> u32 {
        match self {
            Table::Data => 0,
            Table::Child => 3,
        }
    }
}

/// Bits of an entry below the connection slot: three mode flags per table.
const FLAG_BITS: u32 = 6;
/// Connection slots an entry can name (2^26: far more connections than a shard has
/// file descriptors).
const MAX_WATCHERS: usize = 1 << (32 - FLAG_BITS);

fn entry_slot(e: u32) -> u32 {
    e >> FLAG_BITS
}

fn entry_flags(e: u32, t: Table) -> u8 {
    ((e >> t.shift()) & 7) as u8
}

fn with_flags(e: u32, t: Table, flags: u8) -> u32 {
    (e & !(7 << t.shift())) | (u32::from(flags) << t.shift())
}

/// One watched path: its watchers in both tables, sorted by connection slot.
struct PathSlot {
    path: Box<str>,
    entries: Vec<u32>,
    /// Entries with flags in the data / child table.
    data_n: u32,
    child_n: u32,
}

/// One connection that has (or had) watches here.
struct WatcherSlot {
    id: WatcherId,
    /// Path slots it has an entry at, sorted.
    paths: Vec<u32>,
    /// Its pairs in the data table.
    data_paths: u32,
    /// Whether the data table lists it (`wchs`' connections): from its first data watch
    /// until it closes or a removeWatches empties its data watches. A fired one-shot
    /// watch does not unlist it, as in ZooKeeper.
    data_listed: bool,
}

/// Per-table counters, kept on every change.
#[derive(Default, Debug)]
struct Counts {
    /// (watcher, path) pairs (`WatchManager.size()`).
    pairs: usize,
    /// Paths with at least one pair.
    paths: usize,
    /// How many pairs hold a recursive mode: while zero, a trigger need not look at
    /// ancestors (`recursiveWatchQty`).
    recursive: usize,
}

#[derive(Default)]
pub struct WatchManager {
    index: HashTable<u32>,
    hasher: RandomState,
    paths: Vec<PathSlot>,
    free_paths: Vec<u32>,
    watcher_slots: AHashMap<WatcherId, u32>,
    watchers: Vec<WatcherSlot>,
    free_watchers: Vec<u32>,
    /// Connections the data table lists (see `WatcherSlot::data_listed`).
    data_listed: usize,
    /// `DataTree.dataWatches`' counters.
    data: Counts,
    /// `DataTree.childWatches`' counters.
    child: Counts,
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

impl WatchManager {
    pub fn new() -> Self {
        Self::default()
    }

    fn counts(&mut self, t: Table) -> &mut Counts {
        match t {
            Table::Data => &mut self.data,
            Table::Child => &mut self.child,
        }
    }

    fn find_path(&self, path: &str) -> Option<u32> {
        let paths = &self.paths;
        self.index
            .find(self.hasher.hash_one(path), |&i| {
                &*paths[i as usize].path == path
            })
            .copied()
    }

    fn intern_path(&mut self, path: &str) -> u32 {
        if let Some(p) = self.find_path(path) {
            return p;
        }
        let slot = PathSlot {
            path: path.into(),
            entries: Vec::new(),
            data_n: 0,
            child_n: 0,
        };
        let pid = match self.free_paths.pop() {
            Some(pid) => {
                self.paths[pid as usize] = slot;
                pid
            }
            None => {
                self.paths.push(slot);
                (self.paths.len() - 1) as u32
            }
        };
        let (paths, hasher) = (&self.paths, &self.hasher);
        self.index.insert_unique(hasher.hash_one(path), pid, |&i| {
            hasher.hash_one(&*paths[i as usize].path)
        });
        pid
    }

    /// Forgets a path slot nobody watches any more.
    fn release_path(&mut self, pid: u32) {
        let hash = self.hasher.hash_one(&*self.paths[pid as usize].path);
        if let Ok(e) = self.index.find_entry(hash, |&i| i == pid) {
            e.remove();
        }
        let slot = &mut self.paths[pid as usize];
        slot.path = Box::default();
        slot.entries = Vec::new();
        self.free_paths.push(pid);
    }

    fn find_watcher(&self, w: WatcherId) -> Option<u32> {
        self.watcher_slots.get(&w).copied()
    }

    /// The connection's slot, made on its first watch; None if every slot an entry can
    /// name is taken (cannot happen with real connections: see `MAX_WATCHERS`).
    fn watcher_slot(&mut self, w: WatcherId) -> Option<u32> {
        if let Some(s) = self.find_watcher(w) {
            return Some(s);
        }
        let slot = WatcherSlot {
            id: w,
            paths: Vec::new(),
            data_paths: 0,
            data_listed: false,
        };
        let s = match self.free_watchers.pop() {
            Some(s) => {
                self.watchers[s as usize] = slot;
                s
            }
            None if self.watchers.len() < MAX_WATCHERS => {
                self.watchers.push(slot);
                (self.watchers.len() - 1) as u32
            }
            None => return None,
        };
        self.watcher_slots.insert(w, s);
        Some(s)
    }

    /// Frees the connection's slot once it neither watches anything nor is listed.
    fn maybe_release_watcher(&mut self, s: u32) {
        let slot = &self.watchers[s as usize];
        if slot.paths.is_empty() && !slot.data_listed {
            self.watcher_slots.remove(&slot.id);
            self.watchers[s as usize].paths = Vec::new();
            self.free_watchers.push(s);
        }
    }

    /// The position of connection slot `s` in path `pid`'s entries.
    fn entry_pos(&self, pid: u32, s: u32) -> Result<usize, usize> {
        self.paths[pid as usize]
            .entries
            .binary_search_by_key(&s, |&e| entry_slot(e))
    }

    /// Updates the counters for an entry going from `old` to `new` flags in table `t`.
    fn count_change(&mut self, pid: u32, s: u32, t: Table, old: u8, new: u8) {
        let (path, watcher) = (
            &mut self.paths[pid as usize],
            &mut self.watchers[s as usize],
        );
        let n = match t {
            Table::Data => &mut path.data_n,
            Table::Child => &mut path.child_n,
        };
        let mut paths_delta = 0isize;
        let mut pairs_delta = 0isize;
        if old == 0 && new != 0 {
            *n += 1;
            pairs_delta = 1;
            if *n == 1 {
                paths_delta = 1;
            }
            if t == Table::Data {
                watcher.data_paths += 1;
            }
        } else if old != 0 && new == 0 {
            *n -= 1;
            pairs_delta = -1;
            if *n == 0 {
                paths_delta = -1;
            }
            if t == Table::Data {
                watcher.data_paths -= 1;
            }
        }
        let c = self.counts(t);
        c.pairs = c.pairs.wrapping_add_signed(pairs_delta);
        c.paths = c.paths.wrapping_add_signed(paths_delta);
        match (old & RECURSIVE != 0, new & RECURSIVE != 0) {
            (false, true) => c.recursive += 1,
            (true, false) => c.recursive -= 1,
            _ => {}
        }
    }

    /// `addWatch(path, watcher, mode)` on table `t`.
    fn add(&mut self, path: &str, w: WatcherId, t: Table, mode: WatcherMode) {
        let Some(s) = self.watcher_slot(w) else {
            return;
        };
        let pid = self.intern_path(path);
        let (pos, old_entry) = match self.entry_pos(pid, s) {
            Ok(pos) => (pos, self.paths[pid as usize].entries[pos]),
            Err(pos) => {
                let e = s << FLAG_BITS;
                self.paths[pid as usize].entries.insert(pos, e);
                let wp = &mut self.watchers[s as usize].paths;
                if let Err(i) = wp.binary_search(&pid) {
                    wp.insert(i, pid);
                }
                (pos, e)
            }
        };
        // ZooKeeper 3.8 keeps one mode per (watcher, path) in each table: a new watch
        // replaces the old one's mode (`WatcherModeManager.setWatcherMode`), so a
        // one-shot watch set over a persistent one turns it one-shot. (3.9 keeps both.)
        let old = entry_flags(old_entry, t);
        let new = mode.flag();
        self.paths[pid as usize].entries[pos] = with_flags(old_entry, t, new);
        self.count_change(pid, s, t, old, new);
        if t == Table::Data && !self.watchers[s as usize].data_listed {
            self.watchers[s as usize].data_listed = true;
            self.data_listed += 1;
        }
    }

    /// Drops the entry at `pos` of path `pid` (its flags are all clear): from the
    /// path, from its connection, and the path itself if nobody else watches it.
    fn drop_entry(&mut self, pid: u32, pos: usize) -> u32 {
        let e = self.paths[pid as usize].entries.remove(pos);
        let s = entry_slot(e);
        let wp = &mut self.watchers[s as usize].paths;
        if let Ok(i) = wp.binary_search(&pid) {
            wp.remove(i);
        }
        if self.paths[pid as usize].entries.is_empty() {
            self.release_path(pid);
        }
        s
    }

    /// `removeWatcher(path, watcher, mode)` on table `t`; `None` removes every mode.
    /// True if anything was removed.
    fn remove(&mut self, path: &str, w: WatcherId, t: Table, mode: Option<WatcherMode>) -> bool {
        let (Some(pid), Some(s)) = (self.find_path(path), self.find_watcher(w)) else {
            return false;
        };
        let Ok(pos) = self.entry_pos(pid, s) else {
            return false;
        };
        let e = self.paths[pid as usize].entries[pos];
        let old = entry_flags(e, t);
        let new = match mode {
            Some(m) => old & !m.flag(),
            None => 0,
        };
        if new == old {
            return false;
        }
        let e = with_flags(e, t, new);
        self.paths[pid as usize].entries[pos] = e;
        self.count_change(pid, s, t, old, new);
        // `unwatch`: unlike a trigger, emptying the connection's data watches unlists it.
        let ws = &mut self.watchers[s as usize];
        if t == Table::Data && new == 0 && ws.data_paths == 0 && ws.data_listed {
            ws.data_listed = false;
            self.data_listed -= 1;
        }
        if e & ((1 << FLAG_BITS) - 1) == 0 {
            self.drop_entry(pid, pos);
        }
        self.maybe_release_watcher(s);
        true
    }

    /// `triggerWatch` on table `t` without delivery: pushes every watcher that fires
    /// for a change at `path` (possibly more than once if it fires at several levels)
    /// and consumes the one-shot watches at `path`.
    fn trigger_table(
        &mut self,
        t: Table,
        path: &str,
        children_changed: bool,
        found: &mut Vec<WatcherId>,
    ) {
        let all_levels = self.counts(t).recursive > 0;
        for (level, local) in PathParents::new(path).enumerate() {
            if level > 0 && !all_levels {
                break;
            }
            let Some(pid) = self.find_path(local) else {
                continue;
            };
            if level > 0 {
                if children_changed {
                    continue;
                }
                for &e in &self.paths[pid as usize].entries {
                    if entry_flags(e, t) & RECURSIVE != 0 {
                        found.push(self.watchers[entry_slot(e) as usize].id);
                    }
                }
                continue;
            }
            // Level 0: every entry of the table fires (a recursive one not for
            // NodeChildrenChanged); its one-shot part is consumed.
            let mut entries = std::mem::take(&mut self.paths[pid as usize].entries);
            let mut emptied: Vec<u32> = Vec::new();
            let mut kept = 0;
            for i in 0..entries.len() {
                let e = entries[i];
                let old = entry_flags(e, t);
                let fires = old != 0 && !(children_changed && old & RECURSIVE != 0);
                let s = entry_slot(e);
                let mut e2 = e;
                if fires {
                    found.push(self.watchers[s as usize].id);
                    let new = old & !STANDARD;
                    if new != old {
                        e2 = with_flags(e, t, new);
                        self.count_change(pid, s, t, old, new);
                    }
                }
                if e2 & ((1 << FLAG_BITS) - 1) == 0 {
                    // ZooKeeper leaves the watcher's (now maybe empty) path map in
                    // place here; `wchs`/`wchc` show it until the connection goes.
                    emptied.push(s);
                } else {
                    entries[kept] = e2;
                    kept += 1;
                }
            }
            entries.truncate(kept);
            let now_empty = entries.is_empty();
            self.paths[pid as usize].entries = entries;
            for s in emptied {
                let wp = &mut self.watchers[s as usize].paths;
                if let Ok(i) = wp.binary_search(&pid) {
                    wp.remove(i);
                }
                self.maybe_release_watcher(s);
            }
            if now_empty {
                self.release_path(pid);
            }
        }
    }

    /// `containsWatcher(path, watcher, mode)` on table `t`; `None` means any mode.
    fn contains(&self, path: &str, w: WatcherId, t: Table, mode: Option<WatcherMode>) -> bool {
        let (Some(pid), Some(s)) = (self.find_path(path), self.find_watcher(w)) else {
            return false;
        };
        let Ok(pos) = self.entry_pos(pid, s) else {
            return false;
        };
        let flags = entry_flags(self.paths[pid as usize].entries[pos], t);
        flags != 0 && mode.is_none_or(|m| flags & m.flag() != 0)
    }

    /// getData/exists with watch: fires on NodeCreated/NodeDeleted/NodeDataChanged.
    pub fn add_data_watch(&mut self, path: &str, w: WatcherId) {
        self.add(path, w, Table::Data, WatcherMode::Standard);
    }
    /// getChildren with watch: fires on NodeChildrenChanged/NodeDeleted.
    pub fn add_child_watch(&mut self, path: &str, w: WatcherId) {
        self.add(path, w, Table::Child, WatcherMode::Standard);
    }
    /// addWatch: persistent (every event on the path) or persistent-recursive (every
    /// event on the path and below, except NodeChildrenChanged).
    pub fn add_persistent_watch(&mut self, path: &str, w: WatcherId, recursive: bool) {
        // ZooKeeper 3.8 puts a recursive watch in both tables (3.9's ZOOKEEPER-4466
        // stopped adding it to the child table), so it replaces a one-shot child watch
        // of the same connection on the same path.
        let mode = if recursive {
            WatcherMode::PersistentRecursive
        } else {
            WatcherMode::Persistent
        };
        self.add(path, w, Table::Data, mode);
        self.add(path, w, Table::Child, mode);
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
                self.trigger_table(Table::Data, path, false, out)
            }
            EventType::NodeDeleted => {
                self.trigger_table(Table::Data, path, false, out);
                self.trigger_table(Table::Child, path, false, out);
            }
            EventType::NodeChildrenChanged => self.trigger_table(Table::Child, path, true, out),
            _ => {}
        }
        let fired = &mut out[start..];
        if !fired.is_sorted() {
            fired.sort_unstable();
        }
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
        let Some(s) = self.find_watcher(w) else {
            return;
        };
        for pid in std::mem::take(&mut self.watchers[s as usize].paths) {
            let Ok(pos) = self.entry_pos(pid, s) else {
                continue;
            };
            let e = self.paths[pid as usize].entries[pos];
            for t in [Table::Data, Table::Child] {
                self.count_change(pid, s, t, entry_flags(e, t), 0);
            }
            self.paths[pid as usize].entries.remove(pos);
            if self.paths[pid as usize].entries.is_empty() {
                self.release_path(pid);
            }
        }
        if self.watchers[s as usize].data_listed {
            self.watchers[s as usize].data_listed = false;
            self.data_listed -= 1;
        }
        self.maybe_release_watcher(s);
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
            watcher_type::CHILDREN => self.remove(path, w, Table::Child, std),
            watcher_type::DATA => self.remove(path, w, Table::Data, std),
            watcher_type::PERSISTENT => {
                let m = Some(WatcherMode::Persistent);
                let c = self.remove(path, w, Table::Child, m);
                let d = self.remove(path, w, Table::Data, m);
                c || d
            }
            watcher_type::PERSISTENT_RECURSIVE => {
                let m = Some(WatcherMode::PersistentRecursive);
                let c = self.remove(path, w, Table::Child, m);
                let d = self.remove(path, w, Table::Data, m);
                c || d
            }
            watcher_type::ANY => {
                let c = self.remove(path, w, Table::Child, None);
                let d = self.remove(path, w, Table::Data, None);
                c || d
            }
            _ => false,
        }
    }
    /// checkWatches without the `&mut`: whether `w` has a watch of `watcher_type` on
    /// `path`.
    pub fn contains_watcher(&self, path: &str, watcher_type: i32, w: WatcherId) -> bool {
        match watcher_type {
            watcher_type::CHILDREN => {
                self.contains(path, w, Table::Child, Some(WatcherMode::Standard))
            }
            watcher_type::DATA => self.contains(path, w, Table::Data, Some(WatcherMode::Standard)),
            watcher_type::PERSISTENT => {
                self.contains(path, w, Table::Data, Some(WatcherMode::Persistent))
            }
            watcher_type::PERSISTENT_RECURSIVE => {
                self.contains(path, w, Table::Data, Some(WatcherMode::PersistentRecursive))
            }
            watcher_type::ANY => {
                self.contains(path, w, Table::Child, None)
                    || self.contains(path, w, Table::Data, None)
            }
            _ => false,
        }
    }
    /// `DataTree.getWatchCount`: (watcher, path) pairs in both tables, so a persistent
    /// watch counts twice (it lives in both), as in `mntr`'s zk_watch_count.
    pub fn watch_count(&self) -> usize {
        self.data.pairs + self.child.pairs
    }
    /// `wchs`: the summary of the data table (ZooKeeper's 4lw never show child
    /// watches), from counters: O(1).
    pub fn summary(&self) -> WatchesSummary {
        WatchesSummary {
            num_connections: self.data_listed,
            num_paths: self.data.paths,
            total_watches: self.data.pairs,
        }
    }
    /// The data-table paths of connection slot `s`, sorted.
    fn data_paths_of(&self, s: u32) -> Vec<String> {
        let mut p: Vec<String> = self.watchers[s as usize]
            .paths
            .iter()
            .filter(|&&pid| {
                self.entry_pos(pid, s).is_ok_and(|pos| {
                    entry_flags(self.paths[pid as usize].entries[pos], Table::Data) != 0
                })
            })
            .map(|&pid| self.paths[pid as usize].path.to_string())
            .collect();
        p.sort_unstable();
        p
    }
    /// `wchc` (`getWatches`) one bounded step at a time: appends the connections the
    /// data table lists from connection slot `*cursor` on, each with its watched paths
    /// (sorted), until about `budget` paths were taken (at least one connection), and
    /// moves `*cursor` past them. Returns true once every slot was visited (then the
    /// listing is complete: sort it by connection). Between steps the table may change:
    /// a connection is listed as it was when its step reached it, and one whose slot
    /// is reused behind the cursor is missed, as any listing of a live table taken
    /// without stopping it.
    pub fn listing_step(
        &self,
        cursor: &mut usize,
        budget: usize,
        out: &mut Vec<(WatcherId, Vec<String>)>,
    ) -> bool {
        let mut spent = 0;
        while *cursor < self.watchers.len() {
            if spent >= budget.max(1) {
                return false;
            }
            let s = *cursor as u32;
            *cursor += 1;
            let slot = &self.watchers[s as usize];
            // A free slot is never listed (release clears `data_listed`).
            if !slot.data_listed || self.watcher_slots.get(&slot.id) != Some(&s) {
                continue;
            }
            spent += 1 + slot.paths.len();
            out.push((slot.id, self.data_paths_of(s)));
        }
        true
    }
    /// `wchc` (`getWatches`): each connection of the data table with its watched paths,
    /// sorted by connection then path. May include connections with no paths left (see
    /// [`WatchesSummary::num_connections`]). The caller maps connections to sessions.
    /// All at once: see [`WatchManager::listing_step`] for the bounded form.
    pub fn watches_by_watcher(&self) -> Vec<(WatcherId, Vec<String>)> {
        let mut v = Vec::new();
        self.listing_step(&mut 0, usize::MAX, &mut v);
        v.sort_unstable_by_key(|(w, _)| *w);
        v
    }
    /// `wchp` (`getWatchesByPath`): each path of the data table with its watching
    /// connections, sorted by path then connection.
    pub fn watches_by_path(&self) -> Vec<(String, Vec<WatcherId>)> {
        let mut v: Vec<(String, Vec<WatcherId>)> = self
            .paths
            .iter()
            .filter(|p| p.data_n > 0)
            .map(|p| {
                let mut ws: Vec<WatcherId> = p
                    .entries
                    .iter()
                    .filter(|&&e| entry_flags(e, Table::Data) != 0)
                    .map(|&e| self.watchers[entry_slot(e) as usize].id)
                    .collect();
                ws.sort_unstable();
                (p.path.to_string(), ws)
            })
            .collect();
        v.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        v
    }
    /// Whether the connection has any watch in either table.
    pub fn has_watches(&self, w: WatcherId) -> bool {
        self.find_watcher(w)
            .is_some_and(|s| !self.watchers[s as usize].paths.is_empty())
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

    /// The compact layout against the plain-map one it replaced (`reference.rs`, main's
    /// WatchManager): random adds of every kind, triggers of every event type at
    /// random depths, check/remove of every watcher type and connection closes, over
    /// a few paths and connections so that they collide; after every step the fired
    /// watchers, the answers, the counts and the 4lw listings must be equal.
    #[test]
    fn matches_the_plain_map_manager_under_random_operations() {
        use super::reference::ReferenceWatchManager;
        let paths = ["/", "/a", "/a/b", "/a/b/c", "/b", "/a/c", "/ab"];
        let events = [
            NodeCreated,
            NodeDataChanged,
            NodeDeleted,
            NodeChildrenChanged,
            EventType::None,
        ];
        let types = [
            wt::CHILDREN,
            wt::DATA,
            wt::ANY,
            wt::PERSISTENT,
            wt::PERSISTENT_RECURSIVE,
            9,
        ];
        for seed in 0..40u64 {
            // xorshift: deterministic and dependency-free.
            let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let mut rnd = |n: usize| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % n as u64) as usize
            };
            let mut m = WatchManager::new();
            let mut r = ReferenceWatchManager::new();
            for step in 0..2_000 {
                let p = paths[rnd(paths.len())];
                let w = 1 + rnd(5) as u64;
                let what = rnd(10);
                let ctx = format!("seed {seed} step {step}: op {what} {p} w{w}");
                match what {
                    0 | 1 => {
                        m.add_data_watch(p, w);
                        r.add_data_watch(p, w);
                    }
                    2 => {
                        m.add_child_watch(p, w);
                        r.add_child_watch(p, w);
                    }
                    3 => {
                        let rec = rnd(2) == 0;
                        m.add_persistent_watch(p, w, rec);
                        r.add_persistent_watch(p, w, rec);
                    }
                    4..=6 => {
                        let e = events[rnd(events.len())];
                        let (mut a, mut b) = (Vec::new(), Vec::new());
                        m.trigger(p, e, &mut a);
                        r.trigger(p, e, &mut b);
                        assert_eq!(a, b, "{ctx} {e:?}");
                    }
                    7 => {
                        let t = types[rnd(types.len())];
                        let remove = rnd(2) == 0;
                        assert_eq!(
                            m.check_or_remove(p, t, w, remove),
                            r.check_or_remove(p, t, w, remove),
                            "{ctx} type {t} remove {remove}"
                        );
                    }
                    8 => {
                        if rnd(4) == 0 {
                            m.remove_watcher(w);
                            r.remove_watcher(w);
                        }
                    }
                    _ => {
                        for t in types {
                            assert_eq!(
                                m.contains_watcher(p, t, w),
                                r.contains_watcher(p, t, w),
                                "{ctx} contains type {t}"
                            );
                        }
                    }
                }
                assert_eq!(m.watch_count(), r.watch_count(), "{ctx}");
                assert_eq!(m.summary(), r.summary(), "{ctx}");
                assert_eq!(m.data.recursive, r.data_recursive(), "{ctx}");
                for w in 1..=5 {
                    assert_eq!(m.has_watches(w), r.has_watches(w), "{ctx} w{w}");
                }
                if step % 50 == 0 {
                    assert_eq!(m.watches_by_watcher(), r.watches_by_watcher(), "{ctx}");
                    assert_eq!(m.watches_by_path(), r.watches_by_path(), "{ctx}");
                    // The stepped listing, one connection per step, is the same.
                    let (mut cur, mut v) = (0, Vec::new());
                    while !m.listing_step(&mut cur, 1, &mut v) {}
                    v.sort_unstable_by_key(|(w, _)| *w);
                    assert_eq!(v, r.watches_by_watcher(), "{ctx}");
                }
            }
            // Closing every connection leaves nothing behind.
            for w in 1..=5 {
                m.remove_watcher(w);
            }
            assert_eq!(m.watch_count(), 0);
            assert_eq!(m.summary(), WatchesSummary::default());
            assert!(m.index.is_empty() && m.watcher_slots.is_empty());
            assert_eq!(m.free_paths.len(), m.paths.len());
            assert_eq!(m.free_watchers.len(), m.watchers.len());
        }
    }
}
