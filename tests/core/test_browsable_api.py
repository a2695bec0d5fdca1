"""The browsable API in a browser: a signed-in member names the store with `?store=` or acts for
the one chosen on the dashboard (X-Store-ID still wins); DRF's login goes through the lockout;
`/api/v1/` lists the resources; `/` leads to the dashboard."""

from __future__ import annotations

import pytest

from orderflow.core.tenancy import STORE_SESSION_KEY, StoreMembership
from tests.dashboard.helpers import make_order
from tests.factories import make_user

pytestmark = pytest.mark.django_db

HTML = {"HTTP_ACCEPT": "text/html"}


@pytest.fixture
def member(client, store):
    client.force_login(make_user(store=store))
    return client


def test_a_member_browses_orders_with_store_in_the_query(member, store):
    order = make_order(store)
    r = member.get(f"/api/v1/orders?store={store.slug}", **HTML)
    assert r.status_code == 200 and r["Content-Type"].startswith("text/html")
    assert str(order.pk) in r.content.decode()
    r = member.get(f"/api/v1/orders/{order.pk}?store={store.slug}", **HTML)
    assert r.status_code == 200


def test_without_a_store_the_one_chosen_on_the_dashboard_is_used(member, store):
    order = make_order(store)
    assert member.get(f"/dashboard/?store={store.slug}").status_code == 200  # the dashboard remembers it
    assert member.session[STORE_SESSION_KEY] == store.slug
    r = member.get("/api/v1/orders", **HTML)
    assert r.status_code == 200 and str(order.pk) in r.content.decode()


def test_the_header_wins_over_the_query(member, store, other_store):
    mine = make_order(store)
    theirs = make_order(other_store)
    r = member.get(f"/api/v1/orders?store={other_store.slug}", HTTP_X_STORE_ID=store.slug)
    assert r.status_code == 200
    assert [o["id"] for o in r.json()["results"]] == [str(mine.pk)]
    r = member.get(f"/api/v1/orders?store={store.slug}", HTTP_X_STORE_ID=other_store.slug)
    assert r.status_code == 403 and str(theirs.pk) not in r.content.decode()


def test_a_non_members_store_is_403_and_anonymous_is_401(client, member, store, other_store):
    make_order(other_store)
    r = member.get(f"/api/v1/orders?store={other_store.slug}", **HTML)
    assert r.status_code == 403
    session = member.session
    session[STORE_SESSION_KEY] = other_store.slug  # a membership since revoked
    session.save()
    assert member.get("/api/v1/orders").status_code == 403
    member.logout()
    r = member.get(f"/api/v1/orders?store={store.slug}")
    assert r.status_code == 401 and r["WWW-Authenticate"].startswith("Bearer")


def test_a_member_of_two_stores_switches_with_the_query(member, store, other_store):
    user = StoreMembership.objects.get(store=store).user
    StoreMembership.objects.create(store=other_store, user=user)
    theirs = make_order(other_store)
    r = member.get(f"/api/v1/orders?store={other_store.slug}")
    assert [o["id"] for o in r.json()["results"]] == [str(theirs.pk)]


def test_the_api_root_lists_the_resources(client):
    r = client.get("/api/v1/")
    assert r.status_code == 200
    links = r.json()
    assert {"orders", "products", "inventory", "fulfillments", "alerts", "webhooks", "store", "keys"} <= set(
        links
    )
    assert links["orders"] == "http://testserver/api/v1/orders"
    assert not any("<" in route for route in links)  # lists only, no templated paths
    assert client.get("/api/v1/?store=store-a").json()["orders"].endswith("/api/v1/orders?store=store-a")
    assert client.get("/api/v1/", **HTML).status_code == 200


def test_the_site_root_leads_to_the_dashboard(client):
    r = client.get("/")
    assert r.status_code == 302 and r["Location"] == "/dashboard/"


def test_the_browsable_apis_login_link_works_and_is_locked_out_like_the_admin(client, store):
    make_user("ada", store=store, password="correct-horse-battery-staple")
    page = client.get(f"/api/v1/?store={store.slug}", **HTML).content.decode()
    assert "/api-auth/login/" in page
    assert client.get("/api-auth/login/").status_code == 200

    def login(password):
        return client.post(
            "/api-auth/login/", {"username": "ada", "password": password}, REMOTE_ADDR="203.0.113.9"
        )

    r = login("correct-horse-battery-staple")
    assert r.status_code == 302
    assert client.get(f"/api/v1/orders?store={store.slug}").status_code == 200
    client.logout()
    assert [login(f"wrong-{i}").status_code for i in range(5)] == [200, 200, 200, 200, 429]
    assert login("correct-horse-battery-staple").status_code == 429  # axes counts this form too
