"""Load job schemas, check them against JSON Schema 2020-12 and our subset, and build the model.

Every construct outside the declared subset is refused with the file, the JSON
pointer and the reason: a generator that quietly turns what it does not
understand into ``Any`` hands out types that lie.
"""

from __future__ import annotations

import importlib
import json
import keyword
import os
import re
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import jsonschema_rs
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from jsonschema.validators import validator_for

from . import activejob_runtime, ecma, naming, runtime
from .errors import Problem, SchemaError, pointer
from .model import (
    ArrayType,
    BoolType,
    DefRef,
    FloatType,
    FormatType,
    IntType,
    JobDef,
    LiteralType,
    MapType,
    NamedDef,
    NullableType,
    NullType,
    Package,
    Param,
    ParamKind,
    Property,
    Scalar,
    StrType,
    TypeNode,
    UnionType,
)

DIALECT = "https://json-schema.org/draft/2020-12/schema"

_BASE = "https://json-schema.org/draft/2020-12/"
# jsonschema's own store of the meta-schemas (the package ships no type information).
REGISTRY: Any = importlib.import_module("jsonschema_specifications").REGISTRY


def _static_meta_schema() -> dict[str, Any]:
    """The 2020-12 meta-schema with its vocabularies inlined and ``$dynamicRef`` made static.

    Draft202012Validator.check_schema spends ~8 ms per small schema resolving
    the meta-schema's ``$dynamicRef: "#meta"`` through the dynamic scope. For
    the standard dialect that reference always lands on the root meta-schema,
    so replacing it with ``$ref: "#"`` in one combined document checks exactly
    the same rules ~3.5x faster (tests compare the two on valid and invalid
    schemas).
    """
    meta = Draft202012Validator.META_SCHEMA
    defs: dict[str, Any] = {}

    def local(ref: str, vocab: str) -> str:
        # "#/$defs/x" inside vocabulary V, or "meta/V#/$defs/x" from the root.
        target, _, frag = ref.partition("#")
        if target:
            vocab = target.split("/")[-1]
        return "#/$defs/" + vocab + "_" + frag.removeprefix("/$defs/")

    def fix(node: Any, vocab: str) -> Any:
        if isinstance(node, list):
            return [fix(x, vocab) for x in node]
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        for k, v in node.items():
            if k == "$dynamicRef":
                out["$ref"] = "#"
            elif k in ("$dynamicAnchor", "$id", "$schema", "$vocabulary", "$defs"):
                continue
            elif k == "$ref":
                out["$ref"] = local(v, vocab)
            elif k in ("properties", "patternProperties"):
                out[k] = {name: fix(sub, vocab) for name, sub in v.items()}
            else:
                out[k] = fix(v, vocab)
        return out

    parts = []
    for item in meta["allOf"]:
        vocab = item["$ref"].split("/")[-1]
        src = REGISTRY.contents(_BASE + item["$ref"])
        for name, sub in src.get("$defs", {}).items():
            defs[f"{vocab}_{name}"] = fix(sub, vocab)
        parts.append(fix(src, vocab))
    root: dict[str, Any] = fix({k: v for k, v in meta.items() if k != "allOf"}, "root")
    root["allOf"] = parts
    root["$defs"] = defs
    return root


# Built once: check_schema builds a new validator per call.
_META = Draft202012Validator(_static_meta_schema())


def _meta_valid(doc: Any) -> bool:
    """Whether ``doc`` passes the 2020-12 meta-schema.

    jsonschema-rs answers in ~25 us where the pure-Python validator takes
    ~4 ms a schema (most of generating 200 schemas); only an invalid schema
    pays for the pure-Python pass that names the error.
    """
    return bool(jsonschema_rs.meta.is_valid(doc))


def _meta_error(doc: dict[str, Any]) -> tuple[str, str] | None:
    """(pointer, message) of the best meta-schema error, or None if ``doc`` is a valid schema.

    A 2020-12 document uses the prebuilt static validator; a shared file may
    declare another draft (draft-07 is common in public schemas) and is
    checked against its own meta-schema.
    """
    if _meta_valid(doc):
        return None
    if doc.get("$schema", DIALECT) == DIALECT:
        err = best_match(_META.iter_errors(doc))
    else:
        cls = validator_for(doc, default=Draft202012Validator)
        err = best_match(cls(cls.META_SCHEMA).iter_errors(doc))
    if err is None:
        return None
    return pointer(*err.absolute_path), err.message


# Sidekiq 8's Web UI only shows queues whose names match this (as gokogeri.enqueuer).
QUEUE_NAME = re.compile(r"\A[a-z_:.\-0-9]+\Z", re.IGNORECASE)

DRAFT_07 = ("http://json-schema.org/draft-07/schema#", "http://json-schema.org/draft-07/schema")
DRAFT_04 = ("http://json-schema.org/draft-04/schema#", "http://json-schema.org/draft-04/schema")
DRAFT_06 = ("http://json-schema.org/draft-06/schema#", "http://json-schema.org/draft-06/schema")
# Dialects a shared (non-job) file may declare; job files must be 2020-12. Public
# schemas are often draft-04/06/07: for the keywords of the subset they differ only in
# draft-04's boolean exclusiveMinimum/Maximum (read as such) and "id" (an annotation).
SHARED_DIALECTS = frozenset(
    {DIALECT, *DRAFT_07, *DRAFT_06, *DRAFT_04, "https://json-schema.org/draft/2019-09/schema"}
)
MIGRATION_HINT = (
    'draft-07 job schemas are not supported: set "$schema" to '
    f'"{DIALECT}", rename "definitions" to "$defs" and write the arguments as "prefixItems" '
    "(shared files referenced by $ref may stay draft-07)"
)

