"""gokogeri.activejob: Rails ActiveJob jobs both ways.

Unit tests run every serializer both ways against payloads real Rails wrote
(tests/data/activejob/, each labelled with the Rails and Sidekiq that wrote it). The rest run
the host's real Rails-less ActiveJob app (tests/ruby/activejob/app.rb: Debian's ruby-activejob
6.1 + ruby-sidekiq 6.4.1) against a real redis-server and a real gokogeri Node.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest
import redis as redispy

import gokogeri
from gokogeri import activejob as aj
from gokogeri import redis as gredis
from gokogeri.enqueuer import Enqueuer
from gokogeri.job import Job
from gokogeri.worker import Context, Router
from tests.conftest import NodeThread, wait_for
from tests.data.activejob.sample import differences, outgoing, sample

DATA = Path(__file__).parent / "data" / "activejob"
APP = Path(__file__).parent / "ruby" / "activejob" / "app.rb"
FIXTURES = sorted(DATA.glob("*.json"))
SAMPLES = [f for f in FIXTURES if "perform_later" in f.name]
DONE = "aj:done"


def fixture(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def rails_of(doc: dict[str, Any]) -> tuple[int, ...]:
    return tuple(int(p) for p in doc["rails"].split(".")[:2])


def target_of(doc: dict[str, Any]) -> aj.RailsTarget:
    return aj.RailsTarget(doc["rails"], doc["sidekiq"])


def sample_job(rails: str = "6.1.7.10") -> Job:
    path = next(f for f in SAMPLES if f.name.startswith(f"rails-{rails}-"))
    return Job.decode(fixture(path)["payload"])


# --- every serializer, both ways, against real Rails payloads -------------------------------


def test_fixtures_cover_every_version_and_serializer() -> None:
    labels = {(fixture(f)["rails"], fixture(f)["sidekiq"]) for f in FIXTURES}
    assert labels == {("6.1.7.10", "6.4.1"), ("7.2.2.2", "7.3.2"), ("7.2.4", "8.1.7")}
    names = set()
    for f in SAMPLES:
        names |= set(_serializer_names(json.loads(fixture(f)["payload"])))
    assert {n.rsplit("::", 1)[1] for n in names} == {
        "SymbolSerializer", "TimeSerializer", "DateTimeSerializer", "DateSerializer",
        "TimeWithZoneSerializer", "DurationSerializer", "BigDecimalSerializer",
        "ModuleSerializer", "RangeSerializer",
    }  # fmt: skip
    text = " ".join(fixture(f)["payload"] for f in SAMPLES)
    for marker in (
        "_aj_symbol_keys",
        "_aj_ruby2_keywords",
        "_aj_hash_with_indifferent_access",
        "_aj_globalid",
    ):
        assert marker in text


def _serializer_names(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        if "_aj_serialized" in value:
            yield value["_aj_serialized"]
        for v in value.values():
            yield from _serializer_names(v)
    elif isinstance(value, list):
        for v in value:
            yield from _serializer_names(v)


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_ruby_sample_decodes_to_exact_python_values(path: Path) -> None:
    doc = fixture(path)
    call = aj.decode_job(Job.decode(doc["payload"]))
    want_args, want_kwargs = sample(rails_of(doc))
    assert differences(call.args, want_args, "args") == []
    assert differences(call.kwargs, want_kwargs, "kwargs") == []


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_python_values_encode_to_what_rails_wrote(path: Path) -> None:
    """Every serializer in reverse: the decoded sample encodes to Rails' own JSON, value for
    value and key order included, for the Rails version that wrote it."""
    doc = fixture(path)
    wire = json.loads(doc["payload"])["args"][0]["arguments"]
    args, kwargs = sample(rails_of(doc))
    encoded = aj.encode_arguments(args, kwargs, target_of(doc))
    assert encoded == wire
    assert json.dumps(encoded) == json.dumps(wire)  # same key order, same JSON types


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_envelope_is_typed_and_rebuilt_key_for_key(path: Path) -> None:
    doc = fixture(path)
    fields = json.loads(doc["payload"])
    wire = fields["args"][0]
    env = aj.Envelope.from_wire(wire)
    assert env.job_class == fields["wrapped"] == wire["job_class"]
    assert env.job_id == wire["job_id"] and len(env.job_id) == 36
    assert (env.executions, env.exception_executions, env.priority) == (0, {}, None)
    assert (env.locale, env.timezone, env.queue_name) == ("en", "UTC", "python")
    assert env.enqueued_at is not None and env.enqueued_at.tzinfo is not None
    assert env.extra == {}
    scheduled = doc["key"] == "schedule"
    if target_of(doc).has_scheduled_at and scheduled:
        assert env.scheduled_at is not None
        assert abs(env.scheduled_at.timestamp() - doc["score"]) < 0.001
    else:
        assert env.scheduled_at is None
    rebuilt = env.to_wire(target_of(doc))
    assert list(rebuilt) == list(wire)
    stamps = ("enqueued_at", "scheduled_at")  # Python keeps microseconds, Rails writes ns
    assert {k: v for k, v in rebuilt.items() if k not in stamps} == {
        k: v for k, v in wire.items() if k not in stamps
    }
    for key in stamps:
        if wire.get(key):
            assert aj.parse_iso8601(rebuilt[key]) == aj.parse_iso8601(wire[key])
            assert len(rebuilt[key]) == len(wire[key])


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_built_job_has_the_shape_rails_pushes(path: Path) -> None:
    """The wrapper Python builds for a Rails version has the fields, wrapper class and envelope
    keys (in order) that version's perform_later pushed, times in its format."""
    doc = fixture(path)
    fields = json.loads(doc["payload"])
    wire = fields["args"][0]
    scheduled = doc["score"] if doc["key"] == "schedule" else None
    built = aj.build_job(
        fields["wrapped"], ["x"], target=target_of(doc), queue="python", scheduled_at=scheduled
    )
    assert built.class_name == fields["class"]
    assert built["wrapped"] == fields["wrapped"] and built.retry is True and built.queue == "python"
    envelope = built.args[0]
    assert list(envelope) == list(wire)
    assert envelope["arguments"] == ["x"]
    stamp = (
        r"\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d"
        + (r"\.\d{9}" if target_of(doc).has_scheduled_at else "")
        + r"Z\Z"
    )
    assert re.match(stamp, envelope["enqueued_at"]), envelope["enqueued_at"]
    if scheduled is not None and target_of(doc).has_scheduled_at:
        assert aj.parse_iso8601(envelope["scheduled_at"]).timestamp() == pytest.approx(
            scheduled, abs=1e-6
        )
    # Everything Sidekiq's client adds is left to the Enqueuer.
    assert set(fields) - set(built.fields) == {"jid", "created_at"} | (
        {"enqueued_at"} if scheduled is None else set()
    )


