"""Lean request/reply on a redis-py connection's socket: the hot path of
``ConnManager.send`` (fetch, enqueue) and of ``ctx.redis``.

Why not redis-py's own ``send_command``/``read_response``: profiled with ten
threads each INCRing through its own connection (the shape of an I/O-bound
drain), redis-py's per-command path holds the GIL for ~13 us (packing,
health bookkeeping, parser wrappers) and makes four GIL-releasing syscalls
(a ``poll`` before ``send`` and before ``recv``, which Python adds to every
socket that has a timeout). Every release is a chance for a waiting thread
to take the GIL, so threads convoy: 5 context switches and 58 us of CPU per
INCR, 20,000 INCR/s. Here a command is packed by hiredis (C), sent with one
``send`` and read with one ``recv`` into a hiredis reader; the socket
timeout is enforced by the kernel (``SO_RCVTIMEO``/``SO_SNDTIMEO`` on a
blocking socket) instead of by a ``poll``: 1 context switch and 12 us per
INCR, 84,000 INCR/s from the same ten threads.

The send keeps the GIL. In a node draining I/O-bound jobs the GIL is busy
nearly all the time, so every release hands it to a waiting thread and the
releasing one sleeps until it comes back: each hand-off leaves the GIL idle
for a wake-up (~10 us here). A command is far smaller than the socket
buffer, so libc's ``send(MSG_DONTWAIT)`` called through ``ctypes.PyDLL``
(which does not release the GIL) returns at once; only a partial or failed
send, or one above GIL_SEND_MAX bytes, goes through ``sendall``. Measured
on the ctx.redis INCR drain (c=10): 4.3 -> 2.5 context switches per job,
14,600 -> 18,500 jobs/s. The blocking
``recv`` still releases the GIL, as it must.

A process with one thread (a script or a sync web worker enqueuing jobs, the
operator CLI) first polls for its reply for up to SPIN_US instead of
sleeping in ``recv``. On this VM a thread woken by a reply resumes ~40 us
later (the idle vCPU halts), which is most of a local round trip: PING takes
62 us blocking and 23 us polling. Polling costs CPU, so it stops on a
connection whose replies do not arrive within the budget (a remote Redis)
and is re-tried now and then; with other threads it is never done (they may
want the GIL, or the core).

redis-py still owns the connection: connecting, AUTH/ACL, TLS, SELECT,
health checks and disconnects stay its code. Only plain connections of
the classes below take this path; Sentinel-managed connections (which
must turn READONLY into a failover) keep redis-py's. RESP2 and RESP3 (redis-py
8's default) read the same through hiredis; a RESP3 push message is skipped,
as redis-py skips it on a connection that subscribed to nothing. A TLS socket
keeps Python's timeout (the kernel's would surface inside OpenSSL).
"""

from __future__ import annotations

import ctypes
import errno
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

import hiredis
import redis as redispy
from redis import connection as rconn
from redis._parsers.base import BaseParser
from redis.client import EMPTY_RESPONSE, NEVER_DECODE
from redis.exceptions import InvalidResponse

# Connection classes whose socket this module may drive (subclasses are
# registered by gokogeri.redis; anything else goes through redis-py).
_LEAN_TYPES: set[type] = {rconn.Connection, rconn.SSLConnection, rconn.UnixDomainSocketConnection}

_RECV = 65536


# How long a single-threaded caller polls for a reply before it sleeps in recv.
SPIN_US = 60
# Credit a connection spends on replies that took longer (see Wire.spin).
_SPIN_CREDIT = 8
_SPIN_MISS = 4
_SPIN_COOLDOWN = 2000  # calls without polling after the credit ran out


