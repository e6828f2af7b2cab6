"""A real Redis Sentinel deployment on 127.0.0.1: one master, one replica, three
sentinels (Debian's redis-server and redis-sentinel), all on free ports, all
stopped by ``stop()``.

Sentinel timings are shortened so a forced failover completes in about a
second; nothing else differs from a production layout.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import redis as redispy

from gokogeri.testing import RedisServer, free_port

SERVICE = "mymaster"


def sentinel_binary() -> str | None:
    return shutil.which("redis-sentinel")


class SentinelCluster:
    """Master + replica + sentinels. ``url`` is the redis+sentinel:// URL."""

    def __init__(
        self,
        sentinels: int = 3,
        server_args: list[str] | None = None,
        sentinel_conf: list[str] | None = None,
    ) -> None:
        binary = sentinel_binary()
        if binary is None:
            raise RuntimeError(
                "redis-sentinel is not installed (Debian: apt-get install redis-sentinel)"
            )
        self._binary = binary
        self._server_args = list(server_args or [])
        self._sentinel_conf = list(sentinel_conf or [])
        self._n = sentinels
        self._dir = Path(tempfile.mkdtemp(prefix="gokogeri-sentinel-"))
        self.servers: list[RedisServer] = []
        self.sentinel_ports: list[int] = []
        self._procs: list[subprocess.Popen[bytes]] = []

    @property
    def sentinels(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", p) for p in self.sentinel_ports]

    def url(self, db: int = 0, query: str = "") -> str:
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{SERVICE}/{db}" + (f"?{query}" if query else "")

    def start(self) -> SentinelCluster:
        master = RedisServer(extra_args=self._server_args).start()
        self.servers.append(master)
        replica = RedisServer(
            extra_args=[*self._server_args, "--replicaof", "127.0.0.1", str(master.port)]
        ).start()
        self.servers.append(replica)
        self._wait_replica_synced(replica.port)
        for i in range(self._n):
            port = free_port()
            conf = self._dir / f"sentinel-{i}.conf"
            conf.write_text(
                "\n".join(
                    [
                        f"port {port}",
                        "bind 127.0.0.1",
                        f"dir {self._dir}",
                        f"sentinel monitor {SERVICE} 127.0.0.1 {master.port} 2",
                        f"sentinel down-after-milliseconds {SERVICE} 1000",
                        f"sentinel failover-timeout {SERVICE} 4000",
                        *self._sentinel_conf,
                        "",
                    ]
                )
            )
            self._procs.append(
                subprocess.Popen(
                    [self._binary, str(conf)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            self.sentinel_ports.append(port)
        # Every sentinel must know the replica and its peers before a failover
        # can be agreed on.
        deadline = time.monotonic() + 30
        for port in self.sentinel_ports:
            s: Any = redispy.Redis(port=port, host="127.0.0.1", decode_responses=True)
            try:
                while True:
                    try:
                        m = s.sentinel_master(SERVICE)
                        if (
                            int(m["num-slaves"]) >= 1
                            and int(m["num-other-sentinels"]) >= self._n - 1
                        ):
                            break
                    except redispy.RedisError:
                        pass
                    if time.monotonic() > deadline:
                        raise RuntimeError("sentinels did not discover each other in time")
                    time.sleep(0.1)
            finally:
                s.close()
        return self

    def _wait_replica_synced(self, port: int) -> None:
        r = redispy.Redis(host="127.0.0.1", port=port, decode_responses=True)
        deadline = time.monotonic() + 20
        try:
            while r.info("replication").get("master_link_status") != "up":
                if time.monotonic() > deadline:
                    raise RuntimeError("replica did not sync")
                time.sleep(0.05)
        finally:
            r.close()

    def master_port(self) -> int:
        s: Any = redispy.Redis(port=self.sentinel_ports[0], host="127.0.0.1", decode_responses=True)
        try:
            _host, port = s.sentinel_get_master_addr_by_name(SERVICE)
            return int(port)
        finally:
            s.close()

    def failover(self, timeout: float = 40.0, wait_rejoin: bool = True) -> int:
        """SENTINEL FAILOVER (retried while Sentinel has no good replica yet, as
        right after a previous failover); wait until every sentinel names the
        new master, and with ``wait_rejoin`` until the old one replicates from
        it (Sentinel demotes it about 8 s later). Returns the new master's port.

        Without that wait a second failover can promote the old master before
        it was demoted, with its stale data: a Sentinel hazard, not a client one.
        """
        old = self.master_port()
        s: Any = redispy.Redis(port=self.sentinel_ports[0], host="127.0.0.1", decode_responses=True)
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    s.execute_command("SENTINEL", "FAILOVER", SERVICE)
                    break
                except redispy.ResponseError as e:
                    # INPROG / NOGOODSLAVE right after a previous failover:
                    # the replica is still syncing.
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"SENTINEL FAILOVER refused: {e}") from e
                    time.sleep(0.2)
        finally:
            s.close()
        for port in self.sentinel_ports:
            while True:
                c: Any = redispy.Redis(port=port, host="127.0.0.1", decode_responses=True)
                try:
                    _h, p = c.sentinel_get_master_addr_by_name(SERVICE)
                finally:
                    c.close()
                if int(p) != old:
                    new = int(p)
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("failover did not complete in time")
                time.sleep(0.05)
        if wait_rejoin:
            self._wait_replica_synced(old)
        return new

    def stop(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self._procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._procs.clear()
        for server in self.servers:
            server.stop()
        self.servers.clear()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> SentinelCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
