"""Differential test: the same seeded random operations against Apache
ZooKeeper 3.8 (the reference) and the server under test, compared reply by
reply.

Both servers get three sessions each; every operation goes to the same
session slot on both. After each operation every live session is "drained"
with a sync (ZooKeeper queues a watch notification on a connection before any
later reply on it), so the watch events each session received are compared
per operation, in order.

Compared: error codes, data, children (sorted: ZooKeeper's order is
unspecified), every Stat field, ACLs, multi per-op results, reply-header
zxids, negotiated session timeouts, and watch events. zxids are compared by
order: the pairs (zookeeper zxid, target zxid) seen in one run must form a
strictly monotone bijection. Times (ctime/mtime) must not be ordered the
other way round (ties allowed, since two writes may land in one millisecond
on one server and not the other) and must be near the wall clock.
ephemeralOwner is mapped to the session slot that owns it.

Environment:
  CORRAL_DIFF_SEEDS   number of seeds (default 20)
  CORRAL_DIFF_OPS     operations per seed (default 300)
  CORRAL_DIFF_SEED0   first seed (default 1)
  CORRAL_DIFF_INVALID_PATHS=0  leave out malformed paths
With --target=zookeeper both sides are Apache ZooKeeper (proves the harness).
"""

import bisect
import os
import random
import time

import pytest

import servers
import zkraw as z

NSEEDS = int(os.environ.get("CORRAL_DIFF_SEEDS", "20"))
NOPS = int(os.environ.get("CORRAL_DIFF_OPS", "300"))
SEED0 = int(os.environ.get("CORRAL_DIFF_SEED0", "1"))
INVALID_PATHS = os.environ.get("CORRAL_DIFF_INVALID_PATHS", "1") != "0"

NSESSIONS = 3
# Slot i authenticates as AUTHS[i] (None: no auth). Re-applied on reopen.
AUTHS = [None, ("u1", "p1"), ("u2", "p2")]
NAMES = ["a", "b", "c"]

# No container/TTL reaping during a run: it is timer-driven, not deterministic.
DIFF_CONFIG = {"znode.container.checkIntervalMs": "3600000"}


@pytest.fixture(scope="module")
def pair(module_server_factory, target):
    ref = module_server_factory(DIFF_CONFIG, target_override="zookeeper", name="reference")
    sut = module_server_factory(DIFF_CONFIG, name="under-test")
    return ref, sut


class Difference(AssertionError):
    pass


class OrderMap:
    """Checks that pairs (a, b) form an order isomorphism.

    strict: a1 < a2 <=> b1 < b2 and a1 == a2 <=> b1 == b2.
    non-strict: never a1 < a2 while b1 > b2 (ties free).
    Pairs are kept sorted by (a, b); the invariant is that b is
    (strictly) increasing along that order, so a new pair only has to be
    checked against its neighbours."""

    def __init__(self, strict):
        self.strict = strict
        self.pairs = []

    def check(self, a, b):
        p = self.pairs
        if self.strict:
            i = bisect.bisect_left(p, (a, -(2 ** 63)))
            if i < len(p) and p[i][0] == a:
                return p[i][1] == b
            if i > 0 and not p[i - 1][1] < b:
                return False
            if i < len(p) and not b < p[i][1]:
                return False
            p.insert(i, (a, b))
            return True
        i = bisect.bisect_left(p, (a, b))
        if i > 0 and p[i - 1][1] > b:
            return False
        if i < len(p) and p[i][1] < b:
            return False
        p.insert(i, (a, b))
        return True


# Tagged leaves so one walker can compare both servers' normalised replies.
class Zxid(int):
    pass


class Time(int):
    pass


class Owner(int):
    pass


def norm_stat(st):
    if st is None:
        return None
    d = st.asdict()
    for k in ("czxid", "mzxid", "pzxid"):
        d[k] = Zxid(d[k])
    for k in ("ctime", "mtime"):
        d[k] = Time(d[k])
    d["ephemeralOwner"] = Owner(d["ephemeralOwner"])
    return d


