"""Core writes an owner makes over the API: the store's API keys (the store's settings are in
`store_settings.py`). Each records who did it as an event, like every other change of a store."""

from __future__ import annotations

from django.db import transaction

from .errors import NotFound
from .events import emit
from .store_events import ApiKeyCreated, ApiKeyRevoked
from .tenancy import ApiKey, Store, create_api_key, revoke_api_key


def api_keys(store: Store):
    """The store's keys, newest first (revoked ones too: the owner sees what was cut off)."""
    return ApiKey.objects.filter(store=store).order_by("-created_at", "-pk")


def issue_api_key(*, store: Store, name: str, scope: str, actor: str) -> tuple[ApiKey, str]:
    """A new key of `scope` for `store`; the raw key is returned once and never stored."""
    with transaction.atomic():
        key, raw = create_api_key(store=store, name=name, scope=scope)
        emit(
            ApiKeyCreated(prefix=key.prefix, name=key.name, scope=key.scope),
            store=store,
            subject=key,
            subject_id=key.prefix,
            actor=actor,
        )
    return key, raw


def revoke_store_key(*, store: Store, prefix: str, actor: str) -> ApiKey:
    """Revoke the store's key `prefix` (another store's prefix is 404); revoking twice is a no-op."""
    with transaction.atomic():
        key = ApiKey.objects.select_for_update().filter(store=store, prefix=prefix).first()
        if key is None:
            raise NotFound("No API key with that prefix in this store.")
        if key.is_active:
            revoke_api_key(key=key)
            emit(
                ApiKeyRevoked(prefix=key.prefix, name=key.name, scope=key.scope),
                store=store,
                subject=key,
                subject_id=key.prefix,
                actor=actor,
            )
    return key
