"""Python names for schema things, never colliding with keywords, builtins or typing names.

A name that would shadow something gets a trailing underscore (PEP 8's
convention: ``class_``, ``id_``, ``Optional_``); the schema's own spelling
stays in errors, docs and, for object keys, on the wire.
"""

from __future__ import annotations

import builtins
import keyword
import re
import typing

# Names every generated module uses or imports; a schema-derived name must never hide them.
GENERATED_NAMES = frozenset(
    {
        "annotations",
        "abc",
        "dataclass",
        "date",
        "datetime",
        "UUID",
        "Final",
        "Iterable",
        "Literal",
        "NotRequired",
        "TypedDict",
        "gokogeri",
    }
)

# Parameter names the generated methods use for their own purposes.
RESERVED_PARAMS = frozenset(
    {
        "self",
        "cls",
        "ctx",
        "enqueuer",
        "seconds",
        "at",
        "items",
        "queue",
        "retry",
        "jid",
        "job",
        "count",
        "exc",
    }
)

_SHADOWED = frozenset(
    set(dir(builtins)) | set(typing.__all__) | set(keyword.softkwlist) | GENERATED_NAMES
)


def is_taken(name: str) -> bool:
    return keyword.iskeyword(name) or name in _SHADOWED


def _words(text: str) -> list[str]:
    # Split camelCase and acronyms (HTTPServer -> HTTP Server) as well as separators.
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", text)
    spaced = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", spaced)
    return [w for w in re.split(r"[^0-9A-Za-z]+", spaced) if w]


def snake(text: str) -> str:
    """A snake_case identifier stem for ``text`` ("" if it has no letters or digits)."""
    name = "_".join(w.lower() for w in _words(text))
    if name and name[0].isdigit():
        name = "n_" + name
    return name


def pascal(text: str) -> str:
    """A PascalCase identifier stem for ``text`` ("" if it has no letters or digits)."""
    name = "".join(w[:1].upper() + w[1:] for w in _words(text))
    if name and name[0].isdigit():
        name = "N" + name
    return name


def safe(name: str, taken: set[str] | frozenset[str] = frozenset()) -> str:
    """``name`` with underscores appended until it shadows nothing and is not in ``taken``."""
    while is_taken(name) or name in taken:
        name += "_"
    return name


def param_name(title: str) -> str:
    return safe(snake(title), RESERVED_PARAMS)


def module_name(stem: str) -> str:
    return safe(snake(stem))


def api_name(class_name: str) -> str:
    """SendWelcomeEmailJob -> SendWelcomeEmail; Billing::ChargeInvoiceJob -> ChargeInvoice."""
    last = class_name.split("::")[-1].split(".")[-1]
    base = pascal(last)
    for suffix in ("Job", "Worker"):
        if base.endswith(suffix) and len(base) > len(suffix):
            base = base[: -len(suffix)]
            break
    return base


def is_identifier_key(key: str) -> bool:
    """Whether an object key can be a TypedDict class-syntax field.

    Keywords cannot, and a ``__dunder`` key would be name-mangled in a class body.
    """
    return key.isidentifier() and not keyword.iskeyword(key) and not key.startswith("__")
