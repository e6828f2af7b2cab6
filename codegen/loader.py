"""Load job schemas, check them against JSON Schema 2020-12 and our subset, and build the model.

Every construct outside the declared subset is refused with the file, the JSON
pointer and the reason: a generator that quietly turns what it does not
understand into ``Any`` hands out types that lie.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import jsonschema_rs
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from . import naming, runtime
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

# Sidekiq 8's Web UI only shows queues whose names match this (as gokogeri.enqueuer).
QUEUE_NAME = re.compile(r"\A[a-z_:.\-0-9]+\Z", re.IGNORECASE)

ANNOTATIONS = frozenset({"title", "description", "$comment", "examples", "deprecated"})
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
X_GOKOGERI_KEYS = frozenset({"class", "queue", "retry"})
FORMATS: dict[str, Any] = {"date-time": "date-time", "date": "date", "uuid": "uuid"}

# Keywords that apply to each JSON type (besides type/enum/const/annotations/default).
TYPE_KEYWORDS: dict[str, frozenset[str]] = {
    "integer": frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}),
    "number": frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}),
    "string": frozenset({"minLength", "maxLength", "pattern", "format"}),
    "boolean": frozenset(),
    "null": frozenset(),
    "array": frozenset({"items", "minItems", "maxItems"}),
    "object": frozenset({"properties", "required", "additionalProperties"}),
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
    "patternProperties": "patternProperties is not supported; use additionalProperties with a schema for a map",
    "propertyNames": "propertyNames is not supported",
    "oneOf": 'oneOf is not supported (only nullable unions: type [T, "null"])',
    "anyOf": 'anyOf is not supported (only nullable unions: type [T, "null"])',
    "allOf": "allOf is not supported; write the object out in $defs",
    "not": "not has no Python type",
    "prefixItems": "tuple arrays (prefixItems) are only supported at the top level, for the job's arguments",
    "contains": "contains is not supported",
    "minContains": "minContains is not supported",
    "maxContains": "maxContains is not supported",
    "uniqueItems": "uniqueItems is not supported",
    "unevaluatedItems": "unevaluatedItems is not supported",
    "unevaluatedProperties": "unevaluatedProperties is not supported; use additionalProperties: false",
    "multipleOf": "multipleOf is not supported",
    "minProperties": "minProperties is not supported",
    "maxProperties": "maxProperties is not supported",
    "$dynamicRef": "$dynamicRef is not supported; use a local $ref to #/$defs/...",
    "$dynamicAnchor": "$dynamicAnchor is not supported",
    "$anchor": "$anchor is not supported; use a local $ref to #/$defs/...",
    "$vocabulary": "$vocabulary is not supported",
    "definitions": "use $defs (JSON Schema 2020-12), not definitions",
    "contentEncoding": "contentEncoding is not supported",
    "contentMediaType": "contentMediaType is not supported",
    "contentSchema": "contentSchema is not supported",
}


class _Fail(Exception):
    def __init__(self, ptr: str, reason: str) -> None:
        self.ptr = ptr
        self.reason = reason


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


@dataclass
class _Job:
    """Per-file state while building one JobDef."""

    doc: dict[str, Any]
    defs_src: dict[str, Any]
    def_names: dict[str, str] = field(default_factory=dict)  # $defs key -> Python name
    built: dict[str, NamedDef] = field(default_factory=dict)
    order: list[NamedDef] = field(default_factory=list)
    specs: dict[str, runtime.Spec] = field(default_factory=dict)
    building: list[str] = field(default_factory=list)

    # --- keywords ---

    def check_keys(self, schema: dict[str, Any], ptr: str, allowed: frozenset[str]) -> None:
        for key in schema:
            if key in allowed or key in ANNOTATIONS or key.startswith("x-"):
                continue
            reason = UNSUPPORTED.get(key, f"keyword {key!r} is not supported here")
            _fail(pointer_join(ptr, key), reason)

    # --- types ---

    def node(self, schema: Any, ptr: str, *, in_def: bool = False) -> TypeNode:
        if isinstance(schema, bool):
            _fail(
                ptr,
                f"the boolean schema {str(schema).lower()} is not supported: describe the value with a type",
            )
        if not isinstance(schema, dict):
            _fail(ptr, "a schema must be an object")
        self.check_keys(schema, ptr, VALUE_KEYWORDS)
        if "$ref" in schema:
            return self.ref(schema, ptr)
        if "const" in schema or "enum" in schema:
            return self.literal(schema, ptr)
        if "type" not in schema:
            _fail(
                ptr,
                "a schema needs a type (or enum, const or $ref); without one the value would be Any",
            )
        types = schema["type"]
        if isinstance(types, str):
            types = [types]
        non_null = [t for t in types if t != "null"]
        nullable = len(non_null) < len(types)
        if len(non_null) > 1:
            _fail(
                pointer_join(ptr, "type"),
                f'a union of types {types} is not supported (only [T, "null"])',
            )
        if not non_null:
            self.check_keys(schema, ptr, frozenset({"type", "default"}))
            return NullType()
        base = self.base(non_null[0], schema, ptr, in_def=in_def)
        return NullableType(base) if nullable else base

    def base(self, jtype: str, schema: dict[str, Any], ptr: str, *, in_def: bool) -> TypeNode:
        self.check_type_keys(jtype, schema, ptr)
        if jtype in ("integer", "number"):
            bounds = {}
            for key, attr in (
                ("minimum", "minimum"),
                ("maximum", "maximum"),
                ("exclusiveMinimum", "exclusive_minimum"),
                ("exclusiveMaximum", "exclusive_maximum"),
            ):
                if key in schema:
                    bounds[attr] = schema[key]
            return IntType(**bounds) if jtype == "integer" else FloatType(**bounds)
        if jtype == "string":
            if "format" in schema:
                fmt = schema["format"]
                if fmt not in FORMATS:
                    _fail(
                        pointer_join(ptr, "format"),
                        f"unknown format {fmt!r} (supported: date-time, date, uuid)",
                    )
                for key in ("minLength", "maxLength", "pattern"):
                    if key in schema:
                        _fail(
                            pointer_join(ptr, key), f"{key} cannot be combined with format {fmt!r}"
                        )
                return FormatType(FORMATS[fmt])
            if "pattern" in schema:
                try:
                    re.compile(schema["pattern"])
                except re.error as e:
                    _fail(
                        pointer_join(ptr, "pattern"),
                        f"pattern is not a valid Python regular expression: {e}",
                    )
            return StrType(schema.get("minLength"), schema.get("maxLength"), schema.get("pattern"))
        if jtype == "boolean":
            return BoolType()
        if jtype == "array":
            if "items" not in schema:
                _fail(ptr, "an array needs an items schema; without one its items would be Any")
            item = self.node(schema["items"], pointer_join(ptr, "items"))
            return ArrayType(item, schema.get("minItems"), schema.get("maxItems"))
        # object
        if "properties" in schema or "required" in schema:
            if not in_def:
                _fail(
                    ptr,
                    "an object with properties must be defined in $defs and used with $ref (it becomes a named TypedDict)",
                )
            _fail(ptr, "internal: objects in $defs are built by build_def")
        extra = schema.get("additionalProperties")
        if extra is None or extra is True:
            _fail(
                ptr,
                "an object needs properties with additionalProperties: false, or additionalProperties: <schema> for a map; otherwise its values would be Any",
            )
        if extra is False:
            _fail(
                pointer_join(ptr, "additionalProperties"),
                "an object without properties and with additionalProperties: false can only be {}",
            )
        return MapType(self.node(extra, pointer_join(ptr, "additionalProperties")))

    def check_type_keys(self, jtype: str, schema: dict[str, Any], ptr: str) -> None:
        allowed = TYPE_KEYWORDS[jtype]
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

    def ref(self, schema: dict[str, Any], ptr: str) -> TypeNode:
        for key in schema:
            if key in VALUE_KEYWORDS and key not in ("$ref", "default"):
                _fail(
                    pointer_join(ptr, key),
                    f"keyword {key!r} next to $ref is not supported; put it in the $defs entry",
                )
        target = schema["$ref"]
        rptr = pointer_join(ptr, "$ref")
        prefix = "#/$defs/"
        if (
            not isinstance(target, str)
            or not target.startswith(prefix)
            or "/" in target[len(prefix) :]
        ):
            _fail(
                rptr,
                f"unresolvable $ref {target!r}: only local references to #/$defs/<name> are supported",
            )
        key = target[len(prefix) :].replace("~1", "/").replace("~0", "~")
        if key not in self.defs_src:
            _fail(rptr, f"unresolvable $ref {target!r}: there is no $defs entry {key!r}")
        nd = self.build_def(key)
        ref = DefRef(nd.name)
        # A nullable object def (type ["object", "null"]) is the TypedDict or None.
        return NullableType(ref) if nd.nullable else ref

    # --- $defs ---

    def build_def(self, key: str) -> NamedDef:
        if key in self.built:
            return self.built[key]
        ptr = pointer("$defs", key)
        if key in self.building:
            cycle = " -> ".join([*self.building[self.building.index(key) :], key])
            _fail(ptr, f"recursive $ref is not supported ({cycle})")
        self.building.append(key)
        schema = self.defs_src[key]
        name = self.def_names[key]
        description = schema.get("description") if isinstance(schema, dict) else None
        if isinstance(schema, dict) and ("properties" in schema or "required" in schema):
            nullable = isinstance(schema.get("type"), list)
            nd = NamedDef(name, key, self.object_props(schema, ptr), None, description, nullable)
        else:
            nd = NamedDef(name, key, None, self.node(schema, ptr, in_def=True), description)
        if isinstance(schema, dict) and "default" in schema:
            _fail(
                pointer_join(ptr, "default"),
                "default is only supported on optional trailing arguments",
            )
        self.building.pop()
        self.built[key] = nd
        self.order.append(nd)
        self.specs[name] = self.spec_of_def(nd)
        return nd

    def object_props(self, schema: dict[str, Any], ptr: str) -> tuple[Property, ...]:
        self.check_keys(
            schema, ptr, frozenset({"type", "properties", "required", "additionalProperties"})
        )
        if schema.get("type") not in ("object", ["object", "null"], ["null", "object"]):
            _fail(
                pointer_join(ptr, "type"),
                'an object with properties needs type "object" (or ["object", "null"])',
            )
        if "properties" not in schema:
            _fail(ptr, "an object with required needs properties")
        if "required" not in schema:
            _fail(ptr, "an object needs a required list (use [] if every property is optional)")
        if schema.get("additionalProperties") is not False:
            _fail(
                pointer_join(ptr, "additionalProperties")
                if "additionalProperties" in schema
                else ptr,
                "an object with properties needs additionalProperties: false; otherwise unknown keys would be Any",
            )
        props_src: dict[str, Any] = schema["properties"]
        required: list[str] = schema["required"]
        for i, key in enumerate(required):
            if key not in props_src:
                _fail(
                    pointer_join(ptr, "required", i),
                    f"required names {key!r}, which is not in properties",
                )
        props = []
        for key, sub in props_src.items():
            pptr = pointer_join(ptr, "properties", key)
            if isinstance(sub, dict) and "default" in sub:
                _fail(
                    pointer_join(pptr, "default"),
                    "default is only supported on optional trailing arguments, not on object properties (a TypedDict cannot carry one)",
                )
            desc = sub.get("description") if isinstance(sub, dict) else None
            props.append(Property(key, self.node(sub, pptr), key in required, desc))
        return tuple(props)

    def spec_of_def(self, nd: NamedDef) -> runtime.Spec:
        if nd.properties is not None:
            return runtime.Object(
                nd.name,
                tuple(runtime.Prop(p.key, self.spec(p.type), p.required) for p in nd.properties),
            )
        assert nd.alias is not None
        return self.spec(nd.alias)

    def spec(self, t: TypeNode) -> runtime.Spec:
        """The runtime checker for ``t``; used here to validate defaults exactly as workers will."""
        return build_spec(t, self.specs)


def build_spec(t: TypeNode, defs: dict[str, runtime.Spec]) -> runtime.Spec:
    if isinstance(t, IntType):
        return runtime.Int(t.minimum, t.maximum, t.exclusive_minimum, t.exclusive_maximum)
    if isinstance(t, FloatType):
        return runtime.Float(t.minimum, t.maximum, t.exclusive_minimum, t.exclusive_maximum)
    if isinstance(t, StrType):
        return runtime.Str(t.min_length, t.max_length, t.pattern)
    if isinstance(t, BoolType):
        return runtime.Bool()
    if isinstance(t, NullType):
        return runtime.Null()
    if isinstance(t, FormatType):
        return {"date-time": runtime.DateTime, "date": runtime.Date, "uuid": runtime.Uuid}[
            t.format
        ]()
    if isinstance(t, LiteralType):
        return runtime.Const(t.values)
    if isinstance(t, NullableType):
        return runtime.Nullable(build_spec(t.inner, defs))
    if isinstance(t, ArrayType):
        return runtime.Array(build_spec(t.item, defs), t.min_items, t.max_items)
    if isinstance(t, MapType):
        return runtime.Map(build_spec(t.value, defs))
    return defs[t.name]


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


def _nullable(t: TypeNode, defs: dict[str, NamedDef]) -> bool:
    if isinstance(t, (NullableType, NullType)):
        return True
    if isinstance(t, DefRef):
        nd = next(d for d in defs.values() if d.name == t.name)
        return nd.alias is not None and _nullable(nd.alias, defs)
    return False


def _has_format(t: TypeNode, defs: dict[str, NamedDef]) -> bool:
    if isinstance(t, FormatType):
        return True
    if isinstance(t, NullableType):
        return _has_format(t.inner, defs)
    if isinstance(t, DefRef):
        nd = next(d for d in defs.values() if d.name == t.name)
        return nd.alias is not None and _has_format(nd.alias, defs)
    return False


def load_file(path: Path) -> JobDef:
    """Read, check and model one schema file; raises SchemaError."""
    name = path.name
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise SchemaError([Problem(str(path), "", f"cannot read: {e.strerror or e}")]) from None
    except UnicodeDecodeError as e:
        raise SchemaError([Problem(str(path), "", f"not UTF-8: {e}")]) from None
    try:
        doc = json.loads(text, object_pairs_hook=_reject_pairs)
    except json.JSONDecodeError as e:
        raise SchemaError(
            [Problem(str(path), "", f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg}")]
        ) from None
    except ValueError as e:
        raise SchemaError([Problem(str(path), "", f"invalid JSON: {e}")]) from None
    try:
        return build_job(doc, name, path.stem)
    except _Fail as e:
        raise SchemaError([Problem(str(path), e.ptr, e.reason)]) from None


def build_job(doc: Any, source: str, stem: str) -> JobDef:
    """Check one parsed schema document and build its JobDef; raises _Fail."""
    if not isinstance(doc, dict):
        _fail("", "a job schema must be a JSON object")
    if doc.get("$schema") != DIALECT:
        _fail(pointer("$schema"), f"$schema must be {DIALECT!r} (JSON Schema 2020-12)")
    err = None if _meta_valid(doc) else best_match(_META.iter_errors(doc))
    if err is not None:
        _fail(
            pointer(*err.absolute_path), f"not a valid JSON Schema 2020-12 document: {err.message}"
        )

    defs_src = doc.get("$defs", {})
    job = _Job(doc, defs_src)
    job.check_keys(doc, "", ROOT_KEYS)
    if doc.get("type") != "array":
        _fail(pointer("type"), 'a job schema describes the args array: type must be "array"')
    if doc.get("items", None) is not False:
        _fail(
            pointer("items") if "items" in doc else "",
            "a job schema needs items: false (no arguments beyond prefixItems)",
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
        _fail(
            pointer("maxItems"),
            f"maxItems must equal the number of prefixItems ({len(prefix)}) or be left out",
        )

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
                f"unknown x-gokogeri option {key!r} (supported: class, queue, retry)",
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

    base = naming.api_name(class_name)
    api = naming.safe(base)
    if not base:
        _fail(
            pointer("x-gokogeri", "class"), f"cannot derive a Python class name from {class_name!r}"
        )
    worker = naming.safe(base + "Worker")
    args_name = naming.safe(base + "Args")
    taken = {api, worker, args_name}
    module = naming.module_name(stem)
    if not module:
        _fail("", f"cannot derive a Python module name from the file name {source!r}")

    # Names for every def up front, so references can be rendered before their target is built.
    for key in sorted(defs_src):
        dname = naming.safe(naming.pascal(key), taken)
        if not dname:
            _fail(pointer("$defs", key), f"cannot derive a Python name from the $defs key {key!r}")
        job.def_names[key] = dname
        taken.add(dname)
    for key in sorted(defs_src):
        job.build_def(key)

    params: list[Param] = []
    names: dict[str, int] = {}
    for i, entry in enumerate(prefix):
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
        if pname in names:
            _fail(
                pointer_join(ptr, "title"),
                f"argument name {pname!r} is already used by args[{names[pname]}]",
            )
        names[pname] = i
        t = job.node(entry, ptr)
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
        params.append(Param(i, title, pname, t, kind, default, entry.get("description")))

    return JobDef(
        source=source,
        module=module,
        class_name=class_name,
        queue=queue,
        retry=retry,
        api_name=api,
        worker_name=worker,
        args_name=args_name,
        params=tuple(params),
        min_items=min_items,
        defs=tuple(job.order),
        title=doc.get("title"),
        description=doc.get("description"),
    )


def _check_default(job: _Job, t: TypeNode, value: Any, ptr: str) -> Scalar:
    if not (value is None or isinstance(value, (str, int, float, bool))):
        _fail(
            ptr,
            "only scalar defaults (string, number, boolean, null) are supported; a list or object default would be shared mutable state",
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
    """Load every schema (directories are searched for *.json); raises SchemaError with every problem found."""
    files: list[Path] = []
    problems: list[Problem] = []
    for p in paths:
        if p.is_dir():
            files.extend(sorted(p.rglob("*.json")))
        elif p.is_file():
            files.append(p)
        else:
            problems.append(Problem(str(p), "", "no such file or directory"))
    jobs: list[JobDef] = []
    where: dict[str, str] = {}
    for f in files:
        try:
            job = load_file(f)
        except SchemaError as e:
            problems.extend(e.problems)
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
    if not files and not problems:
        problems.append(
            Problem(", ".join(str(p) for p in paths) or ".", "", "no schema files found")
        )
    if problems:
        raise SchemaError(problems)
    return Package(tuple(sorted(jobs, key=lambda j: j.module)))
