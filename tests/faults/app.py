"""The node the fault tests run: ``python -m gokogeri run tests.faults.app:make_node``.

Everything comes from the environment so a test can start, SIGKILL and
restart it at will:

FAULTS_REDIS_URL    the Redis under test (the one that gets broken)
FAULTS_LEDGER_URL   a second Redis holding the ledger (never broken)
FAULTS_FETCH        reliable (default) | basic
FAULTS_BEAT         heartbeat interval, seconds (0.5)
FAULTS_RESCUE_AFTER seconds of silence before a node's jobs are rescued (1.5)
FAULTS_CONCURRENCY  processor threads (5)
FAULTS_PREFETCH     fixed prefetch (unset: adaptive)
FAULTS_QUEUES       comma-separated, strict order (default)
FAULTS_SCHEDULER    1 (default) | 0
FAULTS_POLL         scheduler poll interval average, seconds (1)
FAULTS_FREEZE       1: every job blocks in server middleware before its worker
                    runs (a node that holds fetched jobs and never finishes one)

The ledger is the ground truth: every job HINCRBYs ``faults:starts`` before it
runs and ``faults:runs`` once it has run, so losses and duplicates are counted,
never guessed. It lives in a Redis that no fault touches, so a job's record
survives whatever happens to the Redis under test.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import redis as redispy

import gokogeri
from gokogeri import redis as gredis
from gokogeri.retry import RetryPolicy

STARTS = "faults:starts"  # HASH jid -> times the job started
RUNS = "faults:runs"  # HASH jid -> times the job ran to the end
DONE_AT = "faults:done_at"  # HASH jid -> time.time() of its last completion

_ledger: redispy.Redis | None = None


def ledger() -> redispy.Redis:
    global _ledger
    if _ledger is None:
        _ledger = redispy.Redis.from_url(os.environ["FAULTS_LEDGER_URL"])
    return _ledger


def _jid(job: gokogeri.Job) -> str:
    return job.jid or "?"


def started(job: gokogeri.Job) -> int:
    return int(ledger().hincrby(STARTS, _jid(job), 1))


def finished(job: gokogeri.Job) -> None:
    pipe = ledger().pipeline(transaction=False)
    pipe.hincrby(RUNS, _jid(job), 1)
    pipe.hset(DONE_AT, _jid(job), repr(time.time()))
    pipe.execute()


def work(ctx: gokogeri.Context, job: gokogeri.Job) -> None:
    """``Work [ms]``: sleep ms (0 if absent) and record the run."""
    started(job)
    ms = job.args[0] if job.args and isinstance(job.args[0], (int, float)) else 0
    if ms:
        time.sleep(ms / 1000.0)
    finished(job)


def poison(ctx: gokogeri.Context, job: gokogeri.Job) -> None:
    """``Poison [delay_s]``: kills its own process, alternating the way it dies:
    odd starts call os._exit(1) (no cleanup at all), even ones SIGKILL."""
    n = started(job)
    delay = job.args[0] if job.args and isinstance(job.args[0], (int, float)) else 0
    if delay:
        time.sleep(float(delay))
    if n % 2:
        os._exit(1)
    os.kill(os.getpid(), signal.SIGKILL)


def make_router() -> gokogeri.Router:
    router = gokogeri.Router()
    router.register("Work", work)
    router.register("Poison", poison)
    return router


def freeze(
    ctx: gokogeri.Context, job: gokogeri.Job, queue: str, call_next: Callable[[], object]
) -> object:
    """Hold the job until shutdown cancels it; it never reaches its worker."""
    ctx.cancelled.wait()
    raise RuntimeError("frozen node shutting down")


def make_node() -> gokogeri.Node:
    env = os.environ
    middleware = gokogeri.ServerChain()
    if env.get("FAULTS_FREEZE") == "1":
        middleware.add(freeze)
    cm = gredis.ConnManager(gredis.Config(url=env["FAULTS_REDIS_URL"]))
    prefetch = env.get("FAULTS_PREFETCH")
    node = gokogeri.Node(
        gokogeri.default_logger(),
        cm,
        fetch=env.get("FAULTS_FETCH", "reliable"),  # type: ignore[arg-type]  # checked by Node
        heartbeat_interval=float(env.get("FAULTS_BEAT", "0.5")),
        rescue_after=float(env.get("FAULTS_RESCUE_AFTER", "1.5")),
        poll_interval_average=float(env.get("FAULTS_POLL", "1")),
        prefetch=int(prefetch) if prefetch else None,
        scheduler=env.get("FAULTS_SCHEDULER", "1") == "1",
        # The fuzz run buries 10,000+ payloads: keep them all to count them.
        retry_policy=RetryPolicy(dead_max_jobs=1_000_000),
        shutdown_timeout=5.0,
        middleware=middleware,
    )
    queues = env.get("FAULTS_QUEUES", "default").split(",")
    node.process_queues(
        gokogeri.OrderedQueueSet(queues), make_router(), int(env.get("FAULTS_CONCURRENCY", "5"))
    )
    return node
