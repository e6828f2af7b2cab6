"""OpenTelemetry tracing across processes and across Ruby and Python (gokogeri.tracing).

Spans are collected with the OpenTelemetry SDK's InMemorySpanExporter: in this process for the
enqueuer and the in-process nodes, and in a separate node process that prints its spans.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import redis as redispy
from opentelemetry import baggage, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import gokogeri
from gokogeri import redis as gredis
from gokogeri.tracing import (
    TracingClientMiddleware,
    TracingServerMiddleware,
    extract,
    inject,
    instrument,
)

QUEUE = "traced"
ROOT = Path(__file__).parent.parent

# The node process: runs one TracedJob under TracingServerMiddleware, then prints its spans
# (and the span context its worker saw as current) as JSON.
NODE_SCRIPT = r"""
import json, sys, threading
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
import gokogeri
from gokogeri import redis as gredis
from gokogeri.tracing import TracingServerMiddleware

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
cm = gredis.ConnManager(gredis.Config(url=sys.argv[1]))
chain = gokogeri.ServerChain()
chain.add(TracingServerMiddleware(provider))
node = gokogeri.Node(gokogeri.nop_logger(), cm, middleware=chain, heartbeat_interval=0.2,
                     poll_interval_average=0.2)
seen = {}
done = threading.Event()

def work(ctx, job):
    sc = trace.get_current_span().get_span_context()
    seen.update(trace_id=format(sc.trace_id, "032x"), span_id=format(sc.span_id, "016x"))
    done.set()

