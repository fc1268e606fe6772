//! The quorum wire protocol's records, byte for byte as ZooKeeper 3.8 writes them
//! (§0.1, §1.1-1.3, §2.2-2.3, §3.3-3.4 of the protocol notes). This module owns the
//! bytes of both server-to-server ports and nothing else: what a packet means and when
//! it is sent belongs to the leader/learner/election cores.
//!
//! - Quorum port (2888): back-to-back jute `QuorumPacket`s with **no length prefix**
//!   (`oa.writeRecord(qp, "packet")`), so [`decode_packet`] works on a growing stream
//!   buffer and says how much it consumed. The small payloads carried in
//!   `QuorumPacket.data` (LearnerInfo, LEADERINFO, ACKEPOCH, the PING touch table,
//!   REVALIDATE, the REQUEST header) are plain `DataOutputStream` writes in ZooKeeper,
//!   not jute records, and have their helpers here.
//! - Election port (3888): one unframed initial message ([`InitialMessage`]), then
//!   int32-length-prefixed frames ([`decode_frame`]) each holding one FLE
//!   [`Notification`].
//!
//! Everything here is fed by peers, so no decoder panics: every length and count is
//! checked against a limit and against the bytes present before anything is allocated.
//! Txn records (PROPOSAL/INFORM data) live in [`super::zk_txn`].

use std::net::IpAddr;
use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};

use super::ServerState;
use crate::proto::{DecodeError, Id, Jute, Reader};

/// Why bytes from a peer were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error(transparent)]
    Jute(#[from] DecodeError),
    #[error("{what}: length {len} is over the limit {max}")]
    TooLong {
        what: &'static str,
        len: i64,
        max: usize,
    },
    #[error("{what}: invalid length {len}")]
    BadLength { what: &'static str, len: i64 },
    #[error("{what}: needs {needed} bytes, {got} present")]
    Short {
        what: &'static str,
        needed: usize,
        got: usize,
    },
    #[error("unrecognized initial message protocol version {0}")]
    UnknownProtocolVersion(i64),
    #[error("badly formed election address {0:?}")]
    BadAddress(String),
    #[error("unsupported txn type {0}")]
    UnsupportedTxnType(i32),
    #[error("invalid type of op {0} in a multi")]
    InvalidMultiOp(i32),
    #[error("{0}")]
    Malformed(&'static str),
    #[error("{0} unexpected trailing bytes")]
    TrailingBytes(usize),
}

// ---- Quorum port packet types (`Leader.java`), §2.3 ----

pub const REQUEST: i32 = 1;
pub const PROPOSAL: i32 = 2;
pub const ACK: i32 = 3;
pub const COMMIT: i32 = 4;
pub const PING: i32 = 5;
pub const REVALIDATE: i32 = 6;
pub const SYNC: i32 = 7;
pub const INFORM: i32 = 8;
pub const COMMITANDACTIVATE: i32 = 9;
pub const NEWLEADER: i32 = 10;
pub const FOLLOWERINFO: i32 = 11;
pub const UPTODATE: i32 = 12;
pub const DIFF: i32 = 13;
pub const TRUNC: i32 = 14;
pub const SNAP: i32 = 15;
pub const OBSERVERINFO: i32 = 16;
pub const LEADERINFO: i32 = 17;
pub const ACKEPOCH: i32 = 18;
pub const INFORMANDACTIVATE: i32 = 19;

/// `Leader.getPacketType`, for logs.
pub fn packet_type_name(typ: i32) -> &'static str {
    match typ {
        REQUEST => "REQUEST",
        PROPOSAL => "PROPOSAL",
        ACK => "ACK",
        COMMIT => "COMMIT",
        PING => "PING",
        REVALIDATE => "REVALIDATE",
        SYNC => "SYNC",
        INFORM => "INFORM",
        COMMITANDACTIVATE => "COMMITANDACTIVATE",
        NEWLEADER => "NEWLEADER",
        FOLLOWERINFO => "FOLLOWERINFO",
        UPTODATE => "UPTODATE",
        DIFF => "DIFF",
        TRUNC => "TRUNC",
        SNAP => "SNAP",
        OBSERVERINFO => "OBSERVERINFO",
        LEADERINFO => "LEADERINFO",
        ACKEPOCH => "ACKEPOCH",
        INFORMANDACTIVATE => "INFORMANDACTIVATE",
        _ => "UNKNOWN",
    }
}

/// The Zab 1.0 learner protocol version (`0x10000`), sent in LearnerInfo and
/// LEADERINFO. Below it a leader takes the pre-1.0 path, which we never use.
pub const PROTOCOL_VERSION: i32 = 0x10000;

/// `LearnerHandler.version` before LearnerInfo is parsed: what a leader assumes when
/// FOLLOWERINFO data is too short to carry a protocol version.
pub const LEARNER_HANDLER_DEFAULT_VERSION: i32 = 0x1;

/// A cap on `QuorumPacket.authinfo`. Jute does not bound vector counts; a learner
/// forwards one client connection's ids (ip plus a few digest/SASL/x509 ids), so a
/// count past this is hostile and refused before anything is reserved.
pub const MAX_AUTHINFO: usize = 1024;

/// `QuorumPacket { int type; long zxid; buffer data; vector<Id> authinfo }`.
/// `None` is jute's null (length/count -1), which ZooKeeper keeps apart from empty:
/// every packet but REQUEST carries a null authinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumPacket {
    pub typ: i32,
    pub zxid: i64,
    pub data: Option<Bytes>,
    pub authinfo: Option<Vec<Id>>,
}

impl QuorumPacket {
    /// A packet with null authinfo (all types but REQUEST).
    pub fn new(typ: i32, zxid: i64, data: Option<Bytes>) -> Self {
        QuorumPacket {
            typ,
            zxid,
            data,
            authinfo: None,
        }
    }

    pub fn encode(&self, out: &mut BytesMut) {
        out.put_i32(self.typ);
        out.put_i64(self.zxid);
        match &self.data {
            None => out.put_i32(-1),
            Some(d) => {
                out.put_i32(d.len() as i32);
                out.put_slice(d);
            }
        }
        match &self.authinfo {
            None => out.put_i32(-1),
            Some(ids) => ids.encode(out),
        }
    }
}

