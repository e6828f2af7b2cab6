"""Crash safety: a node killed with SIGKILL loses nothing (crash-safe fetch)."""

from __future__ import annotations

import json
import time
from collections import Counter

import redis as redispy

import gokogeri
from gokogeri import Enqueuer, Job
from gokogeri import redis as gredis
from tests.conftest import NodeProcess, NodeThread, wait_for
from tests.workers import DONE, STARTED, make_router


def records(r: redispy.Redis, key: str) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(x) for x in r.lrange(key, 0, -1)]


def rescuing_node(cm: gredis.ConnManager, url: str, instances: int) -> gokogeri.Node:
    node = gokogeri.Node(
        gokogeri.nop_logger(), cm, heartbeat_interval=0.5, rescue_after=2.0, poll_interval_average=1
    )
    node.process_queues(gokogeri.OrderedQueueSet(["default"]), make_router(url), instances)
    return node


def test_sigkill_with_50_jobs_in_flight_loses_nothing(
    cm: gredis.ConnManager, r: redispy.Redis, redis_url: str
) -> None:
    e = Enqueuer(cm)
    quick = e.enqueue_bulk([Job("Record", args=[i]) for i in range(20)])
    victim = NodeProcess(redis_url, TEST_CONCURRENCY="25", TEST_PREFETCH="25")
    try:
        wait_for(lambda: r.llen(DONE) == 20, timeout=20)
        # ...and acknowledged, so the 50 below are exactly what the node holds.
        wait_for(lambda: not r.keys("gokogeri:working:*"), timeout=5)
        # 25 run, 25 wait prefetched in the node's working list.
        slow = e.enqueue_bulk([Job("Sleep", args=[1.5]) for _ in range(50)])
        wait_for(lambda: r.llen(STARTED) == 25, timeout=10)
        working = wait_for(
            lambda: sum(r.llen(k) for k in r.keys("gokogeri:working:*")) == 50, timeout=5
        )
        assert working and r.llen("queue:default") == 0
        victim.kill()
    finally:
        victim.stop()
    done_before = Counter(rec["jid"] for rec in records(r, DONE))
    assert set(done_before) == set(quick)
    # A live node notices the silent heartbeat and rescues every job.
    with NodeThread(rescuing_node(cm, redis_url, 25)):
        wait_for(lambda: r.llen(DONE) == 70, timeout=30)
        time.sleep(0.5)  # nothing more runs afterwards
    done = Counter(rec["jid"] for rec in records(r, DONE))
    assert set(done) == set(quick) | set(slow)
    assert max(done.values()) == 1, "a finished job ran twice"
    assert r.llen(DONE) == 70
    assert not r.keys("gokogeri:working:*") and r.hlen("gokogeri:working") == 0


def test_a_job_that_keeps_killing_its_node_goes_dead(
    cm: gredis.ConnManager, r: redispy.Redis, redis_url: str
) -> None:
    jid = Enqueuer(cm).enqueue(Job("KillNode", args=["poison"]))
    runs = 0
    for _ in range(6):
        if r.zcard("dead"):
            break
        node = NodeProcess(redis_url, TEST_CONCURRENCY="2")
        try:
            # Either it runs the job and dies, or it rescues it into the dead set.
            wait_for(lambda: node.proc.poll() is not None or r.zcard("dead"), timeout=20)  # noqa: B023
        finally:
            node.stop()
        runs = r.llen(STARTED)
    ((member, _),) = r.zrange("dead", 0, -1, withscores=True)
    entry = json.loads(member)
    assert entry["jid"] == jid and entry["args"] == ["poison"]
    assert entry["error_class"] == "Gokogeri::JobKilledNode"
    assert "died 3 times" in entry["error_message"]
    assert runs == 3
    assert r.llen("queue:default") == 0 and not r.keys("gokogeri:working:*")