def _gil_send() -> tuple[Callable[[int, bytes, int, int], int] | None, int]:
    """libc's send(2) called with the GIL held, and its non-blocking flags; no
    function where that is not available (no MSG_NOSIGNAL: a closed peer would
    raise SIGPIPE instead of EPIPE)."""
    if not hasattr(socket, "MSG_DONTWAIT") or not hasattr(socket, "MSG_NOSIGNAL"):
        return None, 0
    try:
        fn: Any = ctypes.PyDLL(None).send
    except (OSError, AttributeError):
        return None, 0
    fn.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int)
    fn.restype = ctypes.c_ssize_t
    return fn, socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL


_SEND, _SEND_FLAGS = _gil_send()
# Larger sends release the GIL (sendall). On loopback the kernel runs the
# receiver's side inside send(), so its time grows with the bytes: a fetch
# round trip acknowledging 25 jobs (~4 KB) held the GIL ~20 us, and every
# processor waking from its job's sleep meanwhile queued behind it. 1 ms-sleep
# drain: 93.4-94.2% -> 94.1-95.1% of ideal.
GIL_SEND_MAX = 1024


def _gil_recv() -> Callable[[int, int, int, int], int] | None:
    """libc's recv(2) called with the GIL held (for polling; see the module doc)."""
    if _SEND is None:
        return None
    fn: Any = ctypes.PyDLL(None, use_errno=True).recv
    fn.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    fn.restype = ctypes.c_ssize_t
    return fn  # type: ignore[no-any-return]  # ctypes is untyped


_RECV_NB = _gil_recv()
# hiredis >= 3.2 returns RESP3 push messages as this type.
PUSH: type | None = getattr(hiredis, "PushNotification", None)


class NotSent(redispy.ConnectionError):
    """The command never reached Redis (connecting or writing failed): safe to resend."""


def register(cls: type) -> None:
    """Let connections of ``cls`` (a plain redis-py connection subclass) take the lean path."""
    _LEAN_TYPES.add(cls)


def supported(conn: Any) -> bool:
    """Whether ``conn`` may take the lean path (see the module doc)."""
    return type(conn) in _LEAN_TYPES and not conn.encoder.decode_responses


def reply_error(message: str) -> Exception:
    """redis-py's exception for an error reply (hiredis's replyError hook)."""
    err: Exception = BaseParser.parse_error(message)  # type: ignore[no-untyped-call]  # redis-py is untyped here
    if "user executing the script" in message:
        # Redis 7.0 reports a refusal inside a script as a plain error; name
        # the refused line as redis-py's path does (gokogeri.redis).
        from gokogeri.redis import explain_noperm  # error path; avoids a cycle

        err = redispy.exceptions.NoPermissionError(explain_noperm(message))
    return err


class Wire:
    """The lean path's state for one connection's current socket."""

    __slots__ = ("addr", "buf", "fd", "reader", "sock", "spin", "view")

    def __init__(self, conn: Any) -> None:
        sock: socket.socket = conn._sock
        self.sock = sock
        # A plain socket's descriptor for the GIL-holding send; -1: sendall.
        self.fd = sock.fileno() if type(sock) is socket.socket and _SEND is not None else -1
        self.buf = bytearray(_RECV)
        # The buffer's address for the polling recv; the ctypes view keeps the
        # bytearray exported, so it can never be resized (and moved).
        self.view = (ctypes.c_char * _RECV).from_buffer(self.buf)
        self.addr = ctypes.addressof(self.view)
        # > 0: poll for replies; each reply later than SPIN_US costs
        # _SPIN_MISS, each on time earns 1 back; <= 0 counts the cooldown up.
        self.spin = _SPIN_CREDIT
        self.reader = hiredis.Reader(
            protocolError=InvalidResponse,
            replyError=reply_error,
            errors=conn.encoder.encoding_errors,
        )
        timeout = conn.socket_timeout
        if type(sock) is socket.socket and timeout:
            # Kernel timeouts instead of Python's poll() before each call (see
            # the module doc); redis-py re-arms Python's timeout after its own
            # reads, so call() switches the socket back when it sees one.
            sec = int(timeout)
            tv = struct.pack("ll", sec, int((timeout - sec) * 1e6))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)
            sock.settimeout(None)


