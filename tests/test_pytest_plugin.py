"""The pytest plugin, run for real: pytester starts pytest in a subprocess, which loads
gokogeri's plugin through its pytest11 entry point exactly as a user's project does."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)


def test_redis_fixtures_share_one_server_flushed_between_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import gokogeri
        from gokogeri.testing import enqueued_jobs

        PORTS = []

        def test_first(gokogeri_redis, gokogeri_enqueuer, gokogeri_cm):
            PORTS.append(gokogeri_redis.port)
            gokogeri_enqueuer.enqueue(gokogeri.Job("A", args=[1]))
            assert [j.class_name for j in enqueued_jobs(gokogeri_cm)] == ["A"]

        def test_second(gokogeri_redis_url, gokogeri_cm):
            assert gokogeri_redis_url.startswith("redis://127.0.0.1:")
            assert enqueued_jobs(gokogeri_cm) == []  # flushed
            assert gokogeri_cm.client.dbsize() == 0

        def test_same_server(gokogeri_redis):
            assert PORTS == [gokogeri_redis.port]
        """
    )
    _run(pytester).assert_outcomes(passed=3)


def test_function_scope_starts_a_server_per_test(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ngokogeri_redis_scope = function\n")
    pytester.makepyfile(
        """
        import redis

        SEEN = []

        def test_one(gokogeri_redis):
            SEEN.append(gokogeri_redis)
            redis.Redis.from_url(gokogeri_redis.url).set("k", "v")

        def test_two(gokogeri_redis):
            assert gokogeri_redis is not SEEN[0]
            assert redis.Redis.from_url(gokogeri_redis.url).get("k") is None
            # the first test's server was stopped when it ended
            assert SEEN[0]._proc is None
        """
    )
    _run(pytester).assert_outcomes(passed=2)


def test_bad_settings_are_reported(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\ngokogeri_redis_scope = module\n",
    )
    pytester.makepyfile("def test_x(gokogeri_redis):\n    pass\n")
    result = _run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*gokogeri_redis_scope must be 'session' or 'function'*"])


def test_fake_and_inline_modes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        import gokogeri

        def hello(ctx, job):
            if job.args == ["boom"]:
                raise RuntimeError("boom")

        def test_fake(gokogeri_fake):
            router = gokogeri.Router()
            router.register("Hello", hello)
            gokogeri_fake.enqueue(gokogeri.Job("Hello", args=["x"]))
            gokogeri_fake.enqueue(gokogeri.Job("Hello", args=["boom"], retry=1))
            gokogeri_fake.assert_enqueued("Hello", ["x"])
            assert gokogeri_fake.drain(router) == 3
            assert [j.args for j in gokogeri_fake.dead] == [["boom"]]

        def test_inline(gokogeri_fake):
            router = gokogeri.Router()
            router.register("Hello", hello)
            with gokogeri_fake.inline(router):
                gokogeri_fake.enqueue(gokogeri.Job("Hello", args=["x"]))
                with pytest.raises(RuntimeError):
                    gokogeri_fake.enqueue(gokogeri.Job("Hello", args=["boom"]))
            assert [j.args for j in gokogeri_fake.performed] == [["x"]]

        def test_fresh_fake_per_test(gokogeri_fake):
            assert gokogeri_fake.jobs == [] and gokogeri_fake.performed == []
        """
    )
    _run(pytester).assert_outcomes(passed=3)


def test_node_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import gokogeri
        from gokogeri.testing import wait_for

        def test_node(gokogeri_node, gokogeri_enqueuer):
            seen = []
            router = gokogeri.Router()
            router.register("Work", lambda ctx, job: seen.append(job.args))
            node = gokogeri_node(router, queues=["default"])
            gokogeri_enqueuer.enqueue(gokogeri.Job("Work", args=[1]))
            wait_for(lambda: seen)
            assert seen == [[1]] and node.concurrency == 2
        """
    )
    _run(pytester).assert_outcomes(passed=1)


def test_opt_in_a_run_without_the_fixtures_is_unchanged(pytester: pytest.Pytester) -> None:
    # Nothing of gokogeri is imported and no fixture set up unless a test asks for one.
    pytester.makeconftest(
        """
        import sys

        SET_UP = []

        def pytest_fixture_setup(fixturedef, request):
            SET_UP.append(fixturedef.argname)

        def pytest_sessionfinish(session):
            mine = [n for n in SET_UP if n.startswith("gokogeri")]
            imported = sorted(m for m in sys.modules if m == "gokogeri" or m.startswith("gokogeri."))
            print(f"\\ngokogeri fixtures set up: {mine}; modules: {imported}")
        """
    )
    pytester.makepyfile("def test_plain(tmp_path):\n    assert tmp_path.exists()\n")
    result = _run(pytester, "-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["*gokogeri fixtures set up: []; modules: ['gokogeri.pytest_plugin']*"]
    )
    listing = _run(pytester, "--fixtures")
    listing.stdout.fnmatch_lines(["*gokogeri_redis*", "*gokogeri_fake*", "*gokogeri_sidekiq*"])
