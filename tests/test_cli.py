"""``gokogeri run`` and ``gokogeri demo`` as a user runs them: real processes, real signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis as redispy
import typer

from gokogeri import Enqueuer, Job, OrderedQueueSet, RandomQueueSet
from gokogeri import redis as gredis
from gokogeri.cli import parse_queues
from tests.conftest import wait_for
from tests.workers import DONE

ROOT = Path(__file__).parent.parent


def start(redis_url: str, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "gokogeri", "run", "tests.workers:router", *args],
        env=dict(os.environ, GOKOGERI_REDIS_URL=redis_url),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def test_parse_queues_like_sidekiq() -> None:
    assert isinstance(parse_queues(["a", "b"]), OrderedQueueSet)
    qs = parse_queues(["a,3", "b,1"])
    assert isinstance(qs, RandomQueueSet) and qs.weights() == {"a": 3, "b": 1}
    assert parse_queues([]).get_queues() == ["default"]
    with pytest.raises(typer.BadParameter):
        parse_queues(["a,x"])
    with pytest.raises(typer.BadParameter):
        parse_queues(["bad name"])


def test_run_flags_signals_and_logging(cm: gredis.ConnManager, r: redispy.Redis, redis_url: str) -> None:
    proc = start(redis_url, "-q", "critical,3", "-q", "low,1", "-c", "4", "--tag", "cli", "-t", "5")
    try:
        ident = wait_for(lambda: r.smembers("processes"), timeout=15).pop()
        info = json.loads(r.hget(ident, "info"))
        assert info["concurrency"] == 4 and info["tag"] == "cli"
        assert set(info["queues"]) == {"critical", "low"}
        assert info["weights"] == [{"critical": 3, "low": 1}]
        Enqueuer(cm).enqueue(Job("Record", queue="low", args=["private@example.com"]))
        wait_for(lambda: r.llen(DONE) == 1)
        proc.send_signal(signal.SIGTSTP)
        wait_for(lambda: r.hget(ident, "quiet") == b"true", timeout=10)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = proc.stdout.read().decode() if proc.stdout else ""
    assert "class=Record" in out and " INFO: start" in out and " INFO: done" in out
    assert "private@example.com" not in out  # args never logged at INFO
    assert "Bye!" in out
    assert not r.sismember("processes", ident)


def test_run_rejects_bad_targets(redis_url: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "gokogeri", "run", "tests.workers:nothing_here"],
        env=dict(os.environ, GOKOGERI_REDIS_URL=redis_url),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode != 0 and "has no attribute" in out.stderr


def test_demo_runs_end_to_end_on_an_embedded_redis() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("GOKOGERI_REDIS_URL", "REDIS_URL")}
    t0 = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "gokogeri", "demo", "--jobs", "300"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "embedded redis-server" in out.stdout and "demo summary" in out.stdout
    assert time.monotonic() - t0 < 60
