"""What generated ActiveJob job modules need at run time (schemas with ``"activejob": true``).

A plain job's args are JSON on the wire, so ``gokogeri.codegen.runtime`` converts between
Python values and JSON. An ActiveJob job's arguments are Ruby values serialized by ActiveJob
(``_aj_serialized``, ``_aj_globalid``, keyword hashes...), and ``gokogeri.activejob`` already
translates those both ways. The specs here sit on the Python side of that codec: on enqueue
they check the caller's values and bring them to the form the codec writes as the Ruby type
the schema names (a ``str`` for a ``ruby-symbol`` becomes a Symbol, a ``datetime`` for a
``ruby-datetime`` a RubyDateTime); in the worker they check what the codec decoded and hand
``perform`` the typed values. Plain JSON kinds (integers, strings, arrays, objects...) reuse
the checks of ``gokogeri.codegen.runtime``, so a bad value is worded the same way.

Like the plain runtime, this module imports only the standard library and gokogeri.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Final
from zoneinfo import ZoneInfo

from gokogeri import activejob
from gokogeri.job import Job
from gokogeri.worker import Context

from . import runtime
from .runtime import UNSET, Arg, ArgumentError, Spec, _Invalid

__all__ = [
    "SPECS",
    "AsyncWorkerAdapter",
    "BigDecimal",
    "Call",
    "Date",
    "Duration",
    "GlobalID",
    "Map",
    "Module",
    "Object",
    "RubyDateTime",
    "Str",
    "Symbol",
    "Time",
    "TimeWithZone",
    "WorkerAdapter",
    "build",
]


def _describe(value: Any) -> str:
    """runtime's wording, plus the Ruby value types (a Symbol is a str, a datetime a date)."""
    if isinstance(value, activejob.Symbol):
        return "a Symbol"
    if isinstance(value, (datetime, date, timedelta, Decimal)) or not isinstance(
        value, (str, int, float, list, tuple, dict, type(None))
    ):
        return f"a {type(value).__name__}"
    return runtime._describe(value)


class Str(runtime.Str):
    """A Ruby String: a Symbol is refused (Ruby's ``case`` tells them apart)."""

    __slots__ = ()

    def encode(self, value: Any, path: str) -> Any:
        if type(value) is not str:
            raise _Invalid(path, f"must be a string, got {_describe(value)}")
        return super().encode(value, path)

    decode = encode


def _aware(value: Any, path: str, what: str) -> datetime:
    if not isinstance(value, datetime):
        raise _Invalid(path, f"must be {what}, got {_describe(value)}")
    if value.utcoffset() is None:
        raise _Invalid(path, "must be a timezone-aware datetime (Ruby times always have an offset)")
    return value


class Time(Spec):
    """format date-time: a Ruby Time (an aware datetime). A TimeWithZone or DateTime that Rails
    sends (``Time.current`` is one) is a point in time too, and is accepted as it is."""

    __slots__ = ()

    def encode(self, value: Any, path: str) -> Any:
        return _aware(value, path, "a datetime")

    decode = encode


class RubyDateTime(Spec):
    """format ruby-datetime: a Ruby DateTime; any aware datetime is sent as one."""

    __slots__ = ()

    def encode(self, value: Any, path: str) -> Any:
        dt = _aware(value, path, "a datetime")
        if isinstance(dt, activejob.RubyDateTime):
            return dt
        return activejob.RubyDateTime(
            dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second, dt.microsecond,
            tzinfo=dt.tzinfo, fold=dt.fold,
        )  # fmt: skip

    decode = encode


class TimeWithZone(Spec):
    """format ruby-time-with-zone: an ActiveSupport::TimeWithZone. A datetime with a ZoneInfo
    keeps its zone name; one with a fixed offset lands in the Rails app's Time.zone."""

    __slots__ = ()

    def encode(self, value: Any, path: str) -> Any:
        dt = _aware(value, path, "a datetime")
        if isinstance(dt, activejob.TimeWithZone):
            return dt
        zone = dt.tzinfo.key if isinstance(dt.tzinfo, ZoneInfo) else None
        return activejob.TimeWithZone.of(dt, zone)

    decode = encode


class Date(Spec):
    """format date: a Ruby Date (a datetime, Ruby's DateTime included, is refused)."""

    __slots__ = ()

    def encode(self, value: Any, path: str) -> Any:
        if not isinstance(value, date) or isinstance(value, datetime):
            raise _Invalid(path, f"must be a date, got {_describe(value)}")
        return value

    decode = encode


