"""Schema problems: each names the file, the JSON pointer inside it, and the reason."""

from __future__ import annotations

from dataclasses import dataclass


def pointer(*parts: str | int) -> str:
    """An RFC 6901 JSON pointer ("" is the whole document)."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


@dataclass(frozen=True)
class Problem:
    file: str
    pointer: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}#{self.pointer or '/'}: {self.reason}"


class SchemaError(Exception):
    """One or more schemas cannot be compiled; ``problems`` says where and why."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))
