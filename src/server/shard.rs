//! One shard's state: its view of the server's one tree (`one_tree.rs`), its watches,
//! and the protocol state of the connections it owns. Pure logic: the I/O layer
//! (`conn.rs`, `mod.rs`) feeds it frames and committed batches and carries away the
//! bytes it produces, so every rule here is unit-testable without sockets or executors.
//!
//! Ordering rules (ZooKeeper's promises):
//! - Per-session FIFO: each connection's requests are answered in the order sent. A read
//!   queued behind a write runs only after the write's txn is applied, so it sees that
//!   write. The tree is applied a batch at a time, so a read pipelined between two writes
//!   ([W1, R, W2]) must not find W2 in W1's batch: a write that follows a read still
//!   waiting for an earlier write is held here until that read has run.
//! - Watch events before data: a shard delivers every queued outcome (watch events,
//!   replies) before it runs any read (`sync`), and runs the reads a reply released only
//!   after the events of every batch the tree holds, so a client never sees a change
//!   before the event announcing it.

use ahash::{AHashMap as HashMap, AHashSet as HashSet};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};

use super::messages::*;
use super::one_tree::TreeView;
use crate::acl::{self, AuthProviders};
use crate::admin::LatencyStats;
use crate::limits::Limits;
use crate::proto::*;
use crate::request::{self, ReadReply, Txn, TxnResult, WatchRegistration};
use crate::session;
use crate::tree::DataTree;
use crate::watch::WatchManager;

/// The settings a shard needs, from zoo.cfg.
#[derive(Debug, Clone)]
pub struct ShardConfig {
    pub min_session_timeout: i32,
    pub max_session_timeout: i32,
    pub limits: Limits,
    pub auth: AuthProviders,
    /// An ensemble member's `/zookeeper/config` (its config string), set on every tree
    /// it builds or installs.
    pub config_node: Option<(bytes::Bytes, i64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the ConnectRequest.
    AwaitConnect,
    /// A new session was asked of the commit shard.
    Connecting,
    Connected,
    /// Answered with a close; nothing more is read.
    Closing,
}

#[derive(Debug)]
enum Pending {
    /// Sent to the commit shard (`held: None`); answered when its txn comes back
    /// applied. `held`: not sent yet, because a read ahead of it waits for an earlier
    /// write (see the module comment).
    Write {
        xid: i32,
        op: OpCode,
        at: i64,
        held: Option<Box<WriteKind>>,
    },
    /// Waiting for the writes ahead of it.
    Read { xid: i32, req: Request, at: i64 },
    /// A request that failed to decode, answered with `code` in its turn.
    Fail { xid: i32, code: ErrorCode, at: i64 },
}

fn pending(xid: i32, item: Result<Request, ErrorCode>, at: i64) -> Pending {
    match item {
        Ok(req) => Pending::Read { xid, req, at },
        Err(code) => Pending::Fail { xid, code, at },
    }
}

/// Why a connection must be closed at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloseReason {
    #[error("malformed packet: {0}")]
    Malformed(String),
    #[error("client has seen zxid {seen:#x}, our last zxid is {ours:#x}")]
    ZxidAhead { seen: i64, ours: i64 },
    #[error("output queue above {0} bytes: client is not reading")]
    SlowReader(usize),
}

/// Counters for the four-letter words.
#[derive(Debug, Default, Clone)]
pub struct ConnStats {
    pub packets_received: u64,
    pub packets_sent: u64,
    pub last_zxid: i64,
    pub last_xid: i32,
    /// `lop=`: ZooKeeper's short name of the last request answered.
    pub last_op: &'static str,
    pub last_latency: i64,
    /// When the last reply to a request was made (shard clock, ms).
    pub last_response: i64,
    pub latency: LatencyStats,
}

pub struct Conn {
    pub remote: SocketAddr,
    phase: Phase,
    pub session_id: i64,
    pub timeout: i32,
    /// The session a ConnectRequest asked to resume, while its revalidation is pending
    /// (0 otherwise).
    reattaching: i64,
    /// Shared with every write forwarded for this session (changes only on addAuth).
    pub auth: Arc<[Id]>,
    /// Whether the ConnectRequest carried the readOnly byte (then the reply does too).
    read_only_flag: Option<bool>,
    queue: VecDeque<Pending>,
    /// Bytes waiting to be written to the socket.
    pub out: BytesMut,
    /// Bytes the writer took from `out` and has not finished writing (a client that
    /// does not read holds them there): counted with `out` against
    /// `max_pending_output`.
    unwritten: usize,
    /// Close the socket once `out` is flushed.
    pub close_after_flush: bool,
    pub stats: ConnStats,
    /// Wall-clock ms when the connection was accepted.
    pub established_ms: i64,
    /// The connection's DIGEST-MD5 server once it sent a SASL token (and the server has
    /// a JAAS login section), as ZooKeeper's `ServerCnxn.zooKeeperSaslServer`.
    sasl: Option<Box<crate::sasl::DigestMd5Server>>,
}

impl Conn {
    pub fn is_connected(&self) -> bool {
        self.phase == Phase::Connected
    }

    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Output bytes not yet written to the socket: queued, or taken by the writer.
    pub fn queued_output(&self) -> usize {
        self.out.len() + self.unwritten
    }

    /// Whether the connection is being closed (it reads nothing more).
    pub fn is_closing(&self) -> bool {
        self.phase == Phase::Closing
    }
}

#[derive(Debug, Default, Clone)]
pub struct ShardStats {
    pub packets_received: u64,
    pub packets_sent: u64,
    pub latency: LatencyStats,
}

/// Work a delivered reply released, run once every queued outcome is delivered.
#[derive(Debug, Clone, Copy)]
enum Released {
    /// The reads (and held writes) at the head of a connection's queue.
    Reads(ConnId),
    /// What a connection pipelined behind its ConnectRequest.
    Pipelined(ConnId),
}

