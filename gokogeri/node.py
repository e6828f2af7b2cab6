"""The node: one process's set of pools, plus its heartbeat, poller and rescuer
(Sidekiq's Launcher).

``process_queues`` may be called several times before ``run``; each call is
its own pool of ``instances`` threads over its own queue set, like a Sidekiq
capsule. ``run`` blocks until the node stops; ``stop`` may be called from any
thread (or arrives as TERM from the Web UI) and always returns.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
import traceback
from typing import Literal

from gokogeri.fetch import BasicFetch, Fetcher, ReliableFetch
from gokogeri.heartbeat import BEAT_INTERVAL, Heartbeat, ProcessInfo, make_identity
from gokogeri.middleware import ServerChain
from gokogeri.processor import Pool
from gokogeri.queues import QueueSet
from gokogeri.redis import ConnManager
from gokogeri.rescue import RESCUE_AFTER, Rescuer
from gokogeri.retry import RetryPolicy
from gokogeri.scheduler import Scheduler
from gokogeri.worker import Worker

FetchMode = Literal["reliable", "basic"]

SHUTDOWN_TIMEOUT = 25.0  # Sidekiq's default -t, sized for Heroku's 30 s
# After the grace period, cancelled jobs get this long to notice before stop()
# returns without them (Sidekiq waits 3 s after raising Shutdown).
CANCEL_GRACE = 3.0


class Node:
    """One process's job runner.

    fetch: "reliable" (default; crash-safe, see fetch.py) or "basic" (Sidekiq's BRPOP).
    tag, labels: shown in the Web UI's process list.
    heartbeat_interval: seconds between beats (Sidekiq 6: 5).
    poll_interval_average: fixed scheduler poll interval; None scales it by
        the number of processes, as Sidekiq does.
    retry_policy: max retries, dead-set limits, which Sidekiq version to match.
    rescue_after: seconds without a beat before another node's jobs are rescued.
    shutdown_timeout: the grace period run() gives jobs when TERM arrives.
    middleware: the server middleware chain, around every job.
    scheduler: False for nodes that should not move scheduled/retry jobs.
    prefetch: jobs held beyond the running ones; None adapts it to job time.
    """

    def __init__(
        self,
        logger: logging.Logger,
        conn_manager: ConnManager,
        *,
        fetch: FetchMode = "reliable",
        tag: str = "",
        labels: list[str] | None = None,
        heartbeat_interval: float = BEAT_INTERVAL,
        poll_interval_average: float | None = None,
        retry_policy: RetryPolicy | None = None,
        rescue_after: float = RESCUE_AFTER,
        shutdown_timeout: float = SHUTDOWN_TIMEOUT,
        middleware: ServerChain | None = None,
        scheduler: bool = True,
        prefetch: int | None = None,
    ) -> None:
        if fetch not in ("reliable", "basic"):
            raise ValueError(f"fetch must be 'reliable' or 'basic', got {fetch!r}")
        if prefetch is not None and (not isinstance(prefetch, int) or prefetch < 0):
            raise ValueError(f"prefetch must be None (adaptive) or an int >= 0, got {prefetch!r}")
        if heartbeat_interval <= 0:
            raise ValueError("heartbeat_interval must be positive")
        self.logger = logger
        self.cm = conn_manager
        self.fetch_mode: FetchMode = fetch
        self.tag = tag
        self.labels = list(labels or [])
        self.heartbeat_interval = heartbeat_interval
        self.poll_interval_average = poll_interval_average
        self.retry_policy = retry_policy or RetryPolicy()
        self.rescue_after = rescue_after
        self.shutdown_timeout = shutdown_timeout
        self.middleware: ServerChain = middleware if middleware is not None else ServerChain()
        self.run_scheduler = scheduler
        self.prefetch = prefetch
        self.identity = make_identity()
        self._pools: list[Pool] = []
        self._cancelled = threading.Event()
        self._started = False
        self._quiet = threading.Event()
        self._stop_requested = threading.Event()
        self._stopped = threading.Event()
        self._stop_lock = threading.Lock()
        self._heartbeat: Heartbeat | None = None
        self._scheduler: Scheduler | None = None
        self._rescuer: Rescuer | None = None

    # --- configuration ---

    def process_queues(self, queue_set: QueueSet, worker: Worker, instances: int) -> None:
        """Add a pool of ``instances`` threads running ``worker`` on ``queue_set``."""
        if self._started:
            raise RuntimeError("process_queues must be called before run()")
        if not isinstance(instances, int) or instances < 1:
            raise ValueError(f"instances must be a positive int, got {instances!r}")
        if not callable(getattr(worker, "work", None)):
            raise TypeError(f"{worker!r} is not a Worker: it needs a work(ctx, job) method")
        name = f"pool{len(self._pools)}"
        fetcher: Fetcher
        if self.fetch_mode == "reliable":
            fetcher = ReliableFetch(
                self.cm, self.identity, queue_set, instances, self.logger, name, self.prefetch
            )
        else:
            fetcher = BasicFetch(self.cm, queue_set, self.logger)
        self._pools.append(
            Pool(
                name,
                queue_set,
                worker,
                instances,
                fetcher,
                logger=self.logger,
                identity=self.identity,
                middleware=self.middleware,
                policy=self.retry_policy,
                timestamp_format=self.cm.config.timestamp_format,
                cancelled=self._cancelled,
                on_fatal=lambda e: self._stop_requested.set(),
            )
        )

    @property
    def concurrency(self) -> int:
        return sum(p.instances for p in self._pools)

    @property
    def quiet_requested(self) -> bool:
        return self._quiet.is_set()

    # --- running ---

    def run(self) -> None:
        """Start everything and block until the node has stopped."""
        if not self._pools:
            raise RuntimeError("nothing to run: call process_queues() first")
        # Under the stop lock, so a stop() racing with start-up waits for it.
        with self._stop_lock:
            if self._started:
                raise RuntimeError("a Node runs once; create a new one")
            self._started = True
            if self._stopped.is_set():
                return
            self._start()
        while not self._stopped.is_set():
            if self._stop_requested.wait(0.5):
                self.stop(self.shutdown_timeout)
        self._stopped.wait()

    def _start(self) -> None:
        log = self.logger
        cfg = self.cm.config
        info = ProcessInfo(
            identity=self.identity,
            hostname=os.environ.get("DYNO") or socket.gethostname(),
            pid=os.getpid(),
            tag=self.tag,
            labels=self.labels,
            started_at=time.time(),
            capsules=[
                (
                    "default" if i == 0 else p.name,
                    p.instances,
                    p.queue_set.mode(),
                    p.queue_set.weights(),
                )
                for i, p in enumerate(self._pools)
            ],
        )
        log.info(
            "Starting gokogeri node %s, concurrency %s, %s fetch, redis %s",
            self.identity,
            self.concurrency,
            self.fetch_mode,
            cfg.redacted_url(),
        )
        self._rescuer = Rescuer(
            self.cm,
            log,
            own_identity=self.identity,
            policy=self.retry_policy,
            timestamp_format=cfg.timestamp_format,
            rescue_after=self.rescue_after,
        )
        self._heartbeat = Heartbeat(
            self.cm,
            info,
            log,
            interval=self.heartbeat_interval,
            busy=self._busy_snapshot,
            counts=self._counts,
            quiet=self._quiet.is_set,
            on_signal=self._on_signal,
            on_beat=self._rescue,
        )
        self._heartbeat.start()
        self._rescue()
        for pool in self._pools:
            pool.start()
        if self.run_scheduler:
            self._scheduler = Scheduler(
                self.cm,
                log,
                timestamp_format=cfg.timestamp_format,
                policy=self.retry_policy,
                poll_interval_average=self.poll_interval_average,
            )
            self._scheduler.start()

    def quiet(self) -> None:
        """Stop fetching (prefetched jobs go back); running jobs finish. Heartbeat goes on."""
        if self._quiet.is_set():
            return
        self._quiet.set()
        self.logger.info("Quieting: no new jobs will be started")
        for pool in self._pools:
            pool.quiet()
        if self._scheduler is not None:
            self._scheduler.stop()

    def stop(self, timeout: float = SHUTDOWN_TIMEOUT) -> None:
        """Quiet, give running jobs ``timeout`` seconds, then cancel and requeue them.

        Always returns, even if a worker ignores ``ctx.cancelled``.
        """
        self._stop_requested.set()
        with self._stop_lock:
            if self._stopped.is_set():
                return
            if not self._started:
                self._stopped.set()
                return
            log = self.logger
            log.info("Shutting down (timeout %ss)", timeout)
            self.quiet()
            deadline = time.monotonic() + timeout
            finished = all(pool.wait(deadline) for pool in self._pools)
            if not finished:
                self._cancelled.set()
                n = sum(pool.abandon_running() for pool in self._pools)
                log.warning("Grace period over: pushed %s unfinished jobs back to their queues", n)
                grace = time.monotonic() + CANCEL_GRACE
                for pool in self._pools:
                    pool.wait(grace)
            for pool in self._pools:
                pool.fetcher.close()
            if self._heartbeat is not None:
                self._heartbeat.stop()
            self._stopped.set()
            log.info("Bye!")

    def wait_stopped(self, timeout: float | None = None) -> bool:
        return self._stopped.wait(timeout)

    # --- callbacks ---

    def _busy_snapshot(self) -> dict[str, tuple[str, bytes, int]]:
        out: dict[str, tuple[str, bytes, int]] = {}
        for pool in self._pools:
            for tid, b in list(pool.busy.items()):
                out[tid] = (b.queue, b.raw, b.run_at)
        return out

    def _counts(self) -> tuple[int, int]:
        processed = failed = 0
        for pool in self._pools:
            p, f = pool.counts()
            processed += p
            failed += f
        return processed, failed

    def _on_signal(self, signal: str) -> None:
        self.logger.info("Got %s from Redis", signal)
        if signal == "TSTP":
            self.quiet()
        elif signal in ("TERM", "INT"):
            self._stop_requested.set()
        elif signal == "TTIN":
            self.dump_threads()

    def request_stop(self) -> None:
        """Ask run() to stop, as TERM does (safe from a signal handler)."""
        self._stop_requested.set()

    def dump_threads(self) -> None:
        frames = sys._current_frames()
        for t in threading.enumerate():
            frame = frames.get(t.ident or -1)
            if frame is not None:
                stack = "".join(traceback.format_stack(frame))
                self.logger.warning("Thread %s\n%s", t.name, stack)

    def _rescue(self) -> None:
        if self.fetch_mode != "reliable" or self._rescuer is None or self._quiet.is_set():
            return
        try:
            self._rescuer.run_once()
        except Exception:
            self.logger.exception("rescuing orphaned jobs failed")
