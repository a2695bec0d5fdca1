"""/metrics: the token, the exposition, and that each metric moves when its thing happens — a
placed order, a request, a task, a queued message, an unpublished event, the breaker opening —
and that the Grafana dashboard and the alert rules name only metrics /metrics exposes."""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta

import pytest
import redis
import yaml
from django.conf import settings
from django.test import Client, override_settings
from django.utils import timezone
from kombu import Queue
from prometheus_client.parser import text_string_to_metric_families

from alerts.tasks import deliver_webhook, resend_stale_deliveries
from inventory.services import adjust
from orderflow.core.events import Event, write_event
from orderflow.core.outbox import dispatch_pending
from payments import breaker
from tests.conftest import ROOT
from tests.factories import make_product, order_body
from tests.orders.helpers import place

TOKEN = "test-suite-metrics-token"
AUTH = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}


def scrape() -> str:
    response = Client().get("/metrics", **AUTH)
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


def families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


def value(text: str, sample: str, **labels) -> float:
    """The sample's value (0 when the series does not exist yet: a counter not yet moved)."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


# ------------------------------------------------------------------------------- the endpoint


@pytest.mark.django_db
def test_metrics_want_the_token():
    client = Client()
    missing = client.get("/metrics")
    assert missing.status_code == 401
    assert missing["WWW-Authenticate"].startswith("Bearer")
    assert missing.json()["error"]["code"] == "not_authenticated"
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong-token").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}").status_code == 401
    assert client.get("/metrics", **AUTH).status_code == 200


@pytest.mark.django_db
def test_no_token_configured_means_no_endpoint():
    with override_settings(METRICS_TOKEN=""):
        assert Client().get("/metrics").status_code == 404
        assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


@pytest.mark.django_db
def test_exposition_parses_and_has_every_metric():
    names = families(scrape())
    for name, kind in [
        ("orderflow_http_request_duration_seconds", "histogram"),
        ("orderflow_task_duration_seconds", "histogram"),
        ("orderflow_orders", "counter"),
        ("orderflow_webhook_deliveries", "counter"),
        ("orderflow_stockouts", "counter"),
        ("orderflow_queue_messages", "gauge"),
        ("orderflow_outbox_unpublished_events", "gauge"),
        ("orderflow_outbox_oldest_unpublished_age_seconds", "gauge"),
        ("orderflow_breaker_state", "gauge"),
        ("orderflow_breaker_consecutive_failures", "gauge"),
        ("orderflow_gateway_calls_in_flight", "gauge"),
        ("orderflow_metrics_collector_up", "gauge"),
    ]:
        assert name in names, name
        assert names[name].type == kind, name
    up = {s.labels["part"]: s.value for s in names["orderflow_metrics_collector_up"].samples}
    assert up == {"queues": 1.0, "outbox": 1.0, "breaker": 1.0}


def test_metrics_is_not_part_of_the_api_schema():
    from drf_spectacular.generators import SchemaGenerator

    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    assert not [p for p in paths if "metrics" in p]


# --------------------------------------------------------------------------- what moves them


@pytest.mark.django_db
def test_a_request_records_its_route_not_its_path(api):
    before = scrape()
    Client().get("/healthz")
    missing = uuid.uuid4()
    assert api.get(f"/api/v1/orders/{missing}").status_code == 404
    after = scrape()
    count = "orderflow_http_request_duration_seconds_count"
    assert value(after, count, route="healthz", method="GET", status="200") == (
        value(before, count, route="healthz", method="GET", status="200") + 1
    )
    detail = {"route": "api/v1/orders/<str:order_id>", "method": "GET", "status": "404"}
    assert value(after, count, **detail) == value(before, count, **detail) + 1
    assert str(missing) not in after  # one series per route, never one per order
    bucket = value(after, "orderflow_http_request_duration_seconds_bucket", le="+Inf", **detail)
    assert bucket == value(after, count, **detail)


@pytest.mark.django_db
def test_a_placed_order_moves_its_stores_accepted_counter(
    api, store, other_store, django_capture_on_commit_callbacks
):
    make_product(store, "SKU-METRICS-1", stock=10)
    sample = "orderflow_orders_total"
    before = scrape()
    with django_capture_on_commit_callbacks(execute=True):
        assert place(api, order_body(("SKU-METRICS-1", 1))).status_code == 202
    dispatch_pending()  # counted when published, by the dispatcher
    after = scrape()
    assert value(after, sample, store=store.slug, outcome="accepted") == (
        value(before, sample, store=store.slug, outcome="accepted") + 1
    )
    assert value(after, sample, store=other_store.slug, outcome="accepted") == (
        value(before, sample, store=other_store.slug, outcome="accepted")
    )


@pytest.mark.django_db
def test_stock_reaching_zero_counts_a_stockout_and_low_stock_does_not(
    store, django_capture_on_commit_callbacks
):
    make_product(store, "SKU-METRICS-LAST", stock=1, threshold=0)
    make_product(store, "SKU-METRICS-LOW", stock=5, threshold=3)
    before = value(scrape(), "orderflow_stockouts_total", store=store.slug)
    with django_capture_on_commit_callbacks(execute=True):
        adjust(store=store, sku="SKU-METRICS-LOW", delta=-2, reason="damaged", actor="test")  # low, not out
        adjust(store=store, sku="SKU-METRICS-LAST", delta=-1, reason="damaged", actor="test")
    dispatch_pending()
    assert value(scrape(), "orderflow_stockouts_total", store=store.slug) == before + 1


@pytest.mark.django_db
def test_a_task_run_records_its_runtime_and_outcome():
    count = "orderflow_task_duration_seconds_count"
    before = scrape()
    assert resend_stale_deliveries.apply().successful()
    assert deliver_webhook.apply(args=[str(uuid.uuid4()), 0]).get() == "skipped"  # no such delivery
    assert deliver_webhook.apply(args=[]).failed()  # a crash: the task's arguments are missing
    after = scrape()
    for task, outcome, runs in [
        ("alerts.resend_stale_deliveries", "success", 1),
        ("alerts.deliver_webhook", "success", 1),
        ("alerts.deliver_webhook", "failure", 1),
    ]:
        assert (
            value(after, count, task=task, outcome=outcome)
            == value(before, count, task=task, outcome=outcome) + runs
        )
    deliveries = "orderflow_webhook_deliveries_total"
    for outcome in ("skipped", "error"):
        assert value(after, deliveries, outcome=outcome) == value(before, deliveries, outcome=outcome) + 1
    total = "orderflow_task_duration_seconds_sum"
    assert value(after, total, task="alerts.resend_stale_deliveries", outcome="success") > value(
        before, total, task="alerts.resend_stale_deliveries", outcome="success"
    )


@pytest.mark.django_db
def test_queue_depth_counts_the_messages_waiting_in_a_queue():
    from orderflow.celery import app

    name = f"metrics-test-{uuid.uuid4().hex[:8]}"
    queues = [*settings.CELERY_TASK_QUEUES, Queue(name)]
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        with override_settings(CELERY_TASK_QUEUES=queues):
            assert value(scrape(), "orderflow_queue_messages", queue=name) == 0
            for _ in range(3):
                app.send_task("metrics.test.never_run", queue=name)
            text = scrape()
        assert value(text, "orderflow_queue_messages", queue=name) == 3
        assert broker.llen(name) == 3  # what the broker itself says
        listed = {s.labels["queue"] for s in families(text)["orderflow_queue_messages"].samples}
        assert {q.name for q in settings.CELERY_TASK_QUEUES} | {name} == listed
    finally:
        broker.delete(name)


@pytest.mark.django_db
def test_outbox_backlog_and_lag_come_from_unpublished_events(store):
    before = value(scrape(), "orderflow_outbox_unpublished_events")
    # In this test's transaction, never committed: nobody publishes it.
    event = write_event("store.settings_changed", store=store, data={"metrics": "test"})
    Event.all_stores.filter(pk=event.pk).update(created_at=timezone.now() - timedelta(minutes=10))
    text = scrape()
    assert value(text, "orderflow_outbox_unpublished_events") == before + 1
    assert value(text, "orderflow_outbox_oldest_unpublished_age_seconds") >= 600


@pytest.mark.django_db
def test_breaker_state_follows_the_breaker(store):
    breaker.reset()
    try:
        assert value(scrape(), "orderflow_breaker_state", state="closed") == 1
        for _ in range(settings.BREAKER_FAILURE_THRESHOLD):
            breaker.record_failure(store.pk)
        text = scrape()
        assert value(text, "orderflow_breaker_state", state="open") == 1
        assert value(text, "orderflow_breaker_state", state="closed") == 0
        assert value(text, "orderflow_breaker_consecutive_failures") == settings.BREAKER_FAILURE_THRESHOLD
    finally:
        breaker.reset()


# ------------------------------------------------------------------- dashboard and alert rules

METRIC_NAME = re.compile(r"\borderflow_[a-z0-9_]+")
SUFFIXES = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"], "gauge": [""]}


def exprs(node) -> list[str]:
    """Every `expr` in a Grafana dashboard (any depth: panels, rows, targets)."""
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "expr" and isinstance(v, str)] + [
            e for v in node.values() for e in exprs(v)
        ]
    if isinstance(node, list):
        return [e for v in node for e in exprs(v)]
    return []


@pytest.mark.django_db
def test_the_dashboard_and_the_alert_rules_name_only_exposed_metrics():
    exposed = {
        family.name + suffix
        for family in text_string_to_metric_families(scrape())
        for suffix in SUFFIXES.get(family.type, [""])
    }
    dashboard = json.loads((ROOT / "deploy/grafana/orderflow.json").read_text())
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
    rule_exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    assert {"OrderflowQueueBacklogGrowing", "OrderflowBreakerOpen", "OrderflowOutboxLag"} <= alerts
    named = {m for e in exprs(dashboard) + rule_exprs for m in METRIC_NAME.findall(e)}
    assert named, "no metric names found"
    assert sorted(named - exposed) == []
    assert len(exprs(dashboard)) >= 10
