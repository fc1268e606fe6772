//! A recovery's state put into a tree: the snapshot's records (the one loop the
//! server's restores, after recovery's check and early beside it, the simulated
//! servers and the snapshot fuzzer share, so that what is simulated and fuzzed is what
//! a restart runs), then the txns logged after it.

use super::recovery::Recovered;
use super::snapshot::{LoadedSnapshot, NodeRecord, SnapRecord};
use crate::proto::ErrorCode;
use crate::request::apply;
use crate::tree::{AclId, Changes, DataTree, OrderedChanges, RestoreError, Restorer};

/// How many records [`restore_records`] puts in between looks at `stop`.
pub const STOP_CHECK_EVERY: usize = 4096;

/// Why a restore ended before the records did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreStop<'a> {
    /// `stop` said so.
    Stopped,
    /// A node record the tree refused (its parent missing, say).
    Node { path: &'a str, error: ErrorCode },
    /// A tombstone the tree refused.
    Removal { path: &'a str, error: ErrorCode },
    /// One of the changes after the walk the tree refused.
    Change(RestoreError),
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
            RestoreStop::Change(e) => e.fmt(f),
        }
    }
}

/// A snapshot's changes after its walk, collected (see [`Changes`]).
pub type SnapChanges<'a> = OrderedChanges<'a, NodeRecord<'a>>;

/// Puts `records` into `r` in order: the walk ([`restore_walk`]), then the changes
/// after it, collected and put in ([`collect_changes`], [`apply_changes`]). `stop` is
/// asked every [`STOP_CHECK_EVERY`] records. The caller then calls `r.finish()`.
pub fn restore_records<'a>(
    r: &mut Restorer<'_>,
    records: impl Iterator<Item = SnapRecord<'a>>,
    stop: &dyn Fn() -> bool,
) -> Result<(), RestoreStop<'a>> {
    restore_records_with(r, records, stop, |rest, room| {
        collect_changes(rest, room, stop)
    })
}

/// As [`restore_records`], the changes after the walk coming from `changes` (given the
/// records after the mark and the room left in the tree): collected there, or by
/// another thread that read the same file (`server::early_build`).
pub fn restore_records_with<'a, I: Iterator<Item = SnapRecord<'a>>>(
    r: &mut Restorer<'_>,
    records: I,
    stop: &dyn Fn() -> bool,
    changes: impl FnOnce(I, usize) -> Result<SnapChanges<'a>, RestoreStop<'a>>,
) -> Result<(), RestoreStop<'a>> {
    let mut records = records;
    if restore_walk(r, &mut records, stop)? {
        let room = r.room();
        apply_changes(r, changes(records, room)?)?;
    }
    Ok(())
}

/// Puts the walk's records into `r`: nodes (data left in the mapping `r` keeps, if it
/// keeps one; see [`Restorer::keep_mapping`]) and tombstones, up to the mark that
/// changes follow. Whether it met that mark (the changes are the rest of `records`).
pub fn restore_walk<'a>(
    r: &mut Restorer<'_>,
    records: &mut impl Iterator<Item = SnapRecord<'a>>,
    stop: &dyn Fn() -> bool,
) -> Result<bool, RestoreStop<'a>> {
    // Siblings mostly repeat one ACL: equal encoded bytes mean the same list, so it is
    // decoded and interned once per run.
    let mut acls = AclRun::default();
    for (i, record) in records.enumerate() {
        if i % STOP_CHECK_EVERY == 0 && stop() {
            return Err(RestoreStop::Stopped);
        }
        match record {
            SnapRecord::Node(n) => {
                let acl = acls.intern(r, &n);
                let data = n.data.unwrap_or(crate::proto::jute::null_slice());
                r.node_in_mapping(n.path, data, acl, n.stat)
                    .map_err(|error| RestoreStop::Node {
                        path: n.path,
                        error,
                    })?;
            }
            SnapRecord::Tombstone(path) => {
                // A removal may free the ACL the previous node interned.
                acls = AclRun::default();
                r.remove(path)
                    .map_err(|error| RestoreStop::Removal { path, error })?;
            }
            SnapRecord::ChangesFollow => return Ok(true),
        }
    }
    Ok(false)
}

/// Skips the walk's records: what is left of `records` are the changes, if any. How
/// many records it skipped.
pub fn skip_walk<'a>(records: &mut impl Iterator<Item = SnapRecord<'a>>) -> usize {
    let mut n = 0;
    for record in records {
        if let SnapRecord::ChangesFollow = record {
            break;
        }
        n += 1;
    }
    n
}

/// The last word on each path among the changes after the walk (the records after
/// the mark), in the order they go in. `room`: about how many there are.
pub fn collect_changes<'a>(
    records: impl Iterator<Item = SnapRecord<'a>>,
    room: usize,
    stop: &dyn Fn() -> bool,
) -> Result<SnapChanges<'a>, RestoreStop<'a>> {
    let mut changes = Changes::with_capacity(room);
    for (i, record) in records.enumerate() {
        if i % STOP_CHECK_EVERY == 0 && stop() {
            return Err(RestoreStop::Stopped);
        }
        match record {
            SnapRecord::Node(n) => changes.node(n.path, n),
            SnapRecord::Tombstone(path) => changes.removal(path),
            // One walk, one list of changes: a second mark adds nothing.
            SnapRecord::ChangesFollow => {}
        }
    }
    Ok(changes.into_order())
}

/// Puts collected changes into `r`.
pub fn apply_changes<'a>(
    r: &mut Restorer<'_>,
    changes: SnapChanges<'a>,
) -> Result<(), RestoreStop<'a>> {
    let mut acls = AclRun::default();
    r.apply_changes(changes, |r, path, n| {
        let acl = acls.intern(r, &n);
        let data = n.data.unwrap_or(crate::proto::jute::null_slice());
        r.node_in_mapping(path, data, acl, n.stat)
    })
    .map_err(RestoreStop::Change)
}

/// The ACL of the last node put in, kept while the next ones repeat its bytes.
#[derive(Default)]
struct AclRun<'a> {
    last: Option<(&'a [u8], AclId)>,
}

impl<'a> AclRun<'a> {
    /// `n`'s ACL, interned with one use counted.
    fn intern(&mut self, r: &mut Restorer<'_>, n: &NodeRecord<'a>) -> AclId {
        let id = match self.last {
            Some((raw, id)) if raw == n.acl_raw => {
                r.reuse_acl(id);
                id
            }
            _ => r.intern_acl(&n.acl()),
        };
        self.last = Some((n.acl_raw, id));
        id
    }
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
        r.finish();
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
