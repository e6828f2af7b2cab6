"""The generated enqueue and worker code at run time, without Redis."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from conftest import job_schema
from generated_jobs import (
    ChargeInvoice,
    ChargeInvoiceWorker,
    GenerateReport,
    GenerateReportArgs,
    GenerateReportWorker,
    NightlyCleanup,
    NightlyCleanupWorker,
    SendWelcomeEmail,
    SendWelcomeEmailArgs,
    SendWelcomeEmailWorker,
)
from generated_jobs.charge_invoice import Customer, LineItem, Money
from gokogeri.codegen.runtime import UNSET, ArgumentError, Unset

import gokogeri


class FakeEnqueuer:
    """Records what generated code hands to the Enqueuer."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, gokogeri.Job, Any]] = []

    def enqueue(self, job: gokogeri.Job) -> str | None:
        self.calls.append(("enqueue", job, None))
        return "a" * 24

    def enqueue_in(self, job: gokogeri.Job, seconds: float) -> str | None:
        self.calls.append(("enqueue_in", job, seconds))
        return "b" * 24

    def enqueue_at(self, job: gokogeri.Job, at: datetime | float) -> str | None:
        self.calls.append(("enqueue_at", job, at))
        return "c" * 24

    def enqueue_bulk(self, jobs: Sequence[gokogeri.Job]) -> list[str | None]:
        for job in jobs:
            self.calls.append(("bulk", job, None))
        return [f"{i:024x}" for i in range(len(jobs))]


UTC = UTC
RID = uuid.UUID("0b7e4a52-4c1e-4f5e-9f57-3f2a1c0d9e11")
MONEY: Money = {"amount_cents": 1250, "currency": "eur"}
CUSTOMER: Customer = {
    "id": 7,
    "name": "Ada",
    "billing_address": {"line1": "1 Main St", "line2": None, "city": "Paris", "country": "FR"},
}
ITEMS: list[LineItem] = [{"sku": "A-1", "quantity": 2, "unit_price": MONEY}]


class Recorder(SendWelcomeEmailWorker):
    def __init__(self) -> None:
        self.seen: list[tuple[Any, ...]] = []

    def perform(
        self,
        ctx: gokogeri.Context,
        user_id: int,
        email: str,
        locale: Any = "en",
        referrer_code: str | None = None,
    ) -> None:
        self.seen.append((user_id, email, locale, referrer_code))


class ReportRecorder(GenerateReportWorker):
    def __init__(self) -> None:
        self.seen: list[tuple[Any, ...]] = []

    def perform(self, ctx: gokogeri.Context, *args: Any) -> None:  # type: ignore[override]
        self.seen.append(args)


# --- enqueue side ---


def test_enqueue_builds_the_sidekiq_job() -> None:
    enq = FakeEnqueuer()
    assert SendWelcomeEmail.enqueue(enq, 42, "ada@example.com") == "a" * 24
    ((kind, job, _),) = enq.calls
    assert kind == "enqueue"
    assert job.class_name == "SendWelcomeEmailJob"
    assert job.queue == "mailers"
    assert job.retry == 5
    # Defaults are written out, so the payload says what the job runs with.
    assert job.args == [42, "ada@example.com", "en", None]


def test_options_override_queue_retry_jid() -> None:
    job = SendWelcomeEmail.job(1, "a@b.c", "fr", queue="urgent", retry=False, jid="f" * 24)
    assert (job.queue, job.retry, job.jid, job.args) == (
        "urgent",
        False,
        "f" * 24,
        [1, "a@b.c", "fr", None],
    )


def test_enqueue_in_and_at_pass_the_time_through() -> None:
    enq = FakeEnqueuer()
    at = datetime(2030, 1, 1, tzinfo=UTC)
    SendWelcomeEmail.enqueue_in(enq, 30.0, 1, "a@b.c")
    SendWelcomeEmail.enqueue_at(enq, at, 1, "a@b.c")
    assert [(k, x) for k, _, x in enq.calls] == [("enqueue_in", 30.0), ("enqueue_at", at)]


