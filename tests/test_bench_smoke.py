"""The benchmark harness itself works (``python -m bench --quick``); speed is not asserted here."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


@pytest.mark.skipif(shutil.which("redis-benchmark") is None, reason="redis-tools not installed")
def test_quick_benchmark_runs_and_writes_results() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    results = json.loads((ROOT / "bench" / "results" / "quick.json").read_text())
    drain = results["drain"]["noop"]["gokogeri-reliable-logoff"]
    assert all(run["jobs_done"] == run["n"] and not run["partial"] for run in drain["runs"])
    assert drain["rate"] > 0
    assert results["enqueue"]["single"]["gokogeri"]["rate"] > 0
    assert results["latency"]["gokogeri-reliable"]["samples"] > 0
