"""Start and stop the server under test: corral or Apache ZooKeeper 3.8.

Both are given the same logical configuration (a dict of zoo.cfg keys). corral
reads every key from its zoo.cfg. ZooKeeper reads the standard keys from
zoo.cfg, but several of the keys corral accepts are JVM system properties in
ZooKeeper (extendedTypesEnabled, superDigest, container check interval,
jute.maxbuffer, enforceQuota), so those are passed as -D options instead.
"""

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import zkraw

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

ZK_CLASSPATH = ":".join([
    "/usr/share/java/zookeeper.jar",
    "/usr/share/java/slf4j-log4j12.jar",
    "/usr/share/java/log4j-1.2.jar",
    # Debian's zookeeper.jar manifest does not pull these in; harmless if absent.
    "/usr/share/java/netty-handler.jar",
    "/usr/share/java/netty-transport.jar",
    "/usr/share/java/netty-common.jar",
    "/usr/share/java/netty-buffer.jar",
    "/usr/share/java/netty-codec.jar",
    "/usr/share/java/netty-resolver.jar",
    "/usr/share/java/netty-transport-native-unix-common.jar",
])

# corral key -> ZooKeeper JVM system property
ZK_SYSPROPS = {
    "extendedTypesEnabled": "zookeeper.extendedTypesEnabled",
    "enforceQuota": "zookeeper.enforceQuota",
    "DigestAuthenticationProvider.superDigest": "zookeeper.DigestAuthenticationProvider.superDigest",
    "znode.container.checkIntervalMs": "znode.container.checkIntervalMs",
    "jute.maxbuffer": "jute.maxbuffer",
}

# The superuser used by tests: super:secret
SUPER_USER = "super"
SUPER_PASSWORD = "secret"
SUPER_DIGEST = zkraw.digest_id(SUPER_USER, SUPER_PASSWORD)

DEFAULT_CONFIG = {
    "tickTime": "500",
    "minSessionTimeout": "1000",
    "maxSessionTimeout": "60000",
    "maxClientCnxns": "0",
    "4lw.commands.whitelist": "*",
    "extendedTypesEnabled": "true",
    "DigestAuthenticationProvider.superDigest": SUPER_DIGEST,
    "znode.container.checkIntervalMs": "500",
}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def corral_bin():
    return os.environ.get("CORRAL_BIN") or os.path.join(REPO, "target", "debug", "corral")


