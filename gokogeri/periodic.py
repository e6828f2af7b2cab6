"""Periodic jobs: enqueue a job on a schedule, exactly once per tick across all nodes.

Every node that runs a ``Periodic`` with the same entries tries every tick;
a tick is enqueued by whichever node gets there first, inside one Lua script
that takes the tick's lock (``SET NX EX``) and pushes the job only if it got
the lock. Lock and push are one atomic step, so a node killed at any moment
either enqueued the tick or left it for the others: no tick is lost or
doubled, and there is no leader to elect.

A tick is named by its scheduled time, not by the clock of the node that
fires it, so clocks may disagree: a node whose clock runs ahead fires a tick
early, and the others find its lock. That holds while the skew is smaller
than the lock's lifetime (``LOCK_TTL``, 10 minutes).

The jobs are ordinary Sidekiq jobs (``LPUSH queue:Q`` + ``SADD queues``, as
Sidekiq's client writes them), so any Sidekiq or gokogeri worker can run
them. Their jid is derived from the entry name and the tick (:func:`tick_jid`),
so a tick's job can be found from its time.

Schedules: ``every(seconds)`` ticks at multiples of ``seconds`` since the epoch
(every node agrees on them whenever it started); ``cron(expr)`` takes a
5-field cron expression, or 6 fields with seconds first (``"*/5 * * * * *"``,
as sidekiq-cron writes them), parsed by croniter, in UTC unless ``tz`` is given.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, cast
from zoneinfo import ZoneInfo

import redis as redispy
from croniter import croniter  # type: ignore[import-untyped]  # croniter ships no type hints

from gokogeri import jsonc
from gokogeri.enqueuer import check_queue_name
from gokogeri.job import Job, check_args, now_stamp, stamp_format
from gokogeri.log import nop_logger
from gokogeri.redis import ConnManager

# How long a tick's lock lives: the largest clock skew between nodes (and the
# longest a tick may be late) that still yields exactly one job.
LOCK_TTL = 600
# A tick more than this late (a stalled or long-suspended node) is skipped,
# not enqueued: a burst of old ticks helps nobody.
MAX_LATENESS = 60.0
# How often each node rewrites its entries in the registry `gokogeri cron` reads.
REGISTRY_REFRESH = 30.0
# After a Redis error, try the same tick again this soon.
ERROR_PAUSE = 1.0

# KEYS: tick lock, queue list, queues set, last-run hash.
# ARGV: node identity, lock TTL, payload, queue name, entry name, last-run JSON.
_FIRE_LUA = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  redis.call('LPUSH', KEYS[2], ARGV[3])
  redis.call('SADD', KEYS[3], ARGV[4])
  redis.call('HSET', KEYS[4], ARGV[5], ARGV[6])
  return 1
end
return 0
"""


class Schedule(Protocol):
    kind: str
    spec: str

    def next_after(self, t: float) -> float:
        """The first tick strictly after epoch time ``t``."""
        ...


class Every:
    """Ticks at every multiple of ``seconds`` since the epoch (plus ``offset``)."""

    kind = "every"

    def __init__(self, seconds: float, offset: float = 0.0) -> None:
        if not seconds > 0 or not math.isfinite(seconds):
            raise ValueError(f"every: the period must be a positive number, got {seconds!r}")
        self.seconds = float(seconds)
        self.offset = float(offset) % self.seconds
        self.spec = f"{seconds:g}" if not offset else f"{seconds:g}+{offset:g}"

    def next_after(self, t: float) -> float:
        n = math.floor((t - self.offset) / self.seconds) + 1
        return n * self.seconds + self.offset


class Cron:
    """A cron expression: 5 fields, or 6 with seconds first; in ``tz`` (UTC by default)."""

    kind = "cron"

    def __init__(self, expr: str, tz: str | None = None) -> None:
        self.tz = ZoneInfo(tz) if tz else ZoneInfo("UTC")
        fields = expr.split()
        if len(fields) not in (5, 6):
            raise ValueError(
                f"cron: {expr!r} has {len(fields)} fields; expected 5 (minute hour day month "
                "weekday) or 6 (second first)"
            )
        self._seconds_first = len(fields) == 6
        if not croniter.is_valid(expr, second_at_beginning=self._seconds_first):
            raise ValueError(f"cron: {expr!r} is not a valid cron expression")
        self.expr = expr
        self.spec = expr if tz is None else f"{expr} ({tz})"

    def next_after(self, t: float) -> float:
        start = datetime.fromtimestamp(t, self.tz)
        it = croniter(self.expr, start, second_at_beginning=self._seconds_first)
        return float(it.get_next(float))


