"""When a dependency is down or a value cannot be stored, the answer is clear and nothing is written."""

import pytest

from orders.models import Order
from tests.factories import make_product, order_body
from tests.orders.helpers import place, row_counts

pytestmark = pytest.mark.django_db


@pytest.fixture
def sku(store):
    return make_product(store, "DEP-1", stock=5).sku


def test_card_vault_down_refuses_the_order_with_503_and_writes_nothing(api, sku, settings):
    before = row_counts()
    dead = {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"}
    settings.CACHES = {"default": dead}
    r = place(api, order_body((sku, 1)), key="vault-down")
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "vault_unavailable"
    assert row_counts() == before, "no order, no reservation, no event, no idempotency record"


def test_an_order_refused_for_stock_keeps_no_card_in_the_vault(api, sku, store):
    from django.core.cache import cache

    before = set(cache._cache.get_client().scan_iter(f"*vault:{store.pk}:*"))
    r = place(api, order_body((sku, 6)), key="too-many")
    assert r.status_code == 409
    assert set(cache._cache.get_client().scan_iter(f"*vault:{store.pk}:*")) == before
    assert place(api, order_body((sku, 5)), key="enough").status_code == 202
    assert len(set(cache._cache.get_client().scan_iter(f"*vault:{store.pk}:*")) - before) == 1


def test_the_same_key_goes_through_once_the_vault_is_back(api, sku, settings):
    original = settings.CACHES
    settings.CACHES = {"default": {**original["default"], "LOCATION": "redis://127.0.0.1:1/0"}}
    assert place(api, order_body((sku, 1)), key="vault-retry").status_code == 503
    settings.CACHES = original
    assert place(api, order_body((sku, 1)), key="vault-retry").status_code == 202
    assert Order.all_stores.count() == 1


def test_nul_byte_in_a_value_is_a_400_not_a_500(api, sku):
    before = row_counts()
    r = place(api, order_body(("DEP\x00-1", 1)), key="nul-byte")
    assert r.status_code == 400
    assert r.json()["error"]["code"] in {"invalid_value", "validation_error"}
    assert row_counts() == before


def test_created_after_with_an_unusual_offset_is_normalised(api):
    r = api.get("/api/v1/orders", {"created_after": "3220-04-19T23:48:06-19:41"})
    assert r.status_code == 200 and r.json()["results"] == []


def test_created_after_accepts_a_bare_date_and_a_naive_datetime(api):
    for value in ("2025-01-31", "2025-01-31T12:00:00"):
        r = api.get("/api/v1/orders", {"created_after": value})
        assert r.status_code == 200, (value, r.content)
