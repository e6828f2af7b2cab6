"""Typed contracts for Rails ActiveJob jobs ("x-gokogeri": {"activejob": true}).

tests/codegen/activejob/contract_mail.json describes AjContractJob, whose Ruby ``perform``
(tests/codegen/activejob/contract_app.rb) takes positional arguments, an optional one and
keyword arguments of every ActiveJob value type the schema formats name. The generated Python
is checked with mypy --strict and ruff, enqueues into a real redis-server for the host's real
Rails 6.1 + Sidekiq 6.4.1 (whose perform asserts the exact Ruby values it got), and its worker
decodes what Rails' own perform_later pushed into the typed values. The Rails job class
includes the generated Ruby module (--ruby), which checks the same contract on the Ruby side.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest
import redis as redispy
from conftest import ROOT, job_schema
from gokogeri.codegen.cli import generate
from gokogeri.codegen.errors import SchemaError
from gokogeri.codegen.loader import load
from gokogeri.codegen.runtime import UNSET, ArgumentError

import gokogeri
from gokogeri import activejob as aj
from gokogeri import redis as gredis
from gokogeri.enqueuer import Enqueuer
from gokogeri.job import Job
from gokogeri.worker import Context, Router
from tests.conftest import NodeThread, wait_for
from tests.data.activejob.sample import differences

HERE = Path(__file__).resolve().parent / "activejob"
SCHEMA = HERE / "contract_mail.json"
APP = HERE / "contract_app.rb"
DONE = "aj:done"
USER = "AjInterop::User"

# The contract sample in Python (contract_app.rb's AjContract.sample holds it in Ruby).
SAMPLE_ARGS: list[Any] = [aj.GlobalID("gokogeri", USER, "42"), 7, "héllo", ["a", "b"]]
SAMPLE_KWARGS: dict[str, Any] = {
    "at": datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
    "plan": "vip",
    "trial": timedelta(days=2, hours=3),
    "price": Decimal("12.5"),
    "day": date(2026, 2, 28),
    "legacy": datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=1))),
    "zoned": datetime(2026, 6, 1, 14, 30, tzinfo=ZoneInfo("Europe/Paris")),
    "kind": aj.RubyModule(USER),
    "options": {"retries": 3, "label": "x"},
}


def received_from_rails_61() -> tuple[list[Any], dict[str, Any]]:
    """What the generated worker hands perform for Rails 6.1's perform_later of the sample."""
    args = [aj.GlobalID("gokogeri", USER, "42"), 7, "héllo", [aj.Symbol("a"), aj.Symbol("b")]]
    kwargs = {
        "at": datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
        "plan": aj.Symbol("vip"),
        "trial": aj.Duration.of(183600, [("days", 2), ("hours", 3)]),
        "price": Decimal("12.5"),  # 6.1 sends a String; the contract says decimal
        "day": date(2026, 2, 28),
        "legacy": aj.RubyDateTime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=1))),
        # 6.1 sends a TimeWithZone's offset only, not its zone name.
        "zoned": aj.TimeWithZone.of(
            datetime(2026, 6, 1, 14, 30, tzinfo=timezone(timedelta(hours=2)))
        ),
        "kind": aj.RubyModule(USER),
        "options": {"retries": 3, "label": "x"},
        "locale": "en",
        "coupon": UNSET,
    }
    return args, kwargs


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, ModuleType]]:
    """The contract compiled into an importable package ``aj_jobs`` and Ruby in ``rb``
    (directory, job module)."""
    root = tmp_path_factory.mktemp("aj")
    with open(os.devnull, "w") as quiet:
        assert generate([SCHEMA], root / "aj_jobs", False, quiet, ruby=root / "rb") == 0
    sys.path.insert(0, str(root))
    try:
        yield root, importlib.import_module("aj_jobs.contract_mail")
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m == "aj_jobs" or m.startswith("aj_jobs.")]:
            del sys.modules[name]


def client(cm: gredis.ConnManager, rails: str = "6.1.7.10") -> aj.ActiveJobClient:
    return aj.ActiveJobClient(Enqueuer(cm), rails=rails, sidekiq="6.4.1")


# --- the generated Python: types --------------------------------------------------------------

