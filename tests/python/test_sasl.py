"""SASL DIGEST-MD5 logins (opcode 102) and the `sasl` ACL scheme, with real
clients: kazoo (through pure-sasl), a raw client driving pure-sasl by hand (to
see each reply's error code and whether the connection stays open), and the
Java zkCli with a JAAS `Client` section.

The server gets what an operator would give ZooKeeper: a JAAS file whose
`Server` section lists the users (DigestLoginModule `user_NAME="password"`),
passed as `-Djava.security.auth.login.config=...` (ZooKeeper on its command
line, corral through SERVER_JVMFLAGS, where zkServer.sh puts it), and zoo.cfg
keys that ZooKeeper turns into `zookeeper.*` system properties
(`authProvider.1`, `superUser`, `sessionRequireClientSASLAuth`,
`allowSaslFailedClients`).

Run with --target=zookeeper to check the same expectations against Apache
ZooKeeper 3.8.
"""

import os
import subprocess
import time
import uuid

import pytest

import servers
import zkraw as z

puresasl = pytest.importorskip("puresasl.client")
kazoo_client = pytest.importorskip("kazoo.client")
from kazoo.exceptions import ConnectionClosedError, NoAuthError  # noqa: E402
from kazoo.security import make_acl  # noqa: E402

SASL_PROVIDER = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider"
USERS = {"bob": "bobsecret", "alice": "alicesecret", "admin": "adminsecret"}
SASL_CONFIG = {"authProvider.1": SASL_PROVIDER, "superUser": "admin"}

ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"

# ZooKeeper's error codes.
AUTH_FAILED = -115
SESSION_CLOSED_REQUIRE_SASL_AUTH = -124
NO_AUTH = -102


def write_jaas(tmp_path):
    path = tmp_path / "jaas.conf"
    users = "\n".join(f'    user_{u}="{p}"' for u, p in USERS.items())
    path.write_text(
        "// the server's DIGEST-MD5 users\n"
        "Server {\n"
        "    org.apache.zookeeper.server.auth.DigestLoginModule required\n"
        f"{users};\n"
        "};\n")
    return str(path)


@pytest.fixture
def sasl_server(target, tmp_path):
    """Start servers with the JAAS file; stopped (by pid) at the end."""
    started = []
    jaas = write_jaas(tmp_path)

    def start(extra=None, with_jaas=True):
        cfg = dict(SASL_CONFIG)
        cfg.update(extra or {})
        flags = [f"-Djava.security.auth.login.config={jaas}"] if with_jaas else []
        s = servers.Server(target, cfg, jvm_flags=flags)
        started.append(s)
        s.start()
        return s

    yield start
    for s in started:
        s.cleanup()


def kazoo(server, user=None, password=None, **kw):
    opts = None
    if user is not None:
        opts = {"mechanism": "DIGEST-MD5", "username": user, "password": password}
    c = kazoo_client.KazooClient(hosts=server.hostport, sasl_options=opts, timeout=10,
                                 connection_retry={"max_tries": 0}, **kw)
    return c


def sasl_token(token):
    return z.W().buf(token).b


def raw_sasl(c, user, password):
    """Runs a DIGEST-MD5 exchange on raw session `c`; returns the replies."""
    cli = puresasl.SASLClient(host="zk-sasl-md5", service="zookeeper",
                              mechanism="DIGEST-MD5", username=user, password=password)
    replies = []
    challenge = None
    for _ in range(8):  # DIGEST-MD5 needs two rounds; never loop for ever
        if cli.complete:
            break
        response = cli.process(challenge) or b""
        if cli.complete and not response:
            break
        rep = c.call(102, bytes(sasl_token(response)), decode=lambda r: r.buf())
        replies.append(rep)
        # An error, or a null token (no SASL server, or a failure allowed by
        # allowSaslFailedClients), ends the exchange.
        if rep.err != 0 or rep.body is None:
            break
        challenge = rep.body
    return replies


def who_am_i(c):
    def decode(r):
        n = r.int()
        return [(r.str(), r.str()) for _ in range(n)]

    rep = c.call(z.WHO_AM_I, decode=decode)
    assert rep.err == 0, rep
    # ZooKeeper keeps a connection's ids in a hash set: compare without order.
    return sorted(rep.body)


def closed(c):
    """Whether the server has closed raw session `c`'s connection."""
    c.sock.settimeout(5.0)
    try:
        return c.sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except OSError:
        return False


