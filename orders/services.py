"""Writes on orders: the named actions that move an order (the only way any app moves one), intake
(`place_order`), `cancel`, `expire` and the idempotency purge."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, ProgrammingError, connection, transaction
from django.db.models import Max
from django.utils import timezone

from inventory.selectors import CatalogueEntry, catalogue_for_skus
from inventory.services import commit_stock, release_stock, reserve_stock, return_stock
from orderflow.core import vault
from orderflow.core.errors import InsufficientStock, InvalidTransition, ServiceUnavailable, ValidationFailed
from orderflow.core.events import emit
from orderflow.core.statemachine import sources_of, transition
from orderflow.core.tenancy import Store

from . import idempotency
from .cards import card_summary
from .events import OrderCreated
from .locks import lock_order_or_404
from .models import IdempotencyRecord, Order, OrderItem
from .representation import attach_items, order_json

# ------------------------------------------------------------------------------- actions
# The named moves of an order. Other apps call these (never `transition` on an order, never a
# status column); each takes an order its caller locked (orders/locks.py) inside the caller's
# transaction, moves it along Order.TRANSITIONS (409 `invalid_transition` otherwise), writes the
# mirrored columns in the same UPDATE, emits `order.<status>`, and commits or releases the order's
# stock through inventory's services.

OS = Order.Status


def _move(order: Order, to: str, *, actor: str, reason: str = "", data=None, updates=None) -> Order:
    return transition(order, to, reason=reason, actor=actor, data=data, updates=updates)


@dataclass(frozen=True)
class Risk:
    """The fraud check's outcome, kept on the order (score 0–100, approve/review/reject, rule hits)."""

    score: int
    decision: str
    rules: list[dict[str, Any]]

    def columns(self) -> dict[str, Any]:
        return {"risk_score": self.score, "risk_decision": self.decision, "risk_rules": self.rules}


def hold_for_review(*, order: Order, actor: str, reason: str, data: dict[str, Any], risk: Risk) -> Order:
    """The fraud check wants a person to look: `fraud_review`, its risk kept in the same UPDATE."""
    return _move(order, OS.FRAUD_REVIEW, actor=actor, reason=reason, data=data, updates=risk.columns())


def approve_for_payment(
    *, order: Order, actor: str, reason: str, data: dict[str, Any] | None = None, risk: Risk | None = None
) -> Order:
    """Screened (its risk kept in the same UPDATE) or cleared by an operator: `payment_processing`;
    payments charges it."""
    updates = risk.columns() if risk is not None else None
    return _move(order, OS.PAYMENT_PROCESSING, actor=actor, reason=reason, data=data, updates=updates)


def reject(*, order: Order, actor: str, reason: str, risk: Risk | None = None) -> Order:
    """Refused by the fraud check (its risk kept) or an operator: `rejected`, its reservation released."""
    _move(
        order, OS.REJECTED, actor=actor, reason=reason, updates=risk.columns() if risk is not None else None
    )
    release_stock(store=order.store, order_id=order.pk, actor=actor, reason="order rejected")
    _forget_card_on_commit(order)
    return order


def mark_paid(*, order: Order, actor: str, charge_id: str, amount: Decimal, attempts: int) -> Order:
    """The charge was captured: `paid` (payment mirrored, `paid_at`), the reserved units committed."""
    _move(
        order,
        OS.PAID,
        actor=actor,
        reason="payment succeeded",
        data={"charge_id": charge_id, "amount": str(amount)},
        updates={"paid_at": timezone.now(), "payment_status": "succeeded", "payment_attempts": attempts},
    )
    commit_stock(store=order.store, order_id=order.pk, actor=actor)
    return order


def mark_payment_failed(
    *, order: Order, actor: str, reason: str, error_code: str, decline_code: str, attempts: int
) -> Order:
    """The charge failed for good: `payment_failed`, the reservation released (a retry reserves
    again). The card stays in the vault for that retry."""
    _move(
        order,
        OS.PAYMENT_FAILED,
        actor=actor,
        reason=reason[:200],
        data={"error_code": error_code, "decline_code": decline_code},
        updates={"payment_status": "failed", "payment_attempts": attempts},
    )
    release_stock(store=order.store, order_id=order.pk, actor=actor, reason="payment failed")
    return order


