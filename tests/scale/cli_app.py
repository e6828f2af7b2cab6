"""``gokogeri run tests.scale.cli_app:router``: a Router whose Record job pushes
its jid to ``cli:done`` through a ConnManager built from the same settings the
command was given (GOKOGERI_REDIS_URL: TLS, Sentinel or ACL URLs alike)."""

from __future__ import annotations

import gokogeri
from gokogeri import redis as gredis

DONE = "cli:done"


def router() -> gokogeri.Router:
    cm = gredis.ConnManager(gredis.Config())
    r = gokogeri.Router()

    @r.handle("Record")
    def record(ctx: gokogeri.Context, job: gokogeri.Job) -> None:
        cm.client.rpush(DONE, job.jid or "")

    return r
