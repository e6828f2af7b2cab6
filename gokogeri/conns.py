"""Redis clients for jobs: ``ctx.redis`` (per processor thread) and ``ctx.aredis``
(per pool event loop).

A job that talks to Redis through a shared redis-py client pays for the pool
(a lock and a checkout per command), the retry wrapper and redis-py 8's
per-command metrics hooks: about 40 us of CPU per INCR here, while the GIL is
held, which is what caps an I/O-bound drain. Each processor thread owns one
connection, so ``ctx.redis`` skips all of it: a command is packed, sent and
its reply read (about 17 us of CPU). It is the ordinary redis-py API
(``ctx.redis.incr("k")``), bytes in and out, on the node's Redis with no
namespace prefix (jobs' own keys are theirs).

A connection error is raised to the job (which fails and retries by Sidekiq's
rules) and the next command reconnects; a command is never sent twice, so a
non-idempotent command cannot run twice behind the job's back.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import redis as redispy
import redis.asyncio as aredispy

from gokogeri.redis import ConnManager


class FastRedis(redispy.Redis):
    """redis-py's client API over one connection owned by one thread."""

    def execute_command(self, *args: Any, **options: Any) -> Any:
        # redis-py leaves these untyped.
        conn: Any = self.connection
        if conn is None:  # pragma: no cover - built with single_connection_client
            base: Any = super()
            return base.execute_command(*args, **options)
        try:
            conn.send_command(*args)
            response = conn.read_response()
        except (redispy.ConnectionError, redispy.TimeoutError):
            conn.disconnect()
            raise
        callbacks: Any = self.response_callbacks
        callback = callbacks.get(args[0])
        return callback(response, **options) if callback is not None else response


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
        """The pool's asyncio client (use it only from async jobs, on the pool's loop)."""
        if self._aio is None:
            cfg = self._cm.config
            self._aio = aredispy.Redis.from_url(
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
