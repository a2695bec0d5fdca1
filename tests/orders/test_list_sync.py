"""Incremental sync: the orders and events lists paged by cursor (Stripe's `limit`,
`starting_after`, `ending_before`, `has_more`), stable under inserts, on an index at any depth;
`updated_after` and the other list filters, declared with django-filter."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orderflow.core.events import Event, write_event
from orderflow.core.statemachine import transition
from orders.models import Order
from orders.services import record_fulfillment_progress, record_payment_progress

pytestmark = pytest.mark.django_db

_numbers = iter(range(1, 10**9))


def make_orders(store, n: int, *, at=None, **fields) -> list[Order]:
    """`n` order rows straight into the table (the list reads rows; intake is tested elsewhere)."""
    rows = [
        Order(
            store=store,
            number=next(_numbers),
            customer_email=f"c{i}@example.com",
            customer_name="Ada",
            shipping_line1="1 Main St",
            shipping_city="Berlin",
            shipping_postal_code="10115",
            shipping_country="DE",
            currency="EUR",
            subtotal=Decimal("1.00"),
            total=Decimal("1.00"),
            **fields,
        )
        for i in range(n)
    ]
    made = Order.all_stores.bulk_create(rows)
    if at is not None:  # several orders in one instant: the id must break the tie
        Order.all_stores.filter(pk__in=[o.pk for o in made]).update(created_at=at)
    return made


def newest_first(store) -> list[str]:
    return [
        str(pk)
        for pk in Order.all_stores.filter(store=store)
        .order_by("-created_at", "-id")
        .values_list("pk", flat=True)
    ]


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [o["id"] for o in response.json()["results"]]


# ----------------------------------------------------------------------------------- walking


def test_walking_forward_then_backward_sees_every_order_once_while_orders_arrive(api, store):
    tie = timezone.now() - timedelta(minutes=5)
    make_orders(store, 6, at=tie)  # one instant: ordered by id among themselves
    make_orders(store, 17)
    before = newest_first(store)

    seen, url, pages = [], "/api/v1/orders?limit=5", 0
    while url:
        r = api.get(url)
        seen += ids(r)
        body = r.json()
        assert body["has_more"] is (body["next"] is not None)
        url = body["next"]
        pages += 1
        make_orders(store, 2)  # new orders are newer than the walk's start: they never shift it
    assert seen == before and pages == 5  # 23 orders: 5+5+5+5+3, each exactly once, in order

    # Backward from the oldest: everything newer, including what arrived meanwhile.
    back, cursor = [], before[-1]
    while True:
        r = api.get(f"/api/v1/orders?limit=4&ending_before={cursor}")
        page = ids(r)
        back = page + back
        if not r.json()["has_more"]:
            break
        cursor = page[0]
        make_orders(store, 1)
    after = newest_first(store)
    assert back == after[: after.index(before[-1])] and len(set(back)) == len(back) > 22


def test_starting_after_and_ending_before_are_stripes(api, store):
    make_orders(store, 7)
    order = newest_first(store)
    r = api.get(f"/api/v1/orders?limit=2&starting_after={order[2]}")
    assert ids(r) == order[3:5] and r.json()["has_more"] is True
    assert f"ending_before={order[3]}" in r.json()["previous"]
    r = api.get(f"/api/v1/orders?limit=2&ending_before={order[4]}")
    assert ids(r) == order[2:4] and r.json()["has_more"] is True
    r = api.get(f"/api/v1/orders?limit=10&ending_before={order[2]}")
    assert ids(r) == order[:2] and r.json()["has_more"] is False and r.json()["previous"] is None
    r = api.get(f"/api/v1/orders?starting_after={order[-1]}")
    assert ids(r) == [] and r.json()["has_more"] is False and r.json()["next"] is None


def test_a_cursor_that_left_the_filter_still_continues_the_walk(api, store):
    make_orders(store, 4)
    order = newest_first(store)
    Order.all_stores.filter(pk=order[1]).update(status="paid")
    assert ids(api.get(f"/api/v1/orders?status=pending&starting_after={order[1]}")) == order[2:]


@pytest.mark.parametrize("param", ["starting_after", "ending_before"])
def test_unknown_malformed_or_another_stores_cursor_is_400(api, store, other_store, param):
    make_orders(store, 2)
    [theirs] = make_orders(other_store, 1)
    for cursor in (str(uuid.uuid4()), "not-an-id", str(theirs.pk)):
        r = api.get(f"/api/v1/orders?{param}={cursor}")
        assert r.status_code == 400, cursor
        error = r.json()["error"]
        assert error["code"] == "validation_error" and param in error["fields"]
        assert str(theirs.pk) not in r.content.decode()


@pytest.mark.parametrize(
    "query,field",
    [
        ("page=2", "page"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=x", "limit"),
        (f"starting_after={uuid.uuid4()}&ending_before={uuid.uuid4()}", "ending_before"),
    ],
)
def test_bad_paging_parameters_are_400_on_their_name(api, query, field):
    r = api.get(f"/api/v1/orders?{query}")
    assert r.status_code == 400
    assert field in r.json()["error"]["fields"]


# ------------------------------------------------------------------------------ the query


def test_a_page_deep_in_the_list_is_a_keyset_range_on_the_store_index(api, store, other_store):
    make_orders(store, 3000)
    make_orders(other_store, 500)
    with connection.cursor() as cur:
        cur.execute("ANALYZE orders_order")
    cursor = newest_first(store)[2500]
    with CaptureQueriesContext(connection) as ctx:
        r = api.get(f"/api/v1/orders?limit=20&starting_after={cursor}")
    assert len(ids(r)) == 20
    [page_sql] = [
        q["sql"] for q in ctx.captured_queries if 'FROM "orders_order"' in q["sql"] and "LIMIT 21" in q["sql"]
    ]
    assert "OFFSET" not in page_sql.upper()
    assert not any("COUNT(" in q["sql"].upper() for q in ctx.captured_queries)
    assert '("orders_order"."created_at", "orders_order"."id") <' in page_sql
    with connection.cursor() as cur:
        cur.execute("EXPLAIN " + page_sql)
        plan = "\n".join(row[0] for row in cur.fetchall())
    assert "order_store_created_id" in plan, plan
    assert "Seq Scan" not in plan and "Sort" not in plan, plan


# ---------------------------------------------------------------------------- updated_after


def test_every_change_moves_updated_at_and_updated_after_finds_it(api, store):
    [order, untouched] = make_orders(store, 2)
    Order.all_stores.filter(store=store).update(updated_at=timezone.now() - timedelta(hours=1))
    mark = timezone.now()
    stamp = mark.isoformat().replace("+00:00", "Z")
    assert ids(api.get(f"/api/v1/orders?updated_after={stamp}")) == []

    order.refresh_from_db()
    transition(order, "payment_processing", reason="test")
    order.refresh_from_db()
    assert order.updated_at >= mark
    assert ids(api.get(f"/api/v1/orders?updated_after={stamp}")) == [str(order.pk)]

    for step in (
        lambda o: record_payment_progress(order=o, status="processing"),
        lambda o: record_fulfillment_progress(order=o, status="picking"),
    ):
        Order.all_stores.filter(pk=untouched.pk).update(updated_at=mark - timedelta(hours=1))
        untouched.refresh_from_db()
        step(untouched)
        untouched.refresh_from_db()
        assert untouched.updated_at >= mark


def test_the_status_filters_take_lists_and_refuse_unknown_values(api, store):
    [a] = make_orders(store, 1)
    [b] = make_orders(store, 1, payment_status="succeeded", fulfillment_status="shipped")
    assert ids(api.get("/api/v1/orders?payment_status=succeeded")) == [str(b.pk)]
    assert set(ids(api.get("/api/v1/orders?payment_status=pending,succeeded"))) == {str(a.pk), str(b.pk)}
    assert ids(api.get("/api/v1/orders?fulfillment_status=unfulfilled")) == [str(a.pk)]
    for query in ("payment_status=lost", "fulfillment_status=lost", "updated_after=soon"):
        r = api.get(f"/api/v1/orders?{query}")
        assert r.status_code == 400 and query.split("=")[0] in r.json()["error"]["fields"]


# ----------------------------------------------------------------------------------- events


def test_an_orders_events_are_paged_by_id_oldest_first(api, store):
    [order, other] = make_orders(store, 2)
    for i in range(5):
        write_event(f"test.step{i}", store=store, order_id=order.pk, data={})
    foreign = write_event("test.other", store=store, order_id=other.pk, data={})
    url, topics = f"/api/v1/orders/{order.pk}/events?limit=2", []
    while url:
        r = api.get(url)
        assert r.status_code == 200
        topics += [e["topic"] for e in r.json()["results"]]
        url = r.json()["next"]
    assert topics == [f"test.step{i}" for i in range(5)]
    last = Event.all_stores.filter(order_id=order.pk).order_by("id").last()
    write_event("test.later", store=store, order_id=order.pk, data={})
    r = api.get(f"/api/v1/orders/{order.pk}/events?starting_after={last.pk}")
    assert [e["topic"] for e in r.json()["results"]] == ["test.later"]
    for cursor in (foreign.pk, 10**12, 10**30, "x"):  # another order's event, none, out of range, not an id
        r = api.get(f"/api/v1/orders/{order.pk}/events?starting_after={cursor}")
        assert r.status_code == 400 and "starting_after" in r.json()["error"]["fields"]


# ----------------------------------------------------------------------------------- schema


def test_the_schema_shows_the_paging_parameters_and_the_filters(client):
    schema = client.get("/api/schema/?format=json").json()
    params = {p["name"] for p in schema["paths"]["/api/v1/orders"]["get"]["parameters"]}
    assert params >= {
        "limit",
        "starting_after",
        "ending_before",
        "status",
        "payment_status",
        "fulfillment_status",
        "created_after",
        "created_before",
        "updated_after",
        "email",
        "search",
    }
    events = {p["name"] for p in schema["paths"]["/api/v1/orders/{order_id}/events"]["get"]["parameters"]}
    assert events >= {"limit", "starting_after", "ending_before"}
