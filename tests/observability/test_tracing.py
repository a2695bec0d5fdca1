"""Tracing (orderflow/observability/tracing.py): off unless configured, and when on, one order is one
trace — from the POST through the outbox and the handler tasks to delivered."""

from __future__ import annotations

import gzip
import http.server
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from celery.signals import before_task_publish
from django.db import transaction
from django.test import override_settings
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from orderflow.core import events
from orderflow.core.events import Event, emit, handlers_for, send_to_handlers
from orderflow.observability import tracing
from orderflow.observability.tracing import setup_tracing, shutdown_tracing
from orders.models import Order
from tests.conftest import ROOT, wait_until
from tests.factories import make_product
from tests.payments.helpers import post_order


@pytest.fixture
def traced():
    """Tracing on in this process, spans kept in memory; off again afterwards."""
    exporter = InMemorySpanExporter()
    assert setup_tracing("test", exporter=exporter) is True
    yield exporter
    shutdown_tracing()


@pytest.fixture
def published_headers():
    """The headers of every Celery message this process publishes during the test."""
    seen: list[dict] = []

    def record(sender=None, headers=None, **kwargs):
        seen.append({"task": sender, **(headers or {})})

    before_task_publish.connect(record, weak=False)
    yield seen
    before_task_publish.disconnect(record)


def _trace_id(traceparent: str) -> int:
    return int(traceparent.split("-")[1], 16)


# ------------------------------------------------------------------------------------ off


def test_with_no_endpoint_the_processes_set_up_nothing():
    """The web entry points and the dispatcher's setup, with OTEL_EXPORTER_OTLP_ENDPOINT unset: no
    instrumentation is even imported, no tracer provider is installed, no middleware added, and
    core's hooks stay None. (redis-py imports the OpenTelemetry API for its own optional metrics;
    that is not ours.)"""
    code = (
        "import sys, orderflow.wsgi, orderflow.asgi\n"
        "from django.conf import settings\n"
        "from orderflow.core import events\n"
        "from orderflow.observability import tracing\n"
        "assert tracing.setup_tracing('outbox') is False\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(('opentelemetry.instrumentation', 'opentelemetry.sdk.trace')))\n"
        "assert not loaded, loaded\n"
        "assert not [m for m in settings.MIDDLEWARE if 'opentelemetry' in m], settings.MIDDLEWARE\n"
        "if 'opentelemetry.trace' in sys.modules:\n"
        "    from opentelemetry import trace\n"
        "    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)\n"
        "assert events.trace_capture is None and events.trace_resume is None\n"
        "assert tracing.tracer_provider is None\n"
        "print('off')\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["DJANGO_SETTINGS_MODULE"] = "orderflow.settings_test"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "off"


@pytest.mark.django_db
def test_with_tracing_off_an_event_carries_no_context(store, published_headers):
    assert events.trace_capture is None
    with transaction.atomic():
        event = emit("order.created", store=store, order_id=uuid.uuid4(), data={"number": 1})
    assert event.trace_context is None
    assert Event.all_stores.get(pk=event.pk).trace_context is None
    send_to_handlers(event)
    assert published_headers, "order.created has handlers"
    assert all("traceparent" not in h for h in published_headers)


# ------------------------------------------------------------------------------------- on


@pytest.mark.django_db
def test_a_published_event_continues_the_trace_of_the_span_that_emitted_it(store, traced, published_headers):
    """emit() stores the current span's context; a publisher with no span of its own (the
    dispatcher) sends the handler messages under it: the publish span is the emitting span's child
    and the message carries that trace to the handler task."""
    tracer = trace.get_tracer("test", tracer_provider=tracing.tracer_provider)
    with tracer.start_as_current_span("request") as span:
        event = emit("order.created", store=store, order_id=uuid.uuid4(), data={"number": 1})
    emitting = span.get_span_context()
    assert _trace_id(event.trace_context) == emitting.trace_id
    assert int(event.trace_context.split("-")[2], 16) == emitting.span_id
    assert Event.all_stores.get(pk=event.pk).trace_context == event.trace_context

    assert trace.get_current_span().get_span_context().is_valid is False  # like the dispatcher: no span
    send_to_handlers(event)

    names = {h.name for h in handlers_for("order.created")}
    sent = [h for h in published_headers if h["task"] in names]
    assert sent and all(_trace_id(h["traceparent"]) == emitting.trace_id for h in sent)
    publishes = [s for s in traced.get_finished_spans() if s.name.startswith("apply_async/")]
    assert {s.name.split("/", 1)[1] for s in publishes} >= {h["task"] for h in sent}
    assert all(s.parent.span_id == emitting.span_id for s in publishes)
    assert trace.get_current_span().get_span_context().is_valid is False  # the event's context is gone again
