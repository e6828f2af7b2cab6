"""Prometheus exporter for gokogeri nodes, on the official ``prometheus_client``.

Two kinds of metrics, with two sources:

- Per process, counted as jobs finish (an observer, see gokogeri/events.py):
  ``gokogeri_jobs_processed_total``, ``..._failed_total``, ``..._retried_total``,
  ``..._dead_total`` and the ``gokogeri_job_duration_seconds`` histogram, by
  ``class`` (``wrapped || class``) and ``queue``; ``gokogeri_busy_threads``,
  ``gokogeri_concurrency`` and ``gokogeri_node_info`` per node ``identity``,
  set at every heartbeat.
- Cluster-wide, read from Redis (Sidekiq's keys, so Ruby's jobs count too):
  queue sizes and latencies, the scheduled/retry/dead set sizes, live processes
  and Sidekiq's processed/failed totals. One read batch (two pipelined round
  trips) per ``redis_interval`` at most, however often Prometheus scrapes; a
  scrape in between is served from the last batch. Every node exports the same
  values: aggregate them with ``max``, not ``sum``.

Multi-process: with ``PROMETHEUS_MULTIPROC_DIR`` set before ``prometheus_client``
is first imported, counters and gauges go to per-process files and any process's
exporter reports the sum over all processes (prometheus_client's multiprocess
mode); the per-node gauges keep one series per pid and live process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    make_asgi_app,
    make_wsgi_app,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gokogeri import jsonc
from gokogeri.events import JobEvent
from gokogeri.heartbeat import VERSION
from gokogeri.job import stamp_to_seconds
from gokogeri.redis import ConnManager

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from gokogeri.node import Node

log = logging.getLogger("gokogeri.prometheus")

REDIS_INTERVAL = 5.0  # seconds between Redis reads: the node's heartbeat period
# Seconds; from sub-millisecond jobs to Sidekiq's 5-minute "Slow" bucket.
DURATION_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
)  # fmt: skip
# Label sets are created from payload class names; past this many classes a process
# counts the rest under OTHER_CLASS, so a flood of odd class names cannot grow the
# exporter without bound.
MAX_CLASSES = 1000
OTHER_CLASS = "(other)"
INVALID_CLASS = "(invalid)"  # payloads that were not jobs at all


def multiprocess_dir() -> str | None:
    # prometheus_client reads the (older) lower-case spelling too.
    env = os.environ
    return env.get("PROMETHEUS_MULTIPROC_DIR") or env.get("prometheus_multiproc_dir")


class _JobMetrics:
    """The per-process metric objects, created once and registered in no registry:
    each exporter's registry gets them (or, multi-process, the files they write)."""

    def __init__(self) -> None:
        labels = ("class", "queue")
        self.processed = Counter(
            "gokogeri_jobs_processed",
            "Jobs run by this process (successful or not), as Sidekiq's processed counts.",
            labels,
            registry=None,
        )
        self.failed = Counter(
            "gokogeri_jobs_failed",
            "Job runs that raised (or were not valid jobs).",
            labels,
            registry=None,
        )
        self.retried = Counter(
            "gokogeri_jobs_retried",
            "Failed runs scheduled for a retry.",
            labels,
            registry=None,
        )
        self.dead = Counter(
            "gokogeri_jobs_dead",
            "Failed runs (and invalid payloads) sent to the dead set.",
            labels,
            registry=None,
        )
        self.duration = Histogram(
            "gokogeri_job_duration_seconds",
            "Time spent running a job, server middleware included.",
            labels,
            buckets=DURATION_BUCKETS,
            registry=None,
        )
        self.busy = Gauge(
            "gokogeri_busy_threads",
            "Jobs running on the node at its last heartbeat.",
            ("identity",),
            registry=None,
            multiprocess_mode="liveall",
        )
        self.concurrency = Gauge(
            "gokogeri_concurrency",
            "The node's threads (Sidekiq's concurrency).",
            ("identity",),
            registry=None,
            multiprocess_mode="liveall",
        )
        self.info = Gauge(
            "gokogeri_node_info",
            "A running node (always 1), described by its labels.",
            ("identity", "hostname", "pid", "tag", "version"),
            registry=None,
            multiprocess_mode="liveall",
        )

    def all(self) -> list[Collector]:
        return [
            self.processed, self.failed, self.retried, self.dead, self.duration,
            self.busy, self.concurrency, self.info,
        ]  # fmt: skip


