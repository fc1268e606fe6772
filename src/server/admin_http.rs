//! ZooKeeper's AdminServer over HTTP: `http://admin.serverAddress:admin.serverPort`
//! `admin.commandURL/<command>`, answered from `admin::commands`.
//!
//! Two parts:
//! - [`serve_http`]: a general HTTP/1.1 server (hyper 1.x) running as tasks on the
//!   glommio executor that calls it: one task accepts, one task per connection, each
//!   request handed to a caller's handler. A connection idle for the idle timeout (no
//!   byte read or written) is closed through glommio's socket timeouts, so nothing
//!   polls: an idle server costs no CPU. Any endpoint can use it (e.g. `/metrics`).
//! - [`serve_admin`]: the AdminServer's handler on the last shard (shard 0 runs the
//!   commit pipeline; the last shard also takes the snapshots). Each command gathers
//!   the same facts the four-letter words print (`admin_view::gather`) and formats
//!   them with `admin::commands`. `snapshot` takes a fresh snapshot on this shard and
//!   streams it; `restore` checks and builds the posted snapshot here and hands it to
//!   the commit pipeline (`restore_between_batches` in `server`).
//!
//! The port is bound by [`bind`] before any executor starts, without SO_REUSEPORT, so
//! a port another process holds stops corral at once with an "address in use" error
//! naming it, instead of sharing the port or failing later.

use std::cell::{Cell, RefCell};
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::unix::io::{FromRawFd, IntoRawFd};
use std::path::Path;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_lite::{AsyncRead, AsyncWrite};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::header::{HeaderValue, ALLOW, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};

use super::messages::RestoreRequest;
use super::{admin_view, durability, Runtime, ServerError};
use crate::admin::commands::{self, CommandResponse, Effect, Facts, QuorumFacts, Route};
use crate::admin::Detail;
use crate::config::Config;

/// A response body: a whole buffer, or a stream (a snapshot file). Not `Send`: it
/// lives on one executor, like the glommio file a stream reads.
pub enum Body {
    Full(Option<Bytes>),
    Stream(Pin<Box<dyn futures_lite::Stream<Item = io::Result<Bytes>>>>),
}

/// A body holding `data`.
pub fn full(data: impl Into<Bytes>) -> Body {
    Body::Full(Some(data.into()))
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.get_mut() {
            Body::Full(b) => Poll::Ready(
                b.take()
                    .filter(|b| !b.is_empty())
                    .map(|b| Ok(Frame::data(b))),
            ),
            Body::Stream(s) => s
                .as_mut()
                .poll_next(cx)
                .map(|item| item.map(|r| r.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Body::Full(b) if b.as_ref().is_none_or(|b| b.is_empty()))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Body::Stream(_) => SizeHint::default(),
        }
    }
}

/// Binds the AdminServer's port when `admin.enableServer` is on: a plain bind (no
/// SO_REUSEPORT), so a port in use is an error here.
pub fn bind(config: &Config) -> Result<Option<std::net::TcpListener>, ServerError> {
    if !config.admin_enable_server {
        return Ok(None);
    }
    let host = config.admin_server_address.as_str();
    let port = config.admin_server_port;
    // An IPv6 literal may be written with or without brackets.
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addr = (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| ServerError::AdminBind {
            addr: format!("{host}:{port}"),
            source: io::Error::new(io::ErrorKind::NotFound, "cannot resolve the address"),
        })?;
    std::net::TcpListener::bind(addr)
        .map(Some)
        .map_err(|source| ServerError::AdminBind {
            addr: addr.to_string(),
            source,
        })
}

/// hyper's I/O traits over a glommio socket.
struct Io(glommio::net::TcpStream);

