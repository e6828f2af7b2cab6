"""RQ peer: jobs and queue filler. Runs under bench/.venv/rq (see peers.py).

Worker (started by the harness): ``rq worker -w rq.worker.SimpleWorker --burst``,
RQ's documented fast setup (no fork per job).
"""

from __future__ import annotations

import os
import sys

import redis
from rq import Queue

URL = os.environ["BENCH_REDIS_URL"]
_r = redis.Redis.from_url(URL)


def noop(*args: object) -> None:
    pass


def incr(*args: object) -> None:
    _r.incr("bench:done")


def fill(n: int, kind: str) -> None:
    q = Queue("default", connection=redis.Redis.from_url(URL))
    fn = noop if kind == "noop" else incr
    for base in range(0, n, 1000):
        q.enqueue_many(
            [
                Queue.prepare_data(fn, args=("string", i, {"mike": "bob"}))
                for i in range(base, min(n, base + 1000))
            ]
        )


if __name__ == "__main__":
    # Import ourselves by name: tasks registered under __main__ would not
    # resolve in the worker process.
    import peer_rq

    peer_rq.fill(int(sys.argv[2]), sys.argv[3])
