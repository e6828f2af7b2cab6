"""Real Ruby Sidekiq 6.4.1's own API sees a Python node as one of its processes."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import redis as redispy

import gokogeri
from gokogeri import Enqueuer, Job, OrderedQueueSet, WorkerFunc
from gokogeri import redis as gredis
from tests.conftest import NodeThread, SidekiqProcess, needs_sidekiq, ruby, wait_for

pytestmark = needs_sidekiq

PROCESSES = """
out = Sidekiq::ProcessSet.new.map { |p| p.instance_variable_get(:@attribs) }
puts JSON.generate(out)
"""
WORKERS = """
out = []
Sidekiq::Workers.new.each { |pid, tid, work| out << { "pid" => pid, "tid" => tid, "work" => work } }
puts JSON.generate(out)
"""
STATS = """
s = Sidekiq::Stats.new
puts JSON.generate({ "processed" => s.processed, "failed" => s.failed, "retry" => s.retry_size, "dead" => s.dead_size })
"""
RETRIES = """
out = Sidekiq::RetrySet.new.map do |e|
  { "klass" => e.klass, "jid" => e.jid, "args" => e.args, "error_class" => e["error_class"],
    "error_message" => e["error_message"], "retry_count" => e["retry_count"],
    "backtrace" => e.error_backtrace, "failed_at" => e["failed_at"], "queue" => e.queue }
end
puts JSON.generate(out)
"""


def rb(script: str, url: str) -> Any:
    return json.loads(ruby(script, url))


def test_process_set_workers_and_stats(
    cm: gredis.ConnManager, r: redispy.Redis, redis_url: str
) -> None:
    release = threading.Event()

    def work(ctx: gokogeri.Context, job: Job) -> None:
        if job.class_name == "Hold":
            release.wait(20)
        elif job.class_name == "Bad":
            raise ValueError("bad")

    node = gokogeri.Node(gokogeri.nop_logger(), cm, heartbeat_interval=0.3, tag="py-tests")
    node.process_queues(OrderedQueueSet(["python", "default"]), WorkerFunc(work), 7)
    e = Enqueuer(cm)
    with NodeThread(node):
        e.enqueue_bulk(
            [Job("Fine", queue="python") for _ in range(4)]
            + [Job("Bad", queue="python", retry=False)]
        )
        jid = e.enqueue(Job("Hold", queue="python", args=[42]))
        wait_for(lambda: r.hget(node.identity, "busy") == b"1")
        wait_for(lambda: r.get("stat:processed") == b"5")
        (proc,) = rb(PROCESSES, redis_url)
        assert proc["identity"] == node.identity
        assert proc["concurrency"] == 7 and proc["busy"] == 1
        assert proc["queues"] == ["python", "default"] and proc["tag"] == "py-tests"
        assert proc["quiet"] == "false"
        (w,) = rb(WORKERS, redis_url)
        assert w["pid"] == node.identity
        assert w["work"]["queue"] == "python"
        assert w["work"]["payload"]["jid"] == jid and w["work"]["payload"]["class"] == "Hold"
        stats = rb(STATS, redis_url)
        assert stats["processed"] == 5 and stats["failed"] == 1
        release.set()


def test_quiet_and_stop_from_sidekiq_api(
    cm: gredis.ConnManager, r: redispy.Redis, redis_url: str
) -> None:
    node = gokogeri.Node(gokogeri.nop_logger(), cm, heartbeat_interval=0.3)
    node.process_queues(OrderedQueueSet(["python"]), WorkerFunc(lambda c, j: None), 2)
    nt = NodeThread(node).__enter__()
    try:
        wait_for(lambda: r.sismember("processes", node.identity))
        # Process#quiet! / #stop! are what the Web UI's buttons call.
        ruby(
            f'Sidekiq::ProcessSet.new.each {{ |p| p.quiet! if p["identity"] == "{node.identity}" }}',
            redis_url,
        )
        wait_for(lambda: r.hget(node.identity, "quiet") == b"true")
        (proc,) = rb(PROCESSES, redis_url)
        assert proc["quiet"] == "true"
        ruby(
            f'Sidekiq::ProcessSet.new.each {{ |p| p.stop! if p["identity"] == "{node.identity}" }}',
            redis_url,
        )
        assert node.wait_stopped(10)
        assert rb(PROCESSES, redis_url) == []
    finally:
        nt.__exit__(None, None, None)


def test_python_failure_read_by_ruby_retry_set(
    cm: gredis.ConnManager, r: redispy.Redis, redis_url: str
) -> None:
    def fail(ctx: gokogeri.Context, job: Job) -> None:
        raise PermissionError("card declined")

    node = gokogeri.Node(gokogeri.nop_logger(), cm, heartbeat_interval=0.3)
    node.process_queues(OrderedQueueSet(["python"]), WorkerFunc(fail), 1)
    with NodeThread(node):
        jid = Enqueuer(cm).enqueue(
            Job("ChargeJob", queue="python", args=[7, "eur"], backtrace=True)
        )
        wait_for(lambda: r.zcard("retry") == 1)
    (entry,) = rb(RETRIES, redis_url)
    assert entry["klass"] == "ChargeJob" and entry["jid"] == jid and entry["args"] == [7, "eur"]
    assert entry["error_class"] == "PermissionError" and entry["error_message"] == "card declined"
    assert entry["retry_count"] == 0 and entry["queue"] == "python"
    assert any("in `fail'" in line for line in entry["backtrace"])


def test_ruby_failure_continues_in_python(
    cm: gredis.ConnManager, r: redispy.Redis, redis_url: str, sidekiq: SidekiqProcess
) -> None:
    ruby('HandOffJob.set(queue: "ruby").perform_async("x")', redis_url)
    member = wait_for(lambda: r.zrange("retry", 0, -1))[0]
    first = json.loads(member)
    assert first["retry_count"] == 0 and first["queue"] == "python"
    sidekiq.stop()  # from here on only Python runs it
    attempts: list[int] = []

    def fail_again(ctx: gokogeri.Context, job: Job) -> None:
        attempts.append(job.retry_count or 0)
        raise RuntimeError("failed in python")

    node = gokogeri.Node(
        gokogeri.nop_logger(), cm, heartbeat_interval=0.3, poll_interval_average=0.2
    )
    node.process_queues(OrderedQueueSet(["python"]), WorkerFunc(fail_again), 1)
    with NodeThread(node):
        r.zadd("retry", {member: time.time()}, xx=True)  # due now instead of in 15-25 s
        second = wait_for(
            lambda: [
                json.loads(m) for m in r.zrange("retry", 0, -1) if json.loads(m)["retry_count"] == 1
            ]
        )[0]
    assert attempts == [0]
    assert second["jid"] == first["jid"] and second["failed_at"] == first["failed_at"]
    assert second["retried_at"] >= first["failed_at"]
    assert second["error_class"] == "RuntimeError" and second["error_message"] == "failed in python"
    (entry,) = rb(RETRIES, redis_url)
    assert entry["retry_count"] == 1 and entry["klass"] == "HandOffJob"
