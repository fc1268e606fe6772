"""The Prometheus endpoint (metricsProvider.className = ZooKeeper's
PrometheusMetricsProvider): a real corral process serves /metrics, which the
official Python client's parser reads; the names and types are ZooKeeper 3.8's,
and the numbers move with the traffic.

corral only: Debian's ZooKeeper ships without the Prometheus provider's jars.
"""

import random
import socket
import time
import urllib.error
import urllib.request

import pytest

import zkraw as z

parser = pytest.importorskip("prometheus_client.parser")

PROVIDER = "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider"

# ZooKeeper's names and Prometheus types for what a standalone corral knows.
ZK_GAUGES = [
    "avg_latency", "min_latency", "max_latency", "packets_received", "packets_sent",
    "num_alive_connections", "outstanding_requests", "uptime", "znode_count",
    "watch_count", "ephemerals_count", "approximate_data_size", "global_sessions",
    "local_sessions", "open_file_descriptor_count", "max_file_descriptor_count",
]
ZK_SUMMARIES = ["fsynctime", "sync_processor_batch_size"]


def port_is_free(port):
    """Nothing listens on 127.0.0.1:port and it can be bound."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) != 0


def fresh_port():
    """A free port below the ephemeral range (as tests/common/ensemble.rs picks
    them): one the kernel does not hand out to outgoing connections meanwhile."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        lo = 32768
    for _ in range(200):
        p = random.randrange(10000, max(lo, 10001))
        if port_is_free(p):
            return p
    raise RuntimeError("no free port found")


def scrape(port, path="/metrics"):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return r.headers.get("Content-Type"), r.read().decode()


def families(text):
    return {f.name: f for f in parser.text_string_to_metric_families(text)}


def sample(fams, family, name=None, labels=None):
    for s in fams[family].samples:
        if s.name == (name or family) and (labels is None or s.labels == labels):
            return s.value
    raise KeyError(f"{name or family} {labels} not in {fams[family].samples}")


@pytest.fixture
def corral_only(target):
    if target != "corral":
        pytest.skip("Debian's ZooKeeper has no Prometheus provider")


def test_metrics_names_types_and_movement(corral_only, server_factory):
    port = fresh_port()
    srv = server_factory({
        "metricsProvider.className": PROVIDER,
        "metricsProvider.httpHost": "127.0.0.1",
        "metricsProvider.httpPort": port,
        "metricsProvider.exportJvmInfo": "false",
    })
    ctype, text = scrape(port)
    assert ctype.startswith("text/plain; version=0.0.4"), ctype
    # The tree's counts appear once shard 0 has first reported (within 200 ms).
    deadline = time.monotonic() + 5
    while "znode_count" not in families(text) and time.monotonic() < deadline:
        time.sleep(0.05)
        text = scrape(port)[1]
    before = families(text)
    for name in ZK_GAUGES:
        assert before[name].type == "gauge", (name, before[name].type)
        assert before[name].documentation == name  # ZooKeeper's help text is the name
    assert before["corral_shard_connections"].type == "gauge"
    assert before["corral_shard_apply_lag"].type == "gauge"
    assert before["corral_build_info"].type == "gauge"
    assert not any(n in before for n in ("quorum_size", "learners")), "standalone"

    c = z.Client(srv.host, srv.port)
    base = "/metrics-test"
    assert c.create(base, b"").err == 0
    for i in range(20):
        assert c.create(f"{base}/n{i}", b"x" * 10).err == 0
        assert c.get_data(f"{base}/n{i}").err == 0

    # The shards publish a few times a second, the commit shard its log numbers at
    # most every 200 ms: wait for the writes to show.
    deadline = time.monotonic() + 5
    while True:
        after = families(scrape(port)[1])
        moved = (
            sample(after, "znode_count") >= sample(before, "znode_count") + 21
            and sample(after, "packets_received") >= sample(before, "packets_received") + 41
            and sample(after, "packets_sent") >= sample(before, "packets_sent") + 41
            and "fsynctime" in after and "sync_processor_batch_size" in after
            and sample(after, "sync_processor_batch_size", "sync_processor_batch_size_sum") >= 21
        )
        if moved or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    c.close()
    assert moved, scrape(port)[1]

    assert sample(after, "packets_received") >= sample(before, "packets_received") + 41
    assert sample(after, "packets_sent") >= sample(before, "packets_sent") + 41
    assert sample(after, "num_alive_connections") >= 1
    assert sample(after, "global_sessions") >= 1
    assert sample(after, "approximate_data_size") > sample(before, "approximate_data_size")
    assert sample(after, "max_latency") >= sample(after, "min_latency") >= 0
    assert sample(after, "uptime") > 0
    for name in ZK_SUMMARIES:
        fam = after[name]
        assert fam.type == "summary", (name, fam.type)
        assert sample(after, name, name, {"quantile": "0.5"}) >= 0
        assert sample(after, name, name + "_count") > 0
    # 21 creates, each made durable by some group-commit batch.
    assert sample(after, "sync_processor_batch_size", "sync_processor_batch_size_sum") >= 21
    assert sample(after, "corral_shard_connections", labels={"shard": "0"}) >= 0


def test_only_metrics_path_is_served(corral_only, server_factory):
    port = fresh_port()
    server_factory({"metricsProvider.className": "prometheus",
                    "metricsProvider.httpHost": "127.0.0.1",
                    "metricsProvider.httpPort": port})
    with pytest.raises(urllib.error.HTTPError) as e:
        scrape(port, "/other")
    assert e.value.code == 404
    req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", method="TRACE")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=5)
    assert e.value.code == 405


def test_metrics_port_in_use_stops_the_start(corral_only, server_factory):
    port = fresh_port()
    holder = socket.socket()
    holder.bind(("127.0.0.1", port))
    holder.listen(1)
    try:
        with pytest.raises(RuntimeError) as e:
            server_factory({"metricsProvider.className": PROVIDER,
                            "metricsProvider.httpHost": "127.0.0.1",
                            "metricsProvider.httpPort": port})
        msg = str(e.value)
        assert "exited" in msg, msg
        assert "address in use" in msg and str(port) in msg, msg
    finally:
        holder.close()
