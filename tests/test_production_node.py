"""The production node (issue: no silent failures, async jobs, hooks, `gokogeri run`).

Each defect the issue lists has a regression test here, against a real Redis
and, where the defect was about the command, a real `gokogeri run` process.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import redis as redispy

import gokogeri
from gokogeri import Enqueuer, Job
from gokogeri import redis as gredis
from gokogeri.log import BufferedStreamHandler, KeyValueFormatter
from tests.conftest import NodeProcess, NodeThread, needs_sidekiq, ruby, wait_for
from tests.workers import DONE, STARTED

ROOT = Path(__file__).parent.parent


def quick_node(
    cm: gredis.ConnManager, logger: logging.Logger | None = None, **kw: Any
) -> gokogeri.Node:
    kw.setdefault("heartbeat_interval", 0.5)
    kw.setdefault("rescue_after", 2.0)
    kw.setdefault("poll_interval_average", 0.5)
    return gokogeri.Node(logger or gokogeri.nop_logger(), cm, **kw)


def capture_logger(name: str) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    logger = logging.getLogger(f"gokogeri.test.{name}.{time.monotonic_ns()}")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(KeyValueFormatter())
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, stream


# --- async jobs ---


def test_async_handler_body_runs_and_is_acknowledged(
    cm: gredis.ConnManager, r: redispy.Redis
) -> None:
    ran: list[int] = []
    router = gokogeri.Router()

    @router.handle("AsyncJob")
    async def handle(ctx: gokogeri.Context, job: Job) -> None:
        await asyncio.sleep(0)
        ran.append(job.args[0])

    node = quick_node(cm)
    node.process_queues(gokogeri.OrderedQueueSet(["default"]), router, 2)
    Enqueuer(cm).enqueue_bulk([Job("AsyncJob", args=[i]) for i in range(20)])
    with NodeThread(node):
        wait_for(lambda: len(ran) == 20)
        wait_for(lambda: not r.keys("gokogeri:working:*"))
    assert sorted(ran) == list(range(20))
    assert r.zcard("retry") == 0 and r.zcard("dead") == 0


def test_1000_async_jobs_run_100_at_a_time_mixed_with_sync(
    cm: gredis.ConnManager, r: redispy.Redis
) -> None:
    lock = threading.Lock()
    running = 0
    peak = 0
    done: Counter[str] = Counter()
    router = gokogeri.Router()

    @router.handle("AsyncSleep")
    async def slow(ctx: gokogeri.Context, job: Job) -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        await asyncio.sleep(0.01)
        with lock:
            running -= 1
            done["async"] += 1

    @router.handle("SyncJob")
    def sync(ctx: gokogeri.Context, job: Job) -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.005)
        with lock:
            running -= 1
            done["sync"] += 1

    e = Enqueuer(cm)
    jobs = [Job("AsyncSleep", args=[i]) for i in range(1000)]
    jobs += [Job("SyncJob", args=[i]) for i in range(200)]
    e.enqueue_bulk(jobs[i] for i in random.Random(7).sample(range(1200), 1200))
    node = quick_node(cm)
    node.process_queues(gokogeri.OrderedQueueSet(["default"]), router, 100)
    pool = node._pools[0]
    with NodeThread(node):
        wait_for(lambda: done["async"] == 1000 and done["sync"] == 200, timeout=30)
    # Threads hand async jobs to the loop and go on (no server middleware)...
    assert pool._handover and not pool.async_fast
    # ...and the 100 slots still bound every job running, sync or async.
    # Concurrency is real: most of them were busy at the same time.
    assert 50 <= peak <= 100, peak
    assert r.zcard("retry") == 0


def test_all_async_pool_hands_jobs_over_in_batches_but_never_over_its_slots(
    cm: gredis.ConnManager, r: redispy.Redis
) -> None:
    """The fast path's feeder passes already-fetched jobs to the loop in
    batches; a batch never holds more jobs than free slots, and a stop waits
    for the coroutines it started."""
    running = 0
    peak = 0
    done = 0
    router = gokogeri.Router()

    @router.handle("AsyncSleep")
    async def slow(ctx: gokogeri.Context, job: Job) -> None:
        nonlocal running, peak, done
        running += 1  # every coroutine runs on the one loop thread: no lock needed
        peak = max(peak, running)
        await asyncio.sleep(0.002)
        running -= 1
        done += 1

    Enqueuer(cm).enqueue_many(Job("AsyncSleep"), [[i] for i in range(2000)])
    node = quick_node(cm)
    node.process_queues(gokogeri.OrderedQueueSet(["default"]), router, 7)
    pool = node._pools[0]
    with NodeThread(node):
        wait_for(lambda: done >= 1000, timeout=30)
        assert pool.async_fast
    # Stopped mid-drain: every started coroutine finished, none was cut off.
    assert running == 0
    assert peak == 7, peak
    assert r.zcard("retry") == 0 and r.zcard("dead") == 0
    assert done + r.llen("queue:default") == 2000
    assert sum(r.llen(k) for k in r.keys("gokogeri:working:*")) == 0  # nothing held


def test_failing_async_job_lands_in_retry_with_sidekiq_fields(
    cm: gredis.ConnManager, r: redispy.Redis
) -> None:
    router = gokogeri.Router()

    @router.handle("AsyncFail")
    async def fail(ctx: gokogeri.Context, job: Job) -> None:
        await asyncio.sleep(0)
        raise ValueError("async boom")

    jid = Enqueuer(cm).enqueue(Job("AsyncFail", args=[1], retry=3))
    node = quick_node(cm)
    node.process_queues(gokogeri.OrderedQueueSet(["default"]), router, 1)
    with NodeThread(node):
        wait_for(lambda: r.zcard("retry") == 1)
    entry = json.loads(r.zrange("retry", 0, 0)[0])
    assert entry["jid"] == jid
    assert entry["error_class"] == "ValueError"
    assert entry["error_message"] == "async boom"
    assert entry["retry_count"] == 0 and isinstance(entry["failed_at"], float)
    assert entry["queue"] == "default" and entry["retry"] == 3


def test_sigkill_with_50_async_jobs_in_flight_loses_none(
    cm: gredis.ConnManager, r: redispy.Redis, redis_url: str
) -> None:
    jids = set(Enqueuer(cm).enqueue_many(Job("AsyncSleep"), [[2.0] for _ in range(50)]))
    victim = NodeProcess(redis_url, TEST_CONCURRENCY="50", TEST_PREFETCH="0")
    try:
        wait_for(lambda: r.llen(STARTED) == 50, timeout=20)
        victim.kill()
    finally:
        victim.stop()
    assert r.llen(DONE) == 0
    node = quick_node(cm)
    from tests.workers import make_router

    node.process_queues(gokogeri.OrderedQueueSet(["default"]), make_router(redis_url), 50)
    with NodeThread(node):
        wait_for(lambda: r.llen(DONE) == 50, timeout=30)
    done = Counter(json.loads(x)["jid"] for x in r.lrange(DONE, 0, -1))
    assert set(done) == jids and max(done.values()) == 1


def test_router_refuses_what_it_cannot_run() -> None:
    router = gokogeri.Router()

    class SendEmailWorker:
        def work(self, ctx: gokogeri.Context, job: Job) -> None:
            pass

    with pytest.raises(TypeError, match=r"is a class; .*SendEmailWorker\(\)"):
        router.register("SendEmail", SendEmailWorker)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="cannot be called as f"):
        router.register("NoArgs", lambda: None)  # type: ignore[arg-type,misc]

    def gen(ctx: gokogeri.Context, job: Job) -> Any:
        yield 1

    with pytest.raises(TypeError, match="generator"):
        router.register("Gen", gen)
    router.register("Ok", SendEmailWorker())
    assert router.classes() == ["Ok"]


def test_activejob_wrapper_routes_by_wrapped(cm: gredis.ConnManager, r: redispy.Redis) -> None:
    seen: list[str] = []
    router = gokogeri.Router()
    router.register("WelcomeMailJob", lambda ctx, job: seen.append(job.class_name))
    r.lpush(
        "queue:default",
        json.dumps(
            {
                "class": "Sidekiq::ActiveJob::Wrapper",
                "wrapped": "WelcomeMailJob",
                "queue": "default",
                "args": [{"job_class": "WelcomeMailJob", "arguments": []}],
                "jid": "a" * 24,
                "retry": True,
            }
        ),
    )
    node = quick_node(cm)
    node.process_queues(gokogeri.OrderedQueueSet(["default"]), router, 1)
    with NodeThread(node):
        wait_for(lambda: seen)
    assert seen == ["Sidekiq::ActiveJob::Wrapper"]


# --- jobs that raise BaseException, failure logging ---


@pytest.mark.parametrize("exc", [SystemExit(3), KeyboardInterrupt()])
def test_job_raising_base_exception_is_a_failure_and_the_node_goes_on(
    cm: gredis.ConnManager, r: redispy.Redis, exc: BaseException
) -> None:
    ran: list[int] = []
    router = gokogeri.Router()

    @router.handle("Exit")
    def boom(ctx: gokogeri.Context, job: Job) -> None:
        raise exc

    @router.handle("Fine")
    def fine(ctx: gokogeri.Context, job: Job) -> None:
        ran.append(1)

    e = Enqueuer(cm)
    e.enqueue(Job("Exit", retry=1))
    node = quick_node(cm)
    node.process_queues(gokogeri.OrderedQueueSet(["default"]), router, 1)
    with NodeThread(node):
        wait_for(lambda: r.zcard("retry") == 1)
        e.enqueue(Job("Fine"))
        wait_for(lambda: ran)  # the single processor thread survived
    assert node.fatal is None
    entry = json.loads(r.zrange("retry", 0, 0)[0])
    assert entry["error_class"] == type(exc).__name__



@pytest.mark.parametrize("exc", [SystemExit(3), KeyboardInterrupt()])
@pytest.mark.parametrize("mixed", [True, False], ids=["mixed-router", "all-async"])
def test_async_job_raising_base_exception_is_a_failure_and_async_jobs_go_on(
    cm: gredis.ConnManager, r: redispy.Redis, exc: BaseException, mixed: bool
) -> None:
    """asyncio re-raises SystemExit/KeyboardInterrupt from a task out of the
    event loop: uncaught, it ended the pool's loop and every later async job
    failed. Both async paths (a mixed router's thread hand-off, an all-async
    pool's feeder) treat it as the job's failure."""
    ran: list[int] = []
    router = gokogeri.Router()

    @router.handle("Exit")
    async def boom(ctx: gokogeri.Context, job: Job) -> None:
        raise exc

    @router.handle("Fine")
    async def fine(ctx: gokogeri.Context, job: Job) -> None:
        ran.append(1)

    if mixed:
        @router.handle("Sync")
        def sync(ctx: gokogeri.Context, job: Job) -> None:
            pass

    e = Enqueuer(cm)
    e.enqueue(Job("Exit", retry=1))
    node = quick_node(cm)
    node.process_queues(gokogeri.OrderedQueueSet(["default"]), router, 2)
    with NodeThread(node):
        wait_for(lambda: r.zcard("retry") == 1)
        e.enqueue(Job("Fine"))
        e.enqueue(Job("Fine"))
        wait_for(lambda: len(ran) == 2)  # the event loop survived
    assert node.fatal is None
    assert r.zcard("retry") == 1
    entry = json.loads(r.zrange("retry", 0, 0)[0])
    assert entry["class"] == "Exit" and entry["error_class"] == type(exc).__name__


def test_hard_stop_cancels_async_jobs_of_a_mixed_router_and_requeues_them(
    cm: gredis.ConnManager, r: redispy.Redis
) -> None:
    """Past the grace period the coroutines a processor thread waits for are
    cancelled, their threads come back, and the jobs return to their queue
    untouched (no retry entry: a cancelled job was not a failed one)."""
    cancelled: list[str] = []
    router = gokogeri.Router()

    @router.handle("Slow")
    async def slow(ctx: gokogeri.Context, job: Job) -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.append(job.jid or "")
            raise

    @router.handle("Sync")
    def sync(ctx: gokogeri.Context, job: Job) -> None:
        pass

    e = Enqueuer(cm)
    e.enqueue_bulk([Job("Slow", jid=f"{i:024d}") for i in range(2)])
    originals = set(r.lrange("queue:default", 0, -1))
    node = quick_node(cm)
    node.process_queues(gokogeri.OrderedQueueSet(["default"]), router, 2)
    t = threading.Thread(target=node.run)
    t.start()
    wait_for(lambda: len(r.hgetall(f"{node.identity}:work")) == 2)
    t0 = time.monotonic()
    node.stop(timeout=0.3)
    t.join(10)
    assert not t.is_alive() and time.monotonic() - t0 < 5
    assert sorted(cancelled) == [f"{i:024d}" for i in range(2)]
    assert set(r.lrange("queue:default", 0, -1)) == originals
    assert r.zcard("retry") == 0 and r.zcard("dead") == 0
    assert node.fatal is None


def blocker_and_victim(
    blocked: float,
) -> tuple[gokogeri.Router, threading.Event, list[str]]:
    """A router whose async "Blocker" blocks the event loop itself for
    ``blocked`` seconds (a synchronous sleep: nothing else on the loop runs
    meanwhile) and whose async "Victim" records its jid when it runs."""
    blocking = threading.Event()
    ran: list[str] = []
    router = gokogeri.Router()

    @router.handle("Blocker")
    async def blocker(ctx: gokogeri.Context, job: Job) -> None:
        blocking.set()
        time.sleep(blocked)

    @router.handle("Victim")
    async def victim(ctx: gokogeri.Context, job: Job) -> None:
        ran.append(job.jid or "")

    return router, blocking, ran


@pytest.mark.parametrize("fetch", ["reliable", "basic"])
def test_hard_stop_requeues_an_async_job_handed_over_to_a_busy_loop_unstarted(
    cm: gredis.ConnManager, r: redispy.Redis, fetch: Any
) -> None:
    """A thread hands an async job over while the loop is stuck in another job
    (one that blocks the loop). Past the grace period the handed-over job is
    pushed back; when the loop frees up it must not start it, and its slot
    and work-hash entry must be let go."""
    router, blocking, ran = blocker_and_victim(1.0)

    @router.handle("Sync")  # a sync job too: threads hand the async ones over
    def sync(ctx: gokogeri.Context, job: Job) -> None:
        pass

    e = Enqueuer(cm)
    node = quick_node(cm, fetch=fetch)
    node.process_queues(gokogeri.OrderedQueueSet(["default"]), router, 2)
    pool = node._pools[0]
    t = threading.Thread(target=node.run)
    t.start()
    e.enqueue(Job("Blocker"))
    assert blocking.wait(10)
    e.enqueue(Job("Victim", jid="v" * 24))
    wait_for(lambda: len(pool.busy) == 2)  # decoded and handed over, not started
    node.stop(timeout=0.1)
    t.join(10)
    assert not t.is_alive()
    wait_for(lambda: not pool.busy)  # the loop came back and let it go
    assert ran == []
    assert pool._free.qsize() == 2
    queued = [json.loads(p)["class"] for p in r.lrange("queue:default", 0, -1)]
    assert sorted(queued) == ["Blocker", "Victim"]  # both pushed back, once each
    assert r.zcard("retry") == 0 and r.zcard("dead") == 0
    assert node.fatal is None


@pytest.mark.parametrize("fetch", ["reliable", "basic"])
@pytest.mark.parametrize(
    ("together", "blocked"),
    [(True, 1.0), (False, 1.0), (False, 4.5)],
    ids=["same-batch", "later-batch", "later-batch-loop-stuck-past-the-grace"],
)
def test_hard_stop_pushes_back_an_all_async_pools_fetched_jobs_unstarted(
    cm: gredis.ConnManager, r: redispy.Redis, fetch: Any, together: bool, blocked: float
) -> None:
    """An all-async pool's feeder hands a job to the loop while the loop is
    stuck in another job (same batch: its task exists but has not begun; a
    later batch: not even its task). A hard stop must push it back, not start
    it during the grace period, and not lose it when the loop comes back only
    after the node stopped it (BRPOP fetch has no working list to rescue it
    from); the slots must come back."""
    router, blocking, ran = blocker_and_victim(blocked)
    e = Enqueuer(cm)
    victim_job = Job("Victim", jid="v" * 24)
    if together:
        e.enqueue_bulk([Job("Blocker"), victim_job])
    node = quick_node(cm, fetch=fetch)
    node.process_queues(gokogeri.OrderedQueueSet(["default"]), router, 2)
    pool = node._pools[0]
    assert pool.async_fast
    t = threading.Thread(target=node.run)
    t.start()
    if not together:
        e.enqueue(Job("Blocker"))
    assert blocking.wait(10)
    if not together:
        e.enqueue(victim_job)
    # Both fetched (the queue is empty) and both slots taken; then a moment for
    # the feeder to hand the second over.
    wait_for(lambda: pool._free.qsize() == 0 and r.llen("queue:default") == 0)
    time.sleep(0.05)
    t0 = time.monotonic()
    node.stop(timeout=0.1)
    t.join(10)
    assert not t.is_alive()
    # The blocked loop, then the stop; not the fetcher's 5 s join timeout on
    # top (a waiter that missed the stop) nor the 25 s default grace.
    assert time.monotonic() - t0 < blocked + 3
    assert ran == []
    if blocked < 1.5:
        assert pool._free.qsize() == 2
    queued = [json.loads(p)["class"] for p in r.lrange("queue:default", 0, -1)]
    assert sorted(queued) == ["Blocker", "Victim"]  # both pushed back, once each
    assert r.zcard("retry") == 0 and r.zcard("dead") == 0
    assert not r.keys("gokogeri:working:*")
    assert node.fatal is None


def test_failure_logs_message_and_traceback_at_warn(
    cm: gredis.ConnManager, r: redispy.Redis
) -> None:
    logger, out = capture_logger("fail")
    router = gokogeri.Router()

    @router.handle("Bad\nINFO: forged")
    def bad(ctx: gokogeri.Context, job: Job) -> None:
        raise RuntimeError("the message\nwith a newline")

    jid = Enqueuer(cm).enqueue(Job("Bad\nINFO: forged", args=["secret-arg"], retry=1))
    node = quick_node(cm, logger)
    node.process_queues(gokogeri.OrderedQueueSet(["default"]), router, 1)
    with NodeThread(node):
        wait_for(lambda: r.zcard("retry") == 1)
    text = out.getvalue()
    warn = [line for line in text.splitlines() if "WARNING: RuntimeError" in line]
    assert warn, text
    assert f"jid={jid}" in warn[0] and "class=Bad\\nINFO: forged" in warn[0]
    assert "the message\\nwith a newline" in warn[0]
    assert "Traceback (most recent call last)" in text and "in bad" in text
    assert "secret-arg" not in text  # args never at INFO/WARN
    assert not any(line.startswith("INFO: forged") for line in text.splitlines())


def test_log_error_details_false_keeps_message_out_of_warn(
    cm: gredis.ConnManager, r: redispy.Redis
) -> None:
    logger, out = capture_logger("nodetails")
    router = gokogeri.Router()
    router.register("Bad", lambda ctx, job: (_ for _ in ()).throw(RuntimeError("card 4111")))
    Enqueuer(cm).enqueue(Job("Bad", retry=1))
    node = quick_node(cm, logger, log_error_details=False)
    node.process_queues(gokogeri.OrderedQueueSet(["default"]), router, 1)
    with NodeThread(node):
        wait_for(lambda: r.zcard("retry") == 1)
    text = out.getvalue()
    assert "RuntimeError (details at DEBUG)" in text
    assert "4111" not in text and "Traceback" not in text


# --- hooks ---


class HookWorker:
    def __init__(self, decision: Any, exhausted: Any = None, raise_in_hook: bool = False) -> None:
        self.decision = decision
        self.exhausted_rv = exhausted
        self.raise_in_hook = raise_in_hook
        self.exhausted_calls: list[str] = []

    def work(self, ctx: gokogeri.Context, job: Job) -> None:
        raise ValueError("hooked")

    def retry_in(self, count: int, exc: BaseException, job: Job) -> Any:
        if self.raise_in_hook:
            raise RuntimeError("hook bug")
        return self.decision

    def retries_exhausted(self, job: Job, exc: BaseException) -> Any:
        self.exhausted_calls.append(job.jid or "")
        return self.exhausted_rv


def run_hooked(
    cm: gredis.ConnManager, r: redispy.Redis, worker: HookWorker, **job_opts: Any
) -> dict[str, list[Any]]:
    calls: dict[str, list[Any]] = {"error": [], "death": [], "events": []}
    router = gokogeri.Router()
    router.register("Hooked", worker)
    node = quick_node(cm)
    node.error_handlers.append(
        lambda exc, job, ctx: calls["error"].append((type(exc).__name__, job.jid, ctx.queue))
    )
    node.death_handlers.append(lambda job, exc: calls["death"].append((job.jid, str(exc))))
    for ev in ("startup", "quiet", "shutdown", "heartbeat"):
        node.on(ev, lambda ev=ev: calls["events"].append(ev))  # type: ignore[misc]
    node.process_queues(gokogeri.OrderedQueueSet(["default"]), router, 1)
    jid = Enqueuer(cm).enqueue(Job("Hooked", **job_opts))
    with NodeThread(node):
        wait_for(lambda: calls["error"])
        time.sleep(0.7)  # at least one heartbeat
    calls["jid"] = [jid]
    return calls


def test_retry_in_kill_sends_to_dead_and_calls_death_handler_once(
    cm: gredis.ConnManager, r: redispy.Redis
) -> None:
    worker = HookWorker("kill")
    calls = run_hooked(cm, r, worker, retry=5)
    jid = calls["jid"][0]
    assert r.zcard("retry") == 0 and r.zcard("dead") == 1
    assert json.loads(r.zrange("dead", 0, 0)[0])["jid"] == jid
    assert calls["death"] == [(jid, "hooked")]
    assert worker.exhausted_calls == [jid]
    assert calls["error"] == [("ValueError", jid, "default")]
    assert calls["events"][0] == "startup" and "heartbeat" in calls["events"]
    assert calls["events"][-2:] == ["quiet", "shutdown"]


def test_retry_in_discard_drops_and_seconds_schedule(
    cm: gredis.ConnManager, r: redispy.Redis
) -> None:
    calls = run_hooked(cm, r, HookWorker("discard"), retry=5)
    assert r.zcard("retry") == 0 and r.zcard("dead") == 0 and not calls["death"]
    r.flushall()
    before = time.time()
    run_hooked(cm, r, HookWorker(1000), retry=5)
    ((_member, score),) = r.zrange("retry", 0, -1, withscores=True)
    # 1000 s plus Sidekiq 8's jitter rand(10 * (count + 1)) for count 0.
    assert before + 1000 <= score <= time.time() + 1010


def test_raising_retry_in_hook_falls_back_to_default_backoff(
    cm: gredis.ConnManager, r: redispy.Redis
) -> None:
    calls = run_hooked(cm, r, HookWorker(None, raise_in_hook=True), retry=5)
    ((_, score),) = r.zrange("retry", 0, -1, withscores=True)
    assert score - time.time() < 15 + 10 + 1  # count**4 + 15 + jitter, not lost, not doubled
    assert r.zcard("dead") == 0 and len(calls["error"]) == 1


def test_retries_exhausted_discard_keeps_job_out_of_dead(
    cm: gredis.ConnManager, r: redispy.Redis
) -> None:
    worker = HookWorker(None, exhausted="discard")
    calls = run_hooked(cm, r, worker, retry=0)
    assert r.zcard("dead") == 0 and worker.exhausted_calls and not calls["death"]


def test_raising_death_and_error_handlers_lose_nothing(
    cm: gredis.ConnManager, r: redispy.Redis
) -> None:
    router = gokogeri.Router()
    router.register("Hooked", HookWorker(None))
    node = quick_node(cm)

    def bad(*args: Any) -> None:
        raise RuntimeError("handler bug")

    node.error_handlers.append(bad)
    node.death_handlers.append(bad)
    node.process_queues(gokogeri.OrderedQueueSet(["default"]), router, 1)
    Enqueuer(cm).enqueue(Job("Hooked", retry=0))
    Enqueuer(cm).enqueue(Job("Hooked", retry=2))
    with NodeThread(node):
        wait_for(lambda: r.zcard("dead") == 1 and r.zcard("retry") == 1)
        time.sleep(0.3)
    assert r.zcard("dead") == 1 and r.zcard("retry") == 1 and node.fatal is None


@needs_sidekiq
def test_sidekiq_reads_entries_that_hooks_produce(
    cm: gredis.ConnManager, r: redispy.Redis, redis_url: str
) -> None:
    run_hooked(cm, r, HookWorker("kill"), retry=5)
    run_hooked(cm, r, HookWorker(500), retry=5)
    out = ruby(
        "require 'sidekiq/api'; "
        "puts Sidekiq::DeadSet.new.map { |e| [e.klass, e['error_class'], e['retry_count']].join(',') }; "
        "puts Sidekiq::RetrySet.new.map { |e| [e.klass, e['error_message'], (e.at - Time.now).round(-2)].join(',') }",
        redis_url,
    )
    lines = out.split()
    assert "Hooked,ValueError,0" in lines
    assert any(
        line.startswith("Hooked,hooked,") and line.split(",")[2] in ("500", "600") for line in lines
    ), lines


# --- `gokogeri run` ---


def gokogeri_run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gokogeri", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=str(ROOT),
        env=dict(os.environ, **(env or {})),
        check=False,
    )


def test_run_with_redis_down_is_one_line_exit_2() -> None:
    out = gokogeri_run(
        "run", "tests.workers:router", "--redis-url", "redis://user:pw@127.0.0.1:1/0"
    )
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach Redis" in lines[0] and "--redis-url" in lines[0]
    assert "pw" not in out.stderr and "***" in lines[0]


def test_run_refuses_bad_settings() -> None:
    assert gokogeri_run("run", "tests.workers:router", "-t", "-1").returncode == 2
    bad = gokogeri_run("run", "tests.workers:router", "--redis-url", "http://x")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert gokogeri_run("run", "tests.workers:router", "--sidekiq-compat", "5").returncode == 2
    version = gokogeri_run("--version")
    assert version.returncode == 0 and version.stdout.startswith("gokogeri ")


def start_run(redis_url: str, *args: str) -> tuple[subprocess.Popen[bytes], Path]:
    log = Path(f"/tmp/gokogeri-run-{os.getpid()}-{time.monotonic_ns()}.log")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gokogeri", "run", *args, "--redis-url", redis_url],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        cwd=str(ROOT),
    )
    return proc, log


def stop_proc(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_run_worker_class_is_instantiated_and_startup_line_lists_queues(
    r: redispy.Redis, redis_url: str
) -> None:
    cm = gredis.ConnManager(gredis.Config(url=redis_url))
    Enqueuer(cm).enqueue(Job("Anything", queue="mail", args=[7]))
    proc, log = start_run(
        redis_url, "tests.test_production_node:ClassWorker", "-q", "mail", "-q", "low"
    )
    try:
        wait_for(lambda: r.get("class-worker-ran") == b"7", timeout=20)
        wait_for(lambda: b"queues mail,low" in log.read_bytes(), timeout=5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        stop_proc(proc)
        cm.close()
    assert r.zcard("retry") == 0


class ClassWorker:
    """Named by class on the command line (`gokogeri run mod:ClassWorker`)."""

    def __init__(self) -> None:
        self.r = redispy.Redis.from_url(
            os.environ.get("TEST_URL_FROM_ARGV", "") or _url_from_argv()
        )

    def work(self, ctx: gokogeri.Context, job: Job) -> None:
        self.r.set("class-worker-ran", str(job.args[0]))


def _url_from_argv() -> str:
    return sys.argv[sys.argv.index("--redis-url") + 1]


def test_run_warns_about_an_empty_router(r: redispy.Redis, redis_url: str) -> None:
    proc, log = start_run(redis_url, "tests.test_production_node:empty_router")
    try:
        wait_for(lambda: b"empty Router" in log.read_bytes(), timeout=20)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)


def empty_router() -> gokogeri.Router:
    return gokogeri.Router()


def test_second_signal_stops_at_once_and_pushes_running_job_back(
    r: redispy.Redis, redis_url: str
) -> None:
    cm = gredis.ConnManager(gredis.Config(url=redis_url))
    jid = Enqueuer(cm).enqueue(Job("Sleep", args=[60]))
    env_url = {"GOKOGERI_REDIS_URL": redis_url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gokogeri", "run", "tests.workers:router", "-t", "60"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=str(ROOT),
        env=dict(os.environ, **env_url),
    )
    try:
        wait_for(lambda: r.llen(STARTED) == 1, timeout=20)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.5)
        assert proc.poll() is None  # the first one waits for the 60 s grace period
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        stop_proc(proc)
        cm.close()
    assert [json.loads(p)["jid"] for p in r.lrange("queue:default", 0, -1)] == [jid]
    assert not r.keys("gokogeri:working:*")


def test_internal_fault_exits_non_zero_after_pushing_jobs_back(
    r: redispy.Redis, redis_url: str
) -> None:
    cm = gredis.ConnManager(gredis.Config(url=redis_url))
    jids = Enqueuer(cm).enqueue_many(Job("Record"), [[i] for i in range(5)])
    proc = subprocess.Popen(
        [sys.executable, "-m", "gokogeri", "run", "tests.test_production_node:faulty_node"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=str(ROOT),
        env=dict(os.environ, GOKOGERI_REDIS_URL=redis_url),
    )
    try:
        out, _ = proc.communicate(timeout=30)
    finally:
        stop_proc(proc)
        cm.close()
    assert proc.returncode == 70, out
    assert b"internal error" in out
    assert sorted(json.loads(p)["jid"] for p in r.lrange("queue:default", 0, -1)) == sorted(jids)


class _FaultyFetchBuffer(gokogeri.Router):
    pass


def faulty_node() -> gokogeri.Node:
    """A node whose fetcher breaks after handing out its first job: an internal
    fault (not a job's), which must stop the node with a non-zero exit."""
    from gokogeri.processor import Pool

    url = os.environ["GOKOGERI_REDIS_URL"]
    cm = gredis.ConnManager(gredis.Config(url=url))
    node = quick_node(cm, gokogeri.default_logger())
    node.process_queues(gokogeri.OrderedQueueSet(["default"]), gokogeri.Router(), 1)
    pool: Pool = node._pools[0]
    original = pool.fetcher.observe

    def broken(seconds: float) -> None:
        original(seconds)
        raise AssertionError("fetcher bookkeeping broke")

    pool.fetcher.observe = broken  # type: ignore[method-assign]
    return node


# --- hardening: payloads that used to kill the node ---


@pytest.mark.parametrize(
    "payload",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"class":"Record","args":[NaN],"jid":"x"}',
        b'{"class":"Record","args":[Infinity]}',
        b'{"class":"Record","args":[1e400]}',
        b'{"class":"Record","args":["\\ud800"],"jid":"y","retry":0}',
        b"\xff\xfe not utf-8",
    ],
    ids=["deep", "nan", "infinity", "1e400", "lone-surrogate", "bad-utf8"],
)
def test_lethal_payloads_go_to_dead_and_node_goes_on(
    cm: gredis.ConnManager, r: redispy.Redis, redis_url: str, payload: bytes
) -> None:
    from tests.workers import make_router

    r.lpush("queue:default", payload)
    node = quick_node(cm)
    node.process_queues(gokogeri.OrderedQueueSet(["default"]), make_router(redis_url), 1)
    with NodeThread(node):
        wait_for(lambda: r.zcard("dead") == 1 or r.llen(DONE) == 1)
        Enqueuer(cm).enqueue(Job("Record", args=["after"]))
        wait_for(lambda: any(json.loads(x)["args"] == ["after"] for x in r.lrange(DONE, 0, -1)))
    assert node.fatal is None
    assert not any(r.llen(k) for k in r.keys("gokogeri:working:*"))
    if r.zcard("dead"):
        dead = r.zrange("dead", 0, 0)[0]
        assert len(dead) >= min(len(payload), 20)


