"""Job contracts across the boundary: the Ruby modules `gokogeri generate --ruby` writes, run by
real Ruby Sidekiq (6.4.1, 7.3.2, 8.1.7), against the Python code generated from the same schemas.

- a Ruby push with bad arguments is refused before anything is sent, with the message the
  Python side gives for the same values;
- values pushed by the generated Ruby are decoded by the generated Python worker (defaults
  filled in, nested objects), and values pushed by the generated Python are decoded by a Ruby
  job class that includes the generated Job mixin.

The generated Ruby under interop/ruby/contracts/ is committed (it is mounted into the
containers); the first test fails if it is stale. Regenerate with
``gokogeri generate schemas --ruby interop/ruby/contracts``. The jobs use queues Sidekiq does
not work here (crm, billing, mailers, reports), so each side reads the other's payloads itself.
"""

from __future__ import annotations

import importlib
import io
import json
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from gokogeri.codegen.cli import OK, generate
from gokogeri.codegen.runtime import ArgumentError
from harness import InteropEnv

import gokogeri
from gokogeri import redis as gredis

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "schemas"
CONTRACTS = Path(__file__).resolve().parent / "ruby" / "contracts"
ITEM = {
    "sku": "a",
    "quantity": 1,
    "unit_price": {"amount_cents": 1, "currency": "usd"},
    "tax_rate": 0.2,
}
INVOICE = "6f1c0a3e-2d4b-4c5a-8e9f-0a1b2c3d4e5f"
CUSTOMER = {
    "id": 1,
    "name": "Ada",
    "billing_address": {"line1": "1 rue", "line2": None, "city": "Paris", "country": "FR"},
}


