"""A gokogeri node for the benchmarks, run as its own process by the harness.

Jobs (same class names as sidekiq_jobs.rb where Sidekiq has one, so one
payload serves both):

- NoopJob does nothing;
- IncrJob INCRs ``bench:done`` through a module-level redis-py client (what a
  user's job does; Ruby: ``Sidekiq.redis { |c| c.incr }``), an exact
  completion signal that costs one round trip per job;
- IncrCtxJob INCRs through ``ctx.redis``, the connection the runtime offers
  jobs (only where the library under test has one);
- IncrTLJob INCRs through a module-level ``gokogeri.ThreadLocalRedis`` (where
  the library has it): the module-level client, one connection per thread;
- SleepJob sleeps 1 ms (``time.sleep(0.001)``; Ruby: ``sleep 0.001``);
- AsyncNoopJob, AsyncSleepJob (``await asyncio.sleep(0.001)``) and
  AsyncIncrJob (a module-level ``redis.asyncio`` client), AsyncIncrCtxJob
  (``ctx.aredis``): ``async def`` jobs, registered only where the library runs
  coroutines (and offers ``ctx.aredis``);
- DeltaJob RPUSHes ``now - args[0]`` to ``bench:lat`` (start latency or
  scheduled lateness, depending on what args[0] is).

The harness may point PYTHONPATH at another checkout of gokogeri (A/B runs
against a git ref): the first log line says which library was imported, and
the harness checks it. BENCH_SWITCH_INTERVAL (seconds) sets
``sys.setswitchinterval`` before anything starts; BENCH_PATCH applies
prototype runtime changes (gk_patches.py); BENCH_TIMING installs the probes
of gk_probe.py.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib
import json
import os
import signal
import sys
import threading
import time
from typing import Any

import redis as redispy
import redis.asyncio as aredis

import gokogeri
from gokogeri import redis as gredis


def supports_ctx_redis() -> bool:
    """Whether this gokogeri offers jobs a connection as ``ctx.redis``."""
    ctx = gokogeri.Context
    fields = {f.name for f in dataclasses.fields(ctx)} if dataclasses.is_dataclass(ctx) else set()
    return "redis" in fields or hasattr(ctx, "redis")


def supports_async() -> bool:
    """Whether this gokogeri runs ``async def`` jobs (older trees would call
    the function and drop the coroutine unawaited)."""
    from gokogeri import worker

    return hasattr(worker, "is_async")


class Timing:
    """Per-thread sums, no lock: each thread writes only its own entry."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._all: list[list[float]] = []
        self._lock = threading.Lock()

    def record(self, t0: float, t1: float) -> None:
        st: list[float] | None = getattr(self._local, "st", None)
        if st is None:
            st = self._local.st = [0, 0.0, 0.0, 0, t1]  # jobs, io_s, gap_s, gaps, last end
            with self._lock:
                self._all.append(st)
        else:
            gap = t0 - st[4]
            if gap < 0.05:  # a longer gap is the queue running dry, not overhead
                st[2] += gap
                st[3] += 1
        st[0] += 1
        st[1] += t1 - t0
        st[4] = t1

    def summary(self) -> dict[str, float]:
        jobs = sum(s[0] for s in self._all)
        gaps = sum(s[3] for s in self._all)
        return {
            "threads": len(self._all),
            "jobs": jobs,
            "io_us_per_job": 1e6 * sum(s[1] for s in self._all) / max(jobs, 1),
            "gap_us_per_job": 1e6 * sum(s[2] for s in self._all) / max(gaps, 1),
        }


_TIMING: Timing | None = None


def register_sync(router: gokogeri.Router, user_client: redispy.Redis, client: redispy.Redis) -> None:
    global _TIMING
    router.register("NoopJob", lambda ctx, job: None)
    if os.environ.get("BENCH_TIMING"):
        # Profiling aid (bench/ioprof.py): how long the job's own INCR takes as
        # seen by its thread, the gap to the next job's INCR, and the runtime's
        # steps (gk_probe.py).
        timing = _TIMING = Timing()
        probe: Any = importlib.import_module("gk_probe")  # bench/workers is sys.path[0]
        probe.install()

        def incr_timed(ctx: gokogeri.Context, job: gokogeri.Job) -> None:
            t0 = time.perf_counter()
            user_client.incr("bench:done")
            timing.record(t0, time.perf_counter())

        router.register("IncrJob", incr_timed)
    else:
        router.register("IncrJob", lambda ctx, job: user_client.incr("bench:done"))
    router.register("SleepJob", lambda ctx, job: time.sleep(0.001))
    if supports_ctx_redis():
        def incr_ctx(ctx: gokogeri.Context, job: gokogeri.Job) -> None:
            getattr(ctx, "redis").incr("bench:done")  # noqa: B009  # only on trees that have it

        router.register("IncrCtxJob", incr_ctx)

    tl_class = getattr(gokogeri, "ThreadLocalRedis", None)
    if tl_class is not None:
        tl_client = tl_class(connection_pool=user_client.connection_pool)
        router.register("IncrTLJob", lambda ctx, job: tl_client.incr("bench:done"))

    def delta(ctx: gokogeri.Context, job: gokogeri.Job) -> None:
        started = time.time()  # first thing: what we measure is the start
        client.rpush("bench:lat", repr(started - float(job.args[0])))

    router.register("DeltaJob", delta)


