"""The dashboard during a gateway outage (issue #15, item 5): an order waiting for the gateway
says so, with the outage's start and its window's end, not a climbing attempt count; the
integrity page lists the waiting orders in release order with the window each has left."""

from datetime import timedelta

import pytest
from django.utils import timezone

from payments import breaker
from payments.models import Payment
from tests.dashboard.helpers import make_order
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def waiting_order(store, *, since, ends, attempts=2):
    order = make_order(store, status="payment_processing", payment_status="waiting")
    Payment.all_stores.create(
        store=store,
        order=order,
        amount=order.total,
        currency=order.currency,
        idempotency_key=f"charge-{order.pk}",
        status=Payment.Status.PROCESSING,
        attempts=attempts,
        waiting_since=since,
        window_ends_at=ends,
        next_retry_at=timezone.now() + timedelta(seconds=20),
    )
    return order


def hhmm(moment) -> str:
    return timezone.localtime(moment).strftime("%H:%M")


def test_the_order_page_says_the_order_waits_for_the_gateway_not_how_many_attempts(client, store):
    breaker.reset()  # no breaker opening on record: the wait's own start is the outage's start
    now = timezone.now()
    since, ends = now - timedelta(minutes=10), now + timedelta(minutes=50)
    order = waiting_order(store, since=since, ends=ends, attempts=2)
    client.force_login(make_user(store=store))

    page = client.get(f"/dashboard/orders/{order.pk}/").content.decode()

    assert f"waiting for the gateway (down since {hhmm(since)}, window ends {hhmm(ends)})" in page
    assert 'id="payment-waiting"' in page
    assert "2 attempts" not in page and "next attempt" not in page


def test_the_order_page_dates_the_outage_from_the_breaker_opening(client, store):
    breaker.reset()
    now = timezone.now()
    opened = now - timedelta(minutes=30)
    breaker.client().set(breaker.K_OPENED_AT, opened.timestamp())
    breaker.client().set(breaker.K_OPEN_UNTIL, (now + timedelta(seconds=10)).timestamp())
    order = waiting_order(store, since=now - timedelta(minutes=5), ends=now + timedelta(minutes=55))
    client.force_login(make_user(store=store))
    try:
        page = client.get(f"/dashboard/orders/{order.pk}/").content.decode()
    finally:
        breaker.reset()

    assert f"down since {hhmm(opened)}," in page


def test_the_integrity_page_lists_waiting_orders_oldest_first_with_the_window_left(client, store):
    breaker.reset()
    now = timezone.now()
    later = waiting_order(store, since=now - timedelta(minutes=2), ends=now + timedelta(minutes=58))
    first = waiting_order(store, since=now - timedelta(minutes=10), ends=now + timedelta(minutes=50))
    make_order(store, status="paid", payment_status="succeeded", paid_at=now)  # not waiting
    client.force_login(make_user(store=store))

    body = client.get("/dashboard/integrity/?format=json").json()
    rows = body["waiting_payments"]
    assert [r["number"] for r in rows] == [first.number, later.number]
    assert 2900 < rows[0]["window_left_seconds"] <= 3000
    assert 3380 < rows[1]["window_left_seconds"] <= 3480

    page = client.get("/dashboard/integrity/").content.decode()
    assert 'id="waiting-count">2<' in page
    table = page.split('id="waiting"', 1)[1].split("</table>", 1)[0]
    assert f"#{first.number}</a>" in table and f"#{later.number}</a>" in table
    assert table.index(f"#{first.number}<") < table.index(f"#{later.number}<")
    assert hhmm(now + timedelta(minutes=50)) in table and " min<" in table