def parse_schedule(kind: str, spec: str) -> Schedule:
    """A schedule from its registry form (``kind``, ``spec``), as ``gokogeri cron`` reads it."""
    if kind == "every":
        period, _, offset = spec.partition("+")
        return Every(float(period), float(offset or 0))
    if kind == "cron":
        expr, _, tz = spec.partition(" (")
        return Cron(expr, tz.rstrip(")") or None)
    raise ValueError(f"unknown schedule kind {kind!r}")


def tick_jid(name: str, tick: float) -> str:
    """The jid of entry ``name``'s job for ``tick``: 24 hex characters, like Sidekiq's."""
    return hashlib.sha256(f"{name}\x00{tick!r}".encode()).hexdigest()[:24]


@dataclass
class Entry:
    """One periodic job as this node runs it."""

    name: str
    schedule: Schedule
    template: Job
    next_run: float = 0.0
    last_run: float | None = None  # the last tick this node enqueued
    last_jid: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.schedule.kind,
            "schedule": self.schedule.spec,
            "class": self.template.class_name,
            "queue": self.template.queue,
            "next_run": self.next_run,
            "last_run": self.last_run,
            "last_jid": self.last_jid,
        }


class Periodic:
    """The periodic-job scheduler of one node: ``every``/``cron``, then ``start``/``stop``.

    ``job`` is a Job to copy for every tick (class, queue, args and any
    option) or a class name with ``args``/``queue``. ``name`` identifies the
    entry across nodes (default ``"<class>@<schedule>"``): nodes must use the
    same names for the same entries, and two different entries must differ.
    """

    def __init__(
        self,
        cm: ConnManager,
        logger: logging.Logger | None = None,
        *,
        identity: str = "",
        max_lateness: float = MAX_LATENESS,
        lock_ttl: int = LOCK_TTL,
    ) -> None:
        self._cm = cm
        self._log = logger or nop_logger()
        self.identity = identity or f"periodic:{id(self):x}"
        self.max_lateness = max_lateness
        self.lock_ttl = lock_ttl
        self._entries: dict[str, Entry] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._script: Any = cm.client.register_script(_FIRE_LUA)
        self._last_registry = 0.0

    # --- configuration ---

    def every(
        self,
        seconds: float,
        job: Job | str,
        *,
        args: list[Any] | None = None,
        queue: str = "default",
        name: str | None = None,
        offset: float = 0.0,
    ) -> Entry:
        """Enqueue ``job`` every ``seconds`` (at multiples of it since the epoch, + ``offset``)."""
        return self.add(Every(seconds, offset), job, args=args, queue=queue, name=name)

    def cron(
        self,
        expr: str,
        job: Job | str,
        *,
        args: list[Any] | None = None,
        queue: str = "default",
        name: str | None = None,
        tz: str | None = None,
    ) -> Entry:
        """Enqueue ``job`` at each time ``expr`` matches (5 fields, or 6 with seconds first)."""
        return self.add(Cron(expr, tz), job, args=args, queue=queue, name=name)

    def add(
        self,
        schedule: Schedule,
        job: Job | str,
        *,
        args: list[Any] | None = None,
        queue: str = "default",
        name: str | None = None,
    ) -> Entry:
        template = Job(job, queue, list(args or [])) if isinstance(job, str) else job.copy()
        template.fields.pop("jid", None)
        check_args(template.args)
        check_queue_name(template.queue)
        entry_name = name or f"{template.class_name}@{schedule.kind}:{schedule.spec}"
        entry = Entry(entry_name, schedule, template)
        with self._lock:
            if entry_name in self._entries:
                raise ValueError(f"a periodic entry named {entry_name!r} already exists")
            entry.next_run = schedule.next_after(time.time())
            self._entries[entry_name] = entry
        self._wake.set()
        return entry

    def entries(self) -> list[Entry]:
        with self._lock:
            return list(self._entries.values())

    # --- running ---

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="periodic", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            now = time.time()
            if now - self._last_registry >= REGISTRY_REFRESH:
                self._register(now)
            wait = self.run_due(now)
            self._wake.clear()
            self._wake.wait(max(0.0, min(wait, REGISTRY_REFRESH)))

    def run_due(self, now: float | None = None) -> float:
        """Try every tick that is due; seconds until the next one is."""
        t = time.time() if now is None else now
        wait = REGISTRY_REFRESH
        for entry in self.entries():
            while entry.next_run <= t and not self._stop.is_set():
                tick = entry.next_run
                if t - tick > self.max_lateness:
                    self._log.warning(
                        "periodic %s: skipped the tick of %s, %.0f s late",
                        entry.name,
                        _iso(tick),
                        t - tick,
                    )
                else:
                    try:
                        self.fire(entry, tick)
                    except redispy.RedisError as e:
                        # Try the same tick again shortly; the lock keeps it single.
                        self._log.warning("periodic %s: cannot enqueue: %s", entry.name, e)
                        wait = min(wait, ERROR_PAUSE)
                        break
                entry.next_run = entry.schedule.next_after(tick)
            wait = min(wait, entry.next_run - t)
        return wait

    def fire(self, entry: Entry, tick: float) -> bool:
        """Enqueue ``entry``'s job for ``tick`` unless a node already has; True if this one did."""
        keys = self._cm.keys
        job = entry.template.copy()
        fields = dict(job.fields)
        jid = tick_jid(entry.name, tick)
        fields["jid"] = jid
        fmt = stamp_format(fields, self._cm.config.timestamp_format)
        stamp = now_stamp(fmt)
        fields["created_at"] = stamp
        fields["enqueued_at"] = stamp
        queue = job.queue
        last = jsonc.dumps({"tick": tick, "jid": jid, "at": time.time(), "by": self.identity})
        won = self._script(
            keys=[
                keys.periodic_tick(entry.name, tick),
                keys.queue(queue),
                keys.queues,
                keys.periodic_last,
            ],
            args=[self.identity, self.lock_ttl, jsonc.dumps(fields), queue, entry.name, last],
        )
        if won:
            entry.last_run = tick
            entry.last_jid = jid
            self._log.info(
                "periodic %s: enqueued %s jid=%s for %s",
                entry.name,
                job.class_name,
                jid,
                _iso(tick),
            )
        return bool(won)

    def _register(self, now: float) -> None:
        """Write the entries where `gokogeri cron` finds them (with when this node saw them)."""
        entries = self.entries()
        if not entries:
            return
        mapping = {
            e.name: jsonc.dumps(
                {
                    "name": e.name,
                    "kind": e.schedule.kind,
                    "schedule": e.schedule.spec,
                    "class": e.template.class_name,
                    "queue": e.template.queue,
                    "seen": now,
                    "by": self.identity,
                }
            )
            for e in entries
        }
        try:
            self._cm.client.hset(self._cm.keys.periodic, mapping=cast(Any, mapping))
            self._last_registry = now
        except redispy.RedisError as e:
            self._log.warning("periodic: cannot update the registry: %s", e)
            self._last_registry = now - REGISTRY_REFRESH + ERROR_PAUSE


