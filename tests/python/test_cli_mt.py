"""The ZooKeeper C client's `cli_mt` (Debian zookeeper-bin) against the
server under test. cli_mt reads commands on stdin and prints results
asynchronously, so each command waits for the output it should produce."""

import os
import re
import subprocess
import threading
import time
import uuid

import pytest

import zkraw as z

CLI_MT = "/usr/lib/zookeeper/bin/cli_mt"

pytestmark = pytest.mark.skipif(not os.path.exists(CLI_MT), reason="cli_mt not installed")


class CliMt:
    def __init__(self, server):
        self.p = subprocess.Popen([CLI_MT, server.hostport], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=0)
        self.buf = b""
        self.lock = threading.Lock()
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()
        self.mark = 0
        self.expect(r"state = CONNECTED_STATE")

    def _read(self):
        while True:
            d = self.p.stdout.read1(65536) if hasattr(self.p.stdout, "read1") else os.read(self.p.stdout.fileno(), 65536)
            if not d:
                return
            with self.lock:
                self.buf += d

    def text(self):
        with self.lock:
            return self.buf.decode(errors="replace")

    def expect(self, pattern, timeout=10.0):
        """Wait for pattern in the output after the last command; return the match."""
        rx = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = rx.search(self.text(), self.mark)
            if m:
                return m
            time.sleep(0.01)
        raise AssertionError(f"no {pattern!r} in cli_mt output:\n{self.text()[self.mark:]}")

    def cmd(self, line, pattern, timeout=10.0):
        self.mark = len(self.text())
        self.p.stdin.write((line + "\n").encode())
        self.p.stdin.flush()
        return self.expect(pattern, timeout)

    def close(self):
        try:
            self.p.stdin.write(b"quit\n")
            self.p.stdin.flush()
            self.p.wait(10)
        except Exception:
            self.p.kill()
            self.p.wait()


@pytest.fixture
def cli(server):
    c = CliMt(server)
    yield c
    c.close()


@pytest.fixture
def base(server):
    p = "/mt-" + uuid.uuid4().hex[:8]
    c = z.Client(server.host, server.port)
    assert c.create(p, b"").err == 0
    c.close()
    return p


def test_create_get_set(cli, base, server):
    cli.cmd(f"create {base}/n", rf"\[{base}/n\]: rc = 0\n\s*name = {base}/n")
    m = cli.cmd(f"get {base}/n", rf"{base}/n: rc = 0\n value_len = (\d+)\n(.*)\n")
    # cli_mt's create stores the bytes "new"
    assert m.group(1) == "3" and m.group(2) == "new"
    cli.cmd(f"set {base}/n hello", rf"{base}/n: rc = 0 Stat:")
    m = cli.cmd(f"get {base}/n", rf"value_len = (\d+)\n(.*)\nStat:\n(?:.*\n)*?\tversion=(\d+)\taversion=(\d+)")
    assert m.group(1) == "5" and m.group(2) == "hello" and m.group(3) == "1" and m.group(4) == "0"
    c = z.Client(server.host, server.port)
    try:
        assert c.get_data(f"{base}/n").body[0] == b"hello"
    finally:
        c.close()


def test_errors(cli, base):
    cli.cmd(f"get {base}/none", rf"{base}/none: rc = -101")
    cli.cmd(f"create {base}/d", r"rc = 0")
    cli.cmd(f"create {base}/d", rf"\[{base}/d\]: rc = -110")
    cli.cmd(f"create {base}/d/kid", r"rc = 0")
    cli.cmd(f"delete {base}/d", rf"{base}/d: rc = -111")
    cli.cmd(f"create {base}/x/y", rf"\[{base}/x/y\]: rc = -101")
    cli.cmd(f"delete {base}/d/kid", rf"{base}/d/kid: rc = 0")
    cli.cmd(f"delete {base}/d/kid", rf"{base}/d/kid: rc = -101")


def test_ls_and_modes(cli, base):
    cli.cmd(f"create {base}/p", r"rc = 0")
    cli.cmd(f"create +e {base}/e", rf"name = {base}/e\b")
    m = cli.cmd(f"create +s {base}/s-", rf"name = ({base}/s-\d+)")
    assert m.group(1) == f"{base}/s-0000000002"
    m = cli.cmd(f"create +es {base}/es-", rf"name = ({base}/es-\d+)")
    assert m.group(1) == f"{base}/es-0000000003"
    cli.cmd(f"create +c {base}/box", rf"name = {base}/box\b")
    cli.cmd(f"create +t=600000 {base}/ttl", rf"name = {base}/ttl\b")
    m = cli.cmd(f"ls {base}", rf"{base}: rc = 0\n((?:\t.*\n)+)")
    names = sorted(x.strip() for x in m.group(1).splitlines())
    assert names == ["box", "e", "es-0000000003", "p", "s-0000000002", "ttl"]
    m = cli.cmd(f"create2 {base}/c2", rf"\[{base}/c2\]: rc = 0\n\s*name = {base}/c2\n(?:.*\n)*?\tczxid=(\d+)")
    assert int(m.group(1)) > 0
    # exists prints nothing on success, "Error <rc> for <path>" otherwise
    cli.cmd(f"exists {base}/nope", rf"Error -101 for {base}/nope")
    cli.cmd(f"exists {base}/p\nsync {base}", rf"\[{base}\]: rc = 0")
    assert "Error" not in cli.text()[cli.mark:]


def test_watch_event(cli, base, server):
    cli.cmd(f"create {base}/w", r"rc = 0")
    cli.cmd(f"wexists {base}/w\nsync {base}", rf"\[{base}\]: rc = 0")
    c = z.Client(server.host, server.port)
    try:
        cli.mark = len(cli.text())
        c.set_data(f"{base}/w", b"zz")
        cli.expect(rf"Watcher CHANGED_EVENT state = CONNECTED_STATE for path {base}/w")
    finally:
        c.close()


def test_ephemeral_gone_after_quit(server, base):
    cli = CliMt(server)
    cli.cmd(f"create +e {base}/tmp", r"rc = 0")
    cli.close()  # cli_mt closes its session on quit
    c = z.Client(server.host, server.port)
    try:
        deadline = time.monotonic() + 10
        while c.exists(f"{base}/tmp").err == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert c.exists(f"{base}/tmp").err == z.NO_NODE
    finally:
        c.close()
