"""Start markers: which job each processor thread started (crash-safe fetch).

A dead node's working list holds the jobs it was running and the ones it had
only prefetched. Only a job that was running can have killed the node, so
only those may count toward the poison limit (rescue.py). When a processor
thread starts a job it records ``tid -> digest(payload)`` here; the
dispatcher writes what was recorded into the node's ``started`` hash as part
of its next fetch round trip (fetch.lua), and wakes for it if it was idle.

Why not a write per job before it runs: a per-job send costs a system call
and a GIL hand-off on the processor thread, which measured 5x slower no-op
drains and ~2x slower I/O-bound ones (docs/benchmarks.md). The price of
batching is a window of one round trip: a job that kills its node within it
leaves no marker. Rescue covers that case by counting, in a list where the
dead node left no marker at all, its oldest job, the one its processors took
first (rescue.py); a job that kills its node at once is therefore counted
at every start, and a job that was only prefetched is counted only when its
node died with nothing of that list started.
"""

from __future__ import annotations

import hashlib
from collections import deque

# Markers outlive any rescue by far; the hash is deleted at a clean stop and
# by the rescuer once the node's lists are rescued.
MARK_TTL = 24 * 60 * 60


def digest(payload: bytes) -> str:
    """The identity of a payload's exact bytes (jobs without a jid included)."""
    return hashlib.blake2b(payload, digest_size=12).hexdigest()


# Longest jid a marker or a rescue counter key is named by (Sidekiq's are 24
# characters; a payload's jid is otherwise arbitrary text).
MAX_JID = 64


def marker(payload: bytes, jid: str | None) -> str:
    """How a start marker names a job: by jid (free), else by digest."""
    return "j:" + jid if jid and len(jid) <= MAX_JID else digest(payload)


class StartMarks:
    """Markers recorded by processor threads, drained by the dispatcher."""

    def __init__(self) -> None:
        # append/popleft are atomic: processors never take a lock here.
        self._pending: deque[tuple[str, str]] = deque()

    def mark(self, tid: str, payload: bytes, jid: str | None = None) -> None:
        self._pending.append((tid, marker(payload, jid)))

    def __len__(self) -> int:
        return len(self._pending)

    def drain(self) -> list[str]:
        """Every recorded marker as HSET arguments (tid, digest, ...), the latest per thread."""
        latest: dict[str, str] = {}
        pending = self._pending
        while True:
            try:
                tid, d = pending.popleft()
            except IndexError:
                break
            latest[tid] = d
        out: list[str] = []
        for tid, d in latest.items():
            out += [tid, d]
        return out

    def restore(self, args: list[str]) -> None:
        """Put markers back (a round trip failed); newer ones recorded meanwhile win."""
        for i in range(len(args) - 2, -1, -2):
            self._pending.appendleft((args[i], args[i + 1]))