/// A cursor for sizing a record on a stream before decoding it: `None` means the
/// record runs past the bytes received so far.
struct Scan<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Scan<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Scan { buf, pos: 0 }
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
}

/// Unwraps a [`Scan`] read, or reports that more bytes are needed.
macro_rules! need {
    ($e:expr) => {
        match $e {
            Some(v) => v,
            None => return Ok(None),
        }
    };
}

/// Checks a jute `buffer`/`ustring` length as `BinaryInputArchive.checkLength` does:
/// -1 is null, other negatives and anything over `max` are refused.
fn check_len(what: &'static str, len: i32, max: usize) -> Result<Option<usize>, WireError> {
    if len == -1 {
        return Ok(None);
    }
    if len < 0 {
        return Err(WireError::BadLength {
            what,
            len: len as i64,
        });
    }
    if len as usize > max {
        return Err(WireError::TooLong {
            what,
            len: len as i64,
            max,
        });
    }
    Ok(Some(len as usize))
}

/// Skips a jute `buffer`/`ustring` on a stream, refusing a bad length before waiting
/// for its bytes (a hostile length must not make us buffer forever).
fn scan_raw(s: &mut Scan<'_>, what: &'static str, max: usize) -> Result<Option<()>, WireError> {
    let len = need!(s.i32());
    if let Some(n) = check_len(what, len, max)? {
        need!(s.take(n));
    }
    Ok(Some(()))
}

/// The length of the `QuorumPacket` at the start of `buf`, `None` if it is not all
/// there yet.
fn scan_packet(buf: &[u8], max_buffer: usize) -> Result<Option<usize>, WireError> {
    let mut s = Scan::new(buf);
    need!(s.take(4 + 8));
    need!(scan_raw(&mut s, "QuorumPacket.data", max_buffer)?);
    let count = need!(s.i32());
    if count != -1 {
        if count < 0 {
            return Err(WireError::BadLength {
                what: "QuorumPacket.authinfo",
                len: count as i64,
            });
        }
        if count as usize > MAX_AUTHINFO {
            return Err(WireError::TooLong {
                what: "QuorumPacket.authinfo",
                len: count as i64,
                max: MAX_AUTHINFO,
            });
        }
        for _ in 0..count {
            need!(scan_raw(&mut s, "Id.scheme", max_buffer)?);
            need!(scan_raw(&mut s, "Id.id", max_buffer)?);
        }
    }
    Ok(Some(s.pos))
}

/// Decodes the `QuorumPacket` at the start of a stream buffer: `Ok(None)` when more
/// bytes are needed, otherwise the packet and how many bytes it took (after a SNAP,
/// the snapshot stream starts right there). `max_buffer` bounds `data` and each
/// authinfo string, as `jute.maxbuffer` (+ extrasize) does in ZooKeeper.
///
/// The packet is sized first without allocating and decoded only once complete, so a
/// packet trickling in costs no repeated copies.
pub fn decode_packet(
    buf: &[u8],
    max_buffer: usize,
) -> Result<Option<(QuorumPacket, usize)>, WireError> {
    let Some(len) = scan_packet(buf, max_buffer)? else {
        return Ok(None);
    };
    let r = &mut Reader::new(&buf[..len]);
    let typ = r.read_i32()?;
    let zxid = r.read_i64()?;
    let data = r.read_raw()?.map(Bytes::copy_from_slice);
    let authinfo = match r.read_count()? {
        None => None,
        Some(n) => {
            let mut ids = Vec::with_capacity(n);
            for _ in 0..n {
                ids.push(Id::decode(r)?);
            }
            Some(ids)
        }
    };
    Ok(Some((
        QuorumPacket {
            typ,
            zxid,
            data,
            authinfo,
        },
        len,
    )))
}

/// Reads a jute `ustring`, refusing it over `max` before copying. Null reads as "",
/// as [`crate::proto::Jute`] does for `String`.
pub(super) fn read_ustring(
    r: &mut Reader<'_>,
    what: &'static str,
    max: usize,
) -> Result<String, WireError> {
    match r.read_raw()? {
        None => Ok(String::new()),
        Some(b) if b.len() > max => Err(WireError::TooLong {
            what,
            len: b.len() as i64,
            max,
        }),
        Some(b) => std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| WireError::Jute(DecodeError::BadUtf8)),
    }
}

/// Reads a jute `buffer`, refusing it over `max` before copying. Null reads as
/// [`crate::proto::jute::null_buffer`], so a znode created with null data stays null.
pub(super) fn read_buffer(
    r: &mut Reader<'_>,
    what: &'static str,
    max: usize,
) -> Result<Bytes, WireError> {
    match r.read_raw()? {
        None => Ok(crate::proto::jute::null_buffer()),
        Some(b) if b.len() > max => Err(WireError::TooLong {
            what,
            len: b.len() as i64,
            max,
        }),
        Some(b) => Ok(Bytes::copy_from_slice(b)),
    }
}

/// Reads a big-endian value from a `DataOutputStream`-written payload, naming the
/// payload when it is too short (ZooKeeper would die on a BufferUnderflowException).
fn need_bytes(data: &[u8], what: &'static str, needed: usize) -> Result<(), WireError> {
    if data.len() < needed {
        return Err(WireError::Short {
            what,
            needed,
            got: data.len(),
        });
    }
    Ok(())
}

fn be_i32(b: &[u8]) -> i32 {
    i32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn be_i64(b: &[u8]) -> i64 {
    i64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

// ---- Quorum port payloads ----

/// `LearnerInfo { long serverid; int protocolVersion; long configVersion }`: the data
/// of FOLLOWERINFO / OBSERVERINFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LearnerInfo {
    pub server_id: i64,
    pub protocol_version: i32,
    pub config_version: i64,
}

/// A LearnerInfo as a leader reads it: old learners sent shorter data, so each field
/// is there only if the data is long enough.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceivedLearnerInfo {
    /// `None` below 8 bytes.
    pub server_id: Option<i64>,
    /// [`LEARNER_HANDLER_DEFAULT_VERSION`] below 12 bytes.
    pub protocol_version: i32,
    /// `None` below 20 bytes (then the leader skips its "ahead of the leader" check).
    pub config_version: Option<i64>,
}

