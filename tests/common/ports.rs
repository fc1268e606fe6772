//! Loopback ports for test servers, shared by every harness (included by path where a
//! harness is its own crate root).
//!
//! Servers' ports are drawn from below the kernel's ephemeral range. A port handed out
//! by `bind(:0)` lies inside that range, and while its server is down (not started
//! yet, or killed for a restart) the kernel may give the same number to an outgoing
//! connection: the server then cannot bind it again, or a peer dialling it connects to
//! itself (TCP self-connect) and reads back its own election message.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// The kernel's ephemeral port range (`ip_local_port_range`).
pub fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|w| w.parse::<u16>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32768, 60999))
}

/// A loopback port below the ephemeral range that nothing is bound to now, that is not
/// in `taken` (which it joins), and that no other test of this process was handed:
/// tests run in parallel threads, and a port drawn by one but not yet bound would
/// otherwise look free to another.
pub fn fresh_port(taken: &mut Vec<u16>) -> u16 {
    use rand::Rng;
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let (lo, _) = ephemeral_range();
    let mut rng = rand::thread_rng();
    for _ in 0..1000 {
        let p = if lo > 12_000 {
            rng.gen_range(10_000..lo)
        } else {
            TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .expect("bind a port")
        };
        if !taken.contains(&p)
            && !handed_out.contains(&p)
            && TcpListener::bind(("127.0.0.1", p)).is_ok()
        {
            taken.push(p);
            handed_out.push(p);
            return p;
        }
    }
    panic!("no free port found");
}

/// Nothing listens on 127.0.0.1:`port`. A bind that succeeds says so; one that fails
/// may only mean TIME-WAIT sockets of a killed server's connections: then a refused
/// connect says nothing listens.
pub fn port_is_free(port: u16) -> bool {
    if TcpListener::bind(("127.0.0.1", port)).is_ok() {
        return true;
    }
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    matches!(
        TcpStream::connect_timeout(&addr, Duration::from_millis(500)),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
    )
}

/// What `ss -tanp` shows on `port` (sockets and their processes), for failure notes.
#[allow(dead_code)]
pub fn ss_port(port: u16) -> String {
    match std::process::Command::new("ss")
        .args(["-tanp", &format!("sport = :{port}")])
        .output()
    {
        Ok(o) => String::from_utf8_lossy(&o.stdout).trim_end().to_string(),
        Err(e) => format!("(ss failed: {e})"),
    }
}
