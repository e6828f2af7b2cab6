"""Contract tests (gokogeri.contract, ``gokogeri contract-test``) catch real disagreements:
a Ruby perform that takes one argument fewer than the schema, a Python worker that rejects a
valid default, and a schema change that makes payloads already in Redis invalid. The Ruby
side is real Ruby Sidekiq: the host's (Debian ruby-sidekiq) and, when built, an interop image."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer
from gokogeri.codegen.errors import SchemaError
from jsonschema import Draft202012Validator
from typer.testing import CliRunner

from gokogeri import Context, Job, Router
from gokogeri.contract import (
    Report,
    Sample,
    assert_contracts,
    check,
    generate_samples,
    generated_ruby,
    generated_workers,
    load_contracts,
    register,
)

DIALECT = "https://json-schema.org/draft/2020-12/schema"
CONTAINERS_CONF = Path(__file__).parent.parent / "interop" / "images" / "containers.conf"
SIDEKIQ_8_IMAGE = "localhost/gokogeri/sidekiq:8"

needs_ruby_sidekiq = pytest.mark.skipif(
    shutil.which("ruby") is None
    or subprocess.run(["ruby", "-e", 'require "sidekiq"'], capture_output=True).returncode != 0,
    reason="no Ruby Sidekiq on the host (Debian: ruby-sidekiq)",
)


def ship_schema(carriers: list[str], *, extra_required: bool = False) -> dict[str, Any]:
    prefix: list[dict[str, Any]] = [
        {"title": "order_id", "type": "integer", "minimum": 1, "maximum": 1000000},
        {"title": "carrier", "enum": carriers},
        {"title": "express", "type": "boolean", "default": False},
        {"title": "note", "type": ["string", "null"], "maxLength": 20},
    ]
    min_items = 2
    if extra_required:
        prefix.insert(2, {"title": "warehouse", "type": "string", "minLength": 1})
        min_items = 3
    return {
        "$schema": DIALECT,
        "title": "Ship an order",
        "type": "array",
        "prefixItems": prefix,
        "minItems": min_items,
        "items": False,
        "x-gokogeri": {"class": "Shop::ShipOrderJob", "queue": "shipping"},
    }


RUBY_GOOD = """
require "sidekiq"
module Shop
  class ShipOrderJob
    include(defined?(Sidekiq::Job) ? Sidekiq::Job : Sidekiq::Worker)
    def perform(order_id, carrier, express = false, note = nil)
      raise ArgumentError, "bad carrier" unless %w[ups dhl].include?(carrier)
      Integer(order_id)
    end
  end
end
"""

# perform takes one argument fewer than the schema allows: `note` is missing.
RUBY_ONE_FEWER = RUBY_GOOD.replace(
    "def perform(order_id, carrier, express = false, note = nil)",
    "def perform(order_id, carrier, express = false)",
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def schema_dir(tmp_path: Path) -> Path:
    write(tmp_path, "schemas/ship_order.json", json.dumps(ship_schema(["ups", "dhl"])))
    return tmp_path / "schemas"


def python_router(tmp_path: Path, schemas: Path, refuse_default: bool = False) -> Router:
    """A user's worker, written against the generated base class."""
    base = generated_workers([schemas], tmp_path / "user_pkg")["Shop::ShipOrderJob"]

    class ShipOrder(base):  # type: ignore[valid-type, misc]  # a class generated at run time
        def perform(
            self,
            ctx: Context,
            order_id: int,
            carrier: str,
            express: bool = False,
            note: Any = None,
        ) -> None:
            if refuse_default and express is False:
                raise ValueError("standard shipping is not offered any more")

    router = Router()
    ShipOrder().register(router)
    return router


def disagreements(report: Report, check_name: str) -> list[tuple[str, Sample | None]]:
    return [(d.detail, d.sample) for _, d in report.disagreements() if d.check == check_name]


# --- samples ---


