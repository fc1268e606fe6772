//! The logic of the cargo-fuzz targets in `fuzz/`, kept in the library so that the
//! fuzzers (nightly flags) and the corpus replay in `tests/fuzz_corpus.rs` (stable) run
//! the same code. One function per target, each taking arbitrary bytes and driving the
//! real decoders with them; each panics (and so reports a crash) only when a property
//! fails:
//!
//! - no decoder panics, whatever the bytes;
//! - allocation is bounded: no single allocation, and no peak of live bytes during a
//!   decode, goes past what the input and the declared limits (`jute.maxbuffer`,
//!   [`crate::quorum::wire::PACKETMAXSIZE`], ...) allow. Measured by [`CountingAlloc`]
//!   when the caller installs it as the global allocator (both the fuzz targets and the
//!   replay test do); without it the bound is not checked;
//! - decode, encode, decode gives the first decode back, wherever an encoder exists (the
//!   encodings are not canonical byte for byte: jute's null string decodes as "", any
//!   non-zero byte as `true`, so the bytes themselves cannot be compared), and the
//!   canonical encoding is never longer than what was decoded;
//! - recovery from arbitrary log bytes either refuses cleanly or yields a log whose txns
//!   follow each other, that recovers the same way a second time, and that appends and
//!   recovers the append;
//! - a snapshot (file or SNAP stream) either is refused or builds a consistent tree, and
//!   a stream read in pieces gives what it gives read at once.
//!
//! Not part of the server: `#[doc(hidden)]`, nothing calls it but fuzzers and tests.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};

use crate::proto::frame::{four_letter_word, next_frame};
use crate::proto::{
    decode_request, ConnectRequest, Jute, MultiRequest, MultiResponse, Reader, RequestHeader,
};
use crate::quorum::election::{Election, ElectionAction};
use crate::quorum::snap_stream::SnapReader;
use crate::quorum::wire::{self, InitialMessage, LearnerInfo, Notification, QuorumPacket};
use crate::quorum::{zk_txn, LearnerType, ServerState, Sid};
use crate::request::apply::apply;
use crate::request::txn::{Txn, TxnHeader};
use crate::storage::backend::{Backend, Mapped, SimBackend, StorageFile};
use crate::storage::restore::{records_parents_first, restore_records};
use crate::storage::snapshot::decode_snapshot;
use crate::storage::{recover, txn_codec, zxid_follows, LogConfig, StorageError};
use crate::tree::{DataTree, Restorer};

// ---- allocation accounting ------------------------------------------------------------

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

/// A global allocator over [`System`] that counts, per thread, the bytes live, their
/// peak and the largest single request, so a target can check that decoding `n` bytes
/// never asks for more than a bound. Install it with `#[global_allocator]`.
pub struct CountingAlloc;

fn on_alloc(size: usize) {
    let _ = COUNTING.try_with(|c| c.set(true));
    let _ = LIVE.try_with(|l| {
        let now = l.get().saturating_add(size);
        l.set(now);
        let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
    });
    let _ = LARGEST.try_with(|m| m.set(m.get().max(size)));
}

fn on_free(size: usize) {
    let _ = LIVE.try_with(|l| l.set(l.get().saturating_sub(size)));
}

// SAFETY: every call is forwarded to `System` unchanged; the bookkeeping only touches
// thread-local `Cell`s with const initialisers (no allocation, no destructor).
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            on_alloc(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            on_alloc(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        on_free(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            on_free(layout.size());
            on_alloc(new_size);
        }
        p
    }
}

/// What [`measure`] saw: the most bytes live at once above those live when it began,
/// and the largest single allocation.
#[derive(Debug, Clone, Copy)]
pub struct AllocStats {
    pub peak: usize,
    pub largest: usize,
}

/// Runs `f` and reports its allocations on this thread; `None` when [`CountingAlloc`] is
/// not the global allocator (nothing to check then).
pub fn measure<R>(f: impl FnOnce() -> R) -> (R, Option<AllocStats>) {
    let base = measure_begin();
    let r = f();
    (r, measure_end(base))
}

/// Starts a measurement (for code that cannot sit in a closure, such as an `.await`):
/// pass what it returns to [`measure_end`].
pub fn measure_begin() -> usize {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    LARGEST.with(|m| m.set(0));
    base
}

pub fn measure_end(base: usize) -> Option<AllocStats> {
    let counting = COUNTING.with(Cell::get);
    let stats = AllocStats {
        peak: PEAK.with(Cell::get).saturating_sub(base),
        largest: LARGEST.with(Cell::get),
    };
    counting.then_some(stats)
}

