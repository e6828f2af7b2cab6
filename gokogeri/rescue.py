"""Rescuing jobs from dead nodes (crash-safe fetch's other half).

Every node running the crash-safe fetch registers its working lists in
``gokogeri:working``. On its own timer one live node (whoever takes a short
lock) looks for lists whose node has stopped beating: its identity hash is
gone, or its TTL shows no beat for ``rescue_after`` seconds (the TTL is
measured by Redis, so clocks on different hosts do not matter). Their jobs go
back to the front of their queues, oldest first, each moved only if still
present.

A job that keeps killing its node would be rescued forever. Only jobs that
had started count (started.py's markers: prefetched jobs never ran and are
innocent), plus, in a list where the dead node left no marker at all, its
oldest job (a job that killed its node within one round trip of starting);
each rescue counts, by jid or, for a payload without one, by a digest of its
bytes, and on the MAX_RESCUES-th the job goes to the dead set instead, with
an error that says so.

Each list is rescued on its own: a list that fails (a payload that cannot be
read, Redis refusing one command) is logged and retried on the next pass,
and never stops the others.
"""

from __future__ import annotations

import math
import threading
import time
from typing import cast

import redis as redispy

from gokogeri import jsonc, scripts
from gokogeri.fetch import dead_trim_args
from gokogeri.heartbeat import HEARTBEAT_TTL
from gokogeri.job import restamp, stamp_format
from gokogeri.log import escape
from gokogeri.retry import CODEC_ERRORS, dead_payload
from gokogeri.runtime import Runtime
from gokogeri.started import MAX_JID, digest, marker

MAX_RESCUES = 3
RESCUE_AFTER = 30.0  # seconds without a beat before a node counts as dead
# rescue_after must leave room for this many heartbeats: a beat can be late
# (a busy host, a slow Redis) and a live node must never look dead.
MIN_BEATS_BEFORE_RESCUE = 3
# How long a job's rescue count is remembered.
RESCUE_COUNT_TTL = 7 * 24 * 60 * 60


def check_rescue_after(rescue_after: float, heartbeat_interval: float) -> None:
    """Refuse a rescue_after that would treat live nodes as dead."""
    least = MIN_BEATS_BEFORE_RESCUE * heartbeat_interval
    if rescue_after < least:
        raise ValueError(
            f"rescue_after={rescue_after:g}s is too short for heartbeat_interval="
            f"{heartbeat_interval:g}s: it must be at least {least:g}s "
            f"({MIN_BEATS_BEFORE_RESCUE} beats), or live nodes' jobs would run twice"
        )
    if rescue_after >= HEARTBEAT_TTL:
        raise ValueError(
            f"rescue_after must be below the heartbeat TTL ({HEARTBEAT_TTL}s), got {rescue_after:g}"
        )


