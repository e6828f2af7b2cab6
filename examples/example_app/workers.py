"""The Python workers: each implements a generated worker base, which checks the args
against the schema before perform() runs."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Literal

import gokogeri

from example_app.jobs import ResizeImageWorker, WelcomeEmailWorker

GREETINGS = {"en": "Welcome", "fr": "Bienvenue", "ja": "ようこそ"}


@dataclass
class Outbox:
    """Where the workers' effects go; a real app would send mail and write files."""

    emails: list[tuple[str, str]] = field(default_factory=list)
    resized: list[tuple[uuid.UUID, str, str]] = field(default_factory=list)


class WelcomeEmail(WelcomeEmailWorker):
    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    def perform(
        self,
        ctx: gokogeri.Context,
        user_id: int,
        email: str,
        locale: Literal["en", "fr", "ja"] = "en",
        referrer: str | None = None,
    ) -> None:
        self.outbox.emails.append((email, f"{GREETINGS[locale]}!"))


class ResizeImage(ResizeImageWorker):
    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    def perform(
        self,
        ctx: gokogeri.Context,
        image_id: uuid.UUID,
        width: int,
        height: int,
        format_: Literal["png", "jpeg", "webp"] = "png",
    ) -> None:
        self.outbox.resized.append((image_id, f"{width}x{height}", format_))


def make_router(outbox: Outbox | None = None) -> gokogeri.Router:
    """Every Python worker of the app on one Router (``gokogeri contract-test
    --python-router example_app.workers:make_router`` uses this too)."""
    box = outbox if outbox is not None else Outbox()
    router = gokogeri.Router()
    WelcomeEmail(box).register(router)
    ResizeImage(box).register(router)
    return router