/// Fails if a measurement went past `bound` bytes live at once (which also bounds any
/// single allocation).
fn check_bound(what: &str, bound: usize, stats: Option<AllocStats>) {
    if let Some(s) = stats {
        assert!(
            s.peak <= bound,
            "{what}: {} bytes live at peak (largest allocation {}), over the bound {bound}",
            s.peak,
            s.largest
        );
    }
}

/// Runs `f` and fails if it allocated past `bound` bytes at once.
fn bounded<R>(what: &str, bound: usize, f: impl FnOnce() -> R) -> R {
    let (r, stats) = measure(f);
    check_bound(what, bound, stats);
    r
}

/// `jute.maxbuffer` as the server is configured by default (`limits::Limits`).
fn max_buffer() -> usize {
    crate::limits::Limits::default().max_buffer
}

/// The memory a decode of `n` input bytes may take: a decoded value is at most a small
/// multiple of its encoding (a 4-byte empty string becomes a 24-byte `String`, a 12-byte
/// ACL a 56-byte `Acl`) plus a fixed allowance for the decoder's own state.
fn decode_bound(n: usize) -> usize {
    16 * n + (64 << 10)
}

/// Splits fuzz input into pieces whose sizes come from the input itself (the first
/// byte seeds them), to feed stream decoders as a socket would.
fn pieces(data: &[u8]) -> (Vec<&[u8]>, &[u8]) {
    let Some((&seed, rest)) = data.split_first() else {
        return (Vec::new(), data);
    };
    let mut out = Vec::new();
    let mut at = 0;
    let mut x = seed as usize | 1;
    while at < rest.len() {
        // 1..=64 bytes, or everything left when the seed's low bits say so.
        x = x.wrapping_mul(1103515245).wrapping_add(12345) & 0x7fff_ffff;
        let n = if seed & 3 == 0 {
            rest.len() - at
        } else {
            1 + (x >> 8) % 64
        };
        let end = (at + n).min(rest.len());
        out.push(&rest[at..end]);
        at = end;
    }
    (out, rest)
}

// ---- client port ----------------------------------------------------------------------

/// The client connection as `server::conn` reads it: the four-letter-word check on the
/// first four bytes, then length framing (`next_frame`, bytes arriving in pieces), the
/// first frame a `ConnectRequest`, every later one a `RequestHeader` and its body.
pub fn client_frame(data: &[u8]) {
    let (chunks, stream) = pieces(data);
    if stream.len() >= 4 {
        // Any answer is fine; it must not panic.
        let _ = four_letter_word(&stream[..4]);
    }
    let max = max_buffer();
    let mut buf = BytesMut::new();
    let mut frames = 0usize;
    'conn: for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            let before = buf.len();
            // The buffer only reserves for the frame it was told about, which is bounded
            // by jute.maxbuffer.
            let frame = bounded("next_frame", max + 4 + (64 << 10), || {
                next_frame(&mut buf, max)
            });
            match frame {
                Ok(Some(frame)) => {
                    assert_eq!(before - buf.len(), 4 + frame.len());
                    assert!(frame.len() <= max);
                    if frames == 0 {
                        connect_request(&frame);
                    } else {
                        request_frame(&frame);
                    }
                    frames += 1;
                }
                Ok(None) => break,
                Err(_) => break 'conn,
            }
        }
    }
    // The same bytes as one frame each way round, so short inputs reach both decoders.
    connect_request(stream);
    request_frame(stream);
}

fn connect_request(frame: &[u8]) {
    let Ok(req) = bounded("ConnectRequest", decode_bound(frame.len()), || {
        ConnectRequest::from_bytes(frame)
    }) else {
        return;
    };
    round_trip(&req, frame.len());
}

