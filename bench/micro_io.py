"""The measurements behind gokogeri/wire.py and timers.py, outside any node.

    python -m bench.micro_io              # ~30 s; prints a Markdown table
    python -m bench.micro_io --quick      # tiny sizes: a smoke test (CI)

1. Ten threads, each INCRing over a connection of its own (the shape of an
   I/O-bound drain), three ways: redis-py's own per-command path
   (``send_command`` + ``read_response``), gokogeri.wire (what ctx.redis and
   ThreadLocalRedis use) and a bare socket. Commands/s, process CPU and
   voluntary context switches per command.
2. One thread's PING round trip, sleeping in ``recv`` vs polling with
   non-blocking reads (what wire does for a single-threaded caller).
3. ``time.sleep(0.001)`` with Linux's default timer slack and with the 1 ns
   slack job threads set (gokogeri.timers).

Same machine, same fresh redis-server for every row; nothing is asserted.
"""

from __future__ import annotations

import resource
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable

import redis as redispy

from gokogeri import timers, wire
from gokogeri.testing import RedisServer

THREADS = 10
PER_THREAD = 4000
INCR = b"*2\r\n$4\r\nINCR\r\n$1\r\nk\r\n"
PING = b"*1\r\n$4\r\nPING\r\n"


def _redis_py_path(url: str) -> Callable[[], None]:
    conn = redispy.ConnectionPool.from_url(url).make_connection()

    def one() -> None:
        conn.send_command("INCR", "k")
        conn.read_response()

    return one


def _wire_path(url: str) -> Callable[[], None]:
    conn = redispy.ConnectionPool.from_url(url).make_connection()
    packed = wire.pack(("INCR", "k"), conn)

    def one() -> None:
        wire.call(conn, packed, 1)

    return one


def _bare_socket(url: str) -> Callable[[], None]:
    host, port = url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    sock = socket.create_connection((host, int(port)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def one() -> None:
        sock.sendall(INCR)
        sock.recv(64)

    return one


def threads_row(
    url: str, make: Callable[[str], Callable[[], None]], per_thread: int
) -> dict[str, float]:
    calls = [make(url) for _ in range(THREADS)]

    def run(one: Callable[[], None]) -> None:
        for _ in range(per_thread):
            one()

    ts = [threading.Thread(target=run, args=(c,)) for c in calls]
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    dt = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    n = THREADS * per_thread
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return {
        "per_s": n / dt,
        "cpu_us": cpu / n * 1e6,
        "switches": (r1.ru_nvcsw - r0.ru_nvcsw) / n,
    }


def ping_rtt(url: str, poll: bool, n: int = 20_000) -> float:
    host, port = url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    sock = socket.create_connection((host, int(port)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    t0 = time.perf_counter()
    for _ in range(n):
        sock.sendall(PING)
        if poll:
            while True:
                try:
                    sock.recv(64, socket.MSG_DONTWAIT)
                    break
                except BlockingIOError:
                    pass
        else:
            sock.recv(64)
    sock.close()
    return (time.perf_counter() - t0) / n * 1e6


def sleep_us(precise: bool, n: int = 2000) -> float:
    """Mean time.sleep(0.001) in a new thread (timer slack is per thread)."""
    out: list[float] = []

    def run() -> None:
        if precise:
            timers.precise_timers()
        for _ in range(n):
            t = time.perf_counter()
            time.sleep(0.001)
            out.append(time.perf_counter() - t)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    return statistics.mean(out) * 1e6


def main(argv: list[str] | None = None) -> int:
    quick = "--quick" in (sys.argv[1:] if argv is None else argv)
    per_thread, pings, sleeps = (50, 200, 20) if quick else (PER_THREAD, 20_000, 2000)
    with RedisServer() as server:
        url = server.url
        print(f"## {THREADS} threads x {per_thread:,} INCR, each thread on its own connection\n")
        print("| path | INCR/s | CPU us/INCR | voluntary switches/INCR |")
        print("|---|---:|---:|---:|")
        for name, make in (
            ("redis-py send_command + read_response", _redis_py_path),
            ("gokogeri.wire", _wire_path),
            ("bare socket", _bare_socket),
        ):
            row = threads_row(url, make, per_thread)
            print(f"| {name} | {row['per_s']:,.0f} | {row['cpu_us']:.1f} | {row['switches']:.2f} |")
        print("\n## One thread's PING round trip (us)\n")
        print("| sleeping in recv | polling |")
        print("|---:|---:|")
        print(f"| {ping_rtt(url, False, pings):.1f} | {ping_rtt(url, True, pings):.1f} |")
    print("\n## time.sleep(0.001), mean (us)\n")
    print("| default timer slack | 1 ns slack (gokogeri.timers) |")
    print("|---:|---:|")
    print(f"| {sleep_us(False, sleeps):.0f} | {sleep_us(True, sleeps):.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