def test_good_login_shows_sasl_in_whoami(sasl_server):
    s = sasl_server()
    c = z.Client(s.host, s.port)
    try:
        replies = raw_sasl(c, "bob", "bobsecret")
        # A challenge, then rspauth: two OK replies.
        assert [r.err for r in replies] == [0, 0]
        assert replies[0].body.startswith(b'realm="zk-sasl-md5",nonce="')
        assert replies[-1].body.startswith(b"rspauth=")
        assert who_am_i(c) == [("ip", "127.0.0.1"), ("sasl", "bob")]
        assert c.exists("/").err == 0
    finally:
        c.close()


def test_super_user_login_adds_super(sasl_server):
    s = sasl_server()
    c = z.Client(s.host, s.port)
    try:
        assert [r.err for r in raw_sasl(c, "admin", "adminsecret")] == [0, 0]
        assert who_am_i(c) == [("ip", "127.0.0.1"), ("sasl", "admin"), ("super", "")]
    finally:
        c.close()


@pytest.mark.parametrize("user,password", [("bob", "wrong"), ("mallory", "bobsecret")])
def test_bad_login_is_auth_failed_and_closed(sasl_server, user, password):
    s = sasl_server()
    c = z.Client(s.host, s.port)
    try:
        replies = raw_sasl(c, user, password)
        assert [r.err for r in replies] == [0, AUTH_FAILED]
        assert closed(c)
    finally:
        c.close_socket()


def test_kazoo_login_and_sasl_acl(sasl_server):
    s = sasl_server()
    path = "/sasl-" + uuid.uuid4().hex[:8]
    bob = kazoo(s, "bob", "bobsecret")
    alice = kazoo(s, "alice", "alicesecret")
    admin = kazoo(s, "admin", "adminsecret")
    anon = kazoo(s)
    for k in (bob, alice, admin, anon):
        k.start()
    try:
        bob.create(path, b"secret", acl=[make_acl("sasl", "bob", all=True)])
        assert bob.get(path)[0] == b"secret"
        for other in (alice, anon):
            with pytest.raises(NoAuthError):
                other.get(path)
            with pytest.raises(NoAuthError):
                other.set(path, b"x")
        # zookeeper.superUser=admin: the SASL login is super.
        assert admin.get(path)[0] == b"secret"
        # The auth scheme expands to the session's sasl id.
        bob.create(path + "-auth", b"", acl=[make_acl("auth", "", read=True, write=True)])
        acl, _ = bob.get_acls(path + "-auth")
        assert [(a.id.scheme, a.id.id, a.perms) for a in acl] == [("sasl", "bob", 3)]
        with pytest.raises(NoAuthError):
            alice.get(path + "-auth")
    finally:
        for k in (bob, alice, admin, anon):
            k.stop()
            k.close()


def test_kazoo_wrong_password_fails(sasl_server):
    s = sasl_server()
    k = kazoo(s, "bob", "not-the-password")
    try:
        # kazoo reports the session connected before its SASL exchange, then
        # AUTH_FAILED closes it for good.
        k.start(timeout=10)
        deadline = time.monotonic() + 10
        while k.connected and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not k.connected
        with pytest.raises(ConnectionClosedError):
            k.exists("/")
    finally:
        k.stop()
        k.close()


def test_session_require_client_sasl_auth(sasl_server):
    s = sasl_server({"sessionRequireClientSASLAuth": "true"})
    # Without SASL, the first request is refused and the connection closed.
    c = z.Client(s.host, s.port)
    try:
        assert c.exists("/").err == SESSION_CLOSED_REQUIRE_SASL_AUTH
        assert closed(c)
    finally:
        c.close_socket()
    # A failed login is refused the same way.
    c = z.Client(s.host, s.port)
    try:
        assert [r.err for r in raw_sasl(c, "bob", "wrong")] == [0, SESSION_CLOSED_REQUIRE_SASL_AUTH]
        assert closed(c)
    finally:
        c.close_socket()
    # An authenticated session works.
    c = z.Client(s.host, s.port)
    try:
        assert [r.err for r in raw_sasl(c, "bob", "bobsecret")] == [0, 0]
        assert c.exists("/").err == 0
        assert c.create("/req-" + uuid.uuid4().hex[:8], b"x").err == 0
    finally:
        c.close()
    k = kazoo(s, "bob", "bobsecret")
    k.start()
    try:
        assert k.exists("/") is not None
    finally:
        k.stop()
        k.close()


