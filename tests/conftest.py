"""Shared fixtures: a real redis-server per test session and a real Ruby Sidekiq.

Tests never touch port 6379 or a shared server: the server below runs on a
free loopback port, without persistence, and each test starts from an empty
database.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis as redispy

from gokogeri import redis as gredis

# The helpers the pytest plugin's users get; tests import them from here.
from gokogeri.testing import NodeThread as NodeThread
from gokogeri.testing import RedisServer
from gokogeri.testing import wait_for as wait_for

RUBY_DIR = Path(__file__).parent / "ruby"


def run_threads(targets: list[Callable[[], object]], timeout: float = 30.0) -> list[BaseException]:
    """Run each target on a thread of its own and wait for them all; what they
    raised, with a TimeoutError for each thread still running after ``timeout``."""
    errors: list[BaseException] = []

    def guarded(target: Callable[[], object]) -> None:
        try:
            target()
        except BaseException as e:  # reported to the caller
            errors.append(e)

    threads = [threading.Thread(target=guarded, args=(t,)) for t in targets]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    errors += [TimeoutError(f"{t.name} still running") for t in threads if t.is_alive()]
    return errors


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    client = redispy.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture
def r(redis_url: str) -> Iterator[redispy.Redis]:
    """A raw client, for asserting exactly what landed in Redis."""
    client = redispy.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def cm(redis_url: str) -> Iterator[gredis.ConnManager]:
    with gredis.ConnManager(gredis.Config(url=redis_url)) as manager:
        yield manager


class SidekiqProcess:
    """Debian's Ruby Sidekiq 6.4.1 running tests/ruby/jobs.rb against a test Redis."""

    def __init__(self, redis_url: str, queues: list[str], concurrency: int = 5) -> None:
        self.redis_url = redis_url
        args = ["sidekiq", "-r", str(RUBY_DIR / "jobs.rb"), "-c", str(concurrency)]
        for q in queues:
            args += ["-q", q]
        env = dict(os.environ, REDIS_URL=redis_url, SIDEKIQ_POLL_INTERVAL="0.5")
        self.log = open(f"/tmp/gokogeri-sidekiq-{os.getpid()}-{time.monotonic_ns()}.log", "w+b")  # noqa: SIM115
        self.proc = subprocess.Popen(args, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        client = redispy.Redis.from_url(redis_url)
        deadline = time.monotonic() + 30
        try:
            while not client.scard("processes"):
                if self.proc.poll() is not None:
                    raise RuntimeError(f"sidekiq exited early:\n{self.output()}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"sidekiq did not register:\n{self.output()}")
                time.sleep(0.05)
        finally:
            client.close()

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def ruby(script: str, redis_url: str, *args: str, stdin: str | None = None) -> str:
    """Run Ruby code with Sidekiq's client/API loaded and our job classes defined."""
    out = subprocess.run(
        ["ruby", "-r", str(RUBY_DIR / "jobs.rb"), "-e", script, *args],
        env=dict(os.environ, REDIS_URL=redis_url),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"ruby failed ({out.returncode}):\n{out.stderr}")
    return out.stdout


needs_sidekiq = pytest.mark.skipif(
    shutil.which("sidekiq") is None, reason="Debian's ruby-sidekiq is not installed"
)


@pytest.fixture
def sidekiq(redis_url: str) -> Iterator[SidekiqProcess]:
    if shutil.which("sidekiq") is None:
        pytest.skip("Debian's ruby-sidekiq is not installed")
    proc = SidekiqProcess(redis_url, ["default", "ruby"])
    yield proc
    proc.stop()


class NodeProcess:
    """``gokogeri run tests.workers:make_node`` in a child process."""

    def __init__(self, redis_url: str, **env: str) -> None:
        self.log = open(f"/tmp/gokogeri-node-{os.getpid()}-{time.monotonic_ns()}.log", "w+b")  # noqa: SIM115
        full_env = dict(os.environ, GOKOGERI_REDIS_URL=redis_url, **env)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gokogeri", "run", "tests.workers:make_node"],
            env=full_env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=str(Path(__file__).parent.parent),
        )

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
