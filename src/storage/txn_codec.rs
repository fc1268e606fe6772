//! The byte encoding of one logged txn: `(TxnHeader, Txn)` in jute, following
//! ZooKeeper's `org.apache.zookeeper.txn` records so the shapes are familiar to anyone
//! who has read a ZooKeeper txn log.
//!
//! Layout of one encoded txn:
//!
//! ```text
//! TxnHeader { long clientId; int cxid; long zxid; long time; int type }   type = header.op
//! int bodyType                                                            see below
//! body record
//! ```
//!
//! ZooKeeper picks the body record from `TxnHeader.type`. We keep `type` = the request's
//! opcode (create2, createContainer, ... stay distinct so replies can be encoded), and a
//! failed request may carry any opcode, so the body's kind is written explicitly as
//! `bodyType` (the ZooKeeper opcode of the body record: 1 CreateTxn, 2 DeleteTxn,
//! 5 SetDataTxn, 7 SetACLTxn, 13 CheckVersionTxn, 14 MultiTxn, -10 CreateSessionTxn,
//! -11 CloseSessionTxn, -1 ErrorTxn). Decoding never has to guess.
//!
//! Body records are ZooKeeper's, with one extension: our `CreateTxn` is
//! `{ustring path; buffer data; vector<ACL> acl; boolean ephemeral; int parentCVersion;
//! long ephemeralOwner}`. The trailing `ephemeralOwner` holds the session id, the
//! container marker or the TTL encoding, so one record covers CreateTxn,
//! CreateContainerTxn and CreateTTLTxn; `ephemeral` is kept (= owner is a session) so the
//! prefix still reads as a ZooKeeper CreateTxn.
//!
//! `CloseSessionTxn.paths2Delete` is written empty (we take the ephemerals at apply) and
//! ignored on decode. `MultiTxn` is ZooKeeper's `vector<Txn {int type; buffer data}>`
//! where `type` is the sub-op's opcode and `data` is `int bodyType` + body record; a
//! multi inside a multi is refused on decode (it is never produced, and refusing keeps
//! hostile input from recursing).
//!
//! Decoding checks every length against the bytes present (via [`Reader`]) and returns
//! an error, never panics, on anything malformed.

use bytes::{BufMut, BytesMut};

use crate::proto::{Acl, DecodeError, ErrorCode, Jute, OpCode, Reader};
use crate::request::txn::{Txn, TxnHeader};

/// The body kinds, numbered by ZooKeeper's opcodes for the body records.
mod body {
    pub const CREATE: i32 = 1;
    pub const DELETE: i32 = 2;
    pub const SET_DATA: i32 = 5;
    pub const SET_ACL: i32 = 7;
    pub const CHECK: i32 = 13;
    pub const MULTI: i32 = 14;
    pub const CREATE_SESSION: i32 = -10;
    pub const CLOSE_SESSION: i32 = -11;
    pub const ERROR: i32 = -1;
}

/// Appends the encoding of one txn to `w`.
pub fn encode_txn(hdr: &TxnHeader, txn: &Txn, w: &mut BytesMut) {
    w.put_i64(hdr.client_id);
    w.put_i32(hdr.cxid);
    w.put_i64(hdr.zxid);
    w.put_i64(hdr.time);
    w.put_i32(hdr.op.as_i32());
    encode_body(txn, w);
}

/// The encoding of one txn as a fresh buffer.
pub fn txn_to_bytes(hdr: &TxnHeader, txn: &Txn) -> BytesMut {
    let mut w = BytesMut::new();
    encode_txn(hdr, txn, &mut w);
    w
}

