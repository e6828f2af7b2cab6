"""Sidekiq's retry rules as pure functions (the Redis side is in test_node.py)."""

from __future__ import annotations

import json
import random

import pytest

from gokogeri import Job
from gokogeri.retry import (
    RetryPolicy,
    backoff,
    compress_backtrace,
    decompress_backtrace,
    failure_outcome,
)
from tests.data.captures import RAW


def raise_and_catch(exc: BaseException) -> BaseException:
    def deep() -> None:
        raise exc

    try:
        deep()
    except BaseException as e:
        return e
    raise AssertionError


@pytest.mark.parametrize("count", [0, 1, 2, 5, 10, 24])
def test_backoff_sidekiq8(count: int) -> None:
    rng = random.Random(count)
    seen = {backoff(count, "8", rng) - (count**4 + 15) for _ in range(5000)}
    # jitter is rand(10 * (count + 1)): every integer in [0, 10*(count+1))
    assert seen == set(range(10 * (count + 1)))


@pytest.mark.parametrize("count", [0, 1, 3, 24])
def test_backoff_sidekiq6_and_7(count: int) -> None:
    rng = random.Random(count)
    seen = {backoff(count, "6", rng) - (count**4 + 15) for _ in range(2000)}
    # jitter is rand(10) * (count + 1): ten multiples of count + 1
    assert seen == {i * (count + 1) for i in range(10)}


def test_25_retries_take_about_three_weeks() -> None:
    base = sum(c**4 + 15 for c in range(25))
    assert base == 1_763_020 + 375
    assert 20 < base / 86400 < 21


def test_first_and_later_failures() -> None:
    job = Job.decode(RAW["6.4.1 options pass through"])  # retry: 3, backtrace: true, tags
    out = failure_outcome(job, raise_and_catch(ValueError("bad input")), RetryPolicy(), "float", now=1000.0)
    assert out.action == "retry" and out.queue == "python"
    first = json.loads(out.payload or "")
    assert first["retry_count"] == 0 and first["failed_at"] == 1000.0 and "retried_at" not in first
    assert first["error_class"] == "ValueError" and first["error_message"] == "bad input"
    assert first["tags"] == ["a"] and first["retry"] == 3
    assert 1015 <= out.score < 1025
    assert any("in `deep'" in line for line in decompress_backtrace(first["error_backtrace"]))
    for n in (1, 2):
        out = failure_outcome(Job.decode(out.payload or ""), raise_and_catch(ValueError("x")), RetryPolicy(), "float", now=2000.0 + n)
        again = json.loads(out.payload or "")
        assert again["retry_count"] == n and again["failed_at"] == 1000.0 and again["retried_at"] == 2000.0 + n
    out = failure_outcome(Job.decode(out.payload or ""), raise_and_catch(ValueError("x")), RetryPolicy(), "float", now=3000.0)
    assert out.action == "dead" and out.score == 3000.0
    assert json.loads(out.payload or "")["retry_count"] == 3


def test_retry_zero_false_and_dead_false() -> None:
    exc = raise_and_catch(RuntimeError("x"))
    assert failure_outcome(Job("X", retry=0), exc, RetryPolicy(), "float").action == "dead"
    assert failure_outcome(Job("X", retry=False), exc, RetryPolicy(), "float").action == "drop"
    exhausted = Job("X", retry=1, retry_count=0, dead=False)
    assert failure_outcome(exhausted, exc, RetryPolicy(), "float").action == "drop"
    assert failure_outcome(Job("X", retry=True, retry_count=23), exc, RetryPolicy(), "float").action == "retry"
    assert failure_outcome(Job("X", retry=True, retry_count=24), exc, RetryPolicy(), "float").action == "dead"
    assert failure_outcome(Job("X", retry=True, retry_count=2), exc, RetryPolicy(max_retries=3), "float").action == "dead"


def test_backtrace_line_limit_message_limit_and_class_names() -> None:
    class PaymentDeclined(Exception):
        pass

    exc = raise_and_catch(PaymentDeclined("m" * 20_000))
    out = failure_outcome(Job("X", backtrace=1), exc, RetryPolicy(), "float")
    body = json.loads(out.payload or "")
    assert len(decompress_backtrace(body["error_backtrace"])) == 1
    assert len(body["error_message"]) == 10_000
    assert body["error_class"].endswith("PaymentDeclined")
    no_trace = json.loads(failure_outcome(Job("X"), exc, RetryPolicy(), "float").payload or "")
    assert "error_backtrace" not in no_trace


def test_ms_jobs_stay_ms() -> None:
    job = Job.decode(RAW["8.1.7 client push"])
    out = failure_outcome(job, raise_and_catch(ValueError("x")), RetryPolicy(), "float", now=1795848200.5)
    body = json.loads(out.payload or "")
    assert body["failed_at"] == 1795848200500 and isinstance(body["failed_at"], int)
    assert isinstance(out.score, float)  # zset scores are always seconds


def test_backtrace_codec_reads_ruby_newline_form() -> None:
    job = Job.decode(RAW["6.4.1 retry entry"])
    assert "\n" in job["error_backtrace"]
    lines = decompress_backtrace(job["error_backtrace"])
    assert len(lines) == 3
    assert "\n" not in compress_backtrace(lines * 50)
    assert decompress_backtrace(compress_backtrace(lines)) == lines


def test_retry_for_window_by_compat() -> None:
    exc = raise_and_catch(RuntimeError("x"))
    # Failed first at t=1000 with a 60 s window; this failure at t=1030 (inside) or 1100 (after).
    def job(retry: object) -> Job:
        return Job("X", retry=retry, retry_count=0, failed_at=1000.0, retry_for=60)

    # 8.1+: only the window decides, whatever the count says.
    assert failure_outcome(job(1), exc, RetryPolicy(compat="8"), "float", now=1030.0).action == "retry"
    assert failure_outcome(job(True), exc, RetryPolicy(compat="8"), "float", now=1100.0).action == "dead"
    # 7.1.3-8.0: the count or the window, whichever runs out first.
    assert failure_outcome(job(1), exc, RetryPolicy(compat="7"), "float", now=1030.0).action == "dead"
    assert failure_outcome(job(True), exc, RetryPolicy(compat="7"), "float", now=1100.0).action == "dead"
    assert failure_outcome(job(True), exc, RetryPolicy(compat="7"), "float", now=1030.0).action == "retry"
    # 6.x has no retry_for.
    assert failure_outcome(job(True), exc, RetryPolicy(compat="6"), "float", now=1100.0).action == "retry"
    # Sidekiq 8 writes failed_at in integer ms.
    ms = Job("X", retry=True, retry_count=0, failed_at=1_000_000, retry_for=60)
    assert failure_outcome(ms, exc, RetryPolicy(), "float", now=1100.0).action == "dead"
    with pytest.raises(ValueError, match="compat"):
        RetryPolicy(compat="9")  # type: ignore[arg-type]
