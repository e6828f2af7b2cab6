"""The poller: moves due jobs from ``schedule`` and ``retry`` onto their queues.

Like Sidekiq's Scheduled::Poller it polls at a random interval scaled by the
number of processes (5 s per process, uniform in [0.5, 1.5] times that), so a
cluster's total poll rate stays constant. Unlike it, each poll also reads when
the next job is due and sleeps only until then, and gokogeri enqueuers publish
on a channel when they schedule a job, which wakes the poller at once. A job
therefore starts within milliseconds of its time instead of seconds late.

Each move is atomic (enqueue_due.lua: ZREM and LPUSH in one step), so no job
is lost or doubled if a node dies mid-move or two nodes poll together.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time

import redis as redispy

from gokogeri import scripts
from gokogeri.errors import InvalidPayloadError
from gokogeri.fetch import dead_trim_args
from gokogeri.job import Job, TimestampFormat, restamp, stamp_format
from gokogeri.redis import ConnManager
from gokogeri.retry import CODEC_ERRORS, RetryPolicy, dead_payload

# Sidekiq's average_scheduled_poll_interval: seconds per process.
AVERAGE_POLL_INTERVAL = 5.0
# Jobs moved per round trip when many are due at once.
MOVE_BATCH = 100
# Never sleep longer than this, so a lost wake-up costs little.
MAX_SLEEP = 15.0


class Scheduler:
    def __init__(
        self,
        cm: ConnManager,
        logger: logging.Logger,
        *,
        timestamp_format: TimestampFormat,
        policy: RetryPolicy,
        poll_interval_average: float | None = None,
    ) -> None:
        self._cm = cm
        self._log = logger
        self._fmt = timestamp_format
        self._policy = policy
        self._fixed_interval = poll_interval_average
        self._move = scripts.load(cm.client, "enqueue_due.lua")
        self._bury = scripts.load(cm.client, "bury.lua")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pubsub: redispy.client.PubSub | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    # --- the loop ---

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._subscribe()
                self.enqueue_due()
                delay = self._sleep_time()
            except redispy.RedisError as e:
                self._log.warning("scheduler: Redis error: %s", e)
                self._close_pubsub()
                delay = 1.0
            except Exception:
                # A bug here must not stop scheduled jobs for good: log, retry.
                self._log.exception("scheduler: internal error; retrying in 1 s")
                self._close_pubsub()
                delay = 1.0
            self._sleep(delay)
        self._close_pubsub()

    def _subscribe(self) -> None:
        if self._pubsub is None:
            ps = self._cm.dedicated().pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
            ps.subscribe(self._cm.keys.schedule_channel)
            self._pubsub = ps

    def _close_pubsub(self) -> None:
        if self._pubsub is not None:
            with contextlib.suppress(redispy.RedisError):
                self._pubsub.close()
            self._pubsub = None

    def _sleep(self, delay: float) -> None:
        """Sleep until ``delay`` passes, a wake-up arrives, or stop."""
        deadline = time.monotonic() + delay
        while not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            ps = self._pubsub
            if ps is None:
                self._stop.wait(min(left, 0.5))
                continue
            try:
                # Wake at most every 0.5 s to notice stop().
                msg = ps.get_message(timeout=min(left, 0.5))
            except redispy.RedisError:
                self._close_pubsub()
                continue
            if msg is not None:
                return

    def _sleep_time(self) -> float:
        """Until the next due job or the next poll, whichever comes first."""
        keys = self._cm.keys
        pipe = self._cm.client.pipeline(transaction=False)
        pipe.zrange(keys.schedule, 0, 0, withscores=True)
        pipe.zrange(keys.retry, 0, 0, withscores=True)
        pipe.scard(keys.processes)
        first_schedule, first_retry, processes = pipe.execute()
        interval = self._poll_interval(int(processes))
        now = time.time()
        for entry in (first_schedule, first_retry):
            if entry:
                interval = min(interval, max(0.0, entry[0][1] - now))
        return min(interval, MAX_SLEEP)

    def _poll_interval(self, processes: int) -> float:
        if self._fixed_interval is not None:
            base = self._fixed_interval
        else:
            base = max(processes, 1) * AVERAGE_POLL_INTERVAL
        if processes >= 10:
            return base * random.random()
        return base * random.random() + base / 2

    # --- moving jobs ---

    def enqueue_due(self) -> int:
        """Move every due job; returns how many moved."""
        keys = self._cm.keys
        moved = 0
        for zset in (keys.retry, keys.schedule):
            while not self._stop.is_set():
                now = time.time()
                members: list[bytes] = self._cm.client.zrangebyscore(  # type: ignore[assignment]
                    zset, "-inf", repr(now), start=0, num=MOVE_BATCH
                )
                if not members:
                    break
                moved += self._move_batch(zset, members, now)
                if len(members) < MOVE_BATCH:
                    break
        return moved

    def _move_batch(self, zset: str, members: list[bytes], now: float) -> int:
        keys = self._cm.keys
        pipe = self._cm.client.pipeline(transaction=False)
        for member in members:
            try:
                job = Job.decode(member)
                fields = job.fields
                fields["enqueued_at"] = restamp(
                    fields.get("enqueued_at"), stamp_format(fields, self._fmt), now
                )
                payload = job.encode()
                payload.encode("utf-8")  # a lone surrogate decodes but cannot be written
            except (InvalidPayloadError, *CODEC_ERRORS) as e:
                # The reason can quote payload values: it goes to the dead set, not the log.
                self._log.error(
                    "unreadable job (%s bytes) in %s sent to the dead set", len(member), zset
                )
                self._bury(
                    keys=[zset, keys.dead],
                    args=[
                        member,
                        dead_payload(member, f"cannot move this job to its queue: {e}"),
                        repr(now),
                        *dead_trim_args(self._policy, now),
                        "zset",
                    ],
                    client=pipe,
                )
                continue
            queue = job.queue
            self._move(
                keys=[zset, keys.queues, keys.queue(queue)],
                args=[member, payload, queue],
                client=pipe,
            )
        return sum(1 for r in pipe.execute() if r == 1)
