//! Reads served from a shard's own tree: the read branch of ZooKeeper's
//! `FinalRequestProcessor`, with its permission checks and its rules for when a watch
//! is left (exists leaves one even on a missing node; getData/getChildren only on an
//! existing, readable one; multiRead never).

use crate::acl;
use crate::proto::*;
use crate::tree::{DataTree, Node, NodeData};

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
    GetData(GetDataReply),
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

/// getData's answer, encoded as `GetDataResponse`. It holds the znode's data itself (a
/// count on it, not a copy), which stays valid whatever the tree does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetDataReply {
    pub data: NodeData,
    pub stat: Stat,
}

impl GetDataReply {
    fn encode(&self, w: &mut bytes::BytesMut) {
        jute::put_buffer(w, &self.data);
        self.stat.encode(w);
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOutcome {
    pub reply: Result<ReadReply, ErrorCode>,
    pub watch: Option<WatchRegistration>,
}

fn err(e: ErrorCode) -> ReadOutcome {
    ReadOutcome {
        reply: Err(e),
        watch: None,
    }
}

fn ok(r: ReadReply, watch: Option<WatchRegistration>) -> ReadOutcome {
    ReadOutcome {
        reply: Ok(r),
        watch,
    }
}

/// The node at `path`, if `auth` may read it.
fn readable<'t>(tree: &'t DataTree, path: &str, auth: &[Id]) -> Result<&'t Node, ErrorCode> {
    let node = tree.get(path).ok_or(ErrorCode::NoNode)?;
    if acl::check_acl(tree.acl(node), perms::READ, auth) {
        Ok(node)
    } else {
        Err(ErrorCode::NoAuth)
    }
}

fn get_data(tree: &DataTree, path: &str, auth: &[Id]) -> Result<GetDataReply, ErrorCode> {
    let n = readable(tree, path, auth)?;
    Ok(GetDataReply {
        data: n.data().clone(),
        stat: n.stat(),
    })
}

fn get_children(tree: &DataTree, path: &str, auth: &[Id]) -> Result<Vec<String>, ErrorCode> {
    readable(tree, path, auth)?;
    tree.children(path).ok_or(ErrorCode::NoNode)
}

/// `getACL`: READ or ADMIN lets the ACL be read; without ADMIN, digest ids have their
/// hash masked ("user:x"), as ZooKeeper 3.8 does.
fn get_acl(tree: &DataTree, path: &str, auth: &[Id]) -> Result<GetAclResponse, ErrorCode> {
    let n = tree.get(path).ok_or(ErrorCode::NoNode)?;
    let list = tree.acl(n);
    if !acl::check_acl(list, perms::READ | perms::ADMIN, auth) {
        return Err(ErrorCode::NoAuth);
    }
    let stat = n.stat();
    if acl::check_acl(list, perms::ADMIN, auth) {
        return Ok(GetAclResponse {
            acl: list.to_vec(),
            stat,
        });
    }
    let masked = list
        .iter()
        .map(|a| {
            if a.id.scheme == "digest" {
                let id = match a.id.id.find(':') {
                    Some(i) => format!("{}:x", &a.id.id[..i]),
                    None => a.id.id.clone(),
                };
                Acl {
                    perms: a.perms,
                    id: Id {
                        scheme: a.id.scheme.clone(),
                        id,
                    },
                }
            } else {
                a.clone()
            }
        })
        .collect();
    Ok(GetAclResponse { acl: masked, stat })
}

/// Answers exists, getData, getACL, getChildren, getChildren2, getAllChildrenNumber,
/// getEphemerals and multiRead for `session_id` holding `auth`. Other requests get
/// `Unimplemented`.
pub fn process_read(tree: &DataTree, session_id: i64, auth: &[Id], req: &Request) -> ReadOutcome {
    match req {
        Request::Exists(r) => {
            if r.path.contains('\0') {
                return err(ErrorCode::BadArguments);
            }
            // No ACL check: the ZooKeeper 3.8 we are compared against answers exists
            // for any caller (READ on exists came with ZOOKEEPER-2590, in later releases).
            let watch = r.watch.then(|| WatchRegistration::Data(r.path.clone()));
            ReadOutcome {
                reply: tree
                    .stat(&r.path)
                    .map(|stat| ReadReply::Exists(ExistsResponse { stat }))
                    .ok_or(ErrorCode::NoNode),
                watch,
            }
        }
        Request::GetData(r) => match get_data(tree, &r.path, auth) {
            Ok(resp) => ok(
                ReadReply::GetData(resp),
                r.watch.then(|| WatchRegistration::Data(r.path.clone())),
            ),
            Err(e) => err(e),
        },
        Request::GetAcl(r) => match get_acl(tree, &r.path, auth) {
            Ok(resp) => ok(ReadReply::GetAcl(resp), None),
            Err(e) => err(e),
        },
        Request::GetChildren(r) => match get_children(tree, &r.path, auth) {
            Ok(children) => ok(
                ReadReply::GetChildren(GetChildrenResponse { children }),
                r.watch.then(|| WatchRegistration::Child(r.path.clone())),
            ),
            Err(e) => err(e),
        },
        Request::GetChildren2(r) => match get_children(tree, &r.path, auth) {
            Ok(children) => {
                let stat = tree.stat(&r.path).unwrap_or_default();
                ok(
                    ReadReply::GetChildren2(GetChildren2Response { children, stat }),
                    r.watch.then(|| WatchRegistration::Child(r.path.clone())),
                )
            }
            Err(e) => err(e),
        },
        Request::GetAllChildrenNumber(r) => {
            if let Err(e) = readable(tree, &r.path, auth) {
                return err(e);
            }
            match tree.all_children_number(&r.path) {
                Some(total_number) => ok(
                    ReadReply::GetAllChildrenNumber(GetAllChildrenNumberResponse { total_number }),
                    None,
                ),
                None => err(ErrorCode::NoNode),
            }
        }
        Request::GetEphemerals(r) => {
            let prefix = r.prefix_path.trim_matches(|c: char| c <= ' ');
            let all = tree.ephemerals(session_id);
            let ephemerals = if prefix.is_empty() || prefix == "/" {
                all
            } else {
                // ZooKeeper matches the untrimmed prefix.
                all.into_iter()
                    .filter(|p| p.starts_with(r.prefix_path.as_str()))
                    .collect()
            };
            ok(
                ReadReply::GetEphemerals(GetEphemeralsResponse { ephemerals }),
                None,
            )
        }
        Request::MultiRead(m) => {
            // MultiOperationRecord refuses writes mixed into a read multi.
            if m.ops.iter().any(|op| !op.is_read()) {
                return err(ErrorCode::MarshallingError);
            }
            let results = m
                .ops
                .iter()
                .map(|op| match op {
                    MultiOp::GetChildren(r) => match get_children(tree, &r.path, auth) {
                        Ok(children) => OpResult::GetChildren { children },
                        Err(e) => OpResult::Error(e),
                    },
                    MultiOp::GetData(r) => match get_data(tree, &r.path, auth) {
                        Ok(d) => OpResult::GetData {
                            data: d.data.to_bytes(),
                            stat: d.stat,
                        },
                        Err(e) => OpResult::Error(e),
                    },
                    _ => OpResult::Error(ErrorCode::MarshallingError),
                })
                .collect();
            ok(ReadReply::MultiRead(MultiResponse { results }), None)
        }
        _ => err(ErrorCode::Unimplemented),
    }
}

#[cfg(test)]
mod tests;
