"""Sidekiq 7/8 execution metrics written by gokogeri.metrics, checked in a real Redis.

The expected keys, fields, bitfield layout and TTLs below are read off Sidekiq's own tracker
(lib/sidekiq/metrics/tracking.rb and shared.rb at v7.3.2 and v8.1.7). interop/
test_metrics_interop.py checks the same data through the real Sidekiq::Metrics::Query.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any, cast

import pytest
import redis as redispy

import gokogeri
from gokogeri import Job
from gokogeri import redis as gredis
from gokogeri.events import JobEvent, Status
from gokogeri.keys import Keys
from gokogeri.metrics import BUCKET_BOUNDS_MS, SidekiqMetrics, bucket_index
from gokogeri.retry import Compat, RetryPolicy

# 2025-11-03 09:05:07 UTC: a one-digit day, hour and minute show every padding rule.
AT = datetime(2025, 11, 3, 9, 5, 7, tzinfo=UTC).timestamp()
FETCH = [a for i in range(26) for a in ("GET", "u16", f"#{i}")]


def ev(klass: str, status: Status = "done", seconds: float = 0.010, queue: str = "q") -> JobEvent:
    job = Job(class_name=klass, queue=queue, args=[1])
    return JobEvent(job=job, queue=queue, class_name=klass, status=status, seconds=seconds)


def hist(r: redispy.Redis, key: str) -> list[int]:
    """The 26 counters, read as Sidekiq's Histogram#fetch reads them."""
    client: Any = r  # redis-py leaves execute_command untyped
    return [int(x) for x in client.execute_command("BITFIELD_RO", key, *FETCH)]


def keys(r: redispy.Redis) -> list[str]:
    return sorted(k.decode() for k in cast(list[bytes], r.keys("*")))


def decoded(h: dict[Any, Any]) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in h.items()}


def test_sidekiq_8_keys_fields_histogram_and_ttls(r: redispy.Redis) -> None:
    m = SidekiqMetrics(compat="8")
    for _ in range(3):
        m.job_finished(ev("OkJob", seconds=0.010))  # 10 ms -> bucket 0 (< 20 ms)
    m.job_finished(ev("OkJob", seconds=0.3))  # 300 ms -> bucket 7 (< 335 ms)
    m.job_finished(ev("OkJob", "retry", seconds=5.0))  # failures: counted, not timed
    m.job_finished(ev("BadJob", "dead", seconds=1.0))
    m.job_finished(ev("BadJob", "drop", seconds=1.0))
    assert m.flush(r, now=AT) == 5

    want = {"OkJob|p": 5, "OkJob|f": 1, "OkJob|ms": 330, "BadJob|p": 2, "BadJob|f": 2}
    # %y%m%d|%-H:%M, and the same string minus its last digit (the 10-minute rollup).
    assert decoded(r.hgetall("j|251103|9:05")) == want
    assert decoded(r.hgetall("j|251103|9:0")) == want
    assert r.ttl("j|251103|9:05") == 8 * 3600
    assert r.ttl("j|251103|9:0") == 3 * 24 * 3600
    # h|Class-%-d-%-H:%-M; only successful runs, only classes that had one.
    gram = hist(r, "h|OkJob-3-9:5")
    assert gram[0] == 3 and gram[7] == 1 and sum(gram) == 4
    assert r.ttl("h|OkJob-3-9:5") == 8 * 3600
    assert keys(r) == [
        "h|OkJob-3-9:5",
        "j|251103|9:0",
        "j|251103|9:05",
    ]


def test_sidekiq_7_keys_and_histogram(r: redispy.Redis) -> None:
    m = SidekiqMetrics(compat="7")
    m.job_finished(ev("OkJob", seconds=0.021))  # 21 ms -> bucket 1
    m.job_finished(ev("OkJob", "retry"))
    m.flush(r, now=AT)
    # j|%Y%m%d|%-H:%-M and Class-%d-%H:%-M (zero-padded day and hour, bare minute)
    assert decoded(r.hgetall("j|20251103|9:5")) == {"OkJob|p": 2, "OkJob|f": 1, "OkJob|ms": 21}
    assert r.ttl("j|20251103|9:5") == 8 * 3600
    assert hist(r, "OkJob-03-09:5")[1] == 1
    assert r.ttl("OkJob-03-09:5") == 8 * 3600
    assert keys(r) == ["OkJob-03-09:5", "j|20251103|9:5"]


