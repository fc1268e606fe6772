//! Txns as ZooKeeper 3.8 puts them on the quorum port, and the request bodies a
//! learner forwards (§3.1, §3.3, §5 of the protocol notes). This module owns the
//! translation between our [`Txn`]/[`TxnHeader`] and ZooKeeper's bytes, so Java peers
//! and corral peers read each other's PROPOSAL, INFORM and REQUEST data.
//!
//! PROPOSAL/INFORM data is `Util.marshallTxnEntry`: jute `TxnHeader`, then the txn
//! record chosen by `TxnHeader.type`, then an optional `TxnDigest` (on by default in
//! 3.8), concatenated with no lengths between them. This is not our own log format
//! ([`crate::storage::txn_codec`]), which writes the record kind explicitly and keeps
//! the request's opcode in the header: ZooKeeper derives the record from the header
//! type, so here the header type is the txn's kind ([`zk_txn_type`]) and an error txn
//! has type -1.
//!
//! What differs between our model and ZooKeeper's records, and how it is bridged:
//! - A node's owner. We carry `ephemeral_owner`; ZooKeeper carries `ephemeral` in
//!   `CreateTxn` (the owner is then `TxnHeader.clientId`: `DataTree.processTxn`), a
//!   `ttl` in `CreateTTLTxn`, and nothing in `CreateContainerTxn` (the container
//!   marker). Decoding rebuilds the owner the way `DataTree.processTxn` does.
//! - closeSession. `CloseSessionTxn.paths2Delete` lists the session's ephemerals when
//!   the leader closes it. Our `Txn::CloseSession` has no list (apply takes the
//!   session's ephemerals from the tree), so the encoder takes the list from the caller
//!   and [`decode_txn_full`] hands it back separately. A 3.8 Java follower
//!   (`DataTree.killSession`) deletes every listed path (a missing one only logs),
//!   then also deletes any ephemeral of the session it knows that the list left out,
//!   warning "Unexpected extra paths": it applies the union, so a short list is not
//!   fatal, but the list should be the session's ephemerals at prep time.
//! - A failed multi. ZooKeeper proposes the ops before the failing one as their real
//!   records and lets `DataTree.processTxn` turn them into `ErrorTxn(OK)` (and any
//!   non-error op after an error into `RUNTIMEINCONSISTENCY`); our prep already
//!   writes those as error sub-txns. Decoding normalises ZooKeeper's form into ours,
//!   exactly as DataTree does, and a Java follower applies ours identically.
//!
//! Decoding never panics: lengths are checked against the bytes present and against
//! the caller's `max_buffer` (`jute.maxbuffer`) before anything is copied.

use bytes::{BufMut, Bytes, BytesMut};

use super::wire::{read_buffer, read_ustring, WireError};
use crate::proto::{
    ephemeral_owner, Acl, DecodeError, ErrorCode, Id, Jute, OpCode, Reader, Request,
};
use crate::request::txn::{Txn, TxnHeader};

/// `DigestCalculator.DIGEST_VERSION`: the `TxnDigest.version` we write, and the only
/// one whose digest we report (`DataTree.compareDigest` skips other versions).
pub const DIGEST_VERSION: i32 = 2;

/// `TxnHeader.type` for `txn` produced by a request of opcode `op`: -1 for an error,
/// otherwise the ZooKeeper type whose record carries `txn`. The receiver picks the
/// record and rebuilds a created node's owner from this type alone, so for a create
/// the type follows the owner when `op` disagrees with it (a container or TTL owner
/// under another opcode); createSession and closeSession ignore `op`.
pub fn zk_txn_type(op: OpCode, txn: &Txn) -> i32 {
    let t = match txn {
        Txn::Error(_) => OpCode::Error,
        Txn::CreateSession { .. } => OpCode::CreateSession,
        Txn::CloseSession => OpCode::CloseSession,
        Txn::Create {
            ephemeral_owner: owner,
            ..
        } => {
            if ephemeral_owner::is_container(*owner) {
                OpCode::CreateContainer
            } else if ephemeral_owner::ttl_of(*owner).is_some() {
                OpCode::CreateTtl
            } else if op == OpCode::Create2 {
                OpCode::Create2
            } else {
                OpCode::Create
            }
        }
        Txn::Delete { .. } if op == OpCode::DeleteContainer => OpCode::DeleteContainer,
        Txn::Delete { .. } => OpCode::Delete,
        Txn::SetData { .. } if op == OpCode::Reconfig => OpCode::Reconfig,
        Txn::SetData { .. } => OpCode::SetData,
        Txn::SetAcl { .. } => OpCode::SetAcl,
        Txn::Check { .. } => OpCode::Check,
        Txn::Multi(_) => OpCode::Multi,
    };
    t.as_i32()
}

/// Whether a create's owner is a session: what ZooKeeper's `CreateTxn.ephemeral`
/// says (container and TTL owners have their own records).
fn owner_is_session(owner: i64) -> bool {
    owner != 0 && !ephemeral_owner::is_container(owner) && ephemeral_owner::ttl_of(owner).is_none()
}

/// Appends PROPOSAL/INFORM data for `txn`: ZooKeeper's `TxnHeader{clientId, cxid,
/// zxid, time, type}`, the record for the type, then `TxnDigest{2, digest}` when
/// `digest` is given (the tree digest after applying this txn).
///
/// `close_paths` fills `CloseSessionTxn.paths2Delete` (see the module comment) and is
/// ignored for other txns. A session-owned create is written `ephemeral = true`, so
/// the receiver takes the owner from `hdr.client_id`: the two must be the same
/// session, as prep makes them. A top-level `Check` is written as type 13 with a
/// `CheckVersionTxn`, which a Java 3.8 follower cannot read (`deserializeTxn` has no
/// case for it): see the report on top-level check.
pub fn encode_txn(
    hdr: &TxnHeader,
    txn: &Txn,
    close_paths: &[String],
    digest: Option<i64>,
    out: &mut BytesMut,
) {
    let typ = zk_txn_type(hdr.op, txn);
    out.put_i64(hdr.client_id);
    out.put_i32(hdr.cxid);
    out.put_i64(hdr.zxid);
    out.put_i64(hdr.time);
    out.put_i32(typ);
    encode_record(typ, txn, close_paths, out);
    if let Some(d) = digest {
        out.put_i32(DIGEST_VERSION);
        out.put_i64(d);
    }
}

