"""Inspection, as Sidekiq's API offers it: stats, queue sizes, the sorted sets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from gokogeri.job import Job
from gokogeri.redis import ConnManager


@dataclass
class Stats:
    processed: int
    failed: int
    scheduled_size: int
    retry_size: int
    dead_size: int
    processes_size: int
    queues: dict[str, int]

    @property
    def enqueued(self) -> int:
        return sum(self.queues.values())


@dataclass
class SortedEntry:
    """A member of schedule, retry or dead, with its score (a time, epoch seconds)."""

    score: float
    job: Job


class Api:
    def __init__(self, cm: ConnManager) -> None:
        self._cm = cm

    def stats(self) -> Stats:
        keys = self._cm.keys
        client = self._cm.client
        names = sorted(m.decode() for m in cast(set[bytes], client.smembers(keys.queues)))
        pipe = client.pipeline(transaction=False)
        pipe.get(keys.stat_processed)
        pipe.get(keys.stat_failed)
        pipe.zcard(keys.schedule)
        pipe.zcard(keys.retry)
        pipe.zcard(keys.dead)
        pipe.scard(keys.processes)
        for q in names:
            pipe.llen(keys.queue(q))
        res: list[Any] = pipe.execute()
        return Stats(
            processed=int(res[0] or 0),
            failed=int(res[1] or 0),
            scheduled_size=int(res[2]),
            retry_size=int(res[3]),
            dead_size=int(res[4]),
            processes_size=int(res[5]),
            queues={q: int(n) for q, n in zip(names, res[6:], strict=True)},
        )

    def _sorted(self, key: str, limit: int) -> list[SortedEntry]:
        rows = cast(
            list[tuple[bytes, float]],
            self._cm.client.zrange(key, 0, limit - 1, withscores=True),
        )
        return [SortedEntry(score, Job.decode(member)) for member, score in rows]

    def retries(self, limit: int = 100) -> list[SortedEntry]:
        return self._sorted(self._cm.keys.retry, limit)

    def dead(self, limit: int = 100) -> list[SortedEntry]:
        return self._sorted(self._cm.keys.dead, limit)

    def scheduled(self, limit: int = 100) -> list[SortedEntry]:
        return self._sorted(self._cm.keys.schedule, limit)
