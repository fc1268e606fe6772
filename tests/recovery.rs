//! Recovery's decision table (src/storage/recovery.rs) at process level: corral is
//! killed with SIGKILL, its files are damaged precisely (the frame layout of
//! src/storage/log.rs, parsed here independently), and the restart must do exactly what
//! the table says: start with every acknowledged write, or refuse with a message naming
//! the file, the offset and the repair command.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::durable::DurableServer;
use common::*;
use zookeeper_client as zk;

// ---- the on-disk format, read independently of corral's own parser ----

const SEG_HEADER_LEN: usize = 24;
const FRAME_HEADER_LEN: usize = 24;

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes(b[..4].try_into().unwrap())
}

/// A valid frame (both checksums hold) found in a segment.
#[derive(Debug, Clone, Copy)]
struct Frame {
    offset: usize,
    first_zxid: i64,
    count: u32,
    /// Just past the frame's padding to 8 bytes.
    end: usize,
}

impl Frame {
    fn last_zxid(&self) -> i64 {
        self.first_zxid + self.count as i64 - 1
    }
}

/// The segment's first zxid (from its header) and its valid frames from the start.
fn parse_segment(buf: &[u8]) -> (i64, Vec<Frame>) {
    let h = &buf[..SEG_HEADER_LEN];
    assert_eq!(&h[0..4], b"CRLG", "segment magic");
    assert_eq!(be32(&h[4..8]), 1, "segment version");
    assert_eq!(
        crc32c::crc32c(&h[..20]),
        be32(&h[20..24]),
        "segment header crc"
    );
    let first = i64::from_be_bytes(h[8..16].try_into().unwrap());
    let mut frames = Vec::new();
    let mut off = SEG_HEADER_LEN;
    while off + FRAME_HEADER_LEN <= buf.len() {
        let h = &buf[off..off + FRAME_HEADER_LEN];
        if crc32c::crc32c(&h[..20]) != be32(&h[20..24]) {
            break;
        }
        let len = be32(&h[0..4]) as usize;
        let start = off + FRAME_HEADER_LEN;
        let Some(payload) = buf.get(start..start + len) else {
            break;
        };
        if crc32c::crc32c(payload) != be32(&h[16..20]) {
            break;
        }
        let end = (start + len).div_ceil(8) * 8;
        frames.push(Frame {
            offset: off,
            first_zxid: i64::from_be_bytes(h[8..16].try_into().unwrap()),
            count: be32(&h[4..8]),
            end,
        });
        off = end;
    }
    (first, frames)
}

fn read_segment(path: &Path) -> (Vec<u8>, i64, Vec<Frame>) {
    let buf = std::fs::read(path).unwrap();
    let (first, frames) = parse_segment(&buf);
    (buf, first, frames)
}

/// The end of the data in a segment (after its last valid frame).
fn data_end(frames: &[Frame]) -> usize {
    frames.last().map_or(SEG_HEADER_LEN, |f| f.end)
}

fn write_at(path: &Path, offset: usize, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(bytes, offset as u64).unwrap();
    f.sync_all().unwrap();
}

fn zxid_from_name(path: &Path, prefix: &str) -> i64 {
    let name = path.file_name().unwrap().to_str().unwrap();
    u64::from_str_radix(name.strip_prefix(prefix).unwrap(), 16).unwrap() as i64
}

// ---- data written through the server, and the state read back ----

const PAD: usize = 300;

fn value(i: usize) -> Vec<u8> {
    let mut v = format!("v{i}-").into_bytes();
    v.resize(v.len() + PAD, b'x');
    v
}

fn key(i: usize) -> String {
    format!("/k{i:05}")
}

/// Creates keys one at a time, each awaited before the next, so each is its own batch
/// and so its own frame.
async fn write_sequential(c: &zk::Client, keys: std::ops::Range<usize>) {
    for i in keys {
        c.create(&key(i), &value(i), &anyone()).await.unwrap();
    }
}

/// Creates keys in pipelined chunks of 5: a frame of about 1.7 KB per chunk, so small
/// segments roll over every couple of chunks.
async fn write_chunked(c: &zk::Client, keys: std::ops::Range<usize>) {
    let v: Vec<usize> = keys.collect();
    for chunk in v.chunks(5) {
        write_pipelined(c, chunk[0]..chunk[chunk.len() - 1] + 1).await;
    }
}