def _wire(conn: Any) -> Wire:
    """The connection's Wire, connecting first and re-made for a new socket."""
    if conn._sock is None:
        conn.connect()
    wire: Wire | None = getattr(conn, "_gokogeri_wire", None)
    if wire is None or wire.sock is not conn._sock:
        wire = conn._gokogeri_wire = Wire(conn)
    elif wire.sock.gettimeout() is not None and type(wire.sock) is socket.socket:
        wire.sock.settimeout(None)  # redis-py read on it since (see Wire)
    return wire


# Commands that tie a connection up or change its state: never on a connection
# shared or kept per thread (ThreadLocalRedis, ctx.aredis send them through
# their client's pool).
POOLED = frozenset(
    {
        "BLPOP", "BRPOP", "BRPOPLPUSH", "BLMOVE", "BLMPOP", "BZPOPMIN", "BZPOPMAX",
        "BZMPOP", "XREAD", "XREADGROUP", "WAIT", "WAITAOF", "WATCH", "UNWATCH",
        "MULTI", "EXEC", "DISCARD", "SELECT", "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE",
        "MONITOR", "CLIENT", "AUTH", "HELLO", "RESET", "QUIT",
    }
)  # fmt: skip


_POOLED_SEEN: dict[Any, bool] = {}  # command name as given -> pooled? (bounded)


def pooled(args: tuple[Any, ...]) -> bool:
    """Whether the command must go through a client's pool (see POOLED):
    its first word, in any case ("client kill" is CLIENT's)."""
    name = args[0]
    known = _POOLED_SEEN.get(name)
    if known is None:
        head = name.split(" ", 1)[0].upper() if isinstance(name, str) else name
        if isinstance(head, bytes):
            head = head.split(b" ", 1)[0].upper().decode(errors="replace")
        known = head in POOLED
        if len(_POOLED_SEEN) < 1024:  # names come from code, but bound it anyway
            _POOLED_SEEN[name] = known
    return known


def finish_reply(client: Any, args: tuple[Any, ...], options: dict[str, Any], reply: Any) -> Any:
    """A reply as redis-py's parse_response leaves it, without its per-call
    layers: error replies raised, EMPTY_RESPONSE honoured, callbacks applied."""
    options.pop("keys", None)
    options.pop(NEVER_DECODE, None)  # replies are bytes already
    if isinstance(reply, Exception):
        if EMPTY_RESPONSE in options and isinstance(reply, redispy.ResponseError):
            return options[EMPTY_RESPONSE]
        raise reply
    options.pop(EMPTY_RESPONSE, None)
    callback = client.response_callbacks.get(args[0])
    return callback(reply, **options) if callback is not None else reply


def execute(client: Any, conn: Any, args: tuple[Any, ...], options: dict[str, Any]) -> Any:
    """One command of ``client``'s over ``conn``, its reply as redis-py would return it."""
    return finish_reply(client, args, options, call(conn, pack(args, conn), 1)[0])


def pack(args: tuple[Any, ...], conn: Any) -> bytes:
    """One command in RESP, encoded as redis-py would."""
    first = args[0]
    if isinstance(first, str) and " " in first:  # "CONFIG GET": two words, as redis-py sends it
        args = (*first.split(), *args[1:])
    try:
        packed: bytes = hiredis.pack_command(args)
    except Exception:
        # Something hiredis does not take (bool, None, ...): redis-py's
        # encoder raises its own DataError, or encodes what it accepts.
        packed = b"".join(conn.pack_command(*args))
    return packed


def pack_many(commands: tuple[tuple[Any, ...], ...], conn: Any) -> bytes:
    """Several commands in RESP, for one send."""
    if len(commands) == 1:
        return pack(commands[0], conn)
    return b"".join([pack(c, conn) for c in commands])


