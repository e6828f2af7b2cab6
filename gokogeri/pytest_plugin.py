"""gokogeri's pytest plugin (entry point ``pytest11``, installed with ``gokogeri[testing]``).

Opt-in by name: it only adds fixtures (all prefixed ``gokogeri_``) and two ini
settings, so a test run that asks for none of them is unchanged. gokogeri
itself is imported only when a fixture is used, because pytest loads this
module in every run in an environment where gokogeri is installed.

Fixtures:

- ``gokogeri_redis``: a private redis-server on a free 127.0.0.1 port, empty at
  the start of each test (a RedisServer: ``.url``, ``.port``). By default one
  server serves the whole session and is flushed between tests; the ini
  setting ``gokogeri_redis_scope = function`` starts a fresh one per test.
- ``gokogeri_redis_url``, ``gokogeri_cm`` (ConnManager), ``gokogeri_enqueuer``
  (Enqueuer): bound to that server.
- ``gokogeri_fake``: a FakeEnqueuer (fake mode; ``.inline(worker)`` for inline).
- ``gokogeri_node``: start a Node in a thread against ``gokogeri_redis``
  (``gokogeri_node(worker, queues=[...])``); stopped when the test ends.
- ``gokogeri_sidekiq``: start a real Ruby Sidekiq running your Ruby job files
  against ``gokogeri_redis``, from the host's sidekiq or a container image.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from gokogeri.enqueuer import Enqueuer
    from gokogeri.node import Node
    from gokogeri.redis import ConnManager
    from gokogeri.testing import FakeEnqueuer, RedisServer, RubySidekiq
    from gokogeri.worker import Worker

SCOPE_INI = "gokogeri_redis_scope"
BINARY_INI = "gokogeri_redis_binary"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        SCOPE_INI,
        "gokogeri_redis: 'session' (one server, flushed between tests; the default) "
        "or 'function' (a fresh server per test)",
        default="session",
    )
    parser.addini(
        BINARY_INI,
        "gokogeri_redis: the redis-server (or valkey-server) to run; default: found on PATH",
        default="",
    )


def _new_server(config: pytest.Config) -> RedisServer:
    from gokogeri.testing import RedisServer

    binary = str(config.getini(BINARY_INI) or "") or None
    return RedisServer(binary=binary).start()


def _scope(config: pytest.Config) -> str:
    scope = str(config.getini(SCOPE_INI) or "session")
    if scope not in ("session", "function"):
        raise pytest.UsageError(f"{SCOPE_INI} must be 'session' or 'function', got {scope!r}")
    return scope


@pytest.fixture(scope="session")
def gokogeri_redis_session(request: pytest.FixtureRequest) -> Iterator[RedisServer | None]:
    """The session's shared server (None when gokogeri_redis_scope = function)."""
    if _scope(request.config) == "function":
        yield None
        return
    server = _new_server(request.config)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def gokogeri_redis(
    request: pytest.FixtureRequest, gokogeri_redis_session: RedisServer | None
) -> Iterator[RedisServer]:
    """A private redis-server, empty when the test starts."""
    if gokogeri_redis_session is None:
        server = _new_server(request.config)
        try:
            yield server
        finally:
            server.stop()
        return
    import redis as redispy

    client = redispy.Redis.from_url(gokogeri_redis_session.url)
    try:
        client.flushall()
    finally:
        client.close()
    yield gokogeri_redis_session


@pytest.fixture
def gokogeri_redis_url(gokogeri_redis: RedisServer) -> str:
    return gokogeri_redis.url


@pytest.fixture
def gokogeri_cm(gokogeri_redis_url: str) -> Iterator[ConnManager]:
    from gokogeri.redis import Config, ConnManager

    with ConnManager(Config(url=gokogeri_redis_url)) as cm:
        yield cm


@pytest.fixture
def gokogeri_enqueuer(gokogeri_cm: ConnManager) -> Enqueuer:
    from gokogeri.enqueuer import Enqueuer

    return Enqueuer(gokogeri_cm)


@pytest.fixture
def gokogeri_fake() -> FakeEnqueuer:
    from gokogeri.testing import FakeEnqueuer

    return FakeEnqueuer()


@pytest.fixture
def gokogeri_node(gokogeri_cm: ConnManager) -> Iterator[Callable[..., Node]]:
    """``gokogeri_node(worker, queues=["default"], concurrency=2, **node_options)``
    starts a Node in a thread; every node started is stopped when the test ends."""
    from gokogeri.testing import NodeThread

    started: list[NodeThread] = []

    def start(
        worker: Worker, queues: list[str] | None = None, concurrency: int = 2, **options: Any
    ) -> Node:
        thread = NodeThread.start_node(
            gokogeri_cm, worker, queues or ["default"], concurrency, **options
        )
        started.append(thread)
        return thread.node

    try:
        yield start
    finally:
        with contextlib.ExitStack() as stack:
            for thread in started:
                stack.callback(thread.stop)


@pytest.fixture
def gokogeri_sidekiq(gokogeri_redis_url: str) -> Iterator[Callable[..., RubySidekiq]]:
    """``gokogeri_sidekiq(require="app/jobs.rb", queues=["default"], image=None)`` starts a
    real Sidekiq against the test's Redis; stopped (SIGTERM, then SIGKILL) when the test ends.

    ``image=None`` uses the host's ``sidekiq`` (Debian: ruby-sidekiq); an image name runs
    that image with podman or docker (host network, your files mounted read-only).
    """
    from gokogeri.testing import RubySidekiq

    started: list[RubySidekiq] = []

    def start(require: str, queues: list[str] | None = None, **options: Any) -> RubySidekiq:
        sidekiq = RubySidekiq(gokogeri_redis_url, require, queues or ["default"], **options)
        started.append(sidekiq)
        return sidekiq.start()

    try:
        yield start
    finally:
        with contextlib.ExitStack() as stack:
            for sidekiq in started:
                stack.callback(sidekiq.stop)
