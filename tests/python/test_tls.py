"""TLS on the client port, as ZooKeeper 3.8 configures it: `secureClientPort` with
key and trust stores in JKS, PKCS12 and PEM, `ssl.clientAuth`, client hostname
verification, `client.portUnification`, and the `x509` auth id of a client
certificate (whoAmI, `auth` ACLs).

Clients: kazoo (Python's ssl, PEM files) and ZooKeeper's own Java CLI (Netty,
JKS/PKCS12 stores, `-Dzookeeper.client.secure=true`). Run with `--target zookeeper`
the same tests pass against Apache ZooKeeper 3.8, which is how they were checked.
"""

import os
import subprocess
import tempfile
import uuid

import pytest

import servers

kazoo = pytest.importorskip("kazoo.client")
from kazoo.exceptions import NoAuthError  # noqa: E402

PASSWORD = "testpass"
SUBJECT = "CN=client,OU=test,O=corral,C=US"
MAKE_CERTS = os.path.join(servers.REPO, "tools", "make-test-certs")

needs_tools = pytest.mark.skipif(
    not all(os.path.exists(p) for p in ("/usr/bin/openssl", "/usr/bin/keytool")),
    reason="openssl and keytool make the test certificates",
)
pytestmark = needs_tools


@pytest.fixture(scope="module")
def certs():
    d = tempfile.mkdtemp(prefix="corral-certs-")
    subprocess.run([MAKE_CERTS, d, PASSWORD], check=True, capture_output=True)
    return d


STORES = {
    "jks": ("server.jks", "truststore.jks"),
    "pkcs12": ("server.p12", "truststore.p12"),
    "pem": ("server.pem", "ca.pem"),
    # A PEM key store whose PKCS#8 key is encrypted with the store's password.
    "pem-encrypted": ("server-enc.pem", "ca.pem"),
}


def tls_config(certs, fmt="jks", **extra):
    key, trust = STORES[fmt]
    cfg = {
        "secureClientPort": str(servers.free_port()),
        "serverCnxnFactory": "org.apache.zookeeper.server.NettyServerCnxnFactory",
        "authProvider.x509": "org.apache.zookeeper.server.auth.X509AuthenticationProvider",
        "ssl.keyStore.location": os.path.join(certs, key),
        "ssl.keyStore.password": PASSWORD,
        "ssl.trustStore.location": os.path.join(certs, trust),
        "ssl.trustStore.password": PASSWORD,
    }
    if fmt == "pem":
        # As ZooKeeper's PemReader: a password means an encrypted key.
        del cfg["ssl.keyStore.password"], cfg["ssl.trustStore.password"]
    cfg.update(extra)
    return cfg


def secure_hostport(server):
    return f"127.0.0.1:{server.config['secureClientPort']}"


def kazoo_tls(certs, hostport, cert="client.pem", key="client-key.pem", **kw):
    c = kazoo.KazooClient(
        hosts=hostport, use_ssl=True, verify_certs=True,
        ca=os.path.join(certs, "ca.pem"),
        certfile=os.path.join(certs, cert) if cert else None,
        keyfile=os.path.join(certs, key) if key else None,
        timeout=10, connection_retry={"max_tries": 0}, **kw)
    c.start(timeout=10)
    return c


