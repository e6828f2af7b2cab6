"""mypy --strict on code that uses the generated package: right uses pass, wrong ones fail as expected."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import GENERATED

PRELUDE = """\
from __future__ import annotations

import uuid
from datetime import date, datetime, timezone

import gokogeri
from gokogeri.codegen.runtime import UNSET, Unset
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

RID = uuid.uuid4()
AT = datetime(2024, 1, 1, tzinfo=timezone.utc)
MONEY: Money = {"amount_cents": 100, "currency": "usd"}
CUSTOMER: Customer = {
    "id": 1,
    "name": "Ada",
    "billing_address": {"line1": "x", "line2": None, "city": "y", "country": "FR"},
}
"""

GOOD = {
    "enqueue": """
def use(enq: gokogeri.Enqueuer) -> list[str | None]:
    jids = [
        SendWelcomeEmail.enqueue(enq, 42, "ada@example.com"),
        SendWelcomeEmail.enqueue(enq, 42, "ada@example.com", "ja", referrer_code=None, queue="x", retry=3),
        SendWelcomeEmail.enqueue_in(enq, 60.0, 42, "ada@example.com", locale="fr"),
        SendWelcomeEmail.enqueue_at(enq, AT, 42, "ada@example.com", jid="0" * 24),
        ChargeInvoice.enqueue(enq, RID, MONEY, CUSTOMER, [{"sku": "a", "quantity": 1, "unit_price": MONEY}], "card", None),
        ChargeInvoice.enqueue(enq, RID, MONEY, CUSTOMER, [], "sepa_debit", {"code": "X", "percent_off": 5}, {"k": "v"}),
        GenerateReport.enqueue(enq, RID, "sales", date(2024, 1, 1), date(2024, 1, 2), None, AT),
        GenerateReport.enqueue(enq, RID, "churn", date(2024, 1, 1), date(2024, 1, 2), 7, AT, "csv", max_rows=None, notify_email="a@b.c"),
        NightlyCleanup.enqueue(enq),
        NightlyCleanup.enqueue_at(enq, 1700000000.0, retry=False),
    ]
    jids += SendWelcomeEmail.enqueue_bulk(enq, [SendWelcomeEmailArgs(1, "a@b.c"), (2, "b@b.c"), (3, "c@b.c", "de", "REF")])
    jids += GenerateReport.enqueue_bulk(enq, [GenerateReportArgs(RID, "sales", date(2024, 1, 1), date(2024, 1, 2), None, AT)])
    jids += NightlyCleanup.enqueue_bulk(enq, [(), ()], queue="low")
    job: gokogeri.Job = SendWelcomeEmail.job(1, "a@b.c")
    return jids + [enq.enqueue(job)]
""",
    "worker": """
class Welcome(SendWelcomeEmailWorker):
    def perform(self, ctx: gokogeri.Context, user_id: int, email: str, locale: str = "en", referrer_code: str | None = None) -> None:
        ctx.logger.info("welcome %s", user_id)


class Report(GenerateReportWorker):
    def perform(
        self,
        ctx: gokogeri.Context,
        report_id: uuid.UUID,
        kind: str,
        from_date: date,
        to_date: date,
        requested_by: int | None,
        requested_at: datetime,
        format_: str = "pdf",
        timezone: str = "UTC",
        max_rows: int | None = None,
        include_archived: bool = False,
        notify_email: str | Unset = UNSET,
    ) -> None:
        if notify_email is not UNSET:
            notify_email.upper()  # narrowed to str


class Charge(ChargeInvoiceWorker):
    def perform(self, ctx: gokogeri.Context, invoice_id: uuid.UUID, amount: Money, customer: Customer,
                line_items: list[LineItem], payment_method: str, coupon: object,
                metadata: dict[str, str] | Unset = UNSET) -> None:
        total = amount["amount_cents"] + sum(i["quantity"] for i in line_items)
        ctx.logger.info("%s %s", customer["billing_address"]["city"], total)


class Cleanup(NightlyCleanupWorker):
    def perform(self, ctx: gokogeri.Context) -> None:
        pass


def routes() -> gokogeri.Router:
    router = gokogeri.Router()
    for w in (Welcome(), Report(), Charge(), Cleanup()):
        w.register(router)
    worker: gokogeri.Worker = Welcome()
    return router if worker else router
