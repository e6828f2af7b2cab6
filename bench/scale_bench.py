"""Drain benchmark: a gokogeri swarm (``-p 2``) vs Sidekiq 6.4.1 (one process).

    python -m bench.scale_bench                 # 20,000 jobs, 3 interleaved runs
    python -m bench.scale_bench --jobs 5000 --runs 1   # a quick look

The same fair-play rules as the main harness (bench/README.md): one fresh
redis-server per measurement, the queue filled first with the same
sidekiqload payloads (args ``["string", i, {"mike": "bob"}]``) for both
systems, concurrency 10 per process, per-job logging off, runs interleaved
(run 1 of each system and job kind, then run 2, ...) and the median reported.

Job kinds: NoopJob (does nothing; done = queue empty and, for gokogeri, its
crash-safe working lists empty too), IncrJob (one Redis INCR per job through
the system's ordinary client: a module-level redis-py client, Ruby's
Sidekiq.redis; done = the counter reaches N, exact) and, on the gokogeri side
only, IncrCtxJob (the same INCR through ``ctx.redis``, compared with
Sidekiq's IncrJob).
Rate = N / (first job taken -> done), so boot time is left out (reported).

The gokogeri side is ``Swarm(make_node, 2)`` from gokogeri.swarm: the parent
imports once and forks two nodes, as ``gokogeri run -p 2`` does. On a 2-core
machine that is one process per core; Sidekiq is bound to one core by its GVL.
Nothing is asserted about speed; the exit status is non-zero only if a run
broke (a worker that never started, a failed job, a time-out).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis as redispy

import gokogeri
from bench.procs import Managed, fresh_redis, stop_all
from bench.scenarios import poll_period
from bench.systems import JOB_CLASS, fill_sidekiq_format
from gokogeri import redis as gredis

HERE = Path(__file__).resolve().parent
SIDEKIQ_JOBS = HERE / "workers" / "sidekiq_jobs.rb"
CONCURRENCY = 10  # Sidekiq 6's default -c, per process on both sides
PROCESSES = 2
KINDS = {kind: JOB_CLASS[kind] for kind in ("noop", "incr", "incr-ctx")}
# Sidekiq has one INCR job (Sidekiq.redis, its pooled client): both gokogeri
# INCR kinds are compared with it.
SIDEKIQ_KIND = {"noop": "noop", "incr": "incr", "incr-ctx": "incr"}
WHAT = {"noop": "no-op", "incr": "one INCR (module-level redis-py client)",
        "incr-ctx": "one INCR (ctx.redis)"}
DRAIN_TIMEOUT = 120.0
BOOT_TIMEOUT = 30.0
POLL = 0.002

PENDING = """
local n = redis.call('LLEN', KEYS[1])
for _, w in ipairs(redis.call('HKEYS', KEYS[2])) do n = n + redis.call('LLEN', w) end
return n
"""


# --- the gokogeri side: a swarm worker, run as `python -m bench.scale_bench --worker URL` ---


def _swarm_worker(url: str, processes: int) -> int:
    from gokogeri.swarm import Swarm

    def make_node(index: int) -> gokogeri.Node:
        cm = gredis.ConnManager(gredis.Config(url=url))
        counter = redispy.Redis.from_url(url)  # a user's own client, as IncrJob in Ruby
        router = gokogeri.Router()
        router.register("NoopJob", gokogeri.WorkerFunc(lambda ctx, job: None))
        router.register("IncrJob", gokogeri.WorkerFunc(lambda ctx, job: counter.incr("bench:done")))
        router.register(
            "IncrCtxJob", gokogeri.WorkerFunc(lambda ctx, job: ctx.redis.incr("bench:done"))
        )
        node = gokogeri.Node(gokogeri.nop_logger(), cm, tag="bench")
        node.process_queues(gokogeri.OrderedQueueSet(["default"]), router, CONCURRENCY)
        return node

    import logging

    logger = gokogeri.default_logger(logging.WARNING)
    return Swarm(make_node, processes, logger=logger, shutdown_timeout=5).run()


# --- harness ---


def tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its children (the swarm's nodes
    run in process groups of their own, so the group total would miss them)."""
    ticks = os.sysconf("SC_CLK_TCK")
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                text = (entry / "stat").read_text()
            except OSError:
                continue
            stats[int(entry.name)] = text[text.rindex(")") + 2 :].split()
    tree = {pid}
    grew = True
    while grew:
        grew = False
        for p, f in stats.items():
            if p not in tree and int(f[1]) in tree:  # field 4: ppid
                tree.add(p)
                grew = True
    return sum(int(stats[p][11]) + int(stats[p][12]) for p in tree if p in stats) / ticks


def start_gokogeri(url: str, log: Path) -> Managed:
    argv = [sys.executable, "-m", "bench.scale_bench", "--worker", url, "-p", str(PROCESSES)]
    return Managed("gokogeri-p2", argv, log)


