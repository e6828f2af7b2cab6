"""Starting and breaking real processes: Redis with AOF, nodes, a supervisor.

Nothing here mocks anything. ``FaultRedis`` is a redis-server on a fixed port
and data directory, so it can be SIGKILLed and started again with its AOF;
``NodeProc`` is ``python -m gokogeri run tests.faults.app:make_node``;
``Supervisor`` restarts a node that exits non-zero, as systemd's
Restart=on-failure would; ``Storm`` kills every client connection over and
over. Every process a helper starts, it stops (``close``/``stop``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar, cast

import redis as redispy

from gokogeri.testing import find_redis_server, free_port, wait_for
from tests.faults.app import DONE_AT, RUNS, STARTS

# Not resolve(): the suite may run from a copy of the repo with tests/faults linked in.
REPO = Path(os.path.abspath(__file__)).parent.parent.parent
T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    """Poll until ``predicate`` is truthy; fail with ``what`` after ``timeout`` seconds."""
    return cast(T, wait_for(predicate, timeout, interval, what=what))


# --- Redis ---


class FaultRedis:
    """A redis-server that can be killed and restarted with its data.

    aof: appendonly with appendfsync always, so a SIGKILL loses no
    acknowledged write (the production setting that makes a restart lossless).
    """

    def __init__(self, *, aof: bool = True, extra_args: Iterable[str] = ()) -> None:
        binary = find_redis_server()
        if binary is None:
            raise RuntimeError("redis-server is not on PATH")
        self.binary = binary
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="gokogeri-faults-redis-")
        self.aof = aof
        self.extra = list(extra_args)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = os.path.join(self.dir, "redis.log")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redispy.Redis:
        return redispy.Redis(host="127.0.0.1", port=self.port, socket_timeout=30)

    def start(self) -> FaultRedis:
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", self.dir,
            "--save", "",
            "--appendonly", "yes" if self.aof else "no",
            "--appendfsync", "always",
            "--daemonize", "no",
            "--logfile", self.log_path,
            *self.extra,
        ]  # fmt: skip
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        probe = redispy.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    probe.ping()
                    break
                except redispy.BusyLoadingError:
                    pass  # replaying the AOF
                except redispy.ConnectionError:
                    pass
                if self.proc.poll() is not None:
                    raise RuntimeError(f"redis-server exited with {self.proc.returncode}")
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not answer PING")
                time.sleep(0.01)
        finally:
            probe.close()
        return self

    def kill(self) -> None:
        """SIGKILL: a crash, not a shutdown (no final save)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self, down: float) -> float:
        """Kill, stay down ``down`` seconds, start again on the same port and data;
        returns the monotonic time Redis answered again."""
        self.kill()
        time.sleep(down)
        self.start()
        return time.monotonic()

    def fill_to_oom(self, keep_free_of: int = 0) -> int:
        """Put Redis above maxmemory with noeviction: a padding key, then a
        maxmemory below what is used; returns the maxmemory set."""
        c = self.client()
        try:
            c.config_set("maxmemory-policy", "noeviction")
            c.set("faults:padding", b"x" * (4 << 20))
            used = int(c.info("memory")["used_memory"])
            limit = max(1 << 20, used // 2 - keep_free_of)
            c.config_set("maxmemory", limit)
            return limit
        finally:
            c.close()

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


# --- nodes ---


class NodeProc:
    """A node in a child process, built by tests.faults.app:make_node."""

    def __init__(self, redis_url: str, ledger_url: str, log_dir: str, **env: str) -> None:
        self.env = dict(
            os.environ,
            FAULTS_REDIS_URL=redis_url,
            # `gokogeri run` checks this one before it builds the node.
            GOKOGERI_REDIS_URL=redis_url,
            FAULTS_LEDGER_URL=ledger_url,
            PYTHONUNBUFFERED="1",
            **env,
        )
        self.log_dir = log_dir
        self.log_path = os.path.join(log_dir, f"node-{time.monotonic_ns()}.log")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> NodeProc:
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gokogeri", "run", "tests.faults.app:make_node"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=str(REPO),
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def kill(self) -> None:
        """SIGKILL, and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait()

    def stop(self, timeout: float = 20.0) -> int | None:
        """TERM, wait, SIGKILL if it hangs; returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def output(self) -> str:
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")


class Supervisor:
    """Restart-on-failure: runs a node, starts a new one whenever it exits
    non-zero (after ``delay``), stops restarting once it exits 0 or ``stop``
    is called. ``exits`` records every exit status, in order."""

    def __init__(self, make: Callable[[], NodeProc], delay: float = 0.2) -> None:
        self._make = make
        self._delay = delay
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self.current: NodeProc | None = None
        self.nodes: list[NodeProc] = []
        self.exits: list[int] = []
        self._thread = threading.Thread(target=self._loop, name="supervisor", daemon=True)

    def start(self) -> Supervisor:
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                if self._stopping.is_set():
                    return
                node = self._make().start()
                self.current = node
                self.nodes.append(node)
            assert node.proc is not None
            code = node.proc.wait()
            self.exits.append(code)
            if code == 0:
                return
            self._stopping.wait(self._delay)

    @property
    def starts(self) -> int:
        return len(self.nodes)

    def stop(self) -> None:
        with self._lock:
            self._stopping.set()
            node = self.current
        if node is not None:
            node.stop()
        self._thread.join(30)


class Storm:
    """CLIENT KILL every normal and pub/sub connection but our own, every
    ``interval`` seconds, while the context is open; counts the kills."""

    def __init__(self, client: redispy.Redis, interval: float = 0.05) -> None:
        self._client = client
        self._interval = interval
        self._stop = threading.Event()
        self.killed = 0
        self.rounds = 0
        self._thread = threading.Thread(target=self._loop, name="storm", daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            for kind in ("normal", "pubsub"):
                try:
                    # redis-py's client_kill_filter has no pubsub type.
                    n = self._client.execute_command(  # type: ignore[no-untyped-call]
                        "CLIENT", "KILL", "TYPE", kind, "SKIPME", "yes"
                    )
                    self.killed += int(n)
                except redispy.RedisError:
                    pass
            self.rounds += 1

    def __enter__(self) -> Storm:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


# --- the ledger ---


class Ledger:
    """Reads what the jobs recorded in the ledger Redis (see app.py)."""

    def __init__(self, client: redispy.Redis) -> None:
        self.r = client

    def _counts(self, key: str) -> Counter[str]:
        raw = cast(dict[bytes, bytes], self.r.hgetall(key))
        return Counter({k.decode(): int(v) for k, v in raw.items()})

    def runs(self) -> Counter[str]:
        return self._counts(RUNS)

    def starts(self) -> Counter[str]:
        return self._counts(STARTS)

    def ran(self) -> int:
        return int(self.r.hlen(RUNS))

    def done_at(self) -> dict[str, float]:
        raw = cast(dict[bytes, bytes], self.r.hgetall(DONE_AT))
        return {k.decode(): float(v) for k, v in raw.items()}


def tally(expected: Iterable[str], runs: Counter[str]) -> tuple[list[str], int, list[str]]:
    """(lost jids, duplicate runs, jids that ran but were never enqueued)."""
    want = set(expected)
    lost = sorted(j for j in want if runs.get(j, 0) == 0)
    dups = sum(n - 1 for j, n in runs.items() if j in want and n > 1)
    strangers = sorted(j for j in runs if j not in want)
    return lost, dups, strangers


def leftovers(r: redispy.Redis) -> dict[str, int]:
    """Every gokogeri working list that still holds something, with its length."""
    out: dict[str, int] = {}
    for key in cast(list[bytes], r.keys("gokogeri:working:*")):
        n = int(r.llen(key))
        if n:
            out[key.decode()] = n
    return out


# --- figures for the README's Reliability section ---


def report(test: str, **figures: Any) -> None:
    """Print the run's figures; with FAULTS_REPORT set, append them there as JSON lines."""
    line = json.dumps({"test": test, "at": time.time(), **figures}, sort_keys=True)
    print(f"FAULTS {line}")
    path = os.environ.get("FAULTS_REPORT")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")
