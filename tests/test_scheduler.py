"""The poller: scheduled and retry jobs reach their queues on time, atomically."""

from __future__ import annotations

import json
import random
import statistics
import threading
import time

import redis as redispy

import gokogeri
from gokogeri import Enqueuer, Job, OrderedQueueSet, WorkerFunc
from gokogeri import redis as gredis
from tests.conftest import NodeThread, wait_for


def test_scheduled_jobs_start_within_100ms(cm: gredis.ConnManager, r: redispy.Redis) -> None:
    lateness: list[float] = []
    lock = threading.Lock()

    def work(ctx: gokogeri.Context, job: Job) -> None:
        with lock:
            lateness.append(time.time() - job.args[0])

    # Sidekiq's default poll interval (5 s per process): the wake-ups must do the work.
    node = gokogeri.Node(gokogeri.nop_logger(), cm)
    node.process_queues(OrderedQueueSet(["default"]), WorkerFunc(work), 5)
    e = Enqueuer(cm)
    rng = random.Random(7)
    with NodeThread(node):
        time.sleep(0.2)
        for _ in range(100):
            at = time.time() + rng.uniform(0.2, 3.0)
            e.enqueue_at(Job("Timed", args=[at]), at)
            time.sleep(0.01)
        wait_for(lambda: len(lateness) == 100, timeout=15)
    lateness.sort()
    ms = [x * 1000 for x in lateness]
    p50, p99 = statistics.median(ms), ms[98]
    print(
        f"\nscheduled-job lateness over 100 jobs: min {ms[0]:.1f} ms, p50 {p50:.1f} ms, "
        f"p90 {ms[89]:.1f} ms, p99 {p99:.1f} ms, max {ms[-1]:.1f} ms"
    )
    assert ms[0] >= 0, "a job ran before its time"
    # p99, as the benchmark states it: on a shared 2-core machine one job in a
    # hundred can lose the CPU for longer than the poller's own delay.
    assert p99 < 100


def test_jobs_scheduled_elsewhere_are_found_by_polling(
    cm: gredis.ConnManager, r: redispy.Redis
) -> None:
    # Written as Ruby's perform_in does: ZADD only, no wake-up message.
    seen: list[str] = []
    node = gokogeri.Node(gokogeri.nop_logger(), cm, poll_interval_average=0.3)
    node.process_queues(
        OrderedQueueSet(["python"]), WorkerFunc(lambda c, j: seen.append(j.jid or "")), 1
    )
    member = '{"retry":true,"queue":"python","class":"PyOnlyJob","args":[3],"jid":"95d29c4c85ef2471a6c14824","created_at":1795847373.0332463}'
    with NodeThread(node):
        r.zadd("schedule", {member: time.time() + 0.5})
        wait_for(lambda: seen == ["95d29c4c85ef2471a6c14824"], timeout=5)
    assert r.zcard("schedule") == 0


def test_moved_job_gets_enqueued_at_and_keeps_everything_else(
    cm: gredis.ConnManager, r: redispy.Redis
) -> None:
    got: list[Job] = []
    node = gokogeri.Node(gokogeri.nop_logger(), cm, poll_interval_average=0.2)
    node.process_queues(OrderedQueueSet(["q8"]), WorkerFunc(lambda c, j: got.append(j)), 1)
    # A Sidekiq 8 member: integer-ms timestamps and extra fields.
    member = {
        "retry": 3,
        "queue": "q8",
        "class": "X",
        "args": [1],
        "jid": "b579e10a6ef54048ec35c9b7",
        "created_at": 1795848102398,
        "bid": "batch-1",
        "tags": ["a"],
    }
    with NodeThread(node):
        r.zadd("schedule", {json.dumps(member, separators=(",", ":")): time.time() - 1})
        wait_for(lambda: got)
    fields = got[0].fields
    assert isinstance(fields["enqueued_at"], int)  # this job's form, not ours
    assert abs(fields["enqueued_at"] / 1000 - time.time()) < 10
    assert {k: v for k, v in fields.items() if k != "enqueued_at"} == member
    assert r.smembers("queues") == {b"q8"}


def test_unreadable_scheduled_member_goes_dead(cm: gredis.ConnManager, r: redispy.Redis) -> None:
    node = gokogeri.Node(gokogeri.nop_logger(), cm, poll_interval_average=0.2)
    node.process_queues(OrderedQueueSet(["q"]), WorkerFunc(lambda c, j: None), 1)
    with NodeThread(node):
        r.zadd("retry", {"{broken": time.time() - 1})
        wait_for(lambda: r.zcard("dead") == 1)
    assert r.zcard("retry") == 0


def test_two_pollers_never_double_a_job(
    cm: gredis.ConnManager, r: redispy.Redis, redis_url: str
) -> None:
    from gokogeri.retry import RetryPolicy
    from gokogeri.scheduler import Scheduler

    now = time.time()
    r.zadd(
        "schedule",
        {
            json.dumps({"class": "X", "args": [i], "queue": "q", "jid": f"{i:024d}"}): now - 1
            for i in range(2000)
        },
    )
    pollers = [
        Scheduler(
            gredis.ConnManager(gredis.Config(url=redis_url)),
            gokogeri.nop_logger(),
            timestamp_format="float",
            policy=RetryPolicy(),
        )
        for _ in range(3)
    ]
    threads = [threading.Thread(target=p.enqueue_due) for p in pollers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    jobs = [json.loads(x) for x in r.lrange("queue:q", 0, -1)]
    assert len(jobs) == 2000 and len({j["jid"] for j in jobs}) == 2000
    assert r.zcard("schedule") == 0
