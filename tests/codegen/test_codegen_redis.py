"""Enqueue through generated code into a real redis-server and check the exact payload.

Uses the shared fixtures of tests/conftest.py (a private redis-server on a free
127.0.0.1 port, flushed per test).
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest
import redis as redispy
from generated_jobs import GenerateReport, NightlyCleanup, SendWelcomeEmail, SendWelcomeEmailWorker
from gokogeri.codegen.runtime import ArgumentError

import gokogeri
from gokogeri import redis as gredis


def only(r: redispy.Redis, key: str) -> dict[str, Any]:
    (raw,) = r.lrange(key, 0, -1)
    payload: dict[str, Any] = json.loads(raw)
    return payload


def test_enqueue_writes_the_sidekiq_payload(cm: gredis.ConnManager, r: redispy.Redis) -> None:
    enq = gokogeri.Enqueuer(cm)
    before = time.time()
    jid = SendWelcomeEmail.enqueue(enq, 42, "ada@example.com", "fr")
    assert jid is not None and len(jid) == 24
    assert r.smembers("queues") == {b"mailers"}
    payload = only(r, "queue:mailers")
    created, enqueued = payload.pop("created_at"), payload.pop("enqueued_at")
    assert before <= created <= enqueued <= time.time()
    assert payload == {
        "class": "SendWelcomeEmailJob",
        "queue": "mailers",
        "args": [42, "ada@example.com", "fr", None],
        "retry": 5,
        "jid": jid,
    }


def test_formats_reach_redis_as_strings(cm: gredis.ConnManager, r: redispy.Redis) -> None:
    rid = uuid.UUID("6f1c0a3e-2d4b-4c5a-8e9f-0a1b2c3d4e5f")
    GenerateReport.enqueue(
        gokogeri.Enqueuer(cm),
        rid,
        "sales",
        date(2024, 3, 1),
        date(2024, 3, 31),
        None,
        datetime(2024, 4, 1, 6, 0, tzinfo=UTC),
        notify_email="ops@example.com",
    )
    payload = only(r, "queue:reports")
    assert payload["args"] == [
        "6f1c0a3e-2d4b-4c5a-8e9f-0a1b2c3d4e5f",
        "sales",
        "2024-03-01",
        "2024-03-31",
        None,
        "2024-04-01T06:00:00Z",
        "pdf",
        "UTC",
        None,
        False,
        "ops@example.com",
    ]
    assert payload["retry"] is True


def test_enqueue_in_goes_to_the_schedule(cm: gredis.ConnManager, r: redispy.Redis) -> None:
    jid = NightlyCleanup.enqueue_in(gokogeri.Enqueuer(cm), 3600.0)
    ((raw, score),) = r.zrange("schedule", 0, -1, withscores=True)
    payload = json.loads(raw)
    assert payload["jid"] == jid and payload["args"] == [] and payload["retry"] is False
    assert payload["queue"] == "low" and "enqueued_at" not in payload
    assert abs(score - (time.time() + 3600)) < 5


def test_bulk_and_bad_values_never_reach_redis(cm: gredis.ConnManager, r: redispy.Redis) -> None:
    enq = gokogeri.Enqueuer(cm)
    with pytest.raises(ArgumentError):
        SendWelcomeEmail.enqueue_bulk(enq, [(1, "a@b.c"), (2, "not an email")])
    with pytest.raises(ArgumentError):
        SendWelcomeEmail.enqueue(enq, 0, "a@b.c")
    assert r.keys("*") == []
    jids = SendWelcomeEmail.enqueue_bulk(enq, [(1, "a@b.c"), (2, "b@b.c", "de")])
    stored = [json.loads(x) for x in reversed(r.lrange("queue:mailers", 0, -1))]
    assert [p["jid"] for p in stored] == jids
    assert [p["args"] for p in stored] == [[1, "a@b.c"], [2, "b@b.c", "de"]]


def test_payload_from_redis_runs_the_typed_worker(cm: gredis.ConnManager, r: redispy.Redis) -> None:
    seen: list[tuple[int, str, str, str | None]] = []

    class Welcome(SendWelcomeEmailWorker):
        def perform(
            self,
            ctx: gokogeri.Context,
            user_id: int,
            email: str,
            locale: str = "en",
            referrer_code: str | None = None,
        ) -> None:
            seen.append((user_id, email, locale, referrer_code))

    router = gokogeri.Router()
    Welcome().register(router)
    SendWelcomeEmail.enqueue(gokogeri.Enqueuer(cm), 7, "x@y.z", referrer_code="R1")
    # What Ruby's SendWelcomeEmailJob.perform_async(8, "q@y.z") would push: no defaulted args.
    r.lpush(
        "queue:mailers",
        json.dumps(
            {
                "class": "SendWelcomeEmailJob",
                "args": [8, "q@y.z"],
                "queue": "mailers",
                "jid": "1" * 24,
                "retry": 5,
            }
        ),
    )
    for raw in reversed(r.lrange("queue:mailers", 0, -1)):
        router.work(gokogeri.Context(), gokogeri.Job.decode(raw))
    assert seen == [(7, "x@y.z", "en", "R1"), (8, "q@y.z", "en", None)]
