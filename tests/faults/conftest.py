"""Fixtures of the fault suite: a Redis under test per test, a ledger Redis per
session, and a node factory that stops every node it started."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis as redispy

from gokogeri.testing import RedisServer
from tests.faults.harness import FaultRedis, Ledger, NodeProc

NodeFactory = Callable[..., NodeProc]


@pytest.fixture(scope="session")
def ledger_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture
def ledger(ledger_server: RedisServer) -> Iterator[Ledger]:
    client = redispy.Redis.from_url(ledger_server.url)
    client.flushall()
    yield Ledger(client)
    client.close()


@pytest.fixture
def sut() -> Iterator[FaultRedis]:
    """The Redis under test: AOF on, appendfsync always, killable."""
    server = FaultRedis().start()
    yield server
    server.close()


@pytest.fixture
def r(sut: FaultRedis) -> Iterator[redispy.Redis]:
    client = sut.client()
    yield client
    client.close()


@pytest.fixture
def node_factory(
    sut: FaultRedis, ledger_server: RedisServer, tmp_path: Path
) -> Iterator[NodeFactory]:
    """``node_factory(FAULTS_CONCURRENCY="10", ...)``: a started NodeProc; all
    of them are stopped (TERM, then KILL) when the test ends."""
    started: list[NodeProc] = []

    def make(**env: str) -> NodeProc:
        node = NodeProc(sut.url, ledger_server.url, str(tmp_path), **env).start()
        started.append(node)
        return node

    yield make
    for node in started:
        node.stop(timeout=10)
