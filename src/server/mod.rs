//! The glommio runtime: the only module that knows executors, sockets and clocks.
//!
//! One executor ("shard") per core, pinned. Every shard listens on the client port
//! (SO_REUSEPORT spreads connections), owns the connections it accepted for their whole
//! life, and reads the server's one tree in place (`one_tree.rs`), so reads are
//! answered on the connection's shard: no hop, and no lock word shared by the cores.
//!
//! Writes: each shard batches its connections' write requests into one message per
//! turn of its executor and sends it to shard 0, which runs the commit pipeline
//! (`commit::CommitCore`): it assigns zxids, preps txns, logs the batch, applies it to
//! the tree and queues its outcome (results, watch triggers) for every shard. Every
//! shard fires its own watches and answers its own clients.
//!
//! This file wires the runtime: it starts the shards and their tasks. The commit
//! pipeline's tasks are in `pipeline.rs` (an ensemble member's in `ensemble.rs`).

mod admin_http;
mod admin_view;
mod allocator;
mod commit;
mod conn;
mod durability;
mod early_build;
mod ensemble;
mod listen;
pub mod messages;
mod metrics_http;
mod notify;
pub mod one_tree;
mod peer_auth;
mod peer_links;
mod peer_tls;
mod pipeline;
mod rlimit;
mod sd_notify;
pub mod shard;
mod step_priority;
mod thp;
mod tls;

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::io::{FromRawFd, IntoRawFd};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use glommio::channels::shared_channel::{self, ConnectedSender};
use glommio::net::TcpListener;
use glommio::{LocalExecutorBuilder, Placement};

use crate::acl::AuthProviders;
use crate::config::Config;
use crate::storage::{GlommioBackend, TxnLog};
use messages::*;
use notify::Notify;
use one_tree::{SharedTree, TreeView};
use shard::{Shard, ShardConfig};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start executor {shard}: {msg}")]
    Executor { shard: usize, msg: String },
    #[error("cannot recover the data in {dir}: {msg}")]
    Recovery { dir: String, msg: String },
    /// `metricsProvider.httpHost:httpPort` cannot be served.
    #[error(
        "cannot serve Prometheus metrics on {addr} (metricsProvider.httpHost/httpPort): {msg}"
    )]
    Metrics { addr: SocketAddr, msg: String },
    /// `admin.serverAddress:admin.serverPort` cannot be bound.
    #[error("cannot start the AdminServer on {addr} (admin.serverAddress/admin.serverPort): {}", admin_bind_reason(.source))]
    AdminBind {
        addr: String,
        source: std::io::Error,
    },
    /// A TLS store or setting cannot be used (`ssl.*`).
    #[error("cannot set up TLS for clients: {0}")]
    Tls(String),
}

/// Why the AdminServer's port cannot be bound, and what to do about it.
fn admin_bind_reason(e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::AddrInUse {
        "address in use by another process; set admin.serverPort to a free port or admin.enableServer=false".into()
    } else {
        e.to_string()
    }
}

/// Connections per client IP over all shards (`maxClientCnxns`). Touched only when a
/// connection opens or closes.
pub(crate) type PerIpCounts = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// Everything one shard's tasks share. Single-threaded: `RefCell` borrows are never held
/// across an `.await`.
pub(crate) struct Runtime {
    pub shard: RefCell<Shard>,
    /// Each connection's writer task, woken when the shard queued output for it.
    pub writers: RefCell<HashMap<ConnId, Rc<conn::ConnIo>>>,
    /// Wakes the task that carries this shard's outbox to the commit pipeline.
    pub outbox_ready: Notify,
    pub config: Arc<Config>,
    pub per_ip: PerIpCounts,
    /// Monotonic clock origin shared by all shards (session expiry).
    pub epoch: Instant,
    /// Where shards publish what the four-letter words print.
    pub board: Arc<admin_view::Board>,
    pub seen_resets: RefCell<admin_view::SeenResets>,
    /// The client port actually bound (differs from the config's when it says 0).
    pub bound_port: std::cell::Cell<u16>,
    /// The last zxid that shard 0 has committed (set before it applies the batch).
    /// Only for the metrics' lag: a read delivers every applied batch first (see
    /// `Shard::sync`), so it never misses a write acknowledged on another shard.
    pub published: Arc<std::sync::atomic::AtomicI64>,
    /// Whether clients are served: always in standalone mode; in an ensemble only
    /// while this server is an established leader or an up-to-date learner.
    pub serving: Arc<std::sync::atomic::AtomicBool>,
    /// The AdminServer's `restore` on its way to the commit pipeline (standalone).
    pub restores: Arc<RestoreSlot>,
    /// One snapshot at a time on this shard (background and AdminServer's).
    pub snapshots: durability::SnapshotSlot,
    /// The secure client port's TLS configuration (also used by a unified plain
    /// port), built once at start; `None` without client TLS.
    pub client_tls: Option<Arc<rustls::ServerConfig>>,
}

