"""A short-lived card vault: the card travels from intake to the payment worker through Redis only.

The contract says card data is never stored or logged: the order keeps brand and last four, the
`order.created` event carries no card, and a Celery message is no place for a PAN either (it sits
in the broker and in worker logs). So the intake puts the card here, keyed by (store, order), for
at most an hour; the payment step reads it when it charges and forgets it after a final outcome.
A payment that finds the card gone fails with `card_token_expired` (the shopper pays again).

It lives in core because both sides need it and neither may import the other: orders (intake,
upstream) writes, payments (downstream) reads.
"""

from __future__ import annotations

from typing import Any

from django.core.cache import cache

DEFAULT_TTL_SECONDS = 3600
_FIELDS = ("card_number", "exp_month", "exp_year", "cvc")


def _key(store_id: Any, order_id: Any) -> str:
    store_pk = getattr(store_id, "pk", store_id)
    return f"vault:{store_pk}:{order_id}"


def tokenize(store_id: Any, order_id: Any, card: dict[str, Any], ttl: int = DEFAULT_TTL_SECONDS) -> str:
    """Keep the card for `ttl` seconds under the order's key; returns the key (the token).

    Only the fields a charge needs are kept. `store_id` may be a Store or its pk."""
    key = _key(store_id, order_id)
    cache.set(key, {name: card.get(name) for name in _FIELDS if name in card}, timeout=ttl)
    return key


def detokenize(store_id: Any, order_id: Any) -> dict[str, Any] | None:
    """The card kept for this order, or None when it expired or was forgotten."""
    return cache.get(_key(store_id, order_id))


def forget(store_id: Any, order_id: Any) -> None:
    """Drop the card: called once the payment has a final outcome."""
    cache.delete(_key(store_id, order_id))
