"""kazoo's recipes used for real by several clients at once, with assertions
on the outcomes (mutual exclusion, leader election and fail-over, exact
counters, queue order, watches with the right data, ...)."""

import threading
import time
import uuid

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import LockTimeout
from kazoo.recipe.barrier import Barrier, DoubleBarrier
from kazoo.recipe.counter import Counter
from kazoo.recipe.election import Election
from kazoo.recipe.lock import Lock, Semaphore
from kazoo.recipe.party import Party, ShallowParty
from kazoo.recipe.queue import LockingQueue, Queue
from kazoo.recipe.watchers import ChildrenWatch, DataWatch


@pytest.fixture
def clients(server):
    made = []

    def make(timeout=10.0):
        c = KazooClient(hosts=server.hostport, timeout=timeout)
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
def base():
    return "/recipes-" + uuid.uuid4().hex[:8]


def wait_for(cond, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def test_lock_mutual_exclusion(clients, base):
    n_clients, rounds = 4, 15
    inside = []
    max_inside = [0]
    order = []
    guard = threading.Lock()
    errors = []

    def worker(i):
        try:
            zk = clients()
            lock = Lock(zk, base + "/lock", identifier=f"w{i}")
            for r in range(rounds):
                with lock:
                    with guard:
                        inside.append(i)
                        max_inside[0] = max(max_inside[0], len(inside))
                        order.append(i)
                    time.sleep(0.001)
                    with guard:
                        inside.remove(i)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n_clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    assert max_inside[0] == 1
    assert len(order) == n_clients * rounds
    # The lock's children are all gone after everyone released.
    zk = clients()
    assert zk.get_children(base + "/lock") == []


def test_lock_contenders_and_timeout(clients, base):
    a, b = clients(), clients()
    la = Lock(a, base + "/l", identifier="alpha")
    lb = Lock(b, base + "/l", identifier="beta")
    assert la.acquire(timeout=5)
    with pytest.raises(LockTimeout):
        lb.acquire(timeout=0.5)
    # The holder is listed first among contenders.
    assert la.contenders()[0] == "alpha"
    la.release()
    assert lb.acquire(timeout=5)
    assert lb.contenders() == ["beta"]
    lb.release()


def test_lock_released_when_holder_session_closes(clients, base):
    a, b = clients(), clients()
    la = Lock(a, base + "/l")
    assert la.acquire(timeout=5)
    got = threading.Event()

    def waiter():
        lb = Lock(b, base + "/l")
        if lb.acquire(timeout=20):
            got.set()
            lb.release()

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.3)
    assert not got.is_set()
    a.stop()  # closes the session: its ephemeral lock node goes away
    t.join(25)
    assert got.is_set()


def test_election_single_leader_and_failover(clients, base):
    n = 3
    zks = [clients() for _ in range(n)]
    leaders = []
    lock = threading.Lock()
    stop_events = [threading.Event() for _ in range(n)]

    def run(i):
        e = Election(zks[i], base + "/election", identifier=f"cand{i}")

        def lead():
            with lock:
                leaders.append(i)
            stop_events[i].wait(30)

        try:
            e.run(lead)
        except Exception:
            pass

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
        time.sleep(0.1)
    wait_for(lambda: len(leaders) >= 1, what="a leader")
    time.sleep(0.5)
    assert len(leaders) == 1, leaders
    first = leaders[0]
    contenders = Election(zks[(first + 1) % n], base + "/election").contenders()
    assert contenders[0] == f"cand{first}"
    assert sorted(contenders) == sorted(f"cand{i}" for i in range(n))
    # Leader's session closes: exactly one other candidate takes over.
    zks[first].stop()
    wait_for(lambda: len(leaders) >= 2, what="a new leader")
    time.sleep(0.5)
    assert len(leaders) == 2
    assert leaders[1] != first
    for ev in stop_events:
        ev.set()