_metrics: _JobMetrics | None = None
_open_nodes = 0  # observers of nodes not yet closed, in this process
_metrics_lock = threading.Lock()


def _job_metrics() -> _JobMetrics:
    global _metrics
    with _metrics_lock:
        if _metrics is None:
            _metrics = _JobMetrics()
        return _metrics


@dataclass(slots=True)
class _Children:
    """One (class, queue)'s labelled metrics, looked up once: labels() costs more
    than the increment itself."""

    processed: Any
    failed: Any
    retried: Any
    dead: Any
    duration: Any


class PrometheusObserver:
    """Counts finished jobs into the process's Prometheus metrics; a node's
    busy/concurrency/info gauges at each beat. Added to a node by
    :func:`start_metrics_server` / :func:`metrics_wsgi_app` (or by hand:
    ``Node(..., observers=[PrometheusObserver(node_or_None)])``)."""

    def __init__(self, node: Node | None = None, *, max_classes: int = MAX_CLASSES) -> None:
        self._m = _job_metrics()
        self._max_classes = max_classes
        self._children: dict[tuple[str, str], _Children] = {}
        self._classes: set[str] = set()
        self._lock = threading.Lock()
        self._node = node
        self._info_labels: tuple[str, ...] | None = None
        if node is not None:
            global _open_nodes
            with _metrics_lock:
                _open_nodes += 1
            self._set_node_gauges(node)

    def _child(self, klass: str, queue: str) -> _Children:
        key = (klass, queue)
        found = self._children.get(key)
        if found is not None:
            return found
        with self._lock:
            if klass not in self._classes:
                if len(self._classes) >= self._max_classes:
                    klass = OTHER_CLASS
                else:
                    self._classes.add(klass)
            m = self._m
            made = _Children(
                m.processed.labels(klass, queue),
                m.failed.labels(klass, queue),
                m.retried.labels(klass, queue),
                m.dead.labels(klass, queue),
                m.duration.labels(klass, queue),
            )
            self._children[key] = made
            return made

    def job_finished(self, event: JobEvent) -> None:
        status = event.status
        c = self._child(event.class_name or INVALID_CLASS, event.queue)
        c.processed.inc()
        if status == "invalid":
            c.failed.inc()
            c.dead.inc()
            return
        c.duration.observe(event.seconds)
        if status == "done":
            return
        c.failed.inc()
        if status == "retry":
            c.retried.inc()
        elif status == "dead":
            c.dead.inc()

    def beat(self, client: Any) -> None:
        if self._node is not None:
            self._set_node_gauges(self._node)

    def close(self, client: Any) -> None:
        node = self._node
        if node is None:
            return
        m = self._m
        for gauge in (m.busy, m.concurrency):
            _remove(gauge, node.identity)
        if self._info_labels is not None:
            _remove(m.info, *self._info_labels)
        global _open_nodes
        with _metrics_lock:
            _open_nodes -= 1
            last = _open_nodes == 0
        if last and multiprocess_dir():
            # Drops this pid's live gauges from the shared files (liveall mode).
            mark_dead: Any = multiprocess.mark_process_dead  # untyped in prometheus_client
            mark_dead(os.getpid())

    def _set_node_gauges(self, node: Node) -> None:
        m = self._m
        ident = node.identity
        m.busy.labels(ident).set(node.busy_count())
        m.concurrency.labels(ident).set(node.concurrency)
        if self._info_labels is None:
            host = os.environ.get("DYNO") or socket.gethostname()
            self._info_labels = (ident, host, str(os.getpid()), node.tag, VERSION)
            m.info.labels(*self._info_labels).set(1)


