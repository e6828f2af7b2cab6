"""The event loop a pool runs its async jobs on.

One loop thread per pool that has async workers. A processor thread hands
the job's coroutine to the loop and waits for it, so every bookkeeping step
(middleware, acknowledgement, retry, busy entries, crash safety) is the same
code path as for sync jobs, and ``instances`` bounds the coroutines running
at once. While a coroutine awaits, its processor thread sleeps without the
GIL; the loop runs every pending coroutine.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
from collections.abc import Coroutine
from typing import Any

from gokogeri.timers import precise_timers


class LoopThread:
    def __init__(self, name: str) -> None:
        self.name = name
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._running: set[concurrent.futures.Future[Any]] = set()
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
        """Run ``coro`` on the loop; block this (processor) thread until it ends.

        The coroutine sees this thread's context variables (a tracing span a
        server middleware opened, for one), as if it had been awaited here.
        """
        ctx = contextvars.copy_context()

        async def in_callers_context() -> Any:
            return await asyncio.get_running_loop().create_task(coro, context=ctx)

        fut = asyncio.run_coroutine_threadsafe(in_callers_context(), self.loop)
        with self._lock:
            self._running.add(fut)
        try:
            return fut.result()
        finally:
            with self._lock:
                self._running.discard(fut)

    def cancel_all(self) -> int:
        """Cancel every running coroutine (hard shutdown); how many there were."""
        with self._lock:
            running = list(self._running)
        for fut in running:
            fut.cancel()
        return len(running)

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout)
