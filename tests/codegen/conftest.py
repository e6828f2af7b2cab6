"""Fixtures for the codegen tests: compile a schema into an importable package, and run mypy on code.

mypy cannot follow setuptools' editable-install import hook, and ``gokogeri.codegen``
lives in ``codegen/`` rather than ``gokogeri/codegen/``, so mypy runs get a link
tree that puts the two together as the installed distribution does.
"""

from __future__ import annotations

import importlib
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from gokogeri.codegen import naming
from gokogeri.codegen.cli import generate

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "schemas"
GENERATED = Path(__file__).resolve().parent / "generated_jobs"
DIALECT = "https://json-schema.org/draft/2020-12/schema"

_counter = itertools.count()


def job_schema(*args: dict[str, Any], min_items: int | None = None, **extra: Any) -> dict[str, Any]:
    """A job schema around ``args`` (all required unless ``min_items`` says otherwise)."""
    doc: dict[str, Any] = {
        "$schema": DIALECT,
        "type": "array",
        "minItems": len(args) if min_items is None else min_items,
        "items": False,
        "x-gokogeri": {"class": "TestJob", "queue": "default"},
    }
    if args:
        doc["prefixItems"] = list(args)
    doc.update(extra)
    return doc


@pytest.fixture(scope="session")
def mypy_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory whose gokogeri/ is the runtime with codegen/ linked in as gokogeri/codegen."""
    root = tmp_path_factory.mktemp("mypy-root")
    pkg = root / "gokogeri"
    pkg.mkdir()
    for entry in (ROOT / "gokogeri").iterdir():
        if entry.name != "__pycache__":
            (pkg / entry.name).symlink_to(entry)
    (pkg / "codegen").symlink_to(ROOT / "codegen")
    return root


@pytest.fixture(scope="session")
def run_mypy(mypy_root: Path) -> Callable[[Path, list[str]], subprocess.CompletedProcess[str]]:
    def run(cwd: Path, targets: list[str]) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, MYPYPATH=str(mypy_root))
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "mypy",
                "--strict",
                "--no-error-summary",
                "--show-error-codes",
                "--cache-dir",
                str(mypy_root / ".mypy_cache"),
                *targets,
            ],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    return run


@pytest.fixture
def compile_schema(tmp_path: Path) -> Iterator[Callable[..., ModuleType]]:
    """Write a schema, generate a package from it, import and return the job module."""
    added: list[str] = []

    def compile_(schema: dict[str, Any], name: str = "test_job") -> ModuleType:
        pkg = f"gen_{next(_counter)}_{os.getpid()}"
        src = tmp_path / "schemas"
        src.mkdir(exist_ok=True)
        (src / f"{name}.json").write_text(json.dumps(schema))
        assert generate([src / f"{name}.json"], tmp_path / pkg, check=False) == 0
        if str(tmp_path) not in sys.path:
            sys.path.insert(0, str(tmp_path))
            added.append(str(tmp_path))
        return importlib.import_module(f"{pkg}.{naming.module_name(name)}")

    yield compile_
    for p in added:
        sys.path.remove(p)
