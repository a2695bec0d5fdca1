"""OpenTelemetry tracing of every process, off unless OTEL_EXPORTER_OTLP_ENDPOINT is set.

`setup_tracing()` is called by each process role at start — the web (orderflow/asgi.py, wsgi.py),
every Celery worker process (orderflow/celery.py) and the outbox dispatcher (run_outbox). With no
endpoint it returns at once: nothing of OpenTelemetry is imported and the flow pays one None check
per event. With one it installs a tracer provider exporting over OTLP/HTTP and the Django, Celery,
psycopg, redis and requests instrumentations.

One order is one trace from the POST to delivered, although its events are written in one process
and published by another later (orderflow/core/events.py): `emit()` stores the current span's W3C
`traceparent` on the event row (asked through the hooks this module sets on core's events module, so
core never imports this package), and whoever publishes the event makes that context current while
it sends the handlers' messages — the Celery instrumentation's publish span is then a child of the
emitting span and its context travels in the message headers to the handler's task span.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

# The process's TracerProvider while tracing is on; None when it is off.
tracer_provider: Any = None
_instrumentors: list[Any] = []


def setup_tracing(role: str, *, exporter: Any = None) -> bool:
    """Turn tracing on for this process, once; True if it is on.

    `role` names the process in the traces (service.name `orderflow-<role>` unless
    OTEL_SERVICE_NAME says otherwise). Spans go to OTEL_EXPORTER_OTLP_ENDPOINT in batches
    (the exporter's own OTEL_EXPORTER_OTLP_* variables apply); a test passes `exporter` (an
    in-memory one) instead, and its spans are exported as each ends."""
    global tracer_provider
    if tracer_provider is not None:
        return True
    if exporter is None and not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return False

    from opentelemetry import trace
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        processor = BatchSpanProcessor(OTLPSpanExporter())
    else:
        processor = SimpleSpanProcessor(exporter)
    service = os.environ.get("OTEL_SERVICE_NAME") or f"orderflow-{role}"
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(processor)
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        trace.set_tracer_provider(provider)  # once per process; the instrumentations get it explicitly

    # DjangoInstrumentor adds its middleware to settings.MIDDLEWARE: call this before the first request.
    for instrumentor in (
        DjangoInstrumentor(),
        CeleryInstrumentor(),
        PsycopgInstrumentor(),
        RedisInstrumentor(),
        RequestsInstrumentor(),
    ):
        instrumentor.instrument(tracer_provider=provider)
        _instrumentors.append(instrumentor)

    from orderflow.core import events

    events.trace_capture = current_traceparent
    events.trace_resume = resumed
    tracer_provider = provider
    return True


def shutdown_tracing() -> None:
    """Export what is buffered and turn tracing off again (process exit, tests)."""
    global tracer_provider
    if tracer_provider is None:
        return
    from orderflow.core import events

    events.trace_capture = events.trace_resume = None
    for instrumentor in reversed(_instrumentors):
        instrumentor.uninstrument()
    _instrumentors.clear()
    provider, tracer_provider = tracer_provider, None
    provider.shutdown()


def current_traceparent() -> str | None:
    """The W3C traceparent of the span being recorded now, or None if there is none."""
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier.get("traceparent")


@contextlib.contextmanager
def resumed(traceparent: str) -> Iterator[None]:
    """Make a stored traceparent the current context for the block (an event's, while it is published)."""
    from opentelemetry import context
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    token = context.attach(TraceContextTextMapPropagator().extract({"traceparent": traceparent}))
    try:
        yield
    finally:
        context.detach(token)