pub struct Shard {
    pub id: usize,
    /// The server's tree: shard 0 owns (applies to) it, the others read it.
    pub tree: TreeView,
    /// Outcomes delivered here (see `TreeView::queued`).
    delivered: u64,
    /// The tree's zxid at the last outcome delivered here.
    pub delivered_zxid: i64,
    /// Txns delivered here since the start (what the snapshot schedule counts).
    pub txns_delivered: u64,
    /// Set while outcomes are delivered: released reads wait in `released`.
    delivering: bool,
    released: Vec<Released>,
    pub watches: WatchManager,
    pub conns: HashMap<ConnId, Conn>,
    /// Which local connection holds each session.
    session_conn: HashMap<i64, ConnId>,
    next_conn: ConnId,
    outbox: ToCommit,
    touched: HashSet<i64>,
    /// Connections with new output (or to be closed) since the I/O layer last looked.
    pub dirty: Vec<ConnId>,
    /// Requests read and not yet answered, for `globalOutstandingLimit`.
    pub outstanding: usize,
    /// The runtime's monotonic clock in ms, set before each event it hands the shard:
    /// time is an input here, never read.
    pub now_ms: i64,
    pub cfg: ShardConfig,
    pub stats: ShardStats,
    scratch_watchers: Vec<u64>,
    /// A WatchedEvent frame being copied to every watcher of one change.
    scratch_event: BytesMut,
}

impl Shard {
    pub fn new(id: usize, cfg: ShardConfig, tree: TreeView) -> Shard {
        assert_eq!(tree.shard(), id, "a shard's view of the tree is its own");
        // What the owner applied before this shard existed had no clients here.
        let (delivered, delivered_zxid) = {
            let _r = tree.read();
            tree.take_outcomes();
            (tree.queued(), tree.get().last_processed_zxid())
        };
        Shard {
            id,
            tree,
            delivered,
            delivered_zxid,
            txns_delivered: 0,
            delivering: false,
            released: Vec::new(),
            watches: WatchManager::new(),
            conns: HashMap::new(),
            session_conn: HashMap::new(),
            next_conn: 1,
            outbox: ToCommit::default(),
            touched: HashSet::new(),
            dirty: Vec::new(),
            outstanding: 0,
            now_ms: 0,
            cfg,
            stats: ShardStats::default(),
            scratch_watchers: Vec::new(),
            scratch_event: BytesMut::new(),
        }
    }

    pub fn open_conn(&mut self, remote: SocketAddr, now_wall_ms: i64) -> ConnId {
        let id = self.next_conn;
        self.next_conn += 1;
        self.conns.insert(
            id,
            Conn {
                remote,
                phase: Phase::AwaitConnect,
                session_id: 0,
                timeout: 0,
                reattaching: 0,
                auth: acl::connection_ids(&acl::ip::host_address(remote.ip())).into(),
                read_only_flag: None,
                queue: VecDeque::new(),
                out: BytesMut::new(),
                unwritten: 0,
                close_after_flush: false,
                stats: ConnStats::default(),
                established_ms: now_wall_ms,
                sasl: None,
            },
        );
        id
    }

    /// A TLS client's certificate subject: the connection's `x509` id (and `super` for
    /// the configured x509 superuser), as ZooKeeper's
    /// `X509AuthenticationProvider.handleAuthentication` adds them after the handshake.
    pub fn grant_x509(&mut self, id: ConnId, subject: &str) {
        let Some(ids) = self.cfg.auth.x509_ids(subject) else {
            return;
        };
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let mut auth = conn.auth.to_vec();
        for i in ids {
            if !auth.contains(&i) {
                auth.push(i);
            }
        }
        conn.auth = auth.into();
    }

    /// The socket is gone: forget the connection. The session lives on until it expires
    /// or a client resumes it.
    ///
    /// Returns the bytes of output it still had queued (0 if it was not open).
    pub fn close_conn(&mut self, id: ConnId) -> usize {
        let Some(c) = self.conns.remove(&id) else {
            return 0;
        };
        self.outstanding -= c.queue.len();
        if c.session_id != 0 && self.session_conn.get(&c.session_id) == Some(&id) {
            self.session_conn.remove(&c.session_id);
        }
        self.watches.remove_watcher(id);
        c.queued_output()
    }

    /// Takes the bytes to write to `id`'s socket; they count as unwritten until
    /// [`Shard::wrote`] (or the next take: a writer takes again only once it has
    /// written what it took).
    pub fn take_output(&mut self, id: ConnId) -> Option<(BytesMut, bool)> {
        let c = self.conns.get_mut(&id)?;
        c.unwritten = c.out.len();
        Some((std::mem::take(&mut c.out), c.close_after_flush))
    }

    /// The writer finished writing what it last took for `id`.
    pub fn wrote(&mut self, id: ConnId) {
        if let Some(c) = self.conns.get_mut(&id) {
            c.unwritten = 0;
        }
    }

