"""The ``gokogeri`` command: run a node, generate typed jobs, run the demo."""

from __future__ import annotations

import importlib
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from gokogeri import opscli
from gokogeri import redis as gredis
from gokogeri.log import default_logger
from gokogeri.node import SHUTDOWN_TIMEOUT, Node
from gokogeri.queues import OrderedQueueSet, QueueSet, RandomQueueSet
from gokogeri.worker import Worker

app = typer.Typer(add_completion=False, help="Background jobs, wire-compatible with Sidekiq.")

# Sidekiq 6's default concurrency.
DEFAULT_CONCURRENCY = 10


def parse_queues(specs: list[str]) -> QueueSet:
    """``-q NAME[,WEIGHT]`` flags, as ``sidekiq -q``: strict order unless a weight is given."""
    parsed: list[tuple[str, int]] = []
    for spec in specs:
        name, _, weight = spec.partition(",")
        try:
            parsed.append((name.strip(), int(weight) if weight else 0))
        except ValueError:
            raise typer.BadParameter(f"bad queue {spec!r}: expected NAME or NAME,WEIGHT") from None
    if not parsed:
        parsed = [("default", 0)]
    try:
        if all(w == 0 for _, w in parsed):
            return OrderedQueueSet([n for n, _ in parsed])
        return RandomQueueSet(parsed)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None


def load_target(spec: str) -> Any:
    """Import ``module:attr`` named on the command line (by the operator, never by a payload)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise typer.BadParameter(f"expected MODULE:ATTR, got {spec!r}")
    sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise typer.BadParameter(f"cannot import {module_name!r}: {e}") from None
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise typer.BadParameter(f"{module_name!r} has no attribute {attr!r}") from None
    return obj


def build_node(
    target: Any,
    *,
    logger: logging.Logger,
    queues: list[str],
    concurrency: int | None,
    tag: str,
    fetch: str,
    timeout: float,
) -> Node:
    """A Node from what ``target`` is: a Node, a Worker, or a factory of either."""
    if not isinstance(target, Node) and not hasattr(target, "work") and callable(target):
        target = target()
    if isinstance(target, Node):
        if queues or concurrency is not None:
            raise typer.BadParameter(
                "the target is a ready Node: configure its queues in code, "
                "or point at a Worker to use --queue/--concurrency"
            )
        target.shutdown_timeout = timeout
        if tag:
            target.tag = tag
        return target
    if not callable(getattr(target, "work", None)):
        raise typer.BadParameter(f"{target!r} is neither a Node nor a Worker (work(ctx, job))")
    worker: Worker = target
    cm = gredis.ConnManager(gredis.Config())
    node = Node(logger, cm, fetch=fetch, tag=tag, shutdown_timeout=timeout)  # type: ignore[arg-type]
    node.process_queues(parse_queues(queues), worker, concurrency or DEFAULT_CONCURRENCY)
    return node


def install_signal_handlers(node: Node) -> None:
    """TERM/INT stop, TSTP quiets, TTIN dumps threads: Sidekiq's signals."""

    def later(fn: Any) -> Any:
        # Handlers run on the main thread inside run(); do the work elsewhere.
        return lambda signum, frame: threading.Thread(target=fn, name="signal", daemon=True).start()

    signal.signal(signal.SIGTERM, lambda s, f: node.request_stop())
    signal.signal(signal.SIGINT, lambda s, f: node.request_stop())
    signal.signal(signal.SIGTSTP, later(node.quiet))
    signal.signal(signal.SIGTTIN, later(node.dump_threads))


@app.command()
def run(
    target: Annotated[
        str, typer.Argument(help="MODULE:ATTR naming a Node, a Worker, or a factory")
    ],
    queue: Annotated[
        list[str] | None, typer.Option("--queue", "-q", help="NAME[,WEIGHT]; repeatable")
    ] = None,
    concurrency: Annotated[int | None, typer.Option("--concurrency", "-c", min=1)] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", "-t", help="shutdown grace, seconds")
    ] = SHUTDOWN_TIMEOUT,
    tag: Annotated[str, typer.Option("--tag", "-g", help="shown in the Web UI")] = "",
    fetch: Annotated[str, typer.Option(help="reliable (crash-safe) or basic (BRPOP)")] = "reliable",
    log_level: Annotated[str, typer.Option("--log-level", "-l")] = "info",
) -> None:
    """Run a node until TERM/INT (or Stop in the Web UI); TSTP quiets it."""
    level = logging.getLevelName(log_level.upper())
    if not isinstance(level, int):
        raise typer.BadParameter(f"unknown log level {log_level!r}")
    if fetch not in ("reliable", "basic"):
        raise typer.BadParameter("--fetch must be reliable or basic")
    logger = default_logger(level)
    node = build_node(
        load_target(target),
        logger=logger,
        queues=queue or [],
        concurrency=concurrency,
        tag=tag,
        fetch=fetch,
        timeout=timeout,
    )
    install_signal_handlers(node)
    node.run()


@app.command()
def generate(
    schemas: Annotated[list[Path], typer.Argument(help="schema files or directories")],
    out: Annotated[Path, typer.Option("--out", "-o", help="package directory to write")],
    check: Annotated[
        bool, typer.Option("--check", help="fail with a diff if out is stale")
    ] = False,
) -> None:
    """Compile JSON Schema job contracts into a typed Python package."""
    from gokogeri.codegen.cli import generate as run_generate

    raise typer.Exit(run_generate(list(schemas), out, check))


@app.command()
def demo(
    jobs: Annotated[int, typer.Option(help="how many jobs to run")] = 2000,
    concurrency: Annotated[int, typer.Option(min=1)] = 10,
) -> None:
    """Enqueue and run jobs end to end (starts a private Redis if none is configured)."""
    from gokogeri.demo import run_demo

    raise typer.Exit(run_demo(jobs, concurrency))


def main() -> None:
    app()


opscli.register(app)