class Duration(Spec):
    """format duration: an ActiveSupport::Duration (a timedelta; decoded as a Duration)."""

    __slots__ = ()

    def encode(self, value: Any, path: str) -> Any:
        if not isinstance(value, timedelta):
            raise _Invalid(path, f"must be a timedelta, got {_describe(value)}")
        return value

    def decode(self, value: Any, path: str) -> Any:
        self.encode(value, path)
        if isinstance(value, activejob.Duration):
            return value
        return activejob.Duration.of(value.total_seconds(), (("seconds", value.total_seconds()),))


class BigDecimal(Spec):
    """format decimal: a BigDecimal. Rails before 7.1 has no BigDecimal serializer and sends
    the number as a string, which is read back as a Decimal."""

    __slots__ = ()

    def encode(self, value: Any, path: str) -> Any:
        if not isinstance(value, Decimal):
            raise _Invalid(path, f"must be a Decimal, got {_describe(value)}")
        if not value.is_finite():
            raise _Invalid(path, f"must be a finite Decimal, got {value}")
        return value

    def decode(self, value: Any, path: str) -> Any:
        if type(value) is str:
            try:
                value = Decimal(value)
            except InvalidOperation:
                raise _Invalid(
                    path, "must be a decimal number, got a string that is not one"
                ) from None
        return self.encode(value, path)


class Symbol(Spec):
    """format ruby-symbol: a Ruby Symbol. Enqueue takes any str; perform gets a Symbol, and a
    String sent where the contract says Symbol is refused."""

    __slots__ = ()

    def encode(self, value: Any, path: str) -> Any:
        if not isinstance(value, str):
            raise _Invalid(path, f"must be a Symbol (a str), got {_describe(value)}")
        return activejob.Symbol(value)

    def decode(self, value: Any, path: str) -> Any:
        if not isinstance(value, activejob.Symbol):
            raise _Invalid(path, f"must be a Symbol, got {_describe(value)}")
        return value


class _Instance(Spec):
    __slots__ = ()
    cls: type = object
    what = ""

    def encode(self, value: Any, path: str) -> Any:
        if not isinstance(value, self.cls):
            raise _Invalid(path, f"must be {self.what}, got {_describe(value)}")
        return value

    decode = encode


class GlobalID(_Instance):
    """format globalid: a GlobalID (``gid://app/Model/id``): Ruby's perform gets the record."""

    __slots__ = ()
    cls = activejob.GlobalID
    what = "a GlobalID"


class Module(_Instance):
    """format ruby-module: a Ruby Module or Class, by name (never resolved in Python)."""

    __slots__ = ()
    cls = activejob.RubyModule
    what = "a RubyModule"


def _plain_keys(value: Any, path: str, what: str) -> dict[str, Any]:
    """A Ruby Hash as ActiveJob decodes it (a dict, IndifferentHash, or Symbol keys) -> a dict
    with str keys, so TypedDict lookups and equality behave as for any dict."""
    if not isinstance(value, dict):
        raise _Invalid(path, f"must be an object{what}, got {_describe(value)}")
    out: dict[str, Any] = {}
    for k, v in value.items():
        if not isinstance(k, str):
            raise _Invalid(path, f"keys must be strings, got {_describe(k)}")
        out[str(k)] = v
    return out


class Object(runtime.Object):
    """An object with properties: a Ruby Hash with string keys (symbol keys are read too)."""

    __slots__ = ()

    def encode(self, value: Any, path: str) -> Any:
        return super().encode(_plain_keys(value, path, f" ({self.name})"), path)

    def decode(self, value: Any, path: str) -> Any:
        return super().decode(_plain_keys(value, path, f" ({self.name})"), path)


class Map(runtime.Map):
    __slots__ = ()

    def encode(self, value: Any, path: str) -> Any:
        return super().encode(_plain_keys(value, path, ""), path)

    def decode(self, value: Any, path: str) -> Any:
        return super().decode(_plain_keys(value, path, ""), path)