# Accepted anywhere and without effect on the type: annotations, and containers that only
# matter as $ref targets.
ANNOTATIONS = frozenset(
    {
        "title",
        "description",
        "$comment",
        "examples",
        "deprecated",
        "readOnly",
        "writeOnly",
        "$id",
        "$defs",
        "definitions",
        "$schema",
        "id",  # draft-04's $id
    }
)
ROOT_KEYS = frozenset(
    {
        "$schema",
        "$id",
        "type",
        "prefixItems",
        "minItems",
        "maxItems",
        "items",
        "x-gokogeri",
        "$defs",
    }
)
X_GOKOGERI_KEYS = frozenset({"class", "queue", "retry", "activejob"})
# Formats converted to a richer Python type (the wire form stays a string).
CONVERTED_FORMATS = frozenset({"date-time", "date", "uuid"})
# In an ActiveJob job ("activejob": true), formats name Ruby value types that ActiveJob
# serializes (gokogeri.activejob.SCHEMA_FORMATS); uuid stays a string on that wire too.
ACTIVEJOB_FORMATS = frozenset(activejob_runtime.SPECS) | {"uuid"}
# Ruby value types that only exist in ActiveJob arguments.
RUBY_ONLY_FORMATS = (ACTIVEJOB_FORMATS - CONVERTED_FORMATS - {"duration"}) | {"ruby-range"}
# Names the generated ActiveJob methods use themselves (a keyword argument cannot be renamed).
ACTIVEJOB_RESERVED = frozenset({"self", "ctx", "envelope", "count", "exc"})
# OpenAPI's numeric formats: annotations on integers and numbers (JSON Schema's
# format only ever constrains strings).
NUMBER_FORMATS = frozenset({"int32", "int64", "float", "double"})
PRIMITIVES = frozenset({"integer", "number", "string", "boolean"})

# Keywords that apply to each JSON type (besides type/enum/const/annotations/default).
_NUMBER_KEYS = frozenset(
    {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "format"}
)
TYPE_KEYWORDS: dict[str, frozenset[str]] = {
    "integer": _NUMBER_KEYS,
    "number": _NUMBER_KEYS,
    "string": frozenset({"minLength", "maxLength", "pattern", "format"}),
    "boolean": frozenset(),
    "null": frozenset(),
    "array": frozenset({"items", "minItems", "maxItems", "uniqueItems", "additionalItems"}),
    "object": frozenset({"properties", "required", "additionalProperties", "minProperties"}),
}
VALUE_KEYWORDS = frozenset().union(*TYPE_KEYWORDS.values()) | {
    "type",
    "enum",
    "const",
    "$ref",
    "default",
}

# Why well-known keywords outside the subset are refused; anything else gets a generic reason.
UNSUPPORTED: dict[str, str] = {
    "if": "conditional schemas (if/then/else) have no Python type",
    "then": "conditional schemas (if/then/else) have no Python type",
    "else": "conditional schemas (if/then/else) have no Python type",
    "dependentRequired": "dependentRequired has no Python type",
    "dependentSchemas": "dependentSchemas has no Python type",
    "dependencies": "dependencies (draft-07) has no Python type",
    "patternProperties": "patternProperties is not supported; use additionalProperties with a schema for a map",
    "propertyNames": "propertyNames is not supported",
    "oneOf": 'oneOf is not supported (only unions of primitive types: type ["integer", "string"], and nullable: type [T, "null"])',
    "anyOf": 'anyOf is not supported (only unions of primitive types: type ["integer", "string"], and nullable: type [T, "null"])',
    "allOf": "allOf is not supported; write the object out in $defs",
    "not": "not has no Python type",
    "prefixItems": "tuple arrays (prefixItems) are only supported at the top level, for the job's arguments",
    "contains": "contains is not supported",
    "minContains": "minContains is not supported",
    "maxContains": "maxContains is not supported",
    "unevaluatedItems": "unevaluatedItems is not supported",
    "unevaluatedProperties": "unevaluatedProperties is not supported; use additionalProperties: false",
    "maxProperties": "maxProperties is not supported",
    "$dynamicRef": "$dynamicRef is not supported; use a local $ref to #/$defs/...",
    "$dynamicAnchor": "$dynamicAnchor is not supported",
    "$anchor": "$anchor is not supported; use a local $ref to #/$defs/...",
    "$vocabulary": "$vocabulary is not supported",
    "contentEncoding": "contentEncoding is not supported",
    "contentMediaType": "contentMediaType is not supported",
    "contentSchema": "contentSchema is not supported",
}


# Every JSON Schema keyword the compiler knows of (supported or refused with a reason).
_KEYWORDS = VALUE_KEYWORDS | ANNOTATIONS | frozenset(UNSUPPORTED) | {"$ref", "$schema"}


class _Fail(Exception):
    """One problem; ``file`` is filled in by the code that knows which file was being read."""

    def __init__(self, ptr: str, reason: str, file: str | None = None) -> None:
        self.ptr = ptr
        self.reason = reason
        self.file = file


def _fail(ptr: str, reason: str) -> NoReturn:
    raise _Fail(ptr, reason)


def _reject_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def _is_int(v: Any) -> bool:
    return type(v) is int


def _is_number(v: Any) -> bool:
    return type(v) is int or type(v) is float


def _unescape(part: str) -> str:
    return part.replace("~1", "/").replace("~0", "~")


class Documents:
    """Schema files parsed once per run, by resolved path; a bad file is one Problem."""

    def __init__(self) -> None:
        self._docs: dict[Path, Any] = {}
        self._errors: dict[Path, _Fail] = {}

    def get(self, path: Path) -> Any:
        key = path.resolve()
        if key in self._errors:
            raise self._errors[key]
        if key not in self._docs:
            try:
                self._docs[key] = self._read(path)
            except _Fail as e:
                e.file = str(path)
                self._errors[key] = e
                raise
        return self._docs[key]

    @staticmethod
    def _read(path: Path) -> Any:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            _fail("", f"cannot read: {e.strerror or e}")
        except UnicodeDecodeError as e:
            _fail("", f"not UTF-8: {e}")
        try:
            return json.loads(text, object_pairs_hook=_reject_pairs)
        except json.JSONDecodeError as e:
            _fail("", f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg}")
        except ValueError as e:
            _fail("", f"invalid JSON: {e}")


def is_job_document(doc: Any) -> bool:
    """Job schemas carry x-gokogeri (or at least describe an args array); others are shared files."""
    return isinstance(doc, dict) and (
        "x-gokogeri" in doc or (doc.get("type") == "array" and "prefixItems" in doc)
    )


def _rel(path: Path, base: Path) -> str:
    """``path`` as seen from ``base`` (posix, no absolute parts: output must not depend on checkouts)."""
    return Path(os.path.relpath(path, base)).as_posix()


