//! One client connection's socket: a reader that frames bytes into the shard, and a
//! writer that flushes what the shard queued for it. A four-letter word arriving as the
//! connection's first bytes is answered and the connection closed.

use std::cell::Cell;
use std::os::unix::io::{AsRawFd, RawFd};
use std::rc::Rc;
use std::time::Duration;

use bytes::BytesMut;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
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

const READ_CHUNK: usize = 64 * 1024;

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
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut chunk = vec![0u8; READ_CHUNK];

    // The first bytes decide: a four-letter word, or a session.
    while buf.len() < 4 {
        match rd.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
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
        loop {
            match next_frame(&mut buf, max_frame) {
                Ok(Some(frame)) => {
                    let r = {
                        let mut shard = rt.shard.borrow_mut();
                        shard.now_ms = rt.now_mono_ms();
                        shard.on_frame(id, &frame)
                    };
                    if let Err(e) = r {
                        tracing::info!(%remote, "closing connection: {e}");
                        break 'conn;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(%remote, "closing connection: {e}");
                    break 'conn;
                }
            }
        }
        rt.flush_dirty();
        if io.closed.get() {
            break;
        }
        // globalOutstandingLimit: stop reading while too much is in flight.
        while rt.shard.borrow().outstanding >= limit && !io.closed.get() {
            glommio::timer::sleep(Duration::from_millis(1)).await;
        }
        match rd.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
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
