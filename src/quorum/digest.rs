//! ZooKeeper 3.8's tree digest (`DigestCalculator`, `AdHash`, `NodeHashMapImpl`): a
//! 64-bit value summarising the whole DataTree, which a leader puts in every proposal
//! (`TxnDigest{version 2, treeDigest}`, §3.1) as the digest expected once the txn is
//! applied. Servers compare it after applying to spot a replica that diverged; a
//! mismatch is only logged and counted, but a corral server in a Java ensemble must
//! produce the same value or every txn it leads looks like divergence to its peers.
//!
//! A node's digest is the CRC32 (IEEE, `java.util.zip.CRC32`) of its path bytes, its
//! data and 60 bytes of its `StatPersisted` in an order of the digest's own (`pzxid`
//! third, not last as in the jute record). The tree's digest is the wrapping sum of its
//! nodes' digests, so it can be kept up to date per change: take out a node's old
//! digest before a change and add its new one after ([`TreeDigest`]).
//!
//! Which nodes count, as in ZooKeeper: every node except those under `/zookeeper/`
//! (quota stats are rewritten locally, so ZooKeeper leaves that subtree out);
//! `/zookeeper` itself counts. The root counts once, under the path "" (ZooKeeper keys
//! it as both "" and "/", and maps "/" to "" when hashing so both agree).

use crate::tree::{DataTree, StatPersisted};

/// `DigestCalculator.DIGEST_VERSION`: `TxnDigest.version` and `ZxidDigest.digestVersion`.
/// A digest of another version is not compared.
pub const DIGEST_VERSION: i32 = 2;

/// `ZooDefs.ZOOKEEPER_NODE_SUBTREE`: nodes below it are left out of the digest.
pub const ZOOKEEPER_NODE_SUBTREE: &str = "/zookeeper/";

/// Whether a node at `path` contributes to the tree digest.
pub fn counts_in_digest(path: &str) -> bool {
    !path.starts_with(ZOOKEEPER_NODE_SUBTREE)
}

