"""Orders for payment tests, built the way intake builds them: order + lines at catalogue prices,
stock reserved, the card in the vault, `order.created` emitted — all in one transaction.

(Intake's HTTP endpoint is the orders engineer's; these helpers stand in for it with the same
models and services, so the payment step sees exactly what intake leaves behind.)
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.db import transaction
from django.db.models import Max

from inventory.models import Product
from inventory.services import release_stock, reserve_stock
from orderflow.core import vault
from orderflow.core.events import Event, write_event
from orderflow.core.tenancy import Store
from orders.models import Order, OrderItem
from payments import services as payment_services
from payments.models import Payment
from tests.factories import order_body

CARD_OK = "4242424242424242"
CARD_DECLINED = "4000000000000002"
CARD_INSUFFICIENT = "4000000000009995"
CARD_PROCESSING_ERROR = "4000000000000119"
CARD_SLOW = "4000000000000259"


def create_order(
    store: Store,
    *lines: tuple[Product, int],
    card: str = CARD_OK,
    email: str | None = None,
    country: str = "DE",
    client_ip: str | None = None,
    vault_card: bool = True,
    status: str = Order.Status.PENDING,
) -> Order:
    with transaction.atomic():
        number = (Order.all_stores.filter(store=store).aggregate(n=Max("number"))["n"] or 0) + 1
        total = sum((Decimal(p.price) * q for p, q in lines), Decimal("0.00"))
        order = Order.all_stores.create(
            store=store,
            number=number,
            status=status,
            customer_email=email or f"c{uuid.uuid4().hex[:8]}@example.com",
            customer_name="Ada Lovelace",
            shipping_line1="1 Test Street",
            shipping_city="Berlin",
            shipping_postal_code="10115",
            shipping_country=country,
            currency=store.currency,
            subtotal=total,
            total=total,
            card_brand="visa",
            card_last4=card[-4:],
            client_ip=client_ip,
        )
        for product, qty in lines:
            OrderItem.all_stores.create(
                store=store,
                order=order,
                product_id=product.pk,
                sku=product.sku,
                name=product.name,
                unit_price=product.price,
                quantity=qty,
                line_total=Decimal(product.price) * qty,
            )
        reserve_stock(store=store, lines=[(p.pk, q) for p, q in lines], order_id=order.pk, actor="test")
        if vault_card:
            vault.tokenize(store.pk, order.pk, {"card_number": card, "exp_month": 12, "exp_year": 2031})
        write_event("order.created", store=store, order_id=order.pk, subject=order, data={"number": number})
    return order


def topics(store: Store, order: Order | None = None) -> list[str]:
    qs = Event.all_stores.filter(store=store)
    if order is not None:
        qs = qs.filter(order_id=order.pk)
    return list(qs.order_by("id").values_list("topic", flat=True))


def event(store: Store, topic: str, order: Order | None = None) -> Event | None:
    qs = Event.all_stores.filter(store=store, topic=topic)
    if order is not None:
        qs = qs.filter(order_id=order.pk)
    return qs.order_by("id").last()


def stock(product: Product) -> tuple[int, int]:
    """(on_hand, reserved) of a product, fresh from the database."""
    level = product.stock.__class__.all_stores.get(product=product)
    return level.on_hand, level.reserved


def post_order(api, *lines: tuple[str, int], card: str = CARD_OK, **kw) -> Order:
    """An order through the real intake endpoint (`POST /api/v1/orders`)."""
    r = api.post(
        "/api/v1/orders",
        order_body(*lines, card=card, **kw),
        format="json",
        HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
    )
    assert r.status_code == 202, r.content
    return Order.all_stores.get(pk=r.json()["id"])


def settled_payments(orders: list[Order]) -> int:
    """How many of these orders have a payment with a final outcome."""
    return Payment.all_stores.filter(
        order__in=[o.pk for o in orders], status__in=["succeeded", "failed", "refunded"]
    ).count()


def charges_by_order(ledger: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for charge in ledger:
        out.setdefault(charge["metadata"].get("order_id"), []).append(charge)
    return out


def failed_order(store: Store, *lines: tuple[Product, int], card: str = CARD_OK) -> Order:
    """A payment_failed order as `payments.services._fail` leaves one after a decline: its
    Payment failed under its first key, its stock released, its card still in the vault."""
    order = create_order(store, *lines, card=card, status=Order.Status.PAYMENT_FAILED)
    with transaction.atomic():
        release_stock(store=store, order_id=order.pk, actor="test", reason="payment failed")
        payment_id = uuid.uuid4()
        Payment.all_stores.create(
            id=payment_id, store=store, order=order, amount=order.total, currency=order.currency,
            status=Payment.Status.FAILED, idempotency_key=f"charge-{payment_id}", attempts=1,
            error_code="card_declined", decline_code="generic_decline",
        )  # fmt: skip
        Order.all_stores.filter(pk=order.pk).update(payment_status="failed", payment_attempts=1)
    order.refresh_from_db()
    return order


def paid_order(store: Store, *lines: tuple[Product, int]) -> Order:
    """An order taken through the fraud check and charged at the gateway (GATEWAY_URL must point
    at the mock gateway): paid, its stock committed, its payment `succeeded` — and so, its pick
    list opened in the same transaction, `fulfilling`."""
    order = create_order(store, *lines)
    payment_services.screen_order(store=store, order_id=order.pk)
    payment = Payment.all_stores.get(order=order)
    for _ in range(10):
        if payment_services.attempt_charge(store=store, payment_id=payment.pk).kind == "done":
            break
    order.refresh_from_db()
    assert order.status == "fulfilling" and order.payment_status == "succeeded", order.status
    return order