def test_job_that_cannot_be_reencoded_is_buried_with_raw_bytes(
    cm: gredis.ConnManager, r: redispy.Redis
) -> None:
    router = gokogeri.Router()

    @router.handle("Mutates")
    def mutate(ctx: gokogeri.Context, job: Job) -> None:
        job.args.append(object())  # a worker bug: the failure cannot be encoded
        raise RuntimeError("then fails")

    jid = Enqueuer(cm).enqueue(Job("Mutates", args=[1]))
    node = quick_node(cm)
    node.process_queues(gokogeri.OrderedQueueSet(["default"]), router, 1)
    with NodeThread(node):
        wait_for(lambda: r.zcard("dead") == 1)
    dead = json.loads(r.zrange("dead", 0, 0)[0])
    assert dead["jid"] == jid and dead["args"] == [1]
    assert dead["error_class"] == "InvalidPayloadError"
    assert "could not record the failure" in dead["error_message"]
    assert node.fatal is None


def test_rescue_after_below_three_beats_is_refused(cm: gredis.ConnManager) -> None:
    with pytest.raises(ValueError, match="at least 15s"):
        gokogeri.Node(gokogeri.nop_logger(), cm, rescue_after=2)
    gokogeri.Node(gokogeri.nop_logger(), cm, rescue_after=2, fetch="basic")  # no rescue there