@dataclass
class _Job:
    """Per-file state while building one JobDef."""

    path: Path  # the job file, as given
    doc: dict[str, Any]
    docs: Documents
    file: Path = field(init=False)  # the file whose schema is being read now
    problems: list[Problem] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)  # def key -> Python name
    labels: dict[str, str] = field(default_factory=dict)  # def key -> where, for messages
    built: dict[str, NamedDef] = field(default_factory=dict)
    failed: dict[str, _Fail] = field(default_factory=dict)
    order: list[NamedDef] = field(default_factory=list)
    specs: dict[str, runtime.Spec] = field(default_factory=dict)
    building: list[str] = field(default_factory=list)
    taken: set[str] = field(default_factory=set)
    checked_files: set[Path] = field(default_factory=set)
    activejob: bool = False  # "x-gokogeri": {"activejob": true}: formats name Ruby types

    def __post_init__(self) -> None:
        self.file = self.path

    # --- problems ---

    def record(self, e: _Fail) -> None:
        if isinstance(e, _Abort):
            return
        p = Problem(e.file if e.file is not None else str(self.file), e.ptr, e.reason)
        if p not in self.problems:
            self.problems.append(p)

    def collect(self, fn: Callable[[], _T]) -> _T | None:
        """Run one independent check; a problem is recorded and the build goes on."""
        try:
            return fn()
        except _Fail as e:
            self.record(e)
            return None

    # --- keywords ---

    def check_keys(self, schema: dict[str, Any], ptr: str, allowed: frozenset[str]) -> None:
        vocabulary = self.file != self.path and self.extension(self.docs.get(self.file))
        for key in schema:
            if key in allowed or key in ANNOTATIONS or key.startswith("x-"):
                continue
            if vocabulary and key not in _KEYWORDS:
                continue  # the extension vocabulary's own keyword: an annotation here
            reason = UNSUPPORTED.get(key, f"keyword {key!r} is not supported here")
            _fail(pointer_join(ptr, key), reason)

    # --- types ---

    def node(self, schema: Any, ptr: str, hint: str) -> TypeNode:
        if isinstance(schema, bool):
            _fail(
                ptr,
                f"the boolean schema {str(schema).lower()} is not supported: describe the value with a type",
            )
        if not isinstance(schema, dict):
            _fail(ptr, "a schema must be an object")
        self.check_keys(schema, ptr, VALUE_KEYWORDS)
        if schema.get("uniqueItems", False) is not False:
            _fail(
                pointer_join(ptr, "uniqueItems"),
                "uniqueItems: true is not supported (uniqueItems: false is)",
            )
        if schema.get("minProperties", 0) != 0:
            _fail(pointer_join(ptr, "minProperties"), "minProperties is not supported")
        if "$ref" in schema:
            return self.ref(schema, ptr)
        if "const" in schema or "enum" in schema:
            return self.literal(schema, ptr)
        types = schema.get("type")
        if types is None and "properties" in schema:
            types = "object"  # properties without a type: an object is what is meant
        if types is None:
            _fail(
                ptr,
                "a schema needs a type (or enum, const or $ref); without one the value would be Any",
            )
        if isinstance(types, str):
            types = [types]
        non_null = [t for t in types if t != "null"]
        nullable = len(non_null) < len(types)
        if "integer" in non_null and "number" in non_null:
            non_null.remove("integer")  # every integer is a number
        if len(non_null) > 1:
            if not set(non_null) <= PRIMITIVES:
                _fail(
                    pointer_join(ptr, "type"),
                    f'a union of types {types} is not supported (only unions of integer, number, string and boolean, and [T, "null"])',
                )
            options = tuple(self.base(t, schema, ptr, hint, union=non_null) for t in non_null)
            t: TypeNode = UnionType(options)
            return NullableType(t) if nullable else t
        if not non_null:
            self.check_keys(schema, ptr, frozenset({"type", "default"}))
            return NullType()
        if non_null[0] == "object" and ("properties" in schema or "required" in schema):
            return self.inline_object(schema, ptr, hint)
        base = self.base(non_null[0], schema, ptr, hint)
        return NullableType(base) if nullable else base

    def base(
        self,
        jtype: str,
        schema: dict[str, Any],
        ptr: str,
        hint: str,
        union: list[str] | None = None,
    ) -> TypeNode:
        self.check_type_keys(jtype, schema, ptr, union)
        if jtype in ("integer", "number"):
            bounds: dict[str, Any] = {}
            for key, attr in (
                ("minimum", "minimum"),
                ("maximum", "maximum"),
                ("exclusiveMinimum", "exclusive_minimum"),
                ("exclusiveMaximum", "exclusive_maximum"),
                ("multipleOf", "multiple_of"),
            ):
                if key in schema:
                    if isinstance(schema[key], bool):
                        if not self.draft04():
                            _fail(
                                pointer_join(ptr, key),
                                f"a boolean {key} is draft-04 syntax: write the bound itself ({key}: <number>)",
                            )
                        continue
                    bounds[attr] = schema[key]
            # draft-04: "exclusiveMinimum": true makes "minimum" exclusive.
            for flag, inclusive, exclusive in (
                ("exclusiveMinimum", "minimum", "exclusive_minimum"),
                ("exclusiveMaximum", "maximum", "exclusive_maximum"),
            ):
                if schema.get(flag) is True and inclusive in bounds:
                    bounds[exclusive] = bounds.pop(inclusive)
            fmt = schema.get("format")
            if fmt is not None and union is None and fmt not in NUMBER_FORMATS:
                _fail(
                    pointer_join(ptr, "format"),
                    f"unknown format {fmt!r} for a number (int32, int64, float and double are accepted as annotations)",
                )
            return IntType(**bounds) if jtype == "integer" else FloatType(**bounds)
        if jtype == "string":
            fmt = schema.get("format")
            if fmt is not None and fmt in NUMBER_FORMATS and union is not None:
                fmt = None
            if fmt == "ruby-range":
                _fail(
                    pointer_join(ptr, "format"),
                    "format 'ruby-range' is not supported in contracts: a Range's bounds have no "
                    "JSON Schema type to check them with",
                )
            if fmt in RUBY_ONLY_FORMATS and not self.activejob:
                _fail(
                    pointer_join(ptr, "format"),
                    f"format {fmt!r} names a Ruby value that only ActiveJob arguments carry: "
                    'set "x-gokogeri": {"activejob": true} on the job',
                )
            converted = ACTIVEJOB_FORMATS if self.activejob else CONVERTED_FORMATS
            if fmt is not None and union is None and fmt in converted:
                for key in ("minLength", "maxLength", "pattern"):
                    if key in schema:
                        _fail(
                            pointer_join(ptr, key), f"{key} cannot be combined with format {fmt!r}"
                        )
                return FormatType(fmt)
            if fmt is not None and fmt not in runtime.FORMATS:
                supported = ", ".join(sorted(converted | set(runtime.FORMATS)))
                _fail(
                    pointer_join(ptr, "format"),
                    f"unknown format {fmt!r} (supported: {supported})",
                )
            pattern = schema.get("pattern")
            if pattern is not None:
                try:
                    ecma.translate(pattern)
                except ecma.EcmaError as e:
                    _fail(
                        pointer_join(ptr, "pattern"),
                        f"pattern {pattern!r} cannot be used: {e}",
                    )
            return StrType(schema.get("minLength"), schema.get("maxLength"), pattern, fmt)
        if jtype == "boolean":
            return BoolType()
        if jtype == "array":
            if "items" not in schema:
                _fail(ptr, "an array needs an items schema; without one its items would be Any")
            if isinstance(schema["items"], list):
                _fail(
                    pointer_join(ptr, "items"),
                    "items as a list is draft-07 tuple syntax; tuple arrays are not supported below the top level",
                )
            item = self.node(schema["items"], pointer_join(ptr, "items"), hint + "Item")
            return ArrayType(item, schema.get("minItems"), schema.get("maxItems"))
        # object without properties: a map
        extra = schema.get("additionalProperties")
        if extra is None or extra is True:
            _fail(
                ptr,
                "an object needs properties, or additionalProperties: <schema> for a map; otherwise its values would be Any",
            )
        if extra is False:
            _fail(
                pointer_join(ptr, "additionalProperties"),
                "an object without properties and with additionalProperties: false can only be {}",
            )
        return MapType(self.node(extra, pointer_join(ptr, "additionalProperties"), hint + "Value"))

    def draft04(self) -> bool:
        doc = self.docs.get(self.file)
        return isinstance(doc, dict) and doc.get("$schema") in DRAFT_04

    def check_type_keys(
        self, jtype: str, schema: dict[str, Any], ptr: str, union: list[str] | None = None
    ) -> None:
        allowed = TYPE_KEYWORDS[jtype]
        if union is not None:
            allowed = frozenset().union(*(TYPE_KEYWORDS[t] for t in union))
        for key in schema:
            if key in VALUE_KEYWORDS and key not in allowed and key not in ("type", "default"):
                _fail(pointer_join(ptr, key), f"keyword {key!r} does not apply to type {jtype!r}")

    def literal(self, schema: dict[str, Any], ptr: str) -> TypeNode:
        if "const" in schema and "enum" in schema:
            _fail(ptr, "use either const or enum, not both")
        key = "const" if "const" in schema else "enum"
        values = [schema["const"]] if key == "const" else schema["enum"]
        for other in schema:
            if other in VALUE_KEYWORDS and other not in (key, "type", "default"):
                _fail(pointer_join(ptr, other), f"keyword {other!r} cannot be combined with {key}")
        types = schema.get("type")
        if isinstance(types, str):
            types = [types]
        seen: list[Any] = []
        for i, v in enumerate(values):
            vptr = pointer_join(ptr, key, i) if key == "enum" else pointer_join(ptr, key)
            if not (v is None or isinstance(v, (str, bool)) or _is_int(v)):
                _fail(
                    vptr,
                    f"{key} values must be strings, integers, booleans or null (Literal cannot hold {json.dumps(v)})",
                )
            if (
                types is not None
                and _json_type(v) not in types
                and not (_json_type(v) == "integer" and "number" in types)
            ):
                _fail(vptr, f"{key} value {json.dumps(v)} does not match type {types}")
            if any(v == s and type(v) is type(s) for s in seen):
                _fail(vptr, f"duplicate {key} value {json.dumps(v)}")
            seen.append(v)
        non_null = tuple(v for v in values if v is not None)
        if not non_null:
            return NullType()
        lit = LiteralType(non_null)
        return NullableType(lit) if len(non_null) < len(values) else lit

    # --- references ---

    def ref(self, schema: dict[str, Any], ptr: str) -> TypeNode:
        for key in schema:
            if key in VALUE_KEYWORDS and key not in ("$ref", "default"):
                _fail(
                    pointer_join(ptr, key),
                    f"keyword {key!r} next to $ref is not supported; put it in the $ref's target",
                )
        target = schema["$ref"]
        rptr = pointer_join(ptr, "$ref")
        if not isinstance(target, str):
            _fail(rptr, "$ref must be a string")
        file_part, _, fragment = target.partition("#")
        if re.match(r"\A[A-Za-z][A-Za-z0-9+.\-]*:", file_part):
            _fail(
                rptr,
                f"unresolvable $ref {target!r}: only local references (#/$defs/Name) and relative file references (money.json, common.json#/$defs/Money) are supported",
            )
        if fragment and not fragment.startswith("/"):
            _fail(
                rptr,
                f"unresolvable $ref {target!r}: anchors are not supported; use a JSON pointer (#/$defs/Name)",
            )
        fragment = urllib.parse.unquote(fragment)
        if file_part:
            path = Path(os.path.normpath(self.file.parent / urllib.parse.unquote(file_part)))
            try:
                doc = self.docs.get(path)
            except _Fail as e:
                _fail(rptr, f"unresolvable $ref {target!r}: {path}: {e.reason}")
            self.check_shared(path, doc)
        else:
            path = self.file
            doc = self.docs.get(path)
        node = doc
        for part in fragment.split("/")[1:] if fragment else []:
            part = _unescape(part)
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                where = "" if not file_part else f" in {file_part}"
                if fragment.startswith("/$defs/") and fragment.count("/") == 2 and not file_part:
                    entry = _unescape(fragment[len("/$defs/") :])
                    _fail(rptr, f"unresolvable $ref {target!r}: there is no $defs entry {entry!r}")
                _fail(rptr, f"unresolvable $ref {target!r}: nothing at {fragment}{where}")
        key = self.def_key(path, fragment)
        nd = self.build_def(key, path, fragment, node)
        ref = DefRef(nd.name)
        # A nullable object def (type ["object", "null"]) is the TypedDict or None.
        return NullableType(ref) if nd.nullable else ref

    def check_shared(self, path: Path, doc: Any) -> None:
        """A referenced file: any dialect we know, and valid against its meta-schema."""
        if path.resolve() in self.checked_files:
            return
        self.checked_files.add(path.resolve())
        if not isinstance(doc, dict):
            raise _Fail("", "a schema file must be a JSON object", str(path))
        dialect = doc.get("$schema", DIALECT)
        if dialect not in SHARED_DIALECTS and not self.extension(doc):
            raise _Fail(
                pointer("$schema"),
                f"unknown $schema {dialect!r} (JSON Schema 2020-12, 2019-09, draft-07, -06 or -04)",
                str(path),
            )
        err = _meta_error(doc) if dialect in SHARED_DIALECTS else None
        if err is not None:
            raise _Fail(err[0], f"not a valid JSON Schema document: {err[1]}", str(path))

    @staticmethod
    def extension(doc: dict[str, Any]) -> bool:
        """A shared file whose $schema is a vocabulary built on draft-07 (not json-schema.org's).

        Such meta-schemas (CloudFormation's resource provider schema, for one)
        add their own keywords (typeName, primaryIdentifier, insertionOrder...).
        The subset's keywords mean what draft-07 says; keys that are no JSON
        Schema keyword are read as that vocabulary's annotations.
        """
        dialect = doc.get("$schema")
        return isinstance(dialect, str) and "json-schema.org" not in dialect

    def def_key(self, path: Path, fragment: str) -> str:
        return f"{path.resolve()}#{fragment}"

    # --- named definitions ---

    def name_for(self, key: str, path: Path, fragment: str) -> str:
        if key not in self.names:
            parts = [_unescape(p) for p in fragment.split("/")[1:]]
            stem = parts[-1] if parts else path.stem.removesuffix(".schema")
            name = naming.safe(naming.pascal(stem) or "Def", self.taken)
            self.names[key] = name
            self.taken.add(name)
            where = fragment.lstrip("/")
            self.labels[key] = (
                where
                if path == self.path
                else f"{_rel(path, self.path.parent)}{'#' + fragment if fragment else ''}"
            )
        return self.names[key]

    def build_def(self, key: str, path: Path, fragment: str, schema: Any) -> NamedDef:
        if key in self.built:
            return self.built[key]
        if key in self.failed:
            raise self.failed[key]
        name = self.name_for(key, path, fragment)
        ptr = fragment
        if key in self.building:
            cycle = " -> ".join(
                self.labels[k].rsplit("/", 1)[-1]
                for k in [*self.building[self.building.index(key) :], key]
            )
            raise _Fail(ptr, f"recursive $ref is not supported ({cycle})", str(path))
        self.building.append(key)
        outer = self.file
        self.file = path
        try:
            nd = self._make_def(name, key, schema, ptr)
        except _Fail as e:
            if e.file is None:
                e.file = str(path)
            self.failed[key] = e
            raise
        finally:
            self.file = outer
            self.building.pop()
        self.built[key] = nd
        self.order.append(nd)
        self.specs[name] = self.spec_of_def(nd)
        return nd

    def _make_def(self, name: str, key: str, schema: Any, ptr: str) -> NamedDef:
        description = schema.get("description") if isinstance(schema, dict) else None
        if isinstance(schema, dict) and "default" in schema:
            _fail(
                pointer_join(ptr, "default"),
                "a default on a shared definition is not supported; put it on the property or argument that uses it",
            )
        if isinstance(schema, dict) and _is_object_with_props(schema):
            props, open_ = self.object_props(schema, ptr, name)
            nullable = isinstance(schema.get("type"), list) and "null" in schema["type"]
            label = self.labels[key]
            return NamedDef(name, label, props, None, description, nullable, open_, label)
        alias = self.node(schema, ptr, name)
        return NamedDef(name, self.labels[key], None, alias, description, source=self.labels[key])

    def inline_object(self, schema: dict[str, Any], ptr: str, hint: str) -> TypeNode:
        """An object written in place becomes a TypedDict named after where it is used."""
        key = self.def_key(self.file, ptr)
        if key not in self.names:
            name = naming.safe(naming.pascal(hint) or "Object", self.taken)
            self.names[key] = name
            self.taken.add(name)
            self.labels[key] = (
                ptr.lstrip("/")
                if self.file == self.path
                else (f"{_rel(self.file, self.path.parent)}#{ptr}")
            )
        if key in self.built:
            nd = self.built[key]
        else:
            name = self.names[key]
            props, open_ = self.object_props(schema, ptr, name)
            nullable = isinstance(schema.get("type"), list) and "null" in schema["type"]
            nd = NamedDef(
                name,
                self.labels[key],
                props,
                None,
                schema.get("description"),
                nullable,
                open_,
                self.labels[key],
            )
            self.built[key] = nd
            self.order.append(nd)
            self.specs[name] = self.spec_of_def(nd)
        ref = DefRef(nd.name)
        return NullableType(ref) if nd.nullable else ref

    def object_props(
        self, schema: dict[str, Any], ptr: str, name: str
    ) -> tuple[tuple[Property, ...], bool]:
        self.check_keys(
            schema,
            ptr,
            frozenset({"type", "properties", "required", "additionalProperties", "minProperties"}),
        )
        if schema.get("minProperties", 0) != 0:
            _fail(pointer_join(ptr, "minProperties"), "minProperties is not supported")
        if schema.get("type", "object") not in ("object", ["object", "null"], ["null", "object"]):
            _fail(
                pointer_join(ptr, "type"),
                'an object with properties needs type "object" (or ["object", "null"])',
            )
        if "properties" not in schema:
            _fail(ptr, "an object with required needs properties")
        extra = schema.get("additionalProperties", True)
        if extra is not False and extra is not True:
            _fail(
                pointer_join(ptr, "additionalProperties"),
                "properties together with an additionalProperties schema is not supported: use additionalProperties: false, or a map without properties",
            )
        props_src: dict[str, Any] = schema["properties"]
        required: list[str] = schema.get("required", [])
        for i, key in enumerate(required):
            if key not in props_src:
                self.record(
                    _Fail(
                        pointer_join(ptr, "required", i),
                        f"required names {key!r}, which is not in properties",
                    )
                )
        props = []
        for key, sub in props_src.items():
            prop = self.collect(partial(self.prop, ptr, name, key, sub, key in required))
            if prop is not None:
                props.append(prop)
        return tuple(props), extra is True

    def prop(self, ptr: str, parent: str, key: str, sub: Any, required: bool) -> Property:
        pptr = pointer_join(ptr, "properties", key)
        t = self.node(sub, pptr, parent + naming.pascal(key))
        desc = sub.get("description") if isinstance(sub, dict) else None
        if isinstance(sub, dict) and "default" in sub:
            if required:
                _fail(
                    pointer_join(pptr, "default"),
                    f"property {key!r} is required, so its default would never be used",
                )
            value = sub["default"]
            try:
                self.spec(t).decode(json.loads(json.dumps(value)), "")
            except runtime._Invalid as e:
                _fail(
                    pointer_join(pptr, "default"),
                    f"the default {json.dumps(value)} does not match the property's schema: {e.rule}",
                )
            return Property(key, t, required, desc, True, value)
        return Property(key, t, required, desc)

    def spec_of_def(self, nd: NamedDef) -> runtime.Spec:
        if nd.properties is not None:
            return runtime.Object(
                nd.name,
                tuple(
                    runtime.Prop(p.key, self.spec(p.type), p.required, p.default)
                    if p.has_default
                    else runtime.Prop(p.key, self.spec(p.type), p.required)
                    for p in nd.properties
                ),
                nd.open,
            )
        assert nd.alias is not None
        return self.spec(nd.alias)

    def spec(self, t: TypeNode) -> runtime.Spec:
        """The runtime checker for ``t``; used here to validate defaults exactly as workers will."""
        return build_spec(t, self.specs, self.activejob)


