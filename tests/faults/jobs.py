"""Putting ``Work`` and ``Poison`` jobs (tests.faults.app) into the Redis under test."""

from __future__ import annotations

import time

import redis as redispy

from gokogeri import Enqueuer, Job
from gokogeri import redis as gredis
from gokogeri.job import new_jid


def enqueue_work(url: str, n: int, ms: int = 0, queue: str = "default") -> list[str]:
    """``n`` Work jobs through gokogeri's own Enqueuer (push_bulk's shape)."""
    with gredis.ConnManager(gredis.Config(url=url)) as cm:
        jids = Enqueuer(cm).enqueue_many(Job("Work", queue=queue), [[ms]] * n)
    return [j for j in jids if j is not None]


def push_oldest_first(r: redispy.Redis, payloads: list[bytes], queue: str = "default") -> None:
    """LPUSH in order, so the first payload is the first one fetched (RPOP side)."""
    r.sadd("queues", queue)
    for start in range(0, len(payloads), 1000):
        r.lpush(f"queue:{queue}", *payloads[start : start + 1000])


def payload(cls: str, args: list[object], queue: str = "default") -> tuple[str, bytes]:
    jid = new_jid()
    now = time.time()
    job = Job(cls, queue=queue, args=list(args), jid=jid, created_at=now, enqueued_at=now)
    return jid, job.encode().encode()
