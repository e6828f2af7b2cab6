"""The Prometheus exporter (gokogeri.prometheus) scraped over real HTTP from a running Node."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis as redispy
from prometheus_client.parser import text_string_to_metric_families

import gokogeri
from gokogeri import redis as gredis
from gokogeri.events import JobEvent
from gokogeri.prometheus import (
    OTHER_CLASS,
    PrometheusObserver,
    RedisCollector,
    metrics_asgi_app,
    metrics_wsgi_app,
    start_metrics_server,
)
from gokogeri.testing import RedisServer, free_port

ROOT = Path(__file__).parent.parent
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=10) as resp:
        text = resp.read().decode()
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def zcard_calls(r: redispy.Redis) -> int:
    stats: dict[str, Any] = r.info("commandstats")
    return int(stats.get("cmdstat_zcard", {}).get("calls", 0))


class RunningNode:
    def __init__(self, cm: gredis.ConnManager, queues: list[str], router: gokogeri.Router) -> None:
        self.node = gokogeri.Node(
            gokogeri.nop_logger(), cm, heartbeat_interval=0.1, poll_interval_average=0.2
        )
        self.node.process_queues(gokogeri.OrderedQueueSet(queues), router, 2)
        self.thread = threading.Thread(target=self.node.run)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.node.stop(5)
        self.thread.join(15)
        assert not self.thread.is_alive()


@pytest.fixture
def klass() -> str:
    """A class name of this test only: the job counters are per process, shared by tests."""
    return "Prom" + uuid.uuid4().hex[:8]


def test_scrape_after_a_known_workload(cm: gredis.ConnManager, klass: str) -> None:
    done = threading.Semaphore(0)

    def work(ctx: gokogeri.Context, job: gokogeri.Job) -> None:
        try:
            if job.args[0] != "ok":
                raise RuntimeError("failing on purpose")
        finally:
            done.release()

    router = gokogeri.Router()
    router.register(klass, work)
    # 5 succeed; 3 fail into the retry set (retry: true); 2 fail straight to the dead set.
    jobs = [gokogeri.Job(class_name=klass, queue="pq", args=["ok", i]) for i in range(5)]
    jobs += [gokogeri.Job(class_name=klass, queue="pq", args=["retry", i]) for i in range(3)]
    jobs += [gokogeri.Job(class_name=klass, queue="pq", args=["die", i], retry=0) for i in range(2)]
    # Left in a queue nobody works, for the queue gauges: 4 jobs, the oldest 30 s old.
    waiting = [gokogeri.Job(class_name="Idle", queue="idle", args=[i]) for i in range(4)]
    enq = gokogeri.Enqueuer(cm)
    enq.enqueue_bulk(waiting)
    cm.client.lset("queue:idle", -1, json.dumps({**waiting[0].fields, "enqueued_at": 1.0}))

    run = RunningNode(cm, ["pq"], router)
    server = start_metrics_server(run.node, 0, redis_interval=0.01)
    try:
        run.start()
        enq.enqueue_bulk(jobs)
        for _ in jobs:
            assert done.acquire(timeout=30)
        # Counters move when each job is settled, just after it returned.
        for _ in range(200):
            s = scrape(server.url)
            if value(s, "gokogeri_jobs_processed_total", **{"class": klass, "queue": "pq"}) == 10:
                break
            threading.Event().wait(0.05)
        s = scrape(server.url)
    finally:
        run.stop()
        server.close()

    lab = {"class": klass, "queue": "pq"}
    assert value(s, "gokogeri_jobs_processed_total", **lab) == 10
    assert value(s, "gokogeri_jobs_failed_total", **lab) == 5
    assert value(s, "gokogeri_jobs_retried_total", **lab) == 3
    assert value(s, "gokogeri_jobs_dead_total", **lab) == 2
    assert value(s, "gokogeri_job_duration_seconds_count", **lab) == 10
    assert value(s, "gokogeri_job_duration_seconds_bucket", le="+Inf", **lab) == 10
    # Redis-derived: the sets and the idle queue.
    assert value(s, "gokogeri_retry_jobs") == 3
    assert value(s, "gokogeri_dead_jobs") == 2
    assert value(s, "gokogeri_scheduled_jobs") == 0
    assert value(s, "gokogeri_queue_size", queue="idle") == 4
    assert value(s, "gokogeri_queue_size", queue="pq") == 0
    latency = value(s, "gokogeri_queue_latency_seconds", queue="idle")
    assert latency is not None and latency > 1_000_000_000  # enqueued_at 1.0: 1970
    assert value(s, "gokogeri_queue_latency_seconds", queue="pq") == 0
    ident = run.node.identity
    assert value(s, "gokogeri_concurrency", identity=ident) == 2
    busy = value(s, "gokogeri_busy_threads", identity=ident)
    assert busy is not None and 0 <= busy <= 2
    info = [k for k in s if k[0] == "gokogeri_node_info" and ("identity", ident) in k[1]]
    assert len(info) == 1 and dict(info[0][1])["pid"] == str(os.getpid())
    assert value(s, "gokogeri_processes") is not None
    assert value(s, "process_resident_memory_bytes") is not None


def test_hundred_scrapes_cost_one_redis_read(
    cm: gredis.ConnManager, r: redispy.Redis, klass: str
) -> None:
    """100 concurrent scrapes within one interval: one read batch (3 ZCARDs) in Redis."""
    router = gokogeri.Router()
    router.register(klass, lambda ctx, job: None)
    run = RunningNode(cm, ["pq"], router)
    server = start_metrics_server(run.node, 0, redis_interval=3600)
    try:
        run.start()
        before = zcard_calls(r)
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(lambda _: scrape(server.url), range(100)))
        after = zcard_calls(r)
    finally:
        run.stop()
        server.close()
    assert all(value(x, "gokogeri_retry_jobs") == 0 for x in results)
    assert after - before == 3  # schedule, retry, dead: once


def test_redis_is_read_again_only_after_the_interval(
    cm: gredis.ConnManager, r: redispy.Redis
) -> None:
    now = [1000.0]
    collector = RedisCollector(cm, interval=5.0, clock=lambda: now[0])
    for _ in range(50):
        list(collector.collect())
    assert collector.reads == 1
    now[0] += 4.9
    r.zadd("retry", {"x": 1.0})
    fams = {m.name: m for m in collector.collect()}
    assert collector.reads == 1
    assert fams["gokogeri_retry_jobs"].samples[0].value == 0  # the cached read
    assert fams["gokogeri_redis_stats_age_seconds"].samples[0].value == pytest.approx(4.9)
    now[0] += 0.1
    fams = {m.name: m for m in collector.collect()}
    assert collector.reads == 2
    assert fams["gokogeri_retry_jobs"].samples[0].value == 1


def test_redis_down_serves_the_last_values_and_waits_an_interval() -> None:
    now = [0.0]
    with RedisServer() as server:
        cm = gredis.ConnManager(gredis.Config(url=server.url, connect_timeout=0.5))
        collector = RedisCollector(cm, interval=1.0, clock=lambda: now[0])
        list(collector.collect())
    try:
        now[0] = 2.0  # the server is gone now
        fams = {m.name: m for m in collector.collect()}
        assert "gokogeri_retry_jobs" in fams  # the last good values
        assert fams["gokogeri_redis_stats_age_seconds"].samples[0].value == 2.0
        attempts = collector.reads
        list(collector.collect())
        assert collector.reads == attempts  # not retried on every scrape
    finally:
        cm.close()


def test_garbage_in_a_queue_reads_as_latency_zero(cm: gredis.ConnManager, r: redispy.Redis) -> None:
    for q, payload in [("a", b"\xff\xfe not json"), ("b", b"[1,2]"), ("c", b'{"enqueued_at":"x"}')]:
        r.sadd("queues", q)
        r.rpush(f"queue:{q}", payload)
    r.sadd("queues", "\x1b[31mred")
    fams = {m.name: m for m in RedisCollector(cm).collect()}
    lat = {s.labels["queue"]: s.value for s in fams["gokogeri_queue_latency_seconds"].samples}
    assert lat == {"a": 0.0, "b": 0.0, "c": 0.0, "\x1b[31mred": 0.0}


def test_class_label_sets_are_bounded(klass: str) -> None:
    """Class names come from payloads: past max_classes they share one label value."""
    obs = PrometheusObserver(max_classes=3)
    for i in range(6):
        obs.job_finished(JobEvent(None, "q", f"{klass}{i}", "done", 0.001))
    body = _call_wsgi(metrics_wsgi_app())
    shown = {f"{klass}{i}" for i in range(6) if f'class="{klass}{i}"' in body}
    assert shown == {f"{klass}{i}" for i in range(3)}
    assert f'gokogeri_jobs_processed_total{{class="{OTHER_CLASS}",queue="q"}} 3.0' in body


def _call_wsgi(app: Any) -> str:
    status: list[str] = []
    chunks = app(
        {"REQUEST_METHOD": "GET", "PATH_INFO": "/metrics", "QUERY_STRING": "", "wsgi.input": None},
        lambda s, h: status.append(s),
    )
    assert status[0].startswith("200")
    return b"".join(chunks).decode()


MULTI_SCRIPT = r"""
import sys
from gokogeri.events import JobEvent
from gokogeri.testing import RedisServer, free_port
from gokogeri.prometheus import PrometheusObserver
obs = PrometheusObserver()
for _ in range(int(sys.argv[1])):
    obs.job_finished(JobEvent(None, "q", "MultiJob", "done", 0.01))
