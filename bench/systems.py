"""The systems whose one-process drain rate is compared, and how each is
filled, started and watched.

Fairness rules (see README.md, "What is measured"):
- every system gets its own fresh redis-server (same binary) and the same
  concurrency (10: Sidekiq 6's default), and its queue is filled before its
  worker process starts, so the drain is timed without enqueue contention;
- "noop" jobs do nothing. A run is done when the queue is empty AND the
  system's own in-flight record is empty where it keeps one (gokogeri's
  working lists, RQ's wip registry, Dramatiq's message hash, Celery's unacked
  hash, arq's queue zset), which needs no side effect in the job. Systems with
  no in-flight record (Sidekiq and gokogeri BRPOP fetch, huey) finish when the
  queue is empty, as Sidekiq's own bin/sidekiqload does; at most
  ``concurrency`` microsecond-long jobs can still be running then.
- "incr" jobs each INCR one Redis counter through the system's usual client,
  and a run is done when the counter reaches N: an exact completion signal
  that costs every system the same extra round trip per job.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis as redispy

import gokogeri
from bench.procs import PEER_VENVS, WORKERS, Managed
from gokogeri import redis as gredis

CONCURRENCY = 10  # Sidekiq 6's default -c; every system gets the same
SIDEKIQ = shutil.which("sidekiq")
RUBY = shutil.which("ruby")

# Pinned so a rerun compares the same peers; `--setup-peers` installs these.
PEER_PACKAGES: dict[str, list[str]] = {
    "rq": ["rq==3.0.0", "redis[hiredis]==8.1.0"],
    "dramatiq": ["dramatiq[redis]==2.2.1", "redis[hiredis]==8.1.0"],
    "huey": ["huey==3.5.4", "redis[hiredis]==8.1.0"],
    "arq": ["arq==0.28.0", "hiredis"],  # arq pins its own redis-py (<6)
    "celery": ["celery[redis]==5.7.0", "hiredis"],
}

# One Lua call = one consistent snapshot: queue length plus every working list
# a gokogeri node registered (the registry hash is written at node start).
_GK_PENDING = """
local n = redis.call('LLEN', KEYS[1])
for _, w in ipairs(redis.call('HKEYS', KEYS[2])) do n = n + redis.call('LLEN', w) end
return n
"""

Counter = Callable[[redispy.Redis], int]


@dataclass(frozen=True)
class Target:
    key: str
    label: str
    family: str  # "gokogeri", "sidekiq" or "peer"
    fill: Callable[[str, int, str], None]  # (redis url, n, "noop" | "incr")
    start: Callable[[str, Path, int], list[Managed]]  # (url, log dir, run index)
    queued: Counter  # jobs still waiting in the queue
    pending: Counter  # jobs not yet finished (queued + in flight, when known)
    failed: Counter = lambda r: 0  # jobs the system recorded as failed (must stay 0)
    unavailable: Callable[[], str | None] = lambda: None


# --- gokogeri and Sidekiq share payloads: fill both with gokogeri's Enqueuer ---

JOB_CLASS = {
    "noop": "NoopJob",
    "incr": "IncrJob",  # one INCR through a module-level client (Ruby: Sidekiq.redis)
    "incr-ctx": "IncrCtxJob",  # one INCR through ctx.redis (gokogeri only)
    "incr-tl": "IncrTLJob",  # one INCR through a module-level gokogeri.ThreadLocalRedis
    "sleep": "SleepJob",  # time.sleep(0.001) / Ruby sleep 0.001
    "async-noop": "AsyncNoopJob",
    "async-sleep": "AsyncSleepJob",  # await asyncio.sleep(0.001)
    "async-incr": "AsyncIncrJob",  # one INCR through a module-level redis.asyncio client
    "async-incr-ctx": "AsyncIncrCtxJob",  # one INCR through ctx.aredis
    "async-incr-ll": "AsyncIncrLLJob",  # one INCR through a module-level gokogeri.LoopLocalRedis
}
# Kinds whose run ends when the ``bench:done`` counter reaches N (exact);
# the others end when the queue and the in-flight record are empty.
COUNTED = frozenset(
    {"incr", "incr-ctx", "incr-tl", "async-incr", "async-incr-ctx", "async-incr-ll"}
)


def fill_sidekiq_format(url: str, n: int, kind: str) -> None:
    """Bulk-push sidekiqload-style jobs (args ["string", i, {"mike": "bob"}])."""
    with gredis.ConnManager(gredis.Config(url=url)) as cm:
        enq = gokogeri.Enqueuer(cm)
        for base in range(0, n, 10_000):
            enq.enqueue_bulk(
                gokogeri.Job(class_name=JOB_CLASS[kind], args=["string", i, {"mike": "bob"}])
                for i in range(base, min(n, base + 10_000))
            )


def _llen(key: str) -> Counter:
    return lambda r: int(r.llen(key))


def _sk_failed(r: redispy.Redis) -> int:
    return int(r.zcard("retry")) + int(r.zcard("dead"))


def gk_pending(r: redispy.Redis) -> int:
    """Jobs queued or in a gokogeri node's working lists (not yet acknowledged)."""
    return int(r.eval(_GK_PENDING, 2, "queue:default", "gokogeri:working"))