def register_async(router: gokogeri.Router, url: str) -> None:
    # One asyncio client per process, bound to the pool's loop on first use.
    aclient: list[Any] = []

    async def async_noop(ctx: gokogeri.Context, job: gokogeri.Job) -> None:
        return None

    async def async_sleep(ctx: gokogeri.Context, job: gokogeri.Job) -> None:
        await asyncio.sleep(0.001)

    async def async_incr(ctx: gokogeri.Context, job: gokogeri.Job) -> None:
        if not aclient:
            aclient.append(aredis.Redis.from_url(url))
        await aclient[0].incr("bench:done")

    router.register("AsyncNoopJob", async_noop)
    router.register("AsyncSleepJob", async_sleep)
    router.register("AsyncIncrJob", async_incr)
    ll_class = getattr(gokogeri, "LoopLocalRedis", None)  # newer trees only
    if ll_class is not None:
        ll_client = ll_class.from_url(url)  # module-level in a real app

        async def async_incr_ll(ctx: gokogeri.Context, job: gokogeri.Job) -> None:
            await ll_client.incr("bench:done")

        router.register("AsyncIncrLLJob", async_incr_ll)
    if hasattr(gokogeri.Context, "aredis"):
        async def async_incr_ctx(ctx: gokogeri.Context, job: gokogeri.Job) -> None:
            await getattr(ctx, "aredis").incr("bench:done")  # noqa: B009  # newer trees only

        router.register("AsyncIncrCtxJob", async_incr_ctx)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--fetch", choices=["reliable", "basic"], default="reliable")
    p.add_argument("--concurrency", type=int, default=10)
    p.add_argument("--log", choices=["on", "off"], default="off")
    p.add_argument("--metrics", choices=["on", "off"], default="off")
    # "async": register only the async jobs, as an all-async app would (a pool
    # whose jobs are all coroutines may take a faster path than a mixed one).
    p.add_argument("--jobs", choices=["all", "async"], default="all")
    a = p.parse_args()

    switch = os.environ.get("BENCH_SWITCH_INTERVAL")
    if switch:
        sys.setswitchinterval(float(switch))
    # Prototype runtime changes, measured before anyone makes them (gk_patches.py).
    patches: list[str] = importlib.import_module("gk_patches").apply_from_env()
    # Read by the harness (first line of the log): which library this process runs.
    print(f"bench-node gokogeri={os.path.dirname(gokogeri.__file__)} "
          f"switchinterval={sys.getswitchinterval()} patches={','.join(patches) or '-'}",
          flush=True)

    cm = gredis.ConnManager(gredis.Config(url=a.url))
    client = cm.client
    # A user's own client, created once at import time in a real app.
    user_client = redispy.Redis.from_url(a.url)
    router = gokogeri.Router()
    if a.jobs == "all":
        register_sync(router, user_client, client)
    if supports_async():
        register_async(router, a.url)
    logger = gokogeri.default_logger() if a.log == "on" else gokogeri.nop_logger()
    observers: list[Any] = []
    if a.metrics == "on":
        from gokogeri.metrics import SidekiqMetrics

        # compat "8": enabled (compat "6" would count nothing).
        observers.append(SidekiqMetrics(compat="8", keys=cm.keys))
    kwargs: dict[str, Any] = {"observers": observers} if observers else {}
    node = gokogeri.Node(logger, cm, fetch=a.fetch, **kwargs)
    node.process_queues(gokogeri.OrderedQueueSet(["default"]), router, instances=a.concurrency)
    signal.signal(signal.SIGTERM, lambda s, f: node.request_stop())
    signal.signal(signal.SIGINT, lambda s, f: node.request_stop())
    node.run()
    if _TIMING is not None:
        summary: dict[str, Any] = _TIMING.summary()
        summary.update(importlib.import_module("gk_probe").summary(int(summary["jobs"])))
        print("bench-timing " + json.dumps(summary), flush=True)
    user_client.close()
    cm.close()


if __name__ == "__main__":
    main()
