"""`GET/PATCH /api/v1/store`: the store and its settings; owners (and full keys) change them."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orderflow.core.events import Event
from orderflow.core.tenancy import Store, StoreMembership
from tests.conftest import StoreClient
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def _settings(store) -> dict:
    return Store.objects.get(pk=store.pk).settings


def _events(store) -> list[Event]:
    return list(Event.all_stores.filter(store=store, topic="store.settings_changed"))


@pytest.fixture
def owner(store):
    client = StoreClient(store, None)
    client.force_login(make_user("olga", store=store, role=StoreMembership.Role.OWNER, password=None))
    return client


def test_get_shows_the_effective_settings(api, store):
    store.settings = {"fraud_review_threshold": 30}
    store.save()
    body = api.get("/api/v1/store").json()
    assert (body["slug"], body["name"], body["currency"]) == ("store-a", "Store A", "EUR")
    assert body["settings"]["fraud_review_threshold"] == 30
    assert body["settings"]["fraud_reject_threshold"] == Store.DEFAULT_SETTINGS["fraud_reject_threshold"]
    assert body["settings"]["fraud_amount_limit"] == "1000.00"
    assert set(body["settings"]) == set(Store.DEFAULT_SETTINGS)


def test_get_with_a_key_costs_only_the_key_lookup(api):
    api.get("/api/v1/store")  # the key's first use stamps last_used_at
    with CaptureQueriesContext(connection) as queries:
        assert api.get("/api/v1/store").status_code == 200
    assert len(queries) == 1, [q["sql"] for q in queries]  # the key (with its store)


def test_owner_patches_settings_and_the_change_is_recorded(owner, store):
    r = owner.patch(
        "/api/v1/store",
        {
            "fraud_review_threshold": 40,
            "fraud_amount_limit": "250.00",
            "fraud_high_risk_countries": ["KP"],
            "fulfillment_autopilot": False,
            "order_expiry_minutes": 90,
        },
        format="json",
    )
    assert r.status_code == 200, r.content
    assert r.json()["settings"]["fraud_review_threshold"] == 40
    assert r.json()["settings"]["fulfillment_autopilot"] is False
    assert _settings(store) == {
        "fraud_review_threshold": 40,
        "fraud_amount_limit": "250.00",
        "fraud_high_risk_countries": ["KP"],
        "fulfillment_autopilot": False,
        "order_expiry_minutes": 90,
    }
    (event,) = _events(store)
    assert event.data["changes"]["fraud_review_threshold"] == {"from": 50, "to": 40}
    assert event.actor == "olga"
    assert owner.get("/api/v1/store").json()["settings"]["order_expiry_minutes"] == 90


def test_null_puts_any_setting_back_on_the_default(api, store):
    store.settings = {"order_expiry_minutes": 5, "fraud_amount_limit": "10.00", "fraud_check_enabled": False}
    store.save()
    body = {"order_expiry_minutes": None, "fraud_amount_limit": None, "fraud_check_enabled": None}
    r = api.patch("/api/v1/store", body, format="json")
    assert r.status_code == 200, r.content
    assert _settings(store) == {}
    settings = r.json()["settings"]
    assert settings["order_expiry_minutes"] is None  # follows ORDER_EXPIRY_MINUTES
    assert settings["fraud_amount_limit"] == "1000.00" and settings["fraud_check_enabled"] is True


def test_a_reset_threshold_is_checked_at_its_default(api, store):
    store.settings = {"fraud_review_threshold": 10, "fraud_reject_threshold": 20}
    store.save()
    r = api.patch("/api/v1/store", {"fraud_review_threshold": None}, format="json")  # default 50 > 20
    assert r.status_code == 400
    assert "fraud_review_threshold" in r.json()["error"]["fields"]
    assert _settings(store) == {"fraud_review_threshold": 10, "fraud_reject_threshold": 20}


def test_a_bad_list_item_is_named_in_plain_text(api):
    r = api.patch("/api/v1/store", {"fraud_high_risk_countries": ["KP", "iran"]}, format="json")
    messages = r.json()["error"]["fields"]["fraud_high_risk_countries"]
    assert messages and not any("ErrorDetail" in m or "{" in m for m in messages), messages


@pytest.mark.parametrize(
    "body, field",
    [
        ({"fraud_review_threshold": 101}, "fraud_review_threshold"),
        ({"fraud_review_threshold": 90, "fraud_reject_threshold": 60}, "fraud_review_threshold"),
        ({"fraud_amount_limit": "-1"}, "fraud_amount_limit"),
        ({"fraud_high_risk_countries": ["iran"]}, "fraud_high_risk_countries"),
        ({"order_expiry_minutes": "soon"}, "order_expiry_minutes"),
        ({"fraud_check": False}, "fraud_check"),  # misspelt: must not look applied
        (["fraud_check_enabled"], "non_field_errors"),
    ],
)
def test_bad_input_is_400_and_changes_nothing(api, store, body, field):
    store.settings = {"fraud_review_threshold": 30}
    store.save()
    r = api.patch("/api/v1/store", body, format="json")
    assert r.status_code == 400, r.content
    error = r.json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["fields"], error
    assert _settings(store) == {"fraud_review_threshold": 30}
    assert _events(store) == []


def test_patch_takes_json_only(api, store):
    r = api.patch(
        "/api/v1/store", "fraud_review_threshold=40", content_type="application/x-www-form-urlencoded"
    )
    assert r.status_code == 415
    assert r.json()["error"]["code"] == "unsupported_media_type"
    assert _settings(store) == {}


def test_operator_cannot_change_settings(store):
    client = StoreClient(store, None)
    client.force_login(make_user(store=store, password=None))  # operator
    r = client.patch("/api/v1/store", {"fraud_check_enabled": False}, format="json")
    assert r.status_code == 403
    assert _settings(store) == {}
