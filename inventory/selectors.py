"""Reads on the catalogue and stock. Each takes the store first; none returns another store's rows."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from django.db import connection
from django.db.models import (
    Case,
    F,
    FloatField,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone

from orderflow.core.errors import NotFound
from orderflow.core.tenancy import NoStoreInContext, Store

from .models import Product, StockLevel, StockMovement

# Days of cover = available ÷ average daily commits over this window.
COVER_WINDOW_DAYS = 14


def _require(store: Store | None) -> Store:
    if store is None:
        raise NoStoreInContext("inventory selectors need a store")
    return store


def products(
    store: Store, *, active: bool | None = None, search: str | None = None, skus: Iterable[str] | None = None
) -> QuerySet[Product]:
    """The store's catalogue with stock levels joined (one query per page)."""
    qs = Product.all_stores.for_store(_require(store)).select_related("stock").order_by("sku")
    return filter_products(qs, active=active, search=search, skus=skus)


def filter_products(
    qs: QuerySet[Product],
    *,
    active: bool | None = None,
    search: str | None = None,
    skus: Iterable[str] | None = None,
) -> QuerySet[Product]:
    """`active` true/false; `search` a substring of SKU or name; `skus` exact SKUs."""
    if active is not None:
        qs = qs.filter(active=active)
    if search:
        qs = qs.filter(Q(sku__icontains=search) | Q(name__icontains=search))
    if skus is not None:
        qs = qs.filter(sku__in=list(skus))
    return qs


def product_by_sku(store: Store, sku: str) -> Product:
    """One product with its stock level; 404 `product_not_found` (also for another store's SKU)."""
    product = Product.all_stores.for_store(_require(store)).select_related("stock").filter(sku=sku).first()
    if product is None:
        raise NotFound(f"No product with SKU '{str(sku)[:64]}' in this store.", code="product_not_found")
    return product


class CatalogueEntry(NamedTuple):
    """What intake needs of a product: no stock, no model instance."""

    pk: int
    sku: str
    name: str
    price: Decimal
    currency: str
    active: bool


def catalogue_for_skus(store: Store, skus: Iterable[str]) -> dict[str, CatalogueEntry]:
    """SKU → CatalogueEntry for the SKUs that exist in the store: one light query on the order
    intake's hot path (no stock join — the reservation reads and locks the levels itself — and no
    model instances). Missing SKUs are simply absent."""
    skus = list(dict.fromkeys(skus))
    if not skus:
        return {}
    rows = (
        Product.all_stores.for_store(_require(store))
        .filter(sku__in=skus)
        .values_list("pk", "sku", "name", "price", "currency", "active")
    )
    return {row[1]: CatalogueEntry(*row) for row in rows}


def _with_cover(qs: QuerySet[StockLevel]) -> QuerySet[StockLevel]:
    """Annotate `sold_recent` (units committed in the window) and `days_of_cover` (None with no
    sales), computed in the database so lists and the watchdog stay one query."""
    since = timezone.now() - timedelta(days=COVER_WINDOW_DAYS)
    sold = (
        StockMovement.all_stores.filter(
            store_id=OuterRef("store_id"),
            product_id=OuterRef("product_id"),
            kind="commit",
            created_at__gte=since,
        )
        .values("product_id")
        .annotate(total=Sum("quantity"))
        .values("total")
    )
    return qs.annotate(
        sold_recent=Coalesce(Subquery(sold, output_field=IntegerField()), Value(0)),
    ).annotate(
        days_of_cover=Case(
            When(
                sold_recent__gt=0,
                then=Cast(F("on_hand") - F("reserved"), FloatField())
                * Value(float(COVER_WINDOW_DAYS))
                / Cast(F("sold_recent"), FloatField()),
            ),
            default=None,
            output_field=FloatField(),
        )
    )


def stock_levels(store: Store, *, skus: Iterable[str] | None = None, low: bool | None = None) -> QuerySet:
    """Per SKU: on_hand, reserved (and `.available` / `.is_low` properties), plus the annotated
    `days_of_cover` and `sold_recent`. `low=True` keeps SKUs at or under their threshold."""
    qs = _with_cover(
        StockLevel.all_stores.for_store(_require(store)).select_related("product").order_by("product__sku")
    )
    return filter_stock_levels(qs, skus=skus, low=low)


def filter_stock_levels(
    qs: QuerySet, *, skus: Iterable[str] | None = None, low: bool | None = None
) -> QuerySet:
    """`skus` exact SKUs; `low` true keeps SKUs at or under their threshold, false the others."""
    if skus is not None:
        qs = qs.filter(product__sku__in=list(skus))
    low_q = Q(on_hand__lte=F("reserved") + F("low_stock_threshold"))
    if low is True:
        qs = qs.filter(low_q)
    elif low is False:
        qs = qs.exclude(low_q)
    return qs


def stock_levels_all(store: Store | None = None) -> QuerySet:
    """Every store's levels (the beat watchdog), or one store's. Explicitly cross-store."""
    qs = StockLevel.all_stores.select_related("product", "store").order_by("store_id", "product_id")
    if store is not None:
        qs = qs.filter(store=store)
    return _with_cover(qs)


