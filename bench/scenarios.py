"""The measurements. Each returns plain data (JSON-ready dicts)."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import gokogeri
from bench.procs import WORKERS, Managed, fresh_redis, library_fingerprint, wait_for
from bench.systems import (
    CONCURRENCY,
    COUNTED,
    RUBY,
    SIDEKIQ,
    Target,
    fill_sidekiq_format,
    gk_pending,
    gk_start,
)
from gokogeri import redis as gredis

# Harness poll period near a drain's start and end: fine enough for ~0.1%
# timing error on a 20k-job drain.
POLL = 0.002
# In between, the harness sleeps this share of the time the drain still needs
# at its rate so far (at most COARSE_POLL): ~30 polls a drain instead of one
# every 2 ms. A Python poller waking 500 times a second takes CPU and wake-ups
# from the two vCPUs the node and Redis share (the 1 ms-sleep row read up to
# 1 point of ideal lower under it: docs/benchmarks.md, fourth pass).
POLL_SHARE = 0.25
COARSE_POLL = 0.1
SIDEKIQ_FIRST_POLL = 15.0
# The slowest worker boot seen is Celery's ~2 s; anything near this is broken.
BOOT_TIMEOUT = 60.0


def poll_period(first: float | None, now: float, moved: int, queued: int) -> float:
    """How long the drain poller sleeps: POLL until the first job moves, then a
    share of the time the queued jobs still need at the rate so far, down to
    POLL near the end. Also at most a share of the time elapsed, so a slow
    start (a rate that then grows) cannot make it sleep past the end."""
    if first is None or moved <= 0 or now <= first:
        return POLL
    elapsed = now - first
    left = queued * elapsed / moved
    return min(COARSE_POLL, max(POLL, POLL_SHARE * min(left, elapsed)))


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    s = sorted(values)
    if not s:
        return float("nan")
    k = max(0, min(len(s) - 1, round(p / 100 * len(s) + 0.5) - 1))
    return s[k]


# --- Redis ceiling ---


def redis_ceiling(requests: int) -> dict[str, Any]:
    """redis-benchmark LPUSH/RPOP, unpipelined and -P 16, for context."""
    exe = shutil.which("redis-benchmark")
    if exe is None:
        return {"skipped": "redis-benchmark not on PATH"}
    out: dict[str, Any] = {}
    with fresh_redis() as (url, _r):
        port = url.rsplit(":", 1)[1].split("/")[0]
        for pipeline in (1, 16):
            argv = [exe, "-h", "127.0.0.1", "-p", port, "-t", "lpush,rpop"]
            argv += ["-n", str(requests), "-P", str(pipeline), "--csv"]
            text = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
            for row in csv.DictReader(io.StringIO(text)):
                out[f"{row['test'].lower()}_P{pipeline}"] = {
                    "rps": float(row["rps"]),
                    "p50_ms": float(row["p50_latency_ms"]),
                }
    return out


# --- drain ---


def drain_once(
    t: Target, n: int, kind: str, log_dir: Path, run: int, max_drain_s: float
) -> dict[str, Any]:
    """Fill, start the worker process(es), poll until done, stop them.

    A drain still going after ``max_drain_s`` is stopped there and rated by
    the jobs finished so far (a steady-state rate; RQ needs minutes for 50k).
    """
    with fresh_redis() as (url, r):
        f0 = time.perf_counter()
        t.fill(url, n, kind)
        fill_s = time.perf_counter() - f0
        if t.queued(r) != n:
            return {"error": f"fill left {t.queued(r)} jobs queued, expected {n}"}

        def finished_jobs() -> int:
            return int(r.get("bench:done") or 0) if kind in COUNTED else n - t.pending(r)

        # Other work on the machine skews everything: keep a record of it.
        load_before = os.getloadavg()[0]
        library = library_fingerprint()
        procs = t.start(url, log_dir, run)
        spawn = time.perf_counter()
        first = end = None
        done = n
        rss_boot = 0
        cpu_first = cpu_end = 0.0
        failed = 0
        error: str | None = None
        try:
            while True:
                q = t.queued(r)
                now = time.perf_counter()
                if first is None:
                    if q < n:
                        first = now
                        rss_boot = sum(p.rss_kb() for p in procs)
                        cpu_first = sum(p.cpu_s() for p in procs)
                    elif now - spawn > BOOT_TIMEOUT:
                        error = "never started a job:\n" + procs[0].tail()
                        break
                elif q == 0 and finished_jobs() >= n:
                    end = time.perf_counter()
                    break
                elif now - first > max_drain_s:
                    done = finished_jobs()
                    end = time.perf_counter()
                    break
                if not any(p.alive() for p in procs) and finished_jobs() < n:
                    error = "worker exited early:\n" + procs[0].tail()
                    break
                time.sleep(poll_period(first, now, n - q, q))
            rss_end = sum(p.rss_kb() for p in procs)
            cpu_end = sum(p.cpu_s() for p in procs)
            failed = t.failed(r)
        finally:
            codes = [p.stop() for p in procs]
    res: dict[str, Any] = {"n": n, "kind": kind, "fill_s": fill_s, "exit_codes": codes,
                           "loadavg_before": load_before, "library": library}
    node_line = _node_banner(procs[0])
    if node_line:
        # Which gokogeri the worker really imported (A/B runs check it).
        res["node"] = node_line
    if error is None and failed:
        error = f"{failed} jobs failed: see {procs[0].log_path}"
    if error is not None or first is None or end is None:
        res["error"] = error or "never finished"
        return res
    res.update(
        jobs_done=done,
        partial=done < n,
        boot_s=first - spawn,
        drain_s=end - first,
        rate=done / (end - first),
        rss_boot_kb=rss_boot,
        rss_end_kb=rss_end,
        # Worker CPU per job while draining: tells CPU-bound (GIL) from waiting on Redis.
        cpu_us_per_job=1e6 * (cpu_end - cpu_first) / max(done, 1),
        cpu_share=(cpu_end - cpu_first) / (end - first),
    )
    return res


def _node_banner(proc: Managed) -> dict[str, str]:
    """gk_node.py's first line: ``bench-node gokogeri=<dir> switchinterval=<s>``."""
    try:
        with proc.log_path.open(errors="replace") as f:
            for line in f:
                if line.startswith("bench-node "):
                    return dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)
    except OSError:
        pass
    return {}


