//! A deterministic, in-process model of the runtime for tests: a `CommitCore` and
//! several `Shard`s wired by plain function calls instead of executors and channels,
//! with clients that are just byte buffers. It drives the very code the runtime runs,
//! so pipeline ordering, cross-shard sessions and watch delivery are tested without
//! sockets or timing.

use bytes::{Buf, Bytes, BytesMut};

use super::commit::{batch_last_zxid, CommitCore};
use super::messages::{Committed, ConnId};
use super::one_tree::SharedTree;
use super::shard::{CloseReason, Shard, ShardConfig};
use crate::acl::AuthProviders;
use crate::limits::Limits;
use crate::proto::*;
use crate::request::PrepConfig;

pub struct Sim {
    pub core: CommitCore,
    pub shards: Vec<Shard>,
    pub now_ms: i64,
    /// While set, the modelled log refuses every batch with txns (ENOSPC), as the
    /// runtime's does when the disk is full.
    pub disk_full: bool,
    /// The last zxid the modelled log holds.
    pub logged_zxid: i64,
}

/// A reply frame as a client sees it.
#[derive(Debug)]
pub struct Frame {
    pub hdr: ReplyHeader,
    pub body: Bytes,
}

impl Sim {
    pub fn new(shards: usize) -> Sim {
        let cfg = ShardConfig {
            min_session_timeout: 200,
            max_session_timeout: 20_000,
            limits: Limits::default(),
            auth: AuthProviders::default(),
            config_node: None,
        };
        let tree = SharedTree::new(crate::tree::DataTree::new(), shards);
        let shards: Vec<Shard> = (0..shards)
            .map(|i| Shard::new(i, cfg.clone(), tree.view(i)))
            .collect();
        let core = CommitCore::new(
            PrepConfig {
                extended_types: true,
                enforce_quota: false,
                max_buffer: 0xfffff,
            },
            100,
            shards[0].tree.get(),
            1_700_000_000_000,
            0,
        );
        Sim {
            core,
            shards,
            now_ms: 1_000,
            disk_full: false,
            logged_zxid: 0,
        }
    }

    pub fn open(&mut self, shard: usize) -> ConnId {
        self.shards[shard].open_conn("127.0.0.1:40000".parse().unwrap(), self.now_ms)
    }

    /// Sends a ConnectRequest and runs the pipeline; returns the ConnectResponse.
    pub fn connect(
        &mut self,
        shard: usize,
        conn: ConnId,
        session_id: i64,
        passwd: &[u8],
    ) -> ConnectResponse {
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            time_out: 10_000,
            session_id,
            passwd: Bytes::copy_from_slice(passwd),
            read_only: Some(false),
        };
        self.shards[shard].on_frame(conn, &req.to_bytes()).unwrap();
        self.pump();
        let (out, _) = self.shards[shard].take_output(conn).unwrap();
        let mut out = out.freeze();
        let len = out.get_i32() as usize;
        ConnectResponse::from_bytes(&out[..len]).unwrap()
    }

    /// A new session on `shard`: (connection, session id, password).
    pub fn session(&mut self, shard: usize) -> (ConnId, i64, Bytes) {
        let conn = self.open(shard);
        let rsp = self.connect(shard, conn, 0, &[0; 16]);
        assert_ne!(rsp.session_id, 0);
        (conn, rsp.session_id, rsp.passwd)
    }

    pub fn send(
        &mut self,
        shard: usize,
        conn: ConnId,
        xid: i32,
        op: OpCode,
        body: &dyn JuteDyn,
    ) -> Result<(), CloseReason> {
        let mut f = BytesMut::new();
        RequestHeader {
            xid,
            r#type: op.as_i32(),
        }
        .encode(&mut f);
        body.encode_dyn(&mut f);
        self.shards[shard].on_frame(conn, &f)
    }

    /// Moves every outbox through the commit core and applies the batches everywhere,
    /// until nothing moves.
    pub fn pump(&mut self) {
        loop {
            let mut moved = false;
            for s in &mut self.shards {
                if let Some(msg) = s.take_outbox() {
                    self.core.on_input(msg, self.now_ms);
                    moved = true;
                }
            }
            let batch = self.core.build_batch(
                self.shards[0].tree.get(),
                1_700_000_000_000 + self.now_ms,
                self.now_ms,
            );
            if batch.is_empty() && !moved {
                return;
            }
            let batch = match batch_last_zxid(&batch) {
                Some(_) if self.disk_full => self.core.reject(batch, self.logged_zxid, self.now_ms),
                Some(z) => {
                    self.logged_zxid = z;
                    batch
                }
                None => batch,
            };
            let last = batch_last_zxid(&batch);
            self.apply(batch);
            if let Some(z) = last {
                self.core.applied(z);
            }
        }
    }

    /// Shard 0 applies a committed batch; every other shard delivers it, as when the
    /// owner's wake-up reaches it.
    pub fn apply(&mut self, batch: Vec<Committed>) {
        self.shards[0].apply_batch(std::sync::Arc::new(batch));
        for s in &mut self.shards[1..] {
            s.deliver_queued();
        }
    }

    /// Advances the clocks and runs expiry.
    pub fn advance(&mut self, ms: i64) {
        self.now_ms += ms;
        self.pump();
    }

    /// The frames queued for a client, in order.
    pub fn frames(&mut self, shard: usize, conn: ConnId) -> Vec<Frame> {
        let Some((out, _)) = self.shards[shard].take_output(conn) else {
            return Vec::new();
        };
        let mut out = out.freeze();
        let mut frames = Vec::new();
        while out.remaining() >= 4 {
            let len = out.get_i32() as usize;
            let mut f = out.split_to(len);
            let hdr = ReplyHeader::decode(&mut Reader::new(&f)).unwrap();
            f.advance(16);
            frames.push(Frame { hdr, body: f });
        }
        frames
    }

    pub fn is_closing(&self, shard: usize, conn: ConnId) -> bool {
        self.shards[shard]
            .conns
            .get(&conn)
            .map(|c| c.close_after_flush)
            .unwrap_or(true)
    }
}

pub fn create_req(path: &str, data: &[u8], flags: i32) -> CreateRequest {
    CreateRequest {
        path: path.into(),
        data: Bytes::copy_from_slice(data),
        acl: vec![Acl {
            perms: perms::ALL,
            id: Id {
                scheme: "world".into(),
                id: "anyone".into(),
            },
        }],
        flags,
    }
}
