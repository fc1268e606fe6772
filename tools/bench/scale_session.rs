//! The sessions the scale scenarios hold by the thousand: a lean connection (a small
//! buffer, bound to a chosen source address so tens of thousands of connections do not
//! run out of ephemeral ports on one address pair), the tasks that keep idle sessions
//! alive and note every watch event with its arrival time, and a small pipelined
//! read/write load whose latencies are kept with their completion times (so a run can
//! be cut into windows: before and during an expiry storm).
//!
//! client.rs's `Conn` is built for throughput (64 KiB read buffer per session); here a
//! session costs the client a few hundred bytes until a large reply arrives.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use corral::proto::frame::next_frame;
use corral::proto::*;

use crate::client::{following_xid, open_acl, parse_reply, put_request, MAX_FRAME};

fn bad(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// Source address of the `i`-th connection: 4,000 connections per address of
/// 127.1.0.0/16, well inside the ~28k ephemeral ports each address pair offers, so
/// connections closed a moment ago (TIME_WAIT) never run them out.
pub fn source_addr(i: usize) -> IpAddr {
    let k = i / 4000;
    IpAddr::V4(Ipv4Addr::new(127, 1, (k / 250) as u8, (k % 250 + 1) as u8))
}

/// A reply that was not ZOK, as an error naming the op and the code.
pub fn check(what: &str, hdr: &ReplyHeader) -> io::Result<()> {
    if hdr.err == 0 {
        Ok(())
    } else {
        Err(io::Error::other(format!("{what}: error {}", hdr.err)))
    }
}

pub struct Lean {
    stream: TcpStream,
    rbuf: BytesMut,
    wbuf: BytesMut,
    pub session_id: i64,
    /// The session timeout the server granted.
    pub timeout_ms: i32,
    next_xid: i32,
    /// Watch events read while waiting for a reply, with their arrival time.
    pub events: Vec<(Instant, WatcherEvent)>,
}

impl Lean {
    /// A new session asking for `timeout_ms`, from `src` (any address if None).
    pub async fn connect(
        addr: SocketAddr,
        src: Option<IpAddr>,
        timeout_ms: i32,
    ) -> io::Result<Lean> {
        let sock = TcpSocket::new_v4()?;
        if let Some(ip) = src {
            sock.bind(SocketAddr::new(ip, 0))?;
        }
        let stream = sock.connect(addr).await?;
        stream.set_nodelay(true)?;
        let mut c = Lean {
            stream,
            rbuf: BytesMut::with_capacity(256),
            wbuf: BytesMut::with_capacity(128),
            session_id: 0,
            timeout_ms: 0,
            next_xid: 1,
            events: Vec::new(),
        };
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            time_out: timeout_ms,
            session_id: 0,
            passwd: Bytes::from_static(&[0u8; 16]),
            read_only: Some(false),
        };
        c.wbuf.put_i32(0);
        req.encode(&mut c.wbuf);
        let len = (c.wbuf.len() - 4) as i32;
        c.wbuf[..4].copy_from_slice(&len.to_be_bytes());
        c.flush().await?;
        let f = c.read_frame().await?;
        let rsp = ConnectResponse::from_bytes(&f).map_err(bad)?;
        if rsp.session_id == 0 || rsp.time_out <= 0 {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                "server refused the session",
            ));
        }
        c.session_id = rsp.session_id;
        c.timeout_ms = rsp.time_out;
        // The handshake buffers go back to the allocator: an idle session holds none.
        c.rbuf = BytesMut::new();
        c.wbuf = BytesMut::new();
        Ok(c)
    }

    pub fn xid(&mut self) -> i32 {
        let x = self.next_xid;
        self.next_xid = following_xid(x);
        x
    }

    pub fn push(&mut self, xid: i32, op: OpCode, body: Option<&dyn JuteDyn>) {
        put_request(&mut self.wbuf, xid, op, body);
    }

    pub async fn flush(&mut self) -> io::Result<()> {
        if !self.wbuf.is_empty() {
            self.stream.write_all(&self.wbuf).await?;
            self.wbuf.clear();
        }
        Ok(())
    }

    /// Reads what has arrived (at least one byte). Cancel-safe.
    pub async fn fill(&mut self) -> io::Result<()> {
        if self.rbuf.capacity() - self.rbuf.len() < 128 {
            self.rbuf.reserve(4096);
        }
        let n = self.stream.read_buf(&mut self.rbuf).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed the connection",
            ));
        }
        Ok(())
    }

    fn next_frame(&mut self) -> io::Result<Option<Bytes>> {
        next_frame(&mut self.rbuf, MAX_FRAME).map_err(bad)
    }

    pub async fn read_frame(&mut self) -> io::Result<Bytes> {
        loop {
            if let Some(f) = self.next_frame()? {
                if self.rbuf.is_empty() && self.rbuf.capacity() > 64 << 10 {
                    // A big reply (getChildren of a wide node) is not kept around.
                    self.rbuf = BytesMut::new();
                }
                return Ok(f);
            }
            self.fill().await?;
        }
    }

    /// The next frame that is not a ping reply; a watch event is returned as
    /// `Err(event)` after being noted in `events`.
    pub async fn next_reply(&mut self) -> io::Result<Result<(ReplyHeader, Bytes), WatcherEvent>> {
        loop {
            let f = self.read_frame().await?;
            let (hdr, body) = parse_reply(&f)?;
            if hdr.xid == xid::PING {
                continue;
            }
            if hdr.xid == xid::NOTIFICATION {
                let ev = WatcherEvent::from_bytes(&body).map_err(bad)?;
                self.events.push((Instant::now(), ev.clone()));
                return Ok(Err(ev));
            }
            return Ok(Ok((hdr, body)));
        }
    }

    /// One request, waiting for its reply; watch events on the way are noted.
    pub async fn call(
        &mut self,
        op: OpCode,
        body: Option<&dyn JuteDyn>,
    ) -> io::Result<(ReplyHeader, Bytes)> {
        let xid = self.xid();
        self.push(xid, op, body);
        self.flush().await?;
        loop {
            if let Ok((hdr, body)) = self.next_reply().await? {
                if hdr.xid == xid {
                    return Ok((hdr, body));
                }
                return Err(bad(format!(
                    "reply xid {} while waiting for {xid}",
                    hdr.xid
                )));
            }
        }
    }

    /// `reqs` sent pipelined, at most `window` in flight; every reply must be ZOK.
    /// Returns the replies' bodies in order.
    pub async fn pipeline(
        &mut self,
        what: &str,
        reqs: &[(OpCode, Box<dyn JuteDyn + Send + Sync>)],
        window: usize,
    ) -> io::Result<Vec<Bytes>> {
        let mut out = Vec::with_capacity(reqs.len());
        let mut inflight = VecDeque::new();
        let mut next = 0;
        while out.len() < reqs.len() {
            while next < reqs.len() && inflight.len() < window.max(1) {
                let xid = self.xid();
                let (op, body) = &reqs[next];
                self.push(xid, *op, Some(body.as_ref()));
                inflight.push_back(xid);
                next += 1;
            }
            self.flush().await?;
            if let Ok((hdr, body)) = self.next_reply().await? {
                let want = inflight
                    .pop_front()
                    .ok_or_else(|| bad("reply with none in flight"))?;
                if hdr.xid != want {
                    return Err(bad(format!("{what}: reply xid {} for {want}", hdr.xid)));
                }
                check(what, &hdr)?;
                out.push(body);
            }
        }
        Ok(out)
    }

    pub async fn create(&mut self, path: &str, data: &[u8], mode: CreateMode) -> io::Result<()> {
        let req = CreateRequest {
            path: path.into(),
            data: Bytes::copy_from_slice(data),
            acl: open_acl(),
            flags: mode.flags(),
        };
        let (hdr, _) = self.call(OpCode::Create, Some(&req)).await?;
        check(&format!("create {path}"), &hdr)
    }

    /// Creates `path` unless it exists (the scenarios' fixed parents).
    pub async fn ensure(&mut self, path: &str) -> io::Result<()> {
        let req = ExistsRequest {
            path: path.into(),
            watch: false,
        };
        let (hdr, _) = self.call(OpCode::Exists, Some(&req)).await?;
        if hdr.err == 0 {
            return Ok(());
        }
        self.create(path, b"", CreateMode::Persistent).await
    }

    pub async fn children(&mut self, path: &str, watch: bool) -> io::Result<Vec<String>> {
        let req = GetChildrenRequest {
            path: path.into(),
            watch,
        };
        let (hdr, body) = self.call(OpCode::GetChildren, Some(&req)).await?;
        check(&format!("getChildren {path}"), &hdr)?;
        Ok(GetChildrenResponse::from_bytes(&body)
            .map_err(bad)?
            .children)
    }

    /// Keeps the session alive until `stop` is set, pinging every third of its
    /// timeout and noting every watch event (in `events`, and counted in `seen`).
    /// Any error ends it.
    pub async fn hold(
        mut self,
        stop: Arc<AtomicBool>,
        seen: Option<Arc<AtomicUsize>>,
    ) -> io::Result<Lean> {
        let every = Duration::from_millis((self.timeout_ms / 3).max(100) as u64);
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        let mut last_ping = Instant::now();
        loop {
            tokio::select! {
                r = self.fill() => {
                    r?;
                    while let Some(f) = self.next_frame()? {
                        let (hdr, body) = parse_reply(&f)?;
                        if hdr.xid == xid::NOTIFICATION {
                            let ev = WatcherEvent::from_bytes(&body).map_err(bad)?;
                            self.events.push((Instant::now(), ev));
                            if let Some(n) = &seen {
                                n.fetch_add(1, Relaxed);
                            }
                        } else if hdr.xid != xid::PING {
                            return Err(bad(format!("unexpected reply xid {} on an idle session", hdr.xid)));
                        }
                    }
                }
                _ = tick.tick() => {
                    if stop.load(Relaxed) {
                        return Ok(self);
                    }
                    if last_ping.elapsed() >= every {
                        put_request(&mut self.wbuf, xid::PING, OpCode::Ping, None);
                        self.flush().await?;
                        last_ping = Instant::now();
                    }
                }
            }
        }
    }
}

