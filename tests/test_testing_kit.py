"""gokogeri.testing: FakeEnqueuer parity with Enqueuer, drain's retry rules, inline mode,
assertion helpers, and the real-process helpers (NodeThread, RubySidekiq)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pytest

import gokogeri
from gokogeri import Enqueuer, Job, Router
from gokogeri.redis import ConnManager
from gokogeri.retry import RetryPolicy
from gokogeri.testing import (
    FakeEnqueuer,
    RubySidekiq,
    assert_enqueued,
    class_name_of,
    enqueued_jobs,
    wait_for,
)
from gokogeri.worker import Context
from tests.codegen.generated_jobs import SendWelcomeEmail, SendWelcomeEmailWorker

RUBY_JOBS = Path(__file__).parent / "ruby" / "jobs.rb"
CONTAINERS_CONF = Path(__file__).parent.parent / "interop" / "images" / "containers.conf"


class Boom(Exception):
    pass


def always_fails(ctx: Context, job: Job) -> None:
    raise Boom(f"failed {job.class_name}")


def router_with(**handlers: Callable[[Context, Job], object]) -> Router:
    router = Router()
    for name, fn in handlers.items():
        router.register(name, fn)
    return router


# --- parity with Enqueuer ---


def _real_and_fake(cm: ConnManager, push: Callable[[Any], object]) -> tuple[list[Job], list[Job]]:
    fake = FakeEnqueuer()
    push(Enqueuer(cm))
    push(fake)
    return enqueued_jobs(cm), fake.jobs


def test_enqueue_many_shares_one_created_at_and_has_the_real_fields(
    gokogeri_cm: ConnManager,
) -> None:
    template = Job("Bulk", queue="q", retry=3, tags=["a"])
    real, fake = _real_and_fake(gokogeri_cm, lambda e: e.enqueue_many(template, [[1], [2], [3]]))
    assert [j.args for j in fake] == [[1], [2], [3]] == [j.args for j in real]
    for jobs in (real, fake):
        assert len({j.created_at for j in jobs}) == 1
        assert len({j.enqueued_at for j in jobs}) == 1
        assert len({j.jid for j in jobs}) == 3
    # Same fields in the same order as what Enqueuer pushed to Redis.
    assert [list(j.fields) for j in fake] == [list(j.fields) for j in real]
    with pytest.raises(ValueError):
        FakeEnqueuer().enqueue_many(Job("Bulk", jid="x" * 24), [[1]])
    with pytest.raises(gokogeri.InvalidArgumentError, match="job 1"):
        FakeEnqueuer().enqueue_many(Job("Bulk"), [[1], [{1, 2}]])


def test_enqueue_bulk_of_one_template_shares_created_at_and_middleware_sees_each_job() -> None:
    fake = FakeEnqueuer()
    fake.enqueue_bulk([Job("C", args=[i]) for i in range(3)])
    assert len({j.created_at for j in fake.jobs}) == 1
    seen: list[list[Any]] = []

    def record(job: Job, queue: str, call_next: Callable[[], Any]) -> Any:
        seen.append(job.args)
        return None if job.args == [1] else call_next()

    fake = FakeEnqueuer()
    fake.middleware.add(record)
    jids = fake.enqueue_many(Job("C"), [[0], [1], [2]])
    assert seen == [[0], [1], [2]]
    assert jids[1] is None and jids[0] and jids[2]
    assert [j.args for j in fake.jobs] == [[0], [2]]


def test_scheduled_jobs_match_the_real_schedule(gokogeri_cm: ConnManager) -> None:
    at = time.time() + 3600

    def push(e: Any) -> None:
        e.enqueue_at(Job("Later", args=["x"]), at)
        e.enqueue_in(Job("Soon"), timedelta(minutes=5))
        e.enqueue_at(Job("Past"), datetime.now(UTC) - timedelta(hours=1))

    real, fake = _real_and_fake(gokogeri_cm, push)
    by_class = {j.class_name: j for j in fake}
    real_by_class = {j.class_name: j for j in real}
    assert by_class["Later"]["at"] == pytest.approx(at)
    assert real_by_class["Later"]["at"] == pytest.approx(at)
    assert "enqueued_at" not in by_class["Later"] and "enqueued_at" not in real_by_class["Later"]
    assert by_class["Soon"]["at"] > time.time() + 200
    # A time in the past pushes now, with enqueued_at, as the real one does.
    assert "at" not in by_class["Past"] and "enqueued_at" in by_class["Past"]
    assert "at" not in real_by_class["Past"] and "enqueued_at" in real_by_class["Past"]
    for name in ("Later", "Soon", "Past"):
        assert list(by_class[name].fields) == list(real_by_class[name].fields)


def test_millisecond_timestamps_as_configured() -> None:
    fake = FakeEnqueuer(timestamp_format="ms")
    fake.enqueue(Job("A"))
    assert isinstance(fake.jobs[0].created_at, int) and isinstance(fake.jobs[0].enqueued_at, int)


# --- drain: server middleware and Sidekiq's retry rules ---


def test_drain_retries_up_to_the_limit_then_reports_dead() -> None:
    fake = FakeEnqueuer()
    fake.enqueue(Job("Flaky", retry=2, args=[1]))
    assert fake.drain(router_with(Flaky=always_fails)) == 3  # the run and two retries
    assert [f.action for f in fake.failures] == ["retry", "retry", "dead"]
    assert fake.jobs == [] and fake.performed == []
    (dead,) = fake.dead
    assert dead.retry_count == 2 and dead.error_class == "test_testing_kit.Boom"
    assert dead.error_message == "failed Flaky" and dead.failed_at is not None
    assert isinstance(fake.failures[-1].exception, Boom)


def test_drain_default_retry_is_25_retries_and_retry_false_drops() -> None:
    fake = FakeEnqueuer()
    fake.enqueue(Job("Flaky"))
    fake.enqueue(Job("Once", retry=False))
    fake.enqueue(Job("NoDead", retry=1, dead=False))
    fake.enqueue(Job("Zero", retry=0))
    fake.drain(
        router_with(Flaky=always_fails, Once=always_fails, NoDead=always_fails, Zero=always_fails)
    )
    actions: dict[str, list[str]] = {}
    for f in fake.failures:
        actions.setdefault(f.job.class_name, []).append(f.action)
    assert actions["Flaky"] == ["retry"] * 25 + ["dead"]
    assert actions["Once"] == ["drop"]
    assert actions["NoDead"] == ["retry", "drop"]
    assert actions["Zero"] == ["dead"]  # retry: 0 is truthy in Ruby: straight to the dead set
    assert sorted(j.class_name for j in fake.dead) == ["Flaky", "Zero"]


def test_a_job_that_fails_once_succeeds_on_its_retry() -> None:
    attempts: list[int | None] = []

    def flaky(ctx: Context, job: Job) -> None:
        attempts.append(job.retry_count)
        if len(attempts) == 1:
            raise Boom("first time")

    fake = FakeEnqueuer()
    fake.enqueue(Job("Flaky"))
    assert fake.drain(router_with(Flaky=flaky)) == 2
    assert attempts == [None, 0]
    assert [j.class_name for j in fake.performed] == ["Flaky"] and fake.dead == []


def test_retry_for_window_runs_out_on_the_drain_clock() -> None:
    fake = FakeEnqueuer(policy=RetryPolicy(compat="8"))
    fake.enqueue(Job("Windowed", retry_for=600))  # Sidekiq 8: only the window counts
    fake.drain(router_with(Windowed=always_fails))
    (dead,) = fake.dead
    # Backoffs are count**4 + 15 + jitter: 15.., 16.., 31.., 96.., 271.. seconds; the window of
    # 600 s is used up after the fifth retry, well before the 25 that retry: true allows.
    assert dead.retry_count is not None and 3 <= dead.retry_count <= 6


def test_drain_without_running_retries_and_raising_at_once() -> None:
    fake = FakeEnqueuer()
    fake.enqueue(Job("Flaky", retry=3))
    fake.drain(router_with(Flaky=always_fails), run_retries=False)
    (waiting,) = fake.retries
    assert waiting.retry_count == 0 and waiting["at"] > time.time()
    fake.enqueue(Job("Flaky"))
    with pytest.raises(Boom):
        fake.drain(router_with(Flaky=always_fails), raise_errors=True)
    assert fake.jobs == []


def test_drain_runs_the_server_middleware() -> None:
    calls: list[tuple[str, str]] = []

    def around(ctx: Context, job: Job, queue: str, call_next: Callable[[], Any]) -> Any:
        calls.append((job.class_name, queue))
        return None if job.class_name == "Skipped" else call_next()

    ran: list[str] = []
    fake = FakeEnqueuer(server_middleware=gokogeri.ServerChain())
    fake.server_middleware.add(around)
    fake.enqueue(Job("Run", queue="q1"))
    fake.enqueue(Job("Skipped"))
    fake.drain(router_with(Run=lambda c, j: ran.append(j.class_name), Skipped=always_fails))
    assert calls == [("Run", "q1"), ("Skipped", "default")]
    assert ran == ["Run"] and fake.failures == []


class Hooked:
    """A worker with Sidekiq's per-worker hooks (sidekiq_retry_in / sidekiq_retries_exhausted)."""

    def __init__(self, decision: Any, exhausted: Any = None) -> None:
        self.decision = decision
        self.exhausted_result = exhausted
        self.asked: list[int] = []
        self.exhausted: list[str] = []

    def work(self, ctx: Context, job: Job) -> None:
        raise Boom("hooked")

    def retry_in(self, count: int, exc: BaseException, job: Job) -> Any:
        self.asked.append(count)
        return self.decision

    def retries_exhausted(self, job: Job, exc: BaseException) -> Any:
        self.exhausted.append(str(exc))
        return self.exhausted_result


