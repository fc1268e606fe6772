//! Encoding a txn's result as the reply body. CONTRACT STUB.

use bytes::BytesMut;

use crate::proto::{ErrorCode, OpCode};
use crate::request::apply::TxnResult;

/// Writes the reply body for a write of opcode `op` with `result`, returning the
/// error code for the ReplyHeader. A failed request has no body (ZooKeeper sends only
/// the header), except multi, whose body lists every op's result.
pub fn encode_write_reply(op: OpCode, result: &TxnResult, out: &mut BytesMut) -> ErrorCode {
    let _ = (op, result, out);
    todo!("encode_write_reply")
}
