"""``gokogeri schema diff``: each kind of change, in both directions, with its verdict and exit code."""

from __future__ import annotations

import copy
import io
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import job_schema
from gokogeri.codegen.cli import CONTRACTS, INVALID, OK, generate, schema_diff
from gokogeri.codegen.diff import Verdict, compare
from gokogeri.codegen.loader import load

MONEY = {
    "type": "object",
    "properties": {
        "amount": {"type": "integer", "minimum": 0},
        "currency": {"enum": ["usd", "eur"]},
        "note": {"type": "string"},
    },
    "required": ["amount", "currency"],
    "additionalProperties": False,
}

BASE = job_schema(
    {"title": "user_id", "type": "integer", "minimum": 1},
    {"title": "kind", "enum": ["a", "b", "c"]},
    {"title": "price", "$ref": "#/$defs/Money"},
    {"title": "ratio", "type": "number", "maximum": 10},
    {"title": "locale", "type": "string", "default": "en"},
    min_items=4,
    **{"$defs": {"Money": MONEY}},
)


def edit(doc: dict[str, Any], change: str) -> dict[str, Any]:
    d = copy.deepcopy(doc)
    items = d["prefixItems"]
    if change == "remove-arg":
        items.pop()
    elif change == "add-optional-arg":
        items.append({"title": "extra", "type": "string"})
    elif change == "add-required-arg":
        items.insert(4, {"title": "extra", "type": "string"})
        d["minItems"] = 5
    elif change == "reorder":
        items[0], items[3] = items[3], items[0]
    elif change == "narrow-bound":
        items[0]["minimum"] = 10
    elif change == "narrow-type":
        items[3]["type"] = "integer"
    elif change == "enum-remove":
        items[1]["enum"] = ["a", "b"]
    elif change == "enum-add":
        items[1]["enum"] = ["a", "b", "c", "d"]
    elif change == "default-change":
        items[4]["default"] = "fr"
    elif change == "class":
        d["x-gokogeri"]["class"] = "RenamedJob"
    elif change == "queue":
        d["x-gokogeri"]["queue"] = "other"
    elif change == "retry":
        d["x-gokogeri"]["retry"] = 3
    elif change == "optional-becomes-required":
        del items[4]["default"]
        d["minItems"] = 5
    elif change == "required-becomes-optional":
        d["minItems"] = 3
    elif change == "property-required":
        d["$defs"]["Money"]["required"].append("note")
    elif change == "property-removed":
        del d["$defs"]["Money"]["properties"]["note"]
    elif change == "property-added":
        d["$defs"]["Money"]["properties"]["memo"] = {"type": "string"}
    elif change == "rename":
        items[0]["title"] = "account_id"
    elif change == "widen-bound":
        items[0]["minimum"] = 0
    else:
        raise AssertionError(change)
    return d


# change -> (verdict of OLD -> NEW, verdict of the reverse change NEW -> OLD)
CASES: dict[str, tuple[Verdict, Verdict]] = {
    "remove-arg": (Verdict.BREAKING, Verdict.CONSUMERS_FIRST),
    "add-optional-arg": (Verdict.CONSUMERS_FIRST, Verdict.BREAKING),
    "add-required-arg": (Verdict.BREAKING, Verdict.BREAKING),
    "reorder": (Verdict.BREAKING, Verdict.BREAKING),
    "narrow-bound": (Verdict.BREAKING, Verdict.CONSUMERS_FIRST),
    "widen-bound": (Verdict.CONSUMERS_FIRST, Verdict.BREAKING),
    "narrow-type": (Verdict.BREAKING, Verdict.CONSUMERS_FIRST),
    "enum-remove": (Verdict.BREAKING, Verdict.CONSUMERS_FIRST),
    "enum-add": (Verdict.CONSUMERS_FIRST, Verdict.BREAKING),
    "default-change": (Verdict.BREAKING, Verdict.BREAKING),
    "class": (Verdict.BREAKING, Verdict.BREAKING),
    "queue": (Verdict.BREAKING, Verdict.BREAKING),
    "retry": (Verdict.SAFE, Verdict.SAFE),
    "optional-becomes-required": (Verdict.BREAKING, Verdict.CONSUMERS_FIRST),
    "required-becomes-optional": (Verdict.CONSUMERS_FIRST, Verdict.BREAKING),
    "property-required": (Verdict.BREAKING, Verdict.CONSUMERS_FIRST),
    "property-removed": (Verdict.BREAKING, Verdict.CONSUMERS_FIRST),
    "property-added": (Verdict.CONSUMERS_FIRST, Verdict.BREAKING),
    "rename": (Verdict.SAFE, Verdict.SAFE),
}


