//! A client request decoded by opcode, multi's op list, and the replies the server
//! encodes. `decode_request` is the only place that maps opcodes to records.

use bytes::{BufMut, Bytes, BytesMut};

use super::consts::{ErrorCode, OpCode};
use super::jute::{DecodeError, Jute, Reader};
use super::records::*;

/// One op of a `multi` (writes) or `multiRead` (reads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiOp {
    /// `op` is Create, Create2 or CreateContainer: it selects the result's encoding.
    Create {
        op: OpCode,
        req: CreateRequest,
    },
    CreateTtl(CreateTtlRequest),
    Delete(DeleteRequest),
    SetData(SetDataRequest),
    Check(CheckVersionRequest),
    GetChildren(GetChildrenRequest),
    GetData(GetDataRequest),
}

impl MultiOp {
    pub fn opcode(&self) -> OpCode {
        match self {
            MultiOp::Create { op, .. } => *op,
            MultiOp::CreateTtl(_) => OpCode::CreateTtl,
            MultiOp::Delete(_) => OpCode::Delete,
            MultiOp::SetData(_) => OpCode::SetData,
            MultiOp::Check(_) => OpCode::Check,
            MultiOp::GetChildren(_) => OpCode::GetChildren,
            MultiOp::GetData(_) => OpCode::GetData,
        }
    }

    pub fn path(&self) -> &str {
        match self {
            MultiOp::Create { req, .. } => &req.path,
            MultiOp::CreateTtl(r) => &r.path,
            MultiOp::Delete(r) => &r.path,
            MultiOp::SetData(r) => &r.path,
            MultiOp::Check(r) => &r.path,
            MultiOp::GetChildren(r) => &r.path,
            MultiOp::GetData(r) => &r.path,
        }
    }

    pub fn is_read(&self) -> bool {
        matches!(self, MultiOp::GetChildren(_) | MultiOp::GetData(_))
    }
}

/// `MultiOperationRecord`: ops each behind a `MultiHeader`, closed by a header with
/// `done` set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MultiRequest {
    pub ops: Vec<MultiOp>,
}

impl Jute for MultiRequest {
    fn encode(&self, w: &mut BytesMut) {
        for op in &self.ops {
            MultiHeader {
                r#type: op.opcode().as_i32(),
                done: false,
                err: -1,
            }
            .encode(w);
            match op {
                MultiOp::Create { req, .. } => req.encode(w),
                MultiOp::CreateTtl(r) => r.encode(w),
                MultiOp::Delete(r) => r.encode(w),
                MultiOp::SetData(r) => r.encode(w),
                MultiOp::Check(r) => r.encode(w),
                MultiOp::GetChildren(r) => r.encode(w),
                MultiOp::GetData(r) => r.encode(w),
            }
        }
        MultiHeader {
            r#type: -1,
            done: true,
            err: -1,
        }
        .encode(w);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut ops = Vec::new();
        loop {
            let h = MultiHeader::decode(r)?;
            if h.done {
                return Ok(MultiRequest { ops });
            }
            let op = match OpCode::from_i32(h.r#type) {
                Some(op @ (OpCode::Create | OpCode::Create2 | OpCode::CreateContainer)) => {
                    MultiOp::Create {
                        op,
                        req: CreateRequest::decode(r)?,
                    }
                }
                Some(OpCode::CreateTtl) => MultiOp::CreateTtl(CreateTtlRequest::decode(r)?),
                Some(OpCode::Delete) => MultiOp::Delete(DeleteRequest::decode(r)?),
                Some(OpCode::SetData) => MultiOp::SetData(SetDataRequest::decode(r)?),
                Some(OpCode::Check) => MultiOp::Check(CheckVersionRequest::decode(r)?),
                Some(OpCode::GetChildren) => MultiOp::GetChildren(GetChildrenRequest::decode(r)?),
                Some(OpCode::GetData) => MultiOp::GetData(GetDataRequest::decode(r)?),
                _ => return Err(DecodeError::BadMulti("invalid type of op")),
            };
            ops.push(op);
        }
    }
}

/// One result of a multi or multiRead (`OpResult`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    /// `create`: path only.
    Create {
        path: String,
    },
    /// `create2`, `createContainer`, `createTTL`: path and Stat (encoded as opcode create2).
    Create2 {
        path: String,
        stat: Stat,
    },
    Delete,
    SetData {
        stat: Stat,
    },
    Check,
    GetChildren {
        children: Vec<String>,
    },
    GetData {
        data: Bytes,
        stat: Stat,
    },
    Error(ErrorCode),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MultiResponse {
    pub results: Vec<OpResult>,
}

