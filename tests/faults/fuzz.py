"""Hostile payloads for the fuzz run, each carrying a unique token.

Every bad payload contains its token (``fz000123zf``, or ``31337000123`` in a
bare number) so its dead-set entry can be found and counted whatever the
runtime wraps around the raw bytes. The dead set is a sorted set, so equal
payloads would collapse into one entry; the tokens also keep every payload
distinct. Payloads that quote values carry ``SECRET`` so a test can check no
log line repeats them.

Kinds: deep nesting (100,000 levels of arrays and objects), NaN / Infinity /
1e400, invalid UTF-8 and lone surrogates, non-objects and truncated JSON,
missing and wrong-typed fields, 5 MB payloads, and well-formed jobs whose class
names carry control characters, escape sequences and code-like strings (these
decode, fail as an unknown class, and with ``retry: 0`` go to the dead set).
"""

from __future__ import annotations

import json
import random
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from gokogeri.job import Job, new_jid

DEPTH = 100_000
BIG = 5 * 1024 * 1024
TOKEN_RE = re.compile(rb"fz\d{6}zf|31337\d{6}")
# A class name with this after a newline would forge a log line if unescaped.
FORGED = "FORGED-LINE"


@dataclass
class Bad:
    token: str
    kind: str
    raw: bytes


def _tok(i: int) -> str:
    return f"fz{i:06d}zf"


def _obj(tok: str, body: str) -> bytes:
    return ('{"fz":"' + tok + '",' + body + "}").encode()


# Each maker turns (index, token, rng) into payload bytes.
Maker = Callable[[int, str, random.Random], bytes]


def deep_args(i: int, tok: str, rng: random.Random) -> bytes:
    return _obj(tok, f'"class":"Work","jid":"{tok}","args":' + "[" * DEPTH + "]" * DEPTH)


def deep_array(i: int, tok: str, rng: random.Random) -> bytes:
    return ('["' + tok + '",' + "[" * DEPTH + "]" * DEPTH + "]").encode()


def deep_object(i: int, tok: str, rng: random.Random) -> bytes:
    return _obj(tok, '"class":"Work","args":[' + '{"a":' * DEPTH + "1" + "}" * DEPTH + "]")


_NONFINITE = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1E999"]


def nonfinite(i: int, tok: str, rng: random.Random) -> bytes:
    v = rng.choice(_NONFINITE)
    where = rng.randrange(4)
    jid = f'"jid":"{new_jid()}"'
    if where == 0:
        body = f'"class":"Work",{jid},"args":[{v}]'
    elif where == 1:
        body = f'"class":"Work",{jid},"args":[{{"x":[1,{v}]}}],"retry":0'
    elif where == 2:
        body = f'"class":"Work",{jid},"args":[],"created_at":{v}'
    else:
        body = f'"class":"Work",{jid},"args":[],"retry_count":{v},"retry":1'
    return _obj(tok, body)


_BAD_UTF8 = [
    b"\xff\xfe",
    b"\xc3\x28",
    b"\xc0\xaf",
    b"\xed\xa0\x80",
    b"\xf8\x88\x80\x80\x80",
    b"\x80",
]


def bad_utf8(i: int, tok: str, rng: random.Random) -> bytes:
    junk = rng.choice(_BAD_UTF8)
    head = _obj(tok, '"class":"Work","jid":"' + new_jid() + '","args":["X"]')
    return head.replace(b'"X"', b'"' + junk + b'"')


def lone_surrogate(i: int, tok: str, rng: random.Random) -> bytes:
    # Valid JSON text whose string is not valid Unicode once decoded.
    # The class is unknown either way, so the failure is recorded by
    # re-encoding a job that holds a lone surrogate.
    esc = rng.choice(["\\ud800", "\\udfff", "\\udbff\\u0041"])
    cls = rng.choice(["Odd", "Odd" + esc])
    return _obj(tok, f'"class":"{cls}","jid":"{new_jid()}","args":["{esc}"],"retry":0')


def non_object(i: int, tok: str, rng: random.Random) -> bytes:
    return rng.choice(
        [
            f'"{tok}"',
            f'["{tok}",1,2]',
            f"{tok}",
            f'{{"fz":"{tok}","class":"Work","args":[1,2',  # truncated
            f'  {{"fz":"{tok}"}} trailing',
            f'{{"fz":"{tok}",}}',
            f"\x00{tok}\x01\x02",
            f'{{"fz":"{tok}","class":"Work"}}{{"class":"Work"}}',
        ]
    ).encode()


def number(i: int, tok: str, rng: random.Random) -> bytes:
    return tok.encode()  # the token is a bare JSON number here


