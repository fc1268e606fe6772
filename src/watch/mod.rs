//! The per-shard watch registry. CONTRACT STUB: owned by the acl/session/watch work.

use crate::proto::EventType;

/// A connection on this shard.
pub type WatcherId = u64;

#[derive(Default)]
pub struct WatchManager {}

impl WatchManager {
    pub fn new() -> Self {
        Self::default()
    }
    /// getData/exists with watch: fires on NodeCreated/NodeDeleted/NodeDataChanged.
    pub fn add_data_watch(&mut self, path: &str, w: WatcherId) {
        let _ = (path, w);
    }
    /// getChildren with watch: fires on NodeChildrenChanged/NodeDeleted.
    pub fn add_child_watch(&mut self, path: &str, w: WatcherId) {
        let _ = (path, w);
    }
    /// addWatch: persistent (every event on the path) or persistent-recursive (every
    /// event on the path and below, except NodeChildrenChanged).
    pub fn add_persistent_watch(&mut self, path: &str, w: WatcherId, recursive: bool) {
        let _ = (path, w, recursive);
    }
    /// Fires the watches for one change, as ZooKeeper's DataTree + WatchManager do for
    /// the triggers `apply` emits: NodeCreated/NodeDataChanged at `path` reach data
    /// watches; NodeDeleted reaches data and child watches at `path`;
    /// NodeChildrenChanged (at the parent) reaches child watches. One-shot watches are
    /// removed as they fire. Each watcher gets at most one event per call.
    pub fn trigger(&mut self, path: &str, event: EventType, out: &mut Vec<WatcherId>) {
        let _ = (path, event, out);
    }
    /// Drops every watch of a closed connection.
    pub fn remove_watcher(&mut self, w: WatcherId) {
        let _ = w;
    }
    /// checkWatches (`remove` false) / removeWatches (`remove` true) for `watcher_type`
    /// (proto::watcher_type). False when the watcher has no such watch (the caller
    /// answers NoWatcher). The *WatchRemoved events are made by the client library.
    pub fn check_or_remove(
        &mut self,
        path: &str,
        watcher_type: i32,
        w: WatcherId,
        remove: bool,
    ) -> bool {
        let _ = (path, watcher_type, w, remove);
        false
    }
    pub fn watch_count(&self) -> usize {
        0
    }
}