_T = TypeVar("_T")


def _is_object_with_props(schema: dict[str, Any]) -> bool:
    types = schema.get("type")
    is_obj = types is None or types == "object" or (isinstance(types, list) and "object" in types)
    return is_obj and ("properties" in schema or "required" in schema) and "$ref" not in schema


class _NoJsonDefault(runtime.Spec):
    """An ActiveJob format: its values are Ruby objects, which a JSON default cannot spell."""

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt

    def encode(self, value: Any, path: str) -> Any:
        raise runtime._Invalid(
            path, f"a {self.fmt} value (a Ruby object in ActiveJob) cannot have a JSON default"
        )

    decode = encode


def build_spec(t: TypeNode, defs: dict[str, runtime.Spec], activejob: bool = False) -> runtime.Spec:
    if isinstance(t, IntType):
        return runtime.Int(
            t.minimum, t.maximum, t.exclusive_minimum, t.exclusive_maximum, t.multiple_of
        )
    if isinstance(t, FloatType):
        return runtime.Float(
            t.minimum, t.maximum, t.exclusive_minimum, t.exclusive_maximum, t.multiple_of
        )
    if isinstance(t, StrType):
        py = ecma.translate(t.pattern).python if t.pattern is not None else None
        return runtime.Str(t.min_length, t.max_length, py, t.pattern, t.format)
    if isinstance(t, BoolType):
        return runtime.Bool()
    if isinstance(t, NullType):
        return runtime.Null()
    if isinstance(t, FormatType):
        if t.format == "uuid":
            return runtime.Uuid()
        if activejob or t.format not in CONVERTED_FORMATS:
            return _NoJsonDefault(t.format)
        return {"date-time": runtime.DateTime, "date": runtime.Date}[t.format]()
    if isinstance(t, LiteralType):
        return runtime.Const(t.values)
    if isinstance(t, NullableType):
        return runtime.Nullable(build_spec(t.inner, defs, activejob))
    if isinstance(t, UnionType):
        return runtime.Union(
            tuple((json_kind(o), build_spec(o, defs, activejob)) for o in t.options)
        )
    if isinstance(t, ArrayType):
        return runtime.Array(build_spec(t.item, defs, activejob), t.min_items, t.max_items)
    if isinstance(t, MapType):
        return runtime.Map(build_spec(t.value, defs, activejob))
    return defs[t.name]


