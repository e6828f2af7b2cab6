"""Application code: what happens when someone signs up or uploads an image."""

from __future__ import annotations

import uuid
from typing import Literal

from gokogeri.codegen.runtime import EnqueuerLike

from example_app.jobs import ResizeImage, WelcomeEmail

THUMBNAIL = (256, 256)
Locale = Literal["en", "fr", "ja"]


def sign_up(
    enqueuer: EnqueuerLike, user_id: int, email: str, locale: Locale | None = None
) -> str | None:
    """Create the account (elided) and send the welcome email in the background."""
    if locale is not None:
        return WelcomeEmail.enqueue(enqueuer, user_id, email, locale)
    return WelcomeEmail.enqueue(enqueuer, user_id, email)


def upload_image(enqueuer: EnqueuerLike, image_id: uuid.UUID) -> list[str | None]:
    """Store the image (elided), then make a thumbnail now and a web-sized copy in a minute."""
    return [
        ResizeImage.enqueue(enqueuer, image_id, *THUMBNAIL),
        ResizeImage.enqueue_in(enqueuer, 60, image_id, 1024, 768, "webp"),
    ]