class Side:
    """One server's sessions."""

    def __init__(self, server, label):
        self.server = server
        self.label = label
        self.clients = [None] * NSESSIONS
        self.owner_labels = {}  # session id -> "slot.generation"
        self.gen = [0] * NSESSIONS

    def open(self, slot):
        c = z.Client(self.server.host, self.server.port, timeout_ms=30000)
        self.gen[slot] += 1
        self.owner_labels[c.session_id] = f"s{slot}.{self.gen[slot]}"
        self.clients[slot] = c
        return c

    def close_all(self):
        for c in self.clients:
            if c is not None:
                c.close()


class Run:
    def __init__(self, seed, ref, sut):
        self.seed = seed
        self.rng = random.Random(seed)
        self.root = f"/s{seed}"
        self.sides = [Side(ref, "zookeeper"), Side(sut, "target")]
        self.zx = OrderMap(strict=True)
        self.tm = OrderMap(strict=False)
        self.seq_paths = []  # sequential node paths the reference created
        self.known = set()  # paths the reference said it created (a bias, not a model)
        self.op_index = -1
        self.op_desc = "setup"
        self.t0 = time.time()

    # ---------- comparison ----------
    def fail(self, what, a, b):
        raise Difference(
            f"seed={self.seed} op#{self.op_index} {self.op_desc}: {what}\n"
            f"  zookeeper: {a!r}\n  target:    {b!r}\n"
            f"(rerun: CORRAL_DIFF_SEED0={self.seed} CORRAL_DIFF_SEEDS=1 CORRAL_DIFF_OPS={self.op_index + 1})")

    def cmp(self, a, b, where):
        if isinstance(a, Zxid) or isinstance(b, Zxid):
            if not (isinstance(a, Zxid) and isinstance(b, Zxid)) or not self.zx.check(int(a), int(b)):
                self.fail(f"zxid order differs at {where}", a, b)
            return
        if isinstance(a, Time) or isinstance(b, Time):
            if not (isinstance(a, Time) and isinstance(b, Time)):
                self.fail(f"type differs at {where}", a, b)
            now = time.time() * 1000
            for v, side in ((a, "zookeeper"), (b, "target")):
                if v != 0 and not (self.t0 * 1000 - 600_000 <= v <= now + 600_000):
                    self.fail(f"{side} time far from the wall clock at {where}", a, b)
            if (a == 0) != (b == 0) or not self.tm.check(int(a), int(b)):
                self.fail(f"time order differs at {where}", a, b)
            return
        if isinstance(a, Owner) or isinstance(b, Owner):
            la = self.sides[0].owner_labels.get(int(a), int(a))
            lb = self.sides[1].owner_labels.get(int(b), int(b))
            if la != lb:
                self.fail(f"ephemeralOwner differs at {where}", la, lb)
            return
        if isinstance(a, dict) and isinstance(b, dict):
            if a.keys() != b.keys():
                self.fail(f"keys differ at {where}", a, b)
            for k in a:
                self.cmp(a[k], b[k], f"{where}.{k}")
            return
        if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
            if len(a) != len(b):
                self.fail(f"length differs at {where}", a, b)
            for i, (x, y) in enumerate(zip(a, b)):
                self.cmp(x, y, f"{where}[{i}]")
            return
        if type(a) is not type(b) or a != b:
            self.fail(f"value differs at {where}", a, b)

    # ---------- running one op on both servers ----------
    def both(self, slot, fn):
        """Run fn(client) on the slot's client of each server; return both
        normalised results and compare them."""
        outs = []
        for side in self.sides:
            c = side.clients[slot]
            c.keepalive()
            try:
                rep = fn(c)
                outs.append(rep)
            except z.ConnectionClosed:
                outs.append("connection closed")
                # Same session, new connection (watches die with a connection).
                c.close_socket()
                nc = z.Client(side.server.host, side.server.port, timeout_ms=30000,
                              session_id=c.session_id, passwd=c.passwd, last_zxid=c.last_zxid)
                side.clients[slot] = nc
        self.cmp(outs[0], outs[1], "reply")
        return outs

    def drain(self):
        for slot in range(NSESSIONS):
            evs = []
            for side in self.sides:
                c = side.clients[slot]
                c.sync("/")
                evs.append(list(c.events))
                c.events.clear()
            if evs[0] != evs[1]:
                self.fail(f"watch events of session {slot} differ", evs[0], evs[1])

    # ---------- random choices ----------
    def path(self):
        r = self.rng.random()
        if INVALID_PATHS and r < 0.02:
            return self.rng.choice(["", "x", self.root + "/", self.root + "//a", self.root + "/./a",
                                    self.root + "/a/..", self.root + "/a\x00"])
        if r < 0.45 and self.known:
            return self.rng.choice(sorted(self.known))
        if r < 0.6 and self.known:
            return self.rng.choice(sorted(self.known)) + "/" + self.rng.choice(NAMES)
        if self.seq_paths and r < 0.7:
            return self.rng.choice(self.seq_paths)
        depth = self.rng.choice([0, 1, 1, 2, 2, 2, 3])
        return self.root + "".join("/" + self.rng.choice(NAMES) for _ in range(depth))

    def data(self):
        r = self.rng.random()
        if r < 0.1:
            return None
        if r < 0.2:
            return b""
        return bytes(self.rng.randrange(256) for _ in range(self.rng.randrange(1, 24)))

    def version(self):
        return self.rng.choice([-1, -1, 0, 0, 1, 2, 3])

    def acl(self):
        r = self.rng.random()
        if r < 0.75:
            return z.OPEN_ACL
        choices = [
            lambda: (self.rng.randrange(32), "world", "anyone"),
            lambda: (self.rng.randrange(32), "digest", z.digest_id("u1", "p1")),
            lambda: (self.rng.randrange(32), "digest", z.digest_id("u2", "p2")),
            lambda: (self.rng.randrange(32), "auth", ""),
            lambda: (self.rng.randrange(32), "ip", "127.0.0.1"),
            lambda: (self.rng.randrange(32), "ip", "10.0.0.0/8"),
        ]
        if r < 0.97:
            acl = [self.rng.choice(choices)() for _ in range(self.rng.choice([1, 1, 2, 3]))]
            # Keep most nodes usable: mostly grant world READ alongside.
            if self.rng.random() < 0.5:
                acl.append((z.READ | z.CREATE_P | z.DELETE_P, "world", "anyone"))
            return acl
        return self.rng.choice([[], [(31, "world", "bob")], [(31, "digest", "nocolon")],
                                [(31, "ip", "999.1.1.1")], [(31, "nosuchscheme", "x")]])

    def mode_ttl(self):
        mode = self.rng.choice([0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 5, 6])
        ttl = None
        if mode in (z.PERSISTENT_WITH_TTL, z.PERSISTENT_SEQUENTIAL_WITH_TTL):
            ttl = self.rng.choice([3_600_000, 7_200_000, 0, -5])
        elif self.rng.random() < 0.02:
            ttl = 3_600_000  # TTL given with a non-TTL mode: BadArguments
        return mode, ttl

    # ---------- normalisers ----------
    @staticmethod
    def n_plain(rep):
        return {"zxid": Zxid(rep.zxid), "err": rep.err}

    def n_stat(self, rep):
        d = self.n_plain(rep)
        d["stat"] = norm_stat(rep.body) if rep.body is not None else None
        return d

    def n_create(self, rep):
        d = self.n_plain(rep)
        if isinstance(rep.body, tuple):
            d["path"], d["stat"] = rep.body[0], norm_stat(rep.body[1])
        else:
            d["path"] = rep.body
        return d

    def n_get(self, rep):
        d = self.n_plain(rep)
        if rep.body is not None:
            d["data"], d["stat"] = rep.body[0], norm_stat(rep.body[1])
        return d

    def n_children(self, rep):
        d = self.n_plain(rep)
        if rep.body is not None:
            if isinstance(rep.body, tuple):
                d["children"], d["stat"] = sorted(rep.body[0]), norm_stat(rep.body[1])
            else:
                d["children"] = sorted(rep.body)
        return d

    def n_acl(self, rep):
        d = self.n_plain(rep)
        if rep.body is not None:
            d["acl"], d["stat"] = rep.body[0], norm_stat(rep.body[1])
        return d

    def n_multi(self, rep):
        d = self.n_plain(rep)
        if rep.body is not None:
            res = []
            for t, err, payload in rep.body:
                if isinstance(payload, tuple) and len(payload) == 2 and isinstance(payload[1], z.Stat):
                    payload = (payload[0], norm_stat(payload[1]))
                elif isinstance(payload, z.Stat):
                    payload = norm_stat(payload)
                elif isinstance(payload, list):
                    payload = sorted(payload)
                res.append((t, err, payload))
            d["results"] = res
        return d

    def n_sorted_list(self, rep):
        d = self.n_plain(rep)
        if rep.body is not None:
            d["list"] = sorted(rep.body)
        return d

    def n_value(self, rep):
        d = self.n_plain(rep)
        d["value"] = rep.body
        return d

    def remember_created(self, rep):
        # Generator state follows the reference server only.
        paths = []
        if rep.err == 0 and rep.body is not None:
            if isinstance(rep.body, tuple):
                paths.append(rep.body[0])
            elif isinstance(rep.body, str):
                paths.append(rep.body)
            elif isinstance(rep.body, list):
                for _t, _e, p in rep.body:
                    if isinstance(p, tuple):
                        p = p[0]
                    if isinstance(p, str):
                        paths.append(p)
        for p in paths:
            self.known.add(p)
            if p and p[-1].isdigit() and p not in self.seq_paths:
                self.seq_paths.append(p)

    # ---------- one random op ----------
    def step(self):
        rng = self.rng
        slot = rng.randrange(NSESSIONS)
        kind = rng.choices(
            ["create", "delete", "set", "exists", "get", "children", "children2", "getacl",
             "setacl", "multi", "multiread", "sync", "addwatch", "close", "ephemerals", "count"],
            weights=[22, 10, 10, 8, 8, 6, 4, 3, 3, 8, 2, 2, 2, 1.5, 1, 1])[0]
        if kind == "create":
            path, data, acl = self.path(), self.data(), self.acl()
            mode, ttl = self.mode_ttl()
            use2 = rng.random() < 0.5
            self.op_desc = f"s{slot} create({path!r}, {data!r}, {acl}, mode={mode}, ttl={ttl}, create2={use2})"
            outs = self.both(slot, lambda c: self.n_create(c.create(path, data, acl, mode, ttl, stat=use2)))
            self._last_raw_create = None
            # remember sequential paths from the reference's reply
            if isinstance(outs[0], dict) and outs[0].get("err") == 0 and outs[0].get("path"):
                self.remember_created(z.Reply(0, 0, outs[0]["path"]))
        elif kind == "delete":
            path, ver = self.path(), self.version()
            self.op_desc = f"s{slot} delete({path!r}, {ver})"
            outs = self.both(slot, lambda c: self.n_plain(c.delete(path, ver)))
            if isinstance(outs[0], dict) and outs[0]["err"] == 0:
                self.known.discard(path)
        elif kind == "set":
            path, data, ver = self.path(), self.data(), self.version()
            self.op_desc = f"s{slot} setData({path!r}, {data!r}, {ver})"
            self.both(slot, lambda c: self.n_stat(c.set_data(path, data, ver)))
        elif kind in ("exists", "get", "children", "children2"):
            path, watch = self.path(), rng.random() < 0.6
            self.op_desc = f"s{slot} {kind}({path!r}, watch={watch})"
            fn = {
                "exists": lambda c: self.n_stat(c.exists(path, watch)),
                "get": lambda c: self.n_get(c.get_data(path, watch)),
                "children": lambda c: self.n_children(c.get_children(path, watch)),
                "children2": lambda c: self.n_children(c.get_children2(path, watch)),
            }[kind]
            self.both(slot, fn)
        elif kind == "getacl":
            path = self.path()
            self.op_desc = f"s{slot} getACL({path!r})"
            self.both(slot, lambda c: self.n_acl(c.get_acl(path)))
        elif kind == "setacl":
            path, acl, ver = self.path(), self.acl(), rng.choice([-1, -1, 0, 1])
            self.op_desc = f"s{slot} setACL({path!r}, {acl}, {ver})"
            self.both(slot, lambda c: self.n_stat(c.set_acl(path, acl, ver)))
        elif kind == "multi":
            ops = []
            for _ in range(rng.choice([0, 1, 2, 2, 3, 3, 4, 5])):
                k = rng.choice(["create", "create", "delete", "set", "check"])
                if k == "create":
                    mode, ttl = self.mode_ttl()
                    op = ("create", self.path(), self.data(), self.acl(), mode)
                    if ttl is not None:
                        op += (ttl,)
                    ops.append(op)
                elif k == "delete":
                    ops.append(("delete", self.path(), self.version()))
                elif k == "set":
                    ops.append(("set", self.path(), self.data(), self.version()))
                else:
                    ops.append(("check", self.path(), self.version()))
            self.op_desc = f"s{slot} multi({ops})"
            outs = self.both(slot, lambda c: self.n_multi(c.multi(ops)))
            for t, err, payload in (outs[0].get("results") or []) if isinstance(outs[0], dict) else []:
                p = payload[0] if isinstance(payload, tuple) else payload
                if isinstance(p, str):
                    self.remember_created(z.Reply(0, 0, p))
        elif kind == "multiread":
            ops = [rng.choice([("get", self.path()), ("children", self.path())])
                   for _ in range(rng.choice([1, 2, 3]))]
            self.op_desc = f"s{slot} multiRead({ops})"
            self.both(slot, lambda c: self.n_multi(c.multi(ops, read=True)))
        elif kind == "sync":
            path = self.path()
            self.op_desc = f"s{slot} sync({path!r})"
            self.both(slot, lambda c: self.n_value(c.sync(path)))
        elif kind == "addwatch":
            path, rec = self.path(), rng.random() < 0.5
            self.op_desc = f"s{slot} addWatch({path!r}, recursive={rec})"
            self.both(slot, lambda c: self.n_plain(c.add_watch(path, rec)))
        elif kind == "ephemerals":
            prefix = rng.choice([self.root, self.root + "/a", "/"])
            self.op_desc = f"s{slot} getEphemerals({prefix!r})"
            # Other seeds' sessions are closed, so "/" only sees this run's.
            self.both(slot, lambda c: self.n_sorted_list(c.get_ephemerals(prefix)))
        elif kind == "count":
            path = self.path()
            self.op_desc = f"s{slot} getAllChildrenNumber({path!r})"
            self.both(slot, lambda c: self.n_value(c.get_all_children_number(path)))
        elif kind == "close":
            self.op_desc = f"s{slot} closeSession + reopen"
            self.reopen(slot)
        self.drain()

    def reopen(self, slot):
        outs = []
        for side in self.sides:
            rep = side.clients[slot].close()
            outs.append(self.n_plain(rep) if rep is not None else "no reply")
        self.cmp(outs[0], outs[1], "closeSession reply")
        self.open_slot(slot)

    def open_slot(self, slot):
        timeouts = []
        for side in self.sides:
            c = side.open(slot)
            timeouts.append(c.timeout_ms)
        self.cmp(timeouts[0], timeouts[1], f"negotiated timeout of session {slot}")
        if AUTHS[slot]:
            user, pw = AUTHS[slot]
            self.both(slot, lambda c: self.n_plain(c.add_auth("digest", f"{user}:{pw}".encode())))

    def run(self, nops):
        try:
            for slot in range(NSESSIONS):
                self.op_desc = f"open session {slot}"
                self.open_slot(slot)
            self.op_desc = f"create root {self.root}"
            self.both(0, lambda c: self.n_create(c.create(self.root, b"root", stat=True)))
            self.drain()
            for i in range(nops):
                self.op_index = i
                self.step()
        finally:
            for side in self.sides:
                try:
                    side.close_all()
                except Exception:
                    pass


@pytest.mark.parametrize("seed", range(SEED0, SEED0 + NSEEDS))
def test_differential(pair, seed):
    ref, sut = pair
    Run(seed, ref, sut).run(NOPS)


def test_order_map_self_check():
    m = OrderMap(strict=True)
    assert m.check(5, 50) and m.check(7, 70) and m.check(6, 60)
    assert m.check(5, 50)
    assert not m.check(5, 51)
    assert not m.check(8, 65)
    m = OrderMap(strict=False)
    assert m.check(10, 100) and m.check(10, 101) and m.check(11, 101)
    assert not m.check(12, 99)
    assert m.check(12, 101)
