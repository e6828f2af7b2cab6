"""``python -m gokogeri.codegen SCHEMAS... [--out DIR] [--ruby DIR] [--check]`` (as ``gokogeri generate``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .cli import generate

app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Compile JSON Schema job contracts into typed Python.",
)


@app.command()
def main(
    schemas: Annotated[list[Path], typer.Argument(help="Schema files or directories of *.json.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="The package directory to write.")
    ] = None,
    ruby: Annotated[
        Path | None, typer.Option("--ruby", help="The directory for the Ruby modules.")
    ] = None,
    check: Annotated[
        bool,
        typer.Option("--check", help="Write nothing; exit 1 with a diff if the package is stale."),
    ] = False,
) -> None:
    raise typer.Exit(generate(schemas, out, check, ruby=ruby))


if __name__ == "__main__":
    app()
