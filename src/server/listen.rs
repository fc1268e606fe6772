//! Binding the client port: every shard listens on it, and no other process may.
//!
//! Shards share the port through SO_REUSEPORT (the kernel spreads connections among
//! them). But SO_REUSEPORT lets any process of the same user join the group: a second
//! corral (another dataDir, so its lock does not stop it) would silently take half of
//! the connections, where ZooKeeper would have refused to start ("Address already in
//! use"). So the first socket is bound *without* SO_REUSEPORT, which fails while any
//! socket holds the port (a plain listener, ZooKeeper, or another corral, whose sockets
//! all have SO_REUSEPORT set). Only once that bind succeeded is SO_REUSEPORT switched
//! on for it, before it listens, so the other shards' sockets can join. A second corral
//! starting meanwhile does the same exclusive bind and fails, because ours already
//! holds the port.
//!
//! Every client socket also sets SO_REUSEADDR (glommio's own `bind` does not): the
//! connections corral closes itself (four-letter words, closed sessions) leave
//! TIME-WAIT entries on the port, and without it they would keep a restart's exclusive
//! bind failing for a minute. The accepted sockets inherit the flag, and Linux lets a
//! SO_REUSEADDR bind pass TIME-WAIT entries that have it (never a listener).
//!
//! A process killed a moment ago still holds its listeners until the kernel has torn
//! down its io_uring, so the first check waits up to 2 s for the port to come free
//! before it refuses to start.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

/// The listen backlog when `clientPortListenBacklog` is unset (-1): what glommio's
/// own `bind` used.
const DEFAULT_BACKLOG: i32 = 1024;

/// Why the client port cannot be listened on.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// Another process holds the port.
    #[error("address in use: port {port} is held by another process (a ZooKeeper, or another corral on another dataDir?)")]
    InUse { addr: SocketAddr, port: u16 },
    #[error("{0}")]
    Io(#[from] io::Error),
}

fn socket_for(addr: SocketAddr) -> io::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    Ok(s)
}

fn bind(s: &Socket, addr: SocketAddr) -> Result<(), ListenError> {
    s.bind(&addr.into()).map_err(|e| match e.raw_os_error() {
        Some(libc::EADDRINUSE) => ListenError::InUse {
            addr,
            port: addr.port(),
        },
        _ => ListenError::Io(e),
    })
}

fn backlog(configured: i32) -> i32 {
    if configured > 0 {
        configured
    } else {
        DEFAULT_BACKLOG
    }
}

/// How long [`probe`] waits for a port to come free. A process that just exited still
/// holds its listening sockets for a moment: its io_uring instance, which has accepts
/// pending on them, is torn down after the process is gone (~20-30 ms measured after
/// a kill -9 of corral). A restart right after a crash must not fail on that.
const PROBE_PATIENCE: Duration = Duration::from_secs(2);

/// Fails if another process holds `addr`'s port: binds it without SO_REUSEPORT and
/// lets go at once, trying again for [`PROBE_PATIENCE`] while the port is in use. Run
/// before the (possibly long) recovery, so a server that cannot serve says so at
/// once; [`bind_first`] checks again when it really binds. Port 0 is not checked (the
/// kernel picks a free one).
pub fn probe(addr: SocketAddr) -> Result<(), ListenError> {
    probe_within(addr, PROBE_PATIENCE)
}

fn probe_within(addr: SocketAddr, patience: Duration) -> Result<(), ListenError> {
    if addr.port() == 0 {
        return Ok(());
    }
    let deadline = Instant::now() + patience;
    loop {
        let s = socket_for(addr)?;
        match bind(&s, addr) {
            Err(ListenError::InUse { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            r => return r,
        }
    }
}

/// The first shard's listener: bound exclusively (see the module comment), then
/// opened to the other shards' sockets, then listening.
pub fn bind_first(
    addr: SocketAddr,
    configured_backlog: i32,
) -> Result<std::net::TcpListener, ListenError> {
    let s = socket_for(addr)?;
    bind(&s, addr)?;
    s.set_reuse_port(true)?;
    s.listen(backlog(configured_backlog))?;
    Ok(s.into())
}

/// Another shard's listener on the address [`bind_first`] bound (its real port).
pub fn bind_shared(
    addr: SocketAddr,
    configured_backlog: i32,
) -> Result<std::net::TcpListener, ListenError> {
    let s = socket_for(addr)?;
    s.set_reuse_port(true)?;
    bind(&s, addr)?;
    s.listen(backlog(configured_backlog))?;
    Ok(s.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback0() -> SocketAddr {
        "127.0.0.1:0".parse().unwrap()
    }

    #[test]
    fn shards_share_the_port_and_nobody_else_may() {
        let first = bind_first(loopback0(), -1).unwrap();
        let addr = first.local_addr().unwrap();
        let second = bind_shared(addr, -1).unwrap();
        assert_eq!(second.local_addr().unwrap(), addr);
        // Another corral probes first: refused.
        assert!(
            matches!(probe_within(addr, Duration::ZERO), Err(ListenError::InUse { port, .. }) if port == addr.port())
        );
        assert!(matches!(
            bind_first(addr, -1),
            Err(ListenError::InUse { .. })
        ));
        // A plain listener (std sets SO_REUSEADDR, not SO_REUSEPORT) is refused too.
        assert!(std::net::TcpListener::bind(addr).is_err());
        drop((first, second));
        probe_within(addr, Duration::ZERO).unwrap();
    }

    #[test]
    fn a_port_freed_within_the_patience_is_taken() {
        let plain = std::net::TcpListener::bind(loopback0()).unwrap();
        let addr = plain.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            drop(plain);
        });
        probe(addr).unwrap();
        t.join().unwrap();
    }

    #[test]
    fn a_plain_listener_holds_the_port_against_us() {
        let plain = std::net::TcpListener::bind(loopback0()).unwrap();
        let addr = plain.local_addr().unwrap();
        let e = probe_within(addr, Duration::ZERO).unwrap_err();
        assert!(e.to_string().contains("address in use"), "{e}");
        assert!(e.to_string().contains(&addr.port().to_string()), "{e}");
        assert!(bind_first(addr, -1).is_err());
    }

    #[test]
    fn a_reuseport_listener_of_another_process_is_refused() {
        // What glommio's own bind (or an older corral) makes: SO_REUSEPORT only.
        let other = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
        other.set_reuse_port(true).unwrap();
        other.bind(&loopback0().into()).unwrap();
        other.listen(16).unwrap();
        let addr = other.local_addr().unwrap().as_socket().unwrap();
        assert!(matches!(
            probe_within(addr, Duration::ZERO),
            Err(ListenError::InUse { .. })
        ));
        assert!(matches!(
            bind_first(addr, -1),
            Err(ListenError::InUse { .. })
        ));
    }
}
