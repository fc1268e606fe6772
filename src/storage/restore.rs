//! A recovery's state put into a tree: the snapshot's records (the one loop the
//! server's restores, after recovery's check and early beside it, the simulated
//! servers and the snapshot fuzzer share, so that what is simulated and fuzzed is what
//! a restart runs), then the txns logged after it.

use super::recovery::Recovered;
use super::snapshot::{LoadedSnapshot, SnapRecord};
use crate::proto::ErrorCode;
use crate::request::apply;
use crate::tree::{AclId, DataTree, Restorer};

/// How many records [`restore_records`] puts in between looks at `stop`.
pub const STOP_CHECK_EVERY: usize = 4096;

/// Why [`restore_records`] ended before the records did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreStop<'a> {
    /// `stop` said so.
    Stopped,
    /// A node record the tree refused (its parent missing, say).
    Node { path: &'a str, error: ErrorCode },
    /// A tombstone the tree refused.
    Removal { path: &'a str, error: ErrorCode },
}

impl std::fmt::Display for RestoreStop<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RestoreStop::Stopped => write!(f, "stopped: no longer wanted"),
            RestoreStop::Node { path, error } => {
                write!(f, "node {path} cannot be restored ({error:?})")
            }
            RestoreStop::Removal { path, error } => {
                write!(f, "node {path} cannot be removed ({error:?})")
            }
        }
    }
}

/// Puts `records` into `r` in order: nodes (data left in the mapping `r` keeps, if it
/// keeps one; see [`Restorer::keep_mapping`]), tombstones, and the start of the changes
/// made during the walk. `stop` is asked every [`STOP_CHECK_EVERY`] records.
pub fn restore_records<'a>(
    r: &mut Restorer<'_>,
    records: impl Iterator<Item = SnapRecord<'a>>,
    stop: &dyn Fn() -> bool,
) -> Result<(), RestoreStop<'a>> {
    // Siblings mostly repeat one ACL: equal encoded bytes mean the same list, so it is
    // decoded and interned once per run.
    let mut prev_acl: Option<(&[u8], AclId)> = None;
    for (i, record) in records.enumerate() {
        if i % STOP_CHECK_EVERY == 0 && stop() {
            return Err(RestoreStop::Stopped);
        }
        match record {
            SnapRecord::Node(n) => {
                let acl = match prev_acl {
                    Some((raw, id)) if raw == n.acl_raw => {
                        r.reuse_acl(id);
                        id
                    }
                    _ => r.intern_acl(&n.acl()),
                };
                prev_acl = Some((n.acl_raw, acl));
                let data = n.data.unwrap_or(crate::proto::jute::null_slice());
                r.node_in_mapping(n.path, data, acl, n.stat)
                    .map_err(|error| RestoreStop::Node {
                        path: n.path,
                        error,
                    })?;
            }
            SnapRecord::Tombstone(path) => {
                // A removal may free the ACL the previous node interned.
                prev_acl = None;
                r.remove(path)
                    .map_err(|error| RestoreStop::Removal { path, error })?;
            }
            SnapRecord::ChangesFollow => {
                // A change may be overruled later, releasing its ACL.
                prev_acl = None;
                r.begin_changes();
            }
        }
    }
    Ok(())
}

/// `s`'s records in an order [`restore_records`] takes: as written for version 2 (a
/// walk, parents first); version 1 listed nodes in no particular order, so its nodes
/// are sorted by depth (parents first).
pub fn records_parents_first(s: &LoadedSnapshot) -> Box<dyn Iterator<Item = SnapRecord<'_>> + '_> {
    if s.version != 1 {
        return Box::new(s.records());
    }
    let mut v: Vec<SnapRecord> = s.records().collect();
    v.sort_by_cached_key(|r| match r {
        SnapRecord::Node(n) => n.path.bytes().filter(|&b| b == b'/').count(),
        _ => usize::MAX,
    });
    Box::new(v.into_iter())
}

/// Completes a tree holding `rec`'s snapshot records: the snapshot's sessions and
/// zxid, then every txn after it.
pub fn finish_tree(mut tree: DataTree, rec: &Recovered) -> Result<DataTree, String> {
    if let Some(s) = &rec.snapshot {
        for &(id, timeout) in &s.sessions {
            tree.add_session(id, timeout);
        }
        tree.set_last_processed_zxid(s.last_zxid);
    }
    let mut triggers = Vec::new();
    for (hdr, txn) in &rec.txns {
        triggers.clear();
        apply(&mut tree, hdr, txn, &mut triggers);
    }
    tree.set_last_processed_zxid(rec.last_zxid.max(tree.last_processed_zxid()));
    Ok(tree)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::jute::Jute;
    use crate::storage::snapshot::NodeRecord;
    use crate::tree::StatPersisted;

    fn node<'a>(path: &'a str, acl_raw: &'a [u8]) -> SnapRecord<'a> {
        SnapRecord::Node(NodeRecord {
            path,
            data: Some(b"d"),
            acl_raw,
            stat: StatPersisted::default(),
        })
    }

    /// Nodes, a tombstone and the changes after the walk go in; a node whose parent is
    /// missing and a `stop` that says so end the loop with what they are.
    #[test]
    fn records_go_in_and_refusals_say_which_record() {
        let mut acl = bytes::BytesMut::new();
        crate::tree::open_acl_unsafe().encode(&mut acl);
        let acl = acl.freeze();
        let mut tree = DataTree::new();
        let mut r = Restorer::new(&mut tree);
        let records = [
            node("/a", &acl),
            node("/a/b", &acl),
            node("/c", &acl),
            SnapRecord::ChangesFollow,
            SnapRecord::Tombstone("/c"),
        ];
        restore_records(&mut r, records.into_iter(), &|| false).unwrap();
        r.finish().unwrap();
        assert!(tree.exists("/a/b"));
        assert!(!tree.exists("/c"));

        let mut tree = DataTree::new();
        let mut r = Restorer::new(&mut tree);
        let orphan = [node("/x/y", &acl)];
        assert_eq!(
            restore_records(&mut r, orphan.into_iter(), &|| false),
            Err(RestoreStop::Node {
                path: "/x/y",
                error: ErrorCode::NoNode
            })
        );
        let one = [node("/a", &acl)];
        assert_eq!(
            restore_records(&mut r, one.into_iter(), &|| true),
            Err(RestoreStop::Stopped)
        );
    }
}
