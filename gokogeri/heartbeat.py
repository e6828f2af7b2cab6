"""The heartbeat: how a Python node shows up in Sidekiq's Web UI and API.

Every beat (5 s, Sidekiq 6's BEAT_PAUSE) it writes, as Sidekiq's launcher does:
- the buffered stats counters (stat:processed / stat:failed and their daily
  keys with Sidekiq's 5-year TTL), then the in-progress work hash under both
  ``<identity>:work`` (6.4.2+) and ``<identity>:workers`` (6.4.0/6.4.1);
- ``SADD processes``, the identity hash (info JSON, busy, beat, quiet, rss,
  rtt_us, and ``concurrency`` as its own field, which Sidekiq 8.1.2+ reads
  instead of info's), a 60 s TTL, and one RPOP of ``<identity>-signals``.

A beat that fails is logged and tried again next time, never fatal. On a
Redis at maxmemory the stats and work hash are refused (they wait, buffered,
for the next beat), but the liveness part is a script flagged allow-oom: a
live node must never look dead, or its jobs would be rescued and run twice.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import redis as redispy

from gokogeri import jsonc, scripts
from gokogeri.runtime import Runtime

BEAT_INTERVAL = 5.0  # Sidekiq 6's BEAT_PAUSE
HEARTBEAT_TTL = 60  # seconds; Sidekiq's expiry for every process key
STATS_TTL = 5 * 365 * 24 * 60 * 60  # daily stat keys live 5 years, as in Sidekiq
VERSION = "gokogeri-0.1.0"


def make_identity() -> str:
    """hostname:pid:12-hex nonce, as Sidekiq builds it (DYNO wins on Heroku)."""
    host = os.environ.get("DYNO") or socket.gethostname()
    return f"{host}:{os.getpid()}:{os.urandom(6).hex()}"


def rss_kb(pid: int | str = "self") -> int:
    """Resident memory of a process (this one by default) in KiB; 0 if unknown."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") // 1024
    except (OSError, ValueError, IndexError):
        return 0


@dataclass
class ProcessInfo:
    """The parts of the info JSON that never change while the node runs."""

    identity: str
    hostname: str
    pid: int
    tag: str
    labels: list[str]
    started_at: float
    capsules: list[tuple[str, int, str, dict[str, int]]] = field(default_factory=list)
    # (name, concurrency, mode, weights) per process_queues pool

    @property
    def concurrency(self) -> int:
        return sum(c[1] for c in self.capsules)

    def to_json(self) -> str:
        queues: list[str] = []
        for _name, _cc, _mode, weights in self.capsules:
            for q in weights:
                if q not in queues:
                    queues.append(q)
        info: dict[str, Any] = {
            "hostname": self.hostname,
            "started_at": self.started_at,
            "pid": self.pid,
            "tag": self.tag,
            # 6.x and 7.x read concurrency here; 8.1.2+ reads the hash field.
            "concurrency": self.concurrency,
            "queues": queues,
            "weights": [weights for _n, _c, _m, weights in self.capsules],
            "capsules": {
                name: {"concurrency": cc, "mode": mode, "weights": weights}
                for name, cc, mode, weights in self.capsules
            },
            "labels": self.labels,
            "identity": self.identity,
            "version": VERSION,
            # Sidekiq 8's UI refuses to signal embedded processes; we obey signals.
            "embedded": False,
        }
        return jsonc.dumps(info)


