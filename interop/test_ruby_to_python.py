"""Ruby enqueues, a gokogeri Node runs; failures and retries cross the boundary both ways.

The node runs in a thread of the test process on the environment's Redis (see pynode.py).
Sidekiq works queues ``default`` and ``ruby``; the node works ``python``. Ruby's retry poller
and the node's scheduler both watch the ``retry`` and ``schedule`` sets, exactly as a Ruby
and a Python deployment sharing one Redis would.
"""

from __future__ import annotations

import collections
import json
import time
from typing import Any, Literal

import pytest
from harness import InteropEnv, wait_for
from pynode import PythonJobError, Recorder, failing, recording, running

import gokogeri
from gokogeri import redis as gredis
from gokogeri.api import Api

ARGS: list[Any] = [
    1, "two", 3.5, None, True, False, -7, 2**53, 'üñí©ødé ✓ "q" \\ \n', [], {},
    {"k": [1.5, None, True], "nested": {"deep": ["x", {"n": 0}]}},
]  # fmt: skip
PY_ONLY_CLASS = "myapp.tasks.PyOnlyJob"  # Ruby has no such class; Client.push never checks
PY_ERROR = f"{PythonJobError.__module__}.{PythonJobError.__qualname__}"  # as error_class
SCHEDULE_IN = 1.5  # seconds


def _retry_member(sk: InteropEnv, jid: str, **match: Any) -> tuple[bytes, float]:
    """The raw retry-set member of ``jid`` (with fields equal to ``match``), once it is there."""

    def find() -> tuple[bytes, float] | None:
        for raw, score in sk.raw_zset("retry"):
            job = json.loads(raw)
            if job["jid"] == jid and all(job.get(k) == v for k, v in match.items()):
                return raw, score
        return None

    return wait_for(find, 30, f"job {jid} {match or ''} in the retry set")


def _make_due(sk: InteropEnv, raw: bytes) -> None:
    """Move a retry to now: ZADD XX with the exact member (never adds a second copy)."""
    r = sk.redis()
    try:
        assert r.zadd("retry", {raw: time.time()}, xx=True) == 0  # 0 added: it was updated
        assert r.zscore("retry", raw) is not None
    finally:
        r.close()


def _enqueuer(sk: InteropEnv) -> tuple[gredis.ConnManager, gokogeri.Enqueuer]:
    cm = gredis.ConnManager(gredis.Config(url=sk.redis_url))
    return cm, gokogeri.Enqueuer(cm)


def _seconds(stamp: float | int) -> float:
    """A wire timestamp as Sidekiq 8 reads it: float = seconds, int = milliseconds."""
    return stamp / 1000 if isinstance(stamp, int) else stamp


# --- 1. Ruby enqueues, Python runs -------------------------------------------------------------


def test_ruby_enqueues_python_node_runs(sk: InteropEnv) -> None:
    rec = Recorder()
    router = gokogeri.Router()
    router.register("RecordJob", recording(rec))
    router.register(PY_ONLY_CLASS, recording(rec))
    bulk_args = [[i, f"bulk-{i}", {"i": i}] for i in range(50)]
    with running(sk, ["python"], router, concurrency=3):
        t0 = time.time()
        specs = [
            {"via": "perform_async", "class": "RecordJob", "queue": "python", "args": ARGS},
            {"class": PY_ONLY_CLASS, "queue": "python", "args": [1, "x"], "tags": ["t"]},
            {"via": "perform_in", "in": SCHEDULE_IN, "class": "RecordJob", "queue": "python",
             "args": ["perform_in"]},
            {"class": PY_ONLY_CLASS, "queue": "python", "args": ["at"], "in": SCHEDULE_IN},
            {"bulk": True, "class": PY_ONLY_CLASS, "queue": "python", "args": bulk_args},
        ]  # fmt: skip
        jids = sk.ruby_json("push.rb", stdin=json.dumps(specs))["jids"]
        assert len(jids) == 4 + len(bulk_args) and len(set(jids)) == len(jids)
        ran = rec.wait(jids, timeout=20)
        time.sleep(0.3)  # long enough for a duplicate delivery to show up
    counts = collections.Counter(r.jid for r in rec.ran)
    assert all(counts[j] == 1 for j in jids), "every job runs exactly once"

    now_async, client_push, p_in, at, *bulk = jids
    assert ran[now_async].class_name == "RecordJob" and ran[now_async].args == ARGS
    assert ran[client_push].class_name == PY_ONLY_CLASS and ran[client_push].args == [1, "x"]
    assert ran[client_push].fields["tags"] == ["t"]
    for jid in (p_in, at):
        assert ran[jid].at >= t0 + SCHEDULE_IN - 0.05, "a scheduled job ran early"
    assert ran[p_in].args == ["perform_in"] and ran[at].args == ["at"]
    assert [ran[j].args for j in bulk] == bulk_args
    for r in ran.values():
        assert r.queue == "python"
        assert r.fields["retry"] is True
        # Ruby's own time format arrives untouched (8.x integer ms, 6/7 float seconds).
        assert type(r.fields["created_at"]) is (int if sk.major >= 8 else float)
        assert type(r.fields["enqueued_at"]) is (int if sk.major >= 8 else float)
        assert abs(_seconds(r.fields["enqueued_at"]) - time.time()) < 60


