"""A running gokogeri Node seen and controlled through Sidekiq's own API and Web UI, and
Sidekiq's stats counting what both sides ran."""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time

import pytest
from harness import INTEROP_DIR, InteropEnv, wait_for
from pynode import Recorder, failing, recording, running
from webui import Browser, job_row, process_row, screenshot

import gokogeri
from gokogeri import redis as gredis
from gokogeri.api import Api

CONCURRENCY = 3
QUEUES = ["python", "python-low"]
HOLD_TIMEOUT = 30.0  # a held job gives up after this, so a failing test cannot hang the node
# The committed screenshot the README links to; rewritten when missing or when asked to.
README_SCREENSHOT = INTEROP_DIR / "busy-sidekiq-8.png"


class Hold:
    """A worker that records its job, then blocks until released: a busy thread on demand."""

    def __init__(self) -> None:
        self.rec = Recorder()
        self.started = threading.Event()
        self.release = threading.Event()

    def work(self, ctx: gokogeri.Context, job: gokogeri.Job) -> None:
        self.rec.add(job)
        self.started.set()
        self.release.wait(HOLD_TIMEOUT)


def _router(hold: Hold) -> gokogeri.Router:
    router = gokogeri.Router()
    router.register("SleepJob", hold)  # a class Ruby has too: the UI shows it like any job
    return router


def _hold_one(sk: InteropEnv, identity: str, hold: Hold) -> str:
    """Enqueue a SleepJob for the node and wait until its heartbeat shows it busy."""
    cm = gredis.ConnManager(gredis.Config(url=sk.redis_url))
    try:
        jid = gokogeri.Enqueuer(cm).enqueue(
            gokogeri.Job(class_name="SleepJob", queue="python", args=[42, {"held": True}])
        )
    finally:
        cm.close()
    assert jid is not None
    assert hold.started.wait(15), "the node did not start the job"
    r = sk.redis()
    try:
        wait_for(lambda: r.hget(identity, "busy") == b"1", 10, "busy=1 in the node's heartbeat")
    finally:
        r.close()
    return str(jid)


def _host_pid() -> str:
    return f"{os.environ.get('DYNO') or socket.gethostname()}:{os.getpid()}"


# --- 3. ProcessSet / WorkSet and the Web UI ----------------------------------------------------


def test_process_set_and_work_set_list_the_python_node(sk: InteropEnv) -> None:
    hold = Hold()
    with running(sk, QUEUES, _router(hold), concurrency=CONCURRENCY, labels=["py"]) as py:
        try:
            jid = _hold_one(sk, py.identity, hold)
            out = sk.ruby_json("api.rb", "processes", "workers", "stats")
        finally:
            hold.release.set()
    procs = {p["identity"]: p for p in out["processes"]}
    assert len(procs) == 2, "the Ruby Sidekiq and the Python node"
    p = procs[py.identity]
    assert p["hostname"] == _host_pid().rsplit(":", 1)[0] and p["pid"] == os.getpid()
    assert p["concurrency"] == CONCURRENCY
    assert p["queues"] == QUEUES
    assert p["busy"] == 1
    assert p["quiet"] == "false" and p["stopping"] is False
    assert p["tag"] == "interop" and p["labels"] == ["py"]
    assert abs(p["beat"] - time.time()) < 30
    if sk.major >= 7:
        assert p["version"].startswith("gokogeri")
    [work] = [w for w in out["workers"] if w["process"] == py.identity]
    assert work["queue"] == "python"
    assert work["payload"]["jid"] == jid and work["payload"]["class"] == "SleepJob"
    assert work["payload"]["args"] == [42, {"held": True}]
    assert abs(work["run_at"] - time.time()) < 30
    stats = out["stats"]
    assert stats["processes_size"] == 2
    assert stats["workers_size"] >= 1


