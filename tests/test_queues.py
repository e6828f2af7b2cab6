"""Queue order: strict and weighted, as Sidekiq orders BRPOP keys.

Redis comes from gokogeri's own pytest plugin (gokogeri_cm), as in a user's project."""

from __future__ import annotations

import collections

import pytest

import gokogeri
from gokogeri import Enqueuer, Job, OrderedQueueSet, RandomQueueSet, WorkerFunc
from gokogeri import redis as gredis
from gokogeri.testing import NodeThread, wait_for
from tests.conftest import run_threads


def test_ordered_set_dedupes_and_keeps_order() -> None:
    qs = OrderedQueueSet(["a", "b", "a", "c"])
    assert qs.get_queues() == ["a", "b", "c"] and qs.mode() == "strict"
    with pytest.raises(ValueError):
        OrderedQueueSet([])
    with pytest.raises(gokogeri.InvalidQueueNameError):
        OrderedQueueSet(["bad name"])


def test_random_set_first_queue_follows_weights() -> None:
    qs = RandomQueueSet()
    for name, w in (("a", 1), ("b", 2), ("c", 2), ("d", 5)):
        qs.add(name, w)
    n = 20_000
    first = collections.Counter(qs.get_queues()[0] for _ in range(n))
    for name, expected in (("a", 0.1), ("b", 0.2), ("c", 0.2), ("d", 0.5)):
        assert abs(first[name] / n - expected) < 0.02
    assert sorted(qs.get_queues()) == ["a", "b", "c", "d"]
    assert qs.mode() == "weighted"


def test_weight_zero_counts_as_one() -> None:
    qs = RandomQueueSet([("a", 0), ("b", 0)])
    first = collections.Counter(qs.get_queues()[0] for _ in range(10_000))
    assert abs(first["a"] / 10_000 - 0.5) < 0.03
    assert qs.mode() == "random"


def test_random_set_is_safe_to_share() -> None:
    qs = RandomQueueSet([("a", 3), ("b", 1)])

    def hammer() -> None:
        for _ in range(5000):
            assert sorted(qs.get_queues()) == ["a", "b"]

    assert not run_threads([hammer] * 4)


def _run_and_record(
    cm: gredis.ConnManager, qs: gokogeri.QueueSet, total: int, fetch: str
) -> list[str]:
    order: list[str] = []
    node = gokogeri.Node(gokogeri.nop_logger(), cm, fetch=fetch)  # type: ignore[arg-type]
    node.process_queues(qs, WorkerFunc(lambda ctx, job: order.append(ctx.queue)), 1)
    with NodeThread(node):
        wait_for(lambda: len(order) >= total, timeout=60)
    return order


@pytest.mark.parametrize("fetch", ["reliable", "basic"])
def test_strict_order_over_thousands_of_fetches(
    gokogeri_cm: gredis.ConnManager, fetch: str
) -> None:
    cm = gokogeri_cm
    e = Enqueuer(cm)
    for q in ("low", "mid", "high"):
        e.enqueue_bulk([Job("X", queue=q) for _ in range(1000)])
    order = _run_and_record(cm, OrderedQueueSet(["high", "mid", "low"]), 3000, fetch)
    assert order == ["high"] * 1000 + ["mid"] * 1000 + ["low"] * 1000


@pytest.mark.parametrize("fetch", ["reliable", "basic"])
def test_weighted_order_over_thousands_of_fetches(
    gokogeri_cm: gredis.ConnManager, fetch: str
) -> None:
    cm = gokogeri_cm
    e = Enqueuer(cm)
    for q in ("a", "b"):
        e.enqueue_bulk([Job("X", queue=q) for _ in range(3000)])
    order = _run_and_record(cm, RandomQueueSet([("a", 3), ("b", 1)]), 2000, fetch)
    share = order[:2000].count("a") / 2000
    # weight 3:1 -> "a" is tried first 75% of the time
    assert 0.70 < share < 0.80, share
