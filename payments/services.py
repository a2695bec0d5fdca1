"""Writes of the payments step: opening the payment of an approved order and charging it.

The promise: a customer is charged exactly once or not at all. The pieces that keep it:
* the gateway idempotency key is fixed on the Payment row before the first attempt, so every try
  (retries, redeliveries after a crash, duplicate tasks) asks for the same charge;
* no database transaction is held open across a gateway call; each step before and after is its
  own short transaction with row locks, and a task that finds the payment final does nothing;
* an order that left `payment_processing` (cancelled, expired) is not charged, and one that left
  it while its charge was in flight is refunded (see `receivers.refund_if_order_gone`).
"""

from __future__ import annotations

import logging
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from fraud import services as fraud_services
from orderflow.core import vault
from orderflow.core.events import atomic_with_events, emit
from orderflow.core.statemachine import transition
from orderflow.core.tenancy import Store
from orders import selectors as order_selectors
from orders import services as order_services
from orders.locks import lock_order
from orders.states import OrderStatus

from . import breaker, gateway
from .events import (
    GatewayDown,
    GatewayUp,
    PaymentCancelled,
    PaymentFailed,
    PaymentProcessed,
    PaymentResumed,
    PaymentRetrying,
    PaymentWaiting,
)
from .models import Payment, PaymentAttempt

if TYPE_CHECKING:  # annotations only: orders are read and moved through orders' services
    from orders.models import Order

log = logging.getLogger("orderflow.payments")

ACTOR = "payments"
OS = OrderStatus
PS = Payment.Status


# ----------------------------------------------------------------------------- payment


def screen_order(*, store: Store, order_id: uuid.UUID | str) -> Order | None:
    """The fraud check (fraud.services.screen) and, when it approves, the order's Payment opened in
    the same transaction: an approved order never waits without a payment to charge."""
    with transaction.atomic():
        return _screen_and_open(store, order_id)


def _screen_and_open(store: Store, order_id: uuid.UUID | str) -> Order | None:
    order = fraud_services.screen(store=store, order_id=order_id)
    if order is not None and order.status == OS.PAYMENT_PROCESSING:
        open_payment(order=order)
    return order


@dataclass(frozen=True)
class Started:
    """A first attempt begun with the screening: the card to charge and the gateway slot held for
    the call (given back by `attempt_charge`, whatever happens)."""

    card: dict[str, Any]
    slot: str
    attempt: PaymentAttempt


def screen_and_start_charge(
    *, store: Store, order_id: uuid.UUID | str
) -> tuple[Order | None, Payment | None, Started | None]:
    """`screen_order` and, when the new payment's charge can go out at once (its card in the vault,
    the breaker closed, a gateway slot free), its first attempt begun in the same transaction: one
    commit and one lock of the order from the screening to the gateway call, instead of a second
    transaction that locks the order and the payment again. Anything else (no card, an open or
    half-open breaker, a full semaphore) leaves the payment pending, and the charge turn deals with
    it as with any other payment. Returns the order, the payment opened here (None: none was) and
    the attempt begun (None: not begun)."""
    started = None
    try:
        with atomic_with_events():
            order = _screen_and_open(store, order_id)
            payment = opened_payment(order)
            if payment is not None:
                started = _start_at_once(store, payment, order)
    except BaseException:
        if started is not None:  # the transaction did not commit: the attempt never began
            breaker.release_slot(started.slot)
        raise
    return order, payment, started


def _start_at_once(store: Store, payment: Payment, order: Order) -> Started | None:
    """Inside the screening transaction, the order locked and `payment` just opened (pending, no
    attempts): begin its first attempt if nothing would make the charge wait. The breaker is asked
    only whether it is closed — a half-open breaker's single probe is left to the charge turn's
    `before_call`, so no probe permit is taken for a call that might not be made."""
    payment.store = order.store = store
    card = vault.detokenize(store.pk, order.pk)
    if not card or not card.get("card_number") or not breaker.is_closed():
        return None
    taken = breaker.acquire_slots(1)
    if not taken:
        return None
    try:
        attempt = _record_attempt(payment, payment, order)
    except BaseException:
        breaker.release_slot(taken[0])
        raise
    return Started(card=card, slot=taken[0], attempt=attempt)


