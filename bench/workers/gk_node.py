"""A gokogeri node for the benchmarks, run as its own process by the harness.

Jobs (same class names as sidekiq_jobs.rb, so one payload serves both):
NoopJob does nothing; IncrJob INCRs ``bench:done`` (an equal, exact completion
signal for every system); DeltaJob RPUSHes ``now - args[0]`` to ``bench:lat``
(start latency or scheduled lateness, depending on what args[0] is).
"""

from __future__ import annotations

import argparse
import signal
import time

import gokogeri
from gokogeri import redis as gredis


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--fetch", choices=["reliable", "basic"], default="reliable")
    p.add_argument("--concurrency", type=int, default=10)
    p.add_argument("--log", choices=["on", "off"], default="off")
    a = p.parse_args()

    cm = gredis.ConnManager(gredis.Config(url=a.url))
    client = cm.client
    router = gokogeri.Router()
    router.register("NoopJob", lambda ctx, job: None)
    router.register("IncrJob", lambda ctx, job: client.incr("bench:done"))

    def delta(ctx: gokogeri.Context, job: gokogeri.Job) -> None:
        started = time.time()  # first thing: what we measure is the start
        client.rpush("bench:lat", repr(started - float(job.args[0])))

    router.register("DeltaJob", delta)
    logger = gokogeri.default_logger() if a.log == "on" else gokogeri.nop_logger()
    node = gokogeri.Node(logger, cm, fetch=a.fetch)
    node.process_queues(gokogeri.OrderedQueueSet(["default"]), router, instances=a.concurrency)
    signal.signal(signal.SIGTERM, lambda s, f: node.request_stop())
    signal.signal(signal.SIGINT, lambda s, f: node.request_stop())
    node.run()
    cm.close()


if __name__ == "__main__":
    main()
