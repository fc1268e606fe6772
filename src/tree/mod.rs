//! The DataTree. CONTRACT STUB: owned by the tree/request work.

use crate::proto::Stat;

pub struct DataTree {}

impl Default for DataTree {
    fn default() -> Self {
        Self::new()
    }
}

impl DataTree {
    /// A tree holding `/`, `/zookeeper`, `/zookeeper/quota` and `/zookeeper/config`.
    pub fn new() -> Self {
        DataTree {}
    }

    pub fn last_processed_zxid(&self) -> i64 {
        0
    }

    pub fn node_count(&self) -> usize {
        0
    }

    /// Bytes of path names and data, as ZooKeeper's `approximateDataSize`.
    pub fn approximate_data_size(&self) -> u64 {
        0
    }

    pub fn stat(&self, path: &str) -> Option<Stat> {
        let _ = path;
        None
    }

    /// The live sessions and their negotiated timeouts (ms).
    pub fn session_timeout(&self, session_id: i64) -> Option<i32> {
        let _ = session_id;
        None
    }

    pub fn sessions(&self) -> Vec<(i64, i32)> {
        Vec::new()
    }

    /// The ephemeral paths owned by `session_id`, sorted.
    pub fn ephemerals(&self, session_id: i64) -> Vec<String> {
        let _ = session_id;
        Vec::new()
    }

    pub fn ephemeral_count(&self) -> usize {
        0
    }

    /// Containers that had a child and are now empty, and TTL nodes that are childless
    /// and unmodified for longer than their TTL at `now_ms`: ContainerManager's
    /// candidates, to be confirmed by `Prepper::prep_reap`.
    pub fn reap_candidates(&self, now_ms: i64) -> Vec<String> {
        let _ = now_ms;
        Vec::new()
    }
}
