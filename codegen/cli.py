"""``gokogeri generate``: schemas in, a typed Python package out (or a staleness check).

``generate()`` is what the main Typer CLI calls; it prints problems and diffs
and returns the process exit code.
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path
from typing import TextIO

from .errors import SchemaError
from .loader import load
from .render import HEADER, PY_TYPED, render_package

OK = 0
STALE = 1  # --check: the package on disk differs from what the schemas generate
INVALID = 2  # a schema is invalid or outside the supported subset (usage-error code, as Typer's)


def build(paths: list[Path]) -> dict[str, str]:
    """File name -> contents of the package the schemas generate; raises SchemaError."""
    return render_package(load(paths))


def _generated_on_disk(out: Path) -> dict[str, str]:
    """Files in ``out`` that an earlier run generated (user files are never touched)."""
    found: dict[str, str] = {}
    if not out.is_dir():
        return found
    for f in sorted(out.iterdir()):
        if f.name == PY_TYPED and f.is_file():
            found[f.name] = f.read_text(encoding="utf-8")
        elif f.suffix == ".py" and f.is_file():
            text = f.read_text(encoding="utf-8")
            if text.startswith(HEADER):
                found[f.name] = text
    return found


def diff(out: Path, wanted: dict[str, str]) -> str:
    """A unified diff from what is on disk to what should be there ("" when up to date)."""
    have = _generated_on_disk(out)
    chunks: list[str] = []
    for name in sorted(set(have) | set(wanted)):
        old, new = have.get(name), wanted.get(name)
        if old == new:
            continue
        chunks.extend(
            difflib.unified_diff(
                (old or "").splitlines(keepends=True),
                (new or "").splitlines(keepends=True),
                fromfile=str(out / name) if old is not None else "/dev/null",
                tofile=str(out / name) if new is not None else "/dev/null",
            )
        )
    return "".join(
        c if c.endswith("\n") else c + "\n\\ No newline at end of file\n" for c in chunks
    )


def write(out: Path, wanted: dict[str, str]) -> list[str]:
    """Write changed files, delete generated files no schema produces any more; returns what changed."""
    out.mkdir(parents=True, exist_ok=True)
    have = _generated_on_disk(out)
    changed: list[str] = []
    for name, text in wanted.items():
        if have.get(name) != text:
            (out / name).write_text(text, encoding="utf-8", newline="\n")
            changed.append(name)
    for name in sorted(set(have) - set(wanted)):
        (out / name).unlink()
        changed.append(name)
    return changed


def generate(
    paths: list[Path],
    out: Path,
    check: bool,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Compile ``paths`` (schema files or directories) into the package at ``out``.

    With ``check`` nothing is written: prints a unified diff and returns 1 if
    the package is stale. Schema problems are printed as ``file#pointer: reason``
    and return 2.
    """
    so = stdout if stdout is not None else sys.stdout
    se = stderr if stderr is not None else sys.stderr
    try:
        wanted = build(paths)
    except SchemaError as e:
        for problem in e.problems:
            print(f"error: {problem}", file=se)
        return INVALID
    if check:
        text = diff(out, wanted)
        if text:
            so.write(text)
            print(f"{out} is out of date: run gokogeri generate without --check", file=se)
            return STALE
        return OK
    changed = write(out, wanted)
    jobs = sum(1 for n in wanted if n.endswith(".py") and n != "__init__.py")
    print(f"{out}: {jobs} job(s), {len(changed)} file(s) changed", file=se)
    return OK
