"""Idempotency-Key: the same request replays the first response byte for byte; a different body
with the same key is 422; twins arriving together make one order."""

import hashlib
import hmac
import importlib
import json
import threading

import pytest
from django.db import connection

from orders.idempotency import fingerprint
from orders.models import IdempotencyRecord, Order
from tests.conftest import StoreClient
from tests.factories import make_key, make_product, order_body
from tests.orders.helpers import place, row_counts, stock


@pytest.fixture
def sku(store):
    make_product(store, "SKU-1", price="12.50", stock=50)
    return "SKU-1"


@pytest.mark.django_db
def test_same_key_same_body_replays_the_first_response_byte_for_byte(api, sku):
    body = order_body((sku, 2))
    first = place(api, body, key="key-1")
    assert first.status_code == 202
    assert "Idempotent-Replayed" not in first
    before = row_counts()
    again = place(api, body, key="key-1")
    assert again.status_code == 202
    assert again["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    assert again["Location"] == first["Location"]
    assert again["Content-Type"] == first["Content-Type"]
    assert row_counts() == before  # nothing new: no order, no reservation, no event
    assert Order.all_stores.count() == 1
    record = IdempotencyRecord.all_stores.get(key="key-1")
    assert record.replays == 1 and record.last_replayed_at is not None


@pytest.mark.django_db
def test_replay_stands_even_after_the_product_was_deactivated(api, store, sku):
    from inventory.services import update_product

    body = order_body((sku, 1))
    first = place(api, body, key="key-inactive")
    update_product(store=store, sku=sku, actor="test", active=False)
    again = place(api, body, key="key-inactive")
    assert again.status_code == 202 and again["Idempotent-Replayed"] == "true"
    assert again.content == first.content


@pytest.mark.django_db
def test_replay_ignores_key_order_and_whitespace_of_the_body(api, sku):
    body = order_body((sku, 1))
    first = place(api, body, key="key-2")
    reordered = dict(reversed(list(body.items())))
    again = api.post(
        "/api/v1/orders",
        __import__("json").dumps(reordered, indent=3),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="key-2",
    )
    assert again.status_code == 202 and again["Idempotent-Replayed"] == "true"
    assert again.content == first.content


@pytest.mark.django_db
def test_same_key_different_body_is_422_and_changes_nothing(api, sku):
    place(api, order_body((sku, 1)), key="key-3")
    before = row_counts()
    r = place(api, order_body((sku, 2)), key="key-3")
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "idempotency_key_reused"
    assert row_counts() == before
    assert stock(_product(sku)) == (50, 1)


def _product(sku):
    from inventory.models import Product

    return Product.all_stores.get(sku=sku)


@pytest.mark.django_db
def test_keys_are_per_store(api, api_b, store, other_store, sku):
    make_product(other_store, "SKU-1", stock=5)
    a = place(api, order_body((sku, 1)), key="shared-key")
    b = place(api_b, order_body((sku, 1)), key="shared-key")
    assert a.status_code == b.status_code == 202
    assert "Idempotent-Replayed" not in b
    assert a.json()["id"] != b.json()["id"]


@pytest.mark.django_db
def test_a_record_still_in_flight_answers_409_in_use(api, store, sku):
    """Our own claims are never visible in flight (claim and completion share one transaction);
    a record that is (an older deployment, a crashed future path) must not be replayed."""
    body = order_body((sku, 1))
    IdempotencyRecord.all_stores.create(store=store, key="busy", fingerprint=fingerprint(body))
    r = place(api, body, key="busy")
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "idempotency_key_in_use"
    assert Order.all_stores.count() == 0


@pytest.mark.django_db(transaction=True)
def test_twenty_identical_requests_at_once_make_exactly_one_order(store, sku):
    raw_key = make_key(store)
    body = order_body((sku, 3))
    n = 20
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def worker(i: int) -> None:
        client = StoreClient(store, raw_key)
        try:
            barrier.wait()
            results[i] = place(client, body, key="twin-key")
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Order.all_stores.count() == 1
    order = Order.all_stores.get()
    originals = [r for r in results if r.status_code == 202 and "Idempotent-Replayed" not in r]
    replays = [r for r in results if r.status_code == 202 and r.get("Idempotent-Replayed") == "true"]
    in_use = [
        r for r in results if r.status_code == 409 and r.json()["error"]["code"] == "idempotency_key_in_use"
    ]
    assert len(originals) == 1
    assert len(originals) + len(replays) + len(in_use) == n
    assert all(r.content == originals[0].content for r in replays)
    assert originals[0].json()["id"] == str(order.pk)
    assert stock(_product(sku)) == (50, 3)  # reserved once


@pytest.mark.django_db
@pytest.mark.parametrize(("lines", "limit"), [(1, 13), (20, 32)])
def test_query_count_per_order_is_bounded(api, store, lines, limit, django_assert_max_num_queries):
    """Measured: 1 line → 13, 20 lines → 32. That is the API-key lookup, the replay check, the
    test's SAVEPOINT pair, and in the order's transaction: claim, catalogue, number, order, all
    lines (one bulk insert), one ledger insert, the event, the stored response. Only inventory's conditional
    UPDATE per SKU (the no-oversell guarantee) grows with the lines."""
    for i in range(lines):
        make_product(store, f"Q-{i}", stock=10)
    place(api, order_body(("Q-0", 1)))  # warm-up: API key touch, order-number sequence creation
    body = order_body(*[(f"Q-{i}", 1) for i in range(lines)])
    with django_assert_max_num_queries(limit):
        assert place(api, body).status_code == 202


# ------------------------------------------------------------------ the fingerprint holds no card


def _canonical_sha256(body) -> str:
    """What the fingerprint was before it was keyed: a plain hash of the whole body."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def test_fingerprint_is_equal_for_identical_bodies_whatever_their_key_order():
    body = order_body(("A", 1), email="a@example.com")
    assert fingerprint(body) == fingerprint(json.loads(json.dumps(body)))
    assert fingerprint(body) == fingerprint(dict(reversed(list(body.items()))))


@pytest.mark.parametrize(
    "change",
    [
        lambda b: b["items"][0].update(quantity=2),
        lambda b: b["items"].append({"sku": "B", "quantity": 1}),
        lambda b: b["customer"].update(email="b@example.com"),
        lambda b: b["payment"].update(card_number="4000056655665556"),  # another last four
        lambda b: b["payment"].update(card_number="5555555555554444"),  # another brand and last four
        lambda b: b["payment"].pop("card_number"),
    ],
)
def test_fingerprint_differs_when_the_order_would_differ(change):
    body = order_body(("A", 1), email="a@example.com")
    other = json.loads(json.dumps(body))
    change(other)
    assert fingerprint(body) != fingerprint(other)


@pytest.mark.parametrize(
    "change",
    [
        lambda b: b["payment"].update(card_number="4111111111114242"),  # middle digits only
        lambda b: b["payment"].update(card_number="4242 4242 4242 4242"),  # as people type it
        lambda b: b["payment"].update(cvc="999"),
        lambda b: b["payment"].update(exp_month=1, exp_year=2040),
        lambda b: b["payment"].update(extra="anything"),
    ],
)
def test_fingerprint_is_equal_when_only_what_the_order_does_not_keep_of_the_card_differs(change):
    body = order_body(("A", 1), email="a@example.com")
    other = json.loads(json.dumps(body))
    change(other)
    assert fingerprint(body) == fingerprint(other)


def test_fingerprint_is_a_keyed_hmac_over_the_body_with_brand_and_last_four_only(settings):
    body = order_body(("A", 1), email="a@example.com")
    reduced = {**body, "payment": {"brand": "visa", "last4": "4242"}}
    canonical = json.dumps(reduced, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    settings.IDEMPOTENCY_FINGERPRINT_KEY = "configured-fingerprint-key"
    expected = hmac.new(b"configured-fingerprint-key", canonical.encode(), hashlib.sha256).hexdigest()
    assert fingerprint(body) == expected
    assert fingerprint(body) != _canonical_sha256(body)

    settings.IDEMPOTENCY_FINGERPRINT_KEY = ""  # derived from SECRET_KEY, for this purpose only
    derived = hmac.new(settings.SECRET_KEY.encode(), b"orderflow.idempotency-fingerprint", hashlib.sha256)
    assert fingerprint(body) == hmac.new(derived.digest(), canonical.encode(), hashlib.sha256).hexdigest()
    settings.SECRET_KEY = "another-secret-key-" + "x" * 40
    assert fingerprint(body) != expected


@pytest.mark.parametrize("payment", ["4242424242424242", 4242424242424242, ["4242424242424242"], None])
def test_fingerprint_of_a_malformed_payment_never_holds_the_number(payment, settings):
    """The fingerprint is taken before validation, so the card may come in any shape."""
    settings.IDEMPOTENCY_FINGERPRINT_KEY = "k"
    body = {**order_body(("A", 1)), "payment": payment}
    assert len(fingerprint(body)) == 64
    as_int = {**order_body(("A", 1)), "payment": {"card_number": 4242424242424242, "cvc": 123}}
    assert fingerprint(as_int) == fingerprint({**as_int, "payment": {"card_number": "4242424242424242"}})


@pytest.mark.django_db
def test_a_retry_typing_the_same_card_with_spaces_replays_and_the_record_holds_no_plain_hash(api, sku):
    body = order_body((sku, 1))
    first = place(api, body, key="spaced")
    spaced = {**body, "payment": {**body["payment"], "card_number": "4242 4242 4242 4242"}}
    again = place(api, spaced, key="spaced")
    assert again.status_code == 202 and again["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    record = IdempotencyRecord.all_stores.get(key="spaced")
    assert record.fingerprint == fingerprint(body) != _canonical_sha256(body)


@pytest.mark.django_db
def test_a_record_from_before_keyed_fingerprints_replays_whatever_the_body(api, store, sku):
    """Migration 0005 blanked the plain hashes; such a key still replays (no 422 across the
    deploy, which could make a client place the order again under a new key)."""
    first = place(api, order_body((sku, 1)), key="pre-deploy")
    IdempotencyRecord.all_stores.filter(key="pre-deploy").update(fingerprint="")
    again = place(api, order_body((sku, 1)), key="pre-deploy")
    assert again.status_code == 202 and again["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    assert Order.all_stores.count() == 1


@pytest.mark.django_db
def test_the_migration_blanks_every_unkeyed_fingerprint(store):
    from django.apps import apps

    migration = importlib.import_module("orders.migrations.0005_forget_unkeyed_fingerprints")
    body = order_body(("A", 1))
    old = _canonical_sha256(body)
    IdempotencyRecord.all_stores.create(store=store, key="old", fingerprint=old, state="done")
    migration.blank_fingerprints(apps, None)
    assert list(IdempotencyRecord.all_stores.values_list("fingerprint", flat=True)) == [""]
