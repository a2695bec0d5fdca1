"""POST /api/v1/carriers/<carrier>/webhook: signed, idempotent, in order, no store header."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from fulfillment.models import CarrierEvent
from orders.models import Order
from tests.fulfillment.helpers import shipment_in, shipped, signed

pytestmark = pytest.mark.django_db


def payload(s, status="in_transit", event_id="evt-1", occurred_at=None):
    return {
        "tracking_number": s.tracking_number,
        "status": status,
        "occurred_at": (occurred_at or timezone.now()).isoformat(),
        "event_id": event_id,
    }


def post(client, body: bytes, signature: str | None, carrier="dhl"):
    headers = {"HTTP_X_CARRIER_SIGNATURE": signature} if signature is not None else {}
    return client.post(
        f"/api/v1/carriers/{carrier}/webhook", body, content_type="application/json", **headers
    )


def test_valid_signature_applies_the_update(client, store):
    s = shipped(store)
    r = post(client, *signed("dhl", payload(s)))
    assert r.status_code == 200
    assert r.json() == {
        "status": "applied",
        "reason": "applied",
        "tracking_number": s.tracking_number,
        "shipment_status": "in_transit",
    }
    s.refresh_from_db()
    assert s.status == "in_transit"


def test_wrong_signature_is_401_and_changes_nothing(client, store):
    s = shipped(store)
    body, _ = signed("dhl", payload(s))
    _, other_sig = signed("ups", payload(s))  # signed with another carrier's secret
    r = post(client, body, other_sig)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_signature"
    s.refresh_from_db()
    assert s.status == "label_created" and not CarrierEvent.all_stores.exists()


def test_signature_over_different_bytes_is_401(client, store):
    s = shipped(store)
    body, sig = signed("dhl", payload(s))
    tampered = body.replace(b"in_transit", b"exception")
    assert post(client, tampered, sig).status_code == 401


def test_missing_signature_is_401(client, store):
    s = shipped(store)
    body, _ = signed("dhl", payload(s))
    r = post(client, body, None)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_signature"


def test_replayed_event_id_is_200_ignored(client, store):
    s = shipped(store)
    body, sig = signed("dhl", payload(s))
    assert post(client, body, sig).json()["status"] == "applied"
    r = post(client, body, sig)
    assert r.status_code == 200
    assert r.json()["status"] == "ignored" and r.json()["reason"] == "duplicate_event"
    assert CarrierEvent.all_stores.count() == 1


def test_out_of_order_update_is_200_ignored(client, store):
    s = shipped(store)
    now = timezone.now()
    post(client, *signed("dhl", payload(s, "in_transit", "e2", now + timedelta(minutes=10))))
    post(client, *signed("dhl", payload(s, "out_for_delivery", "e3", now + timedelta(minutes=20))))
    late = post(client, *signed("dhl", payload(s, "in_transit", "e1", now + timedelta(minutes=5))))
    assert late.status_code == 200
    assert late.json()["status"] == "ignored" and late.json()["reason"] == "out_of_order"
    s.refresh_from_db()
    assert s.status == "out_for_delivery"


def test_update_that_skips_the_machine_is_200_ignored(client, store):
    s = shipped(store)
    r = post(client, *signed("dhl", payload(s, "delivered", "e9")))
    assert r.status_code == 200 and r.json()["reason"] == "not_a_forward_transition"
    assert Order.all_stores.get(pk=s.order_id).status == "shipped"


def test_delivered_update_delivers_the_order(client, store):
    s = shipment_in(store, "out_for_delivery")
    r = post(client, *signed("dhl", payload(s, "delivered", "e-del", timezone.now() + timedelta(seconds=5))))
    assert r.json()["status"] == "applied"
    assert Order.all_stores.get(pk=s.order_id).status == "delivered"


def test_unknown_tracking_number_is_404(client, store):
    shipped(store)
    body, sig = signed("dhl", {**payload(shipped(store)), "tracking_number": "DHL999999999999"})
    r = post(client, body, sig)
    assert r.status_code == 404 and not CarrierEvent.all_stores.exists()


def test_unknown_carrier_is_404(client, store):
    s = shipped(store)
    body, sig = signed("dhl", payload(s))
    assert post(client, body, sig, carrier="pigeon").status_code == 404


def test_tracking_number_of_another_carrier_is_404(client, store):
    s = shipped(store)  # a DHL parcel
    r = post(client, *signed("ups", payload(s)), carrier="ups")
    assert r.status_code == 404


@pytest.mark.parametrize(
    "change, field",
    [
        ({"status": "teleported"}, "status"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
        ({"event_id": ""}, "event_id"),
    ],
)
def test_signed_but_invalid_body_is_400_with_fields(client, store, change, field):
    s = shipped(store)
    r = post(client, *signed("dhl", {**payload(s), **change}))
    assert r.status_code == 400 and field in r.json()["error"]["fields"]


def test_signed_malformed_json_is_400(client, store):
    shipped(store)
    r = post(client, *signed("dhl", b"{not json"))
    assert r.status_code == 400


def test_webhook_needs_no_store_header_and_ignores_a_store_key(api, store):
    s = shipped(store)
    body, sig = signed("dhl", payload(s))
    r = api.post(
        "/api/v1/carriers/dhl/webhook", body, content_type="application/json", HTTP_X_CARRIER_SIGNATURE=sig
    )
    assert r.status_code == 200 and r.json()["status"] == "applied"


def test_webhook_body_is_json(client, store):
    s = shipped(store)
    body, sig = signed("dhl", json.dumps(payload(s)).encode())
    r = client.post(
        "/api/v1/carriers/dhl/webhook", body, content_type="text/plain", HTTP_X_CARRIER_SIGNATURE=sig
    )
    assert r.status_code == 415
