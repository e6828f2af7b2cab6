"""Compact JSON encoding and decoding without the json module's per-call setup.

json.dumps builds a new C encoder on every call and json.loads goes through
two Python wrappers and a regex; for the small payloads a job system moves
that setup costs more than the work (a third of enqueue_many's time). These
keep one C encoder and one C scanner and call them directly, falling back to
the documented API where CPython's C accelerators are missing.

Output is the same as ``json.dumps(obj, ensure_ascii=False,
separators=(",", ":"), allow_nan=False)``: compact, like Ruby's JSON.generate.
"""

from __future__ import annotations

import json
import json.decoder
import json.encoder
from collections.abc import Callable
from typing import Any


def _refuse(obj: Any) -> Any:
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


_fallback_encode = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False
).encode
# CPython's C accelerators; typeshed does not declare them, hence getattr.
_make: Any = getattr(json.encoder, "c_make_encoder", None)
_basestring: Any = getattr(json.encoder, "c_encode_basestring", None)

dumps: Callable[[Any], str]
if _make is not None and _basestring is not None:
    # markers=None: no cycle check (a cycle ends in RecursionError instead).
    _c_encode = _make(None, _refuse, _basestring, None, ":", ",", False, False, False)

    def dumps(obj: Any) -> str:
        if isinstance(obj, str):
            return str(_basestring(obj))
        try:
            return "".join(_c_encode(obj, 0))
        except RecursionError:
            raise ValueError("nesting is too deep to encode") from None

else:  # pragma: no cover - other Pythons
    dumps = _fallback_encode

def _refuse_constant(name: str) -> Any:
    # Ruby's JSON.parse refuses NaN and Infinity, and nothing could encode them back.
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (_INF, -_INF):
        # 1e400 would come back as Infinity, which no JSON encoder can write.
        raise ValueError(f"number {text[:40]} is out of range for a double")
    return value


_INF = float("inf")
_decoder = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)
_scan_once: Any = getattr(_decoder, "scan_once")  # noqa: B009  (set in __init__, untyped)


def loads(text: str | bytes) -> Any:
    """Parse one JSON document (bytes are read as UTF-8).

    Raises ValueError for anything that is not one strict JSON document:
    invalid UTF-8, NaN/Infinity, numbers out of double range, and nesting too
    deep for the parser (which would otherwise surface as RecursionError).
    """
    try:
        if isinstance(text, (bytes, bytearray)):
            text = text.decode("utf-8")
        try:
            obj, end = _scan_once(text, 0)
        except StopIteration:
            end = -1
        if end != len(text):
            # Leading/trailing whitespace is legal JSON: let the full parser decide.
            return _decoder.decode(text)
        return obj
    except RecursionError:
        raise ValueError("JSON nesting is too deep") from None
