"""Operator commands on the ``gokogeri`` app: look at and act on what Sidekiq's API does.

Every command takes ``--redis-url``/``--namespace`` (cliopts) and the listing
ones ``--json`` (shapes documented in docs/operators.md). Text from payloads is
printed with control characters escaped and never as rich markup, so a job
cannot repaint the operator's terminal.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import redis as redispy
import typer
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from gokogeri import api as gapi
from gokogeri import periodic
from gokogeri.cliopts import NamespaceOpt, RedisUrlOpt, config_from, connect, fail
from gokogeri.errors import GokogeriError
from gokogeri.job import Job

JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON (see docs/operators.md)")]
LimitOpt = Annotated[int, typer.Option("--limit", "-n", min=1, help="how many entries to show")]
ClassOpt = Annotated[
    str | None, typer.Option("--class", help="only jobs of this class (or ActiveJob wrapped class)")
]
QueueFilterOpt = Annotated[str | None, typer.Option("--queue", help="only jobs of this queue")]
ErrorOpt = Annotated[
    str | None, typer.Option("--error", help="only jobs whose error contains this (any case)")
]
JidOpt = Annotated[str | None, typer.Option("--jid", help="only the job with this jid")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")]
AllOpt = Annotated[bool, typer.Option("--all", help="every entry (of --set; filters apply)")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="scheduled, retry or dead; repeatable"),
]

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def clean(text: Any, limit: int | None = None) -> str:
    """Payload-derived text for a terminal: control characters as escapes, cut at ``limit``."""
    s = _CONTROL.sub(lambda m: repr(m.group())[1:-1], "" if text is None else str(text))
    if limit is not None and len(s) > limit:
        s = s[: limit - 1] + "…"
    return s


def console(err: bool = False) -> Console:
    width = shutil.get_terminal_size((160, 24)).columns
    return Console(width=max(width, 100), stderr=err, highlight=False, soft_wrap=False)


def ago(t: float | None, now: float) -> str:
    """A time relative to now: "3m ago", "in 12s"."""
    if t is None or t <= 0:
        return "-"
    d = t - now
    text = duration(abs(d))
    return f"in {text}" if d > 0 else f"{text} ago"


def duration(seconds: float) -> str:
    s = int(seconds)
    if seconds < 60:
        return f"{seconds:.0f}s" if seconds >= 1 else f"{seconds:.1f}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def parse_duration(text: str) -> float:
    """``30``, ``30s``, ``5m``, ``2h``, ``1d`` -> seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not m:
        raise typer.BadParameter(f"bad duration {text!r}: expected e.g. 30s, 5m, 2h, 1d")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def emit_json(value: Any) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, indent=2, default=str))


@contextmanager
def admin(redis_url: str | None, namespace: str) -> Iterator[gapi.Api]:
    """An Api over a checked connection; a lost connection ends in one line, exit 2."""
    cm = connect(config_from(redis_url, namespace))
    try:
        yield gapi.Api(cm)
    except redispy.RedisError as e:
        raise fail(f"Redis error at {cm.config.redacted_url()}: {e}") from None
    finally:
        cm.close()


def _sets(given: list[str] | None, default: tuple[gapi.SetName, ...]) -> tuple[gapi.SetName, ...]:
    if not given:
        return default
    out: list[gapi.SetName] = []
    for name in given:
        if name not in gapi.SET_NAMES:
            raise typer.BadParameter(f"--set must be scheduled, retry or dead, not {name!r}")
        out.append(name)
    return tuple(out)