@dataclass
class Registered:
    """A periodic entry as ``gokogeri cron`` lists it (from any node's registry write)."""

    name: str
    kind: str
    schedule: str
    class_name: str
    queue: str
    seen: float
    last_run: float | None
    last_jid: str | None
    next_run: float | None
    reason: str | None = None  # why the entry could not be read

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "schedule": self.schedule,
            "class": self.class_name,
            "queue": self.queue,
            "seen": self.seen,
            "last_run": self.last_run,
            "last_jid": self.last_jid,
            "next_run": self.next_run,
            "error": self.reason,
        }


def registered(cm: ConnManager, now: float | None = None) -> list[Registered]:
    """Every entry any node has registered, with its last and next run. Never raises on garbage."""
    t = time.time() if now is None else now
    client = cm.client
    pipe = client.pipeline(transaction=False)
    pipe.hgetall(cm.keys.periodic)
    pipe.hgetall(cm.keys.periodic_last)
    regs, lasts = cast(list[dict[bytes, bytes]], pipe.execute())
    out = []
    for raw_name, raw in sorted(regs.items()):
        name = raw_name.decode("utf-8", "replace")
        try:
            info = jsonc.loads(raw)
            if not isinstance(info, dict):
                raise ValueError("not a JSON object")
            kind, spec = str(info.get("kind")), str(info.get("schedule"))
            reg = Registered(
                name, kind, spec, str(info.get("class")), str(info.get("queue")),
                float(info.get("seen") or 0), None, None, None,
            )  # fmt: skip
        except (ValueError, TypeError, UnicodeDecodeError) as e:
            out.append(Registered(name, "?", "?", "?", "?", 0.0, None, None, None, str(e)))
            continue
        try:
            reg.next_run = parse_schedule(kind, spec).next_after(t)
        except (ValueError, KeyError) as e:
            reg.reason = f"bad schedule: {e}"
        last_raw = lasts.get(raw_name)
        if last_raw is not None:
            try:
                last = jsonc.loads(last_raw)
                reg.last_run = float(last["tick"])
                reg.last_jid = str(last["jid"])
            except (ValueError, TypeError, KeyError, UnicodeDecodeError):
                reg.reason = "unreadable last run"
        out.append(reg)
    return out


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")
