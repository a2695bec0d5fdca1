"""Payments: one `Payment` per order (its gateway identity and state) and one `PaymentAttempt` per
try at the gateway (the audit trail that explains every retry)."""

import uuid

from django.db import models
from django.db.models import F, Q

from orderflow.core.tenancy import TenantModel

from .events import PaymentMoved


class Payment(TenantModel):
    """The charge for one order.

    `idempotency_key` is fixed when the row is created (`charge-<id>`), before the first attempt,
    so every retry — Celery's, a redelivery after a worker crash, a duplicate task — asks the
    gateway for the same charge, never a second one. Refunds use `refund-<id>` the same way.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        PROCESSING = "processing"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        PARTIALLY_REFUNDED = "partially_refunded"
        REFUNDED = "refunded"

    S = Status
    # A partial refund may follow another (the self-loop emits `payment.partially_refunded` once per
    # refund); which of the two a refund lands in is derived from the amounts (`refunds.py`).
    TRANSITIONS = {
        S.PENDING: {S.PROCESSING, S.FAILED},
        S.PROCESSING: {S.SUCCEEDED, S.FAILED},
        S.SUCCEEDED: {S.PARTIALLY_REFUNDED, S.REFUNDED},
        S.PARTIALLY_REFUNDED: {S.PARTIALLY_REFUNDED, S.REFUNDED},
        S.FAILED: {S.PENDING},  # a second chance: payments.retry gives it a new gateway key
        S.REFUNDED: set(),
    }
    del S
    FINAL_STATUSES = frozenset({"succeeded", "failed", "partially_refunded", "refunded"})
    # Money was captured and some of it may still be refunded.
    REFUNDABLE_STATUSES = frozenset({"succeeded", "partially_refunded"})
    EVENT_PREFIX = "payment"
    EVENT_STEP = "payment"
    EVENT_PAYLOAD = PaymentMoved
    # Entered only by moves that name their own topic: payment.processed, payment.failed or
    # payment.cancelled, payment.retry_requested (transition(..., event=...)).
    NAMED_ENTRIES = frozenset({"succeeded", "failed", "pending"})

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    order = models.OneToOneField("orders.Order", on_delete=models.PROTECT, related_name="payment")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    idempotency_key = models.CharField(max_length=100, editable=False)
    gateway_charge_id = models.CharField(max_length=100, blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Calls made to the gateway.")
    error_code = models.CharField(max_length=50, blank=True, default="")
    decline_code = models.CharField(max_length=50, blank=True, default="")
    last_error = models.CharField(max_length=500, blank=True, default="")
    next_retry_at = models.DateTimeField(null=True, blank=True)
    waiting_since = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Waiting for the gateway (breaker open) since; empty when not waiting.",
    )
    window_ends_at = models.DateTimeField(
        null=True, blank=True, help_text="The payment window: the order waits out an outage until then."
    )
    refunded_amount = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    refund_id = models.CharField(max_length=100, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    succeeded_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantModel.Meta):
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["store", "idempotency_key"], name="payment_unique_store_key"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="payment_amount_not_negative"),
            models.CheckConstraint(
                condition=Q(refunded_amount__gte=0) & Q(refunded_amount__lte=F("amount")),
                name="payment_refund_within_amount",
            ),
            models.CheckConstraint(
                condition=~Q(status="succeeded") | ~Q(gateway_charge_id=""),
                name="payment_succeeded_has_charge",
            ),
        ]
        indexes = [
            models.Index(fields=["store", "status", "-created_at"], name="payment_store_status_created"),
            models.Index(fields=["store", "-created_at"], name="payment_store_created"),
            models.Index(
                fields=["waiting_since", "created_at"],
                condition=Q(waiting_since__isnull=False),
                name="payment_waiting",
            ),
        ]

    def __str__(self) -> str:
        return f"payment {self.id} ({self.status})"

    @property
    def refund_idempotency_key(self) -> str:
        """The key of the refund of whatever remains (cancel, expiry, the admin's action)."""
        return f"refund-{self.id}"

    @property
    def refundable_amount(self):
        return self.amount - self.refunded_amount


class PaymentAttempt(TenantModel):
    """One try: a call to the gateway, or a turn skipped because the circuit breaker was open."""

    class Outcome(models.TextChoices):
        IN_FLIGHT = "in_flight"
        SUCCEEDED = "succeeded"
        DECLINED = "declined"
        TRANSIENT_ERROR = "transient_error"
        TIMEOUT = "timeout"
        ERROR = "error"
        BREAKER_OPEN = "breaker_open"

    payment = models.ForeignKey(Payment, on_delete=models.CASCADE, related_name="attempt_rows")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.IN_FLIGHT)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error_code = models.CharField(max_length=50, blank=True, default="")
    decline_code = models.CharField(max_length=50, blank=True, default="")
    message = models.CharField(max_length=500, blank=True, default="")
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    charge_id = models.CharField(max_length=100, blank=True, default="")

    class Meta(TenantModel.Meta):
        ordering = ["payment", "number"]
        constraints = [
            models.UniqueConstraint(fields=["store", "payment", "number"], name="attempt_unique_number"),
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.payment_id}: {self.outcome}"


class Refund(TenantModel):
    """One refund of a captured payment: an amount, or order lines with quantities.

    The row is written (status `pending`) under the payment's row lock *before* the gateway is
    called, so its amount counts against what remains refundable while the call is in flight: two
    concurrent refunds can never together exceed the capture. `idempotency_key` is the gateway's
    key, fixed on creation, so every retry of this refund asks the gateway for the same refund;
    `client_key` is the API caller's `Idempotency-Key`, which finds this row again on a retry."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    # Pending refunds hold their amount: they may already have happened at the gateway.
    HOLDING_STATUSES = ("pending", "succeeded")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="refunds")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    reason = models.CharField(max_length=500, blank=True, default="")
    restock = models.BooleanField(default=False)
    idempotency_key = models.CharField(max_length=100, editable=False)
    client_key = models.CharField(max_length=255, blank=True, default="")
    fingerprint = models.CharField(max_length=64, blank=True, default="")
    gateway_refund_id = models.CharField(max_length=100, blank=True, default="")
    error_code = models.CharField(max_length=50, blank=True, default="")
    last_error = models.CharField(max_length=500, blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Calls made to the gateway.")
    actor = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    succeeded_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantModel.Meta):
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(fields=["store", "idempotency_key"], name="refund_unique_store_key"),
            models.UniqueConstraint(
                fields=["store", "payment", "client_key"],
                condition=~Q(client_key=""),
                name="refund_unique_client_key",
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive"),
        ]
        indexes = [models.Index(fields=["store", "status", "updated_at"], name="refund_store_status")]

    def __str__(self) -> str:
        return f"refund {self.id} of {self.amount} ({self.status})"


class RefundLine(TenantModel):
    """How many units of one order line a refund covers (and their money)."""

    refund = models.ForeignKey(Refund, on_delete=models.CASCADE, related_name="lines")
    item = models.ForeignKey("orders.OrderItem", on_delete=models.PROTECT, related_name="refund_lines")
    quantity = models.PositiveIntegerField()
    amount = models.DecimalField(max_digits=12, decimal_places=2)

    class Meta(TenantModel.Meta):
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["refund", "item"], name="refundline_unique_item"),
            models.CheckConstraint(condition=Q(quantity__gte=1), name="refundline_quantity_positive"),
        ]