USES = """\
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import gokogeri
from gokogeri import activejob
from gokogeri.codegen.runtime import UNSET, Unset
from aj_jobs import AjContract, AjContractAsyncWorker, AjContractWorker
from aj_jobs.contract_mail import KeywordsOptions

AT = datetime(2026, 1, 1, tzinfo=UTC)
USER = activejob.GlobalID("app", "User", "1")
KIND = activejob.RubyModule("User")
OPTIONS: KeywordsOptions = {"retries": 1}


def enqueue(client: activejob.ActiveJobClient) -> list[activejob.Envelope | None]:
    mail = AjContract(client, priority=3)
    job: gokogeri.Job = mail.job(USER, 1, None, at=AT, plan="vip", trial=timedelta(1),
                                 price=Decimal(1), day=date(2026, 1, 1), legacy=AT, zoned=AT,
                                 kind=KIND, options=OPTIONS)
    assert job.queue == AjContract.QUEUE
    return [
        mail.perform_later(USER, 1, "n", ["a"], at=AT, plan=activejob.Symbol("s"), trial=timedelta(1),
                           price=Decimal(1), day=date(2026, 1, 1), legacy=AT, zoned=AT, kind=KIND,
                           options={"retries": 0, "label": "l"}, locale="fr", coupon=None),
        mail.set(wait=5, queue="q").set(wait_until=AT).perform_later(
            USER, 1, None, at=AT, plan="s", trial=timedelta(1), price=Decimal(1),
            day=date(2026, 1, 1), legacy=AT, zoned=AT, kind=KIND, options=OPTIONS),
    ]


class Worker(AjContractWorker):
    def perform(self, ctx: gokogeri.Context, envelope: activejob.Envelope,
                user: activejob.GlobalID, count_: int, note: str | None,
                tags: list[activejob.Symbol] | Unset = UNSET, *, at: datetime,
                plan: activejob.Symbol, trial: activejob.Duration, price: Decimal, day: date,
                legacy: activejob.RubyDateTime, zoned: activejob.TimeWithZone,
                kind: activejob.RubyModule, options: KeywordsOptions, locale: str = "en",
                coupon: str | Unset | None = UNSET) -> None:
        ctx.logger.info("%s %s %s", envelope.job_id, user.model_id, trial.parts)
        if tags is not UNSET:
            tags[0].upper()
        options["retries"] + 1


class AsyncWorker(AjContractAsyncWorker):
    async def perform(self, ctx: gokogeri.Context, envelope: activejob.Envelope,
                      user: activejob.GlobalID, count_: int, note: str | None,
                      tags: list[activejob.Symbol] | Unset = UNSET, *, at: datetime,
                      plan: activejob.Symbol, trial: activejob.Duration, price: Decimal,
                      day: date, legacy: activejob.RubyDateTime, zoned: activejob.TimeWithZone,
                      kind: activejob.RubyModule, options: KeywordsOptions, locale: str = "en",
                      coupon: str | Unset | None = UNSET) -> None:
        pass


def routes() -> gokogeri.Router:
    router = gokogeri.Router()
    Worker().register(router)
    return router
"""

# (a wrong use, the mypy error it must give)
BAD = {
    "missing_keyword": (
        "AjContract(c).job(USER, 1, None, plan='s', trial=timedelta(1), price=Decimal(1), "
        "day=date(2026, 1, 1), legacy=AT, zoned=AT, kind=KIND, options=OPTIONS)",
        'Missing named argument "at" for "job" of "AjContract"',
    ),
    "keyword_given_positionally": (
        "AjContract(c).job(USER, 1, None, [], AT)",
        'Too many positional arguments for "job" of "AjContract"',
    ),
    "unknown_keyword": (
        "AjContract(c).job(USER, 1, None, at=AT, plan='s', trial=timedelta(1), price=Decimal(1), "
        "day=date(2026, 1, 1), legacy=AT, zoned=AT, kind=KIND, options=OPTIONS, extra=1)",
        'Unexpected keyword argument "extra" for "job" of "AjContract"',
    ),
    "float_for_decimal": (
        "AjContract(c).job(USER, 1, None, at=AT, plan='s', trial=timedelta(1), price=1.5, "
        "day=date(2026, 1, 1), legacy=AT, zoned=AT, kind=KIND, options=OPTIONS)",
        'Argument "price" to "job" of "AjContract" has incompatible type "float"; expected "Decimal"',
    ),
    "str_for_globalid": (
        "AjContract(c).job('gid://app/User/1', 1, None, at=AT, plan='s', trial=timedelta(1), "
        "price=Decimal(1), day=date(2026, 1, 1), legacy=AT, zoned=AT, kind=KIND, options=OPTIONS)",
        'Argument 1 to "job" of "AjContract" has incompatible type "str"; expected "GlobalID"',
    ),
}


