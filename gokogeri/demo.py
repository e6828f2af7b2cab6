"""``gokogeri demo``: typed jobs from schemas/, run end to end on a node.

It compiles the example contracts in schemas/ with the code generator into a
temporary package, enqueues jobs through the generated typed API (bulk,
scheduled, failing, and one with args that break its schema), runs them on a
node with a progress bar, and prints what landed where.

Uses GOKOGERI_REDIS_URL / REDIS_URL when set; otherwise starts a private
redis-server (from PATH) on a free loopback port and stops it afterwards.
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, date, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import gokogeri
from gokogeri import redis as gredis
from gokogeri.api import Api
from gokogeri.testing import RedisServer, find_redis_server

PACKAGE = "gokogeri_demo_jobs"


def find_schemas() -> Path | None:
    for candidate in (Path.cwd() / "schemas", Path(__file__).resolve().parent.parent / "schemas"):
        if candidate.is_dir() and any(candidate.glob("*.json")):
            return candidate
    return None


def run_demo(jobs: int, concurrency: int) -> int:
    console = Console()
    schemas = find_schemas()
    if schemas is None:
        console.print(
            "[red]No schemas/ directory found:[/red] run the demo from a gokogeri checkout."
        )
        return 1
    with ExitStack() as stack:
        url = os.environ.get("GOKOGERI_REDIS_URL") or os.environ.get("REDIS_URL")
        if url:
            note = "(configured; the demo adds keys and deletes nothing)"
        else:
            if find_redis_server() is None:
                console.print(
                    "[red]No Redis configured and no redis-server on PATH.[/red] "
                    "Install one (apt-get install redis-server) or set GOKOGERI_REDIS_URL."
                )
                return 1
            url = stack.enter_context(RedisServer()).url
            note = "(embedded redis-server, stopped at exit)"
        console.print(f"Redis: {gredis.redact_url(url)} {note}")
        out_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gokogeri-demo-")))
        module = generate(console, schemas, out_dir)
        cm = stack.enter_context(gredis.ConnManager(gredis.Config(url=url)))
        return _demo(console, cm, module, jobs, concurrency)
    return 1


def generate(console: Console, schemas: Path, out_dir: Path) -> ModuleType:
    from gokogeri.codegen.cli import generate as run_generate

    t0 = time.perf_counter()
    code = run_generate([schemas], out_dir / PACKAGE, False)
    if code != 0:
        raise SystemExit(code)
    console.print(
        f"gokogeri generate: {len(list(schemas.glob('*.json')))} schemas -> typed package "
        f"in {(time.perf_counter() - t0) * 1000:.0f} ms"
    )
    sys.path.insert(0, str(out_dir))
    try:
        return importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(out_dir))


def _demo(console: Console, cm: gredis.ConnManager, jobs_mod: Any, n: int, concurrency: int) -> int:
    rt = importlib.import_module("gokogeri.codegen.runtime")
    done = 0
    lock = threading.Lock()

    def count() -> None:
        nonlocal done
        with lock:
            done += 1

    class Mailer(jobs_mod.SendWelcomeEmailWorker):  # type: ignore[misc]
        def perform(
            self,
            ctx: gokogeri.Context,
            user_id: int,
            email: str,
            locale: str = "en",
            referrer_code: str | None = None,
        ) -> None:
            count()

    class Reports(jobs_mod.GenerateReportWorker):  # type: ignore[misc]
        def perform(
            self, ctx: gokogeri.Context, report_id: uuid.UUID, kind: str, *rest: Any, **kw: Any
        ) -> None:
            count()

    class Cleanup(jobs_mod.NightlyCleanupWorker):  # type: ignore[misc]
        def perform(self, ctx: gokogeri.Context) -> None:
            count()

    class Billing(jobs_mod.ChargeInvoiceWorker):  # type: ignore[misc]
        def perform(
            self, ctx: gokogeri.Context, invoice_id: uuid.UUID, *rest: Any, **kw: Any
        ) -> None:
            count()
            raise RuntimeError("card declined (on purpose: this job shows the retry set)")

    router = gokogeri.Router()
    for worker in (Mailer(), Reports(), Cleanup(), Billing()):
        worker.register(router)
    node = gokogeri.Node(gokogeri.nop_logger(), cm, heartbeat_interval=1.0, tag="demo")
    queues = [
        jobs_mod.SendWelcomeEmail.QUEUE,
        jobs_mod.ChargeInvoice.QUEUE,
        jobs_mod.GenerateReport.QUEUE,
        jobs_mod.NightlyCleanup.QUEUE,
    ]
    node.process_queues(gokogeri.OrderedQueueSet(queues), router, concurrency)
    e = gokogeri.Enqueuer(cm)

    t0 = time.perf_counter()
    jobs_mod.SendWelcomeEmail.enqueue_bulk(e, [(i + 1, f"user{i}@example.com") for i in range(n)])
    bulk_ms = (time.perf_counter() - t0) * 1000
    today = date.today()
    scheduled = 5
    for i in range(scheduled):
        jobs_mod.GenerateReport.enqueue_in(
            e, 1.0 + i * 0.2, uuid.uuid4(), "sales", today, today, None, datetime.now(UTC)
        )
    jobs_mod.NightlyCleanup.enqueue(e)
    customer = {
        "id": 7,
        "name": "Ada",
        "billing_address": {"line1": "1 Main St", "line2": None, "city": "Paris", "country": "FR"},
    }
    money = {"amount_cents": 1999, "currency": "eur"}
    line = {"sku": "SKU-1", "quantity": 1, "unit_price": money}
    jobs_mod.ChargeInvoice.enqueue(e, uuid.uuid4(), money, customer, [line], "card", None)
    # What Ruby might push by mistake: args that break the schema.
    e.enqueue(gokogeri.Job("SendWelcomeEmailJob", queue="mailers", args=["not-an-id", "x"]))
    try:
        jobs_mod.SendWelcomeEmail.enqueue(e, 0, "nobody")
    except rt.ArgumentError as err:
        console.print(f"Refused before reaching Redis: [yellow]{err}[/yellow]")
    total = n + scheduled + 2  # the cleanup and the charge; the invalid push never reaches perform
    console.print(
        f"Enqueued {n} SendWelcomeEmail jobs in {bulk_ms:.0f} ms (enqueue_bulk), {scheduled} "
        "GenerateReport jobs 1-2 s ahead, a NightlyCleanup, a ChargeInvoice that fails, and a "
        "payload that breaks its schema."
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
    api = Api(cm)
    time.sleep(0.2)  # let the failures settle
    node.stop(10)
    thread.join(15)

    stats = api.stats()
    table = Table(title="gokogeri demo summary")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("jobs performed", f"{done} of {total}")
    table.add_row("wall time", f"{elapsed:.2f} s (includes waiting for the scheduled jobs)")
    table.add_row("concurrency", str(concurrency))
    table.add_row("stat:processed / stat:failed", f"{stats.processed} / {stats.failed}")
    table.add_row("retry set", str(stats.retry_size))
    table.add_row("dead set", str(stats.dead_size))
    table.add_row("still scheduled / enqueued", f"{stats.scheduled_size} / {stats.enqueued}")
    console.print(table)
    for entry in api.retries(10):
        if entry.job is not None:
            job = entry.job
            console.print(f"retry set: {job.class_name}: {job.error_class}: {job.error_message}")
    return 0 if done == total and stats.retry_size == 2 else 1
