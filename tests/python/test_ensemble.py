"""A 3-voter loopback ensemble (corral, or Apache ZooKeeper 3.8 with
--target=zookeeper) used by real clients: kazoo on all three hosts runs a lock
recipe and a counter while the leader is killed with SIGKILL (kazoo reconnects
and finishes, and every server ends with the exact counts), and zkCli.sh
creates and reads through a follower.

The ensemble is started here, in the conventions of servers.py: a temp dir
per server (its zoo.cfg, data dir with myid, server.log), loopback only,
fresh ports checked free before each start, and exactly the processes started
here are killed (by pid) at the end. A failing test prints every server's log
tail; CORRAL_ENSEMBLE_KEEP=1 keeps the dirs.
"""

import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid

import pytest
from kazoo.client import KazooClient, KazooState
from kazoo.retry import KazooRetry

import servers
import zkraw

TICK_MS = int(os.environ.get("CORRAL_ENSEMBLE_TICK", "300"))
ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"


def port_free(port):
    """Nothing listens on 127.0.0.1:port. A bind with SO_REUSEADDR that succeeds says
    so; one that fails may only mean TIME-WAIT sockets of a killed server's
    connections (corral's listener has SO_REUSEPORT but not SO_REUSEADDR, so its
    TIME-WAIT sockets block such a bind for a minute): then a refused connect says
    nothing listens."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        pass
    finally:
        s.close()
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


def parse_mode(text):
    if text is None:
        return "down"
    if "not currently serving" in text:
        return "not-serving"
    m = re.search(r"^Mode: (\w+)", text, re.M)
    return m.group(1) if m else "unknown"


class Member:
    def __init__(self, ens, sid, ports):
        self.ens = ens
        self.sid = sid
        self.client_port, self.quorum_port, self.election_port = ports
        self.dir = os.path.join(ens.tmp, f"server{sid}")
        self.data_dir = os.path.join(self.dir, "data")
        os.makedirs(self.data_dir)
        with open(os.path.join(self.data_dir, "myid"), "w") as f:
            f.write(f"{sid}\n")
        self.log_path = os.path.join(self.dir, "server.log")
        self.proc = None

    @property
    def hostport(self):
        return f"127.0.0.1:{self.client_port}"

    def config(self):
        lines = [
            f"tickTime={TICK_MS}",
            "initLimit=10",
            "syncLimit=5",
            f"dataDir={self.data_dir}",
            f"clientPort={self.client_port}",
            "clientPortAddress=127.0.0.1",
            "4lw.commands.whitelist=*",
            "maxClientCnxns=0",
            "maxSessionTimeout=60000",
            "admin.enableServer=false",
        ]
        for m in self.ens.members:
            lines.append(f"server.{m.sid}=127.0.0.1:{m.quorum_port}:{m.election_port}")
        return "\n".join(lines) + "\n"

    def spawn(self):
        assert self.proc is None
        for p in (self.client_port, self.quorum_port, self.election_port):
            # glommio binds with SO_REUSEPORT: a leftover server would share the port.
            assert port_free(p), f"port {p} of server.{self.sid} is in use before its start"
        cfg = os.path.join(self.dir, "zoo.cfg")
        with open(cfg, "w") as f:
            f.write(self.config())
        log = open(self.log_path, "ab")
        log.write(f"===== server.{self.sid} start at {time.time() - self.ens.t0:.3f}s =====\n".encode())
        log.flush()
        if self.ens.target == "zookeeper":
            log4j = os.path.join(self.dir, "log4j.properties")
            with open(log4j, "w") as f:
                f.write("log4j.rootLogger=INFO, C\n"
                        "log4j.appender.C=org.apache.log4j.ConsoleAppender\n"
                        "log4j.appender.C.layout=org.apache.log4j.PatternLayout\n"
                        "log4j.appender.C.layout.ConversionPattern=%d{HH:mm:ss,SSS} [%t] %-5p %c{1} - %m%n\n")
            cmd = ["java", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                   f"-Dlog4j.configuration=file:{log4j}", "-Dzookeeper.admin.enableServer=false",
                   "-cp", servers.ZK_CLASSPATH,
                   "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg]
        else:
            binary = servers.corral_bin()
            if not os.path.exists(binary):
                raise RuntimeError(f"{binary} does not exist: run `cargo build --bin corral` or set CORRAL_BIN")
            cmd = [binary, "server", "--config", cfg]
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=self.dir)
        log.close()
        self.ens.note(f"server.{self.sid} started, pid {self.proc.pid}")

    def kill9(self):
        if self.proc is not None:
            pid = self.proc.pid
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None
            self.ens.note(f"server.{self.sid} (pid {pid}) killed with SIGKILL")

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def four_letter(self, word):
        try:
            return zkraw.four_letter("127.0.0.1", self.client_port, word, timeout=3.0)
        except OSError:
            return None

    def mode(self):
        if not self.running():
            return "down"
        return parse_mode(self.four_letter("srvr"))

    def log_tail(self, n=80):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode(errors="replace").splitlines()
            return "\n".join(lines[-n:])
        except OSError:
            return ""


class Ensemble:
    def __init__(self, target, voters=3):
        self.target = target
        self.t0 = time.time()
        self.tmp = tempfile.mkdtemp(prefix=f"corral-ensemble-{target}-")
        self.notes = []
        taken = set()
        try:
            with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
                ephemeral_lo = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            ephemeral_lo = 32768

        def fresh():
            # Below the ephemeral range: no bind(:0) or outgoing connection can take a
            # member's port while it is down, which would keep it from restarting.
            for _ in range(1000):
                if ephemeral_lo > 12000:
                    p = random.randrange(10000, ephemeral_lo)
                else:
                    p = servers.free_port()
                if p not in taken and port_free(p):
                    taken.add(p)
                    return p
            raise RuntimeError("no free port")

        self.members = []
        for sid in range(1, voters + 1):
            self.members.append(Member(self, sid, (fresh(), fresh(), fresh())))

    def note(self, msg):
        line = f"[+{time.time() - self.t0:7.3f}s] {msg}"
        print(line, flush=True)
        self.notes.append(line)

    def hosts(self, idx=None):
        idx = range(len(self.members)) if idx is None else idx
        return ",".join(self.members[i].hostport for i in idx)

    def start_all(self):
        for m in self.members:
            if m.proc is None:
                m.spawn()

    def modes(self):
        return [m.mode() for m in self.members]

    def wait_settled(self, timeout=60.0):
        """Until every running member serves and exactly one leads; the leader's index."""
        deadline = time.monotonic() + timeout
        while True:
            modes = self.modes()
            running = [i for i, m in enumerate(self.members) if m.running()]
            leaders = [i for i in running if modes[i] == "leader"]
            if len(leaders) == 1 and all(modes[i] in ("leader", "follower") for i in running):
                return leaders[0]
            for m in self.members:
                if m.proc is not None and m.proc.poll() is not None:
                    raise AssertionError(f"server.{m.sid} exited ({m.proc.returncode})")
            if time.monotonic() > deadline:
                raise AssertionError(f"ensemble did not settle in {timeout}s: modes {modes}")
            time.sleep(0.05)

    def dump(self):
        out = ["======== ensemble events ========", *self.notes]
        for m in self.members:
            out.append(f"======== server.{m.sid} log tail ({m.log_path}) ========")
            out.append(m.log_tail())
        return "\n".join(out)

    def cleanup(self, keep=False):
        for m in self.members:
            m.kill9()
        if keep or os.environ.get("CORRAL_ENSEMBLE_KEEP") == "1":
            print(f"ensemble dir kept: {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture
def ensemble(target, request):
    failed_before = request.session.testsfailed
    ens = Ensemble(target)
    ens.start_all()
    yield ens
    failed = request.session.testsfailed > failed_before
    if failed:
        print(ens.dump())
    ens.cleanup(keep=failed)


def kazoo_client(hosts, states):
    """A kazoo client that retries through a leader change; records its state changes."""
    retry = dict(max_tries=-1, delay=0.1, backoff=1.5, max_delay=1.0)
    c = KazooClient(hosts=hosts, timeout=10.0,
                    connection_retry=KazooRetry(**retry),
                    command_retry=KazooRetry(deadline=60.0, **retry))
    c.add_listener(lambda s: states.append(s))
    c.start(timeout=30)
    return c


def test_kazoo_lock_and_counter_survive_leader_kill(ensemble):
    ens = ensemble
    leader = ens.wait_settled()
    ens.note(f"settled: leader server.{leader + 1}, modes {ens.modes()}")
    base = "/ens-" + uuid.uuid4().hex[:8]
    workers, per_worker = 4, 30
    total = workers * per_worker
    setup_states = []
    setup = kazoo_client(ens.hosts(), setup_states)
    setup.create(base + "/value", b"0", makepath=True)

    progress = [0] * workers
    errors = []
    overlaps = []
    holders = set()
    holders_lock = threading.Lock()
    states = [[] for _ in range(workers)]
    # Per worker: (start, end) of each increment round (lock, read-modify-write, counter).
    rounds = [[] for _ in range(workers)]
    states_before_stop = [None] * workers

    def worker(w):
        try:
            c = kazoo_client(ens.hosts(), states[w])
            lock = c.Lock(base + "/lock", f"worker-{w}")
            counter = c.Counter(base + "/counter")
            for _ in range(per_worker):
                started = time.monotonic()
                if not lock.acquire(timeout=60):
                    raise AssertionError(f"worker {w}: lock not acquired in 60 s")
                try:
                    with holders_lock:
                        if holders:
                            overlaps.append((w, set(holders)))
                        holders.add(w)
                    # A read-modify-write that only the lock makes exact; the set is
                    # idempotent, so retrying it after a connection loss is safe.
                    v = int(c.retry(c.get, base + "/value")[0])
                    c.retry(c.set, base + "/value", str(v + 1).encode())
                    with holders_lock:
                        holders.discard(w)
                finally:
                    lock.release()
                counter += 1
                rounds[w].append((started, time.monotonic()))
                progress[w] += 1
            # kazoo reports LOST when stopped: what happened before that is what counts.
            states_before_stop[w] = list(states[w])
            c.stop()
            c.close()
        except Exception as e:  # reported by the main thread
            errors.append((w, repr(e)))

    threads = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(workers)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while sum(progress) < total // 4:
        assert not errors, errors
        assert time.monotonic() < deadline, f"no progress before the kill: {progress}"
        time.sleep(0.02)
    killed_at = time.monotonic()
    before = sum(progress)
    ens.members[leader].kill9()
    deadline = time.monotonic() + 60

    def first_round_after_kill():
        ends = [e for w in range(workers) for (s, e) in list(rounds[w]) if s >= killed_at]
        return min(ends) if ends else None

    while first_round_after_kill() is None:
        assert not errors, errors
        assert time.monotonic() < deadline, \
            "no increment started after the leader kill completed within 60 s"
        time.sleep(0.01)
    ens.note(f"leader server.{leader + 1} killed at {before}/{total} increments; the first "
             f"increment started after the kill completed "
             f"{first_round_after_kill() - killed_at:.3f}s after the kill")
    for t in threads:
        t.join(timeout=max(1.0, 90 - (time.monotonic() - killed_at)))
    assert not any(t.is_alive() for t in threads), f"workers still running: progress {progress}"
    assert not errors, errors
    assert progress == [per_worker] * workers
    assert not overlaps, f"two lock holders at once: {overlaps}"
    lost = [w for w in range(workers) if KazooState.LOST in states_before_stop[w]]
    assert not lost, f"sessions lost across the leader change: workers {lost}"
    suspended = sum(1 for w in range(workers) for s in states_before_stop[w]
                    if s == KazooState.SUSPENDED)
    ens.note(f"workers done; {suspended} connection suspensions")

    # The killed server comes back; every server holds the exact lock-protected count.
    ens.members[leader].spawn()
    new_leader = ens.wait_settled()
    ens.note(f"server.{leader + 1} back; leader server.{new_leader + 1}, modes {ens.modes()}")
    for i, m in enumerate(ens.members):
        c = zkraw.Client("127.0.0.1", m.client_port)
        try:
            c.sync(base)
            r = c.get_data(base + "/value")
            assert r.err == 0, f"server.{i + 1}: get {base}/value: {r}"
            assert int(r.body[0]) == total, f"server.{i + 1} holds {r.body[0]!r}, want {total}"
            r = c.get_data(base + "/counter")
            assert r.err == 0, f"server.{i + 1}: get {base}/counter: {r}"
            count = int(r.body[0])
            # kazoo's Counter retries a version-checked set after a connection loss,
            # so an increment whose reply was lost may be applied twice: at most one
            # per suspension.
            assert total <= count <= total + suspended, \
                f"server.{i + 1}: counter {count}, want {total} (+ at most {suspended})"
            r = c.get_children(base + "/lock")
            assert r.err == 0 and r.body == [], f"server.{i + 1}: lock nodes left: {r}"
        finally:
            c.close()
    setup.stop()
    setup.close()


def zkcli(hostport, *args, timeout=60):
    env = dict(os.environ, CLIENT_JVMFLAGS="-Xmx128m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
    p = subprocess.run([ZKCLI, "-server", hostport, *args], capture_output=True, text=True,
                       timeout=timeout, env=env)
    noise = re.compile(r"^(SLF4J:|WATCHER::|WatchedEvent |Connecting to |\s*$|log4j:)")
    return [ln for ln in (p.stdout + p.stderr).splitlines() if not noise.match(ln)]


@pytest.mark.skipif(not os.path.exists(ZKCLI), reason="zkCli.sh not installed")
def test_zkcli_through_a_follower(ensemble):
    ens = ensemble
    leader = ens.wait_settled()
    followers = [i for i in range(len(ens.members)) if i != leader]
    f = ens.members[followers[0]]
    p = "/cli-ens-" + uuid.uuid4().hex[:8]
    assert zkcli(f.hostport, "create", p, "hello") == [f"Created {p}"]
    assert zkcli(f.hostport, "get", p) == ["hello"]
    assert zkcli(f.hostport, "set", p, "world") == []
    assert zkcli(f.hostport, "get", p) == ["world"]
    # The other servers have it too (read through a session on each, after sync).
    for i, m in enumerate(ens.members):
        c = zkraw.Client("127.0.0.1", m.client_port)
        try:
            c.sync(p)
            r = c.get_data(p)
            assert r.err == 0 and r.body[0] == b"world", f"server.{i + 1}: {r}"
        finally:
            c.close()
    # And zkCli on the whole connect string.
    assert zkcli(ens.hosts(), "get", p) == ["world"]
