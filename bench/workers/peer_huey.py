"""huey peer: tasks and queue filler. Runs under bench/.venv/huey.

Worker: ``huey_consumer peer_huey.huey -w 10 -k thread`` (thread consumer,
blocking BRPOP dequeue, huey's default for Redis).
"""

from __future__ import annotations

import os
import sys

import redis
from huey import RedisHuey

URL = os.environ["BENCH_REDIS_URL"]
huey = RedisHuey("bench", url=URL)
_r = redis.Redis.from_url(URL)


@huey.task()
def noop(*args: object) -> None:
    pass


@huey.task()
def incr(*args: object) -> None:
    _r.incr("bench:done")


def fill(n: int, kind: str) -> None:
    task = noop if kind == "noop" else incr
    for i in range(n):
        task("string", i, {"mike": "bob"})


if __name__ == "__main__":
    # Import ourselves by name: tasks registered under __main__ would not
    # resolve in the worker process.
    import peer_huey

    peer_huey.fill(int(sys.argv[2]), sys.argv[3])
