"""Same-run drain comparisons: rows of (system, job kind) run interleaved.

Each scenario here is a list of rows; every round runs each row once, in
order, on its own fresh redis-server (``scenarios.drain_once``), so a busy
minute on the shared machine lands on every row alike. A row's figure is the
median of its rounds with min..max shown; a row compared to a baseline row
also gets the ratio of medians and the min..max of the per-round ratios (run
i of the row / run i of its baseline, measured seconds apart), which is the
honest spread of a same-run ratio.

Scenarios:
- ``io``: jobs that do I/O (one Redis INCR, a 1 ms sleep, async variants) vs
  the same job on Sidekiq 6.4.1 -c 10;
- ``metrics``: a node with the Sidekiq metrics observer vs without;
- ``switch``: the same drains under several ``sys.setswitchinterval`` values;
- ``proto``: prototype runtime changes (workers/gk_patches.py) vs none;
- ``ab``: the current tree vs a git ref checked out into a temporary
  worktree, same worker script, PYTHONPATH pointing at each tree.
"""

from __future__ import annotations

import contextlib
import dataclasses
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.procs import REPO
from bench.scenarios import _brief, drain_once
from bench.systems import (
    CONCURRENCY,
    Target,
    _llen,
    _sk_failed,
    fill_sidekiq_format,
    gk_pending,
    gk_start,
    sidekiq_target,
)


@dataclass(frozen=True)
class Row:
    key: str  # unique within a scenario
    label: str
    target: Target
    kind: str  # a systems.JOB_CLASS key
    n: int
    baseline: str | None = None  # key of the row this one is compared to
    ideal: float | None = None  # jobs/s a perfect runtime would reach
    tree: str | None = None  # the gokogeri checkout the worker must import
    sidekiq: str | None = None  # key of a Sidekiq row to compare with as well


def gk_target(
    key: str,
    *,
    log: str = "off",
    concurrency: int = CONCURRENCY,
    metrics: str = "off",
    env: dict[str, str] | None = None,
    unavailable: str | None = None,
) -> Target:
    """A one-process gokogeri node, crash-safe fetch (the default)."""
    jobs = "async" if key.startswith("gk-async") else "all"  # an all-async app's router
    return Target(
        key=key,
        label=key,
        family="gokogeri",
        fill=fill_sidekiq_format,
        start=gk_start("reliable", log, concurrency=concurrency, metrics=metrics, env=env, tag=key,
                       jobs=jobs),
        queued=_llen("queue:default"),
        pending=gk_pending,
        failed=_sk_failed,
        unavailable=lambda: unavailable,
    )


def sk_target(key: str, log: str = "off") -> Target:
    return sidekiq_target(key, key, log)


def run_rows(rows: list[Row], repeats: int, log_dir: Path, max_drain_s: float) -> dict[str, Any]:
    """Run every row ``repeats`` times, interleaved; medians, spreads, ratios."""
    out: dict[str, Any] = {"repeats": repeats, "rows": {}}
    live: list[Row] = []
    for row in rows:
        entry: dict[str, Any] = {
            "label": row.label, "kind": row.kind, "n": row.n, "baseline": row.baseline,
            "ideal": row.ideal, "concurrency": _concurrency(row),
        }
        why = row.target.unavailable()
        if why:
            entry["skipped"] = why
            print(f"  {row.key}: skipped ({why})", flush=True)
        else:
            entry["runs"] = []
            live.append(row)
        out["rows"][row.key] = entry
    for i in range(repeats):
        for row in live:
            runs = out["rows"][row.key]["runs"]
            if any("error" in x for x in runs):
                continue
            res = drain_once(row.target, row.n, row.kind, log_dir, i, max_drain_s)
            if "error" not in res and row.tree is not None:
                got = res.get("node", {}).get("gokogeri", "")
                if not got.startswith(row.tree):
                    res["error"] = f"worker imported gokogeri from {got!r}, not from {row.tree}"
            runs.append(res)
            print(f"  {row.key} {row.kind} run {i}: " + _brief(res), flush=True)
    for row in live:
        _summarise(out["rows"][row.key])
    for row in live:
        r = out["rows"][row.key]
        base = out["rows"].get(row.baseline or "", {})
        if "rate" in r and "rate" in base:
            r["vs_baseline"] = r["rate"] / base["rate"]
            paired = [
                a["rate"] / b["rate"]
                for a, b in zip(r["runs"], base["runs"], strict=False)
                if "rate" in a and "rate" in b
            ]
            r["vs_baseline_runs"] = paired
        sk = out["rows"].get(row.sidekiq or "", {})
        if "rate" in r and "rate" in sk:
            r["vs_sidekiq"] = r["rate"] / sk["rate"]
            r["vs_sidekiq_runs"] = [
                a["rate"] / b["rate"]
                for a, b in zip(r["runs"], sk["runs"], strict=False)
                if "rate" in a and "rate" in b
            ]
        if "rate" in r and row.ideal:
            r["of_ideal"] = r["rate"] / row.ideal
    return out


