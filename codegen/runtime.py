"""What generated job modules need at run time: argument specs, conversions, ArgumentError.

Generated code describes each job's arguments as a tree of the small spec
objects below and calls ``Args.encode`` on enqueue and ``Args.decode`` in the
worker. Both directions check every value against the schema's rules, so a bad
value is refused before it reaches Redis, and a payload that breaks the
contract (pushed by Ruby, or by an older producer) fails with an error that
names the argument's position and name and the rule it broke.

Python and wire forms differ only for the formats: ``date-time``, ``date`` and
``uuid`` are datetime / date / UUID in Python and ISO 8601 strings in the JSON
payload, because Sidekiq args must be JSON-native.

This module is imported by every worker process, so it imports only the
standard library and gokogeri itself (never jinja2, typer or jsonschema).
"""

from __future__ import annotations

import copy
import enum
import math
import re
import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any, Final, Protocol

from gokogeri.errors import InvalidArgumentError
from gokogeri.job import Job
from gokogeri.worker import Context

__all__ = [
    "UNSET",
    "Arg",
    "Args",
    "ArgumentError",
    "Array",
    "AsyncWorkerAdapter",
    "Bool",
    "Const",
    "Date",
    "DateTime",
    "EnqueuerLike",
    "Float",
    "Int",
    "Map",
    "Null",
    "Nullable",
    "Object",
    "Prop",
    "Spec",
    "Str",
    "Union",
    "Unset",
    "Uuid",
    "WorkerAdapter",
]


class Unset(enum.Enum):
    """The type of UNSET: an optional argument (no default) that was left out.

    An enum member rather than None so that "left out" and "null" stay two
    different things, and ``if x is UNSET`` narrows the type for mypy.
    """

    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = Unset.UNSET


class ArgumentError(InvalidArgumentError, ValueError):
    """A job argument breaks the job's schema.

    Raised on enqueue (nothing is sent) and in the worker (the job fails and
    Sidekiq's retry rules apply). ``position`` and ``name`` identify the
    argument, ``path`` the place inside it (``.billing.zip``, ``[3]``), and
    ``rule`` what was expected.
    """

    def __init__(self, job_class: str, position: int, name: str, path: str, rule: str) -> None:
        self.job_class = job_class
        self.position = position
        self.name = name
        self.path = path
        self.rule = rule
        super().__init__(f"{job_class} args[{position}] ({name}){path}: {rule}")


class _Invalid(Exception):
    """Internal: a value broke a rule at ``path``; Args turns it into ArgumentError."""

    def __init__(self, path: str, rule: str) -> None:
        self.path = path
        self.rule = rule


# Enum/const values shown in errors are cut to this length: they are codes,
# but a wrong value may be anything, including personal data.
_SHOWN = 40