/// What a load session sends.
#[derive(Clone, Copy, Debug)]
pub enum LoadKind {
    Read,
    Write,
    /// Reads with this probability, else writes.
    Mixed(f64),
}

/// One completed op: when it completed (µs from the load's origin), its latency (µs)
/// and whether it was a write.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub done_us: u64,
    pub lat_us: u32,
    pub write: bool,
}

pub struct LoadSpec {
    pub addr: SocketAddr,
    pub sessions: usize,
    pub inflight: usize,
    pub kind: LoadKind,
    /// The keys read and written (existing znodes).
    pub keys: Arc<Vec<String>>,
    pub value: Bytes,
}

/// The load's outcome: samples of successful ops, errors by code.
#[derive(Default)]
pub struct LoadOut {
    pub samples: Vec<Sample>,
    pub errors: std::collections::BTreeMap<i32, u64>,
}

/// Runs the load on its own thread (its own runtime) until `stop` is set; `origin` is
/// the instant samples' `done_us` count from.
pub fn spawn_load(
    spec: LoadSpec,
    origin: Instant,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<io::Result<LoadOut>> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async move {
            let spec = Arc::new(spec);
            let mut tasks = Vec::new();
            for s in 0..spec.sessions {
                let spec = spec.clone();
                let stop = stop.clone();
                tasks.push(tokio::spawn(async move {
                    load_session(&spec, s, origin, stop).await
                }));
            }
            let mut out = LoadOut::default();
            for t in tasks {
                let o = t.await.map_err(io::Error::other)??;
                out.samples.extend(o.samples);
                for (k, v) in o.errors {
                    *out.errors.entry(k).or_default() += v;
                }
            }
            out.samples.sort_by_key(|s| s.done_us);
            Ok(out)
        })
    })
}

