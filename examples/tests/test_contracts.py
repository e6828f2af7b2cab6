"""The contracts hold on both sides: run in CI next to the unit tests."""

from __future__ import annotations

from pathlib import Path

from gokogeri.codegen.cli import generate
from gokogeri.contract import assert_contracts

from example_app.workers import make_router

ROOT = Path(__file__).resolve().parent.parent


def test_ruby_and_python_agree_with_the_schemas() -> None:
    report = assert_contracts(
        [ROOT / "schemas"], ruby_jobs=ROOT / "ruby" / "jobs.rb", router=make_router
    )
    print(report.render())  # shown with -s: the samples tried per contract


def test_generated_code_is_up_to_date() -> None:
    assert generate([ROOT / "schemas"], ROOT / "example_app" / "jobs", check=True) == 0
