"""The swarm parent (gokogeri.swarm) with real forked node processes.

Each test runs ``python -m tests.swarm_app`` (Swarm(make_node, N)) against the
session's redis-server and drives it with real signals: SIGKILL of a child
mid-drain, TERM/INT/TSTP/TTIN to the parent, a crash-looping child, a child
over its memory limit. Ruby Sidekiq's ProcessSet must list every child.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redispy

import gokogeri
from gokogeri import redis as gredis
from gokogeri.swarm import index_tag, processes_for
from tests.conftest import needs_sidekiq, ruby, wait_for
from tests.swarm_app import DONE

ROOT = Path(__file__).parent.parent


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class SwarmProcess:
    def __init__(self, redis_url: str, **env: str) -> None:
        self.log = open(f"/tmp/gokogeri-swarm-{os.getpid()}-{time.monotonic_ns()}.log", "w+b")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.swarm_app"],
            env=dict(os.environ, GOKOGERI_REDIS_URL=redis_url, **env),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=str(ROOT),
        )

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout: float = 60) -> int:
        return self.proc.wait(timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture
def swarm(redis_url: str) -> Iterator[Any]:
    started: list[SwarmProcess] = []

    def start(**env: str) -> SwarmProcess:
        sp = SwarmProcess(redis_url, **env)
        started.append(sp)
        return sp

    yield start
    for sp in started:
        sp.close()


def children(r: redispy.Redis) -> dict[str, dict[str, Any]]:
    """identity -> info of every live process in the processes set."""
    out = {}
    for ident in r.smembers("processes"):
        info = r.hget(ident, "info")
        if info:
            out[ident.decode()] = json.loads(info)
    return out


def child_pids(r: redispy.Redis) -> set[int]:
    return {int(i["pid"]) for i in children(r).values()}


def enqueue(
    redis_url: str, cls: str, args_list: list[list[Any]], queue: str = "default"
) -> list[str]:
    with gredis.ConnManager(gredis.Config(url=redis_url)) as cm:
        jids = gokogeri.Enqueuer(cm).enqueue_many(
            gokogeri.Job(class_name=cls, queue=queue, args=[]), args_list
        )
    return [j for j in jids if j]


def done(r: redispy.Redis) -> list[dict[str, Any]]:
    return [json.loads(x) for x in r.lrange(DONE, 0, -1)]


def test_processes_and_tags() -> None:
    assert processes_for(3) == 3
    assert processes_for(0) == (os.cpu_count() or 1)
    with pytest.raises(ValueError):
        processes_for(-1)
    assert index_tag("app", 1) == "app.1"
    assert index_tag("", 0) == "swarm.0"


def test_sigkill_of_a_child_mid_drain_loses_nothing(
    swarm: Any, redis_url: str, r: redispy.Redis
) -> None:
    sp = swarm(SWARM_P="2")
    wait_for(lambda: len(children(r)) == 2, timeout=30)
    first = child_pids(r)
    jids = enqueue(redis_url, "Sleep", [[0.02] for _ in range(600)])
    wait_for(lambda: r.llen(DONE) >= 100, timeout=30)
    victim = sorted(first)[0]
    os.kill(victim, signal.SIGKILL)
    # The parent starts a replacement; the dead child's held jobs are rescued.
    wait_for(lambda: len(child_pids(r) - first) == 1 and len(children(r)) >= 2, timeout=30)
    wait_for(lambda: {d["jid"] for d in done(r)} >= set(jids), timeout=60, interval=0.1)
    assert "died (killed by SIGKILL)" in sp.output()
    runs = [d["jid"] for d in done(r)]
    print(f"\nswarm SIGKILL: {len(jids)} jobs, {len(runs) - len(set(runs))} ran twice")
    sp.signal(signal.SIGTERM)
    assert sp.wait() == 0


def test_term_waits_for_running_jobs_then_every_child_is_gone(
    swarm: Any, redis_url: str, r: redispy.Redis
) -> None:
    sp = swarm(SWARM_P="2", SWARM_TIMEOUT="10", SWARM_CONCURRENCY="1")
    wait_for(lambda: len(children(r)) == 2, timeout=30)
    pids = child_pids(r)
    jids = enqueue(redis_url, "Sleep", [[1.5], [1.5]])

    def running() -> set[str]:
        out = set()
        for ident in children(r):
            for work in r.hvals(f"{ident}:work"):
                out.add(json.loads(json.loads(work)["payload"])["jid"])
        return out

    busy = wait_for(running, timeout=30)
    sp.signal(signal.SIGTERM)
    assert sp.wait(timeout=60) == 0
    # Jobs running at TERM finished inside the grace period rather than being
    # cut off; any job only prefetched went back to its queue.
    finished = {d["jid"] for d in done(r)}
    assert busy <= finished
    queued = {json.loads(p)["jid"] for p in r.lrange("queue:default", 0, -1)}
    assert finished | queued == set(jids)
    assert not any(pid_alive(p) for p in pids)
    assert r.scard("processes") == 0
    assert "Got SIGTERM: forwarding it to 2 processes" in sp.output()


def test_int_stops_like_term(swarm: Any, r: redispy.Redis) -> None:
    sp = swarm(SWARM_P="2")
    wait_for(lambda: len(children(r)) == 2, timeout=30)
    pids = child_pids(r)
    sp.signal(signal.SIGINT)
    assert sp.wait() == 0
    assert not any(pid_alive(p) for p in pids)


def test_tstp_and_ttin_are_forwarded(swarm: Any, r: redispy.Redis) -> None:
    sp = swarm(SWARM_P="2")
    wait_for(lambda: len(children(r)) == 2, timeout=30)
    pids = child_pids(r)
    sp.signal(signal.SIGTTIN)
    # Each child dumps its threads (the node logs every thread's stack).
    def dumped() -> set[int]:
        dumps = [ln for ln in sp.output().splitlines() if "Thread MainThread" in ln]
        return {p for p in pids if any(f"pid={p} " in ln for ln in dumps)}

    # Every child, not just any: each writes its own dump line.
    wait_for(lambda: dumped() == pids, timeout=30, what="every child dumped its threads")
    sp.signal(signal.SIGTSTP)
    wait_for(lambda: all(r.hget(i, "quiet") == b"true" for i in children(r)), timeout=30)
    assert sp.proc.poll() is None  # quiet is not stop
    sp.signal(signal.SIGTERM)
    assert sp.wait() == 0


def test_signals_from_the_first_moment_neither_freeze_nor_hang_a_child(
    swarm: Any, redis_url: str, r: redispy.Redis
) -> None:
    # TTIN every 20 ms from the moment the parent handles signals: children
    # get them while forking, building the node and starting its threads. A
    # child must not be stopped by TTIN's default action before its handlers
    # exist, nor deadlock handling one mid Thread.start(); each keeps working.
    sp = swarm(SWARM_P="2")
    wait_for(lambda: "Starting swarm" in sp.output(), timeout=30)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        sp.signal(signal.SIGTTIN)
        time.sleep(0.02)
    wait_for(lambda: len(children(r)) == 2, timeout=30, what="both children registered")
    pids = child_pids(r)
    dumps = [ln for ln in sp.output().splitlines() if "Thread MainThread" in ln]
    assert {p for p in pids if any(f"pid={p} " in ln for ln in dumps)} == pids
    jids = enqueue(redis_url, "Record", [[i] for i in range(20)])
    wait_for(lambda: {d["jid"] for d in done(r)} >= set(jids), timeout=30, what="jobs ran")
    assert child_pids(r) == pids  # nobody died and was replaced
    sp.signal(signal.SIGTERM)
    assert sp.wait() == 0


def test_crash_looping_child_is_given_up_the_others_keep_working(
    swarm: Any, redis_url: str, r: redispy.Redis
) -> None:
    sp = swarm(SWARM_P="2", SWARM_FAIL_INDEX="1", SWARM_BACKOFF="0.05,0.2", SWARM_CRASH_LIMIT="3")
    wait_for(lambda: "not restarting it" in sp.output(), timeout=30)
    assert sp.output().count("Process 1 died (exit status 1); restarting") == 2  # then given up
    jids = enqueue(redis_url, "Record", [[i] for i in range(20)])
    wait_for(lambda: {d["jid"] for d in done(r)} >= set(jids), timeout=30)
    assert {d["index"] for d in done(r)} == {"0"}
    sp.signal(signal.SIGTERM)
    assert sp.wait() == 0


def test_swarm_exits_non_zero_when_every_child_crash_loops(swarm: Any) -> None:
    sp = swarm(SWARM_P="1", SWARM_FAIL_INDEX="0", SWARM_BACKOFF="0.05,0.1", SWARM_CRASH_LIMIT="2")
    assert sp.wait(timeout=60) == 1
    assert "every swarm process is crash-looping" in sp.output()


def test_child_over_max_rss_finishes_its_job_and_is_replaced(
    swarm: Any, redis_url: str, r: redispy.Redis
) -> None:
    sp = swarm(SWARM_P="2", SWARM_MAX_RSS_KB=str(200 * 1024), SWARM_CONCURRENCY="1")
    wait_for(lambda: len(children(r)) == 2, timeout=30)
    before = child_pids(r)
    (jid,) = enqueue(redis_url, "Bloat", [[300]])
    wait_for(lambda: "max RSS" in sp.output() and "replacing it" in sp.output(), timeout=30)
    wait_for(lambda: len(child_pids(r) - before) == 1 and len(children(r)) == 2, timeout=30)
    records = done(r)
    assert [d["jid"] for d in records] == [jid]  # the job finished, once
    bloated = int(records[0]["pid"])
    assert bloated in before
    assert not pid_alive(bloated)
    assert len(before & child_pids(r)) == 1  # the other child was left alone
    sp.signal(signal.SIGTERM)
    assert sp.wait() == 0


@needs_sidekiq
def test_ruby_process_set_lists_every_child(swarm: Any, redis_url: str, r: redispy.Redis) -> None:
    sp = swarm(SWARM_P="3", SWARM_TAG="web")
    wait_for(lambda: len(children(r)) == 3, timeout=30)
    out = ruby(
        "ps = Sidekiq::ProcessSet.new; puts ps.size; puts ps.map { |p| p['tag'] }.sort.join(',')",
        redis_url,
    )
    size, tags = out.split()
    assert size == "3"
    assert tags == "web.0,web.1,web.2"
    sp.signal(signal.SIGTERM)
    assert sp.wait() == 0
