"""A small, synchronous ZooKeeper wire-protocol client for tests.

kazoo hides things these tests must see exactly: reply-header zxids and error
codes, container/TTL create modes, addWatch, multi per-op results, and the
precise order of watch events. This client speaks the jute framing directly,
one request at a time: `call()` sends a request and reads frames until the
reply with its xid arrives, queueing any watch notifications it meets on the
way in `events` (in arrival order).
"""

import hashlib
import base64
import socket
import struct
import time

# --- opcodes (ZooDefs.OpCode) -------------------------------------------
NOTIFICATION = 0
CREATE = 1
DELETE = 2
EXISTS = 3
GET_DATA = 4
SET_DATA = 5
GET_ACL = 6
SET_ACL = 7
GET_CHILDREN = 8
SYNC = 9
PING = 11
GET_CHILDREN2 = 12
CHECK = 13
MULTI = 14
CREATE2 = 15
RECONFIG = 16
CHECK_WATCHES = 17
REMOVE_WATCHES = 18
CREATE_CONTAINER = 19
DELETE_CONTAINER = 20
CREATE_TTL = 21
MULTI_READ = 22
AUTH = 100
SET_WATCHES = 101
GET_EPHEMERALS = 103
GET_ALL_CHILDREN_NUMBER = 104
ADD_WATCH = 106
WHO_AM_I = 107
CLOSE_SESSION = -11
ERROR = -1

# --- create modes (CreateMode flags) -------------------------------------
PERSISTENT = 0
EPHEMERAL = 1
PERSISTENT_SEQUENTIAL = 2
EPHEMERAL_SEQUENTIAL = 3
CONTAINER = 4
PERSISTENT_WITH_TTL = 5
PERSISTENT_SEQUENTIAL_WITH_TTL = 6

# --- error codes (KeeperException.Code) ----------------------------------
OK = 0
SYSTEM_ERROR = -1
RUNTIME_INCONSISTENCY = -2
UNIMPLEMENTED = -6
BAD_ARGUMENTS = -8
NO_NODE = -101
NO_AUTH = -102
BAD_VERSION = -103
NO_CHILDREN_FOR_EPHEMERALS = -108
NODE_EXISTS = -110
NOT_EMPTY = -111
SESSION_EXPIRED = -112
INVALID_ACL = -114
AUTH_FAILED = -115
NO_WATCHER = -121

ERROR_NAMES = {
    0: "Ok", -1: "SystemError", -2: "RuntimeInconsistency", -3: "DataInconsistency",
    -4: "ConnectionLoss", -5: "MarshallingError", -6: "Unimplemented",
    -7: "OperationTimeout", -8: "BadArguments", -12: "UnknownSession",
    -100: "APIError", -101: "NoNode", -102: "NoAuth", -103: "BadVersion",
    -108: "NoChildrenForEphemerals", -110: "NodeExists", -111: "NotEmpty",
    -112: "SessionExpired", -113: "InvalidCallback", -114: "InvalidACL",
    -115: "AuthFailed", -118: "SessionMoved", -119: "NotReadOnly",
    -120: "EphemeralOnLocalSession", -121: "NoWatcher", -122: "RequestTimeout",
    -123: "ReconfigDisabled", -125: "QuotaExceeded", -127: "Throttled",
}

# --- permissions ----------------------------------------------------------
READ, WRITE, CREATE_P, DELETE_P, ADMIN = 1, 2, 4, 8, 16
ALL = 31

# --- watch event types -----------------------------------------------------
EV_NONE = -1
EV_CREATED = 1
EV_DELETED = 2
EV_DATA = 3
EV_CHILDREN = 4

XID_WATCH = -1
XID_PING = -2
XID_AUTH = -4

OPEN_ACL = [(ALL, "world", "anyone")]


def digest_id(user, password):
    """The id a digest ACL names for user:password (as ZooKeeper computes it)."""
    h = hashlib.sha1(f"{user}:{password}".encode()).digest()
    return f"{user}:{base64.b64encode(h).decode()}"


