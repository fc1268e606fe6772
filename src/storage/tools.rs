//! Maintenance: purge (keep the N newest snapshots and the log segments they need) and
//! the functions behind `corral log dump FILE`, `corral snapshot dump FILE [--json]` and
//! `corral log truncate --zxid Z`. They return text for the CLI to print.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;

use super::backend::Backend;
use super::log::{
    damage_after, decode_frame, frame_after, parse_segment_header, SEG_HEADER_LEN, SEG_PREFIX,
};
use super::recovery::list_numbered;
use super::snapshot::{load_snapshot, SnapRecord, SNAP_PREFIX};
use super::truncate::{self, OnDamage};
use super::{io_err, Result};
use crate::request::txn::Txn;

/// Deletes all but the `keep` newest snapshots (at least 1 is always kept) and every log
/// segment that holds only txns older than the oldest kept snapshot. Returns the removed
/// paths. Stale `.tmp` snapshots are left alone: one may be being written right now.
///
/// Snapshots are counted by name, not verified: keep at least 3 (ZooKeeper's minimum)
/// so that a damaged newest snapshot still has an older one and its logs behind it.
pub async fn purge<B: Backend>(
    backend: &B,
    log_dir: &Path,
    snap_dir: &Path,
    keep: usize,
) -> Result<Vec<PathBuf>> {
    let keep = keep.max(1);
    let snaps = list_numbered(backend, snap_dir, SNAP_PREFIX).await?;
    if snaps.is_empty() {
        return Ok(Vec::new());
    }
    let n = snaps.len();
    let cut = n.saturating_sub(keep);
    let oldest_kept = snaps[cut].0;
    let mut removed = Vec::new();
    for (_, p) in &snaps[..cut] {
        backend
            .remove(p)
            .await
            .map_err(io_err(format!("removing {}", p.display())))?;
        removed.push(p.clone());
    }
    let segs = list_numbered(backend, log_dir, SEG_PREFIX).await?;
    // The segment holding the txn right after the oldest kept snapshot starts at or
    // before it; everything before that segment is covered by the snapshot.
    if let Some(first_needed) = segs.iter().rposition(|(z, _)| *z <= oldest_kept) {
        for (_, p) in &segs[..first_needed] {
            backend
                .remove(p)
                .await
                .map_err(io_err(format!("removing {}", p.display())))?;
            removed.push(p.clone());
        }
    }
    for d in [snap_dir, log_dir] {
        backend
            .sync_dir(d)
            .await
            .map_err(io_err(format!("syncing {}", d.display())))?;
    }
    Ok(removed)
}

/// One line describing a txn, data shown by length.
pub fn describe_txn(t: &Txn) -> String {
    match t {
        Txn::CreateSession { timeout } => format!("createSession timeout={timeout}"),
        Txn::CloseSession => "closeSession".into(),
        Txn::Create {
            path,
            data,
            acl,
            ephemeral_owner,
            parent_cversion,
        } => format!(
            "create {path} data={}B acl={} ephemeralOwner={ephemeral_owner:#x} parentCVersion={parent_cversion}",
            data.len(),
            acl.len()
        ),
        Txn::Delete { path } => format!("delete {path}"),
        Txn::SetData {
            path,
            data,
            version,
        } => format!("setData {path} data={}B version={version}", data.len()),
        Txn::SetAcl { path, acl, version } => {
            format!("setACL {path} acl={} version={version}", acl.len())
        }
        Txn::Check { path, version } => format!("check {path} version={version}"),
        Txn::Multi(ops) => {
            let inner: Vec<String> = ops
                .iter()
                .map(|(op, t)| format!("{op:?}: {}", describe_txn(t)))
                .collect();
            format!("multi [{}]", inner.join("; "))
        }
        Txn::Error(code) => format!("error {code:?}"),
    }
}

/// `corral log dump FILE`: every frame and txn of a segment, and how its data ends.
pub async fn log_dump<B: Backend>(backend: &B, file: &Path) -> Result<String> {
    let buf = backend
        .map(file)
        .await
        .map_err(io_err(format!("reading {}", file.display())))?;
    let mut out = String::new();
    let Some(first) = parse_segment_header(&buf) else {
        let _ = writeln!(
            out,
            "{}: not a corral txn log segment (bad header)",
            file.display()
        );
        return Ok(out);
    };
    let _ = writeln!(
        out,
        "{}: segment, first zxid {first:#x}, {} bytes",
        file.display(),
        buf.len()
    );
    let mut off = SEG_HEADER_LEN;
    let mut last = None;
    while let Some(f) = frame_after(&buf, off, last) {
        let _ = writeln!(
            out,
            "frame at offset {}: first zxid {:#x}, {} txns{}",
            f.offset,
            f.first_zxid,
            f.count,
            if f.overlaps {
                " (written while the append before it was in flight)"
            } else {
                ""
            }
        );
        match decode_frame(&buf, &f) {
            Ok(txns) => {
                for (h, t) in txns {
                    last = Some(h.zxid);
                    let _ = writeln!(
                        out,
                        "  zxid {:#x} session {:#x} cxid {} time {} op {:?}: {}",
                        h.zxid,
                        h.client_id,
                        h.cxid,
                        h.time,
                        h.op,
                        describe_txn(&t)
                    );
                }
            }
            Err(m) => {
                let _ = writeln!(out, "  undecodable frame: {m}");
                return Ok(out);
            }
        }
        off = f.end;
    }
    match damage_after(&buf, off) {
        Some(v) => {
            let _ = writeln!(
                out,
                "DAMAGED at offset {off}: not a valid frame, but a valid frame (zxid {:#x}) follows at offset {}",
                v.first_zxid, v.offset
            );
        }
        None if buf[off..].iter().any(|&b| b != 0) => {
            let _ = writeln!(
                out,
                "torn tail at offset {off} (no valid frame after it, but for appends that \
                 were in flight with it)"
            );
        }
        None => {
            let _ = writeln!(out, "end of data at offset {off}");
        }
    }
    Ok(out)
}