def zkcli(hostport, *args, certs=None, store="jks"):
    """ZooKeeper's CLI; over TLS with the client's JKS or PKCS12 store when certs."""
    flags = ["-Xmx128m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]
    if certs:
        ext = {"jks": "jks", "pkcs12": "p12"}[store]
        flags += [
            "-Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty",
            "-Dzookeeper.client.secure=true",
            f"-Dzookeeper.ssl.keyStore.location={certs}/client.{ext}",
            f"-Dzookeeper.ssl.keyStore.password={PASSWORD}",
            f"-Dzookeeper.ssl.trustStore.location={certs}/truststore.{ext}",
            f"-Dzookeeper.ssl.trustStore.password={PASSWORD}",
        ]
    cp = "/etc/zookeeper/conf:" + servers.ZK_CLASSPATH
    p = subprocess.run(["java", *flags, "-cp", cp, "org.apache.zookeeper.ZooKeeperMain",
                        "-server", hostport, *args], capture_output=True, text=True, timeout=60)
    return [ln for ln in (p.stdout + p.stderr).splitlines()
            if ln.strip() and not ln.startswith(
                ("SLF4J", "WATCHER::", "WatchedEvent", "log4j:", "Connecting to "))]


@pytest.mark.parametrize("fmt", list(STORES))
def test_kazoo_over_tls_with_each_server_store_format(server_factory, target, certs, fmt):
    if fmt == "pem-encrypted" and target == "zookeeper":
        pytest.skip("ZooKeeper 3.8's PemReader cannot decrypt PBES2 keys (Java's limit)")
    s = server_factory(tls_config(certs, fmt))
    c = kazoo_tls(certs, secure_hostport(s))
    try:
        p = "/tls-" + uuid.uuid4().hex[:8]
        c.create(p, b"over tls")
        assert c.get(p)[0] == b"over tls"
    finally:
        c.stop()
        c.close()


@pytest.mark.parametrize("store", ["jks", "pkcs12"])
def test_zkcli_over_tls_is_given_its_certificate_subject_as_x509_id(server_factory, certs, store):
    s = server_factory(tls_config(certs, store))
    lines = zkcli(secure_hostport(s), "whoami", certs=certs, store=store)
    assert f"x509: {SUBJECT}" in lines, lines
    assert "ip: 127.0.0.1" in lines, lines


def test_an_auth_acl_made_over_tls_admits_that_certificate_only(server_factory, certs):
    s = server_factory(tls_config(certs))
    p = "/x509-" + uuid.uuid4().hex[:8]
    # `auth` expands to the session's authenticated ids: here the x509 one.
    assert zkcli(secure_hostport(s), "create", p, "secret", "auth::cdrwa", certs=certs) == [
        f"Created {p}"]
    acl = zkcli(secure_hostport(s), "getAcl", p, certs=certs)
    assert acl[0] == "'x509,'" + SUBJECT.replace(",", "%2C"), acl
    assert zkcli(secure_hostport(s), "get", p, certs=certs) == ["secret"]
    # A plain connection has no certificate: no access.
    plain = kazoo.KazooClient(hosts=s.hostport, timeout=10)
    plain.start(timeout=10)
    try:
        with pytest.raises(NoAuthError):
            plain.get(p)
    finally:
        plain.stop()
        plain.close()


def test_a_client_without_a_trusted_certificate_is_refused(server_factory, certs):
    s = server_factory(tls_config(certs))
    hp = secure_hostport(s)
    for cert, key in [(None, None), ("rogue.pem", "rogue-key.pem")]:
        with pytest.raises(Exception):
            c = kazoo_tls(certs, hp, cert=cert, key=key)
            c.stop()
    # A plain client on the secure port gets nowhere either.
    with pytest.raises(Exception):
        c = kazoo.KazooClient(hosts=hp, timeout=3, connection_retry={"max_tries": 0})
        c.start(timeout=3)


def test_client_hostname_verification(server_factory, target, certs):
    # nosan.pem is signed by the trusted CA but names no address. ZooKeeper's client
    # port does not check client addresses (ClientX509Util), so it gets in...
    s = server_factory(tls_config(certs))
    c = kazoo_tls(certs, secure_hostport(s), cert="nosan.pem", key="nosan-key.pem")
    try:
        assert c.exists("/") is not None
    finally:
        c.stop()
        c.close()
    if target == "zookeeper":
        return  # ZooKeeper 3.8 has no ssl.clientHostnameVerification
    # ... unless asked to (ZooKeeper 3.9's ssl.clientHostnameVerification).
    s2 = server_factory(tls_config(certs, **{"ssl.clientHostnameVerification": "true"}))
    with pytest.raises(Exception):
        c = kazoo_tls(certs, secure_hostport(s2), cert="nosan.pem", key="nosan-key.pem")
        c.stop()


def test_client_auth_want_lets_a_client_without_a_certificate_in(server_factory, certs):
    s = server_factory(tls_config(certs, **{"ssl.clientAuth": "want"}))
    c = kazoo_tls(certs, secure_hostport(s), cert=None, key=None)
    try:
        assert c.exists("/") is not None
    finally:
        c.stop()
        c.close()
    lines = zkcli(secure_hostport(s), "whoami", certs=certs)
    assert f"x509: {SUBJECT}" in lines, lines


def test_port_unification_serves_plain_and_tls_on_the_client_port(server_factory, certs):
    cfg = tls_config(certs, **{"client.portUnification": "true"})
    del cfg["secureClientPort"]
    s = server_factory(cfg)
    p = "/unified-" + uuid.uuid4().hex[:8]
    c = kazoo_tls(certs, s.hostport)
    plain = kazoo.KazooClient(hosts=s.hostport, timeout=10)
    plain.start(timeout=10)
    try:
        c.create(p, b"both")
        assert plain.get(p)[0] == b"both"
    finally:
        for k in (c, plain):
            k.stop()
            k.close()
    assert f"x509: {SUBJECT}" in zkcli(s.hostport, "whoami", certs=certs)


def test_a_secure_port_registers_the_x509_provider_itself(server_factory, certs):
    # QuorumPeerConfig.configureSSLAuth: secureClientPort without authProvider.x509
    # still gives certificate clients their x509 id.
    cfg = tls_config(certs)
    del cfg["authProvider.x509"]
    s = server_factory(cfg)
    assert f"x509: {SUBJECT}" in zkcli(secure_hostport(s), "whoami", certs=certs)


def test_a_unified_port_asking_for_certificates_needs_the_x509_provider(server_factory, certs):
    # Without a secure port nothing registers it: ZooKeeper closes such TLS
    # connections ("X509 Auth provider not found: x509"); plain ones are fine.
    cfg = tls_config(certs, **{"client.portUnification": "true"})
    del cfg["authProvider.x509"], cfg["secureClientPort"]
    s = server_factory(cfg)
    with pytest.raises(Exception):
        c = kazoo_tls(certs, s.hostport)
        c.stop()
    plain = kazoo.KazooClient(hosts=s.hostport, timeout=10)
    plain.start(timeout=10)
    try:
        assert plain.exists("/") is not None
    finally:
        plain.stop()
        plain.close()


def test_addauth_x509_needs_a_certificate(server_factory, certs):
    # X509AuthenticationProvider.handleAuthentication re-reads the connection's
    # certificate: OK over TLS with one, AuthFailed on a plain connection.
    s = server_factory(tls_config(certs))
    c = kazoo_tls(certs, secure_hostport(s))
    try:
        c.add_auth("x509", "")
        assert c.exists("/") is not None
    finally:
        c.stop()
        c.close()
    plain = kazoo.KazooClient(hosts=s.hostport, timeout=10, connection_retry={"max_tries": 0})
    plain.start(timeout=10)
    try:
        with pytest.raises(Exception):
            plain.add_auth("x509", "")
    finally:
        plain.stop()
        plain.close()