/// A `RequestHeader` and the body after it, as `Shard::on_request` reads a frame.
fn request_frame(frame: &[u8]) {
    let mut r = Reader::new(frame);
    let Ok(hdr) = RequestHeader::decode(&mut r) else {
        return;
    };
    round_trip(&hdr, r.position());
    client_request_body(hdr.r#type, &frame[r.position()..]);
}

/// Decodes `v`'s canonical encoding back and compares; the canonical encoding is never
/// longer than the `consumed` bytes it was decoded from.
fn round_trip<T: Jute + PartialEq + std::fmt::Debug>(v: &T, consumed: usize) {
    let enc = v.to_bytes();
    assert!(
        enc.len() <= consumed,
        "{v:?}: re-encoded to {} bytes from {consumed}",
        enc.len()
    );
    let back = T::from_bytes(&enc).expect("a canonical encoding decodes");
    assert_eq!(&back, v, "decode-encode-decode changed the value");
}

/// Every request record: the first four bytes are the opcode (folded onto the opcodes
/// that exist, so most inputs decode something), the rest its body, through
/// `decode_request` (the client port) and `decode_forwarded` (a learner's REQUEST).
pub fn client_request(data: &[u8]) {
    if data.len() < 4 {
        return;
    }
    let raw = i32::from_be_bytes([data[0], data[1], data[2], data[3]]);
    let body = &data[4..];
    // Opcodes span -11..=107 with gaps; fold most values into that range but keep a few
    // raw ones so unknown opcodes are tried too.
    let op = if raw & 0x4000_0000 != 0 {
        raw
    } else {
        raw.rem_euclid(119) - 11
    };
    client_request_body(op, body);
}

fn client_request_body(op: i32, body: &[u8]) {
    let req = bounded("decode_request", decode_bound(body.len()), || {
        decode_request(op, body)
    });
    if let Ok(req) = &req {
        let mut enc = BytesMut::new();
        let typ = zk_txn::encode_request(req, &mut enc);
        assert_eq!(typ, op, "{req:?} encodes under another opcode");
        assert!(enc.len() <= body.len(), "{req:?} grew when re-encoded");
        let back = decode_request(typ, &enc).expect("a canonical request decodes");
        assert_eq!(&back, req, "decode-encode-decode changed the request");
    }
    // What a learner forwards: the same bodies, plus createSession and deleteContainer.
    let fwd = bounded("decode_forwarded", decode_bound(body.len()), || {
        zk_txn::decode_forwarded(op, body)
    });
    match (&req, &fwd) {
        (Ok(a), Ok(zk_txn::ForwardedRequest::Client(b))) => assert_eq!(a, b),
        (Ok(_), Ok(other)) => panic!("a client request forwarded as {other:?}"),
        _ => {}
    }
    if let Ok(f) = &fwd {
        let mut enc = BytesMut::new();
        let typ = zk_txn::encode_forwarded(f, &mut enc);
        assert_eq!(typ, op);
        let back = zk_txn::decode_forwarded(typ, &enc).expect("a canonical body decodes");
        assert_eq!(&back, f);
    }
}

/// `multi` and `multiRead` bodies (`MultiRequest`), and the `MultiResponse` the server
/// encodes (decoded here as a client would).
pub fn client_multi(data: &[u8]) {
    let req = bounded("MultiRequest", decode_bound(data.len()), || {
        let mut r = Reader::new(data);
        MultiRequest::decode(&mut r).map(|m| (m, r.position()))
    });
    if let Ok((m, used)) = req {
        round_trip(&m, used);
        for op in &m.ops {
            let _ = (op.opcode(), op.path(), op.is_read());
        }
    }
    let resp = bounded("MultiResponse", decode_bound(data.len()), || {
        let mut r = Reader::new(data);
        MultiResponse::decode(&mut r).map(|m| (m, r.position()))
    });
    if let Ok((m, used)) = resp {
        round_trip(&m, used);
    }
}

// ---- quorum port ----------------------------------------------------------------------

/// The quorum port's stream of `QuorumPacket`s, arriving in pieces, and the payload each
/// packet type carries (LearnerInfo, LEADERINFO, ACKEPOCH, the PING touch table,
/// REVALIDATE, REQUEST, PROPOSAL/INFORM txns).
pub fn quorum_packet(data: &[u8]) {
    let max = max_buffer();
    let (chunks, _) = pieces(data);
    let mut buf: Vec<u8> = Vec::new();
    'stream: for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            // The stream buffer holds what arrived; a decode copies one packet's data
            // at most, bounded by the bytes present.
            let got = bounded("decode_packet", decode_bound(buf.len()), || {
                wire::decode_packet(&buf, max)
            });
            match got {
                Ok(Some((p, used))) => {
                    assert!(used > 0 && used <= buf.len());
                    packet(&p, used, max);
                    buf.drain(..used);
                }
                Ok(None) => break,
                Err(_) => break 'stream,
            }
        }
    }
}