def test_samples_cover_every_case_and_are_judged_by_the_schema(schema_dir: Path) -> None:
    (contract,) = load_contracts([schema_dir])
    samples = generate_samples(contract.doc, contract.job, random_samples=10)
    validator = Draft202012Validator(contract.doc)
    for s in samples:
        assert validator.is_valid(s.args) == s.valid, s
    valid = [s for s in samples if s.valid]
    whys = {s.why for s in valid}
    # every argument count, so each optional argument is left out once
    assert {len(s.args) for s in valid} == {2, 3, 4}
    assert any(w.startswith("2 args (express, note left out)") for w in whys)
    assert any(s.args[2:3] == [False] and "default" in s.why for s in valid)
    assert any(len(s.args) == 4 and s.args[3] is None for s in valid)
    assert {s.args[1] for s in valid} == {"ups", "dhl"}
    assert {1, 1000000} <= {s.args[0] for s in valid}
    assert any(
        isinstance(s.args[3], str) and len(s.args[3]) == 20 for s in valid if len(s.args) == 4
    )
    invalid = [s.why for s in samples if not s.valid]
    for expected in (
        "1 args (fewer than minItems)",
        "5 args (more than the schema allows)",
        "args[0] (order_id) minimum 1 broken",
        "args[0] (order_id) maximum 1000000 broken",
        "args[3] (note) one character long",
        'args[1] (carrier) "not-a-valid-value" instead',
    ):
        assert any(why.startswith(expected) for why in invalid), expected
    # the same samples on every run: CI failures reproduce
    again = generate_samples(contract.doc, contract.job, random_samples=10)
    assert [s.args for s in again] == [s.args for s in samples]


def test_schema_problems_are_reported(tmp_path: Path) -> None:
    bad = ship_schema(["ups"])
    del bad["items"]
    write(tmp_path, "bad.json", json.dumps(bad))
    with pytest.raises(SchemaError, match="items: false"):
        check([tmp_path / "bad.json"], ruby="none")


# --- the Python side ---


def test_generated_code_agrees_with_the_schema(schema_dir: Path) -> None:
    report = check([schema_dir], ruby="none")
    assert report.ok, report.render()
    (result,) = report.contracts
    assert result.checks == ["schema"]
    assert report.ruby == "not run (--ruby none)"


def test_python_worker_that_rejects_a_valid_default(tmp_path: Path, schema_dir: Path) -> None:
    report = check([schema_dir], router=python_router(tmp_path, schema_dir, True), ruby="none")
    assert not report.ok
    found = disagreements(report, "python")
    assert found, report.render()
    for detail, sample in found:
        assert detail == (
            "the Python worker refused a valid sample: "
            "ValueError: standard shipping is not offered any more"
        )
        assert sample is not None and sample.valid
        assert len(sample.args) == 2 or sample.args[2] is False
    assert any(
        s is not None and s.why.startswith("2 args (express, note left out)") for _, s in found
    )
    assert "FAIL Shop::ShipOrderJob" in report.render()
    # and the same worker without the bug agrees
    assert check([schema_dir], router=python_router(tmp_path, schema_dir), ruby="none").ok


def test_python_worker_that_accepts_invalid_args(schema_dir: Path) -> None:
    router = Router()
    router.register("Shop::ShipOrderJob", lambda ctx, job: None)  # no checks at all
    report = check([schema_dir], router=router, ruby="none")
    found = disagreements(report, "python")
    assert found and all(d == "the Python worker accepted an invalid sample" for d, _ in found)
    assert all(s is not None and not s.valid for _, s in found)


def test_async_python_workers_are_checked_too(schema_dir: Path) -> None:
    router = Router()

    @router.handle("Shop::ShipOrderJob")
    async def ship(ctx: Context, job: Job) -> None:
        if len(job.args) < 3:
            raise ValueError("express must be given")

    report = check([schema_dir], router=router, ruby="none")
    found = disagreements(report, "python")
    assert any(d.endswith("ValueError: express must be given") for d, _ in found)
    assert all(s is not None and ((s.valid and len(s.args) == 2) or not s.valid) for _, s in found)


# --- schema changes ---