fn encode_body(txn: &Txn, w: &mut BytesMut) {
    match txn {
        Txn::CreateSession { timeout } => {
            w.put_i32(body::CREATE_SESSION);
            w.put_i32(*timeout);
        }
        Txn::CloseSession => {
            w.put_i32(body::CLOSE_SESSION);
            w.put_i32(0); // paths2Delete: empty vector
        }
        Txn::Create {
            path,
            data,
            acl,
            ephemeral_owner,
            parent_cversion,
        } => {
            w.put_i32(body::CREATE);
            path.encode(w);
            data.encode(w);
            acl.encode(w);
            // ZooKeeper's `ephemeral` flag: a real session owns it (not a container/TTL).
            let ephemeral = *ephemeral_owner != 0
                && *ephemeral_owner != crate::proto::ephemeral_owner::CONTAINER
                && crate::proto::ephemeral_owner::ttl_of(*ephemeral_owner).is_none();
            ephemeral.encode(w);
            w.put_i32(*parent_cversion);
            w.put_i64(*ephemeral_owner);
        }
        Txn::Delete { path } => {
            w.put_i32(body::DELETE);
            path.encode(w);
        }
        Txn::SetData {
            path,
            data,
            version,
        } => {
            w.put_i32(body::SET_DATA);
            path.encode(w);
            data.encode(w);
            w.put_i32(*version);
        }
        Txn::SetAcl { path, acl, version } => {
            w.put_i32(body::SET_ACL);
            path.encode(w);
            acl.encode(w);
            w.put_i32(*version);
        }
        Txn::Check { path, version } => {
            w.put_i32(body::CHECK);
            path.encode(w);
            w.put_i32(*version);
        }
        Txn::Multi(ops) => {
            w.put_i32(body::MULTI);
            w.put_i32(ops.len() as i32);
            for (op, sub) in ops {
                w.put_i32(op.as_i32());
                let mut inner = BytesMut::new();
                encode_body(sub, &mut inner);
                w.put_i32(inner.len() as i32);
                w.put_slice(&inner);
            }
        }
        Txn::Error(code) => {
            w.put_i32(body::ERROR);
            w.put_i32(code.as_i32());
        }
    }
}

/// Decodes one txn that must fill `buf` exactly.
pub fn decode_txn(buf: &[u8]) -> Result<(TxnHeader, Txn), DecodeError> {
    let mut r = Reader::new(buf);
    let out = read_txn(&mut r)?;
    if r.remaining() != 0 {
        return Err(DecodeError::BadMulti("trailing bytes after txn"));
    }
    Ok(out)
}

/// Decodes one txn from a reader (leaves the reader after it).
pub fn read_txn(r: &mut Reader<'_>) -> Result<(TxnHeader, Txn), DecodeError> {
    let client_id = r.read_i64()?;
    let cxid = r.read_i32()?;
    let zxid = r.read_i64()?;
    let time = r.read_i64()?;
    let op_raw = r.read_i32()?;
    let op = OpCode::from_i32(op_raw).ok_or(DecodeError::UnknownOpCode(op_raw))?;
    let txn = read_body(r, true)?;
    Ok((
        TxnHeader {
            client_id,
            cxid,
            zxid,
            time,
            op,
        },
        txn,
    ))
}

/// A znode path as prep writes it: "/" or absolute with non-empty names. Anything
/// else is damage (the checksums held, so it was written wrong): applied, "//" went
/// into the tree keyed apart from the empty name linked under "/", and walking the
/// tree from the root then looped forever.
fn read_path(r: &mut Reader<'_>) -> Result<String, DecodeError> {
    let p = String::decode(r)?;
    if p == "/" || (p.starts_with('/') && !p.ends_with('/') && !p.contains("//")) {
        Ok(p)
    } else {
        Err(DecodeError::BadMulti("malformed znode path in a txn"))
    }
}

