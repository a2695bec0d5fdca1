"""Writes on the catalogue and stock. Every stock change writes its ledger row in the same
transaction as the level, so `StockLevel` always equals the sums of `StockMovement` (see
`selectors.ledger_mismatches`).

Concurrency: reservations use a conditional `UPDATE ... WHERE on_hand - reserved >= q` (PostgreSQL
re-checks the WHERE after waiting for a concurrent writer), one product at a time in product-id
order, so two orders never wait on each other crosswise. Every other stock change locks the
affected `StockLevel` rows (`SELECT ... FOR UPDATE`, again in product-id order) before reading the
ledger, which makes release/commit/return idempotent under concurrent callers.

Threshold crossings are remembered on the level (`threshold_reached_at`) and flipped with a
conditional UPDATE, so `inventory.threshold_reached` / `inventory.threshold_cleared` go out once per
crossing whoever notices it first: a commit, a restock, or the beat watchdog.
"""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from orderflow.core.errors import Conflict, InsufficientStock, NotFound, ValidationFailed
from orderflow.core.events import emit
from orderflow.core.tenancy import Store

from .events import (
    ForecastCleared,
    ForecastLow,
    InventoryUpdated,
    ProductCreated,
    ProductUpdated,
    ThresholdCleared,
    ThresholdReached,
)
from .models import Product, StockLevel, StockMovement
from .selectors import stock_levels_all

Kind = StockMovement.Kind

MAX_QUANTITY = 1_000_000
SKU_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$")
CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
UPDATABLE_PRODUCT_FIELDS = ("name", "description", "price", "active", "low_stock_threshold", "lead_time_days")


# ------------------------------------------------------------------------------- helpers


def _level_data(level: StockLevel, sku: str) -> dict[str, Any]:
    return {
        "sku": sku,
        "on_hand": level.on_hand,
        "reserved": level.reserved,
        "available": level.on_hand - level.reserved,
        "low_stock_threshold": level.low_stock_threshold,
        "is_low": level.on_hand - level.reserved <= level.low_stock_threshold,
    }


def _locked_levels(store: Store, product_ids: Iterable[int]) -> list[StockLevel]:
    """Lock the levels in product-id order (the same order reservations use: no deadlock).
    `product_ids` may be a subquery (a `values("product_id")` queryset)."""
    return list(
        StockLevel.all_stores.select_related("product")
        .filter(store=store, product_id__in=product_ids)
        .order_by("product_id")
        .select_for_update(of=("self",))
    )


def _product_or_404(store: Store, sku: str) -> Product:
    product = Product.all_stores.filter(store=store, sku=sku).first()
    if product is None:
        raise NotFound(f"No product with SKU '{str(sku)[:64]}' in this store.", code="product_not_found")
    return product