class Rescuer:
    def __init__(self, rt: Runtime, *, rescue_after: float = RESCUE_AFTER) -> None:
        self._rt = rt
        self._cm = rt.cm
        self._log = rt.logger
        self.rescue_after = rescue_after
        # A rescuer that dies mid-pass frees the lock by itself, soon enough
        # that the next live node can take over within one rescue_after.
        self.lock_ttl = max(1, math.ceil(rescue_after))
        client = rt.cm.client
        self._requeue = scripts.load(client, "requeue.lua")
        self._bury = scripts.load(client, "bury.lua")
        self._unlock = scripts.load(client, "unlock.lua")
        self._count = scripts.load(client, "rescue_count.lua")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- the timer ---

    def start(self, interval: float) -> None:
        self._thread = threading.Thread(
            target=self._loop, args=(interval,), name="rescuer", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _loop(self, interval: float) -> None:
        while True:
            try:
                self.run_once()
            except redispy.RedisError as e:
                self._rt.redis_failed()
                self._log.warning("rescue pass failed; trying again later: %s", e)
            except Exception:
                self._log.exception("rescuing orphaned jobs failed; trying again later")
            if self._stop.wait(interval):
                return

    # --- one pass ---

    def run_once(self) -> int:
        """Rescue every orphaned job; returns how many were moved.

        Skipped until Redis has been reachable for ``rescue_after`` seconds
        (since this node started, or since an outage ended): only then has
        every live node had time to beat, so silence means death.
        """
        if self._rt.redis_healthy_for() < self.rescue_after:
            return 0
        client = self._cm.client
        keys = self._cm.keys
        token = self._rt.identity
        if not client.set(keys.rescue_lock, token, nx=True, ex=self.lock_ttl):
            return 0
        try:
            registry = cast(dict[bytes, bytes], client.hgetall(keys.working_registry))
            by_node: dict[str, list[tuple[str, str]]] = {}
            for raw_key, raw_meta in registry.items():
                try:
                    meta = jsonc.loads(raw_meta)
                    identity, queue = str(meta["identity"]), str(meta["queue"])
                except (*CODEC_ERRORS, KeyError):
                    self._log.warning("ignoring a malformed working-list registration")
                    continue
                if identity != self._rt.identity:
                    by_node.setdefault(identity, []).append((raw_key.decode(), queue))
            moved = 0
            for identity, lists in by_node.items():
                if self._alive(identity):
                    continue
                moved += self._rescue_node(identity, lists)
            return moved
        finally:
            try:
                self._unlock(keys=[keys.rescue_lock], args=[token])
            except redispy.RedisError as e:
                self._log.warning("could not release the rescue lock (it expires): %s", e)

    def _alive(self, identity: str) -> bool:
        ttl_ms = int(self._cm.client.pttl(self._cm.keys.identity(identity)))
        if ttl_ms < 0:  # -2: gone; -1: no TTL, which a live heartbeat never leaves
            return False
        silent = HEARTBEAT_TTL - ttl_ms / 1000.0
        return silent < self.rescue_after

    def _rescue_node(self, identity: str, lists: list[tuple[str, str]]) -> int:
        client = self._cm.client
        started_key = self._cm.keys.started(identity)
        started = {v for v in cast(dict[bytes, bytes], client.hgetall(started_key)).values()}
        moved = 0
        complete = True
        for working_key, queue in lists:
            try:
                moved += self._rescue_list(working_key, queue, identity, started)
            except Exception:
                complete = False
                self._log.exception(
                    "could not rescue %s (queue %s) of dead node %s; will retry",
                    escape(working_key),
                    escape(queue),
                    escape(identity),
                )
        if complete:
            client.delete(started_key)
        return moved

    def _rescue_list(
        self, working_key: str, queue: str, identity: str, started: set[bytes]
    ) -> int:
        client = self._cm.client
        keys = self._cm.keys
        payloads = cast(list[bytes], client.lrange(working_key, 0, -1))  # newest first
        jids = [_jid(p) for p in payloads]
        names = [marker(p, jid).encode() for p, jid in zip(payloads, jids, strict=True)]
        counted = {i for i, name in enumerate(names) if name in started}
        if payloads and not counted:
            # No marker for this list: the node may have died within one
            # round trip of starting a job (started.py), and the job its
            # processors took first is the oldest. A job that kills its node
            # at once is counted this way at every start.
            counted = {len(payloads) - 1}
        moved = 0
        requeue_args: list[bytes | int] = []
        for i, payload in enumerate(payloads):
            count = 0
            if i in counted:
                ident = jids[i] or digest(payload)
                count = int(self._count(keys=[keys.rescued(ident)], args=[RESCUE_COUNT_TTL]))
            if count >= MAX_RESCUES:
                moved += self._to_dead(working_key, payload, count)
            else:
                requeue_args += [1, payload]
        if requeue_args:
            moved += int(
                self._requeue(keys=[keys.queue(queue), working_key], args=requeue_args)
            )
        if not client.llen(working_key):
            client.hdel(keys.working_registry, working_key)
        if moved:
            self._log.warning(
                "rescued %s jobs of dead node %s from queue %s",
                moved,
                escape(identity),
                escape(queue),
            )
        return moved

    def _to_dead(self, working_key: str, payload: bytes, count: int) -> int:
        now = time.time()
        reason = (
            f"the node running this job died {count} times; "
            "it was sent to the dead set instead of being retried again"
        )
        dead = _killed_node_payload(payload, reason, self._rt.timestamp_format, now)
        self._log.warning("a job killed its node %s times: sent to the dead set", count)
        return int(
            self._bury(
                keys=[working_key, self._cm.keys.dead],
                args=[payload, dead, repr(now), *dead_trim_args(self._rt.policy, now), "list"],
            )
        )


def _killed_node_payload(
    payload: bytes, reason: str, default_fmt: str, now: float
) -> str | bytes:
    """The dead-set form of a poison job: Sidekiq's error fields on the job, or
    the raw payload with the reason when it is not a readable job."""
    try:
        fields = jsonc.loads(payload)
        if isinstance(fields, dict):
            fields["error_class"] = "Gokogeri::JobKilledNode"
            fields["error_message"] = reason
            fmt = stamp_format(fields, "ms" if default_fmt == "ms" else "float")
            fields["failed_at"] = restamp(fields.get("failed_at"), fmt, now)
            text = jsonc.dumps(fields)
            text.encode("utf-8")
            return text
    except CODEC_ERRORS:
        pass
    return dead_payload(payload, reason)


def _jid(payload: bytes) -> str | None:
    try:
        fields = jsonc.loads(payload)
    except CODEC_ERRORS:
        return None
    jid = fields.get("jid") if isinstance(fields, dict) else None
    return jid if isinstance(jid, str) and jid and len(jid) <= MAX_JID else None
