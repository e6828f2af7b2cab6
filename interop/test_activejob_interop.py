"""Rails ActiveJob both ways, on every Sidekiq of the matrix with the ActiveJob its Debian suite
carries (6.4.1 + Rails 6.1.7, 7.3.2 + Rails 7.2.2, 8.1.7 + Rails 7.2.4, where Sidekiq's own
adapter pushes ``Sidekiq::ActiveJob::Wrapper``).

The Ruby side is interop/ruby/activejob.rb, a Rails-less ``require "active_job"`` app with
``queue_adapter = :sidekiq`` that the environment's Sidekiq loads through jobs.rb. Its
AjSampleJob asserts in Ruby that ``perform`` received exactly the sample (value, class, offset,
zone) and reports to the Redis list ``aj:done``; the Python twin of the sample is
tests/data/activejob/sample.py.

``INTEROP_SAVE_AJ_FIXTURES=1`` also saves what each Rails wrote to tests/data/activejob/.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, cast

from harness import InteropEnv, wait_for
from pynode import running

import gokogeri
from gokogeri import activejob as aj
from gokogeri import redis as gredis

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from tests.data.activejob.sample import differences, outgoing, sample  # noqa: E402

DONE = "aj:done"
WAIT = 1.5  # seconds, for set(wait:)
FIXTURES = ROOT / "tests" / "data" / "activejob"


def _info(sk: InteropEnv) -> dict[str, Any]:
    """Rails and Sidekiq versions and the wrapper class, as the Ruby app reports them."""
    info = cast(dict[str, Any], sk.ruby_json("activejob.rb", "info"))
    r = sk.redis()
    try:
        r.delete(DONE)  # sk.reset() does not know this app's key
    finally:
        r.close()
    return info


def _rails(info: dict[str, Any]) -> tuple[int, ...]:
    return tuple(int(p) for p in str(info["rails"]).split(".")[:2])


def _done(sk: InteropEnv, n: int, timeout: float = 30) -> list[dict[str, Any]]:
    def check() -> list[bytes] | None:
        items = sk.raw_list(DONE)
        return items if len(items) >= n else None

    return [json.loads(x) for x in wait_for(check, timeout, f"{n} ActiveJob perform(s) in Ruby")]


@contextmanager
def _client(sk: InteropEnv, info: dict[str, Any], **options: Any) -> Iterator[aj.ActiveJobClient]:
    # Python writes the time format of the Sidekiq it shares Redis with (8: integer ms).
    fmt: Literal["float", "ms"] = "ms" if sk.major >= 8 else "float"
    cm = gredis.ConnManager(gredis.Config(url=sk.redis_url, timestamp_format=fmt))
    try:
        yield aj.ActiveJobClient(
            gokogeri.Enqueuer(cm), rails=str(info["rails"]), sidekiq=str(info["sidekiq"]), **options
        )
    finally:
        cm.close()


def _save_fixture(info: dict[str, Any], raw: bytes, how: str) -> None:
    fields = json.loads(raw)
    name = f"rails-{info['rails']}-sidekiq-{info['sidekiq']}-{fields['wrapped']}-{how}.json"
    doc = {
        "rails": info["rails"],
        "sidekiq": info["sidekiq"],
        "written_by": f"ruby {info['ruby']}, interop environment (Debian ruby-activejob)",
        "how": f"interop/ruby/activejob.rb enqueue {fields['wrapped']} python",
        "key": "queue:python",
        "score": None,
        "payload": raw.decode(),
    }
    (FIXTURES / name).write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")


def test_ruby_perform_later_python_receives_the_sample(sk: InteropEnv) -> None:
    """Ruby perform_later (every serializer, keyword arguments, GlobalIDs), now and with
    set(wait:), -> a Python worker receives exactly the Python sample."""
    info = _info(sk)
    got: dict[str, tuple[aj.Envelope, list[Any], dict[str, Any]]] = {}

    def perform(ctx: gokogeri.Context, env: aj.Envelope, *args: Any, **kwargs: Any) -> None:
        got[env.job_id] = (env, list(args), kwargs)

    router = gokogeri.Router()
    aj.register(router, "AjSampleJob", perform, with_context=True, with_envelope=True)
    now = sk.ruby_json("activejob.rb", "enqueue", "AjSampleJob", "python")
    [raw] = sk.raw_list("queue:python")  # what this Rails pushed, before Python takes it
    wrapper = json.loads(raw)
    assert wrapper["class"] == info["wrapper"] and wrapper["wrapped"] == "AjSampleJob"
    if os.environ.get("INTEROP_SAVE_AJ_FIXTURES"):
        _save_fixture(info, raw, "perform_later")
    with running(sk, ["python"], router):
        t0 = time.time()
        later = sk.ruby_json("activejob.rb", "enqueue", "AjSampleJob", "python", str(WAIT))
        wait_for(lambda: len(got) == 2 or None, 30, "both ActiveJob jobs in Python")
        ran_at = time.time()
    want_args, want_kwargs = sample(_rails(info))
    for pushed in (now, later):
        env, args, kwargs = got[pushed["job_id"]]
        assert differences(args, want_args, "args") == []
        assert differences(kwargs, want_kwargs, "kwargs") == []
        assert env.job_class == "AjSampleJob" and env.executions == 0
        assert env.locale == "en" and env.timezone == "UTC" and env.queue_name == "python"
    assert ran_at - t0 >= WAIT - 0.05
    assert sk.raw_zset("schedule") == [] and sk.raw_zset("retry") == []
    # The wrapper class each version's adapter pushes, and the one Python picks for it.
    assert info["wrapper"] == (aj.SIDEKIQ_WRAPPER if sk.major >= 8 else aj.JOB_WRAPPER)
    assert aj.RailsTarget(info["rails"], info["sidekiq"]).wrapper == info["wrapper"]


def test_python_perform_later_ruby_receives_the_sample(sk: InteropEnv) -> None:
    """Python perform_later, now and with set(wait:), -> Ruby's perform receives exactly the
    Ruby sample (AjSampleJob checks every value, class, UTC offset and zone in Ruby)."""
    info = _info(sk)
    args, kwargs = outgoing(_rails(info))
    with _client(sk, info) as client:
        job = client.job("AjSampleJob", queue="ruby")
        first = job.perform_later(*args, **kwargs)
        second = job.set(wait=WAIT, priority=3).perform_later(*args, **kwargs)
        assert first is not None and second is not None
        [member] = sk.raw_zset("schedule")
        wrapper = json.loads(member[0])
        assert wrapper["class"] == info["wrapper"] and wrapper["wrapped"] == "AjSampleJob"
        records = {rec["job_id"]: rec for rec in _done(sk, 2)}
    for env in (first, second):
        rec = records[env.job_id]
        assert rec["problems"] == [] and rec["ok"] is True, rec
        assert rec["jid"] == env.provider_job_id and rec["rails"] == info["rails"]
        assert rec["executions"] == 1
    assert records[second.job_id]["at"] >= records[first.job_id]["at"]


def _retry(sk: InteropEnv, wrapped: str, retry_count: int) -> tuple[bytes, dict[str, Any]]:
    def find() -> tuple[bytes, dict[str, Any]] | None:
        for raw, _score in sk.raw_zset("retry"):
            job = json.loads(raw)
            if job.get("wrapped") == wrapped and job.get("retry_count") == retry_count:
                return raw, job
        return None

    return wait_for(find, 30, f"{wrapped} with retry_count {retry_count} in the retry set")


def _make_due(sk: InteropEnv, raw: bytes) -> None:
    r = sk.redis()
    try:
        r.zadd("retry", {raw: time.time()}, xx=True)
    finally:
        r.close()


def test_failures_are_retried_by_the_other_side(sk: InteropEnv) -> None:
    """An ActiveJob job failing in Ruby is retried in Python, and one failing in Python is
    retried in Ruby: Sidekiq's retry rules on the wrapper, the envelope (job_id, executions,
    arguments) untouched, retry_count counted across the two."""
    info = _info(sk)
    seen: list[tuple[str, int, list[Any]]] = []

    def fail(env: aj.Envelope, *args: Any) -> None:
        seen.append((env.job_class, env.executions, list(args)))
        raise RuntimeError(f"{env.job_class} failed in python")

    router = gokogeri.Router()
    aj.register(router, "AjFailJob", fail, with_envelope=True)
    aj.register(router, "AjRecordJob", fail, with_envelope=True)
    with _client(sk, info, sidekiq_options={"retry_queue": "python"}) as to_python:
        ruby_fails = to_python.job("AjFailJob", queue="ruby").perform_later("boom", aj.Symbol("s"))
    with _client(sk, info, sidekiq_options={"retry_queue": "ruby"}) as to_ruby:
        python_fails = to_ruby.job("AjRecordJob", queue="python").perform_later("py", 1)
    assert ruby_fails is not None and python_fails is not None
    raw, in_ruby = _retry(sk, "AjFailJob", 0)  # Ruby ran and failed it
    assert in_ruby["error_class"] == "ArgumentError" and in_ruby["queue"] == "python"
    with running(sk, ["python"], router, timestamp_format="ms" if sk.major >= 8 else "float"):
        _make_due(sk, raw)
        _, again = _retry(sk, "AjFailJob", 1)  # ... then Python, which failed it again
        raw3, in_python = _retry(sk, "AjRecordJob", 0)  # Python's own failure, for Ruby
        _make_due(sk, raw3)
        records = _done(sk, 2)
    assert sorted(seen) == [("AjFailJob", 0, ["boom", "s"]), ("AjRecordJob", 0, ["py", 1])]
    # Python's retry of the Ruby failure: Sidekiq's fields carried on, the envelope unchanged.
    assert again["jid"] == ruby_fails.provider_job_id and again["class"] == info["wrapper"]
    assert again["args"] == in_ruby["args"] and again["failed_at"] == in_ruby["failed_at"]
    assert again["error_class"] == "RuntimeError" and again["queue"] == "python"
    assert type(again["retried_at"]) is (int if sk.major >= 8 else float)
    # Ruby's retry of the Python failure: perform gets the arguments, executions counts this run.
    assert in_python["queue"] == "ruby" and in_python["error_class"] == "RuntimeError"
    ran = next(rec for rec in records if rec["job"] == "AjRecordJob")
    assert ran["job_id"] == python_fails.job_id and ran["jid"] == python_fails.provider_job_id
    assert ran["received"] == ['String: "py"', "Integer: 1"] and ran["executions"] == 1