""",
}

BAD = {
    "wrong_type": (
        'SendWelcomeEmail.job("42", "a@b.c")',
        r'Argument 1 to "job" of "SendWelcomeEmail" has incompatible type "str"; expected "int"  \[arg-type\]',
    ),
    "none_for_required": (
        'SendWelcomeEmail.job(None, "a@b.c")',
        r'Argument 1 to "job" of "SendWelcomeEmail" has incompatible type "None"; expected "int"  \[arg-type\]',
    ),
    "missing_arg": (
        "SendWelcomeEmail.job(42)",
        r'Missing positional argument "email" in call to "job" of "SendWelcomeEmail"  \[call-arg\]',
    ),
    "missing_required_nullable": (
        'GenerateReport.job(RID, "sales", date(2024, 1, 1), date(2024, 1, 2), requested_at=AT)',
        r'Missing positional argument "requested_by" in call to "job" of "GenerateReport"  \[call-arg\]',
    ),
    "extra_arg": (
        'SendWelcomeEmail.job(42, "a@b.c", "en", None, "extra")',
        r'Too many positional arguments for "job" of "SendWelcomeEmail"  \[call-arg\]',
    ),
    "unknown_keyword": (
        'SendWelcomeEmail.job(42, "a@b.c", priority=1)',
        r'Unexpected keyword argument "priority" for "job" of "SendWelcomeEmail"  \[call-arg\]',
    ),
    "wrong_enum": (
        'SendWelcomeEmail.job(42, "a@b.c", locale="xx")',
        r"Argument \"locale\" to \"job\" of \"SendWelcomeEmail\" has incompatible type \"Literal\['xx'\]\"; expected \"Literal\['en', 'fr', 'de', 'ja'\]\"  \[arg-type\]",
    ),
    "wrong_enum_in_typeddict": (
        'm: Money = {"amount_cents": 1, "currency": "chf"}',
        r'Incompatible types \(expression has type "Literal\[\'chf\'\]", TypedDict item "currency" has type',
    ),
    "typeddict_missing_key": (
        'm: Money = {"amount_cents": 1}',
        r'Missing key "currency" for TypedDict "Money"  \[typeddict-item\]',
    ),
    "typeddict_extra_key": (
        'li: LineItem = {"sku": "a", "quantity": 1, "unit_price": MONEY, "colour": "red"}',
        r'Extra key "colour" for TypedDict "LineItem"  \[typeddict-unknown-key\]',
    ),
    "str_for_uuid": (
        'GenerateReport.job("id", "sales", date(2024, 1, 1), date(2024, 1, 2), None, AT)',
        r'Argument 1 to "job" of "GenerateReport" has incompatible type "str"; expected "UUID"  \[arg-type\]',
    ),
    "date_for_datetime": (
        'GenerateReport.job(RID, "sales", date(2024, 1, 1), date(2024, 1, 2), None, date(2024, 1, 1))',
        r'Argument 6 to "job" of "GenerateReport" has incompatible type "date"; expected "datetime"  \[arg-type\]',
    ),
    "bulk_bad_tuple": (
        "SendWelcomeEmail.enqueue_bulk(gokogeri.Enqueuer.__new__(gokogeri.Enqueuer), [(1,)])",
        r'List item 0 has incompatible type "tuple\[int\]"',
    ),
    "wrong_return_type": (
        """
class W(SendWelcomeEmailWorker):
    def perform(self, ctx: gokogeri.Context, user_id: int, email: str, locale: str = "en", referrer_code: str | None = None) -> int:
        return 1
""",
        r'Return type "int" of "perform" incompatible with return type "None" in supertype "(generated_jobs\.send_welcome_email\.)?SendWelcomeEmailWorker"  \[override\]',
    ),
    "wrong_perform_param": (
        """
class W(SendWelcomeEmailWorker):
    def perform(self, ctx: gokogeri.Context, user_id: str, email: str, locale: str = "en", referrer_code: str | None = None) -> None:
        pass
""",
        r'Argument 2 of "perform" is incompatible with supertype "(generated_jobs\.send_welcome_email\.)?SendWelcomeEmailWorker"; supertype defines the argument type as "int"  \[override\]',
    ),
    "perform_missing_param": (
        """
class W(SendWelcomeEmailWorker):
    def perform(self, ctx: gokogeri.Context, user_id: int) -> None:
        pass
""",
        r'Signature of "perform" incompatible with supertype "(generated_jobs\.send_welcome_email\.)?SendWelcomeEmailWorker"  \[override\]',
    ),
    "unimplemented_worker": (
        "SendWelcomeEmailWorker()",
        r'Cannot instantiate abstract class "SendWelcomeEmailWorker" with abstract attribute "perform"  \[abstract\]',
    ),
    "unset_not_narrowed": (
        """
def f(x: str | Unset) -> str:
    return x
""",
        r'Incompatible return value type \(got "str \| Unset", expected "str"\)  \[return-value\]',
    ),
}


@pytest.fixture(scope="module")
def mypy_results(
    tmp_path_factory: pytest.TempPathFactory,
    run_mypy: Callable[[Path, list[str]], subprocess.CompletedProcess[str]],
) -> dict[str, list[str]]:
    work = tmp_path_factory.mktemp("typing")
    shutil.copytree(GENERATED, work / "generated_jobs")
    names = []
    for name, body in GOOD.items():
        (work / f"good_{name}.py").write_text(PRELUDE + body)
        names.append(f"good_{name}.py")
    for name, (body, _) in BAD.items():
        (work / f"bad_{name}.py").write_text(PRELUDE + "\n" + body.strip() + "\n")
        names.append(f"bad_{name}.py")
    proc = run_mypy(work, names)
    assert "Traceback" not in proc.stderr, proc.stderr
    results: dict[str, list[str]] = {n.removesuffix(".py"): [] for n in names}
    for line in proc.stdout.splitlines():
        m = re.match(r"(\w+)\.py:\d+: error: (.*)", line)
        if m:
            results.setdefault(m.group(1), []).append(m.group(2))
    return results


@pytest.mark.parametrize("name", sorted(GOOD))
def test_correct_use_passes_mypy_strict(mypy_results: dict[str, list[str]], name: str) -> None:
    assert mypy_results[f"good_{name}"] == []


@pytest.mark.parametrize("name", sorted(BAD))
def test_wrong_use_fails_mypy_strict(mypy_results: dict[str, list[str]], name: str) -> None:
    errors = mypy_results[f"bad_{name}"]
    expected = BAD[name][1]
    assert any(re.search(expected, e) for e in errors), errors
