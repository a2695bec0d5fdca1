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
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from orderflow.core import events
from orderflow.core.events import Event, handlers_for, send_to_handlers, write_event
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
        "ours = ('opentelemetry.instrumentation', 'opentelemetry.sdk.trace')\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(ours))\n"
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
        event = write_event("order.created", store=store, order_id=uuid.uuid4(), data={"number": 1})
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
        event = write_event("order.created", store=store, order_id=uuid.uuid4(), data={"number": 1})
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


# ------------------------------------------------------------------- across the processes


@pytest.mark.parametrize("entry", ["orderflow.asgi", "orderflow.wsgi"])
def test_the_web_entry_points_trace_requests_when_configured(entry, otlp_receiver):
    """The entry point a server loads, with the endpoint set: its requests are SERVER spans of
    service orderflow-web, exported over OTLP (the middleware was in place before the first request)."""
    code = (
        f"import {entry} as entry\n"
        "from orderflow.observability import tracing\n"
        "assert tracing.tracer_provider is not None\n"
        "if hasattr(entry, 'django_asgi_app'):\n"
        "    from asgiref.sync import async_to_sync\n"
        "    from asgiref.testing import ApplicationCommunicator\n"
        "    async def get():\n"
        "        scope = {'type': 'http', 'method': 'GET', 'path': '/healthz', 'query_string': b'',\n"
        "                 'headers': [(b'host', b'localhost')], 'server': ('localhost', 80),\n"
        "                 'scheme': 'http', 'http_version': '1.1', 'asgi': {'version': '3.0'}}\n"
        "        app = ApplicationCommunicator(entry.application, scope)\n"
        "        await app.send_input({'type': 'http.request', 'body': b''})\n"
        "        start = await app.receive_output(10)\n"
        "        await app.receive_output(10)\n"
        "        return start['status']\n"
        "    status = async_to_sync(get)()\n"
        "else:\n"
        "    import io\n"
        "    seen = []\n"
        "    environ = {'REQUEST_METHOD': 'GET', 'PATH_INFO': '/healthz', 'SERVER_NAME': 'localhost',\n"
        "               'SERVER_PORT': '80', 'HTTP_HOST': 'localhost', 'wsgi.url_scheme': 'http',\n"
        "               'wsgi.input': io.BytesIO(), 'wsgi.errors': io.StringIO()}\n"
        "    b''.join(entry.application(environ, lambda s, h, *a: seen.append(s)))\n"
        "    status = int(seen[0].split()[0])\n"
        "assert status == 200, status\n"
        "tracing.shutdown_tracing()\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        DJANGO_SETTINGS_MODULE="orderflow.settings_test", OTEL_EXPORTER_OTLP_ENDPOINT=otlp_receiver.url
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr[-3000:]
    served = [
        s for s in otlp_receiver.snapshot() if s["service"] == "orderflow-web" and s["kind"] == "server"
    ]
    assert [s["name"] for s in served] == ["GET healthz"]


class OtlpReceiver:
    """A minimal OTLP/HTTP trace collector on a free port: keeps every span the worker and the
    dispatcher export (the test process keeps its own in memory)."""

    def __init__(self):
        self.spans: list[dict] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                receiver._keep(request)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _keep(self, request) -> None:
        kept = []
        for resource_spans in request.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    kept.append(
                        {
                            "service": resource.get("service.name"),
                            "name": span.name,
                            "kind": {2: "server", 3: "client", 4: "producer", 5: "consumer"}.get(span.kind),
                            "trace_id": int.from_bytes(span.trace_id, "big"),
                            "span_id": int.from_bytes(span.span_id, "big"),
                            "parent_id": int.from_bytes(span.parent_span_id, "big")
                            if span.parent_span_id
                            else None,
                            "attributes": {a.key: a.value.string_value for a in span.attributes},
                        }
                    )
        with self._lock:
            self.spans.extend(kept)

    def snapshot(self) -> list[dict]:
        with self._lock:
            return list(self.spans)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def otlp_receiver():
    receiver = OtlpReceiver()
    yield receiver
    receiver.close()


@pytest.fixture
def dispatcher(worker_env):
    """Factory: a real `manage.py run_outbox` with extra env; stopped (SIGTERM) at teardown."""
    started: list[subprocess.Popen] = []
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"of-outbox-{os.getpid()}-{uuid.uuid4().hex[:8]}.log"

    def start(env: dict) -> subprocess.Popen:
        logf = open(log, "wb")
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "run_outbox"],
            cwd=ROOT,
            env={**worker_env, **env},
            stdout=logf,
            stderr=subprocess.STDOUT,
        )
        started.append(proc)
        wait_until(
            lambda: b"outbox dispatcher running" in log.read_bytes() or proc.poll() is not None,
            60,
            message="outbox dispatcher running",
        )
        assert proc.poll() is None, log.read_text()[-3000:]
        return proc

    yield start
    for proc in started:
        proc.terminate()
        proc.wait(20)


