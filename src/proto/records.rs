//! The records of `zookeeper.jute` that the client protocol carries, with ZooKeeper's
//! field names in snake_case. Plain data: no behaviour beyond encoding.

use bytes::{Bytes, BytesMut};

use super::jute::{DecodeError, Jute, Reader};
use crate::jute_record;

// ---- org.apache.zookeeper.data ----

jute_record! {
    /// An identity: `scheme` (world, auth, digest, ip, super, ...) and its `id`.
    #[derive(Hash, PartialOrd, Ord)]
    pub struct Id { pub scheme: String, pub id: String }
}

jute_record! {
    #[derive(Hash, PartialOrd, Ord)]
    pub struct Acl { pub perms: i32, pub id: Id }
}

jute_record! {
    #[derive(Copy)]
    pub struct Stat {
        pub czxid: i64,
        pub mzxid: i64,
        pub ctime: i64,
        pub mtime: i64,
        pub version: i32,
        pub cversion: i32,
        pub aversion: i32,
        pub ephemeral_owner: i64,
        pub data_length: i32,
        pub num_children: i32,
        pub pzxid: i64,
    }
}

jute_record! {
    pub struct ClientInfo { pub auth_scheme: String, pub user: String }
}

// ---- org.apache.zookeeper.proto ----

/// The first frame of a session. `read_only` is absent from old clients' frames, and
/// then the reply must not carry it either.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectRequest {
    pub protocol_version: i32,
    pub last_zxid_seen: i64,
    pub time_out: i32,
    pub session_id: i64,
    pub passwd: Bytes,
    pub read_only: Option<bool>,
}

