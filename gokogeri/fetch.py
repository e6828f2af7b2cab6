"""Getting jobs out of Redis: Sidekiq's BRPOP fetch and gokogeri's crash-safe fetch.

BasicFetch is Sidekiq OSS's BasicFetch: each processor thread BRPOPs its
queues with a 2 s server timeout. A job popped by a process that then dies is
lost (at most once), exactly as with Sidekiq.

ReliableFetch (the default) never holds a job only in memory. Jobs move
atomically (LMOVE) from ``queue:Q`` into this node's working list for Q and
leave it only when they are acknowledged, settled into retry/dead, or pushed
back. If the node dies, a live node finds the working list (rescue.py) and
pushes the jobs back to the front of their queues.

Round trips: one dispatcher thread per pool runs fetch.lua, which both
acknowledges every job finished since its last call and moves up to a batch
of new jobs, so a job costs a share of one round trip to fetch and to
acknowledge. How many jobs it holds beyond the running ones adapts to the
average job time (PREFETCH_WINDOW): hundreds of no-op jobs, none extra for
jobs that take seconds, so a node never hoards work other nodes could run.
Strict queue order is broken by at most one batch.

When the queues are empty, waiter threads block in BLMOVE, one per queue
(Redis has no multi-key blocking LMOVE before 7.0's BLMPOP, which is not
crash-safe), so a new job starts within a round trip instead of a poll
interval. When one waiter gets a job, the others are released with CLIENT
UNBLOCK, which Redis answers like a timeout: nothing can be popped and lost.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Iterable
from typing import Any, Protocol, cast

import redis as redispy

from gokogeri import scripts
from gokogeri.queues import QueueSet
from gokogeri.redis import ConnManager
from gokogeri.retry import Outcome, RetryPolicy

# Most jobs moved by one fetch round trip; keeps one Lua call short so Redis
# stays responsive to other clients.
MAX_BATCH = 100
# Prefetch sizing: hold about this much work beyond the running jobs, judged by
# the average job time, so short jobs are fetched in big batches and long jobs
# one per free thread (a node never sits on slow jobs other nodes could run).
PREFETCH_WINDOW = 0.005  # seconds of work per thread
MAX_PREFETCH = 200
# Pause after a Redis error before trying again (Sidekiq's fetch sleeps 1 s).
ERROR_PAUSE = 1.0


class UnitOfWork:
    """One fetched job: its queue, its exact bytes, and where it is held."""

    __slots__ = ("abandoned", "pair", "payload", "queue")

    def __init__(self, queue: str, payload: bytes, pair: int) -> None:
        self.queue = queue
        self.payload = payload
        self.pair = pair  # 1-based index of (queue key, working key); 0 = none
        # Set when shutdown pushed the job back while it still ran: whatever
        # the worker does after that must not be written anywhere.
        self.abandoned = False


class Fetcher(Protocol):
    def start(self) -> None: ...
    def retrieve(self, timeout: float) -> UnitOfWork | None: ...
    def observe(self, seconds: float) -> None: ...
    def acknowledge(self, uow: UnitOfWork) -> None: ...
    def settle(self, uow: UnitOfWork, outcome: Outcome, policy: RetryPolicy) -> bool: ...
    def requeue(self, uows: Iterable[UnitOfWork]) -> None: ...
    def quiet(self) -> None: ...
    def close(self) -> None: ...


class _Unblocker:
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


def _settle_args(
    uow: UnitOfWork, outcome: Outcome, policy: RetryPolicy, from_working: bool
) -> list[Any]:
    return [
        uow.payload,
        outcome.action,
        repr(outcome.score),
        outcome.payload or "",
        repr(outcome.score - policy.dead_timeout),
        policy.dead_max_jobs,
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
        self._unblocker = _Unblocker(cm)
        self._settle = scripts.load(cm.client, "settle.lua")
        self._placeholder = keys.prefix + "gokogeri:none"

    def start(self) -> None:
        pass

    def _conn(self) -> tuple[redispy.Redis, int]:
        conn: tuple[redispy.Redis, int] | None = getattr(self._local, "conn", None)
        if conn is None:
            client = self._cm.dedicated()
            with self._clients_lock:
                self._clients.append(client)
            conn = (client, int(client.client_id()))
            self._local.conn = conn
        return conn

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

    def observe(self, seconds: float) -> None:
        pass  # no prefetch to size

    def acknowledge(self, uow: UnitOfWork) -> None:
        pass  # BRPOP already removed it

    def settle(self, uow: UnitOfWork, outcome: Outcome, policy: RetryPolicy) -> bool:
        if outcome.action == "drop":
            return True
        zset = self._cm.keys.retry if outcome.action == "retry" else self._cm.keys.dead
        args = _settle_args(uow, outcome, policy, from_working=False)
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


class ReliableFetch:
    """Crash-safe, batched fetch into per-node working lists (see the module doc)."""

    def __init__(
        self,
        cm: ConnManager,
        identity: str,
        queue_set: QueueSet,
        instances: int,
        logger: logging.Logger,
        name: str,
        prefetch: int | None = None,
    ) -> None:
        self._cm = cm
        self._fixed_prefetch = prefetch
        self._qs = queue_set
        self._log = logger
        self._name = name
        self._instances = instances
        self.queues = queue_set.names()
        keys = cm.keys
        self._pair_of = {q: i + 1 for i, q in enumerate(self.queues)}
        self._strict = queue_set.mode() == "strict"
        self.working_keys = [keys.working(identity, q) for q in self.queues]
        self._keys_flat: list[str] = []
        for q, w in zip(self.queues, self.working_keys, strict=True):
            self._keys_flat += [keys.queue(q), w]
        self._identity = identity
        client = cm.client
        self._fetch = scripts.load(client, "fetch.lua")
        self._requeue_script = scripts.load(client, "requeue.lua")
        self._settle = scripts.load(client, "settle.lua")

        # The local buffer of fetched, not yet started jobs.
        self._buf: deque[UnitOfWork] = deque()
        self._buf_cv = threading.Condition(threading.Lock())
        self._taken = 0  # jobs handed to processors (under _buf_cv)
        # Dispatcher state (under _cv).
        self._cv = threading.Condition(threading.Lock())
        self._acks: list[UnitOfWork] = []
        self._done = 0  # jobs acknowledged, settled or requeued
        self._waiting = False
        self._idle = False
        self._quiet = False
        self._closing = False
        self._idle_event = threading.Event()
        self._unblocker = _Unblocker(cm)
        self._threads: list[threading.Thread] = []
        # Average job time (an EWMA written by processors without a lock: a
        # lost update only nudges the prefetch size). None until measured.
        self._job_time: float | None = None
        self._low_water = instances

    # --- lifecycle ---

    def start(self) -> None:
        registry = {
            w: json.dumps({"identity": self._identity, "queue": q})
            for q, w in zip(self.queues, self.working_keys, strict=True)
        }
        self._cm.client.hset(self._cm.keys.working_registry, mapping=cast(Any, registry))
        t = threading.Thread(target=self._dispatch_loop, name=f"{self._name}-fetch", daemon=True)
        self._threads.append(t)
        for q in self.queues:
            w = threading.Thread(
                target=self._wait_loop, args=(q,), name=f"{self._name}-wait-{q}", daemon=True
            )
            self._threads.append(w)
        for th in self._threads:
            th.start()

    def quiet(self) -> None:
        """Stop fetching and push every prefetched job back to its queue."""
        with self._cv:
            if self._quiet:
                return
            self._quiet = True
            self._idle = False
            self._cv.notify_all()
        self._idle_event.set()  # wake idle waiters so they see quiet and exit
        self._unblocker.release()
        with self._buf_cv:
            pending = list(self._buf)
            self._buf.clear()
            self._buf_cv.notify_all()
        if pending:
            self.requeue(pending)

    def close(self, timeout: float = 5.0) -> None:
        """After the processors are done: flush acknowledgements and stop threads."""
        self.quiet()
        with self._cv:
            self._closing = True
            self._cv.notify_all()
        deadline = time.monotonic() + timeout
        for th in self._threads:
            th.join(max(0.0, deadline - time.monotonic()))
        with self._cv:
            acks, self._acks = self._acks, []
        if acks:
            self._round_trip(0, acks)
        self._unregister()

    def _unregister(self) -> None:
        """Forget our working lists, unless something is still in them: then the
        registry entry stays, and a live node rescues them once our heartbeat
        is gone."""
        client = self._cm.client
        try:
            pipe = client.pipeline(transaction=False)
            for w in self.working_keys:
                pipe.llen(w)
            lengths = pipe.execute()
            empty = [w for w, n in zip(self.working_keys, lengths, strict=True) if n == 0]
            if empty:
                client.hdel(self._cm.keys.working_registry, *empty)
        except redispy.RedisError as e:
            self._log.warning("could not unregister working lists: %s", e)

    # --- processor side ---

    def retrieve(self, timeout: float) -> UnitOfWork | None:
        buf = self._buf
        with self._buf_cv:
            if not buf:
                if self._quiet:
                    return None
                self._buf_cv.wait(timeout)
                if not buf:
                    return None
            uow = buf.popleft()
            self._taken += 1
            low = len(buf) < self._low_water
        if low and self._waiting:
            with self._cv:
                self._cv.notify()
        return uow

    def observe(self, seconds: float) -> None:
        avg = self._job_time
        self._job_time = seconds if avg is None else avg * 0.95 + seconds * 0.05

    def acknowledge(self, uow: UnitOfWork) -> None:
        with self._cv:
            self._acks.append(uow)
            self._done += 1
            if self._waiting:
                self._cv.notify()

    def settle(self, uow: UnitOfWork, outcome: Outcome, policy: RetryPolicy) -> bool:
        """Acknowledge a failed job and record its retry/dead outcome atomically."""
        keys = self._cm.keys
        zset = keys.dead if outcome.action == "dead" else keys.retry
        args = _settle_args(uow, outcome, policy, from_working=True)
        try:
            return bool(self._settle(keys=[self.working_keys[uow.pair - 1], zset], args=args))
        finally:
            with self._cv:
                self._done += 1
                if self._waiting:
                    self._cv.notify()

    def requeue(self, uows: Iterable[UnitOfWork]) -> None:
        """Push jobs back to the front of their queues, oldest fetched first."""
        items = list(uows)
        if not items:
            return
        args: list[Any] = []
        for uow in reversed(items):  # newest first: the oldest ends up rightmost
            uow.abandoned = True
            args += [uow.pair, uow.payload]
        self._requeue_script(keys=self._keys_flat, args=args)

    # --- dispatcher ---

    def _prefetch(self) -> int:
        """How many jobs to hold beyond the running ones."""
        if self._fixed_prefetch is not None:
            return self._fixed_prefetch
        avg = self._job_time
        if avg is None:
            return self._instances
        per_thread = PREFETCH_WINDOW / max(avg, 1e-6)
        return min(int(self._instances * per_thread), MAX_PREFETCH)

    def _want(self) -> int:
        """How many jobs the next round trip should fetch (0 = none)."""
        if self._quiet or self._idle:
            return 0
        extra = self._prefetch()
        self._low_water = max(1, extra // 2)
        buffered = len(self._buf)
        if buffered >= self._low_water:
            return 0
        in_flight = buffered + (self._taken - self._done)
        return max(0, min(self._instances + extra - in_flight, MAX_BATCH))

    def _dispatch_loop(self) -> None:
        while True:
            with self._cv:
                while True:
                    if self._closing:
                        return
                    want = self._want()
                    if self._acks or want:
                        acks, self._acks = self._acks, []
                        break
                    self._waiting = True
                    self._cv.wait(1.0)
                    self._waiting = False
            try:
                got = self._round_trip(want, acks)
            except redispy.RedisError as e:
                self._log.warning("fetch failed, retrying in %ss: %s", ERROR_PAUSE, e)
                with self._cv:
                    self._acks[:0] = acks  # acknowledge them next time
                time.sleep(ERROR_PAUSE)
                self._resync()
                continue
            if want and not got:
                with self._cv:
                    if not self._quiet:
                        self._idle = True
                        self._idle_event.set()

    def _round_trip(self, want: int, acks: list[UnitOfWork]) -> int:
        args: list[Any] = [want, len(acks)]
        for uow in acks:
            args += [uow.pair, uow.payload]
        if want:
            if self._strict:
                args += [len(self.queues), 1, *self._order()]
            else:
                # One shuffle per job slot: each fetched job is chosen by the
                # weights, exactly as if it had its own BRPOP.
                args += [len(self.queues), want]
                for _ in range(want):
                    args += self._order()
        reply = self._fetch(keys=self._keys_flat, args=args)
        if not reply:
            return 0
        queues = self.queues
        fetched = [
            UnitOfWork(queues[int(reply[i]) - 1], reply[i + 1], int(reply[i]))
            for i in range(0, len(reply), 2)
        ]
        self._deliver(fetched)
        return len(fetched)

    def _order(self) -> list[int]:
        """The queue set's next order as pair indexes, always len(queues) long
        (a custom QueueSet may leave queues out: the first one is repeated)."""
        order = [self._pair_of[q] for q in self._qs.get_queues()]
        if not order:
            raise ValueError(f"{self._qs!r}.get_queues() returned no queues")
        return order + [order[0]] * (len(self.queues) - len(order))

    def _deliver(self, fetched: list[UnitOfWork]) -> None:
        with self._buf_cv:
            if not self._quiet:
                self._buf.extend(fetched)
                self._buf_cv.notify(len(fetched))
                return
        self.requeue(fetched)  # fetched while quieting

    def _resync(self) -> None:
        """After a failed round trip we cannot know whether Redis moved jobs we
        never saw. Wait until every job we know of is finished, then push back
        whatever is still in our working lists: those are the unseen ones."""
        while not self._closing:
            with self._cv:
                idle = not self._buf and self._taken == self._done
                acks, self._acks = self._acks, []
            try:
                if acks:
                    self._round_trip(0, acks)
                if idle:
                    self._requeue_all()
                    return
            except redispy.RedisError as e:
                self._log.warning("Redis still failing: %s", e)
                with self._cv:
                    self._acks[:0] = acks
            time.sleep(ERROR_PAUSE)

    def _requeue_all(self) -> None:
        client = self._cm.client
        args: list[Any] = []
        for pair, w in enumerate(self.working_keys, start=1):
            for payload in client.lrange(w, 0, -1):
                args += [pair, payload]
        if args:
            n = self._requeue_script(keys=self._keys_flat, args=args)
            self._log.warning("pushed back %s jobs left in working lists after a Redis error", n)

    # --- idle waiters ---

    def _wait_loop(self, queue: str) -> None:
        pair = self._pair_of[queue]
        src, dst = self._keys_flat[2 * pair - 2], self._keys_flat[2 * pair - 1]
        client: redispy.Redis | None = None
        cid = 0
        timeout = self._cm.config.long_poll_timeout
        while True:
            self._idle_event.wait()
            if self._quiet:
                break
            try:
                if client is None:
                    client = self._cm.dedicated()
                    cid = int(client.client_id())
                self._unblocker.blocking(cid)
                try:
                    payload = cast(bytes | None, client.blmove(src, dst, timeout, "RIGHT", "LEFT"))  # type: ignore[arg-type]
                finally:
                    self._unblocker.done()
            except redispy.RedisError as e:
                self._log.warning("blocking fetch on %s failed: %s", queue, e)
                client = None
                time.sleep(ERROR_PAUSE)
                continue
            if payload is None:
                continue
            with self._cv:
                # Leave idle mode without waking the dispatcher: the processor's
                # retrieve() (or the next acknowledgement) does that once the
                # job has started, so the backlog fetch never delays it.
                self._idle = False
                self._idle_event.clear()
            self._deliver([UnitOfWork(queue, payload, pair)])
            self._unblocker.release(except_current=True)
        if client is not None:
            client.close()