class Call:
    """A Rails job's ``perform`` signature: positional arguments, then keyword arguments.

    ``positional`` checks the leading arguments exactly as a plain job's args (UNSET, defaults,
    minItems); ``keywords`` (an Object spec, or None when ``perform`` takes none) checks the
    keyword arguments, which the schema writes as a trailing object argument at index
    ``len(positional)`` named ``keywords_name``.
    """

    __slots__ = ("job_class", "keywords", "keywords_name", "positional")

    def __init__(
        self,
        job_class: str,
        args: tuple[Arg, ...],
        min_items: int,
        keywords: Object | None = None,
        keywords_name: str = "keywords",
    ) -> None:
        self.job_class = job_class
        self.positional = runtime.Args(job_class, args, min(min_items, len(args)))
        self.keywords = keywords
        self.keywords_name = keywords_name

    def _kw_error(self, path: str, rule: str) -> ArgumentError:
        return ArgumentError(
            self.job_class, len(self.positional.args), self.keywords_name, path, rule
        )

    def encode(
        self, values: Sequence[Any], kwargs: Mapping[str, Any] | None = None
    ) -> tuple[list[Any], dict[str, Any]]:
        """Checked (args, kwargs) for ActiveJobClass.perform_later; UNSET keywords are left out."""
        args = self.positional.encode(values)
        given = {k: v for k, v in (kwargs or {}).items() if v is not UNSET}
        if self.keywords is None:
            if given:
                raise self._kw_error("", f"{self.job_class}#perform takes no keyword arguments")
            return args, {}
        try:
            return args, self.keywords.encode(given, "")
        except _Invalid as e:
            raise self._kw_error(e.path, e.rule) from None

    def decode(
        self, args: list[Any], kwargs: Mapping[str, Any]
    ) -> tuple[list[Any], dict[str, Any]]:
        """The decoded ActiveJob arguments checked and typed: one value per positional argument
        (defaults and UNSET filled in) and one per keyword (UNSET for one left out)."""
        values = self.positional.decode(args)
        if self.keywords is None:
            if kwargs:
                raise self._kw_error(
                    "", f"{self.job_class}#perform takes no keyword arguments, got {len(kwargs)}"
                )
            return values, {}
        try:
            decoded: dict[str, Any] = self.keywords.decode(dict(kwargs), "")
        except _Invalid as e:
            raise self._kw_error(e.path, e.rule) from None
        for key in self.keywords.props:
            decoded.setdefault(key, UNSET)
        return values, decoded

    def decode_job(self, job: Job) -> tuple[activejob.Envelope, list[Any], dict[str, Any]]:
        """A wrapper job -> (envelope, args, kwargs); refuses another job class, as Rails runs
        ``job_class`` from the envelope whatever the wrapper says."""
        call = activejob.decode_job(job)
        if call.envelope.job_class != self.job_class:
            raise activejob.ActiveJobError(
                f"job_class {call.envelope.job_class!r} reached the worker for {self.job_class!r}"
            )
        args, kwargs = self.decode(call.args, call.kwargs)
        return call.envelope, args, kwargs


def build(handle: activejob.ActiveJobClass, args: list[Any], kwargs: dict[str, Any]) -> Job:
    """The wrapper job ``handle.perform_later(*args, **kwargs)`` would push, built only."""
    client = handle.client
    return activejob.build_job(
        handle.name,
        args,
        kwargs,
        target=client.target,
        queue=handle.queue,
        priority=handle.priority,
        scheduled_at=handle.scheduled_at(),
        locale=client.locale,
        timezone_name=client.timezone,
        codec=client.codec,
        sidekiq_options=client.sidekiq_options,
    )


class _Hooks:
    """The node's hook contract (retry_in(count, exc, job), retries_exhausted(job, exc)) adapted
    to the generated typed hooks, which take the job's decoded arguments. A payload that breaks
    the contract gets Sidekiq's default backoff and no retries_exhausted call."""

    __slots__ = ("call", "worker")

    def __init__(self, worker: Any, call: Call) -> None:
        self.worker = worker
        self.call = call

    def _decoded(self, job: Job) -> tuple[list[Any], dict[str, Any]] | None:
        try:
            _, args, kwargs = self.call.decode_job(job)
        except (ArgumentError, activejob.ActiveJobError):
            return None
        return args, kwargs

    def retry_in(self, count: int, exc: BaseException, job: Job) -> Any:
        decoded = self._decoded(job)
        if decoded is None:
            return None
        return self.worker.retry_in(count, exc, *decoded[0], **decoded[1])

    def retries_exhausted(self, job: Job, exc: BaseException) -> None:
        decoded = self._decoded(job)
        if decoded is not None:
            self.worker.retries_exhausted(*decoded[0], exc, **decoded[1])

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.worker!r})"


class WorkerAdapter(_Hooks):
    """What a generated ActiveJob worker's register() puts on the Router (sync work)."""

    __slots__ = ()

    def work(self, ctx: Context, job: Job) -> None:
        self.worker.work(ctx, job)


class AsyncWorkerAdapter(_Hooks):
    """The same for async workers: work runs on the node's event loop."""

    __slots__ = ()

    async def work(self, ctx: Context, job: Job) -> None:
        await self.worker.work(ctx, job)


# format -> the spec constructor the generated code calls (render.py writes these names).
SPECS: Final[dict[str, str]] = {
    "date-time": "Time",
    "ruby-datetime": "RubyDateTime",
    "ruby-time-with-zone": "TimeWithZone",
    "date": "Date",
    "duration": "Duration",
    "decimal": "BigDecimal",
    "ruby-symbol": "Symbol",
    "globalid": "GlobalID",
    "ruby-module": "Module",
}
