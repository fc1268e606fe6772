//! One client connection's socket: a reader that frames bytes into the shard, and a
//! writer that flushes what the shard queued for it. A four-letter word arriving as the
//! connection's first bytes is answered and the connection closed.
//!
//! Reading costs an idle connection nothing: the socket is read into one scratch
//! buffer per shard, and a connection keeps only the bytes it has not parsed yet, in
//! an allocation that grows to what a frame's length prefix says (checked against
//! `jute.maxbuffer` first), is given back after a big frame, and is freed whenever the
//! socket has nothing more to read. (Two 64 KiB buffers per connection made 5,000 idle
//! sessions cost 661 MiB.) A connection that has not sent
//! its ConnectRequest within `nio.sessionlessCnxnTimeout` is closed, as ZooKeeper's
//! NIOServerCnxnFactory does.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::os::unix::io::{AsRawFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures_lite::{AsyncRead, AsyncWriteExt};
use glommio::net::TcpStream;

use super::notify::Notify;
use super::Runtime;
use crate::proto::frame::{four_letter_word, next_frame};

/// Wakes a connection's tasks when the shard queued output for it (or it is being
/// closed): the writer, and the reader if it is throttled (an answer may have taken its
/// outstanding count below the limits).
#[derive(Default)]
pub(crate) struct ConnWake {
    writer: Notify,
    reader: Notify,
}

impl ConnWake {
    pub fn notify(&self) {
        self.writer.notify();
        self.reader.notify();
    }
}

/// What the shard's runtime keeps of a connection's I/O side.
pub(crate) struct ConnIo {
    pub notify: ConnWake,
    fd: RawFd,
    closed: Cell<bool>,
}

impl ConnIo {
    /// Stops both directions now: the reader sees EOF, the writer gives up.
    pub fn abort(&self) {
        if !self.closed.replace(true) {
            // SAFETY: the fd belongs to a stream that is still alive (the reader task
            // owns it until it sees EOF); shutdown does not close the descriptor.
            unsafe {
                libc::shutdown(self.fd, libc::SHUT_RDWR);
            }
        }
        self.notify.notify();
    }
}

/// How often a throttled connection looks at the server-wide count without being woken
/// (the other shards' counts move on their own cores). It is woken at once by an
/// answer of its own, which is what ZooKeeper waits for.
const RECHECK_THROTTLE: Duration = Duration::from_millis(10);

/// Why a connection reads nothing more for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// It may read.
    No,
    /// Requests: it has some outstanding and either has `max_outstanding_per_conn`
    /// of them or the server has `globalOutstandingLimit` in flight
    /// (`ZooKeeperServer.shouldThrottle`: only a connection with something
    /// outstanding is throttled, so one whose requests are all answered always gets
    /// its next one in).
    Requests,
    /// Output: `output_pause` bytes of replies are not written yet.
    Output,
}

fn must_wait(rt: &Runtime, id: super::ConnId) -> Wait {
    let shard = rt.shard.borrow();
    let Some(c) = shard.conns.get(&id) else {
        return Wait::No;
    };
    let limits = &rt.config.limits;
    if c.queued_output() >= limits.output_pause {
        return Wait::Output;
    }
    let own = c.queued();
    if own > 0
        && (own >= limits.max_outstanding_per_conn.max(1)
            || rt.board.in_flight_total(shard.id, shard.outstanding)
                >= limits.global_outstanding_limit.max(1))
    {
        return Wait::Requests;
    }
    Wait::No
}

/// Requests one connection may hand its shard in one go before the shard's other
/// tasks get a turn (glommio schedules cooperatively). One read can hold thousands of
/// small requests; ZooKeeper's NIO reads one request per connection per select.
const FRAMES_PER_TURN: usize = 128;

/// How long a shard may go on running busy connections before its I/O is polled
/// again (other connections' sockets, the log's fsync). A neighbour's write and read
/// pass through several polls, each waiting up to this long behind a busy connection:
/// at 500 us a pipelined read flood left its neighbour 14-20 round trips while it
/// lasted (`tests/hostile_load.rs`), at 250 us 35-39, with no loss of throughput
/// measured under closed-loop load.
const POLL_IO_EVERY: Duration = Duration::from_micros(250);

