"""Test support for gokogeri users and for gokogeri's own tests.

- RedisServer: a real, throwaway ``redis-server`` (from PATH) on a free
  127.0.0.1 port with no persistence, stopped on exit. The pytest plugin, the
  test suite and the demo's embedded Redis use it.
- FakeEnqueuer: Sidekiq::Testing for Python. In fake mode (the default) jobs
  are recorded in memory, prepared exactly as Enqueuer prepares them, and
  ``drain(worker)`` runs them through the server middleware with Sidekiq's
  retry rules. In inline mode (``fake.inline(worker)``) each job runs as it is
  enqueued and its failure propagates to the caller, as ``Sidekiq::Testing.inline!``.
- assert_enqueued / enqueued_jobs: what was enqueued, in a FakeEnqueuer or in a
  real Redis, matched by class (a name, a Job, or a generated job class), args
  and queue.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self, cast

import redis as redispy

from gokogeri.enqueuer import in_seconds, prepare, shared_template, to_epoch
from gokogeri.errors import InvalidArgumentError
from gokogeri.job import Job, TimestampFormat, check_args, new_jid
from gokogeri.middleware import ClientChain, ServerChain
from gokogeri.node import Node
from gokogeri.queues import OrderedQueueSet
from gokogeri.redis import ConnManager
from gokogeri.retry import Action, Outcome, RetryPolicy, failure_outcome
from gokogeri.worker import Context, Router, Worker, dispatch_name, is_async

START_TIMEOUT = 10.0  # seconds; a cold redis-server is up in ~20 ms


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_redis_server() -> str | None:
    return shutil.which("redis-server") or shutil.which("valkey-server")


class RedisServer:
    """A private redis-server process bound to 127.0.0.1."""

    def __init__(
        self,
        binary: str | None = None,
        port: int | None = None,
        extra_args: list[str] | None = None,
    ) -> None:
        found = binary or find_redis_server()
        if found is None:
            raise RuntimeError(
                "redis-server was not found on PATH; install it "
                "(Debian: apt-get install redis-server) or set GOKOGERI_REDIS_URL"
            )
        self.binary = found
        self.port = port or free_port()
        self._dir = tempfile.mkdtemp(prefix="gokogeri-redis-")
        self._extra = list(extra_args or [])
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _listen(self) -> list[str]:
        """Where redis-server listens (a subclass may listen differently)."""
        return ["--port", str(self.port)]

    def _argv(self) -> list[str]:
        """The redis-server command line."""
        return [
            self.binary,
            *self._listen(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            self._dir,
            "--daemonize",
            "no",
            *self._extra,
        ]

    def _probe(self) -> redispy.Redis:
        """The client start() pings until the server answers."""
        return redispy.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5)

    def start(self) -> Self:
        self._proc = subprocess.Popen(
            self._argv(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        client = self._probe()
        deadline = time.monotonic() + START_TIMEOUT
        try:
            while True:
                try:
                    client.ping()
                    return self
                except (redispy.AuthenticationError, redispy.ResponseError):
                    return self  # it answered: it is up, it just wants a password
                except redispy.ConnectionError:
                    pass
                if self._proc.poll() is not None:
                    raise RuntimeError(f"redis-server exited with {self._proc.returncode}")
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not answer PING in time")
                time.sleep(0.01)
        finally:
            client.close()

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __del__(self) -> None:  # a last resort; tests call stop()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()


# --- FakeEnqueuer --------------------------------------------------------------------------------

Mode = Literal["fake", "inline"]

# What names a job class in the helpers: the Sidekiq class name, a Job (its
# class), or anything with a CLASS_NAME (generated job and worker classes).
JobClass = str | Job | type | object


def class_name_of(job_class: JobClass) -> str:
    """The Sidekiq class name that ``job_class`` stands for."""
    if isinstance(job_class, str):
        return job_class
    if isinstance(job_class, Job):
        return job_class.class_name
    name = getattr(job_class, "CLASS_NAME", None)
    if isinstance(name, str):
        return name
    raise TypeError(
        f"expected a class name, a gokogeri.Job or a generated job class, got {job_class!r}"
    )


@dataclass
class Failure:
    """One failed run during ``drain``: the job as the retry rules left it, and why.

    ``action`` is what Sidekiq would have done: "retry" (the job was put back
    with ``retry_count`` and a retry time in ``job["at"]``), "dead" (retries
    exhausted, or ``retry: 0``) or "drop" (``retry: false``, or ``dead: false``).
    """

    job: Job
    exception: BaseException
    action: Action


class _ModeSwitch:
    """Returned by FakeEnqueuer.inline()/fake(): the mode is already switched;
    used as a context manager it switches back on exit."""

    def __init__(self, fake: FakeEnqueuer, previous: tuple[Mode, Worker | None]) -> None:
        self._fake = fake
        self._previous = previous

    def __enter__(self) -> FakeEnqueuer:
        return self._fake

    def __exit__(self, *exc: object) -> None:
        self._fake._mode, self._fake._inline_worker = self._previous


class FakeEnqueuer:
    """An Enqueuer that keeps jobs in memory, for unit tests of code that enqueues.

    It has Enqueuer's methods and prepares each job exactly as Enqueuer does
    (jid, timestamps in ``timestamp_format``, strict args, queue-name check,
    client middleware; one ``created_at`` per ``enqueue_many`` batch). In fake
    mode ``jobs`` holds every pushed Job in order, scheduled ones with their
    run time in ``job["at"]`` (epoch seconds, as Sidekiq::Testing keeps it).

    ``drain(worker)`` runs the jobs through ``server_middleware``. A failure
    follows Sidekiq's retry rules (gokogeri.retry, with ``policy``): the job is
    retried until its ``retry`` limit, then lands in ``dead``; every failed run
    is in ``failures``. ``drain(worker, raise_errors=True)`` raises the first
    failure instead, as Sidekiq::Testing's drain does.

    ``inline(worker)`` switches to inline mode: every enqueue runs the job at
    once (client middleware, a JSON round trip, server middleware, worker) and
    a failure propagates to the code that enqueued it.
    """

    def __init__(
        self,
        middleware: ClientChain | None = None,
        timestamp_format: TimestampFormat = "float",
        *,
        server_middleware: ServerChain | None = None,
        policy: RetryPolicy | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.middleware: ClientChain = middleware if middleware is not None else ClientChain()
        self.server_middleware: ServerChain = (
            server_middleware if server_middleware is not None else ServerChain()
        )
        self.policy = policy or RetryPolicy()
        self.logger = logger or logging.getLogger("gokogeri.testing")
        self._fmt = timestamp_format
        self.jobs: list[Job] = []
        # Failed jobs waiting for their retry, when drain(run_retries=False).
        self.retries: list[Job] = []
        self.dead: list[Job] = []
        self.failures: list[Failure] = []
        # Every job that ran to completion (drain and inline), in order.
        self.performed: list[Job] = []
        self._mode: Mode = "fake"
        self._inline_worker: Worker | None = None
        # Retries run back to back; this seeded jitter keeps drains repeatable.
        self._rng = random.Random(0)
        # The worker the current job resolved to, for its retry hooks after a failure.
        self._running: Worker | None = None

    # --- modes ---

    @property
    def mode(self) -> Mode:
        return self._mode

    def inline(self, worker: Worker) -> _ModeSwitch:
        """Run every job as it is enqueued; ``with fake.inline(w):`` switches back after."""
        if not callable(getattr(worker, "work", None)):
            raise TypeError(f"{worker!r} is not a Worker: it needs a work(ctx, job) method")
        previous = (self._mode, self._inline_worker)
        self._mode, self._inline_worker = "inline", worker
        return _ModeSwitch(self, previous)

    def fake(self) -> _ModeSwitch:
        """Back to recording jobs (the default mode)."""
        previous = (self._mode, self._inline_worker)
        self._mode, self._inline_worker = "fake", None
        return _ModeSwitch(self, previous)

    # --- Enqueuer's API ---

    def enqueue(self, job: Job) -> str | None:
        return self._record(job, None)

    def enqueue_in(self, job: Job, seconds: float | timedelta) -> str | None:
        return self.enqueue_at(job, in_seconds(seconds))

    def enqueue_at(self, job: Job, at: datetime | float) -> str | None:
        when = to_epoch(at)
        # A time not in the future pushes now, as Enqueuer (and Sidekiq) do.
        return self._record(job, when if when > time.time() else None)

    def enqueue_bulk(self, jobs: Iterable[Job]) -> list[str | None]:
        """As Enqueuer.enqueue_bulk: every job is checked before any is recorded."""
        jobs = list(jobs)
        template = shared_template(jobs) if not len(self.middleware) else None
        if template is not None:
            return self.enqueue_many(template, [job.fields["args"] for job in jobs])
        prepared = [self._prepare(job, None) for job in jobs]
        return [self._accept(p) for p in prepared]

    def enqueue_many(self, job: Job, args_list: Iterable[list[Any]]) -> list[str | None]:
        """As Enqueuer.enqueue_many (Sidekiq's push_bulk): one job per args list, all
        sharing one created_at/enqueued_at; with client middleware, each job goes
        through it."""
        if job.jid:
            raise ValueError(
                "enqueue_many gives every job its own jid: the template must not set one"
            )
        all_args = list(args_list)
        if len(self.middleware):
            copies = []
            for args in all_args:
                copy = job.copy()
                copy.args = args
                copies.append(copy)
            return self.enqueue_bulk(copies)
        for index, args in enumerate(all_args):
            try:
                check_args(args)
            except InvalidArgumentError as e:
                raise InvalidArgumentError(f"job {index}: {e}") from None
        template = job.copy()
        template.args = []
        prepared = prepare(template, self._fmt, self.middleware)
        assert prepared is not None  # no middleware
        _queue, payload, _jid = prepared
        jids: list[str | None] = []
        for args in all_args:
            recorded = Job.decode(payload)
            recorded.args = args
            recorded.jid = new_jid()
            jids.append(self._accept(recorded))
        return jids

    # --- looking at what was enqueued ---

    def queue(self, name: str) -> list[Job]:
        return [j for j in self.jobs if j.queue == name]

    def jobs_for(self, job_class: JobClass, queue: str | None = None) -> list[Job]:
        """Recorded jobs of one class (a name, a Job, or a generated class)."""
        name = class_name_of(job_class)
        return [
            j
            for j in self.jobs
            if name in (j.class_name, dispatch_name(j)) and (queue is None or j.queue == queue)
        ]

    def assert_enqueued(
        self,
        job_class: JobClass,
        args: Sequence[Any] | Callable[[list[Any]], bool] | None = None,
        *,
        queue: str | None = None,
        count: int | None = None,
        scheduled: bool | None = None,
    ) -> list[Job]:
        """See :func:`assert_enqueued`; looks at ``jobs``."""
        return assert_enqueued(
            self.jobs, job_class, args, queue=queue, count=count, scheduled=scheduled
        )

    def assert_not_enqueued(
        self,
        job_class: JobClass,
        args: Sequence[Any] | Callable[[list[Any]], bool] | None = None,
        *,
        queue: str | None = None,
    ) -> None:
        assert_enqueued(self.jobs, job_class, args, queue=queue, count=0)

    def clear(self, job_class: JobClass | None = None) -> None:
        """Forget recorded jobs (of one class, or all of them with retries, dead and failures)."""
        if job_class is None:
            self.jobs.clear()
            self.retries.clear()
            self.dead.clear()
            self.failures.clear()
            self.performed.clear()
            return
        name = class_name_of(job_class)
        self.jobs[:] = [j for j in self.jobs if j.class_name != name]

    # --- running jobs ---

    def drain(
        self,
        worker: Worker,
        logger: logging.Logger | None = None,
        *,
        raise_errors: bool = False,
        run_retries: bool = True,
    ) -> int:
        """Run every recorded job, scheduled ones too, in the order they were pushed,
        until none is left; returns how many runs there were (retries count).

        A failure follows Sidekiq's retry rules: the failed job goes back at the
        end of ``jobs`` (or into ``retries`` with ``run_retries=False``) with its
        retry fields set, until its limit sends it to ``dead`` (or drops it, for
        ``retry: false`` / ``dead: false``). With ``raise_errors`` the first
        failure propagates instead and the job is gone, as in Sidekiq::Testing.
        Retries run at once; the clock the retry rules see moves to each retry's
        due time, so ``retry_for`` windows run out as they would for real.
        """
        log = logger or self.logger
        ran = 0
        clock = time.time()
        while self.jobs:
            job = self.jobs.pop(0)
            due = job.fields.pop("at", None)
            if isinstance(due, (int, float)) and not isinstance(due, bool):
                clock = max(clock, float(due))
            ran += 1
            self._running = None
            try:
                self._perform(worker, job, log)
            except Exception as exc:
                if raise_errors:
                    raise
                self._failed(job, exc, clock, run_retries, self._running)
        return ran

    def _perform(self, worker: Worker, job: Job, log: logging.Logger) -> None:
        """Run ``job`` as a node's processor does: resolve the Router's worker, server
        middleware around it, async workers on an event loop. The resolved worker
        stays in ``_running``: its retry hooks apply if the job fails."""
        ctx = Context(logger=log, queue=job.queue)
        self._running = resolve_worker(worker, job)
        run_job(self._running, ctx, job, self.server_middleware)
        self.performed.append(job)

    def _failed(
        self, job: Job, exc: BaseException, now: float, run_retries: bool, worker: Worker | None
    ) -> None:
        log = self.logger
        outcome = failure_outcome(
            job,
            exc,
            self.policy,
            self._fmt,
            now=now,
            rng=self._rng,
            retry_in=getattr(worker, "retry_in", None),
            on_hook_error=lambda e: log.error("retry_in hook raised %r", e, exc_info=e),
        )
        if outcome.exhausted and worker is not None:
            # Sidekiq's sidekiq_retries_exhausted: "discard" drops the job instead of burying it.
            hook = getattr(worker, "retries_exhausted", None)
            if hook is not None:
                try:
                    if hook(job.copy(), exc) == "discard":
                        outcome = Outcome("drop", exhausted=True)
                except Exception as e:  # a broken hook must not hide the job's own failure
                    log.error("retries_exhausted hook raised %r", e, exc_info=e)
        if outcome.action == "drop":
            self.failures.append(Failure(job, exc, "drop"))
            return
        assert outcome.payload is not None
        settled = Job.decode(outcome.payload)
        self.failures.append(Failure(settled, exc, outcome.action))
        if outcome.action == "dead":
            self.dead.append(settled)
            return
        settled.fields["at"] = outcome.score
        (self.jobs if run_retries else self.retries).append(settled)

    # --- internals ---

    def _prepare(self, job: Job, at: float | None) -> Job | None:
        prepared = prepare(job, self._fmt, self.middleware, scheduled=at is not None)
        if prepared is None:
            return None
        recorded = Job.decode(prepared[1])
        if at is not None:
            recorded.fields["at"] = at
        return recorded

    def _accept(self, recorded: Job | None) -> str | None:
        if recorded is None:
            return None
        if self._mode == "inline":
            worker = self._inline_worker
            assert worker is not None
            recorded.fields.pop("at", None)  # inline runs scheduled jobs now, as Sidekiq does
            self._perform(worker, recorded, self.logger)
        else:
            self.jobs.append(recorded)
        return recorded.jid

    def _record(self, job: Job, at: float | None) -> str | None:
        return self._accept(self._prepare(job, at))


def resolve_worker(worker: Worker, job: Job) -> Worker:
    """The worker that runs ``job``: a Router's registered one, else ``worker`` itself."""
    return worker.resolve(job) if isinstance(worker, Router) else worker


def run_job(worker: Worker, ctx: Context, job: Job, middleware: ServerChain | None = None) -> None:
    """Run one job as a node's processor does, in this thread: ``middleware`` around the
    worker, an async worker on an event loop of its own (so not from inside a running
    loop: an async test should run a node instead). Failures propagate."""

    def run() -> object:
        if is_async(worker):
            return asyncio.run(worker.work(ctx, job))
        return worker.work(ctx, job)

    if middleware is not None and len(middleware):
        middleware.invoke((ctx, job, job.queue), run)
    else:
        run()


# --- assertions on what was enqueued ------------------------------------------------------------


def enqueued_jobs(cm: ConnManager) -> list[Job]:
    """Every job waiting in a real Redis: each queue in push order, then the
    schedule in time order (with ``job["at"]`` set from its score). Retries and
    the dead set are not included: they were enqueued, then ran."""
    keys = cm.keys
    client = cm.client
    jobs: list[Job] = []
    names = sorted(
        m.decode() if isinstance(m, bytes) else str(m) for m in client.smembers(keys.queues)
    )
    for name in names:
        # LPUSH puts the newest on the left: the oldest is last.
        for raw in reversed(client.lrange(keys.queue(name), 0, -1)):
            jobs.append(Job.decode(raw))
    entries = cast(list[tuple[bytes, float]], client.zrange(keys.schedule, 0, -1, withscores=True))
    for member, score in entries:
        job = Job.decode(member)
        job.fields["at"] = score
        jobs.append(job)
    return jobs


def _args_candidates(job_class: JobClass, args: Sequence[Any]) -> list[list[Any]]:
    """``args`` as given, plus their wire form when ``job_class`` is a generated
    job class (its ``job()`` encodes Python values: UUIDs, datetimes, defaults)."""
    candidates = [list(args)]
    build = getattr(job_class, "job", None)
    if callable(build) and not isinstance(job_class, Job):
        try:
            built = build(*args)
        except (TypeError, ValueError):
            return candidates
        if isinstance(built, Job) and built.args not in candidates:
            candidates.append(built.args)
    return candidates


def assert_enqueued(
    where: FakeEnqueuer | ConnManager | Iterable[Job],
    job_class: JobClass,
    args: Sequence[Any] | Callable[[list[Any]], bool] | None = None,
    *,
    queue: str | None = None,
    count: int | None = None,
    scheduled: bool | None = None,
) -> list[Job]:
    """Assert that jobs of ``job_class`` were enqueued; returns the matching jobs.

    ``where``: a FakeEnqueuer, a ConnManager (reads the real Redis) or jobs.
    ``job_class``: a class name, a Job, or a generated job class (then ``args``
    may be the Python values its ``enqueue`` takes). ``args``: the exact args
    list, or a predicate on it. ``count``: exactly this many (default: at least
    one). ``scheduled``: True for only scheduled jobs, False for only immediate ones.
    """
    if isinstance(where, FakeEnqueuer):
        jobs = list(where.jobs)
    elif isinstance(where, ConnManager):
        jobs = enqueued_jobs(where)
    else:
        jobs = list(where)
    name = class_name_of(job_class)
    if isinstance(job_class, Job):
        args = job_class.args if args is None else args
        queue = job_class.queue if queue is None else queue
    candidates = _args_candidates(job_class, args) if isinstance(args, (list, tuple)) else None

    def matches(job: Job) -> bool:
        # An ActiveJob wrapper matches by its wrapped class too, as the Router dispatches it.
        if name not in (job.class_name, dispatch_name(job)):
            return False
        if queue is not None and job.queue != queue:
            return False
        if scheduled is not None and ("at" in job.fields) != scheduled:
            return False
        if candidates is not None:
            return job.args in candidates
        if callable(args):
            return bool(args(job.args))
        return True

    found = [j for j in jobs if matches(j)]
    ok = len(found) == count if count is not None else bool(found)
    if not ok:
        wanted = f"{name}" + (f" on queue {queue!r}" if queue else "")
        if candidates is not None:
            wanted += f" with args {candidates[-1]!r}"
        elif callable(args):
            wanted += " with args matching the predicate"
        if scheduled is not None:
            wanted += " (scheduled)" if scheduled else " (not scheduled)"
        expected = "at least one" if count is None else f"exactly {count}"
        seen = "\n".join(
            f"  {j.class_name} queue={j.queue!r} args={j.args!r}"
            + (f" at={j.fields['at']!r}" if "at" in j.fields else "")
            for j in jobs
        )
        raise AssertionError(
            f"expected {expected} job(s) of {wanted}, found {len(found)}; enqueued:\n"
            + (seen or "  (nothing)")
        )
    return found


# --- real processes for integration tests -------------------------------------------------------


def wait_for(
    predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.01, what: str = ""
) -> Any:
    """Poll ``predicate`` until it returns something truthy, and return that;
    AssertionError after ``timeout`` seconds (a bound on waiting, not a speed claim),
    naming ``what`` was awaited if given."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"condition not met within {timeout}s" + (f": {what}" if what else "")
            )
        time.sleep(interval)


class NodeThread:
    """A Node running in a thread of the test process (the ``gokogeri_node`` fixture)."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.thread = threading.Thread(target=node.run, name="gokogeri-test-node", daemon=True)

    @classmethod
    def start_node(
        cls,
        cm: ConnManager,
        worker: Worker,
        queues: list[str],
        concurrency: int = 2,
        **options: Any,
    ) -> NodeThread:
        logger = options.pop("logger", None) or logging.getLogger("gokogeri.testing.node")
        node = Node(logger, cm, **options)
        node.process_queues(OrderedQueueSet(queues), worker, concurrency)
        thread = cls(node)
        thread.thread.start()
        return thread

    def stop(self, timeout: float = 5.0) -> None:
        self.node.stop(timeout)
        self.thread.join(timeout + 5)
        if self.thread.is_alive():
            raise RuntimeError("the node thread did not stop")

    def __enter__(self) -> NodeThread:
        if not self.thread.is_alive():
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RubySidekiq:
    """A real Ruby Sidekiq running ``require`` (your job file) against ``redis_url``.

    ``image=None`` runs the host's ``sidekiq`` (Debian: apt-get install
    ruby-sidekiq). An image name runs ``sidekiq`` inside that image with
    ``engine`` (podman or docker, found on PATH), on the host network so it
    reaches a Redis on 127.0.0.1, with the job file's folder mounted read-only
    at /app. The image needs only Ruby and the sidekiq gem: ``ruby:3.3`` plus
    ``gem install sidekiq``, or a Debian image with ruby-sidekiq (see
    the README's Testing section for an offline build).
    """

    def __init__(
        self,
        redis_url: str,
        require: str | os.PathLike[str],
        queues: Sequence[str] = ("default",),
        *,
        concurrency: int = 5,
        image: str | None = None,
        engine: str | None = None,
        env: dict[str, str] | None = None,
        ready_timeout: float = 60.0,
        stop_grace: float = 30.0,
    ) -> None:
        self.redis_url = redis_url
        self.require = Path(require).resolve()
        if not self.require.is_file():
            raise FileNotFoundError(f"no Ruby file at {self.require}")
        self.queues = list(queues)
        self.concurrency = concurrency
        self.image = image
        self.engine = engine or shutil.which("podman") or shutil.which("docker")
        self.env = dict(env or {})
        self.ready_timeout = ready_timeout
        self.stop_grace = stop_grace
        self.container_name = f"gokogeri-sidekiq-{os.getpid()}-{time.monotonic_ns()}"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()

    def command(self) -> list[str]:
        sidekiq_args = ["-c", str(self.concurrency)]
        for q in self.queues:
            sidekiq_args += ["-q", q]
        if self.image is None:
            binary = shutil.which("sidekiq")
            if binary is None:
                raise RuntimeError("sidekiq is not on PATH (Debian: apt-get install ruby-sidekiq)")
            return [binary, "-r", str(self.require), *sidekiq_args]
        if self.engine is None:
            raise RuntimeError("neither podman nor docker is on PATH")
        envs: list[str] = []
        for key, value in {"REDIS_URL": self.redis_url, **self.env}.items():
            envs += ["-e", f"{key}={value}"]
        return [
            self.engine,
            "run",
            "--rm",
            "--name",
            self.container_name,
            "--network",
            "host",
            *envs,
            "-v",
            f"{self.require.parent}:/app:ro",
            "-w",
            "/app",
            self.image,
            "sidekiq",
            "-r",
            f"/app/{self.require.name}",
            *sidekiq_args,
        ]

    def start(self) -> RubySidekiq:
        client = redispy.Redis.from_url(self.redis_url)
        try:
            before = set(client.smembers("processes"))
            env = dict(os.environ, REDIS_URL=self.redis_url, **self.env)
            self._proc = subprocess.Popen(
                self.command(), env=env, stdout=self._log, stderr=subprocess.STDOUT
            )
            deadline = time.monotonic() + self.ready_timeout
            # Ready once it has registered in Sidekiq's process set (its first heartbeat).
            while not set(client.smembers("processes")) - before:
                if self._proc.poll() is not None:
                    raise RuntimeError(f"sidekiq exited early:\n{self.output()}")
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"sidekiq did not start in time:\n{self.output()}")
                time.sleep(0.05)
        finally:
            client.close()
        return self

    def output(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def stop(self) -> None:
        """SIGTERM (Sidekiq's own shutdown), SIGKILL after ``stop_grace`` seconds."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=self.stop_grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.image is not None and self.engine is not None:
            # A killed `podman run` can leave its container behind.
            subprocess.run(
                [self.engine, "rm", "-f", "--ignore", self.container_name]
                if self.engine.endswith("podman")
                else [self.engine, "rm", "-f", self.container_name],
                capture_output=True,
                check=False,
            )

    def close(self) -> None:
        self.stop()
        self._log.close()

    def __enter__(self) -> RubySidekiq:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