def opened_payment(order: Order | None) -> Payment | None:
    """The Payment `open_payment` just opened for this order instance, with no query (None if it
    did not open one here)."""
    if order is None or not type(order).payment.is_cached(order):  # our reverse relation
        return None
    return order.payment


def approve_order(*, store: Store, order_id: uuid.UUID | str, actor: str) -> Order:
    """An operator clears an order held for review (fraud.services.approve) and its Payment opens
    in the same transaction, so the API's answer can show it; the charge follows on
    `fraud.reviewed` (receivers.charge_after_review)."""
    with transaction.atomic():
        order = fraud_services.approve(store=store, order_id=order_id, actor=actor)
        open_payment(order=order)
    return order


def open_payment(*, order: Order) -> Payment:
    """The order's Payment, created once with its gateway idempotency key fixed up front. The
    caller holds the order's lock (orders.locks), so no twin creates it meanwhile."""
    existing = Payment.all_stores.filter(order=order).first()
    if existing is not None:
        return existing
    payment_id = uuid.uuid4()
    payment = Payment.all_stores.create(
        id=payment_id,
        order=order,
        store=order.store,
        amount=order.total,
        currency=order.currency,
        idempotency_key=f"charge-{payment_id}",
        window_ends_at=order.created_at + timedelta(minutes=payment_window_minutes(order.store)),
    )
    payment.known_attempt_rows = 0  # a new payment has no attempts: _begin_attempt need not count
    return payment


def payment_window_minutes(store: Store) -> int:
    """How long from placing an order waits out a gateway outage (`payment_window_minutes`, else
    PAYMENT_WINDOW_MINUTES). Counted from the order's creation, as the card vault's TTL is, and
    never longer than it (the serializer and the settings refuse that)."""
    value = store.setting("payment_window_minutes")
    return int(settings.PAYMENT_WINDOW_MINUTES if value is None else value)


def ensure_payment(*, store: Store, order_id: uuid.UUID | str) -> Payment | None:
    """The Payment of an order that is in payment_processing (created if it is missing)."""
    payment = Payment.all_stores.select_related("order").filter(store=store, order_id=order_id).first()
    if payment is not None:
        return payment
    with transaction.atomic():
        order = lock_order(store, order_id)
        if order is None or order.status != OS.PAYMENT_PROCESSING:
            return None
        return open_payment(order=order)


@dataclass(frozen=True)
class Step:
    """What the charge task does next: stop ("done"), retry after a failed call ("retry", spends the
    retry budget) or wake up later while waiting for the gateway ("wait", free). `wake` names the
    wait the wake-up belongs to; `release` asks the task to release waiting payments now (the
    gateway is back, or a released charge gave back its slot)."""

    kind: str
    delay: float = 0.0
    outcome: str = ""
    wake: str | None = None
    release: bool = False


def max_attempts() -> int:
    return settings.PAYMENT_MAX_RETRIES + 1


def max_attempts_when_unknown() -> int:
    """After a read timeout the charge may exist: giving up then could leave the shopper charged
    for a failed order. So the last word must be an answer from the gateway for our key, and the
    budget stretches (twice the normal one) while the outcome is unknown."""
    return 2 * max_attempts()


def retry_delay(attempt: int) -> float:
    """Exponential backoff with full jitter, as Celery's retry_backoff/retry_jitter compute it:
    min(BACKOFF_MAX, BACKOFF * 2**(attempt-1)), then uniformly below it when jitter is on."""
    cap = min(settings.PAYMENT_RETRY_BACKOFF_MAX, settings.PAYMENT_RETRY_BACKOFF * (2 ** max(0, attempt - 1)))
    return random.uniform(0, cap) if settings.PAYMENT_RETRY_JITTER else cap