@pytest.fixture(scope="module")
def jobs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The Python package generated from schemas/, imported."""
    root = tmp_path_factory.mktemp("contracts")
    assert generate([SCHEMAS], root / "contract_jobs", False) == OK
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module("contract_jobs")
    finally:
        sys.path.remove(str(root))


def test_committed_ruby_contracts_are_up_to_date() -> None:
    out, err = io.StringIO(), io.StringIO()
    code = generate([SCHEMAS], None, True, out, err, ruby=CONTRACTS)
    assert code == OK, out.getvalue() + err.getvalue()


# (api, args as JSON); charge_invoice's first argument is a UUID object in Python.
BAD = [
    ("SendWelcomeEmail", [0, "a@b.c"]),
    ("SendWelcomeEmail", [True, "a@b.c"]),
    ("SendWelcomeEmail", [1, "a@b.c", "xx"]),
    ("SendWelcomeEmail", [1, "a@" + "b" * 300]),
    (
        "ChargeInvoice",
        [INVOICE, {"amount_cents": -1, "currency": "usd"}, CUSTOMER, [], "card", None],
    ),
    (
        "ChargeInvoice",
        [INVOICE, {"amount_cents": 1, "currency": "usd"}, {**CUSTOMER, "id": 0}, [], "card", None],
    ),
    (
        "ChargeInvoice",
        [INVOICE, {"amount_cents": 1, "currency": "usd", "x": 1}, CUSTOMER, [], "card", None],
    ),
    ("SyncContact", [{"email": "a@b.c", "name": "9lives"}, 1, "https://x"]),
    ("SyncContact", [{"email": "a@b.c", "name": "Zoë"}, 2.5, "https://x"]),
    ("SyncContact", [{"email": "a@b.c", "name": "Zoë"}, 1, "https://x", 15]),
    ("SyncContact", [{"email": "a@b.c", "name": "Zoë", "tags": ["a", 2]}, 1, "x:y"]),
]


def _python_message(jobs: ModuleType, api: str, args: list[Any]) -> str:
    values = list(args)
    if api == "ChargeInvoice":
        values[0] = uuid.UUID(values[0])
    with pytest.raises(ArgumentError) as e:
        getattr(jobs, api).job(*values)
    return str(e.value)


def test_ruby_push_refuses_bad_arguments_with_the_python_message(
    sk: InteropEnv, jobs: ModuleType
) -> None:
    got = sk.ruby_json(
        "contracts/driver.rb",
        "push",
        stdin=json.dumps([[api, "perform_async", args] for api, args in BAD]),
    )
    assert got == [{"error": _python_message(jobs, api, args)} for api, args in BAD]
    r = sk.redis()
    try:
        assert r.llen("queue:mailers") == r.llen("queue:billing") == r.llen("queue:crm") == 0
    finally:
        r.close()


def test_ruby_pushes_python_worker_decodes(sk: InteropEnv, jobs: ModuleType) -> None:
    pushes = [
        ["SyncContact", "perform_async", [{"email": "zoe@example.com", "name": "Zoë", "address": {"city": "Lyon"}}, "crm-7", "https://crm.example/c/7"]],
        ["ChargeInvoice", "perform_async", [INVOICE.upper(), {"amount_cents": 100, "currency": "eur"}, CUSTOMER, [{"sku": "a", "quantity": 2, "unit_price": {"amount_cents": 50, "currency": "eur"}}], "card", None]],
        ["SendWelcomeEmail", "perform_async", [5, "q@x.io"]],
    ]  # fmt: skip
    jids = sk.ruby_json("contracts/driver.rb", "push", stdin=json.dumps(pushes))
    assert all(isinstance(j, str) and len(j) == 24 for j in jids), jids
    seen: list[tuple[str, list[Any]]] = []

    def recorder(base: type) -> Any:
        class Rec(base):  # type: ignore[misc, valid-type]  # a generated base, imported at run time
            def perform(self, ctx: gokogeri.Context, *values: Any) -> None:
                seen.append((self.CLASS_NAME, list(values)))

        return Rec()

    router = gokogeri.Router()
    for base in (jobs.SyncContactWorker, jobs.ChargeInvoiceWorker, jobs.SendWelcomeEmailWorker):
        recorder(base).register(router)
    for queue in ("crm", "billing", "mailers"):
        for raw in sk.raw_list(f"queue:{queue}"):
            router.work(gokogeri.Context(), gokogeri.Job.decode(raw))
    assert seen == [
        (
            "Crm::SyncContactJob",
            [
                {
                    "email": "zoe@example.com",
                    "name": "Zoë",
                    "address": {"city": "Lyon", "country": "FR"},
                    "opt_in": False,
                    "tags": [],
                },
                "crm-7",
                "https://crm.example/c/7",
                50,
            ],
        ),
        (
            "Billing::ChargeInvoiceJob",
            [
                uuid.UUID(INVOICE),
                {"amount_cents": 100, "currency": "eur"},
                CUSTOMER,
                [
                    {
                        "sku": "a",
                        "quantity": 2,
                        "unit_price": {"amount_cents": 50, "currency": "eur"},
                    }
                ],
                "card",
                None,
                jobs.charge_invoice._rt.UNSET,
            ],
        ),
        ("SendWelcomeEmailJob", [5, "q@x.io", "en", None]),
    ]


def test_python_pushes_ruby_job_decodes(sk: InteropEnv, jobs: ModuleType) -> None:
    cm = gredis.ConnManager(gredis.Config(url=sk.redis_url))
    try:
        enq = gokogeri.Enqueuer(cm)
        jobs.SyncContact.enqueue(
            enq, {"email": "a@b.c", "name": "Ana", "address": {"city": "Porto"}}, 3, "x:y"
        )
        jobs.ChargeInvoice.enqueue(
            enq, uuid.UUID(INVOICE), {"amount_cents": 1, "currency": "usd"}, CUSTOMER, [ITEM], "sepa_debit",
            {"code": "X", "percent_off": 5}, {"k": "v"},
        )  # fmt: skip
        jobs.GenerateReport.enqueue(
            enq, uuid.UUID(INVOICE), "sales", date(2024, 2, 29), date(2024, 3, 1), None,
            datetime(2024, 3, 1, 12, 30, tzinfo=UTC),
        )  # fmt: skip
    finally:
        cm.close()
    got = sk.ruby_json(
        "contracts/driver.rb", "perform", stdin=json.dumps(["crm", "billing", "reports"])
    )
    assert got == [
        [
            "Crm::SyncContactJob",
            [{"email": "a@b.c", "name": "Ana", "address": {"city": "Porto", "country": "FR"}, "opt_in": False, "tags": []}, 3, "x:y", 50],
        ],
        [
            "Billing::ChargeInvoiceJob",
            [INVOICE, {"amount_cents": 1, "currency": "usd"}, CUSTOMER, [ITEM], "sepa_debit", {"code": "X", "percent_off": 5}, {"k": "v"}],
        ],
        [
            "Reports::GenerateReportJob",
            [INVOICE, "sales", {"date": "2024-02-29"}, {"date": "2024-03-01"}, None,
             {"time": "2024-03-01T12:30:00.000000Z"}, "pdf", "UTC", None, False, {"unset": True}],
        ],
    ]  # fmt: skip
