"""Sidekiq 7/8 execution metrics for jobs a Python node runs (the Web UI's Metrics tab).

An observer (see gokogeri/events.py) that does what Sidekiq's
``Sidekiq::Metrics::ExecutionTracker`` (lib/sidekiq/metrics/tracking.rb and
shared.rb, 7.3.2 and 8.1.7) does: count each job per class (``wrapped ||
class``) in memory, then on every heartbeat write the counts into the very keys,
fields, encodings and TTLs Sidekiq's own tracker writes, so
``Sidekiq::Metrics::Query`` and the Metrics page add Python runs to Ruby ones.

What is written at each flush (``now`` = the flush time, UTC, as in Sidekiq):

- HINCRBY ``j|<bucket>`` ``<Class>|p`` (every run), ``<Class>|f`` (runs that
  raised) and ``<Class>|ms`` (milliseconds of successful runs only: Sidekiq
  leaves failures out of the time because they are unpredictable), then EXPIRE:
  7.x: one bucket per minute, ``j|%Y%m%d|%-H:%-M``, 8 hours;
  8.x: ``j|%y%m%d|%-H:%M`` (8 hours) plus its 10-minute rollup, the same string
  minus its last digit (3 days).
- A histogram of successful run times per class and minute: 26 unsigned 16-bit
  counters in one string, ``BITFIELD key OVERFLOW SAT INCRBY u16 #i n``, then
  EXPIRE 8 hours; key ``<Class>-%d-%H:%-M`` (7.x), ``h|<Class>-%-d-%-H:%-M`` (8.x).

Sidekiq 6 has no execution metrics: with ``compat="6"`` the observer does nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from bisect import bisect_right
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from gokogeri.events import JobEvent
from gokogeri.keys import Keys
from gokogeri.retry import Compat

if TYPE_CHECKING:
    from gokogeri.node import Node

log = logging.getLogger("gokogeri.metrics")

# Upper bounds (exclusive, in ms) of the histogram's buckets, Sidekiq's BUCKET_INTERVALS;
# anything at or beyond the last finite bound (335 s) lands in the 26th, "Slow".
BUCKET_BOUNDS_MS: tuple[int, ...] = (
    20, 30, 45, 65, 100, 150, 225, 335, 500, 750,
    1100, 1700, 2500, 3800, 5750, 8500, 13000, 20000, 30000, 45000,
    65000, 100000, 150000, 225000, 335000,
)  # fmt: skip
BUCKETS = len(BUCKET_BOUNDS_MS) + 1  # 26
SHORT_TERM = 8 * 60 * 60  # per-minute job hash, and every histogram
MID_TERM = 3 * 24 * 60 * 60  # 8.x's 10-minute rollup
HISTOGRAM_TTL = 8 * 60 * 60

# Outcomes that ran the job and raised; "invalid" payloads never reached a worker,
# as a payload Sidekiq cannot parse never reaches its metrics middleware.
_FAILED = frozenset(("retry", "dead", "drop"))


def bucket_index(ms: float) -> int:
    """The histogram bucket of a run of ``ms`` milliseconds (Sidekiq's record_time)."""
    return bisect_right(BUCKET_BOUNDS_MS, ms)


def minute_buckets(now: datetime, major: int) -> list[tuple[str, int]]:
    """The ``j|`` buckets (without the ``j|``) a flush at ``now`` writes, with their TTLs."""
    if major >= 8:
        short = f"{now:%y%m%d}|{now.hour}:{now:%M}"
        return [(short[:-1], MID_TERM), (short, SHORT_TERM)]
    return [(f"{now:%Y%m%d}|{now.hour}:{now.minute}", SHORT_TERM)]


def histogram_window(now: datetime, major: int) -> str:
    """The time part of a histogram key: 7.x ``%d-%H:%-M``, 8.x ``%-d-%-H:%-M``."""
    if major >= 8:
        return f"{now.day}-{now.hour}:{now.minute}"
    return f"{now:%d-%H}:{now.minute}"


# Per class since the last flush: [runs, failures, ms of successful runs, histogram or
# None]. A list, not an object: job_finished runs once per job on the hot path. The
# histogram exists once the class has a success, as Sidekiq creates "Class|ms" and the
# class's Histogram only then.
_Stats = list[Any]


class SidekiqMetrics:
    """Observer: Sidekiq 7/8 execution metrics for the jobs this node runs.

    ``Node(..., observers=[SidekiqMetrics(compat="8")])``. ``compat`` is the
    Sidekiq whose key layout to write ("8" for 8.x, "7" for 7.x, "6": off),
    normally the node's ``RetryPolicy.compat``. ``keys`` only matters with a
    namespace, which Sidekiq 7/8 do not have.
    """

    def __init__(self, compat: Compat = "8", keys: Keys | None = None) -> None:
        if compat not in ("8", "7", "6"):
            raise ValueError(f"compat must be '8', '7' or '6', got {compat!r}")
        self.compat: Compat = compat
        self.enabled = compat != "6"
        self._major = int(compat)
        self._keys = keys if keys is not None else Keys()
        self._lock = threading.Lock()
        self._buf: dict[str, _Stats] = {}

    @classmethod
    def attach(cls, node: Node) -> SidekiqMetrics:
        """A tracker with the node's Sidekiq compat (``node.retry_policy.compat``) and
        keys, added to the node's observers (before ``run()``). A node that already
        has one keeps it (counting every job twice would double the Metrics tab)."""
        for obs in node.runtime.observers:
            if isinstance(obs, SidekiqMetrics):
                return obs
        metrics = cls(node.retry_policy.compat, node.cm.keys)
        node.add_observer(metrics)
        return metrics

    # --- the observer contract ---

    def job_finished(self, event: JobEvent) -> None:
        if not self.enabled:
            return
        klass = event.class_name
        status = event.status
        if status == "done":
            ms = event.seconds * 1000.0
            idx = bisect_right(BUCKET_BOUNDS_MS, ms)
            with self._lock:
                st = self._buf.get(klass)
                if st is None:
                    st = self._buf[klass] = [0, 0, 0.0, None]
                st[0] += 1
                st[2] += ms
                gram = st[3]
                if gram is None:
                    gram = st[3] = [0] * BUCKETS
                gram[idx] += 1
        elif status in _FAILED and klass:
            with self._lock:
                st = self._buf.get(klass)
                if st is None:
                    st = self._buf[klass] = [0, 0, 0.0, None]
                st[0] += 1
                st[1] += 1

    def beat(self, client: Any) -> None:
        self.flush(client)

    def close(self, client: Any) -> None:
        self.flush(client)

    # --- flushing ---

    def flush(self, client: Any, now: float | None = None) -> int:
        """Write what was counted since the last flush; the number of hash fields written.

        ``now`` (epoch seconds) picks the time buckets; default: the current time,
        as Sidekiq's flush uses. Like Sidekiq, the buffer is taken before writing,
        so a Redis error loses that interval's counts rather than double-counting.
        """
        if not self.enabled:
            return 0
        with self._lock:
            buf, self._buf = self._buf, {}
        if not buf:
            return 0
        at = datetime.fromtimestamp(time.time() if now is None else now, UTC)
        keys = self._keys
        major = self._major
        pipe = client.pipeline(transaction=False)
        window = histogram_window(at, major)
        fields: dict[str, int] = {}
        for klass, (runs, failures, ms, gram) in buf.items():
            fields[klass + "|p"] = runs
            if failures:
                fields[klass + "|f"] = failures
            if gram is None:
                continue
            # Sidekiq adds integer ms per run (a monotonic ms clock's difference); the
            # sum of exact times, rounded once, is the same total without its jitter.
            fields[klass + "|ms"] = round(ms)
            key = keys.metrics_histogram(klass, window, major)
            cmd: list[Any] = ["BITFIELD", key, "OVERFLOW", "SAT"]
            for idx, n in enumerate(gram):
                if n:
                    cmd += ["INCRBY", "u16", f"#{idx}", n]
            pipe.execute_command(*cmd)
            pipe.expire(key, HISTOGRAM_TTL)
        for bucket, ttl in minute_buckets(at, major):
            stats = keys.metrics_jobs(bucket)
            for field, n in fields.items():
                pipe.hincrby(stats, field, n)
            pipe.expire(stats, ttl)
        pipe.execute()
        log.debug("Flushed %d metrics", len(fields))
        return len(fields)
