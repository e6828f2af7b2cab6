"""Two healthy nodes with the smallest rescue_after allowed never take each
other for dead: a steady drain runs every job exactly once.

FAULTS_STEADY_SECONDS sets how long jobs keep arriving (25 s in CI; the 60 s
run is reported in the README's Reliability section).
"""

from __future__ import annotations

import os
import random
import threading
import time

import pytest
import redis as redispy

import gokogeri
from gokogeri import Enqueuer, Job
from gokogeri import redis as gredis
from gokogeri.rescue import MIN_BEATS_BEFORE_RESCUE
from tests.faults.conftest import NodeFactory
from tests.faults.harness import FaultRedis, Ledger, leftovers, report, tally, wait_until

BEAT = 0.5
SMALLEST_RESCUE_AFTER = MIN_BEATS_BEFORE_RESCUE * BEAT
STEADY_SECONDS = float(os.environ.get("FAULTS_STEADY_SECONDS", "25"))


def test_rescue_after_below_the_smallest_allowed_is_refused(sut: FaultRedis) -> None:
    with gredis.ConnManager(gredis.Config(url=sut.url)) as cm:
        gokogeri.Node(
            gokogeri.nop_logger(), cm, heartbeat_interval=BEAT, rescue_after=SMALLEST_RESCUE_AFTER
        )
        with pytest.raises(ValueError, match="rescue_after"):
            gokogeri.Node(
                gokogeri.nop_logger(),
                cm,
                heartbeat_interval=BEAT,
                rescue_after=SMALLEST_RESCUE_AFTER - 0.1,
            )


def test_two_live_nodes_smallest_rescue_after_steady_drain_runs_each_job_once(
    r: redispy.Redis, ledger: Ledger, sut: FaultRedis, node_factory: NodeFactory
) -> None:
    env = {
        "FAULTS_BEAT": str(BEAT),
        "FAULTS_RESCUE_AFTER": str(SMALLEST_RESCUE_AFTER),
        "FAULTS_CONCURRENCY": "5",
    }
    nodes = [node_factory(**env) for _ in range(2)]
    jids: list[str] = []
    stop = threading.Event()

    def produce() -> None:
        # ~150 jobs/s of 0-40 ms each: both nodes stay busy, never idle for long.
        rng = random.Random(60)
        with gredis.ConnManager(gredis.Config(url=sut.url)) as cm:
            enqueuer = Enqueuer(cm)
            while not stop.wait(0.1):
                batch = enqueuer.enqueue_many(
                    Job("Work"), [[rng.randrange(0, 40)] for _ in range(15)]
                )
                jids.extend(j for j in batch if j is not None)

    producer = threading.Thread(target=produce, name="producer", daemon=True)
    producer.start()
    deadline = time.monotonic() + STEADY_SECONDS
    while time.monotonic() < deadline:
        for node in nodes:
            assert node.alive(), node.output()[-3000:]
        time.sleep(0.5)
    stop.set()
    producer.join(10)

    def drained() -> bool:
        return ledger.ran() >= len(jids) and r.llen("queue:default") == 0 and not leftovers(r)

    wait_until(drained, 60, "the backlog to drain")
    time.sleep(1.0)
    lost, dups, strangers = tally(jids, ledger.runs())
    rescues = sum(
        1 for n in nodes for line in n.output().splitlines() if "WARNING: rescued" in line
    )
    report(
        "two_live_nodes_steady",
        seconds=STEADY_SECONDS,
        heartbeat_interval=BEAT,
        rescue_after=SMALLEST_RESCUE_AFTER,
        jobs=len(jids),
        lost=len(lost),
        duplicates=dups,
        rescue_passes_logged=rescues,
    )
    assert all(n.alive() for n in nodes)
    assert not lost and not strangers
    assert dups == 0 and rescues == 0
