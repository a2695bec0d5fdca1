"""Every API error leaves in the contract's shape, with the right status, and changes nothing."""

import logging

import pytest

from orderflow.core.tenancy import StoreKeyThrottle

pytestmark = pytest.mark.django_db


def _is_error(body: dict, code: str) -> bool:
    return (
        set(body) == {"error"} and body["error"]["code"] == code and isinstance(body["error"]["message"], str)
    )


def test_unknown_api_path_is_json_404(api):
    r = api.get("/api/v1/no-such-thing")
    assert r.status_code == 404 and _is_error(r.json(), "not_found")


def test_wrong_method_is_json_405(api):
    r = api.delete("/api/v1/store")
    assert r.status_code == 405 and _is_error(r.json(), "method_not_allowed")


def test_malformed_json_is_400(api):
    r = api.post("/api/v1/products", data='{"sku": "A",', content_type="application/json")
    assert r.status_code == 400 and _is_error(r.json(), "malformed_json")


def test_non_json_body_is_415(api):
    r = api.post("/api/v1/products", data="<xml/>", content_type="application/xml")
    assert r.status_code == 415 and _is_error(r.json(), "unsupported_media_type")


def test_body_over_the_limit_is_413_and_writes_nothing(api, settings):
    from inventory.models import Product

    settings.MAX_REQUEST_BODY_BYTES = 1024
    big = '{"sku": "BIG", "name": "' + "x" * 2000 + '", "price": "1.00"}'
    r = api.post("/api/v1/products", data=big, content_type="application/json")
    assert r.status_code == 413 and _is_error(r.json(), "payload_too_large")
    assert not Product.all_stores.filter(sku="BIG").exists()


def test_validation_error_names_fields_by_json_path(api):
    r = api.post("/api/v1/products", {"sku": "", "price": "abc"}, format="json")
    assert r.status_code == 400
    body = r.json()
    assert _is_error(body, "validation_error")
    assert "sku" in body["error"]["fields"] and "price" in body["error"]["fields"]


def test_unauthenticated_error_has_the_shape_and_a_challenge(store):
    from tests.conftest import StoreClient

    r = StoreClient(store, None).get("/api/v1/store")
    assert r.status_code == 401 and _is_error(r.json(), "not_authenticated")
    assert r.headers["WWW-Authenticate"].startswith("Bearer")


def test_rate_limit_is_429_per_key(api, store, monkeypatch):
    from tests.conftest import StoreClient
    from tests.factories import make_key

    monkeypatch.setattr(StoreKeyThrottle, "THROTTLE_RATES", {"store_key": "3/min"})
    codes = [api.get("/api/v1/store").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    r = api.get("/api/v1/store")
    assert _is_error(r.json(), "rate_limited") and int(r.headers["Retry-After"]) >= 1
    assert StoreClient(store, make_key(store)).get("/api/v1/store").status_code == 200, "limits are per key"


def test_every_request_is_logged_with_request_id_and_store(api, store, caplog):
    with caplog.at_level(logging.INFO, logger="orderflow.request"):
        r = api.get("/api/v1/store", HTTP_X_REQUEST_ID="req-123")
    assert r.headers["X-Request-ID"] == "req-123"
    lines = [rec for rec in caplog.records if rec.name == "orderflow.request"]
    assert len(lines) == 1
    assert lines[0].request_id == "req-123" and lines[0].store == store.slug
    assert "GET /api/v1/store 200" in lines[0].getMessage()


def test_nested_list_errors_are_reported_as_json_paths():
    from orderflow.core.errors import flatten_fields

    detail = {
        "items": {0: {"quantity": ["bad"]}, 2: {"sku": ["unknown"]}},
        "customer": {"email": ["invalid"]},
    }
    assert flatten_fields(detail) == {
        "items[0].quantity": ["bad"],
        "items[2].sku": ["unknown"],
        "customer.email": ["invalid"],
    }
    assert flatten_fields({"items": [{}, {"quantity": ["bad"]}]}) == {"items[1].quantity": ["bad"]}


def test_database_down_during_authentication_is_503_not_500(store, settings):
    """The tenancy middleware's key lookup is the first query of a request: a database that
    refuses connections is a dependency down."""
    from django.db import connection

    from tests.conftest import StoreClient
    from tests.factories import make_key

    raw = make_key(store)
    saved = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = "1"
    try:
        r = StoreClient(store, raw).get("/api/v1/store")
    finally:
        connection.close()
        connection.settings_dict["PORT"] = saved
    assert r.status_code == 503 and _is_error(r.json(), "service_unavailable")