def drain_all(
    targets: list[Target], sizes: dict[str, int], kind: str, repeats: int, log_dir: Path,
    budget_s: float, max_drain_s: float,
) -> dict[str, Any]:
    """Round-robin: run 1 of every system, then run 2 of every system, ...

    Interleaving spreads whatever else the machine is doing evenly over the
    systems instead of penalising whichever ran during a busy minute. A
    system stops repeating once it has used ``budget_s`` (RQ is slow); the
    median run counts.
    """
    out: dict[str, Any] = {}
    spent: dict[str, float] = {}
    live = []
    for t in targets:
        why = t.unavailable()
        if why:
            out[t.key] = {"label": t.label, "family": t.family, "skipped": why}
            print(f"  {t.key}: skipped ({why})", flush=True)
        else:
            out[t.key] = {"label": t.label, "family": t.family, "runs": []}
            spent[t.key] = 0.0
            live.append(t)
    for i in range(repeats):
        for t in live:
            runs = out[t.key]["runs"]
            if spent[t.key] > budget_s or any("error" in x for x in runs):
                continue
            t0 = time.perf_counter()
            res = drain_once(t, sizes[t.family], kind, log_dir, i, max_drain_s)
            spent[t.key] += time.perf_counter() - t0
            runs.append(res)
            print(f"  {t.key} {kind} run {i}: " + _brief(res), flush=True)
    for t in live:
        r = out[t.key]
        ok = [x for x in r["runs"] if "error" not in x]
        if not ok:
            r["error"] = r["runs"][-1].get("error")
            continue
        r["rate"] = statistics.median(x["rate"] for x in ok)
        r["boot_s"] = statistics.median(x["boot_s"] for x in ok)
        r["rss_end_kb"] = max(x["rss_end_kb"] for x in ok)
        r["cpu_us_per_job"] = statistics.median(x["cpu_us_per_job"] for x in ok)
    return out