def reopen_for_payment(
    *, order: Order, actor: str, reason: str, data: dict[str, Any], updates: dict[str, Any]
) -> Order:
    """A payment_failed order is paid again (payments.retry): back to `pending`, screened anew."""
    return _move(order, OS.PENDING, actor=actor, reason=reason, data=data, updates=updates)


def record_payment_progress(*, order: Order, status: str, attempts: int | None = None) -> Order:
    """Mirror the payment's progress (processing, retrying, waiting, refunds) on the order; the
    order's status does not move, the payment's own events tell the story."""
    values: dict[str, Any] = {"payment_status": status, "updated_at": timezone.now()}
    if attempts is not None:
        values["payment_attempts"] = attempts
    Order.all_stores.filter(pk=order.pk).update(**values)
    for name, value in values.items():
        setattr(order, name, value)
    return order


def start_fulfilling(*, order: Order, actor: str) -> Order:
    """Its pick list is open: `fulfilling`."""
    return _move(order, OS.FULFILLING, actor=actor, reason="fulfillment started")


def resume_payment_progress(*, order_id: Any, attempts: int) -> None:
    """A payment that waited for the gateway is released: the order's mirror leaves `waiting`
    (processing if it was tried before, else pending) — only if it still says waiting."""
    Order.all_stores.filter(pk=order_id, payment_status="waiting").update(
        payment_status="processing" if attempts else "pending", updated_at=timezone.now()
    )


def record_fulfillment_progress(*, order: Order, status: str) -> Order:
    """Mirror the warehouse's progress (picking, packed, cancelled) on the order."""
    now = timezone.now()
    Order.all_stores.filter(pk=order.pk).update(fulfillment_status=status, updated_at=now)
    order.fulfillment_status, order.updated_at = status, now
    return order


def mark_ready_to_ship(*, order: Order, actor: str) -> Order:
    return _move(
        order,
        OS.READY_TO_SHIP,
        actor=actor,
        reason="ready to ship",
        updates={"fulfillment_status": Order.FulfillmentStatus.READY_TO_SHIP},
    )


def mark_shipped(*, order: Order, actor: str, carrier: str, tracking_number: str, shipped_at=None) -> Order:
    return _move(
        order,
        OS.SHIPPED,
        actor=actor,
        reason=f"shipped with {carrier}",
        data={"carrier": carrier, "tracking_number": tracking_number},
        updates={
            "shipped_at": shipped_at or timezone.now(),
            "fulfillment_status": Order.FulfillmentStatus.SHIPPED,
        },
    )


def mark_delivered(*, order: Order, actor: str, carrier: str, tracking_number: str) -> Order:
    return _move(
        order,
        OS.DELIVERED,
        actor=actor,
        reason="delivered",
        data={"carrier": carrier, "tracking_number": tracking_number},
        updates={"fulfillment_status": Order.FulfillmentStatus.DELIVERED},
    )


def _forget_card_on_commit(order: Order) -> None:
    store_pk, order_pk = order.store_id, order.pk
    transaction.on_commit(lambda: vault.forget(store_pk, order_pk), robust=True)


# ------------------------------------------------------------------------------- intake

TWO_PLACES = Decimal("0.01")

# The per-store order-number sequences this process already knows exist, per database.
_known_sequences: set[tuple[str, int]] = set()


def _sequence_name(store: Store) -> str:
    return f"order_number_{int(store.pk)}"


def _next_order_number(store: Store) -> int:
    """A per-store number: unique always, gaps acceptable.

    PostgreSQL: a per-store SEQUENCE (created on first use), so concurrent orders never wait on
    each other for a number — a locked counter row would serialise all intake. SQLite (embedded
    mode) runs IMMEDIATE transactions, writers are already serialised: max(number) + 1."""
    if connection.vendor != "postgresql":
        top = Order.all_stores.filter(store=store).aggregate(top=Max("number"))["top"]
        return (top or 0) + 1
    name = _sequence_name(store)
    ident = (connection.settings_dict["NAME"], store.pk)
    with connection.cursor() as cur:
        if ident in _known_sequences:
            cur.execute("SELECT nextval(%s)", [name])
            return cur.fetchone()[0]
        cur.execute(f"CREATE SEQUENCE IF NOT EXISTS {connection.ops.quote_name(name)}")
        cur.execute(
            f"SELECT nextval(%s), (SELECT MAX(number) FROM {Order._meta.db_table} WHERE store_id = %s)",
            [name, store.pk],
        )
        number, top = cur.fetchone()
        if top is not None and top >= number:  # orders that predate the sequence (a restored DB)
            number = top + 1
            cur.execute("SELECT setval(%s, %s)", [name, number])
    _known_sequences.add(ident)
    return number