impl Runtime {
    /// Shard 0: applies a committed batch to the tree, delivers it here and wakes the
    /// other shards to deliver it to theirs. Returns the txns in the batch.
    pub fn apply(&self, batch: Batch, wake: &[ConnectedSender<Wake>]) -> usize {
        let (txns, queued) = {
            let mut shard = self.shard.borrow_mut();
            shard.now_ms = self.now_mono_ms();
            shard.apply_batch(batch)
        };
        for s in wake {
            // A full channel holds a wake-up already; the count is only a hint.
            let _ = s.try_send(queued);
        }
        txns
    }
}

impl Runtime {
    /// Wakes the writers of every connection that got output, and closes connections
    /// whose unread output exceeds the limit.
    pub fn flush_dirty(&self) {
        let mut shard = self.shard.borrow_mut();
        if let Some(slot) = self.board.in_flight.get(shard.id) {
            slot.store(shard.outstanding, std::sync::atomic::Ordering::Relaxed);
        }
        if shard.has_outbox() {
            self.outbox_ready.notify();
        }
        if shard.dirty.is_empty() {
            return;
        }
        let dirty = std::mem::take(&mut shard.dirty);
        let writers = self.writers.borrow();
        for id in &dirty {
            if let Err(e) = shard.check_output_bound(*id) {
                tracing::warn!(conn = id, "closing connection: {e}");
                if let Some(w) = writers.get(id) {
                    w.abort();
                }
                continue;
            }
            if let Some(w) = writers.get(id) {
                w.notify.notify();
            }
        }
        let mut dirty = dirty;
        dirty.clear();
        shard.dirty = dirty;
    }

    pub fn now_mono_ms(&self) -> i64 {
        self.epoch.elapsed().as_millis() as i64
    }
}

fn now_wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Channels of one shard other than 0.
struct Links {
    to_commit: shared_channel::SharedSender<ToCommit>,
    batches: shared_channel::SharedReceiver<Wake>,
    /// This shard takes the snapshots (the last one: see `commit_task`).
    snapshots: bool,
}

/// `Links` once both ends are connected.
struct ConnectedLinks {
    to_commit: ConnectedSender<ToCommit>,
    batches: shared_channel::ConnectedReceiver<Wake>,
    snapshots: bool,
}

/// What shard 0 needs to run the commit pipeline.
struct CommitSetup {
    links: CommitLinks,
    log: TxnLog<GlommioBackend>,
    /// In an ensemble: what the quorum peer starts from.
    peer: Option<crate::quorum::zab::PeerState>,
}

/// Channels of shard 0.
struct CommitLinks {
    from_shards: Vec<shared_channel::SharedReceiver<ToCommit>>,
    to_shards: Vec<shared_channel::SharedSender<Wake>>,
}

/// The secure client port's TLS configuration, its stores read before recovery so a
/// bad one stops the start at once; `None` without client TLS.
fn client_tls_config(config: &Config) -> Result<Option<Arc<rustls::ServerConfig>>, ServerError> {
    if !config.tls.client_tls_enabled() {
        return Ok(None);
    }
    if let Some(a) = config.tls.secure_client_address {
        listen::probe(a).map_err(|e| ServerError::Bind {
            addr: a,
            source: std::io::Error::other(e.to_string()),
        })?;
    }
    crate::tls::server_config(&config.tls.client, "ssl.")
        .map(Some)
        .map_err(|e| ServerError::Tls(e.to_string()))
}