    /// Takes what must go to the commit shard, if anything.
    pub fn take_outbox(&mut self) -> Option<ToCommit> {
        self.outbox.touches.extend(self.touched.drain());
        if self.outbox.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut self.outbox))
        }
    }

    pub fn has_outbox(&self) -> bool {
        !self.outbox.items.is_empty()
    }

    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    fn mark_dirty(&mut self, id: ConnId) {
        self.dirty.push(id);
    }

    /// One frame from connection `id`. An error means: close the connection now.
    pub fn on_frame(&mut self, id: ConnId, frame: &[u8]) -> Result<(), CloseReason> {
        let Some(conn) = self.conns.get_mut(&id) else {
            return Ok(());
        };
        conn.stats.packets_received += 1;
        self.stats.packets_received += 1;
        let _read = self.tree.read();
        self.sync();
        let Some(conn) = self.conns.get(&id) else {
            return Ok(());
        };
        match conn.phase {
            Phase::AwaitConnect => self.on_connect(id, frame),
            Phase::Connecting | Phase::Connected => self.on_request(id, frame),
            Phase::Closing => Ok(()),
        }
    }

    fn on_connect(&mut self, id: ConnId, frame: &[u8]) -> Result<(), CloseReason> {
        let req = ConnectRequest::from_bytes(frame)
            .map_err(|e| CloseReason::Malformed(format!("ConnectRequest: {e}")))?;
        let last = self.tree.get().last_processed_zxid();
        if req.last_zxid_seen > last {
            return Err(CloseReason::ZxidAhead {
                seen: req.last_zxid_seen,
                ours: last,
            });
        }
        let timeout = session::timeout_negotiation(
            req.time_out,
            self.cfg.min_session_timeout,
            self.cfg.max_session_timeout,
        );
        let conn = self.conns.get_mut(&id).unwrap();
        conn.read_only_flag = req.read_only.map(|_| false);
        conn.timeout = timeout;
        if req.session_id == 0 {
            conn.phase = Phase::Connecting;
            let auth = conn.auth.clone();
            self.outbox.items.push(WriteItem {
                origin: Origin {
                    shard: self.id,
                    conn: id,
                    xid: 0,
                },
                session_id: 0,
                auth,
                kind: WriteKind::CreateSession { timeout },
            });
            self.outstanding += 1;
            conn.queue.push_back(Pending::Write {
                xid: 0,
                op: OpCode::CreateSession,
                at: self.now_ms,
                held: None,
            });
            return Ok(());
        }
        let known = self.tree.get().session_timeout(req.session_id).is_some();
        let passwd_ok = known && req.passwd[..] == session::password(req.session_id)[..];
        if known {
            // ZooKeeper closes the session's current connection before it checks the
            // password (processConnectRequest), so even a failed attempt moves it.
            if let Some(old) = self.session_conn.remove(&req.session_id) {
                self.close_now(old);
            }
            let auth = self.conns[&id].auth.clone();
            self.outbox.items.push(WriteItem {
                origin: Origin {
                    shard: self.id,
                    conn: id,
                    xid: 0,
                },
                session_id: req.session_id,
                auth,
                kind: WriteKind::Reattach { passwd_ok },
            });
        }
        if !passwd_ok {
            self.refuse_session(id);
            return Ok(());
        }
        // Answered when the commit shard (or, on a learner, the leader) says whether the
        // session is still alive: our copy of the sessions can hold one that has just
        // expired. What the client pipelines meanwhile waits, as behind a new session.
        let conn = self.conns.get_mut(&id).unwrap();
        conn.phase = Phase::Connecting;
        conn.reattaching = req.session_id;
        self.outstanding += 1;
        conn.queue.push_back(Pending::Write {
            xid: 0,
            op: OpCode::CreateSession,
            at: self.now_ms,
            held: None,
        });
        Ok(())
    }

    /// ZooKeeper's answer to an expired, unknown or wrongly authenticated session: all
    /// zeros, then close.
    fn refuse_session(&mut self, id: ConnId) {
        self.send_connect_response(id, 0, 0, Bytes::from_static(&[0; 16]));
        if let Some(conn) = self.conns.get_mut(&id) {
            conn.phase = Phase::Closing;
            conn.close_after_flush = true;
        }
    }

    /// The commit shard's (or the leader's) answer to a resumed session on `id`.
    fn on_reattach_answer(&mut self, id: ConnId, session_id: i64, valid: bool) {
        let Some(conn) = self.conns.get(&id) else {
            return;
        };
        if conn.phase != Phase::Connecting || conn.reattaching != session_id {
            // Refused at once (wrong password), or closed meanwhile.
            return;
        }
        if !self.pop_write(id, 0) {
            return;
        }
        let timeout = self.conns[&id].timeout;
        if valid && self.tree.get().session_timeout(session_id).is_some() {
            self.finish_session_init(id, session_id, timeout);
        } else {
            // What was pipelined behind the ConnectRequest is never answered.
            let conn = self.conns.get_mut(&id).unwrap();
            self.outstanding -= conn.queue.len();
            conn.queue.clear();
            self.refuse_session(id);
        }
    }

    /// A session is established on connection `id` (created, or resumed and
    /// revalidated): the ConnectResponse goes out and the requests pipelined behind the
    /// ConnectRequest enter the pipeline.
    fn finish_session_init(&mut self, id: ConnId, session_id: i64, timeout: i32) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        conn.phase = Phase::Connected;
        conn.session_id = session_id;
        conn.timeout = timeout;
        conn.reattaching = 0;
        self.session_conn.insert(session_id, id);
        self.touched.insert(session_id);
        let passwd = Bytes::copy_from_slice(&session::password(session_id));
        self.send_connect_response(id, timeout, session_id, passwd);
        if self.delivering {
            self.released.push(Released::Pipelined(id));
        } else {
            self.dispatch_pipelined(id);
        }
    }

    /// Routes what a connection pipelined behind its ConnectRequest, in order.
    fn dispatch_pipelined(&mut self, id: ConnId) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if conn.phase != Phase::Connected {
            return;
        }
        let queued: Vec<Pending> = conn.queue.drain(..).collect();
        for p in queued {
            match p {
                Pending::Read { xid, req, .. } => {
                    self.outstanding -= 1;
                    self.dispatch(id, xid, Ok(req));
                }
                Pending::Fail { xid, code, .. } => {
                    self.outstanding -= 1;
                    self.dispatch(id, xid, Err(code));
                }
                Pending::Write { .. } => {}
            }
        }
    }

    fn send_connect_response(&mut self, id: ConnId, timeout: i32, session_id: i64, passwd: Bytes) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let rsp = ConnectResponse {
            protocol_version: 0,
            time_out: timeout,
            session_id,
            passwd,
            read_only: conn.read_only_flag,
        };
        let start = conn.out.len();
        conn.out.put_i32(0);
        rsp.encode(&mut conn.out);
        let len = (conn.out.len() - start - 4) as i32;
        conn.out[start..start + 4].copy_from_slice(&len.to_be_bytes());
        conn.stats.packets_sent += 1;
        self.stats.packets_sent += 1;
        self.mark_dirty(id);
    }

    /// Closes a connection from our side (another connection took its session, or the
    /// session expired).
    fn close_now(&mut self, id: ConnId) {
        if let Some(c) = self.conns.get_mut(&id) {
            c.phase = Phase::Closing;
            c.close_after_flush = true;
            self.dirty.push(id);
        }
    }

    fn on_request(&mut self, id: ConnId, frame: &[u8]) -> Result<(), CloseReason> {
        let mut r = Reader::new(frame);
        let hdr = RequestHeader::decode(&mut r)
            .map_err(|e| CloseReason::Malformed(format!("RequestHeader: {e}")))?;
        let body = &frame[r.position()..];
        let item = match decode_request(hdr.r#type, body) {
            // A bare check is valid only inside a multi (`Request.isValid`).
            Ok(Request::Check(_)) | Err(DecodeError::UnknownOpCode(_)) => {
                // ZooKeeper's UnimplementedRequestProcessor: answer, then close.
                self.reply_header(id, hdr.xid, -1, ErrorCode::Unimplemented);
                self.close_now(id);
                return Ok(());
            }
            // A body that does not decode fails that request only, in its turn, as
            // ZooKeeper's lazy record reading does.
            Err(_) => Err(ErrorCode::MarshallingError),
            Ok(req) => Ok(req),
        };
        let conn = self.conns.get_mut(&id).unwrap();
        conn.stats.last_xid = hdr.xid;
        if conn.session_id != 0 {
            self.touched.insert(conn.session_id);
        }
        if conn.phase != Phase::Connected {
            // Everything pipelined behind the ConnectRequest, auth included, waits for
            // the session and is then served in order.
            self.outstanding += 1;
            conn.queue.push_back(pending(hdr.xid, item, self.now_ms));
            return Ok(());
        }
        self.dispatch(id, hdr.xid, item);
        Ok(())
    }

    /// Routes one request of a connected session.
    fn dispatch(&mut self, id: ConnId, xid: i32, item: Result<Request, ErrorCode>) {
        // A connection being closed reads nothing more (ZooKeeper's disableRecv), even
        // what was pipelined behind the request that closed it.
        if self
            .conns
            .get(&id)
            .is_none_or(|c| c.phase == Phase::Closing)
        {
            return;
        }
        match item {
            // Auth and SASL are answered at once, outside the request pipeline, as in
            // ZooKeeper's processPacket.
            Ok(Request::Auth(p)) => self.on_auth(id, xid, &p),
            Ok(Request::Sasl(r)) => self.on_sasl(id, xid, &r.token),
            // `AuthenticationHelper.enforceAuthentication`: with enforce.auth.enabled (or
            // sessionRequireClientSASLAuth) any other request, pings and closeSession
            // included, of a connection with no id of the required schemes is answered
            // SessionClosedRequireSaslAuth and the connection closed (the session is
            // left to expire).
            _ if !self.authenticated_enough(id) => {
                self.reply_header(id, xid, 0, ErrorCode::SessionClosedRequireSaslAuth);
                self.close_now(id);
            }
            Ok(req) => self.submit(id, xid, req),
            Err(code) => {
                let Some(conn) = self.conns.get_mut(&id) else {
                    return;
                };
                if conn.queue.is_empty() {
                    let zxid = self.tree.get().last_processed_zxid();
                    self.reply_header(id, xid, zxid, code);
                } else {
                    self.outstanding += 1;
                    conn.queue.push_back(Pending::Fail {
                        xid,
                        code,
                        at: self.now_ms,
                    });
                }
            }
        }
    }

    /// Puts a request of a connected session into its pipeline.
    fn submit(&mut self, id: ConnId, xid: i32, req: Request) {
        let op = req.opcode();
        let conn = self.conns.get_mut(&id).unwrap();
        self.outstanding += 1;
        let kind = match req {
            Request::Sync(s) => Some(WriteKind::Sync(s.path)),
            req if op.is_write() => Some(WriteKind::Request(req)),
            req => {
                if !conn.queue.is_empty() {
                    conn.queue.push_back(Pending::Read {
                        xid,
                        req,
                        at: self.now_ms,
                    });
                } else {
                    self.outstanding -= 1;
                    self.exec_read(id, xid, req, self.now_ms);
                }
                return;
            }
        };
        let conn = self.conns.get_mut(&id).unwrap();
        if let Some(kind) = kind {
            // Behind a read that waits for an earlier write: held until that read ran
            // (see the module comment).
            let hold = conn
                .queue
                .iter()
                .any(|p| matches!(p, Pending::Read { .. } | Pending::Fail { .. }));
            if hold {
                conn.queue.push_back(Pending::Write {
                    xid,
                    op,
                    at: self.now_ms,
                    held: Some(Box::new(kind)),
                });
                return;
            }
            conn.queue.push_back(Pending::Write {
                xid,
                op,
                at: self.now_ms,
                held: None,
            });
            self.outbox.items.push(WriteItem {
                origin: Origin {
                    shard: self.id,
                    conn: id,
                    xid,
                },
                session_id: conn.session_id,
                auth: conn.auth.clone(),
                kind,
            });
        }
    }

    fn on_auth(&mut self, id: ConnId, xid: i32, p: &AuthPacket) {
        // `addauth x509`: X509AuthenticationProvider re-reads the connection's
        // certificate, which gave its x509 id at the handshake: Ok with a certificate
        // (and the provider), AuthFailed without.
        let result = if p.scheme == "x509" {
            let has_cert = self
                .conns
                .get(&id)
                .is_some_and(|c| c.auth.iter().any(|i| i.scheme == "x509"));
            if has_cert && self.cfg.auth.config.x509_provider {
                Ok(Vec::new())
            } else {
                Err(ErrorCode::AuthFailed)
            }
        } else {
            self.cfg.auth.authenticate(&p.scheme, &p.auth)
        };
        match result {
            Ok(ids) => {
                let conn = self.conns.get_mut(&id).unwrap();
                let mut auth = conn.auth.to_vec();
                for i in ids {
                    if !auth.contains(&i) {
                        auth.push(i);
                    }
                }
                conn.auth = auth.into();
                self.reply_header(id, xid, 0, ErrorCode::Ok);
            }
            Err(code) => {
                self.reply_header(id, xid, 0, code);
                self.close_now(id);
            }
        }
    }

    /// Whether the connection may send requests under `enforce.auth.*`: it holds an
    /// id of one of the enforced schemes (`AuthenticationHelper.isCnxnAuthenticated`).
    fn authenticated_enough(&self, id: ConnId) -> bool {
        let auth = &self.cfg.auth.config;
        !auth.enforce_auth
            || self.conns.get(&id).is_some_and(|c| {
                c.auth
                    .iter()
                    .any(|i| auth.enforce_auth_schemes.contains(&i.scheme))
            })
    }

    /// A SASL token (`ZooKeeperServer.processSasl`). Without a JAAS login section the
    /// answer is OK with a null token, as ZooKeeper's (which has no SASL server then).
    /// Otherwise the connection's DIGEST-MD5 server evaluates it: a challenge goes back
    /// as the token; a completed login adds `sasl:<id>` (and `super` for a
    /// `zookeeper.superUser`) and sends `rspauth`. A failure is answered AuthFailed
    /// (SessionClosedRequireSaslAuth when SASL is required) with a null token and the
    /// connection is closed, unless `allowSaslFailedClients` (and SASL is not
    /// required): then the answer is OK with a null token and the session goes on
    /// unauthenticated.
    fn on_sasl(&mut self, id: ConnId, xid: i32, token: &[u8]) {
        let null_token: i32 = -1;
        let ok = ReplyHeader {
            xid,
            zxid: 0,
            err: 0,
        };
        let Some(settings) = self.cfg.auth.config.sasl.clone() else {
            self.reply(id, ok, Some(&null_token));
            return;
        };
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let server = conn.sasl.get_or_insert_with(Default::default);
        match server.evaluate_response(token, &settings) {
            Ok(crate::sasl::Step::Challenge(t)) => {
                let rsp = SetSaslResponse { token: t.into() };
                self.reply(id, ok, Some(&rsp));
            }
            Ok(crate::sasl::Step::Complete {
                token,
                authorization_id,
            }) => {
                tracing::info!(
                    session = format_args!("{:#x}", conn.session_id),
                    authorization_id,
                    "adding SASL authorization"
                );
                let mut auth = conn.auth.to_vec();
                for i in self.cfg.auth.sasl_ids(&authorization_id) {
                    if !auth.contains(&i) {
                        auth.push(i);
                    }
                }
                conn.auth = auth.into();
                let rsp = SetSaslResponse {
                    token: token.into(),
                };
                self.reply(id, ok, Some(&rsp));
            }
            Err(e) => {
                let auth = &self.cfg.auth.config;
                tracing::warn!(
                    remote = %conn.remote,
                    error = %e,
                    "client failed to SASL authenticate"
                );
                if e.kind == crate::sasl::FailureKind::Abnormal {
                    // What ZooKeeper does not catch ends the connection unanswered.
                    self.close_now(id);
                    return;
                }
                if auth.allow_sasl_failed_clients && !auth.sasl_auth_required() {
                    self.reply(id, ok, Some(&null_token));
                    return;
                }
                let err = if auth.sasl_auth_required() {
                    ErrorCode::SessionClosedRequireSaslAuth
                } else {
                    ErrorCode::AuthFailed
                };
                let hdr = ReplyHeader {
                    xid,
                    zxid: 0,
                    err: err.as_i32(),
                };
                self.reply(id, hdr, Some(&null_token));
                self.close_now(id);
            }
        }
    }

    fn reply_header(&mut self, id: ConnId, xid: i32, zxid: i64, err: ErrorCode) {
        self.reply(
            id,
            ReplyHeader {
                xid,
                zxid,
                err: err.as_i32(),
            },
            None,
        );
    }

    fn reply(&mut self, id: ConnId, hdr: ReplyHeader, body: Option<&dyn JuteDyn>) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        encode_reply(&mut conn.out, hdr, body);
        conn.stats.packets_sent += 1;
        conn.stats.last_zxid = hdr.zxid;
        self.stats.packets_sent += 1;
        self.dirty.push(id);
    }

    /// Runs a request that is served on this shard: reads, pings and watch management.
    fn exec_read(&mut self, id: ConnId, xid: i32, req: Request, at: i64) {
        self.record_latency(id, req.opcode(), at);
        let zxid = self.tree.get().last_processed_zxid();
        let Some(conn) = self.conns.get(&id) else {
            return;
        };
        let session_id = conn.session_id;
        match req {
            Request::Ping => {
                self.reply_header(id, xid::PING, zxid, ErrorCode::Ok);
            }
            Request::SetWatches(sw) => {
                self.set_watches(
                    id,
                    sw.relative_zxid,
                    &sw.data_watches,
                    &sw.exist_watches,
                    &sw.child_watches,
                    &[],
                    &[],
                );
                self.reply_header(id, xid, zxid, ErrorCode::Ok);
            }
            Request::SetWatches2(sw) => {
                self.set_watches(
                    id,
                    sw.relative_zxid,
                    &sw.data_watches,
                    &sw.exist_watches,
                    &sw.child_watches,
                    &sw.persistent_watches,
                    &sw.persistent_recursive_watches,
                );
                self.reply_header(id, xid, zxid, ErrorCode::Ok);
            }
            Request::AddWatch(aw) => {
                let recursive = match aw.mode {
                    add_watch_mode::PERSISTENT => false,
                    add_watch_mode::PERSISTENT_RECURSIVE => true,
                    _ => {
                        self.reply_header(id, xid, zxid, ErrorCode::BadArguments);
                        return;
                    }
                };
                self.watches.add_persistent_watch(&aw.path, id, recursive);
                self.reply(
                    id,
                    ReplyHeader { xid, zxid, err: 0 },
                    Some(&ErrorResponse { err: 0 }),
                );
            }
            Request::CheckWatches(cw) => {
                let ok = self.watches.check_or_remove(&cw.path, cw.r#type, id, false);
                let err = if ok {
                    ErrorCode::Ok
                } else {
                    ErrorCode::NoWatcher
                };
                self.reply_header(id, xid, zxid, err);
            }
            Request::RemoveWatches(rw) => {
                let ok = self.watches.check_or_remove(&rw.path, rw.r#type, id, true);
                let err = if ok {
                    ErrorCode::Ok
                } else {
                    ErrorCode::NoWatcher
                };
                self.reply_header(id, xid, zxid, err);
            }
            Request::WhoAmI => {
                let rsp = WhoAmIResponse {
                    client_info: acl::client_infos(&conn.auth),
                };
                self.reply(id, ReplyHeader { xid, zxid, err: 0 }, Some(&rsp));
            }
            req => {
                let outcome = request::process_read(self.tree.get(), session_id, &conn.auth, &req);
                match outcome.watch {
                    Some(WatchRegistration::Data(p)) => self.watches.add_data_watch(&p, id),
                    Some(WatchRegistration::Child(p)) => self.watches.add_child_watch(&p, id),
                    None => {}
                }
                match outcome.reply {
                    Ok(rsp) => self.reply(id, ReplyHeader { xid, zxid, err: 0 }, Some(&rsp)),
                    Err(code) => self.reply_header(id, xid, zxid, code),
                }
            }
        }
    }

    /// ZooKeeper's `DataTree.setWatches`: re-registers a reconnecting client's watches,
    /// firing at once those whose node changed after `relative_zxid`.
    #[allow(clippy::too_many_arguments)]
    fn set_watches(
        &mut self,
        id: ConnId,
        relative_zxid: i64,
        data: &[String],
        exist: &[String],
        child: &[String],
        persistent: &[String],
        recursive: &[String],
    ) {
        for p in data {
            match self.tree.get().stat(p) {
                None => self.notify(id, EventType::NodeDeleted, p, -1),
                Some(s) if s.mzxid > relative_zxid => {
                    self.notify(id, EventType::NodeDataChanged, p, -1)
                }
                Some(_) => self.watches.add_data_watch(p, id),
            }
        }
        for p in exist {
            match self.tree.get().stat(p) {
                Some(_) => self.notify(id, EventType::NodeCreated, p, -1),
                None => self.watches.add_data_watch(p, id),
            }
        }
        for p in child {
            match self.tree.get().stat(p) {
                None => self.notify(id, EventType::NodeDeleted, p, -1),
                Some(s) if s.pzxid > relative_zxid => {
                    self.notify(id, EventType::NodeChildrenChanged, p, -1)
                }
                Some(_) => self.watches.add_child_watch(p, id),
            }
        }
        for p in persistent {
            self.watches.add_persistent_watch(p, id, false);
        }
        for p in recursive {
            self.watches.add_persistent_watch(p, id, true);
        }
    }

    fn notify(&mut self, id: ConnId, event: EventType, path: &str, zxid: i64) {
        let ev = WatcherEvent {
            r#type: event as i32,
            state: KeeperState::SyncConnected as i32,
            path: path.to_string(),
        };
        self.reply(
            id,
            ReplyHeader {
                xid: xid::NOTIFICATION,
                zxid,
                err: 0,
            },
            Some(&ev),
        );
    }

    /// Queues one change's WatchedEvent on each of `watchers` allowed to READ the node
    /// (as ZooKeeper 3.9 checks before delivering). The frame is encoded once and copied:
    /// one change may be watched by tens of thousands of sessions.
    fn notify_watchers(&mut self, watchers: &[ConnId], t: &request::WatchTrigger, zxid: i64) {
        let mut frame = std::mem::take(&mut self.scratch_event);
        frame.clear();
        encode_reply(
            &mut frame,
            ReplyHeader {
                xid: xid::NOTIFICATION,
                zxid,
                err: 0,
            },
            Some(&WatcherEvent {
                r#type: t.event as i32,
                state: KeeperState::SyncConnected as i32,
                path: t.path.clone(),
            }),
        );
        for &w in watchers {
            let Some(c) = self.conns.get_mut(&w) else {
                continue;
            };
            if !acl::check_acl(&t.acl, perms::READ, &c.auth) {
                continue;
            }
            c.out.extend_from_slice(&frame);
            c.stats.packets_sent += 1;
            c.stats.last_zxid = zxid;
            self.stats.packets_sent += 1;
            self.dirty.push(w);
        }
        self.scratch_event = frame;
    }

    /// The owner (shard 0) only: applies a committed batch to the tree a stretch at a
    /// time, queues each stretch's outcome for every other shard, and delivers it here.
    /// Returns the txns applied and the count of outcomes queued so far (for the other
    /// shards' wake-up).
    pub fn apply_batch(&mut self, batch: Batch) -> (usize, u64) {
        // The node table grows before the writer flag is taken, so the other shards
        // read on while it copies (creates: at most a few per txn; more only grow it in
        // place, which is merely slower).
        let extra = 2 * batch.len() + 64;
        let mut room = self.tree.get().prepare_room(extra);
        // Each change notes up to two paths (the node and its parent).
        self.tree.get().reserve_snapshot_changes(2 * extra);
        let mut txns = 0;
        let mut queued = self.delivered;
        self.delivering = true;
        // A stretch of the batch per writer flag: the other shards' reads wait for one
        // stretch at most, not for a whole batch (whose first touches of fresh memory
        // can take tens of ms in a VM).
        let mut from = 0;
        // The table's old storage, freed once the flag is down.
        let mut retired = None;
        while from < batch.len() {
            let to = (from + APPLY_STRETCH).min(batch.len());
            // A tree installed from the leader or a restore is copied before the flag,
            // and the one it replaces freed after it: both walk every znode, seconds
            // at millions, which every other shard's reads would wait for.
            let mut installs: VecDeque<DataTree> = batch[from..to]
                .iter()
                .filter_map(|c| match c {
                    Committed::Install(t) => Some((*t.0).clone()),
                    _ => None,
                })
                .collect();
            let mut replaced_trees = Vec::new();
            let applied = {
                let _write = self.tree.write();
                if let Some(room) = room.take() {
                    retired = Some(self.tree.get_mut().install_room(room));
                }
                let applied = Arc::new(apply_to_tree(
                    self.tree.get_mut(),
                    batch.clone(),
                    from..to,
                    self.cfg.config_node.as_ref(),
                    (&mut installs, &mut replaced_trees),
                ));
                if applied
                    .entries()
                    .any(|c| matches!(c, Committed::Install(_)))
                {
                    self.tree.replaced();
                }
                queued = self.tree.queue_outcome(&applied);
                applied
            };
            if let Some(r) = retired.take() {
                free_after_flag("the node table's old storage", r);
            }
            if !replaced_trees.is_empty() {
                free_after_flag("the replaced tree", replaced_trees);
            }
            txns += applied.results.len();
            self.deliver(&applied);
            from = to;
        }
        self.delivering = false;
        self.delivered = queued;
        self.run_released();
        (txns, queued)
    }

    /// A shard other than the owner: delivers every outcome queued for it, within the
    /// read scope its caller holds (the tree cannot move meanwhile, so what is queued
    /// is exactly what the tree holds beyond what was delivered). Returns the txns
    /// delivered.
    fn sync(&mut self) -> usize {
        if self.tree.is_owner() {
            return 0;
        }
        let queued = self.tree.queued();
        if queued == self.delivered {
            return 0;
        }
        let outcomes = self.tree.take_outcomes();
        assert_eq!(
            self.delivered + outcomes.len() as u64,
            queued,
            "shard {}: outcomes lost between the owner and this shard",
            self.id
        );
        self.delivering = true;
        let mut txns = 0;
        for a in &outcomes {
            txns += a.results.len();
            self.deliver(a);
        }
        self.delivering = false;
        self.delivered = queued;
        self.run_released();
        txns
    }

    /// Delivers what the owner queued for this shard (woken by it); returns the txns
    /// delivered by this call.
    pub fn deliver_queued(&mut self) -> usize {
        let _read = self.tree.read();
        self.sync()
    }

    /// Runs `f` on the tree, in a read scope of this shard.
    pub fn with_tree<R>(&self, f: impl FnOnce(&DataTree) -> R) -> R {
        let _read = self.tree.read();
        f(self.tree.get())
    }

    /// Delivers one batch's outcome to this shard's connections: watch events,
    /// replies, sessions. Reads the replies release wait in `released`.
    fn deliver(&mut self, a: &Applied) {
        let mut txn = 0usize;
        let mut from = 0usize;
        for entry in a.entries() {
            match entry {
                Committed::Txn {
                    hdr,
                    txn: t,
                    origin,
                } => {
                    let to = a.trigger_ends[txn] as usize;
                    for trigger in &a.triggers[from..to] {
                        let mut ws = std::mem::take(&mut self.scratch_watchers);
                        ws.clear();
                        self.watches.trigger(&trigger.path, trigger.event, &mut ws);
                        if !ws.is_empty() {
                            self.notify_watchers(&ws, trigger, hdr.zxid);
                        }
                        self.scratch_watchers = ws;
                    }
                    from = to;
                    self.delivered_zxid = hdr.zxid;
                    self.after_txn(hdr, t, origin, &a.results[txn]);
                    txn += 1;
                }
                Committed::Sync { origin, path } => {
                    if origin.shard == self.id {
                        let zxid = self.delivered_zxid;
                        if self.pop_write(origin.conn, origin.xid) {
                            self.reply(
                                origin.conn,
                                ReplyHeader {
                                    xid: origin.xid,
                                    zxid,
                                    err: 0,
                                },
                                Some(&SyncResponse { path: path.clone() }),
                            );
                            self.drain_reads(origin.conn);
                        }
                    }
                }
                Committed::Rejected { origin, op, err } => {
                    if origin.shard == self.id {
                        self.on_rejected(origin, *op, *err);
                    }
                }
                Committed::Install(tree) => {
                    // The owner replaced the tree in `apply_to_tree`.
                    self.delivered_zxid = tree.0.last_processed_zxid();
                }
                Committed::CloseAll => {
                    let ids: Vec<ConnId> = self.conns.keys().copied().collect();
                    for id in ids {
                        self.close_now(id);
                    }
                    self.session_conn.clear();
                }
                Committed::Reattach {
                    session_id,
                    origin,
                    valid,
                } => {
                    if let Some(&local) = self.session_conn.get(session_id) {
                        if !(origin.shard == self.id && origin.conn == local) {
                            self.session_conn.remove(session_id);
                            self.close_now(local);
                        }
                    }
                    if origin.shard == self.id {
                        self.on_reattach_answer(origin.conn, *session_id, *valid);
                    }
                }
            }
        }
        self.delivered_zxid = a.zxid;
        self.txns_delivered += a.results.len() as u64;
    }

    /// Runs what delivered replies released, now that every queued event is out.
    fn run_released(&mut self) {
        // Not delivering now: running these releases nothing more into `released`.
        let mut released = std::mem::take(&mut self.released);
        for r in released.drain(..) {
            match r {
                Released::Reads(id) => self.drain_reads(id),
                Released::Pipelined(id) => self.dispatch_pipelined(id),
            }
        }
        self.released = released;
    }

    /// A write of ours that was not logged (the disk is full), so never applied:
    /// answered with `err` like any failed write, in its turn. A new session cannot be
    /// refused in a ConnectResponse, so its connection is closed and the client
    /// reconnects (as after ZooKeeper drops a connection it cannot serve).
    fn on_rejected(&mut self, o: &Origin, op: OpCode, err: ErrorCode) {
        if op == OpCode::CreateSession {
            if self.pop_write(o.conn, 0) {
                self.close_now(o.conn);
            }
            return;
        }
        if !self.pop_write(o.conn, o.xid) {
            return;
        }
        let zxid = self.tree.get().last_processed_zxid();
        self.reply_header(o.conn, o.xid, zxid, err);
        self.drain_reads(o.conn);
    }

    fn after_txn(
        &mut self,
        hdr: &request::TxnHeader,
        txn: &Txn,
        origin: &Option<Origin>,
        result: &TxnResult,
    ) {
        let local_origin = origin.filter(|o| o.shard == self.id);
        match txn {
            Txn::CreateSession { timeout } => {
                if let Some(o) = local_origin {
                    if self.pop_write(o.conn, 0) {
                        self.finish_session_init(o.conn, hdr.client_id, *timeout);
                    }
                }
                return;
            }
            Txn::CloseSession => {
                let session_id = hdr.client_id;
                if let Some(local) = self.session_conn.remove(&session_id) {
                    match local_origin {
                        Some(o) if o.conn == local => {
                            if self.pop_write(o.conn, o.xid) {
                                self.reply_header(o.conn, o.xid, hdr.zxid, ErrorCode::Ok);
                            }
                            self.close_now(o.conn);
                        }
                        // Expired, or closed through another connection.
                        _ => self.close_now(local),
                    }
                    return;
                }
            }
            _ => {}
        }
        let Some(o) = local_origin else {
            return;
        };
        if !self.pop_write(o.conn, o.xid) {
            return;
        }
        let Some(conn) = self.conns.get_mut(&o.conn) else {
            return;
        };
        let start = conn.out.len();
        conn.out.put_i32(0);
        // Placeholder header, patched once the body's error code is known.
        ReplyHeader {
            xid: o.xid,
            zxid: hdr.zxid,
            err: 0,
        }
        .encode(&mut conn.out);
        let err = request::reply::encode_write_reply(hdr.op, result, &mut conn.out);
        if err != ErrorCode::Ok && hdr.op != OpCode::Multi {
            conn.out.truncate(start + 4 + 16);
        }
        let err_pos = start + 4 + 4 + 8;
        conn.out[err_pos..err_pos + 4].copy_from_slice(&err.as_i32().to_be_bytes());
        let len = (conn.out.len() - start - 4) as i32;
        conn.out[start..start + 4].copy_from_slice(&len.to_be_bytes());
        conn.stats.packets_sent += 1;
        conn.stats.last_zxid = hdr.zxid;
        self.stats.packets_sent += 1;
        self.dirty.push(o.conn);
        self.drain_reads(o.conn);
    }

    /// Records a request's latency, as ZooKeeper's `updateStatsForResponse`.
    fn record_latency(&mut self, id: ConnId, op: OpCode, at: i64) {
        let lat = (self.now_ms - at).max(0);
        self.stats.latency.record(lat);
        if let Some(c) = self.conns.get_mut(&id) {
            c.stats.latency.record(lat);
            c.stats.last_latency = lat;
            c.stats.last_response = self.now_ms;
            c.stats.last_op = crate::admin::last_op_name(op.as_i32());
        }
    }

    /// Removes the write at the head of `id`'s queue, which must be `xid`. False if the
    /// connection is gone. A mismatch is a bug in the pipeline: the connection is closed
    /// rather than answered out of order.
    fn pop_write(&mut self, id: ConnId, xid: i32) -> bool {
        let Some(conn) = self.conns.get_mut(&id) else {
            return false;
        };
        match conn.queue.front() {
            Some(&Pending::Write {
                xid: x,
                op,
                at,
                held: None,
            }) if x == xid => {
                conn.queue.pop_front();
                self.outstanding -= 1;
                self.record_latency(id, op, at);
                true
            }
            other => {
                tracing::error!(conn = id, xid, head = ?other, "reply out of order; closing");
                self.close_now(id);
                false
            }
        }
    }

    /// Runs the reads that were waiting for the writes ahead of them, then sends the
    /// writes held behind them (up to the next read that must wait). While outcomes
    /// are being delivered, only notes the connection for `run_released`.
    fn drain_reads(&mut self, id: ConnId) {
        if self.delivering {
            self.released.push(Released::Reads(id));
            return;
        }
        loop {
            let Some(conn) = self.conns.get_mut(&id) else {
                return;
            };
            if !matches!(
                conn.queue.front(),
                Some(Pending::Read { .. } | Pending::Fail { .. })
            ) {
                self.send_held(id);
                return;
            }
            self.outstanding -= 1;
            match conn.queue.pop_front() {
                Some(Pending::Read { xid, req, at }) => self.exec_read(id, xid, req, at),
                Some(Pending::Fail { xid, code, at }) => {
                    let zxid = self.tree.get().last_processed_zxid();
                    self.reply_header(id, xid, zxid, code);
                    self.record_latency(id, OpCode::Error, at);
                }
                _ => unreachable!("checked above"),
            }
        }
    }

    /// Sends the held writes at the head of `id`'s queue, up to the first read: the
    /// reads ahead of them have run.
    fn send_held(&mut self, id: ConnId) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if conn.phase == Phase::Closing {
            return;
        }
        for p in conn.queue.iter_mut() {
            match p {
                Pending::Read { .. } | Pending::Fail { .. } => break,
                Pending::Write { xid, held, .. } => {
                    if let Some(kind) = held.take() {
                        self.outbox.items.push(WriteItem {
                            origin: Origin {
                                shard: self.id,
                                conn: id,
                                xid: *xid,
                            },
                            session_id: conn.session_id,
                            auth: conn.auth.clone(),
                            kind: *kind,
                        });
                    }
                }
            }
        }
    }

    /// Whether `id` has more output queued than a client may leave unread: what waits
    /// in `out` plus what its writer took and could not write yet.
    pub fn check_output_bound(&self, id: ConnId) -> Result<(), CloseReason> {
        match self.conns.get(&id) {
            Some(c) if c.queued_output() > self.cfg.limits.max_pending_output => {
                Err(CloseReason::SlowReader(self.cfg.limits.max_pending_output))
            }
            _ => Ok(()),
        }
    }
}