def test_wrapper_class_per_version() -> None:
    assert aj.RailsTarget("6.1", "6.4.1").wrapper == aj.JOB_WRAPPER
    assert aj.RailsTarget("7.2.2.2", "7.3.2").wrapper == aj.JOB_WRAPPER  # Sidekiq's adapter: 7.3.3+
    assert aj.RailsTarget("7.2.4", "8.1.7").wrapper == aj.SIDEKIQ_WRAPPER
    assert aj.RailsTarget("6.1", "8.1.7").wrapper == aj.JOB_WRAPPER  # it needs ActiveJob 7+


# --- values, edge cases, refusals -------------------------------------------------------------


def test_values_behave_as_python_values() -> None:
    args, kwargs = sample((7, 2))
    assert args[5] == "vip" and isinstance(args[5], str)
    assert args[11] == timedelta(days=2, hours=3)
    assert args[10] == datetime(2026, 6, 1, 12, 30, tzinfo=UTC)
    assert args[15]["a"] == 1  # Symbol keys look up by str
    assert isinstance(args[16], dict) and args[16]["y"]["z"] == 2
    assert str(kwargs["user"]) == "gid://gokogeri/AjInterop::User/7"


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (timedelta(days=2, hours=3), (183600, [("days", 2), ("hours", 3)])),
        (timedelta(weeks=1, seconds=1), (604801, [("weeks", 1), ("seconds", 1)])),
        (timedelta(seconds=1.5), (1.5, [("seconds", 1.5)])),
        (timedelta(0), (0, [("seconds", 0)])),
        (-timedelta(minutes=2), (-120, [("minutes", -2)])),
    ],
)
def test_plain_timedelta_becomes_a_duration(value: timedelta, wire: tuple[Any, list[Any]]) -> None:
    out = aj.encode_arguments([value])[0]
    assert out["value"] == wire[0] and type(out["value"]) is type(wire[0])
    assert [(p[0]["value"], p[1]) for p in out["parts"]] == wire[1]
    back = aj.decode_arguments([out])[0][0]
    assert back == value and isinstance(back, aj.Duration)


