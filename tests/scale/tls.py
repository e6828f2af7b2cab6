"""A throwaway certificate authority (openssl) and a TLS-only redis-server.

The CA signs a server certificate for 127.0.0.1/localhost and a client
certificate; a second, unrelated CA lets tests show that verification is on.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import redis as redispy

from gokogeri.testing import RedisServer


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


class TlsRedisServer(RedisServer):
    """redis-server listening only on a TLS port of 127.0.0.1.

    client_certs: "no" (server auth only), "yes" (mutual TLS required).
    """

    def __init__(self, pki: Pki, client_certs: str = "no", extra_args: list[str] | None = None):
        super().__init__(extra_args=extra_args)
        self.pki = pki
        self._client_certs = client_certs

    @property
    def url(self) -> str:
        return f"rediss://127.0.0.1:{self.port}/0"

    def _listen(self) -> list[str]:
        return [
            "--port", "0",
            "--tls-port", str(self.port),
            "--tls-cert-file", str(self.pki.server_cert),
            "--tls-key-file", str(self.pki.server_key),
            "--tls-ca-cert-file", str(self.pki.ca),
            "--tls-auth-clients", self._client_certs,
        ]  # fmt: skip

    def _probe(self) -> redispy.Redis:
        return redispy.Redis(
            host="127.0.0.1",
            port=self.port,
            ssl=True,
            ssl_ca_certs=str(self.pki.ca),
            ssl_certfile=str(self.pki.client_cert),
            ssl_keyfile=str(self.pki.client_key),
            socket_connect_timeout=0.5,
        )
