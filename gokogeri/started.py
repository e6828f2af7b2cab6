"""Start markers: which job each processor thread started last (crash-safe fetch).

A dead node's working list holds the jobs it was running and the ones it had
only prefetched. Only a job that was running can have killed the node, so
only those may count toward the poison limit (rescue.py). Before a job runs,
its processor thread records ``tid -> digest(payload)`` in the node's
``started`` hash; at rescue, a job in the list is "started" if its digest is
one of those values.

The marker must be in Redis before the job runs, but a round trip per job
would halve the throughput of short jobs. So each thread sends it on its own
connection without waiting for the reply (the bytes reach Redis within the
send() call on loopback, and with TCP_NODELAY at once on a network) and reads
the reply later, when it has long arrived. A marker that is lost (connection
error, a kill within microseconds of the send) only delays poison detection
by one crash; it never buries a job that did not run.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from typing import Any

import redis as redispy

from gokogeri import scripts
from gokogeri.redis import ConnManager

# Markers outlive any rescue by far; the hash is deleted at a clean stop and
# by the rescuer once the node's lists are rescued.
MARK_TTL = 24 * 60 * 60
# Replies a thread may leave unread before it waits for one.
MAX_PENDING = 64


def digest(payload: bytes) -> str:
    """The identity of a payload's exact bytes (jobs without a jid included)."""
    return hashlib.blake2b(payload, digest_size=12).hexdigest()


class _ThreadConn:
    __slots__ = ("client", "conn", "pending")

    def __init__(self, client: redispy.Redis, conn: Any) -> None:
        self.client = client
        self.conn = conn
        self.pending = 0


class StartMarks:
    def __init__(self, cm: ConnManager, identity: str, logger: logging.Logger) -> None:
        self._cm = cm
        self._key = cm.keys.started(identity)
        self._log = logger
        self._script = scripts.without_flags(scripts.source("mark_started.lua"))
        self._local = threading.local()
        self._all: list[_ThreadConn] = []
        self._lock = threading.Lock()

    def load(self) -> None:
        """Pick the script form this server accepts (a round trip: call at start)."""
        self._script = scripts.text_for(self._cm.client, "mark_started.lua")

    def mark(self, tid: str, payload: bytes) -> None:
        """Record that thread ``tid`` is about to run ``payload``. Never raises."""
        tc: _ThreadConn | None = getattr(self._local, "tc", None)
        try:
            if tc is None:
                client = self._cm.dedicated()
                tc = _ThreadConn(client, client.connection_pool.get_connection())
                self._local.tc = tc
                with self._lock:
                    self._all.append(tc)
            conn = tc.conn
            # Read the replies that have arrived (normally all of them).
            while tc.pending and (tc.pending >= MAX_PENDING or conn.can_read(0)):
                tc.pending -= 1
                with contextlib.suppress(redispy.ResponseError):
                    conn.read_response()
            conn.send_command("EVAL", self._script, 1, self._key, tid, digest(payload), MARK_TTL)
            tc.pending += 1
        except (redispy.RedisError, OSError) as e:
            self._log.debug("could not record a job start: %s", e)
            if tc is not None:
                self._local.tc = None
                self._drop(tc)

    def _drop(self, tc: _ThreadConn) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._all.remove(tc)
        with contextlib.suppress(Exception):
            tc.conn.disconnect()
            tc.client.close()

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for tc in conns:
            with contextlib.suppress(Exception):
                tc.conn.disconnect()
                tc.client.close()

    def clear(self) -> None:
        """Forget every marker of this node (clean stop, nothing left to rescue)."""
        with contextlib.suppress(redispy.RedisError):
            self._cm.client.delete(self._key)