/// Creates keys pipelined (fast; several per frame).
async fn write_pipelined(c: &zk::Client, keys: std::ops::Range<usize>) {
    let paths: Vec<String> = keys.clone().map(key).collect();
    let opts = anyone();
    let mut futs = Vec::new();
    for (p, i) in paths.iter().zip(keys) {
        futs.push(c.create(p, &value(i), &opts));
    }
    for f in futs {
        f.await.unwrap();
    }
}

/// Every `/k*` node with its data and Stat.
type State = BTreeMap<String, (Vec<u8>, zk::Stat)>;

async fn read_state(c: &zk::Client) -> State {
    let mut names = c.list_children("/").await.unwrap();
    names.retain(|n| n.starts_with('k'));
    names.sort();
    let futs: Vec<_> = names.iter().map(|n| c.get_data(&format!("/{n}"))).collect();
    let mut out = BTreeMap::new();
    for (n, f) in names.iter().zip(futs) {
        out.insert(format!("/{n}"), f.await.unwrap());
    }
    out
}

fn assert_keys(state: &State, keys: std::ops::Range<usize>) {
    let want: Vec<String> = keys.clone().map(key).collect();
    let got: Vec<&String> = state.keys().collect();
    assert_eq!(got, want.iter().collect::<Vec<_>>(), "keys present");
    for i in keys {
        assert_eq!(state[&key(i)].0, value(i), "value of {}", key(i));
    }
}

/// Starts, checks the recovered state equals `before` exactly (data and Stat), and
/// returns a client.
async fn restart_and_expect(srv: &mut DurableServer, before: &State) -> zk::Client {
    srv.start();
    let c = within(15, "connect after restart", srv.client()).await;
    let after = within(15, "read state", read_state(&c)).await;
    assert_eq!(
        &after,
        before,
        "recovered state differs from the acknowledged one; server output:\n{}",
        srv.output()
    );
    c
}

fn newest_segment(srv: &DurableServer) -> PathBuf {
    srv.segments()
        .last()
        .cloned()
        .expect("at least one log segment")
}

fn small_log() -> DurableServer {
    // 1 MiB segments, no snapshot unless a test asks for one.
    DurableServer::new(&["preAllocSize=1024", "snapCount=100000"])
}

// ---- rows 6 and 7: the tail of the newest segment ----

/// Row 6: after a kill the newest segment holds its frames and then the zeros it was
/// preallocated with; that is the end of the data, nothing is cut or refused.
#[tokio::test]
async fn zero_filled_tail_starts_with_all_data() {
    let mut srv = small_log();
    srv.start();
    let c = srv.client().await;
    write_pipelined(&c, 0..40).await;
    write_sequential(&c, 40..45).await;
    let before = read_state(&c).await;
    drop(c);
    srv.kill9();

    let seg = newest_segment(&srv);
    let (buf, _, frames) = read_segment(&seg);
    assert_eq!(
        buf.len(),
        1024 * 1024,
        "segment preallocated to preAllocSize"
    );
    let end = data_end(&frames);
    assert!(
        frames.len() >= 6,
        "one frame per sequential write: {frames:?}"
    );
    assert!(
        buf[end..].iter().all(|&b| b == 0),
        "the tail after the last frame is zero-filled"
    );

    restart_and_expect(&mut srv, &before).await;
    let out = srv.output();
    assert!(
        !out.contains("cutting"),
        "nothing to cut in a zero tail:\n{out}"
    );
    assert!(!out.contains("refusing"), "{out}");
}

/// Row 7, torn write: a frame whose header is whole but whose payload was only partly
/// written (the rest still zeros) right after the last valid frame.
#[tokio::test]
async fn torn_partial_frame_is_cut_and_acknowledged_data_kept() {
    torn_tail_case(|_, _, frames| {
        let last = frames.last().unwrap();
        let next_zxid = last.last_zxid() + 1;
        // A plausible header for the next batch: 600 bytes of payload, 2 txns, valid
        // header crc; only 100 bytes of the payload made it to disk.
        let mut h = Vec::new();
        h.extend_from_slice(&600u32.to_be_bytes());
        h.extend_from_slice(&2u32.to_be_bytes());
        h.extend_from_slice(&next_zxid.to_be_bytes());
        h.extend_from_slice(&0xdead_beefu32.to_be_bytes());
        let hcrc = crc32c::crc32c(&h);
        h.extend_from_slice(&hcrc.to_be_bytes());
        h.extend((0..100u32).map(|i| (i * 7 + 3) as u8));
        h
    })
    .await;
}