def wake_delay(payment: Payment) -> float:
    """The countdown of a waiting order's next wake-up: at most PAYMENT_WAIT_WAKEUP_SECONDS
    (jittered down to half of it, so waiting orders do not wake together), never past half the
    broker's visibility timeout (a longer countdown is redelivered again and again), and no later
    than just after its window ends (to fail it then)."""
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600)
    cap = min(float(settings.PAYMENT_WAIT_WAKEUP_SECONDS), visibility / 2)
    delay = random.uniform(cap / 2, cap)
    left = (window_ends_at(payment) - timezone.now()).total_seconds()
    delay = min(delay, max(0.0, left) + 0.5)
    return max(0.5, delay)


def _wait_token(payment: Payment) -> str | None:
    return payment.waiting_since.isoformat() if payment.waiting_since else None


def window_ends_at(payment: Payment) -> datetime:
    """The end of the payment's window (set when it opened; derived for rows from before that)."""
    if payment.window_ends_at is not None:
        return payment.window_ends_at
    return payment.order.created_at + timedelta(minutes=payment_window_minutes(payment.store))


def _window_over(payment: Payment) -> bool:
    return timezone.now() >= window_ends_at(payment)


def attempt_charge(
    *,
    store: Store,
    payment_id: uuid.UUID | str,
    slot: str | None = None,
    wake: str | None = None,
    payment: Payment | None = None,
    started: Started | None = None,
) -> Step:
    """One turn of the charge task: at most one gateway call, its outcome recorded.

    `slot`: a gateway-semaphore slot the release took for this payment (given back here, whatever
    happens). `wake`: this turn is the wake-up of the wait named so; a wake-up whose wait is over
    (released, or a newer wait) does nothing. `payment`: the row (with its order) the caller just
    read, to spare reading it again. `started`: the first attempt `screen_and_start_charge` began
    for `payment`: only its call is left to make (and its slot to give back)."""
    try:
        if started is not None:
            return _charge(payment, started.card, started.attempt)
        return _attempt_charge(store, payment_id, slot, wake, payment)
    finally:
        breaker.release_slot(slot)
        if started is not None:
            breaker.release_slot(started.slot)


def _attempt_charge(
    store: Store, payment_id: Any, slot: str | None, wake: str | None, payment: Payment | None
) -> Step:
    if payment is None:
        payment = Payment.all_stores.select_related("order").filter(store=store, pk=payment_id).first()
    if payment is None or payment.status in Payment.FINAL_STATUSES:
        return Step("done", outcome=payment.status if payment else "missing")
    payment.store = payment.order.store = store
    order = payment.order
    if order.status != OS.PAYMENT_PROCESSING:
        abandon_payment(payment, reason=f"order is {order.status}")
        return Step("done", outcome="abandoned")
    if wake is not None and _wait_token(payment) != wake:
        return Step("done", outcome="wait_over")  # released meanwhile: its release task charges it
    if payment.waiting_since is not None:
        return _keep_waiting(payment, woken=wake is not None)

    card = vault.detokenize(store.pk, order.pk)
    if not card or not card.get("card_number"):
        _fail(
            payment,
            error_code="card_token_expired",
            message="The card details expired before the payment ran; the shopper must pay again.",
        )
        return Step("done", outcome=PS.FAILED)

    own_slot = None
    if slot is None:
        taken = breaker.acquire_slots(1)
        if not taken:  # GATEWAY_MAX_CONCURRENT_CALLS calls in flight: come back in a moment, free
            return Step("wait", delay=random.uniform(0.2, 1.0), outcome="no_slot")
        own_slot = taken[0]
    try:
        return _call_gateway(payment, card)
    finally:
        breaker.release_slot(own_slot)


def _call_gateway(payment: Payment, card: dict[str, Any]) -> Step:
    permit = breaker.before_call()
    if not permit.allowed:
        return _start_waiting(payment)

    attempt = _begin_attempt(payment)
    if attempt is None:
        if payment.status not in Payment.FINAL_STATUSES:  # the order left payment_processing meanwhile
            abandon_payment(payment, reason="order left payment_processing before the charge")
            return Step("done", outcome="abandoned")
        return Step("done", outcome=payment.status)
    return _charge(payment, card, attempt)