def json_kind(t: TypeNode) -> str:
    """The JSON type of a union member."""
    if isinstance(t, IntType):
        return "integer"
    if isinstance(t, FloatType):
        return "number"
    if isinstance(t, BoolType):
        return "boolean"
    return "string"


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    return "array" if isinstance(v, list) else "object"


def pointer_join(base: str, *parts: str | int) -> str:
    return base + pointer(*parts)


def _find_def(name: str, defs: dict[str, NamedDef]) -> NamedDef:
    return next(d for d in defs.values() if d.name == name)


def _nullable(t: TypeNode, defs: dict[str, NamedDef]) -> bool:
    if isinstance(t, (NullableType, NullType)):
        return True
    if isinstance(t, DefRef):
        nd = _find_def(t.name, defs)
        return nd.alias is not None and _nullable(nd.alias, defs)
    return False


def _has_format(t: TypeNode, defs: dict[str, NamedDef]) -> bool:
    if isinstance(t, FormatType):
        return True
    if isinstance(t, NullableType):
        return _has_format(t.inner, defs)
    if isinstance(t, DefRef):
        nd = _find_def(t.name, defs)
        return nd.alias is not None and _has_format(nd.alias, defs)
    return False


def load_file(path: Path, docs: Documents | None = None) -> JobDef:
    """Read, check and model one job schema file; raises SchemaError with every problem in it."""
    docs = docs if docs is not None else Documents()
    try:
        doc = docs.get(path)
    except _Fail as e:
        raise SchemaError([Problem(str(path), e.ptr, e.reason)]) from None
    return build_job(doc, path, docs)


