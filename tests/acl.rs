//! ACLs and authentication: world, digest, auth, ip and super; the permission each op
//! needs; NoAuth, InvalidACL and AuthFailed; whoAmI.

mod common;

use std::time::Duration;

use common::raw::*;
use common::*;
use corral::proto::*;
use zk::{Acl, Acls, AuthId, AuthUser, CreateMode, Error, Permission};
use zookeeper_client as zk;

const ALICE: &[u8] = b"alice:secret";
/// base64(sha1("alice:secret")), as DigestAuthenticationProvider.generateDigest.
const ALICE_ID: &str = "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=";

fn acl(perms: Permission, scheme: &str, id: &str) -> Acl {
    Acl::new(perms, AuthId::new(scheme, id))
}

#[tokio::test]
async fn world_permissions_per_operation() {
    let srv = TestServer::start(&[]);
    let c = srv.client().await;
    let read_create = [acl(
        Permission::READ | Permission::CREATE,
        "world",
        "anyone",
    )];
    c.create(
        "/w",
        b"x",
        &CreateMode::Persistent.with_acls(Acls::new(&read_create)),
    )
    .await
    .unwrap();
    assert_eq!(c.get_data("/w").await.unwrap().0, b"x");
    assert_eq!(
        c.set_data("/w", b"y", None).await.unwrap_err(),
        Error::NoAuth
    );
    assert_eq!(
        c.set_acl("/w", &Acls::anyone_all(), None)
            .await
            .unwrap_err(),
        Error::NoAuth,
        "setACL needs ADMIN"
    );
    c.create("/w/k", b"", &anyone()).await.unwrap();
    assert_eq!(
        c.delete("/w/k", None).await.unwrap_err(),
        Error::NoAuth,
        "delete needs DELETE on the parent"
    );

    let nothing = [acl(Permission::NONE, "world", "anyone")];
    c.create(
        "/n",
        b"",
        &CreateMode::Persistent.with_acls(Acls::new(&nothing)),
    )
    .await
    .unwrap();
    assert_eq!(c.get_data("/n").await.unwrap_err(), Error::NoAuth);
    assert_eq!(c.list_children("/n").await.unwrap_err(), Error::NoAuth);
    assert_eq!(
        c.create("/n/k", b"", &anyone()).await.unwrap_err(),
        Error::NoAuth
    );
    // exists needs no permission (as the Debian 3.8 we compare with; READ on exists came
    // later with ZOOKEEPER-2590); delete of the node itself is governed by its parent.
    assert!(c.check_stat("/n").await.unwrap().is_some());
    c.delete("/n", None).await.unwrap();
}

#[tokio::test]
async fn digest_and_auth_schemes() {
    let srv = TestServer::start(&[]);
    let alice = srv
        .connector()
        .with_auth("digest", ALICE)
        .connect(&srv.connect_string())
        .await
        .unwrap();
    let anon = srv.client().await;
    let only_alice = [acl(Permission::ALL, "digest", ALICE_ID)];
    alice
        .create(
            "/d",
            b"secret",
            &CreateMode::Persistent.with_acls(Acls::new(&only_alice)),
        )
        .await
        .unwrap();
    assert_eq!(alice.get_data("/d").await.unwrap().0, b"secret");
    assert_eq!(anon.get_data("/d").await.unwrap_err(), Error::NoAuth);

    // "auth" in an ACL stands for every identity the creating session holds.
    alice
        .create(
            "/mine",
            b"",
            &CreateMode::Persistent.with_acls(Acls::creator_all()),
        )
        .await
        .unwrap();
    let (stored, _) = alice.get_acl("/mine").await.unwrap();
    assert_eq!(stored, vec![acl(Permission::ALL, "digest", ALICE_ID)]);
    assert_eq!(
        anon.create(
            "/anon",
            b"",
            &CreateMode::Persistent.with_acls(Acls::creator_all())
        )
        .await
        .unwrap_err(),
        Error::InvalidAcl,
        "auth ACL without any authenticated identity"
    );

    // addauth later in the session works; a wrong password is just another identity.
    let late = srv.client().await;
    late.auth("digest", b"alice:wrong").await.unwrap();
    assert_eq!(late.get_data("/d").await.unwrap_err(), Error::NoAuth);
    late.auth("digest", ALICE).await.unwrap();
    assert_eq!(late.get_data("/d").await.unwrap().0, b"secret");

    let mut users = late.list_auth_users().await.unwrap();
    users.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    assert!(
        users.contains(&AuthUser::new("ip", "127.0.0.1")),
        "{users:?}"
    );
    assert!(
        users.contains(&AuthUser::new("digest", "alice")),
        "{users:?}"
    );
    assert_eq!(
        anon.list_auth_users().await.unwrap(),
        vec![AuthUser::new("ip", "127.0.0.1")]
    );
}