class Server:
    def __init__(self, target, config=None, name=None, jvm_flags=None):
        self.target = target
        # Java system properties (-Dname=value words): ZooKeeper gets them on its
        # command line, corral in SERVER_JVMFLAGS, where zkServer.sh would put them.
        self.jvm_flags = list(jvm_flags or [])
        self.config = dict(DEFAULT_CONFIG)
        if config:
            for k, v in config.items():
                if v is None:
                    self.config.pop(k, None)
                else:
                    self.config[k] = str(v)
        self.name = name or target
        self.tmp = tempfile.mkdtemp(prefix=f"corral-test-{target}-")
        self.data_dir = os.path.join(self.tmp, "data")
        os.makedirs(self.data_dir)
        self.host = "127.0.0.1"
        self.port = None
        self.proc = None
        self.log_path = os.path.join(self.tmp, "server.log")

    @property
    def hostport(self):
        return f"{self.host}:{self.port}"

    def start(self, timeout=None):
        if timeout is None:
            timeout = float(os.environ.get("CORRAL_START_TIMEOUT", "20" if self.target == "corral" else "60"))
        if self.target == "zookeeper":
            self._start_zookeeper(timeout)
        elif self.target == "corral":
            self._start_corral(timeout)
        else:
            raise ValueError(f"unknown target {self.target}")
        return self

    def _start_corral(self, timeout):
        binary = corral_bin()
        if not os.path.exists(binary):
            raise RuntimeError(f"{binary} does not exist: run `cargo build --bin corral` or set CORRAL_BIN")
        cfg = dict(self.config)
        cfg.setdefault("clientPort", "0")
        cfg.setdefault("clientPortAddress", "127.0.0.1")
        # The AdminServer's default port 8080 would collide between servers.
        cfg.setdefault("admin.enableServer", "false")
        cfg["dataDir"] = self.data_dir
        path = os.path.join(self.tmp, "zoo.cfg")
        with open(path, "w") as f:
            for k, v in cfg.items():
                f.write(f"{k}={v}\n")
        self.log = open(self.log_path, "wb")
        env = dict(os.environ)
        env.pop("SERVER_JVMFLAGS", None)
        env.pop("JVMFLAGS", None)
        if self.jvm_flags:
            env["SERVER_JVMFLAGS"] = " ".join(shlex.quote(f) for f in self.jvm_flags)
        self.proc = subprocess.Popen([binary, "server", "--config", path],
                                     stdout=subprocess.PIPE, stderr=self.log, env=env)
        found = {}

        def reader():
            for line in self.proc.stdout:
                self.log.write(line)
                self.log.flush()
                m = re.search(rb"corral: serving clients on ([0-9.]+):(\d+)", line)
                if m and "port" not in found:
                    found["host"] = m.group(1).decode()
                    found["port"] = int(m.group(2))

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        deadline = time.monotonic() + timeout
        while "port" not in found:
            if self.proc.poll() is not None:
                raise RuntimeError(f"corral exited with {self.proc.returncode}; log:\n{self.read_log()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"corral did not announce its port in {timeout}s; log:\n{self.read_log()}")
            time.sleep(0.02)
        self.host, self.port = found["host"], found["port"]

    def _start_zookeeper(self, timeout):
        self.port = free_port()
        cfg = {k: v for k, v in self.config.items() if k not in ZK_SYSPROPS}
        cfg["dataDir"] = self.data_dir
        cfg["clientPort"] = str(self.port)
        cfg["clientPortAddress"] = self.host
        cfg["admin.enableServer"] = "false"
        path = os.path.join(self.tmp, "zoo.cfg")
        with open(path, "w") as f:
            for k, v in cfg.items():
                f.write(f"{k}={v}\n")
        log4j = os.path.join(self.tmp, "log4j.properties")
        with open(log4j, "w") as f:
            f.write("log4j.rootLogger=INFO, F\n"
                    "log4j.appender.F=org.apache.log4j.FileAppender\n"
                    f"log4j.appender.F.File={self.log_path}\n"
                    "log4j.appender.F.layout=org.apache.log4j.PatternLayout\n"
                    "log4j.appender.F.layout.ConversionPattern=%d [%t] %-5p %c{1} - %m%n\n")
        props = [f"-D{ZK_SYSPROPS[k]}={v}" for k, v in self.config.items() if k in ZK_SYSPROPS]
        cmd = ["java", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
               f"-Dlog4j.configuration=file:{log4j}", "-Dzookeeper.admin.enableServer=false",
               *props, *self.jvm_flags, "-cp", ZK_CLASSPATH,
               "org.apache.zookeeper.server.quorum.QuorumPeerMain", path]
        self.out = open(os.path.join(self.tmp, "stdout.log"), "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        wl = self.config.get("4lw.commands.whitelist", "")
        use_ruok = wl.strip() == "*" or "ruok" in [w.strip() for w in wl.split(",")]
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"zookeeper exited with {self.proc.returncode}; log:\n{self.read_log()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"zookeeper not ready in {timeout}s; log:\n{self.read_log()}")
            try:
                # ruok answers before the server takes sessions, so a real
                # session handshake is the readiness test after it.
                if not use_ruok or zkraw.four_letter(self.host, self.port, "ruok", timeout=1.0) == "imok":
                    c = zkraw.Client(self.host, self.port, timeout_ms=5000, sock_timeout=2.0)
                    c.close()
                    break
            except (OSError, zkraw.ConnectionClosed):
                pass
            time.sleep(0.1)

    def read_log(self):
        out = []
        for p in (self.log_path, os.path.join(self.tmp, "stdout.log")):
            try:
                with open(p, "rb") as f:
                    out.append(f.read()[-4000:].decode(errors="replace"))
            except OSError:
                pass
        return "\n".join(out)

    def stop(self, sig=signal.SIGTERM):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)