def test_rescue_counts_only_started_jobs(
    cm: gredis.ConnManager, r: redispy.Redis, redis_url: str
) -> None:
    """A node killed by one job, with 30 prefetched jobs behind it, three
    times: the poison job is dead after 3 starts; no prefetched job is
    counted, let alone buried."""
    e = Enqueuer(cm)
    poison = e.enqueue(Job("KillNode"))
    innocent = e.enqueue_many(Job("Record"), [[i] for i in range(30)])
    for start in range(1, 4):
        victim = NodeProcess(redis_url, TEST_CONCURRENCY="1", TEST_PREFETCH="30")
        try:
            wait_for(lambda start=start: r.llen(STARTED) == start, timeout=20)
            assert victim.proc.wait(timeout=10) == -9
        finally:
            victim.stop()
        # Rescue as a live node would (the victim's heartbeat is silent at once: it is gone).
        r.delete(*r.keys("gokogeri-*") or ["_"])
        ident = json.loads(next(iter(r.hgetall("gokogeri:working").values())))["identity"]
        r.delete(ident)
        from gokogeri.rescue import Rescuer

        node = quick_node(cm)
        # As a node that has seen Redis answer for longer than rescue_after.
        node.runtime.redis_ok_since -= 10
        Rescuer(node.runtime, rescue_after=2.0).run_once()
        counted = [k for k in r.keys("gokogeri:rescued:*")]
        assert counted == [f"gokogeri:rescued:{poison}".encode()]
        if start < 3:
            # Back at the front of the queue, in their original order.
            queue = [json.loads(p)["jid"] for p in reversed(r.lrange("queue:default", 0, -1))]
            assert queue[0] == poison and set(queue[1:]) == set(innocent)
    assert [json.loads(m)["jid"] for m in r.zrange("dead", 0, -1)] == [poison]
    dead = json.loads(r.zrange("dead", 0, 0)[0])
    assert dead["error_class"] == "Gokogeri::JobKilledNode"
    assert r.llen("queue:default") == 30 and r.llen(DONE) == 0
    assert not r.hgetall("gokogeri:working")


