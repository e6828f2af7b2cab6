"""Translate ECMA-262 regular expressions (JSON Schema's ``pattern``) into Python and Ruby.

JSON Schema patterns are ECMA-262 regexes. Python's ``re`` and Ruby's Onigmo
read most of the syntax the same way but differ where it matters for a
contract checked at both ends:

- ``\\d``, ``\\w`` are ASCII in ECMA-262 (Unicode in Python ``str`` patterns);
  ``\\s`` is a fixed Unicode set in ECMA-262 and ASCII in Ruby;
- ``^`` / ``$`` are line anchors in Ruby, and Python's ``$`` also matches
  before a trailing newline; ECMA-262's (without the m flag) never do;
- ``.`` excludes \\r, U+2028 and U+2029 in ECMA-262, only \\n elsewhere;
- ``\\p{L}`` is unknown to Python's ``re``; ``&&`` inside ``[...]`` is an
  intersection in Ruby; ``(?<name>`` is ``(?P<name>`` in older Pythons.

So every such construct is written out explicitly (Unicode property classes
as code-point ranges from ``unicodedata``), giving the two languages the same
language of accepted strings. Anything else that ECMA-262 and the targets
would read differently is refused with a precise reason rather than guessed.
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata
from dataclasses import dataclass


class EcmaError(ValueError):
    """The pattern is not ECMA-262, or uses something with no faithful translation."""


@dataclass(frozen=True)
class Translated:
    python: str
    ruby: str


# ECMA-262 WhiteSpace + LineTerminator, the set \s matches.
_SPACE = [
    (0x09, 0x0D),
    (0x20, 0x20),
    (0xA0, 0xA0),
    (0x1680, 0x1680),
    (0x2000, 0x200A),
    (0x2028, 0x2029),
    (0x202F, 0x202F),
    (0x205F, 0x205F),
    (0x3000, 0x3000),
    (0xFEFF, 0xFEFF),
]
_DIGIT = [(0x30, 0x39)]
_WORD = [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)]
_LINE_TERMINATORS = [(0x0A, 0x0A), (0x0D, 0x0D), (0x2028, 0x2029)]

_CATEGORY_NAMES = {
    "Letter": "L",
    "Cased_Letter": "LC",
    "Uppercase_Letter": "Lu",
    "Lowercase_Letter": "Ll",
    "Titlecase_Letter": "Lt",
    "Modifier_Letter": "Lm",
    "Other_Letter": "Lo",
    "Mark": "M",
    "Nonspacing_Mark": "Mn",
    "Spacing_Mark": "Mc",
    "Enclosing_Mark": "Me",
    "Number": "N",
    "Decimal_Number": "Nd",
    "digit": "Nd",
    "Letter_Number": "Nl",
    "Other_Number": "No",
    "Punctuation": "P",
    "punct": "P",
    "Connector_Punctuation": "Pc",
    "Dash_Punctuation": "Pd",
    "Open_Punctuation": "Ps",
    "Close_Punctuation": "Pe",
    "Initial_Punctuation": "Pi",
    "Final_Punctuation": "Pf",
    "Other_Punctuation": "Po",
    "Symbol": "S",
    "Math_Symbol": "Sm",
    "Currency_Symbol": "Sc",
    "Modifier_Symbol": "Sk",
    "Other_Symbol": "So",
    "Separator": "Z",
    "Space_Separator": "Zs",
    "Line_Separator": "Zl",
    "Paragraph_Separator": "Zp",
    "Other": "C",
    "Control": "Cc",
    "cntrl": "Cc",
    "Format": "Cf",
    "Surrogate": "Cs",
    "Private_Use": "Co",
    "Unassigned": "Cn",
}
_CATEGORIES = frozenset({v for v in _CATEGORY_NAMES.values()} | {"L", "M", "N", "P", "S", "Z", "C"})


@functools.cache
def _category_ranges(cat: str) -> tuple[tuple[int, int], ...]:
    """Code-point ranges whose general category is ``cat`` (one letter: any of its subcategories)."""

    def match(c: str) -> bool:
        if cat == "LC":
            return c in ("Lu", "Ll", "Lt")
        return c[0] == cat if len(cat) == 1 else c == cat

    out: list[tuple[int, int]] = []
    start = -1
    for cp in range(sys.maxunicode + 1):
        # Surrogates are not characters of a str; they cannot occur in JSON text either.
        hit = (0xD800 <= cp <= 0xDFFF and match("Cs")) or match(unicodedata.category(chr(cp)))
        if hit and start < 0:
            start = cp
        elif not hit and start >= 0:
            out.append((start, cp - 1))
            start = -1
    if start >= 0:
        out.append((start, sys.maxunicode))
    return tuple(out)


def _property(name: str) -> tuple[tuple[int, int], ...]:
    if "=" in name:
        key, _, value = name.partition("=")
        if key in ("General_Category", "gc"):
            name = value
        else:
            raise EcmaError(
                f"\\p{{{name}}}: only general categories (\\p{{L}}, \\p{{Lu}}, \\p{{N}}...) are supported, not {key}"
            )
    cat = _CATEGORY_NAMES.get(name, name)
    if cat not in _CATEGORIES:
        raise EcmaError(
            f"\\p{{{name}}} is not a supported Unicode property (general categories such as L, Lu, N, P)"
        )
    ranges = tuple(r for r in _category_ranges(cat) if not 0xD800 <= r[0] <= 0xDFFF)
    return ranges


def _esc_py(cp: int) -> str:
    if cp < 0x80 and (chr(cp).isalnum()):
        return chr(cp)
    if cp <= 0xFF:
        return f"\\x{cp:02x}"
    if cp <= 0xFFFF:
        return f"\\u{cp:04x}"
    return f"\\U{cp:08x}"


def _esc_rb(cp: int) -> str:
    if cp < 0x80 and (chr(cp).isalnum()):
        return chr(cp)
    if cp <= 0xFF:
        return f"\\x{cp:02x}" if cp < 0x80 else f"\\u{cp:04x}"
    return f"\\u{{{cp:x}}}"


def _ranges_body(ranges: list[tuple[int, int]] | tuple[tuple[int, int], ...], ruby: bool) -> str:
    esc = _esc_rb if ruby else _esc_py
    parts = []
    for lo, hi in ranges:
        if lo == hi:
            parts.append(esc(lo))
        else:
            parts.append(f"{esc(lo)}-{esc(hi)}")
    return "".join(parts)


def _negate(ranges: list[tuple[int, int]] | tuple[tuple[int, int], ...]) -> list[tuple[int, int]]:
    out = []
    nxt = 0
    for lo, hi in sorted(ranges):
        if lo > nxt:
            out.append((nxt, lo - 1))
        nxt = max(nxt, hi + 1)
    if nxt <= sys.maxunicode:
        out.append((nxt, sys.maxunicode))
    return [r for r in out if not (r[0] >= 0xD800 and r[1] <= 0xDFFF)]


class _Out:
    """The translation being written, once per target language."""

    def __init__(self) -> None:
        self.py: list[str] = []
        self.rb: list[str] = []

    def both(self, text: str) -> None:
        self.py.append(text)
        self.rb.append(text)

    def pair(self, py: str, rb: str) -> None:
        self.py.append(py)
        self.rb.append(rb)

    def cls(
        self, ranges: list[tuple[int, int]] | tuple[tuple[int, int], ...], negate: bool
    ) -> None:
        if not ranges:
            # An empty class matches nothing; its negation anything.
            self.pair(r"[\s\S]" if negate else "(?!)", r"[\s\S]" if negate else "(?!)")
            return
        hat = "^" if negate else ""
        self.pair(f"[{hat}{_ranges_body(ranges, False)}]", f"[{hat}{_ranges_body(ranges, True)}]")


_SIMPLE_ESCAPES = {"t": 0x09, "n": 0x0A, "v": 0x0B, "f": 0x0C, "r": 0x0D, "0": 0x00}
# ECMA-262 SyntaxCharacter plus "/" and "-": escaped, they stand for themselves.
_IDENTITY = set("^$\\.*+?()[]{}|/-")


class _Parser:
    def __init__(self, src: str) -> None:
        self.src = src
        self.i = 0
        self.out = _Out()
        self.groups = 0
        self.names: list[str] = []

    def error(self, msg: str) -> EcmaError:
        return EcmaError(f"{msg} (at offset {self.i})")

    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.src[j] if j < len(self.src) else ""

    def run(self) -> Translated:
        out = self.out
        while self.i < len(self.src):
            c = self.src[self.i]
            if c == "\\":
                self.escape()
            elif c == "[":
                self.char_class()
            elif c == "^":
                out.pair("^", r"\A")
                self.i += 1
            elif c == "$":
                out.pair(r"\Z", r"\z")
                self.i += 1
            elif c == ".":
                out.cls(_LINE_TERMINATORS, True)
                self.i += 1
            elif c == "(":
                self.group()
            elif c == "{":
                self.brace()
            elif c in ")|*+?":
                out.both(c)
                self.i += 1
            elif c == "]" or c == "}":
                out.both("\\" + c)
                self.i += 1
            else:
                self.literal(ord(c))
                self.i += 1
        return Translated("".join(out.py), "".join(out.rb))

    def literal(self, cp: int) -> None:
        ch = chr(cp)
        if (
            (ch.isalnum() and cp < 0x80)
            or ch in " _-,:;\"'<>=!@%&~`/"
            or (cp >= 0x80 and ch.isprintable())
        ):
            if ch == "/":
                self.out.pair("/", "\\/")  # Ruby's regex literals are delimited by "/"
            else:
                self.out.both(ch if ch not in "-&~" else "\\" + ch)
        else:
            self.out.pair(_esc_py(cp), _esc_rb(cp))

    def brace(self) -> None:
        m = re.compile(r"\{(\d+)(,(\d*))?\}").match(self.src, self.i)
        if m is None:
            # ECMA-262 (Annex B) reads a "{" that starts no quantifier as a literal.
            self.out.both("\\{")
            self.i += 1
            return
        self.out.both(m.group(0))
        self.i = m.end()

    def group(self) -> None:
        src = self.src
        if (
            src.startswith("(?:", self.i)
            or src.startswith("(?=", self.i)
            or src.startswith("(?!", self.i)
        ):
            self.out.both(src[self.i : self.i + 3])
            self.i += 3
            return
        if src.startswith("(?<=", self.i) or src.startswith("(?<!", self.i):
            self.out.both(src[self.i : self.i + 4])
            self.i += 4
            return
        m = re.compile(r"\(\?<([A-Za-z_$][A-Za-z0-9_$]*)>").match(src, self.i)
        if m is not None:
            name = m.group(1)
            if "$" in name:
                raise self.error(
                    f"group name {name!r}: '$' is not allowed in Python or Ruby group names"
                )
            self.groups += 1
            self.names.append(name)
            self.out.pair(f"(?P<{name}>", f"(?<{name}>")
            self.i = m.end()
            return
        if src.startswith("(?", self.i):
            raise self.error(
                f"{src[self.i : self.i + 3]!r} is not ECMA-262 syntax (inline flags and Python/Perl group forms are not part of JSON Schema patterns)"
            )
        self.groups += 1
        self.out.both("(")
        self.i += 1

    def class_escape(self) -> tuple[list[tuple[int, int]] | None, int | None, bool]:
        """Inside or outside a class: (ranges, negated?) for a class escape, or a code point."""
        src = self.src
        self.i += 1
        if self.i >= len(src):
            raise self.error("the pattern ends with a lone backslash")
        c = src[self.i]
        self.i += 1
        if c in "dDwWsS":
            base = {"d": _DIGIT, "w": _WORD, "s": _SPACE}[c.lower()]
            return list(base), None, c.isupper()
        if c in "pP":
            m = re.compile(r"\{([A-Za-z_=]+)\}").match(src, self.i)
            if m is None:
                raise self.error(f"\\{c} needs a property name in braces, e.g. \\{c}{{L}}")
            self.i = m.end()
            return list(_property(m.group(1))), None, c == "P"
        if c in _SIMPLE_ESCAPES:
            if c == "0" and self.peek().isdigit():
                raise self.error("octal escapes are not supported")
            return None, _SIMPLE_ESCAPES[c], False
        if c == "x":
            m = re.compile(r"[0-9A-Fa-f]{2}").match(src, self.i)
            if m is None:
                raise self.error("\\x needs two hex digits")
            self.i = m.end()
            return None, int(m.group(0), 16), False
        if c == "u":
            m = re.compile(r"\{([0-9A-Fa-f]{1,6})\}|[0-9A-Fa-f]{4}").match(src, self.i)
            if m is None:
                raise self.error("\\u needs four hex digits or {hex}")
            self.i = m.end()
            cp = int(m.group(1) or m.group(0), 16)
            if 0xD800 <= cp <= 0xDFFF:
                raise self.error("surrogate escapes (\\uD800-\\uDFFF) are not supported")
            return None, cp, False
        if c == "c":
            letter = self.peek()
            if not letter.isascii() or not letter.isalpha():
                raise self.error("\\c needs a letter")
            self.i += 1
            return None, ord(letter) % 32, False
        if c in _IDENTITY:
            return None, ord(c), False
        if c.isalnum():
            raise self.error(
                f"\\{c} is not an ECMA-262 escape that Python and Ruby read the same way"
            )
        return None, ord(c), False

    def escape(self) -> None:
        src = self.src
        nxt = self.peek(1)
        if nxt in ("b", "B"):
            # Word boundaries: ASCII words in ECMA-262, like Ruby's; Python's need (?a:...).
            self.out.pair(f"(?a:\\{nxt})", f"\\{nxt}")
            self.i += 2
            return
        if nxt.isdigit() and nxt != "0":
            m = re.compile(r"\d+").match(src, self.i + 1)
            assert m is not None
            self.out.pair(f"(?:\\{m.group(0)})", f"\\{m.group(0)}")
            self.i = m.end()
            return
        if nxt == "k":
            m = re.compile(r"k<([A-Za-z_][A-Za-z0-9_]*)>").match(src, self.i + 1)
            if m is None:
                raise self.error("\\k needs a group name: \\k<name>")
            self.out.pair(f"(?P={m.group(1)})", f"\\k<{m.group(1)}>")
            self.i = m.end()
            return
        ranges, cp, negate = self.class_escape()
        if ranges is not None:
            self.out.cls(ranges, negate)
        else:
            assert cp is not None
            self.literal(cp)

    def char_class(self) -> None:
        src = self.src
        self.i += 1
        negate = False
        if self.peek() == "^":
            negate = True
            self.i += 1
        ranges: list[tuple[int, int]] = []
        first = True
        while True:
            if self.i >= len(src):
                raise self.error("unterminated character class")
            c = src[self.i]
            if c == "]":
                self.i += 1
                break
            lo_ranges, lo = self.class_atom(first)
            first = False
            if lo is not None and self.peek() == "-" and self.peek(1) not in ("]", ""):
                self.i += 1
                _, hi = self.class_atom(False)
                if hi is None:
                    raise self.error("a class escape cannot end a range")
                if hi < lo:
                    raise self.error("range out of order in character class")
                ranges.append((lo, hi))
                continue
            if lo_ranges is not None:
                ranges.extend(lo_ranges)
            else:
                assert lo is not None
                ranges.append((lo, lo))
        self.out.cls(_merge(ranges), negate)

    def class_atom(self, first: bool) -> tuple[list[tuple[int, int]] | None, int | None]:
        c = self.src[self.i]
        if c == "\\":
            if self.peek(1) == "b":
                self.i += 2
                return None, 0x08
            ranges, cp, negate = self.class_escape()
            if ranges is not None:
                return (_negate(ranges) if negate else ranges), None
            return None, cp
        self.i += 1
        return None, ord(c)


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


@functools.cache
def translate(pattern: str) -> Translated:
    """The Python and Ruby forms of an ECMA-262 ``pattern``; raises EcmaError."""
    t = _Parser(pattern).run()
    try:
        re.compile(t.python)
    except re.error as e:
        raise EcmaError(f"no Python equivalent: {e}") from None
    return t
