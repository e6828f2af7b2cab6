"""Test and demo support.

RedisServer starts a real, throwaway ``redis-server`` (from PATH) on a free
127.0.0.1 port with no persistence, and stops it on exit; the test suite and
the demo's embedded Redis both use it. FakeEnqueuer records jobs in memory
for unit tests of code that enqueues, and runs them on demand.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from types import TracebackType

import redis as redispy

from gokogeri.enqueuer import in_seconds, prepare, to_epoch
from gokogeri.job import Job, TimestampFormat
from gokogeri.middleware import ClientChain
from gokogeri.worker import Context, Worker

START_TIMEOUT = 10.0  # seconds; a cold redis-server is up in ~20 ms


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_redis_server() -> str | None:
    return shutil.which("redis-server") or shutil.which("valkey-server")


class RedisServer:
    """A private redis-server process bound to 127.0.0.1."""

    def __init__(
        self,
        binary: str | None = None,
        port: int | None = None,
        extra_args: list[str] | None = None,
    ) -> None:
        found = binary or find_redis_server()
        if found is None:
            raise RuntimeError(
                "redis-server was not found on PATH; install it "
                "(Debian: apt-get install redis-server) or set GOKOGERI_REDIS_URL"
            )
        self.binary = found
        self.port = port or free_port()
        self._dir = tempfile.mkdtemp(prefix="gokogeri-redis-")
        self._extra = list(extra_args or [])
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self._proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self._dir,
                "--daemonize",
                "no",
                *self._extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redispy.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + START_TIMEOUT
        try:
            while True:
                try:
                    client.ping()
                    return self
                except (redispy.AuthenticationError, redispy.ResponseError):
                    return self  # it answered: it is up, it just wants a password
                except redispy.ConnectionError:
                    pass
                if self._proc.poll() is not None:
                    raise RuntimeError(f"redis-server exited with {self._proc.returncode}")
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not answer PING in time")
                time.sleep(0.01)
        finally:
            client.close()

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __del__(self) -> None:  # a last resort; tests call stop()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class FakeEnqueuer:
    """An Enqueuer that keeps jobs in memory, for unit tests of code that enqueues.

    It prepares each job exactly as the real Enqueuer does (jid, timestamps,
    strict args, queue-name check, client middleware) and records it instead
    of pushing: ``jobs`` holds every pushed Job in order, with ``at`` set on
    scheduled ones. ``drain(worker)`` runs them, like Sidekiq::Testing's
    ``drain_all``, and returns how many ran; failures propagate.
    """

    def __init__(
        self, middleware: ClientChain | None = None, timestamp_format: TimestampFormat = "float"
    ) -> None:
        self.middleware: ClientChain = middleware if middleware is not None else ClientChain()
        self._fmt = timestamp_format
        self.jobs: list[Job] = []

    def _record(self, job: Job, at: float | None) -> str | None:
        prepared = prepare(job, self._fmt, self.middleware, scheduled=at is not None)
        if prepared is None:
            return None
        _queue, payload, jid = prepared
        recorded = Job.decode(payload)
        if at is not None:
            recorded.fields["at"] = at
        self.jobs.append(recorded)
        return jid

    def enqueue(self, job: Job) -> str | None:
        return self._record(job, None)

    def enqueue_in(self, job: Job, seconds: float | timedelta) -> str | None:
        return self.enqueue_at(job, in_seconds(seconds))

    def enqueue_at(self, job: Job, at: datetime | float) -> str | None:
        when = to_epoch(at)
        return self._record(job, when if when > time.time() else None)

    def enqueue_bulk(self, jobs: Iterable[Job]) -> list[str | None]:
        return [self.enqueue(job) for job in list(jobs)]

    def queue(self, name: str) -> list[Job]:
        return [j for j in self.jobs if j.queue == name]

    def clear(self) -> None:
        self.jobs.clear()

    def drain(self, worker: Worker, logger: logging.Logger | None = None) -> int:
        """Run every recorded job (scheduled ones too, in order) until none is left."""
        ran = 0
        while self.jobs:
            job = self.jobs.pop(0)
            job.fields.pop("at", None)
            ctx = Context(logger=logger or logging.getLogger("gokogeri.testing"), queue=job.queue)
            worker.work(ctx, job)
            ran += 1
        return ran