def build_job(doc: Any, path: Path, docs: Documents) -> JobDef:
    """Check one parsed job schema and build its JobDef; raises SchemaError."""
    if not isinstance(doc, dict):
        raise SchemaError([Problem(str(path), "", "a job schema must be a JSON object")])
    job = _Job(path, doc, docs)
    result = job.collect(lambda: _build(job, doc, path))
    if job.problems or result is None:
        raise SchemaError(job.problems)
    return result


def _build(job: _Job, doc: dict[str, Any], path: Path) -> JobDef:
    source = path.name
    if doc.get("$schema") in DRAFT_07:
        _fail(pointer("$schema") if "$schema" in doc else "", MIGRATION_HINT)
    if doc.get("$schema") != DIALECT:
        _fail(pointer("$schema"), f"$schema must be {DIALECT!r} (JSON Schema 2020-12)")
    err = _meta_error(doc)
    if err is not None:
        _fail(err[0], f"not a valid JSON Schema 2020-12 document: {err[1]}")
    job.docs.get(path)  # cached: refs to "#/..." read the same document

    job.collect(lambda: job.check_keys(doc, "", ROOT_KEYS | {"definitions"}))
    # Read before anything is built: the flag decides what formats mean everywhere.
    opts_doc = doc.get("x-gokogeri")
    job.activejob = isinstance(opts_doc, dict) and opts_doc.get("activejob") is True
    if doc.get("type") != "array":
        _fail(pointer("type"), 'a job schema describes the args array: type must be "array"')
    if doc.get("items") is not False:
        job.collect(
            lambda: _fail(
                pointer("items") if "items" in doc else "",
                "a job schema needs items: false (no arguments beyond prefixItems)",
            )
        )
    prefix = doc.get("prefixItems", [])
    if "minItems" not in doc and prefix:
        _fail("", "a job schema needs minItems: how many of the prefixItems arguments are required")
    min_items = doc.get("minItems", 0)
    if min_items > len(prefix):
        _fail(
            pointer("minItems"),
            f"minItems is {min_items} but there are only {len(prefix)} prefixItems",
        )
    if "maxItems" in doc and doc["maxItems"] != len(prefix):
        job.collect(
            lambda: _fail(
                pointer("maxItems"),
                f"maxItems must equal the number of prefixItems ({len(prefix)}) or be left out",
            )
        )
    opts = job.collect(lambda: _options(doc))

    class_name = opts[0] if opts else "Job"
    base = naming.api_name(class_name)
    api = naming.safe(base)
    if not base:
        _fail(
            pointer("x-gokogeri", "class"), f"cannot derive a Python class name from {class_name!r}"
        )
    worker = naming.safe(base + "Worker")
    async_worker = naming.safe(base + "AsyncWorker")
    args_name = naming.safe(base + "Args")
    job.taken |= {api, worker, async_worker, args_name}
    if job.activejob:
        job.taken |= {"Decimal", "timedelta"}  # what ActiveJob modules import besides
    module = naming.module_name(path.stem)
    if not module:
        _fail("", f"cannot derive a Python module name from the file name {source!r}")

    # Names for every local def up front (sorted: stable names whatever the use order).
    local_defs = doc.get("$defs", {})
    for key in sorted(local_defs):
        job.name_for(job.def_key(path, pointer("$defs", key)), path, pointer("$defs", key))
    for key in sorted(local_defs):
        fragment = pointer("$defs", key)
        job.collect(
            partial(job.build_def, job.def_key(path, fragment), path, fragment, local_defs[key])
        )

    params: list[Param] = []
    names: dict[str, int] = {}
    for i, entry in enumerate(prefix):
        param = job.collect(partial(_param, job, i, entry, min_items, names))
        if param is not None:
            params.append(param)
    keywords = job.activejob and any(_is_keywords(e) for e in prefix)
    if keywords:
        job.collect(partial(_check_keywords, job, prefix, params))

    if opts is None or job.problems:
        raise _Abort()
    return JobDef(
        source=source,
        module=module,
        class_name=class_name,
        queue=opts[1],
        retry=opts[2],
        api_name=api,
        worker_name=worker,
        args_name=args_name,
        params=tuple(params),
        min_items=min_items,
        defs=tuple(job.order),
        title=doc.get("title"),
        description=doc.get("description"),
        async_worker_name=async_worker,
        activejob=job.activejob,
        keywords=keywords,
    )


