"""Prototype changes to the runtime, applied in the benchmark worker only
(BENCH_PATCH=name[,name...]), to measure a proposed change before anyone
makes it. Nothing here ships: the runtime files are untouched. Each patch
replaces one method by name; a tree without that method is left alone.

- ``mark-off``: no start marker at all. The upper bound of what any cheaper
  marker could gain (it gives up poison detection: measurement only).
- ``mark-noreply``: the marker as one HSET on a per-thread connection that
  sent ``CLIENT REPLY OFF`` once: one send() per job, no poll for replies, no
  reply to read, no Lua (the hash's TTL is set once here; a real change would
  refresh it from the heartbeat).
- ``mark-batched``: processors only note (thread, digest) in memory; the
  dispatcher writes the notes (one HSET + EXPIRE, pipelined) before its next
  round trip. No socket call in the processor, but a job can start before its
  marker is in Redis (a crash in that window is not counted as a start).
- ``ack-lazy``: acknowledge() wakes the dispatcher only once a pool's worth
  of acknowledgements is waiting (or the fetched-job buffer is empty), so they
  ride on fetch round trips instead of causing their own.
"""

from __future__ import annotations

import os
import threading
from typing import Any


def _mark_off() -> None:
    from gokogeri import started

    started.StartMarks.mark = lambda self, *args: None  # type: ignore[method-assign]  # prototype


def _mark_noreply() -> None:
    from gokogeri import started

    local = threading.local()

    def mark(self: Any, tid: str, payload: bytes) -> None:
        conn = getattr(local, "conn", None)
        try:
            if conn is None:
                client = self._cm.dedicated()
                conn = client.connection_pool.get_connection()
                conn.send_command("EXPIRE", self._key, started.MARK_TTL)
                conn.read_response()
                conn.send_command("CLIENT", "REPLY", "OFF")  # Redis answers nothing from now on
                local.conn = conn
            conn.send_command("HSET", self._key, tid, started.digest(payload))
        except Exception:  # never fails a job: same contract as StartMarks.mark
            local.conn = None

    started.StartMarks.mark = mark  # type: ignore[method-assign]  # prototype


def _ack_lazy() -> None:
    from gokogeri import reliable

    def acknowledge(self: Any, uow: Any) -> None:
        with self._cv:
            self._acks.append(uow)
            self._done += 1
            if self._waiting and (len(self._acks) >= self.sizer.instances or not self._buf):
                self._cv.notify()

    reliable.ReliableFetch.acknowledge = acknowledge  # type: ignore[method-assign]  # prototype


def _mark_batched() -> None:
    from gokogeri import reliable, started

    # tid -> digest of the job each processor thread is starting, written by
    # the dispatcher before its next round trip instead of by the processor.
    pending: dict[str, str] = {}
    lock = threading.Lock()

    def mark(self: Any, tid: str, payload: bytes) -> None:
        d = started.digest(payload)
        with lock:
            pending[tid] = d

    orig = reliable.ReliableFetch._round_trip

    def round_trip(self: Any, want: int, acks: list[Any]) -> int:
        with lock:
            marks = dict(pending)
            pending.clear()
        if marks:
            pipe = self._cm.client.pipeline(transaction=False)
            pipe.hset(self.marks._key, mapping=marks)
            pipe.expire(self.marks._key, started.MARK_TTL)
            pipe.execute()
        return int(orig(self, want, acks))

    started.StartMarks.mark = mark  # type: ignore[method-assign]  # prototype
    reliable.ReliableFetch._round_trip = round_trip  # type: ignore[method-assign]  # prototype


PATCHES = {"mark-off": _mark_off, "mark-noreply": _mark_noreply, "ack-lazy": _ack_lazy,
           "mark-batched": _mark_batched}


def apply_from_env() -> list[str]:
    names = [n for n in os.environ.get("BENCH_PATCH", "").split(",") if n]
    for name in names:
        PATCHES[name]()
    return names
