"""Real public schemas (tests/codegen/corpus, see its README) wrapped as job arguments.

Generates Python (mypy --strict, ruff) and Ruby (ruby -wc) from corpus/jobs, then
runs both on real data: the iso-codes tables Debian installs are checked and
encoded by the generated Python and the generated Ruby, which must agree byte
for byte.
"""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import ROOT
from gokogeri.codegen.cli import OK, generate
from gokogeri.codegen.errors import SchemaError
from gokogeri.codegen.loader import load

CORPUS = Path(__file__).resolve().parent / "corpus"
ISO_DATA = Path("/usr/share/iso-codes/json")
ISO = ["15924", "3166-1", "3166-3", "4217", "639-2", "639-3", "639-5"]
RUBY = shutil.which("ruby")

# A value for each CloudFormation job: its logical id and a properties object.
CFN_SAMPLES: dict[str, dict[str, Any]] = {
    "aws_ec2_eip": {"Domain": "vpc", "Tags": [{"Key": "team", "Value": "billing"}]},
    "aws_ec2_vpnconcentrator": {"TransitGatewayId": "tgw-1", "Type": "ipsec.1"},
    "aws_ec2_vpnconnection": {"CustomerGatewayId": "cgw-1", "Type": "ipsec.1"},
    "aws_elasticbeanstalk_configurationtemplate": {"ApplicationName": "shop"},
    "aws_elasticbeanstalk_environment": {"ApplicationName": "shop", "Tier": {"Name": "WebServer"}},
    "aws_secretsmanager_secrettargetattachment": {
        "SecretId": "s",
        "TargetId": "t",
        "TargetType": "AWS::RDS::DBInstance",
    },
}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, ModuleType]]:
    root = tmp_path_factory.mktemp("corpus")
    py, rb = root / "corpus_jobs", root / "rb"
    assert generate([CORPUS / "jobs"], py, False, ruby=rb) == OK
    sys.path.insert(0, str(root))
    try:
        yield py, rb, importlib.import_module("corpus_jobs")
    finally:
        sys.path.remove(str(root))


def test_corpus_has_at_least_ten_jobs_from_real_schemas(
    generated: tuple[Path, Path, ModuleType],
) -> None:
    jobs = sorted(p.stem for p in (CORPUS / "jobs").glob("*.json"))
    assert len(jobs) >= 10
    readme = (CORPUS / "README.md").read_text()
    for vendored in (CORPUS / "vendor").rglob("*.json"):
        assert vendored.name in readme, f"{vendored.name} is not listed in corpus/README.md"


def test_python_is_ruff_and_mypy_strict_clean(
    generated: tuple[Path, Path, ModuleType],
    run_mypy: Callable[[Path, list[str]], subprocess.CompletedProcess[str]],
) -> None:
    py, _, _ = generated
    ruff = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--config", str(ROOT / "pyproject.toml"), str(py)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ruff.returncode == 0, ruff.stdout
    done = run_mypy(py.parent, ["-p", py.name])
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.skipif(RUBY is None, reason="ruby is not installed")
def test_ruby_parses_without_warnings(generated: tuple[Path, Path, ModuleType]) -> None:
    _, rb, _ = generated
    for path in sorted(rb.glob("*.rb")):
        done = subprocess.run(
            [str(RUBY), "-wc", str(path)], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0 and done.stderr == "", (path, done.stderr)


def _api(mod: ModuleType, stem: str) -> Any:
    job = importlib.import_module(f"{mod.__name__}.{stem}")
    apis = [v for k, v in vars(job).items() if hasattr(v, "CLASS_NAME") and hasattr(v, "enqueue")]
    (api,) = apis
    return job, api


def _python_encodings(mod: ModuleType) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for code in ISO:
        stem = "iso_" + code.replace("-", "_")
        data = json.loads((ISO_DATA / f"iso_{code}.json").read_text(encoding="utf-8"))
        job, api = _api(mod, stem)
        args = api.job(data).args
        assert args == [data, "file:///usr/share/iso-codes/json"]  # the default written out
        assert job._ARGS.decode(args[:1]) == args  # and filled in on decode
        out[stem] = args
    for stem, props in CFN_SAMPLES.items():
        job, api = _api(mod, stem)
        args = api.job("Main1", props).args
        decoded = job._ARGS.decode(args)
        assert decoded[0] == "Main1" and props.items() <= decoded[1].items()
        out[stem] = args
    return out


@pytest.mark.skipif(not ISO_DATA.is_dir(), reason="Debian's iso-codes is not installed")
@pytest.mark.skipif(RUBY is None, reason="ruby is not installed")
def test_real_data_through_python_and_ruby_agree(
    generated: tuple[Path, Path, ModuleType], tmp_path: Path
) -> None:
    _, rb, mod = generated
    want = _python_encodings(mod)
    inputs = {
        **{"iso_" + c.replace("-", "_"): [str(ISO_DATA / f"iso_{c}.json")] for c in ISO},
        **{stem: ["Main1", props] for stem, props in CFN_SAMPLES.items()},
    }
    (tmp_path / "in.json").write_text(json.dumps(inputs))
    script = f"""
    require_relative "{rb}/all"
    # Capture what the typed perform_async would push instead of pushing it.
    module GokogeriContracts::Contract
      def push(_options, values)
        self::ARGS.encode(values)
      end
    end
    inputs = JSON.parse(File.read("{tmp_path / "in.json"}"))
    out = inputs.to_h do |stem, args|
      contract = GokogeriContracts.constants.map {{ |c| GokogeriContracts.const_get(c) }}.find do |m|
        m.is_a?(Module) && m.const_defined?(:ARGS, false) && m::CLASS_NAME.end_with?("Job") &&
          File.basename(m.method(:perform_async).source_location[0], ".rb") == stem
      end
      args = [JSON.parse(File.read(args[0]))] if stem.start_with?("iso_")
      [stem, contract.perform_async(*args)]
    end
    File.write("{tmp_path / "out.json"}", JSON.generate(out))
    """
    done = subprocess.run(
        [str(RUBY), "-e", script],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/tmp"},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    got = json.loads((tmp_path / "out.json").read_text())
    assert got == want


def test_refused_schema_names_the_reason() -> None:
    with pytest.raises(SchemaError) as info:
        load([CORPUS / "refused"])
    (problem,) = info.value.problems
    assert problem.file.endswith("schema-3166-2.json")
    assert problem.pointer == "/properties/3166-2/required"
    assert "keyword 'required' does not apply to type 'array'" in problem.reason
