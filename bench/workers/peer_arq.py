"""arq peer: job functions, worker settings and queue filler. Runs under bench/.venv/arq.

Worker: ``python peer_arq.py worker`` = ``arq.run_worker(WorkerSettings)`` with
per-job logging off (the ``arq`` CLI has no flag for that).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import Any

from arq import create_pool, run_worker
from arq.connections import RedisSettings

URL = os.environ["BENCH_REDIS_URL"]


async def noop(ctx: dict[str, Any], *args: object) -> None:
    pass


async def incr(ctx: dict[str, Any], *args: object) -> None:
    await ctx["redis"].incr("bench:done")


class WorkerSettings:
    functions = [noop, incr]  # noqa: RUF012 (arq reads class attributes)
    redis_settings = RedisSettings.from_dsn(URL)
    max_jobs = 10  # the same concurrency as every other system


async def fill(n: int, kind: str) -> None:
    pool = await create_pool(WorkerSettings.redis_settings)
    for base in range(0, n, 500):
        await asyncio.gather(
            *(
                pool.enqueue_job(kind, "string", i, {"mike": "bob"})
                for i in range(base, min(n, base + 500))
            )
        )
    await pool.aclose()


if __name__ == "__main__":
    if sys.argv[1] == "worker":
        logging.basicConfig(level=logging.WARNING)
        run_worker(WorkerSettings)  # type: ignore[arg-type]
    else:
        asyncio.run(fill(int(sys.argv[2]), sys.argv[3]))
