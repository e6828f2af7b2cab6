"""Cross-language contract tests: do the Ruby job classes and the Python workers agree
with each job schema, and with each other?

For every schema this generates argument lists (hypothesis + hypothesis-jsonschema, seeded so
a CI run is repeatable): valid ones covering every argument count between minItems and the
number of arguments (so every optional argument is left out once and its default used),
every default passed explicitly, null for every nullable argument, every enum value and the
boundary values of numbers, strings and arrays; and invalid ones (too few or too many
arguments, a wrong type, one past each boundary, a missing or unknown object key). The
JSON Schema validator (jsonschema, with date/date-time/uuid checked as gokogeri checks them)
is the judge of which is which. Then:

- python: the generated Python worker (or the user's, from their Router) runs every valid
  sample and refuses every invalid one with the schema's ArgumentError;
- ruby-arity / ruby-run: the user's Ruby job classes take every argument count the schema
  allows (``perform``'s parameters) and run every valid sample, pushed as the payload a
  Python Enqueuer writes, through real Sidekiq code (Sidekiq::Testing's process_job: JSON
  decode, server middleware, ``perform(*args)``) without an ArgumentError;
- baseline: with the previous version of the schemas, every payload valid under an old
  schema is still valid under the new one and still decoded by the Python side, so jobs
  already waiting in Redis survive the deploy.

The report names each contract, the samples tried and every disagreement with the sample
that shows it. ``gokogeri contract-test`` (``register``) and ``assert_contracts`` (for a
pytest suite) both run ``check``.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any, Literal

import typer

from gokogeri.job import Job
from gokogeri.testing import FakeEnqueuer, resolve_worker, run_job
from gokogeri.worker import Context, Worker

RubyMode = Literal["auto", "host", "image", "none"]
Check = Literal["schema", "python", "ruby-arity", "ruby-run", "ruby-generated", "baseline"]

# Valid samples drawn at random from the whole schema, on top of the targeted ones.
DEFAULT_RANDOM = 25
# Invalid samples kept per argument position (the first few distinct ways to break it).
INVALID_PER_ARG = 4
# Error text from the other side is cut to this length in the report.
SHOWN = 300
# Samples printed per kind of disagreement (--json has them all).
SAMPLES_SHOWN = 2
# Environment variable naming a Sidekiq image to use when the host has no Ruby Sidekiq.
IMAGE_ENV = "GOKOGERI_SIDEKIQ_IMAGE"


# --- the report ----------------------------------------------------------------------------------


@dataclass
class Sample:
    args: list[Any]
    valid: bool
    why: str  # how it was made, e.g. "2 args (locale left out)" or "args[0] (user_id): below minimum"

    def shown(self) -> str:
        text = json.dumps(self.args, ensure_ascii=False)
        return text if len(text) <= SHOWN else text[: SHOWN - 3] + "..."


@dataclass
class Disagreement:
    check: Check
    detail: str
    sample: Sample | None = None

    def __str__(self) -> str:
        where = f"\n      sample ({self.sample.why}): {self.sample.shown()}" if self.sample else ""
        return f"[{self.check}] {self.detail}{where}"


@dataclass
class ContractResult:
    class_name: str
    source: str
    samples: list[Sample] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    disagreements: list[Disagreement] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.disagreements


@dataclass
class Report:
    contracts: list[ContractResult]
    ruby: str  # what ran the Ruby side, or why nothing did
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.contracts)

    def disagreements(self) -> list[tuple[str, Disagreement]]:
        return [(c.class_name, d) for c in self.contracts for d in c.disagreements]

    def render(self) -> str:
        lines = [f"Ruby side: {self.ruby}"]
        lines += [f"note: {n}" for n in self.notes]
        for c in self.contracts:
            valid = sum(1 for s in c.samples if s.valid)
            mark = "ok  " if c.ok else "FAIL"
            lines.append(
                f"{mark} {c.class_name} ({c.source}): {valid} valid + "
                f"{len(c.samples) - valid} invalid samples; checks: {', '.join(c.checks)}"
            )
            # One line per kind of disagreement, with the first samples that show it.
            groups: dict[tuple[str, str], list[Disagreement]] = {}
            for d in c.disagreements:
                groups.setdefault((d.check, d.detail), []).append(d)
            for (kind, detail), same in groups.items():
                lines.append(f"    [{kind}] {detail}")
                shown = [d.sample for d in same if d.sample is not None]
                for sample in shown[:SAMPLES_SHOWN]:
                    lines.append(f"      sample ({sample.why}): {sample.shown()}")
                if len(shown) > SAMPLES_SHOWN:
                    lines.append(f"      ... and {len(shown) - SAMPLES_SHOWN} more sample(s)")
            for n in c.notes:
                lines.append(f"    note: {n}")
        total = len(self.disagreements())
        lines.append(
            f"{len(self.contracts)} contract(s), "
            + ("all agree" if not total else f"{total} disagreement(s) over the samples tried")
        )
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "ruby": self.ruby,
            "notes": self.notes,
            "contracts": [
                {
                    "class": c.class_name,
                    "source": c.source,
                    "checks": c.checks,
                    "samples": [
                        {"args": s.args, "valid": s.valid, "why": s.why} for s in c.samples
                    ],
                    "disagreements": [
                        {
                            "check": d.check,
                            "detail": d.detail,
                            "sample": None if d.sample is None else d.sample.args,
                        }
                        for d in c.disagreements
                    ],
                    "notes": c.notes,
                }
                for c in self.contracts
            ],
        }


# --- loading the contracts -----------------------------------------------------------------------


@dataclass
class Contract:
    path: Path
    doc: dict[str, Any]
    job: Any  # gokogeri.codegen.model.JobDef


def schema_files(paths: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        files.extend(sorted(p.rglob("*.json")) if p.is_dir() else [p])
    return files


def load_contracts(paths: Iterable[Path]) -> list[Contract]:
    """Every schema, checked by ``gokogeri generate``'s loader; raises SchemaError."""
    from gokogeri.codegen.loader import load

    files = schema_files(paths)
    package = load(files)  # every problem in every file at once
    by_source = {job.source: job for job in package.jobs}
    return [
        Contract(f, json.loads(f.read_text(encoding="utf-8")), by_source[f.name]) for f in files
    ]


