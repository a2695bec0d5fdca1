"""Refunds of a captured payment: by amount or by order lines, several per payment, never more in
total than was captured. A full refund (the order was cancelled or expired, or the admin's "refund
the rest") is the special case: one refund of whatever remains.

How a refund never goes wrong:
* it is written first (`pending`, with its own gateway idempotency key) under the order's and the
  payment's row locks, which serialise every refund of the payment; what remains refundable is the
  capture minus what is refunded and what is pending, so two concurrent requests can never
  together exceed the capture (and the `payment_refund_within_amount` CHECK holds the total);
* the gateway call runs outside any transaction; a retry of the same refund — the caller's retry
  with the same `Idempotency-Key`, the retry task, a redelivered message — asks the gateway with
  the same key, so the money moves at most once;
* its success is booked under the same locks, once: the payment's refunded amount grows, its status
  is derived from the amounts (`partially_refunded` or `refunded`), the order mirrors it, and the
  refunded lines' units go back on hand when the refund asked to restock.

Gateway faults and refusals are kept apart (see `gateway`): a fault leaves the refund pending and
retried by `tasks.retry_refund` (API: 503); a refusal fails it and frees its amount (API: 502).
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from celery import current_app
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from inventory import services as inventory_services
from orderflow.core.errors import Conflict, DomainError, ValidationFailed
from orderflow.core.events import emit
from orderflow.core.statemachine import transition
from orderflow.core.tenancy import Store
from orders import services as order_services
from orders.idempotency import IdempotencyKeyReused
from orders.locks import lock_order_or_404
from orders.states import OrderStatus

from . import breaker, gateway
from .events import PaymentRefundFailed, PaymentRefundRequested
from .models import Payment, Refund, RefundLine
from .services import ACTOR, Step, _gateway_alive, _gateway_failed, max_attempts, retry_delay

log = logging.getLogger("orderflow.payments")

OS = OrderStatus
PS = Payment.Status
RS = Refund.Status
CENT = Decimal("0.01")

if TYPE_CHECKING:  # annotations only: orders are read and moved through orders' services
    from orders.models import Order, OrderItem


class RefundNotAllowed(Conflict):
    code, message = "not_captured", "This order has no captured payment to refund."


class RefundExceedsCaptured(Conflict):
    code, message = "refund_exceeds_captured", "The refund is larger than what remains refundable."


class RefundRefused(DomainError):
    code, status, message = "refund_refused", 502, "The payment gateway refused the refund."


class GatewayUnavailable(DomainError):
    code, status, message = (
        "gateway_unavailable",
        503,
        "The payment gateway is unavailable; the refund is pending and will be retried.",
    )


# ------------------------------------------------------------------------------- reads


def refunds_for_order(store: Store, order_id: uuid.UUID | str) -> list[Refund]:
    return list(
        Refund.all_stores.filter(store=store, order_id=order_id)
        .prefetch_related("lines__item")
        .order_by("created_at", "id")
    )


def refundable_amount(payment: Payment) -> Decimal:
    """The capture minus what is refunded and what is pending (pending refunds may have happened)."""
    if payment.status not in Payment.REFUNDABLE_STATUSES:
        return Decimal("0.00")
    pending = Refund.all_stores.filter(
        store_id=payment.store_id, payment=payment, status=RS.PENDING
    ).aggregate(s=Sum("amount"))["s"] or Decimal("0")
    return payment.amount - payment.refunded_amount - pending


def refundable_quantities(store: Store, order: Order) -> dict[int, int]:
    """Per order line id, the units not yet refunded (or pending)."""
    taken: dict[int, int] = defaultdict(int)
    for row in (
        RefundLine.all_stores.filter(
            store=store, refund__order=order, refund__status__in=Refund.HOLDING_STATUSES
        )
        .values("item_id")
        .annotate(q=Sum("quantity"))
    ):
        taken[row["item_id"]] = row["q"]
    return {item.pk: item.quantity - taken[item.pk] for item in order.items.all()}


def payment_needs_refund(payment: Payment) -> bool:
    """A captured payment whose order will not be fulfilled (cancelled, or expired in flight)."""
    return payment.status in Payment.REFUNDABLE_STATUSES and payment.order.status in (
        OS.CANCELLED,
        OS.EXPIRED,
    )


# ------------------------------------------------------------------------------ create


def create_refund(
    *,
    store: Store,
    order_id: uuid.UUID | str,
    actor: str,
    amount: Decimal | None = None,
    lines: list[dict[str, Any]] | None = None,
    reason: str = "",
    restock: bool = False,
    client_key: str = "",
) -> tuple[Refund, bool]:
    """Refund `amount`, or the given `lines` ([{"sku" or "line": id, "quantity"}]) at the prices
    the order was placed at, through the gateway. Returns (refund, created): a retry with the same
    `client_key` gives back the first refund (finishing it if it was left pending).

    400 `validation_error` for a malformed request, 409 `not_captured` / `refund_exceeds_captured`,
    502 `refund_refused` when the gateway says no, 503 `gateway_unavailable` (the refund stays
    pending and is retried)."""
    _check_shape(amount=amount, lines=lines, restock=restock)
    fingerprint = _fingerprint(amount=amount, lines=lines, reason=reason, restock=restock)
    with transaction.atomic():
        order, payment = _lock(store, order_id)
        existing = None
        if client_key and payment is not None:
            existing = Refund.all_stores.filter(store=store, payment=payment, client_key=client_key).first()
        if existing is not None:
            if existing.fingerprint != fingerprint:
                raise IdempotencyKeyReused()
            refund, created = existing, False
        else:
            if payment is None or payment.status not in Payment.REFUNDABLE_STATUSES:
                raise RefundNotAllowed(extra={"payment_status": order.payment_status})
            refund = _open_refund(
                store=store,
                order=order,
                payment=payment,
                amount=amount,
                lines=lines,
                reason=reason,
                restock=restock,
                actor=actor,
                client_key=client_key,
                fingerprint=fingerprint,
                idempotency_key=f"refund-{uuid.uuid4()}",
            )
            created = True
    if refund.status == RS.FAILED:
        raise RefundRefused(refund.last_error or None, extra=_refund_extra(refund))
    if refund.status == RS.PENDING:
        step = drive_refund(store=store, refund_id=refund.pk, attempt=refund.attempts + 1)
        refund.refresh_from_db()
        if step.kind in ("retry", "wait"):
            _enqueue_retry(refund, step, attempt=refund.attempts + (1 if step.kind == "retry" else 0))
            raise GatewayUnavailable(extra=_refund_extra(refund))
        if refund.status == RS.FAILED:
            raise RefundRefused(refund.last_error or None, extra=_refund_extra(refund))
    return refund, created


def refund_remaining(
    *, store: Store, payment_id: uuid.UUID | str, attempt: int = 1, actor: str = ACTOR
) -> Step:
    """Refund whatever of the capture remains, with the payment's own key (`refund-<payment id>`):
    the cancel/expiry refund and the admin's action. A second run finds its refund done."""
    with transaction.atomic():
        payment = Payment.all_stores.filter(store=store, pk=payment_id).first()
        if payment is None:
            return Step("done", outcome="missing")
        order, payment = _lock(store, payment.order_id)
        assert payment is not None
        refund = Refund.all_stores.filter(store=store, idempotency_key=payment.refund_idempotency_key).first()
        if refund is None:
            remaining = refundable_amount(payment)
            if remaining <= 0:
                return Step("done", outcome=payment.status)
            refund = _open_refund(
                store=store,
                order=order,
                payment=payment,
                amount=remaining,
                lines=None,
                reason=f"order {order.status}"
                if order.status in (OS.CANCELLED, OS.EXPIRED)
                else "refund the rest",
                restock=False,
                actor=actor,
                client_key="",
                fingerprint="",
                idempotency_key=payment.refund_idempotency_key,
            )
    if refund.status != RS.PENDING:
        return Step("done", outcome=_outcome(refund))
    return drive_refund(store=store, refund_id=refund.pk, attempt=attempt)


