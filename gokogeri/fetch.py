"""Getting jobs out of Redis: the Fetcher protocol, and Sidekiq's BRPOP fetch.

BasicFetch is Sidekiq OSS's BasicFetch: each processor thread BRPOPs its
queues with a 2 s server timeout. A job popped by a process that then dies is
lost (at most once), exactly as with Sidekiq.

ReliableFetch (reliable.py, the default) never holds a job only in memory:
jobs move atomically (LMOVE) into per-node working lists and leave them only
when acknowledged, settled or pushed back; rescue.py recovers the lists of
dead nodes. Its parts: the dispatcher (reliable.py), prefetch sizing
(prefetch.py), idle waiters (waiters.py) and start markers (started.py).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterable
from typing import Any, Protocol, cast

import redis as redispy

from gokogeri import scripts
from gokogeri.conns import FastRedis
from gokogeri.queues import QueueSet
from gokogeri.redis import ConnManager
from gokogeri.retry import Outcome, RetryPolicy

# Pause after a Redis error before trying again (Sidekiq's fetch sleeps 1 s).
ERROR_PAUSE = 1.0


class UnitOfWork:
    """One fetched job: its queue, its exact bytes, and where it is held."""

    __slots__ = ("abandoned", "jid", "pair", "payload", "queue")

    def __init__(self, queue: str, payload: bytes, pair: int) -> None:
        self.queue = queue
        self.payload = payload
        self.pair = pair  # 1-based index of (queue key, working key); 0 = none
        # Set when shutdown pushed the job back while it still ran: whatever
        # the worker does after that must not be written anywhere.
        self.abandoned = False
        self.jid: str | None = None  # once decoded (start markers name the job by it)


class Fetcher(Protocol):
    """What a pool needs from a fetch strategy. Called from processor threads
    (retrieve, starting, observe, acknowledge, settle) and from the node
    (start, quiet, requeue, close); every method is thread-safe."""

    def start(self) -> None:
        """Begin fetching (start helper threads, register working lists)."""

    def retrieve(self, timeout: float) -> UnitOfWork | None:
        """The next job for a processor, or None after ``timeout`` seconds or once quiet."""

    def ready(self) -> UnitOfWork | None:
        """A job already fetched and waiting, if any; never blocks (None when
        the fetcher holds no jobs of its own, as BRPOP's does not)."""

    def starting(self, tid: str, uow: UnitOfWork) -> None:
        """Called right before the job runs on processor ``tid``; never raises."""

    def observe(self, seconds: float) -> None:
        """How long a job ran (sizes the prefetch)."""

    def acknowledge(self, uow: UnitOfWork) -> None:
        """The job succeeded: forget it (may be batched, never lost)."""

    def settle(self, uow: UnitOfWork, outcome: Outcome, policy: RetryPolicy) -> bool:
        """The job failed: write its retry/dead outcome and forget it, atomically.
        Raises redis errors; False if the job was no longer held (requeued)."""

    def requeue(self, uows: Iterable[UnitOfWork]) -> None:
        """Push jobs back to the front of their queues (shutdown, quiet)."""

    def quiet(self) -> None:
        """Stop fetching; give back prefetched jobs."""

    def close(self) -> None:
        """After the processors are done: flush acknowledgements, stop threads."""


class Unblocker:
    """Tracks connections blocked in BLMOVE/BRPOP so quiet can release them at once."""

    def __init__(self, cm: ConnManager) -> None:
        self._cm = cm
        self._ids: dict[int, int] = {}  # thread ident -> Redis client id
        self._lock = threading.Lock()

    def blocking(self, client_id: int) -> None:
        with self._lock:
            self._ids[threading.get_ident()] = client_id

    def done(self) -> None:
        with self._lock:
            self._ids.pop(threading.get_ident(), None)

    def release(self, except_current: bool = False) -> None:
        me = threading.get_ident()
        with self._lock:
            ids = [cid for tid, cid in self._ids.items() if not (except_current and tid == me)]
        for cid in ids:
            with contextlib.suppress(redispy.RedisError):
                self._cm.client.client_unblock(cid)


def dead_trim_args(policy: RetryPolicy, now: float) -> list[Any]:
    """The arguments of every script that adds to the dead set and trims it as
    Sidekiq's DeadSet#kill does: cutoff score, then the size limit."""
    return [repr(now - policy.dead_timeout), policy.dead_max_jobs]


def settle_args(
    uow: UnitOfWork, outcome: Outcome, policy: RetryPolicy, from_working: bool
) -> list[Any]:
    """settle.lua's ARGV."""
    return [
        uow.payload,
        outcome.action,
        repr(outcome.score),
        outcome.payload or "",
        *dead_trim_args(policy, outcome.score),
        "1" if from_working else "0",
    ]


class BasicFetch:
    """Sidekiq's BasicFetch: BRPOP in each processor thread, no prefetch."""

    def __init__(self, cm: ConnManager, queue_set: QueueSet, logger: logging.Logger) -> None:
        self._cm = cm
        self._qs = queue_set
        self._log = logger
        keys = cm.keys
        self._key_to_queue = {keys.queue(q).encode(): q for q in queue_set.names()}
        self._local = threading.local()
        self._clients: list[redispy.Redis] = []  # one per processor thread, closed at close()
        self._clients_lock = threading.Lock()
        self._quiet = threading.Event()
        self._unblocker = Unblocker(cm)
        self._placeholder = keys.prefix + "gokogeri:none"

    def start(self) -> None:
        # Loaded here, not in __init__: building a node must not need Redis.
        self._settle = scripts.load(self._cm.client, "settle.lua")

    def _conn(self) -> tuple[redispy.Redis, int]:
        conn: tuple[redispy.Redis, int] | None = getattr(self._local, "conn", None)
        if conn is None:
            # One connection per processor thread, through gokogeri.wire: with
            # redis-py's own per-command path ten threads' BRPOPs convoyed on
            # the GIL (7,300 no-op jobs/s; see wire.py).
            client: redispy.Redis = FastRedis(
                connection_pool=self._cm.dedicated().connection_pool, single_connection_client=True
            )
            with self._clients_lock:
                self._clients.append(client)
            conn = (client, int(client.client_id()))
            self._local.conn = conn
        return conn

    def ready(self) -> UnitOfWork | None:
        return None  # each job is a BRPOP of its own

    def retrieve(self, timeout: float) -> UnitOfWork | None:
        if self._quiet.is_set():
            return None
        keys = [self._cm.keys.queue(q) for q in self._qs.get_queues()]
        try:
            client, cid = self._conn()
            self._unblocker.blocking(cid)
            try:
                reply = client.brpop(keys, timeout=self._cm.config.long_poll_timeout)
            finally:
                self._unblocker.done()
        except redispy.RedisError as e:
            self._local.conn = None
            self._log.warning("fetch failed, retrying in %ss: %s", ERROR_PAUSE, e)
            time.sleep(ERROR_PAUSE)
            return None
        if reply is None:
            return None
        key, payload = cast(tuple[bytes, bytes], reply)
        uow = UnitOfWork(self._key_to_queue[key], payload, 0)
        if self._quiet.is_set():
            # Popped after quiet began: Sidekiq's UnitOfWork#requeue.
            self.requeue([uow])
            return None
        return uow

    def starting(self, tid: str, uow: UnitOfWork) -> None:
        pass  # nothing to rescue: a popped job lives only in this process

    def observe(self, seconds: float) -> None:
        pass  # no prefetch to size

    def acknowledge(self, uow: UnitOfWork) -> None:
        pass  # BRPOP already removed it

    def settle(self, uow: UnitOfWork, outcome: Outcome, policy: RetryPolicy) -> bool:
        if outcome.action == "drop":
            return True
        zset = self._cm.keys.retry if outcome.action == "retry" else self._cm.keys.dead
        args = settle_args(uow, outcome, policy, from_working=False)
        return bool(self._settle(keys=[self._placeholder, zset], args=args))

    def requeue(self, uows: Iterable[UnitOfWork]) -> None:
        pipe = self._cm.client.pipeline(transaction=False)
        for uow in uows:
            uow.abandoned = True
            pipe.rpush(self._cm.keys.queue(uow.queue), uow.payload)
        pipe.execute()

    def quiet(self) -> None:
        self._quiet.set()
        self._unblocker.release()

    def close(self) -> None:
        self.quiet()
        with self._clients_lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.close()
