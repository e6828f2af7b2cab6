"""``gokogeri demo``: enqueue and run jobs end to end, then show what happened.

Uses GOKOGERI_REDIS_URL / REDIS_URL when set; otherwise starts a private
redis-server (from PATH) on a free loopback port and stops it afterwards.
"""

from __future__ import annotations

import os
import threading
import time
from contextlib import ExitStack

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import gokogeri
from gokogeri import redis as gredis
from gokogeri.api import Api
from gokogeri.testing import RedisServer, find_redis_server


def run_demo(jobs: int, concurrency: int) -> int:
    console = Console()
    with ExitStack() as stack:
        url = os.environ.get("GOKOGERI_REDIS_URL") or os.environ.get("REDIS_URL")
        if url:
            console.print(f"Using Redis at {gredis.redact_url(url)}")
            db_note = "(your Redis: the demo only adds keys, it flushes nothing)"
        else:
            if find_redis_server() is None:
                console.print(
                    "[red]No Redis configured and no redis-server on PATH.[/red] "
                    "Install one (apt-get install redis-server) or set GOKOGERI_REDIS_URL."
                )
                return 1
            server = stack.enter_context(RedisServer())
            url = server.url
            db_note = "(embedded redis-server, stopped at exit)"
        console.print(f"Redis: {gredis.redact_url(url)} {db_note}")
        cm = stack.enter_context(gredis.ConnManager(gredis.Config(url=url)))
        return _demo(console, cm, jobs, concurrency)
    return 0


def _demo(console: Console, cm: gredis.ConnManager, jobs: int, concurrency: int) -> int:
    done = 0
    lock = threading.Lock()
    router = gokogeri.Router()

    def count(ctx: gokogeri.Context, job: gokogeri.Job) -> None:
        nonlocal done
        with lock:
            done += 1

    @router.handle("SendWelcomeEmailJob")
    def send_welcome_email(ctx: gokogeri.Context, job: gokogeri.Job) -> None:
        count(ctx, job)

    @router.handle("ReminderJob")
    def reminder(ctx: gokogeri.Context, job: gokogeri.Job) -> None:
        count(ctx, job)

    @router.handle("ChargeCardJob")
    def charge(ctx: gokogeri.Context, job: gokogeri.Job) -> None:
        count(ctx, job)
        raise RuntimeError("card declined (on purpose: this job shows the retry set)")

    logger = gokogeri.nop_logger()
    node = gokogeri.Node(logger, cm, heartbeat_interval=1.0, tag="demo")
    node.process_queues(gokogeri.OrderedQueueSet(["mailers", "billing"]), router, concurrency)
    enqueuer = gokogeri.Enqueuer(cm)

    t0 = time.perf_counter()
    enqueuer.enqueue_bulk(
        gokogeri.Job("SendWelcomeEmailJob", queue="mailers", args=[i, f"user{i}@example.com"])
        for i in range(jobs)
    )
    bulk_s = time.perf_counter() - t0
    scheduled = 5
    for i in range(scheduled):
        enqueuer.enqueue_in(gokogeri.Job("ReminderJob", queue="mailers", args=[i]), 1.0 + i * 0.2)
    enqueuer.enqueue(
        gokogeri.Job("ChargeCardJob", queue="billing", args=[42, 19.99, "EUR"], retry=3)
    )
    enqueuer.enqueue(gokogeri.Job("ChargeCardJob", queue="billing", args=[43, 5.0, "EUR"], retry=0))
    total = jobs + scheduled + 2
    console.print(
        f"Enqueued {jobs} jobs in {bulk_s * 1000:.0f} ms with enqueue_bulk, "
        f"{scheduled} scheduled 1-2 s ahead, 2 that fail."
    )

    thread = threading.Thread(target=node.run, name="demo-node", daemon=True)
    started = time.perf_counter()
    thread.start()
    with Progress(
        TextColumn("[bold]running"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("jobs", total=total)
        deadline = time.monotonic() + 60
        while done < total and time.monotonic() < deadline:
            progress.update(task, completed=done)
            time.sleep(0.05)
        progress.update(task, completed=done)
    elapsed = time.perf_counter() - started
    node.stop(10)
    thread.join(15)

    stats = Api(cm).stats()
    table = Table(title="gokogeri demo summary")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("jobs run", str(done))
    table.add_row("wall time", f"{elapsed:.2f} s (includes waiting for the scheduled jobs)")
    table.add_row("concurrency", str(concurrency))
    table.add_row("stat:processed / stat:failed", f"{stats.processed} / {stats.failed}")
    table.add_row("retry set (ChargeCardJob, retry: 3)", str(stats.retry_size))
    table.add_row("dead set (ChargeCardJob, retry: 0)", str(stats.dead_size))
    table.add_row("still scheduled", str(stats.scheduled_size))
    table.add_row("still enqueued", str(stats.enqueued))
    console.print(table)
    for entry in Api(cm).retries(1):
        console.print(
            f"retry entry: {entry.job.class_name} jid={entry.job.jid} "
            f"error={entry.job.error_class}: {entry.job.error_message}"
        )
    return 0 if done == total else 1