thread_local! {
    /// When a connection of this shard last gave it up until its I/O was polled.
    static LAST_IO_TURN: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Lets the shard's other tasks run. A yield keeps the task runnable, and glommio polls
/// its rings only when no task is runnable or its preempt timer fires (every 100 ms):
/// connections that only yielded would leave every other socket (and the log's fsync)
/// waiting for that timer. So at least every `POLL_IO_EVERY` it sleeps instead, until
/// the next poll (a timer is due then); a sleep costs a poll cycle, a yield almost
/// nothing.
async fn let_others_run() {
    let now = Instant::now();
    let due = LAST_IO_TURN.with(|t| t.get().is_none_or(|at| now - at >= POLL_IO_EVERY));
    if due {
        glommio::timer::sleep(Duration::from_micros(1)).await;
        LAST_IO_TURN.with(|t| t.set(Some(Instant::now())));
    } else {
        futures_lite::future::yield_now().await;
    }
}

/// The shard's read scratch buffer: as large as one read may usefully be.
const SCRATCH_LEN: usize = 64 * 1024;

/// Above this, a connection's input buffer is given back (its unparsed rest copied
/// into an allocation of its own size) once the frames in it are parsed, so one big
/// request does not leave a big buffer behind.
const KEEP_INPUT: usize = 16 * 1024;

thread_local! {
    /// One per shard (each shard is a thread). Borrowed only inside one `poll_read`,
    /// never across an await, so the connections of a shard take turns with it.
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0u8; SCRATCH_LEN].into_boxed_slice());
}

/// Reads what the socket has (up to the scratch buffer's size) and appends it to
/// `input`. Ok(0) at EOF. When the socket has nothing to read and `input` holds
/// nothing, its allocation is freed: the connection goes idle holding no buffer, while
/// a busy one reuses its allocation from read to read.
fn read_into<'a, R: AsyncRead + Unpin>(
    rd: &'a mut R,
    input: &'a mut BytesMut,
) -> impl Future<Output = std::io::Result<usize>> + 'a {
    futures_lite::future::poll_fn(move |cx| {
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            match Pin::new(&mut *rd).poll_read(cx, &mut scratch[..]) {
                Poll::Ready(Ok(n)) => {
                    input.extend_from_slice(&scratch[..n]);
                    Poll::Ready(Ok(n))
                }
                Poll::Pending => {
                    if input.is_empty() {
                        *input = BytesMut::new();
                    }
                    Poll::Pending
                }
                other => other,
            }
        })
    })
}

/// `read_into`, failing with TimedOut at `deadline` (if any).
async fn read_until<R: AsyncRead + Unpin>(
    rd: &mut R,
    input: &mut BytesMut,
    deadline: Option<Instant>,
) -> std::io::Result<usize> {
    let Some(deadline) = deadline else {
        return read_into(rd, input).await;
    };
    let expired = async {
        glommio::timer::sleep(deadline.saturating_duration_since(Instant::now())).await;
        Err(std::io::ErrorKind::TimedOut.into())
    };
    futures_lite::future::or(read_into(rd, input), expired).await
}

/// After `taken` bytes of whole frames were taken out of `input` this round: if they
/// sat in a big allocation, gives it back (frees it, or moves the unparsed rest into
/// an allocation of its own size). The frames' `Bytes` are dropped by then (the shard
/// copies what it keeps), so this releases the memory. A big frame still arriving
/// (nothing taken) keeps the allocation its length asked for.
fn settle_input(input: &mut BytesMut, taken: usize) {
    if taken == 0 || taken + input.capacity() <= KEEP_INPUT {
        return;
    }
    if input.is_empty() {
        *input = BytesMut::new();
    } else {
        // What the frame begun here needs in all (its length was checked by
        // next_frame); just the bytes present when the prefix is incomplete.
        let declared = input
            .get(..4)
            .map(|p| 4 + i32::from_be_bytes([p[0], p[1], p[2], p[3]]).max(0) as usize)
            .unwrap_or(0);
        let mut fresh = BytesMut::with_capacity(declared.max(input.len()));
        fresh.extend_from_slice(input);
        *input = fresh;
    }
}

/// Serves one accepted connection: `secure` when it came in on the secure client
/// port (TLS), else on the plain port (where `client.portUnification` lets a TLS client
/// in too).
pub(crate) async fn serve(rt: Rc<Runtime>, stream: TcpStream, secure: bool) {
    let Ok(remote) = stream.peer_addr() else {
        return;
    };
    let _ = stream.set_nodelay(true);
    let max = rt.config.limits.max_client_cnxns;
    {
        let mut counts = rt.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(remote.ip()).or_insert(0);
        if max > 0 && *n >= max {
            tracing::warn!("Too many connections from {} - max is {}", remote.ip(), max);
            return;
        }
        *n += 1;
    }
    serve_counted(&rt, stream, remote, secure).await;
    let mut counts = rt.per_ip.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(n) = counts.get_mut(&remote.ip()) {
        *n -= 1;
        if *n == 0 {
            counts.remove(&remote.ip());
        }
    }
}