def _brief(res: dict[str, Any]) -> str:
    if "error" in res:
        return "ERROR " + str(res["error"])[:300]
    return (
        f"{res['rate']:,.0f} jobs/s{' (time-boxed)' if res['partial'] else ''}, boot {res['boot_s']:.2f}s, fill {res['fill_s']:.1f}s, "
        f"worker CPU {res['cpu_us_per_job']:.0f} us/job ({res['cpu_share']:.2f} cores), "
        f"load {res['loadavg_before']:.1f}"
    )


# --- enqueue ---


def enqueue(mode: str, n: int, repeats: int) -> dict[str, Any]:
    """gokogeri Enqueuer vs Sidekiq::Client, each in its own process."""
    out: dict[str, Any] = {"n": n}
    gk = [sys.executable, str(WORKERS / "gk_client.py")]
    argvs: dict[str, list[str] | None] = {"gokogeri": [*gk, mode, str(n)]}
    if mode == "bulk":
        # enqueue_many is gokogeri's push_bulk shape (one template, many args
        # lists); enqueue_bulk takes a Job each. Both are shown.
        argvs["gokogeri_many"] = [*gk, "many", str(n)]
    argvs["sidekiq"] = [RUBY, str(WORKERS / "sidekiq_client.rb"), mode, str(n)] if RUBY else None
    rates: dict[str, list[float]] = {name: [] for name, argv in argvs.items() if argv}
    for name, argv in argvs.items():
        if argv is None:
            out[name] = {"skipped": "ruby not on PATH"}
    for _ in range(repeats):  # alternate the two clients, as drain_all does
        for name in list(rates):
            argv = argvs[name]
            assert argv is not None
            with fresh_redis() as (url, _r):
                full = [*argv, f"--url={url}"] if name.startswith("gokogeri") else argv
                proc = subprocess.run(
                    full, capture_output=True, text=True, env=_env({"BENCH_REDIS_URL": url}),
                    timeout=600,
                )
            res = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else {}
            if proc.returncode != 0 or res.get("queued") != n:
                out[name] = {"error": proc.stderr[-2000:] or f"queued {res.get('queued')}, expected {n}"}
                del rates[name]
                continue
            rates[name].append(n / res["seconds"])
    for name, rs in rates.items():
        out[name] = {"rate": statistics.median(rs), "rates": rs}
        print(f"  enqueue {mode} {name}: {out[name]}", flush=True)
    return out


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    return env


# --- latency: one job at a time on an idle node ---


def _start_node(system: str, fetch: str, url: str, log_dir: Path, name: str) -> list[Managed]:
    if system == "gokogeri":
        return gk_start(fetch, "off")(url, log_dir, 0)
    assert SIDEKIQ is not None
    argv = [SIDEKIQ, "-r", str(WORKERS / "sidekiq_jobs.rb"), "-q", "default"]
    argv += ["-c", str(CONCURRENCY)]
    env = {"BENCH_REDIS_URL": url, "BENCH_LOG": "off"}
    return [Managed("sidekiq", argv, log_dir / f"{name}.log", env=env)]


def _wait_idle_node(r: Any, procs: list[Managed]) -> None:
    # Both Sidekiq and gokogeri register in `processes` on their first heartbeat;
    # then give the fetchers a moment to block on their queues.
    if not wait_for(lambda: r.scard("processes") > 0, 30):
        raise RuntimeError("node never registered:\n" + procs[0].tail())
    time.sleep(0.5)


