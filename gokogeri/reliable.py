"""Crash-safe, batched fetch into per-node working lists (the default fetch).

Jobs move atomically (LMOVE) from ``queue:Q`` into this node's working list
for Q and leave it only when they are acknowledged, settled into retry/dead,
or pushed back. If the node dies, a live node finds the working list
(rescue.py) and pushes the jobs back to the front of their queues.

Round trips: one dispatcher thread per pool runs fetch.lua, which both
acknowledges every job finished since its last call and moves up to a batch
of new jobs, so a job costs a share of one round trip to fetch and to
acknowledge. How many it holds is prefetch.py's decision; when the queues are
empty, waiters.py's blocking waiters take over. Strict queue order is broken
by at most one batch. Before a job runs its processor records a start marker
(started.py), so rescue can tell running jobs from prefetched ones.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import redis as redispy

from gokogeri import scripts
from gokogeri.fetch import ERROR_PAUSE, UnitOfWork, settle_args
from gokogeri.prefetch import PrefetchSizer
from gokogeri.queues import QueueSet
from gokogeri.redis import ConnManager
from gokogeri.retry import Outcome, RetryPolicy
from gokogeri.started import MARK_TTL, StartMarks
from gokogeri.waiters import IdleWaiters

# How long the dispatcher sleeps when nothing wakes it (a safety net: every
# state change that matters notifies it).
DISPATCH_IDLE_WAIT = 1.0
# Acknowledgements and start markers alone wait this long for company: most
# then ride on a fetch round trip, instead of one round trip (and one thread
# wake-up) each. Delays only their write, never a job.
LAZY_FLUSH = 0.005
# ...unless this many are pending.
LAZY_MAX = 256
# While jobs run, the dispatcher waits this many LAZY_FLUSH periods for their
# acknowledgements on a timer, then sleeps until one wakes it (long jobs).
EXPECT_ROUNDS = 4


class ReliableFetch:
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
        self._qs = queue_set
        self._log = logger
        self._name = name
        self._identity = identity
        self.queues = queue_set.names()
        keys = cm.keys
        self._pair_of = {q: i + 1 for i, q in enumerate(self.queues)}
        self._strict = queue_set.mode() == "strict"
        self.working_keys = [keys.working(identity, q) for q in self.queues]
        self._keys_flat: list[str] = []
        for q, w in zip(self.queues, self.working_keys, strict=True):
            self._keys_flat += [keys.queue(q), w]
        self.sizer = PrefetchSizer(instances, prefetch)
        self.marks = StartMarks()
        self._started_key = keys.started(identity)
        # fetch.lua's keys: the (queue, working list) pairs, then the marker hash.
        self._fetch_keys = [*self._keys_flat, self._started_key]
        self.waiters = IdleWaiters(
            cm,
            logger,
            name,
            [
                (q, self._pair_of[q], keys.queue(q), w)
                for q, w in zip(self.queues, self.working_keys, strict=True)
            ],
            self._from_waiter,
            self._fatal,
        )

        # The local buffer of fetched, not yet started jobs.
        self._buf: deque[UnitOfWork] = deque()
        # Hot paths enter the plain locks (C-level with-blocks); Condition's
        # own __enter__/__exit__ are Python calls, paid twice per job.
        self._buf_lock = threading.Lock()
        self._buf_cv = threading.Condition(self._buf_lock)
        self._taken = 0  # jobs handed to processors (under _buf_lock)
        # Dispatcher state (under _lock).
        self._lock = threading.Lock()
        self._cv = threading.Condition(self._lock)
        self._acks: list[UnitOfWork] = []
        self._done = 0  # jobs acknowledged, settled or requeued
        self._waiting = False  # the dispatcher sleeps: wake it for work
        self._batching = False  # ...but only to fetch: acks and markers wait for LAZY_FLUSH
        self._quiet = False
        self._closing = False
        self._thread: threading.Thread | None = None
        # Told about a fault in gokogeri itself (the pool sets it): the node stops.
        self.on_fatal: Callable[[BaseException], None] | None = None
        # Sentinel failovers this ConnManager has followed: after one, what the
        # new master holds in our working lists may differ from what we know.
        self._failovers = cm.failovers

    # --- lifecycle ---

    def start(self) -> None:
        # Loaded here, not in __init__: building a node must not need Redis.
        client = self._cm.client
        self._fetch = scripts.load(client, "fetch.lua")
        # The hot path calls EVALSHA through cm.send: redis-py's Script call
        # (retry wrapper, pid check, per-command metrics) cost more GIL time
        # than packing the payloads it acknowledges.
        self._fetch_sha = self._fetch.sha
        self._requeue_script = scripts.load(client, "requeue.lua")
        self._settle = scripts.load(client, "settle.lua")
        self._register = scripts.load(client, "register.lua")
        args: list[str] = []
        for q, w in zip(self.queues, self.working_keys, strict=True):
            args += [w, json.dumps({"identity": self._identity, "queue": q})]
        # Registered before the first fetch (a script: it must work on a full Redis).
        self._register(keys=[self._cm.keys.working_registry], args=args)
        self._thread = threading.Thread(
            target=self._dispatch_loop, name=f"{self._name}-fetch", daemon=True
        )
        self._thread.start()
        self.waiters.start()

    def quiet(self) -> None:
        """Stop fetching and push every prefetched job back to its queue."""
        with self._lock:
            if self._quiet:
                return
            self._quiet = True
            self._cv.notify_all()
        self.waiters.stop()
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
        for th in [self._thread, *self.waiters.threads]:
            if th is not None:
                th.join(max(0.0, deadline - time.monotonic()))
        with self._cv:
            acks, self._acks = self._acks, []
        try:
            if acks:
                self._round_trip(0, acks)
            # Every processor is done and every acknowledgement written: what is
            # left was never finished (a settle that Redis refused, a processor
            # that died of an internal fault). Push it back now rather than
            # leave it for a rescuer.
            self._requeue_all()
        except redispy.RedisError as e:
            self._log.warning("could not flush the working lists at stop (rescue will): %s", e)
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
            if len(empty) == len(self.working_keys):
                client.delete(self._started_key)
        except redispy.RedisError as e:
            self._log.warning("could not unregister working lists: %s", e)

    # --- processor side ---

    def ready(self) -> UnitOfWork | None:
        if not self._buf:  # unlocked peek: a job arriving right now is taken next time
            return None
        return self.retrieve(None)

    def retrieve(self, timeout: float | None) -> UnitOfWork | None:
        """The next buffered job, waiting up to ``timeout`` for one (None: not
        at all, and nothing once quiet); wakes the dispatcher when the buffer
        runs low. (Called once per job: no wrapper around it.)"""
        buf = self._buf
        with self._buf_lock:
            if not buf and timeout is not None and not self._quiet:
                self._buf_cv.wait(timeout)
            if not buf or (timeout is None and self._quiet):
                return None
            uow = buf.popleft()
            self._taken += 1
            low = len(buf) < self.sizer.low_water
        if low and self._waiting:
            with self._lock:
                self._cv.notify()
        return uow

    def starting(self, tid: str, uow: UnitOfWork) -> None:
        self.marks.mark(tid, uow.payload, uow.jid)
        if self._waiting and not self._batching:  # an idle dispatcher writes it soon
            with self._lock:
                self._cv.notify()

    def observe(self, seconds: float) -> None:
        self.sizer.observe(seconds)

    def acknowledge(self, uow: UnitOfWork) -> None:
        with self._lock:
            self._acks.append(uow)
            self._done += 1
            if self._waiting and not self._batching:
                self._cv.notify()

    def settle(self, uow: UnitOfWork, outcome: Outcome, policy: RetryPolicy) -> bool:
        """Acknowledge a failed job and record its retry/dead outcome atomically."""
        keys = self._cm.keys
        zset = keys.retry if outcome.action == "retry" else keys.dead
        args = settle_args(uow, outcome, policy, from_working=True)
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

    def _want(self) -> int:
        """How many jobs the next round trip should fetch (0 = none)."""
        if self._quiet or self.waiters.idle:
            return 0
        buffered = len(self._buf)
        return self.sizer.want(buffered, buffered + (self._taken - self._done))

    def _fatal(self, e: BaseException) -> None:
        self._log.critical("%s: internal error in the fetcher", self._name, exc_info=e)
        if self.on_fatal is not None:
            self.on_fatal(e)

    def _dispatch_loop(self) -> None:
        try:
            self._dispatch()
        except BaseException as e:
            self._fatal(e)

    def _dispatch(self) -> None:
        while True:
            with self._lock:
                flush_at = 0.0
                expecting = 0
                while True:
                    if self._closing:
                        return
                    want = self._want()
                    pending = len(self._acks) + len(self.marks)
                    if want or pending >= LAZY_MAX:
                        break
                    now = time.monotonic()
                    if pending:
                        if not flush_at:
                            flush_at = now + LAZY_FLUSH
                        if now >= flush_at or (self._taken == self._done and not self._buf):
                            break  # due, or nothing left running that could join them
                    elif self._taken > self._done and expecting < EXPECT_ROUNDS:
                        # Jobs are running, so acknowledgements are coming:
                        # wait for them on a timer. Woken by the first one
                        # instead, the dispatcher would wake twice per flush.
                        expecting += 1
                        flush_at = now + LAZY_FLUSH
                    else:
                        self._waiting = True
                        self._cv.wait(DISPATCH_IDLE_WAIT)
                        self._waiting = False
                        continue
                    self._waiting = self._batching = True
                    self._cv.wait(flush_at - now)
                    self._waiting = self._batching = False
                acks, self._acks = self._acks, []
            failovers = self._cm.failovers
            if failovers != self._failovers:
                # A new master: resync as after an error (acks first, then push
                # back whatever our lists hold that we never saw).
                self._failovers = failovers
                with self._cv:
                    self._acks[:0] = acks
                self._resync()
                continue
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
                        self.waiters.enter_idle()

    def _round_trip(self, want: int, acks: list[UnitOfWork]) -> int:
        args: list[Any] = [want, len(acks)]
        for uow in acks:
            args += [uow.pair, uow.payload]
        marks = self.marks.drain()
        args += [len(marks) // 2, MARK_TTL, *marks]
        if want:
            if self._strict:
                args += [len(self.queues), 1, *self._order()]
            else:
                # One shuffle per job slot: each fetched job is chosen by the
                # weights, exactly as if it had its own BRPOP.
                args += [len(self.queues), want]
                for _ in range(want):
                    args += self._order()
        keys = self._fetch_keys
        try:
            try:
                reply = self._cm.send(("EVALSHA", self._fetch_sha, len(keys), *keys, *args))[0]
            except redispy.exceptions.NoScriptError:
                # Redis restarted or flushed its scripts: load it, then again.
                reply = self._fetch(keys=keys, args=args)
        except BaseException:
            self.marks.restore(marks)
            raise
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

    def _from_waiter(self, uow: UnitOfWork) -> None:
        self._deliver([uow])

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
            self._log.warning("pushed back %s unfinished jobs left in working lists", n)