/// Row 7, garbage: non-zero bytes that are no frame at all after the last valid frame.
#[tokio::test]
async fn garbage_tail_is_cut_and_acknowledged_data_kept() {
    torn_tail_case(|_, _, _| (0..5000u32).map(|i| (i * 31 + 17) as u8 | 1).collect()).await;
}

/// Row 7, a torn copy of the last batch: the last valid frame's bytes repeated after it
/// with the end of the payload missing (valid header crc, bad payload crc).
#[tokio::test]
async fn torn_copy_of_last_frame_is_cut() {
    torn_tail_case(|buf, _, frames| {
        let last = frames.last().unwrap();
        buf[last.offset..last.end - 16].to_vec()
    })
    .await;
}

async fn torn_tail_case(tail: impl Fn(&[u8], i64, &[Frame]) -> Vec<u8>) {
    let mut srv = small_log();
    srv.start();
    let c = srv.client().await;
    write_pipelined(&c, 0..30).await;
    write_sequential(&c, 30..34).await;
    let before = read_state(&c).await;
    drop(c);
    srv.kill9();

    let seg = newest_segment(&srv);
    let (buf, first, frames) = read_segment(&seg);
    let end = data_end(&frames);
    let bytes = tail(&buf, first, &frames);
    write_at(&seg, end, &bytes);

    let c = restart_and_expect(&mut srv, &before).await;
    let out = srv.output();
    assert!(
        out.contains(&format!(
            "cutting the torn tail of {} at offset {end}",
            seg.display()
        )),
        "recovery should warn that it cut the tail at {end}; output:\n{out}"
    );
    // The cut is durable: the frames are as before and the garbage is gone (zeros, or
    // the frames the new session's txns appended in its place).
    let (buf2, _, frames2) = read_segment(&seg);
    assert!(frames2.len() >= frames.len());
    for (a, b) in frames.iter().zip(&frames2) {
        assert_eq!(
            (a.offset, a.first_zxid, a.count),
            (b.offset, b.first_zxid, b.count)
        );
    }
    let end2 = data_end(&frames2);
    assert!(
        buf2[end2..].iter().all(|&b| b == 0),
        "bytes left after the last frame at {end2}"
    );

    // The log goes on after the cut, and a second crash recovers everything again.
    write_sequential(&c, 34..40).await;
    let before = read_state(&c).await;
    drop(c);
    srv.kill9();
    restart_and_expect(&mut srv, &before).await;
    assert_keys(&before, 0..40);
}

// ---- row 8: damage followed by valid frames ----

/// Row 8: a flipped byte in the payload of a frame in the middle of the newest segment,
/// with valid frames after it: recovery refuses, naming the file, the offset of the bad
/// frame and `corral log truncate --zxid Z` with Z the last txn before it. Running that
/// repair then lets the server start with exactly the txns up to Z.
#[tokio::test]
async fn corrupt_frame_in_the_middle_refuses_then_repair_truncates() {
    let mut srv = small_log();
    srv.start();
    let c = srv.client().await;
    write_sequential(&c, 0..12).await;
    drop(c);
    srv.kill9();

    let seg = newest_segment(&srv);
    let (buf, _, frames) = read_segment(&seg);
    assert!(frames.len() >= 13, "createSession + 12 creates: {frames:?}");
    let bad = frames[frames.len() / 2];
    let last_good = frames[frames.len() / 2 - 1].last_zxid();
    let at = bad.offset + FRAME_HEADER_LEN + 10;
    write_at(&seg, at, &[buf[at] ^ 0x40]);

    let (status, out) = srv.start_expecting_refusal();
    assert!(
        !status.success() && status.code().is_some(),
        "exit non-zero: {status}"
    );
    let seg_name = seg.display().to_string();
    let hint = format!("corral log truncate --zxid {last_good:#x}");
    for want in [
        "refusing to start".to_string(),
        format!("txn log {seg_name} is damaged at offset {}", bad.offset),
        hint.clone(),
    ] {
        assert!(out.contains(&want), "stderr lacks {want:?}:\n{out}");
    }

    // The named repair: keep the log up to last_good, drop the rest.
    let r = srv.run_tool(&["log", "truncate", "--zxid", &format!("{last_good:#x}")]);
    assert!(
        r.status.success(),
        "log truncate failed: {}{}",
        String::from_utf8_lossy(&r.stdout),
        String::from_utf8_lossy(&r.stderr)
    );
    srv.start();
    let c = srv.client().await;
    let state = read_state(&c).await;
    // frames[0] is the createSession; frame k (k >= 1) created key k-1.
    let kept = frames.len() / 2 - 1;
    assert_keys(&state, 0..kept);
    for (i, (_, st)) in state.values().enumerate() {
        assert_eq!(st.czxid, frames[i + 1].first_zxid, "czxid of {}", key(i));
    }
    // The log continues after the repair.
    c.create("/after-repair", b"", &anyone()).await.unwrap();
}

