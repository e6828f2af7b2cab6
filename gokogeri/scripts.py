"""Loads the Lua scripts that sit beside the modules using them.

Scripts that move or settle jobs start with ``#!lua flags=allow-oom`` so a
Redis at maxmemory can still be drained (Redis 7 script flags). Redis 6.2
does not know the shebang; for it the first line is dropped, and such
scripts then behave as Redis 6 always did (refused when full).
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import redis as redispy
from redis.commands.core import Script

SHEBANG = "#!lua"


@cache
def source(name: str) -> str:
    return resources.files("gokogeri").joinpath(name).read_text(encoding="utf-8")


def without_flags(text: str) -> str:
    """The script as Redis < 7 accepts it (no shebang line)."""
    if text.startswith(SHEBANG):
        return text.split("\n", 1)[1]
    return text


def text_for(client: redispy.Redis, name: str) -> str:
    """The source of ``name`` in the form this server accepts."""
    text = source(name)
    if not text.startswith(SHEBANG):
        return text
    try:
        client.script_load(text)
    except redispy.ResponseError:
        return without_flags(text)  # Redis 6.2: no shebang support
    return text


def load(client: redispy.Redis, name: str) -> Script:
    """A Script object: EVALSHA, with a transparent SCRIPT LOAD on NOSCRIPT."""
    return client.register_script(text_for(client, name))
