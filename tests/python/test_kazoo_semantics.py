"""ZooKeeper behaviours checked through kazoo (and, where kazoo cannot express
the request, through the raw protocol client zkraw): create modes incl.
container and TTL, sequential numbering, ephemeral lifetime, error codes,
ACLs, multi, sync, session reconnect, watches (one-shot and persistent),
four-letter words, and robustness against bad clients."""

import socket
import struct
import threading
import time
import uuid

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import (
    BadArgumentsError,
    BadVersionError,
    InvalidACLError,
    NoAuthError,
    NoChildrenForEphemeralsError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    RolledBackError,
)
from kazoo.security import ACL, Id, make_acl, make_digest_acl, OPEN_ACL_UNSAFE

import servers
import zkraw as z


@pytest.fixture
def clients(server):
    made = []

    def make(auth=None, timeout=10.0):
        c = KazooClient(hosts=server.hostport, timeout=timeout,
                        auth_data=[("digest", auth)] if auth else None)
        c.start(timeout=15)
        made.append(c)
        return c

    yield make
    for c in made:
        try:
            c.stop()
            c.close()
        except Exception:
            pass


@pytest.fixture
def zk(clients):
    return clients()


@pytest.fixture
def base(zk):
    p = "/sem-" + uuid.uuid4().hex[:8]
    zk.create(p)
    return p


def raw(server, **kw):
    return z.Client(server.host, server.port, **kw)


