"""Redis configuration and connections (the seed's ``redis`` package).

``Config`` is plain data; ``ConnManager`` owns the connection pool and hands
out dedicated connections for blocking commands, which must never hold a
pooled connection for seconds at a time.
"""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

import redis as redispy

from gokogeri.keys import Keys

DEFAULT_URL = "redis://localhost:6379/0"


def default_url() -> str:
    """GOKOGERI_REDIS_URL, then REDIS_URL, then the local default."""
    return os.environ.get("GOKOGERI_REDIS_URL") or os.environ.get("REDIS_URL") or DEFAULT_URL


@dataclass
class Config:
    """Where Redis is and how gokogeri talks to it.

    url: redis://[user:password@]host:port/db, rediss:// for TLS, or
        unix:///path/to/socket?db=N.
    pool_size: connections shared by enqueuers, acknowledgements and the
        heartbeat; blocking fetches use dedicated connections on top.
    socket_timeout: for ordinary commands.
    long_poll_timeout: server-side timeout of blocking fetches (Sidekiq's 2 s);
        the socket waits this long plus socket_timeout.
    namespace: Sidekiq 6's redis-namespace prefix ("" = none; 7+ has none).
    timestamp_format: how new timestamps are written: "float" seconds, which
        every Sidekiq reads, or "ms" integers, which only Sidekiq 8 reads and
        which is what Sidekiq 8 itself writes.
    """

    url: str = field(default_factory=default_url)
    pool_size: int = 20
    socket_timeout: float = 5.0
    connect_timeout: float = 5.0
    long_poll_timeout: float = 2.0
    namespace: str = ""
    timestamp_format: Literal["float", "ms"] = "float"

    def __post_init__(self) -> None:
        if self.timestamp_format not in ("float", "ms"):
            raise ValueError(
                f"timestamp_format must be 'float' or 'ms', got {self.timestamp_format!r}"
            )
        if self.pool_size < 1:
            raise ValueError(f"pool_size must be at least 1, got {self.pool_size}")
        if self.long_poll_timeout <= 0:
            raise ValueError("long_poll_timeout must be positive")

    def redacted_url(self) -> str:
        """The URL with any password replaced, safe to log."""
        return redact_url(self.url)


def redact_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


class ConnManager:
    """The connection pool for one Redis, plus key names in its namespace."""

    def __init__(self, config: Config | None = None) -> None:
        self.config = config if config is not None else Config()
        self.keys = Keys(self.config.namespace)
        # A blocking pool: when every connection is busy a caller waits for
        # one instead of failing, as Sidekiq's connection_pool does.
        self._pool = redispy.BlockingConnectionPool.from_url(
            self.config.url,
            max_connections=self.config.pool_size,
            timeout=self.config.socket_timeout + self.config.connect_timeout,
            socket_timeout=self.config.socket_timeout,
            socket_connect_timeout=self.config.connect_timeout,
            health_check_interval=30,
        )
        self._client = redispy.Redis(connection_pool=self._pool)

    @property
    def client(self) -> redispy.Redis:
        """A client over the shared pool (thread-safe; bytes in and out)."""
        return self._client

    def send(self, *commands: tuple[Any, ...]) -> list[Any]:
        """Send ``commands`` in one round trip on a pooled connection; their replies.

        The same as a non-transactional pipeline without its bookkeeping,
        which costs about a third of a small enqueue's time. A connection
        error while sending is retried once on a fresh connection (nothing
        reached Redis); one while reading is raised, because the commands
        may have run and a retry could push a job twice.
        """
        pool: Any = self._pool  # redis-py leaves get_connection/release untyped
        for attempt in (1, 2):
            conn = pool.get_connection()
            try:
                try:
                    conn.send_packed_command(conn.pack_commands(commands))
                except (redispy.ConnectionError, redispy.TimeoutError):
                    conn.disconnect()
                    if attempt == 2:
                        raise
                    continue
                replies: list[Any] = []
                error: redispy.ResponseError | None = None
                for _ in commands:
                    try:
                        replies.append(conn.read_response())
                    except redispy.ResponseError as e:
                        error = error or e  # read every reply to keep the connection in step
                        replies.append(e)
                    except BaseException:
                        conn.disconnect()
                        raise
                if error is not None:
                    raise error
                return replies
            finally:
                pool.release(conn)
        raise AssertionError("unreachable")

    def dedicated(self) -> redispy.Redis:
        """A client with its own single connection, for blocking commands.

        Its socket waits long_poll_timeout longer than usual, so a blocking
        command that times out on the server returns nil instead of
        raising a socket timeout while its reply is on the way.
        """
        pool = redispy.ConnectionPool.from_url(
            self.config.url,
            max_connections=1,
            socket_timeout=self.config.socket_timeout + self.config.long_poll_timeout,
            socket_connect_timeout=self.config.connect_timeout,
        )
        return redispy.Redis(connection_pool=pool)

    def close(self) -> None:
        self._pool.disconnect()

    def __enter__(self) -> ConnManager:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ConnManager(url={self.config.redacted_url()!r})"
