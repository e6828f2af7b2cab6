"""The Sidekiq job payload.

A Job is a thin typed view over the payload's ordered field dict. Every field
that Ruby (or another port) wrote survives decoding and re-encoding unchanged,
including its JSON type: Sidekiq 8 writes integer milliseconds where 6 and 7
write float seconds, and 8 reads a float as seconds and an integer as
milliseconds, so turning one form into the other would shift a time by a
factor of 1000.

Encoding is compact (``,`` and ``:`` separators, UTF-8 unescaped), which is the
byte form Ruby's JSON.generate produces, so a Ruby payload decoded and encoded
again here comes out byte for byte the same.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from typing import Any, Literal

from gokogeri import jsonc
from gokogeri.errors import InvalidArgumentError, InvalidPayloadError

TimestampFormat = Literal["float", "ms"]

# Sidekiq's DEFAULT_MAX_RETRY_ATTEMPTS: retry: true means 25 retries.
DEFAULT_MAX_RETRIES = 25

_encode = jsonc.dumps
_decode = jsonc.loads


def new_jid() -> str:
    """12 random bytes as 24 lowercase hex characters, like SecureRandom.hex(12)."""
    return os.urandom(12).hex()


def now_stamp(fmt: TimestampFormat, now: float | None = None) -> float | int:
    """The current time in the wire form ``fmt``: float seconds or integer ms."""
    t = time.time() if now is None else now
    return int(t * 1000) if fmt == "ms" else t


def form_of(value: Any, default: TimestampFormat) -> TimestampFormat:
    """The wire form of a timestamp value: an int is ms, a float seconds; else ``default``."""
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return "ms"
    if isinstance(value, float):
        return "float"
    return default


def restamp(existing: Any, fmt: TimestampFormat, now: float | None = None) -> float | int:
    """A new timestamp for a field that may already exist.

    The field keeps the JSON type it already has (an int stays integer ms, a
    float stays float seconds); only a field that is new takes ``fmt``.
    """
    return now_stamp(form_of(existing, fmt), now)


def stamp_format(fields: Mapping[str, Any], default: TimestampFormat) -> TimestampFormat:
    """The timestamp form a job already uses (from created_at), else ``default``.

    New time fields follow the job's own form, so a job Sidekiq 8 created in
    integer ms keeps integer ms throughout, whichever node touches it.
    """
    return form_of(fields.get("created_at"), default)


def stamp_to_seconds(value: Any) -> float | None:
    """Read a wire timestamp the way Sidekiq 8 does: float = seconds, int = ms."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, int):
        return value / 1000.0
    return value


def check_args(args: Any) -> list[Any]:
    """Refuse anything that Ruby's JSON would not give back unchanged.

    Sidekiq 7+ raises on the same set (strict_args!): only strings, integers,
    finite floats, booleans, nil, arrays and objects with string keys. Tuples
    are refused too: they would come back from Ruby as lists.
    """
    if not isinstance(args, list):
        raise InvalidArgumentError(f"job args must be a list, got {type(args).__name__}")
    for i, value in enumerate(args):
        _check_value(value, f"args[{i}]")
    return args


def _check_value(value: Any, where: str) -> None:
    t = type(value)
    if t is str or t is int or t is bool or value is None:
        return
    if t is float:
        if not math.isfinite(value):
            raise InvalidArgumentError(f"{where} is {value!r}: NaN and Infinity are not valid JSON")
        return
    if t is list:
        for i, item in enumerate(value):
            _check_value(item, f"{where}[{i}]")
        return
    if t is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise InvalidArgumentError(
                    f"{where} has a key {key!r} of type {type(key).__name__}; "
                    "JSON object keys must be str"
                )
            _check_value(item, f"{where}[{key!r}]")
        return
    raise InvalidArgumentError(
        f"{where} is a {t.__name__}, which is not JSON-native "
        "(allowed: str, int, float, bool, None, list, dict with str keys)"
    )