def _concurrency(row: Row) -> int | None:
    for kw in ("c100", "c10"):
        if kw in row.key:
            return int(kw[1:])
    return None


def _summarise(r: dict[str, Any]) -> None:
    ok = [x for x in r["runs"] if "error" not in x]
    if not ok:
        r["error"] = r["runs"][-1].get("error") if r["runs"] else "no runs"
        return
    rates = [x["rate"] for x in ok]
    r["rate"] = statistics.median(rates)
    r["rate_min"], r["rate_max"] = min(rates), max(rates)
    r["spread_pct"] = 100 * (max(rates) - min(rates)) / r["rate"]
    r["cpu_us_per_job"] = statistics.median(x["cpu_us_per_job"] for x in ok)
    r["cpu_share"] = statistics.median(x["cpu_share"] for x in ok)
    r["boot_s"] = statistics.median(x["boot_s"] for x in ok)
    r["partial"] = any(x["partial"] for x in ok)
    r["loadavg"] = [round(x["loadavg_before"], 1) for x in ok]


# --- the scenarios ---


def ctx_available(attr: str) -> str | None:
    """ctx.redis / ctx.aredis are runtime features a tree may not have."""
    import gokogeri

    ctx = gokogeri.Context
    names = {f.name for f in dataclasses.fields(ctx)} if dataclasses.is_dataclass(ctx) else set()
    if attr in names or hasattr(ctx, attr):
        return None
    return f"this tree's Context has no .{attr}"


def tl_missing() -> str | None:
    import gokogeri

    return None if hasattr(gokogeri, "ThreadLocalRedis") else "this tree has no ThreadLocalRedis"


def ll_missing() -> str | None:
    import gokogeri

    return None if hasattr(gokogeri, "LoopLocalRedis") else "this tree has no LoopLocalRedis"


def io_rows(noop_n: int, io_n: int, quick: bool = False) -> list[Row]:
    """Jobs that do I/O, each next to Sidekiq 6.4.1 -c 10 doing the same."""
    ctx_missing = ctx_available("redis")
    actx_missing = ctx_available("aredis")
    rows = [
        # no-op: the sync drain and the async one, same concurrency
        Row("gk-noop-c10", "gokogeri no-op, threads c=10", gk_target("gk-noop-c10"),
            "noop", noop_n, "sk-noop-c10"),
        Row("gk-async-noop-c10", "gokogeri async def no-op, c=10",
            gk_target("gk-async-noop-c10"), "async-noop", noop_n, "sk-noop-c10"),
        # A router with sync jobs too: each async job goes from a processor
        # thread to the event loop and back (the path server middleware needs).
        Row("gk-mixed-async-noop-c10", "gokogeri async def no-op, router with sync jobs too, c=10",
            gk_target("gk-mixed-async-noop-c10"), "async-noop", noop_n, "sk-noop-c10"),
        Row("sk-noop-c10", "Sidekiq 6.4.1 no-op, -c 10", sk_target("sk-noop-c10"),
            "noop", noop_n),
        # one Redis INCR per job
        Row("gk-incr-c10", "gokogeri INCR via module-level redis-py client, c=10",
            gk_target("gk-incr-c10"), "incr", io_n, "sk-incr-c10"),
        Row("gk-incr-ctx-c10", "gokogeri INCR via ctx.redis, c=10",
            gk_target("gk-incr-ctx-c10", unavailable=ctx_missing), "incr-ctx", io_n,
            "sk-incr-c10"),
        Row("gk-incr-tl-c10", "gokogeri INCR via a module-level gokogeri.ThreadLocalRedis, c=10",
            gk_target("gk-incr-tl-c10", unavailable=tl_missing()),
            "incr-tl", io_n, "sk-incr-c10"),
        Row("gk-async-incr-c10", "gokogeri async INCR via redis.asyncio, c=10",
            gk_target("gk-async-incr-c10"), "async-incr", io_n, "sk-incr-c10"),
        Row("gk-async-incr-c100", "gokogeri async INCR via redis.asyncio, c=100",
            gk_target("gk-async-incr-c100", concurrency=100), "async-incr", io_n,
            "sk-incr-c10"),
        Row("gk-async-incr-ctx-c100", "gokogeri async INCR via ctx.aredis, c=100",
            gk_target("gk-async-incr-ctx-c100", concurrency=100, unavailable=actx_missing),
            "async-incr-ctx", io_n, "sk-incr-c10"),
        Row("gk-async-incr-ll-c100",
            "gokogeri async INCR via a module-level gokogeri.LoopLocalRedis, c=100",
            gk_target("gk-async-incr-ll-c100", concurrency=100, unavailable=ll_missing()),
            "async-incr-ll", io_n, "sk-incr-c10"),
        Row("sk-incr-c10", "Sidekiq 6.4.1 INCR via Sidekiq.redis, -c 10",
            sk_target("sk-incr-c10"), "incr", io_n),
        # 1 ms sleep per job
        Row("gk-sleep-c10", "gokogeri time.sleep(0.001), threads c=10",
            gk_target("gk-sleep-c10"), "sleep", io_n, "sk-sleep-c10", ideal=10_000),
        Row("gk-async-sleep-c100", "gokogeri await asyncio.sleep(0.001), c=100",
            gk_target("gk-async-sleep-c100", concurrency=100), "async-sleep", io_n,
            "sk-sleep-c10", ideal=100_000),
        Row("gk-mixed-async-sleep-c10",
            "gokogeri await asyncio.sleep(0.001), router with sync jobs too, c=10",
            gk_target("gk-mixed-async-sleep-c10"), "async-sleep", io_n, "sk-sleep-c10",
            ideal=10_000),
        Row("sk-sleep-c10", "Sidekiq 6.4.1 sleep 0.001, -c 10", sk_target("sk-sleep-c10"),
            "sleep", io_n, ideal=10_000),
    ]
    if quick:
        # The smoke run checks each job kind works on both sides, not speed.
        keep = {"gk-incr-ctx-c10", "gk-async-incr-c100", "gk-async-incr-ctx-c100",
                "gk-async-incr-ll-c100", "gk-async-sleep-c100", "sk-sleep-c10"}
        rows = [dataclasses.replace(r, baseline=r.baseline if r.baseline in keep else None)
                for r in rows if r.key in keep]
    return rows


