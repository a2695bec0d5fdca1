"""Races over real HTTP: the last units of a SKU and one idempotency key, each fought over by
many concurrent buyers at the same instant."""

import time
import uuid
from collections import Counter

import pytest

from inventory.models import StockLevel
from orders.models import IdempotencyRecord, Order
from tests.factories import make_product, order_body
from tests.reliability.conftest import (
    PAID_OR_LATER,
    assert_invariants,
    error_shape_problems,
    make_shop,
    report,
    run_threads,
)

pytestmark = [pytest.mark.integration, pytest.mark.reliability]


def test_200_concurrent_buyers_for_the_last_10_units_exactly_10_are_accepted(rel, gateway):
    shop = make_shop(rel, "rel-oversell")
    make_product(shop.store, "LAST", price="19.90", stock=10)
    rel.start_worker()

    started = time.monotonic()
    responses = run_threads(200, lambda i: shop.api.post_order(order_body(("LAST", 1))))
    elapsed = time.monotonic() - started

    errors = [r for r in responses if isinstance(r, Exception)]
    assert not errors, errors[:3]
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {202: 10, 409: 190}, statuses
    refusals = [r for r in responses if r.status_code == 409]
    assert {r.json()["error"]["code"] for r in refusals} == {"insufficient_stock"}
    assert all(error_shape_problems(r) is None for r in refusals)
    assert all("LAST" in r.json()["error"].get("skus", ["LAST"]) for r in refusals)

    level = StockLevel.all_stores.get(store=shop.store, product__sku="LAST")
    assert level.on_hand - level.reserved == 0  # nothing available, whatever the pipeline did meanwhile
    assert Order.all_stores.filter(store=shop.store).count() == 10
    states = assert_invariants(shop.store, gateway)
    level.refresh_from_db()
    assert (level.on_hand, level.reserved) == (0, 0)  # all 10 paid: committed, nothing left over
    assert set(states) <= PAID_OR_LATER and sum(states.values()) == 10, states
    report("oversell", seconds=round(elapsed, 2), statuses=dict(statuses), states=states)


def test_50_concurrent_requests_with_one_idempotency_key_make_one_order_and_identical_replays(rel, gateway):
    shop = make_shop(rel, "rel-idem")
    make_product(shop.store, "TEE", price="9.99", stock=100)
    rel.start_worker()
    key, body = f"checkout-{uuid.uuid4()}", order_body(("TEE", 2))

    started = time.monotonic()
    responses = run_threads(50, lambda i: shop.api.post_order(body, key=key))
    elapsed = time.monotonic() - started

    errors = [r for r in responses if isinstance(r, Exception)]
    assert not errors, errors[:3]
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {202, 409}, statuses
    in_use = [r for r in responses if r.status_code == 409]
    assert all(r.json()["error"]["code"] == "idempotency_key_in_use" for r in in_use)
    accepted = [r for r in responses if r.status_code == 202]
    assert accepted, statuses
    originals = [r for r in accepted if r.headers.get("Idempotent-Replayed") != "true"]
    assert len(originals) == 1, f"{len(originals)} responses claim to be the original"
    assert {r.content for r in accepted} == {originals[0].content}  # byte-identical replays
    assert {r.headers["Location"] for r in accepted} == {originals[0].headers["Location"]}

    # and a late retry, after the dust settled, replays the same bytes too
    late = shop.api.post_order(body, key=key)
    assert late.status_code == 202 and late.headers["Idempotent-Replayed"] == "true"
    assert late.content == originals[0].content

    assert Order.all_stores.filter(store=shop.store).count() == 1
    assert IdempotencyRecord.all_stores.filter(store=shop.store).count() == 1
    level = StockLevel.all_stores.get(store=shop.store, product__sku="TEE")
    states = assert_invariants(shop.store, gateway)
    level.refresh_from_db()
    assert (level.on_hand, level.reserved) == (98, 0)
    report("idempotency", seconds=round(elapsed, 2), statuses=dict(statuses), states=states)