# --- 2. failures both ways ----------------------------------------------------------------------


def test_python_failure_read_by_ruby_and_retried_in_ruby(sk: InteropEnv) -> None:
    """(a) Python fails a RecordJob whose retry_queue is ``ruby``: Ruby's RetrySet reads the
    entry, and once it is due Ruby's poller moves it to ``ruby``, where Sidekiq runs it."""
    rec = Recorder()
    router = gokogeri.Router()
    router.register("RecordJob", failing(rec, "card declined ✗"))
    cm, enq = _enqueuer(sk)
    try:
        # scheduler=False: only Ruby's poller may move the retry afterwards.
        with running(sk, ["python"], router, scheduler=False):
            t0 = time.time()
            job = gokogeri.Job(
                class_name="RecordJob", queue="python", args=[7, "eur", {"x": None}],
                retry_queue="ruby", backtrace=True,
            )  # fmt: skip
            jid = enq.enqueue(job)
            assert jid is not None
            rec.wait([jid])
            raw, score = _retry_member(sk, jid)
        py_view = Api(cm).retries()
    finally:
        cm.close()
    stored = json.loads(raw)
    assert stored["queue"] == "ruby", "the retry goes to retry_queue"
    assert stored["retry_count"] == 0 and "retried_at" not in stored
    assert type(stored["failed_at"]) is float and abs(stored["failed_at"] - t0) < 30
    assert 15 <= score - stored["failed_at"] <= 15 + 10 + 1, "Sidekiq's first backoff"

    [entry] = sk.ruby_json("api.rb", "retries")["retries"]
    assert entry["jid"] == jid and entry["class"] == "RecordJob"
    assert entry["args"] == [7, "eur", {"x": None}]
    assert entry["queue"] == "ruby"
    assert entry["error_class"] == PY_ERROR
    assert entry["error_message"] == "card declined ✗"
    assert entry["retry_count"] == 0
    backtrace = entry["error_backtrace"]
    assert isinstance(backtrace, list) and backtrace, backtrace
    assert any("pynode.py" in line and "in `work'" in line for line in backtrace), backtrace
    assert abs(entry["times"]["failed_at"] - stored["failed_at"]) < 0.01
    assert [e.job.jid for e in py_view] == [jid]

    _make_due(sk, raw)
    done = sk.wait_done([jid], timeout=20)[jid]  # Ruby's poller (1 s here), then RecordJob
    assert done["queue"] == "ruby" and done["args"] == [7, "eur", {"x": None}]
    payload = done["payload"]
    assert payload["retry_count"] == 0 and payload["failed_at"] == stored["failed_at"]
    assert payload["error_class"] == PY_ERROR
    assert sk.raw_zset("retry") == []


