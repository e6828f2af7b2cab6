"""Running jobs: a pool of processor threads over one fetcher (Sidekiq's Manager
and Processor).

Each processor takes a fetched job, decodes it, runs the server middleware
chain around the worker, then acknowledges it (success) or settles it into the
retry or dead set (failure), following Sidekiq's rules in retry.py.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

from gokogeri import jsonc
from gokogeri.errors import InvalidPayloadError
from gokogeri.fetch import Fetcher, UnitOfWork
from gokogeri.job import Job, TimestampFormat
from gokogeri.log import JobLog
from gokogeri.middleware import ServerChain
from gokogeri.queues import QueueSet
from gokogeri.retry import Outcome, RetryPolicy, error_class_name, failure_outcome
from gokogeri.worker import Context, Worker

# How long an idle processor waits for work before re-checking for shutdown.
RETRIEVE_TIMEOUT = 0.5


def thread_tid() -> str:
    """Sidekiq's tid: base 36 of the thread's id xor the pid; any short unique string works."""
    n = threading.get_ident() ^ os.getpid()
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out or "0"


class Busy:
    """What each processor is running now, for the heartbeat's work hash."""

    __slots__ = ("queue", "raw", "run_at", "uow")

    def __init__(self, queue: str, raw: bytes, run_at: int, uow: UnitOfWork) -> None:
        self.queue = queue
        self.raw = raw
        self.run_at = run_at
        self.uow = uow