/// Writes the record that ZooKeeper's reader expects after a header of type `typ`.
fn encode_record(typ: i32, txn: &Txn, close_paths: &[String], out: &mut BytesMut) {
    match txn {
        Txn::Error(code) => out.put_i32(code.as_i32()),
        Txn::CreateSession { timeout } => out.put_i32(*timeout),
        Txn::CloseSession => {
            out.put_i32(close_paths.len() as i32);
            for p in close_paths {
                p.encode(out);
            }
        }
        Txn::Create {
            path,
            data,
            acl,
            ephemeral_owner: owner,
            parent_cversion,
        } => {
            path.encode(out);
            data.encode(out);
            acl.encode(out);
            if typ == OpCode::CreateTtl.as_i32() {
                out.put_i32(*parent_cversion);
                out.put_i64(ephemeral_owner::ttl_of(*owner).unwrap_or(0));
            } else if typ == OpCode::CreateContainer.as_i32() {
                out.put_i32(*parent_cversion);
            } else {
                owner_is_session(*owner).encode(out);
                out.put_i32(*parent_cversion);
            }
        }
        Txn::Delete { path } => path.encode(out),
        Txn::SetData {
            path,
            data,
            version,
        } => {
            path.encode(out);
            data.encode(out);
            out.put_i32(*version);
        }
        Txn::SetAcl { path, acl, version } => {
            path.encode(out);
            acl.encode(out);
            out.put_i32(*version);
        }
        Txn::Check { path, version } => {
            path.encode(out);
            out.put_i32(*version);
        }
        Txn::Multi(ops) => {
            // MultiTxn { vector<Txn { int type; buffer data }> }: each sub-record is
            // serialized on its own into `data`, as PrepRequestProcessor does.
            out.put_i32(ops.len() as i32);
            let mut sub = BytesMut::new();
            for (op, t) in ops {
                // ZooKeeper 3.8's DataTree accepts only create (1) among the creates
                // without a TTL or container inside a multi: its own leader writes
                // create2 there as create, and a follower drops the rest of a multi at
                // a create2 (logged at DEBUG only).
                let sub_typ = match zk_txn_type(*op, t) {
                    15 => 1,
                    t => t,
                };
                sub.clear();
                encode_record(sub_typ, t, &[], &mut sub);
                out.put_i32(sub_typ);
                out.put_i32(sub.len() as i32);
                out.put_slice(&sub);
            }
        }
    }
}

/// One decoded PROPOSAL/INFORM payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedTxn {
    pub hdr: TxnHeader,
    pub txn: Txn,
    /// `CloseSessionTxn.paths2Delete`; empty for other txns and for a closeSession
    /// without a record.
    pub close_paths: Vec<String>,
    /// The expected tree digest after this txn; `None` when absent or of a digest
    /// version other than [`DIGEST_VERSION`].
    pub digest: Option<i64>,
}

/// Decodes PROPOSAL/INFORM data (`SerializeUtils.deserializeTxn`). See
/// [`decode_txn_full`]; this drops closeSession's path list.
pub fn decode_txn(
    data: &[u8],
    max_buffer: usize,
) -> Result<(TxnHeader, Txn, Option<i64>), WireError> {
    let d = decode_txn_full(data, max_buffer)?;
    Ok((d.hdr, d.txn, d.digest))
}

/// Decodes PROPOSAL/INFORM data with ZooKeeper's reader's leniencies: a plain create
/// (not create2) that ends before `parentCVersion` is a `CreateTxnV0` (parentCVersion
/// -1, which apply takes as "increment"); a closeSession with no record means no
/// paths; a missing digest is `None`. Stricter than ZooKeeper where leniency would
/// only hide a broken peer: bytes after the digest, or a partial digest, are errors
/// rather than ignored.
///
/// A top-level error txn (type -1) decodes with `hdr.op = OpCode::Error`, which is
/// what our prep puts in an error txn's header (`prep::txn_op`), as ZooKeeper retypes
/// the header. Nothing here knows the request's opcode: the server that answers the
/// client matches `(client_id, cxid)` to its own pending request and uses that
/// request's opcode for the reply, as ZooKeeper's CommitProcessor and
/// FinalRequestProcessor do. An error code we do not know becomes `SystemError` (the
/// txn changes nothing either way).
///
/// A top-level check (type 13) is accepted, though ZooKeeper's `deserializeTxn`
/// refuses it, so corral peers can replicate the top-level check txns our prep makes.
pub fn decode_txn_full(data: &[u8], max_buffer: usize) -> Result<DecodedTxn, WireError> {
    let r = &mut Reader::new(data);
    let client_id = r.read_i64()?;
    let cxid = r.read_i32()?;
    let zxid = r.read_i64()?;
    let time = r.read_i64()?;
    let typ = r.read_i32()?;
    let op = OpCode::from_i32(typ).ok_or(WireError::UnsupportedTxnType(typ))?;
    let mut close_paths = Vec::new();
    let txn = match op {
        OpCode::CloseSession => {
            if r.remaining() > 0 {
                close_paths = read_paths(r, max_buffer)?;
            }
            Txn::CloseSession
        }
        OpCode::Multi => read_multi(r, client_id, max_buffer)?,
        _ => read_record(r, op, client_id, max_buffer, true)?,
    };
    let digest = match r.remaining() {
        0 => None,
        12 => {
            let version = r.read_i32()?;
            let tree_digest = r.read_i64()?;
            (version == DIGEST_VERSION).then_some(tree_digest)
        }
        n if n < 12 => return Err(WireError::Malformed("partial TxnDigest")),
        n => return Err(WireError::TrailingBytes(n - 12)),
    };
    Ok(DecodedTxn {
        hdr: TxnHeader {
            client_id,
            cxid,
            zxid,
            time,
            op,
        },
        txn,
        close_paths,
        digest,
    })
}

/// `vector<ustring> paths2Delete`; null reads as empty.
fn read_paths(r: &mut Reader<'_>, max: usize) -> Result<Vec<String>, WireError> {
    let n = r.read_count()?.unwrap_or(0);
    // Each path takes at least its 4-byte length: reserve no more than can be there
    // (a `String` is 24 bytes; reserving by the count alone was 24x the data).
    let mut paths = Vec::with_capacity(n.min(r.remaining() / 4));
    for _ in 0..n {
        paths.push(read_ustring(r, "CloseSessionTxn path", max)?);
    }
    Ok(paths)
}