class Job:
    """One Sidekiq job.

    ``Job(class_name="HardJob", queue="default", args=[1, "x"])``. Fields other
    than the typed ones go in ``**options`` (``tags=["a"]``, ``backtrace=True``)
    and are kept as they are; ``job["bid"]`` reads any field.
    """

    __slots__ = ("fields", "raw")

    fields: dict[str, Any]
    # The exact bytes this job was read from Redis as, or None for a new job.
    # Requeue and acknowledgement use these bytes, never a re-encoding.
    raw: bytes | None

    def __init__(
        self,
        class_name: str,
        queue: str = "default",
        args: list[Any] | None = None,
        *,
        jid: str | None = None,
        retry: bool | int = True,
        created_at: float | int | None = None,
        enqueued_at: float | int | None = None,
        **options: Any,
    ) -> None:
        fields: dict[str, Any] = {
            "class": class_name,
            "queue": queue,
            "args": [] if args is None else args,
            "retry": retry,
        }
        if jid is not None:
            fields["jid"] = jid
        if created_at is not None:
            fields["created_at"] = created_at
        if enqueued_at is not None:
            fields["enqueued_at"] = enqueued_at
        fields.update(options)
        self.fields = fields
        self.raw = None

    # --- construction from the wire ---

    @classmethod
    def from_fields(cls, fields: dict[str, Any], raw: bytes | None = None) -> Job:
        """Wrap a decoded payload dict after checking the fields we rely on."""
        _validate(fields)
        if "args" not in fields:
            # The Go original omitted empty args; Sidekiq's Client.push then
            # refuses the job, so every job we write carries the field.
            fields["args"] = []
        job = cls.__new__(cls)
        job.fields = fields
        job.raw = raw
        return job

    @classmethod
    def decode(cls, payload: bytes | str) -> Job:
        """Parse a payload exactly as Sidekiq 6, 7 or 8 writes it."""
        try:
            fields = _decode(payload)
        except (ValueError, UnicodeDecodeError) as e:
            raise InvalidPayloadError(f"job payload is not valid JSON: {e}") from None
        if not isinstance(fields, dict):
            raise InvalidPayloadError(
                f"job payload must be a JSON object, got {type(fields).__name__}"
            )
        raw = payload.encode() if isinstance(payload, str) else payload
        return cls.from_fields(fields, raw)

    def encode(self) -> str:
        """Compact JSON, as Ruby writes it; every field in its original order."""
        return _encode(self.fields)

    def copy(self) -> Job:
        """A job with its own field dict (args are shared, as they are data)."""
        job = Job.__new__(Job)
        job.fields = dict(self.fields)
        job.raw = self.raw
        return job

    # --- typed fields ---

    @property
    def class_name(self) -> str:
        return str(self.fields["class"])

    @class_name.setter
    def class_name(self, value: str) -> None:
        self.fields["class"] = value

    @property
    def queue(self) -> str:
        return str(self.fields.get("queue") or "default")

    @queue.setter
    def queue(self, value: str) -> None:
        self.fields["queue"] = value

    @property
    def args(self) -> list[Any]:
        args: list[Any] = self.fields["args"]
        return args

    @args.setter
    def args(self, value: list[Any]) -> None:
        self.fields["args"] = value

    @property
    def jid(self) -> str | None:
        return self.fields.get("jid")

    @jid.setter
    def jid(self, value: str | None) -> None:
        if value is None:
            self.fields.pop("jid", None)
        else:
            self.fields["jid"] = value

    @property
    def retry(self) -> bool | int:
        """True (25 retries), False (drop on failure) or N (0 = straight to dead).

        A payload without the field means Sidekiq's default, True.
        """
        value = self.fields.get("retry", True)
        return value if isinstance(value, (bool, int)) else True

    @retry.setter
    def retry(self, value: bool | int) -> None:
        self.fields["retry"] = value

    @property
    def created_at(self) -> float | int | None:
        """The raw wire value: float seconds (Sidekiq <= 7) or int ms (Sidekiq 8)."""
        return self.fields.get("created_at")

    @created_at.setter
    def created_at(self, value: float | int | None) -> None:
        self._set_optional("created_at", value)

    @property
    def enqueued_at(self) -> float | int | None:
        return self.fields.get("enqueued_at")

    @enqueued_at.setter
    def enqueued_at(self, value: float | int | None) -> None:
        self._set_optional("enqueued_at", value)

    @property
    def retry_count(self) -> int | None:
        return self.fields.get("retry_count")

    @property
    def retry_queue(self) -> str | None:
        return self.fields.get("retry_queue")

    @property
    def error_class(self) -> str | None:
        return self.fields.get("error_class")

    @property
    def error_message(self) -> str | None:
        return self.fields.get("error_message")

    @property
    def failed_at(self) -> float | int | None:
        return self.fields.get("failed_at")

    @property
    def retried_at(self) -> float | int | None:
        return self.fields.get("retried_at")

    @property
    def tags(self) -> list[Any] | None:
        return self.fields.get("tags")

    def created_at_seconds(self) -> float | None:
        """created_at as epoch seconds, whichever form it was written in."""
        return stamp_to_seconds(self.fields.get("created_at"))

    def enqueued_at_seconds(self) -> float | None:
        return stamp_to_seconds(self.fields.get("enqueued_at"))

    # --- any field ---

    def __getitem__(self, key: str) -> Any:
        return self.fields[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.fields[key] = value

    def __contains__(self, key: object) -> bool:
        return key in self.fields

    def get(self, key: str, default: Any = None) -> Any:
        return self.fields.get(key, default)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Job) and other.fields == self.fields

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        # Never include args: they carry personal data and reprs end up in logs.
        return (
            f"Job(class_name={self.fields.get('class')!r}, queue={self.queue!r}, jid={self.jid!r})"
        )

    def _set_optional(self, key: str, value: Any) -> None:
        if value is None:
            self.fields.pop(key, None)
        else:
            self.fields[key] = value