def _is_sequence_race(exc: Exception) -> bool:
    """The sequence vanished under our cache (a rolled-back creation) or two first orders of a
    new store created it at once: the transaction is gone, retrying the whole order is safe."""
    cause = exc.__cause__
    pgcode = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
    text = str(exc)
    if pgcode == "42P01" and "order_number_" in text:  # undefined_table
        return True
    catalog_clash = "pg_type" in text or "pg_class" in text or "order_number_" in text
    return pgcode in {"23505", "42P07"} and catalog_clash


def catalogue_errors(
    store: Store, items: list[dict[str, Any]], currency: str | None, products: dict[str, CatalogueEntry]
) -> dict[str, list[str]]:
    """Unknown or inactive SKUs (`items[i].sku`) and a currency that is not the catalogue's."""
    fields: dict[str, list[str]] = {}
    currencies: set[str] = set()
    for i, item in enumerate(items):
        sku = item.get("sku")
        if not isinstance(sku, str):
            continue
        product = products.get(sku)
        if product is None:
            fields[f"items[{i}].sku"] = [f"Unknown SKU '{sku[:64]}'."]
        elif not product.active:
            fields[f"items[{i}].sku"] = [f"The product '{sku[:64]}' is not available."]
        else:
            currencies.add(product.currency)
    if currency is not None:
        if currency != store.currency:
            fields["currency"] = [f"This store sells in {store.currency}."]
        elif currencies - {currency}:
            fields["currency"] = [
                f"The products are priced in {', '.join(sorted(currencies))}, not {currency}."
            ]
    return fields


def place_order(
    *,
    store: Store,
    payload: dict[str, Any],
    idempotency_key: str,
    request_fingerprint: str,
    actor: str,
    client_ip: str | None = None,
) -> Order:
    """Accept an order: idempotency claim, order and lines at catalogue prices, stock reserved,
    `order.created` — one transaction, all or nothing.

    `payload` is the validated body (see `api.OrderCreateSerializer`, where intake's limits are
    declared). The returned order carries `.idempotent_response` (a `StoredResponse`): the exact
    202 the first request got, with
    `replayed=True` when this call was a replay. A rejected order (400 unknown SKU or currency,
    409 stock) rolls back everything including the claim, so a corrected retry with the same key
    goes through. No gateway call, no fraud scoring: those hang off `order.created`."""
    for attempt in range(3):
        try:
            return _place_order_once(
                store=store,
                payload=payload,
                idempotency_key=idempotency_key,
                request_fingerprint=request_fingerprint,
                actor=actor,
                client_ip=client_ip,
            )
        except (ProgrammingError, IntegrityError) as exc:
            if attempt == 2 or not _is_sequence_race(exc):
                raise
            _known_sequences.discard((connection.settings_dict["NAME"], store.pk))
        except _RecordVanished:
            continue
    raise RuntimeError("unreachable")  # pragma: no cover


class _RecordVanished(Exception):
    """The key's record was purged between our claim attempt and our read: try again."""


