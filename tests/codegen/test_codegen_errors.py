"""Every construct outside the supported subset fails with file, JSON pointer and reason."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import DIALECT, job_schema
from gokogeri.codegen.cli import INVALID, generate
from gokogeri.codegen.errors import SchemaError
from gokogeri.codegen.loader import load

INT = {"title": "n", "type": "integer"}


def with_defs(arg: dict[str, Any], **defs: Any) -> dict[str, Any]:
    return job_schema(arg, **{"$defs": defs})


def obj(props: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": props,
        "required": [],
        "additionalProperties": False,
        **extra,
    }


REF = {"title": "thing", "$ref": "#/$defs/Thing"}

CASES: list[tuple[str, dict[str, Any], str, str]] = [
    # (id, schema, pointer, reason fragment)
    (
        "if-then-else",
        job_schema({**INT, "if": {"minimum": 1}, "then": {"maximum": 5}}),
        "/prefixItems/0/if",
        "conditional schemas (if/then/else)",
    ),
    (
        "dependentRequired",
        with_defs(REF, Thing=obj({"a": {"type": "string"}}, dependentRequired={"a": ["a"]})),
        "/$defs/Thing/dependentRequired",
        "dependentRequired",
    ),
    (
        "dependentSchemas",
        with_defs(REF, Thing=obj({"a": {"type": "string"}}, dependentSchemas={"a": {}})),
        "/$defs/Thing/dependentSchemas",
        "dependentSchemas",
    ),
    (
        "patternProperties",
        job_schema(
            {"title": "m", "type": "object", "patternProperties": {"^x": {"type": "string"}}}
        ),
        "/prefixItems/0/patternProperties",
        "use additionalProperties with a schema for a map",
    ),
    (
        "oneOf",
        job_schema({"title": "x", "oneOf": [{"type": "string"}, {"type": "integer"}]}),
        "/prefixItems/0/oneOf",
        "oneOf is not supported",
    ),
    (
        "anyOf",
        job_schema({"title": "x", "anyOf": [{"type": "string"}, {"type": "null"}]}),
        "/prefixItems/0/anyOf",
        "anyOf is not supported",
    ),
    (
        "allOf",
        job_schema({"title": "x", "allOf": [{"type": "string"}]}),
        "/prefixItems/0/allOf",
        "allOf is not supported",
    ),
    (
        "not",
        job_schema({"title": "x", "type": "string", "not": {"const": "a"}}),
        "/prefixItems/0/not",
        "not has no Python type",
    ),
    (
        "unknown-keyword",
        job_schema({**INT, "maxProperties": 5}),
        "/prefixItems/0/maxProperties",
        "maxProperties is not supported",
    ),
    (
        "ref-missing",
        job_schema({"title": "x", "$ref": "#/$defs/Nope"}),
        "/prefixItems/0/$ref",
        "unresolvable $ref '#/$defs/Nope': there is no $defs entry 'Nope'",
    ),
    (
        "ref-remote",
        job_schema({"title": "x", "$ref": "https://example.com/s.json"}),
        "/prefixItems/0/$ref",
        "unresolvable $ref 'https://example.com/s.json': only local references",
    ),
    (
        "ref-recursive",
        with_defs(REF, Thing=obj({"child": {"$ref": "#/$defs/Thing"}})),
        "/$defs/Thing",
        "recursive $ref is not supported (Thing -> Thing)",
    ),
    (
        "unknown-format",
        job_schema({"title": "x", "type": "string", "format": "color"}),
        "/prefixItems/0/format",
        "unknown format 'color' (supported: date, date-time, duration, email,",
    ),
    ("no-type", job_schema({"title": "x"}), "/prefixItems/0", "needs a type"),
    (
        "true-schema",
        job_schema(INT, **{"$defs": {"Any": True}}),
        "/$defs/Any",
        "the boolean schema true is not supported",
    ),
    (
        "type-union",
        job_schema({"title": "x", "type": ["string", "array"], "items": {"type": "string"}}),
        "/prefixItems/0/type",
        "a union of types",
    ),
    (
        "array-without-items",
        job_schema({"title": "x", "type": "array"}),
        "/prefixItems/0",
        "needs an items schema",
    ),
    (
        "tuple-array",
        job_schema(
            {"title": "x", "type": "array", "prefixItems": [{"type": "string"}], "items": False}
        ),
        "/prefixItems/0/prefixItems",
        "tuple arrays (prefixItems) are only supported at the top level",
    ),
    (
        "object-any-values",
        job_schema({"title": "x", "type": "object"}),
        "/prefixItems/0",
        "otherwise its values would be Any",
    ),
    (
        "object-properties-and-map",
        with_defs(
            REF,
            Thing={
                "type": "object",
                "properties": {"a": {"type": "string"}},
                "additionalProperties": {"type": "string"},
            },
        ),
        "/$defs/Thing/additionalProperties",
        "properties together with an additionalProperties schema is not supported",
    ),
    (
        "required-unknown",
        with_defs(REF, Thing=obj({"a": {"type": "string"}}, required=["b"])),
        "/$defs/Thing/required/0",
        "required names 'b'",
    ),
    (
        "property-default-required",
        with_defs(REF, Thing=obj({"a": {"type": "string", "default": "x"}}, required=["a"])),
        "/$defs/Thing/properties/a/default",
        "property 'a' is required, so its default would never be used",
    ),
    (
        "property-default-invalid",
        with_defs(REF, Thing=obj({"a": {"type": "integer", "default": "x"}}, required=[])),
        "/$defs/Thing/properties/a/default",
        'the default "x" does not match the property\'s schema: must be an integer',
    ),
    (
        "unique-items-true",
        job_schema({"title": "x", "type": "array", "items": INT, "uniqueItems": True}),
        "/prefixItems/0/uniqueItems",
        "uniqueItems: true is not supported",
    ),
    (
        "ecma-pattern-python-only",
        job_schema({"title": "x", "type": "string", "pattern": "\\A[a-z]+\\Z"}),
        "/prefixItems/0/pattern",
        "\\A is not an ECMA-262 escape",
    ),
    (
        "ecma-pattern-script",
        job_schema({"title": "x", "type": "string", "pattern": "^\\p{Script=Latin}+$"}),
        "/prefixItems/0/pattern",
        "only general categories",
    ),
    (
        "ref-sibling-missing",
        job_schema({"title": "x", "$ref": "nowhere.json#/$defs/Money"}),
        "/prefixItems/0/$ref",
        "unresolvable $ref 'nowhere.json#/$defs/Money'",
    ),
    (
        "float-enum",
        job_schema({"title": "x", "enum": [1.5, 2.5]}),
        "/prefixItems/0/enum/0",
        "Literal cannot hold 1.5",
    ),
    (
        "enum-type-mismatch",
        job_schema({"title": "x", "type": "string", "enum": ["a", 1]}),
        "/prefixItems/0/enum/1",
        "does not match type",
    ),
    (
        "keyword-wrong-type",
        job_schema({"title": "x", "type": "string", "minimum": 1}),
        "/prefixItems/0/minimum",
        "keyword 'minimum' does not apply to type 'string'",
    ),
    (
        "missing-title",
        job_schema({"type": "integer"}),
        "/prefixItems/0",
        "every argument needs a title",
    ),
    (
        "duplicate-title",
        job_schema(
            {"title": "user id", "type": "integer"}, {"title": "user_id", "type": "integer"}
        ),
        "/prefixItems/1/title",
        "'user_id' is already used by args[0]",
    ),
    (
        "required-default",
        job_schema({**INT, "default": 1}),
        "/prefixItems/0/default",
        "so its default would never be used",
    ),
    (
        "bad-default",
        job_schema(
            INT, {"title": "m", "type": "integer", "minimum": 10, "default": 3}, min_items=1
        ),
        "/prefixItems/1/default",
        "the default 3 does not match the argument's schema: must be >= 10, got 3",
    ),
    (
        "mutable-default",
        job_schema(
            INT,
            {"title": "m", "type": "array", "items": {"type": "integer"}, "default": []},
            min_items=1,
        ),
        "/prefixItems/1/default",
        "only scalar defaults",
    ),
    (
        "format-default",
        job_schema(
            INT,
            {"title": "d", "type": "string", "format": "date", "default": "2024-01-01"},
            min_items=1,
        ),
        "/prefixItems/1/default",
        "not supported for date-time, date or uuid",
    ),
    (
        "items-open",
        {**job_schema(INT), "items": {"type": "string"}},
        "/items",
        "needs items: false",
    ),
    (
        "no-min-items",
        {k: v for k, v in job_schema(INT).items() if k != "minItems"},
        "",
        "needs minItems",
    ),
    (
        "min-items-too-big",
        job_schema(INT, min_items=2),
        "/minItems",
        "minItems is 2 but there are only 1",
    ),
    ("not-array", {**job_schema(INT), "type": "object"}, "/type", 'type must be "array"'),
    (
        "no-x-gokogeri",
        {k: v for k, v in job_schema(INT).items() if k != "x-gokogeri"},
        "",
        'needs "x-gokogeri"',
    ),
    (
        "x-gokogeri-unknown",
        {**job_schema(INT), "x-gokogeri": {"class": "A", "unique_for": 60}},
        "/x-gokogeri/unique_for",
        "unknown x-gokogeri option",
    ),
    (
        "x-gokogeri-queue",
        {**job_schema(INT), "x-gokogeri": {"class": "A", "queue": "no spaces"}},
        "/x-gokogeri/queue",
        "not a valid queue name",
    ),
    (
        "x-gokogeri-retry",
        {**job_schema(INT), "x-gokogeri": {"class": "A", "retry": -1}},
        "/x-gokogeri/retry",
        "retry must be true, false or an integer >= 0",
    ),
    (
        "dialect",
        {**job_schema(INT), "$schema": "http://json-schema.org/draft-07/schema#"},
        "/$schema",
        'draft-07 job schemas are not supported: set "$schema" to',
    ),
    (
        "dialect-2019",
        {**job_schema(INT), "$schema": "https://json-schema.org/draft/2019-09/schema"},
        "/$schema",
        "JSON Schema 2020-12",
    ),
    (
        "meta-schema",
        job_schema({"title": "x", "type": "integr"}),
        "/prefixItems/0/type",
        "not a valid JSON Schema 2020-12 document",
    ),
    (
        "unevaluatedProperties",
        with_defs(REF, Thing=obj({"a": {"type": "string"}}, unevaluatedProperties=False)),
        "/$defs/Thing/unevaluatedProperties",
        "unevaluatedProperties is not supported",
    ),
    (
        "bad-pattern",
        job_schema({"title": "x", "type": "string", "pattern": "(?<=a+)b"}),
        "/prefixItems/0/pattern",
        "cannot be used: no Python equivalent: look-behind requires fixed-width pattern",
    ),
]


@pytest.mark.parametrize(
    ("schema", "ptr", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_unsupported_construct(
    tmp_path: Path, schema: dict[str, Any], ptr: str, reason: str
) -> None:
    path = tmp_path / "bad_job.json"
    path.write_text(json.dumps(schema, indent=2))
    with pytest.raises(SchemaError) as info:
        load([path])
    (problem,) = info.value.problems
    assert problem.file == str(path)
    assert problem.pointer == ptr
    assert reason in problem.reason
    assert str(problem).startswith(f"{path}#{ptr or '/'}: ")


def test_invalid_json_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{\n  "title": "x",\n  "type": \n}')
    with pytest.raises(SchemaError, match=r"broken\.json#/: invalid JSON at line 4 column 1"):
        load([path])


def test_duplicate_json_keys_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "dup.json"
    path.write_text('{"type": "array", "type": "object"}')
    with pytest.raises(SchemaError, match=r"duplicate key 'type'"):
        load([path])


def test_problems_in_several_files_are_all_reported(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps(job_schema({"title": "x", "oneOf": []})))
    (tmp_path / "b.json").write_text(json.dumps(job_schema({"type": "integer"})))
    err = io.StringIO()
    assert generate([tmp_path], tmp_path / "out", check=False, stderr=err) == INVALID
    lines = err.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"error: {tmp_path / 'a.json'}#/prefixItems/0")
    assert lines[1].startswith(f"error: {tmp_path / 'b.json'}#/prefixItems/0")
    assert not (tmp_path / "out").exists()


def test_two_schemas_for_one_class_collide(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / f"{name}.json").write_text(json.dumps(job_schema(INT)))
    with pytest.raises(SchemaError) as info:
        load([tmp_path])
    reasons = [str(p) for p in info.value.problems]
    assert any(
        "b.json#/x-gokogeri/class: job class 'TestJob' is already used by" in r for r in reasons
    )


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="no such file or directory"):
        load([tmp_path / "nope.json"])


def test_pointer_escapes_slash_and_tilde(tmp_path: Path) -> None:
    schema = job_schema(
        REF, **{"$defs": {"Thing": obj({"a/b~c": {"type": "string", "format": "color"}})}}
    )
    path = tmp_path / "esc.json"
    path.write_text(json.dumps(schema))
    with pytest.raises(SchemaError) as info:
        load([path])
    assert info.value.problems[0].pointer == "/$defs/Thing/properties/a~1b~0c/format"


def test_dialect_constant_is_2020_12() -> None:
    assert DIALECT == "https://json-schema.org/draft/2020-12/schema"


META_CORPUS: list[Any] = [
    {"type": "integr"},
    {"minimum": "x"},
    {"properties": {"a": {"type": 5}}},
    {"prefixItems": []},
    {"$defs": {"a": {"enum": 3}}},
    {"items": {"required": "x"}},
    {"$ref": 5},
    {"dependencies": {"a": {"type": "q"}}},
    {"dependencies": {"a": ["b", "b"]}},
    {"anyOf": [{"format": 3}]},
    {"contentSchema": {"type": 1}},
    {"unevaluatedProperties": {"type": "x"}},
    {"$anchor": "1bad"},
    {"additionalProperties": {"not": {"minLength": -1}}},
    {"type": ["string", "string"]},
    {"if": {"const": 1}, "then": {"maxItems": 1.5}},
    {"$defs": {"x": {"$defs": {"y": {"required": [1]}}}}},
    True,
    {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
    *[
        json.loads(p.read_text())
        for p in sorted((Path(__file__).parents[2] / "schemas").glob("*.json"))
    ],
]


@pytest.mark.parametrize("doc", META_CORPUS)
def test_static_meta_schema_agrees_with_check_schema(doc: Any) -> None:
    from gokogeri.codegen.loader import _META, _meta_valid
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError as JsonSchemaError
    from jsonschema.exceptions import best_match

    try:
        Draft202012Validator.check_schema(doc)
        expected = None
    except JsonSchemaError as e:
        expected = (list(e.absolute_path), e.message)
    ours = best_match(_META.iter_errors(doc))
    # Same verdict; inside anyOf, best_match may pick a deeper (more specific) error.
    assert (ours is None) == (expected is None)
    assert _meta_valid(doc) == (expected is None)  # the fast path agrees too
    if ours is not None and expected is not None:
        assert list(ours.absolute_path)[: len(expected[0])] == expected[0]
