"""Redis Sentinel: URL/Config forms, and failovers under load on real servers.

One master, one replica and three Debian redis-sentinel processes on
127.0.0.1. The drain test forces two ``SENTINEL FAILOVER``s while a node runs
20,000 jobs and checks that every job ran, none was lost, and how many ran
twice; the enqueue test checks that an enqueue either raises or lands.
"""

from __future__ import annotations

import collections
import itertools
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redispy

import gokogeri
from gokogeri import redis as gredis
from tests.conftest import NodeThread, wait_for
from tests.scale.cluster import SERVICE, SentinelCluster, sentinel_binary

needs_sentinel = pytest.mark.skipif(
    sentinel_binary() is None, reason="Debian's redis-sentinel is not installed"
)

ROOT = Path(__file__).parent.parent
JOBS = 20_000
SCHEDULED = 200  # due one every 0.1 s from the start, so some fall due mid-failover


# --- configuration forms (no server needed) ---


def test_sentinel_url_parses_hosts_service_db_and_credentials() -> None:
    cfg = gredis.Config(url="redis+sentinel://app:s3cret@10.0.0.1:26379,10.0.0.2:26380/cache/3")
    t = cfg.target()
    assert cfg.is_sentinel
    assert t.sentinels == [("10.0.0.1", 26379), ("10.0.0.2", 26380)]
    assert t.service == "cache"
    assert t.kwargs["db"] == 3
    assert t.kwargs["username"] == "app"
    assert t.kwargs["password"] == "s3cret"
    assert "s3cret" not in cfg.redacted_url()
    assert cfg.redacted_url() == "redis+sentinel://app:***@10.0.0.1:26379,10.0.0.2:26380/cache/3"


def test_sentinel_config_form_and_its_log_url() -> None:
    cfg = gredis.Config(sentinels=[("127.0.0.1", 26379)], service="jobs", password="pw", db=2)
    t = cfg.target()
    assert t.sentinels == [("127.0.0.1", 26379)]
    assert t.service == "jobs"
    assert t.kwargs["db"] == 2
    assert cfg.redacted_url() == "redis+sentinel://:***@127.0.0.1:26379/jobs/2"
    assert "pw" not in repr(cfg)


def test_sentinel_auth_in_query_is_redacted() -> None:
    url = "redis+sentinel://127.0.0.1:26379/mymaster?sentinel_password=topsecret"
    cfg = gredis.Config(url=url)
    assert cfg.target().sentinel_kwargs["password"] == "topsecret"
    assert "topsecret" not in cfg.redacted_url()


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://127.0.0.1/mymaster/0",  # no port
        "redis+sentinel://127.0.0.1:26379/mymaster/zero",
        "redis+sentinel://127.0.0.1:26379/a/1/2",
        "redis+sentinel://127.0.0.1:26379/mymaster?bogus=1",
        "http://127.0.0.1:6379/0",
    ],
)
def test_bad_sentinel_urls_fail_at_config(url: str) -> None:
    with pytest.raises(ValueError):
        gredis.Config(url=url)


# --- real Sentinel ---


@pytest.fixture(scope="module")
def cluster() -> Iterator[SentinelCluster]:
    if sentinel_binary() is None:
        pytest.skip("Debian's redis-sentinel is not installed")
    with SentinelCluster() as c:
        yield c


def master_client(cluster: SentinelCluster) -> redispy.Redis:
    return redispy.Redis(host="127.0.0.1", port=cluster.master_port())


@needs_sentinel
def test_url_and_config_forms_reach_the_master(cluster: SentinelCluster) -> None:
    for cfg in (
        gredis.Config(url=cluster.url(db=1)),
        gredis.Config(sentinels=cluster.sentinels, service=SERVICE, db=1),
    ):
        with gredis.ConnManager(cfg) as cm:
            cm.client.set("sentinel-probe", "x")
            d = cm.dedicated()
            assert d.get("sentinel-probe") == b"x"
            d.close()
    r = redispy.Redis(host="127.0.0.1", port=cluster.master_port(), db=1)
    assert r.get("sentinel-probe") == b"x"
    r.flushdb()
    r.close()


@needs_sentinel
def test_unknown_service_is_a_clear_error(cluster: SentinelCluster) -> None:
    cfg = gredis.Config(sentinels=cluster.sentinels, service="nosuchmaster")
    with (
        gredis.ConnManager(cfg) as cm,
        pytest.raises(redispy.ConnectionError, match="nosuchmaster"),
    ):
        cm.client.ping()


class EnqueueLoop:
    """Threads enqueueing until stopped; each enqueue either returns a jid
    (it must land) or raises (counted)."""

    def __init__(self, cm: gredis.ConnManager, threads: int = 2) -> None:
        self.enq = gokogeri.Enqueuer(cm)
        self.accepted: list[str] = []
        self.failed: list[str] = []
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._loop, name=f"enq-{n}") for n in range(threads)
        ]

    def _loop(self) -> None:
        i = 0
        while not self.stop.is_set():
            i += 1
            try:
                jid = self.enq.enqueue(gokogeri.Job(class_name="E", queue="enq", args=[i]))
            except (redispy.RedisError, gokogeri.GokogeriError) as e:
                self.failed.append(type(e).__name__)
                continue
            assert jid is not None
            self.accepted.append(jid)
            time.sleep(0.001)  # a steady trickle, not a flood the drain competes with

    def __enter__(self) -> EnqueueLoop:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)


