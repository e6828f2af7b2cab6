"""The Python side as a consumer: a gokogeri Node in a thread of the test process.

The node talks to the environment's Redis through its 127.0.0.1-mapped port, beats and polls
fast (so tests need not wait out Sidekiq's 5-10 s periods on the Python side), and its workers
record what they ran, in order, with the exact job each one got.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from harness import DONE_KEY, InteropEnv, wait_for

import gokogeri
from gokogeri import redis as gredis

HEARTBEAT = 0.2  # seconds between the node's beats: signals from the Web UI arrive this fast
POLL = 0.2  # the node's schedule/retry poll interval
STOP_TIMEOUT = 5.0


class PythonJobError(Exception):
    """What a failing Python worker raises: a class name no library defines."""


@dataclass
class Ran:
    """One job as a Python worker got it."""

    class_name: str
    jid: str
    args: list[Any]
    queue: str
    fields: dict[str, Any]  # the whole payload, every field with its JSON type
    at: float  # when it ran (epoch seconds)
    thread: str


@dataclass
class Recorder:
    """Thread-safe log of the jobs the Python workers ran, plus a way to wait for them."""

    ran: list[Ran] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)

    def add(self, job: gokogeri.Job) -> Ran:
        rec = Ran(
            class_name=job.class_name,
            jid=str(job.jid),
            args=list(job.args),
            queue=job.queue,
            fields=json.loads(job.encode()),
            at=time.time(),
            thread=threading.current_thread().name,
        )
        with self._cond:
            self.ran.append(rec)
            self._cond.notify_all()
        return rec

    def by_jid(self) -> dict[str, Ran]:
        with self._cond:
            return {r.jid: r for r in self.ran}

    def wait(self, jids: Sequence[str], timeout: float = 20.0) -> dict[str, Ran]:
        """Wait until every job in ``jids`` has run (at least once); their records by jid."""
        wanted = set(jids)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = {r.jid: r for r in self.ran if r.jid in wanted}
                if len(found) == len(wanted):
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    missing = sorted(wanted - set(found))
                    raise AssertionError(
                        f"Python ran {len(found)}/{len(wanted)} jobs in {timeout:.0f} s; "
                        f"missing e.g. {missing[:3]}"
                    )
                self._cond.wait(min(left, 0.2))


def recording(rec: Recorder) -> Callable[[gokogeri.Context, gokogeri.Job], None]:
    """A worker that records the job and succeeds."""

    def work(ctx: gokogeri.Context, job: gokogeri.Job) -> None:
        rec.add(job)

    return work


def failing(rec: Recorder, message: str = "failed in python") -> Callable[..., None]:
    """A worker that records the job and raises PythonJobError(message)."""

    def work(ctx: gokogeri.Context, job: gokogeri.Job) -> None:
        rec.add(job)
        raise PythonJobError(message)

    return work


def redis_recording(cm: gredis.ConnManager, rec: Recorder) -> Callable[..., None]:
    """Records like RecordJob does, into Redis: one JSON line per run in ``interop:done``."""

    def work(ctx: gokogeri.Context, job: gokogeri.Job) -> None:
        rec.add(job)
        entry = {"jid": job.jid, "class": job.class_name, "args": job.args, "side": "python"}
        cm.client.rpush(DONE_KEY, json.dumps(entry, separators=(",", ":")))

    return work


class PyNode:
    """A running gokogeri Node (use as a context manager, or :func:`running`)."""

    def __init__(self, node: gokogeri.Node, cm: gredis.ConnManager) -> None:
        self.node = node
        self.cm = cm
        self.thread = threading.Thread(target=self._run, name="interop-node", daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        try:
            self.node.run()
        except BaseException as e:  # surfaced by stop(): a crashed node fails the test
            self.error = e

    @property
    def identity(self) -> str:
        return str(self.node.identity)

    def start(self) -> None:
        self.thread.start()
        client = self.cm.client
        wait_for(
            lambda: client.sismember(self.cm.keys.processes, self.identity) or self.error,
            15,
            "the Python node's first heartbeat",
        )
        if self.error is not None:
            raise self.error

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        self.node.stop(timeout)
        self.thread.join(timeout + 10)
        assert not self.thread.is_alive(), "the node thread did not end"
        if self.error is not None:
            raise self.error


@contextmanager
def running(
    sk: InteropEnv,
    queues: Sequence[str],
    router: gokogeri.Router,
    *,
    concurrency: int = 2,
    timestamp_format: Literal["float", "ms"] = "float",
    **node_options: Any,
) -> Iterator[PyNode]:
    """A Node on ``sk``'s Redis working ``queues`` (strict order) with ``router``; stopped
    (stats flushed, ``processes`` entry removed) when the block ends."""
    cm = gredis.ConnManager(gredis.Config(url=sk.redis_url, timestamp_format=timestamp_format))
    options: dict[str, Any] = {
        "heartbeat_interval": HEARTBEAT,
        "poll_interval_average": POLL,
        "tag": "interop",
        **node_options,
    }
    node = gokogeri.Node(gokogeri.nop_logger(), cm, **options)
    node.process_queues(gokogeri.OrderedQueueSet(list(queues)), router, concurrency)
    py = PyNode(node, cm)
    try:
        py.start()
        try:
            yield py
        finally:
            py.stop()
    finally:
        cm.close()
