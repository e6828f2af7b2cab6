"""Where an I/O-bound drain spends its time (``python -m bench --only ioprofile``).

The job is sidekiqload-shaped and does one INCR through a module-level
redis-py client, concurrency 10, crash-safe fetch, logging off. Measured:

1. ``micro``: per-call costs on the job's path, one thread, no contention
   (workers/gk_micro.py): INCR through each pool and on a raw connection,
   pool get/release, the start marker, decode, a thread hand-off.
2. ``redis``: gokogeri vs Sidekiq 6.4.1 draining the same jobs with Redis's
   ``INFO commandstats`` reset just before the worker starts: Redis commands
   per job (MONITOR's counts, without MONITOR's cost), Redis-side usec per
   job, and redis-server CPU per job (it shares the 2 cores). The harness
   polls every 20 ms only, and its own calls are subtracted.
3. ``timing``: inside gokogeri's job, the time its INCR call takes as the
   thread sees it (reply wait + GIL re-acquisition) and the gap between one
   job's INCR and the next job's on the same thread (everything the runtime
   does per job, waits included), next to the raw round trip from (1).
4. ``pyspy``: py-spy ``--gil`` (who holds the GIL: the process's CPU per job
   by function) and ``--idle`` (every thread every tick: what each thread is
   doing or waiting on), speedscope files in results/.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.procs import WORKERS, Managed, wait_for
from bench.scenarios import BOOT_TIMEOUT, hot_spots
from bench.systems import (
    COUNTED,
    fill_sidekiq_format,
    gk_pending,
    gk_start,
    no_sidekiq,
    sidekiq_start,
)
from gokogeri.testing import RedisServer

HARNESS_POLL = 0.02


def micro(n: int = 20_000) -> dict[str, Any]:
    server = RedisServer().start()
    try:
        out = subprocess.run(
            [sys.executable, str(WORKERS / "gk_micro.py"), f"--url={server.url}", "-n", str(n)],
            capture_output=True, text=True, timeout=300, check=False,
        )
    finally:
        server.stop()
    if out.returncode != 0:
        return {"error": out.stderr[-2000:]}
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _redis_pid(r: Any) -> int:
    return int(r.info("server")["process_id"])


def _proc_cpu(pid: int) -> float:
    text = Path(f"/proc/{pid}/stat").read_text()
    f = text[text.rindex(")") + 2 :].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def ctx_switches(pids: list[int]) -> tuple[int, int]:
    """Voluntary (a thread blocked: lock, condition, socket) and involuntary
    (preempted by the OS: the machine is short of CPU) context switches,
    summed over every thread of ``pids``."""
    vol = invol = 0
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                text = (task / "status").read_text()
            except OSError:
                continue
            for line in text.splitlines():
                if line.startswith("voluntary_ctxt_switches:"):
                    vol += int(line.split()[1])
                elif line.startswith("nonvoluntary_ctxt_switches:"):
                    invol += int(line.split()[1])
    return vol, invol


def counted_drain(name: str, start: Any, n: int, log_dir: Path) -> dict[str, Any]:
    """One INCR drain with Redis's command statistics reset at worker start."""
    import redis as redispy

    server = RedisServer().start()
    r = redispy.Redis.from_url(server.url)
    polls = 0
    try:
        fill_sidekiq_format(server.url, n, "incr")
        rpid = _redis_pid(r)
        load = os.getloadavg()[0]
        r.config_resetstat()
        rcpu0 = _proc_cpu(rpid)
        procs: list[Managed] = start(server.url, log_dir, 0)
        t_spawn = time.perf_counter()
        first = end = None
        try:
            while True:
                polls += 1
                done = int(r.get("bench:done") or 0)
                now = time.perf_counter()
                if first is None and done > 0:
                    first = now
                    cpu_first = sum(p.cpu_s() for p in procs)
                    sw_first = ctx_switches([p.pid for p in procs])
                if done >= n:
                    end = now
                    cpu_end = sum(p.cpu_s() for p in procs)
                    sw_end = ctx_switches([p.pid for p in procs])
                    break
                if now - t_spawn > BOOT_TIMEOUT + 120 or not procs[0].alive():
                    return {"error": f"{name} drain did not finish:\n" + procs[0].tail()}
                time.sleep(HARNESS_POLL)
            rcpu = _proc_cpu(rpid) - rcpu0
            stats = r.info("commandstats")
        finally:
            for p in procs:
                p.stop()
        timing = {}
        for line in procs[0].log_path.read_text(errors="replace").splitlines():
            if line.startswith("bench-timing "):
                timing = json.loads(line.split(" ", 1)[1])
    finally:
        r.close()
        server.stop()
    assert first is not None and end is not None
    per_job: dict[str, float] = {}
    usec_per_call: dict[str, float] = {}
    usec = 0.0
    for key, v in stats.items():
        cmd = key.removeprefix("cmdstat_")
        calls = int(v["calls"])
        if cmd == "get":
            calls -= polls  # the harness's own polling
        if cmd in ("config|resetstat", "info") or calls <= 0:
            continue
        per_job[cmd] = round(calls / n, 3)
        usec += float(v["usec_per_call"]) * calls
        if calls >= n // 20:
            usec_per_call[cmd] = float(v["usec_per_call"])
    return {
        "n": n,
        "rate": n / (end - first),
        "worker_cpu_us_per_job": 1e6 * (cpu_end - cpu_first) / n,
        "worker_cpu_share": (cpu_end - cpu_first) / (end - first),
        "redis_calls_per_job": dict(sorted(per_job.items(), key=lambda kv: -kv[1])),
        "redis_calls_total_per_job": round(sum(per_job.values()), 3),
        "redis_usec_per_job": usec / n,
        "redis_cpu_us_per_job": 1e6 * rcpu / n,
        "redis_usec_per_call": usec_per_call,
        "voluntary_switches_per_job": (sw_end[0] - sw_first[0]) / n,
        "involuntary_switches_per_job": (sw_end[1] - sw_first[1]) / n,
        "loadavg_before": load,
        "timing": timing,
    }