/// Runs the server until the process is stopped. Prints
/// `corral: serving clients on ADDR` once every shard accepts clients.
pub fn run(config: Config) -> Result<(), ServerError> {
    // Held until the process exits.
    let _lock = crate::storage::dir_lock::lock_dirs(&[&config.data_dir, &config.data_log_dir])
        .map_err(|msg| ServerError::Recovery {
            dir: config.data_dir.display().to_string(),
            msg,
        })?;
    // A port another process holds is refused before recovery, which may take seconds.
    listen::probe(config.client_port_address).map_err(|e| ServerError::Bind {
        addr: config.client_port_address,
        source: std::io::Error::other(e.to_string()),
    })?;
    match thp::disable_unless_asked() {
        Ok(true) => {
            tracing::info!("transparent huge pages off for this process (CORRAL_THP=1 keeps them)")
        }
        Ok(false) => {
            tracing::info!("transparent huge pages as the system sets them (CORRAL_THP=1)")
        }
        Err(e) => tracing::warn!("cannot turn transparent huge pages off: {e}"),
    }
    match rlimit::raise_open_files() {
        Ok(f) => tracing::info!(
            soft = f.now,
            was = f.was,
            hard = f.hard,
            "open files: room for about {} client connections",
            f.connections()
        ),
        Err(e) => tracing::warn!("cannot raise the open-file limit: {e}"),
    }
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let shards = config.shard_count(cpus);
    let config = Arc::new(config);
    let epoch = Instant::now();
    let board = admin_view::Board::new(shards);
    // Bound before recovery, which may take seconds, so a port another process holds
    // stops the start at once (ZooKeeper starts its metrics provider first too).
    if let Some(p) = &config.metrics_provider {
        let metrics_error = |msg| ServerError::Metrics { addr: p.addr, msg };
        let listener = metrics_http::bind(p.addr).map_err(metrics_error)?;
        let sources = metrics_http::Sources {
            board: board.clone(),
            config: config.clone(),
            epoch,
        };
        metrics_http::spawn(listener, sources).map_err(metrics_error)?;
    }
    // The AdminServer's port, for the same reason; served by the last shard.
    let mut admin_listener = admin_http::bind(&config)?;
    let shared = Shared {
        config: config.clone(),
        per_ip: Arc::default(),
        epoch,
        board: board.clone(),
        published: Arc::new(std::sync::atomic::AtomicI64::new(0)),
        serving: Arc::new(std::sync::atomic::AtomicBool::new(!config.is_distributed())),
        admin: None,
        restores: Arc::default(),
        client_tls: client_tls_config(&config)?,
        secure_bound: Arc::default(),
    };

    let mut commit_links = CommitLinks {
        from_shards: Vec::new(),
        to_shards: Vec::new(),
    };
    let mut links = Vec::new();
    for shard in 1..shards {
        let (tx, rx) = shared_channel::new_bounded::<ToCommit>(4096);
        let (btx, brx) = shared_channel::new_bounded::<Wake>(64);
        commit_links.from_shards.push(rx);
        commit_links.to_shards.push(btx);
        links.push(Links {
            to_commit: tx,
            batches: brx,
            snapshots: shard == shards - 1,
        });
    }

    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<SocketAddr, String>>();
    let mut handles = Vec::new();
    let pinned = shards <= cpus && config.shards_pinned();
    if shards <= cpus && !pinned {
        let members = config.members_on_this_host();
        if members > 1 && config.shards.is_none() {
            tracing::info!(
                shards,
                members_on_this_host = members,
                "executors not pinned to cores (pinShards=true pins them), and the cores \
                 shared among the ensemble's members on this host (shards=N sets the count)"
            );
        } else {
            tracing::info!(
                shards,
                "executors not pinned to cores (pinShards=true pins them)"
            );
        }
    }
    let placement = |i: usize| {
        if pinned {
            Placement::Fixed(i)
        } else {
            Placement::Unbound
        }
    };

    let bind_addr = config.client_port_address;
    // Shard 0 reads the disk, builds the tree and serves; the other shards then read
    // the same tree.
    let (recovered_tx, recovered_rx) =
        std::sync::mpsc::channel::<Result<Arc<SharedTree>, String>>();
    {
        let ready = ready_tx.clone();
        let admin = if shards == 1 {
            admin_listener.take()
        } else {
            None
        };
        let shared = shared.for_shard(admin);
        // From this thread, not shard 0's (whose core it would share, pinned).
        let early = (cpus > 1)
            .then(|| durability::EarlyBuild::start(&config.data_dir))
            .flatten();
        handles.push(spawn_commit_shard(
            placement(0),
            shared,
            ready,
            (recovered_tx, early),
            commit_links,
            (bind_addr, shards),
        )?);
    }
    let tree = match recovered_rx.recv() {
        Ok(Ok(t)) => t,
        Ok(Err(msg)) => {
            return Err(ServerError::Recovery {
                dir: config.data_dir.display().to_string(),
                msg,
            })
        }
        Err(_) => {
            return Err(ServerError::Executor {
                shard: 0,
                msg: "exited during recovery".into(),
            })
        }
    };
    let mut addr_senders = Vec::new();
    for (i, l) in links.into_iter().enumerate() {
        let shard = i + 1;
        let view = tree.clone();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel::<SocketAddr>();
        addr_senders.push(addr_tx);
        let ready = ready_tx.clone();
        let admin = if shard == shards - 1 {
            admin_listener.take()
        } else {
            None
        };
        let shared = shared.for_shard(admin);
        handles.push(spawn_shard(
            shard,
            placement(shard),
            shared,
            ready,
            l,
            view,
            addr_rx,
        )?);
    }
    drop(tree);
    let addr = match ready_rx.recv() {
        Ok(Ok(a)) => a,
        Ok(Err(msg)) => {
            return Err(ServerError::Bind {
                addr: bind_addr,
                source: std::io::Error::other(msg),
            })
        }
        Err(_) => {
            return Err(ServerError::Executor {
                shard: 0,
                msg: "exited during start".into(),
            })
        }
    };
    for tx in addr_senders {
        let _ = tx.send(addr);
    }
    for _ in 1..shards {
        match ready_rx.recv() {
            Ok(Ok(_)) => {}
            Ok(Err(msg)) => {
                return Err(ServerError::Bind {
                    addr,
                    source: std::io::Error::other(msg),
                })
            }
            Err(_) => {
                return Err(ServerError::Executor {
                    shard: 0,
                    msg: "a shard exited during start".into(),
                })
            }
        }
    }
    tracing::info!(%addr, shards, "serving clients");
    println!("corral: serving clients on {addr}");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    // systemd's Type=notify: the start is done (conf/corral.service).
    if let Err(e) = sd_notify::notify(&format!("READY=1\nSTATUS=serving clients on {addr}")) {
        tracing::warn!("cannot tell systemd that the server is ready: {e}");
    }
    for h in handles {
        let _ = h.join();
    }
    Ok(())
}

