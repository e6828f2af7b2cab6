"""Redis misbehaving under live nodes: a restart (AOF, appendfsync always) after
a short and a long outage, a CLIENT KILL storm, and a Redis at maxmemory."""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest
import redis as redispy

from gokogeri import Enqueuer, Job
from gokogeri import redis as gredis
from gokogeri.errors import EnqueueError
from tests.faults.conftest import NodeFactory
from tests.faults.harness import (
    FaultRedis,
    Ledger,
    NodeProc,
    Storm,
    leftovers,
    report,
    tally,
    wait_until,
)
from tests.faults.jobs import enqueue_work


def drained(r: redispy.Redis, ledger: Ledger, n: int, nodes: list[NodeProc]) -> bool:
    for node in nodes:
        assert node.alive(), f"a node exited ({node.returncode()}):\n{node.output()[-3000:]}"
    return ledger.ran() >= n and r.llen("queue:default") == 0 and not leftovers(r)


def rescues_logged(nodes: list[NodeProc]) -> int:
    """Rescue passes that moved jobs of a node taken for dead, per the nodes' logs."""
    return sum(
        1 for node in nodes for line in node.output().splitlines() if "WARNING: rescued" in line
    )


# 20 s is the long outage: longer than the rescue window by far, and than a
# blocking fetch's socket timeout (5 s + 2 s), shorter than the 60 s heartbeat
# TTL; it costs 20 s of CI time, which the suite's budget allows.
@pytest.mark.parametrize("down", [2.0, 20.0], ids=["down2s", "down20s"])
def test_redis_restart_with_aof(
    down: float, r: redispy.Redis, ledger: Ledger, sut: FaultRedis, node_factory: NodeFactory
) -> None:
    jids = enqueue_work(sut.url, 4000, ms=5)
    # Three nodes, each of which could take another for dead once Redis is back.
    nodes = [node_factory(FAULTS_CONCURRENCY="4") for _ in range(3)]
    wait_until(lambda: ledger.ran() >= 1000, 60, "the drain to be under way")
    sut.restart(down)
    up = time.monotonic()
    backlog = int(r.llen("queue:default"))
    wait_until(
        lambda: r.llen("queue:default") < backlog or ledger.ran() >= len(jids),
        60,
        "fetching to resume",
        interval=0.01,
    )
    resume_s = time.monotonic() - up
    wait_until(lambda: drained(r, ledger, len(jids), nodes), 120, "the drain to finish")
    time.sleep(0.5)
    lost, dups, strangers = tally(jids, ledger.runs())
    report_rescues = rescues_logged(nodes)
    report(
        f"redis_restart_down_{int(down)}s",
        jobs=len(jids),
        down_seconds=down,
        backlog_at_restart=backlog,
        fetch_resumed_seconds_after_up=round(resume_s, 2),
        lost=len(lost),
        duplicates=dups,
        rescue_passes_logged=report_rescues,
    )
    assert all(n.alive() for n in nodes)
    assert not lost and not strangers
    assert report_rescues == 0, "a live node was taken for dead after the outage"
    assert dups == 0
    assert r.zcard("dead") == 0 and r.zcard("retry") == 0


def test_client_kill_storm(
    r: redispy.Redis, ledger: Ledger, sut: FaultRedis, node_factory: NodeFactory
) -> None:
    jids = enqueue_work(sut.url, 4000, ms=5)
    nodes = [node_factory(FAULTS_CONCURRENCY="5") for _ in range(2)]
    wait_until(lambda: ledger.ran() >= 500, 60, "the drain to be under way")
    ran_before = ledger.ran()
    with Storm(sut.client(), interval=0.1) as storm:
        time.sleep(5.0)
    ran_during = ledger.ran() - ran_before
    wait_until(lambda: drained(r, ledger, len(jids), nodes), 120, "the drain to finish")
    time.sleep(0.5)
    lost, dups, strangers = tally(jids, ledger.runs())
    report(
        "client_kill_storm",
        jobs=len(jids),
        storm_seconds=5.0,
        connections_killed=storm.killed,
        kill_rounds=storm.rounds,
        jobs_run_during_storm=ran_during,
        lost=len(lost),
        duplicates=dups,
        rescue_passes_logged=rescues_logged(nodes),
    )
    assert storm.killed > 0
    assert all(n.alive() for n in nodes)
    assert not lost and not strangers
    assert dups == 0
    assert r.zcard("dead") == 0 and r.zcard("retry") == 0


@pytest.mark.parametrize("fetch", ["reliable", "basic"])
def test_node_started_at_maxmemory_drains(
    fetch: str, r: redispy.Redis, ledger: Ledger, sut: FaultRedis, node_factory: NodeFactory
) -> None:
    jids = enqueue_work(sut.url, 2000, ms=0)
    limit = sut.fill_to_oom()
    with pytest.raises(redispy.exceptions.OutOfMemoryError):
        r.set("faults:probe", "x")  # Redis refuses writes that need memory
    node = node_factory(FAULTS_FETCH=fetch, FAULTS_CONCURRENCY="5")
    wait_until(lambda: drained(r, ledger, len(jids), [node]), 60, "the drain at maxmemory")
    time.sleep(0.5)
    used = int(r.info("memory")["used_memory"])
    with pytest.raises(redispy.exceptions.OutOfMemoryError):
        r.set("faults:probe", "x")  # still full: the whole drain ran at maxmemory
    code = node.stop()
    lost, dups, strangers = tally(jids, ledger.runs())
    report(
        f"maxmemory_{fetch}",
        jobs=len(jids),
        maxmemory=limit,
        used_memory_after=used,
        lost=len(lost),
        duplicates=dups,
        exit_code=code,
    )
    assert not lost and not strangers and dups == 0
    assert code == 0


def test_bulk_enqueue_refused_at_maxmemory_says_what_was_pushed(
    r: redispy.Redis, sut: FaultRedis
) -> None:
    """Redis fills up in the middle of a bulk enqueue: the round trips that
    landed are whole, the refused one left nothing, and the exception lists
    exactly the jids that are in the queue (so a retry of the rest cannot
    duplicate anything)."""
    r.config_set("maxmemory-policy", "noeviction")
    used = int(r.info("memory")["used_memory"])
    # Room for the first round trip (9,000 jobs, ~1.3 MB, plus its request
    # buffer) but not for the second.
    r.config_set("maxmemory", used + (5 << 19))
    total = 30_000
    with (
        gredis.ConnManager(gredis.Config(url=sut.url)) as cm,
        pytest.raises(EnqueueError) as info,
    ):
        Enqueuer(cm).enqueue_many(Job("Work"), [[i] for i in range(total)])
    pushed = info.value.pushed
    queued = Counter(json.loads(m)["jid"] for m in r.lrange("queue:default", 0, -1))
    report(
        "bulk_enqueue_at_maxmemory",
        jobs=total,
        pushed=len(pushed),
        queued=sum(queued.values()),
        cause=type(info.value.__cause__).__name__,
    )
    assert 0 < len(pushed) < total, "the fill-up landed mid-bulk"
    assert Counter(pushed) == queued
    assert isinstance(info.value.__cause__, redispy.RedisError)
