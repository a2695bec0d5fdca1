"""The alert listener and the webhook fan-out, on the foundation's event path.

Alerts come from events only, so every alert has an event behind it. Each handler is thin: read
the event's typed payload (`SomeEvent.of(event)`: a field an older row lacks reads as the class's
default), call a service.
"""

from __future__ import annotations

from typing import Any

from fulfillment.events import ShipmentMoved
from inventory.events import ForecastLow, ThresholdReached
from orderflow.core.events import Event, on_event
from orders.events import OrderMoved, OrderReconciled
from payments.events import GatewayDown, PaymentFailed, PaymentRetrying

from . import services, webhooks
from .models import Alert

K, SEV = Alert.Kind, Alert.Severity


def _actor(event: Event) -> str:
    return f"system:{event.topic}"


def _order_subject(event: Event) -> str:
    if event.order_id:
        return f"order:{event.order_id}"
    return f"{event.subject_type or 'event'}:{event.subject_id or event.pk}"


def _sku_subject(sku: str | None) -> str | None:
    return f"sku:{sku}" if sku else None


def _shipment_subject(event: Event) -> str:
    tracking = ShipmentMoved.of(event).tracking_number
    if tracking:
        return f"shipment:{tracking}"
    return f"{event.subject_type or 'shipment'}:{event.subject_id or event.pk}"


def _raise(event: Event, *, kind: str, subject: str, severity: str, message: str, **data: Any) -> Alert:
    return services.raise_alert(
        store=event.store,
        kind=kind,
        subject=subject,
        severity=severity,
        message=message,
        data={"topic": event.topic, **{k: v for k, v in data.items() if v is not None}},
        event_id=event.pk,
        order_id=event.order_id,
        actor=_actor(event),
    )


def _clear(event: Event, *, kind: str | list[str], subject: str, **narrow: Any) -> list[Alert]:
    return services.resolve_alerts(
        store=event.store,
        kind=kind,
        subject=subject,
        actor=_actor(event),
        reason=f"auto: {event.topic}",
        **narrow,
    )


# ------------------------------------------------------------------------------- inventory


@on_event("inventory.threshold_reached", queue="default", atomic=True)
def stock_threshold_reached(event: Event) -> None:
    d = ThresholdReached.of(event)
    subject = _sku_subject(d.sku)
    if subject is None:
        return
    sku, available, threshold, kind = d.sku, d.available, d.threshold, d.kind
    if kind not in (K.LOW_STOCK, K.OUT_OF_STOCK):
        kind = K.OUT_OF_STOCK if available is not None and available <= 0 else K.LOW_STOCK
    if kind == K.OUT_OF_STOCK:
        _raise(event, kind=K.OUT_OF_STOCK, subject=subject, severity=SEV.CRITICAL,
               message=f"Out of stock: {sku}", sku=sku, available=available, threshold=threshold)  # fmt: skip
        return
    left = f" ({available} left, threshold {threshold})" if available is not None else ""
    _raise(event, kind=K.LOW_STOCK, subject=subject, severity=SEV.WARNING,
           message=f"Low stock: {sku}{left}", sku=sku, available=available, threshold=threshold)  # fmt: skip
    if available is not None and available > 0:  # back above zero: no longer out of stock
        _clear(event, kind=K.OUT_OF_STOCK, subject=subject)


@on_event("inventory.forecast_low", queue="default", atomic=True)
def stock_forecast_low(event: Event) -> None:
    d = ForecastLow.of(event)
    subject = _sku_subject(d.sku)
    if subject is None:
        return
    days, lead = d.days_of_cover, d.lead_time_days
    cover = f" runs out in ~{float(days):.1f} days" if days is not None else " runs out soon"
    lead_text = f" (lead time {lead} days)" if lead is not None else ""
    _raise(event, kind=K.LOW_STOCK, subject=subject, severity=SEV.WARNING,
           message=f"Low stock forecast: {d.sku}{cover}{lead_text}",
           sku=d.sku, forecast=True, days_of_cover=days, lead_time_days=lead)  # fmt: skip