def spy(n: int, mode: str, out_dir: Path, log_dir: Path, kind: str = "incr",
        tree: Path | None = None, label: str = "", concurrency: int = 10) -> dict[str, Any]:
    """py-spy on a node draining ``n`` jobs of ``kind``: mode "gil" or "idle".
    ``tree``: another checkout of gokogeri for the node (A/B profiles)."""
    import redis as redispy

    pyspy = shutil.which("py-spy")
    if pyspy is None:
        return {"skipped": "py-spy not installed (pip install py-spy)"}
    name = f"ioprofile-{kind}-{mode}{'-' + label if label else ''}"
    out = out_dir / f"{name}.speedscope.json"
    server = RedisServer().start()
    r = redispy.Redis.from_url(server.url)

    def done() -> int:
        if kind in COUNTED:
            return int(r.get("bench:done") or 0)
        return n - gk_pending(r)

    env = {"PYTHONPATH": str(tree)} if tree is not None else None
    try:
        fill_sidekiq_format(server.url, n, kind)
        jobs = "async" if kind.startswith("async") else "all"
        node = gk_start("reliable", "off", tag=name, env=env, concurrency=concurrency,
                        jobs=jobs)(server.url, log_dir, 0)[0]
        # Attach once jobs flow, so the node's imports at boot are not in the profile.
        wait_for(lambda: int(r.llen("queue:default")) < n, BOOT_TIMEOUT, interval=0.002)
        argv = [pyspy, "record", "--pid", str(node.pid), "--format", "speedscope",
                "--output", str(out), "--rate", "200", "--nonblocking", "--threads", f"--{mode}"]
        spy_proc = Managed(f"py-spy-{mode}", argv, log_dir / f"py-spy-{mode}.log")
        try:
            ok = wait_for(lambda: done() >= n, 300, interval=0.05)
        finally:
            node.stop()
            wait_for(lambda: not spy_proc.alive(), 30, interval=0.1)
            spy_proc.stop()
    finally:
        r.close()
        server.stop()
    if not ok or not out.exists():
        return {"error": "py-spy failed:\n" + spy_proc.tail()}
    res: dict[str, Any] = {"file": out.name, "kind": kind, "tree": str(tree or "current"),
                           "hot": hot_spots(out, top=25)}
    res["threads"] = thread_states(out)
    if mode == "gil":
        res["gil_us_per_job"] = gil_per_job(out, n)
    return res