def latency(system: str, fetch: str, samples: int, log_dir: Path) -> dict[str, Any]:
    """Enqueue-to-start: time.time() before enqueue() -> time.time() at work() entry."""
    if system == "sidekiq" and SIDEKIQ is None:
        return {"skipped": "sidekiq not on PATH"}
    with fresh_redis() as (url, r):
        procs = _start_node(system, fetch, url, log_dir, f"latency-{system}-{fetch}")
        try:
            _wait_idle_node(r, procs)
            with gredis.ConnManager(gredis.Config(url=url)) as cm:
                enq = gokogeri.Enqueuer(cm)
                lats: list[float] = []
                for _ in range(samples):
                    t0 = time.time()
                    enq.enqueue(gokogeri.Job(class_name="DeltaJob", args=[t0]))
                    got = r.blpop(["bench:lat"], timeout=10)
                    if got is None:
                        raise RuntimeError("a latency job never ran:\n" + procs[0].tail())
                    lats.append(float(got[1]) * 1000)
                    time.sleep(0.005)  # let the node go idle again between samples
        finally:
            for p in procs:
                p.stop()
    return _summary(lats, "ms")


def _summary(values: list[float], unit: str) -> dict[str, Any]:
    return {
        "unit": unit,
        "samples": len(values),
        "p50": percentile(values, 50),
        "p99": percentile(values, 99),
        "max": max(values),
        "mean": statistics.fmean(values),
    }


def scheduled(system: str, jobs: int, spread_s: float, log_dir: Path) -> dict[str, Any]:
    """Lateness of ``enqueue_at`` jobs on an idle node: start time - scheduled time."""
    if system == "sidekiq" and SIDEKIQ is None:
        return {"skipped": "sidekiq not on PATH"}
    with fresh_redis() as (url, r):
        procs = _start_node(system, "reliable", url, log_dir, f"scheduled-{system}")
        try:
            _wait_idle_node(r, procs)
            if system == "sidekiq":
                # Sidekiq 6.4's poller first runs 10-15 s after boot (INITIAL_WAIT
                # + 5 * rand); measure its steady state, not its start-up.
                time.sleep(SIDEKIQ_FIRST_POLL)
            with gredis.ConnManager(gredis.Config(url=url)) as cm:
                enq = gokogeri.Enqueuer(cm)
                base = time.time() + 0.5
                for i in range(jobs):
                    at = base + spread_s * i / jobs
                    enq.enqueue_at(gokogeri.Job(class_name="DeltaJob", args=[at]), at)
                late: list[float] = []
                # Sidekiq polls every 2.5-7.5 s: allow for that.
                deadline = time.monotonic() + spread_s + 30
                while len(late) < jobs and time.monotonic() < deadline:
                    got = r.blpop(["bench:lat"], timeout=1)
                    if got is not None:
                        late.append(float(got[1]) * 1000)
        finally:
            for p in procs:
                p.stop()
    if len(late) < jobs:
        return {"error": f"only {len(late)} of {jobs} scheduled jobs ran"}
    return _summary(late, "ms")


# --- memory over a long run ---