def _check_shape(*, amount: Decimal | None, lines: list[dict[str, Any]] | None, restock: bool) -> None:
    if (amount is None) == (lines is None):
        raise ValidationFailed(
            "Give either an amount or lines to refund.",
            fields={"$": ["Give exactly one of `amount` and `lines`."]},
        )
    if amount is not None:
        if amount <= 0 or amount != amount.quantize(CENT):
            raise ValidationFailed(fields={"amount": ["Must be a positive amount with at most 2 decimals."]})
        if restock:
            raise ValidationFailed(fields={"restock": ["Restocking needs `lines`: which units come back."]})
    if lines is not None and not lines:
        raise ValidationFailed(fields={"lines": ["Name at least one line."]})


def _fingerprint(**body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _lock(store: Store, order_id: Any) -> tuple[Order, Payment | None]:
    """Lock order then payment (the order `services._locked` takes them in, so no deadlock)."""
    order = lock_order_or_404(store, order_id)
    payment = Payment.all_stores.select_for_update().filter(store=store, order=order).first()
    if payment is not None:
        payment.store, payment.order = store, order
    return order, payment


def _resolve_lines(store: Store, order: Order, lines: list[dict[str, Any]]) -> list[tuple[OrderItem, int]]:
    """Each requested line → (order line, units), refusing unknown lines and units already refunded."""
    items = list(order.items.all())
    by_sku = {i.sku: i for i in items}
    by_id = {i.pk: i for i in items}
    left = refundable_quantities(store, order)
    errors: dict[str, list[str]] = {}
    wanted: dict[int, int] = defaultdict(int)
    for n, line in enumerate(lines):
        sku, line_id = line.get("sku"), line.get("line")
        item = by_sku.get(sku) if sku is not None else by_id.get(line_id) if line_id is not None else None
        if item is None:
            errors[f"lines[{n}]"] = ["No such line on this order (give its `sku` or its `line` id)."]
            continue
        wanted[item.pk] += line["quantity"]
        if wanted[item.pk] > left[item.pk]:
            errors[f"lines[{n}].quantity"] = [
                f"Only {left[item.pk]} of {item.quantity} × {item.sku} remain refundable."
            ]
    if errors:
        raise ValidationFailed(fields=errors)
    return [(by_id[pk], q) for pk, q in wanted.items()]


def _open_refund(
    *,
    store: Store,
    order: Order,
    payment: Payment,
    amount: Decimal | None,
    lines: list[dict[str, Any]] | None,
    reason: str,
    restock: bool,
    actor: str,
    client_key: str,
    fingerprint: str,
    idempotency_key: str,
) -> Refund:
    """Write the pending refund (the caller holds the locks), after checking what remains."""
    resolved = _resolve_lines(store, order, lines) if lines is not None else []
    if resolved:
        amount = sum((item.unit_price * q for item, q in resolved), Decimal("0.00"))
    assert amount is not None
    remaining = refundable_amount(payment)
    if amount > remaining:
        raise RefundExceedsCaptured(
            f"A refund of {amount} {payment.currency} exceeds the {remaining} {payment.currency} that remain "
            f"refundable of the {payment.amount} captured.",
            extra={"refundable_amount": str(remaining), "captured_amount": str(payment.amount)},
        )
    refund = Refund.all_stores.create(
        store=store,
        payment=payment,
        order=order,
        amount=amount,
        currency=payment.currency,
        reason=reason[:500],
        restock=restock,
        idempotency_key=idempotency_key,
        client_key=client_key,
        fingerprint=fingerprint,
        actor=actor[:150],
    )
    RefundLine.all_stores.bulk_create(
        [
            RefundLine(store=store, refund=refund, item=item, quantity=q, amount=item.unit_price * q)
            for item, q in resolved
        ]
    )
    emit(
        PaymentRefundRequested(
            refund=str(refund.pk),
            amount=str(amount),
            currency=payment.currency,
            lines=[{"sku": item.sku, "quantity": q} for item, q in resolved],
            restock=restock,
            reason=reason[:200],
        ),
        store=store,
        order_id=order.pk,
        subject=payment,
        actor=actor,
    )
    return refund


# ------------------------------------------------------------------------------- drive


def drive_refund(*, store: Store, refund_id: uuid.UUID | str, attempt: int = 1) -> Step:
    """One turn at the gateway for a pending refund (the API call, the retry task, the cancel task).

    "done" when it succeeded or failed; "retry" after a transient fault (spends the budget);
    "wait" while the breaker is open (free)."""
    refund = Refund.all_stores.select_related("payment").filter(store=store, pk=refund_id).first()
    if refund is None or refund.status != RS.PENDING:
        return Step("done", outcome=_outcome(refund) if refund else "missing")
    permit = breaker.before_call()
    if not permit.allowed:
        return Step("wait", delay=permit.wait_seconds + breaker.jitter(), outcome="breaker_open")
    Refund.all_stores.filter(pk=refund.pk).update(attempts=attempt, updated_at=timezone.now())
    try:
        booked = gateway.create_refund(
            charge_id=refund.payment.gateway_charge_id,
            amount=refund.amount,
            idempotency_key=refund.idempotency_key,
        )
    except gateway.GatewayError as exc:
        if exc.counts_against_gateway:
            _gateway_failed(store, exc)
        Refund.all_stores.filter(pk=refund.pk).update(error_code=exc.code[:50], last_error=str(exc)[:500])
        if attempt >= max_attempts():
            _fail(store, refund, exc, attempt)
            return Step("done", outcome="refund_failed")
        return Step("retry", delay=retry_delay(attempt), outcome="retrying")
    except gateway.PaymentError as exc:
        _gateway_alive()
        _fail(store, refund, exc, attempt)
        return Step("done", outcome="refund_failed")
    _gateway_alive()
    return Step("done", outcome=_book(store, refund, booked))


def _book(store: Store, refund: Refund, booked: gateway.Refund) -> str:
    """The gateway refunded: book it once, under the locks."""
    now = timezone.now()
    with transaction.atomic():
        order, payment = _lock(store, refund.order_id)
        assert payment is not None
        fresh = Refund.all_stores.select_for_update().get(pk=refund.pk)
        if fresh.status != RS.PENDING:
            return _outcome(fresh)
        Refund.all_stores.filter(pk=fresh.pk).update(
            status=RS.SUCCEEDED,
            gateway_refund_id=booked.id,
            succeeded_at=now,
            updated_at=now,
            error_code="",
            last_error="",
        )
        total = payment.refunded_amount + fresh.amount
        to = PS.REFUNDED if total >= payment.amount else PS.PARTIALLY_REFUNDED
        lines = list(fresh.lines.select_related("item"))
        restocked = 0
        if fresh.restock and lines:
            restocked = inventory_services.return_stock(
                store=store,
                order_id=order.pk,
                actor=fresh.actor or ACTOR,
                reason=f"refund {fresh.pk}",
                quantities={line.item.product_id: line.quantity for line in lines},
            )
        transition(
            payment,
            to,
            reason=fresh.reason or f"refund of {fresh.amount}",
            actor=fresh.actor or ACTOR,
            updates={"refunded_amount": total, "refund_id": booked.id, "refunded_at": now},
            data={
                "refund": str(fresh.pk),
                "refund_id": booked.id,
                "amount": str(fresh.amount),
                "currency": payment.currency,
                "refunded_total": str(total),
                "remaining": str(payment.amount - total),
                "charge_id": payment.gateway_charge_id,
                "lines": [{"sku": line.item.sku, "quantity": line.quantity} for line in lines],
                "restocked": restocked,
            },
        )
        order_services.record_payment_progress(order=order, status=to)
    return to


def _fail(store: Store, refund: Refund, exc: Exception, attempt: int) -> None:
    """The gateway said no (or never answered within the budget): the refund's amount is free again."""
    now = timezone.now()
    with transaction.atomic():
        changed = Refund.all_stores.filter(pk=refund.pk, status=RS.PENDING).update(
            status=RS.FAILED,
            error_code=str(getattr(exc, "code", "error"))[:50],
            last_error=str(exc)[:500],
            failed_at=now,
            updated_at=now,
        )
        if changed:
            emit(
                PaymentRefundFailed(
                    refund=str(refund.pk),
                    amount=str(refund.amount),
                    error_code=getattr(exc, "code", "error"),
                    message=str(exc)[:200],
                    attempts=attempt,
                ),
                store=store,
                order_id=refund.order_id,
                subject=refund.payment,
                actor=ACTOR,
            )


def stuck_refunds(*, older_than_seconds: float, batch: int = 500) -> list[tuple[uuid.UUID, int, int]]:
    """Pending refunds nothing has touched for too long (their retry message was lost): (id, store
    id, next attempt), touched so the next sweep leaves them to the re-driven task. Crosses stores
    (a beat job); SKIP LOCKED, so a live task's row is not taken."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    with transaction.atomic():
        found = list(
            Refund.all_stores.filter(status=RS.PENDING, updated_at__lt=cutoff)
            .order_by("updated_at")
            .select_for_update(skip_locked=True)
            .values_list("pk", "store_id", "attempts")[:batch]
        )
        if found:
            Refund.all_stores.filter(pk__in=[pk for pk, _, _ in found]).update(updated_at=timezone.now())
    return [(pk, store_id, attempts + 1) for pk, store_id, attempts in found]


def _outcome(refund: Refund) -> str:
    if refund.status == RS.FAILED:
        return "refund_failed"
    if refund.status == RS.PENDING:
        return "pending"
    return Payment.all_stores.filter(pk=refund.payment_id).values_list("status", flat=True).first() or ""


def _refund_extra(refund: Refund) -> dict[str, Any]:
    return {"refund_id": str(refund.pk), "refund_status": refund.status, "gateway_code": refund.error_code}


def _enqueue_retry(refund: Refund, step: Step, *, attempt: int) -> None:
    """Hand the pending refund to `payments.retry_refund` (by name: tasks.py imports this module).
    A dead broker is logged, not raised: the reconciler re-drives pending refunds."""
    try:
        current_app.send_task(
            "payments.retry_refund",
            args=[str(refund.pk), refund.store_id],
            kwargs={"attempt": attempt},
            countdown=step.delay,
        )
    except Exception:  # noqa: BLE001 — the refund stays pending either way
        log.exception("could not enqueue the retry of refund %s", refund.pk)