def stock_level(store: Store, sku: str) -> StockLevel:
    """One SKU's level with `days_of_cover`; 404 `product_not_found`."""
    level = stock_levels(store, skus=[sku]).first()
    if level is None:
        raise NotFound(f"No product with SKU '{str(sku)[:64]}' in this store.", code="product_not_found")
    return level


def movements(store: Store, sku: str, *, kind: str | None = None) -> QuerySet[StockMovement]:
    """The SKU's ledger, newest first; 404 `product_not_found` for an unknown SKU."""
    product = product_by_sku(store, sku)
    return filter_movements(
        StockMovement.all_stores.filter(store=store, product=product).order_by("-id"), kind=kind
    )


def filter_movements(qs: QuerySet[StockMovement], *, kind: str | None = None) -> QuerySet[StockMovement]:
    if kind:
        qs = qs.filter(kind=kind)
    return qs


def order_movements(store: Store, order_id: Any) -> QuerySet[StockMovement]:
    """An order's ledger rows (reserve/release/commit/return), oldest first."""
    return (
        StockMovement.all_stores.filter(store=_require(store), order_id=order_id)
        .select_related("product")
        .order_by("id")
    )


def low_stock_count(store: Store) -> int:
    return stock_levels(store, low=True).count()


def ledger_mismatches(store: Store | None = None) -> list[dict[str, Any]]:
    """SKUs whose level differs from what its ledger sums to (should always be empty).

    Each: store, sku, on_hand, reserved, ledger_on_hand, ledger_reserved."""
    ledger = StockMovement.all_stores.filter(product_id=OuterRef("product_id")).values("product_id")
    on_hand_sum = ledger.annotate(s=Sum("on_hand_delta")).values("s")
    reserved_sum = ledger.annotate(s=Sum("reserved_delta")).values("s")
    qs = StockLevel.all_stores.annotate(
        ledger_on_hand=Coalesce(Subquery(on_hand_sum, output_field=IntegerField()), Value(0)),
        ledger_reserved=Coalesce(Subquery(reserved_sum, output_field=IntegerField()), Value(0)),
    ).filter(~Q(on_hand=F("ledger_on_hand")) | ~Q(reserved=F("ledger_reserved")))
    if store is not None:
        qs = qs.filter(store=store)
    return [
        {
            "store": row["store__slug"],
            "sku": row["product__sku"],
            "on_hand": row["on_hand"],
            "reserved": row["reserved"],
            "ledger_on_hand": row["ledger_on_hand"],
            "ledger_reserved": row["ledger_reserved"],
        }
        for row in qs.values(
            "store__slug", "product__sku", "on_hand", "reserved", "ledger_on_hand", "ledger_reserved"
        ).order_by("store__slug", "product__sku")
    ]


# ------------------------------------------------------------------- reservation sweep (orders')


def overheld_products(store: Store, *, holding: QuerySet) -> list[int]:
    """Products whose level holds more reserved units than the orders in `holding` (the ids of the
    orders that may legitimately hold reservations, as the owner of orders answers it) hold in the
    ledger: where a reservation leaked. Cheap enough for every sweep: the ledger is read only through
    those orders (movement (store, order_id) index), never its history.

    One statement, so one snapshot: an order moving meanwhile cannot fake a mismatch. That is why it
    is SQL (a grouped derived table the ORM cannot join); `holding` is embedded as a subquery, so
    this module neither names nor imports the orders' table."""
    level, movement = StockLevel._meta.db_table, StockMovement._meta.db_table
    holding_sql, holding_params = holding.query.sql_with_params()
    sql = f"""
        SELECT l.product_id
          FROM {level} l
          LEFT JOIN (
                SELECT m.product_id, SUM(m.reserved_delta) AS held
                  FROM {movement} m
                 WHERE m.store_id = %s AND m.order_id IN ({holding_sql})
                 GROUP BY m.product_id
          ) h ON h.product_id = l.product_id
         WHERE l.store_id = %s AND l.reserved > COALESCE(h.held, 0)
    """  # noqa: S608 - table names from model metadata, values bound
    with connection.cursor() as cur:
        cur.execute(sql, [_require(store).pk, *holding_params, store.pk])
        return [row[0] for row in cur.fetchall()]


def reservation_holders(
    store: Store, *, products: Iterable[int], excluding: QuerySet, batch: int
) -> list[Any]:
    """Ids of the orders (outside `excluding`) that still hold reserved units of `products`."""
    return list(
        StockMovement.all_stores.filter(store=_require(store), product_id__in=list(products))
        .filter(order_id__isnull=False)
        .exclude(order_id__in=excluding)
        .values("order_id")
        .annotate(held=Sum("reserved_delta"))
        .filter(held__gt=0)
        .order_by("order_id")
        .values_list("order_id", flat=True)[:batch]
    )


def lowest_available(store: Store) -> QuerySet[StockLevel]:
    """SKUs at or under their threshold, the least available first: each level with its product and
    `available_qty` (on hand - reserved) annotated. What the dashboard's stats list."""
    return (
        filter_stock_levels(StockLevel.all_stores.for_store(_require(store)), low=True)
        .select_related("product")
        .annotate(available_qty=F("on_hand") - F("reserved"))
        .order_by("available_qty", "product__sku")
    )