async fn serve_counted(
    rt: &Rc<Runtime>,
    stream: TcpStream,
    remote: std::net::SocketAddr,
    secure: bool,
) {
    let fd = stream.as_raw_fd();
    // nio.sessionlessCnxnTimeout: until its first frame (the ConnectRequest) has been
    // read whole, a connection has this long from its accept, TLS handshake included.
    // A four-letter word needs only its four bytes in time; its answer is not timed.
    let deadline = Instant::now() + Duration::from_millis(rt.config.sessionless_cnxn_timeout_ms);
    let Some(tls_cfg) = rt.client_tls.clone() else {
        return serve_stream(rt, stream, fd, remote, deadline, None).await;
    };
    let settings = &rt.config.tls.client;
    let tls = secure || {
        let detect_by = deadline.min(Instant::now() + super::tls::detection_timeout(settings));
        match super::tls::looks_like_tls(&stream, detect_by).await {
            Some(tls) => tls,
            None => return,
        }
    };
    if !tls {
        return serve_stream(rt, stream, fd, remote, deadline, None).await;
    }
    // ZooKeeper's "X509 Auth provider not found" when asking for certificates with
    // no x509 provider registered.
    let x509_provider = rt.shard.borrow().cfg.auth.config.x509_provider;
    // Boxed: the TLS session's state would otherwise sit inline in every plain
    // connection's future too (the largest variant sizes them all).
    Box::pin(async move {
        match super::tls::accept(tls_cfg, settings, x509_provider, stream, remote, deadline).await {
            Ok(a) => serve_stream(rt, a.stream, fd, remote, deadline, a.subject).await,
            Err(e) => tracing::warn!(%remote, "closing a TLS connection: {e}"),
        }
    })
    .await
}

