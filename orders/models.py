"""Orders: the order and its lines (catalogue prices copied at order time) and the idempotency
records that make `POST /api/v1/orders` impossible to fool into a duplicate."""

import secrets
import uuid

from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper

from orderflow.core.tenancy import TenantModel

from .events import OrderMoved


def new_tracking_token() -> str:
    return secrets.token_urlsafe(24)


class Order(TenantModel):
    class Status(models.TextChoices):
        PENDING = "pending"
        FRAUD_REVIEW = "fraud_review"
        PAYMENT_PROCESSING = "payment_processing"
        PAID = "paid"
        FULFILLING = "fulfilling"
        READY_TO_SHIP = "ready_to_ship"
        SHIPPED = "shipped"
        DELIVERED = "delivered"
        PAYMENT_FAILED = "payment_failed"
        CANCELLED = "cancelled"
        REJECTED = "rejected"
        EXPIRED = "expired"

    class PaymentStatus(models.TextChoices):
        PENDING = "pending"
        PROCESSING = "processing"
        RETRYING = "retrying"
        WAITING = "waiting"  # for the gateway (breaker open), inside the payment window
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        PARTIALLY_REFUNDED = "partially_refunded"
        REFUNDED = "refunded"

    class FulfillmentStatus(models.TextChoices):
        UNFULFILLED = "unfulfilled"
        PICKING = "picking"
        PACKED = "packed"
        READY_TO_SHIP = "ready_to_ship"
        SHIPPED = "shipped"
        DELIVERED = "delivered"
        CANCELLED = "cancelled"

    S = Status
    TRANSITIONS = {
        S.PENDING: {S.FRAUD_REVIEW, S.PAYMENT_PROCESSING, S.REJECTED, S.CANCELLED, S.EXPIRED},
        S.FRAUD_REVIEW: {S.PAYMENT_PROCESSING, S.REJECTED, S.CANCELLED, S.EXPIRED},
        S.PAYMENT_PROCESSING: {S.PAID, S.PAYMENT_FAILED, S.CANCELLED, S.EXPIRED},
        S.PAID: {S.FULFILLING, S.CANCELLED},
        S.FULFILLING: {S.READY_TO_SHIP, S.CANCELLED},
        S.READY_TO_SHIP: {S.SHIPPED, S.CANCELLED},
        S.SHIPPED: {S.DELIVERED},
        S.DELIVERED: set(),
        S.PAYMENT_FAILED: {S.PENDING, S.CANCELLED},  # pending: paid again (payments.retry)
        S.CANCELLED: set(),
        S.REJECTED: set(),
        S.EXPIRED: set(),
    }
    del S
    FINAL_STATUSES = frozenset({"delivered", "payment_failed", "cancelled", "rejected", "expired"})
    EVENT_PREFIX = "order"
    EVENT_STEP = "order"
    EVENT_PAYLOAD = OrderMoved
    IS_ORDER = True

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    number = models.PositiveBigIntegerField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    payment_status = models.CharField(
        max_length=20, choices=PaymentStatus.choices, default=PaymentStatus.PENDING
    )
    fulfillment_status = models.CharField(
        max_length=14, choices=FulfillmentStatus.choices, default=FulfillmentStatus.UNFULFILLED
    )
    customer_email = models.EmailField(max_length=254)
    customer_name = models.CharField(max_length=200)
    shipping_line1 = models.CharField(max_length=200)
    shipping_line2 = models.CharField(max_length=200, blank=True, default="")
    shipping_city = models.CharField(max_length=100)
    shipping_postal_code = models.CharField(max_length=20)
    shipping_country = models.CharField(max_length=2)
    currency = models.CharField(max_length=3)
    subtotal = models.DecimalField(max_digits=12, decimal_places=2)
    total = models.DecimalField(max_digits=12, decimal_places=2)
    card_brand = models.CharField(max_length=20, blank=True, default="")
    card_last4 = models.CharField(max_length=4, blank=True, default="")
    risk_score = models.PositiveSmallIntegerField(null=True, blank=True)
    risk_decision = models.CharField(max_length=10, blank=True, default="")
    risk_rules = models.JSONField(default=list, blank=True)
    payment_attempts = models.PositiveSmallIntegerField(default=0)
    tracking_token = models.CharField(max_length=64, unique=True, default=new_tracking_token, editable=False)
    metadata = models.JSONField(default=dict, blank=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=False)
    updated_at = models.DateTimeField(auto_now=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    shipped_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantModel.Meta):
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["store", "number"], name="order_unique_store_number"),
            models.CheckConstraint(condition=Q(total__gte=0), name="order_total_not_negative"),
        ]
        indexes = [
            # the order lists' keyset (orders.selectors.ORDER_LIST_ORDERING), store first
            models.Index(fields=["store", "-created_at", "-id"], name="order_store_created_id"),
            # `updated_after`: an integrator's incremental sync
            models.Index(fields=["store", "updated_at"], name="order_store_updated"),
            models.Index(fields=["store", "status", "-created_at"], name="order_store_status_created"),
            models.Index(fields=["store", "customer_email"], name="order_store_email"),
            # the fraud check's bounded lookups (payments.fraud.gather_facts)
            models.Index("store", Upper("customer_email"), "created_at", name="order_store_email_ci"),
            models.Index(fields=["store", "card_last4", "card_brand", "created_at"], name="order_store_card"),
            models.Index(fields=["store", "client_ip", "created_at"], name="order_store_ip"),
        ]

    def __str__(self) -> str:
        return f"#{self.number} ({self.status})"


class OrderItem(TenantModel):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    product_id = models.BigIntegerField()
    sku = models.CharField(max_length=64)
    name = models.CharField(max_length=200)
    unit_price = models.DecimalField(max_digits=12, decimal_places=2)
    quantity = models.PositiveIntegerField()
    line_total = models.DecimalField(max_digits=12, decimal_places=2)

    class Meta(TenantModel.Meta):
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["order", "sku"], name="orderitem_unique_order_sku"),
            models.CheckConstraint(condition=Q(quantity__gte=1), name="orderitem_quantity_positive"),
        ]


class IdempotencyRecord(TenantModel):
    """One per (store, Idempotency-Key): in flight, then done with the exact response stored."""

    class State(models.TextChoices):
        IN_FLIGHT = "in_flight"
        DONE = "done"

    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    state = models.CharField(max_length=10, choices=State.choices, default=State.IN_FLIGHT)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.BinaryField(null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    order_id = models.UUIDField(null=True, blank=True)
    replays = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # When the stored response was last served again (the dashboard counts today's replays).
    last_replayed_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantModel.Meta):
        constraints = [models.UniqueConstraint(fields=["store", "key"], name="idempotency_unique_store_key")]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created")]