/// Starts shard 0: it reads the disk (snapshot and log), builds the tree, hands it to
/// `recovered` for the other shards, runs the commit pipeline (or the ensemble peer)
/// and serves.
fn spawn_commit_shard(
    placement: Placement,
    shared: Shared,
    ready: std::sync::mpsc::Sender<Result<SocketAddr, String>>,
    (recovered_tx, early): (
        std::sync::mpsc::Sender<Result<Arc<SharedTree>, String>>,
        Option<durability::EarlyBuild>,
    ),
    commit_links: CommitLinks,
    (bind_addr, shards): (SocketAddr, usize),
) -> Result<glommio::ExecutorJoinHandle<()>, ServerError> {
    LocalExecutorBuilder::new(placement)
        .name("corral-0")
        .io_memory(4 << 20)
        .spawn(move || async move {
            let (recovered, log) = match durability::read_state(&shared.config).await {
                Ok(r) => r,
                Err(msg) => {
                    let _ = recovered_tx.send(Err(msg));
                    return;
                }
            };
            let peer = if shared.config.is_distributed() {
                match ensemble::peer_state(&shared.config, &recovered).await {
                    Ok(p) => Some(p),
                    Err(msg) => {
                        let _ = recovered_tx.send(Err(msg));
                        return;
                    }
                }
            } else {
                None
            };
            // The recovery (and its mapped snapshot) is let go once the tree is built.
            let (tree, mapped) = match durability::build_tree(&recovered, early) {
                Ok(t) => t,
                Err(msg) => {
                    let _ = recovered_tx.send(Err(msg));
                    return;
                }
            };
            drop(recovered);
            let tree = SharedTree::new(tree, shards);
            let _ = recovered_tx.send(Ok(tree.clone()));
            let commit = CommitSetup {
                links: commit_links,
                log,
                peer,
            };
            shard_main(
                0,
                bind_addr,
                shared,
                ready,
                (tree.view(0), mapped),
                None,
                Some(commit),
            )
            .await
        })
        .map_err(|e| ServerError::Executor {
            shard: 0,
            msg: e.to_string(),
        })
}