fn packet(p: &QuorumPacket, used: usize, max: usize) {
    let mut enc = BytesMut::new();
    p.encode(&mut enc);
    assert!(enc.len() <= used, "{p:?} grew when re-encoded");
    let (back, n) = wire::decode_packet(&enc, max)
        .expect("a canonical packet decodes")
        .expect("a canonical packet is whole");
    assert_eq!(n, enc.len());
    assert_eq!(&back, p);
    let Some(d) = &p.data else {
        return;
    };
    match p.typ {
        wire::FOLLOWERINFO | wire::OBSERVERINFO => {
            let li = LearnerInfo::decode(d);
            if let (Some(server_id), Some(config_version)) = (li.server_id, li.config_version) {
                let full = LearnerInfo {
                    server_id,
                    protocol_version: li.protocol_version,
                    config_version,
                };
                assert_eq!(LearnerInfo::decode(&full.to_bytes()), li);
            }
        }
        wire::LEADERINFO => {
            if let Ok(v) = wire::decode_leader_info(d) {
                assert_eq!(wire::decode_leader_info(&wire::leader_info_data(v)), Ok(v));
            }
        }
        wire::ACKEPOCH => {
            if let Ok(e) = wire::decode_ack_epoch(d) {
                assert_eq!(wire::decode_ack_epoch(&wire::ack_epoch_data(e)), Ok(e));
            }
        }
        wire::PING => {
            if let Ok(t) = wire::decode_touch_table(d) {
                assert_eq!(wire::ping_reply_data(&t)[..], d[..]);
            }
        }
        wire::REVALIDATE => {
            if let Ok(r) = wire::RevalidateRequest::decode(d) {
                assert_eq!(wire::RevalidateRequest::decode(&r.to_bytes()), Ok(r));
            }
            if let Ok(r) = wire::RevalidateReply::decode(d) {
                assert_eq!(wire::RevalidateReply::decode(&r.to_bytes()), Ok(r));
            }
        }
        wire::REQUEST => {
            if let Ok(lr) = wire::LearnerRequest::decode(d) {
                assert_eq!(lr.to_bytes(), *d);
                client_request_body(lr.typ, &lr.body);
            }
        }
        wire::PROPOSAL | wire::INFORM | wire::INFORMANDACTIVATE => quorum_txn_with(d, max),
        _ => {}
    }
}

/// PROPOSAL/INFORM data on its own: `zk_txn::decode_txn_full` (TxnHeader, the record the
/// header's type selects, an optional TxnDigest).
pub fn quorum_txn(data: &[u8]) {
    quorum_txn_with(data, max_buffer());
}

fn quorum_txn_with(data: &[u8], max: usize) {
    let d = bounded("decode_txn_full", decode_bound(data.len()), || {
        zk_txn::decode_txn_full(data, max)
    });
    let Ok(d) = d else {
        return;
    };
    // Our encoder writes the txn's kind as the header type (the request's opcode is not
    // on the wire), and a failed multi's sub-txns in our normalised form; decoding that
    // gives the same txn, paths and digest back.
    let mut enc = BytesMut::new();
    zk_txn::encode_txn(&d.hdr, &d.txn, &d.close_paths, d.digest, &mut enc);
    let back = zk_txn::decode_txn_full(&enc, max).expect("a canonical txn decodes");
    assert_eq!(
        back.txn,
        create2_as_create(d.txn.clone()),
        "decode-encode-decode changed the txn"
    );
    assert_eq!(back.close_paths, d.close_paths);
    assert_eq!(back.digest, d.digest);
    assert_eq!(
        (
            back.hdr.client_id,
            back.hdr.cxid,
            back.hdr.zxid,
            back.hdr.time
        ),
        (d.hdr.client_id, d.hdr.cxid, d.hdr.zxid, d.hdr.time)
    );
}

/// What our encoder writes for `txn`: a multi's create2 ops as create, as ZooKeeper's
/// own leader writes them (its followers drop the rest of a multi at a create2), which
/// changes only how a reply would be encoded, never the tree.
fn create2_as_create(txn: Txn) -> Txn {
    match txn {
        Txn::Multi(ops) => Txn::Multi(
            ops.into_iter()
                .map(|(op, t)| match op {
                    crate::proto::OpCode::Create2 => (crate::proto::OpCode::Create, t),
                    _ => (op, t),
                })
                .collect(),
        ),
        t => t,
    }
}