def test_enforce_auth_with_digest_scheme(sasl_server):
    s = sasl_server({"enforce.auth.enabled": "true", "enforce.auth.schemes": "digest"})
    c = z.Client(s.host, s.port)
    try:
        assert c.add_auth("digest", b"u:p").err == 0
        assert c.exists("/").err == 0
    finally:
        c.close()
    c = z.Client(s.host, s.port)
    try:
        assert c.exists("/").err == SESSION_CLOSED_REQUIRE_SASL_AUTH
        assert closed(c)
    finally:
        c.close_socket()


def test_allow_sasl_failed_clients_keeps_the_session(sasl_server):
    s = sasl_server({"allowSaslFailedClients": "true"})
    c = z.Client(s.host, s.port)
    try:
        replies = raw_sasl(c, "bob", "wrong")
        # The failure is answered OK with a null token, and the session goes on.
        assert [r.err for r in replies] == [0, 0]
        assert replies[-1].body is None
        assert who_am_i(c) == [("ip", "127.0.0.1")]
        assert c.exists("/").err == 0
    finally:
        c.close()


def test_without_jaas_sasl_is_answered_with_nothing(sasl_server):
    s = sasl_server(with_jaas=False)
    c = z.Client(s.host, s.port)
    try:
        rep = c.call(102, bytes(sasl_token(b"")), decode=lambda r: r.buf())
        assert rep.err == 0 and rep.body is None
        assert who_am_i(c) == [("ip", "127.0.0.1")]
    finally:
        c.close()


def test_sasl_acl_needs_the_provider(target, tmp_path):
    """Without authProvider.N=SASLAuthenticationProvider a sasl ACL is invalid."""
    s = servers.Server(target, {}, jvm_flags=[f"-Djava.security.auth.login.config={write_jaas(tmp_path)}"])
    s.start()
    try:
        c = z.Client(s.host, s.port)
        try:
            assert [r.err for r in raw_sasl(c, "bob", "bobsecret")] == [0, 0]
            # Logged in, but sasl is no ACL scheme here, and no credential for `auth`.
            assert who_am_i(c) == [("ip", "127.0.0.1"), ("sasl", "")]
            acl = [(z.ALL, "sasl", "bob")]
            assert c.create("/x", b"", acl=acl).err == -114  # InvalidACL
        finally:
            c.close()
    finally:
        s.cleanup()


@pytest.mark.skipif(not os.path.exists(ZKCLI), reason="zkCli.sh not installed")
@pytest.mark.parametrize("password,ok", [("bobsecret", True), ("wrong", False)])
def test_zkcli_login(sasl_server, tmp_path, password, ok):
    s = sasl_server()
    client_jaas = tmp_path / "client_jaas.conf"
    client_jaas.write_text(
        "Client {\n"
        "    org.apache.zookeeper.server.auth.DigestLoginModule required\n"
        f'    username="bob"\n    password="{password}";\n'
        "};\n")
    env = dict(os.environ, CLIENT_JVMFLAGS=(
        f"-Djava.security.auth.login.config={client_jaas} "
        "-Xmx128m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC"))
    p = subprocess.run([ZKCLI, "-server", s.hostport, "whoami"], capture_output=True,
                       text=True, timeout=60, env=env)
    out = p.stdout + p.stderr
    if ok:
        # whoami prints "Auth scheme: User" then "scheme: user" lines.
        assert "state:SaslAuthenticated" in out and "\nsasl: bob\n" in out, out
    else:
        assert "sasl: bob" not in out and "state:SaslAuthenticated" not in out, out
        assert "state:AuthFailed" in out, out


def test_required_sasl_without_the_provider_does_not_start(target):
    s = servers.Server(target, {"sessionRequireClientSASLAuth": "true"})
    try:
        with pytest.raises(RuntimeError) as e:
            s.start(timeout=30)
        assert "Authentication scheme sasl is not available" in str(e.value)
    finally:
        s.cleanup()


def test_java_env_beside_zoo_cfg(target, tmp_path):
    """zkEnv.sh sources java.env from the configuration directory; corral reads
    the SERVER_JVMFLAGS it assigns (ZooKeeper needs its scripts for this)."""
    if target != "corral":
        pytest.skip("java.env is read by ZooKeeper's start scripts, not by the JVM")
    s = servers.Server(target, SASL_CONFIG)
    with open(os.path.join(s.tmp, "java.env"), "w") as f:
        f.write("# as an operator writes it\n"
                f'export SERVER_JVMFLAGS="-Xmx1g -Djava.security.auth.login.config={write_jaas(tmp_path)}"\n')
    try:
        s.start()
        c = z.Client(s.host, s.port)
        try:
            assert [r.err for r in raw_sasl(c, "bob", "bobsecret")] == [0, 0]
            assert who_am_i(c) == [("ip", "127.0.0.1"), ("sasl", "bob")]
        finally:
            c.close()
    finally:
        s.cleanup()


