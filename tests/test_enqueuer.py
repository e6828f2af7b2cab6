from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis as redispy

from gokogeri import Enqueuer, InvalidArgumentError, InvalidQueueNameError, Job
from gokogeri import redis as gredis


def only(r: redispy.Redis, key: str) -> dict[str, Any]:
    items = r.lrange(key, 0, -1)
    assert len(items) == 1
    return json.loads(items[0])  # type: ignore[no-any-return]


def test_enqueue_writes_a_sidekiq_payload(cm: gredis.ConnManager, r: redispy.Redis) -> None:
    before = time.time()
    jid = Enqueuer(cm).enqueue(Job(class_name="CriticalJob", queue="critical", args=[1, "x"]))
    assert jid is not None and re.fullmatch(r"[0-9a-f]{24}", jid)
    assert r.smembers("queues") == {b"critical"}
    payload = only(r, "queue:critical")
    assert payload["class"] == "CriticalJob" and payload["args"] == [1, "x"]
    assert payload["queue"] == "critical" and payload["jid"] == jid and payload["retry"] is True
    assert isinstance(payload["created_at"], float) and isinstance(payload["enqueued_at"], float)
    assert before <= payload["created_at"] <= payload["enqueued_at"] <= time.time()
    assert "at" not in payload


def test_no_args_still_writes_args(cm: gredis.ConnManager, r: redispy.Redis) -> None:
    Enqueuer(cm).enqueue(Job("NoArgs"))
    assert only(r, "queue:default")["args"] == []


def test_same_job_twice_gets_two_jids_and_is_not_mutated(
    cm: gredis.ConnManager, r: redispy.Redis
) -> None:
    job = Job("X", args=[1])
    e = Enqueuer(cm)
    a, b = e.enqueue(job), e.enqueue(job)
    assert a != b
    assert job.jid is None and job.enqueued_at is None
    explicit = Job("X", jid="0123456789abcdef01234567")
    assert e.enqueue(explicit) == "0123456789abcdef01234567"


def test_retry_values_written_exactly(cm: gredis.ConnManager, r: redispy.Redis) -> None:
    e = Enqueuer(cm)
    for value in (True, False, 0, 7):
        e.enqueue(Job("X", queue="r", retry=value))
    got = [json.loads(p)["retry"] for p in reversed(r.lrange("queue:r", 0, -1))]
    assert got == [True, False, 0, 7]
    assert [type(v) for v in got] == [bool, bool, int, int]
    with pytest.raises(ValueError, match="negative"):
        e.enqueue(Job("X", retry=-1))
    with pytest.raises(TypeError, match="retry"):
        e.enqueue(Job("X", retry="yes"))  # type: ignore[arg-type]


def test_millisecond_timestamps(redis_url: str, r: redispy.Redis) -> None:
    with gredis.ConnManager(gredis.Config(url=redis_url, timestamp_format="ms")) as cm:
        Enqueuer(cm).enqueue(Job("X"))
    payload = only(r, "queue:default")
    assert isinstance(payload["created_at"], int) and isinstance(payload["enqueued_at"], int)
    assert abs(payload["created_at"] / 1000 - time.time()) < 5


def test_existing_timestamp_keeps_its_form(cm: gredis.ConnManager, r: redispy.Redis) -> None:
    # A job first written by Sidekiq 8 (int ms) and pushed again by a float-seconds node.
    Enqueuer(cm).enqueue(Job("X", created_at=1795848102398, enqueued_at=1795848102398))
    payload = only(r, "queue:default")
    assert payload["created_at"] == 1795848102398
    assert isinstance(payload["enqueued_at"], int) and payload["enqueued_at"] > 1795848102398


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ([(1,)], "args[0] is a tuple"),
        ([datetime.now()], "args[0] is a datetime"),
        ([float("nan")], "nan"),
    ],
)
def test_bad_args_never_reach_redis(
    cm: gredis.ConnManager, r: redispy.Redis, args: list[Any], fragment: str
) -> None:
    with pytest.raises(InvalidArgumentError, match=re.escape(fragment)):
        Enqueuer(cm).enqueue(Job("X", args=args))
    with pytest.raises(InvalidArgumentError):
        Enqueuer(cm).enqueue_bulk([Job("X", args=[1]), Job("X", args=args)])
    assert r.keys("*") == []


@pytest.mark.parametrize("name", ["", "has space", "slash/es", "ünicode", "q\n"])
def test_queue_names_the_web_ui_refuses(cm: gredis.ConnManager, name: str) -> None:
    with pytest.raises(InvalidQueueNameError):
        Enqueuer(cm).enqueue(Job("X", queue=name) if name else Job("X", queue="bad name"))