/// The election port: one initial message, then length-prefixed frames each holding a
/// notification, arriving in pieces; every notification decoded is fed to a running
/// election (three voters, the sender's sid from the initial message), whose decisions
/// must name a voter.
pub fn election(data: &[u8]) {
    let (chunks, _) = pieces(data);
    let mut buf: Vec<u8> = Vec::new();
    let mut from: Option<Option<Sid>> = None;
    let voters: BTreeSet<Sid> = [1, 2, 3].into_iter().collect();
    let mut el = Election::new(
        1,
        LearnerType::Participant,
        voters.clone(),
        Bytes::from_static(b"server.1=a:1:2\nversion=0"),
        200,
        60_000,
    );
    let mut now = 0i64;
    let mut actions = el.start(0x1_0000_0005, 1, now);
    'stream: for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            if from.is_none() {
                match InitialMessage::decode(&buf) {
                    Ok(Some((m, used))) => {
                        assert!(used > 0 && used <= buf.len());
                        initial_message_round_trip(&m);
                        from = Some(Sid::try_from(m.sid).ok());
                        buf.drain(..used);
                    }
                    Ok(None) => break,
                    Err(_) => break 'stream,
                }
            }
            let Some(sender) = from else { break };
            match wire::decode_frame(&buf) {
                Ok(Some((range, used))) => {
                    assert!(range.end == used && used <= buf.len());
                    assert!(range.len() <= wire::PACKETMAXSIZE);
                    let n = bounded("Notification", decode_bound(range.len()), || {
                        Notification::decode(&buf[range.clone()])
                    });
                    if let Some(n) = n {
                        notification_round_trip(&n);
                        now += 37;
                        if let Some(s) = sender {
                            actions.extend(el.on_notification(s, n, now));
                        }
                    }
                    now += 11;
                    actions.extend(el.on_tick(now, used % 2 == 0));
                    buf.drain(..used);
                }
                Ok(None) => break,
                Err(_) => break 'stream,
            }
            // Loop our own sends back, as the runtime does; a bounded number of rounds.
            for _ in 0..8 {
                let mine: Vec<Notification> = actions
                    .iter()
                    .filter_map(|a| match a {
                        ElectionAction::Send { to: 1, n } => Some(n.clone()),
                        _ => None,
                    })
                    .collect();
                check_actions(&actions, &voters);
                actions.clear();
                if mine.is_empty() {
                    break;
                }
                for n in mine {
                    actions.extend(el.on_notification(1, n, now));
                }
            }
        }
    }
    check_actions(&actions, &voters);
    // The payload alone as one notification and as one initial message too.
    if let Some(n) = Notification::decode(data) {
        notification_round_trip(&n);
    }
    if let Ok(Some((m, _))) = InitialMessage::decode(data) {
        initial_message_round_trip(&m);
    }
}

fn check_actions(actions: &[ElectionAction], voters: &BTreeSet<Sid>) {
    for a in actions {
        if let ElectionAction::Decided { state, vote } = a {
            assert_ne!(*state, ServerState::Looking);
            assert!(
                vote.leader_sid().is_some_and(|s| voters.contains(&s)),
                "decided on a leader that is not a voter: {vote:?}"
            );
        }
    }
}

fn notification_round_trip(n: &Notification) {
    let mut enc = BytesMut::new();
    n.encode(&mut enc);
    let back = Notification::decode(&enc).expect("a notification we send decodes");
    // We always send the current version, which carries the config.
    let want = Notification {
        version: Notification::CURRENT_VERSION,
        ..n.clone()
    };
    assert_eq!(back, want);
}

fn initial_message_round_trip(m: &InitialMessage) {
    // Wildcards were dropped; with no address left there is nothing a receiver accepts.
    if m.protocol_version < 0 && m.addrs.is_empty() {
        return;
    }
    let mut enc = BytesMut::new();
    m.encode(&mut enc);
    if m.protocol_version < 0 && enc.len() > 20 + wire::INITIAL_MESSAGE_MAX_ADDR_LEN {
        return;
    }
    let (back, used) = InitialMessage::decode(&enc)
        .expect("a message we send decodes")
        .expect("and is whole");
    assert_eq!(used, enc.len());
    assert_eq!(&back, m);
}

/// A SNAP stream (`snap_stream::SnapReader`), fed in pieces and at once: both ways
/// agree on the outcome and on the tree, and a tree it accepts is consistent.
pub fn snap_stream(data: &[u8]) {
    snap_stream_run(data);
}

/// [`snap_stream`], returning the number of znodes of the tree read (`None`: refused).
fn snap_stream_run(data: &[u8]) -> Option<usize> {
    let max = max_buffer();
    let (chunks, stream) = pieces(data);
    let whole = bounded("SnapReader", decode_bound(stream.len()) + (1 << 20), || {
        let mut r = SnapReader::new(max);
        let used = r.feed(stream);
        (used, r.finish())
    });
    let mut r = SnapReader::new(max);
    let mut used = 0usize;
    let mut err = None;
    for c in chunks {
        match r.feed(c) {
            Ok(n) => {
                assert!(n <= c.len());
                used += n;
            }
            Err(e) => {
                err = Some(e);
                break;
            }
        }
        if r.is_done() {
            break;
        }
    }
    let pieced = r.finish();
    let (whole_used, whole) = whole;
    match (&whole, &pieced) {
        (Ok(a), Ok(b)) => {
            assert_eq!(
                whole_used,
                Ok(used),
                "the stream ended elsewhere read in pieces"
            );
            assert_eq!(a.sessions, b.sessions);
            let fa = check_tree(&a.tree);
            assert_eq!(fa, check_tree(&b.tree), "pieces built another tree");
            Some(fa.len())
        }
        // A malformed item is refused read either way, and with the same error; an
        // incomplete stream is incomplete either way.
        (Err(a), Err(b)) => {
            assert_eq!(a, b, "refused for another reason read in pieces");
            if let Some(e) = &err {
                assert_eq!(e, b);
            }
            None
        }
        (w, p) => panic!(
            "read at once: {:?}; in pieces: {:?}",
            w.as_ref().map(|_| ()),
            p.as_ref().map(|_| ())
        ),
    }
}