def gk_start(
    fetch: str,
    log: str,
    processes: int = 1,
    *,
    concurrency: int = CONCURRENCY,
    metrics: str = "off",
    env: dict[str, str] | None = None,
    tag: str = "",
    jobs: str = "all",
) -> Callable[[str, Path, int], list[Managed]]:
    """Start gk_node.py. ``env`` may set PYTHONPATH (another checkout of
    gokogeri, for A/B runs) or BENCH_SWITCH_INTERVAL; ``tag`` names the logs;
    ``jobs="async"`` registers only the async jobs (an all-async app)."""
    name = f"gokogeri-{fetch}-log{log}{'-' + tag if tag else ''}"

    def start(url: str, log_dir: Path, run: int) -> list[Managed]:
        return [
            Managed(
                f"{name}-{i}",
                [
                    sys.executable,
                    str(WORKERS / "gk_node.py"),
                    f"--url={url}",
                    f"--fetch={fetch}",
                    f"--concurrency={concurrency}",
                    f"--log={log}",
                    f"--metrics={metrics}",
                    f"--jobs={jobs}",
                ],
                log_dir / f"{name}-p{i}-run{run}.log",
                env=env,
            )
            for i in range(processes)
        ]

    return start


def sidekiq_start(log: str) -> Callable[[str, Path, int], list[Managed]]:
    def start(url: str, log_dir: Path, run: int) -> list[Managed]:
        assert SIDEKIQ is not None
        argv = [SIDEKIQ, "-r", str(WORKERS / "sidekiq_jobs.rb"), "-q", "default"]
        argv += ["-c", str(CONCURRENCY)]
        env = {"BENCH_REDIS_URL": url, "BENCH_LOG": log}
        return [Managed("sidekiq", argv, log_dir / f"sidekiq-log{log}-run{run}.log", env=env)]

    return start


def no_sidekiq() -> str | None:
    return None if SIDEKIQ and RUBY else "sidekiq/ruby not on PATH (apt-get install ruby-sidekiq)"


def gokogeri_targets() -> list[Target]:
    out = []
    for fetch, name in (("reliable", "crash-safe fetch"), ("basic", "BRPOP fetch")):
        pending = gk_pending if fetch == "reliable" else _llen("queue:default")
        for log in ("off", "on"):
            out.append(
                Target(
                    key=f"gokogeri-{fetch}-log{log}",
                    label=f"gokogeri 1 proc, {name}, logging {log}",
                    family="gokogeri",
                    fill=fill_sidekiq_format,
                    start=gk_start(fetch, log),
                    queued=_llen("queue:default"),
                    pending=pending,
                    failed=_sk_failed,
                )
            )
    out.append(
        Target(
            key="gokogeri-reliable-logoff-2proc",
            label="gokogeri 2 procs, crash-safe fetch, logging off",
            family="gokogeri",
            fill=fill_sidekiq_format,
            start=gk_start("reliable", "off", processes=2),
            queued=_llen("queue:default"),
            pending=gk_pending,
            failed=_sk_failed,
        )
    )
    return out


def sidekiq_target(key: str, label: str, log: str = "off") -> Target:
    """Sidekiq 6.4.1, one process, draining the shared sidekiqload-style fill."""
    return Target(
        key=key,
        label=label,
        family="sidekiq",
        fill=fill_sidekiq_format,
        start=sidekiq_start(log),
        queued=_llen("queue:default"),
        pending=_llen("queue:default"),
        failed=_sk_failed,
        unavailable=no_sidekiq,
    )


def sidekiq_targets() -> list[Target]:
    return [
        sidekiq_target(f"sidekiq-log{log}", f"Sidekiq 6.4.1 1 proc, logging {log}", log)
        for log in ("off", "on")
    ]


