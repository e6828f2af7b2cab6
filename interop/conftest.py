"""Fixtures for the cross-language suite: real Redis + real Ruby Sidekiq per test environment.

    python -m pytest interop -q                    # default matrix (5 environments)
    INTEROP_MATRIX=full python -m pytest interop   # 3 Sidekiq versions x 3 Redis flavours
    INTEROP_MODE=host python -m pytest interop     # no containers: host redis + Sidekiq 6.4.1

INTEROP_MODE=auto (default) uses containers when podman and the images are there (see
interop/setup.sh), else falls back to the host; INTEROP_MODE=containers makes a missing image
an error instead of a fallback.

A test asks for ``sk`` (an :class:`harness.InteropEnv`, emptied of earlier tests' jobs) and is
run once per environment. Environments are session-scoped and parametrized, so pytest runs all
tests of one environment together and only one environment is up at a time.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field

import harness
import pytest
from harness import InteropEnv


@dataclass
class Plan:
    mode: str  # "containers" | "host"
    envs: list[tuple[str, str]]
    why: str = ""
    service: harness.PodmanService | None = None
    # (env id, case name) -> outcome, for the summary table
    results: dict[tuple[str, str], str] = field(default_factory=dict)


def _plan() -> Plan:
    wanted = os.environ.get("INTEROP_MODE", "auto")
    if wanted not in ("auto", "containers", "host"):
        raise pytest.UsageError(f"INTEROP_MODE must be auto, containers or host, not {wanted!r}")
    host = Plan("host", [("6.4.1", harness.HOST_FLAVOUR)])
    if wanted == "host":
        host.why = "INTEROP_MODE=host"
        return host
    envs = harness.matrix()
    missing = harness.missing_images([v for v, _ in envs], [f for _, f in envs])
    if not missing:
        return Plan("containers", envs)
    why = f"missing: {', '.join(missing)} (run interop/setup.sh)"
    if wanted == "containers":
        raise pytest.UsageError(f"INTEROP_MODE=containers but {why}")
    host.why = f"no containers, {why}"
    return host


PLAN_KEY = pytest.StashKey[Plan]()


# Tests marked flavour_independent exercise Sidekiq and gokogeri, not Redis: by default they
# run on this flavour only (one environment per Sidekiq version); INTEROP_MATRIX=full runs
# them everywhere. Keeps the default run inside the CI budget.
BASE_FLAVOURS = ("redis-7.0", harness.HOST_FLAVOUR)


def pytest_configure(config: pytest.Config) -> None:
    config.stash[PLAN_KEY] = _plan()
    config.addinivalue_line(
        "markers",
        "flavour_independent: run on redis-7.0 only unless INTEROP_MATRIX=full",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("INTEROP_MATRIX") == "full":
        return
    skip = pytest.mark.skip(
        reason="does not depend on the Redis flavour: redis-7.0 only (INTEROP_MATRIX=full: all)"
    )
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None or "interop_env" not in callspec.params:
            continue
        _, flavour = callspec.params["interop_env"]
        if flavour not in BASE_FLAVOURS and item.get_closest_marker("flavour_independent"):
            item.add_marker(skip)


def pytest_report_header(config: pytest.Config) -> str:
    plan = config.stash[PLAN_KEY]
    ids = ", ".join(harness.env_id(v, f) for v, f in plan.envs)
    extra = f" ({plan.why})" if plan.why else ""
    return f"interop: mode={plan.mode}{extra}; environments: {ids}"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "interop_env" in metafunc.fixturenames:
        plan = metafunc.config.stash[PLAN_KEY]
        metafunc.parametrize(
            "interop_env",
            plan.envs,
            ids=[harness.env_id(v, f) for v, f in plan.envs],
            indirect=True,
            scope="session",
        )


@pytest.fixture(scope="session")
def _podman(request: pytest.FixtureRequest) -> Iterator[harness.PodmanService | None]:
    plan = request.config.stash[PLAN_KEY]
    if plan.mode != "containers":
        yield None
        return
    service = harness.PodmanService.ensure()
    service.activate()
    try:
        yield service
    finally:
        service.close()


@pytest.fixture(scope="session")
def interop_env(
    request: pytest.FixtureRequest, _podman: harness.PodmanService | None
) -> Iterator[InteropEnv]:
    """One running Redis + Sidekiq; parametrized by pytest_generate_tests."""
    series, flavour = request.param
    plan = request.config.stash[PLAN_KEY]
    with harness.started(series, flavour, plan.mode) as env:
        yield env


@pytest.fixture
def sk(interop_env: InteropEnv) -> InteropEnv:
    """The environment, with the queues, sets and records of earlier tests removed."""
    interop_env.reset()
    return interop_env


@pytest.fixture
def web_url(sk: InteropEnv) -> str:
    """Sidekiq's Web UI over the test's Redis (one per environment, started on first use)."""
    return sk.web_url


# --- the summary table ----------------------------------------------------------------------------


def _case_name(item: pytest.Item) -> str:
    callspec = getattr(item, "callspec", None)
    name = getattr(item, "originalname", item.name)
    if callspec is None:
        return name
    others = [f"{v}" for k, v in callspec.params.items() if k != "interop_env"]
    return f"{name}[{'-'.join(others)}]" if others else name


def _env_name(item: pytest.Item) -> str:
    callspec = getattr(item, "callspec", None)
    if callspec is None or "interop_env" not in callspec.params:
        return "-"
    return harness.env_id(*callspec.params["interop_env"])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    key = (_env_name(item), _case_name(item))
    results = item.config.stash[PLAN_KEY].results
    if report.when == "call" or (report.when == "setup" and not report.passed):
        if report.passed:
            outcome = "pass"
        elif report.skipped and hasattr(report, "wasxfail"):
            outcome = "xfail"  # a known bug (see README), failing as expected
        elif report.skipped:
            outcome = "skip"
        else:
            outcome = "FAIL" if report.when == "call" else "ERROR"
        results[key] = outcome
    elif report.when == "teardown" and report.failed:
        results[key] = "ERROR"
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    plan = terminalreporter.config.stash[PLAN_KEY]
    if not plan.results:
        return
    envs = sorted({e for e, _ in plan.results})
    cases = sorted({c for _, c in plan.results})
    width = max(len(c) for c in cases)
    col = max(max(len(e) for e in envs), 5)
    tr = terminalreporter
    tr.write_sep("=", f"interop matrix (mode={plan.mode})")
    tr.write_line(" " * width + " | " + " | ".join(e.ljust(col) for e in envs))
    tr.write_line("-" * width + "-+-" + "-+-".join("-" * col for _ in envs))
    for case in cases:
        cells = [plan.results.get((e, case), "").ljust(col) for e in envs]
        tr.write_line(case.ljust(width) + " | " + " | ".join(cells))
