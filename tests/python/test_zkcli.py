"""Apache ZooKeeper's own Java CLI (Debian's zkCli.sh) against the server
under test: each command is run non-interactively (`zkCli.sh -server hp CMD`)
or, when a session must carry state (addauth), interactively on stdin."""

import os
import re
import subprocess
import uuid

import pytest

import zkraw as z

ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"

pytestmark = pytest.mark.skipif(not os.path.exists(ZKCLI), reason="zkCli.sh not installed")

NOISE = re.compile(r"^(SLF4J:|WATCHER::|WatchedEvent |Connecting to |\s*$|log4j:)")


def zkcli(server, *args, stdin=None, timeout=60):
    env = dict(os.environ, CLIENT_JVMFLAGS="-Xmx128m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
    p = subprocess.run([ZKCLI, "-server", server.hostport, *args], input=stdin,
                       capture_output=True, text=True, timeout=timeout, env=env)
    lines = [ln for ln in (p.stdout + p.stderr).splitlines() if not NOISE.match(ln)]
    return lines


@pytest.fixture
def base(server):
    p = "/cli-" + uuid.uuid4().hex[:8]
    c = z.Client(server.host, server.port)
    assert c.create(p, b"").err == 0
    c.close()
    return p


def stat_fields(lines):
    out = {}
    for ln in lines:
        m = re.match(r"^(\w+) = (.*)$", ln)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def test_create_get_set_stat(server, base):
    assert zkcli(server, "create", base + "/n", "hello") == [f"Created {base}/n"]
    assert zkcli(server, "get", base + "/n") == ["hello"]
    assert zkcli(server, "set", base + "/n", "world") == []
    lines = zkcli(server, "get", "-s", base + "/n")
    assert lines[0] == "world"
    st = stat_fields(lines[1:])
    assert st["dataVersion"] == "1" and st["cversion"] == "0" and st["aclVersion"] == "0"
    assert st["ephemeralOwner"] == "0x0" and st["dataLength"] == "5" and st["numChildren"] == "0"
    assert st["cZxid"].startswith("0x") and int(st["mZxid"], 16) > int(st["cZxid"], 16)
    assert st["pZxid"] == st["cZxid"]
    st2 = stat_fields(zkcli(server, "stat", base + "/n"))
    assert st2 == st
    # Version-checked set.
    assert zkcli(server, "set", "-v", "7", base + "/n", "x") == [f"version No is not valid : {base}/n"]
    assert zkcli(server, "set", "-v", "1", base + "/n", "x") == []
    assert zkcli(server, "get", base + "/n") == ["x"]


def test_errors(server, base):
    assert zkcli(server, "get", base + "/none") == [f"Node does not exist: {base}/none"]
    assert zkcli(server, "stat", base + "/none") == [f"Node does not exist: {base}/none"]
    zkcli(server, "create", base + "/dup")
    assert zkcli(server, "create", base + "/dup") == [f"Node already exists: {base}/dup"]
    zkcli(server, "create", base + "/dup/kid")
    assert zkcli(server, "delete", base + "/dup") == [f"Node not empty: {base}/dup"]
    assert zkcli(server, "create", base + "/no/parent") == [f"Node does not exist: {base}/no/parent"]


def test_ls_delete_deleteall(server, base):
    for name in ("b", "a", "c"):
        zkcli(server, "create", f"{base}/{name}")
    zkcli(server, "create", f"{base}/a/deep")
    zkcli(server, "create", f"{base}/a/deep/er")
    assert zkcli(server, "ls", base) == ["[a, b, c]"]  # zkCli sorts
    lines = zkcli(server, "ls", "-R", base)
    assert lines == [base, f"{base}/a", f"{base}/b", f"{base}/c", f"{base}/a/deep", f"{base}/a/deep/er"]
    lines = zkcli(server, "ls", "-s", base)
    assert lines[0] == "[a, b, c]"
    assert stat_fields(lines[1:])["numChildren"] == "3"
    assert zkcli(server, "delete", f"{base}/b") == []
    assert zkcli(server, "deleteall", f"{base}/a") == []
    assert zkcli(server, "ls", base) == ["[c]"]
    assert zkcli(server, "delete", f"{base}/b") == [f"Node does not exist: {base}/b"]


def test_ephemeral_sequential_container_ttl(server, base):
    out = zkcli(server, "create", "-s", base + "/seq-", "d")
    assert out == [f"Created {base}/seq-0000000000"]
    out = zkcli(server, "create", "-e", "-s", base + "/eseq-", "d")
    assert out == [f"Created {base}/eseq-0000000001"]
    # (zkCli exits without closing its session: the ephemeral lives on until
    # the session times out.)
    assert zkcli(server, "ls", base) == ["[eseq-0000000001, seq-0000000000]"]
    st = stat_fields(zkcli(server, "stat", base + "/eseq-0000000001"))
    assert st["ephemeralOwner"] != "0x0"
    assert zkcli(server, "create", "-c", base + "/box") == [f"Created {base}/box"]
    assert zkcli(server, "create", "-t", "600000", base + "/ttl", "v") == [f"Created {base}/ttl"]
    st = stat_fields(zkcli(server, "stat", base + "/ttl"))
    assert st["ephemeralOwner"] == "0x0" and st["dataLength"] == "1"
    out = zkcli(server, "create", "-s", "-t", "600000", base + "/ttls-")
    assert out == [f"Created {base}/ttls-0000000004"]


def test_acls_and_addauth(server, base):
    digest = z.digest_id("bob", "pw")
    zkcli(server, "create", base + "/sec", "s3cret")
    assert zkcli(server, "getAcl", base + "/sec") == ["'world,'anyone", ": cdrwa"]
    assert zkcli(server, "setAcl", base + "/sec", f"digest:{digest}:cdrwa,ip:127.0.0.1:r") == []
    assert zkcli(server, "get", base + "/sec") == ["s3cret"]  # via the ip entry
    assert zkcli(server, "set", base + "/sec", "x") == [f"Insufficient permission : {base}/sec"]
    out = zkcli(server, stdin=f"addauth digest bob:pw\ngetAcl {base}/sec\nset {base}/sec changed\n"
                              f"get {base}/sec\nquit\n")
    assert "'digest,'" + digest in out
    assert ": cdrwa" in out and "'ip,'127.0.0.1" in out and ": r" in out
    assert "changed" in out
    # auth scheme ACL created in one interactive session
    out = zkcli(server, stdin=f"addauth digest carol:pw\ncreate {base}/mine data auth::cdrwa\n"
                              f"getAcl {base}/mine\nquit\n")
    assert "'digest,'" + z.digest_id("carol", "pw") in out
    assert zkcli(server, "get", base + "/mine") == [f"Insufficient permission : {base}/mine"]
