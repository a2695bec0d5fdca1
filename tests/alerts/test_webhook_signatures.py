"""A real delivery verifies with code no one here wrote: Stripe's library checks the
`X-OrderFlow-Signature` header, the `standardwebhooks` library the `webhook-*` headers, each with the
secret the API showed once (docs/webhooks.md)."""

import json
import time

import pytest
import standardwebhooks
import stripe

from alerts import webhooks
from alerts.models import WebhookDelivery
from alerts.tasks import deliver_webhook
from tests.alerts.support import fire

pytestmark = pytest.mark.django_db


@pytest.fixture
def delivered(api, store, receiver):
    """One `order.created` delivered to the local receiver: (the secret the API showed, the request)."""
    created = api.post("/api/v1/webhooks", {"url": receiver.url, "topics": ["order.*"]}, format="json")
    assert created.status_code == 201, created.content
    fire(store, "order.created", {"total": "19.90"})
    delivery = WebhookDelivery.all_stores.get()
    assert deliver_webhook.apply(args=[str(delivery.pk), delivery.store_id]).get() == "succeeded"
    (request,) = receiver.requests
    return created.json()["secret"], request, delivery


def test_stripes_library_verifies_the_stripe_style_signature(delivered):
    secret, request, _ = delivered
    header = request.headers["X-OrderFlow-Signature"]
    assert stripe.WebhookSignature.verify_header(request.body.decode(), header, secret, tolerance=300)
    event = stripe.Webhook.construct_event(request.body, header, secret, tolerance=300)
    assert event["topic"] == "order.created" and event["data"]["total"] == "19.90"
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(
            request.body.decode(), header, "whsec_someone_else", tolerance=300
        )
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(request.body.decode() + " ", header, secret, tolerance=300)


def test_the_standardwebhooks_library_verifies_the_standard_headers(delivered):
    secret, request, delivery = delivered
    assert request.headers["webhook-id"] == str(delivery.pk) == request.headers["X-OrderFlow-Delivery"]
    stripe_t = request.headers["X-OrderFlow-Signature"].split(",")[0].removeprefix("t=")
    assert request.headers["webhook-timestamp"] == stripe_t
    # the spec's secret form ("whsec_" + base64 of the key) and the raw key bytes both verify
    for key in (webhooks.standard_webhooks_secret(secret), secret.encode()):
        payload = standardwebhooks.Webhook(key).verify(request.body, request.headers)
        assert payload == json.loads(request.body) and payload["topic"] == "order.created"
    other = standardwebhooks.Webhook(webhooks.standard_webhooks_secret("whsec_someone_else"))
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        other.verify(request.body, request.headers)
    tampered = dict(request.headers, **{"webhook-id": "another-id"})
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(secret.encode()).verify(request.body, tampered)


def test_an_old_timestamp_is_refused_by_both_libraries():
    """What the timestamps are for: a replay from long ago fails both checks."""
    secret, body, old = "whsec_test", b'{"topic":"order.created"}', int(time.time()) - 3600
    headers = webhooks.signature_headers(secret, "d-1", old, body)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(
            body.decode(), headers["X-OrderFlow-Signature"], secret, tolerance=300
        )
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(webhooks.standard_webhooks_secret(secret)).verify(body, headers)