impl LearnerInfo {
    pub const ENCODED_LEN: usize = 20;

    pub fn encode(&self, out: &mut BytesMut) {
        out.put_i64(self.server_id);
        out.put_i32(self.protocol_version);
        out.put_i64(self.config_version);
    }

    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(Self::ENCODED_LEN);
        self.encode(&mut out);
        out.freeze()
    }

    /// Reads the fields present, as `LearnerHandler.run` does (sid if >= 8 bytes,
    /// protocolVersion if >= 12, configVersion if >= 20; extra bytes are ignored).
    /// Null data is the caller's case: ZooKeeper then gives the learner a made-up
    /// negative sid (`getAndDecrementFollowerCounter`).
    pub fn decode(data: &[u8]) -> ReceivedLearnerInfo {
        ReceivedLearnerInfo {
            server_id: (data.len() >= 8).then(|| be_i64(&data[0..8])),
            protocol_version: if data.len() >= 12 {
                be_i32(&data[8..12])
            } else {
                LEARNER_HANDLER_DEFAULT_VERSION
            },
            config_version: (data.len() >= 20).then(|| be_i64(&data[12..20])),
        }
    }
}

/// LEADERINFO data: the leader's protocol version (always [`PROTOCOL_VERSION`]).
pub fn leader_info_data(protocol_version: i32) -> Bytes {
    Bytes::copy_from_slice(&protocol_version.to_be_bytes())
}

/// The protocol version in LEADERINFO data (`Learner.registerWithLeader`).
pub fn decode_leader_info(data: &[u8]) -> Result<i32, WireError> {
    need_bytes(data, "LEADERINFO data", 4)?;
    Ok(be_i32(data))
}

/// ACKEPOCH data: the learner's `currentEpoch` when it accepted a new epoch, `None`
/// (written -1) when LEADERINFO repeated its accepted epoch. ZooKeeper writes
/// `(int) currentEpoch`, so the epoch is truncated to 32 bits as there.
pub fn ack_epoch_data(current_epoch: Option<i64>) -> Bytes {
    let v = current_epoch.map_or(-1, |e| e as i32);
    Bytes::copy_from_slice(&v.to_be_bytes())
}

/// The epoch in ACKEPOCH data; `None` for -1 (not an epoch ack, though the leader
/// still syncs from the packet's zxid: `Leader.waitForEpochAck`).
pub fn decode_ack_epoch(data: &[u8]) -> Result<Option<i64>, WireError> {
    need_bytes(data, "ACKEPOCH data", 4)?;
    let v = be_i32(data);
    Ok((v != -1).then_some(v as i64))
}

/// One entry of a PING reply's touch table (`LearnerSessionTracker.snapshot`): a
/// global session touched on the learner since the last ping, and its timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTouch {
    pub session_id: i64,
    pub timeout: i32,
}

/// A learner's PING reply data: `(int64 sessionId, int32 timeout)` repeated, no count.
pub fn ping_reply_data(touches: &[SessionTouch]) -> Bytes {
    let mut out = BytesMut::with_capacity(touches.len() * 12);
    for t in touches {
        out.put_i64(t.session_id);
        out.put_i32(t.timeout);
    }
    out.freeze()
}

/// The touch table of a learner's PING reply. The leader reads pairs until the data
/// runs out (`LearnerHandler.run`), so a partial pair is an error (an EOFException that
/// drops the learner in ZooKeeper).
pub fn decode_touch_table(data: &[u8]) -> Result<Vec<SessionTouch>, WireError> {
    if !data.len().is_multiple_of(12) {
        return Err(WireError::Malformed(
            "PING touch table ends in a partial entry",
        ));
    }
    Ok(data
        .chunks_exact(12)
        .map(|c| SessionTouch {
            session_id: be_i64(&c[0..8]),
            timeout: be_i32(&c[8..12]),
        })
        .collect())
}

/// REVALIDATE from a learner (`Learner.validateSession`): a reconnecting client's
/// global session, to be touched and owned by that learner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevalidateRequest {
    pub session_id: i64,
    pub timeout: i32,
}

impl RevalidateRequest {
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(12);
        out.put_i64(self.session_id);
        out.put_i32(self.timeout);
        out.freeze()
    }

    /// Extra bytes are ignored, as the leader's `DataInputStream` reads do.
    pub fn decode(data: &[u8]) -> Result<Self, WireError> {
        need_bytes(data, "REVALIDATE data", 12)?;
        Ok(RevalidateRequest {
            session_id: be_i64(&data[0..8]),
            timeout: be_i32(&data[8..12]),
        })
    }
}

/// The leader's REVALIDATE answer (`Leader.revalidateSession`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevalidateReply {
    pub session_id: i64,
    pub valid: bool,
}

impl RevalidateReply {
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(9);
        out.put_i64(self.session_id);
        out.put_u8(self.valid as u8);
        out.freeze()
    }

    /// `valid` is any non-zero byte (`DataInputStream.readBoolean`).
    pub fn decode(data: &[u8]) -> Result<Self, WireError> {
        need_bytes(data, "REVALIDATE reply data", 9)?;
        Ok(RevalidateReply {
            session_id: be_i64(&data[0..8]),
            valid: data[8] != 0,
        })
    }
}

/// REQUEST data (`Learner.request`): a client write a learner forwards, as
/// `int64 sessionId, int32 cxid, int32 type` then the client's request body (the bytes
/// after its `RequestHeader`; see [`super::zk_txn::encode_request`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LearnerRequest {
    pub session_id: i64,
    pub cxid: i32,
    /// The request's opcode (`OpCode` value).
    pub typ: i32,
    pub body: Bytes,
}

impl LearnerRequest {
    pub const HEADER_LEN: usize = 16;