def test_two_digit_times_and_later_flushes_add_up(r: redispy.Redis) -> None:
    at = datetime(2025, 12, 24, 23, 47, 59, tzinfo=UTC).timestamp()
    m8, m7 = SidekiqMetrics(compat="8"), SidekiqMetrics(compat="7")
    for m in (m8, m7):
        m.job_finished(ev("A"))
        m.flush(r, now=at)
        m.job_finished(ev("A"))
        m.job_finished(ev("A", "dead"))
        m.flush(r, now=at)
    assert decoded(r.hgetall("j|251224|23:47")) == {"A|p": 3, "A|f": 1, "A|ms": 20}
    assert decoded(r.hgetall("j|251224|23:4")) == {"A|p": 3, "A|f": 1, "A|ms": 20}
    assert decoded(r.hgetall("j|20251224|23:47")) == {"A|p": 3, "A|f": 1, "A|ms": 20}
    assert hist(r, "h|A-24-23:47")[0] == 2
    assert hist(r, "A-24-23:47")[0] == 2


def test_activejob_wrapped_class_is_the_key(r: redispy.Redis) -> None:
    """JobEvent.class_name is ``wrapped || class``, the name Sidekiq's middleware keys on."""
    job = Job(class_name="Sidekiq::ActiveJob::Wrapper", queue="q", args=[], wrapped="SendMailJob")
    m = SidekiqMetrics()
    m.job_finished(JobEvent(job, "q", "SendMailJob", "done", 0.001))
    m.flush(r, now=AT)
    assert decoded(r.hgetall("j|251103|9:05")) == {"SendMailJob|p": 1, "SendMailJob|ms": 1}


def test_invalid_payloads_and_empty_flushes_write_nothing(r: redispy.Redis) -> None:
    m = SidekiqMetrics()
    assert m.flush(r, now=AT) == 0
    m.job_finished(JobEvent(None, "q", "", "invalid", 0.0))
    assert m.flush(r, now=AT) == 0
    assert r.dbsize() == 0


def test_off_for_sidekiq_6(r: redispy.Redis) -> None:
    m = SidekiqMetrics(compat="6")
    m.job_finished(ev("OkJob"))
    m.beat(r)
    m.close(r)
    assert not m.enabled
    assert r.dbsize() == 0


def test_histogram_counters_saturate_like_sidekiqs(r: redispy.Redis) -> None:
    """u16 counters with OVERFLOW SAT: a very busy minute stops at 65535, never wraps."""
    m = SidekiqMetrics()
    for _ in range(65_000):
        m.job_finished(ev("Busy", seconds=0.001))
    m.flush(r, now=AT)
    for _ in range(1_000):
        m.job_finished(ev("Busy", seconds=0.001))
    m.flush(r, now=AT)
    assert hist(r, "h|Busy-3-9:5")[0] == 65535
    assert decoded(r.hgetall("j|251103|9:05"))["Busy|p"] == 66_000


def test_bucket_bounds_are_sidekiqs() -> None:
    # ms < BUCKET_INTERVALS[i] picks bucket i; 335 s and beyond is "Slow" (index 25).
    assert len(BUCKET_BOUNDS_MS) == 25
    assert [bucket_index(x) for x in (0, 19.9, 20, 29, 30, 280, 334_999, 335_000, 1e9)] == [
        0, 0, 1, 1, 2, 7, 24, 25, 25,
    ]  # fmt: skip