def _charge(payment: Payment, card: dict[str, Any], attempt: PaymentAttempt) -> Step:
    """The gateway call of a begun attempt, and its outcome recorded."""
    store, order = payment.store, payment.order
    try:
        charge = gateway.create_charge(
            amount=payment.amount,
            currency=payment.currency,
            card_number=str(card["card_number"]),
            idempotency_key=payment.idempotency_key,
            description=f"Order #{order.number}",
            metadata={"order_id": str(order.pk), "store": store.slug, "payment_id": str(payment.pk)},
        )
    except gateway.GatewayError as exc:
        outcome = PaymentAttempt.Outcome.TIMEOUT if exc.timeout else PaymentAttempt.Outcome.TRANSIENT_ERROR
        _finish_attempt(attempt, outcome, exc.call, error_code=exc.code, message=str(exc))
        if exc.counts_against_gateway:
            _gateway_failed(store, exc)
        else:
            _gateway_alive()
        if exc.counts_against_gateway and not breaker.is_closed():
            # The gateway is down for everyone now: the order waits it out (its window, not its
            # retry budget, bounds that), and the call it made stays counted.
            return _start_waiting(payment, error=exc)
        if payment.attempts >= max_attempts() and (
            not exc.outcome_unknown or payment.attempts >= max_attempts_when_unknown()
        ):
            code = "outcome_unknown" if exc.outcome_unknown else exc.code
            _fail(payment, error_code=code, message=f"gave up after {payment.attempts} attempts: {exc}")
            return Step("done", outcome=PS.FAILED)
        delay = retry_delay(payment.attempts)
        _schedule_retry(payment, delay, exc)
        return Step("retry", delay=delay, outcome="retrying")
    except gateway.PaymentError as exc:
        outcome = (
            PaymentAttempt.Outcome.DECLINED
            if isinstance(exc, gateway.PaymentDeclined)
            else PaymentAttempt.Outcome.ERROR
        )
        _finish_attempt(
            attempt, outcome, exc.call, error_code=exc.code, decline_code=exc.decline_code, message=str(exc)
        )
        _gateway_alive()
        _fail(payment, error_code=exc.code, decline_code=exc.decline_code, message=str(exc))
        return Step("done", outcome=PS.FAILED)
    _gateway_alive()
    _succeed(payment, charge, attempt)
    return Step("done", outcome=PS.SUCCEEDED)


# ----------------------------------------------------------------------- waiting it out


def _start_waiting(payment: Payment, *, error: gateway.GatewayError | None = None) -> Step:
    """The breaker is open: the order waits for the gateway, spending no attempt. One
    `payment.waiting` event when the wait starts (none per wake-up); the order's payment_status
    says `waiting`. Past its window it fails instead."""
    if _window_over(payment):
        return _window_ended(payment)
    now = timezone.now()
    with transaction.atomic():
        fresh, order = _locked(payment)
        if fresh.status in Payment.FINAL_STATUSES:
            return Step("done", outcome=fresh.status)
        since = fresh.waiting_since or now
        delay = wake_delay(fresh)
        updates: dict[str, Any] = {"waiting_since": since, "next_retry_at": now + timedelta(seconds=delay)}
        if error is not None:
            updates.update(error_code=error.code[:50], last_error=str(error)[:500])
        Payment.all_stores.filter(pk=fresh.pk).update(updated_at=now, **updates)
        if fresh.waiting_since is None:
            emit(
                PaymentWaiting(
                    reason="breaker_open",
                    since=since.isoformat(),
                    window_ends_at=window_ends_at(fresh).isoformat(),
                    attempts=fresh.attempts,
                ),
                store=payment.store,
                order_id=order.pk,
                subject=fresh,
                actor=ACTOR,
            )
            order_services.record_payment_progress(order=order, status="waiting", attempts=fresh.attempts)
        payment.waiting_since = since
    if breaker.note_store(payment.store_id):
        _emit_gateway_down(payment.store, error="breaker_open", failures=None)
    return Step("wait", delay=delay, outcome="waiting", wake=_wait_token(payment))


