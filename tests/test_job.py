from __future__ import annotations

import base64
import json
import math
import re
import zlib
from datetime import datetime
from decimal import Decimal

import pytest

from gokogeri import InvalidArgumentError, InvalidPayloadError, Job, new_jid
from gokogeri.job import check_args, restamp, stamp_to_seconds
from tests.data.captures import PRETTY, RAW


@pytest.mark.parametrize("name", sorted(RAW))
def test_ruby_payloads_round_trip(name: str) -> None:
    raw = RAW[name]
    job = Job.decode(raw.encode())
    again = Job.decode(job.encode())
    assert again.fields == json.loads(raw)
    # Ruby writes compact JSON; so do we, so Ruby's bytes come back unchanged.
    if ": " not in raw:
        assert job.encode() == raw
    assert job.raw == raw.encode()


@pytest.mark.parametrize("name", sorted(PRETTY))
def test_pretty_captures_round_trip_by_value_and_type(name: str) -> None:
    original = json.loads(PRETTY[name])
    job = Job.decode(PRETTY[name])
    back = json.loads(job.encode())
    assert back == original
    for key, value in original.items():
        assert type(back[key]) is type(value), key
    assert list(back) == list(original)  # field order kept too


def test_sidekiq8_int_ms_and_float_seconds_both_read() -> None:
    job8 = Job.decode(RAW["8.1.7 client push"])
    job6 = Job.decode(RAW["6.4.1 client push"])
    assert isinstance(job8.created_at, int)
    assert isinstance(job6.created_at, float)
    assert job8.created_at_seconds() == pytest.approx(1795848102.398)
    assert job6.created_at_seconds() == pytest.approx(1795847367.4803123)


def test_restamp_keeps_the_json_type() -> None:
    now = 1795848102.5
    assert restamp(1795848102398, "float", now) == 1795848102500
    assert isinstance(restamp(1795848102398, "float", now), int)
    assert restamp(1795848102.25, "ms", now) == now
    assert isinstance(restamp(1795848102.25, "ms", now), float)
    assert restamp(None, "ms", now) == 1795848102500
    assert restamp(None, "float", now) == now
    # an integral float stays a float on the wire
    assert json.dumps(restamp(1.0, "ms", 1795848102.0)) == "1795848102.0"
    assert stamp_to_seconds(True) is None


def test_unknown_fields_survive() -> None:
    raw = '{"class":"X","args":[],"queue":"q","retry":2,"jid":"a"*0,"bid":"b-1","cattr":{"user":7},"tags":["t"],"custom":{"deep":[1,2.5]}}'
    raw = raw.replace('"a"*0', '"0123456789abcdef01234567"')
    job = Job.decode(raw)
    job.retry = 5
    out = json.loads(job.encode())
    assert (
        out["bid"] == "b-1" and out["cattr"] == {"user": 7} and out["custom"] == {"deep": [1, 2.5]}
    )
    assert out["retry"] == 5 and job["tags"] == ["t"]


def test_args_always_written_even_when_missing() -> None:
    job = Job.decode('{"class":"GoJob","queue":"q","retry":true}')  # what the Go original wrote
    assert job.args == []
    assert '"args":[]' in job.encode()
    assert '"args":[]' in Job("X").encode()


def test_retry_values_kept_exactly() -> None:
    for value in (True, False, 0, 3, 25):
        job = Job.decode(json.dumps({"class": "X", "args": [], "retry": value}))
        assert job.retry is value or job.retry == value
        assert (
            json.loads(job.encode())["retry"] is value or json.loads(job.encode())["retry"] == value
        )
        assert type(json.loads(job.encode())["retry"]) is type(value)
    assert Job.decode('{"class":"X","args":[]}').retry is True


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (b"not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[1,2]", "JSON object"),
        (b'{"args":[]}', "'class'"),
        (b'{"class":"","args":[]}', "'class'"),
        (b'{"class":7,"args":[]}', "'class'"),
        (b'{"class":"X","args":{"a":1}}', "'args' must be an array"),
        (b'{"class":"X","args":[],"queue":5}', "'queue'"),
        (b'{"class":"X","args":[],"jid":5}', "'jid'"),
        (b'{"class":"X","args":[],"retry":"yes"}', "'retry'"),
        (b'{"class":"X","args":[],"created_at":"yesterday"}', "'created_at'"),
        (b'{"class":"X","args":[],"enqueued_at":true}', "'enqueued_at'"),
    ],
)
def test_invalid_payloads_raise_one_clear_error(payload: bytes, fragment: str) -> None:
    with pytest.raises(InvalidPayloadError, match=re.escape(fragment)):
        Job.decode(payload)



