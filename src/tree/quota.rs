//! Quotas as ZooKeeper keeps them: `/zookeeper/quota<path>/zookeeper_limits` holds the
//! limits and `/zookeeper/quota<path>/zookeeper_stats` the usage, both as `StatsTrack`
//! text ("count=1,bytes=2=;byteHardLimit=-1;countHardLimit=3"). The set of quota'd
//! paths is ZooKeeper's `PathTrie`; the longest quota'd prefix of a path is the one
//! whose stats a change updates.

use std::collections::{BTreeMap, HashSet};

pub const PROC_ZOOKEEPER: &str = "/zookeeper";
pub const QUOTA_ZOOKEEPER: &str = "/zookeeper/quota";
pub const CONFIG_ZOOKEEPER: &str = "/zookeeper/config";
pub const LIMIT_NODE: &str = "zookeeper_limits";
pub const STAT_NODE: &str = "zookeeper_stats";

/// `Quotas.limitPath`.
pub fn limit_path(path: &str) -> String {
    format!("{QUOTA_ZOOKEEPER}{path}/{LIMIT_NODE}")
}

/// `Quotas.statPath`.
pub fn stat_path(path: &str) -> String {
    format!("{QUOTA_ZOOKEEPER}{path}/{STAT_NODE}")
}

/// `StatsTrack`: key/value pairs, -1 for an absent key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsTrack {
    stats: BTreeMap<String, i64>,
}

impl StatsTrack {
    /// Parses as ZooKeeper does: pairs split on runs of ',' and ';', each pair split on
    /// '=' with trailing empty pieces dropped. A malformed pair is skipped (ZooKeeper
    /// would throw).
    pub fn parse(data: &[u8]) -> StatsTrack {
        let text = String::from_utf8_lossy(data);
        let mut stats = BTreeMap::new();
        for pair in text.split([',', ';']).filter(|p| !p.is_empty()) {
            let mut kv: Vec<&str> = pair.split('=').collect();
            while kv.last() == Some(&"") {
                kv.pop();
            }
            if kv.len() < 2 {
                continue;
            }
            let v = if kv[1].is_empty() {
                Some(-1)
            } else {
                kv[1].parse::<i64>().ok()
            };
            if let Some(v) = v {
                stats.insert(kv[0].to_string(), v);
            }
        }
        StatsTrack { stats }
    }

    fn get(&self, k: &str) -> i64 {
        self.stats.get(k).copied().unwrap_or(-1)
    }

    pub fn count(&self) -> i64 {
        self.get("count")
    }
    pub fn bytes(&self) -> i64 {
        self.get("bytes")
    }
    pub fn count_hard_limit(&self) -> i64 {
        self.get("countHardLimit")
    }
    pub fn byte_hard_limit(&self) -> i64 {
        self.get("byteHardLimit")
    }
    pub fn set_count(&mut self, v: i64) {
        self.stats.insert("count".into(), v);
    }
    pub fn set_bytes(&mut self, v: i64) {
        self.stats.insert("bytes".into(), v);
    }

    /// `StatsTrack.toString`: count and bytes first, then an extra '=' and the other keys
    /// sorted, each behind ';' (the '=' makes old parsers ignore the new keys).
    pub fn to_text(&self) -> String {
        let mut s = format!("count={},bytes={}", self.count(), self.bytes());
        let mut extra = self
            .stats
            .iter()
            .filter(|(k, _)| k.as_str() != "count" && k.as_str() != "bytes")
            .peekable();
        if extra.peek().is_some() {
            s.push('=');
            for (k, v) in extra {
                s.push(';');
                s.push_str(k);
                s.push('=');
                s.push_str(&v.to_string());
            }
        }
        s
    }
}

/// The paths that have a quota (ZooKeeper's `PathTrie` of limit nodes).
#[derive(Debug, Clone, Default)]
pub struct QuotaPaths {
    paths: HashSet<String>,
}

/// A path as the trie sees it: components without empty ones, "" for the root.
fn normalize(path: &str) -> String {
    let mut s = String::with_capacity(path.len());
    for c in path.split('/').filter(|c| !c.is_empty()) {
        s.push('/');
        s.push_str(c);
    }
    s
}

impl QuotaPaths {
    pub fn add(&mut self, path: &str) {
        let n = normalize(path);
        if !n.is_empty() {
            self.paths.insert(n);
        }
    }

    pub fn remove(&mut self, path: &str) {
        self.paths.remove(&normalize(path));
    }

    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// `getMaxPrefixWithQuota`: the deepest quota'd ancestor-or-self of `path`, `None`
    /// when there is none (or it is the root).
    pub fn max_prefix(&self, path: &str) -> Option<String> {
        if self.paths.is_empty() {
            return None;
        }
        let mut cur = String::with_capacity(path.len());
        let mut best = None;
        for c in path.split('/').filter(|c| !c.is_empty()) {
            cur.push('/');
            cur.push_str(c);
            if self.paths.contains(&cur) {
                best = Some(cur.clone());
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_track_round_trips_like_zookeeper() {
        let mut s = StatsTrack::parse(b"count=1,bytes=10");
        assert_eq!((s.count(), s.bytes()), (1, 10));
        assert_eq!(s.count_hard_limit(), -1);
        s.set_count(3);
        assert_eq!(s.to_text(), "count=3,bytes=10");
        let l = StatsTrack::parse(b"count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=2");
        assert_eq!(l.count_hard_limit(), 2);
        assert_eq!(
            l.to_text(),
            "count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=2"
        );
        assert_eq!(StatsTrack::parse(b"").to_text(), "count=-1,bytes=-1");
        assert_eq!(StatsTrack::parse(b"garbage;x=y").count(), -1);
    }

    #[test]
    fn max_prefix_is_deepest_quota_path() {
        let mut q = QuotaPaths::default();
        assert_eq!(q.max_prefix("/a/b"), None);
        q.add("/a");
        q.add("/a/b/c");
        assert_eq!(q.max_prefix("/a"), Some("/a".into()));
        assert_eq!(q.max_prefix("/a/b"), Some("/a".into()));
        assert_eq!(q.max_prefix("/a/b/c/d"), Some("/a/b/c".into()));
        assert_eq!(q.max_prefix("/ab"), None);
        q.remove("/a");
        assert_eq!(q.max_prefix("/a/b"), None);
        q.add("/");
        assert_eq!(q.max_prefix("/x"), None);
    }
}
