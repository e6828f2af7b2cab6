"""``python -m bench``: run every benchmark, write bench/results/, print the table.

    python -m bench                 # full run (~40 min): results/latest.json + drain.png
    python -m bench --only ab --ref 487d089   # this tree vs a commit (temporary git worktree)
    python -m bench --quick         # harness smoke test (<60 s), results/quick.json
    python -m bench --setup-peers   # once: virtualenvs for RQ, Dramatiq, huey, arq, Celery
    python -m bench --only drain    # a subset: see --help for the scenario names

Systems that are not installed (Sidekiq, a peer's virtualenv, py-spy) are
reported as skipped, never as failures, so --quick runs anywhere gokogeri's
tests run. Exit status is non-zero only if the harness itself broke.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import ioprof, report, rows, scenarios
from bench.procs import RESULTS, library_fingerprint, stop_all
from bench.systems import all_targets, setup_peers

ALL = ["ceiling", "drain", "enqueue", "latency", "scheduled", "rss", "profile",
       "io", "metrics", "switch", "proto", "ab", "ioprofile"]
# Run only when asked for by name (--only) or, for ab, when --ref is given.
ON_REQUEST = {"ab"}


@dataclass(frozen=True)
class Sizes:
    drain_jobs: int
    peer_drain_jobs: int  # the slowest peers (RQ, arq) run ~100-1000 jobs/s
    repeats: int
    drain_budget_s: float  # stop repeating a system once this is spent
    max_drain_s: float  # a longer drain is stopped and rated by the jobs done so far
    incr: bool  # also run the "incr" (exact completion) drain, once per system
    single_enqueue: int
    bulk_enqueue: int
    latency_samples: int
    scheduled_jobs: int
    scheduled_spread_s: float
    rss_jobs: int
    profile_jobs: int
    ceiling_requests: int
    sidekiq_scheduled: bool
    sidekiq_latency: bool
    io_jobs: int  # I/O-bound drains (INCR, 1 ms sleep): ~2-10 s each at full size
    rows_repeats: int  # interleaved rounds of the io/metrics/switch/ab rows
    ioprofile_jobs: int
    # The smoke run skips the logging-on and BRPOP-with-logging variants: each
    # costs a worker start and stop (~1-3 s) and tests no extra harness code.
    skip_targets: frozenset[str] = frozenset()


FULL = Sizes(
    drain_jobs=50_000,
    peer_drain_jobs=20_000,  # their fill alone takes 5-20 s at 50k
    repeats=3,
    drain_budget_s=90,
    max_drain_s=30,
    incr=True,
    single_enqueue=20_000,
    bulk_enqueue=200_000,
    latency_samples=1000,
    scheduled_jobs=200,
    scheduled_spread_s=10,
    rss_jobs=1_000_000,
    profile_jobs=200_000,
    ceiling_requests=200_000,
    sidekiq_scheduled=True,
    sidekiq_latency=True,
    io_jobs=20_000,
    rows_repeats=3,
    ioprofile_jobs=30_000,
)
QUICK = Sizes(
    drain_jobs=1_000,
    peer_drain_jobs=200,
    repeats=1,
    drain_budget_s=10,
    max_drain_s=5,
    incr=False,
    single_enqueue=500,
    bulk_enqueue=5_000,
    latency_samples=50,
    scheduled_jobs=10,
    scheduled_spread_s=1,
    rss_jobs=10_000,
    profile_jobs=0,
    ceiling_requests=10_000,
    sidekiq_scheduled=False,
    sidekiq_latency=False,
    io_jobs=300,
    rows_repeats=1,
    ioprofile_jobs=0,
    skip_targets=frozenset({"gokogeri-reliable-logon", "gokogeri-basic-logon", "sidekiq-logon"}),
)


def environment() -> dict[str, Any]:
    def out(argv: list[str]) -> str:
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip()
        except OSError:
            return "not installed"

    import os

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "redis": out(["redis-server", "--version"]),
        "ruby": out(["ruby", "-v"]),
        "sidekiq": out(["ruby", "-r", "sidekiq", "-e", "print Sidekiq::VERSION"]),
        # The library under test changes fast: record exactly which one ran.
        "git": out(["git", "-C", str(RESULTS.parent.parent), "describe", "--always", "--dirty"]),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test of the harness")
    p.add_argument("--only", default=",".join(ALL), help="comma-separated subset of " + ",".join(ALL))
    p.add_argument("--systems", default="", help="comma-separated drain target keys (default all)")
    p.add_argument("--ref", default="",
                   help="git ref for the ab scenario (checked out in a temporary worktree)")
    p.add_argument("--setup-peers", action="store_true", help="create the peers' virtualenvs and exit")
    a = p.parse_args(argv)
    if a.setup_peers:
        setup_peers()
        return 0
    sizes = QUICK if a.quick else FULL
    only_given = a.only != p.get_default("only")
    only = [x.strip() for x in a.only.split(",") if x.strip()]
    unknown = set(only) - set(ALL)
    if unknown:
        p.error(f"unknown --only item(s): {', '.join(sorted(unknown))}")
    if not only_given:
        only = [x for x in only if x not in ON_REQUEST]
    ref = a.ref
    if a.quick and not ref:
        ref = "HEAD"  # the smoke run exercises the worktree machinery on HEAD
    if ref and "ab" not in only and not only_given:
        only.append("ab")
    if "ab" in only and not ref:
        p.error("--only ab needs --ref <commit> (e.g. --ref 487d089)")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    log_dir = RESULTS / "logs" / stamp
    RESULTS.mkdir(parents=True, exist_ok=True)
    res: dict[str, Any] = {
        "mode": "quick" if a.quick else "full",
        "started": stamp,
        "environment": environment(),
        "sizes": {k: sorted(v) if isinstance(v, frozenset) else v
                  for k, v in sizes.__dict__.items()},
        "library_at_start": library_fingerprint(),
    }
    t0 = time.perf_counter()
    try:
        run_all(res, sizes, only, a.systems, log_dir, ref, a.quick)
    finally:
        stop_all()
    res["wall_s"] = time.perf_counter() - t0
    res["library_at_end"] = library_fingerprint()
    name = "quick" if a.quick else "latest"
    if set(only) != set(ALL) - ON_REQUEST and set(only) != set(ALL):
        name += "-partial"
    (RESULTS / f"run-{stamp}.json").write_text(json.dumps(res, indent=1))
    (RESULTS / f"{name}.json").write_text(json.dumps(res, indent=1))
    table = report.table(res)
    (RESULTS / f"{name}.md").write_text(table)
    if "drain" in res:
        report.plot(res, RESULTS / f"{name.replace('latest', 'drain')}.png")
    print(table)
    print(f"wrote {RESULTS / (name + '.json')} in {res['wall_s']:.0f} s")
    return 0


def run_all(
    res: dict[str, Any], s: Sizes, only: list[str], systems: str, log_dir: Path,
    ref: str = "", quick: bool = False,
) -> None:
    t0 = time.perf_counter()

    def step(name: str) -> None:
        print(f"[{time.perf_counter() - t0:6.1f}s] {name}", flush=True)

    if "ceiling" in only:
        step("redis-benchmark")
        res["ceiling"] = scenarios.redis_ceiling(s.ceiling_requests)
    if "drain" in only:
        wanted = {x for x in systems.split(",") if x}
        res["drain"] = {}
        kinds = ["noop", "incr"] if s.incr else ["noop"]
        targets = [
            t for t in all_targets()
            if (t.key in wanted if wanted else t.key not in s.skip_targets)
        ]
        sizes = {"gokogeri": s.drain_jobs, "sidekiq": s.drain_jobs, "peer": s.peer_drain_jobs}
        for kind in kinds:
            step(f"drain {kind}: " + ", ".join(t.key for t in targets))
            res["drain"][kind] = scenarios.drain_all(
                targets, sizes, kind, s.repeats if kind == "noop" else 1, log_dir,
                s.drain_budget_s, s.max_drain_s,
            )
    if "enqueue" in only:
        step("enqueue")
        res["enqueue"] = {
            "single": scenarios.enqueue("single", s.single_enqueue, s.repeats),
            "bulk": scenarios.enqueue("bulk", s.bulk_enqueue, s.repeats),
            "bulkx": scenarios.enqueue("bulkx", s.bulk_enqueue, s.repeats),
        }
    if "latency" in only:
        res["latency"] = {}
        nodes = [("gokogeri", "reliable"), ("gokogeri", "basic")]
        if s.sidekiq_latency:
            nodes.append(("sidekiq", "basic"))
        for system, fetch in nodes:
            step(f"latency {system} {fetch}")
            res["latency"][f"{system}-{fetch}"] = scenarios.latency(
                system, fetch, s.latency_samples, log_dir
            )
    if "scheduled" in only:
        res["scheduled"] = {}
        for system in ("gokogeri", "sidekiq") if s.sidekiq_scheduled else ("gokogeri",):
            step(f"scheduled {system}")
            res["scheduled"][system] = scenarios.scheduled(
                system, s.scheduled_jobs, s.scheduled_spread_s, log_dir
            )
    if "rss" in only:
        step(f"rss over {s.rss_jobs:,} jobs")
        res["rss"] = scenarios.rss_long(s.rss_jobs, log_dir)
    if "profile" in only and s.profile_jobs:
        step("profile")
        res["profile"] = scenarios.profile(s.profile_jobs, RESULTS, log_dir)
    for name, build in (("io", rows.io_rows), ("metrics", rows.metrics_rows),
                        ("switch", rows.switch_rows), ("proto", rows.proto_rows)):
        if name in only:
            todo = build(s.drain_jobs, s.io_jobs, quick)
            step(f"{name}: " + ", ".join(r.key for r in todo))
            res[name] = rows.run_rows(todo, s.rows_repeats, log_dir, s.max_drain_s)
    if "ab" in only:
        step(f"ab: current tree vs {ref}")
        res["ab"] = rows.ab(ref, s.drain_jobs, s.io_jobs, s.rows_repeats, log_dir,
                            s.max_drain_s, quick)
    if "ioprofile" in only and s.ioprofile_jobs:
        step("ioprofile")
        if ref:
            commit = rows.resolve_ref(ref)
            with rows.worktree(commit) as tree:
                res["ioprofile"] = ioprof.run(s.ioprofile_jobs, RESULTS, log_dir, tree, commit)
        else:
            res["ioprofile"] = ioprof.run(s.ioprofile_jobs, RESULTS, log_dir)


if __name__ == "__main__":
    sys.exit(main())
