"""Sidekiq 7/8's execution metrics (the Web UI's Metrics tab) count the jobs a Python node ran.

The same workload runs on both sides: N jobs of one class, F of them failing (retry: false),
each success taking SLEEP seconds. Python's class runs in a gokogeri Node with the
gokogeri.metrics.SidekiqMetrics observer; Ruby's runs in Sidekiq (SleepJob / FailJob with a
``wrapped`` class name, which is what Sidekiq's metrics middleware keys on, as for ActiveJob).
Then the real ``Sidekiq::Metrics::Query`` reads both classes back: same counts, a total time
that fits the work done, the histogram in the buckets the sleeps fall into.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from typing import Any

import pytest
from harness import INTEROP_DIR, ContainerEnv, InteropEnv, wait_for
from pynode import PythonJobError, running
from webui import Browser, screenshot

import gokogeri
from gokogeri import redis as gredis
from gokogeri.metrics import BUCKET_BOUNDS_MS, SidekiqMetrics

N, F = 12, 4  # jobs per side, of which failing
SLEEP = 0.05  # seconds per successful run: 50 ms, histogram bucket 3 (45 <= ms < 65)
PY_CLASS = "PythonReportJob"
RB_CLASS = "RubyReportJob"
README_SCREENSHOT = INTEROP_DIR / "metrics-sidekiq-8.png"

# Prints what Sidekiq::Metrics::Query says about the classes in ARGV, as JSON on stdout:
# for_job totals and summed histogram (index 0 = fastest bucket) per class, and top_jobs'
# totals. stdout is Sidekiq's log in 7/8, so the JSON goes to the original one.
QUERY_RB = """
OUT = STDOUT.dup
STDOUT.reopen(STDERR)
require "/opt/interop/jobs"
require "sidekiq/metrics/query"
q = Sidekiq::Metrics::Query.new
per_class = ARGV.to_h do |k|
  jr = q.for_job(k).job_results[k]
  grams = jr.hist.values.reject(&:empty?)
  summed = grams.empty? ? [] : grams.transpose.map(&:sum).reverse
  [k, {"totals" => jr.totals, "hist" => summed}]
end
top = q.top_jobs.job_results.to_h { |k, jr| [k, jr.totals] }
OUT.puts JSON.generate("for_job" => per_class, "top_jobs" => top)
"""


def query(sk: InteropEnv, *classes: str) -> dict[str, Any]:
    # The Ruby sources are mounted read-only; Query needs no file of its own, so it is
    # run with -e in the Sidekiq container (metrics exist only there: 7.x and 8.x).
    assert isinstance(sk, ContainerEnv)
    out = sk._exec(["ruby", "-e", QUERY_RB, *classes])
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def run_python_side(sk: InteropEnv) -> None:
    def work(ctx: gokogeri.Context, job: gokogeri.Job) -> None:
        if job.args[0] == "fail":
            raise PythonJobError("counted as a failure")
        time.sleep(SLEEP)

    router = gokogeri.Router()
    router.register(PY_CLASS, work)
    metrics = SidekiqMetrics(compat="8" if sk.major >= 8 else "7")
    cm = gredis.ConnManager(gredis.Config(url=sk.redis_url))
    try:
        jobs = [
            gokogeri.Job(class_name=PY_CLASS, queue="python", args=["fail" if i < F else "ok", i],
                         retry=False)
            for i in range(N)
        ]  # fmt: skip
        with running(sk, ["python"], router, observers=[metrics]):
            gokogeri.Enqueuer(cm).enqueue_bulk(jobs)
            wait_for(lambda: cm.client.llen("queue:python") == 0, 30, "the node to fetch")
            # Every run is counted once flushed; the node flushes at each beat and at stop.
            wait_for(lambda: _counted(sk, PY_CLASS) == N, 30, "Python's runs in the metrics")
    finally:
        cm.close()


def _counted(sk: InteropEnv, klass: str) -> int:
    return int(query(sk, klass)["for_job"][klass]["totals"].get("p", 0))


def run_ruby_side(sk: InteropEnv) -> None:
    specs = [
        {"class": "FailJob", "queue": "ruby", "retry": False, "wrapped": RB_CLASS,
         "args": ["counted as a failure"]}
        for _ in range(F)
    ] + [
        {"class": "SleepJob", "queue": "ruby", "retry": False, "wrapped": RB_CLASS,
         "args": [SLEEP, i]}
        for i in range(N - F)
    ]  # fmt: skip
    sk.ruby_json("push.rb", stdin=json.dumps(specs))
    # Sidekiq 7 flushes its metrics only on its 10 s heartbeat (8 also at exit).
    wait_for(lambda: _counted(sk, RB_CLASS) == N, 60, "Ruby's runs in the metrics", interval=1)


@pytest.mark.flavour_independent
def test_metrics_query_counts_python_jobs_like_ruby_ones(sk: InteropEnv) -> None:
    if sk.major < 7:
        pytest.skip("Sidekiq 6 has no execution metrics (the observer is off for compat 6)")
    run_python_side(sk)
    run_ruby_side(sk)
    got = query(sk, PY_CLASS, RB_CLASS)
    py, rb = got["for_job"][PY_CLASS], got["for_job"][RB_CLASS]
    ok = N - F
    for side in (py, rb):
        assert side["totals"]["p"] == N
        assert side["totals"]["f"] == F
        # Failures are not timed; each success slept SLEEP. Generous ceiling: a busy box.
        assert ok * SLEEP * 1000 <= side["totals"]["ms"] < ok * SLEEP * 1000 * 10
        hist = side["hist"]
        assert len(hist) == len(BUCKET_BOUNDS_MS) + 1
        assert sum(hist) == ok
        assert sum(hist[:3]) == 0  # nothing faster than 45 ms
    assert (py["totals"]["p"], py["totals"]["f"]) == (rb["totals"]["p"], rb["totals"]["f"])
    # The Metrics page's table (top_jobs) lists both classes with the same numbers.
    top = got["top_jobs"]
    assert top[PY_CLASS]["p"] == top[RB_CLASS]["p"] == N
    assert top[PY_CLASS]["f"] == top[RB_CLASS]["f"] == F
    check_web_ui(sk)


def check_web_ui(sk: InteropEnv) -> None:
    page = Browser(sk.web_url).get("/metrics")
    assert PY_CLASS in page and RB_CLASS in page
    detail = Browser(sk.web_url).get(f"/metrics/{PY_CLASS}")
    assert PY_CLASS in detail
    name = f"metrics-sidekiq-{sk.sidekiq_version}-{sk.flavour}.png"
    path = screenshot(sk.web_url + "/metrics", name)
    if path is None:
        return
    assert path.stat().st_size > 10_000, "a blank page?"
    if sk.major == 8 and (
        not README_SCREENSHOT.exists() or os.environ.get("INTEROP_UPDATE_SCREENSHOTS") == "1"
    ):
        shutil.copyfile(path, README_SCREENSHOT)