@pytest.mark.flavour_independent
def test_web_ui_busy_shows_quiets_and_stops_the_python_node(sk: InteropEnv, web_url: str) -> None:
    hold = Hold()
    browser = Browser(web_url)
    with running(sk, QUEUES, _router(hold), concurrency=CONCURRENCY) as py:
        ident = py.identity
        try:
            jid = _hold_one(sk, ident, hold)
            page = browser.get("/busy")
            row = process_row(page, ident)
            assert row is not None, "no row for the Python node on /busy"
            assert _host_pid() in row.name and "interop" in row.name
            assert "python" in row.name and "python-low" in row.name, row.name
            assert row.threads == str(CONCURRENCY), row
            assert row.busy == "1", row
            assert row.has_quiet_button
            job = job_row(page, jid)
            assert job is not None, "no Jobs row for the Python node's running job"
            assert job[0] == ident and job[2] == jid and job[3] == "python"
            assert "SleepJob" in job[4] and "42" in job[5], job
            shot(sk, web_url)

            # "Quiet": the same POST the button makes; the node picks TSTP up on its next beat.
            browser.post_form("/busy", {"identity": ident, "quiet": "1"})
            r = sk.redis()
            try:
                wait_for(lambda: r.hget(ident, "quiet") == b"true", 10, "quiet=true")
            finally:
                r.close()
            assert py.node.quiet_requested and not py.node.wait_stopped(0)
            quiet_row = process_row(browser.get("/busy"), ident)
            assert quiet_row is not None and "quiet" in quiet_row.name.split()
            assert not quiet_row.has_quiet_button
            [p] = [p for p in sk.ruby_json("api.rb", "processes")["processes"]
                   if p["identity"] == ident]  # fmt: skip
            assert p["stopping"] is True
            # A quiet node takes no new work: this one stays queued for whoever comes next.
            cm = gredis.ConnManager(gredis.Config(url=sk.redis_url))
            try:
                later = gokogeri.Enqueuer(cm).enqueue(
                    gokogeri.Job(class_name="SleepJob", queue="python", args=[0])
                )
            finally:
                cm.close()
            time.sleep(3 * py.node.heartbeat_interval + 0.5)
        finally:
            hold.release.set()
        # "Stop": TERM; the node finishes (the job is done) and leaves the process list.
        browser.post_form("/busy", {"identity": ident, "stop": "1"})
        assert py.node.wait_stopped(20), "the node did not stop on the UI's Stop"
    assert ident.encode() not in sk.raw_set("processes")
    assert process_row(browser.get("/busy"), ident) is None
    assert [r.jid for r in hold.rec.ran] == [jid]
    [(waiting)] = sk.ruby_json("api.rb", "queue:python")["queue:python"]
    assert waiting["jid"] == later


def shot(sk: InteropEnv, web_url: str) -> None:
    """Screenshot /busy as an artifact (skipped without chromium: the test still counts)."""
    name = f"busy-sidekiq-{sk.series}-{sk.flavour}.png"
    path = screenshot(web_url + "/busy", name)
    if path is None:
        return
    assert path.stat().st_size > 10_000, "a blank page?"
    if sk.major == 8 and (
        not README_SCREENSHOT.exists() or os.environ.get("INTEROP_UPDATE_SCREENSHOTS") == "1"
    ):
        shutil.copyfile(path, README_SCREENSHOT)


# --- 4. stats -------------------------------------------------------------------------------------

PY_OK, PY_BAD, RUBY_OK, RUBY_BAD = 6, 3, 5, 2