def test_a_schema_change_that_breaks_waiting_payloads(tmp_path: Path, schema_dir: Path) -> None:
    old = write(tmp_path, "old/ship_order.json", json.dumps(ship_schema(["ups", "dhl", "fedex"])))
    report = check([schema_dir], baseline=[old], ruby="none")
    found = disagreements(report, "baseline")
    assert found, report.render()
    for detail, sample in found:
        assert detail.startswith("an old payload is invalid under the new schema: args[1]: 'fedex'")
        assert sample is not None and sample.args[1] == "fedex"
    # a new required argument breaks every old payload too
    write(
        tmp_path,
        "new/ship_order.json",
        json.dumps(ship_schema(["ups", "dhl"], extra_required=True)),
    )
    report = check([tmp_path / "new"], baseline=[schema_dir], ruby="none")
    assert disagreements(report, "baseline")
    # a compatible change (a new enum value) passes
    report = check([old], baseline=[schema_dir], ruby="none")
    assert report.ok, report.render()


# --- the Ruby side ---


@needs_ruby_sidekiq
def test_ruby_perform_with_one_argument_fewer(tmp_path: Path, schema_dir: Path) -> None:
    ruby = write(tmp_path, "ruby/ship.rb", RUBY_ONE_FEWER)
    report = check([schema_dir], ruby_jobs=ruby, ruby="host")
    assert report.ruby.startswith("Sidekiq 6.4.1 on Ruby")
    (arity,) = disagreements(report, "ruby-arity")
    assert arity == (
        "perform(order_id, carrier, express) takes 2..3 argument(s); the schema allows 2..4",
        None,
    )
    runs = disagreements(report, "ruby-run")
    assert runs
    for detail, sample in runs:
        assert "ArgumentError: wrong number of arguments (given 4, expected 2..3)" in detail
        assert sample is not None and len(sample.args) == 4
    # the fixed file agrees
    write(tmp_path, "ruby/ship.rb", RUBY_GOOD)
    good = check([schema_dir], ruby_jobs=ruby, ruby="host")
    assert good.ok, good.render()
    assert good.contracts[0].checks == ["schema", "ruby-arity", "ruby-run", "ruby-generated"]


@needs_ruby_sidekiq
def test_generated_ruby_module_and_python_agree_both_ways(schema_dir: Path) -> None:
    # No Ruby job classes: the generated Ruby module alone decodes every sample, pushes every
    # valid one back, and the Python side decodes what it pushed to the same values.
    report = check([schema_dir], ruby="host")
    assert report.ok, report.render()
    assert report.contracts[0].checks == ["schema", "ruby-generated"]
    assert "Ruby job classes not checked: no --ruby-jobs" in report.notes


@needs_ruby_sidekiq
def test_a_stale_generated_ruby_module_in_the_ruby_app(tmp_path: Path, schema_dir: Path) -> None:
    # The Ruby app still loads the module generated before "dhl" was added to the schema.
    old = write(tmp_path, "old/ship_order.json", json.dumps(ship_schema(["ups"])))
    for name, text in generated_ruby([old]).items():
        write(tmp_path, f"app/contracts/{name}", text)
    jobs = write(
        tmp_path,
        "app/jobs.rb",
        'require_relative "contracts/all"\n'
        "module Shop\n"
        "  class ShipOrderJob\n"
        "    include GokogeriContracts::ShipOrder::Job\n"
        "    def perform(order_id, carrier, express = false, note = nil); end\n"
        "  end\n"
        "end\n",
    )
    report = check([schema_dir], ruby_jobs=jobs, ruby="host")
    generated = disagreements(report, "ruby-generated")
    assert generated, report.render()
    for detail, sample in generated:
        assert detail.startswith(
            "your generated Ruby module (loaded by your job files) refused a valid sample: "
            "Shop::ShipOrderJob args[1] (carrier): must be"
        )
        assert sample is not None and sample.args[1] == "dhl"
    # the job class decodes through the same stale module, so Sidekiq runs fail the same way
    runs = disagreements(report, "ruby-run")
    assert runs and all(s is not None and s.args[1] == "dhl" for _, s in runs)


