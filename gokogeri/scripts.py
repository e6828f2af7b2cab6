"""Loads the Lua scripts that sit beside the modules using them."""

from __future__ import annotations

from functools import cache
from importlib import resources

import redis as redispy
from redis.commands.core import Script


@cache
def source(name: str) -> str:
    return resources.files("gokogeri").joinpath(name).read_text(encoding="utf-8")


def load(client: redispy.Redis, name: str) -> Script:
    """A Script object: EVALSHA, with a transparent SCRIPT LOAD on NOSCRIPT."""
    return client.register_script(source(name))
