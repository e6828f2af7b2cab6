"""What every part of a running node shares (Sidekiq's Component): the
connection manager, logger, identity, retry policy, hooks and observers.

Fetchers, processors, the scheduler, the rescuer and the heartbeat take one
Runtime instead of the same five constructor arguments each, and every user
callback (error/death handlers, lifecycle events, observers) is called through
it, so a hook that raises is logged the same way everywhere and never reaches
the code that called it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from gokogeri.events import JobEvent
from gokogeri.job import Job, TimestampFormat
from gokogeri.log import escape
from gokogeri.redis import ConnManager
from gokogeri.retry import RetryPolicy
from gokogeri.worker import Context

# Sidekiq's lifecycle events (config.on(:startup) ...), plus every heartbeat.
Event = Literal["startup", "quiet", "shutdown", "heartbeat"]
EVENTS: tuple[Event, ...] = ("startup", "quiet", "shutdown", "heartbeat")

ErrorHandler = Callable[[BaseException, Job | None, Context], Any]
DeathHandler = Callable[[Job, BaseException], Any]


@dataclass
class Hooks:
    """Node-wide callbacks, as Sidekiq's config.error_handlers, death_handlers
    and config.on(event)."""

    error_handlers: list[ErrorHandler] = field(default_factory=list)
    death_handlers: list[DeathHandler] = field(default_factory=list)
    lifecycle: dict[str, list[Callable[[], Any]]] = field(
        default_factory=lambda: {e: [] for e in EVENTS}
    )


@dataclass
class Runtime:
    cm: ConnManager
    logger: logging.Logger
    identity: str
    policy: RetryPolicy
    timestamp_format: TimestampFormat
    hooks: Hooks = field(default_factory=Hooks)
    observers: list[Any] = field(default_factory=list)
    # False: error messages and tracebacks (which can quote job data) go to
    # DEBUG only; WARN lines then carry class, jid and error class.
    log_error_details: bool = True
    # Set when the shutdown grace period is over (ctx.cancelled).
    cancelled: threading.Event = field(default_factory=threading.Event)
    # Since when Redis has answered without a break (monotonic). After an
    # outage every node looks silent for a while; rescue waits until live
    # nodes have had rescue_after seconds to beat again.
    redis_ok_since: float = field(default_factory=time.monotonic)
    redis_down: bool = False
    _observer_fns: list[Callable[[JobEvent], Any]] | None = field(default=None, repr=False)
    _observer_count: int = field(default=0, repr=False)

    def redis_failed(self) -> None:
        self.redis_down = True

    def redis_ok(self) -> None:
        if self.redis_down:
            self.redis_down = False
            self.redis_ok_since = time.monotonic()

    def redis_healthy_for(self) -> float:
        """Seconds Redis has been reachable without a break (0 while it is not)."""
        return 0.0 if self.redis_down else time.monotonic() - self.redis_ok_since

    def call(self, what: str, fn: Callable[..., Any], *args: Any) -> Any:
        """Call a user hook; an exception is logged with its traceback and
        swallowed (None is returned), so a hook never loses or doubles a job."""
        try:
            return fn(*args)
        except Exception:
            self.logger.exception("%s %s raised", what, escape(getattr(fn, "__qualname__", fn)))
            return None

    def fire(self, event: Event) -> None:
        for fn in list(self.hooks.lifecycle.get(event, ())):
            self.call(f"{event} hook", fn)

    def job_failed(self, exc: BaseException, job: Job | None, ctx: Context) -> None:
        for handler in list(self.hooks.error_handlers):
            self.call("error handler", handler, exc, job, ctx)

    def job_died(self, job: Job, exc: BaseException) -> None:
        for handler in list(self.hooks.death_handlers):
            self.call("death handler", handler, job, exc)

    def notify(self, event: JobEvent) -> None:
        # Once per job: the bound methods are looked up once, not per call.
        for fn in self._job_finished():
            try:
                fn(event)
            except Exception:
                self.logger.exception("observer %s raised", escape(getattr(fn, "__qualname__", fn)))

    def _job_finished(self) -> list[Callable[[JobEvent], Any]]:
        if self._observer_fns is None or self._observer_count != len(self.observers):
            fns = [getattr(o, "job_finished", None) for o in self.observers]
            self._observer_fns = [f for f in fns if f is not None]
            self._observer_count = len(self.observers)
        return self._observer_fns

    def observers_beat(self, method: Literal["beat", "close"]) -> None:
        for obs in self.observers:
            fn = getattr(obs, method, None)
            if fn is not None:
                self.call(f"observer {method}", fn, self.cm.client)