# Values of every JSON type (and a float subclass only Python code could pass).
class _Float(float):
    pass


_SAMPLES: list[object] = [
    None, True, False, 0, 1, -3, 1.5, _Float(2.0), "", "X", "default", [], [1], {}, {"a": 1},
]


@pytest.mark.parametrize(
    "key", ["class", "args", "queue", "jid", "retry", "created_at", "enqueued_at",
            "failed_at", "retried_at"],
)
def test_validate_fast_path_agrees_with_the_full_checks(key: str) -> None:
    """_validate recognises the usual payload in one expression and leaves the
    rest to _validate_slow: both must accept and refuse the same fields."""
    from gokogeri.job import _validate, _validate_slow

    base: dict[str, object] = {
        "class": "X", "args": [1], "queue": "q", "jid": "abc", "retry": 3,
        "created_at": 1.5, "enqueued_at": 2,
    }
    for value in [*_SAMPLES, "missing"]:
        fields = dict(base)
        if value == "missing":
            fields.pop(key, None)
        else:
            fields[key] = value
        outcomes = []
        for check in (_validate, _validate_slow):
            try:
                check(fields)
                outcomes.append("ok")
            except InvalidPayloadError as e:
                outcomes.append(str(e))
        assert outcomes[0] == outcomes[1], (key, value, outcomes)

def test_jid_format_and_uniqueness() -> None:
    jids = {new_jid() for _ in range(100_000)}
    assert len(jids) == 100_000
    assert all(re.fullmatch(r"[0-9a-f]{24}", j) for j in jids)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ([(1, 2)], "args[0] is a tuple"),
        ([{1, 2}], "args[0] is a set"),
        ([frozenset()], "args[0] is a frozenset"),
        (["ok", datetime(2026, 1, 1)], "args[1] is a datetime"),
        ([Decimal("1.5")], "args[0] is a Decimal"),
        ([b"bytes"], "args[0] is a bytes"),
        ([math.nan], "args[0] is nan"),
        ([math.inf], "args[0] is inf"),
        ([{"a": [1, -math.inf]}], "args[0]['a'][1] is -inf"),
        ([{1: "x"}], "args[0] has a key 1 of type int"),
        ([{None: "x"}], "args[0] has a key None of type NoneType"),
        ([object()], "args[0] is a object"),
        ([[1, [2, (3,)]]], "args[0][1][1] is a tuple"),
    ],
)
def test_non_json_native_args_are_refused(args: list[object], fragment: str) -> None:
    with pytest.raises(InvalidArgumentError, match=re.escape(fragment)):
        check_args(args)


def test_args_must_be_a_list() -> None:
    with pytest.raises(InvalidArgumentError, match="must be a list"):
        check_args((1, 2))


def test_json_native_args_pass() -> None:
    check_args(["s", 1, -2.5, True, None, [1, {"k": [None]}], {"x": {"y": 1.0}}, 2**70])


def test_repr_never_shows_args() -> None:
    job = Job("SendEmail", args=["alice@example.com"])
    assert "alice" not in repr(job)


def test_error_backtrace_capture_decodes() -> None:
    job = Job.decode(RAW["6.4.1 retry entry"])
    lines = json.loads(zlib.decompress(base64.b64decode(job["error_backtrace"])))
    assert lines[0].endswith("in `perform'")
    assert job.retry_count == 0 and job.error_class == "ArgumentError"
