//! Reads served from a shard's own tree. CONTRACT STUB.

use crate::proto::*;
use crate::tree::DataTree;

/// A watch the read asks the shard to register for the session (server-side, exists
/// registers a data watch whether or not the node exists, as ZooKeeper does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchRegistration {
    Data(String),
    Child(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadReply {
    Exists(ExistsResponse),
    GetData(GetDataResponse),
    GetAcl(GetAclResponse),
    GetChildren(GetChildrenResponse),
    GetChildren2(GetChildren2Response),
    GetAllChildrenNumber(GetAllChildrenNumberResponse),
    GetEphemerals(GetEphemeralsResponse),
    MultiRead(MultiResponse),
}

impl ReadReply {
    pub fn encode(&self, w: &mut bytes::BytesMut) {
        match self {
            ReadReply::Exists(r) => r.encode(w),
            ReadReply::GetData(r) => r.encode(w),
            ReadReply::GetAcl(r) => r.encode(w),
            ReadReply::GetChildren(r) => r.encode(w),
            ReadReply::GetChildren2(r) => r.encode(w),
            ReadReply::GetAllChildrenNumber(r) => r.encode(w),
            ReadReply::GetEphemerals(r) => r.encode(w),
            ReadReply::MultiRead(r) => r.encode(w),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOutcome {
    pub reply: Result<ReadReply, ErrorCode>,
    pub watch: Option<WatchRegistration>,
}

/// Answers exists, getData, getACL, getChildren, getChildren2, getAllChildrenNumber,
/// getEphemerals and multiRead for `session_id` holding `auth`.
pub fn process_read(tree: &DataTree, session_id: i64, auth: &[Id], req: &Request) -> ReadOutcome {
    let _ = (tree, session_id, auth, req);
    todo!("process_read")
}
