"""Every rule of the contract: a bad field answers 400 with its JSON path and writes nothing."""

import copy
import uuid

import pytest

from orders.models import Order
from tests.factories import make_product, order_body
from tests.orders.helpers import place, row_counts

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalogue(store):
    make_product(store, "SKU-1", stock=5)
    make_product(store, "SKU-2", stock=5)
    make_product(store, "OLD", stock=5, active=False)
    make_product(store, "DOLLAR", stock=5, currency="USD")


def _set(body: dict, path: str, value) -> dict:
    body = copy.deepcopy(body)
    node = body
    parts = path.replace("]", "").replace("[", ".").split(".")
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node[part]
    last = parts[-1]
    if value is _DELETE:
        del node[int(last) if last.isdigit() else last]
    elif last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return body


_DELETE = object()

CASES = [
    ("customer.email", "not-an-email", "customer.email"),
    ("customer.email", _DELETE, "customer.email"),
    ("customer.name", "", "customer.name"),
    ("customer.name", "x" * 201, "customer.name"),
    ("customer", _DELETE, "customer"),
    ("items", [], "items"),
    ("items", "SKU-1", "items"),
    ("items[0].quantity", 0, "items[0].quantity"),
    ("items[0].quantity", 1001, "items[0].quantity"),
    ("items[0].quantity", "2", "items[0].quantity"),
    ("items[0].quantity", 2.0, "items[0].quantity"),
    ("items[0].quantity", True, "items[0].quantity"),
    ("items[0].quantity", _DELETE, "items[0].quantity"),
    ("items[0].sku", "NOPE", "items[0].sku"),
    ("items[0].sku", "OLD", "items[0].sku"),
    ("items[0].sku", 12, "items[0].sku"),
    ("items[1]", {"sku": "SKU-1", "quantity": 1}, "items[1].sku"),  # the same SKU twice
    ("shipping_address.line1", _DELETE, "shipping_address.line1"),
    ("shipping_address.city", "", "shipping_address.city"),
    ("shipping_address.postal_code", _DELETE, "shipping_address.postal_code"),
    ("shipping_address.country", "XX", "shipping_address.country"),
    ("shipping_address.country", "DEU", "shipping_address.country"),
    ("payment.card_number", "4242424242424241", "payment.card_number"),  # fails Luhn
    ("payment.card_number", "42424242", "payment.card_number"),  # too short
    ("payment.card_number", "4242abcd42424242", "payment.card_number"),
    ("payment.exp_month", 13, "payment.exp_month"),
    ("payment.exp_month", "12", "payment.exp_month"),
    ("payment.exp_year", 2020, "payment.exp_year"),
    ("payment.cvc", "12", "payment.cvc"),
    ("payment.cvc", "12345", "payment.cvc"),
    ("payment", _DELETE, "payment"),
    ("currency", "USD", "currency"),
    ("currency", "euro", "currency"),
    ("metadata", ["a"], "metadata"),
    ("metadata", {f"k{i}": i for i in range(51)}, "metadata"),
    ("metadata", {"blob": "x" * 5000}, "metadata"),
]


@pytest.mark.parametrize(
    ("path", "value", "error_path"), CASES, ids=[f"{c[0]}={str(c[1])[:20]}" for c in CASES]
)
def test_bad_field_is_400_with_its_path_and_writes_nothing(api, catalogue, path, value, error_path):
    body = order_body(("SKU-1", 1), ("SKU-2", 1))
    before = row_counts()
    r = place(api, _set(body, path, value))
    assert r.status_code == 400, r.content
    error = r.json()["error"]
    assert error["code"] == "validation_error"
    assert error_path in error["fields"], error["fields"]
    assert row_counts() == before


def test_too_many_lines_is_400_on_items(api, catalogue):
    body = order_body(*[(f"S{i}", 1) for i in range(101)])
    r = place(api, body)
    assert r.status_code == 400
    assert "items" in r.json()["error"]["fields"]


def test_product_priced_in_another_currency_is_400_on_currency(api, catalogue):
    r = place(api, order_body(("DOLLAR", 1)))
    assert r.status_code == 400
    assert "currency" in r.json()["error"]["fields"]


def test_all_problems_are_reported_together(api, catalogue):
    body = order_body(("NOPE", 1), ("SKU-1", 0))
    body["customer"]["email"] = "bad"
    body["shipping_address"]["country"] = "ZZ"
    body["payment"]["card_number"] = "1234567890123"
    r = place(api, body)
    assert r.status_code == 400
    assert set(r.json()["error"]["fields"]) >= {
        "customer.email",
        "items[0].sku",
        "items[1].quantity",
        "shipping_address.country",
        "payment.card_number",
    }


def test_expired_card_this_year_is_400(api, catalogue):
    from django.utils import timezone

    now = timezone.now()
    if now.month == 1:
        body = _set(order_body(("SKU-1", 1)), "payment.exp_year", now.year - 1)
        expected = "payment.exp_year"
    else:
        body = _set(order_body(("SKU-1", 1)), "payment.exp_year", now.year)
        body["payment"]["exp_month"] = now.month - 1
        expected = "payment.exp_month"
    r = place(api, body)
    assert r.status_code == 400
    assert expected in r.json()["error"]["fields"]


KEY_CASES = [
    (None, "idempotency_key_required"),
    ("", "idempotency_key_required"),
    ("k" * 256, "idempotency_key_invalid"),
    ("tab\there", "idempotency_key_invalid"),
    ("café", "idempotency_key_invalid"),
]


@pytest.mark.parametrize(
    ("key", "code"), KEY_CASES, ids=["missing", "empty", "too-long", "control-char", "non-ascii"]
)
def test_idempotency_key_is_required_and_printable(api, catalogue, key, code):
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
    before = row_counts()
    r = api.post("/api/v1/orders", order_body(("SKU-1", 1)), format="json", **headers)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == code
    assert row_counts() == before


def test_longest_allowed_key_is_accepted(api, catalogue):
    assert place(api, order_body(("SKU-1", 1)), key="k" * 255).status_code == 202


def test_malformed_json_is_400_and_form_body_is_415(api, catalogue):
    key = str(uuid.uuid4())
    r = api.post("/api/v1/orders", "{not json", content_type="application/json", HTTP_IDEMPOTENCY_KEY=key)
    assert r.status_code == 400 and r.json()["error"]["code"] == "malformed_json"
    r = api.post("/api/v1/orders", {"email": "a@b.co"}, format="multipart", HTTP_IDEMPOTENCY_KEY=key)
    assert r.status_code == 415
    assert Order.all_stores.count() == 0


def test_body_must_be_an_object(api, catalogue):
    r = place(api, [order_body(("SKU-1", 1))])
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "validation_error"