def test_formats_are_iso_strings_on_the_wire() -> None:
    job = GenerateReport.job(
        RID,
        "sales",
        date(2024, 1, 1),
        date(2024, 1, 31),
        None,
        datetime(2024, 2, 1, 9, 30, tzinfo=UTC),
    )
    assert job.args == [
        "0b7e4a52-4c1e-4f5e-9f57-3f2a1c0d9e11",
        "sales",
        "2024-01-01",
        "2024-01-31",
        None,
        "2024-02-01T09:30:00Z",
        "pdf",
        "UTC",
        None,
        False,
    ]
    tz = timezone(timedelta(hours=9))
    job = GenerateReport.job(
        RID, "churn", date(2024, 1, 1), date(2024, 1, 2), 3, datetime(2024, 1, 1, tzinfo=tz)
    )
    assert job.args[5] == "2024-01-01T00:00:00+09:00"


def test_optional_without_default_is_left_off_the_wire() -> None:
    job = GenerateReport.job(
        RID, "sales", date(2024, 1, 1), date(2024, 1, 2), None, datetime(2024, 1, 1, tzinfo=UTC)
    )
    assert len(job.args) == 10  # notify_email (UNSET) is not sent
    job = GenerateReport.job(
        RID,
        "sales",
        date(2024, 1, 1),
        date(2024, 1, 2),
        None,
        datetime(2024, 1, 1, tzinfo=UTC),
        notify_email="ops@example.com",
    )
    assert job.args[-1] == "ops@example.com" and len(job.args) == 11


def test_optional_in_the_middle_cannot_be_skipped(compile_schema: Any) -> None:
    mod = compile_schema(
        job_schema(
            {"title": "a", "type": "integer"}, {"title": "b", "type": "integer"}, min_items=0
        )
    )
    assert mod.Test.job().args == []
    assert mod.Test.job(1).args == [1]
    with pytest.raises(
        ArgumentError, match=r"args\[1\] \(b\): cannot be given while args\[0\] \(a\) is left out"
    ):
        mod.Test.job(b=2)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: SendWelcomeEmail.job("42", "a@b.c"),
            r"SendWelcomeEmailJob args\[0\] \(user_id\): must be an integer, got a string",
        ),
        (
            lambda: SendWelcomeEmail.job(True, "a@b.c"),
            r"args\[0\] \(user_id\): must be an integer, got true",
        ),
        (lambda: SendWelcomeEmail.job(0, "a@b.c"), r"args\[0\] \(user_id\): must be >= 1, got 0"),
        (lambda: SendWelcomeEmail.job(1, "nope"), r"args\[1\] \(email\): must match the pattern"),
        (
            lambda: SendWelcomeEmail.job(1, "a@b.c", "xx"),
            r"args\[2\] \(locale\): must be one of 'en', 'fr', 'de', 'ja'; got 'xx'",
        ),
        (
            lambda: SendWelcomeEmail.job(1, "a@b.c", "en", 5),
            r"args\[3\] \(referrer_code\): must be a string, got 5",
        ),
        (
            lambda: ChargeInvoice.job(
                RID, {"amount_cents": -1, "currency": "eur"}, CUSTOMER, ITEMS, "card", None
            ),
            r"args\[1\] \(amount\)\.amount_cents: must be >= 0, got -1",
        ),
        (
            lambda: ChargeInvoice.job(
                RID,
                MONEY,
                {**CUSTOMER, "billing_address": {"line1": "x", "city": "y", "country": "FR"}},
                ITEMS,
                "card",
                None,
            ),
            r"args\[2\] \(customer\)\.billing_address: Address is missing the required key 'line2'",
        ),
        (
            lambda: ChargeInvoice.job(
                RID, MONEY, CUSTOMER, [{**ITEMS[0], "colour": "red"}], "card", None
            ),
            r"args\[3\] \(line_items\)\[0\]: LineItem has no key 'colour' \(additionalProperties is false\)",
        ),
        (
            lambda: ChargeInvoice.job(RID, MONEY, CUSTOMER, [], "card", None),
            r"args\[3\] \(line_items\): must have at least 1 items, got 0",
        ),
        (
            lambda: ChargeInvoice.job(str(RID), MONEY, CUSTOMER, ITEMS, "card", None),
            r"args\[0\] \(invoice_id\): must be a UUID, got a string",
        ),
        (
            lambda: GenerateReport.job(
                RID, "sales", date(2024, 1, 1), date(2024, 1, 2), None, datetime(2024, 1, 1)
            ),
            r"args\[5\] \(requested_at\): must be a timezone-aware datetime",
        ),
        (
            lambda: GenerateReport.job(
                RID,
                "sales",
                datetime(2024, 1, 1, tzinfo=UTC),
                date(2024, 1, 2),
                None,
                datetime(2024, 1, 1, tzinfo=UTC),
            ),
            r"args\[2\] \(from_date\): must be a date, got a datetime",
        ),
        (
            lambda: ChargeInvoice.job(RID, MONEY, CUSTOMER, ITEMS, "card", None, {"k": 1}),
            r"args\[6\] \(metadata\)\.k: must be a string, got 1",
        ),
    ],
)
def test_enqueue_rejects_bad_values_before_sending(call: Any, message: str) -> None:
    with pytest.raises(ArgumentError, match=message):
        call()


