"""Integration tests against a real, private redis-server (the plugin starts it), a real
gokogeri Node, and a real Ruby Sidekiq running ruby/jobs.rb."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import gokogeri
import pytest
from gokogeri.redis import ConnManager
from gokogeri.testing import RubySidekiq, assert_enqueued, wait_for

from example_app.jobs import ResizeImage, WelcomeEmail
from example_app.signup import sign_up, upload_image
from example_app.workers import Outbox, make_router

RUBY_JOBS = Path(__file__).resolve().parent.parent / "ruby" / "jobs.rb"


def test_jobs_land_in_redis(gokogeri_enqueuer: gokogeri.Enqueuer, gokogeri_cm: ConnManager) -> None:
    image = uuid.uuid4()
    sign_up(gokogeri_enqueuer, 5, "eve@example.com")
    upload_image(gokogeri_enqueuer, image)
    assert_enqueued(gokogeri_cm, WelcomeEmail, [5, "eve@example.com"], queue="mailers")
    assert_enqueued(gokogeri_cm, ResizeImage, [image, 1024, 768, "webp"], scheduled=True)


def test_a_python_node_runs_them(
    gokogeri_enqueuer: gokogeri.Enqueuer, gokogeri_node: Callable[..., gokogeri.Node]
) -> None:
    outbox = Outbox()
    gokogeri_node(make_router(outbox), queues=["mailers", "media"])
    sign_up(gokogeri_enqueuer, 6, "fay@example.com", locale="fr")
    wait_for(lambda: outbox.emails)
    assert outbox.emails == [("fay@example.com", "Bienvenue!")]


@pytest.mark.skipif(shutil.which("sidekiq") is None, reason="no Ruby Sidekiq (ruby-sidekiq)")
def test_ruby_sidekiq_runs_python_enqueued_jobs(
    gokogeri_sidekiq: Callable[..., RubySidekiq],
    gokogeri_enqueuer: gokogeri.Enqueuer,
    gokogeri_cm: ConnManager,
) -> None:
    gokogeri_sidekiq(str(RUBY_JOBS), queues=["mailers", "media"], env={"EXAMPLE_OUTBOX": "redis"})
    image = uuid.uuid4()
    sign_up(gokogeri_enqueuer, 8, "gus@example.com", locale="ja")
    ResizeImage.enqueue(gokogeri_enqueuer, image, 640, 480)
    client = gokogeri_cm.client
    wait_for(lambda: client.llen("example:outbox") == 2, timeout=30)
    done = sorted((json.loads(raw) for raw in client.lrange("example:outbox", 0, -1)), key=str)
    assert {d["kind"] for d in done} == {"email", "resize"}
    email = next(d for d in done if d["kind"] == "email")
    resize = next(d for d in done if d["kind"] == "resize")
    assert email == {
        "kind": "email",
        "user_id": 8,
        "to": "gus@example.com",
        "subject": "ようこそ!",
        "referrer": None,
    }
    assert resize == {"kind": "resize", "image_id": str(image), "size": "640x480", "format": "png"}
