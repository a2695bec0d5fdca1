"""Fuzzing the live API from its own OpenAPI schema (schemathesis), then trying to cross stores.

Pass 1: every operation, store A's valid credentials, generated inputs: never a 5xx, every 4xx in
the contract's error shape. Pass 2: store B's key against store A's objects (their real ids, and
generated ones): 403/404 only, and no byte of store A's data in any answer."""

from __future__ import annotations

import time
import uuid

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from orders.models import Order
from tests.conftest import wait_until
from tests.factories import make_key, make_product, make_store, order_body
from tests.reliability.conftest import Api, assert_invariants, error_shape_problems, make_shop, report

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

MAX_EXAMPLES = 8
SECRET_EMAIL = f"secret-{uuid.uuid4().hex[:8]}@store-a.example"
SECRET_SKU = f"ASECRET-{uuid.uuid4().hex[:6].upper()}"


def fuzz(
    schema, base_url: str, headers: dict, *, methods: set[str], max_examples: int, check
) -> tuple[int, list]:
    """Run every operation of `schema` whose method is in `methods` through hypothesis-generated
    cases; `check(case, response)` returns a problem string or None. Returns (calls, problems)."""
    calls, problems = 0, []
    session = requests.Session()
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.method.lower() not in methods:
            continue

        @settings(
            max_examples=max_examples,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case) -> None:
            nonlocal calls
            # our credentials win over generated ones; keep a generated Idempotency-Key
            case.headers = {**(case.headers or {}), **headers}
            response = case.call(base_url=base_url, session=session, timeout=30)
            calls += 1
            problem = check(case, response)
            if problem:
                problems.append(f"{case.method.upper()} {case.formatted_path}: {problem}")

        run()
    return calls, problems


def contract_check(case, response) -> str | None:
    if response.status_code >= 500:
        return f"{response.status_code} {response.text[:300]}"
    if 400 <= response.status_code < 500:
        problem = error_shape_problems(response)
        if problem:
            return f"{response.status_code} not in the error shape: {problem}"
    return None


@pytest.fixture
def two_stores(rel, gateway):
    """Store A with an order that got paid and fulfilled (so it has a payment, a fulfillment, a
    movement history, an alert and a webhook endpoint); store B with its own key."""
    shop = make_shop(rel, "rel-fuzz-a")
    make_product(shop.store, SECRET_SKU, price="12.00", stock=6, threshold=5)
    rel.start_worker()
    r = shop.api.post_order(order_body((SECRET_SKU, 2), email=SECRET_EMAIL))
    assert r.status_code == 202, r.text
    order_id = r.json()["id"]
    hook = shop.api.post(
        "/api/v1/webhooks", {"url": "https://hooks.store-a.example/of", "topics": ["order.*"]}
    )
    assert hook.status_code == 201, hook.text
    wait_until(
        lambda: Order.all_stores.get(pk=order_id).status == "fulfilling", 60, message="order A fulfilling"
    )
    fulfillment = shop.api.get("/api/v1/fulfillments").json()["results"][0]
    alerts = shop.api.get("/api/v1/alerts").json()["results"]
    store_b = make_store("rel-fuzz-b", name="Fuzz B")
    api_b = Api(rel.url, store_b.slug, make_key(store_b))
    return {
        "shop": shop,
        "api_b": api_b,
        "order_id": order_id,
        "tracking_token": r.json()["tracking_token"],
        "webhook_id": hook.json()["id"],
        "fulfillment_id": fulfillment["id"],
        "alert_id": alerts[0]["id"] if alerts else None,
    }


def test_fuzzing_every_endpoint_never_answers_5xx_and_never_leaks_across_stores(rel, gateway, two_stores):
    shop, api_b = two_stores["shop"], two_stores["api_b"]
    schema = schemathesis.openapi.from_url(rel.url + "/api/schema/")
    started = time.monotonic()

    # ---- pass 1: store A's credentials, every operation
    calls_a, problems_a = fuzz(
        schema,
        rel.url,
        shop.api.headers(),
        methods={"get", "post", "put", "patch", "delete"},
        max_examples=MAX_EXAMPLES,
        check=contract_check,
    )
    pass1 = time.monotonic() - started

    # ---- pass 2a: store B's key on store A's real objects, every operation that takes an id
    ids = {
        "order_id": two_stores["order_id"],
        "sku": SECRET_SKU,
        "endpoint_id": two_stores["webhook_id"],
        "id": two_stores["fulfillment_id"],
        "alert_id": two_stores["alert_id"] or 0,
        "delivery_id": 1,
    }
    markers = [
        two_stores["order_id"],
        SECRET_SKU,
        SECRET_EMAIL,
        shop.store.slug,
        two_stores["tracking_token"],
    ]
    leaks, replayed = [], 0
    for result in schema.get_all_operations():
        op = result.ok()
        names = [p.name for p in op.path_parameters]
        if not names or op.path.startswith(("/api/v1/track/", "/api/v1/carriers/")):
            continue  # public by design: the tracking token is the credential; carriers sign
        path = op.path
        for name in names:
            path = path.replace("{" + name + "}", str(ids.get(name, "1")))
        for label, headers in (
            ("B's key", api_b.headers()),
            ("B's key naming store A", {**api_b.headers(), "X-Store-ID": shop.store.slug}),
        ):
            r = requests.request(op.method.upper(), rel.url + path, headers=headers, json={}, timeout=30)
            replayed += 1
            if r.status_code not in (403, 404) or error_shape_problems(r):
                leaks.append(f"{label}: {op.method.upper()} {path} → {r.status_code} {r.text[:200]}")
            # A marker the request itself carried (an id in the URL, echoed in "No product with
            # SKU '…'") tells the caller nothing it did not send: only other markers are leaks.
            elif any(m in r.text for m in markers if m not in path and m not in headers.values()):
                leaks.append(f"{label}: {op.method.upper()} {path} → store A's data in {r.text[:200]}")

    # ---- pass 2b: store B's key, generated GETs (lists, filters, random ids): nothing of A's
    def no_store_a_data(case, response) -> str | None:
        problem = contract_check(case, response)
        if problem:
            return problem
        found = [m for m in markers if m in response.text]
        return f"store A's data {found} in {response.text[:200]}" if found else None

    calls_b, problems_b = fuzz(
        schema, rel.url, api_b.headers(), methods={"get"}, max_examples=MAX_EXAMPLES, check=no_store_a_data
    )
    elapsed = time.monotonic() - started

    order = Order.all_stores.get(pk=two_stores["order_id"])
    assert order.status != "cancelled", "store B's key cancelled store A's order"
    report(
        "fuzz",
        seconds=round(elapsed, 1),
        pass1_seconds=round(pass1, 1),
        calls_store_a=calls_a,
        cross_store_replays=replayed,
        calls_store_b=calls_b,
        problems=len(problems_a) + len(problems_b) + len(leaks),
    )
    assert not problems_a, f"{len(problems_a)} contract violations:\n" + "\n".join(
        sorted(set(problems_a))[:40]
    )
    assert not leaks, "\n".join(leaks)
    assert not problems_b, "\n".join(sorted(set(problems_b))[:40])
    assert_invariants(shop.store, gateway)
