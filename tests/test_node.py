"""The node runtime against a real Redis: running, failing, retrying, stopping."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis as redispy

import gokogeri
from gokogeri import Enqueuer, Job, OrderedQueueSet, WorkerFunc
from gokogeri import redis as gredis
from gokogeri.retry import RetryPolicy, decompress_backtrace
from tests.conftest import NodeThread, wait_for

Work = Callable[[gokogeri.Context, Job], object]


@pytest.fixture
def make_node(cm: gredis.ConnManager) -> Iterator[Callable[..., NodeThread]]:
    running: list[NodeThread] = []

    def make(
        work: Work | gokogeri.Worker,
        queues: list[str] | None = None,
        instances: int = 3,
        **kwargs: Any,
    ) -> NodeThread:
        kwargs.setdefault("heartbeat_interval", 0.2)
        kwargs.setdefault("poll_interval_average", 0.2)
        node = gokogeri.Node(gokogeri.nop_logger(), cm, **kwargs)
        worker = work if hasattr(work, "work") else WorkerFunc(work)  # type: ignore[arg-type]
        node.process_queues(OrderedQueueSet(queues or ["default"]), worker, instances)
        nt = NodeThread(node)
        running.append(nt)
        return nt.__enter__()

    yield make
    for nt in running:
        nt.__exit__(None, None, None)


def entries(r: redispy.Redis, zset: str) -> list[tuple[dict[str, Any], float]]:
    return [(json.loads(m), s) for m, s in r.zrange(zset, 0, -1, withscores=True)]


def test_runs_jobs_with_exact_args(
    cm: gredis.ConnManager, r: redispy.Redis, make_node: Any
) -> None:
    seen: list[tuple[str | None, list[Any]]] = []
    make_node(lambda ctx, job: seen.append((job.jid, job.args)))
    args = [1, "two", {"k": [1.5, None, True]}, "ünï ✓"]
    jid = Enqueuer(cm).enqueue(Job("Anything", args=args))
    wait_for(lambda: seen)
    assert seen == [(jid, args)]
    # acknowledged: nothing left in the working lists
    wait_for(lambda: not r.keys("gokogeri:working:*"))


def test_failure_goes_to_retry_with_sidekiq_fields(
    cm: gredis.ConnManager, r: redispy.Redis, make_node: Any
) -> None:
    def boom(ctx: gokogeri.Context, job: Job) -> None:
        raise KeyError("missing thing")

    make_node(boom)
    before = time.time()
    jid = Enqueuer(cm).enqueue(Job("Boom", args=[1], backtrace=True, tags=["t"], custom={"x": 1}))
    ((entry, score),) = wait_for(lambda: entries(r, "retry"))
    assert entry["jid"] == jid and entry["retry_count"] == 0
    assert entry["error_class"] == "KeyError" and entry["error_message"] == "'missing thing'"
    assert before <= entry["failed_at"] <= time.time() and "retried_at" not in entry
    assert entry["tags"] == ["t"] and entry["custom"] == {"x": 1}
    # first retry: 0**4 + 15 + rand(10 * 1) seconds
    assert entry["failed_at"] + 15 <= score < entry["failed_at"] + 25
    lines = decompress_backtrace(entry["error_backtrace"])
    assert any("in `boom'" in line for line in lines)
    assert "\n" not in entry["error_backtrace"]  # strict base64


def test_retry_runs_again_and_counts(
    cm: gredis.ConnManager, r: redispy.Redis, make_node: Any
) -> None:
    attempts: list[int | None] = []

    def flaky(ctx: gokogeri.Context, job: Job) -> None:
        attempts.append(job.retry_count)
        if len(attempts) < 3:
            raise RuntimeError(f"attempt {len(attempts)}")

    make_node(flaky)
    jid = Enqueuer(cm).enqueue(Job("Flaky"))
    for expected_count in (0, 1):
        (member,) = wait_for(
            lambda n=expected_count: [  # type: ignore[misc]
                m for m in r.zrange("retry", 0, -1) if json.loads(m)["retry_count"] == n
            ]
        )
        entry = json.loads(member)
        assert entry["jid"] == jid
        # Bring the retry forward instead of waiting 15+ s; the poller moves it.
        assert r.zadd("retry", {member: time.time()}, xx=True, ch=True) == 1
        if expected_count == 1:
            assert entry["retried_at"] >= entry["failed_at"]
    wait_for(lambda: len(attempts) == 3)
    assert attempts == [None, 0, 1]
    assert r.zcard("retry") == 0 and r.zcard("dead") == 0


@pytest.mark.parametrize(
    ("retry", "where"), [(0, "dead"), (False, "dropped"), (2, "retry"), (True, "retry")]
)
def test_retry_option_semantics(
    cm: gredis.ConnManager, r: redispy.Redis, make_node: Any, retry: Any, where: str
) -> None:
    failed = threading.Event()

    def fail(ctx: gokogeri.Context, job: Job) -> None:
        failed.set()
        raise ValueError("no")

    make_node(fail)
    Enqueuer(cm).enqueue(Job("F", retry=retry))
    assert failed.wait(5)
    if where == "dropped":
        time.sleep(0.3)
        assert r.zcard("retry") == 0 and r.zcard("dead") == 0
        wait_for(lambda: int(r.get("stat:failed") or 0) == 1)
    else:
        ((entry, _),) = wait_for(lambda: entries(r, where))
        assert entry["retry"] is retry or entry["retry"] == retry
        assert type(entry["retry"]) is type(retry)


def test_exhausted_retries_go_dead_or_drop(
    cm: gredis.ConnManager, r: redispy.Redis, make_node: Any
) -> None:
    def fail(ctx: gokogeri.Context, job: Job) -> None:
        raise ValueError("still failing")

    make_node(fail)
    e = Enqueuer(cm)
    # Already retried twice with retry: 2 -> this failure exhausts it.
    e.enqueue(Job("F", jid="a" * 24, retry=2, retry_count=1, failed_at=1.5))
    e.enqueue(Job("F", jid="b" * 24, retry=2, retry_count=1, failed_at=1.5, dead=False))
    ((entry, score),) = wait_for(lambda: entries(r, "dead"))
    assert entry["jid"] == "a" * 24 and entry["retry_count"] == 2 and entry["failed_at"] == 1.5
    assert abs(score - time.time()) < 5
    time.sleep(0.3)
    assert r.zcard("retry") == 0 and r.zcard("dead") == 1


def test_retry_queue_and_ms_timestamps(redis_url: str, r: redispy.Redis) -> None:
    with gredis.ConnManager(gredis.Config(url=redis_url, timestamp_format="ms")) as cm:
        node = gokogeri.Node(gokogeri.nop_logger(), cm, heartbeat_interval=0.2)

        def fail(ctx: gokogeri.Context, job: Job) -> None:
            raise ValueError("x")

        node.process_queues(OrderedQueueSet(["default"]), WorkerFunc(fail), 1)
        with NodeThread(node):
            # A job first written by Sidekiq 8 (int ms) and one by Sidekiq 6 (float s).
            Enqueuer(cm).enqueue(
                Job("F", jid="c" * 24, retry_queue="elsewhere", created_at=1795848102398)
            )
            ((entry, _),) = wait_for(lambda: entries(r, "retry"))
    assert entry["queue"] == "elsewhere" and entry["retry_queue"] == "elsewhere"
    assert entry["created_at"] == 1795848102398
    assert isinstance(entry["failed_at"], int) and abs(entry["failed_at"] / 1000 - time.time()) < 10


def test_dead_set_trimmed_by_size_and_age(
    cm: gredis.ConnManager, r: redispy.Redis, make_node: Any
) -> None:
    old = time.time() - 200 * 24 * 3600
    r.zadd("dead", {json.dumps({"class": "Old", "args": [], "jid": "old"}): old})

    def fail(ctx: gokogeri.Context, job: Job) -> None:
        raise ValueError("x")

    make_node(fail, retry_policy=RetryPolicy(dead_max_jobs=5))
    Enqueuer(cm).enqueue_bulk([Job("F", retry=0, args=[i]) for i in range(10)])
    wait_for(lambda: int(r.get("stat:failed") or 0) == 10)
    dead = entries(r, "dead")
    # Sidekiq's ZREMRANGEBYRANK 0 -N keeps the newest N-1; the 6-month-old entry is gone.
    assert len(dead) == 4
    assert all(e["class"] == "F" for e, _ in dead)


def test_unknown_class_is_a_retryable_failure(
    cm: gredis.ConnManager, r: redispy.Redis, make_node: Any
) -> None:
    router = gokogeri.Router()
    router.register("Known", lambda ctx, job: None)
    make_node(router)
    Enqueuer(cm).enqueue(Job("myapp.Unknown", args=[1]))
    ((entry, _),) = wait_for(lambda: entries(r, "retry"))
    assert entry["error_class"] == "gokogeri.errors.UnknownJobClassError"
    assert "myapp.Unknown" in entry["error_message"]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"args":[1],"jid":"x"}', "'class'"),
        (b'["a", "list"]', "JSON object"),
    ],
)
def test_garbage_goes_dead_and_node_keeps_running(
    cm: gredis.ConnManager, r: redispy.Redis, make_node: Any, payload: bytes, message: str
) -> None:
    seen: list[str | None] = []
    make_node(lambda ctx, job: seen.append(job.jid))
    r.lpush("queue:default", payload)
    ((member, _),) = wait_for(lambda: r.zrange("dead", 0, -1, withscores=True))
    if payload.startswith(b'{"args'):
        body = json.loads(member)
        assert message in body["error_message"] and body["error_class"] == "InvalidPayloadError"
    else:
        assert member == payload  # raw string kept, as Sidekiq does
    jid = Enqueuer(cm).enqueue(Job("After"))
    wait_for(lambda: seen == [jid])


def test_stats_and_heartbeat(cm: gredis.ConnManager, r: redispy.Redis, make_node: Any) -> None:
    release = threading.Event()

    def work(ctx: gokogeri.Context, job: Job) -> None:
        if job.class_name == "Hold":
            release.wait(10)
        elif job.class_name == "Bad":
            raise ValueError("bad")

    nt = make_node(work, queues=["default", "low"], instances=4, tag="tests", labels=["py"])
    e = Enqueuer(cm)
    e.enqueue_bulk([Job("Ok") for _ in range(5)] + [Job("Bad", retry=False) for _ in range(2)])
    e.enqueue(Job("Hold", queue="low", args=["secret"]))
    ident = nt.node.identity
    work_entry = wait_for(lambda: r.hgetall(f"{ident}:work"))
    assert r.hgetall(f"{ident}:workers") == work_entry
    ((_tid, raw),) = work_entry.items()
    entry = json.loads(raw)
    assert entry["queue"] == "low" and isinstance(entry["run_at"], int)
    assert json.loads(entry["payload"])["class"] == "Hold"
    h = wait_for(lambda: (x := r.hgetall(ident)) and x[b"busy"] == b"1" and x)
    assert h[b"quiet"] == b"false" and h[b"concurrency"] == b"4"
    assert int(h[b"rss"]) > 0 and int(h[b"rtt_us"]) >= 0 and float(h[b"beat"]) > time.time() - 5
    info = json.loads(h[b"info"])
    assert info["concurrency"] == 4 and info["queues"] == ["default", "low"]
    assert info["tag"] == "tests" and info["labels"] == ["py"] and info["identity"] == ident
    assert info["embedded"] is False and "version" in info
    assert 0 < r.ttl(ident) <= 60
    assert r.sismember("processes", ident)
    wait_for(lambda: r.get("stat:processed") == b"7" and r.get("stat:failed") == b"2")
    day = time.strftime("%Y-%m-%d", time.gmtime())
    assert r.get(f"stat:processed:{day}") == b"7" and r.ttl(f"stat:processed:{day}") > 157_000_000
    release.set()
    nt.__exit__(None, None, None)
    assert r.get("stat:processed") == b"8"  # flushed at exit
    assert not r.sismember("processes", ident) and not r.exists(f"{ident}:work")


def test_quiet_and_stop_by_signal_list(
    cm: gredis.ConnManager, r: redispy.Redis, make_node: Any
) -> None:
    seen: list[str | None] = []
    nt = make_node(lambda ctx, job: seen.append(job.jid))
    ident = nt.node.identity
    wait_for(lambda: r.sismember("processes", ident))
    # What the Web UI's Quiet button does.
    r.lpush(f"{ident}-signals", "TSTP")
    r.expire(f"{ident}-signals", 60)
    wait_for(lambda: r.hget(ident, "quiet") == b"true")
    Enqueuer(cm).enqueue(Job("Late"))
    time.sleep(0.5)
    assert seen == [] and r.llen("queue:default") == 1
    r.lpush(f"{ident}-signals", "TERM")
    assert nt.node.wait_stopped(10)
    nt.thread.join(5)
    assert not nt.thread.is_alive()
    assert not r.sismember("processes", ident)


def test_stop_requeues_running_and_prefetched_jobs(
    cm: gredis.ConnManager, r: redispy.Redis
) -> None:
    started = threading.Event()
    cancelled: list[bool] = []

    def stubborn(ctx: gokogeri.Context, job: Job) -> None:
        if job.class_name == "Stubborn":
            started.set()
            time.sleep(6)  # ignores ctx.cancelled entirely
        else:
            started.set()
            cancelled.append(ctx.cancelled.wait(10))

    node = gokogeri.Node(gokogeri.nop_logger(), cm, heartbeat_interval=0.2)
    node.process_queues(OrderedQueueSet(["default"]), WorkerFunc(stubborn), 2)
    e = Enqueuer(cm)
    e.enqueue(Job("Stubborn", jid="1" * 24))
    e.enqueue(Job("Polite", jid="2" * 24))
    e.enqueue_bulk([Job("Queued", args=[i]) for i in range(3)])
    originals = set(r.lrange("queue:default", 0, -1))
    t = threading.Thread(target=node.run)
    t.start()
    assert started.wait(5)
    wait_for(lambda: len(r.hgetall(f"{node.identity}:work")) == 2)
    t0 = time.monotonic()
    node.stop(timeout=0.5)
    elapsed = time.monotonic() - t0
    t.join(5)
    assert elapsed < 0.5 + 3.0 + 1.0  # grace + cancel grace, even though Stubborn ignores it
    assert cancelled == [True]
    # Every job is back, byte for byte, and nothing is left in working lists.
    assert set(r.lrange("queue:default", 0, -1)) == originals
    assert r.llen("queue:default") == 5
    assert not r.keys("gokogeri:working:*") and not r.hlen("gokogeri:working")
    # Requeued at the front: the first jobs fetched come out first again.
    assert json.loads(r.rpop("queue:default"))["jid"] == "1" * 24
    assert json.loads(r.rpop("queue:default"))["jid"] == "2" * 24


def test_graceful_stop_lets_jobs_finish(cm: gredis.ConnManager, r: redispy.Redis) -> None:
    done: list[int] = []

    def slow(ctx: gokogeri.Context, job: Job) -> None:
        time.sleep(0.3)
        done.append(job.args[0])

    node = gokogeri.Node(gokogeri.nop_logger(), cm)
    node.process_queues(OrderedQueueSet(["default"]), WorkerFunc(slow), 2)
    Enqueuer(cm).enqueue_bulk([Job("S", args=[i]) for i in range(2)])
    with NodeThread(node):
        wait_for(lambda: len(node._busy_snapshot()) == 2)
    assert sorted(done) == [0, 1] and r.llen("queue:default") == 0


@pytest.mark.parametrize("fetch", ["reliable", "basic"])
def test_several_pools_in_one_node(cm: gredis.ConnManager, r: redispy.Redis, fetch: str) -> None:
    seen: dict[str, list[str]] = {"a": [], "b": []}
    lock = threading.Lock()

    def rec(pool: str) -> WorkerFunc:
        def work(ctx: gokogeri.Context, job: Job) -> None:
            with lock:
                seen[pool].append(f"{ctx.queue}:{threading.current_thread().name.split('-')[0]}")

        return WorkerFunc(work)

    node = gokogeri.Node(gokogeri.nop_logger(), cm, fetch=fetch, heartbeat_interval=0.2)  # type: ignore[arg-type]
    node.process_queues(OrderedQueueSet(["critical"]), rec("a"), 1)
    qs = gokogeri.RandomQueueSet()
    qs.add("low", 1)
    qs.add("high", 3)
    node.process_queues(qs, rec("b"), 5)
    e = Enqueuer(cm)
    e.enqueue_bulk([Job("C", queue="critical") for _ in range(20)])
    e.enqueue_bulk(
        [Job("L", queue="low") for _ in range(20)] + [Job("H", queue="high") for _ in range(20)]
    )
    with NodeThread(node):
        wait_for(lambda: len(seen["a"]) == 20 and len(seen["b"]) == 40)
        h = json.loads(r.hget(node.identity, "info"))
        assert h["concurrency"] == 6 and r.hget(node.identity, "concurrency") == b"6"
        assert h["queues"] == ["critical", "low", "high"]
        assert h["weights"] == [{"critical": 0}, {"low": 1, "high": 3}]
    assert set(seen["a"]) == {"critical:pool0"}
    assert {s.split(":")[0] for s in seen["b"]} == {"low", "high"}
    assert {s.split(":")[1] for s in seen["b"]} == {"pool1"}


def test_server_middleware_wraps_and_can_skip(cm: gredis.ConnManager, make_node: Any) -> None:
    ran: list[str] = []
    order: list[str] = []

    def audit(ctx: gokogeri.Context, job: Job, queue: str, call_next: Callable[[], Any]) -> Any:
        order.append(f"before {job.class_name}")
        if job.class_name == "Skip":
            return None
        result = call_next()
        order.append(f"after {job.class_name}")
        return result

    chain = gokogeri.ServerChain()
    chain.add(audit)
    make_node(lambda ctx, job: ran.append(job.class_name), instances=1, middleware=chain)
    e = Enqueuer(cm)
    e.enqueue(Job("Skip"))
    wait_for(lambda: order == ["before Skip"])
    e.enqueue(Job("Run"))
    wait_for(lambda: ran == ["Run"])
    wait_for(lambda: order == ["before Skip", "before Run", "after Run"])


def test_basic_fetch_runs_and_fails_like_sidekiq(
    cm: gredis.ConnManager, r: redispy.Redis, make_node: Any
) -> None:
    seen: list[str] = []

    def work(ctx: gokogeri.Context, job: Job) -> None:
        if job.class_name == "Bad":
            raise ValueError("bad")
        seen.append(job.class_name)

    make_node(work, fetch="basic")
    e = Enqueuer(cm)
    e.enqueue(Job("Good"))
    e.enqueue(Job("Bad"))
    wait_for(lambda: seen == ["Good"] and r.zcard("retry") == 1)
    assert not r.keys("gokogeri:working*")


def test_run_needs_pools_and_stop_before_run_returns(cm: gredis.ConnManager) -> None:
    node = gokogeri.Node(gokogeri.nop_logger(), cm)
    with pytest.raises(RuntimeError, match="process_queues"):
        node.run()
    node.process_queues(OrderedQueueSet(["q"]), WorkerFunc(lambda c, j: None), 1)
    node.stop(1)
    node.run()  # returns at once
    with pytest.raises(RuntimeError, match="before run"):
        node.process_queues(OrderedQueueSet(["q"]), WorkerFunc(lambda c, j: None), 1)
    fresh = gokogeri.Node(gokogeri.nop_logger(), cm)
    with pytest.raises(ValueError, match="instances"):
        fresh.process_queues(OrderedQueueSet(["q"]), WorkerFunc(lambda c, j: None), 0)
    with pytest.raises(TypeError, match="not a Worker"):
        fresh.process_queues(OrderedQueueSet(["q"]), object(), 1)  # type: ignore[arg-type]


@pytest.mark.parametrize("fetch", ["reliable", "basic"])
def test_namespace_applies_to_every_runtime_key(redis_url: str, r: redispy.Redis, fetch: str) -> None:
    seen: list[str] = []

    def work(ctx: gokogeri.Context, job: Job) -> None:
        if job.class_name == "Bad":
            raise ValueError("x")
        seen.append(job.class_name)

    with gredis.ConnManager(gredis.Config(url=redis_url, namespace="ns")) as cm:
        node = gokogeri.Node(gokogeri.nop_logger(), cm, fetch=fetch, heartbeat_interval=0.2)  # type: ignore[arg-type]
        node.process_queues(OrderedQueueSet(["q"]), WorkerFunc(work), 2)
        e = Enqueuer(cm)
        with NodeThread(node):
            e.enqueue(Job("Good", queue="q"))
            e.enqueue(Job("Bad", queue="q"))
            e.enqueue_in(Job("Later", queue="q"), 0.3)
            wait_for(lambda: seen == ["Good", "Later"] and r.zcard("ns:retry") == 1)
            assert r.sismember("ns:processes", node.identity)  # members are not prefixed
            assert r.exists(f"ns:{node.identity}")
        wait_for(lambda: r.get("ns:stat:processed") == b"3")
    unprefixed = [k for k in r.keys("*") if not k.startswith(b"ns:")]
    assert unprefixed == []