def test_drain_applies_the_workers_retry_hooks() -> None:
    fake = FakeEnqueuer()
    now = time.time()
    router = Router()
    delayed = Hooked(3600)
    router.register("Delayed", delayed)
    fake.enqueue(Job("Delayed", retry=1))
    fake.drain(router, run_retries=False)
    (waiting,) = fake.retries
    assert delayed.asked == [0] and waiting["at"] == pytest.approx(now + 3600, abs=60)

    for decision, action in (("kill", "dead"), ("discard", "drop")):
        fake = FakeEnqueuer()
        hooked = Hooked(decision)
        fake.enqueue(Job("Hooked"))
        fake.drain(hooked)
        assert [f.action for f in fake.failures] == [action]
        # retries_exhausted runs when the job would go to the dead set
        assert hooked.exhausted == (["hooked"] if decision == "kill" else [])

    fake = FakeEnqueuer()
    spared = Hooked(None, exhausted="discard")  # None: Sidekiq's own backoff
    fake.enqueue(Job("Spared", retry=1))
    fake.drain(spared)
    assert [f.action for f in fake.failures] == ["retry", "drop"]
    # retry_in is asked only while retries are left, as in Sidekiq
    assert spared.asked == [0] and spared.exhausted == ["hooked"] and fake.dead == []


