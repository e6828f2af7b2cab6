"""The parts of the crash-safe fetch, each on its own: prefetch sizing, idle
waiters, start markers and the dispatcher."""

from __future__ import annotations

import threading

import redis as redispy

import gokogeri
from gokogeri import Enqueuer, Job
from gokogeri import redis as gredis
from gokogeri.fetch import UnitOfWork
from gokogeri.prefetch import MAX_BATCH, MAX_PREFETCH, PrefetchSizer
from gokogeri.reliable import ReliableFetch
from gokogeri.started import StartMarks, digest, marker
from gokogeri.waiters import IdleWaiters
from tests.conftest import wait_for


def test_prefetch_follows_job_time() -> None:
    sizer = PrefetchSizer(10)
    assert sizer.extra() == 10  # unmeasured: one extra per thread
    for _ in range(200):
        sizer.observe(0.00001)  # 10 us jobs: hold many
    assert sizer.extra() == MAX_PREFETCH
    for _ in range(500):
        sizer.observe(2.0)  # slow jobs: hold none beyond the running ones
    assert sizer.extra() == 0
    assert sizer.want(buffered=0, in_flight=10) == 0  # every thread busy
    assert sizer.want(buffered=0, in_flight=3) == 7
    assert PrefetchSizer(10, fixed=0).want(buffered=0, in_flight=0) == 10


def test_want_waits_for_low_water_and_caps_a_batch() -> None:
    sizer = PrefetchSizer(50)
    for _ in range(100):
        sizer.observe(0.00001)
    assert sizer.want(buffered=0, in_flight=0) == MAX_BATCH
    assert sizer.want(buffered=sizer.low_water, in_flight=sizer.low_water) == 0


def test_idle_waiters_hand_over_one_job_and_release_the_others(
    cm: gredis.ConnManager, r: redispy.Redis
) -> None:
    got: list[UnitOfWork] = []
    faults: list[BaseException] = []
    keys = cm.keys
    queues = [(q, i + 1, keys.queue(q), keys.working("me", q)) for i, q in enumerate(["a", "b"])]

    def blocked() -> int:
        return sum(1 for c in r.client_list() if c.get("cmd") == "blmove")

    before = blocked()  # other tests' nodes may still be closing their waiters
    waiters = IdleWaiters(cm, gokogeri.nop_logger(), "t", queues, got.append, faults.append)
    waiters.start()
    try:
        waiters.enter_idle()
        assert waiters.idle
        wait_for(lambda: blocked() >= before + 2)
        r.lpush(keys.queue("b"), b"payload")
        wait_for(lambda: got)
        assert not waiters.idle  # leaving idle: the dispatcher polls again
        assert (got[0].queue, got[0].payload, got[0].pair) == ("b", b"payload", 2)
        assert r.lrange(keys.working("me", "b"), 0, -1) == [b"payload"]  # held, crash-safe
    finally:
        waiters.stop()
        for t in waiters.threads:
            t.join(5)
    assert not any(t.is_alive() for t in waiters.threads) and not faults


def test_start_marks_keep_the_latest_job_per_thread() -> None:
    marks = StartMarks()

    def run(tid: str) -> None:
        for n in range(100):
            marks.mark(tid, f"{tid}-job{n}".encode())

    threads = [threading.Thread(target=run, args=(f"t{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    drained = marks.drain()
    assert dict(zip(drained[::2], drained[1::2], strict=True)) == {
        f"t{i}": digest(f"t{i}-job99".encode()) for i in range(3)
    }
    assert not marks and marks.drain() == []
    marks.mark("t0", b"old")
    failed = marks.drain()
    marks.mark("t0", b"new")  # recorded while the round trip failed
    marks.restore(failed)
    assert marks.drain() == ["t0", digest(b"new")]


def test_dispatcher_fetches_acknowledges_and_pushes_back(
    cm: gredis.ConnManager, r: redispy.Redis
) -> None:
    jids = Enqueuer(cm).enqueue_many(Job("X"), [[i] for i in range(30)])
    fetch = ReliableFetch(
        cm,
        "node-2",
        gokogeri.OrderedQueueSet(["default"]),
        4,
        gokogeri.nop_logger(),
        "t",
        prefetch=6,
    )
    fetch.start()
    working = cm.keys.working("node-2", "default")
    try:
        first = [fetch.retrieve(2.0) for _ in range(4)]
        assert all(u is not None for u in first)
        # 4 running + 6 prefetched are held in the working list, nothing more.
        wait_for(lambda: r.llen(working) == 10)
        for n, uow in enumerate(first):
            assert uow is not None
            fetch.starting(f"t{n}", uow)
            fetch.acknowledge(uow)
        # The acknowledgements ride on the next round trip; 6 still buffered is
        # above the low-water mark, so nothing new is fetched.
        wait_for(lambda: r.llen(working) == 6 and r.llen("queue:default") == 20)
        # The start markers rode on the same round trip.
        started = r.hgetall(cm.keys.started("node-2"))
        assert started == {
            f"t{n}".encode(): marker(u.payload, None).encode() for n, u in enumerate(first) if u
        }
    finally:
        fetch.close()
    # Closing pushed every unstarted job back, oldest first; the acknowledged are gone.
    left = [Job.decode(p).jid for p in reversed(r.lrange("queue:default", 0, -1))]
    assert sorted(left) == sorted(jids[4:]) and left[:6] == jids[4:10]
    assert r.llen(working) == 0 and not r.hexists(cm.keys.working_registry, working)


def test_one_order_moves_in_bulk_exactly_as_a_move_per_job(r: redispy.Redis) -> None:
    # fetch.lua takes a strict order's jobs with one RPOP/LPUSH per queue and a
    # weighted one's with a LMOVE per job slot. Given the same order for every
    # slot, both must return the same jobs and leave the same lists, across a
    # queue that runs dry mid-batch, an empty queue and a batch cut short.
    from gokogeri import scripts

    fetch = scripts.load(r, "fetch.lua")
    keys = ["queue:a", "w:a", "queue:b", "w:b", "queue:c", "w:c", "started"]
    order = [2, 1, 3]  # b, then a, then c (empty)

    def run(limit: int, norders: int) -> tuple[list[bytes], dict[str, list[bytes]]]:
        r.flushdb()
        r.rpush("w:b", b"held")  # a job already in the working list stays put
        r.lpush("queue:b", *[f"b{i}".encode() for i in range(3)])  # b0 is the oldest
        r.lpush("queue:a", *[f"a{i}".encode() for i in range(5)])
        args: list[object] = [limit, 0, 0, 60, 3, norders, *order * norders]
        out = fetch(keys=keys, args=args)
        return out, {k: r.lrange(k, 0, -1) for k in keys[:6]}

    for limit in (1, 3, 4, 8, 20):
        bulk, moved = run(limit, 1)
        assert (bulk, moved) == run(limit, limit), limit
    bulk, moved = run(4, 1)
    assert bulk == [2, b"b0", 2, b"b1", 2, b"b2", 1, b"a0"]
    assert moved["w:b"] == [b"b2", b"b1", b"b0", b"held"] and moved["w:a"] == [b"a0"]
    assert moved["queue:a"] == [b"a4", b"a3", b"a2", b"a1"] and moved["queue:b"] == []
