"""The admin API and the operator CLI against Sidekiq's own API on every Sidekiq of the matrix.

What gokogeri retries/kills/deletes/clears, Ruby's Sidekiq::API sees the same way, and the
reverse; ``gokogeri quiet``/``stop`` act on the real Ruby Sidekiq process. Ruby's side is
tests/ruby/api_check.rb, run with ``ruby -e`` inside the Sidekiq container (it needs only the
sidekiq gem and REDIS_URL), or as a file on the host.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import harness
import pytest
from harness import InteropEnv, wait_for

from gokogeri import redis as gredis
from gokogeri.api import Api

ROOT = Path(__file__).resolve().parent.parent
API_CHECK = ROOT / "tests" / "ruby" / "api_check.rb"

pytestmark = pytest.mark.flavour_independent


def rb(sk: InteropEnv, *args: str) -> Any:
    """Sidekiq's API in the environment's own Ruby: api_check.rb's JSON result."""
    if isinstance(sk, harness.ContainerEnv):
        out = sk._exec(["ruby", "-e", API_CHECK.read_text(), *args])
    else:
        res = subprocess.run(
            ["ruby", str(API_CHECK), *args],
            env=dict(os.environ, REDIS_URL=sk.redis_url),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert res.returncode == 0, res.stderr
        out = res.stdout
    return json.loads(out)["result"]


def gk(sk: InteropEnv, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gokogeri", *args],
        env=dict(os.environ, GOKOGERI_REDIS_URL=sk.redis_url, COLUMNS="200"),
        cwd=str(ROOT),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_python_actions_seen_by_ruby(sk: InteropEnv) -> None:
    jids = rb(sk, "seed", "retry", "4", "FailJob", "parked")
    cm = gredis.ConnManager(gredis.Config(url=sk.redis_url))
    try:
        api = Api(cm)
        assert {e.jid for e in api.retries()} == set(jids)
        for jid, action in zip(jids[:3], ("retry", "kill", "delete"), strict=True):
            entry = api.retry_set.find_job(jid)
            assert entry is not None and getattr(entry, action)() is True
        rb(sk, "retry", "retry", jids[3])  # Ruby's own retry, for comparison
        queued = {j["jid"]: json.loads(j["value"]) for j in rb(sk, "queue", "parked")["jobs"]}
        assert set(queued) == {jids[0], jids[3]}
        ours, theirs = queued[jids[0]], queued[jids[3]]
        assert ours["retry_count"] == theirs["retry_count"] == 1
        assert set(ours) == set(theirs), "the same fields as Sidekiq's Client.push writes"
        # Sidekiq 8 writes enqueued_at in integer ms, earlier ones float seconds; a retried job
        # keeps the form its own created_at has (float here, seeded by Time.now.to_f).
        assert type(ours["enqueued_at"]) is float
        assert [d["jid"] for d in rb(sk, "list", "dead")] == [jids[1]]
        assert rb(sk, "list", "retry") == []
        # Queue#clear from Python; Ruby's stats no longer list the queue.
        api.queue("parked").clear()
        assert "parked" not in rb(sk, "stats")["queues"]
    finally:
        cm.close()


def test_ruby_actions_seen_by_the_cli(sk: InteropEnv) -> None:
    jids = rb(sk, "seed", "retry", "3", "FailJob", "parked")
    rb(sk, "retry", "retry", jids[0])
    rb(sk, "kill", "retry", jids[1])
    out = gk(sk, "retries", "--json")
    assert out.returncode == 0, out.stderr
    assert [e["jid"] for e in json.loads(out.stdout)["entries"]] == [jids[2]]
    dead = json.loads(gk(sk, "dead", "--json").stdout)["entries"]
    assert [e["jid"] for e in dead] == [jids[1]]
    [q] = [q for q in json.loads(gk(sk, "queues", "--json").stdout) if q["name"] == "parked"]
    assert q["size"] == 1
    rb(sk, "kill_all", "retry")
    assert json.loads(gk(sk, "retries", "--json").stdout)["size"] == 0
    assert json.loads(gk(sk, "dead", "--json").stdout)["size"] == 2
    # And back: the CLI retries the whole dead set, Ruby sees it queued.
    assert gk(sk, "retry", "--all", "--set", "dead", "--yes").returncode == 0
    assert rb(sk, "list", "dead") == []
    assert rb(sk, "queue", "parked")["size"] == 3


def test_stats_match(sk: InteropEnv) -> None:
    rb(sk, "push", "parked", "RecordJob", "2")
    rb(sk, "seed", "dead", "3", "FailJob", "parked")
    ruby = rb(sk, "stats")
    ours = json.loads(gk(sk, "stats", "--json", "--days", "2").stdout)
    for key in ("processed", "failed", "retry_size", "dead_size", "scheduled_size", "enqueued"):
        assert ours[key] == ruby[key], key
    assert {q: v["size"] for q, v in ours["queues"].items()} == ruby["queues"]
    assert ours["history"]["processed"] == ruby["history"]["processed"]


def test_gokogeri_quiets_and_stops_the_ruby_sidekiq(sk: InteropEnv) -> None:
    procs = json.loads(gk(sk, "processes", "--json").stdout)
    ruby_procs = rb(sk, "processes")
    [proc] = [p for p in procs if p["identity"] == ruby_procs[0]["identity"]]
    assert proc["concurrency"] == ruby_procs[0]["concurrency"]
    if sk.major >= 7:
        assert proc["version"] == sk.sidekiq_version
    try:
        assert gk(sk, "quiet", proc["identity"]).returncode == 0
        # Sidekiq reads its signals at its heartbeat: 5 s (6.x), 10 s (7/8).
        wait_for(
            lambda: rb(sk, "processes")[0]["quiet"] == "true",
            timeout=40,
            what="Sidekiq to go quiet",
            interval=1,
        )
        assert gk(sk, "stop", proc["identity"]).returncode == 0
        # The container exits with Sidekiq, so the check reads Redis from here: Sidekiq's
        # shutdown removes its identity from `processes`.
        wait_for(
            lambda: (
                not any(
                    p["identity"] == proc["identity"]
                    for p in json.loads(gk(sk, "processes", "--json").stdout)
                )
            ),
            timeout=60,
            what="Sidekiq to stop",
            interval=1,
        )
    finally:
        time.sleep(0.5)
        sk.restart_sidekiq()  # the next tests need a running Sidekiq