"""


@pytest.fixture
def multiproc_dir(tmp_path: Any) -> Iterator[str]:
    d = tmp_path / "prom"
    d.mkdir()
    yield str(d)


def test_multi_process_counts_add_up(multiproc_dir: str, redis_url: str) -> None:
    """PROMETHEUS_MULTIPROC_DIR: three processes count, a fourth serves the sum."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": multiproc_dir}
    for n in (3, 4, 5):
        subprocess.run([sys.executable, "-c", MULTI_SCRIPT, str(n)], env=env, check=True)
    serve = (
        "import sys\n"
        "from gokogeri import redis as gredis\n"
        "from gokogeri.prometheus import metrics_wsgi_app\n"
        "cm = gredis.ConnManager(gredis.Config(url=sys.argv[1]))\n"
        "app = metrics_wsgi_app(cm=cm)\n"
        "env = {'REQUEST_METHOD': 'GET', 'PATH_INFO': '/', 'QUERY_STRING': ''}\n"
        "print(b''.join(app(env, lambda s, h: None)).decode())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", serve, redis_url],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    samples: Samples = {}
    for family in text_string_to_metric_families(out):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    assert (
        value(samples, "gokogeri_jobs_processed_total", **{"class": "MultiJob", "queue": "q"}) == 12
    )
    assert value(samples, "gokogeri_queue_size") is None  # no queues in this Redis
    assert value(samples, "gokogeri_retry_jobs") == 0


