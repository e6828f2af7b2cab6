"""Sidekiq and a gokogeri Node consume the SAME queue: every job runs exactly once.

Half the jobs are pushed by Ruby (Sidekiq::Client.push_bulk), half by Python
(Enqueuer.enqueue_bulk), all of class RecordJob, which both sides know: Ruby's RecordJob and a
Python worker registered under the same name each append one record per run to
``interop:done``. Sidekiq takes jobs with BRPOP, the node with its own fetch (LMOVE into a
per-node working list by default), from the same ``queue:default``.

10,000 jobs (~5 s) on every environment with the node's default, crash-safe fetch; with
Sidekiq's BRPOP fetch (Node(fetch="basic")) on FULL_ENV only, unless INTEROP_MATRIX=full.
"""

from __future__ import annotations

import collections
import json
import os
import threading
import time
from typing import Any

import pytest
from harness import DONE_KEY, InteropEnv, env_id, wait_for
from pynode import Recorder, redis_recording, running
from webui import Browser

import gokogeri
from gokogeri import redis as gredis

FULL_ENV = env_id("8.1.7", "redis-7.0")
JOBS = 10_000
RUN_TIMEOUT = 240.0  # seconds for 10,000 jobs on a busy 2-core box (typically ~15 s)


@pytest.mark.parametrize("fetch", ["reliable", "basic"])
def test_both_sides_consume_one_queue_exactly_once(sk: InteropEnv, fetch: str) -> None:
    if fetch == "basic" and os.environ.get("INTEROP_MATRIX") != "full" and sk.id != FULL_ENV:
        pytest.skip("basic fetch on one environment by default; INTEROP_MATRIX=full for all")
    n = JOBS
    half = n // 2
    ruby_args = [[i, "ruby"] for i in range(half)]
    py_args = [[i, "python"] for i in range(n - half)]
    py_ran = Recorder()
    cm = gredis.ConnManager(gredis.Config(url=sk.redis_url))
    router = gokogeri.Router()
    router.register("RecordJob", redis_recording(cm, py_ran))
    ruby_jids: list[str] = []
    ruby_error: list[BaseException] = []

    def push_from_ruby() -> None:
        try:
            spec = {"bulk": True, "class": "RecordJob", "queue": "default", "args": ruby_args}
            ruby_jids.extend(sk.ruby_json("push.rb", stdin=json.dumps(spec))["jids"])
        except BaseException as e:  # re-raised in the test thread
            ruby_error.append(e)

    r = sk.redis()
    try:
        with running(sk, ["default"], router, concurrency=5, fetch=fetch):
            t0 = time.monotonic()
            pusher = threading.Thread(target=push_from_ruby, name="ruby-push")
            pusher.start()
            jobs = (gokogeri.Job(class_name="RecordJob", queue="default", args=a) for a in py_args)
            py_jids = [str(j) for j in gokogeri.Enqueuer(cm).enqueue_bulk(jobs)]
            pusher.join(120)
            assert not ruby_error, ruby_error
            wait_for(lambda: r.llen(DONE_KEY) >= n, RUN_TIMEOUT, f"{n} jobs to run", interval=0.2)
            elapsed = time.monotonic() - t0
            time.sleep(0.5)  # a duplicate delivery would show up in this time
        records: list[dict[str, Any]] = [json.loads(x) for x in r.lrange(DONE_KEY, 0, -1)]
        left = r.llen("queue:default")
        leftovers = [k for k in r.scan_iter(match="gokogeri:working:*") if r.llen(k)]
    finally:
        r.close()
        cm.close()

    assert len(ruby_jids) == half and len(py_jids) == n - half
    counts = collections.Counter(x["jid"] for x in records)
    dups = {j: c for j, c in counts.items() if c > 1}
    missing = (set(ruby_jids) | set(py_jids)) - set(counts)
    assert not dups, f"{len(dups)} jobs ran more than once, e.g. {list(dups.items())[:3]}"
    assert not missing, f"{len(missing)} jobs never ran, e.g. {sorted(missing)[:3]}"
    assert set(counts) == set(ruby_jids) | set(py_jids) and len(records) == n
    assert left == 0 and leftovers == []

    by_side = collections.Counter("python" if x.get("side") == "python" else "ruby"
                                  for x in records)  # fmt: skip
    assert by_side["python"] > 0 and by_side["ruby"] > 0, f"one side ran nothing: {by_side}"
    assert len(py_ran.ran) == by_side["python"]
    expected = dict(zip(ruby_jids, ruby_args, strict=True)) | dict(
        zip(py_jids, py_args, strict=True)
    )
    assert all(x["args"] == expected[x["jid"]] for x in records), "args changed in transit"
    print(f"\n{sk.id} fetch={fetch}: {n} jobs in {elapsed:.1f} s, ran by {dict(by_side)}")