    pub fn encode(&self, out: &mut BytesMut) {
        out.put_i64(self.session_id);
        out.put_i32(self.cxid);
        out.put_i32(self.typ);
        out.put_slice(&self.body);
    }

    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(Self::HEADER_LEN + self.body.len());
        self.encode(&mut out);
        out.freeze()
    }

    /// Splits REQUEST data; the body shares `data`'s storage.
    pub fn decode(data: &Bytes) -> Result<Self, WireError> {
        need_bytes(data, "REQUEST data", Self::HEADER_LEN)?;
        Ok(LearnerRequest {
            session_id: be_i64(&data[0..8]),
            cxid: be_i32(&data[8..12]),
            typ: be_i32(&data[12..16]),
            body: data.slice(Self::HEADER_LEN..),
        })
    }
}

// ---- Election port (QuorumCnxManager), §1.1-1.2 ----

/// `QuorumCnxManager.PROTOCOL_VERSION_V1`: one election address.
pub const PROTOCOL_VERSION_V1: i64 = -65536;
/// `PROTOCOL_VERSION_V2`: `|`-separated addresses (`multiAddress.enabled`).
pub const PROTOCOL_VERSION_V2: i64 = -65535;
/// `QuorumCnxManager.maxBuffer`: the longest address string an initial message may carry.
pub const INITIAL_MESSAGE_MAX_ADDR_LEN: usize = 2048;
/// `QuorumCnxManager.PACKETMAXSIZE`: the largest election frame payload.
pub const PACKETMAXSIZE: usize = 512 * 1024;

/// The first bytes on an election connection, from the dialling side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialMessage {
    /// [`PROTOCOL_VERSION_V1`] or [`PROTOCOL_VERSION_V2`]. A non-negative value is the
    /// pre-3.5 form, whose only content is the sid: decoding one gives
    /// `protocol_version == sid`, and encoding one writes the sid alone.
    pub protocol_version: i64,
    pub sid: i64,
    /// The sender's election addresses, `host:port` (`[v6]:port`), wildcard addresses
    /// dropped on decode as ZooKeeper does.
    pub addrs: Vec<String>,
}

impl InitialMessage {
    /// The message corral sends: V1 with its one election address, as ZooKeeper does
    /// unless `multiAddress.enabled`.
    pub fn v1(sid: i64, addr: impl Into<String>) -> Self {
        InitialMessage {
            protocol_version: PROTOCOL_VERSION_V1,
            sid,
            addrs: vec![addr.into()],
        }
    }

    /// Writes the message. A Java receiver requires the joined address to be 1..=2048
    /// bytes; V1 should carry exactly one address.
    pub fn encode(&self, out: &mut BytesMut) {
        if self.protocol_version >= 0 {
            out.put_i64(self.sid);
            return;
        }
        out.put_i64(self.protocol_version);
        out.put_i64(self.sid);
        let addr = self.addrs.join("|");
        out.put_i32(addr.len() as i32);
        out.put_slice(addr.as_bytes());
    }

    /// Decodes the initial message at the start of a stream buffer, following
    /// `QuorumCnxManager.handleConnection` and `InitialMessage.parse`: `Ok(None)` when
    /// more bytes are needed, else the message and the bytes it took. Unknown negative
    /// versions, address lengths outside 1..=2048 and badly formed addresses are
    /// errors (ZooKeeper closes the socket), decided as soon as the bytes that show
    /// them are present.
    pub fn decode(buf: &[u8]) -> Result<Option<(InitialMessage, usize)>, WireError> {
        let mut s = Scan::new(buf);
        let version = need!(s.i64());
        if version >= 0 {
            let msg = InitialMessage {
                protocol_version: version,
                sid: version,
                addrs: Vec::new(),
            };
            return Ok(Some((msg, s.pos)));
        }
        if version != PROTOCOL_VERSION_V1 && version != PROTOCOL_VERSION_V2 {
            return Err(WireError::UnknownProtocolVersion(version));
        }
        let sid = need!(s.i64());
        let len = need!(s.i32());
        if len <= 0 || len as usize > INITIAL_MESSAGE_MAX_ADDR_LEN {
            return Err(WireError::BadLength {
                what: "initial message address",
                len: len as i64,
            });
        }
        let raw = need!(s.take(len as usize));
        let text = std::str::from_utf8(raw)
            .map_err(|_| WireError::BadAddress(String::from_utf8_lossy(raw).into_owned()))?;
        let addrs = parse_election_addrs(text)?;
        let msg = InitialMessage {
            protocol_version: version,
            sid,
            addrs,
        };
        Ok(Some((msg, s.pos)))
    }
}

/// `InitialMessage.parse`'s address handling: split on `|` (for V1 too, and like
/// Java's `String.split` dropping trailing empty pieces), each piece must be
/// `host:port` or `[v6]:port` with a numeric port (`ConfigUtils.getHostAndPort`), and
/// wildcard addresses are dropped. Unlike ZooKeeper we resolve no names: only literal
/// wildcards (`0.0.0.0`, `::`) are recognised, and an empty host or a port outside
/// 0..=65535 is refused here rather than failing later.
fn parse_election_addrs(text: &str) -> Result<Vec<String>, WireError> {
    let mut pieces: Vec<&str> = text.split('|').collect();
    while pieces.last() == Some(&"") {
        pieces.pop();
    }
    let mut addrs = Vec::with_capacity(pieces.len());
    for piece in pieces {
        let bad = || WireError::BadAddress(piece.to_string());
        let (host, port) = if let Some(rest) = piece.strip_prefix('[') {
            let close = rest.find(']').ok_or_else(bad)?;
            // getHostAndPort skips the one character after ']' without checking it.
            let after = rest.get(close + 2..).filter(|a| !a.is_empty());
            let after = after.ok_or_else(bad)?;
            (&rest[..close], after)
        } else {
            let mut it = piece.split(':');
            let host = it.next().unwrap_or("");
            let port = it.next().ok_or_else(bad)?;
            if it.next().is_some() {
                return Err(bad());
            }
            (host, port)
        };
        if host.is_empty() || port.contains(':') {
            return Err(bad());
        }
        port.parse::<u16>().map_err(|_| bad())?;
        let wildcard = host.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified());
        if !wildcard {
            addrs.push(piece.to_string());
        }
    }
    Ok(addrs)
}

