"""Rescuing jobs from dead nodes (crash-safe fetch's other half).

Every node running the crash-safe fetch registers its working lists in
``gokogeri:working``. Periodically one live node (whoever takes a short lock)
looks for lists whose node has stopped beating: its identity hash is gone, or
its TTL shows no beat for ``rescue_after`` seconds (the TTL is measured by
Redis, so clocks on different hosts do not matter). Their jobs go back to the
front of their queues, oldest first, each moved only if still present.

A job that keeps killing its node would be rescued forever; each rescue
counts, and on the MAX_RESCUES-th the job goes to the dead set instead, with
an error that says so.
"""

from __future__ import annotations

import json
import logging
import time
from typing import cast

from gokogeri import scripts
from gokogeri.errors import InvalidPayloadError
from gokogeri.heartbeat import HEARTBEAT_TTL
from gokogeri.job import Job, TimestampFormat, restamp, stamp_format
from gokogeri.redis import ConnManager
from gokogeri.retry import RetryPolicy

MAX_RESCUES = 3
RESCUE_AFTER = 30.0  # seconds without a beat before a node counts as dead
LOCK_TTL = 30  # seconds; a rescuer that dies mid-way frees the lock by itself
# How long a job's rescue count is remembered.
RESCUE_COUNT_TTL = 7 * 24 * 60 * 60


class Rescuer:
    def __init__(
        self,
        cm: ConnManager,
        logger: logging.Logger,
        *,
        own_identity: str,
        policy: RetryPolicy,
        timestamp_format: TimestampFormat,
        rescue_after: float = RESCUE_AFTER,
    ) -> None:
        self._cm = cm
        self._log = logger
        self._own = own_identity
        self._policy = policy
        self._fmt = timestamp_format
        self.rescue_after = rescue_after
        self._requeue = scripts.load(cm.client, "requeue.lua")
        self._bury = scripts.load(cm.client, "bury.lua")
        self._unlock = scripts.load(cm.client, "unlock.lua")

    def run_once(self) -> int:
        """Rescue every orphaned job; returns how many were moved."""
        client = self._cm.client
        keys = self._cm.keys
        token = self._own
        if not client.set(keys.rescue_lock, token, nx=True, ex=LOCK_TTL):
            return 0
        try:
            registry = cast(dict[bytes, bytes], client.hgetall(keys.working_registry))
            moved = 0
            for raw_key, raw_meta in registry.items():
                try:
                    meta = json.loads(raw_meta)
                    identity, queue = str(meta["identity"]), str(meta["queue"])
                except (ValueError, KeyError, TypeError):
                    self._log.warning("ignoring a malformed working-list registration")
                    continue
                if identity == self._own or self._alive(identity):
                    continue
                moved += self._rescue_list(raw_key.decode(), queue, identity)
            return moved
        finally:
            self._unlock(keys=[keys.rescue_lock], args=[token])

    def _alive(self, identity: str) -> bool:
        ttl_ms = int(self._cm.client.pttl(self._cm.keys.identity(identity)))
        if ttl_ms < 0:  # -2: gone; -1: no TTL, which a live heartbeat never leaves
            return False
        silent = HEARTBEAT_TTL - ttl_ms / 1000.0
        return silent < self.rescue_after

    def _rescue_list(self, working_key: str, queue: str, identity: str) -> int:
        client = self._cm.client
        keys = self._cm.keys
        queue_key = keys.queue(queue)
        payloads = cast(list[bytes], client.lrange(working_key, 0, -1))  # newest first
        moved = 0
        requeue_args: list[bytes | int] = []
        for payload in payloads:
            jid = _jid(payload)
            count = 0
            if jid:
                pipe = client.pipeline(transaction=True)
                pipe.incr(keys.rescued(jid))
                pipe.expire(keys.rescued(jid), RESCUE_COUNT_TTL)
                count = int(pipe.execute()[0])
            if count >= MAX_RESCUES:
                moved += self._to_dead(working_key, payload, count)
            else:
                requeue_args += [1, payload]
        if requeue_args:
            moved += int(self._requeue(keys=[queue_key, working_key], args=requeue_args))
        if not client.llen(working_key):
            client.hdel(keys.working_registry, working_key)
        if moved:
            self._log.warning(
                "rescued %s jobs of dead node %s from queue %s", moved, identity, queue
            )
        return moved

    def _to_dead(self, working_key: str, payload: bytes, count: int) -> int:
        now = time.time()
        try:
            job = Job.decode(payload)
            job.fields["error_class"] = "Gokogeri::JobKilledNode"
            job.fields["error_message"] = (
                f"the node running this job died {count} times; "
                "it was sent to the dead set instead of being retried again"
            )
            fmt = stamp_format(job.fields, self._fmt)
            job.fields["failed_at"] = restamp(job.fields.get("failed_at"), fmt, now)
            dead_payload = job.encode()
        except InvalidPayloadError:
            dead_payload = payload.decode("utf-8", "replace")
        keys = self._cm.keys
        self._log.warning("job killed its node %s times: sent to the dead set", count)
        return int(
            self._bury(
                keys=[working_key, keys.dead],
                args=[
                    payload,
                    dead_payload,
                    repr(now),
                    repr(now - self._policy.dead_timeout),
                    self._policy.dead_max_jobs,
                    "list",
                ],
            )
        )


def _jid(payload: bytes) -> str | None:
    try:
        fields = json.loads(payload)
    except ValueError:
        return None
    jid = fields.get("jid") if isinstance(fields, dict) else None
    return jid if isinstance(jid, str) and jid else None
