"""Many node processes under one parent (Sidekiq Enterprise's swarm).

One Python process runs one core's worth of jobs (the GIL). The swarm parent
imports the application once, then forks ``processes`` children, each of which
builds and runs its own Node (its own Redis connections, its own identity in
the Web UI, tagged with its index), so the imported code and data are shared
copy-on-write.

The parent never touches Redis. It:
- restarts a child that dies, after a back-off that doubles with each quick
  death, and gives up on a slot that keeps crashing (a crash loop would only
  burn CPU and flood the logs); the swarm exits non-zero when every slot gave up;
- forwards TERM/INT (stop), TSTP (quiet) and TTIN (thread dump) to every child,
  and on TERM/INT waits for each child's grace period before SIGKILL;
- with ``max_rss_kb``, quiets a child whose resident memory grew past it and,
  when that child has finished its running jobs and exited, starts a fresh one
  (Sidekiq Enterprise's memory killer).

A child dies with the parent (PR_SET_PDEATHSIG on Linux), so a SIGKILLed
parent never leaves orphans fetching jobs.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType

from gokogeri.heartbeat import rss_kb
from gokogeri.node import CANCEL_GRACE, Node
from gokogeri.signals import install_signal_handlers

# Environment variable a child finds its index in (0-based), for application code.
INDEX_ENV = "GOKOGERI_SWARM_INDEX"
# Restart back-off: the first restart waits BACKOFF_MIN, doubling per recent
# death up to BACKOFF_MAX.
BACKOFF_MIN = 1.0
BACKOFF_MAX = 30.0
# A slot whose child died CRASH_LIMIT times within CRASH_WINDOW seconds is
# not restarted again (a child that ran longer than the window starts afresh).
CRASH_LIMIT = 5
CRASH_WINDOW = 60.0
# How often the parent looks at its children (exits, memory, restarts).
TICK = 0.1
# Memory checks are cheaper than that: once a second is plenty.
RSS_EVERY = 1.0
# Extra time past the children's grace period (and their CANCEL_GRACE)
# before the parent SIGKILLs a child that still has not exited.
STOP_MARGIN = 5.0

_PR_SET_PDEATHSIG = 1
_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGTSTP, signal.SIGTTIN)
_HELD = (signal.SIGTSTP, signal.SIGTTIN)  # blocked in a child until its node handles them


def processes_for(n: int) -> int:
    """``-p 0`` means one process per core."""
    if n < 0:
        raise ValueError(f"processes must be >= 0, got {n}")
    return n or (os.cpu_count() or 1)


def index_tag(tag: str, index: int) -> str:
    """The Web UI tag of child ``index``: the node's tag with the index appended."""
    return f"{tag}.{index}" if tag else f"swarm.{index}"


@dataclass
class _Slot:
    index: int
    pid: int = 0
    started: float = 0.0
    deaths: deque[float] = field(default_factory=deque)
    restart_at: float = 0.0  # monotonic time to fork again (when pid == 0)
    given_up: bool = False
    recycling: bool = False  # quieted for memory; its exit is expected