/// Appends one election frame: int32 length then `payload`.
pub fn encode_frame(payload: &[u8], out: &mut BytesMut) {
    out.put_i32(payload.len() as i32);
    out.put_slice(payload);
}

/// Splits the election frame at the start of a stream buffer (`RecvWorker.run`):
/// `Ok(None)` when more bytes are needed, else the payload's range in `buf` and the
/// bytes the frame took. A length <= 0 or over [`PACKETMAXSIZE`] is an error (ZooKeeper
/// drops the connection), reported from the 4 length bytes alone.
pub fn decode_frame(buf: &[u8]) -> Result<Option<(Range<usize>, usize)>, WireError> {
    let mut s = Scan::new(buf);
    let len = need!(s.i32());
    if len <= 0 {
        return Err(WireError::BadLength {
            what: "election frame",
            len: len as i64,
        });
    }
    if len as usize > PACKETMAXSIZE {
        return Err(WireError::TooLong {
            what: "election frame",
            len: len as i64,
            max: PACKETMAXSIZE,
        });
    }
    need!(s.take(len as usize));
    Ok(Some((4..s.pos, s.pos)))
}

/// A fast-leader-election notification (§1.3): what a server proposes or believes.
/// The sender's sid is not in it: it comes from the connection's initial message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The sender's state.
    pub state: ServerState,
    /// The proposed (or believed) leader's sid.
    pub leader: i64,
    /// The proposed leader's last zxid.
    pub zxid: i64,
    /// The sender's `logicalclock` (election round).
    pub election_epoch: i64,
    /// The proposed leader's epoch.
    pub peer_epoch: i64,
    /// `Notification.CURRENTVERSION` = 2 when sent; 0 for the 28- and 40-byte forms.
    pub version: i32,
    /// `QuorumVerifier.toString()` in UTF-8.
    pub config: Bytes,
}

impl Notification {
    /// `Notification.CURRENTVERSION`.
    pub const CURRENT_VERSION: i32 = 2;

    /// Writes the 44+N-byte version-2 form (`FastLeaderElection.buildMsg`). `version`
    /// is not consulted: we only ever send the current form, which every 3.5+ peer
    /// reads and which is the only one that carries the config.
    pub fn encode(&self, out: &mut BytesMut) {
        out.put_i32(self.state as i32);
        out.put_i64(self.leader);
        out.put_i64(self.zxid);
        out.put_i64(self.election_epoch);
        out.put_i64(self.peer_epoch);
        out.put_i32(Self::CURRENT_VERSION);
        out.put_i32(self.config.len() as i32);
        out.put_slice(&self.config);
    }

    /// Reads a notification payload as `WorkerReceiver.run` does; `None` for what it
    /// skips: under 28 bytes, a buffer underflow, a bad config length, or a state
    /// outside LOOKING..OBSERVING. Exactly 28 bytes is the pre-3.4 form (peerEpoch is
    /// the zxid's epoch), exactly 40 has peerEpoch but no version; otherwise version is
    /// read and, when > 1, the config. Bytes after the config are ignored, as there.
    pub fn decode(payload: &[u8]) -> Option<Notification> {
        if payload.len() < 28 {
            return None;
        }
        let r = &mut Reader::new(payload);
        let state = r.read_i32().ok()?;
        let leader = r.read_i64().ok()?;
        let zxid = r.read_i64().ok()?;
        let election_epoch = r.read_i64().ok()?;
        let mut version = 0;
        let mut config = Bytes::new();
        let peer_epoch = if payload.len() == 28 {
            super::zxid::epoch_of(zxid)
        } else {
            let peer_epoch = r.read_i64().ok()?;
            if payload.len() != 40 {
                version = r.read_i32().ok()?;
            }
            peer_epoch
        };
        if version > 1 {
            let len = r.read_i32().ok()?;
            if len < 0 || len as usize > payload.len() {
                return None;
            }
            let start = r.position();
            let have = r.remaining();
            if len as usize > have {
                return None;
            }
            config = Bytes::copy_from_slice(&payload[start..start + len as usize]);
        }
        Some(Notification {
            state: ServerState::from_i32(state)?,
            leader,
            zxid,
            election_epoch,
            peer_epoch,
            version,
            config,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// A tiny xorshift, so garbage tests are reproducible without a seeded RNG crate.
    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.next() as u8).collect()
        }
    }

    const MAX: usize = 1 << 20;

    fn ids() -> Vec<Id> {
        vec![
            Id {
                scheme: "ip".into(),
                id: "10.0.0.7".into(),
            },
            Id {
                scheme: "digest".into(),
                id: "bob:hash=".into(),
            },
        ]
    }

    fn sample_packets() -> Vec<QuorumPacket> {
        vec![
            QuorumPacket::new(UPTODATE, -1, None),
            QuorumPacket::new(PING, 0x1_0000_0005, Some(Bytes::new())),
            QuorumPacket::new(PROPOSAL, 0x2_0000_0001, Some(Bytes::from(vec![7u8; 300]))),
            QuorumPacket {
                typ: REQUEST,
                zxid: -1,
                data: Some(Bytes::from_static(b"\x00\x01body")),
                authinfo: Some(ids()),
            },
            QuorumPacket {
                typ: REQUEST,
                zxid: -1,
                data: None,
                authinfo: Some(vec![]),
            },
        ]
    }

    fn encoded(p: &QuorumPacket) -> Vec<u8> {
        let mut out = BytesMut::new();
        p.encode(&mut out);
        out.to_vec()
    }