class ConnectionClosed(Exception):
    pass


class Stat(tuple):
    FIELDS = ("czxid", "mzxid", "ctime", "mtime", "version", "cversion",
              "aversion", "ephemeralOwner", "dataLength", "numChildren", "pzxid")

    def __new__(cls, vals):
        return tuple.__new__(cls, vals)

    def __getattr__(self, name):
        try:
            return self[Stat.FIELDS.index(name)]
        except ValueError:
            raise AttributeError(name)

    def asdict(self):
        return dict(zip(Stat.FIELDS, self))


# --- jute writer/reader ----------------------------------------------------
class W:
    def __init__(self):
        self.b = bytearray()

    def int(self, v):
        self.b += struct.pack(">i", v)
        return self

    def long(self, v):
        self.b += struct.pack(">q", v)
        return self

    def bool(self, v):
        self.b += b"\x01" if v else b"\x00"
        return self

    def buf(self, v):
        if v is None:
            return self.int(-1)
        self.int(len(v))
        self.b += v
        return self

    def str(self, v):
        return self.buf(None if v is None else v.encode())

    def acl(self, acls):
        self.int(len(acls))
        for perms, scheme, ident in acls:
            self.int(perms).str(scheme).str(ident)
        return self

    def strs(self, vals):
        self.int(len(vals))
        for v in vals:
            self.str(v)
        return self


class R:
    def __init__(self, data):
        self.d = data
        self.o = 0

    def int(self):
        v = struct.unpack_from(">i", self.d, self.o)[0]
        self.o += 4
        return v

    def long(self):
        v = struct.unpack_from(">q", self.d, self.o)[0]
        self.o += 8
        return v

    def bool(self):
        v = self.d[self.o] != 0
        self.o += 1
        return v

    def buf(self):
        n = self.int()
        if n < 0:
            return None
        v = bytes(self.d[self.o:self.o + n])
        self.o += n
        return v

    def str(self):
        v = self.buf()
        return None if v is None else v.decode()

    def stat(self):
        return Stat((self.long(), self.long(), self.long(), self.long(), self.int(),
                     self.int(), self.int(), self.long(), self.int(), self.int(),
                     self.long()))

    def strs(self):
        n = self.int()
        if n < 0:
            return None
        return [self.str() for _ in range(n)]

    def acl(self):
        n = self.int()
        if n < 0:
            return None
        out = []
        for _ in range(n):
            perms = self.int()
            out.append((perms, self.str(), self.str()))
        return out


class Reply:
    """One reply: header zxid, error code, and decoded body (None on error)."""

    __slots__ = ("zxid", "err", "body")

    def __init__(self, zxid, err, body):
        self.zxid, self.err, self.body = zxid, err, body

    def __repr__(self):
        return f"Reply(zxid={self.zxid}, err={ERROR_NAMES.get(self.err, self.err)}, body={self.body!r})"


