"""A newcomer's rough edges (issue #16, item 10): units on numbers that have one, one wording for
the webhook log, Swagger UI in the dark theme, the recent orders and the tracking page that keep
themselves current."""

from __future__ import annotations

import re

import pytest

from dashboard.templatetags.dashboard_tags import days
from inventory.models import StockMovement
from orders.models import Order
from tests.dashboard.helpers import make_order
from tests.factories import make_product, make_user

pytestmark = pytest.mark.django_db


def test_days_of_cover_carry_their_unit(client, store):
    assert (days(12.5), days(1), days(None)) == ("12.5 days", "1 day", "—")
    product = make_product(store, "MUG", stock=25)
    StockMovement.all_stores.create(store=store, product=product, kind="commit", quantity=28)
    client.force_login(make_user(store=store))
    html = client.get(f"/dashboard/inventory/?store={store.slug}").content.decode()
    row = re.search(r'<tr data-sku="MUG".*?</tr>', html, re.S).group(0)
    assert re.search(r'<td class="num">\d+\.\d days</td>', row), row


def test_the_webhook_log_is_called_webhook_deliveries(client, store):
    client.force_login(make_user(store=store))
    html = client.get(f"/dashboard/integrity/?store={store.slug}").content.decode()
    assert "<h2>Webhook deliveries" in html
    assert "Outgoing webhook" not in html


def test_swagger_ui_follows_the_dark_theme(client):
    html = client.get("/api/docs/").content.decode()
    assert '<meta name="color-scheme" content="light dark">' in html
    assert "/static/dashboard/swagger-dark.css" in html
    assert 'id="swagger-ui"' in html  # still drf-spectacular's page
    css = client.get("/static/dashboard/swagger-dark.css")
    assert b"prefers-color-scheme: dark" in b"".join(css.streaming_content)


def test_the_tracking_page_refreshes_itself_until_the_order_is_final(client, store):
    order = make_order(store, status="shipped")
    r = client.get(f"/track/{order.tracking_token}")
    assert int(r["Refresh"]) > int(r["Cache-Control"].rsplit("=", 1)[1])  # each reload reads afresh
    assert "updates itself" in r.content.decode()
    Order.all_stores.filter(pk=order.pk).update(status="delivered")
    r = client.get(f"/track/{order.tracking_token}")
    assert "Refresh" not in r and "updates itself" not in r.content.decode()


def test_the_recent_orders_table_moves_with_the_events(client, store):
    """The table is drawn by overview.js from the stats and moved by every order event (the
    browser test watches it move); here: the page carries what the script needs."""
    make_order(store, status="paid")
    client.force_login(make_user(store=store))
    html = client.get(f"/dashboard/?store={store.slug}").content.decode()
    assert 'id="recent-orders"' in html and '"recent_orders": [' in html
