"""Idle waiters of the crash-safe fetch: a new job starts within a round trip.

When the queues are empty the dispatcher stops polling and sets the waiters
going: one thread per queue blocks in BLMOVE (Redis has no multi-key
blocking LMOVE before 7.0's BLMPOP, which is not crash-safe). The first to get
a job hands it over and releases the others with CLIENT UNBLOCK, which Redis
answers like a timeout: nothing can be popped and lost.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import cast

import redis as redispy

from gokogeri.fetch import ERROR_PAUSE, Unblocker, UnitOfWork
from gokogeri.redis import ConnManager


class IdleWaiters:
    def __init__(
        self,
        cm: ConnManager,
        logger: logging.Logger,
        name: str,
        queues: list[tuple[str, int, str, str]],  # (queue, pair, queue key, working key)
        on_job: Callable[[UnitOfWork], None],
        on_fatal: Callable[[BaseException], None],
    ) -> None:
        self._cm = cm
        self._log = logger
        self._name = name
        self._queues = queues
        self._on_job = on_job
        self._on_fatal = on_fatal
        self._active = threading.Event()
        self._stopped = False
        self.unblocker = Unblocker(cm)
        self.threads: list[threading.Thread] = []

    @property
    def idle(self) -> bool:
        """True while the waiters block for jobs (the dispatcher does not poll)."""
        return self._active.is_set()

    def enter_idle(self) -> None:
        self._active.set()

    def start(self) -> None:
        for queue, pair, src, dst in self._queues:
            t = threading.Thread(
                target=self._guarded,
                args=(queue, pair, src, dst),
                name=f"{self._name}-wait-{queue}",
                daemon=True,
            )
            self.threads.append(t)
            t.start()

    def stop(self) -> None:
        """Release every waiter and end their threads (quiet)."""
        self._stopped = True
        self._active.set()  # wake sleeping waiters so they see the stop
        self.unblocker.release()

    def _guarded(self, queue: str, pair: int, src: str, dst: str) -> None:
        try:
            self._loop(queue, pair, src, dst)
        except BaseException as e:  # a bug in gokogeri: stop the node, loudly
            self._on_fatal(e)

    def _loop(self, queue: str, pair: int, src: str, dst: str) -> None:
        client: redispy.Redis | None = None
        cid = 0
        timeout = self._cm.config.long_poll_timeout
        # Checked before each wait, after the clear() below: a stop() that came
        # between a job's arrival and that clear() had its wake-up erased by it.
        while not self._stopped:
            self._active.wait()
            if self._stopped:
                break
            try:
                if client is None:
                    client = self._cm.dedicated()
                    cid = int(client.client_id())
                self.unblocker.blocking(cid)
                try:
                    payload = cast(
                        bytes | None,
                        client.blmove(src, dst, timeout, "RIGHT", "LEFT"),  # type: ignore[arg-type]  # redis-py types timeout as int
                    )
                finally:
                    self.unblocker.done()
            except redispy.RedisError as e:
                self._log.warning("blocking fetch on %s failed: %s", queue, e)
                if client is not None:
                    with contextlib.suppress(Exception):
                        client.close()
                client = None
                time.sleep(ERROR_PAUSE)
                continue
            if payload is None:
                continue
            # Leave idle mode without waking the dispatcher: the processor's
            # retrieve() (or the next acknowledgement) does that once the job
            # has started, so the backlog fetch never delays it.
            self._active.clear()
            self._on_job(UnitOfWork(queue, payload, pair))
            self.unblocker.release(except_current=True)
        if client is not None:
            client.close()