@needs_ruby_sidekiq
def test_missing_ruby_class_and_non_argument_errors(tmp_path: Path, schema_dir: Path) -> None:
    ruby = write(tmp_path, "ruby/other.rb", 'require "sidekiq"\nclass Unrelated; end\n')
    report = check([schema_dir], ruby_jobs=ruby, ruby="host")
    ((detail, _),) = disagreements(report, "ruby-arity")
    assert detail.startswith("no Ruby class Shop::ShipOrderJob")
    # a job that fails for a reason other than its arguments is noted, not counted
    write(
        tmp_path,
        "ruby/other.rb",
        RUBY_GOOD.replace("Integer(order_id)", 'raise IOError, "database is down"'),
    )
    report = check([schema_dir], ruby_jobs=ruby, ruby="host")
    assert report.ok
    assert any("IOError: database is down" in n for n in report.contracts[0].notes)


def _image_present(image: str) -> bool:
    if shutil.which("podman") is None:
        return False
    env = dict(os.environ, CONTAINERS_CONF=os.environ.get("CONTAINERS_CONF", str(CONTAINERS_CONF)))
    return subprocess.run(["podman", "image", "exists", image], env=env).returncode == 0


@pytest.mark.skipif(not _image_present(SIDEKIQ_8_IMAGE), reason="interop image not built")
def test_ruby_side_in_a_sidekiq_8_image(
    tmp_path: Path, schema_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONTAINERS_CONF", os.environ.get("CONTAINERS_CONF", str(CONTAINERS_CONF)))
    monkeypatch.setenv("GOKOGERI_SIDEKIQ_IMAGE", SIDEKIQ_8_IMAGE)
    ruby = write(tmp_path, "ruby/ship.rb", RUBY_ONE_FEWER)
    report = check([schema_dir], ruby_jobs=ruby, ruby="image")
    assert report.ruby.startswith("Sidekiq 8.1.7 on Ruby 3.3")
    assert disagreements(report, "ruby-arity") and disagreements(report, "ruby-run")


# --- the command and the pytest helper ---


@needs_ruby_sidekiq
def test_contract_test_command(
    tmp_path: Path, schema_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = typer.Typer()
    register(app)

    @app.command()
    def noop() -> None:  # a second command keeps Typer from collapsing to one
        pass

    bad = write(tmp_path, "ruby/ship.rb", RUBY_ONE_FEWER)
    pkg = write(tmp_path, "userpkg/__init__.py", "")
    write(
        tmp_path,
        "userpkg/workers.py",
        "from gokogeri import Router\n"
        "def make_router():\n"
        "    r = Router()\n"
        "    r.register('Shop::ShipOrderJob', lambda ctx, job: None)\n"
        "    return r\n",
    )
    del pkg
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "contract-test",
            str(schema_dir),
            "--ruby-jobs",
            str(bad),
            "--python-router",
            "userpkg.workers:make_router",
        ],
    )
    assert result.exit_code == 1, result.output
    assert "FAIL Shop::ShipOrderJob (ship_order.json)" in result.output
    assert "[ruby-arity] perform(order_id, carrier, express) takes 2..3" in result.output
    assert "[python] the Python worker accepted an invalid sample" in result.output
    write(tmp_path, "ruby/ship.rb", RUBY_GOOD)
    result = runner.invoke(
        app, ["contract-test", str(schema_dir), "--ruby-jobs", str(bad), "--json"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["ok"] and doc["contracts"][0]["class"] == "Shop::ShipOrderJob"
    result = runner.invoke(app, ["contract-test", str(tmp_path / "nowhere.json")])
    assert result.exit_code == 2 and "no such file or directory" in result.output


def test_assert_contracts_raises_with_the_report(tmp_path: Path, schema_dir: Path) -> None:
    with pytest.raises(AssertionError, match=r"(?s)job contracts disagree:.*\[python\]"):
        assert_contracts(
            [schema_dir], router=python_router(tmp_path, schema_dir, True), ruby="none"
        )
    assert assert_contracts([schema_dir], ruby="none").ok
