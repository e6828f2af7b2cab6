"""10,000 hostile payloads mixed with 1,000 valid jobs.

Done when: the node never exits; every valid job runs exactly once; every bad
payload is in the dead set, once, with a reason; no working list keeps a
payload after rescue; no log line is forged by a class name and none repeats a
payload's values.

A second node that freezes every job it fetches is SIGKILLed holding a few
hundred of the payloads, so the rescue path (decode, count, requeue) meets the
same hostile bytes as the processors do.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections import Counter

import redis as redispy

from tests.faults import dead
from tests.faults.conftest import NodeFactory
from tests.faults.fuzz import FORGED, Bad, corpus, kinds_of, valid_jobs
from tests.faults.harness import Ledger, NodeProc, leftovers, report, tally, wait_until

N_BAD = 10_000
N_VALID = 1_000
# The frozen node's prefetch; it holds 150-300 of them when it is killed (it
# refills below half), minus what it buried itself.
FROZEN_PREFETCH = 300


def push_all(r: redispy.Redis, payloads: list[bytes]) -> None:
    """LPUSH in the given order (the first pushed is the first fetched)."""
    r.sadd("queues", "default")
    pipe = r.pipeline(transaction=False)
    size = 0
    for p in payloads:
        pipe.lpush("queue:default", p)
        size += len(p)
        if size > 8 << 20 or len(pipe) >= 1000:
            pipe.execute()
            size = 0
    pipe.execute()


def alive_or_fail(node: NodeProc) -> None:
    if not node.alive():
        raise AssertionError(f"the node exited with {node.returncode()}:\n{node.output()[-4000:]}")


def where_is(r: redispy.Redis, token: str) -> str:
    """Where a payload that is not in the dead set ended up (for the failure message)."""
    t = token.encode()
    for key in ("retry", "schedule"):
        if any(t in m for m in r.zrange(key, 0, -1)):
            return key
    if any(t in m for m in r.lrange("queue:default", 0, -1)):
        return "queue:default"
    for key in leftovers(r):
        if any(t in m for m in r.lrange(key, 0, -1)):
            return key
    return "nowhere (lost)"


def dispositions(bads: list[Bad], entries: list[dead.DeadEntry]) -> dict[str, dict[str, int]]:
    """kind of payload -> how its dead entries explain themselves -> count."""
    kind = {b.token: b.kind for b in bads}
    out: dict[str, Counter[str]] = {}
    for e in entries:
        how = (e.reason or "<no reason>").split(":", 1)[0]
        for t in e.tokens:
            out.setdefault(kind.get(t, "?"), Counter())[how] += 1
    return {k: dict(v) for k, v in sorted(out.items())}


def test_fuzz_10000_bad_1000_valid(
    r: redispy.Redis, ledger: Ledger, node_factory: NodeFactory
) -> None:
    bads = corpus(N_BAD)
    valids = valid_jobs(N_VALID)
    mixed = [b.raw for b in bads] + [p for _, p in valids]
    random.Random(1500).shuffle(mixed)
    push_all(r, mixed)
    del mixed

    # A node that freezes every job it fetches, killed while holding some.
    frozen = node_factory(
        FAULTS_FREEZE="1",
        FAULTS_CONCURRENCY="2",
        FAULTS_PREFETCH=str(FROZEN_PREFETCH),
        FAULTS_SCHEDULER="0",
    )
    held = wait_until(
        # It buries what it cannot decode at once, and freezes the rest.
        lambda: sum(leftovers(r).values()) >= FROZEN_PREFETCH // 2,
        60,
        "the frozen node to fetch",
    )
    assert held
    held_payloads = [m for k in leftovers(r) for m in r.lrange(k, 0, -1)]
    frozen.kill()

    t0 = time.monotonic()
    node = node_factory(FAULTS_CONCURRENCY="10")

    def drained() -> bool:
        alive_or_fail(node)
        return (
            ledger.ran() >= N_VALID
            and r.llen("queue:default") == 0
            and not leftovers(r)
            and r.zcard("dead") >= N_BAD
        )

    # On a timeout the assertions below say what is missing, and where it went.
    with contextlib.suppress(AssertionError):
        wait_until(drained, 180, "every payload to be run or buried", interval=0.2)
    drain_s = time.monotonic() - t0
    time.sleep(1.0)  # nothing more may happen after the drain
    alive_or_fail(node)
    code = node.stop()
    log = node.output()

    runs = ledger.runs()
    lost, dups, strangers = tally([j for j, _ in valids], runs)
    entries = dead.read(r)
    by_token: Counter[str] = Counter(t for e in entries for t in e.tokens)
    no_reason = [e for e in entries if e.reason is None]
    multi = [e for e in entries if len(e.tokens) != 1]
    missing = [b for b in bads if by_token[b.token] == 0]
    twice = [t for t, n in by_token.items() if n > 1]
    forged = [ln for ln in log.splitlines() if ln.startswith(FORGED)]
    secrets = log.count("SECRET")
    held_set = set(held_payloads)
    held_kinds = kinds_of([b for b in bads if b.raw in held_set])
    report(
        "fuzz",
        bad=N_BAD,
        valid=N_VALID,
        kinds=dict(kinds_of(bads)),
        held_by_killed_node=len(held_payloads),
        held_bad_kinds=dict(held_kinds),
        drain_seconds=round(drain_s, 1),
        valid_lost=len(lost),
        valid_duplicates=dups,
        dead=len(entries),
        dead_reasons=dict(dead.error_classes(entries)),
        dispositions=dispositions(bads, entries),
        dead_kept_raw=dead.raw_kept(entries),
        dead_without_reason=len(no_reason),
        dead_without_reason_kinds=dict(
            kinds_of([b for b in bads if b.token in {t for e in no_reason for t in e.tokens}])
        ),
        bad_missing=len(missing),
        bad_missing_kinds=dict(kinds_of(missing)),
        retry=int(r.zcard("retry")),
        forged_log_lines=len(forged),
        secret_mentions_in_log=secrets,
        exit_code=code,
    )
    assert code == 0, f"clean stop exits 0, got {code}"
    assert not lost, f"{len(lost)} valid jobs never ran"
    assert dups == 0, f"{dups} duplicate runs of valid jobs"
    assert not strangers, f"jobs ran that were never enqueued as valid: {strangers[:5]}"
    assert not missing, "bad payloads not in the dead set: " + ", ".join(
        f"{b.kind}@{where_is(r, b.token)}" for b in missing[:20]
    )
    assert not twice, f"bad payloads buried more than once: {twice[:10]}"
    assert not multi, f"{len(multi)} dead entries that are not exactly one payload"
    assert not no_reason, (
        f"{len(no_reason)} dead entries without a reason, e.g. {no_reason[0].member[:200]!r}"
    )
    assert len(entries) == N_BAD
    assert r.zcard("retry") == 0 and r.zcard("schedule") == 0
    assert r.llen("queue:default") == 0
    assert not leftovers(r), "a working list kept payloads"
    assert not forged, f"class names forged {len(forged)} log lines, e.g. {forged[0]!r}"
    assert secrets == 0, "a log line repeated a payload value"