fn read_body(r: &mut Reader<'_>, allow_multi: bool) -> Result<Txn, DecodeError> {
    let kind = r.read_i32()?;
    Ok(match kind {
        body::CREATE_SESSION => Txn::CreateSession {
            timeout: r.read_i32()?,
        },
        body::CLOSE_SESSION => {
            let _paths: Vec<String> = Jute::decode(r)?;
            Txn::CloseSession
        }
        body::CREATE => {
            let path = read_path(r)?;
            let data = bytes::Bytes::decode(r)?;
            let acl = Vec::<Acl>::decode(r)?;
            let _ephemeral = r.read_bool()?;
            let parent_cversion = r.read_i32()?;
            let ephemeral_owner = r.read_i64()?;
            Txn::Create {
                path,
                data,
                acl,
                ephemeral_owner,
                parent_cversion,
            }
        }
        body::DELETE => Txn::Delete {
            path: read_path(r)?,
        },
        body::SET_DATA => Txn::SetData {
            path: read_path(r)?,
            data: bytes::Bytes::decode(r)?,
            version: r.read_i32()?,
        },
        body::SET_ACL => Txn::SetAcl {
            path: read_path(r)?,
            acl: Vec::<Acl>::decode(r)?,
            version: r.read_i32()?,
        },
        body::CHECK => Txn::Check {
            path: read_path(r)?,
            version: r.read_i32()?,
        },
        body::MULTI => {
            if !allow_multi {
                return Err(DecodeError::BadMulti("multi nested in a multi"));
            }
            // Each sub-txn takes at least 8 bytes (op + length), so the count check
            // against the remaining bytes bounds the reservation.
            let n = r.read_count()?.unwrap_or(0);
            let mut ops = Vec::with_capacity(n.min(r.remaining() / 8));
            for _ in 0..n {
                let op_raw = r.read_i32()?;
                let op = OpCode::from_i32(op_raw).ok_or(DecodeError::UnknownOpCode(op_raw))?;
                let inner = r.read_raw()?.ok_or(DecodeError::BadMulti("null sub-txn"))?;
                let mut ir = Reader::new(inner);
                let sub = read_body(&mut ir, false)?;
                if ir.remaining() != 0 {
                    return Err(DecodeError::BadMulti("trailing bytes in sub-txn"));
                }
                ops.push((op, sub));
            }
            Txn::Multi(ops)
        }
        body::ERROR => {
            let raw = r.read_i32()?;
            // An unknown code is kept as a system error rather than refusing the log:
            // the txn's effect (none) does not depend on the code.
            Txn::Error(ErrorCode::from_i32(raw).unwrap_or(ErrorCode::SystemError))
        }
        other => return Err(DecodeError::UnknownOpCode(other)),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::proto::{ephemeral_owner, Id};
    use bytes::Bytes;

    pub(crate) fn acl() -> Vec<Acl> {
        vec![
            Acl {
                perms: 31,
                id: Id {
                    scheme: "world".into(),
                    id: "anyone".into(),
                },
            },
            Acl {
                perms: 1,
                id: Id {
                    scheme: "digest".into(),
                    id: "u:x".into(),
                },
            },
        ]
    }

    /// One txn of every shape.
    pub(crate) fn samples() -> Vec<(OpCode, Txn)> {
        let create = |owner| Txn::Create {
            path: "/a/b0000000001".into(),
            data: Bytes::from_static(b"hello\0world"),
            acl: acl(),
            ephemeral_owner: owner,
            parent_cversion: 7,
        };
        vec![
            (OpCode::CreateSession, Txn::CreateSession { timeout: 30000 }),
            (OpCode::CloseSession, Txn::CloseSession),
            (OpCode::Create, create(0)),
            (OpCode::Create2, create(0x1234_5678_9abc)),
            (OpCode::CreateContainer, create(ephemeral_owner::CONTAINER)),
            (OpCode::CreateTtl, create(ephemeral_owner::ttl(5000))),
            (
                OpCode::Create,
                Txn::Create {
                    path: "/e".into(),
                    data: Bytes::new(),
                    acl: vec![],
                    ephemeral_owner: 0,
                    parent_cversion: 0,
                },
            ),
            (OpCode::Delete, Txn::Delete { path: "/x".into() }),
            (OpCode::DeleteContainer, Txn::Delete { path: "/c".into() }),
            (
                OpCode::SetData,
                Txn::SetData {
                    path: "/x".into(),
                    data: Bytes::from(vec![0xffu8; 300]),
                    version: 3,
                },
            ),
            (
                OpCode::SetAcl,
                Txn::SetAcl {
                    path: "/x".into(),
                    acl: acl(),
                    version: 2,
                },
            ),
            (
                OpCode::Check,
                Txn::Check {
                    path: "/x".into(),
                    version: 9,
                },
            ),
            (OpCode::Error, Txn::Error(ErrorCode::NoNode)),
            (OpCode::Create, Txn::Error(ErrorCode::NodeExists)),
            (
                OpCode::Multi,
                Txn::Multi(vec![
                    (OpCode::Create, create(0)),
                    (OpCode::Delete, Txn::Delete { path: "/d".into() }),
                    (
                        OpCode::SetData,
                        Txn::SetData {
                            path: "/s".into(),
                            data: Bytes::from_static(b"v"),
                            version: 1,
                        },
                    ),
                    (
                        OpCode::Check,
                        Txn::Check {
                            path: "/x".into(),
                            version: 0,
                        },
                    ),
                    (
                        OpCode::SetAcl,
                        Txn::SetAcl {
                            path: "/x".into(),
                            acl: acl(),
                            version: 1,
                        },
                    ),
                ]),
            ),
            (
                OpCode::Multi,
                Txn::Multi(vec![
                    (OpCode::Create, Txn::Error(ErrorCode::Ok)),
                    (OpCode::Delete, Txn::Error(ErrorCode::NoNode)),
                    (OpCode::SetData, Txn::Error(ErrorCode::RuntimeInconsistency)),
                ]),
            ),
            (OpCode::Multi, Txn::Multi(vec![])),
        ]
    }

    pub(crate) fn hdr(zxid: i64, op: OpCode) -> TxnHeader {
        TxnHeader {
            client_id: 0x100_0000_0001,
            cxid: zxid as i32,
            zxid,
            time: 1_700_000_000_000 + zxid,
            op,
        }
    }

    #[test]
    fn every_variant_round_trips() {
        for (i, (op, txn)) in samples().into_iter().enumerate() {
            let h = hdr(i as i64 + 1, op);
            let b = txn_to_bytes(&h, &txn);
            let (h2, t2) = decode_txn(&b).unwrap();
            assert_eq!(h2, h);
            assert_eq!(t2, txn, "variant {i}");
        }
    }

    #[test]
    fn header_and_create_prefix_follow_zookeeper() {
        let h = hdr(5, OpCode::Create2);
        let t = Txn::Create {
            path: "/p".into(),
            data: Bytes::from_static(b"d"),
            acl: vec![],
            ephemeral_owner: 42,
            parent_cversion: 3,
        };
        let b = txn_to_bytes(&h, &t);
        // TxnHeader: clientId, cxid, zxid, time, type.
        assert_eq!(&b[0..8], &h.client_id.to_be_bytes());
        assert_eq!(&b[12..20], &5i64.to_be_bytes());
        assert_eq!(&b[28..32], &15i32.to_be_bytes());
        // bodyType then CreateTxn: path "/p", data "d", acl [], ephemeral=true, parentCVersion, owner.
        let mut r = Reader::new(&b[32..]);
        assert_eq!(r.read_i32().unwrap(), 1);
        assert_eq!(String::decode(&mut r).unwrap(), "/p");
        assert_eq!(&Bytes::decode(&mut r).unwrap()[..], b"d");
        assert!(Vec::<Acl>::decode(&mut r).unwrap().is_empty());
        assert!(r.read_bool().unwrap());
        assert_eq!(r.read_i32().unwrap(), 3);
        assert_eq!(r.read_i64().unwrap(), 42);
    }

    #[test]
    fn truncations_and_garbage_never_panic() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for (i, (op, txn)) in samples().into_iter().enumerate() {
            let b = txn_to_bytes(&hdr(i as i64, op), &txn).to_vec();
            for cut in 0..b.len() {
                assert!(decode_txn(&b[..cut]).is_err());
            }
            for _ in 0..300 {
                let mut m = b.clone();
                let flips = 1 + next() % 4;
                for _ in 0..flips {
                    let at = (next() as usize) % m.len();
                    m[at] = next() as u8;
                }
                let _ = decode_txn(&m);
            }
        }
        for len in 0..200 {
            let g: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let _ = decode_txn(&g);
        }
        // A multi claiming a huge count in a short buffer is refused, not allocated.
        let mut w = BytesMut::new();
        encode_txn(&hdr(1, OpCode::Multi), &Txn::Multi(vec![]), &mut w);
        let n = w.len();
        w[n - 4..].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(decode_txn(&w).is_err());
    }

    #[test]
    fn nested_multi_is_refused() {
        let t = Txn::Multi(vec![(OpCode::Multi, Txn::Multi(vec![]))]);
        let b = txn_to_bytes(&hdr(1, OpCode::Multi), &t);
        assert!(matches!(decode_txn(&b), Err(DecodeError::BadMulti(_))));
    }

    /// Found by the `txn_log_recovery` fuzz target (`regress-create-double-slash`): a
    /// logged create of "//" (checksums good) recovered, applied, and left "/" listing
    /// an empty name, so walking the tree from the root never ended. Malformed paths
    /// are refused as damage.
    #[test]
    fn malformed_paths_are_refused() {
        let h = hdr(5, OpCode::Create);
        for bad in ["//", "/a/", "a", "", "/a//b"] {
            let t = Txn::Create {
                path: bad.into(),
                data: Bytes::new(),
                acl: vec![],
                ephemeral_owner: 0,
                parent_cversion: 1,
            };
            let b = txn_to_bytes(&h, &t);
            assert!(
                matches!(decode_txn(&b), Err(DecodeError::BadMulti(_))),
                "{bad}"
            );
            let m = Txn::Multi(vec![(OpCode::Create, t)]);
            assert!(
                decode_txn(&txn_to_bytes(&h, &m)).is_err(),
                "{bad} in a multi"
            );
        }
        for good in ["/", "/a", "/a/b.c"] {
            let t = Txn::SetData {
                path: good.into(),
                data: Bytes::new(),
                version: 1,
            };
            assert_eq!(decode_txn(&txn_to_bytes(&h, &t)).unwrap().1, t);
        }
    }
}
