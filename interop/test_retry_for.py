"""``retry_for`` (Sidekiq 7.1.3+): a time window instead of, or as well as, a retry count.

A Ruby service may enqueue jobs with ``retry_for`` that then fail in Python. Each case runs
twice: the second failure in Ruby (the control: what Sidekiq itself does) and in a gokogeri
Node (which should do the same).

* 7.1.3-8.0.x: exhausted when ``count >= retry`` OR ``failed_at + retry_for < now``.
* 8.1+: when ``retry_for`` is set, ONLY the window decides (SQ8:lib/sidekiq/job_retry.rb
  ``process_retry``: "retry_for and retry are mutually exclusive").

The node follows the Ruby fleet's rules: ``RetryPolicy(compat=<Sidekiq major>)``. Found by this
suite as a gokogeri bug (retry_for ignored: strict-xfail tests) and fixed in the runtime by
4159960 ("Retries honour retry_for"), so these are plain tests now.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from harness import InteropEnv, wait_for
from pynode import Recorder, failing, running

import gokogeri
from gokogeri.retry import Compat, RetryPolicy

WINDOW = 1  # seconds: retry_for of the first case


def _seconds(stamp: float | int) -> float:
    return stamp / 1000 if isinstance(stamp, int) else stamp


def _policy(sk: InteropEnv) -> RetryPolicy:
    """The retry rules of the Sidekiq version sharing the Redis."""
    compat: Compat = "8" if sk.major >= 8 else "7" if sk.major == 7 else "6"
    return RetryPolicy(compat=compat)


def _outcome(sk: InteropEnv, jid: str, retry_count: int) -> str:
    """Where the job went after failure number ``retry_count + 1``: "dead" or "retry"."""

    def check() -> str | None:
        if any(json.loads(m)["jid"] == jid for m, _ in sk.raw_zset("dead")):
            return "dead"
        for m, _ in sk.raw_zset("retry"):
            job = json.loads(m)
            if job["jid"] == jid and job["retry_count"] == retry_count:
                return "retry"
        return None

    return wait_for(check, 20, f"job {jid} to be settled after failure {retry_count + 1}")


def _fail_once_in_ruby(sk: InteropEnv, extra: dict[str, Any], then: str) -> tuple[str, bytes]:
    """FailJob fails in Ruby; its retry goes to queue ``then``. The jid and the retry member."""
    spec = {"class": "FailJob", "queue": "ruby", "args": ["window"], "retry_queue": then, **extra}
    [jid] = sk.ruby_json("push.rb", stdin=json.dumps(spec))["jids"]

    def member() -> bytes | None:
        return next((m for m, _ in sk.raw_zset("retry") if json.loads(m)["jid"] == jid), None)

    return jid, wait_for(member, 20, "the first failure in the retry set")


def _make_due(sk: InteropEnv, raw: bytes) -> None:
    r = sk.redis()
    try:
        r.zadd("retry", {raw: time.time()}, xx=True)
    finally:
        r.close()


def _second_failure(sk: InteropEnv, second: str, jid: str, raw: bytes) -> str:
    """Make the retry due; it fails again in Ruby or in a node. Where the job went."""
    if second == "ruby":
        _make_due(sk, raw)
        return _outcome(sk, jid, 1)
    router = gokogeri.Router()
    router.register("FailJob", failing(Recorder(), "window"))
    with running(sk, ["python"], router, retry_policy=_policy(sk)):
        _make_due(sk, raw)
        return _outcome(sk, jid, 1)


@pytest.mark.flavour_independent
@pytest.mark.parametrize("second", ["ruby", "python"])
def test_retry_for_window_closed(sk: InteropEnv, second: str) -> None:
    """retry: true (25) and retry_for: 1 s; the retry fails after the window closed: dead on
    7.3.2 and 8.1.7; 6.4.1 knows no retry_for and retries."""
    expected = "retry" if sk.major < 7 else "dead"
    jid, raw = _fail_once_in_ruby(sk, {"retry_for": WINDOW}, then=second)
    first = json.loads(raw)
    assert first["retry_for"] == WINDOW and first["retry_count"] == 0
    while time.time() <= _seconds(first["failed_at"]) + WINDOW + 0.2:
        time.sleep(0.1)
    assert _second_failure(sk, second, jid, raw) == expected


@pytest.mark.flavour_independent
@pytest.mark.parametrize("second", ["ruby", "python"])
def test_retry_for_with_a_retry_count(sk: InteropEnv, second: str) -> None:
    """retry: 1 and retry_for: 1 h; the retry fails again inside the window. 6.4.1 and 7.3.2:
    the count is used up, dead. 8.1+: only the window counts, so it is retried again."""
    expected = "retry" if sk.major >= 8 else "dead"
    jid, raw = _fail_once_in_ruby(sk, {"retry": 1, "retry_for": 3600}, then=second)
    assert _second_failure(sk, second, jid, raw) == expected