def _is_keywords(entry: Any) -> bool:
    marker = entry.get("x-gokogeri") if isinstance(entry, dict) else None
    return isinstance(marker, dict) and marker.get("keywords") is True


def _check_keywords(job: _Job, prefix: list[Any], params: list[Param]) -> None:
    """The trailing keywords object of an ActiveJob job: its properties are perform's keyword
    arguments, so they must be names both Python and Ruby can take as they are. It is always
    checked (an empty hash when Ruby passes no keywords): minItems counts the positional
    arguments before it, as Ruby's ``def perform(a, b = 1, c:)`` allows."""
    i = len(prefix) - 1
    ptr = pointer("prefixItems", i)
    for j, entry in enumerate(prefix[:-1]):
        if _is_keywords(entry):
            _fail(
                pointer("prefixItems", j, "x-gokogeri", "keywords"),
                "only the last argument can hold the keyword arguments (Ruby passes them after "
                "the positional ones)",
            )
    if len(params) != len(prefix):
        raise _Abort()  # the argument itself was refused: already recorded
    t = params[-1].type
    nd = _find_def(t.name, job.built) if isinstance(t, DefRef) else None
    if nd is None or nd.properties is None:
        _fail(
            ptr,
            "the keywords argument must be an object with properties (one per keyword "
            "argument), not nullable",
        )
    if nd.open:
        _fail(
            ptr,
            "the keywords argument needs additionalProperties: false: an unknown keyword "
            "is an ArgumentError in Ruby's perform",
        )
    positional = {p.name for p in params[:-1]}
    for prop in nd.properties:
        kptr = pointer_join(ptr, "properties", prop.key)
        if not prop.key.isidentifier() or keyword.iskeyword(prop.key):
            _fail(
                kptr,
                f"keyword argument {prop.key!r} is not a Python identifier (it is passed by "
                "name, so it cannot be renamed)",
            )
        if prop.key in ACTIVEJOB_RESERVED or prop.key in positional:
            _fail(
                kptr,
                f"keyword argument {prop.key!r} clashes with a parameter of the generated "
                f"methods ({', '.join(sorted(ACTIVEJOB_RESERVED | positional))})",
            )
        if prop.has_default and isinstance(prop.default, (list, dict)):
            _fail(
                pointer_join(kptr, "default"),
                "a keyword argument's default must be a scalar: a list or object default "
                "would be shared mutable state",
            )


class _Abort(_Fail):
    """Problems were already recorded; stop building."""

    def __init__(self) -> None:
        super().__init__("", "")