impl Jute for MultiResponse {
    fn encode(&self, w: &mut BytesMut) {
        for res in &self.results {
            let (op, err) = match res {
                OpResult::Create { .. } => (OpCode::Create, 0),
                OpResult::Create2 { .. } => (OpCode::Create2, 0),
                OpResult::Delete => (OpCode::Delete, 0),
                OpResult::SetData { .. } => (OpCode::SetData, 0),
                OpResult::Check => (OpCode::Check, 0),
                OpResult::GetChildren { .. } => (OpCode::GetChildren, 0),
                OpResult::GetData { .. } => (OpCode::GetData, 0),
                OpResult::Error(e) => (OpCode::Error, e.as_i32()),
            };
            MultiHeader {
                r#type: op.as_i32(),
                done: false,
                err,
            }
            .encode(w);
            match res {
                OpResult::Create { path } => path.encode(w),
                OpResult::Create2 { path, stat } => {
                    path.encode(w);
                    stat.encode(w);
                }
                OpResult::Delete | OpResult::Check => {}
                OpResult::SetData { stat } => stat.encode(w),
                OpResult::GetChildren { children } => children.encode(w),
                OpResult::GetData { data, stat } => {
                    data.encode(w);
                    stat.encode(w);
                }
                OpResult::Error(e) => e.as_i32().encode(w),
            }
        }
        MultiHeader {
            r#type: -1,
            done: true,
            err: -1,
        }
        .encode(w);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut results = Vec::new();
        loop {
            let h = MultiHeader::decode(r)?;
            if h.done {
                return Ok(MultiResponse { results });
            }
            let res = match OpCode::from_i32(h.r#type) {
                Some(OpCode::Create) => OpResult::Create {
                    path: String::decode(r)?,
                },
                Some(OpCode::Create2) => OpResult::Create2 {
                    path: String::decode(r)?,
                    stat: Stat::decode(r)?,
                },
                Some(OpCode::Delete) => OpResult::Delete,
                Some(OpCode::Check) => OpResult::Check,
                Some(OpCode::SetData) => OpResult::SetData {
                    stat: Stat::decode(r)?,
                },
                Some(OpCode::GetChildren) => OpResult::GetChildren {
                    children: Vec::decode(r)?,
                },
                Some(OpCode::GetData) => OpResult::GetData {
                    data: Bytes::decode(r)?,
                    stat: Stat::decode(r)?,
                },
                Some(OpCode::Error) => {
                    let err = r.read_i32()?;
                    OpResult::Error(
                        ErrorCode::from_i32(err).ok_or(DecodeError::BadMulti("unknown error"))?,
                    )
                }
                _ => return Err(DecodeError::BadMulti("invalid result type")),
            };
            results.push(res);
        }
    }
}

/// A request body, decoded according to its header's opcode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `op` is Create, Create2 or CreateContainer.
    Create {
        op: OpCode,
        req: CreateRequest,
    },
    CreateTtl(CreateTtlRequest),
    Delete(DeleteRequest),
    Exists(ExistsRequest),
    GetData(GetDataRequest),
    SetData(SetDataRequest),
    GetAcl(GetAclRequest),
    SetAcl(SetAclRequest),
    GetChildren(GetChildrenRequest),
    GetChildren2(GetChildren2Request),
    Sync(SyncRequest),
    Ping,
    Check(CheckVersionRequest),
    Multi(MultiRequest),
    MultiRead(MultiRequest),
    Reconfig(ReconfigRequest),
    CheckWatches(CheckWatchesRequest),
    RemoveWatches(RemoveWatchesRequest),
    Auth(AuthPacket),
    SetWatches(SetWatches),
    SetWatches2(SetWatches2),
    Sasl(GetSaslRequest),
    GetEphemerals(GetEphemeralsRequest),
    GetAllChildrenNumber(GetAllChildrenNumberRequest),
    AddWatch(AddWatchRequest),
    WhoAmI,
    CloseSession,
}