/// A tree's shape, for comparing two trees: every node's path, data, ACL and stat.
type Fingerprint = Vec<(
    String,
    Bytes,
    Vec<crate::proto::Acl>,
    crate::tree::StatPersisted,
)>;

/// Walks `tree` from the root and checks that every node the table holds is reached
/// (no orphan), and that every child a node lists exists; returns its fingerprint.
fn check_tree(tree: &DataTree) -> Fingerprint {
    let mut seen = Vec::new();
    tree.for_each_node(|path, node, acl| {
        for c in node.children() {
            let child = if path == "/" {
                format!("/{c}")
            } else {
                format!("{path}/{c}")
            };
            assert!(tree.exists(&child), "{path} lists {c}, which is not there");
        }
        seen.push((
            path.to_string(),
            node.data().to_bytes(),
            acl.to_vec(),
            *node.persisted(),
        ));
    });
    assert_eq!(seen.len(), tree.znode_count(), "nodes not reachable from /");
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    seen
}

// ---- storage --------------------------------------------------------------------------

/// One txn of the storage codec (`storage::txn_codec`): decode, then the canonical
/// re-encoding decodes to the same txn.
pub fn storage_txn(data: &[u8]) {
    let got = bounded("txn_codec::decode_txn", decode_bound(data.len()), || {
        txn_codec::decode_txn(data)
    });
    if let Ok((h, t)) = got {
        let enc = txn_codec::txn_to_bytes(&h, &t);
        let (h2, t2) = txn_codec::decode_txn(&enc).expect("a canonical txn decodes");
        assert_eq!((h2, &t2), (h, &t));
    }
}

/// The log and snapshot directories of the in-memory file system the storage targets
/// use.
const LOG_DIR: &str = "/data/log";
const SNAP_DIR: &str = "/data/snap";

fn log_config() -> LogConfig {
    LogConfig {
        dir: PathBuf::from(LOG_DIR),
        // Small segments: recovery may start one; 64 MiB of zeros per run would be slow.
        prealloc_size: 8192,
        force_sync: true,
    }
}

/// Input of [`txn_log_recovery`]: the log segments to put on the (in-memory) disk.
/// Byte layout, so seeds can be written and the fuzzer mutates structure, not checksums:
///
/// ```text
/// u8 flags (bit 0: a tailcut marker for the last segment)
/// then items until the input ends, each a u8 tag:
///   0 segment: i64 first zxid: a new segment with a valid header (its name says the same)
///   1 frame:   u32 count | i64 first zxid | u16 len | len payload bytes: a frame with its
///              checksums computed (payload: count x (u32 len | txn_codec txn))
///   2 raw:     u16 len | len bytes, appended as they are
///   3 name:    i64 zxid: a new segment named so, its header left to raw bytes
///   other:     ignored
/// ```
/// The first frame or raw bytes before any segment open a segment at zxid 1.
pub fn recovery_input_segments(data: &[u8]) -> (bool, Vec<(i64, Vec<u8>)>) {
    let mut r = Reader::new(data);
    let tailcut = r.read_u8().map(|f| f & 1 == 1).unwrap_or(false);
    let mut segs: Vec<(i64, Vec<u8>)> = Vec::new();
    let open = |segs: &mut Vec<(i64, Vec<u8>)>| {
        if segs.is_empty() {
            segs.push((1, crate::storage::log::encode_segment_header(1).to_vec()));
        }
    };
    while let Ok(tag) = r.read_u8() {
        // Bound the segment count: each costs a file and a scan.
        if segs.len() > 8 {
            break;
        }
        match tag {
            0 => {
                let Ok(z) = r.read_i64() else { break };
                segs.push((z, crate::storage::log::encode_segment_header(z).to_vec()));
            }
            1 => {
                let (Ok(count), Ok(first), Ok(len)) =
                    (r.read_i32(), r.read_i64(), read_u16(&mut r))
                else {
                    break;
                };
                let payload = take(&mut r, len);
                open(&mut segs);
                let seg = &mut segs.last_mut().expect("opened").1;
                seg.resize(seg.len().div_ceil(8) * 8, 0);
                let mut h = Vec::with_capacity(24);
                h.extend_from_slice(&(payload.len() as u32).to_be_bytes());
                h.extend_from_slice(&(count as u32).to_be_bytes());
                h.extend_from_slice(&first.to_be_bytes());
                h.extend_from_slice(&crc32c::crc32c(payload).to_be_bytes());
                let hcrc = crc32c::crc32c(&h);
                h.extend_from_slice(&hcrc.to_be_bytes());
                seg.extend_from_slice(&h);
                seg.extend_from_slice(payload);
                seg.resize(seg.len().div_ceil(8) * 8, 0);
            }
            2 => {
                let Ok(len) = read_u16(&mut r) else { break };
                let raw = take(&mut r, len);
                open(&mut segs);
                segs.last_mut().expect("opened").1.extend_from_slice(raw);
            }
            3 => {
                let Ok(z) = r.read_i64() else { break };
                segs.push((z, Vec::new()));
            }
            _ => {}
        }
    }
    (tailcut, segs)
}

