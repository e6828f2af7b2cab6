"""Per-call costs on the path of an I/O-bound job, one thread, no contention
(bench/ioprof.py runs it). Prints one JSON line: {name: microseconds per call, best of 5 rounds}; names
ending in ``_cpu`` are this process's CPU time per call (user + system).

What it times, each against a private redis-server on loopback:
- INCR through redis-py's default ConnectionPool (a module-level client),
  through gokogeri's pool client (BlockingConnectionPool), and on one raw
  Connection (send_command + read_response: no pool at all);
- a pool's get_connection + release alone, both pool kinds;
- the start marker (StartMarks.mark: EVAL sent, reply read later), and the
  EVALSHA/HSET alternatives, measured as Redis-side round trips too;
- the CPU work the runtime does per job: Job.decode of sidekiqload's payload,
  the payload digest, building a Context;
- a thread hand-off: one thread notifies a Condition and waits for another's
  answer (a processor <-> dispatcher round, GIL hand-off included).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import redis as redispy

import gokogeri
from gokogeri import redis as gredis

PAYLOAD = (
    b'{"class":"IncrJob","args":["string",1,{"mike":"bob"}],"retry":true,"queue":"default",'
    b'"jid":"0123456789abcdef01234567","created_at":1764526800.123,"enqueued_at":1764526800.123}'
)


def per_call(fn: Callable[[], object], n: int, rounds: int = 5) -> float:
    """Best of ``rounds`` timings of n/rounds calls: on a shared machine the
    fastest round is the one least disturbed by other processes."""
    for _ in range(min(n // 10, 1000)):  # warm-up
        fn()
    k = max(n // rounds, 1)
    best = best_cpu = float("inf")
    for _ in range(rounds):
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(k):
            fn()
        best = min(best, (time.perf_counter() - t0) / k)
        best_cpu = min(best_cpu, (time.process_time() - c0) / k)
    LAST_CPU[0] = 1e6 * best_cpu
    return 1e6 * best


# CPU time (user + system, this process) per call of the last per_call(): what a
# call costs the GIL-holding process, as opposed to the wall time spent waiting.
LAST_CPU = [0.0]


def handoff(n: int) -> float:
    """Round trip between two threads through Conditions (notify, wait for the answer)."""
    cv = threading.Condition()
    state = {"turn": 0, "stop": False}

    def other() -> None:
        with cv:
            while not state["stop"]:
                while state["turn"] != 1 and not state["stop"]:
                    cv.wait()
                state["turn"] = 0
                cv.notify()

    t = threading.Thread(target=other, daemon=True)
    t.start()
    t0 = time.perf_counter()
    with cv:
        for _ in range(n):
            state["turn"] = 1
            cv.notify()
            while state["turn"] != 0:
                cv.wait()
        state["stop"] = True
        cv.notify()
    dt = time.perf_counter() - t0
    t.join()
    return 1e6 * dt / n


def async_costs(url: str, n: int) -> dict[str, float]:
    """INCR awaited in sequence on one loop: through redis.asyncio (what
    ctx.aredis and a module-level async client use) and on a bare asyncio
    stream writing RESP by hand (the floor for an async job's round trip)."""
    import asyncio

    import redis.asyncio as aredis

    async def go() -> dict[str, float]:
        res: dict[str, float] = {}
        client = aredis.Redis.from_url(url)
        for _ in range(200):
            await client.incr("m")
        best = cpu = float("inf")
        for _ in range(5):
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(n // 5):
                await client.incr("m")
            best = min(best, (time.perf_counter() - t0) / (n // 5))
            cpu = min(cpu, (time.process_time() - c0) / (n // 5))
        res["aincr_redis_asyncio"] = 1e6 * best
        res["aincr_redis_asyncio_cpu"] = 1e6 * cpu
        await client.aclose()
        host, port = url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        cmd = b"*2\r\n$4\r\nINCR\r\n$1\r\nm\r\n"
        best = cpu = float("inf")
        for _ in range(5):
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(n // 5):
                writer.write(cmd)
                await reader.readline()
            best = min(best, (time.perf_counter() - t0) / (n // 5))
            cpu = min(cpu, (time.process_time() - c0) / (n // 5))
        res["aincr_raw_stream"] = 1e6 * best
        res["aincr_raw_stream_cpu"] = 1e6 * cpu
        writer.close()
        return res

    return asyncio.run(go())


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("-n", type=int, default=20_000)
    a = p.parse_args()
    n = a.n
    out: dict[str, float] = {}
    plain = redispy.Redis.from_url(a.url)
    cm = gredis.ConnManager(gredis.Config(url=a.url))
    out["incr_default_pool"] = per_call(lambda: plain.incr("m"), n)
    out["incr_default_pool_cpu"] = LAST_CPU[0]
    out["incr_gokogeri_pool"] = per_call(lambda: cm.client.incr("m"), n)
    out["incr_gokogeri_pool_cpu"] = LAST_CPU[0]
    # redis-py leaves Connection and execute_command untyped: called through Any.
    conn: Any = plain.connection_pool.get_connection()
    execute: Any = plain.execute_command

    def raw_incr() -> None:
        conn.send_command("INCR", "m")
        conn.read_response()

    out["incr_raw_connection"] = per_call(raw_incr, n)
    out["incr_raw_connection_cpu"] = LAST_CPU[0]
    plain.connection_pool.release(conn)
    for name, pool in (("default", plain.connection_pool), ("gokogeri", cm.client.connection_pool)):
        def get_release(pool: redispy.ConnectionPool = pool) -> None:
            c = pool.get_connection()
            pool.release(c)

        out[f"pool_get_release_{name}"] = per_call(get_release, n)
    out["ping_raw_connection"] = per_call(lambda: (conn.send_command("PING"), conn.read_response()), n)
    # The start marker as the runtime sends it (reply read later), and as round trips.
    try:
        from gokogeri.started import StartMarks, digest

        marks = StartMarks(cm, "bench:micro", gokogeri.nop_logger())
        marks.load()
        out["mark_started_send"] = per_call(lambda: marks.mark("tid", PAYLOAD), n)
        out["mark_started_send_cpu"] = LAST_CPU[0]
        marks.close()
        script = marks._script  # the text the runtime sends each time
        key = cm.keys.started("bench:micro")
        out["mark_eval_round_trip"] = per_call(
            lambda: execute("EVAL", script, 1, key, "tid", digest(PAYLOAD), 86400), n // 4
        )
        sha = plain.script_load(script)
        out["mark_evalsha_round_trip"] = per_call(
            lambda: execute("EVALSHA", sha, 1, key, "tid", digest(PAYLOAD), 86400), n // 4
        )
        out["mark_hset_round_trip"] = per_call(lambda: plain.hset(key, "tid", digest(PAYLOAD)), n // 4)
        out["payload_digest"] = per_call(lambda: digest(PAYLOAD), n)
    except ImportError:
        pass
    out["payload_blake2b"] = per_call(lambda: hashlib.blake2b(PAYLOAD, digest_size=12).hexdigest(), n)
    out["job_decode"] = per_call(lambda: gokogeri.Job.decode(PAYLOAD), n)
    out["context_new"] = per_call(lambda: gokogeri.Context(), n)
    out["thread_handoff_round"] = handoff(n // 4)
    out.update(async_costs(a.url, n // 2))
    cm.close()
    plain.close()
    print(json.dumps({k: round(v, 2) for k, v in out.items()}))


if __name__ == "__main__":
    main()
