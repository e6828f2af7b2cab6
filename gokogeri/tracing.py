"""OpenTelemetry tracing for jobs, compatible with Ruby's opentelemetry-instrumentation-sidekiq.

Ruby's instrumentation (opentelemetry-ruby-contrib,
instrumentation/sidekiq/lib/opentelemetry/instrumentation/sidekiq/middlewares/
client/tracer_middleware.rb and server/tracer_middleware.rb) calls
``OpenTelemetry.propagation.inject(job)`` on the job hash itself: the W3C trace
context lands as top-level payload fields, ``"traceparent"`` (and
``"tracestate"`` when not empty; ``"baggage"`` with the default propagators),
and the server side extracts them from the same hash. This module does the same
with the global OpenTelemetry propagator, so traces cross between Ruby and
Python both ways, and every node (Ruby or Python) keeps the fields untouched.

- :class:`TracingClientMiddleware` (``Enqueuer(cm, middleware=...)``): a
  PRODUCER span ``"<queue> publish"`` around the push, whose context is injected.
- :class:`TracingServerMiddleware` (``Node(..., middleware=...)``): extracts the
  context and runs the job in a CONSUMER span ``"<queue> process"``.
  ``propagation_style`` as Ruby's option: "child" (default here: the job's span
  continues the enqueuer's trace), "link" (Ruby's default: a new trace linked
  to the enqueuer's span) or "none".

Attributes: Ruby's set (``messaging.system="sidekiq"``, ``messaging.sidekiq.job_class``,
``messaging.message_id``, ``messaging.destination``, ``messaging.destination_kind``,
``messaging.operation``), so one query finds both languages' spans, plus the current
semantic-convention names (``messaging.destination.name``, ``messaging.message.id``,
``messaging.operation.type``, ``messaging.operation.name``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any, Literal

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import Getter, Setter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode, TracerProvider

from gokogeri.job import Job

if TYPE_CHECKING:
    from gokogeri.enqueuer import Enqueuer
    from gokogeri.node import Node
    from gokogeri.worker import Context

PropagationStyle = Literal["child", "link", "none"]
SpanNaming = Literal["queue", "job_class"]

TRACER_NAME = "gokogeri"


class _JobGetter(Getter[Mapping[str, Any]]):
    """Reads propagation fields from a payload: only string values, so a payload
    with a number or an object where a traceparent should be is simply untraced."""

    def get(self, carrier: Mapping[str, Any], key: str) -> list[str] | None:
        value = carrier.get(key)
        return [value] if isinstance(value, str) else None

    def keys(self, carrier: Mapping[str, Any]) -> list[str]:
        return [k for k, v in carrier.items() if isinstance(v, str)]


class _JobSetter(Setter[MutableMapping[str, Any]]):
    def set(self, carrier: MutableMapping[str, Any], key: str, value: str) -> None:
        carrier[key] = value


GETTER = _JobGetter()
SETTER = _JobSetter()


def inject(job: Job, context: otel_context.Context | None = None) -> None:
    """Write the current (or given) trace context into ``job``'s fields, as Ruby does."""
    propagate.inject(job.fields, context=context, setter=SETTER)


def extract(job: Job) -> otel_context.Context:
    """The trace context a payload carries (an empty one if none, or if it is garbage)."""
    return propagate.extract(job.fields, getter=GETTER)


def _job_class(job: Job) -> str:
    wrapped = job.get("wrapped")
    return str(wrapped) if wrapped else str(job.get("class") or "")


def _attributes(job: Job, queue: str, operation: str) -> dict[str, str]:
    attrs = {
        # Ruby's instrumentation writes these (semantic conventions of its time).
        "messaging.system": "sidekiq",
        "messaging.sidekiq.job_class": _job_class(job),
        "messaging.destination": queue,
        "messaging.destination_kind": "queue",
        # The current messaging conventions.
        "messaging.destination.name": queue,
        "messaging.operation.name": operation,
        "messaging.operation.type": "send" if operation == "publish" else "process",
    }
    jid = job.get("jid")
    if isinstance(jid, str):
        attrs["messaging.message_id"] = jid
        attrs["messaging.message.id"] = jid
    if operation == "process":
        attrs["messaging.operation"] = "process"
    return attrs


def _span_name(job: Job, queue: str, operation: str, naming: SpanNaming) -> str:
    subject = _job_class(job) if naming == "job_class" else queue
    return f"{subject} {operation}"


