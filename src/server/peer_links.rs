//! The sockets between ensemble members: ZooKeeper's `QuorumCnxManager` (election port)
//! and the socket half of `Learner` / `LearnerHandler` (quorum port), without any of
//! their protocol logic. What a notification or a packet means, when one is sent, when
//! a learner is too slow or a leader too quiet: all of that is the sans-IO peer's
//! (`quorum::zab`). This module only moves bytes and turns them into [`Event`]s, which
//! the link tasks queue in a [`PeerInbox`] for the ensemble task on the same executor.
//!
//! # Election port (§1.1-1.2 of the protocol notes)
//!
//! One connection per pair of servers, kept by the side with the larger sid: a dialler
//! whose target has the larger sid writes its initial message and hangs up (that is a
//! request for a call-back); a receiver that hears from a smaller sid drops any
//! connection it had to it, hangs up and dials back; one that hears from a larger sid
//! keeps the new connection, replacing the old. At most one dial per sid is in flight.
//! Each peer has a send queue of capacity one (a newer notification replaces an unsent
//! one) and the last notification handed to a connection is sent again first when a
//! new connection to that peer starts, so receivers see duplicates, as in ZooKeeper.
//! Connections come from and go to any member in the config, voter or observer (an
//! observer dials voters; voters answer it); other sids are hung up on.
//!
//! # Quorum port (§2.1)
//!
//! Back-to-back `QuorumPacket`s, no framing. Accepted connections are numbered here
//! (without [`OWN_LINK_BIT`]); a learner's connection to its leader carries the id the
//! peer chose (with it). On a learner link a SNAP packet is not passed on: the snapshot
//! stream after it is read with [`SnapReader`], kept for [`QuorumNet::take_snap`] and
//! reported as [`Event::SnapReceived`]; packets then continue from the byte after it.
//!
//! # Closing
//!
//! [`Event::LinkClosed`] is pushed once for a link the remote side, an error, bad input
//! or an output backlog closed, and never after the peer's own [`QuorumNet::close`]:
//! the peer knows about those. Packets read before a `close()` may still be in the
//! inbox. Nothing here panics on what a peer sends: every length is bounded before it
//! is waited for (see `wire`), and a malformed stream closes its connection.
//!
//! No timeouts beyond the connect and the election handshake: the peer's ticks
//! (initLimit, syncLimit) decide when a quiet link is dead and close it.

// Until `server::ensemble` uses every part of the API.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::os::unix::io::{AsRawFd, FromRawFd, IntoRawFd, RawFd};
use std::rc::{Rc, Weak};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};

use super::notify::Notify;
use super::peer_auth::QuorumSasl;
use super::peer_tls::{self, PeerStream, QuorumTls};
use crate::config::Config;
use crate::quorum::snap_stream::SnapReader;
use crate::quorum::wire::{
    self, decode_frame, decode_packet, encode_frame, InitialMessage, Notification, QuorumPacket,
};
use crate::quorum::zab::{Event, LinkId};
use crate::quorum::Sid;
use crate::tree::DataTree;

use crate::quorum::zab::OWN_LINK_BIT;

/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 64 * 1024;
/// `Learner.connectToLeader`: tries, and the pause between them
/// (`zookeeper.leaderConnectDelayDuringRetryMs`).
const LEADER_CONNECT_TRIES: u32 = 5;
const LEADER_CONNECT_DELAY: Duration = Duration::from_millis(100);
/// The pause after a failed accept (EMFILE and the like), so it does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// An election connection to a voter is dialled again as soon as it ends, at most this
/// many times in any second per voter. A killed server's election port then refuses at
/// once, and the election learns that voter is down (`Event::PeerDown`) instead of
/// waiting out `finalizeWait` for its vote: a notification handed to the dying
/// connection was lost with it, and nothing else dials before the next one. Measured
/// (3 voters, kill -9 of the leader, first write after): ~20 ms when the dead connection
/// had been noticed before the notification went out, ~220 ms when not. More than one a
/// second: a restarted server's connections come and go a few times while both sides
/// settle which one to keep, and a bound of one redial a second let that churn use it
/// up, so a leader killed within a second of its restart was waited for again (2-3 of
/// 12 back-to-back trials). The bound keeps a peer that accepts and then drops every
/// connection from being dialled in a loop.
const REDIALS_PER_SECOND: usize = 3;
/// The election handshake read timeout when `tickTime * syncLimit` is 0.
const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// The floor of the unsent-packet bound per link (see [`QuorumNet::set_unsent_limit`]).
const UNSENT_LIMIT_FLOOR: usize = 64 << 20;
/// Room for a DIFF in the unsent bound: ZooKeeper's default `commitLogCount` txns of
/// up to `jute.maxbuffer` each.
const DIFF_TXNS: usize = 512;

/// Events for the quorum peer, queued by link tasks and drained by the ensemble task on
/// the same executor. One waiter at a time.
pub(crate) struct PeerInbox {
    events: RefCell<VecDeque<Event>>,
    ready: Notify,
}

impl PeerInbox {
    pub fn new() -> Rc<Self> {
        Rc::new(PeerInbox {
            events: RefCell::new(VecDeque::new()),
            ready: Notify::default(),
        })
    }

    pub fn push(&self, ev: Event) {
        self.events.borrow_mut().push_back(ev);
        self.ready.notify();
    }

    /// Every queued event, oldest first.
    pub fn drain(&self) -> Vec<Event> {
        self.events.borrow_mut().drain(..).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.events.borrow().is_empty()
    }

    /// Returns once an event may be queued (at once if one is). Cancel-safe; it may
    /// return with nothing queued (the events were drained meanwhile).
    pub async fn wait(&self) {
        if !self.is_empty() {
            return;
        }
        self.ready.wait().await
    }
}

/// One socket's shared state: the link's tasks and the peer's calls meet here.
struct SockIo {
    /// Set once the socket is connected (a learner link has none while dialling).
    fd: Cell<Option<RawFd>>,
    closed: Cell<bool>,
    /// Wakes the writer (new output, or closed).
    notify: Notify,
}

impl SockIo {
    fn new(fd: Option<RawFd>) -> SockIo {
        SockIo {
            fd: Cell::new(fd),
            closed: Cell::new(false),
            notify: Notify::default(),
        }
    }

    /// Stops both directions now: the reader sees EOF, the writer gives up. Every task
    /// holding a half of the stream calls this before dropping it, so `closed` is set
    /// before the descriptor can be closed and reused.
    fn abort(&self) {
        if !self.closed.replace(true) {
            if let Some(fd) = self.fd.get() {
                // SAFETY: the stream owning `fd` is alive (see above); shutdown does not
                // close the descriptor.
                unsafe {
                    libc::shutdown(fd, libc::SHUT_RDWR);
                }
            }
        }
        self.notify.notify();
    }
}

/// An election connection.
struct ElectionConn {
    id: u64,
    /// We dialled it (so the remote sid is smaller than ours).
    #[cfg_attr(not(test), allow(dead_code))] // which side dialled: checked by tests
    outgoing: bool,
    io: SockIo,
}

/// `QuorumCnxManager`'s per-sid state.
#[derive(Default)]
struct Slot {
    /// The send queue (capacity 1): a framed notification not yet handed to a
    /// connection.
    pending: Option<Bytes>,
    /// `lastMessageSent`, framed.
    last_sent: Option<Bytes>,
    /// `senderWorkerMap`.
    conn: Option<Rc<ElectionConn>>,
    /// When connections' ends last had this peer dialled again, newest last (see
    /// `REDIALS_PER_SECOND`).
    redialled: std::collections::VecDeque<std::time::Instant>,
}

/// Output queued on a quorum link.
#[derive(Default)]
struct OutQ {
    /// In order; `true` marks raw bytes (`send_raw`), which the backlog bound ignores.
    chunks: VecDeque<(Bytes, bool)>,
    /// Packets encoded since the last chunk was cut, coalesced into one write.
    tail: BytesMut,
    /// Unwritten bytes from `send` (queued or being written).
    packet_bytes: usize,
}

impl OutQ {
    fn take(&mut self) -> VecDeque<(Bytes, bool)> {
        if !self.tail.is_empty() {
            let t = self.tail.split().freeze();
            self.chunks.push_back((t, false));
        }
        std::mem::take(&mut self.chunks)
    }
}

