"""The event loop a pool runs its async jobs on.

One loop thread per pool that has async workers. The pool puts jobs on it
in one of two ways (processor.py): as tasks it creates itself (the fast
paths, where the loop finishes the job's bookkeeping), or through
``LoopThread.run``, where a processor thread hands the job's coroutine to the
loop and waits for it, so server middleware wraps the whole job exactly as it
wraps a sync one. While a coroutine awaits, its processor thread sleeps
without the GIL; the loop runs every pending coroutine.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Coroutine
from typing import Any

from gokogeri.timers import precise_timers


class _Call:
    """One coroutine a processor thread waits for: how it ended."""

    __slots__ = ("done", "error", "result", "task")

    def __init__(self) -> None:
        # Released by the loop when the coroutine ends; the processor thread
        # sleeps on it without the GIL (one futex wake, no Python Condition).
        self.done = threading.Lock()
        self.done.acquire()
        self.result: Any = None
        self.error: BaseException | None = None
        self.task: asyncio.Task[None] | None = None


class LoopThread:
    def __init__(self, name: str) -> None:
        self.name = name
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._running: set[_Call] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        precise_timers()  # asyncio.sleep in jobs ends on time (see timers.py)
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            pending = asyncio.all_tasks(self.loop)
            for task in pending:
                task.cancel()
            if pending:
                self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.run_until_complete(self.loop.shutdown_default_executor())
            self.loop.close()

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run ``coro`` on the loop; block this (processor) thread until it ends,
        then return its result or raise what it raised.

        The coroutine sees this thread's context variables (a tracing span a
        server middleware opened, for one), as if it had been awaited here.
        """
        call = _Call()
        self.loop.call_soon_threadsafe(self._start, coro, contextvars.copy_context(), call)
        with self._lock:  # after _start is queued: a cancel_all() then finds its task
            self._running.add(call)
        try:
            call.done.acquire()
        finally:
            with self._lock:
                self._running.discard(call)
        if call.error is not None:
            raise call.error
        return call.result

    def _start(self, coro: Coroutine[Any, Any, Any], ctx: contextvars.Context, call: _Call) -> None:
        call.task = self.loop.create_task(self._guard(coro, call), context=ctx)

    @staticmethod
    async def _guard(coro: Coroutine[Any, Any, Any], call: _Call) -> None:
        try:
            call.result = await coro
        except BaseException as e:
            # Whatever the job raised, SystemExit and KeyboardInterrupt
            # included, is the job's failure: caught here, inside the task. A
            # task that lets them through re-raises them out of run_forever(),
            # which would end this loop and every later async job with it.
            # CancelledError (a hard stop) ends up here too.
            call.error = e
        finally:
            call.done.release()

    def cancel_all(self) -> int:
        """Cancel every running coroutine (hard shutdown); how many there were."""
        with self._lock:
            running = list(self._running)
        for call in running:
            self.loop.call_soon_threadsafe(self._cancel, call)
        return len(running)

    @staticmethod
    def _cancel(call: _Call) -> None:
        if call.task is not None:
            call.task.cancel()

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout)
