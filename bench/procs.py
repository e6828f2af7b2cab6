"""Processes the harness owns: private redis-servers and worker subprocesses.

Every worker is started in its own session (process group), so it and any
children it forks (Dramatiq forks its worker process, py-spy runs its target)
are stopped as one: SIGTERM to the group, then SIGKILL after a grace period.
Everything started is registered, and ``stop_all`` (run in a ``finally`` and at
exit) stops whatever is still alive, so a crash or Ctrl-C leaves nothing
running.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import redis as redispy

from gokogeri.testing import RedisServer

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
WORKERS = BENCH / "workers"
RESULTS = BENCH / "results"
PEER_VENVS = BENCH / ".venv"

# Sidekiq needs up to ~2 s (its BRPOP timeout) to notice TERM; Celery and
# Dramatiq a few seconds more. After this, the group gets SIGKILL.
STOP_GRACE = 15.0

_PAGE = os.sysconf("SC_PAGE_SIZE")
_TICKS = os.sysconf("SC_CLK_TCK")

_live: list[Managed] = []


class Managed:
    """A subprocess in its own process group, output sent to a log file."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        log_path: Path,
        env: dict[str, str] | None = None,
        cwd: Path = REPO,
    ) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("wb")
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _live.append(self)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _group_stats(self) -> list[list[str]]:
        """/proc/<pid>/stat fields (after the command name) of every process in
        our process group: the worker plus anything it forked (Dramatiq does).
        Read from /proc rather than psutil so the harness needs nothing extra."""
        out = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                text = (entry / "stat").read_text()
            except OSError:
                continue
            fields = text[text.rindex(")") + 2 :].split()
            if int(fields[2]) == self.pid:  # field 5, pgrp
                out.append(fields)
        return out

    def rss_kb(self) -> int:
        """Resident memory of the whole process group, in KiB."""
        return sum(int(f[21]) for f in self._group_stats()) * _PAGE // 1024

    def cpu_s(self) -> float:
        """User + system CPU seconds used so far by the whole process group."""
        return sum(int(f[11]) + int(f[12]) for f in self._group_stats()) / _TICKS

    def stop(self, grace: float = STOP_GRACE) -> int | None:
        """SIGTERM the group, wait up to ``grace`` s, then SIGKILL it. Returns the exit code."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=grace)
        # The leader may be gone while children it forked linger: kill the group regardless.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        self._log.close()
        if self in _live:
            _live.remove(self)
        return self.proc.returncode

    def tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def library_fingerprint() -> str:
    """A short hash of gokogeri's source as it is now. Each worker process imports
    the library afresh, and it is being edited while benchmarks run: this
    records which code every measurement actually ran."""
    import hashlib

    h = hashlib.sha1()
    for path in sorted((REPO / "gokogeri").glob("*.*")):
        if path.suffix in (".py", ".lua"):
            h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()[:10]


def stop_all() -> None:
    for m in list(_live):
        m.stop(grace=5.0)


atexit.register(stop_all)


@contextlib.contextmanager
def fresh_redis() -> Iterator[tuple[str, redispy.Redis]]:
    """A private, empty redis-server for one measurement (same binary for every system)."""
    server = RedisServer().start()
    client = redispy.Redis.from_url(server.url)
    try:
        yield server.url, client
    finally:
        client.close()
        server.stop()


def wait_for(pred: object, timeout: float, interval: float = 0.01) -> bool:
    """Poll ``pred()`` until true or ``timeout`` seconds pass."""
    assert callable(pred)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return bool(pred())
