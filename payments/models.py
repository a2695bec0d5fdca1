"""Payments: one `Payment` per order (its gateway identity and state) and one `PaymentAttempt` per
try at the gateway (the audit trail that explains every retry)."""

import uuid

from django.db import models
from django.db.models import F, Q

from orderflow.core.tenancy import TenantModel
from orders.models import Order


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
        REFUNDED = "refunded"

    S = Status
    TRANSITIONS = {
        S.PENDING: {S.PROCESSING, S.FAILED},
        S.PROCESSING: {S.SUCCEEDED, S.FAILED},
        S.SUCCEEDED: {S.REFUNDED},
        S.FAILED: set(),
        S.REFUNDED: set(),
    }
    del S
    FINAL_STATUSES = frozenset({"succeeded", "failed", "refunded"})
    EVENT_PREFIX = "payment"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    order = models.OneToOneField(Order, on_delete=models.PROTECT, related_name="payment")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
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
        return f"refund-{self.id}"


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
