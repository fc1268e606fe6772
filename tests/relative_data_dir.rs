//! zoo.cfg's dataDir is often relative (the embedded default is `./data`): the server
//! must log, snapshot and recover there, resolved against its working directory.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use zookeeper_client as zk;

fn start(cwd: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_corral"))
        .args(["server", "--config", "zoo.cfg"])
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn corral");
    let out = child.stdout.take().unwrap();
    let mut addr = String::new();
    for line in BufReader::new(out).lines() {
        let line = line.unwrap();
        if let Some(a) = line.strip_prefix("corral: serving clients on ") {
            addr = a.to_string();
            break;
        }
    }
    assert!(!addr.is_empty(), "corral did not start");
    (child, addr)
}

async fn client(addr: &str) -> zk::Client {
    zk::Client::connector()
        .with_session_timeout(Duration::from_secs(10))
        .connect(addr)
        .await
        .expect("connect")
}

#[tokio::test]
async fn a_relative_data_dir_keeps_writes_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("zoo.cfg"),
        "tickTime=2000\ndataDir=./data\nclientPort=0\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n",
    )
    .unwrap();
    let (mut server, addr) = start(dir.path());
    let c = client(&addr).await;
    let opts = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    c.create("/rel", b"kept", &opts).await.unwrap();
    drop(c);
    server.kill().unwrap();
    server.wait().unwrap();
    assert!(dir.path().join("data").is_dir());

    let (mut server, addr) = start(dir.path());
    let c = client(&addr).await;
    assert_eq!(c.get_data("/rel").await.unwrap().0, b"kept");
    server.kill().unwrap();
    server.wait().unwrap();
}
