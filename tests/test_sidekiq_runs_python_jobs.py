"""Jobs enqueued from Python are run by real Ruby Sidekiq 6.4.1 (Debian's package)."""

from __future__ import annotations

import json
import time

import redis as redispy

from gokogeri import Enqueuer, Job
from gokogeri import redis as gredis
from tests.conftest import SidekiqProcess, wait_for

ARGS = [1, "two", {"k": [1.5, None, True]}, "ünïcode ✓", 2**40]


def done(r: redispy.Redis) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(x) for x in r.lrange("test:done", 0, -1)]


def test_immediate(cm: gredis.ConnManager, r: redispy.Redis, sidekiq: SidekiqProcess) -> None:
    jid = Enqueuer(cm).enqueue(Job("RecordJob", args=ARGS))
    (record,) = wait_for(lambda: done(r))
    assert record["jid"] == jid and record["args"] == ARGS


def test_immediate_with_ms_timestamps(
    redis_url: str, r: redispy.Redis, sidekiq: SidekiqProcess
) -> None:
    with gredis.ConnManager(gredis.Config(url=redis_url, timestamp_format="ms")) as cm:
        jid = Enqueuer(cm).enqueue(Job("RecordJob", args=[1]))
    (record,) = wait_for(lambda: done(r))
    assert record["jid"] == jid


def test_scheduled(cm: gredis.ConnManager, r: redispy.Redis, sidekiq: SidekiqProcess) -> None:
    at = time.time() + 1.0
    jid = Enqueuer(cm).enqueue_at(Job("RecordJob", args=ARGS), at)
    assert r.zcard("schedule") == 1
    (record,) = wait_for(lambda: done(r), timeout=20)
    assert record["jid"] == jid and record["args"] == ARGS
    assert record["at"] >= at  # Ruby's poller did not run it early


def test_bulk(cm: gredis.ConnManager, r: redispy.Redis, sidekiq: SidekiqProcess) -> None:
    n = 500
    jids = Enqueuer(cm).enqueue_bulk([Job("RecordJob", args=[i, "x"]) for i in range(n)])
    records = wait_for(lambda: (d := done(r)) and len(d) >= n and d, timeout=30)
    assert len(records) == n
    assert sorted(rec["args"][0] for rec in records) == list(range(n))
    assert {rec["jid"] for rec in records} == set(jids)


def test_failure_lands_in_ruby_retry_set(
    cm: gredis.ConnManager, r: redispy.Redis, sidekiq: SidekiqProcess
) -> None:
    jid = Enqueuer(cm).enqueue(Job("FailJob", args=["from python"], backtrace=True, tags=["py"]))
    (member,) = wait_for(lambda: r.zrange("retry", 0, -1))
    entry = json.loads(member)
    assert entry["jid"] == jid and entry["error_class"] == "BoomError"
    assert entry["error_message"] == "from python" and entry["retry_count"] == 0
    assert entry["tags"] == ["py"]  # our extra field survived Ruby's rewrite