@needs_sentinel
def test_drain_and_enqueue_through_two_failovers_without_loss(cluster: SentinelCluster) -> None:
    r = master_client(cluster)
    r.flushall()
    cfg = gredis.Config(url=cluster.url())
    runs: collections.Counter[str] = collections.Counter()
    finished: list[float] = []  # completion times, to measure the pause
    lock = threading.Lock()
    failovers_done = threading.Event()

    def work(ctx: gokogeri.Context, job: gokogeri.Job) -> None:
        # Slow "work" until both failovers are through, so the drain spans
        # them however fast the machine is (the second failover can only
        # start once Sentinel has turned the old master into a replica,
        # about 10 s after the first); full speed afterwards.
        if not failovers_done.is_set():
            time.sleep(0.02)
        with lock:
            runs[job.args[0]] += 1
            finished.append(time.monotonic())

    with gredis.ConnManager(cfg) as cm:
        enq = gokogeri.Enqueuer(cm)
        template = gokogeri.Job(class_name="Drain", queue="default", args=[])
        for start in range(0, JOBS, 1000):
            enq.enqueue_many(template, [[f"j{i}"] for i in range(start, start + 1000)])
        assert r.llen("queue:default") == JOBS
        r.close()
        t0 = time.time()
        for i in range(SCHEDULED):
            enq.enqueue_at(
                gokogeri.Job(class_name="Drain", queue="default", args=[f"s{i}"]), t0 + 1 + i * 0.1
            )

        logger = logging.getLogger("test.sentinel")
        node = gokogeri.Node(logger, cm, heartbeat_interval=1.0, shutdown_timeout=5)
        node.process_queues(gokogeri.OrderedQueueSet(["default"]), gokogeri.WorkerFunc(work), 10)
        with NodeThread(node), EnqueueLoop(cm) as loop:
            wait_for(lambda: len(runs) > 500, timeout=30)
            for _ in range(2):
                cluster.failover()
            assert len(runs) < JOBS, "the drain finished before the failovers"
            failovers_done.set()
            wait_for(lambda: len(runs) >= JOBS + SCHEDULED, timeout=60, interval=0.1)
            # The heartbeat followed the switches too: the final master lists the node.
            beat = master_client(cluster)
            wait_for(lambda: beat.sismember("processes", node.identity), timeout=10)
            beat.close()
        assert cm.failovers >= 2
        final = master_client(cluster)
        leftovers = {k.decode(): final.llen(k) for k in final.scan_iter("gokogeri:working:*")}
        queued = final.llen("queue:default") + final.zcard("schedule")
        landed = {json.loads(p)["jid"] for p in final.lrange("queue:enq", 0, -1)}
        final.close()

    expected = [f"j{i}" for i in range(JOBS)] + [f"s{i}" for i in range(SCHEDULED)]
    missing = [jid for jid in expected if runs[jid] == 0]
    duplicates = sum(n - 1 for n in runs.values() if n > 1)
    gaps = sorted(b - a for a, b in itertools.pairwise(finished))[-2:]
    lost_enqueues = set(loop.accepted) - landed
    print(
        f"\nsentinel: {JOBS} jobs (+{SCHEDULED} scheduled) drained through 2 failovers: duplicates={duplicates}, "
        f"longest pauses={[round(g, 2) for g in gaps]} s, left in working lists={leftovers}; "
        f"enqueues: {len(loop.accepted)} accepted, {len(loop.failed)} raised {set(loop.failed)}, "
        f"{len(lost_enqueues)} lost"
    )
    assert missing == []
    assert queued == 0
    assert lost_enqueues == set()
    assert len(loop.accepted) > 0
    # Only jobs in flight (running or prefetched) at a switch may run twice.
    assert duplicates <= 2 * (10 + 200)
    assert sum(leftovers.values()) == 0


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gokogeri", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(ROOT),
        env=dict(os.environ, **(env or {})),
        check=False,
    )


@needs_sentinel
def test_gokogeri_run_and_operator_commands_take_the_sentinel_url(
    cluster: SentinelCluster,
) -> None:
    url = cluster.url(db=2)
    log = tempfile.TemporaryFile()  # noqa: SIM115  # closed in the finally below
    node = subprocess.Popen(
        [sys.executable, "-m", "gokogeri", "run", "tests.scale.cli_app:router", "-q", "cli"],
        env=dict(os.environ, GOKOGERI_REDIS_URL=url),
        cwd=str(ROOT),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        out = cli("enqueue", "Record", "--queue", "cli", "--args", "[1]", "--redis-url", url)
        assert out.returncode == 0, out.stderr
        jid = out.stdout.strip().split()[-1]
        r = redispy.Redis(host="127.0.0.1", port=cluster.master_port(), db=2)
        wait_for(lambda: r.lrange("cli:done", 0, -1) == [jid.encode()], timeout=30)
        out = cli("processes", "--json", "--redis-url", url)
        assert out.returncode == 0, out.stderr
        assert len(json.loads(out.stdout)) == 1
        r.close()
    finally:
        node.send_signal(signal.SIGTERM)
        node.wait(30)
        log.seek(0)
        output = log.read().decode(errors="replace")
        log.close()
    assert node.returncode == 0, output
    # An unknown service is one line naming the setting, not a traceback.
    out = cli("stats", "--redis-url", cluster.url().replace("/mymaster/", "/nosuch/"))
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert "nosuch" in out.stderr
