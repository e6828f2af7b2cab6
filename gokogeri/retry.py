"""What happens to a job that failed: Sidekiq's JobRetry rules, field for field.

- ``retry: false`` drops the job; ``retry: 0`` sends it straight to the dead
  set (0 is truthy in Ruby); ``retry: N`` allows N retries; ``true`` allows
  max_retries (25).
- The job goes to ``retry_queue`` if set, else its own queue.
- First failure: ``failed_at`` = now, ``retry_count`` = 0. Later ones:
  ``retried_at`` = now, ``retry_count`` + 1. ``failed_at`` never moves.
- ``error_class``, ``error_message`` (10,000 chars max); ``error_backtrace`` only
  when the job asks with ``backtrace`` (true or a line count), written as strict
  base64 of a zlib stream of a JSON array: every Sidekiq from 6.0 reads that.
- Exhausted (retry_count >= max): dead set, unless ``dead: false``.

Hooks, as Sidekiq 7/8's ``sidekiq_retry_in``: a worker's ``retry_in(count, exc,
job)`` may return seconds (jitter is still added, as Sidekiq does), ``"kill"``
(dead now, counted as exhausted) or ``"discard"`` (dropped); None, a value
that is not a positive number, or a hook that raises falls back to the default
backoff. An exhausted job (``Outcome.exhausted``) is then offered to the
worker's ``retries_exhausted`` hook and the node's death handlers by the
processor.

This module only computes the outcome; ``processor`` writes it to Redis in the
same transaction that acknowledges the job, so a crash never loses or doubles it.
"""

from __future__ import annotations

import base64
import json
import random
import time
import traceback
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from gokogeri import jsonc
from gokogeri.job import (
    DEFAULT_MAX_RETRIES,
    Job,
    TimestampFormat,
    restamp,
    stamp_format,
    stamp_to_seconds,
)

# Sidekiq's defaults for trimming the dead set (config.rb).
DEAD_MAX_JOBS = 10_000
DEAD_TIMEOUT = 180 * 24 * 60 * 60  # 6 months, in seconds
# Sidekiq truncates error messages to this many characters.
MAX_ERROR_MESSAGE = 10_000
# Exceptions that mean a value could not be encoded (or decoded) as JSON.
CODEC_ERRORS = (ValueError, TypeError, RecursionError, UnicodeError, OverflowError)

Action = Literal["retry", "dead", "drop"]
# Which Sidekiq's rules to follow where versions differ (jitter, retry_for).
Compat = Literal["8", "7", "6"]


@dataclass
class RetryPolicy:
    """Node-wide retry settings; the defaults are Sidekiq 8's.

    compat: the Sidekiq whose rules apply where versions differ, to match
        the Ruby processes sharing the Redis:
        - jitter: "8" adds rand(10 * (count + 1)) seconds; "6" and "7" add
          rand(10) * (count + 1).
        - ``retry_for`` (a window in seconds from the first failure, set by
          Ruby 7.1.3+): "8" lets only the window decide (8.1+: it replaces
          the count); "7" ends retries when either the count or the window
          is used up; "6" ignores it, as Sidekiq 6 does.
    """

    max_retries: int = DEFAULT_MAX_RETRIES
    dead_max_jobs: int = DEAD_MAX_JOBS
    dead_timeout: float = DEAD_TIMEOUT
    compat: Compat = "8"

    def __post_init__(self) -> None:
        if self.compat not in ("8", "7", "6"):
            raise ValueError(f"compat must be '8', '7' or '6', got {self.compat!r}")


@dataclass
class Outcome:
    action: Action
    # The rewritten job, for "retry" and "dead"; bytes only for a payload
    # kept exactly as it arrived (dead_payload).
    payload: str | bytes | None = None
    score: float = 0.0  # retry-at for "retry", time of death for "dead"
    queue: str = ""
    # Retries are used up (or retry_in said "kill"): the retries_exhausted hook
    # and the death handlers run, as in Sidekiq's retries_exhausted.
    exhausted: bool = False


# A worker's retry_in hook, bound to the worker: (count, exc, job) -> decision.
RetryInHook = Callable[[int, BaseException, Job], Any]


def jitter(count: int, compat: Compat, rng: random.Random | None = None) -> float:
    """Sidekiq's random spread added to every retry delay."""
    r = rng or random
    if compat != "8":
        return r.randrange(10) * (count + 1)
    return r.randrange(10 * (count + 1))


def backoff(count: int, compat: Compat, rng: random.Random | None = None) -> float:
    """Seconds until retry number ``count + 1`` (``count`` = the new retry_count)."""
    return count**4 + 15 + jitter(count, compat, rng)


def error_class_name(exc: BaseException) -> str:
    t = type(exc)
    mod = t.__module__
    return t.__qualname__ if mod in ("builtins", "__main__") else f"{mod}.{t.__qualname__}"


def backtrace_lines(exc: BaseException, limit: Any) -> list[str]:
    """Innermost frame first, Ruby style (``file:line:in `func'``), as Sidekiq shows them."""
    frames = traceback.extract_tb(exc.__traceback__)
    lines = [f"{f.filename}:{f.lineno}:in `{f.name}'" for f in reversed(frames)]
    if isinstance(limit, int) and not isinstance(limit, bool):
        lines = lines[:limit]
    return lines