def _keep_waiting(payment: Payment, *, woken: bool) -> Step:
    """A waiting order's wake-up: fail it if its window is over; else, while the breaker is
    half-open, ask the gateway (a lookup that charges nothing — the breaker's probe, so no order
    spends an attempt on it); if the gateway is back, ask for a release; and sleep again.

    A task that is not the order's wake-up (a re-drive by the reconciler, a duplicate) only takes
    the wait over when its wake-ups have stopped (next_retry_at long past)."""
    if _window_over(payment):
        return _window_ended(payment)
    now = timezone.now()
    if (
        not woken
        and payment.next_retry_at
        and payment.next_retry_at > now - timedelta(seconds=2 * float(settings.PAYMENT_WAIT_WAKEUP_SECONDS))
    ):
        return Step("done", outcome="waiting")
    closed = probe_gateway() == "closed"
    # Ask for a release only while the semaphore has room: with every slot taken, the charges
    # holding them ask for the next release as they finish, and hundreds of waking orders asking
    # too would only flood the queue the released charges wait in.
    release = closed and breaker.slots_in_use() < settings.GATEWAY_MAX_CONCURRENT_CALLS
    delay = wake_delay(payment)
    Payment.all_stores.filter(pk=payment.pk, waiting_since=payment.waiting_since).update(
        next_retry_at=now + timedelta(seconds=delay), updated_at=now
    )
    return Step("wait", delay=delay, outcome="waiting", wake=_wait_token(payment), release=release)


def _window_ended(payment: Payment) -> Step:
    """The payment window is over and the gateway still cannot be reached: the order fails, its
    stock released, with the reason an operator (and the payment_failed alert) can act on."""
    start = payment.waiting_since or payment.created_at
    minutes = max(1, round((timezone.now() - start).total_seconds() / 60))
    _fail(
        payment,
        error_code="gateway_unavailable",
        message=f"the gateway was unavailable for {minutes} minute{'s' if minutes != 1 else ''}",
    )
    return Step("done", outcome=PS.FAILED)


def waiting_queue_exists() -> bool:
    return Payment.all_stores.filter(waiting_since__isnull=False).exists()


def release_waiting() -> list[tuple[uuid.UUID, int, str]]:
    """The gateway is back: hand the longest-waiting payments (oldest wait first, then oldest
    payment) as many gateway slots as are free, and end their wait (`payment.resumed`). Returns
    (payment id, store id, slot) for each; the caller enqueues their charges in that order. Each
    released charge gives its slot back and asks for the next release, so the queue drains at the
    rate the semaphore allows — never as a herd. Crosses stores on purpose (one queue)."""
    if not breaker.is_closed():
        return []
    free = settings.GATEWAY_MAX_CONCURRENT_CALLS - breaker.slots_in_use()
    if free <= 0:
        return []
    now = timezone.now()
    released: list[tuple[uuid.UUID, int, str]] = []
    with transaction.atomic():
        rows = list(
            Payment.all_stores.filter(waiting_since__isnull=False, status__in=[PS.PENDING, PS.PROCESSING])
            .order_by("waiting_since", "created_at")
            .select_for_update(skip_locked=True)[:free]
        )
        slots = breaker.acquire_slots(len(rows))
        stores = {s.pk: s for s in Store.objects.filter(pk__in={p.store_id for p in rows[: len(slots)]})}
        for payment, slot in zip(rows, slots, strict=False):
            store = stores[payment.store_id]
            Payment.all_stores.filter(pk=payment.pk).update(
                waiting_since=None, next_retry_at=None, updated_at=now
            )
            emit(
                PaymentResumed(
                    since=payment.waiting_since.isoformat(),
                    waited_seconds=round((now - payment.waiting_since).total_seconds(), 1),
                    attempts=payment.attempts,
                ),
                store=store,
                order_id=payment.order_id,
                subject=payment,
                actor=ACTOR,
            )
            order_services.resume_payment_progress(order_id=payment.order_id, attempts=payment.attempts)
            released.append((payment.pk, payment.store_id, slot))
    return released


def _locked(payment: Payment) -> tuple[Payment, Order]:
    """Lock order then payment (always in that order, so two paths never deadlock)."""
    order = lock_order(payment.store, payment.order_id)
    fresh = Payment.all_stores.select_for_update().get(pk=payment.pk)
    fresh.store = payment.store
    fresh.order = order
    return fresh, order


