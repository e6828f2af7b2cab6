"""Multiplexed asyncio Redis commands: the hot path of ``ctx.aredis``.

Why: redis.asyncio checks a connection out of its pool for every command,
sends the command and awaits the reply on that connection. With a hundred
coroutines each doing one INCR that came to ~100 us of CPU per command here,
and the async INCR drain ran slower than the threaded one. Here the plain
commands of one event loop share one connection: each command is packed by
hiredis and added to a write buffer that is flushed once per turn of the loop
(one send for every command issued meanwhile), and one reader task parses
the replies with hiredis and resolves the callers' futures in order (Redis
answers in order on a connection).

redis-py still connects (AUTH/ACL, TLS, SELECT, HELLO). Commands that block a
connection or change its state (``POOLED``: BLPOP, WATCH, MULTI, SUBSCRIBE,
...) and pipelines go through redis.asyncio's pool as usual; so does every
command of a Sentinel-managed pool.

A lost connection fails every command waiting on it with ConnectionError
(none is resent: it may have run) and the next command connects again. A
command whose reply has not come within the socket timeout fails with
TimeoutError, and so do the ones behind it: the connection is closed, as a
reply that late leaves it out of step.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

import hiredis
import redis as redispy
import redis.asyncio as aredispy
from redis.asyncio import connection as aconn
from redis.exceptions import InvalidResponse

from gokogeri import wire

_LEAN_TYPES: frozenset[type] = frozenset(
    {aconn.Connection, aconn.SSLConnection, aconn.UnixDomainSocketConnection}
)
_RECV = 65536
_UNSET: Any = object()  # no entry for this loop yet


class _Mux:
    """One connection shared by every coroutine of a loop (see the module doc)."""

    def __init__(self, conn: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.conn = conn
        self._loop = loop
        self._stream: asyncio.StreamReader = conn._reader
        self._writer: asyncio.StreamWriter = conn._writer
        self._parser = hiredis.Reader(
            protocolError=InvalidResponse,
            replyError=wire.reply_error,
            errors=conn.encoder.encoding_errors,
        )
        self._timeout: float | None = conn.socket_timeout
        # (future, loop time sent) of each command sent or about to be, in order.
        self._waiting: collections.deque[tuple[asyncio.Future[Any], float]] = collections.deque()
        self._out: list[bytes] = []
        self._flush_due = False
        self._watchdog: asyncio.TimerHandle | None = None
        self.dead: BaseException | None = None
        self._reader = loop.create_task(self._read())

    def send(self, packed: bytes) -> asyncio.Future[Any]:
        fut = self._loop.create_future()
        self._waiting.append((fut, self._loop.time()))
        self._out.append(packed)
        if not self._flush_due:
            self._flush_due = True
            self._loop.call_soon(self._flush)
        if self._watchdog is None and self._timeout:
            self._watchdog = self._loop.call_later(self._timeout, self._check)
        return fut

    def _flush(self) -> None:
        self._flush_due = False
        if self.dead is not None:
            return
        data = b"".join(self._out)
        self._out.clear()
        try:
            self._writer.write(data)
        except Exception as e:  # any failure ends the connection
            self._fail(redispy.ConnectionError(f"Error while writing to socket: {e}"))

    def _check(self) -> None:
        """Fail everything once the oldest command has waited socket_timeout."""
        self._watchdog = None
        if not self._waiting or self.dead is not None or not self._timeout:
            return
        age = self._loop.time() - self._waiting[0][1]
        if age >= self._timeout:
            self._fail(redispy.TimeoutError("Timeout reading from socket"))
        else:
            self._watchdog = self._loop.call_later(self._timeout - age, self._check)

    async def _read(self) -> None:
        parser, waiting, push = self._parser, self._waiting, wire.PUSH
        try:
            while True:
                data = await self._stream.read(_RECV)
                if not data:
                    raise redispy.ConnectionError("Connection closed by server.")
                parser.feed(data)
                reply = parser.gets()
                while reply is not False:
                    if push is None or not isinstance(reply, push):  # a push is no reply
                        fut = waiting.popleft()[0]
                        if not fut.done():  # a cancelled caller: its reply is dropped
                            fut.set_result(reply)
                    reply = parser.gets()
        except asyncio.CancelledError:
            self._fail(redispy.ConnectionError("Connection closed."))
            raise
        except (OSError, redispy.RedisError) as e:
            self._fail(
                e if isinstance(e, redispy.RedisError)
                else redispy.ConnectionError(f"Error while reading from socket: {e}")
            )
        except BaseException as e:  # a protocol error: out of step
            self._fail(redispy.ConnectionError(f"Error while reading from socket: {e!r}"))

    def _fail(self, exc: BaseException) -> None:
        if self.dead is None:
            self.dead = exc
            self._writer.close()
            if self._watchdog is not None:
                self._watchdog.cancel()
                self._watchdog = None
            if self._reader is not asyncio.current_task():
                self._reader.cancel()
        while self._waiting:
            fut = self._waiting.popleft()[0]
            if not fut.done():
                fut.set_exception(exc)

    def close(self) -> None:
        self._fail(redispy.ConnectionError("Connection closed."))


class AsyncFastRedis(aredispy.Redis):
    """redis.asyncio's client API; the plain commands of each event loop
    multiplexed on one connection of that loop's own (ctx.aredis is one per
    pool loop; LoopLocalRedis is the public name for a shared client)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Each loop's connection (None: this client's connections are not plain
        # TCP/TLS/Unix ones, so its commands take the pool's path), and the
        # connect in progress. Entries of closed loops go when a new loop
        # shows up, so a process that runs asyncio.run() per task keeps one.
        self._muxes: dict[asyncio.AbstractEventLoop, _Mux | None] = {}
        self._connecting: dict[asyncio.AbstractEventLoop, asyncio.Future[_Mux | None]] = {}

    async def _get_mux(self) -> _Mux | None:
        loop = asyncio.get_running_loop()
        mux: _Mux | None = self._muxes.get(loop, _UNSET)
        if mux is None:
            return None
        if mux is not _UNSET and mux.dead is None:
            return mux
        connecting = self._connecting.get(loop)
        if connecting is not None:
            return await asyncio.shield(connecting)
        if mux is _UNSET:
            for other in [lp for lp in list(self._muxes) if lp.is_closed()]:
                self._muxes.pop(other, None)
        fut: asyncio.Future[_Mux | None] = loop.create_future()
        self._connecting[loop] = fut
        try:
            pool: Any = self.connection_pool
            conn = pool.make_connection()
            if type(conn) not in _LEAN_TYPES or conn.encoder.decode_responses:
                made: _Mux | None = None  # Sentinel-managed, decode_responses: the pool's path
            else:
                await conn.connect()
                made = _Mux(conn, loop)
            self._muxes[loop] = made
            fut.set_result(made)
            return made
        except BaseException as e:
            fut.set_exception(e)
            fut.exception()  # retrieved: no "never retrieved" warning
            raise
        finally:
            self._connecting.pop(loop, None)

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        base: Any = super()
        if wire.pooled(args):
            return await base.execute_command(*args, **options)
        mux = await self._get_mux()
        if mux is None:
            return await base.execute_command(*args, **options)
        reply = await mux.send(wire.pack(args, mux.conn))
        return wire.finish_reply(self, args, options, reply)

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        """Close every loop's connection (another loop's from that loop) and the pool."""
        here = asyncio.get_running_loop()
        muxes, self._muxes = self._muxes, {}
        for loop, mux in muxes.items():
            if mux is None or mux.dead is not None:
                continue
            if loop is here:
                mux.close()
            elif not loop.is_closed():
                loop.call_soon_threadsafe(mux.close)
        await super().aclose(close_connection_pool)


class LoopLocalRedis(AsyncFastRedis):
    """A redis.asyncio client to share between event loops, each loop with its own
    connection: the async counterpart of ThreadLocalRedis.

    ``gokogeri.LoopLocalRedis.from_url(url)`` takes everything
    ``redis.asyncio.Redis.from_url`` takes. Plain commands of one event loop
    share one connection it owns, packed by hiredis and written once per turn
    of the loop, with one reader task resolving replies in order (as
    ``ctx.aredis`` does); so a module-level client serves every pool's loop,
    and every ``asyncio.run()``, of a process. Pipelines, pub/sub, transactions
    and blocking commands use the client's connection pool as usual. Each loop
    that sends commands keeps one connection open until the loop closes: size
    Redis's maxclients for your loops.
    """
