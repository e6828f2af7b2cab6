"""Redis clients for jobs: ``ctx.redis`` (per processor thread) and ``ctx.aredis``
(per pool event loop).

A job that talks to Redis through a shared redis-py client pays for the pool
(a lock and a checkout per command), the retry wrapper and redis-py 8's
per-command metrics hooks: about 40 us of CPU per INCR here, while the GIL is
held, which is what caps an I/O-bound drain. Each processor thread owns one
connection, so ``ctx.redis`` skips all of it: a command goes through
gokogeri.wire (hiredis packs it, one send, one recv; see there why that
matters with ten threads). It is the ordinary redis-py API
(``ctx.redis.incr("k")``), bytes in and out, on the node's Redis with no
namespace prefix (jobs' own keys are theirs).

A connection error is raised to the job (which fails and retries by Sidekiq's
rules) and the next command reconnects; a command is never sent twice, so a
non-idempotent command cannot run twice behind the job's back.

``ThreadLocalRedis`` is the same for code that keeps a module-level client
(``r = redis.Redis.from_url(url)`` at import time): a drop-in redis-py client
whose commands go, from each thread, over that thread's own connection. On the
bench's INCR drain a module-level redis-py client runs at 0.7x Sidekiq and
ctx.redis at over 2x, so swapping the class is the whole change.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any

import redis as redispy
import redis.asyncio as aredispy

from gokogeri import wire
from gokogeri.aiowire import AsyncFastRedis
from gokogeri.redis import ConnManager


class FastRedis(redispy.Redis):
    """redis-py's client API over one connection owned by one thread."""

    def execute_command(self, *args: Any, **options: Any) -> Any:
        # redis-py leaves these untyped.
        conn: Any = self.connection
        if conn is None or not wire.supported(conn):  # pragma: no cover - Sentinel, decode_responses
            base: Any = super()
            return base.execute_command(*args, **options)
        return wire.execute(self, conn, args, options)


# Forks so far in this process's ancestry: a thread-local connection made
# before a fork belongs to the parent (a counter, not os.getpid(): that is a
# system call on every command).
_forks = [0]


def _count_fork() -> None:
    _forks[0] += 1


os.register_at_fork(after_in_child=_count_fork)


class ThreadLocalRedis(redispy.Redis):
    """A redis-py client to share between threads, each thread with its own connection.

    ``gokogeri.ThreadLocalRedis.from_url(url)`` takes everything
    ``redis.Redis.from_url`` takes. Plain commands go over a connection the
    calling thread owns (made on its first command, closed when the thread
    ends; a forked child makes its own), through gokogeri.wire as ctx.redis
    does. Pipelines, pub/sub, transactions and blocking commands use the
    client's connection pool as usual, so a thread blocked in BLPOP holds a
    pooled connection, not its own. Each thread that sends commands keeps one
    connection open: size Redis's maxclients for your threads.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._own = threading.local()

    def _thread_conn(self) -> Any:
        own = self._own
        conn = getattr(own, "conn", None)
        if conn is None or own.forks != _forks[0]:
            pool: Any = self.connection_pool
            if getattr(pool, "cache", None) is not None:
                conn = None  # client-side caching wraps pooled connections: the pool's path
            else:
                # Made from the pool's settings but not counted by it: the
                # pool's max_connections bounds its own connections, and a
                # thread's connection goes when the thread does.
                conn = pool.connection_class(**pool.connection_kwargs)
            own.conn = conn
            own.forks = _forks[0]
        return conn

    def execute_command(self, *args: Any, **options: Any) -> Any:
        base: Any = super()
        if wire.pooled(args):
            return base.execute_command(*args, **options)
        conn = self._thread_conn()
        if conn is None or not wire.supported(conn):  # Sentinel, decode_responses, a cache
            return base.execute_command(*args, **options)
        return wire.execute(self, conn, args, options)


class JobClients:
    """Hands each processor thread its FastRedis, and a pool's loop its asyncio client."""

    def __init__(self, cm: ConnManager, async_pool_size: int = 10) -> None:
        self._cm = cm
        self._local = threading.local()
        self._all: list[redispy.Redis] = []
        self._lock = threading.Lock()
        self._aio: aredispy.Redis | None = None
        self._async_pool_size = async_pool_size

    def sync(self) -> redispy.Redis:
        client: redispy.Redis | None = getattr(self._local, "client", None)
        if client is None:
            pool = self._cm.dedicated().connection_pool
            client = FastRedis(connection_pool=pool, single_connection_client=True)
            self._local.client = client
            with self._lock:
                self._all.append(client)
        return client

    def aio(self) -> aredispy.Redis:
        """The pool's asyncio client (use it only from async jobs, on the pool's loop):
        plain commands multiplexed on one connection (aiowire.py)."""
        if self._aio is None:
            cfg = self._cm.config
            self._aio = AsyncFastRedis.from_url(
                cfg.url,
                max_connections=self._async_pool_size,
                socket_timeout=cfg.socket_timeout,
                socket_connect_timeout=cfg.connect_timeout,
            )
        return self._aio

    def close(self) -> None:
        with self._lock:
            clients, self._all = self._all, []
        for client in clients:
            with contextlib.suppress(Exception):
                client.close()
