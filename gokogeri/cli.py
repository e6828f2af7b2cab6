"""The ``gokogeri`` command: run a node, generate typed jobs, run the demo."""

from __future__ import annotations

import enum
import importlib
import inspect
import logging
import os
import sys
from typing import Annotated, Any

import redis as redispy
import typer

from gokogeri import __version__, contract, opscli
from gokogeri import redis as gredis
from gokogeri.cliopts import NamespaceOpt, RedisUrlOpt, config_from, connect, fail
from gokogeri.codegen import commands as codegen_commands
from gokogeri.errors import NodeCrashedError
from gokogeri.log import default_logger
from gokogeri.node import SHUTDOWN_TIMEOUT, Node
from gokogeri.queues import OrderedQueueSet, QueueSet, RandomQueueSet
from gokogeri.retry import RetryPolicy
from gokogeri.signals import install_signal_handlers
from gokogeri.worker import Worker, check_worker

app = typer.Typer(add_completion=False, help="Background jobs, wire-compatible with Sidekiq.")

# Sidekiq 6's default concurrency.
DEFAULT_CONCURRENCY = 10
# Exit status of a node that stopped after an internal error (sysexits' EX_SOFTWARE).
EXIT_CRASHED = 70


class FetchChoice(enum.StrEnum):
    reliable = "reliable"
    basic = "basic"


class CompatChoice(enum.StrEnum):
    v6 = "6"
    v7 = "7"
    v8 = "8"


class TimestampChoice(enum.StrEnum):
    float_ = "float"
    ms = "ms"


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
    config: gredis.Config | None = None,
    compat: str | None = None,
) -> Node:
    """A Node from what ``target`` is: a Node, a Worker (instance or class), a
    Router, or a factory returning one of those."""
    if inspect.isclass(target):
        if not callable(getattr(target, "work", None)):
            raise typer.BadParameter(f"{target.__qualname__} is a class without work(ctx, job)")
        try:
            target = target()  # a Worker class: the node needs an instance
        except TypeError as e:
            raise typer.BadParameter(
                f"cannot create {target.__qualname__}() without arguments ({e}); "
                "point at an instance or a factory instead"
            ) from None
    elif not isinstance(target, Node) and not hasattr(target, "work") and callable(target):
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
    try:
        check_worker(target, "the target")
    except TypeError as e:
        raise typer.BadParameter(f"{e} (expected a Node, a Worker or a Router)") from None
    worker: Worker = target
    cm = gredis.ConnManager(config if config is not None else gredis.Config())
    policy = RetryPolicy(compat=compat) if compat else None  # type: ignore[arg-type]  # checked by the option
    try:
        node = Node(logger, cm, fetch=fetch, tag=tag, shutdown_timeout=timeout, retry_policy=policy)  # type: ignore[arg-type]  # checked by the option
        node.process_queues(parse_queues(queues), worker, concurrency or DEFAULT_CONCURRENCY)
    except (TypeError, ValueError) as e:
        raise typer.BadParameter(str(e)) from None
    return node


def _version(value: bool) -> None:
    if value:
        typer.echo(f"gokogeri {__version__}")
        raise typer.Exit()


VersionOpt = Annotated[
    bool,
    typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit"),
]


@app.callback()
def main_options(version: VersionOpt = False) -> None:
    """Background jobs, wire-compatible with Sidekiq."""