# --- Python peers: each runs from its own virtualenv (their redis-py pins clash) ---


def peer_python(peer: str) -> Path:
    return PEER_VENVS / peer / "bin" / "python"


def peer_env(url: str) -> dict[str, str]:
    return {"BENCH_REDIS_URL": url, "PYTHONPATH": str(WORKERS)}


def peer_fill(peer: str) -> Callable[[str, int, str], None]:
    def fill(url: str, n: int, kind: str) -> None:
        argv = [str(peer_python(peer)), str(WORKERS / f"peer_{peer}.py"), "fill", str(n), kind]
        subprocess.run(argv, cwd=WORKERS, env=_merged(peer_env(url)), check=True, timeout=600)

    return fill


def _merged(extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    return env


def peer_start(peer: str, argv_tail: list[str]) -> Callable[[str, Path, int], list[Managed]]:
    def start(url: str, log_dir: Path, run: int) -> list[Managed]:
        bindir = PEER_VENVS / peer / "bin"
        head = argv_tail[0]
        exe = str(bindir / head) if (bindir / head).exists() else head
        argv = [exe, *[a.replace("{url}", url) for a in argv_tail[1:]]]
        log = log_dir / f"{peer}-run{run}.log"
        return [Managed(peer, argv, log, env=peer_env(url), cwd=WORKERS)]

    return start


def peer_unavailable(peer: str) -> Callable[[], str | None]:
    def check() -> str | None:
        if peer_python(peer).exists():
            return None
        return f"no virtualenv for {peer}: run `python -m bench --setup-peers`"

    return check


def peer_targets() -> list[Target]:
    c = str(CONCURRENCY)
    specs: list[tuple[str, str, list[str], Counter, Counter, Counter]] = [
        (
            "rq",
            "RQ SimpleWorker, burst",
            ["rq", "worker", "-w", "rq.worker.SimpleWorker", "--burst", "-u", "{url}",
             "--logging_level", "WARNING", "default"],
            _llen("rq:queue:default"),
            lambda r: int(r.llen("rq:queue:default")) + int(r.zcard("rq:wip:default")),
            lambda r: int(r.zcard("rq:failed:default")),
        ),
        (
            "dramatiq",
            f"Dramatiq 1 proc x {c} threads",
            ["dramatiq", "peer_dramatiq", "--processes", "1", "--threads", c],
            _llen("dramatiq:default"),
            lambda r: int(r.hlen("dramatiq:default.msgs")),
            lambda r: int(r.zcard("dramatiq:default.XQ")),
        ),
        (
            "huey",
            f"huey thread consumer, {c} workers",
            ["huey_consumer", "peer_huey.huey", "-w", c, "-k", "thread", "-q"],
            _llen("huey.redis.bench"),
            _llen("huey.redis.bench"),
            lambda r: 0,  # huey keeps no failure record without result storage
        ),
        (
            "arq",
            f"arq, max_jobs={c}",
            ["python", str(WORKERS / "peer_arq.py"), "worker"],
            lambda r: int(r.zcard("arq:queue")),
            lambda r: int(r.zcard("arq:queue")),
            lambda r: 0,  # arq stores failures as results; none for these jobs
        ),
        (
            "celery",
            f"Celery threads pool, -c {c}",
            ["celery", "-A", "peer_celery", "worker", "--pool", "threads", "-c", c,
             "-l", "WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat",
             "-Q", "celery"],
            _llen("celery"),
            lambda r: int(r.llen("celery")) + int(r.hlen("unacked")),
            lambda r: 0,  # no result backend: Celery keeps no failure record
        ),
    ]
    return [
        Target(
            key=peer,
            label=label,
            family="peer",
            fill=peer_fill(peer),
            start=peer_start(peer, argv),
            queued=queued,
            pending=pending,
            failed=failed,
            unavailable=peer_unavailable(peer),
        )
        for peer, label, argv, queued, pending, failed in specs
    ]


def all_targets() -> list[Target]:
    return [*gokogeri_targets(), *sidekiq_targets(), *peer_targets()]


def setup_peers() -> None:
    """Create bench/.venv/<peer> and install the pinned peer (needs PyPI)."""
    for peer, pkgs in PEER_PACKAGES.items():
        venv = PEER_VENVS / peer
        if not peer_python(peer).exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(peer_python(peer)), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, *pkgs], check=True)
        print(f"{peer}: ready in {venv}")
