"""Where a 1 ms-sleep drain's time goes (``python -m bench.sleep_probe``).

The io table's ``sleep 1 ms`` row says how far a node is from the ideal
(concurrency / 1 ms); this says why. A node runs in this process (threads,
c=10, crash-safe fetch, logging off) on a fresh redis-server, draining
sidekiqload-shaped jobs whose job times its own ``time.sleep(0.001)``:

- each thread's cycle = the sleep as the job sees it (the timer's wake-up plus
  any wait for the GIL after it) + the gap to its next sleep (the runtime's
  work between two jobs);
- the sleeps' overshoot past 1 ms, split by size: what each band costs per job;
- Redis: CPU per job and the fetch script's calls;
- ``--phases``: where the long sleeps (>= 1.15 ms) woke, relative to the
  dispatcher's round trips (before its send, while Redis runs the script,
  after the reply), against the share of random instants in each phase;
- ``--bare W``: no node, no Redis: 10 threads sleeping 1 ms and then holding
  the GIL W us, the ceiling this machine allows any threaded Python.

Absolute figures move with the machine's load; compare runs made together.
"""

from __future__ import annotations

import argparse
import bisect
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import gokogeri
from gokogeri import redis as gredis
from gokogeri.testing import RedisServer
from gokogeri.timers import precise_timers

CONCURRENCY = 10
LONG = 0.00115  # a sleep this long waited for something besides its timer
BANDS = (20, 30, 40, 60, 100, 200, 500, 10**9)  # overshoot bands, us


class Clock:
    """Per-thread (end, duration) of every sleep and the gaps between them."""

    def __init__(self) -> None:
        self._local = threading.local()
        self.threads: list[dict[str, list[float]]] = []
        self._lock = threading.Lock()

    def job(self, ctx: gokogeri.Context, job: gokogeri.Job) -> None:
        t0 = time.perf_counter()
        st = getattr(self._local, "st", None)
        if st is None:
            st = self._local.st = {"sleeps": [], "ends": [], "gaps": []}
            with self._lock:
                self.threads.append(st)
        elif st["ends"]:
            st["gaps"].append(t0 - st["ends"][-1])
        time.sleep(0.001)
        t1 = time.perf_counter()
        st["sleeps"].append(t1 - t0)
        st["ends"].append(t1)

    def done(self) -> int:
        return sum(len(s["ends"]) for s in list(self.threads))


def bands(sleeps: list[float]) -> str:
    over = [1e6 * s - 1000 for s in sleeps]
    out, lo = [], -1e9
    for hi in BANDS:
        part = sum(o for o in over if lo <= o < hi) / len(over)
        out.append(f"<{hi if hi < 10**9 else 'inf'}: {part:.1f}")
        lo = hi
    return " ".join(out)


def record_trips() -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """Wrap the dispatcher's round trip and its wire call (send to reply) in timers."""
    from gokogeri import redis as gr
    from gokogeri import reliable

    trips: list[tuple[float, float]] = []
    calls: list[tuple[float, float]] = []
    round_trip: Callable[..., int] = reliable.ReliableFetch._round_trip
    call: Callable[..., list[Any]] = gr.wire.call

    def timed_trip(self: Any, want: int, acks: list[Any]) -> int:
        t = time.perf_counter()
        n = round_trip(self, want, acks)
        trips.append((t, time.perf_counter()))
        return n

    def timed_call(conn: Any, packed: bytes, replies: int) -> list[Any]:
        t = time.perf_counter()
        out = call(conn, packed, replies)
        calls.append((t, time.perf_counter()))
        return out

    reliable.ReliableFetch._round_trip = timed_trip  # type: ignore[method-assign]
    gr.wire.call = timed_call  # type: ignore[assignment]  # ConnManager.send calls wire.call
    return trips, calls


def phase_of(w: float, trips: list[tuple[float, float]], calls: list[tuple[float, float]]) -> str:
    i = bisect.bisect_right(trips, (w, float("inf"))) - 1
    if i < 0 or w > trips[i][1]:
        return "no trip"
    start = trips[i][0]
    j = bisect.bisect_right(calls, (w, float("inf"))) - 1
    if j < 0 or calls[j][0] < start:
        return "before send"
    return "redis" if w <= calls[j][1] else "after reply"