def _remove(metric: Any, *labels: str) -> None:
    with contextlib.suppress(KeyError):
        metric.remove(*labels)


class RedisCollector(Collector):
    """Cluster-wide gauges read from Redis at most once per ``interval`` seconds.

    A scrape within ``interval`` of the last read is answered from that read, and
    concurrent scrapes wait for one read instead of each making their own. When
    Redis fails, the last values are served (``gokogeri_redis_stats_age_seconds``
    tells how old) and the next attempt waits a full interval.
    """

    def __init__(
        self,
        cm: ConnManager,
        interval: float = REDIS_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self._cm = cm
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._attempted: float | None = None
        self._read_at: float | None = None
        self._families: list[Metric] = []
        self.reads = 0  # read batches sent to Redis, for tests and curiosity

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            now = self._clock()
            if self._attempted is None or now - self._attempted >= self.interval:
                self._attempted = now
                try:
                    self._families = self._read()
                    self._read_at = now
                except Exception as e:  # a scrape must answer even with Redis down
                    log.warning("reading queue stats from Redis failed: %s", e)
            families = list(self._families)
            read_at = self._read_at
        age = GaugeMetricFamily(
            "gokogeri_redis_stats_age_seconds",
            "How old the Redis-derived values in this scrape are (-1: never read).",
            value=-1.0 if read_at is None else max(0.0, self._clock() - read_at),
        )
        return [*families, age]

    def _read(self) -> list[Metric]:
        keys = self._cm.keys
        client = self._cm.client
        self.reads += 1
        pipe = client.pipeline(transaction=False)
        pipe.smembers(keys.queues)
        pipe.zcard(keys.schedule)
        pipe.zcard(keys.retry)
        pipe.zcard(keys.dead)
        pipe.scard(keys.processes)
        pipe.get(keys.stat_processed)
        pipe.get(keys.stat_failed)
        members, scheduled, retries, dead, procs, processed, failed = pipe.execute()
        names = sorted(_text(m) for m in cast(set[bytes], members))
        pipe = client.pipeline(transaction=False)
        for q in names:
            pipe.llen(keys.queue(q))
            pipe.lindex(keys.queue(q), -1)  # the oldest job: the queue's latency
        replies = pipe.execute() if names else []
        now = time.time()
        size = GaugeMetricFamily(
            "gokogeri_queue_size", "Jobs waiting in each queue.", labels=["queue"]
        )
        latency = GaugeMetricFamily(
            "gokogeri_queue_latency_seconds",
            "Age of the oldest job in each queue (Sidekiq's Queue#latency).",
            labels=["queue"],
        )
        for i, q in enumerate(names):
            size.add_metric([q], int(replies[2 * i]))
            latency.add_metric([q], _latency(replies[2 * i + 1], now))
        return [
            size,
            latency,
            GaugeMetricFamily(
                "gokogeri_scheduled_jobs", "Jobs in the scheduled set.", value=int(scheduled)
            ),
            GaugeMetricFamily("gokogeri_retry_jobs", "Jobs in the retry set.", value=int(retries)),
            GaugeMetricFamily("gokogeri_dead_jobs", "Jobs in the dead set.", value=int(dead)),
            GaugeMetricFamily(
                "gokogeri_processes",
                "Live Sidekiq and gokogeri processes (the processes set).",
                value=int(procs),
            ),
            CounterMetricFamily(
                "gokogeri_cluster_processed",
                "Sidekiq's stat:processed: jobs run by every process, Ruby or Python.",
                value=_int(processed),
            ),
            CounterMetricFamily(
                "gokogeri_cluster_failed",
                "Sidekiq's stat:failed.",
                value=_int(failed),
            ),
        ]


def _text(b: bytes | str) -> str:
    return b.decode("utf-8", "replace") if isinstance(b, bytes) else b


def _int(b: bytes | None) -> int:
    try:
        return int(b or 0)
    except ValueError:
        return 0


def _latency(entry: bytes | None, now: float) -> float:
    """Sidekiq's calculate_latency: now - (enqueued_at || created_at), 0 without one.
    Any payload at all may sit in a queue; one we cannot read has latency 0."""
    if entry is None:
        return 0.0
    try:
        job = jsonc.loads(entry)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return 0.0
    if not isinstance(job, dict):
        return 0.0
    stamp = job.get("enqueued_at") or job.get("created_at")
    seconds = stamp_to_seconds(stamp)
    return 0.0 if seconds is None else now - seconds


# --- wiring ---------------------------------------------------------------------------------

_observers: weakref.WeakKeyDictionary[Node, PrometheusObserver] = weakref.WeakKeyDictionary()
_observers_lock = threading.Lock()


def observe(node: Node) -> PrometheusObserver:
    """The node's PrometheusObserver, added to it on the first call (once per node,
    however many exporters are mounted)."""
    with _observers_lock:
        obs = _observers.get(node)
        if obs is None:
            obs = PrometheusObserver(node)
            node.add_observer(obs)
            _observers[node] = obs
        return obs


def build_registry(
    node: Node | None = None,
    *,
    cm: ConnManager | None = None,
    redis_interval: float = REDIS_INTERVAL,
    process_metrics: bool = True,
) -> CollectorRegistry:
    """A registry with everything above: the per-process metrics (or, in
    multi-process mode, every process's), the Redis gauges when a ConnManager
    (or a node, whose ``cm`` is used) is given, and ``process_``/``python_``
    runtime metrics unless ``process_metrics=False``."""
    if node is not None:
        observe(node)
        cm = cm if cm is not None else node.cm
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir():
        collector: Any = multiprocess.MultiProcessCollector  # untyped in prometheus_client
        collector(registry)
    else:
        for metric in _job_metrics().all():
            registry.register(metric)
        if process_metrics:
            for c in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
                registry.register(c)
    if cm is not None:
        registry.register(RedisCollector(cm, redis_interval))
    return registry


def metrics_wsgi_app(
    node: Node | None = None,
    *,
    cm: ConnManager | None = None,
    redis_interval: float = REDIS_INTERVAL,
) -> Callable[..., Iterable[bytes]]:
    """A WSGI app serving the metrics (mount it at ``/metrics`` in Flask/Django...).

    With ``node``, that node's jobs are counted; with only ``cm`` (a web process
    that enqueues), the Redis gauges alone, plus multi-process counters if enabled.
    """
    app: Callable[..., Iterable[bytes]] = make_wsgi_app(
        build_registry(node, cm=cm, redis_interval=redis_interval)
    )
    return app


def metrics_asgi_app(
    node: Node | None = None,
    *,
    cm: ConnManager | None = None,
    redis_interval: float = REDIS_INTERVAL,
) -> Callable[..., Any]:
    """The same as an ASGI app (Starlette/FastAPI ``app.mount("/metrics", ...)``)."""
    app: Callable[..., Any] = make_asgi_app(
        build_registry(node, cm=cm, redis_interval=redis_interval)
    )
    return app


class MetricsServer:
    """A running exporter HTTP server (``port`` is the bound one, useful with 0)."""

    def __init__(self, httpd: WSGIServer, thread: threading.Thread) -> None:
        self._httpd = httpd
        self._thread = thread

    @property
    def port(self) -> int:
        return int(self._httpd.server_port)

    @property
    def url(self) -> str:
        host = str(self._httpd.server_address[0])
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_metrics_server(
    node: Node,
    port: int,
    addr: str = "127.0.0.1",
    *,
    redis_interval: float = REDIS_INTERVAL,
) -> MetricsServer:
    """Serve ``node``'s metrics on http://addr:port/ (any path) from a daemon thread.

    Call before ``node.run()``; ``gokogeri run --metrics-port`` does. Loopback by
    default: pass ``addr="0.0.0.0"`` to let a Prometheus on another host in.
    """
    registry = build_registry(node, redis_interval=redis_interval)
    httpd, thread = start_http_server(port, addr, registry)
    return MetricsServer(httpd, thread)
