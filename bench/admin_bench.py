"""Operator commands on a big dead set: 100,000 dead jobs on a private redis-server.

    python bench/admin_bench.py [N]

Measures, with the real ``gokogeri`` command in a child process:
- ``gokogeri dead --limit 20`` wall time (process start included) and the API call alone;
- ``gokogeri retry --all --yes`` wall time, jobs per second;
- the longest single Redis command either ran, from Redis's own SLOWLOG (threshold 0, so
  every command is logged with its server-side duration): what "never blocks Redis for
  long" means in numbers.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import redis as redispy

from gokogeri import redis as gredis
from gokogeri.api import BATCH, Api
from gokogeri.job import Job
from gokogeri.testing import RedisServer

ROOT = Path(__file__).resolve().parents[1]


def seed(client: redispy.Redis, n: int) -> None:
    now = time.time()
    pipe = client.pipeline(transaction=False)
    for i in range(n):
        job = Job(
            "ReportJob", "reports", [i, {"account": i % 97}], jid=f"{i:024x}",
            created_at=now - 7200, enqueued_at=now - 7200, failed_at=now - 7000,
            retry_count=25, error_class="Net::ReadTimeout", error_message=f"timed out after 30s ({i})",
        )  # fmt: skip
        pipe.zadd("dead", {job.encode(): now - i})
        if len(pipe) >= 5000:
            pipe.execute()
    pipe.execute()


def _name(entry: dict[str, object]) -> str:
    cmd = entry["command"]
    return cmd.split(b" ")[0].decode() if isinstance(cmd, bytes) else str(cmd).split(" ")[0]


def slowest(client: redispy.Redis) -> tuple[float, str, float]:
    """The longest command in SLOWLOG (microseconds, its name) and the median duration of
    commands with that name, then reset the log."""
    entries = client.slowlog_get(1_000_000)
    client.slowlog_reset()
    if not entries:
        return 0.0, "", 0.0
    top = max(entries, key=lambda e: e["duration"])
    same = sorted(e["duration"] for e in entries if _name(e) == _name(top))
    return float(top["duration"]), _name(top), float(same[len(same) // 2])


def gk(url: str, *args: str) -> tuple[float, float]:
    """Run the command; (wall seconds, CPU seconds of the child: user + sys)."""
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "gokogeri", *args],
        env=dict(os.environ, GOKOGERI_REDIS_URL=url, COLUMNS="200"),
        cwd=str(ROOT),
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise SystemExit(f"gokogeri {' '.join(args)} failed:\n{out.stderr}")
    return elapsed, (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)


def main(n: int = 100_000) -> None:
    with RedisServer() as server:
        client = redispy.Redis.from_url(server.url)
        client.config_set("slowlog-log-slower-than", 0)
        client.config_set("slowlog-max-len", 1_000_000)
        t0 = time.perf_counter()
        seed(client, n)
        print(f"seeded {client.zcard('dead')} dead jobs in {time.perf_counter() - t0:.1f} s")
        client.slowlog_reset()

        gk(server.url, "dead", "--limit", "20")  # warm the page cache for the imports
        client.slowlog_reset()
        wall, cpu = gk(server.url, "dead", "--limit", "20")
        us, name, _ = slowest(client)
        print(
            f"gokogeri dead --limit 20: {wall * 1000:.0f} ms wall, {cpu * 1000:.0f} ms CPU "
            "(interpreter start and imports included)"
        )
        with gredis.ConnManager(gredis.Config(url=server.url)) as cm:
            t0 = time.perf_counter()
            Api(cm).dead(20)
            print(f"  Api.dead(20) alone: {(time.perf_counter() - t0) * 1000:.1f} ms")
        print(f"  longest Redis command: {us:.0f} us ({name})")

        client.slowlog_reset()
        wall, cpu = gk(server.url, "retry", "--all", "--set", "dead", "--yes")
        us, name, median = slowest(client)
        moved = client.llen("queue:reports")
        print(
            f"gokogeri retry --all --yes: {moved} jobs in {wall:.2f} s wall "
            f"({moved / wall:,.0f} jobs/s, batches of {BATCH}; {cpu:.2f} s client CPU)"
        )
        print(
            f"  longest Redis command: {us / 1000:.2f} ms ({name}; median {name} "
            f"{median / 1000:.2f} ms)"
        )
        assert moved == n and client.zcard("dead") == 0
        client.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