impl Jute for ConnectRequest {
    fn encode(&self, w: &mut BytesMut) {
        self.protocol_version.encode(w);
        self.last_zxid_seen.encode(w);
        self.time_out.encode(w);
        self.session_id.encode(w);
        self.passwd.encode(w);
        if let Some(ro) = self.read_only {
            ro.encode(w);
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ConnectRequest {
            protocol_version: r.read_i32()?,
            last_zxid_seen: r.read_i64()?,
            time_out: r.read_i32()?,
            session_id: r.read_i64()?,
            passwd: Bytes::decode(r)?,
            read_only: if r.remaining() > 0 {
                Some(r.read_bool()?)
            } else {
                None
            },
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectResponse {
    pub protocol_version: i32,
    pub time_out: i32,
    pub session_id: i64,
    pub passwd: Bytes,
    /// Written only when the client's request carried the readOnly byte.
    pub read_only: Option<bool>,
}

impl Jute for ConnectResponse {
    fn encode(&self, w: &mut BytesMut) {
        self.protocol_version.encode(w);
        self.time_out.encode(w);
        self.session_id.encode(w);
        self.passwd.encode(w);
        if let Some(ro) = self.read_only {
            ro.encode(w);
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ConnectResponse {
            protocol_version: r.read_i32()?,
            time_out: r.read_i32()?,
            session_id: r.read_i64()?,
            passwd: Bytes::decode(r)?,
            read_only: if r.remaining() > 0 {
                Some(r.read_bool()?)
            } else {
                None
            },
        })
    }
}

jute_record! {
    pub struct SetWatches {
        pub relative_zxid: i64,
        pub data_watches: Vec<String>,
        pub exist_watches: Vec<String>,
        pub child_watches: Vec<String>,
    }
}

jute_record! {
    pub struct SetWatches2 {
        pub relative_zxid: i64,
        pub data_watches: Vec<String>,
        pub exist_watches: Vec<String>,
        pub child_watches: Vec<String>,
        pub persistent_watches: Vec<String>,
        pub persistent_recursive_watches: Vec<String>,
    }
}

jute_record! {
    #[derive(Copy)]
    pub struct RequestHeader { pub xid: i32, pub r#type: i32 }
}

jute_record! {
    #[derive(Copy)]
    pub struct MultiHeader { pub r#type: i32, pub done: bool, pub err: i32 }
}

jute_record! {
    pub struct AuthPacket { pub r#type: i32, pub scheme: String, pub auth: Bytes }
}

jute_record! {
    #[derive(Copy)]
    pub struct ReplyHeader { pub xid: i32, pub zxid: i64, pub err: i32 }
}

jute_record! { pub struct GetDataRequest { pub path: String, pub watch: bool } }
jute_record! { pub struct SetDataRequest { pub path: String, pub data: Bytes, pub version: i32 } }
jute_record! {
    pub struct ReconfigRequest {
        pub joining_servers: String,
        pub leaving_servers: String,
        pub new_members: String,
        pub cur_config_id: i64,
    }
}
jute_record! { pub struct SetDataResponse { pub stat: Stat } }
jute_record! { pub struct GetSaslRequest { pub token: Bytes } }
jute_record! { pub struct SetSaslResponse { pub token: Bytes } }
jute_record! {
    pub struct CreateRequest { pub path: String, pub data: Bytes, pub acl: Vec<Acl>, pub flags: i32 }
}
jute_record! {
    pub struct CreateTtlRequest {
        pub path: String,
        pub data: Bytes,
        pub acl: Vec<Acl>,
        pub flags: i32,
        pub ttl: i64,
    }
}
jute_record! { pub struct DeleteRequest { pub path: String, pub version: i32 } }
jute_record! { pub struct GetChildrenRequest { pub path: String, pub watch: bool } }
jute_record! { pub struct GetAllChildrenNumberRequest { pub path: String } }
jute_record! { pub struct GetChildren2Request { pub path: String, pub watch: bool } }
jute_record! { pub struct CheckVersionRequest { pub path: String, pub version: i32 } }
jute_record! { pub struct SyncRequest { pub path: String } }
jute_record! { pub struct SyncResponse { pub path: String } }
jute_record! { pub struct GetAclRequest { pub path: String } }
jute_record! { pub struct SetAclRequest { pub path: String, pub acl: Vec<Acl>, pub version: i32 } }
jute_record! { pub struct SetAclResponse { pub stat: Stat } }
jute_record! { pub struct AddWatchRequest { pub path: String, pub mode: i32 } }
jute_record! { pub struct WatcherEvent { pub r#type: i32, pub state: i32, pub path: String } }
jute_record! { pub struct ErrorResponse { pub err: i32 } }
jute_record! { pub struct CreateResponse { pub path: String } }
jute_record! { pub struct Create2Response { pub path: String, pub stat: Stat } }
jute_record! { pub struct ExistsRequest { pub path: String, pub watch: bool } }
jute_record! { pub struct ExistsResponse { pub stat: Stat } }
jute_record! { pub struct GetDataResponse { pub data: Bytes, pub stat: Stat } }
jute_record! { pub struct GetChildrenResponse { pub children: Vec<String> } }
jute_record! { pub struct GetAllChildrenNumberResponse { pub total_number: i32 } }
jute_record! { pub struct GetChildren2Response { pub children: Vec<String>, pub stat: Stat } }
jute_record! { pub struct GetAclResponse { pub acl: Vec<Acl>, pub stat: Stat } }
jute_record! { pub struct CheckWatchesRequest { pub path: String, pub r#type: i32 } }
jute_record! { pub struct RemoveWatchesRequest { pub path: String, pub r#type: i32 } }
jute_record! { pub struct GetEphemeralsRequest { pub prefix_path: String } }
jute_record! { pub struct GetEphemeralsResponse { pub ephemerals: Vec<String> } }
jute_record! { pub struct WhoAmIResponse { pub client_info: Vec<ClientInfo> } }

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: Jute + PartialEq + std::fmt::Debug>(v: T) {
        let bytes = v.to_bytes();
        let mut r = Reader::new(&bytes);
        assert_eq!(T::decode(&mut r).unwrap(), v);
        assert_eq!(r.remaining(), 0, "trailing bytes");
    }

    fn stat() -> Stat {
        Stat {
            czxid: 1,
            mzxid: 2,
            ctime: 3,
            mtime: 4,
            version: 5,
            cversion: 6,
            aversion: 7,
            ephemeral_owner: 8,
            data_length: 9,
            num_children: 10,
            pzxid: 11,
        }
    }

    fn acl() -> Vec<Acl> {
        vec![Acl {
            perms: 31,
            id: Id {
                scheme: "world".into(),
                id: "anyone".into(),
            },
        }]
    }

    #[test]
    fn stat_layout_is_zookeepers() {
        // 5 longs before version..aversion, then ephemeralOwner, dataLength, numChildren, pzxid.
        let b = stat().to_bytes();
        assert_eq!(b.len(), 8 * 4 + 4 * 3 + 8 + 4 * 2 + 8);
        assert_eq!(&b[0..8], &1i64.to_be_bytes());
        assert_eq!(&b[32..36], &5i32.to_be_bytes());
        assert_eq!(&b[44..52], &8i64.to_be_bytes());
        assert_eq!(&b[60..68], &11i64.to_be_bytes());
    }

    #[test]
    fn every_record_round_trips() {
        let s = || "/a/b".to_string();
        let d = || Bytes::from_static(b"data");
        round_trip(stat());
        round_trip(ClientInfo {
            auth_scheme: "ip".into(),
            user: "127.0.0.1".into(),
        });
        for ro in [None, Some(false), Some(true)] {
            round_trip(ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: 5,
                time_out: 30000,
                session_id: 77,
                passwd: Bytes::from_static(&[1; 16]),
                read_only: ro,
            });
            round_trip(ConnectResponse {
                protocol_version: 0,
                time_out: 30000,
                session_id: 77,
                passwd: Bytes::from_static(&[1; 16]),
                read_only: ro,
            });
        }
        round_trip(SetWatches {
            relative_zxid: 3,
            data_watches: vec![s()],
            exist_watches: vec![],
            child_watches: vec![s(), s()],
        });
        round_trip(SetWatches2 {
            relative_zxid: 3,
            data_watches: vec![s()],
            exist_watches: vec![s()],
            child_watches: vec![],
            persistent_watches: vec![s()],
            persistent_recursive_watches: vec![s()],
        });
        round_trip(RequestHeader { xid: 1, r#type: 4 });
        round_trip(MultiHeader {
            r#type: -1,
            done: true,
            err: -1,
        });
        round_trip(AuthPacket {
            r#type: 0,
            scheme: "digest".into(),
            auth: Bytes::from_static(b"u:p"),
        });
        round_trip(ReplyHeader {
            xid: 1,
            zxid: 2,
            err: -101,
        });
        round_trip(GetDataRequest {
            path: s(),
            watch: true,
        });
        round_trip(SetDataRequest {
            path: s(),
            data: d(),
            version: -1,
        });
        round_trip(ReconfigRequest {
            joining_servers: "a".into(),
            leaving_servers: "b".into(),
            new_members: "".into(),
            cur_config_id: -1,
        });
        round_trip(SetDataResponse { stat: stat() });
        round_trip(GetSaslRequest { token: d() });
        round_trip(SetSaslResponse { token: d() });
        round_trip(CreateRequest {
            path: s(),
            data: d(),
            acl: acl(),
            flags: 3,
        });
        round_trip(CreateTtlRequest {
            path: s(),
            data: d(),
            acl: acl(),
            flags: 5,
            ttl: 1000,
        });
        round_trip(DeleteRequest {
            path: s(),
            version: 2,
        });
        round_trip(GetChildrenRequest {
            path: s(),
            watch: false,
        });
        round_trip(GetAllChildrenNumberRequest { path: s() });
        round_trip(GetChildren2Request {
            path: s(),
            watch: true,
        });
        round_trip(CheckVersionRequest {
            path: s(),
            version: 1,
        });
        round_trip(SyncRequest { path: s() });
        round_trip(SyncResponse { path: s() });
        round_trip(GetAclRequest { path: s() });
        round_trip(SetAclRequest {
            path: s(),
            acl: acl(),
            version: 0,
        });
        round_trip(SetAclResponse { stat: stat() });
        round_trip(AddWatchRequest { path: s(), mode: 1 });
        round_trip(WatcherEvent {
            r#type: 3,
            state: 3,
            path: s(),
        });
        round_trip(ErrorResponse { err: -101 });
        round_trip(CreateResponse { path: s() });
        round_trip(Create2Response {
            path: s(),
            stat: stat(),
        });
        round_trip(ExistsRequest {
            path: s(),
            watch: true,
        });
        round_trip(ExistsResponse { stat: stat() });
        round_trip(GetDataResponse {
            data: d(),
            stat: stat(),
        });
        round_trip(GetChildrenResponse {
            children: vec!["x".into(), "y".into()],
        });
        round_trip(GetAllChildrenNumberResponse { total_number: 9 });
        round_trip(GetChildren2Response {
            children: vec!["x".into()],
            stat: stat(),
        });
        round_trip(GetAclResponse {
            acl: acl(),
            stat: stat(),
        });
        round_trip(CheckWatchesRequest {
            path: s(),
            r#type: 3,
        });
        round_trip(RemoveWatchesRequest {
            path: s(),
            r#type: 1,
        });
        round_trip(GetEphemeralsRequest { prefix_path: s() });
        round_trip(GetEphemeralsResponse {
            ephemerals: vec![s()],
        });
        round_trip(WhoAmIResponse {
            client_info: vec![ClientInfo {
                auth_scheme: "ip".into(),
                user: "1.2.3.4".into(),
            }],
        });
    }
}