def _poll(wire: Wire) -> int:
    """Poll for the reply for up to SPIN_US; bytes read into wire.buf, or 0
    (nothing yet, or an error that the blocking recv will raise)."""
    if wire.spin <= 0:
        wire.spin += 1
        if wire.spin == 0:
            wire.spin = _SPIN_MISS  # probe again
        return 0
    recv = _RECV_NB
    assert recv is not None  # wire.fd >= 0
    deadline = time.perf_counter() + SPIN_US / 1e6
    fd, addr, flags = wire.fd, wire.addr, _SEND_FLAGS
    while True:
        n = recv(fd, addr, _RECV, flags)
        if n > 0:
            if wire.spin < _SPIN_CREDIT:
                wire.spin += 1
            return n
        if n == 0 or ctypes.get_errno() not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR):
            return 0  # closed or failed: recv_into raises it properly
        if time.perf_counter() > deadline:
            wire.spin -= _SPIN_MISS
            if wire.spin <= 0:
                wire.spin = -_SPIN_COOLDOWN
            return 0


def call(conn: Any, packed: bytes, replies: int) -> list[Any]:
    """Send ``packed`` (``replies`` commands) and read their replies.

    Error replies are returned as exception instances, in place, so the
    caller reads every reply and the connection stays in step (most are
    ResponseErrors; LOADING and NOAUTH are redis-py ConnectionErrors). An I/O error
    disconnects and raises NotSent (safe to resend) or redis-py's
    ConnectionError/TimeoutError (the commands may have run: never resend).
    """
    try:
        if conn.health_check_interval and time.monotonic() > conn.next_health_check:
            conn.check_health()  # redis-py's PING after a long idle (reconnects if stale)
        wire: Wire | None = getattr(conn, "_gokogeri_wire", None)
        sock = conn._sock
        if wire is None or wire.sock is not sock or sock.gettimeout() is not None:
            wire = _wire(conn)
            sock = wire.sock
    except (OSError, redispy.ConnectionError, redispy.TimeoutError) as e:
        conn.disconnect()
        raise NotSent(str(e)) from e
    sent = 0
    try:
        if wire.fd >= 0 and len(packed) <= GIL_SEND_MAX:
            sent = _SEND(wire.fd, packed, len(packed), _SEND_FLAGS)  # type: ignore[misc]  # fd >= 0: set
        if sent != len(packed):
            sent = max(sent, 0)
            sock.sendall(packed[sent:] if sent else packed)
    except OSError as e:
        conn.disconnect()
        text = f"Error while writing to socket: {e}"
        # Part of a command reaching Redis runs nothing; part of several may.
        raise (redispy.ConnectionError(text) if sent else NotSent(text)) from e
    reader = wire.reader
    buf = wire.buf
    out: list[Any] = []
    try:
        n = _poll(wire) if wire.fd >= 0 and threading.active_count() == 1 else 0
        while True:
            # Nothing of ours is buffered before the first recv (a push may be).
            if not n:
                n = sock.recv_into(buf)
            if not n:
                raise redispy.ConnectionError("Connection closed by server.")
            reader.feed(buf, 0, n)  # type: ignore[arg-type]  # hiredis takes any buffer
            n = 0
            reply = reader.gets()
            while reply is not False:
                if PUSH is None or not isinstance(reply, PUSH):  # a push is no reply
                    out.append(reply)
                    if len(out) == replies:
                        if conn.health_check_interval:
                            conn.next_health_check = time.monotonic() + conn.health_check_interval
                        return out
                reply = reader.gets()
    except (TimeoutError, BlockingIOError) as e:  # Python's timeout / the kernel's
        conn.disconnect()
        raise redispy.TimeoutError("Timeout reading from socket") from e
    except OSError as e:
        conn.disconnect()
        raise redispy.ConnectionError(f"Error while reading from socket: {e}") from e
    except BaseException:
        conn.disconnect()  # protocol error, or interrupted mid-reply: out of step
        raise
