"""A throwaway certificate authority (openssl) and a TLS-only redis-server.

The CA signs a server certificate for 127.0.0.1/localhost and a client
certificate; a second, unrelated CA lets tests show that verification is on.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import redis as redispy

from gokogeri.testing import find_redis_server, free_port

START_TIMEOUT = 10.0


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@dataclass
class Pki:
    dir: Path
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path  # a CA that signed nothing here


def make_pki(directory: Path) -> Pki:
    d = directory
    days = "2"
    for name in ("ca", "other-ca"):
        _openssl(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", days,
            "-subj", f"/CN=gokogeri-test-{name}",
            "-keyout", f"{name}.key", "-out", f"{name}.crt",
            cwd=d,
        )  # fmt: skip
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name in ("server", "client"):
        _openssl(
            "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN=gokogeri-test-{name}",
            "-keyout", f"{name}.key", "-out", f"{name}.csr",
            cwd=d,
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", days, "-extfile", f"{name}.ext", "-out", f"{name}.crt",
            cwd=d,
        )  # fmt: skip
    return Pki(
        d, d / "ca.crt", d / "server.crt", d / "server.key", d / "client.crt",
        d / "client.key", d / "other-ca.crt",
    )  # fmt: skip


class TlsRedisServer:
    """redis-server listening only on a TLS port of 127.0.0.1.

    client_certs: "no" (server auth only), "yes" (mutual TLS required).
    """

    def __init__(self, pki: Pki, client_certs: str = "no", extra_args: list[str] | None = None):
        binary = find_redis_server()
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        self.pki = pki
        self.port = free_port()
        self._dir = tempfile.mkdtemp(prefix="gokogeri-tls-redis-")
        self._args = [
            binary,
            "--port", "0",
            "--tls-port", str(self.port),
            "--bind", "127.0.0.1",
            "--tls-cert-file", str(pki.server_cert),
            "--tls-key-file", str(pki.server_key),
            "--tls-ca-cert-file", str(pki.ca),
            "--tls-auth-clients", client_certs,
            "--save", "",
            "--appendonly", "no",
            "--dir", self._dir,
            *(extra_args or []),
        ]  # fmt: skip
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"rediss://127.0.0.1:{self.port}/0"

    def start(self) -> TlsRedisServer:
        self._proc = subprocess.Popen(
            self._args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        client = redispy.Redis(
            host="127.0.0.1",
            port=self.port,
            ssl=True,
            ssl_ca_certs=str(self.pki.ca),
            ssl_certfile=str(self.pki.client_cert),
            ssl_keyfile=str(self.pki.client_key),
            socket_connect_timeout=0.5,
        )
        deadline = time.monotonic() + START_TIMEOUT
        try:
            while True:
                try:
                    client.ping()
                    return self
                except (redispy.AuthenticationError, redispy.ResponseError):
                    return self
                except redispy.ConnectionError:
                    pass
                if self._proc.poll() is not None:
                    raise RuntimeError(f"redis-server (TLS) exited with {self._proc.returncode}")
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server (TLS) did not answer in time")
                time.sleep(0.02)
        finally:
            client.close()

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> TlsRedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