def test_argument_error_is_a_type_and_value_error_with_fields() -> None:
    with pytest.raises(ArgumentError) as info:
        SendWelcomeEmail.job(1, 2)  # type: ignore[arg-type]
    e = info.value
    assert (
        isinstance(e, TypeError)
        and isinstance(e, ValueError)
        and isinstance(e, gokogeri.GokogeriError)
    )
    assert (e.job_class, e.position, e.name, e.path, e.rule) == (
        "SendWelcomeEmailJob",
        1,
        "email",
        "",
        "must be a string, got 2",
    )


def test_nothing_is_sent_when_any_bulk_item_is_bad() -> None:
    enq = FakeEnqueuer()
    with pytest.raises(ArgumentError, match=r"args\[0\] \(user_id\)"):
        SendWelcomeEmail.enqueue_bulk(enq, [(1, "a@b.c"), (-5, "a@b.c")])
    assert enq.calls == []


def test_bulk_takes_records_and_tuples() -> None:
    enq = FakeEnqueuer()
    jids = SendWelcomeEmail.enqueue_bulk(
        enq,
        [
            SendWelcomeEmailArgs(1, "a@b.c"),
            (2, "b@b.c"),
            (3, "c@b.c", "ja"),
            (4, "d@b.c", "de", "REF"),
        ],
        retry=1,
    )
    assert len(jids) == 4
    assert [j.args for _, j, _ in enq.calls] == [
        [1, "a@b.c", "en", None],
        [2, "b@b.c"],
        [3, "c@b.c", "ja"],
        [4, "d@b.c", "de", "REF"],
    ]
    assert {(j.queue, j.retry) for _, j, _ in enq.calls} == {("mailers", 1)}
    NightlyCleanup.enqueue_bulk(enq, [(), ()])
    assert [j.args for _, j, _ in enq.calls[4:]] == [[], []]


def test_args_records_have_the_same_defaults() -> None:
    r = GenerateReportArgs(
        RID, "sales", date(2024, 1, 1), date(2024, 1, 2), None, datetime(2024, 1, 1, tzinfo=UTC)
    )
    assert (r.format_, r.timezone, r.max_rows, r.include_archived, r.notify_email) == (
        "pdf",
        "UTC",
        None,
        False,
        UNSET,
    )


def test_class_constants() -> None:
    assert (ChargeInvoice.CLASS_NAME, ChargeInvoice.QUEUE, ChargeInvoice.RETRY) == (
        "Billing::ChargeInvoiceJob",
        "billing",
        3,
    )
    assert (NightlyCleanup.QUEUE, NightlyCleanup.RETRY) == ("low", False)
    assert GenerateReport.RETRY is True


# --- worker side ---


def ctx() -> gokogeri.Context:
    return gokogeri.Context()


