"""A swarm application for tests/test_swarm.py and bench/scale_bench.py.

``python -m tests.swarm_app`` runs ``Swarm(make_node, SWARM_P)`` with settings
from the environment (GOKOGERI_REDIS_URL, SWARM_P, SWARM_MAX_RSS_KB,
SWARM_TIMEOUT, SWARM_FAIL_INDEX, SWARM_BACKOFF, SWARM_CRASH_LIMIT). Jobs:
Record (push a record of itself to swarm:done), Sleep [seconds], Bloat [MiB]
(hold that much memory until the process ends), Call (one Redis INCR), Noop.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import gokogeri
from gokogeri import redis as gredis
from gokogeri.swarm import INDEX_ENV, Swarm

DONE = "swarm:done"
_hoard: list[bytearray] = []  # Bloat's memory, kept for the process's life


def make_router(cm: gredis.ConnManager) -> gokogeri.Router:
    router = gokogeri.Router()
    client = cm.client

    def record(job: gokogeri.Job, **extra: Any) -> None:
        rec = {"jid": job.jid, "pid": os.getpid(), "index": os.environ.get(INDEX_ENV), **extra}
        client.rpush(DONE, json.dumps(rec))

    @router.handle("Record")
    def _record(ctx: gokogeri.Context, job: gokogeri.Job) -> None:
        record(job)

    @router.handle("Sleep")
    def _sleep(ctx: gokogeri.Context, job: gokogeri.Job) -> None:
        deadline = time.monotonic() + float(job.args[0])
        while time.monotonic() < deadline:
            if ctx.cancelled.wait(0.01):
                raise RuntimeError("cancelled")
        record(job)

    @router.handle("Bloat")
    def _bloat(ctx: gokogeri.Context, job: gokogeri.Job) -> None:
        block = bytearray(int(job.args[0]) * 1024 * 1024)
        for i in range(0, len(block), 4096):  # touch every page so it is resident
            block[i] = 1
        _hoard.append(block)
        time.sleep(1.5)  # still running when the parent notices
        record(job)

    @router.handle("Call")
    def _call(ctx: gokogeri.Context, job: gokogeri.Job) -> None:
        client.incr("swarm:calls")

    @router.handle("Noop")
    def _noop(ctx: gokogeri.Context, job: gokogeri.Job) -> None:
        pass

    return router


def make_node(index: int) -> gokogeri.Node:
    env = os.environ
    if env.get("SWARM_FAIL_INDEX") == str(index):
        raise RuntimeError(f"process {index} is configured to fail at start")
    cm = gredis.ConnManager(gredis.Config(url=env["GOKOGERI_REDIS_URL"]))
    node = gokogeri.Node(
        gokogeri.default_logger(),
        cm,
        tag=env.get("SWARM_TAG", "app"),
        heartbeat_interval=float(env.get("SWARM_BEAT", "0.5")),
        rescue_after=float(env.get("SWARM_RESCUE_AFTER", "2")),
        poll_interval_average=1.0,
    )
    node.process_queues(
        gokogeri.OrderedQueueSet(env.get("SWARM_QUEUES", "default").split(",")),
        make_router(cm),
        int(env.get("SWARM_CONCURRENCY", "5")),
    )
    return node


def main() -> int:
    env = os.environ
    low, _, high = env.get("SWARM_BACKOFF", "0.2,2").partition(",")
    swarm = Swarm(
        make_node,
        int(env.get("SWARM_P", "2")),
        max_rss_kb=int(env["SWARM_MAX_RSS_KB"]) if env.get("SWARM_MAX_RSS_KB") else None,
        logger=gokogeri.default_logger(),
        shutdown_timeout=float(env.get("SWARM_TIMEOUT", "5")),
        backoff=(float(low), float(high)),
        crash_limit=int(env.get("SWARM_CRASH_LIMIT", "5")),
    )
    return swarm.run()


if __name__ == "__main__":
    raise SystemExit(main())