/// Row 8 as well: the damage is in a frame's header (its crc no longer holds).
#[tokio::test]
async fn corrupt_frame_header_in_the_middle_refuses() {
    let mut srv = small_log();
    srv.start();
    let c = srv.client().await;
    write_sequential(&c, 0..6).await;
    drop(c);
    srv.kill9();

    let seg = newest_segment(&srv);
    let (buf, _, frames) = read_segment(&seg);
    let bad = frames[2];
    let at = bad.offset + 9; // inside first_zxid
    write_at(&seg, at, &[buf[at] ^ 0x01]);
    let (status, out) = srv.start_expecting_refusal();
    assert!(!status.success() && status.code().is_some(), "{status}");
    assert!(
        out.contains(&format!(
            "txn log {} is damaged at offset {}",
            seg.display(),
            bad.offset
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "corral log truncate --zxid {:#x}",
            frames[1].last_zxid()
        )),
        "{out}"
    );
}

// ---- row 3: snapshots ----

/// Waits until at least `n` snapshots exist.
async fn wait_snapshots(srv: &DurableServer, n: usize) {
    let ok = eventually(Duration::from_secs(10), || async {
        srv.snapshots().len() >= n
    })
    .await;
    assert!(ok, "only {} snapshots were taken", srv.snapshots().len());
}

/// Writes enough that the data dir has 2+ snapshots and log after the newest; returns
/// the acknowledged state.
async fn data_with_snapshots(srv: &mut DurableServer) -> State {
    // A snapshot starts after a random threshold in [snapCount/2, snapCount] txns.
    srv.set_cfg(&["snapCount=20"]);
    srv.start();
    let c = srv.client().await;
    write_pipelined(&c, 0..25).await;
    // Let each snapshot finish so that the next one is a distinct, later one.
    wait_snapshots(srv, 1).await;
    write_pipelined(&c, 25..50).await;
    wait_snapshots(srv, 2).await;
    // Txns after the newest snapshot (4 < snapCount/2, so no snapshot starts).
    write_sequential(&c, 50..54).await;
    let before = read_state(&c).await;
    drop(c);
    srv.kill9();
    assert_keys(&before, 0..54);
    before
}

/// Row 3: the newest snapshot fails its seal; recovery skips it with a warning, loads
/// the older one and replays the log from there: every acknowledged write is back, with
/// the same Stat.
#[tokio::test]
async fn corrupt_newest_snapshot_falls_back_to_older_one() {
    let mut srv = small_log();
    let before = data_with_snapshots(&mut srv).await;
    let snaps = srv.snapshots();
    assert!(snaps.len() >= 2, "{snaps:?}");
    let newest = snaps.last().unwrap().clone();
    let older_zxid = zxid_from_name(&snaps[snaps.len() - 2], "snapshot.");
    let b = std::fs::read(&newest).unwrap();
    let at = 100; // inside the first node records, well before the seal
    write_at(&newest, at, &[b[at] ^ 0x10]);

    restart_and_expect(&mut srv, &before).await;
    let out = srv.output();
    assert!(
        out.contains("skipping snapshot") && out.contains(&newest.display().to_string()),
        "recovery should say it skipped {}:\n{out}",
        newest.display()
    );
    assert!(
        older_zxid < zxid_from_name(&newest, "snapshot."),
        "fell back to an older snapshot"
    );
    // The tree built early from the damaged newest file was thrown away (the state
    // above is the older snapshot's plus the log).
    if two_cores() {
        assert!(
            out.contains("the tree built early is not of the snapshot recovery chose"),
            "{out}"
        );
    }
}

/// More than one core: the server builds the newest snapshot's tree on a second thread
/// while recovery checks it (`server/early_build.rs`).
fn two_cores() -> bool {
    std::thread::available_parallelism().is_ok_and(|n| n.get() > 1)
}