def metrics_available() -> str | None:
    try:
        from gokogeri.metrics import SidekiqMetrics  # noqa: F401
    except ImportError as e:
        return f"gokogeri.metrics not importable: {e}"
    return None


def metrics_rows(noop_n: int, io_n: int, quick: bool = False) -> list[Row]:
    """The node with Node(observers=[SidekiqMetrics(compat="8")]) vs without."""
    missing = metrics_available()
    rows = []
    for kind, n in (("noop", noop_n), ("incr", io_n)):
        rows.append(Row(f"gk-{kind}-metrics-off", f"gokogeri {kind}, no observers",
                        gk_target(f"gk-{kind}-metrics-off"), kind, n))
        rows.append(Row(f"gk-{kind}-metrics-on", f"gokogeri {kind}, SidekiqMetrics observer",
                        gk_target(f"gk-{kind}-metrics-on", metrics="on", unavailable=missing),
                        kind, n, f"gk-{kind}-metrics-off"))
        if quick:  # the smoke run only checks that the observer loads and runs
            rows = [dataclasses.replace(rows[-1], baseline=None)]
            return rows
    return rows


# sys.setswitchinterval values tried; CPython's default is 0.005.
SWITCH_INTERVALS = ("0.005", "0.001", "0.0002")


def switch_rows(noop_n: int, io_n: int, quick: bool = False) -> list[Row]:
    rows = []
    for kind, n in (("incr", io_n), ("sleep", io_n), ("noop", noop_n)):
        for sw in SWITCH_INTERVALS[1:2] if quick else SWITCH_INTERVALS:
            key = f"gk-{kind}-switch{sw}"
            rows.append(Row(key, f"gokogeri {kind}, switchinterval {float(sw) * 1000:g} ms",
                            gk_target(key, env={"BENCH_SWITCH_INTERVAL": sw}), kind, n,
                            None if sw == SWITCH_INTERVALS[0] else f"gk-{kind}-switch{SWITCH_INTERVALS[0]}",
                            ideal=10_000 if kind == "sleep" else None))
        if quick:
            break
    return rows


# Prototype runtime changes (workers/gk_patches.py), each measured against the
# unpatched tree in the same run: evidence for the lead before a change is made.
# The mark-noreply, mark-batched and ack-lazy prototypes led to the runtime's
# batched start markers and lazy acknowledgements (commit 4f92a90) and were
# retired; mark-off still bounds what the markers cost.
PROTO_VARIANTS = (
    ("base", ""),
    ("mark-off", "mark-off"),
)