def _add_time_event(span: trace.Span, name: str, value: Any) -> None:
    """Ruby's created_at / enqueued_at span events, at the time the field records:
    integer ms (Sidekiq 8) exactly, float seconds (6/7) to the microsecond."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return  # absent or garbage: no event
    micros = value * 1000 if isinstance(value, int) else round(value * 1e6)
    if 0 <= micros < 10**17:  # before year 5000: a plausible time
        span.add_event(name, timestamp=int(micros) * 1000)


class TracingClientMiddleware:
    """Client middleware: a PRODUCER span per push, its context injected into the job."""

    def __init__(
        self,
        tracer_provider: TracerProvider | None = None,
        *,
        span_naming: SpanNaming = "queue",
        peer_service: str | None = None,
    ) -> None:
        self._tracer = trace.get_tracer(TRACER_NAME, tracer_provider=tracer_provider)
        self._naming = span_naming
        self._peer = peer_service

    def __call__(self, job: Job, queue: str, call_next: Callable[[], Any]) -> Any:
        attrs = _attributes(job, queue, "publish")
        if self._peer:
            attrs["peer.service"] = self._peer
        name = _span_name(job, queue, "publish", self._naming)
        with self._tracer.start_as_current_span(
            name, kind=SpanKind.PRODUCER, attributes=attrs
        ) as span:
            inject(job)
            _add_time_event(span, "created_at", job.get("created_at"))
            return call_next()


class TracingServerMiddleware:
    """Server middleware: the job runs in a CONSUMER span continuing (or linked to)
    the trace its payload carries. A failure is recorded on the span and re-raised."""

    def __init__(
        self,
        tracer_provider: TracerProvider | None = None,
        *,
        propagation_style: PropagationStyle = "child",
        span_naming: SpanNaming = "queue",
        peer_service: str | None = None,
    ) -> None:
        if propagation_style not in ("child", "link", "none"):
            raise ValueError(
                f"propagation_style must be 'child', 'link' or 'none', got {propagation_style!r}"
            )
        self._tracer = trace.get_tracer(TRACER_NAME, tracer_provider=tracer_provider)
        self._style = propagation_style
        self._naming = span_naming
        self._peer = peer_service

    def __call__(self, ctx: Context, job: Job, queue: str, call_next: Callable[[], Any]) -> Any:
        attrs = _attributes(job, queue, "process")
        if self._peer:
            attrs["peer.service"] = self._peer
        name = _span_name(job, queue, "process", self._naming)
        extracted = extract(job)
        token = otel_context.attach(extracted)  # baggage and the like, as Ruby's with_current
        try:
            if self._style == "child":
                span = self._tracer.start_span(
                    name, context=extracted, kind=SpanKind.CONSUMER, attributes=attrs
                )
            else:
                links: list[Link] = []
                remote = trace.get_current_span(extracted).get_span_context()
                if self._style == "link" and remote.is_valid:
                    links.append(Link(remote))
                root = trace.set_span_in_context(trace.INVALID_SPAN, extracted)
                span = self._tracer.start_span(
                    name, context=root, kind=SpanKind.CONSUMER, attributes=attrs, links=links
                )
            with trace.use_span(
                span, end_on_exit=True, record_exception=False, set_status_on_exception=False
            ):
                _add_time_event(span, "created_at", job.get("created_at"))
                _add_time_event(span, "enqueued_at", job.get("enqueued_at"))
                try:
                    return call_next()
                except BaseException as e:
                    span.record_exception(e)
                    span.set_status(
                        Status(StatusCode.ERROR, f"Unhandled exception of type: {type(e).__name__}")
                    )
                    raise
        finally:
            otel_context.detach(token)


def instrument(
    *,
    enqueuers: Iterable[Enqueuer] = (),
    nodes: Iterable[Node] = (),
    tracer_provider: TracerProvider | None = None,
    propagation_style: PropagationStyle = "child",
    span_naming: SpanNaming = "queue",
) -> None:
    """Put the tracing middleware first in each chain, as Ruby's instrumentation prepends."""
    for enq in enqueuers:
        enq.middleware.prepend(TracingClientMiddleware(tracer_provider, span_naming=span_naming))
    for node in nodes:
        node.middleware.prepend(
            TracingServerMiddleware(
                tracer_provider, propagation_style=propagation_style, span_naming=span_naming
            )
        )