    #[test]
    fn followerinfo_example_from_the_notes_is_byte_exact() {
        let info = LearnerInfo {
            server_id: 2,
            protocol_version: PROTOCOL_VERSION,
            config_version: 0,
        };
        let p = QuorumPacket::new(FOLLOWERINFO, 1 << 32, Some(info.to_bytes()));
        let want = hex("0000000b 0000000100000000 00000014 \
             0000000000000002 00010000 0000000000000000 ffffffff");
        assert_eq!(want.len(), 40);
        assert_eq!(encoded(&p), want);
        let (back, used) = decode_packet(&want, MAX).unwrap().unwrap();
        assert_eq!(used, 40);
        assert_eq!(back, p);
        let got = LearnerInfo::decode(back.data.as_ref().unwrap());
        assert_eq!(got.server_id, Some(2));
        assert_eq!(got.protocol_version, 0x10000);
        assert_eq!(got.config_version, Some(0));
    }

    #[test]
    fn packets_round_trip_back_to_back() {
        let mut stream = Vec::new();
        for p in sample_packets() {
            stream.extend(encoded(&p));
        }
        stream.extend_from_slice(b"raw snapshot bytes follow");
        let mut at = 0;
        for p in sample_packets() {
            let (got, used) = decode_packet(&stream[at..], MAX).unwrap().unwrap();
            assert_eq!(got, p);
            at += used;
        }
        assert_eq!(&stream[at..], b"raw snapshot bytes follow");
    }

    #[test]
    fn null_and_empty_are_distinct_on_the_wire() {
        let null = encoded(&QuorumPacket::new(ACK, 5, None));
        assert_eq!(&null[12..], &hex("ffffffff ffffffff")[..]);
        let empty = encoded(&QuorumPacket {
            typ: ACK,
            zxid: 5,
            data: Some(Bytes::new()),
            authinfo: Some(vec![]),
        });
        assert_eq!(&empty[12..], &[0u8; 8][..]);
        let (p, _) = decode_packet(&empty, MAX).unwrap().unwrap();
        assert_eq!(p.data, Some(Bytes::new()));
        assert_eq!(p.authinfo, Some(vec![]));
    }

    #[test]
    fn every_truncated_packet_needs_more() {
        for p in sample_packets() {
            let b = encoded(&p);
            for cut in 0..b.len() {
                assert_eq!(decode_packet(&b[..cut], MAX), Ok(None), "{p:?} cut {cut}");
            }
            assert!(decode_packet(&b, MAX).unwrap().is_some());
        }
    }

    #[test]
    fn hostile_packet_lengths_are_refused_before_their_bytes_arrive() {
        // data claims 2 GiB: refused from the 16 header bytes alone.
        let mut b = hex("00000002 0000000100000001");
        b.extend(i32::MAX.to_be_bytes());
        assert!(matches!(
            decode_packet(&b, MAX),
            Err(WireError::TooLong { len, .. }) if len == i32::MAX as i64
        ));
        // data just over the limit.
        let mut b = hex("00000002 0000000100000001");
        b.extend(((MAX + 1) as i32).to_be_bytes());
        assert!(matches!(
            decode_packet(&b, MAX),
            Err(WireError::TooLong { .. })
        ));
        // negative data length other than null.
        let mut b = hex("00000002 0000000100000001");
        b.extend((-2i32).to_be_bytes());
        assert!(matches!(
            decode_packet(&b, MAX),
            Err(WireError::BadLength { len: -2, .. })
        ));
        // authinfo count of two billion.
        let mut b = hex("00000001 ffffffffffffffff ffffffff");
        b.extend(i32::MAX.to_be_bytes());
        assert!(matches!(
            decode_packet(&b, MAX),
            Err(WireError::TooLong { .. })
        ));
        let mut b = hex("00000001 ffffffffffffffff ffffffff");
        b.extend((-7i32).to_be_bytes());
        assert!(matches!(
            decode_packet(&b, MAX),
            Err(WireError::BadLength { .. })
        ));
        // an authinfo id string over the limit.
        let mut b = hex("00000001 ffffffffffffffff ffffffff 00000001");
        b.extend(((MAX + 1) as i32).to_be_bytes());
        assert!(matches!(
            decode_packet(&b, MAX),
            Err(WireError::TooLong { .. })
        ));
        // a small limit applies to data.
        let p = QuorumPacket::new(PROPOSAL, 1, Some(Bytes::from(vec![0u8; 100])));
        assert!(decode_packet(&encoded(&p), 99).is_err());
        assert!(decode_packet(&encoded(&p), 100).unwrap().is_some());
    }

    #[test]
    fn bad_utf8_in_authinfo_is_an_error() {
        let mut b = hex("00000001 ffffffffffffffff ffffffff 00000001 00000002 fffe 00000000");
        assert_eq!(
            decode_packet(&b, MAX),
            Err(WireError::Jute(DecodeError::BadUtf8))
        );
        b.truncate(b.len() - 1);
        assert_eq!(decode_packet(&b, MAX), Ok(None));
    }

    #[test]
    fn learner_info_is_read_leniently() {
        let full = LearnerInfo {
            server_id: 9,
            protocol_version: PROTOCOL_VERSION,
            config_version: 0x1_0000_0000,
        }
        .to_bytes();
        assert_eq!(full.len(), 20);
        let r = LearnerInfo::decode(&full[..7]);
        assert_eq!(
            r,
            ReceivedLearnerInfo {
                server_id: None,
                protocol_version: LEARNER_HANDLER_DEFAULT_VERSION,
                config_version: None
            }
        );
        let r = LearnerInfo::decode(&full[..8]);
        assert_eq!((r.server_id, r.protocol_version), (Some(9), 1));
        let r = LearnerInfo::decode(&full[..19]);
        assert_eq!(
            (r.server_id, r.protocol_version, r.config_version),
            (Some(9), 0x10000, None)
        );
        let mut longer = full.to_vec();
        longer.extend_from_slice(b"xyz");
        let r = LearnerInfo::decode(&longer);
        assert_eq!(r.config_version, Some(0x1_0000_0000));
    }