def drain(n: int, phases: bool) -> None:
    trips, calls = record_trips() if phases else ([], [])
    clock = Clock()
    with RedisServer() as server, gredis.ConnManager(gredis.Config(url=server.url)) as cm:
        enq = gokogeri.Enqueuer(cm)
        for base in range(0, n, 10_000):
            enq.enqueue_bulk(
                gokogeri.Job(class_name="SleepJob", args=["string", i, {"mike": "bob"}])
                for i in range(base, min(n, base + 10_000))
            )
        router = gokogeri.Router()
        router.register("SleepJob", clock.job)
        node = gokogeri.Node(gokogeri.nop_logger(), cm)
        node.process_queues(gokogeri.OrderedQueueSet(["default"]), router, CONCURRENCY)
        r = cm.client
        r.config_resetstat()
        cpu0 = r.info("cpu")
        thread = threading.Thread(target=node.run, name="node")
        thread.start()
        while clock.done() < n:
            time.sleep(0.05)
        cpu1 = r.info("cpu")
        stats = r.info("commandstats")
        node.stop(5)
        thread.join()
    sleeps = [x for s in clock.threads for x in s["sleeps"]]
    gaps = [x for s in clock.threads for x in s["gaps"] if x < 0.05]
    events = sorted(
        (e, d) for s in clock.threads for e, d in zip(s["ends"], s["sleeps"], strict=True)
    )
    ends = [e for e, _ in events]
    first = min(e - d for e, d in events)
    rate = (len(ends) - 1) / (ends[-1] - first)
    print(f"{n:,} jobs, threads c={CONCURRENCY}: {rate:,.0f} jobs/s = "
          f"{rate / (CONCURRENCY * 1000):.1%} of ideal")
    print(f"cycle: sleep mean {1e6 * statistics.mean(sleeps):.1f} us "
          f"(median {1e6 * statistics.median(sleeps):.1f}) + gap mean "
          f"{1e6 * statistics.mean(gaps):.1f} us (median {1e6 * statistics.median(gaps):.1f})")
    print(f"overshoot per job by band (us): {bands(sleeps)}")
    redis_cpu = sum(cpu1[k] - cpu0[k] for k in ("used_cpu_sys", "used_cpu_user"))
    print(f"redis: {1e6 * redis_cpu / n:.1f} us CPU per job; " + ", ".join(
        f"{k.removeprefix('cmdstat_')} {v['calls']} x {v['usec_per_call']} us"
        for k, v in stats.items() if v["calls"] >= n // 100))
    if phases and trips:
        rng = random.Random(1)
        long_wakes = [e - d + 0.00103 for e, d in events if d > LONG]
        randoms = [rng.uniform(first, ends[-1]) for _ in range(20_000)]
        for name, points in (("long sleeps woke", long_wakes), ("random instants", randoms)):
            counts: dict[str, int] = {}
            for w in points:
                p = phase_of(w, trips, calls)
                counts[p] = counts.get(p, 0) + 1
            shares = ", ".join(f"{k} {v / len(points):.0%}" for k, v in sorted(counts.items()))
            print(f"{name} ({len(points):,}): {shares}")


def bare(work_us: float, seconds: float = 2.0) -> None:
    stop = time.perf_counter() + seconds
    counts = [0] * CONCURRENCY

    def loop(i: int) -> None:
        precise_timers()
        c = 0
        while time.perf_counter() < stop:
            time.sleep(0.001)
            end = time.perf_counter() + work_us / 1e6
            while time.perf_counter() < end:
                pass
            c += 1
        counts[i] = c

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(CONCURRENCY)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"bare: {CONCURRENCY} threads, 1 ms sleep + {work_us:g} us of GIL work: "
          f"{sum(counts) / seconds / (CONCURRENCY * 1000):.1%} of ideal")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-n", type=int, default=20_000, help="jobs to drain")
    p.add_argument("--phases", action="store_true", help="time the dispatcher's round trips")
    p.add_argument("--bare", type=float, metavar="W", help="no node: threads with W us of work")
    a = p.parse_args(argv)
    if a.bare is not None:
        bare(a.bare)
    else:
        drain(a.n, a.phases)
    return 0


if __name__ == "__main__":
    sys.exit(main())
