"""Rails ActiveJob jobs on the Sidekiq wire, both ways.

A Rails app that enqueues with ``perform_later`` through the Sidekiq adapter pushes a wrapper
job: ``class`` is ``ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper`` (Rails' own adapter)
or ``Sidekiq::ActiveJob::Wrapper`` (the adapter Sidekiq 7.3.3+ ships for Rails 7+), ``wrapped``
is the ActiveJob class name, and ``args[0]`` is ActiveJob's serialized job (the envelope):
job_class, job_id, queue_name, priority, arguments, executions, ... Its ``arguments`` use
ActiveJob's serializers (``_aj_serialized``, ``_aj_symbol_keys``, ``_aj_ruby2_keywords``,
``_aj_hash_with_indifferent_access``, ``_aj_globalid``).

Running: :func:`activejob_worker` / :func:`register` turn a plain function
``f(*args, **kwargs)`` into a gokogeri worker that decodes those arguments (keyword arguments
become Python keyword arguments) and calls it. Failures are ordinary job failures: the node
retries the wrapper by Sidekiq's rules, and the envelope is never rewritten (Ruby's Sidekiq
does not rewrite it either: ``executions`` only grows when ActiveJob's own ``retry_on``
re-enqueues).

Enqueuing: :class:`ActiveJobClient` builds the same wrapper payloads, ActiveJob's serializers in
reverse, for the Rails/Sidekiq pair that will run them (:class:`RailsTarget`).

Ruby values and their Python forms (decoding gives these; encoding accepts them):

==========================================  ===============================================
Ruby                                        Python
==========================================  ===============================================
nil, true/false, Integer, Float, String     None, bool, int, float, str
Symbol                                      :class:`Symbol` (a ``str``)
Time                                        aware ``datetime`` (fixed UTC offset)
DateTime                                    :class:`RubyDateTime` (a ``datetime``)
ActiveSupport::TimeWithZone                 :class:`TimeWithZone` (a ``datetime``; a
                                            ``datetime`` with a ``ZoneInfo`` encodes as one)
Date                                        ``date``
ActiveSupport::Duration                     :class:`Duration` (a ``timedelta``, with parts)
BigDecimal                                  ``Decimal`` (Rails < 7.1 sends a plain string)
Module / Class                              :class:`RubyModule` (the name only)
Range                                       :class:`RubyRange` (Rails 7.0+; ``range`` encodes)
Hash with symbol keys                       ``dict`` whose symbol keys are :class:`Symbol`
HashWithIndifferentAccess                   :class:`IndifferentHash` (a ``dict``)
GlobalID (``gid://app/User/42``)            :class:`GlobalID`
==========================================  ===============================================

Nothing from a payload is ever imported, evaluated or looked up as code: a serializer name is
compared against a fixed table (plus serializers registered on a :class:`Codec`), a Module is
kept as its name, and a GlobalID stays a value.
"""

from __future__ import annotations

import inspect
import math
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, TypeAlias
from urllib.parse import parse_qsl, quote_plus, unquote_plus, urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gokogeri.errors import GokogeriError
from gokogeri.job import Job

if TYPE_CHECKING:
    from gokogeri.enqueuer import Enqueuer
    from gokogeri.worker import Context, Router

__all__ = [
    "JOB_WRAPPER",
    "SCHEMA_FORMATS",
    "SIDEKIQ_WRAPPER",
    "WRAPPERS",
    "ActiveJobCall",
    "ActiveJobClass",
    "ActiveJobClient",
    "ActiveJobError",
    "ActiveJobSerializationError",
    "AsyncActiveJobWorker",
    "Codec",
    "Duration",
    "Envelope",
    "GlobalID",
    "IndifferentHash",
    "RailsTarget",
    "RubyDateTime",
    "RubyModule",
    "RubyRange",
    "Symbol",
    "SyncActiveJobWorker",
    "TimeWithZone",
    "activejob_worker",
    "build_job",
    "decode_arguments",
    "decode_job",
    "encode_arguments",
    "handle",
    "is_activejob",
    "register",
]

# Rails' adapter (Rails 4.2-8.x; Sidekiq 8 keeps it as an alias of the class below).
JOB_WRAPPER = "ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper"
# The adapter Sidekiq itself ships since 7.3.3, used when ActiveJob >= 7.0 is loaded.
SIDEKIQ_WRAPPER = "Sidekiq::ActiveJob::Wrapper"
WRAPPERS: tuple[str, str] = (JOB_WRAPPER, SIDEKIQ_WRAPPER)

# ActiveJob::Arguments' reserved keys.
GLOBALID_KEY = "_aj_globalid"
SYMBOL_KEYS_KEY = "_aj_symbol_keys"
RUBY2_KEYWORDS_KEY = "_aj_ruby2_keywords"
WITH_INDIFFERENT_ACCESS_KEY = "_aj_hash_with_indifferent_access"
OBJECT_SERIALIZER_KEY = "_aj_serialized"
RESERVED_KEYS = frozenset(
    {
        GLOBALID_KEY,
        SYMBOL_KEYS_KEY,
        RUBY2_KEYWORDS_KEY,
        WITH_INDIFFERENT_ACCESS_KEY,
        OBJECT_SERIALIZER_KEY,
    }
)

_S = "ActiveJob::Serializers::"
SYMBOL_SERIALIZER = _S + "SymbolSerializer"
TIME_SERIALIZER = _S + "TimeSerializer"
DATE_TIME_SERIALIZER = _S + "DateTimeSerializer"
TIME_WITH_ZONE_SERIALIZER = _S + "TimeWithZoneSerializer"
DATE_SERIALIZER = _S + "DateSerializer"
DURATION_SERIALIZER = _S + "DurationSerializer"
BIG_DECIMAL_SERIALIZER = _S + "BigDecimalSerializer"
MODULE_SERIALIZER = _S + "ModuleSerializer"
RANGE_SERIALIZER = _S + "RangeSerializer"


