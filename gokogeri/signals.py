"""Sidekiq's process signals for a node: TERM/INT stop (a second one stops at
once, pushing unfinished jobs back), TSTP quiets, TTIN dumps every thread.

Why a relay thread rather than handlers that act: a Python signal handler runs
on the main thread between two bytecodes, possibly while that thread holds a
non-reentrant lock - threading's ``_active_limbo_lock`` inside Thread.start()
or active_count() (the node starts a dozen threads after it registers, and
wire.py calls active_count() per command), or an Event's condition lock inside
Event.wait(). A handler that starts a thread or sets an Event then deadlocks
the main thread or corrupts threading's bookkeeping; a TTIN during start-up hung
a swarm child that way. So the Python handler does nothing: the C-level handler
writes the signal number to a pipe (signal.set_wakeup_fd), and a daemon thread
reads it and calls the node.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gokogeri.node import Node

HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGTSTP, signal.SIGTTIN)


class _Relay:
    """The process's one relay: a pipe, the thread reading it, and the node it
    acts on (installing again for another node re-targets it)."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.stops = 0
        self.pid = os.getpid()
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.write_fd, False)  # the C handler must never block
        threading.Thread(target=self._run, name="gokogeri-signals", daemon=True).start()

    def _run(self) -> None:
        while True:
            data = os.read(self.read_fd, 64)
            if not data:
                return
            for signum in data:  # one byte per delivered signal
                self._handle(signum)

    def _handle(self, signum: int) -> None:
        node = self.node
        try:
            if signum in (signal.SIGTERM, signal.SIGINT):
                self.stops += 1
                node.request_stop(hard=self.stops > 1)
            elif signum == signal.SIGTSTP:
                node.quiet()
            elif signum == signal.SIGTTIN:
                node.dump_threads()
        except Exception:  # a failed dump must not end the relay
            node.logger.exception("handling %s failed", signal.Signals(signum).name)


_relay: _Relay | None = None


def _noted(signum: int, frame: FrameType | None) -> None:
    """Installed so the C handler runs and writes to the wakeup fd; acts on nothing."""


def install_signal_handlers(node: Node) -> None:
    """Route TERM/INT/TSTP/TTIN to ``node`` through the relay thread.

    Call from the main thread (signal.set_wakeup_fd requires it) before
    ``node.run()``. It takes over the process's wakeup fd. Called again (a
    later node in the same process, or a forked child), it re-targets the
    relay instead of starting another one.
    """
    global _relay
    if _relay is None or _relay.pid != os.getpid():  # a forked child has no relay thread
        _relay = _Relay(node)
    else:
        _relay.node, _relay.stops = node, 0
    signal.set_wakeup_fd(_relay.write_fd, warn_on_full_buffer=False)
    for signum in HANDLED:
        signal.signal(signum, _noted)