/// A quorum-port connection.
struct QLink {
    id: LinkId,
    io: SockIo,
    out: RefCell<OutQ>,
    /// The peer closed it: no `LinkClosed`.
    local_close: Cell<bool>,
    /// `LinkClosed` was pushed.
    reported: Cell<bool>,
    /// Our connection to a leader: a SNAP is followed by the snapshot stream.
    learner_side: bool,
}

impl QLink {
    fn new(id: LinkId, fd: Option<RawFd>, learner_side: bool) -> QLink {
        QLink {
            id,
            io: SockIo::new(fd),
            out: RefCell::default(),
            local_close: Cell::new(false),
            reported: Cell::new(false),
            learner_side,
        }
    }
}

/// A member's addresses, from its server line.
struct Member {
    quorum: (String, u16),
    election: (String, u16),
    voter: bool,
}

/// The received snapshot waiting for `InstallSnap`.
struct HeldSnap {
    link: LinkId,
    tree: DataTree,
    sessions: Vec<(i64, i32)>,
}

/// Both server-to-server ports of this member. See the module comment.
pub(crate) struct QuorumNet {
    me: Weak<QuorumNet>,
    inbox: Rc<PeerInbox>,
    my_sid: Sid,
    /// Our election address as the initial message carries it: `host:port`.
    my_election_text: String,
    members: BTreeMap<Sid, Member>,
    /// `cnxTimeout`; `None` waits as long as the system does.
    cnx_timeout: Option<Duration>,
    /// How long an accepted election connection may take to send its initial message
    /// (`tickTime * syncLimit`, as ZooKeeper's socket timeout).
    handshake_timeout: Duration,
    /// `jute.maxbuffer` + extrasize: the longest `buffer`/`ustring` a peer may send.
    field_limit: usize,
    /// Unsent packet bytes past which a link is closed.
    unsent_limit: Cell<usize>,
    election: RefCell<HashMap<Sid, Slot>>,
    /// `inprogressConnections`.
    dialling: RefCell<HashSet<Sid>>,
    links: RefCell<HashMap<LinkId, Rc<QLink>>>,
    snap: RefCell<Option<HeldSnap>>,
    next_conn: Cell<u64>,
    next_link: Cell<LinkId>,
    #[cfg_attr(not(test), allow(dead_code))] // the bound addresses, for tests
    quorum_addr: SocketAddr,
    #[cfg_attr(not(test), allow(dead_code))]
    election_addr: SocketAddr,
    /// `sslQuorum` / `portUnification` (`peer_tls`); `None`: plain only.
    tls: Option<QuorumTls>,
    /// `quorum.auth.enableSasl` (`peer_auth`); `None`: no SASL.
    sasl: Option<QuorumSasl>,
}

/// `delimitedHostString`: IPv6 literals get brackets.
fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Resolves at start-up (blocking is fine there).
fn resolve_now(host: &str, port: u16) -> Result<SocketAddr, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", host_port(host, port)))?
        .next()
        .ok_or_else(|| format!("{} resolves to no address", host_port(host, port)))
}

/// Resolves off the executor: a name lookup may block for seconds.
async fn resolve(host: &str, port: u16) -> io::Result<SocketAddr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let h = host.to_string();
    glommio::executor()
        .spawn_blocking(move || {
            (h.as_str(), port).to_socket_addrs()?.next().ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, format!("{h} has no address"))
            })
        })
        .await
}

async fn dial(host: &str, port: u16, timeout: Option<Duration>) -> io::Result<TcpStream> {
    let addr = resolve(host, port).await?;
    let r = match timeout {
        Some(t) => TcpStream::connect_timeout(addr, t).await,
        None => TcpStream::connect(addr).await,
    };
    let s = r.map_err(io::Error::from)?;
    let _ = s.set_nodelay(true);
    Ok(s)
}