def test_counter_exact(clients, base):
    n_clients, incs = 4, 25
    errors = []

    def worker():
        try:
            c = Counter(clients(), base + "/counter")
            for _ in range(incs):
                c += 1
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(n_clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    zk = clients()
    c = Counter(zk, base + "/counter")
    assert c.value == n_clients * incs
    c -= 10
    assert c.value == n_clients * incs - 10
    f = Counter(zk, base + "/fcounter", default=0.0)
    f += 2.5
    f += 0.25
    assert f.value == 2.75


def test_queue_fifo_across_clients(clients, base):
    producer, consumer = clients(), clients()
    qp = Queue(producer, base + "/q")
    items = [f"item-{i}".encode() for i in range(20)]
    for it in items:
        qp.put(it)
    qc = Queue(consumer, base + "/q")
    assert len(qc) == 20
    got = [qc.get() for _ in range(20)]
    assert got == items
    assert qc.get() is None
    # priorities: lower value first, FIFO within a priority
    qp.put(b"low", priority=50)
    qp.put(b"high1", priority=10)
    qp.put(b"high2", priority=10)
    assert [qc.get() for _ in range(3)] == [b"high1", b"high2", b"low"]


def test_queue_concurrent_consumers_each_item_once(clients, base):
    qp = Queue(clients(), base + "/q")
    n = 60
    for i in range(n):
        qp.put(str(i).encode())
    got = []
    lock = threading.Lock()

    def consume():
        q = Queue(clients(), base + "/q")
        while True:
            v = q.get()
            if v is None:
                return
            with lock:
                got.append(int(v))

    threads = [threading.Thread(target=consume) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(got) == list(range(n))


def test_locking_queue(clients, base):
    a, b = clients(), clients()
    qa = LockingQueue(a, base + "/lq")
    qb = LockingQueue(b, base + "/lq")
    qa.put(b"first")
    qa.put_all([b"second", b"third"])
    assert len(qb) == 3
    assert qb.get(timeout=5) == b"first"
    # While b holds "first", a gets the next item, not the same one.
    assert qa.get(timeout=5) == b"second"
    assert qb.consume()
    assert qa.release()  # "second" goes back
    assert qb.get(timeout=5) == b"second"
    assert qb.consume()
    assert qa.get(timeout=5) == b"third"
    assert qa.consume()
    assert len(qb) == 0
    assert qb.get(timeout=0.3) is None


def test_barrier(clients, base):
    a, b = clients(), clients()
    ba = Barrier(a, base + "/barrier")
    ba.create()
    passed = threading.Event()

    def waiter():
        if Barrier(b, base + "/barrier").wait(timeout=20):
            passed.set()

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.3)
    assert not passed.is_set()
    ba.remove()
    t.join(25)
    assert passed.is_set()
    assert Barrier(b, base + "/barrier").wait(timeout=1)


def test_double_barrier(clients, base):
    n = 3
    entered, left = [], []
    lock = threading.Lock()

    def member(i):
        db = DoubleBarrier(clients(), base + "/db", n)
        db.enter()
        with lock:
            entered.append((i, time.monotonic()))
        time.sleep(0.05 * i)
        db.leave()
        with lock:
            left.append((i, time.monotonic()))

    threads = []
    starts = []
    for i in range(n):
        t = threading.Thread(target=member, args=(i,))
        t.start()
        starts.append(time.monotonic())
        threads.append(t)
        time.sleep(0.3)
    for t in threads:
        t.join(60)
    assert len(entered) == n and len(left) == n
    # Nobody entered before the last member arrived.
    assert min(t for _, t in entered) >= starts[-1] - 0.05
    # Nobody left before the last member finished its work (entered + sleep).
    last_work_done = max(t + 0.05 * i for i, t in entered)
    assert min(t for _, t in left) >= last_work_done - 0.05


def test_data_watch(clients, base):
    a, b = clients(), clients()
    path = base + "/dw"
    seen = []
    cond = threading.Condition()

    def cb(data, stat, event):
        with cond:
            seen.append((data, stat.version if stat else None, event.type if event else None))
            cond.notify_all()

    DataWatch(b, path, cb)
    wait_for(lambda: len(seen) >= 1, what="initial call")
    assert seen[0] == (None, None, None)
    a.create(path, b"v0", makepath=True)
    wait_for(lambda: len(seen) >= 2, what="created")
    assert seen[1][:2] == (b"v0", 0) and seen[1][2] == "CREATED"
    a.set(path, b"v1")
    wait_for(lambda: len(seen) >= 3, what="changed")
    assert seen[2][:2] == (b"v1", 1) and seen[2][2] == "CHANGED"
    a.set(path, b"v2")
    wait_for(lambda: len(seen) >= 4, what="changed again")
    assert seen[3][:2] == (b"v2", 2)
    a.delete(path)
    wait_for(lambda: len(seen) >= 5, what="deleted")
    assert seen[4][:2] == (None, None) and seen[4][2] == "DELETED"


def test_children_watch(clients, base):
    a, b = clients(), clients()
    path = base + "/cw"
    a.ensure_path(path)
    seen = []

    def cb(children):
        seen.append(sorted(children))

    ChildrenWatch(b, path, cb)
    wait_for(lambda: len(seen) >= 1, what="initial")
    assert seen[-1] == []
    a.create(path + "/x")
    wait_for(lambda: seen[-1] == ["x"], what="x")
    a.create(path + "/y", ephemeral=True)
    wait_for(lambda: seen[-1] == ["x", "y"], what="x,y")
    a.delete(path + "/x")
    wait_for(lambda: seen[-1] == ["y"], what="y")
    a.stop()  # ephemeral y goes with the session
    wait_for(lambda: seen[-1] == [], what="empty after session close")


def test_semaphore(clients, base):
    max_leases = 2
    holders = []
    peak = [0]
    lock = threading.Lock()
    errors = []

    def worker(i):
        try:
            sem = Semaphore(clients(), base + "/sem", identifier=f"w{i}", max_leases=max_leases)
            for _ in range(4):
                with sem:
                    with lock:
                        holders.append(i)
                        peak[0] = max(peak[0], len(holders))
                    time.sleep(0.02)
                    with lock:
                        holders.remove(i)
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    assert 1 <= peak[0] <= max_leases
    zk = clients()
    s = Semaphore(zk, base + "/sem", identifier="probe", max_leases=max_leases)
    assert s.lease_holders() == []


def test_semaphore_two_leases_held_together(clients, base):
    s1 = Semaphore(clients(), base + "/sem2", identifier="one", max_leases=2)
    s2 = Semaphore(clients(), base + "/sem2", identifier="two", max_leases=2)
    s3 = Semaphore(clients(), base + "/sem2", identifier="three", max_leases=2)
    assert s1.acquire(timeout=5)
    assert s2.acquire(timeout=5)
    assert sorted(s3.lease_holders()) == ["one", "two"]
    with pytest.raises(LockTimeout):
        s3.acquire(timeout=0.5)
    s1.release()
    assert s3.acquire(timeout=5)
    assert sorted(s3.lease_holders()) == ["three", "two"]
    s2.release()
    s3.release()


def test_semaphore_blocks_beyond_leases(clients, base):
    s1 = Semaphore(clients(), base + "/sem", identifier="one", max_leases=1)
    s2 = Semaphore(clients(), base + "/sem", identifier="two", max_leases=1)
    assert s1.acquire(timeout=5)
    with pytest.raises(LockTimeout):
        s2.acquire(timeout=0.5)
    assert s2.lease_holders() == ["one"]
    s1.release()
    assert s2.acquire(timeout=5)
    s2.release()


def test_party(clients, base):
    a, b, c = clients(), clients(), clients()
    pa = Party(a, base + "/party", "alice")
    pb = Party(b, base + "/party", "bob")
    pa.join()
    pb.join()
    observer = Party(c, base + "/party")
    assert sorted(observer) == ["alice", "bob"]
    assert len(observer) == 2
    pb.leave()
    assert list(observer) == ["alice"]
    a.stop()  # session close removes alice's ephemeral membership
    wait_for(lambda: len(Party(c, base + "/party")) == 0, what="party empty")
    sp = ShallowParty(c, base + "/shallow", "carol")
    sp.join()
    assert list(ShallowParty(b, base + "/shallow")) == ["carol"]