async fn load_session(
    spec: &LoadSpec,
    s: usize,
    origin: Instant,
    stop: Arc<AtomicBool>,
) -> io::Result<LoadOut> {
    let mut c = Lean::connect(spec.addr, None, crate::client::SESSION_TIMEOUT_MS).await?;
    let mut out = LoadOut::default();
    let mut inflight: VecDeque<(i32, Instant, bool)> = VecDeque::new();
    let mut rng = (s as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut rand = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    loop {
        let stopping = stop.load(Relaxed);
        while !stopping && inflight.len() < spec.inflight {
            let r = rand();
            let key = &spec.keys[(r % spec.keys.len() as u64) as usize];
            let write = match spec.kind {
                LoadKind::Read => false,
                LoadKind::Write => true,
                LoadKind::Mixed(p) => ((r >> 32) as f64 / u32::MAX as f64) >= p,
            };
            let xid = c.xid();
            if write {
                let req = SetDataRequest {
                    path: key.clone(),
                    data: spec.value.clone(),
                    version: -1,
                };
                c.push(xid, OpCode::SetData, Some(&req));
            } else {
                let req = GetDataRequest {
                    path: key.clone(),
                    watch: false,
                };
                c.push(xid, OpCode::GetData, Some(&req));
            }
            inflight.push_back((xid, Instant::now(), write));
        }
        c.flush().await?;
        if inflight.is_empty() {
            return Ok(out);
        }
        let (hdr, _) = match c.next_reply().await? {
            Ok(r) => r,
            Err(_) => continue,
        };
        let (want, sent, write) = inflight
            .pop_front()
            .ok_or_else(|| bad("reply with none in flight"))?;
        if hdr.xid != want {
            return Err(bad(format!("load: reply xid {} for {want}", hdr.xid)));
        }
        let now = Instant::now();
        if hdr.err != 0 {
            *out.errors.entry(hdr.err).or_default() += 1;
            continue;
        }
        out.samples.push(Sample {
            done_us: now.duration_since(origin).as_micros() as u64,
            lat_us: now.duration_since(sent).as_micros().min(u32::MAX as u128) as u32,
            write,
        });
    }
}

/// p50, p99, p99.9 and max (µs) of `lats`, or None when empty.
pub fn percentiles(lats: &mut [u32]) -> Option<[f64; 4]> {
    if lats.is_empty() {
        return None;
    }
    lats.sort_unstable();
    let at =
        |q: f64| lats[(((lats.len() as f64) * q).ceil() as usize).clamp(1, lats.len()) - 1] as f64;
    Some([at(0.50), at(0.99), at(0.999), *lats.last().unwrap() as f64])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let mut v: Vec<u32> = (1..=1000).rev().collect();
        assert_eq!(percentiles(&mut v), Some([500.0, 990.0, 999.0, 1000.0]));
        assert_eq!(percentiles(&mut []), None);
        assert_eq!(percentiles(&mut [7]), Some([7.0; 4]));
    }

    #[test]
    fn source_addresses_stay_in_loopback_and_change_every_4000() {
        assert_eq!(source_addr(0), IpAddr::V4(Ipv4Addr::new(127, 1, 0, 1)));
        assert_eq!(source_addr(3999), source_addr(0));
        assert_eq!(source_addr(4000), IpAddr::V4(Ipv4Addr::new(127, 1, 0, 2)));
        assert_eq!(
            source_addr(4000 * 250),
            IpAddr::V4(Ipv4Addr::new(127, 1, 1, 1))
        );
    }
}
