"""The bench store: a catalogue of N_PRODUCTS SKUs with huge stock (no benchmark runs out), an API
key, and an operator with a session (the websocket clients' cookie).

The store keeps the default fraud limits, so every count query of the fraud check stops at
limit + 1 as in production. Each order has its own email and its own card, the cards differing in
their last four (bench/loadgen.py); all come from 127.0.0.1, so the per-IP velocity rule hits
every order (20 points, plus 25 for a first order far above average: still approved, review
starts at 50). (Raising the limits to a billion instead, as this store once did, made each count
read every order of the hour from the one card and IP — O(N) per check, the soak's bottleneck —
which no store with real limits sees.)
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

from bench.common import HUGE_STOCK, N_PRODUCTS, STORE_SLUG


def sku(i: int) -> str:
    return f"BENCH-{i:04d}"


def seed() -> dict[str, Any]:
    from django.contrib.auth import get_user_model
    from django.test import Client

    from inventory.services import create_product
    from orderflow.core.tenancy import Store, StoreMembership, create_api_key, use_store

    store = Store.objects.create(
        slug=STORE_SLUG,
        name="Bench",
        currency="EUR",
        settings={"fraud_amount_limit": "100000.00"},
    )
    rng = random.Random(42)
    with use_store(store):
        for i in range(1, N_PRODUCTS + 1):
            create_product(
                store=store,
                sku=sku(i),
                name=f"Bench product {i}",
                price=Decimal(rng.randint(199, 4999)) / 100,
                initial_stock=HUGE_STOCK,
                low_stock_threshold=0,
                actor="bench",
            )
    _key, raw = create_api_key(store=store, name="bench")
    User = get_user_model()
    user = User.objects.create_user("bench-operator", "bench@example.com", "bench-operator-pw")
    StoreMembership.objects.create(store=store, user=user, role=StoreMembership.Role.OPERATOR)
    client = Client()
    client.force_login(user)
    return {
        "store": store.slug,
        "store_id": store.pk,
        "key": raw,
        "session": client.cookies["sessionid"].value,
        "skus": N_PRODUCTS,
    }
