"""Client and server middleware chains, in Sidekiq's shape.

A client middleware is called as ``mw(job, queue, call_next)`` around a push.
It may change ``job`` (any field) and must return what ``call_next()``
returned; returning None or False without calling it stops the push, as a
Sidekiq client middleware that does not yield does.

A server middleware is called as ``mw(ctx, job, queue, call_next)`` around a
job's execution. Exceptions propagate to the retry logic; not calling
``call_next()`` skips the job, which then counts as done.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from gokogeri.job import Job

if TYPE_CHECKING:
    from gokogeri.worker import Context


class ClientMiddleware(Protocol):
    def __call__(self, job: Job, queue: str, call_next: Callable[[], Any]) -> Any: ...


class ServerMiddleware(Protocol):
    def __call__(self, ctx: Context, job: Job, queue: str, call_next: Callable[[], Any]) -> Any: ...


M = TypeVar("M")


class Chain(Generic[M]):
    """An ordered list of middleware with Sidekiq's editing verbs."""

    def __init__(self) -> None:
        self._entries: list[M] = []

    def add(self, middleware: M) -> None:
        """Append; an entry already present moves to the end."""
        self.remove(middleware)
        self._entries.append(middleware)

    def prepend(self, middleware: M) -> None:
        self.remove(middleware)
        self._entries.insert(0, middleware)

    def insert_before(self, old: M, middleware: M) -> None:
        self.remove(middleware)
        self._entries.insert(self._index(old), middleware)

    def insert_after(self, old: M, middleware: M) -> None:
        self.remove(middleware)
        self._entries.insert(self._index(old) + 1, middleware)

    def remove(self, middleware: M) -> None:
        if middleware in self._entries:
            self._entries.remove(middleware)

    def clear(self) -> None:
        self._entries.clear()

    def __iter__(self) -> Iterator[M]:
        return iter(list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, middleware: object) -> bool:
        return middleware in self._entries

    def invoke(self, args: tuple[Any, ...], final: Callable[[], Any]) -> Any:
        """Call each middleware with ``*args, call_next``, innermost ``final``."""
        entries = self._entries
        if not entries:
            return final()
        n = len(entries)

        def step(i: int) -> Any:
            if i == n:
                return final()
            return entries[i](*args, lambda: step(i + 1))  # type: ignore[operator]

        return step(0)

    def _index(self, old: M) -> int:
        try:
            return self._entries.index(old)
        except ValueError:
            raise ValueError(f"{old!r} is not in this middleware chain") from None


ClientChain = Chain[ClientMiddleware]
ServerChain = Chain[ServerMiddleware]
