"""Unit tests of the app's enqueuing code: no Redis, jobs kept in memory (gokogeri_fake)."""

from __future__ import annotations

import uuid

import pytest
from gokogeri.testing import FakeEnqueuer

from example_app.jobs import ResizeImage, WelcomeEmail
from example_app.signup import sign_up, upload_image
from example_app.workers import Outbox, make_router


def test_sign_up_enqueues_the_welcome_email(gokogeri_fake: FakeEnqueuer) -> None:
    sign_up(gokogeri_fake, 42, "ann@example.com")
    sign_up(gokogeri_fake, 43, "bob@example.com", locale="fr")
    # Python values in, wire args compared: defaults are written into the payload.
    (job,) = gokogeri_fake.assert_enqueued(WelcomeEmail, [42, "ann@example.com"])
    assert job.args == [42, "ann@example.com", "en", None]
    assert job.queue == "mailers" and job.retry == 5
    gokogeri_fake.assert_enqueued(WelcomeEmail, [43, "bob@example.com", "fr"])
    gokogeri_fake.assert_enqueued(WelcomeEmail, count=2)


def test_upload_schedules_the_big_resize(gokogeri_fake: FakeEnqueuer) -> None:
    image = uuid.uuid4()
    upload_image(gokogeri_fake, image)
    gokogeri_fake.assert_enqueued(ResizeImage, [image, 256, 256], scheduled=False)
    (later,) = gokogeri_fake.assert_enqueued(
        ResizeImage, [image, 1024, 768, "webp"], scheduled=True
    )
    assert later.args[0] == str(image)  # a UUID travels as its string form


def test_drain_runs_the_python_workers(gokogeri_fake: FakeEnqueuer) -> None:
    outbox = Outbox()
    image = uuid.uuid4()
    sign_up(gokogeri_fake, 1, "cy@example.com", locale="ja")
    upload_image(gokogeri_fake, image)
    assert gokogeri_fake.drain(make_router(outbox)) == 3
    assert outbox.emails == [("cy@example.com", "ようこそ!")]
    assert outbox.resized == [(image, "256x256", "png"), (image, "1024x768", "webp")]


def test_a_bad_payload_is_retried_then_dead(gokogeri_fake: FakeEnqueuer) -> None:
    # A producer that bypasses the generated class (say, an old Ruby release) and breaks the
    # contract: the worker refuses it with the schema's error, and Sidekiq's retry rules apply.
    from gokogeri import Job

    gokogeri_fake.enqueue(Job("WelcomeEmailJob", queue="mailers", args=[0, "no-at-sign"], retry=2))
    gokogeri_fake.drain(make_router())
    assert [f.action for f in gokogeri_fake.failures] == ["retry", "retry", "dead"]
    (dead,) = gokogeri_fake.dead
    assert dead.error_class == "gokogeri.codegen.runtime.ArgumentError"
    assert dead.error_message == "WelcomeEmailJob args[0] (user_id): must be >= 1, got 0"


def test_inline_mode_runs_at_enqueue(gokogeri_fake: FakeEnqueuer) -> None:
    outbox = Outbox()
    with gokogeri_fake.inline(make_router(outbox)):
        sign_up(gokogeri_fake, 7, "dee@example.com")
        assert outbox.emails == [("dee@example.com", "Welcome!")]
    assert gokogeri_fake.jobs == []


def test_the_generated_class_refuses_bad_values_before_enqueue(gokogeri_fake: FakeEnqueuer) -> None:
    from gokogeri.codegen.runtime import ArgumentError

    with pytest.raises(ArgumentError, match=r"args\[1\] \(width\): must be <= 4096"):
        ResizeImage.enqueue(gokogeri_fake, uuid.uuid4(), 5000, 10)
    assert gokogeri_fake.jobs == []
