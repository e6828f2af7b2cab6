"""The operator commands, run as real ``python -m gokogeri`` processes against a real Redis
(and a real Ruby Sidekiq 6.4.1 where one is involved); output and effect are both checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis as redispy

from gokogeri import Job
from gokogeri import redis as gredis
from gokogeri.periodic import Periodic
from tests.conftest import SidekiqProcess, needs_sidekiq, wait_for
from tests.test_api import rb

ROOT = Path(__file__).resolve().parent.parent


def gk(url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gokogeri", *args],
        env=dict(os.environ, GOKOGERI_REDIS_URL=url, COLUMNS="200"),
        cwd=str(ROOT),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def ok(url: str, *args: str) -> str:
    out = gk(url, *args)
    assert out.returncode == 0, out.stderr
    return out.stdout


def js(url: str, *args: str) -> Any:
    return json.loads(ok(url, *args, "--json"))


@needs_sidekiq
def test_dead_lists_jobs_and_garbage(redis_url: str, r: redispy.Redis) -> None:
    [jid] = rb(redis_url, "seed", "dead", "1", "FailJob", "default")
    r.zadd("dead", {b"\x1b[2Jnot json": 5})
    text = ok(redis_url, "dead")
    assert "dead: 2 jobs" in text
    assert jid in text and "FailJob" in text and "BoomError: boom 0" in text
    assert "(garbage)" in text and "not valid JSON" in text
    assert "\x1b" not in text, "control characters from payloads are escaped"
    out = js(redis_url, "dead")
    assert out["set"] == "dead" and out["size"] == 2
    job, garbage = out["entries"]
    assert job["jid"] == jid and job["garbage"] is False and job["retry_count"] == 2
    assert job["error_class"] == "BoomError" and job["payload"]["class"] == "FailJob"
    assert garbage["garbage"] is True and garbage["raw"].endswith("not json")


@needs_sidekiq
def test_retries_filters_and_limit(redis_url: str) -> None:
    mail = rb(redis_url, "seed", "retry", "3", "MailJob", "mail")
    rb(redis_url, "seed", "retry", "2", "BillJob", "billing")
    assert {e["jid"] for e in js(redis_url, "retries", "--class", "MailJob")["entries"]} == set(
        mail
    )
    assert len(js(redis_url, "retries", "--queue", "billing")["entries"]) == 2
    assert [e["jid"] for e in js(redis_url, "retries", "--error", "boom 2")["entries"]] == [mail[2]]
    assert len(js(redis_url, "retries", "--limit", "4")["entries"]) == 4
    text = ok(redis_url, "retries", "--limit", "2")
    assert "retry: 5 jobs (2 shown, --limit for more)" in text
    assert "in 59m" in text or "in 1h" in text, "next retry, relative"


@needs_sidekiq
def test_retry_kill_delete_jids_seen_by_ruby(redis_url: str) -> None:
    jids = rb(redis_url, "seed", "retry", "3", "FailJob", "ruby")
    assert ok(redis_url, "retry", jids[0]) == f"retried {jids[0]} (from retry)\n"
    assert ok(redis_url, "kill", jids[1]) == f"killed {jids[1]} (from retry)\n"
    assert ok(redis_url, "delete", jids[2]) == f"deleted {jids[2]} (from retry)\n"
    assert [j["jid"] for j in rb(redis_url, "queue", "ruby")["jobs"]] == [jids[0]]
    assert [e["jid"] for e in rb(redis_url, "list", "dead")] == [jids[1]]
    assert rb(redis_url, "list", "retry") == []
    # Dead jobs retry too; unknown jids fail with exit 1.
    assert ok(redis_url, "retry", jids[1]) == f"retried {jids[1]} (from dead)\n"
    missing = gk(redis_url, "retry", "f" * 24)
    assert missing.returncode == 1 and "not found" in missing.stderr


@needs_sidekiq
def test_all_actions_ask_work_in_batches_and_report(redis_url: str, r: redispy.Redis) -> None:
    rb(redis_url, "seed", "dead", "3", "FailJob", "default")
    rb(redis_url, "seed", "retry", "2", "FailJob", "default")
    # No terminal to ask on and no --yes: refuse, change nothing.
    refused = gk(redis_url, "retry", "--all")
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert r.zcard("dead") == 3
    out = ok(redis_url, "retry", "--all", "--yes")
    assert out == "retried 2 jobs from retry\nretried 3 jobs from dead\n"
    assert rb(redis_url, "queue", "default")["size"] == 5
    rb(redis_url, "seed", "retry", "4", "FailJob", "default")
    assert ok(redis_url, "kill", "--all", "--yes") == "killed 4 jobs from retry\n"
    assert len(rb(redis_url, "list", "dead")) == 4
    bad = gk(redis_url, "delete", "--all", "--yes")
    assert bad.returncode == 2 and "--set" in bad.stderr
    out = ok(redis_url, "delete", "--all", "--set", "dead", "--error", "boom 1", "--yes")
    assert out == "deleted 1 job from dead\n"
    assert (
        ok(redis_url, "delete", "--all", "--set", "dead", "--yes") == "deleted 3 jobs from dead\n"
    )


def test_clear_queue_and_queues_json(redis_url: str, cm: gredis.ConnManager) -> None:
    for i in range(3):
        ok(redis_url, "enqueue", "HardJob", "--queue", "mail", "--args", f"[{i}]")
    [q] = js(redis_url, "queues")
    assert q["name"] == "mail" and q["size"] == 3 and q["latency"] >= 0
    stats = js(redis_url, "stats", "--days", "2")
    assert stats["enqueued"] == 3 and stats["queues"]["mail"]["size"] == 3
    assert len(stats["history"]["processed"]) == 2
    assert ok(redis_url, "clear", "mail", "--yes") == "cleared queue mail (3 jobs)\n"
    assert js(redis_url, "queues") == []


def test_enqueue_now_later_and_against_a_schema(redis_url: str, r: redispy.Redis) -> None:
    jid = ok(redis_url, "enqueue", "HardJob", "--args", '[1, "two"]').strip()
    job = json.loads(r.lindex("queue:default", 0))
    assert job["jid"] == jid and job["args"] == [1, "two"] and job["class"] == "HardJob"
    later = ok(redis_url, "enqueue", "HardJob", "--in", "5m").strip()
    [(raw, score)] = r.zrange("schedule", 0, -1, withscores=True)
    assert json.loads(raw)["jid"] == later and abs(score - time.time() - 300) < 30
    ok(redis_url, "enqueue", "HardJob", "--at", "2030-01-01T00:00:00")
    assert r.zscore("schedule", r.zrange("schedule", -1, -1)[0]) == 1893456000.0
    assert gk(redis_url, "enqueue", "HardJob", "--args", "{}").returncode == 2


def test_enqueue_checks_a_generated_schema(redis_url: str, r: redispy.Redis) -> None:
    """schemas/nightly_cleanup.json: no arguments, queue "low", retry false."""
    bad = gk(redis_url, "enqueue", "NightlyCleanupJob", "--schemas", "schemas", "--args", '["x"]')
    assert bad.returncode == 2 and "args do not match the job's schema" in bad.stderr
    assert r.llen("queue:low") == 0
    jid = ok(redis_url, "enqueue", "NightlyCleanupJob", "--schemas", "schemas").strip()
    job = json.loads(r.lindex("queue:low", 0))
    assert job["jid"] == jid and job["args"] == [] and job["retry"] is False
    unknown = gk(redis_url, "enqueue", "NoSuchJob", "--schemas", "schemas")
    assert unknown.returncode == 2 and "no schema" in unknown.stderr


@needs_sidekiq
def test_processes_busy_and_stop_a_real_sidekiq(redis_url: str, sidekiq: SidekiqProcess) -> None:
    [proc] = js(redis_url, "processes")
    assert proc["concurrency"] == 5 and proc["queues"] == ["default", "ruby"]
    assert proc["quiet"] is False and proc["busy"] == 0
    assert js(redis_url, "busy") == []
    text = ok(redis_url, "processes")
    assert proc["identity"] in text and "running" in text
    assert ok(redis_url, "quiet", proc["identity"]).startswith("sent TSTP")
    wait_for(lambda: js(redis_url, "processes")[0]["quiet"], timeout=20, interval=0.5)
    assert ok(redis_url, "stop", proc["identity"]).startswith("sent TERM")
    sidekiq.proc.wait(timeout=40)
    assert js(redis_url, "processes") == []
    gone = gk(redis_url, "stop", proc["identity"])
    assert gone.returncode == 1 and "no live process" in gone.stderr


def test_watch_and_cron(redis_url: str, cm: gredis.ConnManager) -> None:
    ok(redis_url, "enqueue", "HardJob", "--queue", "mail")
    out = ok(redis_url, "watch", "--count", "2", "--interval", "0.2")
    assert "gokogeri watch" in out and "mail" in out and "processed/s" in out
    p = Periodic(cm, identity="node-x")
    entry = p.cron("*/5 * * * *", Job("CleanupJob", "low"), name="cleanup")
    p._register(time.time())
    p.fire(entry, entry.next_run)
    [c] = js(redis_url, "cron")
    assert c["name"] == "cleanup" and c["schedule"] == "*/5 * * * *"
    assert c["last_run"] == entry.next_run and c["next_run"] > time.time()
    assert "cleanup" in ok(redis_url, "cron")


def test_bad_redis_url_is_one_line(redis_url: str) -> None:
    out = gk("redis://127.0.0.1:1/0", "stats")
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "cannot reach Redis" in out.stderr
    out = gk(redis_url, "dead", "--redis-url", "nope://x")
    assert out.returncode == 2 and out.stderr.startswith("gokogeri: ")
