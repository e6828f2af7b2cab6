"""The harness itself: Sidekiq's API, the retry path and the Web UI answer on every version.

Cheap checks that the Ruby helpers (api.rb, config.ru, FailJob) work everywhere, so a failure
in a real interop test is about the protocol, not the plumbing.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.request
import zlib
from typing import Any

import pyclients
import pytest
from harness import SIDEKIQ_CONCURRENCY, SIDEKIQ_QUEUES, InteropEnv, InteropError, wait_for


def test_api_sees_the_ruby_sidekiq(sk: InteropEnv) -> None:
    out = sk.ruby_json("api.rb", "processes", "stats")
    assert out["sidekiq"] == sk.sidekiq_version
    [proc] = out["processes"]
    assert proc["concurrency"] == SIDEKIQ_CONCURRENCY
    assert proc["queues"] == list(SIDEKIQ_QUEUES)
    assert proc["busy"] == 0
    assert proc["quiet"] == "false" and proc["stopping"] is False
    if sk.major >= 7:  # 6.4 does not report its version in the heartbeat
        assert proc["version"] == sk.sidekiq_version
    assert out["stats"]["processes_size"] == 1


def test_failed_job_reaches_the_retry_set(sk: InteropEnv) -> None:
    pusher = pyclients.RedisPyPusher(sk.redis_url)
    try:
        now = time.time()
        jid = pusher.push("FailJob", "default", ["boom from python"], backtrace=True)
    finally:
        pusher.close()
    [(raw, _score)] = wait_for(lambda: sk.raw_zset("retry"), 15, "the job in the retry set")
    stored: dict[str, Any] = json.loads(raw)
    assert stored["jid"] == jid
    # 8.x writes failed_at as integer ms, earlier versions float seconds.
    failed_at = stored["failed_at"]
    assert type(failed_at) is (int if sk.major >= 8 else float)
    assert abs((failed_at / 1000 if sk.major >= 8 else failed_at) - now) < 60
    lines = json.loads(zlib.decompress(base64.b64decode(stored["error_backtrace"])))
    assert any("jobs.rb" in line for line in lines)

    [entry] = sk.ruby_json("api.rb", "retries")["retries"]
    assert entry["jid"] == jid
    assert entry["error_class"] == "Interop::InteropError"
    assert entry["error_message"] == "boom from python"
    assert entry["retry_count"] == 0
    assert entry["error_backtrace"] == lines


def test_web_ui_busy_page_lists_the_ruby_sidekiq(sk: InteropEnv, web_url: str) -> None:
    identities = [m.decode() for m in sk.raw_set("processes")]
    with urllib.request.urlopen(web_url + "/busy", timeout=10) as resp:
        assert resp.status == 200
        html = resp.read().decode()
    # The Busy page shows each process by hostname:pid.
    hostname = identities[0].rsplit(":", 2)[0]
    assert hostname in html


def test_ruby_script_errors_are_reported(sk: InteropEnv) -> None:
    with pytest.raises(InteropError, match="exited"):
        sk.ruby("push.rb", "not json")