class Client:
    """One session over one TCP connection."""

    def __init__(self, host, port, timeout_ms=30000, session_id=0, passwd=b"\0" * 16,
                 last_zxid=0, sock_timeout=10.0):
        self.host, self.port = host, port
        self.events = []  # (type, state, path) in arrival order
        self.xid = 0
        self.last_zxid = last_zxid
        self.sock = socket.create_connection((host, port), timeout=sock_timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        w = W().int(0).long(last_zxid).int(timeout_ms).long(session_id).buf(passwd).bool(False)
        self._send(bytes(w.b))
        r = R(self._recv_frame())
        self.protocol_version = r.int()
        self.timeout_ms = r.int()
        self.session_id = r.long()
        self.passwd = r.buf()
        self.last_send = time.monotonic()
        if self.timeout_ms <= 0:
            self.sock.close()
            raise ConnectionClosed("session rejected (expired or invalid)")

    # -- framing --
    def _send(self, payload):
        self.sock.sendall(struct.pack(">i", len(payload)) + payload)
        self.last_send = time.monotonic()

    def _recv_exact(self, n):
        chunks = []
        while n:
            c = self.sock.recv(n)
            if not c:
                raise ConnectionClosed("server closed the connection")
            chunks.append(c)
            n -= len(c)
        return b"".join(chunks)

    def _recv_frame(self):
        (n,) = struct.unpack(">i", self._recv_exact(4))
        return self._recv_exact(n)

    def close_socket(self):
        try:
            self.sock.close()
        except OSError:
            pass

    # -- request/reply --
    def call(self, opcode, body=b"", xid=None, decode=None):
        if xid is None:
            self.xid += 1
            xid = self.xid
        self._send(struct.pack(">ii", xid, opcode) + body)
        while True:
            r = R(self._recv_frame())
            rxid, zxid, err = r.int(), r.long(), r.int()
            if rxid == XID_WATCH:
                self.events.append((r.int(), r.int(), r.str()))
                continue
            if rxid != xid:
                if rxid == XID_PING:
                    continue
                raise AssertionError(f"reply xid {rxid} while waiting for {xid}")
            if zxid > 0:
                self.last_zxid = max(self.last_zxid, zxid)
            out = None
            if err == 0 and decode is not None:
                out = decode(r)
            return Reply(zxid, err, out)

    def ping(self):
        return self.call(PING, xid=XID_PING)

    def keepalive(self):
        if time.monotonic() - self.last_send > self.timeout_ms / 3000.0:
            self.ping()

    def wait_events(self, n, timeout=5.0):
        """Read until at least n events are queued (for async watch tests)."""
        deadline = time.monotonic() + timeout
        old = self.sock.gettimeout()
        try:
            while len(self.events) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.sock.settimeout(left)
                try:
                    r = R(self._recv_frame())
                except socket.timeout:
                    break
                rxid, _zxid, _err = r.int(), r.long(), r.int()
                if rxid == XID_WATCH:
                    self.events.append((r.int(), r.int(), r.str()))
        finally:
            self.sock.settimeout(old)
        return self.events

    def close(self):
        try:
            rep = self.call(CLOSE_SESSION)
        except (ConnectionClosed, OSError):
            rep = None
        self.close_socket()
        return rep

    # -- operations --
    def create(self, path, data=b"", acl=None, mode=PERSISTENT, ttl=None, stat=False):
        acl = OPEN_ACL if acl is None else acl
        w = W().str(path).buf(data).acl(acl).int(mode)
        if ttl is not None:
            w.long(ttl)
            op = CREATE_TTL
        elif mode == CONTAINER:
            op = CREATE_CONTAINER
        else:
            op = CREATE2 if stat else CREATE
        if op == CREATE:
            return self.call(op, bytes(w.b), decode=lambda r: r.str())
        return self.call(op, bytes(w.b), decode=lambda r: (r.str(), r.stat()))

    def delete(self, path, version=-1):
        return self.call(DELETE, bytes(W().str(path).int(version).b))

    def exists(self, path, watch=False):
        return self.call(EXISTS, bytes(W().str(path).bool(watch).b), decode=lambda r: r.stat())

    def get_data(self, path, watch=False):
        return self.call(GET_DATA, bytes(W().str(path).bool(watch).b),
                         decode=lambda r: (r.buf(), r.stat()))

    def set_data(self, path, data, version=-1):
        return self.call(SET_DATA, bytes(W().str(path).buf(data).int(version).b),
                         decode=lambda r: r.stat())

    def get_children(self, path, watch=False):
        return self.call(GET_CHILDREN, bytes(W().str(path).bool(watch).b), decode=lambda r: r.strs())

    def get_children2(self, path, watch=False):
        return self.call(GET_CHILDREN2, bytes(W().str(path).bool(watch).b),
                         decode=lambda r: (r.strs(), r.stat()))

    def get_acl(self, path):
        return self.call(GET_ACL, bytes(W().str(path).b), decode=lambda r: (r.acl(), r.stat()))

    def set_acl(self, path, acl, version=-1):
        return self.call(SET_ACL, bytes(W().str(path).acl(acl).int(version).b),
                         decode=lambda r: r.stat())

    def sync(self, path="/"):
        return self.call(SYNC, bytes(W().str(path).b), decode=lambda r: r.str())

    def add_auth(self, scheme, auth):
        return self.call(AUTH, bytes(W().int(0).str(scheme).buf(auth).b), xid=XID_AUTH)

    def add_watch(self, path, recursive=False):
        return self.call(ADD_WATCH, bytes(W().str(path).int(1 if recursive else 0).b))

    def get_ephemerals(self, prefix="/"):
        return self.call(GET_EPHEMERALS, bytes(W().str(prefix).b), decode=lambda r: r.strs())

    def get_all_children_number(self, path):
        return self.call(GET_ALL_CHILDREN_NUMBER, bytes(W().str(path).b), decode=lambda r: r.int())

    def multi(self, ops, read=False):
        """ops: list of tuples:
        ("create", path, data, acl, mode[, ttl]), ("delete", path, version),
        ("set", path, data, version), ("check", path, version),
        ("get", path), ("children", path) (the last two only with read=True).
        Returns Reply whose body is a list of (type, err, payload)."""
        w = W()
        for op in ops:
            kind = op[0]
            if kind == "create":
                _, path, data, acl, mode = op[:5]
                ttl = op[5] if len(op) > 5 else None
                if ttl is not None:
                    w.int(CREATE_TTL).bool(False).int(-1)
                    w.str(path).buf(data).acl(acl).int(mode).long(ttl)
                else:
                    t = CREATE_CONTAINER if mode == CONTAINER else CREATE
                    w.int(t).bool(False).int(-1)
                    w.str(path).buf(data).acl(acl).int(mode)
            elif kind == "delete":
                w.int(DELETE).bool(False).int(-1).str(op[1]).int(op[2])
            elif kind == "set":
                w.int(SET_DATA).bool(False).int(-1).str(op[1]).buf(op[2]).int(op[3])
            elif kind == "check":
                w.int(CHECK).bool(False).int(-1).str(op[1]).int(op[2])
            elif kind == "get":
                w.int(GET_DATA).bool(False).int(-1).str(op[1]).bool(False)
            elif kind == "children":
                w.int(GET_CHILDREN).bool(False).int(-1).str(op[1]).bool(False)
            else:
                raise ValueError(kind)
        w.int(-1).bool(True).int(-1)

        def decode(r):
            results = []
            while True:
                t, done, err = r.int(), r.bool(), r.int()
                if done:
                    return results
                if t == CREATE:
                    results.append((t, 0, r.str()))
                elif t in (CREATE2, CREATE_CONTAINER, CREATE_TTL):
                    results.append((t, 0, (r.str(), r.stat())))
                elif t in (DELETE, CHECK):
                    results.append((t, 0, None))
                elif t == SET_DATA:
                    results.append((t, 0, r.stat()))
                elif t == GET_CHILDREN:
                    results.append((t, 0, r.strs()))
                elif t == GET_DATA:
                    results.append((t, 0, (r.buf(), r.stat())))
                elif t == ERROR:
                    results.append((t, r.int(), None))
                else:
                    raise AssertionError(f"unknown multi result type {t}")

        return self.call(MULTI_READ if read else MULTI, bytes(w.b), decode=decode)


def four_letter(host, port, word, timeout=5.0):
    """Send a four-letter word and return the whole response text."""
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        s.sendall(word.encode())
        chunks = []
        while True:
            c = s.recv(65536)
            if not c:
                break
            chunks.append(c)
        return b"".join(chunks).decode(errors="replace")
    finally:
        s.close()
