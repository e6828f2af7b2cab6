"""What generate does to the output directories: never hand-written files, one-line I/O errors, clean code."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import ROOT, SCHEMAS, job_schema
from gokogeri.codegen.cli import CONTRACTS, INVALID, OK, STALE, generate


def run_generate(
    *args: object, out: Path | None = None, ruby: Path | None = None, check: bool = False
) -> tuple[int, str, str]:
    so, se = io.StringIO(), io.StringIO()
    code = generate([Path(str(a)) for a in args], out, check, so, se, ruby=ruby)
    return code, so.getvalue(), se.getvalue()


def test_hand_written_files_are_never_overwritten(tmp_path: Path) -> None:
    src = tmp_path / "schemas"
    src.mkdir()
    doc = job_schema({"title": "to", "type": "string"})
    doc["x-gokogeri"]["class"] = "SendEmailJob"
    (src / "send_email.json").write_text(json.dumps(doc))
    out = tmp_path / "jobs"
    out.mkdir()
    (out / "__init__.py").write_text("from .mailer import deliver\n")
    (out / "send_email.py").write_text("def send_email(): ...\n")
    code, _, err = run_generate(src, out=out)
    assert code == INVALID
    assert err.count("\n") == 1 and err.startswith("error: refusing to overwrite ")
    assert str(out / "__init__.py") in err and str(out / "send_email.py") in err
    assert (out / "__init__.py").read_text() == "from .mailer import deliver\n"
    assert (out / "send_email.py").read_text() == "def send_email(): ...\n"
    assert sorted(p.name for p in out.iterdir()) == ["__init__.py", "send_email.py"]
    # Moved away, the run succeeds; a hand-written file the schemas do not produce stays.
    (out / "send_email.py").rename(out / "mailer.py")
    (out / "__init__.py").unlink()
    assert run_generate(src, out=out)[0] == OK
    assert (out / "mailer.py").read_text() == "def send_email(): ...\n"


@pytest.mark.parametrize("kind", ["parent-is-a-file", "out-is-a-file"])
def test_io_problems_are_one_line_errors(tmp_path: Path, kind: str) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    out = blocker / "jobs" if kind == "parent-is-a-file" else blocker
    done = subprocess.run(
        [sys.executable, "-m", "gokogeri.codegen", str(SCHEMAS), "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == INVALID
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert str(blocker) in lines[0]


def test_long_import_lines_in_init_are_wrapped_ruff_clean(tmp_path: Path) -> None:
    src = tmp_path / "s"
    src.mkdir()
    doc = job_schema({"title": "n", "type": "integer"})
    doc["x-gokogeri"]["class"] = "Accounting::ReconcileOutstandingInvoicesForEnterpriseCustomersJob"
    (src / "reconcile.json").write_text(json.dumps(doc))
    out = tmp_path / "pkg"
    assert run_generate(src, out=out)[0] == OK
    init = (out / "__init__.py").read_text()
    assert "from .reconcile import (\n" in init
    imports = [line for line in init.splitlines() if line.startswith(("from ", "    "))]
    assert imports and max(len(line) for line in imports) <= 100
    ruff = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--config", str(ROOT / "pyproject.toml"), str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ruff.returncode == 0, ruff.stdout


def test_python_and_ruby_in_one_call_and_check_covers_both(tmp_path: Path) -> None:
    py, rb = tmp_path / "py", tmp_path / "rb"
    code, _, err = run_generate(SCHEMAS, out=py, ruby=rb)
    assert code == OK, err
    assert (py / "charge_invoice.py").exists() and (rb / "charge_invoice.rb").exists()
    assert (rb / "charge_invoice.rbs").exists() and (rb / "gokogeri_contracts.rb").exists()
    assert run_generate(SCHEMAS, out=py, ruby=rb, check=True)[0] == OK
    rb_file = rb / "send_welcome_email.rb"
    rb_file.write_text(rb_file.read_text().replace("QUEUE = ", "QUEUE = # edited\n "))
    code, diff_text, _ = run_generate(SCHEMAS, out=py, ruby=rb, check=True)
    assert code == STALE
    assert "send_welcome_email.rb" in diff_text and "# edited" in diff_text


def test_check_reports_the_schema_diff_against_the_committed_contracts(tmp_path: Path) -> None:
    src = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, src)
    out = tmp_path / "jobs"
    assert run_generate(src, out=out)[0] == OK
    assert (out / CONTRACTS).exists()
    doc = json.loads((src / "send_welcome_email.json").read_text())
    doc["prefixItems"][2]["enum"] = ["en", "fr"]  # "de" and "ja" removed
    (src / "send_welcome_email.json").write_text(json.dumps(doc))
    code, _, err = run_generate(src, out=out, check=True)
    assert code == STALE
    assert "contract changes since" in err
    assert "BREAKING" in err and "enum value(s) \"de\", \"ja\" removed" in err


def test_a_bool_for_an_int_argument_is_refused_at_run_time(
    compile_schema: Callable[..., object],
) -> None:
    # mypy accepts True for int (bool is its subclass); the generated check does not.
    from gokogeri.codegen.runtime import ArgumentError

    mod = compile_schema(job_schema({"title": "count_of", "type": "integer"}))
    with pytest.raises(
        ArgumentError, match=r"args\[0\] \(count_of\): must be an integer, got true"
    ):
        mod.Test.job(True)  # type: ignore[attr-defined]  # a generated module, imported at run time


TYPEDDICT_IDIOMS = """\
from __future__ import annotations

import uuid

import gokogeri
from generated_jobs import ChargeInvoice
from generated_jobs.charge_invoice import Customer, Money


def use(enq: gokogeri.Enqueuer) -> None:
    # Annotate the variable (or build it with the TypedDict's constructor): mypy then
    # checks the keys once, where the dict is written.
    money: Money = {"amount_cents": 100, "currency": "usd"}
    also = Money(amount_cents=5, currency="eur")
    customer = Customer(
        id=1, name="Ada", billing_address={"line1": "x", "line2": None, "city": "y", "country": "FR"}
    )
    ChargeInvoice.enqueue(enq, uuid.uuid4(), money, customer, [], "card", None)
    ChargeInvoice.enqueue(enq, uuid.uuid4(), also, customer, [], "card", None)
"""


def test_documented_typeddict_idioms_pass_mypy(
    tmp_path: Path, run_mypy: Callable[[Path, list[str]], subprocess.CompletedProcess[str]]
) -> None:
    from conftest import GENERATED

    shutil.copytree(GENERATED, tmp_path / "generated_jobs")
    (tmp_path / "use.py").write_text(TYPEDDICT_IDIOMS)
    done = run_mypy(tmp_path, ["use.py"])
    assert done.returncode == 0, done.stdout + done.stderr
    docs = (ROOT / "docs" / "contracts.md").read_text()
    assert "money: Money = {" in docs