@app.command()
def run(
    target: Annotated[
        str,
        typer.Argument(
            help="MODULE:ATTR naming a Node, a Worker (instance or class), a Router, or a factory"
        ),
    ],
    queue: Annotated[
        list[str] | None, typer.Option("--queue", "-q", help="NAME[,WEIGHT]; repeatable")
    ] = None,
    concurrency: Annotated[int | None, typer.Option("--concurrency", "-c", min=1)] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", "-t", min=0, help="shutdown grace, seconds (>= 0)")
    ] = SHUTDOWN_TIMEOUT,
    tag: Annotated[str, typer.Option("--tag", "-g", help="shown in the Web UI")] = "",
    fetch: Annotated[
        FetchChoice, typer.Option(help="reliable (crash-safe) or basic (Sidekiq's BRPOP)")
    ] = FetchChoice.reliable,
    redis_url: RedisUrlOpt = None,
    namespace: NamespaceOpt = "",
    sidekiq_compat: Annotated[
        CompatChoice,
        typer.Option(
            "--sidekiq-compat",
            help="the Sidekiq version sharing this Redis: retry jitter and retry_for rules",
        ),
    ] = CompatChoice.v8,
    timestamps: Annotated[
        TimestampChoice,
        typer.Option(help="float seconds (every Sidekiq) or ms integers (Sidekiq 8 only)"),
    ] = TimestampChoice.float_,
    log_level: Annotated[str, typer.Option("--log-level", "-l")] = "info",
    metrics_port: Annotated[
        int | None,
        typer.Option(min=0, max=65535, help="serve Prometheus metrics on this port"),
    ] = None,
    metrics_addr: Annotated[
        str, typer.Option(help="address for --metrics-port (0.0.0.0: every interface)")
    ] = "127.0.0.1",
    sidekiq_metrics: Annotated[
        bool,
        typer.Option(help="record Sidekiq 7/8 execution metrics (the Web UI's Metrics tab)"),
    ] = True,
    processes: Annotated[
        int,
        typer.Option(
            "--processes",
            "-p",
            min=0,
            help="node processes to fork after one import (0 = one per core)",
        ),
    ] = 1,
    max_rss: Annotated[
        int | None,
        typer.Option("--max-rss", min=1, help="MiB; a process above it is quieted and replaced"),
    ] = None,
    version: VersionOpt = False,
) -> None:
    """Run a node until TERM/INT (or Stop in the Web UI); TSTP quiets it.

    A second TERM/INT stops at once: running jobs are pushed back to their queues.
    """
    level = logging.getLevelName(log_level.upper())
    if not isinstance(level, int):
        raise typer.BadParameter(f"unknown log level {log_level!r}")
    logger = default_logger(level)
    target_obj = load_target(target)
    redis_given = redis_url is not None or namespace or timestamps != TimestampChoice.float_
    if isinstance(target_obj, Node) and redis_given:
        raise typer.BadParameter(
            "the target is a ready Node with its own ConnManager: "
            "--redis-url/--namespace/--timestamps do not apply to it"
        )
    cfg = config_from(redis_url, namespace, timestamp_format=timestamps.value)
    if not isinstance(target_obj, Node):
        connect(cfg).close()  # one line, not a traceback, if Redis is not there

    def make_node(index: int) -> Node:  # with -p: in each child, after the fork
        node = build_node(
            target_obj,
            logger=logger,
            queues=queue or [],
            concurrency=concurrency,
            tag=tag,
            fetch=fetch.value,
            timeout=timeout,
            config=cfg,
            compat=sidekiq_compat.value,
        )
        if sidekiq_metrics:
            from gokogeri.metrics import SidekiqMetrics

            SidekiqMetrics.attach(node)  # writes nothing for --sidekiq-compat 6
        return node

    if processes != 1 or max_rss is not None:
        if isinstance(target_obj, Node):
            raise typer.BadParameter(
                "-p/--max-rss need a Worker, Router or factory: "
                "a ready Node has one identity and cannot be forked"
            )
        if metrics_port is not None:
            raise typer.BadParameter(
                "--metrics-port serves one process; with -p, mount "
                "gokogeri.prometheus in multi-process mode (PROMETHEUS_MULTIPROC_DIR)"
            )
        from gokogeri.swarm import Swarm

        swarm = Swarm(
            make_node,
            processes,
            max_rss_kb=max_rss * 1024 if max_rss else None,
            logger=logger,
            shutdown_timeout=timeout,
        )
        raise typer.Exit(swarm.run())
    node = make_node(0)
    if isinstance(target_obj, Node):
        connect(node.cm.config).close()
    install_signal_handlers(node)
    server = None
    if metrics_port is not None:
        from gokogeri.prometheus import start_metrics_server

        try:
            server = start_metrics_server(node, metrics_port, metrics_addr)
        except OSError as e:
            raise fail(f"cannot serve metrics on {metrics_addr}:{metrics_port}: {e}") from None
    try:
        node.run()
    except NodeCrashedError as e:
        logger.critical("%s", e)
        logging.shutdown()
        raise typer.Exit(EXIT_CRASHED) from None
    except redispy.RedisError as e:
        raise fail(f"Redis failed while starting the node at {cfg.redacted_url()}: {e}") from None
    finally:
        if server is not None:
            server.close()


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


codegen_commands.register(app)  # generate, schema diff
opscli.register(app)
contract.register(app)
