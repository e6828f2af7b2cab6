"""The generated Ruby: parses, type signatures parse, checks like the Python side, and round-trips through Redis.

Runs the host's Ruby with Debian's Sidekiq 6.4.1 (no other gems) against the
private redis-server of tests/conftest.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import redis as redispy
from conftest import SCHEMAS
from generated_jobs import ChargeInvoice, SendWelcomeEmail, SyncContact, SyncContactWorker
from gokogeri.codegen.cli import OK, generate
from gokogeri.codegen.runtime import ArgumentError

import gokogeri
from gokogeri import redis as gredis

RUBY = shutil.which("ruby")
pytestmark = pytest.mark.skipif(RUBY is None, reason="ruby is not installed")


@pytest.fixture(scope="module")
def ruby_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ruby") / "contracts"
    assert generate([SCHEMAS], None, False, ruby=out) == OK
    return out


def ruby(script: str, out: Path, redis_url: str | None = None, stdin: str = "") -> str:
    """Run ``script`` with the generated modules loaded; returns stdout (fails the test on error)."""
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8"}
    if redis_url is not None:
        env["REDIS_URL"] = redis_url
    done = subprocess.run(
        [str(RUBY), "-e", f'require_relative "{out}/all"\n{script}'],
        capture_output=True,
        text=True,
        input=stdin,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_every_generated_file_parses(ruby_out: Path) -> None:
    rb = sorted(ruby_out.glob("*.rb"))
    assert {p.name for p in rb} >= {"all.rb", "gokogeri_contracts.rb", "charge_invoice.rb"}
    for path in rb:
        done = subprocess.run(
            [str(RUBY), "-wc", str(path)], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0 and done.stdout.strip() == "Syntax OK", done.stderr
        assert done.stderr == "", done.stderr  # no warnings either
    sigs = sorted(ruby_out.glob("*.rbs"))
    assert len(sigs) == len(rb) - 1  # all.rb has none
    check = "require 'rbs'; ARGV.each { |f| RBS::Parser.parse_signature(File.read(f)) }"
    done = subprocess.run(
        [str(RUBY), "-e", check, *map(str, sigs)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


# (job, args as JSON). Python gets the same values (a UUID object for charge_invoice's first).
BAD_CALLS: list[tuple[str, list[Any]]] = [
    ("SendWelcomeEmail", [0, "a@b.c"]),
    ("SendWelcomeEmail", [True, "a@b.c"]),
    ("SendWelcomeEmail", [1.5, "a@b.c"]),
    ("SendWelcomeEmail", [1, "no-at-sign"]),
    ("SendWelcomeEmail", [1, "a@b.c", "xx"]),
    ("SendWelcomeEmail", [1, "a@b.c", "en", 7]),
    ("SendWelcomeEmail", [1, "a@" + "b" * 300]),
    ("SendWelcomeEmail", [1, "a@b.c", "it's a very long value that will be cut short, really"]),
    ("ChargeInvoice", [None, {"amount_cents": -1, "currency": "usd"}, {}, [], "card", None]),
    ("ChargeInvoice", [None, {"amount_cents": 1, "currency": "usd", "x": 1}, {}, [], "card", None]),
    ("ChargeInvoice", [None, {"amount_cents": 1}, {}, [], "card", None]),
    (
        "ChargeInvoice",
        [
            None,
            {"amount_cents": 1, "currency": "usd"},
            {
                "id": 1,
                "name": "A",
                "billing_address": {"line1": "", "line2": None, "city": "c", "country": "FR"},
            },
            [],
            "card",
            None,
        ],
    ),
    (
        "ChargeInvoice",
        [
            None,
            {"amount_cents": 1, "currency": "usd"},
            {
                "id": 1,
                "name": "A",
                "billing_address": {"line1": "x", "line2": None, "city": "c", "country": "fr"},
            },
            [],
            "card",
            None,
        ],
    ),
    (
        "ChargeInvoice",
        [
            None,
            {"amount_cents": 1, "currency": "usd"},
            {
                "id": 1,
                "name": "A",
                "billing_address": {"line1": "x", "line2": None, "city": "c", "country": "FR"},
            },
            [],
            "card",
            None,
            {"ok": "v", "bad key": 3},
        ],
    ),
    ("SyncContact", [{"email": "a@b.c", "name": "9lives"}, 1, "https://x"]),
    ("SyncContact", [{"email": "a@b.c", "name": "Zoë"}, 0, "https://x"]),
    ("SyncContact", [{"email": "a@b.c", "name": "Zoë"}, "", "https://x"]),
    ("SyncContact", [{"email": "a@b.c", "name": "Zoë"}, 2.5, "https://x"]),
    ("SyncContact", [{"email": "a@b.c", "name": "Zoë"}, 1, "not a uri"]),
    ("SyncContact", [{"email": "a@b.c", "name": "Zoë"}, 1, "https://x", 15]),
    ("SyncContact", [{"email": "a@b.c", "name": "Zoë", "tags": ["a", 2]}, 1, "https://x"]),
    ("SyncContact", [{"email": "a@b.c", "name": "Zoë", "address": {"country": "FR"}}, 1, "x:y"]),
    ("SyncContact", [{"email": "a@b.c", "name": "Zoë", "opt_in": "yes"}, 1, "x:y"]),
]

APIS = {
    "SendWelcomeEmail": SendWelcomeEmail,
    "ChargeInvoice": ChargeInvoice,
    "SyncContact": SyncContact,
}


def python_message(api: str, args: list[Any]) -> str:
    values = list(args)
    if api == "ChargeInvoice":
        values[0] = uuid.UUID("6f1c0a3e-2d4b-4c5a-8e9f-0a1b2c3d4e5f")
    with pytest.raises(ArgumentError) as e:
        APIS[api].job(*values)  # type: ignore[attr-defined]  # each API's job() has its own signature
    return str(e.value)


def test_ruby_refuses_bad_arguments_at_push_with_the_python_message(ruby_out: Path) -> None:
    script = """
    cases = JSON.parse($stdin.read)
    out = cases.map do |api, args|
      args[0] = "6f1c0a3e-2d4b-4c5a-8e9f-0a1b2c3d4e5f" if api == "ChargeInvoice"
      begin
        GokogeriContracts.const_get(api).perform_async(*args)
        "pushed?!"
      rescue GokogeriContracts::ArgumentError => e
        e.message
      end
    end
    puts JSON.generate(out)
    """
    got = json.loads(ruby(script, ruby_out, stdin=json.dumps(BAD_CALLS)))
    want = [python_message(api, args) for api, args in BAD_CALLS]
    assert got == want


def test_ruby_pushes_python_decodes_with_defaults_and_nested_objects(
    ruby_out: Path, redis_url: str, cm: gredis.ConnManager, r: redispy.Redis
) -> None:
    script = """
    puts GokogeriContracts::SyncContact.perform_async(
      { email: "zoe@example.com", name: "Zoë", address: { city: "Lyon" } }, "crm-7", "https://crm.example/c/7"
    )
    puts GokogeriContracts::SyncContact.set(queue: "crm").perform_async(
      { "email" => "x@example.com", "name" => "X", "tags" => ["vip"], "opt_in" => true }, 42, "x:y", 90
    )
    puts GokogeriContracts::ChargeInvoice.perform_in(3600, "6F1C0A3E-2D4B-4C5A-8E9F-0A1B2C3D4E5F",
      { amount_cents: 100, currency: "eur" },
      { id: 1, name: "Ada", billing_address: { line1: "1 rue", line2: nil, city: "Paris", country: "FR" } },
      [{ sku: "a", quantity: 1, unit_price: { amount_cents: 100, currency: "eur" } }], "card", nil)
    """
    jids = ruby(script, ruby_out, redis_url).split()
    assert len(jids) == 3
    seen: list[tuple[Any, ...]] = []

    class Sync(SyncContactWorker):
        def perform(
            self,
            ctx: gokogeri.Context,
            contact: Any,
            external_id: int | str,
            source: str,
            priority: int = 50,
        ) -> None:
            seen.append((contact, external_id, source, priority))

    router = gokogeri.Router()
    Sync().register(router)
    raws = list(reversed(r.lrange("queue:crm", 0, -1)))
    assert [json.loads(x)["args"][3:] for x in raws] == [[50], [90]]  # defaults written out
    for raw in raws:
        router.work(gokogeri.Context(), gokogeri.Job.decode(raw))
    assert seen == [
        (
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
        ),
        (
            {"email": "x@example.com", "name": "X", "tags": ["vip"], "opt_in": True},
            42,
            "x:y",
            90,
        ),
    ]
    ((raw, _),) = r.zrange("schedule", 0, -1, withscores=True)
    payload = json.loads(raw)
    assert payload["class"] == "Billing::ChargeInvoiceJob" and payload["queue"] == "billing"
    assert payload["retry"] == 3
    assert payload["args"][0] == "6f1c0a3e-2d4b-4c5a-8e9f-0a1b2c3d4e5f"
    from generated_jobs.charge_invoice import _ARGS as CHARGE

    decoded = CHARGE.decode(payload["args"])
    assert decoded[0] == uuid.UUID("6f1c0a3e-2d4b-4c5a-8e9f-0a1b2c3d4e5f")
    assert decoded[2]["billing_address"]["city"] == "Paris"


def test_python_pushes_ruby_job_performs_decoded_values(
    ruby_out: Path, redis_url: str, cm: gredis.ConnManager, r: redispy.Redis
) -> None:
    enq = gokogeri.Enqueuer(cm)
    SyncContact.enqueue(
        enq, {"email": "a@b.c", "name": "Ana", "address": {"city": "Porto"}}, 3, "x:y"
    )
    SendWelcomeEmail.enqueue(enq, 5, "q@x.io")
    from generated_jobs import GenerateReport

    GenerateReport.enqueue(
        enq,
        uuid.uuid4(),
        "sales",
        date(2024, 2, 29),
        date(2024, 3, 1),
        None,
        __import__("datetime").datetime(2024, 3, 1, 12, 30, tzinfo=__import__("datetime").UTC),
    )
    script = """
    module Crm; end
    class Crm::SyncContactJob
      include GokogeriContracts::SyncContact::Job
      def perform(contact, external_id, source, priority)
        puts JSON.generate(["sync", contact, external_id, source, priority])
      end
    end
    class SendWelcomeEmailJob
      include GokogeriContracts::SendWelcomeEmail::Job
      def perform(user_id, email, locale, referrer_code)
        puts JSON.generate(["welcome", user_id, email, locale, referrer_code])
      end
    end
    module Reports; end
    class Reports::GenerateReportJob
      include GokogeriContracts::GenerateReport::Job
      def perform(id, kind, from, to, by, at, format, tz, max_rows, archived, notify)
        puts JSON.generate(["report", from.class.name, from.to_s, at.class.name, at.utc.iso8601,
                            notify.equal?(GokogeriContracts::UNSET)])
      end
    end
    # What Sidekiq's processor does with each payload: klass.new.perform(*args).
    { "queue:crm" => Crm::SyncContactJob, "queue:mailers" => SendWelcomeEmailJob,
      "queue:reports" => Reports::GenerateReportJob }.each do |key, klass|
      raw = Sidekiq.redis { |c| c.rpop(key) }
      klass.new.perform(*JSON.parse(raw)["args"])
    end
    # The Job mixin checks pushes from the Ruby job class too, on every path.
    [-> { SendWelcomeEmailJob.perform_async(0, "a@b.c") },
     -> { SendWelcomeEmailJob.set(queue: "x").perform_async(1, "nope") },
     -> { SendWelcomeEmailJob.perform_in(10, 1, "a@b.c", "xx") },
     -> { SendWelcomeEmailJob.perform_bulk([[1, "a@b.c"], [2, "bad"]]) }].each do |push|
      push.call
      puts "pushed?!"
    rescue GokogeriContracts::ArgumentError => e
      puts JSON.generate(["refused", e.message])
    end
    """
    lines = [json.loads(x) for x in ruby(script, ruby_out, redis_url).splitlines()]
    assert lines[0] == [
        "sync",
        {
            "email": "a@b.c",
            "name": "Ana",
            "address": {"city": "Porto", "country": "FR"},
            "opt_in": False,
            "tags": [],
        },
        3,
        "x:y",
        50,
    ]
    assert lines[1] == ["welcome", 5, "q@x.io", "en", None]
    assert lines[2] == ["report", "Date", "2024-02-29", "Time", "2024-03-01T12:30:00Z", True]
    assert [x[0] for x in lines[3:]] == ["refused"] * 4
    assert lines[3][1] == python_message("SendWelcomeEmail", [0, "a@b.c"])
    assert r.llen("queue:mailers") == 0 and r.llen("queue:x") == 0 and r.zcard("schedule") == 0