router = gokogeri.Router()
router.register("TracedJob", work)
node.process_queues(gokogeri.OrderedQueueSet(["traced"]), router, 1)
threading.Thread(target=lambda: (done.wait(30), node.stop(5)), daemon=True).start()
node.run()
spans = [
    {"name": s.name, "kind": s.kind.name, "trace_id": format(s.context.trace_id, "032x"),
     "span_id": format(s.context.span_id, "016x"),
     "parent": format(s.parent.span_id, "016x") if s.parent else None,
     "attributes": dict(s.attributes), "events": [e.name for e in s.events]}
    for s in exporter.get_finished_spans()
]
print(json.dumps({"spans": spans, "seen": seen}))
cm.close()
"""


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def hex32(n: int) -> str:
    return format(n, "032x")


def hex16(n: int) -> str:
    return format(n, "016x")


def run_node(
    cm: gredis.ConnManager,
    middleware: gokogeri.ServerChain,
    work: Callable[[gokogeri.Context, gokogeri.Job], None],
    until: Callable[[], bool],
) -> None:
    """An in-process node on QUEUE until ``until()`` holds (checked after each job)."""
    node = gokogeri.Node(
        gokogeri.nop_logger(),
        cm,
        middleware=middleware,
        heartbeat_interval=0.2,
        poll_interval_average=0.2,
    )
    finished = threading.Event()

    def wrapped(ctx: gokogeri.Context, job: gokogeri.Job) -> None:
        try:
            work(ctx, job)
        finally:
            if until():
                finished.set()

    router = gokogeri.Router()
    router.register("TracedJob", wrapped)
    node.process_queues(gokogeri.OrderedQueueSet([QUEUE]), router, 1)
    t = threading.Thread(target=node.run)
    t.start()
    try:
        assert finished.wait(30), "the node did not run the job"
    finally:
        node.stop(5)
        t.join(15)
    assert not t.is_alive()


def test_enqueue_span_and_job_span_share_one_trace_across_processes(
    cm: gredis.ConnManager,
    redis_url: str,
    r: redispy.Redis,
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = spans
    enq = gokogeri.Enqueuer(cm)
    instrument(enqueuers=[enq], tracer_provider=provider)
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("web request"):
        jid = enq.enqueue(gokogeri.Job(class_name="TracedJob", queue=QUEUE, args=[1]))
    (payload,) = cast(list[bytes], r.lrange(f"queue:{QUEUE}", 0, -1))
    fields = json.loads(payload)
    publish = next(s for s in exporter.get_finished_spans() if s.name == f"{QUEUE} publish")
    ctx = publish.context
    assert ctx is not None
    # The W3C header as a top-level payload field, exactly where Ruby's inject(job) puts it.
    # Flags: sampled (01), plus W3C level 2's random-trace-id bit (02) from newer SDKs; Ruby's
    # TraceParent.from_string takes any two hex digits there.
    flags = f"{int(ctx.trace_flags):02x}"
    assert flags in ("01", "03")
    assert fields["traceparent"] == f"00-{hex32(ctx.trace_id)}-{hex16(ctx.span_id)}-{flags}"
    assert publish.kind == SpanKind.PRODUCER
    assert publish.attributes is not None
    assert publish.attributes["messaging.system"] == "sidekiq"
    assert publish.attributes["messaging.message_id"] == jid
    assert [e.name for e in publish.events] == ["created_at"]

    proc = subprocess.run(
        [sys.executable, "-c", NODE_SCRIPT, redis_url],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    (consumer,) = [s for s in out["spans"] if s["name"] == f"{QUEUE} process"]
    assert consumer["kind"] == "CONSUMER"
    assert consumer["trace_id"] == hex32(ctx.trace_id)
    assert consumer["parent"] == hex16(ctx.span_id)
    assert consumer["attributes"]["messaging.sidekiq.job_class"] == "TracedJob"
    assert consumer["attributes"]["messaging.operation"] == "process"
    assert consumer["attributes"]["messaging.destination"] == QUEUE
    assert consumer["attributes"]["messaging.message.id"] == jid
    assert consumer["events"] == ["created_at", "enqueued_at"]
    # The worker ran with the consumer span current: its own spans join the trace.
    assert out["seen"] == {"trace_id": consumer["trace_id"], "span_id": consumer["span_id"]}


# A payload as Sidekiq 7.3 + opentelemetry-instrumentation-sidekiq write it. Built from
# opentelemetry-ruby-contrib's
#   instrumentation/sidekiq/lib/opentelemetry/instrumentation/sidekiq/middlewares/client/tracer_middleware.rb
# (`OpenTelemetry.propagation.inject(job)` on the job hash, inside the client middleware, so
# after normalize_item's jid/created_at and before atomic_push's enqueued_at) and
# opentelemetry-ruby's api/lib/opentelemetry/trace/propagation/trace_context/text_map_propagator.rb
# ("traceparent" = 00-<trace id>-<span id>-<flags>; "tracestate" only when not empty), with the
# baggage propagator of OTEL_PROPAGATORS' default "tracecontext,baggage" adding "baggage".
RUBY_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
RUBY_SPAN_ID = "00f067aa0ba902b7"
RUBY_PAYLOAD = (
    '{"retry":1,"queue":"traced","args":["fail once"],"class":"TracedJob",'
    '"jid":"5f2b7c9e8a1d4e3f6b0a9c8d","created_at":1764500000.125,'
    f'"traceparent":"00-{RUBY_TRACE_ID}-{RUBY_SPAN_ID}-01",'
    '"tracestate":"rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",'
    '"baggage":"tenant=acme","enqueued_at":1764500000.126}'
)


def test_a_ruby_trace_context_is_continued_and_kept_through_a_retry(
    cm: gredis.ConnManager,
    r: redispy.Redis,
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = spans
    seen: list[Any] = []

    def work(ctx: gokogeri.Context, job: gokogeri.Job) -> None:
        seen.append(baggage.get_baggage("tenant"))
        raise RuntimeError("fails in python")

    chain = gokogeri.ServerChain()
    chain.add(TracingServerMiddleware(provider))
    r.lpush(f"queue:{QUEUE}", RUBY_PAYLOAD)
    run_node(cm, chain, work, until=lambda: True)

    (span,) = [s for s in exporter.get_finished_spans() if s.name == f"{QUEUE} process"]
    assert span.context is not None and span.parent is not None
    assert hex32(span.context.trace_id) == RUBY_TRACE_ID
    assert hex16(span.parent.span_id) == RUBY_SPAN_ID
    assert span.parent.is_remote
    assert span.context.trace_state.to_header() == "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
    assert span.status.status_code == StatusCode.ERROR
    assert span.status.description == "Unhandled exception of type: RuntimeError"
    assert [e.name for e in span.events] == ["created_at", "enqueued_at", "exception"]
    assert span.events[0].timestamp == 1764500000_125000000
    assert seen == ["acme"]  # Ruby's baggage reached the worker

    # The retry rewrote the payload; the propagation fields are still there, unchanged.
    (entry,) = cast(list[bytes], r.zrange("retry", 0, -1))
    retried = json.loads(entry)
    original = json.loads(RUBY_PAYLOAD)
    for key in ("traceparent", "tracestate", "baggage"):
        assert retried[key] == original[key]
    assert retried["retry_count"] == 0


def test_link_style_starts_a_new_trace_linked_to_the_producer(
    cm: gredis.ConnManager,
    r: redispy.Redis,
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    """Ruby's default propagation_style, :link."""
    provider, exporter = spans
    chain = gokogeri.ServerChain()
    chain.add(TracingServerMiddleware(provider, propagation_style="link", span_naming="job_class"))
    r.lpush(f"queue:{QUEUE}", RUBY_PAYLOAD.replace('"retry":1', '"retry":false'))
    run_node(cm, chain, lambda ctx, job: None, until=lambda: True)
    (span,) = exporter.get_finished_spans()
    assert span.name == "TracedJob process"
    assert span.parent is None and span.context is not None
    assert hex32(span.context.trace_id) != RUBY_TRACE_ID
    (link,) = span.links
    assert (hex32(link.context.trace_id), hex16(link.context.span_id)) == (
        RUBY_TRACE_ID,
        RUBY_SPAN_ID,
    )