def start_sidekiq(url: str, log: Path) -> Managed:
    sidekiq = shutil.which("sidekiq")
    assert sidekiq is not None
    argv = [sidekiq, "-r", str(SIDEKIQ_JOBS), "-q", "default", "-c", str(CONCURRENCY)]
    return Managed("sidekiq", argv, log, env={"BENCH_REDIS_URL": url, "BENCH_LOG": "off"})


SYSTEMS: dict[str, tuple[str, Callable[[str, Path], Managed]]] = {
    "gokogeri-p2": (f"gokogeri, {PROCESSES} processes (swarm)", start_gokogeri),
    "sidekiq": ("Sidekiq 6.4.1, 1 process", start_sidekiq),
}


def measure(system: str, kind: str, n: int, log_dir: Path, run: int) -> dict[str, Any]:
    _label, start = SYSTEMS[system]
    with fresh_redis() as (url, r):
        fill_sidekiq_format(url, n, kind)
        assert r.llen("queue:default") == n, "fill lost jobs"
        pending = r.register_script(PENDING)

        def remaining() -> int:
            if kind.startswith("incr"):
                return n - int(r.get("bench:done") or 0)
            if system == "sidekiq":
                return int(r.llen("queue:default"))
            return int(pending(keys=["queue:default", "gokogeri:working"]))

        load = os.getloadavg()[0]
        spawned = time.perf_counter()
        proc = start(url, log_dir / f"{system}-{kind}-run{run}.log")
        try:
            while r.llen("queue:default") == n:
                if not proc.alive() or time.perf_counter() - spawned > BOOT_TIMEOUT:
                    raise RuntimeError(f"{system} did not start:\n{proc.tail()}")
                time.sleep(POLL)
            first = time.perf_counter()
            while (left := remaining()) > 0:
                now = time.perf_counter()
                if now - first > DRAIN_TIMEOUT:
                    raise RuntimeError(f"{system} did not drain {n} {kind} jobs in time")
                if not proc.alive():
                    raise RuntimeError(f"{system} died:\n{proc.tail()}")
                # Coarse in the middle, POLL near the end (the poller's own load
                # skews a drain: scenarios.poll_period).
                time.sleep(poll_period(first, now, n - left, left))
            end = time.perf_counter()
            cpu = tree_cpu_s(proc.pid)
        finally:
            proc.stop()
        failed = int(r.zcard("retry")) + int(r.zcard("dead"))
        if failed:
            raise RuntimeError(f"{system}: {failed} {kind} jobs failed")
    return {
        "system": system,
        "kind": kind,
        "run": run,
        "jobs": n,
        "boot_s": round(first - spawned, 3),
        "drain_s": round(end - first, 3),
        "rate": round(n / (end - first)),
        "cpu_us_per_job": round(cpu / n * 1e6, 1),
        "load1": round(load, 2),
    }


def report(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| jobs | system | median rate (jobs/s) | runs | worker CPU/job | boot | vs Sidekiq |",
        "|---|---|---:|---|---:|---:|---:|",
    ]
    medians: dict[tuple[str, str], float] = {}
    for kind in KINDS:
        for system in SYSTEMS:
            rs = [x for x in rows if x["system"] == system and x["kind"] == kind]
            if rs:
                medians[(system, kind)] = statistics.median(x["rate"] for x in rs)
    for kind in KINDS:
        for system, (label, _) in SYSTEMS.items():
            rs = [x for x in rows if x["system"] == system and x["kind"] == kind]
            if not rs:
                continue
            med = medians[(system, kind)]
            base = medians.get(("sidekiq", SIDEKIQ_KIND[kind]))
            ratio = f"{med / base:.2f}x" if base else "-"
            runs = ", ".join(str(x["rate"]) for x in rs)
            cpu = statistics.median(x["cpu_us_per_job"] for x in rs)
            boot = statistics.median(x["boot_s"] for x in rs)
            what = WHAT[kind]
            lines.append(
                f"| {what} | {label} | {med:,.0f} | {runs} | {cpu:.0f} µs | {boot:.2f} s | {ratio} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--kinds", default="noop,incr,incr-ctx")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    ap.add_argument("--worker", metavar="URL", help=argparse.SUPPRESS)
    ap.add_argument("-p", type=int, default=PROCESSES, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return _swarm_worker(args.worker, args.p)
    if shutil.which("sidekiq") is None:
        print("sidekiq is not on PATH (apt-get install ruby-sidekiq)", file=sys.stderr)
        return 2
    kinds = [k for k in args.kinds.split(",") if k]
    log_dir = Path(tempfile.mkdtemp(prefix="gokogeri-scale-bench-"))
    rows: list[dict[str, Any]] = []
    try:
        for run in range(1, args.runs + 1):
            for kind in kinds:
                for system in SYSTEMS:
                    if system == "sidekiq" and SIDEKIQ_KIND[kind] != kind:
                        continue  # measured once, as its own kind
                    row = measure(system, kind, args.jobs, log_dir, run)
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    finally:
        stop_all()
    table = report(rows)
    print()
    print(f"{args.jobs:,} jobs per run, {args.runs} interleaved runs, {os.cpu_count()} cores")
    print(table)
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "table": table}, indent=2))
    shutil.rmtree(log_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
