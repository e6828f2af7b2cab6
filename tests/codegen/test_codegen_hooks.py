"""Generated worker bases on a real Node: async perform, and typed retry_in / retries_exhausted hooks."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any, Literal

import redis as redispy
from generated_jobs import SendWelcomeEmail, SendWelcomeEmailAsyncWorker, SendWelcomeEmailWorker

import gokogeri
from gokogeri import redis as gredis
from gokogeri.testing import NodeThread, wait_for


def node_for(cm: gredis.ConnManager, router: gokogeri.Router) -> NodeThread:
    node = gokogeri.Node(
        gokogeri.nop_logger(), cm, heartbeat_interval=0.5, poll_interval_average=0.5
    )
    node.process_queues(gokogeri.OrderedQueueSet(["mailers"]), router, 2)
    return NodeThread(node)


class Failing(SendWelcomeEmailWorker):
    def __init__(self, decision: float | int | Literal["kill", "discard"] | None) -> None:
        self.decision = decision
        self.calls: list[tuple[Any, ...]] = []

    def perform(
        self,
        ctx: gokogeri.Context,
        user_id: int,
        email: str,
        locale: str = "en",
        referrer_code: str | None = None,
    ) -> None:
        raise ValueError(f"no mailbox for user {user_id}")

    def retry_in(
        self,
        count: int,
        exc: BaseException,
        user_id: int,
        email: str,
        locale: Literal["en", "fr", "de", "ja"],
        referrer_code: str | None,
    ) -> float | int | Literal["kill", "discard"] | None:
        self.calls.append(
            ("retry_in", count, type(exc).__name__, user_id, email, locale, referrer_code)
        )
        return self.decision

    def retries_exhausted(
        self,
        user_id: int,
        email: str,
        locale: Literal["en", "fr", "de", "ja"],
        referrer_code: str | None,
        exc: BaseException,
    ) -> None:
        self.calls.append(("exhausted", user_id, email, locale, referrer_code, str(exc)))


def test_typed_retry_in_kill_and_retries_exhausted(
    cm: gredis.ConnManager, r: redispy.Redis
) -> None:
    worker = Failing("kill")
    router = gokogeri.Router()
    worker.register(router)
    jid = SendWelcomeEmail.enqueue(gokogeri.Enqueuer(cm), 7, "a@b.c", "fr")
    with node_for(cm, router):
        wait_for(lambda: r.zcard("dead") == 1)
        wait_for(lambda: len(worker.calls) == 2)
    assert worker.calls == [
        ("retry_in", 0, "ValueError", 7, "a@b.c", "fr", None),
        ("exhausted", 7, "a@b.c", "fr", None, "no mailbox for user 7"),
    ]
    assert json.loads(r.zrange("dead", 0, 0)[0])["jid"] == jid


def test_typed_retry_in_seconds_schedule_the_retry(
    cm: gredis.ConnManager, r: redispy.Redis
) -> None:
    worker = Failing(3600)
    router = gokogeri.Router()
    worker.register(router)
    SendWelcomeEmail.enqueue(gokogeri.Enqueuer(cm), 8, "b@b.c")
    with node_for(cm, router):
        wait_for(lambda: r.zcard("retry") == 1)
    ((raw, score),) = r.zrange("retry", 0, -1, withscores=True)
    payload = json.loads(raw)
    assert payload["retry_count"] == 0
    assert score - payload["failed_at"] > 3000  # the hook's hour, not the default ~15-45 s
    assert worker.calls == [("retry_in", 0, "ValueError", 8, "b@b.c", "en", None)]


def test_a_payload_that_breaks_the_contract_skips_the_typed_hooks(
    cm: gredis.ConnManager, r: redispy.Redis
) -> None:
    worker = Failing("kill")
    router = gokogeri.Router()
    worker.register(router)
    bad = {
        "class": "SendWelcomeEmailJob",
        "queue": "mailers",
        "args": ["x", "a@b.c"],
        "jid": "b" * 24,
        "retry": 1,
    }
    r.lpush("queue:mailers", json.dumps(bad))
    r.sadd("queues", "mailers")
    with node_for(cm, router):
        wait_for(lambda: r.zcard("retry") == 1)
    payload = json.loads(r.zrange("retry", 0, 0)[0])
    assert payload["error_class"].endswith("ArgumentError")
    assert "args[0] (user_id): must be an integer" in payload["error_message"]
    assert worker.calls == []  # nothing typed to hand over; Sidekiq's default backoff applied


def test_async_worker_runs_perform_on_the_event_loop(
    cm: gredis.ConnManager, r: redispy.Redis
) -> None:
    seen: list[tuple[int, str, str, bool]] = []
    done = threading.Event()

    class Welcome(SendWelcomeEmailAsyncWorker):
        async def perform(
            self,
            ctx: gokogeri.Context,
            user_id: int,
            email: str,
            locale: str = "en",
            referrer_code: str | None = None,
        ) -> None:
            await asyncio.sleep(0)
            running = asyncio.get_running_loop().is_running()
            seen.append((user_id, email, locale, running))
            done.set()

    router = gokogeri.Router()
    Welcome().register(router)
    SendWelcomeEmail.enqueue(gokogeri.Enqueuer(cm), 9, "c@b.c", "ja")
    with node_for(cm, router):
        wait_for(done.is_set)
    assert seen == [(9, "c@b.c", "ja", True)]
    assert r.zcard("retry") == 0 and r.llen("queue:mailers") == 0