def test_times_in_ruby_forms() -> None:
    paris = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=ZoneInfo("Europe/Paris"))
    enc = aj.encode_arguments([paris], target=aj.RailsTarget("7.2"))[0]
    assert enc == {
        "_aj_serialized": "ActiveJob::Serializers::TimeWithZoneSerializer",
        "value": "2026-01-02T03:04:05.000006000+01:00",
        "time_zone": "Europe/Paris",
    }
    assert "time_zone" not in aj.encode_arguments([paris], target=aj.RailsTarget("6.1"))[0]
    dt = aj.RubyDateTime(2026, 1, 2, tzinfo=UTC)
    assert aj.encode_arguments([dt])[0]["value"] == "2026-01-02T00:00:00.000000000+00:00"
    minus = datetime(2026, 1, 2, tzinfo=timezone(-timedelta(hours=3, minutes=30)))
    assert aj.encode_arguments([minus])[0]["value"] == "2026-01-02T00:00:00.000000000-03:30"
    # Nanoseconds beyond Python's microseconds are cut, never rounded into the next second.
    got = aj.decode_arguments(
        [{"_aj_serialized": aj.TIME_SERIALIZER, "value": "2026-01-02T03:04:05.999999999Z"}]
    )
    assert got[0][0] == datetime(2026, 1, 2, 3, 4, 5, 999999, tzinfo=UTC)


def test_decimal_and_range_follow_the_target() -> None:
    assert aj.encode_arguments([Decimal("1.50")], target=aj.RailsTarget("6.1"))[0] == "1.50"
    assert aj.encode_arguments([Decimal("1.50")], target=aj.RailsTarget("7.1"))[0] == {
        "_aj_serialized": aj.BIG_DECIMAL_SERIALIZER, "value": "1.50",
    }  # fmt: skip
    assert aj.encode_arguments([range(1, 5)])[0] == {
        "_aj_serialized": aj.RANGE_SERIALIZER, "begin": 1, "end": 5, "exclude_end": True,
    }  # fmt: skip
    with pytest.raises(aj.ActiveJobSerializationError, match=r"Rails 6\.1 has no Range"):
        aj.encode_arguments([range(1, 5)], target=aj.RailsTarget("6.1"))
    endless = aj.decode_arguments(
        [{"_aj_serialized": aj.RANGE_SERIALIZER, "begin": 1, "end": None, "exclude_end": False}]
    )
    assert endless[0][0] == aj.RubyRange(1, None, False)


@pytest.mark.parametrize(
    ("uri", "gid"),
    [
        ("gid://app/User/42", aj.GlobalID("app", "User", "42")),
        ("gid://my-app/Admin::User/a%2Fb", aj.GlobalID("my-app", "Admin::User", "a/b")),
        ("gid://app/Order/1/7", aj.GlobalID("app", "Order", ("1", "7"))),
        (
            "gid://app/User/42?tenant=x&a=b",
            aj.GlobalID("app", "User", "42", (("tenant", "x"), ("a", "b"))),
        ),
    ],
)
def test_globalid_round_trip(uri: str, gid: aj.GlobalID) -> None:
    assert aj.GlobalID.parse(uri) == gid
    assert gid.uri == uri
    assert aj.decode_arguments([{"_aj_globalid": uri}])[0] == [gid]
    assert aj.encode_arguments([gid]) == [{"_aj_globalid": uri}]