/// The tree built beside the snapshot's check is the one served after a restart: every
/// acknowledged write is back with the same Stat, and the server says it took it.
#[tokio::test]
async fn the_tree_built_beside_the_check_is_served() {
    let mut srv = small_log();
    let before = data_with_snapshots(&mut srv).await;
    restart_and_expect(&mut srv, &before).await;
    if two_cores() {
        let out = srv.output();
        assert!(
            out.contains("snapshot restored on a second thread while recovery checked it"),
            "{out}"
        );
    }
}

/// Row 3, last clause: every snapshot is damaged (here: cut short); recovery starts from
/// the empty tree and replays the whole log.
#[tokio::test]
async fn all_snapshots_corrupt_replays_whole_log() {
    let mut srv = small_log();
    let before = data_with_snapshots(&mut srv).await;
    for s in srv.snapshots() {
        let len = std::fs::metadata(&s).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(&s).unwrap();
        f.set_len(len / 2).unwrap();
        f.sync_all().unwrap();
    }
    restart_and_expect(&mut srv, &before).await;
    let skipped = srv.output().matches("skipping snapshot").count();
    assert_eq!(skipped, srv.snapshots().len(), "{}", srv.output());
}

/// Row 2: a `snapshot.*.tmp` left by a crash mid-snapshot is deleted, never loaded.
#[tokio::test]
async fn stale_snapshot_tmp_is_deleted() {
    let mut srv = small_log();
    let before = data_with_snapshots(&mut srv).await;
    let tmp = srv.data_dir().join("snapshot.00000000000fffff.tmp");
    std::fs::write(&tmp, b"CRSN half written").unwrap();
    restart_and_expect(&mut srv, &before).await;
    assert!(!tmp.exists(), "stale .tmp snapshot still there");
}

// ---- row 11: a gap ----

/// Fills several small segments: preAllocSize=4 KiB holds about two chunks of 5
/// 300-byte creates.
async fn fill_small_segments(srv: &mut DurableServer, keys: std::ops::Range<usize>) {
    srv.set_cfg(&["preAllocSize=4"]);
    srv.start();
    let c = srv.client().await;
    write_chunked(&c, keys).await;
    drop(c);
    srv.kill9();
}

/// Row 11: a segment after the snapshot is missing, so the txns after it do not follow
/// the state before it: recovery refuses, naming the gap, the file after it and the
/// repair command.
#[tokio::test]
async fn missing_segment_after_snapshot_refuses() {
    let mut srv = small_log();
    // A snapshot early on, then (snapshots off) enough writes for several segments.
    srv.set_cfg(&["snapCount=20", "preAllocSize=4"]);
    srv.start();
    let c = srv.client().await;
    write_pipelined(&c, 0..25).await;
    wait_snapshots(&srv, 1).await;
    drop(c);
    srv.kill9();
    let snap_zxid = zxid_from_name(srv.snapshots().last().unwrap(), "snapshot.");
    srv.set_cfg(&["snapCount=100000"]);
    fill_small_segments(&mut srv, 25..80).await;

    let segs = srv.segments();
    // The first segment that starts after the snapshot (and after its own predecessor,
    // which also lies after the snapshot), not the newest.
    let firsts: Vec<i64> = segs.iter().map(|p| zxid_from_name(p, "log.")).collect();
    let victim = (1..segs.len() - 1)
        .find(|&i| firsts[i - 1] > snap_zxid + 1)
        .unwrap_or_else(|| panic!("no segment to remove: snapshot {snap_zxid:#x}, {firsts:x?}"));
    std::fs::remove_file(&segs[victim]).unwrap();

    let (status, out) = srv.start_expecting_refusal();
    assert!(!status.success() && status.code().is_some(), "{status}");
    let before_gap = firsts[victim] - 1;
    for want in [
        format!(
            "gap in the log: the state ends at zxid {before_gap:#x} but the next logged txn is {:#x}",
            firsts[victim + 1]
        ),
        format!(
            "txn log {} is damaged at offset {SEG_HEADER_LEN}",
            segs[victim + 1].display()
        ),
        format!("corral log truncate --zxid {before_gap:#x}"),
    ] {
        assert!(out.contains(&want), "stderr lacks {want:?}:\n{out}");
    }
}

/// Row 11 without any snapshot: the log must start at the beginning; a missing middle
/// segment is a gap too.
#[tokio::test]
async fn missing_middle_segment_without_snapshot_refuses() {
    let mut srv = small_log();
    fill_small_segments(&mut srv, 0..60).await;
    let segs = srv.segments();
    assert!(segs.len() >= 3, "{segs:?}");
    let firsts: Vec<i64> = segs.iter().map(|p| zxid_from_name(p, "log.")).collect();
    std::fs::remove_file(&segs[1]).unwrap();
    let (status, out) = srv.start_expecting_refusal();
    assert!(!status.success() && status.code().is_some(), "{status}");
    assert!(out.contains("gap in the log"), "{out}");
    assert!(out.contains(&segs[2].display().to_string()), "{out}");
    assert!(
        out.contains(&format!("corral log truncate --zxid {:#x}", firsts[1] - 1)),
        "{out}"
    );
}