def _options(doc: dict[str, Any]) -> tuple[str, str, bool | int, bool]:
    opts = doc.get("x-gokogeri")
    if not isinstance(opts, dict):
        _fail(
            pointer("x-gokogeri") if "x-gokogeri" in doc else "",
            'a job schema needs "x-gokogeri": {"class": ..., "queue": ..., "retry": ...}',
        )
    for key in opts:
        if key not in X_GOKOGERI_KEYS:
            _fail(
                pointer("x-gokogeri", key),
                f"unknown x-gokogeri option {key!r} (supported: class, queue, retry, activejob)",
            )
    activejob = opts.get("activejob", False)
    if not isinstance(activejob, bool):
        _fail(
            pointer("x-gokogeri", "activejob"),
            f"x-gokogeri.activejob must be true or false, got {json.dumps(activejob)}",
        )
    if activejob and "retry" in opts:
        _fail(
            pointer("x-gokogeri", "retry"),
            "an ActiveJob job takes no retry option: Rails decides (retry_on, or the Sidekiq "
            "options of the adapter); ActiveJobClient(sidekiq_options=...) sets it from Python",
        )
    class_name = opts.get("class")
    if not isinstance(class_name, str) or not class_name.strip():
        _fail(
            pointer("x-gokogeri", "class"),
            "x-gokogeri.class must be the job's class name (a non-empty string)",
        )
    queue = opts.get("queue", "default")
    if not isinstance(queue, str) or not QUEUE_NAME.match(queue):
        _fail(
            pointer("x-gokogeri", "queue"),
            f"x-gokogeri.queue {queue!r} is not a valid queue name (letters, digits and _ : . -)",
        )
    retry = opts.get("retry", True)
    if not (isinstance(retry, bool) or (_is_int(retry) and retry >= 0)):
        _fail(
            pointer("x-gokogeri", "retry"),
            f"x-gokogeri.retry must be true, false or an integer >= 0, got {json.dumps(retry)}",
        )
    return class_name, queue, retry, activejob


def _param(job: _Job, i: int, entry: Any, min_items: int, names: dict[str, int]) -> Param:
    ptr = pointer("prefixItems", i)
    if not isinstance(entry, dict):
        _fail(ptr, "an argument schema must be an object with a title")
    title = entry.get("title")
    if not isinstance(title, str) or not naming.snake(title):
        _fail(
            pointer_join(ptr, "title") if "title" in entry else ptr,
            "every argument needs a title (it becomes the Python parameter name)",
        )
    pname = naming.param_name(title)
    if job.activejob:
        pname = naming.safe(pname, ACTIVEJOB_RESERVED)
    marker = entry.get("x-gokogeri")
    if marker is not None and (
        not isinstance(marker, dict)
        or set(marker) != {"keywords"}
        or not isinstance(marker["keywords"], bool)
    ):
        _fail(
            pointer_join(ptr, "x-gokogeri"),
            'an argument\'s x-gokogeri takes only {"keywords": true} (ActiveJob keyword arguments)',
        )
    if _is_keywords(entry) and not job.activejob:
        _fail(
            pointer_join(ptr, "x-gokogeri", "keywords"),
            'keyword arguments exist only in ActiveJob jobs: set "x-gokogeri": {"activejob": true} on the job',
        )
    if pname in names:
        _fail(
            pointer_join(ptr, "title"),
            f"argument name {pname!r} is already used by args[{names[pname]}]",
        )
    names[pname] = i
    t = job.node(entry, ptr, naming.pascal(title))
    default: Scalar = None
    if i < min_items:
        if "default" in entry:
            _fail(
                pointer_join(ptr, "default"),
                f"args[{i}] is required (index < minItems {min_items}), so its default would never be used",
            )
        kind = ParamKind.REQUIRED_NULLABLE if _nullable(t, job.built) else ParamKind.REQUIRED
    elif "default" in entry:
        kind = ParamKind.OPTIONAL_DEFAULT
        default = _check_default(job, t, entry["default"], pointer_join(ptr, "default"))
    else:
        kind = ParamKind.OPTIONAL
    return Param(i, title, pname, t, kind, default, entry.get("description"))


def _check_default(job: _Job, t: TypeNode, value: Any, ptr: str) -> Scalar:
    if not (value is None or isinstance(value, (str, int, float, bool))):
        _fail(
            ptr,
            "only scalar defaults (string, number, boolean, null) are supported on arguments; a list or object default would be shared mutable state",
        )
    if job.activejob and _has_format(t, job.built):
        _fail(
            ptr,
            "defaults are not supported for arguments with a format in ActiveJob jobs (their "
            "values are Ruby objects); leave the argument optional instead",
        )
    if _has_format(t, job.built):
        _fail(
            ptr,
            "defaults are not supported for date-time, date or uuid arguments; leave the argument optional instead",
        )
    try:
        decoded: Scalar = job.spec(t).decode(value, "")
    except runtime._Invalid as e:
        _fail(
            ptr, f"the default {json.dumps(value)} does not match the argument's schema: {e.rule}"
        )
    return decoded


def load(paths: Iterable[Path]) -> Package:
    """Load every job schema (directories are searched for *.json); raises SchemaError with every problem found.

    A .json file without x-gokogeri that does not describe an args array is a
    shared definitions file: it is read only through the $refs that use it.
    """
    files: list[Path] = []
    problems: list[Problem] = []
    for p in paths:
        if p.is_dir():
            files.extend(sorted(p.rglob("*.json")))
        elif p.is_file():
            files.append(p)
        else:
            problems.append(Problem(str(p), "", "no such file or directory"))
    docs = Documents()
    jobs: list[JobDef] = []
    where: dict[str, str] = {}
    seen_job_file = False
    for f in files:
        try:
            doc = docs.get(f)
        except _Fail as e:
            problems.append(Problem(str(f), e.ptr, e.reason))
            continue
        if not is_job_document(doc):
            continue
        seen_job_file = True
        try:
            job = build_job(doc, f, docs)
        except SchemaError as e:
            problems.extend(p for p in e.problems if p not in problems)
            continue
        for key, what, ptr in (
            (f"module:{job.module}", f"module name {job.module!r}", ""),
            (
                f"class:{job.class_name}",
                f"job class {job.class_name!r}",
                pointer("x-gokogeri", "class"),
            ),
            (
                f"api:{job.api_name}",
                f"Python name {job.api_name!r}",
                pointer("x-gokogeri", "class"),
            ),
        ):
            if key in where:
                problems.append(Problem(str(f), ptr, f"{what} is already used by {where[key]}"))
            else:
                where[key] = str(f)
        jobs.append(job)
    if not seen_job_file and not problems:
        problems.append(
            Problem(
                ", ".join(str(p) for p in paths) or ".",
                "",
                "no job schemas found (a job schema has x-gokogeri; other .json files are shared definitions)",
            )
        )
    if problems:
        raise SchemaError(problems)
    return Package(tuple(sorted(jobs, key=lambda j: j.module)))