/// Serves a connection over `stream` (plain or TLS); `subject` is the TLS client
/// certificate's, the connection's `x509` id.
async fn serve_stream<S: AsyncRead + futures_lite::AsyncWrite + Unpin + 'static>(
    rt: &Rc<Runtime>,
    stream: S,
    fd: RawFd,
    remote: std::net::SocketAddr,
    deadline: Instant,
    subject: Option<String>,
) {
    let (mut rd, mut wr) = futures_lite::io::split(stream);
    let mut buf = BytesMut::new();
    let mut deadline = Some(deadline);

    // The first bytes decide: a four-letter word, or a session.
    while buf.len() < 4 {
        match read_until(&mut rd, &mut buf, deadline).await {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) => {
                if e.kind() == std::io::ErrorKind::TimedOut {
                    tracing::debug!(%remote, "closing a connection that sent no ConnectRequest in time");
                }
                return;
            }
        }
    }
    if let Some(cmd) = four_letter_word(&buf[..4]) {
        let text = super::admin_view::answer(rt, cmd).await;
        let _ = wr.write_all(text.as_bytes()).await;
        let _ = wr.flush().await;
        let _ = wr.close().await;
        return;
    }
    if !rt.serving.load(std::sync::atomic::Ordering::Acquire) {
        // An ensemble member that has no leader serves no one (ZooKeeper closes the
        // connection: "ZooKeeperServer not running"); the client tries another server.
        tracing::debug!(%remote, "closing a client connection: not serving");
        return;
    }

    let id = {
        let mut shard = rt.shard.borrow_mut();
        let id = shard.open_conn(remote, super::now_wall_ms());
        if let Some(subject) = &subject {
            shard.grant_x509(id, subject);
        }
        id
    };
    let io = Rc::new(ConnIo {
        notify: ConnWake::default(),
        fd,
        closed: Cell::new(false),
    });
    rt.writers.borrow_mut().insert(id, io.clone());
    let writer = glommio::spawn_local(write_loop(rt.clone(), id, io.clone(), wr));

    let max_frame = rt.config.limits.max_buffer;
    let mut read_full = false;
    'conn: loop {
        let mut taken = 0;
        let mut throttled = false;
        let mut turn_over = false;
        let mut frames = 0;
        loop {
            // Checked before each frame, as ZooKeeper checks after each request it
            // reads: a connection over its limits reads no further (what it sent stays
            // in its socket), so it overshoots them by one request at most.
            if must_wait(rt, id) != Wait::No {
                throttled = true;
                break;
            }
            if frames == FRAMES_PER_TURN {
                turn_over = true;
                break;
            }
            match next_frame(&mut buf, max_frame) {
                Ok(Some(frame)) => {
                    frames += 1;
                    taken += 4 + frame.len();
                    let r = {
                        let mut shard = rt.shard.borrow_mut();
                        shard.now_ms = rt.now_mono_ms();
                        // max_pending_output after each request: one request's reply
                        // past it at most (a read of 64 KiB of getData requests for a
                        // 1 MiB znode would otherwise queue gigabytes first).
                        shard
                            .on_frame(id, &frame)
                            .and_then(|()| shard.check_output_bound(id))
                    };
                    if let Err(e) = r {
                        tracing::info!(%remote, "closing connection: {e}");
                        break 'conn;
                    }
                    // The ConnectRequest is in.
                    deadline = None;
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(%remote, "closing connection: {e}");
                    break 'conn;
                }
            }
        }
        settle_input(&mut buf, taken);
        rt.flush_dirty();
        if io.closed.get() {
            break;
        }
        if throttled {
            // Until an answer to this connection (which wakes its reader as it wakes
            // its writer), or its writer having written, takes it below the limits;
            // then parse what is buffered before reading more. The server-wide count
            // also moves on other cores: looked at again now and then without a wake.
            if must_wait(rt, id) == Wait::Requests {
                // ZooKeeper's throttle (what mntr and the benchmark count as such).
                rt.board
                    .throttled
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            loop {
                let why = must_wait(rt, id);
                if why == Wait::No || io.closed.get() {
                    break;
                }
                // Closed by the server (its session expired, say) while the client
                // leaves its replies unread: they would never be flushed.
                let closing = rt
                    .shard
                    .borrow()
                    .conns
                    .get(&id)
                    .is_some_and(|c| c.is_closing());
                if why == Wait::Output && closing {
                    tracing::info!(%remote, "closing connection: closed with its output unread");
                    break 'conn;
                }
                let woken = io.notify.reader.wait();
                futures_lite::future::or(woken, glommio::timer::sleep(RECHECK_THROTTLE)).await;
            }
            if io.closed.get() {
                break;
            }
            continue;
        }
        if turn_over {
            // Its turn is over: the shard's other connections, its commit pipeline and
            // this connection's writer run before it parses on.
            let_others_run().await;
            continue;
        }
        if read_full {
            // Likewise before it reads again. glommio does not preempt a task, and its
            // read returns at once, without yielding, after a read that filled the
            // buffer (it arms a readiness poll only after a partial one): a client that
            // keeps its socket full would otherwise hold the shard.
            let_others_run().await;
        }
        match read_until(&mut rd, &mut buf, deadline).await {
            Ok(0) => break,
            Ok(n) => read_full = n == SCRATCH_LEN,
            Err(e) => {
                if e.kind() == std::io::ErrorKind::TimedOut {
                    tracing::debug!(%remote, "closing a connection that sent no ConnectRequest in time");
                }
                break;
            }
        }
    }
    io.abort();
    let held = rt.shard.borrow_mut().close_conn(id);
    rt.writers.borrow_mut().remove(&id);
    writer.await;
    if held >= super::allocator::GIVE_BACK_AFTER {
        super::allocator::give_back_freed();
    }
}

async fn write_loop<W: futures_lite::AsyncWrite + Unpin>(
    rt: Rc<Runtime>,
    id: super::ConnId,
    io: Rc<ConnIo>,
    mut wr: W,
) {
    loop {
        io.notify.writer.wait().await;
        let taken = rt.shard.borrow_mut().take_output(id);
        let Some((out, close)) = taken else {
            break;
        };
        // The flush pushes out what a TLS stream still holds as records; a plain
        // socket has nothing buffered.
        if !out.is_empty() && (wr.write_all(&out).await.is_err() || wr.flush().await.is_err()) {
            break;
        }
        drop(out);
        rt.shard.borrow_mut().wrote(id);
        // A reader paused for unwritten output may go on.
        io.notify.reader.notify();
        if close {
            let _ = wr.flush().await;
            break;
        }
        if io.closed.get() {
            break;
        }
    }
    io.abort();
}
