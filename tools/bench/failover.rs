//! `corral-bench first-write`: the time until a write succeeds, optionally from the
//! moment this tool sends SIGKILL to a server process (`--kill-pid`, the leader the
//! harness started): the failover time a client sees. Every host is tried at once,
//! each with fresh sessions (a createSession is itself a write through the leader)
//! and a setData, again every 5 ms after a failure; the first success ends it.

use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;

use corral::proto::*;

use crate::client::Conn;

#[derive(Debug, Clone, Serialize)]
pub struct FirstWrite {
    /// From the SIGKILL (or the start) to the successful reply.
    pub seconds: f64,
    /// The server that took the write.
    pub host: String,
    /// Attempts that failed before, over every host.
    pub failed_attempts: u64,
    /// The last few failures, for the log.
    pub last_failures: Vec<String>,
    pub killed_pid: Option<u32>,
}

async fn attempt(host: &str, path: &str, value: Bytes) -> Result<(), String> {
    let mut conn = tokio::time::timeout(Duration::from_secs(1), Conn::connect(host))
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| format!("connect: {e}"))?;
    let r = SetDataRequest {
        path: path.into(),
        data: value,
        version: -1,
    };
    let (hdr, _) =
        tokio::time::timeout(Duration::from_secs(2), conn.call(OpCode::SetData, Some(&r)))
            .await
            .map_err(|_| "setData timed out".to_string())?
            .map_err(|e| format!("setData: {e}"))?;
    let _ = tokio::time::timeout(Duration::from_millis(500), conn.close()).await;
    if hdr.err != 0 {
        return Err(format!("setData: {}", crate::report::error_name(hdr.err)));
    }
    Ok(())
}

pub fn first_write(
    hosts: &[String],
    path: &str,
    kill_pid: Option<u32>,
    timeout: Duration,
) -> io::Result<FirstWrite> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let set = tokio::task::LocalSet::new();
    set.block_on(&rt, async {
        let t0 = Instant::now();
        if let Some(pid) = kill_pid {
            // SAFETY: kill has no memory preconditions; the pid is a server the caller
            // started and names explicitly.
            if unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) } != 0 {
                return Err(io::Error::other(format!(
                    "kill -9 {pid}: {}",
                    io::Error::last_os_error()
                )));
            }
        }
        let failures = Rc::new(std::cell::RefCell::new((0u64, Vec::<String>::new())));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(f64, String)>();
        let mut tasks = Vec::new();
        for h in hosts {
            let (h, path, tx, failures) =
                (h.clone(), path.to_string(), tx.clone(), failures.clone());
            tasks.push(tokio::task::spawn_local(async move {
                let mut n = 0u64;
                loop {
                    n += 1;
                    let value = Bytes::copy_from_slice(&n.to_be_bytes());
                    match attempt(&h, &path, value).await {
                        Ok(()) => {
                            let _ = tx.send((t0.elapsed().as_secs_f64(), h));
                            return;
                        }
                        Err(e) => {
                            let mut f = failures.borrow_mut();
                            f.0 += 1;
                            f.1.push(format!("{:.3}s {h}: {e}", t0.elapsed().as_secs_f64()));
                            if f.1.len() > 8 {
                                f.1.remove(0);
                            }
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }));
        }
        drop(tx);
        let got = tokio::time::timeout(timeout, rx.recv()).await;
        for t in &tasks {
            t.abort();
        }
        let (n, last) = failures.borrow().clone();
        match got {
            Ok(Some((seconds, host))) => Ok(FirstWrite {
                seconds,
                host,
                failed_attempts: n,
                last_failures: last,
                killed_pid: kill_pid,
            }),
            _ => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "no write succeeded within {timeout:?} ({n} attempts failed; last: {})",
                    last.join(" | ")
                ),
            )),
        }
    })
}