/// Starts shard `shard` (not 0): it reads the tree shard 0 built, once connected to
/// shard 0's pipeline, and serves on the port shard 0 bound.
fn spawn_shard(
    shard: usize,
    placement: Placement,
    shared: Shared,
    ready: std::sync::mpsc::Sender<Result<SocketAddr, String>>,
    l: Links,
    tree: Arc<SharedTree>,
    addr_rx: std::sync::mpsc::Receiver<SocketAddr>,
) -> Result<glommio::ExecutorJoinHandle<()>, ServerError> {
    LocalExecutorBuilder::new(placement)
        .name(&format!("corral-{shard}"))
        .io_memory(4 << 20)
        .spawn(move || async move {
            let links = ConnectedLinks {
                to_commit: l.to_commit.connect().await,
                batches: l.batches.connect().await,
                snapshots: l.snapshots,
            };
            // The port is known once shard 0 has bound it.
            let Ok(addr) = addr_rx.recv() else {
                return;
            };
            shard_main(
                shard,
                addr,
                shared,
                ready,
                (tree.view(shard), false),
                Some(links),
                None,
            )
            .await
        })
        .map_err(|e| ServerError::Executor {
            shard,
            msg: e.to_string(),
        })
}

/// What every shard receives from the thread that starts them.
impl Shared {
    /// A copy for one more shard (the same shared state), holding `admin` if it
    /// serves the AdminServer.
    fn for_shard(&self, admin: Option<std::net::TcpListener>) -> Shared {
        Shared {
            config: self.config.clone(),
            per_ip: self.per_ip.clone(),
            epoch: self.epoch,
            board: self.board.clone(),
            published: self.published.clone(),
            serving: self.serving.clone(),
            admin,
            restores: self.restores.clone(),
            client_tls: self.client_tls.clone(),
            secure_bound: self.secure_bound.clone(),
        }
    }
}

struct Shared {
    config: Arc<Config>,
    per_ip: PerIpCounts,
    epoch: Instant,
    board: Arc<admin_view::Board>,
    published: Arc<std::sync::atomic::AtomicI64>,
    serving: Arc<std::sync::atomic::AtomicBool>,
    /// The AdminServer's bound port, given to the shard that serves it.
    admin: Option<std::net::TcpListener>,
    restores: Arc<RestoreSlot>,
    client_tls: Option<Arc<rustls::ServerConfig>>,
    /// The secure client port as shard 0 bound it (its port may have been 0).
    secure_bound: Arc<Mutex<Option<SocketAddr>>>,
}