    #[test]
    fn small_payloads_round_trip_and_refuse_short_data() {
        assert_eq!(
            &leader_info_data(PROTOCOL_VERSION)[..],
            &hex("00010000")[..]
        );
        assert_eq!(decode_leader_info(&hex("00010000")), Ok(0x10000));
        assert!(decode_leader_info(&[0, 1, 0]).is_err());

        assert_eq!(&ack_epoch_data(None)[..], &hex("ffffffff")[..]);
        assert_eq!(&ack_epoch_data(Some(3))[..], &hex("00000003")[..]);
        assert_eq!(decode_ack_epoch(&ack_epoch_data(None)), Ok(None));
        assert_eq!(decode_ack_epoch(&ack_epoch_data(Some(7))), Ok(Some(7)));
        assert!(decode_ack_epoch(&[]).is_err());

        let touches = vec![
            SessionTouch {
                session_id: 0x0100_0000_0000_0001,
                timeout: 30000,
            },
            SessionTouch {
                session_id: -5,
                timeout: 4000,
            },
        ];
        let d = ping_reply_data(&touches);
        assert_eq!(d.len(), 24);
        assert_eq!(&d[0..12], &hex("0100000000000001 00007530")[..]);
        assert_eq!(decode_touch_table(&d), Ok(touches));
        assert_eq!(decode_touch_table(&[]), Ok(vec![]));
        for cut in 1..12 {
            assert!(decode_touch_table(&d[..d.len() - cut]).is_err());
        }

        let rv = RevalidateRequest {
            session_id: 0x42,
            timeout: 5000,
        };
        let b = rv.to_bytes();
        assert_eq!(&b[..], &hex("0000000000000042 00001388")[..]);
        assert_eq!(RevalidateRequest::decode(&b), Ok(rv));
        assert!(RevalidateRequest::decode(&b[..11]).is_err());

        let reply = RevalidateReply {
            session_id: 0x42,
            valid: true,
        };
        let b = reply.to_bytes();
        assert_eq!(&b[..], &hex("0000000000000042 01")[..]);
        assert_eq!(RevalidateReply::decode(&b), Ok(reply));
        assert!(
            RevalidateReply::decode(&hex("0000000000000042 02"))
                .unwrap()
                .valid
        );
        assert!(
            !RevalidateReply::decode(&hex("0000000000000042 00"))
                .unwrap()
                .valid
        );
        assert!(RevalidateReply::decode(&b[..8]).is_err());

        let req = LearnerRequest {
            session_id: 0x77,
            cxid: 12,
            typ: 1,
            body: Bytes::from_static(b"create body"),
        };
        let b = req.to_bytes();
        assert_eq!(&b[..16], &hex("0000000000000077 0000000c 00000001")[..]);
        assert_eq!(LearnerRequest::decode(&b), Ok(req));
        let empty_body = Bytes::copy_from_slice(&b[..16]);
        assert_eq!(LearnerRequest::decode(&empty_body).unwrap().body.len(), 0);
        assert!(LearnerRequest::decode(&b.slice(..15)).is_err());
    }

    #[test]
    fn initial_message_v1_is_byte_exact_and_round_trips() {
        let m = InitialMessage::v1(3, "zk3:3888");
        let mut out = BytesMut::new();
        m.encode(&mut out);
        let want = hex("ffffffffffff0000 0000000000000003 00000008");
        assert_eq!(&out[..20], &want[..]);
        assert_eq!(&out[20..], b"zk3:3888");
        let (back, used) = InitialMessage::decode(&out).unwrap().unwrap();
        assert_eq!(used, out.len());
        assert_eq!(back, m);
        for cut in 0..out.len() {
            assert_eq!(InitialMessage::decode(&out[..cut]), Ok(None));
        }
    }

    #[test]
    fn initial_message_v2_splits_and_drops_wildcards() {
        let m = InitialMessage {
            protocol_version: PROTOCOL_VERSION_V2,
            sid: 5,
            addrs: vec![
                "10.0.0.5:3888".into(),
                "0.0.0.0:3888".into(),
                "[fe80::1]:3888".into(),
                "[::]:3888".into(),
            ],
        };
        let mut out = BytesMut::new();
        m.encode(&mut out);
        let (back, _) = InitialMessage::decode(&out).unwrap().unwrap();
        assert_eq!(back.sid, 5);
        assert_eq!(back.addrs, vec!["10.0.0.5:3888", "[fe80::1]:3888"]);
    }

    #[test]
    fn legacy_initial_message_is_the_sid_alone() {
        let b = 7i64.to_be_bytes();
        let (m, used) = InitialMessage::decode(&b).unwrap().unwrap();
        assert_eq!(used, 8);
        assert_eq!((m.protocol_version, m.sid), (7, 7));
        assert!(m.addrs.is_empty());
        let mut out = BytesMut::new();
        m.encode(&mut out);
        assert_eq!(&out[..], &b);
    }

    #[test]
    fn bad_initial_messages_are_refused_early() {
        // Unknown negative version: refused from 8 bytes.
        assert_eq!(
            InitialMessage::decode(&(-3i64).to_be_bytes()),
            Err(WireError::UnknownProtocolVersion(-3))
        );
        let head = |len: i32| {
            let mut b = PROTOCOL_VERSION_V1.to_be_bytes().to_vec();
            b.extend(1i64.to_be_bytes());
            b.extend(len.to_be_bytes());
            b
        };
        for len in [0, -1, 2049, i32::MAX] {
            assert!(
                matches!(
                    InitialMessage::decode(&head(len)),
                    Err(WireError::BadLength { .. })
                ),
                "len {len}"
            );
        }
        assert_eq!(InitialMessage::decode(&head(2048)), Ok(None));
        for bad in [
            "zk1",
            "zk1:",
            ":3888",
            "zk1:38x8",
            "zk1:70000",
            "a:1:2",
            "::1:3888",
            "[::1]",
            "[::1]:",
            "[::1",
            "|zk1:1",
        ] {
            let mut b = head(bad.len() as i32);
            b.extend_from_slice(bad.as_bytes());
            assert!(
                matches!(InitialMessage::decode(&b), Err(WireError::BadAddress(_))),
                "{bad:?}"
            );
        }
        // Java's split drops trailing empty pieces.
        let mut b = head(7);
        b.extend_from_slice(b"zk1:1||");
        assert_eq!(
            InitialMessage::decode(&b).unwrap().unwrap().0.addrs,
            vec!["zk1:1"]
        );
        let mut b = head(2);
        b.extend_from_slice(&[0xff, 0xfe]);
        assert!(matches!(
            InitialMessage::decode(&b),
            Err(WireError::BadAddress(_))
        ));
    }