class _Host:
    def __init__(self, hostport):
        self.hostport = hostport


def test_sasl_ids_travel_with_forwarded_writes(target, tmp_path, monkeypatch):
    """In an ensemble a follower forwards writes with the session's ids: the
    leader expands `auth` to the sasl id and checks sasl ACLs."""
    if target != "corral":
        pytest.skip("the ensemble harness passes no JVM flags to ZooKeeper")
    import test_ensemble as te

    monkeypatch.setenv("SERVER_JVMFLAGS", f"-Djava.security.auth.login.config={write_jaas(tmp_path)}")
    plain = te.Member.config
    monkeypatch.setattr(te.Member, "config", lambda self: plain(self) + "".join(
        f"{k}={v}\n" for k, v in SASL_CONFIG.items()))
    ens = te.Ensemble(target)
    clients = []
    try:
        ens.start_all()
        leader = ens.wait_settled()
        followers = [i for i in range(len(ens.members)) if i != leader]
        at = lambda i: _Host(ens.members[i].hostport)  # noqa: E731
        bob = kazoo(at(followers[0]), "bob", "bobsecret")
        alice = kazoo(at(leader), "alice", "alicesecret")
        bob2 = kazoo(at(followers[1]), "bob", "bobsecret")
        clients = [bob, alice, bob2]
        for k in clients:
            k.start()
        path = "/ens-" + uuid.uuid4().hex[:8]
        bob.create(path, b"mine", acl=[make_acl("auth", "", all=True)])
        bob.create(path + "/child", b"")  # CREATE on the node checked by the leader
        bob2.sync(path)
        acl, _ = bob2.get_acls(path)
        assert [(a.id.scheme, a.id.id) for a in acl] == [("sasl", "bob")]
        assert bob2.get(path)[0] == b"mine"
        alice.sync(path)
        for op in (alice.get, alice.get_acls, lambda p: alice.set(p, b"x")):
            with pytest.raises(NoAuthError):
                op(path)
        bob2.set(path, b"again")
        bob.sync(path)
        assert bob.get(path)[0] == b"again"
    except Exception:
        print(ens.dump())
        raise
    finally:
        for k in clients:
            k.stop()
            k.close()
        ens.cleanup()


@pytest.mark.parametrize("strip", [False, True])
def test_principal_shaped_user_names(target, tmp_path, strip):
    """The sasl id is what ZooKeeper's callback handler makes of the user name:
    without a Kerberos configuration the default realm is "", so only a
    principal of that realm is shortened by kerberos.remove*FromPrincipal; a
    name with two '@' is refused by dropping the connection."""
    jaas = tmp_path / "jaas.conf"
    jaas.write_text(
        "Server {\n org.apache.zookeeper.server.auth.DigestLoginModule required\n"
        ' "user_carol@EXAMPLE.COM"="pw" "user_dave/host@"="pw" "user_erin/h"="pw"'
        ' "user_a@b@c"="pw";\n};\n')
    cfg = {"authProvider.1": SASL_PROVIDER}
    if strip:
        cfg.update({"kerberos.removeHostFromPrincipal": "true",
                    "kerberos.removeRealmFromPrincipal": "true"})
    s = servers.Server(target, cfg, jvm_flags=[f"-Djava.security.auth.login.config={jaas}"])
    s.start()
    try:
        expected = {
            "carol@EXAMPLE.COM": "carol@EXAMPLE.COM",
            "dave/host@": "dave" if strip else "dave/host@",
            "erin/h": "erin/h",
        }
        for user, sasl_id in expected.items():
            c = z.Client(s.host, s.port)
            try:
                assert [r.err for r in raw_sasl(c, user, "pw")] == [0, 0]
                assert who_am_i(c) == [("ip", "127.0.0.1"), ("sasl", sasl_id)]
            finally:
                c.close()
        c = z.Client(s.host, s.port)
        try:
            with pytest.raises(z.ConnectionClosed):
                raw_sasl(c, "a@b@c", "pw")
        finally:
            c.close_socket()
    finally:
        s.cleanup()
