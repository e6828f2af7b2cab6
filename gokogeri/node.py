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
from collections.abc import Callable
from typing import Any, Literal

from gokogeri.errors import NodeCrashedError
from gokogeri.fetch import BasicFetch, Fetcher
from gokogeri.heartbeat import BEAT_INTERVAL, Heartbeat, ProcessInfo, make_identity
from gokogeri.job import Job
from gokogeri.log import escape
from gokogeri.middleware import ServerChain
from gokogeri.periodic import Entry, Periodic
from gokogeri.processor import Pool
from gokogeri.queues import QueueSet
from gokogeri.redis import ConnManager
from gokogeri.reliable import ReliableFetch
from gokogeri.rescue import RESCUE_AFTER, Rescuer, check_rescue_after
from gokogeri.retry import RetryPolicy
from gokogeri.runtime import EVENTS, DeathHandler, ErrorHandler, Event, Runtime
from gokogeri.scheduler import Scheduler
from gokogeri.worker import Router, Worker, check_worker

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
    observers: objects told about every finished job (events.py).
    log_error_details: False keeps error messages and tracebacks (which can
        quote job data) at DEBUG; failures then log class, jid, error class.

    Hooks, as Sidekiq's: ``node.error_handlers`` (``f(exc, job, ctx)``, every
    failure), ``node.death_handlers`` (``f(job, exc)``, every job that ran out
    of retries), ``node.on("startup"|"quiet"|"shutdown"|"heartbeat", f)``. A hook
    that raises is logged; it never loses or doubles a job.

    ``run()`` raises NodeCrashedError if the node stopped because of a fault in
    gokogeri itself (after pushing every held job back), so a supervisor sees
    a failure; ``gokogeri run`` exits non-zero then.
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
        observers: list[Any] | None = None,
        log_error_details: bool = True,
    ) -> None:
        if fetch not in ("reliable", "basic"):
            raise ValueError(f"fetch must be 'reliable' or 'basic', got {fetch!r}")
        if prefetch is not None and (not isinstance(prefetch, int) or prefetch < 0):
            raise ValueError(f"prefetch must be None (adaptive) or an int >= 0, got {prefetch!r}")
        if heartbeat_interval <= 0:
            raise ValueError("heartbeat_interval must be positive")
        if shutdown_timeout < 0:
            raise ValueError(f"shutdown_timeout must be >= 0, got {shutdown_timeout!r}")
        if fetch == "reliable":
            check_rescue_after(rescue_after, heartbeat_interval)
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
        self.runtime = Runtime(
            cm=conn_manager,
            logger=logger,
            identity=self.identity,
            policy=self.retry_policy,
            timestamp_format=conn_manager.config.timestamp_format,
            observers=list(observers or []),
            log_error_details=log_error_details,
        )
        # Periodic jobs (node.every / node.cron): one enqueue per tick across all nodes.
        self.periodic = Periodic(conn_manager, logger, identity=self.identity)
        self._pools: list[Pool] = []
        self._cancelled = self.runtime.cancelled
        self._started = False
        self._hard_stop = threading.Event()
        self.fatal: BaseException | None = None
        self._quiet = threading.Event()
        self._stop_requested = threading.Event()
        # The grace period a stop(timeout) call asked for. run()'s loop also
        # wakes on that call and may win the stop lock first: it must shut
        # down with the caller's timeout, not shutdown_timeout.
        self._stop_timeout: float | None = None
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
        if not isinstance(instances, int) or isinstance(instances, bool) or instances < 1:
            raise ValueError(f"instances must be a positive int, got {instances!r}")
        check_worker(worker)
        if not queue_set.names():
            raise ValueError(f"{queue_set!r} has no queues")
        name = f"pool{len(self._pools)}"
        fetcher: Fetcher
        if self.fetch_mode == "reliable":
            reliable = ReliableFetch(
                self.cm, self.identity, queue_set, instances, self.logger, name, self.prefetch
            )
            reliable.on_fatal = self._on_fatal
            fetcher = reliable
        else:
            fetcher = BasicFetch(self.cm, queue_set, self.logger)
        self._pools.append(
            Pool(
                name,
                queue_set,
                worker,
                instances,
                fetcher,
                runtime=self.runtime,
                middleware=self.middleware,
                on_fatal=self._on_fatal,
            )
        )

    # --- periodic jobs ---

    def every(self, seconds: float, job: Job | str, **kw: Any) -> Entry:
        """Enqueue ``job`` every ``seconds`` (ticks aligned to the epoch, so every
        node agrees on them); exactly once per tick across all nodes."""
        return self.periodic.every(seconds, job, **kw)

    def cron(self, expr: str, job: Job | str, **kw: Any) -> Entry:
        """Enqueue ``job`` on a cron schedule (5 fields, or 6 with seconds first),
        exactly once per tick across all nodes."""
        return self.periodic.cron(expr, job, **kw)

    # --- hooks and observers ---

    @property
    def error_handlers(self) -> list[ErrorHandler]:
        return self.runtime.hooks.error_handlers

    @property
    def death_handlers(self) -> list[DeathHandler]:
        return self.runtime.hooks.death_handlers

    def on(self, event: Event, fn: Callable[[], Any]) -> None:
        """Call ``fn()`` at a lifecycle event: startup, quiet, shutdown, heartbeat."""
        if event not in EVENTS:
            raise ValueError(f"unknown event {event!r}; expected one of {', '.join(EVENTS)}")
        self.runtime.hooks.lifecycle[event].append(fn)

    def add_observer(self, observer: Any) -> None:
        if self._started:
            raise RuntimeError("add observers before run()")
        self.runtime.observers.append(observer)

    def busy_count(self) -> int:
        """Jobs running right now, over all pools."""
        return sum(p.busy_count() for p in self._pools)

    def queues(self) -> list[str]:
        """Every queue some pool serves, in the order pools were added."""
        out: list[str] = []
        for p in self._pools:
            out += [q for q in p.queue_set.names() if q not in out]
        return out

    def _on_fatal(self, e: BaseException) -> None:
        if self.fatal is None:
            self.fatal = e
        self._stop_requested.set()

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
                asked = self._stop_timeout
                self.stop(self.shutdown_timeout if asked is None else asked)
        self._stopped.wait()
        if self.fatal is not None:
            raise NodeCrashedError(
                f"the node stopped after an internal error: {type(self.fatal).__name__}: "
                f"{escape(str(self.fatal))}"
            ) from self.fatal

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
            "Starting gokogeri node %s: queues %s, concurrency %s, %s fetch, redis %s%s",
            self.identity,
            ",".join(self.queues()),
            self.concurrency,
            self.fetch_mode,
            cfg.redacted_url(),
            f" namespace {cfg.namespace}" if cfg.namespace else "",
        )
        self._warn_unserved()
        self._heartbeat = Heartbeat(
            self.runtime,
            info,
            interval=self.heartbeat_interval,
            busy=self._busy_snapshot,
            counts=self._counts,
            quiet=self._quiet.is_set,
            on_signal=self._on_signal,
        )
        self._heartbeat.start()
        if self.fetch_mode == "reliable":
            self._rescuer = Rescuer(self.runtime, rescue_after=self.rescue_after)
            # Its first pass runs before our pools fetch anything.
            self._rescuer.start(self.heartbeat_interval)
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
        if self.periodic.entries():
            self.periodic.start()
        self.runtime.fire("startup")

    def _warn_unserved(self) -> None:
        """Say so when a pool can run nothing, or a registered job's queue
        (generated workers carry QUEUE) is served by no pool."""
        served = set(self.queues())
        for pool in self._pools:
            router = pool.worker if isinstance(pool.worker, Router) else None
            if router is None:
                continue
            if not len(router):
                self.logger.warning(
                    "%s serves %s with an empty Router: every job will fail as unknown",
                    pool.name,
                    ",".join(pool.queue_set.names()),
                )
            for cls, w in router.workers().items():
                queue = getattr(w, "QUEUE", None)
                if isinstance(queue, str) and queue not in served:
                    self.logger.warning(
                        "jobs of %s go to queue %r, which this node does not serve (-q %s)",
                        cls,
                        queue,
                        queue,
                    )

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
        if self._rescuer is not None:
            self._rescuer.stop()
        self.periodic.stop()
        self.runtime.fire("quiet")

    def stop(self, timeout: float = SHUTDOWN_TIMEOUT) -> None:
        """Quiet, give running jobs ``timeout`` seconds, then cancel and requeue them.

        Always returns, even if a worker ignores ``ctx.cancelled``.
        """
        asked = self._stop_timeout
        self._stop_timeout = timeout if asked is None else min(asked, timeout)
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
            finished = self._wait_pools(time.monotonic() + timeout)
            if not finished:
                self._cancelled.set()
            # Also collects the job of a processor that died of an internal fault.
            n = self._abandon()
            if n:
                log.warning("Pushed %s unfinished jobs back to their queues", n)
            if not finished:
                grace = time.monotonic() + CANCEL_GRACE
                for pool in self._pools:
                    pool.wait(grace)
            for pool in self._pools:
                try:
                    pool.fetcher.close()
                except Exception:
                    log.exception("closing %s's fetcher failed", pool.name)
                pool.close()
            if self._heartbeat is not None:
                self._heartbeat.stop()
            self.runtime.fire("shutdown")
            self._stopped.set()
            log.info("Bye!")

    def _wait_pools(self, deadline: float) -> bool:
        """Wait for running jobs until ``deadline`` or a hard stop; True if all finished."""
        while True:
            step = min(deadline, time.monotonic() + 0.1)
            if all(pool.wait(step) for pool in self._pools):
                return True
            if time.monotonic() >= deadline or self._hard_stop.is_set():
                return False

    def _abandon(self) -> int:
        n = 0
        for pool in self._pools:
            try:
                n += pool.abandon_running()
            except Exception:
                self.logger.exception("could not push %s's running jobs back", pool.name)
        return n

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
        self.logger.info("Got %s from Redis", escape(signal))
        if signal == "TSTP":
            self.quiet()
        elif signal in ("TERM", "INT"):
            self._stop_requested.set()
        elif signal == "TTIN":
            self.dump_threads()

    def request_stop(self, hard: bool = False) -> None:
        """Ask run() to stop, as TERM does; safe from any thread. (From a signal,
        call it off the handler, as gokogeri.signals does: a handler interrupts
        the main thread where it may hold the lock Event.set() needs.)

        ``hard``: end the grace period now (a second Ctrl-C): running jobs are
        cancelled and pushed back to their queues at once.
        """
        if hard:
            self._hard_stop.set()
        self._stop_requested.set()

    def dump_threads(self) -> None:
        frames = sys._current_frames()
        for t in threading.enumerate():
            frame = frames.get(t.ident or -1)
            if frame is not None:
                stack = "".join(traceback.format_stack(frame))
                self.logger.warning("Thread %s\n%s", t.name, stack)
