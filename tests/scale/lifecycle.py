"""A node's whole life cycle against one Redis: what the ACL test runs under a
locked-down user, and what ``python -m tests.scale.acl_probe`` watches with
MONITOR to derive the rule set in docs/scale.md.

Enqueue (now, later, many), run, fail and retry, die into the dead set,
schedule, heartbeat, Sidekiq 8 execution metrics (on by default in
``gokogeri run``), rescue the job of a node killed mid-job, quiet from the
Web UI's signal list, stop. ``url`` is the node's (restricted) URL;
``admin`` a client with full rights, used only to look.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from pathlib import Path

import redis as redispy

import gokogeri
from gokogeri import redis as gredis
from gokogeri.metrics import SidekiqMetrics

ROOT = Path(__file__).parent.parent.parent
TIMEOUT = 30.0


def _wait(predicate: object, what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]  # a zero-argument callable
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class LifecycleWorker:
    """One worker for every class; fails "Flaky" once, retried after 1 s."""

    def __init__(self) -> None:
        self.ran: dict[str, int] = {}
        self.lock = threading.Lock()

    def work(self, ctx: gokogeri.Context, job: gokogeri.Job) -> None:
        with self.lock:
            self.ran[job.class_name] = self.ran.get(job.class_name, 0) + 1
            n = self.ran[job.class_name]
        if job.class_name == "Flaky" and n == 1:
            raise RuntimeError("first attempt fails on purpose")
        if job.class_name == "Doomed":
            raise RuntimeError("always fails")

    def retry_in(self, count: int, exc: BaseException, job: gokogeri.Job) -> float:
        return 1.0


def run_lifecycle(url: str, admin: redispy.Redis, namespace: str = "") -> dict[str, int]:
    """Run the life cycle; raise AssertionError if any step did not happen."""
    prefix = f"{namespace}:" if namespace else ""
    cfg = gredis.Config(url=url, namespace=namespace)
    with gredis.ConnManager(cfg) as cm:
        enq = gokogeri.Enqueuer(cm)
        # A node that dies inside its job, in its own process.
        enq.enqueue(gokogeri.Job(class_name="Orphan", queue="doom", args=[]))
        doomed = subprocess.run(
            [sys.executable, "-m", "tests.scale.doomed", url, "doom", namespace],
            cwd=str(ROOT),
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert doomed.returncode == -9, doomed.stderr.decode(errors="replace")

        enq.enqueue_many(gokogeri.Job(class_name="Ok", queue="default", args=[]), [[1], [2], [3]])
        enq.enqueue(gokogeri.Job(class_name="Flaky", queue="default", args=[]))
        enq.enqueue(gokogeri.Job(class_name="Doomed", queue="default", args=[], retry=0))
        enq.enqueue_in(gokogeri.Job(class_name="Later", queue="default", args=[]), 0.5)

        worker = LifecycleWorker()
        node = gokogeri.Node(
            logging.getLogger("lifecycle"),
            cm,
            heartbeat_interval=0.5,
            rescue_after=2.0,
            poll_interval_average=0.5,
        )
        node.process_queues(gokogeri.OrderedQueueSet(["default", "doom"]), worker, 3)
        # As `gokogeri run` does by default: Sidekiq 7/8's Metrics tab data.
        SidekiqMetrics.attach(node)
        thread = threading.Thread(target=node.run, name="lifecycle-node")
        thread.start()
        try:
            _wait(lambda: admin.sismember(prefix + "processes", node.identity), "heartbeat")
            _wait(lambda: worker.ran.get("Ok", 0) == 3, "Ok jobs")
            _wait(lambda: worker.ran.get("Later", 0) == 1, "the scheduled job")
            _wait(lambda: worker.ran.get("Flaky", 0) == 2, "the retried job")
            _wait(lambda: admin.zcard(prefix + "dead") == 1, "the dead job")
            _wait(lambda: worker.ran.get("Orphan", 0) == 1, "the rescued job")
            # Quiet, as the Web UI's button does.
            admin.lpush(f"{prefix}{node.identity}-signals", "TSTP")
            _wait(lambda: admin.hget(prefix + node.identity, "quiet") == b"true", "quiet")
        finally:
            node.stop(5)
            thread.join(15)
        assert not thread.is_alive()
        assert admin.llen(prefix + "queue:default") == 0
        assert admin.zcard(prefix + "retry") == 0
        assert int(admin.get(prefix + "stat:processed") or 0) >= 6
        return dict(worker.ran)