def _place_order_once(
    *,
    store: Store,
    payload: dict[str, Any],
    idempotency_key: str,
    request_fingerprint: str,
    actor: str,
    client_ip: str | None,
) -> Order:
    items_in = payload["items"]
    currency = payload.get("currency") or store.currency
    with transaction.atomic():
        record_id = idempotency.claim(
            store=store, key=idempotency_key, request_fingerprint=request_fingerprint
        )
        if record_id is None:
            stored = idempotency.existing_response(
                store=store, key=idempotency_key, request_fingerprint=request_fingerprint
            )
            if stored is None:
                raise _RecordVanished()
            return _replayed_order(store, stored)

        products = catalogue_for_skus(store, [item["sku"] for item in items_in])
        errors = catalogue_errors(store, items_in, currency, products)
        if errors:
            raise ValidationFailed(fields=errors)

        number = _next_order_number(store)
        customer, address, payment = payload["customer"], payload["shipping_address"], payload["payment"]
        brand, last4 = card_summary(payment["card_number"])
        order = Order(
            store=store,
            number=number,
            customer_email=customer["email"],
            customer_name=customer["name"],
            shipping_line1=address["line1"],
            shipping_line2=address.get("line2") or "",
            shipping_city=address["city"],
            shipping_postal_code=address["postal_code"],
            shipping_country=address["country"],
            currency=currency,
            subtotal=Decimal("0.00"),
            total=Decimal("0.00"),
            card_brand=brand,
            card_last4=last4,
            metadata=payload.get("metadata") or {},
            client_ip=client_ip,
        )
        lines: list[OrderItem] = []
        for item in items_in:
            product = products[item["sku"]]
            unit_price = Decimal(product.price).quantize(TWO_PLACES)
            lines.append(
                OrderItem(
                    store=store,
                    order=order,
                    product_id=product.pk,
                    sku=product.sku,
                    name=product.name,
                    unit_price=unit_price,
                    quantity=item["quantity"],
                    line_total=(unit_price * item["quantity"]).quantize(TWO_PLACES),
                )
            )
        order.subtotal = sum((line.line_total for line in lines), Decimal("0.00"))
        order.total = order.subtotal
        order.save(force_insert=True)
        OrderItem.all_stores.bulk_create(lines)
        emit(
            OrderCreated(
                number=number,
                total=str(order.total),
                currency=currency,
                item_count=len(lines),
                units=sum(line.quantity for line in lines),
                email_domain=order.customer_email.rsplit("@", 1)[-1],
                country=order.shipping_country,
            ),
            store=store,
            order_id=order.pk,
            subject=order,
            actor=actor,
        )
        attach_items(order, lines)
        response = idempotency.StoredResponse(
            status=202,
            body=order_json(order),
            headers={"Content-Type": "application/json", "Location": order_location(order)},
        )
        idempotency.complete(record_id=record_id, order_id=order.pk, response=response)
        # The card travels to the payment worker through the short-lived vault, never the DB, the
        # event or the Celery message. It is written before COMMIT: if the vault (Redis) is down,
        # the order could never be paid, so the whole request is refused with 503 and nothing is
        # kept — better than accepting an order we would then fail ourselves.
        card = {k: payment[k] for k in ("card_number", "exp_month", "exp_year", "cvc") if k in payment}
        _vault_card(store.pk, order.pk, card)
        # The reservation comes last, so the stock rows stay locked as briefly as possible: their
        # row locks are what concurrent orders for the same SKUs queue on, until this COMMIT.
        try:
            reserve_stock(
                store=store,
                lines=[(line.product_id, line.quantity) for line in lines],
                order_id=order.pk,
                actor=actor,
            )
        except InsufficientStock:
            vault.forget(store.pk, order.pk)  # no order, no card kept for it
            raise
    order.idempotent_response = response
    return order


class VaultUnavailable(ServiceUnavailable):
    code, message = (
        "vault_unavailable",
        "The card vault is unavailable, so the order was not taken. Retry shortly.",
    )


def _vault_card(store_id: int, order_id: Any, card: dict[str, Any]) -> None:
    try:
        vault.tokenize(store_id, order_id, card)
    except ImproperlyConfigured:  # a malformed CARD_VAULT_KEY is ours to fix, not a Redis outage
        raise
    except Exception as exc:  # Redis down or unreachable: refuse the whole order (rolls back)
        raise VaultUnavailable() from exc


def vault_card(store_id: int, order_id: Any, card: dict[str, Any]) -> None:
    """Put a card in the vault for an order, as intake does (503 `vault_unavailable` if it is
    down): the pay-again form's new card takes this path (payments.retry)."""
    _vault_card(store_id, order_id, card)


def order_location(order: Order) -> str:
    return f"/api/v1/orders/{order.pk}"


def _replayed_order(store: Store, stored: idempotency.StoredResponse) -> Order:
    order_id = stored.headers.get("Location", "").rsplit("/", 1)[-1]
    order = Order.all_stores.filter(store=store, pk=order_id).first() or Order(store=store)
    order.idempotent_response = stored
    return order


# ------------------------------------------------------------------------------- cancel

CANCELLABLE = sources_of(Order.TRANSITIONS, Order.Status.CANCELLED)