def _begin_attempt(payment: Payment) -> PaymentAttempt | None:
    """Count the attempt and write its row before the call, so a crash mid-call still shows it.

    None: no call may be made — the payment is final, or the order left payment_processing
    (cancelled, expired) since the task first looked. Checked here, under the order's lock, because
    cancel and expiry take the same lock: once they commit, no charge starts for that order."""
    with transaction.atomic():
        fresh, order = _locked(payment)
        if fresh.status in Payment.FINAL_STATUSES:
            payment.status = fresh.status
            return None
        if order.status != OS.PAYMENT_PROCESSING:
            payment.status = fresh.status
            return None
        return _record_attempt(payment, fresh, order)


def _record_attempt(payment: Payment, fresh: Payment, order: Order) -> PaymentAttempt:
    """The attempt counted and its row written, `fresh` (the locked row; `payment` itself when it
    was opened in this transaction) moved to processing on its first; under the order's lock."""
    attempts = fresh.attempts + 1
    known = getattr(payment, "known_attempt_rows", None)
    number = (known if known is not None else PaymentAttempt.all_stores.filter(payment=fresh).count()) + 1
    if fresh.status == PS.PENDING:
        transition(
            fresh,
            PS.PROCESSING,
            reason="first attempt",
            actor=ACTOR,
            updates={"attempts": attempts},
            data={"attempt": attempts, "max_attempts": max_attempts()},
        )
        order_services.record_payment_progress(order=order, status="processing", attempts=attempts)
    else:
        Payment.all_stores.filter(pk=fresh.pk).update(attempts=attempts, updated_at=timezone.now())
        order_services.record_payment_progress(order=order, status=order.payment_status, attempts=attempts)
    payment.status, payment.attempts = PS.PROCESSING, attempts
    if known is not None:
        payment.known_attempt_rows = number
    return PaymentAttempt.all_stores.create(
        store=payment.store, payment=fresh, number=number, started_at=timezone.now()
    )


def _finish_attempt(
    attempt: PaymentAttempt,
    outcome: str,
    call: gateway.GatewayCall,
    *,
    error_code: str = "",
    decline_code: str = "",
    message: str = "",
    charge_id: str = "",
) -> None:
    PaymentAttempt.all_stores.filter(pk=attempt.pk).update(
        outcome=outcome,
        finished_at=timezone.now(),
        http_status=call.http_status,
        latency_ms=call.latency_ms,
        error_code=error_code[:50],
        decline_code=decline_code[:50],
        message=message[:500],
        charge_id=charge_id,
    )


def _schedule_retry(payment: Payment, delay: float, exc: gateway.GatewayError) -> None:
    now = timezone.now()
    with transaction.atomic():
        fresh, order = _locked(payment)
        if fresh.status in Payment.FINAL_STATUSES:
            return
        Payment.all_stores.filter(pk=fresh.pk).update(
            next_retry_at=now + timedelta(seconds=delay),
            error_code=exc.code[:50],
            last_error=str(exc)[:500],
            updated_at=now,
        )
        stretched = exc.outcome_unknown and fresh.attempts >= max_attempts()
        emit(
            PaymentRetrying(
                attempt=fresh.attempts,
                max_attempts=max_attempts_when_unknown() if stretched else max_attempts(),
                next_delay_seconds=round(delay, 3),
                error=exc.code,
                message=str(exc)[:200],
                outcome_unknown=exc.outcome_unknown,
            ),
            store=payment.store,
            order_id=order.pk,
            subject=fresh,
            actor=ACTOR,
        )
        order_services.record_payment_progress(order=order, status="retrying", attempts=fresh.attempts)