// ---- rows 4, 5 and 9: segment headers and older segments ----

/// Row 9: non-zero garbage after the last frame of an OLDER segment is damage (a segment
/// is synced before the next starts): refuse.
#[tokio::test]
async fn garbage_after_last_frame_of_older_segment_refuses() {
    let mut srv = small_log();
    fill_small_segments(&mut srv, 0..40).await;
    let segs = srv.segments();
    assert!(segs.len() >= 2, "{segs:?}");
    let (buf, _, frames) = read_segment(&segs[0]);
    let end = data_end(&frames);
    assert!(end + 8 < buf.len(), "room after the last frame");
    write_at(&segs[0], end, &[0x5a; 8]);
    let (status, out) = srv.start_expecting_refusal();
    assert!(!status.success() && status.code().is_some(), "{status}");
    assert!(
        out.contains(&format!(
            "txn log {} is damaged at offset {end}",
            segs[0].display()
        )),
        "{out}"
    );
    assert!(out.contains("corral log truncate"), "{out}");
}

/// Row 4: the newest segment's header is damaged and it holds no valid frame (a crash
/// while it was being created): it is deleted and the server starts with all data.
#[tokio::test]
async fn newest_segment_with_torn_header_and_no_frame_is_dropped() {
    let mut srv = small_log();
    srv.start();
    let c = srv.client().await;
    write_sequential(&c, 0..5).await;
    let before = read_state(&c).await;
    drop(c);
    srv.kill9();
    let (_, _, frames) = read_segment(&newest_segment(&srv));
    let next = frames.last().unwrap().last_zxid() + 1;
    // What a crash right after creating the next segment leaves: its name, zeros.
    let fake = srv.log_dir().join(format!("log.{:016x}", next as u64));
    std::fs::write(&fake, vec![0u8; 8192]).unwrap();
    srv.start();
    let out = srv.output();
    assert!(
        out.contains(&format!(
            "removing {}: its header is incomplete",
            fake.display()
        )),
        "recovery should drop the headerless newest segment:\n{out}"
    );
    assert!(!fake.exists(), "the empty newest segment should be removed");
    srv.kill9();
    // The log goes on: new txns land in a new, valid segment and survive a crash.
    let c = restart_and_expect(&mut srv, &before).await;
    write_sequential(&c, 5..7).await;
    let before = read_state(&c).await;
    drop(c);
    srv.kill9();
    restart_and_expect(&mut srv, &before).await;
    let (_, _, frames) = read_segment(&newest_segment(&srv));
    let last = frames.last().unwrap().last_zxid();
    assert!(last > next, "the log continued past {next:#x}: {frames:?}");
}

/// Row 5: an older segment whose header is damaged: refuse.
#[tokio::test]
async fn damaged_header_of_older_segment_refuses() {
    let mut srv = small_log();
    fill_small_segments(&mut srv, 0..40).await;
    let segs = srv.segments();
    assert!(segs.len() >= 2, "{segs:?}");
    write_at(&segs[0], 0, b"XXXX");
    let (status, out) = srv.start_expecting_refusal();
    assert!(!status.success() && status.code().is_some(), "{status}");
    assert!(
        out.contains(&format!(
            "txn log {} is damaged at offset 0",
            segs[0].display()
        )),
        "{out}"
    );
}

/// A second server (or a repair tool) on a data directory in use refuses to start,
/// instead of appending to the same log (SO_REUSEPORT would let it share the port).
#[test]
fn a_data_dir_in_use_is_refused() {
    let mut srv = DurableServer::new(&[]);
    srv.start();
    let cfg = srv.write_cfg();
    for args in [
        vec!["server"],
        vec!["log", "truncate", "--zxid", "0"],
        vec!["purge"],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_corral"))
            .args(&args)
            .arg("--config")
            .arg(&cfg)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run corral");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} ran beside a server");
        assert!(
            err.contains("in use by another corral process"),
            "{args:?}: {err}"
        );
    }
    // The first server is unharmed, and once it is gone the directory is free.
    srv.kill9();
    srv.start();
}
