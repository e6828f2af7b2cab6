"""Options every ``gokogeri`` command shares, and how they turn into a connection.

Each command takes ``--redis-url`` (else GOKOGERI_REDIS_URL, then REDIS_URL)
and ``--namespace``; a bad URL or an unreachable Redis ends the command with
one line that names the setting to fix (exit 2), never a traceback.
"""

from __future__ import annotations

from typing import Annotated

import redis as redispy
import typer

from gokogeri import redis as gredis

# Exit status for a setting the operator must fix (as click's usage errors).
EXIT_CONFIG = 2

RedisUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--redis-url",
        help="redis://[user:pass@]host:port/db, rediss://, unix://, redis+sentinel://"
        " (default: GOKOGERI_REDIS_URL, then REDIS_URL, then redis://localhost:6379/0)",
        show_default=False,
    ),
]
NamespaceOpt = Annotated[
    str, typer.Option("--namespace", help="Sidekiq 6 redis-namespace prefix (default: none)")
]


def fail(message: str) -> typer.Exit:
    """Print ``gokogeri: <message>`` on stderr; raise the returned Exit."""
    typer.echo(f"gokogeri: {message}", err=True)
    return typer.Exit(EXIT_CONFIG)


def config_from(url: str | None, namespace: str = "", **kwargs: object) -> gredis.Config:
    """A Config from command-line values, or a one-line error naming the option."""
    try:
        if url is None:
            return gredis.Config(namespace=namespace, **kwargs)  # type: ignore[arg-type]  # typer-checked kwargs
        return gredis.Config(url=url, namespace=namespace, **kwargs)  # type: ignore[arg-type]
    except (ValueError, TypeError) as e:
        raise fail(f"bad Redis settings: {e} (fix --redis-url / GOKOGERI_REDIS_URL)") from None


def connect(cfg: gredis.Config) -> gredis.ConnManager:
    """A ConnManager that has answered a PING, or a one-line error (exit 2)."""
    try:
        cm = gredis.ConnManager(cfg)
    except (ValueError, TypeError) as e:
        raise fail(f"bad --redis-url {cfg.redacted_url()}: {e}") from None
    try:
        cm.client.ping()
    except redispy.AuthenticationError as e:
        cm.close()
        raise fail(
            f"Redis at {cfg.redacted_url()} refused the credentials ({e}); "
            "fix the user/password in --redis-url"
        ) from None
    except redispy.RedisError as e:
        cm.close()
        raise fail(
            f"cannot reach Redis at {cfg.redacted_url()}: {e} "
            "(start it, or point --redis-url / GOKOGERI_REDIS_URL at the right server)"
        ) from None
    return cm
