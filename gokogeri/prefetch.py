"""How many jobs the crash-safe fetch holds beyond the running ones.

Hold about PREFETCH_WINDOW seconds of work per thread, judged by the average
job time: hundreds of no-op jobs are fetched per round trip, one per free
thread for jobs that take seconds, so a node never sits on slow jobs other
nodes could run. Pure arithmetic, no Redis: the dispatcher asks, processors
report job times.
"""

from __future__ import annotations

# Most jobs moved by one fetch round trip; keeps one Lua call short so Redis
# stays responsive to other clients.
MAX_BATCH = 100
PREFETCH_WINDOW = 0.005  # seconds of work per thread
MAX_PREFETCH = 200
# Weight of the newest job time in the moving average.
EWMA_WEIGHT = 0.05


class PrefetchSizer:
    def __init__(self, instances: int, fixed: int | None = None) -> None:
        self.instances = instances
        self.fixed = fixed
        # Average job time; written by processors without a lock (a lost
        # update only nudges the prefetch size). None until measured.
        self.job_time: float | None = None
        # Refill when fewer than this many fetched jobs wait in the buffer.
        self.low_water = instances

    def observe(self, seconds: float) -> None:
        avg = self.job_time
        self.job_time = seconds if avg is None else avg * (1 - EWMA_WEIGHT) + seconds * EWMA_WEIGHT

    def extra(self) -> int:
        """Jobs to hold beyond one per thread."""
        if self.fixed is not None:
            return self.fixed
        avg = self.job_time
        if avg is None:
            return self.instances
        per_thread = PREFETCH_WINDOW / max(avg, 1e-6)
        return min(int(self.instances * per_thread), MAX_PREFETCH)

    def want(self, buffered: int, in_flight: int) -> int:
        """How many jobs the next round trip should fetch (0 = none), given the
        jobs waiting in the buffer and all jobs held (buffered + running)."""
        extra = self.extra()
        self.low_water = max(1, extra // 2)
        if buffered >= self.low_water:
            return 0
        return max(0, min(self.instances + extra - in_flight, MAX_BATCH))