def compress_backtrace(lines: list[str]) -> str:
    """Strict base64 (no newlines: 7.2.1 and 7.2.2 refuse them) of zlib(JSON)."""
    return base64.b64encode(zlib.compress(json.dumps(lines).encode())).decode()


def decompress_backtrace(value: str) -> list[str]:
    """Reads both forms: with newlines (Ruby's encode64) and strict."""
    lines: list[str] = json.loads(zlib.decompress(base64.b64decode(value)))
    return lines


def failure_outcome(
    job: Job,
    exc: BaseException,
    policy: RetryPolicy,
    fmt: TimestampFormat,
    now: float | None = None,
    rng: random.Random | None = None,
    retry_in: RetryInHook | None = None,
    on_hook_error: Callable[[BaseException], None] | None = None,
) -> Outcome:
    """Apply Sidekiq's retry rules to a failed ``job`` (which is changed in place).

    ``retry_in`` is the worker's hook; if it raises, ``on_hook_error`` gets the
    exception and the default backoff applies (Sidekiq logs and does the same).
    """
    retry = job.fields.get("retry", True)
    if retry is False or retry is None:
        return Outcome("drop")
    t = time.time() if now is None else now
    fields = job.fields
    fmt = stamp_format(fields, fmt)
    queue = fields.get("retry_queue") or fields.get("queue") or "default"
    fields["queue"] = queue
    fields["error_message"] = _message(exc)
    fields["error_class"] = error_class_name(exc)
    count = fields.get("retry_count")
    if isinstance(count, int) and not isinstance(count, bool):
        fields["retried_at"] = restamp(fields.get("retried_at"), fmt, t)
        count += 1
    else:
        fields["failed_at"] = restamp(fields.get("failed_at"), fmt, t)
        count = 0
    fields["retry_count"] = count
    wants_backtrace = fields.get("backtrace")
    if wants_backtrace:
        fields["error_backtrace"] = compress_backtrace(backtrace_lines(exc, wants_backtrace))
    max_retries = retry if type(retry) is int else policy.max_retries
    exhausted = count >= max_retries
    window = fields.get("retry_for")
    first_failure = stamp_to_seconds(fields.get("failed_at"))
    if (
        policy.compat != "6"
        and isinstance(window, (int, float))
        and not isinstance(window, bool)
        and first_failure is not None
    ):
        expired = first_failure + window < t
        exhausted = expired if policy.compat == "8" else exhausted or expired
    if not exhausted:
        decision = _ask_retry_in(retry_in, count, exc, job, on_hook_error)
        if decision == "discard":
            return Outcome("drop")
        if decision != "kill":
            delay = decision if decision is not None else count**4 + 15
            return Outcome("retry", job.encode(), t + delay + jitter(count, policy.compat, rng), queue)
    if fields.get("dead") is False:
        return Outcome("drop", exhausted=True)
    return Outcome("dead", job.encode(), t, queue, exhausted=True)


def _ask_retry_in(
    hook: RetryInHook | None,
    count: int,
    exc: BaseException,
    job: Job,
    on_error: Callable[[BaseException], None] | None,
) -> float | Literal["kill", "discard"] | None:
    """The hook's decision, read as Sidekiq's delay_for reads it: a positive
    number of seconds, "kill", "discard", or None for the default."""
    if hook is None:
        return None
    try:
        rv = hook(count, exc, job.copy())
    except Exception as e:
        if on_error is not None:
            on_error(e)
        return None
    if rv in ("kill", "discard"):
        return rv  # type: ignore[no-any-return]  # one of the two literals
    if isinstance(rv, (int, float)) and not isinstance(rv, bool) and rv >= 1:
        return float(int(rv))  # Ruby's rv.to_i
    return None


def _message(exc: BaseException) -> str:
    msg = str(exc)
    if not msg and exc.args == ():
        msg = error_class_name(exc)
    return msg[:MAX_ERROR_MESSAGE]


def dead_payload(raw: bytes, reason: str) -> str | bytes:
    """What the dead set keeps for a payload that cannot be handled.

    A JSON object gets Sidekiq's error_class/error_message, so the Web UI says
    what is wrong; one that is only readable with invalid UTF-8 replaced also
    keeps its exact bytes in ``raw_base64``. Anything else is kept byte for
    byte, as Sidekiq does with a payload it cannot parse (its Web UI shows
    such an entry as invalid).
    """
    lenient = False
    try:
        fields = jsonc.loads(raw)
    except CODEC_ERRORS:
        try:
            fields = jsonc.loads(raw.decode("utf-8", errors="replace"))
            lenient = True
        except CODEC_ERRORS:
            return raw
    if not isinstance(fields, dict):
        return raw
    fields["error_class"] = "InvalidPayloadError"
    fields["error_message"] = reason[:MAX_ERROR_MESSAGE]
    if lenient:
        fields["raw_base64"] = base64.b64encode(raw).decode()
    try:
        text = jsonc.dumps(fields)
        text.encode("utf-8")
    except CODEC_ERRORS:
        try:
            # A lone surrogate (\ud800) decodes but cannot be written as UTF-8:
            # escaped, it is valid JSON and valid UTF-8, error fields kept.
            return json.dumps(fields, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
        except CODEC_ERRORS:
            return raw
    return text