def test_async_workers_run_in_drain_and_inline() -> None:
    ran: list[list[Any]] = []
    router = Router()

    @router.handle("Async")
    async def handle(ctx: Context, job: Job) -> None:
        await asyncio.sleep(0)
        if job.args == ["fail"]:
            raise Boom("async")
        ran.append(job.args)

    fake = FakeEnqueuer()
    fake.enqueue(Job("Async", args=[1]))
    fake.enqueue(Job("Async", args=["fail"], retry=False))
    assert fake.drain(router) == 2
    assert ran == [[1]] and [f.action for f in fake.failures] == ["drop"]
    with fake.inline(router):
        fake.enqueue(Job("Async", args=[2]))
    assert ran == [[1], [2]]


def test_activejob_wrapped_jobs_match_by_their_wrapped_class() -> None:
    fake = FakeEnqueuer()
    fake.enqueue(
        Job(
            "ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper",
            args=[{"job_class": "InvoiceJob", "arguments": [1]}],
            wrapped="InvoiceJob",
        )
    )
    (job,) = fake.assert_enqueued("InvoiceJob")
    assert job.class_name == "ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper"
    assert fake.jobs_for("InvoiceJob") == [job]


# --- inline mode ---


def mode_of(fake: FakeEnqueuer) -> str:
    return fake.mode