impl Request {
    pub fn opcode(&self) -> OpCode {
        use Request::*;
        match self {
            Create { op, .. } => *op,
            CreateTtl(_) => OpCode::CreateTtl,
            Delete(_) => OpCode::Delete,
            Exists(_) => OpCode::Exists,
            GetData(_) => OpCode::GetData,
            SetData(_) => OpCode::SetData,
            GetAcl(_) => OpCode::GetAcl,
            SetAcl(_) => OpCode::SetAcl,
            GetChildren(_) => OpCode::GetChildren,
            GetChildren2(_) => OpCode::GetChildren2,
            Sync(_) => OpCode::Sync,
            Ping => OpCode::Ping,
            Check(_) => OpCode::Check,
            Multi(_) => OpCode::Multi,
            MultiRead(_) => OpCode::MultiRead,
            Reconfig(_) => OpCode::Reconfig,
            CheckWatches(_) => OpCode::CheckWatches,
            RemoveWatches(_) => OpCode::RemoveWatches,
            Auth(_) => OpCode::Auth,
            SetWatches(_) => OpCode::SetWatches,
            SetWatches2(_) => OpCode::SetWatches2,
            Sasl(_) => OpCode::Sasl,
            GetEphemerals(_) => OpCode::GetEphemerals,
            GetAllChildrenNumber(_) => OpCode::GetAllChildrenNumber,
            AddWatch(_) => OpCode::AddWatch,
            WhoAmI => OpCode::WhoAmI,
            CloseSession => OpCode::CloseSession,
        }
    }
}

/// Decodes the body that follows a `RequestHeader` of type `opcode`. Opcodes a client
/// never sends (notification, createSession, deleteContainer, error) and unknown ones
/// give `UnknownOpCode`.
pub fn decode_request(opcode: i32, body: &[u8]) -> Result<Request, DecodeError> {
    let r = &mut Reader::new(body);
    let op = OpCode::from_i32(opcode).ok_or(DecodeError::UnknownOpCode(opcode))?;
    use Request as R;
    Ok(match op {
        OpCode::Create | OpCode::Create2 | OpCode::CreateContainer => R::Create {
            op,
            req: CreateRequest::decode(r)?,
        },
        OpCode::CreateTtl => R::CreateTtl(CreateTtlRequest::decode(r)?),
        OpCode::Delete => R::Delete(DeleteRequest::decode(r)?),
        OpCode::Exists => R::Exists(ExistsRequest::decode(r)?),
        OpCode::GetData => R::GetData(GetDataRequest::decode(r)?),
        OpCode::SetData => R::SetData(SetDataRequest::decode(r)?),
        OpCode::GetAcl => R::GetAcl(GetAclRequest::decode(r)?),
        OpCode::SetAcl => R::SetAcl(SetAclRequest::decode(r)?),
        OpCode::GetChildren => R::GetChildren(GetChildrenRequest::decode(r)?),
        OpCode::GetChildren2 => R::GetChildren2(GetChildren2Request::decode(r)?),
        OpCode::Sync => R::Sync(SyncRequest::decode(r)?),
        OpCode::Ping => R::Ping,
        OpCode::Check => R::Check(CheckVersionRequest::decode(r)?),
        OpCode::Multi => R::Multi(MultiRequest::decode(r)?),
        OpCode::MultiRead => R::MultiRead(MultiRequest::decode(r)?),
        OpCode::Reconfig => R::Reconfig(ReconfigRequest::decode(r)?),
        OpCode::CheckWatches => R::CheckWatches(CheckWatchesRequest::decode(r)?),
        OpCode::RemoveWatches => R::RemoveWatches(RemoveWatchesRequest::decode(r)?),
        OpCode::Auth => R::Auth(AuthPacket::decode(r)?),
        OpCode::SetWatches => R::SetWatches(SetWatches::decode(r)?),
        OpCode::SetWatches2 => R::SetWatches2(SetWatches2::decode(r)?),
        OpCode::Sasl => R::Sasl(GetSaslRequest::decode(r)?),
        OpCode::GetEphemerals => R::GetEphemerals(GetEphemeralsRequest::decode(r)?),
        OpCode::GetAllChildrenNumber => {
            R::GetAllChildrenNumber(GetAllChildrenNumberRequest::decode(r)?)
        }
        OpCode::AddWatch => R::AddWatch(AddWatchRequest::decode(r)?),
        OpCode::WhoAmI => R::WhoAmI,
        OpCode::CloseSession => R::CloseSession,
        OpCode::Notification | OpCode::CreateSession | OpCode::DeleteContainer | OpCode::Error => {
            return Err(DecodeError::UnknownOpCode(opcode))
        }
    })
}