def rss_long(total: int, log_dir: Path) -> dict[str, Any]:
    """RSS of one gokogeri node (crash-safe fetch, logging off) at start and
    after ``total`` jobs, fed in chunks so Redis never holds more than ~100k."""
    chunk = min(50_000, total)
    with fresh_redis() as (url, r):
        procs = gk_start("reliable", "off")(url, log_dir, 0)
        node = procs[0]
        series: list[tuple[int, int]] = []
        try:
            _wait_idle_node(r, procs)
            rss_start = node.rss_kb()
            series.append((0, rss_start))
            pushed = 0
            next_sample = 0
            t0 = time.perf_counter()
            while True:
                pending = gk_pending(r)
                processed = pushed - pending
                if processed >= next_sample and processed > 0:
                    series.append((processed, node.rss_kb()))
                    next_sample += max(total // 20, 1)
                if pushed < total and pending < chunk:
                    n = min(chunk, total - pushed)
                    fill_more(url, pushed, n)
                    pushed += n
                    continue
                if pushed >= total and pending == 0:
                    break
                if not node.alive():
                    raise RuntimeError("node died:\n" + node.tail())
                time.sleep(0.05)
            elapsed = time.perf_counter() - t0
            rss_end = node.rss_kb()
            series.append((total, rss_end))
        finally:
            node.stop()
    warm = next((kb for done, kb in series if done >= min(10_000, total)), rss_start)
    return {
        "jobs": total,
        "seconds": elapsed,
        "rss_start_kb": rss_start,
        "rss_warm_kb": warm,
        "rss_end_kb": rss_end,
        "growth_from_start_pct": 100 * (rss_end - rss_start) / rss_start,
        "growth_from_warm_pct": 100 * (rss_end - warm) / warm,
        "series": series,
    }


def fill_more(url: str, offset: int, n: int) -> None:
    with gredis.ConnManager(gredis.Config(url=url)) as cm:
        enq = gokogeri.Enqueuer(cm)
        enq.enqueue_bulk(
            gokogeri.Job(class_name="NoopJob", args=["string", offset + i, {"mike": "bob"}])
            for i in range(n)
        )


# --- profile ---


def profile(
    n: int, out_dir: Path, log_dir: Path, fetch: str = "reliable", kind: str = "noop"
) -> dict[str, Any]:
    """py-spy on a gokogeri node draining ``n`` jobs, GIL-holding samples only:
    in a GIL-bound process, whoever holds the GIL is what limits throughput."""
    pyspy = shutil.which("py-spy")
    if pyspy is None:
        return {"skipped": "py-spy not installed (pip install py-spy)"}
    out = out_dir / (
        "profile.speedscope.json" if (fetch, kind) == ("reliable", "noop")
        else f"profile-{fetch}-{kind}.speedscope.json"
    )
    with fresh_redis() as (url, r):
        fill_sidekiq_format(url, n, kind)
        procs = gk_start(fetch, "off")(url, log_dir, 0)
        node = procs[0]
        # Attach once jobs flow, so the node's imports at boot are not in the profile.
        wait_for(lambda: int(r.llen("queue:default")) < n, BOOT_TIMEOUT, interval=0.005)
        spy = Managed(
            "py-spy",
            [pyspy, "record", "--pid", str(node.pid), "--format", "speedscope",
             "--output", str(out), "--rate", "100", "--nonblocking", "--gil"],
            log_dir / "py-spy.log",
        )
        try:
            ok = wait_for(lambda: gk_pending(r) == 0, max(60.0, n / 1000), interval=0.05)
        finally:
            node.stop()  # py-spy writes its file when its target exits
            wait_for(lambda: not spy.alive(), 30, interval=0.1)
            spy.stop()
    if not ok or not out.exists():
        return {"error": "profiling failed:\n" + spy.tail()}
    return {"file": out.name, "jobs": n, "fetch": fetch, "kind": kind, "hot": hot_spots(out)}


def hot_spots(path: Path, top: int = 15) -> dict[str, Any]:
    """Self and inclusive sample shares per function, summed over all threads."""
    doc = json.loads(path.read_text())
    frames = doc["shared"]["frames"]
    self_n: dict[str, float] = {}
    incl_n: dict[str, float] = {}
    total = 0.0
    for prof in doc["profiles"]:
        for stack, w in zip(prof["samples"], prof["weights"], strict=True):
            total += w
            names = [_frame_name(frames[i]) for i in stack]
            if names:
                self_n[names[-1]] = self_n.get(names[-1], 0) + w
            for name in set(names):
                incl_n[name] = incl_n.get(name, 0) + w

    def top_of(d: dict[str, float]) -> list[tuple[str, float]]:
        return [(k, round(100 * v / total, 1)) for k, v in sorted(d.items(), key=lambda kv: -kv[1])[:top]]

    return {"samples": total, "self_pct": top_of(self_n), "inclusive_pct": top_of(incl_n)}


def _frame_name(f: dict[str, Any]) -> str:
    file = str(f.get("file", ""))
    for marker in ("site-packages/", "gokogeri/", "bench/"):
        if marker in file:
            file = file[file.index(marker) + (len(marker) if marker == "site-packages/" else 0):]
            break
    else:
        file = Path(file).name
    # Per function, not per line: the lines of one function add up.
    return f"{f['name']} ({file})"