class ActiveJobError(GokogeriError, ValueError):
    """An ActiveJob payload gokogeri cannot decode: the message names the argument's path and,
    for an ``_aj_serialized`` value, the serializer. Raised inside a job, it is an ordinary
    failure (retried like any other), as ActiveJob::DeserializationError is in Ruby."""


class ActiveJobSerializationError(GokogeriError, TypeError):
    """A Python value with no ActiveJob form (for the target Rails version), named by path;
    ActiveJob::SerializationError in Ruby."""


# --- value types ----------------------------------------------------------------------------


class Symbol(str):
    """A Ruby Symbol: compares, hashes and formats as its name, encodes back as a Symbol."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Symbol({str.__repr__(self)})"


class RubyDateTime(datetime):
    """A Ruby DateTime (rather than a Time): an aware datetime that encodes back as one."""


class TimeWithZone(datetime):
    """An ActiveSupport::TimeWithZone: an aware datetime plus the Rails zone name it was in
    (``zone``, e.g. "Europe/Paris"; sent by Rails 7.1+, None from older Rails)."""

    zone: str | None = None

    @classmethod
    def of(cls, dt: datetime, zone: str | None = None) -> TimeWithZone:
        if dt.tzinfo is None:
            raise ValueError("a TimeWithZone needs an aware datetime")
        t = cls(dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second, dt.microsecond,
                tzinfo=dt.tzinfo, fold=dt.fold)  # fmt: skip
        t.zone = zone
        return t

    def __repr__(self) -> str:
        plain = datetime(self.year, self.month, self.day, self.hour, self.minute, self.second,
                         self.microsecond, tzinfo=self.tzinfo, fold=self.fold)  # fmt: skip
        return f"TimeWithZone.of({plain!r}, zone={self.zone!r})"


PartValue: TypeAlias = int | float


class Duration(timedelta):
    """An ActiveSupport::Duration: a timedelta of ``value`` seconds that keeps Ruby's ``parts``
    (("days", 2), ("hours", 3)) so it encodes back exactly. A plain timedelta encodes with
    weeks/days/hours/minutes/seconds parts (months and years have no fixed length)."""

    value: PartValue = 0
    parts: tuple[tuple[str, PartValue], ...] = ()

    @classmethod
    def of(cls, value: PartValue, parts: Iterable[tuple[str, PartValue]] = ()) -> Duration:
        d = cls(seconds=value)
        d.value = value
        d.parts = tuple((str(k), v) for k, v in parts)
        return d

    def __repr__(self) -> str:
        return f"Duration.of({self.value!r}, {self.parts!r})"


@dataclass(frozen=True)
class RubyModule:
    """A Ruby Module or Class, by name (ModuleSerializer). Never resolved to anything."""

    name: str


@dataclass(frozen=True)
class RubyRange:
    """A Ruby Range (RangeSerializer, Rails 7.0+); ``end`` None is an endless range."""

    begin: Any
    end: Any
    exclude_end: bool = False

    @classmethod
    def of(cls, r: range) -> RubyRange:
        if r.step != 1:
            raise ValueError("only a range with step 1 has a Ruby Range form")
        return cls(r.start, r.stop, True)


_GID = re.compile(r"\Agid://([^/?#]+)/([^/?#]+)/([^?#]+)(?:\?([^#]*))?\Z")


@dataclass(frozen=True)
class GlobalID:
    """A GlobalID URI (``gid://app/User/42``). ``model_id`` is unescaped; a composite id
    (GlobalID 1.x: ``gid://app/Order/1/7``) is a tuple. ``params`` are the query pairs."""

    app: str
    model_name: str
    model_id: str | tuple[str, ...]
    params: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, uri: str) -> GlobalID:
        m = _GID.match(uri) if isinstance(uri, str) else None
        if m is None:
            raise ValueError(f"not a GlobalID URI (gid://app/Model/id): {uri!r}")
        app, model, ids, query = m.groups()
        parts = tuple(unquote_plus(p) for p in ids.split("/"))
        if any(not p for p in parts):
            raise ValueError(f"GlobalID URI with an empty model id: {uri!r}")
        params = tuple(parse_qsl(query, keep_blank_values=True)) if query else ()
        return cls(app, model, parts[0] if len(parts) == 1 else parts, params)

    @property
    def uri(self) -> str:
        ids = (self.model_id,) if isinstance(self.model_id, str) else self.model_id
        path = "/".join(quote_plus(str(i)) for i in ids)
        query = "?" + urlencode(self.params) if self.params else ""
        return f"gid://{self.app}/{self.model_name}/{path}{query}"

    def __str__(self) -> str:
        return self.uri


class IndifferentHash(dict[str, Any]):
    """An ActiveSupport::HashWithIndifferentAccess: a dict with str keys that encodes back as one."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"IndifferentHash({dict.__repr__(self)})"


# JSON Schema "format" of an argument -> the Python type that carries it, for typed contracts
# (codegen with "x-gokogeri": {"activejob": true}). "date-time", "date" and "duration" are JSON
# Schema's own formats; the rest name Ruby types JSON has no word for.
SCHEMA_FORMATS: dict[str, type] = {
    "date-time": datetime,  # Ruby Time
    "ruby-datetime": RubyDateTime,
    "ruby-time-with-zone": TimeWithZone,
    "date": date,
    "duration": timedelta,  # decoded as Duration, a timedelta
    "decimal": Decimal,  # a string in JSON: BigDecimal
    "ruby-symbol": Symbol,
    "globalid": GlobalID,
    "ruby-module": RubyModule,
    "ruby-range": RubyRange,
}


# --- target versions ------------------------------------------------------------------------


def _version(text: str) -> tuple[int, ...]:
    parts = re.findall(r"\d+", text)
    if not parts:
        raise ValueError(f"not a version number: {text!r}")
    return tuple(int(p) for p in parts[:3])


@dataclass(frozen=True)
class RailsTarget:
    """The Rails (ActiveJob) and Sidekiq versions that will run what Python enqueues.

    They decide the wrapper class (Sidekiq's own adapter, 7.3.3+ with Rails 7+, uses
    Sidekiq::ActiveJob::Wrapper; Sidekiq 8 still runs JobWrapper jobs through an alias), which
    serializers exist (Range 7.0+, BigDecimal 7.1+, a TimeWithZone's zone name 7.1+) and the
    envelope's shape (scheduled_at and nanosecond enqueued_at since 7.1).
    """

    rails: str = "7.2"
    sidekiq: str = "7.3.2"

    @property
    def rails_version(self) -> tuple[int, ...]:
        return _version(self.rails)

    @property
    def wrapper(self) -> str:
        if _version(self.sidekiq) >= (7, 3, 3) and self.rails_version >= (7, 0):
            return SIDEKIQ_WRAPPER
        return JOB_WRAPPER

    @property
    def has_ranges(self) -> bool:
        return self.rails_version >= (7, 0)

    @property
    def has_big_decimal(self) -> bool:
        return self.rails_version >= (7, 1)

    @property
    def has_zone_names(self) -> bool:
        return self.rails_version >= (7, 1)

    @property
    def has_scheduled_at(self) -> bool:
        return self.rails_version >= (7, 1)


# --- time formats ---------------------------------------------------------------------------

_ISO_TIME = re.compile(
    r"\A(\d{4,})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:[.,](\d+))?\s*(Z|z|[+-]\d\d(?::?\d\d)?)?\Z"
)
_ISO_DATE = re.compile(r"\A(\d{4,})-(\d\d)-(\d\d)\Z")


def parse_iso8601(text: str) -> datetime:
    """Ruby's Time.iso8601 for the forms Rails writes; fractions beyond microseconds are cut."""
    m = _ISO_TIME.match(text) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"not an ISO 8601 time: {text!r}")
    y, mo, d, h, mi, s, frac, off = m.groups()
    if off is None:
        raise ValueError(f"ISO 8601 time without a UTC offset: {text!r}")
    tz: tzinfo
    if off in ("Z", "z"):
        tz = UTC
    else:
        sign = -1 if off[0] == "-" else 1
        digits = off[1:].replace(":", "")
        tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0)))
    micro = int((frac or "0")[:6].ljust(6, "0"))
    return datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), micro, tzinfo=tz)


