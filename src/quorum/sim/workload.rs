//! The simulated clients' writes, as real ZooKeeper requests, and the leader's side of
//! them: prep (the real `Prepper`) into real txns, encoded as ZooKeeper's PROPOSAL data.
//!
//! A write's id is the `cxid` of its request, so it travels in the txn header
//! (`TxnHeader.cxid`) and the checker finds it in every committed txn.

use bytes::{Bytes, BytesMut};

use crate::proto::{CreateRequest, DeleteRequest, OpCode, Request, SetDataRequest};
use crate::quorum::zab::ZabTxn;
use crate::quorum::zk_txn::{self, ForwardedRequest};
use crate::request::{txn_op, PrepCtx, Prepper, Txn, TxnHeader};
use crate::storage::backend::SimRng;
use crate::tree::{open_acl_unsafe, DataTree};

/// `jute.maxbuffer` for decoding.
pub const MAX_BUFFER: usize = 1 << 20;

/// The clients' sessions (ids as a learner would give them, myid in the top byte).
const SESSIONS: i64 = 4;

fn session(n: i64) -> i64 {
    (0x51 << 56) | (n + 1)
}

/// Wall-clock time of sim time 0 (txn headers carry wall time: ctime and mtime).
const EPOCH_MS: i64 = 1_700_000_000_000;

pub fn wall_ms(now: i64) -> i64 {
    EPOCH_MS + now
}

/// A write as the client sent it: the session it belongs to and the request (or a
/// createSession, which no client sends as a request body).
#[derive(Debug, Clone)]
pub enum Write {
    Request(Request),
    CreateSession { timeout: i32 },
}

/// A random write: data changes, creates (plain, sequential, ephemeral), deletes, and
/// sessions opening and closing (so closeSession carries a real path list).
pub fn random_write(rng: &mut SimRng, id: u64) -> (i64, Write) {
    let s = session(rng.below(SESSIONS as u64) as i64);
    let k = rng.below(6);
    let data = Bytes::from(format!("write {id}"));
    let create = |path: String, flags: i32| {
        Write::Request(Request::Create {
            op: OpCode::Create,
            req: CreateRequest {
                path,
                data: data.clone(),
                acl: open_acl_unsafe(),
                flags,
            },
        })
    };
    let w = match rng.below(100) {
        0..=44 => Write::Request(Request::SetData(SetDataRequest {
            path: format!("/k{k}"),
            data: data.clone(),
            version: -1,
        })),
        45..=64 => create(format!("/k{k}"), 0),
        65..=72 => create(format!("/k{k}/c"), 2),
        73..=79 => Write::Request(Request::Delete(DeleteRequest {
            path: format!("/k{k}"),
            version: -1,
        })),
        80..=87 => create(format!("/e{k}"), 1),
        88..=93 => Write::CreateSession { timeout: 30_000 },
        _ => Write::Request(Request::CloseSession),
    };
    (s, w)
}

/// A learner's REQUEST body and type for a write (`ensemble::forward`).
pub fn forward_body(w: &Write) -> (i32, Bytes) {
    let mut buf = BytesMut::new();
    let op = match w {
        Write::Request(r) => {
            zk_txn::encode_forwarded(&ForwardedRequest::Client(r.clone()), &mut buf)
        }
        Write::CreateSession { timeout } => zk_txn::encode_forwarded(
            &ForwardedRequest::CreateSession { timeout: *timeout },
            &mut buf,
        ),
    };
    (op, buf.freeze())
}

/// The leader's reading of a forwarded REQUEST (`ensemble::submit`).
pub fn decode_forwarded(op: i32, body: &[u8]) -> Result<Write, String> {
    match zk_txn::decode_forwarded(op, body) {
        Ok(ForwardedRequest::Client(r)) => Ok(Write::Request(r)),
        Ok(ForwardedRequest::CreateSession { timeout }) => Ok(Write::CreateSession { timeout }),
        Ok(other) => Err(format!("an unexpected forwarded request {other:?}")),
        Err(e) => Err(format!("a forwarded request does not decode: {e}")),
    }
}

/// The leader's prep of one write as txn `zxid` against its applied tree (and the
/// prepped changes not yet applied), and its PROPOSAL data (`ensemble::zab_txn`).
pub fn prep(
    prepper: &mut Prepper,
    tree: &DataTree,
    zxid: i64,
    now: i64,
    session_id: i64,
    cxid: i32,
    w: &Write,
) -> (TxnHeader, Txn, ZabTxn) {
    let time = wall_ms(now);
    let (op, txn) = match w {
        Write::Request(req) => {
            let ctx = PrepCtx {
                session_id,
                auth: &[],
                now_ms: time,
            };
            let txn = prepper.prep(tree, zxid, &ctx, req);
            (txn_op(req.opcode(), &txn), txn)
        }
        Write::CreateSession { timeout } => (
            OpCode::CreateSession,
            Txn::CreateSession { timeout: *timeout },
        ),
    };
    let hdr = TxnHeader {
        client_id: session_id,
        cxid,
        zxid,
        time,
        op,
    };
    let t = encode(&hdr, &txn, tree);
    (hdr, txn, t)
}

/// PROPOSAL data for a txn (closeSession lists the session's ephemerals in `tree`).
pub fn encode(hdr: &TxnHeader, txn: &Txn, tree: &DataTree) -> ZabTxn {
    let close_paths = match txn {
        Txn::CloseSession => tree.ephemerals(hdr.client_id),
        _ => Vec::new(),
    };
    let mut buf = BytesMut::new();
    zk_txn::encode_txn(hdr, txn, &close_paths, None, &mut buf);
    ZabTxn {
        zxid: hdr.zxid,
        data: buf.freeze(),
    }
}

/// The write id a txn carries (its header's cxid), for messages.
pub fn write_id(t: &ZabTxn) -> Option<u64> {
    // TxnHeader: clientId (8 bytes), then cxid (4).
    let b = t.data.get(8..12)?;
    Some(i32::from_be_bytes(b.try_into().ok()?) as u32 as u64)
}

/// A summary of a server's state: the tree digest (ZooKeeper's, over every znode's path,
/// data and stat) and the sessions.
pub fn fingerprint(tree: &DataTree) -> i64 {
    let mut sessions = tree.sessions();
    sessions.sort_unstable();
    let mut crc = crc32fast::Hasher::new();
    for (id, timeout) in sessions {
        crc.update(&id.to_be_bytes());
        crc.update(&timeout.to_be_bytes());
    }
    crate::quorum::digest::tree_digest(tree) ^ ((crc.finalize() as i64) << 32)
}