def _succeed(payment: Payment, charge: gateway.Charge, attempt: PaymentAttempt) -> None:
    """Record the charge: its attempt, the payment, and the order paid (stock committed, pick list
    opened), in one transaction — one commit for the whole outcome."""
    now = timezone.now()
    with atomic_with_events():
        fresh, order = _locked(payment)
        _finish_attempt(attempt, PaymentAttempt.Outcome.SUCCEEDED, charge.call, charge_id=charge.id)
        if fresh.status != PS.PROCESSING:
            return
        transition(
            fresh,
            PS.SUCCEEDED,
            reason="charged",
            actor=ACTOR,
            updates={
                "gateway_charge_id": charge.id,
                "succeeded_at": now,
                "next_retry_at": None,
                "waiting_since": None,
                "error_code": "",
            },
            event=PaymentProcessed(
                amount=str(fresh.amount),
                currency=fresh.currency,
                charge_id=charge.id,
                attempts=fresh.attempts,
                order_gone=order_selectors.is_gone(order),
            ),
        )
        if order.status == OS.PAYMENT_PROCESSING:
            # stock committed and (fulfillment listening inline on order.paid) the pick list
            # opened, all in this transaction
            order_services.mark_paid(
                order=order, actor=ACTOR, charge_id=charge.id, amount=fresh.amount, attempts=fresh.attempts
            )
        else:  # the order left payment_processing while the charge was in flight: refunded on
            # payment.processed (receivers.refund_if_order_gone)
            order_services.record_payment_progress(order=order, status="succeeded", attempts=fresh.attempts)
        store_pk, order_pk = payment.store.pk, order.pk
        transaction.on_commit(lambda: vault.forget(store_pk, order_pk))
    payment.status = PS.SUCCEEDED


def _fail(payment: Payment, *, error_code: str, message: str, decline_code: str = "") -> None:
    """Final failure: payment failed, order payment_failed, its reservation released (a retry
    reserves again: payments.retry)."""
    with transaction.atomic():
        fresh, order = _locked(payment)
        if fresh.status in Payment.FINAL_STATUSES:
            return
        transition(
            fresh,
            PS.FAILED,
            reason=message[:200],
            actor=ACTOR,
            updates={
                "error_code": error_code[:50],
                "decline_code": decline_code[:50],
                "last_error": message[:500],
                "failed_at": timezone.now(),
                "next_retry_at": None,
                "waiting_since": None,
            },
            event=PaymentFailed(
                error_code=error_code,
                decline_code=decline_code,
                error=error_code,
                message=message[:200],
                attempts=fresh.attempts,
            ),
        )
        if order.status == OS.PAYMENT_PROCESSING:
            order_services.mark_payment_failed(
                order=order,
                actor=ACTOR,
                reason=message,
                error_code=error_code,
                decline_code=decline_code,
                attempts=fresh.attempts,
            )
        else:
            order_services.record_payment_progress(order=order, status="failed", attempts=fresh.attempts)
        # The card stays in the vault (until its TTL, a cancel, or a later payment) so an operator
        # can retry the order with it (payments.retry); it is never charged without that retry.
    payment.status = PS.FAILED


def abandon_payment(payment: Payment, *, reason: str) -> None:
    """The order left payment_processing before we charged: close the payment without a call."""
    with transaction.atomic():
        fresh, order = _locked(payment)
        if fresh.status in Payment.FINAL_STATUSES:
            return
        code = f"order_{order.status}"[:50]
        transition(
            fresh,
            PS.FAILED,
            reason=reason,
            actor=ACTOR,
            updates={
                "error_code": code,
                "failed_at": timezone.now(),
                "next_retry_at": None,
                "waiting_since": None,
            },
            event=PaymentCancelled(error_code=code, attempts=fresh.attempts),
        )
        order_services.record_payment_progress(order=order, status="failed", attempts=fresh.attempts)
        store_pk, order_pk = payment.store.pk, order.pk
        transaction.on_commit(lambda: vault.forget(store_pk, order_pk))
    payment.status = PS.FAILED


# ---------------------------------------------------------------------- breaker events


def _gateway_failed(store: Store, exc: gateway.GatewayError) -> None:
    result = breaker.record_failure(store.pk)
    if result.store_is_new:
        _emit_gateway_down(store, error=exc.code, failures=result.failures)