def test_generated_code_passes_mypy_strict_and_ruff(
    generated: tuple[Path, ModuleType],
    tmp_path: Path,
    run_mypy: Callable[[Path, list[str]], subprocess.CompletedProcess[str]],
) -> None:
    root, _ = generated
    shutil.copytree(root / "aj_jobs", tmp_path / "aj_jobs")
    (tmp_path / "uses.py").write_text(USES)
    # One mypy run: the package and the right uses are clean, each wrong use gives its error.
    head = USES.split("\n\n\ndef enqueue")[0]
    bad = "".join(
        f"\n\ndef bad_{name}(c: activejob.ActiveJobClient) -> object:\n    return {line}\n"
        for name, (line, _) in BAD.items()
    )
    (tmp_path / "bad.py").write_text(head + bad)
    proc = run_mypy(tmp_path, ["aj_jobs", "uses.py", "bad.py"])
    errors = [line for line in proc.stdout.splitlines() if ": error:" in line]
    assert all(line.startswith("bad.py:") for line in errors), proc.stdout + proc.stderr
    for name, (_, message) in BAD.items():
        assert message in proc.stdout, (name, proc.stdout)
    assert len({line.split(":")[1] for line in errors}) == len(BAD), proc.stdout
    ruff = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--config",
         str(ROOT / "pyproject.toml"), str(tmp_path / "aj_jobs")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert ruff.returncode == 0, ruff.stdout + ruff.stderr
    text = "".join(p.read_text() for p in (tmp_path / "aj_jobs").glob("*.py"))
    assert "type: ignore" not in text and "noqa" not in text


# --- enqueue: checked values, ActiveJob's wire -----------------------------------------------


def test_enqueue_writes_what_rails_perform_later_writes(
    generated: tuple[Path, ModuleType], cm: gredis.ConnManager, r: redispy.Redis
) -> None:
    """Python's typed perform_later pushes the wrapper with ActiveJob's serializers: the same
    arguments Rails 6.1 itself writes for the Ruby sample (captured from contract_app.rb)."""
    _, mod = generated
    env = mod.AjContract(client(cm)).perform_later(*SAMPLE_ARGS, **SAMPLE_KWARGS)
    assert env is not None and env.job_class == "AjContractJob" and env.queue_name == "contracts"
    (raw,) = r.lrange("queue:contracts", 0, -1)
    pushed = json.loads(raw)
    assert pushed["class"] == aj.JOB_WRAPPER and pushed["wrapped"] == "AjContractJob"
    assert pushed["jid"] == env.provider_job_id
    arguments = pushed["args"][0]["arguments"]
    # The keywords hash: symbol-keyed keyword arguments, default filled in, UNSET left out.
    assert arguments[-1]["_aj_ruby2_keywords"] == [*SAMPLE_KWARGS, "locale"]
    assert arguments[-1]["locale"] == "en" and "coupon" not in arguments[-1]
    assert arguments[-1]["plan"] == {"_aj_serialized": aj.SYMBOL_SERIALIZER, "value": "vip"}
    assert arguments[-1]["price"] == "12.5"  # Rails 6.1: no BigDecimal serializer
    assert arguments[3] == [{"_aj_serialized": aj.SYMBOL_SERIALIZER, "value": v} for v in "ab"]
    # Rails 7.2 for the same call: BigDecimal and the zone's name.
    job = mod.AjContract(client(cm, "7.2")).job(*SAMPLE_ARGS, **SAMPLE_KWARGS)
    kw = job.args[0]["arguments"][-1]
    assert kw["price"] == {"_aj_serialized": aj.BIG_DECIMAL_SERIALIZER, "value": "12.5"}
    assert kw["zoned"]["time_zone"] == "Europe/Paris"
    assert kw["legacy"]["_aj_serialized"] == aj.DATE_TIME_SERIALIZER


