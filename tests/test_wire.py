"""gokogeri.wire: the lean command path of ConnManager.send and ctx.redis, on a real Redis."""

from __future__ import annotations

import functools
import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import redis as redispy

import gokogeri
from gokogeri import redis as gredis
from gokogeri import wire
from gokogeri.conns import JobClients
from tests.conftest import run_threads


@pytest.fixture
def fast(cm: gredis.ConnManager) -> Iterator[redispy.Redis]:
    clients = JobClients(cm)
    yield clients.sync()
    clients.close()


def test_fast_client_speaks_redis_py(fast: redispy.Redis, r: redispy.Redis) -> None:
    conn = fast.connection
    assert conn is not None
    assert fast.incr("w:n") == 1 and fast.incrby("w:n", 2) == 3
    assert wire.supported(conn), "the per-thread client takes the lean path"
    assert fast.hset("w:h", mapping={"a": "1", "b": "é"}) == 2
    assert fast.hgetall("w:h") == {b"a": b"1", b"b": "é".encode()}
    assert fast.set("w:s", 1.5) and fast.get("w:s") == b"1.5"
    assert fast.get("w:missing") is None
    assert fast.exists("w:n", "w:h") == 2
    # Two-word commands are split as redis-py splits them.
    assert "maxmemory" in fast.config_get("maxmemory")
    # Arguments hiredis refuses get redis-py's own error.
    with pytest.raises(redispy.DataError):
        fast.set("w:b", True)  # type: ignore[arg-type]  # the wrong type on purpose
    # A server error is raised and leaves the connection usable.
    with pytest.raises(redispy.ResponseError, match="WRONGTYPE"):
        fast.incr("w:h")
    assert fast.get("w:n") == b"3"
    assert r.get("w:n") == b"3"


def test_send_reads_every_reply_before_raising(cm: gredis.ConnManager, r: redispy.Redis) -> None:
    r.set("w:str", "x")
    with pytest.raises(redispy.ResponseError, match="WRONGTYPE"):
        cm.send(("LPUSH", "w:str", "a"), ("INCR", "w:count"))
    assert r.get("w:count") == b"1"  # the second command ran
    # The connection is still in step: the next reply is its own.
    assert cm.send(("GET", "w:count"), ("PING",)) == [b"1", b"PONG"]


def test_timeout_is_enforced_and_the_next_call_reconnects(
    redis_url: str, r: redispy.Redis
) -> None:
    cm = gredis.ConnManager(gredis.Config(url=redis_url, socket_timeout=0.3))
    try:
        assert cm.send(("PING",)) == [b"PONG"]
        r.client_pause(1000)  # Redis holds every client's commands for 1 s
        t0 = time.monotonic()
        with pytest.raises(redispy.TimeoutError):
            cm.send(("PING",))
        waited = time.monotonic() - t0
        assert 0.25 < waited < 0.9, waited  # the socket's timeout, not the pause's end
        r.client_unpause()
        assert cm.send(("PING",)) == [b"PONG"]
    finally:
        cm.close()


def test_a_python_timeout_set_by_redis_py_is_switched_back(
    cm: gredis.ConnManager, fast: redispy.Redis
) -> None:
    fast.ping()
    conn = fast.connection
    assert conn is not None
    sock = conn._sock  # the socket wire drives
    assert sock is not None
    assert sock.gettimeout() is None  # kernel timeouts (SO_RCVTIMEO) instead
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, 16) != bytes(16)
    sock.settimeout(2.0)  # as redis-py re-arms it after a read with its own timeout
    assert fast.ping() is True
    assert sock.gettimeout() is None


def test_a_killed_connection_raises_then_reconnects(
    fast: redispy.Redis, r: redispy.Redis
) -> None:
    r.client_kill_filter(_id=fast.client_id())
    with pytest.raises(redispy.ConnectionError):
        fast.incr("w:k")  # never resent: the command may have run
    assert fast.incr("w:k") >= 1


