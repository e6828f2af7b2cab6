"""Dramatiq peer: actors and queue filler. Runs under bench/.venv/dramatiq.

Worker: ``dramatiq peer_dramatiq --processes 1 --threads 10`` (one process).
"""

from __future__ import annotations

import os
import sys

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker

URL = os.environ["BENCH_REDIS_URL"]
broker = RedisBroker(url=URL)
dramatiq.set_broker(broker)
_r = redis.Redis.from_url(URL)


@dramatiq.actor(queue_name="default")
def noop(*args: object) -> None:
    pass


@dramatiq.actor(queue_name="default")
def incr(*args: object) -> None:
    _r.incr("bench:done")


def fill(n: int, kind: str) -> None:
    actor = noop if kind == "noop" else incr
    for i in range(n):
        actor.send("string", i, {"mike": "bob"})


if __name__ == "__main__":
    # Import ourselves by name: tasks registered under __main__ would not
    # resolve in the worker process.
    import peer_dramatiq

    peer_dramatiq.fill(int(sys.argv[2]), sys.argv[3])