class Swarm:
    """Fork ``processes`` nodes built by ``make_node(index)``; supervise them.

    make_node: called in each child (after the fork) with the child's index;
        returns a configured Node that has not run yet. Its tag gets the index.
    processes: how many children; 0 = one per core.
    max_rss_kb: quiet and replace a child above this resident memory.
    shutdown_timeout: the children's grace period, set on each Node (``-t``);
        the parent then waits this long plus CANCEL_GRACE and a margin after
        forwarding TERM before it SIGKILLs a child. None keeps each Node's own
        and the parent waits for the children however long they take (a
        Node's stop always returns; a second TERM/INT is forwarded and ends
        their grace period at once).
    """

    def __init__(
        self,
        make_node: Callable[[int], Node],
        processes: int,
        max_rss_kb: int | None = None,
        logger: logging.Logger | None = None,
        *,
        shutdown_timeout: float | None = None,
        backoff: tuple[float, float] = (BACKOFF_MIN, BACKOFF_MAX),
        crash_limit: int = CRASH_LIMIT,
        crash_window: float = CRASH_WINDOW,
    ) -> None:
        if max_rss_kb is not None and max_rss_kb <= 0:
            raise ValueError(f"max_rss_kb must be positive, got {max_rss_kb}")
        if crash_limit < 1:
            raise ValueError("crash_limit must be at least 1")
        self.make_node = make_node
        self.processes = processes_for(processes)
        self.max_rss_kb = max_rss_kb
        self.logger = logger or logging.getLogger("gokogeri.swarm")
        self.shutdown_timeout = shutdown_timeout
        self.backoff = backoff
        self.crash_limit = crash_limit
        self.crash_window = crash_window
        self._slots = [_Slot(i) for i in range(self.processes)]
        self._signals: deque[int] = deque()
        self._stopping = False
        self._next_rss = 0.0

    # --- parent ---

    def run(self) -> int:
        """Run until TERM/INT (0) or until every slot crash-looped (1)."""
        log = self.logger
        previous = {s: signal.signal(s, self._on_signal) for s in _FORWARDED}
        try:
            log.info(
                "Starting swarm of %s processes (parent pid %s)%s",
                self.processes,
                os.getpid(),
                f", max RSS {self.max_rss_kb} KiB" if self.max_rss_kb else "",
            )
            for slot in self._slots:
                self._fork(slot)
            while True:
                self._handle_signals()
                self._reap()
                if self._stopping:
                    break
                now = time.monotonic()
                for slot in self._slots:
                    if slot.pid == 0 and not slot.given_up and now >= slot.restart_at:
                        self._fork(slot)
                if self.max_rss_kb is not None and now >= self._next_rss:
                    self._next_rss = now + RSS_EVERY
                    self._check_memory()
                if all(s.given_up for s in self._slots):
                    log.error("every swarm process is crash-looping; giving up")
                    return 1
                time.sleep(TICK)
            self._stop_children()
            return 0
        finally:
            for s, h in previous.items():
                signal.signal(s, h)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals.append(signum)  # handled on the main loop, not in the handler

    def _handle_signals(self) -> None:
        while self._signals:
            signum = self._signals.popleft()
            name = signal.Signals(signum).name
            self.logger.info("Got %s: forwarding it to %s processes", name, self._live())
            self._send_all(signum)
            if signum in (signal.SIGTERM, signal.SIGINT):
                self._stopping = True

    def _live(self) -> int:
        return sum(1 for s in self._slots if s.pid)

    def _send_all(self, signum: int) -> None:
        for slot in self._slots:
            if slot.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(slot.pid, signum)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            slot = next((s for s in self._slots if s.pid == pid), None)
            if slot is None:
                continue
            self._exited(slot, status)

    def _exited(self, slot: _Slot, status: int) -> None:
        log = self.logger
        slot.pid = 0
        how = _describe(status)
        now = time.monotonic()
        if self._stopping:
            log.info("Process %s stopped (%s)", slot.index, how)
            return
        if slot.recycling:
            slot.recycling = False
            slot.restart_at = now  # replaced at once; a memory recycle is no crash
            log.info("Process %s recycled (%s); starting a fresh one", slot.index, how)
            return
        if now - slot.started > self.crash_window:
            slot.deaths.clear()  # it ran a good while: earlier deaths are history
        slot.deaths.append(now)
        while slot.deaths and now - slot.deaths[0] > self.crash_window:
            slot.deaths.popleft()
        if len(slot.deaths) >= self.crash_limit:
            slot.given_up = True
            log.error(
                "Process %s died %s times within %ss (last: %s); not restarting it",
                slot.index,
                len(slot.deaths),
                self.crash_window,
                how,
            )
            return
        low, high = self.backoff
        delay = min(high, low * 2 ** (len(slot.deaths) - 1))
        slot.restart_at = now + delay
        log.warning("Process %s died (%s); restarting it in %.1fs", slot.index, how, delay)

    def _check_memory(self) -> None:
        limit = self.max_rss_kb
        assert limit is not None
        for slot in self._slots:
            if not slot.pid or slot.recycling:
                continue
            rss = rss_kb(slot.pid)
            if rss > limit:
                # Quiet, then stop: the node finishes its running jobs within
                # its grace period (unfinished ones go back to their queues),
                # and the slot is refilled when it exits.
                slot.recycling = True
                self.logger.warning(
                    "Process %s (pid %s) uses %s KiB > max RSS %s KiB: replacing it "
                    "after its running jobs",
                    slot.index,
                    slot.pid,
                    rss,
                    limit,
                )
                with contextlib.suppress(ProcessLookupError):
                    os.kill(slot.pid, signal.SIGTSTP)
                    os.kill(slot.pid, signal.SIGTERM)

    def _stop_children(self) -> None:
        deadline = (
            float("inf")
            if self.shutdown_timeout is None
            else time.monotonic() + self.shutdown_timeout + CANCEL_GRACE + STOP_MARGIN
        )
        while self._live():
            self._reap()
            while self._signals:  # a second TERM/INT: pass it on (children stop harder)
                self._send_all(self._signals.popleft())
            if time.monotonic() > deadline:
                for slot in self._slots:
                    if slot.pid:
                        self.logger.error(
                            "Process %s (pid %s) ignored the grace period; killing it",
                            slot.index,
                            slot.pid,
                        )
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(slot.pid, signal.SIGKILL)
                deadline = float("inf")
            time.sleep(TICK)
        self.logger.info("Swarm stopped")

    def _fork(self, slot: _Slot) -> None:
        for h in self.logger.handlers:
            h.flush()  # nothing buffered may be written twice
        sys.stdout.flush()
        sys.stderr.flush()
        # The child is born with TSTP/TTIN blocked and unblocks them once its
        # node's handlers are in place: forwarded before that, their default
        # action would stop (freeze) it. A TERM that early may kill it: it
        # holds no jobs yet.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)
        try:
            pid = os.fork()
            if pid == 0:
                os._exit(self._child(slot.index))
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        slot.pid = pid
        slot.started = time.monotonic()
        self.logger.info("Started process %s (pid %s)", slot.index, pid)

    # --- child ---

    def _child(self, index: int) -> int:
        """Build and run the node; the exit status. Never returns into the parent's code."""
        code = 1
        try:
            for s in _FORWARDED:
                signal.signal(s, signal.SIG_DFL)
            # Its own process group: a terminal's Ctrl-C/Ctrl-Z reaches only the
            # parent, which forwards it once (twice would mean "stop hard").
            os.setpgid(0, 0)
            _die_with_parent()
            os.environ[INDEX_ENV] = str(index)
            node = self.make_node(index)
            node.tag = index_tag(node.tag, index)
            if self.shutdown_timeout is not None:
                node.shutdown_timeout = self.shutdown_timeout
            install_signal_handlers(node)
            # Signals that came meanwhile are delivered now, to the node.
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _HELD)
            node.run()
            code = 0
        except KeyboardInterrupt:
            code = 0
        except BaseException:
            self.logger.exception("swarm process %s failed", index)
        finally:
            logging.shutdown()  # flush buffered log lines; os._exit skips atexit
            sys.stdout.flush()
            sys.stderr.flush()
        return code


def _die_with_parent() -> None:
    """Ask Linux to TERM this child when the parent dies (no orphans)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() == 1:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"