def missing_field(i: int, tok: str, rng: random.Random) -> bytes:
    return _obj(
        tok,
        rng.choice(
            [
                '"args":[]',
                '"queue":"default","jid":"' + new_jid() + '"',
                '"class":"","args":[]',
                '"class":null,"args":[]',
                '"klass":"Work","args":[]',
            ]
        ),
    )


def wrong_type(i: int, tok: str, rng: random.Random) -> bytes:
    secret = f'"SECRET-{tok}"'
    return _obj(
        tok,
        rng.choice(
            [
                '"class":5,"args":[]',
                f'"class":[{secret}],"args":[]',
                f'"class":{{"k":{secret}}},"args":[]',
                f'"class":"Work","args":{secret}',
                f'"class":"Work","args":{{"k":{secret}}}',
                f'"class":"Work","args":[],"queue":{{"k":{secret}}}',
                f'"class":"Work","args":[],"jid":[{secret}]',
                f'"class":"Work","args":[],"retry":{secret}',
                f'"class":"Work","args":[],"created_at":{secret}',
                f'"class":"Work","args":[],"enqueued_at":[{secret}]',
                '"class":true,"args":[]',
            ]
        ),
    )


def big(i: int, tok: str, rng: random.Random) -> bytes:
    if i % 2:
        return _obj(tok, '"class":{"SECRET":"' + "x" * BIG + '"},"args":[]')
    return tok.encode() + b"\x00\xff{[" * (BIG // 4)


_ODD = [
    "Evil\n" + FORGED + " level=INFO pid=1 jid=0 start",
    "Evil\r" + FORGED + " done",
    "Evil\u2028" + FORGED,
    "Esc\x1b[31mRED\x1b[0m\x07\x08",
    "Nul\x00Byte",
    "__import__('os').system('touch /tmp/gokogeri-faults-pwned')",
    "os.system",
    "subprocess:call",
    "../../../etc/passwd",
    "Kernel#exit!",
    "A" * 10_000,
    "ÜnicödeKlasse🔥",
    " ",
]


def odd_class(i: int, tok: str, rng: random.Random) -> bytes:
    fields = {
        "fz": tok,
        "class": rng.choice(_ODD) + f"\n{FORGED} {i}",
        "queue": "default",
        "jid": new_jid(),
        "args": [f"SECRET-ARG-{tok}"],
        "retry": 0,
        "created_at": time.time(),
        "enqueued_at": time.time(),
    }
    return json.dumps(fields, separators=(",", ":")).encode()


# kind -> (maker, share of the corpus); the huge kinds get a fixed count.
KINDS: dict[str, tuple[Maker, float]] = {
    "nonfinite": (nonfinite, 0.17),
    "bad_utf8": (bad_utf8, 0.12),
    "lone_surrogate": (lone_surrogate, 0.05),
    "non_object": (non_object, 0.14),
    "number": (number, 0.03),
    "missing_field": (missing_field, 0.12),
    "wrong_type": (wrong_type, 0.17),
    "odd_class": (odd_class, 0.20),
}
HUGE: dict[str, tuple[Maker, int]] = {
    "deep_args": (deep_args, 8),
    "deep_array": (deep_array, 6),
    "deep_object": (deep_object, 6),
    "big": (big, 4),
}


def corpus(n: int, seed: int = 15, first_index: int = 0) -> list[Bad]:
    """``n`` bad payloads (a few dozen of them 100,000-deep or 5 MB), each unique."""
    rng = random.Random(seed)
    out: list[Bad] = []
    i = first_index
    for kind, (make, count) in HUGE.items():
        for _ in range(count):
            out.append(Bad(_tok(i), kind, make(i, _tok(i), rng)))
            i += 1
    rest = n - len(out)
    kinds = list(KINDS)
    weights = [KINDS[k][1] for k in kinds]
    for kind in rng.choices(kinds, weights, k=rest):
        make = KINDS[kind][0]
        tok = f"31337{i:06d}" if kind == "number" else _tok(i)
        out.append(Bad(tok, kind, make(i, tok, rng)))
        i += 1
    return out


def valid_jobs(n: int, ms: int = 0, queue: str = "default") -> list[tuple[str, bytes]]:
    """``n`` well-formed ``Work`` jobs as (jid, payload), as an enqueuer writes them."""
    out = []
    now = time.time()
    for _ in range(n):
        jid = new_jid()
        job = Job("Work", queue=queue, args=[ms], jid=jid, created_at=now, enqueued_at=now)
        out.append((jid, job.encode().encode()))
    return out


def tokens_in(member: bytes) -> list[str]:
    return sorted({m.decode() for m in TOKEN_RE.findall(member)})


def kinds_of(bads: list[Bad]) -> Counter[str]:
    return Counter(b.kind for b in bads)