impl hyper::rt::Read for Io {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        // Through a small stack buffer: admin traffic is tiny and this keeps the
        // adapter free of unsafe code.
        let mut tmp = [0u8; 8192];
        let want = buf.remaining().min(tmp.len());
        match Pin::new(&mut self.0).poll_read(cx, &mut tmp[..want]) {
            Poll::Ready(Ok(n)) => {
                buf.put_slice(&tmp[..n]);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl hyper::rt::Write for Io {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_close(cx)
    }
}

/// Serves HTTP/1.1 on `listener` (bound and listening; owned from here on) on the
/// calling glommio executor, for ever: every request goes to `handler` with the
/// client's address. Connections idle for `idle_timeout` are closed.
pub async fn serve_http<H, F>(listener: std::net::TcpListener, idle_timeout: Duration, handler: H)
where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Clone + 'static,
    F: Future<Output = Response<Body>> + 'static,
{
    // SAFETY: a bound, listening socket whose ownership moves to glommio.
    let listener = unsafe { glommio::net::TcpListener::from_raw_fd(listener.into_raw_fd()) };
    loop {
        let stream = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // Out of file descriptors and the like: wait rather than spin.
                tracing::warn!("HTTP accept failed: {e}");
                glommio::timer::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(peer) = stream.peer_addr() else {
            continue;
        };
        // A read or write that waits longer than this fails, which ends the
        // connection: Jetty's idle timeout, with no timer task of our own.
        let _ = stream.set_read_timeout(Some(idle_timeout));
        let _ = stream.set_write_timeout(Some(idle_timeout));
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        glommio::spawn_local(async move {
            let svc = hyper::service::service_fn(move |req| {
                let fut = handler(req, peer);
                async move { Ok::<_, Infallible>(fut.await) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(Io(stream), svc)
                .await
            {
                tracing::debug!(%peer, "HTTP connection ended: {e}");
            }
        })
        .detach();
    }
}

/// What the AdminServer keeps between requests.
struct AdminState {
    /// `set_trace_mask`'s value (corral has no trace log; it is kept and reported).
    trace_mask: Cell<i64>,
    snapshot_limiter: RefCell<commands::RateLimiter>,
    restore_limiter: RefCell<commands::RateLimiter>,
}

/// Runs the AdminServer on this shard's executor until the process exits.
pub(crate) async fn serve_admin(rt: Rc<Runtime>, listener: std::net::TcpListener) {
    let local = listener.local_addr().ok();
    let state = Rc::new(AdminState {
        trace_mask: Cell::new(commands::DEFAULT_TRACE_MASK),
        snapshot_limiter: RefCell::new(commands::RateLimiter::new(
            commands::RATE_LIMIT_INTERVAL_MS,
        )),
        restore_limiter: RefCell::new(commands::RateLimiter::new(commands::RATE_LIMIT_INTERVAL_MS)),
    });
    let idle = Duration::from_millis(rt.config.admin_idle_timeout_ms.max(1).into());
    tracing::info!(
        addr = ?local,
        url = %rt.config.admin_command_url,
        "AdminServer started"
    );
    serve_http(listener, idle, move |req, peer| {
        handle(rt.clone(), state.clone(), req, peer)
    })
    .await
}

fn respond(status: u16, content_type: Option<&'static str>, body: Body) -> Response<Body> {
    let mut r = Response::new(body);
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Some(ct) = content_type {
        r.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    r
}

fn json(resp: &CommandResponse) -> Response<Body> {
    let mut r = respond(resp.status, Some("application/json"), full(resp.body()));
    for (k, v) in &resp.headers {
        if let (Ok(k), Ok(v)) = (
            hyper::header::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            r.headers_mut().insert(k, v);
        }
    }
    r
}

/// Jetty's error page (`status` with its HTML body).
fn error_page(status: u16, message: &str, uri: &str) -> Response<Body> {
    let reason = StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let body = commands::error_page(status, reason, message, uri);
    respond(status, Some("text/html;charset=iso-8859-1"), full(body))
}

async fn handle(
    rt: Rc<Runtime>,
    state: Rc<AdminState>,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Response<Body> {
    let method = req.method().as_str().to_string();
    let uri_path = req.uri().path().to_string();
    let path = commands::percent_decode(&uri_path, false);
    let command_url = rt.config.admin_command_url.clone();
    let (name, post) = match commands::route(&method, &path, &command_url) {
        Route::Links => return respond(200, None, full(commands::command_links(&command_url))),
        Route::NotFound => return error_page(404, "Not Found", &uri_path),
        Route::MethodNotAllowed => return respond(405, None, full("")),
        Route::Forbidden => return respond(403, None, full("")),
        Route::NotImplemented => return respond(501, None, full("")),
        Route::Options => {
            let mut r = respond(200, None, full(""));
            r.headers_mut()
                .insert(ALLOW, HeaderValue::from_static(commands::ALLOWED_METHODS));
            return r;
        }
        Route::Run { name, post } => (name, post),
    };
    let Some(cmd) = commands::lookup(&name) else {
        return json(&commands::unknown_command(&name));
    };
    if cmd.post != post {
        // What the servlet says for a method the command does not take.
        return error_page(
            405,
            &format!("HTTP method {method} is not supported by this URL"),
            &uri_path,
        );
    }
    if cmd.server_required && !rt.serving.load(Ordering::Acquire) {
        return json(&CommandResponse {
            error: Some(crate::admin::ZK_NOT_SERVING.into()),
            ..CommandResponse::new(cmd.primary())
        });
    }
    if cmd.auth {
        let header = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let root_acl = {
            let shard = rt.shard.borrow();
            shard.with_tree(|t| t.acl_of("/").map(|a| a.to_vec()).unwrap_or_default())
        };
        let providers = crate::acl::AuthProviders::from_config(&rt.config);
        let ip = crate::acl::ip::host_address(peer.ip());
        if let Err((status, msg)) = commands::check_auth(header, &ip, &providers, &root_acl) {
            return json(&CommandResponse {
                error: Some(msg.into()),
                status,
                ..CommandResponse::new(cmd.primary())
            });
        }
    }
    match cmd.primary() {
        "restore" => return restore(&rt, &state, req).await,
        "snapshot" => {
            // `?streaming=false`: the headers only (Java's `Boolean.parseBoolean`).
            let streaming = commands::query_params(req.uri().query())
                .get("streaming")
                .is_none_or(|v| v.eq_ignore_ascii_case("true"));
            return snapshot(&rt, &state, streaming).await;
        }
        _ => {}
    }
    let kwargs = commands::query_params(req.uri().query());
    match commands::effect(cmd, &kwargs) {
        Effect::ResetServerStats => {
            rt.board.srst_gen.fetch_add(1, Ordering::Relaxed);
        }
        Effect::ResetConnectionStats => {
            rt.board.crst_gen.fetch_add(1, Ordering::Relaxed);
        }
        Effect::SetTraceMask(m) => state.trace_mask.set(m),
        Effect::None => {}
    }
    let detail = cmd
        .four_letter_word()
        .map(Detail::for_command)
        .unwrap_or_default();
    let view = admin_view::gather(&rt, detail).await;
    let digest = (cmd.primary() == "hash").then(|| {
        // Recomputed from every node (corral keeps no digest log): the cost of an
        // operator's question, on this shard only.
        let shard = rt.shard.borrow();
        shard.with_tree(|t| {
            (
                t.last_processed_zxid(),
                crate::quorum::digest::tree_digest(t),
            )
        })
    });
    let facts = Facts {
        view,
        config: &rt.config,
        client_port: rt.bound_port.get(),
        quorum: quorum_facts(&rt),
        last_snapshot: (cmd.primary() == "last_snapshot")
            .then(|| newest_snapshot(&rt.config.data_dir))
            .flatten()
            .map(|(zxid, _, mtime)| commands::SnapshotInfo {
                zxid,
                timestamp_secs: mtime,
            }),
        trace_mask: state.trace_mask.get(),
        digest,
    };
    json(&commands::run(cmd, &kwargs, &facts))
}

fn quorum_facts(rt: &Runtime) -> Option<QuorumFacts> {
    let q = rt
        .board
        .quorum
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()?;
    Some(QuorumFacts {
        mode: q.mode.into(),
        zab_state: q.zab_state.into(),
        leader: q.leader,
        synced_observers: if q.mode == "leader" {
            q.counts.observers as u64
        } else {
            0
        },
    })
}

/// The newest complete snapshot in `dir`: its zxid, path and modification time (s).
fn newest_snapshot(dir: &Path) -> Option<(i64, std::path::PathBuf, i64)> {
    let prefix = crate::storage::snapshot::SNAP_PREFIX;
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let hex = name.strip_prefix(prefix)?;
            let zxid = u64::from_str_radix(hex, 16).ok()? as i64;
            let mtime = e
                .metadata()
                .ok()?
                .modified()
                .ok()?
                .duration_since(std::time::UNIX_EPOCH)
                .ok()?
                .as_secs() as i64;
            Some((zxid, e.path(), mtime))
        })
        .max_by_key(|s| s.0)
}

/// `snapshot`: takes a fresh snapshot (ZooKeeper's `takeSnapshot`; here the fuzzy walk
/// of this shard, the one that takes the snapshots, so commits go on meanwhile) and
/// streams it (corral's own format), with its zxid and size as headers.
async fn snapshot(rt: &Rc<Runtime>, state: &AdminState, streaming: bool) -> Response<Body> {
    let now = rt.now_mono_ms();
    let refusal =
        commands::snapshot_refusal(&rt.config, &mut state.snapshot_limiter.borrow_mut(), now);
    if let Some(r) = refusal {
        return json(&r);
    }
    let failed = |msg: String| {
        json(&CommandResponse {
            error: Some(msg),
            status: 500,
            ..CommandResponse::new("snapshot")
        })
    };
    let (path, zxid) = match durability::take_snapshot_now(rt).await {
        Ok(t) => t,
        Err(e) => return failed(format!("the snapshot failed: {e}")),
    };
    let file = match glommio::io::BufferedFile::open(&path).await {
        Ok(f) => f,
        Err(e) => return failed(format!("cannot open {}: {e}", path.display())),
    };
    let size = match file.file_size().await {
        Ok(0) | Err(_) => {
            let _ = file.close().await;
            return failed(format!("{} is empty or unreadable", path.display()));
        }
        Ok(n) => n,
    };
    if !streaming {
        let _ = file.close().await;
        return json(&CommandResponse {
            headers: vec![
                (
                    commands::HEADER_LAST_ZXID.into(),
                    format!("0x{}", crate::admin::java::hex(zxid)),
                ),
                (commands::HEADER_SNAPSHOT_SIZE.into(), size.to_string()),
            ],
            ..CommandResponse::new("snapshot")
        });
    }
    // Positional reads, each a future of its own (glommio's `StreamReader` panics when
    // polled again before its read completes). An open file outlives a purge that
    // deletes it: the stream stays whole. It stops at the size announced.
    let chunks = futures_lite::stream::unfold(Some((file, 0u64)), move |state| async move {
        let (file, pos) = state?;
        if pos >= size {
            let _ = file.close().await;
            return None;
        }
        let want = (size - pos).min(64 << 10) as usize;
        match file.read_at(pos, want).await {
            Ok(chunk) if !chunk.is_empty() => {
                let n = chunk.len() as u64;
                Some((Ok(Bytes::copy_from_slice(&chunk)), Some((file, pos + n))))
            }
            Ok(_) => Some((
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the snapshot file shrank while it was streamed",
                )),
                None,
            )),
            Err(e) => Some((Err(io::Error::other(e.to_string())), None)),
        }
    });
    let mut r = respond(
        200,
        Some("application/octet-stream"),
        Body::Stream(Box::pin(chunks)),
    );
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("0x{}", crate::admin::java::hex(zxid))) {
        h.insert(commands::HEADER_LAST_ZXID, v);
    }
    h.insert(commands::HEADER_SNAPSHOT_SIZE, HeaderValue::from(size));
    // Known up front: the client sees the length, and no chunked framing is needed.
    h.insert(hyper::header::CONTENT_LENGTH, HeaderValue::from(size));
    r
}

/// `restore` (POST): the body is a snapshot as `snapshot` streams it. It is read
/// (bounded by `RESTORE_MAX_BYTES`), checked whole (seal, every record) and built into
/// a tree here, so a body that is not a valid corral snapshot is refused (500) before
/// anything changes; then the commit pipeline makes it durable and hands it to every
/// shard between two batches (`restore_between_batches` in `server`), and the answer
/// is the restored state's zxid.
async fn restore(rt: &Rc<Runtime>, state: &AdminState, req: Request<Incoming>) -> Response<Body> {
    let now = rt.now_mono_ms();
    let refusal = commands::restore_refusal(
        &rt.config,
        rt.config.is_distributed(),
        &mut state.restore_limiter.borrow_mut(),
        now,
    );
    if let Some(r) = refusal {
        return json(&r);
    }
    let failed = |why: String| {
        tracing::warn!("restore refused: {why}");
        json(&commands::restore_failed(why))
    };
    let body = match read_body(req, commands::RESTORE_MAX_BYTES).await {
        Ok(b) => b,
        Err(why) => return failed(why),
    };
    let tree = match tree_of_snapshot(body) {
        Ok(t) => t,
        Err(why) => return failed(why),
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    let req = RestoreRequest {
        tree: Box::new(tree),
        reply: tx,
    };
    if !rt.restores.offer(req) {
        return failed("another restore is under way".into());
    }
    match rx.await {
        Ok(Ok(zxid)) => json(&commands::restored(zxid)),
        Ok(Err(why)) => failed(why),
        Err(_) => failed("the commit pipeline did not answer".into()),
    }
}

/// The request's whole body, refused past `max` bytes (by its Content-Length at once,
/// or as it arrives).
async fn read_body(req: Request<Incoming>, max: u64) -> Result<Vec<u8>, String> {
    use hyper::body::Body as _;
    let too_long = || format!("the snapshot is longer than {max} bytes");
    let mut body = req.into_body();
    let hint = body.size_hint();
    if hint.lower() > max {
        return Err(too_long());
    }
    // Reserved up to 64 MiB from the announced length: a length alone reserves no more.
    let mut out = Vec::with_capacity(hint.exact().unwrap_or(0).min(64 << 20) as usize);
    loop {
        let frame = futures_lite::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
        match frame {
            None => break,
            Some(Err(e)) => return Err(format!("reading the request body: {e}")),
            Some(Ok(f)) => {
                if let Ok(data) = f.into_data() {
                    if (out.len() + data.len()) as u64 > max {
                        return Err(too_long());
                    }
                    out.extend_from_slice(&data);
                }
            }
        }
    }
    if out.is_empty() {
        return Err("the request has no body: post a snapshot as `snapshot` streams it".into());
    }
    Ok(out)
}

/// The tree a posted snapshot describes, or why it is not a valid corral snapshot.
fn tree_of_snapshot(body: Vec<u8>) -> Result<crate::tree::DataTree, String> {
    let what = Path::new("(request body)");
    let snapshot = crate::storage::snapshot::decode_snapshot(
        crate::storage::backend::Mapped::Owned(body),
        what,
    )
    .map_err(|e| format!("not a valid corral snapshot: {e}"))?;
    let last_zxid = snapshot.last_zxid;
    let rec = crate::storage::Recovered {
        snapshot: Some(snapshot),
        txns: Vec::new(),
        last_zxid,
        warnings: Vec::new(),
    };
    durability::tree_from(&rec).map_err(|e| format!("not a valid corral snapshot: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_in_use_names_the_port() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let (mut c, _) = Config::parse("dataDir=/tmp/x\nclientPort=0\n", "t.cfg").expect("config");
        c.admin_server_address = "127.0.0.1".into();
        c.admin_server_port = port;
        let err = bind(&c).expect_err("the port is taken").to_string();
        assert!(err.contains(&port.to_string()), "{err}");
        assert!(err.to_lowercase().contains("address in use"), "{err}");
        c.admin_enable_server = false;
        assert!(bind(&c).unwrap().is_none());
    }
}
