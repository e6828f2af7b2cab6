"""The intermediate model between checked schemas and rendered code.

Plain frozen dataclasses: the loader builds them, the renderer reads them, and
neither knows about the other's format.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

Scalar = str | int | float | bool | None


@dataclass(frozen=True)
class IntType:
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    exclusive_maximum: float | None = None


@dataclass(frozen=True)
class FloatType:
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    exclusive_maximum: float | None = None


@dataclass(frozen=True)
class StrType:
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None


@dataclass(frozen=True)
class BoolType:
    pass


@dataclass(frozen=True)
class NullType:
    pass


@dataclass(frozen=True)
class FormatType:
    """A string on the wire, a richer Python type in code."""

    format: Literal["date-time", "date", "uuid"]


@dataclass(frozen=True)
class LiteralType:
    """enum / const: a fixed set of JSON scalars (floats excluded: Literal cannot hold them)."""

    values: tuple[str | int | bool | None, ...]


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


@dataclass(frozen=True)
class NamedDef:
    """One $defs entry: an object becomes a TypedDict, anything else a type alias."""

    name: str  # Python name, collision-free
    def_key: str  # the key under $defs
    properties: tuple[Property, ...] | None  # set for objects
    alias: TypeNode | None  # set for everything else (e.g. an enum -> Literal alias)
    description: str | None = None
    nullable: bool = False  # an object def with type ["object", "null"]


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


@dataclass(frozen=True)
class Package:
    jobs: tuple[JobDef, ...]  # sorted by module name
