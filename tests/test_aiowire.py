"""gokogeri.aiowire: ctx.aredis's multiplexed connection, on a real Redis."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
import redis as redispy

import gokogeri
from gokogeri.aiowire import AsyncFastRedis
from gokogeri.testing import NodeThread, wait_for
from tests.conftest import run_threads


def run(coro_fn, redis_url: str, **kw):  # type: ignore[no-untyped-def]
    async def main():  # type: ignore[no-untyped-def]
        client = AsyncFastRedis.from_url(redis_url, **kw)
        try:
            return await coro_fn(client)
        finally:
            await client.aclose()

    return asyncio.run(main())


def test_concurrent_commands_share_one_connection_and_keep_their_replies(
    redis_url: str, r: redispy.Redis
) -> None:
    async def body(c: AsyncFastRedis) -> None:
        # 500 coroutines, each checking it got its own reply back.
        async def one(i: int) -> None:
            assert await c.set(f"a:{i}", i)
            assert await c.get(f"a:{i}") == str(i).encode()
            await c.incr("a:n")

        await asyncio.gather(*(one(i) for i in range(500)))
        assert c._muxes.get(asyncio.get_running_loop()) is not None
        plain = [cl for cl in r.client_list() if cl.get("cmd") in ("incrby", "get", "set")]
        assert len(plain) == 1, plain  # one multiplexed connection did all of it

    run(body, redis_url)
    assert r.get("a:n") == b"500"


def test_redis_py_api_errors_pipelines_and_blocking_commands(
    redis_url: str, r: redispy.Redis
) -> None:
    async def body(c: AsyncFastRedis) -> None:
        assert await c.hset("a:h", mapping={"x": "1"}) == 1
        assert await c.hgetall("a:h") == {b"x": b"1"}
        with pytest.raises(redispy.ResponseError, match="WRONGTYPE"):
            await c.incr("a:h")
        assert await c.exists("a:h") == 1  # still in step after the error
        async with c.pipeline() as pipe:
            assert await pipe.incr("a:p").incr("a:p").execute() == [1, 2]
        # A blocking command takes a pooled connection: the others go on meanwhile.
        blocked = asyncio.ensure_future(c.blpop(["a:list"], timeout=2))
        await asyncio.sleep(0.05)
        assert await c.rpush("a:list", "v") == 1
        assert await blocked == (b"a:list", b"v")

    run(body, redis_url)


def test_a_lost_connection_fails_waiting_commands_then_reconnects(
    redis_url: str, r: redispy.Redis
) -> None:
    async def body(c: AsyncFastRedis) -> None:
        assert await c.incr("a:k") == 1
        for cl in r.client_list():
            if cl.get("cmd") == "incrby":
                r.client_kill_filter(_id=cl["id"])
        with pytest.raises(redispy.ConnectionError):
            await c.incr("a:k")  # never resent: it may have run
        assert await c.incr("a:k") == 2

    run(body, redis_url)


def test_a_late_reply_times_out_every_command_behind_it(
    redis_url: str, r: redispy.Redis
) -> None:
    async def body(c: AsyncFastRedis) -> None:
        assert await c.ping()
        r.client_pause(1500)
        t0 = time.monotonic()
        results = await asyncio.gather(c.get("a:x"), c.get("a:y"), return_exceptions=True)
        waited = time.monotonic() - t0
        r.client_unpause()
        assert all(isinstance(x, redispy.TimeoutError) for x in results), results
        assert 0.25 < waited < 1.2, waited  # socket_timeout, not the pause's end
        assert await c.set("a:x", "1")  # a new connection

    run(body, redis_url, socket_timeout=0.3)


def test_a_cancelled_command_leaves_the_connection_in_step(
    redis_url: str, r: redispy.Redis
) -> None:
    async def body(c: AsyncFastRedis) -> None:
        await c.set("a:c", "1")
        task = asyncio.ensure_future(c.get("a:c"))
        await asyncio.sleep(0)  # sent, not answered yet
        task.cancel()
        assert await c.incr("a:cn") == 1  # its reply, not the cancelled GET's
        assert await c.get("a:c") == b"1"

    run(body, redis_url)


def plain_connections(r: redispy.Redis) -> int:
    """Connections whose last command was one of the tests' plain INCRs."""
    return sum(1 for cl in r.client_list() if cl.get("cmd") == "incrby")


def test_loop_local_redis_is_one_client_for_every_loop(
    redis_url: str, r: redispy.Redis
) -> None:
    """A module-level LoopLocalRedis: each loop (two threads' loops at once, then
    asyncio.run() after asyncio.run()) multiplexes on a connection of its own,
    and a closed loop's connection is let go when the next loop arrives."""
    client = gokogeri.LoopLocalRedis.from_url(redis_url)
    barrier = threading.Barrier(2)

    async def burst(n: int) -> None:
        await asyncio.gather(*(client.incr("ll:n") for _ in range(n)))

    def in_thread() -> None:
        async def main() -> None:
            await burst(200)
            barrier.wait(5)  # both loops hold their connection now
            await burst(200)

        asyncio.run(main())

    errors = run_threads([in_thread, in_thread], timeout=10)
    assert not errors, errors
    assert int(r.get("ll:n") or 0) == 800
    # Both loops are closed: their connections went with them.
    wait_for(lambda: plain_connections(r) == 0, timeout=2, what="the closed loops' connections")

    for _ in range(3):  # a process that calls asyncio.run() per task
        asyncio.run(burst(50))
    assert int(r.get("ll:n") or 0) == 950
    assert len(client._muxes) == 1  # the closed loops' entries were dropped

    async def close() -> None:
        await client.aclose()

    asyncio.run(close())


def test_loop_local_redis_serves_async_jobs_of_two_pools(
    redis_url: str, r: redispy.Redis, cm: gokogeri.redis.ConnManager
) -> None:
    """Two pools, two event loops, one module-level client used by both."""
    client = gokogeri.LoopLocalRedis.from_url(redis_url)
    done: list[str] = []

    async def count(ctx: gokogeri.Context, job: gokogeri.Job) -> None:
        await client.incr(f"ll:{ctx.queue}")
        done.append(ctx.queue)

    enq = gokogeri.Enqueuer(cm)
    for q in ("a", "b"):
        enq.enqueue_bulk(gokogeri.Job("Count", queue=q, args=[i]) for i in range(100))
    node = gokogeri.Node(gokogeri.nop_logger(), cm)
    for q in ("a", "b"):
        router = gokogeri.Router()
        router.register("Count", count)
        node.process_queues(gokogeri.OrderedQueueSet([q]), router, 10)
    with NodeThread(node):
        wait_for(lambda: len(done) == 200, timeout=20, what="both pools' jobs")
    assert r.get("ll:a") == b"100" and r.get("ll:b") == b"100"
    assert len({id(loop) for loop in client._muxes}) == 2  # one connection per pool loop
