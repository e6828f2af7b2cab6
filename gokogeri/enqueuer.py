"""Pushing jobs, as Sidekiq's Client does.

Immediate: ``SADD queues Q`` + ``LPUSH queue:Q payload`` in one round trip.
Scheduled: ``ZADD schedule <at> payload`` with neither ``at`` nor
``enqueued_at`` in the member (the poller adds enqueued_at when it pushes).
Bulk: every round trip is one MULTI/EXEC, so it is applied whole or not at
all; if one fails, EnqueueError.pushed lists the jids of the round trips that
were applied, and a caller retries only the rest.

Redis failures are raised as gokogeri.errors.EnqueueError (RedisUnavailableError
when Redis could not be reached), with redis-py's exception as the cause.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import redis as redispy

from gokogeri import jsonc
from gokogeri.errors import (
    EnqueueError,
    InvalidArgumentError,
    InvalidQueueNameError,
    RedisUnavailableError,
)
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
# Jobs whose args are decoded back at once in a bulk's round-trip check.
CHECK_CHUNK = 200


# Placeholders enqueue_many splices each job's args and jid into.
_ARGS_MARK = "\x00gokogeri-args\x00"
_JID_MARK = "\x00gokogeri-jid\x00"
_ENCODED_ARGS_MARK = json.dumps(_ARGS_MARK)
_MARKS = re.compile(
    "(" + re.escape(_ENCODED_ARGS_MARK) + "|" + re.escape(json.dumps(_JID_MARK)) + ")"
)


def _encode_all_args(all_args: list[Any]) -> list[str]:
    """JSON for each job's args, refusing what would not come back the same.

    The check is Sidekiq 6's: JSON.parse(JSON.dump(args)) == args. It catches
    tuples and non-string keys, which JSON encoding silently converts; what
    encoding refuses (sets, datetimes, NaN) is refused too. It decodes
    CHECK_CHUNK jobs at a time: the decoded copies are freed before the next
    chunk, so they seldom push the garbage collector past its threshold
    (decoding all 1,000 args of a batch at once triggered ~3 collections per
    batch). The slow, exact check runs only to word the error.
    """
    dumps = jsonc.dumps
    loads = jsonc.loads
    try:
        encoded = [dumps(args) if type(args) is list else "" for args in all_args]
        if "" not in encoded:
            for i in range(0, len(encoded), CHECK_CHUNK):
                chunk = encoded[i : i + CHECK_CHUNK]
                if loads("[" + ",".join(chunk) + "]") != all_args[i : i + CHECK_CHUNK]:
                    break
            else:
                return encoded
    except (TypeError, ValueError, RecursionError):
        pass
    for index, args in enumerate(all_args):
        try:
            check_args(args)
        except InvalidArgumentError as e:
            raise InvalidArgumentError(f"job {index}: {e}") from None
    raise InvalidArgumentError("args do not survive a JSON round trip")


_MISSING = object()


def shared_template(jobs: list[Job]) -> Job | None:
    """The first job, if every job has exactly its fields but args and none sets a jid."""
    if not jobs or not all(type(job) is Job for job in jobs):
        return None
    first = jobs[0].fields
    if first.get("jid") or "args" not in first:
        return None
    others = [(k, v) for k, v in first.items() if k != "args"]
    n = len(first)
    for job in jobs:
        fields = job.fields
        if len(fields) != n or "args" not in fields:
            return None
        for key, value in others:
            other = fields.get(key, _MISSING)
            # Usually the very same objects (one constructor call site). Else
            # compare type too: True == 1, but retry: true and retry: 1 differ on the wire.
            if other is not value and (other != value or type(other) is not type(value)):
                return None
    return jobs[0]


def _with_args(job: Job, args: list[Any]) -> Job:
    copy = job.copy()
    copy.args = args
    return copy


def check_queue_name(name: str) -> str:
    if not isinstance(name, str) or not QUEUE_NAME.match(name):
        raise InvalidQueueNameError(
            f"queue name {name!r} is not allowed: use letters, digits and _ : . -"
        )
    return name


def in_seconds(delay: float | timedelta) -> float:
    """Epoch seconds ``delay`` (seconds or a timedelta) from now."""
    if isinstance(delay, timedelta):
        delay = delay.total_seconds()
    return time.time() + float(delay)


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
        try:
            self._cm.send(("SADD", keys.queues, queue), ("LPUSH", keys.queue(queue), payload))
        except redispy.RedisError as e:
            raise _enqueue_error(e, f"could not push job {jid} to queue {queue!r}") from e
        return jid

    def enqueue_in(self, job: Job, seconds: float | timedelta) -> str | None:
        """Push ``job`` to run ``seconds`` from now (a past or zero delay pushes now)."""
        return self.enqueue_at(job, in_seconds(seconds))

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
        try:
            self._cm.send(
                ("ZADD", keys.schedule, repr(when), payload),
                ("PUBLISH", keys.schedule_channel, repr(when)),
            )
        except redispy.RedisError as e:
            raise _enqueue_error(e, f"could not schedule job {jid}") from e
        return jid

    def enqueue_bulk(self, jobs: Iterable[Job]) -> list[str | None]:
        """Push many jobs in a few round trips; one fresh jid each.

        Jobs are grouped by queue and pushed with variadic LPUSHes of
        BULK_BATCH payloads. The result lines up with ``jobs``; a job that
        middleware stopped has None. Every job is checked before anything is
        sent, so bad args in job 9,999 push nothing at all.
        """
        jobs = list(jobs)
        template = shared_template(jobs) if not len(self.middleware) else None
        if template is not None:
            # The usual bulk: one class and one set of options, many args.
            return self.enqueue_many(template, [job.fields["args"] for job in jobs])
        jids: list[str | None] = []
        by_queue: dict[str, tuple[list[str], list[str]]] = {}
        for job in jobs:
            prepared = self._prepare(job)
            if prepared is None:
                jids.append(None)
                continue
            queue, payload, jid = prepared
            group = by_queue.get(queue)
            if group is None:
                group = by_queue[queue] = ([], [])
            group[0].append(jid)
            group[1].append(payload)
            jids.append(jid)
        self._push_grouped(by_queue)
        return jids

    def enqueue_many(self, job: Job, args_list: Iterable[list[Any]]) -> list[str | None]:
        """Sidekiq's push_bulk: one job per entry of ``args_list``, all like ``job``.

        Each job gets its own jid and those args; class, queue, retry and every
        other field come from ``job`` (which must not carry a jid), and all
        share one created_at/enqueued_at, as push_bulk does. The payload is
        encoded once and each job's args and jid are spliced in, so this is
        several times cheaper per job than enqueue_bulk. With client
        middleware, each job goes through it (via enqueue_bulk).
        """
        if job.jid:
            raise ValueError(
                "enqueue_many gives every job its own jid: the template must not set one"
            )
        all_args = list(args_list)
        if len(self.middleware):
            return self.enqueue_bulk(_with_args(job, a) for a in all_args)
        template = job.copy()
        template.args = []
        template.jid = _JID_MARK
        prepared = self._prepare(template)
        assert prepared is not None  # no middleware
        queue, base, _ = prepared
        fields = jsonc.loads(base)
        fields["args"] = _ARGS_MARK
        pieces = _MARKS.split(jsonc.dumps(fields))
        if len(pieces) != 5:
            raise ValueError("a template field contains gokogeri's splice markers")
        head, first, mid, _second, tail = pieces
        args_first = first == _ENCODED_ARGS_MARK
        n = len(all_args)
        hexes = os.urandom(12 * n).hex()
        # Two flat lists, not (jid, payload) pairs: 1,000 fewer tracked objects
        # per batch for the garbage collector (see _encode_all_args).
        jids = [hexes[24 * i : 24 * i + 24] for i in range(n)]
        encoded = _encode_all_args(all_args)
        if args_first:
            payloads = [f'{head}{e}{mid}"{j}"{tail}' for e, j in zip(encoded, jids, strict=True)]
        else:
            payloads = [f'{head}"{j}"{mid}{e}{tail}' for e, j in zip(encoded, jids, strict=True)]
        if payloads:
            self._push_grouped({queue: (jids, payloads)})
        return list(jids)

    def _push_grouped(self, by_queue: dict[str, tuple[list[str], list[str]]]) -> None:
        """SADD the queues and LPUSH BULK_BATCH payloads per command,
        BULK_PIPELINE commands per round trip, each round trip one MULTI/EXEC.
        ``by_queue`` maps a queue to its jobs' jids and payloads."""
        if not by_queue:
            return
        keys = self._keys
        commands: list[tuple[Any, ...]] = [("SADD", keys.queues, *by_queue)]
        trip: list[str] = []  # the jids of this round trip
        pushed: list[str] = []
        for queue, (jids, payloads) in by_queue.items():
            key = keys.queue(queue)
            for start in range(0, len(payloads), BULK_BATCH):
                commands.append(("LPUSH", key, *payloads[start : start + BULK_BATCH]))
                trip += jids[start : start + BULK_BATCH]
                if len(commands) >= BULK_PIPELINE:
                    self._send_atomic(commands, trip, pushed)
                    pushed += trip
                    commands, trip = [], []
        if commands:
            self._send_atomic(commands, trip, pushed)

    def _send_atomic(
        self, commands: list[tuple[Any, ...]], trip: list[str], pushed: list[str]
    ) -> None:
        try:
            self._cm.send(("MULTI",), *commands, ("EXEC",))
        except redispy.RedisError as e:
            unsure = isinstance(e, (redispy.ConnectionError, redispy.TimeoutError))
            what = (
                f"bulk enqueue failed after {len(pushed)} jobs were pushed; "
                f"the {len(trip)} jobs of the failed round trip were "
                + ("possibly applied (the connection failed mid-reply)" if unsure else "not pushed")
            )
            err = _enqueue_error(e, what, pushed)
            raise err from e

    # --- internals ---

    def _prepare(self, job: Job, scheduled: bool = False) -> tuple[str, str, str] | None:
        return prepare(job, self._fmt, self.middleware, scheduled)