def test_keyword_arguments_only_from_a_last_keywords_hash() -> None:
    kw = {"a": 1, "_aj_ruby2_keywords": ["a"]}
    assert aj.decode_arguments([kw]) == ([], {"a": 1})
    # Anywhere else it is a positional hash (with symbol keys), as Ruby passes it.
    assert aj.decode_arguments([kw, 2]) == ([{aj.Symbol("a"): 1}, 2], {})
    # A serialized object carrying the marker is still an object.
    sym = {"_aj_serialized": aj.SYMBOL_SERIALIZER, "value": "x", "_aj_ruby2_keywords": []}
    assert aj.decode_arguments([sym]) == ([aj.Symbol("x")], {})
    assert aj.encode_arguments([], {"a": aj.Symbol("b")}) == [
        {"a": {"_aj_serialized": aj.SYMBOL_SERIALIZER, "value": "b"}, "_aj_ruby2_keywords": ["a"]}
    ]


def test_a_hash_that_only_looks_like_a_globalid_is_a_hash() -> None:
    # Rails: a GlobalID only when _aj_globalid is the hash's single key; the key then stays.
    value = {"_aj_globalid": "gid://a/B/1", "x": 1, "_aj_symbol_keys": ["x"]}
    assert aj.decode_arguments([value])[0] == [{"_aj_globalid": "gid://a/B/1", aj.Symbol("x"): 1}]
    # Only the first marker applies (indifferent, then symbol keys, then keywords).
    both = {"a": 1, "_aj_hash_with_indifferent_access": True, "_aj_symbol_keys": ["a"]}
    got = aj.decode_arguments([both])[0][0]
    assert type(got) is aj.IndifferentHash and got == {"a": 1, "_aj_symbol_keys": ["a"]}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (datetime(2026, 1, 1), "naive datetime"),
        ((1, 2), "tuple.*use a list"),
        ({1, 2}, "set"),
        (float("nan"), "nan"),
        (Decimal("Infinity"), "Infinity"),
        ({1: "a"}, "int key"),
        ({"_aj_globalid": "x"}, "reserved key"),
        ({"ok": [object()]}, r"args\[0\]\['ok'\]\[0\] is a object"),
        (range(0, 10, 2), "step 1"),
        (str, "type"),
    ],
)
def test_values_with_no_activejob_form_are_refused_by_path(value: Any, message: str) -> None:
    with pytest.raises(aj.ActiveJobSerializationError, match=message):
        aj.encode_arguments([value])


def test_unknown_serializer_fails_the_job_naming_it() -> None:
    job = sample_job()
    job.args[0]["arguments"] = [
        1,
        {"_aj_serialized": "MoneySerializer", "amount": 5, "currency": "EUR"},
    ]
    calls: list[Any] = []
    worker = aj.activejob_worker(lambda *a, **k: calls.append(a))
    with pytest.raises(
        aj.ActiveJobError, match=r"arguments\[1\]: serializer MoneySerializer is not known"
    ):
        worker.work(Context(), job)
    assert calls == []


def test_custom_serializer_both_ways() -> None:
    class Money:
        def __init__(self, cents: int, currency: str) -> None:
            self.cents, self.currency = cents, currency

    codec = aj.Codec()
    codec.register(
        "MoneySerializer",
        decode=lambda h: Money(h["cents"], h["currency"]),
        python_type=Money,
        encode=lambda m: {"cents": m.cents, "currency": m.currency},
    )
    wire = codec.encode_arguments([Money(500, "EUR")])
    assert wire == [{"_aj_serialized": "MoneySerializer", "cents": 500, "currency": "EUR"}]
    back = codec.decode_arguments(wire)[0][0]
    assert (back.cents, back.currency) == (500, "EUR")


