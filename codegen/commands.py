"""The Typer commands: ``gokogeri generate`` and ``gokogeri schema diff``.

``register(app)`` adds both to a Typer app (gokogeri/cli.py calls it). This
module imports only typer: the compiler (jsonschema, jinja2) loads when a
command runs, so ``gokogeri --help`` and the worker commands stay fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add ``generate`` and the ``schema`` group (``schema diff``) to ``app``."""

    @app.command()
    def generate(
        schemas: Annotated[list[Path], typer.Argument(help="schema files or directories")],
        out: Annotated[
            Path | None, typer.Option("--out", "-o", help="Python package directory to write")
        ] = None,
        ruby: Annotated[
            Path | None, typer.Option("--ruby", help="directory for the Ruby modules (Sidekiq)")
        ] = None,
        check: Annotated[
            bool,
            typer.Option(
                "--check", help="write nothing; exit 1 with a diff and a schema diff if stale"
            ),
        ] = False,
    ) -> None:
        """Compile JSON Schema job contracts into typed Python and/or Ruby."""
        from gokogeri.codegen.cli import generate as run_generate

        raise typer.Exit(run_generate(list(schemas), out, check, ruby=ruby))

    schema = typer.Typer(help="Job contract tools.", no_args_is_help=True)

    @schema.command("diff")
    def diff(
        paths: Annotated[
            list[Path],
            typer.Argument(
                help="OLD NEW (schema files or directories, generated output directories, "
                "gokogeri-contracts.json), or just NEW with --since"
            ),
        ],
        since: Annotated[
            str | None,
            typer.Option("--since", help="compare NEW with itself at this git revision"),
        ] = None,
        consumers_first: Annotated[
            bool,
            typer.Option(
                "--consumers-first",
                help="workers are always deployed before producers: changes that only need "
                "that order pass",
            ),
        ] = False,
    ) -> None:
        """Classify every contract change as safe or breaking; exit 1 on breaking."""
        from gokogeri.codegen.cli import INVALID, schema_diff

        if since is None and len(paths) != 2:
            typer.echo("error: give OLD and NEW, or NEW with --since GIT_REF", err=True)
            raise typer.Exit(INVALID)
        if since is not None and len(paths) != 1:
            typer.echo("error: with --since give only NEW", err=True)
            raise typer.Exit(INVALID)
        old = paths[0] if since is None else None
        raise typer.Exit(schema_diff(old, paths[-1], since=since, consumers_first=consumers_first))

    app.add_typer(schema, name="schema")