def test_node_starts_and_drains_a_redis_at_maxmemory(
    cm: gredis.ConnManager, r: redispy.Redis, redis_url: str
) -> None:

    jids = Enqueuer(cm).enqueue_many(Job("Noop"), [[i] for i in range(200)])
    ran: list[str] = []
    router = gokogeri.Router()
    router.register("Noop", lambda ctx, job: ran.append(job.jid or ""))
    used = int(r.info("memory")["used_memory"])
    r.config_set("maxmemory", str(max(used - 200_000, 1)))
    r.config_set("maxmemory-policy", "noeviction")
    try:
        with pytest.raises(redispy.ResponseError, match="maxmemory"):
            r.set("probe", "x" * 10_000)
        node = quick_node(cm)
        node.process_queues(gokogeri.OrderedQueueSet(["default"]), router, 2)
        with NodeThread(node):
            wait_for(lambda: len(ran) == 200, timeout=20)
            wait_for(lambda: not r.keys("gokogeri:working:*"))
            assert r.sismember("processes", node.identity)
    finally:
        r.config_set("maxmemory", "0")
    assert sorted(ran) == sorted(j for j in jids if j)


def test_bulk_enqueue_refused_midway_says_which_jids_were_pushed(
    cm: gredis.ConnManager, r: redispy.Redis
) -> None:
    from gokogeri.enqueuer import BULK_BATCH, BULK_PIPELINE

    per_trip = BULK_BATCH * (BULK_PIPELINE - 1)  # the first trip also carries SADD
    used = int(r.info("memory")["used_memory"])
    # Room for a round trip or two of ~130-byte payloads (the query buffer counts too), not five.
    r.config_set("maxmemory", str(used + per_trip * 400))
    r.config_set("maxmemory-policy", "noeviction")
    try:
        with pytest.raises(gokogeri.EnqueueError) as info:
            Enqueuer(cm).enqueue_many(
                Job("Bulk", args=[]), [["x" * 40, i] for i in range(per_trip * 5)]
            )
    finally:
        r.config_set("maxmemory", "0")
    err = info.value
    assert isinstance(err.__cause__, redispy.ResponseError)
    on_queue = {json.loads(p)["jid"] for p in r.lrange("queue:default", 0, -1)}
    assert on_queue == set(err.pushed) and len(err.pushed) % BULK_BATCH == 0
    assert 0 < len(err.pushed) < per_trip * 5


