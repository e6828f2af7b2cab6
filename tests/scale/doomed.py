"""``python -m tests.scale.doomed URL QUEUE [NAMESPACE]``: a node that dies (SIGKILL) inside
its first job, leaving it in its working list for a live node to rescue."""

from __future__ import annotations

import logging
import os
import signal
import sys

import gokogeri
from gokogeri import redis as gredis


def main() -> None:
    url, queue = sys.argv[1], sys.argv[2]
    namespace = sys.argv[3] if len(sys.argv) > 3 else ""
    cm = gredis.ConnManager(gredis.Config(url=url, namespace=namespace))
    node = gokogeri.Node(
        logging.getLogger("doomed"), cm, heartbeat_interval=0.5, rescue_after=2.0, prefetch=0
    )

    def die(ctx: gokogeri.Context, job: gokogeri.Job) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    node.process_queues(gokogeri.OrderedQueueSet([queue]), gokogeri.WorkerFunc(die), 1)
    node.run()


if __name__ == "__main__":
    main()
