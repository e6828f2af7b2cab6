"""What runs a job: the Worker protocol, WorkerFunc, Router and the job Context."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from gokogeri.errors import UnknownJobClassError
from gokogeri.job import Job

JobFunc = Callable[["Context", Job], object]


@dataclass
class Context:
    """Handed to every ``work(ctx, job)`` call.

    cancelled: set when the node's shutdown grace period is over; a long job
        should check it and return (or raise) soon after. The job is
        requeued either way.
    logger: the node's logger.
    identity: the node's Sidekiq process identity (hostname:pid:nonce).
    """

    cancelled: threading.Event = field(default_factory=threading.Event)
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("gokogeri"))
    identity: str = ""
    queue: str = ""


@runtime_checkable
class Worker(Protocol):
    """Anything with ``work(ctx, job)``: return on success, raise on failure."""

    def work(self, ctx: Context, job: Job) -> None: ...


class WorkerFunc:
    """Adapts a plain function ``f(ctx, job)`` to the Worker protocol."""

    __slots__ = ("func",)

    def __init__(self, func: Callable[[Context, Job], object]) -> None:
        self.func = func

    def work(self, ctx: Context, job: Job) -> None:
        self.func(ctx, job)

    def __repr__(self) -> str:
        return f"WorkerFunc({getattr(self.func, '__qualname__', self.func)!r})"


class Router:
    """Dispatches on ``job.class_name`` to registered workers.

    Only registered names are ever called: nothing is imported or looked up
    by a name taken from a payload. An unknown class raises
    UnknownJobClassError, an ordinary failure that follows the retry rules
    (Sidekiq's NameError does the same).
    """

    def __init__(self) -> None:
        self._workers: dict[str, Worker] = {}

    def register(self, class_name: str, worker: Worker | Callable[[Context, Job], object]) -> None:
        if not class_name or not isinstance(class_name, str):
            raise ValueError("class_name must be a non-empty string")
        if class_name in self._workers:
            raise ValueError(f"a worker is already registered for {class_name!r}")
        if not isinstance(worker, Worker):
            if not callable(worker):
                raise TypeError(f"{worker!r} has no work(ctx, job) method and is not callable")
            worker = WorkerFunc(worker)
        self._workers[class_name] = worker

    def handle(self, class_name: str) -> Callable[[JobFunc], JobFunc]:
        """Decorator form of register: ``@router.handle("HardJob")``."""

        def decorate(func: JobFunc) -> JobFunc:
            self.register(class_name, func)
            return func

        return decorate

    def classes(self) -> list[str]:
        return sorted(self._workers)

    def __contains__(self, class_name: object) -> bool:
        return class_name in self._workers

    def work(self, ctx: Context, job: Job) -> None:
        worker = self._workers.get(job.class_name)
        if worker is None:
            raise UnknownJobClassError(f"no worker registered for job class {job.class_name!r}")
        worker.work(ctx, job)
