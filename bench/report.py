"""The results table (Markdown) and the drain plot (PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _rate(d: dict[str, Any], kind: str, key: str) -> float | None:
    r = d.get("drain", {}).get(kind, {}).get(key, {})
    v = r.get("rate")
    return float(v) if v is not None else None


def _fmt(v: float | None, spec: str = ",.0f") -> str:
    return "-" if v is None else format(v, spec)


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def best_peer(res: dict[str, Any], kind: str = "noop") -> tuple[str | None, float | None]:
    peers = {
        k: v["rate"]
        for k, v in res.get("drain", {}).get(kind, {}).items()
        if v.get("family") == "peer" and v.get("rate")
    }
    if not peers:
        return None, None
    k = max(peers, key=lambda x: peers[x])
    return k, float(peers[k])


def table(res: dict[str, Any]) -> str:
    env = res.get("environment", {})
    lines = [
        f"# gokogeri benchmark ({res.get('mode')} run, {res.get('started')})",
        "",
        f"{env.get('cpus')} CPUs, Python {env.get('python')}, {env.get('redis', '')[:30]}, "
        f"Sidekiq {env.get('sidekiq')} on {env.get('ruby', '')[:16]}, gokogeri {env.get('git')}",
        "",
    ]
    if res.get("library_at_start") != res.get("library_at_end"):
        lines += ["**Note: gokogeri's source changed during this run** (library fingerprint "
                  f"{res.get('library_at_start')} -> {res.get('library_at_end')}; "
                  "each run's fingerprint is in the JSON).", ""]
    lines += _drain_table(res)
    lines += _targets(res)
    lines += _rows_tables(res)
    lines += _other(res)
    lines += _ioprofile(res)
    return "\n".join(lines) + "\n"


def _drain_table(res: dict[str, Any]) -> list[str]:
    drain = res.get("drain")
    if not drain:
        return []
    noop = drain.get("noop", {})
    n = res["sizes"]["drain_jobs"]
    pn = res["sizes"].get("peer_drain_jobs", n)
    sk = {log: _rate(res, "noop", f"sidekiq-log{log}") for log in ("off", "on")}
    sk_incr = {log: _rate(res, "incr", f"sidekiq-log{log}") for log in ("off", "on")}
    peer_key, peer = best_peer(res)
    _, peer_incr = best_peer(res, "incr")
    out = [
        f"## Drain: {n:,} jobs bulk-pushed, then one worker process started (median of runs)",
        "",
        *([f"(Python peers: {pn:,} jobs.)", ""] if pn != n else []),
        "| system | no-op jobs/s | incr jobs/s | boot s | CPU us/job | RSS end MB | / Sidekiq same logging (no-op, incr) | / best peer (no-op, incr) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, r in noop.items():
        if "skipped" in r or "error" in r:
            out.append(f"| {r['label']} | {r.get('skipped') or 'ERROR'} | | | | | | |")
            continue
        log = "on" if "logon" in key else "off"
        incr = _rate(res, "incr", key)
        vs_sk = vs_peer = ""
        if r.get("family") == "gokogeri":
            vs_sk = (f"{_fmt(_ratio(r['rate'], sk[log]), '.2f')}x, "
                     f"{_fmt(_ratio(incr, sk_incr[log]), '.2f')}x")
            vs_peer = (f"{_fmt(_ratio(r['rate'], peer), '.2f')}x, "
                       f"{_fmt(_ratio(incr, peer_incr), '.2f')}x")
        out.append(
            f"| {r['label']} | {_fmt(r['rate'])} | {_fmt(incr)} | {r['boot_s']:.2f} | "
            f"{r.get('cpu_us_per_job', 0):.0f} | "
            f"{r['rss_end_kb'] / 1024:.0f} | {vs_sk} | {vs_peer} |"
        )
    out += ["", f"Best Python peer (no-op): {peer_key or '-'}.", ""]
    return out


def _targets(res: dict[str, Any]) -> list[str]:
    rows: list[tuple[str, str, str, bool | None]] = []

    def add(name: str, value: float | None, goal: str, ok: bool | None, spec: str = ".2f") -> None:
        rows.append((name, _fmt(value, spec), goal, None if value is None else ok))

    if "drain" in res:
        for log in ("on", "off"):
            r = _ratio(_rate(res, "noop", f"gokogeri-reliable-log{log}"),
                       _rate(res, "noop", f"sidekiq-log{log}"))
            add(f"drain 1 proc crash-safe / Sidekiq 6.4.1 (logging {log})", r, ">= 2x",
                r is not None and r >= 2)
        _, peer = best_peer(res)
        r = _ratio(_rate(res, "noop", "gokogeri-reliable-logoff"), peer)
        add("drain 1 proc crash-safe / best Python peer", r, ">= 2x", r is not None and r >= 2)
    enq = res.get("enqueue", {})
    for mode, gk, want, api in (
        ("single", "gokogeri", 1.5, "enqueue / Client.push"),
        ("bulk", "gokogeri_many", 1.5, "enqueue_many / Client.push_bulk (same shape)"),
        ("bulk", "gokogeri", 2.0, "enqueue_bulk of Jobs / Client.push_bulk"),
        ("bulkx", "gokogeri", 2.0, "enqueue_bulk of Jobs [i, \"x\"] / push_bulk of a pre-built array"),
    ):
        e = enq.get(mode, {})
        r = _ratio(e.get(gk, {}).get("rate"), e.get("sidekiq", {}).get("rate"))
        add(api, r, f">= {want}x", r is not None and r >= want)
    for key, lat in res.get("latency", {}).items():
        if key.startswith("gokogeri") and "p50" in lat:
            add(f"enqueue-to-start p50, idle node ({key}), ms", lat["p50"], "< 1", lat["p50"] < 1, ".3f")
            add(f"enqueue-to-start p99, idle node ({key}), ms", lat["p99"], "< 5", lat["p99"] < 5, ".3f")
    sch = res.get("scheduled", {}).get("gokogeri", {})
    if "p99" in sch:
        add("scheduled lateness p99, ms", sch["p99"], "< 100", sch["p99"] < 100, ".1f")
    rss = res.get("rss")
    if rss and "rss_end_kb" in rss:
        g = rss["growth_from_start_pct"]
        add(f"RSS growth over {rss['jobs']:,} jobs (from idle start), %", g, "< 5", g < 5, ".1f")
        add(f"RSS growth over {rss['jobs']:,} jobs (from first 10k), %",
            rss["growth_from_warm_pct"], "(info)", None, ".1f")
    io = res.get("io", {}).get("rows", {})
    for key, goal, want, what in (
        ("gk-incr-c10", ">= 2x", 2.0, "vs_baseline"),
        ("gk-incr-ctx-c10", ">= 2x", 2.0, "vs_baseline"),
        ("gk-incr-tl-c10", ">= 2x", 2.0, "vs_baseline"),
        ("gk-sleep-c10", ">= 0.95 of ideal", 0.95, "of_ideal"),
        ("gk-async-sleep-c100", ">= 5x", 5.0, "vs_baseline"),
    ):
        v = io.get(key, {}).get(what)
        if v is not None:
            label = io[key]["label"] + (" / Sidekiq" if what == "vs_baseline" else ", of ideal")
            add(label, v, goal, v >= want)
    ab = res.get("ab", {}).get("rows", {})
    for key, r in ab.items():
        if key.startswith("cur-") and "noop" in key and r.get("vs_baseline") is not None:
            add(f"A/B {r['label']} / {res['ab']['ref_commit'][:7]}", r["vs_baseline"], ">= 1x",
                r["vs_baseline"] >= 1.0)
    if not rows:
        return []
    out = ["## Targets", "", "| target | measured | goal | met |", "|---|---:|---:|---|"]
    for label, shown, goal, met in rows:
        out.append(f"| {label} | {shown} | {goal} | {'-' if met is None else 'yes' if met else 'NO'} |")
    return [*out, ""]


_ROWS_TITLES = {
    "io": "Jobs that do I/O (one process; Sidekiq 6.4.1 -c 10 doing the same job)",
    "metrics": "Sidekiq metrics observer on vs off (same run)",
    "switch": "sys.setswitchinterval (env BENCH_SWITCH_INTERVAL in the worker)",
    "proto": "Prototype runtime changes, patched into the benchmark worker only (workers/gk_patches.py)",
    "ab": "A/B: current tree vs a git ref (same worker script, PYTHONPATH per tree)",
}


def _rows_tables(res: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for name, title in _ROWS_TITLES.items():
        sc = res.get(name)
        if not sc:
            continue
        rows = sc.get("rows", {})
        with_sk = any(r.get("vs_sidekiq") is not None for r in rows.values())
        head = f"## {title}"
        if name == "ab":
            head += f": ref {sc.get('ref')} = {sc.get('ref_commit', '')[:10]}"
        out += [head, "",
                f"Median of {sc.get('repeats')} interleaved rounds, min..max in brackets; ratio = "
                "median / median of the baseline row, with the min..max of the per-round ratios. "
                "Jobs carry sidekiqload's args [\"string\", i, {\"mike\": \"bob\"}], crash-safe "
                "fetch, logging off unless stated.", "",
                "| row | jobs | jobs/s | spread | worker CPU us/job (cores) | vs | ratio [per-round] | of ideal |"
                + (" / Sidekiq same job [per-round] |" if with_sk else ""),
                "|---|---:|---:|---:|---:|---|---:|---:|" + ("---:|" if with_sk else "")]
        for r in rows.values():
            if "rate" not in r:
                out.append(f"| {r['label']} | {r.get('n', '')} | "
                           f"{r.get('skipped') or 'ERROR: ' + str(r.get('error'))[:80]} | | | | | |")
                continue
            paired = r.get("vs_baseline_runs") or []
            ratio = "" if r.get("vs_baseline") is None else (
                f"{r['vs_baseline']:.2f}x" + (f" [{min(paired):.2f}..{max(paired):.2f}]" if paired else ""))
            base = rows.get(r.get("baseline") or "", {}).get("label", "") if r.get("baseline") else ""
            ideal = "" if r.get("of_ideal") is None else f"{100 * r['of_ideal']:.0f}%"
            part = " (time-boxed)" if r.get("partial") else ""
            sk = ""
            if r.get("vs_sidekiq") is not None:
                skr = r.get("vs_sidekiq_runs") or [r["vs_sidekiq"]]
                sk = f"{r['vs_sidekiq']:.2f}x [{min(skr):.2f}..{max(skr):.2f}]"
            out.append(
                f"| {r['label']} | {r['n']:,} | {r['rate']:,.0f}{part} | "
                f"{r['rate_min']:,.0f}..{r['rate_max']:,.0f} ({r['spread_pct']:.0f}%) | "
                f"{r['cpu_us_per_job']:.0f} ({r['cpu_share']:.2f}) | {base} | {ratio} | {ideal} |"
                + (f" {sk} |" if with_sk else "")
            )
        out.append("")
    return out


def _ioprofile(res: dict[str, Any]) -> list[str]:
    p = res.get("ioprofile")
    if not p:
        return []
    out = [f"## Profile of the I/O-bound drain ({p['jobs']:,} INCR jobs, c=10, crash-safe, logging off)", ""]
    micro = p.get("micro", {})
    if micro and "error" not in micro:
        out += ["Per-call costs, one thread, no contention (workers/gk_micro.py), us:", "",
                "| call | us |", "|---|---:|"]
        out += [f"| {k} | {v} |" for k, v in micro.items()]
        out.append("")
    red = p.get("redis", {})
    if red:
        out += ["| | jobs/s | worker CPU us/job (cores) | Redis calls/job | Redis usec/job (commandstats) "
                "| redis-server CPU us/job | job's INCR as seen by its thread, us | gap between jobs on a thread, us |",
                "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for name, d in red.items():
            if "rate" not in d:
                out.append(f"| {name} | {d.get('error', '')[:80]} | | | | | | |")
                continue
            t = d.get("timing") or {}
            out.append(
                f"| {name} | {d['rate']:,.0f} | {d['worker_cpu_us_per_job']:.0f} ({d['worker_cpu_share']:.2f}) | "
                f"{d['redis_calls_total_per_job']} | {d['redis_usec_per_job']:.1f} | {d['redis_cpu_us_per_job']:.1f} | "
                f"{t.get('io_us_per_job', float('nan')):.0f} | {t.get('gap_us_per_job', float('nan')):.0f} |")
        out.append("")
        for name, d in red.items():
            if "redis_calls_per_job" in d:
                calls = ", ".join(f"{k} {v}" for k, v in d["redis_calls_per_job"].items())
                out.append(f"- {name}, Redis commands per job: {calls}")
        out.append("")
    for key in ("pyspy_noop", "pyspy_noop_ref", "pyspy_gil", "pyspy_async"):
        sp = p.get(key, {})
        g = sp.get("gil_us_per_job")
        if not g:
            continue
        out += [f"GIL-holding time per job, inclusive, gokogeri functions ({sp['kind']} drain, "
                f"tree {sp['tree']}; total {g['total']} us/job):", "",
                "| us/job | function |", "|---:|---|"]
        out += [f"| {v} | `{k}` |" for k, v in g["inclusive"][:18]]
        out.append("")
    for mode in ("gil", "idle"):
        sp = p.get(f"pyspy_{mode}", {})
        if "hot" not in sp:
            continue
        out += [f"py-spy --{mode} ({sp['file']}): top self %", "", "| self % | function |", "|---:|---|"]
        out += [f"| {pct} | `{name}` |" for name, pct in sp["hot"]["self_pct"][:15]]
        out.append("")
        if mode == "idle":
            out += ["Thread states (share of each thread's samples by innermost frame):", ""]
            for th, d in sp.get("threads", {}).items():
                out.append(f"- {th}: " + ", ".join(f"{k} {v}%" for k, v in d["pct"].items()))
            out.append("")
    return out


def _other(res: dict[str, Any]) -> list[str]:
    out: list[str] = []
    enq = res.get("enqueue")
    if enq:
        out += ["## Enqueue (one process, one thread; jobs/s, median)", "",
                "| | gokogeri [min..max] | Sidekiq 6.4.1 (Ruby) [min..max] | ratio [per-round] |",
                "|---|---:|---:|---:|"]
        for mode, gk, label in (
            ("single", "gokogeri", "enqueue vs push"),
            ("bulk", "gokogeri_many", "enqueue_many vs push_bulk, 1,000 per call"),
            ("bulk", "gokogeri", "enqueue_bulk (Jobs) vs push_bulk, 1,000 per call"),
            ("bulkx", "gokogeri", "enqueue_bulk (Jobs, args [i, \"x\"]) vs push_bulk of a pre-built args array"),
        ):
            e = enq.get(mode, {})
            g, s = e.get(gk, {}).get("rate"), e.get("sidekiq", {}).get("rate")
            if gk not in e or "n" not in e:
                continue
            gr = e.get(gk, {}).get("rates") or []
            sr = e.get("sidekiq", {}).get("rates") or []
            paired = [a / b for a, b in zip(gr, sr, strict=False) if b]

            def span(rs: list[float]) -> str:
                return f" [{min(rs):,.0f}..{max(rs):,.0f}]" if len(rs) > 1 else ""

            pr = f" [{min(paired):.2f}..{max(paired):.2f}]" if len(paired) > 1 else ""
            out.append(f"| {label} ({e['n']:,} jobs) | {_fmt(g)}{span(gr)} | {_fmt(s)}{span(sr)} | "
                       f"{_fmt(_ratio(g, s), '.2f')}x{pr} |")
        out.append("")
    lat = res.get("latency")
    if lat:
        out += ["## Enqueue-to-start latency, idle node (ms)", "",
                "| node | samples | p50 | p99 | max |", "|---|---:|---:|---:|---:|"]
        for k, v in lat.items():
            if "p50" in v:
                out.append(f"| {k} | {v['samples']} | {v['p50']:.3f} | {v['p99']:.3f} | {v['max']:.3f} |")
            else:
                out.append(f"| {k} | {v.get('skipped') or v.get('error')} | | | |")
        out.append("")
    sch = res.get("scheduled")
    if sch:
        out += ["## Scheduled-job lateness, idle node (ms)", "",
                "| node | jobs | p50 | p99 | max |", "|---|---:|---:|---:|---:|"]
        for k, v in sch.items():
            if "p50" in v:
                out.append(f"| {k} | {v['samples']} | {v['p50']:.1f} | {v['p99']:.1f} | {v['max']:.1f} |")
            else:
                out.append(f"| {k} | {v.get('skipped') or v.get('error')} | | | |")
        out.append("")
    rss = res.get("rss")
    if rss and "rss_end_kb" in rss:
        out += [f"## Memory: one gokogeri node over {rss['jobs']:,} no-op jobs "
                f"({rss['jobs'] / rss['seconds']:,.0f} jobs/s sustained)", "",
                f"RSS idle start {rss['rss_start_kb'] / 1024:.1f} MB, after 10k jobs "
                f"{rss['rss_warm_kb'] / 1024:.1f} MB, at the end {rss['rss_end_kb'] / 1024:.1f} MB.", ""]
    ceil = res.get("ceiling")
    if ceil and "skipped" not in ceil:
        out += ["## Redis ceiling (redis-benchmark, 50 clients)", "",
                "| | req/s | p50 ms |", "|---|---:|---:|"]
        for k, v in ceil.items():
            out.append(f"| {k} | {v['rps']:,.0f} | {v['p50_ms']:.3f} |")
        out.append("")
    prof = res.get("profile")
    if prof and "hot" in prof:
        out += [f"## Profile: py-spy, one node draining {prof['jobs']:,} no-op jobs "
                f"(GIL-holding samples, all threads; {prof['file']})", "", "| self % | function |", "|---:|---|"]
        for name, pct in prof["hot"]["self_pct"]:
            out.append(f"| {pct} | `{name}` |")
        out.append("")
    return out


def plot(res: dict[str, Any], path: Path) -> None:
    """Horizontal bars: no-op drain jobs/s per system (incr as a second bar)."""
    try:
        import matplotlib
    except ImportError:  # the table and JSON do not need it
        print("matplotlib not installed: no plot")
        return
    matplotlib.use("Agg")  # no display in CI
    import matplotlib.pyplot as plt

    noop = res["drain"].get("noop", {})
    keys = [k for k, v in noop.items() if v.get("rate")]
    if not keys:
        return
    keys.sort(key=lambda k: noop[k]["rate"])
    colors = {"gokogeri": "#2b7bba", "sidekiq": "#c0392b", "peer": "#7f8c8d"}
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(keys) + 1.6))
    ys = range(len(keys))
    ax.barh([y + 0.2 for y in ys], [noop[k]["rate"] for k in keys], height=0.4,
            color=[colors[noop[k]["family"]] for k in keys], label="no-op job")
    incr = res["drain"].get("incr", {})
    ax.barh([y - 0.2 for y in ys], [incr.get(k, {}).get("rate") or 0 for k in keys], height=0.4,
            color=[colors[noop[k]["family"]] for k in keys], alpha=0.45, label="INCR job")
    for y, k in zip(ys, keys, strict=True):
        ax.text(noop[k]["rate"], y + 0.2, f" {noop[k]['rate']:,.0f}", va="center", fontsize=8)
    ax.set_yticks(list(ys), [noop[k]["label"] for k in keys], fontsize=8)
    ax.set_xlabel("jobs/s (one process unless noted; higher is better)")
    sizes = res["sizes"]
    ax.set_title(f"Drain {sizes['drain_jobs']:,} queued jobs (Python peers "
                 f"{sizes.get('peer_drain_jobs', sizes['drain_jobs']):,}), "
                 f"{res['mode']} run, {res['environment'].get('cpus')} CPUs")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
