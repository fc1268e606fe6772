//! The Rust client (`zookeeper-client` with rustls) over TLS: corral's secure client
//! port with PEM stores, the client's certificate becoming its `x509` id (whoAmI), an
//! `x509` ACL naming that subject, and the plain port refusing what the ACL protects.
//! `CORRAL_TEST_ZOOKEEPER=1` runs the same against Apache ZooKeeper 3.8 (Netty).

mod common;

use common::ports::fresh_port;
use common::{anyone, TestServer};
use zookeeper_client as zk;

const SUBJECT: &str = "CN=client,OU=test,O=corral,C=US";

fn tls_server(certs: &std::path::Path, port: u16) -> TestServer {
    tls_server_with(certs, port, &[])
}

fn tls_server_with(certs: &std::path::Path, port: u16, extra: &[&str]) -> TestServer {
    let p = |f: &str| certs.join(f).display().to_string();
    let mut lines = vec![
        format!("secureClientPort={port}"),
        "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory".into(),
        format!("ssl.keyStore.location={}", p("server.pem")),
        format!("ssl.trustStore.location={}", p("ca.pem")),
    ];
    lines.extend(extra.iter().map(|l| l.to_string()));
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    TestServer::start(&refs)
}

async fn tls_client(certs: &std::path::Path, port: u16) -> zk::Client {
    tls_client_as(certs, port, "client").await
}

/// Connects with the certificate `{who}.pem` / `{who}-key.pem`.
async fn tls_client_as(certs: &std::path::Path, port: u16, who: &str) -> zk::Client {
    let read = |f: &str| std::fs::read_to_string(certs.join(f)).unwrap();
    let tls = zk::TlsOptions::new()
        .with_pem_ca(&read("ca.pem"))
        .unwrap()
        .with_pem_identity(
            &read(&format!("{who}.pem")),
            &read(&format!("{who}-key.pem")),
        )
        .unwrap();
    zk::Client::connector()
        .with_tls(tls)
        .with_session_timeout(std::time::Duration::from_secs(10))
        .connect(&format!("tcp+tls://127.0.0.1:{port}"))
        .await
        .expect("connect over TLS")
}

#[tokio::test]
async fn the_rust_client_over_tls_is_known_by_its_certificate() {
    let Some(certs) = common::test_certs() else {
        eprintln!("skipped: openssl or keytool missing");
        return;
    };
    let port = fresh_port(&mut Vec::new());
    let srv = tls_server(&certs, port);
    let c = tls_client(&certs, port).await;

    let users = c.list_auth_users().await.unwrap();
    let x509 = zk::AuthUser::new("x509", SUBJECT);
    assert!(users.contains(&x509), "whoAmI over TLS: {users:?}");

    // An ACL for exactly that subject.
    let acl = vec![zk::Acl::new(
        zk::Permission::ALL,
        zk::AuthId::new("x509", SUBJECT),
    )];
    let opts = zk::CreateMode::Persistent.with_acls(zk::Acls::new(&acl));
    c.create("/mine", b"x509 only", &opts).await.unwrap();
    assert_eq!(c.get_data("/mine").await.unwrap().0, b"x509 only");
    c.create("/open", b"", &anyone()).await.unwrap();

    // The plain port: the same node is out of reach.
    let plain = srv.client().await;
    assert!(matches!(
        plain.get_data("/mine").await,
        Err(zk::Error::NoAuth)
    ));
    assert!(plain.get_data("/open").await.is_ok());
}

/// ZooKeeper 3.9's `ssl.clientCertIdType=SAN`: the id is cut from the URI entry of the
/// certificate's subjectAltName; a certificate without such an entry falls back to its
/// subject. (ZooKeeper 3.8 has no such keys: corral only.)
#[tokio::test]
async fn a_san_rule_makes_the_x509_id_from_the_subject_alt_name() {
    let Some(certs) = common::test_certs() else {
        eprintln!("skipped: openssl or keytool missing");
        return;
    };
    if common::using_zookeeper() {
        eprintln!("skipped: ZooKeeper 3.8 has no ssl.clientCertIdType");
        return;
    }
    let port = fresh_port(&mut Vec::new());
    let _srv = tls_server_with(
        &certs,
        port,
        &[
            "ssl.clientCertIdType=SAN",
            "ssl.clientCertIdSanMatchType=6",
            "ssl.clientCertIdSanMatchRegex=^spiffe://corral\\.test/",
            "ssl.clientCertIdSanExtractRegex=^spiffe://[^/]+/team/(.+)$",
        ],
    );
    let alice = tls_client_as(&certs, port, "spiffe").await;
    let users = alice.list_auth_users().await.unwrap();
    assert!(
        users.contains(&zk::AuthUser::new("x509", "alice")),
        "whoAmI: {users:?}"
    );
    let plain_subject = tls_client(&certs, port).await;
    let users = plain_subject.list_auth_users().await.unwrap();
    assert!(
        users.contains(&zk::AuthUser::new("x509", SUBJECT)),
        "whoAmI: {users:?}"
    );
}