def test_threads_counting_while_flushing_lose_nothing(r: redispy.Redis) -> None:
    m = SidekiqMetrics()
    per_thread, threads = 2_000, 4
    stop = threading.Event()

    def flusher() -> None:
        while not stop.is_set():
            m.flush(r, now=AT)

    def worker() -> None:
        for i in range(per_thread):
            m.job_finished(ev("T", "retry" if i % 10 == 0 else "done", seconds=0.0))

    f = threading.Thread(target=flusher)
    f.start()
    ws = [threading.Thread(target=worker) for _ in range(threads)]
    for w in ws:
        w.start()
    for w in ws:
        w.join()
    stop.set()
    f.join()
    m.flush(r, now=AT)
    got = decoded(r.hgetall("j|251103|9:05"))
    assert got["T|p"] == per_thread * threads
    assert got["T|f"] == per_thread * threads // 10
    assert sum(hist(r, "h|T-3-9:5")) == per_thread * threads * 9 // 10


def test_namespace_prefixes_keys_only(r: redispy.Redis) -> None:
    m = SidekiqMetrics(keys=Keys("ns"))
    m.job_finished(ev("A"))
    m.flush(r, now=AT)
    assert keys(r) == [
        "ns:h|A-3-9:5",
        "ns:j|251103|9:0",
        "ns:j|251103|9:05",
    ]


def test_bad_compat_is_refused() -> None:
    with pytest.raises(ValueError):
        SidekiqMetrics(compat="9")  # type: ignore[arg-type]  # the point: a wrong value


@pytest.mark.parametrize("compat", ["8", "7"])
def test_a_running_node_flushes_at_its_beats_and_at_stop(
    cm: gredis.ConnManager, r: redispy.Redis, compat: Compat
) -> None:
    """End to end: Node(observers=...) -> job_finished per job, beat(client), close(client)."""
    node = gokogeri.Node(
        gokogeri.nop_logger(),
        cm,
        heartbeat_interval=0.1,
        poll_interval_average=0.2,
        retry_policy=RetryPolicy(compat=compat),
    )
    metrics = SidekiqMetrics.attach(node)
    assert metrics.compat == compat
    assert SidekiqMetrics.attach(node) is metrics  # once per node
    ran = threading.Semaphore(0)

    def work(ctx: gokogeri.Context, job: gokogeri.Job) -> None:
        ran.release()
        if job.args[0] % 3 == 0:
            raise ValueError("every third fails")

    router = gokogeri.Router()
    router.register("NodeJob", work)
    router.register("Sidekiq::ActiveJob::Wrapper", work)
    node.process_queues(gokogeri.OrderedQueueSet(["m"]), router, 2)
    jobs = [gokogeri.Job(class_name="NodeJob", queue="m", args=[i], retry=False) for i in range(9)]
    jobs.append(
        gokogeri.Job(
            class_name="Sidekiq::ActiveJob::Wrapper", queue="m", args=[1], wrapped="MailerJob"
        )
    )
    gokogeri.Enqueuer(cm).enqueue_bulk(jobs)
    t = threading.Thread(target=node.run)
    t.start()
    try:
        for _ in jobs:
            assert ran.acquire(timeout=30)
    finally:
        node.stop(5)
        t.join(15)
    # Every run is flushed by the node's final close(); the minute may have turned meanwhile.
    totals: dict[str, int] = {}
    pattern = "j|20*" if compat == "7" else "j|[0-9][0-9][0-9][0-9][0-9][0-9]|*:[0-9][0-9]"
    for key in cast(list[bytes], r.keys(pattern)):
        for k, v in decoded(r.hgetall(key)).items():
            if not k.endswith("|ms"):
                totals[k] = totals.get(k, 0) + v
    assert totals == {"NodeJob|p": 9, "NodeJob|f": 3, "MailerJob|p": 1}
    prefix = "h|" if compat == "8" else ""
    grams = [k for k in keys(r) if k.startswith(prefix) and "Job-" in k]
    assert {k.rsplit("-", 2)[0] for k in grams} == {prefix + "NodeJob", prefix + "MailerJob"}
