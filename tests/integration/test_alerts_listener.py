"""End to end on a real Celery worker: a committed event opens an alert, the alert's own
`alert.opened` event fans out to a store's webhook, and a failing receiver is retried."""

import pytest
from django.db import transaction

from alerts import webhooks
from alerts.models import Alert, WebhookDelivery
from orderflow.core.events import write_event
from tests.alerts.support import WebhookReceiver
from tests.conftest import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def receiver():
    r = WebhookReceiver().start()
    yield r
    r.stop()


def test_committed_stock_event_opens_an_alert_and_its_webhook_is_retried_until_delivered(
    celery_worker, store, receiver
):
    _, secret = webhooks.create_endpoint(store=store, url=receiver.url, topics=["alert.opened"])
    receiver.respond_with(503)  # the first attempt fails: the worker retries with backoff

    with transaction.atomic():
        write_event("inventory.threshold_reached", store=store,
             data={"sku": "TSHIRT-M", "available": 2, "threshold": 5, "kind": "low_stock"})  # fmt: skip

    alert = wait_until(
        lambda: Alert.all_stores.filter(store=store, kind="low_stock", subject="sku:TSHIRT-M").first(),
        30,
        message="the low_stock alert",
    )
    assert (alert.status, alert.severity, alert.count) == ("open", "warning", 1)

    delivered = wait_until(
        lambda: WebhookDelivery.all_stores.filter(store=store, status="succeeded").first(),
        30,
        message="the alert.opened webhook delivered",
    )
    assert (delivered.topic, delivered.attempts, delivered.http_status) == ("alert.opened", 2, 200)
    assert [h["http_status"] for h in delivered.history] == [503, 200]
    last = receiver.requests[-1]
    assert last.signature_valid(secret)
    assert last.json["data"]["id"] == alert.pk and last.json["data"]["kind"] == "low_stock"
    assert {r.headers["X-OrderFlow-Delivery"] for r in receiver.requests} == {str(delivered.pk)}