SCHEDULED = 1_000
DUE_IN = 3.5  # seconds: enough to push them all first (a loaded box needs ~2 s), then both
# pollers find all of them due at about the same time


def test_both_pollers_move_each_scheduled_job_once(sk: InteropEnv) -> None:
    """Ruby's poller and the node's scheduler race for the same due jobs (half scheduled by
    Ruby's client, half by Python's); each job reaches the queue, and runs, exactly once."""
    py_ran = Recorder()
    cm = gredis.ConnManager(gredis.Config(url=sk.redis_url))
    router = gokogeri.Router()
    router.register("RecordJob", redis_recording(cm, py_ran))
    half = SCHEDULED // 2
    r = sk.redis()
    try:
        with running(sk, ["python"], router, concurrency=5):
            at = time.time() + DUE_IN
            spec = {"bulk": True, "class": "RecordJob", "queue": "python", "at": at,
                    "args": [[i, "ruby"] for i in range(half)]}  # fmt: skip
            ruby_jids = sk.ruby_json("push.rb", stdin=json.dumps(spec))["jids"]
            enq = gokogeri.Enqueuer(cm)
            py_jids = [
                str(enq.enqueue_at(gokogeri.Job(class_name="RecordJob", queue="python",
                                                args=[i, "python"]), at))
                for i in range(half)
            ]  # fmt: skip
            assert r.zcard("schedule") > 0, "the jobs should not have been due yet"
            wait_for(lambda: r.llen(DONE_KEY) >= SCHEDULED, 60, "the scheduled jobs", interval=0.2)
            time.sleep(0.5)  # a second move of the same job would show up in this time
        records = [json.loads(x) for x in r.lrange(DONE_KEY, 0, -1)]
        assert r.zcard("schedule") == 0 and r.llen("queue:python") == 0
    finally:
        r.close()
        cm.close()
    counts = collections.Counter(x["jid"] for x in records)
    assert set(counts) == set(ruby_jids) | set(py_jids)
    assert max(counts.values()) == 1, "a scheduled job was moved (and run) twice"
    assert min(x.at for x in py_ran.ran) >= at - 0.05, "a scheduled job ran early"


QUIET_RUN = 3_000


def test_quiet_from_the_web_ui_mid_run_hands_the_rest_to_sidekiq(
    sk: InteropEnv, web_url: str
) -> None:
    """Both sides share ``default``; the Python node is quieted from the Web UI mid-run. The
    jobs it had fetched but not started go back to the queue and Sidekiq runs them: still
    exactly once each, and none left behind in the node's working lists."""
    py_ran = Recorder()
    cm = gredis.ConnManager(gredis.Config(url=sk.redis_url))
    record = redis_recording(cm, py_ran)

    def slow_record(ctx: gokogeri.Context, job: gokogeri.Job) -> None:
        time.sleep(0.002)  # slower than Ruby, so the node holds prefetched jobs when quieted
        record(ctx, job)

    router = gokogeri.Router()
    router.register("RecordJob", slow_record)
    r = sk.redis()
    try:
        with running(sk, ["default"], router, concurrency=3) as py:
            jobs = (
                gokogeri.Job(class_name="RecordJob", queue="default", args=[i])
                for i in range(QUIET_RUN)
            )
            jids = [str(j) for j in gokogeri.Enqueuer(cm).enqueue_bulk(jobs)]
            wait_for(lambda: len(py_ran.ran) >= 50, 30, "the node to get going")
            Browser(web_url).post_form("/busy", {"identity": py.identity, "quiet": "1"})
            wait_for(lambda: r.hget(py.identity, "quiet") == b"true", 10, "quiet=true")
            ran_when_quiet = len(py_ran.ran)
            wait_for(lambda: r.llen(DONE_KEY) >= QUIET_RUN, 120, "every job", interval=0.2)
            time.sleep(0.5)
            assert len(py_ran.ran) - ran_when_quiet <= 3, "a quiet node started new jobs"
        records = [json.loads(x) for x in r.lrange(DONE_KEY, 0, -1)]
        leftovers = [k for k in r.scan_iter(match="gokogeri:working:*") if r.llen(k)]
    finally:
        r.close()
        cm.close()
    counts = collections.Counter(x["jid"] for x in records)
    assert set(counts) == set(jids) and max(counts.values()) == 1
    assert leftovers == []
    by_side = collections.Counter(x.get("side", "ruby") for x in records)
    assert by_side["python"] > 0 and by_side["ruby"] > 0, by_side
