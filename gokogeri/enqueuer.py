"""Pushing jobs, as Sidekiq's Client does.

Immediate: ``SADD queues Q`` + ``LPUSH queue:Q payload`` in one round trip.
Scheduled: ``ZADD schedule <at> payload`` with neither ``at`` nor
``enqueued_at`` in the member (the poller adds enqueued_at when it pushes).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from gokogeri.errors import InvalidQueueNameError
from gokogeri.job import Job, TimestampFormat, check_args, new_jid, now_stamp, restamp, stamp_format
from gokogeri.middleware import ClientChain
from gokogeri.redis import ConnManager

# Sidekiq 8's Web UI only serves queue pages whose names match this.
QUEUE_NAME = re.compile(r"\A[a-z_:.\-0-9]+\Z", re.IGNORECASE)

# Values per LPUSH in a bulk enqueue: Sidekiq's push_bulk batch size.
BULK_BATCH = 1000
# LPUSH commands per pipeline in a bulk enqueue: ~10,000 jobs per round trip
# keeps each request a few MB, well under Redis's 512 MB query buffer.
BULK_PIPELINE = 10


def check_queue_name(name: str) -> str:
    if not isinstance(name, str) or not QUEUE_NAME.match(name):
        raise InvalidQueueNameError(
            f"queue name {name!r} is not allowed: use letters, digits and _ : . -"
        )
    return name


def to_epoch(at: datetime | float | int) -> float:
    """A datetime (naive means local time, as datetime.timestamp() reads it) or epoch seconds."""
    if isinstance(at, datetime):
        return at.timestamp()
    if isinstance(at, bool) or not isinstance(at, (int, float)):
        raise TypeError(f"a time must be a datetime or epoch seconds, got {type(at).__name__}")
    return float(at)


class Enqueuer:
    """Pushes jobs to Redis. Thread-safe; cheap to create."""

    def __init__(self, conn_manager: ConnManager, middleware: ClientChain | None = None) -> None:
        self._cm = conn_manager
        self._keys = conn_manager.keys
        self._fmt = conn_manager.config.timestamp_format
        self.middleware: ClientChain = middleware if middleware is not None else ClientChain()

    # --- public API ---

    def enqueue(self, job: Job) -> str | None:
        """Push ``job`` to its queue now. Returns the jid, or None if middleware stopped it.

        ``job`` itself is not changed: enqueuing the same Job twice pushes two
        jobs with two jids (unless it carries an explicit jid).
        """
        prepared = self._prepare(job)
        if prepared is None:
            return None
        queue, payload, jid = prepared
        keys = self._keys
        self._cm.send(("SADD", keys.queues, queue), ("LPUSH", keys.queue(queue), payload))
        return jid

    def enqueue_in(self, job: Job, seconds: float | timedelta) -> str | None:
        """Push ``job`` to run ``seconds`` from now (a past or zero delay pushes now)."""
        if isinstance(seconds, timedelta):
            seconds = seconds.total_seconds()
        return self.enqueue_at(job, time.time() + float(seconds))

    def enqueue_at(self, job: Job, at: datetime | float) -> str | None:
        """Push ``job`` to run at ``at``; a time not in the future pushes it now, as Sidekiq does."""
        when = to_epoch(at)
        if when <= time.time():
            return self.enqueue(job)
        prepared = self._prepare(job, scheduled=True)
        if prepared is None:
            return None
        _queue, payload, jid = prepared
        keys = self._keys
        self._cm.send(
            ("ZADD", keys.schedule, repr(when), payload),
            ("PUBLISH", keys.schedule_channel, repr(when)),
        )
        return jid

    def enqueue_bulk(self, jobs: Iterable[Job]) -> list[str | None]:
        """Push many jobs in a few round trips; one fresh jid each.

        Jobs are grouped by queue and pushed with variadic LPUSHes of
        BULK_BATCH payloads. The result lines up with ``jobs``; a job that
        middleware stopped has None. Every job is checked before anything is
        sent, so bad args in job 9,999 push nothing at all.
        """
        jids: list[str | None] = []
        by_queue: dict[str, list[str]] = {}
        for job in jobs:
            prepared = self._prepare(job)
            if prepared is None:
                jids.append(None)
                continue
            queue, payload, jid = prepared
            by_queue.setdefault(queue, []).append(payload)
            jids.append(jid)
        if not by_queue:
            return jids
        client = self._cm.client
        pipe = client.pipeline(transaction=False)
        for queue in by_queue:
            pipe.sadd(self._keys.queues, queue)
        pending = len(by_queue)
        for queue, payloads in by_queue.items():
            key = self._keys.queue(queue)
            for start in range(0, len(payloads), BULK_BATCH):
                pipe.lpush(key, *payloads[start : start + BULK_BATCH])
                pending += 1
                if pending >= BULK_PIPELINE:
                    pipe.execute()
                    pipe = client.pipeline(transaction=False)
                    pending = 0
        if pending:
            pipe.execute()
        return jids

    # --- internals ---

    def _prepare(self, job: Job, scheduled: bool = False) -> tuple[str, str, str] | None:
        return prepare(job, self._fmt, self.middleware, scheduled)


def prepare(
    job: Job, fmt: TimestampFormat, middleware: ClientChain, scheduled: bool = False
) -> tuple[str, str, str] | None:
    """Normalise a copy of ``job`` as Sidekiq's Client#normalize_item does, run
    client middleware, and encode it: (queue, payload, jid), or None if a
    middleware stopped the push."""
    if not isinstance(job, Job):
        raise TypeError(f"expected a gokogeri.Job, got {type(job).__name__}")
    item = job.copy()
    fields = item.fields
    check_args(fields.get("args"))
    queue = fields.get("queue") or "default"
    fields["queue"] = check_queue_name(queue)
    if not fields.get("class") or not isinstance(fields["class"], str):
        raise ValueError("a job needs a class name (the Ruby class or a registered Python worker)")
    retry = fields.setdefault("retry", True)
    if not isinstance(retry, int):  # bool is an int too
        raise TypeError(f"retry must be True, False or an int, got {retry!r}")
    if retry < 0:
        raise ValueError(f"retry must not be negative, got {retry}")
    if not fields.get("jid"):
        fields["jid"] = new_jid()
    fields.pop("at", None)  # input only in Sidekiq; never stored
    now = time.time()
    fmt = stamp_format(fields, fmt)
    if "created_at" not in fields:
        fields["created_at"] = now_stamp(fmt, now)
    if scheduled:
        fields.pop("enqueued_at", None)
    else:
        fields["enqueued_at"] = restamp(fields.get("enqueued_at"), fmt, now)
    if len(middleware):
        kept: list[Any] = []

        def push() -> bool:
            kept.append(True)
            return True

        result = middleware.invoke((item, fields["queue"]), push)
        if not kept or not result:
            return None
        # Middleware may have changed anything: check again what we send.
        check_args(fields.get("args"))
        check_queue_name(fields.get("queue") or "default")
    return str(fields["queue"]), item.encode(), str(fields["jid"])
