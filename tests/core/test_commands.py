"""Store and key commands are scriptable: idempotent, and the key alone on the last line."""

import io

import pytest
from django.core.management import CommandError, call_command

from orderflow.core.tenancy import ApiKey, Store
from tests.conftest import StoreClient

pytestmark = pytest.mark.django_db


def _run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_create_store_is_idempotent():
    assert "created store shop-1" in _run("create_store", "shop-1", "--name", "Shop One", "--currency", "usd")
    assert "already exists" in _run("create_store", "shop-1", "--name", "Other")
    store = Store.objects.get(slug="shop-1")
    assert (store.name, store.currency) == ("Shop One", "USD")


def test_create_store_refuses_a_bad_slug():
    with pytest.raises(CommandError):
        _run("create_store", "Not A Slug")
    assert not Store.objects.exists()


def test_create_api_key_prints_a_working_key_alone_on_the_last_line():
    _run("create_store", "shop-1")
    raw = _run("create_api_key", "shop-1").strip().splitlines()[-1]
    assert " " not in raw
    store = Store.objects.get(slug="shop-1")
    assert StoreClient(store, raw).get("/api/v1/store").status_code == 200
    assert not ApiKey.objects.filter(hashed_key=raw).exists()


def test_create_api_key_for_unknown_store_fails():
    with pytest.raises(CommandError):
        _run("create_api_key", "nope")


def test_dev_api_key_rotates_the_make_run_key():
    _run("create_store", "shop-1")
    first = _run("dev_api_key").split()[-1]
    second = _run("dev_api_key", "shop-1").split()[-1]
    store = Store.objects.get(slug="shop-1")
    assert StoreClient(store, first).get("/api/v1/store").status_code == 401
    assert StoreClient(store, second).get("/api/v1/store").status_code == 200


def test_dev_api_key_with_a_key_file_reuses_its_key_while_it_works(tmp_path):
    _run("create_store", "shop-1")
    path = tmp_path / "dev-api-key"
    first = _run("dev_api_key", "--key-file", str(path)).split()[-1]
    assert path.stat().st_mode & 0o777 == 0o600
    assert _run("dev_api_key", "--key-file", str(path)).split()[-1] == first
    store = Store.objects.get(slug="shop-1")
    assert StoreClient(store, first).get("/api/v1/store").status_code == 200
    assert ApiKey.objects.filter(store=store, name="make-run", revoked_at__isnull=True).count() == 1
    ApiKey.objects.filter(store=store).update(revoked_at="2026-01-01T00:00:00Z")  # revoked by an owner
    second = _run("dev_api_key", "--key-file", str(path)).split()[-1]
    assert second != first and path.read_text().split()[-1] == second
    assert StoreClient(store, second).get("/api/v1/store").status_code == 200