/// Entries of a batch applied per writer flag (see `Shard::apply_batch`).
const APPLY_STRETCH: usize = 32;

/// The owner's half of a batch: applies it to the tree and keeps what every shard
/// needs to deliver it (replies' results, watch triggers).
fn apply_to_tree(
    tree: &mut DataTree,
    batch: Batch,
    range: std::ops::Range<usize>,
    config_node: Option<&(Bytes, i64)>,
    (installs, replaced): (&mut VecDeque<DataTree>, &mut Vec<DataTree>),
) -> Applied {
    let entries = &batch[range.clone()];
    let txns = entries
        .iter()
        .filter(|c| matches!(c, Committed::Txn { .. }))
        .count();
    let mut results = Vec::with_capacity(txns);
    let mut triggers = Vec::new();
    let mut trigger_ends = Vec::with_capacity(txns);
    for entry in entries {
        match entry {
            Committed::Txn { hdr, txn, .. } => {
                results.push(request::apply(tree, hdr, txn, &mut triggers));
                trigger_ends.push(triggers.len() as u32);
            }
            Committed::Install(_) => {
                // Copied by the caller, in order, before it took the writer flag.
                let fresh = installs
                    .pop_front()
                    .expect("each install's tree is copied before it is applied");
                replaced.push(std::mem::replace(tree, fresh));
                if let Some((c, v)) = config_node {
                    tree.init_config_node(c.clone(), *v, super::now_wall_ms());
                }
            }
            _ => {}
        }
    }
    Applied {
        zxid: tree.last_processed_zxid(),
        batch,
        range,
        results,
        triggers,
        trigger_ends,
    }
}

