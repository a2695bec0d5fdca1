"""A short-lived card vault: the card travels from intake to the payment worker through Redis only.

The contract says card data is never stored or logged: the order keeps brand and last four, the
`order.created` event carries no card, and a Celery message is no place for a PAN either (it sits
in the broker and in worker logs). So the intake puts the card here, keyed by (store, order), for
at most an hour; the payment step reads it when it charges and forgets it after a final outcome.
A payment that finds the card gone fails with `card_token_expired` (the shopper pays again).

The Redis is shared (cache, broker, channels), so what sits there is the number and expiry as JSON
encrypted with Fernet under `CARD_VAULT_KEY` — never the CVC (the charge does not send it) and
never a pickle (unpickling what a shared Redis hands back runs code). `CARD_VAULT_KEY` may list
several keys, comma-separated: the first encrypts, all decrypt (rotation). An entry that does not
decrypt — a key rotated away, or a pickled entry from before — reads as gone, the same path as an
expired one: its order fails with `card_token_expired` instead of crashing the worker.

It lives in core because both sides need it and neither may import the other: orders (intake,
upstream) writes, payments (downstream) reads.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured

log = logging.getLogger(__name__)

DEFAULT_TTL_SECONDS = 3600  # CARD_VAULT_TTL_SECONDS's default; the payment window never outlasts it
_FIELDS = ("card_number", "exp_month", "exp_year")  # what a charge may need: never the CVC
VAULT_KEY_PURPOSE = "orderflow.card-vault"


def derived_key(purpose: str) -> bytes:
    """32 bytes for one purpose, derived from SECRET_KEY: the key when no dedicated one is set.

    One derivation per purpose, so a key leaked from one use (say the fingerprint key) says
    nothing about another (the vault key)."""
    return _derive(settings.SECRET_KEY, purpose)


def _derive(secret: str, purpose: str) -> bytes:
    return hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).digest()


def _fernet() -> MultiFernet:
    return _fernet_for(settings.CARD_VAULT_KEY, settings.SECRET_KEY)


@lru_cache(maxsize=8)
def _fernet_for(configured: str, secret_key: str) -> MultiFernet:
    keys: list[str | bytes] = [k.strip() for k in configured.split(",") if k.strip()]
    if not keys:
        keys = [base64.urlsafe_b64encode(_derive(secret_key, VAULT_KEY_PURPOSE))]
    try:
        return MultiFernet([Fernet(k) for k in keys])
    except ValueError:
        raise ImproperlyConfigured(
            "CARD_VAULT_KEY must be one Fernet key (32 url-safe base64-encoded bytes, as "
            "`Fernet.generate_key()` makes) or several, comma-separated, the newest first."
        ) from None


def _key(store_id: Any, order_id: Any) -> str:
    store_pk = getattr(store_id, "pk", store_id)
    return f"vault:{store_pk}:{order_id}"


def _redis(key: str, *, write: bool = False) -> tuple[Any, str]:
    """The cache's own Redis client and the cache's full key. The raw client, because the cache
    API pickles every value it stores; the token is stored as the bytes it is."""
    return cache._cache.get_client(key, write=write), cache.make_and_validate_key(key)


def tokenize(store_id: Any, order_id: Any, card: dict[str, Any], ttl: int | None = None) -> str:
    """Keep the card for `ttl` seconds (default CARD_VAULT_TTL_SECONDS, which the payment window
    may not exceed: settings refuses to start otherwise) under the order's key; returns the key.

    Only the fields a charge needs are kept, as encrypted JSON. `store_id` may be a Store or its pk."""
    key = _key(store_id, order_id)
    kept = {name: card[name] for name in _FIELDS if name in card}
    token = _fernet().encrypt(json.dumps(kept, separators=(",", ":")).encode())
    client, full_key = _redis(key, write=True)
    client.set(full_key, token, ex=ttl or getattr(settings, "CARD_VAULT_TTL_SECONDS", DEFAULT_TTL_SECONDS))
    return key


def detokenize(store_id: Any, order_id: Any) -> dict[str, Any] | None:
    """The card kept for this order, or None when it expired, was forgotten, or cannot be read."""
    client, full_key = _redis(_key(store_id, order_id))
    raw = client.get(full_key)
    if raw is None:
        return None
    try:
        card = json.loads(_fernet().decrypt(raw))
    except (InvalidToken, ValueError, TypeError):
        log.warning("card vault entry of order %s unreadable (key rotated away?): card gone", order_id)
        return None
    return card if isinstance(card, dict) else None


def forget(store_id: Any, order_id: Any) -> None:
    """Drop the card: called once the payment has a final outcome."""
    cache.delete(_key(store_id, order_id))