def test_worker_decodes_and_calls_perform_through_a_router() -> None:
    worker = Recorder()
    router = gokogeri.Router()
    worker.register(router)
    assert "SendWelcomeEmailJob" in router
    payload = json.dumps(
        {"class": "SendWelcomeEmailJob", "queue": "mailers", "args": [1, "a@b.c"], "jid": "0" * 24}
    )
    router.work(ctx(), gokogeri.Job.decode(payload))
    # A producer (Ruby) that leaves defaulted args out gets the schema's defaults.
    assert worker.seen == [(1, "a@b.c", "en", None)]


def test_round_trip_through_the_wire_gives_python_types_back() -> None:
    at = datetime(2024, 2, 1, 9, 30, 15, 250000, tzinfo=UTC)
    job = GenerateReport.job(
        RID,
        "sales",
        date(2024, 1, 1),
        date(2024, 1, 31),
        5,
        at,
        "csv",
        "Asia/Tokyo",
        100,
        True,
        "x@y.z",
    )
    worker = ReportRecorder()
    worker.work(ctx(), gokogeri.Job.decode(job.encode()))
    assert worker.seen == [
        (
            RID,
            "sales",
            date(2024, 1, 1),
            date(2024, 1, 31),
            5,
            at,
            "csv",
            "Asia/Tokyo",
            100,
            True,
            "x@y.z",
        )
    ]


def test_worker_sees_unset_for_a_left_out_optional_arg() -> None:
    worker = ReportRecorder()
    args = [str(RID), "sales", "2024-01-01", "2024-01-02", None, "2024-01-01T00:00:00+01:00"]
    worker.work(ctx(), gokogeri.Job("Reports::GenerateReportJob", args=args))
    seen = worker.seen[0]
    assert seen[6:] == ("pdf", "UTC", None, False, UNSET)
    assert isinstance(seen[10], Unset)
    assert seen[5] == datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=1)))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            [1],
            r"SendWelcomeEmailJob args\[1\] \(email\): is required \(the job has 1 of 2 required arguments\)",
        ),
        (
            [1, "a@b.c", "en", None, "extra"],
            r"args\[4\] \(extra\): is not allowed: the job takes at most 4 arguments, got 5",
        ),
        (["1", "a@b.c"], r"args\[0\] \(user_id\): must be an integer, got a string of length 1"),
        ([1.5, "a@b.c"], r"args\[0\] \(user_id\): must be an integer, got 1.5"),
        ([1, None], r"args\[1\] \(email\): must be a string, got null"),
        (
            [1, "a@b.c", "EN"],
            r"args\[2\] \(locale\): must be one of 'en', 'fr', 'de', 'ja'; got 'EN'",
        ),
    ],
)
def test_worker_rejects_payloads_that_break_the_schema(args: list[Any], message: str) -> None:
    with pytest.raises(ArgumentError, match=message):
        Recorder().work(ctx(), gokogeri.Job("SendWelcomeEmailJob", args=args))


def test_worker_accepts_integral_floats_for_integers() -> None:
    w = Recorder()
    w.work(ctx(), gokogeri.Job("SendWelcomeEmailJob", args=[2.0, "a@b.c"]))
    assert w.seen == [(2, "a@b.c", "en", None)]
    assert type(w.seen[0][0]) is int


@pytest.mark.parametrize(
    ("index", "value", "message"),
    [
        (0, "not-a-uuid", r"args\[0\] \(invoice_id\): must be a hyphenated UUID string"),
        (
            1,
            {"amount_cents": 5, "currency": "chf"},
            r"args\[1\] \(amount\)\.currency: must be one of 'usd', 'eur', 'gbp', 'jpy'; got 'chf'",
        ),
        (
            2,
            {**CUSTOMER, "billing_address": {**CUSTOMER["billing_address"], "country": "fr"}},
            r"args\[2\] \(customer\)\.billing_address\.country: must match the pattern",
        ),
        (
            3,
            [{"sku": "x", "quantity": 1, "unit_price": MONEY, "tax_rate": 1.5}],
            r"args\[3\] \(line_items\)\[0\]\.tax_rate: must be <= 1",
        ),
        (
            5,
            {"code": "X"},
            r"args\[5\] \(coupon\): Coupon is missing the required key 'percent_off'",
        ),
    ],
)
def test_worker_errors_point_inside_nested_values(index: int, value: Any, message: str) -> None:
    args: list[Any] = [str(RID), MONEY, CUSTOMER, ITEMS, "card", None]
    args[index] = value

    class W(ChargeInvoiceWorker):
        def perform(self, ctx: gokogeri.Context, *a: Any) -> None:  # type: ignore[override]
            raise AssertionError("must not run")

    with pytest.raises(ArgumentError, match=message):
        W().work(ctx(), gokogeri.Job("Billing::ChargeInvoiceJob", args=args))