class Pool:
    """``instances`` processor threads sharing one fetcher (a Sidekiq capsule)."""

    def __init__(
        self,
        name: str,
        queue_set: QueueSet,
        worker: Worker,
        instances: int,
        fetcher: Fetcher,
        *,
        logger: logging.Logger,
        identity: str,
        middleware: ServerChain,
        policy: RetryPolicy,
        timestamp_format: TimestampFormat,
        cancelled: threading.Event,
        on_fatal: Callable[[BaseException], None],
    ) -> None:
        self.name = name
        self.queue_set = queue_set
        self.worker = worker
        self.instances = instances
        self.fetcher = fetcher
        self._log = logger
        self._identity = identity
        self._middleware = middleware
        self._policy = policy
        self._fmt = timestamp_format
        self._cancelled = cancelled
        self._on_fatal = on_fatal
        self._joblog = JobLog(logger)
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        # tid -> what that processor runs; written only by its own thread.
        self.busy: dict[str, Busy] = {}
        # Per-thread counters, summed by the heartbeat: no lock on the hot path.
        self._processed: dict[str, int] = {}
        self._failed: dict[str, int] = {}

    # --- lifecycle ---

    def start(self) -> None:
        self.fetcher.start()
        for i in range(self.instances):
            t = threading.Thread(target=self._run, name=f"{self.name}-p{i}", daemon=True)
            self._threads.append(t)
            t.start()

    def quiet(self) -> None:
        """Finish running jobs; start no new ones."""
        self._stopping.set()
        self.fetcher.quiet()

    def wait(self, deadline: float) -> bool:
        """Wait for the processors until ``deadline`` (monotonic); True if all finished."""
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    def abandon_running(self) -> int:
        """Hard shutdown: push every still-running job back to its queue."""
        running = [b.uow for b in list(self.busy.values())]
        if running:
            self.fetcher.requeue(running)
        return len(running)

    def alive(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def counts(self) -> tuple[int, int]:
        return sum(self._processed.values()), sum(self._failed.values())

    # --- the processor loop ---

    def _run(self) -> None:
        tid = thread_tid()
        self._processed[tid] = 0
        self._failed[tid] = 0
        retrieve = self.fetcher.retrieve
        stopping = self._stopping
        try:
            while not stopping.is_set():
                uow = retrieve(RETRIEVE_TIMEOUT)
                if uow is not None:
                    self._process(tid, uow)
        except BaseException as e:  # a bug in gokogeri itself, not in a job
            self._log.exception("processor %s crashed", tid)
            self._on_fatal(e)

    def _process(self, tid: str, uow: UnitOfWork) -> None:
        try:
            job = Job.decode(uow.payload)
        except InvalidPayloadError as e:
            self._bury_invalid(uow, e)
            self._processed[tid] += 1
            self._failed[tid] += 1
            return
        log = self._log
        joblog = self._joblog
        info = joblog.enabled()
        queue = uow.queue
        self.busy[tid] = Busy(queue, uow.payload, int(time.time()), uow)
        ctx = Context(self._cancelled, log, self._identity, queue)
        kv = ""
        if info:
            kv = f"class={job.class_name} jid={job.jid}"
            joblog.line(kv, "start")
        if log.isEnabledFor(logging.DEBUG):
            log.debug("args %r", job.args, extra={"kv_text": kv})
        started = time.perf_counter()
        try:
            if len(self._middleware):
                self._middleware.invoke((ctx, job, queue), lambda: self.worker.work(ctx, job))
            else:
                self.worker.work(ctx, job)
        except Exception as exc:
            elapsed = time.perf_counter() - started
            self._failed[tid] += 1
            self._processed[tid] += 1
            del self.busy[tid]
            self.fetcher.observe(elapsed)
            if uow.abandoned:
                return  # pushed back by a hard shutdown; it runs again elsewhere
            if info:
                # The message can quote arguments, so INFO carries only the class.
                joblog.line(f"{kv} elapsed={elapsed:.3f}", f"fail: {error_class_name(exc)}")
            log.debug("error: %s", _short(exc), extra={"kv_text": kv})
            self._settle_failure(uow, job, exc)
            return
        elapsed = time.perf_counter() - started
        self._processed[tid] += 1
        del self.busy[tid]
        self.fetcher.observe(elapsed)
        if uow.abandoned:
            return
        self.fetcher.acknowledge(uow)
        if info:
            joblog.line(f"{kv} elapsed={elapsed:.3f}", "done")

    def _settle_failure(self, uow: UnitOfWork, job: Job, exc: BaseException) -> None:
        outcome = failure_outcome(job, exc, self._policy, self._fmt)
        try:
            self.fetcher.settle(uow, outcome, self._policy)
        except Exception:
            # Redis is down: the job stays in the working list (crash-safe fetch)
            # and comes back when the node restarts or is rescued.
            self._log.exception("could not record failure of jid=%s", job.jid)
            return
        if outcome.action == "dead":
            self._log.warning(
                "Adding dead %s job %s",
                job.class_name,
                job.jid,
                extra={"kv": {"queue": outcome.queue}},
            )
        elif outcome.action == "drop":
            self._log.warning(
                "dropped %s job %s (retry: false or dead: false)", job.class_name, job.jid
            )

    def _bury_invalid(self, uow: UnitOfWork, err: InvalidPayloadError) -> None:
        """A payload that is not a job goes to the dead set as Sidekiq does (it
        keeps the raw string: there is no job to annotate). JSON objects get
        the error fields so the Web UI says what is wrong."""
        payload = uow.payload.decode("utf-8", errors="replace")
        try:
            fields = jsonc.loads(uow.payload)
        except ValueError:
            fields = None
        if isinstance(fields, dict):
            fields["error_class"] = "InvalidPayloadError"
            fields["error_message"] = str(err)
            payload = jsonc.dumps(fields)
        self._log.error("invalid job payload on queue %s sent to the dead set: %s", uow.queue, err)
        outcome = Outcome("dead", payload, time.time(), uow.queue)
        try:
            self.fetcher.settle(uow, outcome, self._policy)
        except Exception:
            self._log.exception("could not bury an invalid payload")


def _short(exc: BaseException) -> str:
    # Exception messages can quote arguments; keep the line bounded.
    msg = str(exc)
    return msg if len(msg) <= 200 else msg[:200] + "..."