def test_ruby_failure_retried_by_python(sk: InteropEnv) -> None:
    """(b) Ruby fails HandOffJob (retry_queue "python"); the retry, once due, runs in Python,
    which fails it again: the count goes on, failed_at is kept, retried_at is set."""
    out = sk.ruby_json(
        "push.rb",
        stdin=json.dumps({"via": "perform_async", "class": "HandOffJob", "queue": "ruby",
                          "args": ["failed in ruby"]}),
    )  # fmt: skip
    [jid] = out["jids"]
    raw, _ = _retry_member(sk, jid, retry_count=0)
    first = json.loads(raw)
    assert first["queue"] == "python" and first["error_class"] == "Interop::InteropError"
    stamp = int if sk.major >= 8 else float
    assert type(first["failed_at"]) is stamp

    rec = Recorder()
    router = gokogeri.Router()
    router.register("HandOffJob", failing(rec, "failed in python"))
    with running(sk, ["python"], router):
        _make_due(sk, raw)  # the node's scheduler or Ruby's poller moves it, whichever is first
        got = rec.wait([jid])[jid]
        raw2, score2 = _retry_member(sk, jid, retry_count=1)
    # What Python ran: Ruby's job, as Ruby left it.
    assert got.args == ["failed in ruby"] and got.queue == "python"
    assert got.fields["retry_count"] == 0 and got.fields["failed_at"] == first["failed_at"]
    assert got.fields["error_class"] == "Interop::InteropError"
    second = json.loads(raw2)
    assert second["failed_at"] == first["failed_at"], "failed_at is the first failure's"
    assert type(second["retried_at"]) is stamp, "new times follow the job's own format"
    assert _seconds(second["retried_at"]) >= _seconds(first["failed_at"])
    assert abs(_seconds(second["retried_at"]) - time.time()) < 30
    assert second["error_class"] == PY_ERROR and second["error_message"] == "failed in python"
    assert second["queue"] == "python" and second["retry_queue"] == "python"
    assert score2 - _seconds(second["retried_at"]) >= 16 - 1, "backoff for retry_count 1"

    [entry] = sk.ruby_json("api.rb", "retries")["retries"]
    assert entry["jid"] == jid and entry["class"] == "HandOffJob"
    assert entry["retry_count"] == 1 and entry["error_class"] == PY_ERROR
    # Python's backtrace replaced Ruby's (HandOffJob has backtrace: true), and Ruby decodes it.
    assert any("pynode.py" in line for line in entry["error_backtrace"]), entry["error_backtrace"]
    assert abs(entry["times"]["retried_at"] - time.time()) < 30
    assert abs(entry["times"]["failed_at"] - _seconds(first["failed_at"])) < 0.01


def test_ruby_job_failed_in_python_keeps_its_time_format(sk: InteropEnv) -> None:
    """A job Ruby created (8.x: integer-ms times) fails in Python: failed_at takes the job's
    own format, whatever the node's default, so Ruby reads the right time."""
    [jid] = sk.ruby_json(
        "push.rb", stdin=json.dumps({"class": PY_ONLY_CLASS, "queue": "python", "args": [1]})
    )["jids"]
    rec = Recorder()
    router = gokogeri.Router()
    router.register(PY_ONLY_CLASS, failing(rec, "from ruby, failed in python"))
    with running(sk, ["python"], router):  # the node's default: float seconds
        rec.wait([jid])
        raw, _ = _retry_member(sk, jid)
    stored = json.loads(raw)
    assert type(stored["failed_at"]) is type(stored["created_at"])
    assert type(stored["failed_at"]) is (int if sk.major >= 8 else float)
    [entry] = sk.ruby_json("api.rb", "retries")["retries"]
    assert abs(entry["times"]["failed_at"] - time.time()) < 30
    assert entry["times"]["failed_at"] >= entry["times"]["created_at"]