def _check_quantity(value: Any, name: str, *, allow_negative: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationFailed(fields={name: ["Must be an integer."]})
    low = -MAX_QUANTITY if allow_negative else 1
    if value < low or value > MAX_QUANTITY or (allow_negative and value == 0):
        detail = (
            f"Must be a non-zero integer between -{MAX_QUANTITY} and {MAX_QUANTITY}."
            if allow_negative
            else f"Must be an integer between 1 and {MAX_QUANTITY}."
        )
        raise ValidationFailed(fields={name: [detail]})
    return value


def _check_threshold(value: Any, name: str = "low_stock_threshold") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_QUANTITY:
        raise ValidationFailed(fields={name: [f"Must be an integer between 0 and {MAX_QUANTITY}."]})
    return value


def _check_lead_time(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 3650:
        raise ValidationFailed(fields={"lead_time_days": ["Must be null or an integer between 0 and 3650."]})
    return value


def _check_price(value: Any) -> Decimal:
    try:
        price = Decimal(str(value)) if not isinstance(value, bool) else None
    except (InvalidOperation, ValueError):
        price = None
    if price is None or not price.is_finite() or price < 0 or price >= Decimal("1e10"):
        raise ValidationFailed(fields={"price": ["Must be a decimal amount of at least 0."]})
    if price != price.quantize(Decimal("0.01")):
        raise ValidationFailed(fields={"price": ["At most 2 decimal places."]})
    return price.quantize(Decimal("0.01"))


def _sync_threshold_state(
    level: StockLevel, sku: str, *, store: Store, actor: str, locked: bool = False
) -> str | None:
    """Flip the crossing flag if the level crossed its threshold and emit the event, once.

    The flag is flipped with a conditional UPDATE, so a commit and the watchdog noticing the same
    crossing at once still emit a single event. `locked`: the level was read under this
    transaction's row lock, so its flag is current and an UPDATE that could flip nothing (every
    commit of a well-stocked SKU) is skipped. Returns the topic emitted, if any."""
    available = level.on_hand - level.reserved
    now = timezone.now()
    crossed = available <= level.low_stock_threshold
    if locked and (level.threshold_reached_at is not None) == crossed:
        return None
    if crossed:
        flipped = StockLevel.all_stores.filter(pk=level.pk, threshold_reached_at__isnull=True).update(
            threshold_reached_at=now
        )
        if not flipped:
            return None
        level.threshold_reached_at = now
        emit(
            ThresholdReached(
                sku=sku,
                available=available,
                on_hand=level.on_hand,
                reserved=level.reserved,
                threshold=level.low_stock_threshold,
                kind="out_of_stock" if available <= 0 else "low_stock",
                name=level.product.name,
            ),
            store=store,
            subject=level.product,
            actor=actor,
        )
        return "inventory.threshold_reached"
    flipped = StockLevel.all_stores.filter(pk=level.pk, threshold_reached_at__isnull=False).update(
        threshold_reached_at=None
    )
    if not flipped:
        return None
    level.threshold_reached_at = None
    emit(
        ThresholdCleared(sku=sku, available=available, threshold=level.low_stock_threshold),
        store=store,
        subject=level.product,
        actor=actor,
    )
    return "inventory.threshold_cleared"


def _emit_updated(
    store: Store, levels: list[StockLevel], *, reason: str, actor: str, order_id: Any = None
) -> None:
    emit(
        InventoryUpdated(reason=reason, levels=[_level_data(lv, lv.product.sku) for lv in levels]),
        store=store,
        order_id=order_id,
        subject=levels[0].product if len(levels) == 1 else None,
        actor=actor,
    )


# ------------------------------------------------------------------------------ catalogue


def create_product(
    *,
    store: Store,
    sku: str,
    name: str,
    price: Decimal | str,
    currency: str | None = None,
    description: str = "",
    active: bool = True,
    initial_stock: int = 0,
    low_stock_threshold: int = 10,
    lead_time_days: int | None = None,
    actor: str = "system",
) -> Product:
    """A catalogue entry with its stock level; initial stock enters through a `restock` ledger row
    so the ledger explains every unit. Duplicate SKU → 409 `sku_exists`."""
    if not isinstance(sku, str) or not SKU_RE.match(sku):
        raise ValidationFailed(
            fields={
                "sku": ["1–64 characters: letters, digits, '.', '_' or '-', starting with a letter/digit."]
            }
        )
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise ValidationFailed(fields={"name": ["Must be a non-empty string of at most 200 characters."]})
    currency = currency or store.currency
    if not isinstance(currency, str) or not CURRENCY_RE.match(currency):
        raise ValidationFailed(fields={"currency": ["A three-letter upper-case ISO code, like EUR."]})
    price = _check_price(price)
    if initial_stock != 0:
        _check_quantity(initial_stock, "initial_stock")
    threshold = _check_threshold(low_stock_threshold)
    lead_time_days = _check_lead_time(lead_time_days)
    with transaction.atomic():
        if Product.all_stores.filter(store=store, sku=sku).exists():
            raise Conflict(f"A product with SKU '{sku}' already exists.", code="sku_exists")
        try:
            with transaction.atomic():
                product = Product.all_stores.create(
                    store=store,
                    sku=sku,
                    name=name.strip(),
                    description=description or "",
                    price=price,
                    currency=currency,
                    active=active,
                    lead_time_days=lead_time_days,
                )
        except IntegrityError:  # a concurrent create of the same SKU won the race
            raise Conflict(f"A product with SKU '{sku}' already exists.", code="sku_exists")
        level = StockLevel.all_stores.create(
            store=store, product=product, on_hand=initial_stock, low_stock_threshold=threshold
        )
        if initial_stock:
            StockMovement.all_stores.create(
                store=store,
                product=product,
                kind=Kind.RESTOCK,
                quantity=initial_stock,
                on_hand_delta=initial_stock,
                actor=actor,
                note="initial stock",
            )
        emit(
            ProductCreated(sku=sku, name=product.name, price=str(price), initial_stock=initial_stock),
            store=store,
            subject=product,
            actor=actor,
        )
        if level.on_hand <= threshold:
            # A product created at or under its threshold is a crossing like any other.
            level.product = product
            _sync_threshold_state(level, sku, store=store, actor=actor)
        product.stock = level
    return product


def update_product(*, store: Store, sku: str, actor: str, **changes: Any) -> Product:
    """Change name, description, price, active, low_stock_threshold, lead_time_days.

    Stock itself only moves through restock/adjust, so the ledger stays whole."""
    unknown = sorted(set(changes) - set(UPDATABLE_PRODUCT_FIELDS))
    if unknown:
        raise ValidationFailed(
            fields={
                k: ["This field cannot be changed here (stock moves via restock/adjust)."] for k in unknown
            }
        )
    if "name" in changes:
        name = changes["name"]
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise ValidationFailed(fields={"name": ["Must be a non-empty string of at most 200 characters."]})
        changes["name"] = name.strip()
    if "description" in changes and not isinstance(changes["description"], str):
        raise ValidationFailed(fields={"description": ["Must be a string."]})
    if "price" in changes:
        changes["price"] = _check_price(changes["price"])
    if "active" in changes and not isinstance(changes["active"], bool):
        raise ValidationFailed(fields={"active": ["Must be true or false."]})
    if "low_stock_threshold" in changes:
        _check_threshold(changes["low_stock_threshold"])
    if "lead_time_days" in changes:
        changes["lead_time_days"] = _check_lead_time(changes["lead_time_days"])
    with transaction.atomic():
        product = _product_or_404(store, sku)
        product = Product.all_stores.select_for_update().get(pk=product.pk)
        level = _locked_levels(store, [product.pk])[0]
        changed: dict[str, Any] = {}
        product_fields = []
        for field in ("name", "description", "price", "active", "lead_time_days"):
            if field in changes and getattr(product, field) != changes[field]:
                setattr(product, field, changes[field])
                product_fields.append(field)
                changed[field] = str(changes[field]) if field == "price" else changes[field]
        if product_fields:
            product.save(update_fields=[*product_fields, "updated_at"])
        if "low_stock_threshold" in changes and level.low_stock_threshold != changes["low_stock_threshold"]:
            level.low_stock_threshold = changes["low_stock_threshold"]
            level.save(update_fields=["low_stock_threshold", "updated_at"])
            changed["low_stock_threshold"] = level.low_stock_threshold
        if changed:
            emit(ProductUpdated(sku=sku, changes=changed), store=store, subject=product, actor=actor)
            if "low_stock_threshold" in changed:
                level.product = product
                _sync_threshold_state(level, sku, store=store, actor=actor)
        product.stock = level
    return product


# ------------------------------------------------------------------------- order stock


def reserve_stock(
    *, store: Store, lines: list[tuple[int, int]], order_id: uuid.UUID | str, actor: str = "system"
) -> None:
    """Reserve every line or none, inside the caller's (the order's) transaction.

    One conditional UPDATE per product, in product-id order, then one bulk insert of `reserve`
    rows. Every line is tried so the 409 names every short SKU. No savepoint: on refusal the
    enclosing transaction is marked for rollback, so partial reservations can never be kept."""
    wanted: dict[int, int] = defaultdict(int)
    for i, (product_id, quantity) in enumerate(lines):
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            raise ValidationFailed(fields={f"items[{i}].quantity": ["Must be a positive integer."]})
        wanted[product_id] += quantity
    if not wanted:
        return
    with transaction.atomic(savepoint=False):
        reserved = _reserve_levels(store, wanted, order_id=order_id, actor=actor)
        short = [product_id for product_id in sorted(wanted) if product_id not in reserved]
        if short:
            rows = (
                StockLevel.all_stores.filter(store=store, product_id__in=short)
                .values_list("product_id", "product__sku", "on_hand", "reserved")
                .order_by("product__sku")
            )
            found = {pid: (sku, max(0, on_hand - reserved)) for pid, sku, on_hand, reserved in rows}
            skus = [found[pid][0] for pid in short if pid in found]
            fields: dict[str, list[str]] = {}
            for i, (product_id, _q) in enumerate(lines):
                if product_id in found and product_id in short:
                    fields[f"items[{i}].quantity"] = [f"only {found[product_id][1]} available"]
            missing = [pid for pid in short if pid not in found]
            raise InsufficientStock(
                f"Not enough stock for {', '.join(sorted(skus)) or 'the requested products'}.",
                fields=fields or None,
                extra={"skus": sorted(skus), **({"product_ids": missing} if missing else {})},
            )


def _reserve_levels(store: Store, wanted: dict[int, int], *, order_id: Any, actor: str) -> set[int]:
    """Reserve `wanted` {product id: units} where there is enough and write a `reserve` ledger row
    for each line reserved; the product ids reserved.

    One statement for every line: a CTE locks the order's levels in id order (FOR UPDATE with
    ORDER BY locks as it reads, so two orders sharing SKUs wait on each other in the same order and
    never deadlock crosswise), one conditional UPDATE adds the units where `on_hand - reserved >=
    q`, and the ledger rows are inserted from what the UPDATE returned. Under Read Committed the
    UPDATE re-checks that condition against the newest row version, and the CHECK constraints
    refuse an oversell in any case. A line whose level has too little is simply not updated; the
    caller then refuses the whole order, which rolls back the lines that were reserved and their
    ledger rows with it."""
    now = timezone.now()
    if connection.vendor != "postgresql":
        return _reserve_levels_orm(store, wanted, order_id=order_id, actor=actor, now=now)
    qn = connection.ops.quote_name
    table = qn(StockLevel._meta.db_table)
    ledger = StockMovement._meta
    columns = ", ".join(
        qn(ledger.get_field(name).column)
        for name in ("store", "product", "kind", "quantity", "on_hand_delta", "reserved_delta", "order_id",
                     "actor", "note", "created_at")
    )  # fmt: skip
    ids = sorted(wanted)
    values = ", ".join(["(%s::bigint, %s::integer)"] * len(ids))
    params: list[Any] = [v for pid in ids for v in (pid, wanted[pid])]
    sql = (
        f"WITH wanted(product_id, q) AS (VALUES {values}), "
        f"locked AS (SELECT s.id FROM {table} s JOIN wanted w ON w.product_id = s.product_id "
        f"WHERE s.store_id = %s ORDER BY s.id FOR UPDATE OF s), "
        f"reserved AS (UPDATE {table} s SET reserved = s.reserved + w.q FROM wanted w "
        f"WHERE s.id IN (SELECT id FROM locked) AND s.product_id = w.product_id "
        f"AND s.on_hand - s.reserved >= w.q RETURNING s.product_id, w.q), "
        f"ledger AS (INSERT INTO {qn(ledger.db_table)} ({columns}) "
        f"SELECT %s, r.product_id, %s, r.q, 0, r.q, %s, %s, '', %s FROM reserved r ORDER BY r.product_id) "
        f"SELECT product_id FROM reserved"
    )
    order_value = ledger.get_field("order_id").get_db_prep_save(order_id, connection)
    created = ledger.get_field("created_at").get_db_prep_save(now, connection)
    with connection.cursor() as cur:
        cur.execute(sql, [*params, store.pk, store.pk, Kind.RESERVE.value, order_value, actor, created])
        return {row[0] for row in cur.fetchall()}


def _reserve_levels_orm(
    store: Store, wanted: dict[int, int], *, order_id: Any, actor: str, now: Any
) -> set[int]:
    """The same reservation through the ORM, one conditional UPDATE per product in id order, then
    the ledger rows: the path of every database but PostgreSQL (SQLite, the embedded mode, whose
    IMMEDIATE transactions serialise writers, so the conditions cannot race)."""
    done = set()
    for product_id in sorted(wanted):
        q = wanted[product_id]
        if StockLevel.all_stores.filter(
            store=store, product_id=product_id, on_hand__gte=F("reserved") + q
        ).update(reserved=F("reserved") + q):
            done.add(product_id)
    StockMovement.all_stores.bulk_create(
        [
            StockMovement(
                store=store,
                product_id=pid,
                kind=Kind.RESERVE,
                quantity=wanted[pid],
                reserved_delta=wanted[pid],
                order_id=order_id,
                actor=actor,
                created_at=now,
            )
            for pid in sorted(done)
        ]
    )
    return done


def _held_by_order(store: Store, order_id: Any) -> Coalesce:
    """Per level (an `OuterRef` to its product), the units this order still holds reserved of it:
    the sum of the reserved deltas on its ledger rows."""
    held = (
        StockMovement.all_stores.filter(store=store, order_id=order_id, product_id=OuterRef("product_id"))
        .order_by()
        .values("product_id")
        .annotate(total=Sum("reserved_delta"))
        .values("total")
    )
    return Coalesce(Subquery(held), 0)


def _order_outstanding(store: Store, order_id: Any, *, field: str) -> dict[int, int]:
    """Per product, the sum of `field` over this order's ledger rows. Read after the levels are
    locked, in a statement of its own: a subquery of the locking statement would read the ledger
    as it was when that statement began, before a concurrent commit or release it waited for."""
    rows = (
        StockMovement.all_stores.filter(store=store, order_id=order_id)
        .values("product_id")
        .annotate(total=Sum(field))
    )
    return {r["product_id"]: r["total"] or 0 for r in rows}


def _order_levels_locked(store: Store, order_id: Any) -> list[StockLevel]:
    """Lock the levels of every product the order ever moved, in product-id order like
    `_locked_levels`, in one statement (the ledger read is a subquery, not a round trip)."""
    touched = StockMovement.all_stores.filter(store=store, order_id=order_id).values("product_id")
    return _locked_levels(store, touched)


def release_stock(*, store: Store, order_id: uuid.UUID | str, actor: str = "system", reason: str = "") -> int:
    """Give back whatever the order still holds reserved (cancel, reject, expiry, payment failed).

    Computed from the ledger (reserve − release − commit), under row locks: idempotent, a second
    call releases nothing. Returns the units released."""
    with transaction.atomic():
        levels = _order_levels_locked(store, order_id)
        if not levels:
            return 0
        held = _order_outstanding(store, order_id, field="reserved_delta")
        moved: list[StockLevel] = []
        rows: list[StockMovement] = []
        for level in levels:
            q = held.get(level.product_id, 0)
            if q <= 0:
                continue
            StockLevel.all_stores.filter(pk=level.pk).update(
                reserved=F("reserved") - q, updated_at=timezone.now()
            )
            level.reserved -= q
            rows.append(
                StockMovement(
                    store=store,
                    product_id=level.product_id,
                    kind=Kind.RELEASE,
                    quantity=q,
                    reserved_delta=-q,
                    order_id=order_id,
                    actor=actor,
                    note=reason[:500],
                )
            )
            moved.append(level)
        if not rows:
            return 0
        StockMovement.all_stores.bulk_create(rows)
        _emit_updated(store, moved, reason="release", actor=actor, order_id=order_id)
        for level in moved:
            _sync_threshold_state(level, level.product.sku, store=store, actor=actor, locked=True)
        return sum(r.quantity for r in rows)


def commit_stock(*, store: Store, order_id: uuid.UUID | str, actor: str = "system") -> int:
    """The order is paid: its reserved units leave the shelf (on_hand and reserved both drop).

    Emits `inventory.updated` with per-SKU levels and, if a SKU is at or under its threshold and
    not yet reported, `inventory.threshold_reached` at once. Idempotent. Returns units committed."""
    with transaction.atomic(savepoint=False):
        levels = _order_levels_locked(store, order_id)
        if not levels:
            return 0
        held = _order_outstanding(store, order_id, field="reserved_delta")
        moved: list[StockLevel] = []
        rows: list[StockMovement] = []
        now = timezone.now()
        for level in levels:
            q = held.get(level.product_id, 0)
            if q <= 0:
                continue
            # in memory, for the event and the threshold check (the UPDATE below writes them)
            level.on_hand -= q
            level.reserved -= q
            level.updated_at = now
            rows.append(
                StockMovement(
                    store=store,
                    product_id=level.product_id,
                    kind=Kind.COMMIT,
                    quantity=q,
                    on_hand_delta=-q,
                    reserved_delta=-q,
                    order_id=order_id,
                    actor=actor,
                )
            )
            moved.append(level)
        if not rows:
            return 0
        # One statement whatever the line count: each level less what the order holds of it, read
        # again by a subquery (this statement begins after the locks: it reads what `held` did).
        units = _held_by_order(store, order_id)
        StockLevel.all_stores.filter(pk__in=[lv.pk for lv in moved]).update(
            on_hand=F("on_hand") - units, reserved=F("reserved") - units, updated_at=now
        )
        StockMovement.all_stores.bulk_create(rows)
        _emit_updated(store, moved, reason="commit", actor=actor, order_id=order_id)
        for level in moved:
            _sync_threshold_state(level, level.product.sku, store=store, actor=actor, locked=True)
        return sum(r.quantity for r in rows)


def return_stock(
    *,
    store: Store,
    order_id: uuid.UUID | str,
    actor: str = "system",
    reason: str = "",
    quantities: dict[int, int] | None = None,
) -> int:
    """Put units committed for an order back on hand (cancel after payment, a refund with
    restock): `restock` rows with the order id. Never more than committed − already returned, from
    the ledger, so a later cancel returns only the rest. `quantities` ({product id: units}) returns
    only those units (a refund of some lines); None returns everything still out. Returns units."""
    with transaction.atomic():
        levels = _order_levels_locked(store, order_id)
        if not levels:
            return 0
        sums = (
            StockMovement.all_stores.filter(store=store, order_id=order_id)
            .values("product_id")
            .annotate(
                committed=Sum("quantity", filter=Q(kind=Kind.COMMIT)),
                returned=Sum("quantity", filter=Q(kind=Kind.RESTOCK)),
            )
        )
        due = {r["product_id"]: (r["committed"] or 0) - (r["returned"] or 0) for r in sums}
        if quantities is not None:
            due = {pid: min(q, quantities.get(pid, 0)) for pid, q in due.items()}
        moved: list[StockLevel] = []
        rows: list[StockMovement] = []
        for level in levels:
            q = due.get(level.product_id, 0)
            if q <= 0:
                continue
            StockLevel.all_stores.filter(pk=level.pk).update(
                on_hand=F("on_hand") + q, updated_at=timezone.now()
            )
            level.on_hand += q
            rows.append(
                StockMovement(
                    store=store,
                    product_id=level.product_id,
                    kind=Kind.RESTOCK,
                    quantity=q,
                    on_hand_delta=q,
                    order_id=order_id,
                    actor=actor,
                    note=(reason or "returned from cancelled order")[:500],
                )
            )
            moved.append(level)
        if not rows:
            return 0
        StockMovement.all_stores.bulk_create(rows)
        _emit_updated(store, moved, reason="return", actor=actor, order_id=order_id)
        for level in moved:
            _sync_threshold_state(level, level.product.sku, store=store, actor=actor, locked=True)
        return sum(r.quantity for r in rows)


# ------------------------------------------------------------------------ operator stock


def restock(*, store: Store, sku: str, quantity: int, note: str = "", actor: str) -> StockLevel:
    """Goods arrived: on_hand grows. Back above the threshold → `inventory.threshold_cleared`."""
    _check_quantity(quantity, "quantity")
    with transaction.atomic():
        product = _product_or_404(store, sku)
        level = _locked_levels(store, [product.pk])[0]
        return _move_on_hand(store, product, level, quantity, Kind.RESTOCK, note=note, actor=actor)


def adjust(*, store: Store, sku: str, delta: int, reason: str, actor: str) -> StockLevel:
    """A stock count correction (shrinkage, damage, found units). Never below what is reserved
    (409 `below_reserved`), so a paid-for order can always be fulfilled."""
    _check_quantity(delta, "delta", allow_negative=True)
    with transaction.atomic():
        product = _product_or_404(store, sku)
        level = _locked_levels(store, [product.pk])[0]
        if level.on_hand + delta < level.reserved:
            raise Conflict(
                f"On hand would drop to {level.on_hand + delta}, below the {level.reserved} units reserved.",
                code="below_reserved",
                extra={"on_hand": level.on_hand, "reserved": level.reserved},
            )
        return _move_on_hand(store, product, level, delta, Kind.ADJUST, note=reason, actor=actor)


def _move_on_hand(
    store: Store, product: Product, level: StockLevel, delta: int, kind: str, *, note: str, actor: str
) -> StockLevel:
    """Restock and adjust alike: on_hand moves by `delta` with its ledger row and event, and the
    threshold crossing is re-checked. Runs inside the caller's transaction, the level locked."""
    StockLevel.all_stores.filter(pk=level.pk).update(on_hand=F("on_hand") + delta, updated_at=timezone.now())
    level.on_hand += delta
    StockMovement.all_stores.create(
        store=store,
        product=product,
        kind=kind,
        quantity=delta,
        on_hand_delta=delta,
        actor=actor,
        note=(note or "")[:500],
    )
    _emit_updated(store, [level], reason=str(kind), actor=actor)
    _sync_threshold_state(level, product.sku, store=store, actor=actor)
    return level


# ----------------------------------------------------------------------------- watchdog


def check_inventory(*, store: Store | None = None) -> dict[str, int]:
    """The beat safety net: report every threshold crossing nobody reported yet (reservations do
    not report, to keep order intake lean), clear recovered ones, and warn when days of cover
    fall under the lead time (`inventory.forecast_low`, once per crossing). Returns counts."""
    counts = {"reached": 0, "cleared": 0, "forecast_low": 0, "forecast_cleared": 0}
    low = Q(on_hand__lte=F("reserved") + F("low_stock_threshold"))
    # Only rows whose remembered state disagrees with the present one need a look.
    candidates = stock_levels_all(store).filter(
        (low & Q(threshold_reached_at__isnull=True))
        | (~low & Q(threshold_reached_at__isnull=False))
        | Q(product__lead_time_days__isnull=False)
        | Q(forecast_alerted_at__isnull=False)
    )
    for level in candidates:
        with transaction.atomic():
            topic = _sync_threshold_state(level, level.product.sku, store=level.store, actor="watchdog")
            if topic == "inventory.threshold_reached":
                counts["reached"] += 1
            elif topic == "inventory.threshold_cleared":
                counts["cleared"] += 1
            result = _sync_forecast_state(level, store=level.store)
            if result:
                counts[result] += 1
    return counts


def _sync_forecast_state(level: StockLevel, *, store: Store) -> str | None:
    lead = level.product.lead_time_days
    cover = getattr(level, "days_of_cover", None)
    short = lead is not None and cover is not None and cover < lead
    now = timezone.now()
    if short:
        if not StockLevel.all_stores.filter(pk=level.pk, forecast_alerted_at__isnull=True).update(
            forecast_alerted_at=now
        ):
            return None
        emit(
            ForecastLow(
                sku=level.product.sku,
                days_of_cover=round(cover, 1),
                lead_time_days=lead,
                available=level.on_hand - level.reserved,
            ),
            store=store,
            subject=level.product,
            actor="watchdog",
        )
        return "forecast_low"
    if StockLevel.all_stores.filter(pk=level.pk, forecast_alerted_at__isnull=False).update(
        forecast_alerted_at=None
    ):
        emit(
            ForecastCleared(
                sku=level.product.sku,
                days_of_cover=None if cover is None else round(cover, 1),
                lead_time_days=lead,
            ),
            store=store,
            subject=level.product,
            actor="watchdog",
        )
        return "forecast_cleared"
    return None
