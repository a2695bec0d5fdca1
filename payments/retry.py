"""A second chance after a failed payment (issue #15, item 3).

A `payment_failed` order (a declined card, a payment window that ended) may be paid again:
* by an operator (dashboard, `POST /api/v1/orders/<id>/retry-payment`) with the same card, while
  the vault still holds it — `_fail` keeps it there until the vault's TTL, a cancel or a payment;
* by the shopper, from the tracking page's pay-again form, with a new card (into the vault).

`retry_payment` is the one path for both. In one transaction, under the order's row lock: the
order must still be payment_failed (a double submit finds it pending and is refused, so nothing
is reserved or charged twice); the stock is reserved again with intake's single-statement
reservation (409 `insufficient_stock` naming what is gone, nothing kept); the Payment goes back to
pending with a NEW gateway idempotency key (the failed attempt's key has its decline stored at the
gateway and would replay it) and a fresh retry budget; the order moves payment_failed → pending.
`payment.retry_requested` records who asked; its handler (receivers) runs the fraud check as
`order.created`'s does, and from there the order goes the usual way to payment.

It lives in payments because it reopens the Payment; orders (intake) may not call payments.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from django.db import transaction

from inventory import services as inventory_services
from inventory.selectors import catalogue_for_skus
from orderflow.core import vault
from orderflow.core.errors import Conflict, InsufficientStock, InvalidTransition
from orderflow.core.events import emit
from orderflow.core.statemachine import transition
from orderflow.core.tenancy import Store
from orders import selectors as order_selectors
from orders import services as order_services
from orders.cards import card_summary
from orders.locks import lock_order_or_404
from orders.states import OrderStatus, PaymentStatus

from .events import PaymentRetryRequested
from .models import Payment

OS = OrderStatus

if TYPE_CHECKING:  # annotations only: orders are read and moved through orders' services
    from orders.models import Order, OrderItem
PS = Payment.Status
SHOPPER = "shopper"


class CardTokenExpired(Conflict):
    code, message = (
        "card_token_expired",
        "The card is no longer held for this order (the vault keeps it for an hour); "
        "the shopper must pay again with a card from the tracking page.",
    )


def can_retry(order: Order) -> bool:
    """The order may be paid again (what the dashboard and the tracking page offer)."""
    return order.status == OS.PAYMENT_FAILED


def retry_payment(
    *,
    store: Store,
    order_id: uuid.UUID | str,
    actor: str,
    requested_by: str,
    card: dict[str, Any] | None = None,
) -> Order:
    """Send a payment_failed order through fraud check and payment again (see the module doc).

    `card`: a new card as intake's payment serializer validated it (number, expiry, CVC); None
    charges the card the vault still holds (409 `card_token_expired` when it is gone).
    409 `invalid_transition` when the order is not payment_failed (already retried, paid,
    cancelled...); 409 `insufficient_stock` when the stock is gone. Returns the order, pending."""
    with transaction.atomic():
        order = lock_order_or_404(store, order_id)
        if not can_retry(order):
            raise InvalidTransition(
                f"Only a payment_failed order can be paid again; this one is '{order.status}'.",
                extra={"from": order.status, "to": OS.PENDING},
            )
        payment = Payment.all_stores.select_for_update().filter(order=order).first()
        if card is None and not (vault.detokenize(store.pk, order.pk) or {}).get("card_number"):
            raise CardTokenExpired()
        items = order_selectors.items_of(store, order.pk)
        _check_still_sold(store, items)
        inventory_services.reserve_stock(
            store=store, lines=[(i.product_id, i.quantity) for i in items], order_id=order.pk, actor=actor
        )
        previous = {
            "error_code": payment.error_code if payment else "",
            "decline_code": payment.decline_code if payment else "",
        }
        order_updates: dict[str, Any] = {"payment_status": PaymentStatus.PENDING, "payment_attempts": 0}
        if card is not None:
            brand, last4 = card_summary(card["card_number"])
            order_updates.update(card_brand=brand, card_last4=last4)
        requested = PaymentRetryRequested(
            requested_by=requested_by,
            new_card=card is not None,
            card_last4=order_updates.get("card_last4", order.card_last4),
            units_reserved=sum(i.quantity for i in items),
            previous_error_code=previous["error_code"],
            previous_decline_code=previous["decline_code"],
        )
        if payment is not None:
            transition(
                payment,
                PS.PENDING,
                reason=f"payment retry requested by {requested_by}",
                actor=actor,
                event=requested,
                updates={
                    # a fresh key: the failed attempt's answer is stored at the gateway under its own
                    "idempotency_key": f"charge-{uuid.uuid4()}",
                    "attempts": 0,
                    "error_code": "",
                    "decline_code": "",
                    "last_error": "",
                    "failed_at": None,
                    "next_retry_at": None,
                },
            )
        order_services.reopen_for_payment(
            order=order,
            reason=f"payment retry requested by {requested_by}",
            actor=actor,
            data={"requested_by": requested_by, "new_card": card is not None},
            updates=order_updates,
        )
        if payment is None:  # failed before a Payment existed: the request still needs its event
            emit(requested, store=store, order_id=order.pk, subject=order, actor=actor)
        if card is not None:
            # Last, like intake: a vault (Redis) outage refuses the retry (503) and rolls it all back.
            order_services.vault_card(store.pk, order.pk, card)
    return order


def _check_still_sold(store: Store, items: list[OrderItem]) -> None:
    """A product withdrawn since the order is as gone as one sold out: 409, nothing reserved."""
    products = catalogue_for_skus(store, [i.sku for i in items])
    gone = sorted(i.sku for i in items if i.sku not in products or not products[i.sku].active)
    if gone:
        raise InsufficientStock(
            f"No longer available: {', '.join(gone)}.", extra={"skus": gone, "unavailable": gone}
        )


def unavailable_items(order: Order, exc: InsufficientStock) -> list[str]:
    """The names of the order's lines a refused retry could not get (for the shopper's page)."""
    skus = set(exc.extra.get("skus") or [])
    return [item.name for item in order.items.all() if item.sku in skus]