def test_date_time_on_the_wire_must_carry_an_offset() -> None:
    args = [str(RID), "sales", "2024-01-01", "2024-01-02", None, "2024-01-01T00:00:00"]
    with pytest.raises(
        ArgumentError, match=r"args\[5\] \(requested_at\): must be an RFC 3339 date-time"
    ):
        ReportRecorder().work(ctx(), gokogeri.Job("Reports::GenerateReportJob", args=args))
    args[5] = "2024-02-30T00:00:00Z"
    with pytest.raises(ArgumentError, match=r"must be a valid date-time"):
        ReportRecorder().work(ctx(), gokogeri.Job("Reports::GenerateReportJob", args=args))


def test_no_arg_job() -> None:
    ran: list[bool] = []

    class Cleanup(NightlyCleanupWorker):
        def perform(self, ctx: gokogeri.Context) -> None:
            ran.append(True)

    Cleanup().work(ctx(), gokogeri.Job("NightlyCleanupJob"))
    assert ran == [True]
    with pytest.raises(ArgumentError, match=r"args\[0\] \(extra\): is not allowed"):
        Cleanup().work(ctx(), gokogeri.Job("NightlyCleanupJob", args=[1]))
    assert NightlyCleanup.job().args == []


def test_abstract_worker_cannot_be_instantiated() -> None:
    with pytest.raises(TypeError, match="abstract"):
        SendWelcomeEmailWorker()  # type: ignore[abstract]


# --- the four argument states ---

FOUR = job_schema(
    {"title": "required", "type": "integer"},
    {"title": "required nullable", "type": ["integer", "null"]},
    {"title": "optional", "type": "integer"},
    {"title": "optional default", "type": ["integer", "null"], "default": 7},
    min_items=2,
)


def test_four_states_enqueue(compile_schema: Any) -> None:
    mod = compile_schema(FOUR)
    job = mod.Test.job
    assert job(1, None).args == [1, None]  # optional left out: the default after it is dropped
    assert job(1, 2, 3).args == [1, 2, 3, 7]
    assert job(1, 2, 3, None).args == [1, 2, 3, None]
    with pytest.raises(TypeError):
        job(1)  # required-nullable has no default: None must be passed explicitly
    with pytest.raises(
        ArgumentError, match=r"args\[0\] \(required\): must be an integer, got null"
    ):
        job(None, None)
    with pytest.raises(
        ArgumentError,
        match=r"args\[3\] \(optional_default\): cannot be given while args\[2\] \(optional\) is left out",
    ):
        job(1, 2, optional_default=None)


def test_four_states_decode(compile_schema: Any) -> None:
    mod = compile_schema(FOUR)
    seen: list[tuple[Any, ...]] = []

    class W(mod.TestWorker):  # type: ignore[name-defined,misc]
        def perform(self, ctx: gokogeri.Context, *a: Any) -> None:
            seen.append(a)

    for args in ([1, None], [1, 2, 3], [1, 2, 3, None]):
        W().work(ctx(), gokogeri.Job("TestJob", args=args))
    assert seen == [(1, None, UNSET, 7), (1, 2, 3, 7), (1, 2, 3, None)]
    with pytest.raises(ArgumentError, match=r"args\[1\] \(required_nullable\): is required"):
        W().work(ctx(), gokogeri.Job("TestJob", args=[1]))