/// Appends one length-prefixed reply frame: `ReplyHeader` then `body`.
pub fn encode_reply(out: &mut BytesMut, header: ReplyHeader, body: Option<&dyn JuteDyn>) {
    let start = out.len();
    out.put_i32(0);
    header.encode(out);
    if let Some(b) = body {
        b.encode_dyn(out);
    }
    let len = (out.len() - start - 4) as i32;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

/// Object-safe encoding, for handing any record to `encode_reply`.
pub trait JuteDyn {
    fn encode_dyn(&self, w: &mut BytesMut);
}

impl<T: Jute> JuteDyn for T {
    fn encode_dyn(&self, w: &mut BytesMut) {
        self.encode(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_request_round_trips() {
        let m = MultiRequest {
            ops: vec![
                MultiOp::Create {
                    op: OpCode::Create2,
                    req: CreateRequest {
                        path: "/a".into(),
                        data: Bytes::from_static(b"x"),
                        acl: vec![],
                        flags: 0,
                    },
                },
                MultiOp::CreateTtl(CreateTtlRequest {
                    path: "/t".into(),
                    ttl: 5,
                    flags: 5,
                    ..Default::default()
                }),
                MultiOp::Delete(DeleteRequest {
                    path: "/b".into(),
                    version: -1,
                }),
                MultiOp::SetData(SetDataRequest {
                    path: "/c".into(),
                    data: Bytes::new(),
                    version: 3,
                }),
                MultiOp::Check(CheckVersionRequest {
                    path: "/d".into(),
                    version: 1,
                }),
                MultiOp::GetChildren(GetChildrenRequest {
                    path: "/e".into(),
                    watch: false,
                }),
                MultiOp::GetData(GetDataRequest {
                    path: "/f".into(),
                    watch: false,
                }),
            ],
        };
        let b = m.to_bytes();
        assert_eq!(MultiRequest::from_bytes(&b).unwrap(), m);
        // The closing header is type -1, done, err -1.
        assert_eq!(
            &b[b.len() - 9..],
            &[255, 255, 255, 255, 1, 255, 255, 255, 255]
        );
    }

    #[test]
    fn multi_response_round_trips() {
        let stat = Stat::default();
        let m = MultiResponse {
            results: vec![
                OpResult::Create { path: "/a".into() },
                OpResult::Create2 {
                    path: "/b".into(),
                    stat,
                },
                OpResult::Delete,
                OpResult::SetData { stat },
                OpResult::Check,
                OpResult::GetChildren {
                    children: vec!["x".into()],
                },
                OpResult::GetData {
                    data: Bytes::from_static(b"d"),
                    stat,
                },
                OpResult::Error(ErrorCode::NoNode),
            ],
        };
        assert_eq!(MultiResponse::from_bytes(&m.to_bytes()).unwrap(), m);
    }

    #[test]
    fn error_result_carries_code_in_header_and_body() {
        let b = MultiResponse {
            results: vec![OpResult::Error(ErrorCode::BadVersion)],
        }
        .to_bytes();
        assert_eq!(&b[0..4], &(-1i32).to_be_bytes());
        assert_eq!(b[4], 0);
        assert_eq!(&b[5..9], &(-103i32).to_be_bytes());
        assert_eq!(&b[9..13], &(-103i32).to_be_bytes());
    }

    #[test]
    fn bad_multi_op_is_refused() {
        let mut w = BytesMut::new();
        MultiHeader {
            r#type: OpCode::Sync.as_i32(),
            done: false,
            err: -1,
        }
        .encode(&mut w);
        assert!(MultiRequest::from_bytes(&w).is_err());
    }

    #[test]
    fn unknown_opcodes_are_reported() {
        assert_eq!(decode_request(10, &[]), Err(DecodeError::UnknownOpCode(10)));
        assert_eq!(
            decode_request(-10, &[]),
            Err(DecodeError::UnknownOpCode(-10))
        );
        assert_eq!(decode_request(11, &[]), Ok(Request::Ping));
    }

    #[test]
    fn reply_frame_is_length_prefixed() {
        let mut out = BytesMut::new();
        encode_reply(
            &mut out,
            ReplyHeader {
                xid: 3,
                zxid: 9,
                err: 0,
            },
            Some(&ErrorResponse { err: 1 }),
        );
        assert_eq!(&out[0..4], &20i32.to_be_bytes());
        assert_eq!(out.len(), 24);
    }
}