#[tokio::test]
async fn ip_scheme_matches_address_and_prefix() {
    let srv = TestServer::start(&[]);
    let c = srv.client().await;
    let local = [acl(Permission::ALL, "ip", "127.0.0.1")];
    let net = [acl(Permission::ALL, "ip", "127.0.0.0/8")];
    let other = [acl(Permission::ALL, "ip", "10.1.2.3")];
    c.create(
        "/l",
        b"",
        &CreateMode::Persistent.with_acls(Acls::new(&local)),
    )
    .await
    .unwrap();
    c.create(
        "/n",
        b"",
        &CreateMode::Persistent.with_acls(Acls::new(&net)),
    )
    .await
    .unwrap();
    c.create(
        "/o",
        b"",
        &CreateMode::Persistent.with_acls(Acls::new(&other)),
    )
    .await
    .unwrap();
    c.get_data("/l").await.unwrap();
    c.get_data("/n").await.unwrap();
    assert_eq!(c.get_data("/o").await.unwrap_err(), Error::NoAuth);
    let bad = [acl(Permission::ALL, "ip", "not-an-ip")];
    assert_eq!(
        c.create(
            "/bad",
            b"",
            &CreateMode::Persistent.with_acls(Acls::new(&bad))
        )
        .await
        .unwrap_err(),
        Error::InvalidAcl
    );
    let unknown = [acl(Permission::ALL, "nosuchscheme", "x")];
    assert_eq!(
        c.set_acl("/l", &unknown, None).await.unwrap_err(),
        Error::InvalidAcl
    );
}

#[tokio::test]
async fn super_digest_bypasses_acls() {
    let srv = TestServer::start(&[&format!(
        "DigestAuthenticationProvider.superDigest={SUPER_DIGEST}"
    )]);
    let c = srv.client().await;
    let nothing = [acl(Permission::NONE, "world", "anyone")];
    c.create(
        "/locked",
        b"in",
        &CreateMode::Persistent.with_acls(Acls::new(&nothing)),
    )
    .await
    .unwrap();
    assert_eq!(c.get_data("/locked").await.unwrap_err(), Error::NoAuth);
    let root = srv
        .connector()
        .with_auth("digest", SUPER_USER.as_bytes())
        .connect(&srv.connect_string())
        .await
        .unwrap();
    assert_eq!(root.get_data("/locked").await.unwrap().0, b"in");
    root.set_acl("/locked", &Acls::anyone_all(), None)
        .await
        .unwrap();
    assert_eq!(c.get_data("/locked").await.unwrap().0, b"in");
}

#[tokio::test]
async fn unknown_auth_scheme_fails_the_session() {
    let srv = TestServer::start(&[]);
    let c = srv.client().await;
    assert_eq!(
        c.auth("nosuchscheme", b"whatever").await.unwrap_err(),
        Error::AuthFailed
    );
    assert!(c.check_stat("/").await.is_err());

    // On the wire: the reply to xid -4 carries AuthFailed, then the server closes.
    let (mut raw, _) = RawConn::connect(srv.addr).await;
    let auth = AuthPacket {
        r#type: 0,
        scheme: "nosuchscheme".into(),
        auth: "x".into(),
    };
    raw.send_xid(xid::AUTH, OpCode::Auth.as_i32(), Some(&auth))
        .await;
    let r = raw.reply().await;
    assert_eq!(r.header.xid, xid::AUTH);
    assert_eq!(r.err(), ErrorCode::AuthFailed.as_i32());
    assert!(raw.closed_within(Duration::from_secs(5)).await);

    // A good addauth answers xid -4 with no error.
    let (mut raw, _) = RawConn::connect(srv.addr).await;
    let auth = AuthPacket {
        r#type: 0,
        scheme: "digest".into(),
        auth: ALICE.to_vec().into(),
    };
    raw.send_xid(xid::AUTH, OpCode::Auth.as_i32(), Some(&auth))
        .await;
    let r = raw.reply().await;
    assert_eq!((r.header.xid, r.err()), (xid::AUTH, 0));
}

#[tokio::test]
async fn invalid_acls_on_the_wire() {
    let srv = TestServer::start(&[]);
    let (mut c, _) = RawConn::connect(srv.addr).await;
    let invalid = ErrorCode::InvalidAcl.as_i32();
    let mut req = create_req("/empty", b"", 0);
    req.acl.clear();
    assert_eq!(c.call(OpCode::Create, Some(&req)).await.err(), invalid);
    let mut req = create_req("/nocolon", b"", 0);
    req.acl = vec![corral::proto::Acl {
        perms: perms::ALL,
        id: Id {
            scheme: "digest".into(),
            id: "justaname".into(),
        },
    }];
    assert_eq!(c.call(OpCode::Create, Some(&req)).await.err(), invalid);
    assert_eq!(
        c.call(OpCode::Create, Some(&create_req("/ok", b"", 0)))
            .await
            .err(),
        0
    );
    let set = SetAclRequest {
        path: "/ok".into(),
        acl: vec![],
        version: -1,
    };
    assert_eq!(c.call(OpCode::SetAcl, Some(&set)).await.err(), invalid);
}