def wait_for(cond, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


# ---------------------------------------------------------------- create modes
def test_persistent_and_ephemeral(zk, clients, base):
    zk.create(base + "/p", b"data")
    data, st = zk.get(base + "/p")
    assert data == b"data"
    assert st.version == 0 and st.cversion == 0 and st.aversion == 0
    assert st.ephemeralOwner == 0 and st.dataLength == 4 and st.numChildren == 0
    assert st.czxid == st.mzxid == st.pzxid and st.ctime == st.mtime
    other = clients()
    other.create(base + "/e", b"", ephemeral=True)
    _, st = zk.get(base + "/e")
    assert st.ephemeralOwner == other.client_id[0]
    _, pst = zk.get(base)
    assert pst.numChildren == 2 and pst.cversion == 2
    assert pst.pzxid == st.czxid


def test_sequential_numbering(zk, base):
    p1 = zk.create(base + "/s-", sequence=True)
    assert p1 == base + "/s-0000000000"
    zk.create(base + "/plain")
    p2 = zk.create(base + "/s-", ephemeral=True, sequence=True)
    # The counter is the parent's cversion: the plain create counted too.
    assert p2 == base + "/s-0000000002"
    zk.delete(base + "/plain")
    assert zk.exists(base).cversion == 4  # the delete counted in cversion...
    p3 = zk.create(base + "/", sequence=True)
    # ...but not in the sequence counter: ZooKeeper 3.8 numbers from the
    # cversion its request pipeline tracks, which only creates advance
    # (PrepRequestProcessor does not bump it for a delete).
    assert p3 == base + "/0000000003"
    assert zk.exists(base).cversion == 5
    assert sorted(zk.get_children(base)) == ["0000000003", "s-0000000000", "s-0000000002"]


def test_container_and_ttl_stats(server, base):
    c = raw(server)
    try:
        rep = c.create(base + "/c", b"x", mode=z.CONTAINER)
        assert rep.err == 0 and rep.body[0] == base + "/c"
        # Containers and TTL nodes keep their type in ephemeralOwner internally,
        # but clients are shown 0 (DataNode.copyStat / getClientEphemeralOwner).
        assert rep.body[1].ephemeralOwner == 0
        assert c.exists(base + "/c").body.ephemeralOwner == 0
        rep = c.create(base + "/t", b"x", mode=z.PERSISTENT_WITH_TTL, ttl=100000)
        assert rep.err == 0
        assert rep.body[1].ephemeralOwner == 0
        rep = c.create(base + "/ts-", b"", mode=z.PERSISTENT_SEQUENTIAL_WITH_TTL, ttl=100000)
        assert rep.err == 0 and rep.body[0] == base + "/ts-0000000002"
        # Invalid TTLs / TTL with a non-TTL mode.
        assert c.create(base + "/bad", mode=z.PERSISTENT_WITH_TTL, ttl=0).err == z.BAD_ARGUMENTS
        assert c.create(base + "/bad", mode=z.PERSISTENT, ttl=1000).err == z.BAD_ARGUMENTS
        assert c.create(base + "/bad", mode=z.PERSISTENT_WITH_TTL, ttl=2 ** 50).err == z.BAD_ARGUMENTS
        # Containers may hold children, ephemerals may not.
        assert c.create(base + "/c/child", b"").err == 0
        c.create(base + "/eph", b"", mode=z.EPHEMERAL)
        assert c.create(base + "/eph/x", b"").err == z.NO_CHILDREN_FOR_EPHEMERALS
    finally:
        c.close()


def test_container_reaped_after_last_child_goes(server, zk, base):
    c = raw(server)
    try:
        assert c.create(base + "/box", b"", mode=z.CONTAINER).err == 0
        assert c.create(base + "/never", b"", mode=z.CONTAINER).err == 0
        assert c.create(base + "/box/item", b"").err == 0
        time.sleep(1.5)  # several check intervals (500 ms): a non-empty container stays
        assert zk.exists(base + "/box") is not None
        zk.delete(base + "/box/item")
        wait_for(lambda: zk.exists(base + "/box") is None, timeout=15, what="container reaped")
        # A container that never had a child is left alone.
        assert zk.exists(base + "/never") is not None
    finally:
        c.close()


def test_ttl_node_expires(server, zk, base):
    c = raw(server)
    try:
        assert c.create(base + "/ttl", b"", mode=z.PERSISTENT_WITH_TTL, ttl=300).err == 0
        assert c.create(base + "/ttlkid", b"", mode=z.PERSISTENT_WITH_TTL, ttl=300).err == 0
        assert c.create(base + "/ttlkid/x", b"").err == 0
        assert c.create(base + "/long", b"", mode=z.PERSISTENT_WITH_TTL, ttl=3_600_000).err == 0
        wait_for(lambda: zk.exists(base + "/ttl") is None, timeout=15, what="ttl node reaped")
        # A TTL node with children is not removed; a long TTL stays.
        assert zk.exists(base + "/ttlkid") is not None
        assert zk.exists(base + "/long") is not None
    finally:
        c.close()


def test_ttl_needs_extended_types(server_factory):
    s = server_factory({"extendedTypesEnabled": "false"})
    c = raw(s)
    try:
        assert c.create("/t", b"", mode=z.PERSISTENT_WITH_TTL, ttl=10000).err == z.UNIMPLEMENTED
        assert c.create("/c", b"", mode=z.CONTAINER).err == 0
    finally:
        c.close()


# ---------------------------------------------------------------- sessions
def test_ephemeral_removed_on_close(zk, clients, base):
    other = clients()
    other.create(base + "/e1", ephemeral=True)
    other.create(base + "/e2-", ephemeral=True, sequence=True)
    assert len(zk.get_children(base)) == 2
    other.stop()
    assert zk.get_children(base) == []


def test_ephemeral_removed_on_expiry(server, zk, base):
    c = raw(server, timeout_ms=1000)
    assert c.timeout_ms == 1000  # minSessionTimeout
    sid, pw = c.session_id, c.passwd
    assert c.create(base + "/gone", b"", mode=z.EPHEMERAL).err == 0
    c.close_socket()  # no closeSession, no pings: the session must expire
    wait_for(lambda: zk.exists(base + "/gone") is None, timeout=15, what="expiry")
    with pytest.raises((z.ConnectionClosed, OSError)):
        raw(server, session_id=sid, passwd=pw)


def test_session_timeout_negotiation(server):
    for asked, got in ((100, 1000), (5000, 5000), (10 ** 6, 60000)):
        c = raw(server, timeout_ms=asked)
        try:
            assert c.timeout_ms == got
        finally:
            c.close()


def test_reconnect_keeps_session(server, zk, base):
    c = raw(server, timeout_ms=10000)
    assert c.create(base + "/mine", b"", mode=z.EPHEMERAL).err == 0
    sid, pw, last = c.session_id, c.passwd, c.last_zxid
    c.close_socket()
    # A wrong password is refused (the session itself lives on).
    bad = bytes(b ^ 0xFF for b in pw)
    with pytest.raises((z.ConnectionClosed, OSError)):
        raw(server, session_id=sid, passwd=bad)
    time.sleep(0.3)
    c2 = raw(server, timeout_ms=10000, session_id=sid, passwd=pw, last_zxid=last)
    try:
        assert c2.session_id == sid
        assert c2.timeout_ms == 10000
        assert c2.exists(base + "/mine").body.ephemeralOwner == sid
        assert zk.exists(base + "/mine") is not None
    finally:
        c2.close()
    assert zk.exists(base + "/mine") is None


def test_kazoo_survives_connection_drop(zk, base):
    zk.create(base + "/keep", ephemeral=True)
    sid = zk.client_id[0]
    states = []
    zk.add_listener(lambda s: states.append(s))
    zk._connection._socket.shutdown(socket.SHUT_RDWR)  # force a reconnect under kazoo
    wait_for(lambda: states[-2:] == ["SUSPENDED", "CONNECTED"], timeout=15, what="reconnect")
    assert zk.client_id[0] == sid
    assert zk.exists(base + "/keep") is not None


# ---------------------------------------------------------------- errors
def test_error_codes(zk, base):
    zk.create(base + "/n", b"1")
    with pytest.raises(NodeExistsError):
        zk.create(base + "/n")
    with pytest.raises(NoNodeError):
        zk.create(base + "/missing/child")
    with pytest.raises(NoNodeError):
        zk.get(base + "/nothing")
    with pytest.raises(NoNodeError):
        zk.set(base + "/nothing", b"")
    with pytest.raises(NoNodeError):
        zk.delete(base + "/nothing")
    with pytest.raises(BadVersionError):
        zk.set(base + "/n", b"2", version=5)
    with pytest.raises(BadVersionError):
        zk.delete(base + "/n", version=3)
    st = zk.set(base + "/n", b"2", version=0)
    assert st.version == 1
    zk.create(base + "/n/kid")
    with pytest.raises(NotEmptyError):
        zk.delete(base + "/n")
    zk.create(base + "/eph", ephemeral=True)
    with pytest.raises(NoChildrenForEphemeralsError):
        zk.create(base + "/eph/x")
    zk.delete(base + "/n", recursive=True)
    assert zk.exists(base + "/n") is None


def test_raw_error_codes_on_bad_paths(server, base):
    c = raw(server)
    try:
        assert c.create("noslash", b"").err == z.BAD_ARGUMENTS
        assert c.create(base + "/a\x00b", b"").err == z.BAD_ARGUMENTS
        assert c.create(base + "/trailing/", b"").err in (z.BAD_ARGUMENTS, z.NO_NODE)
        assert c.delete("/").err == z.BAD_ARGUMENTS or c.delete("/").err == z.NOT_EMPTY
        assert c.delete("/zookeeper").err == z.BAD_ARGUMENTS
        assert c.get_data(base + "/none").err == z.NO_NODE
    finally:
        c.close()


# ---------------------------------------------------------------- ACLs
def test_digest_acl(clients, base):
    alice = clients(auth="alice:pw")
    alice.create(base + "/a", b"secret", acl=[make_digest_acl("alice", "pw", all=True)])
    assert alice.get(base + "/a")[0] == b"secret"
    bob = clients(auth="bob:pw")
    with pytest.raises(NoAuthError):
        bob.get(base + "/a")
    with pytest.raises(NoAuthError):
        bob.set(base + "/a", b"x")
    anon = clients()
    with pytest.raises(NoAuthError):
        anon.get(base + "/a")
    # Wrong password is a different identity.
    wrong = clients(auth="alice:nope")
    with pytest.raises(NoAuthError):
        wrong.get(base + "/a")
    with pytest.raises(NoAuthError):
        anon.get_acls(base + "/a")  # getACL needs READ or ADMIN since 3.6
    acl, st = alice.get_acls(base + "/a")
    assert acl == [make_digest_acl("alice", "pw", all=True)]
    assert st.aversion == 0


def test_world_perms(zk, clients, base):
    zk.create(base + "/ro", b"r", acl=[make_acl("world", "anyone", read=True)])
    assert zk.get(base + "/ro")[0] == b"r"
    with pytest.raises(NoAuthError):
        zk.set(base + "/ro", b"w")
    with pytest.raises(NoAuthError):
        zk.create(base + "/ro/kid")
    zk.create(base + "/nodelete", acl=[make_acl("world", "anyone", read=True, create=True)])
    zk.create(base + "/nodelete/kid")
    with pytest.raises(NoAuthError):
        zk.delete(base + "/nodelete/kid")  # DELETE is checked on the parent
    zk.delete(base + "/ro")  # base grants DELETE
    # setACL with version check and ADMIN requirement
    zk.create(base + "/adm", acl=[make_acl("world", "anyone", read=True, admin=True)])
    with pytest.raises(BadVersionError):
        zk.set_acls(base + "/adm", OPEN_ACL_UNSAFE, version=3)
    st = zk.set_acls(base + "/adm", [make_acl("world", "anyone", read=True)], version=0)
    assert st.aversion == 1
    with pytest.raises(NoAuthError):
        zk.set_acls(base + "/adm", OPEN_ACL_UNSAFE)


def test_ip_acl(zk, base):
    zk.create(base + "/local", b"l", acl=[make_acl("ip", "127.0.0.1", all=True)])
    assert zk.get(base + "/local")[0] == b"l"
    zk.create(base + "/net", b"n", acl=[make_acl("ip", "127.0.0.0/8", read=True)])
    assert zk.get(base + "/net")[0] == b"n"
    zk.create(base + "/far", b"f", acl=[make_acl("ip", "10.0.0.0/8", all=True)])
    with pytest.raises(NoAuthError):
        zk.get(base + "/far")


def test_auth_scheme_acl(clients, base):
    anon = clients()
    with pytest.raises(InvalidACLError):
        anon.create(base + "/x", acl=[ACL(31, Id("auth", ""))])
    carol = clients(auth="carol:pw")
    carol.create(base + "/c", b"c", acl=[ACL(31, Id("auth", ""))])
    acl, _ = carol.get_acls(base + "/c")
    assert acl == [make_digest_acl("carol", "pw", all=True)]
    with pytest.raises(NoAuthError):
        anon.get(base + "/c")


def test_invalid_acls(zk, base):
    # (kazoo replaces an empty list by its default ACL; zkraw checks [] below)
    for acl in ([ACL(31, Id("world", "bob"))], [ACL(31, Id("digest", "nocolon"))],
                [ACL(31, Id("ip", "300.1.1.1"))], [ACL(31, Id("nosuch", "x"))]):
        with pytest.raises(InvalidACLError):
            zk.create(base + "/bad", acl=acl)
    assert zk.exists(base + "/bad") is None


def test_empty_acl_is_invalid(server, base):
    c = raw(server)
    try:
        assert c.create(base + "/e", b"", acl=[]).err == z.INVALID_ACL
        assert c.create(base + "/e", b"").err == 0
        assert c.set_acl(base + "/e", []).err == z.INVALID_ACL
    finally:
        c.close()


def test_super_digest(clients, base):
    owner = clients(auth="dave:pw")
    owner.create(base + "/locked", b"l", acl=[make_digest_acl("dave", "pw", read=True)])
    root = clients(auth=f"{servers.SUPER_USER}:{servers.SUPER_PASSWORD}")
    assert root.get(base + "/locked")[0] == b"l"
    root.set(base + "/locked", b"changed")  # super bypasses every ACL
    assert owner.get(base + "/locked")[0] == b"changed"
    with pytest.raises(NoAuthError):
        clients(auth="super:wrong").get(base + "/locked")
    root.delete(base + "/locked")


def test_bad_auth_closes_session(server):
    c = raw(server)
    rep = c.add_auth("nosuchscheme", b"x")
    assert rep.err == z.AUTH_FAILED
    with pytest.raises((z.ConnectionClosed, OSError)):
        c.exists("/")


# ---------------------------------------------------------------- multi
def test_transaction_success(zk, base):
    t = zk.transaction()
    t.create(base + "/t1", b"a")
    t.create(base + "/t2-", b"b", sequence=True)
    t.set_data(base + "/t1", b"c")
    t.check(base + "/t1", 1)
    t.delete(base + "/t1")
    res = t.commit()
    assert res[0] == base + "/t1"
    assert res[1] == base + "/t2-0000000001"
    assert res[2].version == 1
    assert res[3] is True
    assert res[4] is True
    assert zk.exists(base + "/t1") is None


def test_transaction_failure_rolls_back(zk, base):
    zk.create(base + "/x", b"0")
    t = zk.transaction()
    t.create(base + "/new")
    t.set_data(base + "/x", b"1")
    t.check(base + "/x", 7)  # fails
    t.delete(base + "/x")
    res = t.commit()
    assert isinstance(res[0], RolledBackError)
    assert isinstance(res[1], RolledBackError)
    assert isinstance(res[2], BadVersionError)
    assert isinstance(res[3], type(res[3])) and res[3].__class__.__name__ == "RuntimeInconsistency"
    assert zk.exists(base + "/new") is None
    data, st = zk.get(base + "/x")
    assert data == b"0" and st.version == 0


def test_raw_multi_results(server, base):
    c = raw(server)
    try:
        rep = c.multi([("create", base + "/m", b"", z.OPEN_ACL, 0),
                       ("create", base + "/m", b"", z.OPEN_ACL, 0)])
        assert rep.err == 0
        assert [(t, e) for t, e, _ in rep.body] == [(z.ERROR, 0), (z.ERROR, z.NODE_EXISTS)]
        rep = c.multi([])
        assert rep.err == 0 and rep.body == []
        rep = c.multi([("create", base + "/m", b"d", z.OPEN_ACL, 0)])
        assert rep.body[0][2] == base + "/m"
        rep = c.multi([("get", base + "/m"), ("children", base), ("get", base + "/zz")], read=True)
        assert rep.body[0][2][0] == b"d"
        assert rep.body[1][2] == ["m"]
        assert rep.body[2][:2] == (z.ERROR, z.NO_NODE)
    finally:
        c.close()


def test_sync(zk, base):
    assert zk.sync(base) == base


# ---------------------------------------------------------------- watches
def test_watch_fires_once(zk, clients, base):
    other = clients()
    zk.create(base + "/w", b"0")
    events = []
    got = threading.Event()

    def watcher(ev):
        events.append(ev)
        got.set()

    zk.get(base + "/w", watch=watcher)
    other.set(base + "/w", b"1")
    assert got.wait(5)
    other.set(base + "/w", b"2")
    time.sleep(0.3)
    assert len(events) == 1
    assert events[0].type == "CHANGED" and events[0].path == base + "/w"


def test_exists_and_child_watches(zk, clients, base):
    other = clients()
    evs = []
    done = threading.Event()
    zk.exists(base + "/later", watch=lambda e: (evs.append(("exists", e.type)), done.set()))
    zk.get_children(base, watch=lambda e: evs.append(("children", e.type)))
    other.create(base + "/later")
    assert done.wait(5)
    wait_for(lambda: len(evs) == 2, what="both events")
    assert sorted(evs) == [("children", "CHILD"), ("exists", "CREATED")]
    gone = threading.Event()
    zk.get(base + "/later", watch=lambda e: (evs.append(("data", e.type)), gone.set()))
    other.delete(base + "/later")
    assert gone.wait(5)
    assert evs[-1] == ("data", "DELETED")


def test_raw_watch_events_order(server, base):
    a, b = raw(server), raw(server)
    try:
        a.create(base + "/r", b"")
        assert b.get_data(base + "/r", watch=True).err == 0
        assert b.get_children(base + "/r", watch=True).err == 0
        assert b.exists(base + "/r/kid", watch=True).err == z.NO_NODE
        a.create(base + "/r/kid", b"")
        a.set_data(base + "/r", b"x")
        b.sync("/")
        assert b.events == [(z.EV_CREATED, 3, base + "/r/kid"),
                            (z.EV_CHILDREN, 3, base + "/r"),
                            (z.EV_DATA, 3, base + "/r")]
    finally:
        a.close()
        b.close()


def test_persistent_watch(server, base):
    a, b = raw(server), raw(server)
    try:
        a.create(base + "/pw", b"")
        assert b.add_watch(base + "/pw", recursive=False).err == 0
        a.set_data(base + "/pw", b"1")
        a.set_data(base + "/pw", b"2")
        a.create(base + "/pw/kid", b"")
        a.set_data(base + "/pw/kid", b"k")  # not watched: not recursive
        a.delete(base + "/pw/kid")
        b.sync("/")
        assert b.events == [(z.EV_DATA, 3, base + "/pw"), (z.EV_DATA, 3, base + "/pw"),
                            (z.EV_CHILDREN, 3, base + "/pw"), (z.EV_CHILDREN, 3, base + "/pw")]
    finally:
        a.close()
        b.close()


def test_persistent_recursive_watch(server, base):
    a, b = raw(server), raw(server)
    try:
        assert b.add_watch(base + "/rw", recursive=True).err == 0  # may not exist yet
        a.create(base + "/rw", b"")
        a.create(base + "/rw/x", b"")
        a.create(base + "/rw/x/y", b"")
        a.set_data(base + "/rw/x/y", b"1")
        a.set_data(base + "/rw/x/y", b"2")
        a.delete(base + "/rw/x/y")
        a.create(base + "/other", b"")
        b.sync("/")
        p = base + "/rw"
        # Recursive watches report no NodeChildrenChanged.
        assert b.events == [(z.EV_CREATED, 3, p), (z.EV_CREATED, 3, p + "/x"),
                            (z.EV_CREATED, 3, p + "/x/y"), (z.EV_DATA, 3, p + "/x/y"),
                            (z.EV_DATA, 3, p + "/x/y"), (z.EV_DELETED, 3, p + "/x/y")]
    finally:
        a.close()
        b.close()


# ---------------------------------------------------------------- 4lw
def test_four_letter_words(server):
    assert z.four_letter(server.host, server.port, "ruok") == "imok"
    srvr = z.four_letter(server.host, server.port, "srvr")
    assert srvr.startswith("Zookeeper version: ")
    for key in ("Latency min/avg/max:", "Received:", "Sent:", "Connections:", "Outstanding:",
                "Zxid: 0x", "Mode: standalone", "Node count:"):
        assert key in srvr, key
    stat = z.four_letter(server.host, server.port, "stat")
    assert "Clients:" in stat and "Mode: standalone" in stat
    mntr = z.four_letter(server.host, server.port, "mntr")
    kv = dict(line.split("\t", 1) for line in mntr.strip().splitlines())
    assert kv["zk_server_state"] == "standalone"
    for key in ("zk_version", "zk_avg_latency", "zk_znode_count", "zk_watch_count",
                "zk_ephemerals_count", "zk_num_alive_connections", "zk_outstanding_requests"):
        assert key in kv, key
    assert int(kv["zk_znode_count"]) >= 4
    conf = z.four_letter(server.host, server.port, "conf")
    assert f"clientPort={server.port}" in conf
    assert "dataDir=" in conf and "tickTime=500" in conf
    assert "maxSessionTimeout=60000" in conf
    assert z.four_letter(server.host, server.port, "isro") == "rw"


def test_four_letter_whitelist(server_factory):
    s = server_factory({"4lw.commands.whitelist": "ruok, srvr"})
    assert z.four_letter(s.host, s.port, "ruok") == "imok"
    assert "Zookeeper version:" in z.four_letter(s.host, s.port, "srvr")
    assert z.four_letter(s.host, s.port, "stat") == \
        "stat is not executed because it is not in the whitelist.\n"
    assert z.four_letter(s.host, s.port, "mntr") == \
        "mntr is not executed because it is not in the whitelist.\n"


# ---------------------------------------------------------------- bad clients
def _closed(sock, timeout=5.0):
    sock.settimeout(timeout)
    try:
        while True:
            d = sock.recv(65536)
            if not d:
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def test_oversized_frame_closes_only_that_connection(server_factory):
    s = server_factory({"jute.maxbuffer": "65536"})
    good = raw(s)
    victim = raw(s)
    try:
        good.create("/ok", b"x" * 1000)
        victim.sock.sendall(struct.pack(">i", 70000) + b"\0" * 64)
        assert _closed(victim.sock)
        assert good.get_data("/ok").body[0] == b"x" * 1000
        # A session that never connected: same.
        s2 = socket.create_connection((s.host, s.port))
        s2.sendall(struct.pack(">i", 10 ** 9))
        assert _closed(s2)
        s2.close()
        assert good.exists("/ok").err == 0
    finally:
        good.close()
        victim.close_socket()


def test_garbage_closes_only_that_connection(server):
    good = raw(server)
    try:
        for junk in (b"\x00\x00\x00\x08garbage!", b"GET / HTTP/1.1\r\n\r\n", b"\xff" * 32,
                     b"\x00\x00\x00\x02\x01"):
            s = socket.create_connection((server.host, server.port))
            s.sendall(junk)
            if junk.startswith(b"\x00\x00\x00\x02"):
                s.shutdown(socket.SHUT_WR)
            assert _closed(s), junk
            s.close()
            assert good.exists("/").err == 0
        # Garbage after a good handshake: a truncated request body.
        bad = raw(server)
        bad.sock.sendall(struct.pack(">i", 3) + b"\x01\x02\x03")
        assert _closed(bad.sock)
        bad.close_socket()
        assert good.get_children("/").err == 0
    finally:
        good.close()


def test_max_client_cnxns(server_factory):
    s = server_factory({"maxClientCnxns": "3"})
    held = [raw(s) for _ in range(3)]
    try:
        with pytest.raises((z.ConnectionClosed, OSError)):
            extra = raw(s, sock_timeout=5.0)
            extra.exists("/")
        assert held[0].exists("/").err == 0
        held.pop().close()
        time.sleep(0.3)
        again = raw(s)
        held.append(again)
        assert again.exists("/").err == 0
    finally:
        for c in held:
            c.close()