fn read_u16(r: &mut Reader<'_>) -> Result<usize, crate::proto::DecodeError> {
    Ok(((r.read_u8()? as usize) << 8) | r.read_u8()? as usize)
}

/// Up to `n` bytes (fewer at the end of the input).
fn take<'a>(r: &mut Reader<'a>, n: usize) -> &'a [u8] {
    let n = n.min(r.remaining());
    let start = r.position();
    for _ in 0..n {
        let _ = r.read_u8();
    }
    r.since(start)
}

/// Txn-log recovery (`storage::recover`) over log segments made from arbitrary bytes
/// (see [`recovery_input_segments`]), on the in-memory backend. Recovery either refuses
/// with `Corrupt` or gives txns that follow one another; then a second recovery gives the
/// same, the log appends the next txn, and a third recovery gives it back.
pub fn txn_log_recovery(data: &[u8]) {
    recovery_run(data);
}

/// [`txn_log_recovery`], returning how many txns the first recovery gave (`None`: it
/// refused).
fn recovery_run(data: &[u8]) -> Option<usize> {
    let (tailcut, segs) = recovery_input_segments(data);
    let b = SimBackend::new(1);
    let log_dir = Path::new(LOG_DIR);
    let snap_dir = Path::new(SNAP_DIR);
    futures_lite::future::block_on(async {
        b.create_dir_all(log_dir).await.expect("mkdir");
        b.create_dir_all(snap_dir).await.expect("mkdir");
        let mut last_name = None;
        for (z, bytes) in &segs {
            let p = log_dir.join(crate::storage::log::segment_name(*z));
            let f = b.create(&p).await.expect("create");
            let _ = f.close().await;
            b.corrupt(&p, 0, bytes);
            last_name = Some(*z);
        }
        if let (true, Some(z)) = (tailcut, last_name) {
            let p = log_dir.join(format!("tailcut.{:016x}", z as u64));
            let f = b.create(&p).await.expect("create");
            let _ = f.close().await;
        }
        b.sync_dir(log_dir).await.expect("sync");

        let base = measure_begin();
        let first = recover(b.clone(), log_config(), snap_dir).await;
        check_bound("recover", 64 * data.len() + (4 << 20), measure_end(base));
        let (rec, log) = match first {
            Ok(v) => v,
            Err(StorageError::Corrupt(_)) => return None,
            Err(e) => panic!("recovery failed other than by refusing: {e}"),
        };
        assert!(rec.snapshot.is_none());
        let mut prev = 0i64;
        for (h, _) in &rec.txns {
            assert!(zxid_follows(prev, h.zxid), "{:#x} after {prev:#x}", h.zxid);
            prev = h.zxid;
        }
        assert_eq!(rec.last_zxid, prev);
        // The txns apply to a tree without panicking, and it stays consistent.
        let mut tree = DataTree::new();
        let mut triggers = Vec::new();
        for (h, t) in &rec.txns {
            triggers.clear();
            apply(&mut tree, h, t, &mut triggers);
        }
        check_tree(&tree);
        drop(log);

        let (again, mut log) = recover(b.clone(), log_config(), snap_dir)
            .await
            .expect("a log that recovered once recovers again");
        assert_eq!(again.txns, rec.txns);
        assert_eq!(again.last_zxid, rec.last_zxid);
        // An epoch's zxids end at counter 0xffffffff; the next is the next epoch's 1.
        let next = if rec.last_zxid & 0xffff_ffff == 0xffff_ffff {
            match rec.last_zxid.checked_add(2) {
                Some(z) => z,
                None => return Some(rec.txns.len()),
            }
        } else {
            rec.last_zxid + 1
        };
        if next <= 0 {
            return Some(rec.txns.len());
        }
        let txn = (
            TxnHeader {
                client_id: 7,
                cxid: 1,
                zxid: next,
                time: 1,
                op: crate::proto::OpCode::SetData,
            },
            Txn::SetData {
                path: "/fuzz".into(),
                data: Bytes::from_static(b"x"),
                version: 1,
            },
        );
        log.append_batch(std::slice::from_ref(&txn))
            .await
            .expect("append after recovery");
        drop(log);
        let (third, _log) = recover(b.clone(), log_config(), snap_dir)
            .await
            .expect("a log appended after recovery recovers");
        let mut want = rec.txns.clone();
        want.push(txn);
        assert_eq!(third.txns, want);
        Some(rec.txns.len())
    })
}

