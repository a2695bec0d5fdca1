"""The bench store: a catalogue of N_PRODUCTS SKUs with huge stock (no benchmark runs out), an API
key, and an operator with a session (the websocket clients' cookie).

The store raises its fraud velocity limits: every benchmark order comes from 127.0.0.1 with the
same test card, which the default limits (rightly) send to review. The fraud check still runs
every rule and every count query; it just approves.
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

from bench.common import HUGE_STOCK, N_PRODUCTS, STORE_SLUG

BIG = 1_000_000_000


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
        settings={
            "fraud_velocity_email_limit": BIG,
            "fraud_velocity_card_limit": BIG,
            "fraud_velocity_ip_limit": BIG,
            "fraud_cards_per_email_limit": BIG,
            "fraud_amount_limit": "100000.00",
        },
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