/// Frees what the owner replaced under the writer flag (a grown node table's old
/// storage, a tree an install replaced) once the flag is down, and has the allocator
/// give its pages back at once: mimalloc would otherwise return them after a delay, at
/// a later allocation of this thread, which may be under the flag.
fn free_after_flag<T>(what: &'static str, it: T) {
    let t = std::time::Instant::now();
    drop(it);
    super::allocator::give_back_freed();
    tracing::debug!(
        what,
        us = t.elapsed().as_micros() as u64,
        "freed after the writer flag"
    );
}

impl JuteDyn for ReadReply {
    fn encode_dyn(&self, w: &mut BytesMut) {
        self.encode(w)
    }
}

#[cfg(test)]
mod output_bound_tests {
    use super::super::sim::*;
    use super::CloseReason;
    use crate::proto::*;

    /// What the writer took and could not write yet (a client that does not read)
    /// counts against `max_pending_output` with what is still queued.
    #[test]
    fn output_the_writer_still_holds_counts_against_the_bound() {
        let mut sim = Sim::new(1);
        sim.shards[0].cfg.limits.max_pending_output = 1000;
        let (conn, _, _) = sim.session(0);
        sim.shards[0].wrote(conn);
        let create = create_req("/n", &[7; 600], 0);
        sim.send(0, conn, 1, OpCode::Create, &create).unwrap();
        sim.pump();
        assert_eq!(sim.frames(0, conn).len(), 1);
        sim.shards[0].wrote(conn);
        let get = GetDataRequest {
            path: "/n".into(),
            watch: false,
        };
        // One reply of ~700 bytes queued: within the bound.
        sim.send(0, conn, 2, OpCode::GetData, &get).unwrap();
        let queued = sim.shards[0].conns[&conn].queued_output();
        assert!(queued > 600 && queued < 1000, "{queued}");
        assert_eq!(sim.shards[0].check_output_bound(conn), Ok(()));
        // The writer takes it and cannot write it: still counted.
        let (taken, _) = sim.shards[0].take_output(conn).unwrap();
        assert_eq!(taken.len(), queued);
        assert_eq!(sim.shards[0].conns[&conn].queued_output(), queued);
        assert_eq!(sim.shards[0].check_output_bound(conn), Ok(()));
        // A second reply queued behind it: past the bound.
        sim.send(0, conn, 3, OpCode::GetData, &get).unwrap();
        assert_eq!(
            sim.shards[0].check_output_bound(conn),
            Err(CloseReason::SlowReader(1000))
        );
        // Once the writer has written the first, the second alone is within it.
        sim.shards[0].wrote(conn);
        assert_eq!(sim.shards[0].conns[&conn].queued_output(), queued);
        assert_eq!(sim.shards[0].check_output_bound(conn), Ok(()));
    }
}
