"""The admin API: read and change what Sidekiq's own API reads and changes.

Field for field it follows ``Sidekiq::Stats``, ``Queue``, ``ScheduledSet`` /
``RetrySet`` / ``DeadSet`` (``SortedEntry#retry``, ``#add_to_queue``, ``#kill``,
``#delete``, ``retry_all``, ``kill_all``, ``clear``), ``ProcessSet``
(``quiet!``, ``stop!``) and ``WorkSet``, so a Python operator and a Ruby one
(or the Web UI) always see and do the same thing.

Where Sidekiq's way is racy or blocks Redis, this module keeps its result but
not its method:

- An entry is moved by its exact member bytes, checked and moved inside one
  Lua script (ZREM, then LPUSH/ZADD only if the ZREM removed it), instead of
  Sidekiq's "ZREMRANGEBYSCORE the whole score, push back the others". Two
  operators (or Ruby's Web UI and this) acting on one job move it once.
- ``retry_all``/``kill_all``/``clear`` work in batches of ``batch`` members,
  so no single Redis call holds the server for long on a 100,000-entry set.

Nothing read from Redis can crash a listing: an entry that is not a job is
listed as garbage (its raw bytes and the reason) and can be deleted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast

from gokogeri import jsonc
from gokogeri.errors import GokogeriError, InvalidPayloadError
from gokogeri.job import Job, restamp, stamp_format, stamp_to_seconds
from gokogeri.redis import ConnManager
from gokogeri.retry import DEAD_MAX_JOBS, DEAD_TIMEOUT

SetName = Literal["scheduled", "retry", "dead"]
SET_NAMES: tuple[SetName, ...] = ("scheduled", "retry", "dead")

# Members per Redis call in the --all actions and in filtered scans: small
# enough that one call takes milliseconds, large enough to be few round trips.
BATCH = 500
# Sidekiq's signal list expiry (Process#signal).
SIGNAL_TTL = 60

# KEYS: the sorted set, the queues set. ARGV: (member, queue key, queue name,
# payload) per entry. Pushes an entry only if this call removed it.
_RETRY_LUA = """
local moved = {}
for i = 1, #ARGV, 4 do
  if redis.call('ZREM', KEYS[1], ARGV[i]) == 1 then
    redis.call('LPUSH', ARGV[i + 1], ARGV[i + 3])
    redis.call('SADD', KEYS[2], ARGV[i + 2])
    moved[#moved + 1] = 1
  else
    moved[#moved + 1] = 0
  end
end
return moved
"""

# KEYS: the source set, the dead set. ARGV: now, cutoff score, max jobs,
# then members. DeadSet#kill: ZADD now, then trim by age and by count.
_KILL_LUA = """
local moved = {}
for i = 4, #ARGV do
  if redis.call('ZREM', KEYS[1], ARGV[i]) == 1 then
    redis.call('ZADD', KEYS[2], ARGV[1], ARGV[i])
    moved[#moved + 1] = 1
  else
    moved[#moved + 1] = 0
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[2])
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -tonumber(ARGV[3]))
return moved
"""


class ApiError(GokogeriError):
    """An admin action that cannot be done (unknown process, garbage entry, ...)."""


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _decode(raw: bytes) -> tuple[Job | None, str | None]:
    """The job in ``raw``, or None and why it is not one. Never raises."""
    try:
        return Job.decode(raw), None
    except InvalidPayloadError as e:
        return None, str(e)
    except Exception as e:  # a payload must never crash a listing (RecursionError, ...)
        return None, f"{type(e).__name__}: {e}"


def display_class(job: Job) -> str:
    """The class the Web UI shows: the ActiveJob ``wrapped`` class, else ``class``."""
    wrapped = job.get("display_class") or job.get("wrapped")
    return wrapped if isinstance(wrapped, str) and wrapped else job.class_name


def latency_of(job: Job | None, now: float | None = None) -> float:
    """Seconds since the job was enqueued (Sidekiq's Queue#latency); 0 if unknown."""
    if job is None:
        return 0.0
    at = job.enqueued_at_seconds()
    if at is None:
        at = job.created_at_seconds()
    if at is None:
        return 0.0
    return (time.time() if now is None else now) - at


@dataclass
class Stats:
    """Sidekiq::Stats: totals, set sizes, queue sizes and latencies."""

    processed: int
    failed: int
    scheduled_size: int
    retry_size: int
    dead_size: int
    processes_size: int
    queues: dict[str, int]
    workers_size: int = 0
    default_queue_latency: float = 0.0
    latencies: dict[str, float] = field(default_factory=dict)

    @property
    def enqueued(self) -> int:
        return sum(self.queues.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "processed": self.processed,
            "failed": self.failed,
            "enqueued": self.enqueued,
            "scheduled_size": self.scheduled_size,
            "retry_size": self.retry_size,
            "dead_size": self.dead_size,
            "processes_size": self.processes_size,
            "workers_size": self.workers_size,
            "default_queue_latency": self.default_queue_latency,
            "queues": {
                q: {"size": n, "latency": self.latencies.get(q, 0.0)}
                for q, n in self.queues.items()
            },
        }


@dataclass
class History:
    """Sidekiq::Stats::History: per-day counts, newest day first (UTC YYYY-MM-DD)."""

    processed: dict[str, int]
    failed: dict[str, int]


@dataclass
class QueueInfo:
    name: str
    size: int
    latency: float


@dataclass
class Record:
    """A job in a queue (Sidekiq's JobRecord), or garbage found there."""

    raw: bytes
    job: Job | None
    reason: str | None  # why ``raw`` is not a job, for garbage
    queue: str

    @property
    def jid(self) -> str | None:
        return self.job.jid if self.job is not None else None

    def to_dict(self) -> dict[str, Any]:
        return _entry_dict(self.job, self.raw, self.reason) | {"queue_name": self.queue}


@dataclass
class SortedEntry:
    """A member of schedule, retry or dead, with its score (a time, epoch seconds).

    ``job`` is None for garbage: then ``reason`` says why and ``raw`` holds
    the bytes; garbage can be deleted (or killed), never retried.
    """

    score: float
    job: Job | None
    raw: bytes = b""
    reason: str | None = None
    set: JobSet | None = None

    @property
    def jid(self) -> str | None:
        return self.job.jid if self.job is not None else None

    @property
    def garbage(self) -> bool:
        return self.job is None

    def _parent(self) -> JobSet:
        if self.set is None:
            raise ApiError("this entry was not read through a JobSet")
        return self.set

    def retry(self) -> bool:
        """SortedEntry#retry: back to its queue now, retry_count - 1 (not counted)."""
        return self._parent().retry_entries([self])[0]

    def add_to_queue(self) -> bool:
        """SortedEntry#add_to_queue (a scheduled job's "Add to queue"): retry_count kept."""
        return self._parent().retry_entries([self], decrement=False)[0]

    def kill(self) -> bool:
        """SortedEntry#kill: to the dead set now, which is trimmed as DeadSet#kill does."""
        return self._parent().kill_entries([self])[0]

    def delete(self) -> bool:
        return self._parent().delete_entries([self]) == 1

    def to_dict(self) -> dict[str, Any]:
        return _entry_dict(self.job, self.raw, self.reason) | {"score": self.score}


def _entry_dict(job: Job | None, raw: bytes, reason: str | None) -> dict[str, Any]:
    """The --json shape of a job entry (documented in docs/operators.md)."""
    if job is None:
        return {"garbage": True, "reason": reason, "raw": _text(raw)}
    return {
        "garbage": False,
        "jid": job.jid,
        "class": job.get("class"),
        "display_class": display_class(job),
        "queue": job.queue,
        "args": job.get("args"),
        "retry_count": job.get("retry_count"),
        "error_class": job.get("error_class"),
        "error_message": job.get("error_message"),
        "created_at": job.created_at_seconds(),
        "enqueued_at": job.enqueued_at_seconds(),
        "failed_at": stamp_to_seconds(job.get("failed_at")),
        "retried_at": stamp_to_seconds(job.get("retried_at")),
        "payload": job.fields,
    }


@dataclass
class Filter:
    """Entry filters: exact class (or wrapped class), queue, jid; error substring."""

    class_name: str | None = None
    queue: str | None = None
    jid: str | None = None
    error: str | None = None

    def active(self) -> bool:
        return any(v is not None for v in (self.class_name, self.queue, self.jid, self.error))

    def prefilter(self, raw: bytes) -> bool:
        """A cheap byte test that every match passes (each value occurs in the JSON)."""
        for value in (self.class_name, self.queue, self.jid):
            if value is not None and value.encode() not in raw:
                return False
        return True

    def matches(self, job: Job | None) -> bool:
        if job is None:
            return not self.active()
        if self.class_name is not None and self.class_name not in (
            job.class_name,
            display_class(job),
        ):
            return False
        if self.queue is not None and job.queue != self.queue:
            return False
        if self.jid is not None and job.jid != self.jid:
            return False
        if self.error is not None:
            text = f"{job.get('error_class') or ''}: {job.get('error_message') or ''}"
            if self.error.lower() not in text.lower():
                return False
        return True


ProgressFn = Callable[[int, int], None]


class JobSet:
    """One of Sidekiq's sorted sets (schedule, retry, dead)."""

    def __init__(self, api: Api, name: SetName, key: str) -> None:
        self.api = api
        self.name = name
        self.key = key

    @property
    def _cm(self) -> ConnManager:
        return self.api.cm

    def size(self) -> int:
        return int(self._cm.client.zcard(self.key))

    def _entries(self, rows: list[tuple[bytes, float]]) -> list[SortedEntry]:
        out = []
        for member, score in rows:
            job, reason = _decode(member)
            out.append(SortedEntry(float(score), job, member, reason, self))
        return out

    def page(self, offset: int = 0, limit: int = 25, *, reverse: bool = False) -> list[SortedEntry]:
        """Entries by score (soonest first; ``reverse``: latest first), as the Web UI pages."""
        if limit <= 0:
            return []
        client = self._cm.client
        if reverse:
            rows = client.zrevrange(self.key, offset, offset + limit - 1, withscores=True)
        else:
            rows = client.zrange(self.key, offset, offset + limit - 1, withscores=True)
        return self._entries(cast(list[tuple[bytes, float]], rows))

    def scan(self, flt: Filter, limit: int, *, reverse: bool = False) -> list[SortedEntry]:
        """The first ``limit`` entries matching ``flt``, in page order.

        Reads the set in score order, ``BATCH`` members per call, and stops as
        soon as ``limit`` entries match: a filter that matches often answers
        after one or two calls; one that matches nothing reads the whole set,
        each call still short.
        """
        if not flt.active():
            return self.page(0, limit, reverse=reverse)
        found: list[SortedEntry] = []
        offset = 0
        while len(found) < limit:
            client = self._cm.client
            stop = offset + BATCH - 1
            fetched = (
                client.zrevrange(self.key, offset, stop, withscores=True)
                if reverse
                else client.zrange(self.key, offset, stop, withscores=True)
            )
            rows = cast(list[tuple[bytes, float]], fetched)
            if not rows:
                break
            offset += len(rows)
            candidates = [(m, s) for m, s in rows if flt.prefilter(m)]
            found.extend(e for e in self._entries(candidates) if flt.matches(e.job))
        return found[:limit]

    def __iter__(self) -> Iterator[SortedEntry]:
        offset = 0
        while True:
            batch = self.page(offset, BATCH)
            if not batch:
                return
            yield from batch
            offset += len(batch)

    def find_job(self, jid: str) -> SortedEntry | None:
        """JobSet#find_job: ZSCAN for members containing the jid, then an exact match."""
        client = self._cm.client
        for member, score in client.zscan_iter(
            self.key, match=f"*{_glob_escape(jid)}*", count=BATCH
        ):
            job, reason = _decode(member)
            if job is not None and job.jid == jid:
                return SortedEntry(float(score), job, member, reason, self)
        return None

    def add(self, job: Job, at: float) -> None:
        """JobSet#schedule: ZADD the job at time ``at`` (epoch seconds)."""
        self._cm.client.zadd(self.key, {job.encode(): at})

    def retry_payload(self, job: Job, *, decrement: bool) -> tuple[str, str]:
        """The payload Sidekiq's Client.push writes when the API retries ``job``: (queue, json)."""
        fields = dict(job.fields)
        count = fields.get("retry_count")
        if decrement and isinstance(count, int) and not isinstance(count, bool):
            fields["retry_count"] = count - 1
        fields.pop("at", None)  # enqueue now, never back to the schedule
        fmt = stamp_format(fields, self._cm.config.timestamp_format)
        now = time.time()
        if "created_at" not in fields:
            fields["created_at"] = restamp(None, fmt, now)
        fields["enqueued_at"] = restamp(fields.get("enqueued_at"), fmt, now)
        queue = job.queue
        return queue, jsonc.dumps(fields)

    def retry_entries(self, entries: list[SortedEntry], *, decrement: bool = True) -> list[bool]:
        """Move entries to their queues (one script call); True for each one moved.

        Garbage cannot be retried (it has no queue): False for it.
        """
        keys = self._cm.keys
        argv: list[Any] = []
        index: list[int] = []
        result = [False] * len(entries)
        for i, entry in enumerate(entries):
            if entry.job is None:
                continue
            queue, payload = self.retry_payload(entry.job, decrement=decrement)
            argv += [entry.raw, keys.queue(queue), queue, payload]
            index.append(i)
        if argv:
            moved = self._cm.client.eval(_RETRY_LUA, 2, self.key, keys.queues, *argv)
            for i, ok in zip(index, cast(list[int], moved), strict=True):
                result[i] = bool(ok)
        return result

    def kill_entries(self, entries: list[SortedEntry]) -> list[bool]:
        """Move entries to the dead set now (one script call), trimming it as Sidekiq does."""
        if not entries:
            return []
        if self.name == "dead":
            raise ApiError("entries of the dead set are already dead")
        now = time.time()
        dead = self.api.dead_set
        moved = self._cm.client.eval(
            _KILL_LUA,
            2,
            self.key,
            dead.key,
            repr(now),
            repr(now - self.api.dead_timeout),
            self.api.dead_max_jobs,
            *[e.raw for e in entries],
        )
        return [bool(ok) for ok in cast(list[int], moved)]

    def delete_entries(self, entries: list[SortedEntry]) -> int:
        """ZREM the entries' exact members; how many were still there."""
        if not entries:
            return 0
        return int(self._cm.client.zrem(self.key, *[e.raw for e in entries]))

    def _all(
        self,
        act: Callable[[list[SortedEntry]], list[bool] | int],
        progress: ProgressFn | None,
        flt: Filter | None = None,
    ) -> int:
        """Apply ``act`` to every entry, ``BATCH`` at a time; how many it moved.

        Bounded by the size at the start: entries added meanwhile (new
        failures) are left for the next run, unlike Sidekiq's
        ``while size > 0``, which never ends on a busy set. Entries ``act``
        leaves in place (garbage, filtered out) are stepped over.
        """
        total = self.size()
        done = 0
        seen = 0
        offset = 0
        if progress is not None:
            progress(0, total)
        while seen < total:
            batch = self.page(offset, min(BATCH, total - seen))
            if not batch:
                break
            seen += len(batch)
            chosen = [e for e in batch if flt is None or flt.matches(e.job)]
            outcome = act(chosen) if chosen else []
            moved = outcome if isinstance(outcome, int) else sum(outcome)
            done += moved
            offset += len(batch) - moved
            if progress is not None:
                progress(seen, total)
        return done

    def retry_all(self, progress: ProgressFn | None = None, flt: Filter | None = None) -> int:
        """RetrySet#retry_all / DeadSet#retry_all, in batches; how many were moved."""
        return self._all(self.retry_entries, progress, flt)

    def kill_all(self, progress: ProgressFn | None = None, flt: Filter | None = None) -> int:
        """RetrySet#kill_all, in batches (Sidekiq 8 also trims once per batch here)."""
        return self._all(self.kill_entries, progress, flt)

    def delete_all(self, progress: ProgressFn | None = None, flt: Filter | None = None) -> int:
        return self._all(self.delete_entries, progress, flt)

    def delete_garbage(self, progress: ProgressFn | None = None) -> int:
        """Delete every entry that is not a job; how many."""
        return self._all(lambda es: self.delete_entries([e for e in es if e.garbage]), progress)

    def clear(self) -> int:
        """SortedSet#clear: UNLINK (Redis frees the members in the background); the size it had."""
        pipe = self._cm.client.pipeline(transaction=True)
        pipe.zcard(self.key)
        pipe.unlink(self.key)
        return int(pipe.execute()[0])


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


class Queue:
    """Sidekiq::Queue: one list, newest job first (LPUSH end)."""

    def __init__(self, api: Api, name: str) -> None:
        self.api = api
        self.name = name
        self.key = api.cm.keys.queue(name)

    def size(self) -> int:
        return int(self.api.cm.client.llen(self.key))

    def latency(self) -> float:
        """Seconds since the oldest job (the list's tail) was enqueued."""
        raw = cast(bytes | None, self.api.cm.client.lindex(self.key, -1))
        if raw is None:
            return 0.0
        return latency_of(_decode(raw)[0])

    def page(self, offset: int = 0, limit: int = 25) -> list[Record]:
        rows = cast(list[bytes], self.api.cm.client.lrange(self.key, offset, offset + limit - 1))
        return [Record(raw, *_decode(raw), self.name) for raw in rows]

    def __iter__(self) -> Iterator[Record]:
        offset = 0
        while True:
            batch = self.page(offset, BATCH)
            if not batch:
                return
            yield from batch
            offset += len(batch)

    def find_job(self, jid: str) -> Record | None:
        needle = jid.encode()
        for record in self:
            if needle in record.raw and record.jid == jid:
                return record
        return None

    def delete_job(self, jid: str) -> bool:
        """Find the job by jid and LREM its exact bytes (JobRecord#delete)."""
        record = self.find_job(jid)
        if record is None:
            return False
        return self.delete(record)

    def delete(self, record: Record) -> bool:
        return int(self.api.cm.client.lrem(self.key, 1, cast(Any, record.raw))) > 0

    def clear(self) -> None:
        """Queue#clear: UNLINK the list and SREM its name in one transaction."""
        pipe = self.api.cm.client.pipeline(transaction=True)
        pipe.unlink(self.key)
        pipe.srem(self.api.cm.keys.queues, self.name)
        pipe.execute()


@dataclass
class Process:
    """A live process of ProcessSet (Ruby Sidekiq or gokogeri node)."""

    identity: str
    info: dict[str, Any]
    busy: int
    beat: float
    quiet: bool
    rss_kb: int
    rtt_us: int
    concurrency: int
    reason: str | None = None  # set when the info JSON is unreadable

    @property
    def hostname(self) -> str:
        return str(self.info.get("hostname", ""))

    @property
    def pid(self) -> Any:
        return self.info.get("pid")

    @property
    def tag(self) -> str:
        return str(self.info.get("tag") or "")

    @property
    def queues(self) -> list[str]:
        q = self.info.get("queues")
        return [str(x) for x in q] if isinstance(q, list) else []

    @property
    def version(self) -> str:
        return str(self.info.get("version") or "")

    @property
    def started_at(self) -> float | None:
        return stamp_to_seconds(self.info.get("started_at"))

    @property
    def embedded(self) -> bool:
        return self.info.get("embedded") is True

    def to_dict(self) -> dict[str, Any]:
        return {
            "identity": self.identity,
            "hostname": self.hostname,
            "pid": self.pid,
            "tag": self.tag,
            "labels": self.info.get("labels") or [],
            "queues": self.queues,
            "concurrency": self.concurrency,
            "busy": self.busy,
            "beat": self.beat,
            "quiet": self.quiet,
            "rss_kb": self.rss_kb,
            "rtt_us": self.rtt_us,
            "version": self.version,
            "started_at": self.started_at,
            "embedded": self.embedded,
            "garbage_reason": self.reason,
        }


@dataclass
class Work:
    """One job in progress (WorkSet): which process and thread, since when."""

    identity: str
    thread: str
    queue: str
    run_at: float
    job: Job | None
    raw: bytes
    reason: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "process": self.identity,
            "thread": self.thread,
            "queue": self.queue,
            "run_at": self.run_at,
        } | _entry_dict(self.job, self.raw, self.reason)


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _float(value: Any) -> float:
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0


class Api:
    """The admin API over one Redis (and namespace).

    ``dead_max_jobs``/``dead_timeout`` trim the dead set on kill, as
    Sidekiq's ``dead_max_jobs``/``dead_timeout_in_seconds`` do.
    """

    def __init__(
        self,
        cm: ConnManager,
        *,
        dead_max_jobs: int = DEAD_MAX_JOBS,
        dead_timeout: float = DEAD_TIMEOUT,
    ) -> None:
        self._cm = cm
        self.dead_max_jobs = dead_max_jobs
        self.dead_timeout = dead_timeout
        keys = cm.keys
        self.scheduled_set = JobSet(self, "scheduled", keys.schedule)
        self.retry_set = JobSet(self, "retry", keys.retry)
        self.dead_set = JobSet(self, "dead", keys.dead)

    @property
    def cm(self) -> ConnManager:
        return self._cm

    def job_set(self, name: SetName) -> JobSet:
        return {"scheduled": self.scheduled_set, "retry": self.retry_set, "dead": self.dead_set}[
            name
        ]

    # --- stats ---

    def queue_names(self) -> list[str]:
        members = cast(set[bytes], self._cm.client.smembers(self._cm.keys.queues))
        return sorted(_text(m) for m in members)

    def stats(self) -> Stats:
        """Sidekiq::Stats (fast and slow parts) plus every queue's latency, in two round trips."""
        keys = self._cm.keys
        client = self._cm.client
        names = self.queue_names()
        procs = sorted(cast(set[bytes], client.smembers(keys.processes)))
        pipe = client.pipeline(transaction=False)
        pipe.get(keys.stat_processed)
        pipe.get(keys.stat_failed)
        pipe.zcard(keys.schedule)
        pipe.zcard(keys.retry)
        pipe.zcard(keys.dead)
        pipe.scard(keys.processes)
        pipe.lindex(keys.queue("default"), -1)
        for q in names:
            pipe.llen(keys.queue(q))
            pipe.lindex(keys.queue(q), -1)
        for p in procs:
            pipe.hget(keys.identity(_text(p)), "busy")
        res: list[Any] = pipe.execute()
        now = time.time()
        sizes: dict[str, int] = {}
        latencies: dict[str, float] = {}
        for i, q in enumerate(names):
            sizes[q] = int(res[7 + 2 * i])
            tail = res[8 + 2 * i]
            latencies[q] = latency_of(_decode(tail)[0], now) if tail is not None else 0.0
        busy = res[7 + 2 * len(names) :]
        default_tail = res[6]
        return Stats(
            processed=_int(res[0]),
            failed=_int(res[1]),
            scheduled_size=int(res[2]),
            retry_size=int(res[3]),
            dead_size=int(res[4]),
            processes_size=int(res[5]),
            queues=sizes,
            workers_size=sum(_int(b) for b in busy),
            default_queue_latency=(
                latency_of(_decode(default_tail)[0], now) if default_tail is not None else 0.0
            ),
            latencies=latencies,
        )

    def history(self, days: int = 7, start: datetime | None = None) -> History:
        """Stats::History: the daily stat keys for ``days`` days back from ``start`` (UTC today)."""
        if not 1 <= days <= 5 * 365:
            raise ValueError("days must be between 1 and 1825 (Sidekiq keeps five years)")
        day0 = (start or datetime.now(UTC)).date()
        dates = [(day0 - timedelta(days=i)).strftime("%Y-%m-%d") for i in range(days)]
        keys = self._cm.keys
        client = self._cm.client
        processed = client.mget([keys.stat_daily("processed", d) for d in dates])
        failed = client.mget([keys.stat_daily("failed", d) for d in dates])
        return History(
            processed={d: _int(v) for d, v in zip(dates, cast(list[Any], processed), strict=True)},
            failed={d: _int(v) for d, v in zip(dates, cast(list[Any], failed), strict=True)},
        )

    def reset_stats(self, *which: str) -> None:
        """Stats#reset: zero stat:processed and/or stat:failed (both by default)."""
        names = [s for s in ("failed", "processed") if not which or s in which]
        keys = self._cm.keys
        mapping = {keys.stat_failed if s == "failed" else keys.stat_processed: 0 for s in names}
        if mapping:
            self._cm.client.mset(cast(Any, mapping))

    # --- queues ---

    def queue(self, name: str) -> Queue:
        return Queue(self, name)

    def queues(self) -> list[QueueInfo]:
        """Every queue in ``queues`` with its size and latency, in one round trip."""
        names = self.queue_names()
        pipe = self._cm.client.pipeline(transaction=False)
        for q in names:
            pipe.llen(self._cm.keys.queue(q))
            pipe.lindex(self._cm.keys.queue(q), -1)
        res: list[Any] = pipe.execute()
        now = time.time()
        out = []
        for i, q in enumerate(names):
            tail = res[2 * i + 1]
            lat = latency_of(_decode(tail)[0], now) if tail is not None else 0.0
            out.append(QueueInfo(q, int(res[2 * i]), lat))
        return out

    # --- sorted sets (the names the first version had) ---

    def retries(self, limit: int = 100, flt: Filter | None = None) -> list[SortedEntry]:
        """Soonest retry first."""
        return self.retry_set.scan(flt or Filter(), limit)

    def dead(self, limit: int = 100, flt: Filter | None = None) -> list[SortedEntry]:
        """Latest death first, as the Web UI's Dead page."""
        return self.dead_set.scan(flt or Filter(), limit, reverse=True)

    def scheduled(self, limit: int = 100, flt: Filter | None = None) -> list[SortedEntry]:
        """Soonest first."""
        return self.scheduled_set.scan(flt or Filter(), limit)

    def find_job(self, jid: str, sets: tuple[SetName, ...] = SET_NAMES) -> SortedEntry | None:
        """The entry with ``jid`` in the first of ``sets`` that has it."""
        for name in sets:
            entry = self.job_set(name).find_job(jid)
            if entry is not None:
                return entry
        return None

    # --- processes and work in progress ---

    def processes(self) -> list[Process]:
        """ProcessSet: identities whose hash still exists (the rest have stopped beating)."""
        keys = self._cm.keys
        client = self._cm.client
        idents = sorted(_text(m) for m in cast(set[bytes], client.smembers(keys.processes)))
        pipe = client.pipeline(transaction=False)
        for ident in idents:
            pipe.hmget(
                keys.identity(ident),
                "info",
                "concurrency",
                "busy",
                "beat",
                "quiet",
                "rss",
                "rtt_us",
            )
        out = []
        for ident, row in zip(idents, cast(list[list[Any]], pipe.execute()), strict=True):
            info_raw, conc, busy, beat, quiet, rss, rtt = row
            if info_raw is None:
                continue
            reason = None
            try:
                info = jsonc.loads(info_raw)
                if not isinstance(info, dict):
                    raise ValueError(f"info is a JSON {type(info).__name__}, not an object")
            except (ValueError, UnicodeDecodeError) as e:
                info, reason = {}, f"unreadable info: {e}"
            # Sidekiq 8.1.2+ keeps concurrency in its own field; older ones in info.
            concurrency = _int(conc) if conc is not None else _int(info.get("concurrency"))
            out.append(
                Process(
                    identity=ident,
                    info=info,
                    busy=_int(busy),
                    beat=_float(beat),
                    quiet=quiet in (b"true", "true"),
                    rss_kb=_int(rss),
                    rtt_us=_int(rtt),
                    concurrency=concurrency,
                    reason=reason,
                )
            )
        return out

    def cleanup_processes(self) -> int:
        """ProcessSet#cleanup: SREM identities whose hash has expired; how many."""
        keys = self._cm.keys
        client = self._cm.client
        idents = sorted(cast(set[bytes], client.smembers(keys.processes)))
        pipe = client.pipeline(transaction=False)
        for ident in idents:
            pipe.hget(keys.identity(_text(ident)), "info")
        gone = [i for i, info in zip(idents, pipe.execute(), strict=True) if info is None]
        return int(client.srem(keys.processes, *gone)) if gone else 0

    def _signal(self, identity: str, sig: str) -> None:
        procs = {p.identity: p for p in self.processes()}
        proc = procs.get(identity)
        if proc is None:
            raise ApiError(f"no live process {identity!r} (see `gokogeri processes`)")
        if proc.embedded:
            # Sidekiq 8 refuses too: an embedded process does not read its signals.
            raise ApiError(f"process {identity!r} is embedded and cannot be signalled")
        key = self._cm.keys.signals(identity)
        pipe = self._cm.client.pipeline(transaction=True)
        pipe.lpush(key, sig)
        pipe.expire(key, SIGNAL_TTL)
        pipe.execute()

    def quiet(self, identity: str) -> None:
        """Process#quiet!: the process stops fetching at its next beat (TSTP)."""
        self._signal(identity, "TSTP")

    def stop(self, identity: str) -> None:
        """Process#stop!: the process shuts down at its next beat (TERM)."""
        self._signal(identity, "TERM")

    def work(self) -> list[Work]:
        """WorkSet: jobs in progress, oldest first, from ``:work`` (6.4.2+) and ``:workers``
        (6.4.0/6.4.1); a thread listed in both counts once."""
        keys = self._cm.keys
        client = self._cm.client
        idents = sorted(_text(m) for m in cast(set[bytes], client.smembers(keys.processes)))
        pipe = client.pipeline(transaction=False)
        for ident in idents:
            pipe.exists(keys.identity(ident))
            pipe.hgetall(keys.work(ident))
            pipe.hgetall(keys.workers(ident))
        res: list[Any] = pipe.execute()
        out: list[Work] = []
        for i, ident in enumerate(idents):
            exists, work, workers = res[3 * i : 3 * i + 3]
            if not exists:
                continue
            merged: dict[bytes, bytes] = dict(workers)
            merged.update(work)
            for tid, value in merged.items():
                out.append(_work_entry(ident, _text(tid), value))
        out.sort(key=lambda w: w.run_at)
        return out


def _work_entry(identity: str, thread: str, value: bytes) -> Work:
    """One ``:work`` hash value: {"queue", "payload" (a JSON string or object), "run_at"}."""
    try:
        hsh = jsonc.loads(value)
    except (ValueError, UnicodeDecodeError) as e:
        return Work(identity, thread, "", 0.0, None, value, f"unreadable work entry: {e}")
    if not isinstance(hsh, dict):
        return Work(identity, thread, "", 0.0, None, value, "work entry is not a JSON object")
    payload = hsh.get("payload")
    raw = payload.encode() if isinstance(payload, str) else jsonc.dumps(payload).encode()
    job, reason = _decode(raw)
    run_at = _run_at_seconds(hsh.get("run_at"))
    return Work(identity, thread, str(hsh.get("queue") or ""), run_at, job, raw, reason)


def _run_at_seconds(value: Any) -> float:
    """run_at is integer seconds in Sidekiq 6/7 and gokogeri, integer ms in Sidekiq 8."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0.0
    return value / 1000.0 if value > 100_000_000_000 else float(value)