def write(tmp: Path, name: str, doc: dict[str, Any]) -> Path:
    d = tmp / name
    d.mkdir()
    (d / "job.json").write_text(json.dumps(doc))
    return d


def run(old: Path, new: Path, consumers_first: bool = False) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    code = schema_diff(old, new, consumers_first=consumers_first, stdout=out, stderr=err)
    return code, out.getvalue() + err.getvalue()


@pytest.mark.parametrize("change", list(CASES))
def test_each_change_in_both_directions(tmp_path: Path, change: str) -> None:
    forward, backward = CASES[change]
    old = write(tmp_path, "old", BASE)
    new = write(tmp_path, "new", edit(BASE, change))
    for a, b, want in ((old, new, forward), (new, old, backward)):
        report = compare(load([a]), load([b]))
        assert report.worst() is want, report.text()
        code, text = run(a, b)
        assert code == (0 if want is Verdict.SAFE else 1), text
        assert f"verdict: {want.value}" in text
        if want is Verdict.CONSUMERS_FIRST:
            assert run(a, b, consumers_first=True)[0] == OK


def test_report_names_the_argument_and_the_reason(tmp_path: Path) -> None:
    old = write(tmp_path, "old", BASE)
    new = write(tmp_path, "new", edit(edit(BASE, "enum-remove"), "property-required"))
    code, text = run(old, new)
    assert code == 1
    assert text.splitlines() == [
        "TestJob",
        '  BREAKING                args[1] (kind): narrowed: enum value(s) "c" removed',
        "  BREAKING                args[2] (price): narrowed: .note: property became required",
        "verdict: breaking (2 breaking)",
    ]


def test_identical_schemas_have_no_changes(tmp_path: Path) -> None:
    old = write(tmp_path, "old", BASE)
    new = write(tmp_path, "new", BASE)
    assert run(old, new) == (OK, "no contract changes\n")


def test_generated_output_directory_as_old_side(tmp_path: Path) -> None:
    src = write(tmp_path, "src", BASE)
    out = tmp_path / "pkg"
    assert generate([src], out, False) == OK
    assert (out / CONTRACTS).exists()
    new = write(tmp_path, "new", edit(BASE, "queue"))
    code, text = run(out, new)
    assert code == 1 and "queue: 'default' -> 'other'" in text


def test_since_a_git_revision(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    schemas = repo / "schemas"
    schemas.mkdir(parents=True)
    (schemas / "job.json").write_text(json.dumps(BASE))

    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
            cwd=repo,
            check=True,
            capture_output=True,
        )

    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "v1")
    (schemas / "job.json").write_text(json.dumps(edit(BASE, "enum-remove")))
    out, err = io.StringIO(), io.StringIO()
    code = schema_diff(None, schemas, since="HEAD", stdout=out, stderr=err)
    assert code == 1, err.getvalue()
    assert 'enum value(s) "c" removed' in out.getvalue()
    assert schema_diff(None, schemas, since="nope", stdout=out, stderr=err) == INVALID
    assert "error: git" in err.getvalue()


def test_the_typer_commands(tmp_path: Path) -> None:
    import typer
    from gokogeri.codegen.commands import register
    from typer.testing import CliRunner

    app = typer.Typer()
    register(app)
    old = write(tmp_path, "old", BASE)
    new = write(tmp_path, "new", edit(BASE, "enum-add"))
    runner = CliRunner()
    res = runner.invoke(app, ["schema", "diff", str(old), str(new)])
    assert res.exit_code == 1 and "DEPLOY CONSUMERS FIRST" in res.output
    res = runner.invoke(app, ["schema", "diff", "--consumers-first", str(old), str(new)])
    assert res.exit_code == 0
    res = runner.invoke(
        app, ["generate", str(new), "--out", str(tmp_path / "py"), "--ruby", str(tmp_path / "rb")]
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "rb" / "job.rb").exists() and (tmp_path / "py" / "job.py").exists()