fn json_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `corral snapshot dump FILE [--json]`. Text: every record in file order (a fuzzy
/// snapshot may name a path again, or remove it, after the walk; see
/// `storage::snapshot`). JSON: the nodes the snapshot describes once those are applied:
/// `{"last_zxid", "start_zxid", "nodes": [{"path", "data" (base64), "acl": [{"perms",
/// "scheme", "id"}], "stat": {...}}], "sessions": [{"id", "timeout"}]}`.
pub async fn snapshot_dump<B: Backend>(backend: &B, file: &Path, json: bool) -> Result<String> {
    let s = load_snapshot(backend, file).await?;
    let mut out = String::new();
    if !json {
        let _ = writeln!(
            out,
            "{}: snapshot at zxid {:#x} (walk started at {:#x}), {} node records, {} tombstones, {} sessions",
            file.display(),
            s.last_zxid,
            s.start_zxid,
            s.node_records,
            s.tombstones,
            s.sessions.len()
        );
        for rec in s.records() {
            let n = match rec {
                SnapRecord::Node(n) => n,
                SnapRecord::Tombstone(p) => {
                    let _ = writeln!(out, "{p} removed");
                    continue;
                }
                SnapRecord::ChangesFollow => {
                    let _ = writeln!(
                        out,
                        "-- changes made while the walk ran (the last word on a path wins) --"
                    );
                    continue;
                }
            };
            let st = &n.stat;
            let _ = writeln!(
                out,
                "{} data={}B acl={} czxid={:#x} mzxid={:#x} ctime={} mtime={} version={} cversion={} aversion={} ephemeralOwner={:#x} pzxid={:#x}",
                n.path, n.data.map_or(0, |d| d.len()), n.acl().len(), { st.czxid }, { st.mzxid }, { st.ctime }, { st.mtime },
                { st.version }, { st.cversion }, { st.aversion }, { st.ephemeral_owner }, { st.pzxid }
            );
        }
        for (id, to) in &s.sessions {
            let _ = writeln!(out, "session {id:#x} timeout={to}");
        }
        return Ok(out);
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let _ = write!(
        out,
        "{{\"last_zxid\":{},\"start_zxid\":{},\"nodes\":[",
        s.last_zxid, s.start_zxid
    );
    for (i, n) in s.nodes().iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"path\":");
        json_str(&n.path, &mut out);
        let _ = write!(out, ",\"data\":\"{}\",\"acl\":[", b64.encode(&n.data));
        for (j, a) in n.acl.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            let _ = write!(out, "{{\"perms\":{},\"scheme\":", a.perms);
            json_str(&a.id.scheme, &mut out);
            out.push_str(",\"id\":");
            json_str(&a.id.id, &mut out);
            out.push('}');
        }
        let st = &n.stat;
        let _ = write!(
            out,
            "],\"stat\":{{\"czxid\":{},\"mzxid\":{},\"ctime\":{},\"mtime\":{},\"version\":{},\"cversion\":{},\"aversion\":{},\"ephemeralOwner\":{},\"pzxid\":{}}}}}",
            { st.czxid }, { st.mzxid }, { st.ctime }, { st.mtime }, { st.version }, { st.cversion },
            { st.aversion }, { st.ephemeral_owner }, { st.pzxid }
        );
    }
    out.push_str("],\"sessions\":[");
    for (i, (id, to)) in s.sessions.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{{\"id\":{id},\"timeout\":{to}}}");
    }
    out.push_str("]}\n");
    Ok(out)
}

/// `corral log truncate --zxid Z`: keeps every logged txn with zxid <= Z and removes the
/// rest: later segments are deleted; the segment holding Z is replaced by a copy that
/// ends with the frame holding Z, re-encoded without the txns after it (crash-safe:
/// see `storage::truncate`). If the log is damaged before Z, it is cut at the damage.
/// A cut a crash interrupted is finished first. Run it offline (server stopped).
/// Returns a summary.
pub async fn log_truncate<B: Backend>(backend: &B, log_dir: &Path, zxid: i64) -> Result<String> {
    let mut out = String::new();
    if let Some(z) = truncate::finish_interrupted(backend, log_dir, OnDamage::Cut).await? {
        let _ = writeln!(out, "finished an interrupted cut after zxid {z:#x}");
    }
    let plan = truncate::plan(backend, log_dir, zxid, OnDamage::Cut).await?;
    truncate::cut(backend, log_dir, &plan).await?;
    if let Some((p, off)) = &plan.damaged_at {
        let _ = writeln!(
            out,
            "{}: damaged at offset {off}: the log is cut there",
            p.display()
        );
    }
    if let Some(k) = &plan.keep {
        let _ = writeln!(
            out,
            "{}: kept txns up to zxid {}, data now ends at offset {}{}",
            k.path.display(),
            plan.last_kept
                .map_or("(none)".into(), |z| format!("{z:#x}")),
            k.end,
            if k.rewrite.is_some() {
                ""
            } else {
                " (unchanged)"
            }
        );
    }
    for p in &plan.remove {
        let _ = writeln!(out, "removed {}", p.display());
    }
    if plan.last_kept.is_none_or(|z| z < zxid) {
        let _ = writeln!(
            out,
            "note: the log ended (or was damaged) before zxid {zxid:#x}"
        );
    }
    Ok(out)
}
