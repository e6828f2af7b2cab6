"""The benchmark harness itself works (``python -m bench --quick``); speed is not asserted here."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def run_quick(module: str, timeout: float) -> str:
    """``python -m <module> --quick`` from the repository; its stdout, once it exited 0."""
    out = subprocess.run(
        [sys.executable, "-m", module, "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


@pytest.mark.skipif(shutil.which("redis-benchmark") is None, reason="redis-tools not installed")
def test_quick_benchmark_runs_and_writes_results() -> None:
    run_quick("bench", 300)
    results = json.loads((ROOT / "bench" / "results" / "quick.json").read_text())
    drain = results["drain"]["noop"]["gokogeri-reliable-logoff"]
    assert all(run["jobs_done"] == run["n"] and not run["partial"] for run in drain["runs"])
    assert drain["rate"] > 0
    assert results["enqueue"]["single"]["gokogeri"]["rate"] > 0
    assert results["latency"]["gokogeri-reliable"]["samples"] > 0


def test_micro_io_runs_every_path() -> None:
    """``python -m bench.micro_io`` (the measurements behind gokogeri.wire and
    gokogeri.timers) measures each client path, the PING modes and both sleeps."""
    stdout = run_quick("bench.micro_io", 120)
    rows = [line for line in stdout.splitlines() if line.startswith("| ")]
    for path in ("redis-py send_command", "gokogeri.wire", "bare socket"):
        row = next(line for line in rows if path in line)
        assert float(row.split("|")[2].replace(",", "")) > 0, row  # INCR/s measured
    # The PING and sleep tables: a header line, then a line of two positive figures.
    figures = [row for row in rows if row.replace("|", "").replace(".", "").split()[0].isdigit()]
    assert len(figures) == 2, rows
    assert all(float(x) > 0 for row in figures for x in row.strip("| ").split(" | ")), figures


def test_sleep_probe_splits_the_cycle_and_times_the_round_trips() -> None:
    """``python -m bench.sleep_probe`` (the docs' third pass): a small drain with
    the round trips timed, and the bare-threads ceiling."""

    def probe(*args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "bench.sleep_probe", *args],
            cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
        )
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        return out.stdout

    drained = probe("-n", "1000", "--phases")
    assert "1,000 jobs, threads c=10" in drained and "of ideal" in drained
    assert "evalsha" in drained and "redis:" in drained  # the fetch script was measured
    shares = next(ln for ln in drained.splitlines() if ln.startswith("random instants"))
    assert "redis" in shares  # some instants fell inside a round trip's Redis phase
    assert "of ideal" in probe("--bare", "0")


def test_drain_poller_is_fine_at_both_ends_and_coarse_between() -> None:
    """The drain poller (bench.scenarios.poll_period) keeps 2 ms resolution
    where a drain's start and end are timed and backs off in between."""
    sys.path.insert(0, str(ROOT))
    from bench.scenarios import COARSE_POLL, POLL, poll_period

    assert poll_period(None, 5.0, 0, 20_000) == POLL  # not started yet
    assert poll_period(1.0, 1.0, 20, 19_980) == POLL  # the first tick after the start
    # 1 s in, 10,000 of 20,000 moved: ~1 s to go -> the coarse period.
    assert poll_period(1.0, 2.0, 10_000, 10_000) == COARSE_POLL
    # A few ms of work left -> back to POLL.
    assert poll_period(1.0, 2.0, 19_990, 10) == POLL
    # 10 ms in at a slow start (100 of 20,000): capped by the elapsed time, so a
    # rate that then grows is still caught near its end.
    assert poll_period(1.0, 1.01, 100, 19_900) == pytest.approx(0.0025)