def test_enqueue_in_and_at(cm: gredis.ConnManager, r: redispy.Redis) -> None:
    e = Enqueuer(cm)
    before = time.time()
    jid = e.enqueue_in(Job("Later", queue="q", args=[1]), 60)
    jid2 = e.enqueue_at(Job("Later", queue="q"), datetime.now(UTC) + timedelta(hours=1))
    (member, score), (member2, score2) = r.zrange("schedule", 0, -1, withscores=True)
    payload = json.loads(member)
    assert payload["jid"] == jid and payload["args"] == [1]
    assert "enqueued_at" not in payload and "at" not in payload
    assert before + 60 <= score <= time.time() + 60
    assert json.loads(member2)["jid"] == jid2 and score2 == pytest.approx(time.time() + 3600, abs=5)
    assert not r.exists("queue:q")  # Sidekiq does not SADD queues for scheduled jobs


def test_past_times_push_immediately(cm: gredis.ConnManager, r: redispy.Redis) -> None:
    e = Enqueuer(cm)
    e.enqueue_at(Job("Now", queue="q"), time.time() - 10)
    e.enqueue_in(Job("Now", queue="q"), 0)
    assert r.llen("queue:q") == 2 and r.zcard("schedule") == 0


def test_namespace_prefixes_keys_only(redis_url: str, r: redispy.Redis) -> None:
    with gredis.ConnManager(gredis.Config(url=redis_url, namespace="app")) as cm:
        e = Enqueuer(cm)
        e.enqueue(Job("X", queue="q"))
        e.enqueue_in(Job("X", queue="q"), 30)
        e.enqueue_bulk([Job("X", queue="b")])
    assert set(r.keys("*")) == {b"app:queues", b"app:queue:q", b"app:queue:b", b"app:schedule"}
    assert r.smembers("app:queues") == {b"q", b"b"}  # members are not prefixed
    assert json.loads(r.lindex("app:queue:q", 0))["queue"] == "q"


def test_bulk_100k_lands_exactly_once(cm: gredis.ConnManager, r: redispy.Redis) -> None:
    n = 100_000
    jobs = [Job("Bulk", queue=("a" if i % 3 else "b"), args=[i]) for i in range(n)]
    jids = Enqueuer(cm).enqueue_bulk(jobs)
    assert len(jids) == n and len(set(jids)) == n
    payloads = [json.loads(p) for q in ("a", "b") for p in r.lrange(f"queue:{q}", 0, -1)]
    assert len(payloads) == n
    assert sorted(p["args"][0] for p in payloads) == list(range(n))
    assert {p["jid"] for p in payloads} == set(jids)
    assert all(p["queue"] == ("a" if p["args"][0] % 3 else "b") for p in payloads)
    # FIFO within a queue: the first enqueued is popped first (RPOP end).
    assert json.loads(r.rpop("queue:b"))["args"] == [0]
    assert r.smembers("queues") == {b"a", b"b"}


def test_client_middleware_changes_and_stops_pushes(
    cm: gredis.ConnManager, r: redispy.Redis
) -> None:
    e = Enqueuer(cm)
    seen: list[str] = []

    def tag(job: Job, queue: str, call_next: Callable[[], Any]) -> Any:
        seen.append(queue)
        job["tags"] = ["from-python"]
        job.queue = "rerouted"
        return call_next()

    def block_secret(job: Job, queue: str, call_next: Callable[[], Any]) -> Any:
        if job.class_name == "Secret":
            return None  # stop the push
        return call_next()

    e.middleware.add(tag)
    e.middleware.add(block_secret)
    assert e.enqueue(Job("Secret")) is None
    jid = e.enqueue(Job("Open", queue="q"))
    assert jid is not None
    payload = only(r, "queue:rerouted")
    assert payload["tags"] == ["from-python"] and payload["jid"] == jid
    assert seen == ["default", "q"]
    assert e.enqueue_bulk([Job("Secret"), Job("Open")])[0] is None
    assert r.llen("queue:rerouted") == 2
    assert e.enqueue_in(Job("Secret"), 10) is None and r.zcard("schedule") == 0


def test_middleware_chain_order_and_editing() -> None:
    from gokogeri import Chain

    calls: list[str] = []

    def mk(name: str) -> Callable[[Job, str, Callable[[], Any]], Any]:
        def mw(job: Job, queue: str, call_next: Callable[[], Any]) -> Any:
            calls.append(name)
            return call_next()

        mw.__name__ = name
        return mw

    a, b, c, d = mk("a"), mk("b"), mk("c"), mk("d")
    chain: Chain[Any] = Chain()
    chain.add(a)
    chain.add(c)
    chain.insert_before(c, b)
    chain.insert_after(c, d)
    chain.prepend(d)
    assert chain.invoke((Job("X"), "q"), lambda: "done") == "done"
    assert calls == ["d", "a", "b", "c"]
    chain.remove(a)
    assert list(chain) == [d, b, c]
    with pytest.raises(ValueError, match="not in this middleware chain"):
        chain.insert_after(a, b)


def test_middleware_that_raises_pushes_nothing(cm: gredis.ConnManager, r: redispy.Redis) -> None:
    e = Enqueuer(cm)

    def broken(job: Job, queue: str, call_next: Callable[[], Any]) -> Any:
        raise RuntimeError("nope")

    e.middleware.add(broken)
    with pytest.raises(RuntimeError):
        e.enqueue(Job("X"))
    assert r.keys("*") == []


