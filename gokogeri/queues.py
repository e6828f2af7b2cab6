"""Queue sets: which queues a pool fetches from, and in what order.

OrderedQueueSet is Sidekiq's strict mode. RandomQueueSet is its weighted
mode: before every fetch the expanded list (each queue repeated by weight) is
shuffled and de-duplicated, so a queue comes first with probability
weight / sum of weights.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable, Sequence
from typing import Protocol

from gokogeri.enqueuer import check_queue_name


class QueueSet(Protocol):
    def get_queues(self) -> list[str]:
        """The queues to try, in order, for the next fetch."""
        ...

    def names(self) -> list[str]:
        """Every queue in the set, in a stable order (for logs and the Web UI)."""
        ...

    def weights(self) -> dict[str, int]:
        """Queue -> weight as Sidekiq's heartbeat reports it (0 in strict mode)."""
        ...

    def mode(self) -> str:
        """ "strict", "random" or "weighted", as Sidekiq 8 labels a capsule."""
        ...


class OrderedQueueSet:
    """Strict priority: always try the queues in this order."""

    def __init__(self, queues: Iterable[str]) -> None:
        seen: dict[str, None] = {}
        for q in queues:
            seen.setdefault(check_queue_name(q), None)
        if not seen:
            raise ValueError("a queue set needs at least one queue")
        self._queues = list(seen)

    def get_queues(self) -> list[str]:
        return list(self._queues)

    def names(self) -> list[str]:
        return list(self._queues)

    def weights(self) -> dict[str, int]:
        return dict.fromkeys(self._queues, 0)

    def mode(self) -> str:
        return "strict"

    def __repr__(self) -> str:
        return f"OrderedQueueSet({self._queues!r})"


class RandomQueueSet:
    """Weighted random order, rebuilt for every fetch. Safe to share between pools."""

    def __init__(self, weights: Sequence[tuple[str, int]] = ()) -> None:
        self._weights: dict[str, int] = {}
        self._expanded: list[str] = []
        self._lock = threading.Lock()
        for name, weight in weights:
            self.add(name, weight)

    def add(self, name: str, weight: int = 1) -> None:
        """Add ``name`` with ``weight`` (0 counts as 1, like Sidekiq's [weight, 1].max)."""
        check_queue_name(name)
        if not isinstance(weight, int) or weight < 0:
            raise ValueError(f"weight must be a non-negative int, got {weight!r}")
        with self._lock:
            self._weights[name] = self._weights.get(name, 0) + weight
            self._expanded = [q for q, w in self._weights.items() for _ in range(max(w, 1))]

    def get_queues(self) -> list[str]:
        expanded = self._expanded
        if not expanded:
            raise ValueError("RandomQueueSet is empty: add a queue first")
        # random.sample builds a fresh shuffled list: no shared state to race on.
        shuffled = random.sample(expanded, len(expanded))
        return list(dict.fromkeys(shuffled))

    def names(self) -> list[str]:
        return list(self._weights)

    def weights(self) -> dict[str, int]:
        return dict(self._weights)

    def mode(self) -> str:
        return "random" if all(w <= 1 for w in self._weights.values()) else "weighted"

    def __repr__(self) -> str:
        return f"RandomQueueSet({list(self._weights.items())!r})"
