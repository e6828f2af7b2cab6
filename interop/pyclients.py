"""The Python side of the interop tests: ways to put a job into Redis for Ruby to run.

``redis-py`` writes exactly the payload the reference captures show (reference/lab-*.md), with
nothing but redis-py, so the suite checks the wire format itself. ``gokogeri`` and
``gokogeri-ms`` go through the library (float seconds / Sidekiq 8's integer milliseconds).
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any, Literal, Protocol

import redis as redispy

CLIENTS = ("redis-py", "gokogeri", "gokogeri-ms")


class Pusher(Protocol):
    name: str

    # The JSON type new timestamps get: float seconds, or int milliseconds.
    @property
    def stamp_type(self) -> type: ...

    def push(self, class_name: str, queue: str, args: list[Any], **extra: Any) -> str: ...

    def push_at(
        self, at: float, class_name: str, queue: str, args: list[Any], **extra: Any
    ) -> str: ...

    def push_bulk(self, class_name: str, queue: str, args_list: list[list[Any]]) -> list[str]: ...

    def close(self) -> None: ...


def reference_payload(class_name: str, queue: str, args: list[Any], **extra: Any) -> dict[str, Any]:
    """A new job as Sidekiq's client would write it (key set from the reference captures)."""
    now = time.time()
    return {
        "class": class_name,
        "args": args,
        "queue": queue,
        "jid": secrets.token_hex(12),  # 12 random bytes, 24 hex characters, as Sidekiq's jid
        "created_at": now,
        "enqueued_at": now,
        "retry": True,
        **extra,
    }


class RedisPyPusher:
    """Plain redis-py: SADD queues + LPUSH queue:NAME; scheduled = ZADD schedule (no enqueued_at)."""

    name = "redis-py"
    stamp_type: type = float  # Python's time.time(), as the reference captures show

    def __init__(self, url: str) -> None:
        self.r = redispy.Redis.from_url(url)
        # Every payload pushed, by jid: tests compare what Ruby received with what was sent.
        self.sent: dict[str, dict[str, Any]] = {}

    def push(self, class_name: str, queue: str, args: list[Any], **extra: Any) -> str:
        payload = reference_payload(class_name, queue, args, **extra)
        pipe = self.r.pipeline(transaction=True)
        pipe.sadd("queues", queue)
        pipe.lpush(f"queue:{queue}", json.dumps(payload))
        pipe.execute()
        self.sent[payload["jid"]] = payload
        return str(payload["jid"])

    def push_at(self, at: float, class_name: str, queue: str, args: list[Any], **extra: Any) -> str:
        payload = reference_payload(class_name, queue, args, **extra)
        # The poller adds enqueued_at when it moves the job; "at" is never stored in the member.
        del payload["enqueued_at"]
        self.r.zadd("schedule", {json.dumps(payload): at})
        return str(payload["jid"])

    def push_bulk(self, class_name: str, queue: str, args_list: list[list[Any]]) -> list[str]:
        payloads = [reference_payload(class_name, queue, a) for a in args_list]
        pipe = self.r.pipeline(transaction=True)
        pipe.sadd("queues", queue)
        # One variadic LPUSH, as push_bulk does: the first job ends up nearest the BRPOP end.
        pipe.lpush(f"queue:{queue}", *[json.dumps(p) for p in payloads])
        pipe.execute()
        return [str(p["jid"]) for p in payloads]

    def close(self) -> None:
        self.r.close()


class GokogeriPusher:
    """The library's own Enqueuer."""

    def __init__(self, url: str, timestamp_format: str) -> None:
        import gokogeri
        from gokogeri import redis as gredis

        self._gokogeri = gokogeri
        self.name = "gokogeri" if timestamp_format == "float" else "gokogeri-ms"
        self.stamp_type: type = float if timestamp_format == "float" else int
        fmt: Literal["float", "ms"] = "ms" if timestamp_format == "ms" else "float"
        self.cm = gredis.ConnManager(gredis.Config(url=url, timestamp_format=fmt))
        self.enqueuer = gokogeri.Enqueuer(self.cm)

    def _job(self, class_name: str, queue: str, args: list[Any], **extra: Any) -> Any:
        return self._gokogeri.Job(class_name=class_name, queue=queue, args=args, **extra)

    def push(self, class_name: str, queue: str, args: list[Any], **extra: Any) -> str:
        jid = self.enqueuer.enqueue(self._job(class_name, queue, args, **extra))
        assert jid is not None
        return str(jid)

    def push_at(self, at: float, class_name: str, queue: str, args: list[Any], **extra: Any) -> str:
        jid = self.enqueuer.enqueue_at(self._job(class_name, queue, args, **extra), at)
        assert jid is not None
        return str(jid)

    def push_bulk(self, class_name: str, queue: str, args_list: list[list[Any]]) -> list[str]:
        jids = self.enqueuer.enqueue_bulk(self._job(class_name, queue, a) for a in args_list)
        assert all(j is not None for j in jids)
        return [str(j) for j in jids]

    def close(self) -> None:
        self.cm.close()


def gokogeri_problem() -> str | None:
    """Why the gokogeri client cannot be used yet (None when it can)."""
    try:
        import gokogeri
        from gokogeri import redis as gredis

        gokogeri.Enqueuer(gredis.ConnManager(gredis.Config(url="redis://127.0.0.1:1/0")))
        gokogeri.Job(class_name="X", queue="default", args=[])
    except Exception as e:  # any failure means "not ready", reported as the skip reason
        return f"gokogeri.Enqueuer is not usable yet: {type(e).__name__}: {e}"
    return None


def make_pusher(name: str, url: str) -> Pusher:
    if name == "redis-py":
        return RedisPyPusher(url)
    if name == "gokogeri":
        return GokogeriPusher(url, "float")
    if name == "gokogeri-ms":
        return GokogeriPusher(url, "ms")
    raise ValueError(name)