@on_event("inventory.threshold_cleared", queue="default", atomic=True)
def stock_threshold_cleared(event: Event) -> None:
    subject = _sku_subject(event.payload.sku)
    if subject is not None:
        _clear(event, kind=[K.LOW_STOCK, K.OUT_OF_STOCK], subject=subject)


@on_event("inventory.forecast_cleared", queue="default", atomic=True)
def stock_forecast_cleared(event: Event) -> None:
    """The forecast recovered: resolve low_stock only if a forecast raised it last (an alert the
    threshold bumped since stays open until `inventory.threshold_cleared`)."""
    subject = _sku_subject(event.payload.sku)
    if subject is not None:
        _clear(event, kind=K.LOW_STOCK, subject=subject, data_contains={"forecast": True})


# -------------------------------------------------------------------------------- payments


@on_event("payment.retrying", queue="default", atomic=True)
def payment_retrying(event: Event) -> None:
    d = PaymentRetrying.of(event)
    attempt, max_attempts = d.attempt, d.max_attempts
    if attempt is not None and max_attempts is not None:
        message = f"Payment retrying (attempt {attempt} of {max_attempts})"
    elif attempt is not None:
        message = f"Payment retrying (attempt {attempt})"
    else:
        message = "Payment retrying"
    _raise(event, kind=K.PAYMENT_RETRYING, subject=_order_subject(event), severity=SEV.WARNING,
           message=message, attempt=attempt, max_attempts=max_attempts,
           next_delay_seconds=d.next_delay_seconds, error=d.error)  # fmt: skip


def _charge_was_retried(event: Event) -> bool:
    """Publish-time filter: `payment.retrying` (and so a payment_retrying alert) only follows a
    failed gateway call, so a charge that succeeded on its first attempt has nothing to resolve —
    no message for most orders. Unknown attempts: send it."""
    return event.payload.attempts != 1


@on_event("payment.processed", queue="default", atomic=True, when=_charge_was_retried)
def payment_processed(event: Event) -> None:
    _clear(event, kind=K.PAYMENT_RETRYING, subject=_order_subject(event))


@on_event("payment.failed", queue="default", atomic=True)
def payment_failed(event: Event) -> None:
    d = PaymentFailed.of(event)
    subject = _order_subject(event)
    reason = d.decline_code or d.error or d.reason or ""
    if d.error == "gateway_unavailable" and d.message:
        reason = d.message  # "the gateway was unavailable for N minutes": the window ran out
    message = f"Payment failed: {reason}" if reason else "Payment failed"
    _raise(event, kind=K.PAYMENT_FAILED, subject=subject, severity=SEV.CRITICAL, message=message,
           error=d.error, decline_code=d.decline_code, attempts=d.attempts)  # fmt: skip
    _clear(event, kind=K.PAYMENT_RETRYING, subject=subject)


# ---------------------------------------------------------------------------------- orders


@on_event("order.fraud_review", queue="default", atomic=True)
def order_fraud_review(event: Event) -> None:
    d = OrderMoved.of(event)
    score = d.score
    message = "Order held for fraud review" + (f" (risk score {score})" if score is not None else "")
    _raise(event, kind=K.FRAUD_REVIEW, subject=_order_subject(event), severity=SEV.WARNING,
           message=message, score=score, reason=d.reason or None, rules=d.rules)  # fmt: skip


def _review_may_have_happened(event: Event) -> bool:
    """Publish-time filter: an order approved straight from `pending` was never in review, so it
    has no fraud_review alert to resolve — no message for most orders."""
    return not (event.topic == "order.payment_processing" and OrderMoved.of(event).from_state == "pending")


@on_event("order.payment_processing", "order.rejected", "order.cancelled", "order.expired",
          queue="default", atomic=True, when=_review_may_have_happened)  # fmt: skip
