"""The admin's fulfillment and shipment pages, and their actions calling the services."""

import pytest

from fulfillment.models import Fulfillment, Shipment
from tests.factories import make_store, make_user
from tests.fulfillment.helpers import shipped, started, walk_to

pytestmark = pytest.mark.django_db

FS = Fulfillment.Status


@pytest.fixture
def staff(client):
    client.force_login(make_user(superuser=True))
    return client


def _act(client, model, action, objs):
    return client.post(
        f"/admin/fulfillment/{model}/",
        {"action": action, "_selected_action": [o.pk for o in objs]},
        follow=True,
    )


def test_changelists_and_detail_pages_render(staff, store):
    f = walk_to(store, FS.SHIPPED)
    s = Shipment.all_stores.get(fulfillment=f)
    for path in (
        "/admin/fulfillment/fulfillment/",
        "/admin/fulfillment/fulfillment/?status__exact=shipped",
        f"/admin/fulfillment/fulfillment/{f.pk}/change/",
        "/admin/fulfillment/shipment/",
        f"/admin/fulfillment/shipment/{s.pk}/change/",
    ):
        assert staff.get(path).status_code == 200, path


def test_admin_actions_walk_a_fulfillment_to_shipped(staff, store):
    f = started(store)
    for action, status in [
        ("pick_all", FS.PICKING),
        ("pack_one_parcel", FS.PACKED),
        ("mark_ready", FS.READY_TO_SHIP),
        ("ship_default_carrier", FS.SHIPPED),
    ]:
        assert _act(staff, "fulfillment", action, [f]).status_code == 200
        f.refresh_from_db()
        assert f.status == status
    assert Shipment.all_stores.get(fulfillment=f).carrier == "dhl"


def test_admin_action_out_of_order_is_refused_with_a_message(staff, store):
    f = started(store)
    r = _act(staff, "fulfillment", "mark_ready", [f])
    assert b"Refused" in r.content
    f.refresh_from_db()
    assert f.status == FS.PENDING


def test_admin_advances_a_shipment_and_reports_exceptions(staff, store):
    s = shipped(store)
    _act(staff, "shipment", "advance", [s])
    s.refresh_from_db()
    assert s.status == "in_transit"
    _act(staff, "shipment", "report_exception", [s])
    s.refresh_from_db()
    assert s.status == "exception"
    _act(staff, "shipment", "mark_returned", [s])
    s.refresh_from_db()
    assert s.status == "returned"


def test_store_operator_sees_only_their_stores_fulfillments(client, store):
    other = make_store("store-c")
    mine, theirs = started(store), started(other)
    client.force_login(make_user(store=store))  # staff, operator of store A, no Django model perms
    r = client.get("/admin/fulfillment/fulfillment/")
    assert r.status_code == 200
    assert [o.pk for o in r.context["cl"].result_list] == [mine.pk]
    assert client.get(f"/admin/fulfillment/fulfillment/{theirs.pk}/change/").status_code == 404