def test_broken_payloads_only_ever_fail_the_job() -> None:
    """Nothing in a payload crashes anything: every mutation of a real payload either decodes
    or raises ActiveJobError (an ordinary job failure)."""
    original = json.loads(fixture(SAMPLES[-1])["payload"])
    junk: list[Any] = [None, True, 0, -1.5, "", "x", "gid://", [], {}, [[]], {"_aj_serialized": None},
                       {"_aj_serialized": aj.TIME_SERIALIZER}, {"_aj_globalid": 5}, 10**30,
                       {"_aj_ruby2_keywords": 5}, {"_aj_symbol_keys": [1]}, "9999999-01-01",
                       {"_aj_serialized": aj.DURATION_SERIALIZER, "value": 1e300, "parts": []}]  # fmt: skip
    rng = random.Random(12)
    paths: list[list[Any]] = []

    def walk(value: Any, path: list[Any]) -> None:
        paths.append(path)
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, [*path, k])
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, [*path, i])

    walk(original["args"], [])
    outcomes = {"ok": 0, "failed": 0}
    for path in paths:
        for replacement in rng.sample(junk, 4):
            fields = json.loads(json.dumps(original))
            if not path:
                fields["args"] = replacement
            else:
                node = fields["args"]
                for step in path[:-1]:
                    node = node[step]
                node[path[-1]] = replacement
            try:
                aj.decode_job(Job.from_fields(fields))
                outcomes["ok"] += 1
            except aj.ActiveJobError:
                outcomes["failed"] += 1
            except Exception as e:
                if not isinstance(e, gokogeri.errors.InvalidPayloadError):
                    raise AssertionError(f"{path} = {replacement!r} raised {e!r}") from e
    assert outcomes["ok"] and outcomes["failed"]


def test_envelope_fields_keep_unknown_keys() -> None:
    wire = sample_job().args[0] | {"continuation": {"step": 2}}
    env = aj.Envelope.from_wire(wire)
    assert env.extra == {"continuation": {"step": 2}}
    assert env.to_wire(aj.RailsTarget("6.1"))["continuation"] == {"step": 2}


def test_schema_formats_name_types_with_activejob_forms() -> None:
    examples: dict[str, Any] = {
        "date-time": datetime(2026, 1, 1, tzinfo=UTC),
        "ruby-datetime": aj.RubyDateTime(2026, 1, 1, tzinfo=UTC),
        "ruby-time-with-zone": aj.TimeWithZone.of(datetime(2026, 1, 1, tzinfo=UTC), "Etc/UTC"),
        "date": date(2026, 1, 1),
        "duration": timedelta(hours=1),
        "decimal": Decimal("1.5"),
        "ruby-symbol": aj.Symbol("s"),
        "globalid": aj.GlobalID("app", "User", "1"),
        "ruby-module": aj.RubyModule("Math"),
        "ruby-range": aj.RubyRange(1, 2),
    }
    assert set(examples) == set(aj.SCHEMA_FORMATS)
    for name, value in examples.items():
        assert isinstance(value, aj.SCHEMA_FORMATS[name])
        [wire] = aj.encode_arguments([value], target=aj.RailsTarget("7.2"))
        assert isinstance(wire, dict) and wire.keys() & {"_aj_serialized", "_aj_globalid"}
        [back], _ = aj.decode_arguments([wire])
        assert isinstance(back, aj.SCHEMA_FORMATS[name]) and back == value


# --- the worker adapter -----------------------------------------------------------------------


def test_worker_calls_the_function_with_args_and_kwargs() -> None:
    got: list[Any] = []

    def perform(*args: Any, **kwargs: Any) -> None:
        got.append((args, kwargs))

    worker = aj.activejob_worker(perform, job_class="AjSampleJob")
    worker.work(Context(), sample_job())
    want_args, want_kwargs = sample((6, 1))
    assert (
        differences(list(got[0][0]), want_args) == [] and differences(got[0][1], want_kwargs) == []
    )


def test_worker_with_context_and_envelope() -> None:
    got: list[Any] = []
    ctx = Context(queue="python")

    def perform(c: Context, env: aj.Envelope, *args: Any, locale: str, **_: Any) -> None:
        got.append((c, env, args[0], locale))

    aj.activejob_worker(perform, with_context=True, with_envelope=True).work(ctx, sample_job())
    c, env, first, locale = got[0]
    assert c is ctx and isinstance(env, aj.Envelope) and env.job_class == "AjSampleJob"
    assert (first, locale) == (42, "fr")