def test_enqueue_to_unreachable_redis_raises_gokogeri_error() -> None:
    cm = gredis.ConnManager(gredis.Config(url="redis://127.0.0.1:1/0", connect_timeout=0.5))
    try:
        with pytest.raises(gokogeri.RedisUnavailableError) as info:
            Enqueuer(cm).enqueue(Job("X"))
    finally:
        cm.close()
    assert isinstance(info.value.__cause__, redispy.ConnectionError)
    assert isinstance(info.value, gokogeri.EnqueueError)


def test_buffered_handler_lines_escape_payload_fields(
    cm: gredis.ConnManager, r: redispy.Redis
) -> None:
    out = io.StringIO()
    logger = logging.getLogger(f"gokogeri.test.fast.{time.monotonic_ns()}")
    handler = BufferedStreamHandler(out, interval=0.05)
    handler.setFormatter(KeyValueFormatter())
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    router = gokogeri.Router()
    name = "Evil\n2026-01-01T00:00:00.000Z pid=1 tid=x INFO: forged\x1b[2J"
    router.register(name, lambda ctx, job: None)
    Enqueuer(cm).enqueue(Job(name))
    node = quick_node(cm, logger)
    node.process_queues(gokogeri.OrderedQueueSet(["default"]), router, 1)
    with NodeThread(node):
        wait_for(lambda: "done" in out.getvalue(), timeout=10)
    handler.close()
    lines = out.getvalue().splitlines()
    assert not any("forged" in line and line.startswith("2026-01-01") for line in lines)
    assert "\x1b" not in out.getvalue()