GARBAGE = [12, None, {"a": 1}, ["x"], "zzz", "00-" + "0" * 32 + "-" + "0" * 16 + "-01", "\x00\n"]


def test_garbage_trace_fields_never_break_a_job(
    cm: gredis.ConnManager, r: redispy.Redis, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    jids = [f"{i:024x}" for i in range(len(GARBAGE))]
    for jid, bad in zip(jids, GARBAGE, strict=True):
        payload = {"class": "TracedJob", "queue": QUEUE, "args": [], "jid": jid, "retry": False}
        payload.update(traceparent=bad, tracestate=bad, baggage=bad)
        r.lpush(f"queue:{QUEUE}", json.dumps(payload))
    ran: list[str] = []
    chain = gokogeri.ServerChain()
    chain.add(TracingServerMiddleware(provider))
    run_node(cm, chain, lambda ctx, job: ran.append(str(job.jid)), until=lambda: len(ran) == 7)
    assert sorted(ran) == jids
    finished = exporter.get_finished_spans()
    assert len(finished) == len(GARBAGE)
    assert all(s.parent is None for s in finished)  # nothing valid to continue: new traces


def test_inject_and_extract_round_trip_through_a_job() -> None:
    provider = TracerProvider()
    with provider.get_tracer("t").start_as_current_span("s") as s:
        job = gokogeri.Job(class_name="X")
        inject(job)
    ctx = trace.get_current_span(extract(job)).get_span_context()
    assert (ctx.trace_id, ctx.span_id) == (
        s.get_span_context().trace_id,
        s.get_span_context().span_id,
    )
    assert list(job.fields)[-1] == "traceparent"  # appended, every other field in place


def test_client_middleware_can_be_used_alone_and_keeps_the_push(
    cm: gredis.ConnManager, r: redispy.Redis, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    chain = gokogeri.ClientChain()
    chain.add(TracingClientMiddleware(provider, span_naming="job_class"))
    enq = gokogeri.Enqueuer(cm, middleware=chain)
    jids = enq.enqueue_bulk(
        [
            gokogeri.Job(class_name="Wrapper", queue=QUEUE, args=[i], wrapped="Real")
            for i in range(3)
        ]
    )
    assert len([j for j in jids if j]) == 3
    names = [s.name for s in exporter.get_finished_spans()]
    assert names == ["Real publish"] * 3
    payloads = [json.loads(p) for p in cast(list[bytes], r.lrange(f"queue:{QUEUE}", 0, -1))]
    assert len({p["traceparent"] for p in payloads}) == 3  # one producer span each