def cancel(*, store: Store, order: Order, actor: str, reason: str = "") -> Order:
    """Cancel until shipped: the stock comes back (committed units back on hand, what is still
    reserved released, each with its ledger row), `order.cancelled` is emitted — payments
    refunds a captured charge and fulfillment stops on it. Cancelling twice is a no-op; after
    shipping (or any other final state) 409 `invalid_transition`."""
    with transaction.atomic():
        locked = lock_order_or_404(store, order.pk)
        if locked.status == Order.Status.CANCELLED:
            return locked
        if locked.status not in CANCELLABLE:
            raise InvalidTransition(
                f"An order that is {locked.status} can no longer be cancelled.",
                extra={"from": locked.status, "to": Order.Status.CANCELLED},
            )
        previous = locked.status
        note = reason or "order cancelled"
        # Both are idempotent and driven by the ledger, so the order of payment and cancel does
        # not matter: whatever was committed goes back on hand, whatever is still held is released.
        returned = return_stock(store=store, order_id=locked.pk, actor=actor, reason=note)
        released = release_stock(store=store, order_id=locked.pk, actor=actor, reason=note)
        _move(
            locked,
            Order.Status.CANCELLED,
            reason=reason,
            actor=actor,
            data={
                "number": locked.number,
                "previous_status": previous,
                "payment_status": locked.payment_status,
                "total": str(locked.total),
                "currency": locked.currency,
                "units_released": released,
                "units_returned": returned,
            },
        )
        # A payment_failed order keeps its card for a retry: a cancelled one has no use for it.
        _forget_card_on_commit(locked)
    return locked


# ------------------------------------------------------------------------------- expiry

EXPIRABLE = sources_of(Order.TRANSITIONS, Order.Status.EXPIRED)


def expiry_minutes(store: Store) -> int:
    """The store's unpaid-order window (`order_expiry_minutes`, else ORDER_EXPIRY_MINUTES);
    0 or less means this store's orders never expire."""
    value = store.setting("order_expiry_minutes")
    if value is None:
        value = settings.ORDER_EXPIRY_MINUTES
    try:
        return int(value)
    except (TypeError, ValueError):
        return int(settings.ORDER_EXPIRY_MINUTES)


def expire(*, store: Store, order: Order, reason: str, actor: str = "reconciler") -> Order:
    """Close an order that was never paid (Saleor's `expire_orders`): `expired`, whatever it still
    holds reserved released through the ledger, `order.expired` {reason, previous_status, ...}.

    Only pending / fraud_review / payment_processing orders expire (409 `invalid_transition`
    otherwise); expiring an expired order is a no-op. *Whether* an order may expire — its age, a
    payment still running — is the caller's judgement (the payments reconciler decides, it knows the
    payment); this is the mechanics. A captured payment of an expired order is refunded by payments
    on `order.expired`, and its charge task never charges an order that left payment_processing."""
    with transaction.atomic():
        locked = lock_order_or_404(store, order.pk)
        if locked.status == Order.Status.EXPIRED:
            return locked
        if locked.status not in EXPIRABLE:
            raise InvalidTransition(
                f"An order that is {locked.status} cannot expire.",
                extra={"from": locked.status, "to": Order.Status.EXPIRED},
            )
        previous = locked.status
        released = release_stock(
            store=store, order_id=locked.pk, actor=actor, reason=f"order expired: {reason}"
        )
        _move(
            locked,
            Order.Status.EXPIRED,
            reason=reason,
            actor=actor,
            data={
                "reason": reason,
                "previous_status": previous,
                "number": locked.number,
                "payment_status": locked.payment_status,
                "total": str(locked.total),
                "currency": locked.currency,
                "units_released": released,
            },
        )
        # The card is of no use any more; dropping it also stops any charge that would still try.
        _forget_card_on_commit(locked)
    return locked


# ----------------------------------------------------------------------------- housekeeping


def purge_idempotency_records(*, older_than_hours: int | None = None, batch: int = 5000) -> int:
    """Forget idempotency keys past their TTL (never sooner than 24 h), in small batches so the
    hourly purge never holds long locks. Crosses stores on purpose (a beat job)."""
    hours = max(24, older_than_hours if older_than_hours is not None else settings.IDEMPOTENCY_KEY_TTL_HOURS)
    cutoff = timezone.now() - timedelta(hours=hours)
    deleted = 0
    while True:
        ids = list(
            IdempotencyRecord.all_stores.filter(created_at__lt=cutoff).values_list("pk", flat=True)[:batch]
        )
        if not ids:
            return deleted
        deleted += IdempotencyRecord.all_stores.filter(pk__in=ids).delete()[0]
