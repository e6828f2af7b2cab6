"""Test and demo support: a real, throwaway redis-server.

RedisServer starts ``redis-server`` (from PATH) on a free 127.0.0.1 port with
no persistence, and stops it on exit. The test suite and the demo's embedded
Redis both use it, so there is one way to run a private Redis.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from types import TracebackType

import redis as redispy

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