/// Binds without SO_REUSEPORT (which glommio's `bind` always sets), so a port another
/// process holds is an error here instead of silently shared, retried `tries` times one
/// second apart (0: for ever). Blocks the thread between tries.
fn bind_with_retry(addr: SocketAddr, what: &str, tries: u32) -> Result<TcpListener, String> {
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match std::net::TcpListener::bind(addr) {
            Ok(l) => {
                // SAFETY: a bound, listening socket whose ownership moves to glommio.
                return Ok(unsafe { TcpListener::from_raw_fd(l.into_raw_fd()) });
            }
            Err(e) if tries != 0 && attempt >= tries => {
                return Err(format!(
                    "cannot bind the {what} port {addr} after {attempt} tries: {e}"
                ));
            }
            Err(e) => {
                tracing::warn!(
                    "cannot bind the {what} port {addr} (try {attempt}): {e}; retrying in 1 s"
                );
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
}

/// `f`, or `None` after `dur`.
async fn within<T>(dur: Duration, f: impl Future<Output = T>) -> Option<T> {
    futures_lite::future::or(async { Some(f.await) }, async {
        glommio::timer::sleep(dur).await;
        None
    })
    .await
}

impl QuorumNet {
    /// Binds our election port and quorum port (addresses from our own server line;
    /// the wildcard address with `quorumListenOnAllIPs`; each bind tried
    /// `electionPortBindRetry` times 1 s apart, blocking the thread, 0 = for ever),
    /// spawns the accept loops on the current glommio executor and returns. Must run
    /// on a glommio executor.
    pub fn start(config: &Config, inbox: Rc<PeerInbox>) -> Result<Rc<QuorumNet>, String> {
        let qv = config
            .quorum
            .as_ref()
            .ok_or("the configuration has no server.N lines")?;
        let my_sid = config.server_id.ok_or("the configuration has no myid")?;
        let me = qv
            .get(my_sid)
            .ok_or_else(|| format!("my id {my_sid} is not in the server list"))?;
        let bind_addr = |(host, port): &(String, u16)| -> Result<SocketAddr, String> {
            let a = resolve_now(host, *port)?;
            if !config.quorum_listen_on_all_ips {
                return Ok(a);
            }
            let any = match a.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            };
            Ok(SocketAddr::new(any, *port))
        };
        let tries = config.election_port_bind_retry;
        let election_listener = bind_with_retry(bind_addr(&me.election_addr)?, "election", tries)?;
        let quorum_listener = bind_with_retry(bind_addr(&me.quorum_addr)?, "quorum", tries)?;
        let election_addr = election_listener.local_addr().map_err(|e| e.to_string())?;
        let quorum_addr = quorum_listener.local_addr().map_err(|e| e.to_string())?;

        let members = qv
            .members
            .iter()
            .map(|(&sid, s)| {
                let m = Member {
                    quorum: s.quorum_addr.clone(),
                    election: s.election_addr.clone(),
                    voter: s.is_voter(),
                };
                (sid, m)
            })
            .collect();
        let sync_ms = u64::from(config.tick_time) * u64::from(config.sync_limit);
        let handshake_timeout = if sync_ms > 0 {
            Duration::from_millis(sync_ms)
        } else {
            DEFAULT_HANDSHAKE_TIMEOUT
        };
        let tls = QuorumTls::from_config(config)?;
        let sasl = QuorumSasl::from_config(config)?;
        let max_buffer = config.limits.max_buffer;
        let field_limit = max_buffer.saturating_add(max_buffer.max(1024));
        let net = Rc::new_cyclic(|weak| QuorumNet {
            me: weak.clone(),
            inbox,
            my_sid,
            my_election_text: host_port(&me.election_addr.0, me.election_addr.1),
            members,
            cnx_timeout: (config.cnx_timeout_ms > 0)
                .then(|| Duration::from_millis(config.cnx_timeout_ms.into())),
            handshake_timeout,
            field_limit,
            unsent_limit: Cell::new(
                UNSENT_LIMIT_FLOOR.saturating_add(DIFF_TXNS.saturating_mul(max_buffer)),
            ),
            election: RefCell::default(),
            dialling: RefCell::default(),
            links: RefCell::default(),
            snap: RefCell::default(),
            next_conn: Cell::new(0),
            next_link: Cell::new(0),
            quorum_addr,
            election_addr,
            tls,
            sasl,
        });
        tracing::info!(
            sid = my_sid,
            %election_addr,
            %quorum_addr,
            "listening for ensemble members"
        );
        glommio::spawn_local(net.clone().accept_election(election_listener)).detach();
        glommio::spawn_local(net.clone().accept_quorum(quorum_listener)).detach();
        Ok(net)
    }

    /// The addresses bound: (quorum port, election port).
    #[cfg_attr(not(test), allow(dead_code))] // diagnostics, used by tests
    pub fn local_addrs(&self) -> (SocketAddr, SocketAddr) {
        (self.quorum_addr, self.election_addr)
    }

    /// Sets the unsent-packet bound per quorum link (raw `send_raw` bytes do not count):
    /// a link past it is closed with `LinkClosed`. ZooKeeper has no bound; the default,
    /// 64 MiB plus 512 txns of `jute.maxbuffer` (a DIFF of ZooKeeper's default
    /// `commitLogCount`), only stops a learner that stopped reading from eating memory
    /// faster than syncLimit notices.
    #[cfg_attr(not(test), allow(dead_code))] // diagnostics, used by tests
    pub fn set_unsent_limit(&self, bytes: usize) {
        self.unsent_limit.set(bytes);
    }

    fn rc(&self) -> Option<Rc<QuorumNet>> {
        self.me.upgrade()
    }

    // ---- Election port ----

    /// Election: queue `n` for member `to` (never ourselves: the caller loops those
    /// back; a call for ourselves or a sid outside the config is ignored). Capacity 1
    /// per peer (a newer notification replaces an unsent one); dials when there is no
    /// connection; the last message sent is sent again when a new connection to that
    /// peer starts.
    pub fn send_notification(&self, to: Sid, n: Notification) {
        if to == self.my_sid {
            tracing::warn!("a notification to ourselves reached the network layer; dropped");
            return;
        }
        if !self.members.contains_key(&to) {
            tracing::debug!(to, "a notification to a server not in the config; dropped");
            return;
        }
        let mut payload = BytesMut::new();
        n.encode(&mut payload);
        let mut frame = BytesMut::with_capacity(4 + payload.len());
        encode_frame(&payload, &mut frame);
        let conn = {
            let mut slots = self.election.borrow_mut();
            let slot = slots.entry(to).or_default();
            slot.pending = Some(frame.freeze());
            slot.conn.clone()
        };
        match conn {
            Some(c) => c.io.notify.notify(),
            None => self.connect_one(to),
        }
    }

    /// `connectAll`: dial every voter we have no connection to.
    pub fn connect_all(&self) {
        let voters: Vec<Sid> = self
            .members
            .iter()
            .filter(|(_, m)| m.voter)
            .map(|(&s, _)| s)
            .collect();
        for sid in voters {
            self.connect_one(sid);
        }
    }

    /// ZooKeeper's `haveDelivered`: some peer's send queue is empty (false before any
    /// peer has one).
    pub fn all_delivered(&self) -> bool {
        self.election.borrow().values().any(|s| s.pending.is_none())
    }

    /// For mntr/diagnostics: election connections up.
    #[cfg_attr(not(test), allow(dead_code))] // diagnostics, used by tests
    pub fn connected_peers(&self) -> usize {
        self.election
            .borrow()
            .values()
            .filter(|s| s.conn.is_some())
            .count()
    }

    /// `connectOne`: dial `sid` unless connected or already dialling.
    fn connect_one(&self, sid: Sid) {
        if sid == self.my_sid {
            return;
        }
        let Some(m) = self.members.get(&sid) else {
            return;
        };
        let connected = self
            .election
            .borrow()
            .get(&sid)
            .is_some_and(|s| s.conn.is_some());
        if connected || !self.dialling.borrow_mut().insert(sid) {
            return;
        }
        let Some(net) = self.rc() else {
            return;
        };
        let (host, port) = m.election.clone();
        glommio::spawn_local(async move { net.dial_election(sid, host, port).await }).detach();
    }

    async fn dial_election(self: Rc<Self>, sid: Sid, host: String, port: u16) {
        let r = self.dial_and_introduce(&host, port).await;
        self.dialling.borrow_mut().remove(&sid);
        let mut stream = match r {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(
                    sid,
                    "cannot open an election connection to {host}:{port}: {e}"
                );
                if e.kind() == io::ErrorKind::ConnectionRefused {
                    self.inbox.push(Event::PeerDown { sid });
                }
                return;
            }
        };
        if sid > self.my_sid {
            // "Have smaller server identifier, so dropping the connection": it dials
            // back.
            let _ = stream.close().await;
            return;
        }
        self.run_election_conn(sid, stream, BytesMut::new(), true)
            .await;
    }

    /// Dials a member and makes the connection TLS when `sslQuorum` says so.
    async fn dial_peer(&self, host: &str, port: u16) -> io::Result<PeerStream> {
        let stream = dial(host, port, self.cnx_timeout).await?;
        peer_tls::secure(
            self.tls.as_ref(),
            stream,
            Some(host),
            self.handshake_timeout,
        )
        .await
    }

    async fn dial_and_introduce(&self, host: &str, port: u16) -> io::Result<PeerStream> {
        let mut stream = self.dial_peer(host, port).await?;
        let mut hello = BytesMut::new();
        InitialMessage::v1(self.my_sid as i64, self.my_election_text.clone()).encode(&mut hello);
        let send = async {
            stream.write_all(&hello).await?;
            stream.flush().await
        };
        match within(self.handshake_timeout, send).await {
            Some(r) => r?,
            None => return Err(io::ErrorKind::TimedOut.into()),
        }
        // QuorumCnxManager.startConnection: the learner side of quorum SASL follows
        // the initial message.
        self.authenticate_as_learner(&mut stream).await?;
        Ok(stream)
    }

    /// Quorum SASL as the dialling side, by the handshake timeout (nothing without
    /// `quorum.auth.enableSasl`).
    async fn authenticate_as_learner(&self, stream: &mut PeerStream) -> io::Result<()> {
        let Some(sasl) = &self.sasl else {
            return Ok(());
        };
        within(self.handshake_timeout, sasl.as_learner(stream))
            .await
            .unwrap_or_else(|| Err(io::ErrorKind::TimedOut.into()))
    }

    /// Quorum SASL as the accepting side; `buf` keeps the bytes read past it.
    async fn authenticate_as_server(
        &self,
        stream: &mut PeerStream,
        buf: &mut BytesMut,
    ) -> io::Result<()> {
        let Some(sasl) = &self.sasl else {
            return Ok(());
        };
        within(self.handshake_timeout, sasl.as_server(stream, buf))
            .await
            .unwrap_or_else(|| Err(io::ErrorKind::TimedOut.into()))
    }

    async fn accept_election(self: Rc<Self>, listener: TcpListener) {
        loop {
            match listener.accept().await {
                Ok(s) => {
                    glommio::spawn_local(self.clone().incoming_election(s)).detach();
                }
                Err(e) => {
                    tracing::warn!("election port accept failed: {e}");
                    glommio::timer::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
    }

    /// `receiveConnection` / `handleConnection`.
    async fn incoming_election(self: Rc<Self>, stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        let remote = stream.peer_addr().ok();
        let mut stream =
            match peer_tls::secure(self.tls.as_ref(), stream, None, self.handshake_timeout).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(?remote, "closing an election connection: {e}");
                    return;
                }
            };
        let mut buf = BytesMut::new();
        let msg = match within(
            self.handshake_timeout,
            read_initial_message(&mut stream, &mut buf),
        )
        .await
        {
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                tracing::info!(?remote, "closing an election connection: {e}");
                return;
            }
            None => {
                tracing::info!(
                    ?remote,
                    "closing an election connection: no initial message in time"
                );
                return;
            }
        };
        // QuorumCnxManager.handleConnection: quorum SASL right after the initial message.
        if let Err(e) = self.authenticate_as_server(&mut stream, &mut buf).await {
            tracing::warn!(
                ?remote,
                sid = msg.sid,
                "closing an election connection: {e}"
            );
            return;
        }
        let Ok(sid) = Sid::try_from(msg.sid) else {
            tracing::info!(
                ?remote,
                "closing an election connection from sid {}",
                msg.sid
            );
            return;
        };
        if !self.members.contains_key(&sid) {
            tracing::info!(
                ?remote,
                sid,
                "closing an election connection from a server not in the config"
            );
            return;
        }
        match sid.cmp(&self.my_sid) {
            std::cmp::Ordering::Less => {
                // It has no connection to us, so ours (if any) is stale: drop it, hang
                // up and call back.
                self.drop_election_conn(sid);
                drop(stream);
                self.connect_one(sid);
            }
            std::cmp::Ordering::Equal => {
                tracing::warn!(?remote, "an election connection claims our own sid {sid}");
            }
            std::cmp::Ordering::Greater => {
                self.run_election_conn(sid, stream, buf, false).await;
            }
        }
    }

    fn drop_election_conn(&self, sid: Sid) {
        let old = self
            .election
            .borrow_mut()
            .get_mut(&sid)
            .and_then(|s| s.conn.take());
        if let Some(c) = old {
            c.io.abort();
        }
    }

    /// Runs a kept election connection until it breaks or is replaced. `buf`: bytes
    /// already read after the initial message.
    async fn run_election_conn(
        self: Rc<Self>,
        sid: Sid,
        stream: PeerStream,
        buf: BytesMut,
        outgoing: bool,
    ) {
        let id = self.next_conn.get() + 1;
        self.next_conn.set(id);
        let conn = Rc::new(ElectionConn {
            id,
            outgoing,
            io: SockIo::new(Some(stream.fd())),
        });
        let old = {
            let mut slots = self.election.borrow_mut();
            slots.entry(sid).or_default().conn.replace(conn.clone())
        };
        if let Some(old) = old {
            old.io.abort();
        }
        tracing::debug!(sid, outgoing, "election connection up");
        let (rd, wr) = futures_lite::io::split(stream);
        let writer = glommio::spawn_local(self.clone().election_writer(sid, conn.clone(), wr));
        self.election_reader(sid, &conn, rd, buf).await;
        conn.io.abort();
        {
            let mut slots = self.election.borrow_mut();
            if let Some(s) = slots.get_mut(&sid) {
                if s.conn.as_ref().is_some_and(|c| c.id == conn.id) {
                    s.conn = None;
                }
            }
        }
        writer.await;
        tracing::debug!(sid, "election connection down");
        if self.members.get(&sid).is_some_and(|m| m.voter) {
            let now = std::time::Instant::now();
            let due = {
                let mut slots = self.election.borrow_mut();
                let recent = &mut slots.entry(sid).or_default().redialled;
                while recent
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
                {
                    recent.pop_front();
                }
                let due = recent.len() < REDIALS_PER_SECOND;
                if due {
                    recent.push_back(now);
                }
                due
            };
            if due {
                // Does nothing if another connection to it is up or being dialled.
                self.connect_one(sid);
            }
        }
    }

    /// `RecvWorker`: frames to notifications.
    async fn election_reader<R: AsyncRead + Unpin>(
        &self,
        sid: Sid,
        conn: &ElectionConn,
        mut rd: R,
        mut buf: BytesMut,
    ) {
        let mut chunk = vec![0u8; READ_CHUNK];
        loop {
            loop {
                match decode_frame(&buf) {
                    Ok(Some((payload, used))) => {
                        // Undecodable notifications are skipped, as WorkerReceiver does.
                        if let Some(n) = Notification::decode(&buf[payload]) {
                            self.inbox.push(Event::Notification { from: sid, n });
                        }
                        buf.advance(used);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::info!(sid, "closing the election connection: {e}");
                        return;
                    }
                }
            }
            if conn.io.closed.get() {
                return;
            }
            glommio::yield_if_needed().await;
            match rd.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// `SendWorker`: the queue to the socket, `lastMessageSent` first if the queue is
    /// empty.
    async fn election_writer<W: AsyncWrite + Unpin>(
        self: Rc<Self>,
        sid: Sid,
        conn: Rc<ElectionConn>,
        mut wr: W,
    ) {
        let mut first = true;
        while !conn.io.closed.get() {
            let frame = {
                let mut slots = self.election.borrow_mut();
                let Some(slot) = slots.get_mut(&sid) else {
                    break;
                };
                if slot.conn.as_ref().is_none_or(|c| c.id != conn.id) {
                    break;
                }
                match slot.pending.take() {
                    Some(f) => {
                        slot.last_sent = Some(f.clone());
                        Some(f)
                    }
                    None if first => slot.last_sent.clone(),
                    None => None,
                }
            };
            first = false;
            match frame {
                Some(f) => {
                    if wr.write_all(&f).await.is_err() || wr.flush().await.is_err() {
                        break;
                    }
                }
                None => conn.io.notify.wait().await,
            }
        }
        conn.io.abort();
    }

    // ---- Quorum port ----

    /// Learner: dial the leader's quorum port (each try bounded by cnxTimeout; up to 5
    /// tries 100 ms apart, as `Learner.connectToLeader`), then push
    /// `LeaderConnected{link}`, or `LinkClosed{link}` if every try failed. `link` is the
    /// peer's (with `OWN_LINK_BIT`); packets sent on it before it is up are queued.
    pub fn connect_to_leader(&self, leader: Sid, link: LinkId) {
        let Some(m) = self.members.get(&leader) else {
            tracing::warn!(leader, "the leader is not in the config");
            self.inbox.push(Event::LinkClosed { link });
            return;
        };
        if self.links.borrow().contains_key(&link) {
            tracing::warn!(link, "connect_to_leader: the link id is in use");
            return;
        }
        let Some(net) = self.rc() else {
            return;
        };
        let l = Rc::new(QLink::new(link, None, true));
        self.links.borrow_mut().insert(link, l.clone());
        let (host, port) = m.quorum.clone();
        glommio::spawn_local(async move { net.dial_leader(leader, l, host, port).await }).detach();
    }

    async fn dial_leader(self: Rc<Self>, leader: Sid, link: Rc<QLink>, host: String, port: u16) {
        let mut stream = None;
        for attempt in 1..=LEADER_CONNECT_TRIES {
            if link.io.closed.get() {
                break;
            }
            let dialled = match self.dial_peer(&host, port).await {
                Ok(mut s) => self.authenticate_as_learner(&mut s).await.map(|()| s),
                Err(e) => Err(e),
            };
            match dialled {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => {
                    tracing::info!(
                        leader,
                        "cannot connect to the leader at {}: {e} (try {attempt})",
                        host_port(&host, port)
                    );
                    if attempt < LEADER_CONNECT_TRIES {
                        glommio::timer::sleep(LEADER_CONNECT_DELAY).await;
                    }
                }
            }
        }
        let stream = match stream {
            Some(s) if !link.io.closed.get() => s,
            _ => {
                link.io.closed.set(true);
                self.finish_link(&link);
                return;
            }
        };
        link.io.fd.set(Some(stream.fd()));
        self.inbox.push(Event::LeaderConnected { link: link.id });
        self.run_link(link, stream, BytesMut::new()).await;
    }

    async fn accept_quorum(self: Rc<Self>, listener: TcpListener) {
        loop {
            match listener.accept().await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    let id = (self.next_link.get() + 1) & !OWN_LINK_BIT;
                    self.next_link.set(id);
                    let link = Rc::new(QLink::new(id, Some(s.as_raw_fd()), false));
                    self.links.borrow_mut().insert(id, link.clone());
                    self.inbox.push(Event::LearnerConnected { link: id });
                    glommio::spawn_local(self.clone().secure_link(link, s)).detach();
                }
                Err(e) => {
                    tracing::warn!("quorum port accept failed: {e}");
                    glommio::timer::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
    }

    /// An accepted quorum connection: TLS first when the ensemble says so.
    async fn secure_link(self: Rc<Self>, link: Rc<QLink>, stream: TcpStream) {
        let remote = stream.peer_addr().ok();
        let mut buf = BytesMut::new();
        let ready =
            match peer_tls::secure(self.tls.as_ref(), stream, None, self.handshake_timeout).await {
                // LearnerHandler: quorum SASL before the first packet.
                Ok(mut s) => match self.authenticate_as_server(&mut s, &mut buf).await {
                    Ok(()) => Ok(s),
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            };
        match ready {
            Ok(s) => self.run_link(link, s, buf).await,
            Err(e) => {
                tracing::warn!(?remote, "closing a quorum connection: {e}");
                link.io.abort();
                self.finish_link(&link);
            }
        }
    }

    /// `initial`: bytes already read from the stream (past a SASL exchange).
    async fn run_link(self: Rc<Self>, link: Rc<QLink>, stream: PeerStream, initial: BytesMut) {
        let (rd, wr) = futures_lite::io::split(stream);
        let writer = glommio::spawn_local(link_writer(link.clone(), wr));
        let why = self.link_reader(&link, rd, initial).await;
        link.io.abort();
        if !link.local_close.get() {
            tracing::info!(link = link.id, "quorum link closed: {why}");
        }
        self.finish_link(&link);
        writer.await;
    }

    /// Forgets a link that stopped, telling the peer unless it closed it itself.
    fn finish_link(&self, link: &Rc<QLink>) {
        {
            let mut links = self.links.borrow_mut();
            if links.get(&link.id).is_some_and(|l| Rc::ptr_eq(l, link)) {
                links.remove(&link.id);
            }
        }
        link.out.replace(OutQ::default());
        if !link.local_close.get() && !link.reported.replace(true) {
            self.inbox.push(Event::LinkClosed { link: link.id });
        }
    }

    /// Reads packets (and, on a learner link, the snapshot stream after a SNAP) until
    /// the link ends; returns why.
    async fn link_reader<R: AsyncRead + Unpin>(
        &self,
        link: &QLink,
        mut rd: R,
        initial: BytesMut,
    ) -> String {
        // A packet is at most a header, `data` and a few authinfo ids: refuse to buffer
        // far more than that without completing one.
        let max_pending = self
            .field_limit
            .saturating_mul(2)
            .saturating_add(READ_CHUNK);
        let mut buf = initial;
        buf.reserve(READ_CHUNK);
        let mut chunk = vec![0u8; READ_CHUNK];
        let mut snap: Option<(i64, SnapReader)> = None;
        loop {
            loop {
                if let Some((zxid, mut reader)) = snap.take() {
                    if buf.is_empty() {
                        snap = Some((zxid, reader));
                        break;
                    }
                    match reader.feed(&buf) {
                        Ok(used) => buf.advance(used.min(buf.len())),
                        Err(e) => return format!("malformed SNAP stream: {e}"),
                    }
                    if !reader.is_done() {
                        snap = Some((zxid, reader));
                        break;
                    }
                    let nodes = reader.nodes_read();
                    match reader.finish() {
                        Ok(load) => {
                            let mut tree = load.tree;
                            tree.set_last_processed_zxid(zxid);
                            tracing::info!(
                                link = link.id,
                                zxid = format_args!("{zxid:#x}"),
                                nodes,
                                "snapshot received"
                            );
                            *self.snap.borrow_mut() = Some(HeldSnap {
                                link: link.id,
                                tree,
                                sessions: load.sessions,
                            });
                            self.inbox.push(Event::SnapReceived {
                                link: link.id,
                                zxid,
                            });
                        }
                        Err(e) => return format!("malformed SNAP stream: {e}"),
                    }
                    continue;
                }
                match decode_packet(&buf, self.field_limit) {
                    Ok(Some((pkt, used))) => {
                        buf.advance(used);
                        if pkt.typ == wire::SNAP && link.learner_side {
                            snap = Some((pkt.zxid, SnapReader::new(self.field_limit)));
                        } else {
                            self.inbox.push(Event::Packet { link: link.id, pkt });
                        }
                    }
                    Ok(None) if buf.len() > max_pending => {
                        return format!("a packet over {max_pending} bytes");
                    }
                    Ok(None) => break,
                    Err(e) => return format!("bad packet: {e}"),
                }
            }
            if link.io.closed.get() {
                return "closed here".into();
            }
            glommio::yield_if_needed().await;
            match rd.read(&mut chunk).await {
                Ok(0) => return "end of stream".into(),
                Err(e) => return e.to_string(),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Encodes and queues a packet on a link (leader- or learner-side); no-op if the
    /// link is gone. A link whose unsent packets pass the bound
    /// ([`QuorumNet::set_unsent_limit`]) is closed and reported with `LinkClosed`.
    pub fn send(&self, link: LinkId, pkt: &QuorumPacket) {
        let Some(l) = self.open_link(link) else {
            return;
        };
        let over = {
            let mut q = l.out.borrow_mut();
            let before = q.tail.len();
            pkt.encode(&mut q.tail);
            q.packet_bytes += q.tail.len() - before;
            q.packet_bytes > self.unsent_limit.get()
        };
        if over {
            tracing::warn!(
                link,
                "closing a quorum link: over {} bytes of packets unsent",
                self.unsent_limit.get()
            );
            l.io.abort();
            if l.io.fd.get().is_none() {
                // Still dialling: dial_leader reports it.
                return;
            }
        }
        l.io.notify.notify();
    }

    /// Queues raw bytes (the SNAP stream after a SNAP packet), in order with `send`.
    pub fn send_raw(&self, link: LinkId, bytes: Bytes) {
        let Some(l) = self.open_link(link) else {
            return;
        };
        if bytes.is_empty() {
            return;
        }
        {
            let mut q = l.out.borrow_mut();
            if !q.tail.is_empty() {
                let t = q.tail.split().freeze();
                q.chunks.push_back((t, false));
            }
            q.chunks.push_back((bytes, true));
        }
        l.io.notify.notify();
    }

    /// Bytes queued on `link` and not yet written (`None`: no such link), for pacing a
    /// large `send_raw`.
    #[cfg_attr(not(test), allow(dead_code))] // diagnostics, used by tests
    pub fn unsent_bytes(&self, link: LinkId) -> Option<usize> {
        let l = self.links.borrow().get(&link).cloned()?;
        let q = l.out.borrow();
        let chunks: usize = q.chunks.iter().map(|(b, _)| b.len()).sum();
        Some(chunks + q.tail.len())
    }

    fn open_link(&self, link: LinkId) -> Option<Rc<QLink>> {
        let l = self.links.borrow().get(&link).cloned()?;
        (!l.io.closed.get()).then_some(l)
    }

    /// Shuts the link's socket and drops what it had queued, without a `LinkClosed`.
    /// Unknown or already closed links are ignored.
    pub fn close(&self, link: LinkId) {
        let l = self.links.borrow_mut().remove(&link);
        if let Some(l) = l {
            l.local_close.set(true);
            l.io.abort();
            l.out.replace(OutQ::default());
        }
    }

    /// Learner: the snapshot read after a SNAP packet on `link`, once
    /// [`Event::SnapReceived`] said so; `last_processed_zxid` is the SNAP's zxid. One
    /// snapshot is held at a time (a newer SNAP replaces it), until taken; closing the
    /// link does not drop it.
    pub fn take_snap(&self, link: LinkId) -> Option<(DataTree, Vec<(i64, i32)>)> {
        let mut held = self.snap.borrow_mut();
        if held.as_ref()?.link != link {
            return None;
        }
        let s = held.take()?;
        Some((s.tree, s.sessions))
    }

    /// Links open (for diagnostics).
    #[cfg_attr(not(test), allow(dead_code))] // diagnostics, used by tests
    pub fn open_links(&self) -> usize {
        self.links.borrow().len()
    }
}

/// The quorum link's writer: queued chunks to the socket in order.
async fn link_writer<W: AsyncWrite + Unpin>(link: Rc<QLink>, mut wr: W) {
    'run: while !link.io.closed.get() {
        let chunks = link.out.borrow_mut().take();
        if chunks.is_empty() {
            link.io.notify.wait().await;
            continue;
        }
        for (b, raw) in chunks {
            if link.io.closed.get() || wr.write_all(&b).await.is_err() || wr.flush().await.is_err()
            {
                break 'run;
            }
            if !raw {
                let mut q = link.out.borrow_mut();
                q.packet_bytes = q.packet_bytes.saturating_sub(b.len());
            }
        }
    }
    link.io.abort();
}

/// Reads the initial message of an accepted election connection into `buf`; the bytes
/// after it stay there.
async fn read_initial_message(
    stream: &mut PeerStream,
    buf: &mut BytesMut,
) -> Result<InitialMessage, String> {
    let mut chunk = vec![0u8; 4096];
    loop {
        match InitialMessage::decode(buf) {
            Ok(Some((m, used))) => {
                buf.advance(used);
                return Ok(m);
            }
            Ok(None) => {}
            Err(e) => return Err(e.to_string()),
        }
        match stream.read(&mut chunk).await {
            Ok(0) => return Err("closed before its initial message".into()),
            Err(e) => return Err(e.to_string()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

#[cfg(test)]
impl QuorumNet {
    /// Whether our election connection to `sid` was dialled by us.
    fn election_conn_outgoing(&self, sid: Sid) -> Option<bool> {
        let slots = self.election.borrow();
        slots.get(&sid)?.conn.as_ref().map(|c| c.outgoing)
    }

    /// Breaks the election connection to `sid` as a network failure would.
    fn break_election(&self, sid: Sid) {
        let c = self
            .election
            .borrow()
            .get(&sid)
            .and_then(|s| s.conn.clone());
        if let Some(c) = c {
            c.io.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::quorum::snap_stream::write_snap;
    use crate::quorum::verifier::{QuorumServer, QuorumVerifier};
    use crate::quorum::{LearnerType, ServerState};
    use crate::tree::open_acl_unsafe;

    const WAIT: Duration = Duration::from_secs(10);

    fn run<F: Future<Output = ()> + 'static>(f: impl FnOnce() -> F) {
        let ex = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .io_memory(4 << 20)
            .make()
            .unwrap();
        ex.run(f());
    }

    fn free_port(taken: &[u16]) -> u16 {
        loop {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let p = l.local_addr().unwrap().port();
            drop(l);
            if !taken.contains(&p) && std::net::TcpListener::bind(("127.0.0.1", p)).is_ok() {
                return p;
            }
        }
    }

    /// Configs for members `sids` (observers among them as given), on free ports.
    fn configs(sids: &[Sid], observers: &[Sid]) -> Vec<Config> {
        let mut taken = Vec::new();
        let mut servers = Vec::new();
        for &id in sids {
            let q = free_port(&taken);
            taken.push(q);
            let e = free_port(&taken);
            taken.push(e);
            servers.push(QuorumServer {
                id,
                quorum_addr: ("127.0.0.1".into(), q),
                election_addr: ("127.0.0.1".into(), e),
                learner_type: if observers.contains(&id) {
                    LearnerType::Observer
                } else {
                    LearnerType::Participant
                },
                client_addr: None,
            });
        }
        let qv = QuorumVerifier::new(servers, 0).unwrap();
        sids.iter()
            .map(|&id| Config {
                quorum: Some(qv.clone()),
                server_id: Some(id),
                tick_time: 200,
                init_limit: 10,
                sync_limit: 5,
                election_port_bind_retry: 1,
                cnx_timeout_ms: 1000,
                ..Config::default()
            })
            .collect()
    }

    /// Members `sids` running on this executor; ports raced by another test are
    /// retried with new ones.
    fn start_all(sids: &[Sid], observers: &[Sid]) -> Vec<(Rc<QuorumNet>, Watch)> {
        for _ in 0..5 {
            let cfgs = configs(sids, observers);
            let mut nets = Vec::new();
            for c in &cfgs {
                let inbox = PeerInbox::new();
                match QuorumNet::start(c, inbox.clone()) {
                    Ok(n) => nets.push((n, Watch::new(inbox))),
                    Err(_) => break,
                }
            }
            if nets.len() == sids.len() {
                return nets;
            }
        }
        panic!("cannot find free ports");
    }

    /// An inbox read in order, with deadlines.
    struct Watch {
        inbox: Rc<PeerInbox>,
        seen: VecDeque<Event>,
    }

    impl Watch {
        fn new(inbox: Rc<PeerInbox>) -> Watch {
            Watch {
                inbox,
                seen: VecDeque::new(),
            }
        }

        /// The next event, or None after `dur`.
        async fn next_within(&mut self, dur: Duration) -> Option<Event> {
            let deadline = Instant::now() + dur;
            loop {
                if let Some(e) = self.seen.pop_front() {
                    return Some(e);
                }
                self.seen.extend(self.inbox.drain());
                if !self.seen.is_empty() {
                    continue;
                }
                let left = deadline.checked_duration_since(Instant::now())?;
                within(left, self.inbox.wait()).await;
            }
        }

        async fn next(&mut self) -> Event {
            self.next_within(WAIT)
                .await
                .expect("no event within the deadline")
        }

        /// Skips events until one matches.
        async fn find(&mut self, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
            let deadline = Instant::now() + WAIT;
            loop {
                let left = deadline
                    .checked_duration_since(Instant::now())
                    .unwrap_or_default();
                match self.next_within(left).await {
                    Some(e) if pred(&e) => return e,
                    Some(_) => {}
                    None => panic!("no {what} within the deadline"),
                }
            }
        }

        /// Every event in the next `ms`.
        async fn quiet(&mut self, ms: u64) -> Vec<Event> {
            glommio::timer::sleep(Duration::from_millis(ms)).await;
            let mut v: Vec<Event> = self.seen.drain(..).collect();
            v.extend(self.inbox.drain());
            v
        }
    }

    fn note(leader: i64, epoch: i64) -> Notification {
        Notification {
            state: ServerState::Looking,
            leader,
            zxid: 0x1_0000_0007,
            election_epoch: epoch,
            peer_epoch: 1,
            version: Notification::CURRENT_VERSION,
            config: Bytes::from_static(b"server.1=127.0.0.1:1:2:participant\nversion=0"),
        }
    }

    fn is_note(from: Sid, n: &Notification) -> impl Fn(&Event) -> bool + '_ {
        move |e| matches!(e, Event::Notification { from: f, n: got } if *f == from && got == n)
    }

    async fn eventually(what: &str, cond: impl Fn() -> bool) {
        let deadline = Instant::now() + WAIT;
        while !cond() {
            assert!(Instant::now() < deadline, "never: {what}");
            glommio::timer::sleep(Duration::from_millis(10)).await;
        }
    }

    #[test]
    fn notifications_flow_both_ways_over_the_connection_the_larger_sid_dialled() {
        run(|| async {
            let mut nets = start_all(&[1, 2], &[]);
            let (b, mut wb) = nets.pop().unwrap();
            let (a, mut wa) = nets.pop().unwrap();
            assert!(!a.all_delivered(), "no queue yet");

            // 1 dials 2, which hangs up and calls back. Capacity 1: the second
            // notification replaces the first before any connection is up.
            a.send_notification(2, note(1, 1));
            a.send_notification(2, note(1, 2));
            b.send_notification(1, note(2, 1));
            wb.find("1's notification", is_note(1, &note(1, 2))).await;
            wa.find("2's notification", is_note(2, &note(2, 1))).await;
            let late = wb.quiet(300).await;
            assert!(
                !late.iter().any(is_note(1, &note(1, 1))),
                "the replaced notification was sent: {late:?}"
            );

            // One connection: 2 dialled it.
            assert_eq!((a.connected_peers(), b.connected_peers()), (1, 1));
            assert_eq!(a.election_conn_outgoing(2), Some(false));
            assert_eq!(b.election_conn_outgoing(1), Some(true));
            assert!(a.all_delivered() && b.all_delivered());

            // The connection carries later notifications both ways.
            a.send_notification(2, note(1, 3));
            wb.find("a later notification", is_note(1, &note(1, 3)))
                .await;
            b.send_notification(1, note(2, 3));
            wa.find("a later notification", is_note(2, &note(2, 3)))
                .await;

            // A new connection starts with the last message sent.
            b.break_election(1);
            eventually("both sides see the break", || {
                a.connected_peers() == 0 && b.connected_peers() == 0
            })
            .await;
            b.connect_all();
            wa.find("the re-sent notification", is_note(2, &note(2, 3)))
                .await;
            wb.find("the re-sent notification", is_note(1, &note(1, 3)))
                .await;
            assert_eq!(b.election_conn_outgoing(1), Some(true));

            // The smaller sid asking again replaces the connection, still one.
            a.break_election(2);
            eventually("both sides see the break", || {
                a.connected_peers() == 0 && b.connected_peers() == 0
            })
            .await;
            a.connect_all();
            eventually("called back", || {
                a.connected_peers() == 1 && b.connected_peers() == 1
            })
            .await;
            assert_eq!(a.election_conn_outgoing(2), Some(false));
        });
    }

    #[test]
    fn an_observer_and_a_voter_reach_each_other() {
        run(|| async {
            let mut nets = start_all(&[1, 2, 3], &[3]);
            let (obs, mut wo) = nets.pop().unwrap();
            let (_b, _wb) = nets.pop().unwrap();
            let (a, mut wa) = nets.pop().unwrap();
            obs.connect_all();
            obs.send_notification(1, note(3, 1));
            wa.find("the observer's notification", is_note(3, &note(3, 1)))
                .await;
            a.send_notification(3, note(1, 1));
            wo.find("the voter's answer", is_note(1, &note(1, 1))).await;
            // The observer dialled both voters and kept both connections.
            eventually("two connections", || obs.connected_peers() == 2).await;
        });
    }

    #[test]
    fn a_learner_link_carries_packets_both_ways_and_reports_remote_closes() {
        run(|| async {
            let mut nets = start_all(&[1, 2], &[]);
            let (b, mut wb) = nets.pop().unwrap();
            let (a, mut wa) = nets.pop().unwrap();
            let own = OWN_LINK_BIT | 1;
            b.connect_to_leader(1, own);
            assert!(matches!(wb.next().await, Event::LeaderConnected { link } if link == own));
            let Event::LearnerConnected { link: l } = wa.next().await else {
                panic!("expected LearnerConnected");
            };
            assert_eq!(l & OWN_LINK_BIT, 0);

            let info = QuorumPacket::new(
                wire::FOLLOWERINFO,
                1 << 32,
                Some(
                    wire::LearnerInfo {
                        server_id: 2,
                        protocol_version: wire::PROTOCOL_VERSION,
                        config_version: 0,
                    }
                    .to_bytes(),
                ),
            );
            b.send(own, &info);
            match wa.next().await {
                Event::Packet { link, pkt } => assert_eq!((link, pkt), (l, info.clone())),
                e => panic!("expected the FOLLOWERINFO, got {e:?}"),
            }
            let leaderinfo = QuorumPacket::new(
                wire::LEADERINFO,
                2 << 32,
                Some(wire::leader_info_data(wire::PROTOCOL_VERSION)),
            );
            let big = QuorumPacket::new(
                wire::PROPOSAL,
                (2 << 32) | 1,
                Some(Bytes::from(vec![7u8; 300_000])),
            );
            a.send(l, &leaderinfo);
            a.send(l, &big);
            for want in [&leaderinfo, &big] {
                match wb.next().await {
                    Event::Packet { link, pkt } => assert_eq!((link, &pkt), (own, want)),
                    e => panic!("expected a packet, got {e:?}"),
                }
            }

            // The leader closes: the learner hears of it, the leader does not.
            a.close(l);
            assert!(matches!(wb.next().await, Event::LinkClosed { link } if link == own));
            let late = wa.quiet(200).await;
            assert!(late.is_empty(), "{late:?}");
            a.send(l, &leaderinfo);
            b.send(own, &info);
            assert_eq!(a.open_links() + b.open_links(), 0);

            // The learner closes: the leader hears of it.
            let own2 = OWN_LINK_BIT | 2;
            b.connect_to_leader(1, own2);
            assert!(matches!(wb.next().await, Event::LeaderConnected { link } if link == own2));
            let Event::LearnerConnected { link: l2 } = wa.next().await else {
                panic!("expected LearnerConnected");
            };
            assert_ne!(l2, l);
            b.close(own2);
            assert!(matches!(wa.next().await, Event::LinkClosed { link } if link == l2));
            let late = wb.quiet(200).await;
            assert!(late.is_empty(), "{late:?}");

            // A leader not in the config.
            let own3 = OWN_LINK_BIT | 3;
            b.connect_to_leader(99, own3);
            assert!(matches!(wb.next().await, Event::LinkClosed { link } if link == own3));
        });
    }

    #[test]
    fn a_leader_that_cannot_be_reached_gives_link_closed_after_the_tries() {
        run(|| async {
            // Only 1 runs: nothing listens on 2's ports.
            let cfg = configs(&[1, 2], &[]).remove(0);
            let inbox = PeerInbox::new();
            let c = QuorumNet::start(&cfg, inbox.clone()).unwrap();
            let mut wc = Watch::new(inbox);
            let started = Instant::now();
            c.connect_to_leader(2, OWN_LINK_BIT | 9);
            assert!(
                matches!(wc.next().await, Event::LinkClosed { link } if link == OWN_LINK_BIT | 9)
            );
            assert!(started.elapsed() >= LEADER_CONNECT_DELAY * (LEADER_CONNECT_TRIES - 1));
            assert_eq!(c.open_links(), 0);
            // A close while dialling: nothing is reported.
            c.connect_to_leader(2, OWN_LINK_BIT | 10);
            c.close(OWN_LINK_BIT | 10);
            let late = wc.quiet(700).await;
            assert!(late.is_empty(), "{late:?}");
            // Election dials fail quietly too, and the queue stays full.
            c.send_notification(2, note(1, 1));
            glommio::timer::sleep(Duration::from_millis(200)).await;
            assert!(!c.all_delivered());
            assert_eq!(c.connected_peers(), 0);
        });
    }

    fn sample_tree() -> DataTree {
        let mut t = DataTree::new();
        t.add_session(0x100, 30000);
        t.add_session(0x200, 4000);
        let open = open_acl_unsafe();
        t.create_node("/app", Bytes::from_static(b"hello"), &open, 0, -1, 1, 1001)
            .unwrap();
        t.create_node(
            "/app/eph",
            Bytes::from_static(b"e"),
            &open,
            0x100,
            -1,
            2,
            1002,
        )
        .unwrap();
        for i in 0..200 {
            let path = format!("/app/n{i}");
            t.create_node(
                &path,
                Bytes::from(vec![b'x'; i]),
                &open,
                0,
                -1,
                3 + i as i64,
                1003,
            )
            .unwrap();
        }
        t.set_last_processed_zxid(202);
        t
    }

    /// b connects to its leader a: (a's link id, b's).
    async fn linked(wa: &mut Watch, b: &QuorumNet, wb: &mut Watch) -> (LinkId, LinkId) {
        let own = OWN_LINK_BIT | 7;
        b.connect_to_leader(1, own);
        assert!(matches!(wb.next().await, Event::LeaderConnected { link } if link == own));
        let Event::LearnerConnected { link } = wa.next().await else {
            panic!("expected LearnerConnected");
        };
        (link, own)
    }

    #[test]
    fn a_snap_and_its_stream_arrive_as_a_tree_then_packets_continue() {
        run(|| async {
            let mut nets = start_all(&[1, 2], &[]);
            let (b, mut wb) = nets.pop().unwrap();
            let (a, mut wa) = nets.pop().unwrap();
            let (l, own) = linked(&mut wa, &b, &mut wb).await;
            let tree = sample_tree();
            let mut stream = BytesMut::new();
            write_snap(&tree, &tree.sessions(), &mut stream);
            let stream = stream.freeze();
            let zxid = (1 << 32) | 202;
            a.send(l, &QuorumPacket::new(wire::SNAP, zxid, None));
            // In pieces, some written on their own, so the reader sees it split.
            let mut at = 0;
            for (i, size) in [3usize, 1, 50, 700, 4096].iter().cycle().enumerate() {
                let end = (at + size).min(stream.len());
                a.send_raw(l, stream.slice(at..end));
                at = end;
                if at == stream.len() {
                    break;
                }
                if i % 3 == 0 {
                    glommio::timer::sleep(Duration::from_millis(2)).await;
                }
            }
            let uptodate = QuorumPacket::new(wire::UPTODATE, -1, None);
            a.send(l, &uptodate);
            match wb.next().await {
                Event::SnapReceived { link, zxid: z } => assert_eq!((link, z), (own, zxid)),
                e => panic!("expected SnapReceived, got {e:?}"),
            }
            match wb.next().await {
                Event::Packet { link, pkt } => assert_eq!((link, pkt), (own, uptodate)),
                e => panic!("expected UPTODATE, got {e:?}"),
            }
            assert!(b.take_snap(l).is_none(), "another link's snapshot");
            let (got, sessions) = b.take_snap(own).expect("the snapshot");
            assert!(b.take_snap(own).is_none(), "taken once");
            assert_eq!(sessions, tree.sessions());
            assert_eq!(got.node_count(), tree.node_count());
            assert_eq!(&got.get("/app").unwrap().data()[..], b"hello");
            assert_eq!(&got.get("/app/n150").unwrap().data()[..], &[b'x'; 150][..]);
            assert_eq!(got.last_processed_zxid(), zxid);

            // A SNAP on an accepted (leader-side) link is just a packet.
            b.send(own, &QuorumPacket::new(wire::SNAP, 5, None));
            assert!(matches!(wa.next().await, Event::Packet { pkt, .. } if pkt.typ == wire::SNAP));
        });
    }

    #[test]
    fn a_malformed_snap_stream_closes_the_link() {
        run(|| async {
            let mut nets = start_all(&[1, 2], &[]);
            let (b, mut wb) = nets.pop().unwrap();
            let (a, mut wa) = nets.pop().unwrap();
            let (l, own) = linked(&mut wa, &b, &mut wb).await;
            a.send(l, &QuorumPacket::new(wire::SNAP, 9, None));
            // A negative session count.
            a.send_raw(l, Bytes::from_static(&[0xff, 0xff, 0xff, 0xfb, 0, 0, 0, 0]));
            assert!(matches!(wb.next().await, Event::LinkClosed { link } if link == own));
            assert!(b.take_snap(own).is_none());
            assert!(matches!(wa.next().await, Event::LinkClosed { link } if link == l));
        });
    }

    #[test]
    fn a_link_that_stops_reading_is_closed_past_the_backlog_bound() {
        run(|| async {
            let mut nets = start_all(&[1, 2], &[]);
            let (b, mut wb) = nets.pop().unwrap();
            let (a, mut wa) = nets.pop().unwrap();
            let (l, _own) = linked(&mut wa, &b, &mut wb).await;
            a.set_unsent_limit(1000);
            let p = QuorumPacket::new(wire::PING, 1, Some(Bytes::from(vec![1u8; 600])));
            let one = 4 + 8 + 4 + 600 + 4;
            a.send(l, &p);
            assert_eq!(a.unsent_bytes(l), Some(one));
            a.send(l, &p);
            assert!(matches!(wa.next().await, Event::LinkClosed { link } if link == l));
            assert_eq!(a.unsent_bytes(l), None);
        });
    }

    async fn raw_connect(addr: SocketAddr) -> TcpStream {
        TcpStream::connect(addr).await.unwrap()
    }

    /// The server hangs up: EOF (or a reset) within the deadline.
    async fn assert_hung_up(s: &mut TcpStream) {
        let mut b = [0u8; 256];
        loop {
            match within(WAIT, s.read(&mut b)).await {
                None => panic!("the connection is still open"),
                Some(Ok(0)) | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            }
        }
    }

    fn hello(sid: i64, addr: &str) -> Vec<u8> {
        let mut b = BytesMut::new();
        InitialMessage::v1(sid, addr).encode(&mut b);
        b.to_vec()
    }

    #[test]
    fn garbage_on_the_election_port_closes_the_connection() {
        run(|| async {
            let mut nets = start_all(&[1, 2], &[]);
            let (_b, _wb) = nets.pop().unwrap();
            let (a, mut wa) = nets.pop().unwrap();
            let (_, ep) = a.local_addrs();
            let mut x = 0x9e37_79b9_7f4a_7c15u64;
            let mut random = |n: usize| -> Vec<u8> {
                (0..n)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x as u8
                    })
                    .collect()
            };
            let mut cases: Vec<Vec<u8>> = vec![
                // An unknown protocol version.
                (-7i64).to_be_bytes().to_vec(),
                // Address length 0, and too long.
                [(-65536i64).to_be_bytes(), 2i64.to_be_bytes()]
                    .concat()
                    .into_iter()
                    .chain(0i32.to_be_bytes())
                    .collect(),
                [(-65536i64).to_be_bytes(), 2i64.to_be_bytes()]
                    .concat()
                    .into_iter()
                    .chain(100_000i32.to_be_bytes())
                    .collect(),
                // A bad address.
                hello(2, "no-port-here"),
                // Sids not in the config, and our own.
                hello(99, "127.0.0.1:1"),
                5i64.to_be_bytes().to_vec(),
                hello(1, "127.0.0.1:1"),
                hello(-3, "127.0.0.1:1"),
                // A member, then frames of length 0, negative, over PACKETMAXSIZE.
                [hello(2, "127.0.0.1:1"), 0i32.to_be_bytes().to_vec()].concat(),
                [hello(2, "127.0.0.1:1"), (-1i32).to_be_bytes().to_vec()].concat(),
                [
                    hello(2, "127.0.0.1:1"),
                    (wire::PACKETMAXSIZE as i32 + 1).to_be_bytes().to_vec(),
                ]
                .concat(),
            ];
            for n in [1, 9, 30, 200, 5000] {
                let mut g = random(n);
                // Not a valid V1 header by chance.
                g[0] = 0x80;
                cases.push(g);
            }
            for (i, case) in cases.iter().enumerate() {
                let mut s = raw_connect(ep).await;
                s.write_all(case).await.unwrap();
                assert_hung_up(&mut s).await;
                assert!(wa.quiet(0).await.is_empty(), "case {i}");
            }
            // A silent connection is hung up after the handshake timeout (1 s here).
            let mut s = raw_connect(ep).await;
            assert_hung_up(&mut s).await;

            // Undecodable notifications are skipped; the connection stays.
            let mut s = raw_connect(ep).await;
            let mut bytes = hello(2, "127.0.0.1:1");
            encode_frame_vec(&[1, 2, 3, 4, 5], &mut bytes);
            let mut good = BytesMut::new();
            note(2, 4).encode(&mut good);
            encode_frame_vec(&good, &mut bytes);
            s.write_all(&bytes).await.unwrap();
            wa.find("the good notification", is_note(2, &note(2, 4)))
                .await;
            assert_eq!(a.connected_peers(), 1);
            assert!(wa.quiet(50).await.is_empty());
        });
    }

    fn encode_frame_vec(payload: &[u8], out: &mut Vec<u8>) {
        let mut b = BytesMut::new();
        encode_frame(payload, &mut b);
        out.extend_from_slice(&b);
    }

    #[test]
    fn garbage_on_the_quorum_port_closes_the_link() {
        run(|| async {
            let mut nets = start_all(&[1, 2], &[]);
            let (_b, _wb) = nets.pop().unwrap();
            let (a, mut wa) = nets.pop().unwrap();
            let (qp, _) = a.local_addrs();
            let huge: Vec<u8> = [
                &wire::PING.to_be_bytes()[..],
                &0i64.to_be_bytes(),
                &0x7fff_ffffi32.to_be_bytes(),
            ]
            .concat();
            let negative: Vec<u8> = [
                &wire::PING.to_be_bytes()[..],
                &0i64.to_be_bytes(),
                &(-2i32).to_be_bytes(),
            ]
            .concat();
            let mut x = 12345u64;
            let random: Vec<u8> = (0..3000)
                .map(|_| {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (x >> 33) as u8 | 0x80
                })
                .collect();
            for case in [huge, negative, random] {
                let mut s = raw_connect(qp).await;
                let Event::LearnerConnected { link } = wa.next().await else {
                    panic!("expected LearnerConnected");
                };
                s.write_all(&case).await.unwrap();
                let got = wa.next().await;
                assert!(
                    matches!(got, Event::LinkClosed { link: l } if l == link),
                    "{got:?}"
                );
                assert_hung_up(&mut s).await;
            }
            // A learner that hangs up mid-packet.
            let mut s = raw_connect(qp).await;
            let Event::LearnerConnected { link } = wa.next().await else {
                panic!("expected LearnerConnected");
            };
            s.write_all(&wire::PING.to_be_bytes()).await.unwrap();
            drop(s);
            assert!(matches!(wa.next().await, Event::LinkClosed { link: l } if l == link));
            assert_eq!(a.open_links(), 0);
        });
    }
}