def _describe(value: Any) -> str:
    """What a wrong value is, without echoing strings that may carry personal data."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return f"a string of length {len(value)}"
    if isinstance(value, (list, tuple)):
        return f"an array of length {len(value)}"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


class Spec:
    """One schema node: checks a value and converts it between Python and wire form."""

    def encode(self, value: Any, path: str) -> Any:
        """Python value -> JSON-native wire value; raises _Invalid."""
        raise NotImplementedError

    def decode(self, value: Any, path: str) -> Any:
        """Wire value -> Python value; raises _Invalid."""
        raise NotImplementedError


class _Number(Spec):
    __slots__ = ("exclusive_maximum", "exclusive_minimum", "maximum", "minimum", "multiple_of")

    def __init__(
        self,
        minimum: float | None = None,
        maximum: float | None = None,
        exclusive_minimum: float | None = None,
        exclusive_maximum: float | None = None,
        multiple_of: float | None = None,
    ) -> None:
        self.minimum = minimum
        self.maximum = maximum
        self.exclusive_minimum = exclusive_minimum
        self.exclusive_maximum = exclusive_maximum
        self.multiple_of = multiple_of

    def _bounds(self, value: float, path: str) -> None:
        if self.minimum is not None and value < self.minimum:
            raise _Invalid(path, f"must be >= {self.minimum}, got {value!r}")
        if self.maximum is not None and value > self.maximum:
            raise _Invalid(path, f"must be <= {self.maximum}, got {value!r}")
        if self.exclusive_minimum is not None and value <= self.exclusive_minimum:
            raise _Invalid(path, f"must be > {self.exclusive_minimum}, got {value!r}")
        if self.exclusive_maximum is not None and value >= self.exclusive_maximum:
            raise _Invalid(path, f"must be < {self.exclusive_maximum}, got {value!r}")
        if self.multiple_of is not None and not is_multiple(value, self.multiple_of):
            raise _Invalid(path, f"must be a multiple of {self.multiple_of}, got {value!r}")


def is_multiple(value: float, of: float) -> bool:
    """multipleOf as the jsonschema package decides it (Ruby's generated check does the same)."""
    if type(value) is int and type(of) is int:
        return value % of == 0
    quotient = value / of
    if not math.isfinite(quotient):
        return False
    return int(quotient) == quotient


class Int(_Number):
    """JSON integer <-> int. bool is refused although Python counts it as an int."""

    __slots__ = ()

    def encode(self, value: Any, path: str) -> Any:
        if type(value) is not int:
            raise _Invalid(path, f"must be an integer, got {_describe(value)}")
        self._bounds(value, path)
        return value

    def decode(self, value: Any, path: str) -> Any:
        # JSON Schema counts 2.0 as an integer, and some encoders write it so.
        if type(value) is float and value.is_integer():
            value = int(value)
        return self.encode(value, path)


class Float(_Number):
    """JSON number <-> float (an int is accepted either way, as in JSON)."""

    __slots__ = ()

    def encode(self, value: Any, path: str) -> Any:
        if type(value) is not float and type(value) is not int:
            raise _Invalid(path, f"must be a number, got {_describe(value)}")
        if not math.isfinite(value):
            raise _Invalid(path, f"must be a finite number, got {value!r}")
        self._bounds(value, path)
        return value

    def decode(self, value: Any, path: str) -> Any:
        return float(self.encode(value, path))


# format -> (the check, what the error says). The generated Ruby uses the same expressions.
FORMATS: Final[dict[str, tuple[str, str]]] = {
    # Whitespace is spelled out: Python's class escape for it is Unicode, Ruby's ASCII.
    "email": (r"\A[^@\x00-\x20]+@[^@\x00-\x20]+\Z", "an email address"),
    "idn-email": (r"\A[^@\x00-\x20]+@[^@\x00-\x20]+\Z", "an email address"),
    "hostname": (
        r"\A(?=.{1,253}\.?\Z)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
        r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?\Z",
        "a hostname",
    ),
    "ipv4": (
        r"\A(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}"
        r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\Z",
        "an IPv4 address",
    ),
    "ipv6": (
        r"\A(?:(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}"
        r"|(?=(?:[0-9A-Fa-f]{0,4}:){0,7}[0-9A-Fa-f]{0,4}\Z)"
        r"(?:(?:[0-9A-Fa-f]{1,4}:){1,7}|:)(?::[0-9A-Fa-f]{1,4}){1,7}"
        r"|(?:[0-9A-Fa-f]{1,4}:){1,7}:|:(?::[0-9A-Fa-f]{1,4}){1,7}|::)\Z",
        "an IPv6 address",
    ),
    "uri": (r"\A[A-Za-z][A-Za-z0-9+.\-]*:[^\x00-\x20]*\Z", "an absolute URI"),
    "iri": (r"\A[A-Za-z][A-Za-z0-9+.\-]*:[^\x00-\x20]*\Z", "an absolute IRI"),
    "uri-reference": (r"\A[^\x00-\x20]*\Z", "a URI reference"),
    "iri-reference": (r"\A[^\x00-\x20]*\Z", "an IRI reference"),
    "time": (
        r"\A(?:[01][0-9]|2[0-3]):[0-5][0-9]:(?:[0-5][0-9]|60)(?:\.[0-9]+)?"
        r"(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])\Z",
        "an RFC 3339 time with an offset",
    ),
    "duration": (
        r"\AP(?!\Z)(?:[0-9]+W|(?:[0-9]+Y)?(?:[0-9]+M)?(?:[0-9]+D)?"
        r"(?:T(?=[0-9])(?:[0-9]+H)?(?:[0-9]+M)?(?:[0-9]+S)?)?)\Z",
        "an ISO 8601 duration",
    ),
    "json-pointer": (r"\A(?:/(?:[^~/]|~[01])*)*\Z", "a JSON pointer"),
}


class Str(Spec):
    """A string, optionally with lengths, a pattern (already translated from ECMA-262) and a format.

    ``source`` is the schema's own spelling of the pattern, shown in errors so
    that both languages (whose translations differ) say the same thing.
    """

    __slots__ = ("format", "max_length", "min_length", "pattern", "source")

    def __init__(
        self,
        min_length: int | None = None,
        max_length: int | None = None,
        pattern: str | None = None,
        source: str | None = None,
        format: str | None = None,
    ) -> None:
        self.min_length = min_length
        self.max_length = max_length
        self.pattern = re.compile(pattern) if pattern is not None else None
        self.source = source if source is not None else pattern
        self.format = (
            (re.compile(FORMATS[format][0]), format, FORMATS[format][1]) if format else None
        )

    def encode(self, value: Any, path: str) -> Any:
        if type(value) is not str:
            raise _Invalid(path, f"must be a string, got {_describe(value)}")
        if self.min_length is not None and len(value) < self.min_length:
            raise _Invalid(path, f"must be at least {self.min_length} characters, got {len(value)}")
        if self.max_length is not None and len(value) > self.max_length:
            raise _Invalid(path, f"must be at most {self.max_length} characters, got {len(value)}")
        if self.pattern is not None and self.pattern.search(value) is None:
            raise _Invalid(path, f"must match the pattern {self.source!r}")
        if self.format is not None and self.format[0].match(value) is None:
            raise _Invalid(path, f"must be {self.format[2]} (format {self.format[1]})")
        return value

    decode = encode


class Bool(Spec):
    __slots__ = ()

    def encode(self, value: Any, path: str) -> Any:
        if type(value) is not bool:
            raise _Invalid(path, f"must be a boolean, got {_describe(value)}")
        return value

    decode = encode


class Null(Spec):
    __slots__ = ()

    def encode(self, value: Any, path: str) -> Any:
        if value is not None:
            raise _Invalid(path, f"must be null, got {_describe(value)}")
        return None

    decode = encode


class Const(Spec):
    """enum / const: one of a fixed set of JSON scalars (Literal[...] in Python)."""

    __slots__ = ("values",)

    def __init__(self, values: tuple[str | int | bool | None, ...]) -> None:
        self.values = values

    def encode(self, value: Any, path: str) -> Any:
        for allowed in self.values:
            # True == 1 in Python but not in JSON: compare the kinds too.
            if value == allowed and type(value) is type(allowed):
                return value
        if len(self.values) == 1:
            rule = f"must be {_show(self.values[0])}"
        else:
            rule = f"must be one of {', '.join(_show(v) for v in self.values)}"
        shown = (
            _show(value)
            if isinstance(value, (str, int, float)) or value is None
            else _describe(value)
        )
        raise _Invalid(path, f"{rule}; got {shown}")

    decode = encode


def _kind(value: Any) -> str:
    """The JSON type of a Python value, as the union error names it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if type(value) is int:
        return "integer"
    if type(value) is float:
        return "number"
    if type(value) is str:
        return "string"
    return "other"


class Union(Spec):
    """type: [A, B]: the first member whose JSON type the value has checks it."""

    __slots__ = ("kinds", "members", "rule")

    def __init__(self, members: tuple[tuple[str, Spec], ...]) -> None:
        # (JSON type, spec); "number" also takes integers, as in JSON Schema.
        self.members = members
        self.kinds = {k for k, _ in members}
        names = [k if k == "null" else ("an " if k == "integer" else "a ") + k for k, _ in members]
        self.rule = "must be " + (", ".join(names[:-1]) + " or " + names[-1])

    def _pick(self, value: Any, path: str) -> Spec:
        kind = _kind(value)
        for k, spec in self.members:
            if k == kind or (k == "number" and kind == "integer"):
                return spec
        if kind == "number" and "integer" in self.kinds and value.is_integer():
            return dict(self.members)["integer"]
        raise _Invalid(path, f"{self.rule}, got {_describe(value)}")

    def encode(self, value: Any, path: str) -> Any:
        return self._pick(value, path).encode(value, path)

    def decode(self, value: Any, path: str) -> Any:
        return self._pick(value, path).decode(value, path)


class Nullable(Spec):
    __slots__ = ("inner",)

    def __init__(self, inner: Spec) -> None:
        self.inner = inner

    def encode(self, value: Any, path: str) -> Any:
        return None if value is None else self.inner.encode(value, path)

    def decode(self, value: Any, path: str) -> Any:
        return None if value is None else self.inner.decode(value, path)


_DATE = re.compile(r"\A\d{4}-\d{2}-\d{2}\Z")
# RFC 3339 date-time: the offset is mandatory, fractions optional.
_DATE_TIME = re.compile(
    r"\A\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})\Z"
)
_UUID = re.compile(r"\A[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}\Z")


class DateTime(Spec):
    """format: date-time <-> an aware datetime. UTC is written with "Z", as Ruby's Time#iso8601 does."""

    __slots__ = ()

    def encode(self, value: Any, path: str) -> Any:
        if not isinstance(value, datetime):
            raise _Invalid(path, f"must be a datetime, got {_describe(value)}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise _Invalid(
                path, "must be a timezone-aware datetime (the wire form needs an offset)"
            )
        text = value.isoformat()
        if value.utcoffset() == timedelta(0):
            text = text.removesuffix("+00:00") + "Z"
        return text

    def decode(self, value: Any, path: str) -> Any:
        if type(value) is not str or _DATE_TIME.match(value) is None:
            raise _Invalid(
                path, f"must be an RFC 3339 date-time string with an offset, got {_describe(value)}"
            )
        try:
            return datetime.fromisoformat(value.upper())
        except ValueError:
            raise _Invalid(path, f"must be a valid date-time, got {value!r}") from None


class Date(Spec):
    """format: date <-> date ("YYYY-MM-DD" on the wire)."""

    __slots__ = ()

    def encode(self, value: Any, path: str) -> Any:
        # datetime is a date subclass; silently dropping its time would lose data.
        if not isinstance(value, date) or isinstance(value, datetime):
            raise _Invalid(path, f"must be a date, got {_describe(value)}")
        return value.isoformat()

    def decode(self, value: Any, path: str) -> Any:
        if type(value) is not str or _DATE.match(value) is None:
            raise _Invalid(path, f"must be a YYYY-MM-DD date string, got {_describe(value)}")
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise _Invalid(path, f"must be a valid calendar date, got {value!r}") from None


class Uuid(Spec):
    """format: uuid <-> UUID (lowercase hyphenated on the wire)."""

    __slots__ = ()

    def encode(self, value: Any, path: str) -> Any:
        if not isinstance(value, uuid.UUID):
            raise _Invalid(path, f"must be a UUID, got {_describe(value)}")
        return str(value)

    def decode(self, value: Any, path: str) -> Any:
        if type(value) is not str or _UUID.match(value) is None:
            raise _Invalid(path, f"must be a hyphenated UUID string, got {_describe(value)}")
        return uuid.UUID(value)


class Array(Spec):
    __slots__ = ("item", "max_items", "min_items")

    def __init__(
        self, item: Spec, min_items: int | None = None, max_items: int | None = None
    ) -> None:
        self.item = item
        self.min_items = min_items
        self.max_items = max_items

    def _check(self, value: Any, path: str) -> None:
        if type(value) is not list and type(value) is not tuple:
            raise _Invalid(path, f"must be an array, got {_describe(value)}")
        if self.min_items is not None and len(value) < self.min_items:
            raise _Invalid(path, f"must have at least {self.min_items} items, got {len(value)}")
        if self.max_items is not None and len(value) > self.max_items:
            raise _Invalid(path, f"must have at most {self.max_items} items, got {len(value)}")

    def encode(self, value: Any, path: str) -> Any:
        self._check(value, path)
        item = self.item
        return [item.encode(v, f"{path}[{i}]") for i, v in enumerate(value)]

    def decode(self, value: Any, path: str) -> Any:
        self._check(value, path)
        item = self.item
        return [item.decode(v, f"{path}[{i}]") for i, v in enumerate(value)]


def _key_path(path: str, key: str) -> str:
    return f"{path}.{key}" if key.isidentifier() else f"{path}[{key!r}]"


class Map(Spec):
    """additionalProperties: <schema> -> dict[str, T]."""

    __slots__ = ("value",)

    def __init__(self, value: Spec) -> None:
        self.value = value

    def _convert(self, value: Any, path: str, encode: bool) -> Any:
        if type(value) is not dict:
            raise _Invalid(path, f"must be an object, got {_describe(value)}")
        out: dict[str, Any] = {}
        spec = self.value
        for k, v in value.items():
            if type(k) is not str:
                raise _Invalid(path, f"keys must be strings, got {_describe(k)}")
            where = _key_path(path, k)
            out[k] = spec.encode(v, where) if encode else spec.decode(v, where)
        return out

    def encode(self, value: Any, path: str) -> Any:
        return self._convert(value, path, True)

    def decode(self, value: Any, path: str) -> Any:
        return self._convert(value, path, False)


_NO_DEFAULT: Final = object()


class Prop:
    """One property of an Object: its JSON key, spec, whether it must be present, its default.

    ``default`` is the wire form (any JSON value), filled in on decode when the
    key is missing and then decoded like a sent value; encode leaves a missing
    key missing.
    """

    __slots__ = ("default", "key", "required", "spec")

    def __init__(self, key: str, spec: Spec, required: bool, default: Any = _NO_DEFAULT) -> None:
        self.key = key
        self.spec = spec
        self.required = required
        self.default = default


class Object(Spec):
    """An object with properties (a TypedDict in Python): required keys present, known keys checked.

    ``open`` objects (no ``additionalProperties: false`` in the schema) keep
    unknown keys as they are; closed ones refuse them.
    """

    __slots__ = ("defaults", "name", "open", "props", "required")

    def __init__(self, name: str, props: tuple[Prop, ...], open: bool = False) -> None:
        self.name = name
        self.props = {p.key: p for p in props}
        self.required = tuple(p.key for p in props if p.required)
        self.defaults = tuple(p for p in props if p.default is not _NO_DEFAULT)
        self.open = open

    def _convert(self, value: Any, path: str, encode: bool) -> Any:
        if type(value) is not dict:
            raise _Invalid(path, f"must be an object ({self.name}), got {_describe(value)}")
        for key in self.required:
            if key not in value:
                raise _Invalid(path, f"{self.name} is missing the required key {key!r}")
        out: dict[str, Any] = {}
        props = self.props
        for k, v in value.items():
            prop = props.get(k)
            if prop is None:
                if self.open and type(k) is str:
                    out[k] = v
                    continue
                shown = _show(k) if type(k) is str else _describe(k)
                raise _Invalid(
                    path, f"{self.name} has no key {shown} (additionalProperties is false)"
                )
            where = _key_path(path, k)
            out[k] = prop.spec.encode(v, where) if encode else prop.spec.decode(v, where)
        if not encode:
            for prop in self.defaults:
                if prop.key not in out:
                    # A fresh copy per job: a list or object default is never shared.
                    fresh = copy.deepcopy(prop.default)
                    out[prop.key] = prop.spec.decode(fresh, _key_path(path, prop.key))
        return out

    def encode(self, value: Any, path: str) -> Any:
        return self._convert(value, path, True)

    def decode(self, value: Any, path: str) -> Any:
        return self._convert(value, path, False)


class Arg:
    """One positional argument.

    ``default`` is the Python value used when a payload leaves the argument
    out (schema ``default``), or UNSET when the worker should see UNSET.
    Required arguments (index < minItems) ignore it.
    """

    __slots__ = ("default", "name", "spec")

    def __init__(self, name: str, spec: Spec, default: Any = UNSET) -> None:
        self.name = name
        self.spec = spec
        self.default = default


class Args:
    """A job's whole args array: prefixItems, minItems, and ``items: false``."""

    __slots__ = ("args", "job_class", "min_items")

    def __init__(self, job_class: str, args: tuple[Arg, ...], min_items: int) -> None:
        self.job_class = job_class
        self.args = args
        self.min_items = min_items

    def _error(self, position: int, path: str, rule: str) -> ArgumentError:
        name = self.args[position].name if position < len(self.args) else "extra"
        return ArgumentError(self.job_class, position, name, path, rule)

    def encode(self, values: Sequence[Any]) -> list[Any]:
        """Python call values -> the wire args list.

        Defaults are written out, so a payload says what its job runs with.
        An UNSET optional argument ends the array: after it, only arguments
        left at their default may follow (they are dropped, which the worker
        reads back as the same default); any other value cannot be expressed
        positionally and is refused.
        """
        if len(values) > len(self.args):
            raise self._error(
                len(self.args), "", f"takes at most {len(self.args)} arguments, got {len(values)}"
            )
        out: list[Any] = []
        missing = -1
        for i, value in enumerate(values):
            if value is UNSET:
                if i < self.min_items:
                    raise self._error(i, "", "is required")
                if missing < 0:
                    missing = i
                continue
            if missing >= 0:
                default = self.args[i].default
                if value == default and type(value) is type(default):
                    continue
                raise self._error(
                    i,
                    "",
                    f"cannot be given while args[{missing}] ({self.args[missing].name}) is left out: "
                    "optional arguments can only be left out from the end",
                )
            try:
                out.append(self.args[i].spec.encode(value, ""))
            except _Invalid as e:
                raise self._error(i, e.path, e.rule) from None
        if len(values) < self.min_items:
            raise self._error(len(values), "", "is required")
        return out

    def decode(self, values: Any) -> list[Any]:
        """The wire args list -> one Python value per argument (defaults and UNSET filled in)."""
        if type(values) is not list:
            raise ArgumentError(
                self.job_class, 0, "args", "", f"args must be an array, got {_describe(values)}"
            )
        count = len(values)
        if count < self.min_items:
            raise self._error(
                count,
                "",
                f"is required (the job has {count} of {self.min_items} required arguments)",
            )
        if count > len(self.args):
            raise self._error(
                len(self.args),
                "",
                f"is not allowed: the job takes at most {len(self.args)} arguments, got {count}",
            )
        out: list[Any] = []
        for i, arg in enumerate(self.args):
            if i >= count:
                out.append(arg.default)
                continue
            try:
                out.append(arg.spec.decode(values[i], ""))
            except _Invalid as e:
                raise self._error(i, e.path, e.rule) from None
        return out


class _Hooks:
    """The runtime's per-worker hook contract, adapted to the generated typed hooks.

    The node calls ``retry_in(count, exc, job)`` and ``retries_exhausted(job,
    exc)`` on the registered worker; generated bases declare
    ``retry_in(count, exc, <args>)`` and ``retries_exhausted(<args>, exc)``
    with the job's decoded arguments. A payload whose args break the schema
    cannot be handed to a typed hook: retry_in then answers None (Sidekiq's
    default backoff) and retries_exhausted is skipped.
    """

    __slots__ = ("args", "worker")

    def __init__(self, worker: Any, args: Args) -> None:
        self.worker = worker
        self.args = args

    def retry_in(self, count: int, exc: BaseException, job: Job) -> Any:
        try:
            values = self.args.decode(job.args)
        except ArgumentError:
            return None
        return self.worker.retry_in(count, exc, *values)

    def retries_exhausted(self, job: Job, exc: BaseException) -> None:
        try:
            values = self.args.decode(job.args)
        except ArgumentError:
            return
        self.worker.retries_exhausted(*values, exc)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.worker!r})"


class WorkerAdapter(_Hooks):
    """What a generated worker's register() puts on the Router (sync work)."""

    __slots__ = ()

    def work(self, ctx: Context, job: Job) -> None:
        self.worker.work(ctx, job)


class AsyncWorkerAdapter(_Hooks):
    """What a generated async worker's register() puts on the Router (work on the event loop)."""

    __slots__ = ()

    async def work(self, ctx: Context, job: Job) -> None:
        await self.worker.work(ctx, job)


class EnqueuerLike(Protocol):
    """What generated enqueue methods call: gokogeri.Enqueuer, or a test double.

    Results are ``str | None`` because gokogeri.Enqueuer returns None when
    client middleware stopped the push.
    """

    def enqueue(self, job: Job) -> str | None: ...

    def enqueue_in(self, job: Job, seconds: float) -> str | None: ...

    def enqueue_at(self, job: Job, at: datetime | float) -> str | None: ...

    def enqueue_bulk(self, jobs: Sequence[Job]) -> Sequence[str | None]: ...
