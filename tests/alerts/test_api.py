"""Alerts API: list/filter, acknowledge, resolve, invalid transitions, tenancy."""

import pytest

from alerts import services
from alerts.models import Alert
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def _raise(store, subject="sku:A", kind="low_stock", severity="warning"):
    return services.raise_alert(store=store, kind=kind, subject=subject, severity=severity, message=subject)


def test_list_is_paginated_most_recently_seen_first(api, store):
    a = _raise(store, "sku:A")
    b = _raise(store, "sku:B")
    r = api.get("/api/v1/alerts")
    assert r.status_code == 200
    body = r.json()
    assert body["count"] == 2
    assert [x["id"] for x in body["results"]] == [b.pk, a.pk]
    first = body["results"][0]
    fields = (
        "kind severity subject message status count first_seen_at last_seen_at acknowledged_by resolved_at"
    )
    assert set(fields.split()) <= set(first)


@pytest.mark.parametrize(
    "query, expected",
    [
        ("status=open", {"sku:A", "gateway"}),
        ("status=acknowledged", {"sku:B"}),
        ("kind=gateway_down", {"gateway"}),
        ("severity=critical", {"gateway"}),
        ("status=resolved", set()),
        ("kind=low_stock&status=open", {"sku:A"}),
    ],
)
def test_list_filters_by_status_kind_and_severity(api, store, query, expected):
    _raise(store, "sku:A")
    services.acknowledge(store=store, alert=_raise(store, "sku:B"), actor="x")
    _raise(store, "gateway", kind="gateway_down", severity="critical")
    r = api.get(f"/api/v1/alerts?{query}")
    assert r.status_code == 200
    assert {x["subject"] for x in r.json()["results"]} == expected


def test_unknown_filter_value_is_400_validation_error(api):
    r = api.get("/api/v1/alerts?status=closed")
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "validation_error"
    assert "status" in r.json()["error"]["fields"]


def test_acknowledge_then_resolve(api, store):
    alert = _raise(store)
    r = api.post(f"/api/v1/alerts/{alert.pk}/acknowledge")
    assert r.status_code == 200
    assert r.json()["status"] == "acknowledged"
    assert r.json()["acknowledged_by"].startswith("api_key:")
    r = api.post(f"/api/v1/alerts/{alert.pk}/resolve")
    assert r.status_code == 200
    assert r.json()["status"] == "resolved" and r.json()["resolved_at"]


def test_acknowledging_twice_and_resolving_twice_are_200_no_ops(api, store):
    alert = _raise(store)
    first = api.post(f"/api/v1/alerts/{alert.pk}/acknowledge").json()
    again = api.post(f"/api/v1/alerts/{alert.pk}/acknowledge")
    assert again.status_code == 200 and again.json()["acknowledged_at"] == first["acknowledged_at"]
    resolved = api.post(f"/api/v1/alerts/{alert.pk}/resolve").json()
    again = api.post(f"/api/v1/alerts/{alert.pk}/resolve")
    assert again.status_code == 200 and again.json()["resolved_at"] == resolved["resolved_at"]


def test_acknowledging_a_resolved_alert_is_409_invalid_transition(api, store):
    alert = _raise(store)
    api.post(f"/api/v1/alerts/{alert.pk}/resolve")
    r = api.post(f"/api/v1/alerts/{alert.pk}/acknowledge")
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "invalid_transition"
    assert Alert.all_stores.get(pk=alert.pk).status == "resolved"


def test_another_stores_alert_is_404_and_invisible(api, api_b, store):
    alert = _raise(store)
    assert api_b.get("/api/v1/alerts").json()["count"] == 0
    for action in ("acknowledge", "resolve"):
        r = api_b.post(f"/api/v1/alerts/{alert.pk}/{action}")
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "not_found"
    assert Alert.all_stores.get(pk=alert.pk).status == "open"


def test_unknown_alert_id_is_404(api):
    assert api.post("/api/v1/alerts/999999/acknowledge").status_code == 404


def test_session_member_acts_as_their_username(client, store):
    user = make_user("ada", store=store)
    client.force_login(user)
    alert = _raise(store)
    r = client.post(f"/api/v1/alerts/{alert.pk}/acknowledge", HTTP_X_STORE_ID=store.slug)
    assert r.status_code == 200
    assert r.json()["acknowledged_by"] == "ada"


@pytest.mark.parametrize("url", ["/api/v1/alerts", "/api/v1/webhooks"])
def test_browsable_api_renders_the_lists(client, store, url):
    client.force_login(make_user(store=store, role="owner"))  # webhooks are the owner's to read
    r = client.get(url, HTTP_X_STORE_ID=store.slug, HTTP_ACCEPT="text/html")
    assert r.status_code == 200
    assert b"<html" in r.content.lower()
