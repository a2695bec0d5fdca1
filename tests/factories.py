"""Test data built through the real models (and services where they exist)."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.contrib.auth import get_user_model

from inventory.models import Product, StockLevel, StockMovement
from orderflow.core.tenancy import ApiKey, Store, StoreMembership, create_api_key


def make_store(slug: str | None = None, **kw) -> Store:
    slug = slug or f"store-{uuid.uuid4().hex[:8]}"
    return Store.objects.create(slug=slug, name=kw.pop("name", slug.title()), **kw)


def make_key(store: Store, scope: str = ApiKey.Scope.FULL) -> str:
    return create_api_key(store=store, name="test", scope=scope)[1]


def make_user(
    username: str | None = None,
    *,
    store: Store | None = None,
    superuser: bool = False,
    password="pw",
    role: str = StoreMembership.Role.OPERATOR,
):
    """A staff user; with `store`, a member of it in `role` (operator unless said)."""
    User = get_user_model()
    username = username or f"user-{uuid.uuid4().hex[:8]}"
    if superuser:
        user = User.objects.create_superuser(
            username=username, email=f"{username}@example.com", password=password
        )
    else:
        user = User.objects.create_user(username=username, email=f"{username}@example.com", password=password)
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    if store is not None:
        StoreMembership.objects.create(store=store, user=user, role=role)
    return user


def make_product(
    store: Store,
    sku: str | None = None,
    *,
    price: str = "10.00",
    stock: int = 100,
    threshold: int = 5,
    currency: str | None = None,
    active: bool = True,
) -> Product:
    """A product with its stock level and the ledger row that explains the initial stock."""
    product = Product.all_stores.create(
        store=store,
        sku=sku or f"SKU-{uuid.uuid4().hex[:8].upper()}",
        name=f"Product {sku or ''}".strip(),
        price=Decimal(price),
        currency=currency or store.currency,
        active=active,
    )
    StockLevel.all_stores.create(store=store, product=product, on_hand=stock, low_stock_threshold=threshold)
    if stock:
        StockMovement.all_stores.create(
            store=store,
            product=product,
            kind="restock",
            quantity=stock,
            on_hand_delta=stock,
            note="initial stock",
        )
    return product


def order_body(
    *lines: tuple[str, int], card: str = "4242424242424242", email: str | None = None, **extra
) -> dict:
    """A valid `POST /api/v1/orders` body for the given (sku, quantity) lines."""
    body = {
        "customer": {"email": email or f"c{uuid.uuid4().hex[:8]}@example.com", "name": "Ada Lovelace"},
        "items": [{"sku": sku, "quantity": qty} for sku, qty in lines],
        "shipping_address": {
            "line1": "1 Test Street",
            "city": "Berlin",
            "postal_code": "10115",
            "country": "DE",
        },
        "payment": {"card_number": card, "exp_month": 12, "exp_year": 2031, "cvc": "123"},
        "currency": "EUR",
        "metadata": {},
    }
    body.update(extra)
    return body
