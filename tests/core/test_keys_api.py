"""`/api/v1/keys`: an owner signed in (or platform staff) lists, creates and revokes the store's
keys; keys themselves never can; one store's owner never reaches another store's keys."""

from __future__ import annotations

import pytest

from orderflow.core.events import Event
from orderflow.core.tenancy import ApiKey, StoreMembership, create_api_key
from tests.conftest import StoreClient
from tests.factories import make_key, make_user

pytestmark = pytest.mark.django_db


def _session(store, **kw) -> StoreClient:
    client = StoreClient(store, None)
    client.force_login(make_user("olga", store=store, password=None, **kw))
    return client


@pytest.fixture
def owner(store):
    return _session(store, role=StoreMembership.Role.OWNER)


def test_owner_creates_a_read_only_key_that_reads_but_cannot_write(owner, store):
    r = owner.post("/api/v1/keys", {"name": "reporting", "scope": "read_only"}, format="json")
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["scope"] == "read_only" and body["name"] == "reporting"
    assert body["key"].startswith(f"of_{body['prefix']}_")
    key = ApiKey.objects.get(prefix=body["prefix"], store=store)
    assert body["key"] not in key.hashed_key
    event = Event.all_stores.get(store=store, topic="api_key.created")
    assert event.actor == "olga" and event.data["scope"] == "read_only"

    reporting = StoreClient(store, body["key"])
    assert reporting.get("/api/v1/orders").status_code == 200
    r = reporting.post("/api/v1/products", {"sku": "X", "name": "X", "price": "1.00"}, format="json")
    assert r.status_code == 403


def test_the_list_never_shows_a_secret(owner, store, other_store):
    create_api_key(store=store, name="checkout")
    create_api_key(store=other_store, name="theirs")
    r = owner.get("/api/v1/keys")
    assert r.status_code == 200
    (row,) = r.json()
    assert set(row) == {"prefix", "name", "scope", "created_at", "last_used_at", "revoked_at"}
    assert row["name"] == "checkout" and row["scope"] == "full"


def test_a_revoked_key_stops_working_at_once(owner, store):
    raw = make_key(store)
    prefix = raw.split("_")[1]
    checkout = StoreClient(store, raw)
    assert checkout.get("/api/v1/store").status_code == 200
    r = owner.post(f"/api/v1/keys/{prefix}/revoke")
    assert r.status_code == 200 and r.json()["revoked_at"]
    assert checkout.get("/api/v1/store").status_code == 401
    assert owner.post(f"/api/v1/keys/{prefix}/revoke").status_code == 200  # again: a no-op
    assert Event.all_stores.filter(store=store, topic="api_key.revoked").count() == 1


def test_an_owner_cannot_revoke_another_stores_key(owner, other_store):
    raw = make_key(other_store)
    prefix = raw.split("_")[1]
    r = owner.post(f"/api/v1/keys/{prefix}/revoke")
    assert r.status_code == 404
    assert ApiKey.objects.get(prefix=prefix).revoked_at is None
    assert StoreClient(other_store, raw).get("/api/v1/store").status_code == 200


@pytest.mark.parametrize("scope", ["full", "read_only"])
def test_a_key_cannot_list_mint_or_revoke_keys(store, scope):
    client = StoreClient(store, make_key(store, scope=scope))
    victim = create_api_key(store=store, name="checkout")[0]
    assert client.get("/api/v1/keys").status_code == 403
    assert client.post("/api/v1/keys", {"name": "more", "scope": "full"}, format="json").status_code == 403
    assert client.post(f"/api/v1/keys/{victim.prefix}/revoke").status_code == 403
    assert ApiKey.objects.filter(store=store).count() == 2
    assert ApiKey.objects.get(pk=victim.pk).revoked_at is None


def test_platform_staff_manage_any_stores_keys(store):
    client = StoreClient(store, None)
    client.force_login(make_user(superuser=True, password=None))
    r = client.post("/api/v1/keys", {"name": "ops", "scope": "full"}, format="json")
    assert r.status_code == 201, r.content
    assert client.post(f"/api/v1/keys/{r.json()['prefix']}/revoke").status_code == 200


@pytest.mark.parametrize(
    "body, field",
    [({"name": "x", "scope": "admin"}, "scope"), ({"scope": "full"}, "name"), ({"name": "x"}, "scope")],
)
def test_bad_key_requests_are_400_and_make_nothing(owner, store, body, field):
    r = owner.post("/api/v1/keys", body, format="json")
    assert r.status_code == 400
    assert field in r.json()["error"]["fields"]
    assert not ApiKey.objects.filter(store=store).exists()