def format_iso8601(dt: datetime, digits: int = 9, utc_z: bool = True) -> str:
    """Ruby's Time#iso8601(digits): offset as +HH:MM, "Z" for UTC (never for a DateTime)."""
    offset = dt.utcoffset()
    if offset is None:
        raise ValueError("a naive datetime has no Ruby form: give it a tzinfo")
    base = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if digits:
        base += "." + (f"{dt.microsecond:06d}" + "0" * 3)[:digits].ljust(digits, "0")
    if not offset and utc_z:
        return base + "Z"
    total = int(offset.total_seconds())
    sign = "-" if total < 0 else "+"
    total = abs(total)
    return f"{base}{sign}{total // 3600:02d}:{total % 3600 // 60:02d}"


def _zone(name: str) -> tzinfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


# --- the codec ------------------------------------------------------------------------------

Decoder = Callable[[Mapping[str, Any]], Any]
Encoder = Callable[[Any], Mapping[str, Any]]

# Parts of ActiveSupport::Duration a timedelta is split into (fixed lengths only).
_DURATION_PARTS: tuple[tuple[str, int], ...] = (
    ("weeks", 604800), ("days", 86400), ("hours", 3600), ("minutes", 60),
)  # fmt: skip


class Codec:
    """ActiveJob's argument serializers, both ways.

    ``register(serializer_name, decode=..., python_type=..., encode=...)`` adds an
    application serializer (Ruby's ``ActiveJob::Serializers.add_serializers``): ``decode``
    gets the ``_aj_serialized`` hash, ``encode`` returns the hash's other keys for a value of
    ``python_type``.
    """

    def __init__(self) -> None:
        self._decoders: dict[str, Decoder] = {}
        self._encoders: list[tuple[type, str, Encoder]] = []

    def register(
        self,
        serializer: str,
        *,
        decode: Decoder | None = None,
        python_type: type | None = None,
        encode: Encoder | None = None,
    ) -> None:
        if not serializer or not isinstance(serializer, str):
            raise ValueError("serializer must be the Ruby serializer's class name")
        if decode is not None:
            self._decoders[serializer] = decode
        if (python_type is None) != (encode is None):
            raise ValueError("python_type and encode go together")
        if python_type is not None and encode is not None:
            self._encoders.append((python_type, serializer, encode))

    # --- decoding ---

    def decode_arguments(self, arguments: Any) -> tuple[list[Any], dict[str, Any]]:
        """ActiveJob's ``arguments`` as Python positional and keyword arguments.

        A last argument hash marked ``_aj_ruby2_keywords`` holds the keyword arguments, as
        ``perform(*args, **kwargs)`` receives them in Ruby.
        """
        if not isinstance(arguments, list):
            raise ActiveJobError(f"arguments must be an array, got {type(arguments).__name__}")
        values = [self.decode(v, f"arguments[{i}]") for i, v in enumerate(arguments)]
        kwargs: dict[str, Any] = {}
        last = arguments[-1] if arguments else None
        if (
            isinstance(last, dict)
            and RUBY2_KEYWORDS_KEY in last
            and OBJECT_SERIALIZER_KEY not in last  # then it is an object, not a hash
            and isinstance(values[-1], dict)
        ):
            kwargs = {str(k): v for k, v in values.pop().items()}
        return values, kwargs

    def decode(self, value: Any, where: str = "argument") -> Any:
        if value is None or isinstance(value, (str, bool, int, float)):
            return value
        if isinstance(value, list):
            return [self.decode(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, dict):
            if len(value) == 1 and GLOBALID_KEY in value:
                try:
                    return GlobalID.parse(value[GLOBALID_KEY])
                except ValueError as e:
                    raise ActiveJobError(f"{where}: {e}") from None
            if OBJECT_SERIALIZER_KEY in value:
                return self._decode_serialized(value, where)
            return self._decode_hash(value, where)
        raise ActiveJobError(f"{where}: a {type(value).__name__} is not an ActiveJob argument")

    def _decode_hash(self, value: dict[str, Any], where: str) -> dict[str, Any]:
        # ActiveJob's deserialize_hash: values first, then the first marker present (in this
        # order) is removed and applied; any other reserved key stays an ordinary key.
        result = {k: self.decode(v, f"{where}[{k!r}]") for k, v in value.items()}
        if result.pop(WITH_INDIFFERENT_ACCESS_KEY, None):
            return IndifferentHash(result)
        for marker in (SYMBOL_KEYS_KEY, RUBY2_KEYWORDS_KEY):
            names = result.pop(marker, None)
            if names is None or names is False:  # nil/false: Ruby's elsif moves on
                continue
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise ActiveJobError(f"{where}[{marker!r}] must be a list of key names")
            wanted = set(names)
            return {Symbol(k) if k in wanted else k: v for k, v in result.items()}
        return result

    def _decode_serialized(self, value: dict[str, Any], where: str) -> Any:
        name = value[OBJECT_SERIALIZER_KEY]
        if not isinstance(name, str):
            raise ActiveJobError(f"{where}: {OBJECT_SERIALIZER_KEY} must be a serializer name")
        custom = self._decoders.get(name)
        try:
            if custom is not None:
                return custom(value)
            return self._decode_builtin(name, value, where)
        except ActiveJobError:
            raise
        except (ValueError, TypeError, KeyError, ArithmeticError) as e:
            raise ActiveJobError(
                f"{where}: cannot decode {name} value {_short(value)}: {e}"
            ) from None

    def _decode_builtin(self, name: str, value: dict[str, Any], where: str) -> Any:
        if name == SYMBOL_SERIALIZER:
            return Symbol(_str(value, "value"))
        if name == TIME_SERIALIZER:
            return parse_iso8601(_str(value, "value"))
        if name == DATE_TIME_SERIALIZER:
            return _as(RubyDateTime, parse_iso8601(_str(value, "value")))
        if name == TIME_WITH_ZONE_SERIALIZER:
            t = parse_iso8601(_str(value, "value"))
            zone_name = value.get("time_zone")
            if zone_name is not None and not isinstance(zone_name, str):
                raise ValueError("time_zone must be a zone name")
            zone = _zone(zone_name) if zone_name else None
            return TimeWithZone.of(t.astimezone(zone) if zone else t, zone_name)
        if name == DATE_SERIALIZER:
            m = _ISO_DATE.match(_str(value, "value"))
            if m is None:
                raise ValueError("not an ISO 8601 date")
            return date(int(m[1]), int(m[2]), int(m[3]))
        if name == DURATION_SERIALIZER:
            seconds = value["value"]
            if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
                raise ValueError("value must be a number of seconds")
            raw_parts = value.get("parts", [])
            if isinstance(raw_parts, dict):  # a bare hash, as a custom writer might send
                raw_parts = list(raw_parts.items())
            parts = self.decode(raw_parts, f"{where}['parts']")
            if not isinstance(parts, list) or not all(
                isinstance(p, list)
                and len(p) == 2
                and isinstance(p[0], str)
                and isinstance(p[1], (int, float))
                and not isinstance(p[1], bool)
                for p in parts
            ):
                raise ValueError("parts must be [name, amount] pairs")
            return Duration.of(seconds, ((str(k), v) for k, v in parts))
        if name == BIG_DECIMAL_SERIALIZER:
            text = _str(value, "value")
            try:
                return Decimal(text)
            except InvalidOperation:
                raise ValueError(f"not a decimal number: {text!r}") from None
        if name == MODULE_SERIALIZER:
            return RubyModule(_str(value, "value"))
        if name == RANGE_SERIALIZER:
            exclude = value.get("exclude_end", False)
            if not isinstance(exclude, bool):
                raise ValueError("exclude_end must be true or false")
            return RubyRange(
                self.decode(value.get("begin"), f"{where}['begin']"),
                self.decode(value.get("end"), f"{where}['end']"),
                exclude,
            )
        raise ActiveJobError(
            f"{where}: serializer {name} is not known to gokogeri; "
            "register a decoder for it with Codec.register"
        )

    # --- encoding ---

    def encode_arguments(
        self,
        args: Iterable[Any],
        kwargs: Mapping[str, Any] | None = None,
        target: RailsTarget | None = None,
    ) -> list[Any]:
        """Python arguments as ActiveJob's ``arguments``: keyword arguments become a last hash
        marked ``_aj_ruby2_keywords``, as Ruby's ``perform_later(*args, **kwargs)`` writes it."""
        target = target or RailsTarget()
        out = [self.encode(v, target, f"args[{i}]") for i, v in enumerate(args)]
        if kwargs:
            hashed = self._encode_hash(kwargs, target, "kwargs")
            hashed[RUBY2_KEYWORDS_KEY] = [str(k) for k in kwargs]
            out.append(hashed)
        return out

    def encode(self, value: Any, target: RailsTarget, where: str = "argument") -> Any:
        # Subclasses first: Symbol is a str, datetime a date, bool an int, Duration a timedelta.
        for python_type, name, encode in self._encoders:
            if isinstance(value, python_type):
                return {OBJECT_SERIALIZER_KEY: name, **encode(value)}
        if isinstance(value, Symbol):
            return {OBJECT_SERIALIZER_KEY: SYMBOL_SERIALIZER, "value": str(value)}
        if value is None or isinstance(value, (str, bool, int)):
            return value
        if isinstance(value, float):
            if not math.isfinite(value):
                raise ActiveJobSerializationError(f"{where} is {value!r}, which JSON cannot carry")
            return value
        if isinstance(value, datetime):
            return self._encode_time(value, target, where)
        if isinstance(value, date):
            return {OBJECT_SERIALIZER_KEY: DATE_SERIALIZER, "value": value.isoformat()}
        if isinstance(value, timedelta):
            return _encode_duration(value)
        if isinstance(value, Decimal):
            if not value.is_finite():
                raise ActiveJobSerializationError(
                    f"{where} is {value!r}, which Rails cannot read back"
                )
            if not target.has_big_decimal:
                return str(value)  # what Rails < 7.1 itself sends: perform gets a String
            return {OBJECT_SERIALIZER_KEY: BIG_DECIMAL_SERIALIZER, "value": str(value)}
        if isinstance(value, GlobalID):
            return {GLOBALID_KEY: value.uri}
        if isinstance(value, RubyModule):
            return {OBJECT_SERIALIZER_KEY: MODULE_SERIALIZER, "value": value.name}
        if isinstance(value, range):
            try:
                value = RubyRange.of(value)
            except ValueError as e:
                raise ActiveJobSerializationError(f"{where}: {e}") from None
        if isinstance(value, RubyRange):
            if not target.has_ranges:
                raise ActiveJobSerializationError(
                    f"{where}: Rails {target.rails} has no Range serializer (7.0+)"
                )
            return {
                OBJECT_SERIALIZER_KEY: RANGE_SERIALIZER,
                "begin": self.encode(value.begin, target, f"{where}.begin"),
                "end": self.encode(value.end, target, f"{where}.end"),
                "exclude_end": bool(value.exclude_end),
            }
        if isinstance(value, IndifferentHash):
            hashed = self._encode_hash(value, target, where)
            hashed[WITH_INDIFFERENT_ACCESS_KEY] = True
            return hashed
        if isinstance(value, dict):
            hashed = self._encode_hash(value, target, where)
            hashed[SYMBOL_KEYS_KEY] = [str(k) for k in value if isinstance(k, Symbol)]
            return hashed
        if isinstance(value, list):
            return [self.encode(v, target, f"{where}[{i}]") for i, v in enumerate(value)]
        raise ActiveJobSerializationError(
            f"{where} is a {type(value).__name__}, which has no ActiveJob form"
            + (" (use a list)" if isinstance(value, tuple) else "")
        )

    def _encode_hash(
        self, value: Mapping[Any, Any], target: RailsTarget, where: str
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ActiveJobSerializationError(
                    f"{where} has a {type(key).__name__} key {key!r}: only str (and Symbol) keys"
                )
            if key in RESERVED_KEYS:
                raise ActiveJobSerializationError(f"{where} uses ActiveJob's reserved key {key!r}")
            out[str(key)] = self.encode(item, target, f"{where}[{key!r}]")
        return out

    def _encode_time(self, value: datetime, target: RailsTarget, where: str) -> dict[str, Any]:
        if value.utcoffset() is None:
            raise ActiveJobSerializationError(
                f"{where} is a naive datetime: give it a tzinfo (Ruby times always have an offset)"
            )
        if isinstance(value, RubyDateTime):
            return {
                OBJECT_SERIALIZER_KEY: DATE_TIME_SERIALIZER,
                "value": format_iso8601(value, utc_z=False),
            }
        zone = value.zone if isinstance(value, TimeWithZone) else None
        if zone is None and isinstance(value.tzinfo, ZoneInfo):
            zone = value.tzinfo.key
        if zone is None and not isinstance(value, TimeWithZone):
            return {OBJECT_SERIALIZER_KEY: TIME_SERIALIZER, "value": format_iso8601(value)}
        out: dict[str, Any] = {
            OBJECT_SERIALIZER_KEY: TIME_WITH_ZONE_SERIALIZER,
            "value": format_iso8601(value),
        }
        if zone is not None and target.has_zone_names:
            out["time_zone"] = zone
        return out


def _encode_duration(value: timedelta) -> dict[str, Any]:
    if isinstance(value, Duration) and value.parts:
        seconds: PartValue = value.value
        parts = list(value.parts)
    else:
        micro = (value.days * 86400 + value.seconds) * 1_000_000 + value.microseconds
        seconds = micro // 1_000_000 if micro % 1_000_000 == 0 else micro / 1_000_000
        sign = -1 if micro < 0 else 1
        rest = abs(micro)
        parts = []
        for name, length in _DURATION_PARTS:
            n, rest = divmod(rest, length * 1_000_000)
            if n:
                parts.append((name, sign * n))
        if rest or not parts:
            parts.append(
                (
                    "seconds",
                    sign * (rest // 1_000_000 if rest % 1_000_000 == 0 else rest / 1_000_000),
                )
            )
    return {
        OBJECT_SERIALIZER_KEY: DURATION_SERIALIZER,
        "value": seconds,
        "parts": [[{OBJECT_SERIALIZER_KEY: SYMBOL_SERIALIZER, "value": k}, v] for k, v in parts],
    }


def _str(value: Mapping[str, Any], key: str) -> str:
    item = value.get(key)
    if not isinstance(item, str):
        raise ValueError(f"{key!r} must be a string")
    return item


def _short(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _as(cls: type[RubyDateTime], dt: datetime) -> RubyDateTime:
    return cls(dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second, dt.microsecond,
               tzinfo=dt.tzinfo, fold=dt.fold)  # fmt: skip


DEFAULT_CODEC = Codec()


def decode_arguments(
    arguments: Any, codec: Codec | None = None
) -> tuple[list[Any], dict[str, Any]]:
    """ActiveJob ``arguments`` -> (args, kwargs) with the default (or given) codec."""
    return (codec or DEFAULT_CODEC).decode_arguments(arguments)


def encode_arguments(
    args: Iterable[Any],
    kwargs: Mapping[str, Any] | None = None,
    target: RailsTarget | None = None,
    codec: Codec | None = None,
) -> list[Any]:
    """(args, kwargs) -> ActiveJob ``arguments`` for ``target`` (default Rails 7.2)."""
    return (codec or DEFAULT_CODEC).encode_arguments(args, kwargs, target)


# --- the envelope ---------------------------------------------------------------------------

_ENVELOPE_KEYS = (
    "job_class", "job_id", "provider_job_id", "queue_name", "priority", "arguments", "executions",
    "exception_executions", "locale", "timezone", "enqueued_at", "scheduled_at",
)  # fmt: skip


@dataclass
class Envelope:
    """ActiveJob's serialized job (``args[0]`` of the wrapper), typed.

    ``arguments`` stay in their wire form (decode them with :func:`decode_arguments`);
    ``executions`` is the count as enqueued (Ruby's ``perform`` sees it plus one: perform_now
    increments it in memory). ``extra`` keeps keys this version does not know, so a job read
    and written again loses nothing.
    """

    job_class: str
    job_id: str
    queue_name: str = "default"
    priority: int | None = None
    arguments: list[Any] = field(default_factory=list)
    executions: int = 0
    exception_executions: dict[str, int] = field(default_factory=dict)
    locale: str | None = "en"
    timezone: str | None = None
    enqueued_at: datetime | None = None
    scheduled_at: datetime | None = None
    provider_job_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_wire(cls, data: Any) -> Envelope:
        if not isinstance(data, dict):
            raise ActiveJobError(f"ActiveJob envelope must be an object, got {type(data).__name__}")

        def typed(key: str, types: type | tuple[type, ...], required: bool = False) -> Any:
            value = data.get(key)
            if value is None:
                if required:
                    raise ActiveJobError(f"ActiveJob envelope has no {key!r}")
                return None
            if isinstance(value, bool) and bool not in (
                types if isinstance(types, tuple) else (types,)
            ):
                raise ActiveJobError(f"ActiveJob envelope field {key!r} is {value!r}")
            if not isinstance(value, types):
                raise ActiveJobError(f"ActiveJob envelope field {key!r} is {_short(value)}")
            return value

        def stamp(key: str) -> datetime | None:
            text = typed(key, str)
            if text is None:
                return None
            try:
                return parse_iso8601(text)
            except ValueError as e:
                raise ActiveJobError(f"ActiveJob envelope field {key!r}: {e}") from None

        arguments = typed("arguments", list)
        executions = typed("executions", int)
        exception_executions = typed("exception_executions", dict)
        return cls(
            job_class=typed("job_class", str, required=True),
            job_id=typed("job_id", str, required=True),
            queue_name=typed("queue_name", str) or "default",
            priority=typed("priority", int),
            arguments=arguments if arguments is not None else [],
            executions=executions or 0,
            exception_executions=exception_executions if exception_executions is not None else {},
            locale=typed("locale", str),
            timezone=typed("timezone", str),
            enqueued_at=stamp("enqueued_at"),
            scheduled_at=stamp("scheduled_at"),
            provider_job_id=typed("provider_job_id", str),
            extra={k: v for k, v in data.items() if k not in _ENVELOPE_KEYS},
        )

    def to_wire(self, target: RailsTarget | None = None) -> dict[str, Any]:
        """The envelope as ``job.serialize`` of ``target``'s Rails writes it, key for key."""
        target = target or RailsTarget()
        digits = 9 if target.has_scheduled_at else 0  # 7.1 moved to iso8601(9)
        out: dict[str, Any] = {
            "job_class": self.job_class,
            "job_id": self.job_id,
            "provider_job_id": self.provider_job_id,
            "queue_name": self.queue_name,
            "priority": self.priority,
            "arguments": self.arguments,
            "executions": self.executions,
            "exception_executions": self.exception_executions,
            "locale": self.locale,
            "timezone": self.timezone,
            "enqueued_at": (
                format_iso8601(self.enqueued_at.astimezone(UTC), digits)
                if self.enqueued_at
                else None
            ),
        }
        if target.has_scheduled_at:
            out["scheduled_at"] = (
                format_iso8601(self.scheduled_at.astimezone(UTC), 9) if self.scheduled_at else None
            )
        out.update(self.extra)
        return out


def is_activejob(job: Job) -> bool:
    """Whether ``job`` is an ActiveJob wrapper job (by its Sidekiq class)."""
    return job.fields.get("class") in WRAPPERS


@dataclass
class ActiveJobCall:
    """A decoded ActiveJob job: its envelope and the Python arguments for ``perform``."""

    envelope: Envelope
    args: list[Any]
    kwargs: dict[str, Any]


def decode_job(job: Job, codec: Codec | None = None) -> ActiveJobCall:
    """The envelope and decoded arguments of a wrapper job; ActiveJobError if it is not one."""
    args = job.fields.get("args")
    if not isinstance(args, list) or len(args) != 1:
        raise ActiveJobError(
            f"job {job.fields.get('class')!r} is not an ActiveJob wrapper job: "
            "args must be exactly [envelope]"
        )
    envelope = Envelope.from_wire(args[0])
    positional, kwargs = decode_arguments(envelope.arguments, codec)
    return ActiveJobCall(envelope, positional, kwargs)


# --- running: worker adapters ---------------------------------------------------------------

PerformFunc = Callable[..., object]


class _ActiveJobWorkerBase:
    """Shared by the sync and async adapters: decoding and the call's arguments."""

    def __init__(
        self,
        func: PerformFunc,
        *,
        job_class: str | None = None,
        with_envelope: bool = False,
        with_context: bool = False,
        codec: Codec | None = None,
    ) -> None:
        if not callable(func):
            raise TypeError(f"{func!r} is not callable")
        self.func = func
        self.job_class = job_class
        self.with_envelope = with_envelope
        self.with_context = with_context
        self.codec = codec or DEFAULT_CODEC

    def _call_args(self, ctx: Context, job: Job) -> tuple[list[Any], dict[str, Any]]:
        call = decode_job(job, self.codec)
        if self.job_class is not None and call.envelope.job_class != self.job_class:
            # Rails runs envelope["job_class"], not "wrapped": never run this function for
            # another class that happened to be routed here.
            raise ActiveJobError(
                f"job_class {call.envelope.job_class!r} reached the worker for {self.job_class!r}"
            )
        lead: list[Any] = []
        if self.with_context:
            lead.append(ctx)
        if self.with_envelope:
            lead.append(call.envelope)
        return lead + call.args, call.kwargs

    def __repr__(self) -> str:
        name = getattr(self.func, "__qualname__", self.func)
        return f"{type(self).__name__}({name!r}, job_class={self.job_class!r})"


class SyncActiveJobWorker(_ActiveJobWorkerBase):
    """A gokogeri worker that runs ``func(*args, **kwargs)`` for an ActiveJob job."""

    def work(self, ctx: Context, job: Job) -> None:
        args, kwargs = self._call_args(ctx, job)
        self.func(*args, **kwargs)


class AsyncActiveJobWorker(_ActiveJobWorkerBase):
    """The same for ``async def`` functions: runs on the node's event loop."""

    async def work(self, ctx: Context, job: Job) -> None:
        args, kwargs = self._call_args(ctx, job)
        result = self.func(*args, **kwargs)
        if inspect.isawaitable(result):
            await result


def activejob_worker(
    func: PerformFunc,
    *,
    job_class: str | None = None,
    with_envelope: bool = False,
    with_context: bool = False,
    codec: Codec | None = None,
) -> SyncActiveJobWorker | AsyncActiveJobWorker:
    """Wrap ``func`` (the Python ``perform``) as a gokogeri worker for ActiveJob jobs.

    ``func`` is called as ``func([ctx,] [envelope,] *args, **kwargs)``: ``with_context``
    passes the gokogeri Context first, ``with_envelope`` the :class:`Envelope` next.
    ``job_class`` (when given) must match the envelope's job_class. An ``async def`` gives
    an async worker.
    """
    cls = AsyncActiveJobWorker if inspect.iscoroutinefunction(func) else SyncActiveJobWorker
    return cls(
        func,
        job_class=job_class,
        with_envelope=with_envelope,
        with_context=with_context,
        codec=codec,
    )


def register(
    router: Router,
    job_class: str,
    func: PerformFunc,
    *,
    with_envelope: bool = False,
    with_context: bool = False,
    codec: Codec | None = None,
) -> SyncActiveJobWorker | AsyncActiveJobWorker:
    """Register ``func`` on ``router`` as the Python side of the Rails job ``job_class``.

    The Router dispatches a wrapper job by its ``wrapped`` class to the worker registered under
    that name, so ``register(router, "WelcomeMailJob", send_welcome)`` receives Rails'
    ``WelcomeMailJob.perform_later(...)``.
    """
    worker = activejob_worker(
        func,
        job_class=job_class,
        with_envelope=with_envelope,
        with_context=with_context,
        codec=codec,
    )
    router.register(job_class, worker)
    return worker


def handle(
    router: Router,
    job_class: str,
    *,
    with_envelope: bool = False,
    with_context: bool = False,
    codec: Codec | None = None,
) -> Callable[[PerformFunc], PerformFunc]:
    """Decorator form of :func:`register`: ``@activejob.handle(router, "WelcomeMailJob")``."""

    def decorate(func: PerformFunc) -> PerformFunc:
        register(
            router,
            job_class,
            func,
            with_envelope=with_envelope,
            with_context=with_context,
            codec=codec,
        )
        return func

    return decorate


# --- enqueuing ------------------------------------------------------------------------------


def _epoch(at: datetime | float | int) -> float:
    if isinstance(at, datetime):
        if at.utcoffset() is None:
            raise ValueError("wait_until must be an aware datetime (or epoch seconds)")
        return at.timestamp()
    if isinstance(at, bool) or not isinstance(at, (int, float)):
        raise TypeError(f"wait_until must be a datetime or epoch seconds, got {type(at).__name__}")
    return float(at)


def build_job(
    job_class: str,
    args: Iterable[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    *,
    target: RailsTarget | None = None,
    queue: str = "default",
    priority: int | None = None,
    scheduled_at: float | None = None,
    job_id: str | None = None,
    locale: str | None = "en",
    timezone_name: str | None = "UTC",
    codec: Codec | None = None,
    now: float | None = None,
    sidekiq_options: Mapping[str, Any] | None = None,
) -> Job:
    """The wrapper job ``JobClass.set(queue:, priority:).perform_later(*args, **kwargs)`` of
    ``target``'s Rails pushes (without jid/created_at/enqueued_at, which the Enqueuer adds).

    ``scheduled_at`` (epoch seconds) only fills the envelope's scheduled_at (Rails 7.1+); push a
    scheduled job with ``Enqueuer.enqueue_at``. ``sidekiq_options`` are extra payload fields
    (``retry``, ``backtrace``, ...).
    """
    if not job_class or not isinstance(job_class, str):
        raise ValueError("job_class must be the Rails job's class name")
    target = target or RailsTarget()
    t = time.time() if now is None else now
    envelope = Envelope(
        job_class=job_class,
        job_id=job_id or str(uuid.uuid4()),
        queue_name=queue,
        priority=priority,
        arguments=encode_arguments(args, kwargs, target, codec),
        locale=locale,
        timezone=timezone_name,
        enqueued_at=datetime.fromtimestamp(t, UTC),
        scheduled_at=datetime.fromtimestamp(scheduled_at, UTC) if scheduled_at else None,
    )
    options = dict(sidekiq_options or {})
    retry = options.pop("retry", True)
    return Job(
        target.wrapper, queue, [envelope.to_wire(target)], retry=retry, wrapped=job_class, **options
    )


class ActiveJobClass:
    """The Python handle of one Rails job class: ``set(...)`` and ``perform_later(...)``.

    ``ActiveJobClient(enqueuer).job("WelcomeMailJob").set(wait=300).perform_later(42, locale="fr")``
    is Ruby's ``WelcomeMailJob.set(wait: 5.minutes).perform_later(42, locale: "fr")``.
    """

    def __init__(
        self,
        client: ActiveJobClient,
        name: str,
        *,
        queue: str = "default",
        priority: int | None = None,
        wait: float | timedelta | None = None,
        wait_until: datetime | float | None = None,
    ) -> None:
        self.client = client
        self.name = name
        self.queue = queue
        self.priority = priority
        self.wait = wait
        self.wait_until = wait_until

    def set(
        self,
        *,
        wait: float | timedelta | None = None,
        wait_until: datetime | float | None = None,
        queue: str | None = None,
        priority: int | None = None,
    ) -> ActiveJobClass:
        """A copy with ActiveJob's ``set`` options (``wait`` seconds or timedelta,
        ``wait_until`` an aware datetime or epoch seconds)."""
        if wait is not None and wait_until is not None:
            raise ValueError("give wait or wait_until, not both")
        return ActiveJobClass(
            self.client,
            self.name,
            queue=queue if queue is not None else self.queue,
            priority=priority if priority is not None else self.priority,
            wait=wait if wait is not None else (None if wait_until is not None else self.wait),
            wait_until=wait_until
            if wait_until is not None
            else (None if wait is not None else self.wait_until),
        )

    def scheduled_at(self, now: float | None = None) -> float | None:
        """Epoch seconds this job is due, or None for now (Rails: wait.from_now / wait_until)."""
        if self.wait is not None:
            wait = (
                self.wait.total_seconds() if isinstance(self.wait, timedelta) else float(self.wait)
            )
            return (time.time() if now is None else now) + wait
        if self.wait_until is not None:
            return _epoch(self.wait_until)
        return None

    def perform_later(self, *args: Any, **kwargs: Any) -> Envelope | None:
        """Enqueue; returns the envelope with ``provider_job_id`` = the Sidekiq jid (Ruby returns
        the job), or None if client middleware stopped the push."""
        return self.client.enqueue(self, args, kwargs)


class ActiveJobClient:
    """Enqueues ActiveJob jobs for a Rails app, through a gokogeri Enqueuer.

    ``rails``/``sidekiq`` name the versions that will run the jobs (see :class:`RailsTarget`);
    ``locale`` and ``timezone`` fill the envelope as ``I18n.locale`` and ``Time.zone`` would.
    """

    def __init__(
        self,
        enqueuer: Enqueuer,
        *,
        rails: str = "7.2",
        sidekiq: str = "7.3.2",
        locale: str | None = "en",
        timezone: str | None = "UTC",
        codec: Codec | None = None,
        sidekiq_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.enqueuer = enqueuer
        self.target = RailsTarget(rails, sidekiq)
        self.locale = locale
        self.timezone = timezone
        self.codec = codec
        self.sidekiq_options = dict(sidekiq_options or {})

    def job(
        self, name: str, *, queue: str = "default", priority: int | None = None
    ) -> ActiveJobClass:
        """The handle of Rails job ``name`` (its ``queue_as`` is ``queue``)."""
        return ActiveJobClass(self, name, queue=queue, priority=priority)

    def perform_later(self, job_class: str, /, *args: Any, **kwargs: Any) -> Envelope | None:
        return self.job(job_class).perform_later(*args, **kwargs)

    def enqueue(
        self, job: ActiveJobClass, args: Iterable[Any], kwargs: Mapping[str, Any]
    ) -> Envelope | None:
        now = time.time()
        at = job.scheduled_at(now)
        wire = build_job(
            job.name,
            args,
            kwargs,
            target=self.target,
            queue=job.queue,
            priority=job.priority,
            scheduled_at=at,
            locale=self.locale,
            timezone_name=self.timezone,
            codec=self.codec,
            now=now,
            sidekiq_options=self.sidekiq_options,
        )
        jid = self.enqueuer.enqueue(wire) if at is None else self.enqueuer.enqueue_at(wire, at)
        if jid is None:
            return None
        envelope = Envelope.from_wire(wire.args[0])
        envelope.provider_job_id = jid
        return envelope