async fn shard_main(
    id: usize,
    addr: SocketAddr,
    shared: Shared,
    ready: std::sync::mpsc::Sender<Result<SocketAddr, String>>,
    (tree, mapped): (TreeView, bool),
    links: Option<ConnectedLinks>,
    commit: Option<CommitSetup>,
) {
    let Shared {
        config,
        per_ip,
        epoch,
        board,
        published,
        serving,
        admin,
        restores,
        client_tls,
        secure_bound,
    } = shared;
    // Shard 0 binds the port exclusively, then opens it to the other shards
    // (`listen`'s module comment says why).
    let backlog = config.client_port_listen_backlog;
    let bound = if id == 0 {
        listen::bind_first(addr, backlog)
    } else {
        listen::bind_shared(addr, backlog)
    };
    let listener = match bound {
        // SAFETY: a bound, listening socket whose ownership moves to glommio.
        Ok(l) => unsafe { TcpListener::from_raw_fd(l.into_raw_fd()) },
        Err(e) => {
            let _ = ready.send(Err(e.to_string()));
            return;
        }
    };
    let local = listener.local_addr().unwrap_or(addr);
    let secure_listener = match config.tls.secure_client_address {
        None => None,
        Some(configured) => {
            let at = if id == 0 {
                configured
            } else {
                secure_bound
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .unwrap_or(configured)
            };
            let bound = if id == 0 {
                listen::bind_first(at, backlog)
            } else {
                listen::bind_shared(at, backlog)
            };
            match bound {
                // SAFETY: as for the plain listener above.
                Ok(l) => {
                    let l = unsafe { TcpListener::from_raw_fd(l.into_raw_fd()) };
                    if id == 0 {
                        let got = l.local_addr().unwrap_or(at);
                        *secure_bound.lock().unwrap_or_else(|e| e.into_inner()) = Some(got);
                        tracing::info!("serving TLS clients on {got}");
                    }
                    Some(l)
                }
                Err(e) => {
                    let _ = ready.send(Err(format!("secure client port {at}: {e}")));
                    return;
                }
            }
        }
    };
    let shard_cfg = ShardConfig {
        min_session_timeout: config.min_session_timeout as i32,
        max_session_timeout: config.max_session_timeout as i32,
        limits: config.limits.clone(),
        auth: AuthProviders::from_config(&config),
        config_node: config
            .quorum
            .as_ref()
            .filter(|_| config.is_distributed())
            .map(|q| (bytes::Bytes::from(q.to_config_string()), q.version)),
    };
    let mut shard = Shard::new(id, shard_cfg, tree);
    if let (Some((c, v)), true) = (&shard.cfg.config_node, id == 0) {
        let _write = shard.tree.write();
        shard
            .tree
            .get_mut()
            .init_config_node(c.clone(), *v, now_wall_ms());
    }
    let rt = Rc::new(Runtime {
        shard: RefCell::new(shard),
        writers: RefCell::new(HashMap::new()),
        outbox_ready: Notify::default(),
        config: config.clone(),
        per_ip,
        epoch,
        board,
        seen_resets: RefCell::default(),
        bound_port: std::cell::Cell::new(local.port()),
        published,
        serving,
        restores,
        snapshots: Default::default(),
        client_tls,
    });
    glommio::spawn_local(publish_reports(rt.clone())).detach();
    if let Some(l) = admin {
        glommio::spawn_local(admin_http::serve_admin(rt.clone(), l)).detach();
    }
    if mapped {
        glommio::spawn_local(durability::rehome_data(rt.clone())).detach();
    }

    // Channels connect only when both ends do, and the other shards start only after
    // this one reports ready: connect in tasks, never before reporting.
    if let Some(CommitSetup {
        links: cl,
        log,
        peer,
    }) = commit
    {
        let inbox: Rc<RefCell<Vec<ToCommit>>> = Rc::default();
        for rx in cl.from_shards {
            glommio::spawn_local(pipeline::receive_from_shard(rx, inbox.clone(), rt.clone()))
                .detach();
        }
        match peer {
            Some(state) => {
                glommio::spawn_local(ensemble::ensemble_task(
                    rt.clone(),
                    inbox,
                    cl.to_shards,
                    log,
                    state,
                ))
                .detach();
            }
            None => {
                glommio::spawn_local(pipeline::commit_task(rt.clone(), inbox, cl.to_shards, log))
                    .detach();
            }
        }
        if config.autopurge_purge_interval_ms > 0 {
            glommio::spawn_local(pipeline::autopurge(config.clone())).detach();
        }
    }
    if let Some(l) = links {
        glommio::spawn_local(pipeline::forward_outbox(rt.clone(), l.to_commit)).detach();
        glommio::spawn_local(pipeline::apply_batches(rt.clone(), l.batches, l.snapshots)).detach();
    }

    if let Some(l) = secure_listener {
        glommio::spawn_local(accept_loop(rt.clone(), l, true)).detach();
    }
    let _ = ready.send(Ok(local));
    accept_loop(rt, listener, false).await
}

/// Accepts client connections for ever; `secure`: the TLS port.
async fn accept_loop(rt: Rc<Runtime>, listener: TcpListener, secure: bool) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                glommio::spawn_local(conn::serve(rt.clone(), stream, secure)).detach();
            }
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Keeps this shard's four-letter-word report fresh.
async fn publish_reports(rt: Rc<Runtime>) {
    let id = rt.shard.borrow().id;
    let mut last_purge = rt.now_mono_ms();
    loop {
        futures_lite::future::or(
            glommio::timer::sleep(Duration::from_millis(200)),
            rt.board.detail_asked(id),
        )
        .await;
        // Once a second (by the clock: a four-letter word asking for details wakes
        // this loop early): pages freed here go back to the system once their purge
        // delay has passed, even if this shard allocates nothing more.
        if rt.now_mono_ms() - last_purge >= 1000 {
            last_purge = rt.now_mono_ms();
            allocator::return_expired();
        }
        let mut answer = admin_view::detail_owed(&rt.board, id);
        if let Some(a) = answer.as_mut().filter(|a| a.wants_watches()) {
            admin_view::list_watches(&rt, a).await;
        }
        let mut shard = rt.shard.borrow_mut();
        admin_view::publish(
            &mut shard,
            &rt.board,
            &mut rt.seen_resets.borrow_mut(),
            answer,
        );
        if rt.config.metrics_provider.is_some() {
            let published = rt.published.load(std::sync::atomic::Ordering::Acquire);
            admin_view::publish_metrics(&shard, &rt.board, published);
        }
    }
}

#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;
