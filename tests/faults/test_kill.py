"""Processes that die: SIGKILL mid-drain, a job that kills its own node under a
restarting supervisor, a scheduler killed while moving due jobs."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import cast

import redis as redispy

from gokogeri.testing import RedisServer
from tests.faults import dead
from tests.faults.conftest import NodeFactory
from tests.faults.harness import (
    FaultRedis,
    Ledger,
    NodeProc,
    Supervisor,
    leftovers,
    report,
    tally,
    wait_until,
)
from tests.faults.jobs import enqueue_work, payload, push_oldest_first


def held_by(r: redispy.Redis, node: NodeProc) -> int:
    """Jobs in the working lists of ``node`` (identity is host:pid:nonce)."""
    return sum(n for key, n in leftovers(r).items() if f":{node.pid}:" in key)


def test_kill9_mid_drain_second_node_rescues(
    r: redispy.Redis, ledger: Ledger, sut: FaultRedis, node_factory: NodeFactory
) -> None:
    jids = enqueue_work(sut.url, 3000, ms=10)
    a = node_factory(FAULTS_CONCURRENCY="10")
    b = node_factory(FAULTS_CONCURRENCY="10")
    wait_until(lambda: ledger.ran() >= 800 and held_by(r, a) > 0, 60, "both nodes draining")
    held = held_by(r, a)
    a.kill()
    killed_at = time.monotonic()
    wait_until(lambda: held_by(r, a) == 0, 30, "the survivor to rescue the dead node's lists")
    rescue_s = time.monotonic() - killed_at

    def drained() -> bool:
        assert b.alive(), b.output()[-3000:]
        return ledger.ran() >= len(jids) and r.llen("queue:default") == 0 and not leftovers(r)

    wait_until(drained, 90, "the survivor to drain the queue")
    time.sleep(0.5)  # nothing more runs afterwards
    lost, dups, strangers = tally(jids, ledger.runs())
    report(
        "kill9_mid_drain",
        jobs=len(jids),
        held_by_killed_node=held,
        rescue_seconds=round(rescue_s, 2),
        rescue_after=1.5,
        lost=len(lost),
        duplicates=dups,
        dead=int(r.zcard("dead")),
    )
    assert b.alive()
    assert not lost and not strangers
    # A job runs twice only if the dead node ran it and died before acknowledging it.
    assert dups <= held
    assert r.zcard("dead") == 0 and r.zcard("retry") == 0


def test_job_that_kills_its_node_is_dead_after_3_starts_under_supervisor(
    r: redispy.Redis, ledger: Ledger, sut: FaultRedis, ledger_server: RedisServer, tmp_path: Path
) -> None:
    # The poison job is fetched first; 300 innocent jobs wait behind it, 20 of
    # them prefetched into the same working list each time the node starts.
    # One processor: while the poison job runs, the prefetched ones never
    # start, and rescue puts them back in the same order, so the same jobs sit
    # beside the poison at every crash without ever having started.
    poison_jid, poison = payload("Poison", [0.3])
    innocents = [payload("Work", [10]) for _ in range(300)]
    push_oldest_first(r, [poison] + [p for _, p in innocents])

    sup = Supervisor(
        lambda: NodeProc(
            sut.url,
            ledger_server.url,
            str(tmp_path),
            FAULTS_CONCURRENCY="1",
            FAULTS_PREFETCH="20",
        )
    ).start()
    t0 = time.monotonic()
    try:
        wait_until(
            lambda: (
                r.zcard("dead") >= 1
                # every innocent job either ran or was (wrongly) buried
                and ledger.ran() + r.zcard("dead") - 1 >= len(innocents)
                and r.llen("queue:default") == 0
                and not leftovers(r)
            ),
            90,
            "the poison job to be buried and the innocent ones to run",
            interval=0.1,
        )
        buried_s = time.monotonic() - t0
        time.sleep(0.5)
        survivor_alive = sup.current is not None and sup.current.alive()
    finally:
        sup.stop()
    starts = ledger.starts()
    runs = ledger.runs()
    entries = dead.read(r)
    buried = [cast(dict[str, object], e.fields).get("jid") if e.fields else None for e in entries]
    never_started_buried = [j for j in buried if not starts.get(str(j))]
    lost, dups, strangers = tally([j for j, _ in innocents], runs)
    report(
        "poison_under_supervisor",
        innocents=len(innocents),
        poison_starts=starts.get(poison_jid, 0),
        node_starts=sup.starts,
        exits=sup.exits,
        seconds_to_bury=round(buried_s, 1),
        buried=len(entries),
        buried_never_started=len(never_started_buried),
        innocents_lost=len(lost),
        innocent_duplicates=dups,
    )
    assert survivor_alive, "the node that buried the poison job keeps running"
    assert buried == [poison_jid], f"only the poison job is buried, got {buried}"
    fields = cast(dict[str, object], entries[0].fields)
    assert fields["error_class"] == "Gokogeri::JobKilledNode"
    assert starts[poison_jid] == 3, "dead after exactly 3 starts"
    assert sup.starts == 4 and all(code != 0 for code in sup.exits[:3])
    assert sup.exits[3:] == [0], "the survivor stops cleanly"
    assert not never_started_buried
    assert not lost and not strangers
    assert r.zcard("retry") == 0


def test_scheduler_killed_mid_move_loses_and_doubles_nothing(
    r: redispy.Redis, node_factory: NodeFactory
) -> None:
    n = 40_000
    due = time.time() - 5
    jobs = [payload("Work", [0]) for _ in range(n)]
    for start in range(0, n, 5000):
        r.zadd("schedule", {p: due for _, p in jobs[start : start + 5000]})
    # The nodes process another queue: the moved jobs stay where we can count them.
    env = {"FAULTS_QUEUES": "sink", "FAULTS_CONCURRENCY": "1", "FAULTS_POLL": "0.2"}
    a = node_factory(**env)
    wait_until(lambda: r.zcard("schedule") <= n - 2000, 60, "the scheduler to start moving")
    a.kill()
    remaining = int(r.zcard("schedule"))
    b = node_factory(**env)
    wait_until(lambda: r.zcard("schedule") == 0, 60, "the second scheduler to finish")
    time.sleep(0.5)
    queued = Counter(json.loads(m)["jid"] for m in r.lrange("queue:default", 0, -1))
    lost = {j for j, _ in jobs} - set(queued)
    dups = sum(c - 1 for c in queued.values())
    report(
        "scheduler_killed_mid_move",
        scheduled=n,
        left_when_killed=remaining,
        lost=len(lost),
        duplicates=dups,
    )
    assert 0 < remaining < n, "the kill landed mid-move"
    assert b.alive()
    assert not lost and dups == 0
    assert sum(queued.values()) == n