def test_inline_mode_runs_at_enqueue_and_failures_reach_the_caller() -> None:
    ran: list[tuple[str, list[Any]]] = []
    router = router_with(Hello=lambda c, j: ran.append((j.class_name, j.args)), Broken=always_fails)
    fake = FakeEnqueuer()
    with fake.inline(router):
        assert mode_of(fake) == "inline"
        jid = fake.enqueue(Job("Hello", args=[{"a": 1}]))
        fake.enqueue_in(Job("Hello", args=[2]), 3600)  # scheduled jobs run now too
        with pytest.raises(Boom):
            fake.enqueue(Job("Broken"))
        with pytest.raises(gokogeri.InvalidArgumentError):
            fake.enqueue(Job("Hello", args=[(1, 2)]))
    assert ran == [("Hello", [{"a": 1}]), ("Hello", [2])]
    assert fake.performed[0].jid == jid and fake.jobs == []
    assert mode_of(fake) == "fake"
    fake.enqueue(Job("Hello"))
    assert len(fake.jobs) == 1 and len(ran) == 2
    fake.inline(router)  # without `with`, the mode stays switched
    fake.enqueue(Job("Hello"))
    assert len(ran) == 3
    fake.fake()
    assert mode_of(fake) == "fake"


# --- assertion helpers ---


def test_assert_enqueued_by_name_job_and_generated_class() -> None:
    fake = FakeEnqueuer()
    SendWelcomeEmail.enqueue(fake, 7, "ann@example.com")
    SendWelcomeEmail.enqueue_in(fake, 60, 8, "bob@example.com", "fr")
    fake.enqueue(Job("Other", queue="low", args=["x"]))
    # Generated class + Python values: the defaults the payload carries are filled in.
    (job,) = fake.assert_enqueued(SendWelcomeEmail, [7, "ann@example.com"])
    assert job.args == [7, "ann@example.com", "en", None] and job.queue == "mailers"
    fake.assert_enqueued("SendWelcomeEmailJob", count=2)
    fake.assert_enqueued(SendWelcomeEmailWorker, scheduled=True, count=1)
    fake.assert_enqueued(Job("Other", queue="low", args=["x"]))
    fake.assert_enqueued("Other", lambda args: args[0] == "x", queue="low")
    fake.assert_not_enqueued("Other", queue="default")
    assert [j.args[0] for j in fake.jobs_for(SendWelcomeEmail)] == [7, 8]
    with pytest.raises(AssertionError) as err:
        fake.assert_enqueued(SendWelcomeEmail, [9, "eve@example.com"])
    text = str(err.value)
    assert "SendWelcomeEmailJob with args [9, 'eve@example.com', 'en', None]" in text
    assert "found 0" in text and "Other queue='low' args=['x']" in text
    with pytest.raises(AssertionError, match="exactly 1"):
        fake.assert_enqueued("SendWelcomeEmailJob", count=1)
    fake.clear(SendWelcomeEmail)
    assert [j.class_name for j in fake.jobs] == ["Other"]
    fake.clear()
    assert fake.jobs == []
    assert class_name_of(SendWelcomeEmail) == "SendWelcomeEmailJob"
    with pytest.raises(TypeError):
        class_name_of(42)