# --- the judge: JSON Schema 2020-12 with gokogeri's formats --------------------------------------


def _format_checker() -> Any:
    from jsonschema import FormatChecker

    from gokogeri.codegen import runtime

    checker = FormatChecker(formats=())
    for name, spec in (
        ("date-time", runtime.DateTime()),
        ("date", runtime.Date()),
        ("uuid", runtime.Uuid()),
    ):

        def check(value: object, spec: runtime.Spec = spec) -> bool:
            if not isinstance(value, str):
                return True  # formats apply to strings only
            try:
                spec.decode(value, "")
            except Exception:
                return False
            return True

        checker.checks(name)(check)
    return checker


class Judge:
    def __init__(self, doc: dict[str, Any]) -> None:
        from jsonschema import Draft202012Validator

        self._validator = Draft202012Validator(doc, format_checker=_format_checker())

    def error(self, args: list[Any]) -> str | None:
        """None if ``args`` is valid, else the validator's best description of why not."""
        from jsonschema.exceptions import best_match

        err = best_match(self._validator.iter_errors(args))
        if err is None:
            return None
        where = "".join(f"[{p}]" for p in err.absolute_path)
        return f"args{where}: {err.message}"[:SHOWN]


# --- sample generation ---------------------------------------------------------------------------


def _draft7(node: Any) -> Any:
    """The schema in the draft-07 form hypothesis-jsonschema reads (tuple ``items``)."""
    if isinstance(node, list):
        return [_draft7(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: _draft7(v) for k, v in node.items() if k not in ("$schema", "$id", "x-gokogeri")}
    if "prefixItems" in out:
        out["additionalItems"] = out.pop("items", True)
        out["items"] = out.pop("prefixItems")
    return out


def _draw(schema: dict[str, Any], n: int) -> list[Any]:
    """Up to ``n`` distinct values of ``schema``, the same ones on every run."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st
    from hypothesis.errors import HypothesisException
    from hypothesis_jsonschema import from_schema

    found: dict[str, Any] = {}
    try:
        strategy = from_schema(
            {"$schema": "http://json-schema.org/draft-07/schema#", **schema},
            custom_formats={"uuid": st.uuids().map(str)},
        )
    except HypothesisException:
        return []

    @settings(
        max_examples=n,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(value: Any) -> None:
        found.setdefault(json.dumps(value, sort_keys=True), value)

    # An unsatisfiable pinned schema (say, a pattern that no string of the pinned length
    # matches) yields fewer samples, not an error: the other cases still cover the argument.
    with contextlib.suppress(HypothesisException):
        collect()
    return list(found.values())


def _resolve(doc: dict[str, Any], node: Any) -> dict[str, Any]:
    """A top-level argument's schema with a local ``$ref`` followed (one level)."""
    if isinstance(node, dict) and isinstance(node.get("$ref"), str):
        ref = node["$ref"]
        if ref.startswith("#/$defs/"):
            target = doc.get("$defs", {}).get(ref.removeprefix("#/$defs/"))
            if isinstance(target, dict):
                return {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node if isinstance(node, dict) else {}


def _types(schema: dict[str, Any]) -> set[str]:
    t = schema.get("type")
    if isinstance(t, str):
        return {t}
    return set(t) if isinstance(t, list) else set()


def _boundaries(arg: dict[str, Any]) -> list[tuple[str, Any]]:
    """(what, override schema) pairs pinning an argument to its edge values."""
    out: list[tuple[str, Any]] = []
    types = _types(arg)
    for value in arg.get("enum", []):
        out.append((f"= {json.dumps(value)}", {"const": value}))
    if "const" in arg:
        out.append(("the const", {"const": arg["const"]}))
    if types & {"integer", "number"}:
        integer = "integer" in types
        for key, step in (
            ("minimum", 0),
            ("maximum", 0),
            ("exclusiveMinimum", 1),
            ("exclusiveMaximum", -1),
        ):
            bound = arg.get(key)
            if isinstance(bound, (int, float)) and not isinstance(bound, bool):
                if step and not integer:
                    continue  # no next float worth pinning; random draws come near it
                value = bound + step
                out.append((f"at {key} ({value})", {"const": value}))
    if "string" in types:
        for key in ("minLength", "maxLength"):
            if isinstance(arg.get(key), int):
                n = arg[key]
                pinned = {k: v for k, v in arg.items() if k not in ("type", "default")}
                out.append(
                    (f"{key} {n}", {**pinned, "type": "string", "minLength": n, "maxLength": n})
                )
    if "array" in types:
        for key in ("minItems", "maxItems"):
            if isinstance(arg.get(key), int):
                n = arg[key]
                pinned = {k: v for k, v in arg.items() if k not in ("type", "default")}
                out.append(
                    (f"{key} {n}", {**pinned, "type": "array", "minItems": n, "maxItems": n})
                )
    return out


def _pinned(doc: dict[str, Any], index: int, schema: Any) -> dict[str, Any]:
    """``doc`` with argument ``index`` replaced by ``schema`` and present in every sample."""
    pinned = copy.deepcopy(doc)
    prefix = pinned["prefixItems"]
    prefix[index] = {"allOf": [prefix[index], schema]}
    pinned["minItems"] = max(int(pinned.get("minItems", 0)), index + 1)
    return pinned


def _with_count(doc: dict[str, Any], count: int) -> dict[str, Any]:
    pinned = copy.deepcopy(doc)
    pinned["minItems"] = pinned["maxItems"] = count
    return pinned


# Replacement values tried for invalid samples; the judge keeps those that break the schema.
# Ordered so the few kept per argument break it in different ways: a value of the right
# JSON type that breaks a format, pattern or enum first, then other types.
_WRONG: tuple[Any, ...] = ("not-a-valid-value", "", None, 1.5, True, 0, -1, [], {}, "x")


def _invalid_values(arg: dict[str, Any]) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, delta in (
        ("minimum", -1),
        ("maximum", 1),
        ("exclusiveMinimum", 0),
        ("exclusiveMaximum", 0),
    ):
        bound = arg.get(key)
        if isinstance(bound, (int, float)) and not isinstance(bound, bool):
            out.append((f"{key} {bound} broken", bound + delta))
    if isinstance(arg.get("minLength"), int) and arg["minLength"] > 0:
        out.append(("one character short", "a" * (arg["minLength"] - 1)))
    if isinstance(arg.get("maxLength"), int):
        out.append(("one character long", "a" * (arg["maxLength"] + 1)))
    out += [(f"{json.dumps(v)} instead", v) for v in _WRONG]
    return out


def generate_samples(
    doc: dict[str, Any], job: Any, random_samples: int = DEFAULT_RANDOM
) -> list[Sample]:
    """Valid and invalid argument lists for one schema, each judged by the validator."""
    judge = Judge(doc)
    prefix: list[Any] = doc.get("prefixItems", [])
    names = [p.name for p in job.params]
    min_items = int(doc.get("minItems", 0))
    samples: list[Sample] = []
    seen: dict[str, Sample] = {}

    def add(args: Any, why: str, want_valid: bool) -> bool:
        if not isinstance(args, list):
            return False
        key = json.dumps(args, sort_keys=True) + str(want_valid)
        known = seen.get(key)
        if known is not None:
            # Already drawn for another case: it covers this one too; say so in the report.
            if want_valid and why != "random" and why not in known.why:
                known.why += f"; {why}"
            return False
        error = judge.error(args)
        if (error is None) != want_valid:
            return False
        sample = Sample(args, want_valid, why if want_valid else f"{why}: {error}")
        seen[key] = sample
        samples.append(sample)
        return True

    def draw(schema: dict[str, Any], n: int, why: str) -> list[Any]:
        drawn = _draw(_draft7(schema), n)
        for args in drawn:
            add(args, why, True)
        return drawn

    # Every argument count: each optional argument left out once (its default used).
    for count in range(min_items, len(prefix) + 1):
        left_out = [names[i] for i in range(count, len(prefix))]
        why = f"{count} args" + (f" ({', '.join(left_out)} left out)" if left_out else "")
        draw(_with_count(doc, count), 2, why)
    for i, arg_schema in enumerate(prefix):
        arg = _resolve(doc, arg_schema)
        name = f"args[{i}] ({names[i]})"
        if "default" in arg:
            draw(_pinned(doc, i, {"const": arg["default"]}), 1, f"{name} = its default")
        if "null" in _types(arg):
            draw(_pinned(doc, i, {"const": None}), 1, f"{name} = null")
        for what, schema in _boundaries(arg):
            draw(_pinned(doc, i, schema), 1, f"{name} {what}")
    pool = draw(doc, random_samples, "random")
    full = [s.args for s in samples if s.valid and len(s.args) == len(prefix)]
    base = full[0] if full else next((s.args for s in samples if s.valid), None)
    if base is None:
        return samples

    # Invalid: wrong argument counts, then one argument broken at a time.
    if min_items > 0:
        add(base[: min_items - 1], f"{min_items - 1} args (fewer than minItems)", False)
    longest = full[0] if full else base
    add([*longest, "extra"], f"{len(longest) + 1} args (more than the schema allows)", False)
    for i, arg_schema in enumerate(prefix):
        arg = _resolve(doc, arg_schema)
        carrier = list(longest) if i < len(longest) else None
        if carrier is None:
            continue
        kept = 0
        for what, value in _invalid_values(arg):
            if kept >= INVALID_PER_ARG:
                break
            broken = list(carrier)
            broken[i] = value
            kept += add(broken, f"args[{i}] ({names[i]}) {what}", False)
        # Objects: a required key missing, an unknown key added.
        for args in [carrier, *pool]:
            value = args[i] if i < len(args) else None
            if isinstance(value, dict):
                required = [k for k in arg.get("required", []) if k in value]
                if required:
                    broken = list(args)
                    broken[i] = {k: v for k, v in value.items() if k != required[0]}
                    add(broken, f"args[{i}] ({names[i]}) without {required[0]!r}", False)
                if arg.get("additionalProperties") is False:
                    broken = list(args)
                    broken[i] = {**value, "unexpected_key": 1}
                    add(broken, f"args[{i}] ({names[i]}) with an unknown key", False)
                break
    return samples


# --- the Python side -----------------------------------------------------------------------------


_package_counter = itertools.count()


def generated_workers(paths: Sequence[Path], into: Path) -> dict[str, type]:
    """Generate the Python package for ``paths`` (as ``gokogeri generate`` would) under
    ``into`` and import it: Sidekiq class name -> generated worker base class."""
    from gokogeri.codegen.cli import build, write
    from gokogeri.codegen.loader import load

    name = f"_gokogeri_contract_{os.getpid()}_{next(_package_counter)}"
    write(into / name, build(list(paths)))
    sys.path.insert(0, str(into))
    try:
        importlib.invalidate_caches()
        package = importlib.import_module(name)
        workers: dict[str, type] = {}
        for job in load(list(paths)).jobs:
            module: ModuleType = importlib.import_module(f"{name}.{job.module}")
            workers[job.class_name] = getattr(module, job.worker_name)
        del package
        return workers
    finally:
        sys.path.remove(str(into))


class Decoder:
    """A generated Python worker whose perform only keeps what it was given: its work()
    is the schema's decoding alone, exactly as the generated code runs it."""

    def __init__(self, base: type) -> None:
        def perform(this: Any, ctx: Context, *values: Any) -> None:
            this.values = list(values)

        self.worker: Worker = type(f"Contract{base.__name__}", (base,), {"perform": perform})()

    def work(self, ctx: Context, job: Job) -> None:
        self.worker.work(ctx, job)

    def decode(self, job: Job) -> list[Any]:
        """The values perform() would receive; raises the schema's ArgumentError."""
        self.worker.work(Context(queue=job.queue), job)
        values: list[Any] = getattr(self.worker, "values", [])
        return values

    def error(self, args: list[Any]) -> str | None:
        try:
            self.decode(Job("Contract", args=args))
        except Exception as exc:
            return str(exc)
        return None


def _argument_error() -> type[Exception]:
    from gokogeri.codegen.runtime import ArgumentError

    error: type[Exception] = ArgumentError
    return error


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= SHOWN else text[: SHOWN - 3] + "..."


def _payloads(job: Any, samples: list[Sample]) -> list[str]:
    """Each sample as the payload a Python Enqueuer pushes (the generated class's queue/retry)."""
    fake = FakeEnqueuer()
    for s in samples:
        fake.enqueue(Job(job.class_name, queue=job.queue, args=s.args, retry=job.retry))
    return [j.encode() for j in fake.jobs]


def check_python(
    result: ContractResult,
    worker: Worker,
    payloads: list[str],
    check: Check,
    what: str,
) -> None:
    """``worker`` must run every valid sample and refuse every invalid one with ArgumentError."""
    argument_error = _argument_error()
    result.checks.append(check)
    for sample, payload in zip(result.samples, payloads, strict=True):
        job = Job.decode(payload)
        ctx = Context(queue=job.queue)
        try:
            run_job(resolve_worker(worker, job), ctx, job)
        except Exception as exc:
            if sample.valid:
                result.disagreements.append(
                    Disagreement(check, f"{what} refused a valid sample: {_short(exc)}", sample)
                )
            elif not isinstance(exc, argument_error):
                result.disagreements.append(
                    Disagreement(
                        check,
                        f"{what} failed on an invalid sample with {type(exc).__name__}, "
                        "not the schema's ArgumentError",
                        sample,
                    )
                )
            continue
        if not sample.valid:
            result.disagreements.append(
                Disagreement(check, f"{what} accepted an invalid sample", sample)
            )


# --- the Ruby side -------------------------------------------------------------------------------

# Runs inside Ruby (host or container). Job class names come from the schemas, never from
# elsewhere; payloads are the ones Python wrote. Results go to a file, so a job that prints
# cannot corrupt them.
RUBY_RUNNER = r"""
require "json"
require "sidekiq"
$stderr.reopen(File::NULL) if ENV["GOKOGERI_CONTRACT_QUIET"]
require "sidekiq/testing"
$stderr.reopen(STDOUT) if ENV["GOKOGERI_CONTRACT_QUIET"]
Sidekiq::Testing.fake!
input = JSON.parse(File.read(ARGV[0]))
out = { "sidekiq" => Sidekiq::VERSION, "ruby" => RUBY_VERSION, "classes" => {}, "results" => [] }
begin
  input["files"].each { |f| require File.expand_path(f) }
rescue Exception => e
  out["load_error"] = "#{e.class}: #{e.message}"[0, 500]
end
known = {}
input["classes"].each do |name|
  begin
    klass = Object.const_get(name)
    known[name] = klass
    params = klass.instance_method(:perform).parameters.map { |kind, n| [kind.to_s, n.to_s] }
    out["classes"][name] = { "found" => true, "params" => params }
  rescue NameError => e
    out["classes"][name] = { "found" => false, "error" => e.message[0, 300] }
  end
end
input["payloads"].each do |p|
  job = Sidekiq.load_json(p["payload"])
  klass = known[job["class"]]
  next if klass.nil?
  begin
    if klass.respond_to?(:process_job)
      klass.process_job(job)
    else
      klass.new.perform(*job["args"])
    end
    out["results"] << { "id" => p["id"], "ok" => true }
  rescue Exception => e
    where = (e.backtrace || []).first.to_s.sub(/\A.*\//, "")
    arg = e.is_a?(::ArgumentError) || e.is_a?(::TypeError) || e.is_a?(::NoMethodError)
    out["results"] << { "id" => p["id"], "ok" => false, "class" => e.class.name,
                        "message" => e.message.to_s[0, 300], "where" => where,
                        "argument_error" => arg }
  end
  Sidekiq::Worker.clear_all if defined?(Sidekiq::Worker) && Sidekiq::Worker.respond_to?(:clear_all)
end
gen = input["generated"]
if gen
  # The user's job files may load their own generated module: that is what runs in
  # production, so it is the one checked; else the freshly generated one.
  out["generated_source"] = defined?(::GokogeriContracts) ? "yours" : "fresh"
  begin
    require gen["all"] unless defined?(::GokogeriContracts)
  rescue Exception => e
    out["generated_error"] = "#{e.class}: #{e.message}"[0, 500]
  end
  out["generated"] = []
  (out["generated_error"] ? [] : gen["samples"]).each do |s|
    r = { "id" => s["id"] }
    begin
      mod = ::GokogeriContracts.const_get(s["api"]) # our own generated names, not payload data
      values = mod::ARGS.decode(s["args"])
      r["decoded"] = true
    rescue ::GokogeriContracts::ArgumentError => e
      r["decoded"] = false
      r["error"] = e.message.to_s[0, 300]
    rescue Exception => e
      r["decoded"] = false
      r["crash"] = "#{e.class}: #{e.message}"[0, 300]
    end
    if r["decoded"]
      begin
        Sidekiq::Queues.clear_all
        mod.perform_async(*values)
        pushed = Sidekiq::Queues.jobs_by_queue.values.flatten.first
        r["payload"] = Sidekiq.dump_json(pushed)
      rescue Exception => e
        r["push_error"] = "#{e.class}: #{e.message}"[0, 300]
      end
    end
    out["generated"] << r
  end
end
File.write(input["out"], JSON.generate(out))
"""


@dataclass
class RubySide:
    """Where the Ruby checks run: the host's Ruby Sidekiq, or an image with podman/docker."""

    mode: Literal["host", "image"]
    image: str | None = None
    engine: str | None = None

    def describe(self) -> str:
        return "host ruby" if self.mode == "host" else f"image {self.image} ({self.engine})"

    def run(
        self,
        ruby_files: list[Path],
        doc: dict[str, Any],
        generated: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Run RUBY_RUNNER on ``doc`` (classes, payloads, generated samples) with the user's
        files and, if given, the generated Ruby module's files; returns its results."""
        with tempfile.TemporaryDirectory(prefix="gokogeri-contract-") as tmp:
            work = Path(tmp)
            (work / "runner.rb").write_text(RUBY_RUNNER, encoding="utf-8")
            if generated:
                (work / "gen").mkdir()
                for name, text in generated.items():
                    (work / "gen" / name).write_text(text, encoding="utf-8")
            if self.mode == "host":
                base = str(work)
                files = [str(f) for f in ruby_files]
                cmd = ["ruby", str(work / "runner.rb"), str(work / "input.json")]
            else:
                assert self.engine is not None and self.image is not None
                base = "/contract"
                roots = sorted({f.parent for f in ruby_files})
                mounts: list[str] = ["-v", f"{work}:/contract"]
                files = []
                for n, root in enumerate(roots):
                    mounts += ["-v", f"{root}:/app{n}:ro"]
                    files += [f"/app{n}/{f.name}" for f in ruby_files if f.parent == root]
                cmd = [
                    self.engine, "run", "--rm", "--network", "none", *mounts,
                    "-e", "GOKOGERI_CONTRACT_QUIET=1",
                    self.image, "ruby", "/contract/runner.rb", "/contract/input.json",
                ]  # fmt: skip
            full = {**doc, "files": files, "out": f"{base}/out.json"}
            if generated and "generated" in doc:
                full["generated"] = {**doc["generated"], "all": f"{base}/gen/all.rb"}
            (work / "input.json").write_text(json.dumps(full), encoding="utf-8")
            env = dict(os.environ, GOKOGERI_CONTRACT_QUIET="1")
            done = subprocess.run(
                cmd, env=env, capture_output=True, text=True, timeout=600, check=False
            )
            out = work / "out.json"
            if done.returncode != 0 or not out.exists():
                raise RuntimeError(
                    f"the Ruby side failed (exit {done.returncode}):\n"
                    f"{(done.stderr or done.stdout)[-2000:]}"
                )
            loaded: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
            return loaded


def host_has_sidekiq() -> bool:
    if shutil.which("ruby") is None:
        return False
    done = subprocess.run(
        ["ruby", "-e", 'require "sidekiq"'], capture_output=True, timeout=60, check=False
    )
    return done.returncode == 0


def choose_ruby(mode: RubyMode = "auto", image: str | None = None) -> RubySide | str:
    """The Ruby side to use, or a sentence saying why there is none."""
    if mode == "none":
        return "not run (--ruby none)"
    image = image or os.environ.get(IMAGE_ENV) or None
    if mode in ("auto", "host") and host_has_sidekiq():
        return RubySide("host")
    if mode == "host":
        return "not run: the host has no Ruby with the sidekiq gem (Debian: ruby-sidekiq)"
    if image:
        engine = shutil.which("podman") or shutil.which("docker")
        if engine is None:
            return f"not run: {image} needs podman or docker, and neither is on PATH"
        return RubySide("image", image, engine)
    return f"not run: no Ruby Sidekiq on the host and no image ({IMAGE_ENV} or --sidekiq-image)"


def _arity(params: list[list[str]]) -> tuple[int, int | None]:
    """(fewest, most or None for *rest) positional arguments ``perform`` accepts."""
    req = sum(1 for kind, _ in params if kind == "req")
    opt = sum(1 for kind, _ in params if kind == "opt")
    rest = any(kind == "rest" for kind, _ in params)
    return req, None if rest else req + opt


def check_ruby(
    results: list[ContractResult],
    contracts: list[Contract],
    payloads: dict[str, list[str]],
    side: RubySide,
    ruby_files: list[Path],
    generated: dict[str, str] | None,
    decoders: dict[str, Decoder],
) -> str:
    """The Ruby checks, in one Ruby process: the user's job classes (arity, and every valid
    sample run through Sidekiq's process_job) and the generated Ruby module (every sample
    decoded, every valid one pushed back and decoded by the Python side)."""
    by_class = {r.class_name: r for r in results}
    api = {c.job.class_name: c.job.api_name for c in contracts}
    batch: list[dict[str, Any]] = []
    wire: list[dict[str, Any]] = []
    index: dict[int, tuple[ContractResult, Sample]] = {}
    counter = itertools.count()
    for result in results:
        for sample, payload in zip(result.samples, payloads[result.class_name], strict=True):
            n = next(counter)
            index[n] = (result, sample)
            if sample.valid and ruby_files:
                batch.append({"id": n, "payload": payload})
            wire.append({"id": n, "api": api[result.class_name], "args": sample.args})
    doc: dict[str, Any] = {
        "classes": [c.job.class_name for c in contracts] if ruby_files else [],
        "payloads": batch,
    }
    if generated is not None:
        doc["generated"] = {"samples": wire}
    out = side.run(ruby_files, doc, generated)
    if "load_error" in out:
        raise RuntimeError(f"loading the Ruby job files failed: {out['load_error']}")
    if ruby_files:
        _ruby_classes(out, contracts, by_class, index)
    if generated is not None:
        _ruby_generated(out, by_class, index, decoders)
    return f"Sidekiq {out['sidekiq']} on Ruby {out['ruby']} ({side.describe()})"


def _ruby_classes(
    out: dict[str, Any],
    contracts: list[Contract],
    by_class: dict[str, ContractResult],
    index: dict[int, tuple[ContractResult, Sample]],
) -> None:
    for contract in contracts:
        result = by_class[contract.job.class_name]
        info = out["classes"].get(contract.job.class_name, {})
        result.checks.append("ruby-arity")
        if not info.get("found"):
            result.disagreements.append(
                Disagreement(
                    "ruby-arity",
                    f"no Ruby class {contract.job.class_name}: {info.get('error', '')}",
                )
            )
            continue
        fewest, most = _arity(info["params"])
        lo, hi = contract.job.min_items, len(contract.job.params)
        if fewest > lo or (most is not None and most < hi):
            takes = f"{fewest}" + ("+" if most is None else f"..{most}" if most != fewest else "")
            result.disagreements.append(
                Disagreement(
                    "ruby-arity",
                    f"perform({', '.join(n for _, n in info['params'])}) takes {takes} "
                    f"argument(s); the schema allows {lo}..{hi}",
                )
            )
        result.checks.append("ruby-run")
    other: dict[str, list[str]] = {}
    for entry in out["results"]:
        result, sample = index[entry["id"]]
        if entry["ok"]:
            continue
        text = f"{entry['class']}: {entry['message']} ({entry['where']})"
        if entry["argument_error"]:
            result.disagreements.append(
                Disagreement("ruby-run", f"Ruby refused a valid sample: {text}", sample)
            )
        else:
            other.setdefault(result.class_name, []).append(text)
    for name, texts in other.items():
        by_class[name].notes.append(
            f"{len(texts)} valid sample(s) raised errors that are not argument errors "
            f"(not counted), e.g. {texts[0]}"
        )


def _ruby_generated(
    out: dict[str, Any],
    by_class: dict[str, ContractResult],
    index: dict[int, tuple[ContractResult, Sample]],
    decoders: dict[str, Decoder],
) -> None:
    if out.get("generated_error"):
        raise RuntimeError(f"loading the generated Ruby module failed: {out['generated_error']}")
    source = (
        "your generated Ruby module (loaded by your job files)"
        if out.get("generated_source") == "yours"
        else "the generated Ruby module"
    )
    checked: set[str] = set()
    messages: dict[str, list[str]] = {}
    for entry in out.get("generated", []):
        result, sample = index[entry["id"]]
        if result.class_name not in checked:
            checked.add(result.class_name)
            result.checks.append("ruby-generated")

        def disagree(detail: str, result: ContractResult = result, sample: Sample = sample) -> None:
            result.disagreements.append(Disagreement("ruby-generated", detail, sample))

        decoder = decoders[result.class_name]
        if "crash" in entry:
            disagree(f"{source} crashed on a sample: {entry['crash']}")
        elif sample.valid and not entry["decoded"]:
            disagree(f"{source} refused a valid sample: {entry['error']}")
        elif not sample.valid and entry["decoded"]:
            disagree(f"{source} accepted an invalid sample")
        elif not sample.valid:
            python_error = decoder.error(sample.args)
            if python_error is not None and python_error != entry["error"]:
                messages.setdefault(result.class_name, []).append(
                    f"Ruby: {entry['error']!r}; Python: {python_error!r}"
                )
        elif "push_error" in entry:
            disagree(f"{source} could not push a valid sample: {entry['push_error']}")
        else:
            pushed = Job.decode(entry["payload"])
            try:
                values = decoder.decode(pushed)
            except Exception as exc:
                disagree(f"the Python side refused the payload {source} pushed: {_short(exc)}")
                continue
            if values != decoder.decode(Job(result.class_name, args=sample.args)):
                disagree(
                    f"a round trip through {source} changed the values: it pushed "
                    f"{json.dumps(pushed.args, ensure_ascii=False)[:SHOWN]}"
                )
    for name, texts in messages.items():
        by_class[name].notes.append(
            f"{len(texts)} invalid sample(s) refused with different messages, e.g. {texts[0]}"
        )


# --- putting it together -------------------------------------------------------------------------


def _resolve_router(router: Any) -> Worker | None:
    if router is None:
        return None
    if not callable(getattr(router, "work", None)) and callable(router):
        router = router()
    if not callable(getattr(router, "work", None)):
        raise TypeError(f"{router!r} is not a Router or Worker (or a function returning one)")
    worker: Worker = router
    return worker


def _handles(worker: Worker, class_name: str) -> bool:
    """Whether ``worker`` takes jobs of ``class_name`` (a Router knows; any other worker takes all)."""
    classes = getattr(worker, "classes", None)
    return class_name in classes() if callable(classes) else True


def _ruby_files(path: Path | None) -> list[Path]:
    if path is None:
        return []
    if path.is_dir():
        return sorted(path.rglob("*.rb"))
    if not path.is_file():
        raise FileNotFoundError(f"no Ruby job file or directory at {path}")
    return [path.resolve()]


def check(
    schemas: Sequence[Path | str],
    *,
    ruby_jobs: Path | str | None = None,
    router: Any = None,
    baseline: Sequence[Path | str] | None = None,
    ruby: RubyMode = "auto",
    sidekiq_image: str | None = None,
    random_samples: int = DEFAULT_RANDOM,
) -> Report:
    """Run every contract check; see the module docstring. Raises SchemaError for a bad schema.

    ``router``: a gokogeri Router (or Worker, or a function returning one) with the user's
    workers; without it, the generated worker base classes are checked (schema decoding only).
    ``ruby_jobs``: a Ruby file, or a directory of them, defining the job classes.
    ``baseline``: the previous version of the schemas.
    """
    paths = [Path(p) for p in schemas]
    contracts = load_contracts(paths)
    user_worker = _resolve_router(router)
    results: list[ContractResult] = []
    payloads: dict[str, list[str]] = {}
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="gokogeri-contract-py-") as tmp:
        generated = generated_workers(paths, Path(tmp))
        decoders = {name: Decoder(base) for name, base in generated.items()}
        old: dict[str, Contract] = {}
        if baseline:
            old_paths = [Path(p) for p in baseline]
            old = {c.job.class_name: c for c in load_contracts(old_paths)}
        for contract in contracts:
            job = contract.job
            result = ContractResult(job.class_name, contract.path.name)
            result.samples = generate_samples(contract.doc, job, random_samples)
            payloads[job.class_name] = _payloads(job, result.samples)
            check_python(
                result,
                decoders[job.class_name],
                payloads[job.class_name],
                "schema",
                "the generated Python code",
            )
            if user_worker is not None:
                if _handles(user_worker, job.class_name):
                    check_python(
                        result, user_worker, payloads[job.class_name], "python", "the Python worker"
                    )
                else:
                    result.notes.append("no Python worker is registered for this class")
            if job.class_name in old:
                _check_baseline(result, old[job.class_name], contract, generated[job.class_name])
            elif old:
                result.notes.append("new in this version: no baseline schema to compare with")
            results.append(result)
        for name in sorted(set(old) - {c.job.class_name for c in contracts}):
            notes.append(f"{name} was removed: jobs already enqueued for it will fail")
    files = _ruby_files(Path(ruby_jobs) if ruby_jobs is not None else None)
    side = choose_ruby(ruby, sidekiq_image)
    if isinstance(side, str):
        ruby_desc = side
    else:
        ruby_desc = check_ruby(
            results, contracts, payloads, side, files, generated_ruby(paths), decoders
        )
        if not files:
            notes.append("Ruby job classes not checked: no --ruby-jobs")
    return Report(results, ruby_desc, notes)


def generated_ruby(paths: Sequence[Path]) -> dict[str, str]:
    """The Ruby module ``gokogeri generate --ruby`` writes for ``paths`` (file name -> text)."""
    from gokogeri.codegen import ruby
    from gokogeri.codegen.loader import load

    files: dict[str, str] = ruby.render_package(load(list(paths)))
    return files


def _check_baseline(result: ContractResult, old: Contract, new: Contract, new_worker: type) -> None:
    """Every payload valid under the old schema must stay valid, and decodable, under the new one."""
    from gokogeri.codegen.diff import Verdict, compare_jobs

    result.checks.append("baseline")
    judge = Judge(new.doc)
    decoder = Decoder(new_worker)
    found = len(result.disagreements)
    old_samples = [s for s in generate_samples(old.doc, old.job) if s.valid]
    for sample, payload in zip(old_samples, _payloads(old.job, old_samples), strict=True):
        shown = Sample(sample.args, True, f"valid under the old schema: {sample.why}")
        error = judge.error(sample.args)
        if error is not None:
            result.disagreements.append(
                Disagreement(
                    "baseline", f"an old payload is invalid under the new schema: {error}", shown
                )
            )
            continue
        job = Job.decode(payload)
        try:
            decoder.work(Context(queue=job.queue), job)
        except Exception as exc:
            result.disagreements.append(
                Disagreement(
                    "baseline", f"the new Python code refuses an old payload: {_short(exc)}", shown
                )
            )
    # gokogeri schema diff's static verdict on the same change, for the report.
    showed = len(result.disagreements) > found
    for change in compare_jobs(old.job, new.job):
        if change.verdict is Verdict.SAFE:
            continue
        text = f"schema diff: {change.verdict.value.upper()} {change.where}: {change.what}"
        if change.verdict is Verdict.BREAKING and not showed:
            result.disagreements.append(
                Disagreement("baseline", f"{text} (no generated sample showed it)")
            )
        else:
            result.notes.append(text)


def assert_contracts(schemas: Sequence[Path | str], **options: Any) -> Report:
    """``check`` for a pytest suite: raises AssertionError with the report on any disagreement."""
    report = check(schemas, **options)
    if not report.ok:
        raise AssertionError("job contracts disagree:\n" + report.render())
    return report


# --- the command ---------------------------------------------------------------------------------


def register(app: typer.Typer) -> None:
    """Add ``gokogeri contract-test`` to the main CLI."""
    app.command("contract-test")(contract_test)


def contract_test(
    schemas: Annotated[list[Path], typer.Argument(help="schema files or directories")],
    ruby_jobs: Annotated[
        Path | None,
        typer.Option("--ruby-jobs", help="Ruby file or directory defining the job classes"),
    ] = None,
    python_router: Annotated[
        str | None,
        typer.Option(
            "--python-router",
            help="MODULE:ATTR of a Router (or a function returning one) with your workers",
        ),
    ] = None,
    baseline: Annotated[
        list[Path] | None,
        typer.Option("--baseline", help="the previous version of the schemas (files or dirs)"),
    ] = None,
    ruby: Annotated[str, typer.Option("--ruby", help="auto, host, image or none")] = "auto",
    sidekiq_image: Annotated[
        str | None,
        typer.Option("--sidekiq-image", help=f"image with Ruby + sidekiq (default: ${IMAGE_ENV})"),
    ] = None,
    samples: Annotated[
        int, typer.Option("--samples", min=1, help="random valid samples per schema")
    ] = DEFAULT_RANDOM,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Check Ruby job classes and Python workers against the job schemas, with generated samples."""
    from gokogeri.codegen.errors import SchemaError

    if ruby not in ("auto", "host", "image", "none"):
        raise typer.BadParameter("--ruby must be auto, host, image or none")
    router = None
    if python_router is not None:
        from gokogeri.cli import load_target

        router = load_target(python_router)
    try:
        report = check(
            schemas,
            ruby_jobs=ruby_jobs,
            router=router,
            baseline=baseline,
            ruby=ruby,  # type: ignore[arg-type]  # checked against RubyMode just above
            sidekiq_image=sidekiq_image,
            random_samples=samples,
        )
    except SchemaError as e:
        for problem in e.problems:
            typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(2) from None
    except (RuntimeError, FileNotFoundError, TypeError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps(report.to_json(), indent=2) if as_json else report.render())
    raise typer.Exit(0 if report.ok else 1)