def test_worker_refuses_another_job_class() -> None:
    worker = aj.activejob_worker(lambda *a, **k: None, job_class="WelcomeMailJob")
    with pytest.raises(
        aj.ActiveJobError, match="'AjSampleJob' reached the worker for 'WelcomeMailJob'"
    ):
        worker.work(Context(), sample_job())
    with pytest.raises(aj.ActiveJobError, match="not an ActiveJob wrapper job"):
        worker.work(Context(), Job("WelcomeMailJob", args=[1, 2]))


def test_async_worker() -> None:
    got: list[Any] = []

    async def perform(*args: Any, **kwargs: Any) -> None:
        await asyncio.sleep(0)
        got.append(kwargs["locale"])

    worker = aj.activejob_worker(perform)
    assert isinstance(worker, aj.AsyncActiveJobWorker)
    asyncio.run(worker.work(Context(), sample_job()))
    assert got == ["fr"]


def test_register_and_handle_on_a_router() -> None:
    router = Router()
    aj.register(router, "AjSampleJob", lambda *a, **k: None)

    @aj.handle(router, "WelcomeMailJob")
    def welcome(user_id: int, **_: Any) -> None: ...

    assert {"AjSampleJob", "WelcomeMailJob"} <= set(router.classes())


@pytest.mark.skipif(
    not hasattr(gokogeri.worker, "ACTIVEJOB_WRAPPERS"),
    reason="Router dispatch by `wrapped` (gokogeri/worker.py) has not landed yet",
)
@pytest.mark.parametrize("rails", ["6.1.7.10", "7.2.4"])
def test_router_dispatches_wrapper_jobs_by_wrapped(rails: str) -> None:
    router = Router()
    got: list[Any] = []
    aj.register(router, "AjSampleJob", lambda *a, **k: got.append(k["sym"]))
    router.work(Context(), sample_job(rails))
    assert got == ["vip"]


def test_perform_later_pushes_the_wrapper(cm: gredis.ConnManager, r: redispy.Redis) -> None:
    """perform_later pushes to queue:Q now; set(wait_until:) / set(wait:) ZADD schedule at that
    time with the envelope's scheduled_at (Rails 7.1+); a past time pushes now, as Rails does."""
    client = aj.ActiveJobClient(Enqueuer(cm), rails="7.2.4", sidekiq="8.1.7")
    mail = client.job("WelcomeMailJob", queue="mailers", priority=2)
    now = mail.perform_later(aj.GlobalID("app", "User", "1"), locale="fr")
    at = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    later = mail.set(wait_until=at).perform_later(1)
    past = mail.set(wait=-5).perform_later(2)
    assert now is not None and later is not None and past is not None
    queued = [json.loads(x) for x in cast(list[bytes], r.lrange("queue:mailers", 0, -1))]
    assert [q["jid"] for q in queued] == [past.provider_job_id, now.provider_job_id]
    first = queued[1]
    assert first["class"] == aj.SIDEKIQ_WRAPPER and first["wrapped"] == "WelcomeMailJob"
    env = first["args"][0]
    assert env["arguments"] == [
        {"_aj_globalid": "gid://app/User/1"},
        {"locale": "fr", "_aj_ruby2_keywords": ["locale"]},
    ]
    assert (env["job_id"], env["priority"], env["queue_name"]) == (now.job_id, 2, "mailers")
    assert env["scheduled_at"] is None and now.provider_job_id == first["jid"]
    [(member, score)] = cast(
        list[tuple[bytes, float]], r.zrange("schedule", 0, -1, withscores=True)
    )
    scheduled = json.loads(member)
    assert score == at.timestamp() and "enqueued_at" not in scheduled
    assert scheduled["args"][0]["scheduled_at"] == "2030-01-02T03:04:05.678901000Z"
    with pytest.raises(ValueError, match="aware"):
        mail.set(wait_until=datetime(2030, 1, 1)).perform_later()
    with pytest.raises(aj.ActiveJobSerializationError, match=r"Rails 6\.1"):
        aj.ActiveJobClient(Enqueuer(cm), rails="6.1").perform_later("X", range(3))
    assert r.llen("queue:default") == 0  # nothing pushed for a refused job


