//! systemd's readiness protocol (`sd_notify(3)`): under `Type=notify` systemd holds
//! back the units that depend on corral, and reports the start as done, only once the
//! service sends `READY=1` as a datagram to the unix socket named by `NOTIFY_SOCKET`.
//! corral sends it once every shard accepts clients. Without `NOTIFY_SOCKET` (not
//! started by systemd) nothing is sent. A path starting with `@` names a socket in the
//! abstract namespace, as systemd's own client reads it.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixDatagram;

/// Sends `state` (newline-separated `KEY=value` assignments) to systemd. Ok(false) when
/// `NOTIFY_SOCKET` is not set.
pub fn notify(state: &str) -> io::Result<bool> {
    match std::env::var_os("NOTIFY_SOCKET") {
        Some(socket) => notify_to(&socket, state),
        None => Ok(false),
    }
}

/// Sends `state` to the socket a `NOTIFY_SOCKET` value names. Ok(false) when it is
/// empty.
fn notify_to(path: &std::ffi::OsStr, state: &str) -> io::Result<bool> {
    let sock = UnixDatagram::unbound()?;
    match path.as_bytes() {
        [] => return Ok(false),
        [b'@', name @ ..] => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            sock.send_to_addr(state.as_bytes(), &addr)?;
        }
        [b'/', ..] => {
            sock.send_to(state.as_bytes(), path)?;
        }
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "NOTIFY_SOCKET={}: only a path or an @abstract name is supported",
                    path.to_string_lossy()
                ),
            ))
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    // Through notify_to: setting NOTIFY_SOCKET would race other tests reading the
    // environment (tests/startup.rs checks the variable end to end).
    #[test]
    fn sends_to_a_path_and_to_an_abstract_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let rx = UnixDatagram::bind(&path).unwrap();
        assert!(notify_to(path.as_os_str(), "READY=1\nSTATUS=test").unwrap());
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=test");

        use std::os::linux::net::SocketAddrExt;
        let name = format!("corral-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let rx = UnixDatagram::bind_addr(&addr).unwrap();
        assert!(notify_to(OsStr::new(&format!("@{name}")), "READY=1").unwrap());
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");

        assert!(notify_to(OsStr::new("vsock:2:1234"), "READY=1").is_err());
        assert!(!notify_to(OsStr::new(""), "READY=1").unwrap());
    }
}
