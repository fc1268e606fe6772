//! Encoding a txn's result as the reply body: the write branch of ZooKeeper's
//! `FinalRequestProcessor`.

use bytes::BytesMut;

use crate::proto::{
    Create2Response, CreateResponse, ErrorCode, Jute, MultiResponse, OpCode, OpResult,
    SetAclResponse, SetDataResponse,
};
use crate::request::apply::TxnResult;

/// One result of a multi as its `OpResult`.
fn op_result(r: &TxnResult) -> OpResult {
    match r {
        TxnResult::CreatedPath { path } => OpResult::Create { path: path.clone() },
        TxnResult::Created { path, stat } => OpResult::Create2 {
            path: path.clone(),
            stat: *stat,
        },
        TxnResult::Deleted => OpResult::Delete,
        TxnResult::SetData { stat } => OpResult::SetData { stat: *stat },
        TxnResult::Checked => OpResult::Check,
        TxnResult::Error(e) => OpResult::Error(*e),
        // Not possible inside a multi.
        TxnResult::SetAcl { .. }
        | TxnResult::Multi(_)
        | TxnResult::SessionCreated
        | TxnResult::SessionClosed => OpResult::Error(ErrorCode::MarshallingError),
    }
}

/// Writes the reply body for a write of opcode `op` with `result`, returning the
/// error code for the ReplyHeader. A failed request has no body (ZooKeeper sends only
/// the header), except multi, whose body lists every op's result: its header code is
/// Ok even when an op failed (clients read the failure from the results).
pub fn encode_write_reply(op: OpCode, result: &TxnResult, out: &mut BytesMut) -> ErrorCode {
    if let TxnResult::Multi(results) = result {
        MultiResponse {
            results: results.iter().map(op_result).collect(),
        }
        .encode(out);
        return ErrorCode::Ok;
    }
    if let TxnResult::Error(e) = result {
        return *e;
    }
    match (op, result) {
        (OpCode::Create, TxnResult::Created { path, .. } | TxnResult::CreatedPath { path }) => {
            CreateResponse { path: path.clone() }.encode(out)
        }
        (
            OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl,
            TxnResult::Created { path, stat },
        ) => Create2Response {
            path: path.clone(),
            stat: *stat,
        }
        .encode(out),
        (OpCode::SetData, TxnResult::SetData { stat }) => {
            SetDataResponse { stat: *stat }.encode(out)
        }
        (OpCode::SetAcl, TxnResult::SetAcl { stat }) => SetAclResponse { stat: *stat }.encode(out),
        // delete, deleteContainer, check, closeSession, createSession: header only.
        _ => {}
    }
    ErrorCode::Ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Reader, Stat};

    #[test]
    fn create_bodies_follow_the_opcode() {
        let stat = Stat {
            czxid: 5,
            ..Default::default()
        };
        let r = TxnResult::Created {
            path: "/a".into(),
            stat,
        };
        let mut out = BytesMut::new();
        assert_eq!(
            encode_write_reply(OpCode::Create, &r, &mut out),
            ErrorCode::Ok
        );
        assert_eq!(CreateResponse::from_bytes(&out).unwrap().path, "/a");
        assert_eq!(out.len(), 4 + 2);
        for op in [OpCode::Create2, OpCode::CreateContainer, OpCode::CreateTtl] {
            let mut out = BytesMut::new();
            encode_write_reply(op, &r, &mut out);
            let c = Create2Response::from_bytes(&out).unwrap();
            assert_eq!((c.path.as_str(), c.stat), ("/a", stat));
        }
    }

    #[test]
    fn header_only_replies() {
        for (op, r) in [
            (OpCode::Delete, TxnResult::Deleted),
            (OpCode::Check, TxnResult::Checked),
            (OpCode::CloseSession, TxnResult::SessionClosed),
            (OpCode::DeleteContainer, TxnResult::Deleted),
        ] {
            let mut out = BytesMut::new();
            assert_eq!(encode_write_reply(op, &r, &mut out), ErrorCode::Ok);
            assert!(out.is_empty());
        }
    }

    #[test]
    fn errors_have_no_body() {
        let mut out = BytesMut::new();
        let code = encode_write_reply(
            OpCode::SetData,
            &TxnResult::Error(ErrorCode::BadVersion),
            &mut out,
        );
        assert_eq!(code, ErrorCode::BadVersion);
        assert!(out.is_empty());
    }

    #[test]
    fn set_data_and_set_acl_carry_the_stat() {
        let stat = Stat {
            version: 3,
            ..Default::default()
        };
        let mut out = BytesMut::new();
        encode_write_reply(OpCode::SetData, &TxnResult::SetData { stat }, &mut out);
        assert_eq!(SetDataResponse::from_bytes(&out).unwrap().stat, stat);
        let mut out = BytesMut::new();
        encode_write_reply(OpCode::SetAcl, &TxnResult::SetAcl { stat }, &mut out);
        assert_eq!(SetAclResponse::from_bytes(&out).unwrap().stat, stat);
    }

    #[test]
    fn multi_results_are_encoded_per_op() {
        let stat = Stat::default();
        let r = TxnResult::Multi(vec![
            TxnResult::CreatedPath { path: "/a".into() },
            TxnResult::Created {
                path: "/b".into(),
                stat,
            },
            TxnResult::Deleted,
            TxnResult::SetData { stat },
            TxnResult::Checked,
        ]);
        let mut out = BytesMut::new();
        assert_eq!(
            encode_write_reply(OpCode::Multi, &r, &mut out),
            ErrorCode::Ok
        );
        let m = MultiResponse::decode(&mut Reader::new(&out)).unwrap();
        assert_eq!(
            m.results,
            vec![
                OpResult::Create { path: "/a".into() },
                OpResult::Create2 {
                    path: "/b".into(),
                    stat
                },
                OpResult::Delete,
                OpResult::SetData { stat },
                OpResult::Check,
            ]
        );
    }

    #[test]
    fn failed_multi_lists_every_error_with_ok_header() {
        let r = TxnResult::Multi(vec![
            TxnResult::Error(ErrorCode::Ok),
            TxnResult::Error(ErrorCode::NoNode),
            TxnResult::Error(ErrorCode::RuntimeInconsistency),
        ]);
        let mut out = BytesMut::new();
        assert_eq!(
            encode_write_reply(OpCode::Multi, &r, &mut out),
            ErrorCode::Ok
        );
        let m = MultiResponse::from_bytes(&out).unwrap();
        assert_eq!(
            m.results,
            vec![
                OpResult::Error(ErrorCode::Ok),
                OpResult::Error(ErrorCode::NoNode),
                OpResult::Error(ErrorCode::RuntimeInconsistency),
            ]
        );
    }
}