def test_enqueue_set_and_scheduling(
    generated: tuple[Path, ModuleType], cm: gredis.ConnManager, r: redispy.Redis
) -> None:
    _, mod = generated
    mail = mod.AjContract(client(cm), priority=4)
    at = datetime(2030, 1, 2, tzinfo=UTC)
    env = mail.set(wait_until=at, queue="later").perform_later(*SAMPLE_ARGS[:3], **SAMPLE_KWARGS)
    assert env is not None and (env.queue_name, env.priority) == ("later", 4)
    [(member, score)] = cast(
        list[tuple[bytes, float]], r.zrange("schedule", 0, -1, withscores=True)
    )
    assert score == at.timestamp() and json.loads(member)["queue"] == "later"
    assert r.llen("queue:contracts") == 0  # set() returned a copy: the original is untouched
    assert mail.job(*SAMPLE_ARGS, **SAMPLE_KWARGS).queue == "contracts"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"count_": 0}, r"AjContractJob args\[1\] \(count_\): must be >= 1, got 0"),
        ({"note": "x" * 51}, r"args\[2\] \(note\): must be at most 50 characters"),
        ({"tags": ["a", 5]}, r"args\[3\] \(tags\)\[1\]: must be a Symbol \(a str\), got 5"),
        ({"plan": 5}, r"args\[4\] \(keywords\)\.plan: must be a Symbol \(a str\), got 5"),
        ({"at": datetime(2026, 1, 1)}, r"\.at: must be a timezone-aware datetime"),
        ({"day": datetime(2026, 1, 1, tzinfo=UTC)}, r"\.day: must be a date, got a datetime"),
        ({"price": 1.5}, r"\.price: must be a Decimal, got 1\.5"),
        ({"price": Decimal("NaN")}, r"\.price: must be a finite Decimal"),
        ({"user": "gid://app/User/1"}, r"args\[0\] \(user\): must be a GlobalID, got a string"),
        ({"kind": "User"}, r"\.kind: must be a RubyModule"),
        (
            {"options": {"label": "x"}},
            r"\.options: KeywordsOptions is missing the required key 'retries'",
        ),
        ({"options": {"retries": 1, "x": 1}}, r"\.options: KeywordsOptions has no key 'x'"),
        ({"locale": aj.Symbol("fr")}, r"\.locale: must be a string, got a Symbol"),
        ({"coupon": UNSET, "trial": "P1D"}, r"\.trial: must be a timedelta, got a string"),
    ],
)
def test_enqueue_refuses_bad_values_before_sending(
    generated: tuple[Path, ModuleType],
    cm: gredis.ConnManager,
    r: redispy.Redis,
    change: dict[str, Any],
    message: str,
) -> None:
    _, mod = generated
    names = ["user", "count_", "note", "tags"]
    args = dict(zip(names, SAMPLE_ARGS, strict=True))
    values = {**args, **SAMPLE_KWARGS, **change}
    with pytest.raises(ArgumentError, match=message):
        mod.AjContract(client(cm)).perform_later(**values)
    assert r.dbsize() == 0


# --- the worker: decoding what Rails pushed --------------------------------------------------


def _record_worker(mod: ModuleType, got: list[Any]) -> Any:
    class Record(mod.AjContractWorker):  # type: ignore[name-defined,misc]  # a generated module
        def perform(self, ctx: Context, envelope: aj.Envelope, *args: Any, **kwargs: Any) -> None:
            got.append((envelope, list(args), kwargs))

    return Record()


