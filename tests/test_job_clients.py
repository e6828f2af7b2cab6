"""ctx.redis / ctx.aredis: the clients a job gets for its own Redis calls."""

from __future__ import annotations

import pytest
import redis as redispy

import gokogeri
from gokogeri import Enqueuer, Job
from gokogeri import redis as gredis
from tests.conftest import NodeThread, wait_for


def node_for(cm: gredis.ConnManager, router: gokogeri.Router, instances: int = 4) -> gokogeri.Node:
    node = gokogeri.Node(
        gokogeri.nop_logger(), cm, heartbeat_interval=0.5, rescue_after=2.0, poll_interval_average=1
    )
    node.process_queues(gokogeri.OrderedQueueSet(["default"]), router, instances)
    return node


def test_sync_and_async_jobs_use_their_clients(cm: gredis.ConnManager, r: redispy.Redis) -> None:
    router = gokogeri.Router()
    clients: set[int] = set()

    @router.handle("Incr")
    def incr(ctx: gokogeri.Context, job: Job) -> None:
        clients.add(id(ctx.redis))
        assert ctx.redis.incr("counter") >= 1
        ctx.redis.hset("h", mapping={"a": "1"})
        assert ctx.redis.hgetall("h") == {b"a": b"1"}

    @router.handle("AsyncIncr")
    async def aincr(ctx: gokogeri.Context, job: Job) -> None:
        await ctx.aredis.incr("acounter")

    e = Enqueuer(cm)
    e.enqueue_many(Job("Incr"), [[i] for i in range(300)])
    e.enqueue_many(Job("AsyncIncr"), [[i] for i in range(300)])
    with NodeThread(node_for(cm, router)):
        wait_for(lambda: r.get("counter") == b"300" and r.get("acounter") == b"300", timeout=20)
    assert 1 <= len(clients) <= 4  # one per processor thread, reused
    assert r.zcard("retry") == 0


def test_a_killed_connection_fails_the_job_once_then_reconnects(
    cm: gredis.ConnManager, r: redispy.Redis
) -> None:
    router = gokogeri.Router()

    @router.handle("KillMe")
    def kill_me(ctx: gokogeri.Context, job: Job) -> None:
        ctx.redis.ping()
        if job.args[0] == "kill":
            cid = ctx.redis.client_id()
            r.client_kill_filter(_id=cid)
            ctx.redis.incr("never")  # the connection is gone: the job fails
        ctx.redis.incr("after")

    e = Enqueuer(cm)
    e.enqueue(Job("KillMe", args=["kill"], retry=1))
    e.enqueue(Job("KillMe", args=["ok"]))
    with NodeThread(node_for(cm, router, instances=1)):
        wait_for(lambda: r.zcard("retry") == 1 and r.get("after") == b"1", timeout=20)
    assert r.get("never") is None


def test_ctx_redis_outside_a_node_says_so() -> None:
    with pytest.raises(RuntimeError, match="only for jobs run by a node"):
        _ = gokogeri.Context().redis
