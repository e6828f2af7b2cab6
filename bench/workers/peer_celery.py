"""Celery peer: tasks and queue filler. Runs under bench/.venv/celery.

Worker: ``celery -A peer_celery worker --pool threads -c 10 --without-gossip
--without-mingle --without-heartbeat`` (one process, threads pool; the three
flags are Celery's documented way to cut per-worker broker chatter).
"""

from __future__ import annotations

import os
import sys

import redis
from celery import Celery

URL = os.environ["BENCH_REDIS_URL"]
app = Celery("peer_celery", broker=URL)
app.conf.task_ignore_result = True
_r = redis.Redis.from_url(URL)


@app.task(name="noop")
def noop(*args: object) -> None:
    pass


@app.task(name="incr")
def incr(*args: object) -> None:
    _r.incr("bench:done")


def fill(n: int, kind: str) -> None:
    task = noop if kind == "noop" else incr
    with app.producer_or_acquire() as producer:
        for i in range(n):
            task.apply_async(("string", i, {"mike": "bob"}), producer=producer)


if __name__ == "__main__":
    # Import ourselves by name: tasks registered under __main__ would not
    # resolve in the worker process.
    import peer_celery

    peer_celery.fill(int(sys.argv[2]), sys.argv[3])