/// `vector<ACL>`, each string checked against `max`; null reads as empty, as
/// [`Jute`] does for vectors.
fn read_acl(r: &mut Reader<'_>, max: usize) -> Result<Vec<Acl>, WireError> {
    let n = r.read_count()?.unwrap_or(0);
    // Each ACL takes at least 12 bytes (perms and two lengths), an `Acl` 56: reserve by
    // what can be there, not by the count.
    let mut acl = Vec::with_capacity(n.min(r.remaining() / 12));
    for _ in 0..n {
        let perms = r.read_i32()?;
        let scheme = read_ustring(r, "Id.scheme", max)?;
        let id = read_ustring(r, "Id.id", max)?;
        acl.push(Acl {
            perms,
            id: Id { scheme, id },
        });
    }
    Ok(acl)
}

/// A txn's znode path: "/" or absolute with non-empty names, as a leader's prep
/// makes it. Anything else would go into the tree keyed apart from the name linked
/// into its parent ("//" left "/" listing an empty name, and a walk from the root
/// never ended).
fn read_path(r: &mut Reader<'_>, what: &'static str, max: usize) -> Result<String, WireError> {
    let p = read_ustring(r, what, max)?;
    if p == "/" || (p.starts_with('/') && !p.ends_with('/') && !p.contains("//")) {
        Ok(p)
    } else {
        Err(WireError::Malformed("malformed znode path in a txn"))
    }
}

/// `ErrorTxn.err` as our code.
fn error_code(raw: i32) -> ErrorCode {
    ErrorCode::from_i32(raw).unwrap_or(ErrorCode::SystemError)
}

/// Reads the record for txn type `op` (not multi, not closeSession). `client_id` is
/// the owner of an `ephemeral` create. `v0_ok`: a type-1 create may be a
/// `CreateTxnV0` (only at top level: a multi's sub-records are read without the
/// fallback, as in `DataTree.processTxn`).
fn read_record(
    r: &mut Reader<'_>,
    op: OpCode,
    client_id: i64,
    max: usize,
    v0_ok: bool,
) -> Result<Txn, WireError> {
    Ok(match op {
        OpCode::Create | OpCode::Create2 | OpCode::CreateTtl | OpCode::CreateContainer => {
            let path = read_path(r, "create path", max)?;
            let data = read_buffer(r, "create data", max)?;
            let acl = read_acl(r, max)?;
            let (owner, parent_cversion) = match op {
                OpCode::CreateTtl => {
                    let parent_cversion = r.read_i32()?;
                    let ttl = r.read_i64()?;
                    // EphemeralType.TTL.toEphemeralOwner refuses these at apply.
                    if ttl <= 0 || ttl > ephemeral_owner::MAX_TTL {
                        return Err(WireError::Malformed("CreateTTLTxn ttl out of range"));
                    }
                    (ephemeral_owner::ttl(ttl), parent_cversion)
                }
                OpCode::CreateContainer => (ephemeral_owner::CONTAINER, r.read_i32()?),
                _ => {
                    let ephemeral = r.read_bool()?;
                    // The owner of an ephemeral is the session, `TxnHeader.clientId`; one
                    // that reads as the container or a TTL marker would become such a
                    // node here (and could not be written back as a CreateTxn).
                    if ephemeral && client_id != 0 && !owner_is_session(client_id) {
                        return Err(WireError::Malformed(
                            "ephemeral CreateTxn from a client id that is a container or TTL marker",
                        ));
                    }
                    let parent_cversion = if v0_ok && op == OpCode::Create && r.remaining() == 0 {
                        -1
                    } else {
                        r.read_i32()?
                    };
                    (if ephemeral { client_id } else { 0 }, parent_cversion)
                }
            };
            Txn::Create {
                path,
                data,
                acl,
                ephemeral_owner: owner,
                parent_cversion,
            }
        }
        OpCode::Delete | OpCode::DeleteContainer => Txn::Delete {
            path: read_path(r, "delete path", max)?,
        },
        OpCode::SetData | OpCode::Reconfig => Txn::SetData {
            path: read_path(r, "setData path", max)?,
            data: read_buffer(r, "setData data", max)?,
            version: r.read_i32()?,
        },
        OpCode::SetAcl => Txn::SetAcl {
            path: read_path(r, "setACL path", max)?,
            acl: read_acl(r, max)?,
            version: r.read_i32()?,
        },
        OpCode::Check => Txn::Check {
            path: read_path(r, "check path", max)?,
            version: r.read_i32()?,
        },
        OpCode::CreateSession => Txn::CreateSession {
            timeout: r.read_i32()?,
        },
        OpCode::Error => Txn::Error(error_code(r.read_i32()?)),
        other => return Err(WireError::UnsupportedTxnType(other.as_i32())),
    })
}

/// `MultiTxn`, then the failed-multi normalisation of `DataTree.processTxn`.
fn read_multi(r: &mut Reader<'_>, client_id: i64, max: usize) -> Result<Txn, WireError> {
    let n = r
        .read_count()?
        .ok_or(WireError::Malformed("null MultiTxn.txns"))?;
    // Each sub-txn takes at least 8 bytes (type + data length).
    let mut ops = Vec::with_capacity(n.min(r.remaining() / 8));
    for _ in 0..n {
        let typ = r.read_i32()?;
        let data = r
            .read_raw()?
            .ok_or(WireError::Malformed("null sub-txn data in a multi"))?;
        let op = match OpCode::from_i32(typ) {
            Some(
                op @ (OpCode::Create
                | OpCode::Create2
                | OpCode::CreateTtl
                | OpCode::CreateContainer
                | OpCode::Delete
                | OpCode::DeleteContainer
                | OpCode::SetData
                | OpCode::Check
                | OpCode::Error),
            ) => op,
            // A nested multi, a session txn, setACL, ...: "Invalid type of op".
            _ => return Err(WireError::InvalidMultiOp(typ)),
        };
        let sub = &mut Reader::new(data);
        let t = read_record(sub, op, client_id, max, false)?;
        // A ZooKeeper leader's committed log holds a failed multi as applied: each
        // sub-txn retyped to error in place, its original record still after the
        // error code (`DataTree.processTxn` sets the type, not the data); its reader
        // ignores the rest, and so does this one.
        if sub.remaining() != 0 && op != OpCode::Error {
            return Err(WireError::TrailingBytes(sub.remaining()));
        }
        ops.push((op, t));
    }
    if ops.iter().any(|(_, t)| matches!(t, Txn::Error(_))) {
        let mut post_failed = false;
        for (op, t) in ops.iter_mut() {
            if matches!(t, Txn::Error(_)) {
                post_failed = true;
            } else {
                *op = OpCode::Error;
                *t = Txn::Error(if post_failed {
                    ErrorCode::RuntimeInconsistency
                } else {
                    ErrorCode::Ok
                });
            }
        }
    }
    Ok(Txn::Multi(ops))
}