@contextmanager
def progress_bar(label: str, enabled: bool) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr for long actions (hidden when not a terminal or for --json)."""
    if not enabled:
        yield lambda done, total: None
        return
    bar = Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console(err=True),
        transient=True,
    )
    task = bar.add_task(label, total=None)
    with bar:
        yield lambda done, total: bar.update(task, completed=done, total=total)


def confirm(question: str, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise fail(f"{question} Refusing without a terminal to ask on: pass --yes")
    if not typer.confirm(question, default=False):
        raise typer.Exit(1)


# --- rendering ---


def _entry_row(entry: gapi.SortedEntry, now: float) -> list[Text | str]:
    when = ago(entry.score, now)
    job = entry.job
    if job is None:
        return [when, Text("(garbage)", style="red"), "", "", "", clean(entry.reason, 60), "-"]
    err = ""
    if job.get("error_class") or job.get("error_message"):
        err = f"{job.get('error_class') or ''}: {job.get('error_message') or ''}"
    count = job.get("retry_count")
    return [
        when,
        Text(clean(gapi.display_class(job), 50)),
        Text(clean(job.queue, 30)),
        Text(clean(job.jid)),
        "" if count is None else str(count),
        Text(clean(err, 70)),
        ago(job.created_at_seconds(), now),
    ]


def _set_table(title: str, when: str, entries: list[gapi.SortedEntry]) -> Table:
    table = Table(title=title, title_justify="left")
    for col in (when, "class", "queue", "jid", "retries", "error", "created"):
        table.add_column(col, overflow="fold" if col == "error" else "ellipsis")
    now = time.time()
    for entry in entries:
        table.add_row(*_entry_row(entry, now))
    return table


def _list_set(
    name: gapi.SetName,
    when: str,
    redis_url: str | None,
    namespace: str,
    limit: int,
    flt: gapi.Filter,
    as_json: bool,
) -> None:
    with admin(redis_url, namespace) as api:
        js = api.job_set(name)
        size = js.size()
        entries = js.scan(flt, limit, reverse=name == "dead")
    if as_json:
        emit_json({"set": name, "size": size, "entries": [e.to_dict() for e in entries]})
        return
    title = f"{name}: {size} job{'s' if size != 1 else ''}"
    if flt.active():
        title += f" ({len(entries)} shown, filtered)"
    elif size > len(entries):
        title += f" ({len(entries)} shown, --limit for more)"
    console().print(_set_table(title, when, entries))


def _queues_table(queues: list[gapi.QueueInfo]) -> Table:
    table = Table(title="queues", title_justify="left")
    table.add_column("queue")
    table.add_column("size", justify="right")
    table.add_column("latency", justify="right")
    for q in queues:
        table.add_row(Text(clean(q.name)), str(q.size), duration(q.latency))
    return table


def _busy_table(work: list[gapi.Work]) -> Table:
    table = Table(title=f"busy: {len(work)}", title_justify="left")
    for col in ("process", "thread", "queue", "class", "jid", "started"):
        table.add_column(col)
    now = time.time()
    for w in work:
        cls = gapi.display_class(w.job) if w.job is not None else f"(garbage: {w.reason})"
        table.add_row(
            Text(clean(w.identity)),
            Text(clean(w.thread)),
            Text(clean(w.queue)),
            Text(clean(cls, 50)),
            Text(clean(w.job.jid if w.job else "")),
            ago(w.run_at, now),
        )
    return table


def _processes_table(procs: list[gapi.Process]) -> Table:
    table = Table(title=f"processes: {len(procs)}", title_justify="left")
    for col in ("identity", "tag", "queues", "busy", "threads", "rss", "beat", "state", "version"):
        table.add_column(col, justify="right" if col in ("busy", "threads", "rss") else "left")
    now = time.time()
    for p in procs:
        state = "quiet" if p.quiet else "running"
        if p.reason:
            state = f"(garbage info: {p.reason})"
        table.add_row(
            Text(clean(p.identity)),
            Text(clean(p.tag)),
            Text(clean(", ".join(p.queues), 40)),
            str(p.busy),
            str(p.concurrency),
            f"{p.rss_kb / 1024:.0f} MB",
            ago(p.beat, now),
            state,
            Text(clean(p.version)),
        )
    return table


def _stats_table(stats: gapi.Stats, history: gapi.History | None) -> Table:
    table = Table(title="stats", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    for label, value in (
        ("processed", stats.processed),
        ("failed", stats.failed),
        ("busy", stats.workers_size),
        ("enqueued", stats.enqueued),
        ("scheduled", stats.scheduled_size),
        ("retries", stats.retry_size),
        ("dead", stats.dead_size),
        ("processes", stats.processes_size),
        ("default queue latency", duration(stats.default_queue_latency)),
    ):
        table.add_row(label, str(value))
    if history is not None:
        for day, n in history.processed.items():
            table.add_row(f"{day} processed / failed", f"{n} / {history.failed.get(day, 0)}")
    return table


# --- actions ---


def _find(api: gapi.Api, jid: str, sets: tuple[gapi.SetName, ...]) -> gapi.SortedEntry | None:
    return api.find_job(jid, sets)


def _act_on_jids(
    verb: str,
    jids: list[str],
    sets: tuple[gapi.SetName, ...],
    api: gapi.Api,
    act: Callable[[gapi.SortedEntry], bool],
) -> int:
    missing = 0
    for jid in jids:
        entry = _find(api, jid, sets)
        if entry is None or entry.set is None:
            typer.echo(f"not found: {clean(jid)} (looked in {', '.join(sets)})", err=True)
            missing += 1
            continue
        if act(entry):
            typer.echo(f"{verb} {clean(jid)} (from {entry.set.name})")
        else:
            typer.echo(f"not {verb}: {clean(jid)} was gone from {entry.set.name} already", err=True)
            missing += 1
    return 1 if missing else 0


def _act_all(
    verb: str,
    sets: tuple[gapi.SetName, ...],
    api: gapi.Api,
    flt: gapi.Filter,
    yes: bool,
    act: Callable[[gapi.JobSet, Callable[[int, int], None], gapi.Filter], int],
) -> None:
    sizes = {name: api.job_set(name).size() for name in sets}
    what = ", ".join(f"{name}: {n}" for name, n in sizes.items())
    scope = " matching the filters" if flt.active() else ""
    ask = {"retried": "Retry", "killed": "Kill", "deleted": "Delete"}[verb]
    confirm(f"{ask} every job{scope} in {what}?", yes)
    for name in sets:
        js = api.job_set(name)
        with progress_bar(f"{verb} {name}", sys.stderr.isatty()) as report:
            n = act(js, report, flt)
        typer.echo(f"{verb} {n} job{'s' if n != 1 else ''} from {name}")


def _check_jids_or_all(jids: list[str] | None, all_: bool) -> list[str]:
    if all_ and jids:
        raise typer.BadParameter("give JIDs or --all, not both")
    if not all_ and not jids:
        raise typer.BadParameter("give one or more JIDs, or --all")
    return jids or []


def _load_schema(schemas: Path, class_name: str) -> dict[str, Any]:
    """The job schema in ``schemas`` whose ``x-gokogeri.class`` (or title) is ``class_name``."""
    files = sorted(schemas.glob("*.json")) if schemas.is_dir() else [schemas]
    for path in files:
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise fail(f"cannot read schema {path}: {e}") from None
        meta = doc.get("x-gokogeri") if isinstance(doc, dict) else None
        if isinstance(meta, dict) and meta.get("class") == class_name:
            return doc  # type: ignore[no-any-return]  # a JSON object, checked above
    raise fail(f"no schema in {schemas} has x-gokogeri.class {class_name!r}")


def _check_against_schema(schema: dict[str, Any], args: list[Any]) -> None:
    import jsonschema

    cls = jsonschema.validators.validator_for(schema)
    validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(args), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [
            f"  args{''.join(f'[{p!r}]' for p in e.absolute_path)}: {e.message}" for e in errors
        ]
        raise fail("args do not match the job's schema:\n" + "\n".join(lines))


def register(app: typer.Typer) -> None:
    """Add the operator commands to ``app``."""

    @app.command(rich_help_panel="Operate")
    def stats(
        redis_url: RedisUrlOpt = None,
        namespace: NamespaceOpt = "",
        days: Annotated[int, typer.Option(min=0, max=1825, help="daily history to show")] = 0,
        as_json: JsonOpt = False,
    ) -> None:
        """Totals, set sizes, queue sizes and latencies (Sidekiq::Stats)."""
        with admin(redis_url, namespace) as api:
            s = api.stats()
            history = api.history(days) if days else None
        if as_json:
            out = s.to_dict()
            if history is not None:
                out["history"] = {"processed": history.processed, "failed": history.failed}
            emit_json(out)
            return
        con = console()
        con.print(_stats_table(s, history))
        con.print(
            _queues_table(
                [gapi.QueueInfo(q, n, s.latencies.get(q, 0.0)) for q, n in s.queues.items()]
            )
        )

    @app.command(rich_help_panel="Operate")
    def queues(
        redis_url: RedisUrlOpt = None, namespace: NamespaceOpt = "", as_json: JsonOpt = False
    ) -> None:
        """Every queue with its size and latency (seconds since the oldest job was enqueued)."""
        with admin(redis_url, namespace) as api:
            qs = api.queues()
        if as_json:
            emit_json([{"name": q.name, "size": q.size, "latency": q.latency} for q in qs])
            return
        console().print(_queues_table(qs))

    @app.command(rich_help_panel="Operate")
    def busy(
        redis_url: RedisUrlOpt = None, namespace: NamespaceOpt = "", as_json: JsonOpt = False
    ) -> None:
        """Jobs in progress on every process (Ruby or Python), oldest first."""
        with admin(redis_url, namespace) as api:
            work = api.work()
        if as_json:
            emit_json([w.to_dict() for w in work])
            return
        console().print(_busy_table(work))

    @app.command(rich_help_panel="Operate")
    def processes(
        redis_url: RedisUrlOpt = None, namespace: NamespaceOpt = "", as_json: JsonOpt = False
    ) -> None:
        """Live processes (Ruby Sidekiq and gokogeri nodes) as the Web UI's Busy page lists them."""
        with admin(redis_url, namespace) as api:
            procs = api.processes()
        if as_json:
            emit_json([p.to_dict() for p in procs])
            return
        console().print(_processes_table(procs))

    def set_command(name: gapi.SetName, when: str, doc: str) -> None:
        def command(
            redis_url: RedisUrlOpt = None,
            namespace: NamespaceOpt = "",
            limit: LimitOpt = 20,
            class_name: ClassOpt = None,
            queue: QueueFilterOpt = None,
            error: ErrorOpt = None,
            jid: JidOpt = None,
            as_json: JsonOpt = False,
        ) -> None:
            flt = gapi.Filter(class_name, queue, jid, error)
            _list_set(name, when, redis_url, namespace, limit, flt, as_json)

        command.__doc__ = doc
        cli_name = {"scheduled": "scheduled", "retry": "retries", "dead": "dead"}[name]
        app.command(cli_name, rich_help_panel="Operate")(command)

    set_command("scheduled", "runs", "Scheduled jobs, soonest first.")
    set_command("retry", "next retry", "Failed jobs waiting to retry, soonest first.")
    set_command("dead", "died", "Dead jobs (the morgue), latest first.")

    @app.command("retry", rich_help_panel="Operate")
    def retry_cmd(
        jids: Annotated[list[str] | None, typer.Argument(help="jids to retry now")] = None,
        all_: AllOpt = False,
        sets: SetOpt = None,
        class_name: ClassOpt = None,
        queue: QueueFilterOpt = None,
        error: ErrorOpt = None,
        yes: YesOpt = False,
        redis_url: RedisUrlOpt = None,
        namespace: NamespaceOpt = "",
    ) -> None:
        """Enqueue jobs now (SortedEntry#retry: retry_count - 1). --all: retry and dead sets."""
        ids = _check_jids_or_all(jids, all_)
        with admin(redis_url, namespace) as api:
            if not all_:
                chosen = _sets(sets, ("retry", "dead", "scheduled"))

                def act(e: gapi.SortedEntry) -> bool:
                    return e.add_to_queue() if e.set and e.set.name == "scheduled" else e.retry()

                raise typer.Exit(_act_on_jids("retried", ids, chosen, api, act))
            flt = gapi.Filter(class_name, queue, None, error)
            _act_all(
                "retried",
                _sets(sets, ("retry", "dead")),
                api,
                flt,
                yes,
                lambda js, report, f: js.retry_all(report, f),
            )

    @app.command("kill", rich_help_panel="Operate")
    def kill_cmd(
        jids: Annotated[
            list[str] | None, typer.Argument(help="jids to move to the dead set")
        ] = None,
        all_: AllOpt = False,
        sets: SetOpt = None,
        class_name: ClassOpt = None,
        queue: QueueFilterOpt = None,
        error: ErrorOpt = None,
        yes: YesOpt = False,
        redis_url: RedisUrlOpt = None,
        namespace: NamespaceOpt = "",
    ) -> None:
        """Move jobs to the dead set now (SortedEntry#kill). --all: the retry set."""
        ids = _check_jids_or_all(jids, all_)
        with admin(redis_url, namespace) as api:
            chosen = _sets(sets, ("retry", "scheduled") if not all_ else ("retry",))
            if "dead" in chosen:
                raise typer.BadParameter("jobs in the dead set are dead already")
            if not all_:
                raise typer.Exit(_act_on_jids("killed", ids, chosen, api, lambda e: e.kill()))
            flt = gapi.Filter(class_name, queue, None, error)
            _act_all("killed", chosen, api, flt, yes, lambda js, report, f: js.kill_all(report, f))

    @app.command("delete", rich_help_panel="Operate")
    def delete_cmd(
        jids: Annotated[list[str] | None, typer.Argument(help="jids to delete")] = None,
        all_: AllOpt = False,
        sets: SetOpt = None,
        class_name: ClassOpt = None,
        queue: QueueFilterOpt = None,
        error: ErrorOpt = None,
        garbage: Annotated[
            bool, typer.Option("--garbage", help="with --all: only entries that are not jobs")
        ] = False,
        yes: YesOpt = False,
        redis_url: RedisUrlOpt = None,
        namespace: NamespaceOpt = "",
    ) -> None:
        """Delete jobs from the sorted sets. --all needs --set (nothing is deleted by default)."""
        ids = _check_jids_or_all(jids, all_)
        with admin(redis_url, namespace) as api:
            if not all_:
                chosen = _sets(sets, ("scheduled", "retry", "dead"))
                raise typer.Exit(_act_on_jids("deleted", ids, chosen, api, lambda e: e.delete()))
            if not sets:
                raise typer.BadParameter("delete --all needs --set scheduled|retry|dead")
            flt = gapi.Filter(class_name, queue, None, error)

            def act(js: gapi.JobSet, report: Callable[[int, int], None], f: gapi.Filter) -> int:
                if not garbage:
                    return js.delete_all(report, f)
                return js.delete_garbage(report)

            _act_all("deleted", _sets(sets, ()), api, flt, yes, act)

    @app.command(rich_help_panel="Operate")
    def clear(
        queue: Annotated[str, typer.Argument(help="the queue to empty")],
        yes: YesOpt = False,
        redis_url: RedisUrlOpt = None,
        namespace: NamespaceOpt = "",
    ) -> None:
        """Delete every job in a queue and drop it from the queue list (Queue#clear)."""
        with admin(redis_url, namespace) as api:
            q = api.queue(queue)
            size = q.size()
            confirm(f"Delete all {size} jobs of queue {clean(queue)!r}?", yes)
            q.clear()
        typer.echo(f"cleared queue {clean(queue)} ({size} job{'s' if size != 1 else ''})")

    def signal_command(verb: str, sig: str, doc: str) -> None:
        def command(
            identities: Annotated[
                list[str] | None, typer.Argument(help="process identities")
            ] = None,
            all_: Annotated[bool, typer.Option("--all", help="every live process")] = False,
            yes: YesOpt = False,
            redis_url: RedisUrlOpt = None,
            namespace: NamespaceOpt = "",
        ) -> None:
            ids = _check_jids_or_all(identities, all_)
            with admin(redis_url, namespace) as api:
                if all_:
                    ids = [p.identity for p in api.processes() if not p.embedded]
                    confirm(f"{verb.capitalize()} {len(ids)} processes?", yes)
                status = 0
                for ident in ids:
                    try:
                        api.quiet(ident) if sig == "TSTP" else api.stop(ident)
                    except gapi.ApiError as e:
                        typer.echo(f"gokogeri: {e}", err=True)
                        status = 1
                        continue
                    typer.echo(f"sent {sig} to {clean(ident)} (acts at its next heartbeat)")
            raise typer.Exit(status)

        command.__doc__ = doc
        app.command(verb, rich_help_panel="Operate")(command)

    signal_command("quiet", "TSTP", "Quiet processes: they finish their jobs and fetch no more.")
    signal_command("stop", "TERM", "Stop processes, as the Web UI's Stop button does.")

    @app.command(rich_help_panel="Operate")
    def enqueue(
        class_name: Annotated[str, typer.Argument(metavar="CLASS", help="the job class")],
        queue: Annotated[str | None, typer.Option("--queue", "-q")] = None,
        args: Annotated[str, typer.Option("--args", help="a JSON array")] = "[]",
        in_: Annotated[str | None, typer.Option("--in", help="delay: 30s, 5m, 2h, 1d")] = None,
        at: Annotated[
            str | None, typer.Option("--at", help="ISO 8601 time (UTC if no zone)")
        ] = None,
        retry: Annotated[int | None, typer.Option("--retry", help="retries (default: 25)")] = None,
        schemas: Annotated[
            Path | None, typer.Option("--schemas", help="check args against this schema dir")
        ] = None,
        redis_url: RedisUrlOpt = None,
        namespace: NamespaceOpt = "",
    ) -> None:
        """Push one job, as Sidekiq's client does; prints its jid."""
        from gokogeri.enqueuer import Enqueuer

        try:
            parsed = json.loads(args)
        except ValueError as e:
            raise typer.BadParameter(f"--args is not JSON: {e}") from None
        if not isinstance(parsed, list):
            raise typer.BadParameter("--args must be a JSON array, e.g. '[1, \"two\"]'")
        if in_ is not None and at is not None:
            raise typer.BadParameter("give --in or --at, not both")
        options: dict[str, Any] = {}
        if schemas is not None:
            schema = _load_schema(schemas, class_name)
            _check_against_schema(schema, parsed)
            meta = schema.get("x-gokogeri", {})
            queue = queue or meta.get("queue")
            if retry is None and isinstance(meta.get("retry"), (bool, int)):
                options["retry"] = meta["retry"]
        if retry is not None:
            options["retry"] = retry
        job = Job(class_name, queue or "default", parsed, **options)
        when: float | None = None
        if in_ is not None:
            when = time.time() + parse_duration(in_)
        elif at is not None:
            try:
                dt = datetime.fromisoformat(at)
            except ValueError as e:
                raise typer.BadParameter(f"--at: {e}") from None
            when = (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()
        cm = connect(config_from(redis_url, namespace))
        try:
            enq = Enqueuer(cm)
            jid = enq.enqueue(job) if when is None else enq.enqueue_at(job, when)
        except (GokogeriError, ValueError, TypeError) as e:
            raise fail(f"cannot enqueue: {e}") from None
        except redispy.RedisError as e:
            raise fail(f"Redis error: {e}") from None
        finally:
            cm.close()
        if jid is None:
            raise fail("a client middleware dropped the job")
        typer.echo(jid)

    @app.command(rich_help_panel="Operate")
    def watch(
        interval: Annotated[float, typer.Option(min=0.2, help="seconds between refreshes")] = 2.0,
        count: Annotated[
            int, typer.Option(min=0, help="stop after this many refreshes (0 = until Ctrl-C)")
        ] = 0,
        redis_url: RedisUrlOpt = None,
        namespace: NamespaceOpt = "",
    ) -> None:
        """A live dashboard of totals, rates, queues, processes and busy jobs (like sidekiqmon)."""
        con = console()
        with admin(redis_url, namespace) as api:
            last: tuple[float, int, int] | None = None

            def frame() -> Group:
                nonlocal last
                s = api.stats()
                now = time.monotonic()
                rate = ""
                if last is not None and now > last[0]:
                    dt = now - last[0]
                    rate = (
                        f"   {(s.processed - last[1]) / dt:.1f} processed/s, "
                        f"{(s.failed - last[2]) / dt:.1f} failed/s"
                    )
                last = (now, s.processed, s.failed)
                head = Text(
                    f"gokogeri watch  {datetime.now(UTC).isoformat(timespec='seconds')}  "
                    f"processed {s.processed}  failed {s.failed}  busy {s.workers_size}  "
                    f"enqueued {s.enqueued}  scheduled {s.scheduled_size}  "
                    f"retries {s.retry_size}  dead {s.dead_size}{rate}"
                )
                qs = [gapi.QueueInfo(q, n, s.latencies.get(q, 0.0)) for q, n in s.queues.items()]
                return Group(
                    head, _queues_table(qs), _processes_table(api.processes()),
                    _busy_table(api.work()[:20]),
                )  # fmt: skip

            shown = 0
            try:
                with Live(frame(), console=con, auto_refresh=False) as live:
                    shown = 1
                    while count == 0 or shown < count:
                        time.sleep(interval)
                        live.update(frame(), refresh=True)
                        shown += 1
            except KeyboardInterrupt:
                pass

    @app.command("cron", rich_help_panel="Operate")
    def cron_cmd(
        redis_url: RedisUrlOpt = None, namespace: NamespaceOpt = "", as_json: JsonOpt = False
    ) -> None:
        """Periodic jobs registered by running nodes, with their last and next run."""
        cm = connect(config_from(redis_url, namespace))
        try:
            entries = periodic.registered(cm)
        except redispy.RedisError as e:
            raise fail(f"Redis error: {e}") from None
        finally:
            cm.close()
        if as_json:
            emit_json([e.to_dict() for e in entries])
            return
        table = Table(title=f"periodic jobs: {len(entries)}", title_justify="left")
        for col in ("name", "schedule", "class", "queue", "last run", "next run", "seen"):
            table.add_column(col)
        now = time.time()
        for entry in entries:
            seen = ago(entry.seen, now)
            if entry.seen and now - entry.seen > 3 * periodic.REGISTRY_REFRESH:
                seen += " (stale: no node runs it?)"
            table.add_row(
                Text(clean(entry.name)),
                Text(clean(f"{entry.kind} {entry.schedule}")),
                Text(clean(entry.class_name)),
                Text(clean(entry.queue)),
                ago(entry.last_run, now),
                ago(entry.next_run, now) if entry.reason is None else Text(clean(entry.reason)),
                seen,
            )
        console().print(table)