def order_left_review(event: Event) -> None:
    """Approved, rejected, cancelled or expired: the review is over. A cancelled order also stops
    retrying its payment."""
    kinds = [K.FRAUD_REVIEW]
    if event.topic in ("order.cancelled", "order.expired"):
        kinds.append(K.PAYMENT_RETRYING)
    _clear(event, kind=kinds, subject=_order_subject(event))


# Records for operators, never auto-resolved: a repair means some message or handler was lost (worth
# a look even when the order then moved on), and an expiry is a business fact.


@on_event("order.reconciled", queue="default", atomic=True)
def order_reconciled(event: Event) -> None:
    d = OrderReconciled.of(event)
    problem, action = d.problem, d.action
    _raise(event, kind=K.ORDER_RECONCILED, subject=_order_subject(event), severity=SEV.WARNING,
           message=f"Order reconciled: {problem.replace('_', ' ')} ({action.replace('_', ' ')})",
           problem=problem, action=action, units=d.units)  # fmt: skip


@on_event("order.expired", queue="default", atomic=True)
def order_expired(event: Event) -> None:
    d = OrderMoved.of(event)
    previous, reason = d.previous_status, d.reason or ""
    message = "Order expired" + (f" in {previous}" if previous else "") + (f": {reason}" if reason else "")
    _raise(event, kind=K.ORDER_EXPIRED, subject=_order_subject(event), severity=SEV.INFO,
           message=message, previous_status=previous, reason=reason or None)  # fmt: skip


# --------------------------------------------------------------------------------- gateway


def _superseded(event: Event, *clearing_topics: str) -> bool:
    """A later event of the same subject already undid this one. Handlers of events published
    together run in parallel worker processes, so `gateway.up` may be handled before the
    `gateway.down` it answers; raising then would leave an alert open that nothing will clear."""
    return Event.all_stores.filter(
        store_id=event.store_id,
        topic__in=clearing_topics,
        subject_type=event.subject_type,
        subject_id=event.subject_id,
        pk__gt=event.pk,
    ).exists()


@on_event("gateway.down", queue="default", atomic=True)
def gateway_down(event: Event) -> None:
    if _superseded(event, "gateway.up"):
        return
    d = GatewayDown.of(event)
    detail = d.error or ""
    _raise(event, kind=K.GATEWAY_DOWN, subject="gateway", severity=SEV.CRITICAL,
           message="Payment gateway down" + (f": {detail}" if detail else ""),
           error=detail or None, failures=d.failures)  # fmt: skip


@on_event("gateway.up", queue="default", atomic=True)
def gateway_up(event: Event) -> None:
    _clear(event, kind=K.GATEWAY_DOWN, subject="gateway")


# ------------------------------------------------------------------------------- shipments


@on_event("shipment.exception", queue="default", atomic=True)
def shipment_exception(event: Event) -> None:
    d = ShipmentMoved.of(event)
    tracking, carrier = d.tracking_number, d.carrier
    detail = d.reason or ""
    label = " ".join(x for x in (str(carrier).upper() if carrier else "", tracking or "") if x)
    message = "Delivery exception" + (f": {label}" if label else "") + (f" — {detail}" if detail else "")
    _raise(event, kind=K.DELIVERY_EXCEPTION, subject=_shipment_subject(event), severity=SEV.WARNING,
           message=message, tracking_number=tracking, carrier=carrier)  # fmt: skip


@on_event("shipment.in_transit", "shipment.out_for_delivery", "shipment.delivered", "shipment.returned",
          queue="default", atomic=True)  # fmt: skip
def shipment_moving_again(event: Event) -> None:
    _clear(event, kind=K.DELIVERY_EXCEPTION, subject=_shipment_subject(event))


# -------------------------------------------------------------------------------- webhooks


@on_event("*", queue="default", atomic=True, when=webhooks.store_wants_event)
def fan_out_to_webhooks(event: Event) -> None:
    """Every event, every store: a cached lookup; deliveries only where an endpoint wants it.
    The publisher asks the same question first (`when`), so an event no endpoint wants costs no task."""
    webhooks.create_deliveries(event=event)