def test_config_defaults_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOKOGERI_REDIS_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert gredis.Config().url == "redis://localhost:6379/0"
    monkeypatch.setenv("REDIS_URL", "redis://a:1/2")
    assert gredis.Config().url == "redis://a:1/2"
    monkeypatch.setenv("GOKOGERI_REDIS_URL", "redis://b:1/3")
    assert gredis.Config().url == "redis://b:1/3"
    with pytest.raises(ValueError, match="timestamp_format"):
        gredis.Config(timestamp_format="iso")  # type: ignore[arg-type]


def test_credentials_never_in_repr() -> None:
    cfg = gredis.Config(url="redis://user:s3cret@host:6379/1")
    assert "s3cret" not in cfg.redacted_url()
    cm = gredis.ConnManager(cfg)
    assert "s3cret" not in repr(cm)
    cm.close()


def test_unix_socket_and_auth(tmp_path: Any) -> None:
    from gokogeri.testing import RedisServer

    sock = tmp_path / "r.sock"
    with RedisServer(extra_args=["--unixsocket", str(sock), "--requirepass", "pw"]):
        with gredis.ConnManager(gredis.Config(url=f"unix://:pw@{sock}?db=2")) as cm:
            Enqueuer(cm).enqueue(Job("X"))
        r = redispy.Redis(unix_socket_path=str(sock), password="pw", db=2)
        assert r.llen("queue:default") == 1
        r.close()


def test_enqueue_many_is_push_bulk(cm: gredis.ConnManager, r: redispy.Redis) -> None:
    args_list = [[i, "ünï", {"k": [1.5, None, True]}] for i in range(2500)]
    template = Job("Bulk", queue="many", retry=3, tags=["t"], backtrace=True)
    jids = Enqueuer(cm).enqueue_many(template, args_list)
    assert len(set(jids)) == 2500 and all(re.fullmatch(r"[0-9a-f]{24}", j or "") for j in jids)
    raw = r.lrange("queue:many", 0, -1)[::-1]  # oldest first
    payloads = [json.loads(p) for p in raw]
    assert [p["args"] for p in payloads] == args_list
    assert [p["jid"] for p in payloads] == jids
    first = payloads[0]
    assert first["class"] == "Bulk" and first["retry"] == 3 and first["tags"] == ["t"]
    assert first["backtrace"] is True and first["queue"] == "many"
    assert {p["created_at"] for p in payloads} == {first["created_at"]}  # one stamp, as push_bulk
    assert isinstance(first["enqueued_at"], float)
    # byte-compatible with the general encoder
    assert raw[0].decode() == Job.decode(raw[0]).encode()
    assert template.jid is None and template.args == []


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [
        ((1, 2), "job 1: job args must be a list"),
        ([(1, 2)], "job 1: args[0] is a tuple"),
        ([{1: "x"}], "job 1: args[0] has a key 1"),
        ([float("nan")], "job 1: args[0] is nan"),
        ([{2, 3}], "job 1: args[0] is a set"),
    ],
)
def test_enqueue_many_refuses_bad_args_and_pushes_nothing(
    cm: gredis.ConnManager, r: redispy.Redis, bad: Any, fragment: str
) -> None:
    with pytest.raises(InvalidArgumentError, match=re.escape(fragment)):
        Enqueuer(cm).enqueue_many(Job("X"), [[1], bad, [3]])
    assert r.keys("*") == []


def test_enqueue_many_runs_middleware_per_job(cm: gredis.ConnManager, r: redispy.Redis) -> None:
    e = Enqueuer(cm)
    e.middleware.add(lambda job, queue, call_next: None if job.args == [2] else call_next())
    jids = e.enqueue_many(Job("X"), [[1], [2], [3]])
    assert jids[1] is None and jids[0] and jids[2]
    assert r.llen("queue:default") == 2
    with pytest.raises(ValueError, match="own jid"):
        e.enqueue_many(Job("X", jid="a" * 24), [[1]])


def test_bulk_of_similar_jobs_matches_the_general_path(cm: gredis.ConnManager, r: redispy.Redis) -> None:
    e = Enqueuer(cm)
    same = [Job("S", queue="a", args=[i], retry=1) for i in range(3)]
    mixed = [Job("S", queue="b", args=[0], retry=1), Job("S", queue="b", args=[1], retry=True)]
    assert all(e.enqueue_bulk(same)) and all(e.enqueue_bulk(mixed))
    a = [json.loads(p) for p in r.lrange("queue:a", 0, -1)[::-1]]
    b = [json.loads(p) for p in r.lrange("queue:b", 0, -1)[::-1]]
    assert [p["args"] for p in a] == [[0], [1], [2]] and {p["retry"] for p in a} == {1}
    assert [type(p["retry"]) for p in b] == [int, bool]  # never merged into one template
    assert set(a[0]) == set(b[0])  # same fields either way
