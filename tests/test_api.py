"""gokogeri.api against real Ruby Sidekiq 6.4.1's own API, both ways, on a real Redis.

Ruby's side is tests/ruby/api_check.rb (Sidekiq::Stats, Queue, the sorted sets, ProcessSet,
WorkSet). Entries are seeded through Ruby's JobSet#schedule and Client.push, so they carry the
exact bytes Sidekiq writes.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from typing import Any

import pytest
import redis as redispy

import gokogeri
from gokogeri import Job, OrderedQueueSet, WorkerFunc
from gokogeri import redis as gredis
from gokogeri.api import BATCH, Api, Filter
from tests.conftest import RUBY_DIR, NodeThread, SidekiqProcess, needs_sidekiq, wait_for

pytestmark = needs_sidekiq


def rb(url: str, *args: str) -> Any:
    """Run api_check.rb (Sidekiq's API) against ``url``; its JSON result."""
    out = subprocess.run(
        ["ruby", str(RUBY_DIR / "api_check.rb"), *args],
        env=dict(os.environ, REDIS_URL=url),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"api_check.rb {' '.join(args)} failed:\n{out.stderr}")
    return json.loads(out.stdout)["result"]


GARBAGE = [
    b"not json {",
    b"[1, 2, 3]",
    b'{"queue":"default","args":[]}',  # no class
    b'{"class":"X","args":"not a list"}',
    b"\xff\xfe binary",
]


def test_dead_lists_garbage_instead_of_raising(cm: gredis.ConnManager, redis_url: str) -> None:
    """Regression: Api.dead() raised InvalidPayloadError on the first garbage entry."""
    [jid] = rb(redis_url, "seed", "dead", "1", "FailJob", "default")
    r = cm.client
    for i, raw in enumerate(GARBAGE):
        r.zadd(cm.keys.dead, {raw: 1_000 + i})
    api = Api(cm)
    entries = api.dead()
    assert len(entries) == 1 + len(GARBAGE)
    good = [e for e in entries if not e.garbage]
    assert [e.jid for e in good] == [jid]
    garbage = {e.raw: e.reason for e in entries if e.garbage}
    assert set(garbage) == set(GARBAGE)
    assert all(reason for reason in garbage.values())
    assert "class" in (garbage[b'{"queue":"default","args":[]}'] or "")
    # Listings of every kind survive garbage too.
    for raw in GARBAGE:
        r.zadd(cm.keys.retry, {raw: time.time() + 60})
        r.lpush(cm.keys.queue("default"), raw)
    r.sadd(cm.keys.queues, "default")
    assert len(api.retries()) == len(GARBAGE)
    assert len(api.queue("default").page(0, 100)) == len(GARBAGE)
    assert api.stats().queues == {"default": len(GARBAGE)}
    assert [q.size for q in api.queues()] == [len(GARBAGE)]
    # Garbage cannot be retried (no queue), can be deleted.
    some = next(e for e in api.dead() if e.garbage)
    assert some.retry() is False
    assert api.dead_set.delete_garbage() == len(GARBAGE)
    assert [e.jid for e in api.dead()] == [jid]
    # Ruby still reads the set (the garbage is gone, the job is there).
    assert [e["jid"] for e in rb(redis_url, "list", "dead")] == [jid]


def test_stats_and_history_match_sidekiq_stats(cm: gredis.ConnManager, redis_url: str) -> None:
    rb(redis_url, "push", "default", "RecordJob", "3")
    rb(redis_url, "push", "mail", "RecordJob", "2")
    rb(redis_url, "seed", "retry", "4", "FailJob", "default")
    rb(redis_url, "seed", "dead", "2", "FailJob", "default")
    rb(redis_url, "seed", "scheduled", "1", "RecordJob", "default")
    r = cm.client
    day = time.strftime("%Y-%m-%d", time.gmtime())
    r.mset(
        {
            "stat:processed": 42,
            "stat:failed": 7,
            f"stat:processed:{day}": 5,
            f"stat:failed:{day}": 1,
        }
    )
    ruby = rb(redis_url, "stats")
    s = Api(cm).stats()
    assert (s.processed, s.failed) == (ruby["processed"], ruby["failed"]) == (42, 7)
    assert (s.scheduled_size, s.retry_size, s.dead_size) == (
        ruby["scheduled_size"], ruby["retry_size"], ruby["dead_size"]
    ) == (1, 4, 2)  # fmt: skip
    assert s.enqueued == ruby["enqueued"] == 5
    assert s.queues == ruby["queues"] == {"default": 3, "mail": 2}
    assert (s.processes_size, s.workers_size) == (ruby["processes_size"], ruby["workers_size"])
    # Both measure the same oldest job; they run a moment apart.
    assert abs(s.default_queue_latency - ruby["default_queue_latency"]) < 5
    assert s.latencies["mail"] > 0
    h = Api(cm).history(2)
    assert h.processed == ruby["history"]["processed"]
    assert h.failed == ruby["history"]["failed"]
    assert h.processed[day] == 5


def test_python_retry_kill_delete_seen_by_ruby(cm: gredis.ConnManager, redis_url: str) -> None:
    jids = rb(redis_url, "seed", "retry", "4", "FailJob", "ruby")
    api = Api(cm)
    # retry: back to its queue now, retry_count - 1, as Ruby's own retry does to a twin.
    entry = api.retry_set.find_job(jids[0])
    assert entry is not None and entry.retry()
    rb(redis_url, "retry", "retry", jids[1])
    queued = {j["jid"]: j for j in rb(redis_url, "queue", "ruby")["jobs"]}
    assert set(queued) == {jids[0], jids[1]}
    ours, theirs = json.loads(queued[jids[0]]["value"]), json.loads(queued[jids[1]]["value"])
    assert ours["retry_count"] == theirs["retry_count"] == 1
    assert set(ours) == set(theirs)
    assert isinstance(ours["enqueued_at"], float) and ours["enqueued_at"] > time.time() - 60
    # kill: to the dead set now.
    entry = api.retry_set.find_job(jids[2])
    assert entry is not None and entry.kill()
    dead = rb(redis_url, "list", "dead")
    assert [d["jid"] for d in dead] == [jids[2]]
    assert abs(dead[0]["score"] - time.time()) < 60
    # delete
    entry = api.retry_set.find_job(jids[3])
    assert entry is not None and entry.delete()
    assert rb(redis_url, "list", "retry") == []
    # An entry someone else moved first is not moved twice.
    assert entry.delete() is False and entry.retry() is False
    assert len(rb(redis_url, "queue", "ruby")["jobs"]) == 2


def test_kill_trims_the_dead_set_as_sidekiq_does(cm: gredis.ConnManager, redis_url: str) -> None:
    rb(redis_url, "seed", "dead", "5", "FailJob", "default")
    jids = rb(redis_url, "seed", "retry", "2", "FailJob", "default")
    api = Api(cm, dead_max_jobs=3)
    assert api.retry_set.kill_all() == 2
    dead = rb(redis_url, "list", "dead")
    # ZREMRANGEBYRANK dead 0 -max keeps max - 1 entries, the newest: Sidekiq's off-by-one.
    assert len(dead) == 2
    assert {d["jid"] for d in dead} == set(jids)


def test_ruby_actions_seen_by_python(cm: gredis.ConnManager, redis_url: str) -> None:
    jids = rb(redis_url, "seed", "retry", "3", "FailJob", "default")
    api = Api(cm)
    assert {e.jid for e in api.retries()} == set(jids)
    rb(redis_url, "retry", "retry", jids[0])
    rb(redis_url, "kill", "retry", jids[1])
    rb(redis_url, "delete", "retry", jids[2])
    assert api.retries() == []
    assert [e.jid for e in api.dead()] == [jids[1]]
    [record] = api.queue("default").page()
    assert record.jid == jids[0] and record.job is not None
    assert record.job["retry_count"] == 1
    rb(redis_url, "clear", "dead")
    rb(redis_url, "clear_queue", "default")
    assert api.dead() == [] and api.queues() == []


def test_retry_all_in_batches_steps_over_garbage(cm: gredis.ConnManager, redis_url: str) -> None:
    n = BATCH * 2 + 17
    r = cm.client
    payloads = {}
    now = time.time()
    for i in range(n):
        job = Job("FailJob", "default", [i], jid=f"{i:024x}", retry_count=3, error_class="E")
        payloads[job.encode()] = now - i
    r.zadd(cm.keys.dead, payloads)
    r.zadd(cm.keys.dead, {b"garbage one": now - n - 5, b"garbage two": now + 5})
    calls: list[tuple[int, int]] = []
    moved = Api(cm).dead_set.retry_all(lambda done, total: calls.append((done, total)))
    assert moved == n
    assert calls[0] == (0, n + 2) and calls[-1] == (n + 2, n + 2)
    assert len(calls) >= 4, "more than one batch"
    ruby = rb(redis_url, "queue", "default")
    assert ruby["size"] == n
    assert {j["retry_count"] for j in ruby["jobs"]} == {2}
    assert sorted(m for m in r.zrange(cm.keys.dead, 0, -1)) == [b"garbage one", b"garbage two"]


def test_filters_and_find(cm: gredis.ConnManager, redis_url: str) -> None:
    a = rb(redis_url, "seed", "retry", "3", "MailJob", "mail")
    b = rb(redis_url, "seed", "retry", "2", "BillJob", "billing")
    api = Api(cm)
    assert {e.jid for e in api.retries(flt=Filter(class_name="MailJob"))} == set(a)
    assert {e.jid for e in api.retries(flt=Filter(queue="billing"))} == set(b)
    assert [e.jid for e in api.retries(flt=Filter(error="BOOM 1"))] == [a[1], b[1]]
    assert [e.jid for e in api.retries(flt=Filter(jid=b[0]))] == [b[0]]
    assert api.retries(flt=Filter(class_name="Mail")) == [], "class is an exact match"
    assert len(api.retries(limit=2, flt=Filter(error="boom"))) == 2
    found = api.find_job(a[2])
    assert found is not None and found.set is api.retry_set
    assert api.find_job("0" * 24) is None
    # ActiveJob: the wrapped class is what the filter (and the Web UI) calls the class.
    wrapped = Job(
        "ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper", "mail", [{}], jid="c" * 24,
        wrapped="WelcomeMailer",
    )  # fmt: skip
    api.retry_set.add(wrapped, time.time() + 10)
    assert [e.jid for e in api.retries(flt=Filter(class_name="WelcomeMailer"))] == ["c" * 24]


def test_queue_latency_delete_and_clear(cm: gredis.ConnManager, redis_url: str) -> None:
    jids = rb(redis_url, "push", "mail", "RecordJob", "3")
    api = Api(cm)
    q = api.queue("mail")
    ruby = rb(redis_url, "queue", "mail")
    assert q.size() == ruby["size"] == 3
    assert abs(q.latency() - ruby["latency"]) < 5
    assert [rec.jid for rec in q.page()] == [j["jid"] for j in ruby["jobs"]]
    assert q.delete_job(jids[1]) is True
    assert q.delete_job(jids[1]) is False
    assert [j["jid"] for j in rb(redis_url, "queue", "mail")["jobs"]] == [jids[2], jids[0]]
    q.clear()
    assert rb(redis_url, "stats")["queues"] == {}
    assert q.size() == 0 and q.latency() == 0.0


def test_processes_quiet_and_stop_a_real_sidekiq(
    cm: gredis.ConnManager, redis_url: str, sidekiq: SidekiqProcess
) -> None:
    api = Api(cm)
    [proc] = api.processes()
    [ruby] = rb(redis_url, "processes")
    assert proc.identity == ruby["identity"]
    assert proc.concurrency == ruby["concurrency"] == 5
    assert proc.queues == ruby["queues"] == ["default", "ruby"]
    assert proc.version == (ruby["version"] or "")  # 6.4.1 writes none; 7+ do
    assert not proc.quiet
    api.quiet(proc.identity)
    # Sidekiq reads its signals on its heartbeat (every 5 s in 6.x).
    wait_for(lambda: rb(redis_url, "processes")[0]["quiet"] == "true", timeout=20, interval=0.5)
    assert api.processes()[0].quiet
    api.stop(proc.identity)
    sidekiq.proc.wait(timeout=40)
    assert api.processes() == []
    with pytest.raises(gokogeri.api.ApiError):
        api.stop(proc.identity)


def test_work_in_progress_matches_ruby_workset(cm: gredis.ConnManager, redis_url: str) -> None:
    release = threading.Event()

    def work(ctx: gokogeri.Context, job: Job) -> None:
        release.wait(20)

    node = gokogeri.Node(gokogeri.nop_logger(), cm, heartbeat_interval=0.2)
    node.process_queues(OrderedQueueSet(["python"]), WorkerFunc(work), 2)
    jid = gokogeri.Enqueuer(cm).enqueue(Job("HoldJob", "python", [1]))
    api = Api(cm)
    try:
        with NodeThread(node):
            found = wait_for(lambda: api.work(), timeout=10)
            ruby = wait_for(lambda: rb(redis_url, "workers"), timeout=10, interval=0.3)
            release.set()
    finally:
        release.set()
    [w] = found
    assert w.job is not None and w.job.jid == jid and w.queue == "python"
    assert w.run_at > time.time() - 60
    [rw] = ruby
    assert (rw["process"], rw["thread"], rw["jid"], rw["queue"]) == (
        w.identity,
        w.thread,
        jid,
        "python",
    )


def test_garbage_in_process_and_work_hashes_is_listed(cm: gredis.ConnManager) -> None:
    r: redispy.Redis = cm.client
    r.sadd(cm.keys.processes, "host:1:abc", "host:2:def")
    r.hset("host:1:abc", mapping={"info": "{not json", "busy": "x", "beat": "soon"})
    r.hset(
        "host:2:def", mapping={"info": json.dumps({"hostname": "h", "concurrency": 3}), "busy": 1}
    )
    r.hset(
        "host:2:def:work",
        mapping={"t1": "garbage", "t2": json.dumps({"queue": "q", "payload": "[]", "run_at": 1})},
    )
    api = Api(cm)
    procs = {p.identity: p for p in api.processes()}
    assert procs["host:1:abc"].reason and procs["host:1:abc"].busy == 0
    assert procs["host:2:def"].concurrency == 3
    work = {w.thread: w for w in api.work()}
    assert work["t1"].reason and work["t2"].job is None and work["t2"].reason