def test_asgi_app_serves_the_same_metrics(cm: gredis.ConnManager, r: redispy.Redis) -> None:
    r.zadd("dead", {"x": 1.0, "y": 2.0})
    app = metrics_asgi_app(cm=cm)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/metrics", "query_string": b"",
             "headers": []}  # fmt: skip
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 200
    body = b"".join(m.get("body", b"") for m in sent[1:]).decode()
    assert "gokogeri_dead_jobs 2.0" in body


def _run_has_metrics_port() -> bool:
    out = subprocess.run(
        [sys.executable, "-m", "gokogeri", "run", "--help"],
        capture_output=True, text=True, check=False, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    return "--metrics-port" in out.stdout


def test_gokogeri_run_metrics_port(cm: gredis.ConnManager, redis_url: str) -> None:
    """``gokogeri run --metrics-port``: a real process scraped over HTTP after a known workload."""
    if not _run_has_metrics_port():
        pytest.skip("gokogeri run has no --metrics-port yet")
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gokogeri", "run", "tests.workers:router", "-q", "pq", "-c", "2",
         "--metrics-port", str(port)],
        env=dict(os.environ, GOKOGERI_REDIS_URL=redis_url),
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        enq = gokogeri.Enqueuer(cm)
        enq.enqueue_bulk([gokogeri.Job("Record", queue="pq", args=[i]) for i in range(5)])
        enq.enqueue_bulk([gokogeri.Job("Fail", queue="pq", args=[i], retry=0) for i in range(2)])
        enq.enqueue_bulk([gokogeri.Job("Record", queue="idle", args=[i]) for i in range(3)])
        s: Samples = {}
        for _ in range(600):  # until the node is up and has settled all 7 (30 s at most)
            try:
                s = scrape(url)
            except OSError:
                s = {}
            if value(
                s, "gokogeri_jobs_processed_total", **{"class": "Fail", "queue": "pq"}
            ) == 2 and (
                value(s, "gokogeri_jobs_processed_total", **{"class": "Record", "queue": "pq"}) == 5
            ):
                break
            threading.Event().wait(0.05)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert value(s, "gokogeri_jobs_processed_total", **{"class": "Record", "queue": "pq"}) == 5
    assert value(s, "gokogeri_jobs_failed_total", **{"class": "Fail", "queue": "pq"}) == 2
    assert value(s, "gokogeri_jobs_dead_total", **{"class": "Fail", "queue": "pq"}) == 2
    assert value(s, "gokogeri_jobs_failed_total", **{"class": "Record", "queue": "pq"}) == 0
    assert value(s, "gokogeri_queue_size", queue="idle") == 3
    assert value(s, "gokogeri_concurrency", identity=next(iter(_identities(s)))) == 2


def _identities(s: Samples) -> set[str]:
    return {dict(k[1])["identity"] for k in s if k[0] == "gokogeri_node_info"}
