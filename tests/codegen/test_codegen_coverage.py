"""The JSON Schema that real teams write: each feature compiles, checks and converts as the schema says."""

from __future__ import annotations

import importlib
import itertools
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import DIALECT, job_schema
from gokogeri.codegen.cli import generate
from gokogeri.codegen.ecma import EcmaError, translate
from gokogeri.codegen.errors import SchemaError
from gokogeri.codegen.loader import load
from gokogeri.codegen.runtime import UNSET, ArgumentError

_n = itertools.count()


@pytest.fixture
def compile_dir(tmp_path: Path) -> Iterator[Callable[[dict[str, Any]], ModuleType]]:
    """Write several files (job schemas and shared ones), generate, import the package."""
    sys.path.insert(0, str(tmp_path))

    def compile_(files: dict[str, Any]) -> ModuleType:
        src = tmp_path / f"schemas_{next(_n)}"
        for name, doc in files.items():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            (src / name).write_text(json.dumps(doc))
        pkg = f"cov_{next(_n)}_{os.getpid()}"
        assert generate([src], tmp_path / pkg, check=False) == 0
        return importlib.import_module(pkg)

    yield compile_
    sys.path.remove(str(tmp_path))


MONEY = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "definitions": {
        "Money": {
            "type": "object",
            "properties": {
                "amount": {"type": "integer", "minimum": 0},
                "currency": {"type": "string", "pattern": "^[A-Z]{3}$", "default": "EUR"},
            },
            "required": ["amount"],
            "additionalProperties": False,
        }
    },
}


def test_sibling_ref_to_a_draft07_file_nested_refs_and_property_defaults(
    compile_dir: Callable[[dict[str, Any]], ModuleType],
) -> None:
    address = {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "lines": {"type": "array", "items": {"type": "string"}, "default": []},
        },
        "required": ["city"],
    }
    order = {
        "$defs": {
            "Order": {
                "type": "object",
                "properties": {
                    "total": {"$ref": "money.json#/definitions/Money"},
                    "ship_to": {"$ref": "address.json"},
                },
                "required": ["total", "ship_to"],
                "additionalProperties": False,
            }
        }
    }
    job = job_schema(
        {"title": "order", "$ref": "shared/order.json#/$defs/Order"},
        {"title": "refund", "$ref": "shared/money.json#/definitions/Money"},
    )
    pkg = compile_dir(
        {
            "job.json": job,
            "shared/money.json": MONEY,
            "shared/address.json": address,
            "shared/order.json": order,
        }
    )
    mod = pkg.job
    # Encode keeps what was given; decode fills defaults in (a fresh list per job).
    payload = mod.Test.job(
        {"total": {"amount": 5}, "ship_to": {"city": "Oslo", "zip": "0150"}}, {"amount": 1}
    ).args
    assert payload == [
        {"total": {"amount": 5}, "ship_to": {"city": "Oslo", "zip": "0150"}},
        {"amount": 1},
    ]
    values = mod._ARGS.decode(payload)
    assert values[0]["total"] == {"amount": 5, "currency": "EUR"}
    assert values[0]["ship_to"] == {"city": "Oslo", "zip": "0150", "lines": []}
    assert values[1] == {"amount": 1, "currency": "EUR"}
    again = mod._ARGS.decode(payload)
    assert again[0]["ship_to"]["lines"] is not values[0]["ship_to"]["lines"]
    with pytest.raises(ArgumentError) as e:
        mod.Test.job(
            {"total": {"amount": 5, "currency": "eur"}, "ship_to": {"city": "x"}}, {"amount": 1}
        )
    assert str(e.value) == (
        "TestJob args[0] (order).total.currency: must match the pattern '^[A-Z]{3}$'"
    )


def test_ref_cycle_across_files_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(
        json.dumps({"type": "object", "properties": {"b": {"$ref": "b.json"}}})
    )
    (tmp_path / "b.json").write_text(
        json.dumps({"type": "object", "properties": {"a": {"$ref": "a.json"}}})
    )
    (tmp_path / "job.json").write_text(json.dumps(job_schema({"title": "x", "$ref": "a.json"})))
    with pytest.raises(SchemaError) as info:
        load([tmp_path])
    reasons = [str(p) for p in info.value.problems]
    assert any("recursive $ref is not supported" in r for r in reasons), reasons


def test_primitive_union_multiple_of_and_formats(
    compile_schema: Callable[..., ModuleType],
) -> None:
    mod = compile_schema(
        job_schema(
            {"title": "id", "type": ["integer", "string"], "minimum": 1, "minLength": 2},
            {"title": "step", "type": "number", "multipleOf": 0.5},
            {"title": "mail", "type": "string", "format": "email"},
            {"title": "host", "type": "string", "format": "hostname"},
            {"title": "ip", "type": "string", "format": "ipv4", "readOnly": True},
            {"title": "site", "type": "string", "format": "uri", "writeOnly": True},
            {"title": "tags", "type": "array", "items": {"type": "string"}, "uniqueItems": False},
        )
    )
    ok = ("ab", 1.5, "a@b.c", "example.com", "10.0.0.1", "https://x.y/z", [])
    assert mod.Test.job(*ok).args == list(ok)
    assert mod.Test.job(7, *ok[1:]).args[0] == 7
    cases = [
        ((0, *ok[1:]), "args[0] (id_): must be >= 1, got 0"),
        (("a", *ok[1:]), "args[0] (id_): must be at least 2 characters, got 1"),
        ((True, *ok[1:]), "args[0] (id_): must be an integer or a string, got true"),
        ((ok[0], 1.25, *ok[2:]), "args[1] (step): must be a multiple of 0.5, got 1.25"),
        ((*ok[:2], "nope", *ok[3:]), "args[2] (mail): must be an email address (format email)"),
        ((*ok[:3], "-bad-", *ok[4:]), "args[3] (host): must be a hostname (format hostname)"),
        ((*ok[:4], "256.1.1.1", *ok[5:]), "args[4] (ip): must be an IPv4 address (format ipv4)"),
        ((*ok[:5], "no scheme", ok[6]), "args[5] (site): must be an absolute URI (format uri)"),
    ]
    for args, message in cases:
        with pytest.raises(ArgumentError) as e:
            mod.Test.job(*args)
        assert str(e.value) == f"TestJob {message}"