def probe_gateway() -> str:
    """Beat: while the breaker is open and its cool-down is over, ask the gateway whether it is
    back, even when no payment is waiting to try. Without this, a breaker opened by the last
    failures of a burst would stay open, and its `gateway_down` alert with it, until the next
    order came along. Returns the breaker's state after the probe."""
    state = breaker.state()
    if state["state"] == "closed":
        if not state.get("stores"):
            return "closed"
        # closed, but stores told "down" were never told "up" (a failure raced the closing
        # success): tell them once the gateway answers
        if gateway.is_answering():
            with transaction.atomic():
                _gateway_alive()
        return "closed"
    permit = breaker.before_call()
    if not permit.allowed:
        return "open"
    if not gateway.is_answering():
        breaker.probe_failed()
        return "open"
    with transaction.atomic():
        _gateway_alive()
    return "closed"


def _gateway_alive() -> None:
    for store_id in breaker.record_success():
        store = Store.objects.filter(pk=store_id).first()
        if store is not None:
            emit(
                GatewayUp(gateway=settings.GATEWAY_URL),
                store=store,
                subject_type="gateway",
                subject_id="gateway",
                actor=ACTOR,
            )


def _emit_gateway_down(store: Store, *, error: str, failures: int | None) -> None:
    emit(
        GatewayDown(
            gateway=settings.GATEWAY_URL,
            error=error,
            failures=failures,
            cooldown_seconds=settings.BREAKER_COOLDOWN_SECONDS,
        ),
        store=store,
        subject_type="gateway",
        subject_id="gateway",
        actor=ACTOR,
    )


# ------------------------------------------------------------------------------ refund
# Refunds (partial, and the full refund of a cancelled order as their special case) live in
# `refunds.py`.


# --------------------------------------------------------------------------- reconciler


def stuck_after_seconds() -> float:
    """Longer than any legitimate quiet spell of a live payment: the longest retry countdown, a
    full gateway call and a breaker cool-down, with room to spare — and never shorter than the
    reconciler's RECONCILE_STUCK_AFTER_SECONDS (5 min by default). Re-driving early costs only a
    duplicate task: the charge's idempotency key makes a second charge impossible."""
    return max(
        float(settings.RECONCILE_STUCK_AFTER_SECONDS),
        2 * settings.PAYMENT_RETRY_BACKOFF_MAX
        + settings.GATEWAY_CONNECT_TIMEOUT
        + settings.GATEWAY_READ_TIMEOUT
        + 2 * settings.BREAKER_COOLDOWN_SECONDS,
    )


def reconcile_payments(*, older_than_seconds: float | None = None, batch: int = 500) -> dict[str, list]:
    """Find work whose message was lost — a payment in flight that nothing has touched for too
    long, a captured payment of a cancelled order never refunded — and say what to re-drive.

    Re-driving is safe because the tasks are idempotent (same key, final states left alone). The
    rows are touched so the next sweep leaves them alone while the re-driven task is queued.
    Crosses stores on purpose (a beat job)."""
    now = timezone.now()
    cutoff = now - timedelta(
        seconds=older_than_seconds if older_than_seconds is not None else stuck_after_seconds()
    )
    with transaction.atomic():  # SKIP LOCKED: two sweeps (or a sweep and a live task) never share a row
        charge = list(
            Payment.all_stores.filter(status__in=[PS.PENDING, PS.PROCESSING], updated_at__lt=cutoff)
            .filter(Q(next_retry_at__isnull=True) | Q(next_retry_at__lt=cutoff))
            .order_by("updated_at")
            .select_for_update(skip_locked=True)
            .values_list("pk", "store_id")[:batch]
        )
        refund = list(
            Payment.all_stores.filter(
                status__in=Payment.REFUNDABLE_STATUSES,
                updated_at__lt=cutoff,
                order__status__in=[OS.CANCELLED, OS.EXPIRED],
            )
            .order_by("updated_at")
            .select_for_update(skip_locked=True, of=("self",))
            .values_list("pk", "store_id")[:batch]
        )
        touched = [pk for pk, _ in charge + refund]
        if touched:
            Payment.all_stores.filter(pk__in=touched).update(updated_at=now)
    return {"charge": charge, "refund": refund}
