"""The intermediate model between checked schemas and rendered code.

Plain frozen dataclasses: the loader builds them, the renderer reads them, and
neither knows about the other's format.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

Scalar = str | int | float | bool | None


@dataclass(frozen=True)
class IntType:
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    exclusive_maximum: float | None = None
    multiple_of: float | None = None


@dataclass(frozen=True)
class FloatType:
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    exclusive_maximum: float | None = None
    multiple_of: float | None = None


@dataclass(frozen=True)
class StrType:
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None  # the schema's ECMA-262 source; render translates it per language
    format: str | None = None  # a validated (not converted) format: email, uri, ipv4...


@dataclass(frozen=True)
class BoolType:
    pass


@dataclass(frozen=True)
class NullType:
    pass


@dataclass(frozen=True)
class FormatType:
    """A string on the wire, a richer Python type in code.

    In an ActiveJob job (JobDef.activejob) the value is an ActiveJob-serialized Ruby value
    instead, and the ActiveJob formats (gokogeri.activejob.SCHEMA_FORMATS) are allowed too.
    """

    format: str  # "date-time", "date", "uuid"; ActiveJob jobs: also "globalid", "ruby-symbol"...


@dataclass(frozen=True)
class LiteralType:
    """enum / const: a fixed set of JSON scalars (floats excluded: Literal cannot hold them)."""

    values: tuple[str | int | bool | None, ...]


@dataclass(frozen=True)
class UnionType:
    """type: ["integer", "string"]: a union of primitive types, each with its own keywords."""

    options: tuple[TypeNode, ...]


@dataclass(frozen=True)
class NullableType:
    inner: TypeNode


@dataclass(frozen=True)
class ArrayType:
    item: TypeNode
    min_items: int | None = None
    max_items: int | None = None


@dataclass(frozen=True)
class MapType:
    value: TypeNode


@dataclass(frozen=True)
class DefRef:
    """A $ref to a NamedDef of the same job, by its Python name."""

    name: str


TypeNode = (
    IntType
    | FloatType
    | StrType
    | BoolType
    | NullType
    | FormatType
    | LiteralType
    | NullableType
    | UnionType
    | ArrayType
    | MapType
    | DefRef
)


@dataclass(frozen=True)
class Property:
    key: str  # the JSON key, kept exactly (TypedDict keys need not be identifiers)
    type: TypeNode
    required: bool
    description: str | None = None
    # A default is filled in on decode when the key is missing (its wire form, any JSON value).
    has_default: bool = False
    default: Any = None


@dataclass(frozen=True)
class NamedDef:
    """One $defs entry: an object becomes a TypedDict, anything else a type alias."""

    name: str  # Python name, collision-free
    def_key: str  # where it is defined, relative to the job schema (as source)
    properties: tuple[Property, ...] | None  # set for objects
    alias: TypeNode | None  # set for everything else (e.g. an enum -> Literal alias)
    description: str | None = None
    nullable: bool = False  # an object def with type ["object", "null"]
    # No additionalProperties: false: unknown keys are kept as they are (untyped).
    open: bool = False
    source: str = ""  # where it was defined ("$defs/Money", "money.json#/$defs/Money")


class ParamKind(enum.Enum):
    """The four states of an argument; each maps to its own Python form."""

    # index < minItems, not nullable: `x: T`
    REQUIRED = "required"
    # index < minItems, nullable: `x: T | None`, no default (None must be passed explicitly)
    REQUIRED_NULLABLE = "required-nullable"
    # index >= minItems, no default: `x: T | Unset = UNSET`; left off the wire when UNSET
    OPTIONAL = "optional"
    # index >= minItems with a default: `x: T = <default>`; filled in when a payload lacks it
    OPTIONAL_DEFAULT = "optional-default"


@dataclass(frozen=True)
class Param:
    index: int
    title: str  # the schema's title, shown in errors and docs
    name: str  # the Python parameter name, collision-free
    type: TypeNode
    kind: ParamKind
    default: Scalar = None  # meaningful only for OPTIONAL_DEFAULT
    description: str | None = None


@dataclass(frozen=True)
class JobDef:
    # The schema's file name, not its path: output must not depend on where it was.
    source: str
    module: str  # Python module name inside the generated package
    class_name: str  # Sidekiq "class" (the Ruby class, e.g. "Billing::ChargeInvoiceJob")
    queue: str
    retry: bool | int
    api_name: str  # e.g. ChargeInvoice: enqueue side
    worker_name: str  # e.g. ChargeInvoiceWorker: base class to implement
    args_name: str  # e.g. ChargeInvoiceArgs: typed record for enqueue_bulk
    params: tuple[Param, ...]
    min_items: int
    defs: tuple[NamedDef, ...]  # in dependency order: a def comes after those it uses
    title: str | None = None
    description: str | None = None
    async_worker_name: str = ""  # e.g. ChargeInvoiceAsyncWorker: async base class to implement
    # A Rails ActiveJob job ("x-gokogeri": {"activejob": true}): class_name is the ActiveJob
    # class, the arguments travel ActiveJob-serialized inside a Sidekiq wrapper job.
    activejob: bool = False
    # ActiveJob only: the last param is an object whose properties are perform's keyword
    # arguments (its prefixItems entry is marked "x-gokogeri": {"keywords": true}).
    keywords: bool = False


@dataclass(frozen=True)
class Package:
    jobs: tuple[JobDef, ...]  # sorted by module name


# --- serialization: the model as JSON, stored next to generated code for `schema diff` ---

_CLASSES: dict[str, type] = {}
# Fields added after contracts files were first committed: left out while they hold their
# default, so older files stay byte-identical and still load.
_LATER_FIELDS = {"activejob": False, "keywords": False}


def _register() -> None:
    for cls in (
        IntType,
        FloatType,
        StrType,
        BoolType,
        NullType,
        FormatType,
        LiteralType,
        UnionType,
        NullableType,
        ArrayType,
        MapType,
        DefRef,
        Property,
        NamedDef,
        Param,
        JobDef,
        Package,
    ):
        _CLASSES[cls.__name__] = cls


def to_json(obj: Any) -> Any:
    """A JSON-native form of a model object (``{"~": class name, field: value...}``)."""
    if isinstance(obj, enum.Enum):
        return obj.value
    if hasattr(obj, "__dataclass_fields__"):
        out: dict[str, Any] = {"~": type(obj).__name__}
        for name in obj.__dataclass_fields__:
            value = getattr(obj, name)
            if name in _LATER_FIELDS and value == _LATER_FIELDS[name]:
                continue
            out[name] = to_json(value)
        return out
    if isinstance(obj, (list, tuple)):
        return [to_json(x) for x in obj]
    if isinstance(obj, dict):
        return {k: to_json(v) for k, v in obj.items()}
    return obj


def from_json(data: Any) -> Any:
    """The inverse of to_json; raises ValueError on anything it did not write."""
    if not _CLASSES:
        _register()
    if isinstance(data, list):
        return tuple(from_json(x) for x in data)
    if not isinstance(data, dict) or "~" not in data:
        return data
    cls = _CLASSES.get(data["~"])
    if cls is None:
        raise ValueError(f"unknown model type {data['~']!r}")
    fields = {}
    for k, v in data.items():
        if k == "~":
            continue
        if cls is Param and k == "kind":
            fields[k] = ParamKind(v)
        elif cls is Property and k == "default":
            fields[k] = v  # a JSON value, lists stay lists
        else:
            fields[k] = from_json(v)
    return cls(**fields)
