"""TLS to a real redis-server with a CA made here by openssl.

Verification is on by default (a server signed by an unknown CA is refused),
the CA/client certificate/key travel in Config, in the URL query or in the
environment, and the CLI works with nothing but the URL.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redispy

import gokogeri
from gokogeri import redis as gredis
from tests.conftest import NodeThread, wait_for
from tests.scale.tls import Pki, TlsRedisServer, make_pki

ROOT = Path(__file__).parent.parent

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")


@pytest.fixture(scope="module")
def pki() -> Iterator[Pki]:
    d = Path(tempfile.mkdtemp(prefix="gokogeri-pki-"))
    try:
        yield make_pki(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def tls_server(pki: Pki) -> Iterator[TlsRedisServer]:
    with TlsRedisServer(pki, client_certs="no") as server:
        yield server


@pytest.fixture(scope="module")
def mtls_server(pki: Pki) -> Iterator[TlsRedisServer]:
    with TlsRedisServer(pki, client_certs="yes") as server:
        yield server


def test_node_runs_jobs_over_tls(tls_server: TlsRedisServer, pki: Pki) -> None:
    cfg = gredis.Config(url=tls_server.url, tls_ca=str(pki.ca))
    done: list[str] = []
    event = threading.Event()

    def work(ctx: gokogeri.Context, job: gokogeri.Job) -> None:
        done.append(job.jid)
        if len(done) == 50:
            event.set()

    with gredis.ConnManager(cfg) as cm:
        cm.client.flushall()
        enq = gokogeri.Enqueuer(cm)
        jids = [enq.enqueue(gokogeri.Job(class_name="T", queue="tls", args=[i])) for i in range(50)]
        node = gokogeri.Node(logging.getLogger("test.tls"), cm, heartbeat_interval=1.0)
        node.process_queues(gokogeri.OrderedQueueSet(["tls"]), gokogeri.WorkerFunc(work), 5)
        with NodeThread(node):
            assert event.wait(30)
            # The heartbeat went over TLS too: the Web UI's process set sees us.
            wait_for(lambda: cm.client.sismember("processes", node.identity))
    assert sorted(done) == sorted(j for j in jids if j)


def test_verification_is_on_by_default(tls_server: TlsRedisServer, pki: Pki) -> None:
    # No CA given: the system store does not know our test CA.
    with (
        gredis.ConnManager(gredis.Config(url=tls_server.url)) as cm,
        pytest.raises(redispy.ConnectionError, match=r"(?i)certificate verify failed"),
    ):
        cm.client.ping()
    # The wrong CA is refused as well.
    cfg = gredis.Config(url=tls_server.url, tls_ca=str(pki.other_ca))
    with gredis.ConnManager(cfg) as cm, pytest.raises(redispy.ConnectionError, match=r"(?i)verify"):
        cm.client.ping()


def test_verification_can_be_turned_off_explicitly(tls_server: TlsRedisServer) -> None:
    url = tls_server.url + "?ssl_cert_reqs=none"
    with gredis.ConnManager(gredis.Config(url=url)) as cm:
        assert cm.client.ping()
    with gredis.ConnManager(gredis.Config(url=tls_server.url, tls_verify=False)) as cm:
        assert cm.client.ping()


def test_client_certificate_from_url_query(mtls_server: TlsRedisServer, pki: Pki) -> None:
    # Without a client certificate the server hangs up on us.
    with (
        gredis.ConnManager(gredis.Config(url=mtls_server.url, tls_ca=str(pki.ca))) as cm,
        pytest.raises(redispy.ConnectionError),
    ):
        cm.client.ping()
    url = (
        f"{mtls_server.url}?ssl_ca_certs={pki.ca}&ssl_certfile={pki.client_cert}"
        f"&ssl_keyfile={pki.client_key}"
    )
    with gredis.ConnManager(gredis.Config(url=url)) as cm:
        cm.client.set("mtls", "ok")
        blocking = cm.dedicated()
        assert blocking.blpop(["nothing"], timeout=0.1) is None
        assert blocking.get("mtls") == b"ok"
        blocking.close()


def test_tls_files_from_environment(
    mtls_server: TlsRedisServer, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOKOGERI_REDIS_TLS_CA", str(pki.ca))
    monkeypatch.setenv("GOKOGERI_REDIS_TLS_CERT", str(pki.client_cert))
    monkeypatch.setenv("GOKOGERI_REDIS_TLS_KEY", str(pki.client_key))
    with gredis.ConnManager(gredis.Config(url=mtls_server.url)) as cm:
        assert cm.client.ping()


def test_bad_tls_settings_fail_at_config(pki: Pki, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="tls_ca"):
        gredis.Config(url="rediss://127.0.0.1:1/0", tls_ca=str(tmp_path / "missing.pem"))
    with pytest.raises(ValueError, match="tls_key"):
        gredis.Config(url="rediss://127.0.0.1:1/0", tls_cert=str(pki.client_cert))
    with pytest.raises(ValueError, match="rediss"):
        gredis.Config(url="redis://127.0.0.1:1/0", tls_ca=str(pki.ca))
    with pytest.raises(ValueError, match="verify"):
        gredis.Config(url="rediss://127.0.0.1:1/0?ssl_cert_reqs=maybe")


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gokogeri", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(ROOT),
        env=dict(os.environ, **(env or {})),
        check=False,
    )


def test_operator_commands_need_only_the_url(mtls_server: TlsRedisServer, pki: Pki) -> None:
    url = (
        f"{mtls_server.url}?ssl_ca_certs={pki.ca}&ssl_certfile={pki.client_cert}"
        f"&ssl_keyfile={pki.client_key}"
    )
    out = cli("enqueue", "CliTls", "--queue", "clitls", "--args", "[1]", "--redis-url", url)
    assert out.returncode == 0, out.stderr
    out = cli("queues", "--json", "--redis-url", url)
    assert out.returncode == 0, out.stderr
    assert "clitls" in out.stdout
    # The same through the environment, as `gokogeri run` reads it.
    out = cli("stats", "--json", env={"GOKOGERI_REDIS_URL": url})
    assert out.returncode == 0, out.stderr
    assert isinstance(json.loads(out.stdout), dict)
    # Verification failure is one line naming the problem, not a traceback.
    out = cli("stats", "--redis-url", mtls_server.url)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert "certificate verify failed" in out.stderr.lower()


def test_gokogeri_run_needs_only_the_url(mtls_server: TlsRedisServer, pki: Pki) -> None:
    url = (
        f"{mtls_server.url}?ssl_ca_certs={pki.ca}&ssl_certfile={pki.client_cert}"
        f"&ssl_keyfile={pki.client_key}"
    )
    with tempfile.TemporaryFile() as log:
        node = subprocess.Popen(
            [sys.executable, "-m", "gokogeri", "run", "tests.scale.cli_app:router", "-q", "tlscli"],
            env=dict(os.environ, GOKOGERI_REDIS_URL=url),
            cwd=str(ROOT),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            out = cli("enqueue", "Record", "--queue", "tlscli", "--args", "[1]", "--redis-url", url)
            assert out.returncode == 0, out.stderr
            jid = out.stdout.strip().split()[-1]
            with gredis.ConnManager(gredis.Config(url=url)) as cm:
                wait_for(lambda: jid.encode() in cm.client.lrange("cli:done", 0, -1), timeout=30)
        finally:
            node.send_signal(signal.SIGTERM)
            node.wait(30)
        log.seek(0)
        assert node.returncode == 0, log.read().decode(errors="replace")


def test_other_url_query_options_still_reach_redis_py(redis_url: str) -> None:
    # TLS options are taken out of the query; the rest keeps redis-py's meaning.
    with gredis.ConnManager(gredis.Config(url=redis_url + "?socket_timeout=3")) as cm:
        assert cm.client.ping()
        blocking = cm.dedicated()
        assert blocking.ping()
        blocking.close()
