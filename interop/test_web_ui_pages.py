"""Sidekiq's Web UI renders what Python wrote: queued, scheduled, retry and dead jobs, with
the right times (a time read in the wrong unit shows as 1970 or as the year 57,000).

Float seconds on every version; integer ms (Config(timestamp_format="ms")) on Sidekiq 8,
which is the format 8 itself writes.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from typing import Literal

import pytest
from harness import InteropEnv, wait_for
from pynode import Recorder, failing, running
from webui import Browser

import gokogeri
from gokogeri import redis as gredis
from gokogeri.api import Api

SCHEDULE_IN = 300.0
_TIME = re.compile(r'<time[^>]*datetime="([^"]+)"')


def _times(page: str) -> list[float]:
    """Every relative_time on a page, as epoch seconds."""
    return [
        datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() for s in _TIME.findall(page)
    ]


def _detail_link(page: str, section: str, jid: str) -> str:
    m = re.search(rf'href="[^"]*/({section}/[^"/]*-{jid})"', page)
    assert m, f"no link to the {section} entry of {jid}"
    return "/" + m.group(1)


@pytest.mark.flavour_independent
@pytest.mark.parametrize("fmt", ["float", "ms"])
def test_web_ui_renders_python_jobs_with_the_right_times(
    sk: InteropEnv, web_url: str, fmt: Literal["float", "ms"]
) -> None:
    if fmt == "ms" and sk.major < 8:
        pytest.skip("integer-ms timestamps are Sidekiq 8's format; 6/7 read them as seconds")
    rec = Recorder()
    router = gokogeri.Router()
    router.register("PyWebJob", failing(rec, "shown in the UI"))
    cm = gredis.ConnManager(gredis.Config(url=sk.redis_url, timestamp_format=fmt))
    enq = gokogeri.Enqueuer(cm)
    t0 = time.time()
    try:
        parked = enq.enqueue(gokogeri.Job(class_name="PyWebJob", queue="parked", args=["q"]))
        later = enq.enqueue_in(
            gokogeri.Job(class_name="PyWebJob", queue="parked", args=["s"]), SCHEDULE_IN
        )
        with running(sk, ["python"], router, timestamp_format=fmt):
            retried = enq.enqueue(
                gokogeri.Job(class_name="PyWebJob", queue="python", args=["r"], backtrace=True)
            )
            dead = enq.enqueue(
                gokogeri.Job(class_name="PyWebJob", queue="python", args=["d"], retry=0)
            )
            rec.wait([str(retried), str(dead)])
            wait_for(
                lambda: sk.raw_zset("retry") and sk.raw_zset("dead"), 10, "retry and dead entries"
            )
    finally:
        cm.close()
    t1 = time.time()

    ui = Browser(web_url)
    assert str(parked) in ui.get("/queues/parked")
    ui.get("/")  # the dashboard reads stats and every queue's latency (from enqueued_at)
    pages = {}
    for section, listing, jid in (
        ("scheduled", "/scheduled", later),
        ("retries", "/retries", retried),
        ("morgue", "/morgue", dead),
    ):
        page = ui.get(listing)
        assert str(jid) in page and "PyWebJob" in page
        pages[section] = ui.get(_detail_link(page, section, str(jid)))
        for t in _times(page) + _times(pages[section]):
            # created/enqueued/failed now; next retry in 15-25 s; the scheduled run in 300 s.
            assert t0 - 5 <= t <= t1 + SCHEDULE_IN + 5, f"{section}: a time shown as {t}"
    # The detail pages show the failure and the Python backtrace, decoded by Ruby.
    assert "shown in the UI" in pages["retries"] and "PyWebJob" in pages["retries"]
    assert "pynode.py" in pages["retries"]
    assert "shown in the UI" in pages["morgue"]
    # Four times on the retry page (created, enqueued, failed, next retry), each plausible.
    assert len(_times(pages["retries"])) >= 3, _times(pages["retries"])
    stored = json.loads(sk.raw_zset("retry")[0][0])
    assert type(stored["failed_at"]) is (int if fmt == "ms" else float)


@pytest.mark.flavour_independent
def test_web_ui_retry_now_and_kill_on_python_failures(sk: InteropEnv, web_url: str) -> None:
    """The retry page's buttons on jobs Python failed: "Retry Now" has Ruby's client push the
    Python payload back to its queue, where the node runs it; "Kill" moves one to the dead set
    (which gokogeri's Api reads)."""
    rec = Recorder()
    attempts: dict[str, int] = {}

    def fail_first(ctx: gokogeri.Context, job: gokogeri.Job) -> None:
        rec.add(job)
        attempts[str(job.jid)] = attempts.get(str(job.jid), 0) + 1
        if attempts[str(job.jid)] == 1:
            raise RuntimeError("first attempt fails")

    router = gokogeri.Router()
    router.register("PyWebJob", fail_first)
    cm = gredis.ConnManager(gredis.Config(url=sk.redis_url))
    ui = Browser(web_url)
    try:
        enq = gokogeri.Enqueuer(cm)
        with running(sk, ["python"], router):
            again = str(enq.enqueue(gokogeri.Job(class_name="PyWebJob", queue="python", args=[1])))
            killed = str(enq.enqueue(gokogeri.Job(class_name="PyWebJob", queue="python", args=[2])))
            wait_for(lambda: len(sk.raw_zset("retry")) == 2, 15, "two Python failures")
            listing = ui.get("/retries")
            first = json.loads(next(m for m, _ in sk.raw_zset("retry") if again.encode() in m))
            ui.post_form(_detail_link(listing, "retries", again), {"retry": "Retry Now"})
            ui.post_form(_detail_link(listing, "retries", killed), {"kill": "Kill"})
            rec.wait([again])
            wait_for(lambda: attempts.get(again) == 2, 15, "the second run of the retried job")
        dead = {e.job.jid: e for e in Api(cm).dead()}
    finally:
        cm.close()
    assert sk.raw_zset("retry") == []
    second = [r for r in rec.ran if r.jid == again][-1]
    assert second.args == [1] and second.queue == "python"
    # Sidekiq's "Retry Now" lowers retry_count by one before pushing (so the next failure
    # counts as the same retry), and keeps the failure fields.
    assert second.fields["retry_count"] == first["retry_count"] - 1
    assert second.fields["failed_at"] == first["failed_at"]
    assert second.fields["error_class"] == "RuntimeError"
    assert set(dead) == {killed} and dead[killed].job.error_message == "first attempt fails"
    assert attempts[killed] == 1