// ---- REQUEST bodies (§3.3) ----

/// What a learner forwards in REQUEST: a client request, or one of the two requests
/// whose body no client sends in that form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardedRequest {
    /// A client request, its body exactly as the client sent it after its
    /// `RequestHeader`.
    Client(Request),
    /// createSession (-10): the body is the negotiated timeout, 4 bytes.
    CreateSession { timeout: i32 },
    /// deleteContainer (20): the body is the raw UTF-8 path, no length
    /// (`ContainerManager`, read back by `PrepRequestProcessor`). ZooKeeper issues it
    /// only on the leader; decoded so a forwarded one is understood, never sent.
    DeleteContainer { path: String },
}

/// Appends `req`'s body as a Java client would have sent it after the
/// `RequestHeader`, and returns its type (the REQUEST header's `type`). Bodiless
/// requests (closeSession, ping, whoAmI) write nothing.
pub fn encode_request(req: &Request, out: &mut BytesMut) -> i32 {
    use Request as R;
    match req {
        R::Create { req, .. } => req.encode(out),
        R::CreateTtl(r) => r.encode(out),
        R::Delete(r) => r.encode(out),
        R::Exists(r) => r.encode(out),
        R::GetData(r) => r.encode(out),
        R::SetData(r) => r.encode(out),
        R::GetAcl(r) => r.encode(out),
        R::SetAcl(r) => r.encode(out),
        R::GetChildren(r) => r.encode(out),
        R::GetChildren2(r) => r.encode(out),
        R::Sync(r) => r.encode(out),
        R::Check(r) => r.encode(out),
        R::Multi(r) | R::MultiRead(r) => r.encode(out),
        R::Reconfig(r) => r.encode(out),
        R::CheckWatches(r) => r.encode(out),
        R::RemoveWatches(r) => r.encode(out),
        R::Auth(r) => r.encode(out),
        R::SetWatches(r) => r.encode(out),
        R::SetWatches2(r) => r.encode(out),
        R::Sasl(r) => r.encode(out),
        R::GetEphemerals(r) => r.encode(out),
        R::GetAllChildrenNumber(r) => r.encode(out),
        R::AddWatch(r) => r.encode(out),
        R::Ping | R::WhoAmI | R::CloseSession => {}
    }
    req.opcode().as_i32()
}

/// Appends a forwarded request's body and returns its type.
pub fn encode_forwarded(req: &ForwardedRequest, out: &mut BytesMut) -> i32 {
    match req {
        ForwardedRequest::Client(r) => encode_request(r, out),
        ForwardedRequest::CreateSession { timeout } => {
            out.put_i32(*timeout);
            OpCode::CreateSession.as_i32()
        }
        ForwardedRequest::DeleteContainer { path } => {
            out.put_slice(path.as_bytes());
            OpCode::DeleteContainer.as_i32()
        }
    }
}

/// Decodes a REQUEST body of type `typ` (from [`super::wire::LearnerRequest`]):
/// createSession and deleteContainer here, every client opcode through
/// [`crate::proto::decode_request`]. Extra bytes after a body are ignored, as
/// ZooKeeper's record readers do.
pub fn decode_forwarded(typ: i32, body: &[u8]) -> Result<ForwardedRequest, WireError> {
    if typ == OpCode::CreateSession.as_i32() {
        if body.len() < 4 {
            return Err(WireError::Short {
                what: "createSession body",
                needed: 4,
                got: body.len(),
            });
        }
        let timeout = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
        return Ok(ForwardedRequest::CreateSession { timeout });
    }
    if typ == OpCode::DeleteContainer.as_i32() {
        let path = std::str::from_utf8(body).map_err(|_| DecodeError::BadUtf8)?;
        return Ok(ForwardedRequest::DeleteContainer {
            path: path.to_string(),
        });
    }
    Ok(ForwardedRequest::Client(crate::proto::decode_request(
        typ, body,
    )?))
}