# Exact types a decoded payload's checked fields have in the usual case.
_RETRY_TYPES = frozenset({bool, int})
_TIME_TYPES = frozenset({float, int})


def _validate(fields: Mapping[str, Any]) -> None:
    """Refuse a payload whose fields we rely on have the wrong types.

    Runs once per job before it starts: the common shape (what Sidekiq and
    gokogeri write, decoded by jsonc, so exact types) is recognised in one
    expression; anything else gets the checks that name the bad field.
    """
    get = fields.get
    cls = get("class")
    queue = get("queue")
    jid = get("jid")
    if (
        type(cls) is str
        and cls
        and type(get("args", _EMPTY)) is list
        and (queue is None or type(queue) is str)
        and (jid is None or type(jid) is str)
        and type(get("retry", True)) in _RETRY_TYPES
        and type(get("created_at", 0)) in _TIME_TYPES
        and type(get("enqueued_at", 0)) in _TIME_TYPES
        and "failed_at" not in fields
        and "retried_at" not in fields
    ):
        return
    _validate_slow(fields)


_EMPTY: list[Any] = []


def _validate_slow(fields: Mapping[str, Any]) -> None:
    cls = fields.get("class")
    if not isinstance(cls, str) or not cls:
        raise InvalidPayloadError(
            f"job payload field 'class' must be a non-empty string, got {cls!r}"
        )
    if "args" in fields and not isinstance(fields["args"], list):
        raise InvalidPayloadError(
            f"job payload field 'args' must be an array, got {type(fields['args']).__name__}"
        )
    queue = fields.get("queue")
    if queue is not None and not isinstance(queue, str):
        raise InvalidPayloadError(f"job payload field 'queue' must be a string, got {queue!r}")
    jid = fields.get("jid")
    if jid is not None and not isinstance(jid, str):
        raise InvalidPayloadError(f"job payload field 'jid' must be a string, got {jid!r}")
    retry = fields.get("retry")
    if retry is not None and not isinstance(retry, (bool, int)):
        raise InvalidPayloadError(
            f"job payload field 'retry' must be true, false or an integer, got {retry!r}"
        )
    for key in ("created_at", "enqueued_at", "failed_at", "retried_at"):
        value = fields.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise InvalidPayloadError(f"job payload field {key!r} must be a number, got {value!r}")
