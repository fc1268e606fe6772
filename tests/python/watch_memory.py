"""Memory per watch, measured on a running server: corral or Apache ZooKeeper 3.8.

Opens CONNS sessions, takes the server's memory, sets PER_CONN exists-watches per
session on paths that do not exist (/scale/w/NNNNNN: ZooKeeper and corral both
keep them as data watches), checks `wchs` reports every watch, and takes the memory
again: (after - before) / watches. Before the first measurement every session sends
the same burst without the watch flag, so that what serving a burst grows
(connection buffers, JIT code) is not counted as the watches'. For ZooKeeper the figure is the Java heap in use
after a full GC (`jcmd PID GC.run`, then `GC.heap_info`), which is what the watches
occupy whatever heap size the JVM chose; its RSS is printed too. For corral it is
the RSS (allocator slack included).

Not a pytest test (long: ~1 minute per server, 10k sockets). Run from the repo:
    python3 tests/python/watch_memory.py --target zookeeper
    CORRAL_BIN=target/release/corral python3 tests/python/watch_memory.py --target corral
--layout distinct (1M paths, one watcher each), pool (100k paths, 10 watchers each)
or shared (100 paths, every session on each). Stops exactly the server it started.
"""

import argparse
import os
import re
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import servers  # noqa: E402

EXISTS = 3


def frame(body):
    return struct.pack(">i", len(body)) + body


def connect(host, port, timeout_ms):
    s = socket.create_connection((host, port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    body = struct.pack(">iqiqi", 0, 0, timeout_ms, 0, 16) + b"\0" * 16 + b"\0"
    s.sendall(frame(body))
    read_frame(s)
    return s


def read_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed by the server")
        buf += chunk
    return bytes(buf)


def read_frame(s):
    (n,) = struct.unpack(">i", read_exact(s, 4))
    return read_exact(s, n)


def exists(xid, path, watch):
    p = path.encode()
    return frame(struct.pack(">ii", xid, EXISTS) + struct.pack(">i", len(p)) + p
                 + (b"\1" if watch else b"\0"))


def burst(socks, layout, per_conn, watch):
    """Every session sends its PER_CONN exists requests at once, then reads them."""
    for c, s in enumerate(socks):
        s.sendall(b"".join(exists(i + 1, path_of(layout, c, i, per_conn), watch)
                           for i in range(per_conn)))
        for _ in range(per_conn):
            hdr = read_frame(s)
            _xid, _zxid, err = struct.unpack(">iqi", hdr[:16])
            if err not in (0, -101):
                raise RuntimeError(f"exists answered error {err}")


def path_of(layout, conn, i, per_conn):
    n = {"distinct": conn * per_conn + i,
         "pool": (conn * per_conn + i) % 100_000,
         "shared": i}[layout]
    return f"/scale/w/{n:06}"


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def java_heap_used_kib(pid):
    subprocess.run(["jcmd", str(pid), "GC.run"], check=True, capture_output=True)
    time.sleep(1)
    subprocess.run(["jcmd", str(pid), "GC.run"], check=True, capture_output=True)
    out = subprocess.run(["jcmd", str(pid), "GC.heap_info"], check=True,
                         capture_output=True, text=True).stdout
    # "garbage-first heap   total 123K, used 45K" (G1) or "def new generation ... used"
    # lines (serial): sum every top-level "used".
    m = re.search(r"heap\s+total\s+\d+K,\s+used\s+(\d+)K", out)
    if m:
        return int(m.group(1))
    return sum(int(u) for u in re.findall(r"^\s*\S.*?used\s+(\d+)K", out, re.M))


def memory(server):
    pid = server.proc.pid
    if server.target == "zookeeper":
        return java_heap_used_kib(pid), rss_kib(pid)
    return rss_kib(pid), rss_kib(pid)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", choices=["corral", "zookeeper"], required=True)
    ap.add_argument("--conns", type=int, default=10_000)
    ap.add_argument("--per-conn", type=int, default=100)
    ap.add_argument("--layout", choices=["distinct", "pool", "shared"], default="distinct")
    args = ap.parse_args()
    cfg = {"maxClientCnxns": "0", "maxSessionTimeout": "600000", "4lw.commands.whitelist": "*"}
    # The JVM's default heap (a quarter of RAM), as the benchmark runs it: the
    # Server helper's -Xmx256m is overridden by the later flag.
    jvm = ["-Xmx6g"] if args.target == "zookeeper" else []
    server = servers.Server(args.target, config=cfg, jvm_flags=jvm)
    socks = []
    try:
        server.start()
        host, port = server.host, server.port
        for _ in range(args.conns):
            socks.append(connect(host, port, 600_000))
        # The same burst without watches first: what serving it grows (connection
        # buffers, the JIT's code) is in place before the first measurement.
        burst(socks, args.layout, args.per_conn, False)
        time.sleep(1)
        before, rss_before = memory(server)
        t0 = time.monotonic()
        burst(socks, args.layout, args.per_conn, True)
        took = time.monotonic() - t0
        total = args.conns * args.per_conn
        # corral's shards publish their counts every 200 ms: wait for the last.
        deadline = time.monotonic() + 10
        while True:
            wchs = servers.zkraw.four_letter(host, port, "wchs", timeout=60.0)
            if f"Total watches:{total}" in wchs:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"wchs does not show {total} watches: {wchs!r}")
            time.sleep(0.2)
        time.sleep(1)
        after, rss_after = memory(server)
        what = "heap after full GC" if args.target == "zookeeper" else "RSS"
        print(f"{args.target}: {args.layout}, {total} watches over {args.conns} sessions "
              f"(set in {took:.1f} s)")
        print(f"  {what}: {before} KiB -> {after} KiB: {(after - before) * 1024 / total:.1f} bytes per watch")
        if args.target == "zookeeper":
            print(f"  RSS: {rss_before} KiB -> {rss_after} KiB: "
                  f"{(rss_after - rss_before) * 1024 / total:.1f} bytes per watch")
        print(f"  wchs: {wchs.strip()!r}")
    finally:
        for s in socks:
            s.close()
        server.cleanup()


if __name__ == "__main__":
    main()
