"""What runs a job: the Worker protocol, WorkerFunc, Router and the job Context.

A worker is anything with ``work(ctx, job)``; ``work`` may be a coroutine
function (``async def work``), in which case the pool runs it on its event
loop. Optional per-worker hooks, as Sidekiq's ``sidekiq_retry_in`` and
``sidekiq_retries_exhausted``:

- ``retry_in(count, exc, job)`` -> seconds until the next retry, ``"kill"``
  (to the dead set now), ``"discard"`` (drop it) or None (Sidekiq's backoff);
- ``retries_exhausted(job, exc)``: called once when the job is about to go to
  the dead set; returning ``"discard"`` drops it instead.
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from gokogeri.errors import UnknownJobClassError
from gokogeri.job import Job

if TYPE_CHECKING:
    import redis as redispy
    import redis.asyncio as aredispy

    from gokogeri.conns import JobClients

JobFunc = Callable[["Context", Job], object]
AsyncJobFunc = Callable[["Context", Job], Awaitable[object]]
RetryIn = float | int | Literal["kill", "discard"] | None

# The job classes Rails' Sidekiq adapter pushes; the real job class is in
# ``wrapped`` (Rails 6.1-7.1, and Sidekiq 7.3+/8 with newer Rails).
ACTIVEJOB_WRAPPERS = frozenset(
    {"ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper", "Sidekiq::ActiveJob::Wrapper"}
)


@dataclass
class Context:
    """Handed to every ``work(ctx, job)`` call.

    cancelled: set when the node's shutdown grace period is over; a long job
        should check it and return (or raise) soon after. The job is
        requeued either way. Async jobs are also cancelled (CancelledError).
    logger: the node's logger.
    identity: the node's Sidekiq process identity (hostname:pid:nonce).
    queue: the queue the job was fetched from.
    redis: a redis-py client on the node's Redis for this thread alone,
        without pool overhead (conns.py); for sync jobs.
    aredis: a redis.asyncio client on the node's Redis, for async jobs.
    """

    cancelled: threading.Event = field(default_factory=threading.Event)
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("gokogeri"))
    identity: str = ""
    queue: str = ""
    clients: JobClients | None = None

    @property
    def redis(self) -> redispy.Redis:
        if self.clients is None:
            raise RuntimeError("ctx.redis exists only for jobs run by a node")
        return self.clients.sync()

    @property
    def aredis(self) -> aredispy.Redis:
        if self.clients is None:
            raise RuntimeError("ctx.aredis exists only for jobs run by a node")
        return self.clients.aio()


@runtime_checkable
class Worker(Protocol):
    """Anything with ``work(ctx, job)``: return on success, raise on failure."""

    def work(self, ctx: Context, job: Job) -> Any: ...


def dispatch_name(job: Job) -> str:
    """The class a job is routed and measured by: Sidekiq's ``wrapped || class``
    for ActiveJob wrappers, else ``class``."""
    cls = job.class_name
    if cls in ACTIVEJOB_WRAPPERS:
        wrapped = job.fields.get("wrapped")
        if isinstance(wrapped, str) and wrapped:
            return wrapped
    return cls


def is_async(worker: object) -> bool:
    """True if ``worker.work`` is a coroutine function (runs on the event loop)."""
    work = getattr(worker, "work", None)
    return inspect.iscoroutinefunction(work)


def _check_callable(func: Callable[..., Any], what: str) -> None:
    """Refuse at registration what could never be called as ``f(ctx, job)``."""
    if inspect.isclass(func):
        raise TypeError(
            f"{what}: {func.__qualname__} is a class; register an instance "
            f"({func.__qualname__}()) or a function f(ctx, job)"
        )
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return  # builtins without a signature: trust them
    try:
        sig.bind(None, None)
    except TypeError:
        raise TypeError(
            f"{what}: {getattr(func, '__qualname__', func)!r} cannot be called as f(ctx, job) "
            f"(signature {sig})"
        ) from None
    if inspect.isasyncgenfunction(func):
        raise TypeError(f"{what}: an async generator cannot be a job handler")


def check_worker(worker: object, what: str = "worker") -> None:
    """Refuse a worker the node could not run: a class instead of an instance, a
    ``work`` that cannot take (ctx, job), a generator."""
    if inspect.isclass(worker):
        raise TypeError(
            f"{what}: {worker.__qualname__} is a class; pass an instance ({worker.__qualname__}())"
        )
    work = getattr(worker, "work", None)
    if not callable(work):
        raise TypeError(f"{what}: {worker!r} is not a Worker: it needs a work(ctx, job) method")
    _check_callable(work, what)
    if inspect.isgeneratorfunction(work):
        raise TypeError(f"{what}: work() is a generator function; it would never run its body")


class WorkerFunc:
    """Adapts a plain function ``f(ctx, job)`` to the Worker protocol."""

    __slots__ = ("func",)

    def __init__(self, func: Callable[[Context, Job], object]) -> None:
        _check_callable(func, "WorkerFunc")
        if inspect.iscoroutinefunction(func):
            raise TypeError("WorkerFunc wraps sync functions; use AsyncWorkerFunc for async def")
        self.func = func

    def work(self, ctx: Context, job: Job) -> None:
        self.func(ctx, job)

    def __repr__(self) -> str:
        return f"WorkerFunc({getattr(self.func, '__qualname__', self.func)!r})"


class AsyncWorkerFunc:
    """Adapts ``async def f(ctx, job)`` to the Worker protocol (run on the pool's loop)."""

    __slots__ = ("func",)

    def __init__(self, func: AsyncJobFunc) -> None:
        _check_callable(func, "AsyncWorkerFunc")
        if not inspect.iscoroutinefunction(func):
            raise TypeError("AsyncWorkerFunc wraps async def functions; use WorkerFunc")
        self.func = func

    async def work(self, ctx: Context, job: Job) -> None:
        await self.func(ctx, job)

    def __repr__(self) -> str:
        return f"AsyncWorkerFunc({getattr(self.func, '__qualname__', self.func)!r})"


def as_worker(obj: object, what: str = "worker") -> Worker:
    """A Worker from a worker instance or a (sync or async) function f(ctx, job)."""
    if inspect.isclass(obj):
        check_worker(obj, what)  # raises with the hint to instantiate
    if callable(getattr(obj, "work", None)):
        check_worker(obj, what)
        return obj  # type: ignore[return-value]  # checked just above
    if not callable(obj):
        raise TypeError(f"{what}: {obj!r} has no work(ctx, job) method and is not callable")
    if inspect.iscoroutinefunction(obj):
        return AsyncWorkerFunc(obj)
    if inspect.isgeneratorfunction(obj) or inspect.isasyncgenfunction(obj):
        raise TypeError(f"{what}: a generator function cannot be a job handler")
    return WorkerFunc(obj)  # signature checked by WorkerFunc


class Router:
    """Dispatches on ``job.class_name`` to registered workers.

    Only registered names are ever called: nothing is imported or looked up
    by a name taken from a payload. An unknown class raises
    UnknownJobClassError, an ordinary failure that follows the retry rules
    (Sidekiq's NameError does the same). An ActiveJob wrapper job is routed by
    its ``wrapped`` class when that name is registered. Sync and async workers
    can share one Router: the pool runs each the right way.
    """

    def __init__(self) -> None:
        self._workers: dict[str, Worker] = {}
        self._async: set[str] = set()

    def register(self, class_name: str, worker: Worker | Callable[[Context, Job], object]) -> None:
        if not class_name or not isinstance(class_name, str):
            raise ValueError("class_name must be a non-empty string")
        if class_name in self._workers:
            raise ValueError(f"a worker is already registered for {class_name!r}")
        w = as_worker(worker, f"worker for {class_name!r}")
        self._workers[class_name] = w
        if is_async(w):
            self._async.add(class_name)

    def handle(self, class_name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator form of register: ``@router.handle("HardJob")`` on a sync or async def."""

        def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
            self.register(class_name, func)
            return func

        return decorate

    def classes(self) -> list[str]:
        return sorted(self._workers)

    def __contains__(self, class_name: object) -> bool:
        return class_name in self._workers

    def __len__(self) -> int:
        return len(self._workers)

    def has_async(self) -> bool:
        return bool(self._async)

    def has_sync(self) -> bool:
        return len(self._async) < len(self._workers)

    def workers(self) -> dict[str, Worker]:
        return dict(self._workers)

    def resolve(self, job: Job) -> Worker:
        """The worker for ``job``: by ``wrapped`` for ActiveJob wrappers, else by class."""
        name = dispatch_name(job)
        worker = self._workers.get(name)
        if worker is None and name != job.class_name:
            worker = self._workers.get(job.class_name)
        if worker is None:
            raise UnknownJobClassError(f"no worker registered for job class {name!r}")
        return worker

    def work(self, ctx: Context, job: Job) -> None:
        """Run a sync worker (the pool calls resolve() itself to run async ones)."""
        worker = self.resolve(job)
        if is_async(worker):
            raise TypeError(
                f"{worker!r} is async: it runs on a node's event loop, not through Router.work"
            )
        worker.work(ctx, job)