def test_ecma_pattern_unicode_property_and_anchors(
    compile_schema: Callable[..., ModuleType],
) -> None:
    mod = compile_schema(
        job_schema({"title": "name", "type": "string", "pattern": "^\\p{L}[\\p{L} '-]*$"})
    )
    assert mod.Test.job("Zoë O'Brien-Łukasz").args == ["Zoë O'Brien-Łukasz"]
    for bad in ("1abc", "abc\n", "abc!"):
        with pytest.raises(ArgumentError, match="must match the pattern"):
            mod.Test.job(bad)


@pytest.mark.parametrize(
    ("pattern", "python_ok", "python_bad"),
    [
        ("^\\d+$", "123", "١٢٣"),  # ECMA \d is ASCII; Python's \d would take Arabic digits
        ("^a.c$", "abc", "a\rc"),  # ECMA . excludes \r
        ("^\\w+$", "ab_9", "é"),
        ("^[^]$", "x", ""),
        ("^(?<y>\\d{2})-\\k<y>$", "12-12", "12-13"),
    ],
)
def test_ecma_translation_semantics(pattern: str, python_ok: str, python_bad: str) -> None:
    import re

    compiled = re.compile(translate(pattern).python)
    assert compiled.search(python_ok)
    assert not compiled.search(python_bad)


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("(?i)abc", "inline flags"),
        ("\\p{Script=Greek}", "only general categories"),
        ("[a-", "unterminated character class"),
        ("\\p{Bogus}", "not a supported Unicode property"),
    ],
)
def test_ecma_refusals_are_precise(pattern: str, reason: str) -> None:
    with pytest.raises(EcmaError, match=reason):
        translate(pattern)


def test_inline_and_open_objects_and_missing_required(
    compile_schema: Callable[..., ModuleType],
) -> None:
    mod = compile_schema(
        job_schema(
            {
                "title": "profile",
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "address": {
                        "type": "object",
                        "properties": {"city": {"type": "string"}},
                        "additionalProperties": False,
                    },
                },
            }
        )
    )
    assert {"Profile", "ProfileAddress"} <= set(vars(mod))
    # No required list: every key optional; open object: unknown keys kept as they are.
    assert mod.Test.job({"extra": [1, 2]}).args == [{"extra": [1, 2]}]
    with pytest.raises(
        ArgumentError, match=r"\(profile\)\.address: ProfileAddress has no key 'zip'"
    ):
        mod.Test.job({"address": {"zip": "1"}})


def test_every_problem_in_every_file_in_one_run(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(
        json.dumps(
            job_schema(
                {"title": "x", "type": "string", "if": {"minLength": 1}},
                {"title": "y", "type": "string", "format": "color"},
                {"title": "z", "$ref": "#/$defs/T"},
                **{"$defs": {"T": {"type": "object", "properties": {"k": {"not": {}}}}}},
            )
        )
    )
    (tmp_path / "b.json").write_text(json.dumps(job_schema({"type": "integer"})))
    with pytest.raises(SchemaError) as info:
        load([tmp_path])
    where = [(Path(p.file).name, p.pointer) for p in info.value.problems]
    assert where == [
        ("a.json", "/$defs/T/properties/k/not"),
        ("a.json", "/prefixItems/0/if"),
        ("a.json", "/prefixItems/1/format"),
        ("b.json", "/prefixItems/0"),
    ]


def test_draft07_job_schema_gets_a_one_line_migration_hint(tmp_path: Path) -> None:
    doc = {
        **job_schema({"title": "n", "type": "integer"}),
        "$schema": "http://json-schema.org/draft-07/schema#",
    }
    (tmp_path / "old.json").write_text(json.dumps(doc))
    with pytest.raises(SchemaError) as info:
        load([tmp_path])
    (problem,) = info.value.problems
    assert "\n" not in problem.reason
    assert 'rename "definitions" to "$defs"' in problem.reason
    assert DIALECT in problem.reason


def test_a_shared_json_next_to_job_schemas_is_not_a_job(tmp_path: Path) -> None:
    (tmp_path / "money.json").write_text(json.dumps(MONEY))
    (tmp_path / "job.json").write_text(
        json.dumps(job_schema({"title": "m", "$ref": "money.json#/definitions/Money"}))
    )
    pkg = load([tmp_path])
    assert [j.module for j in pkg.jobs] == ["job"]
    (tmp_path / "job.json").unlink()
    with pytest.raises(SchemaError, match="no job schemas found"):
        load([tmp_path])


def test_unset_and_defaults_reach_perform(compile_schema: Callable[..., ModuleType]) -> None:
    mod = compile_schema(
        job_schema(
            {"title": "a", "type": "integer"},
            {"title": "b", "type": "string", "default": "x"},
            {"title": "c", "type": "boolean"},
            min_items=1,
        )
    )
    assert mod._ARGS.decode([1]) == [1, "x", UNSET]