class Heartbeat:
    """Writes the node's presence, work and stats to Redis; reads its signals."""

    def __init__(
        self,
        rt: Runtime,
        info: ProcessInfo,
        *,
        interval: float,
        busy: Callable[[], dict[str, tuple[str, bytes, int]]],
        counts: Callable[[], tuple[int, int]],
        quiet: Callable[[], bool],
        on_signal: Callable[[str], None],
    ) -> None:
        self._rt = rt
        self._cm = rt.cm
        self._info = info
        self._log = rt.logger
        self.interval = interval
        self._busy = busy
        self._counts = counts
        self._is_quiet = quiet
        self._on_signal = on_signal
        self._beat_script = scripts.load(rt.cm.client, "beat.lua")
        self._flushed = (0, 0)
        self._info_json = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one beat at a time (thread vs final flush)

    def start(self) -> None:
        self._info_json = self._info.to_json()
        self._safe_beat()  # registered before the first job is fetched
        self._thread = threading.Thread(target=self._loop, name="heartbeat", daemon=True)
        self._thread.start()

    def _safe_beat(self) -> None:
        try:
            self.beat()
        except redispy.RedisError as e:
            self._rt.redis_failed()
            self._log.warning("heartbeat failed (retrying every %ss): %s", self.interval, e)
        else:
            self._rt.redis_ok()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._safe_beat()
            if self._rt.observers:
                self._rt.observers_beat("beat")
            self._rt.fire("heartbeat")

    def beat(self) -> None:
        keys = self._cm.keys
        ident = self._info.identity
        client = self._cm.client
        with self._lock:
            t0 = time.perf_counter()
            client.ping()
            rtt_us = int((time.perf_counter() - t0) * 1e6)
            busy = self._busy()
            fields: list[Any] = [
                "info", self._info_json,
                "busy", len(busy),
                "beat", repr(time.time()),
                "quiet", "true" if self._is_quiet() else "false",
                "rss", rss_kb(),
                "rtt_us", rtt_us,
                "concurrency", self._info.concurrency,
            ]  # fmt: skip
            signal = self._beat_script(
                keys=[keys.processes, keys.identity(ident), keys.signals(ident)],
                args=[ident, HEARTBEAT_TTL, *fields],
            )
            self._write_stats_and_work(busy)
        if signal:
            self._on_signal(signal.decode() if isinstance(signal, bytes) else str(signal))

    def _write_stats_and_work(self, busy: dict[str, tuple[str, bytes, int]]) -> None:
        """The buffered counters and the work hash; refused pieces (a full
        Redis) are logged and the counters stay buffered for the next beat."""
        keys = self._cm.keys
        ident = self._info.identity
        processed, failed = self._counts()
        pipe = self._cm.client.pipeline(transaction=False)
        self._stats_commands(pipe, processed - self._flushed[0], failed - self._flushed[1])
        work_key, workers_key = keys.work(ident), keys.workers(ident)
        pipe.unlink(work_key, workers_key)
        if busy:
            entries = {
                tid: jsonc.dumps(
                    {"queue": q, "payload": raw.decode("utf-8", "replace"), "run_at": run_at}
                )
                for tid, (q, raw, run_at) in busy.items()
            }
            pipe.hset(work_key, mapping=cast(Any, entries))
            pipe.hset(workers_key, mapping=cast(Any, entries))
            pipe.expire(work_key, HEARTBEAT_TTL)
            pipe.expire(workers_key, HEARTBEAT_TTL)
        results = pipe.execute(raise_on_error=False)
        # The first two INCRBYs carry the counters; advance only what landed.
        done_p = not isinstance(results[0], Exception)
        done_f = not isinstance(results[3], Exception)
        self._flushed = (
            processed if done_p else self._flushed[0],
            failed if done_f else self._flushed[1],
        )
        errors = [r for r in results if isinstance(r, Exception)]
        if errors:
            self._log.warning("heartbeat: %s of %s writes refused: %s", len(errors), len(results), errors[0])

    def _stats_commands(self, pipe: Any, dp: int, df: int) -> None:
        keys = self._cm.keys
        day = datetime.now(UTC).strftime("%Y-%m-%d")
        for kind, total_key, n in (
            ("processed", keys.stat_processed, dp),
            ("failed", keys.stat_failed, df),
        ):
            daily = keys.stat_daily(kind, day)
            pipe.incrby(total_key, n)
            pipe.incrby(daily, n)
            pipe.expire(daily, STATS_TTL)

    def stop(self) -> None:
        """Flush the last stats and leave the process list, as Sidekiq's clear_heartbeat."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.interval + 5)
        if self._rt.observers:
            self._rt.observers_beat("close")
        keys = self._cm.keys
        ident = self._info.identity
        try:
            with self._lock:
                processed, failed = self._counts()
                pipe = self._cm.client.pipeline(transaction=True)
                self._stats_commands(pipe, processed - self._flushed[0], failed - self._flushed[1])
                pipe.srem(keys.processes, ident)
                pipe.unlink(keys.work(ident), keys.workers(ident))
                pipe.execute()
                self._flushed = (processed, failed)
        except redispy.RedisError as e:
            self._log.warning("could not clear heartbeat: %s", e)