def test_worker_decodes_typed_values_and_refuses_contract_breaks(
    generated: tuple[Path, ModuleType],
) -> None:
    """A payload built with the plain codec (as any Rails app could push it): the typed values
    reach perform; a value of the wrong Ruby type fails the job with the contract's error."""
    _, mod = generated
    got: list[Any] = []
    worker = _record_worker(mod, got)
    sent = SAMPLE_KWARGS | {"plan": aj.Symbol("x")}  # what Ruby's perform_later would send
    worker.work(Context(), aj.build_job("AjContractJob", SAMPLE_ARGS[:3], sent))
    _, args, kwargs = got[0]
    assert args == [*SAMPLE_ARGS[:3], UNSET]
    assert kwargs["locale"] == "en" and kwargs["coupon"] is UNSET
    assert type(kwargs["legacy"]) is aj.RubyDateTime and type(kwargs["zoned"]) is aj.TimeWithZone
    assert kwargs["zoned"].zone == "Europe/Paris"
    # A String where the contract says Symbol, a missing and an unknown keyword, another class.
    changes: list[tuple[dict[str, Any], str]] = [
        ({"plan": "vip"}, r"args\[4\] \(keywords\)\.plan: must be a Symbol, got a string"),
        ({"at": None}, r"\.at: must be a datetime, got null"),
        ({"extra": 1}, r"\(keywords\): Keywords has no key 'extra'"),
    ]
    for kwargs_change, message in changes:
        bad = aj.build_job("AjContractJob", SAMPLE_ARGS[:3], sent | kwargs_change)
        with pytest.raises(ArgumentError, match=message):
            worker.work(Context(), bad)
    missing = {k: v for k, v in sent.items() if k != "day"}
    with pytest.raises(ArgumentError, match="Keywords is missing the required key 'day'"):
        worker.work(Context(), aj.build_job("AjContractJob", SAMPLE_ARGS[:3], missing))
    with pytest.raises(ArgumentError, match=r"args\[1\] \(count_\): is required"):
        worker.work(Context(), aj.build_job("AjContractJob", SAMPLE_ARGS[:1], sent))
    with pytest.raises(
        aj.ActiveJobError, match="'OtherJob' reached the worker for 'AjContractJob'"
    ):
        worker.work(Context(), aj.build_job("OtherJob", SAMPLE_ARGS[:3], sent))
    assert len(got) == 1


def test_typed_hooks_get_the_decoded_arguments(generated: tuple[Path, ModuleType]) -> None:
    _, mod = generated
    seen: list[Any] = []

    class Hooked(mod.AjContractWorker):  # type: ignore[name-defined,misc]  # a generated module
        def perform(self, *a: Any, **k: Any) -> None:
            raise RuntimeError("boom")

        def retry_in(self, count: int, exc: BaseException, *a: Any, **k: Any) -> Any:
            seen.append(("retry_in", count, a[1], k["plan"]))
            return "kill"

        def retries_exhausted(self, *a: Any, **k: Any) -> None:
            seen.append(("exhausted", type(a[-1]).__name__, k["locale"]))

    router = Router()
    Hooked().register(router)
    job = aj.build_job("AjContractJob", SAMPLE_ARGS[:3], SAMPLE_KWARGS | {"plan": aj.Symbol("p")})
    adapter = router.resolve(job)
    with pytest.raises(RuntimeError):
        router.work(Context(), job)
    assert adapter.retry_in(2, RuntimeError(), job) == "kill"  # type: ignore[attr-defined]
    adapter.retries_exhausted(job, RuntimeError())  # type: ignore[attr-defined]
    assert seen == [("retry_in", 2, 7, "p"), ("exhausted", "RuntimeError", "en")]
    broken = Job(aj.JOB_WRAPPER, args=[{"job_class": "AjContractJob"}], wrapped="AjContractJob")
    assert adapter.retry_in(1, RuntimeError(), broken) is None  # type: ignore[attr-defined]


# --- real Rails 6.1 + Sidekiq 6.4.1 --------------------------------------------------------------

needs_activejob = pytest.mark.skipif(
    shutil.which("sidekiq") is None
    or subprocess.run(
        ["ruby", "-e", 'require "active_job"'], capture_output=True, check=False
    ).returncode
    != 0,
    reason="Debian's ruby-sidekiq and ruby-activejob are not installed",
)


def app_env(root: Path, redis_url: str) -> dict[str, str]:
    return dict(os.environ, REDIS_URL=redis_url, GOKOGERI_CONTRACTS=str(root / "rb"))


