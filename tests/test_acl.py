"""ACL users: the rule set documented in docs/scale.md runs a node's whole life
cycle on a real redis-server, and a user missing one permission gets an error
that names it.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redispy

import gokogeri
from gokogeri import redis as gredis
from gokogeri.testing import RedisServer
from tests.conftest import wait_for
from tests.scale.lifecycle import run_lifecycle

ROOT = Path(__file__).parent.parent
DOC = ROOT / "docs" / "scale.md"
PASSWORD = "node-pass-1"


def documented_rules() -> list[str]:
    """The ACL rules from docs/scale.md's ```acl block, as SETUSER arguments."""
    m = re.search(r"```acl\n(.*?)```", DOC.read_text(), re.S)
    assert m is not None, "docs/scale.md has no ```acl block"
    tokens = m.group(1).split()
    assert tokens[:2] == ["user", "gokogeri"]
    return [f">{PASSWORD}" if t == ">CHANGE-ME" else t for t in tokens[2:]]


@pytest.fixture
def server() -> Iterator[RedisServer]:
    with RedisServer() as s:
        yield s


def make_user(admin: redispy.Redis, name: str, rules: list[str]) -> None:
    admin.execute_command("ACL", "SETUSER", name, "reset", *rules)


def user_url(server: RedisServer, name: str) -> str:
    return f"redis://{name}:{PASSWORD}@127.0.0.1:{server.port}/0"


def test_documented_rules_run_the_whole_life_cycle(server: RedisServer) -> None:
    admin = redispy.Redis.from_url(server.url)
    make_user(admin, "gokogeri", documented_rules())
    ran = run_lifecycle(user_url(server, "gokogeri"), admin)
    assert ran == {"Ok": 3, "Flaky": 2, "Doomed": 1, "Later": 1, "Orphan": 1}
    # Nothing was refused along the way.
    denied = [e for e in admin.acl_log() if e.get("username") == "gokogeri"]
    assert denied == []
    admin.close()


def test_connects_as_the_acl_user_and_never_shows_the_password(
    server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    admin = redispy.Redis.from_url(server.url)
    make_user(admin, "gokogeri", documented_rules())
    cfg = gredis.Config(url=user_url(server, "gokogeri"))
    assert PASSWORD not in cfg.redacted_url()
    assert PASSWORD not in repr(cfg)
    with gredis.ConnManager(cfg) as cm:
        assert PASSWORD not in repr(cm)
        assert cm.client.ping()
        assert any(c.get("user") == "gokogeri" for c in admin.client_list())
    assert PASSWORD not in caplog.text
    admin.close()


def test_wrong_password_is_an_authentication_error(server: RedisServer) -> None:
    admin = redispy.Redis.from_url(server.url)
    make_user(admin, "gokogeri", documented_rules())
    url = f"redis://gokogeri:wrong@127.0.0.1:{server.port}/0"
    with (
        gredis.ConnManager(gredis.Config(url=url)) as cm,
        pytest.raises(redispy.AuthenticationError),
    ):
        cm.client.ping()
    admin.close()


def without(rules: list[str], token: str) -> list[str]:
    assert token in rules
    return [t for t in rules if t != token]


def test_missing_command_permission_is_named(server: RedisServer) -> None:
    admin = redispy.Redis.from_url(server.url)
    make_user(admin, "gokogeri", without(documented_rules(), "+lpush"))
    with gredis.ConnManager(gredis.Config(url=user_url(server, "gokogeri"))) as cm:
        enq = gokogeri.Enqueuer(cm)
        with pytest.raises(Exception) as info:
            enq.enqueue(gokogeri.Job(class_name="X", queue="default", args=[]))
    # EnqueueError (or the raw error), caused by Redis's NOPERM naming the command.
    cause = info.value if isinstance(info.value, redispy.RedisError) else info.value.__cause__
    assert isinstance(cause, redispy.exceptions.NoPermissionError)
    assert "'lpush' command" in str(info.value)
    admin.close()


def test_missing_key_permission_is_named(server: RedisServer) -> None:
    admin = redispy.Redis.from_url(server.url)
    make_user(admin, "gokogeri", without(documented_rules(), "~queue:*"))
    with gredis.ConnManager(gredis.Config(url=user_url(server, "gokogeri"))) as cm:
        enq = gokogeri.Enqueuer(cm)
        with pytest.raises(Exception) as info:
            enq.enqueue(gokogeri.Job(class_name="X", queue="default", args=[]))
    cause = info.value if isinstance(info.value, redispy.RedisError) else info.value.__cause__
    assert isinstance(cause, redispy.exceptions.NoPermissionError)
    assert "key" in str(info.value)
    admin.close()


def test_node_without_rpop_says_so(server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    admin = redispy.Redis.from_url(server.url)
    make_user(admin, "gokogeri", without(documented_rules(), "+rpop"))
    job = b'{"class":"X","queue":"default","args":[],"jid":"0123456789abcdef01234567","retry":true}'
    admin.lpush("queue:default", job)
    logger = logging.getLogger("test.acl")
    with gredis.ConnManager(gredis.Config(url=user_url(server, "gokogeri"))) as cm:
        node = gokogeri.Node(logger, cm, heartbeat_interval=0.5, shutdown_timeout=1)
        node.process_queues(
            gokogeri.OrderedQueueSet(["default"]), gokogeri.WorkerFunc(lambda c, j: None), 1
        )
        caplog.set_level(logging.WARNING, logger="test.acl")
        thread = threading.Thread(target=node.run, name="acl-node")
        thread.start()
        try:
            deadline = time.monotonic() + 20
            while "redis.call('RPOP'" not in caplog.text:
                assert time.monotonic() < deadline, caplog.text
                time.sleep(0.05)
        finally:
            node.stop(1)
            thread.join(10)
    assert admin.llen("queue:default") == 1  # refused, not lost
    admin.close()


def test_gokogeri_run_under_the_documented_user(server: RedisServer) -> None:
    """The CLI's node (Sidekiq metrics on, as by default) needs nothing more."""
    admin = redispy.Redis.from_url(server.url)
    # The application's own key (its job writes cli:done) is the app's rule to add.
    make_user(admin, "gokogeri", [*documented_rules(), "~cli:*"])
    url = user_url(server, "gokogeri")
    env = dict(os.environ, GOKOGERI_REDIS_URL=url)
    with tempfile.TemporaryFile() as log:
        node = subprocess.Popen(
            [sys.executable, "-m", "gokogeri", "run", "tests.scale.cli_app:router", "-q", "aclcli"],
            env=env,
            cwd=str(ROOT),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            with gredis.ConnManager(gredis.Config(url=url)) as cm:
                enq = gokogeri.Enqueuer(cm)
                jids = [
                    enq.enqueue(gokogeri.Job(class_name="Record", queue="aclcli", args=[i]))
                    for i in range(20)
                ]
            wait_for(lambda: admin.llen("cli:done") == 20, timeout=30)
        finally:
            node.send_signal(signal.SIGTERM)
            node.wait(30)
        log.seek(0)
        output = log.read().decode(errors="replace")
    assert node.returncode == 0, output
    assert {j.encode() for j in jids if j} == set(admin.lrange("cli:done", 0, -1))
    assert admin.keys("j|*"), "the Metrics tab's data was written"
    denied = [e for e in admin.acl_log() if e.get("username") == "gokogeri"]
    assert denied == [], denied
    assert "NOPERM" not in output and "no permissions" not in output, output
    admin.close()
