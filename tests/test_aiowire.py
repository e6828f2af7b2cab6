"""gokogeri.aiowire: ctx.aredis's multiplexed connection, on a real Redis."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis as redispy

from gokogeri.aiowire import AsyncFastRedis


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
        assert c._mux is not None
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
