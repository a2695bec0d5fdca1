"""The payment window never outlasts the card vault (issue #15, item 1): a store's
`payment_window_minutes` above CARD_VAULT_TTL_SECONDS is refused by the settings API, and a
platform PAYMENT_WINDOW_MINUTES above it stops every process at start-up."""

from __future__ import annotations

import pytest
from django.conf import settings

from orderflow.core.tenancy import Store
from tests.core.test_secrets import SETUP, _finish, _start, production_env

pytestmark = pytest.mark.django_db


def test_a_store_window_longer_than_the_vault_keeps_the_card_is_refused(api, store):
    too_long = settings.CARD_VAULT_TTL_SECONDS // 60 + 1
    r = api.patch("/api/v1/store", {"payment_window_minutes": too_long}, format="json")
    assert r.status_code == 400
    [message] = r.json()["error"]["fields"]["payment_window_minutes"]
    assert "card vault" in message
    assert "payment_window_minutes" not in Store.objects.get(pk=store.pk).settings


def test_a_store_window_the_vault_covers_is_saved(api, store):
    longest = settings.CARD_VAULT_TTL_SECONDS // 60
    r = api.patch("/api/v1/store", {"payment_window_minutes": longest}, format="json")
    assert r.status_code == 200, r.content
    assert Store.objects.get(pk=store.pk).settings["payment_window_minutes"] == longest


def test_a_platform_window_longer_than_the_vault_ttl_refuses_to_start():
    refused = _start(*SETUP, env=production_env(PAYMENT_WINDOW_MINUTES="90", CARD_VAULT_TTL_SECONDS="3600"))
    started = _start(*SETUP, env=production_env(PAYMENT_WINDOW_MINUTES="60", CARD_VAULT_TTL_SECONDS="3600"))
    code, output = _finish(refused)
    assert code != 0
    assert "PAYMENT_WINDOW_MINUTES (90)" in output and "CARD_VAULT_TTL_SECONDS=3600" in output
    assert _finish(started)[0] == 0
