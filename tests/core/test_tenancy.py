"""Tenancy is enforced in one place: these tests try to cross it."""

import pytest

from orderflow.core.tenancy import (
    ApiKey,
    NoStoreInContext,
    find_api_key,
    hash_api_key,
    revoke_api_key,
    use_store,
)
from tests.conftest import StoreClient
from tests.factories import make_key, make_product, make_user

pytestmark = pytest.mark.django_db


def test_valid_key_reaches_its_store(api, store):
    r = api.get("/api/v1/store")
    assert r.status_code == 200
    assert r.json()["slug"] == store.slug


def test_missing_store_header_is_400_store_required(store):
    client = StoreClient(store, make_key(store))
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {client.raw_key}")
    r = client.get("/api/v1/store")
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "store_required"


def test_no_credential_and_no_store_header_is_401_before_the_store_check(client):
    r = client.get("/api/v1/orders")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "not_authenticated"
    assert r["WWW-Authenticate"].startswith("Bearer")


def test_a_bad_key_without_a_store_header_is_401(client, store):
    r = client.get("/api/v1/store", HTTP_AUTHORIZATION="Bearer of_nope")
    assert r.status_code == 401
    assert r["WWW-Authenticate"].startswith("Bearer")


def test_signed_in_user_without_store_header_is_400_store_required(client, store):
    user = make_user("owner@a.test", store=store, role="owner")
    client.force_login(user)
    r = client.get("/api/v1/store")
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "store_required"


def test_unknown_store_is_404_store_not_found(api):
    r = api.as_store("no-such-store").get("/api/v1/store")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "store_not_found"


def test_no_credentials_is_401(store):
    r = StoreClient(store, None).get("/api/v1/store")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "not_authenticated"


def test_key_of_store_a_for_store_b_is_403_forbidden(api, other_store):
    r = api.as_store(other_store.slug).get("/api/v1/store")
    assert r.status_code == 403
    assert r.json() == {"error": {"code": "forbidden", "message": "This key may not act for that store."}}


def test_revoked_key_is_401(store):
    raw = make_key(store)
    revoke_api_key(key=find_api_key(raw))
    r = StoreClient(store, raw).get("/api/v1/store")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "not_authenticated"


def test_forged_key_with_a_real_prefix_is_401(store):
    raw = make_key(store)
    forged = raw[:-4] + ("AAAA" if not raw.endswith("AAAA") else "BBBB")
    assert StoreClient(store, forged).get("/api/v1/store").status_code == 401


def test_key_is_stored_only_as_a_keyed_hash(store):
    raw = make_key(store)
    key = ApiKey.objects.get(store=store)
    assert raw not in (key.hashed_key, key.prefix)
    assert key.hashed_key == hash_api_key(raw)


def test_key_use_is_recorded(store):
    raw = make_key(store)
    StoreClient(store, raw).get("/api/v1/store")
    assert ApiKey.objects.get(store=store).last_used_at is not None


def test_session_member_may_open_the_store_non_member_may_not(client, store, other_store):
    user = make_user(store=store)
    client.force_login(user)
    assert client.get("/api/v1/store", HTTP_X_STORE_ID=store.slug).status_code == 200
    r = client.get("/api/v1/store", HTTP_X_STORE_ID=other_store.slug)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"


def test_superuser_may_open_any_store(client, other_store):
    client.force_login(make_user(superuser=True))
    assert client.get("/api/v1/store", HTTP_X_STORE_ID=other_store.slug).status_code == 200


def test_scoped_manager_fails_closed_without_a_store(store):
    from inventory.models import Product

    make_product(store, "A-1")
    with pytest.raises(NoStoreInContext):
        list(Product.objects.all())


def test_scoped_manager_sees_only_the_store_in_context(store, other_store):
    from inventory.models import Product

    make_product(store, "A-1")
    make_product(other_store, "B-1")
    with use_store(store):
        assert [p.sku for p in Product.objects.all()] == ["A-1"]
    with use_store(other_store):
        assert [p.sku for p in Product.objects.all()] == ["B-1"]
    assert sorted(p.sku for p in Product.objects.for_store(store)) == ["A-1"]
