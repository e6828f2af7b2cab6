"""Timing probes for bench/ioprof.py, installed by gk_node.py when BENCH_TIMING is set.

They wrap (never change) runtime methods by name, on whatever tree is
imported, and skip what that tree does not have:

- ReliableFetch.retrieve: how long a processor waits for a job (starvation);
- StartMarks.mark: the start marker's cost in the processor thread;
- Pool._process: everything from a fetched job to its acknowledgement;
- ReliableFetch._round_trip: per dispatcher round trip, jobs asked/fetched,
  acknowledgements carried, and its wall time (reply wait + GIL included).

Each wrapper adds two perf_counter() calls (~0.1 us each) per call. Per-thread
sums are kept without a lock (each thread writes its own), summed at exit.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any

_local = threading.local()
_all: list[dict[str, float]] = []
_lock = threading.Lock()
_trips = {"n": 0, "want": 0, "acks": 0, "got": 0, "seconds": 0.0, "ack_only": 0}


def _mine() -> dict[str, float]:
    d: dict[str, float] | None = getattr(_local, "d", None)
    if d is None:
        d = _local.d = {}
        with _lock:
            _all.append(d)
    return d


def _timed(name: str, fn: Callable[..., Any], count_if: Callable[[Any], bool] | None = None) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            res = fn(*args, **kwargs)
        finally:
            d = _mine()
            d[name + "_s"] = d.get(name + "_s", 0.0) + time.perf_counter() - t0
        if count_if is None or count_if(res):
            d[name + "_n"] = d.get(name + "_n", 0) + 1
        else:
            d[name + "_idle_n"] = d.get(name + "_idle_n", 0) + 1
        return res

    return wrapper


def install() -> None:
    try:
        from gokogeri import reliable
    except ImportError:
        return
    rf = reliable.ReliableFetch
    rf.retrieve = _timed("retrieve", rf.retrieve, lambda r: r is not None)  # type: ignore[method-assign]  # probe
    orig_trip = rf._round_trip

    def round_trip(self: Any, want: int, acks: list[Any]) -> int:
        t0 = time.perf_counter()
        got = int(orig_trip(self, want, acks))
        _trips["seconds"] += time.perf_counter() - t0
        _trips["n"] += 1
        _trips["want"] += want
        _trips["acks"] += len(acks)
        _trips["got"] += got
        _trips["ack_only"] += want == 0
        return got

    rf._round_trip = round_trip  # type: ignore[method-assign]  # probe
    try:
        from gokogeri import started

        started.StartMarks.mark = _timed("mark", started.StartMarks.mark)  # type: ignore[method-assign]  # probe
    except (ImportError, AttributeError):
        pass
    try:
        from gokogeri import processor

        processor.Pool._process = _timed("process", processor.Pool._process)  # type: ignore[method-assign]  # probe
    except (ImportError, AttributeError):
        pass


def summary(jobs: int) -> dict[str, Any]:
    """Microseconds per job of each probe, summed over threads, and round-trip stats."""
    tot: dict[str, float] = {}
    with _lock:
        for d in _all:
            for k, v in d.items():
                tot[k] = tot.get(k, 0.0) + v
    out: dict[str, Any] = {}
    for name in ("retrieve", "mark", "process"):
        if name + "_s" in tot:
            out[f"{name}_us_per_job"] = 1e6 * tot[name + "_s"] / max(jobs, 1)
    if "retrieve_idle_n" in tot:
        out["retrieve_timeouts"] = tot["retrieve_idle_n"]
    n = _trips["n"]
    if n:
        out["round_trips_per_job"] = n / max(jobs, 1)
        out["round_trip_us"] = 1e6 * _trips["seconds"] / n
        out["jobs_asked_per_trip"] = _trips["want"] / n
        out["jobs_fetched_per_fetching_trip"] = _trips["got"] / max(n - _trips["ack_only"], 1)
        out["acks_per_trip"] = _trips["acks"] / n
        out["ack_only_trips_pct"] = 100 * _trips["ack_only"] / n
    return out
