//! Process-level test of a full disk: corral runs with its data dir on a small tmpfs
//! (mounted here, so the test needs root) and small log segments, a filler file takes
//! the rest of the space, and then:
//! - writes that need a new log segment get THROTTLEDOP (ZooKeeper's "not executed at
//!   all, retry with back off"), promptly, not after a hang;
//! - reads keep working on the same session;
//! - once the filler is deleted, writes succeed again without a restart;
//! - after a `kill -9` and restart, every acknowledged write is there and no refused
//!   one is.
//!
//! Without root the test cannot mount and says so; as root a failed mount is a failure.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::durable::DurableServer;
use common::*;
use zookeeper_client as zk;

/// A tmpfs mounted for the test, unmounted on drop (also when the test fails).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mounting a tmpfs on {}: {}",
            dir.path().display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let out = Command::new("umount").arg(self.dir.path()).output();
        if !matches!(&out, Ok(o) if o.status.success()) {
            // Busy (a process still holds a file): detach it so it goes when free.
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .output();
        }
    }
}

/// Fills the file system holding `path` with one file until ENOSPC.
fn fill(path: &Path) -> u64 {
    let mut f = std::fs::File::create(path).expect("create filler");
    let chunk = vec![0x5au8; 64 << 10];
    let mut n = 0u64;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(k) => n += k as u64,
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
    let _ = f.sync_all();
    n
}

fn value(i: usize) -> Vec<u8> {
    let mut v = format!("w{i}-").into_bytes();
    v.resize(16 << 10, b'x');
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_with_throttledop_and_recovers() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: mounting a small tmpfs needs root, and this runs as a normal user");
        return;
    }
    // Declared first, dropped last: the server is killed before the unmount.
    let fs = Tmpfs::mount("40m");
    let data: PathBuf = fs.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let mut server = DurableServer::new(&[
        &format!("dataDir={}", data.display()),
        // KiB, as in ZooKeeper: 1 MiB segments roll over every ~60 writes here.
        "preAllocSize=1024",
        // No snapshot while the disk is full: this test is about the log.
        "snapCount=1000000",
    ]);
    server.start();
    let client = within(20, "connect", server.client()).await;
    let opts = anyone();

    // Acknowledged before the disk fills.
    let mut acked: Vec<usize> = Vec::new();
    for i in 0..100 {
        within(
            10,
            "a write",
            client.create(&format!("/n{i}"), &value(i), &opts),
        )
        .await
        .unwrap();
        acked.push(i);
    }
    let filler = fs.path().join("filler");
    let filled = fill(&filler);
    assert!(filled > 0);

    // Writes go on while they fit in the current (and a prepared) segment, then are
    // refused, each answered at once. Sixteen at a time (the client sends them in call
    // order without waiting), so the batch the log refuses has others built behind it,
    // which must be refused with it.
    let mut refused: Vec<usize> = Vec::new();
    let mut i = 100;
    let started = Instant::now();
    while refused.is_empty() {
        assert!(
            i < 1000,
            "200+ writes of 16 KiB went through on a full 40 MiB tmpfs"
        );
        let paths: Vec<(usize, String)> = (i..i + 16).map(|k| (k, format!("/n{k}"))).collect();
        let sent: Vec<_> = paths
            .iter()
            .map(|(k, path)| (*k, client.create(path, &value(*k), &opts)))
            .collect();
        for (k, reply) in sent {
            match within(10, "a write on a full disk", reply).await {
                Ok(_) => acked.push(k),
                Err(zk::Error::Throttled) => refused.push(k),
                Err(e) => panic!("write {k}: {e}; server output:\n{}", server.output()),
            }
        }
        i += 16;
    }
    // A batch of several writes needed a new segment; one write alone may still fit in
    // the current one, until it does not.
    loop {
        assert!(i < 1100, "writes went on through a full disk");
        match within(
            10,
            "a write on a full disk",
            client.create(&format!("/n{i}"), &value(i), &opts),
        )
        .await
        {
            Ok(_) => acked.push(i),
            Err(zk::Error::Throttled) => break refused.push(i),
            Err(e) => panic!("write {i}: {e}; server output:\n{}", server.output()),
        }
        i += 1;
    }
    i += 1;
    assert!(started.elapsed() < Duration::from_secs(60));
    // Still refused, promptly; reads answer meanwhile.
    for _ in 0..5 {
        let t = Instant::now();
        let r = within(
            10,
            "a refused write",
            client.create(&format!("/n{i}"), &value(i), &opts),
        )
        .await;
        assert!(matches!(r, Err(zk::Error::Throttled)), "{r:?}");
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "refused after {:?}",
            t.elapsed()
        );
        refused.push(i);
        i += 1;
        let (d, _) = within(10, "a read", client.get_data("/n0")).await.unwrap();
        assert_eq!(d, value(0));
    }
    // (A small write may still fit in the current segment: only what needs a new one is
    // refused, so the refused setData is as big as the refused creates.)
    let r = within(
        10,
        "a refused setData",
        client.set_data("/n0", &value(999_999), None),
    )
    .await;
    assert!(matches!(r, Err(zk::Error::Throttled)), "{r:?}");
    let children = within(10, "a read", client.list_children("/"))
        .await
        .unwrap();
    assert_eq!(
        children.len(),
        acked.len() + 1,
        "acked nodes plus /zookeeper"
    );
    assert!(server
        .output()
        .contains("writes fail with THROTTLEDOP until space returns"));

    // Space returns: writes succeed again, without a restart.
    std::fs::remove_file(&filler).unwrap();
    let resumed = Instant::now();
    loop {
        match within(
            10,
            "a write after space returned",
            client.create(&format!("/n{i}"), &value(i), &opts),
        )
        .await
        {
            Ok(_) => {
                acked.push(i);
                i += 1;
                break;
            }
            Err(zk::Error::Throttled) => refused.push(i),
            Err(e) => panic!("write {i}: {e}"),
        }
        i += 1;
        assert!(
            resumed.elapsed() < Duration::from_secs(10),
            "writes did not resume; server output:\n{}",
            server.output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for _ in 0..100 {
        within(
            10,
            "a write",
            client.create(&format!("/n{i}"), &value(i), &opts),
        )
        .await
        .unwrap();
        acked.push(i);
        i += 1;
    }
    assert!(server.output().contains("writes resume"));
    eprintln!(
        "{} writes acknowledged, {} refused; server log:\n{}",
        acked.len(),
        refused.len(),
        server.output()
    );
    drop(client);

    // After a crash and restart: every acknowledged write, no refused one.
    server.restart();
    let client = within(20, "connect after restart", server.client()).await;
    for &a in &acked {
        let (d, _) = within(10, "a read", client.get_data(&format!("/n{a}")))
            .await
            .unwrap_or_else(|e| panic!("acknowledged /n{a} lost: {e}"));
        assert_eq!(d, value(a));
    }
    for &r in &refused {
        let s = within(10, "a read", client.check_stat(&format!("/n{r}")))
            .await
            .unwrap();
        assert!(s.is_none(), "refused /n{r} was written");
    }
    let (d, _) = within(10, "a read", client.get_data("/n0")).await.unwrap();
    assert_eq!(d, value(0), "the refused setData left no trace");
    drop(client);
    server.kill9();
}
