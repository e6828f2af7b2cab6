"""Times gokogeri's Enqueuer in a process of its own (the counterpart of
sidekiq_client.rb). Prints one JSON line: {"seconds": ..., "jobs": ...}.

Both sides build their input inside the timed loop (a Job per push here, an
args array there): that is what a caller pays.
"""

from __future__ import annotations

import argparse
import json
import time

import gokogeri
from gokogeri import redis as gredis

# Jobs per push_bulk / enqueue_bulk call, as in Sidekiq's bin/sidekiqload.
BULK = 1000


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["single", "bulk", "many", "bulkx"])
    p.add_argument("n", type=int)
    p.add_argument("--url", required=True)
    a = p.parse_args()
    with gredis.ConnManager(gredis.Config(url=a.url)) as cm:
        enq = gokogeri.Enqueuer(cm)
        # Warm the connection and code paths before timing.
        enq.enqueue(gokogeri.Job(class_name="NoopJob", args=[]))
        cm.client.delete("queue:default")
        start = time.perf_counter()
        if a.mode == "single":
            for i in range(a.n):
                enq.enqueue(
                    gokogeri.Job(class_name="NoopJob", args=["string", i, {"mike": "bob"}])
                )
        elif a.mode == "many":  # Sidekiq's push_bulk shape: one template, many args lists
            template = gokogeri.Job(class_name="NoopJob", args=[])
            for base in range(0, a.n, BULK):
                enq.enqueue_many(
                    template, (["string", i, {"mike": "bob"}] for i in range(base, min(a.n, base + BULK)))
                )
        elif a.mode == "bulkx":  # the second shape: args [i, "x"], Jobs built here
            for base in range(0, a.n, BULK):
                enq.enqueue_bulk(
                    gokogeri.Job(class_name="NoopJob", args=[i, "x"])
                    for i in range(base, min(a.n, base + BULK))
                )
        else:
            for base in range(0, a.n, BULK):
                enq.enqueue_bulk(
                    gokogeri.Job(class_name="NoopJob", args=["string", i, {"mike": "bob"}])
                    for i in range(base, min(a.n, base + BULK))
                )
        seconds = time.perf_counter() - start
        queued = int(cm.client.llen("queue:default"))
    print(json.dumps({"seconds": seconds, "jobs": a.n, "queued": queued}))


if __name__ == "__main__":
    main()