    #[test]
    fn frames_split_and_refuse_bad_lengths() {
        let mut out = BytesMut::new();
        encode_frame(b"abc", &mut out);
        encode_frame(b"de", &mut out);
        let (r, used) = decode_frame(&out).unwrap().unwrap();
        assert_eq!((&out[r], used), (&b"abc"[..], 7));
        let (r, used2) = decode_frame(&out[used..]).unwrap().unwrap();
        assert_eq!((&out[used..][r], used2), (&b"de"[..], 6));
        for cut in 0..7 {
            assert_eq!(decode_frame(&out[..cut]), Ok(None));
        }
        for len in [0i32, -1, i32::MIN, (PACKETMAXSIZE + 1) as i32, i32::MAX] {
            assert!(decode_frame(&len.to_be_bytes()).is_err(), "len {len}");
        }
        assert_eq!(
            decode_frame(&(PACKETMAXSIZE as i32).to_be_bytes()),
            Ok(None)
        );
    }

    fn note(config: &'static [u8]) -> Notification {
        Notification {
            state: ServerState::Following,
            leader: 3,
            zxid: 0x5_0000_0002,
            election_epoch: 9,
            peer_epoch: 6,
            version: Notification::CURRENT_VERSION,
            config: Bytes::from_static(config),
        }
    }

    #[test]
    fn notification_is_byte_exact_and_round_trips() {
        let n = note(b"server.1=a:2888:3888:participant\nversion=0");
        let mut out = BytesMut::new();
        n.encode(&mut out);
        assert_eq!(out.len(), 44 + n.config.len());
        let want = hex(
            "00000001 0000000000000003 0000000500000002 0000000000000009 \
             0000000000000006 00000002",
        );
        assert_eq!(&out[..40], &want[..]);
        assert_eq!(&out[40..44], &(n.config.len() as i32).to_be_bytes());
        assert_eq!(&out[44..], &n.config[..]);
        assert_eq!(Notification::decode(&out), Some(n));
        // The version field of the struct does not change what is sent.
        let mut old = note(b"");
        old.version = 0;
        let mut out = BytesMut::new();
        old.encode(&mut out);
        assert_eq!(out.len(), 44);
        assert_eq!(Notification::decode(&out).unwrap().version, 2);
    }

    #[test]
    fn notification_old_forms_and_odd_lengths() {
        let mut out = BytesMut::new();
        note(b"cfg").encode(&mut out);
        // 28 bytes: peerEpoch from the zxid, version 0.
        let n = Notification::decode(&out[..28]).unwrap();
        assert_eq!((n.peer_epoch, n.version, n.config.len()), (5, 0, 0));
        // 40 bytes: peerEpoch read, version 0.
        let n = Notification::decode(&out[..40]).unwrap();
        assert_eq!((n.peer_epoch, n.version), (6, 0));
        // Every other length below the full one is an underflow somewhere, or too short.
        for len in (0..out.len()).filter(|l| *l != 28 && *l != 40) {
            assert_eq!(Notification::decode(&out[..len]), None, "len {len}");
        }
        // version 1 at 44 bytes: no config read.
        let mut v1 = out[..44].to_vec();
        v1[36..40].copy_from_slice(&1i32.to_be_bytes());
        let n = Notification::decode(&v1).unwrap();
        assert_eq!((n.version, n.config.len()), (1, 0));
        // Trailing bytes after the config are ignored.
        let mut longer = out.to_vec();
        longer.extend_from_slice(b"zz");
        assert_eq!(&Notification::decode(&longer).unwrap().config[..], b"cfg");
        // Bad config lengths.
        for bad in [-1i32, 4, i32::MAX] {
            let mut b = out.to_vec();
            b[40..44].copy_from_slice(&bad.to_be_bytes());
            assert_eq!(Notification::decode(&b), None, "configLength {bad}");
        }
        // States outside 0..3.
        for state in [-1i32, 4, 99] {
            let mut b = out.to_vec();
            b[0..4].copy_from_slice(&state.to_be_bytes());
            assert_eq!(Notification::decode(&b), None);
        }
    }

    #[test]
    fn garbage_never_panics() {
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        let mut valid: Vec<Vec<u8>> = sample_packets().iter().map(encoded).collect();
        let mut out = BytesMut::new();
        InitialMessage::v1(2, "h:1").encode(&mut out);
        valid.push(out.to_vec());
        let mut out = BytesMut::new();
        note(b"abc").encode(&mut out);
        valid.push(out.to_vec());
        let mut inputs: Vec<Vec<u8>> = (0..2000).map(|i| rng.bytes(i % 97)).collect();
        for v in &valid {
            for _ in 0..300 {
                let mut m = v.clone();
                for _ in 0..1 + rng.next() % 4 {
                    let at = (rng.next() as usize) % m.len();
                    m[at] = rng.next() as u8;
                }
                inputs.push(m);
            }
        }
        for g in &inputs {
            if let Ok(Some((_, used))) = decode_packet(g, 4096) {
                assert!(used <= g.len());
            }
            if let Ok(Some((_, used))) = InitialMessage::decode(g) {
                assert!(used <= g.len());
            }
            if let Ok(Some((r, used))) = decode_frame(g) {
                assert!(r.end == used && used <= g.len());
            }
            let _ = Notification::decode(g);
            let _ = LearnerInfo::decode(g);
            let _ = decode_leader_info(g);
            let _ = decode_ack_epoch(g);
            let _ = decode_touch_table(g);
            let _ = RevalidateRequest::decode(g);
            let _ = RevalidateReply::decode(g);
            let _ = LearnerRequest::decode(&Bytes::copy_from_slice(g));
        }
    }

    #[test]
    fn packet_type_names() {
        assert_eq!(packet_type_name(PROPOSAL), "PROPOSAL");
        assert_eq!(packet_type_name(INFORMANDACTIVATE), "INFORMANDACTIVATE");
        assert_eq!(packet_type_name(0), "UNKNOWN");
    }
}
