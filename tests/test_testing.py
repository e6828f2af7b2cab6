"""FakeEnqueuer: what unit tests of enqueuing code use instead of Redis (the plugin's
gokogeri_fake fixture; tests/test_testing_kit.py covers the rest of the kit)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

import gokogeri
from gokogeri.testing import FakeEnqueuer


def test_records_jobs_exactly_as_the_real_enqueuer_prepares_them(
    gokogeri_fake: FakeEnqueuer,
) -> None:
    fake = gokogeri_fake
    jid = fake.enqueue(gokogeri.Job("A", queue="q", args=[1]))
    fake.enqueue_in(gokogeri.Job("B"), 60)
    fake.enqueue_bulk([gokogeri.Job("C", args=[i]) for i in range(3)])
    assert jid is not None and re.fullmatch(r"[0-9a-f]{24}", jid)
    a, b, *cs = fake.jobs
    assert a.jid == jid and a.queue == "q" and isinstance(a.enqueued_at, float)
    assert "enqueued_at" not in b and b["at"] > 0
    assert [c.args for c in cs] == [[0], [1], [2]]
    assert [j.class_name for j in fake.queue("default")] == ["B", "C", "C", "C"]
    with pytest.raises(gokogeri.InvalidArgumentError):
        fake.enqueue(gokogeri.Job("Bad", args=[(1, 2)]))


def test_middleware_and_drain(gokogeri_fake: FakeEnqueuer) -> None:
    fake = gokogeri_fake

    def stop_secret(job: gokogeri.Job, queue: str, call_next: Callable[[], Any]) -> Any:
        return None if job.class_name == "Secret" else call_next()

    fake.middleware.add(stop_secret)
    assert fake.enqueue(gokogeri.Job("Secret")) is None
    fake.enqueue(gokogeri.Job("Hello", args=["x"]))
    seen: list[tuple[str, list[Any]]] = []
    router = gokogeri.Router()
    router.register("Hello", lambda ctx, job: seen.append((job.class_name, job.args)))
    assert fake.drain(router) == 1
    assert seen == [("Hello", ["x"])] and fake.jobs == []