def test_exhausted_retries_land_in_the_dead_set(sk: InteropEnv) -> None:
    """(c) retry: 0 and retry: 1 exhausted in Python, retry: 0 in Ruby: one dead set, read by
    Ruby's DeadSet and by gokogeri.api.Api.dead()."""
    rec = Recorder()
    router = gokogeri.Router()
    router.register("PyDeadJob", failing(rec, "no more"))
    cm, enq = _enqueuer(sk)
    try:
        with running(sk, ["python"], router):
            jid0 = enq.enqueue(gokogeri.Job(class_name="PyDeadJob", queue="python", args=[0],
                                            retry=0))  # fmt: skip
            jid1 = enq.enqueue(gokogeri.Job(class_name="PyDeadJob", queue="python", args=[1],
                                            retry=1, backtrace=True))  # fmt: skip
            raw1, _ = _retry_member(sk, str(jid1), retry_count=0)
            _make_due(sk, raw1)
            rec.wait([str(jid0), str(jid1)])
            wait_for(lambda: len(sk.raw_zset("dead")) == 2, 20, "two Python jobs in the dead set")
        [ruby_jid] = sk.ruby_json(
            "push.rb", stdin=json.dumps({"class": "FailJob", "queue": "ruby",
                                         "args": ["dead in ruby"], "retry": 0})
        )["jids"]  # fmt: skip
        wait_for(lambda: len(sk.raw_zset("dead")) == 3, 20, "Ruby's job in the dead set")
        py_dead = {e.job.jid: e for e in Api(cm).dead()}
    finally:
        cm.close()
    assert sk.raw_zset("retry") == []
    assert [r.jid for r in rec.ran].count(str(jid1)) == 2, "retry: 1 = one retry, then dead"

    ruby_dead = {e["jid"]: e for e in sk.ruby_json("api.rb", "dead")["dead"]}
    assert set(ruby_dead) == set(py_dead) == {jid0, jid1, ruby_jid}
    for jid, count in ((jid0, 0), (jid1, 1)):
        e = ruby_dead[jid]
        assert e["class"] == "PyDeadJob" and e["error_class"] == PY_ERROR
        assert e["error_message"] == "no more" and e["retry_count"] == count
        assert abs(e["times"]["at"] - time.time()) < 30, "a dead entry's score is its death"
    assert ruby_dead[jid0]["args"] == [0] and ruby_dead[jid1]["args"] == [1]
    assert isinstance(ruby_dead[jid1]["error_backtrace"], list)
    assert ruby_dead[ruby_jid]["error_class"] == "Interop::InteropError"
    assert ruby_dead[ruby_jid]["retry_count"] == 0
    # gokogeri reads Ruby's dead entry and its own the same way Ruby does.
    for jid, e in ruby_dead.items():
        job = py_dead[jid].job
        assert job.class_name == e["class"] and job.args == e["args"]
        assert job.error_class == e["error_class"] and job.retry_count == e["retry_count"]
        assert abs(py_dead[jid].score - e["score"]) < 0.001
    # Python's dead entries carry every field Ruby's own dead entry has.
    ruby_keys = set(ruby_dead[ruby_jid]["payload"])
    assert ruby_keys - set(ruby_dead[jid0]["payload"]) == set()


# --- 6. timestamps --------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["float", "ms"])
def test_times_of_python_jobs_in_ruby_api(sk: InteropEnv, fmt: Literal["float", "ms"]) -> None:
    """Python-enqueued (queued and scheduled) and Python-failed jobs show the right times in
    Sidekiq's API: float seconds on every version, integer ms (Config(timestamp_format="ms"),
    Sidekiq 8's own format) on 8."""
    if fmt == "ms" and sk.major < 8:
        pytest.skip("integer-ms timestamps are Sidekiq 8's format; 6/7 read them as seconds")
    cm = gredis.ConnManager(gredis.Config(url=sk.redis_url, timestamp_format=fmt))
    enq = gokogeri.Enqueuer(cm)
    rec = Recorder()
    router = gokogeri.Router()
    router.register("TimedJob", failing(rec, "timed"))
    stamp = int if fmt == "ms" else float
    try:
        t0 = time.time()
        parked = enq.enqueue(gokogeri.Job(class_name="TimedJob", queue="parked", args=["q"]))
        later = enq.enqueue_in(gokogeri.Job(class_name="TimedJob", queue="parked", args=["s"]), 300)
        with running(sk, ["python"], router, timestamp_format=fmt):
            failed = enq.enqueue(gokogeri.Job(class_name="TimedJob", queue="python", args=["f"]))
            raw, _ = _retry_member(sk, str(failed))
    finally:
        cm.close()
    t1 = time.time()
    for payload in (json.loads(sk.raw_list("queue:parked")[0]), json.loads(raw)):
        assert type(payload["created_at"]) is stamp and type(payload["enqueued_at"]) is stamp
    assert type(json.loads(raw)["failed_at"]) is stamp

    out = sk.ruby_json("api.rb", "queue:parked", "scheduled", "retries")

    def near(t: float | None, what: str) -> None:
        assert t is not None and t0 - 2 <= t <= t1 + 2, f"{what}: {t} not in [{t0}, {t1}]"

    [q] = out["queue:parked"]
    assert q["jid"] == parked
    near(q["times"]["created_at"], "queued created_at")
    near(q["times"]["enqueued_at"], "queued enqueued_at")
    assert 0 <= q["latency"] <= t1 - t0 + 5, f"Queue#latency {q['latency']}"
    [s] = out["scheduled"]
    assert s["jid"] == later
    near(s["times"]["created_at"], "scheduled created_at")
    assert abs(s["times"]["at"] - (t0 + 300)) < 5
    [e] = out["retries"]
    assert e["jid"] == failed
    for key in ("created_at", "enqueued_at", "failed_at"):
        near(e["times"][key], f"failed {key}")
    assert 15 - 1 <= e["times"]["at"] - e["times"]["failed_at"] <= 25 + 1
