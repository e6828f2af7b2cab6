"""Operator commands (stats, queues, retries, dead, ...): registered on the ``gokogeri`` app."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the operator commands to ``app``."""