def app(root: Path, redis_url: str, *args: str) -> Any:
    out = subprocess.run(
        ["ruby", str(APP), *args], env=app_env(root, redis_url),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.fixture
def rails_sidekiq(
    generated: tuple[Path, ModuleType], redis_url: str
) -> Iterator[subprocess.Popen[bytes]]:
    """Ruby's Sidekiq running contract_app.rb's AjContractJob on queue "contracts"."""
    log = open(f"/tmp/gokogeri-aj-contract-{os.getpid()}-{time.monotonic_ns()}.log", "w+b")  # noqa: SIM115
    proc = subprocess.Popen(
        ["sidekiq", "-r", str(APP), "-q", "contracts", "-c", "2"],
        env=app_env(generated[0], redis_url) | {"SIDEKIQ_POLL_INTERVAL": "0.5"},
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


def done(r: redispy.Redis, n: int) -> list[dict[str, Any]]:
    records = wait_for(lambda: r.llen(DONE) >= n and r.lrange(DONE, 0, -1), timeout=30)
    return [json.loads(x) for x in records]


@needs_activejob
def test_python_perform_later_reaches_rails_perform_exactly(
    generated: tuple[Path, ModuleType],
    cm: gredis.ConnManager,
    r: redispy.Redis,
    rails_sidekiq: subprocess.Popen[bytes],
) -> None:
    """The generated perform_later -> Rails 6.1's AjContractJob#perform (real keyword
    parameters) receives exactly the Ruby sample: classes, offsets, zones, duration parts,
    symbols, the GlobalID's record. Ruby asserts and records its verdict."""
    _, mod = generated
    mail = mod.AjContract(client(cm))
    now = mail.perform_later(*SAMPLE_ARGS, **SAMPLE_KWARGS)
    soon = mail.set(wait=0.2, priority=5).perform_later(*SAMPLE_ARGS, **SAMPLE_KWARGS)
    assert now is not None and soon is not None
    records = {rec["job_id"]: rec for rec in done(r, 2)}
    for env in (now, soon):
        rec = records[env.job_id]
        assert rec["problems"] == [] and rec["ok"], rec
        assert rec["job"] == "AjContractJob" and rec["jid"] == env.provider_job_id
    assert rails_sidekiq.poll() is None and r.zcard("retry") == 0
    # A payload that breaks the contract (pushed without the typed class: plan is a String)
    # fails in Ruby before perform, in the generated module's check, and waits for a retry.
    raw = client(cm).job("AjContractJob", queue="contracts")
    bad = raw.perform_later(*SAMPLE_ARGS[:3], **(SAMPLE_KWARGS | {"plan": "vip"}))
    assert bad is not None
    (entry,) = wait_for(lambda: r.zrange("retry", 0, -1), timeout=30)
    failed = json.loads(entry)
    assert failed["jid"] == bad.provider_job_id
    assert failed["error_class"] == "GokogeriContracts::ArgumentError"
    assert failed["error_message"] == (
        "AjContractJob args[4] (keywords).plan: must be a Symbol, got a string of length 3"
    )
    assert r.llen(DONE) == 2  # perform never ran


@needs_activejob
def test_generated_ruby_refuses_bad_perform_later_arguments(
    generated: tuple[Path, ModuleType], redis_url: str, cm: gredis.ConnManager, r: redispy.Redis
) -> None:
    """Rails' perform_later through the generated Ruby module: a bad value raises
    GokogeriContracts::ArgumentError, worded as Python words it, and nothing is pushed."""
    root, mod = generated
    refused = app(root, redis_url, "refused")
    assert refused == {
        "count": "AjContractJob args[1] (count_): must be >= 1, got 0",
        "tag": "AjContractJob args[3] (tags)[1]: must be a Symbol, got a string of length 1",
        "plan": "AjContractJob args[4] (keywords).plan: must be a Symbol, got a string of length 3",
        "user": "AjContractJob args[0] (user): must be a GlobalID-locatable record, got a string of length 21",
        "options": "AjContractJob args[4] (keywords).options: KeywordsOptions is missing the required key 'retries'",
        "unknown": "AjContractJob args[4] (keywords): Keywords has no key 'extra' (additionalProperties is false)",
        "day": "AjContractJob args[4] (keywords).day: must be a Date, got a DateTime",
    }
    assert r.dbsize() == 0
    # Python says the same where the rule is the same.
    mail = mod.AjContract(client(cm))
    calls: list[tuple[str, dict[str, Any]]] = [
        ("count", {"count_": 0}),
        ("options", {"options": {"label": "x"}}),
        ("unknown", {"extra": 1}),
    ]
    for key, change in calls:
        values: dict[str, Any] = dict(
            zip(["user", "count_", "note", "tags"], SAMPLE_ARGS, strict=True)
        )
        with pytest.raises((ArgumentError, TypeError)) as info:
            mail.job(**(values | SAMPLE_KWARGS | change))
        if key != "unknown":  # Python refuses an unknown keyword at the call itself
            assert str(info.value) == refused[key]


@needs_activejob
def test_rails_perform_later_is_decoded_by_the_generated_worker(
    generated: tuple[Path, ModuleType], redis_url: str, cm: gredis.ConnManager, r: redispy.Redis
) -> None:
    """Rails 6.1's own AjContractJob.perform_later(...) -> the generated worker on a real Node
    gets the typed values: Symbol, Duration with parts, Decimal (from 6.1's String), DateTime,
    TimeWithZone, RubyModule, GlobalID, the keyword default and UNSET for the one left out."""
    root, mod = generated
    pushed = app(root, redis_url, "enqueue", "python")
    got: list[Any] = []
    router = Router()
    _record_worker(mod, got).register(router)
    node = gokogeri.Node(
        gokogeri.nop_logger(), cm, heartbeat_interval=0.2, poll_interval_average=0.2
    )
    node.process_queues(gokogeri.OrderedQueueSet(["python"]), router, 1)
    with NodeThread(node):
        wait_for(lambda: got, timeout=20)
    envelope, args, kwargs = got[0]
    assert envelope.job_id == pushed["job_id"] and envelope.executions == 0
    want_args, want_kwargs = received_from_rails_61()
    assert differences(args, want_args, "args") == []
    assert list(kwargs) == list(want_kwargs)
    assert differences(kwargs, want_kwargs, "kwargs") == []
    assert r.zcard("retry") == 0


# --- the schema rules -----------------------------------------------------------------------


def _problems(tmp_path: Path, schema: dict[str, Any]) -> list[str]:
    path = tmp_path / "job.json"
    path.write_text(json.dumps(schema))
    with pytest.raises(SchemaError) as info:
        load([path])
    return [f"{p.pointer}: {p.reason}" for p in info.value.problems]


AJ: dict[str, Any] = {"class": "MailJob", "activejob": True}


def xg(**options: Any) -> dict[str, Any]:
    """job_schema's keyword arguments for an ActiveJob job with ``options``."""
    return {"x-gokogeri": AJ | options}


KEYWORDS: dict[str, Any] = {
    "title": "kw",
    "type": "object",
    "x-gokogeri": {"keywords": True},
    "properties": {"at": {"type": "string", "format": "date-time"}},
    "additionalProperties": False,
}


@pytest.mark.parametrize(
    ("schema", "problem"),
    [
        (
            job_schema({"title": "u", "type": "string", "format": "globalid"}),
            "/prefixItems/0/format: format 'globalid' names a Ruby value that only ActiveJob "
            'arguments carry: set "x-gokogeri": {"activejob": true} on the job',
        ),
        (
            job_schema(KEYWORDS),
            "/prefixItems/0/x-gokogeri/keywords: keyword arguments exist only in ActiveJob jobs",
        ),
        (
            job_schema(KEYWORDS, {"title": "n", "type": "integer"}, **xg()),
            "/prefixItems/0/x-gokogeri/keywords: only the last argument can hold the keyword "
            "arguments",
        ),
        (
            job_schema({**KEYWORDS, "additionalProperties": True}, **xg()),
            "/prefixItems/0: the keywords argument needs additionalProperties: false",
        ),
        (
            job_schema({**KEYWORDS, "type": "integer", "properties": None}, **xg()),
            "/prefixItems/0",
        ),
        (
            job_schema({**KEYWORDS, "properties": {"class": {"type": "integer"}}}, **xg()),
            "/prefixItems/0/properties/class: keyword argument 'class' is not a Python identifier",
        ),
        (
            job_schema(
                {"title": "a", "type": "integer"},
                {**KEYWORDS, "properties": {"a": {"type": "integer"}}},
                **xg(),
            ),
            "/prefixItems/1/properties/a: keyword argument 'a' clashes with a parameter",
        ),
        (
            job_schema({**KEYWORDS, "x-gokogeri": {"keywords": 1}}, **xg()),
            '/prefixItems/0/x-gokogeri: an argument\'s x-gokogeri takes only {"keywords": true}',
        ),
        (
            job_schema(**xg(retry=3)),
            "/x-gokogeri/retry: an ActiveJob job takes no retry option",
        ),
        (
            job_schema(**xg(activejob="yes")),
            '/x-gokogeri/activejob: x-gokogeri.activejob must be true or false, got "yes"',
        ),
        (
            job_schema({"title": "r", "type": "string", "format": "ruby-range"}, **xg()),
            "/prefixItems/0/format: format 'ruby-range' is not supported in contracts",
        ),
        (
            job_schema(
                {"title": "s", "type": "string", "format": "ruby-symbol", "default": "x"},
                min_items=0,
                **xg(),
            ),
            "/prefixItems/0/default: defaults are not supported for arguments with a format in "
            "ActiveJob jobs",
        ),
        (
            job_schema(
                {
                    **KEYWORDS,
                    "properties": {
                        "on": {"type": "string", "format": "date", "default": "2026-01-01"}
                    },
                },
                **xg(),
            ),
            '/prefixItems/0/properties/on/default: the default "2026-01-01" does not match the '
            "property's schema: a date value (a Ruby object in ActiveJob) cannot have a JSON default",
        ),
    ],
)
def test_schema_rules(tmp_path: Path, schema: dict[str, Any], problem: str) -> None:
    problems = _problems(tmp_path, schema)
    assert any(p.startswith(problem) for p in problems), problems


def test_contracts_file_of_plain_jobs_is_unchanged(tmp_path: Path) -> None:
    """The activejob/keywords fields are only written when set: contracts files generated
    before them stay byte-identical and load as they are."""
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps(job_schema({"title": "n", "type": "integer"})))
    assert generate([plain], tmp_path / "out", check=False, stdout=open(os.devnull, "w")) == 0  # noqa: SIM115
    text = (tmp_path / "out" / "gokogeri-contracts.json").read_text()
    assert "activejob" not in text and "keywords" not in text
    assert generate([SCHEMA], tmp_path / "aj", check=False, stdout=open(os.devnull, "w")) == 0  # noqa: SIM115
    data = json.loads((tmp_path / "aj" / "gokogeri-contracts.json").read_text())
    (job,) = data["package"]["jobs"]
    assert job["activejob"] is True and job["keywords"] is True


def test_schema_diff_flags_a_change_of_wire_form(tmp_path: Path) -> None:
    from gokogeri.codegen.diff import compare

    def pkg(name: str, *args: dict[str, Any], activejob: bool = True) -> Any:
        opts: dict[str, Any] = (
            {"class": "MailJob", "activejob": True} if activejob else {"class": "MailJob"}
        )
        (tmp_path / name).mkdir()
        path = tmp_path / name / "mail.json"
        path.write_text(json.dumps(job_schema(*args, min_items=1, **{"x-gokogeri": opts})))
        return load([path])

    n = {"title": "n", "type": "integer"}
    aj_kw = pkg("aj_kw", n, KEYWORDS)
    positional = pkg("positional", n, {k: v for k, v in KEYWORDS.items() if k != "x-gokogeri"})
    plain = pkg("plain", n, activejob=False)
    assert not compare(aj_kw, aj_kw).changes
    assert [c.where for c in compare(positional, aj_kw).changes] == ["keywords"]
    changes = compare(plain, pkg("aj", n)).changes
    assert [c.where for c in changes] == ["activejob"]
    assert not changes[0].old_payloads_ok and not changes[0].new_payloads_ok