def test_assert_enqueued_reads_a_real_redis(gokogeri_cm: ConnManager) -> None:
    e = Enqueuer(gokogeri_cm)
    SendWelcomeEmail.enqueue(e, 1, "a@b.c")
    e.enqueue(Job("X", queue="other", args=[1]))
    e.enqueue(Job("X", queue="other", args=[2]))
    e.enqueue_in(Job("Y"), 600)
    assert [j.args for j in enqueued_jobs(gokogeri_cm) if j.class_name == "X"] == [[1], [2]]
    assert_enqueued(gokogeri_cm, SendWelcomeEmail, [1, "a@b.c"], queue="mailers")
    assert_enqueued(gokogeri_cm, "X", queue="other", count=2)
    (y,) = assert_enqueued(gokogeri_cm, "Y", scheduled=True)
    assert y["at"] > time.time()
    with pytest.raises(AssertionError):
        assert_enqueued(gokogeri_cm, "Z")


# --- real processes ---


class Recorder(SendWelcomeEmailWorker):
    def __init__(self) -> None:
        self.seen: list[tuple[int, str, str, str | None]] = []

    def perform(
        self,
        ctx: gokogeri.Context,
        user_id: int,
        email: str,
        locale: Literal["en", "fr", "de", "ja"] = "en",
        referrer_code: str | None = None,
    ) -> None:
        self.seen.append((user_id, email, locale, referrer_code))


def test_node_fixture_runs_jobs_from_redis(
    gokogeri_node: Callable[..., gokogeri.Node], gokogeri_enqueuer: Enqueuer
) -> None:
    worker = Recorder()
    router = Router()
    worker.register(router)
    gokogeri_node(router, queues=["mailers"])
    SendWelcomeEmail.enqueue(gokogeri_enqueuer, 3, "c@d.e", "ja")
    wait_for(lambda: worker.seen)
    assert worker.seen == [(3, "c@d.e", "ja", None)]


def _run_record_job(start: Callable[..., RubySidekiq], redis_url: str, **options: Any) -> None:
    import redis as redispy

    sidekiq = start(str(RUBY_JOBS), queues=["default"], **options)
    client = redispy.Redis.from_url(redis_url)
    try:
        with ConnManager(gokogeri.redis.Config(url=redis_url)) as cm:
            Enqueuer(cm).enqueue(Job("RecordJob", args=[1, "two", {"three": 3.5}]))
        raw = wait_for(lambda: client.lpop("test:done"), timeout=30)
        assert json.loads(raw)["args"] == [1, "two", {"three": 3.5}]
    finally:
        client.close()
    sidekiq.stop()
    assert "Shutting down" in sidekiq.output() or "Bye!" in sidekiq.output()


@pytest.mark.skipif(
    shutil.which("sidekiq") is None, reason="Debian's ruby-sidekiq is not installed"
)
def test_sidekiq_fixture_on_the_host(
    gokogeri_sidekiq: Callable[..., RubySidekiq], gokogeri_redis_url: str
) -> None:
    _run_record_job(gokogeri_sidekiq, gokogeri_redis_url)


def _image_present(image: str) -> bool:
    podman = shutil.which("podman")
    if podman is None:
        return False
    env = dict(os.environ, CONTAINERS_CONF=os.environ.get("CONTAINERS_CONF", str(CONTAINERS_CONF)))
    done = subprocess.run([podman, "image", "exists", image], env=env, check=False)
    return done.returncode == 0


SIDEKIQ_8_IMAGE = "localhost/gokogeri/sidekiq:8"


@pytest.mark.skipif(not _image_present(SIDEKIQ_8_IMAGE), reason="interop image not built")
def test_sidekiq_fixture_in_a_container(
    gokogeri_sidekiq: Callable[..., RubySidekiq],
    gokogeri_redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # This machine's podman needs the interop settings (runc, lowered ulimits).
    monkeypatch.setenv("CONTAINERS_CONF", os.environ.get("CONTAINERS_CONF", str(CONTAINERS_CONF)))
    _run_record_job(gokogeri_sidekiq, gokogeri_redis_url, image=SIDEKIQ_8_IMAGE, engine="podman")
