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

/// What the shard's runtime keeps of a connection's I/O side.
pub(crate) struct ConnIo {
    pub notify: Notify,
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

pub(crate) async fn serve(rt: Rc<Runtime>, stream: TcpStream) {
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
    serve_counted(&rt, stream, remote).await;
    let mut counts = rt.per_ip.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(n) = counts.get_mut(&remote.ip()) {
        *n -= 1;
        if *n == 0 {
            counts.remove(&remote.ip());
        }
    }
}

async fn serve_counted(rt: &Rc<Runtime>, stream: TcpStream, remote: std::net::SocketAddr) {
    let fd = stream.as_raw_fd();
    let (mut rd, mut wr) = futures_lite::io::split(stream);
    let mut buf = BytesMut::new();
    // nio.sessionlessCnxnTimeout: until its first frame (the ConnectRequest) has been
    // read whole, a connection has this long from its accept. A four-letter word needs
    // only its four bytes in time; its answer is not timed.
    let mut deadline =
        Some(Instant::now() + Duration::from_millis(rt.config.sessionless_cnxn_timeout_ms));

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
        let text = super::admin_view::answer(rt, cmd);
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

    let id = rt
        .shard
        .borrow_mut()
        .open_conn(remote, super::now_wall_ms());
    let io = Rc::new(ConnIo {
        notify: Notify::default(),
        fd,
        closed: Cell::new(false),
    });
    rt.writers.borrow_mut().insert(id, io.clone());
    let writer = glommio::spawn_local(write_loop(rt.clone(), id, io.clone(), wr));

    let max_frame = rt.config.limits.max_buffer;
    let limit = rt.config.limits.global_outstanding_limit.max(1);
    'conn: loop {
        // Reads must see every write already acknowledged on any shard.
        rt.catch_up().await;
        let mut taken = 0;
        loop {
            match next_frame(&mut buf, max_frame) {
                Ok(Some(frame)) => {
                    taken += 4 + frame.len();
                    let r = {
                        let mut shard = rt.shard.borrow_mut();
                        shard.now_ms = rt.now_mono_ms();
                        shard.on_frame(id, &frame)
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
        // globalOutstandingLimit: stop reading while too much is in flight on the whole
        // server (ZooKeeper's limit is server-wide, not per core). The other shards'
        // counts move on their own cores, so a throttled connection looks again every
        // millisecond; an unthrottled one pays one sum per read.
        let over = |rt: &Runtime| {
            let shard = rt.shard.borrow();
            rt.board.in_flight_total(shard.id, shard.outstanding) >= limit
        };
        if over(rt) {
            rt.board
                .throttled
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            while over(rt) && !io.closed.get() {
                glommio::timer::sleep(Duration::from_millis(1)).await;
            }
        }
        match read_until(&mut rd, &mut buf, deadline).await {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                if e.kind() == std::io::ErrorKind::TimedOut {
                    tracing::debug!(%remote, "closing a connection that sent no ConnectRequest in time");
                }
                break;
            }
        }
    }
    io.abort();
    rt.shard.borrow_mut().close_conn(id);
    rt.writers.borrow_mut().remove(&id);
    writer.await;
}

async fn write_loop<W: futures_lite::AsyncWrite + Unpin>(
    rt: Rc<Runtime>,
    id: super::ConnId,
    io: Rc<ConnIo>,
    mut wr: W,
) {
    loop {
        io.notify.wait().await;
        let taken = rt.shard.borrow_mut().take_output(id);
        let Some((out, close)) = taken else {
            break;
        };
        if !out.is_empty() && wr.write_all(&out).await.is_err() {
            break;
        }
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