/// A snapshot file from arbitrary bytes: `storage::snapshot::decode_snapshot` (the seal
/// is recomputed when the input only fails on it, so the fuzzer reaches the records),
/// then the tree built as `server::durability::tree_from` builds it; it is refused or
/// consistent.
pub fn snapshot_load(data: &[u8]) {
    snapshot_run(data);
}

/// [`snapshot_load`], returning the number of znodes of the tree built (`None`: the
/// snapshot was refused).
fn snapshot_run(data: &[u8]) -> Option<usize> {
    let path = Path::new("/data/snap/snapshot.0000000000000001");
    let mut bytes = data.to_vec();
    let mut loaded = bounded("decode_snapshot", decode_bound(bytes.len()), || {
        decode_snapshot(Mapped::Owned(bytes.clone()), path)
    });
    if let Err(StorageError::Corrupt(m)) = &loaded {
        if let Some(off) = seal_offset(m) {
            if off + 4 <= bytes.len() {
                let crc = crc32c::crc32c(&bytes[..off]);
                bytes[off..off + 4].copy_from_slice(&crc.to_be_bytes());
                loaded = decode_snapshot(Mapped::Owned(bytes.clone()), path);
            }
        }
    }
    let s = match loaded {
        Ok(s) => s,
        Err(StorageError::Corrupt(_)) => return None,
        Err(e) => panic!("a snapshot failed other than as damaged: {e}"),
    };
    assert!(s.last_zxid >= s.start_zxid);
    let _ = s.nodes();
    // As `server::durability::tree_from` (private to `server`) builds it: the same
    // record loop, data copied instead of left in a mapping.
    let mut tree = DataTree::new();
    let mut r = Restorer::new(&mut tree);
    let ok = restore_records(&mut r, records_parents_first(&s), &|| false).is_ok();
    r.finish();
    if !ok {
        return None;
    }
    for &(id, timeout) in &s.sessions {
        tree.add_session(id, timeout);
    }
    tree.set_last_processed_zxid(s.last_zxid);
    Some(check_tree(&tree).len())
}

/// The offset of the seal in a `decode_snapshot` error that names only the checksum.
fn seal_offset(msg: &str) -> Option<usize> {
    if !msg.ends_with("checksum mismatch") {
        return None;
    }
    let at = msg.find("at offset ")? + "at offset ".len();
    msg[at..].split(':').next()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_offset_reads_the_error() {
        assert_eq!(
            seal_offset("snapshot x is damaged at offset 42: checksum mismatch"),
            Some(42)
        );
        assert_eq!(
            seal_offset("snapshot x is damaged at offset 42: no end record"),
            None
        );
    }

    fn seed(target: &str, name: &str) -> Vec<u8> {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus")
            .join(target)
            .join(format!("seed-{name}"));
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    /// The seeds get past the checksums and structure into the deep paths (a harness
    /// that refused everything would pass every property vacuously).
    #[test]
    fn seeds_reach_the_deep_paths() {
        let rec = |n| recovery_run(&seed("txn_log_recovery", n));
        assert_eq!(rec("one-segment"), Some(9));
        assert_eq!(rec("torn-tail"), Some(9));
        assert_eq!(rec("tailcut"), Some(9));
        assert_eq!(rec("two-segments"), Some(6));
        assert_eq!(rec("gap"), None);
        assert_eq!(rec("damaged-middle"), None);
        // Row 4: the newest segment, a bad header and no valid frame: removed.
        assert_eq!(rec("bad-header"), Some(0));
        // 4 built-in znodes, /a, /a/e, /zookeeper/quota/a; the fuzzy one removes /a/e.
        assert_eq!(snapshot_run(&seed("snapshot_load", "v2")), Some(7));
        assert_eq!(snapshot_run(&seed("snapshot_load", "fuzzy")), Some(6));
        for s in ["00", "41", "13"] {
            assert_eq!(snap_stream_run(&seed("snap_stream", s)), Some(9), "{s}");
        }
        assert_eq!(snap_stream_run(&seed("snap_stream", "empty")), Some(4));
    }

    #[test]
    fn empty_inputs_do_not_panic() {
        for f in [
            client_frame,
            client_request,
            client_multi,
            quorum_packet,
            quorum_txn,
            election,
            snap_stream,
            storage_txn,
            txn_log_recovery,
            snapshot_load,
        ] {
            f(&[]);
            f(&[0]);
            f(&[0xff; 40]);
        }
    }
}