@pytest.mark.flavour_independent
def test_stats_count_both_sides(sk: InteropEnv) -> None:
    """Sidekiq::Stats processed/failed = what Python ran/failed + what Ruby ran/failed.

    Sidekiq flushes its counters on its heartbeat (5 s / 10 s) and at exit; restarting it before
    and after makes both readings exact without waiting. The node flushes at every beat and
    at stop. Failures use retry: 0, so each one is visible (in the dead set) once counted.
    """
    sk.restart_sidekiq()
    before = sk.ruby_json("api.rb", "stats")["stats"]

    rec = Recorder()
    router = gokogeri.Router()
    router.register("PyOk", recording(rec))
    router.register("PyBad", failing(rec, "counted"))
    cm = gredis.ConnManager(gredis.Config(url=sk.redis_url))
    try:
        with running(sk, ["python"], router):
            jobs = [gokogeri.Job(class_name="PyOk", queue="python", args=[i]) for i in range(PY_OK)]
            jobs += [
                gokogeri.Job(class_name="PyBad", queue="python", args=[i], retry=0)
                for i in range(PY_BAD)
            ]
            py_jids = [str(j) for j in gokogeri.Enqueuer(cm).enqueue_bulk(jobs)]
            specs = [{"bulk": True, "class": "RecordJob", "queue": "ruby",
                      "args": [[i] for i in range(RUBY_OK)]},
                     {"bulk": True, "class": "FailJob", "queue": "ruby", "retry": 0,
                      "args": [["counted"] for _ in range(RUBY_BAD)]}]  # fmt: skip
            ruby_jids = sk.ruby_json("push.rb", stdin=json.dumps(specs))["jids"]
            rec.wait(py_jids)
            sk.wait_done(ruby_jids[:RUBY_OK])
            wait_for(lambda: len(sk.raw_zset("dead")) == PY_BAD + RUBY_BAD, 20, "the failures")
        sk.restart_sidekiq()  # flushes Ruby's counters
        after = sk.ruby_json("api.rb", "stats")["stats"]
        py_stats = Api(cm).stats()
    finally:
        cm.close()
    assert len(rec.ran) == PY_OK + PY_BAD
    assert after["processed"] - before["processed"] == PY_OK + PY_BAD + RUBY_OK + RUBY_BAD
    assert after["failed"] - before["failed"] == PY_BAD + RUBY_BAD
    assert after["dead_size"] == PY_BAD + RUBY_BAD
    # The daily keys (the dashboard's graph) count the same runs.
    daily = {k: after["history"][k] - before["history"][k] for k in ("processed", "failed")}
    assert daily == {"processed": PY_OK + PY_BAD + RUBY_OK + RUBY_BAD, "failed": PY_BAD + RUBY_BAD}
    assert (py_stats.processed, py_stats.failed) == (after["processed"], after["failed"])


@pytest.mark.flavour_independent
def test_web_ui_stop_requeues_a_running_job_unchanged(sk: InteropEnv, web_url: str) -> None:
    """Stop with a job still running past the grace period: the job goes back to the front
    of its queue byte for byte (Sidekiq's bulk_requeue), where Ruby's Queue API reads it."""
    cancelled = threading.Event()
    started = threading.Event()

    def obey_cancel(ctx: gokogeri.Context, job: gokogeri.Job) -> None:
        started.set()
        if ctx.cancelled.wait(HOLD_TIMEOUT):
            cancelled.set()

    router = gokogeri.Router()
    router.register("SleepJob", obey_cancel)
    payload = {"retry": True, "queue": "python", "class": "SleepJob", "args": [60, "ü"],
               "jid": gokogeri.new_jid(), "created_at": time.time(), "enqueued_at": time.time()}  # fmt: skip
    raw = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    with running(sk, ["python"], router, shutdown_timeout=0.5) as py:
        r = sk.redis()
        try:
            r.lpush("queue:python", raw)
            assert started.wait(10)
            wait_for(lambda: r.hget(py.identity, "busy") == b"1", 10, "busy=1")
        finally:
            r.close()
        Browser(web_url).post_form("/busy", {"identity": py.identity, "stop": "1"})
        assert py.node.wait_stopped(20), "the node did not stop on the UI's Stop"
    assert cancelled.is_set(), "the worker was not told to stop"
    assert sk.raw_list("queue:python") == [raw]
    [queued] = sk.ruby_json("api.rb", "queue:python")["queue:python"]
    assert queued["jid"] == payload["jid"] and queued["args"] == [60, "ü"]
    assert py.identity.encode() not in sk.raw_set("processes")
