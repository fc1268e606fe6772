//! Walking the tree for a snapshot and rebuilding it from one. A snapshot stores each
//! znode's `StatPersisted` verbatim (the raw child create count as `cversion`), so a
//! restored tree answers exactly as the one that was saved.

use std::sync::Arc;

use bytes::Bytes;

use super::acl_cache::AclId;
use super::quota::{LIMIT_NODE, QUOTA_ZOOKEEPER};
use super::{java_len, split_path, DataTree, EphemeralType, Node, StatPersisted};
use crate::proto::{Acl, ErrorCode};

impl DataTree {
    /// Visits every znode, each parent before its children.
    pub fn for_each_node(&self, mut f: impl FnMut(&str, &Node, &Arc<[Acl]>)) {
        let mut stack: Vec<String> = vec!["/".to_string()];
        while let Some(path) = stack.pop() {
            let Some(node) = self.nodes.get(path.as_str()) else {
                continue;
            };
            f(&path, node, self.acl(node));
            for child in node.children() {
                let p = if path == "/" {
                    format!("/{child}")
                } else {
                    format!("{path}/{child}")
                };
                stack.push(p);
            }
        }
    }

    /// Visits every znode in no particular order (a plain scan of the node table: the
    /// cheap way to copy the tree for a snapshot; the loader orders by depth).
    pub fn for_each_node_unordered(&self, mut f: impl FnMut(&str, &Node, &Arc<[Acl]>)) {
        for (path, node) in &self.nodes {
            f(path, node, self.acl(node));
        }
    }

    /// Puts back one znode read from a snapshot, after its parent. A built-in node
    /// ("/", "/zookeeper", ...) takes the saved data, ACL and stat and keeps its children.
    pub fn restore_node(
        &mut self,
        path: &str,
        data: Bytes,
        acl: &[Acl],
        stat: StatPersisted,
    ) -> Result<AclId, ErrorCode> {
        let acl_id = self.acls.intern(acl);
        self.restore_with_acl(path, data, acl_id, stat)
    }

    /// Room for `n` more znodes, so a large restore does not rehash as it grows.
    pub fn reserve(&mut self, n: usize) {
        self.nodes.reserve(n);
    }

    /// `restore_node` for a node whose ACL is the same list as the previous restored
    /// node's (snapshots list siblings together, and they mostly share one ACL):
    /// counts one more use of `acl_id` instead of hashing the list again.
    pub fn restore_node_same_acl(
        &mut self,
        path: &str,
        data: Bytes,
        acl_id: AclId,
        stat: StatPersisted,
    ) -> Result<AclId, ErrorCode> {
        self.acls.add_usage(acl_id);
        self.restore_with_acl(path, data, acl_id, stat)
    }

    fn restore_with_acl(
        &mut self,
        path: &str,
        data: Bytes,
        acl_id: AclId,
        stat: StatPersisted,
    ) -> Result<AclId, ErrorCode> {
        if let Some(existing) = self.nodes.get_mut(path) {
            self.data_size = self.data_size - existing.data.len() as u64 + data.len() as u64;
            existing.data = data;
            existing.stat = stat;
            existing.acl = acl_id;
            return Ok(acl_id);
        }
        let (parent_name, child_name) = split_path(path).ok_or(ErrorCode::NoNode)?;
        let parent = self.nodes.get_mut(parent_name).ok_or(ErrorCode::NoNode)?;
        parent.add_child(child_name);
        self.data_size += java_len(path) + data.len() as u64;
        self.nodes
            .insert(path.into(), Node::new(data, acl_id, stat));
        match EphemeralType::of(stat.ephemeral_owner) {
            EphemeralType::Container => {
                self.containers.insert(path.into());
            }
            EphemeralType::Ttl(_) => {
                self.ttls.insert(path.into());
            }
            EphemeralType::Normal => {
                self.ephemerals
                    .entry(stat.ephemeral_owner)
                    .or_default()
                    .insert(path.into());
            }
            EphemeralType::Void => {}
        }
        if child_name == LIMIT_NODE {
            if let Some(quota_path) = parent_name.strip_prefix(QUOTA_ZOOKEEPER) {
                self.quotas.add(quota_path);
            }
        }
        Ok(acl_id)
    }
}

#[cfg(test)]
mod tests {
    use crate::proto::*;
    use crate::request::{apply, Txn, TxnHeader};
    use crate::tree::*;

    fn create(t: &mut DataTree, zxid: i64, path: &str, owner: i64) {
        let hdr = TxnHeader {
            client_id: 7,
            cxid: 1,
            zxid,
            time: 1000 + zxid,
            op: OpCode::Create,
        };
        let txn = Txn::Create {
            path: path.into(),
            data: bytes::Bytes::from(format!("d{zxid}")),
            acl: open_acl_unsafe(),
            ephemeral_owner: owner,
            parent_cversion: -1,
        };
        let mut trig = Vec::new();
        apply(t, &hdr, &txn, &mut trig);
    }

    #[test]
    fn a_restored_tree_answers_like_the_saved_one() {
        let mut t = DataTree::new();
        let hdr = TxnHeader {
            client_id: 7,
            cxid: 0,
            zxid: 1,
            time: 1,
            op: OpCode::CreateSession,
        };
        apply(
            &mut t,
            &hdr,
            &Txn::CreateSession { timeout: 5000 },
            &mut Vec::new(),
        );
        create(&mut t, 2, "/a", 0);
        create(&mut t, 3, "/a/b", 0);
        create(&mut t, 4, "/a/e", 7);
        create(&mut t, 5, "/c", ephemeral_owner::CONTAINER);
        create(&mut t, 6, "/a/x", 0);
        apply(
            &mut t,
            &TxnHeader {
                client_id: 7,
                cxid: 2,
                zxid: 7,
                time: 9,
                op: OpCode::Delete,
            },
            &Txn::Delete {
                path: "/a/x".into(),
            },
            &mut Vec::new(),
        );

        let mut r = DataTree::new();
        let mut seen = Vec::new();
        t.for_each_node(|path, node, acl| {
            seen.push(path.to_string());
            r.restore_node(path, node.data().clone(), acl, *node.persisted())
                .unwrap();
        });
        for (id, to) in t.sessions() {
            r.add_session(id, to);
        }
        r.set_last_processed_zxid(t.last_processed_zxid());

        assert!(seen.iter().position(|p| p == "/a") < seen.iter().position(|p| p == "/a/b"));
        for p in [
            "/",
            "/a",
            "/a/b",
            "/a/e",
            "/c",
            "/zookeeper",
            "/zookeeper/config",
        ] {
            assert_eq!(r.stat(p), t.stat(p), "{p}");
            assert_eq!(r.get(p).unwrap().data(), t.get(p).unwrap().data());
            let mut a = r.children(p).unwrap();
            let mut b = t.children(p).unwrap();
            a.sort();
            b.sort();
            assert_eq!(a, b);
        }
        assert_eq!(r.ephemerals(7), vec!["/a/e".to_string()]);
        assert_eq!(r.containers(), vec!["/c".to_string()]);
        assert_eq!(r.node_count(), t.node_count());
        assert_eq!(r.approximate_data_size(), t.approximate_data_size());
        assert_eq!(r.last_processed_zxid(), 7);
    }
}
