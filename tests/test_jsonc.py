"""jsonc: the fast paths give exactly what the json module gives."""

from __future__ import annotations

import json
import math

import pytest

from gokogeri import jsonc

SAMPLES = [
    [1, "ü ✓", {"k": [1.5, None, True]}],
    "a\u0000b\"c\\d\n",
    {"big": 2**70, "tiny": 1e-300, "neg": -0.0, "f": 0.1},
    [],
    {},
    [[[[]]]],
]


@pytest.mark.parametrize("obj", SAMPLES)
def test_dumps_matches_json_compact(obj: object) -> None:
    assert jsonc.dumps(obj) == json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    assert jsonc.loads(jsonc.dumps(obj)) == obj
    assert jsonc.loads(jsonc.dumps(obj).encode()) == obj


@pytest.mark.parametrize("bad", [[math.nan], [math.inf], [{1, 2}], [b"x"], [object()]])
def test_dumps_refuses_what_json_refuses(bad: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        jsonc.dumps(bad)


@pytest.mark.parametrize("text", ["", "[1,", '{"a":1}x', "nul", b"\xff"])
def test_loads_refuses_invalid_documents(text: str | bytes) -> None:
    with pytest.raises(ValueError):
        jsonc.loads(text)


def test_loads_accepts_surrounding_whitespace() -> None:
    assert jsonc.loads('  {"a": 1}\n') == {"a": 1}