def test_resp3_push_messages_are_not_taken_for_replies(
    fast: redispy.Redis, r: redispy.Redis
) -> None:
    conn = fast.connection
    assert conn is not None
    if conn.protocol not in (3, "3"):
        pytest.skip("this redis-py speaks RESP2 by default")
    fast.execute_command("CLIENT", "TRACKING", "ON")
    r.set("w:tracked", "1")
    assert fast.get("w:tracked") == b"1"  # now tracked by this connection
    r.set("w:tracked", "2")  # Redis pushes an invalidation to it
    time.sleep(0.05)
    assert fast.get("w:other") is None  # the push is skipped, the reply is GET's
    assert fast.get("w:tracked") == b"2"


def test_polling_stops_on_a_connection_whose_replies_are_late(
    cm: gredis.ConnManager, r: redispy.Redis
) -> None:
    """A single-threaded caller polls for replies (see wire.SPIN_US); a Redis
    that answers later than that (remote, or paused here) puts it back to
    sleeping in recv, and the replies are the same either way."""
    assert cm.send(("SET", "w:late", "1")) == [b"OK"]
    conn = cm._idle[-1]  # the connection send() used and keeps
    state = conn._gokogeri_wire
    polling = threading.active_count() == 1
    for _ in range(2):
        r.client_pause(30)  # every reply now comes > 30 ms later
        assert cm.send(("GET", "w:late")) == [b"1"]
    if polling:  # (other tests' threads may still be winding down)
        assert state.spin < 0, "cooling down: not polling"
    assert cm.send(("GET", "w:late")) == [b"1"]


def test_thread_local_client_gives_each_thread_its_own_connection(
    redis_url: str, r: redispy.Redis
) -> None:
    client = gokogeri.ThreadLocalRedis.from_url(redis_url)
    ports: dict[str, int] = {}

    def work(name: str) -> None:
        for _ in range(100):
            client.incr("w:tl")
        own = client._own.conn  # the connection this thread's commands used
        ports[name] = own._sock.getsockname()[1]

    errors = run_threads([functools.partial(work, f"t{i}") for i in range(4)])
    assert not errors, errors
    assert r.get("w:tl") == b"400"
    assert len(set(ports.values())) == 4  # one connection per thread
    # redis-py's API on top: callbacks, errors, pipelines (pooled) all as usual.
    assert client.hset("w:tlh", mapping={"a": "1"}) == 1
    assert client.hgetall("w:tlh") == {b"a": b"1"}
    with pytest.raises(redispy.ResponseError, match="WRONGTYPE"):
        client.incr("w:tlh")
    with client.pipeline() as pipe:
        assert pipe.incr("w:tl").incr("w:tl").execute() == [401, 402]
    assert client.blpop(["w:empty"], timeout=0.1) is None  # blocking: a pooled connection
    pooled = client.connection_pool._available_connections
    assert pooled and all(c._sock.getsockname()[1] not in ports.values() for c in pooled)
    client.close()


def test_thread_local_client_in_a_forked_child_makes_its_own_connection(
    redis_url: str, r: redispy.Redis
) -> None:
    client = gokogeri.ThreadLocalRedis.from_url(redis_url)
    assert client.incr("w:fork") == 1
    parent_port = client._own.conn._sock.getsockname()[1]
    pid = os.fork()
    if pid == 0:  # the child: must not talk over the parent's socket
        code = 1
        try:
            ok = client.incr("w:fork") == 2
            code = 0 if ok and client._own.conn._sock.getsockname()[1] != parent_port else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert client.incr("w:fork") == 3  # the parent's connection is still in step
    client.close()


def test_thread_local_connections_do_not_count_against_the_pool(
    redis_url: str, r: redispy.Redis
) -> None:
    """A pool capped at 2 connections still serves 6 threads' plain commands
    (their own connections), and its own 2 for pipelines."""
    client = gokogeri.ThreadLocalRedis.from_url(redis_url, max_connections=2)

    def work() -> None:
        for _ in range(10):
            client.incr("w:cap")

    errors: list[BaseException] = []
    for _ in range(3):  # threads come and go
        errors += run_threads([work, work])
    assert not errors, errors
    assert r.get("w:cap") == b"60"
    with client.pipeline() as pipe:
        assert pipe.get("w:cap").execute() == [b"60"]
    client.close()
