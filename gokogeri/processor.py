"""Running jobs: a pool of processor threads over one fetcher (Sidekiq's Manager
and Processor).

Each processor takes a fetched job, decodes it, runs the server middleware
chain around the worker (on the pool's event loop for async workers), then
acknowledges it (success) or settles it into the retry or dead set (failure),
following Sidekiq's rules in retry.py and the worker's hooks.

Nothing a job does or carries may stop a processor: any exception a job
raises (SystemExit and KeyboardInterrupt included) is a job failure, and a
payload that cannot be decoded, or a failed job that cannot be re-encoded to
record its failure, goes to the dead set with the reason and its raw bytes.
Anything else that escapes is a fault in gokogeri itself: the pool reports it
and the node stops, pushes held jobs back and exits non-zero.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator

import redis as redispy

from gokogeri.aio import LoopThread
from gokogeri.conns import JobClients
from gokogeri.errors import InvalidPayloadError
from gokogeri.events import JobEvent, Status
from gokogeri.fetch import Fetcher, UnitOfWork
from gokogeri.job import Job
from gokogeri.log import JobLog, escape
from gokogeri.middleware import ServerChain
from gokogeri.queues import QueueSet
from gokogeri.retry import CODEC_ERRORS, Outcome, dead_payload, error_class_name, failure_outcome
from gokogeri.runtime import Runtime
from gokogeri.timers import precise_timers
from gokogeri.worker import Context, Router, Worker, dispatch_name, is_async

# How long an idle processor waits for work before re-checking for shutdown.
RETRIEVE_TIMEOUT = 0.5
# Async fast path: most jobs handed to the event loop in one wake-up of it.
FEED_BATCH = 64
# How often wait() looks whether the async fast path's coroutines are done.
ASYNC_WAIT_POLL = 0.005
# Escaped class names remembered for log lines (payloads choose the names: bounded).
MAX_ESCAPED_NAMES = 1000


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
    """A job a processor is running: the heartbeat's work-hash entry (queue,
    payload, start time) and what the processor needs when the job ends. One
    object per job, built once it is decoded (allocations count per job)."""

    __slots__ = ("ctx", "info", "job", "kv", "run_at", "started", "uow")

    def __init__(
        self, uow: UnitOfWork, job: Job, ctx: Context, kv: str, info: bool, run_at: int
    ) -> None:
        self.uow = uow
        self.job = job
        self.ctx = ctx
        self.kv = kv  # "class=... jid=..." for log lines; "" when nothing logs
        self.info = info  # start/done lines are logged
        self.run_at = run_at  # epoch seconds, for the work hash
        self.started = time.perf_counter()

    @property
    def queue(self) -> str:
        return self.uow.queue

    @property
    def raw(self) -> bytes:
        return self.uow.payload


class Pool:
    """``instances`` processor threads sharing one fetcher (a Sidekiq capsule).

    A pool whose jobs are all coroutines and that has no server middleware
    runs them straight on its event loop instead (``_feed``): one feeder
    thread, ``instances`` coroutines at most. A pool with both kinds and no
    server middleware keeps its threads, but a thread that takes an async job
    hands it to the loop and goes on to its next job (``_handover``); then
    ``instances`` slots, not the threads, bound the jobs running at once.
    Server middleware wraps a whole job, so with it every job is run, and
    waited for, by its thread.
    """

    def __init__(
        self,
        name: str,
        queue_set: QueueSet,
        worker: Worker,
        instances: int,
        fetcher: Fetcher,
        *,
        runtime: Runtime,
        middleware: ServerChain,
        on_fatal: Callable[[BaseException], None],
    ) -> None:
        self.name = name
        self.queue_set = queue_set
        self.worker = worker
        self.instances = instances
        self.fetcher = fetcher
        self._rt = runtime
        self._log = runtime.logger
        self._middleware = middleware
        self._on_fatal = on_fatal
        self._joblog = JobLog(runtime.logger)
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._router = worker if isinstance(worker, Router) else None
        needs_loop = is_async(worker) or (self._router is not None and self._router.has_async())
        self._loop = LoopThread(f"{name}-loop") if needs_loop else None
        # Class names as they appear in log lines (escaping costs more than the lookup).
        self._escaped: dict[str, str] = {}
        # id(worker) -> is its work() a coroutine function; workers live as long as the pool.
        self._async_of: dict[int, bool] = {}
        self.clients = JobClients(runtime.cm, async_pool_size=instances)
        has_sync = (
            self._router.has_sync() if self._router is not None else not is_async(worker)
        )
        self._all_async = needs_loop and not has_sync
        self._choose_path()  # again at start(): middleware may be added after the pool is built
        # The slots (named like processor threads) not running a job, when the
        # loop may run jobs no thread waits for (async fast path, hand-over);
        # a C queue, so taking and giving one back costs no Python lock.
        self._async_tids = [f"{name}a{i}" for i in range(instances)]
        self._free: queue.SimpleQueue[str] = queue.SimpleQueue()
        for tid in self._async_tids:
            self._free.put(tid)
        self._tasks: dict[str, asyncio.Task[None]] = {}  # tid -> its running coroutine
        # Hand-over: async jobs decoded by processor threads, for the loop to
        # start, and whether a wake-up of the loop is already on its way.
        self._handed: deque[tuple[str, Busy, Worker]] = deque()
        self._hand_wake = False
        # Async fast path: jobs handed to the loop whose coroutine has not begun
        # (id -> job). Whoever pops one owns it: the coroutine, to run it, or a
        # hard stop (abandon_running) or close(), to push it back.
        self._unbegun: dict[int, UnitOfWork] = {}
        # tid -> what that processor runs; written only by its own thread.
        self.busy: dict[str, Busy] = {}
        # Per-thread counters, summed by the heartbeat: no lock on the hot path.
        self._processed: dict[str, int] = {}
        self._failed: dict[str, int] = {}

    # --- lifecycle ---

    def _choose_path(self) -> None:
        # Server middleware wraps a whole job, so it needs the thread-per-job path.
        bare = not len(self._middleware)
        self.async_fast = self._all_async and bare
        self._handover = self._loop is not None and not self.async_fast and bare

    def start(self) -> None:
        self._choose_path()
        if self._loop is not None:
            self._loop.start()
        self.fetcher.start()
        if self.async_fast or self._handover:
            for tid in self._async_tids:
                self._processed[tid] = 0
                self._failed[tid] = 0
        if self.async_fast:
            t = threading.Thread(target=self._feed, name=f"{self.name}-feed", daemon=True)
            self._threads.append(t)
            t.start()
            return
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
        if any(t.is_alive() for t in self._threads):
            return False
        # Coroutines the feeder started: done when every slot is back (a
        # shutdown path, so polling is fine).
        while self._free.qsize() < self.instances:
            if time.monotonic() >= deadline:
                return False
            time.sleep(ASYNC_WAIT_POLL)
        return True

    def abandon_running(self) -> int:
        """Hard shutdown: push every still-running job back to its queue and
        cancel running coroutines. Also collects the job of a processor that
        died of an internal fault."""
        # Handed to the loop but not begun: taken from their coroutines (which
        # then end at once) and pushed back after the running ones, fetched
        # before them. A coroutine that took its job an instant earlier runs it
        # once, like any job begun before the stop.
        unbegun = self._take_unbegun()
        running = [b.uow for b in list(self.busy.values())] + unbegun
        if running:
            self.fetcher.requeue(running)
        if self._loop is not None:
            self._loop.cancel_all()
            # Only coroutines whose job has begun. The others find their job
            # taken (or pushed back, a hand-over's) when they start and end;
            # cancelled before their first step, they would skip their body and
            # keep their slot.
            busy = self.busy
            tasks = [t for tid, t in list(self._tasks.items()) if tid in busy]
            if tasks:
                self._loop.loop.call_soon_threadsafe(lambda: [t.cancel() for t in tasks])
        return len(running)

    def close(self) -> None:
        """After the processors are done: stop the event loop, then push back
        what was handed to it and never begun (with BRPOP fetch nothing else
        would: the crash-safe fetch's close() has done so already, and a
        second push of a job no longer in its working list moves nothing)."""
        if self._loop is not None:
            self._loop.stop()
        left = self._take_unbegun()
        if left:
            try:
                self.fetcher.requeue(left)
            except redispy.RedisError as e:
                self._log.warning("%s: could not push %s jobs back: %s", self.name, len(left), e)
        self.clients.close()

    def _take_unbegun(self) -> list[UnitOfWork]:
        """Every job handed to the loop whose coroutine has not taken it yet."""
        unbegun = self._unbegun
        return [u for u in (unbegun.pop(k, None) for k in list(unbegun)) if u is not None]

    def counts(self) -> tuple[int, int]:
        return sum(self._processed.values()), sum(self._failed.values())

    def busy_count(self) -> int:
        return len(self.busy)

    # --- the processor loop ---

    def _run(self) -> None:
        precise_timers()  # a job's sleeps and timeouts end on time (see timers.py)
        tid = thread_tid()
        retrieve = self.fetcher.retrieve
        stopping = self._stopping
        try:
            if self._handover:
                self._run_slots()
                return
            self._processed[tid] = 0
            self._failed[tid] = 0
            while not stopping.is_set():
                uow = retrieve(RETRIEVE_TIMEOUT)
                if uow is not None:
                    self._process(tid, uow)
        except BaseException as e:  # a bug in gokogeri itself, never a job's exception
            self._log.critical("processor %s crashed: internal error", tid, exc_info=True)
            self._on_fatal(e)

    def _slotted_jobs(self) -> Iterator[tuple[str, UnitOfWork]]:
        """Until the pool stops: a free slot, then a fetched job for it (a slot
        that got no job goes back). Whoever ends the job gives the slot back."""
        free, retrieve, stopping = self._free, self.fetcher.retrieve, self._stopping
        while not stopping.is_set():
            try:
                slot = free.get(timeout=RETRIEVE_TIMEOUT)
            except queue.Empty:
                continue
            uow = retrieve(RETRIEVE_TIMEOUT)
            if uow is None:
                free.put(slot)
                continue
            yield slot, uow

    def _run_slots(self) -> None:
        """Hand-over mode: a job run here gives its slot back at once; one
        handed to the loop, when the loop ends it."""
        for slot, uow in self._slotted_jobs():
            if not self._process(slot, uow):
                self._free.put(slot)

    def _process(self, tid: str, uow: UnitOfWork) -> bool:
        """Run one job on this thread; True if it was handed to the loop instead
        (which then finishes it and gives its slot back)."""
        st = self._begin(tid, uow)
        if st is None:
            return False
        worker: Worker | None = None
        try:
            worker = self._router.resolve(st.job) if self._router is not None else self.worker
            if len(self._middleware):
                self._middleware.invoke(
                    (st.ctx, st.job, uow.queue), self._runner(worker, st.ctx, st.job)
                )
            elif self._loop is not None and self._is_async(worker):
                if self._handover:
                    self._hand_over(tid, st, worker)
                    return True
                self._loop.run(worker.work(st.ctx, st.job))
            else:
                worker.work(st.ctx, st.job)
        except BaseException as exc:  # SystemExit/KeyboardInterrupt from a job are failures too
            if self._failed_job(tid, st, exc):
                self._fail(tid, uow, st.job, exc, worker, st.ctx, time.perf_counter() - st.started)
            return False
        self._succeeded(tid, st)
        return False

    def _begin(self, tid: str, uow: UnitOfWork) -> Busy | None:
        """Decode, log the start, mark busy; None if the payload went to the dead set."""
        try:
            job = Job.decode(uow.payload)
        except InvalidPayloadError as e:
            self._bury_invalid(tid, uow, str(e))
            return None
        log = self._log
        info = self._joblog.enabled()
        run_at = int(time.time())
        ctx = Context(self._rt.cancelled, log, self._rt.identity, uow.queue, self.clients)
        kv = ""
        if info or log.isEnabledFor(logging.WARNING):
            name = dispatch_name(job)
            cls = self._escaped.get(name)
            if cls is None:
                cls = escape(name)
                if len(self._escaped) < MAX_ESCAPED_NAMES:
                    self._escaped[name] = cls
            jid = job.jid or ""
            kv = f"class={cls} jid={jid if jid.isalnum() and len(jid) <= 64 else escape(jid)}"
        if info:
            self._joblog.line(kv, "start")
        if log.isEnabledFor(logging.DEBUG):
            log.debug("args %s", escape(repr(job.args), 2000), extra={"kv_text": kv})
        uow.jid = job.jid
        st = self.busy[tid] = Busy(uow, job, ctx, kv, info, run_at)
        self.fetcher.starting(tid, uow)
        return st

    def _succeeded(self, tid: str, st: Busy) -> None:
        elapsed = time.perf_counter() - st.started
        self._processed[tid] += 1
        del self.busy[tid]
        self.fetcher.observe(elapsed)
        if st.uow.abandoned:
            return
        self.fetcher.acknowledge(st.uow)
        if st.info:
            self._joblog.line(f"{st.kv} elapsed={elapsed:.3f}", "done")
        if self._rt.observers:
            job = st.job
            self._rt.notify(JobEvent(job, st.uow.queue, dispatch_name(job), "done", elapsed))

    def _failed_job(self, tid: str, st: Busy, exc: BaseException) -> bool:
        """Count and log a failure; False if the job was pushed back meanwhile
        (a hard shutdown: it runs again elsewhere, nothing is recorded)."""
        elapsed = time.perf_counter() - st.started
        self._failed[tid] += 1
        self._processed[tid] += 1
        del self.busy[tid]
        self.fetcher.observe(elapsed)
        if st.uow.abandoned:
            return False
        if st.info:
            self._joblog.line(f"{st.kv} elapsed={elapsed:.3f}", f"fail: {error_class_name(exc)}")
        self._log_failure(st.kv, exc)
        return True

    # --- async fast path: a pool whose jobs are all coroutines ---

    def _feed(self) -> None:
        """Hand fetched jobs to the event loop, at most ``instances`` at a time.

        Used when every job of the pool is a coroutine and no server middleware
        must wrap it: no processor thread waits on each coroutine. Jobs that
        are already fetched go over in batches of up to FEED_BATCH, one
        wake-up of the loop each (call_soon_threadsafe writes to the loop's
        self-pipe: a syscall on each side, which per job cost more than the
        rest of the hand-off).
        """
        loop = self._loop
        assert loop is not None
        handoff = loop.loop.call_soon_threadsafe
        ready = self.fetcher.ready
        free = self._free
        unbegun = self._unbegun
        try:
            for tid, uow in self._slotted_jobs():
                batch = [(tid, uow)]
                while len(batch) < FEED_BATCH:
                    try:
                        tid = free.get_nowait()
                    except queue.Empty:
                        break
                    more = ready()
                    if more is None:
                        free.put(tid)
                        break
                    batch.append((tid, more))
                for _, u in batch:
                    unbegun[id(u)] = u
                handoff(self._spawn, batch)
        except BaseException as e:
            self._log.critical("%s feeder crashed: internal error", self.name, exc_info=True)
            self._on_fatal(e)

    def _spawn(self, batch: list[tuple[str, UnitOfWork]]) -> None:
        assert self._loop is not None
        create = self._loop.loop.create_task
        tasks = self._tasks
        for tid, uow in batch:
            tasks[tid] = create(self._run_async(tid, uow))

    def _hand_over(self, tid: str, st: Busy, worker: Worker) -> None:
        """From a processor thread: queue a decoded async job for the loop.

        The loop is woken only when no wake-up is pending: call_soon_threadsafe
        writes to the loop's self-pipe, a system call that releases the GIL
        (and wakes the loop thread) per job; jobs handed over meanwhile ride
        on the pending one.
        """
        assert self._loop is not None
        item = (tid, st, worker)
        self._handed.append(item)
        if self._hand_wake:
            return
        self._hand_wake = True
        try:
            self._loop.loop.call_soon_threadsafe(self._spawn_handed)
        except BaseException:
            # The loop is closed: nothing will start the job; the caller fails it.
            self._hand_wake = False
            with contextlib.suppress(ValueError):
                self._handed.remove(item)
            raise

    def _spawn_handed(self) -> None:
        """On the loop: start every job handed over so far. The flag drops
        before the queue is read, so a job appended after this read scheduled
        a call of its own (the GIL orders the two threads' steps)."""
        assert self._loop is not None
        self._hand_wake = False
        create = self._loop.loop.create_task
        handed, tasks = self._handed, self._tasks
        while handed:
            tid, st, worker = handed.popleft()
            tasks[tid] = create(self._run_async(tid, st.uow, st, worker))

    async def _run_async(
        self, tid: str, uow: UnitOfWork, st: Busy | None = None, worker: Worker | None = None
    ) -> None:
        """One job on the loop; its slot is given back at the end. The fast
        path passes the fetched job; a hand-over passes it decoded (``st``)
        with its worker."""
        try:
            if st is None:
                if self._unbegun.pop(id(uow), None) is None:
                    return  # a hard stop or close() took it first and pushed it back
                st = self._begin(tid, uow)
                if st is None:
                    return
            elif st.uow.abandoned:
                # Handed over, then pushed back by a hard stop before the loop
                # got to it: not run (it is queued again), its entry let go.
                self.busy.pop(tid, None)
                return
            try:
                if worker is None:
                    worker = (
                        self._router.resolve(st.job) if self._router is not None else self.worker
                    )
                await worker.work(st.ctx, st.job)
            except BaseException as exc:  # CancelledError at a hard stop included
                if self._failed_job(tid, st, exc):
                    # Settling is a blocking Redis call: off the loop.
                    elapsed = time.perf_counter() - st.started
                    await asyncio.get_running_loop().run_in_executor(
                        None, self._fail, tid, uow, st.job, exc, worker, st.ctx, elapsed
                    )
                return
            self._succeeded(tid, st)
        except BaseException as e:  # a bug in gokogeri itself
            self._log.critical("async processor %s crashed: internal error", tid, exc_info=True)
            self._on_fatal(e)
        finally:
            self._tasks.pop(tid, None)
            self._free.put(tid)

    def _is_async(self, worker: Worker) -> bool:
        # inspect.iscoroutinefunction costs ~0.4 us: asked once per worker.
        cached = self._async_of.get(id(worker))
        if cached is None:
            cached = self._async_of[id(worker)] = is_async(worker)
        return cached

    def _runner(self, worker: Worker, ctx: Context, job: Job) -> Callable[[], object]:
        if self._is_async(worker):
            loop = self._loop
            if loop is None:  # a worker swapped in after the pool was built
                raise RuntimeError(f"{worker!r} is async but this pool has no event loop")
            return lambda: loop.run(worker.work(ctx, job))
        return lambda: worker.work(ctx, job)

    def _log_failure(self, kv: str, exc: BaseException) -> None:
        """Sidekiq's default error handler: message and backtrace at WARN, unless
        the node keeps error details (which can quote job data) out of logs."""
        log = self._log
        head = f"{error_class_name(exc)}"
        if self._rt.log_error_details:
            if log.isEnabledFor(logging.WARNING):
                tb = "".join(traceback.format_exception(exc))
                log.warning(
                    "%s: %s\n%s", head, escape(str(exc), 1000), escape_tb(tb),
                    extra={"kv_text": kv},
                )
            return
        log.warning("%s (details at DEBUG)", head, extra={"kv_text": kv})
        if log.isEnabledFor(logging.DEBUG):
            tb = "".join(traceback.format_exception(exc))
            log.debug("%s: %s\n%s", head, escape(str(exc), 1000), escape_tb(tb), extra={"kv_text": kv})

    def _fail(
        self,
        tid: str,
        uow: UnitOfWork,
        job: Job,
        exc: BaseException,
        worker: Worker | None,
        ctx: Context,
        elapsed: float,
    ) -> None:
        rt = self._rt
        retry_in = getattr(worker, "retry_in", None) if worker is not None else None
        try:
            outcome = failure_outcome(
                job,
                exc,
                rt.policy,
                rt.timestamp_format,
                retry_in=retry_in,
                on_hook_error=lambda e: self._log.error(
                    "retry_in hook raised %s; using the default backoff",
                    error_class_name(e),
                    exc_info=e,
                ),
            )
            if outcome.exhausted and worker is not None:
                hook = getattr(worker, "retries_exhausted", None)
                if hook is not None and rt.call("retries_exhausted hook", hook, job.copy(), exc) == "discard":
                    outcome = Outcome("drop")
            if isinstance(outcome.payload, str):
                outcome.payload.encode("utf-8")  # lone surrogates fail here, not in redis-py
        except CODEC_ERRORS as e:
            # The job decoded but cannot be written back (e.g. a worker put a
            # non-JSON value in it): keep its original bytes in the dead set.
            self._bury_invalid(tid, uow, f"could not record the failure of this job: {e}", counted=True)
            return
        if not self._settle(uow, outcome, job):
            return
        if outcome.action == "dead":
            self._log.warning(
                "Adding dead %s job %s",
                escape(dispatch_name(job)),
                escape(job.jid or ""),
                extra={"kv": {"queue": escape(outcome.queue)}},
            )
        rt.job_failed(exc, job, ctx)
        if outcome.exhausted:
            rt.job_died(job, exc)
        if rt.observers:
            status: Status = outcome.action
            rt.notify(JobEvent(job, uow.queue, dispatch_name(job), status, elapsed, exc))

    def _settle(self, uow: UnitOfWork, outcome: Outcome, job: Job | None) -> bool:
        try:
            self.fetcher.settle(uow, outcome, self._rt.policy)
        except redispy.RedisError as e:
            # The job stays in the working list (crash-safe fetch) and comes
            # back when the node restarts or is rescued.
            self._log.error(
                "could not record the failure of jid=%s: %s",
                escape(job.jid or "") if job is not None else "?",
                e,
            )
            return False
        return True

    def _bury_invalid(self, tid: str, uow: UnitOfWork, reason: str, counted: bool = False) -> None:
        """A payload that is not a job goes to the dead set as Sidekiq does (it
        keeps the raw bytes: there is no job to annotate). JSON objects get the
        error fields so the Web UI says what is wrong."""
        if not counted:
            self._processed[tid] += 1
            self._failed[tid] += 1
        payload = dead_payload(uow.payload, reason)
        # The reason can quote payload values: it goes to the dead set, not to the log.
        self._log.error(
            "invalid job payload (%s bytes) on queue %s sent to the dead set; see it there",
            len(uow.payload),
            escape(uow.queue),
        )
        outcome = Outcome("dead", payload, time.time(), uow.queue)
        if self._settle(uow, outcome, None) and self._rt.observers:
            self._rt.notify(JobEvent(None, uow.queue, "", "invalid", 0.0))


def escape_tb(tb: str) -> str:
    """A traceback keeps its line breaks; any other control character is escaped."""
    return "\n".join(escape(line, 2000) for line in tb.rstrip("\n").split("\n"))
