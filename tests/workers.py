"""Workers and a node factory for tests that run a node in a separate process.

``python -m gokogeri run tests.workers:make_node`` builds the node from
environment variables, so a test can start it, SIGKILL it, and start another.
"""

from __future__ import annotations

import asyncio
import json
import os
import time

import redis as redispy

import gokogeri
from gokogeri import redis as gredis

DONE = "test:done"
STARTED = "test:started"


class Recorder:
    """Records each job's start and end in Redis lists: the test's ground truth."""

    def __init__(self, url: str) -> None:
        self.r = redispy.Redis.from_url(url)

    def start(self, job: gokogeri.Job) -> None:
        self.r.rpush(STARTED, json.dumps({"jid": job.jid, "pid": os.getpid(), "t": time.time()}))

    def done(self, job: gokogeri.Job, **extra: object) -> None:
        rec = {
            "jid": job.jid,
            "class": job.class_name,
            "args": job.args,
            "pid": os.getpid(),
            "t": time.time(),
        }
        rec.update(extra)
        self.r.rpush(DONE, json.dumps(rec))


def make_router(url: str) -> gokogeri.Router:
    rec = Recorder(url)
    router = gokogeri.Router()

    @router.handle("Record")
    def record(ctx: gokogeri.Context, job: gokogeri.Job) -> None:
        rec.done(job)

    @router.handle("Sleep")
    def sleep(ctx: gokogeri.Context, job: gokogeri.Job) -> None:
        rec.start(job)
        deadline = time.monotonic() + float(job.args[0])
        while time.monotonic() < deadline:
            if ctx.cancelled.wait(0.01):
                raise RuntimeError("cancelled")
        rec.done(job)

    @router.handle("Fail")
    def fail(ctx: gokogeri.Context, job: gokogeri.Job) -> None:
        raise ValueError(f"failing on purpose: {job.args[0] if job.args else ''}")

    @router.handle("AsyncSleep")
    async def async_sleep(ctx: gokogeri.Context, job: gokogeri.Job) -> None:
        rec.start(job)
        await asyncio.sleep(float(job.args[0]))
        rec.done(job, mode="async")

    @router.handle("KillNode")
    def kill_node(ctx: gokogeri.Context, job: gokogeri.Job) -> None:
        rec.start(job)
        os.kill(os.getpid(), 9)

    return router


def make_node() -> gokogeri.Node:
    env = os.environ
    url = env["GOKOGERI_REDIS_URL"]
    cm = gredis.ConnManager(gredis.Config(url=url))
    node = gokogeri.Node(
        gokogeri.default_logger(),
        cm,
        fetch=env.get("TEST_FETCH", "reliable"),  # type: ignore[arg-type]
        heartbeat_interval=float(env.get("TEST_BEAT", "0.5")),
        rescue_after=float(env.get("TEST_RESCUE_AFTER", "2")),
        poll_interval_average=float(env.get("TEST_POLL", "1")),
        prefetch=int(env["TEST_PREFETCH"]) if "TEST_PREFETCH" in env else None,
    )
    queues = env.get("TEST_QUEUES", "default").split(",")
    node.process_queues(
        gokogeri.OrderedQueueSet(queues), make_router(url), int(env.get("TEST_CONCURRENCY", "5"))
    )
    return node


def router() -> gokogeri.Router:
    """Factory for ``gokogeri run tests.workers:router -q ... -c ...``."""
    return make_router(os.environ["GOKOGERI_REDIS_URL"])