/// `DigestCalculator.calculateDigest`: the digest of one node, 0 for a node that does
/// not count. ZooKeeper hashes `path.getBytes()` in the JVM's default charset, UTF-8
/// on any usual deployment; this hashes the path's UTF-8 bytes.
pub fn node_digest(path: &str, data: &[u8], stat: &StatPersisted) -> i64 {
    if !counts_in_digest(path) {
        return 0;
    }
    let path = if path == "/" { "" } else { path };
    let mut fields = [0u8; 60];
    let longs = [stat.czxid, stat.mzxid, stat.pzxid, stat.ctime, stat.mtime];
    for (i, v) in longs.iter().enumerate() {
        fields[i * 8..i * 8 + 8].copy_from_slice(&v.to_be_bytes());
    }
    fields[40..44].copy_from_slice(&stat.version.to_be_bytes());
    fields[44..48].copy_from_slice(&stat.cversion.to_be_bytes());
    fields[48..52].copy_from_slice(&stat.aversion.to_be_bytes());
    fields[52..60].copy_from_slice(&stat.ephemeral_owner.to_be_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(path.as_bytes());
    crc.update(data);
    crc.update(&fields);
    // `CRC32.getValue()`: the unsigned 32-bit value in a long.
    crc.finalize() as i64
}

/// `AdHash`: the tree digest, kept up to date a node at a time. Java's `long`
/// arithmetic wraps, and so does this.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TreeDigest(i64);

impl TreeDigest {
    /// The digest of no nodes at all.
    pub const fn new() -> TreeDigest {
        TreeDigest(0)
    }

    /// The digest of every node of `tree`.
    pub fn of_tree(tree: &DataTree) -> TreeDigest {
        let mut d = TreeDigest::new();
        let mut walk = super::snap_stream::PreOrder::new(tree);
        while let Some(node) = walk.advance() {
            d.add(node_digest(walk.path(), node.data(), node.persisted()));
        }
        d
    }

    /// `getHash`: the value a `TxnDigest` carries.
    pub fn value(self) -> i64 {
        self.0
    }

    /// `addDigest`.
    pub fn add(&mut self, digest: i64) {
        self.0 = self.0.wrapping_add(digest);
    }

    /// `removeDigest`.
    pub fn remove(&mut self, digest: i64) {
        self.0 = self.0.wrapping_sub(digest);
    }

    /// Adds the node as it is now (`postChange`, or `put` of a new node).
    pub fn add_node(&mut self, path: &str, data: &[u8], stat: &StatPersisted) {
        self.add(node_digest(path, data, stat));
    }

    /// Takes out the node as it was (`preChange`, or `remove`).
    pub fn remove_node(&mut self, path: &str, data: &[u8], stat: &StatPersisted) {
        self.remove(node_digest(path, data, stat));
    }
}

/// `DataTree.getTreeDigest`, recomputed from every node.
pub fn tree_digest(tree: &DataTree) -> i64 {
    TreeDigest::of_tree(tree).value()
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::proto::ephemeral_owner;
    use crate::quorum::snap_stream::tests::{acl, rich_tree, JAVA_RICH_TREE_DIGEST};
    use crate::tree::{open_acl_unsafe, read_acl_unsafe, split_path};

    // Expected values printed by ZooKeeper 3.8.0's own DigestCalculator (Debian's
    // zookeeper.jar; `calculateDigest` is package-private, hence the package):
    //
    //   package org.apache.zookeeper.server;
    //   public class Oracle { public static void main(String[] a) {
    //     DigestCalculator c = new DigestCalculator();
    //     StatPersisted z = new StatPersisted();
    //     StatPersisted s = new StatPersisted(0x100000001L, 0x100000002L, 1700000000000L,
    //         1700000000500L, 3, 4, 5, 0x1234L, 0x100000003L);
    //     StatPersisted neg = new StatPersisted(-1L, Long.MIN_VALUE, -5L, 0L, -1,
    //         Integer.MIN_VALUE, -1, Long.MIN_VALUE, Long.MAX_VALUE);
    //     System.out.println(c.calculateDigest("/", new byte[0], z));        // 68323592
    //     System.out.println(c.calculateDigest("", null, z));                // 68323592
    //     System.out.println(c.calculateDigest("/zookeeper", new byte[0], z)); // 1303661912
    //     System.out.println(c.calculateDigest("/zookeeper/quota", new byte[0], z)); // 0
    //     System.out.println(c.calculateDigest("/a", "hello".getBytes(UTF_8), s)); // 1177960551
    //     System.out.println(c.calculateDigest("/a", null, s));              // 2035230471
    //     System.out.println(c.calculateDigest("/\u00fc/\u65e5", "d\u00e9j\u00e0".getBytes(UTF_8), neg)); // 3310649453
    //     System.out.println(new DataTree().getTreeDigest());                // 1371985504
    //   } }
    //
    // run as `java -Dfile.encoding=UTF-8 -cp .:zookeeper.jar:zookeeper-jute.jar:slf4j-nop.jar
    // org.apache.zookeeper.server.Oracle`. The rich tree's digest comes from the same
    // program (see `snap_stream::tests::rich_tree`).

    fn stat() -> StatPersisted {
        StatPersisted {
            czxid: 0x1_0000_0001,
            mzxid: 0x1_0000_0002,
            ctime: 1_700_000_000_000,
            mtime: 1_700_000_000_500,
            version: 3,
            cversion: 4,
            aversion: 5,
            ephemeral_owner: 0x1234,
            pzxid: 0x1_0000_0003,
        }
    }

    #[test]
    fn node_digests_are_zookeepers() {
        let zero = StatPersisted::default();
        assert_eq!(node_digest("/", b"", &zero), 68323592);
        assert_eq!(node_digest("", b"", &zero), 68323592);
        assert_eq!(node_digest("/zookeeper", b"", &zero), 1303661912);
        assert_eq!(node_digest("/zookeeper/quota", b"", &zero), 0);
        assert_eq!(node_digest("/zookeeper/config", b"x", &stat()), 0);
        assert_eq!(node_digest("/a", b"hello", &stat()), 1177960551);
        // Null data hashes as empty data.
        assert_eq!(node_digest("/a", b"", &stat()), 2035230471);
        let neg = StatPersisted {
            czxid: -1,
            mzxid: i64::MIN,
            ctime: -5,
            mtime: 0,
            version: -1,
            cversion: i32::MIN,
            aversion: -1,
            ephemeral_owner: i64::MIN,
            pzxid: i64::MAX,
        };
        assert_eq!(
            node_digest("/\u{fc}/\u{65e5}", "d\u{e9}j\u{e0}".as_bytes(), &neg),
            3310649453
        );
        // pzxid is hashed third: moving it to where the jute record has it changes
        // the digest.
        let mut moved = stat();
        (moved.pzxid, moved.ctime) = (moved.ctime, moved.pzxid);
        assert_ne!(node_digest("/a", b"hello", &moved), 1177960551);
    }

    #[test]
    fn tree_digests_are_zookeepers() {
        // `new DataTree().getTreeDigest()`: "" and /zookeeper count, its children not.
        assert_eq!(tree_digest(&DataTree::new()), 1371985504);
        assert_eq!(tree_digest(&DataTree::new()), 68323592 + 1303661912);
        // The tree built by the same calls on ZooKeeper's DataTree.
        assert_eq!(tree_digest(&rich_tree()), JAVA_RICH_TREE_DIGEST);
    }

    /// Applies `change` to `t`, keeping `d` up to date as ZooKeeper's NodeHashMapImpl
    /// does: the digests of the node and its parent come out before and go back in
    /// after (a created node only goes in, a deleted one only comes out).
    fn tracked(
        t: &mut DataTree,
        d: &mut TreeDigest,
        path: &str,
        change: impl FnOnce(&mut DataTree),
    ) {
        let parent = split_path(path).map(|(p, _)| p.to_string());
        let mut touched: Vec<&str> = std::iter::once(path).chain(parent.as_deref()).collect();
        // The root is its own parent here; it is one node.
        touched.dedup();
        for p in &touched {
            if let Some(n) = t.get(p) {
                d.remove_node(p, n.data(), n.persisted());
            }
        }
        change(t);
        for p in &touched {
            if let Some(n) = t.get(p) {
                d.add_node(p, n.data(), n.persisted());
            }
        }
    }

    #[test]
    fn kept_up_to_date_per_change_it_equals_a_full_recompute() {
        let mut t = DataTree::new();
        let mut d = TreeDigest::of_tree(&t);
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut paths: Vec<String> = vec!["/".into()];
        for zxid in 1..=400i64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let pick = paths[(x % paths.len() as u64) as usize].clone();
            match x % 5 {
                0 | 1 if pick.matches('/').count() < 4 => {
                    let p = if pick == "/" {
                        format!("/n{zxid}")
                    } else {
                        format!("{pick}/n{zxid}")
                    };
                    let owner = [0, 0x55, ephemeral_owner::CONTAINER][(x % 3) as usize];
                    tracked(&mut t, &mut d, &p, |t| {
                        let data = Bytes::from(format!("v{zxid}"));
                        t.create_node(&p, data, &open_acl_unsafe(), owner, -1, zxid, zxid)
                            .unwrap();
                    });
                    paths.push(p);
                }
                2 if pick != "/" && t.get(&pick).unwrap().num_children() == 0 => {
                    tracked(&mut t, &mut d, &pick, |t| {
                        t.delete_node(&pick, zxid).unwrap()
                    });
                    paths.retain(|p| *p != pick);
                }
                3 => {
                    let acl = [read_acl_unsafe(), vec![acl(31, "sasl", "x")]];
                    tracked(&mut t, &mut d, &pick, |t| {
                        let v = t.get(&pick).unwrap().persisted().aversion + 1;
                        t.set_acl(&pick, &acl[(x % 2) as usize], v).unwrap();
                    });
                }
                _ => {
                    tracked(&mut t, &mut d, &pick, |t| {
                        let v = t.get(&pick).unwrap().persisted().version + 1;
                        let data = Bytes::from(format!("s{zxid}"));
                        t.set_data(&pick, data, v, zxid, zxid).unwrap();
                    });
                }
            }
            assert_eq!(d.value(), tree_digest(&t), "after zxid {zxid}");
        }
        assert!(paths.len() > 20);
    }

    #[test]
    fn the_sum_wraps_like_a_java_long() {
        let mut d = TreeDigest::new();
        d.add(i64::MAX);
        d.add(2);
        assert_eq!(d.value(), i64::MIN + 1);
        d.remove(i64::MAX);
        d.remove(2);
        assert_eq!(d, TreeDigest::new());
        d.remove(1);
        assert_eq!(d.value(), -1);
    }
}