def test_node_every_enqueues_periodic_jobs_while_running(
    cm: gredis.ConnManager, r: redispy.Redis
) -> None:
    ticks: list[str] = []
    router = gokogeri.Router()
    router.register("Tick", lambda ctx, job: ticks.append(job.jid or ""))
    node = quick_node(cm)
    node.every(1, "Tick")
    node.process_queues(gokogeri.OrderedQueueSet(["default"]), router, 1)
    with NodeThread(node):
        wait_for(lambda: len(ticks) >= 2, timeout=10)
    assert len(set(ticks)) == len(ticks)  # one job per tick


def test_rescue_waits_rescue_after_once_redis_is_back(
    cm: gredis.ConnManager, r: redispy.Redis
) -> None:
    """After an outage every node looks silent; no rescue until live ones could beat."""
    from gokogeri.rescue import Rescuer

    r.hset(
        "gokogeri:working",
        "gokogeri:working:ghost:default",
        json.dumps({"identity": "ghost", "queue": "default"}),
    )
    r.lpush("gokogeri:working:ghost:default", b'{"class":"X","args":[],"jid":"j1"}')
    rt = quick_node(cm).runtime
    rescuer = Rescuer(rt, rescue_after=2.0)
    rt.redis_ok_since -= 10
    rt.redis_failed()  # an outage, as the heartbeat or the rescuer saw it
    assert rescuer.run_once() == 0
    rt.redis_ok()  # Redis answers again: wait rescue_after more
    assert rescuer.run_once() == 0 and r.llen("queue:default") == 0
    rt.redis_ok_since -= 2.0
    assert rescuer.run_once() == 1 and r.llen("queue:default") == 1


def test_middleware_added_after_process_queues_wraps_async_jobs(
    cm: gredis.ConnManager, r: redispy.Redis
) -> None:
    seen: list[str] = []
    router = gokogeri.Router()

    @router.handle("AsyncJob")
    async def handle(ctx: gokogeri.Context, job: Job) -> None:
        seen.append("job")

    def middleware(ctx: gokogeri.Context, job: Job, queue: str, call_next: Any) -> Any:
        seen.append("before")
        result = call_next()
        seen.append("after")
        return result

    node = quick_node(cm)
    node.process_queues(gokogeri.OrderedQueueSet(["default"]), router, 2)
    node.middleware.add(middleware)  # after the pool exists, as instrument() may do
    Enqueuer(cm).enqueue(Job("AsyncJob"))
    with NodeThread(node):
        wait_for(lambda: "after" in seen)
    assert seen == ["before", "job", "after"]