# --- real Ruby, real Redis, real Node -----------------------------------------------------------

needs_activejob = pytest.mark.skipif(
    shutil.which("sidekiq") is None
    or subprocess.run(
        ["ruby", "-e", 'require "active_job"'], capture_output=True, check=False
    ).returncode
    != 0,
    reason="Debian's ruby-sidekiq and ruby-activejob are not installed",
)


def app(redis_url: str, *args: str) -> dict[str, Any]:
    out = subprocess.run(
        ["ruby", str(APP), *args], env=dict(os.environ, REDIS_URL=redis_url),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    if out.returncode:
        raise RuntimeError(
            f"ruby {APP.name} {' '.join(args)} exited {out.returncode}:\n{out.stderr}"
        )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


class AjSidekiq:
    """Ruby's Sidekiq 6.4.1 running the ActiveJob app (queues: ruby)."""

    def __init__(self, redis_url: str) -> None:
        self.log = open(f"/tmp/gokogeri-aj-sidekiq-{os.getpid()}-{time.monotonic_ns()}.log", "w+b")  # noqa: SIM115
        self.proc = subprocess.Popen(
            ["sidekiq", "-r", str(APP), "-q", "ruby", "-c", "2"],
            env=dict(os.environ, REDIS_URL=redis_url, SIDEKIQ_POLL_INTERVAL="0.5"),
            stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        client = redispy.Redis.from_url(redis_url)
        try:
            wait_for(lambda: client.scard("processes") or self.proc.poll() is not None, timeout=30)
        finally:
            client.close()
        if self.proc.poll() is not None:
            raise RuntimeError(f"sidekiq exited:\n{self.output()}")

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture
def ruby_sidekiq(redis_url: str) -> Iterator[AjSidekiq]:
    proc = AjSidekiq(redis_url)
    yield proc
    proc.stop()


def done(r: redispy.Redis, n: int = 1) -> list[dict[str, Any]]:
    records = wait_for(lambda: r.llen(DONE) >= n and r.lrange(DONE, 0, -1), timeout=30)
    return [json.loads(x) for x in records]


def retries(r: redispy.Redis) -> list[bytes]:
    return cast(list[bytes], r.zrange("retry", 0, -1))


def running_node(cm: gredis.ConnManager, router: Router, queues: list[str]) -> NodeThread:
    node = gokogeri.Node(
        gokogeri.nop_logger(), cm, heartbeat_interval=0.2, poll_interval_average=0.2
    )
    node.process_queues(gokogeri.OrderedQueueSet(queues), router, 2)
    return NodeThread(node)


@needs_activejob
def test_ruby_perform_later_runs_in_a_python_node(
    redis_url: str, r: redispy.Redis, cm: gredis.ConnManager
) -> None:
    """Rails 6.1 perform_later (every serializer, kwargs, GlobalIDs) -> a Python worker on a real
    Node receives exactly the sample, now and via set(wait:)."""
    got: list[tuple[Any, ...]] = []
    router = Router()
    aj.register(router, "AjSampleJob", lambda *a, **k: got.append((a, k)), with_envelope=True)
    now = app(redis_url, "enqueue", "AjSampleJob", "python")
    later = app(redis_url, "enqueue", "AjSampleJob", "python", "1")
    assert r.zcard("schedule") == 1
    with running_node(cm, router, ["python"]):
        wait_for(lambda: len(got) == 2, timeout=20)
    want_args, want_kwargs = sample((6, 1))
    by_job = {call[0][0].job_id: call for call in got}
    for pushed in (now, later):
        (env, *args), kwargs = by_job[pushed["job_id"]]
        assert differences(args, want_args) == [] and differences(kwargs, want_kwargs) == []
        assert env.executions == 0 and env.locale == "en"
    assert r.zcard("schedule") == 0 and r.zcard("retry") == 0


@needs_activejob
def test_python_perform_later_runs_in_ruby(
    redis_url: str, r: redispy.Redis, cm: gredis.ConnManager, ruby_sidekiq: AjSidekiq
) -> None:
    """Python perform_later (now and set(wait:)) -> Rails 6.1's perform receives exactly the
    Ruby sample; Ruby asserts every value, class, offset and zone and reports."""
    client = aj.ActiveJobClient(Enqueuer(cm), rails="6.1.7.10", sidekiq="6.4.1")
    args, kwargs = outgoing((6, 1))
    first = client.job("AjSampleJob", queue="ruby").perform_later(*args, **kwargs)
    second = (
        client.job("AjSampleJob")
        .set(queue="ruby", wait=timedelta(seconds=1), priority=5)
        .perform_later(*args, **kwargs)
    )
    assert first is not None and second is not None
    assert r.zcard("schedule") == 1
    records = {rec["job_id"]: rec for rec in done(r, 2)}
    for env in (first, second):
        rec = records[env.job_id]
        assert rec["problems"] == [] and rec["ok"], rec
        assert rec["jid"] == env.provider_job_id and rec["job"] == "AjSampleJob"
        assert rec["executions"] == 1  # Ruby's perform_now counts this run


@needs_activejob
def test_failures_retry_on_the_other_side(
    redis_url: str, r: redispy.Redis, cm: gredis.ConnManager, ruby_sidekiq: AjSidekiq
) -> None:
    """A job failing in Python is retried by Ruby, and one failing in Ruby is retried by Python,
    on the wrapper by Sidekiq's rules: envelope (executions) untouched, retry_count counted."""
    client = aj.ActiveJobClient(
        Enqueuer(cm), rails="6.1", sidekiq="6.4.1", sidekiq_options={"retry_queue": "ruby"}
    )
    seen: list[Any] = []

    def fail_in_python(env: aj.Envelope, *args: Any) -> None:
        seen.append((env.executions, list(args)))
        raise RuntimeError("boom in python")

    router = Router()
    aj.register(router, "AjRecordJob", fail_in_python, with_envelope=True)
    aj.register(router, "AjFailJob", fail_in_python, with_envelope=True)
    py_first = client.job("AjRecordJob", queue="python").perform_later("py", aj.Symbol("s"))
    assert py_first is not None
    back_to_python = aj.ActiveJobClient(
        Enqueuer(cm), rails="6.1", sidekiq="6.4.1", sidekiq_options={"retry_queue": "python"}
    )
    rb = back_to_python.job("AjFailJob", queue="ruby").perform_later("boom in ruby")
    assert rb is not None
    # Ruby fails AjFailJob first: its retry waits in the retry set for the python queue.
    entry = wait_for(lambda: r.zrange("retry", 0, -1), timeout=20)
    failed_in_ruby = json.loads(entry[0])
    assert failed_in_ruby["error_class"] == "ArgumentError" and failed_in_ruby["retry_count"] == 0
    assert failed_in_ruby["args"][0]["executions"] == 0
    with running_node(cm, router, ["python"]):
        wait_for(lambda: len(seen) == 1, timeout=20)
        # Python fails AjRecordJob: its retry waits for the ruby queue; the AjFailJob retry is due now.
        wait_for(lambda: r.zcard("retry") == 2, timeout=20)
        for raw in retries(r):
            r.zadd("retry", {raw: 0}, xx=True)
        # The AjFailJob retry runs in Python (fails again: retry_count 1), AjRecordJob in Ruby.
        wait_for(lambda: len(seen) == 2, timeout=20)
        records = done(r, 2)
    assert seen[0] == (0, ["py", "s"])
    assert seen[1] == (0, ["boom in ruby"])
    ruby_run = next(rec for rec in records if rec["job"] == "AjRecordJob")
    assert ruby_run["jid"] == py_first.provider_job_id and ruby_run["executions"] == 1
    assert ruby_run["received"] == ['String: "py"', "Symbol: :s"]
    again = wait_for(lambda: [json.loads(x) for x in retries(r) if b"AjFailJob" in x], timeout=20)
    assert again[0]["retry_count"] == 1 and again[0]["error_class"] == "RuntimeError"
    assert again[0]["args"][0] == failed_in_ruby["args"][0]  # the envelope is never rewritten
    assert again[0]["wrapped"] == "AjFailJob" and again[0]["class"] == aj.JOB_WRAPPER