DEMO = {"FULFILLMENT_AUTOPILOT": "1", "CARRIER_SIMULATOR": "1"}


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_one_order_is_one_trace_from_the_post_to_delivered(
    traced, otlp_receiver, dispatcher, start_worker, worker_env, gateway, api, store
):
    """The web (this process, in-memory exporter), the outbox dispatcher and a worker (real
    processes exporting over OTLP): an order placed is screened and charged
    (a call to the gateway), picked, packed, shipped and delivered by the demo drivers — and every
    span of it, in every process, is in the POST's trace."""
    otel = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.url,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    dispatcher({**DEMO, **otel})  # the simulator's publish filter is asked by the publisher
    worker = start_worker(env={**DEMO, **otel})
    make_product(store, "TEE", price="10.00", stock=5)

    order = post_order(api, ("TEE", 2))
    try:
        wait_until(
            lambda: Order.all_stores.filter(pk=order.pk, status="delivered").exists(),
            60,
            message="the order delivered",
        )
    except AssertionError as exc:
        status = Order.all_stores.get(pk=order.pk).status
        raise AssertionError(
            f"{exc}; the order is {status}; worker log:\n{worker.output()[-4000:]}"
        ) from None

    (post,) = [s for s in traced.get_finished_spans() if s.kind == trace.SpanKind.SERVER]
    trace_id = post.context.trace_id
    order_events = list(Event.all_stores.filter(order_id=order.pk).order_by("id"))
    assert {"order.created", "order.paid", "fulfillment.picked", "order.shipped", "order.delivered"} <= {
        e.topic for e in order_events
    }
    # Every event of the order was emitted under a span of the POST's trace ...
    assert all(e.trace_context and _trace_id(e.trace_context) == trace_id for e in order_events)
    emitting = {int(e.trace_context.split("-")[2], 16) for e in order_events}
    local = {s.context.span_id for s in traced.get_finished_spans()}

    def exported() -> set[int]:
        return local | {s["span_id"] for s in otlp_receiver.snapshot() if s["trace_id"] == trace_id}

    # ... and each of those spans reached the collector (the worker's batches go every 100 ms).
    wait_until(lambda: emitting <= exported(), 30, message="the emitting spans exported")

    spans = [s for s in otlp_receiver.snapshot() if s["trace_id"] == trace_id]
    by_id = {s["span_id"]: s for s in spans}
    names = {(s["service"], s["name"]) for s in spans}
    charge = "payments.receivers.screen_and_charge"
    assert ("orderflow-outbox", f"apply_async/{charge}") in names  # the dispatcher published it
    assert ("orderflow-worker", f"run/{charge}") in names
    assert ("orderflow-worker", "run/fulfillment.autopilot_step") in names
    assert ("orderflow-worker", "run/fulfillment.simulate_carrier") in names
    # the handler task hangs under the dispatcher's publish span, which hangs under the POST
    (run,) = [s for s in spans if s["name"] == f"run/{charge}"]
    publish = by_id[run["parent_id"]]
    assert publish["service"] == "orderflow-outbox" and publish["parent_id"] == post.context.span_id
    # the gateway call, from inside that task
    gateway_calls = [
        s
        for s in spans
        if s["service"] == "orderflow-worker"
        and (s["attributes"].get("http.url") or s["attributes"].get("url.full") or "").startswith(gateway.url)
    ]
    assert gateway_calls
    # the database and Redis are traced too
    assert any(s["attributes"].get("db.system") == "postgresql" for s in spans)