def proto_rows(noop_n: int, io_n: int, quick: bool = False) -> list[Row]:
    rows = []
    short = PROTO_VARIANTS
    cases: list[tuple[str, int, int, tuple[tuple[str, str], ...]]] = [
        ("noop", noop_n, 10, PROTO_VARIANTS),
        ("incr", io_n, 10, PROTO_VARIANTS),
        ("incr-ctx", io_n, 10, short),
        ("sleep", io_n, 10, (PROTO_VARIANTS[0], PROTO_VARIANTS[-1])),
        ("async-sleep", io_n, 100, short),
        ("async-incr-ctx", io_n, 100, short),
    ]
    if quick:
        cases = [("noop", noop_n, 10, (PROTO_VARIANTS[-1],))]
    else:
        # Sidekiq in the same rounds, so a prototype's ratio to it is same-run too.
        rows += [
            Row("sk-noop-c10", "Sidekiq 6.4.1 no-op, -c 10", sk_target("sk-noop-c10"), "noop", noop_n),
            Row("sk-incr-c10", "Sidekiq 6.4.1 INCR, -c 10", sk_target("sk-incr-c10"), "incr", io_n),
            Row("sk-sleep-c10", "Sidekiq 6.4.1 sleep 0.001, -c 10", sk_target("sk-sleep-c10"),
                "sleep", io_n, ideal=10_000),
        ]
    for kind, n, c, variants in cases:
        for name, patch in variants:
            key = f"gk-{kind}-c{c}-{name}"  # "gk-async..." keys get an all-async router
            env = {"BENCH_PATCH": patch} if patch else None
            ideal = c * 1000.0 if "sleep" in kind else None
            unavailable = ctx_available("aredis" if "async" in kind else "redis") if "ctx" in kind else None
            twin = "noop" if "noop" in kind else "incr" if "incr" in kind else "sleep"
            rows.append(Row(key, f"gokogeri {kind} c={c}, {name}",
                            gk_target(key, env=env, concurrency=c, unavailable=unavailable), kind, n,
                            None if name == "base" or quick else f"gk-{kind}-c{c}-base",
                            ideal=ideal, sidekiq=None if quick else f"sk-{twin}-c10"))
    return rows


# --- A/B against a git ref ---


def resolve_ref(ref: str) -> str:
    out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--verify", f"{ref}^{{commit}}"],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"--ref {ref!r}: not a commit here ({out.stderr.strip()})")
    return out.stdout.strip()


@contextlib.contextmanager
def worktree(commit: str) -> Iterator[Path]:
    """``commit`` checked out in a temporary git worktree, removed afterwards.
    Nothing in the shared working tree (index, HEAD, files) is touched."""
    parent = Path(tempfile.mkdtemp(prefix="gokogeri-ab-"))
    path = parent / "tree"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "--quiet",
                    str(path), commit], check=True, capture_output=True)
    try:
        yield path
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(path)],
                       check=False, capture_output=True)
        subprocess.run(["git", "-C", str(REPO), "worktree", "prune"], check=False,
                       capture_output=True)
        with contextlib.suppress(OSError):
            parent.rmdir()


AB_CASES = (("noop", "off"), ("noop", "on"), ("incr", "off"), ("incr", "on"), ("sleep", "off"))


def ab_rows(ref_tree: Path, ref_name: str, noop_n: int, io_n: int, quick: bool = False) -> list[Row]:
    """For each case: the ref's node, then the current tree's node (baseline: the ref)."""
    rows = []
    cases = AB_CASES[:1] if quick else AB_CASES
    trees = (("ref", ref_tree, ref_name), ("cur", REPO, "current tree"))
    for kind, log in cases:
        n = noop_n if kind == "noop" else io_n
        for side, tree, name in trees:
            key = f"{side}-{kind}-log{log}"
            rows.append(Row(
                key, f"{name}: {kind}, crash-safe fetch, logging {log}",
                gk_target(key, log=log, env={"PYTHONPATH": str(tree)}), kind, n,
                baseline=f"ref-{kind}-log{log}" if side == "cur" else None,
                ideal=10_000 if kind == "sleep" else None,
                tree=str(tree),
            ))
    return rows


def ab(ref: str, noop_n: int, io_n: int, repeats: int, log_dir: Path, max_drain_s: float,
       quick: bool = False) -> dict[str, Any]:
    commit = resolve_ref(ref)
    t0 = time.perf_counter()
    with worktree(commit) as tree:
        res = run_rows(ab_rows(tree, f"ref {commit[:7]}", noop_n, io_n, quick), repeats,
                       log_dir, max_drain_s)
    res["ref"] = ref
    res["ref_commit"] = commit
    res["wall_s"] = time.perf_counter() - t0
    return res