def prepare(
    job: Job, fmt: TimestampFormat, middleware: ClientChain, scheduled: bool = False
) -> tuple[str, str, str] | None:
    """Normalise a copy of ``job`` as Sidekiq's Client#normalize_item does, run
    client middleware, check and encode it: (queue, payload, jid), or None if
    a middleware stopped the push."""
    if not isinstance(job, Job):
        raise TypeError(f"expected a gokogeri.Job, got {type(job).__name__}")
    item = job.copy()
    fields = item.fields
    cls = fields.get("class")
    if not cls or not isinstance(cls, str):
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

        result = middleware.invoke((item, fields.get("queue") or "default"), push)
        if not kept or not result:
            return None
    # Checked after middleware (as Sidekiq 6.4.2+ does), so what is sent is checked.
    queue = fields["queue"] = check_queue_name(fields.get("queue") or "default")
    return queue, _encode_checked(fields), str(fields["jid"])


def _encode_checked(fields: dict[str, Any]) -> str:
    """The payload, once the args are known to be JSON-native (check_args names
    the offending argument); any other field JSON cannot encode is named too."""
    check_args(fields.get("args"))
    try:
        return jsonc.dumps(fields)
    except (TypeError, ValueError, RecursionError):
        for key, value in fields.items():
            try:
                jsonc.dumps(value)
            except (TypeError, ValueError, RecursionError):
                raise InvalidArgumentError(
                    f"job field {key!r} holds a {type(value).__name__}, which is not JSON-native"
                ) from None
        raise


def _enqueue_error(e: redispy.RedisError, what: str, pushed: list[str] | None = None) -> EnqueueError:
    """gokogeri's exception for a failed push; the caller chains redis-py's."""
    if isinstance(e, (redispy.ConnectionError, redispy.TimeoutError)):
        return RedisUnavailableError(f"{what}: Redis unreachable: {e}", pushed)
    return EnqueueError(f"{what}: {e}", pushed)