def gil_per_job(path: Path, n: int, top: int = 25) -> dict[str, Any]:
    """GIL-holding time per job, inclusive, for gokogeri's own functions (and
    the job): py-spy's speedscope weights are seconds. The drain's first jobs
    run before py-spy attaches, so this slightly understates per-job time."""
    doc = json.loads(path.read_text())
    frames = doc["shared"]["frames"]
    incl: dict[str, float] = {}
    total = 0.0
    for prof in doc["profiles"]:
        for stack, w in zip(prof["samples"], prof["weights"], strict=True):
            total += w
            seen = set()
            for i in stack:
                f = frames[i]
                file = str(f.get("file", ""))
                if "gokogeri/" not in file and "gk_node" not in file:
                    continue
                key = f"{f['name']} ({file[file.rindex('/') + 1:]})"
                if key not in seen:
                    seen.add(key)
                    incl[key] = incl.get(key, 0.0) + w
    rows = sorted(incl.items(), key=lambda kv: -kv[1])[:top]
    return {"total": round(1e6 * total / n, 1),
            "inclusive": [(k, round(1e6 * v / n, 1)) for k, v in rows]}


# Leaf frames (function names) -> what the thread is doing.
_WAITS = {
    # A frame that made a GIL-releasing call stays the innermost Python frame
    # until the thread has the GIL back: these shares include that wait.
    "redis reply (recv, then GIL)": ("read_response", "read_from_socket", "_read_from_socket",
                                     "recv", "recv_into", "read", "_readline", "readline",
                                     "_read_response"),
    "poll for data (can_read, then GIL)": ("can_read", "_socket_can_read", "_socket_is_closed"),
    "lock/condition wait": ("wait", "acquire", "_wait_for_tstate_lock", "__enter__", "get"),
    "sleep": ("sleep",),
    "event loop idle": ("select", "poll", "_run_once"),
    "socket send (sendall, then GIL)": ("sendall", "send_packed_command", "_send_packed_command"),
}


def _state(leaf: str) -> str:
    for state, names in _WAITS.items():
        if leaf in names:
            return state
    return "python (running or waiting for the GIL)"


def thread_states(path: Path) -> dict[str, Any]:
    """Per thread: share of samples by what its innermost frame is doing."""
    doc = json.loads(path.read_text())
    frames = doc["shared"]["frames"]
    out: dict[str, Any] = {}
    for prof in doc["profiles"]:
        total = 0.0
        states: dict[str, float] = {}
        for stack, w in zip(prof["samples"], prof["weights"], strict=True):
            total += w
            leaf = frames[stack[-1]]["name"].rsplit(".", 1)[-1] if stack else "?"
            st = _state(leaf)
            states[st] = states.get(st, 0) + w
        name = prof.get("name", "?")
        out[name] = {"samples": total,
                     "pct": {k: round(100 * v / total, 1) for k, v in
                             sorted(states.items(), key=lambda kv: -kv[1])}}
    return out


def run(n: int, out_dir: Path, log_dir: Path, ref_tree: Path | None = None,
        ref: str = "") -> dict[str, Any]:
    res: dict[str, Any] = {"jobs": n}
    print("  ioprofile: micro", flush=True)
    res["micro"] = micro()
    print(f"  ioprofile: micro {res['micro']}", flush=True)
    res["redis"] = {}
    starts: list[tuple[str, Any]] = [
        ("gokogeri", gk_start("reliable", "off", env={"BENCH_TIMING": "1"}, tag="ioprof")),
    ]
    if no_sidekiq() is None:
        starts.append(("sidekiq", sidekiq_start("off")))
    for name, start in starts:
        res["redis"][name] = counted_drain(name, start, n, log_dir)
        print(f"  ioprofile: {name} {res['redis'][name]}", flush=True)
    for mode in ("gil", "idle"):
        res[f"pyspy_{mode}"] = spy(n, mode, out_dir, log_dir)
        print(f"  ioprofile: py-spy --{mode} done", flush=True)
    # Where the no-op drain's CPU goes, on this tree and (with --ref) on the ref.
    noop_n = 4 * n
    res["pyspy_noop"] = spy(noop_n, "gil", out_dir, log_dir, kind="noop")
    if ref_tree is not None:
        res["pyspy_noop_ref"] = spy(noop_n, "gil", out_dir, log_dir, kind="noop", tree=ref_tree,
                                    label="ref")
        res["ref"] = ref
    res["noop_jobs"] = noop_n
    # The async path: INCR through ctx.aredis on 100 slots (an all-async router).
    res["pyspy_async"] = spy(n, "gil", out_dir, log_dir, kind="async-incr-ctx", concurrency=100)
    return res
