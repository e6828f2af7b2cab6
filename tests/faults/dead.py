"""Reading the dead set back: which payload each entry is, and why it died."""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, cast

import redis as redispy

from gokogeri.errors import InvalidPayloadError
from gokogeri.job import Job
from tests.faults.fuzz import tokens_in


@dataclass
class DeadEntry:
    member: bytes
    tokens: list[str]
    # "error_class: error_message"; for raw bytes, why they cannot be a job;
    # None if the entry gives no reason at all.
    reason: str | None
    fields: dict[str, Any] | None = field(default=None, repr=False)


def _refuse(name: str) -> object:
    raise ValueError(f"{name} is not JSON")  # as Ruby's JSON.parse


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text} is out of range")
    return value


def parse(member: bytes) -> dict[str, Any] | None:
    """The entry as a JSON object, or None if it is not one (raw bytes kept as they came)."""
    try:
        # Strict UTF-8 first: json.loads(bytes) lets encoded surrogates through.
        obj = json.loads(member.decode("utf-8"), parse_constant=_refuse, parse_float=_finite)
    except (ValueError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None


def reason_of(fields: dict[str, Any] | None) -> str | None:
    """Sidekiq's Web UI shows error_class and error_message for a dead job: the reason."""
    if fields is None:
        return None
    cls = fields.get("error_class")
    if not isinstance(cls, str) or not cls:
        return None
    msg = fields.get("error_message")
    return f"{cls}: {msg}" if isinstance(msg, str) else cls


def raw_reason(member: bytes) -> str | None:
    """Sidekiq keeps a payload that is not a JSON object as its raw bytes, with
    no error fields (its Web UI shows them as the args of an invalid job). The
    reason of such an entry is what decoding it says; an entry that decodes
    as a job carries no reason at all."""
    try:
        Job.decode(member)
    except InvalidPayloadError as e:
        return f"raw: {e}"
    return None


def read(r: redispy.Redis, key: str = "dead", batch: int = 500) -> list[DeadEntry]:
    out: list[DeadEntry] = []
    total = int(r.zcard(key))
    for start in range(0, total, batch):
        for member in cast(list[bytes], r.zrange(key, start, start + batch - 1)):
            fields = parse(member)
            reason = reason_of(fields) if fields is not None else raw_reason(member)
            out.append(DeadEntry(member, tokens_in(member), reason, fields))
    return out


def error_classes(entries: list[DeadEntry]) -> Counter[str]:
    return Counter((e.reason or "<no reason>").split(":", 1)[0] for e in entries)


def raw_kept(entries: list[DeadEntry]) -> int:
    return sum(1 for e in entries if e.reason is not None and e.reason.startswith("raw: "))