/// A createSession REQUEST body.
pub fn create_session_body(timeout: i32) -> Bytes {
    Bytes::copy_from_slice(&timeout.to_be_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{
        CheckVersionRequest, CreateRequest, CreateTtlRequest, DeleteRequest, MultiOp, MultiRequest,
        ReconfigRequest, SetAclRequest, SetDataRequest, SyncRequest,
    };

    const MAX: usize = 1 << 20;
    const SESSION: i64 = 0x0100_0000_0000_0001;

    /// Found by the `quorum_packet` fuzz target (`regress-ephemeral-ttl-owner`): an
    /// ephemeral CreateTxn whose clientId reads as a TTL marker (top byte 0xFF) decoded
    /// into a TTL node (here with TTL 0, which our encoder then wrote as a CreateTTLTxn
    /// that no decoder accepts). It is refused; a session id is the only owner an
    /// ephemeral create can carry.
    #[test]
    fn an_ephemeral_create_from_a_marker_client_id_is_refused() {
        for client_id in [
            ephemeral_owner::ttl(0),
            ephemeral_owner::ttl(5),
            ephemeral_owner::CONTAINER,
        ] {
            let mut b = BytesMut::new();
            b.put_i64(client_id);
            b.put_i32(1);
            b.put_i64(0x1_0000_0001);
            b.put_i64(5);
            b.put_i32(OpCode::Create.as_i32());
            b.put_i32(2);
            b.put_slice(b"/e");
            b.put_i32(-1);
            b.put_i32(0);
            b.put_u8(1);
            b.put_i32(1);
            assert!(
                matches!(decode_txn_full(&b, MAX), Err(WireError::Malformed(_))),
                "{client_id:#x}"
            );
            // Not ephemeral, the same client id is only the author: accepted.
            let at = b.len() - 5;
            b[at] = 0;
            let d = decode_txn_full(&b, MAX).unwrap();
            assert!(matches!(
                d.txn,
                Txn::Create {
                    ephemeral_owner: 0,
                    ..
                }
            ));
        }
    }

    /// The quorum side of the `txn_log_recovery` finding (`regress-create-double-slash`
    /// in `quorum_txn`): a PROPOSAL creating "//" is refused, not applied.
    #[test]
    fn malformed_paths_are_refused() {
        let hdr = TxnHeader {
            client_id: 0,
            cxid: 1,
            zxid: 0x1_0000_0001,
            time: 5,
            op: OpCode::Create,
        };
        for bad in ["//", "/a/", "a", ""] {
            let t = Txn::Create {
                path: bad.into(),
                data: Bytes::new(),
                acl: vec![],
                ephemeral_owner: 0,
                parent_cversion: 1,
            };
            let mut b = BytesMut::new();
            encode_txn(&hdr, &t, &[], None, &mut b);
            assert!(
                matches!(decode_txn_full(&b, MAX), Err(WireError::Malformed(_))),
                "{bad}"
            );
        }
    }

    /// A vector count as large as the bytes left (the shape of the fuzz regression
    /// files `regress-create-acl-count` and `regress-close-paths-count`, whose replay
    /// checks the allocation under a counting allocator): refused as truncated, with
    /// only what the bytes can hold reserved.
    #[test]
    fn counts_as_large_as_the_bytes_left_are_refused() {
        let hdr = |typ: i32| {
            let mut v = BytesMut::new();
            v.put_i64(0x77);
            v.put_i32(1);
            v.put_i64(0x1_0000_0001);
            v.put_i64(5);
            v.put_i32(typ);
            v
        };
        let mut create = hdr(OpCode::Create.as_i32());
        create.put_i32(2);
        create.put_slice(b"/e");
        create.put_i32(-1);
        create.put_i32(4000);
        create.put_slice(&[0; 4000]);
        assert!(matches!(
            decode_txn_full(&create, MAX),
            Err(WireError::Jute(DecodeError::Truncated { .. }))
        ));
        let mut close = hdr(OpCode::CloseSession.as_i32());
        close.put_i32(12000);
        close.put_slice(&[0; 12000]);
        assert!(matches!(
            decode_txn_full(&close, MAX),
            Err(WireError::Jute(DecodeError::Truncated { .. }))
        ));
    }

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn acl() -> Vec<Acl> {
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

    fn hdr(zxid: i64, op: OpCode) -> TxnHeader {
        TxnHeader {
            client_id: SESSION,
            cxid: 17,
            zxid,
            time: 1_700_000_000_000,
            op,
        }
    }

    fn create(owner: i64, parent_cversion: i32) -> Txn {
        Txn::Create {
            path: "/a/b0000000001".into(),
            data: Bytes::from_static(b"hello\0world"),
            acl: acl(),
            ephemeral_owner: owner,
            parent_cversion,
        }
    }

    /// One txn of every kind, as our prep makes them (header op, txn).
    fn samples() -> Vec<(OpCode, Txn)> {
        vec![
            (OpCode::CreateSession, Txn::CreateSession { timeout: 30000 }),
            (OpCode::CloseSession, Txn::CloseSession),
            (OpCode::Create, create(0, 7)),
            (OpCode::Create, create(SESSION, 7)),
            (OpCode::Create2, create(SESSION, -1)),
            (OpCode::Create2, create(0, 3)),
            (
                OpCode::CreateContainer,
                create(ephemeral_owner::CONTAINER, 2),
            ),
            (OpCode::CreateTtl, create(ephemeral_owner::ttl(5000), 9)),
            (
                OpCode::Create,
                Txn::Create {
                    path: "/null-data".into(),
                    data: crate::proto::jute::null_buffer(),
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
                OpCode::Reconfig,
                Txn::SetData {
                    path: "/zookeeper/config".into(),
                    data: Bytes::from_static(b"server.1=a:1:2\nversion=100000000"),
                    version: -1,
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
            (OpCode::Error, Txn::Error(ErrorCode::SessionMoved)),
            (
                OpCode::Multi,
                Txn::Multi(vec![
                    (OpCode::Create, create(0, 1)),
                    (OpCode::Create2, create(SESSION, 2)),
                    (OpCode::CreateTtl, create(ephemeral_owner::ttl(1), 3)),
                    (
                        OpCode::CreateContainer,
                        create(ephemeral_owner::CONTAINER, 4),
                    ),
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
                ]),
            ),
            // A failed multi as our prep writes it.
            (
                OpCode::Multi,
                Txn::Multi(vec![
                    (OpCode::Error, Txn::Error(ErrorCode::Ok)),
                    (OpCode::Error, Txn::Error(ErrorCode::NoNode)),
                    (OpCode::Error, Txn::Error(ErrorCode::RuntimeInconsistency)),
                ]),
            ),
            (OpCode::Multi, Txn::Multi(vec![])),
        ]
    }

    fn encode(h: &TxnHeader, t: &Txn, paths: &[String], digest: Option<i64>) -> Vec<u8> {
        let mut out = BytesMut::new();
        encode_txn(h, t, paths, digest, &mut out);
        out.to_vec()
    }

    /// A failed multi as a ZooKeeper leader's committed log (and so its DIFF) holds it:
    /// every sub-txn retyped to error, the original records still in the data.
    #[test]
    fn a_failed_multi_from_a_zookeeper_diff_decodes() {
        let h = hdr(0x1_0000_00dc, OpCode::Multi);
        let mut body = BytesMut::new();
        body.put_i32(2);
        // Sub-txn 1: type -1, data = ErrorTxn{0} followed by its CreateTxn record.
        let mut sub = BytesMut::new();
        sub.put_i32(0);
        encode_record(1, &create(0, 1), &[], &mut sub);
        body.put_i32(-1);
        body.put_i32(sub.len() as i32);
        body.put_slice(&sub);
        // Sub-txn 2: the failing op: ErrorTxn{NoNode}.
        body.put_i32(-1);
        body.put_i32(4);
        body.put_i32(ErrorCode::NoNode.as_i32());
        let mut b = BytesMut::new();
        b.put_i64(h.client_id);
        b.put_i32(h.cxid);
        b.put_i64(h.zxid);
        b.put_i64(h.time);
        b.put_i32(14);
        b.put_slice(&body);
        let (_, t, _) = decode_txn(&b, MAX).expect("a ZooKeeper DIFF's failed multi decodes");
        assert_eq!(
            t,
            Txn::Multi(vec![
                (OpCode::Error, Txn::Error(ErrorCode::Ok)),
                (OpCode::Error, Txn::Error(ErrorCode::NoNode)),
            ])
        );
    }

    /// ZooKeeper 3.8 followers drop the rest of a multi at a sub-txn of type 15.
    #[test]
    fn a_create2_inside_a_multi_is_written_as_create() {
        let t = Txn::Multi(vec![(OpCode::Create2, create(0, 1))]);
        let b = encode(&hdr(7, OpCode::Multi), &t, &[], None);
        // Header (32), count (4), then the sub-txn's type.
        assert_eq!(i32::from_be_bytes(b[36..40].try_into().unwrap()), 1);
    }

    #[test]
    fn every_kind_round_trips_with_and_without_digest() {
        for (i, (op, txn)) in samples().into_iter().enumerate() {
            let h = hdr(0x1_0000_0000 + i as i64, op);
            for digest in [None, Some(0x1234_5678_9abc_def0), Some(-1)] {
                let b = encode(&h, &txn, &[], digest);
                let (h2, t2, d2) = decode_txn(&b, MAX).unwrap();
                assert_eq!(h2, h, "sample {i}");
                // Inside a multi a create2 travels as create (ZooKeeper 3.8 accepts
                // nothing else there).
                let want = match &txn {
                    Txn::Multi(ops) => Txn::Multi(
                        ops.iter()
                            .map(|(o, t)| match o {
                                OpCode::Create2 => (OpCode::Create, t.clone()),
                                _ => (*o, t.clone()),
                            })
                            .collect(),
                    ),
                    t => t.clone(),
                };
                assert_eq!(t2, want, "sample {i}");
                assert_eq!(d2, digest, "sample {i}");
                if let Txn::Create { data, .. } = &t2 {
                    let Txn::Create { data: want, .. } = &txn else {
                        unreachable!()
                    };
                    assert_eq!(
                        crate::proto::jute::is_null_buffer(data),
                        crate::proto::jute::is_null_buffer(want)
                    );
                }
            }
        }
    }

    #[test]
    fn header_types_follow_zookeeper() {
        let types: Vec<i32> = samples()
            .iter()
            .map(|(op, t)| {
                let b = encode(&hdr(1, *op), t, &[], None);
                i32::from_be_bytes(b[28..32].try_into().unwrap())
            })
            .collect();
        assert_eq!(
            types,
            vec![-10, -11, 1, 1, 15, 15, 19, 21, 1, 2, 20, 5, 16, 7, 13, -1, -1, 14, 14, 14]
        );
        // A create whose opcode disagrees with its owner is typed by the owner, so the
        // receiver rebuilds the same node.
        let t = create(ephemeral_owner::CONTAINER, 1);
        assert_eq!(zk_txn_type(OpCode::Create, &t), 19);
        let t = create(ephemeral_owner::ttl(10), 1);
        assert_eq!(zk_txn_type(OpCode::Create2, &t), 21);
        assert_eq!(zk_txn_type(OpCode::Multi, &Txn::Error(ErrorCode::Ok)), -1);
    }

    #[test]
    fn create_txn_is_byte_exact() {
        // TxnHeader{clientId, cxid, zxid, time, type=1}, then CreateTxn{path "/p",
        // data "d", acl [world:anyone 31], ephemeral true, parentCVersion 3}, then
        // TxnDigest{2, 0x55}.
        let h = TxnHeader {
            client_id: 0x42,
            cxid: 7,
            zxid: 0x1_0000_0002,
            time: 0x18b_cfe5_6800,
            op: OpCode::Create,
        };
        let t = Txn::Create {
            path: "/p".into(),
            data: Bytes::from_static(b"d"),
            acl: vec![Acl {
                perms: 31,
                id: Id {
                    scheme: "world".into(),
                    id: "anyone".into(),
                },
            }],
            ephemeral_owner: 0x42,
            parent_cversion: 3,
        };
        let want = hex(
            "0000000000000042 00000007 0000000100000002 0000018bcfe56800 00000001
             00000002 2f70
             00000001 64
             00000001 0000001f 00000005 776f726c64 00000006 616e796f6e65
             01
             00000003
             00000002 0000000000000055",
        );
        assert_eq!(encode(&h, &t, &[], Some(0x55)), want);
        assert_eq!(decode_txn(&want, MAX).unwrap(), (h, t, Some(0x55)));
    }

    #[test]
    fn ephemeral_owner_is_rebuilt_from_the_header() {
        let h = hdr(5, OpCode::Create2);
        let b = encode(&h, &create(SESSION, 1), &[], None);
        // Same bytes with another clientId: the owner follows the header.
        let mut other = b.clone();
        other[0..8].copy_from_slice(&99i64.to_be_bytes());
        let (_, t, _) = decode_txn(&other, MAX).unwrap();
        assert!(matches!(
            t,
            Txn::Create {
                ephemeral_owner: 99,
                ..
            }
        ));
    }

    #[test]
    fn v0_create_reads_with_parent_cversion_minus_one() {
        let h = hdr(3, OpCode::Create);
        let mut b = encode(&h, &create(SESSION, 5), &[], None);
        b.truncate(b.len() - 4); // drop parentCVersion: a CreateTxnV0
        let (h2, t, d) = decode_txn(&b, MAX).unwrap();
        assert_eq!(h2, h);
        assert_eq!(t, create(SESSION, -1));
        assert_eq!(d, None);
        // create2 has no V0 form.
        let mut b = encode(&hdr(3, OpCode::Create2), &create(0, 5), &[], None);
        b.truncate(b.len() - 4);
        assert!(decode_txn(&b, MAX).is_err());
    }

    #[test]
    fn close_session_carries_its_paths() {
        let h = hdr(8, OpCode::CloseSession);
        let paths = vec!["/e1".to_string(), "/a/e2".to_string()];
        let b = encode(&h, &Txn::CloseSession, &paths, Some(77));
        assert_eq!(&b[32..36], &2i32.to_be_bytes());
        let d = decode_txn_full(&b, MAX).unwrap();
        assert_eq!(d.txn, Txn::CloseSession);
        assert_eq!(d.close_paths, paths);
        assert_eq!(d.digest, Some(77));
        // No record at all (closeSessionTxn disabled, or an old leader).
        let d = decode_txn_full(&b[..32], MAX).unwrap();
        assert_eq!(
            (d.txn, d.close_paths.len(), d.digest),
            (Txn::CloseSession, 0, None)
        );
        // close_paths is ignored for other txns.
        let b2 = encode(
            &hdr(1, OpCode::Delete),
            &Txn::Delete { path: "/x".into() },
            &paths,
            None,
        );
        assert_eq!(
            b2,
            encode(
                &hdr(1, OpCode::Delete),
                &Txn::Delete { path: "/x".into() },
                &[],
                None
            )
        );
    }

    #[test]
    fn zookeeper_style_failed_multi_is_normalised_as_datatree_does() {
        // ZooKeeper proposes ops before the failure as real records.
        let java = Txn::Multi(vec![
            (OpCode::Create, create(0, 1)),
            (
                OpCode::SetData,
                Txn::SetData {
                    path: "/s".into(),
                    data: Bytes::new(),
                    version: 1,
                },
            ),
            (OpCode::Error, Txn::Error(ErrorCode::BadVersion)),
            (OpCode::Error, Txn::Error(ErrorCode::RuntimeInconsistency)),
            // Not produced by ZooKeeper, but DataTree would make it RUNTIMEINCONSISTENCY.
            (OpCode::Delete, Txn::Delete { path: "/d".into() }),
        ]);
        let b = encode(&hdr(4, OpCode::Multi), &java, &[], None);
        let (h, t, _) = decode_txn(&b, MAX).unwrap();
        assert_eq!(h.op, OpCode::Multi);
        assert_eq!(
            t,
            Txn::Multi(vec![
                (OpCode::Error, Txn::Error(ErrorCode::Ok)),
                (OpCode::Error, Txn::Error(ErrorCode::Ok)),
                (OpCode::Error, Txn::Error(ErrorCode::BadVersion)),
                (OpCode::Error, Txn::Error(ErrorCode::RuntimeInconsistency)),
                (OpCode::Error, Txn::Error(ErrorCode::RuntimeInconsistency)),
            ])
        );
        // Our failed multi is sub-type -1 + ErrorTxn for every op.
        let ours = &samples()[18].1;
        let b = encode(&hdr(4, OpCode::Multi), ours, &[], None);
        let want_first = hex("00000003 ffffffff 00000004 00000000 ffffffff 00000004 ffffff9b");
        assert_eq!(&b[32..32 + want_first.len()], &want_first[..]);
    }

    #[test]
    fn bad_multis_are_refused() {
        for (inner_op, inner) in [
            (OpCode::Multi, Txn::Multi(vec![])),
            (
                OpCode::SetAcl,
                Txn::SetAcl {
                    path: "/x".into(),
                    acl: vec![],
                    version: 0,
                },
            ),
            (OpCode::CreateSession, Txn::CreateSession { timeout: 1 }),
            (OpCode::CloseSession, Txn::CloseSession),
        ] {
            let t = Txn::Multi(vec![(inner_op, inner)]);
            let b = encode(&hdr(1, OpCode::Multi), &t, &[], None);
            assert!(
                matches!(decode_txn(&b, MAX), Err(WireError::InvalidMultiOp(_))),
                "{inner_op:?}"
            );
        }
        // A sub-record with trailing bytes, and a null MultiTxn vector.
        let mut b = encode(&hdr(1, OpCode::Multi), &Txn::Multi(vec![]), &[], None);
        let at = b.len() - 4;
        b[at..].copy_from_slice(&(-1i32).to_be_bytes());
        assert!(decode_txn(&b, MAX).is_err());
        let mut b = encode(&hdr(1, OpCode::Multi), &Txn::Multi(vec![]), &[], None);
        let at = b.len() - 4;
        b[at..].copy_from_slice(&1i32.to_be_bytes());
        b.extend(hex("00000002 00000007 00000002 2f78 00"));
        assert_eq!(decode_txn(&b, MAX), Err(WireError::TrailingBytes(1)));
    }

    #[test]
    fn digest_edges() {
        let h = hdr(2, OpCode::Delete);
        let t = Txn::Delete { path: "/x".into() };
        let b = encode(&h, &t, &[], Some(5));
        // Another digest version is not comparable: reported as absent.
        let mut other = b.clone();
        let at = b.len() - 12;
        other[at..at + 4].copy_from_slice(&1i32.to_be_bytes());
        assert_eq!(decode_txn(&other, MAX).unwrap().2, None);
        for cut in 1..12 {
            assert!(decode_txn(&b[..b.len() - cut], MAX).is_err(), "cut {cut}");
        }
        let mut longer = b.clone();
        longer.push(0);
        assert_eq!(decode_txn(&longer, MAX), Err(WireError::TrailingBytes(1)));
    }

    #[test]
    fn unknown_and_unsupported_types_are_errors() {
        let b = encode(
            &hdr(2, OpCode::Delete),
            &Txn::Delete { path: "/x".into() },
            &[],
            None,
        );
        for typ in [0i32, 3, 9, 11, 99, -2, -12] {
            let mut m = b.clone();
            m[28..32].copy_from_slice(&typ.to_be_bytes());
            assert!(
                matches!(decode_txn(&m, MAX), Err(WireError::UnsupportedTxnType(t)) if t == typ),
                "type {typ}"
            );
        }
        // A TTL out of range.
        let mut b = encode(
            &hdr(1, OpCode::CreateTtl),
            &create(ephemeral_owner::ttl(5), 1),
            &[],
            None,
        );
        let at = b.len() - 8;
        b[at..].copy_from_slice(&0i64.to_be_bytes());
        assert!(decode_txn(&b, MAX).is_err());
        b[at..].copy_from_slice(&(ephemeral_owner::MAX_TTL + 1).to_be_bytes());
        assert!(decode_txn(&b, MAX).is_err());
        // An unknown error code is kept as a system error.
        let mut b = encode(
            &hdr(1, OpCode::Error),
            &Txn::Error(ErrorCode::NoNode),
            &[],
            None,
        );
        b[32..36].copy_from_slice(&(-9999i32).to_be_bytes());
        assert_eq!(
            decode_txn(&b, MAX).unwrap().1,
            Txn::Error(ErrorCode::SystemError)
        );
    }

    #[test]
    fn max_buffer_bounds_every_field() {
        let h = hdr(1, OpCode::SetData);
        let t = Txn::SetData {
            path: "/x".into(),
            data: Bytes::from(vec![1u8; 100]),
            version: 1,
        };
        let b = encode(&h, &t, &[], None);
        assert!(matches!(decode_txn(&b, 99), Err(WireError::TooLong { .. })));
        assert!(decode_txn(&b, 100).is_ok());
        // A hostile length in a short buffer is refused without allocating.
        let mut m = b[..36].to_vec();
        m[32..36].copy_from_slice(&2i32.to_be_bytes());
        m.extend_from_slice(b"/x");
        m.extend(i32::MAX.to_be_bytes());
        assert!(decode_txn(&m, MAX).is_err());
        // A huge ACL count, and a huge multi count.
        let mut m = encode(
            &hdr(1, OpCode::SetAcl),
            &Txn::SetAcl {
                path: "/x".into(),
                acl: vec![],
                version: 0,
            },
            &[],
            None,
        );
        m[38..42].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(decode_txn(&m, MAX).is_err());
        let mut m = encode(&hdr(1, OpCode::Multi), &Txn::Multi(vec![]), &[], None);
        let at = m.len() - 4;
        m[at..].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(decode_txn(&m, MAX).is_err());
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
            let b = encode(&hdr(i as i64, op), &txn, &["/e".into()], Some(3));
            for cut in 0..b.len() {
                let r = decode_txn(&b[..cut], MAX);
                // Dropping exactly the digest, for closeSession the whole record and
                // digest, or for a type-1 create parentCVersion and digest (a V0
                // create) leaves a valid txn; every other cut is an error.
                let typ = i32::from_be_bytes(b[28..32].try_into().unwrap());
                let valid_cut = cut == b.len() - 12
                    || (typ == -11 && cut == 32)
                    || (typ == 1 && cut == b.len() - 16);
                assert_eq!(r.is_ok(), valid_cut, "sample {i} cut {cut}");
            }
            for _ in 0..300 {
                let mut m = b.clone();
                for _ in 0..1 + next() % 4 {
                    let at = (next() as usize) % m.len();
                    m[at] = next() as u8;
                }
                let _ = decode_txn_full(&m, 4096);
            }
        }
        for len in 0..300 {
            let g: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let _ = decode_txn_full(&g, 4096);
            for typ in [-11, -10, 1, 2, 5, 7, 13, 14, 15, 16, 19, 20, 21, 0, 99] {
                let _ = decode_forwarded(typ, &g);
            }
        }
    }

    fn requests() -> Vec<Request> {
        let create = |flags| CreateRequest {
            path: "/n".into(),
            data: Bytes::from_static(b"data"),
            acl: acl(),
            flags,
        };
        vec![
            Request::Create {
                op: OpCode::Create,
                req: create(1),
            },
            Request::Create {
                op: OpCode::Create2,
                req: create(2),
            },
            Request::Create {
                op: OpCode::CreateContainer,
                req: create(4),
            },
            Request::CreateTtl(CreateTtlRequest {
                path: "/t".into(),
                data: Bytes::new(),
                acl: acl(),
                flags: 5,
                ttl: 60_000,
            }),
            Request::Delete(DeleteRequest {
                path: "/d".into(),
                version: -1,
            }),
            Request::SetData(SetDataRequest {
                path: "/s".into(),
                data: Bytes::from_static(b"v"),
                version: 4,
            }),
            Request::SetAcl(SetAclRequest {
                path: "/s".into(),
                acl: acl(),
                version: 0,
            }),
            Request::Check(CheckVersionRequest {
                path: "/c".into(),
                version: 2,
            }),
            Request::Sync(SyncRequest { path: "/".into() }),
            Request::Reconfig(ReconfigRequest {
                joining_servers: "server.4=h:1:2".into(),
                leaving_servers: "".into(),
                new_members: "".into(),
                cur_config_id: -1,
            }),
            Request::Multi(MultiRequest {
                ops: vec![
                    MultiOp::Create {
                        op: OpCode::Create,
                        req: create(0),
                    },
                    MultiOp::CreateTtl(CreateTtlRequest {
                        path: "/t".into(),
                        data: Bytes::new(),
                        acl: acl(),
                        flags: 6,
                        ttl: 1,
                    }),
                    MultiOp::Delete(DeleteRequest {
                        path: "/d".into(),
                        version: 1,
                    }),
                    MultiOp::SetData(SetDataRequest {
                        path: "/s".into(),
                        data: Bytes::new(),
                        version: -1,
                    }),
                    MultiOp::Check(CheckVersionRequest {
                        path: "/c".into(),
                        version: 0,
                    }),
                ],
            }),
            Request::CloseSession,
        ]
    }

    #[test]
    fn request_bodies_round_trip_through_decode_request() {
        for req in requests() {
            let mut body = BytesMut::new();
            let typ = encode_request(&req, &mut body);
            assert_eq!(typ, req.opcode().as_i32());
            assert_eq!(
                crate::proto::decode_request(typ, &body).unwrap(),
                req,
                "{req:?}"
            );
            assert_eq!(
                decode_forwarded(typ, &body).unwrap(),
                ForwardedRequest::Client(req.clone())
            );
        }
        let mut body = BytesMut::new();
        assert_eq!(encode_request(&Request::CloseSession, &mut body), -11);
        assert!(body.is_empty());
    }

    #[test]
    fn request_bodies_are_the_client_records() {
        // delete "/d" version -1: DeleteRequest{ustring path; int version}.
        let mut body = BytesMut::new();
        let typ = encode_request(
            &Request::Delete(DeleteRequest {
                path: "/d".into(),
                version: -1,
            }),
            &mut body,
        );
        assert_eq!(typ, 2);
        assert_eq!(&body[..], &hex("00000002 2f64 ffffffff")[..]);
        // sync "/": SyncRequest{ustring path}.
        let mut body = BytesMut::new();
        assert_eq!(
            encode_request(&Request::Sync(SyncRequest { path: "/".into() }), &mut body),
            9
        );
        assert_eq!(&body[..], &hex("00000001 2f")[..]);
    }

    #[test]
    fn session_and_container_bodies() {
        let fwd = ForwardedRequest::CreateSession { timeout: 30000 };
        let mut body = BytesMut::new();
        assert_eq!(encode_forwarded(&fwd, &mut body), -10);
        assert_eq!(&body[..], &hex("00007530")[..]);
        assert_eq!(&create_session_body(30000)[..], &body[..]);
        assert_eq!(decode_forwarded(-10, &body), Ok(fwd));
        assert!(decode_forwarded(-10, &body[..3]).is_err());

        let fwd = ForwardedRequest::DeleteContainer {
            path: "/c/x".into(),
        };
        let mut body = BytesMut::new();
        assert_eq!(encode_forwarded(&fwd, &mut body), 20);
        assert_eq!(&body[..], b"/c/x");
        assert_eq!(decode_forwarded(20, &body), Ok(fwd));
        assert!(decode_forwarded(20, &[0xff]).is_err());

        assert!(decode_forwarded(10, &[]).is_err());
        assert!(decode_forwarded(1, &[0, 0]).is_err());
    }
}
